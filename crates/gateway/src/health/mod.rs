//! Health per target (provider + model): what the gateway has learnt from every attempt, consulted before the
//! next one. A circuit breaker ([`breaker`]), a cooldown after a 429, "down" after our key was refused, the
//! rate-limit headroom the provider announced ([`ratelimit`]), learnt time limits and a latency score
//! ([`learnt`]), requests in flight, and the retry budget.
//!
//! The state is keyed by [`TargetId`] and lives in [`Health`], outside any configuration snapshot: a reload keeps
//! it. It is fed by `record` (the recorder turns attempt events into calls here) and read by `dispatch`'s policy.
//! This module never does I/O, never logs, and never decides the order of a route (that is `route::strategy`);
//! time comes only from `tokio::time`.

pub mod breaker;
pub mod gate;
pub mod learnt;
pub mod ratelimit;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};

use crate::config::{HealthConfig, RetryBudgetConfig};
use crate::provider::{ErrorKind, ProviderError};
use breaker::{Admission, Breaker, Outcome, Transition};
use learnt::{LearntConfig, LearntLimit, PeakEwma};
use ratelimit::{Headroom, Need, RateLimits};

/// How many ad-hoc targets (`provider/model` named by a client, not by the configuration) the registry remembers,
/// and how long such a name may be: beyond either, a new one gets health that is not kept (nothing learnt), so no
/// client can grow the registry without bound. Configured targets are always kept (the configuration bounds them).
const MAX_AD_HOC: usize = 1024;
const MAX_AD_HOC_NAME: usize = 256;

/// How fast the latency score forgets (peak EWMA decay).
const LATENCY_DECAY: Duration = Duration::from_secs(10);

/// A target's stable identity: `provider/model`, the same for a route's target and an ad-hoc one, and across
/// configuration reloads.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TargetId(Arc<str>);

