//! Raw configuration → validated [`Config`]. Pure: no environment, no I/O. Collects every error, each with the path
//! of the value at fault (`routes."chat".targets[1]: unknown provider "opnai"`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use nines_wire::openai::MaxTokensField;

use std::time::Duration;

use super::raw::{RawConfig, RawHealth, RawProvider, RawRoute, RawRouteTarget};
use super::{
    AuthConfig, Config, DEFAULT_LISTEN, DispatchConfig, HealthConfig, Hedge, ModelConfig, ProbeConfig,
    ProbeRequest, ProviderConfig, ProviderKind, ResponsesConfig, RetryBudgetConfig, RouteConfig, RouteTarget,
    Strategy, StreamPolicy, TargetRef, Timeouts,
};
use crate::health::breaker::BreakerConfig;
use crate::health::learnt::LearntConfig;

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub(super) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { path: path.into(), message: message.into() }
    }
}

/// Every problem found, in file order.
#[derive(Debug, thiserror::Error)]
#[error("{} configuration error(s):\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// Parse TOML text and validate it.
pub fn parse_and_validate(text: &str) -> Result<Config, ConfigErrors> {
    let raw = parse(text).map_err(|e| ConfigErrors(vec![e]))?;
    validate(raw)
}

pub fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::new("(file)", e.to_string().trim()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::new(if path == "." { "(file)".to_owned() } else { path }, e.into_inner().message())
    })
}

fn quote(key: &str) -> String {
    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_owned()
    } else {
        format!("\"{key}\"")
    }
}

