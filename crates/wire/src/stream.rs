//! Stream translation: one decoder per provider dialect, one encoder per client dialect, joined by canonical
//! [`StreamEvent`]s.
//!
//! The decoder also tells the gateway where the stream stands (started, content seen, finished), which is how the
//! commit point is found even when the bytes pass through untranslated.

use crate::canonical::{EncodeCtx, StreamEvent};
use crate::error::ErrorType;
use crate::{Dialect, StreamError, anthropic, gemini, openai, responses};

/// Upstream SSE events (of one dialect) → canonical events.
#[derive(Debug)]
pub enum Decoder {
    Anthropic(anthropic::StreamDecoder),
    OpenAi(openai::StreamDecoder),
    Gemini(gemini::StreamDecoder),
    Responses(responses::StreamDecoder),
}

impl Decoder {
    pub fn new(dialect: Dialect) -> Self {
        match dialect {
            Dialect::Anthropic => Decoder::Anthropic(anthropic::StreamDecoder::new()),
            Dialect::OpenAiChat => Decoder::OpenAi(openai::StreamDecoder::new()),
            Dialect::Gemini => Decoder::Gemini(gemini::StreamDecoder::new()),
            Dialect::OpenAiResponses => Decoder::Responses(responses::StreamDecoder::new()),
        }
    }

    /// Feed one SSE event: its `event:` name (empty when absent) and its `data:`.
    pub fn push(&mut self, event: &str, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        match self {
            Decoder::Anthropic(d) => d.push(event, data, out),
            Decoder::OpenAi(d) => d.push(event, data, out),
            Decoder::Gemini(d) => d.push(event, data, out),
            Decoder::Responses(d) => d.push(event, data, out),
        }
    }

    /// The upstream broke (cut, stalled, an unreadable event) after it had already given its stop reason: the
    /// answer is complete and only its closing events are missing. Then the `Finish` is emitted with what is known
    /// and `true` returned; `false` when the answer was really cut short (or the dialect's stop reason comes only
    /// with its final event, as the Responses API's does).
    pub fn settle(&mut self, out: &mut Vec<StreamEvent>) -> bool {
        match self {
            Decoder::Anthropic(d) => d.settle(out),
            Decoder::OpenAi(d) => d.finish(out).is_ok(),
            Decoder::Gemini(d) => d.finish(out).is_ok(),
            Decoder::Responses(_) => false,
        }
    }

    /// The upstream body ended cleanly; `Err(Truncated)` if the dialect's final event never came.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        match self {
            Decoder::Anthropic(d) => d.finish(out),
            Decoder::OpenAi(d) => d.finish(out),
            Decoder::Gemini(d) => d.finish(out),
            Decoder::Responses(d) => d.finish(out),
        }
    }
}

/// Canonical events → SSE bytes in the client's dialect.
#[derive(Debug)]
pub enum Encoder {
    Anthropic(anthropic::StreamEncoder),
    OpenAi(openai::StreamEncoder),
    Gemini(gemini::StreamEncoder),
    Responses(responses::StreamEncoder),
}

impl Encoder {
    /// `include_usage` matters only to OpenAI Chat clients (their `stream_options.include_usage`); the other
    /// dialects always report usage.
    pub fn new(dialect: Dialect, ctx: EncodeCtx, include_usage: bool) -> Self {
        match dialect {
            Dialect::Anthropic => Encoder::Anthropic(anthropic::StreamEncoder::new(ctx)),
            Dialect::OpenAiChat => Encoder::OpenAi(openai::StreamEncoder::new(ctx, include_usage)),
            Dialect::Gemini => Encoder::Gemini(gemini::StreamEncoder::new(ctx)),
            Dialect::OpenAiResponses => Encoder::Responses(responses::StreamEncoder::new(ctx)),
        }
    }

    pub fn push(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        match self {
            Encoder::Anthropic(e) => e.push(ev, out),
            Encoder::OpenAi(e) => e.push(ev, out),
            Encoder::Gemini(e) => e.push(ev, out),
            Encoder::Responses(e) => e.push(ev, out),
        }
    }

    /// Write the dialect's in-band error event, ending the stream as failed.
    pub fn error(&mut self, kind: ErrorType, message: &str, out: &mut Vec<u8>) {
        match self {
            Encoder::Anthropic(e) => e.error(kind, message, out),
            Encoder::OpenAi(e) => e.error(kind, message, out),
            Encoder::Gemini(e) => e.error(kind, message, out),
            Encoder::Responses(e) => e.error(kind, message, out),
        }
    }
}
