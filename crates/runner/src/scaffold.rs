//! `weft new connector NAME`: a new connector crate, copied from the
//! template (`connectors/template`, which the workspace builds and tests)
//! with its names changed to NAME.
//!
//! The copy's own names change (`weft-template` -> `weft-NAME`,
//! `TemplateSource` -> `NameSource`, `specs/template.toml` ->
//! `specs/NAME.toml`, ...); its tests keep reading the sandbox's example API
//! (`Api::Example`) until a room of the new API replaces it, so the new crate
//! builds and passes its tests the moment it is added to the workspace.

use std::path::{Path, PathBuf};

use crate::RunnerError;

/// The template's files: path inside the connector crate (or `specs/` for
/// the catalog), and text.
const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../connectors/template/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../connectors/template/src/lib.rs"),
    ),
    (
        "src/config.rs",
        include_str!("../../../connectors/template/src/config.rs"),
    ),
    (
        "src/client.rs",
        include_str!("../../../connectors/template/src/client.rs"),
    ),
    (
        "src/source.rs",
        include_str!("../../../connectors/template/src/source.rs"),
    ),
    (
        "src/error.rs",
        include_str!("../../../connectors/template/src/error.rs"),
    ),
    (
        "tests/requests.rs",
        include_str!("../../../connectors/template/tests/requests.rs"),
    ),
    (
        "tests/conformance.rs",
        include_str!("../../../connectors/template/tests/conformance.rs"),
    ),
];

/// The template's stream catalog.
const CATALOG: &str = include_str!("../../../specs/template.toml");

/// What `weft new connector` wrote.
#[derive(Debug)]
pub struct NewConnector {
    /// The crate's directory (`connectors/NAME`).
    pub crate_dir: PathBuf,
    /// The catalog (`specs/NAME.toml`).
    pub catalog: PathBuf,
    /// Every file written.
    pub files: Vec<PathBuf>,
}

impl NewConnector {
    /// What to do next, for the terminal.
    pub fn next_steps(&self, name: &str) -> String {
        format!(
            "wrote {} files: {} and {}\n\nnext:\n  \
             1. add \"connectors/{name}\" to [workspace] members and\n     \
             weft-{name} = {{ path = \"connectors/{name}\" }} to [workspace.dependencies] in Cargo.toml\n  \
             2. cargo test -p weft-{name}   (it reads the sandbox's example API until step 4)\n  \
             3. declare your streams in specs/{name}.toml; read them in src/source.rs\n  \
             4. simulate your API: a room in crates/sandbox/src/ (copy example/), then point\n     \
             tests/conformance.rs at it\n  \
             5. register the connector in crates/runner/src/connectors.rs\n\
             docs/connectors.md walks through each step.\n",
            self.files.len(),
            self.crate_dir.display(),
            self.catalog.display(),
        )
    }
}

/// The template's text with its names changed to `name` (a lowercase Rust
/// identifier): `template` -> `name`, `Template` -> `Name`, `TEMPLATE` -> `NAME`.
pub fn rename(text: &str, name: &str) -> String {
    let camel: String = name
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    text.replace("template", name)
        .replace("Template", &camel)
        .replace("TEMPLATE", &name.to_ascii_uppercase())
}

/// Checks `name`: lowercase ASCII letters, digits and `_`, starting with a
/// letter, and not a connector weft already has.
fn check_name(name: &str) -> Result<(), RunnerError> {
    let bad = |reason: &str| {
        Err(RunnerError::NewConnector {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_lowercase()) {
        return bad("must start with a lowercase letter (a-z)");
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return bad("may hold only lowercase letters, digits and `_`");
    }
    if name.ends_with('_') || name.contains("__") {
        return bad("may not end with `_` or hold `__`");
    }
    if name == "template" || crate::CONNECTORS.contains(&name) {
        return bad("is a connector weft already has");
    }
    Ok(())
}

/// Writes connector `name` under the workspace at `root`:
/// `connectors/NAME/` and `specs/NAME.toml`. Refuses to overwrite either.
pub fn new_connector(root: &Path, name: &str) -> Result<NewConnector, RunnerError> {
    check_name(name)?;
    let crate_dir = root.join("connectors").join(name);
    let catalog = root.join("specs").join(format!("{name}.toml"));
    for path in [&crate_dir, &catalog] {
        if path.exists() {
            return Err(RunnerError::NewConnector {
                name: name.to_string(),
                reason: format!("{} already exists; nothing was written", path.display()),
            });
        }
    }
    let mut files = Vec::with_capacity(FILES.len() + 1);
    let mut write = |path: PathBuf, text: &str| -> Result<(), RunnerError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| RunnerError::Io {
                what: "creating",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, rename(text, name)).map_err(|source| RunnerError::Io {
            what: "writing",
            path: path.clone(),
            source,
        })?;
        files.push(path);
        Ok(())
    };
    for (file, text) in FILES {
        write(crate_dir.join(file), text)?;
    }
    write(catalog.clone(), CATALOG)?;
    Ok(NewConnector {
        crate_dir,
        catalog,
        files,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_change_in_every_case() {
        assert_eq!(
            rename(
                "weft-template TemplateSource TEMPLATE_KEY weft_template",
                "help_desk"
            ),
            "weft-help_desk HelpDeskSource HELP_DESK_KEY weft_help_desk"
        );
        // The sandbox's example API is left alone.
        assert_eq!(rename("Api::Example", "acme"), "Api::Example");
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        for (name, reason) in [
            ("Acme", "lowercase letter"),
            ("1acme", "lowercase letter"),
            ("ac-me", "only lowercase"),
            ("acme_", "may not end"),
            ("stripe", "already has"),
            ("template", "already has"),
        ] {
            let err = check_name(name).unwrap_err().to_string();
            assert!(err.contains(reason), "{name}: {err}");
        }
        check_name("acme_crm2").unwrap();
    }
}
