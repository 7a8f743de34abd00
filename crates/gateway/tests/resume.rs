//! Streams that survive, end to end: a stream that breaks after its first token (cut, stalled, malformed, an in-band
//! error) is continued on the route's next target and spliced into the same client stream: one start, one stop,
//! the first target's text followed by the continuation, never a duplicate. What may not be continued (a tool call
//! already delivered) ends with a clean error event and the fallback is never asked. And hedged first tokens. Each
//! scenario on a fresh gateway in front of simulated providers; the client stream is read back with the wire
//! crate's decoder for the door's dialect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is its job

mod common;

use std::time::Duration;

use common::{Harness, P, Reply, p};
use nines_sim::FaultKind;
use nines_wire::stream::Decoder;
use nines_wire::{Dialect, StopReason, StreamEvent};
use serde_json::{Value, json};
use tokio::time::Instant;

const DOORS: [Dialect; 4] =
    [Dialect::OpenAiChat, Dialect::Anthropic, Dialect::OpenAiResponses, Dialect::Gemini];
const KINDS: [&str; 4] = ["openai", "anthropic", "openai-responses", "gemini"];
const PROMPT: &str = "one two three four five six seven eight nine ten";

/// The path and streaming body of a request through `door`.
fn stream_request(door: Dialect, text: &str) -> (&'static str, Value) {
    match door {
        Dialect::OpenAiChat => (
            "/v1/chat/completions",
            json!({"model": "chat", "stream": true, "stream_options": {"include_usage": true},
                   "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]}),
        ),
        Dialect::Anthropic => (
            "/v1/messages",
            json!({"model": "chat", "max_tokens": 200, "stream": true, "system": "be brief",
                   "messages": [{"role": "user", "content": text}]}),
        ),
        Dialect::OpenAiResponses => (
            "/v1/responses",
            json!({"model": "chat", "stream": true, "instructions": "be brief", "input": text}),
        ),
        Dialect::Gemini => (
            "/v1beta/models/chat:streamGenerateContent?alt=sse",
            json!({"systemInstruction": {"parts": [{"text": "be brief"}]},
                   "contents": [{"role": "user", "parts": [{"text": text}]}]}),
        ),
    }
}

/// The client's stream, decoded as the door's dialect: its events, and the error that ended it, if any.
fn decode(door: Dialect, r: &Reply) -> (Vec<StreamEvent>, Option<String>) {
    let mut d = Decoder::new(door);
    let mut out = Vec::new();
    for f in r.frames() {
        if let Err(e) = d.push(&f.event, &f.data, &mut out) {
            return (out, Some(e.to_string()));
        }
    }
    match d.finish(&mut out) {
        Ok(()) => (out, None),
        Err(e) => (out, Some(e.to_string())),
    }
}

fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn count(events: &[StreamEvent], f: fn(&StreamEvent) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

/// The simulator path a target of `kind` (model `model`) is streamed on.
fn sim_path(kind: &str, model: &str) -> String {
    match kind {
        "openai" => "/v1/chat/completions".into(),
        "anthropic" => "/v1/messages".into(),
        "openai-responses" => "/v1/responses".into(),
        _ => format!("/v1beta/models/{model}:streamGenerateContent"),
    }
}

/// The answer the simulator named `name` gives to [`PROMPT`] with the system prompt.
fn full_answer(name: &str) -> String {
    format!("{name} says: {PROMPT} [system: be brief]")
}

async fn post_stream(h: &Harness, door: Dialect) -> Reply {
    let (path, body) = stream_request(door, PROMPT);
    h.post(path, body).await
}

/// One complete answer, spliced: exactly one start and one stop, no error, the first target's text then the
/// continuation, marked as resumed for machines.
fn assert_one_answer(door: Dialect, r: &Reply, expected: &str, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", r.text);
    let (events, error) = decode(door, r);
    assert_eq!(error, None, "{what}: the client stream ended in an error:\n{}", r.text);
    assert_eq!(text_of(&events), expected, "{what}:\n{}", r.text);
    assert_eq!(
        count(&events, |e| matches!(e, StreamEvent::Start { .. })),
        1,
        "{what}: one start\n{}",
        r.text
    );
    let finishes: Vec<&StreamEvent> =
        events.iter().filter(|e| matches!(e, StreamEvent::Finish { .. })).collect();
    assert_eq!(finishes.len(), 1, "{what}: one stop\n{}", r.text);
    if let StreamEvent::Finish { stop_reason, usage } = finishes[0] {
        assert_eq!(*stop_reason, StopReason::EndTurn, "{what}");
        assert!(usage.output_tokens > 0, "{what}: {usage:?}");
    }
    // Marked for machines with an SSE comment, except for Gemini clients (google-genai fails on a comment line).
    let marked = r.text.contains(": nines resumed");
    assert_eq!(marked, door != Dialect::Gemini, "{what}: the resumed mark:\n{}", r.text);
}

/// What the second target was asked: the delivered text, as a prefill (anthropic) or with the instruction.
fn assert_asked_to_continue(h: &Harness, kind: &str, model: &str, what: &str) {
    let body = h.sims[1]
        .last_request(&sim_path(kind, model))
        .unwrap_or_else(|| panic!("{what}: the second target was never asked"));
    let text = body.to_string();
    assert!(text.contains("first says:"), "{what}: the delivered text is not in the continuation: {text}");
    let instructed = text.contains("Your previous reply was cut off.");
    assert_eq!(
        instructed,
        kind != "anthropic",
        "{what}: prefill for anthropic, an instruction elsewhere: {text}"
    );
}

/// Every door, from every provider kind to another: a stream cut after seven events is completed by the second
/// target, in the same client stream.
#[tokio::test]
async fn a_stream_cut_mid_answer_is_completed_by_the_next_target_on_every_door_and_kind() {
    for door in DOORS {
        for (k, first_kind) in KINDS.iter().enumerate() {
            let second_kind = KINDS[(k + 1) % KINDS.len()];
            let what = format!("door {door:?}, {first_kind} cut, {second_kind} continues");
            let h = Harness::new(&[p("first", first_kind, "m1"), p("second", second_kind, "m2")]).await;
            h.fault(0, FaultKind::Cut { after: 7 }, 1);
            let r = post_stream(&h, door).await;
            assert_one_answer(door, &r, &full_answer("first"), &what);
            assert_asked_to_continue(&h, second_kind, "m2", &what);
            assert_eq!(h.sims[1].total_hits(), 1, "{what}");
        }
    }
}

/// The other ways a stream breaks: a malformed event, the provider's own in-band error event, a stall past the
/// idle limit. Each is continued elsewhere.
#[tokio::test]
async fn malformed_in_band_errors_and_stalls_are_continued_too() {
    let faults = [
        ("malformed event", FaultKind::Malformed { after: 5 }),
        ("in-band overload", FaultKind::InBandError { after: 5, status: 529 }),
        ("stall", FaultKind::Stall { after: 5, ms: 30_000 }),
    ];
    for door in [Dialect::Anthropic, Dialect::OpenAiResponses, Dialect::OpenAiChat, Dialect::Gemini] {
        // Same dialect on both sides of the door: the first target's bytes pass through until the break.
        let kind = match door {
            Dialect::Anthropic => "anthropic",
            Dialect::OpenAiResponses => "openai-responses",
            Dialect::OpenAiChat => "openai",
            Dialect::Gemini => "gemini",
        };
        for (name, fault) in &faults {
            let what = format!("door {door:?}, {kind} passthrough, {name}");
            let first = P { first_byte: "1s", ..p("first", kind, "m1") };
            let h = Harness::new(&[first, p("second", "openai", "m2")]).await;
            h.fault(0, fault.clone(), 1);
            let began = Instant::now();
            let r = post_stream(&h, door).await;
            assert_one_answer(door, &r, &full_answer("first"), &what);
            assert!(began.elapsed() < Duration::from_secs(10), "{what}: took {:?}", began.elapsed());
        }
    }
}

/// A continuation that repeats what the client already has (the last words, or the whole answer from its start)
/// is trimmed: the client never sees a word twice.
#[tokio::test]
async fn a_continuation_that_repeats_itself_is_trimmed() {
    for words in [3, 50] {
        let h = Harness::new(&[p("first", "anthropic", "m1"), p("second", "openai", "m2")]).await;
        h.fault(0, FaultKind::Cut { after: 6 }, 1);
        h.fault(1, FaultKind::Repeat { words }, 1);
        let r = post_stream(&h, Dialect::OpenAiChat).await;
        assert_one_answer(Dialect::OpenAiChat, &r, &full_answer("first"), &format!("repeat {words} words"));
    }
}

/// A target that refuses an assistant prefill with a 400 is asked again at once with the instruction form, and
/// serves the continuation.
#[tokio::test]
async fn a_refused_prefill_is_retried_as_an_instruction() {
    let h = Harness::new(&[p("first", "openai", "m1"), p("second", "anthropic", "m2")]).await;
    h.fault(0, FaultKind::Cut { after: 5 }, 1);
    h.sims[1].set_refuse_prefill(true);
    let r = post_stream(&h, Dialect::Anthropic).await;
    assert_one_answer(Dialect::Anthropic, &r, &full_answer("first"), "refused prefill");
    assert_eq!(h.sims[1].total_hits(), 2, "the prefill, refused; then the instruction");
    let asked = h.sims[1].last_request("/v1/messages").unwrap().to_string();
    assert!(asked.contains("Your previous reply was cut off."), "{asked}");

    // Remembered: the next continuation asks it with the instruction at once.
    h.fault(0, FaultKind::Cut { after: 5 }, 1);
    let r = post_stream(&h, Dialect::Anthropic).await;
    assert_one_answer(Dialect::Anthropic, &r, &full_answer("first"), "refused prefill, remembered");
    assert_eq!(h.sims[1].total_hits(), 3, "one more request, the instruction");
}

fn tool_request() -> Value {
    json!({"model": "chat", "max_tokens": 200, "stream": true,
           "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object",
                      "properties": {"command": {"type": "string"}}}}],
           "messages": [{"role": "user",
                         "content": "go [[sim:call Bash {\"command\": \"echo one two three four five six\"}]]"}]})
}

