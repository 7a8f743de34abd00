//! Gemini's front doors end to end: `models/{route}:generateContent`, `:streamGenerateContent` (SSE and the JSON
//! array), `:countTokens` and the model listing, under `/v1beta/` and `/v1/`, to every provider kind, with
//! failover, the key in a header or the query, and errors in Google's shape.

mod common;

use common::{Harness, p};
use nines::config::Env;
use nines_sim::FaultKind;
use serde_json::{Value, json};

fn gemini_body(text: &str) -> Value {
    json!({"systemInstruction": {"parts": [{"text": "be brief"}]},
           "contents": [{"role": "user", "parts": [{"text": text}]}],
           "generationConfig": {"maxOutputTokens": 100}})
}

/// The text of a Gemini answer: one object, an SSE stream of them, or a JSON array of them.
fn gemini_text(r: &common::Reply) -> String {
    let chunks: Vec<Value> = if r.header("content-type").starts_with("text/event-stream") {
        r.frames().iter().filter_map(|f| serde_json::from_str(&f.data).ok()).collect()
    } else {
        match r.json() {
            Value::Array(a) => a,
            one => vec![one],
        }
    };
    chunks
        .iter()
        .flat_map(|c| {
            c.pointer("/candidates/0/content/parts").and_then(Value::as_array).cloned().unwrap_or_default()
        })
        .filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn gemini_door_reaches_every_provider_kind_in_every_framing() {
    for kind in ["anthropic", "openai", "gemini"] {
        let h = Harness::new(&[p("only", kind, "model-x")]).await;
        for prefix in ["/v1beta", "/v1"] {
            for (method, query) in [
                ("generateContent", ""),
                ("streamGenerateContent", "?alt=sse"),
                ("streamGenerateContent", ""),
            ] {
                let path = format!("{prefix}/models/chat:{method}{query}");
                let r = h.post(&path, gemini_body("translate me")).await;
                let ctx = format!("kind={kind} {path}");
                assert_eq!(r.status, 200, "{ctx}: {}", r.text);
                assert_eq!(gemini_text(&r), "only says: translate me [system: be brief]", "{ctx}");
                assert_eq!(r.header("x-nines-target"), "only/model-x", "{ctx}");
                if method == "streamGenerateContent" && query.is_empty() {
                    assert!(r.header("content-type").starts_with("application/json"), "{ctx}");
                    let chunks = r.json();
                    let last = chunks.as_array().and_then(|a| a.last()).cloned().unwrap_or_default();
                    assert_eq!(last["candidates"][0]["finishReason"], "STOP", "{ctx}: {}", r.text);
                    assert!(last["usageMetadata"]["totalTokenCount"].as_u64().unwrap_or(0) > 0, "{ctx}");
                }
            }
        }
    }
}

#[tokio::test]
async fn a_gemini_client_is_failed_over_to_another_dialect() {
    for (path, fault) in [
        ("/v1beta/models/chat:generateContent", FaultKind::Status { status: 503, retry_after: None }),
        (
            "/v1beta/models/chat:streamGenerateContent?alt=sse",
            FaultKind::Status { status: 429, retry_after: None },
        ),
        ("/v1/models/chat:streamGenerateContent", FaultKind::Reset),
    ] {
        // A fresh gateway each: a 429 sets the first target aside for a while (its health), by design.
        let h =
            Harness::new(&[p("first", "gemini", "gemini-2.5-flash"), p("second", "openai", "gpt-4.1")]).await;
        h.fault(0, fault, 1);
        let r = h.post(path, gemini_body("hello")).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(gemini_text(&r), "second says: hello [system: be brief]", "{path}");
        assert_eq!(r.header("x-nines-attempts"), "2", "{path}");
    }
}

/// Same dialect: the client's body reaches a Gemini target untouched (Gemini would refuse a `model` field).
#[tokio::test]
async fn same_dialect_bodies_pass_through() {
    let h = Harness::new(&[p("g", "gemini", "gemini-2.5-flash")]).await;
    let mut body = gemini_body("hi");
    body["safetySettings"] = json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]);
    let r = h.post("/v1beta/models/chat:generateContent", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = h.sims[0].last_request("/v1beta/models/gemini-2.5-flash:generateContent").unwrap();
    assert_eq!(sent, body);
}

