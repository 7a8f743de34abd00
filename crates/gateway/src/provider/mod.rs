//! Providers: where requests go. One [`Provider`] per configured provider, holding its HTTP client (connection pool),
//! its key, and how its kind wants URLs and headers.
//!
//! The client is hyper's (hyper-util's pooled client, rustls with the platform's roots, HTTP/2 where TLS offers it),
//! used directly rather than through reqwest: per request that saved URL parsing and reqwest's layers, and per open
//! upstream connection it lets the read buffer be sized (docs/performance.md).
//!
//! This module builds and sends one upstream HTTP request; it never decides what to try next (that is `dispatch`).

pub mod context;
pub mod error;
pub mod local;
pub mod redact;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use nines_wire::{Dialect, EncodeOpts};
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest as _;

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
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// An upstream request, as the client sends it.
pub type UpstreamRequest = Request<Full<Bytes>>;
/// An upstream answer: status and headers, and a body still to be read.
pub type UpstreamResponse = http::Response<Incoming>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The read buffer of each upstream HTTP/1.1 connection. hyper's default starts at 8 KiB and grows; a fixed 4 KiB
/// halves what every open stream holds (SSE events are far smaller) and costs a 100 KB answer a few more reads.
const READ_BUFFER: usize = 4096;

/// What tells one upstream HTTP client from another: the connect timeout and the certificate authorities trusted
/// (the SHA-256 of the `tls_ca` file's content: a reload after the file changed builds a new client).
type ClientKey = (std::time::Duration, Option<[u8; 32]>);

/// The upstream HTTP clients (and so their connection pools), one per connect timeout and trust, and the
/// in-process models, one per folder: kept outside any configuration snapshot, so that a reload reuses the warm
/// connections and does not load a model again.
#[derive(Default)]
pub struct Clients(
    std::sync::Mutex<std::collections::HashMap<ClientKey, HttpClient>>,
    std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, std::sync::Arc<LocalModel>>>,
);

/// A model run inside nines, and the one permit to run it: a request waits for the permit (within its deadline)
/// before its work goes to a blocking thread, and the work keeps it until it is done, so work abandoned past a
/// deadline never piles up beside new work.
pub struct LocalModel {
    pub model: nines_embed::Embedder,
    pub running: std::sync::Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clients")
    }
}

impl Clients {
    /// The client for `connect` and the `tls_ca` file at that path, read now (at every start and reload).
    fn get(
        &self,
        connect: std::time::Duration,
        tls_ca: Option<&std::path::Path>,
    ) -> Result<HttpClient, BoxError> {
        let ca = match tls_ca {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|source| CaError::Open { path: path.display().to_string(), source })?;
                Some(Ca { digest: sha2::Sha256::digest(&pem).into(), pem, path })
            }
            None => None,
        };
        let key = (connect, ca.as_ref().map(|c| c.digest));
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let client = http_client(connect, ca.as_ref())?;
        map.insert(key, client.clone());
        Ok(client)
    }

    /// The in-process embedding model in `dir`, loaded the first time it is asked for.
    fn embedder(&self, dir: &std::path::Path) -> Result<std::sync::Arc<LocalModel>, BoxError> {
        let mut map = self.1.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = map.get(dir) {
            return Ok(e.clone());
        }
        let e = std::sync::Arc::new(LocalModel {
            model: nines_embed::Embedder::load(dir)?,
            running: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        });
        map.insert(dir.to_owned(), e.clone());
        Ok(e)
    }
}

/// A provider's `tls_ca` file, as read.
struct Ca<'a> {
    path: &'a std::path::Path,
    pem: Vec<u8>,
    digest: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
enum CaError {
    #[error("tls_ca {path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("tls_ca {path}: {source}")]
    Read { path: String, source: rustls::pki_types::pem::Error },
    #[error("tls_ca {path}: no certificate in it")]
    Empty { path: String },
    #[error("tls_ca {path}: {source}")]
    Bad { path: String, source: rustls::Error },
}

