//! Anthropic Messages streams: the event sequence message_start, content_block_start, ping,
//! content_block_delta…, content_block_stop, message_delta, message_stop (and `error`), decoded into canonical
//! events and encoded from them.
//!
//! Both directions are state machines fed one event at a time; neither buffers the stream.

use serde::Deserialize;
use serde_json::json;

use super::{WireUsage, message_id, stop_reason_from, stop_reason_str, stop_sequence_of, usage_json};
use crate::StreamError;
use crate::canonical::{EncodeCtx, StopReason, StreamEvent, Usage};
use crate::error::{ErrorType, anthropic_type};
use crate::sse::write_json;

#[derive(Deserialize)]
struct MessageStart {
    message: StartMessage,
}
#[derive(Deserialize)]
struct StartMessage {
    id: String,
    model: String,
    #[serde(default)]
    usage: WireUsage,
}
#[derive(Deserialize)]
struct BlockStart {
    content_block: StartBlock,
}
#[derive(Deserialize)]
struct StartBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}
#[derive(Deserialize)]
struct BlockDelta {
    delta: Delta,
}
#[derive(Deserialize)]
struct Delta {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}
#[derive(Deserialize)]
struct MessageDelta {
    delta: MessageDeltaBody,
    #[serde(default)]
    usage: WireUsage,
}
#[derive(Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
}
#[derive(Deserialize)]
struct ErrorEvent {
    error: ErrorBody,
}
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

fn parse<'a, T: Deserialize<'a>>(event: &str, data: &'a str) -> Result<T, StreamError> {
    serde_json::from_str(data).map_err(|e| StreamError::Malformed(format!("{event}: {e}")))
}

/// Anthropic SSE events → canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    usage: Usage,
    stop_reason: Option<StopReason>,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one SSE event (its `event:` name and `data:`).
    pub fn push(&mut self, event: &str, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        match event {
            "message_start" => {
                let m: MessageStart = parse(event, data)?;
                m.message.usage.apply(&mut self.usage);
                out.push(StreamEvent::Start { id: m.message.id, model: m.message.model, usage: self.usage });
            }
            "content_block_start" => {
                let b: BlockStart = parse(event, data)?;
                match (b.content_block.kind.as_str(), b.content_block.text) {
                    ("text", Some(t)) if !t.is_empty() => out.push(StreamEvent::TextDelta(t)),
                    ("text", _) => {}
                    (other, _) => out.push(StreamEvent::Unsupported(other.to_owned())),
                }
            }
            "content_block_delta" => {
                let d: BlockDelta = parse(event, data)?;
                match (d.delta.kind.as_str(), d.delta.text) {
                    ("text_delta", Some(t)) => out.push(StreamEvent::TextDelta(t)),
                    (other, _) => out.push(StreamEvent::Unsupported(other.to_owned())),
                }
            }
            "message_delta" => {
                let d: MessageDelta = parse(event, data)?;
                d.usage.apply(&mut self.usage);
                if d.delta.stop_reason.is_some() {
                    self.stop_reason =
                        Some(stop_reason_from(d.delta.stop_reason.as_deref(), d.delta.stop_sequence));
                }
            }
            "message_stop" => {
                self.done = true;
                let stop_reason = self.stop_reason.take().unwrap_or(StopReason::EndTurn);
                out.push(StreamEvent::Finish { stop_reason, usage: self.usage });
            }
            "error" => {
                let e: ErrorEvent = parse(event, data)?;
                return Err(StreamError::Upstream { kind: e.error.kind, message: e.error.message });
            }
            // ping, content_block_stop, and event types added after this was written.
            _ => {}
        }
        Ok(())
    }

    /// The upstream body ended. Anything before `message_stop` is a cut stream.
    pub fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        if self.done { Ok(()) } else { Err(StreamError::Truncated) }
    }
}

/// Canonical events → Anthropic SSE bytes.
#[derive(Debug)]
pub struct StreamEncoder {
    ctx: EncodeCtx,
    started: bool,
    /// Index of the open text block, if one is open.
    open_block: Option<u32>,
    next_index: u32,
    pinged: bool,
}

impl StreamEncoder {
    pub fn new(ctx: EncodeCtx) -> Self {
        StreamEncoder { ctx, started: false, open_block: None, next_index: 0, pinged: false }
    }

    fn start(&mut self, id: &str, usage: &Usage, out: &mut Vec<u8>) {
        self.started = true;
        let mut u = usage_json(usage);
        u["output_tokens"] = json!(usage.output_tokens.max(1));
        write_json(
            out,
            Some("message_start"),
            &json!({
                "type": "message_start",
                "message": {
                    "id": message_id(id),
                    "type": "message",
                    "role": "assistant",
                    "model": self.ctx.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": u,
                }
            }),
        );
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.start("nines", &Usage::default(), out);
        }
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some(index) = self.open_block.take() {
            write_json(
                out,
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    pub fn push(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        match ev {
            StreamEvent::Start { id, usage, .. } => {
                if !self.started {
                    self.start(id, usage, out);
                }
            }
            StreamEvent::TextDelta(text) => {
                self.ensure_started(out);
                let index = match self.open_block {
                    Some(i) => i,
                    None => {
                        let i = self.next_index;
                        self.next_index += 1;
                        self.open_block = Some(i);
                        write_json(
                            out,
                            Some("content_block_start"),
                            &json!({"type": "content_block_start", "index": i,
                                    "content_block": {"type": "text", "text": ""}}),
                        );
                        if !self.pinged {
                            self.pinged = true;
                            write_json(out, Some("ping"), &json!({"type": "ping"}));
                        }
                        i
                    }
                };
                write_json(
                    out,
                    Some("content_block_delta"),
                    &json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "text_delta", "text": text}}),
                );
            }
            StreamEvent::Unsupported(_) => {}
            StreamEvent::Finish { stop_reason, usage } => {
                self.ensure_started(out);
                self.close_block(out);
                // Cumulative, as the API's own message_delta: a client learns usage reported only at the end.
                let u = usage_json(usage);
                write_json(
                    out,
                    Some("message_delta"),
                    &json!({"type": "message_delta",
                            "delta": {"stop_reason": stop_reason_str(stop_reason),
                                      "stop_sequence": stop_sequence_of(stop_reason)},
                            "usage": u}),
                );
                write_json(out, Some("message_stop"), &json!({"type": "message_stop"}));
            }
        }
    }

    /// End the stream with an in-band error event (after the commit point, the only honest way to fail).
    pub fn error(&mut self, kind: ErrorType, message: &str, out: &mut Vec<u8>) {
        write_json(
            out,
            Some("error"),
            &json!({"type": "error", "error": {"type": anthropic_type(kind), "message": message}}),
        );
    }
}
