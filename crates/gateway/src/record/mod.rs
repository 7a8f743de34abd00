//! Typed events: everything the gateway counts or logs goes through one of these, each emitting its own log line
//! (and, later, its metrics) in one place. Nothing else in the gateway logs request outcomes.

pub mod sink;

use std::time::Duration;

use crate::provider::ProviderError;

/// One upstream attempt failed.
pub struct AttemptFailed<'a> {
    pub target: &'a str,
    pub error: &'a ProviderError,
    pub elapsed: Duration,
    /// Whether the engine may try elsewhere (false: the client's own request was at fault).
    pub will_failover: bool,
}

impl AttemptFailed<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            target: "nines::attempt",
            target_name = self.target,
            kind = self.error.kind.label(),
            status = self.error.status,
            elapsed_ms = self.elapsed.as_millis() as u64,
            failover = self.will_failover,
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
    /// A stream broke after its commit point.
    BrokenStream,
    /// The client went away before the answer was complete.
    Cancelled,
}

impl Ending {
    pub fn label(self) -> &'static str {
        match self {
            Ending::Served => "served",
            Ending::Saved => "saved",
            Ending::Refused => "refused",
            Ending::Failed => "failed",
            Ending::BrokenStream => "broken_stream",
            Ending::Cancelled => "cancelled",
        }
    }
}

/// A request finished (for streams: its body finished).
pub struct RequestCompleted<'a> {
    pub front_door: &'a str,
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
            front_door = self.front_door,
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
