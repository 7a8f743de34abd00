//! What went wrong with an upstream attempt, on two axes: whose fault it is ([`ErrorKind`]) and whether another
//! target may be tried ([`ProviderError::failover`]).
//!
//! Building an error never logs: `record` does. The source chain is kept, never flattened into a string.

use std::time::Duration;

use http::HeaderMap;
use nines_wire::{ErrorType, StreamError};

use crate::health::ratelimit::RateLimits;

/// Why an attempt failed. Every kind but `BadRequest` is the provider's (or our config's) fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Could not connect: refused, DNS, TLS.
    Connect,
    /// The connection broke mid-request (reset, closed early).
    Network,
    /// A timeout: connect, first byte, idle gap or the whole attempt.
    Timeout,
    /// 429.
    RateLimited,
    /// 503, 529, or an `overloaded_error` event.
    Overloaded,
    /// 500, 502, 504 and other 5xx.
    Server,
    /// 401, 402, 403 from the provider: our key or account, not the client's request.
    Auth,
    /// 404 from the provider: the target's model does not exist there.
    NotFound,
    /// An unparsable or malformed upstream body or stream.
    Protocol,
    /// The stream ended before its final event.
    StreamCut,
    /// 400, 413, 422: the client's request is at fault, and any provider would refuse it.
    BadRequest,
    /// A 400 saying the request exceeds the model's context window: a target with a larger window may take it.
    ContextLength,
}

impl ErrorKind {
    /// Every kind, in the order of [`ErrorKind::index`].
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Connect,
        ErrorKind::Network,
        ErrorKind::Timeout,
        ErrorKind::RateLimited,
        ErrorKind::Overloaded,
        ErrorKind::Server,
        ErrorKind::Auth,
        ErrorKind::NotFound,
        ErrorKind::Protocol,
        ErrorKind::StreamCut,
        ErrorKind::BadRequest,
        ErrorKind::ContextLength,
    ];

    /// Its place in [`ErrorKind::ALL`] (for counters kept in arrays).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the failure speaks against the target's availability (not the client's request at fault).
    pub fn counts_against_target(self) -> bool {
        !matches!(self, ErrorKind::BadRequest | ErrorKind::ContextLength)
    }

    /// A short label, stable for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::RateLimited => "rate_limit",
            ErrorKind::Overloaded => "overload",
            ErrorKind::Server => "server_error",
            ErrorKind::Auth => "auth",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Protocol => "protocol",
            ErrorKind::StreamCut => "stream_cut",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::ContextLength => "context_length",
        }
    }

    /// The client-facing error category for this kind.
    pub fn error_type(self) -> ErrorType {
        match self {
            ErrorKind::Timeout => ErrorType::Timeout,
            ErrorKind::RateLimited => ErrorType::RateLimited,
            ErrorKind::Overloaded => ErrorType::Overloaded,
            ErrorKind::BadRequest => ErrorType::InvalidRequest,
            ErrorKind::ContextLength => ErrorType::ContextLength,
            _ => ErrorType::Api,
        }
    }
}

type Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", kind.label(), status.map(|s| format!(" {s}")).unwrap_or_default())]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// The upstream HTTP status, when there was one.
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    pub message: String,
    /// The provider's own request id (`request-id`, `x-request-id`), for the client's support tickets.
    pub request_id: Option<String>,
    /// The rate limits the provider announced with this answer.
    pub limits: Option<Box<RateLimits>>,
    /// A timeout in which nothing came: no response headers, or no first token of a stream (not a slow body).
    pub silent: bool,
    /// The field the provider named as at fault (OpenAI's `param`), with the format of the request it was about:
    /// passed on to a client that sent that format.
    pub param: Option<Box<(nines_wire::Dialect, String)>>,
    #[source]
    pub source: Option<Source>,
}

