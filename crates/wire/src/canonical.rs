//! The canonical chat model: the hub every dialect decodes into and encodes from.
//!
//! It models what the gateway must understand to translate between providers; it never holds raw wire JSON
//! (same-dialect passthrough keeps the client's own bytes instead, see `nines::dispatch`).

/// Who wrote a message. System prompts are not messages: they live in [`ChatRequest::system`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One piece of a message's content.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(String),
    /// A content kind this version cannot translate (tools, images...). It names the wire type so a translation
    /// can refuse with a clear message instead of silently dropping it.
    Unsupported(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Part>,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message { role, content: vec![Part::Text(text.into())] }
    }
}

/// A chat request as the gateway understands it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// What the client asked for: a route name or `provider/model`.
    pub model: String,
    /// System (and OpenAI developer) instructions, in order.
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub stop: Vec<String>,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`: whether an OpenAI-dialect client wants the final usage chunk.
    pub include_usage: bool,
    /// Request fields present that this version cannot carry to another dialect (`tools`, `response_format`…).
    /// Same-dialect targets get them untouched; a translation refuses rather than silently dropping them.
    pub untranslated: Vec<&'static str>,
}

impl ChatRequest {
    /// Refuse a translation to `target` if the request carries a field that would be lost.
    pub fn check_translatable(&self, target: crate::Dialect) -> Result<(), crate::EncodeError> {
        match self.untranslated.first() {
            None => Ok(()),
            Some(field) => Err(crate::EncodeError {
                field: (*field).to_owned(),
                target,
                why: "this field is not translated to another API format yet".to_owned(),
            }),
        }
    }

    /// The system prompt as one string (blocks joined by a blank line), if any.
    pub fn system_text(&self) -> Option<String> {
        if self.system.is_empty() { None } else { Some(self.system.join("\n\n")) }
    }
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    /// Stopped on one of the request's stop sequences (which one, when the provider says).
    StopSequence(Option<String>),
    ToolUse,
    /// Refused or filtered for safety.
    ContentFilter,
    /// Paused by the provider (Anthropic `pause_turn`); the client may continue.
    Paused,
}

/// Token usage. `input_tokens` counts every prompt token, cached or not (OpenAI's `prompt_tokens` convention);
/// the cache fields say how many of them were read from or written to a prompt cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
    /// Anthropic counts only uncached input in `input_tokens`.
    pub fn uncached_input(&self) -> u64 {
        self.input_tokens.saturating_sub(self.cache_read_tokens.saturating_add(self.cache_write_tokens))
    }
}

/// A complete (non-streaming) answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    pub id: String,
    pub model: String,
    pub content: Vec<Part>,
    pub stop_reason: StopReason,
    pub usage: Usage,
}

impl ChatResponse {
    /// All text parts, concatenated.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                Part::Unsupported(_) => None,
            })
            .collect()
    }
}

/// One event of a canonical stream. Every provider stream decodes into these; every front door encodes from them.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// The answer has begun. `usage` holds what is known so far (usually the input tokens).
    Start { id: String, model: String, usage: Usage },
    /// More text of the answer.
    TextDelta(String),
    /// Content of a kind this version does not translate (a tool call, a thinking block). It counts as content
    /// for the commit point; translating encoders skip it.
    Unsupported(String),
    /// The answer is complete.
    Finish { stop_reason: StopReason, usage: Usage },
}

impl StreamEvent {
    /// Content events are the commit point: once one has been produced, the answer is being delivered.
    pub fn is_content(&self) -> bool {
        matches!(self, StreamEvent::TextDelta(_) | StreamEvent::Unsupported(_) | StreamEvent::Finish { .. })
    }
}

/// Values the encoders need but a pure crate cannot make up: clock and ids.
#[derive(Clone, Debug, Default)]
pub struct EncodeCtx {
    /// Unix seconds, for OpenAI's `created`.
    pub created: u64,
    /// The model name to report to the client (the name it asked for).
    pub model: String,
}
