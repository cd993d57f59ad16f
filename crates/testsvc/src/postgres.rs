//! A throwaway PostgreSQL server.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::Error;
use crate::process::{
    LOG_TAIL_LINES, account_ids, free_ports, is_executable, log_stdio, log_tail, path_dirs,
    ready_or_respawn, run, running_as_root, stop_child, tcp_accepts,
};

/// The oldest PostgreSQL major version accepted.
const MIN_MAJOR: u32 = 15;
/// Where Debian and Ubuntu install the server, one directory per major.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// How long [`Postgres::start`] waits for the server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Drop`] waits after the shutdown signal before `SIGKILL`.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The superuser that `initdb` creates (trust authentication, no password).
const USER: &str = "weft";
/// The database that [`Postgres::start`] creates.
const DEFAULT_DB: &str = "weft";
/// Environment variables that would redirect or alter the client tools'
/// connections despite the explicit `-h`/`-p`/`-U`/`-d` arguments.
const CLIENT_ENV_REMOVED: &[&str] = &[
    "PGHOSTADDR",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGSSLMODE",
    "PGREQUIRESSL",
    "PGGSSENCMODE",
    "PGTARGETSESSIONATTRS",
];

/// A real PostgreSQL server (version 15 or newer) running for the life of
/// this value, on `127.0.0.1` on a free port, in a fresh temporary data
/// directory.
///
/// The superuser is `weft` with trust authentication (no password) and a
/// database `weft` exists; [`Postgres::create_database`] adds more, so one
/// server can give every test its own database. Durability is switched off
/// (`fsync`, `synchronous_commit`, `full_page_writes`) for speed.
///
/// Dropping it shuts the server down (fast shutdown: `SIGINT`, then
/// `SIGKILL` after 10 s) and deletes the data directory.
#[derive(Debug)]
pub struct Postgres {
    child: Child,
    port: u16,
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    run_as: Option<(u32, u32)>,
    // Last field: removed after `Drop::drop` has stopped the server.
    dir: TempDir,
}

impl Postgres {
    /// Initialises a new cluster and starts a server on it, returning once
    /// it accepts connections and the database `weft` exists.
    ///
    /// The binaries are taken from the directory in `WEFT_PG_BIN` if that is
    /// set, else from the newest `/usr/lib/postgresql/<major>/bin` with a
    /// major of at least 15, else from `PATH`. `initdb` and `postgres` refuse
    /// to run as root, so when this process is root they run as the
    /// `postgres` account (which the Debian package creates) and the data
    /// directory is handed to it.
    ///
    /// Typically takes about a second; gives up after 30 s with
    /// [`Error::NotReady`].
    pub fn start() -> Result<Postgres, Error> {
        let bin = find_bin_dir()?;
        let run_as = if running_as_root() {
            Some(account_ids("postgres").map_err(|e| Error::CommandFailed {
                command: "id postgres".to_owned(),
                status: "needed to drop root".to_owned(),
                stderr: format!(
                    "running as root, so PostgreSQL must run as the `postgres` account, \
                     which was not found ({e}); `apt-get install -y postgresql` creates it"
                ),
            })?)
        } else {
            None
        };
        // When the server runs as `postgres`, every parent directory must be
        // traversable by it: /tmp is, a root-only TMPDIR may not be.
        let parent = if run_as.is_some() && Path::new("/tmp").is_dir() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("weft-pg-")
            .tempdir_in(&parent)
            .map_err(|e| Error::io(format!("creating a temp dir in {}", parent.display()), e))?;
        let data = dir.path().join("data");
        let socket_dir = dir.path().join("socket");
        std::fs::create_dir(&socket_dir)
            .map_err(|e| Error::io(format!("creating {}", socket_dir.display()), e))?;
        if let Some((uid, gid)) = run_as {
            for path in [dir.path(), socket_dir.as_path()] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .map_err(|e| Error::io(format!("chown postgres {}", path.display()), e))?;
            }
        }

        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", USER, "--no-sync", "-E", "UTF8"])
            .arg("--locale=C")
            .current_dir(dir.path());
        as_user(&mut initdb, run_as);
        run(&mut initdb)?;

