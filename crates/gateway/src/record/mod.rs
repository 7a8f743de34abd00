//! The one recorder: every event of every flight (`dispatch::flight`) comes here the moment it happens, and here
//! it becomes what the gateway does with it: a log line, and the health of its target (breakers, cooldowns,
//! learnt limits, headroom); its per-minute history, metrics and incident ([`stats`]); and, when the request ends,
//! its spans ([`trace`]). Nothing else in the gateway logs request outcomes, feeds health or counts availability.
//! What is kept is shown by [`status`] (the report behind `/status`, `/status.json`, `nines status`) and
//! [`metrics`] (`/metrics`).
//!
//! The recorder never decides anything about a request: it reports, and `health` remembers.

pub mod history;
pub mod incidents;
pub mod metrics;
pub mod sink;
pub mod stats;
pub mod status;
pub mod trace;

use std::time::Duration;

use tokio::time::Instant;

use crate::auth::Caller;
use crate::dispatch::flight::{Event, EventKind, Flight, RequestId};
use crate::health::breaker::{OpenReason, Transition};
use crate::health::{Commit, Failure, Health, TargetId};
use crate::provider::{ErrorKind, ProviderError};
use crate::route::Target;

/// A target's breaker changed state (what a status page, an incident, or a test waits for).
#[derive(Clone, Debug)]
pub struct HealthChange {
    pub target: TargetId,
    pub transition: Transition,
}

/// Turns events into log lines, health, history, metrics and incidents.
#[derive(Debug)]
pub struct Recorder {
    pub health: std::sync::Arc<Health>,
    pub stats: std::sync::Arc<stats::Stats>,
    changes: tokio::sync::broadcast::Sender<HealthChange>,
    /// One flush of the status store at a time (a late one would write an older copy of the current minute).
    flushing: tokio::sync::Mutex<()>,
    /// The trace pipeline, when `[traces]` has an endpoint.
    pub traces: Option<trace::Traces>,
    /// The fleet's shared state: what is written to the status store goes to the fleet too, and cooldowns.
    shared: Option<std::sync::Arc<crate::shared::Shared>>,
}

impl Recorder {
    pub fn new(health: std::sync::Arc<Health>, stats: std::sync::Arc<stats::Stats>) -> Recorder {
        Recorder {
            health,
            stats,
            changes: tokio::sync::broadcast::channel(64).0,
            flushing: tokio::sync::Mutex::new(()),
            traces: None,
            shared: None,
        }
    }

    /// Share history, incidents and cooldowns with the fleet through `shared`.
    pub fn with_shared(self, shared: Option<std::sync::Arc<crate::shared::Shared>>) -> Recorder {
        Recorder { shared, ..self }
    }

    /// Export each request's spans to `traces`.
    pub fn with_traces(self, traces: Option<trace::Traces>) -> Recorder {
        Recorder { traces, ..self }
    }

    /// Write what the status store has not got yet (off the request path: a blocking thread), and delete what is
    /// older than `retention`.
    pub async fn flush(&self, retention: Duration) -> Result<(), crate::store::StoreError> {
        let _one = self.flushing.lock().await;
        let stats = self.stats.clone();
        let keep_from = stats.wall.minute(Instant::now()).saturating_sub(retention.as_secs() / 60);
        let (rows, incidents) = tokio::task::spawn_blocking(move || {
            let (minutes, incidents) = stats.take();
            match stats.store.write(&minutes, &incidents, keep_from) {
                Ok(rows) => Ok((rows, incidents)),
                Err(e) => {
                    // Kept for the next try (bounded), not lost.
                    stats.requeue(minutes, incidents);
                    Err(e)
                }
            }
        })
        .await??;
        // The fleet's copy (off the request path; bounded by the shared state's budget, kept for later if Redis
        // does not take it).
        if let Some(shared) = &self.shared {
            shared.publish(self.stats.store.writer(), rows, incidents).await;
        }
        Ok(())
    }

