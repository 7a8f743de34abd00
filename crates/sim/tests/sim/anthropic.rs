//! Anthropic Messages: shapes, event sequence, validation and auth.

use nines_sim::SimOptions;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn plain_message_has_the_full_shape() {
    let sim = sim().await;
    let resp = post_anthropic(&sim, &anthropic_body("hello there")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["request-id"].to_str().unwrap().starts_with("req_"));
    assert_eq!(resp.headers()["content-type"], "application/json");
    let mut body: Value = resp.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("msg_"), "{id}");
    body["id"] = json!("ID");
    assert_eq!(
        body,
        json!({
            "id": "ID",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [{"type": "text", "text": "alpha says: hello there"}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 2,
                "output_tokens": 4,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0
            }
        })
    );
    assert_eq!(sim.hits(ANTHROPIC), 1);
    assert_eq!(sim.last_request(ANTHROPIC), Some(anthropic_body("hello there")));
}

#[tokio::test]
async fn system_blocks_and_last_user_text_make_the_answer() {
    let sim = sim().await;
    let body = json!({
        "model": "m",
        "max_tokens": 50,
        "system": [{"type": "text", "text": "be "}, {"type": "text", "text": "brief"}],
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": [{"type": "text", "text": "an answer"}]},
            {"role": "user", "content": [{"type": "text", "text": "second "}, {"type": "text", "text": "one"}]}
        ]
    });
    let body: Value = post_anthropic(&sim, &body).await.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "alpha says: second one [system: be brief]");
    // be, brief, first, question, an, answer, second, one
    assert_eq!(body["usage"]["input_tokens"], 8);
}

#[tokio::test]
async fn stop_sequence_and_max_tokens() {
    let sim = sim().await;
    let mut body = anthropic_body("one two three");
    body["stop_sequences"] = json!(["three"]);
    let got: Value = post_anthropic(&sim, &body).await.json().await.unwrap();
    assert_eq!(got["content"][0]["text"], "alpha says: one two ");
    assert_eq!(got["stop_reason"], "stop_sequence");
    assert_eq!(got["stop_sequence"], "three");

    let mut body = anthropic_body("one two three");
    body["max_tokens"] = json!(3);
    let got: Value = post_anthropic(&sim, &body).await.json().await.unwrap();
    assert_eq!(got["content"][0]["text"], "alpha says: one");
    assert_eq!(got["stop_reason"], "max_tokens");
    assert_eq!(got["stop_sequence"], Value::Null);
    assert_eq!(got["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn stream_follows_the_published_event_sequence() {
    let sim = sim().await;
    let mut body = anthropic_body("hello there");
    body["stream"] = json!(true);
    let resp = post_anthropic(&sim, &body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert!(resp.headers().contains_key("request-id"));
    let events = parse_sse(&resp.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for e in &events {
        assert_eq!(e.json()["type"], e.name.as_deref().unwrap(), "data type matches the event name");
    }
    let start = events[0].json();
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(start["message"]["model"], "claude-test");
    assert_eq!(start["message"]["stop_reason"], Value::Null);
    assert_eq!(start["message"]["usage"]["input_tokens"], 2);
    assert_eq!(start["message"]["usage"]["output_tokens"], 1);
    assert_eq!(
        events[1].json(),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    let deltas: Vec<String> = events[3..7]
        .iter()
        .map(|e| {
            let d = e.json();
            assert_eq!(d["index"], 0);
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(deltas, ["alpha", " says:", " hello", " there"]);
    assert_eq!(events[7].json(), json!({"type": "content_block_stop", "index": 0}));
    assert_eq!(
        events[8].json(),
        json!({
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": 4}
        })
    );
    assert_eq!(events[9].json(), json!({"type": "message_stop"}));
}

async fn expect_invalid(body: Value, needle: &str) {
    let sim = sim().await;
    let resp = post_anthropic(&sim, &body).await;
    assert_eq!(resp.status(), 400, "{body}");
    let header_id = resp.headers()["request-id"].to_str().unwrap().to_owned();
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(err["request_id"], header_id.as_str());
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains(needle), "{message:?} should contain {needle:?}");
}

#[tokio::test]
async fn validation_refuses_what_the_real_api_refuses() {
    let base = anthropic_body("hi");
    let with = |key: &str, value: Value| {
        let mut b = base.clone();
        b[key] = value;
        b
    };
    let without = |key: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(key);
        b
    };
    expect_invalid(without("model"), "model: Field required").await;
    expect_invalid(without("max_tokens"), "max_tokens: Field required").await;
    expect_invalid(with("max_tokens", json!(0)), "greater than or equal to 1").await;
    expect_invalid(with("max_tokens", json!("100")), "valid integer").await;
    expect_invalid(with("messages", json!([])), "at least one message").await;
    expect_invalid(with("messages", json!([{"role": "tool", "content": "x"}])), "messages.0.role").await;
    expect_invalid(with("messages", json!([{"role": "system", "content": "x"}])), "messages.0").await;
    expect_invalid(with("messages", json!([{"role": "user", "content": ""}])), "non-empty content").await;
    expect_invalid(
        with(
            "messages",
            json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
        ),
        "Input tag 'image_url'",
    )
    .await;
    expect_invalid(with("temperature", json!(1.5)), "temperature: Input should be less than or equal to 1")
        .await;
    expect_invalid(with("top_p", json!(-0.1)), "top_p").await;
    expect_invalid(with("stop_sequences", json!("END")), "stop_sequences: Input should be a valid list")
        .await;
    expect_invalid(with("stream", json!("yes")), "stream").await;
    expect_invalid(with("n", json!(2)), "n: Extra inputs are not permitted").await;
    expect_invalid(with("system", json!([{"type": "image"}])), "system.0.type").await;
    expect_invalid(
        with("tools", json!([{"type": "function", "function": {"name": "f", "parameters": {}}}])),
        "Input tag 'function'",
    )
    .await;
    expect_invalid(with("tool_choice", json!("auto")), "tool_choice").await;
    expect_invalid(
        with(
            "messages",
            json!([
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}]},
                {"role": "user", "content": "well?"}
            ]),
        ),
        "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1",
    )
    .await;
    expect_invalid(
        with(
            "messages",
            json!([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}]),
        ),
        "unexpected `tool_use_id`",
    )
    .await;
    expect_invalid(
        with(
            "messages",
            json!([
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "w", "input": "{}"}]}
            ]),
        ),
        "input: Input should be a valid dictionary",
    )
    .await;
    expect_invalid(
        with(
            "messages",
            json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure "}]),
        ),
        "trailing whitespace",
    )
    .await;
}