impl ProviderError {
    /// Remove the provider's own key from the message, wherever it is and whatever its shape.
    pub fn hide_secret(&mut self, secret: Option<&str>) {
        if let Some(s) = secret {
            self.message = super::redact::redact(&self.message, &[s]);
            if self.request_id.as_deref().is_some_and(|id| id.contains(s)) {
                self.request_id = None;
            }
            if self.param.as_deref().is_some_and(|(_, p)| p.contains(s)) {
                self.param = None;
            }
        }
    }

    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            status: None,
            retry_after: None,
            message: message.into(),
            request_id: None,
            limits: None,
            silent: false,
            param: None,
            source: None,
        }
    }

    /// A timeout in which nothing came.
    pub fn silent_timeout(message: impl Into<String>) -> Self {
        ProviderError { silent: true, ..ProviderError::new(ErrorKind::Timeout, message) }
    }

    /// The same error without its source chain (for the flight's log, which outlives the attempt).
    pub fn detached(&self) -> ProviderError {
        ProviderError {
            kind: self.kind,
            status: self.status,
            retry_after: self.retry_after,
            message: self.message.clone(),
            request_id: self.request_id.clone(),
            limits: self.limits.clone(),
            silent: self.silent,
            param: self.param.clone(),
            source: None,
        }
    }

    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// May the next target be tried? Not after the client's own bad request (and after a context window
    /// exceeded, only a target with a larger window: the engine's policy decides which).
    pub fn failover(&self) -> bool {
        self.kind != ErrorKind::BadRequest
    }

    /// Is another try on the same target worth it? Not for a wrong key or model (it will not fix itself), and not
    /// for a timeout or a refused connection (a silent or absent provider stays so; move on quickly).
    pub fn retry_same_target(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Server
                | ErrorKind::Network
                | ErrorKind::Protocol
                | ErrorKind::StreamCut
        )
    }

    /// Classify a non-success HTTP answer.
    pub fn from_status(status: u16, headers: &HeaderMap, body: &[u8]) -> Self {
        let kind = match status {
            400 if super::context::is_context_length_exceeded(status, body) => ErrorKind::ContextLength,
            // Google answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID: our key, not the request.
            400 if contains(body, b"API_KEY_INVALID") => ErrorKind::Auth,
            400 | 413 | 422 => ErrorKind::BadRequest,
            401..=403 => ErrorKind::Auth,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::Timeout,
            429 => ErrorKind::RateLimited,
            503 | 529 => ErrorKind::Overloaded,
            500..=599 => ErrorKind::Server,
            // These come from a request the provider will not take, whatever we retry.
            405 | 409 | 415 => ErrorKind::BadRequest,
            // Anything else — a redirect (never followed with our key), 418, 451, another 4xx, a status out of
            // range — is the provider misbehaving: another target may answer, and the status never reaches a client.
            _ => ErrorKind::Protocol,
        };
        let message = match nines_wire::error::upstream_error_message(body) {
            _ if kind == ErrorKind::Protocol => format!("unexpected HTTP {status} from the provider"),
            Some((_, m)) => m,
            None if body.is_empty() => format!("HTTP {status}"),
            None => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        };
        // A provider may echo our request, key included: nothing credential-shaped goes on.
        let message = super::redact::redact(&message, &[]);
        ProviderError {
            kind,
            status: Some(status),
            retry_after: retry_after(headers),
            message,
            request_id: request_id(headers),
            limits: rate_limits(headers).map(Box::new),
            silent: false,
            param: None,
            source: None,
        }
    }

    /// Classify a failure to send a request or to get its answer's headers.
    pub fn from_client(e: hyper_util::client::legacy::Error) -> Self {
        let kind = if timed_out(&e) {
            ErrorKind::Timeout
        } else if e.is_connect() {
            ErrorKind::Connect
        } else {
            ErrorKind::Network
        };
        let message = describe(&e);
        ProviderError::new(kind, message).with_source(e)
    }

    /// Classify a failure while reading an answer's body: the connection broke, or what came was not HTTP.
    pub fn from_body(e: hyper::Error) -> Self {
        let kind = if e.is_parse() || e.is_user() { ErrorKind::Protocol } else { ErrorKind::Network };
        let message = describe(&e);
        ProviderError::new(kind, message).with_source(e)
    }

    /// An error inside a stream.
    pub fn from_stream(e: StreamError) -> Self {
        let (kind, message) = match &e {
            StreamError::Truncated => (ErrorKind::StreamCut, e.to_string()),
            StreamError::Malformed(_) => (ErrorKind::Protocol, e.to_string()),
            StreamError::Upstream { kind, message } => {
                let k = match kind.as_str() {
                    "overloaded_error" | "UNAVAILABLE" => ErrorKind::Overloaded,
                    "rate_limit_error" | "rate_limit_exceeded" | "RESOURCE_EXHAUSTED" => {
                        ErrorKind::RateLimited
                    }
                    "invalid_request_error" | "INVALID_ARGUMENT" => ErrorKind::BadRequest,
                    "authentication_error" | "permission_error" => ErrorKind::Auth,
                    _ => ErrorKind::Server,
                };
                // The provider's words, redacted, and not kept as a source (its message is the raw text).
                return ProviderError::new(k, super::redact::redact(message, &[]));
            }
        };
        ProviderError::new(kind, message).with_source(e)
    }
}

/// Whether an I/O timeout (the connect timeout) is anywhere in the chain.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |err| err.source()).any(|err| {
        err.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The whole chain of a transport error, e.g. "error sending request: connection refused".
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}

