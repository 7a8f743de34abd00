//! A target's concurrency gate: how many requests nines lets it serve at once, learnt from how it copes (AIMD, in
//! the manner of Netflix's concurrency-limits `AIMDLimit` and TCP's congestion window), and the queue of requests
//! waiting for room, ordered by priority and then deadline.
//!
//! - The limit starts at the provider's declared `max_concurrency` (or [`UNDECLARED`]) and never exceeds it. An
//!   overload (429, 529/503, a timeout before the first token) cuts it to `DECREASE` of what was in flight then, at
//!   most once per [`QUIET`] (one overload event, many failures); each success while the gate is nearly full adds
//!   `1/limit`, so it probes back up by about one request per round.
//! - A request finds room or waits, up to its priority's longest wait (batch: not at all, by default) and never
//!   past its deadline. When the queue is full a newcomer of higher priority takes the place of the lowest waiting;
//!   the lowest priority is always shed first. A permit freed goes to the best waiter.
//!
//! State lives in the target's health: outside the configuration snapshot, kept by a reload.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::config::protect::Priority;

/// The ceiling of a target whose provider declares none.
pub const UNDECLARED: u32 = 1000;
const DECREASE: f64 = 0.9;
/// The least time between two decreases: one overload event, however many requests it fails.
const QUIET: Duration = Duration::from_millis(250);
/// Waiters per unit of limit (and at least [`MIN_QUEUE`]).
const QUEUE_PER_LIMIT: usize = 4;
const MIN_QUEUE: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

type Key = (Priority, Instant, u64);

#[derive(Debug)]
struct State {
    /// The learnt limit (fractional: increases are `1/limit`); `None` until first used.
    limit: Option<f64>,
    waiters: BTreeMap<Key, oneshot::Sender<Permit>>,
    seq: u64,
    last_decrease: Option<Instant>,
    /// The provider's declared ceiling, as last seen.
    cap: u32,
}

/// The common case takes no lock: requests in flight, the whole part of the limit and the number waiting are
/// atomics; the queue and the learnt fraction sit behind the mutex. Every hand-over to a waiter happens under the
/// mutex, and both sides re-check after their change (sequentially consistent), so no room is left unused while
/// someone waits.
#[derive(Debug)]
pub struct Gate {
    in_flight: AtomicU32,
    /// `floor(limit)`, at least 1; 0 until first used (then the cap).
    limit: AtomicU32,
    waiting: AtomicU32,
    state: Mutex<State>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            in_flight: AtomicU32::new(0),
            limit: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
            state: Mutex::new(State {
                limit: None,
                waiters: BTreeMap::new(),
                seq: 0,
                last_decrease: None,
                cap: UNDECLARED,
            }),
        }
    }
}

/// Room at a target, held until dropped (then given to the best waiter). A permit handed to a waiter travels in
/// its channel: if the waiter is gone by then, or goes before reading it, dropping it gives the room back.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<Gate>,
    /// False for a permit that must not release on drop (one refused by a waiter already gone, released by hand
    /// under the lock).
    armed: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.armed {
            self.gate.release();
        }
    }
}

/// A request's place in a gate's queue, left when dropped (if it is still there).
struct Place<'a> {
    gate: &'a Arc<Gate>,
    key: Key,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut s = lock(&self.gate.state);
        if s.waiters.remove(&self.key).is_some() {
            self.gate.waiting.fetch_sub(1, SeqCst);
        }
    }
}

