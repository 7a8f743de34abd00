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

/// The edge's time limits, each cut within its bound: a client that connects and sends nothing, one that drips
/// its headers, one that drips its body, an idle kept-alive connection; connections beyond the cap are closed at
/// once; and a drain is not held by any of them.
#[tokio::test]
#[allow(clippy::disallowed_methods)] // the slow clients are tasks of the test's own runtime
async fn slow_clients_are_cut_within_their_limits_and_do_not_hold_a_drain() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let edge = "[server]\nheader_timeout = \"1s\"\nmin_body_rate = 1000\nmax_connections = 8\n";
    let h = Harness::with(&[p("first", "openai", "m1")], edge, Env::default()).await;
    let addr = h.base.trim_start_matches("http://").to_owned();
    let started = tokio::time::Instant::now();
    // Reads until the server closes; what it said, and when.
    async fn closed(mut s: TcpStream) -> (String, Duration) {
        let t0 = tokio::time::Instant::now();
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
                Err(_) => panic!("still open after 10 s"),
            }
        }
        (String::from_utf8_lossy(&all).into_owned(), t0.elapsed())
    }
    // Nothing at all; and one byte of what could be HTTP/2's preface.
    let silent = TcpStream::connect(&addr).await.unwrap();
    let mut one_byte = TcpStream::connect(&addr).await.unwrap();
    one_byte.write_all(b"P").await.unwrap();
    // Headers a byte at a time, forever.
    let mut drip = TcpStream::connect(&addr).await.unwrap();
    let drip_task = tokio::spawn(async move {
        for b in b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: ".iter().cycle() {
            if drip.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // Headers whole, then the body at 10 bytes a second (the floor is 1000).
    let mut slow_body = TcpStream::connect(&addr).await.unwrap();
    slow_body
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n")
        .await
        .unwrap();
    let (mut body_read, mut body_write) = slow_body.into_split();
    let body_task = tokio::spawn(async move {
        loop {
            if body_write.write_all(b"          ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    // One request answered, then the connection left idle.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let body = r#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#;
    idle.write_all(format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes()).await.unwrap();

    let (said, t) = closed(silent).await;
    assert!(said.is_empty() && t <= Duration::from_millis(2500), "silent: {said:?} after {t:?}");
    let (said, t) = closed(one_byte).await;
    assert!(said.is_empty() && t <= Duration::from_millis(2500), "one byte: {said:?} after {t:?}");
    let (said, t) = closed(idle).await;
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");
    assert!(t <= Duration::from_millis(2500), "idle keep-alive closed after {t:?}");
    let mut out = Vec::new();
    let t0 = tokio::time::Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(10), body_read.read_to_end(&mut out))
        .await
        .expect("slow body cut");
    let said = String::from_utf8_lossy(&out);
    assert!(said.starts_with("HTTP/1.1 408"), "slow body: {said}");
    assert!(said.contains("slower than 1000 bytes a second"), "{said}");
    assert!(t0.elapsed() <= Duration::from_secs(4), "{:?}", t0.elapsed());
    drip_task.await.unwrap();
    body_task.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(8));

    // The cap: 8 open, the ninth is closed at once.
    let mut open = Vec::new();
    for _ in 0..8 {
        open.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (said, t) = closed(TcpStream::connect(&addr).await.unwrap()).await;
    assert!(said.is_empty() && t < Duration::from_millis(500), "over the cap: {said:?} after {t:?}");

    // A drain with those 8 slow connections open ends within the header limit, not a 30 s grace.
    for s in &mut open {
        s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost:").await.unwrap();
    }
    let t0 = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), h.app.shutdown()).await.expect("the drain was held");
    assert!(t0.elapsed() <= Duration::from_millis(2500), "drained in {:?}", t0.elapsed());
}

/// A body announced larger than any nines reads is refused before a byte of it is read.
#[tokio::test]
async fn a_body_announced_too_large_is_refused_before_it_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::new(&[p("first", "openai", "m1")]).await;
    let addr = h.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 18446744073709551000\r\n\r\n{")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("request_too_large"), "Anthropic's shape: {text}");
}

/// Headers larger than the gateway takes: 431, in the door's own dialect.
#[tokio::test]
async fn oversized_headers_are_refused_in_the_doors_dialect() {
    let h =
        Harness::with(&[p("first", "openai", "m1")], "[server]\nmax_header_bytes = 2048\n", Env::default())
            .await;
    let big = "x".repeat(3000);
    let (path, body) = request("anthropic", "hi", false);
    let r = h.post_with(path, body, &[("x-big", &big)]).await;
    assert_eq!(r.status, 431, "{}", r.text);
    assert_eq!(r.json()["type"], "error", "Anthropic's shape: {}", r.text);
    let (path, body) = request("openai", "hi", false);
    let r = h.post_with(path, body, &[("x-big", &big)]).await;
    assert_eq!(r.status, 431);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("2048"));
    assert_eq!(h.sims[0].total_hits(), 0);
}

/// No provider header reaches a client but its request id (checked): not its rate-limit headers (nines reads them
/// itself), not a cookie, not its server's name.
#[tokio::test]
async fn upstream_headers_are_forwarded_from_an_allow_list_only() {
    for (kind, door) in [("anthropic", "anthropic"), ("openai", "openai")] {
        let h = Harness::new(&[p("first", kind, "m1")]).await;
        h.sims[0].set_rate_limit(Some(nines_sim::RateLimit {
            requests: Some(100),
            tokens: None,
            window_ms: 60_000,
        }));
        for stream in [false, true] {
            let (path, body) = request(door, "hi", stream);
            let r = h.post(path, body).await;
            assert_eq!(r.status, 200, "{}", r.text);
            // Only nines' own and HTTP's framing.
            let ours = [
                "content-type",
                "content-length",
                "transfer-encoding",
                "date",
                "cache-control",
                "x-accel-buffering",
                "x-request-id",
            ];
            for (name, _) in &r.headers {
                let n = name.as_str();
                assert!(ours.contains(&n) || n.starts_with("x-nines-"), "{kind}: {n} came through");
            }
            assert!(!r.header("x-nines-upstream-request-id").is_empty(), "{kind}: the request id is kept");
        }
    }
}
