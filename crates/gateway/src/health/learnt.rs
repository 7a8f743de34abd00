//! Time limits learnt per target, and a peak-sensitive latency score.
//!
//! [`LearntLimit`] keeps the last 128 samples of a target's time to first token (or of a stream's
//! largest gap) and turns a high quantile of them into a time limit: `quantile × multiplier`,
//! clamped between a floor and the configured cap. Timeouts are recorded as (censored) samples at
//! the limit that was hit, so a provider whose new normal is slower gets re-learnt instead of being
//! timed out forever. [`PeakEwma`] is the latency score of the "latency" routing strategy, as in
//! Finagle's and linkerd's peak EWMA: it jumps up at once and decays down with time.
//!
//! What it never does: I/O, logging, async, reading the clock (callers pass `now`), allocating
//! after construction, or panicking. `limit` and `quantile` are O(1); `observe` keeps the sorted
//! copy sorted by moving at most the samples between the old and the new value's places (a full
//! sort of 128 samples on every response was 1.5% of a streamed answer's instructions).

use std::time::Duration;

use tokio::time::Instant;

/// How many samples a [`LearntLimit`] keeps.
const CAPACITY: usize = 128;

/// How a limit is learnt from samples.
#[derive(Debug, Clone, PartialEq)]
pub struct LearntConfig {
    /// The quantile of the samples (nearest rank) that the limit is built on.
    pub quantile: f64,
    /// The limit is that quantile times this.
    pub multiplier: f64,
    /// The limit is never below this (unless the cap is).
    pub floor: Duration,
    /// Below this many samples the configured cap is the limit (at most 128 are ever kept).
    pub min_samples: u32,
}

impl Default for LearntConfig {
    fn default() -> Self {
        Self { quantile: 0.99, multiplier: 3.0, floor: Duration::from_secs(2), min_samples: 10 }
    }
}

/// A time limit learnt from the last 128 samples of one target, in whole milliseconds.
#[derive(Debug, Clone)]
pub struct LearntLimit {
    /// The samples in arrival order; the oldest is overwritten first once full.
    ring: [u32; CAPACITY],
    /// The same samples, sorted, so any quantile is one lookup.
    sorted: [u32; CAPACITY],
    /// How many samples are held (≤ CAPACITY).
    len: usize,
    /// Where the next sample goes once the ring is full.
    next: usize,
}

impl Default for LearntLimit {
    fn default() -> Self {
        Self::new()
    }
}

impl LearntLimit {
    /// No samples yet: the limit is the cap.
    pub fn new() -> Self {
        Self { ring: [0; CAPACITY], sorted: [0; CAPACITY], len: 0, next: 0 }
    }

    /// Record a sample: a time to first token, or a stream's largest gap between chunks.
    /// Stored in whole milliseconds (saturating at about 49 days).
    pub fn observe(&mut self, sample: Duration) {
        let millis = u32::try_from(sample.as_millis()).unwrap_or(u32::MAX);
        let held = if self.len < CAPACITY {
            let Some(cell) = self.ring.get_mut(self.len) else { return };
            *cell = millis;
            self.len += 1;
            self.len - 1
        } else {
            let Some(cell) = self.ring.get_mut(self.next) else { return };
            let old = std::mem::replace(cell, millis);
            self.next = (self.next + 1) % CAPACITY;
            // The oldest sample leaves the sorted copy: its place moves to the end.
            let at = self.sorted.partition_point(|&x| x < old);
            if let Some(tail) = self.sorted.get_mut(at..)
                && !tail.is_empty()
            {
                tail.rotate_left(1);
            }
            CAPACITY - 1
        };
        // The new sample goes in its place among the `held` sorted ones (the free slot is at `held`).
        let Some(sorted) = self.sorted.get_mut(..=held) else { return };
        let at = sorted.get(..held).map_or(0, |s| s.partition_point(|&x| x <= millis));
        if let Some(tail) = sorted.get_mut(at..) {
            tail.rotate_right(1);
            if let Some(first) = tail.first_mut() {
                *first = millis;
            }
        }
    }

