//! Gemini whole answers ⇄ the canonical response.

use serde_json::{Value, json};

use super::{UsageMetadata, answer_parts, finish_reason_str, stop_reason_from, thought_part, usage_json};
use crate::DecodeError;
use crate::canonical::{ChatResponse, EncodeCtx, Part, StopReason, Usage};
use crate::json::{args_object, arr_of, str_of};

pub(crate) fn usage_of(v: &Value) -> Usage {
    v.get("usageMetadata")
        .cloned()
        .and_then(|u| serde_json::from_value::<UsageMetadata>(u).ok())
        .map(Usage::from)
        .unwrap_or_default()
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    if !v.is_object() || v.get("error").is_some() {
        return Err(DecodeError::Invalid("an error object where a response was expected".into()));
    }
    let id = str_of(&v, "responseId").unwrap_or_default().to_owned();
    let model = str_of(&v, "modelVersion").unwrap_or_default().to_owned();
    let usage = usage_of(&v);
    let Some(candidate) = arr_of(&v, "candidates").first() else {
        if v.get("promptFeedback").is_some() {
            return Ok(ChatResponse {
                id,
                model,
                content: Vec::new(),
                stop_reason: StopReason::ContentFilter,
                usage,
            });
        }
        return Err(DecodeError::Invalid("generateContent response without candidates".into()));
    };
    let mut content = Vec::new();
    let mut calls = 0;
    if let Some(c) = candidate.get("content") {
        for p in arr_of(c, "parts") {
            answer_parts(p, &id, &mut calls, &mut content);
        }
    }
    let mut stop_reason =
        str_of(candidate, "finishReason").map(stop_reason_from).unwrap_or(StopReason::EndTurn);
    // Gemini says STOP after function calls; the canonical answer says what it is.
    if stop_reason == StopReason::EndTurn && content.iter().any(|p| matches!(p, Part::ToolCall(_))) {
        stop_reason = StopReason::ToolUse;
    }
    Ok(ChatResponse { id, model, content, stop_reason, usage })
}

pub fn encode_response(resp: &ChatResponse, ctx: &EncodeCtx) -> Vec<u8> {
    let parts: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(json!({"text": t})),
            Part::ToolCall(c) => {
                Some(json!({"functionCall": {"id": c.id, "name": c.name, "args": args_object(&c.arguments)}}))
            }
            Part::Thinking(t) => thought_part(t),
            Part::Image(_) | Part::ToolResult(_) | Part::Unsupported(_) => None,
        })
        .collect();
    let body = json!({
        "candidates": [{
            "content": {"role": "model", "parts": parts},
            "finishReason": finish_reason_str(&resp.stop_reason),
            "index": 0,
        }],
        "usageMetadata": usage_json(&resp.usage),
        "modelVersion": ctx.model,
        "responseId": resp.id,
    });
    crate::json::value_to_vec(&body)
}
