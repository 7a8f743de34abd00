//! `POST /v1/embeddings` and `POST /v1/messages/count_tokens` end to end, with failover and translation.

#![allow(clippy::unwrap_used, clippy::panic)] // test code: failing loudly is its job

mod common;

use common::{Harness, p};
use nines_sim::FaultKind;
use serde_json::{Value, json};

fn vectors(v: &Value) -> Vec<Vec<f64>> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect())
        .collect()
}

#[tokio::test]
async fn embeddings_fail_over_and_translate_to_gemini() {
    // Anthropic has no embeddings: skipped. The OpenAI-format target is down: the Gemini one answers.
    let h = Harness::new(&[
        p("a", "anthropic", "c"),
        p("o", "openai", "text-embedding-3-small"),
        p("g", "gemini", "text-embedding-004"),
    ])
    .await;
    let body = json!({"model": "chat", "input": ["hello world", "second text"]});
    let direct = h.post("/v1/embeddings", body.clone()).await;
    assert_eq!(direct.status, 200, "{}", direct.text);
    assert_eq!(direct.header("x-nines-target"), "o/text-embedding-3-small");
    assert_eq!(direct.header("x-nines-attempts"), "1", "the Anthropic target is skipped, not tried");
    assert_eq!(h.sims[0].total_hits(), 0);

    h.fault(1, FaultKind::Status { status: 503, retry_after: None }, 1);
    let r = h.post("/v1/embeddings", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-nines-target"), "g/text-embedding-004");
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(vectors(&v), vectors(&direct.json()), "the same text embeds the same through either format");
    let sent = h.sims[2].last_request("/v1beta/models/text-embedding-004:batchEmbedContents").unwrap();
    assert_eq!(sent["requests"][0]["content"]["parts"][0]["text"], "hello world");

    // base64, as the official OpenAI SDK asks by default: little-endian f32.
    h.fault(1, FaultKind::Status { status: 503, retry_after: None }, 1);
    let mut b64 = body.clone();
    b64["encoding_format"] = json!("base64");
    let r = h.post("/v1/embeddings", b64).await;
    let s = r.json()["data"][0]["embedding"].as_str().unwrap().to_owned();
    assert!(!s.is_empty());

    // A route whose every target lacks embeddings: a 400 naming the field.
    let h = Harness::new(&[p("a", "anthropic", "c")]).await;
    let r = h.post("/v1/embeddings", body).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("no embeddings API"), "{}", r.text);
}

#[tokio::test]
async fn count_tokens_is_exact_from_anthropic_and_an_estimate_otherwise() {
    let body = json!({"model": "chat", "system": "be brief", "messages": [{"role": "user", "content": "one two three four"}]});
    let h = Harness::new(&[p("a1", "anthropic", "c"), p("a2", "anthropic", "c")]).await;
    h.fault(0, FaultKind::Status { status: 529, retry_after: None }, 1);
    let r =
        h.post_with("/v1/messages/count_tokens", body.clone(), &[("anthropic-version", "2023-06-01")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"input_tokens": 6}), "exact, from the second Anthropic target");
    assert_eq!(r.header("x-nines-target"), "a2/c");
    assert_eq!(r.header("x-nines-token-count"), "");

    let h = Harness::new(&[p("o", "openai", "gpt")]).await;
    let r = h.post("/v1/messages/count_tokens", body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-nines-token-count"), "estimate");
    assert!(r.json()["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(h.sims[0].total_hits(), 0);
}
