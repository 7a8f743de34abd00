//! Anthropic Messages streams: message_start, then content blocks (text, thinking, tool_use) each as
//! content_block_start / content_block_delta… / content_block_stop, then message_delta and message_stop (pings
//! anywhere; `error` ends a stream badly), decoded into canonical events and encoded from them.
//!
//! Both directions are state machines fed one event at a time; neither buffers the stream.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    WireUsage, message_id, signature_in, stop_reason_from, stop_reason_str, stop_sequence_of, tool_use_id,
    usage_json,
};
use crate::canonical::{EncodeCtx, StopReason, StreamEvent, Usage};
use crate::error::{ErrorType, anthropic_type};
use crate::json::{str_of, to_text};
use crate::sse::write_json;
use crate::{Dialect, StreamError};

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    delta: MessageDeltaBody,
    #[serde(default)]
    usage: WireUsage,
}
#[derive(Deserialize, Default)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
}

fn parse(event: &str, data: &str) -> Result<Value, StreamError> {
    serde_json::from_str(data).map_err(|e| StreamError::Malformed(format!("{event}: {e}")))
}

fn index_of(v: &Value) -> u64 {
    v.get("index").and_then(Value::as_u64).unwrap_or(0)
}

/// A `content_block_delta` as the fast path reads it (a field of another type fails the read).
mod fast {
    use std::borrow::Cow;

    use serde::Deserialize;

    use crate::canonical::StreamEvent;

    /// A text or thinking delta's event, or `None` for the general way.
    pub(super) fn delta(data: &str) -> Option<StreamEvent> {
        if !data.trim_start().starts_with('{') {
            return None;
        }
        let d = serde_json::from_str::<Event<'_>>(data).ok()?.delta?;
        match d.kind.as_deref() {
            Some("text_delta") => {
                Some(StreamEvent::TextDelta(d.text.map(Cow::into_owned).unwrap_or_default()))
            }
            Some("thinking_delta") => {
                Some(StreamEvent::ThinkingDelta(d.thinking.map(Cow::into_owned).unwrap_or_default()))
            }
            _ => None,
        }
    }

    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(default, borrow)]
        delta: Option<Delta<'a>>,
    }

    #[derive(Deserialize)]
    struct Delta<'a> {
        #[serde(default, rename = "type", borrow)]
        kind: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        text: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        thinking: Option<Cow<'a, str>>,
    }
}

