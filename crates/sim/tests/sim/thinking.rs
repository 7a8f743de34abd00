//! Thinking: Anthropic thinking blocks (`"{name} thinks."`, signature `sig_{name}`), Gemini thought parts with a
//! `thoughtSignature`, OpenAI `reasoning_tokens`; and signatures sent back are accepted only by the simulator that
//! minted them.

use nines_sim::SimOptions;
use serde_json::{Value, json};

use crate::common::*;

fn thinking_body(text: &str) -> Value {
    let mut body = anthropic_body(text);
    body["max_tokens"] = json!(2048);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    body
}

const ALPHA_SIGNATURE_B64: &str = "c2lnX2FscGhh";

#[tokio::test]
async fn anthropic_answer_starts_with_a_thinking_block() {
    let sim = sim().await;
    let got: Value = post_anthropic(&sim, &thinking_body("hello there")).await.json().await.unwrap();
    assert_eq!(
        got["content"],
        json!([
            {"type": "thinking", "thinking": "alpha thinks.", "signature": "sig_alpha"},
            {"type": "text", "text": "alpha says: hello there"}
        ])
    );
    assert_eq!(got["usage"]["output_tokens"], 4 + 2);

    let mut adaptive = anthropic_body("hi");
    adaptive["thinking"] = json!({"type": "adaptive", "display": "omitted"});
    let got: Value = post_anthropic(&sim, &adaptive).await.json().await.unwrap();
    assert_eq!(got["content"][0], json!({"type": "thinking", "thinking": "", "signature": "sig_alpha"}));

    let mut disabled = anthropic_body("hi");
    disabled["thinking"] = json!({"type": "disabled"});
    let got: Value = post_anthropic(&sim, &disabled).await.json().await.unwrap();
    assert_eq!(got["content"], json!([{"type": "text", "text": "alpha says: hi"}]));
}

