//! Stream conformance: the published event streams decode through `sse::parse` + `stream::Decoder`, re-encode
//! through `stream::Encoder` into each other dialect with the event sequence that dialect's reference defines,
//! detect truncation and in-band errors, and `Encoder::error` writes each dialect's error event.
//!
//! Fixture sources:
//! - anthropic/stream.sse: "Basic streaming request" response, <https://platform.claude.com/docs/en/build-with-claude/streaming>
//! - anthropic/stream_error.sse: the same stream cut by the page's "Error events" example
//!   (`event: error` / `overloaded_error`) after its first delta
//! - openai/stream.sse: "The chat completion chunk object" example,
//!   <https://platform.openai.com/docs/api-reference/chat-streaming/streaming> (its `....` elision dropped), framed as
//!   `data:` lines ending in `data: [DONE]` as "Create chat completion" (`stream`) documents
//! - openai/stream_usage.sse: the same chunks as sent with `stream_options: {"include_usage": true}`: `"usage": null`
//!   on every chunk, then one chunk with empty `choices` and the usage, before `data: [DONE]` (the documented
//!   semantics; OpenAI publishes no verbatim example, usage numbers from the reference response)
//! - gemini/stream.sse: the "streaming responses" of <https://ai.google.dev/api#response-examples> with the
//!   `...` placeholders filled, framed as `data: …\r\n\r\n` (the alt=sse wire form), plus a final chunk carrying
//!   `finishReason` and full `usageMetadata` as the last chunk of every Gemini stream does
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ALL, decode_sse, encode_events, fixture, frames, wire_text};
use nines_wire::error::ErrorType;
use nines_wire::stream::{Decoder, Encoder};
use nines_wire::{Dialect, StopReason, StreamError, StreamEvent, Usage, sse};
use serde_json::{Value, json};

fn usage(input: u64, output: u64, cache_read: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache_read,
        cache_write_tokens: 0,
        reasoning_tokens: 0,
    }
}

/// Decode a fixture stream; it must end cleanly.
fn decoded(d: Dialect, path: &str) -> Vec<StreamEvent> {
    let out = decode_sse(d, &fixture(path));
    out.end.as_ref().unwrap_or_else(|e| panic!("{path}: {e}"));
    out.events
}

// ---------------------------------------------------------------------------------------------------------------
// Checks of an encoded stream against its dialect's reference.

/// message_start, content_block_start, ping, content_block_delta…, content_block_stop, message_delta, message_stop.
fn check_anthropic(sse_text: &str, text: &str, stop: &str, stop_seq: Value, input: u64, output: u64) {
    let fs = frames(sse_text);
    let names: Vec<&str> = fs.iter().map(|f| f.event.as_str()).collect();
    let n = names.len();
    assert!(n >= 7, "{names:?}");
    assert_eq!(&names[..3], ["message_start", "content_block_start", "ping"], "{sse_text}");
    assert!(names[3..n - 3].iter().all(|e| *e == "content_block_delta"), "{names:?}");
    assert_eq!(&names[n - 3..], ["content_block_stop", "message_delta", "message_stop"], "{names:?}");
    for f in &fs {
        assert_eq!(f.data.as_ref().unwrap()["type"], f.event, "event name and data type agree: {}", f.raw);
    }
    let d = |i: usize| fs[i].data.as_ref().unwrap();
    let m = &d(0)["message"];
    assert!(m["id"].as_str().unwrap().starts_with("msg_"), "{m}");
    assert_eq!(
        (&m["type"], &m["role"], &m["model"]),
        (&json!("message"), &json!("assistant"), &json!("client-model"))
    );
    assert_eq!(
        (&m["content"], &m["stop_reason"], &m["stop_sequence"]),
        (&json!([]), &Value::Null, &Value::Null)
    );
    assert!(m["usage"]["input_tokens"].is_u64() && m["usage"]["output_tokens"].is_u64(), "{m}");
    assert_eq!(d(1)["index"], 0);
    assert_eq!(d(1)["content_block"], json!({"type": "text", "text": ""}));
    for i in 3..n - 3 {
        assert_eq!((&d(i)["index"], &d(i)["delta"]["type"]), (&json!(0), &json!("text_delta")));
    }
    assert_eq!(d(n - 3)["index"], 0);
    let md = d(n - 2);
    assert_eq!(md["delta"], json!({"stop_reason": stop, "stop_sequence": stop_seq}));
    assert_eq!(md["usage"]["output_tokens"], output);
    assert_eq!(md["usage"]["input_tokens"], input, "uncached input");
    assert_eq!(wire_text(Dialect::Anthropic, &fs), text);
}