impl TargetId {
    pub fn new(provider: &str, model: &str) -> TargetId {
        TargetId(Arc::from(format!("{provider}/{model}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// What an attempt is to its target's breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An ordinary attempt on a closed breaker.
    Normal,
    /// The one attempt a half-open breaker lets through (this trial's number): its verdict closes or reopens it.
    Trial(u32),
}

/// An attempt that waited its whole first-token limit (or, for a plain answer, its `first_byte`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut {
    pub limit: Duration,
    /// The limit was a learnt one, below the configured cap: the wait is recorded as a (censored) sample, so a
    /// provider whose new normal is slower is re-learnt rather than timed out forever.
    pub learnt: bool,
}

/// Why a target is not tried now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// Its breaker is open (until then; `None`: half-open with its one trial in flight, or waiting for a probe).
    Open { until: Option<Instant> },
    /// It answered 429: aside until its `Retry-After` or rate-limit reset.
    Cooling { until: Instant },
    /// Its announced rate limits cannot cover this request until they reset.
    NoHeadroom { until: Instant },
    /// It refused our key: down until its configuration changes or a probe succeeds.
    Down,
    /// It is at its concurrency limit and no room came in time for this request.
    Full { until: Instant },
}

impl Unavailable {
    /// When it may be usable again (`None`: unknown, or not by itself).
    pub fn until(self) -> Option<Instant> {
        match self {
            Unavailable::Open { until } => until,
            Unavailable::Cooling { until }
            | Unavailable::NoHeadroom { until }
            | Unavailable::Full { until } => Some(until),
            Unavailable::Down => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Unavailable::Open { .. } => "breaker open",
            Unavailable::Cooling { .. } => "rate-limited, cooling down",
            Unavailable::NoHeadroom { .. } => "its rate limits cannot cover this request until they reset",
            Unavailable::Down => "down: the provider refused our key",
            Unavailable::Full { .. } => "at its concurrency limit, no room in time",
        }
    }
}

/// The answer to "may this request try this target now?".
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Admit {
    Go {
        role: Role,
    },
    /// Usable, but ramping up after a recovery and not chosen for this request by the slow start: try it later in
    /// the order if something else can be tried first.
    Defer,
    Skip(Unavailable),
}

/// Everything the gateway knows about the health of its targets.
pub struct Health {
    targets: Mutex<HashMap<TargetId, Arc<TargetHealth>>>,
    ad_hoc: std::sync::atomic::AtomicUsize,
    budget: RetryBudgetConfig,
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health").field("targets", &lock(&self.targets).len()).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a few field updates that cannot be left half-done by a panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Health {
    /// `budget` shapes each target's retry budget (taken when the target is first seen).
    pub fn new(budget: RetryBudgetConfig) -> Health {
        Health { targets: Mutex::new(HashMap::new()), ad_hoc: Default::default(), budget }
    }

    /// The health of a configured target, remembered from now on.
    pub fn target(&self, id: &TargetId) -> Arc<TargetHealth> {
        self.lookup(id, false)
    }

    /// The health of a target a client named (`provider/model`): remembered only within the ad-hoc bounds.
    pub fn ad_hoc(&self, id: &TargetId) -> Arc<TargetHealth> {
        self.lookup(id, true)
    }

    fn lookup(&self, id: &TargetId, ad_hoc: bool) -> Arc<TargetHealth> {
        let mut targets = lock(&self.targets);
        if let Some(t) = targets.get(id) {
            return t.clone();
        }
        let t = Arc::new(TargetHealth::new(id.clone(), &self.budget));
        if !ad_hoc {
            targets.insert(id.clone(), t.clone());
        } else if id.as_str().len() <= MAX_AD_HOC_NAME && self.ad_hoc.load(Ordering::Relaxed) < MAX_AD_HOC {
            self.ad_hoc.fetch_add(1, Ordering::Relaxed);
            targets.insert(id.clone(), t.clone());
        }
        t
    }

    /// The health of a target already remembered, if it is.
    pub fn known(&self, id: &TargetId) -> Option<Arc<TargetHealth>> {
        lock(&self.targets).get(id).cloned()
    }

    /// Every remembered target, for reports.
    pub fn all(&self) -> Vec<Arc<TargetHealth>> {
        let mut v: Vec<_> = lock(&self.targets).values().cloned().collect();
        v.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        v
    }

    /// The retry budget's shape (every target's).
    pub fn retry_budget(&self) -> RetryBudgetConfig {
        self.budget
    }
}

/// One target's health.
pub struct TargetHealth {
    pub id: TargetId,
    /// Its concurrency limit, learnt, and the requests waiting for room.
    pub gate: Arc<gate::Gate>,
    state: Mutex<State>,
    in_flight: AtomicU32,
    budget: TpsBudget,
    /// The fleet's retry budget (shared through Redis): this replica's share of what the fleet has left, read
    /// each second (`i64::MAX`: no fleet view, the local budget alone decides), and what this replica deposited and
    /// withdrew since it last told the fleet.
    fleet_retries: AtomicI64,
    deposits: AtomicU64,
    withdrawals: AtomicU64,
    /// It refused an assistant prefill once: continuations are asked of it with an instruction from then on.
    prefill_refused: AtomicBool,
}

impl fmt::Debug for TargetHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetHealth").field("id", &self.id).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct State {
    breaker: Breaker,
    /// Time to first token of streams.
    ttft: LearntLimit,
    /// The largest gap between two events of each stream.
    gap: LearntLimit,
    /// Time to the commit point (first token, or the whole answer): the latency strategy's score.
    latency: PeakEwma,
    headroom: Headroom,
    cooling_until: Option<Instant>,
    /// Our key was refused: the provider's fingerprint then, and when it was last tried.
    down: Option<Down>,
    last_probe: Option<Instant>,
    /// Another replica of the fleet has its breaker open until then (shared through Redis).
    fleet_open: Option<Instant>,
}

#[derive(Clone, Copy, Debug)]
struct Down {
    fingerprint: u64,
    since: Instant,
}

/// A target's health as a report shows it.
#[derive(Clone, Debug)]
pub struct Report {
    pub id: TargetId,
    pub state: &'static str,
    pub until: Option<Instant>,
    pub consecutive_failures: u32,
    pub in_flight: u32,
    pub ttft_p99: Option<Duration>,
    pub first_token_limit: Duration,
    pub latency: Option<Duration>,
}

impl TargetHealth {
    fn new(id: TargetId, budget: &RetryBudgetConfig) -> TargetHealth {
        TargetHealth {
            gate: Arc::default(),
            id,
            state: Mutex::new(State {
                breaker: Breaker::new(),
                ttft: LearntLimit::new(),
                gap: LearntLimit::new(),
                latency: PeakEwma::new(),
                headroom: Headroom::default(),
                cooling_until: None,
                down: None,
                last_probe: None,
                fleet_open: None,
            }),
            in_flight: AtomicU32::new(0),
            fleet_retries: AtomicI64::new(i64::MAX),
            deposits: AtomicU64::new(0),
            withdrawals: AtomicU64::new(0),
            prefill_refused: AtomicBool::new(false),
            // Ranges checked by config validation; TpsBudget asserts them.
            budget: TpsBudget::new(budget.ttl, budget.min_per_second, budget.ratio),
        }
    }

