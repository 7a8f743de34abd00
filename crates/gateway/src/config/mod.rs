//! Configuration in three stages: [`raw`] (serde, exactly as written) → [`validate`] (pure; every error with its
//! path) → [`build`] (I/O: environment, secrets, HTTP clients).
//!
//! The types here are the validated configuration: everything in them has been checked.

pub mod app;
pub mod build;
pub mod observe;
pub mod protect;
pub mod raw;
pub mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use nines_wire::Dialect;
use nines_wire::openai::MaxTokensField;

pub use build::Env;
pub use observe::{IncidentConfig, StatusConfig, TracesConfig};
pub use validate::{ConfigError, ConfigErrors, parse_and_validate};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4000";

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub routes: BTreeMap<String, RouteConfig>,
    pub auth: AuthConfig,
    pub dispatch: DispatchConfig,
    pub responses: ResponsesConfig,
    pub health: HealthConfig,
    pub status: StatusConfig,
    pub traces: TracesConfig,
    pub protect: protect::Protect,
    pub app: app::AppConfig,
}

/// How a route orders its balanced pool for each request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// The pool in the order written (the default).
    #[default]
    Priority,
    /// Split traffic by the targets' weights.
    Weighted,
    /// Power of two choices over a peak-EWMA of time to first token, with a little exploration.
    Latency,
    /// Fewest requests in flight.
    LeastBusy,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "priority" => Some(Strategy::Priority),
            "weighted" => Some(Strategy::Weighted),
            "latency" => Some(Strategy::Latency),
            "least-busy" => Some(Strategy::LeastBusy),
            _ => None,
        }
    }
}

/// A route: a balanced pool ordered by its strategy, then fallbacks in order.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteConfig {
    pub strategy: Strategy,
    pub pool: Vec<RouteTarget>,
    pub fallbacks: Vec<RouteTarget>,
    pub streams: StreamPolicy,
}

/// What a route does for its streams after (resume) and before (hedge) their first token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StreamPolicy {
    /// Most continuations on other targets when a stream breaks after its first token; 0 turns resume off.
    pub max_resumes: u32,
    pub hedge: Option<Hedge>,
}

impl Default for StreamPolicy {
    fn default() -> Self {
        StreamPolicy { max_resumes: 2, hedge: None }
    }
}

/// When to start a second target while the first has not given its first token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hedge {
    After(Duration),
    /// The target's learnt quantile of time to first token; `floor` until it has enough samples, and never less.
    Learnt {
        quantile: f64,
        floor: Duration,
    },
}

impl RouteConfig {
    /// Every target, pool first.
    pub fn targets(&self) -> impl Iterator<Item = &RouteTarget> {
        self.pool.iter().chain(&self.fallbacks)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTarget {
    pub target: TargetRef,
    /// Share of traffic under `strategy = "weighted"` (default 1).
    pub weight: u32,
}

/// Per-target health: what opens a breaker, how long it stays open, how traffic returns, learnt time limits, and
/// the retry budget. The state itself lives in `crate::health`, outside any configuration snapshot.
#[derive(Clone, Debug)]
pub struct HealthConfig {
    /// Off: targets are tried in route order whatever happened before (retries still obey the budget).
    pub enabled: bool,
    pub breaker: crate::health::breaker::BreakerConfig,
    /// How long a 429 without `Retry-After` or rate-limit headers keeps a target aside.
    pub rate_limit_cooldown: Duration,
    /// `None`: the configured `first_byte` only.
    pub time_limits: Option<crate::health::learnt::LearntConfig>,
    pub retry_budget: RetryBudgetConfig,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            enabled: true,
            breaker: Default::default(),
            rate_limit_cooldown: Duration::from_secs(1),
            time_limits: Some(Default::default()),
            retry_budget: RetryBudgetConfig::default(),
        }
    }
}

/// Same-target retries stay within `ratio` of recent first attempts plus `min_per_second`, over `ttl`
/// (Finagle's retry budget, tower's `TpsBudget`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryBudgetConfig {
    pub ratio: f32,
    pub min_per_second: u32,
    pub ttl: Duration,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        RetryBudgetConfig { ratio: 0.2, min_per_second: 1, ttl: Duration::from_secs(10) }
    }
}

/// Active probes while a target's breaker is open: client requests then never serve as trials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    pub interval: Duration,
    pub request: ProbeRequest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeRequest {
    /// The provider's model listing (no tokens spent).
    Models,
    /// A one-token chat request to the target's model.
    Chat,
}

/// What the configuration says of one model of a provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    pub capabilities: Capabilities,
    /// Tokens; `None`: not declared.
    pub context_window: Option<u64>,
}

/// Where stored Responses live and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponsesConfig {
    /// A SQLite file; `None`: an in-memory database.
    pub path: Option<std::path::PathBuf>,
    /// Stored responses older than this are gone (OpenAI keeps them 30 days).
    pub retention: Duration,
    /// At most this many are kept; the oldest go first.
    pub max_responses: u64,
    /// At most this many bytes of responses and conversations are kept; the oldest go first.
    pub max_bytes: u64,
}

