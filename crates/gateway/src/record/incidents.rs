//! Incidents: a target's trouble from its first failure to its recovery, with what went wrong (failure kinds with
//! their statuses, the first and last error, time-to-first-token shift, which rate limit), who noticed (requests
//! affected, saved by failover, retry or resume, failed) and how far it reached (the blast radius, computed from
//! every target at once in [`blast_radius`]).
//!
//! An incident opens for a target when its breaker opens, or when `failure_rate` of its last `window` judged
//! attempts failed (at least `min_attempts` of them); it starts at the first failure of that window (since the last
//! incident closed). It closes after `recover_after` successful attempts in a row with the breaker closed — and, for
//! one opened by its failure rate, once that rate is back under half the threshold (a band, so that a target
//! failing near the threshold has one long incident, not hundreds). One [`Tracker`] per target holds the window and
//! the open incident; the status store keeps every incident (and reloads the open ones at start).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::history::Hist;
use crate::config::IncidentConfig;
use crate::health::ratelimit::RateLimits;
use crate::provider::{ErrorKind, ProviderError};

/// The longest error message kept in an incident.
const MAX_MESSAGE: usize = 300;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    pub count: u64,
    /// By HTTP status ("529"), or "none" for failures without one (timeouts, resets).
    pub statuses: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests {
    /// Requests that met the incident: an attempt failed on the target, or it was skipped because of it.
    pub affected: u64,
    /// Of those, answered anyway.
    pub saved: u64,
    pub saved_by_failover: u64,
    pub saved_by_retry: u64,
    pub saved_by_resume: u64,
    /// Of those, failed for the client.
    pub failed: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtftShift {
    /// The target's learnt median before the incident.
    pub before_ms: Option<u64>,
    /// The median of first tokens during it.
    pub during_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitCause {
    /// `requests`, `tokens`, `input_tokens`, `output_tokens`, or `unknown`.
    pub limit: String,
    /// Whether the provider's headers, on the answers before, showed that limit nearly used up.
    pub predicted: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlastRadius {
    /// `model`, `provider`, `everything`.
    pub scope: String,
    pub explanation: String,
    /// Every target with an open incident at the same time (this one included).
    pub targets: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub target: String,
    pub provider: String,
    pub model: String,
    /// Unix milliseconds.
    pub started_at: u64,
    pub ended_at: Option<u64>,
    /// `breaker` or `failure_rate`.
    pub opened_by: String,
    pub attempts: u64,
    pub failures: u64,
    pub kinds: BTreeMap<String, KindCount>,
    pub first_error: String,
    pub last_error: String,
    pub ttft: TtftShift,
    pub requests: Requests,
    pub rate_limit: Option<RateLimitCause>,
    pub blast_radius: BlastRadius,
    /// When its replica last wrote it (Unix ms; a fleet's replicas write their open incidents every 10 s, so an
    /// open one long unwritten belongs to a replica that is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<u64>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.ended_at.is_none()
    }
}

/// A failure as the window keeps it.
#[derive(Clone, Debug)]
struct Seen {
    kind: ErrorKind,
    status: Option<u16>,
    at_ms: u64,
    message: String,
}

/// The provider's error, fit for an incident: bounded, and without anything that looks like a credential.
pub fn scrub(e: &ProviderError, secret: Option<&str>) -> String {
    let mut m = match e.status {
        Some(s) => format!("{} {s}: {}", e.kind.label(), e.message),
        None => format!("{}: {}", e.kind.label(), e.message),
    };
    m = crate::provider::redact::redact(&m, secret.as_slice());
    if m.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
        m.push('…');
    }
    m
}

/// What a target's rate limit looked like on its last answers, for telling whether a 429 was predicted.
#[derive(Clone, Copy, Debug, Default)]
struct LimitSeen {
    last: u64,
    max: u64,
}

impl LimitSeen {
    fn update(slot: &mut Option<LimitSeen>, remaining: Option<u64>) {
        if let Some(r) = remaining {
            let max = slot.map_or(r, |s| s.max.max(r));
            *slot = Some(LimitSeen { last: r, max });
        }
    }

    /// Nearly used up: a tenth or less of the most seen left.
    fn low(self) -> bool {
        self.last <= self.max / 10
    }
}

/// One target's incident state.
#[derive(Debug, Default)]
pub struct Tracker {
    /// The last judged attempts, newest last: failures among them (`None` for a success).
    window: VecDeque<Option<Seen>>,
    ok_in_row: u32,
    breaker_open: bool,
    pub open: Option<Incident>,
    ttft_during: Hist,
    /// Unix ms of the last successful attempt.
    pub last_success_ms: u64,
    limits: [Option<LimitSeen>; 4],
    /// Set when the incident changed since the writer last took it.
    pub dirty: bool,
    /// Requests that met a failure of the window before an incident opened: they are the incident's when it does.
    pub pending: Requests,
    /// When the last incident closed (Unix ms): older failures of the window are not the next one's.
    last_close_ms: u64,
}

/// Who the tracker belongs to.
pub struct Who<'a> {
    pub target: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    /// The learnt median time to first token, for the shift.
    pub ttft_before: Option<Duration>,
    /// The provider's key, never to appear in a message.
    pub secret: Option<&'a str>,
}