/// The certificate authorities of a `tls_ca` file, as a TLS client configuration trusting only them.
fn tls_with_ca(ca: &Ca<'_>) -> Result<rustls::ClientConfig, CaError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let shown = ca.path.display().to_string();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca.pem) {
        let cert = cert.map_err(|source| CaError::Read { path: shown.clone(), source })?;
        roots.add(cert).map_err(|source| CaError::Bad { path: shown.clone(), source })?;
    }
    if roots.is_empty() {
        return Err(CaError::Empty { path: shown });
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| CaError::Bad { path: shown, source })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn http_client(connect: std::time::Duration, tls_ca: Option<&Ca<'_>>) -> Result<HttpClient, BoxError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect));
    let tls = hyper_rustls::HttpsConnectorBuilder::new();
    let tls = match tls_ca {
        Some(ca) => tls.with_tls_config(tls_with_ca(ca)?),
        None => tls.try_with_platform_verifier()?,
    };
    let https = tls.https_or_http().enable_http1().enable_http2().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .http1_read_buf_exact_size(READ_BUFFER)
        .build(https))
}

pub struct Provider {
    pub config: ProviderConfig,
    client: HttpClient,
    /// What decides whether our requests are accepted (kind, URL, key): an auth failure holds until it changes.
    pub fingerprint: u64,
    /// The chat endpoint, parsed once, for kinds whose URL does not name the model (all but Gemini): parsing a URL
    /// on every request was 4% of the gateway's CPU (docs/performance.md).
    fixed_chat_url: Option<Uri>,
    /// The key, as the header this kind wants it in (marked sensitive).
    auth: Option<(HeaderName, HeaderValue)>,
    /// `anthropic-version` for translated requests.
    anthropic_version: HeaderValue,
    /// Why this provider cannot be used at all (its key variable is unset), if so.
    pub unusable: Option<String>,
    /// The model, for a provider that runs in-process (kind = "local-embeddings").
    pub embedder: Option<std::sync::Arc<LocalModel>>,
}

impl Provider {
    /// The key as it is sent, if any: only for scrubbing it out of what a provider echoes back.
    pub fn secret(&self) -> Option<&str> {
        let (_, v) = self.auth.as_ref()?;
        let s = v.to_str().ok()?;
        Some(s.strip_prefix("Bearer ").unwrap_or(s))
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("name", &self.config.name).field("kind", &self.config.kind).finish()
    }
}

