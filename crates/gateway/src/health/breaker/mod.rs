//! A circuit breaker for one target (a provider + model pair).
//!
//! The breaker opens after a run of consecutive failures, when the failure rate over a sliding
//! window gets too high (once the window holds enough requests), or at once on a timeout. While
//! open it refuses every request until a growing, jittered cooldown has passed; then it admits
//! exactly one trial at a time. A trial's success (or an active probe's) closes it again, and the
//! target's share of traffic then ramps up linearly ("slow start"). A trial's failure reopens it
//! with the next, longer cooldown.
//!
//! What it never does: I/O, logging, async, sleeping, spawning, or reading the clock — every method
//! that needs the time takes `now`, so callers (and tests) drive time explicitly. It never panics
//! and never grows: the sliding window is a fixed ring of buckets. It never decides anything from a
//! late report: outcomes of ordinary attempts that were in flight when it opened change nothing.

use std::time::Duration;

use tokio::time::Instant;

/// Buckets in the sliding window; each covers `window / BUCKETS`.
const BUCKETS: usize = 10;
/// The share of traffic a target gets right after it closes again, when `ramp` is non-zero.
const RAMP_START: f64 = 0.1;
/// No cooldown is shorter than this.
const MIN_COOLDOWN: Duration = Duration::from_millis(1);
/// Where `now + cooldown` would overflow an `Instant`, open for this long instead.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// When a breaker opens, for how long, and how it recovers.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Open after this many failures in a row (0 turns the rule off).
    pub consecutive_failures: u32,
    /// Or open when failures / requests in the window reach this (above 1.0 turns the rule off).
    pub failure_rate: f64,
    /// The sliding window for the rate.
    pub window: Duration,
    /// The rate only counts with at least this many requests in the window.
    pub min_requests: u32,
    /// The first open period; each further open in a row doubles it.
    pub cooldown: Duration,
    /// The cap of the growing cooldown (before jitter).
    pub cooldown_max: Duration,
    /// Slow start after recovery: the share rises from 0.1 to 1.0 over this (zero = none).
    pub ramp: Duration,
    /// Each cooldown is jittered uniformly within ± this fraction (clamped to 0..=1; 0 = exact).
    pub jitter: f64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 3,
            failure_rate: 0.5,
            window: Duration::from_secs(30),
            min_requests: 20,
            cooldown: Duration::from_secs(5),
            cooldown_max: Duration::from_secs(120),
            ramp: Duration::from_secs(30),
            jitter: 0.2,
        }
    }
}

/// The breaker's state, for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    /// Refusing everything until `until`.
    Open {
        until: Instant,
    },
    /// The cooldown is over; one trial at a time may go through.
    HalfOpen,
}

/// The answer to "may I send a request to this target now?".
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    /// Go ahead. `share` (0.1..=1.0) is the slow-start share of traffic the target should get.
    Pass { share: f64 },
    /// Go ahead as the one trial; report with `record(.., trial = true)` or `release_trial`.
    Trial,
    /// Not now. `until` is when the cooldown ends, or `None` when a trial is already in flight.
    Refused { until: Option<Instant> },
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// A failure that opens the breaker at once: a silent provider must cost one request its
    /// timeout, not every request.
    Timeout,
}

/// Why a closed breaker opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenReason {
    /// This many failures in a row.
    Consecutive(u32),
    /// This many failures among this many requests in the window.
    Rate { failures: u32, requests: u32 },
    /// An attempt timed out.
    Timeout,
}

/// A change of state worth reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Closed → Open.
    Opened { cooldown: Duration, reason: OpenReason },
    /// A trial or a probe failed after the cooldown: open again, for longer.
    Reopened { cooldown: Duration },
    /// A trial or a probe succeeded: closed, ramping up.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `ramp_from`: when it last closed, while still ramping up.
    Closed {
        ramp_from: Option<Instant>,
    },
    Open {
        until: Instant,
    },
    /// `since`: the end of the cooldown that led here. `trial`: a trial is in flight.
    HalfOpen {
        since: Instant,
        trial: bool,
    },
}

