//! The flight: one request, owned by `dispatch` from its plan to the last byte the client receives. It holds the
//! plan, the deadline, the caller, and an append-only log of typed events, each stamped with the request's id.
//! Every event goes to the one recorder (`record::Recorder`) the moment it is appended: log lines, health,
//! (later) metrics and incidents all come from here, and no event is built anywhere else.
//!
//! A committed stream carries its flight into `respond`, so a failure after the commit point comes back here as
//! an event. A flight dropped before it ended (the client went away) ends as `Cancelled`, and a breaker trial it
//! held is released.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use nines_wire::resume::{Form, Unresumable};
use tokio::time::Instant;

use crate::app::Snapshot;
use crate::auth::Caller;
use crate::health::ratelimit::RateLimits;
use crate::health::{Role, TimedOut, Unavailable};
use crate::provider::{ErrorKind, ProviderError};
use crate::record::{Ending, Recorder};
use crate::route::{Plan, Target};

/// A request's id, in every log line and span about it and in the `x-request-id` header: the client's own, when it
/// sent a sane one (at most [`MAX_CLIENT_ID`] visible ASCII characters), else one of ours.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum RequestId {
    Ours(u64),
    Client(Arc<str>),
}

/// The longest `x-request-id` a client may choose.
pub const MAX_CLIENT_ID: usize = 128;

impl RequestId {
    pub fn new() -> RequestId {
        RequestId::Ours(rand::random())
    }

    /// The client's `x-request-id`, if it sent one fit to be echoed and logged; else a new id.
    pub fn from_client(value: Option<&http::HeaderValue>) -> RequestId {
        let fit =
            |b: &[u8]| !b.is_empty() && b.len() <= MAX_CLIENT_ID && b.iter().all(|c| c.is_ascii_graphic());
        match value.map(http::HeaderValue::as_bytes) {
            Some(b) if fit(b) => match std::str::from_utf8(b) {
                Ok(s) => RequestId::Client(Arc::from(s)),
                Err(_) => RequestId::new(),
            },
            _ => RequestId::new(),
        }
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Ours(n) => write!(f, "req_{n:016x}"),
            RequestId::Client(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The bit of plan target `i` in a set of targets kept as a `u64` (routes have at most 64 targets).
pub fn bit(i: usize) -> u64 {
    1u64.checked_shl(i as u32).unwrap_or(0)
}

/// The tokens an answer reported (what metrics, incidents and traces count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

impl From<&nines_wire::Usage> for Tokens {
    fn from(u: &nines_wire::Usage) -> Tokens {
        Tokens { input: u.input_tokens, output: u.output_tokens }
    }
}

/// Why a target was not tried.
#[derive(Clone, Debug)]
pub enum Skip {
    /// Its provider cannot be used at all (no key).
    Unusable(String),
    /// It cannot carry the request (a capability or field it lacks).
    Cannot(String),
    /// Its health says not now.
    Unavailable(Unavailable),
    /// A smaller model already said the request exceeds its context window, and this one is not declared larger.
    ContextWindow,
    /// Its stream broke in this request: a continuation is asked elsewhere.
    Broke,
}

/// Why a stream that broke after its commit point was not continued elsewhere.
#[derive(Clone, Copy, Debug)]
pub enum NotResumed {
    /// The route does not resume (`resume = false`), or this request cannot (not a chat stream).
    Off,
    /// The route's `max_resumes` were used.
    Limit(u32),
    /// Continuing would not be safe (a tool call was already delivered…).
    Unsafe(Unresumable),
    /// The request asked for structured output (a JSON schema or object): a continuation would be a second document.
    Structured,
    /// No other target could continue it.
    NoTarget,
}

impl fmt::Display for NotResumed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotResumed::Off => f.write_str("the route does not resume streams"),
            NotResumed::Limit(n) => write!(f, "already resumed {n} time(s), the route's max_resumes"),
            NotResumed::Unsafe(why) => write!(f, "{why}"),
            NotResumed::Structured => f.write_str("the request asked for structured output"),
            NotResumed::NoTarget => f.write_str("no other target could continue it"),
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::Unusable(why) | Skip::Cannot(why) => f.write_str(why),
            Skip::Unavailable(u) => f.write_str(u.label()),
            Skip::ContextWindow => {
                f.write_str("its context window is not declared larger than the one exceeded")
            }
            Skip::Broke => f.write_str("its stream broke in this request"),
        }
    }
}

