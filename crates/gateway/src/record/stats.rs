//! What the recorder keeps of every flight besides health: per-minute history, metrics and incidents, for every
//! target, route, and the gateway as a whole. Like health, it is keyed by stable ids and lives outside the
//! configuration snapshot; each [`crate::route::Target`] and [`crate::route::Plan`] carries its handles, so an
//! event costs a few atomic increments and one short lock, never a lookup.
//!
//! Ad-hoc targets (a client naming `provider/model` itself) share one series per provider, `provider/*`, and
//! ad-hoc plans the route `(direct)`: no client can grow this state or the metrics' labels.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

use super::Ending;
use super::history::{Series, Wall};
use super::incidents::{Incident, Reach, Tracker, Who, blast_radius};
use super::metrics::{Metrics, RouteMetrics, TargetMetrics};
use crate::dispatch::flight::{Event, EventKind, Flight, Skip};
use crate::health::TargetId;
use crate::health::breaker::Transition;
use crate::provider::{ErrorKind, Provider};
use crate::route::Target;
use crate::store::status::StatusStore;

/// The route of requests that named a target themselves.
pub const DIRECT: &str = "(direct)";
/// The gateway's own series.
pub const GATEWAY: &str = "gateway";

/// One target's history, metrics and incident.
#[derive(Debug)]
pub struct TargetStats {
    pub id: TargetId,
    pub provider: String,
    pub model: String,
    pub series: Series,
    pub metrics: TargetMetrics,
    pub tracker: Mutex<Tracker>,
}

impl TargetStats {
    /// The shared stats of the models clients named themselves (`provider/*`).
    pub fn is_ad_hoc(&self) -> bool {
        self.model == "*"
    }
}

/// One route's history and metrics.
#[derive(Debug)]
pub struct RouteStats {
    pub name: String,
    pub series: Series,
    pub metrics: RouteMetrics,
}