/// A stream that breaks inside a tool call's arguments, or after a complete tool call, is never continued (the
/// client may already be running the call): a clean error event, and the fallback is not asked.
#[tokio::test]
async fn a_stream_broken_in_or_after_a_tool_call_ends_in_an_error_and_the_fallback_is_not_asked() {
    for after in [3, 4, 5] {
        let h = Harness::new(&[p("first", "anthropic", "m1"), p("second", "openai", "m2")]).await;
        h.fault(0, FaultKind::Cut { after }, 1);
        let r = h.post("/v1/messages", tool_request()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let (events, error) = decode(Dialect::Anthropic, &r);
        assert!(events.iter().any(|e| matches!(e, StreamEvent::ToolCallStart { .. })), "{}", r.text);
        assert!(error.is_some(), "cut after {after}: the client must see an error event:\n{}", r.text);
        assert!(!r.text.contains(": nines resumed"), "{}", r.text);
        assert_eq!(h.sims[1].total_hits(), 0, "cut after {after}: the fallback must not be asked");
    }
}

/// `resume = false` turns resume off: the break is an error event, as before.
#[tokio::test]
async fn resume_can_be_switched_off_per_route() {
    let providers = [p("first", "anthropic", "m1"), p("second", "openai", "m2")];
    let h = Harness::with(&providers, "resume = false", Default::default()).await;
    h.fault(0, FaultKind::Cut { after: 5 }, 1);
    let r = post_stream(&h, Dialect::Anthropic).await;
    let (_, error) = decode(Dialect::Anthropic, &r);
    assert!(error.is_some(), "{}", r.text);
    assert_eq!(h.sims[1].total_hits(), 0);
}

/// Resumes per request are bounded: with `max_resumes = 1`, a continuation that breaks too ends the stream in an
/// error, and the third target is not asked.
#[tokio::test]
async fn resumes_per_request_are_bounded() {
    let providers = [p("first", "anthropic", "m1"), p("second", "openai", "m2"), p("third", "gemini", "m3")];
    let h = Harness::with(&providers, "max_resumes = 1", Default::default()).await;
    h.fault(0, FaultKind::Cut { after: 5 }, 1);
    h.fault(1, FaultKind::Cut { after: 4 }, 1);
    let r = post_stream(&h, Dialect::Anthropic).await;
    let (events, error) = decode(Dialect::Anthropic, &r);
    assert!(error.is_some(), "{}", r.text);
    assert_eq!(count(&events, |e| matches!(e, StreamEvent::Start { .. })), 1, "{}", r.text);
    assert_eq!(h.sims[2].total_hits(), 0);

    // With the default (2), the third target completes it.
    let h = Harness::new(&providers).await;
    h.fault(0, FaultKind::Cut { after: 5 }, 1);
    h.fault(1, FaultKind::Cut { after: 4 }, 1);
    let r = post_stream(&h, Dialect::Anthropic).await;
    assert_one_answer(Dialect::Anthropic, &r, &full_answer("first"), "two resumes");
}

/// A stall is detected within a few seconds of the learnt gap between events, not after the configured idle
/// timeout: after ten streams with small gaps, the limit is the learnt floor (2 s), not the 30 s timeout.
#[tokio::test]
async fn a_stall_is_detected_at_the_learnt_idle_gap() {
    let first = P { first_byte: "30s", ..p("first", "anthropic", "m1") };
    let h = Harness::new(&[first, p("second", "openai", "m2")]).await;
    for _ in 0..10 {
        let r = post_stream(&h, Dialect::Anthropic).await;
        assert_eq!(r.status, 200);
    }
    h.fault(0, FaultKind::Stall { after: 5, ms: 60_000 }, 1);
    let began = Instant::now();
    let r = post_stream(&h, Dialect::Anthropic).await;
    let took = began.elapsed();
    assert_one_answer(Dialect::Anthropic, &r, &full_answer("first"), "learnt stall");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(6), "took {took:?}");
}

