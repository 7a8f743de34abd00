//! The canonical chat model: the hub every dialect decodes into and encodes from.
//!
//! It models what the gateway must understand to translate between providers; it never holds raw wire JSON
//! (same-dialect passthrough keeps the client's own bytes instead, see `nines::dispatch`), except for JSON Schemas
//! and tool arguments, which are carried as they were written.

use serde_json::Value;

use crate::{Dialect, EncodeError};

/// Who wrote a message. System prompts are not messages: they live in [`ChatRequest::system`]. Tool results are
/// parts of a user message (Anthropic's convention; OpenAI's `tool` messages and Gemini's function responses
/// decode into that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// An image given to the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    Base64 { media_type: String, data: String },
    Url(String),
}

/// The model asking for a tool to be run. `arguments` is JSON text, exactly as the model wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// The client's answer to a [`ToolCall`].
#[derive(Clone, Debug, PartialEq)]
pub struct ToolResult {
    pub call_id: String,
    /// Text and images.
    pub content: Vec<Part>,
    pub is_error: bool,
}

/// An opaque reasoning signature, with the dialect of the provider that minted it: it is only ever sent back to a
/// target of that dialect (no provider can verify another's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub origin: Dialect,
    pub value: String,
}

/// The model's visible reasoning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thinking {
    pub text: String,
    pub signature: Option<Signature>,
}

/// One piece of a message's content.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(String),
    Image(ImageSource),
    ToolCall(ToolCall),
    ToolResult(ToolResult),
    Thinking(Thinking),
    /// A content kind this version cannot translate. It names the wire type so a translation can refuse with a
    /// clear message instead of silently dropping it.
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

/// A function the model may call. `parameters` is its JSON Schema, as the client wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// The model must call some tool.
    Required,
    /// The model must not call tools.
    None,
    /// The model must call this tool.
    Named(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ResponseFormat {
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema { name: String, schema: Value, strict: Option<bool> },
}

/// How hard the model should think.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effort {
    Minimal,
    Low,
    Medium,
    High,
    /// Anthropic's `xhigh` and `max`.
    Max,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reasoning {
    pub effort: Option<Effort>,
    /// A thinking budget in tokens (Anthropic `thinking.budget_tokens`, Gemini `thinkingBudget`).
    pub budget_tokens: Option<u32>,
    /// Whether the client asked to see the reasoning (Anthropic's `thinking` enabled, Gemini's `includeThoughts`).
    pub visible: bool,
}

impl Reasoning {
    /// The effort this reasoning amounts to, from an explicit effort or a budget.
    pub fn effective_effort(&self) -> Effort {
        if let Some(e) = self.effort {
            return e;
        }
        match self.budget_tokens {
            Some(b) if b <= 2048 => Effort::Low,
            Some(b) if b <= 8192 => Effort::Medium,
            Some(_) => Effort::High,
            None => Effort::Medium,
        }
    }

    /// A thinking budget in tokens, from an explicit budget or an effort.
    pub fn effective_budget(&self) -> u32 {
        if let Some(b) = self.budget_tokens {
            return b;
        }
        match self.effort.unwrap_or(Effort::Medium) {
            Effort::Minimal | Effort::Low => 1024,
            Effort::Medium => 4096,
            Effort::High => 16384,
            Effort::Max => 32768,
        }
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
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)` forbids several tool calls in one answer.
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<ResponseFormat>,
    pub reasoning: Option<Reasoning>,
    /// An end-user id for abuse monitoring (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    /// Request fields present that this version cannot carry to another dialect (`n` > 1…). Same-dialect targets
    /// get them untouched; a translation refuses rather than silently dropping them.
    pub untranslated: Vec<&'static str>,
    /// Request fields present that a translation leaves out without changing what is asked (`seed`,
    /// `presence_penalty`, `safetySettings`…, and any field this version does not know): reported as dropped.
    pub ignored: Vec<String>,
}

impl ChatRequest {
    /// The system prompt as one string (blocks joined by a blank line), if any.
    pub fn system_text(&self) -> Option<String> {
        if self.system.is_empty() { None } else { Some(self.system.join("\n\n")) }
    }

    /// Refuse a translation to `target` if the request carries a field that would be lost.
    pub fn check_translatable(&self, target: Dialect) -> Result<(), EncodeError> {
        match self.untranslated.first() {
            None => Ok(()),
            Some(field) => Err(EncodeError {
                field: (*field).to_owned(),
                target,
                why: "this field is not translated to another API format yet".to_owned(),
            }),
        }
    }

    /// What a translation starts by reporting as left out.
    pub fn dropped_fields(&self) -> Vec<String> {
        self.ignored.clone()
    }

    /// Whether any message carries an image.
    pub fn has_images(&self) -> bool {
        self.messages.iter().flat_map(|m| &m.content).any(|p| match p {
            Part::Image(_) => true,
            Part::ToolResult(r) => r.content.iter().any(|c| matches!(c, Part::Image(_))),
            _ => false,
        })
    }

    /// The name of the tool a call id belongs to, from the conversation's earlier tool calls.
    pub fn tool_name_of(&self, call_id: &str) -> Option<&str> {
        self.messages.iter().flat_map(|m| &m.content).find_map(|p| match p {
            Part::ToolCall(c) if c.id == call_id => Some(c.name.as_str()),
            _ => None,
        })
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
/// the cache fields say how many of them were read from or written to a prompt cache. `reasoning_tokens` is the
/// part of `output_tokens` spent thinking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
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
                _ => None,
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
    /// More visible reasoning.
    ThinkingDelta(String),
    /// The signature of the reasoning just given.
    ThinkingSignature(Signature),
    /// A tool call begins. `index` counts tool calls within the answer, from 0.
    ToolCallStart { index: u32, id: String, name: String },
    /// More of a tool call's JSON arguments.
    ToolCallArgs { index: u32, json: String },
    /// Content of a kind this version does not translate. It counts as content for the commit point; translating
    /// encoders skip it.
    Unsupported(String),
    /// The answer is complete.
    Finish { stop_reason: StopReason, usage: Usage },
}

impl StreamEvent {
    /// Content events are the commit point: once one has been produced, the answer is being delivered.
    pub fn is_content(&self) -> bool {
        !matches!(self, StreamEvent::Start { .. })
    }
}

/// Values the encoders need but a pure crate cannot make up: clock and ids.
#[derive(Clone, Debug, Default)]
pub struct EncodeCtx {
    /// Unix seconds, for OpenAI's `created`.
    pub created: u64,
    /// The model name to report to the client.
    pub model: String,
    /// The dialect of the provider that answered. Signed reasoning is only shown to a client of that same dialect:
    /// another could neither verify nor safely send it back.
    pub upstream: Option<Dialect>,
    /// The id the gateway gives this answer (it stores the answer under it, for a Responses client's
    /// `previous_response_id`). The Responses encoders use it verbatim; when `None` they make one from the
    /// upstream's id. Other dialects ignore it.
    pub response_id: Option<String>,
    /// The ids of output items the client was already told of, by output index (a Responses stream passed through
    /// untranslated until a continuation was spliced in): the Responses encoders reuse them rather than mint their
    /// own, so an item keeps its id. Other dialects ignore it.
    pub item_ids: Vec<String>,
    /// Use the upstream's ids exactly as they are, with no dialect prefix added: the client of a stream passed
    /// through until a continuation was spliced in already has them so.
    pub verbatim_ids: bool,
}

/// A request body for a target, and what had to be left out on the way.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Encoded {
    pub body: Vec<u8>,
    /// Parameters the target cannot take and that were dropped (reported to the client in a warning header).
    pub dropped: Vec<String>,
}
