//! Health end to end: what the gateway learns from one request decides where the next one goes. Breakers, a
//! silent target, learnt first-token limits, same-target retries and their budget, a total outage, rate-limit
//! headers, context windows, strategies and probes, each on a fresh gateway in front of simulated providers, judged
//! by the simulators' hit counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is its job

mod common;

use std::time::Duration;

use common::{Harness, P, Reply, p, request};
use nines::health::breaker::Transition;
use nines_sim::{Fault, FaultKind, RateLimit};
use tokio::time::Instant;

fn status(code: u16) -> FaultKind {
    FaultKind::Status { status: code, retry_after: None }
}

async fn chat(h: &Harness, door: &str, stream: bool) -> Reply {
    let (path, body) = request(door, "hello there", stream);
    h.post(path, body).await
}

fn served_by(r: &Reply) -> &str {
    r.header("x-nines-target")
}

/// Wait (bounded) for the breaker of `target` to report `want`.
async fn breaker_change(
    rx: &mut tokio::sync::broadcast::Receiver<nines::record::HealthChange>,
    target: &str,
    want: fn(&Transition) -> bool,
) {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(c) if c.target.as_str() == target && want(&c.transition) => return,
                Ok(_) => {}
                Err(e) => panic!("health changes ended: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait).await.expect("the breaker change never came");
}

/// A target failing every request: after three failures its breaker opens and no client request reaches it until
/// the cooldown ends; then exactly one trial at a time; when it has recovered, traffic comes back.
#[tokio::test]
async fn an_open_breaker_keeps_requests_off_a_failing_target_until_one_trial_finds_it_recovered() {
    let first = P { first_byte: "3s", ..p("first", "anthropic", "m1") };
    let h = Harness::with(
        &[first, p("second", "openai", "m2")],
        "[health]\ncooldown = \"300ms\"\ncooldown_max = \"2s\"\nramp = \"0s\"",
        Default::default(),
    )
    .await;
    h.sims[0].push_fault(Fault::new(status(503)).forever());
    for i in 0..10 {
        let r = chat(&h, "openai", i % 2 == 1).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(served_by(&r), "second/m2");
        assert_eq!(r.header("x-nines-attempts"), if i < 3 { "2" } else { "1" }, "request {i}");
    }
    assert_eq!(h.sims[0].total_hits(), 3, "three failures open the breaker; nothing after");
    assert_eq!(h.sims[1].total_hits(), 10, "every client request served once");

    // The cooldown (300 ms ± 20%) passes: one trial. It fails: open again, for longer (600 ms ± 20%).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = chat(&h, "openai", false).await;
    assert_eq!(served_by(&r), "second/m2");
    assert_eq!(h.sims[0].total_hits(), 4, "one trial");
    for _ in 0..5 {
        chat(&h, "anthropic", false).await;
    }
    assert_eq!(h.sims[0].total_hits(), 4, "reopened: no request until the longer cooldown ends");

    // Recovered, but slow (each answer takes a second): after the cooldown, five concurrent requests; exactly one is
    // the trial, the other four go elsewhere.
    h.sims[0].reset();
    h.sims[0].push_fault(Fault::delay(1000).forever());
    let mut changes = h.app.state.runtime.recorder.subscribe();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let sends = (0..5).map(|_| chat(&h, "openai", false));
    let replies = futures_util::future::join_all(sends).await;
    let by_first = replies.iter().filter(|r| served_by(r) == "first/m1").count();
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!((by_first, h.sims[0].total_hits()), (1, 1), "one trial at a time");
    breaker_change(&mut changes, "first/m1", |t| *t == Transition::Closed).await;

    // Closed (no ramp configured): the first target serves again.
    h.sims[0].reset();
    for _ in 0..4 {
        assert_eq!(served_by(&chat(&h, "anthropic", true).await), "first/m1");
    }
}

/// A silent first target (accepts, never answers) costs the first request its timeout (3 s here), not every request.
#[tokio::test]
async fn a_silent_target_costs_one_request_its_timeout() {
    let first = P { first_byte: "3s", ..p("first", "openai", "m1") };
    let h = Harness::new(&[first, p("second", "anthropic", "m2")]).await;
    h.sims[0].push_fault(Fault::hang().forever());
    let began = Instant::now();
    let r = chat(&h, "openai", false).await;
    assert_eq!(served_by(&r), "second/m2");
    assert!(began.elapsed() >= Duration::from_secs(3), "the first request waited its timeout");

    let began = Instant::now();
    for i in 0..20 {
        let r = chat(&h, "openai", i % 2 == 0).await;
        assert_eq!((r.status, served_by(&r)), (200, "second/m2"), "{}", r.text);
    }
    // Twenty requests in less than the one timeout: none of them waited for the silent target.
    assert!(began.elapsed() < Duration::from_secs(3), "{:?}", began.elapsed());
    assert_eq!(h.sims[0].total_hits(), 1);
}

/// A target whose first token usually comes at once suddenly takes 20 s: with no timeout configured (first_byte
/// left at its 60 s default), the stream fails over after the learnt limit (its floor, 2 s), not 20 or 60 s.
#[tokio::test]
async fn a_slow_first_token_fails_over_within_a_few_seconds_with_no_timeout_configured() {
    let first = P { first_byte: "60s", ..p("first", "anthropic", "m1") };
    let h = Harness::new(&[first, p("second", "openai", "m2")]).await;
    for _ in 0..12 {
        let r = chat(&h, "anthropic", true).await;
        assert_eq!(served_by(&r), "first/m1");
    }
    // `message_start` at once, then nothing for 20 s.
    h.sims[0].push_fault(Fault::stall(1, 20_000));
    let began = Instant::now();
    let r = chat(&h, "anthropic", true).await;
    let took = began.elapsed();
    assert_eq!((r.status, served_by(&r)), (200, "second/m2"), "{}", r.text);
    assert!(r.text.contains("message_stop"), "a complete stream: {}", r.text);
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(6), "failed over after {took:?}");
}

