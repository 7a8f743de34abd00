//! The edge toward the providers: what a misbehaving provider sends never harms the client — an unexpected status
//! (a redirect, 418, 451, out of range) fails over and never reaches the client; a provider that echoes our key
//! back (in its error text or its request-id header) has it redacted everywhere the client or an operator looks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is its job

mod common;

use common::{Harness, P, p, request};
use nines::config::Env;
use nines_sim::{Fault, FaultKind};

#[tokio::test]
async fn unexpected_statuses_fail_over_and_never_reach_the_client() {
    // Breakers off: every status gets its own attempt on the first target.
    let no_breakers = "[health]\nenabled = false\n";
    let h = Harness::with(
        &[p("first", "anthropic", "m1"), p("second", "openai", "m2")],
        no_breakers,
        Env::default(),
    )
    .await;
    for status in [301, 302, 418, 451, 600, 999] {
        h.sims[0].push_fault(Fault::new(FaultKind::Status { status, retry_after: None }));
        let (path, body) = request("openai", "hi", false);
        let r = h.post(path, body).await;
        assert_eq!(r.status, 200, "{status}: {}", r.text);
        assert_eq!(r.header("x-nines-target"), "second/m2", "{status}");
        assert_eq!(r.header("x-nines-attempts"), "2", "{status}");
    }
    // With nowhere else to go, the client gets the gateway's own error, never the odd status.
    let h = Harness::with(&[p("only", "anthropic", "m1")], no_breakers, Env::default()).await;
    for status in [302, 418, 999] {
        h.sims[0].push_fault(Fault::new(FaultKind::Status { status, retry_after: None }));
        let (path, body) = request("anthropic", "hi", false);
        let r = h.post(path, body).await;
        assert!([502, 503, 529].contains(&r.status), "{status} became {}: {}", r.status, r.text);
        assert!(r.text.contains(&format!("unexpected HTTP {status}")), "{}", r.text);
    }
}

const KEY: &str = "sk-test-SECRETKEY-0123456789abcdef";

#[tokio::test]
async fn a_provider_echoing_our_key_has_it_redacted_for_the_client_and_the_status() {
    let env = Env::from_pairs([("FIRST_KEY", KEY), ("SECOND_KEY", "plain-second-secret-value")]);
    let first = P { extra: "api_key_env = \"FIRST_KEY\"", ..p("first", "anthropic", "m1") };
    let second = P { extra: "api_key_env = \"SECOND_KEY\"", ..p("second", "openai", "m2") };
    let h = Harness::with(&[first, second], "[status]\npublic = true\n", env).await;
    let leaks = |text: &str| text.contains("SECRETKEY") || text.contains("plain-second-secret-value");

    // A 400 is the client's: passed on, but without the key the provider echoed.
    h.sims[0].push_fault(Fault::new(FaultKind::Echo { status: 400 }));
    let (path, body) = request("anthropic", "hi", false);
    let r = h.post(path, body).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("malformed request"), "{}", r.text);
    assert!(!leaks(&r.text), "{}", r.text);
    for (name, value) in &r.headers {
        assert!(!leaks(value.to_str().unwrap_or("")), "{name}: {value:?}");
    }

    // Both fail with the echo: the exhausted answer lists each attempt's error, redacted, whatever the key's shape.
    for s in &h.sims {
        s.push_fault(Fault::new(FaultKind::Echo { status: 503 }).times(3));
    }
    let (path, body) = request("anthropic", "hi", false);
    let r = h.post(path, body).await;
    assert!(r.status >= 500, "{}", r.text);
    assert!(r.text.contains("malformed request") && r.text.contains("[redacted]"), "{}", r.text);
    assert!(!leaks(&r.text), "{}", r.text);
    for (name, value) in &r.headers {
        assert!(!leaks(value.to_str().unwrap_or("")), "{name}: {value:?}");
    }
    let status = h.get("/status.json", &[]).await;
    assert!(!leaks(&status.text), "{}", status.text);
    let metrics = h.get("/metrics", &[]).await;
    assert!(!leaks(&metrics.text));
}

/// A keyless client is refused before its body is read: it announces 10 MB, sends a few bytes, and has its 401 (in
/// its door's dialect) at once — nines never waits for, nor buffers, the rest.
#[tokio::test]
async fn a_keyless_client_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::from_pairs([("KEYS", "the-only-key")]);
    let h = Harness::with(&[p("first", "anthropic", "m1")], "[auth]\nkeys_env = \"KEYS\"\n", env).await;
    for (path, extra) in [
        ("/v1/messages", "x-api-key: wrong\r\n"),
        ("/v1/chat/completions", ""),
        ("/v1beta/models/chat:generateContent?key=wrong", "expect: 100-continue\r\n"),
    ] {
        let addr = h.base.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n{extra}\r\n{{\"mo"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer while the body is unsent"))
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 401"), "{path}: {text}");
        assert!(!text.contains("100 Continue"), "{path}: no 100 Continue for a refused client: {text}");
    }
    assert_eq!(h.sims[0].total_hits(), 0);
}

/// A body of more parts than any real conversation (here 150,000 one-word messages, 4.6 MB) is refused with 413
/// before it is parsed — its parsed form would cost many times its bytes — in the door's dialect.
#[tokio::test]
async fn a_request_of_too_many_parts_is_refused_before_it_is_parsed() {
    let h = Harness::new(&[p("first", "openai", "m1")]).await;
    let messages: Vec<serde_json::Value> =
        (0..150_000).map(|_| serde_json::json!({"role": "user", "content": "x"})).collect();
    for (path, body) in [
        ("/v1/chat/completions", serde_json::json!({"model": "chat", "messages": messages})),
        ("/v1/messages", serde_json::json!({"model": "chat", "max_tokens": 5, "messages": messages})),
        ("/v1/responses", serde_json::json!({"model": "chat", "input": messages})),
    ] {
        let r = h.post(path, body).await;
        assert_eq!(r.status, 413, "{path}: {}", &r.text[..r.text.len().min(300)]);
        assert!(r.text.contains("JSON objects and arrays"), "{path}: {}", r.text);
    }
    assert_eq!(h.sims[0].total_hits(), 0);
    // A long but real conversation passes.
    let messages: Vec<serde_json::Value> = (0..2_000)
        .map(
            |i| serde_json::json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": "word"}),
        )
        .collect();
    let r = h.post("/v1/chat/completions", serde_json::json!({"model": "chat", "messages": messages})).await;
    assert_eq!(r.status, 200, "{}", &r.text[..r.text.len().min(300)]);
}
