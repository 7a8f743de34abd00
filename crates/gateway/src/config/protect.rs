//! What protects the gateway, the providers and the clients that matter: client identities (`[keys.NAME]`) and
//! teams (`[teams.NAME]`) with their limits, budgets and priorities, the price table budgets are counted in
//! (`[prices."MODEL"]`), and the edge's bounds (`[server]`). Raw and validated forms side by side.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::validate::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    /// The NAME of the environment variable holding the key.
    pub key_env: Option<String>,
    /// The key's SHA-256, hex: the configuration never holds the key itself.
    pub key_sha256: Option<String>,
    pub team: Option<String>,
    /// Route names or patterns (`gpt-*`) the key may use; absent: every route.
    pub routes: Option<Vec<String>>,
    pub priority: Option<String>,
    /// Whether the key may choose a request's priority with `x-nines-priority` (any key may lower its own).
    pub set_priority: Option<bool>,
    pub limits: Option<RawLimits>,
    pub budget: Option<RawBudget>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTeam {
    pub limits: Option<RawLimits>,
    pub budget: Option<RawBudget>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub requests_per_minute: Option<u32>,
    pub input_tokens_per_minute: Option<u64>,
    pub output_tokens_per_minute: Option<u64>,
    pub concurrency: Option<u32>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// US dollars per UTC day.
    pub daily: Option<f64>,
    /// US dollars per UTC calendar month.
    pub monthly: Option<f64>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    /// US dollars per million input tokens.
    pub input: f64,
    /// US dollars per million output tokens.
    pub output: f64,
}

/// `[state]`: what a fleet of replicas shares through Redis.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub redis_url: Option<String>,
    pub tls_ca: Option<std::path::PathBuf>,
    #[serde(default, with = "humantime_serde")]
    pub budget: Option<Duration>,
    pub prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub max_connections: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub header_timeout: Option<Duration>,
    pub min_body_rate: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub send_timeout: Option<Duration>,
    pub max_header_bytes: Option<u32>,
    pub max_in_flight: Option<u32>,
    pub max_buffered_bytes: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    pub drain: Option<Duration>,
    /// The longest a request may wait for a target's concurrency limit, by priority.
    #[serde(default, with = "humantime_serde")]
    pub queue_interactive: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub queue_default: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub queue_batch: Option<Duration>,
}

/// How much a request matters when capacity is short: `Interactive` is served first, `Batch` shed first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Interactive = 0,
    #[default]
    Default = 1,
    Batch = 2,
}

impl Priority {
    pub fn parse(s: &str) -> Option<Priority> {
        match s.trim() {
            "interactive" => Some(Priority::Interactive),
            "default" => Some(Priority::Default),
            "batch" => Some(Priority::Batch),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Interactive => "interactive",
            Priority::Default => "default",
            Priority::Batch => "batch",
        }
    }
}

/// Per-minute limits; `None`: unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens_per_minute: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens_per_minute: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// Spend limits in US dollars; `None`: unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Budget {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly: Option<f64>,
}

impl Budget {
    pub fn is_empty(&self) -> bool {
        self.daily.is_none() && self.monthly.is_none()
    }
}

/// Where a key's secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySecret {
    Env(String),
    Sha256([u8; 32]),
}

/// A client identity of the configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyConfig {
    pub name: String,
    pub secret: KeySecret,
    pub team: Option<String>,
    /// Route names or `*` patterns; empty: every route.
    pub routes: Vec<String>,
    pub priority: Priority,
    pub set_priority: bool,
    pub limits: Limits,
    pub budget: Budget,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TeamConfig {
    pub limits: Limits,
    pub budget: Budget,
}

/// US dollars per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl Price {
    pub fn cost(&self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input + output as f64 * self.output) / 1e6
    }
}

/// `[server]`: the edge's bounds, each with its default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerConfig {
    /// Connections beyond this are closed as soon as accepted.
    pub max_connections: u32,
    /// A request's headers must arrive within this; a kept-alive connection waiting for its next request is
    /// closed after it too.
    pub header_timeout: Duration,
    /// A body must arrive at this many bytes a second or faster (after a grace of `header_timeout`).
    pub min_body_rate: u32,
    /// The longest a write to a client may wait (a client that stops reading is cut).
    pub send_timeout: Duration,
    /// A request's headers, summed, beyond this: 431 in the door's dialect.
    pub max_header_bytes: u32,
    /// Requests being served at once, over every door; beyond: 503 with `Retry-After`.
    pub max_in_flight: u32,
    /// Request bodies held at once, in bytes; beyond: 503 with `Retry-After`.
    pub max_buffered_bytes: u64,
    /// How long a shutdown waits for requests in flight.
    pub drain: Duration,
    /// The longest a request waits for a target's concurrency limit, by priority (interactive, default, batch).
    pub queue: [Duration; 3],
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(20),
            min_body_rate: 1024,
            send_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            max_in_flight: 4096,
            max_buffered_bytes: 512 * 1024 * 1024,
            drain: Duration::from_secs(30),
            queue: [Duration::from_secs(10), Duration::from_secs(2), Duration::from_millis(0)],
        }
    }
}

