//! Helpers shared by the simulator's end-to-end tests.

use nines_sim::{Sim, SimOptions};
use serde_json::{Value, json};

pub async fn sim() -> Sim {
    sim_with(SimOptions::new("alpha")).await
}

pub async fn sim_with(opts: SimOptions) -> Sim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Sim::start(listener, opts).await.unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

pub const ANTHROPIC: &str = "/v1/messages";
pub const OPENAI: &str = "/v1/chat/completions";
pub const RESPONSES: &str = "/v1/responses";
pub const GEMINI: &str = "/v1beta/models/gemini-test:generateContent";
pub const GEMINI_STREAM: &str = "/v1beta/models/gemini-test:streamGenerateContent";

pub fn anthropic_body(text: &str) -> Value {
    json!({"model": "claude-test", "max_tokens": 100, "messages": [{"role": "user", "content": text}]})
}

pub fn openai_body(text: &str) -> Value {
    json!({"model": "gpt-test", "messages": [{"role": "user", "content": text}]})
}

pub fn responses_body(text: &str) -> Value {
    json!({"model": "gpt-test", "input": text})
}

pub fn gemini_body(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

/// POST an Anthropic request with the required version header.
pub async fn post_anthropic(sim: &Sim, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}{ANTHROPIC}", sim.base_url()))
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

pub async fn post(sim: &Sim, path: &str, body: &Value) -> reqwest::Response {
    client().post(format!("{}{path}", sim.base_url())).json(body).send().await.unwrap()
}

/// One server-sent event: its `event:` name (if any) and its `data:`.
#[derive(Debug, PartialEq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// Split an SSE body into events (blank-line separated, `\n` or `\r\n` line ends).
pub fn parse_sse(body: &str) -> Vec<Event> {
    let body = body.replace("\r\n", "\n");
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(rest) = line.strip_prefix("event: ") {
                    name = Some(rest.to_owned());
                } else if let Some(rest) = line.strip_prefix("data: ") {
                    data.push(rest);
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            Event { name, data: data.join("\n") }
        })
        .collect()
}

/// Whether an error's source chain contains an I/O error of this kind.
pub fn has_io_kind(err: &(dyn std::error::Error + 'static), kind: std::io::ErrorKind) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == kind
        {
            return true;
        }
        current = e.source();
    }
    false
}
