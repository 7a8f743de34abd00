//! Gemini generateContent / streamGenerateContent: shapes, SSE framing, validation and keys.

use nines_sim::SimOptions;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn generate_content_has_the_full_shape() {
    let sim = sim().await;
    let body = json!({
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "first"}]},
            {"role": "model", "parts": [{"text": "reply"}]},
            {"role": "user", "parts": [{"text": "hello "}, {"text": "there"}]}
        ],
        "generationConfig": {"temperature": 0.5, "maxOutputTokens": 100}
    });
    let resp = post(&sim, GEMINI, &body).await;
    assert_eq!(resp.status(), 200);
    let mut got: Value = resp.json().await.unwrap();
    assert!(got["responseId"].is_string());
    got["responseId"] = json!("ID");
    assert_eq!(
        got,
        json!({
            "candidates": [{
                "content": {"parts": [{"text": "alpha says: hello there [system: be brief]"}], "role": "model"},
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 7, "totalTokenCount": 13},
            "modelVersion": "gemini-test",
            "responseId": "ID"
        })
    );
    assert_eq!(sim.hits(GEMINI), 1);
    assert_eq!(sim.last_request(GEMINI), Some(body));
}

#[tokio::test]
async fn snake_case_fields_and_v1_paths_work() {
    let sim = sim().await;
    let body = json!({
        "system_instruction": {"parts": [{"text": "sys"}]},
        "contents": [{"parts": [{"text": "one two three"}]}],
        "generation_config": {"max_output_tokens": 3, "stop_sequences": ["zzz"]}
    });
    let path = "/v1/models/gemini-x:generateContent";
    let got: Value = post(&sim, path, &body).await.json().await.unwrap();
    assert_eq!(got["candidates"][0]["content"]["parts"][0]["text"], "alpha says: one");
    assert_eq!(got["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(got["modelVersion"], "gemini-x");
    assert_eq!(sim.hits(path), 1);
}

#[tokio::test]
async fn stream_with_alt_sse_sends_one_event_per_word() {
    let sim = sim().await;
    let url = format!("{}{GEMINI_STREAM}?alt=sse", sim.base_url());
    let resp = client().post(url).json(&gemini_body("hello there")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let raw = resp.text().await.unwrap();
    assert!(raw.starts_with("data: {"));
    assert!(raw.ends_with("}\r\n\r\n"), "events end in CRLF CRLF like Google's");
    assert_eq!(raw.matches("\r\n\r\n").count(), 4);
    let events = parse_sse(&raw);
    assert_eq!(events.len(), 4);
    let mut text = String::new();
    for (i, e) in events.iter().enumerate() {
        let chunk = e.json();
        let candidate = &chunk["candidates"][0];
        assert_eq!(candidate["content"]["role"], "model");
        text.push_str(candidate["content"]["parts"][0]["text"].as_str().unwrap());
        assert_eq!(chunk["modelVersion"], "gemini-test");
        if i < 3 {
            assert!(candidate.get("finishReason").is_none());
            assert!(chunk.get("usageMetadata").is_none());
        } else {
            assert_eq!(candidate["finishReason"], "STOP");
            assert_eq!(
                chunk["usageMetadata"],
                json!({"promptTokenCount": 2, "candidatesTokenCount": 4, "totalTokenCount": 6})
            );
        }
    }
    assert_eq!(text, "alpha says: hello there");
    assert_eq!(sim.hits(GEMINI_STREAM), 1, "the query string is not part of the path");
}

#[tokio::test]
async fn stream_without_alt_is_a_json_array() {
    let sim = sim().await;
    let got: Value = post(&sim, GEMINI_STREAM, &gemini_body("hi")).await.json().await.unwrap();
    let chunks = got.as_array().unwrap();
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[2]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(chunks[2]["usageMetadata"]["candidatesTokenCount"], 3);
}

async fn expect_invalid(body: Value, needle: &str) {
    let sim = sim().await;
    let resp = post(&sim, GEMINI, &body).await;
    assert_eq!(resp.status(), 400, "{body}");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], 400);
    assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains(needle), "{message:?} should contain {needle:?}");
}

#[tokio::test]
async fn validation_refuses_what_the_real_api_refuses() {
    expect_invalid(json!({}), "contents is not specified").await;
    expect_invalid(json!({"contents": []}), "contents is not specified").await;
    expect_invalid(
        json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}),
        "valid role: user, model",
    )
    .await;
    expect_invalid(json!({"contents": [{"role": "user", "parts": []}]}), "parts must not be empty").await;
    expect_invalid(json!({"contents": [{"role": "user", "parts": [{}]}]}), "oneof field 'data'").await;
    expect_invalid(json!({"contents": [{"role": "user", "content": "x"}]}), "Unknown name \"content\"").await;
    expect_invalid(
        json!({"contents": [{"parts": [{"text": "x"}]}], "messages": []}),
        "Unknown name \"messages\": Cannot find field",
    )
    .await;
    expect_invalid(
        json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"max_tokens": 5}}),
        "Unknown name \"max_tokens\" at 'generation_config'",
    )
    .await;
    expect_invalid(
        json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"temperature": 2.5}}),
        "generation_config.temperature",
    )
    .await;
    expect_invalid(
        json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"stopSequences": ["1","2","3","4","5","6"]}}),
        "stop_sequences",
    )
    .await;
    expect_invalid(json!({"contents": [{"parts": [{"text": 5}]}]}), "TYPE_STRING").await;
}

#[tokio::test]
async fn function_parts_are_accepted_and_responses_answered() {
    let sim = sim().await;
    let body = json!({
        "contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"sky": "sunny"}}}]}
        ],
        "tools": [{"functionDeclarations": [{"name": "weather"}]}]
    });
    let resp = post(&sim, GEMINI, &body).await;
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(
        got["candidates"][0]["content"]["parts"][0]["text"],
        r#"alpha says: tool said: {"sky":"sunny"}"#
    );
}

#[tokio::test]
async fn api_key_in_header_or_query() {
    let sim = sim_with(SimOptions::new("alpha").with_api_key("AIza-secret")).await;
    let url = format!("{}{GEMINI}", sim.base_url());
    let resp = client().post(&url).json(&gemini_body("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(err["error"]["code"], 403);

    let resp =
        client().post(&url).header("x-goog-api-key", "nope").json(&gemini_body("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(err["error"]["details"][0]["reason"], "API_KEY_INVALID");

    let resp = client()
        .post(&url)
        .header("x-goog-api-key", "AIza-secret")
        .json(&gemini_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client().post(format!("{url}?key=AIza-secret")).json(&gemini_body("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn unknown_methods_are_404_in_google_shape() {
    let sim = sim().await;
    let resp = post(&sim, "/v1beta/models/gemini-test:predictLongRunning", &gemini_body("hi")).await;
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["status"], "NOT_FOUND");
    assert_eq!(sim.total_hits(), 0);
}
