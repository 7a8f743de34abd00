//! The Anthropic Messages API (`POST /v1/messages`): authentication (`x-api-key`), the required
//! `anthropic-version` header, strict body validation with Anthropic's own error messages, and answers as a
//! Message object or as the published event stream (message_start, content_block_start, ping,
//! content_block_delta…, content_block_stop, message_delta, message_stop).
//!
//! Answers are text, or `tool_use` blocks when custom tools are offered ([`crate::tools`]), preceded by a thinking
//! block when extended thinking is on. This module authenticates and checks the version; `request` validates the
//! body and `response` renders the answer. It never accepts fields the real API would refuse, and never accepts back
//! a thinking signature another simulator minted.

mod content;
mod request;
mod response;

use http::StatusCode;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::routes::{Call, Reply};

const VERSIONS: &[&str] = &["2026-10-21", "2023-06-01", "2023-01-01"];

/// From this version on, the Messages API refuses sampling parameters, `document` blocks in assistant messages and
/// citations on user text blocks (<https://platform.claude.com/docs/en/api/versioning>).
const STRICT_VERSION: &str = "2026-10-21";

/// Serve one Messages request.
pub(crate) fn handle(call: &Call<'_>) -> Result<Reply, ApiError> {
    authenticate(call)?;
    let version = check_version(call)?;
    let body: Value = serde_json::from_slice(call.body).map_err(|err| {
        ApiError::bad(format!("There was an error parsing the body of your request: {err}"))
    })?;
    if version >= STRICT_VERSION {
        check_strict_version(&body)?;
    }
    let mut request = request::validate(&body, call.body, call.name)?;
    let outcome = call.respond(&mut request.prompt)?;
    let answer =
        response::Rendered { name: call.name, model: &request.model, thinking: request.thinking, outcome };
    Ok(if request.stream {
        Reply::Sse(call.stream(answer.stream(), || answer.malformed(), |status, _| in_band_error(status)))
    } else {
        Reply::Json(answer.message())
    })
}

/// The prompt a valid request body reads as (for the crate's tests).
#[cfg(test)]
pub(crate) fn prompt_of(body: &Value, name: &str) -> Result<crate::answer::Prompt, ApiError> {
    request::validate(body, body.to_string().as_bytes(), name).map(|r| r.prompt)
}

/// The error JSON for `err`.
pub(crate) fn error_body(err: &ApiError, request_id: &str) -> Value {
    json!({
        "type": "error",
        "error": {"type": error_type(err.status), "message": err.message},
        "request_id": request_id,
    })
}

/// The error a `Status` fault produces.
pub(crate) fn status_error(status: StatusCode) -> ApiError {
    let message = match status.as_u16() {
        400 => "Invalid request",
        401 => "invalid x-api-key",
        403 => "Your API key does not have permission to use the specified resource.",
        404 => "Not Found",
        413 => "Request exceeds the maximum allowed number of bytes.",
        429 => "This request would exceed the rate limit for your organization. Please try again later.",
        529 => "Overloaded",
        500 => "Internal server error",
        _ => "An unexpected error has occurred internal to Anthropic's systems.",
    };
    ApiError::new(status, message)
}

/// The `error` event an `InBandError` fault ends a stream with (what the API sends when it fails mid-stream, e.g.
/// `overloaded_error` under load).
fn in_band_error(status: u16) -> String {
    let kind = match status {
        529 => "overloaded_error",
        429 => "rate_limit_error",
        _ => "api_error",
    };
    let message = status_error(crate::error::fault_status(status)).message;
    let data = json!({"type": "error", "error": {"type": kind, "message": message}});
    format!("event: error\ndata: {data}\n\n")
}

/// The error a `ContextLength` fault produces: Anthropic's refusal of a prompt over the model's context window.
pub(crate) fn context_length_error() -> ApiError {
    ApiError::bad("prompt is too long: 210000 tokens > 200000 maximum")
}

fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

pub(crate) fn authenticate(call: &Call<'_>) -> Result<(), ApiError> {
    let Some(expected) = call.api_key else {
        return Ok(());
    };
    // SDKs from 2.0 send the key as a bearer token; when both are present the API reads x-api-key.
    let bearer = call
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|k| http::HeaderValue::from_str(k).ok());
    match call.headers.get("x-api-key").cloned().or(bearer).as_ref() {
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "x-api-key header is required")),
        Some(got) if got.as_bytes() == expected.as_bytes() => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid x-api-key")),
    }
}

pub(crate) fn check_version<'a>(call: &Call<'a>) -> Result<&'a str, ApiError> {
    match call.headers.get("anthropic-version").map(|v| v.to_str().unwrap_or("")) {
        None => Err(ApiError::bad("anthropic-version: header is required")),
        Some(v) if VERSIONS.contains(&v) => Ok(v),
        Some(v) => Err(ApiError::bad(format!("anthropic-version: invalid version '{v}'"))),
    }
}

/// The request rules added by API version 2026-10-21.
fn check_strict_version(body: &Value) -> Result<(), ApiError> {
    let Some(obj) = body.as_object() else { return Ok(()) };
    for key in ["temperature", "top_p", "top_k"] {
        if obj.contains_key(key) {
            return Err(bad(format!("{key}: Extra inputs are not permitted")));
        }
    }
    let messages = obj.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let blocks = m.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for (j, b) in blocks.iter().enumerate() {
            let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
            if role == "assistant" && kind == "document" {
                return Err(bad(format!(
                    "messages.{i}.content.{j}: `document` blocks are not allowed in `assistant` messages"
                )));
            }
            let cited = b.get("citations").and_then(Value::as_array).is_some_and(|c| !c.is_empty());
            if role == "user" && kind == "text" && cited {
                return Err(bad(format!(
                    "messages.{i}.content.{j}.text.citations: citations are not allowed on `text` blocks in `user` messages"
                )));
            }
        }
    }
    Ok(())
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad(message)
}