/// A lone 500, and a 429 with `Retry-After: 1`, are served by the same target on its second try (its prompt cache
/// kept); with the retry budget spent they fail over instead.
#[tokio::test]
async fn a_lone_failure_is_retried_on_the_same_target_within_the_budget() {
    let budget = "[dispatch]\nbackoff_base = \"10ms\"\n[health.retry_budget]\nratio = 0.0\nmin_per_second = 1\nttl = \"1s\"";
    let first = P { retries: 1, ..p("first", "openai", "m1") };
    let h = Harness::with(&[first, p("second", "anthropic", "m2")], budget, Default::default()).await;
    h.sims[0].push_fault(Fault::status(500));
    let r = chat(&h, "openai", false).await;
    assert_eq!((served_by(&r), r.header("x-nines-attempts")), ("first/m1", "2"), "{}", r.text);
    assert_eq!((h.sims[0].total_hits(), h.sims[1].total_hits()), (2, 0));

    // The budget (one retry a second, nothing from deposits) is spent: the next lone 500 fails over.
    h.sims[0].reset();
    h.sims[0].push_fault(Fault::status(500));
    let r = chat(&h, "openai", false).await;
    assert_eq!(served_by(&r), "second/m2", "{}", r.text);
    assert_eq!((h.sims[0].total_hits(), h.sims[1].total_hits()), (1, 1));

    let first = P { retries: 1, ..p("first", "anthropic", "m1") };
    let h = Harness::new(&[first, p("second", "openai", "m2")]).await;
    h.sims[0].push_fault(Fault::status_retry_after(429, 1));
    let began = Instant::now();
    let r = chat(&h, "anthropic", true).await;
    assert_eq!((served_by(&r), r.header("x-nines-attempts")), ("first/m1", "2"), "{}", r.text);
    assert!(began.elapsed() >= Duration::from_secs(1), "Retry-After waited out");
    assert_eq!((h.sims[0].total_hits(), h.sims[1].total_hits()), (2, 0));

    // Two failures in a row are not a lone one: the second is failed over, not retried.
    h.sims[0].reset();
    h.sims[0].push_fault(Fault::status(503).times(3));
    let r = chat(&h, "anthropic", false).await;
    assert_eq!(served_by(&r), "second/m2");
    assert_eq!(h.sims[0].total_hits(), 2, "the lone first failure retried once, then moved on");
}

/// A total outage of one provider under steady concurrent load: it receives only the few requests that opened its
/// breaker, then one trial per cooldown (each failed trial reopens it); the survivor receives each client request
/// exactly once.
#[tokio::test]
async fn a_total_outage_never_multiplies_the_traffic() {
    let first = P { retries: 1, ..p("first", "openai", "m1") };
    let second = P { retries: 1, ..p("second", "anthropic", "m2") };
    let h = Harness::with(
        &[first, second],
        "[health]\ncooldown = \"100ms\"\ncooldown_max = \"200ms\"",
        Default::default(),
    )
    .await;
    let mut changes = h.app.state.runtime.recorder.subscribe();
    h.sims[0].push_fault(Fault::status(503).forever());
    let began = Instant::now();
    let mut sent = 0;
    while began.elapsed() < Duration::from_millis(1500) {
        let sends = (0..4).map(|i| chat(&h, if i % 2 == 0 { "openai" } else { "anthropic" }, i >= 2));
        for r in futures_util::future::join_all(sends).await {
            assert_eq!((r.status, served_by(&r)), (200, "second/m2"), "{}", r.text);
            sent += 1;
        }
    }
    assert_eq!(h.sims[1].total_hits(), sent, "each request served once");
    let mut opened = 0;
    let mut trials_failed = 0;
    while let Ok(c) = changes.try_recv() {
        match c.transition {
            Transition::Opened { .. } => opened += 1,
            Transition::Reopened { .. } => trials_failed += 1,
            Transition::Closed => panic!("it never recovered"),
        }
    }
    assert_eq!(opened, 1);
    assert!(trials_failed >= 3, "trials after each cooldown: {trials_failed}");
    // Three consecutive failures open it (at most the four in flight then, and one retry); after that, only trials.
    let first_hits = h.sims[0].total_hits();
    assert!(
        first_hits <= 3 + 4 + 1 + trials_failed + 1,
        "{first_hits} requests, {trials_failed} failed trials"
    );
    assert!(sent >= 40, "steady load: {sent} requests");
}

