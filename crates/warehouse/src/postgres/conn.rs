//! Connections: the URL (and its TLS), and a small pool of clients.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::pg;
use crate::WarehouseError;

/// Idle clients kept for reuse (more are opened when needed, then closed).
const MAX_IDLE: usize = 4;

/// How long a connection attempt may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Session settings every connection gets: timestamps as UTC and ISO text,
/// so JSON values and the sync row hashes do not depend on server defaults.
const SESSION: &str = "SET TIME ZONE 'UTC'; SET datestyle = 'ISO, MDY'; \
    SET intervalstyle = 'postgres'; SET extra_float_digits = 1";

/// Opens clients to one server and keeps a few idle ones.
pub(crate) struct Pool {
    config: Config,
    tls: Option<MakeRustlsConnect>,
    /// `postgres://user@host:port/db`: the URL without password, for errors.
    pub(crate) shown: String,
    idle: Mutex<Vec<Client>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("server", &self.shown)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Parses `url` (a `postgres://` URL or a `key=value` string).
    ///
    /// `sslmode=require` (and `verify-ca` / `verify-full`) connect with TLS
    /// (rustls), verifying the server's certificate against the system's
    /// roots and the Mozilla roots, or only against `sslrootcert=FILE` (PEM)
    /// when given; `disable` and `prefer` (the default) connect without TLS.
    pub(crate) fn new(url: &str) -> Result<Pool, WarehouseError> {
        let shown_raw = redact(url);
        let (url, root_cert, verify) = preprocess(url);
        let mut config = Config::from_str(&url).map_err(|e| WarehouseError::PostgresUrl {
            url: shown_raw.clone(),
            reason: super::with_causes(&e),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("weft");
        }
        let shown = shown(&config);
        let tls = if verify || config.get_ssl_mode() == SslMode::Require {
            if config.get_ssl_mode() != SslMode::Require {
                config.ssl_mode(SslMode::Require);
            }
            Some(
                tls(root_cert.as_deref()).map_err(|reason| WarehouseError::PostgresUrl {
                    url: shown.clone(),
                    reason,
                })?,
            )
        } else {
            None
        };
        Ok(Pool {
            config,
            tls,
            shown,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// An idle client, or a new connection.
    pub(crate) async fn get(&self) -> Result<Client, WarehouseError> {
        loop {
            let next = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match next {
                Some(client) if !client.is_closed() => return Ok(client),
                Some(_) => continue,
                None => break,
            }
        }
        self.connect().await
    }

    /// Gives a client back for reuse (closed ones and extras are dropped).
    pub(crate) fn put(&self, client: Client) {
        if client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(client);
        }
    }

    /// Opens a new connection (its I/O runs on a spawned task).
    pub(crate) async fn connect(&self) -> Result<Client, WarehouseError> {
        let client = match &self.tls {
            None => open(&self.config, NoTls, &self.shown).await?,
            Some(tls) => open(&self.config, tls.clone(), &self.shown).await?,
        };
        client
            .batch_execute(SESSION)
            .await
            .map_err(pg("set up session", &self.shown))?;
        Ok(client)
    }
}

async fn open<T>(config: &Config, tls: T, shown: &str) -> Result<Client, WarehouseError>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<Socket>>::Future: Send,
{
    let (client, connection) = config.connect(tls).await.map_err(pg("connect", shown))?;
    let server = shown.to_string();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%server, %error, "postgres connection ended");
        }
    });
    Ok(client)
}

/// The TLS connector: rustls with the default roots, or `root_cert` alone.
fn tls(root_cert: Option<&str>) -> Result<MakeRustlsConnect, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(Path::new(path))
                .map_err(|e| format!("sslrootcert `{path}`: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("sslrootcert `{path}`: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("sslrootcert `{path}`: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("sslrootcert `{path}` holds no certificate"));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system certificate rustls cannot parse is skipped.
                let _ = roots.add(cert);
            }
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Takes out of a URL what tokio-postgres does not parse: `sslrootcert`
/// (returned), and `sslmode=verify-ca|verify-full` (returned as `verify`,
/// the URL keeping `sslmode=require`). Other strings pass unchanged.
fn preprocess(url: &str) -> (String, Option<String>, bool) {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some(mut parsed) = is_url.then(|| url::Url::parse(url).ok()).flatten() else {
        return (url.to_string(), None, false);
    };
    let mut root_cert = None;
    let mut verify = false;
    let mut kept: Vec<(String, String)> = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match (k.as_ref(), v.as_ref()) {
            ("sslrootcert", "system") => {}
            ("sslrootcert", path) => root_cert = Some(path.to_string()),
            ("sslmode", "verify-ca" | "verify-full") => {
                verify = true;
                kept.push(("sslmode".to_string(), "require".to_string()));
            }
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    if root_cert.is_none() && !verify {
        return (url.to_string(), None, false);
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    (parsed.to_string(), root_cert, verify)
}

/// `postgres://user@host:port/db` of a parsed config (never the password).
fn shown(config: &Config) -> String {
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let db = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

/// A URL (or `key=value` string) without its password, for errors about
/// a string that did not parse.
pub(crate) fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{user}@{host}")
            }
            None => authority.to_string(),
        };
        let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
        let query: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty() && !p.to_ascii_lowercase().starts_with("password="))
            .collect();
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{}", query.join("&"))
        };
        return format!("{scheme}://{authority}{path}{query}");
    }
    // key=value form: drop the password pair (quoted values may hold spaces).
    let mut out = Vec::new();
    let mut rest = url.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').unwrap_or((rest, ""));
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('\'') {
            let mut end = quoted.len();
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            let value = &after[..(end + 2).min(after.len())];
            (value, &quoted[(end + 1).min(quoted.len())..])
        } else {
            after.split_once(char::is_whitespace).unwrap_or((after, ""))
        };
        let key = key.trim();
        if !key.eq_ignore_ascii_case("password") {
            out.push(format!("{key}={value}"));
        }
        rest = next.trim_start();
    }
    out.join(" ")
}
