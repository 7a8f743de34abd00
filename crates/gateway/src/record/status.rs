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
use crate::store::status::{Bar as StoreBar, Counts, StatusStore};

/// The schema's name and version.
pub const SCHEMA: &str = "nines.status.v1";
/// Incidents listed at most.
const MAX_INCIDENTS: usize = 50;

/// An open incident of another replica unwritten for this long is its gone replica's (they write every 10 s).
const STALE_MS: u64 = 60_000;

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
    /// A fleet's shared state (absent for one replica without Redis): whether this view is the fleet's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::shared::FleetStatus>,
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
    let fresh = || {
        let ended = stats.ended_count();
        let cached = stats.last_report.lock().ok().and_then(|c| c.clone());
        cached.filter(|(at, n, _)| *n == ended && at.elapsed() < REUSE).map(|(_, _, r)| r)
    };
    if let Some(r) = fresh() {
        return Ok(r);
    }
    // One build at a time: callers that arrive meanwhile take its result if it is still true for them.
    let _one = stats.building.lock().await;
    if let Some(r) = fresh() {
        return Ok(r);
    }
    let ended = stats.ended_count();
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
        let open_incident = t.tracker.lock().ok().and_then(|tr| tr.open.as_ref().map(|i| i.id.clone()));
        // Models clients named themselves share these stats but each has its own health: judged by incidents.
        let (health_state, consecutive, until, in_flight) = if t.is_ad_hoc() {
            ("closed", 0, None, 0)
        } else {
            let first_byte = snap
                .providers
                .get(&t.provider)
                .map_or(std::time::Duration::from_secs(30), |p| p.config.timeouts.first_byte);
            let r = app.runtime.health.target(&t.id).report(now, &snap.config.health, first_byte);
            (r.state, r.consecutive_failures, r.until.map(|u| wall.unix_ms(u)), r.in_flight)
        };
        let (state, detail) = match health_state {
            "down" => ("down", "the provider refused nines' key: check its configuration".to_owned()),
            "open" => ("breaker_open", format!("breaker open after {consecutive} failures in a row")),
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
            in_flight,
            open_incident,
            configured: configured.contains(t.id.as_str()),
        });
    }
    let mut routes: Vec<String> = snap.routes.names().map(str::to_owned).collect();
    routes.push(DIRECT.to_owned());
    let objective = snap.config.status.objective;
    let minute = wall.minute(now);
    let generated_at = wall.unix_ms(now);
    let mut report = tokio::task::spawn_blocking(move || {
        let r = Reader { store: &stats.store, cache: &stats.older, minute, objective };
        build(&r, states, routes, generated_at)
    })
    .await??;
    report.fleet = app.runtime.shared.as_ref().map(|s| s.status());
    if report.fleet.is_some() {
        // An open incident no replica has written for a minute belongs to a replica that is gone: it ended when it
        // was last written (this replica's own are live whatever their age).
        let mine: Vec<String> = report.targets.iter().filter_map(|t| t.open_incident.clone()).collect();
        super::incidents::end_gone(&mut report.incidents, &mine, generated_at, STALE_MS);
    }
    // A fleet's replicas may each have recorded the same trouble: one incident.
    report.incidents = super::incidents::merge_overlapping(std::mem::take(&mut report.incidents));
    if snap.config.status.public {
        // A public page tells what failed, not the provider's own words (they can name hosts and addresses).
        for i in &mut report.incidents {
            for e in [&mut i.first_error, &mut i.last_error] {
                if let Some((brief, _)) = e.split_once(": ") {
                    *e = brief.to_owned();
                }
            }
        }
    }
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

/// What is older than the last hour of a series: it changes only when the minute turns, so it is read once a minute
/// (the 30-day windows are most of a report's cost) and the last hour fresh every time.
#[derive(Clone, Debug, Default)]
pub struct Older {
    minute: u64,
    /// 24 h, 7 d and 30 d, without the last hour.
    windows: [Counts; 3],
    /// Whole hours of the last week before the current one.
    hours: Vec<StoreBar>,
    /// The last 24 h without the last hour.
    failures: BTreeMap<String, u64>,
    tokens: (u64, u64),
}

/// Reads a report's figures: the last hour from the store, what is older through the per-minute cache.
struct Reader<'a> {
    store: &'a StatusStore,
    cache: &'a std::sync::Mutex<std::collections::HashMap<String, Older>>,
    minute: u64,
    objective: f64,
}