    /// Every breaker change from now on (a slow receiver misses the oldest, never blocks the recorder).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<HealthChange> {
        self.changes.subscribe()
    }

    /// Record `ev` of `flight`, which happened `now`.
    pub fn record(&self, flight: &Flight, ev: &Event, now: Instant) {
        // History and incidents see a failure before the breaker it opens, and a success after the breaker it
        // closes (so an incident can close with that success).
        let after = matches!(ev.kind, EventKind::Committed { .. } | EventKind::Succeeded { .. });
        if !after {
            self.stats.event(flight, ev, now);
        }
        self.logs_and_health(flight, ev, now);
        if after {
            self.stats.event(flight, ev, now);
        }
    }

    fn logs_and_health(&self, flight: &Flight, ev: &Event, now: Instant) {
        let cfg = &flight.snap.config.health;
        let target = |i: usize| flight.target(i);
        match &ev.kind {
            EventKind::Started { target: i, attempt, role } => {
                if let Some(t) = target(*i) {
                    if *attempt == 1 {
                        t.health.deposit();
                    }
                    tracing::debug!(target: "nines::attempt", request = %flight.id, target_name = t.label(),
                        attempt, role = ?role, "attempt started");
                }
            }
            EventKind::Committed { target: i, role, elapsed, limits } => {
                if let Some(t) = target(*i) {
                    let c = Commit {
                        role: *role,
                        elapsed: *elapsed,
                        stream: flight.stream,
                        limits: limits.as_deref(),
                        judged: flight.judges_health,
                    };
                    let tr = t.health.committed(now, cfg, c);
                    self.transition(t, tr);
                }
            }
            EventKind::Succeeded { target: i, role, max_gap, .. } => {
                if let Some(t) = target(*i)
                    && let Some(gap) = *max_gap
                    && flight.judges_health
                {
                    let tr = t.health.stream_ended(now, cfg, gap, *role);
                    self.transition(t, tr);
                }
            }
            EventKind::Failed { target: i, role, error, elapsed, timed_out, deadline_cut, after_commit } => {
                let Some(t) = target(*i) else { return };
                AttemptFailed {
                    request: &flight.id,
                    target: t.label(),
                    error,
                    elapsed: *elapsed,
                    after_commit: *after_commit,
                }
                .emit();
                let f = Failure {
                    role: *role,
                    error,
                    fingerprint: t.provider.fingerprint,
                    timed_out: *timed_out,
                    deadline_cut: *deadline_cut,
                    after_commit: *after_commit,
                    judged: flight.judges_health,
                };
                let tr = t.health.failed(now, cfg, f);
                // The provider said when to come back: the fleet waits too.
                if error.kind == ErrorKind::RateLimited
                    && flight.judges_health
                    && let Some(shared) = &self.shared
                    && let Some(left) = t.health.cooling_left(now)
                {
                    shared.cooling(&t.id, left);
                }
                self.transition(t, tr);
            }
            EventKind::Skipped { target: i, why } => {
                if let Some(t) = target(*i) {
                    tracing::debug!(target: "nines::attempt", request = %flight.id, target_name = t.label(),
                        "skipped: {why}");
                }
            }
            EventKind::Waited { target: i, wait } => {
                if let Some(t) = target(*i) {
                    tracing::debug!(target: "nines::attempt", request = %flight.id, target_name = t.label(),
                        wait_ms = wait.as_millis() as u64, "retrying the same target after a pause");
                }
            }
            EventKind::Resumed { from, to, delivered, form } => {
                let (Some(f), Some(t)) = (target(*from), target(*to)) else { return };
                tracing::info!(target: "nines::attempt", request = %flight.id, target_name = t.label(),
                    broken = f.label(), delivered_bytes = delivered, form = ?form,
                    "stream resumed on another target after a break");
            }
            EventKind::NotResumed { target: i, why } => {
                if let Some(t) = target(*i) {
                    tracing::info!(target: "nines::attempt", request = %flight.id, target_name = t.label(),
                        "broken stream not resumed: {why}");
                }
            }
            EventKind::Hedged { target: i, to, after } => {
                let (Some(f), Some(t)) = (target(*i), target(*to)) else { return };
                tracing::debug!(target: "nines::attempt", request = %flight.id, target_name = t.label(),
                    slow = f.label(), after_ms = after.as_millis() as u64, "hedge started: first token late");
            }
            EventKind::Abandoned { target: i, elapsed, slow } => {
                if let Some(t) = target(*i) {
                    // The loser of a race gives no first token; unrecorded, only fast ones would be learnt and the
                    // limits would shrink. The slow one's wait is a lower bound of its time to first token.
                    if *slow && flight.stream && flight.judges_health {
                        t.health.first_token_at_least(*elapsed);
                    }
                    tracing::debug!(target: "nines::attempt", request = %flight.id, target_name = t.label(),
                        elapsed_ms = elapsed.as_millis() as u64, "attempt cancelled: another won the race");
                }
            }
            EventKind::Ended { ending, target: i } => {
                RequestCompleted {
                    request: &flight.id,
                    front_door: flight.door,
                    caller: &flight.caller,
                    model: &flight.route,
                    target: i.and_then(target).map(|t| t.label()),
                    attempts: flight.sent(),
                    stream: flight.stream,
                    ending: *ending,
                    elapsed: ev.at,
                }
                .emit();
                if let Some(t) = &self.traces {
                    t.flight_ended(flight, ev, now);
                }
            }
        }
    }

    /// An active probe's result.
    pub fn probed(
        &self,
        target: &Target,
        cfg: &crate::config::HealthConfig,
        result: Result<(), ProviderError>,
    ) {
        // A 4xx other than our key's means the provider answered: alive (the probe's own request is at fault).
        let ok = match &result {
            Ok(()) => true,
            Err(e) => {
                matches!(e.kind, ErrorKind::BadRequest | ErrorKind::NotFound | ErrorKind::ContextLength)
            }
        };
        match &result {
            Ok(()) => {
                tracing::debug!(target: "nines::health", target_name = target.label(), "probe succeeded")
            }
            Err(e) => tracing::debug!(target: "nines::health", target_name = target.label(),
                kind = e.kind.label(), "probe failed: {}", e.message),
        }
        let tr = target.health.probed(Instant::now(), cfg, ok);
        self.transition(target, tr);
    }

    fn transition(&self, target: &Target, tr: Option<Transition>) {
        let Some(tr) = tr else { return };
        BreakerChanged { target: target.label(), transition: tr }.emit();
        self.stats.breaker(target, tr, Instant::now());
        // Nobody listening is fine.
        let _ = self.changes.send(HealthChange { target: target.id.clone(), transition: tr });
    }
}

