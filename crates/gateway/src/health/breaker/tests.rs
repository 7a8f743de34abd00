//! The breaker's state machine, driven with explicit instants and paused time.

use super::*;

const S: Duration = Duration::from_secs(1);

/// Defaults without jitter, so cooldowns are exact.
fn cfg() -> BreakerConfig {
    BreakerConfig { jitter: 0.0, ..BreakerConfig::default() }
}

fn fail_n(b: &mut Breaker, now: Instant, cfg: &BreakerConfig, n: u32) -> Option<Transition> {
    let mut last = None;
    for _ in 0..n {
        last = b.record(now, cfg, Outcome::Failure, false);
    }
    last
}

/// An open breaker at `t`, opened by consecutive failures.
fn opened(t: Instant, cfg: &BreakerConfig) -> Breaker {
    let mut b = Breaker::new();
    assert!(matches!(fail_n(&mut b, t, cfg, 3), Some(Transition::Opened { .. })));
    b
}

fn share(a: Admission) -> f64 {
    // Anything but a Pass fails every comparison.
    if let Admission::Pass { share } = a { share } else { f64::NAN }
}

/// "S F S F F" repeated: 60 % failures, never 3 in a row.
fn pattern(i: u32) -> Outcome {
    if matches!(i % 5, 0 | 2) { Outcome::Success } else { Outcome::Failure }
}

#[test]
fn a_new_breaker_is_closed_and_passes_everything() {
    let t = Instant::now();
    let mut b = Breaker::new();
    assert_eq!(b.state(t), State::Closed);
    assert_eq!(b.admit(t, &cfg()), Admission::Pass { share: 1.0 });
    assert_eq!(b.reopens_at(), None);
    assert_eq!(b.consecutive_failures(), 0);
}

#[test]
fn opens_after_n_consecutive_failures() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = Breaker::new();
    assert_eq!(fail_n(&mut b, t, &cfg, 2), None);
    assert_eq!(b.consecutive_failures(), 2);
    assert_eq!(b.state(t), State::Closed);
    assert_eq!(
        b.record(t, &cfg, Outcome::Failure, false),
        Some(Transition::Opened { cooldown: 5 * S, reason: OpenReason::Consecutive(3) })
    );
    assert_eq!(b.state(t), State::Open { until: t + 5 * S });
    assert_eq!(b.reopens_at(), Some(t + 5 * S));
}

#[test]
fn a_success_in_between_resets_the_consecutive_count() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = Breaker::new();
    assert_eq!(fail_n(&mut b, t, &cfg, 2), None);
    assert_eq!(b.record(t, &cfg, Outcome::Success, false), None);
    assert_eq!(b.consecutive_failures(), 0);
    assert_eq!(fail_n(&mut b, t, &cfg, 2), None);
    assert_eq!(b.state(t), State::Closed);
}

#[test]
fn zero_consecutive_failures_turns_that_rule_off() {
    let t = Instant::now();
    let cfg = BreakerConfig { consecutive_failures: 0, ..cfg() };
    let mut b = Breaker::new();
    assert_eq!(fail_n(&mut b, t, &cfg, 19), None);
}

#[test]
fn the_rate_rule_needs_min_requests_in_the_window() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = Breaker::new();
    for i in 0..19 {
        assert_eq!(b.record(t, &cfg, pattern(i), false), None, "request {i}");
    }
    assert_eq!(b.state(t), State::Closed);
    assert_eq!(
        b.record(t, &cfg, pattern(19), false),
        Some(Transition::Opened { cooldown: 5 * S, reason: OpenReason::Rate { failures: 12, requests: 20 } })
    );
}

#[test]
fn the_rate_counts_requests_spread_over_the_window() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = Breaker::new();
    for i in 0..19 {
        assert_eq!(b.record(t + i * S, &cfg, pattern(i), false), None);
    }
    assert!(matches!(
        b.record(t + 19 * S, &cfg, pattern(19), false),
        Some(Transition::Opened { reason: OpenReason::Rate { failures: 12, requests: 20 }, .. })
    ));
}