pub fn validate(raw: RawConfig) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();

    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = match listen_text.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            errors.push(ConfigError::new(
                "listen",
                format!("\"{listen_text}\" is not an address like 127.0.0.1:4000"),
            ));
            // Keep going with a placeholder so that every other error is reported too.
            SocketAddr::from(([127, 0, 0, 1], 4000))
        }
    };

    let mut providers = BTreeMap::new();
    for (name, p) in raw.providers {
        let path = format!("providers.{}", quote(&name));
        if name.is_empty() || name.contains('/') {
            errors.push(ConfigError::new(&path, "a provider name must be non-empty and contain no \"/\""));
        }
        if let Some(pc) = validate_provider(&name, p, &path, &mut errors) {
            providers.insert(name, pc);
        }
    }

    let mut routes = BTreeMap::new();
    for (name, r) in raw.routes {
        let path = format!("routes.{}", quote(&name));
        if r.targets.is_empty() {
            errors.push(ConfigError::new(format!("{path}.targets"), "a route needs at least one target"));
        }
        let strategy = match r.strategy.as_deref() {
            None => Strategy::Priority,
            Some(s) => Strategy::parse(s).unwrap_or_else(|| {
                errors.push(ConfigError::new(
                    format!("{path}.strategy"),
                    format!("unknown strategy \"{s}\" (expected priority, weighted, latency or least-busy)"),
                ));
                Strategy::Priority
            }),
        };
        let pool = route_targets(&r.targets, &format!("{path}.targets"), &providers, &mut errors);
        let fallbacks = route_targets(&r.fallbacks, &format!("{path}.fallbacks"), &providers, &mut errors);
        if pool.len() + fallbacks.len() > MAX_ROUTE_TARGETS {
            errors.push(ConfigError::new(
                format!("{path}.targets"),
                format!("a route has at most {MAX_ROUTE_TARGETS} targets, fallbacks included"),
            ));
        }
        if strategy == Strategy::Weighted && !pool.is_empty() && pool.iter().all(|t| t.weight == 0) {
            errors
                .push(ConfigError::new(format!("{path}.targets"), "at least one weight must be above zero"));
        }
        let streams = stream_policy(&r, &path, &mut errors);
        routes.insert(name, RouteConfig { strategy, pool, fallbacks, streams });
    }

    let (keys_env, admin_key_env, store) =
        raw.auth.map(|a| (a.keys_env, a.admin_key_env, a.store)).unwrap_or_default();
    let store = store.filter(|p| !p.is_empty()).map(std::path::PathBuf::from);
    let auth = AuthConfig { keys_env, admin_key_env, store };
    if let Some(k) = &auth.admin_key_env {
        check_env_name(k, "auth.admin_key_env", &mut errors);
    }
    if let Some(k) = &auth.keys_env {
        check_env_name(k, "auth.keys_env", &mut errors);
    }

    let d = raw.dispatch.unwrap_or_default();
    let defaults = DispatchConfig::default();
    let dispatch = DispatchConfig {
        deadline: d.deadline.unwrap_or(defaults.deadline),
        backoff_base: d.backoff_base.unwrap_or(defaults.backoff_base),
        backoff_max: d.backoff_max.unwrap_or(defaults.backoff_max),
        retry_after_cap: d.retry_after_cap.unwrap_or(defaults.retry_after_cap),
        infer_models: d.infer_models.unwrap_or(defaults.infer_models),
    };
    if dispatch.deadline.is_zero() {
        errors.push(ConfigError::new("dispatch.deadline", "must be greater than zero"));
    }
    for (field, d) in [
        ("deadline", dispatch.deadline),
        ("backoff_base", dispatch.backoff_base),
        ("backoff_max", dispatch.backoff_max),
        ("retry_after_cap", dispatch.retry_after_cap),
    ] {
        check_bounded(&format!("dispatch.{field}"), d, &mut errors);
    }
    if dispatch.backoff_max < dispatch.backoff_base {
        errors
            .push(ConfigError::new("dispatch.backoff_max", "must not be smaller than dispatch.backoff_base"));
    }

    let r = raw.responses.unwrap_or_default();
    let rd = ResponsesConfig::default();
    let responses = ResponsesConfig {
        path: r.path.filter(|p| !p.is_empty()).map(std::path::PathBuf::from),
        retention: r.retention.unwrap_or(rd.retention),
        max_responses: r.max_responses.unwrap_or(rd.max_responses),
        max_bytes: r.max_bytes.unwrap_or(rd.max_bytes),
    };
    if responses.max_bytes < 1024 * 1024 {
        errors.push(ConfigError::new("responses.max_bytes", "must be at least 1 MiB (1048576)"));
    }
    if responses.retention.is_zero() {
        errors.push(ConfigError::new("responses.retention", "must be greater than zero"));
    }
    if responses.max_responses == 0 {
        errors.push(ConfigError::new("responses.max_responses", "must be greater than zero"));
    }

    let health = validate_health(raw.health.unwrap_or_default(), &mut errors);
    let status = super::observe::validate_status(raw.status.unwrap_or_default(), &mut errors);
    let traces = super::observe::validate_traces(raw.traces.unwrap_or_default(), &mut errors);
    let protect = super::protect::validate(
        super::protect::RawProtect {
            keys: raw.keys,
            teams: raw.teams,
            prices: raw.prices,
            server: raw.server,
            state: raw.state,
        },
        &mut errors,
    );

    let names: Vec<&str> = routes.keys().map(String::as_str).collect();
    let app = super::app::validate(raw.app.unwrap_or_default(), &names, &mut errors);

    if errors.is_empty() {
        Ok(Config {
            listen,
            providers,
            routes,
            auth,
            dispatch,
            responses,
            health,
            status,
            traces,
            protect,
            app,
        })
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The most targets a route may have (the engine keeps a bit per target).
const MAX_ROUTE_TARGETS: usize = 64;

/// The longest duration a setting that is added to a point in time may have: a week (far beyond any sensible
/// timeout or cooldown, far below where adding it to the clock could overflow).
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

fn check_bounded(path: &str, d: Duration, errors: &mut Vec<ConfigError>) {
    if d > MAX_DURATION {
        errors.push(ConfigError::new(path, "must be at most 7 days"));
    }
}

fn route_targets(
    raw: &[RawRouteTarget],
    path: &str,
    providers: &BTreeMap<String, ProviderConfig>,
    errors: &mut Vec<ConfigError>,
) -> Vec<RouteTarget> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, t) in raw.iter().enumerate() {
        let tpath = format!("{path}[{i}]");
        let (text, weight) = match t {
            RawRouteTarget::Name(s) => (s.as_str(), 1),
            RawRouteTarget::Table(t) => (t.target.as_str(), t.weight.unwrap_or(1)),
        };
        match text.split_once('/') {
            Some((prov, model)) if !prov.is_empty() && !model.is_empty() => {
                if !providers.contains_key(prov) {
                    let known: Vec<&str> = providers.keys().map(String::as_str).collect();
                    errors.push(ConfigError::new(
                        tpath,
                        format!("unknown provider \"{prov}\" (known: {})", list_or_none(&known)),
                    ));
                } else {
                    let target = TargetRef { provider: prov.to_owned(), model: model.to_owned() };
                    out.push(RouteTarget { target, weight });
                }
            }
            _ => {
                errors.push(ConfigError::new(tpath, format!("\"{text}\" is not of the form provider/model")))
            }
        }
    }
    out
}

