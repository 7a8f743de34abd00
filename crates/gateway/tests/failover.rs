//! Failover end to end: the gateway in front of simulated providers whose first target fails in every way the
//! core issue names, through both front doors, plain and streaming, translating to the fallback's dialect.

mod common;

use common::{Harness, p, request};
use nines_sim::FaultKind;

/// Assert a stream ended the way a complete answer ends in `door`'s dialect.
fn assert_complete_stream(door: &str, reply: &common::Reply) {
    let frames = reply.frames();
    assert!(!frames.is_empty(), "empty stream: {}", reply.text);
    let last = &frames[frames.len() - 1];
    match door {
        "openai" => assert_eq!(last.data, "[DONE]", "stream: {}", reply.text),
        _ => assert_eq!(last.event, "message_stop", "stream: {}", reply.text),
    }
}

/// Every fault of the issue on the first target, for each front door, plain and streaming: the client sees the
/// second target's answer.
#[tokio::test]
async fn every_provider_fault_fails_over_invisibly() {
    let faults: Vec<(&str, FaultKind)> = vec![
        ("529", FaultKind::Status { status: 529, retry_after: None }),
        ("503", FaultKind::Status { status: 503, retry_after: None }),
        ("500", FaultKind::Status { status: 500, retry_after: None }),
        ("429 with Retry-After", FaultKind::Status { status: 429, retry_after: Some(1) }),
        ("401 (our key)", FaultKind::Status { status: 401, retry_after: None }),
        ("hang", FaultKind::Hang),
        ("reset", FaultKind::Reset),
        ("garbage", FaultKind::Garbage),
        ("cut before first token", FaultKind::Cut { after: 1 }),
    ];
    // First target speaks the other dialect than the door, fallback the door's own... and the reverse.
    for (door, first_kind, second_kind) in [
        ("openai", "anthropic", "openai"),
        ("anthropic", "openai", "anthropic"),
        ("openai", "openai", "anthropic"),
        ("anthropic", "anthropic", "openai"),
    ] {
        for (name, fault) in &faults {
            for stream in [false, true] {
                // A fresh gateway per scenario: a timeout opens the first target's breaker and a 429 sets it
                // aside, by design (tests/health.rs pins that).
                let h = Harness::new(&[p("first", first_kind, "m1"), p("second", second_kind, "m2")]).await;
                h.fault(0, fault.clone(), 1);
                let (path, body) = request(door, "hello there", stream);
                let r = h.post(path, body).await;
                let ctx = format!("door={door} first={first_kind} fault={name} stream={stream}");
                assert_eq!(r.status, 200, "{ctx}: {}", r.text);
                assert_eq!(r.header("x-nines-target"), "second/m2", "{ctx}");
                assert_eq!(r.header("x-nines-attempts"), "2", "{ctx}");
                assert!(
                    r.answer_text().starts_with("second says: hello there"),
                    "{ctx}: {}",
                    r.answer_text()
                );
                assert_eq!(h.sims[0].total_hits(), 1, "{ctx}: the first target is tried once");
                assert_eq!(h.sims[1].total_hits(), 1, "{ctx}");
                if stream {
                    assert_complete_stream(door, &r);
                }
            }
        }
    }
}

