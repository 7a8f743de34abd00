//! OpenAI Responses API (`POST /v1/responses`): requests ([`request`]), whole answers ([`response`]) and streams
//! ([`stream`]) to and from the canonical model.
//!
//! Wire reference: <https://platform.openai.com/docs/api-reference/responses> and
//! <https://platform.openai.com/docs/api-reference/responses-streaming>; the field lists (which are required, which
//! may be missing) follow the types the openai-python SDK generates from OpenAI's spec
//! (`src/openai/types/responses/*.py`). This module holds what the three share: usage, stop reasons, ids,
//! reasoning signatures and the Response object. It never resolves `previous_response_id` (the gateway splices the
//! stored items into `input` before decoding) and never stores anything.
//!
//! Ids. A response is named `EncodeCtx::response_id` when the gateway gives one (it stores the answer under that
//! id for `previous_response_id`), else `resp_{id}` from the upstream's id (kept as it is when it already starts
//! with `resp_`). Output items are named after the response and their output index: `msg_{n}_{suffix}`,
//! `rs_{n}_{suffix}` and `fc_{n}_{suffix}`, where `suffix` is the response id without its `resp_` prefix. A stream
//! and a whole answer of the same content therefore carry the same ids, and item ids are as unique as response ids.
//!
//! Reasoning. A `reasoning` item decodes into [`Thinking`](crate::Thinking) whose signature (origin
//! [`Dialect::OpenAiResponses`]) is the compact JSON `{"id":…,"encrypted_content":…}` (`encrypted_content` left out
//! when the item had none). Only the encrypted content is ever sent back upstream, without the id (see
//! `request::encode_input`).

mod request;
mod response;
mod stream;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{StreamDecoder, StreamEncoder};

use serde_json::{Value, json};

use crate::Dialect;
use crate::canonical::{EncodeCtx, Signature, StopReason, Usage};
use crate::error::ErrorType;
use crate::json::str_of;

/// What `include` must name for reasoning items to carry their encrypted content (the only way to continue a
/// reasoning model's chain of thought with `store: false`).
pub const INCLUDE_ENCRYPTED_REASONING: &str = "reasoning.encrypted_content";

/// The response id shown to the client: the gateway's when it gives one, else one made from the upstream's id.
pub(crate) fn response_id(ctx: &EncodeCtx, id: &str) -> String {
    match &ctx.response_id {
        Some(given) => given.clone(),
        None if ctx.verbatim_ids => id.to_owned(),
        None if id.starts_with("resp_") => id.to_owned(),
        None => format!("resp_{id}"),
    }
}

/// The id of the output item at `index` of the response `response_id` (see the module documentation).
pub(crate) fn item_id(prefix: &str, index: usize, response_id: &str) -> String {
    let suffix = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{index}_{suffix}")
}

/// A reasoning item's id and encrypted content as a canonical signature; `None` when it has neither.
pub(crate) fn signature_of(id: Option<&str>, encrypted_content: Option<&str>) -> Option<Signature> {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let value = match (id, encrypted_content) {
        (None, None) => return None,
        (Some(id), None) => format!("{{\"id\":{}}}", quote(id)),
        (None, Some(enc)) => format!("{{\"encrypted_content\":{}}}", quote(enc)),
        (Some(id), Some(enc)) => format!("{{\"id\":{},\"encrypted_content\":{}}}", quote(id), quote(enc)),
    };
    Some(Signature { origin: Dialect::OpenAiResponses, value })
}

/// The encrypted content kept in a signature minted by a Responses provider; `None` for any other signature.
pub(crate) fn encrypted_content_of(sig: &Signature) -> Option<String> {
    if sig.origin != Dialect::OpenAiResponses {
        return None;
    }
    let v: Value = serde_json::from_str(&sig.value).ok()?;
    str_of(&v, "encrypted_content").map(str::to_owned)
}

fn count(v: Option<&Value>, key: &str) -> u64 {
    v.and_then(|v| v.get(key)).and_then(Value::as_u64).unwrap_or(0)
}

/// Canonical usage from a Responses `usage` object (`input_tokens` counts cached tokens too, as canonical does).
pub(crate) fn usage_from(u: Option<&Value>) -> Usage {
    let u = u.filter(|u| u.is_object());
    let input_details = u.and_then(|u| u.get("input_tokens_details"));
    Usage {
        input_tokens: count(u, "input_tokens"),
        output_tokens: count(u, "output_tokens"),
        cache_read_tokens: count(input_details, "cached_tokens"),
        cache_write_tokens: count(input_details, "cache_write_tokens"),
        reasoning_tokens: count(u.and_then(|u| u.get("output_tokens_details")), "reasoning_tokens"),
    }
}

pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total(),
    })
}

/// Why a response ended, from its `status` and `incomplete_details.reason`. An incomplete answer says why first (a
/// call cut by the output limit is not a call to run); then tool calls; then a refusal.
pub(crate) fn stop_reason_from(
    status: Option<&str>,
    incomplete_reason: Option<&str>,
    tool_calls: bool,
    refusal: bool,
) -> StopReason {
    match (status, incomplete_reason) {
        (Some("incomplete"), Some("content_filter")) => StopReason::ContentFilter,
        (Some("incomplete"), _) => StopReason::MaxTokens,
        _ if tool_calls => StopReason::ToolUse,
        _ if refusal => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

/// A response's `status` and `incomplete_details` for a canonical stop reason.
pub(crate) fn status_of(r: &StopReason) -> (&'static str, Value) {
    match r {
        StopReason::MaxTokens => ("incomplete", json!({"reason": "max_output_tokens"})),
        StopReason::ContentFilter => ("incomplete", json!({"reason": "content_filter"})),
        StopReason::EndTurn | StopReason::StopSequence(_) | StopReason::ToolUse | StopReason::Paused => {
            ("completed", Value::Null)
        }
    }
}

/// The `code` of a failed response's `error`, from the values `ResponseError.code` allows.
pub(crate) fn error_code(kind: ErrorType) -> &'static str {
    match kind {
        ErrorType::RateLimited => "rate_limit_exceeded",
        ErrorType::InvalidRequest | ErrorType::RequestTooLarge | ErrorType::ContextLength => "invalid_prompt",
        _ => "server_error",
    }
}

/// The Response object. Besides what the SDK's `Response` model requires (`id`, `created_at`, `model`, `object`,
/// `output`, `parallel_tool_calls`, `tool_choice`, `tools`), every field the published examples always carry is
/// present, with the API's defaults where the gateway does not know the request's value.
pub(crate) fn response_object(
    id: &str,
    ctx: &EncodeCtx,
    status: &str,
    incomplete_details: Value,
    output: Vec<Value>,
    usage: Value,
    error: Value,
) -> Value {
    json!({
        "id": id,
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": null,
        "max_output_tokens": null,
        "model": ctx.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "temperature": null,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "usage": usage,
        "user": null,
        "metadata": {},
    })
}