/// The most continuations a route may allow per request.
const MAX_RESUMES: u32 = 8;

fn stream_policy(r: &RawRoute, path: &str, errors: &mut Vec<ConfigError>) -> StreamPolicy {
    let d = StreamPolicy::default();
    let mut max_resumes = r.max_resumes.unwrap_or(d.max_resumes);
    if max_resumes > MAX_RESUMES {
        errors
            .push(ConfigError::new(format!("{path}.max_resumes"), format!("must be at most {MAX_RESUMES}")));
    }
    if r.resume == Some(false) {
        max_resumes = 0;
    }
    let hedge = r.hedge.as_ref().and_then(|h| {
        let hpath = format!("{path}.hedge.after");
        let floor = h.floor.unwrap_or(Duration::from_secs(1));
        check_bounded(&format!("{path}.hedge.floor"), floor, errors);
        let Some(after) = h.after.as_deref() else {
            errors.push(ConfigError::new(
                hpath,
                "a hedge needs `after`: a delay (\"1s\") or a percentile (\"p90\")",
            ));
            return None;
        };
        if let Some(p) = after.strip_prefix('p') {
            return match p.parse::<f64>() {
                Ok(p) if p > 0.0 && p < 100.0 => Some(Hedge::Learnt { quantile: p / 100.0, floor }),
                _ => {
                    errors.push(ConfigError::new(
                        hpath,
                        format!("\"{after}\" is not a percentile between p0 and p100"),
                    ));
                    None
                }
            };
        }
        match humantime_serde::re::humantime::parse_duration(after) {
            Ok(d) if !d.is_zero() => {
                check_bounded(&hpath, d, errors);
                Some(Hedge::After(d))
            }
            _ => {
                errors.push(ConfigError::new(
                    hpath,
                    format!("\"{after}\" is neither a delay (\"1s\") nor a percentile (\"p90\")"),
                ));
                None
            }
        }
    });
    StreamPolicy { max_resumes, hedge }
}

