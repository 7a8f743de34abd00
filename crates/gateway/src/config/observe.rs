//! What the gateway shows of itself: the status store, incidents and availability (`[status]`), and traces
//! (`[traces]`). Raw and validated forms side by side: they are small, and nothing else reads them.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::validate::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatus {
    pub public: Option<bool>,
    pub path: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub retention: Option<Duration>,
    pub objective: Option<f64>,
    pub incidents: Option<RawIncidents>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIncidents {
    pub failure_rate: Option<f64>,
    pub window: Option<u32>,
    pub min_attempts: Option<u32>,
    pub recover_after: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraces {
    pub otlp_endpoint: Option<String>,
    pub service_name: Option<String>,
}

/// `[status]`: the status page, its store, and what an incident is.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusConfig {
    /// `/status`, `/status.json` and `/metrics` without a key. Else they need the admin key (`auth.admin_key_env`),
    /// or, when none is configured, a client key.
    pub public: bool,
    /// A SQLite file for per-minute history and incidents; `None`: in memory (lost on restart).
    pub path: Option<PathBuf>,
    /// History and closed incidents older than this are deleted.
    pub retention: Duration,
    /// The availability objective the error budget is counted against (0.999: 99.9%).
    pub objective: f64,
    pub incidents: IncidentConfig,
}

/// When an incident opens and closes for a target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IncidentConfig {
    /// An incident opens when its breaker opens, or when at least this share of its last `window` attempts failed
    /// (with at least `min_attempts` of them).
    pub failure_rate: f64,
    pub window: u32,
    pub min_attempts: u32,
    /// It closes after this many successful attempts in a row, its breaker closed (and, when its failure rate opened
    /// it, that rate under half `failure_rate`).
    pub recover_after: u32,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig { failure_rate: 0.25, window: 50, min_attempts: 20, recover_after: 3 }
    }
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            public: false,
            path: None,
            retention: Duration::from_secs(35 * 24 * 3600),
            objective: 0.999,
            incidents: IncidentConfig::default(),
        }
    }
}

/// `[traces]`: OpenTelemetry export over OTLP/HTTP; off unless an endpoint is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracesConfig {
    /// The collector's traces URL (`http://127.0.0.1:4318/v1/traces`).
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
}

impl Default for TracesConfig {
    fn default() -> Self {
        TracesConfig { otlp_endpoint: None, service_name: "nines".to_owned() }
    }
}

pub fn validate_status(raw: RawStatus, errors: &mut Vec<ConfigError>) -> StatusConfig {
    let d = StatusConfig::default();
    let ri = raw.incidents.unwrap_or_default();
    let di = IncidentConfig::default();
    let incidents = IncidentConfig {
        failure_rate: ri.failure_rate.unwrap_or(di.failure_rate),
        window: ri.window.unwrap_or(di.window),
        min_attempts: ri.min_attempts.unwrap_or(di.min_attempts),
        recover_after: ri.recover_after.unwrap_or(di.recover_after),
    };
    let c = StatusConfig {
        public: raw.public.unwrap_or(d.public),
        path: raw.path.filter(|p| !p.is_empty()).map(PathBuf::from),
        retention: raw.retention.unwrap_or(d.retention),
        objective: raw.objective.unwrap_or(d.objective),
        incidents,
    };
    if c.retention < Duration::from_secs(3600) {
        errors.push(ConfigError::new("status.retention", "must be at least 1h"));
    }
    if !(c.objective > 0.0 && c.objective < 1.0) {
        errors.push(ConfigError::new("status.objective", "must be between 0 and 1 (0.999 for 99.9%)"));
    }
    if !(incidents.failure_rate > 0.0 && incidents.failure_rate <= 1.0) {
        errors.push(ConfigError::new("status.incidents.failure_rate", "must be in (0, 1]"));
    }
    if !(1..=64).contains(&incidents.window) {
        errors.push(ConfigError::new("status.incidents.window", "must be between 1 and 64 attempts"));
    }
    if incidents.min_attempts == 0 || incidents.min_attempts > incidents.window {
        errors.push(ConfigError::new("status.incidents.min_attempts", "must be between 1 and the window"));
    }
    if incidents.recover_after == 0 {
        errors.push(ConfigError::new("status.incidents.recover_after", "must be at least 1"));
    }
    c
}

pub fn validate_traces(raw: RawTraces, errors: &mut Vec<ConfigError>) -> TracesConfig {
    let d = TracesConfig::default();
    let endpoint = raw.otlp_endpoint.filter(|e| !e.is_empty());
    if let Some(e) = &endpoint
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        errors.push(ConfigError::new(
            "traces.otlp_endpoint",
            format!("\"{e}\" is not an http(s) URL like http://127.0.0.1:4318/v1/traces"),
        ));
    }
    let service_name = raw.service_name.filter(|s| !s.is_empty()).unwrap_or(d.service_name);
    TracesConfig { otlp_endpoint: endpoint, service_name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_path() {
        let mut errors = Vec::new();
        assert_eq!(validate_status(RawStatus::default(), &mut errors), StatusConfig::default());
        assert_eq!(validate_traces(RawTraces::default(), &mut errors), TracesConfig::default());
        assert!(errors.is_empty());
        let raw = RawStatus {
            objective: Some(1.0),
            incidents: Some(RawIncidents { window: Some(10), min_attempts: Some(11), ..Default::default() }),
            ..Default::default()
        };
        validate_status(raw, &mut errors);
        let raw = RawTraces { otlp_endpoint: Some("127.0.0.1:4318".into()), service_name: None };
        validate_traces(raw, &mut errors);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["status.objective", "status.incidents.min_attempts", "traces.otlp_endpoint"]);
    }
}