impl Default for ResponsesConfig {
    fn default() -> Self {
        ResponsesConfig {
            path: None,
            retention: Duration::from_secs(30 * 24 * 3600),
            max_responses: 100_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// What stands for the base URL of a provider that runs in-process (nothing is ever sent to it).
pub const LOCAL_BASE_URL: &str = "in-process";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    Anthropic,
    /// OpenAI Chat Completions, and every OpenAI-compatible server.
    OpenAi,
    /// OpenAI's Responses API (models served only there, and servers that offer only it).
    OpenAiResponses,
    Gemini,
    /// A sentence-embedding model run inside nines (crates/embed): embeddings only, answered with every provider
    /// down.
    LocalEmbeddings,
}

impl ProviderKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "anthropic" => Some(ProviderKind::Anthropic),
            "openai" => Some(ProviderKind::OpenAi),
            "openai-responses" => Some(ProviderKind::OpenAiResponses),
            "gemini" => Some(ProviderKind::Gemini),
            "local-embeddings" => Some(ProviderKind::LocalEmbeddings),
            _ => None,
        }
    }

    pub fn dialect(self) -> Dialect {
        match self {
            ProviderKind::Anthropic => Dialect::Anthropic,
            ProviderKind::OpenAi | ProviderKind::LocalEmbeddings => Dialect::OpenAiChat,
            ProviderKind::OpenAiResponses => Dialect::OpenAiResponses,
            ProviderKind::Gemini => Dialect::Gemini,
        }
    }

    /// The official SDKs' default base URL for this kind.
    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::OpenAi | ProviderKind::OpenAiResponses => "https://api.openai.com/v1",
            ProviderKind::Gemini => "https://generativelanguage.googleapis.com",
            ProviderKind::LocalEmbeddings => LOCAL_BASE_URL,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// Without a trailing slash.
    pub base_url: String,
    /// The NAME of the environment variable holding the key.
    pub api_key_env: Option<String>,
    /// Most extra attempts on this target before moving on (each one only for a lone transient failure, within
    /// the retry budget).
    pub retries: u32,
    /// The most requests each of its targets is sent at once (the ceiling of the learnt limit).
    pub max_concurrency: Option<u32>,
    pub max_tokens_field: MaxTokensField,
    /// The `anthropic-version` sent with translated requests (kind = "anthropic").
    pub anthropic_version: String,
    pub timeouts: Timeouts,
    /// What the provider's models can take, unless a model says otherwise.
    pub capabilities: Capabilities,
    /// Per-model settings, by upstream model name.
    pub models: BTreeMap<String, ModelConfig>,
    pub probe: Option<ProbeConfig>,
    /// A PEM file of the certificate authorities the provider's TLS certificate is checked against, instead of the
    /// platform's (a self-hosted server behind a private CA, a simulator's self-signed certificate).
    pub tls_ca: Option<std::path::PathBuf>,
    /// The folder of an in-process model (kind = "local-embeddings": `config.json`, `tokenizer.json`,
    /// `model.safetensors`).
    pub model_dir: Option<std::path::PathBuf>,
    /// A server nines starts and keeps running for this provider (argv; `{port}` stands for a free loopback port,
    /// in `base_url` too).
    pub command: Option<Vec<String>>,
}

impl ProviderConfig {
    pub fn model(&self, model: &str) -> ModelConfig {
        self.models
            .get(model)
            .copied()
            .unwrap_or(ModelConfig { capabilities: self.capabilities, context_window: None })
    }

    /// A fingerprint of what decides whether our requests are accepted (kind, URL, key variable): an auth failure
    /// keeps a target down until it changes.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.kind as u8, &self.base_url, &self.api_key_env).hash(&mut h);
        h.finish()
    }
}

/// What a target can take. A request that needs what a target lacks skips it (images, tools) or loses the
/// parameter with a warning (reasoning, which a model without it refuses with a 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub images: bool,
    pub tools: bool,
    pub reasoning: bool,
    /// Continues a final assistant message (an assistant prefill). A broken stream is resumed on a target with a
    /// prefill of the delivered text, or else with an instruction to continue.
    pub prefill: bool,
}

impl Capabilities {
    /// Hosted Anthropic and Gemini models all reason, as do the models OpenAI serves only through Responses;
    /// OpenAI's older Chat models (and many compatible servers) refuse `reasoning_effort`, so reasoning is opt-in
    /// for kind = "openai".
    pub fn default_for(kind: ProviderKind) -> Self {
        Capabilities {
            images: true,
            tools: true,
            reasoning: kind != ProviderKind::OpenAi,
            prefill: kind == ProviderKind::Anthropic,
        }
    }

    pub fn overridden(self, raw: Option<raw::RawCapabilities>) -> Self {
        let Some(r) = raw else { return self };
        Capabilities {
            images: r.images.unwrap_or(self.images),
            tools: r.tools.unwrap_or(self.tools),
            reasoning: r.reasoning.unwrap_or(self.reasoning),
            prefill: r.prefill.unwrap_or(self.prefill),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP (and TLS) connect.
    pub connect: Duration,
    /// Until the response headers, and for streams until the first content event.
    pub first_byte: Duration,
    /// Longest gap between two stream events once streaming.
    pub idle: Duration,
    /// One attempt, start to end.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(30),
            request: Duration::from_secs(600),
        }
    }
}

/// A target of a route: `provider/model`, split at the first `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetRef {
    pub provider: String,
    pub model: String,
}

impl std::fmt::Display for TargetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// The NAME of the environment variable holding comma-separated client keys.
    pub keys_env: Option<String>,
    /// The NAME of the environment variable holding the admin key (status, metrics; later the admin API).
    pub admin_key_env: Option<String>,
    /// A SQLite file for the keys made through the admin API (`/admin/keys`); `None`: in memory.
    pub store: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug)]
pub struct DispatchConfig {
    /// The whole request, across every attempt.
    pub deadline: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Longest `Retry-After` honoured by waiting to retry the same target; a longer one moves on at once.
    pub retry_after_cap: Duration,
    /// Send an unknown model named like a provider's own models (`claude-…`, `gpt-…`, `gemini-…`) to a provider of
    /// that kind. On when the config is built from the environment.
    pub infer_models: bool,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            deadline: Duration::from_secs(600),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            retry_after_cap: Duration::from_secs(2),
            infer_models: false,
        }
    }
}