fn validate_health(h: RawHealth, errors: &mut Vec<ConfigError>) -> HealthConfig {
    let d = HealthConfig::default();
    let b = &d.breaker;
    let breaker = BreakerConfig {
        consecutive_failures: h.consecutive_failures.unwrap_or(b.consecutive_failures),
        failure_rate: h.failure_rate.unwrap_or(b.failure_rate),
        window: h.window.unwrap_or(b.window),
        min_requests: h.min_requests.unwrap_or(b.min_requests),
        cooldown: h.cooldown.unwrap_or(b.cooldown),
        cooldown_max: h.cooldown_max.unwrap_or(b.cooldown_max),
        ramp: h.ramp.unwrap_or(b.ramp),
        jitter: b.jitter,
    };
    if breaker.consecutive_failures == 0 {
        errors.push(ConfigError::new("health.consecutive_failures", "must be at least 1"));
    }
    if !(breaker.failure_rate > 0.0 && breaker.failure_rate <= 1.0) {
        errors.push(ConfigError::new("health.failure_rate", "must be above 0 and at most 1"));
    }
    if breaker.window < Duration::from_millis(100) {
        errors.push(ConfigError::new("health.window", "must be at least 100ms"));
    }
    if breaker.cooldown.is_zero() {
        errors.push(ConfigError::new("health.cooldown", "must be greater than zero"));
    }
    if breaker.cooldown_max < breaker.cooldown {
        errors.push(ConfigError::new("health.cooldown_max", "must not be smaller than health.cooldown"));
    }
    for (field, d) in [
        ("window", breaker.window),
        ("cooldown", breaker.cooldown),
        ("cooldown_max", breaker.cooldown_max),
        ("ramp", breaker.ramp),
    ] {
        check_bounded(&format!("health.{field}"), d, errors);
    }
    if let Some(d) = h.rate_limit_cooldown {
        check_bounded("health.rate_limit_cooldown", d, errors);
    }
    let t = h.time_limits.unwrap_or_default();
    let dl = LearntConfig::default();
    let learnt = LearntConfig {
        quantile: t.quantile.unwrap_or(dl.quantile),
        multiplier: t.multiplier.unwrap_or(dl.multiplier),
        floor: t.floor.unwrap_or(dl.floor),
        min_samples: t.min_samples.unwrap_or(dl.min_samples),
    };
    if !(learnt.quantile > 0.0 && learnt.quantile <= 1.0) {
        errors.push(ConfigError::new("health.time_limits.quantile", "must be above 0 and at most 1"));
    }
    if !(learnt.multiplier >= 1.0 && learnt.multiplier.is_finite()) {
        errors.push(ConfigError::new("health.time_limits.multiplier", "must be at least 1"));
    }
    check_bounded("health.time_limits.floor", learnt.floor, errors);
    let r = h.retry_budget.unwrap_or_default();
    let dr = RetryBudgetConfig::default();
    let retry_budget = RetryBudgetConfig {
        ratio: r.ratio.map(|x| x as f32).unwrap_or(dr.ratio),
        min_per_second: r.min_per_second.unwrap_or(dr.min_per_second),
        ttl: r.ttl.unwrap_or(dr.ttl),
    };
    // tower's TpsBudget takes these ranges (and panics outside them): check them here.
    if !(0.0..=1000.0).contains(&retry_budget.ratio) {
        errors.push(ConfigError::new("health.retry_budget.ratio", "must be between 0 and 1000"));
    }
    if retry_budget.min_per_second > 1_000_000 {
        errors.push(ConfigError::new("health.retry_budget.min_per_second", "must be at most 1000000"));
    }
    if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&retry_budget.ttl) {
        errors.push(ConfigError::new("health.retry_budget.ttl", "must be between 1s and 60s"));
    }
    HealthConfig {
        enabled: h.enabled.unwrap_or(d.enabled),
        breaker,
        rate_limit_cooldown: h.rate_limit_cooldown.unwrap_or(d.rate_limit_cooldown),
        time_limits: t.enabled.unwrap_or(true).then_some(learnt),
        retry_budget,
    }
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

pub(super) fn check_env_name(name: &str, path: &str, errors: &mut Vec<ConfigError>) {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        errors.push(ConfigError::new(
            path,
            format!("\"{name}\" is not an environment variable name (this field takes the variable's NAME, not the secret)"),
        ));
    }
}

