//! Anthropic Messages API: requests ([`request`]), whole answers ([`response`]) and streams ([`stream`]) to and
//! from the canonical model.
//!
//! Wire reference: <https://docs.anthropic.com/en/api/messages>. This module holds what the three share: stop
//! reasons, usage, ids and reasoning signatures.

mod request;
mod response;
mod stream;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{StreamDecoder, StreamEncoder};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Dialect;
use crate::canonical::{Signature, StopReason, Usage};

/// Anthropic rejects a request without `max_tokens`; when a client of another dialect leaves it out, the gateway
/// sends this (the largest output every current Claude model accepts).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The smallest thinking budget Anthropic accepts.
pub const MIN_THINKING_BUDGET: u32 = 1024;

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

/// A tool-use id in Anthropic's form (`toolu_…`): the API accepts any string matching `^[a-zA-Z0-9_-]+$`.
pub(crate) fn tool_use_id(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// A signature as an Anthropic client sends it back: Anthropic's own (reasoning from other providers is never
/// shown to Anthropic clients, see `StreamEncoder`).
pub(crate) fn signature_in(value: &str) -> Signature {
    Signature { origin: Dialect::Anthropic, value: value.to_owned() }
}

/// The prefix of a redacted thinking block's data, kept in a canonical signature.
pub(crate) const REDACTED: &str = "redacted:";