    /// May a request needing `need` try this target now? `fingerprint` is the provider's current one (a "down"
    /// from another configuration no longer holds); `probed`: active probes decide recovery, never a client
    /// request; `roll` in [0, 1) decides the slow start. A `Go` spends the request against the local headroom and
    /// may hold the breaker's one trial: report its outcome, or [`TargetHealth::release_trial`].
    pub fn admit(
        &self,
        now: Instant,
        cfg: &HealthConfig,
        need: Need,
        fingerprint: u64,
        probed: bool,
        roll: f64,
    ) -> Admit {
        if !cfg.enabled {
            return Admit::Go { role: Role::Normal };
        }
        let mut s = lock(&self.state);
        // Without probes, one request a `cooldown_max` may find the key accepted again (claimed below, only if it
        // goes).
        let down_retry = match s.down {
            Some(d)
                if d.fingerprint == fingerprint
                    && !probed
                    && d.since.checked_add(cfg.breaker.cooldown_max).is_some_and(|t| now >= t) =>
            {
                true
            }
            Some(d) if d.fingerprint == fingerprint => return Admit::Skip(Unavailable::Down),
            Some(_) => {
                s.down = None;
                false
            }
            None => false,
        };
        if let Some(until) = s.cooling_until {
            if now < until {
                return Admit::Skip(Unavailable::Cooling { until });
            }
            s.cooling_until = None;
        }
        if let Err(until) = s.headroom.check(now, need) {
            return Admit::Skip(Unavailable::NoHeadroom { until });
        }
        if let Some(until) = s.fleet_open {
            if now < until {
                return Admit::Skip(Unavailable::Open { until: Some(until) });
            }
            s.fleet_open = None;
        }
        let role = if probed && !matches!(s.breaker.state(now), breaker::State::Closed) {
            return Admit::Skip(Unavailable::Open { until: s.breaker.reopens_at() });
        } else {
            match s.breaker.admit(now, &cfg.breaker) {
                Admission::Pass { share } if roll >= share => return Admit::Defer,
                Admission::Pass { .. } => Role::Normal,
                Admission::Trial => Role::Trial(s.breaker.epoch()),
                Admission::Refused { until } => return Admit::Skip(Unavailable::Open { until }),
            }
        };
        if down_retry && let Some(d) = &mut s.down {
            d.since = now;
        }
        s.headroom.spend(now, need);
        Admit::Go { role }
    }

    /// What has set this target aside since a request was admitted to it (its breaker left the closed state, the
    /// provider asked for a cool-down, another replica's breaker opened): asked again after a wait at the gate. It
    /// spends no headroom and claims no trial (the admission did).
    pub fn set_aside(&self, now: Instant, cfg: &HealthConfig) -> Option<Unavailable> {
        if !cfg.enabled {
            return None;
        }
        let s = lock(&self.state);
        if let Some(until) = s.cooling_until
            && now < until
        {
            return Some(Unavailable::Cooling { until });
        }
        if let Some(until) = s.fleet_open
            && now < until
        {
            return Some(Unavailable::Open { until: Some(until) });
        }
        if !matches!(s.breaker.state(now), breaker::State::Closed) {
            return Some(Unavailable::Open { until: s.breaker.reopens_at() });
        }
        None
    }

    /// Another replica's breaker for this target is open until `until`: skip it here too (a later local verdict
    /// still applies once that passes).
    pub fn open_in_fleet(&self, until: Instant) {
        let mut s = lock(&self.state);
        s.fleet_open = Some(s.fleet_open.map_or(until, |u| u.max(until)));
    }

    /// The fleet's breaker for this target closed (its trial succeeded somewhere).
    pub fn closed_in_fleet(&self) {
        lock(&self.state).fleet_open = None;
    }

    /// Another replica was told by the provider to wait until `until` (a 429's `Retry-After` or its rate-limit
    /// headers): this replica waits too.
    pub fn cooling_in_fleet(&self, until: Instant) {
        let mut s = lock(&self.state);
        s.cooling_until = Some(s.cooling_until.map_or(until, |u| u.max(until)));
    }

