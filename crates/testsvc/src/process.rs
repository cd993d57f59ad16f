//! Helpers shared by the services: running commands, picking ports,
//! probing sockets, stopping children and reading logs.

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Error;

/// How many lines of a server log an error carries.
pub(crate) const LOG_TAIL_LINES: usize = 30;

/// How many times a server is started when the ports it was given were
/// taken meanwhile (by another process, between picking and binding).
const PORT_ATTEMPTS: usize = 3;

/// Waits until `server` is ready; while it exits because a port was taken
/// (`port_taken`), starts it again on fresh ports (`respawn`), up to
/// [`PORT_ATTEMPTS`] starts in all.
pub(crate) fn ready_or_respawn<S>(
    server: &mut S,
    wait_ready: impl Fn(&mut S) -> Result<(), Error>,
    port_taken: impl Fn(&S) -> bool,
    respawn: impl Fn(&mut S) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut attempt = 1;
    loop {
        match wait_ready(server) {
            Err(Error::ServerExited { .. }) if attempt < PORT_ATTEMPTS && port_taken(server) => {
                attempt += 1;
                respawn(server)?;
            }
            done => return done,
        }
    }
}

/// The command line of `cmd`, for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut out = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}

/// Runs `cmd` to completion and returns its standard output, or
/// [`Error::CommandFailed`] with its standard error if it exits non-zero.
pub(crate) fn run(cmd: &mut Command) -> Result<String, Error> {
    let line = describe(cmd);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("running `{line}`"), e))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Err(Error::CommandFailed {
        command: line,
        status: output.status.to_string(),
        stderr: if stderr.is_empty() {
            stdout.trim().to_owned()
        } else {
            stderr
        },
    })
}

/// Whether this process runs as root (`id -u` prints `0`). If `id` cannot
/// run, assumes not.
pub(crate) fn running_as_root() -> bool {
    run(Command::new("id").arg("-u")).is_ok_and(|out| out.trim() == "0")
}

/// The numeric user and group ids of the account `user`.
pub(crate) fn account_ids(user: &str) -> Result<(u32, u32), Error> {
    let parse = |flag: &str| -> Result<u32, Error> {
        let out = run(Command::new("id").arg(flag).arg(user))?;
        out.trim().parse::<u32>().map_err(|_| Error::CommandFailed {
            command: format!("id {flag} {user}"),
            status: "exit status: 0".to_owned(),
            stderr: format!("unexpected output {out:?}"),
        })
    };
    Ok((parse("-u")?, parse("-g")?))
}

/// `n` distinct TCP ports that were free on 127.0.0.1 a moment ago. All
/// listeners are held until every port is chosen, so the ports differ.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>, Error> {
    let mut held = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| Error::io("binding 127.0.0.1:0 to find a free port", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("reading a bound port", e))?
            .port();
        ports.push(port);
        held.push(listener);
    }
    Ok(ports)
}

/// A free port `p` such that `p + offset` is free too, and neither is in
/// `avoid`.
pub(crate) fn free_port_pair(offset: u16, avoid: &[u16]) -> Result<(u16, u16), Error> {
    for _ in 0..200 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| Error::io("binding 127.0.0.1:0 to find a free port", e))?;
        let port = first
            .local_addr()
            .map_err(|e| Error::io("reading a bound port", e))?
            .port();
        let Some(second) = port.checked_add(offset) else {
            continue;
        };
        if avoid.contains(&port) || avoid.contains(&second) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, second)).is_ok() {
            return Ok((port, second));
        }
    }
    Err(Error::io(
        format!("finding a free port p with p+{offset} also free"),
        std::io::Error::new(std::io::ErrorKind::AddrInUse, "no such pair found"),
    ))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) fn tcp_accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok()
}

/// A minimal HTTP/1.1 GET to 127.0.0.1:`port`; returns the status code and
/// the body (headers dropped).
pub(crate) fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.set_write_timeout(Some(Duration::from_secs(3)))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\
         User-Agent: weft-testsvc\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP response: {:?}", text.lines().next()),
            )
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Whether `path` is a regular file with an execute bit.
pub(crate) fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Every directory on `PATH`, in order.
pub(crate) fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

/// The last `n` lines of the file at `path` (or a note that it can't be read).
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            lines[start..].join("\n")
        }
        Err(e) => format!("(log {} unreadable: {e})", path.display()),
    }
}

/// Opens `path` as a fresh log file and returns it twice, for a child's
/// standard output and standard error.
pub(crate) fn log_stdio(path: &Path) -> Result<(Stdio, Stdio), Error> {
    let file =
        File::create(path).map_err(|e| Error::io(format!("creating log {}", path.display()), e))?;
    let second = file
        .try_clone()
        .map_err(|e| Error::io(format!("duplicating log {}", path.display()), e))?;
    Ok((Stdio::from(file), Stdio::from(second)))
}

/// A string of `len` characters from `alphabet`, unpredictable enough for
/// throwaway test credentials: std's randomly keyed hasher mixed with the
/// clock, the process id and a counter. Not for real secrets.
pub(crate) fn random_token(len: usize, alphabet: &[u8]) -> String {
    let state = RandomState::new();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut out = String::with_capacity(len);
    let mut counter: u64 = 0;
    while out.len() < len {
        let mut hasher = state.build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        hasher.write_u64(counter);
        counter += 1;
        let mut word = hasher.finish();
        for _ in 0..8 {
            if out.len() == len || alphabet.is_empty() {
                break;
            }
            let index = usize::try_from(word % alphabet.len() as u64).unwrap_or(0);
            out.push(char::from(alphabet[index]));
            word /= alphabet.len() as u64;
        }
        if alphabet.is_empty() {
            break;
        }
    }
    out
}

/// Asks `child` to stop with `signal` (a `kill` signal name such as `TERM`),
/// waits up to `grace` for it to exit, then kills it with `SIGKILL` and
/// reaps it. Never blocks for longer than `grace` plus the reap.
pub(crate) fn stop_child(child: &mut Child, signal: &str, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = child.id().to_string();
    let asked = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(&pid)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if asked {
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
