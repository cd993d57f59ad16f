//! The sandbox's layout holds: the shared modules (server, control API,
//! fault layer, the `Room` trait, run-time state) name no simulated API, and
//! no API's room imports a shared module other than the kernel.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};

const ROOMS: [&str; 7] = [
    "stripe",
    "zoom",
    "mailchimp",
    "salesforce",
    "zendesk",
    "intercom",
    "example",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

#[test]
fn shared_modules_name_no_api() {
    let mut names: Vec<String> = Vec::new();
    for room in ROOMS {
        names.push(format!("crate::{room}"));
        names.push(format!("{room}::"));
        let mut camel = room.to_string();
        camel[..1].make_ascii_uppercase();
        names.push(format!("{camel}State"));
    }
    for shared in [
        "server.rs",
        "control.rs",
        "faults.rs",
        "room.rs",
        "state.rs",
    ] {
        let text = std::fs::read_to_string(src().join(shared)).unwrap();
        for name in &names {
            assert!(!text.contains(name.as_str()), "src/{shared} names `{name}`");
        }
    }
}

#[test]
fn rooms_import_only_the_kernel() {
    let mut checked = 0;
    for room in ROOMS {
        let dir = src().join(room);
        assert!(dir.is_dir(), "no room folder src/{room}/");
        for file in rust_files(&dir) {
            let text = std::fs::read_to_string(&file).unwrap();
            for shared in ["crate::control", "crate::faults", "crate::server"] {
                assert!(
                    !text.contains(shared),
                    "{} imports `{shared}`",
                    file.display()
                );
            }
            for other in ROOMS.iter().filter(|r| **r != room) {
                assert!(
                    !text.contains(&format!("crate::{other}")),
                    "{} imports the {other} room",
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} room files found");
}
