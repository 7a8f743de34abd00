//! Per-minute history of a series (a target's attempts, a route's or the gateway's requests): counts, failures by
//! kind, latency and time-to-first-token percentiles, tokens. The minute in progress is kept in memory, updated
//! under a short lock by the recorder; the status store's writer takes closed minutes (and a copy of the current
//! one) off the hot path and writes them to SQLite.
//!
//! Availability is counted here: for a target, successful attempts over attempts that speak for it (a request the
//! client got wrong is not the provider's failure, an attempt cut by the request's deadline or abandoned in a race
//! is not judged); for a route, successful requests over requests (refused and cancelled requests are the
//! client's doing and are not counted).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::provider::ErrorKind;

/// The wall clock, read through `tokio::time` (so it pauses and advances with the tests' clock): the Unix time at
/// start-up plus the tokio time elapsed since.
#[derive(Clone, Copy, Debug)]
pub struct Wall {
    unix_at_start: Duration,
    start: Instant,
}

impl Wall {
    pub fn new() -> Wall {
        let unix_at_start = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Wall { unix_at_start, start: Instant::now() }
    }

    /// Unix time at `now`.
    pub fn at(&self, now: Instant) -> Duration {
        self.unix_at_start + now.saturating_duration_since(self.start)
    }

    pub fn unix_ms(&self, now: Instant) -> u64 {
        u64::try_from(self.at(now).as_millis()).unwrap_or(u64::MAX)
    }

    pub fn minute(&self, now: Instant) -> u64 {
        self.at(now).as_secs() / 60
    }
}

impl Default for Wall {
    fn default() -> Self {
        Wall::new()
    }
}

/// Buckets of a latency histogram: upper bounds 10 ms × 2^(i/2), to about 6 minutes; the last is unbounded.
const BUCKETS: usize = 32;

/// A small fixed histogram of durations, for percentiles good to a factor of √2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hist([u32; BUCKETS]);

impl Default for Hist {
    fn default() -> Self {
        Hist([0; BUCKETS])
    }
}

fn upper_ms(i: usize) -> u64 {
    // 10 · 2^(i/2): even i exact, odd i × √2 (rounded).
    let base = 10u64 << (i / 2);
    if i.is_multiple_of(2) { base } else { base * 1414 / 1000 }
}

impl Hist {
    pub fn add(&mut self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let i = (0..BUCKETS - 1).find(|&i| ms <= upper_ms(i)).unwrap_or(BUCKETS - 1);
        self.0[i] = self.0[i].saturating_add(1);
    }

    pub fn count(&self) -> u64 {
        self.0.iter().map(|&c| u64::from(c)).sum()
    }

    /// The upper bound (ms) of the bucket holding quantile `q`; `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for (i, &c) in self.0.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(upper_ms(i.min(BUCKETS - 2)));
            }
        }
        None
    }
}

/// One minute of one series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Minute {
    /// Unix minute.
    pub minute: u64,
    /// Attempts (targets) or requests (routes, gateway) counted for availability.
    pub total: u32,
    pub good: u32,
    /// Requests answered after a failure: failed over, retried, or resumed (routes, gateway).
    pub saved: u32,
    /// Failures by [`ErrorKind::index`].
    pub failures: [u32; ErrorKind::ALL.len()],
    pub latency: Hist,
    pub ttft: Hist,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

impl Minute {
    fn new(minute: u64) -> Minute {
        Minute { minute, ..Minute::default() }
    }

    fn is_empty(&self) -> bool {
        self.total == 0 && self.ttft.count() == 0 && self.tokens_in == 0 && self.tokens_out == 0
    }

    /// The failures, by kind label.
    pub fn failures_by_kind(&self) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        ErrorKind::ALL.iter().map(|k| (k.label(), self.failures[k.index()])).filter(|(_, n)| *n > 0)
    }
}

/// Closed minutes kept for the writer at most (two hours: a writer that cannot write loses the oldest, never
/// grows memory).
const MAX_PENDING: usize = 120;

#[derive(Debug, Default)]
struct Live {
    current: Minute,
    /// Closed minutes not yet written.
    closed: Vec<Minute>,
}

/// One series' history in memory: the minute in progress, and closed minutes waiting for the writer.
#[derive(Debug)]
pub struct Series {
    pub name: String,
    live: Mutex<Live>,
}

impl Series {
    pub fn new(name: impl Into<String>) -> Series {
        Series { name: name.into(), live: Mutex::new(Live::default()) }
    }

