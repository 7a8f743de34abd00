//! OpenAI Responses stream conformance: the published event streams decode; every dialect's stream re-encodes for a
//! Responses client as the event sequence the reference defines (every event with the fields the openai SDK's
//! event types require, `sequence_number` counting from 0, items opened, filled and closed in order); the final
//! `response.completed` equals a whole answer of the same content; errors end a stream the way the SDK raises;
//! reasoning signatures never cross dialects.
//!
//! Fixture sources (<https://platform.openai.com/docs/api-reference/responses-streaming>):
//! - responses/stream.sse: the "Streaming" example of "Create a model response"
//!   (<https://platform.openai.com/docs/api-reference/responses/create>), its `...` replaced by the text deltas that
//!   make up the final text, and `sequence_number` (from 0) added to every event, as the current reference and the
//!   SDK's event types require (the published example predates the field).
//! - responses/stream_function_call.sse: the output events of the function-calling guide's "Streaming" section
//!   (<https://platform.openai.com/docs/guides/function-calling#streaming>), framed as SSE with `event:` lines,
//!   `sequence_number` added, and the `response.created`, `response.in_progress` and `response.completed` events
//!   the guide leaves out added in the reference's form (usage numbers made up). The guide's `call_id` differs
//!   between `output_item.added` (`call_1234xyz`) and `output_item.done` (`call_2345abc`); kept as published: the
//!   decoder takes the id of `output_item.added`, where the call begins.
//! - the reasoning summary events below: the reference's `response.reasoning_summary_*` examples (ids and first
//!   summary from them; a second summary part added to show how parts are joined), with an `encrypted_content`
//!   placeholder on the done item.
//!
//! Where Responses differs: refusal deltas arrive as text and end the answer as `ContentFilter`; reasoning shows as a
//! single summary part; an `error` event follows `response.failed` because the openai SDKs raise only for an event
//! with a top-level `error` object.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use common::{ALL, check_response_object, ctx, decode_sse, encode_events, fixture, frames, text_of};
use nines_wire::error::ErrorType;
use nines_wire::stream::{Decoder, Encoder};
use nines_wire::{
    ChatResponse, Dialect, EncodeCtx, Part, Signature, StopReason, StreamError, StreamEvent, Thinking,
    ToolCall, Usage,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const R: Dialect = Dialect::OpenAiResponses;
const ENCRYPTED: &str = "gAAAAABoEncryptedReasoningFixture==";

fn usage(input: u64, output: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
}

fn decoded(d: Dialect, path: &str) -> Vec<StreamEvent> {
    let out = decode_sse(d, &fixture(path));
    out.end.as_ref().unwrap_or_else(|e| panic!("{path}: {e}"));
    out.events
}

fn encode_with(ctx: EncodeCtx, events: &[StreamEvent]) -> String {
    let mut enc = Encoder::new(R, ctx, false);
    let mut out = Vec::new();
    for ev in events {
        enc.push(ev, &mut out);
    }
    String::from_utf8(out).unwrap()
}

/// The fields each event type requires besides `type` and `sequence_number` (openai-python
/// `types/responses/response_*_event.py`).
fn required(kind: &str) -> &'static [&'static str] {
    match kind {
        "response.created"
        | "response.in_progress"
        | "response.completed"
        | "response.incomplete"
        | "response.failed" => &["response"],
        "response.output_item.added" | "response.output_item.done" => &["item", "output_index"],
        "response.content_part.added" | "response.content_part.done" => {
            &["content_index", "item_id", "output_index", "part"]
        }
        "response.output_text.delta" => &["content_index", "delta", "item_id", "logprobs", "output_index"],
        "response.output_text.done" => &["content_index", "item_id", "logprobs", "output_index", "text"],
        "response.reasoning_summary_part.added" | "response.reasoning_summary_part.done" => {
            &["item_id", "output_index", "part", "summary_index"]
        }
        "response.reasoning_summary_text.delta" => &["delta", "item_id", "output_index", "summary_index"],
        "response.reasoning_summary_text.done" => &["item_id", "output_index", "summary_index", "text"],
        "response.function_call_arguments.delta" => &["delta", "item_id", "output_index"],
        "response.function_call_arguments.done" => &["arguments", "item_id", "output_index"],
        "error" => &["message"],
        other => panic!("an event type the encoder should not write: {other}"),
    }
}