/// No room in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl Gate {
    /// The whole limit under `cap`, set from the learnt one (under the lock).
    fn set_limit(&self, s: &mut State, cap: u32) -> u32 {
        s.cap = cap.max(1);
        let l = s.limit.get_or_insert(f64::from(s.cap)).min(f64::from(s.cap));
        s.limit = Some(l);
        let whole = (l.floor() as u32).max(1);
        self.limit.store(whole, SeqCst);
        whole
    }

    /// The whole limit for `cap`, without the lock when nothing changed.
    fn current(&self, cap: u32) -> u32 {
        let l = self.limit.load(SeqCst);
        if l != 0 && l <= cap {
            return l;
        }
        let mut s = lock(&self.state);
        self.set_limit(&mut s, cap)
    }

    /// The current limit (under `cap`).
    pub fn limit(&self, cap: u32) -> u32 {
        let mut s = lock(&self.state);
        self.set_limit(&mut s, cap)
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(SeqCst)
    }

    /// Room now, or none (hedges and probes do not queue).
    pub fn try_enter(self: &Arc<Self>, cap: u32) -> Option<Permit> {
        let limit = self.current(cap);
        if self.waiting.load(SeqCst) != 0 {
            return None;
        }
        if self.in_flight.fetch_add(1, SeqCst) < limit {
            return Some(Permit { gate: self.clone(), armed: true });
        }
        self.release();
        None
    }

    /// Give room to the best waiters while there is some (under the lock).
    fn hand_over(self: &Arc<Self>, s: &mut State) {
        loop {
            let limit = self.limit.load(SeqCst).max(1);
            if self.in_flight.load(SeqCst) >= limit {
                return;
            }
            let Some((_, tx)) = s.waiters.pop_first() else { return };
            self.waiting.fetch_sub(1, SeqCst);
            self.in_flight.fetch_add(1, SeqCst);
            // A waiter that gave up has dropped its receiver: its room goes back, here (releasing through the permit
            // would take the lock we hold).
            if let Err(mut p) = tx.send(Permit { gate: self.clone(), armed: true }) {
                p.armed = false;
                self.in_flight.fetch_sub(1, SeqCst);
            }
        }
    }

    /// Room for a request of `priority`, waiting at most `wait` (and never past `deadline`) behind the requests
    /// that matter more or are due sooner.
    pub async fn enter(
        self: &Arc<Self>,
        cap: u32,
        priority: Priority,
        wait: Duration,
        deadline: Instant,
    ) -> Result<Permit, Full> {
        if let Some(p) = self.try_enter(cap) {
            return Ok(p);
        }
        let now = Instant::now();
        let until = (now + wait).min(deadline);
        if until <= now {
            return Err(Full);
        }
        let (mut rx, key) = {
            let mut s = lock(&self.state);
            let limit = self.set_limit(&mut s, cap);
            let max_queue = (limit as usize * QUEUE_PER_LIMIT).max(MIN_QUEUE);
            s.seq += 1;
            let key = (priority, deadline, s.seq);
            if s.waiters.len() >= max_queue {
                // Full: the lowest waiting goes (its sender dropped: it hears `Full`), if this one matters more.
                match s.waiters.last_key_value() {
                    Some((worst, _)) if *worst > key => {
                        let worst = *worst;
                        s.waiters.remove(&worst);
                        self.waiting.fetch_sub(1, SeqCst);
                    }
                    _ => return Err(Full),
                }
            }
            let (tx, rx) = oneshot::channel();
            s.waiters.insert(key, tx);
            self.waiting.fetch_add(1, SeqCst);
            // Room freed since the fast path looked: given now, to the best (maybe this one).
            self.hand_over(&mut s);
            (rx, key)
        };
        // However this wait ends (given room, timed out, or the request dropped mid-wait), its place in the queue
        // goes with it.
        let _place = Place { gate: self, key };
        match tokio::time::timeout_at(until, &mut rx).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(Full),
            // Handed room just as the wait ended: it is ours (else the place is left by `_place`).
            Err(_) => rx.try_recv().map_err(|_| Full),
        }
    }

    fn release(self: &Arc<Self>) {
        self.in_flight.fetch_sub(1, SeqCst);
        if self.waiting.load(SeqCst) != 0 {
            let mut s = lock(&self.state);
            self.hand_over(&mut s);
        }
    }

    /// A success: grow by `1/limit` while the gate is nearly full (a limit not reached proves nothing).
    pub fn succeeded(self: &Arc<Self>) {
        let limit = self.limit.load(SeqCst);
        if limit == 0 || self.in_flight.load(SeqCst) + 1 < limit.saturating_sub(limit / 10) {
            return;
        }
        let mut s = lock(&self.state);
        let cap = s.cap;
        if let Some(l) = s.limit.as_mut() {
            *l = (*l + 1.0 / *l).min(f64::from(cap));
        }
        self.set_limit(&mut s, cap);
        self.hand_over(&mut s);
    }

    /// An overload: down to [`DECREASE`] of what is in flight, once per [`QUIET`].
    pub fn overloaded(&self, now: Instant) {
        let mut s = lock(&self.state);
        if s.last_decrease.is_some_and(|t| now.saturating_duration_since(t) < QUIET) {
            return;
        }
        s.last_decrease = Some(now);
        let cap = s.cap;
        let limit = f64::from(self.set_limit(&mut s, cap));
        let basis = limit.min(f64::from(self.in_flight.load(SeqCst).max(1)));
        s.limit = Some((basis * DECREASE).max(1.0));
        self.set_limit(&mut s, cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    #[allow(clippy::disallowed_methods)] // tasks of the test's own runtime
    async fn room_then_a_queue_by_priority_then_shedding() {
        let g = Arc::new(Gate::default());
        let far = Instant::now() + Duration::from_secs(60);
        let a = g.enter(2, Priority::Default, Duration::ZERO, far).await.unwrap();
        let _b = g.enter(2, Priority::Default, Duration::ZERO, far).await.unwrap();
        // Full: batch does not wait.
        assert_eq!(g.enter(2, Priority::Batch, Duration::ZERO, far).await.unwrap_err(), Full);
        // Two wait; the interactive one, though later, gets the room first.
        let g1 = g.clone();
        let low =
            tokio::spawn(async move { g1.enter(2, Priority::Default, Duration::from_secs(5), far).await });
        tokio::task::yield_now().await;
        let g2 = g.clone();
        let high =
            tokio::spawn(
                async move { g2.enter(2, Priority::Interactive, Duration::from_secs(5), far).await },
            );
        tokio::task::yield_now().await;
        drop(a);
        let high = high.await.unwrap().unwrap();
        assert!(!low.is_finished());
        drop(high);
        assert!(low.await.unwrap().is_ok());
        assert_eq!(g.in_flight(), 1, "b, and low's permit dropped with it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_dropped_while_waiting_leaves_no_trace() {
        let g = Arc::new(Gate::default());
        let far = Instant::now() + Duration::from_secs(60);
        let a = g.enter(1, Priority::Default, Duration::ZERO, far).await.unwrap();
        // Dropped mid-wait: its place goes, and room is not kept from others.
        {
            let wait = g.enter(1, Priority::Default, Duration::from_secs(5), far);
            tokio::pin!(wait);
            assert!(futures_util::poll!(wait.as_mut()).is_pending());
            assert_eq!(g.waiting.load(SeqCst), 1);
        }
        assert_eq!(g.waiting.load(SeqCst), 0);
        // Handed room, then dropped before reading it: the room comes back.
        {
            let wait = g.enter(1, Priority::Default, Duration::from_secs(5), far);
            tokio::pin!(wait);
            assert!(futures_util::poll!(wait.as_mut()).is_pending());
            drop(a);
            assert_eq!(g.in_flight(), 1, "handed over");
        }
        assert_eq!(g.in_flight(), 0, "given back when the waiter went");
        assert!(g.try_enter(1).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_at_its_bound_or_its_deadline() {
        let g = Arc::new(Gate::default());
        let far = Instant::now() + Duration::from_secs(60);
        let _a = g.enter(1, Priority::Default, Duration::ZERO, far).await.unwrap();
        let t0 = Instant::now();
        assert!(g.enter(1, Priority::Default, Duration::from_secs(2), far).await.is_err());
        assert_eq!(t0.elapsed(), Duration::from_secs(2));
        let soon = Instant::now() + Duration::from_millis(300);
        assert!(g.enter(1, Priority::Interactive, Duration::from_secs(10), soon).await.is_err());
        assert_eq!(t0.elapsed(), Duration::from_millis(2300));
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_falls_on_overload_and_climbs_back_while_used() {
        let g = Arc::new(Gate::default());
        let far = Instant::now() + Duration::from_secs(60);
        let mut held = Vec::new();
        for _ in 0..20 {
            held.push(g.enter(100, Priority::Default, Duration::ZERO, far).await.unwrap());
        }
        g.overloaded(Instant::now());
        assert_eq!(g.limit(100), 18, "90% of the 20 in flight");
        g.overloaded(Instant::now());
        assert_eq!(g.limit(100), 18, "one overload event");
        held.truncate(18);
        // About one more per limit's worth of successes.
        for _ in 0..20 {
            g.succeeded();
        }
        assert_eq!(g.limit(100), 19);
        // The declared cap is never passed.
        assert_eq!(g.limit(10), 10);
    }
}