/// Everything of this file's tables, validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Protect {
    pub keys: Vec<KeyConfig>,
    pub teams: BTreeMap<String, TeamConfig>,
    /// By `provider/model` or by model name.
    pub prices: BTreeMap<String, Price>,
    pub server: ServerConfig,
    pub state: crate::shared::StateConfig,
}

impl Protect {
    /// The price of `provider/model` (`label`), else of the model by its name.
    pub fn price(&self, label: &str, model: &str) -> Option<Price> {
        if self.prices.is_empty() {
            return None;
        }
        self.prices.get(label).or_else(|| self.prices.get(model)).copied()
    }
}

pub struct RawProtect {
    pub keys: BTreeMap<String, RawKey>,
    pub teams: BTreeMap<String, RawTeam>,
    pub prices: BTreeMap<String, RawPrice>,
    pub server: Option<RawServer>,
    pub state: Option<RawState>,
}

pub fn validate(raw: RawProtect, errors: &mut Vec<ConfigError>) -> Protect {
    let mut teams = BTreeMap::new();
    for (name, t) in raw.teams {
        let path = format!("teams.{name}");
        let limits = limits(t.limits, &path, errors);
        let budget = budget(t.budget, &path, errors);
        teams.insert(name, TeamConfig { limits, budget });
    }
    let mut keys = Vec::new();
    for (name, k) in raw.keys {
        let path = format!("keys.{name}");
        if !valid_name(&name) {
            errors.push(ConfigError::new(&path, "a key name is 1 to 64 of A-Z a-z 0-9 . _ -"));
        }
        let secret = match (k.key_env, k.key_sha256) {
            (Some(env), None) => {
                super::validate::check_env_name(&env, &format!("{path}.key_env"), errors);
                KeySecret::Env(env)
            }
            (None, Some(hex)) => match parse_sha256(&hex) {
                Some(d) => KeySecret::Sha256(d),
                None => {
                    errors.push(ConfigError::new(
                        format!("{path}.key_sha256"),
                        "must be 64 hexadecimal digits",
                    ));
                    KeySecret::Sha256([0; 32])
                }
            },
            _ => {
                errors.push(ConfigError::new(&path, "give exactly one of key_env and key_sha256"));
                KeySecret::Sha256([0; 32])
            }
        };
        if let Some(team) = &k.team
            && !teams.contains_key(team)
            && !valid_name(team)
        {
            errors.push(ConfigError::new(
                format!("{path}.team"),
                "a team name is 1 to 64 of A-Z a-z 0-9 . _ -",
            ));
        }
        let routes = k.routes.unwrap_or_default();
        for (i, r) in routes.iter().enumerate() {
            if r.is_empty() {
                errors.push(ConfigError::new(format!("{path}.routes[{i}]"), "must not be empty"));
            }
        }
        let priority = match k.priority.as_deref() {
            None => Priority::Default,
            Some(p) => Priority::parse(p).unwrap_or_else(|| {
                errors.push(ConfigError::new(
                    format!("{path}.priority"),
                    format!("unknown priority \"{p}\" (expected interactive, default or batch)"),
                ));
                Priority::Default
            }),
        };
        keys.push(KeyConfig {
            limits: limits(k.limits, &path, errors),
            budget: budget(k.budget, &path, errors),
            name,
            secret,
            team: k.team,
            routes,
            priority,
            set_priority: k.set_priority.unwrap_or(false),
        });
    }
    let mut prices = BTreeMap::new();
    for (model, p) in raw.prices {
        if !(p.input.is_finite() && p.input >= 0.0 && p.output.is_finite() && p.output >= 0.0) {
            errors.push(ConfigError::new(
                format!("prices.\"{model}\""),
                "prices must be ≥ 0 dollars per million",
            ));
        }
        prices.insert(model, Price { input: p.input, output: p.output });
    }
    Protect {
        keys,
        teams,
        prices,
        server: server(raw.server.unwrap_or_default(), errors),
        state: state(raw.state.unwrap_or_default(), errors),
    }
}

fn state(s: RawState, errors: &mut Vec<ConfigError>) -> crate::shared::StateConfig {
    let d = crate::shared::StateConfig::default();
    let url = s.redis_url.filter(|u| !u.is_empty());
    if let Some(Err(e)) = url.as_deref().map(crate::shared::Topology::parse) {
        errors.push(ConfigError::new("state.redis_url", e));
    }
    let budget = s.budget.unwrap_or(d.budget);
    if budget.is_zero() || budget > Duration::from_secs(5) {
        errors.push(ConfigError::new("state.budget", "must be above zero and at most 5s"));
    }
    let prefix = s.prefix.unwrap_or(d.prefix);
    if !valid_name(&prefix) {
        errors.push(ConfigError::new("state.prefix", "is 1 to 64 of A-Z a-z 0-9 . _ -"));
    }
    crate::shared::StateConfig { redis_url: url, tls_ca: s.tls_ca, budget, prefix }
}

