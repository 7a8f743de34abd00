//! How a stream's bytes reach the client: what the upstream sent together goes out together (one write per batch
//! of events already received, not one per event), and the bytes are the upstream's own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is its job

use nines::App;
use nines::config;
use nines::config::Env;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const EVENTS: usize = 40;

/// An OpenAI-style SSE answer of `EVENTS` content chunks, a usage chunk and `[DONE]`.
fn answer() -> String {
    let mut s = String::new();
    let chunk = |delta: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
             \"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        )
    };
    s.push_str(&chunk(r#"{"role":"assistant","content":""}"#, "null"));
    for i in 0..EVENTS {
        s.push_str(&chunk(&format!(r#"{{"content":" word{i}"}}"#), "null"));
    }
    s.push_str(&chunk("{}", "\"stop\""));
    s.push_str(
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
         \"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":40,\"total_tokens\":43}}\n\n",
    );
    s.push_str("data: [DONE]\n\n");
    s
}

/// Read one HTTP/1.1 request (head and a Content-Length body) from `conn`.
async fn read_request(conn: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = conn.read(&mut tmp).await.unwrap();
        assert!(n > 0, "the request ended early");
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                return;
            }
        }
    }
}

/// An upstream that answers every request with the whole SSE answer in a single write, then closes.
#[allow(clippy::disallowed_methods)] // the upstream is tasks of the test's own runtime
async fn one_write_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_request(&mut conn).await;
                // Each event its own HTTP chunk, as servers that flush every event send them (hyper's client
                // hands the gateway one body chunk at a time).
                let mut response = String::from(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\
                     connection: close\r\n\r\n",
                );
                for event in answer().split_inclusive("\n\n") {
                    response.push_str(&format!("{:x}\r\n{event}\r\n", event.len()));
                }
                response.push_str("0\r\n\r\n");
                conn.write_all(response.as_bytes()).await.unwrap();
                conn.shutdown().await.unwrap();
            });
        }
    });
    format!("http://{addr}")
}

/// The client side, raw: the response's head and its body's chunks, as the gateway framed them.
async fn chunks_of(gateway: &str, path: &str, body: &str) -> (String, Vec<Vec<u8>>) {
    let mut conn = TcpStream::connect(gateway).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {gateway}\r\ncontent-type: application/json\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    assert!(head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    let mut rest = &raw[end + 4..];
    let mut chunks = Vec::new();
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap().trim(), 16).unwrap();
        rest = &rest[line + 2..];
        if size == 0 {
            break;
        }
        chunks.push(rest[..size].to_vec());
        rest = &rest[size + 2..];
    }
    (head, chunks)
}

#[tokio::test]
async fn events_received_together_go_to_the_client_together() {
    let upstream = one_write_upstream().await;
    let toml = format!(
        "[providers.up]\nkind = \"openai\"\nbase_url = \"{upstream}/v1\"\n\n[routes.chat]\ntargets = [\"up/m\"]\n"
    );
    let app = App::build(config::parse_and_validate(&toml).unwrap(), &Env::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = listener.local_addr().unwrap().to_string();
    app.spawn(listener);

    let body = r#"{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let (head, chunks) = chunks_of(&gateway, "/v1/chat/completions", body).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Same dialect: the client gets the upstream's own bytes, in order, complete.
    let got: Vec<u8> = chunks.concat();
    assert_eq!(String::from_utf8(got).unwrap(), answer());
    // The answer (about 6 KB) arrives in a few of the gateway's 4 KiB reads; what each read brought goes out as one
    // chunk (one write), where one per event would be 44.
    assert!(
        chunks.len() <= 6,
        "{} chunks for {} events: {:?}",
        chunks.len(),
        EVENTS + 4,
        chunks_sizes(&chunks)
    );

    // Translated (Anthropic's door): the events are re-encoded, and still batched.
    let body =
        r#"{"model":"chat","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
    let (head, chunks) = chunks_of(&gateway, "/v1/messages", body).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let text = String::from_utf8(chunks.concat()).unwrap();
    assert_eq!(text.matches("event: content_block_delta").count(), EVENTS, "{text}");
    assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), "{text}");
    assert!(chunks.len() <= 6, "{} chunks: {:?}", chunks.len(), chunks_sizes(&chunks));
}

fn chunks_sizes(chunks: &[Vec<u8>]) -> Vec<usize> {
    chunks.iter().map(Vec::len).collect()
}
