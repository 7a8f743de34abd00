//! Health per target, on paused time: cooldowns, down, headroom, ramps, numbered trials, learnt limits.

use super::*;
use crate::health::ratelimit::Remaining;

fn target() -> Arc<TargetHealth> {
    Health::new(RetryBudgetConfig::default()).target(&TargetId::new("p", "m"))
}

fn cfg() -> HealthConfig {
    let mut c = HealthConfig::default();
    c.breaker.jitter = 0.0;
    c.breaker.ramp = Duration::from_secs(10);
    c
}

fn err(kind: ErrorKind) -> ProviderError {
    ProviderError::new(kind, "x")
}

fn fail(t: &TargetHealth, c: &HealthConfig, role: Role, e: &ProviderError, fp: u64) -> Option<Transition> {
    let f = Failure {
        role,
        error: e,
        fingerprint: fp,
        timed_out: None,
        deadline_cut: false,
        after_commit: false,
        judged: true,
    };
    t.failed(Instant::now(), c, f)
}

fn timeout(t: &TargetHealth, c: &HealthConfig, timed_out: Option<TimedOut>, after_commit: bool) {
    let e = err(ErrorKind::Timeout);
    let f = Failure {
        role: Role::Normal,
        error: &e,
        fingerprint: 1,
        timed_out,
        deadline_cut: false,
        after_commit,
        judged: true,
    };
    t.failed(Instant::now(), c, f);
}

fn commit(t: &TargetHealth, c: &HealthConfig, elapsed: Duration, stream: bool, limits: Option<&RateLimits>) {
    let commit = Commit { role: Role::Normal, elapsed, stream, limits, judged: true };
    t.committed(Instant::now(), c, commit);
}

fn admit(t: &TargetHealth, c: &HealthConfig, fp: u64, probed: bool, roll: f64) -> Admit {
    t.admit(Instant::now(), c, NEED, fp, probed, roll)
}

const NEED: Need = Need { input_tokens: 10, output_tokens: 10 };
const GO: Admit = Admit::Go { role: Role::Normal };
const AT_CAP: Option<TimedOut> = Some(TimedOut { limit: Duration::from_secs(60), learnt: false });

