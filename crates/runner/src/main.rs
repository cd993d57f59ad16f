//! `weft`: run ELT pipelines from `weft.toml`, inspect state, replay loads, demo.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use weft_core::CancellationToken;
use weft_runner::{Progress, RunOptions, WeftConfig};

/// weft: a native Rust ELT connector engine.
#[derive(Parser)]
#[command(name = "weft", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `weft sync` does besides sending changes.
#[derive(Subcommand)]
enum SyncCommand {
    /// Undo one sync run at its destination: restore the values its updates
    /// replaced, delete what it created, create again what it deleted
    /// (records changed since by a later run are left as they are).
    Rollback {
        /// Config file.
        #[arg(long, short, default_value = "weft.toml")]
        config: PathBuf,
        /// The sync.
        #[arg(long)]
        sync: String,
        /// The run to undo: the `run` a sync's report ends with (also
        /// `run_id` in `_weft._weft_sync_log`).
        #[arg(long)]
        run: String,
        /// List what would be sent and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run pipelines: extract, stage as Parquet, load into the warehouse.
    Run {
        /// Config file.
        #[arg(long, short, default_value = "weft.toml")]
        config: PathBuf,
        /// Only this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// Ignore saved cursors and read everything again (rows still merge by key).
        #[arg(long)]
        full_refresh: bool,
        /// Print the run report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run each scheduled job at its times until SIGTERM or Ctrl-C.
    Serve {
        /// Config file.
        #[arg(long, short, default_value = "weft.toml")]
        config: PathBuf,
        /// Serve Prometheus metrics, /healthz and /readyz on this address
        /// (e.g. 127.0.0.1:9464; overrides `[runner] metrics`).
        #[arg(long)]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Run the SQL models, then send model rows out to SaaS tools (reverse sync).
    Sync {
        /// `rollback`: undo one sync run instead.
        #[command(subcommand)]
        action: Option<SyncCommand>,
        /// Config file.
        #[arg(long, short, default_value = "weft.toml")]
        config: PathBuf,
        /// Only this sync.
        #[arg(long)]
        sync: Option<String>,
        /// Print the plan (counts and samples per action) and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a connector's streams: keys, cursor, columns.
    Discover {
        /// Connector name.
        connector: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check credentials and connectivity of each pipeline.
    Check {
        /// Config file.
        #[arg(long, short, default_value = "weft.toml")]
        config: PathBuf,
        /// Only this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// Also check the freshness of every stream with a `freshness_sla`:
        /// one `fresh PIPELINE.STREAM` line each; exits 1 when any is stale.
        #[arg(long)]
        quality: bool,
    },
    /// Show or reset saved cursors.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// Re-load staged Parquet into the warehouse without calling the API.
    Replay {
        /// Config file.
        #[arg(long, short, default_value = "weft.toml")]
        config: PathBuf,
        /// Pipeline name.
        #[arg(long)]
        pipeline: String,
        /// Stream name.
        #[arg(long)]
        stream: String,
        /// One load id (default: every staged load of the stream, in order).
        #[arg(long)]
        load_id: Option<String>,
    },
    /// List recent runs (newest first) from the warehouse's run history.
    Runs {
        /// Config file.
        #[arg(long, short, default_value = "weft.toml")]
        config: PathBuf,
        /// Only this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run one SQL statement in the configured warehouse and print the result.
    Query {
        /// Config file.
        #[arg(long, short, default_value = "weft.toml")]
        config: PathBuf,
        /// The statement, e.g. "SELECT * FROM models.people LIMIT 10".
        sql: String,
        /// Print columns and rows as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the offline demo: the built-in sandbox into DuckDB under DIR
    /// (or into PostgreSQL with --postgres-url-env).
    Demo {
        /// Where the DuckDB file, the stage and the generated config go.
        #[arg(long, default_value = ".weft-demo")]
        dir: PathBuf,
        /// Sandbox size (customers).
        #[arg(long, default_value_t = 250)]
        size: usize,
        /// Load into PostgreSQL instead of DuckDB: the environment variable
        /// holding its URL (e.g. WEFT_PG_URL; the URL is never written to disk).
        #[arg(long, value_name = "VAR")]
        postgres_url_env: Option<String>,
    },
    /// Write a new crate from a template (`weft new connector NAME`).
    New {
        #[command(subcommand)]
        what: NewWhat,
    },
    /// Serve the sandbox APIs on loopback until Ctrl-C.
    Sandbox {
        /// Port (0 = any free port).
        #[arg(long, default_value_t = 12111)]
        port: u16,
        /// Data seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Size (customers).
        #[arg(long, default_value_t = 1000)]
        size: usize,
        /// Turn the documented rate limits off (benchmarks).
        #[arg(long)]
        no_rate_limits: bool,
    },
}

#[derive(Subcommand)]
enum NewWhat {
    /// A connector crate copied from connectors/template, named NAME:
    /// connectors/NAME/ and specs/NAME.toml under the workspace root.
    Connector {
        /// Connector name: lowercase letters, digits and `_` (e.g. `acme_crm`).
        name: String,
        /// The workspace root to write into.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum StateAction {
    /// Print every saved cursor.
    Show {
        /// Config file.
        #[arg(long, short, default_value = "weft.toml")]
        config: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget saved cursors so the next run starts over.
    Reset {
        /// Config file.
        #[arg(long, short, default_value = "weft.toml")]
        config: PathBuf,
        /// Pipeline name.
        #[arg(long)]
        pipeline: String,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
    },
}

/// Logs go to stderr: compact warnings on a terminal, JSON lines at `info`
/// otherwise, `WEFT_LOG` overriding the level. `weft demo` with stderr not a
/// terminal and no `WEFT_LOG` writes them to `log_file` instead, so its
/// summary reads cleanly; returns where they went when it was a file.
fn init_logging(log_file: Option<PathBuf>) -> Option<PathBuf> {
    let terminal = std::io::stderr().is_terminal();
    let level = EnvFilter::try_from_env("WEFT_LOG");
    let to_file = if terminal || level.is_ok() {
        None
    } else {
        log_file.and_then(|path| {
            let dir = path.parent()?;
            std::fs::create_dir_all(dir).ok()?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .ok()?;
            Some((path, file))
        })
    };
    let filter = level.unwrap_or_else(|_| EnvFilter::new(if terminal { "warn" } else { "info" }));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match to_file {
        Some((path, file)) => {
            builder
                .json()
                .with_writer(std::sync::Mutex::new(file))
                .init();
            return Some(path);
        }
        None if terminal => builder.compact().with_writer(std::io::stderr).init(),
        None => builder.json().with_writer(std::io::stderr).init(),
    }
    None
}

fn cancel_on_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: stopping; committed loads and cursors are kept");
            t.cancel();
        }
    });
    token
}

/// Cancelled on SIGTERM or SIGINT (Ctrl-C): what `weft serve` stops on.
fn stop_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("stopping: no new jobs; running ones stop at their next checkpoint");
        t.cancel();
    });
    token
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let demo_log = match &cli.command {
        Command::Demo { dir, .. } => Some(dir.join("weft.log")),
        _ => None,
    };
    let log = init_logging(demo_log);
    match run(cli, log).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli, log: Option<PathBuf>) -> Result<ExitCode, weft_runner::RunnerError> {
    match cli.command {
        Command::Run {
            config,
            pipeline,
            full_refresh,
            json,
        } => {
            let config = WeftConfig::load(&config)?;
            let progress = (std::io::stderr().is_terminal() && !json).then(Progress::new);
            let outcome = weft_runner::run(
                &config,
                &RunOptions {
                    pipeline,
                    full_refresh,
                },
                cancel_on_ctrl_c(),
                progress,
            )
            .await?;
            print_outcome(&outcome, json);
            Ok(exit_code(outcome.succeeded()))
        }
        Command::Serve { config, metrics } => {
            let config = WeftConfig::load(&config)?;
            let server =
                weft_runner::Server::start(&config, weft_runner::ServeOptions { metrics }).await?;
            let jobs = config.jobs().unwrap_or_default();
            for job in &jobs {
                println!("job    {:<32} {}", job.name, job.schedule.expression());
            }
            if let Some(addr) = server.metrics_addr() {
                println!("metrics on http://{addr}/metrics");
            }
            let summary = server.run_until(stop_on_signal()).await;
            print!("{}", summary.render());
            Ok(exit_code(summary.stopped_in_grace))
        }
        Command::Sync {
            action:
                Some(SyncCommand::Rollback {
                    config,
                    sync,
                    run,
                    dry_run,
                    json,
                }),
            ..
        } => {
            let config = WeftConfig::load(&config)?;
            let report = weft_runner::rollback_sync(&config, &sync, &run, dry_run).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", weft_runner::render_rollback(&report));
            }
            Ok(exit_code(report.rejected == 0))
        }
        Command::Sync {
            action: None,
            config,
            sync,
            dry_run,
            json,
        } => {
            let config = WeftConfig::load(&config)?;
            let outcome = weft_runner::sync(&config, sync.as_deref(), dry_run).await?;
            print_outcome(&outcome, json);
            Ok(exit_code(outcome.succeeded()))
        }
        Command::Discover { connector, json } => {
            let catalog = weft_runner::catalog(&connector)?;
            if json {
                let streams: Vec<_> = catalog
                    .streams
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.spec.name,
                            "description": s.spec.description,
                            "endpoint": s.endpoint,
                            "primary_key": s.spec.primary_key,
                            "cursor": s.spec.cursor_field,
                            "sync_modes": s.spec.sync_modes,
                            "write_disposition": s.spec.write_disposition,
                            "columns": s.fields.iter().map(|f| serde_json::json!({
                                "name": f.name, "type": f.field_type, "doc": f.doc,
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&streams).unwrap_or_default()
                );
            } else {
                for s in &catalog.streams {
                    println!(
                        "{}  key={}  cursor={}  disposition={}  {}",
                        s.spec.name,
                        s.spec.primary_key.join(","),
                        s.spec.cursor_field.as_deref().unwrap_or("-"),
                        s.spec.write_disposition,
                        s.spec.description
                    );
                    for f in &s.fields {
                        println!("    {:<32} {:<13} {}", f.name, f.field_type.name(), f.doc);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            config,
            pipeline,
            quality,
        } => {
            let config = WeftConfig::load(&config)?;
            let (results, fresh) = if quality {
                weft_runner::check_quality(&config, pipeline.as_deref()).await?
            } else {
                (
                    weft_runner::check(&config, pipeline.as_deref()).await?,
                    Vec::new(),
                )
            };
            let now = chrono::Utc::now();
            let mut ok = fresh.iter().all(|f| !f.is_stale(now));
            for (name, r) in results {
                match r {
                    Ok(()) => println!("{name}: ok"),
                    Err(e) => {
                        ok = false;
                        println!("{name}: FAILED: {e}");
                    }
                }
            }
            for f in &fresh {
                println!("{}", f.render(now));
            }
            if quality && fresh.is_empty() {
                println!("fresh: no stream has a freshness_sla");
            }
            Ok(exit_code(ok))
        }
        Command::State { action } => match action {
            StateAction::Show { config, json } => {
                let config = WeftConfig::load(&config)?;
                let warehouse = weft_runner::open_warehouse(&config).await?;
                let rows = warehouse.list_state().await?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&rows).unwrap_or_default()
                    );
                } else {
                    for r in rows {
                        println!(
                            "{}/{}  {}  (load {}, {})",
                            r.pipeline, r.stream, r.state, r.load_id, r.updated_at
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            StateAction::Reset {
                config,
                pipeline,
                stream,
            } => {
                let config = WeftConfig::load(&config)?;
                let warehouse = weft_runner::open_warehouse(&config).await?;
                let n = warehouse.reset_state(&pipeline, stream.as_deref()).await?;
                println!("reset {n} cursor(s) of {pipeline}");
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Replay {
            config,
            pipeline,
            stream,
            load_id,
        } => {
            let config = WeftConfig::load(&config)?;
            let receipts =
                weft_runner::replay(&config, &pipeline, &stream, load_id.as_deref()).await?;
            for r in receipts {
                let note = if r.already_committed {
                    " (already loaded: no-op)"
                } else {
                    ""
                };
                println!("{}: {} rows{note}", r.load_id, r.rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs {
            config,
            pipeline,
            limit,
            json,
        } => {
            let config = WeftConfig::load(&config)?;
            let runs = weft_runner::runs(&config, pipeline.as_deref(), limit).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&runs).unwrap_or_default()
                );
            } else {
                print!("{}", weft_runner::render_runs(&runs));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Query { config, sql, json } => {
            let config = WeftConfig::load(&config)?;
            let result = weft_runner::query(&config, &sql).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&result).unwrap_or_default()
                );
            } else {
                print!("{}", weft_runner::render_query(&result));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            dir,
            size,
            postgres_url_env,
        } => {
            let warehouse = match postgres_url_env {
                Some(env) => {
                    weft_runner::DemoWarehouse::Postgres(weft_core::SecretRef::Env { env })
                }
                None => weft_runner::DemoWarehouse::DuckDb,
            };
            let summary = weft_runner::run_demo(&dir, size, warehouse, cancel_on_ctrl_c()).await?;
            print!("{}", summary.render());
            if log.is_some() {
                println!("log        {}", summary.dir.join("weft.log").display());
            }
            Ok(exit_code(summary.outcome.succeeded()))
        }
        Command::New {
            what: NewWhat::Connector { name, dir },
        } => {
            let written = weft_runner::new_connector(&dir, &name)?;
            print!("{}", written.next_steps(&name));
            Ok(ExitCode::SUCCESS)
        }
        Command::Sandbox {
            port,
            seed,
            size,
            no_rate_limits,
        } => {
            let config = weft_sandbox::SandboxConfig {
                seed,
                size,
                rate_limits: !no_rate_limits,
                ..Default::default()
            };
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let sandbox = weft_sandbox::Sandbox::start_on(addr, config).await?;
            for (api, url) in sandbox.base_urls() {
                println!("{:<11} {url}", api.name());
            }
            println!("(Ctrl-C to stop; credentials: the DEFAULT_* constants of weft-sandbox)");
            let _ = tokio::signal::ctrl_c().await;
            sandbox.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_outcome(outcome: &weft_runner::RunOutcome, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(outcome).unwrap_or_default()
        );
    } else {
        print!("{}", outcome.render());
    }
}

fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
