//! OpenAI Chat Completions (`POST /v1/chat/completions`): bearer authentication, strict body validation with
//! OpenAI's own error messages (`{"error":{"message","type","param","code"}}`), and answers as a
//! `chat.completion` object or as `chat.completion.chunk` events ending in `data: [DONE]`.
//!
//! Answers are text, or `tool_calls` when function tools are offered ([`crate::tools`]). This module authenticates
//! and renders errors; `request` and `content` validate the body, `response` renders the answer. It never accepts a
//! parameter the real API would call unrecognized. Authentication, the error shape and the parameter errors
//! (`missing`, `wrong_type`, `invalid_value`, bounds) are shared with the Responses API ([`crate::responses`]).

mod content;
mod request;
mod response;

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::json::{integer, show, type_name};
use crate::routes::{Call, Reply};

/// Serve one Chat Completions request.
pub(crate) fn handle(call: &Call<'_>) -> Result<Reply, ApiError> {
    authenticate(call)?;
    let body = parse_body(call.body)?;
    let mut request = request::validate(&body, call.body)?;
    let outcome = call.respond(&mut request.prompt)?;
    let answer = response::Rendered::new(call.name, &request, outcome);
    Ok(if request.stream {
        Reply::Sse(call.stream(answer.stream(), || answer.malformed(), |status, _| in_band_error(status)))
    } else {
        Reply::Json(answer.completion())
    })
}

/// The JSON body of a request, or OpenAI's refusal of one that is not JSON.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|_| {
        ApiError::bad(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your \
             HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. \
             If you have trouble figuring out how to fix this, please contact us through our help center at \
             help.openai.com.)",
        )
    })
}

/// The prompt a valid request body reads as (for the crate's tests).
#[cfg(test)]
pub(crate) fn prompt_of(body: &Value) -> Result<crate::answer::Prompt, ApiError> {
    request::validate(body, body.to_string().as_bytes()).map(|r| r.prompt)
}

/// The error JSON for `err`.
pub(crate) fn error_body(err: &ApiError) -> Value {
    let kind = match err.status.as_u16() {
        429 => "requests",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    json!({"error": {"message": err.message, "type": kind, "param": err.param, "code": err.code}})
}

/// The error a `Status` fault produces.
pub(crate) fn status_error(status: StatusCode) -> ApiError {
    match status.as_u16() {
        401 => ApiError::new(status, "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.")
            .code("invalid_api_key"),
        403 => ApiError::new(status, "You are not allowed to sample from this model").code("model_not_allowed"),
        404 => ApiError::new(status, "The model does not exist or you do not have access to it.").code("model_not_found"),
        429 => ApiError::new(status, "Rate limit reached for requests. Please try again later.").code("rate_limit_exceeded"),
        503 => ApiError::new(status, "The engine is currently overloaded, please try again later"),
        s if s >= 500 => ApiError::new(
            status,
            "The server had an error while processing your request. Sorry about that!",
        ),
        _ => ApiError::new(status, "Invalid request"),
    }
}

/// The `data: {"error": …}` chunk an `InBandError` fault ends a stream with: the error JSON the status gets.
fn in_band_error(status: u16) -> String {
    format!("data: {}\n\n", error_body(&status_error(crate::error::fault_status(status))))
}

/// The error a `ContextLength` fault produces (Chat Completions and Responses alike).
pub(crate) fn context_length_error() -> ApiError {
    ApiError::bad(
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. \
         Please reduce the length of the messages.",
    )
    .param("messages")
    .code("context_length_exceeded")
}

pub(crate) fn authenticate(call: &Call<'_>) -> Result<(), ApiError> {
    let Some(expected) = call.api_key else {
        return Ok(());
    };
    let given = call
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(key) if key == expected => Ok(()),
        Some(key) => {
            let shown: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!(
                    "Incorrect API key provided: ****{shown}. You can find your API key at \
                     https://platform.openai.com/account/api-keys."
                ),
            )
            .code("invalid_api_key"))
        }
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using \
             Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if \
             you're accessing the API from your browser and are prompted for a username and password. You can \
             obtain an API key from https://platform.openai.com/account/api-keys.",
        )),
    }
}

pub(crate) fn missing(param: &str) -> ApiError {
    ApiError::bad(format!("Missing required parameter: '{param}'."))
        .param(param)
        .code("missing_required_parameter")
}

pub(crate) fn wrong_type(param: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::bad(format!(
        "Invalid type for '{param}': expected {expected}, but got {} instead.",
        article(type_name(got))
    ))
    .param(param)
    .code("invalid_type")
}

fn article(kind: &str) -> String {
    match kind {
        "null" => "null".to_owned(),
        "array" | "object" | "integer" => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

pub(crate) fn invalid_value(param: &str, got: &str, supported: &str) -> ApiError {
    ApiError::bad(format!("Invalid value: '{got}'. Supported values are: {supported}."))
        .param(param)
        .code("invalid_value")
}

/// The value of an optional parameter; `null` counts as absent, as in the real API.
pub(crate) fn opt<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// Check an optional decimal parameter against its bounds, with OpenAI's messages.
pub(crate) fn decimal_in(obj: &Map<String, Value>, key: &str, lo: f64, hi: f64) -> Result<(), ApiError> {
    let Some(v) = opt(obj, key) else { return Ok(()) };
    let Some(x) = v.as_f64() else {
        return Err(wrong_type(key, "a decimal", v));
    };
    if x < lo {
        return Err(ApiError::bad(format!(
            "Invalid '{key}': decimal below minimum value. Expected a value >= {lo}, but got {} instead.",
            show(v)
        ))
        .param(key)
        .code("decimal_below_min_value"));
    }
    if x > hi {
        return Err(ApiError::bad(format!(
            "Invalid '{key}': decimal above maximum value. Expected a value <= {hi}, but got {} instead.",
            show(v)
        ))
        .param(key)
        .code("decimal_above_max_value"));
    }
    Ok(())
}

/// Check an optional integer parameter against its bounds, with OpenAI's messages; returns it.
pub(crate) fn integer_in(
    obj: &Map<String, Value>,
    key: &str,
    lo: i128,
    hi: i128,
) -> Result<Option<i128>, ApiError> {
    let Some(v) = opt(obj, key) else { return Ok(None) };
    let Some(n) = integer(v) else {
        return Err(wrong_type(key, "an integer", v));
    };
    if n < lo {
        return Err(ApiError::bad(format!(
            "Invalid '{key}': integer below minimum value. Expected a value >= {lo}, but got {n} instead."
        ))
        .param(key)
        .code("integer_below_min_value"));
    }
    if n > hi {
        return Err(ApiError::bad(format!(
            "Invalid '{key}': integer above maximum value. Expected a value <= {hi}, but got {n} instead."
        ))
        .param(key)
        .code("integer_above_max_value"));
    }
    Ok(Some(n))
}
