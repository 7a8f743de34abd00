//! Gemini streams (`streamGenerateContent?alt=sse`): each `data:` line is a whole GenerateContentResponse; the
//! last carries `finishReason`. There is no end marker: the body's clean end after a finish reason completes it.
//!
//! Both directions are state machines fed one event at a time; neither buffers the stream.

use serde_json::{Value, json};

use super::{WireResponse, finish_reason_str, part_of, stop_reason_from, usage_json};
use crate::canonical::{EncodeCtx, Part, StopReason, StreamEvent, Usage};
use crate::error::{ErrorShape, ErrorType};
use crate::sse::write_json;
use crate::{Dialect, StreamError};

/// Gemini chunks → canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    stop_reason: Option<StopReason>,
    usage: Usage,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, _event: &str, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        let r: WireResponse =
            serde_json::from_str(data).map_err(|e| StreamError::Malformed(e.to_string()))?;
        if let Some(err) = r.error {
            let message = err.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_owned();
            let kind = err.get("status").and_then(Value::as_str).unwrap_or("INTERNAL").to_owned();
            return Err(StreamError::Upstream { kind, message });
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: r.response_id.unwrap_or_default(),
                model: r.model_version.unwrap_or_default(),
                usage: Usage::default(),
            });
        }
        if let Some(u) = r.usage_metadata {
            self.usage = u.into();
        }
        if r.prompt_feedback.is_some() && r.candidates.is_empty() {
            self.stop_reason = Some(StopReason::ContentFilter);
        }
        for candidate in r.candidates.into_iter().take(1) {
            if let Some(content) = candidate.content {
                for p in content.parts.into_vec() {
                    match part_of(p) {
                        Part::Text(t) if t.is_empty() => {}
                        Part::Text(t) => out.push(StreamEvent::TextDelta(t)),
                        Part::Unsupported(kind) => out.push(StreamEvent::Unsupported(kind)),
                    }
                }
            }
            if let Some(f) = candidate.finish_reason {
                self.stop_reason = Some(stop_reason_from(&f));
            }
        }
        Ok(())
    }

    /// The upstream body ended: complete if a finish reason arrived, cut otherwise.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        if self.done {
            return Ok(());
        }
        match self.stop_reason.take() {
            Some(stop_reason) => {
                self.done = true;
                out.push(StreamEvent::Finish { stop_reason, usage: self.usage });
                Ok(())
            }
            None => Err(StreamError::Truncated),
        }
    }
}

/// Canonical events → Gemini SSE bytes.
#[derive(Debug)]
pub struct StreamEncoder {
    ctx: EncodeCtx,
    id: String,
}

impl StreamEncoder {
    pub fn new(ctx: EncodeCtx) -> Self {
        StreamEncoder { ctx, id: String::new() }
    }

    pub fn push(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        match ev {
            StreamEvent::Start { id, .. } => self.id.clone_from(id),
            StreamEvent::TextDelta(text) => write_json(
                out,
                None,
                &json!({
                    "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}],
                    "modelVersion": self.ctx.model,
                    "responseId": self.id,
                }),
            ),
            StreamEvent::Unsupported(_) => {}
            StreamEvent::Finish { stop_reason, usage } => write_json(
                out,
                None,
                &json!({
                    "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
                                    "finishReason": finish_reason_str(stop_reason), "index": 0}],
                    "usageMetadata": usage_json(usage),
                    "modelVersion": self.ctx.model,
                    "responseId": self.id,
                }),
            ),
        }
    }

    pub fn error(&mut self, kind: ErrorType, message: &str, out: &mut Vec<u8>) {
        let body =
            ErrorShape { status: kind.http_status(), kind, message, param: None }.body(Dialect::Gemini);
        write_json(out, None, &body);
    }
}
