//! nines-wire: pure protocol code.
//!
//! The canonical chat model ([`canonical`]), the wire formats of each dialect ([`anthropic`], [`openai`],
//! [`responses`], [`gemini`]), translation between them through the canonical model (hub and spoke, never pairwise), and the
//! stream state machines ([`stream`]). No I/O, no async, no clock: the gateway passes in what it needs.

pub mod anthropic;
pub mod canonical;
mod check;
pub mod embeddings;
pub mod error;
pub mod gemini;
mod json;
pub mod openai;
pub mod responses;
pub mod resume;
pub mod shape;
pub mod sse;
pub mod stream;

pub use canonical::{
    ChatRequest, ChatResponse, Effort, EncodeCtx, Encoded, ImageSource, Message, Part, Reasoning,
    ResponseFormat, Role, Signature, StopReason, StreamEvent, Thinking, Tool, ToolCall, ToolChoice,
    ToolResult, Usage,
};
pub use error::{DecodeError, EncodeError, ErrorShape, ErrorType, StreamError};

/// Per-target choices an encoder cannot infer from the request.
#[derive(Clone, Copy, Debug)]
pub struct EncodeOpts {
    pub max_tokens_field: openai::MaxTokensField,
    /// Whether the target accepts sampling parameters (temperature, top_p, top_k). Anthropic's Messages API from
    /// version 2026-10-21 refuses them.
    pub sampling_params: bool,
    /// Whether the target declares the reasoning capability; reasoning parameters are dropped (with a warning)
    /// otherwise, since a model without it refuses them with a 400.
    pub reasoning: bool,
}

impl Default for EncodeOpts {
    fn default() -> Self {
        EncodeOpts {
            max_tokens_field: openai::MaxTokensField::default(),
            sampling_params: true,
            reasoning: true,
        }
    }
}

/// An API format: what a front door speaks and what a provider kind expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI Chat Completions (and every OpenAI-compatible server).
    OpenAiChat,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
    /// OpenAI Responses (`POST /v1/responses`).
    OpenAiResponses,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::OpenAiChat => "openai",
            Dialect::Anthropic => "anthropic",
            Dialect::Gemini => "gemini",
            Dialect::OpenAiResponses => "openai-responses",
        }
    }

    /// Decode a request body of this dialect. Gemini bodies carry no model: the caller sets it from the path.
    pub fn decode_request(self, body: &[u8]) -> Result<ChatRequest, DecodeError> {
        match self {
            Dialect::OpenAiChat => openai::decode_request(body),
            Dialect::Anthropic => anthropic::decode_request(body),
            Dialect::Gemini => gemini::decode_request(body),
            Dialect::OpenAiResponses => responses::decode_request(body),
        }
    }

    /// Encode a canonical request for a target of this dialect, naming `model` as the upstream model.
    pub fn encode_request(
        self,
        req: &ChatRequest,
        model: &str,
        opts: &EncodeOpts,
    ) -> Result<Encoded, EncodeError> {
        match self {
            Dialect::OpenAiChat => openai::encode_request(req, model, opts),
            Dialect::Anthropic => anthropic::encode_request(req, model, opts),
            Dialect::Gemini => gemini::encode_request(req, opts),
            Dialect::OpenAiResponses => responses::encode_request(req, model, opts),
        }
    }

    /// Whether `body` is an answer [`Dialect::decode_response`] would accept, without decoding it: for passing a
    /// same-dialect answer on as it is.
    pub fn check_response(self, body: &[u8]) -> Result<Option<Usage>, DecodeError> {
        check::check_response(self, body)
    }

    pub fn decode_response(self, body: &[u8]) -> Result<ChatResponse, DecodeError> {
        match self {
            Dialect::OpenAiChat => openai::decode_response(body),
            Dialect::Anthropic => anthropic::decode_response(body),
            Dialect::Gemini => gemini::decode_response(body),
            Dialect::OpenAiResponses => responses::decode_response(body),
        }
    }

    pub fn encode_response(self, resp: &ChatResponse, ctx: &EncodeCtx) -> Vec<u8> {
        match self {
            Dialect::OpenAiChat => openai::encode_response(resp, ctx),
            Dialect::Anthropic => anthropic::encode_response(resp, ctx),
            Dialect::Gemini => gemini::encode_response(resp, ctx),
            Dialect::OpenAiResponses => responses::encode_response(resp, ctx),
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
