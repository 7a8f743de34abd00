//! Ordering a route's balanced pool of targets for one request.
//!
//! [`order`] turns what is known of each candidate (weight, latency, requests in flight) into a permutation: the
//! first is the target to try, the rest the order to fail over in. Health filtering is the caller's, afterwards.
//!
//! It never allocates beyond the `out` vector it is given (pools are small, so the sorts are O(n²) in place),
//! never reads the clock or does I/O, and draws randomness only from the rng it is passed.

use std::time::Duration;

use rand::Rng;

pub use crate::config::Strategy;

/// What the strategy knows of one candidate (index into the pool).
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub index: usize,
    pub weight: u32,
    /// Peak-EWMA of time to first token; `None` before the first measurement.
    pub latency: Option<Duration>,
    pub in_flight: u32,
}

/// Under [`Strategy::Latency`], how often the first is picked uniformly at random instead, so that a target
/// which was slow once is measured again.
const EXPLORE: f64 = 0.05;

/// The pool's order for one request: a permutation of the candidates' indices. The first is the chosen target;
/// the rest are the order to fail over in. `out` is cleared first.
///
/// - `Priority`: as given.
/// - `Weighted`: the first drawn with probability weight / sum, the rest drawn the same way without replacement;
///   weight-0 candidates come after all positive ones, in the given order.
/// - `Latency`: power of two choices. Two distinct candidates drawn at random, the lower score first, where
///   score = latency × (in_flight + 1), a candidate without latency data taking the fastest known latency;
///   equal scores go to the fewer in flight. With probability 0.05 the first is drawn uniformly instead. The
///   rest by score ascending (then in flight, then given order).
/// - `LeastBusy`: fewest in flight first, ties broken at random; the rest by in flight ascending (then given
///   order).
pub fn order(strategy: Strategy, pool: &[Candidate], rng: &mut impl Rng, out: &mut Vec<usize>) {
    // Work on positions into `pool`, then map them to the candidates' indices.
    out.clear();
    out.extend(0..pool.len());
    let weight = |position: usize| pool.get(position).map_or(0, |c| u64::from(c.weight));
    let in_flight = |position: usize| pool.get(position).map_or(0, |c| c.in_flight);
    // A candidate without data is taken to be as fast as the fastest known one: explored, but not flooded while
    // its first answer is pending.
    let fastest = pool.iter().filter_map(|c| c.latency).min().unwrap_or(Duration::ZERO);
    let score =
        |position: usize| pool.get(position).map_or((0, 0), |c| (latency_score(c, fastest), c.in_flight));
    match strategy {
        Strategy::Priority => {}
        Strategy::Weighted => weighted(out, weight, rng),
        Strategy::Latency => {
            if let Some(first) = latency_first(out, score, rng) {
                move_to_front(out, first);
            }
            if let Some(rest) = out.get_mut(1..) {
                selection_sort_by_key(rest, score);
            }
        }
        Strategy::LeastBusy => {
            if let Some(first) = least_busy_first(out, in_flight, rng) {
                move_to_front(out, first);
            }
            if let Some(rest) = out.get_mut(1..) {
                selection_sort_by_key(rest, in_flight);
            }
        }
    }
    for slot in out.iter_mut() {
        if let Some(candidate) = pool.get(*slot) {
            *slot = candidate.index;
        }
    }
}

/// latency × (in_flight + 1) in nanoseconds; without data, `unknown` stands for the latency.
fn latency_score(candidate: &Candidate, unknown: Duration) -> u128 {
    candidate.latency.unwrap_or(unknown).as_nanos().saturating_mul(u128::from(candidate.in_flight) + 1)
}

/// Move the element at `at` to the front, keeping the others in their order.
fn move_to_front(slice: &mut [usize], at: usize) {
    if let Some(head) = slice.get_mut(..=at) {
        head.rotate_right(1);
    }
}

/// Stable in-place sort by key: repeatedly move the first smallest of the unsorted tail to its front.
fn selection_sort_by_key<K: Ord>(slice: &mut [usize], key: impl Fn(usize) -> K) {
    for start in 0..slice.len() {
        let Some(tail) = slice.get_mut(start..) else { return };
        let mut best: Option<(usize, K)> = None;
        for (at, &position) in tail.iter().enumerate() {
            let k = key(position);
            if best.as_ref().is_none_or(|(_, best_key)| k < *best_key) {
                best = Some((at, k));
            }
        }
        if let Some((at, _)) = best {
            move_to_front(tail, at);
        }
    }
}