impl Provider {
    pub fn build(config: ProviderConfig, env: &Env, clients: &Clients) -> Result<Provider, BuildError> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| BuildError {
            name: config.name.clone(),
            source,
        };
        let client = clients.get(config.timeouts.connect, config.tls_ca.as_deref()).map_err(fail)?;
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            config.fingerprint().hash(&mut h);
            config.api_key_env.as_deref().and_then(|v| env.get(v)).hash(&mut h);
            h.finish()
        };
        let (auth, unusable) = match config.api_key_env.as_deref().map(|var| (var, env.secret(var))) {
            None => (None, None),
            Some((var, None)) => (None, Some(format!("its key variable {var} is not set"))),
            Some((_, Some(key))) => match auth_header(config.kind, &key) {
                Some(header) => (Some(header), None),
                None => (None, Some("its key holds characters no HTTP header can carry".to_owned())),
            },
        };
        let anthropic_version =
            HeaderValue::from_str(&config.anthropic_version).map_err(|e| fail(Box::new(e)))?;
        let fixed_chat_url = match config.kind {
            ProviderKind::Gemini | ProviderKind::LocalEmbeddings => None,
            _ => Uri::try_from(chat_url(&config, "", false)).ok(),
        };
        let embedder = match (&config.kind, &config.model_dir) {
            (ProviderKind::LocalEmbeddings, Some(dir)) => Some(clients.embedder(dir).map_err(fail)?),
            _ => None,
        };
        Ok(Provider {
            config,
            client,
            fingerprint,
            fixed_chat_url,
            auth,
            anthropic_version,
            unusable,
            embedder,
        })
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
    ) -> Result<UpstreamRequest, ProviderError> {
        let uri = match &self.fixed_chat_url {
            Some(uri) => uri.clone(),
            None => parse_uri(self.chat_url(model, stream))?,
        };
        let mut req = self.post(uri, body, passthrough);
        if stream {
            req.headers_mut().insert(http::header::ACCEPT, HeaderValue::from_static("text/event-stream"));
        }
        Ok(req)
    }

    /// Send a request; the answer comes back at its headers, its body still to be read.
    pub async fn send(&self, req: UpstreamRequest) -> Result<UpstreamResponse, ProviderError> {
        self.client.request(req).await.map_err(ProviderError::from_client)
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
            ProviderKind::Anthropic | ProviderKind::LocalEmbeddings => None,
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
            ProviderKind::OpenAi | ProviderKind::OpenAiResponses | ProviderKind::LocalEmbeddings => None,
        }
    }

    /// A GET of `uri` with this provider's key (a probe's model listing).
    pub fn get(&self, uri: Uri) -> UpstreamRequest {
        let mut req = self.post(uri, Bytes::new(), &HeaderMap::new());
        *req.method_mut() = Method::GET;
        req.headers_mut().remove(CONTENT_TYPE);
        req
    }

    /// The provider's model listing (what a `models` probe asks for).
    pub fn models_url(&self) -> String {
        let base = &self.config.base_url;
        match self.config.kind {
            ProviderKind::Anthropic => format!("{base}/v1/models"),
            ProviderKind::OpenAi | ProviderKind::OpenAiResponses | ProviderKind::LocalEmbeddings => {
                format!("{base}/models")
            }
            ProviderKind::Gemini => format!("{base}/v1beta/models"),
        }
    }

    /// A JSON POST to `uri` with this provider's key and, for Anthropic, its version headers.
    pub fn post(&self, uri: Uri, body: Bytes, passthrough: &HeaderMap) -> UpstreamRequest {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.config.kind == ProviderKind::Anthropic {
            // A same-dialect client's body matches the version it sent; a translated body matches ours.
            let version = passthrough.get("anthropic-version").unwrap_or(&self.anthropic_version);
            h.insert("anthropic-version", version.clone());
            if let Some(beta) = passthrough.get("anthropic-beta") {
                h.insert("anthropic-beta", beta.clone());
            }
        }
        if let Some((name, value)) = &self.auth {
            h.insert(name.clone(), value.clone());
        }
        req
    }
}

/// The header carrying `key` as a provider of `kind` wants it, marked sensitive; `None` if no header can carry it.
fn auth_header(kind: ProviderKind, key: &SecretString) -> Option<(HeaderName, HeaderValue)> {
    let key = key.expose_secret();
    let (name, value) = match kind {
        ProviderKind::Anthropic => (HeaderName::from_static("x-api-key"), HeaderValue::from_str(key)),
        ProviderKind::OpenAi | ProviderKind::OpenAiResponses | ProviderKind::LocalEmbeddings => {
            (AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {key}")))
        }
        ProviderKind::Gemini => (HeaderName::from_static("x-goog-api-key"), HeaderValue::from_str(key)),
    };
    let mut value = value.ok()?;
    value.set_sensitive(true);
    Some((name, value))
}

/// A URL this gateway made, as a request URI (a failure is the provider's configuration, so the next target is
/// tried).
pub fn parse_uri(url: String) -> Result<Uri, ProviderError> {
    Uri::try_from(url)
        .map_err(|e| ProviderError::new(ErrorKind::Connect, format!("not a usable URL: {e}")).with_source(e))
}

/// The endpoint for a chat request to `model` on a provider configured so.
fn chat_url(config: &ProviderConfig, model: &str, stream: bool) -> String {
    let base = &config.base_url;
    match config.kind {
        ProviderKind::Anthropic => format!("{base}/v1/messages"),
        ProviderKind::OpenAi | ProviderKind::LocalEmbeddings => format!("{base}/chat/completions"),
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