fn validate_provider(
    name: &str,
    p: RawProvider,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<ProviderConfig> {
    let Some(kind) = ProviderKind::parse(&p.kind) else {
        errors.push(ConfigError::new(
            format!("{path}.kind"),
            format!("unknown kind \"{}\" (expected anthropic, openai, openai-responses, gemini or local-embeddings)", p.kind),
        ));
        return None;
    };
    let local = kind == ProviderKind::LocalEmbeddings;
    if local {
        if p.base_url.is_some() {
            errors
                .push(ConfigError::new(format!("{path}.base_url"), "is set, but this model runs in-process"));
        }
        if p.model_dir.is_none() {
            errors.push(ConfigError::new(
                format!("{path}.model_dir"),
                "is required for kind \"local-embeddings\" (a folder with config.json, tokenizer.json, model.safetensors)",
            ));
        }
        if p.probe.is_some() {
            errors.push(ConfigError::new(format!("{path}.probe"), "is set, but this model runs in-process"));
        }
    } else if p.model_dir.is_some() {
        errors.push(ConfigError::new(format!("{path}.model_dir"), "is only for kind \"local-embeddings\""));
    }
    let base_url = p.base_url.filter(|_| !local).unwrap_or_else(|| kind.default_base_url().to_owned());
    let base_url = base_url.trim_end_matches('/').to_owned();
    if let Some(argv) = &p.command {
        if argv.first().is_none_or(|a| a.trim().is_empty()) {
            errors.push(ConfigError::new(
                format!("{path}.command"),
                "needs a program to run (a list: [\"program\", \"arg\", ...])",
            ));
        }
        if local {
            errors
                .push(ConfigError::new(format!("{path}.command"), "is set, but this model runs in-process"));
        }
    } else if base_url.contains(crate::provider::local::PORT) {
        errors.push(ConfigError::new(
            format!("{path}.base_url"),
            "has {port}, which only a provider with a command gets",
        ));
    }
    match reqwest::Url::parse(&base_url.replace(crate::provider::local::PORT, "1")) {
        _ if local => {}
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
        _ => errors.push(ConfigError::new(
            format!("{path}.base_url"),
            format!("\"{base_url}\" is not an http(s) URL"),
        )),
    }
    if let Some(k) = &p.api_key_env {
        check_env_name(k, &format!("{path}.api_key_env"), errors);
    }
    let max_tokens_field = match p.max_tokens_field.as_deref() {
        None if base_url.contains("api.openai.com") => MaxTokensField::MaxCompletionTokens,
        None => MaxTokensField::MaxTokens,
        Some("max_tokens") => MaxTokensField::MaxTokens,
        Some("max_completion_tokens") => MaxTokensField::MaxCompletionTokens,
        Some(other) => {
            errors.push(ConfigError::new(
                format!("{path}.max_tokens_field"),
                format!("\"{other}\" is neither \"max_tokens\" nor \"max_completion_tokens\""),
            ));
            MaxTokensField::MaxTokens
        }
    };
    if p.max_tokens_field.is_some() && kind != ProviderKind::OpenAi {
        errors
            .push(ConfigError::new(format!("{path}.max_tokens_field"), "only applies to kind = \"openai\""));
    }
    let anthropic_version =
        p.anthropic_version.clone().unwrap_or_else(|| crate::provider::ANTHROPIC_VERSION.to_owned());
    if p.anthropic_version.is_some() && kind != ProviderKind::Anthropic {
        errors.push(ConfigError::new(
            format!("{path}.anthropic_version"),
            "only applies to kind = \"anthropic\"",
        ));
    }
    let is_date = anthropic_version.len() == 10
        && anthropic_version
            .char_indices()
            .all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
    if !is_date {
        errors.push(ConfigError::new(
            format!("{path}.anthropic_version"),
            format!("\"{anthropic_version}\" is not a version date like 2023-06-01"),
        ));
    }
    let d = Timeouts::default();
    let t = p.timeouts;
    let timeouts = Timeouts {
        connect: t.connect.unwrap_or(d.connect),
        first_byte: t.first_byte.unwrap_or(d.first_byte),
        idle: t.idle.unwrap_or(d.idle),
        request: t.request.unwrap_or(d.request),
    };
    for (field, v) in [
        ("connect", timeouts.connect),
        ("first_byte", timeouts.first_byte),
        ("idle", timeouts.idle),
        ("request", timeouts.request),
    ] {
        if v.is_zero() {
            errors.push(ConfigError::new(format!("{path}.timeouts.{field}"), "must be greater than zero"));
        }
        check_bounded(&format!("{path}.timeouts.{field}"), v, errors);
    }
    let capabilities = super::Capabilities::default_for(kind).overridden(p.capabilities);
    let mut models = BTreeMap::new();
    for (m, raw) in p.models {
        if raw.context_window == Some(0) {
            errors.push(ConfigError::new(
                format!("{path}.models.{}.context_window", quote(&m)),
                "must be greater than zero",
            ));
        }
        let model = ModelConfig {
            capabilities: capabilities.overridden(raw.capabilities),
            context_window: raw.context_window,
        };
        models.insert(m, model);
    }
    if p.max_concurrency == Some(0) {
        errors.push(ConfigError::new(format!("{path}.max_concurrency"), "must be greater than zero"));
    }
    let probe = p.probe.map(|raw| {
        let request = match raw.request.as_deref() {
            None | Some("models") => ProbeRequest::Models,
            Some("chat") => ProbeRequest::Chat,
            Some(other) => {
                errors.push(ConfigError::new(
                    format!("{path}.probe.request"),
                    format!("\"{other}\" is neither \"models\" nor \"chat\""),
                ));
                ProbeRequest::Models
            }
        };
        let interval = raw.interval.unwrap_or(Duration::from_secs(10));
        if interval < Duration::from_millis(100) {
            errors.push(ConfigError::new(format!("{path}.probe.interval"), "must be at least 100ms"));
        }
        check_bounded(&format!("{path}.probe.interval"), interval, errors);
        ProbeConfig { interval, request }
    });
    if p.tls_ca.is_some() && !base_url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) {
        errors.push(ConfigError::new(
            format!("{path}.tls_ca"),
            "is set, but base_url is not https://: there is no certificate to check",
        ));
    }
    Some(ProviderConfig {
        capabilities,
        models,
        probe,
        tls_ca: p.tls_ca,
        model_dir: p.model_dir,
        command: p.command,
        name: name.to_owned(),
        kind,
        base_url,
        api_key_env: p.api_key_env,
        retries: p.retries.unwrap_or(1),
        // An in-process model uses every core for one batch: one request at a time unless told otherwise.
        max_concurrency: p.max_concurrency.or(local.then_some(1)),
        max_tokens_field,
        anthropic_version,
        timeouts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse_and_validate(text) {
            Ok(_) => Vec::new(),
            Err(ConfigErrors(e)) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn the_example_config_is_valid() {
        let text = include_str!("../../../../nines.example.toml");
        let c = parse_and_validate(text).unwrap();
        let claude = &c.routes["claude-sonnet-4-5"];
        assert_eq!(claude.targets().count(), 3);
        assert_eq!(
            claude.fallbacks[0].target,
            TargetRef { provider: "local".into(), model: "llama3.1:8b".into() }
        );
        assert_eq!(c.routes["gpt-4.1"].strategy, Strategy::Weighted);
        assert_eq!(c.routes["gpt-4.1"].pool[0].weight, 3);
        assert_eq!(c.providers["anthropic"].retries, 1);
        assert_eq!(c.providers["local"].max_tokens_field, MaxTokensField::MaxTokens);
        assert_eq!(c.providers["openai"].base_url, "https://api.openai.com/v1");
        assert_eq!(c.auth.keys_env.as_deref(), Some("NINES_KEYS"));
        let local = &c.providers["local"];
        assert!(!local.model("llama3.1:8b").capabilities.images);
        assert!(local.model("llava:13b").capabilities.images, "a model's override");
        assert!(!local.model("llava:13b").capabilities.reasoning, "inherited from the provider");
        assert_eq!(local.model("llava:13b").context_window, Some(32_768));
        assert_eq!(c.providers["anthropic"].probe.map(|p| p.request), Some(ProbeRequest::Models));
        assert!(c.health.enabled);
        assert_eq!(c.health.breaker.consecutive_failures, 3);
        assert!(
            c.providers["anthropic"].capabilities.reasoning && !c.providers["openai"].capabilities.reasoning
        );
        assert!(c.providers["anthropic"].capabilities.prefill && !c.providers["openai"].capabilities.prefill);
        assert!(local.capabilities.prefill, "declared");
        let gpt = c.routes["gpt-4.1"].streams;
        assert_eq!(gpt.max_resumes, 2);
        assert_eq!(gpt.hedge, Some(Hedge::Learnt { quantile: 0.9, floor: Duration::from_secs(1) }));
        assert_eq!(claude.streams, StreamPolicy::default());
    }

    #[test]
    fn stream_policies_are_checked() {
        let route = |extra: &str| {
            format!("[providers.a]\nkind = \"openai\"\n[routes.r]\ntargets = [\"a/m\"]\n{extra}\n")
        };
        let c = parse_and_validate(&route("resume = false\nhedge = { after = \"250ms\" }")).unwrap();
        assert_eq!(c.routes["r"].streams.max_resumes, 0);
        assert_eq!(c.routes["r"].streams.hedge, Some(Hedge::After(Duration::from_millis(250))));
        for (extra, want) in [
            ("max_resumes = 9", "routes.r.max_resumes: must be at most 8"),
            ("hedge = { after = \"p100\" }", "routes.r.hedge.after: \"p100\" is not a percentile"),
            ("hedge = { after = \"soon\" }", "routes.r.hedge.after: \"soon\" is neither a delay"),
            ("hedge = { after = \"0s\" }", "routes.r.hedge.after: \"0s\" is neither a delay"),
            ("hedge = { floor = \"1s\" }", "routes.r.hedge.after: a hedge needs `after`"),
        ] {
            let errs = errors(&route(extra));
            assert!(errs.iter().any(|e| e.starts_with(want)), "{extra}: {errs:?}");
        }
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let errs = errors(
            r#"
listen = "nowhere"
[providers.a]
kind = "opnai"
[providers.b]
kind = "openai"
base_url = "ftp://x"
api_key_env = "sk-123 secret"
[providers.b.timeouts]
idle = "0s"
[routes.chat]
targets = ["a/m", "b", "zzz/m"]
[routes.empty]
targets = []
"#,
        );
        let expected = [
            "listen: \"nowhere\" is not an address like 127.0.0.1:4000",
            "providers.a.kind: unknown kind \"opnai\" (expected anthropic, openai, openai-responses, gemini or local-embeddings)",
            "providers.b.base_url: \"ftp://x\" is not an http(s) URL",
            "providers.b.api_key_env: \"sk-123 secret\" is not an environment variable name",
            "providers.b.timeouts.idle: must be greater than zero",
            "routes.chat.targets[0]: unknown provider \"a\" (known: b)",
            "routes.chat.targets[1]: \"b\" is not of the form provider/model",
            "routes.chat.targets[2]: unknown provider \"zzz\" (known: b)",
            "routes.empty.targets: a route needs at least one target",
        ];
        for e in expected {
            assert!(errs.iter().any(|got| got.starts_with(e)), "missing {e:?} in {errs:#?}");
        }
        assert_eq!(errs.len(), expected.len(), "{errs:#?}");
    }

    #[test]
    fn type_errors_and_unknown_keys_name_their_path() {
        let errs = errors("[providers.a]\nkind = \"openai\"\nretries = \"three\"\n");
        assert!(errs[0].starts_with("providers.a.retries: "), "{errs:?}");
        let errs = errors("[providers.a]\nkind = \"openai\"\nbase_ulr = \"http://x\"\n");
        assert!(errs[0].starts_with("providers.a.base_ulr: unknown field `base_ulr`"), "{errs:?}");
        let errs = errors("[providers.a]\nkind = \"openai\"\n[providers.a.timeouts]\nconnect = \"soon\"\n");
        assert!(errs[0].starts_with("providers.a.timeouts.connect: "), "{errs:?}");
        let errs = errors("listen = [\n");
        assert!(errs[0].starts_with("(file): "), "{errs:?}");
    }

    #[test]
    fn route_names_with_dots_are_quoted_in_paths() {
        let errs = errors("[routes.\"gpt-4.1\"]\ntargets = [\"nope/x\"]\n");
        assert_eq!(errs, vec!["routes.\"gpt-4.1\".targets[0]: unknown provider \"nope\" (known: none)"]);
    }

    #[test]
    fn kind_specific_options_are_checked() {
        let errs = errors(
            "[providers.g]\nkind = \"gemini\"\nmax_tokens_field = \"max_tokens\"\nanthropic_version = \"v1\"\n",
        );
        assert!(errs.iter().any(|e| e.starts_with("providers.g.max_tokens_field: only applies")), "{errs:?}");
        assert!(
            errs.iter().any(|e| e.starts_with("providers.g.anthropic_version: only applies")),
            "{errs:?}"
        );
        assert!(errs.iter().any(|e| e.contains("\"v1\" is not a version date")), "{errs:?}");
    }
}
