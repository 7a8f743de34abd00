//! Response conformance: the published non-streaming responses and error bodies decode, translate into every
//! other dialect field by field, and every stop reason each dialect defines maps where it should.
//!
//! Fixture sources:
//! - anthropic/response.json: "Response 200" of "Create a Message", <https://platform.claude.com/docs/en/api/messages/create>
//! - anthropic/error.json: "Error shapes", <https://docs.anthropic.com/en/api/errors>
//! - openai/response.json: the "Default" response of "Create chat completion",
//!   <https://platform.openai.com/docs/api-reference/chat/create>
//! - openai/error.json: the 401 `invalid_api_key` body api.openai.com returns (the shape the openai SDKs parse,
//!   see <https://platform.openai.com/docs/guides/error-codes>)
//! - gemini/response.json: the "standard response" of <https://ai.google.dev/api#response-examples> (published with a
//!   trailing comma after `candidates`, removed here so it is JSON)
//! - gemini/error.json: Google's JSON error model, <https://cloud.google.com/apis/design/errors#http_mapping>, with
//!   the message generativelanguage.googleapis.com returns for a bad key
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ALL, ctx, fixture, json};
use nines_wire::error::upstream_error_message;
use nines_wire::{ChatResponse, Dialect, ErrorShape, ErrorType, Part, StopReason, Thinking, ToolCall, Usage};
use serde_json::{Value, json};

