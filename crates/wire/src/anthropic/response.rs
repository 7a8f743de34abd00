//! Anthropic whole answers ⇄ the canonical response.

use serde_json::{Value, json};

use super::{
    REDACTED, WireUsage, message_id, signature_in, stop_reason_from, stop_reason_str, stop_sequence_of,
    tool_use_id, usage_json,
};
use crate::canonical::{ChatResponse, EncodeCtx, Part, Signature, Thinking, ToolCall, Usage};
use crate::json::{args_object, str_of, to_text};
use crate::{DecodeError, Dialect};

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    let id = str_of(&v, "id").ok_or_else(|| DecodeError::Invalid("id: required".into()))?;
    let Some(blocks) = v.get("content").and_then(Value::as_array) else {
        return Err(DecodeError::Invalid("content: a list is required".into()));
    };
    let content = blocks
        .iter()
        .map(|b| match str_of(b, "type").unwrap_or_default() {
            "text" => Part::Text(str_of(b, "text").unwrap_or_default().to_owned()),
            "tool_use" => Part::ToolCall(ToolCall {
                id: str_of(b, "id").unwrap_or_default().to_owned(),
                name: str_of(b, "name").unwrap_or_default().to_owned(),
                arguments: b.get("input").map(to_text).unwrap_or_else(|| "{}".into()),
            }),
            "thinking" => Part::Thinking(Thinking {
                text: str_of(b, "thinking").unwrap_or_default().to_owned(),
                signature: str_of(b, "signature").filter(|s| !s.is_empty()).map(signature_in),
            }),
            "redacted_thinking" => Part::Thinking(Thinking {
                text: String::new(),
                signature: Some(Signature {
                    origin: Dialect::Anthropic,
                    value: format!("{REDACTED}{}", str_of(b, "data").unwrap_or_default()),
                }),
            }),
            other => Part::Unsupported(other.to_owned()),
        })
        .collect();
    let usage_wire: WireUsage = v
        .get("usage")
        .filter(|u| !u.is_null())
        .cloned()
        .map(serde_json::from_value)
        .transpose()?
        .unwrap_or_default();
    let mut usage = Usage::default();
    usage_wire.apply(&mut usage);
    Ok(ChatResponse {
        id: id.to_owned(),
        model: str_of(&v, "model").unwrap_or_default().to_owned(),
        content,
        stop_reason: stop_reason_from(
            str_of(&v, "stop_reason"),
            str_of(&v, "stop_sequence").map(str::to_owned),
        ),
        usage,
    })
}

pub fn encode_response(resp: &ChatResponse, ctx: &EncodeCtx) -> Vec<u8> {
    let content: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(json!({"type": "text", "text": t})),
            Part::ToolCall(c) => Some(json!({"type": "tool_use", "id": tool_use_id(&c.id), "name": c.name,
                                             "input": args_object(&c.arguments)})),
            Part::Thinking(t) => match &t.signature {
                Some(sig) if sig.origin == Dialect::Anthropic => match sig.value.strip_prefix(REDACTED) {
                    Some(data) => Some(json!({"type": "redacted_thinking", "data": data})),
                    None => Some(json!({"type": "thinking", "thinking": t.text, "signature": sig.value})),
                },
                // Another provider's reasoning: an Anthropic client would send it back to Anthropic, which
                // refuses a signature it did not mint.
                _ => None,
            },
            Part::Image(_) | Part::ToolResult(_) | Part::Unsupported(_) => None,
        })
        .collect();
    let body = json!({
        "id": message_id(&resp.id),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": stop_reason_str(&resp.stop_reason),
        "stop_sequence": stop_sequence_of(&resp.stop_reason),
        "usage": usage_json(&resp.usage),
    });
    crate::json::value_to_vec(&body)
}
