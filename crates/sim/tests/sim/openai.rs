//! OpenAI Chat Completions: shapes, chunk sequence, validation and auth.

use nines_sim::SimOptions;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn plain_completion_has_the_full_shape() {
    let sim = sim().await;
    let body = json!({
        "model": "gpt-test",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello there"}]}
        ]
    });
    let resp = post(&sim, OPENAI, &body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], "gpt-test");
    assert!(body["system_fingerprint"].is_string());
    assert_eq!(
        body["choices"],
        json!([{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "alpha says: hello there [system: be brief]",
                "refusal": null,
                "annotations": []
            },
            "logprobs": null,
            "finish_reason": "stop"
        }])
    );
    assert_eq!(body["usage"]["prompt_tokens"], 4);
    assert_eq!(body["usage"]["completion_tokens"], 7);
    assert_eq!(body["usage"]["total_tokens"], 11);
}

#[tokio::test]
async fn length_and_stop_finish_reasons() {
    let sim = sim().await;
    let mut body = openai_body("one two three");
    body["max_completion_tokens"] = json!(4);
    let got: Value = post(&sim, OPENAI, &body).await.json().await.unwrap();
    assert_eq!(got["choices"][0]["message"]["content"], "alpha says: one two");
    assert_eq!(got["choices"][0]["finish_reason"], "length");

    let mut body = openai_body("one two three");
    body["stop"] = json!("two");
    let got: Value = post(&sim, OPENAI, &body).await.json().await.unwrap();
    assert_eq!(got["choices"][0]["message"]["content"], "alpha says: one ");
    assert_eq!(got["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn stream_with_usage_has_the_documented_chunks() {
    let sim = sim().await;
    let mut body = openai_body("hello there");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = post(&sim, OPENAI, &body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = parse_sse(&resp.text().await.unwrap());
    assert!(events.iter().all(|e| e.name.is_none()));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| e.json()).collect();
    // role chunk, 4 words, finish chunk, usage chunk
    assert_eq!(chunks.len(), 7);
    let id = chunks[0]["id"].clone();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], id);
        assert_eq!(c["model"], "gpt-test");
        assert!(c.as_object().unwrap().contains_key("usage"));
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "");
    assert_eq!(chunks[0]["choices"][0]["finish_reason"], Value::Null);
    let text: String = chunks[1..5]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, "alpha says: hello there");
    assert_eq!(chunks[5]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[5]["usage"], Value::Null);
    assert_eq!(chunks[6]["choices"], json!([]));
    assert_eq!(chunks[6]["usage"]["prompt_tokens"], 2);
    assert_eq!(chunks[6]["usage"]["completion_tokens"], 4);
    assert_eq!(chunks[6]["usage"]["total_tokens"], 6);
}

#[tokio::test]
async fn stream_without_usage_has_no_usage_field() {
    let sim = sim().await;
    let mut body = openai_body("hi");
    body["stream"] = json!(true);
    let events = parse_sse(&post(&sim, OPENAI, &body).await.text().await.unwrap());
    assert_eq!(events.len(), 1 + 3 + 1 + 1);
    for e in &events[..events.len() - 1] {
        assert!(!e.json().as_object().unwrap().contains_key("usage"));
    }
    assert_eq!(events[4].json()["choices"][0]["finish_reason"], "stop");
}

async fn expect_invalid(body: Value, needle: &str, param: Value) {
    let sim = sim().await;
    let resp = post(&sim, OPENAI, &body).await;
    assert_eq!(resp.status(), 400, "{body}");
    let err: Value = resp.json().await.unwrap();
    let keys: Vec<&String> = err["error"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["code", "message", "param", "type"]);
    assert_eq!(err["error"]["type"], "invalid_request_error");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains(needle), "{message:?} should contain {needle:?}");
    assert_eq!(err["error"]["param"], param, "{message}");
}