    /// Try it although it is unavailable (every target of the route is). An open breaker gives its one trial
    /// early; `None` when that trial is already in flight (nothing more is sent to a target in trouble).
    pub fn force(&self, now: Instant, need: Need) -> Option<Role> {
        let mut s = lock(&self.state);
        // Another replica owns this target's trial: nothing from here until it decides.
        if s.fleet_open.is_some_and(|u| now < u) {
            return None;
        }
        let role = match s.breaker.state(now) {
            breaker::State::Closed => Role::Normal,
            _ => Role::Trial(s.breaker.force_trial()?),
        };
        if let Some(d) = &mut s.down {
            d.since = now;
        }
        s.headroom.spend(now, need);
        Some(role)
    }

    /// A trial that ended without a verdict (the client went away, nothing was sent, or the outcome says nothing
    /// of the target).
    pub fn release_trial(&self, epoch: u32) {
        lock(&self.state).breaker.release(epoch, Instant::now());
    }

    /// How long a 429 keeps it aside from now.
    pub fn cooling_left(&self, now: Instant) -> Option<Duration> {
        lock(&self.state).cooling_until.map(|u| u.saturating_duration_since(now)).filter(|d| !d.is_zero())
    }

    /// The first-token limit for a stream on this target: learnt from its recent times to first token, capped by
    /// the configured `first_byte`.
    pub fn first_token_limit(&self, cfg: &HealthConfig, cap: Duration) -> Duration {
        learnt_limit(cfg, cap, |t| lock(&self.state).ttft.limit(t, cap))
    }

    /// The `q`-quantile of this target's recent times to first token, once it has at least `min_samples`.
    pub fn ttft_quantile(&self, q: f64, min_samples: u32) -> Option<Duration> {
        let s = lock(&self.state);
        if s.ttft.samples() < min_samples.max(1) {
            return None;
        }
        s.ttft.quantile(q)
    }

    /// A stream's first token took at least `elapsed` (it lost a hedge race): a sample for the learnt limits, so
    /// that they are not learnt from the fast attempts alone.
    pub fn first_token_at_least(&self, elapsed: Duration) {
        lock(&self.state).ttft.observe_timeout(elapsed);
    }

    /// The longest gap between stream events this target is expected to leave: learnt from its recent streams'
    /// largest gaps (quantile × multiplier, at least the floor), capped by its `idle` timeout.
    pub fn idle_limit(&self, cfg: &HealthConfig, cap: Duration) -> Duration {
        learnt_limit(cfg, cap, |t| lock(&self.state).gap.limit(t, cap))
    }

    /// The attempt reached its commit point after `elapsed` (its first token, or its whole answer). `judged`:
    /// whether the operation speaks for the target's health (token counting does not).
    pub fn committed(&self, now: Instant, cfg: &HealthConfig, c: Commit<'_>) -> Option<Transition> {
        let mut s = lock(&self.state);
        if let Some(l) = c.limits {
            s.headroom.update(now, l);
        }
        // Our key works (unless this attempt began before it was refused).
        if s.down.is_some_and(|d| now.checked_sub(c.elapsed).is_some_and(|began| began >= d.since)) {
            s.down = None;
        }
        if !c.judged {
            if let Role::Trial(e) = c.role {
                s.breaker.release(e, now);
            }
            return None;
        }
        if c.stream {
            s.ttft.observe(c.elapsed);
        }
        s.latency.observe(now, c.elapsed, LATENCY_DECAY);
        self.gate.succeeded();
        match c.role {
            // A stream's trial, like any stream, is judged by how it ends (`stream_ended`, or a failure after its
            // commit point); until then the trial stays in flight and the breaker half-open.
            Role::Trial(_) if c.stream => None,
            Role::Trial(e) => s.breaker.record_trial(now, &cfg.breaker, Outcome::Success, e),
            // A stream's verdict is how it ends (`stream_ended`, or a failure after its commit point): a target
            // that cuts every stream after its first token must count as failing, not as half successes.
            Role::Normal if c.stream => None,
            Role::Normal => s.breaker.record(now, &cfg.breaker, Outcome::Success, false),
        }
    }