/// The circuit breaker of one target. Small; meant to live in a `Mutex` per target.
#[derive(Debug, Clone)]
pub struct Breaker {
    phase: Phase,
    /// Failures in a row while closed.
    consecutive: u32,
    /// Opens in a row without a successful close: the exponent of the next cooldown.
    opens: u32,
    /// Which trial is the current one: a late verdict or release of an earlier trial changes nothing.
    epoch: u32,
    window: Window,
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new()
    }
}

impl Breaker {
    /// A closed breaker with an empty window.
    pub fn new() -> Self {
        Self {
            phase: Phase::Closed { ramp_from: None },
            consecutive: 0,
            opens: 0,
            epoch: 0,
            window: Window::new(),
        }
    }

    /// May a request go to this target now? Open with the cooldown over, or half-open with no
    /// trial in flight, admits the caller as the one trial.
    pub fn admit(&mut self, now: Instant, cfg: &BreakerConfig) -> Admission {
        match self.phase {
            Phase::Closed { ramp_from } => {
                let share = ramp_share(ramp_from, now, cfg.ramp);
                if share >= 1.0 {
                    self.phase = Phase::Closed { ramp_from: None };
                }
                Admission::Pass { share }
            }
            Phase::Open { until } if now < until => Admission::Refused { until: Some(until) },
            Phase::Open { until: since } | Phase::HalfOpen { since, trial: false } => {
                self.phase = Phase::HalfOpen { since, trial: true };
                self.epoch = self.epoch.wrapping_add(1);
                Admission::Trial
            }
            Phase::HalfOpen { trial: true, .. } => Admission::Refused { until: None },
        }
    }

    /// Report how an attempt ended; `trial` says whether it was admitted as a `Trial`.
    ///
    /// While closed every outcome counts (trial or not). While open or half-open only the trial's
    /// verdict counts; late reports of ordinary attempts change nothing and return `None`.
    pub fn record(
        &mut self,
        now: Instant,
        cfg: &BreakerConfig,
        outcome: Outcome,
        trial: bool,
    ) -> Option<Transition> {
        match self.phase {
            Phase::Closed { .. } => self.record_closed(now, cfg, outcome),
            Phase::HalfOpen { .. } if trial => match outcome {
                Outcome::Success => Some(self.close(now)),
                Outcome::Failure | Outcome::Timeout => {
                    Some(Transition::Reopened { cooldown: self.open(now, cfg) })
                }
            },
            Phase::Open { .. } | Phase::HalfOpen { .. } => None,
        }
    }

    /// The current trial's identity (read right after `admit` returned `Trial`, or from `force_trial`).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Every other target is unavailable too: take the trial slot now, before the cooldown ends, unless a trial
    /// is already in flight. Its verdict is a trial's. `None` while closed or with a trial in flight.
    pub fn force_trial(&mut self) -> Option<u32> {
        match self.phase {
            Phase::Open { until: since } | Phase::HalfOpen { since, trial: false } => {
                self.phase = Phase::HalfOpen { since, trial: true };
                self.epoch = self.epoch.wrapping_add(1);
                Some(self.epoch)
            }
            Phase::Closed { .. } | Phase::HalfOpen { trial: true, .. } => None,
        }
    }

    /// The verdict of trial `epoch`: counted only if it is still the current trial (while closed, as an ordinary
    /// outcome; a stale trial's verdict while open or half-open changes nothing).
    pub fn record_trial(
        &mut self,
        now: Instant,
        cfg: &BreakerConfig,
        outcome: Outcome,
        epoch: u32,
    ) -> Option<Transition> {
        let current = matches!(self.phase, Phase::HalfOpen { trial: true, .. }) && epoch == self.epoch;
        self.record(now, cfg, outcome, current)
    }