/// Check an encoded Responses stream against the reference and return its final Response: event names equal the
/// data's `type`, `sequence_number` counts from 0, every event has its required fields, the stream opens with
/// `response.created` and `response.in_progress` and ends with one terminal event, every item is added, filled
/// and done in order, what the deltas build is what the `*.done` events and the final Response say.
fn check_responses(sse_text: &str) -> Value {
    let fs = frames(sse_text);
    assert!(fs.len() >= 3, "{sse_text}");
    let mut items: Vec<(Value, String, Option<Value>)> = Vec::new(); // (added item, accumulated, done item)
    for (i, f) in fs.iter().enumerate() {
        let d = f.data.as_ref().expect("no [DONE] in Responses streams");
        assert_eq!(d["type"], f.event.as_str(), "event name and data type agree: {}", f.raw);
        assert_eq!(d["sequence_number"], i, "sequence numbers count every event from 0: {}", f.raw);
        for key in required(&f.event) {
            assert!(d.get(*key).is_some(), "{} without `{key}`: {}", f.event, f.raw);
        }
        let item_at = |items: &Vec<(Value, String, Option<Value>)>| -> usize {
            let idx = d["output_index"].as_u64().unwrap() as usize;
            let (added, _, done) = &items[idx];
            assert!(
                done.is_none() || f.event == "response.output_item.done",
                "event after its item is done: {}",
                f.raw
            );
            if let Some(id) = d.get("item_id") {
                assert_eq!(id, &added["id"], "item_id names the item at output_index: {}", f.raw);
            }
            idx
        };
        match f.event.as_str() {
            "response.created" | "response.in_progress" => {
                assert!(i < 2, "{}", f.raw);
                check_response_object(&d["response"], "in_progress");
                assert_eq!(d["response"]["output"], json!([]));
            }
            "response.output_item.added" => {
                assert_eq!(d["output_index"], items.len(), "items are added in order: {}", f.raw);
                assert_eq!(d["item"]["status"], "in_progress");
                items.push((d["item"].clone(), String::new(), None));
            }
            "response.output_text.delta"
            | "response.reasoning_summary_text.delta"
            | "response.function_call_arguments.delta" => {
                let idx = item_at(&items);
                items[idx].1.push_str(d["delta"].as_str().unwrap());
            }
            "response.output_text.done" | "response.reasoning_summary_text.done" => {
                let idx = item_at(&items);
                assert_eq!(d["text"].as_str().unwrap(), items[idx].1, "{}", f.raw);
            }
            "response.function_call_arguments.done" => {
                let idx = item_at(&items);
                assert_eq!(d["arguments"].as_str().unwrap(), items[idx].1, "{}", f.raw);
                assert_eq!(d["name"], items[idx].0["name"]);
            }
            "response.output_item.done" => {
                let idx = item_at(&items);
                let (added, acc, done) = &mut items[idx];
                assert!(done.is_none(), "an item is done once: {}", f.raw);
                assert_eq!((&d["item"]["id"], &d["item"]["type"]), (&added["id"], &added["type"]));
                let built = match d["item"]["type"].as_str().unwrap() {
                    "message" => d["item"]["content"][0]["text"].as_str().unwrap().to_owned(),
                    "function_call" => d["item"]["arguments"].as_str().unwrap().to_owned(),
                    _ => d["item"]["summary"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s["text"].as_str().unwrap())
                        .collect(),
                };
                assert_eq!(&built, acc, "the done item holds what its deltas built: {}", f.raw);
                *done = Some(d["item"].clone());
            }
            "response.completed" | "response.incomplete" => {
                assert_eq!(i, fs.len() - 1, "the terminal event is the last");
                let status = if f.event == "response.completed" { "completed" } else { "incomplete" };
                check_response_object(&d["response"], status);
                let done: Vec<Value> =
                    items.iter().map(|(_, _, d)| d.clone().expect("every item is done")).collect();
                assert_eq!(d["response"]["output"], Value::Array(done), "the Response lists the done items");
                return d["response"].clone();
            }
            _ => {}
        }
    }
    panic!("no response.completed or response.incomplete: {sse_text}")
}