/// Hedging: the first target is slow to its first token; after the hedge delay the second is started too, wins,
/// and the first is cancelled (its connection closed). Both attempts are in the ledger.
#[tokio::test]
async fn a_slow_first_token_is_hedged_and_the_loser_cancelled() {
    let first = P { first_byte: "30s", ..p("first", "anthropic", "m1") };
    let hedge = "hedge = { after = \"300ms\" }";
    let h = Harness::with(&[first, p("second", "openai", "m2")], hedge, Default::default()).await;
    h.fault(0, FaultKind::Stall { after: 1, ms: 20_000 }, 1);
    let began = Instant::now();
    let r = post_stream(&h, Dialect::Anthropic).await;
    let took = began.elapsed();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-nines-target"), "second/m2");
    assert_eq!(r.header("x-nines-attempts"), "2", "both attempts are in the ledger");
    let (events, error) = decode(Dialect::Anthropic, &r);
    assert_eq!(error, None);
    assert_eq!(text_of(&events), full_answer("second"));
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "took {took:?}");
    // The loser's upstream connection is closed.
    let closed = tokio::time::timeout(Duration::from_secs(5), h.sims[0].wait_connections(|n| *n == 0)).await;
    assert!(closed.is_ok(), "the hedged-out attempt's connection stayed open");
}