#[tokio::test]
async fn tool_round_trip_is_accepted() {
    let sim = sim().await;
    let body = json!({
        "model": "m",
        "max_tokens": 100,
        "tools": [{"name": "weather", "description": "d", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "auto"},
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}
        ]
    });
    let resp = post_anthropic(&sim, &body).await;
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    // The last message carries tool results: the answer reports them (tools.rs covers this in depth).
    assert_eq!(got["content"][0]["text"], "alpha says: tool said: sunny");
}

#[tokio::test]
async fn missing_version_header_and_bad_json_are_400() {
    let sim = sim().await;
    let url = format!("{}{ANTHROPIC}", sim.base_url());
    let resp = client().post(&url).json(&anthropic_body("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["message"], "anthropic-version: header is required");

    let resp = client()
        .post(&url)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(sim.hits(ANTHROPIC), 2, "refused requests are hits too");
}

#[tokio::test]
async fn api_key_is_required_when_configured() {
    let sim = sim_with(SimOptions::new("alpha").with_api_key("sk-ant-secret")).await;
    let url = format!("{}{ANTHROPIC}", sim.base_url());
    for key in [None, Some("wrong")] {
        let mut req =
            client().post(&url).header("anthropic-version", "2023-06-01").json(&anthropic_body("hi"));
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["type"], "error");
        assert_eq!(err["error"]["type"], "authentication_error");
    }
    let resp = client()
        .post(&url)
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "sk-ant-secret")
        .json(&anthropic_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(sim.last_headers(ANTHROPIC).unwrap()["x-api-key"], "sk-ant-secret");
}

/// API version 2026-10-21 (what Anthropic SDK 2.x sends) refuses sampling parameters, documents in assistant
/// messages and citations on user text; 2023-06-01 still takes them. Keys may come as a bearer token.
#[tokio::test]
async fn version_2026_10_21_rules() {
    let sim = sim_with(SimOptions::new("alpha").with_api_key("sk-ant-secret")).await;
    let url = format!("{}{ANTHROPIC}", sim.base_url());
    let send = |version: &'static str, body: Value| {
        client()
            .post(&url)
            .header("anthropic-version", version)
            .header("authorization", "Bearer sk-ant-secret")
            .json(&body)
            .send()
    };
    let mut with_temperature = anthropic_body("hi");
    with_temperature["temperature"] = json!(1.0);
    let resp = send("2026-10-21", with_temperature.clone()).await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["message"], "temperature: Extra inputs are not permitted");
    assert_eq!(send("2023-06-01", with_temperature).await.unwrap().status(), 200);

    let cited = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "x", "citations": [{"type": "char_location", "cited_text": "x",
         "document_index": 0, "start_char_index": 0, "end_char_index": 1}]}]}]});
    assert_eq!(send("2026-10-21", cited).await.unwrap().status(), 400);
    assert_eq!(send("2026-10-21", anthropic_body("hi")).await.unwrap().status(), 200);
}

/// Claude Code sends a system message inside the conversation, after its first user message.
#[tokio::test]
async fn a_system_message_inside_the_conversation_is_accepted() {
    let sim = sim().await;
    let body = json!({"model": "claude-test", "max_tokens": 100, "messages": [
        {"role": "user", "content": "hello"},
        {"role": "system", "content": [{"type": "text", "text": "reminder"}]},
        {"role": "user", "content": "again"}]});
    let resp = post_anthropic(&sim, &body).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "alpha says: again");
}