fn final_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .map(|i| i["content"][0]["text"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// The published streams decode.

#[test]
fn published_text_stream_decodes() {
    let events = decoded(R, "responses/stream.sse");
    assert_eq!(
        events[0],
        StreamEvent::Start {
            id: "resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654".into(),
            model: "gpt-4.1-2025-04-14".into(),
            usage: Usage::default()
        }
    );
    assert_eq!(text_of(&events), "Hi there! How can I assist you today?");
    assert_eq!(events.len(), 12, "Start, ten deltas, Finish: {events:?}");
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Finish { stop_reason: StopReason::EndTurn, usage: usage(37, 11) })
    );
}

#[test]
fn published_function_call_stream_decodes() {
    let events = decoded(R, "responses/stream_function_call.sse");
    assert_eq!(
        events[1],
        StreamEvent::ToolCallStart { index: 0, id: "call_1234xyz".into(), name: "get_weather".into() }
    );
    let args: String = events
        .iter()
        .filter_map(|e| {
            if let StreamEvent::ToolCallArgs { index: 0, json } = e { Some(json.as_str()) } else { None }
        })
        .collect();
    assert_eq!(args, r#"{"location":"Paris, France"}"#);
    assert_eq!(events.len(), 2 + 7 + 1, "the done events repeat what the deltas gave: {events:?}");
    let finish = StreamEvent::Finish {
        stop_reason: StopReason::ToolUse,
        usage: Usage { input_tokens: 72, output_tokens: 18, ..Usage::default() },
    };
    assert_eq!(events.last(), Some(&finish));
}

// ---------------------------------------------------------------------------------------------------------------
// The published streams translate, both ways.

#[test]
fn every_published_stream_reaches_a_responses_client() {
    for (d, path, text, status) in [
        (Dialect::Anthropic, "anthropic/stream.sse", "Hello!", "completed"),
        (Dialect::OpenAiChat, "openai/stream.sse", "Hello", "completed"),
        (Dialect::OpenAiChat, "openai/stream_usage.sse", "Hello", "incomplete"),
        (
            Dialect::Gemini,
            "gemini/stream.sse",
            "The image displays the following materials:\n\n*   **Wood:** The accordion and the violin are primarily made of wood.",
            "completed",
        ),
        (R, "responses/stream.sse", "Hi there! How can I assist you today?", "completed"),
        (R, "responses/stream_function_call.sse", "", "completed"),
    ] {
        let events = decoded(d, path);
        let wire = encode_events(R, &events, false);
        let response = check_responses(&wire);
        assert_eq!(response["status"], status, "{path}");
        assert_eq!(final_text(&response), text, "{path}");
        let Some(StreamEvent::Finish { usage, .. }) = events.last() else { panic!() };
        assert_eq!(response["usage"]["input_tokens"], usage.input_tokens, "{path}");
        assert_eq!(response["usage"]["output_tokens"], usage.output_tokens, "{path}");
        let back = decode_sse(R, &wire);
        assert!(back.end.is_ok(), "{path}: {:?}", back.end);
        assert_eq!(back.text(), text, "{path}");
    }
    let response =
        check_responses(&encode_events(R, &decoded(R, "responses/stream_function_call.sse"), false));
    let call = &response["output"][0];
    assert_eq!((&call["call_id"], &call["name"]), (&json!("call_1234xyz"), &json!("get_weather")));
    assert_eq!(call["arguments"], r#"{"location":"Paris, France"}"#);
}

#[test]
fn published_responses_streams_reach_every_other_client() {
    let events = decoded(R, "responses/stream.sse");
    for d in [Dialect::Anthropic, Dialect::OpenAiChat, Dialect::Gemini] {
        let back = decode_sse(d, &encode_events(d, &events, true));
        assert!(back.end.is_ok(), "{d}: {:?}", back.end);
        assert_eq!(back.text(), "Hi there! How can I assist you today?", "{d}");
        assert_eq!(back.finish(), (&StopReason::EndTurn, &usage(37, 11)), "{d}");
    }
    let events = decoded(R, "responses/stream_function_call.sse");
    for d in [Dialect::Anthropic, Dialect::OpenAiChat] {
        let back = decode_sse(d, &encode_events(d, &events, true));
        assert_eq!(back.finish().0, &StopReason::ToolUse, "{d}");
        assert!(
            back.events.contains(&StreamEvent::ToolCallStart {
                index: 0,
                id: "call_1234xyz".into(),
                name: "get_weather".into()
            }),
            "{d}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The final Response equals the whole answer.

/// The whole answer a stream of canonical events amounts to (what the gateway records).
fn collect(events: &[StreamEvent]) -> ChatResponse {
    let mut r = ChatResponse {
        id: String::new(),
        model: String::new(),
        content: Vec::new(),
        stop_reason: StopReason::EndTurn,
        usage: Usage::default(),
    };
    let mut calls: HashMap<u32, usize> = HashMap::new();
    for ev in events {
        match ev {
            StreamEvent::Start { id, model, .. } => (r.id, r.model) = (id.clone(), model.clone()),
            StreamEvent::TextDelta(t) => match r.content.last_mut() {
                Some(Part::Text(s)) => s.push_str(t),
                _ => r.content.push(Part::Text(t.clone())),
            },
            StreamEvent::ThinkingDelta(t) => match r.content.last_mut() {
                Some(Part::Thinking(th)) if th.signature.is_none() => th.text.push_str(t),
                _ => r.content.push(Part::Thinking(Thinking { text: t.clone(), signature: None })),
            },
            StreamEvent::ThinkingSignature(s) => match r.content.last_mut() {
                Some(Part::Thinking(th)) if th.signature.is_none() => th.signature = Some(s.clone()),
                _ => r
                    .content
                    .push(Part::Thinking(Thinking { text: String::new(), signature: Some(s.clone()) })),
            },
            StreamEvent::ToolCallStart { index, id, name } => {
                calls.insert(*index, r.content.len());
                r.content.push(Part::ToolCall(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                }));
            }
            StreamEvent::ToolCallArgs { index, json } => {
                if let Some(Part::ToolCall(c)) = calls.get(index).and_then(|&i| r.content.get_mut(i)) {
                    c.arguments.push_str(json);
                }
            }
            StreamEvent::Unsupported(_) => {}
            StreamEvent::Finish { stop_reason, usage } => {
                (r.stop_reason, r.usage) = (stop_reason.clone(), *usage)
            }
        }
    }
    r
}

#[derive(Clone, Debug)]
enum Op {
    Text(String),
    Think(String),
    Sig,
    Call(String, String),
    Args(prop::sample::Index, String),
    Other,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => "[a-z \\n\"]{0,6}".prop_map(Op::Text),
        2 => "[a-z ]{0,6}".prop_map(Op::Think),
        1 => Just(Op::Sig),
        1 => ("[a-z]{1,5}", "[{}a-z\":]{0,6}").prop_map(|(n, a)| Op::Call(n, a)),
        2 => (any::<prop::sample::Index>(), "[{}a-z\":]{0,6}").prop_map(|(i, a)| Op::Args(i, a)),
        1 => Just(Op::Other),
    ]
}

/// The canonical events of `ops`; reasoning is signed by a Responses provider when `ours`, else by Anthropic.
fn events_of(id: &str, ops: &[Op], ours: bool, stop: StopReason, usage: Usage) -> Vec<StreamEvent> {
    let mut events = vec![StreamEvent::Start { id: id.into(), model: "up".into(), usage: Usage::default() }];
    let mut calls = 0u32;
    for op in ops {
        let ev = match op {
            Op::Text(t) => StreamEvent::TextDelta(t.clone()),
            Op::Think(t) => StreamEvent::ThinkingDelta(t.clone()),
            Op::Sig => StreamEvent::ThinkingSignature(if ours {
                Signature {
                    origin: R,
                    value: format!(r#"{{"id":"rs_up","encrypted_content":"{ENCRYPTED}"}}"#),
                }
            } else {
                Signature { origin: Dialect::Anthropic, value: "EqQBCgIYAhIM".into() }
            }),
            Op::Call(name, args) => {
                calls += 1;
                events.push(StreamEvent::ToolCallStart {
                    index: calls - 1,
                    id: format!("call_{calls}"),
                    name: name.clone(),
                });
                StreamEvent::ToolCallArgs { index: calls - 1, json: args.clone() }
            }
            Op::Args(i, json) if calls > 0 => {
                StreamEvent::ToolCallArgs { index: i.index(calls as usize) as u32, json: json.clone() }
            }
            Op::Args(..) | Op::Other => StreamEvent::Unsupported("web_search_call".into()),
        };
        events.push(ev);
    }
    events.push(StreamEvent::Finish { stop_reason: stop, usage });
    events
}

proptest! {
    /// The stream's final Response is the whole answer of the same content (ids included), and the stream is well
    /// formed whatever the order of text, reasoning, signatures and interleaved tool-call arguments. The context
    /// names the provider that signed the reasoning, as the gateway's does.
    #[test]
    fn the_final_response_equals_the_whole_answer(
        ops in prop::collection::vec(op(), 0..14),
        ours in any::<bool>(),
        stop in prop_oneof![Just(StopReason::EndTurn), Just(StopReason::ToolUse), Just(StopReason::MaxTokens), Just(StopReason::ContentFilter)],
        input in 0..1000u64,
        output in 0..1000u64,
        gateway_id in any::<bool>(),
    ) {
        let upstream = if ours { Some(R) } else { Some(Dialect::Anthropic) };
        let c = EncodeCtx { response_id: gateway_id.then(|| "resp_gw1".to_owned()), upstream, ..ctx() };
        let events = events_of("up-1", &ops, ours, stop, usage(input, output));
        let wire = encode_with(c.clone(), &events);
        let streamed = check_responses(&wire);
        let whole = common::json(&R.encode_response(&collect(&events), &c));
        prop_assert_eq!(&streamed, &whole, "{}", wire);
        prop_assert!(!wire.contains("EqQBCgIYAhIM"), "another provider's signature leaked: {}", wire);
    }
}

#[test]
fn interleaved_parallel_calls_and_late_arguments_are_kept() {
    let events = [
        StreamEvent::Start { id: "x".into(), model: "m".into(), usage: Usage::default() },
        StreamEvent::ToolCallStart { index: 0, id: "call_a".into(), name: "get_weather".into() },
        StreamEvent::ToolCallStart { index: 1, id: "call_b".into(), name: "get_time".into() },
        StreamEvent::ToolCallArgs { index: 0, json: "{\"city\":".into() },
        StreamEvent::ToolCallArgs { index: 1, json: "{\"tz\":\"CET\"}".into() },
        StreamEvent::TextDelta("Checking.".into()),
        StreamEvent::ToolCallArgs { index: 0, json: "\"Paris\"}".into() },
        StreamEvent::Finish { stop_reason: StopReason::ToolUse, usage: Usage::default() },
    ];
    let response = check_responses(&encode_events(R, &events, false));
    let out = response["output"].as_array().unwrap();
    assert_eq!(out[0]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(out[1]["arguments"], "{\"tz\":\"CET\"}");
    assert_eq!(out[2]["content"][0]["text"], "Checking.");
    assert_eq!(response["id"], "resp_x");
    let ids: Vec<&str> = out.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["fc_0_x", "fc_1_x", "msg_2_x"]);
}

#[test]
fn a_stream_without_start_or_content_is_still_well_formed() {
    let text_first = [
        StreamEvent::TextDelta("Hi".into()),
        StreamEvent::Finish { stop_reason: StopReason::EndTurn, usage: Usage::default() },
    ];
    let r = check_responses(&encode_events(R, &text_first, false));
    assert_eq!(final_text(&r), "Hi");
    let empty = [StreamEvent::Finish { stop_reason: StopReason::MaxTokens, usage: usage(3, 0) }];
    let wire = encode_events(R, &empty, false);
    let r = check_responses(&wire);
    assert_eq!(
        (&r["status"], &r["incomplete_details"]["reason"]),
        (&json!("incomplete"), &json!("max_output_tokens"))
    );
    assert_eq!(
        frames(&wire).iter().map(|f| f.event.as_str()).collect::<Vec<_>>(),
        ["response.created", "response.in_progress", "response.incomplete"]
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Reasoning.

fn reasoning_stream() -> String {
    let id = "rs_6806bfca0b2481918a5748308061a2600d3ce51bdffd5476";
    let evs = [
        json!({"type": "response.created", "response": {"id": "resp_1", "object": "response", "model": "o4-mini", "status": "in_progress", "output": []}}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": {"id": id, "type": "reasoning", "summary": []}}),
        json!({"type": "response.reasoning_summary_part.added", "item_id": id, "output_index": 0, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
        json!({"type": "response.reasoning_summary_text.delta", "item_id": id, "output_index": 0, "summary_index": 0, "delta": "**Responding to a greeting**\n\nThe user just said, \"Hello!\""}),
        json!({"type": "response.reasoning_summary_text.delta", "item_id": id, "output_index": 0, "summary_index": 0, "delta": " I'll greet them back."}),
        json!({"type": "response.reasoning_summary_part.added", "item_id": id, "output_index": 0, "summary_index": 1, "part": {"type": "summary_text", "text": ""}}),
        json!({"type": "response.reasoning_summary_text.delta", "item_id": id, "output_index": 0, "summary_index": 1, "delta": "**Offering help**"}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": {"id": id, "type": "reasoning", "encrypted_content": ENCRYPTED,
               "summary": [{"type": "summary_text", "text": "**Responding to a greeting**\n\nThe user just said, \"Hello!\" I'll greet them back."}, {"type": "summary_text", "text": "**Offering help**"}]}}),
        json!({"type": "response.output_item.added", "output_index": 1, "item": {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}}),
        json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0, "delta": "Hello! How can I help?"}),
        json!({"type": "response.completed", "response": {"id": "resp_1", "object": "response", "model": "o4-mini", "status": "completed", "output": [],
               "usage": {"input_tokens": 9, "output_tokens": 70, "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 79}}}),
    ];
    evs.iter()
        .enumerate()
        .map(|(i, e)| {
            let mut e = e.clone();
            e["sequence_number"] = json!(i);
            format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap())
        })
        .collect()
}

#[test]
fn reasoning_summaries_and_encrypted_content_decode() {
    let d = decode_sse(R, &reasoning_stream());
    d.end.as_ref().unwrap();
    let thinking: String = d
        .events
        .iter()
        .filter_map(|e| if let StreamEvent::ThinkingDelta(t) = e { Some(t.as_str()) } else { None })
        .collect();
    assert_eq!(
        thinking,
        "**Responding to a greeting**\n\nThe user just said, \"Hello!\" I'll greet them back.\n\n**Offering help**",
        "summary parts joined as decode_response joins them"
    );
    let sig = Signature {
        origin: R,
        value: format!(
            r#"{{"id":"rs_6806bfca0b2481918a5748308061a2600d3ce51bdffd5476","encrypted_content":"{ENCRYPTED}"}}"#
        ),
    };
    assert!(d.events.contains(&StreamEvent::ThinkingSignature(sig)));
    let Some(StreamEvent::Finish { usage, .. }) = d.events.last() else { panic!() };
    assert_eq!(usage.reasoning_tokens, 64);

    // Back to a Responses client, the encrypted content goes with the reasoning item.
    let r = check_responses(&encode_with(EncodeCtx { upstream: Some(R), ..ctx() }, &d.events));
    assert_eq!(r["output"][0]["type"], "reasoning");
    assert_eq!(r["output"][0]["encrypted_content"], ENCRYPTED);
    assert_eq!(r["output"][0]["summary"][0]["text"], json!(thinking));
    // Never to any other client.
    for client in [Dialect::Anthropic, Dialect::OpenAiChat, Dialect::Gemini] {
        for upstream in [None, Some(R), Some(client)] {
            let mut enc = Encoder::new(client, EncodeCtx { upstream, ..ctx() }, true);
            let mut out = Vec::new();
            for ev in &d.events {
                enc.push(ev, &mut out);
            }
            let out = String::from_utf8(out).unwrap();
            assert!(!out.contains(ENCRYPTED) && !out.contains("rs_6806"), "{client} ({upstream:?}): {out}");
        }
    }
}

#[test]
fn other_providers_signed_thinking_never_reaches_a_responses_client() {
    let events = [
        StreamEvent::Start { id: "msg_1".into(), model: "claude".into(), usage: Usage::default() },
        StreamEvent::ThinkingDelta("Let me think.".into()),
        StreamEvent::ThinkingSignature(Signature {
            origin: Dialect::Anthropic,
            value: "EqQBCgIYAhIM".into(),
        }),
        StreamEvent::TextDelta("4".into()),
        StreamEvent::Finish { stop_reason: StopReason::EndTurn, usage: Usage::default() },
    ];
    let from_anthropic = encode_with(EncodeCtx { upstream: Some(Dialect::Anthropic), ..ctx() }, &events);
    let r = check_responses(&from_anthropic);
    assert_eq!(r["output"].as_array().unwrap().len(), 1, "no reasoning item: {from_anthropic}");
    assert!(!from_anthropic.contains("Let me think") && !from_anthropic.contains("EqQBCgIYAhIM"));
    // Upstream unknown: the text may show (it was streamed before any signature), the signature never.
    let unknown = encode_with(ctx(), &events);
    let r = check_responses(&unknown);
    assert_eq!(r["output"][0]["summary"][0]["text"], "Let me think.");
    assert!(r["output"][0].get("encrypted_content").is_none());
    assert!(!unknown.contains("EqQBCgIYAhIM"));
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding what other servers send.

fn sse_of(events: &[Value]) -> String {
    events.iter().map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap())).collect()
}

#[test]
fn answers_given_whole_at_the_end_decode_too() {
    let output = json!([
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Hm."}], "encrypted_content": "e"},
        {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": "Hi", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"}]);
    let d = decode_sse(
        R,
        &sse_of(&[
            json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_9", "model": "g", "output": []}}),
            json!({"type": "response.completed", "sequence_number": 1, "response": {"id": "resp_9", "model": "g", "status": "completed", "output": output}}),
        ]),
    );
    d.end.as_ref().unwrap();
    assert_eq!(
        d.events[1..6],
        [
            StreamEvent::ThinkingDelta("Hm.".into()),
            StreamEvent::ThinkingSignature(Signature {
                origin: R,
                value: r#"{"id":"rs_1","encrypted_content":"e"}"#.into()
            }),
            StreamEvent::TextDelta("Hi".into()),
            StreamEvent::ToolCallStart { index: 0, id: "call_1".into(), name: "f".into() },
            StreamEvent::ToolCallArgs { index: 0, json: "{}".into() },
        ]
    );
    assert_eq!(d.events[6], StreamEvent::Unsupported("web_search_call".into()));
    assert_eq!(d.finish().0, &StopReason::ToolUse);

    // Items done without deltas, arguments given only at their done event, a refusal.
    let d = decode_sse(
        R,
        &sse_of(&[
            json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": ""}}),
            json!({"type": "response.function_call_arguments.done", "output_index": 0, "item_id": "fc_1", "arguments": "{\"a\":1}"}),
            json!({"type": "response.output_item.done", "output_index": 1, "item": {"type": "message", "id": "m", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]}}),
            json!({"type": "response.refusal.delta", "output_index": 2, "item_id": "m2", "content_index": 0, "delta": "I can't."}),
            json!({"type": "response.completed", "response": {"id": "resp_9", "status": "completed", "output": []}}),
        ]),
    );
    d.end.as_ref().unwrap();
    assert!(d.events.contains(&StreamEvent::ToolCallArgs { index: 0, json: "{\"a\":1}".into() }));
    assert_eq!(d.text(), "xI can't.");
    assert_eq!(d.finish().0, &StopReason::ToolUse, "tool calls come before the refusal");
    let d = decode_sse(
        R,
        &sse_of(&[
            json!({"type": "response.refusal.delta", "output_index": 0, "item_id": "m", "content_index": 0, "delta": "No."}),
            json!({"type": "response.incomplete", "response": {"id": "r", "status": "incomplete", "incomplete_details": {"reason": "content_filter"}, "output": []}}),
        ]),
    );
    assert_eq!((d.text().as_str(), d.finish().0), ("No.", &StopReason::ContentFilter));
}

#[test]
fn in_band_errors_end_the_stream_with_their_code() {
    let head: String = nines_wire::sse::parse(&fixture("responses/stream.sse"))
        .iter()
        .take(6)
        .map(|f| format!("event: {}\ndata: {}\n\n", f.event, f.data))
        .collect();
    // The reference's `error` event example, and a failed Response.
    let error = format!(
        "{head}event: error\ndata: {}\n\n",
        json!({"type": "error", "code": "ERR_SOMETHING", "message": "Something went wrong", "param": null, "sequence_number": 6})
    );
    let failed = format!(
        "{head}event: response.failed\ndata: {}\n\n",
        json!({"type": "response.failed", "sequence_number": 6,
        "response": {"id": "resp_1", "object": "response", "status": "failed", "output": [], "error": {"code": "server_error", "message": "The model failed"}}})
    );
    for (text, kind, message) in
        [(error, "ERR_SOMETHING", "Something went wrong"), (failed, "server_error", "The model failed")]
    {
        let d = decode_sse(R, &text);
        assert_eq!(d.text(), "Hi there", "content before the error was delivered");
        match d.end {
            Err(StreamError::Upstream { kind: k, message: m }) => {
                assert_eq!((k.as_str(), m.as_str()), (kind, message))
            }
            other => panic!("{other:?}"),
        }
    }
    let mut dec = Decoder::new(R);
    assert!(matches!(dec.push("response.function_call_arguments.delta", r#"{"type":"response.function_call_arguments.delta","item_id":"fc_9","output_index":4,"delta":"{"}"#, &mut Vec::new()), Err(StreamError::Malformed(_))));
    assert!(matches!(dec.push("response.created", "[1]", &mut Vec::new()), Err(StreamError::Malformed(_))));
}

#[test]
fn encoder_error_fails_the_response_and_makes_the_sdk_raise() {
    for (kind, code) in [
        (ErrorType::RateLimited, "rate_limit_exceeded"),
        (ErrorType::Overloaded, "server_error"),
        (ErrorType::InvalidRequest, "invalid_prompt"),
    ] {
        let mut enc = Encoder::new(R, ctx(), false);
        let mut out = Vec::new();
        enc.push(
            &StreamEvent::Start { id: "x".into(), model: "m".into(), usage: Usage::default() },
            &mut out,
        );
        enc.push(&StreamEvent::TextDelta("partial".into()), &mut out);
        enc.error(kind, "Overloaded", &mut out);
        enc.push(
            &StreamEvent::Finish { stop_reason: StopReason::EndTurn, usage: Usage::default() },
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        let fs = frames(&text);
        let names: Vec<&str> = fs.iter().map(|f| f.event.as_str()).collect();
        assert_eq!(&names[names.len() - 2..], ["response.failed", "error"], "{text}");
        assert!(!names.contains(&"response.completed"), "a failed stream must not look complete");
        for (i, f) in fs.iter().enumerate() {
            let d = f.data.as_ref().unwrap();
            assert_eq!((&d["type"], &d["sequence_number"]), (&json!(f.event), &json!(i)));
            for key in required(&f.event) {
                assert!(d.get(*key).is_some(), "{}: {key}", f.raw);
            }
        }
        let failed = &fs[fs.len() - 2].data.as_ref().unwrap()["response"];
        check_response_object(failed, "failed");
        assert_eq!(failed["error"], json!({"code": code, "message": "Overloaded"}));
        assert_eq!(
            failed["output"][0]["content"][0]["text"], "partial",
            "what was sent so far, still in progress"
        );
        let e = fs[fs.len() - 1].data.as_ref().unwrap();
        assert_eq!(
            (&e["code"], &e["message"]),
            (&json!(code), &json!("Overloaded")),
            "ResponseErrorEvent's fields"
        );
        assert_eq!(
            e["error"]["message"], "Overloaded",
            "openai SDKs raise APIError for a top-level `error` object"
        );
        match decode_sse(R, &text).end {
            Err(StreamError::Upstream { kind: k, message }) => {
                assert_eq!((k.as_str(), message.as_str()), (code, "Overloaded"))
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn every_client_reads_the_streams_every_dialect_writes() {
    let events = decoded(R, "responses/stream.sse");
    for d in ALL {
        let again = decode_sse(d, &encode_events(d, &events, true));
        assert!(again.end.is_ok(), "{d}");
        assert_eq!(again.text(), "Hi there! How can I assist you today?", "{d}");
    }
}
