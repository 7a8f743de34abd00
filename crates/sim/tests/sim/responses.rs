//! OpenAI Responses (`/v1/responses`) over HTTP: the Response object and the event stream, auth, OpenAI-shaped
//! errors, the function-call loop, JSON mode, reasoning round trips, and every body fault through the same pipeline
//! as the other dialects.

use std::time::Duration;

use futures_util::StreamExt;
use nines_sim::{Fault, SimOptions};
use serde_json::{Value, json};

use crate::common::*;

/// Read a streaming body until it ends or fails; returns what arrived and whether it failed.
async fn read_all(resp: reqwest::Response) -> (String, bool) {
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(bytes) => got.extend_from_slice(&bytes),
            Err(_) => return (String::from_utf8(got).unwrap(), true),
        }
    }
    (String::from_utf8(got).unwrap(), false)
}

fn streaming(text: &str) -> Value {
    let mut body = responses_body(text);
    body["stream"] = json!(true);
    body
}

#[tokio::test]
async fn plain_response_has_the_full_shape() {
    let sim = sim().await;
    let mut body = responses_body("hello there");
    body["instructions"] = json!("be brief");
    body["metadata"] = json!({"run": "7"});
    let resp = post(&sim, RESPONSES, &body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["x-request-id"].to_str().unwrap().starts_with("req_"));
    assert_eq!(resp.headers()["content-type"], "application/json");
    let got: Value = resp.json().await.unwrap();
    assert!(got["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(got["object"], "response");
    assert_eq!(got["status"], "completed");
    assert!(got["created_at"].as_u64().unwrap() > 1_700_000_000);
    assert!(got["completed_at"].as_u64().unwrap() >= got["created_at"].as_u64().unwrap());
    assert_eq!(got["output"][0]["content"][0]["text"], "alpha says: hello there [system: be brief]");
    assert_eq!(got["metadata"], json!({"run": "7"}));
    assert_eq!(got["usage"]["total_tokens"], 11);
    assert_eq!(sim.hits(RESPONSES), 1);
    assert_eq!(sim.last_request(RESPONSES).unwrap(), body);
}

#[tokio::test]
async fn stream_is_named_events_with_consecutive_sequence_numbers() {
    let sim = sim().await;
    let resp = post(&sim, RESPONSES, &streaming("hello there")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = parse_sse(&resp.text().await.unwrap());
    assert_eq!(events.len(), 12);
    let mut text = String::new();
    for (k, event) in events.iter().enumerate() {
        let data = event.json();
        assert_eq!(event.name.as_deref(), data["type"].as_str());
        assert_eq!(data["sequence_number"], k);
        if data["type"] == "response.output_text.delta" {
            text.push_str(data["delta"].as_str().unwrap());
        }
    }
    assert_eq!(text, "alpha says: hello there");
    assert_eq!(events[0].name.as_deref(), Some("response.created"));
    let done = events.last().unwrap().json();
    assert_eq!(done["type"], "response.completed");
    assert_eq!(done["response"]["output"][0]["content"][0]["text"], text);
    assert_eq!(done["response"]["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn function_call_loop() {
    let sim = sim().await;
    let tools = json!([{"type": "function", "name": "weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let body = json!({"model": "gpt-test", "input": "in Paris", "tools": tools});
    let got: Value = post(&sim, RESPONSES, &body).await.json().await.unwrap();
    let call = got["output"][0].clone();
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["arguments"], r#"{"city":"in Paris"}"#);
    assert_eq!(got["tools"][0]["description"], "Weather");
    let input = json!([
        {"role": "user", "content": [{"type": "input_text", "text": "in Paris"}]},
        {"type": "function_call", "id": call["id"], "call_id": call["call_id"], "name": "weather",
         "arguments": call["arguments"], "status": "completed"},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
    ]);
    let body = json!({"model": "gpt-test", "input": input, "tools": tools});
    let got: Value = post(&sim, RESPONSES, &body).await.json().await.unwrap();
    assert_eq!(got["output"][0]["type"], "message");
    assert_eq!(got["output"][0]["content"][0]["text"], "alpha says: tool said: sunny");
}

async fn expect_refused(sim: &nines_sim::Sim, body: Value, status: u16, needle: &str, param: Value) {
    let resp = post(sim, RESPONSES, &body).await;
    assert_eq!(resp.status(), status, "{body}");
    let err: Value = resp.json().await.unwrap();
    let keys: Vec<&String> = err["error"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["code", "message", "param", "type"]);
    assert_eq!(err["error"]["type"], "invalid_request_error");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains(needle), "{message:?} should contain {needle:?}");
    assert_eq!(err["error"]["param"], param, "{message}");
}

#[tokio::test]
async fn refusals_are_openai_shaped() {
    let sim = sim().await;
    let with = |key: &str, value: Value| {
        let mut body = responses_body("hi");
        body[key] = value;
        body
    };
    expect_refused(
        &sim,
        with("max_tokens", json!(5)),
        400,
        "Unknown parameter: 'max_tokens'.",
        json!("max_tokens"),
    )
    .await;
    let nested = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    expect_refused(
        &sim,
        with("tools", nested),
        400,
        "Missing required parameter: 'tools[0].name'.",
        json!("tools[0].name"),
    )
    .await;
    expect_refused(
        &sim,
        with("previous_response_id", json!("resp_abc")),
        400,
        "Previous response with id 'resp_abc' not found.",
        json!("previous_response_id"),
    )
    .await;
    let orphan = json!([{"role": "user", "content": "hi"}, {"type": "function_call_output", "call_id": "call_x", "output": "1"}]);
    expect_refused(
        &sim,
        with("input", orphan),
        400,
        "No tool call found for function call output with call_id call_x.",
        json!("input"),
    )
    .await;
    expect_refused(
        &sim,
        with("max_output_tokens", json!(8)),
        400,
        "Expected a value >= 16",
        json!("max_output_tokens"),
    )
    .await;
    expect_refused(
        &sim,
        with("input", json!([{"type": "item_reference", "id": "msg_1"}])),
        404,
        "Item with id 'msg_1' not found.",
        json!("input"),
    )
    .await;
    let resp = client()
        .post(format!("{}{RESPONSES}", sim.base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"]["message"].as_str().unwrap().starts_with("We could not parse the JSON body"));
}

#[tokio::test]
async fn bearer_auth_like_chat_completions() {
    let sim = sim_with(SimOptions::new("alpha").with_api_key("sk-test-1234")).await;
    let url = format!("{}{RESPONSES}", sim.base_url());
    let resp = client().post(&url).json(&responses_body("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"]["message"].as_str().unwrap().starts_with("You didn't provide an API key."));
    let resp =
        client().post(&url).bearer_auth("sk-wrong-9999").json(&responses_body("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "invalid_api_key");
    assert!(err["error"]["message"].as_str().unwrap().contains("****9999"));
    let resp =
        client().post(&url).bearer_auth("sk-test-1234").json(&responses_body("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn json_mode_and_a_stateless_reasoning_round_trip() {
    let sim = sim().await;
    let mut body = responses_body("reply in JSON");
    body["text"] = json!({"format": {"type": "json_object"}});
    let got: Value = post(&sim, RESPONSES, &body).await.json().await.unwrap();
    assert_eq!(got["output"][0]["content"][0]["text"], r#"{"answer":"alpha says: reply in JSON"}"#);

    let mut body = responses_body("think");
    body["reasoning"] = json!({"effort": "high", "summary": "auto"});
    body["include"] = json!(["reasoning.encrypted_content"]);
    body["store"] = json!(false);
    let got: Value = post(&sim, RESPONSES, &body).await.json().await.unwrap();
    let reasoning = got["output"][0].clone();
    assert_eq!(reasoning["type"], "reasoning");
    let encrypted = reasoning["encrypted_content"].as_str().unwrap().to_owned();
    let input = json!([
        {"role": "user", "content": "think"},
        reasoning,
        got["output"][1],
        {"role": "user", "content": "more"}
    ]);
    let follow = json!({"model": "gpt-test", "input": input, "store": false});
    let resp = post(&sim, RESPONSES, &follow).await;
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["output"][0]["content"][0]["text"], "alpha says: more");
    // Another simulator did not mint that content: the gateway must not replay it there.
    let other = sim_with(SimOptions::new("beta")).await;
    let resp = post(&other, RESPONSES, &follow).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "invalid_encrypted_content");
    assert_eq!(err["error"]["param"], Value::Null);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("The encrypted content {}", &encrypted[..4]))
    );
}

#[tokio::test]
async fn faults_apply_to_the_responses_endpoint() {
    let sim = sim().await;
    sim.push_fault(Fault::status_retry_after(429, 3));
    let resp = post(&sim, RESPONSES, &responses_body("hi")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    assert!(resp.headers().contains_key("x-request-id"));
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");

    sim.push_fault(Fault::cut(3));
    let (text, failed) = read_all(post(&sim, RESPONSES, &streaming("hello there")).await).await;
    assert!(failed, "the body must end in an error");
    let names: Vec<String> = parse_sse(&text).into_iter().map(|e| e.name.unwrap()).collect();
    assert_eq!(names, ["response.created", "response.in_progress", "response.output_item.added"]);

    sim.push_fault(Fault::cut(0));
    let (text, failed) = read_all(post(&sim, RESPONSES, &responses_body("hi")).await).await;
    assert!(failed);
    assert!(serde_json::from_str::<Value>(&text).is_err());

    sim.push_fault(Fault::garbage());
    let text = post(&sim, RESPONSES, &streaming("hi")).await.text().await.unwrap();
    assert!(parse_sse(&text).iter().all(|e| serde_json::from_str::<Value>(&e.data).is_err()));

    sim.push_fault(Fault::drip(5));
    let started = tokio::time::Instant::now();
    let (text, failed) = read_all(post(&sim, RESPONSES, &streaming("hi")).await).await;
    assert!(!failed);
    // 11 events, 10 pauses.
    assert_eq!(parse_sse(&text).len(), 11);
    assert!(started.elapsed() >= Duration::from_millis(50));

    sim.push_fault(Fault::reset());
    let err = client()
        .post(format!("{}{RESPONSES}", sim.base_url()))
        .timeout(Duration::from_secs(10))
        .json(&responses_body("hi"))
        .send()
        .await
        .unwrap_err();
    assert!(has_io_kind(&err, std::io::ErrorKind::ConnectionReset), "{err:?}");
    assert_eq!(sim.hits(RESPONSES), 6);
}
