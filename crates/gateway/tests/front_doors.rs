//! The front doors' own behaviour: client keys, unknown models, malformed bodies, model listing and probes, each
//! error in the dialect of the door it came through.

mod common;

use common::{Harness, p};
use nines::config::Env;
use serde_json::json;

async fn keyed() -> Harness {
    Harness::with(
        &[p("a", "anthropic", "m")],
        "[auth]\nkeys_env = \"TEST_KEYS\"",
        Env::from_pairs([("TEST_KEYS", "k1,k2")]),
    )
    .await
}

#[tokio::test]
async fn client_keys_are_checked_in_both_dialects() {
    let h = keyed().await;
    let r = h.post("/v1/chat/completions", common::openai_body("hi", false)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    let r = h.post_with("/v1/messages", common::anthropic_body("hi", false), &[("x-api-key", "wrong")]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    assert_eq!(h.sims[0].total_hits(), 0);

    let r = h
        .post_with(
            "/v1/chat/completions",
            common::openai_body("hi", false),
            &[("authorization", "Bearer k2")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = h.post_with("/v1/messages", common::anthropic_body("hi", false), &[("x-api-key", "k1")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The client's key is never the provider's: it must not be forwarded.
    let sent = h.sims[0].last_headers("/v1/messages").unwrap();
    assert!(sent.get("x-api-key").is_none_or(|v| v != "k1"), "{sent:?}");
}

#[tokio::test]
async fn unknown_models_get_a_404_listing_the_known_ones() {
    let h = Harness::new(&[p("a", "anthropic", "m")]).await;
    let mut body = common::openai_body("hi", false);
    body["model"] = json!("nope");
    let r = h.post("/v1/chat/completions", body).await;
    assert_eq!(r.status, 404);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("\"nope\"") && msg.contains("chat") && msg.contains("a/<model>"), "{msg}");
    let mut body = common::anthropic_body("hi", false);
    body["model"] = json!("nope");
    let r = h.post("/v1/messages", body).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
}

#[tokio::test]
async fn provider_slash_model_goes_straight_to_the_provider() {
    let h = Harness::new(&[p("a", "anthropic", "m"), p("o", "openai", "m2")]).await;
    let mut body = common::openai_body("direct", false);
    body["model"] = json!("o/some-model:7b");
    let r = h.post("/v1/chat/completions", body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-nines-target"), "o/some-model:7b");
    assert_eq!(h.sims[1].last_request("/v1/chat/completions").unwrap()["model"], "some-model:7b");
    assert_eq!(h.sims[0].total_hits(), 0);
}

#[tokio::test]
async fn malformed_bodies_get_a_400_in_the_door_dialect() {
    let h = Harness::new(&[p("a", "anthropic", "m")]).await;
    for (path, body) in [("/v1/chat/completions", "{not json"), ("/v1/messages", "{\"model\": 3}")] {
        let r = h.client.post(format!("{}{path}", h.base)).body(body).send().await.unwrap();
        let r = common::Reply::read(r).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        let v = r.json();
        if path == "/v1/messages" {
            assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
            assert_eq!(v["type"], "error");
        } else {
            assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        }
    }
    assert_eq!(h.sims[0].total_hits(), 0);
}

#[tokio::test]
async fn models_and_probes() {
    let h = Harness::new(&[p("a", "anthropic", "m")]).await;
    let v: serde_json::Value =
        h.client.get(format!("{}/v1/models", h.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "chat");
    assert_eq!(v["data"][0]["object"], "model");
    let v: serde_json::Value = h
        .client
        .get(format!("{}/v1/models", h.base))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["has_more"], false);
    let r = h.client.get(format!("{}/healthz", h.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = h.client.get(format!("{}/readyz", h.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn not_ready_while_draining() {
    use tower::ServiceExt;
    let h = Harness::new(&[p("o", "openai", "m")]).await;
    let ready = |app: &nines::App| {
        let req = axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap();
        app.router().oneshot(req)
    };
    assert_eq!(ready(&h.app).await.unwrap().status(), 200);
    // SIGTERM starts the drain: a load balancer still asking is told to send nothing new.
    h.app.state.shutdown.cancel();
    let r = ready(&h.app).await.unwrap();
    assert_eq!(r.status(), 503);
    let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("draining"));
    // /healthz stays up: the process is alive, finishing what it holds.
    let req = axum::http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap();
    assert_eq!(h.app.router().oneshot(req).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_provider_without_its_key_is_skipped_and_not_ready() {
    let mut a = p("a", "anthropic", "m");
    a.extra = "api_key_env = \"MISSING_KEY\"";
    let h = Harness::new(&[a, p("o", "openai", "m2")]).await;
    let r = h.post("/v1/messages", common::anthropic_body("hi", false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-nines-target"), "o/m2");
    assert_eq!(r.header("x-nines-attempts"), "1", "a skipped target is not an attempt");
    assert_eq!(h.sims[0].total_hits(), 0);

    let mut a = p("a", "anthropic", "m");
    a.extra = "api_key_env = \"MISSING_KEY\"";
    let h = Harness::new(&[a]).await;
    let r = h.client.get(format!("{}/readyz", h.base)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let r = h.post("/v1/messages", common::anthropic_body("hi", false)).await;
    // Nothing could be sent: a configuration problem, which no retry will fix.
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(r.header("x-should-retry"), "false");
    assert!(r.text.contains("MISSING_KEY is not set"), "{}", r.text);
}

/// The provider's key goes out in its kind's header, and the client's Anthropic version and betas reach a
/// same-dialect target, while translated requests carry the provider's configured version.
#[tokio::test]
async fn provider_keys_and_versions() {
    let mut a = p("a", "anthropic", "m");
    a.extra = "api_key_env = \"A_KEY\"\nanthropic_version = \"2026-10-21\"";
    let mut o = p("o", "openai", "m");
    o.extra = "api_key_env = \"O_KEY\"";
    let env = Env::from_pairs([("A_KEY", "sk-ant"), ("O_KEY", "sk-oai")]);
    let h = Harness::with(&[a, o], "", env).await;
    // OpenAI door → Anthropic target under 2026-10-21: no temperature in the translated body.
    let mut body = common::openai_body("hi", false);
    body["temperature"] = json!(0.3);
    let r = h.post("/v1/chat/completions", body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = h.sims[0].last_request("/v1/messages").unwrap();
    assert!(sent.get("temperature").is_none(), "{sent}");
    let headers = h.sims[0].last_headers("/v1/messages").unwrap();
    assert_eq!(headers.get("x-api-key").unwrap(), "sk-ant");
    assert_eq!(headers.get("anthropic-version").unwrap(), "2026-10-21");

    h.fault(0, nines_sim::FaultKind::Status { status: 503, retry_after: None }, 1);
    let r = h.post("/v1/messages", common::anthropic_body("hi", false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let headers = h.sims[1].last_headers("/v1/chat/completions").unwrap();
    assert_eq!(headers.get("authorization").unwrap(), "Bearer sk-oai");
}