/// Draw without replacement in proportion to weight; once only weight-0 positions are left they stay in order.
fn weighted(positions: &mut [usize], weight: impl Fn(usize) -> u64, rng: &mut impl Rng) {
    for start in 0..positions.len() {
        let Some(tail) = positions.get_mut(start..) else { return };
        let sum = tail.iter().fold(0u64, |sum, &p| sum.saturating_add(weight(p)));
        if sum == 0 {
            return;
        }
        let mut ticket = rng.random_range(0..sum);
        let mut chosen = 0;
        for (at, &position) in tail.iter().enumerate() {
            let w = weight(position);
            if ticket < w {
                chosen = at;
                break;
            }
            ticket -= w;
        }
        move_to_front(tail, chosen);
    }
}

/// Where in `positions` the first pick under `Latency` is.
fn latency_first<K: Ord>(
    positions: &[usize],
    score: impl Fn(usize) -> K,
    rng: &mut impl Rng,
) -> Option<usize> {
    let n = positions.len();
    if n < 2 {
        return None;
    }
    let a = rng.random_range(0..n);
    if rng.random_bool(EXPLORE) {
        return Some(a);
    }
    let mut b = rng.random_range(0..n - 1);
    if b >= a {
        b += 1;
    }
    let (sa, sb) = (score(*positions.get(a)?), score(*positions.get(b)?));
    Some(if sb < sa { b } else { a })
}