fn decode(d: Dialect, path: &str) -> ChatResponse {
    d.decode_response(fixture(path).as_bytes()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn encode(d: Dialect, r: &ChatResponse) -> Value {
    json(&d.encode_response(r, &ctx()))
}

fn response(stop_reason: StopReason, usage: Usage) -> ChatResponse {
    ChatResponse {
        id: "resp-1".into(),
        model: "m".into(),
        content: vec![Part::Text("Hi".into())],
        stop_reason,
        usage,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The fixtures decode.

#[test]
fn anthropic_reference_response_decodes_with_cache_counted_into_input() {
    let r = decode(Dialect::Anthropic, "anthropic/response.json");
    assert_eq!(r.id, "msg_013Zva2CMHLNnXjNJJKqJ2EF");
    assert_eq!(r.model, "claude-opus-5");
    assert_eq!(r.content, vec![Part::Text("Hi! My name is Claude.".into())]);
    assert_eq!(r.stop_reason, StopReason::EndTurn);
    // "Total input tokens in a request is the summation of input_tokens, cache_creation_input_tokens, and
    // cache_read_input_tokens."
    let want = Usage {
        input_tokens: 2095 + 2051 + 2051,
        output_tokens: 503,
        cache_read_tokens: 2051,
        cache_write_tokens: 2051,
        reasoning_tokens: 0,
    };
    assert_eq!(r.usage, want);
}

#[test]
fn openai_reference_response_decodes() {
    let r = decode(Dialect::OpenAiChat, "openai/response.json");
    assert_eq!(r.id, "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
    assert_eq!(r.model, "gpt-4.1-2025-04-14");
    assert_eq!(r.content, vec![Part::Text("Hello! How can I assist you today?".into())]);
    assert_eq!(r.stop_reason, StopReason::EndTurn);
    assert_eq!(r.usage, Usage { input_tokens: 19, output_tokens: 10, ..Usage::default() });
}

#[test]
fn gemini_reference_response_decodes() {
    let r = decode(Dialect::Gemini, "gemini/response.json");
    assert_eq!(
        r.content,
        vec![Part::Text(
            "At its core, Artificial Intelligence works by learning from vast amounts of data ...".into()
        )]
    );
    assert_eq!(r.stop_reason, StopReason::EndTurn);
    assert_eq!(r.usage, Usage::default());
    assert_eq!((r.id.as_str(), r.model.as_str()), ("", ""));
}

// ---------------------------------------------------------------------------------------------------------------
// The fixtures translate.

fn assert_openai_body(o: &Value, id: &str, text: &str, finish: &str, usage: [u64; 4]) {
    assert_eq!(o["id"], id);
    assert_eq!(o["object"], "chat.completion");
    assert_eq!(o["created"], 1_700_000_000);
    assert_eq!(o["model"], "client-model", "the model the client asked for");
    let choices = o["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 1);
    assert_eq!(choices[0]["index"], 0);
    assert_eq!(choices[0]["message"]["role"], "assistant");
    assert_eq!(choices[0]["message"]["content"], text);
    assert_eq!(choices[0]["finish_reason"], finish);
    let [prompt, completion, total, cached] = usage;
    assert_eq!(o["usage"]["prompt_tokens"], prompt);
    assert_eq!(o["usage"]["completion_tokens"], completion);
    assert_eq!(o["usage"]["total_tokens"], total);
    assert_eq!(o["usage"]["prompt_tokens_details"]["cached_tokens"], cached);
}

fn assert_gemini_body(g: &Value, id: &str, text: &str, finish: &str, usage: [u64; 4]) {
    let cand = &g["candidates"][0];
    assert_eq!(cand["content"]["role"], "model");
    assert_eq!(cand["content"]["parts"], json!([{"text": text}]));
    assert_eq!(cand["finishReason"], finish);
    assert_eq!(g["modelVersion"], "client-model");
    assert_eq!(g["responseId"], id);
    let [prompt, candidates, total, cached] = usage;
    let u = &g["usageMetadata"];
    assert_eq!((&u["promptTokenCount"], &u["candidatesTokenCount"]), (&json!(prompt), &json!(candidates)));
    assert_eq!((&u["totalTokenCount"], &u["cachedContentTokenCount"]), (&json!(total), &json!(cached)));
}

fn assert_anthropic_body(a: &Value, id: &str, text: &str, stop: &str, usage: [u64; 4]) {
    assert_eq!(a["id"], id);
    assert_eq!(a["type"], "message");
    assert_eq!(a["role"], "assistant");
    assert_eq!(a["model"], "client-model");
    assert_eq!(a["content"], json!([{"type": "text", "text": text}]));
    assert_eq!(a["stop_reason"], stop);
    assert_eq!(a["stop_sequence"], Value::Null);
    let [input, output, creation, read] = usage;
    let want = json!({"input_tokens": input, "output_tokens": output,
                      "cache_creation_input_tokens": creation, "cache_read_input_tokens": read});
    assert_eq!(a["usage"], want);
}

#[test]
fn anthropic_response_to_openai_gemini_and_back() {
    let r = decode(Dialect::Anthropic, "anthropic/response.json");
    let text = "Hi! My name is Claude.";
    let id = "msg_013Zva2CMHLNnXjNJJKqJ2EF";
    assert_openai_body(
        &encode(Dialect::OpenAiChat, &r),
        &format!("chatcmpl-{id}"),
        text,
        "stop",
        [6197, 503, 6700, 2051],
    );
    assert_gemini_body(&encode(Dialect::Gemini, &r), id, text, "STOP", [6197, 503, 6700, 2051]);
    assert_anthropic_body(&encode(Dialect::Anthropic, &r), id, text, "end_turn", [2095, 503, 2051, 2051]);
}

#[test]
fn openai_response_to_anthropic_and_gemini() {
    let r = decode(Dialect::OpenAiChat, "openai/response.json");
    let text = "Hello! How can I assist you today?";
    let id = "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT";
    assert_anthropic_body(
        &encode(Dialect::Anthropic, &r),
        &format!("msg_{id}"),
        text,
        "end_turn",
        [19, 10, 0, 0],
    );
    assert_gemini_body(&encode(Dialect::Gemini, &r), id, text, "STOP", [19, 10, 29, 0]);
    assert_openai_body(&encode(Dialect::OpenAiChat, &r), id, text, "stop", [19, 10, 29, 0]);
}

#[test]
fn gemini_response_to_anthropic_and_openai() {
    let r = decode(Dialect::Gemini, "gemini/response.json");
    let text = "At its core, Artificial Intelligence works by learning from vast amounts of data ...";
    let a = encode(Dialect::Anthropic, &r);
    assert!(a["id"].as_str().unwrap().starts_with("msg_"), "Anthropic ids look like msg_…: {a}");
    assert_anthropic_body(&a, a["id"].as_str().unwrap(), text, "end_turn", [0, 0, 0, 0]);
    let o = encode(Dialect::OpenAiChat, &r);
    assert!(o["id"].as_str().unwrap().starts_with("chatcmpl-"), "{o}");
    assert_openai_body(&o, o["id"].as_str().unwrap(), text, "stop", [0, 0, 0, 0]);
}

#[test]
fn every_encoded_response_decodes_again_in_its_dialect() {
    for path in ["anthropic/response.json", "openai/response.json", "gemini/response.json"] {
        let from = match path.split('/').next().unwrap() {
            "anthropic" => Dialect::Anthropic,
            "openai" => Dialect::OpenAiChat,
            _ => Dialect::Gemini,
        };
        let r = decode(from, path);
        for to in ALL {
            let back = to.decode_response(&to.encode_response(&r, &ctx())).unwrap();
            assert_eq!(back.text(), r.text(), "{path} -> {to}");
            assert_eq!(back.usage.output_tokens, r.usage.output_tokens, "{path} -> {to}");
            assert_eq!(back.usage.input_tokens, r.usage.input_tokens, "{path} -> {to}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Usage with cached tokens: Anthropic's input_tokens excludes cache reads and writes; canonical (OpenAI
// prompt_tokens, Gemini promptTokenCount) includes them.

#[test]
fn anthropic_cache_tokens_are_added_to_input_and_subtracted_again() {
    let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[],
        "stop_reason":"end_turn","usage":{"input_tokens":10,"cache_read_input_tokens":100,
        "cache_creation_input_tokens":5,"output_tokens":7}}"#;
    let r = Dialect::Anthropic.decode_response(body).unwrap();
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 115,
            output_tokens: 7,
            cache_read_tokens: 100,
            cache_write_tokens: 5,
            reasoning_tokens: 0
        }
    );
    let o = encode(Dialect::OpenAiChat, &r);
    assert_eq!(o["usage"]["prompt_tokens"], 115);
    assert_eq!(o["usage"]["prompt_tokens_details"]["cached_tokens"], 100);
    assert_eq!(o["usage"]["total_tokens"], 122);
    let a = encode(Dialect::Anthropic, &r);
    assert_eq!(a["usage"]["input_tokens"], 10);
    assert_eq!(a["usage"]["cache_read_input_tokens"], 100);
    assert_eq!(a["usage"]["cache_creation_input_tokens"], 5);
}

#[test]
fn openai_cached_tokens_are_part_of_prompt_tokens() {
    let body = br#"{"id":"chatcmpl-1","object":"chat.completion","model":"g","choices":[{"index":0,
        "message":{"role":"assistant","content":"x"},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
        "prompt_tokens_details":{"cached_tokens":1920}}}"#;
    let r = Dialect::OpenAiChat.decode_response(body).unwrap();
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 2006,
            output_tokens: 300,
            cache_read_tokens: 1920,
            cache_write_tokens: 0,
            reasoning_tokens: 0
        }
    );
    let a = encode(Dialect::Anthropic, &r);
    assert_eq!(a["usage"]["input_tokens"], 2006 - 1920, "Anthropic counts only uncached input");
    assert_eq!(a["usage"]["cache_read_input_tokens"], 1920);
    let g = encode(Dialect::Gemini, &r);
    assert_eq!(g["usageMetadata"]["promptTokenCount"], 2006);
    assert_eq!(g["usageMetadata"]["cachedContentTokenCount"], 1920);
}

#[test]
fn openai_null_usage_details_are_tolerated() {
    let body = br#"{"id":"chatcmpl-1","model":"g","choices":[{"index":0,"message":{"role":"assistant",
        "content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4,
        "prompt_tokens_details":null}}"#;
    let r = Dialect::OpenAiChat.decode_response(body).unwrap();
    assert_eq!(r.usage, Usage { input_tokens: 3, output_tokens: 4, ..Usage::default() });
    let body = br#"{"id":"chatcmpl-1","model":"g","choices":[{"index":0,"message":{"role":"assistant",
        "content":"x"},"finish_reason":"stop"}],"usage":null}"#;
    assert_eq!(Dialect::OpenAiChat.decode_response(body).unwrap().usage, Usage::default());
}

