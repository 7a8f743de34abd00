//! Translation end to end: each front door to each provider kind, plain and streaming, with what the simulator
//! received checked against the target's own format.

mod common;

use common::{Harness, p};
use serde_json::{Value, json};

#[tokio::test]
async fn each_front_door_reaches_each_provider_kind() {
    for kind in ["anthropic", "openai", "gemini"] {
        let h = Harness::new(&[p("only", kind, "model-x")]).await;
        for door in ["openai", "anthropic"] {
            for stream in [false, true] {
                let (path, body) = common::request(door, "translate me", stream);
                let r = h.post(path, body).await;
                let ctx = format!("door={door} kind={kind} stream={stream}");
                assert_eq!(r.status, 200, "{ctx}: {}", r.text);
                assert_eq!(r.answer_text(), "only says: translate me [system: be brief]", "{ctx}");
                assert_eq!(r.header("x-nines-target"), "only/model-x");
            }
        }
    }
}

#[tokio::test]
async fn the_target_receives_its_own_format() {
    let h = Harness::new(&[p("g", "gemini", "gemini-2.5-flash")]).await;
    let body = json!({"model": "chat", "max_tokens": 50, "temperature": 0.5, "top_p": 0.9, "stop": ["END"],
                      "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "q1"},
                                   {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}]});
    let r = h.post("/v1/chat/completions", body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = h.sims[0].last_request("/v1beta/models/gemini-2.5-flash:generateContent").unwrap();
    assert_eq!(sent["systemInstruction"]["parts"][0]["text"], "sys");
    assert_eq!(sent["contents"][1]["role"], "model");
    assert_eq!(sent["contents"][2]["parts"][0]["text"], "q2");
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 50);
    assert_eq!(sent["generationConfig"]["stopSequences"], json!(["END"]));

    let h = Harness::new(&[p("a", "anthropic", "claude-x")]).await;
    let body = json!({"model": "chat", "messages": [{"role": "developer", "content": "dev"},
                                                    {"role": "user", "content": "q"}]});
    let r = h.post("/v1/chat/completions", body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = h.sims[0].last_request("/v1/messages").unwrap();
    assert_eq!(sent["model"], "claude-x");
    assert_eq!(sent["system"], "dev");
    assert!(sent["max_tokens"].as_u64().unwrap() > 0, "Anthropic requires max_tokens: {sent}");
}

