//! OpenAI Chat Completions whole answers ⇄ the canonical response.

use serde_json::{Value, json};

use super::{WireUsage, completion_id, finish_reason_str, stop_reason_from, usage_json};
use crate::DecodeError;
use crate::canonical::{ChatResponse, EncodeCtx, Part, StopReason, Thinking, ToolCall, Usage};
use crate::json::{arr_of, str_of};

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    let id = str_of(&v, "id").ok_or_else(|| DecodeError::Invalid("id: required".into()))?;
    let Some(choice) = arr_of(&v, "choices").first() else {
        return Err(DecodeError::Invalid("chat.completion without choices".into()));
    };
    let msg =
        choice.get("message").ok_or_else(|| DecodeError::Invalid("choices[0].message: required".into()))?;
    let mut content = Vec::new();
    // Reasoning text, as vLLM, DeepSeek and others expose it (`reasoning_content`, or `reasoning`).
    if let Some(r) =
        str_of(msg, "reasoning_content").or_else(|| str_of(msg, "reasoning")).filter(|r| !r.is_empty())
    {
        content.push(Part::Thinking(Thinking { text: r.to_owned(), signature: None }));
    }
    if let Some(t) = str_of(msg, "content") {
        content.push(Part::Text(t.to_owned()));
    }
    let refusal = str_of(msg, "refusal").filter(|r| !r.is_empty());
    if let Some(r) = refusal {
        content.push(Part::Text(r.to_owned()));
    }
    for c in arr_of(msg, "tool_calls") {
        let f = c.get("function").unwrap_or(&Value::Null);
        content.push(Part::ToolCall(ToolCall {
            id: str_of(c, "id").unwrap_or_default().to_owned(),
            name: str_of(f, "name").unwrap_or_default().to_owned(),
            arguments: str_of(f, "arguments").unwrap_or("{}").to_owned(),
        }));
    }
    let usage: Option<WireUsage> =
        v.get("usage").filter(|u| !u.is_null()).cloned().map(serde_json::from_value).transpose()?;
    let stop_reason = if refusal.is_some() {
        StopReason::ContentFilter
    } else {
        stop_reason_from(str_of(choice, "finish_reason"))
    };
    Ok(ChatResponse {
        id: id.to_owned(),
        model: str_of(&v, "model").unwrap_or_default().to_owned(),
        content,
        stop_reason,
        usage: usage.map(Usage::from).unwrap_or_default(),
    })
}

pub fn encode_response(resp: &ChatResponse, ctx: &EncodeCtx) -> Vec<u8> {
    let calls: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some(json!({"id": c.id, "type": "function",
                                             "function": {"name": c.name, "arguments": c.arguments}})),
            _ => None,
        })
        .collect();
    let text = resp.text();
    let content = if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) };
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let reasoning: String = resp
        .content
        .iter()
        .filter_map(|p| if let Part::Thinking(t) = p { Some(t.text.as_str()) } else { None })
        .collect();
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
    }
    let body = json!({
        "id": completion_id(&resp.id),
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason_str(&resp.stop_reason),
        }],
        "usage": usage_json(&resp.usage),
    });
    crate::json::value_to_vec(&body)
}