/// One step of a flight. Targets are indices into the flight's plan.
#[derive(Debug)]
pub enum EventKind {
    /// An attempt was sent (`attempt`: 1 for the first on this target, 2 for its retry…).
    Started { target: usize, attempt: u32, role: Role },
    /// The attempt reached its commit point after `elapsed`: its first content event, or its whole answer.
    Committed { target: usize, role: Role, elapsed: Duration, limits: Option<Box<RateLimits>> },
    /// The answer is complete (whole answers: right after their commit; streams: at their last event), with the
    /// tokens it reported.
    Succeeded {
        target: usize,
        role: Role,
        elapsed: Duration,
        max_gap: Option<Duration>,
        tokens: Option<Tokens>,
    },
    /// The attempt failed, before its commit point or (for a stream) after it.
    Failed {
        target: usize,
        role: Role,
        /// Boxed: events are small, failures rare.
        error: Box<ProviderError>,
        elapsed: Duration,
        /// It waited its whole first-token limit (not cut short by the request's deadline).
        timed_out: Option<TimedOut>,
        /// The request's deadline ended it: no verdict on the target.
        deadline_cut: bool,
        after_commit: bool,
    },
    /// A target was not tried.
    Skipped { target: usize, why: Skip },
    /// A pause before retrying the same target.
    Waited { target: usize, wait: Duration },
    /// A stream that broke on `from` is continued by `to`, after `delivered` bytes of text, asked in `form`.
    Resumed { from: usize, to: usize, delivered: usize, form: Form },
    /// A stream that broke on `target` ends for the client with an error event.
    NotResumed { target: usize, why: NotResumed },
    /// `target`'s first token was late: `to` was started too (a hedge).
    Hedged { target: usize, to: usize, after: Duration },
    /// An attempt still running when another won the race was cancelled (its connection closed): no verdict.
    /// `slow`: it was the late one, whose time to first token is thus at least `elapsed`.
    Abandoned { target: usize, elapsed: Duration, slow: bool },
    /// The request is over, for the client.
    Ended { ending: Ending, target: Option<usize> },
}

#[derive(Debug)]
pub struct Event {
    /// Since the request started.
    pub at: Duration,
    pub kind: EventKind,
}

/// How an exhausted route is explained to the client: a digest of the log.
#[derive(Debug)]
pub struct Summary {
    /// Attempts sent.
    pub sent: usize,
    /// Targets tried or skipped (lines of `explain`).
    pub lines: usize,
    /// One line per attempt or skip: `anthropic/claude: overload 529: Overloaded`.
    pub explain: String,
    /// The kind that best describes the whole: the common kind when every failure was alike, else `Overloaded`.
    pub dominant: ErrorKind,
    pub last_status: Option<u16>,
    /// The shortest `Retry-After` any provider gave, or the soonest any skipped target comes back.
    pub retry_after: Option<Duration>,
    pub upstream_request_id: Option<String>,
}

