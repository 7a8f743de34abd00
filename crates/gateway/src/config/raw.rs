//! The configuration exactly as written in TOML. No checks beyond types: those are in `validate`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub routes: BTreeMap<String, RawRoute>,
    pub auth: Option<RawAuth>,
    pub dispatch: Option<RawDispatch>,
    pub responses: Option<RawResponses>,
    pub health: Option<RawHealth>,
    pub status: Option<super::observe::RawStatus>,
    pub traces: Option<super::observe::RawTraces>,
    #[serde(default)]
    pub keys: BTreeMap<String, super::protect::RawKey>,
    #[serde(default)]
    pub teams: BTreeMap<String, super::protect::RawTeam>,
    #[serde(default)]
    pub prices: BTreeMap<String, super::protect::RawPrice>,
    pub server: Option<super::protect::RawServer>,
    pub state: Option<super::protect::RawState>,
    pub app: Option<super::app::RawApp>,
}

/// Per-target health: breakers, cooldowns, learnt time limits, the retry budget.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub enabled: Option<bool>,
    pub consecutive_failures: Option<u32>,
    pub failure_rate: Option<f64>,
    #[serde(default, with = "humantime_serde")]
    pub window: Option<Duration>,
    pub min_requests: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub cooldown: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub cooldown_max: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub ramp: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub rate_limit_cooldown: Option<Duration>,
    pub time_limits: Option<RawTimeLimits>,
    pub retry_budget: Option<RawRetryBudget>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeLimits {
    pub enabled: Option<bool>,
    pub quantile: Option<f64>,
    pub multiplier: Option<f64>,
    #[serde(default, with = "humantime_serde")]
    pub floor: Option<Duration>,
    pub min_samples: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetryBudget {
    pub ratio: Option<f64>,
    pub min_per_second: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
}

/// The store of the Responses API (`previous_response_id`, `GET /v1/responses/{id}`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResponses {
    /// A SQLite file; absent: an in-memory database (lost at restart).
    pub path: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub retention: Option<Duration>,
    pub max_responses: Option<u64>,
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub kind: String,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    pub retries: Option<u32>,
    /// The most requests the provider takes at once (each of its targets); nines learns less when it must.
    pub max_concurrency: Option<u32>,
    pub max_tokens_field: Option<String>,
    pub anthropic_version: Option<String>,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    pub capabilities: Option<RawCapabilities>,
    pub probe: Option<RawProbe>,
    /// Per-model settings, by upstream model name.
    #[serde(default)]
    pub models: BTreeMap<String, RawModel>,
    /// A PEM file of the certificate authorities to check the provider's certificate against (instead of the
    /// platform's).
    pub tls_ca: Option<std::path::PathBuf>,
    /// The model's folder, for kind = "local-embeddings".
    pub model_dir: Option<std::path::PathBuf>,
    /// A server nines runs and keeps running (argv; `{port}` is a free loopback port, also in base_url).
    pub command: Option<Vec<String>>,
}

/// What a provider (or one of its models) can take. Unset fields inherit.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapabilities {
    pub images: Option<bool>,
    pub tools: Option<bool>,
    pub reasoning: Option<bool>,
    /// Continues a final assistant message (used to resume a broken stream).
    pub prefill: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub capabilities: Option<RawCapabilities>,
    /// The model's context window, in tokens.
    pub context_window: Option<u64>,
}

/// Active probes of a provider's targets while their breakers are open.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// "models" (a model listing) or "chat" (one output token).
    pub request: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    #[serde(default, with = "humantime_serde")]
    pub connect: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub first_byte: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub idle: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub request: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// The balanced pool (or, with `strategy = "priority"`, the order).
    pub targets: Vec<RawRouteTarget>,
    /// Tried in order after the pool.
    #[serde(default)]
    pub fallbacks: Vec<RawRouteTarget>,
    pub strategy: Option<String>,
    /// Continue a stream that breaks after its first token on another target (default true).
    pub resume: Option<bool>,
    /// Most continuations per request (default 2).
    pub max_resumes: Option<u32>,
    /// Start the next target too when the first token is late (off unless set).
    pub hedge: Option<RawHedge>,
}

/// `hedge = { after = "1s" }` (a fixed delay) or `hedge = { after = "p90" }` (the target's learnt percentile of time
/// to first token; the fixed `floor` until enough samples).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHedge {
    pub after: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub floor: Option<Duration>,
}

/// `"provider/model"`, or `{ target = "provider/model", weight = 3 }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawRouteTarget {
    Name(String),
    Table(RawRouteTargetTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteTargetTable {
    pub target: String,
    pub weight: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub keys_env: Option<String>,
    pub admin_key_env: Option<String>,
    /// A SQLite file for the keys made through the admin API; absent: in memory.
    pub store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDispatch {
    #[serde(default, with = "humantime_serde")]
    pub deadline: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub backoff_base: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub backoff_max: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub retry_after_cap: Option<Duration>,
    pub infer_models: Option<bool>,
}