#[tokio::test]
async fn gemini_errors_are_in_googles_shape() {
    let h = Harness::with(
        &[p("a", "anthropic", "m")],
        "[auth]\nkeys_env = \"TEST_KEYS\"",
        Env::from_pairs([("TEST_KEYS", "k1")]),
    )
    .await;
    let r = h.post("/v1beta/models/chat:generateContent", gemini_body("hi")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], 401);
    assert_eq!(r.json()["error"]["status"], "UNAUTHENTICATED");
    // The key in the query string, as Google's REST examples pass it.
    let r = h.post("/v1beta/models/chat:generateContent?key=k1", gemini_body("hi")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = h
        .post_with("/v1beta/models/chat:generateContent", gemini_body("hi"), &[("x-goog-api-key", "k1")])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let key = [("x-goog-api-key", "k1")];
    let r = h.post_with("/v1beta/models/nope:generateContent", gemini_body("hi"), &key).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["status"], "NOT_FOUND");
    let r = h.post_with("/v1beta/models/chat:generateContent", json!({"contents": 5}), &key).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
    let r = h.post_with("/v1beta/models/chat:generateContent", json!({"no": "contents"}), &key).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = h.post_with("/v1beta/models/chat:predict", gemini_body("hi"), &key).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("predict"));
    let r = h.post_with("/v1beta/cachedContents", json!({}), &key).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["status"], "NOT_FOUND");

    // An exhausted route, in Google's shape.
    h.fault(0, FaultKind::Status { status: 503, retry_after: None }, 1);
    let r = h.post_with("/v1beta/models/chat:generateContent", gemini_body("hi"), &key).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.json()["error"]["status"], "UNAVAILABLE");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("a/m"), "{}", r.text);
}

#[tokio::test]
async fn count_tokens_is_exact_from_gemini_targets_and_estimated_otherwise() {
    let h =
        Harness::new(&[p("first", "gemini", "gemini-2.5-flash"), p("second", "gemini", "gemini-2.5-pro")])
            .await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "one two three four"}]}]});
    h.fault(0, FaultKind::Status { status: 500, retry_after: None }, 1);
    let r = h.post("/v1beta/models/chat:countTokens", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["totalTokens"], 4);
    assert_eq!(r.header("x-nines-target"), "second/gemini-2.5-pro");
    assert_eq!(r.header("x-nines-token-count"), "");
    assert_eq!(h.sims[1].hits("/v1beta/models/gemini-2.5-pro:countTokens"), 1);

    // The generateContentRequest form: its model becomes the target's.
    let wrapped = json!({"generateContentRequest": {"model": "models/chat",
        "contents": [{"role": "user", "parts": [{"text": "one two"}]}]}});
    let r = h.post("/v1/models/chat:countTokens", wrapped).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["totalTokens"], 2);
    let sent = h.sims[0].last_request("/v1beta/models/gemini-2.5-flash:countTokens").unwrap();
    assert_eq!(sent["generateContentRequest"]["model"], "models/gemini-2.5-flash");

    let h = Harness::new(&[p("o", "openai", "gpt-4.1")]).await;
    let r = h.post("/v1beta/models/chat:countTokens", body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["totalTokens"].as_u64().unwrap() > 0);
    assert_eq!(r.header("x-nines-token-count"), "estimate");
    assert_eq!(h.sims[0].total_hits(), 0);
}

#[tokio::test]
async fn models_are_listed_in_each_dialect() {
    let h = Harness::new(&[p("a", "anthropic", "m")]).await;
    let get = |path: &str, headers: &'static [(&'static str, &'static str)]| {
        let mut req = h.client.get(format!("{}{path}", h.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        async move { common::Reply::read(req.send().await.unwrap()).await }
    };
    let r = get("/v1beta/models", &[]).await;
    assert_eq!(r.status, 200);
    let names: Vec<Value> =
        r.json()["models"].as_array().unwrap().iter().map(|m| m["name"].clone()).collect();
    assert_eq!(names, ["models/chat"]);
    let r = get("/v1beta/models/chat", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["name"], "models/chat");
    assert!(r.json()["supportedGenerationMethods"].as_array().unwrap().contains(&json!("generateContent")));
    let r = get("/v1beta/models/nope", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["status"], "NOT_FOUND");
    // `/v1/models/{id}`: OpenAI's "retrieve model", unless the client speaks Gemini.
    let r = get("/v1/models/chat", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["object"], "model");
    assert_eq!(r.json()["id"], "chat");
    let r = get("/v1/models/chat", &[("x-goog-api-key", "k")]).await;
    assert_eq!(r.json()["name"], "models/chat");
    let r = get("/v1/models/nope", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}