/// Rate-limit headers with nothing remaining: the next request goes elsewhere without a 429 being seen; after the
/// reset the target is used again.
#[tokio::test]
async fn rate_limit_headers_route_around_a_target_before_it_answers_429() {
    let h = Harness::new(&[p("first", "openai", "m1"), p("second", "anthropic", "m2")]).await;
    h.sims[0].set_rate_limit(Some(RateLimit { requests: Some(3), tokens: None, window_ms: 1000 }));
    for _ in 0..3 {
        assert_eq!(served_by(&chat(&h, "openai", false).await), "first/m1");
    }
    for stream in [false, true] {
        let r = chat(&h, "anthropic", stream).await;
        assert_eq!((r.status, served_by(&r), r.header("x-nines-attempts")), (200, "second/m2", "1"));
    }
    assert_eq!(h.sims[0].total_hits(), 3, "no request was sent to be refused with a 429");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(served_by(&chat(&h, "openai", true).await), "first/m1", "used again after the reset");

    // Anthropic's headers (an RFC 3339 reset) too.
    let h2 = Harness::new(&[p("first", "anthropic", "m1"), p("second", "openai", "m2")]).await;
    h2.sims[0].set_rate_limit(Some(RateLimit { requests: Some(2), tokens: None, window_ms: 60_000 }));
    for _ in 0..2 {
        assert_eq!(served_by(&chat(&h2, "openai", false).await), "first/m1");
    }
    assert_eq!(served_by(&chat(&h2, "openai", true).await), "second/m2");
    assert_eq!(h2.sims[0].total_hits(), 2, "no request was sent to be refused with a 429");

    // A token budget that cannot cover the request's max_tokens: skipped too.
    h.sims[0].reset();
    h.sims[0].set_rate_limit(Some(RateLimit { requests: None, tokens: Some(150), window_ms: 60_000 }));
    assert_eq!(served_by(&chat(&h, "anthropic", false).await), "first/m1");
    let r = chat(&h, "anthropic", false).await;
    assert_eq!(served_by(&r), "second/m2", "max_tokens 100 no longer fits");
    assert_eq!(h.sims[0].total_hits(), 1);
}

/// A context window exceeded: served by the target declared larger; with none larger, the client gets that 400
/// in its dialect (OpenAI's `context_length_exceeded` code kept), and the first target was asked once.
#[tokio::test]
async fn a_context_window_exceeded_moves_on_only_to_a_larger_model() {
    let small =
        P { extra: "models = { small = { context_window = 8192 } }", ..p("first", "openai", "small") };
    let large =
        P { extra: "models = { large = { context_window = 200000 } }", ..p("second", "anthropic", "large") };
    let h = Harness::new(&[small, large]).await;
    for (door, stream) in [("openai", false), ("anthropic", true)] {
        h.sims[0].reset();
        h.sims[1].reset();
        h.sims[0].push_fault(Fault::context_length());
        let r = chat(&h, door, stream).await;
        assert_eq!((r.status, served_by(&r)), (200, "second/large"), "{door}: {}", r.text);
        assert_eq!((h.sims[0].total_hits(), h.sims[1].total_hits()), (1, 1));
    }

    // The second target declares no window: nothing is known to be larger.
    let small =
        P { extra: "models = { small = { context_window = 8192 } }", ..p("first", "openai", "small") };
    let h = Harness::new(&[small, p("second", "anthropic", "other")]).await;
    h.sims[0].push_fault(Fault::context_length().times(2));
    let r = chat(&h, "openai", false).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["code"], "context_length_exceeded");
    assert_eq!(r.json()["error"]["param"], "messages", "the provider's param, passed on: {}", r.text);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("maximum context length"), "{}", r.text);
    assert_eq!(r.header("x-should-retry"), "false");
    let r = chat(&h, "anthropic", false).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error", "Anthropic's shape: {}", r.text);
    assert_eq!(
        (h.sims[0].total_hits(), h.sims[1].total_hits()),
        (2, 0),
        "each request sent once, never resent"
    );
}

