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
use crate::control::{self, Control, Shared};
use crate::error::SandboxError;
use crate::faults::{self, ApiCtx};
use crate::intercom::{self, IntercomState};
use crate::mailchimp::{self, MailchimpState};
use crate::salesforce::{self, SalesforceState};
use crate::state::{ApiState, Clock};
use crate::stripe::{self, StripeState};
use crate::zendesk::{self, ZendeskState};
use crate::zoom::{self, ZoomState};

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
        let stripe_api = Arc::new(ApiState::new(
            Api::Stripe,
            config.seed,
            config.faults.clone(),
            config.rate_limits,
            stripe::documented_rate_limit(&config.api_key),
        ));
        let stripe_state = Arc::new(StripeState::new(
            config.seed,
            config.size,
            config.api_key.clone(),
            clock.clone(),
            stripe_api.clone(),
        ));
        // Zoom limits per category and Mailchimp per open connection, inside
        // their own simulators: the fault layer's per-second window is off
        // for them unless a custom per-second limit is set.
        let zoom_api = Arc::new(ApiState::new(
            Api::Zoom,
            config.seed,
            config.faults.clone(),
            config.rate_limits,
            u32::MAX,
        ));
        let zoom_state = Arc::new(ZoomState::new(
            config.seed,
            config.size,
            zoom::Credentials {
                account_id: config.zoom_account_id.clone(),
                client_id: config.zoom_client_id.clone(),
                client_secret: config.zoom_client_secret.clone(),
            },
            clock.clone(),
            zoom_api.clone(),
        ));
        let mailchimp_api = Arc::new(ApiState::new(
            Api::Mailchimp,
            config.seed,
            config.faults.clone(),
            config.rate_limits,
            u32::MAX,
        ));
        let mailchimp_state = Arc::new(MailchimpState::new(
            config.seed,
            config.mailchimp_api_key.clone(),
            config.mailchimp_members,
            clock.clone(),
            mailchimp_api.clone(),
        ));
        let salesforce_api = Arc::new(ApiState::new(
            Api::Salesforce,
            config.seed,
            config.faults.clone(),
            config.rate_limits,
            salesforce::DOCUMENTED_RATE_LIMIT,
        ));
        let salesforce_state = Arc::new(SalesforceState::new(
            config.seed,
            config.size,
            salesforce::SalesforceAuth {
                client_id: config.salesforce_client_id.clone(),
                client_secret: config.salesforce_client_secret.clone(),
                refresh_token: config.salesforce_refresh_token.clone(),
                username: config.salesforce_username.clone(),
            },
            config.salesforce_daily_api_requests,
            clock.clone(),
            salesforce_api.clone(),
        ));
        // Zendesk (per minute) and Intercom (per 10 s) enforce their own
        // windows when the documented limit is on.
        let zendesk_api = Arc::new(ApiState::new(
            Api::Zendesk,
            config.seed,
            config.faults.clone(),
            config.rate_limits,
            u32::MAX,
        ));
        let zendesk_state = Arc::new(ZendeskState::new(
            config.seed,
            config.size,
            (&config.zendesk_email, &config.zendesk_token),
            config.zendesk_requests_per_min,
            clock.clone(),
            zendesk_api.clone(),
        ));
        let intercom_api = Arc::new(ApiState::new(
            Api::Intercom,
            config.seed,
            config.faults.clone(),
            config.rate_limits,
            u32::MAX,
        ));
        let intercom_state = Arc::new(IntercomState::new(
            config.seed,
            config.size,
            config.intercom_token.clone(),
            config.intercom_requests_per_min,
            clock.clone(),
            intercom_api.clone(),
        ));
        let control = Control {
            shared: Arc::new(Shared {
                zendesk_api: zendesk_api.clone(),
                zendesk: zendesk_state.clone(),
                intercom_api: intercom_api.clone(),
                intercom: intercom_state.clone(),
                clock: clock.clone(),
                stripe_api: stripe_api.clone(),
                stripe: stripe_state.clone(),
                zoom_api: zoom_api.clone(),
                zoom: zoom_state.clone(),
                mailchimp_api: mailchimp_api.clone(),
                mailchimp: mailchimp_state.clone(),
                salesforce_api: salesforce_api.clone(),
                salesforce: salesforce_state.clone(),
            }),
        };
        let (stop, stop_rx) = watch::channel(false);
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for (k, api) in Api::ALL.into_iter().enumerate() {
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
            let vendor = match api {
                Api::Stripe => stripe::router(stripe_state.clone()).layer(
                    axum::middleware::from_fn_with_state(
                        ApiCtx {
                            state: stripe_api.clone(),
                            clock: clock.clone(),
                        },
                        faults::apply,
                    ),
                ),
                Api::Zoom => {
                    zoom::router(zoom_state.clone()).layer(axum::middleware::from_fn_with_state(
                        ApiCtx {
                            state: zoom_api.clone(),
                            clock: clock.clone(),
                        },
                        faults::apply,
                    ))
                }
                Api::Mailchimp => mailchimp::router(mailchimp_state.clone())
                    .layer(axum::middleware::from_fn_with_state(
                        ApiCtx {
                            state: mailchimp_api.clone(),
                            clock: clock.clone(),
                        },
                        faults::apply,
                    ))
                    .layer(axum::middleware::from_fn_with_state(
                        mailchimp_state.clone(),
                        mailchimp::concurrency,
                    )),
                Api::Salesforce => salesforce::router(salesforce_state.clone()).layer(
                    axum::middleware::from_fn_with_state(
                        ApiCtx {
                            state: salesforce_api.clone(),
                            clock: clock.clone(),
                        },
                        faults::apply,
                    ),
                ),
                Api::Zendesk => zendesk::router(zendesk_state.clone()).layer(
                    axum::middleware::from_fn_with_state(
                        ApiCtx {
                            state: zendesk_api.clone(),
                            clock: clock.clone(),
                        },
                        faults::apply,
                    ),
                ),
                Api::Intercom => intercom::router(intercom_state.clone()).layer(
                    axum::middleware::from_fn_with_state(
                        ApiCtx {
                            state: intercom_api.clone(),
                            clock: clock.clone(),
                        },
                        faults::apply,
                    ),
                ),
            };
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