impl Tracker {
    /// A tracker continuing an incident that was open when the gateway last stopped.
    pub fn resume(open: Incident) -> Tracker {
        Tracker { open: Some(open), ..Tracker::default() }
    }

    fn push(&mut self, cfg: &IncidentConfig, seen: Option<Seen>) {
        if self.window.len() >= cfg.window as usize {
            self.window.pop_front();
        }
        self.window.push_back(seen);
    }

    /// Rate-limit headers of an answer.
    pub fn limits(&mut self, limits: &RateLimits) {
        let r = [limits.requests, limits.tokens, limits.input_tokens, limits.output_tokens];
        for (slot, l) in self.limits.iter_mut().zip(r) {
            LimitSeen::update(slot, l.map(|l| l.remaining));
        }
    }

    pub fn first_token(&mut self, elapsed: Duration) {
        if self.open.is_some() {
            self.ttft_during.add(elapsed);
            if let Some(i) = &mut self.open {
                i.ttft.during_ms = self.ttft_during.quantile_ms(0.5);
            }
            self.dirty = true;
        }
    }

    /// A judged attempt succeeded at `now_ms`. Returns the incident if this closed it.
    pub fn succeeded(&mut self, cfg: &IncidentConfig, now_ms: u64) -> Option<Incident> {
        self.push(cfg, None);
        if self.window.iter().all(Option::is_none) {
            self.pending = Requests::default();
        }
        self.last_success_ms = now_ms;
        self.ok_in_row = self.ok_in_row.saturating_add(1);
        let rate = self.failure_rate();
        let incident = self.open.as_mut()?;
        incident.attempts += 1;
        self.dirty = true;
        let by_rate = incident.opened_by == "failure_rate";
        if self.ok_in_row >= cfg.recover_after
            && !self.breaker_open
            && (!by_rate || rate < cfg.failure_rate / 2.0)
        {
            let mut closed = self.open.take()?;
            closed.ended_at = Some(now_ms);
            self.ttft_during = Hist::default();
            self.last_close_ms = now_ms;
            if !by_rate {
                // The breaker's verdict stands: the next incident is judged on a clean window.
                self.window.clear();
            }
            return Some(closed);
        }
        None
    }

    /// A judged attempt failed at `now_ms`. Returns true if this opened an incident.
    pub fn failed(&mut self, cfg: &IncidentConfig, who: &Who<'_>, e: &ProviderError, now_ms: u64) -> bool {
        let seen = Seen { kind: e.kind, status: e.status, at_ms: now_ms, message: scrub(e, who.secret) };
        self.ok_in_row = 0;
        self.push(cfg, Some(seen.clone()));
        if self.open.is_some() {
            let cause = (e.kind == ErrorKind::RateLimited).then(|| self.rate_limit_cause(e));
            if let Some(i) = &mut self.open {
                count(i, &seen);
                i.attempts += 1;
                if cause.is_some() {
                    i.rate_limit = cause;
                }
            }
            self.dirty = true;
            return false;
        }
        let n = self.window.len();
        let crossed = n >= cfg.min_attempts as usize && self.failure_rate() >= cfg.failure_rate;
        if crossed {
            self.open(who, "failure_rate", e, now_ms);
            return true;
        }
        false
    }

    /// The share of the window's attempts that failed (0 for an empty window).
    fn failure_rate(&self) -> f64 {
        let n = self.window.len();
        if n == 0 { 0.0 } else { self.window.iter().flatten().count() as f64 / n as f64 }
    }

