//! Errors of decoding and translating, and the error bodies each dialect speaks.
//!
//! This module shapes error JSON; it never decides statuses or logs. The gateway's `server::error` picks the status
//! and error type, then calls [`ErrorShape::body`] for the client's dialect.

use serde_json::json;

use crate::Dialect;

/// A body that could not be read as the dialect it claims to be.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

/// A request that cannot be expressed in a target's dialect.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{field}` cannot be sent to {target} targets: {why}")]
pub struct EncodeError {
    pub field: String,
    pub target: Dialect,
    pub why: String,
}

/// A stream that broke its dialect's rules or reported an error in-band.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("malformed stream event: {0}")]
    Malformed(String),
    #[error("stream ended before its final event")]
    Truncated,
    /// The provider sent an error event inside the stream (Anthropic `event: error`, an OpenAI `{"error":…}`
    /// chunk). `kind` is the provider's error type string, e.g. `overloaded_error`.
    #[error("provider reported {kind} in stream: {message}")]
    Upstream { kind: String, message: String },
}

/// The generic error categories of the dialects. Each maps to the closest type a dialect defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    InvalidRequest,
    Authentication,
    PermissionDenied,
    NotFound,
    RequestTooLarge,
    /// The request exceeds the model's context window (a 400; OpenAI's `context_length_exceeded`).
    ContextLength,
    RateLimited,
    /// Server-side failure (500).
    Api,
    /// Overloaded or unavailable (503, 529).
    Overloaded,
    Timeout,
}

/// Everything a dialect's error body needs.
#[derive(Clone, Debug)]
pub struct ErrorShape<'a> {
    pub status: u16,
    pub kind: ErrorType,
    pub message: &'a str,
    /// OpenAI's `param`, when one field is at fault.
    pub param: Option<&'a str>,
}

impl ErrorShape<'_> {
    /// The error JSON for `dialect`.
    pub fn body(&self, dialect: Dialect) -> serde_json::Value {
        match dialect {
            Dialect::Anthropic => json!({
                "type": "error",
                "error": { "type": anthropic_type(self.kind), "message": self.message },
            }),
            // The Responses API answers errors in the same shape as Chat Completions.
            Dialect::OpenAiChat | Dialect::OpenAiResponses => json!({
                "error": {
                    "message": self.message,
                    "type": openai_type(self.kind),
                    "param": self.param,
                    "code": openai_code(self.kind),
                }
            }),
            Dialect::Gemini => json!({
                "error": { "code": self.status, "message": self.message, "status": google_status(self.kind) }
            }),
        }
    }
}

impl ErrorType {
    /// The HTTP status this category is usually answered with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorType::InvalidRequest | ErrorType::ContextLength => 400,
            ErrorType::Authentication => 401,
            ErrorType::PermissionDenied => 403,
            ErrorType::NotFound => 404,
            ErrorType::RequestTooLarge => 413,
            ErrorType::RateLimited => 429,
            ErrorType::Api => 500,
            ErrorType::Overloaded => 503,
            ErrorType::Timeout => 504,
        }
    }
}

pub fn anthropic_type(kind: ErrorType) -> &'static str {
    match kind {
        ErrorType::InvalidRequest | ErrorType::ContextLength => "invalid_request_error",
        ErrorType::Authentication => "authentication_error",
        ErrorType::PermissionDenied => "permission_error",
        ErrorType::NotFound => "not_found_error",
        ErrorType::RequestTooLarge => "request_too_large",
        ErrorType::RateLimited => "rate_limit_error",
        ErrorType::Api => "api_error",
        ErrorType::Overloaded => "overloaded_error",
        ErrorType::Timeout => "timeout_error",
    }
}

fn openai_type(kind: ErrorType) -> &'static str {
    match kind {
        ErrorType::InvalidRequest
        | ErrorType::NotFound
        | ErrorType::RequestTooLarge
        | ErrorType::ContextLength => "invalid_request_error",
        ErrorType::Authentication => "authentication_error",
        ErrorType::PermissionDenied => "permission_error",
        ErrorType::RateLimited => "rate_limit_error",
        ErrorType::Api | ErrorType::Overloaded | ErrorType::Timeout => "server_error",
    }
}

fn openai_code(kind: ErrorType) -> Option<&'static str> {
    match kind {
        ErrorType::Authentication => Some("invalid_api_key"),
        ErrorType::NotFound => Some("model_not_found"),
        ErrorType::RateLimited => Some("rate_limit_exceeded"),
        ErrorType::ContextLength => Some("context_length_exceeded"),
        _ => None,
    }
}

fn google_status(kind: ErrorType) -> &'static str {
    match kind {
        ErrorType::InvalidRequest | ErrorType::RequestTooLarge | ErrorType::ContextLength => {
            "INVALID_ARGUMENT"
        }
        ErrorType::Authentication => "UNAUTHENTICATED",
        ErrorType::PermissionDenied => "PERMISSION_DENIED",
        ErrorType::NotFound => "NOT_FOUND",
        ErrorType::RateLimited => "RESOURCE_EXHAUSTED",
        ErrorType::Api => "INTERNAL",
        ErrorType::Overloaded => "UNAVAILABLE",
        ErrorType::Timeout => "DEADLINE_EXCEEDED",
    }
}

/// The field a provider's error names as at fault (OpenAI's `error.param`: `messages`, `messages[1].content`…),
/// when it is one: a path of at most 200 letters, digits and `_.[]-` (anything else is not passed on).
pub fn upstream_error_param(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let param = v.get("error")?.get("param")?.as_str()?;
    let path = |c: char| c.is_ascii_alphanumeric() || "_.[]-".contains(c);
    (!param.is_empty() && param.len() <= 200 && param.chars().all(path)).then(|| param.to_owned())
}

/// The message (and error type string, when present) of a provider's error body, in any of the dialects' shapes.
/// Used to explain a failed attempt; `None` when the body is not an error JSON we know.
pub fn upstream_error_message(body: &[u8]) -> Option<(Option<String>, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let err = v.get("error")?;
    if let Some(msg) = err.as_str() {
        return Some((None, msg.to_owned()));
    }
    let message = err.get("message")?.as_str()?.to_owned();
    let kind = err.get("type").or_else(|| err.get("status")).and_then(|t| t.as_str()).map(str::to_owned);
    Some((kind, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_param_is_kept_only_when_it_is_a_field_path() {
        let body = |p: &str| format!(r#"{{"error":{{"message":"m","param":{p}}}}}"#).into_bytes();
        assert_eq!(
            upstream_error_param(&body(r#""messages[1].content""#)).as_deref(),
            Some("messages[1].content")
        );
        assert_eq!(upstream_error_param(&body("null")), None);
        assert_eq!(upstream_error_param(&body(r#""sk-key here""#)), None);
        assert_eq!(upstream_error_param(&body(&format!("\"{}\"", "a".repeat(201)))), None);
        assert_eq!(upstream_error_param(b"not json"), None);
    }
}
