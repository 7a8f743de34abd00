//! Providers: where requests go. One [`Provider`] per configured provider, holding its HTTP client (connection pool),
//! its key, and how its kind wants URLs and headers.
//!
//! This module builds and sends one upstream HTTP request; it never decides what to try next (that is `dispatch`).

pub mod error;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use nines_wire::{Dialect, EncodeOpts};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Env, ProviderConfig, ProviderKind};
pub use error::{ErrorKind, ProviderError};

/// The Messages API version sent with translated requests unless a provider sets `anthropic_version`: the version
/// under which every field the canonical model carries (temperature, top_p, top_k among them) is accepted.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// From this Messages API version on, Anthropic refuses `temperature`, `top_p` and `top_k`.
pub const ANTHROPIC_VERSION_WITHOUT_SAMPLING: &str = "2026-10-21";

#[derive(Debug, thiserror::Error)]
#[error("provider \"{name}\": cannot build its HTTP client")]
pub struct BuildError {
    pub name: String,
    #[source]
    pub source: reqwest::Error,
}

pub struct Provider {
    pub config: ProviderConfig,
    client: reqwest::Client,
    /// The chat endpoint, parsed once, for kinds whose URL does not name the model (all but Gemini): parsing a URL
    /// on every request was 4% of the gateway's CPU (docs/performance.md).
    fixed_chat_url: Option<reqwest::Url>,
    key: Option<SecretString>,
    /// Why this provider cannot be used at all (its key variable is unset), if so.
    pub unusable: Option<String>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("name", &self.config.name).field("kind", &self.config.kind).finish()
    }
}

impl Provider {
    pub fn build(config: ProviderConfig, env: &Env) -> Result<Provider, BuildError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(|source| BuildError { name: config.name.clone(), source })?;
        let (key, unusable) = match &config.api_key_env {
            None => (None, None),
            Some(var) => match env.secret(var) {
                Some(k) => (Some(k), None),
                None => (None, Some(format!("its key variable {var} is not set"))),
            },
        };
        let fixed_chat_url = match config.kind {
            ProviderKind::Gemini => None,
            _ => reqwest::Url::parse(&chat_url(&config, "", false)).ok(),
        };
        Ok(Provider { config, client, fixed_chat_url, key, unusable })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn dialect(&self) -> Dialect {
        self.config.kind.dialect()
    }

    pub fn encode_opts(&self, caps: crate::config::Capabilities) -> EncodeOpts {
        // Version dates compare correctly as strings.
        let sampling = self.config.kind != ProviderKind::Anthropic
            || self.config.anthropic_version.as_str() < ANTHROPIC_VERSION_WITHOUT_SAMPLING;
        EncodeOpts {
            max_tokens_field: self.config.max_tokens_field,
            sampling_params: sampling,
            reasoning: caps.reasoning,
        }
    }

    /// The endpoint for a chat request to `model`.
    pub fn chat_url(&self, model: &str, stream: bool) -> String {
        chat_url(&self.config, model, stream)
    }

    /// Build the upstream chat request. `passthrough` carries the client's own headers that matter to a provider of
    /// the same dialect (`anthropic-version`, `anthropic-beta`).
    pub fn chat_request(
        &self,
        model: &str,
        stream: bool,
        body: Bytes,
        passthrough: &HeaderMap,
    ) -> reqwest::RequestBuilder {
        let req = match &self.fixed_chat_url {
            Some(url) => self.post(url.clone(), body, passthrough),
            None => self.post(self.chat_url(model, stream), body, passthrough),
        };
        if stream {
            req.header(http::header::ACCEPT, HeaderValue::from_static("text/event-stream"))
        } else {
            req
        }
    }

    /// The endpoint for an embeddings request (OpenAI-format and Gemini providers; Anthropic has none).
    pub fn embeddings_url(&self, model: &str) -> Option<String> {
        let base = &self.config.base_url;
        match self.config.kind {
            ProviderKind::OpenAi | ProviderKind::OpenAiResponses => Some(format!("{base}/embeddings")),
            ProviderKind::Gemini => {
                let model = path_segment(model.strip_prefix("models/").unwrap_or(model));
                Some(format!("{base}/v1beta/models/{model}:batchEmbedContents"))
            }
            ProviderKind::Anthropic => None,
        }
    }

    /// The endpoint for counting a request's tokens in the provider's own format (Anthropic's
    /// `/v1/messages/count_tokens`, Gemini's `:countTokens`; OpenAI's Chat API has none).
    pub fn count_tokens_url(&self, model: &str) -> Option<String> {
        let base = &self.config.base_url;
        match self.config.kind {
            ProviderKind::Anthropic => Some(format!("{base}/v1/messages/count_tokens")),
            ProviderKind::Gemini => {
                let model = path_segment(model.strip_prefix("models/").unwrap_or(model));
                Some(format!("{base}/v1beta/models/{model}:countTokens"))
            }
            ProviderKind::OpenAi | ProviderKind::OpenAiResponses => None,
        }
    }

    /// A JSON POST to `url` with this provider's key and, for Anthropic, its version headers.
    pub fn post(
        &self,
        url: impl reqwest::IntoUrl,
        body: Bytes,
        passthrough: &HeaderMap,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .post(url)
            .header(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
        let key = self.key.as_ref().map(|k| k.expose_secret());
        match self.config.kind {
            ProviderKind::Anthropic => {
                // A same-dialect client's body matches the version it sent; a translated body matches ours.
                match passthrough.get("anthropic-version") {
                    Some(v) => req = req.header("anthropic-version", v.clone()),
                    None => req = req.header("anthropic-version", self.config.anthropic_version.as_str()),
                }
                if let Some(beta) = passthrough.get("anthropic-beta") {
                    req = req.header("anthropic-beta", beta.clone());
                }
                if let Some(k) = key {
                    req = req.header("x-api-key", k);
                }
            }
            ProviderKind::OpenAi | ProviderKind::OpenAiResponses => {
                if let Some(k) = key {
                    req = req.bearer_auth(k);
                }
            }
            ProviderKind::Gemini => {
                if let Some(k) = key {
                    req = req.header("x-goog-api-key", k);
                }
            }
        }
        req
    }
}

/// The endpoint for a chat request to `model` on a provider configured so.
fn chat_url(config: &ProviderConfig, model: &str, stream: bool) -> String {
    let base = &config.base_url;
    match config.kind {
        ProviderKind::Anthropic => format!("{base}/v1/messages"),
        ProviderKind::OpenAi => format!("{base}/chat/completions"),
        ProviderKind::OpenAiResponses => format!("{base}/responses"),
        ProviderKind::Gemini => {
            // The model is one path segment: a client's `gemini/../x?y` must not reach another endpoint.
            let model = path_segment(model.strip_prefix("models/").unwrap_or(model));
            if stream {
                format!("{base}/v1beta/models/{model}:streamGenerateContent?alt=sse")
            } else {
                format!("{base}/v1beta/models/{model}:generateContent")
            }
        }
    }
}

/// Percent-encode everything but RFC 3986's unreserved characters, so that `s` stays one path segment.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gemini_model_name_cannot_leave_its_path_segment() {
        assert_eq!(path_segment("gemini-2.5-flash"), "gemini-2.5-flash");
        assert_eq!(
            path_segment("../../v1beta/cachedContents?x#y"),
            "..%2F..%2Fv1beta%2FcachedContents%3Fx%23y"
        );
    }
}
