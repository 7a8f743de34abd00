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

use super::Limits;
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

    /// Whether `target`, admitted before a wait at its gate, has been set aside meanwhile (nothing spent again).
    pub fn set_aside(&self, target: &Target) -> Option<Unavailable> {
        target.health.set_aside(Instant::now(), self.health)
    }

    /// How long a stream on `target` may take to its first token (plain answers: the configured `first_byte`, since
    /// their time grows with their length).
    pub fn first_token_limit(&self, target: &Target, stream: bool) -> Duration {
        let cap = target.provider.config.timeouts.first_byte;
        if stream { target.health.first_token_limit(self.health, cap) } else { cap }
    }

    /// What an attempt on `target` starting now is held to: its `request` timeout within the request's `deadline`,
    /// and its first-token limit.
    pub fn limits(&self, target: &Target, stream: bool, deadline: Instant) -> Limits {
        Limits {
            deadline: (Instant::now() + target.provider.config.timeouts.request).min(deadline),
            first_token: self.first_token_limit(target, stream),
        }
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
            // As long as the target is set aside (its Retry-After, or its rate-limit reset), and no longer than the
            // cap: a longer wait is better spent on another target.
            let aside = target.health.cooling_left(Instant::now()).unwrap_or_default();
            let wait = error.retry_after.unwrap_or_else(|| self.backoff(tries)).max(aside);
            if wait > self.dispatch.retry_after_cap {
                return AfterFailure::MoveOn;
            }
            wait
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

    /// Every target was unavailable: them, most likely to have recovered first (the soonest to reopen; then those
    /// whose trial is in flight; those whose key was refused last).
    pub fn last_resort(&self, unavailable: &[(usize, Unavailable)]) -> Vec<usize> {
        if !self.health.enabled {
            return Vec::new();
        }
        let mut v = unavailable.to_vec();
        v.sort_by_key(|(_, u)| match (u, u.until()) {
            (Unavailable::Down, _) => (2, None),
            (_, None) => (1, None),
            (_, until) => (0, until),
        });
        v.into_iter().map(|(i, _)| i).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Runtime, Snapshot};
    use crate::config::{Env, parse_and_validate};

    fn snapshot(extra: &str) -> Snapshot {
        let toml = format!(
            "[providers.a]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nretries = 1\n\
             [routes.r]\ntargets = [\"a/m\"]\n[dispatch]\nbackoff_base = \"100ms\"\n{extra}"
        );
        let config = parse_and_validate(&toml).unwrap();
        let runtime = Runtime::new(&config).unwrap();
        Snapshot::build(config, &Env::default(), &runtime).unwrap()
    }

    fn failure(snap: &Snapshot, t: &Target, kind: ErrorKind, retry_after: Option<u64>) -> ProviderError {
        let mut e = ProviderError::new(kind, "x");
        e.retry_after = retry_after.map(Duration::from_secs);
        let f = crate::health::Failure {
            role: crate::health::Role::Normal,
            error: &e,
            fingerprint: 0,
            timed_out: None,
            deadline_cut: false,
            after_commit: false,
            judged: true,
        };
        t.health.failed(Instant::now(), &snap.config.health, f);
        e
    }

    const LONG: Duration = Duration::from_secs(600);

    #[tokio::test(start_paused = true)]
    async fn only_a_lone_transient_failure_or_a_short_retry_after_is_retried() {
        let snap = snapshot("");
        let policy = Policy { health: &snap.config.health, dispatch: &snap.config.dispatch };
        let plan = snap.routes.plan("r").unwrap();
        let t = &plan.targets[0];
        let e = failure(&snap, t, ErrorKind::Server, None);
        match policy.after_failure(t, &e, 1, LONG) {
            AfterFailure::Retry(w) => {
                assert!(w >= Duration::from_millis(50) && w <= Duration::from_millis(100))
            }
            other => panic!("a lone 500 is retried: {other:?}"),
        }
        assert_eq!(policy.after_failure(t, &e, 2, LONG), AfterFailure::MoveOn, "retries = 1");
        let e = failure(&snap, t, ErrorKind::Server, None);
        assert_eq!(policy.after_failure(t, &e, 1, LONG), AfterFailure::MoveOn, "two in a row: not lone");
        let e = failure(&snap, t, ErrorKind::RateLimited, Some(1));
        assert_eq!(policy.after_failure(t, &e, 1, LONG), AfterFailure::Retry(Duration::from_secs(1)));
        let e = failure(&snap, t, ErrorKind::RateLimited, Some(3));
        assert_eq!(
            policy.after_failure(t, &e, 1, LONG),
            AfterFailure::MoveOn,
            "beyond retry_after_cap (2 s)"
        );
        let e = failure(&snap, t, ErrorKind::RateLimited, Some(1));
        assert_eq!(
            policy.after_failure(t, &e, 1, Duration::from_millis(500)),
            AfterFailure::MoveOn,
            "deadline"
        );
        for kind in [ErrorKind::Timeout, ErrorKind::Connect, ErrorKind::Auth, ErrorKind::BadRequest] {
            let e = ProviderError::new(kind, "x");
            assert_eq!(policy.after_failure(t, &e, 1, LONG), AfterFailure::MoveOn, "{kind:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_retry_budget_moves_on() {
        let snap = snapshot("[health.retry_budget]\nratio = 0.0\nmin_per_second = 1\nttl = \"1s\"");
        let policy = Policy { health: &snap.config.health, dispatch: &snap.config.dispatch };
        let plan = snap.routes.plan("r").unwrap();
        let t = &plan.targets[0];
        let e = ProviderError::new(ErrorKind::Overloaded, "x");
        assert!(matches!(policy.after_failure(t, &e, 1, LONG), AfterFailure::Retry(_)));
        assert_eq!(
            policy.after_failure(t, &e, 1, LONG),
            AfterFailure::MoveOn,
            "the one retry a second is spent"
        );
    }

    #[test]
    fn the_last_resort_is_the_target_soonest_back() {
        let snap = snapshot("");
        let policy = Policy { health: &snap.config.health, dispatch: &snap.config.dispatch };
        let now = Instant::now();
        let later = now + Duration::from_secs(30);
        let soon = now + Duration::from_secs(2);
        let unavailable = [
            (0, Unavailable::Down),
            (1, Unavailable::Open { until: None }),
            (2, Unavailable::Open { until: Some(later) }),
            (3, Unavailable::Cooling { until: soon }),
        ];
        assert_eq!(policy.last_resort(&unavailable), vec![3, 2, 1, 0]);
        assert_eq!(
            policy.last_resort(&unavailable[..2]),
            vec![1, 0],
            "a trial in flight before a refused key"
        );
        assert_eq!(policy.last_resort(&[]), Vec::<usize>::new());
    }
}
