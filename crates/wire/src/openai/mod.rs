//! OpenAI Chat Completions (and every OpenAI-compatible server): requests ([`request`]), whole answers
//! ([`response`]) and streams ([`stream`]) to and from the canonical model.
//!
//! Wire reference: <https://platform.openai.com/docs/api-reference/chat>. This module holds what the three share.

mod request;
mod response;
mod stream;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{StreamDecoder, StreamEncoder};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::canonical::{Effort, StopReason, Usage};

/// How a target wants the output limit named.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MaxTokensField {
    /// `max_completion_tokens`: what OpenAI's current models require.
    #[default]
    MaxCompletionTokens,
    /// `max_tokens`: what most OpenAI-compatible servers (vLLM, Ollama, llama.cpp, Groq…) understand.
    MaxTokens,
}

/// OpenAI's reasoning effort (Chat's `reasoning_effort`, Responses' `reasoning.effort`).
pub(crate) fn effort_from(s: &str) -> Option<Effort> {
    match s {
        "minimal" => Some(Effort::Minimal),
        "low" => Some(Effort::Low),
        "medium" => Some(Effort::Medium),
        "high" => Some(Effort::High),
        "xhigh" => Some(Effort::Max),
        _ => None,
    }
}

/// The effort to ask an OpenAI model for (`Max` is sent as `high`, which every reasoning model takes).
pub(crate) fn effort_str(e: Effort) -> &'static str {
    match e {
        Effort::Minimal => "minimal",
        Effort::Low => "low",
        Effort::Medium => "medium",
        Effort::High | Effort::Max => "high",
    }
}

/// OpenAI accepts at most this many stop sequences.
pub const MAX_STOP_SEQUENCES: usize = 4;

#[derive(Deserialize, Default, Clone, Copy)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(w: WireUsage) -> Usage {
        Usage {
            input_tokens: w.prompt_tokens,
            output_tokens: w.completion_tokens,
            cache_read_tokens: w.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: w.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

pub(crate) fn stop_reason_from(s: Option<&str>) -> StopReason {
    match s {
        Some("length") => StopReason::MaxTokens,
        Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
        Some("content_filter") => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

pub(crate) fn finish_reason_str(r: &StopReason) -> &'static str {
    match r {
        StopReason::EndTurn | StopReason::StopSequence(_) | StopReason::Paused => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
    }
}

pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total(),
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    })
}

pub(crate) fn completion_id(id: &str) -> String {
    if id.starts_with("chatcmpl-") { id.to_owned() } else { format!("chatcmpl-{id}") }
}