/// A 400 to the client's own bytes (same dialect, passed through) is the request's fault: returned at once, in the
/// client's dialect, never failed over. A 400 to a body the gateway translated may be the translation's: the next
/// target is tried, and if every target refuses the request, the client gets the 400.
#[tokio::test]
async fn a_bad_request_is_not_failed_over() {
    let h = Harness::new(&[p("first", "openai", "m1"), p("second", "anthropic", "m2")]).await;
    for stream in [false, true] {
        h.sims[0].reset();
        h.sims[1].reset();
        h.fault(0, FaultKind::Status { status: 400, retry_after: None }, 1);
        let (path, body) = request("openai", "hi", stream);
        let r = h.post(path, body).await;
        assert_eq!(r.status, 400, "{}", r.text);
        let v = r.json();
        assert_eq!(v["error"]["type"], "invalid_request_error", "OpenAI's error shape: {v}");
        assert!(v["error"]["message"].as_str().unwrap().len() > 3);
        assert_eq!(r.header("x-should-retry"), "false");
        assert_eq!(h.sims[0].total_hits(), 1);
        assert_eq!(h.sims[1].total_hits(), 0, "a client error must not reach the next target");
    }

    // Translated: the Anthropic-format first target refuses, the OpenAI-format second answers.
    h.sims[0].reset();
    h.sims[1].reset();
    h.fault(1, FaultKind::Status { status: 400, retry_after: None }, 1);
    let r = h.post("/v1/messages", common::anthropic_body("hi", false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-nines-target"), "first/m1");
    assert_eq!(
        (h.sims[0].total_hits(), h.sims[1].total_hits()),
        (1, 0),
        "the Anthropic door's own target first"
    );

    let h = Harness::new(&[p("first", "anthropic", "m1"), p("second", "openai", "m2")]).await;
    h.fault(0, FaultKind::Status { status: 400, retry_after: None }, 1);
    let r = h.post("/v1/chat/completions", common::openai_body("hi", false)).await;
    assert_eq!(r.status, 200, "a translated body's 400 fails over: {}", r.text);
    assert_eq!(r.header("x-nines-target"), "second/m2");
    assert_eq!(r.header("x-nines-attempts"), "2");

    // Every target refuses: the client's own error, in its dialect.
    h.fault(0, FaultKind::Status { status: 400, retry_after: None }, 1);
    h.fault(1, FaultKind::Status { status: 400, retry_after: None }, 1);
    let r = h.post("/v1/chat/completions", common::openai_body("hi", false)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert_eq!(r.header("x-should-retry"), "false");

    // A request the provider itself finds invalid (Anthropic's temperature range is [0, 1]), same dialect.
    h.sims[0].reset();
    h.sims[1].reset();
    let mut body = common::anthropic_body("hi", false);
    body["temperature"] = serde_json::json!(1.5);
    let r = h.post("/v1/messages", body).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let v = r.json();
    assert_eq!(v["type"], "error", "Anthropic's error shape: {v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(r.header("x-should-retry"), "false");
    assert_eq!(h.sims[1].total_hits(), 0);
}

/// When every target fails, one error in the client's dialect lists each attempt.
#[tokio::test]
async fn an_exhausted_route_explains_every_attempt() {
    let h = Harness::new(&[p("first", "anthropic", "m1"), p("second", "openai", "m2")]).await;
    h.fault(0, FaultKind::Status { status: 503, retry_after: None }, 1);
    h.fault(1, FaultKind::Reset, 1);
    let r = h.post("/v1/chat/completions", common::openai_body("hi", false)).await;
    assert_eq!(r.status, 503, "{}", r.text);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("first/m1: overload 503"), "{msg}");
    assert!(msg.contains("second/m2: "), "{msg}");
    assert_eq!(r.header("x-nines-attempts"), "2");

    // Seen from /v1/messages: Anthropic's overloaded_error, 529.
    h.fault(0, FaultKind::Status { status: 500, retry_after: None }, 1);
    h.fault(1, FaultKind::Status { status: 502, retry_after: None }, 1);
    let r = h.post("/v1/messages", common::anthropic_body("hi", true)).await;
    assert_eq!(r.status, 529, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "overloaded_error");

    // All rate limited: 429 with the shortest Retry-After.
    h.fault(0, FaultKind::Status { status: 429, retry_after: Some(7) }, 1);
    h.fault(1, FaultKind::Status { status: 429, retry_after: Some(3) }, 1);
    let r = h.post("/v1/chat/completions", common::openai_body("hi", false)).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.header("retry-after"), "3");
}

/// After the first token the client has the answer's beginning: a break that is not continued elsewhere (here the
/// route says `resume = false`; tests/resume.rs has the rest) ends the stream with an error event in its dialect,
/// and nothing that would make the cut answer look complete.
#[tokio::test]
async fn a_stream_cut_after_its_first_token_ends_with_an_error_event() {
    let providers = [p("first", "anthropic", "m1"), p("second", "openai", "m2")];
    let h = Harness::with(&providers, "resume = false", Default::default()).await;
    // The Anthropic stream: message_start, content_block_start, ping, then deltas; cut after two deltas.
    h.fault(0, FaultKind::Cut { after: 5 }, 1);
    let r = h.post("/v1/chat/completions", common::openai_body("one two three four five six", true)).await;
    assert_eq!(r.status, 200);
    let frames = r.frames();
    assert!(!r.answer_text().is_empty(), "the first tokens were delivered: {}", r.text);
    let last: serde_json::Value = serde_json::from_str(&frames.last().unwrap().data).unwrap();
    assert!(last["error"]["message"].as_str().unwrap().contains("broke"), "{last}");
    assert!(!r.text.contains("[DONE]"), "a cut stream must not look complete: {}", r.text);
    assert_eq!(h.sims[1].total_hits(), 0);

    // The same through the Anthropic door (passthrough): an `event: error`, no message_stop.
    h.fault(0, FaultKind::Cut { after: 5 }, 1);
    let r = h.post("/v1/messages", common::anthropic_body("one two three four five six", true)).await;
    let frames = r.frames();
    assert_eq!(frames.last().unwrap().event, "error", "{}", r.text);
    assert!(!r.text.contains("message_stop"));
}

/// A target may be retried before moving on; Retry-After within the cap is honoured.
#[tokio::test]
async fn retries_stay_on_a_target_before_moving_on() {
    let mut first = p("first", "anthropic", "m1");
    first.retries = 2;
    let h = Harness::with(
        &[first, p("second", "openai", "m2")],
        "[dispatch]\nbackoff_base = \"10ms\"\nbackoff_max = \"20ms\"\nretry_after_cap = \"2s\"",
        Default::default(),
    )
    .await;
    h.fault(0, FaultKind::Status { status: 529, retry_after: None }, 1);
    h.fault(0, FaultKind::Status { status: 429, retry_after: Some(1) }, 1);
    let r = h.post("/v1/messages", common::anthropic_body("hi", false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-nines-target"), "first/m1");
    assert_eq!(r.header("x-nines-attempts"), "3");
    assert_eq!(h.sims[0].total_hits(), 3);
    assert_eq!(h.sims[1].total_hits(), 0);

    // A Retry-After beyond the cap moves on at once instead of waiting.
    h.sims[0].reset();
    h.fault(0, FaultKind::Status { status: 429, retry_after: Some(60) }, 1);
    let r = h.post("/v1/messages", common::anthropic_body("hi", false)).await;
    assert_eq!(r.header("x-nines-target"), "second/m2");
    assert_eq!(h.sims[0].total_hits(), 1);
}

/// Every routed answer names its request (`x-request-id`, the id of every log line about it): served, streamed,
/// or exhausted.
#[tokio::test]
async fn every_routed_answer_carries_its_request_id() {
    let h = Harness::new(&[p("only", "openai", "m1")]).await;
    let (path, body) = request("openai", "hi", false);
    let served = h.post(path, body).await;
    let (path, body) = request("anthropic", "hi", true);
    let streamed = h.post(path, body).await;
    h.fault(0, FaultKind::Status { status: 503, retry_after: None }, 1);
    let (path, body) = request("openai", "hi", false);
    let failed = h.post(path, body).await;
    assert_eq!((served.status, streamed.status, failed.status), (200, 200, 503));
    let ids: Vec<&str> = [&served, &streamed, &failed].iter().map(|r| r.header("x-request-id")).collect();
    for id in &ids {
        assert!(id.len() == 20 && id.starts_with("req_"), "{id:?}");
        assert!(id[4..].chars().all(|c| c.is_ascii_hexdigit()), "{id:?}");
    }
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
}
