//! Google Gemini `generateContent`: requests ([`request`]), whole answers ([`response`]) and streams
//! ([`stream`], `streamGenerateContent?alt=sse`) to and from the canonical model.
//!
//! Wire reference: <https://ai.google.dev/api/generate-content>. The model is named in the URL path, never in the
//! body. This module holds what the three share: parts, stop reasons and usage.

mod request;
mod response;
mod stream;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{StreamDecoder, StreamEncoder};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Dialect;
use crate::canonical::{Part, Signature, StopReason, Thinking, ToolCall, Usage};
use crate::json::{str_of, to_text};

/// Gemini accepts at most this many stop sequences.
pub const MAX_STOP_SEQUENCES: usize = 5;

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
}

impl From<UsageMetadata> for Usage {
    fn from(u: UsageMetadata) -> Usage {
        Usage {
            input_tokens: u.prompt_token_count,
            output_tokens: u.candidates_token_count.saturating_add(u.thoughts_token_count),
            cache_read_tokens: u.cached_content_token_count,
            cache_write_tokens: 0,
            reasoning_tokens: u.thoughts_token_count,
        }
    }
}

pub(crate) fn stop_reason_from(s: &str) -> StopReason {
    match s {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "LANGUAGE"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

pub(crate) fn finish_reason_str(r: &StopReason) -> &'static str {
    match r {
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
        StopReason::EndTurn | StopReason::StopSequence(_) | StopReason::ToolUse | StopReason::Paused => {
            "STOP"
        }
    }
}

pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens.saturating_sub(u.reasoning_tokens),
        "thoughtsTokenCount": u.reasoning_tokens,
        "totalTokenCount": u.total(),
        "cachedContentTokenCount": u.cache_read_tokens,
    })
}

/// The id of the `k`th function call of an answer: Gemini's own when it gives one, else made from the answer's id.
pub(crate) fn call_id(given: Option<&str>, response_id: &str, k: usize) -> String {
    match given {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ if response_id.is_empty() => format!("call_{k}"),
        _ => format!("call_{response_id}_{k}"),
    }
}

/// The canonical parts of one Gemini answer part. A `thoughtSignature` on a non-thought part becomes a thinking
/// part of its own, just before it, so that it can go back to Gemini with the conversation.
pub(crate) fn answer_parts(p: &Value, response_id: &str, calls: &mut usize, out: &mut Vec<Part>) {
    let signature =
        str_of(p, "thoughtSignature").map(|s| Signature { origin: Dialect::Gemini, value: s.to_owned() });
    let thought = p.get("thought").and_then(Value::as_bool) == Some(true);
    if thought {
        out.push(Part::Thinking(Thinking {
            text: str_of(p, "text").unwrap_or_default().to_owned(),
            signature,
        }));
        return;
    }
    if signature.is_some() {
        out.push(Part::Thinking(Thinking { text: String::new(), signature }));
    }
    if let Some(t) = str_of(p, "text") {
        out.push(Part::Text(t.to_owned()));
    } else if let Some(fc) = p.get("functionCall") {
        out.push(Part::ToolCall(ToolCall {
            id: call_id(str_of(fc, "id"), response_id, *calls),
            name: str_of(fc, "name").unwrap_or_default().to_owned(),
            arguments: fc.get("args").map(to_text).unwrap_or_else(|| "{}".into()),
        }));
        *calls += 1;
    } else if let Some(kind) = p.as_object().and_then(|o| o.keys().find(|k| *k != "thoughtSignature")) {
        out.push(Part::Unsupported(kind.clone()));
    }
}

/// A Gemini part for canonical reasoning: only Gemini's own signatures go back to Gemini.
pub(crate) fn thought_part(t: &Thinking) -> Option<Value> {
    let sig = t.signature.as_ref().filter(|s| s.origin == Dialect::Gemini)?;
    Some(json!({"text": t.text, "thought": true, "thoughtSignature": sig.value}))
}
