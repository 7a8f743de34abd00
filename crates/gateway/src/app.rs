//! The composition root: the shared state every handler reads (an atomically swappable [`Snapshot`] of the built
//! configuration, and the [`Runtime`] state that outlives any configuration: health, the recorder, the Responses
//! store, the upstream connection pools), task tracking, active probes, and serving with a graceful drain.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::serve::ListenerExt;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth;
use crate::config::{Config, Env};
use crate::health::Health;
use crate::provider::{BuildError, Clients, Provider};
use crate::record::Recorder;
use crate::record::stats::Stats;
use crate::record::trace::{TraceError, Traces};
use crate::route::Routes;
use crate::store::status::StatusStore;
use crate::store::{ResponseStore, StoreError};

/// Why a configuration could not be built into a [`Snapshot`].
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Provider(#[from] BuildError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Traces(#[from] TraceError),
}

/// What outlives any one configuration, keyed by stable ids: a reload keeps it.
#[derive(Debug)]
pub struct Runtime {
    pub health: Arc<Health>,
    pub stats: Arc<Stats>,
    pub recorder: Arc<Recorder>,
    pub responses: ResponseStore,
    pub clients: Clients,
}

impl Runtime {
    pub fn new(config: &Config) -> Result<Runtime, SnapshotError> {
        let health = Arc::new(Health::new(config.health.retry_budget));
        let stats = Arc::new(Stats::new(StatusStore::open(config.status.path.as_deref())?));
        Ok(Runtime {
            recorder: Arc::new(
                Recorder::new(health.clone(), stats.clone()).with_traces(Traces::start(&config.traces)?),
            ),
            health,
            stats,
            responses: ResponseStore::open(&config.responses)?,
            clients: Clients::default(),
        })
    }
}

/// Everything derived from one configuration. Handlers take it with one atomic load; a reload swaps it whole.
#[derive(Debug)]
pub struct Snapshot {
    pub config: Config,
    pub providers: BTreeMap<String, Arc<Provider>>,
    pub routes: Routes,
    pub client_keys: Vec<SecretString>,
    pub admin_key: Option<SecretString>,
    pub responses: ResponseStore,
}

impl Snapshot {
    pub fn build(config: Config, env: &Env, runtime: &Runtime) -> Result<Snapshot, SnapshotError> {
        let mut providers = BTreeMap::new();
        for (name, pc) in &config.providers {
            providers.insert(name.clone(), Arc::new(Provider::build(pc.clone(), env, &runtime.clients)?));
        }
        let routes = Routes::build(&config, &providers, &runtime.health, &runtime.stats);
        let client_keys = config
            .auth
            .keys_env
            .as_deref()
            .and_then(|v| env.get(v))
            .map(auth::parse_keys)
            .unwrap_or_default();
        let admin_key = config
            .auth
            .admin_key_env
            .as_deref()
            .and_then(|v| env.get(v))
            .map(|k| SecretString::from(k.trim().to_owned()))
            .filter(|k| !k.expose_secret().is_empty());
        let responses = runtime.responses.clone();
        Ok(Snapshot { config, providers, routes, client_keys, admin_key, responses })
    }

    /// Lines for the start-up log: what is open, what is unusable.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.client_keys.is_empty() {
            notes.push(match &self.config.auth.keys_env {
                Some(v) => format!("no client keys in {v}: the gateway is OPEN to anyone who can reach it"),
                None => "no client keys configured ([auth] keys_env): the gateway is OPEN to anyone who can reach it"
                    .to_owned(),
            });
        }
        if let (Some(v), None, false) =
            (&self.config.auth.admin_key_env, &self.admin_key, self.config.status.public)
        {
            notes.push(format!("no admin key in {v}: /status, /status.json and /metrics refuse everyone"));
        }
        if self.config.status.path.is_none() {
            notes.push(
                "status history and incidents are kept in memory only: set [status] path to keep them across restarts"
                    .to_owned(),
            );
        }
        for p in self.providers.values() {
            if let Some(why) = &p.unusable {
                notes.push(format!(
                    "provider \"{}\" is unusable: {why}; its targets will be skipped",
                    p.name()
                ));
            }
        }
        notes
    }
}

pub struct AppState {
    snapshot: ArcSwap<Snapshot>,
    pub runtime: Runtime,
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }
}

#[derive(Clone)]
pub struct App {
    pub state: Arc<AppState>,
}

impl App {
    /// The runtime and the first snapshot, from one configuration.
    pub fn build(config: Config, env: &Env) -> Result<App, SnapshotError> {
        let runtime = Runtime::new(&config)?;
        let snapshot = Snapshot::build(config, env, &runtime)?;
        runtime.stats.close_unclaimed(tokio::time::Instant::now());
        Ok(App::new(runtime, snapshot))
    }

    pub fn new(runtime: Runtime, snapshot: Snapshot) -> App {
        App {
            state: Arc::new(AppState {
                snapshot: ArcSwap::from_pointee(snapshot),
                runtime,
                tracker: TaskTracker::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    pub fn router(&self) -> axum::Router {
        crate::server::router(self.state.clone())
    }

    /// Serve until [`AppState::shutdown`] is cancelled; in-flight requests finish first.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let token = self.state.shutdown.clone();
        // Streams are many small writes: without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK stall
        // every event after the first by ~40 ms.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
        let probes = crate::dispatch::probe::run(self.state.clone(), token.clone());
        self.state.tracker.spawn(probes);
        self.state.tracker.spawn(write_status(self.state.clone(), token.clone()));
        axum::serve(listener, self.router()).with_graceful_shutdown(token.cancelled_owned()).await
    }

    /// Stop accepting, and wait for every tracked task (servers started by [`App::spawn`] among them); then write
    /// the status store a last time.
    pub async fn shutdown(&self) {
        self.state.shutdown.cancel();
        self.state.tracker.close();
        self.state.tracker.wait().await;
        let retention = self.state.snapshot().config.status.retention;
        if let Err(e) = self.state.runtime.recorder.flush(retention).await {
            tracing::warn!(target: "nines::status", "cannot write the status store: {e}");
        }
        // The last spans: a bounded wait, off the runtime's threads.
        let recorder = self.state.runtime.recorder.clone();
        if recorder.traces.is_some() {
            let _ = tokio::task::spawn_blocking(move || recorder.traces.as_ref().map(|t| t.shutdown())).await;
        }
    }

    /// Serve on `listener` in a tracked background task (tests and the demo); returns at once.
    pub fn spawn(&self, listener: TcpListener) {
        let app = self.clone();
        self.state.tracker.spawn(async move {
            if let Err(e) = app.serve(listener).await {
                tracing::error!("server stopped: {e}");
            }
        });
    }
}

/// How often the status store is written (history and incidents survive a crash up to this much).
const STATUS_WRITE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Write the status store every [`STATUS_WRITE_EVERY`] until shutdown.
async fn write_status(state: Arc<AppState>, token: CancellationToken) {
    let mut every = tokio::time::interval(STATUS_WRITE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = every.tick() => {}
        }
        let retention = state.snapshot().config.status.retention;
        if let Err(e) = state.runtime.recorder.flush(retention).await {
            tracing::warn!(target: "nines::status", "cannot write the status store: {e}");
        }
    }
}
