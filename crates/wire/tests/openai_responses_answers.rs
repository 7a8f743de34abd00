//! OpenAI Responses conformance, whole answers: the published Response objects decode, translate to the other
//! three dialects and back, every encoded Response carries the fields the openai SDK's `Response` model requires,
//! stop reasons map both ways, ids follow the documented scheme, and reasoning signatures never cross dialects.
//!
//! Fixture sources (<https://platform.openai.com/docs/api-reference/responses/create>, "Create a model response"):
//! - responses/response.json: the "Text input" example response, verbatim.
//! - responses/response_function_call.json: the "Functions" example response, verbatim (its usage has no
//!   `input_tokens_details`, as published).
//!
//! Where Responses legitimately differs: an answer is `completed` or `incomplete` (`max_output_tokens`,
//! `content_filter`), so stop sequences, tool use and pauses all read back as the end of a turn unless function
//! calls say tool use; a Response with no text has no message item; cache reads and writes are carried
//! (`input_tokens_details.cached_tokens`, `.cache_write_tokens`, the latter required by the SDK's current types).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{check_response_object, ctx, fixture, json};
use nines_wire::{ChatResponse, Dialect, EncodeCtx, Part, Signature, StopReason, Thinking, ToolCall, Usage};
use serde_json::{Value, json};

const R: Dialect = Dialect::OpenAiResponses;
const ENCRYPTED: &str = "gAAAAABoEncryptedReasoningFixture==";

fn weather_call() -> ToolCall {
    ToolCall {
        id: "call_unLAR8MvFNptuiZK6K6HCy5k".into(),
        name: "get_current_weather".into(),
        arguments: r#"{"location":"Boston, MA","unit":"celsius"}"#.into(),
    }
}

