//! The end-to-end harness: N simulated providers and the gateway, all on 127.0.0.1:0, in this test's runtime.
// A test harness: failing loudly is its job.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nines::App;
use nines::config::{self, Env};
use nines_sim::{Fault, FaultKind, Sim, SimOptions};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub struct Harness {
    pub sims: Vec<Sim>,
    pub app: App,
    pub base: String,
    pub client: reqwest::Client,
    /// The configuration it was built from, and its environment (for a restart).
    pub toml: String,
    pub env: Env,
}

/// One provider of the harness: its name, kind and the model its route target names.
pub struct P {
    pub name: &'static str,
    pub kind: &'static str,
    pub model: &'static str,
    pub extra: &'static str,
    /// The provider's first-byte (and idle) timeout.
    pub first_byte: &'static str,
    /// Same-target retries (0 here unless a test sets it: most tests pin failover, not retries).
    pub retries: u32,
}

pub const fn p(name: &'static str, kind: &'static str, model: &'static str) -> P {
    P { name, kind, model, extra: "", first_byte: "500ms", retries: 0 }
}

impl Harness {
    /// Providers in route order (route "chat"); short timeouts so hangs are detected quickly.
    pub async fn new(providers: &[P]) -> Harness {
        Self::with(providers, "", Env::default()).await
    }

    pub async fn with(providers: &[P], extra_toml: &str, env: Env) -> Harness {
        let mut sims = Vec::new();
        let mut toml = String::new();
        for p in providers {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let sim = Sim::start(l, SimOptions::new(p.name)).await.unwrap();
            let base = match p.kind {
                "openai" | "openai-responses" => format!("{}/v1", sim.base_url()),
                _ => sim.base_url(),
            };
            toml.push_str(&format!(
                "[providers.{name}]\nkind = \"{kind}\"\nbase_url = \"{base}\"\nretries = {retries}\n{extra}\n\
                 [providers.{name}.timeouts]\nconnect = \"1s\"\nfirst_byte = \"{fb}\"\nidle = \"{fb}\"\n\n",
                name = p.name,
                kind = p.kind,
                extra = p.extra,
                fb = p.first_byte,
                retries = p.retries,
            ));
            sims.push(sim);
        }
        let targets: Vec<String> = providers.iter().map(|p| format!("\"{}/{}\"", p.name, p.model)).collect();
        toml.push_str(&format!("[routes.chat]\ntargets = [{}]\n\n{extra_toml}\n", targets.join(", ")));
        let (app, base) = Self::start(&toml, &env).await;
        Harness { sims, app, base, client: reqwest::Client::new(), toml, env }
    }

    async fn start(toml: &str, env: &Env) -> (App, String) {
        let config = config::parse_and_validate(toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        let app = App::build(config, env).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        app.spawn(listener);
        (app, base)
    }

    /// Stop the gateway (draining it) and start a new one from the same configuration, in front of the same
    /// simulators.
    pub async fn restart(&mut self) {
        self.app.shutdown().await;
        let (app, base) = Self::start(&self.toml, &self.env).await;
        self.app = app;
        self.base = base;
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.client.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Reply::read(req.send().await.unwrap()).await
    }

    pub fn fault(&self, sim: usize, kind: FaultKind, count: u32) {
        self.sims[sim].push_fault(Fault::new(kind).times(count));
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.post_with(path, body, &[]).await
    }

    pub async fn post_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        Reply::read(resp).await
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        Reply { status, headers, text }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn frames(&self) -> Vec<nines_wire::sse::Frame> {
        nines_wire::sse::parse(&self.text)
    }

    /// The text of a plain or streamed answer, in either front door's dialect.
    pub fn answer_text(&self) -> String {
        if self.header("content-type").starts_with("text/event-stream") {
            let mut text = String::new();
            for f in self.frames() {
                let Ok(v) = serde_json::from_str::<Value>(&f.data) else {
                    continue;
                };
                if let Some(t) = v.pointer("/delta/text").and_then(Value::as_str) {
                    text.push_str(t);
                }
                if let Some(t) = v.pointer("/choices/0/delta/content").and_then(Value::as_str) {
                    text.push_str(t);
                }
            }
            text
        } else {
            let v = self.json();
            v.pointer("/content/0/text")
                .or_else(|| v.pointer("/choices/0/message/content"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        }
    }
}

pub fn openai_body(text: &str, stream: bool) -> Value {
    let mut body = json!({"model": "chat", "stream": stream,
           "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]});
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

pub fn anthropic_body(text: &str, stream: bool) -> Value {
    json!({"model": "chat", "max_tokens": 100, "stream": stream, "system": "be brief",
           "messages": [{"role": "user", "content": text}]})
}

/// The path and body of a request through `door` ("openai" or "anthropic").
pub fn request(door: &str, text: &str, stream: bool) -> (&'static str, Value) {
    match door {
        "openai" => ("/v1/chat/completions", openai_body(text, stream)),
        _ => ("/v1/messages", anthropic_body(text, stream)),
    }
}