    /// Update the bucket of `minute`. Time never goes back here: an event that read the clock just before a minute
    /// turned but took the lock after goes to its minute if that is still waiting for the writer, else to the
    /// current one (a row once written is replaced whole, so a late bucket of its own would erase it).
    pub fn add(&self, minute: u64, f: impl FnOnce(&mut Minute)) {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if minute < live.current.minute {
            let live = &mut *live;
            let bucket =
                live.closed.iter_mut().rev().find(|m| m.minute == minute).unwrap_or(&mut live.current);
            f(bucket);
            return;
        }
        if live.current.minute != minute {
            let done = std::mem::replace(&mut live.current, Minute::new(minute));
            if !done.is_empty() {
                if live.closed.len() >= MAX_PENDING {
                    live.closed.remove(0);
                }
                live.closed.push(done);
            }
        }
        f(&mut live.current);
    }

    /// Give back minutes the writer took but could not write (the current one's copy needs nothing: it is copied
    /// again next time). Still bounded by [`MAX_PENDING`], the oldest dropped first.
    pub fn requeue(&self, minutes: Vec<Minute>) {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let current = live.current.minute;
        // A minute closed since it was copied is here already, and fuller than the copy.
        let known: Vec<u64> = live.closed.iter().map(|m| m.minute).collect();
        let mut back: Vec<Minute> =
            minutes.into_iter().filter(|m| m.minute < current && !known.contains(&m.minute)).collect();
        back.append(&mut live.closed);
        back.sort_by_key(|m| m.minute);
        let excess = back.len().saturating_sub(MAX_PENDING);
        back.drain(..excess);
        live.closed = back;
    }

    /// For the writer: the closed minutes (taken) and a copy of the current one.
    pub fn take(&self) -> (Vec<Minute>, Option<Minute>) {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let closed = std::mem::take(&mut live.closed);
        let current = (!live.current.is_empty()).then(|| live.current.clone());
        (closed, current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_bucket_bounds_and_empty_is_none() {
        let mut h = Hist::default();
        assert_eq!(h.quantile_ms(0.5), None);
        for ms in [5, 12, 30, 900] {
            h.add(Duration::from_millis(ms));
        }
        assert_eq!(h.quantile_ms(0.25), Some(10));
        assert_eq!(h.quantile_ms(0.5), Some(14));
        assert_eq!(h.quantile_ms(1.0), Some(904), "640 · √2");
        h.add(Duration::from_secs(100_000));
        assert!(h.quantile_ms(1.0).is_some_and(|ms| ms > 300_000));
    }

    #[test]
    fn a_new_minute_closes_the_last_one_and_the_writer_takes_it_once() {
        let s = Series::new("route:chat");
        s.add(100, |m| m.total += 1);
        s.add(100, |m| m.good += 1);
        s.add(101, |m| m.total += 1);
        let (closed, current) = s.take();
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].minute, closed[0].total, closed[0].good), (100, 1, 1));
        assert_eq!(current.map(|m| (m.minute, m.total)), Some((101, 1)));
        let (closed, current) = s.take();
        assert!(closed.is_empty());
        assert!(current.is_some(), "the current minute is copied every time, taken never");
    }

    #[test]
    fn minutes_that_could_not_be_written_are_taken_again() {
        let s = Series::new("gateway");
        s.add(100, |m| m.total += 1);
        s.add(101, |m| m.total += 1);
        let (closed, current) = s.take();
        s.add(102, |m| m.total += 1);
        s.requeue(closed.into_iter().chain(current).collect());
        let (closed, current) = s.take();
        assert_eq!(closed.iter().map(|m| (m.minute, m.total)).collect::<Vec<_>>(), [(100, 1), (101, 1)]);
        assert_eq!(current.map(|m| m.minute), Some(102));
    }

    #[test]
    fn a_late_event_joins_its_minute_or_the_current_one_never_a_new_bucket() {
        let s = Series::new("gateway");
        s.add(100, |m| m.total += 1000);
        s.add(101, |m| m.total += 1);
        s.add(100, |m| m.total += 1);
        s.add(101, |m| m.total += 1);
        let (closed, current) = s.take();
        assert_eq!(closed.iter().map(|m| (m.minute, m.total)).collect::<Vec<_>>(), [(100, 1001)]);
        assert_eq!(current.map(|m| (m.minute, m.total)), Some((101, 2)));
        // Minute 100 is written: a straggler counts in the current minute instead of replacing that row.
        s.add(100, |m| m.total += 1);
        let (closed, current) = s.take();
        assert!(closed.is_empty());
        assert_eq!(current.map(|m| (m.minute, m.total)), Some((101, 3)));
    }
}