    /// Record an attempt that hit `limit` as a (censored) sample of `limit`. Repeated timeouts
    /// thus raise the limit: two of them among up to 128 samples make the p99 reach `limit`.
    pub fn observe_timeout(&mut self, limit: Duration) {
        self.observe(limit);
    }

    /// The time limit for the next attempt: `cap` while there are fewer than `min_samples`
    /// samples, else `quantile × multiplier` clamped to `floor..=cap` (`cap` wins over `floor`).
    pub fn limit(&self, cfg: &LearntConfig, cap: Duration) -> Duration {
        let needed = usize::try_from(cfg.min_samples).unwrap_or(usize::MAX).min(CAPACITY);
        if self.len < needed {
            return cap;
        }
        let Some(q) = self.quantile(cfg.quantile) else { return cap };
        let scaled = q.as_secs_f64() * cfg.multiplier;
        let raw = match Duration::try_from_secs_f64(scaled) {
            Ok(d) => d,
            Err(_) if scaled > 0.0 => cap,
            Err(_) => Duration::ZERO,
        };
        raw.max(cfg.floor).min(cap)
    }

    /// The nearest-rank `q`-quantile of the samples (`q` clamped to 0..=1; NaN counts as 1), or
    /// `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.len == 0 {
            return None;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        // The epsilon keeps e.g. 0.99 × 100 at rank 99 despite rounding.
        let rank = ((q * self.len as f64 - 1e-9).ceil() as usize).clamp(1, self.len);
        self.sorted.get(rank - 1).map(|&millis| Duration::from_millis(u64::from(millis)))
    }

    /// How many samples are held (at most 128).
    pub fn samples(&self) -> u32 {
        self.len as u32
    }
}

/// A peak-sensitive exponentially weighted moving average of latency.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeakEwma {
    /// (value in seconds, time of the last update); `None` before the first sample.
    state: Option<(f64, Instant)>,
}

impl PeakEwma {
    /// No data yet.
    pub fn new() -> Self {
        Self { state: None }
    }

    /// Fold in a sample taken at `now`. A sample above the current value replaces it at once;
    /// one below is blended in with weight `1 - exp(-elapsed / decay)`, so the value decays toward
    /// fast samples over time, not over the number of samples. A zero `decay` takes every sample.
    pub fn observe(&mut self, now: Instant, sample: Duration, decay: Duration) {
        let sample = sample.as_secs_f64();
        let value = match self.state {
            None => sample,
            Some((value, _)) if sample >= value => sample,
            Some((value, last)) => {
                let weight = if decay.is_zero() {
                    1.0
                } else {
                    let elapsed = now.saturating_duration_since(last).as_secs_f64();
                    1.0 - (-elapsed / decay.as_secs_f64()).exp()
                };
                value + weight * (sample - value)
            }
        };
        let last = match self.state {
            Some((_, last)) if last > now => last,
            _ => now,
        };
        self.state = Some((value, last));
    }