/// Where in `positions` the first pick under `LeastBusy` is: one of the least busy, at random.
fn least_busy_first(
    positions: &[usize],
    in_flight: impl Fn(usize) -> u32,
    rng: &mut impl Rng,
) -> Option<usize> {
    let least = positions.iter().map(|&p| in_flight(p)).min()?;
    let ties = positions.iter().filter(|&&p| in_flight(p) == least).count();
    let pick = rng.random_range(0..ties.max(1));
    positions.iter().enumerate().filter(|&(_, &p)| in_flight(p) == least).nth(pick).map(|(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const DRAWS: usize = 20_000;

    fn candidate(index: usize, weight: u32, latency_ms: Option<u64>, in_flight: u32) -> Candidate {
        Candidate { index, weight, latency: latency_ms.map(Duration::from_millis), in_flight }
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(0x006e_696e_6573)
    }

    /// How often each index comes first over `DRAWS` orders, checking every order is a permutation.
    fn first_counts(strategy: Strategy, pool: &[Candidate]) -> Vec<usize> {
        let mut rng = rng();
        let mut out = Vec::new();
        let max_index = pool.iter().map(|c| c.index).max().unwrap_or(0);
        let mut counts = vec![0; max_index + 1];
        for _ in 0..DRAWS {
            order(strategy, pool, &mut rng, &mut out);
            assert_permutation(pool, &out);
            counts[out[0]] += 1;
        }
        counts
    }

    fn assert_permutation(pool: &[Candidate], out: &[usize]) {
        let mut got = out.to_vec();
        got.sort_unstable();
        let mut want: Vec<usize> = pool.iter().map(|c| c.index).collect();
        want.sort_unstable();
        assert_eq!(got, want, "not a permutation: {out:?}");
    }

    fn share(count: usize) -> f64 {
        count as f64 / DRAWS as f64
    }

    #[test]
    fn empty_pool_gives_empty_order_and_clears_out() {
        let mut out = vec![7, 8, 9];
        for strategy in [Strategy::Priority, Strategy::Weighted, Strategy::Latency, Strategy::LeastBusy] {
            order(strategy, &[], &mut rng(), &mut out);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn single_candidate_is_just_it() {
        let pool = [candidate(4, 0, Some(900), 50)];
        let mut out = vec![1, 2];
        for strategy in [Strategy::Priority, Strategy::Weighted, Strategy::Latency, Strategy::LeastBusy] {
            order(strategy, &pool, &mut rng(), &mut out);
            assert_eq!(out, [4]);
        }
    }

    #[test]
    fn priority_keeps_the_given_order_of_indices() {
        let pool = [candidate(2, 1, None, 9), candidate(0, 5, Some(1), 0), candidate(1, 0, None, 0)];
        let mut out = Vec::new();
        order(Strategy::Priority, &pool, &mut rng(), &mut out);
        assert_eq!(out, [2, 0, 1]);
    }

    #[test]
    fn weighted_three_to_one_picks_first_three_quarters_of_the_time() {
        let pool = [candidate(0, 3, None, 0), candidate(1, 1, None, 0)];
        let counts = first_counts(Strategy::Weighted, &pool);
        let p = share(counts[0]);
        assert!((0.73..=0.77).contains(&p), "{p}");
    }

    #[test]
    fn weighted_zero_weight_is_never_first_when_others_are_positive() {
        let pool = [candidate(0, 0, None, 0), candidate(1, 1, None, 0), candidate(2, 2, None, 0)];
        let counts = first_counts(Strategy::Weighted, &pool);
        assert_eq!(counts[0], 0);
    }

    #[test]
    fn weighted_zero_weights_come_last_in_given_order() {
        let pool = [
            candidate(0, 0, None, 0),
            candidate(1, 1, None, 0),
            candidate(2, 0, None, 0),
            candidate(3, 5, None, 0),
            candidate(4, 0, None, 0),
        ];
        let mut rng = rng();
        let mut out = Vec::new();
        for _ in 0..1000 {
            order(Strategy::Weighted, &pool, &mut rng, &mut out);
            assert_eq!(out[2..], [0, 2, 4]);
        }
    }

    #[test]
    fn weighted_all_zero_keeps_the_given_order() {
        let pool = [candidate(1, 0, None, 0), candidate(0, 0, None, 0), candidate(2, 0, None, 0)];
        let mut out = Vec::new();
        order(Strategy::Weighted, &pool, &mut rng(), &mut out);
        assert_eq!(out, [1, 0, 2]);
    }

    #[test]
    fn weighted_second_place_follows_the_remaining_weights() {
        // After 0 (weight 2 of 4) is drawn first, 1 and 2 (1 each) share second place evenly.
        let pool = [candidate(0, 2, None, 0), candidate(1, 1, None, 0), candidate(2, 1, None, 0)];
        let mut rng = rng();
        let mut out = Vec::new();
        let (mut first_zero, mut then_one) = (0, 0);
        for _ in 0..DRAWS {
            order(Strategy::Weighted, &pool, &mut rng, &mut out);
            if out[0] == 0 {
                first_zero += 1;
                then_one += usize::from(out[1] == 1);
            }
        }
        let p = then_one as f64 / first_zero as f64;
        assert!((0.47..=0.53).contains(&p), "{p}");
    }

    #[test]
    fn latency_prefers_the_fast_target_but_explores_the_slow_one() {
        let pool = [candidate(0, 1, Some(500), 0), candidate(1, 1, Some(100), 0)];
        let counts = first_counts(Strategy::Latency, &pool);
        let fast = share(counts[1]);
        let slow = share(counts[0]);
        assert!(fast > 0.9, "fast first {fast}");
        assert!(slow >= 0.015, "slow explored {slow}");
    }

    #[test]
    fn latency_score_counts_requests_in_flight() {
        // 100 ms with 9 in flight scores 1 s; 500 ms idle scores 500 ms.
        let pool = [candidate(0, 1, Some(100), 9), candidate(1, 1, Some(500), 0)];
        let counts = first_counts(Strategy::Latency, &pool);
        assert!(share(counts[1]) > 0.9, "{counts:?}");
    }

    #[test]
    fn latency_candidate_without_data_is_explored_as_fast_as_the_fastest_but_not_flooded() {
        // Taken to be as fast as the fastest: ties go either way (fewer in flight first).
        let pool = [candidate(0, 1, Some(100), 0), candidate(1, 1, None, 0)];
        let counts = first_counts(Strategy::Latency, &pool);
        assert!(share(counts[1]) > 0.3 && share(counts[1]) < 0.7, "{counts:?}");
        // With its first answer pending (one in flight), the known fast target is preferred.
        let pool = [candidate(0, 1, Some(100), 0), candidate(1, 1, None, 1)];
        let counts = first_counts(Strategy::Latency, &pool);
        assert!(share(counts[0]) > 0.9, "{counts:?}");
        let pool = [
            candidate(0, 1, Some(100), 0),
            candidate(1, 1, Some(200), 0),
            candidate(2, 1, Some(300), 0),
            candidate(3, 1, None, 0),
        ];
        let counts = first_counts(Strategy::Latency, &pool);
        // As fast as the fastest (100 ms): it wins every pair but the one with that target, where it ties.
        assert!(share(counts[3]) > 0.3, "{counts:?}");
    }

    #[test]
    fn latency_with_three_the_fastest_is_first_most_often() {
        let pool =
            [candidate(0, 1, Some(300), 0), candidate(1, 1, Some(100), 0), candidate(2, 1, Some(200), 0)];
        let counts = first_counts(Strategy::Latency, &pool);
        assert!(counts[1] > counts[2] && counts[2] > counts[0], "{counts:?}");
        // The fastest wins both pairs it is in (2 of 3), plus exploration.
        assert!(share(counts[1]) > 0.6, "{counts:?}");
        // The slowest only by exploration: about 0.05 / 3.
        assert!(share(counts[0]) < 0.03, "{counts:?}");
    }

    #[test]
    fn latency_rest_is_by_score_ascending() {
        let pool = [
            candidate(0, 1, Some(300), 0),
            candidate(1, 1, Some(100), 0),
            candidate(2, 1, Some(200), 0),
            candidate(3, 1, Some(50), 1),
        ];
        let mut rng = rng();
        let mut out = Vec::new();
        let by_score = [1, 3, 2, 0];
        for _ in 0..1000 {
            order(Strategy::Latency, &pool, &mut rng, &mut out);
            let rest: Vec<usize> = by_score.iter().copied().filter(|&i| i != out[0]).collect();
            assert_eq!(out[1..], rest[..]);
        }
    }

    #[test]
    fn least_busy_picks_the_idle_one() {
        let pool = [candidate(0, 1, None, 3), candidate(1, 1, None, 0), candidate(2, 1, None, 1)];
        let mut rng = rng();
        let mut out = Vec::new();
        for _ in 0..1000 {
            order(Strategy::LeastBusy, &pool, &mut rng, &mut out);
            assert_eq!(out, [1, 2, 0]);
        }
    }

    #[test]
    fn least_busy_ties_spread_evenly() {
        let pool = [
            candidate(0, 1, None, 2),
            candidate(1, 1, None, 2),
            candidate(2, 1, None, 5),
            candidate(3, 1, None, 2),
        ];
        let counts = first_counts(Strategy::LeastBusy, &pool);
        assert_eq!(counts[2], 0);
        for i in [0, 1, 3] {
            let p = share(counts[i]);
            assert!((0.31..=0.356).contains(&p), "{i}: {p}");
        }
    }

    #[test]
    fn least_busy_rest_is_by_in_flight_ascending() {
        let pool = [candidate(7, 1, None, 1), candidate(8, 1, None, 1), candidate(9, 1, None, 0)];
        let mut out = Vec::new();
        order(Strategy::LeastBusy, &pool, &mut rng(), &mut out);
        assert_eq!(out, [9, 7, 8]);
    }

    #[test]
    fn every_order_is_a_permutation_of_non_positional_indices() {
        let pool: Vec<Candidate> = (0..16)
            .map(|i| {
                let latency = (i % 3 != 0).then_some(10 * i as u64);
                candidate(100 + 3 * i, (i % 4) as u32, latency, (i % 5) as u32)
            })
            .collect();
        let mut rng = rng();
        let mut out = Vec::new();
        for strategy in [Strategy::Priority, Strategy::Weighted, Strategy::Latency, Strategy::LeastBusy] {
            for _ in 0..500 {
                order(strategy, &pool, &mut rng, &mut out);
                assert_permutation(&pool, &out);
            }
        }
    }

    #[test]
    fn out_is_reused_without_growing() {
        let pool: Vec<Candidate> = (0..8).map(|i| candidate(i, 1, Some(10), 0)).collect();
        let mut out = Vec::with_capacity(8);
        let capacity = out.capacity();
        let mut rng = rng();
        for strategy in [Strategy::Priority, Strategy::Weighted, Strategy::Latency, Strategy::LeastBusy] {
            order(strategy, &pool, &mut rng, &mut out);
            assert_eq!(out.capacity(), capacity);
        }
    }
}