    /// The target's breaker opened at `now_ms` (after the failure that opened it was recorded). Returns true if
    /// this opened an incident.
    pub fn breaker_opened(&mut self, who: &Who<'_>, now_ms: u64) -> bool {
        self.breaker_open = true;
        if self.open.is_some() {
            return false;
        }
        let last = self.window.iter().rev().flatten().next().cloned();
        let e = match last {
            Some(seen) => {
                ProviderError { status: seen.status, ..ProviderError::new(seen.kind, seen.message) }
            }
            None => ProviderError::new(ErrorKind::Timeout, "the breaker opened"),
        };
        self.open(who, "breaker", &e, now_ms);
        true
    }

    pub fn breaker_closed(&mut self) {
        self.breaker_open = false;
    }

    fn open(&mut self, who: &Who<'_>, by: &str, e: &ProviderError, now_ms: u64) {
        let since = self.last_close_ms;
        let failures: Vec<Seen> = self.window.iter().flatten().filter(|s| s.at_ms > since).cloned().collect();
        let started_at = failures.first().map_or(now_ms, |s| s.at_ms);
        let mut i = Incident {
            id: format!("inc_{started_at:x}_{:08x}", fnv(who.target)),
            target: who.target.to_owned(),
            provider: who.provider.to_owned(),
            model: who.model.to_owned(),
            started_at,
            ended_at: None,
            opened_by: by.to_owned(),
            attempts: self.window.len() as u64,
            failures: 0,
            kinds: BTreeMap::new(),
            first_error: failures.first().map(|s| s.message.clone()).unwrap_or_default(),
            last_error: String::new(),
            ttft: TtftShift {
                before_ms: who.ttft_before.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                during_ms: None,
            },
            requests: std::mem::take(&mut self.pending),
            rate_limit: None,
            blast_radius: BlastRadius::default(),
            updated_at: None,
        };
        for s in &failures {
            count(&mut i, s);
        }
        if failures.iter().any(|s| s.kind == ErrorKind::RateLimited) {
            i.rate_limit = Some(self.rate_limit_cause(e));
        }
        self.ttft_during = Hist::default();
        self.open = Some(i);
        self.dirty = true;
    }

    /// Which limit a 429 hit (the one its headers show used up, else what its message names), and whether the
    /// headers of the answers before it showed that limit nearly used up.
    fn rate_limit_cause(&self, e: &ProviderError) -> RateLimitCause {
        const NAMES: [&str; 4] = ["requests", "tokens", "input_tokens", "output_tokens"];
        let from_headers = e.limits.as_ref().and_then(|l| {
            let r = [l.requests, l.tokens, l.input_tokens, l.output_tokens];
            r.iter().position(|x| x.is_some_and(|x| x.remaining == 0))
        });
        let m = e.message.to_ascii_lowercase();
        let from_message = if m.contains("output token") {
            Some(3)
        } else if m.contains("input token") {
            Some(2)
        } else if m.contains("token") {
            Some(1)
        } else if m.contains("request") {
            Some(0)
        } else {
            None
        };
        match from_headers.or(from_message) {
            Some(i) => RateLimitCause {
                limit: NAMES[i].to_owned(),
                predicted: self.limits[i].is_some_and(LimitSeen::low),
            },
            None => RateLimitCause {
                limit: "unknown".to_owned(),
                predicted: self.limits.iter().flatten().any(|l| l.low()),
            },
        }
    }
}

fn count(i: &mut Incident, s: &Seen) {
    i.failures += 1;
    let k = i.kinds.entry(s.kind.label().to_owned()).or_default();
    k.count += 1;
    let status = s.status.map_or_else(|| "none".to_owned(), |st| st.to_string());
    *k.statuses.entry(status).or_default() += 1;
    if i.first_error.is_empty() {
        i.first_error.clone_from(&s.message);
    }
    i.last_error.clone_from(&s.message);
}

/// A stable short hash for incident ids.
fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// What the blast radius is judged from: every target the gateway reaches, with its provider, whether it has an
/// open incident, and when it last succeeded.
pub struct Reach<'a> {
    pub target: &'a str,
    pub provider: &'a str,
    pub open: bool,
    pub last_success_ms: u64,
    /// Its open incident's dominant kinds are network-level (connect, timeout, network).
    pub network: bool,
}

