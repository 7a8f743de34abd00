//! The ledger of one request's attempts: what was tried, how each ended, and how long it took. It explains an
//! exhausted route to the client and feeds `record`.

use std::time::Duration;

use tokio::time::Instant;

use crate::provider::{ErrorKind, ProviderError};

#[derive(Debug)]
pub enum Outcome {
    Served,
    Failed(ProviderError),
    /// Not sent: the target cannot take this request (no key, a field it cannot express).
    Skipped(String),
}

#[derive(Debug)]
pub struct Attempt {
    pub target: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

#[derive(Debug)]
pub struct Ledger {
    pub attempts: Vec<Attempt>,
    pub started: Instant,
    pub deadline: Instant,
}

impl Ledger {
    pub fn new(deadline: Duration) -> Self {
        let started = Instant::now();
        Ledger { attempts: Vec::with_capacity(2), started, deadline: started + deadline }
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Requests actually sent upstream.
    pub fn sent(&self) -> usize {
        self.attempts.iter().filter(|a| !matches!(a.outcome, Outcome::Skipped(_))).count()
    }

    pub fn failures(&self) -> impl Iterator<Item = &ProviderError> {
        self.attempts.iter().filter_map(|a| match &a.outcome {
            Outcome::Failed(e) => Some(e),
            _ => None,
        })
    }

    /// One line per attempt: `anthropic/claude: overload 529: Overloaded`.
    pub fn explain(&self) -> String {
        self.attempts
            .iter()
            .map(|a| match &a.outcome {
                Outcome::Served => format!("{}: served", a.target),
                Outcome::Failed(e) => format!("{}: {e}", a.target),
                Outcome::Skipped(why) => format!("{}: skipped ({why})", a.target),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The kind that best describes an exhausted route: the common kind when every sent attempt failed the same
    /// way, otherwise `Overloaded` (the route as a whole is unavailable).
    pub fn dominant_kind(&self) -> ErrorKind {
        let mut kinds = self.failures().map(|e| e.kind);
        match kinds.next() {
            Some(first) if kinds.all(|k| k == first) => first,
            _ => ErrorKind::Overloaded,
        }
    }

    /// The shortest `Retry-After` any provider gave.
    pub fn retry_after(&self) -> Option<Duration> {
        self.failures().filter_map(|e| e.retry_after).min()
    }

    pub fn upstream_request_id(&self) -> Option<&str> {
        self.failures().filter_map(|e| e.request_id.as_deref()).last()
    }
}
