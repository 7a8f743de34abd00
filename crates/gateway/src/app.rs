//! The composition root: the shared state every handler reads (an atomically swappable [`Snapshot`] of the built
//! configuration, and the [`Runtime`] state that outlives any configuration: health, the recorder, the Responses
//! store, the upstream connection pools), task tracking, active probes, and serving with a graceful drain.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
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
    #[error(transparent)]
    Shared(#[from] crate::shared::TlsCaError),
    #[error("the app: {0}")]
    Ask(#[from] nines_ask::OpenError),
    #[error("app.postgres_url_env names {0}, which is not set")]
    AppPostgres(String),
    #[error("no free loopback port for a local server: {0}")]
    LocalPort(std::io::Error),
}

/// What outlives any one configuration, keyed by stable ids: a reload keeps it.
#[derive(Debug)]
pub struct Runtime {
    pub health: Arc<Health>,
    pub stats: Arc<Stats>,
    pub recorder: Arc<Recorder>,
    pub responses: ResponseStore,
    pub clients: Clients,
    /// Accounts (limits, budgets) by stable id, the admin API's keys, the door's counts.
    pub admission: Arc<crate::admit::Admission>,
    pub keys: crate::store::keys::KeyStore,
    /// The fleet's shared state (Redis), when configured; connected in the background once serving.
    pub shared: Option<Arc<crate::shared::Shared>>,
    /// The "Ask your documents" app (`[app] enabled`), served under `/app`; its settings are read at start only.
    pub ask: Option<Arc<nines_ask::Ask>>,
    /// The loopback port of each provider whose server nines runs (`command` with `{port}`), chosen once.
    pub local_ports: std::sync::Mutex<BTreeMap<String, u16>>,
}

impl Runtime {
    /// The port `{port}` stands for in provider `name`'s command and base URL (chosen the first time).
    fn local_port(&self, name: &str) -> std::io::Result<u16> {
        let mut ports = self.local_ports.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = ports.get(name) {
            return Ok(*p);
        }
        let p = crate::provider::local::free_port()?;
        ports.insert(name.to_owned(), p);
        Ok(p)
    }
}

impl Runtime {
    pub fn new(config: &Config) -> Result<Runtime, SnapshotError> {
        Runtime::with_env(config, &Env::default())
    }

    /// The runtime, with what it reads from the environment (the app's Postgres URL).
    pub fn with_env(config: &Config, env: &Env) -> Result<Runtime, SnapshotError> {
        let health = Arc::new(Health::new(config.health.retry_budget));
        let stats = Stats::new(StatusStore::open(config.status.path.as_deref())?);
        let stats = Arc::new(if config.protect.state.redis_url.is_some() { stats.in_fleet() } else { stats });
        let keys = crate::store::keys::KeyStore::open(config.auth.store.as_deref())?;
        let admission = Arc::new(crate::admit::Admission::new());
        admission.restore(keys.spend()?);
        admission.admin.set_records(keys.load()?);
        let shared = crate::shared::Shared::new(&config.protect.state)?;
        let recorder = Arc::new(
            Recorder::new(health.clone(), stats.clone())
                .with_traces(Traces::start(&config.traces)?)
                .with_shared(shared.clone()),
        );
        let ask = match &config.app {
            a if a.enabled => Some(nines_ask::Ask::open(nines_ask::Settings {
                data_dir: a.data_dir.clone(),
                postgres_url: match &a.postgres_url_env {
                    Some(var) => {
                        Some(env.secret(var).ok_or_else(|| SnapshotError::AppPostgres(var.clone()))?)
                    }
                    None => None,
                },
                chat_model: a.chat_route.clone(),
                embed_model: a.embed_route.clone(),
                local_providers: a.local_providers.clone(),
                pdfjs_dir: a.pdfjs_dir.clone(),
                max_upload: a.max_upload_bytes,
                max_documents: a.max_documents,
                ..nines_ask::Settings::default()
            })?),
            _ => None,
        };
        Ok(Runtime {
            ask,
            local_ports: std::sync::Mutex::new(BTreeMap::new()),
            responses: ResponseStore::open(&config.responses)?.with_shared(shared.clone()),
            shared,
            admission,
            keys,
            recorder,
            health,
            stats,
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
    /// This configuration's client keys, by digest.
    pub keyring: crate::admit::Keyring,
    pub admin_key: Option<SecretString>,
    pub responses: ResponseStore,
}

impl Snapshot {
    pub fn build(config: Config, env: &Env, runtime: &Runtime) -> Result<Snapshot, SnapshotError> {
        let mut providers = BTreeMap::new();
        let mut config = config;
        for (name, pc) in &mut config.providers {
            if pc.command.is_some() && pc.base_url.contains(crate::provider::local::PORT) {
                let port = runtime.local_port(name).map_err(SnapshotError::LocalPort)?;
                pc.base_url = pc.base_url.replace(crate::provider::local::PORT, &port.to_string());
            }
            providers.insert(name.clone(), Arc::new(Provider::build(pc.clone(), env, &runtime.clients)?));
        }
        let routes = Routes::build(&config, &providers, &runtime.health, &runtime.stats);
        let list = config
            .auth
            .keys_env
            .as_deref()
            .and_then(|v| env.get(v))
            .map(auth::parse_keys)
            .unwrap_or_default();
        let keys_env_set = config.auth.keys_env.is_some();
        let keyring =
            crate::admit::Keyring::build(&config.protect, &list, keys_env_set, env, &runtime.admission);
        runtime.admission.rebuild_admin(&config.protect);
        let admin_key = config
            .auth
            .admin_key_env
            .as_deref()
            .and_then(|v| env.get(v))
            .map(|k| SecretString::from(k.trim().to_owned()))
            .filter(|k| !k.expose_secret().is_empty());
        let responses = runtime.responses.clone();
        Ok(Snapshot { config, providers, routes, keyring, admin_key, responses })
    }

    /// Lines for the start-up log: what is open, what is unusable.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for k in &self.config.protect.keys {
            if let crate::config::protect::KeySecret::Env(v) = &k.secret
                && !self.keyring.identities().any(|i| *i.id == *k.name)
            {
                notes.push(format!("key \"{}\": no value in {v}; it is not usable", k.name));
            }
        }
        if self.config.auth.store.is_none() && self.admin_key.is_some() {
            notes.push(
                "keys made through /admin/keys are kept in memory only: set [auth] store to keep them"
                    .to_owned(),
            );
        }
        if self.keyring.is_open() {
            notes.push(
                "no client keys configured ([auth] keys_env, [keys.*]): the gateway is OPEN to anyone who can reach \
                 it (until a key is made through /admin/keys)"
                    .to_owned(),
            );
        } else if self.keyring.is_empty() {
            notes.push(
                "no configured client key has a value: API requests are refused but for keys made through /admin/keys"
                    .to_owned(),
            );
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
    /// The servers nines runs itself (`command`), stopped only once the gateway has drained: an answer streaming from
    /// a local model when shutdown starts is finished, not cut.
    locals: TaskTracker,
    locals_stop: CancellationToken,
    /// Where the configuration came from (a reload reads it again), and the environment it was built with.
    source: std::sync::Mutex<Option<std::path::PathBuf>>,
    env: Env,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

/// Why a reload was refused (the running configuration is kept).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("no configuration file to reload (the configuration came from the environment)")]
    NoFile,
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(#[from] crate::config::ConfigErrors),
    #[error("{0}")]
    Build(#[from] SnapshotError),
}

impl ReloadError {
    /// Every problem, one per line.
    pub fn errors(&self) -> Vec<String> {
        match self {
            ReloadError::Config(e) => e.0.iter().map(ToString::to_string).collect(),
            other => vec![other.to_string()],
        }
    }
}

impl AppState {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The configuration file a reload reads.
    pub fn set_source(&self, path: std::path::PathBuf) {
        *self.source.lock().unwrap_or_else(|p| p.into_inner()) = Some(path);
    }

    pub fn source(&self) -> Option<std::path::PathBuf> {
        self.source.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Read the configuration file again, validate it completely and apply it whole, or refuse it with every error
    /// and keep the running one. Requests in flight finish on the snapshot they started with; health, limits,
    /// budgets, stored conversations and connection pools live in the runtime and are kept. Returns notes: what
    /// needs a restart to change, and the start-up notes of the new configuration.
    pub async fn reload(&self) -> Result<Vec<String>, ReloadError> {
        let _one = self.reloading.lock().await;
        // Not while the admin API changes keys (it rebuilds them with the snapshot's team limits).
        let _keys = self.runtime.admission.admin.changing.lock().await;
        let path = self.source().ok_or(ReloadError::NoFile)?;
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|source| ReloadError::Read { path: path.display().to_string(), source })?;
        let mut config = crate::config::parse_and_validate(&text)?;
        let old = self.snapshot();
        let mut notes = Vec::new();
        let o = &old.config;
        for (what, changed) in [
            ("listen", config.listen != o.listen),
            ("[status] path", config.status.path != o.status.path),
            ("[responses] path", config.responses.path != o.responses.path),
            ("[auth] store", config.auth.store != o.auth.store),
            ("[traces]", config.traces != o.traces),
            ("[health.retry_budget]", config.health.retry_budget != o.health.retry_budget),
            ("[state]", config.protect.state != o.protect.state),
            ("[server]'s connection limits", {
                let (a, b) = (&config.protect.server, &o.protect.server);
                (a.max_connections, a.header_timeout, a.min_body_rate, a.send_timeout, a.max_header_bytes)
                    != (
                        b.max_connections,
                        b.header_timeout,
                        b.min_body_rate,
                        b.send_timeout,
                        b.max_header_bytes,
                    )
            }),
        ] {
            if changed {
                notes.push(format!("{what} changed: it takes effect at the next restart"));
            }
        }
        config.listen = o.listen;
        let snapshot = Snapshot::build(config, &self.env, &self.runtime)?;
        notes.extend(snapshot.notes());
        self.snapshot.store(Arc::new(snapshot));
        tracing::info!(target: "nines::config", path = %path.display(), "configuration reloaded");
        Ok(notes)
    }

    /// [`AppState::reload`], logging the outcome (for SIGHUP and the file watcher).
    pub async fn reload_logged(&self, why: &str) {
        match self.reload().await {
            Ok(notes) => {
                for n in notes {
                    tracing::warn!(target: "nines::config", "{n}");
                }
            }
            Err(e) => {
                tracing::error!(target: "nines::config", "{why}: reload refused, the running configuration is kept: {e}")
            }
        }
    }
}

/// How often the configuration file is looked at, and how long it must stay unchanged before it is reloaded.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const WATCH_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// Reload when the configuration file changes (its length, modification time or inode), once it has stopped
/// changing for [`WATCH_SETTLE`] (editors write in steps).
async fn watch_config(state: Arc<AppState>, token: CancellationToken) {
    let look = |path: &std::path::Path| {
        std::fs::metadata(path).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.len(), m.modified().ok(), m.ino())
        })
    };
    let Some(path) = state.source() else { return };
    let mut seen = look(&path);
    let mut every = tokio::time::interval(WATCH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = every.tick() => {}
        }
        let now = look(&path);
        if now == seen || now.is_none() {
            continue;
        }
        // Changed: wait until it holds still.
        let mut last = now;
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(WATCH_SETTLE) => {}
            }
            let again = look(&path);
            if again == last {
                break;
            }
            last = again;
        }
        seen = last;
        state.reload_logged("the configuration file changed").await;
    }
}