#[test]
fn gemini_thoughts_count_as_output_and_cached_content_stays_in_prompt() {
    let body = br#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Thinking...","thought":true},
        {"text":"42"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":14,
        "candidatesTokenCount":6,"totalTokenCount":28,"cachedContentTokenCount":5,"thoughtsTokenCount":8},
        "modelVersion":"gemini-2.5-flash","responseId":"gemini-response-1"}"#;
    let r = Dialect::Gemini.decode_response(body).unwrap();
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 14,
            output_tokens: 14,
            cache_read_tokens: 5,
            cache_write_tokens: 0,
            reasoning_tokens: 8
        }
    );
    assert_eq!(
        r.content,
        vec![
            Part::Thinking(Thinking { text: "Thinking...".into(), signature: None }),
            Part::Text("42".into())
        ]
    );
    assert_eq!((r.id.as_str(), r.model.as_str()), ("gemini-response-1", "gemini-2.5-flash"));
    let a = encode(Dialect::Anthropic, &r);
    assert_eq!(
        a["content"],
        json!([{"type": "text", "text": "42"}]),
        "Gemini's thoughts are never shown to an Anthropic client, which would send them back to Anthropic"
    );
    assert_eq!(a["usage"]["input_tokens"], 9);
}

// ---------------------------------------------------------------------------------------------------------------
// Stop reasons: every value each dialect defines.

