//! The policy seam: what the attempt engine asks between attempts, and nowhere else. In what order to try the
//! plan's targets (the route's strategy), whether a target may be tried now (its health: breaker, cooldown,
//! headroom, slow start), how long to wait for its first token (learnt limits), whether a failure is worth a retry
//! on the same target (a lone transient failure, a short `Retry-After`, within the retry budget), and which
//! unavailable target to try when every one is (the one most likely to have recovered).
//!
//! The policy holds no state of its own (that is `health`, keyed by target), never sends anything, and never
//! logs: the engine turns its answers into events.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{DispatchConfig, HealthConfig, Strategy};
use crate::health::ratelimit::Need;
use crate::health::{Admit, Unavailable};
use crate::provider::{ErrorKind, ProviderError};
use crate::route::strategy::{self, Candidate};
use crate::route::{Plan, Target};

pub struct Policy<'a> {
    pub health: &'a HealthConfig,
    pub dispatch: &'a DispatchConfig,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try the same target again after this pause.
    Retry(Duration),
    /// Go on to the next target.
    MoveOn,
}

impl Policy<'_> {
    /// The order to try `plan`'s targets in for one request: its pool ordered by the route's strategy, then its
    /// fallbacks as written.
    pub fn order(&self, plan: &Plan, out: &mut Vec<usize>) {
        out.clear();
        let pool = plan.targets.get(..plan.pool).unwrap_or(&plan.targets);
        if plan.strategy == Strategy::Priority || pool.len() < 2 {
            out.extend(0..plan.targets.len());
            return;
        }
        let candidates: Vec<Candidate> = pool
            .iter()
            .enumerate()
            .map(|(index, t)| Candidate {
                index,
                weight: t.weight,
                latency: t.health.latency(),
                in_flight: t.health.in_flight(),
            })
            .collect();
        strategy::order(plan.strategy, &candidates, &mut rand::rng(), out);
        out.extend(pool.len()..plan.targets.len());
    }

    /// May the request try `target` now?
    pub fn admit(&self, target: &Target, need: Need) -> Admit {
        let probed = target.provider.config.probe.is_some();
        let fp = target.provider.fingerprint;
        target.health.admit(Instant::now(), self.health, need, fp, probed, rand::random::<f64>())
    }

    /// How long a stream on `target` may take to its first token (plain answers: the configured `first_byte`, since
    /// their time grows with their length).
    pub fn first_token_limit(&self, target: &Target, stream: bool) -> Duration {
        let cap = target.provider.config.timeouts.first_byte;
        if stream { target.health.first_token_limit(self.health, cap) } else { cap }
    }

    /// After `error` on the `tries`-th attempt on `target`: retry it, or move on. A retry keeps the provider's
    /// prompt cache; it is worth it only for a transient failure that is cheap to wait out.
    pub fn after_failure(
        &self,
        target: &Target,
        error: &ProviderError,
        tries: u32,
        remaining: Duration,
    ) -> AfterFailure {
        if tries > target.provider.config.retries || !error.retry_same_target() {
            return AfterFailure::MoveOn;
        }
        let wait = if error.kind == ErrorKind::RateLimited {
            match error.retry_after {
                Some(ra) if ra > self.dispatch.retry_after_cap => return AfterFailure::MoveOn,
                Some(ra) => ra,
                None => self.backoff(tries),
            }
        } else {
            // Only a lone failure: a target failing again and again is failed over, not hammered.
            if self.health.enabled && !target.health.lone_failure(Instant::now()) {
                return AfterFailure::MoveOn;
            }
            self.backoff(tries)
        };
        if wait >= remaining || !target.health.withdraw() {
            return AfterFailure::MoveOn;
        }
        AfterFailure::Retry(wait)
    }

    /// Exponential from `backoff_base`, capped at `backoff_max`, with equal jitter (half fixed, half random).
    fn backoff(&self, tries: u32) -> Duration {
        let exp = self.dispatch.backoff_base.saturating_mul(1u32 << tries.saturating_sub(1).min(16));
        let d = exp.min(self.dispatch.backoff_max);
        d / 2 + d.mul_f64(rand::random::<f64>() / 2.0)
    }

    /// Every target was unavailable: the one most likely to have recovered (the soonest to reopen; one whose trial
    /// is in flight next; one whose key was refused last).
    pub fn last_resort(&self, unavailable: &[(usize, Unavailable)]) -> Option<usize> {
        if !self.health.enabled {
            return None;
        }
        unavailable
            .iter()
            .min_by_key(|(_, u)| match (u, u.until()) {
                (Unavailable::Down, _) => (2, None),
                (_, None) => (1, None),
                (_, until) => (0, until),
            })
            .map(|(i, _)| *i)
    }
}