/// A role chunk, content chunks, one finish_reason chunk, the usage chunk only with include_usage, `[DONE]`.
fn check_openai(sse_text: &str, text: &str, finish: &str, include_usage: bool, usage: [u64; 3]) {
    let fs = frames(sse_text);
    let n = fs.len();
    assert!(fs[n - 1].data.is_none(), "ends with data: [DONE]: {sse_text}");
    let chunks: Vec<&Value> =
        fs[..n - 1].iter().map(|f| f.data.as_ref().expect("one [DONE], at the end")).collect();
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"), "{id}");
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!((&c["object"], &c["id"]), (&json!("chat.completion.chunk"), &json!(id)), "{c}");
        assert_eq!((&c["created"], &c["model"]), (&json!(1_700_000_000), &json!("client-model")), "{c}");
        assert!(fs[i].event.is_empty(), "OpenAI frames carry no event name");
        let usage_key = c.as_object().unwrap().contains_key("usage");
        assert_eq!(
            usage_key, include_usage,
            "`usage` is present (null) on every chunk iff include_usage: {c}"
        );
    }
    assert_eq!(
        chunks[0]["choices"],
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}])
    );
    let finishing: Vec<usize> =
        (0..chunks.len()).filter(|&i| !chunks[i]["choices"][0]["finish_reason"].is_null()).collect();
    assert_eq!(finishing.len(), 1, "exactly one finish_reason chunk: {sse_text}");
    let f = finishing[0];
    assert_eq!(chunks[f]["choices"][0]["finish_reason"], finish);
    assert_eq!(chunks[f]["choices"][0]["delta"], json!({}));
    if include_usage {
        assert_eq!(f, chunks.len() - 2, "the usage chunk follows the finish chunk");
        let last = chunks[chunks.len() - 1];
        assert_eq!(last["choices"], json!([]), "the usage chunk's choices is always an empty array");
        let [prompt, completion, total] = usage;
        assert_eq!(last["usage"]["prompt_tokens"], prompt);
        assert_eq!(last["usage"]["completion_tokens"], completion);
        assert_eq!(last["usage"]["total_tokens"], total);
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c["usage"].is_null()));
    } else {
        assert_eq!(f, chunks.len() - 1, "nothing after the finish chunk but [DONE]");
    }
    assert_eq!(wire_text(Dialect::OpenAiChat, &fs), text);
}

/// GenerateContentResponse chunks; the last one carries finishReason and usageMetadata.
fn check_gemini(sse_text: &str, text: &str, finish: &str, usage: [u64; 3]) {
    let fs = frames(sse_text);
    let chunks: Vec<&Value> = fs.iter().map(|f| f.data.as_ref().unwrap()).collect();
    let last = chunks.len() - 1;
    for (i, c) in chunks.iter().enumerate() {
        assert!(fs[i].event.is_empty());
        let cand = c["candidates"].as_array().unwrap();
        assert_eq!(cand.len(), 1, "{c}");
        assert_eq!((&cand[0]["content"]["role"], &cand[0]["index"]), (&json!("model"), &json!(0)), "{c}");
        assert_eq!(
            (&c["modelVersion"], &c["responseId"]),
            (&json!("client-model"), &chunks[0]["responseId"])
        );
        assert_eq!(cand[0].get("finishReason").is_some(), i == last, "only the last chunk finishes: {c}");
    }
    assert_eq!(chunks[last]["candidates"][0]["finishReason"], finish);
    let u = &chunks[last]["usageMetadata"];
    let [prompt, candidates, total] = usage;
    assert_eq!((&u["promptTokenCount"], &u["candidatesTokenCount"]), (&json!(prompt), &json!(candidates)));
    assert_eq!(u["totalTokenCount"], total);
    assert_eq!(wire_text(Dialect::Gemini, &fs), text);
}