    /// Trial `epoch` ended without a verdict: released only if it is still the current trial. A trial taken early
    /// (`force_trial`) before the cooldown ended gives the rest of the cooldown back: open until then.
    pub fn release(&mut self, epoch: u32, now: Instant) {
        if epoch != self.epoch {
            return;
        }
        match self.phase {
            Phase::HalfOpen { since, trial: true } if now < since => {
                self.phase = Phase::Open { until: since }
            }
            _ => self.release_trial(),
        }
    }

    /// The trial ended without a verdict (the client went away, or it was never sent): another
    /// trial may be admitted. The state stays half-open.
    pub fn release_trial(&mut self) {
        if let Phase::HalfOpen { since, trial: true } = self.phase {
            self.phase = Phase::HalfOpen { since, trial: false };
        }
    }

    /// An active probe's result. While open or half-open, `ok` closes the breaker (with the ramp);
    /// a failure keeps it open until the current `until` if that is still ahead, else reopens it
    /// with the next cooldown. While closed, probes change nothing.
    pub fn probe(&mut self, now: Instant, cfg: &BreakerConfig, ok: bool) -> Option<Transition> {
        match self.phase {
            Phase::Closed { .. } => None,
            Phase::Open { .. } | Phase::HalfOpen { .. } if ok => Some(self.close(now)),
            Phase::Open { until } if now < until => None,
            Phase::Open { .. } | Phase::HalfOpen { .. } => {
                Some(Transition::Reopened { cooldown: self.open(now, cfg) })
            }
        }
    }

    /// The state at `now`, for reporting (open with the cooldown over reads as half-open).
    pub fn state(&self, now: Instant) -> State {
        match self.phase {
            Phase::Closed { .. } => State::Closed,
            Phase::Open { until } if now < until => State::Open { until },
            Phase::Open { .. } | Phase::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// When the current (or, if half-open, the last) cooldown ends; `None` while closed. The open
    /// target with the earliest value is the one most likely to have recovered.
    pub fn reopens_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed { .. } => None,
            Phase::Open { until } => Some(until),
            Phase::HalfOpen { since, .. } => Some(since),
        }
    }

    /// Failures in a row while closed (0 before a lone failure). Reset when it closes again.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    fn record_closed(&mut self, now: Instant, cfg: &BreakerConfig, outcome: Outcome) -> Option<Transition> {
        let failed = outcome != Outcome::Success;
        self.window.add(now, cfg.window / BUCKETS as u32, failed);
        if !failed {
            self.consecutive = 0;
            return None;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        let (requests, failures) = self.window.totals();
        let reason = if outcome == Outcome::Timeout {
            OpenReason::Timeout
        } else if cfg.consecutive_failures > 0 && self.consecutive >= cfg.consecutive_failures {
            OpenReason::Consecutive(self.consecutive)
        } else if requests > 0
            && requests >= cfg.min_requests
            && f64::from(failures) / f64::from(requests) >= cfg.failure_rate
        {
            OpenReason::Rate { failures, requests }
        } else {
            return None;
        };
        let cooldown = self.open(now, cfg);
        Some(Transition::Opened { cooldown, reason })
    }

    /// Open now with the next cooldown in the sequence; returns the cooldown.
    fn open(&mut self, now: Instant, cfg: &BreakerConfig) -> Duration {
        let cooldown = cooldown_for(self.opens, cfg, random_unit());
        self.opens = self.opens.saturating_add(1);
        let until = now.checked_add(cooldown).or_else(|| now.checked_add(FAR_FUTURE)).unwrap_or(now);
        self.phase = Phase::Open { until };
        cooldown
    }

    /// Close now: the ramp starts, and the counts and the cooldown exponent start over.
    fn close(&mut self, now: Instant) -> Transition {
        self.phase = Phase::Closed { ramp_from: Some(now) };
        self.consecutive = 0;
        self.opens = 0;
        self.window = Window::new();
        Transition::Closed
    }
}