/// Anthropic `stop_reason` values (Messages API reference, "stop_reason").
const ANTHROPIC_STOPS: [(&str, StopReason); 7] = [
    ("end_turn", StopReason::EndTurn),
    ("max_tokens", StopReason::MaxTokens),
    ("stop_sequence", StopReason::StopSequence(None)),
    ("tool_use", StopReason::ToolUse),
    ("pause_turn", StopReason::Paused),
    ("refusal", StopReason::ContentFilter),
    ("model_context_window_exceeded", StopReason::MaxTokens),
];

/// OpenAI `finish_reason` values (Chat Completions reference, choices[].finish_reason).
const OPENAI_FINISHES: [(&str, StopReason); 5] = [
    ("stop", StopReason::EndTurn),
    ("length", StopReason::MaxTokens),
    ("tool_calls", StopReason::ToolUse),
    ("content_filter", StopReason::ContentFilter),
    ("function_call", StopReason::ToolUse),
];

/// Gemini `FinishReason` values (<https://ai.google.dev/api/generate-content#FinishReason>) whose meaning the
/// canonical model has; anything else ends the turn.
const GEMINI_FINISHES: [(&str, StopReason); 14] = [
    ("STOP", StopReason::EndTurn),
    ("MAX_TOKENS", StopReason::MaxTokens),
    ("SAFETY", StopReason::ContentFilter),
    ("RECITATION", StopReason::ContentFilter),
    ("LANGUAGE", StopReason::ContentFilter),
    ("BLOCKLIST", StopReason::ContentFilter),
    ("PROHIBITED_CONTENT", StopReason::ContentFilter),
    ("SPII", StopReason::ContentFilter),
    ("IMAGE_SAFETY", StopReason::ContentFilter),
    ("OTHER", StopReason::EndTurn),
    ("MALFORMED_FUNCTION_CALL", StopReason::EndTurn),
    ("FINISH_REASON_UNSPECIFIED", StopReason::EndTurn),
    ("UNEXPECTED_TOOL_CALL", StopReason::EndTurn),
    ("TOO_MANY_TOOL_CALLS", StopReason::EndTurn),
];