/// Every target's and route's stats, the gateway's series, the metrics registry, and the status store.
#[derive(Debug)]
pub struct Stats {
    targets: Mutex<HashMap<TargetId, Arc<TargetStats>>>,
    routes: Mutex<HashMap<String, Arc<RouteStats>>>,
    pub gateway: Series,
    pub metrics: Metrics,
    pub wall: Wall,
    pub store: StatusStore,
    /// Incidents closed and not yet written.
    closed: Mutex<Vec<Incident>>,
    /// Incidents open when the gateway last stopped, by target, until that target's stats are made.
    restored: Mutex<HashMap<String, Incident>>,
    /// One of a fleet's replicas: its open incidents are written every time (so that the others can tell a live
    /// one from a gone replica's), and none is taken over at start (it may be another replica's).
    fleet: std::sync::atomic::AtomicBool,
    /// Requests ended so far: a status report made since is still true if none ended.
    ended: AtomicU64,
    /// The last status report, with when it was made and `ended` then.
    pub(crate) last_report: Mutex<Option<(Instant, u64, Arc<super::status::StatusReport>)>>,
    /// One report is built at a time; others wait for it.
    pub(crate) building: tokio::sync::Mutex<()>,
    /// Per series, what is older than the last hour (read once a minute).
    pub(crate) older: Mutex<HashMap<String, super::status::Older>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn target_series(id: &str) -> String {
    format!("target:{id}")
}

pub fn route_series(name: &str) -> String {
    format!("route:{name}")
}

impl Stats {
    pub fn new(store: StatusStore) -> Stats {
        let open: HashMap<String, Incident> = match store.open_incidents() {
            Ok(v) => v.into_iter().map(|i| (i.target.clone(), i)).collect(),
            Err(e) => {
                tracing::warn!(target: "nines::status", "cannot read open incidents: {e}");
                HashMap::new()
            }
        };
        Stats {
            targets: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            gateway: Series::new(GATEWAY),
            metrics: Metrics::new(),
            wall: Wall::new(),
            store,
            closed: Mutex::new(Vec::new()),
            // Incidents open when the gateway last stopped continue with their targets.
            restored: Mutex::new(open),
            ended: AtomicU64::new(0),
            last_report: Mutex::new(None),
            building: tokio::sync::Mutex::new(()),
            older: Mutex::new(HashMap::new()),
            fleet: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// For one of a fleet's replicas (see `fleet`).
    pub fn in_fleet(self) -> Stats {
        lock(&self.restored).clear();
        self.fleet.store(true, Ordering::Relaxed);
        self
    }

    pub fn is_in_fleet(&self) -> bool {
        self.fleet.load(Ordering::Relaxed)
    }

    /// Close the incidents restored from the store whose target the configuration no longer has (at start-up, once
    /// every configured target has its stats): nothing would ever close them.
    pub fn close_unclaimed(&self, now: Instant) {
        let left: Vec<Incident> = lock(&self.restored).drain().map(|(_, i)| i).collect();
        for mut i in left {
            i.ended_at = Some(self.wall.unix_ms(now));
            lock(&self.closed).push(i);
        }
    }

    /// Requests ended so far.
    pub fn ended_count(&self) -> u64 {
        self.ended.load(Ordering::Relaxed)
    }

    /// The stats of a target (`ad_hoc`: named by a client, sharing its provider's `provider/*`).
    pub fn target(&self, provider: &Provider, model: &str, ad_hoc: bool) -> Arc<TargetStats> {
        let model = if ad_hoc { "*" } else { model };
        let id = TargetId::new(provider.name(), model);
        let mut targets = lock(&self.targets);
        if let Some(t) = targets.get(&id) {
            return t.clone();
        }
        let label = id.as_str().to_owned();
        let tracker = match lock(&self.restored).remove(&label) {
            Some(open) => Tracker::resume(open),
            None => Tracker::default(),
        };
        let t = Arc::new(TargetStats {
            id: id.clone(),
            provider: provider.name().to_owned(),
            model: model.to_owned(),
            series: Series::new(target_series(&label)),
            metrics: self.metrics.target(provider.name(), provider.config.kind, &label, model),
            tracker: Mutex::new(tracker),
        });
        targets.insert(id, t.clone());
        t
    }

    pub fn route(&self, name: &str) -> Arc<RouteStats> {
        let mut routes = lock(&self.routes);
        if let Some(r) = routes.get(name) {
            return r.clone();
        }
        let r = Arc::new(RouteStats {
            name: name.to_owned(),
            series: Series::new(route_series(name)),
            metrics: self.metrics.route(name),
        });
        routes.insert(name.to_owned(), r.clone());
        r
    }

    pub fn targets(&self) -> Vec<Arc<TargetStats>> {
        let mut v: Vec<_> = lock(&self.targets).values().cloned().collect();
        v.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        v
    }

    pub fn routes(&self) -> Vec<Arc<RouteStats>> {
        let mut v: Vec<_> = lock(&self.routes).values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Take in one event of `flight`.
    pub fn event(&self, flight: &Flight, ev: &Event, now: Instant) {
        let cfg = &flight.snap.config.status.incidents;
        let minute = self.wall.minute(now);
        let target = |i: usize| flight.target(i);
        match &ev.kind {
            EventKind::Started { attempt, .. } => {
                if *attempt > 1 {
                    flight.plan.stats.metrics.retries.inc();
                }
            }
            EventKind::Committed { target: i, elapsed, limits, .. } => {
                let Some(t) = target(*i) else { return };
                let s = &t.stats;
                let stream = flight.stream;
                if stream {
                    s.metrics.ttft.observe(elapsed.as_secs_f64());
                    s.series.add(minute, |m| m.ttft.add(*elapsed));
                } else if limits.is_none() {
                    // A whole answer's commit has nothing more for history or incidents.
                    return;
                }
                let mut tr = lock(&s.tracker);
                if let Some(l) = limits {
                    tr.limits(l);
                }
                if stream {
                    tr.first_token(*elapsed);
                }
            }
            EventKind::Succeeded { target: i, elapsed, tokens, .. } => {
                let Some(t) = target(*i) else { return };
                let s = &t.stats;
                s.metrics.success.inc();
                s.metrics.duration_ok.observe(elapsed.as_secs_f64());
                if let Some(tk) = tokens {
                    s.metrics.tokens_in.inc_by(tk.input);
                    s.metrics.tokens_out.inc_by(tk.output);
                    s.metrics.usage_in.observe(tk.input as f64);
                    s.metrics.usage_out.observe(tk.output as f64);
                }
                if !flight.judges_health {
                    return;
                }
                s.series.add(minute, |m| {
                    m.total += 1;
                    m.good += 1;
                    m.latency.add(*elapsed);
                    if let Some(tk) = tokens {
                        m.tokens_in += tk.input;
                        m.tokens_out += tk.output;
                    }
                });
                let closed = lock(&s.tracker).succeeded(cfg, self.wall.unix_ms(now));
                if let Some(i) = closed {
                    self.close(i);
                }
            }
            EventKind::Failed { target: i, error, elapsed, deadline_cut, .. } => {
                let Some(t) = target(*i) else { return };
                let s = &t.stats;
                self.metrics.attempt_failed(&s.metrics, error.kind, elapsed.as_secs_f64());
                // A model a client named itself that the provider does not have is the client's mistake.
                let invented = s.is_ad_hoc() && error.kind == ErrorKind::NotFound;
                if *deadline_cut || !error.kind.counts_against_target() || !flight.judges_health || invented {
                    return;
                }
                s.series.add(minute, |m| {
                    m.total += 1;
                    m.failures[error.kind.index()] += 1;
                });
                let who = who(t);
                lock(&s.tracker).failed(cfg, &who, error, self.wall.unix_ms(now));
            }
            EventKind::Abandoned { target: i, .. } => {
                if let Some(t) = target(*i) {
                    t.stats.metrics.abandoned.inc();
                }
            }
            EventKind::Hedged { .. } => {
                flight.plan.stats.metrics.hedges.inc();
            }
            EventKind::Resumed { .. } => {
                flight.plan.stats.metrics.resumed.inc();
            }
            EventKind::NotResumed { .. } => {
                flight.plan.stats.metrics.not_resumed.inc();
            }
            EventKind::Ended { ending, target: served } => self.ended(flight, *ending, *served, ev, minute),
            EventKind::Skipped { .. } | EventKind::Waited { .. } => {}
        }
    }

    fn ended(&self, flight: &Flight, ending: Ending, served: Option<usize>, ev: &Event, minute: u64) {
        self.ended.fetch_add(1, Ordering::Relaxed);
        let route = &flight.plan.stats;
        route.metrics.ended(ending);
        let ok = matches!(ending, Ending::Served | Ending::Saved | Ending::Resumed);
        if ok {
            route.metrics.duration_ok.observe(ev.at.as_secs_f64());
        } else if matches!(ending, Ending::Failed | Ending::BrokenStream) {
            route.metrics.duration_failed.observe(ev.at.as_secs_f64());
        }
        // The first token the client got: the committed attempt's, counted from the request's start.
        if flight.stream && ok {
            let first = flight.log().iter().find(|e| matches!(e.kind, EventKind::Committed { .. }));
            if let Some(e) = first {
                route.metrics.ttft.observe(e.at.as_secs_f64());
            }
        }
        // Targets tried: more than one is a failover.
        let mut tried = 0u64;
        let mut troubled = 0u64;
        let mut resumed = false;
        for e in flight.log() {
            match &e.kind {
                EventKind::Started { target, attempt: 1, .. } => {
                    tried |= crate::dispatch::flight::bit(*target)
                }
                EventKind::Failed { target, error, deadline_cut: false, .. }
                    if error.kind.counts_against_target() =>
                {
                    troubled |= crate::dispatch::flight::bit(*target)
                }
                // Skipped for its health (not because nines kept it inside its announced rate limits).
                EventKind::Skipped { target, why: Skip::Unavailable(u) }
                    if !matches!(u, crate::health::Unavailable::NoHeadroom { .. }) =>
                {
                    troubled |= crate::dispatch::flight::bit(*target)
                }
                EventKind::Resumed { .. } => resumed = true,
                _ => {}
            }
        }
        if tried.count_ones() > 1 {
            route.metrics.failovers.inc();
        }
        if matches!(ending, Ending::Refused | Ending::Cancelled) || !flight.judges_health {
            return;
        }
        // Saved: answered although a target failed it or was unavailable (a request that went straight to the
        // fallback because the first target's breaker was open was saved by failover too).
        let saved = ok && (matches!(ending, Ending::Saved | Ending::Resumed) || troubled != 0);
        let at = ev.at;
        let series = |m: &mut super::history::Minute| {
            m.total += 1;
            if ok {
                m.good += 1;
                m.latency.add(at);
            }
            if saved {
                m.saved += 1;
            }
        };
        route.series.add(minute, series);
        self.gateway.add(minute, series);
        // The requests that met an open incident.
        for (i, t) in flight.plan.targets.iter().enumerate() {
            if troubled & crate::dispatch::flight::bit(i) == 0 {
                continue;
            }
            let mut guard = lock(&t.stats.tracker);
            let tr = &mut *guard;
            let r = match tr.open.as_mut() {
                Some(inc) => &mut inc.requests,
                None => &mut tr.pending,
            };
            r.affected += 1;
            if ok {
                r.saved += 1;
                if resumed {
                    r.saved_by_resume += 1;
                } else if served == Some(i) {
                    r.saved_by_retry += 1;
                } else {
                    r.saved_by_failover += 1;
                }
            } else {
                r.failed += 1;
            }
            tr.dirty = true;
        }
    }

    /// A target's breaker changed, at `now`. Ad-hoc models of a provider share one tracker but each has its own
    /// breaker: their incidents open and close by failure rate alone.
    pub fn breaker(&self, target: &Target, tr: Transition, now: Instant) {
        if target.stats.is_ad_hoc() {
            return;
        }
        let mut t = lock(&target.stats.tracker);
        match tr {
            Transition::Opened { .. } | Transition::Reopened { .. } => {
                t.breaker_opened(&who(target), self.wall.unix_ms(now));
            }
            Transition::Closed => t.breaker_closed(),
        }
    }

    fn close(&self, mut incident: Incident) {
        // The reach it had while open stands; judged now only if it was never judged.
        if incident.blast_radius.scope.is_empty() {
            incident.blast_radius = self.blast_radius(&incident);
        }
        tracing::info!(target: "nines::status", incident = incident.id, target_name = incident.target,
            failures = incident.failures, "incident closed: recovered");
        lock(&self.closed).push(incident);
    }

    /// The blast radius of `incident`, judged now from every target.
    pub fn blast_radius(&self, incident: &Incident) -> super::incidents::BlastRadius {
        let targets = self.targets();
        let views: Vec<(Arc<TargetStats>, bool, u64, bool)> = targets
            .iter()
            .map(|t| {
                let tr = lock(&t.tracker);
                let (open, network) = match &tr.open {
                    Some(i) if i.id != incident.id || incident.is_open() => (true, network_only(i)),
                    _ => (false, false),
                };
                (t.clone(), open, tr.last_success_ms, network)
            })
            .collect();
        let reach: Vec<Reach<'_>> = views
            .iter()
            .map(|(t, open, last, network)| Reach {
                target: t.id.as_str(),
                provider: &t.provider,
                open: *open,
                last_success_ms: *last,
                network: *network,
            })
            .collect();
        blast_radius(incident, &reach)
    }

    /// Give back what the writer took but could not write: minutes to their series, closed incidents to the queue,
    /// open ones marked changed again.
    pub fn requeue(&self, minutes: Vec<(String, super::history::Minute)>, incidents: Vec<Incident>) {
        let mut by_series: HashMap<String, Vec<super::history::Minute>> = HashMap::new();
        for (s, m) in minutes {
            by_series.entry(s).or_default().push(m);
        }
        let routes = self.routes();
        let targets = self.targets();
        let all = std::iter::once(&self.gateway)
            .chain(routes.iter().map(|r| &r.series))
            .chain(targets.iter().map(|t| &t.series));
        for series in all {
            if let Some(ms) = by_series.remove(&series.name) {
                series.requeue(ms);
            }
        }
        for i in incidents {
            if i.is_open() {
                if let Some(t) = targets.iter().find(|t| t.id.as_str() == i.target) {
                    lock(&t.tracker).dirty = true;
                }
            } else {
                lock(&self.closed).push(i);
            }
        }
    }

    /// For the writer: every series' closed minutes and current copy, and the incidents that changed.
    pub fn take(&self) -> (Vec<(String, super::history::Minute)>, Vec<Incident>) {
        let mut minutes = Vec::new();
        let mut push = |s: &Series| {
            let (closed, current) = s.take();
            minutes.extend(closed.into_iter().chain(current).map(|m| (s.name.clone(), m)));
        };
        push(&self.gateway);
        for r in self.routes() {
            push(&r.series);
        }
        let mut incidents = std::mem::take(&mut *lock(&self.closed));
        let now = self.wall.unix_ms(Instant::now());
        let every = self.is_in_fleet();
        for t in self.targets() {
            push(&t.series);
            let mut tr = lock(&t.tracker);
            if tr.dirty || (every && tr.open.is_some()) {
                tr.dirty = false;
                if let Some(i) = tr.open.clone() {
                    drop(tr);
                    let mut i = i;
                    i.blast_radius = self.blast_radius(&i);
                    incidents.push(i);
                }
            }
        }
        for i in &mut incidents {
            i.updated_at = Some(now);
        }
        (minutes, incidents)
    }
}

/// Whether an incident's failures are all network-level (connect, timeout, network).
fn network_only(i: &Incident) -> bool {
    let net = [ErrorKind::Connect, ErrorKind::Timeout, ErrorKind::Network].map(ErrorKind::label);
    !i.kinds.is_empty() && i.kinds.keys().all(|k| net.contains(&k.as_str()))
}

fn who(t: &Target) -> Who<'_> {
    Who {
        target: t.stats.id.as_str(),
        provider: &t.stats.provider,
        model: &t.stats.model,
        ttft_before: t.health.ttft_quantile(0.5, 1),
        secret: t.provider.secret(),
    }
}