#[test]
fn the_window_forgets_old_requests() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = Breaker::new();
    for i in 0..10 {
        assert_eq!(b.record(t, &cfg, pattern(i), false), None);
    }
    let later = t + 31 * S;
    for i in 10..20 {
        assert_eq!(b.record(later, &cfg, pattern(i), false), None, "request {i}");
    }
    assert_eq!(b.state(later), State::Closed);
    assert_eq!(b.window.totals(), (10, 6));
}

#[test]
fn a_timeout_opens_at_once() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = Breaker::new();
    assert_eq!(b.record(t, &cfg, Outcome::Success, false), None);
    assert_eq!(
        b.record(t, &cfg, Outcome::Timeout, false),
        Some(Transition::Opened { cooldown: 5 * S, reason: OpenReason::Timeout })
    );
    assert_eq!(b.state(t), State::Open { until: t + 5 * S });
}

#[test]
fn while_open_every_admit_is_refused_until_the_cooldown_ends() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = opened(t, &cfg);
    let until = Some(t + 5 * S);
    for dt in [Duration::ZERO, S, 4 * S, 5 * S - Duration::from_millis(1)] {
        assert_eq!(b.admit(t + dt, &cfg), Admission::Refused { until }, "at +{dt:?}");
    }
}

#[test]
fn after_the_cooldown_exactly_one_trial_is_admitted() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = opened(t, &cfg);
    let after = t + 5 * S;
    assert_eq!(b.state(after), State::HalfOpen);
    assert_eq!(b.admit(after, &cfg), Admission::Trial);
    assert_eq!(b.admit(after, &cfg), Admission::Refused { until: None });
    assert_eq!(b.admit(after + S, &cfg), Admission::Refused { until: None });
    assert_eq!(b.state(after), State::HalfOpen);
    assert_eq!(b.reopens_at(), Some(after));
}

#[test]
fn a_trial_success_closes_and_ramps_the_share_up() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = opened(t, &cfg);
    let c = t + 5 * S;
    assert_eq!(b.admit(c, &cfg), Admission::Trial);
    assert_eq!(b.record(c, &cfg, Outcome::Success, true), Some(Transition::Closed));
    assert_eq!(b.state(c), State::Closed);
    assert_eq!(b.reopens_at(), None);
    assert!((share(b.admit(c, &cfg)) - 0.1).abs() < 1e-9);
    assert!((share(b.admit(c + 15 * S, &cfg)) - 0.55).abs() < 1e-9);
    assert_eq!(share(b.admit(c + 30 * S, &cfg)), 1.0);
    assert_eq!(share(b.admit(c + 31 * S, &cfg)), 1.0);
}

#[test]
fn a_zero_ramp_closes_at_full_share() {
    let t = Instant::now();
    let cfg = BreakerConfig { ramp: Duration::ZERO, ..cfg() };
    let mut b = opened(t, &cfg);
    assert_eq!(b.probe(t, &cfg, true), Some(Transition::Closed));
    assert_eq!(share(b.admit(t, &cfg)), 1.0);
}

#[test]
fn a_trial_failure_reopens_with_a_doubled_cooldown_up_to_the_cap_and_a_close_resets_it() {
    let (cfg, mut now) = (cfg(), Instant::now());
    let mut b = opened(now, &cfg);
    now += 5 * S;
    for expected in [10, 20, 40, 80, 120, 120] {
        assert_eq!(b.admit(now, &cfg), Admission::Trial);
        let outcome = if expected == 40 { Outcome::Timeout } else { Outcome::Failure };
        assert_eq!(b.record(now, &cfg, outcome, true), Some(Transition::Reopened { cooldown: expected * S }));
        assert_eq!(b.admit(now, &cfg), Admission::Refused { until: Some(now + expected * S) });
        now += expected * S;
    }
    assert_eq!(b.admit(now, &cfg), Admission::Trial);
    assert_eq!(b.record(now, &cfg, Outcome::Success, true), Some(Transition::Closed));
    assert!(
        matches!(fail_n(&mut b, now, &cfg, 3), Some(Transition::Opened { cooldown, .. }) if cooldown == 5 * S)
    );
}

#[test]
fn release_trial_lets_another_trial_in() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = opened(t, &cfg);
    let after = t + 5 * S;
    assert_eq!(b.admit(after, &cfg), Admission::Trial);
    b.release_trial();
    assert_eq!(b.state(after), State::HalfOpen);
    assert_eq!(b.admit(after, &cfg), Admission::Trial);
    assert_eq!(b.admit(after, &cfg), Admission::Refused { until: None });
}