/// Anthropic SSE events → canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    usage: Usage,
    stop_reason: Option<StopReason>,
    done: bool,
    /// Anthropic block index → canonical tool-call index, for tool_use blocks.
    tools: HashMap<u64, u32>,
    next_tool: u32,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one SSE event (its `event:` name and `data:`).
    pub fn push(&mut self, event: &str, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        // The stream's bulk (a token or a few each): text and thinking deltas read as typed, borrowing structs;
        // anything else, or anything they do not take as it is, the general way.
        if event == "content_block_delta"
            && let Some(ev) = fast::delta(data)
        {
            out.push(ev);
            return Ok(());
        }
        self.push_general(event, data, out)
    }

    /// Every event, read as a `Value`: the reference for what the fast path reads.
    fn push_general(
        &mut self,
        event: &str,
        data: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        match event {
            "message_start" => {
                let v = parse(event, data)?;
                let m = v
                    .get("message")
                    .ok_or_else(|| StreamError::Malformed("message_start: no message".into()))?;
                if let Some(u) = m.get("usage") {
                    let wu: WireUsage = serde_json::from_value(u.clone()).unwrap_or_default();
                    wu.apply(&mut self.usage);
                }
                out.push(StreamEvent::Start {
                    id: str_of(m, "id").unwrap_or_default().to_owned(),
                    model: str_of(m, "model").unwrap_or_default().to_owned(),
                    usage: self.usage,
                });
            }
            "content_block_start" => {
                let v = parse(event, data)?;
                let b = v.get("content_block").unwrap_or(&Value::Null);
                match str_of(b, "type").unwrap_or_default() {
                    "text" => {
                        if let Some(t) = str_of(b, "text").filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta(t.to_owned()));
                        }
                    }
                    "thinking" => {
                        if let Some(t) = str_of(b, "thinking").filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::ThinkingDelta(t.to_owned()));
                        }
                    }
                    "tool_use" => {
                        let index = self.next_tool;
                        self.next_tool += 1;
                        self.tools.insert(index_of(&v), index);
                        out.push(StreamEvent::ToolCallStart {
                            index,
                            id: str_of(b, "id").unwrap_or_default().to_owned(),
                            name: str_of(b, "name").unwrap_or_default().to_owned(),
                        });
                        // The API starts tool_use blocks with `input: {}` and streams the arguments; a non-empty
                        // input here is the whole of them.
                        if let Some(input) =
                            b.get("input").filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                        {
                            out.push(StreamEvent::ToolCallArgs { index, json: to_text(input) });
                        }
                    }
                    other => out.push(StreamEvent::Unsupported(other.to_owned())),
                }
            }
            "content_block_delta" => {
                let v = parse(event, data)?;
                let d = v.get("delta").unwrap_or(&Value::Null);
                match str_of(d, "type").unwrap_or_default() {
                    "text_delta" => {
                        out.push(StreamEvent::TextDelta(str_of(d, "text").unwrap_or_default().to_owned()))
                    }
                    "thinking_delta" => out.push(StreamEvent::ThinkingDelta(
                        str_of(d, "thinking").unwrap_or_default().to_owned(),
                    )),
                    "signature_delta" => {
                        let sig = str_of(d, "signature").unwrap_or_default();
                        out.push(StreamEvent::ThinkingSignature(signature_in(sig)));
                    }
                    "input_json_delta" => {
                        let json = str_of(d, "partial_json").unwrap_or_default();
                        match self.tools.get(&index_of(&v)) {
                            Some(&index) if !json.is_empty() => {
                                out.push(StreamEvent::ToolCallArgs { index, json: json.to_owned() })
                            }
                            Some(_) => {}
                            None => {
                                return Err(StreamError::Malformed(
                                    "input_json_delta outside a tool_use".into(),
                                ));
                            }
                        }
                    }
                    other => out.push(StreamEvent::Unsupported(other.to_owned())),
                }
            }
            "message_delta" => {
                let d: MessageDelta = serde_json::from_str(data)
                    .map_err(|e| StreamError::Malformed(format!("{event}: {e}")))?;
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
                let v = parse(event, data)?;
                let e = v.get("error").unwrap_or(&Value::Null);
                return Err(StreamError::Upstream {
                    kind: str_of(e, "type").unwrap_or("api_error").to_owned(),
                    message: str_of(e, "message").unwrap_or_default().to_owned(),
                });
            }
            // ping, content_block_stop, and event types added after this was written.
            _ => {}
        }
        Ok(())
    }

    /// See `Decoder::settle`: `message_delta` gave the stop reason, `message_stop` never came.
    pub fn settle(&mut self, out: &mut Vec<StreamEvent>) -> bool {
        if self.done {
            return true;
        }
        match self.stop_reason.take() {
            Some(stop_reason) => {
                self.done = true;
                out.push(StreamEvent::Finish { stop_reason, usage: self.usage });
                true
            }
            None => false,
        }
    }

    /// The upstream body ended. Anything before `message_stop` is a cut stream.
    pub fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        if self.done { Ok(()) } else { Err(StreamError::Truncated) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    Tool(u32),
}

/// The `delta` of a `content_block_delta` event, as Anthropic writes it (`type` first).
#[derive(serde::Serialize)]
#[serde(tag = "type")]
enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

/// Canonical events → Anthropic SSE bytes.
#[derive(Debug)]
pub struct StreamEncoder {
    ctx: EncodeCtx,
    started: bool,
    /// The open block: its Anthropic index and kind.
    open: Option<(u32, Block)>,
    next_index: u32,
    /// Canonical tool-call index → Anthropic block index.
    tool_blocks: HashMap<u32, u32>,
    pinged: bool,
}

impl StreamEncoder {
    pub fn new(ctx: EncodeCtx) -> Self {
        StreamEncoder {
            ctx,
            started: false,
            open: None,
            next_index: 0,
            tool_blocks: HashMap::new(),
            pinged: false,
        }
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
                    "id": if self.ctx.verbatim_ids { id.to_owned() } else { message_id(id) },
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

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open.take() {
            write_json(
                out,
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    /// Make `kind` the open block (its start made by `block`, only when it opens), closing another; returns its
    /// index.
    fn open(&mut self, kind: Block, block: impl FnOnce() -> Value, out: &mut Vec<u8>) -> u32 {
        if let Some((index, k)) = self.open
            && k == kind
        {
            return index;
        }
        self.ensure_started(out);
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, kind));
        write_json(
            out,
            Some("content_block_start"),
            &json!({"type": "content_block_start", "index": index, "content_block": block()}),
        );
        if !self.pinged {
            self.pinged = true;
            write_json(out, Some("ping"), &json!({"type": "ping"}));
        }
        index
    }

    /// A `content_block_delta` event, written from borrowed fields (the bulk of a stream: no `Value` built).
    fn delta(out: &mut Vec<u8>, index: u32, delta: Delta<'_>) {
        #[derive(serde::Serialize)]
        struct Event<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            index: u32,
            delta: Delta<'a>,
        }
        write_json(out, Some("content_block_delta"), &Event { kind: "content_block_delta", index, delta });
    }

