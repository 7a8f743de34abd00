//! The status report: what `/status`, `/status.json` and `nines status` show. Availability two ways — per target
//! and provider as nines saw it (successful attempts / attempts), per route and for the gateway as its clients saw
//! it (successful requests / requests) — over 1 h, 24 h, 7 d and 30 d with the error budget left against the
//! objective, and `null` ("no data"), never 100%, for a window without traffic; each target's state now; bars per
//! minute for the last hour and per hour for the last week; open and recent incidents.
//!
//! Built from the status store after a flush (so it counts every request recorded before it was asked for), in a
//! blocking thread; health states are read first, on the caller's thread. The JSON schema is
//! `docs/status.schema.json`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::incidents::Incident;
use super::stats::{DIRECT, GATEWAY, route_series, target_series};
use crate::app::AppState;
use crate::store::StoreError;
use crate::store::status::{Bar as StoreBar, StatusStore};

/// The schema's name and version.
pub const SCHEMA: &str = "nines.status.v1";
/// Incidents listed at most.
const MAX_INCIDENTS: usize = 50;

/// The windows, in minutes.
const WINDOWS: [(&str, u64); 4] = [("1h", 60), ("24h", 24 * 60), ("7d", 7 * 24 * 60), ("30d", 30 * 24 * 60)];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// `1h`, `24h`, `7d`, `30d`.
    pub window: String,
    /// Attempts (targets, providers) or requests (routes, gateway) counted.
    pub total: u64,
    pub good: u64,
    /// `good / total`; `null` when there was no traffic ("no data").
    pub availability: Option<f64>,
    /// The share of the window's error budget left (1: untouched, 0: spent, below 0: overspent); `null` with no
    /// data.
    pub budget_left: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// Unix seconds of the bar's start.
    pub start: u64,
    pub total: u64,
    pub good: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    /// `provider/model` (`provider/*` for models clients named themselves).
    pub id: String,
    pub provider: String,
    pub model: String,
    /// `healthy`, `degraded` (an open incident, breaker closed), `half_open` (trying again), `breaker_open`,
    /// `rate_limited`, `down` (its key refused).
    pub state: String,
    pub detail: String,
    /// Unix ms when the state is expected to end (a breaker's cooldown, a rate-limit reset).
    pub until: Option<u64>,
    pub in_flight: u32,
    pub availability: Vec<Window>,
    pub minutes: Vec<Bar>,
    pub hours: Vec<Bar>,
    /// Failures by kind over the last 24 h.
    pub failures_24h: BTreeMap<String, u64>,
    pub latency_p50_ms_1h: Option<u64>,
    pub latency_p95_ms_1h: Option<u64>,
    pub ttft_p50_ms_1h: Option<u64>,
    pub ttft_p95_ms_1h: Option<u64>,
    pub tokens_in_24h: u64,
    pub tokens_out_24h: u64,
    pub open_incident: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderStatus {
    pub name: String,
    /// The worst of its targets when they agree; `degraded` when some are in trouble and others not.
    pub state: String,
    pub targets: Vec<String>,
    pub availability: Vec<Window>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteStatus {
    pub name: String,
    pub availability: Vec<Window>,
    pub minutes: Vec<Bar>,
    pub hours: Vec<Bar>,
    /// Requests over the last 24 h answered after a failure (failover, retry, resume).
    pub saved_24h: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub schema: String,
    /// Unix ms.
    pub generated_at: u64,
    pub objective: f64,
    /// E.g. "anthropic 97.2% — your users 99.99% (24 h)": the least available provider against the clients.
    pub headline: String,
    /// The gateway as its clients saw it.
    pub gateway: RouteStatus,
    pub providers: Vec<ProviderStatus>,
    pub targets: Vec<TargetStatus>,
    pub routes: Vec<RouteStatus>,
    /// Open first, then the most recent.
    pub incidents: Vec<Incident>,
}

/// A target's state now, read from health before the report is built.
struct Now {
    id: String,
    provider: String,
    model: String,
    state: &'static str,
    detail: String,
    until: Option<u64>,
    in_flight: u32,
    open_incident: Option<String>,
    configured: bool,
}

/// How long a report is reused while no request ended (a page refreshing itself, or anyone hammering a public
/// `/status.json`, costs one report a second at most).
const REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The report (flushing the recorder's pending history first), or the last one if it is under [`REUSE`] old and no
/// request ended since.
pub async fn report(app: &AppState) -> Result<Arc<StatusReport>, StoreError> {
    let stats = app.runtime.stats.clone();
    let ended = stats.ended_count();
    let cached = stats.last_report.lock().ok().and_then(|c| c.clone());
    if let Some((at, n, r)) = cached
        && n == ended
        && at.elapsed() < REUSE
    {
        return Ok(r);
    }
    let r = Arc::new(build_report(app).await?);
    if let Ok(mut c) = stats.last_report.lock() {
        *c = Some((Instant::now(), ended, r.clone()));
    }
    Ok(r)
}

async fn build_report(app: &AppState) -> Result<StatusReport, StoreError> {
    let snap = app.snapshot();
    app.runtime.recorder.flush(snap.config.status.retention).await?;
    let now = Instant::now();
    let stats = app.runtime.stats.clone();
    let wall = stats.wall;
    let configured: std::collections::HashSet<String> =
        snap.routes.targets().iter().map(|t| t.label().to_owned()).collect();
    let mut states = Vec::new();
    for t in stats.targets() {
        let health = app.runtime.health.target(&t.id);
        let first_byte = snap
            .providers
            .get(&t.provider)
            .map_or(std::time::Duration::from_secs(30), |p| p.config.timeouts.first_byte);
        let r = health.report(now, &snap.config.health, first_byte);
        let open_incident = t.tracker.lock().ok().and_then(|tr| tr.open.as_ref().map(|i| i.id.clone()));
        let until = r.until.map(|u| wall.unix_ms(u));
        let (state, detail) = match r.state {
            "down" => ("down", "the provider refused nines' key: check its configuration".to_owned()),
            "open" => {
                ("breaker_open", format!("breaker open after {} failures in a row", r.consecutive_failures))
            }
            "half-open" => ("half_open", "recovering: a trial request decides".to_owned()),
            "cooling" => ("rate_limited", "rate-limited by the provider".to_owned()),
            _ if open_incident.is_some() => ("degraded", "failing more than usual".to_owned()),
            _ => ("healthy", String::new()),
        };
        states.push(Now {
            id: t.id.as_str().to_owned(),
            provider: t.provider.clone(),
            model: t.model.clone(),
            state,
            detail,
            until,
            in_flight: r.in_flight,
            open_incident,
            configured: configured.contains(t.id.as_str()),
        });
    }
    let mut routes: Vec<String> = snap.routes.names().map(str::to_owned).collect();
    routes.push(DIRECT.to_owned());
    let objective = snap.config.status.objective;
    let minute = wall.minute(now);
    let generated_at = wall.unix_ms(now);
    let store = stats.store.clone();
    let report =
        tokio::task::spawn_blocking(move || build(&store, states, routes, objective, minute, generated_at))
            .await??;
    Ok(report)
}

fn window(name: &str, total: u64, good: u64, objective: f64) -> Window {
    let availability = (total > 0).then(|| good as f64 / total as f64);
    let budget_left = availability.map(|a| 1.0 - (1.0 - a) / (1.0 - objective));
    Window { window: name.to_owned(), total, good, availability, budget_left }
}

fn bars(v: Vec<StoreBar>) -> Vec<Bar> {
    v.into_iter().map(|b| Bar { start: b.start, total: b.counts.total, good: b.counts.good }).collect()
}

/// Counts of one or more series over the four windows.
fn windows(
    store: &StatusStore,
    series: &[String],
    minute: u64,
    objective: f64,
) -> Result<Vec<Window>, StoreError> {
    WINDOWS
        .iter()
        .map(|(name, len)| {
            let from = minute.saturating_sub(len - 1);
            let mut total = 0;
            let mut good = 0;
            for s in series {
                let c = store.counts(s, from)?;
                total += c.total;
                good += c.good;
            }
            Ok(window(name, total, good, objective))
        })
        .collect()
}

fn route(
    store: &StatusStore,
    name: &str,
    series: &str,
    minute: u64,
    objective: f64,
) -> Result<RouteStatus, StoreError> {
    let day = minute.saturating_sub(24 * 60 - 1);
    Ok(RouteStatus {
        name: name.to_owned(),
        availability: windows(store, &[series.to_owned()], minute, objective)?,
        minutes: bars(store.bars(series, minute.saturating_sub(59), 1)?),
        hours: bars(store.bars(series, (minute.saturating_sub(7 * 24 * 60 - 1)) / 60 * 60, 60)?),
        saved_24h: store.counts(series, day)?.saved,
    })
}

/// A share as a percentage with at most two decimals, never rounded up to 100% when it is not.
pub fn percent(a: f64) -> String {
    let p = a * 100.0;
    if p >= 99.99 && a < 1.0 {
        return "99.99%".to_owned();
    }
    let s = format!("{p:.2}");
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

fn build(
    store: &StatusStore,
    states: Vec<Now>,
    route_names: Vec<String>,
    objective: f64,
    minute: u64,
    generated_at: u64,
) -> Result<StatusReport, StoreError> {
    let day = minute.saturating_sub(24 * 60 - 1);
    let hour = minute.saturating_sub(59);
    let mut targets = Vec::new();
    for s in states {
        let series = target_series(&s.id);
        let availability = windows(store, std::slice::from_ref(&series), minute, objective)?;
        if !s.configured && availability.iter().all(|w| w.total == 0) {
            continue;
        }
        let latency = store.latency(&series, hour)?;
        let tokens = store.latency(&series, day)?;
        targets.push(TargetStatus {
            availability,
            minutes: bars(store.bars(&series, hour, 1)?),
            hours: bars(store.bars(&series, minute.saturating_sub(7 * 24 * 60 - 1) / 60 * 60, 60)?),
            failures_24h: store.failures(&series, day)?.into_iter().collect(),
            latency_p50_ms_1h: latency.latency_p50_ms,
            latency_p95_ms_1h: latency.latency_p95_ms,
            ttft_p50_ms_1h: latency.ttft_p50_ms,
            ttft_p95_ms_1h: latency.ttft_p95_ms,
            tokens_in_24h: tokens.tokens_in,
            tokens_out_24h: tokens.tokens_out,
            id: s.id,
            provider: s.provider,
            model: s.model,
            state: s.state.to_owned(),
            detail: s.detail,
            until: s.until,
            in_flight: s.in_flight,
            open_incident: s.open_incident,
        });
    }
    let mut by_provider: BTreeMap<String, Vec<&TargetStatus>> = BTreeMap::new();
    for t in &targets {
        by_provider.entry(t.provider.clone()).or_default().push(t);
    }
    let mut providers = Vec::new();
    for (name, ts) in by_provider {
        let series: Vec<String> = ts.iter().map(|t| target_series(&t.id)).collect();
        let first = ts.first().map_or("healthy", |t| t.state.as_str());
        let state = if ts.iter().all(|t| t.state == first) {
            first.to_owned()
        } else if ts.iter().any(|t| t.state != "healthy") {
            "degraded".to_owned()
        } else {
            "healthy".to_owned()
        };
        providers.push(ProviderStatus {
            availability: windows(store, &series, minute, objective)?,
            targets: ts.iter().map(|t| t.id.clone()).collect(),
            name,
            state,
        });
    }
    let mut routes = Vec::new();
    for name in route_names {
        let r = route(store, &name, &route_series(&name), minute, objective)?;
        if name == DIRECT && r.availability.iter().all(|w| w.total == 0) {
            continue;
        }
        routes.push(r);
    }
    let gateway = route(store, GATEWAY, GATEWAY, minute, objective)?;
    let users = gateway.availability.get(1).and_then(|w| w.availability);
    let worst = providers
        .iter()
        .filter_map(|p| p.availability.get(1).and_then(|w| w.availability).map(|a| (a, p.name.as_str())))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let headline = match (worst, users) {
        (Some((a, p)), Some(u)) => format!("{p} {} — your users {} (24 h)", percent(a), percent(u)),
        (None, Some(u)) => format!("your users {} (24 h)", percent(u)),
        _ => "no traffic in the last 24 h: no data".to_owned(),
    };
    Ok(StatusReport {
        schema: SCHEMA.to_owned(),
        generated_at,
        objective,
        headline,
        gateway,
        providers,
        targets,
        routes,
        incidents: store.incidents(MAX_INCIDENTS)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_traffic_is_no_data_and_the_budget_is_counted_against_the_objective() {
        let w = window("1h", 0, 0, 0.999);
        assert_eq!((w.availability, w.budget_left), (None, None));
        let w = window("1h", 1000, 999, 0.999);
        assert_eq!(w.availability, Some(0.999));
        assert!(w.budget_left.is_some_and(|b| b.abs() < 1e-9), "exactly spent: {w:?}");
        let w = window("1h", 1000, 1000, 0.999);
        assert_eq!(w.budget_left, Some(1.0));
        assert_eq!(percent(0.972), "97.2%");
        assert_eq!(percent(0.99999), "99.99%");
        assert_eq!(percent(1.0), "100%");
    }
}
