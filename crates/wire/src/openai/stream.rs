//! OpenAI Chat Completions streams: `data: {chat.completion.chunk}` lines ending in `data: [DONE]`, decoded into
//! canonical events and encoded from them.
//!
//! Both directions are state machines fed one event at a time; neither buffers the stream.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{WireUsage, completion_id, finish_reason_str, stop_reason_from, usage_json};
use crate::canonical::{EncodeCtx, StopReason, StreamEvent, Usage};
use crate::error::{ErrorShape, ErrorType};
use crate::sse::{write_event, write_json};
use crate::{Dialect, StreamError};

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<ChunkDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChunkDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Value>,
    #[serde(default)]
    reasoning_content: Option<String>,
}

/// OpenAI chunks → canonical events.
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
        if data.trim() == "[DONE]" {
            self.finish_once(out);
            return Ok(());
        }
        let c: Chunk = serde_json::from_str(data).map_err(|e| StreamError::Malformed(e.to_string()))?;
        if let Some(err) = c.error {
            let message = err.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_owned();
            let kind = err.get("type").and_then(Value::as_str).unwrap_or("server_error").to_owned();
            return Err(StreamError::Upstream { kind, message });
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start { id: c.id, model: c.model, usage: Usage::default() });
        }
        if let Some(u) = c.usage {
            self.usage = u.into();
        }
        for choice in c.choices {
            if let Some(d) = choice.delta {
                if let Some(t) = d.content.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(t));
                }
                if d.tool_calls.is_some() {
                    out.push(StreamEvent::Unsupported("tool_calls".into()));
                }
                if d.reasoning_content.is_some_and(|r| !r.is_empty()) {
                    out.push(StreamEvent::Unsupported("reasoning_content".into()));
                }
            }
            if let Some(r) = choice.finish_reason {
                self.stop_reason = Some(stop_reason_from(Some(&r)));
            }
        }
        Ok(())
    }

    fn finish_once(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.done {
            self.done = true;
            let stop_reason = self.stop_reason.take().unwrap_or(StopReason::EndTurn);
            out.push(StreamEvent::Finish { stop_reason, usage: self.usage });
        }
    }

    /// The upstream body ended. Without `[DONE]`, a stream that already gave its finish_reason is complete (some
    /// compatible servers omit the marker); one that did not was cut.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        if self.done {
            return Ok(());
        }
        if self.stop_reason.is_some() {
            self.finish_once(out);
            return Ok(());
        }
        Err(StreamError::Truncated)
    }
}

/// Canonical events → OpenAI chunk bytes.
#[derive(Debug)]
pub struct StreamEncoder {
    ctx: EncodeCtx,
    include_usage: bool,
    id: Option<String>,
}

impl StreamEncoder {
    /// `include_usage`: the client's `stream_options.include_usage`.
    pub fn new(ctx: EncodeCtx, include_usage: bool) -> Self {
        StreamEncoder { ctx, include_usage, id: None }
    }

    fn chunk(&self, choices: Value) -> Value {
        let mut c = json!({
            "id": self.id.as_deref().unwrap_or("chatcmpl-nines"),
            "object": "chat.completion.chunk",
            "created": self.ctx.created,
            "model": self.ctx.model,
            "choices": choices,
        });
        if self.include_usage {
            c["usage"] = Value::Null;
        }
        c
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.id.is_none() {
            self.start("nines", out);
        }
    }

    fn start(&mut self, id: &str, out: &mut Vec<u8>) {
        self.id = Some(completion_id(id));
        let c = self.chunk(json!([{"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "logprobs": null, "finish_reason": null}]));
        write_json(out, None, &c);
    }

    pub fn push(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        match ev {
            StreamEvent::Start { id, .. } => {
                if self.id.is_none() {
                    self.start(id, out);
                }
            }
            StreamEvent::TextDelta(text) => {
                self.ensure_started(out);
                let c = self.chunk(json!([{"index": 0, "delta": {"content": text},
                                            "logprobs": null, "finish_reason": null}]));
                write_json(out, None, &c);
            }
            StreamEvent::Unsupported(_) => {}
            StreamEvent::Finish { stop_reason, usage } => {
                self.ensure_started(out);
                let c = self.chunk(json!([{"index": 0, "delta": {}, "logprobs": null,
                                            "finish_reason": finish_reason_str(stop_reason)}]));
                write_json(out, None, &c);
                if self.include_usage {
                    let mut c = self.chunk(json!([]));
                    c["usage"] = usage_json(usage);
                    write_json(out, None, &c);
                }
                write_event(out, None, "[DONE]");
            }
        }
    }

    /// End the stream with an in-band error, which the official SDKs raise as an APIError. No `[DONE]` follows:
    /// the answer is incomplete and must not look complete.
    pub fn error(&mut self, kind: ErrorType, message: &str, out: &mut Vec<u8>) {
        let body =
            ErrorShape { status: kind.http_status(), kind, message, param: None }.body(Dialect::OpenAiChat);
        write_json(out, None, &body);
    }
}