pub struct Flight {
    pub id: RequestId,
    /// The client's W3C `traceparent`, if it sent one.
    pub traceparent: Option<Box<str>>,
    /// The front door it came through (`/v1/chat/completions`…).
    pub door: &'static str,
    pub caller: Caller,
    /// The `model` the client asked for.
    pub route: String,
    pub stream: bool,
    pub plan: Plan,
    pub started: Instant,
    pub deadline: Instant,
    /// What admission gave it: its priority, its place at the door, what it holds of its key's limits.
    pub admitted: Admitted,
    /// The configuration this flight runs under, from plan to last byte.
    pub snap: Arc<Snapshot>,
    /// Whether its outcomes speak for its targets' health (token counting's do not).
    pub judges_health: bool,
    recorder: Arc<Recorder>,
    log: Vec<Event>,
    /// The attempt whose verdict is pending, if it holds a breaker trial (target, trial): released if the flight
    /// ends first.
    open_trial: Option<(usize, u32)>,
    /// Targets whose stream broke in this request (a bit each): continuations go elsewhere.
    broke: u64,
    ended: bool,
}

impl fmt::Debug for Flight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flight").field("id", &self.id).field("route", &self.route).finish_non_exhaustive()
    }
}

/// What a front door knows when a flight takes off.
pub struct Takeoff {
    pub id: RequestId,
    /// The client's W3C `traceparent`, for the request's span.
    pub traceparent: Option<Box<str>>,
    pub door: &'static str,
    pub caller: Caller,
    pub route: String,
    pub stream: bool,
    pub plan: Plan,
    pub started: Instant,
    pub admitted: Admitted,
}

/// A request's admission: its priority, its count at the door, and its ticket against its key's and team's limits
/// (settled when its usage is known, released when the flight is dropped).
#[derive(Debug, Default)]
pub struct Admitted {
    pub priority: crate::config::protect::Priority,
    pub entry: Option<crate::admit::Entry>,
    pub ticket: crate::admit::Ticket,
    /// The client's own deadline, when it said (`x-stainless-timeout`, `x-nines-timeout`), if sooner than ours.
    pub client_deadline: Option<Instant>,
}

impl Flight {
    pub fn new(t: Takeoff, snap: Arc<Snapshot>, recorder: Arc<Recorder>) -> Flight {
        let mut deadline = t.started + snap.config.dispatch.deadline;
        if let Some(d) = t.admitted.client_deadline {
            deadline = deadline.min(d);
        }
        recorder.stats.metrics.in_flight.inc();
        Flight {
            id: t.id,
            traceparent: t.traceparent,
            door: t.door,
            caller: t.caller,
            route: t.route,
            stream: t.stream,
            plan: t.plan,
            started: t.started,
            deadline,
            admitted: t.admitted,
            snap,
            judges_health: true,
            recorder,
            log: Vec::with_capacity(4),
            open_trial: None,
            broke: 0,
            ended: false,
        }
    }