#[test]
fn release_trial_while_closed_or_open_changes_nothing() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = Breaker::new();
    b.release_trial();
    assert_eq!(b.state(t), State::Closed);
    let mut b = opened(t, &cfg);
    b.release_trial();
    assert_eq!(b.admit(t, &cfg), Admission::Refused { until: Some(t + 5 * S) });
}

#[test]
fn late_non_trial_results_while_open_or_half_open_change_nothing() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = opened(t, &cfg);
    for outcome in [Outcome::Success, Outcome::Failure, Outcome::Timeout] {
        assert_eq!(b.record(t + S, &cfg, outcome, false), None);
        assert_eq!(b.state(t + S), State::Open { until: t + 5 * S });
    }
    let after = t + 5 * S;
    assert_eq!(b.admit(after, &cfg), Admission::Trial);
    for outcome in [Outcome::Success, Outcome::Failure, Outcome::Timeout] {
        assert_eq!(b.record(after, &cfg, outcome, false), None);
        assert_eq!(b.state(after), State::HalfOpen);
        assert_eq!(b.admit(after, &cfg), Admission::Refused { until: None });
    }
    // The trial's own verdict still counts.
    assert_eq!(b.record(after, &cfg, Outcome::Success, true), Some(Transition::Closed));
}

#[test]
fn a_trial_verdict_after_a_probe_reopened_it_changes_nothing() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = opened(t, &cfg);
    let after = t + 5 * S;
    assert_eq!(b.admit(after, &cfg), Admission::Trial);
    assert_eq!(b.probe(after, &cfg, false), Some(Transition::Reopened { cooldown: 10 * S }));
    assert_eq!(b.record(after, &cfg, Outcome::Success, true), None);
    assert_eq!(b.state(after), State::Open { until: after + 10 * S });
}

#[test]
fn a_probe_ok_closes_before_the_cooldown_ends() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = opened(t, &cfg);
    assert_eq!(b.probe(t + S, &cfg, true), Some(Transition::Closed));
    assert_eq!(b.state(t + S), State::Closed);
    assert!((share(b.admit(t + S, &cfg)) - 0.1).abs() < 1e-9);
}

#[test]
fn a_probe_ok_closes_from_half_open() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = opened(t, &cfg);
    assert_eq!(b.admit(t + 5 * S, &cfg), Admission::Trial);
    assert_eq!(b.probe(t + 5 * S, &cfg, true), Some(Transition::Closed));
    assert_eq!(b.state(t + 5 * S), State::Closed);
}

#[test]
fn a_failed_probe_keeps_the_cooldown_running_then_reopens_for_longer() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = opened(t, &cfg);
    assert_eq!(b.probe(t + S, &cfg, false), None);
    assert_eq!(b.state(t + S), State::Open { until: t + 5 * S });
    let late = t + 6 * S;
    assert_eq!(b.probe(late, &cfg, false), Some(Transition::Reopened { cooldown: 10 * S }));
    assert_eq!(b.state(late), State::Open { until: late + 10 * S });
}

#[test]
fn probes_while_closed_change_nothing() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = Breaker::new();
    assert_eq!(fail_n(&mut b, t, &cfg, 2), None);
    assert_eq!(b.probe(t, &cfg, false), None);
    assert_eq!(b.probe(t, &cfg, true), None);
    assert_eq!(b.state(t), State::Closed);
    assert_eq!(b.consecutive_failures(), 2);
}

#[test]
fn closing_forgets_the_failures_of_the_window() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = Breaker::new();
    for i in 0..19 {
        assert_eq!(b.record(t, &cfg, pattern(i), false), None);
    }
    assert!(b.record(t, &cfg, Outcome::Timeout, false).is_some());
    assert_eq!(b.probe(t + S, &cfg, true), Some(Transition::Closed));
    assert_eq!(b.record(t + S, &cfg, Outcome::Failure, false), None);
    assert_eq!(b.consecutive_failures(), 1);
}

