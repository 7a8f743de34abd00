//! The `nines` command: CLI → config → App → serve. A bad configuration exits with code 64 before any port is
//! bound.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nines::App;
use nines::config::{self, Env};
use nines::record::sink::Sink;

/// jemalloc, with its background thread purging freed pages: measured against glibc's malloc with bench/run
/// (docs/performance.md), it gives back the memory of streams that have ended, which glibc keeps.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// EX_USAGE from sysexits.h: the configuration was wrong.
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(name = "nines", version, about = "An outage-proof gateway for LLM APIs")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Log lines as text (the default) or as JSON objects, one per line (also: NINES_LOG_FORMAT=json).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default). Without --config, providers come from the environment.
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides `listen` in the file.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validate a configuration file and print every error with its path.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Start three simulated providers and the gateway in front of them, then play an outage.
    Demo {
        #[arg(long, default_value = "127.0.0.1:4000")]
        listen: SocketAddr,
        /// Exit after the outage instead of staying up for you to try.
        #[arg(long)]
        once: bool,
    },
    /// Print the status of a running gateway: availability, providers, routes, incidents (its /status.json).
    /// The key, when the status is not public, comes from NINES_ADMIN_KEY.
    Status {
        #[arg(long, default_value = "http://127.0.0.1:4000")]
        url: String,
        /// Print the report as JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Run a simulated provider (Anthropic, OpenAI and Gemini wire formats, with faults set at /_sim/faults).
    Sim {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[arg(long, default_value = "sim")]
        name: String,
        /// Require this API key from callers.
        #[arg(long)]
        key: Option<String>,
        /// Serve HTTPS (HTTP/2 or HTTP/1.1) with a self-signed certificate made at start-up.
        #[arg(long)]
        tls: bool,
        /// Where to write that certificate (PEM), for a client to trust: a provider's `tls_ca`.
        #[arg(long, requires = "tls")]
        cert_out: Option<PathBuf>,
        /// The most streams one HTTP/2 connection may carry at once (hyper's default: 200).
        #[arg(long)]
        h2_max_streams: Option<u32>,
    },
}

/// Log lines go to standard error through [`Sink`], batched unless it is a terminal. The sink is returned so that
/// `main` writes out what is waiting before the process ends.
fn init_logging(default: &str, format: LogFormat) -> Sink {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NINES_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    let sink = Sink::stderr();
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(sink.clone());
    match format {
        // One object per line, the event's fields at the top level (`request`, `target_name`, `kind`…).
        LogFormat::Json => {
            fmt.json().flatten_event(true).with_current_span(false).with_span_list(false).init()
        }
        LogFormat::Text => fmt.with_ansi(ansi).init(),
    }
    // A panic's own message goes to standard error directly: what was logged before it must go first.
    let on_panic = sink.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = on_panic.flush();
        default_hook(info);
    }));
    sink
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.log_format.unwrap_or(match Env::from_process().get("NINES_LOG_FORMAT") {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Text,
    });
    // The demo's and the status command's report is their output: log lines only when asked for (NINES_LOG).
    let quiet = matches!(cli.command, Some(Command::Demo { .. } | Command::Status { .. }));
    let log = init_logging(if quiet { "error" } else { "info" }, format);
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::debug!("jemalloc background thread not started: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nines: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve { config: None, listen: None }) {
            Command::Serve { config, listen } => serve(config, listen).await,
            Command::Check { config } => check(&config),
            Command::Demo { listen, once } => {
                nines::demo::run(listen, once).await.map(|_| ExitCode::SUCCESS).map_err(Into::into)
            }
            Command::Status { url, json } => status(&url, json).await,
            Command::Sim { listen, name, key, tls, cert_out, h2_max_streams } => {
                let opts = nines_sim::SimOptions { name, api_key: key, tls, h2_max_streams };
                let run = nines_sim::run(listen, opts, cert_out.as_deref());
                run.await.map(|()| ExitCode::SUCCESS).map_err(Into::into)
            }
        }
    });
    let _ = log.flush();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nines: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn status(url: &str, json: bool) -> anyhow::Result<ExitCode> {
    let env = Env::from_process();
    let report = nines::status_cli::fetch(url, env.get("NINES_ADMIN_KEY")).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", nines::status_cli::text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn check(path: &PathBuf) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    match config::parse_and_validate(&text) {
        Ok(c) => {
            println!(
                "{}: OK ({} provider(s), {} route(s))",
                path.display(),
                c.providers.len(),
                c.routes.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{}: {errors}", path.display());
            Ok(ExitCode::from(EXIT_CONFIG))
        }
    }
}

async fn serve(path: Option<PathBuf>, listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let env = Env::from_process();
    let mut config = match &path {
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("nines: cannot read {}: {e}", path.display());
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            match config::parse_and_validate(&text) {
                Ok(c) => c,
                Err(errors) => {
                    eprintln!("nines: {}: {errors}", path.display());
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            }
        }
        None => {
            let (config, found) = config::build::config_from_env(&env).await;
            tracing::info!("no --config given: building the configuration from the environment");
            for line in found {
                tracing::info!("{line}");
            }
            config
        }
    };
    if let Some(l) = listen {
        config.listen = l;
    }
    let app = App::build(config, &env)?;
    if let Some(path) = &path {
        app.state.set_source(path.clone());
    }
    let snapshot = app.state.snapshot();
    for note in snapshot.notes() {
        tracing::warn!("{note}");
    }
    let addr = snapshot.config.listen;
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    println!("nines listening on http://{local}");
    std::io::stdout().flush()?;
    let token = app.state.shutdown.clone();
    let drain = snapshot.config.protect.server.drain;
    let hup = reload_on_sighup(app.state.clone(), token.clone());
    app.state.tracker.spawn(hup);
    let drained = async {
        app.clone().serve(listener).await?;
        app.shutdown().await;
        anyhow::Ok(())
    };
    // A first signal starts the drain; a second, or `[server] drain` after the first, ends the process anyway.
    let forced = async {
        tokio::select! {
            () = stop_signal() => {
                tracing::info!("shutting down: finishing in-flight requests (a second signal stops at once)");
                token.cancel();
            }
            () = token.cancelled() => {}
        }
        tokio::select! {
            () = stop_signal() => {}
            () = tokio::time::sleep(drain) => {}
        }
    };
    tokio::select! {
        r = drained => r?,
        () = forced => {
            tracing::warn!("stopped before every in-flight request finished");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP: reload the configuration file (applied whole, or refused whole with the old one kept).
async fn reload_on_sighup(
    state: std::sync::Arc<nines::app::AppState>,
    token: tokio_util::sync::CancellationToken,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                got = hup.recv() => if got.is_none() { return },
            }
            state.reload_logged("SIGHUP").await;
        }
    }
    #[cfg(not(unix))]
    token.cancelled().await;
}

/// Ctrl-C, or SIGTERM (what service managers and Kubernetes send): either starts the graceful drain.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
