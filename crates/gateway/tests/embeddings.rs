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

/// The local embedding model's folder (`scripts/fetch-models`); `None` (the test skips) when it is absent, except
/// under `NINES_REQUIRE_MODELS=1`.
fn minilm() -> Option<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models/all-minilm-l6-v2");
    if dir.join("model.safetensors").exists() {
        return Some(dir.display().to_string());
    }
    #[allow(clippy::disallowed_methods)]
    if std::env::var("NINES_REQUIRE_MODELS").is_ok_and(|v| v == "1") {
        panic!("{} has no model: run scripts/fetch-models", dir.display());
    }
    None
}

fn cos(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn the_local_model_answers_embeddings_with_every_provider_down() {
    let Some(dir) = minilm() else { return };
    let extra = format!(
        "[providers.minilm]\nkind = \"local-embeddings\"\nmodel_dir = \"{dir}\"\n\n\
         [routes.embed]\ntargets = [\"o/text-embedding-3-small\", \"minilm/all-minilm-l6-v2\"]\n"
    );
    let h = Harness::with(&[p("o", "openai", "gpt-x")], &extra, nines::config::Env::default()).await;
    let texts = [
        "The warranty lasts 24 months.",
        "How long is the guarantee?",
        "Returns are accepted within 30 days.",
    ];
    let body = json!({"model": "embed", "input": texts});
    let up = h.post("/v1/embeddings", body.clone()).await;
    assert_eq!(up.header("x-nines-target"), "o/text-embedding-3-small", "{}", up.text);

    h.fault(0, FaultKind::Status { status: 503, retry_after: None }, 100);
    let r = h.post("/v1/embeddings", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-nines-target"), "minilm/all-minilm-l6-v2");
    let v = r.json();
    assert_eq!(v["model"], "all-minilm-l6-v2");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() >= 20, "{}", v["usage"]);
    let vs = vectors(&v);
    assert_eq!(vs.len(), 3);
    assert_eq!(vs[0].len(), 384);
    // The model's meaning, not a hash: the guarantee question is nearer the warranty than returns are.
    assert!((cos(&vs[0], &vs[1]) - 0.5201).abs() < 1e-3, "{}", cos(&vs[0], &vs[1]));
    assert!((cos(&vs[0], &vs[2]) - 0.2741).abs() < 1e-3, "{}", cos(&vs[0], &vs[2]));

    // base64, as the official OpenAI SDK asks by default.
    let mut b64 = body.clone();
    b64["encoding_format"] = json!("base64");
    let r = h.post("/v1/embeddings", b64).await;
    assert_eq!(r.header("x-nines-target"), "minilm/all-minilm-l6-v2");
    assert_eq!(r.json()["data"][0]["embedding"].as_str().unwrap().len(), (384 * 4usize).div_ceil(3) * 4);

    // Other dimensions than the model's, or token ids: the local target cannot, and says so.
    let r = h
        .post("/v1/embeddings", json!({"model": "minilm/all-minilm-l6-v2", "input": "x", "dimensions": 256}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("384 dimensions"), "{}", r.text);
    let r = h.post("/v1/embeddings", json!({"model": "minilm/all-minilm-l6-v2", "input": [[1, 2, 3]]})).await;
    assert_eq!(r.status, 400, "{}", r.text);

    // A chat request addressed to it: refused as inexpressible, never a crash.
    let r = h
        .post(
            "/v1/chat/completions",
            json!({"model": "minilm/all-minilm-l6-v2", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("embedding model"), "{}", r.text);
}

#[test]
fn a_local_model_is_configured_by_its_folder_only() {
    let bad = "[providers.m]\nkind = \"local-embeddings\"\nbase_url = \"http://x\"\n[providers.m.probe]\n\
               [providers.o]\nkind = \"openai\"\nmodel_dir = \"/x\"\n";
    let err = nines::config::parse_and_validate(bad).unwrap_err().to_string();
    assert!(err.contains("providers.m.model_dir: is required"), "{err}");
    assert!(err.contains("providers.m.base_url: is set, but this model runs in-process"), "{err}");
    assert!(err.contains("providers.m.probe: is set"), "{err}");
    assert!(err.contains("providers.o.model_dir: is only for kind"), "{err}");
}

#[test]
fn a_command_needs_a_program_and_port_placeholders_need_a_command() {
    let bad = "[providers.a]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n\
               [providers.b]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\ncommand = []\n";
    let err = nines::config::parse_and_validate(bad).unwrap_err().to_string();
    assert!(
        err.contains("providers.a.base_url: has {port}, which only a provider with a command gets"),
        "{err}"
    );
    assert!(err.contains("providers.b.command: needs a program"), "{err}");
    let good = "[providers.a]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n\
                command = [\"llama-server\", \"--port\", \"{port}\"]\n";
    nines::config::parse_and_validate(good).unwrap();
}

#[test]
fn a_local_model_that_cannot_load_stops_the_start_with_its_reason() {
    let toml = "[providers.m]\nkind = \"local-embeddings\"\nmodel_dir = \"/nonexistent/minilm\"\n";
    let config = nines::config::parse_and_validate(toml).unwrap();
    let Err(err) = nines::App::build(config, &nines::config::Env::default()) else { panic!("it started") };
    let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    assert!(chain.contains("/nonexistent/minilm/config.json"), "{chain}");
}