#[test]
fn anthropic_stop_reasons_decode() {
    for (wire, want) in ANTHROPIC_STOPS {
        let body = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "c", "content": [],
                          "stop_reason": wire, "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}});
        let r = Dialect::Anthropic.decode_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.stop_reason, want, "{wire}");
    }
    let body = br####"{"id":"msg_1","model":"c","content":[],"stop_reason":"stop_sequence","stop_sequence":"###"}"####;
    let r = Dialect::Anthropic.decode_response(body).unwrap();
    assert_eq!(r.stop_reason, StopReason::StopSequence(Some("###".into())));
}

#[test]
fn openai_finish_reasons_decode() {
    for (wire, want) in OPENAI_FINISHES {
        let body = json!({"id": "chatcmpl-1", "model": "g", "choices": [{"index": 0, "finish_reason": wire,
                          "message": {"role": "assistant", "content": "x"}}]});
        let r = Dialect::OpenAiChat.decode_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.stop_reason, want, "{wire}");
    }
}

#[test]
fn gemini_finish_reasons_decode() {
    for (wire, want) in GEMINI_FINISHES {
        let body = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]},
                          "finishReason": wire, "index": 0}]});
        let r = Dialect::Gemini.decode_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.stop_reason, want, "{wire}");
    }
}

#[test]
fn canonical_stop_reasons_encode_for_every_dialect() {
    // (canonical, anthropic stop_reason, anthropic stop_sequence, openai finish_reason, gemini finishReason)
    let table = [
        (StopReason::EndTurn, "end_turn", Value::Null, "stop", "STOP"),
        (StopReason::MaxTokens, "max_tokens", Value::Null, "length", "MAX_TOKENS"),
        (StopReason::StopSequence(Some("###".into())), "stop_sequence", json!("###"), "stop", "STOP"),
        (StopReason::StopSequence(None), "stop_sequence", Value::Null, "stop", "STOP"),
        (StopReason::ToolUse, "tool_use", Value::Null, "tool_calls", "STOP"),
        (StopReason::ContentFilter, "refusal", Value::Null, "content_filter", "SAFETY"),
        (StopReason::Paused, "pause_turn", Value::Null, "stop", "STOP"),
    ];
    for (canonical, a_stop, a_seq, o_finish, g_finish) in table {
        let r = response(canonical.clone(), Usage::default());
        let a = encode(Dialect::Anthropic, &r);
        assert_eq!((&a["stop_reason"], &a["stop_sequence"]), (&json!(a_stop), &a_seq), "{canonical:?}");
        assert_eq!(encode(Dialect::OpenAiChat, &r)["choices"][0]["finish_reason"], o_finish, "{canonical:?}");
        assert_eq!(encode(Dialect::Gemini, &r)["candidates"][0]["finishReason"], g_finish, "{canonical:?}");
    }
}