#[tokio::test(start_paused = true)]
async fn a_429_sets_the_target_aside_until_its_retry_after_without_counting_as_a_failure() {
    let (t, c) = (target(), cfg());
    let mut e = err(ErrorKind::RateLimited);
    e.retry_after = Some(Duration::from_secs(3));
    for _ in 0..5 {
        assert!(fail(&t, &c, Role::Normal, &e, 1).is_none());
    }
    assert!(matches!(admit(&t, &c, 1, false, 0.0), Admit::Skip(Unavailable::Cooling { .. })));
    assert_eq!(t.cooling_left(Instant::now()), Some(Duration::from_secs(3)));
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(admit(&t, &c, 1, false, 0.0), GO);
    assert_eq!(t.report(Instant::now(), &c, Duration::from_secs(60)).consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_refused_key_keeps_the_target_down_until_its_configuration_changes_a_probe_or_a_late_retry() {
    let (t, c) = (target(), cfg());
    fail(&t, &c, Role::Normal, &err(ErrorKind::Auth), 7);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(admit(&t, &c, 7, false, 0.0), Admit::Skip(Unavailable::Down));
    assert_eq!(admit(&t, &c, 8, false, 0.0), GO, "another configuration");
    fail(&t, &c, Role::Normal, &err(ErrorKind::Auth), 8);
    t.probed(Instant::now(), &c, true);
    assert_eq!(admit(&t, &c, 8, false, 0.0), GO, "a probe got through");
    // Without probes, one request every cooldown_max (2 min) may find the key accepted again.
    fail(&t, &c, Role::Normal, &err(ErrorKind::Auth), 8);
    tokio::time::advance(Duration::from_secs(120)).await;
    assert_eq!(admit(&t, &c, 8, false, 0.0), GO);
    assert_eq!(admit(&t, &c, 8, false, 0.0), Admit::Skip(Unavailable::Down), "one at a time");
    tokio::time::advance(Duration::from_millis(5)).await;
    commit(&t, &c, Duration::from_millis(5), false, None);
    assert_eq!(admit(&t, &c, 8, false, 0.0), GO, "a success lifts it");
}

#[tokio::test(start_paused = true)]
async fn no_headroom_skips_until_the_reset_and_admissions_spend_it_locally() {
    let (t, c) = (target(), cfg());
    let one_left = RateLimits {
        requests: Some(Remaining { remaining: 1, reset: Duration::from_secs(5) }),
        ..RateLimits::default()
    };
    commit(&t, &c, Duration::from_millis(5), false, Some(&one_left));
    assert_eq!(admit(&t, &c, 1, false, 0.0), GO);
    assert!(matches!(admit(&t, &c, 1, false, 0.0), Admit::Skip(Unavailable::NoHeadroom { .. })));
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(admit(&t, &c, 1, false, 0.0), GO);
}

#[tokio::test(start_paused = true)]
async fn a_recovered_target_ramps_and_a_probed_one_never_gets_a_client_trial() {
    let (t, c) = (target(), cfg());
    timeout(&t, &c, AT_CAP, false);
    assert!(matches!(admit(&t, &c, 1, true, 0.0), Admit::Skip(Unavailable::Open { .. })));
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(matches!(admit(&t, &c, 1, true, 0.0), Admit::Skip(Unavailable::Open { .. })), "probed");
    t.probed(Instant::now(), &c, true);
    // Right after recovery the share is 10%: a roll above it defers, below it goes.
    assert_eq!(admit(&t, &c, 1, true, 0.5), Admit::Defer);
    assert_eq!(admit(&t, &c, 1, true, 0.05), GO);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(admit(&t, &c, 1, true, 0.99), GO);
}

#[tokio::test(start_paused = true)]
async fn a_trial_is_released_by_its_own_number_only() {
    let (t, c) = (target(), cfg());
    timeout(&t, &c, AT_CAP, false);
    tokio::time::advance(Duration::from_secs(6)).await;
    let Admit::Go { role: Role::Trial(first) } = admit(&t, &c, 1, false, 0.0) else { panic!("a trial") };
    assert!(matches!(admit(&t, &c, 1, false, 0.0), Admit::Skip(_)), "one trial at a time");
    t.release_trial(first);
    let Admit::Go { role: Role::Trial(second) } = admit(&t, &c, 1, false, 0.0) else { panic!("a trial") };
    // The first trial's late release does not free the second's slot.
    t.release_trial(first);
    assert!(matches!(admit(&t, &c, 1, false, 0.0), Admit::Skip(_)));
    // The client's own 400 says nothing of the target's health: the trial is released, not judged.
    fail(&t, &c, Role::Trial(second), &err(ErrorKind::BadRequest), 1);
    assert!(matches!(admit(&t, &c, 1, false, 0.0), Admit::Go { role: Role::Trial(_) }));
}

#[tokio::test(start_paused = true)]
async fn a_forced_attempt_is_the_one_trial_and_never_a_second() {
    let (t, c) = (target(), cfg());
    timeout(&t, &c, AT_CAP, false);
    let Some(Role::Trial(e)) = t.force(Instant::now(), NEED) else { panic!("forced as the trial") };
    assert_eq!(t.force(Instant::now(), NEED), None, "its trial is in flight");
    let ok = Commit {
        role: Role::Trial(e),
        elapsed: Duration::from_millis(5),
        stream: false,
        limits: None,
        judged: true,
    };
    assert_eq!(t.committed(Instant::now(), &c, ok), Some(Transition::Closed));
}

#[tokio::test(start_paused = true)]
async fn only_a_first_token_timeout_opens_at_once() {
    let (t, c) = (target(), cfg());
    timeout(&t, &c, None, true);
    timeout(&t, &c, None, false);
    assert_eq!(admit(&t, &c, 1, false, 0.0), GO, "after commit, or cut by the deadline: ordinary failures");
    timeout(&t, &c, AT_CAP, false);
    assert!(matches!(admit(&t, &c, 1, false, 0.0), Admit::Skip(Unavailable::Open { .. })));
}

#[tokio::test(start_paused = true)]
async fn first_token_timeouts_raise_the_learnt_limit_and_plain_limits_stay_the_cap() {
    let (t, c) = (target(), cfg());
    let cap = Duration::from_secs(60);
    assert_eq!(t.first_token_limit(&c, cap), cap, "nothing learnt yet");
    for _ in 0..20 {
        commit(&t, &c, Duration::from_millis(300), true, None);
    }
    assert_eq!(t.first_token_limit(&c, cap), Duration::from_secs(2), "3 × 0.3 s is under the floor");
    commit(&t, &c, Duration::from_secs(30), false, None);
    assert_eq!(t.first_token_limit(&c, cap), Duration::from_secs(2), "plain answers teach nothing");
    let learnt = Some(TimedOut { limit: Duration::from_secs(2), learnt: true });
    timeout(&t, &c, learnt, false);
    assert_eq!(t.first_token_limit(&c, cap), Duration::from_secs(6));
    // A timeout at the cap is not a sample: a silent spell must not leave the limit at the cap afterwards.
    timeout(&t, &c, AT_CAP, false);
    assert_eq!(t.first_token_limit(&c, cap), Duration::from_secs(6));
    let off = HealthConfig { time_limits: None, ..cfg() };
    assert_eq!(t.first_token_limit(&off, cap), cap);
}

#[tokio::test(start_paused = true)]
async fn a_forced_trial_released_early_gives_the_rest_of_the_cooldown_back() {
    let (t, c) = (target(), cfg());
    timeout(&t, &c, AT_CAP, false);
    let Some(Role::Trial(e)) = t.force(Instant::now(), NEED) else { panic!("forced as the trial") };
    t.release_trial(e);
    assert!(matches!(admit(&t, &c, 1, false, 0.0), Admit::Skip(Unavailable::Open { until: Some(_) })));
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(matches!(admit(&t, &c, 1, false, 0.0), Admit::Go { role: Role::Trial(_) }));
}

#[tokio::test(start_paused = true)]
async fn a_trial_cut_by_the_requests_deadline_is_released_not_judged() {
    let (t, c) = (target(), cfg());
    timeout(&t, &c, AT_CAP, false);
    tokio::time::advance(Duration::from_secs(5)).await;
    let Admit::Go { role } = admit(&t, &c, 1, false, 0.0) else { panic!("a trial") };
    let e = err(ErrorKind::Timeout);
    let f = Failure {
        role,
        error: &e,
        fingerprint: 1,
        timed_out: None,
        deadline_cut: true,
        after_commit: false,
        judged: true,
    };
    assert_eq!(t.failed(Instant::now(), &c, f), None, "no verdict");
    assert!(matches!(admit(&t, &c, 1, false, 0.0), Admit::Go { role: Role::Trial(_) }), "not reopened");
}

#[tokio::test(start_paused = true)]
async fn a_success_that_began_before_the_key_was_refused_does_not_lift_down() {
    let (t, c) = (target(), cfg());
    tokio::time::advance(Duration::from_secs(1)).await;
    fail(&t, &c, Role::Normal, &err(ErrorKind::Auth), 1);
    commit(&t, &c, Duration::from_secs(2), false, None);
    assert_eq!(admit(&t, &c, 1, false, 0.0), Admit::Skip(Unavailable::Down));
}

#[test]
fn ad_hoc_names_are_bounded_and_configured_targets_always_kept() {
    let h = Health::new(RetryBudgetConfig::default());
    for i in 0..MAX_AD_HOC + 10 {
        h.ad_hoc(&TargetId::new("p", &format!("m{i}")));
    }
    h.ad_hoc(&TargetId::new("p", &"x".repeat(MAX_AD_HOC_NAME)));
    h.target(&TargetId::new("p", "configured"));
    assert_eq!(h.all().len(), MAX_AD_HOC + 1);
    let long = TargetId::new("q", &"x".repeat(MAX_AD_HOC_NAME));
    let h = Health::new(RetryBudgetConfig::default());
    h.ad_hoc(&long);
    assert!(h.all().is_empty(), "an over-long name is not kept");
}