    /// A stream ended complete; `max_gap` was its longest wait between two events. Its success, for the breaker
    /// (a trial's verdict, for a stream that was one).
    pub fn stream_ended(
        &self,
        now: Instant,
        cfg: &HealthConfig,
        max_gap: Duration,
        role: Role,
    ) -> Option<Transition> {
        let mut s = lock(&self.state);
        s.gap.observe(max_gap);
        match role {
            Role::Trial(e) => s.breaker.record_trial(now, &cfg.breaker, Outcome::Success, e),
            Role::Normal => s.breaker.record(now, &cfg.breaker, Outcome::Success, false),
        }
    }

    /// The attempt failed.
    pub fn failed(&self, now: Instant, cfg: &HealthConfig, f: Failure<'_>) -> Option<Transition> {
        let mut s = lock(&self.state);
        let error = f.error;
        if let Some(l) = error.limits.as_deref() {
            s.headroom.update(now, l);
        }
        // What says "too much at once": a rate limit, an overload, a first token that never came.
        let overload = matches!(error.kind, ErrorKind::RateLimited | ErrorKind::Overloaded)
            || (error.kind == ErrorKind::Timeout && !f.after_commit && !f.deadline_cut);
        if overload && f.judged {
            self.gate.overloaded(now);
        }
        let outcome = match error.kind {
            _ if !f.judged => None,
            // The client's request, not the target's health; the target answered.
            ErrorKind::BadRequest | ErrorKind::ContextLength => None,
            // Alive but limited: aside until it says, not broken.
            ErrorKind::RateLimited => {
                let wait = error
                    .retry_after
                    .or_else(|| error.limits.as_deref().and_then(RateLimits::exhausted_reset))
                    .unwrap_or(cfg.rate_limit_cooldown);
                s.cooling_until = now.checked_add(wait);
                None
            }
            // Our key: no retry or trial fixes it.
            ErrorKind::Auth => {
                s.down = Some(Down { fingerprint: f.fingerprint, since: now });
                None
            }
            // The request's (or the attempt's) own deadline ended it: no verdict on the target.
            ErrorKind::Timeout if f.deadline_cut => None,
            // A silent target must cost one request its timeout, not every request: open at once. After the
            // commit point the wait was between events, not for the first one: an ordinary failure.
            ErrorKind::Timeout if !f.after_commit => match f.timed_out {
                Some(t) => {
                    if t.learnt {
                        s.ttft.observe_timeout(t.limit);
                    }
                    Some(Outcome::Timeout)
                }
                // The request's deadline, not the target, ended the wait: no verdict.
                None if f.deadline_cut => None,
                None => Some(Outcome::Failure),
            },
            _ => Some(Outcome::Failure),
        };
        match (outcome, f.role) {
            (None, Role::Trial(e)) => {
                s.breaker.release(e, now);
                None
            }
            (None, Role::Normal) => None,
            (Some(o), Role::Trial(e)) => s.breaker.record_trial(now, &cfg.breaker, o, e),
            (Some(o), Role::Normal) => s.breaker.record(now, &cfg.breaker, o, false),
        }
    }

    /// Was the last failure recorded a lone one (nothing failed just before it, the breaker closed)? Only a lone
    /// failure is worth a same-target retry.
    pub fn lone_failure(&self, now: Instant) -> bool {
        let s = lock(&self.state);
        s.breaker.consecutive_failures() <= 1 && matches!(s.breaker.state(now), breaker::State::Closed)
    }

    /// Should a probe be sent now (the target is open or down, and the last probe is `interval` old)? Claims it.
    pub fn probe_due(&self, now: Instant, interval: Duration) -> bool {
        let mut s = lock(&self.state);
        let unwell = s.down.is_some() || !matches!(s.breaker.state(now), breaker::State::Closed);
        if !unwell || s.last_probe.and_then(|t| t.checked_add(interval)).is_some_and(|due| now < due) {
            return false;
        }
        s.last_probe = Some(now);
        true
    }

    /// A probe's result: success closes the breaker and lifts "down".
    pub fn probed(&self, now: Instant, cfg: &HealthConfig, ok: bool) -> Option<Transition> {
        let mut s = lock(&self.state);
        if ok {
            s.down = None;
        }
        if s.down.is_some() {
            return None;
        }
        s.breaker.probe(now, &cfg.breaker, ok)
    }

    /// Count one request sent here (a first attempt) into the retry budget.
    pub fn deposit(&self) {
        self.budget.deposit();
        self.deposits.fetch_add(1, Ordering::Relaxed);
    }