#[test]
fn anthropic_stop_reasons_translate_to_openai_and_gemini() {
    for (wire, openai, gemini) in [
        ("end_turn", "stop", "STOP"),
        ("max_tokens", "length", "MAX_TOKENS"),
        ("stop_sequence", "stop", "STOP"),
        ("tool_use", "tool_calls", "STOP"),
        ("pause_turn", "stop", "STOP"),
        ("refusal", "content_filter", "SAFETY"),
        ("model_context_window_exceeded", "length", "MAX_TOKENS"),
    ] {
        let body = json!({"id": "msg_1", "model": "c", "content": [{"type": "text", "text": "x"}], "stop_reason": wire});
        let r = Dialect::Anthropic.decode_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(encode(Dialect::OpenAiChat, &r)["choices"][0]["finish_reason"], openai, "{wire}");
        assert_eq!(encode(Dialect::Gemini, &r)["candidates"][0]["finishReason"], gemini, "{wire}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Content the gateway does not translate, and answers without content.

#[test]
fn gemini_blocked_prompt_is_a_content_filter_stop() {
    let body = br#"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[
        {"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH"}]},
        "usageMetadata":{"promptTokenCount":8,"totalTokenCount":8}}"#;
    let r = Dialect::Gemini.decode_response(body).unwrap();
    assert!(r.content.is_empty());
    assert_eq!(r.stop_reason, StopReason::ContentFilter);
    assert_eq!(r.usage.input_tokens, 8);
    assert_eq!(encode(Dialect::Anthropic, &r)["stop_reason"], "refusal");
    assert_eq!(encode(Dialect::OpenAiChat, &r)["choices"][0]["finish_reason"], "content_filter");
}

