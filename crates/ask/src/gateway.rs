//! The app as a client of nines: it reaches the gateway's own front door over HTTP with the reader's key, like any
//! SDK would, so that every limit, budget, failover and resume applies to it. Nothing here knows a provider.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::time::Instant;

/// How long a key the gateway accepted is taken as good without asking again.
const KEY_FRESH: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the gateway refused this key")]
    Unauthorized,
    #[error("the gateway answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("cannot reach the gateway: {0}")]
    Unreachable(#[source] reqwest::Error),
    #[error("the gateway's answer could not be read: {0}")]
    Unreadable(String),
}

/// Who a request is from: the key's digest (never the key), or `anonymous` without one.
pub fn owner(key: Option<&SecretString>) -> String {
    match key {
        Some(k) => {
            let d = sha2::Sha256::digest(k.expose_secret().as_bytes());
            let hex: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("key_{hex}")
        }
        None => "anonymous".to_owned(),
    }
}

pub struct Gateway {
    /// The gateway's base URL (`http://127.0.0.1:4000`), set once it listens.
    base: std::sync::OnceLock<String>,
    http: reqwest::Client,
    /// Keys the gateway accepted, by owner, and when.
    accepted: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("base", &self.base.get()).finish_non_exhaustive()
    }
}

/// Embeddings as the gateway answered them: the target that made them (vectors of different targets are never
/// compared) and one vector per text.
#[derive(Debug)]
pub struct Embedded {
    pub space: String,
    pub vectors: Vec<Vec<f32>>,
}

impl Default for Gateway {
    fn default() -> Self {
        Self::new()
    }
}

impl Gateway {
    pub fn new() -> Gateway {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Gateway { base: std::sync::OnceLock::new(), http, accepted: Mutex::new(HashMap::new()) }
    }

    /// Where the gateway listens (set once).
    pub fn set_base(&self, base: String) {
        let _ = self.base.set(base);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.get().map_or("http://127.0.0.1:4000", String::as_str))
    }

    fn authed(&self, req: reqwest::RequestBuilder, key: Option<&SecretString>) -> reqwest::RequestBuilder {
        match key {
            Some(k) => req.bearer_auth(k.expose_secret()),
            None => req,
        }
    }

    /// Whether the gateway accepts `key` (its model listing answers), remembered for a little while.
    pub async fn check(&self, key: Option<&SecretString>) -> Result<String, GatewayError> {
        let who = owner(key);
        let now = Instant::now();
        {
            let mut seen = self.accepted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            seen.retain(|_, at| now.duration_since(*at) < KEY_FRESH);
            if seen.contains_key(&who) {
                return Ok(who);
            }
        }
        let req = self.authed(self.http.get(self.url("/v1/models")), key).timeout(Duration::from_secs(10));
        let resp = req.send().await.map_err(GatewayError::Unreachable)?;
        match resp.status().as_u16() {
            200..=299 => {
                let mut seen = self.accepted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                seen.insert(who.clone(), now);
                Ok(who)
            }
            401 | 403 => Err(GatewayError::Unauthorized),
            status => {
                Err(GatewayError::Status { status, message: "the key could not be checked".to_owned() })
            }
        }
    }

    /// Embed `texts` through the route `model`.
    pub async fn embed(
        &self,
        key: Option<&SecretString>,
        model: &str,
        texts: &[&str],
    ) -> Result<Embedded, GatewayError> {
        let body = json!({"model": model, "input": texts, "encoding_format": "float"});
        let req = self.authed(self.http.post(self.url("/v1/embeddings")), key).json(&body);
        let resp = req.timeout(Duration::from_secs(120)).send().await.map_err(GatewayError::Unreachable)?;
        let space = header(&resp, "x-nines-target").unwrap_or_else(|| model.to_owned());
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.map_err(|e| GatewayError::Unreadable(e.to_string()))?;
        if status != 200 {
            return Err(error_of(status, &v));
        }
        let mut vectors = vec![Vec::new(); texts.len()];
        for d in v["data"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let i = d["index"].as_u64().unwrap_or(u64::MAX) as usize;
            let e: Option<Vec<f32>> = d["embedding"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).map(|x| x as f32).collect());
            if let (Some(slot), Some(e)) = (vectors.get_mut(i), e) {
                *slot = e;
            }
        }
        if vectors.iter().any(Vec::is_empty) {
            return Err(GatewayError::Unreadable("an input got no vector".to_owned()));
        }
        Ok(Embedded { space, vectors })
    }

    /// Start a streamed chat answer through the route `model`: the response at its headers.
    pub async fn chat_stream(
        &self,
        key: Option<&SecretString>,
        model: &str,
        messages: Vec<Value>,
    ) -> Result<reqwest::Response, GatewayError> {
        let body = json!({"model": model, "messages": messages, "stream": true, "max_tokens": 600,
                          "temperature": 0});
        let req = self.authed(self.http.post(self.url("/v1/chat/completions")), key).json(&body);
        let resp = req.send().await.map_err(GatewayError::Unreachable)?;
        let status = resp.status().as_u16();
        if status == 200 {
            return Ok(resp);
        }
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        Err(error_of(status, &v))
    }
}

/// A response header as text.
pub fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn error_of(status: u16, v: &Value) -> GatewayError {
    if status == 401 || status == 403 {
        return GatewayError::Unauthorized;
    }
    let message = v["error"]["message"].as_str().unwrap_or("no reason given").to_owned();
    GatewayError::Status { status, message }
}
