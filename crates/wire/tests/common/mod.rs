//! Helpers shared by the conformance, round-trip and no-panic tests: fixture loading, driving a stream
//! through `sse::parse` + `stream::Decoder`, and encoding canonical events with `stream::Encoder`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nines_wire::stream::{Decoder, Encoder};
use nines_wire::{Dialect, EncodeCtx, StreamError, StreamEvent, Usage, sse};
use serde_json::{Value, json};

pub const ALL: [Dialect; 4] =
    [Dialect::Anthropic, Dialect::OpenAiChat, Dialect::Gemini, Dialect::OpenAiResponses];

/// The text of `tests/fixtures/{path}`.
pub fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {full}: {e}"))
}

pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// The context encoders get in these tests: the name the client asked for and a fixed clock.
pub fn ctx() -> EncodeCtx {
    EncodeCtx { created: 1_700_000_000, model: "client-model".into(), ..EncodeCtx::default() }
}

/// What a stream decoded to: every canonical event, and how it ended (the first push error, else `finish`).
#[derive(Debug)]
pub struct Decoded {
    pub events: Vec<StreamEvent>,
    pub end: Result<(), StreamError>,
}

impl Decoded {
    pub fn text(&self) -> String {
        text_of(&self.events)
    }

    pub fn finish(&self) -> (&nines_wire::StopReason, &Usage) {
        match self.events.last() {
            Some(StreamEvent::Finish { stop_reason, usage }) => (stop_reason, usage),
            other => panic!("stream does not end in Finish: {other:?} ({:?})", self.events),
        }
    }
}

/// Feed an SSE text through `sse::parse` and a `Decoder` of `dialect`, then call `finish` unless a push failed.
pub fn decode_sse(dialect: Dialect, text: &str) -> Decoded {
    let mut dec = Decoder::new(dialect);
    let mut events = Vec::new();
    for frame in sse::parse(text) {
        if let Err(e) = dec.push(&frame.event, &frame.data, &mut events) {
            return Decoded { events, end: Err(e) };
        }
    }
    let end = dec.finish(&mut events);
    Decoded { events, end }
}

/// Encode canonical events for a client of `dialect`.
pub fn encode_events(dialect: Dialect, events: &[StreamEvent], include_usage: bool) -> String {
    let mut enc = Encoder::new(dialect, ctx(), include_usage);
    let mut out = Vec::new();
    for ev in events {
        enc.push(ev, &mut out);
    }
    String::from_utf8(out).expect("encoders write UTF-8")
}

pub fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// One encoded frame: its `event:` name and its data, as JSON (or `None` for OpenAI's `[DONE]`).
#[derive(Debug)]
pub struct Frame {
    pub event: String,
    pub data: Option<Value>,
    pub raw: String,
}

pub fn frames(text: &str) -> Vec<Frame> {
    sse::parse(text)
        .into_iter()
        .map(|f| {
            let data = if f.data == "[DONE]" { None } else { Some(json(f.data.as_bytes())) };
            Frame { event: f.event, data, raw: f.data }
        })
        .collect()
}

/// Every text a dialect's stream carries, concatenated in order, read straight from the wire JSON (so the check
/// does not depend on this crate's own decoder).
pub fn wire_text(dialect: Dialect, frames: &[Frame]) -> String {
    let mut text = String::new();
    for f in frames {
        let Some(d) = &f.data else { continue };
        match dialect {
            Dialect::Anthropic => {
                if d["type"] == "content_block_delta" && d["delta"]["type"] == "text_delta" {
                    text.push_str(d["delta"]["text"].as_str().unwrap());
                }
            }
            Dialect::OpenAiChat => {
                for c in d["choices"].as_array().into_iter().flatten() {
                    text.push_str(c["delta"]["content"].as_str().unwrap_or(""));
                }
            }
            Dialect::Gemini => {
                for p in d["candidates"][0]["content"]["parts"].as_array().into_iter().flatten() {
                    text.push_str(p["text"].as_str().unwrap_or(""));
                }
            }
            Dialect::OpenAiResponses => {
                if d["type"] == "response.output_text.delta" {
                    text.push_str(d["delta"].as_str().unwrap());
                }
            }
        }
    }
    text
}

/// The fields the openai-python SDK's `Response` model requires (no default), and those the published examples
/// always carry, checked on every encoded Response; and the required fields of each output item type.
pub fn check_response_object(v: &Value, status: &str) {
    for key in [
        "id",
        "object",
        "created_at",
        "status",
        "error",
        "incomplete_details",
        "instructions",
        "model",
        "output",
        "parallel_tool_calls",
        "tool_choice",
        "tools",
        "temperature",
        "top_p",
        "usage",
        "metadata",
    ] {
        assert!(v.get(key).is_some(), "Response without `{key}`: {v}");
    }
    assert_eq!(v["object"], "response");
    assert!(v["id"].as_str().unwrap().starts_with("resp_"), "{v}");
    assert_eq!(
        (&v["created_at"], &v["model"], &v["status"]),
        (&json!(1_700_000_000), &json!("client-model"), &json!(status))
    );
    assert!(v["parallel_tool_calls"].is_boolean() && v["tools"].is_array());
    for item in v["output"].as_array().unwrap() {
        let required: &[&str] = match item["type"].as_str().unwrap() {
            "message" => &["id", "content", "role", "status"],
            "function_call" => &["id", "arguments", "call_id", "name"],
            "reasoning" => &["id", "summary"],
            other => panic!("unexpected item type {other}"),
        };
        for key in required {
            assert!(item.get(*key).is_some(), "{} without `{key}`: {item}", item["type"]);
        }
        for c in item["content"].as_array().into_iter().flatten() {
            assert_eq!(
                (&c["type"], c["text"].is_string(), c["annotations"].is_array()),
                (&json!("output_text"), true, true),
                "{c}"
            );
        }
        for s in item["summary"].as_array().into_iter().flatten() {
            assert_eq!((&s["type"], s["text"].is_string()), (&json!("summary_text"), true), "{s}");
        }
    }
    if !v["usage"].is_null() {
        for key in
            ["input_tokens", "input_tokens_details", "output_tokens", "output_tokens_details", "total_tokens"]
        {
            assert!(v["usage"].get(key).is_some(), "usage without `{key}`: {v}");
        }
        for key in ["cached_tokens", "cache_write_tokens"] {
            assert!(v["usage"]["input_tokens_details"][key].is_u64(), "usage without `{key}`: {v}");
        }
    }
}