impl Reader<'_> {
    /// The first minute of "the last hour".
    fn recent(&self) -> u64 {
        self.minute.saturating_sub(59)
    }

    fn hour_start(&self) -> u64 {
        self.minute / 60 * 60
    }

    fn older(&self, series: &str) -> Result<Older, StoreError> {
        if let Some(o) = self.cache.lock().ok().and_then(|c| c.get(series).cloned())
            && o.minute == self.minute
        {
            return Ok(o);
        }
        let until = self.recent();
        let from = |len: u64| self.minute.saturating_sub(len - 1);
        let mut windows = [Counts::default(); 3];
        for (w, (_, len)) in windows.iter_mut().zip(&WINDOWS[1..]) {
            *w = self.store.counts(series, from(*len), until)?;
        }
        let week = from(WINDOWS[2].1) / 60 * 60;
        let day = from(WINDOWS[1].1);
        let tokens = self.store.latency(series, day, until)?;
        let o = Older {
            minute: self.minute,
            windows,
            hours: self.store.bars(series, week, self.hour_start(), 60)?,
            failures: self.store.failures(series, day, until)?.into_iter().collect(),
            tokens: (tokens.tokens_in, tokens.tokens_out),
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(series.to_owned(), o.clone());
        }
        Ok(o)
    }

    /// Counts of a series over the four windows.
    fn windows(&self, series: &str) -> Result<Vec<Window>, StoreError> {
        let recent = self.store.counts(series, self.recent(), u64::MAX)?;
        let older = self.older(series)?;
        let parts = [Counts::default(), older.windows[0], older.windows[1], older.windows[2]];
        Ok(WINDOWS
            .iter()
            .zip(parts)
            .map(|((name, _), o)| window(name, recent.total + o.total, recent.good + o.good, self.objective))
            .collect())
    }

    fn minutes(&self, series: &str) -> Result<Vec<Bar>, StoreError> {
        Ok(bars(self.store.bars(series, self.recent(), u64::MAX, 1)?))
    }

    fn hours(&self, series: &str) -> Result<Vec<Bar>, StoreError> {
        let mut all = self.older(series)?.hours;
        all.extend(self.store.bars(series, self.hour_start(), u64::MAX, 60)?);
        Ok(bars(all))
    }

    fn saved_24h(&self, series: &str) -> Result<u64, StoreError> {
        Ok(self.older(series)?.windows[0].saved + self.store.counts(series, self.recent(), u64::MAX)?.saved)
    }

    fn route(&self, name: &str, series: &str) -> Result<RouteStatus, StoreError> {
        Ok(RouteStatus {
            name: name.to_owned(),
            availability: self.windows(series)?,
            minutes: self.minutes(series)?,
            hours: self.hours(series)?,
            saved_24h: self.saved_24h(series)?,
        })
    }
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
    r: &Reader<'_>,
    states: Vec<Now>,
    route_names: Vec<String>,
    generated_at: u64,
) -> Result<StatusReport, StoreError> {
    let (store, objective) = (r.store, r.objective);
    let hour = r.recent();
    let mut targets = Vec::new();
    for s in states {
        let series = target_series(&s.id);
        let availability = r.windows(&series)?;
        if !s.configured && availability.iter().all(|w| w.total == 0) {
            continue;
        }
        let latency = store.latency(&series, hour, u64::MAX)?;
        let older = r.older(&series)?;
        let mut failures_24h = older.failures.clone();
        for (k, n) in store.failures(&series, hour, u64::MAX)? {
            *failures_24h.entry(k).or_default() += n;
        }
        targets.push(TargetStatus {
            availability,
            minutes: r.minutes(&series)?,
            hours: r.hours(&series)?,
            failures_24h,
            latency_p50_ms_1h: latency.latency_p50_ms,
            latency_p95_ms_1h: latency.latency_p95_ms,
            ttft_p50_ms_1h: latency.ttft_p50_ms,
            ttft_p95_ms_1h: latency.ttft_p95_ms,
            tokens_in_24h: older.tokens.0 + latency.tokens_in,
            tokens_out_24h: older.tokens.1 + latency.tokens_out,
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
        // A provider's attempts are its targets': their windows summed, not read again.
        let availability = WINDOWS
            .iter()
            .enumerate()
            .map(|(i, (window_name, _))| {
                let (total, good) = ts
                    .iter()
                    .filter_map(|t| t.availability.get(i))
                    .fold((0, 0), |(total, good), w| (total + w.total, good + w.good));
                window(window_name, total, good, objective)
            })
            .collect();
        let first = ts.first().map_or("healthy", |t| t.state.as_str());
        let state = if ts.iter().all(|t| t.state == first) {
            first.to_owned()
        } else if ts.iter().any(|t| t.state != "healthy") {
            "degraded".to_owned()
        } else {
            "healthy".to_owned()
        };
        providers.push(ProviderStatus {
            availability,
            targets: ts.iter().map(|t| t.id.clone()).collect(),
            name,
            state,
        });
    }
    let mut routes = Vec::new();
    for name in route_names {
        let rs = r.route(&name, &route_series(&name))?;
        if name == DIRECT && rs.availability.iter().all(|w| w.total == 0) {
            continue;
        }
        routes.push(rs);
    }
    let gateway = r.route(GATEWAY, GATEWAY)?;
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
        fleet: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_add_the_fresh_last_hour_to_the_older_part_read_once_a_minute() {
        use crate::record::history::Minute;
        let store = StatusStore::open(None).unwrap();
        let cache = std::sync::Mutex::new(std::collections::HashMap::new());
        let now = 100_000;
        let row = |ago: u64, total: u32, good: u32| {
            ("route:r".to_owned(), Minute { minute: now - ago, total, good, ..Minute::default() })
        };
        // In the last hour, in the last day, in the last week, in the last month, and older than that.
        let rows = [row(10, 1, 1), row(100, 2, 1), row(3000, 4, 4), row(20_000, 8, 0), row(50_000, 16, 16)];
        store.write(&rows, &[], 0).unwrap();
        let r = Reader { store: &store, cache: &cache, minute: now, objective: 0.999 };
        let w = r.windows("route:r").unwrap();
        let got: Vec<(u64, u64)> = w.iter().map(|w| (w.total, w.good)).collect();
        assert_eq!(got, [(1, 1), (3, 2), (7, 6), (15, 6)]);
        // The last hour is read fresh; what is older comes from the cache until the minute turns.
        store.write(&[row(5, 1, 0), row(200, 100, 100)], &[], 0).unwrap();
        let w = r.windows("route:r").unwrap();
        assert_eq!((w[0].total, w[1].total), (2, 4), "the older row waits for the next minute");
        let next = Reader { minute: now + 1, ..r };
        assert_eq!(next.windows("route:r").unwrap()[1].total, 104);
        let hours = next.hours("route:r").unwrap();
        assert_eq!(hours.iter().map(|b| b.total).sum::<u64>(), 1 + 1 + 2 + 100 + 4);
    }

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