    /// Take one retry from the budget, if any is left: this replica's, and its share of the fleet's when shared.
    pub fn withdraw(&self) -> bool {
        if self.fleet_retries.fetch_sub(1, Ordering::AcqRel) <= 0 {
            self.fleet_retries.fetch_add(1, Ordering::AcqRel);
            return false;
        }
        if !self.budget.withdraw() {
            self.fleet_retries.fetch_add(1, Ordering::AcqRel);
            return false;
        }
        self.withdrawals.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// What this replica deposited and withdrew since the last call (for the fleet's budget).
    pub fn take_retry_counts(&self) -> (u64, u64) {
        (self.deposits.swap(0, Ordering::AcqRel), self.withdrawals.swap(0, Ordering::AcqRel))
    }

    /// Counts the fleet was not told (Redis did not answer): told next time.
    pub fn put_back_retry_counts(&self, deposits: u64, withdrawals: u64) {
        self.deposits.fetch_add(deposits, Ordering::AcqRel);
        self.withdrawals.fetch_add(withdrawals, Ordering::AcqRel);
    }

    /// This replica's share of the fleet's retries left (`None`: the fleet's view is gone, the local budget alone
    /// decides).
    pub fn fleet_retries(&self, share: Option<i64>) {
        self.fleet_retries.store(share.unwrap_or(i64::MAX), Ordering::Release);
    }

    /// Whether it refused an assistant prefill (a continuation asked with one got a 400).
    pub fn refuses_prefill(&self) -> bool {
        self.prefill_refused.load(Ordering::Relaxed)
    }

    pub fn refused_prefill(&self) {
        self.prefill_refused.store(true, Ordering::Relaxed);
    }

    /// Requests in flight here right now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Count a request in flight until the guard drops.
    pub fn fly(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone(), None)
    }

    /// The latency strategy's score: peak-EWMA time to the commit point.
    pub fn latency(&self) -> Option<Duration> {
        lock(&self.state).latency.get()
    }

    pub fn report(&self, now: Instant, cfg: &HealthConfig, first_byte: Duration) -> Report {
        let s = lock(&self.state);
        let (state, until) = match (s.down, s.breaker.state(now)) {
            (Some(_), _) => ("down", None),
            (None, breaker::State::Open { until }) => ("open", Some(until)),
            (None, breaker::State::HalfOpen) => ("half-open", None),
            (None, breaker::State::Closed) => match (s.fleet_open.filter(|u| *u > now), s.cooling_until) {
                // Another replica's breaker: kept aside here until its trial decides.
                (Some(u), _) => ("open", Some(u)),
                (None, Some(u)) if u > now => ("cooling", Some(u)),
                _ => ("closed", None),
            },
        };
        let first_token_limit = learnt_limit(cfg, first_byte, |t| s.ttft.limit(t, first_byte));
        Report {
            id: self.id.clone(),
            state,
            until,
            consecutive_failures: s.breaker.consecutive_failures(),
            in_flight: self.in_flight(),
            ttft_p99: s.ttft.quantile(0.99),
            first_token_limit,
            latency: s.latency.get(),
        }
    }
}

/// `cap`, or the learnt limit within it when learnt limits are on (the state is read only then).
fn learnt_limit(
    cfg: &HealthConfig,
    cap: Duration,
    learnt: impl FnOnce(&LearntConfig) -> Duration,
) -> Duration {
    match (&cfg.time_limits, cfg.enabled) {
        (Some(t), true) => learnt(t),
        _ => cap,
    }
}

/// An attempt's commit, as health reads it.
#[derive(Clone, Copy, Debug)]
pub struct Commit<'a> {
    pub role: Role,
    pub elapsed: Duration,
    pub stream: bool,
    pub limits: Option<&'a RateLimits>,
    /// Whether the operation speaks for the target's health (token counting does not).
    pub judged: bool,
}

/// An attempt's failure, as health reads it.
#[derive(Clone, Copy, Debug)]
pub struct Failure<'a> {
    pub role: Role,
    pub error: &'a ProviderError,
    /// The provider's current fingerprint (an auth failure holds until it changes).
    pub fingerprint: u64,
    pub timed_out: Option<TimedOut>,
    /// The request's deadline ended the attempt.
    pub deadline_cut: bool,
    pub after_commit: bool,
    pub judged: bool,
}

/// A request in flight on a target (for the least-busy strategy), until dropped; with the room it holds at the
/// target's gate, when it took some.
pub struct InFlight(Arc<TargetHealth>, pub Option<gate::Permit>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InFlight({})", self.0.id)
    }
}

#[cfg(test)]
mod tests;
