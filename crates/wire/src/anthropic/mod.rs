//! Anthropic Messages API: request and response bodies to and from the canonical model.
//!
//! Wire reference: <https://docs.anthropic.com/en/api/messages>. Streams are in [`stream`].

mod stream;

pub use stream::{StreamDecoder, StreamEncoder};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::canonical::{ChatRequest, ChatResponse, EncodeCtx, Message, Part, Role, StopReason, Usage};
use crate::{DecodeError, Dialect, EncodeError};

/// Anthropic rejects a request without `max_tokens`; when a client of another dialect leaves it out, the gateway
/// sends this (the largest output every current Claude model accepts).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    messages: Vec<WireMessage>,
    #[serde(default)]
    system: Option<Content>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u32>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    tools: Option<IgnoredAny>,
    #[serde(default)]
    tool_choice: Option<IgnoredAny>,
    #[serde(default)]
    thinking: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    content: Content,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

#[derive(Deserialize, Serialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

fn parts_of(content: Content) -> Vec<Part> {
    match content {
        Content::Text(t) => vec![Part::Text(t)],
        Content::Blocks(blocks) => blocks
            .into_iter()
            .map(|b| match (b.kind.as_str(), b.text) {
                ("text", Some(t)) => Part::Text(t),
                _ => Part::Unsupported(b.kind),
            })
            .collect(),
    }
}

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, DecodeError> {
    let w: WireRequest = serde_json::from_slice(body)?;
    let mut messages = Vec::with_capacity(w.messages.len());
    for (i, m) in w.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(DecodeError::Invalid(format!(
                    "messages.{i}.role: unexpected role \"{other}\"; expected \"user\" or \"assistant\""
                )));
            }
        };
        messages.push(Message { role, content: parts_of(m.content) });
    }
    let system = match w.system {
        None => Vec::new(),
        Some(c) => parts_of(c)
            .into_iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t),
                Part::Unsupported(_) => None,
            })
            .collect(),
    };
    let untranslated = [
        ("tools", w.tools.is_some()),
        ("tool_choice", w.tool_choice.is_some()),
        ("thinking", w.thinking.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, present)| present.then_some(f))
    .collect();
    Ok(ChatRequest {
        model: w.model,
        system,
        messages,
        max_tokens: w.max_tokens,
        temperature: w.temperature,
        top_p: w.top_p,
        top_k: w.top_k,
        stop: w.stop_sequences.unwrap_or_default(),
        stream: w.stream.unwrap_or(false),
        include_usage: true,
        untranslated,
    })
}

/// Text blocks for Anthropic, which refuses empty ones ("text content blocks must be non-empty"): those are left out.
pub(crate) fn text_blocks(parts: &[Part], field: &str, target: Dialect) -> Result<Vec<Value>, EncodeError> {
    parts
        .iter()
        .filter(|p| !matches!(p, Part::Text(t) if t.is_empty()))
        .map(|p| match p {
            Part::Text(t) => Ok(json!({"type": "text", "text": t})),
            Part::Unsupported(kind) => Err(EncodeError {
                field: field.to_owned(),
                target,
                why: format!("content of type \"{kind}\" is not translated yet"),
            }),
        })
        .collect()
}

/// `sampling`: whether to send temperature/top_p/top_k (Anthropic refuses them from API version 2026-10-21).
pub fn encode_request(req: &ChatRequest, model: &str, sampling: bool) -> Result<Vec<u8>, EncodeError> {
    req.check_translatable(Dialect::Anthropic)?;
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let content = text_blocks(&m.content, &format!("messages[{i}].content"), Dialect::Anthropic)?;
        if content.is_empty() {
            // An empty turn says nothing; Anthropic accepts consecutive turns of one role, not empty ones.
            continue;
        }
        messages.push(json!({"role": role, "content": content}));
    }
    let mut body = serde_json::Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), messages.into());
    body.insert("max_tokens".into(), req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).into());
    if let Some(system) = req.system_text() {
        body.insert("system".into(), system.into());
    }
    if let Some(t) = req.temperature.filter(|_| sampling) {
        // Anthropic's range is [0, 1]; OpenAI's and Gemini's is [0, 2]. Values up to 1 mean the same everywhere
        // and pass unchanged; higher ones are clamped to Anthropic's most random.
        body.insert("temperature".into(), t.clamp(0.0, 1.0).into());
    }
    if let Some(p) = req.top_p.filter(|_| sampling) {
        body.insert("top_p".into(), p.into());
    }
    if let Some(k) = req.top_k.filter(|_| sampling) {
        body.insert("top_k".into(), k.into());
    }
    if !req.stop.is_empty() {
        body.insert("stop_sequences".into(), req.stop.clone().into());
    }
    if req.stream {
        body.insert("stream".into(), true.into());
    }
    Ok(serde_json::to_vec(&body).unwrap_or_default())
}

#[derive(Deserialize)]
struct WireResponse {
    id: String,
    model: String,
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize, Default, Clone, Copy)]
pub(crate) struct WireUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Fold into canonical usage: Anthropic's `input_tokens` excludes cache reads and writes.
    pub(crate) fn apply(&self, u: &mut Usage) {
        if let Some(cr) = self.cache_read_input_tokens {
            u.cache_read_tokens = cr;
        }
        if let Some(cw) = self.cache_creation_input_tokens {
            u.cache_write_tokens = cw;
        }
        if let Some(i) = self.input_tokens {
            u.input_tokens = i.saturating_add(u.cache_read_tokens).saturating_add(u.cache_write_tokens);
        }
        if let Some(o) = self.output_tokens {
            u.output_tokens = o;
        }
    }
}

pub(crate) fn stop_reason_from(s: Option<&str>, seq: Option<String>) -> StopReason {
    match s {
        Some("max_tokens") | Some("model_context_window_exceeded") => StopReason::MaxTokens,
        Some("stop_sequence") => StopReason::StopSequence(seq),
        Some("tool_use") => StopReason::ToolUse,
        Some("refusal") => StopReason::ContentFilter,
        Some("pause_turn") => StopReason::Paused,
        _ => StopReason::EndTurn,
    }
}

pub(crate) fn stop_reason_str(r: &StopReason) -> &'static str {
    match r {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence(_) => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter => "refusal",
        StopReason::Paused => "pause_turn",
    }
}

pub(crate) fn stop_sequence_of(r: &StopReason) -> Option<&str> {
    match r {
        StopReason::StopSequence(s) => s.as_deref(),
        _ => None,
    }
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let w: WireResponse = serde_json::from_slice(body)?;
    let mut usage = Usage::default();
    w.usage.apply(&mut usage);
    Ok(ChatResponse {
        id: w.id,
        model: w.model,
        content: parts_of(Content::Blocks(w.content)),
        stop_reason: stop_reason_from(w.stop_reason.as_deref(), w.stop_sequence),
        usage,
    })
}

pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.uncached_input(),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    })
}

/// An id in Anthropic's form: upstream ids from other dialects keep their text behind the `msg_` prefix.
pub(crate) fn message_id(id: &str) -> String {
    if id.starts_with("msg_") { id.to_owned() } else { format!("msg_{id}") }
}

pub fn encode_response(resp: &ChatResponse, ctx: &EncodeCtx) -> Vec<u8> {
    let content: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(json!({"type": "text", "text": t})),
            Part::Unsupported(_) => None,
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
    serde_json::to_vec(&body).unwrap_or_default()
}