fn responses_signature() -> Signature {
    Signature {
        origin: R,
        value: format!(
            r#"{{"id":"rs_6806bfca0b2481918a5748308061a2600d3ce51bdffd5476","encrypted_content":"{ENCRYPTED}"}}"#
        ),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Whole answers.

fn decode_response(path: &str) -> ChatResponse {
    R.decode_response(fixture(path).as_bytes()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn encode_response(r: &ChatResponse) -> Value {
    json(&R.encode_response(r, &ctx()))
}

#[test]
fn published_responses_decode() {
    let r = decode_response("responses/response.json");
    assert_eq!(
        (r.id.as_str(), r.model.as_str()),
        ("resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", "gpt-4.1-2025-04-14")
    );
    assert!(r.text().starts_with("In a peaceful grove beneath a silver moon"));
    assert_eq!(r.stop_reason, StopReason::EndTurn);
    assert_eq!(r.usage, Usage { input_tokens: 36, output_tokens: 87, ..Usage::default() });

    let r = decode_response("responses/response_function_call.json");
    assert_eq!(r.content, vec![Part::ToolCall(weather_call())], "the call_id is the canonical id, not fc_…");
    assert_eq!(
        r.stop_reason,
        StopReason::ToolUse,
        "Responses says `completed`; the function call says tool use"
    );
    assert_eq!(r.usage, Usage { input_tokens: 291, output_tokens: 23, ..Usage::default() });
}

#[test]
fn published_responses_translate_to_every_dialect_and_back() {
    let r = decode_response("responses/response.json");
    let a = json(&Dialect::Anthropic.encode_response(&r, &ctx()));
    assert_eq!((&a["content"][0]["text"], &a["stop_reason"]), (&json!(r.text()), &json!("end_turn")));
    assert_eq!(a["usage"]["input_tokens"], 36);
    let o = json(&Dialect::OpenAiChat.encode_response(&r, &ctx()));
    assert_eq!(
        (&o["choices"][0]["message"]["content"], &o["usage"]["total_tokens"]),
        (&json!(r.text()), &json!(123))
    );
    let g = json(&Dialect::Gemini.encode_response(&r, &ctx()));
    assert_eq!(g["candidates"][0]["content"]["parts"][0]["text"], json!(r.text()));
    let v = encode_response(&r);
    check_response_object(&v, "completed");
    assert_eq!(v["id"], "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b");
    assert_eq!(v["output"][0]["id"], "msg_0_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b");
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                                  "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123})
    );

    let r = decode_response("responses/response_function_call.json");
    let a = json(&Dialect::Anthropic.encode_response(&r, &ctx()));
    assert_eq!(a["content"][0]["input"], json!({"location": "Boston, MA", "unit": "celsius"}));
    assert_eq!(a["stop_reason"], "tool_use");
    let o = json(&Dialect::OpenAiChat.encode_response(&r, &ctx()));
    assert_eq!(o["choices"][0]["message"]["tool_calls"][0]["id"], "call_unLAR8MvFNptuiZK6K6HCy5k");
    assert_eq!(o["choices"][0]["finish_reason"], "tool_calls");
    let g = json(&Dialect::Gemini.encode_response(&r, &ctx()));
    assert_eq!(g["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "get_current_weather");
    let v = encode_response(&r);
    check_response_object(&v, "completed");
    let item = &v["output"][0];
    assert_eq!(
        (&item["type"], &item["call_id"], &item["status"], &item["arguments"]),
        (
            &json!("function_call"),
            &json!("call_unLAR8MvFNptuiZK6K6HCy5k"),
            &json!("completed"),
            &json!(r#"{"location":"Boston, MA","unit":"celsius"}"#)
        )
    );
    assert!(item["id"].as_str().unwrap().starts_with("fc_0_"));
    assert_eq!(R.decode_response(&R.encode_response(&r, &ctx())).unwrap().content, r.content);
}

#[test]
fn other_dialects_answers_reach_a_responses_client() {
    let a = Dialect::Anthropic.decode_response(fixture("anthropic/response.json").as_bytes()).unwrap();
    let v = encode_response(&a);
    check_response_object(&v, "completed");
    assert_eq!(v["id"], "resp_msg_013Zva2CMHLNnXjNJJKqJ2EF");
    assert_eq!(v["output"][0]["content"][0]["text"], "Hi! My name is Claude.");
    assert_eq!(
        v["usage"]["input_tokens"],
        2095 + 2051 + 2051,
        "input counts cached tokens, as OpenAI's does"
    );
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 2051);
    for path in ["openai/response.json", "gemini/response.json"] {
        let d = if path.starts_with("openai") { Dialect::OpenAiChat } else { Dialect::Gemini };
        let r = d.decode_response(fixture(path).as_bytes()).unwrap();
        let v = encode_response(&r);
        check_response_object(&v, "completed");
        assert_eq!(R.decode_response(v.to_string().as_bytes()).unwrap().text(), r.text(), "{path}");
    }
}

#[test]
fn the_gateway_response_id_is_used_verbatim_and_names_the_items() {
    let r = ChatResponse {
        id: "upstream-1".into(),
        model: "m".into(),
        content: vec![
            Part::Thinking(Thinking { text: "hmm".into(), signature: None }),
            Part::Text("Hi".into()),
            Part::ToolCall(ToolCall { id: "call_1".into(), name: "f".into(), arguments: "{}".into() }),
        ],
        stop_reason: StopReason::ToolUse,
        usage: Usage::default(),
    };
    let mut c = ctx();
    assert_eq!(encode_response(&r)["id"], "resp_upstream-1");
    c.response_id = Some("resp_gw42".into());
    let v = json(&R.encode_response(&r, &c));
    assert_eq!(v["id"], "resp_gw42");
    let ids: Vec<&str> = v["output"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["rs_0_gw42", "msg_1_gw42", "fc_2_gw42"]);
    // Other dialects do not care.
    assert_eq!(json(&Dialect::OpenAiChat.encode_response(&r, &c))["id"], "chatcmpl-upstream-1");
}

#[test]
fn stop_reasons_map_both_ways() {
    for (canonical, status, reason, back) in [
        (StopReason::EndTurn, "completed", Value::Null, StopReason::EndTurn),
        (StopReason::StopSequence(Some("###".into())), "completed", Value::Null, StopReason::EndTurn),
        (StopReason::ToolUse, "completed", Value::Null, StopReason::EndTurn),
        (StopReason::Paused, "completed", Value::Null, StopReason::EndTurn),
        (StopReason::MaxTokens, "incomplete", json!("max_output_tokens"), StopReason::MaxTokens),
        (StopReason::ContentFilter, "incomplete", json!("content_filter"), StopReason::ContentFilter),
    ] {
        let r = ChatResponse {
            id: "x".into(),
            model: "m".into(),
            content: vec![Part::Text("x".into())],
            stop_reason: canonical.clone(),
            usage: Usage::default(),
        };
        let v = encode_response(&r);
        check_response_object(&v, status);
        assert_eq!(v["incomplete_details"]["reason"], reason, "{canonical:?}");
        let want_item = if status == "completed" { "completed" } else { "incomplete" };
        assert_eq!(v["output"][0]["status"], want_item, "{canonical:?}");
        assert_eq!(R.decode_response(v.to_string().as_bytes()).unwrap().stop_reason, back, "{canonical:?}");
    }
    let body = |status: &str, reason: Value, output: Value| {
        json!({"id": "resp_1", "object": "response", "status": status, "model": "g",
               "incomplete_details": if reason.is_null() { Value::Null } else { json!({"reason": reason}) },
               "output": output})
        .to_string()
    };
    let call =
        json!([{"type": "function_call", "id": "fc_1", "call_id": "c", "name": "f", "arguments": "{\"a\""}]);
    let refusal = json!([{"type": "message", "id": "m", "status": "completed", "role": "assistant",
                          "content": [{"type": "refusal", "refusal": "I can't help with that."}]}]);
    for (b, want) in [
        (body("incomplete", json!("max_output_tokens"), call.clone()), StopReason::MaxTokens),
        (body("completed", Value::Null, call), StopReason::ToolUse),
        (body("incomplete", json!("content_filter"), json!([])), StopReason::ContentFilter),
        (body("completed", Value::Null, refusal), StopReason::ContentFilter),
    ] {
        let r = R.decode_response(b.as_bytes()).unwrap();
        assert_eq!(r.stop_reason, want, "{b}");
    }
}

#[test]
fn failed_responses_and_other_dialects_bodies_are_not_answers() {
    let failed = json!({"id": "resp_1", "object": "response", "status": "failed", "output": [],
                        "error": {"code": "server_error", "message": "The server had an error"}});
    let err = R.decode_response(failed.to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("The server had an error"), "{err}");
    for path in [
        "anthropic/error.json",
        "openai/error.json",
        "gemini/error.json",
        "openai/response.json",
        "anthropic/response.json",
        "gemini/response.json",
    ] {
        assert!(R.decode_response(fixture(path).as_bytes()).is_err(), "{path} taken for a Response");
    }
    for d in [Dialect::Anthropic, Dialect::OpenAiChat, Dialect::Gemini] {
        assert!(
            d.decode_response(fixture("responses/response.json").as_bytes()).is_err(),
            "{d} took a Response"
        );
    }
}

#[test]
fn reasoning_items_are_shown_only_when_no_other_provider_signed_them() {
    let thinking = |signature: Option<Signature>| ChatResponse {
        id: "x".into(),
        model: "m".into(),
        content: vec![
            Part::Thinking(Thinking { text: "Let me think.".into(), signature }),
            Part::Text("42".into()),
        ],
        stop_reason: StopReason::EndTurn,
        usage: Usage { output_tokens: 10, reasoning_tokens: 7, ..Usage::default() },
    };
    let v = encode_response(&thinking(Some(responses_signature())));
    check_response_object(&v, "completed");
    assert_eq!(
        v["output"][0],
        json!({"id": "rs_0_x", "type": "reasoning", "status": "completed", "encrypted_content": ENCRYPTED,
               "summary": [{"type": "summary_text", "text": "Let me think."}]})
    );
    assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 7);
    let back = R.decode_response(v.to_string().as_bytes()).unwrap();
    let Part::Thinking(t) = &back.content[0] else { panic!("{back:?}") };
    assert_eq!(
        t.signature.as_ref().unwrap().value,
        format!(r#"{{"id":"rs_0_x","encrypted_content":"{ENCRYPTED}"}}"#)
    );

    let unsigned = encode_response(&thinking(None));
    assert_eq!(unsigned["output"][0]["summary"][0]["text"], "Let me think.");
    assert!(unsigned["output"][0].get("encrypted_content").is_none());

    let anthropic = Signature { origin: Dialect::Anthropic, value: "EqQBCgIYAhIM".into() };
    let v = encode_response(&thinking(Some(anthropic)));
    assert_eq!(v["output"].as_array().unwrap().len(), 1, "Anthropic's signed thinking is not shown: {v}");
    assert!(!v.to_string().contains("EqQBCgIYAhIM"));
    let from_anthropic = EncodeCtx { upstream: Some(Dialect::Anthropic), ..ctx() };
    let v = json(&R.encode_response(&thinking(None), &from_anthropic));
    assert_eq!(v["output"][0]["type"], "message", "unsigned thinking from a signing provider is not shown");
}

#[test]
fn openai_encrypted_reasoning_never_reaches_other_dialects() {
    let body = json!({"id": "resp_1", "object": "response", "status": "completed", "model": "o4-mini",
        "output": [
            {"type": "reasoning", "id": "rs_abc", "summary": [{"type": "summary_text", "text": "**Plan**"}, {"type": "summary_text", "text": "Then answer."}],
             "encrypted_content": ENCRYPTED},
            {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": "Done.", "annotations": []}]}],
        "usage": {"input_tokens": 5, "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 15}, "total_tokens": 25}});
    let r = R.decode_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        r.content[0],
        Part::Thinking(Thinking {
            text: "**Plan**\n\nThen answer.".into(),
            signature: Some(Signature {
                origin: R,
                value: format!(r#"{{"id":"rs_abc","encrypted_content":"{ENCRYPTED}"}}"#)
            })
        })
    );
    assert_eq!(r.usage.reasoning_tokens, 15);
    for d in [Dialect::Anthropic, Dialect::OpenAiChat, Dialect::Gemini] {
        for upstream in [None, Some(R), Some(d)] {
            let c = EncodeCtx { upstream, ..ctx() };
            let out = String::from_utf8(d.encode_response(&r, &c)).unwrap();
            assert!(!out.contains(ENCRYPTED) && !out.contains("rs_abc"), "{d} ({upstream:?}): {out}");
        }
    }
}