/// The cooldown of the `k`-th open in a row (k = 0, 1, 2 …): `min(cooldown * 2^k, cooldown_max)`,
/// moved by `unit * cfg.jitter` of itself, where `unit` is in -1.0..=1.0 (clamped; NaN counts as
/// 0). Never below 1 ms, never above `cooldown_max * (1 + jitter)`; no overflow for any `k`.
pub fn cooldown_for(k: u32, cfg: &BreakerConfig, unit: f64) -> Duration {
    let grown = match 2u32.checked_pow(k) {
        Some(factor) => cfg.cooldown.saturating_mul(factor),
        None if cfg.cooldown.is_zero() => Duration::ZERO,
        None => Duration::MAX,
    }
    .min(cfg.cooldown_max);
    let frac = if cfg.jitter.is_nan() { 0.0 } else { cfg.jitter.clamp(0.0, 1.0) };
    let unit = if unit.is_nan() { 0.0 } else { unit.clamp(-1.0, 1.0) };
    let offset =
        Duration::try_from_secs_f64(grown.as_secs_f64() * frac * unit.abs()).unwrap_or(Duration::ZERO);
    let jittered = if unit >= 0.0 { grown.saturating_add(offset) } else { grown.saturating_sub(offset) };
    let upper = cfg.cooldown_max.saturating_add(
        Duration::try_from_secs_f64(cfg.cooldown_max.as_secs_f64() * frac).unwrap_or(Duration::ZERO),
    );
    jittered.min(upper).max(MIN_COOLDOWN)
}

/// Uniform in -1.0..1.0.
fn random_unit() -> f64 {
    rand::random::<f64>() * 2.0 - 1.0
}

/// The slow-start share at `now`: 0.1 at `ramp_from`, rising linearly to 1.0 over `ramp`.
fn ramp_share(ramp_from: Option<Instant>, now: Instant, ramp: Duration) -> f64 {
    let Some(from) = ramp_from else { return 1.0 };
    if ramp.is_zero() {
        return 1.0;
    }
    let progress = now.saturating_duration_since(from).as_secs_f64() / ramp.as_secs_f64();
    if progress >= 1.0 { 1.0 } else { RAMP_START + (1.0 - RAMP_START) * progress }
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    requests: u32,
    failures: u32,
}

/// A sliding window of `BUCKETS` buckets, each `width` long, rotated by the time of each report.
#[derive(Debug, Clone)]
struct Window {
    buckets: [Bucket; BUCKETS],
    /// Bucket numbers count `width`s from here (the first report).
    origin: Option<Instant>,
    /// The number of the newest bucket.
    head: u64,
}

impl Window {
    fn new() -> Self {
        Self { buckets: [Bucket::default(); BUCKETS], origin: None, head: 0 }
    }

    fn add(&mut self, now: Instant, width: Duration, failed: bool) {
        let origin = *self.origin.get_or_insert(now);
        let width = width.as_nanos().max(1);
        let number =
            u64::try_from(now.saturating_duration_since(origin).as_nanos() / width).unwrap_or(u64::MAX);
        if number > self.head {
            if number - self.head >= BUCKETS as u64 {
                self.buckets = [Bucket::default(); BUCKETS];
            } else {
                for stale in self.head + 1..=number {
                    if let Some(bucket) = self.buckets.get_mut(slot(stale)) {
                        *bucket = Bucket::default();
                    }
                }
            }
            self.head = number;
        } else if self.head - number >= BUCKETS as u64 {
            // Older than the window (a report that waited for the lock): nothing to count it in.
            return;
        }
        if let Some(bucket) = self.buckets.get_mut(slot(number)) {
            bucket.requests = bucket.requests.saturating_add(1);
            if failed {
                bucket.failures = bucket.failures.saturating_add(1);
            }
        }
    }

    /// (requests, failures) in the window as of the last `add`.
    fn totals(&self) -> (u32, u32) {
        self.buckets.iter().fold((0u32, 0u32), |(requests, failures), bucket| {
            (requests.saturating_add(bucket.requests), failures.saturating_add(bucket.failures))
        })
    }
}

fn slot(number: u64) -> usize {
    (number % BUCKETS as u64) as usize
}

#[cfg(test)]
mod tests;