/// `Retry-After` in seconds (the HTTP-date form is rare from model providers and is ignored), or the
/// `retry-after-ms` some providers send.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = |s: f64| {
        Duration::try_from_secs_f64(s.min(MAX_RETRY_AFTER.as_secs_f64())).ok().map(|d| d.min(MAX_RETRY_AFTER))
    };
    let header = |name: &str| {
        headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok())
    };
    if let Some(ms) = header("retry-after-ms") {
        return seconds(ms / 1000.0);
    }
    seconds(header("retry-after")?)
}

/// The rate limits announced in an answer's headers, if any.
pub fn rate_limits(headers: &HeaderMap) -> Option<RateLimits> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    crate::health::ratelimit::parse(headers, now)
}

/// No provider's `Retry-After` is taken beyond a day (a larger one is a bug, not advice).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// The provider's request id, if it looks like one (at most 128 of `[A-Za-z0-9._:-]`): it is shown to clients, so
/// nothing else a provider puts in that header is passed on.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    let fit = |s: &&str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
            // Not shaped like a key (a provider echoing ours there).
            && !super::redact::has_key_shape(s)
    };
    ["request-id", "x-request-id"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .filter(fit)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_by_whose_fault() {
        let h = HeaderMap::new();
        let kind = |s| ProviderError::from_status(s, &h, b"").kind;
        assert_eq!(kind(400), ErrorKind::BadRequest);
        assert_eq!(kind(422), ErrorKind::BadRequest);
        assert_eq!(kind(401), ErrorKind::Auth);
        assert_eq!(kind(403), ErrorKind::Auth);
        assert_eq!(kind(404), ErrorKind::NotFound);
        assert_eq!(kind(408), ErrorKind::Timeout);
        assert_eq!(kind(429), ErrorKind::RateLimited);
        assert_eq!(kind(500), ErrorKind::Server);
        assert_eq!(kind(502), ErrorKind::Server);
        assert_eq!(kind(503), ErrorKind::Overloaded);
        assert_eq!(kind(529), ErrorKind::Overloaded);
        assert!(!ProviderError::from_status(400, &h, b"").failover());
        let google_bad_key =
            br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT",
            "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
        assert_eq!(ProviderError::from_status(400, &h, google_bad_key).kind, ErrorKind::Auth);
        for s in [401, 403, 404, 408, 429, 500, 503, 529] {
            assert!(ProviderError::from_status(s, &h, b"").failover(), "{s} must fail over");
        }
        // Statuses no provider should answer a chat request with are the provider's fault, and fail over.
        for s in [301, 302, 307, 418, 451, 499, 600, 999] {
            let e = ProviderError::from_status(s, &h, br#"{"error":{"message":"whatever"}}"#);
            assert_eq!(e.kind, ErrorKind::Protocol, "{s}");
            assert!(e.failover(), "{s} must fail over");
            assert_eq!(e.message, format!("unexpected HTTP {s} from the provider"));
        }
    }

    #[test]
    fn what_a_provider_echoes_is_redacted_and_its_request_id_kept_only_when_it_looks_like_one() {
        let mut h = HeaderMap::new();
        h.insert("request-id", "Bearer sk-live-abcdefghijklmnop".parse().unwrap());
        let body = br#"{"error":{"message":"bad: authorization: Bearer sk-live-abcdefghijklmnop"}}"#;
        let mut e = ProviderError::from_status(400, &h, body);
        assert!(!e.message.contains("abcdefghijklmnop"), "{}", e.message);
        assert_eq!(e.request_id, None, "not an id: a key");
        e.message = "x plainsecretvalue42".into();
        e.hide_secret(Some("plainsecretvalue42"));
        assert_eq!(e.message, "x [redacted]");
        h.insert("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy".parse().unwrap());
        assert_eq!(request_id(&h).as_deref(), Some("req_011CSHoEeqs5C35K2UUqR7Fy"));
    }

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let mut huge = HeaderMap::new();
        huge.insert("retry-after", "1e20".parse().unwrap());
        assert_eq!(retry_after(&huge), Some(MAX_RETRY_AFTER));
        huge.insert("retry-after-ms", "1e300".parse().unwrap());
        assert_eq!(retry_after(&huge), Some(MAX_RETRY_AFTER));
        huge.insert("retry-after-ms", "-5".parse().unwrap());
        assert_eq!(retry_after(&huge), None);
        let mut bad = HeaderMap::new();
        bad.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&bad), None);
    }

    #[test]
    fn upstream_error_messages_are_kept() {
        let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let e = ProviderError::from_status(529, &HeaderMap::new(), body);
        assert_eq!(e.message, "Overloaded");
        assert_eq!(e.to_string(), "overload 529: Overloaded");
    }
}
