//! OpenAI Responses whole answers (the Response object) ⇄ the canonical response.

use serde_json::Value;

use super::stream::Output;
use super::{
    response_id, response_object, signature_of, status_of, stop_reason_from, usage_from, usage_json,
};
use crate::canonical::{ChatResponse, EncodeCtx, Part, Thinking, ToolCall};
use crate::json::{arr_of, str_of};
use crate::{DecodeError, Dialect};

/// The canonical parts of a Response's `output` items, and whether the model refused (a `refusal` content part).
/// A reasoning item's summaries are joined by a blank line (its `reasoning_text` content when it has no summary).
pub(crate) fn items_to_parts(items: &[Value]) -> (Vec<Part>, bool) {
    let mut parts = Vec::with_capacity(items.len());
    let mut refusal = false;
    for item in items {
        match str_of(item, "type").unwrap_or_default() {
            "message" => {
                for c in arr_of(item, "content") {
                    match str_of(c, "type").unwrap_or_default() {
                        "output_text" => {
                            parts.push(Part::Text(str_of(c, "text").unwrap_or_default().to_owned()))
                        }
                        "refusal" => {
                            refusal = true;
                            parts.push(Part::Text(str_of(c, "refusal").unwrap_or_default().to_owned()));
                        }
                        other => parts.push(Part::Unsupported(other.to_owned())),
                    }
                }
            }
            "function_call" => parts.push(Part::ToolCall(ToolCall {
                id: str_of(item, "call_id").or_else(|| str_of(item, "id")).unwrap_or_default().to_owned(),
                name: str_of(item, "name").unwrap_or_default().to_owned(),
                arguments: str_of(item, "arguments").unwrap_or("{}").to_owned(),
            })),
            "reasoning" => parts.push(Part::Thinking(reasoning_of(item))),
            other => parts.push(Part::Unsupported(other.to_owned())),
        }
    }
    (parts, refusal)
}

/// A `reasoning` item (of an answer, or of a request's `input`) as canonical thinking.
pub(crate) fn reasoning_of(item: &Value) -> Thinking {
    let texts = |key: &str| -> Vec<&str> {
        arr_of(item, key).iter().filter_map(|s| str_of(s, "text")).filter(|t| !t.is_empty()).collect()
    };
    let mut text = texts("summary");
    if text.is_empty() {
        text = texts("content");
    }
    Thinking {
        text: text.join("\n\n"),
        signature: signature_of(str_of(item, "id"), str_of(item, "encrypted_content")),
    }
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    if !v.is_object() {
        return Err(DecodeError::Invalid("a Response must be a JSON object".into()));
    }
    let error = v.get("error").filter(|e| !e.is_null());
    if str_of(&v, "status") == Some("failed") || (error.is_some() && v.get("output").is_none()) {
        let message = error.and_then(|e| str_of(e, "message")).unwrap_or("the response failed");
        return Err(DecodeError::Invalid(format!("an error where a Response was expected: {message}")));
    }
    let id = str_of(&v, "id").ok_or_else(|| DecodeError::Invalid("id: required".into()))?;
    let Some(items) = v.get("output").and_then(Value::as_array) else {
        return Err(DecodeError::Invalid("output: a list is required".into()));
    };
    let (content, refusal) = items_to_parts(items);
    let tool_calls = content.iter().any(|p| matches!(p, Part::ToolCall(_)));
    let reason = v.get("incomplete_details").and_then(|d| str_of(d, "reason"));
    Ok(ChatResponse {
        id: id.to_owned(),
        model: str_of(&v, "model").unwrap_or_default().to_owned(),
        stop_reason: stop_reason_from(str_of(&v, "status"), reason, tool_calls, refusal),
        content,
        usage: usage_from(v.get("usage")),
    })
}

/// The output items of an answer, built by the same [`Output`] the stream encoder uses. Reasoning is shown when a
/// Responses provider signed it (with its encrypted content), or when it is unsigned and did not come from a
/// provider that signs its reasoning; reasoning signed by another provider is never shown.
pub fn encode_response(resp: &ChatResponse, ctx: &EncodeCtx) -> Vec<u8> {
    let id = response_id(ctx, &resp.id);
    let mut out = Output::new(id.clone(), false);
    let signing_upstream = matches!(ctx.upstream, Some(Dialect::Anthropic) | Some(Dialect::Gemini));
    let mut calls = 0u32;
    for p in &resp.content {
        match p {
            Part::Text(t) => out.text(t),
            Part::Thinking(t) => match &t.signature {
                None if !signing_upstream => out.thinking(&t.text),
                Some(sig) if sig.origin == Dialect::OpenAiResponses => {
                    out.thinking(&t.text);
                    out.signature(sig);
                }
                _ => {}
            },
            Part::ToolCall(c) => {
                out.tool_start(calls, &c.id, &c.name);
                out.tool_args(calls, &c.arguments);
                calls = calls.saturating_add(1);
            }
            Part::Image(_) | Part::ToolResult(_) | Part::Unsupported(_) => {}
        }
    }
    let (status, incomplete) = status_of(&resp.stop_reason);
    out.close_all(status);
    let body =
        response_object(&id, ctx, status, incomplete, out.items_json(), usage_json(&resp.usage), Value::Null);
    crate::json::value_to_vec(&body)
}