#[derive(Clone)]
pub struct App {
    pub state: Arc<AppState>,
}

impl App {
    /// The runtime and the first snapshot, from one configuration.
    pub fn build(config: Config, env: &Env) -> Result<App, SnapshotError> {
        let runtime = Runtime::with_env(&config, env)?;
        let snapshot = Snapshot::build(config, env, &runtime)?;
        runtime.stats.close_unclaimed(tokio::time::Instant::now());
        Ok(App::with_env(runtime, snapshot, env.clone()))
    }

    pub fn new(runtime: Runtime, snapshot: Snapshot) -> App {
        App::with_env(runtime, snapshot, Env::default())
    }

    fn with_env(runtime: Runtime, snapshot: Snapshot, env: Env) -> App {
        App {
            state: Arc::new(AppState {
                snapshot: ArcSwap::from_pointee(snapshot),
                runtime,
                tracker: TaskTracker::new(),
                shutdown: CancellationToken::new(),
                locals: TaskTracker::new(),
                locals_stop: CancellationToken::new(),
                source: std::sync::Mutex::new(None),
                env,
                reloading: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn router(&self) -> axum::Router {
        crate::server::router(self.state.clone())
    }

    /// Serve until [`AppState::shutdown`] is cancelled; in-flight requests finish first.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let token = self.state.shutdown.clone();
        let probes = crate::dispatch::probe::run(self.state.clone(), token.clone());
        self.state.tracker.spawn(probes);
        self.state.tracker.spawn(write_status(self.state.clone(), token.clone()));
        self.state.tracker.spawn(watch_config(self.state.clone(), token.clone()));
        if let Some(shared) = self.state.runtime.shared.clone() {
            let rt = &self.state.runtime;
            let local = crate::shared::Local {
                health: rt.health.clone(),
                changes: rt.recorder.subscribe(),
                stats: rt.stats.clone(),
                admission: rt.admission.clone(),
            };
            self.state.tracker.spawn(shared.connect(token.clone(), local));
        }
        // The servers nines runs itself (a local model): started now, stopped once the gateway has drained.
        for (name, pc) in &self.state.snapshot().config.providers {
            if let Some(argv) = &pc.command {
                let port = self.state.runtime.local_ports.lock().ok().and_then(|p| p.get(name).copied());
                let argv = crate::provider::local::with_port(argv, port);
                // Listening again: a successful probe of its targets (their breakers close, as after any probe).
                let state = self.state.clone();
                let provider = name.clone();
                let on_ready = std::sync::Arc::new(move || {
                    let snap = state.snapshot();
                    let cfg = &snap.config.health;
                    for target in snap.routes.targets() {
                        if target.provider.name() == provider {
                            state.runtime.recorder.probed(target, cfg, Ok(()));
                        }
                    }
                });
                let supervise = crate::provider::local::supervise(
                    name.clone(),
                    argv,
                    port,
                    on_ready,
                    self.state.locals_stop.clone(),
                );
                self.state.locals.spawn(supervise);
            }
        }
        let edge = self.state.snapshot().config.protect.server;
        let mut router = self.router();
        if let Some(ask) = &self.state.runtime.ask {
            // The app reaches the gateway as any client would: over loopback, at the port it listens on.
            let port = listener.local_addr().map(|a| a.port())?;
            ask.gateway.set_base(format!("http://127.0.0.1:{port}"));
            router =
                router.nest("/app", ask.router()).route("/app/", axum::routing::get(nines_ask::web::page));
        }
        crate::server::listen::serve(listener, router, edge, token, self.state.tracker.clone()).await
    }

    /// Stop accepting, and wait for every tracked task (servers started by [`App::spawn`] among them, their
    /// connections drained); then stop the servers nines runs itself, and write the status store a last time.
    pub async fn shutdown(&self) {
        self.state.shutdown.cancel();
        self.state.tracker.close();
        self.state.tracker.wait().await;
        self.state.locals_stop.cancel();
        self.state.locals.close();
        self.state.locals.wait().await;
        let retention = self.state.snapshot().config.status.retention;
        if let Err(e) = self.state.runtime.recorder.flush(retention).await {
            tracing::warn!(target: "nines::status", "cannot write the status store: {e}");
        }
        write_spend(&self.state.runtime).await;
        if let Some(shared) = &self.state.runtime.shared {
            shared.give_back_all().await;
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
        write_spend(&state.runtime).await;
    }
}

/// Write every account's spend (budgets survive a restart up to the last write).
async fn write_spend(runtime: &Runtime) {
    let spend = runtime.admission.spend();
    if !spend.is_empty()
        && let Err(e) = runtime.keys.write_spend(spend).await
    {
        tracing::warn!(target: "nines::keys", "cannot write the spend of budgets: {e}");
    }
}