#[tokio::test]
async fn anthropic_streams_thinking_then_text_or_tool_use() {
    let sim = sim().await;
    let mut body = thinking_body("hi");
    body["stream"] = json!(true);
    let events = parse_sse(&post_anthropic(&sim, &body).await.text().await.unwrap());
    let data: Vec<Value> = events.iter().map(|e| e.json()).collect();
    let types: Vec<&str> = data.iter().map(|d| d["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        data[1],
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
    );
    assert_eq!(
        data[3],
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "alpha thinks."}})
    );
    assert_eq!(
        data[4],
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig_alpha"}})
    );
    assert_eq!(data[5], json!({"type": "content_block_stop", "index": 0}));
    assert_eq!(data[6]["index"], 1);
    assert_eq!(data[6]["content_block"], json!({"type": "text", "text": ""}));
    assert_eq!(data[7]["delta"], json!({"type": "text_delta", "text": "alpha"}));
    assert_eq!(data[11]["usage"]["output_tokens"], 3 + 2);

    let mut tools = thinking_body("weather");
    tools["stream"] = json!(true);
    tools["tools"] = json!([{"name": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let events = parse_sse(&post_anthropic(&sim, &tools).await.text().await.unwrap());
    let data: Vec<Value> = events.iter().map(|e| e.json()).collect();
    assert_eq!(data[1]["content_block"]["type"], "thinking");
    assert_eq!(
        data[6],
        json!({"type": "content_block_start", "index": 1, "content_block":
            {"type": "tool_use", "id": "toolu_sim_alpha_0", "name": "weather", "input": {}}})
    );
    assert_eq!(data.iter().rev().nth(1).unwrap()["delta"]["stop_reason"], "tool_use");
}

async fn anthropic_error(sim: &nines_sim::Sim, body: &Value) -> String {
    let resp = post_anthropic(sim, body).await;
    assert_eq!(resp.status(), 400, "{body}");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");
    err["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn anthropic_thinking_is_validated() {
    let sim = sim().await;
    let mut small = thinking_body("hi");
    small["thinking"]["budget_tokens"] = json!(512);
    assert_eq!(
        anthropic_error(&sim, &small).await,
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    );
    let mut over = thinking_body("hi");
    over["max_tokens"] = json!(1024);
    assert!(
        anthropic_error(&sim, &over)
            .await
            .starts_with("`max_tokens` must be greater than `thinking.budget_tokens`")
    );
    let mut adaptive = anthropic_body("hi");
    adaptive["thinking"] = json!({"type": "adaptive", "budget_tokens": 2000});
    assert_eq!(
        anthropic_error(&sim, &adaptive).await,
        "thinking.adaptive.budget_tokens: Extra inputs are not permitted"
    );
    let mut forced = thinking_body("hi");
    forced["tools"] = json!([{"name": "t", "input_schema": {"type": "object"}}]);
    forced["tool_choice"] = json!({"type": "any"});
    assert_eq!(
        anthropic_error(&sim, &forced).await,
        "Thinking may not be enabled when tool_choice forces tool use."
    );
}

fn replay(assistant: Value) -> Value {
    let mut body = anthropic_body("again");
    body["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": "again"}
    ]);
    body
}

#[tokio::test]
async fn anthropic_accepts_only_its_own_signatures() {
    let alpha = sim().await;
    let beta = sim_with(SimOptions::new("beta")).await;
    // What beta answered, sent back to beta: fine. The same blocks sent to alpha: refused.
    let answer: Value = post_anthropic(&beta, &thinking_body("hi")).await.json().await.unwrap();
    let history = replay(answer["content"].clone());
    assert_eq!(post_anthropic(&beta, &history).await.status(), 200);
    assert_eq!(
        anthropic_error(&alpha, &history).await,
        "messages.1.content.0: Invalid `signature` in `thinking` block"
    );

    let own = replay(
        json!([{"type": "thinking", "thinking": "x", "signature": "sig_alpha"}, {"type": "text", "text": "ok"}]),
    );
    assert_eq!(post_anthropic(&alpha, &own).await.status(), 200);
    let missing = replay(json!([{"type": "thinking", "thinking": "x"}, {"type": "text", "text": "ok"}]));
    assert_eq!(
        anthropic_error(&alpha, &missing).await,
        "messages.1.content.0.thinking.signature: Field required"
    );
    let redacted =
        replay(json!([{"type": "redacted_thinking", "data": "sig_alpha"}, {"type": "text", "text": "ok"}]));
    assert_eq!(post_anthropic(&alpha, &redacted).await.status(), 200);
    let foreign =
        replay(json!([{"type": "redacted_thinking", "data": "EmwKAhgB"}, {"type": "text", "text": "ok"}]));
    assert_eq!(
        anthropic_error(&alpha, &foreign).await,
        "messages.1.content.0: Invalid `data` in `redacted_thinking` block"
    );
}

#[tokio::test]
async fn anthropic_thinking_with_tool_results_needs_the_thinking_block() {
    let sim = sim().await;
    let mut body = thinking_body("weather?");
    body["tools"] = json!([{"name": "weather", "input_schema": {"type": "object"}}]);
    let tool_use = json!({"type": "tool_use", "id": "t1", "name": "weather", "input": {}});
    let result = json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]});
    body["messages"] = json!([{"role": "user", "content": "weather?"}, {"role": "assistant", "content": [tool_use]}, result]);
    assert!(anthropic_error(&sim, &body).await.starts_with(
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`."
    ));
    body["messages"][1]["content"] =
        json!([{"type": "thinking", "thinking": "alpha thinks.", "signature": "sig_alpha"}, tool_use]);
    let got: Value = post_anthropic(&sim, &body).await.json().await.unwrap();
    assert_eq!(got["content"][1], json!({"type": "text", "text": "alpha says: tool said: sunny"}));
}

#[tokio::test]
async fn gemini_includes_thoughts_and_a_signature() {
    let sim = sim().await;
    let mut body = gemini_body("hello there");
    body["generationConfig"] = json!({"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}});
    let got: Value = post(&sim, GEMINI, &body).await.json().await.unwrap();
    assert_eq!(
        got["candidates"][0]["content"]["parts"],
        json!([
            {"text": "alpha thinks.", "thought": true},
            {"text": "alpha says: hello there", "thoughtSignature": ALPHA_SIGNATURE_B64}
        ])
    );
    assert_eq!(
        got["usageMetadata"],
        json!({"promptTokenCount": 2, "candidatesTokenCount": 4, "thoughtsTokenCount": 2, "totalTokenCount": 8})
    );

    let url = format!("{}{GEMINI_STREAM}?alt=sse", sim.base_url());
    let events = parse_sse(&client().post(&url).json(&body).send().await.unwrap().text().await.unwrap());
    let chunks: Vec<Value> = events.iter().map(|e| e.json()).collect();
    assert_eq!(chunks.len(), 1 + 4);
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"],
        json!([{"text": "alpha thinks.", "thought": true}])
    );
    assert_eq!(
        chunks[1]["candidates"][0]["content"]["parts"],
        json!([{"text": "alpha", "thoughtSignature": ALPHA_SIGNATURE_B64}])
    );
    assert_eq!(chunks[2]["candidates"][0]["content"]["parts"], json!([{"text": " says:"}]));
    assert_eq!(chunks[4]["usageMetadata"]["thoughtsTokenCount"], 2);

    let mut tools = body.clone();
    tools["tools"] = json!([{"functionDeclarations": [{"name": "a"}, {"name": "b"}]}]);
    tools["contents"][0]["parts"][0]["text"] = json!("in parallel");
    let got: Value = post(&sim, GEMINI, &tools).await.json().await.unwrap();
    assert_eq!(
        got["candidates"][0]["content"]["parts"],
        json!([
            {"text": "alpha thinks.", "thought": true},
            {"functionCall": {"name": "a", "args": {}}, "thoughtSignature": ALPHA_SIGNATURE_B64},
            {"functionCall": {"name": "b", "args": {}}}
        ])
    );

    // A thinking budget of 0 turns thinking off: no thoughts to include.
    let mut off = gemini_body("hi");
    off["generation_config"] = json!({"thinking_config": {"include_thoughts": true, "thinking_budget": 0}});
    let got: Value = post(&sim, GEMINI, &off).await.json().await.unwrap();
    assert_eq!(got["candidates"][0]["content"]["parts"], json!([{"text": "alpha says: hi"}]));
    assert!(got["usageMetadata"].get("thoughtsTokenCount").is_none());
}

#[tokio::test]
async fn gemini_accepts_only_its_own_thought_signatures() {
    let alpha = sim().await;
    let beta = sim_with(SimOptions::new("beta")).await;
    let mut ask = gemini_body("hi");
    ask["generationConfig"] = json!({"thinkingConfig": {"includeThoughts": true}});
    let answer: Value = post(&beta, GEMINI, &ask).await.json().await.unwrap();
    let history = json!({"contents": [
        {"role": "user", "parts": [{"text": "hi"}]},
        answer["candidates"][0]["content"],
        {"role": "user", "parts": [{"text": "again"}]}
    ]});
    assert_eq!(post(&beta, GEMINI, &history).await.status(), 200);
    let resp = post(&alpha, GEMINI, &history).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err["error"],
        json!({"code": 400, "message": "Corrupted thought signature.", "status": "INVALID_ARGUMENT"})
    );

    let call = |signature: &str| {
        json!({"contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": signature}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"result": "ok"}}}]}
        ]})
    };
    let got: Value = post(&alpha, GEMINI, &call(ALPHA_SIGNATURE_B64)).await.json().await.unwrap();
    assert_eq!(got["candidates"][0]["content"]["parts"][0]["text"], "alpha says: tool said: ok");
    let resp = post(&alpha, GEMINI, &call("not base64!")).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"]["message"].as_str().unwrap().contains("thought_signature' (TYPE_BYTES)"), "{err}");
}

#[tokio::test]
async fn openai_reasoning_effort_counts_reasoning_tokens() {
    let sim = sim().await;
    for effort in ["minimal", "low", "medium", "high", "xhigh"] {
        let mut body = openai_body("hello there");
        body["reasoning_effort"] = json!(effort);
        let got: Value = post(&sim, OPENAI, &body).await.json().await.unwrap();
        assert_eq!(got["choices"][0]["message"]["content"], "alpha says: hello there", "{effort}");
        assert_eq!(got["usage"]["completion_tokens"], 4 + 2);
        assert_eq!(got["usage"]["total_tokens"], 2 + 4 + 2);
        assert_eq!(got["usage"]["completion_tokens_details"]["reasoning_tokens"], 2);
    }
    let mut none = openai_body("hi");
    none["reasoning_effort"] = json!("none");
    let got: Value = post(&sim, OPENAI, &none).await.json().await.unwrap();
    assert_eq!(got["usage"]["completion_tokens_details"]["reasoning_tokens"], 0);

    let mut streamed = openai_body("hi");
    streamed["reasoning_effort"] = json!("high");
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let events = parse_sse(&post(&sim, OPENAI, &streamed).await.text().await.unwrap());
    let usage = events[events.len() - 2].json()["usage"].clone();
    assert_eq!(usage["completion_tokens"], 3 + 2);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 2);

    let mut bad = openai_body("hi");
    bad["reasoning_effort"] = json!("extreme");
    let resp = post(&sim, OPENAI, &bad).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err["error"]["message"],
        "Invalid value: 'extreme'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'."
    );
    assert_eq!(err["error"]["param"], "reasoning_effort");
}