#[tokio::test]
async fn validation_refuses_what_the_real_api_refuses() {
    let base = openai_body("hi");
    let with = |key: &str, value: Value| {
        let mut b = base.clone();
        b[key] = value;
        b
    };
    expect_invalid(json!({"messages": base["messages"]}), "you must provide a model parameter", Value::Null)
        .await;
    expect_invalid(with("messages", json!([])), "empty array", json!("messages")).await;
    expect_invalid(json!({"model": "m"}), "Missing required parameter: 'messages'", json!("messages")).await;
    expect_invalid(
        with("max_tokens_to_sample", json!(5)),
        "Unrecognized request argument supplied",
        Value::Null,
    )
    .await;
    expect_invalid(with("temperature", json!(2.5)), "decimal above maximum value", json!("temperature"))
        .await;
    expect_invalid(with("top_p", json!("high")), "Invalid type for 'top_p'", json!("top_p")).await;
    expect_invalid(with("max_tokens", json!(0)), "integer below minimum value", json!("max_tokens")).await;
    expect_invalid(with("stop", json!(["a", "b", "c", "d", "e"])), "array too long", json!("stop")).await;
    expect_invalid(
        with("stream_options", json!({"include_usage": true})),
        "only allowed when 'stream' is enabled",
        json!("stream_options"),
    )
    .await;
    expect_invalid(
        with("messages", json!([{"role": "model", "content": "x"}])),
        "Invalid value: 'model'",
        json!("messages[0].role"),
    )
    .await;
    expect_invalid(
        with("messages", json!([{"role": "user", "content": [{"type": "input_text", "text": "x"}]}])),
        "Invalid value: 'input_text'",
        json!("messages[0].content[0].type"),
    )
    .await;
    expect_invalid(
        with("messages", json!([{"role": "user", "content": "x", "cache_control": {}}])),
        "Additional properties are not allowed",
        json!("messages[0]"),
    )
    .await;
    let call = json!({"id": "call_1", "type": "function", "function": {"name": "w", "arguments": {"city": "Paris"}}});
    expect_invalid(
        with("messages", json!([{"role": "user", "content": "x"}, {"role": "assistant", "content": null, "tool_calls": [call]}, {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}])),
        "expected a string, but got an object",
        json!("messages[1].tool_calls[0].function.arguments"),
    )
    .await;
    let call = json!({"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"}});
    expect_invalid(
        with("messages", json!([{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]}, {"role": "user", "content": "y"}])),
        "did not have response messages: call_1",
        json!("messages.[1].role"),
    )
    .await;
    expect_invalid(
        with("messages", json!([{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_9", "content": "y"}])),
        "must be a response to a preceeding message with 'tool_calls'",
        json!("messages.[1].role"),
    )
    .await;
    expect_invalid(
        with("tool_choice", json!("auto")),
        "only allowed when 'tools' are specified",
        json!("tool_choice"),
    )
    .await;
}

#[tokio::test]
async fn tool_round_trip_is_accepted() {
    let sim = sim().await;
    let call = json!({"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}});
    let body = json!({
        "model": "gpt-test",
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
        ]
    });
    let resp = post(&sim, OPENAI, &body).await;
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["choices"][0]["message"]["content"], "alpha says: tool said: sunny [system: sys]");
}

#[tokio::test]
async fn bearer_key_is_required_when_configured() {
    let sim = sim_with(SimOptions::new("alpha").with_api_key("sk-secret")).await;
    let url = format!("{}{OPENAI}", sim.base_url());
    let resp = client().post(&url).json(&openai_body("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(err["error"]["message"].as_str().unwrap().contains("You didn't provide an API key"));

    let resp = client().post(&url).bearer_auth("sk-wrong").json(&openai_body("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "invalid_api_key");
    assert_eq!(err["error"]["param"], Value::Null);

    let resp = client().post(&url).bearer_auth("sk-secret").json(&openai_body("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}
