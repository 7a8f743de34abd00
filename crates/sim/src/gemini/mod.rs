//! Gemini `generateContent` and `streamGenerateContent` (under `/v1beta/models/` and `/v1/models/`): API key
//! in `x-goog-api-key` or `?key=`, strict body validation (proto JSON: camelCase or snake_case field names, unknown
//! fields refused) with Google's error shape (`{"error":{"code","message","status"}}`), and answers as a
//! GenerateContentResponse, an SSE stream of them (`alt=sse`, events ending in `\r\n\r\n`) or a JSON array of them.
//!
//! Answers are text, or `functionCall` parts when function declarations are offered ([`crate::tools`]), after a
//! thought part when thoughts are asked for. This module authenticates and renders errors; `request` and `content`
//! validate the body, `response` renders the answer. It never accepts a field the real API would call unknown, nor a
//! thought signature another simulator minted.

mod content;
mod request;
mod response;

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::json::show;
use crate::routes::{Call, Reply};

pub(crate) fn handle(call: &Call<'_>, model: &str, stream: bool) -> Result<Reply, ApiError> {
    authenticate(call)?;
    let body: Value = serde_json::from_slice(call.body)
        .map_err(|err| ApiError::bad(format!("Invalid JSON payload received. {err}")))?;
    let mut request = request::validate(&body, call.body, call.name)?;
    let outcome = call.respond(&mut request.prompt)?;
    let answer = response::Rendered {
        name: call.name,
        model,
        response_id: crate::ids::base62("", 22),
        candidates: request.candidates,
        thoughts: request.thoughts,
        outcome,
    };
    if !stream {
        return Ok(Reply::Json(answer.response()));
    }
    let chunks = answer.chunks();
    if call.query.get("alt").map(String::as_str) == Some("sse") {
        let events = chunks.iter().map(sse).collect();
        let malformed = || format!("data: {}\r\n\r\n", crate::json::half(&answer.first_chunk().to_string()));
        Ok(Reply::Sse(call.stream(events, malformed, |status, _| in_band_error(status))))
    } else {
        Ok(Reply::Json(Value::Array(chunks)))
    }
}

/// The prompt a valid request body reads as (for the crate's tests).
#[cfg(test)]
pub(crate) fn prompt_of(body: &Value, name: &str) -> Result<crate::answer::Prompt, ApiError> {
    request::validate(body, body.to_string().as_bytes(), name).map(|r| r.prompt)
}

/// One chunk of an `alt=sse` stream.
fn sse(chunk: &Value) -> String {
    format!("data: {chunk}\r\n\r\n")
}

/// The `data: {"error": …}` chunk an `InBandError` fault ends a stream with: the error JSON the status gets.
fn in_band_error(status: u16) -> String {
    sse(&error_body(&status_error(crate::error::fault_status(status), None)))
}

/// The error JSON for `err`.
pub(crate) fn error_body(err: &ApiError) -> Value {
    let mut error = json!({
        "code": err.status.as_u16(),
        "message": err.message,
        "status": status_name(err.status),
    });
    if !err.details.is_empty()
        && let Some(obj) = error.as_object_mut()
    {
        obj.insert("details".into(), Value::Array(err.details.clone()));
    }
    json!({ "error": error })
}

/// The error a `Status` fault produces; a `retry_after` also becomes a `RetryInfo` detail, as Google sends.
pub(crate) fn status_error(status: StatusCode, retry_after: Option<u64>) -> ApiError {
    let message = match status.as_u16() {
        400 => "Request contains an invalid argument.",
        401 => "Request had invalid authentication credentials.",
        403 => "The caller does not have permission",
        404 => "Requested entity was not found.",
        429 => "Resource has been exhausted (e.g. check quota).",
        500 => {
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
        }
        503 => "The model is overloaded. Please try again later.",
        504 => "The request timed out. Please try again.",
        _ => "The service could not handle the request.",
    };
    let err = ApiError::new(status, message);
    match retry_after {
        Some(secs) => err.detail(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{secs}s"),
        })),
        None => err,
    }
}

/// The error a `ContextLength` fault produces: Google's refusal of input over the model's token limit.
pub(crate) fn context_length_error() -> ApiError {
    ApiError::bad("The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).")
}

fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

pub(crate) fn authenticate(call: &Call<'_>) -> Result<(), ApiError> {
    let Some(expected) = call.api_key else {
        return Ok(());
    };
    let given = call
        .headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| call.query.get("key").map(String::as_str));
    match given {
        Some(key) if key == expected => Ok(()),
        Some(_) => {
            let message = "API key not valid. Please pass a valid API key.";
            Err(ApiError::bad(message)
                .detail(json!({
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }))
                .detail(json!({
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                })))
        }
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API \
             Key or other form of API consumer identity to call this API.",
        )),
    }
}

pub(super) fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `maxOutputTokens` → `max_output_tokens`, for messages (Google names fields in snake_case there).
pub(super) fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The object with its keys in camelCase, refusing keys outside `known` (`at` names the object in the message).
pub(super) fn fields(v: &Value, known: &[&str], at: &str) -> Result<Map<String, Value>, ApiError> {
    let Some(obj) = v.as_object() else {
        return Err(ApiError::bad(format!(
            "Invalid value at '{at}' (type.googleapis.com/google.ai.generativelanguage.v1beta.*), {}",
            show(v)
        )));
    };
    let mut out = Map::new();
    for (key, value) in obj {
        let name = camel(key);
        if !known.contains(&name.as_str()) {
            let place = if at.is_empty() { String::new() } else { format!(" at '{at}'") };
            return Err(ApiError::bad(format!(
                "Invalid JSON payload received. Unknown name \"{key}\"{place}: Cannot find field."
            )));
        }
        out.insert(name, value.clone());
    }
    Ok(out)
}

pub(super) fn join(at: &str, name: &str) -> String {
    if at.is_empty() { snake(name) } else { format!("{at}.{}", snake(name)) }
}

pub(super) fn semantic(field: &str, problem: &str) -> ApiError {
    ApiError::bad(format!("* GenerateContentRequest.{field}: {problem}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_convert_both_ways() {
        assert_eq!(camel("max_output_tokens"), "maxOutputTokens");
        assert_eq!(camel("maxOutputTokens"), "maxOutputTokens");
        assert_eq!(camel("_responseJsonSchema"), "_responseJsonSchema");
        assert_eq!(snake("maxOutputTokens"), "max_output_tokens");
    }
}