/// A target's breaker changed state.
pub struct BreakerChanged<'a> {
    pub target: &'a str,
    pub transition: Transition,
}

impl BreakerChanged<'_> {
    pub fn emit(&self) {
        let ms = |d: Duration| d.as_millis() as u64;
        match self.transition {
            Transition::Opened { cooldown, reason } => {
                let why = match reason {
                    OpenReason::Consecutive(n) => format!("{n} failures in a row"),
                    OpenReason::Rate { failures, requests } => {
                        format!("{failures} of {requests} requests failed")
                    }
                    OpenReason::Timeout => "a timeout".to_owned(),
                };
                tracing::warn!(target: "nines::health", target_name = self.target, cooldown_ms = ms(cooldown),
                    "breaker opened: {why}");
            }
            Transition::Reopened { cooldown } => {
                tracing::warn!(target: "nines::health", target_name = self.target, cooldown_ms = ms(cooldown),
                    "breaker reopened: the trial failed");
            }
            Transition::Closed => {
                tracing::info!(target: "nines::health", target_name = self.target, "breaker closed: recovered");
            }
        }
    }
}

/// One upstream attempt failed.
pub struct AttemptFailed<'a> {
    pub request: &'a RequestId,
    pub target: &'a str,
    pub error: &'a ProviderError,
    pub elapsed: Duration,
    pub after_commit: bool,
}

impl AttemptFailed<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            target: "nines::attempt",
            request = %self.request,
            target_name = self.target,
            kind = self.error.kind.label(),
            status = self.error.status,
            elapsed_ms = self.elapsed.as_millis() as u64,
            after_commit = self.after_commit,
            "attempt failed: {}",
            self.error.message
        );
    }
}

/// How a request ended, from the client's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Answered by the first target tried.
    Served,
    /// Answered after at least one failed attempt: an outage the client never saw.
    Saved,
    /// The client's request was refused (its own fault).
    Refused,
    /// No target could answer.
    Failed,
    /// A stream broke after its commit point and another target completed it.
    Resumed,
    /// A stream broke after its commit point.
    BrokenStream,
    /// The client went away before the answer was complete.
    Cancelled,
}

impl Ending {
    pub const ALL: [Ending; 7] = [
        Ending::Served,
        Ending::Saved,
        Ending::Refused,
        Ending::Failed,
        Ending::Resumed,
        Ending::BrokenStream,
        Ending::Cancelled,
    ];

    /// Its place in [`Ending::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            Ending::Served => "served",
            Ending::Saved => "saved",
            Ending::Refused => "refused",
            Ending::Failed => "failed",
            Ending::Resumed => "resumed",
            Ending::BrokenStream => "broken_stream",
            Ending::Cancelled => "cancelled",
        }
    }
}

/// A request finished (for streams: its body finished).
pub struct RequestCompleted<'a> {
    pub request: &'a RequestId,
    pub front_door: &'a str,
    pub caller: &'a Caller,
    pub model: &'a str,
    pub target: Option<&'a str>,
    pub attempts: usize,
    pub stream: bool,
    pub ending: Ending,
    pub elapsed: Duration,
}

impl RequestCompleted<'_> {
    pub fn emit(&self) {
        tracing::info!(
            target: "nines::request",
            request = %self.request,
            front_door = self.front_door,
            caller = %self.caller,
            model = self.model,
            served_by = self.target.unwrap_or("-"),
            attempts = self.attempts,
            stream = self.stream,
            ending = self.ending.label(),
            elapsed_ms = self.elapsed.as_millis() as u64,
            "request completed"
        );
    }
}