// ---------------------------------------------------------------------------------------------------------------
// The published streams decode.

#[test]
fn anthropic_published_stream_decodes() {
    let events = decoded(Dialect::Anthropic, "anthropic/stream.sse");
    let start = StreamEvent::Start {
        id: "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY".into(),
        model: "claude-sonnet-4-5-20250929".into(),
        usage: usage(25, 1, 0),
    };
    let finish = StreamEvent::Finish { stop_reason: StopReason::EndTurn, usage: usage(25, 15, 0) };
    let want =
        vec![start, StreamEvent::TextDelta("Hello".into()), StreamEvent::TextDelta("!".into()), finish];
    assert_eq!(events, want);
}

#[test]
fn openai_published_stream_decodes() {
    let events = decoded(Dialect::OpenAiChat, "openai/stream.sse");
    let start = StreamEvent::Start {
        id: "chatcmpl-123".into(),
        model: "gpt-4o-mini".into(),
        usage: Usage::default(),
    };
    let finish = StreamEvent::Finish { stop_reason: StopReason::EndTurn, usage: Usage::default() };
    assert_eq!(events, vec![start, StreamEvent::TextDelta("Hello".into()), finish]);
}

#[test]
fn openai_include_usage_stream_decodes_with_its_usage() {
    let events = decoded(Dialect::OpenAiChat, "openai/stream_usage.sse");
    assert_eq!(common::text_of(&events), "Hello");
    let finish = StreamEvent::Finish { stop_reason: StopReason::MaxTokens, usage: usage(19, 10, 4) };
    assert_eq!(events.last(), Some(&finish));
}

#[test]
fn gemini_published_stream_decodes() {
    let events = decoded(Dialect::Gemini, "gemini/stream.sse");
    let start = StreamEvent::Start {
        id: "mAitaLmkHPPlz7IPvtfUqQ4".into(),
        model: "gemini-2.5-flash-lite".into(),
        usage: Usage::default(),
    };
    assert_eq!(events[0], start);
    assert_eq!(
        common::text_of(&events),
        "The image displays the following materials:\n\n*   **Wood:** The accordion and the violin are primarily made of wood."
    );
    let finish = StreamEvent::Finish { stop_reason: StopReason::EndTurn, usage: usage(1290, 21, 0) };
    assert_eq!(events.last(), Some(&finish));
    assert_eq!(
        events.iter().filter(|e| matches!(e, StreamEvent::Start { .. } | StreamEvent::Finish { .. })).count(),
        2
    );
}

// ---------------------------------------------------------------------------------------------------------------
// The published streams translate.

#[test]
fn anthropic_published_stream_to_openai_gemini_and_anthropic() {
    let events = decoded(Dialect::Anthropic, "anthropic/stream.sse");
    for include_usage in [true, false] {
        let out = encode_events(Dialect::OpenAiChat, &events, include_usage);
        check_openai(&out, "Hello!", "stop", include_usage, [25, 15, 40]);
    }
    check_gemini(&encode_events(Dialect::Gemini, &events, true), "Hello!", "STOP", [25, 15, 40]);
    check_anthropic(
        &encode_events(Dialect::Anthropic, &events, true),
        "Hello!",
        "end_turn",
        Value::Null,
        25,
        15,
    );
}

#[test]
fn openai_published_stream_to_anthropic_gemini_and_openai() {
    let events = decoded(Dialect::OpenAiChat, "openai/stream.sse");
    check_anthropic(
        &encode_events(Dialect::Anthropic, &events, true),
        "Hello",
        "end_turn",
        Value::Null,
        0,
        0,
    );
    check_gemini(&encode_events(Dialect::Gemini, &events, true), "Hello", "STOP", [0, 0, 0]);
    check_openai(&encode_events(Dialect::OpenAiChat, &events, false), "Hello", "stop", false, [0, 0, 0]);

    let events = decoded(Dialect::OpenAiChat, "openai/stream_usage.sse");
    check_anthropic(
        &encode_events(Dialect::Anthropic, &events, true),
        "Hello",
        "max_tokens",
        Value::Null,
        15,
        10,
    );
    check_gemini(&encode_events(Dialect::Gemini, &events, true), "Hello", "MAX_TOKENS", [19, 10, 29]);
    check_openai(&encode_events(Dialect::OpenAiChat, &events, true), "Hello", "length", true, [19, 10, 29]);
}