    pub fn target(&self, index: usize) -> Option<&Target> {
        self.plan.targets.get(index)
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn log(&self) -> &[Event] {
        &self.log
    }

    /// Append an event and hand it to the recorder.
    pub fn emit(&mut self, kind: EventKind) {
        match &kind {
            EventKind::Started { target, role: Role::Trial(e), .. } => self.open_trial = Some((*target, *e)),
            // A stream's trial is judged when it ends, not at its first token.
            EventKind::Committed { target, .. } if !self.stream => self.release_tracking(*target),
            EventKind::Failed { target, .. } | EventKind::Succeeded { target, .. } => {
                self.release_tracking(*target)
            }
            _ => {}
        }
        if let EventKind::Committed { .. } = &kind {
            self.admitted.ticket.commit();
        }
        if let EventKind::Succeeded { target, tokens: Some(t), .. } = &kind {
            let price = self
                .plan
                .targets
                .get(*target)
                .and_then(|x| self.snap.config.protect.price(x.label(), &x.model));
            self.admitted.ticket.settle(t.input, t.output, price);
        }
        let ending = matches!(kind, EventKind::Ended { .. });
        // One clock read per event, shared with the recorder.
        let now = Instant::now();
        let ev = Event { at: now.saturating_duration_since(self.started), kind };
        let this: &Flight = self;
        this.recorder.record(this, &ev, now);
        self.log.push(ev);
        if ending {
            self.ended = true;
        }
    }

    /// End the flight (once; later calls do nothing).
    pub fn end(&mut self, ending: Ending, target: Option<usize>) {
        if !self.ended {
            self.emit(EventKind::Ended { ending, target });
        }
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Attempts sent upstream so far.
    pub fn sent(&self) -> usize {
        self.log.iter().filter(|e| matches!(e.kind, EventKind::Started { .. })).count()
    }

    /// The trial on `target`, if one is tracked, has its verdict.
    fn release_tracking(&mut self, target: usize) {
        if self.open_trial.is_some_and(|(t, _)| t == target) {
            self.open_trial = None;
        }
    }

    /// The role of `target`'s committed attempt (a breaker trial, or normal).
    pub fn role_of(&self, target: usize) -> Role {
        self.log
            .iter()
            .rev()
            .find_map(|e| match e.kind {
                EventKind::Committed { target: t, role, .. } if t == target => Some(role),
                _ => None,
            })
            .unwrap_or(Role::Normal)
    }

    /// How long `target`'s latest attempt has run (from its `Started` event; the whole flight if it has none).
    pub fn attempt_elapsed(&self, target: usize) -> Duration {
        let since_start = self.started.elapsed();
        let started = self.log.iter().rev().find_map(|e| match e.kind {
            EventKind::Started { target: t, .. } if t == target => Some(e.at),
            _ => None,
        });
        since_start.saturating_sub(started.unwrap_or_default())
    }

    /// Keep `target` out of this request's continuations: its stream broke.
    pub fn exclude(&mut self, target: usize) {
        self.broke |= bit(target);
    }

    pub fn excluded(&self, target: usize) -> bool {
        self.broke & bit(target) != 0
    }

    /// Served now: by the first attempt, or saved by a retry or failover, or continued after a break.
    pub fn served_ending(&self) -> Ending {
        if self.log.iter().any(|e| matches!(e.kind, EventKind::Resumed { .. })) {
            return Ending::Resumed;
        }
        let failed = self.log.iter().any(|e| matches!(e.kind, EventKind::Failed { .. }));
        if failed { Ending::Saved } else { Ending::Served }
    }

    fn failures(&self) -> impl Iterator<Item = &ProviderError> {
        self.log.iter().filter_map(|e| match &e.kind {
            EventKind::Failed { error, .. } => Some(&**error),
            _ => None,
        })
    }

    pub fn summary(&self) -> Summary {
        let label = |i: usize| self.target(i).map_or("?", |t| t.label());
        let mut lines = Vec::new();
        let mut soonest: Option<Instant> = None;
        for e in &self.log {
            match &e.kind {
                EventKind::Failed { target, error, .. } => lines.push(format!("{}: {error}", label(*target))),
                EventKind::Skipped { target, why } => {
                    if let Skip::Unavailable(u) = why
                        && let Some(until) = u.until()
                    {
                        soonest = Some(soonest.map_or(until, |s| s.min(until)));
                    }
                    lines.push(format!("{}: skipped ({why})", label(*target)));
                }
                _ => {}
            }
        }
        let mut kinds = self.failures().map(|e| e.kind);
        let dominant = match kinds.next() {
            Some(first) if kinds.all(|k| k == first) => first,
            _ => ErrorKind::Overloaded,
        };
        let skipped_wait =
            soonest.map(|s| s.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero());
        Summary {
            sent: self.sent(),
            lines: lines.len(),
            explain: lines.join("; "),
            dominant,
            last_status: self.failures().filter_map(|e| e.status).last(),
            retry_after: self.failures().filter_map(|e| e.retry_after).chain(skipped_wait).min(),
            upstream_request_id: self.failures().filter_map(|e| e.request_id.clone()).last(),
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        if let Some((i, epoch)) = self.open_trial.take()
            && let Some(t) = self.plan.targets.get(i)
        {
            t.health.release_trial(epoch);
        }
        if !self.ended {
            self.emit(EventKind::Ended { ending: Ending::Cancelled, target: None });
        }
        self.recorder.stats.metrics.in_flight.dec();
    }
}