        let log = dir.path().join("postgres.log");
        let port = pick_port()?;
        let child = spawn_server(&bin, &data, &socket_dir, &log, port, run_as, dir.path())?;
        let mut pg = Postgres {
            child,
            port,
            bin,
            data,
            socket_dir,
            log,
            run_as,
            dir,
        };
        ready_or_respawn(
            &mut pg,
            Postgres::wait_ready,
            |pg| port_was_taken(&pg.log),
            |pg| {
                pg.port = pick_port()?;
                pg.child = spawn_server(
                    &pg.bin,
                    &pg.data,
                    &pg.socket_dir,
                    &pg.log,
                    pg.port,
                    pg.run_as,
                    pg.dir.path(),
                )?;
                Ok(())
            },
        )?;
        pg.createdb(DEFAULT_DB)?;
        Ok(pg)
    }

    /// The connection URL of the database `weft`:
    /// `postgres://weft@127.0.0.1:PORT/weft` (no password needed).
    pub fn url(&self) -> String {
        self.database_url(DEFAULT_DB)
    }

    /// The TCP port the server listens on (on 127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the server (the postmaster; its backends are its
    /// children), e.g. to read its CPU time from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding `initdb`, `postgres`, `psql`, `pg_dump` and the
    /// other PostgreSQL programs this server was started with.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// Creates a new, empty database `name` and returns its connection URL,
    /// `postgres://weft@127.0.0.1:PORT/NAME`.
    ///
    /// `name` must be a plain identifier (ASCII letters, digits and `_`, not
    /// starting with a digit, at most 63 bytes), so it never needs quoting;
    /// anything else is [`Error::InvalidArgument`]. A name that already
    /// exists is [`Error::CommandFailed`].
    pub fn create_database(&self, name: &str) -> Result<String, Error> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(Error::InvalidArgument(format!(
                "database name {name:?}: use ASCII letters, digits and `_`, \
                 not starting with a digit, at most 63 bytes"
            )));
        }
        self.createdb(name)?;
        Ok(self.database_url(name))
    }

    /// Runs `sql` in database `db` with
    /// `psql -X -A -t -q -v ON_ERROR_STOP=1 -c SQL` and returns its standard
    /// output without the trailing newline: unaligned, tuples only, columns
    /// separated by `|`, one row per line (so `SELECT 1+1` gives `"2"`).
    ///
    /// Several `;`-separated statements are sent as one query string. An SQL
    /// error is [`Error::CommandFailed`] carrying psql's message.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, Error> {
        let mut cmd = self.client("psql");
        cmd.args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            db,
            "-c",
            sql,
        ]);
        let out = run(&mut cmd)?;
        Ok(out.strip_suffix('\n').unwrap_or(&out).to_owned())
    }

    fn database_url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    fn createdb(&self, name: &str) -> Result<(), Error> {
        let mut cmd = self.client("createdb");
        cmd.arg(name);
        run(&mut cmd).map(drop)
    }

    /// A client program from the server's bin dir, aimed at this server.
    fn client(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER]);
        for var in CLIENT_ENV_REMOVED {
            cmd.env_remove(var);
        }
        cmd.env("PGCONNECT_TIMEOUT", "10");
        cmd
    }

    /// Waits until the server accepts TCP connections and `pg_isready`
    /// agrees, or it exits, or [`READY_TIMEOUT`] passes.
    fn wait_ready(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        let mut detail;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::ServerExited {
                    service: "postgres",
                    status: status.to_string(),
                    log_tail: log_tail(&self.log, LOG_TAIL_LINES),
                });
            }
            if !tcp_accepts(self.port) {
                detail = format!("nothing accepts TCP connections on 127.0.0.1:{}", self.port);
            } else {
                let mut cmd = self.client("pg_isready");
                cmd.args(["-d", "postgres", "-t", "2"]);
                match run(&mut cmd) {
                    Ok(_) => return Ok(()),
                    Err(e) => detail = e.to_string(),
                }
            }
            if started.elapsed() >= READY_TIMEOUT {
                return Err(Error::NotReady {
                    service: "postgres",
                    waited: started.elapsed(),
                    detail,
                    log_tail: log_tail(&self.log, LOG_TAIL_LINES),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Postgres {
    /// Fast shutdown (`SIGINT`: disconnects clients and rolls back open
    /// transactions; `SIGTERM` would wait for every client to leave), then
    /// `SIGKILL` if it has not exited after 10 s. The data directory is
    /// deleted afterwards.
    fn drop(&mut self) {
        stop_child(&mut self.child, "INT", STOP_GRACE);
    }
}

/// Makes `cmd` run as `uid:gid` (supplementary groups are dropped by std
/// when switching away from root), if given.
fn as_user(cmd: &mut Command, run_as: Option<(u32, u32)>) {
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
    }
}

fn pick_port() -> Result<u16, Error> {
    free_ports(1)?.first().copied().ok_or_else(|| {
        Error::io(
            "picking a free port",
            std::io::Error::other("no port returned"),
        )
    })
}

fn spawn_server(
    bin: &Path,
    data: &Path,
    socket_dir: &Path,
    log: &Path,
    port: u16,
    run_as: Option<(u32, u32)>,
    cwd: &Path,
) -> Result<Child, Error> {
    let (stdout, stderr) = log_stdio(log)?;
    let mut cmd = Command::new(bin.join("postgres"));
    cmd.arg("-D")
        .arg(data)
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(socket_dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    as_user(&mut cmd, run_as);
    cmd.spawn()
        .map_err(|e| Error::io(format!("starting {}", crate::process::describe(&cmd)), e))
}

/// Whether the server's log says its port was in use.
fn port_was_taken(log: &Path) -> bool {
    let tail = log_tail(log, LOG_TAIL_LINES).to_ascii_lowercase();
    tail.contains("address already in use") || tail.contains("could not create any tcp/ip sockets")
}

/// Finds the directory of a PostgreSQL >= 15 installation.
fn find_bin_dir() -> Result<PathBuf, Error> {
    let mut searched = Vec::new();
    if let Some(dir) = std::env::var_os("WEFT_PG_BIN") {
        let dir = PathBuf::from(dir);
        searched.push(dir.join("initdb"));
        if usable(&dir) {
            return Ok(dir);
        }
        // An explicit choice that does not work is an error, not a hint to
        // look elsewhere.
        return Err(not_found(searched));
    }

    let mut majors: Vec<u32> = std::fs::read_dir(DEBIAN_ROOT)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .collect()
        })
        .unwrap_or_default();
    majors.sort_unstable_by(|a, b| b.cmp(a));
    if majors.is_empty() {
        searched.push(PathBuf::from(format!("{DEBIAN_ROOT}/*/bin/initdb")));
    }
    for major in majors {
        let dir = PathBuf::from(format!("{DEBIAN_ROOT}/{major}/bin"));
        searched.push(dir.join("initdb"));
        if major >= MIN_MAJOR && usable(&dir) {
            return Ok(dir);
        }
    }

    let mut on_path = false;
    for dir in path_dirs() {
        let initdb = dir.join("initdb");
        if initdb.exists() {
            on_path = true;
            searched.push(initdb);
            if usable(&dir) {
                return Ok(dir);
            }
        }
    }
    if !on_path {
        searched.push(PathBuf::from("initdb on $PATH"));
    }
    Err(not_found(searched))
}

/// Whether `dir` holds the programs needed, from PostgreSQL >= 15.
fn usable(dir: &Path) -> bool {
    let programs = ["initdb", "postgres", "psql", "pg_isready", "createdb"];
    if !programs.iter().all(|p| is_executable(&dir.join(p))) {
        return false;
    }
    server_major(&dir.join("postgres")).is_some_and(|major| major >= MIN_MAJOR)
}

/// The major version printed by `postgres --version`, e.g. 15 from
/// `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
fn server_major(postgres: &Path) -> Option<u32> {
    let out = run(Command::new(postgres).arg("--version")).ok()?;
    let version = out.split(')').nth(1)?.split_whitespace().next()?;
    version
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn not_found(searched: Vec<PathBuf>) -> Error {
    Error::BinaryNotFound {
        binary: "PostgreSQL >= 15 (initdb, postgres, psql, pg_isready, createdb)",
        searched,
        install_hint: "apt-get install -y postgresql",
    }
}