/// A target that cuts every stream after its first words is failing, not half succeeding: three broken streams (each
/// completed elsewhere for its client) open its breaker, and the next streams go straight to the second target.
#[tokio::test]
async fn a_target_that_cuts_every_stream_has_its_breaker_opened() {
    let h = Harness::new(&[p("first", "anthropic", "m1"), p("second", "openai", "m2")]).await;
    h.fault(0, FaultKind::Cut { after: 7 }, u32::MAX);
    for i in 0..6 {
        let r = post_stream(&h, Dialect::Anthropic).await;
        let expected = if i < 3 { full_answer("first") } else { full_answer("second") };
        let (events, error) = decode(Dialect::Anthropic, &r);
        assert_eq!(error, None, "request {i}: {}", r.text);
        assert_eq!(text_of(&events), expected, "request {i}");
    }
    assert_eq!(h.sims[0].total_hits(), 3, "three cuts open the breaker");
    assert_eq!(h.sims[1].total_hits(), 6);
}

/// The Responses store keeps the whole spliced answer, under the id the client saw, whether the first target's
/// bytes were passed through (openai-responses) or translated (anthropic).
#[tokio::test]
async fn the_responses_store_keeps_the_whole_spliced_answer() {
    for first_kind in ["openai-responses", "anthropic"] {
        let h = Harness::new(&[p("first", first_kind, "m1"), p("second", "openai", "m2")]).await;
        h.fault(0, FaultKind::Cut { after: 7 }, 1);
        let r = post_stream(&h, Dialect::OpenAiResponses).await;
        assert_one_answer(Dialect::OpenAiResponses, &r, &full_answer("first"), first_kind);
        let ids: Vec<String> = r
            .frames()
            .iter()
            .filter_map(|f| serde_json::from_str::<Value>(&f.data).ok())
            .filter_map(|v| v.pointer("/response/id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        assert!(ids.len() >= 2 && ids.iter().all(|i| *i == ids[0]), "{first_kind}: one response id: {ids:?}");
        // The message item keeps the id it was announced with, across the splice.
        let item_ids: Vec<String> = r
            .frames()
            .iter()
            .filter_map(|f| serde_json::from_str::<Value>(&f.data).ok())
            .filter(|v| v["output_index"] == 0)
            .filter_map(|v| {
                v["item_id"].as_str().or(v.pointer("/item/id").and_then(Value::as_str)).map(str::to_owned)
            })
            .collect();
        assert!(item_ids.len() >= 4, "{first_kind}: {item_ids:?}");
        assert!(item_ids.iter().all(|i| *i == item_ids[0]), "{first_kind}: one item id: {item_ids:?}");
        let stored = h.client.get(format!("{}/v1/responses/{}", h.base, ids[0])).send().await.unwrap();
        let stored = Reply::read(stored).await;
        assert_eq!(stored.status, 200, "{first_kind}: {}", stored.text);
        let text: String = stored.json()["output"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["text"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(text, full_answer("first"), "{first_kind}: the stored answer");
    }
}

/// An upstream that breaks after it gave its stop reason (only its closing events are missing) delivered a complete
/// answer: the client's stream is completed as it is, with no continuation and no error.
#[tokio::test]
async fn a_break_after_the_stop_reason_completes_the_answer_without_a_continuation() {
    for door in [Dialect::Anthropic, Dialect::OpenAiChat] {
        let kind = if door == Dialect::Anthropic { "anthropic" } else { "openai" };
        let h = Harness::new(&[p("first", kind, "m1"), p("second", "openai", "m2")]).await;
        // The whole stream's events, passed through: the last is `message_stop` or `[DONE]`; with include_usage the
        // OpenAI stream's last three are the finish_reason chunk, the usage chunk and `[DONE]`.
        let whole = post_stream(&h, door).await;
        let n = whole.frames().len();
        let missing = if door == Dialect::Anthropic { 1 } else { 2 };
        h.fault(0, FaultKind::Cut { after: n - missing }, 1);
        let r = post_stream(&h, door).await;
        let (events, error) = decode(door, &r);
        assert_eq!(error, None, "{door:?}: {}", r.text);
        assert_eq!(text_of(&events), full_answer("first"), "{door:?}");
        assert_eq!(count(&events, |e| matches!(e, StreamEvent::Finish { .. })), 1, "{door:?}: {}", r.text);
        assert!(!r.text.contains(": nines resumed"), "{door:?}");
        assert_eq!(h.sims[1].total_hits(), 0, "{door:?}: nothing to continue");
    }
}

/// Structured output is not continued (the continuation would be a second JSON document): a clean error.
#[tokio::test]
async fn structured_output_is_not_continued() {
    let h = Harness::new(&[p("first", "openai", "m1"), p("second", "anthropic", "m2")]).await;
    h.fault(0, FaultKind::Cut { after: 4 }, 1);
    let (path, mut body) = stream_request(Dialect::OpenAiChat, PROMPT);
    body["response_format"] = json!({"type": "json_object"});
    let r = h.post(path, body).await;
    let (_, error) = decode(Dialect::OpenAiChat, &r);
    assert!(error.is_some(), "{}", r.text);
    assert_eq!(h.sims[1].total_hits(), 0);
}

/// A stream's breaker trial is judged by how the stream ends, not by its first token: a half-open target whose
/// trial stream is cut mid-answer reopens (for longer), it does not close. The client's answer is still completed.
#[tokio::test]
async fn a_stream_trial_cut_mid_answer_reopens_the_breaker() {
    use nines::health::breaker::Transition;
    let h = Harness::with(
        &[p("first", "anthropic", "m1"), p("second", "openai", "m2")],
        "[health]\ncooldown = \"300ms\"\ncooldown_max = \"5s\"\nramp = \"0s\"",
        Default::default(),
    )
    .await;
    let mut changes = h.app.state.runtime.recorder.subscribe();
    h.fault(0, FaultKind::Cut { after: 7 }, u32::MAX);
    for _ in 0..3 {
        let r = post_stream(&h, Dialect::Anthropic).await;
        assert_eq!(decode(Dialect::Anthropic, &r).1, None, "{}", r.text);
    }
    let opened = changes.try_recv().expect("three broken streams open the breaker");
    assert!(matches!(opened.transition, Transition::Opened { .. }), "{:?}", opened.transition);
    // The cooldown (300 ms ± 20%) passes; the next stream is the trial, and it is cut too.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = post_stream(&h, Dialect::Anthropic).await;
    assert_one_answer(Dialect::Anthropic, &r, &full_answer("first"), "the trial's client");
    assert_eq!(h.sims[0].total_hits(), 4, "one trial");
    let verdict = tokio::time::timeout(Duration::from_secs(5), changes.recv()).await.unwrap().unwrap();
    assert!(matches!(verdict.transition, Transition::Reopened { .. }), "{:?}", verdict.transition);
}