fn server(s: RawServer, errors: &mut Vec<ConfigError>) -> ServerConfig {
    let d = ServerConfig::default();
    let c = ServerConfig {
        max_connections: s.max_connections.unwrap_or(d.max_connections),
        header_timeout: s.header_timeout.unwrap_or(d.header_timeout),
        min_body_rate: s.min_body_rate.unwrap_or(d.min_body_rate),
        send_timeout: s.send_timeout.unwrap_or(d.send_timeout),
        max_header_bytes: s.max_header_bytes.unwrap_or(d.max_header_bytes),
        max_in_flight: s.max_in_flight.unwrap_or(d.max_in_flight),
        max_buffered_bytes: s.max_buffered_bytes.unwrap_or(d.max_buffered_bytes),
        drain: s.drain.unwrap_or(d.drain),
        queue: [
            s.queue_interactive.unwrap_or(d.queue[0]),
            s.queue_default.unwrap_or(d.queue[1]),
            s.queue_batch.unwrap_or(d.queue[2]),
        ],
    };
    for (field, zero) in [
        ("max_connections", c.max_connections == 0),
        ("header_timeout", c.header_timeout.is_zero()),
        ("send_timeout", c.send_timeout.is_zero()),
        ("max_header_bytes", c.max_header_bytes < 1024),
        ("max_in_flight", c.max_in_flight == 0),
        ("max_buffered_bytes", c.max_buffered_bytes < 1024 * 1024),
    ] {
        if zero {
            let what = match field {
                "max_header_bytes" => "must be at least 1024",
                "max_buffered_bytes" => "must be at least 1 MiB (1048576)",
                _ => "must be greater than zero",
            };
            errors.push(ConfigError::new(format!("server.{field}"), what));
        }
    }
    for (field, v) in
        [("header_timeout", c.header_timeout), ("send_timeout", c.send_timeout), ("drain", c.drain)]
    {
        if v > Duration::from_secs(24 * 3600) {
            errors.push(ConfigError::new(format!("server.{field}"), "must be at most a day"));
        }
    }
    c
}

fn limits(raw: Option<RawLimits>, path: &str, errors: &mut Vec<ConfigError>) -> Limits {
    let r = raw.unwrap_or_default();
    let l = Limits {
        requests_per_minute: r.requests_per_minute,
        input_tokens_per_minute: r.input_tokens_per_minute,
        output_tokens_per_minute: r.output_tokens_per_minute,
        concurrency: r.concurrency,
    };
    for (field, zero) in [
        ("requests_per_minute", l.requests_per_minute == Some(0)),
        ("input_tokens_per_minute", l.input_tokens_per_minute == Some(0)),
        ("output_tokens_per_minute", l.output_tokens_per_minute == Some(0)),
        ("concurrency", l.concurrency == Some(0)),
    ] {
        if zero {
            errors.push(ConfigError::new(format!("{path}.limits.{field}"), "must be greater than zero"));
        }
    }
    l
}

fn budget(raw: Option<RawBudget>, path: &str, errors: &mut Vec<ConfigError>) -> Budget {
    let r = raw.unwrap_or_default();
    for (field, v) in [("daily", r.daily), ("monthly", r.monthly)] {
        if v.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
            errors.push(ConfigError::new(format!("{path}.budget.{field}"), "must be ≥ 0 dollars"));
        }
    }
    Budget { daily: r.daily, monthly: r.monthly }
}

/// 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

pub fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Whether `route` matches `pattern`: equal, or with `*` standing for any run of characters.
pub fn matches(pattern: &str, route: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else { return false };
    let Some(mut rest) = route.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for p in middle {
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_patterns() {
        assert!(matches("chat", "chat"));
        assert!(!matches("chat", "chat2"));
        assert!(matches("gpt-*", "gpt-4o"));
        assert!(matches("*", "anything"));
        assert!(matches("*-mini", "gpt-4o-mini"));
        assert!(!matches("*-mini", "gpt-4o"));
        assert!(matches("a*b*c", "a-x-b-y-c"));
        assert!(!matches("a*b*c", "a-x-c"));
        assert!(!matches("ab*ba", "aba"), "prefix and suffix must not overlap");
    }

    #[test]
    fn sha256_hex() {
        assert!(parse_sha256(&"ab".repeat(32)).is_some());
        assert!(parse_sha256("abc").is_none());
        assert!(parse_sha256(&"zz".repeat(32)).is_none());
    }
}