#[test]
fn gemini_published_stream_to_anthropic_openai_and_gemini() {
    let events = decoded(Dialect::Gemini, "gemini/stream.sse");
    let text = common::text_of(&events);
    check_anthropic(
        &encode_events(Dialect::Anthropic, &events, true),
        &text,
        "end_turn",
        Value::Null,
        1290,
        21,
    );
    check_openai(&encode_events(Dialect::OpenAiChat, &events, true), &text, "stop", true, [1290, 21, 1311]);
    check_gemini(&encode_events(Dialect::Gemini, &events, true), &text, "STOP", [1290, 21, 1311]);
}

#[test]
fn re_encoded_streams_decode_again_to_the_same_text_and_stop() {
    for (from, path) in [
        (Dialect::Anthropic, "anthropic/stream.sse"),
        (Dialect::OpenAiChat, "openai/stream_usage.sse"),
        (Dialect::Gemini, "gemini/stream.sse"),
    ] {
        let events = decoded(from, path);
        for to in ALL {
            let again = decode_sse(to, &encode_events(to, &events, true));
            again.end.as_ref().unwrap_or_else(|e| panic!("{path} -> {to}: {e}"));
            assert_eq!(again.text(), common::text_of(&events), "{path} -> {to}");
            let (stop, _) = again.finish();
            let StreamEvent::Finish { stop_reason, .. } = events.last().unwrap() else { panic!() };
            assert_eq!(stop, stop_reason, "{path} -> {to}");
        }
    }
}

#[test]
fn anthropic_cache_usage_reaches_openai_and_gemini_clients() {
    let sse_text = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"c","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":1}}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":7}}

event: message_stop
data: {"type":"message_stop"}

"#;
    let d = decode_sse(Dialect::Anthropic, sse_text);
    d.end.unwrap();
    let usage = Usage {
        input_tokens: 115,
        output_tokens: 7,
        cache_read_tokens: 100,
        cache_write_tokens: 5,
        reasoning_tokens: 0,
    };
    assert_eq!(d.events.last(), Some(&StreamEvent::Finish { stop_reason: StopReason::EndTurn, usage }));
    let o = frames(&encode_events(Dialect::OpenAiChat, &d.events, true));
    let u = &o[o.len() - 2].data.as_ref().unwrap()["usage"];
    assert_eq!(
        (&u["prompt_tokens"], &u["prompt_tokens_details"]["cached_tokens"]),
        (&json!(115), &json!(100))
    );
    let a = frames(&encode_events(Dialect::Anthropic, &d.events, true));
    let start_usage = &a[0].data.as_ref().unwrap()["message"]["usage"];
    assert_eq!(start_usage["input_tokens"], 10, "Anthropic input_tokens excludes cache reads and writes");
    assert_eq!(start_usage["cache_read_input_tokens"], 100);
    assert_eq!(start_usage["cache_creation_input_tokens"], 5);
}

// ---------------------------------------------------------------------------------------------------------------
// Stop reasons through streams.

fn anthropic_stream_stopping(stop_reason: &str, stop_sequence: Value) -> String {
    let delta = json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                       "usage": {"output_tokens": 3}});
    format!(
        "event: message_start\ndata: {}\n\nevent: content_block_delta\ndata: {}\n\nevent: message_delta\ndata: {delta}\n\n\
         event: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n",
        json!({"type": "message_start", "message": {"id": "msg_1", "model": "c", "usage": {"input_tokens": 2, "output_tokens": 1}}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}),
    )
}