#[test]
fn answers_without_choices_or_candidates_are_errors() {
    assert!(Dialect::OpenAiChat.decode_response(br#"{"id":"chatcmpl-1","model":"g","choices":[]}"#).is_err());
    assert!(Dialect::Gemini.decode_response(br#"{"candidates":[]}"#).is_err());
    assert!(Dialect::Gemini.decode_response(br#"{}"#).is_err());
}

#[test]
fn tool_calls_in_answers_translate_between_every_dialect() {
    let body = br#"{"id":"msg_1","model":"c","stop_reason":"tool_use","content":[
        {"type":"text","text":"Let me check."},
        {"type":"tool_use","id":"toolu_01D7FLrfh4GYq7yT1ULFeyMV","name":"get_stock_price","input":{"ticker":"^GSPC"}}]}"#;
    let r = Dialect::Anthropic.decode_response(body).unwrap();
    let call = ToolCall {
        id: "toolu_01D7FLrfh4GYq7yT1ULFeyMV".into(),
        name: "get_stock_price".into(),
        arguments: r#"{"ticker":"^GSPC"}"#.into(),
    };
    assert_eq!(r.content, vec![Part::Text("Let me check.".into()), Part::ToolCall(call.clone())]);
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    let o = encode(Dialect::OpenAiChat, &r);
    assert_eq!(o["choices"][0]["message"]["content"], "Let me check.");
    assert_eq!(o["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        o["choices"][0]["message"]["tool_calls"],
        json!([{"id": call.id, "type": "function",
                "function": {"name": "get_stock_price", "arguments": "{\"ticker\":\"^GSPC\"}"}}])
    );
    let g = encode(Dialect::Gemini, &r);
    assert_eq!(g["candidates"][0]["content"]["parts"][1]["functionCall"]["args"], json!({"ticker": "^GSPC"}));

    // OpenAI's null content with tool calls, back to Anthropic blocks.
    let body = br#"{"id":"chatcmpl-1","model":"g","choices":[{"index":0,"finish_reason":"tool_calls",
        "message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
        "function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}"#;
    let r = Dialect::OpenAiChat.decode_response(body).unwrap();
    assert_eq!(
        r.content,
        vec![Part::ToolCall(ToolCall {
            id: "call_1".into(),
            name: "f".into(),
            arguments: r#"{"a":1}"#.into()
        })]
    );
    let a = encode(Dialect::Anthropic, &r);
    assert_eq!(a["content"], json!([{"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}]));
    assert_eq!(a["stop_reason"], "tool_use");

    // Gemini gives no ids: one is made from the answer's id, and STOP after a call means tool use.
    let body = br#"{"responseId":"r9","candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},
        "finishReason":"STOP"}]}"#;
    let r = Dialect::Gemini.decode_response(body).unwrap();
    assert_eq!(
        r.content,
        vec![Part::ToolCall(ToolCall { id: "call_r9_0".into(), name: "f".into(), arguments: "{}".into() })]
    );
    assert_eq!(r.stop_reason, StopReason::ToolUse);
}

// ---------------------------------------------------------------------------------------------------------------
// Error bodies.

#[test]
fn published_error_bodies_are_never_mistaken_for_answers() {
    for path in ["anthropic/error.json", "openai/error.json", "gemini/error.json"] {
        for d in ALL {
            assert!(
                d.decode_response(fixture(path).as_bytes()).is_err(),
                "{d} accepted {path} as a response"
            );
        }
    }
}

#[test]
fn published_error_bodies_yield_their_type_and_message() {
    let cases = [
        ("anthropic/error.json", "not_found_error", "The requested resource could not be found."),
        (
            "openai/error.json",
            "invalid_request_error",
            "Incorrect API key provided: sk-xxxx. You can find your API key at https://platform.openai.com/account/api-keys.",
        ),
        ("gemini/error.json", "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    ];
    for (path, kind, message) in cases {
        let got = upstream_error_message(fixture(path).as_bytes()).unwrap();
        assert_eq!(got, (Some(kind.to_owned()), message.to_owned()), "{path}");
    }
    assert_eq!(upstream_error_message(b"<html>502 Bad Gateway</html>"), None);
}

/// The key set of every object in `v`, recursively: two bodies have the same shape when these match.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        _ => Value::Null,
    }
}

#[test]
fn error_shapes_match_the_published_bodies() {
    let e = |kind, status| ErrorShape { status, kind, message: "m", param: None };
    let a = e(ErrorType::NotFound, 404).body(Dialect::Anthropic);
    assert_eq!(shape(&a), shape(&json(fixture("anthropic/error.json").as_bytes())));
    assert_eq!(a["error"]["type"], "not_found_error");

    let o = e(ErrorType::Authentication, 401).body(Dialect::OpenAiChat);
    assert_eq!(shape(&o), shape(&json(fixture("openai/error.json").as_bytes())));
    assert_eq!(o["error"]["code"], "invalid_api_key");

    let g = e(ErrorType::InvalidRequest, 400).body(Dialect::Gemini);
    let mut published = json(fixture("gemini/error.json").as_bytes());
    published["error"].as_object_mut().unwrap().remove("details"); // optional in google.rpc.Status
    assert_eq!(shape(&g), shape(&published));
    assert_eq!((&g["error"]["code"], &g["error"]["status"]), (&json!(400), &json!("INVALID_ARGUMENT")));
}

#[test]
fn every_error_type_maps_to_a_type_each_dialect_defines() {
    // <https://docs.anthropic.com/en/api/errors>
    let anthropic = [
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    ];
    // <https://cloud.google.com/apis/design/errors#http_mapping>
    let google = [
        "INVALID_ARGUMENT",
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
        "NOT_FOUND",
        "RESOURCE_EXHAUSTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DEADLINE_EXCEEDED",
    ];
    let all = [
        ErrorType::InvalidRequest,
        ErrorType::Authentication,
        ErrorType::PermissionDenied,
        ErrorType::NotFound,
        ErrorType::RequestTooLarge,
        ErrorType::ContextLength,
        ErrorType::RateLimited,
        ErrorType::Api,
        ErrorType::Overloaded,
        ErrorType::Timeout,
    ];
    for kind in all {
        let shape = ErrorShape { status: 500, kind, message: "m", param: Some("messages") };
        let a = shape.body(Dialect::Anthropic);
        assert_eq!(a["type"], "error");
        assert!(anthropic.contains(&a["error"]["type"].as_str().unwrap()), "{kind:?}: {a}");
        let g = shape.body(Dialect::Gemini);
        assert!(google.contains(&g["error"]["status"].as_str().unwrap()), "{kind:?}: {g}");
        let o = shape.body(Dialect::OpenAiChat);
        assert!(o["error"]["type"].is_string() && o["error"]["message"] == "m", "{kind:?}: {o}");
        assert_eq!(o["error"]["param"], "messages");
    }
}
