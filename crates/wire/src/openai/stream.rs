//! OpenAI Chat Completions streams: `data: {chat.completion.chunk}` lines ending in `data: [DONE]`, decoded into
//! canonical events and encoded from them. Tool calls stream as `delta.tool_calls[]` entries keyed by `index`.
//!
//! Both directions are state machines fed one event at a time; neither buffers the stream.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::{WireUsage, completion_id, finish_reason_str, stop_reason_from, usage_json};
use crate::canonical::{EncodeCtx, StopReason, StreamEvent, Usage};
use crate::error::{ErrorShape, ErrorType};
use crate::json::{arr_of, str_of};
use crate::sse::{write_event, write_json};
use crate::{Dialect, StreamError};

/// OpenAI chunks → canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    stop_reason: Option<StopReason>,
    usage: Usage,
    done: bool,
    /// Tool-call indexes already started.
    tools: HashSet<u64>,
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
        let c: Value = serde_json::from_str(data).map_err(|e| StreamError::Malformed(e.to_string()))?;
        if let Some(err) = c.get("error").filter(|e| !e.is_null()) {
            let message = str_of(err, "message").unwrap_or("unknown error").to_owned();
            let kind = str_of(err, "type").unwrap_or("server_error").to_owned();
            return Err(StreamError::Upstream { kind, message });
        }
        if !c.is_object() {
            return Err(StreamError::Malformed("a chunk must be a JSON object".into()));
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: str_of(&c, "id").unwrap_or_default().to_owned(),
                model: str_of(&c, "model").unwrap_or_default().to_owned(),
                usage: Usage::default(),
            });
        }
        if let Some(u) = c.get("usage").filter(|u| !u.is_null()) {
            let wu: WireUsage =
                serde_json::from_value(u.clone()).map_err(|e| StreamError::Malformed(e.to_string()))?;
            self.usage = wu.into();
        }
        for choice in arr_of(&c, "choices").iter().take(1) {
            if let Some(d) = choice.get("delta") {
                if let Some(r) = str_of(d, "reasoning_content")
                    .or_else(|| str_of(d, "reasoning"))
                    .filter(|r| !r.is_empty())
                {
                    out.push(StreamEvent::ThinkingDelta(r.to_owned()));
                }
                if let Some(t) = str_of(d, "content").filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(t.to_owned()));
                }
                for tc in arr_of(d, "tool_calls") {
                    let raw_index = tc.get("index").and_then(Value::as_u64).unwrap_or(0);
                    let index = u32::try_from(raw_index).unwrap_or(u32::MAX);
                    let f = tc.get("function").unwrap_or(&Value::Null);
                    if self.tools.insert(raw_index) {
                        out.push(StreamEvent::ToolCallStart {
                            index,
                            id: str_of(tc, "id")
                                .map(str::to_owned)
                                .unwrap_or_else(|| format!("call_{index}")),
                            name: str_of(f, "name").unwrap_or_default().to_owned(),
                        });
                    }
                    if let Some(a) = str_of(f, "arguments").filter(|a| !a.is_empty()) {
                        out.push(StreamEvent::ToolCallArgs { index, json: a.to_owned() });
                    }
                }
            }
            if let Some(r) = str_of(choice, "finish_reason") {
                self.stop_reason = Some(stop_reason_from(Some(r)));
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

    fn delta(&mut self, delta: Value, out: &mut Vec<u8>) {
        self.ensure_started(out);
        let c = self.chunk(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]));
        write_json(out, None, &c);
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.id.is_none() {
            self.start("nines", out);
        }
    }

    fn start(&mut self, id: &str, out: &mut Vec<u8>) {
        self.id = Some(if self.ctx.verbatim_ids { id.to_owned() } else { completion_id(id) });
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
            StreamEvent::TextDelta(text) => self.delta(json!({"content": text}), out),
            // Reasoning text as vLLM and DeepSeek stream it; the official SDKs keep unknown fields.
            StreamEvent::ThinkingDelta(text) => self.delta(json!({"reasoning_content": text}), out),
            StreamEvent::ThinkingSignature(_) | StreamEvent::Unsupported(_) => {}
            StreamEvent::ToolCallStart { index, id, name } => self.delta(
                json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                                        "function": {"name": name, "arguments": ""}}]}),
                out,
            ),
            StreamEvent::ToolCallArgs { index, json } => {
                self.delta(json!({"tool_calls": [{"index": index, "function": {"arguments": json}}]}), out)
            }
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