#[test]
fn every_anthropic_stop_reason_survives_a_stream_translation() {
    let table = [
        ("end_turn", Value::Null, StopReason::EndTurn, "stop", "STOP"),
        ("max_tokens", Value::Null, StopReason::MaxTokens, "length", "MAX_TOKENS"),
        ("stop_sequence", json!("###"), StopReason::StopSequence(Some("###".into())), "stop", "STOP"),
        ("tool_use", Value::Null, StopReason::ToolUse, "tool_calls", "STOP"),
        ("pause_turn", Value::Null, StopReason::Paused, "stop", "STOP"),
        ("refusal", Value::Null, StopReason::ContentFilter, "content_filter", "SAFETY"),
        ("model_context_window_exceeded", Value::Null, StopReason::MaxTokens, "length", "MAX_TOKENS"),
    ];
    for (wire, seq, canonical, openai, gemini) in table {
        let d = decode_sse(Dialect::Anthropic, &anthropic_stream_stopping(wire, seq.clone()));
        d.end.as_ref().unwrap();
        assert_eq!(d.finish().0, &canonical, "{wire}");
        check_openai(&encode_events(Dialect::OpenAiChat, &d.events, false), "x", openai, false, [0; 3]);
        check_gemini(&encode_events(Dialect::Gemini, &d.events, false), "x", gemini, [2, 3, 5]);
        let back = if wire == "model_context_window_exceeded" { "max_tokens" } else { wire };
        check_anthropic(&encode_events(Dialect::Anthropic, &d.events, false), "x", back, seq, 2, 3);
    }
}

#[test]
fn every_openai_finish_reason_survives_a_stream_translation() {
    for (wire, canonical, anthropic) in [
        ("stop", StopReason::EndTurn, "end_turn"),
        ("length", StopReason::MaxTokens, "max_tokens"),
        ("tool_calls", StopReason::ToolUse, "tool_use"),
        ("content_filter", StopReason::ContentFilter, "refusal"),
        ("function_call", StopReason::ToolUse, "tool_use"),
    ] {
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "g",
                   "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        };
        let sse_text = format!(
            "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
            chunk(json!({"role": "assistant", "content": "x"}), Value::Null),
            chunk(json!({}), json!(wire))
        );
        let d = decode_sse(Dialect::OpenAiChat, &sse_text);
        d.end.as_ref().unwrap();
        assert_eq!(d.finish().0, &canonical, "{wire}");
        check_anthropic(
            &encode_events(Dialect::Anthropic, &d.events, true),
            "x",
            anthropic,
            Value::Null,
            0,
            0,
        );
    }
}

#[test]
fn every_gemini_finish_reason_survives_a_stream_translation() {
    for (wire, canonical, anthropic, openai) in [
        ("STOP", StopReason::EndTurn, "end_turn", "stop"),
        ("MAX_TOKENS", StopReason::MaxTokens, "max_tokens", "length"),
        ("SAFETY", StopReason::ContentFilter, "refusal", "content_filter"),
        ("RECITATION", StopReason::ContentFilter, "refusal", "content_filter"),
        ("PROHIBITED_CONTENT", StopReason::ContentFilter, "refusal", "content_filter"),
        ("OTHER", StopReason::EndTurn, "end_turn", "stop"),
    ] {
        let sse_text = format!(
            "data: {}\r\n\r\n",
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": wire,
                   "index": 0}], "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1, "totalTokenCount": 3}})
        );
        let d = decode_sse(Dialect::Gemini, &sse_text);
        d.end.as_ref().unwrap();
        assert_eq!(d.finish().0, &canonical, "{wire}");
        check_anthropic(
            &encode_events(Dialect::Anthropic, &d.events, true),
            "x",
            anthropic,
            Value::Null,
            2,
            1,
        );
        check_openai(&encode_events(Dialect::OpenAiChat, &d.events, true), "x", openai, true, [2, 1, 3]);
    }
}

#[test]
fn gemini_blocked_prompt_stream_finishes_as_content_filter() {
    let sse_text = "data: {\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"},\"usageMetadata\": {\"promptTokenCount\": 9}}\r\n\r\n";
    let d = decode_sse(Dialect::Gemini, sse_text);
    d.end.as_ref().unwrap();
    assert_eq!(d.finish().0, &StopReason::ContentFilter);
    assert_eq!(d.text(), "");
}

// ---------------------------------------------------------------------------------------------------------------
// Content that is not translated is skipped without breaking the stream.