/// Same dialect: fields the gateway does not model reach the provider unchanged, and only `model` is replaced.
#[tokio::test]
async fn same_dialect_requests_keep_unmodelled_fields() {
    let h = Harness::new(&[p("a", "anthropic", "claude-real"), p("o", "openai", "gpt-real")]).await;
    let mut body = common::anthropic_body("hi", false);
    body["metadata"] = json!({"user_id": "u-1"});
    body["service_tier"] = json!("auto");
    let r = h
        .post_with(
            "/v1/messages",
            body,
            &[("anthropic-beta", "some-beta-2025"), ("anthropic-version", "2023-06-01")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = h.sims[0].last_request("/v1/messages").unwrap();
    assert_eq!(sent["model"], "claude-real");
    assert_eq!(sent["metadata"]["user_id"], "u-1");
    assert_eq!(sent["service_tier"], "auto");
    let headers = h.sims[0].last_headers("/v1/messages").unwrap();
    assert_eq!(headers.get("anthropic-beta").unwrap(), "some-beta-2025");

    // The Anthropic-only fields do not leak to an OpenAI target after a failover.
    h.fault(0, nines_sim::FaultKind::Status { status: 503, retry_after: None }, 1);
    let mut body = common::anthropic_body("hi", false);
    body["metadata"] = json!({"user_id": "u-1"});
    let r = h.post("/v1/messages", body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = h.sims[1].last_request("/v1/chat/completions").unwrap();
    assert_eq!(sent["model"], "gpt-real");
    assert!(sent.get("metadata").is_none(), "{sent}");
}

/// Stop reasons and usage come back in the client's vocabulary.
#[tokio::test]
async fn stop_reasons_and_usage_are_translated() {
    let h = Harness::new(&[p("o", "openai", "gpt")]).await;
    // max_tokens smaller than the answer: OpenAI "length" must reach an Anthropic client as "max_tokens".
    let body =
        json!({"model": "chat", "max_tokens": 2, "messages": [{"role": "user", "content": "a b c d e"}]});
    let r = h.post("/v1/messages", body).await;
    let v = r.json();
    assert_eq!(v["stop_reason"], "max_tokens", "{v}");
    assert_eq!(v["type"], "message");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["usage"]["output_tokens"], 2);

    let body = json!({"model": "chat", "max_tokens": 2, "stream": true,
                      "messages": [{"role": "user", "content": "a b c d e"}]});
    let r = h.post("/v1/messages", body).await;
    let delta = r.frames().into_iter().find(|f| f.event == "message_delta").unwrap();
    let d: Value = serde_json::from_str(&delta.data).unwrap();
    assert_eq!(d["delta"]["stop_reason"], "max_tokens", "{d}");
    assert_eq!(d["usage"]["output_tokens"], 2);

    let h = Harness::new(&[p("a", "anthropic", "claude")]).await;
    let body = json!({"model": "chat", "max_tokens": 2, "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "a b c d e"}]});
    let r = h.post("/v1/chat/completions", body).await;
    let chunks: Vec<Value> = r
        .frames()
        .iter()
        .filter(|f| f.data != "[DONE]")
        .map(|f| serde_json::from_str(&f.data).unwrap())
        .collect();
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "length"), "{}", r.text);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 2);
}

/// Tools reach a fallback of another dialect in its own format. A target declared without tool support is skipped
/// (never sent a request it would answer wrongly), and when no target can take the request the client gets a 400
/// naming the field.
#[tokio::test]
async fn tools_translate_and_capabilities_skip_targets() {
    let tools = json!([{"name": "get_weather", "description": "Weather for a city",
                        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let h = Harness::new(&[p("a", "anthropic", "claude"), p("o", "openai", "gpt")]).await;
    let mut body = common::anthropic_body("weather?", false);
    body["tools"] = tools.clone();
    let r = h.post("/v1/messages", body.clone()).await;
    assert_eq!(r.status, 200, "same dialect keeps the tools: {}", r.text);
    assert_eq!(h.sims[0].last_request("/v1/messages").unwrap()["tools"], tools);

    h.fault(0, nines_sim::FaultKind::Status { status: 503, retry_after: None }, 1);
    let r = h.post("/v1/messages", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-nines-target"), "o/gpt");
    let sent = h.sims[1].last_request("/v1/chat/completions").unwrap();
    assert_eq!(sent["tools"][0]["type"], "function");
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(sent["tools"][0]["function"]["parameters"], tools[0]["input_schema"]);

    let mut o = p("o", "openai", "gpt");
    o.extra = "capabilities = { tools = false }";
    let h = Harness::new(&[p("a", "anthropic", "claude"), o]).await;
    h.fault(0, nines_sim::FaultKind::Status { status: 503, retry_after: None }, 1);
    let r = h.post("/v1/messages", body.clone()).await;
    assert_eq!(r.status, 529, "{}", r.text);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        msg.contains(
            "o/gpt: skipped (`tools` cannot be sent to openai targets: o/gpt is declared without tools"
        ),
        "{msg}"
    );
    assert_eq!(h.sims[1].total_hits(), 0);

    let mut o = p("o", "openai", "gpt");
    o.extra = "capabilities = { tools = false }";
    let h = Harness::new(&[o]).await;
    let r = h.post("/v1/messages", body).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert!(r.text.contains("`tools`"), "{}", r.text);
    assert_eq!(h.sims[0].total_hits(), 0);
}

/// Claude Code's in-conversation system message reaches another dialect as system text (reported), and a
/// thinking request continuing another provider's tool turn is sent to Anthropic without thinking (reported),
/// since Anthropic would refuse a tool turn without its own signed thinking.
#[tokio::test]
async fn agent_shaped_requests_translate() {
    let h = Harness::new(&[p("o", "openai", "gpt-x")]).await;
    let body = json!({"model": "chat", "max_tokens": 100, "messages": [
        {"role": "user", "content": "hello"},
        {"role": "system", "content": "reminder"},
        {"role": "user", "content": "again"}]});
    let r = h.post("/v1/messages", body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = h.sims[0].last_request("/v1/chat/completions").unwrap();
    assert_eq!(sent["messages"][0], json!({"role": "system", "content": "reminder"}), "{sent}");
    assert!(r.header("x-nines-warning").contains("role=system"), "{:?}", r.headers);

    let h = Harness::new(&[p("a", "anthropic", "claude-x")]).await;
    let body = json!({"systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [{"functionDeclarations": [{"name": "read_file",
            "parametersJsonSchema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": true}},
        "contents": [{"role": "user", "parts": [{"text": "read it"}]},
                     {"role": "model", "parts": [{"functionCall": {"id": "c1", "name": "read_file",
                         "args": {"file_path": "/x"}}}]},
                     {"role": "user", "parts": [{"functionResponse": {"id": "c1", "name": "read_file",
                         "response": {"output": "contents"}}}]}]});
    let r = h.post("/v1beta/models/chat:generateContent", body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = h.sims[0].last_request("/v1/messages").unwrap();
    assert!(sent.get("thinking").is_none(), "{sent}");
    assert!(r.header("x-nines-warning").contains("reasoning"), "{:?}", r.headers);
}
