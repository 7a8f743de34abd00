//! Hedged first tokens: when a route asks for it (`hedge = { after = … }`) and a stream's first token is late, the
//! next admissible target is started too; the first attempt to reach its commit point wins and the other is
//! cancelled (dropping its future closes its upstream connection), with an `Abandoned` event and no verdict on
//! its health. A hedge spends the retry budget; without budget, no hedge.
//!
//! Only a first, normal attempt is hedged (never a breaker trial, which must give its own verdict), and only by a
//! target admitted normally.

use std::time::Duration;

use tokio::time::Instant;

use super::flight::bit;
use super::policy::Policy;
use super::{EventKind, Flight, Limits, Operation, Outcome, Prepared, Served, record_failure};
use crate::config::Hedge;
use crate::health::learnt::LearntConfig;
use crate::health::ratelimit::Need;
use crate::health::{Admit, Role};
use crate::provider::ProviderError;
use crate::route::Target;

/// Where a hedge may come from: the targets after the current one, in the request's order.
pub struct Hedging<'a> {
    pub hedge: Hedge,
    pub rest: &'a [usize],
    /// The plan's targets.
    pub targets: &'a [Target],
    pub need: Need,
    /// Targets started as hedges (a bit each): the engine does not try them again.
    pub started: &'a mut u64,
}

/// How a possibly hedged attempt ended.
pub enum Raced<T> {
    /// The attempt's own result (no hedge started, or the hedge failed or lost).
    Alone(Result<T, ProviderError>),
    /// The hedge won: it is served (its events are on the flight).
    Won(Served<T>),
}

/// How long to wait for `target`'s first token before hedging.
pub fn delay(hedge: Hedge, target: &Target, min_samples: u32) -> Duration {
    match hedge {
        Hedge::After(d) => d,
        Hedge::Learnt { quantile, floor } => {
            target.health.ttft_quantile(quantile, min_samples).map_or(floor, |q| q.max(floor))
        }
    }
}

/// The first attempt `(i, target, prepared)`, raced against a hedge once its first token is `delay` late.
#[allow(clippy::too_many_arguments)]
pub async fn race<O: Operation>(
    op: &O,
    flight: &mut Flight,
    policy: &Policy<'_>,
    first: (usize, &Target, &Prepared),
    limits: Limits,
    began: Instant,
    hedging: Hedging<'_>,
) -> Raced<O::Output> {
    let (i, target, prepared) = first;
    let learnt = policy.health.time_limits.as_ref();
    let min_samples = learnt.map_or(LearntConfig::default().min_samples, |t| t.min_samples);
    let delay = delay(hedging.hedge, target, min_samples);
    let a = op.attempt(target, prepared, limits);
    tokio::pin!(a);
    tokio::select! {
        r = &mut a => return Raced::Alone(r),
        () = tokio::time::sleep(delay) => {}
    }
    let Some((j, other, other_prepared)) = pick(op, flight, policy, &hedging) else {
        return Raced::Alone(a.await);
    };
    // A hedge never waits for room: a target at its limit is not raced.
    let Some(permit) = other.health.gate.try_enter(super::cap(other)) else {
        return Raced::Alone(a.await);
    };
    if !other.health.withdraw() {
        drop(permit);
        return Raced::Alone(a.await);
    }
    *hedging.started |= bit(j);
    flight.emit(EventKind::Hedged { target: i, to: j, after: delay });
    flight.emit(EventKind::Started { target: j, attempt: 1, role: Role::Normal });
    let mut in_flight = other.health.fly();
    in_flight.1 = Some(permit);
    let b_began = Instant::now();
    let b_limits = policy.limits(other, flight.stream, flight.deadline);
    let first_token = b_limits.first_token;
    let kept = (other_prepared.dropped.clone(), other_prepared.continuation);
    let b = op.attempt(other, &other_prepared, b_limits);
    tokio::pin!(b);
    tokio::select! {
        r = &mut a => match r {
            Ok(answer) => {
                // `b` is dropped when this returns: its connection closes.
                drop(in_flight);
                flight.emit(EventKind::Abandoned { target: j, elapsed: b_began.elapsed(), slow: false });
                Raced::Alone(Ok(answer))
            }
            Err(mut error) => {
                // The first failed; the hedge is now the attempt. The first's failure is reported by the caller,
                // after the hedge's outcome is known, as if it had come alone.
                match b.await {
                    Ok(answer) => {
                        record_failure(flight, target, i, Role::Normal, &mut error, began, limits.first_token);
                        Raced::Won(commit(flight, other, j, answer, b_began, in_flight, kept))
                    }
                    Err(mut b_error) => {
                        drop(in_flight);
                        record_failure(flight, other, j, Role::Normal, &mut b_error, b_began, first_token);
                        Raced::Alone(Err(error))
                    }
                }
            }
        },
        r = &mut b => match r {
            Ok(answer) => {
                // `a` is dropped when this returns: its connection closes.
                flight.emit(EventKind::Abandoned { target: i, elapsed: began.elapsed(), slow: true });
                Raced::Won(commit(flight, other, j, answer, b_began, in_flight, kept))
            }
            Err(mut b_error) => {
                drop(in_flight);
                record_failure(flight, other, j, Role::Normal, &mut b_error, b_began, first_token);
                Raced::Alone(a.await)
            }
        },
    }
}

/// The hedge reached its commit point: it is served.
fn commit<T: Outcome>(
    flight: &mut Flight,
    target: &Target,
    j: usize,
    mut answer: T,
    began: Instant,
    in_flight: crate::health::InFlight,
    (dropped, continuation): (Vec<String>, Option<nines_wire::resume::Form>),
) -> Served<T> {
    let limits = answer.limits();
    let elapsed = began.elapsed();
    flight.emit(EventKind::Committed { target: j, role: Role::Normal, elapsed, limits });
    if answer.complete() {
        let tokens = answer.tokens();
        flight.emit(EventKind::Succeeded { target: j, role: Role::Normal, elapsed, max_gap: None, tokens });
    }
    Served { answer, target: target.clone(), index: j, dropped, in_flight, continuation }
}

/// The next target that may be started as a hedge now: admitted normally (a breaker trial is never spent on a
/// hedge), not excluded, and able to carry the request.
fn pick<'p, O: Operation>(
    op: &O,
    flight: &Flight,
    policy: &Policy<'_>,
    hedging: &Hedging<'p>,
) -> Option<(usize, &'p Target, Prepared)> {
    for &j in hedging.rest {
        let Some(t) = hedging.targets.get(j) else { continue };
        if flight.excluded(j) || *hedging.started & bit(j) != 0 || t.provider.unusable.is_some() {
            continue;
        }
        match policy.admit(t, hedging.need) {
            Admit::Go { role: Role::Normal } | Admit::Defer => {}
            Admit::Go { role: Role::Trial(e) } => {
                t.health.release_trial(e);
                continue;
            }
            Admit::Skip(_) => continue,
        }
        if let Ok(p) = op.prepare(t) {
            return Some((j, t, p));
        }
    }
    None
}