    pub fn push(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        match ev {
            StreamEvent::Start { id, usage, .. } => {
                if !self.started {
                    self.start(id, usage, out);
                }
            }
            StreamEvent::TextDelta(text) => {
                let i = self.open(Block::Text, || json!({"type": "text", "text": ""}), out);
                Self::delta(out, i, Delta::Text { text });
            }
            // Only Anthropic's own reasoning: a client would send it back, and Anthropic verifies signatures.
            StreamEvent::ThinkingDelta(_) | StreamEvent::ThinkingSignature(_)
                if self.ctx.upstream != Some(Dialect::Anthropic) => {}
            // Whatever the context says, a signature another provider minted is never sent.
            StreamEvent::ThinkingSignature(sig) if sig.origin != Dialect::Anthropic => {}
            StreamEvent::ThinkingDelta(text) => {
                let i = self.open(
                    Block::Thinking,
                    || json!({"type": "thinking", "thinking": "", "signature": ""}),
                    out,
                );
                Self::delta(out, i, Delta::Thinking { thinking: text });
            }
            StreamEvent::ThinkingSignature(sig) => {
                let i = self.open(
                    Block::Thinking,
                    || json!({"type": "thinking", "thinking": "", "signature": ""}),
                    out,
                );
                Self::delta(out, i, Delta::Signature { signature: &sig.value });
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                let block = || json!({"type": "tool_use", "id": tool_use_id(id), "name": name, "input": {}});
                let i = self.open(Block::Tool(*index), block, out);
                self.tool_blocks.insert(*index, i);
            }
            StreamEvent::ToolCallArgs { index, json } => {
                let i = match self.tool_blocks.get(index) {
                    Some(&i) => i,
                    None => {
                        // Arguments before their start: open the call under a made-up id rather than lose them.
                        let id = format!("toolu_nines_{index}");
                        let block = || json!({"type": "tool_use", "id": id, "name": "", "input": {}});
                        let i = self.open(Block::Tool(*index), block, out);
                        self.tool_blocks.insert(*index, i);
                        i
                    }
                };
                Self::delta(out, i, Delta::InputJson { partial_json: json });
            }
            StreamEvent::Unsupported(_) => {}
            StreamEvent::Finish { stop_reason, usage } => {
                self.ensure_started(out);
                self.close(out);
                // Cumulative, as the API's own message_delta: a client learns usage reported only at the end.
                write_json(
                    out,
                    Some("message_delta"),
                    &json!({"type": "message_delta",
                            "delta": {"stop_reason": stop_reason_str(stop_reason),
                                      "stop_sequence": stop_sequence_of(stop_reason)},
                            "usage": usage_json(usage)}),
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

#[cfg(test)]
mod fast_tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::*;

    fn field() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => "[ -~]{0,10}".prop_map(Value::String),
            1 => Just(json!("é \"q\" \\ \n ✓")),
            1 => Just(json!("text_delta")),
            1 => Just(json!("thinking_delta")),
            1 => Just(json!("input_json_delta")),
            1 => Just(Value::Null),
            1 => any::<i32>().prop_map(|n| json!(n)),
            1 => Just(json!({})),
        ]
    }

    fn some(keys: &'static [&'static str]) -> BoxedStrategy<Value> {
        proptest::collection::vec(proptest::option::weighted(0.7, field()), keys.len())
            .prop_map(move |vs| {
                Value::Object(
                    keys.iter()
                        .zip(vs)
                        .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), v)))
                        .collect::<Map<_, _>>(),
                )
            })
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// A content_block_delta decodes the same by the fast path as by the general way.
        #[test]
        fn the_fast_path_decodes_deltas_as_the_general_way(
            delta in prop_oneof![4 => some(&["type", "text", "thinking", "partial_json"]), 1 => field()],
            index in field(),
            whole in proptest::option::of(Just("[1]")),
        ) {
            let data = whole.map_or_else(|| json!({"type": "content_block_delta", "index": index, "delta": delta}).to_string(), str::to_owned);
            let (mut fast, mut general) = (StreamDecoder::new(), StreamDecoder::new());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let ra = fast.push("content_block_delta", &data, &mut a).map_err(|e| e.to_string());
            let rb = general.push_general("content_block_delta", &data, &mut b).map_err(|e| e.to_string());
            prop_assert_eq!(ra, rb, "{}", data);
            prop_assert_eq!(a, b, "{}", data);
        }
    }
}