/// How far `incident` reaches, judged from every target at once: one model (another model of the same provider
/// answered since it started), a whole provider (none of its models answered since, while another provider's
/// did), or everything (every provider in trouble: most likely nines' own network, DNS or egress).
pub fn blast_radius(incident: &Incident, all: &[Reach<'_>]) -> BlastRadius {
    let since = incident.started_at;
    let fine = |r: &Reach<'_>| !r.open && r.last_success_ms >= since;
    let mut troubled: Vec<String> = all.iter().filter(|r| r.open).map(|r| r.target.to_owned()).collect();
    if !troubled.contains(&incident.target) {
        troubled.insert(0, incident.target.clone());
    }
    let siblings: Vec<&Reach<'_>> =
        all.iter().filter(|r| r.provider == incident.provider && r.target != incident.target).collect();
    let providers: BTreeMap<&str, bool> = all.iter().fold(BTreeMap::new(), |mut m, r| {
        let e = m.entry(r.provider).or_insert(false);
        *e |= fine(r);
        m
    });
    let others_fine = providers.iter().any(|(p, ok)| *p != incident.provider && *ok);
    // Other providers in trouble too (an idle one is not evidence either way).
    let others_troubled = all.iter().any(|r| r.open && r.provider != incident.provider);
    let (scope, explanation) = if siblings.iter().any(|r| fine(r)) {
        let ok: Vec<&str> = siblings.iter().filter(|r| fine(r)).map(|r| r.target).collect();
        (
            "model",
            format!(
                "only {}: {} of the same provider answered meanwhile (a model or deployment problem)",
                incident.target,
                ok.join(", ")
            ),
        )
    } else if others_fine || !others_troubled {
        let n = siblings.len() + 1;
        let others = if others_fine { "other providers did" } else { "no other provider is in trouble" };
        (
            "provider",
            format!(
                "all of {}: none of the {n} model(s) nines reaches there answered meanwhile; {others}",
                incident.provider
            ),
        )
    } else {
        let network = all.iter().filter(|r| r.open).all(|r| r.network);
        let why = if network {
            "every provider failed to connect or timed out at once: most likely nines' own network, DNS or egress"
        } else {
            "every provider is failing at once: check nines' own network and egress first"
        };
        ("everything", why.to_owned())
    };
    BlastRadius { scope: scope.to_owned(), explanation, targets: troubled }
}

/// Open incidents that no replica has written for `stale_ms` (their replica is gone; `mine`, this replica's own
/// open ones, are live whatever their age) end when they were last written.
pub fn end_gone(all: &mut [Incident], mine: &[String], now_ms: u64, stale_ms: u64) {
    for i in all {
        if i.is_open()
            && !mine.contains(&i.id)
            && i.updated_at.is_some_and(|u| now_ms.saturating_sub(u) > stale_ms)
        {
            i.ended_at = i.updated_at;
        }
    }
}

/// One fleet's incidents: replicas that met the same target's trouble at the same time each recorded an incident
/// of their own; shown as one (the earliest's id, opener and first error; the latest's last error; counts added; open
/// while any is). `all` in any order; returned open first, then by start, most recent first.
pub fn merge_overlapping(mut all: Vec<Incident>) -> Vec<Incident> {
    all.sort_by(|a, b| a.target.cmp(&b.target).then(a.started_at.cmp(&b.started_at)));
    let mut out: Vec<Incident> = Vec::with_capacity(all.len());
    for i in all {
        match out.last_mut() {
            Some(m) if m.target == i.target && m.ended_at.is_none_or(|end| i.started_at <= end) => {
                m.ended_at = match (m.ended_at, i.ended_at) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                m.attempts += i.attempts;
                m.failures += i.failures;
                for (kind, c) in i.kinds {
                    let into = m.kinds.entry(kind).or_default();
                    into.count += c.count;
                    for (status, n) in c.statuses {
                        *into.statuses.entry(status).or_default() += n;
                    }
                }
                if !i.last_error.is_empty() {
                    m.last_error = i.last_error;
                }
                let (r, o) = (&mut m.requests, &i.requests);
                r.affected += o.affected;
                r.saved += o.saved;
                r.saved_by_failover += o.saved_by_failover;
                r.saved_by_retry += o.saved_by_retry;
                r.saved_by_resume += o.saved_by_resume;
                r.failed += o.failed;
                m.ttft.during_ms = m.ttft.during_ms.max(i.ttft.during_ms);
                if m.rate_limit.is_none() {
                    m.rate_limit = i.rate_limit;
                }
            }
            _ => out.push(i),
        }
    }
    out.sort_by(|a, b| a.ended_at.is_some().cmp(&b.ended_at.is_some()).then(b.started_at.cmp(&a.started_at)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> IncidentConfig {
        IncidentConfig { failure_rate: 0.5, window: 4, min_attempts: 4, recover_after: 2 }
    }

    fn who() -> Who<'static> {
        Who { target: "a/m", provider: "a", model: "m", ttft_before: None, secret: Some("sk-secret-123456") }
    }

    fn err(kind: ErrorKind, status: u16) -> ProviderError {
        ProviderError { status: Some(status), ..ProviderError::new(kind, "Overloaded, key sk-secret-123456") }
    }

    #[test]
    fn a_failure_rate_opens_an_incident_from_the_first_failure_and_successes_close_it() {
        let mut t = Tracker::default();
        assert!(!t.failed(&cfg(), &who(), &err(ErrorKind::Overloaded, 529), 1000));
        t.succeeded(&cfg(), 2000);
        t.succeeded(&cfg(), 3000);
        assert!(t.failed(&cfg(), &who(), &err(ErrorKind::Server, 500), 4000), "2 of 4 failed");
        let i = t.open.clone().unwrap();
        assert_eq!((i.started_at, i.failures, i.opened_by.as_str()), (1000, 2, "failure_rate"));
        assert_eq!(i.kinds["overload"].statuses["529"], 1);
        assert_eq!(i.kinds["server_error"].count, 1);
        assert!(!i.first_error.contains("sk-secret"), "{}", i.first_error);
        // Two successes in a row are not enough while a quarter of the window still failed (half the threshold).
        assert!(t.succeeded(&cfg(), 5000).is_none());
        assert!(t.succeeded(&cfg(), 6000).is_none());
        assert!(t.succeeded(&cfg(), 7000).is_none());
        let closed = t.succeeded(&cfg(), 8000).unwrap();
        assert_eq!(closed.ended_at, Some(8000));
        assert!(t.open.is_none());
        // The next trouble is a new incident, from its own first failure.
        t.failed(&cfg(), &who(), &err(ErrorKind::Timeout, 504), 9000);
        assert!(t.breaker_opened(&who(), 9001));
        let next = t.open.clone().unwrap();
        assert_eq!((next.started_at, next.failures), (9000, 1));
        assert_ne!(next.id, closed.id);
    }

    #[test]
    fn a_target_failing_near_the_threshold_has_one_long_incident_not_many() {
        let cfg = IncidentConfig { failure_rate: 0.25, window: 20, min_attempts: 20, recover_after: 3 };
        let mut t = Tracker::default();
        let (mut opened, mut closed) = (0, 0);
        // 1 in 5 attempts fails, then 1 in 3, for 2,000 attempts each.
        for (i, every) in (0..4000u64).map(|i| (i, if i < 2000 { 5 } else { 3 })) {
            if i % every == 0 {
                opened += u32::from(t.failed(&cfg, &who(), &err(ErrorKind::Server, 500), i));
            } else if t.succeeded(&cfg, i).is_some() {
                closed += 1;
            }
        }
        assert_eq!((opened, closed), (1, 0), "20% never opens one; 33% opens one and keeps it open");
    }

    #[test]
    fn a_breaker_that_opens_without_a_failure_in_the_window_starts_now() {
        let mut t = Tracker::default();
        assert!(t.breaker_opened(&who(), 123_456));
        assert_eq!(t.open.as_ref().map(|i| i.started_at), Some(123_456));
    }

    #[test]
    fn an_open_breaker_opens_one_and_keeps_it_open_until_it_closes() {
        let mut t = Tracker::default();
        t.failed(&cfg(), &who(), &err(ErrorKind::Overloaded, 529), 10);
        assert!(t.breaker_opened(&who(), 15));
        assert_eq!(t.open.as_ref().unwrap().opened_by, "breaker");
        assert!(t.succeeded(&cfg(), 20).is_none());
        assert!(t.succeeded(&cfg(), 30).is_none(), "the breaker is still open");
        t.breaker_closed();
        assert!(t.succeeded(&cfg(), 40).is_some());
    }

    #[test]
    fn a_429_names_its_limit_and_whether_the_headers_predicted_it() {
        use crate::health::ratelimit::Remaining;
        let mut t = Tracker::default();
        let left = |n| Some(Remaining { remaining: n, reset: Duration::from_secs(1) });
        t.limits(&RateLimits { requests: left(100), tokens: left(90_000), ..Default::default() });
        t.limits(&RateLimits { requests: left(90), tokens: left(2_000), ..Default::default() });
        let mut e = err(ErrorKind::RateLimited, 429);
        e.limits = Some(Box::new(RateLimits { requests: left(89), tokens: left(0), ..Default::default() }));
        let c = t.rate_limit_cause(&e);
        assert_eq!((c.limit.as_str(), c.predicted), ("tokens", true));
        e.limits = None;
        e.message = "Number of requests exceeded".into();
        let c = t.rate_limit_cause(&e);
        assert_eq!((c.limit.as_str(), c.predicted), ("requests", false));
    }

    #[test]
    fn the_blast_radius_tells_a_model_from_a_provider_from_everything() {
        let i = Incident { started_at: 100, ..open_incident("a/m1", "a") };
        let r = |target, provider, open, last, network| Reach {
            target,
            provider,
            open,
            last_success_ms: last,
            network,
        };
        let model = blast_radius(&i, &[r("a/m1", "a", true, 0, false), r("a/m2", "a", false, 150, false)]);
        assert_eq!(model.scope, "model");
        let provider = blast_radius(&i, &[r("a/m1", "a", true, 0, false), r("b/x", "b", false, 150, false)]);
        assert_eq!(provider.scope, "provider");
        // Another provider idle (no answer since, but no incident either) is no evidence of an outage everywhere.
        let idle = blast_radius(&i, &[r("a/m1", "a", true, 0, true), r("b/x", "b", false, 50, false)]);
        assert_eq!(idle.scope, "provider", "{idle:?}");
        let all = blast_radius(&i, &[r("a/m1", "a", true, 0, true), r("b/x", "b", true, 50, true)]);
        assert_eq!(all.scope, "everything");
        assert!(all.explanation.contains("network"));
        assert_eq!(all.targets, ["a/m1", "b/x"]);
    }

    fn open_incident(target: &str, provider: &str) -> Incident {
        let mut t = Tracker::default();
        let w = Who { target, provider, model: "m", ttft_before: None, secret: None };
        t.breaker_opened(&w, 100);
        t.open.unwrap()
    }

    #[test]
    fn scrubbing_removes_credentials_and_bounds_the_message() {
        let e = ProviderError::new(ErrorKind::Auth, "bad header Authorization: Bearer abc.def key=xyz");
        let m = scrub(&e, None);
        assert!(!m.contains("abc.def") && !m.contains("xyz"), "{m}");
        let long = ProviderError::new(ErrorKind::Server, "é".repeat(1000));
        assert!(scrub(&long, None).len() <= MAX_MESSAGE + 3);
    }

    #[test]
    fn a_gone_replicas_open_incident_ends_when_it_was_last_written() {
        let at = |id: &str, updated: Option<u64>| Incident {
            id: id.to_owned(),
            updated_at: updated,
            ..open_incident("p/m", "p")
        };
        let mut all =
            vec![at("gone", Some(1_000)), at("live", Some(50_000)), at("mine", Some(1_000)), at("old", None)];
        end_gone(&mut all, &["mine".to_owned()], 70_000, 60_000);
        let ended: Vec<Option<u64>> = all.iter().map(|i| i.ended_at).collect();
        assert_eq!(ended, [Some(1_000), None, None, None]);
    }

    #[test]
    fn a_fleets_overlapping_incidents_of_one_target_are_one() {
        let at = |target: &str, start: u64, end: Option<u64>, failures: u64| Incident {
            started_at: start,
            ended_at: end,
            failures,
            last_error: format!("e{start}"),
            id: format!("i{start}"),
            ..open_incident(target, "p")
        };
        let merged = merge_overlapping(vec![
            at("p/m", 1_000, Some(5_000), 3),
            // Another replica's, during the first: one incident, ended when the later of the two did.
            at("p/m", 2_000, Some(6_000), 4),
            // Later, after both: its own.
            at("p/m", 9_000, Some(9_500), 1),
            // Another target: open, and while it is, another replica's of the same target is part of it.
            at("q/m", 1_500, None, 2),
            at("q/m", 8_000, Some(8_100), 1),
        ]);
        let ids: Vec<&str> = merged.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["i1500", "i9000", "i1000"], "open first, then the most recent");
        let p = &merged[2];
        assert_eq!((p.started_at, p.ended_at, p.failures), (1_000, Some(6_000), 7));
        assert_eq!(p.last_error, "e2000");
        let q = &merged[0];
        assert!(q.is_open());
        assert_eq!(q.failures, 3);
    }
}
