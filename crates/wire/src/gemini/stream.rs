//! Gemini streams (`streamGenerateContent?alt=sse`): each `data:` line is a whole GenerateContentResponse; the
//! last carries `finishReason`. There is no end marker: the body's clean end after a finish reason completes it.
//! Function calls arrive whole, never in pieces.
//!
//! Both directions are state machines fed one event at a time; neither buffers the stream beyond one tool call.

use serde_json::{Value, json};

use super::response::usage_of;
use super::{answer_parts, finish_reason_str, stop_reason_from, usage_json};
use crate::canonical::{EncodeCtx, Part, StopReason, StreamEvent, Usage};
use crate::error::{ErrorShape, ErrorType};
use crate::json::{args_object, arr_of, str_of};
use crate::sse::write_json;
use crate::{Dialect, StreamError};

/// Gemini chunks → canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    response_id: String,
    stop_reason: Option<StopReason>,
    usage: Usage,
    done: bool,
    calls: usize,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, _event: &str, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        let r: Value = serde_json::from_str(data).map_err(|e| StreamError::Malformed(e.to_string()))?;
        if let Some(err) = r.get("error") {
            let message = str_of(err, "message").unwrap_or("unknown error").to_owned();
            let kind = str_of(err, "status").unwrap_or("INTERNAL").to_owned();
            return Err(StreamError::Upstream { kind, message });
        }
        if !r.is_object() {
            return Err(StreamError::Malformed("a chunk must be a JSON object".into()));
        }
        if !self.started {
            self.started = true;
            self.response_id = str_of(&r, "responseId").unwrap_or_default().to_owned();
            out.push(StreamEvent::Start {
                id: self.response_id.clone(),
                model: str_of(&r, "modelVersion").unwrap_or_default().to_owned(),
                usage: Usage::default(),
            });
        }
        if r.get("usageMetadata").is_some() {
            self.usage = usage_of(&r);
        }
        let candidates = arr_of(&r, "candidates");
        if r.get("promptFeedback").is_some() && candidates.is_empty() {
            self.stop_reason = Some(StopReason::ContentFilter);
        }
        for candidate in candidates.iter().take(1) {
            if let Some(content) = candidate.get("content") {
                let mut parts = Vec::new();
                for p in arr_of(content, "parts") {
                    answer_parts(p, &self.response_id, &mut self.calls, &mut parts);
                }
                for part in parts {
                    match part {
                        Part::Text(t) if t.is_empty() => {}
                        Part::Text(t) => out.push(StreamEvent::TextDelta(t)),
                        Part::Thinking(t) => {
                            if !t.text.is_empty() {
                                out.push(StreamEvent::ThinkingDelta(t.text));
                            }
                            if let Some(sig) = t.signature {
                                out.push(StreamEvent::ThinkingSignature(sig));
                            }
                        }
                        Part::ToolCall(c) => {
                            let index = u32::try_from(self.calls.saturating_sub(1)).unwrap_or(u32::MAX);
                            out.push(StreamEvent::ToolCallStart { index, id: c.id, name: c.name });
                            out.push(StreamEvent::ToolCallArgs { index, json: c.arguments });
                        }
                        Part::Unsupported(kind) => out.push(StreamEvent::Unsupported(kind)),
                        Part::Image(_) | Part::ToolResult(_) => {}
                    }
                }
            }
            if let Some(f) = str_of(candidate, "finishReason") {
                let mut reason = stop_reason_from(f);
                if reason == StopReason::EndTurn && self.calls > 0 {
                    reason = StopReason::ToolUse;
                }
                self.stop_reason = Some(reason);
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

/// Canonical events → Gemini SSE bytes. A tool call is held until its arguments are complete (Gemini sends
/// function calls whole).
#[derive(Debug)]
pub struct StreamEncoder {
    ctx: EncodeCtx,
    id: String,
    /// The tool call being assembled: id, name, arguments so far.
    call: Option<(String, String, String)>,
}

impl StreamEncoder {
    pub fn new(ctx: EncodeCtx) -> Self {
        StreamEncoder { ctx, id: String::new(), call: None }
    }

    fn chunk(&self, parts: Value, out: &mut Vec<u8>) {
        write_json(
            out,
            None,
            &json!({
                "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
                "modelVersion": self.ctx.model,
                "responseId": self.id,
            }),
        );
    }

    fn flush_call(&mut self, out: &mut Vec<u8>) {
        if let Some((id, name, args)) = self.call.take() {
            self.chunk(json!([{"functionCall": {"id": id, "name": name, "args": args_object(&args)}}]), out);
        }
    }

    pub fn push(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        match ev {
            StreamEvent::Start { id, .. } => self.id.clone_from(id),
            StreamEvent::TextDelta(text) => {
                self.flush_call(out);
                self.chunk(json!([{"text": text}]), out);
            }
            StreamEvent::ThinkingDelta(_) if self.ctx.upstream != Some(Dialect::Gemini) => {}
            StreamEvent::ThinkingDelta(text) => {
                self.flush_call(out);
                self.chunk(json!([{"text": text, "thought": true}]), out);
            }
            StreamEvent::ThinkingSignature(sig) => {
                if sig.origin == Dialect::Gemini {
                    self.flush_call(out);
                    self.chunk(json!([{"text": "", "thought": true, "thoughtSignature": sig.value}]), out);
                }
            }
            StreamEvent::ToolCallStart { id, name, .. } => {
                self.flush_call(out);
                self.call = Some((id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolCallArgs { json, .. } => {
                if let Some((_, _, args)) = &mut self.call {
                    args.push_str(json);
                }
            }
            StreamEvent::Unsupported(_) => {}
            StreamEvent::Finish { stop_reason, usage } => {
                self.flush_call(out);
                write_json(
                    out,
                    None,
                    &json!({
                        "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
                                        "finishReason": finish_reason_str(stop_reason), "index": 0}],
                        "usageMetadata": usage_json(usage),
                        "modelVersion": self.ctx.model,
                        "responseId": self.id,
                    }),
                );
            }
        }
    }

    pub fn error(&mut self, kind: ErrorType, message: &str, out: &mut Vec<u8>) {
        let body =
            ErrorShape { status: kind.http_status(), kind, message, param: None }.body(Dialect::Gemini);
        write_json(out, None, &body);
    }
}