#[test]
fn anthropic_tool_use_and_thinking_blocks_translate() {
    let sse_text = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me solve this step by step:\n\n1. First break down 27 * 453"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Okay"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}
"#;
    let d = decode_sse(Dialect::Anthropic, sse_text);
    d.end.as_ref().unwrap();
    assert_eq!(
        d.events[1..5],
        [
            StreamEvent::ThinkingDelta(
                "Let me solve this step by step:\n\n1. First break down 27 * 453".into()
            ),
            StreamEvent::TextDelta("Okay".into()),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
                name: "get_weather".into()
            },
            StreamEvent::ToolCallArgs { index: 0, json: "{\"location\":".into() },
        ]
    );
    let openai = encode_events(Dialect::OpenAiChat, &d.events, false);
    assert!(openai.contains(r#""tool_calls":[{"function":{"arguments":"","name":"get_weather"},"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","index":0,"type":"function"}]"#), "{openai}");
    assert!(openai.contains(r#""reasoning_content":"Let me solve"#), "{openai}");
    check_openai(&encode_events(Dialect::OpenAiChat, &d.events, false), "Okay", "tool_calls", false, [0; 3]);
    // Re-encoded for an Anthropic client (upstream unknown, so its reasoning is not shown): a text block, then
    // the tool_use block with its streamed arguments.
    let fs = frames(&encode_events(Dialect::Anthropic, &d.events, false));
    let names: Vec<&str> = fs.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let tool_start = fs[5].data.as_ref().unwrap();
    assert_eq!(tool_start["content_block"]["type"], "tool_use");
    assert_eq!(tool_start["content_block"]["name"], "get_weather");
    assert_eq!(fs[6].data.as_ref().unwrap()["delta"]["partial_json"], "{\"location\":");
    assert_eq!(fs[8].data.as_ref().unwrap()["delta"]["stop_reason"], "tool_use");
}

#[test]
fn a_stream_without_text_is_still_well_formed() {
    let events = [
        StreamEvent::Start { id: "x".into(), model: "m".into(), usage: Usage::default() },
        StreamEvent::Finish { stop_reason: StopReason::MaxTokens, usage: usage(3, 0, 0) },
    ];
    let names: Vec<String> =
        frames(&encode_events(Dialect::Anthropic, &events, true)).into_iter().map(|f| f.event).collect();
    assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
    check_openai(&encode_events(Dialect::OpenAiChat, &events, true), "", "length", true, [3, 0, 3]);
    check_gemini(&encode_events(Dialect::Gemini, &events, true), "", "MAX_TOKENS", [3, 0, 3]);
    for d in ALL {
        let again = decode_sse(d, &encode_events(d, &events, true));
        assert!(again.end.is_ok(), "{d}: {:?}", again.end);
        assert_eq!(again.finish().0, &StopReason::MaxTokens, "{d}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Truncation: a stream cut before its dialect's final event.

#[test]
fn streams_cut_before_their_final_event_are_truncated() {
    for (d, path) in [
        (Dialect::Anthropic, "anthropic/stream.sse"),
        (Dialect::OpenAiChat, "openai/stream.sse"),
        (Dialect::OpenAiChat, "openai/stream_usage.sse"),
        (Dialect::Gemini, "gemini/stream.sse"),
        (Dialect::OpenAiResponses, "responses/stream.sse"),
        (Dialect::OpenAiResponses, "responses/stream_function_call.sse"),
    ] {
        let all = sse::parse(&fixture(path));
        for cut in 0..all.len() {
            let mut dec = Decoder::new(d);
            let mut events = Vec::new();
            for f in &all[..cut] {
                dec.push(&f.event, &f.data, &mut events).unwrap();
            }
            let end = dec.finish(&mut events);
            let seen = |pred: &dyn Fn(&sse::Frame) -> bool| all[..cut].iter().any(pred);
            let complete = match d {
                Dialect::Anthropic => seen(&|f| f.event == "message_stop"),
                // Without [DONE], a stream that already gave its finish_reason counts as complete.
                Dialect::OpenAiChat => seen(&|f| f.data.contains("\"finish_reason\":\"")),
                Dialect::Gemini => seen(&|f| f.data.contains("finishReason")),
                Dialect::OpenAiResponses => {
                    seen(&|f| f.event == "response.completed" || f.event == "response.incomplete")
                }
            };
            if complete {
                assert!(end.is_ok(), "{path} cut after {cut} frames: {end:?}");
                assert!(matches!(events.last(), Some(StreamEvent::Finish { .. })), "{path} cut after {cut}");
            } else {
                assert!(matches!(end, Err(StreamError::Truncated)), "{path} cut after {cut} frames: {end:?}");
                assert!(
                    !events.iter().any(|e| matches!(e, StreamEvent::Finish { .. })),
                    "{path} cut after {cut}"
                );
            }
        }
    }
}

#[test]
fn an_empty_body_is_truncated_in_every_dialect() {
    for d in ALL {
        assert!(matches!(decode_sse(d, "").end, Err(StreamError::Truncated)), "{d}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// In-band errors.

#[test]
fn anthropic_error_event_mid_stream_is_upstream_error() {
    let d = decode_sse(Dialect::Anthropic, &fixture("anthropic/stream_error.sse"));
    assert_eq!(d.text(), "Hello", "content before the error was delivered");
    match d.end {
        Err(StreamError::Upstream { kind, message }) => {
            assert_eq!((kind.as_str(), message.as_str()), ("overloaded_error", "Overloaded"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn openai_and_gemini_error_chunks_mid_stream_are_upstream_errors() {
    let openai = format!(
        "{}data: {{\"error\":{{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}}}\n\n",
        fixture("openai/stream.sse").split("\n\n").take(2).map(|f| format!("{f}\n\n")).collect::<String>()
    );
    let gemini = format!(
        "{}data: {{\"error\": {{\"code\": 503, \"message\": \"The model is overloaded. Please try again later.\", \"status\": \"UNAVAILABLE\"}}}}\r\n\r\n",
        fixture("gemini/stream.sse")
            .split("\r\n\r\n")
            .take(1)
            .map(|f| format!("{f}\r\n\r\n"))
            .collect::<String>()
    );
    for (d, text, kind, want_text) in [
        (Dialect::OpenAiChat, openai, "server_error", "Hello"),
        (Dialect::Gemini, gemini, "UNAVAILABLE", "The image displays"),
    ] {
        let out = decode_sse(d, &text);
        assert_eq!(out.text(), want_text, "{d}");
        match out.end {
            Err(StreamError::Upstream { kind: k, .. }) => assert_eq!(k, kind, "{d}"),
            other => panic!("{d}: {other:?}"),
        }
    }
}

#[test]
fn malformed_event_data_is_a_malformed_error() {
    for d in ALL {
        let event = if d == Dialect::Anthropic { "message_start" } else { "" };
        let mut dec = Decoder::new(d);
        let err = dec.push(event, "{not json", &mut Vec::new()).unwrap_err();
        assert!(matches!(err, StreamError::Malformed(_)), "{d}: {err:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Encoder::error writes each dialect's in-band error event, and nothing that looks like a complete answer.

fn failed_stream(d: Dialect, kind: ErrorType) -> String {
    let mut enc = Encoder::new(d, common::ctx(), true);
    let mut out = Vec::new();
    enc.push(&StreamEvent::Start { id: "x".into(), model: "m".into(), usage: Usage::default() }, &mut out);
    enc.push(&StreamEvent::TextDelta("partial".into()), &mut out);
    enc.error(kind, "Overloaded", &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn encoder_error_writes_the_anthropic_error_event() {
    let text = failed_stream(Dialect::Anthropic, ErrorType::Overloaded);
    let fs = frames(&text);
    let last = fs.last().unwrap();
    assert_eq!(last.event, "error");
    // The shape of the published example: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert_eq!(
        last.data,
        Some(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    );
    assert!(!fs.iter().any(|f| f.event == "message_stop"), "a failed stream must not look complete");
    match decode_sse(Dialect::Anthropic, &text).end {
        Err(StreamError::Upstream { kind, message }) => {
            assert_eq!((kind.as_str(), message.as_str()), ("overloaded_error", "Overloaded"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn encoder_error_writes_the_openai_error_chunk_without_done() {
    let text = failed_stream(Dialect::OpenAiChat, ErrorType::RateLimited);
    let fs = frames(&text);
    assert!(fs.iter().all(|f| f.data.is_some()), "no [DONE] after an error: {text}");
    let err = &fs.last().unwrap().data.as_ref().unwrap()["error"];
    assert_eq!(err["message"], "Overloaded");
    assert_eq!(err["type"], "rate_limit_error");
    assert_eq!(err["code"], "rate_limit_exceeded");
    assert!(err.as_object().unwrap().contains_key("param"));
    match decode_sse(Dialect::OpenAiChat, &text).end {
        Err(StreamError::Upstream { kind, .. }) => assert_eq!(kind, "rate_limit_error"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn encoder_error_writes_the_google_error_object() {
    let text = failed_stream(Dialect::Gemini, ErrorType::Overloaded);
    let fs = frames(&text);
    let err = &fs.last().unwrap().data.as_ref().unwrap()["error"];
    assert_eq!(err["status"], "UNAVAILABLE");
    assert_eq!(err["message"], "Overloaded");
    assert!(err["code"].is_u64(), "{err}");
    assert!(!fs.iter().any(|f| f.data.as_ref().unwrap()["candidates"][0].get("finishReason").is_some()));
    match decode_sse(Dialect::Gemini, &text).end {
        Err(StreamError::Upstream { kind, message }) => {
            assert_eq!((kind.as_str(), message.as_str()), ("UNAVAILABLE", "Overloaded"))
        }
        other => panic!("{other:?}"),
    }
}

/// google.rpc.Status: `code` is the HTTP status that corresponds to `status`
/// (<https://cloud.google.com/apis/design/errors#http_mapping>). The google-genai SDKs raise ClientError for 4xx
/// and ServerError for 5xx from this `code`, so a rate limit reported as 500 is retried as a server fault.
#[test]
fn gemini_error_event_code_matches_its_status() {
    for (kind, status, code) in [
        (ErrorType::InvalidRequest, "INVALID_ARGUMENT", 400),
        (ErrorType::Authentication, "UNAUTHENTICATED", 401),
        (ErrorType::PermissionDenied, "PERMISSION_DENIED", 403),
        (ErrorType::NotFound, "NOT_FOUND", 404),
        (ErrorType::RateLimited, "RESOURCE_EXHAUSTED", 429),
        (ErrorType::Api, "INTERNAL", 500),
        (ErrorType::Overloaded, "UNAVAILABLE", 503),
        (ErrorType::Timeout, "DEADLINE_EXCEEDED", 504),
    ] {
        let fs = frames(&failed_stream(Dialect::Gemini, kind));
        let err = &fs.last().unwrap().data.as_ref().unwrap()["error"];
        assert_eq!((&err["status"], &err["code"]), (&json!(status), &json!(code)), "{kind:?}");
    }
}

/// Anthropic: "Total input tokens in a request is the summation of input_tokens, cache_creation_input_tokens, and
/// cache_read_input_tokens", and message_delta's usage counts are cumulative. When the upstream reports usage only
/// at the end (OpenAI, Gemini), message_start says 0 cached tokens and message_delta strips the cache fields, so an
/// Anthropic client undercounts its input by the cached tokens.
#[test]
fn anthropic_client_learns_cached_tokens_reported_at_the_end_of_the_stream() {
    let events = decoded(Dialect::OpenAiChat, "openai/stream_usage.sse");
    let fs = frames(&encode_events(Dialect::Anthropic, &events, true));
    // Accumulate as the Anthropic SDKs do: message_start's usage, overwritten by every non-null message_delta field.
    let mut u = fs[0].data.as_ref().unwrap()["message"]["usage"].as_object().unwrap().clone();
    for f in fs.iter().filter(|f| f.event == "message_delta") {
        for (k, v) in f.data.as_ref().unwrap()["usage"].as_object().unwrap() {
            if !v.is_null() {
                u.insert(k.clone(), v.clone());
            }
        }
    }
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    assert_eq!(n("cache_read_input_tokens"), 4, "{u:?}");
    assert_eq!(
        n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens"),
        19,
        "{u:?}"
    );
}