/// Weighted routes split traffic by weight; the latency strategy sends most traffic to the faster target.
#[tokio::test]
async fn strategies_split_traffic_by_weight_and_prefer_the_faster_target() {
    let h = Harness::with(
        &[p("a", "openai", "m"), p("b", "anthropic", "m")],
        "[routes.weighted]\nstrategy = \"weighted\"\n\
         targets = [{ target = \"a/m\", weight = 3 }, { target = \"b/m\", weight = 1 }]\n\
         [routes.fast]\nstrategy = \"latency\"\ntargets = [\"a/m\", \"b/m\"]",
        Default::default(),
    )
    .await;
    let mut body = common::openai_body("hi", false);
    body["model"] = "weighted".into();
    let mut to_a = 0;
    for _ in 0..200 {
        if served_by(&h.post("/v1/chat/completions", body.clone()).await) == "a/m" {
            to_a += 1;
        }
    }
    assert!((125..=175).contains(&to_a), "3:1 weights sent {to_a} of 200 to a");

    h.sims[1].push_fault(Fault::delay(40).forever());
    body["model"] = "fast".into();
    body["stream"] = true.into();
    let mut to_a = 0;
    for _ in 0..100 {
        if served_by(&h.post("/v1/chat/completions", body.clone()).await) == "a/m" {
            to_a += 1;
        }
    }
    assert!(to_a >= 80, "the faster target got {to_a} of 100");
    assert!(h.sims[1].total_hits() >= 1, "the slower one is still explored");
}

/// With probes configured, a target whose breaker is open is probed, never trialled with a client request; a
/// successful probe closes it and client traffic returns. Probes by model listing (each kind's own) and by chat.
#[tokio::test]
async fn a_probe_notices_recovery_without_a_client_request_paying_for_it() {
    for (kind, probe) in [
        ("openai", "probe = { interval = \"100ms\", request = \"chat\" }"),
        ("anthropic", "probe = { interval = \"100ms\", request = \"models\" }"),
        ("gemini", "probe = { interval = \"100ms\" }"),
    ] {
        let first = P { extra: probe, ..p("first", kind, "m1") };
        let h = Harness::with(
            &[first, p("second", "openai", "m2")],
            "[health]\ncooldown = \"50ms\"\nramp = \"0s\"",
            Default::default(),
        )
        .await;
        let mut changes = h.app.state.runtime.recorder.subscribe();
        h.sims[0].push_fault(Fault::status(503).forever());
        for _ in 0..3 {
            chat(&h, "openai", false).await;
        }
        breaker_change(&mut changes, "first/m1", |t| matches!(t, Transition::Opened { .. })).await;
        // Well past the cooldown, client requests still go around it: only probes may find it recovered.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..5 {
            assert_eq!(served_by(&chat(&h, "openai", false).await), "second/m2", "{kind}");
        }
        h.sims[0].reset();
        breaker_change(&mut changes, "first/m1", |t| *t == Transition::Closed).await;
        assert_eq!(h.sims[0].total_hits(), 1, "{kind}: the successful probe, and no client request");
        assert_eq!(served_by(&chat(&h, "openai", false).await), "first/m1", "{kind}");
    }
}

/// A request waiting for room at a full target is not sent there once, meanwhile, the request holding that room
/// opened the target's breaker (a first token that never came): it goes to the next target without an attempt.
#[tokio::test]
async fn a_request_that_waited_at_a_full_target_skips_it_once_its_breaker_opened() {
    let first = P { extra: "max_concurrency = 1", ..p("first", "openai", "m1") };
    let h = Harness::new(&[first, p("second", "openai", "m2")]).await;
    h.sims[0].push_fault(Fault::new(FaultKind::Hang));
    let holder = chat(&h, "openai", false);
    let waiter = async {
        // The first request holds the target's one place (its connection is open at the simulator)...
        tokio::time::timeout(Duration::from_secs(5), h.sims[0].wait_connections(|n| *n >= 1)).await.unwrap();
        // ...and this one waits for it (the default priority waits up to 2 s), past the first token timeout (500 ms)
        // that opens the breaker.
        chat(&h, "openai", false).await
    };
    let (held, waited) = tokio::join!(holder, waiter);
    assert_eq!(held.status, 200, "{}", held.text);
    assert_eq!(served_by(&held), "second/m2");
    assert_eq!(waited.status, 200, "{}", waited.text);
    assert_eq!(served_by(&waited), "second/m2", "sent to a target whose breaker had opened while it waited");
    assert_eq!(waited.header("x-nines-attempts"), "1");
    assert_eq!(h.sims[0].total_hits(), 1, "only the request that hung reached the first target");
}
