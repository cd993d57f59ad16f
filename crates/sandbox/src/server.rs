//! Starting, addressing and stopping the sandbox's listeners.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Api, SandboxConfig};
use crate::control;
use crate::error::SandboxError;
use crate::faults::{self, FaultCtx};
use crate::room::Control;
use crate::state::Clock;

/// How long shutdown waits for open connections before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running sandbox: one listener per [`Api`], all on loopback.
pub struct Sandbox {
    control: Control,
    addrs: Vec<(Api, SocketAddr)>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sandbox {
    /// Starts every API on `127.0.0.1` with OS-chosen ports.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts the sandbox on `addr`: API `k` of [`Api::ALL`] listens on
    /// `addr.port() + k` (or on an OS-chosen port when `addr.port()` is 0).
    pub async fn start_on(
        addr: SocketAddr,
        config: SandboxConfig,
    ) -> Result<Sandbox, SandboxError> {
        let clock = Arc::new(Clock::new(config.clock_start));
        let control = Control::new(clock.clone(), crate::rooms(&config, clock.clone()));
        let (stop, stop_rx) = watch::channel(false);
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for (k, api) in Api::ALL.into_iter().enumerate() {
            let Some(room) = control.room_of(api).cloned() else {
                continue;
            };
            let port = if addr.port() == 0 {
                0
            } else {
                addr.port().saturating_add(k as u16)
            };
            let bind = SocketAddr::new(addr.ip(), port);
            let listener = TcpListener::bind(bind)
                .await
                .map_err(|source| SandboxError::Bind {
                    api,
                    addr: bind,
                    source,
                })?;
            let local = listener
                .local_addr()
                .map_err(|source| SandboxError::LocalAddr { api, source })?;
            let faulted = room
                .clone()
                .routes()
                .layer(axum::middleware::from_fn_with_state(
                    FaultCtx {
                        room: room.clone(),
                        clock: clock.clone(),
                    },
                    faults::apply,
                ));
            let vendor = room.clone().around_faults(faulted);
            let app: Router = control::router(control.clone()).merge(vendor);
            let mut rx = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                let shutdown = async move {
                    while !*rx.borrow() {
                        if rx.changed().await.is_err() {
                            break;
                        }
                    }
                };
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!(api = %api, error = %e, "sandbox listener failed");
                }
            }));
            addrs.push((api, local));
        }
        Ok(Sandbox {
            control,
            addrs,
            stop,
            tasks,
        })
    }

    /// Base URL of `api` (`http://127.0.0.1:PORT`; Stripe paths start with `/v1/`).
    pub fn base_url(&self, api: Api) -> String {
        self.addrs
            .iter()
            .find(|(a, _)| *a == api)
            .map(|(_, addr)| format!("http://{addr}"))
            .unwrap_or_default()
    }

    /// Every API with its base URL, in [`Api::ALL`] order (for printing).
    pub fn base_urls(&self) -> Vec<(Api, String)> {
        self.addrs
            .iter()
            .map(|(api, addr)| (*api, format!("http://{addr}")))
            .collect()
    }

    /// The control handle (same operations as `/__sandbox/`).
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Stops every listener, waiting briefly for open requests.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }

    /// Serves until `signal` completes, then shuts down.
    pub async fn serve_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

/// Runs a sandbox on `addr` until ctrl-c: what `weft sandbox` calls.
/// `on_ready` receives each API's base URL once every listener is bound.
pub async fn serve_forever(
    addr: SocketAddr,
    config: SandboxConfig,
    on_ready: impl FnOnce(&[(Api, String)]),
) -> Result<(), SandboxError> {
    let sandbox = Sandbox::start_on(addr, config).await?;
    on_ready(&sandbox.base_urls());
    let result = tokio::signal::ctrl_c()
        .await
        .map_err(|source| SandboxError::Signal { source });
    sandbox.shutdown().await;
    result
}