    /// The current value, or `None` before the first sample.
    pub fn get(&self) -> Option<Duration> {
        self.state.and_then(|(value, _)| Duration::try_from_secs_f64(value).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The sorted copy kept by moving samples is the last 128 samples sorted, whatever comes.
        #[test]
        fn the_sorted_copy_is_the_window_sorted(samples in proptest::collection::vec(0u64..400, 0..400)) {
            let mut l = LearntLimit::new();
            for (i, &ms) in samples.iter().enumerate() {
                l.observe(Duration::from_millis(ms));
                let from = (i + 1).saturating_sub(CAPACITY);
                let mut want: Vec<u32> = samples[from..=i].iter().map(|&m| m as u32).collect();
                want.sort_unstable();
                prop_assert_eq!(&l.sorted[..l.len], &want[..]);
            }
        }
    }

    const MS: Duration = Duration::from_millis(1);
    const S: Duration = Duration::from_secs(1);

    fn learnt(samples: impl IntoIterator<Item = Duration>) -> LearntLimit {
        let mut l = LearntLimit::new();
        for s in samples {
            l.observe(s);
        }
        l
    }

    /// 100 samples between 250 and 349 ms.
    fn fast() -> impl Iterator<Item = Duration> + Clone {
        (0..100).map(|i| (250 + (i * 37) % 100) * MS)
    }

    #[test]
    fn fewer_than_min_samples_the_cap_is_the_limit() {
        let cfg = LearntConfig::default();
        let l = learnt((0..9).map(|_| 300 * MS));
        assert_eq!(l.samples(), 9);
        assert_eq!(l.limit(&cfg, 60 * S), 60 * S);
        assert_eq!(LearntLimit::new().limit(&cfg, 60 * S), 60 * S);
        assert_eq!(learnt((0..10).map(|_| 300 * MS)).limit(&cfg, 60 * S), 2 * S);
    }

    #[test]
    fn fast_samples_give_the_floor() {
        let l = learnt(fast());
        assert_eq!(l.samples(), 100);
        assert_eq!(l.quantile(0.99), Some(348 * MS));
        assert_eq!(l.limit(&LearntConfig::default(), 60 * S), 2 * S);
    }

    #[test]
    fn a_mid_range_quantile_is_scaled_by_the_multiplier() {
        let l = learnt((0..50).map(|_| 1500 * MS));
        assert_eq!(l.limit(&LearntConfig::default(), 60 * S), 4500 * MS);
    }

    #[test]
    fn a_slow_model_keeps_its_time_up_to_the_cap() {
        let l = learnt((0..100).map(|_| 40 * S));
        assert_eq!(l.limit(&LearntConfig::default(), 60 * S), 60 * S);
    }

    #[test]
    fn a_floor_above_the_cap_loses_to_the_cap() {
        let cfg = LearntConfig { floor: 10 * S, ..LearntConfig::default() };
        let l = learnt(fast());
        assert_eq!(l.limit(&cfg, 5 * S), 5 * S);
    }

    #[test]
    fn the_ring_forgets_samples_older_than_the_last_128() {
        let mut l = learnt((0..128).map(|_| 40 * S));
        assert_eq!(l.limit(&LearntConfig::default(), 60 * S), 60 * S);
        for _ in 0..127 {
            l.observe(300 * MS);
        }
        assert_eq!(l.quantile(1.0), Some(40 * S));
        l.observe(300 * MS);
        assert_eq!(l.samples(), 128);
        assert_eq!(l.quantile(1.0), Some(300 * MS));
        assert_eq!(l.limit(&LearntConfig::default(), 60 * S), 2 * S);
    }

    #[test]
    fn two_timeouts_after_fast_samples_raise_the_limit_to_three_times_the_timeout() {
        let cfg = LearntConfig::default();
        for fast_samples in [100, 128, 200] {
            let mut l = learnt(fast().cycle().take(fast_samples));
            assert_eq!(l.limit(&cfg, 60 * S), 2 * S);
            l.observe_timeout(2 * S);
            assert_eq!(l.limit(&cfg, 60 * S), 2 * S, "a lone timeout is an outlier ({fast_samples})");
            l.observe_timeout(2 * S);
            assert_eq!(l.limit(&cfg, 60 * S), 6 * S, "after {fast_samples} fast samples");
        }
    }

    #[test]
    fn repeated_timeouts_keep_raising_the_limit_to_the_cap() {
        let cfg = LearntConfig::default();
        let mut l = learnt(fast());
        let mut limit = l.limit(&cfg, 60 * S);
        for _ in 0..20 {
            l.observe_timeout(limit);
            l.observe_timeout(limit);
            limit = l.limit(&cfg, 60 * S);
        }
        assert_eq!(limit, 60 * S);
    }

    #[test]
    fn the_quantile_is_nearest_rank() {
        assert_eq!(LearntLimit::new().quantile(0.5), None);
        let l = learnt((1..=10).map(|i| i * MS));
        assert_eq!(l.quantile(0.0), Some(MS));
        assert_eq!(l.quantile(0.1), Some(MS));
        assert_eq!(l.quantile(0.5), Some(5 * MS));
        assert_eq!(l.quantile(0.9), Some(9 * MS));
        assert_eq!(l.quantile(0.91), Some(10 * MS));
        assert_eq!(l.quantile(1.0), Some(10 * MS));
        assert_eq!(l.quantile(7.0), Some(10 * MS));
        assert_eq!(l.quantile(f64::NAN), Some(10 * MS));
    }

    #[test]
    fn samples_are_whole_milliseconds_and_saturate() {
        let l = learnt([Duration::from_micros(1999), Duration::MAX]);
        assert_eq!(l.quantile(0.0), Some(MS));
        assert_eq!(l.quantile(1.0), Some(Duration::from_millis(u64::from(u32::MAX))));
    }

    #[test]
    fn odd_multipliers_do_not_panic() {
        let l = learnt((0..10).map(|_| S));
        for multiplier in [f64::NAN, -1.0, f64::INFINITY, 1e300] {
            let cfg = LearntConfig { multiplier, ..LearntConfig::default() };
            let limit = l.limit(&cfg, 60 * S);
            assert!(limit >= 2 * S && limit <= 60 * S, "{multiplier}: {limit:?}");
        }
    }

    #[test]
    fn min_samples_above_the_ring_size_still_learns() {
        let cfg = LearntConfig { min_samples: 1000, ..LearntConfig::default() };
        assert_eq!(learnt((0..128).map(|_| 300 * MS)).limit(&cfg, 60 * S), 2 * S);
    }

    #[test]
    fn peak_ewma_has_no_value_before_the_first_sample() {
        let mut e = PeakEwma::new();
        assert_eq!(e.get(), None);
        e.observe(Instant::now(), 300 * MS, 10 * S);
        assert_eq!(e.get(), Some(300 * MS));
    }

    #[test]
    fn peak_ewma_jumps_up_at_once_on_a_slow_sample() {
        let (t, decay) = (Instant::now(), 10 * S);
        let mut e = PeakEwma::new();
        e.observe(t, 100 * MS, decay);
        e.observe(t, 5 * S, decay);
        assert_eq!(e.get(), Some(5 * S));
    }

    #[test]
    fn peak_ewma_decays_toward_fast_samples_over_time() {
        let (t, decay) = (Instant::now(), 10 * S);
        let mut e = PeakEwma::new();
        e.observe(t, 5 * S, decay);
        // No time has passed: a fast sample does not pull it down.
        e.observe(t, 100 * MS, decay);
        assert_eq!(e.get(), Some(5 * S));
        // One decay later it has moved 1 - 1/e of the way.
        e.observe(t + 10 * S, 100 * MS, decay);
        let expected = 5.0 - (1.0 - (-1.0f64).exp()) * 4.9;
        let got = e.get().map(|d| d.as_secs_f64()).unwrap_or(f64::NAN);
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
        for i in 2..=10 {
            e.observe(t + i * 10 * S, 100 * MS, decay);
        }
        let got = e.get().map(|d| d.as_secs_f64()).unwrap_or(f64::NAN);
        assert!(got > 0.1 && got < 0.101, "{got}");
    }

    #[tokio::test(start_paused = true)]
    async fn peak_ewma_follows_the_paused_tokio_clock() {
        let decay = 10 * S;
        let mut e = PeakEwma::new();
        e.observe(Instant::now(), 2 * S, decay);
        tokio::time::advance(60 * S).await;
        e.observe(Instant::now(), 200 * MS, decay);
        let got = e.get().map(|d| d.as_secs_f64()).unwrap_or(f64::NAN);
        assert!(got > 0.2 && got < 0.21, "{got}");
    }

    #[test]
    fn a_learnt_limit_is_about_a_kilobyte() {
        assert!(std::mem::size_of::<LearntLimit>() <= 1040 + 16);
    }
}