#[test]
fn jitter_stays_within_twenty_percent() {
    let cfg = BreakerConfig::default();
    for k in [0, 1, 2, 3, 4, 5, 10] {
        let base = cooldown_for(k, &cfg, 0.0);
        assert_eq!(base, (cfg.cooldown * 2u32.pow(k)).min(cfg.cooldown_max));
        assert_eq!(cooldown_for(k, &cfg, 1.0), base + base / 5);
        assert_eq!(cooldown_for(k, &cfg, -1.0), base - base / 5);
        assert_eq!(cooldown_for(k, &cfg, 7.0), base + base / 5);
        assert_eq!(cooldown_for(k, &cfg, f64::NAN), base);
        for _ in 0..200 {
            let d = cooldown_for(k, &cfg, random_unit());
            assert!(d >= base - base / 5 && d <= base + base / 5, "k={k}: {d:?}");
        }
    }
    // And through the breaker itself, with the default (random) jitter.
    let t = Instant::now();
    for _ in 0..200 {
        let mut b = Breaker::new();
        let opened = b.record(t, &cfg, Outcome::Timeout, false);
        assert!(
            matches!(opened, Some(Transition::Opened { cooldown, .. }) if cooldown >= 4 * S && cooldown <= 6 * S),
            "{opened:?}"
        );
    }
}

#[test]
fn huge_k_does_not_overflow() {
    let cfg = BreakerConfig::default();
    assert_eq!(cooldown_for(u32::MAX, &cfg, 1.0), 144 * S);
    assert_eq!(cooldown_for(31, &cfg, 0.0), 120 * S);
    assert_eq!(cooldown_for(32, &cfg, 0.0), 120 * S);
    let unbounded = BreakerConfig { cooldown_max: Duration::MAX, ..cfg };
    assert_eq!(cooldown_for(u32::MAX, &unbounded, 0.0), Duration::MAX);
    assert_eq!(cooldown_for(u32::MAX, &unbounded, 1.0), Duration::MAX);
    // A breaker that has reopened "forever", with a cooldown past the end of time.
    let t = Instant::now();
    let mut b = opened(t, &unbounded);
    b.opens = u32::MAX;
    assert!(matches!(b.probe(t + 10 * S, &unbounded, false), Some(Transition::Reopened { .. })));
    assert!(matches!(b.admit(t + 10 * S, &unbounded), Admission::Refused { until: Some(_) }));
}

#[test]
fn a_cooldown_is_never_below_one_millisecond() {
    let cfg = BreakerConfig { cooldown: Duration::ZERO, ..BreakerConfig::default() };
    assert_eq!(cooldown_for(0, &cfg, -1.0), Duration::from_millis(1));
    assert_eq!(cooldown_for(u32::MAX, &cfg, 0.0), Duration::from_millis(1));
    let tiny = BreakerConfig { cooldown: Duration::from_micros(10), ..BreakerConfig::default() };
    assert_eq!(cooldown_for(0, &tiny, 0.0), Duration::from_millis(1));
}

#[test]
fn consecutive_failures_is_zero_before_a_lone_failure() {
    let (t, cfg) = (Instant::now(), cfg());
    let mut b = Breaker::new();
    assert_eq!(b.record(t, &cfg, Outcome::Success, false), None);
    assert_eq!(b.consecutive_failures(), 0);
    assert_eq!(b.record(t, &cfg, Outcome::Failure, false), None);
    assert_eq!(b.consecutive_failures(), 1);
}

#[tokio::test(start_paused = true)]
async fn follows_the_paused_tokio_clock() {
    let cfg = cfg();
    let mut b = Breaker::new();
    assert!(b.record(Instant::now(), &cfg, Outcome::Timeout, false).is_some());
    tokio::time::advance(4 * S).await;
    assert!(matches!(b.admit(Instant::now(), &cfg), Admission::Refused { until: Some(_) }));
    tokio::time::advance(S).await;
    assert_eq!(b.admit(Instant::now(), &cfg), Admission::Trial);
    assert_eq!(b.record(Instant::now(), &cfg, Outcome::Success, true), Some(Transition::Closed));
    tokio::time::advance(15 * S).await;
    assert!((share(b.admit(Instant::now(), &cfg)) - 0.55).abs() < 1e-9);
}

#[test]
fn a_breaker_is_small() {
    assert!(std::mem::size_of::<Breaker>() <= 192, "{}", std::mem::size_of::<Breaker>());
}
