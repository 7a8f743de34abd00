//! OpenAI Responses streams: typed events (`event: response.created` / `data: {"type":"response.created",
//! "sequence_number":0,…}`) that open output items (messages, reasoning, function calls), stream their text,
//! summaries and arguments, close them, and end with `response.completed`, `response.incomplete` or
//! `response.failed` (an `error` event may come anywhere). There is no `[DONE]` marker.
//!
//! Both directions are state machines fed one event at a time. The encoder keeps the text and arguments of the
//! answer so far, since `*.done` events and the final `response.completed` repeat them whole; [`Output`] is shared
//! with `encode_response`, so a stream's final Response and a whole answer of the same content are the same JSON.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::response::items_to_parts;
use super::{
    encrypted_content_of, error_code, item_id, response_id, response_object, signature_of, status_of,
    stop_reason_from, usage_from, usage_json,
};
use crate::canonical::{EncodeCtx, Part, Signature, StreamEvent, Usage};
use crate::error::ErrorType;
use crate::json::{arr_of, str_of};
use crate::sse::write_json;
use crate::{Dialect, StreamError};

// -------------------------------------------------------------------------------------------------------------
// Decoding.

/// Responses events → canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    done: bool,
    /// Whether any content event came (else the final Response's `output` is decoded whole).
    content: bool,
    /// Function calls by output index and by item id → canonical tool index.
    tools_by_index: HashMap<u64, u32>,
    tools_by_item: HashMap<String, u32>,
    next_tool: u32,
    /// Tool calls whose arguments arrived (in pieces or whole).
    args_seen: HashSet<u32>,
    /// Output indexes whose text arrived as deltas.
    text_seen: HashSet<u64>,
    /// Output index → the summary index of the last reasoning text given for it.
    reasoning_seen: HashMap<u64, u64>,
    refusal: bool,
}

fn malformed(what: &str, e: impl std::fmt::Display) -> StreamError {
    StreamError::Malformed(format!("{what}: {e}"))
}

fn index_of(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn start(&mut self, response: Option<&Value>, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            let r = response.unwrap_or(&Value::Null);
            out.push(StreamEvent::Start {
                id: str_of(r, "id").unwrap_or_default().to_owned(),
                model: str_of(r, "model").unwrap_or_default().to_owned(),
                usage: Usage::default(),
            });
        }
    }

    fn content_event(&mut self, ev: StreamEvent, out: &mut Vec<StreamEvent>) {
        self.start(None, out);
        self.content = true;
        out.push(ev);
    }

    fn tool_start(&mut self, output_index: u64, item: &Value, out: &mut Vec<StreamEvent>) -> u32 {
        let index = self.next_tool;
        self.next_tool = self.next_tool.saturating_add(1);
        self.tools_by_index.insert(output_index, index);
        if let Some(id) = str_of(item, "id") {
            self.tools_by_item.insert(id.to_owned(), index);
        }
        let id = str_of(item, "call_id").or_else(|| str_of(item, "id")).map(str::to_owned);
        self.content_event(
            StreamEvent::ToolCallStart {
                index,
                id: id.unwrap_or_else(|| format!("call_{index}")),
                name: str_of(item, "name").unwrap_or_default().to_owned(),
            },
            out,
        );
        index
    }

    fn tool_of(&self, v: &Value) -> Option<u32> {
        str_of(v, "item_id")
            .and_then(|id| self.tools_by_item.get(id))
            .or_else(|| {
                v.get("output_index").and_then(Value::as_u64).and_then(|i| self.tools_by_index.get(&i))
            })
            .copied()
    }

    fn args(&mut self, index: u32, json: &str, out: &mut Vec<StreamEvent>) {
        if !json.is_empty() {
            self.args_seen.insert(index);
            self.content_event(StreamEvent::ToolCallArgs { index, json: json.to_owned() }, out);
        }
    }

    fn reasoning(&mut self, output_index: u64, summary_index: u64, text: &str, out: &mut Vec<StreamEvent>) {
        if text.is_empty() {
            return;
        }
        // Summary parts are joined by a blank line, as `decode_response` joins them.
        if self.reasoning_seen.get(&output_index).is_some_and(|&s| s != summary_index) {
            out.push(StreamEvent::ThinkingDelta("\n\n".into()));
        }
        self.reasoning_seen.insert(output_index, summary_index);
        self.content_event(StreamEvent::ThinkingDelta(text.to_owned()), out);
    }

    /// Feed one SSE event: its `event:` name (the data's `type` wins when both are given) and its `data:`.
    pub fn push(&mut self, event: &str, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        let v: Value = serde_json::from_str(data).map_err(|e| malformed(event, e))?;
        if !v.is_object() {
            return Err(StreamError::Malformed(format!("{event}: an event must be a JSON object")));
        }
        let kind = str_of(&v, "type").unwrap_or(event);
        let output_index = index_of(&v, "output_index");
        match kind {
            "response.created" | "response.in_progress" | "response.queued" => {
                self.start(v.get("response"), out)
            }
            "response.output_item.added" => {
                let item = v.get("item").unwrap_or(&Value::Null);
                match str_of(item, "type").unwrap_or_default() {
                    "function_call" => {
                        let index = self.tool_start(output_index, item, out);
                        let args = str_of(item, "arguments").unwrap_or_default().to_owned();
                        self.args(index, &args, out);
                    }
                    "message" | "reasoning" => self.start(None, out),
                    other => self.content_event(StreamEvent::Unsupported(other.to_owned()), out),
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                if kind == "response.refusal.delta" {
                    self.refusal = true;
                }
                let delta = str_of(&v, "delta").unwrap_or_default();
                if !delta.is_empty() {
                    self.text_seen.insert(output_index);
                    self.content_event(StreamEvent::TextDelta(delta.to_owned()), out);
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                let summary_index =
                    v.get("summary_index").or_else(|| v.get("content_index")).and_then(Value::as_u64);
                let delta = str_of(&v, "delta").unwrap_or_default().to_owned();
                self.reasoning(output_index, summary_index.unwrap_or(0), &delta, out);
            }
            "response.function_call_arguments.delta" => {
                let Some(index) = self.tool_of(&v) else {
                    return Err(StreamError::Malformed(format!("{kind} for an unknown function call")));
                };
                let delta = str_of(&v, "delta").unwrap_or_default().to_owned();
                self.args(index, &delta, out);
            }
            "response.function_call_arguments.done" => {
                // Servers that send no deltas give the arguments whole here.
                if let Some(index) = self.tool_of(&v).filter(|i| !self.args_seen.contains(i)) {
                    let args = str_of(&v, "arguments").unwrap_or_default().to_owned();
                    self.args(index, &args, out);
                }
            }
            "response.output_item.done" => {
                self.item_done(output_index, v.get("item").unwrap_or(&Value::Null), out)
            }
            "response.completed" | "response.incomplete" => {
                let r = v.get("response").unwrap_or(&Value::Null);
                self.start(Some(r), out);
                if !self.content {
                    // Nothing came in pieces: the final Response is the whole answer.
                    let (parts, refusal) = items_to_parts(arr_of(r, "output"));
                    self.refusal |= refusal;
                    for part in parts {
                        self.replay(part, out);
                    }
                }
                let status = str_of(r, "status").or(Some(if kind == "response.incomplete" {
                    "incomplete"
                } else {
                    "completed"
                }));
                let reason = r.get("incomplete_details").and_then(|d| str_of(d, "reason"));
                let stop_reason = stop_reason_from(status, reason, self.next_tool > 0, self.refusal);
                self.done = true;
                out.push(StreamEvent::Finish { stop_reason, usage: usage_from(r.get("usage")) });
            }
            "response.failed" => {
                let e = v.get("response").and_then(|r| r.get("error")).unwrap_or(&Value::Null);
                return Err(StreamError::Upstream {
                    kind: str_of(e, "code").unwrap_or("server_error").to_owned(),
                    message: str_of(e, "message").unwrap_or("the response failed").to_owned(),
                });
            }
            "error" => {
                // The reference's `{type, code, message, param}`, or an `{error: {…}}` object as some servers send.
                let nested = v.get("error").filter(|e| e.is_object());
                let inner = |k: &str| nested.and_then(|e| str_of(e, k));
                let kind = str_of(&v, "code").or_else(|| inner("code")).or_else(|| inner("type"));
                return Err(StreamError::Upstream {
                    kind: kind.unwrap_or("error").to_owned(),
                    message: str_of(&v, "message")
                        .or_else(|| inner("message"))
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
            // in_progress, content_part.*, output_text.done, reasoning_summary_part.done, *.done, annotations…
            _ => {}
        }
        Ok(())
    }

    /// An item is complete: emit what did not come as deltas, and a reasoning item's signature.
    fn item_done(&mut self, output_index: u64, item: &Value, out: &mut Vec<StreamEvent>) {
        match str_of(item, "type").unwrap_or_default() {
            "reasoning" => {
                if !self.reasoning_seen.contains_key(&output_index) {
                    let texts = arr_of(item, "summary").iter().filter_map(|s| str_of(s, "text"));
                    for (i, text) in texts.enumerate() {
                        let i = u64::try_from(i).unwrap_or(u64::MAX);
                        self.reasoning(output_index, i, text, out);
                    }
                }
                if let Some(sig) = signature_of(str_of(item, "id"), str_of(item, "encrypted_content")) {
                    self.content_event(StreamEvent::ThinkingSignature(sig), out);
                }
            }
            "message" if !self.text_seen.contains(&output_index) => {
                for c in arr_of(item, "content") {
                    let text = match str_of(c, "type") {
                        Some("output_text") => str_of(c, "text"),
                        Some("refusal") => {
                            self.refusal = true;
                            str_of(c, "refusal")
                        }
                        _ => None,
                    };
                    if let Some(t) = text.filter(|t| !t.is_empty()) {
                        self.content_event(StreamEvent::TextDelta(t.to_owned()), out);
                    }
                }
            }
            "function_call" => {
                let index = match self.tools_by_index.get(&output_index) {
                    Some(&i) => i,
                    None => self.tool_start(output_index, item, out),
                };
                if !self.args_seen.contains(&index) {
                    let args = str_of(item, "arguments").unwrap_or_default().to_owned();
                    self.args(index, &args, out);
                }
            }
            _ => {}
        }
    }

    /// Emit a part of a final Response that was not streamed in pieces.
    fn replay(&mut self, part: Part, out: &mut Vec<StreamEvent>) {
        match part {
            Part::Text(t) if !t.is_empty() => self.content_event(StreamEvent::TextDelta(t), out),
            Part::Thinking(t) => {
                if !t.text.is_empty() {
                    self.content_event(StreamEvent::ThinkingDelta(t.text), out);
                }
                if let Some(sig) = t.signature {
                    self.content_event(StreamEvent::ThinkingSignature(sig), out);
                }
            }
            Part::ToolCall(c) => {
                let index = self.next_tool;
                self.next_tool = self.next_tool.saturating_add(1);
                self.content_event(StreamEvent::ToolCallStart { index, id: c.id, name: c.name }, out);
                self.args(index, &c.arguments, out);
            }
            Part::Unsupported(kind) => self.content_event(StreamEvent::Unsupported(kind), out),
            Part::Text(_) | Part::Image(_) | Part::ToolResult(_) => {}
        }
    }

    /// The upstream body ended. Anything before `response.completed` or `response.incomplete` is a cut stream.
    pub fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        if self.done { Ok(()) } else { Err(StreamError::Truncated) }
    }
}

// -------------------------------------------------------------------------------------------------------------
// The output items of an answer, as they are built.

#[derive(Debug)]
enum Kind {
    Message { text: String },
    Reasoning { text: String, encrypted_content: Option<String> },
    Call { call_id: String, name: String, arguments: String },
}

#[derive(Debug)]
struct Item {
    id: String,
    kind: Kind,
    /// `None` while open; the status it was closed with.
    status: Option<&'static str>,
}

impl Item {
    fn json(&self) -> Value {
        let status = self.status.unwrap_or("in_progress");
        match &self.kind {
            Kind::Message { text } => json!({
                "id": self.id, "type": "message", "status": status, "role": "assistant",
                "content": [output_text(text)],
            }),
            Kind::Reasoning { text, encrypted_content } => {
                let mut item =
                    json!({"id": self.id, "type": "reasoning", "status": status, "summary": summary(text)});
                if let Some(enc) = encrypted_content {
                    item["encrypted_content"] = json!(enc);
                }
                item
            }
            Kind::Call { call_id, name, arguments } => json!({
                "id": self.id, "type": "function_call", "status": status, "call_id": call_id, "name": name,
                "arguments": arguments,
            }),
        }
    }
}

fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

fn summary(text: &str) -> Value {
    if text.is_empty() { json!([]) } else { json!([{"type": "summary_text", "text": text}]) }
}

/// The output items of one answer, and (when `record` is set) the Responses events that build them, without
/// `sequence_number`. Text, reasoning and tool calls each go to an item of their kind: consecutive text to one
/// message, consecutive reasoning to one reasoning item (closed by its signature), each tool call to its own item.
/// Any new item closes the open message or reasoning item; function calls stay open until the answer ends, so
/// arguments that arrive late (parallel calls interleave) are never lost.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) response_id: String,
    /// Ids the client already knows, by output index (see `EncodeCtx::item_ids`).
    given: Vec<String>,
    items: Vec<Item>,
    /// The open message or reasoning item.
    open: Option<usize>,
    /// Canonical tool index → output index, for every call started.
    calls: HashMap<u32, usize>,
    record: bool,
    pub(crate) events: Vec<Value>,
}

impl Output {
    pub(crate) fn new(response_id: String, record: bool) -> Self {
        Output {
            response_id,
            given: Vec::new(),
            items: Vec::new(),
            open: None,
            calls: HashMap::new(),
            record,
            events: Vec::new(),
        }
    }

    fn event(&mut self, ev: Value) {
        if self.record {
            self.events.push(ev);
        }
    }

    fn close(&mut self, index: usize, status: &'static str) {
        let Some(item) = self.items.get_mut(index) else { return };
        if item.status.is_some() {
            return;
        }
        item.status = Some(status);
        let (id, idx) = (item.id.clone(), index);
        let done_item = item.json();
        let mut evs = Vec::new();
        match &item.kind {
            Kind::Message { text } => {
                evs.push(json!({"type": "response.output_text.done", "item_id": id, "output_index": idx,
                                "content_index": 0, "text": text, "logprobs": []}));
                evs.push(json!({"type": "response.content_part.done", "item_id": id, "output_index": idx,
                                "content_index": 0, "part": output_text(text)}));
            }
            Kind::Reasoning { text, .. } if !text.is_empty() => {
                evs.push(json!({"type": "response.reasoning_summary_text.done", "item_id": id,
                                "output_index": idx, "summary_index": 0, "text": text}));
                evs.push(json!({"type": "response.reasoning_summary_part.done", "item_id": id,
                                "output_index": idx, "summary_index": 0,
                                "part": {"type": "summary_text", "text": text}}));
            }
            Kind::Reasoning { .. } => {}
            Kind::Call { name, arguments, .. } => {
                evs.push(json!({"type": "response.function_call_arguments.done", "item_id": id,
                                "output_index": idx, "name": name, "arguments": arguments}));
            }
        }
        evs.push(json!({"type": "response.output_item.done", "output_index": idx, "item": done_item}));
        for ev in evs {
            self.event(ev);
        }
    }

    fn close_open(&mut self) {
        if let Some(i) = self.open.take() {
            self.close(i, "completed");
        }
    }

    /// Close every open item, with `status` (`incomplete` when the answer was cut).
    pub(crate) fn close_all(&mut self, status: &'static str) {
        for i in 0..self.items.len() {
            self.close(i, status);
        }
        self.open = None;
    }

    fn add(&mut self, prefix: &str, kind: Kind) -> usize {
        let index = self.items.len();
        let id = self
            .given
            .get(index)
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| item_id(prefix, index, &self.response_id));
        let item = Item { id, kind, status: None };
        let added = item.json();
        self.items.push(item);
        self.event(json!({"type": "response.output_item.added", "output_index": index, "item": added}));
        index
    }

    fn open_kind(&mut self, message: bool) -> usize {
        if let Some(i) = self.open {
            let same = match self.items.get(i).map(|it| &it.kind) {
                Some(Kind::Message { .. }) => message,
                Some(Kind::Reasoning { .. }) => !message,
                _ => false,
            };
            if same {
                return i;
            }
        }
        self.close_open();
        let index = if message {
            let i = self.add("msg", Kind::Message { text: String::new() });
            let id = self.items.get(i).map(|it| it.id.clone()).unwrap_or_default();
            self.event(json!({"type": "response.content_part.added", "item_id": id, "output_index": i,
                              "content_index": 0, "part": output_text("")}));
            i
        } else {
            self.add("rs", Kind::Reasoning { text: String::new(), encrypted_content: None })
        };
        self.open = Some(index);
        index
    }

    pub(crate) fn text(&mut self, delta: &str) {
        if delta.is_empty() {
            return;
        }
        let i = self.open_kind(true);
        if let Some(Item { id, kind: Kind::Message { text }, .. }) = self.items.get_mut(i) {
            text.push_str(delta);
            let id = id.clone();
            self.event(json!({"type": "response.output_text.delta", "item_id": id, "output_index": i,
                              "content_index": 0, "delta": delta, "logprobs": []}));
        }
    }

    pub(crate) fn thinking(&mut self, delta: &str) {
        if delta.is_empty() {
            return;
        }
        let i = self.open_kind(false);
        if let Some(Item { id, kind: Kind::Reasoning { text, .. }, .. }) = self.items.get_mut(i) {
            let first = text.is_empty();
            text.push_str(delta);
            let id = id.clone();
            if first {
                self.event(json!({"type": "response.reasoning_summary_part.added", "item_id": id,
                                  "output_index": i, "summary_index": 0,
                                  "part": {"type": "summary_text", "text": ""}}));
            }
            self.event(json!({"type": "response.reasoning_summary_text.delta", "item_id": id,
                              "output_index": i, "summary_index": 0, "delta": delta}));
        }
    }

    /// A Responses provider's signature ends the reasoning item it belongs to (opening an empty one when none is
    /// open: reasoning without a summary). Other providers' signatures are never shown.
    pub(crate) fn signature(&mut self, sig: &Signature) {
        if sig.origin != Dialect::OpenAiResponses {
            return;
        }
        let i = self.open_kind(false);
        if let Some(Item { kind: Kind::Reasoning { encrypted_content, .. }, .. }) = self.items.get_mut(i) {
            *encrypted_content = encrypted_content_of(sig);
        }
        self.close_open();
    }

    pub(crate) fn tool_start(&mut self, index: u32, id: &str, name: &str) {
        self.close_open();
        let kind = Kind::Call { call_id: id.to_owned(), name: name.to_owned(), arguments: String::new() };
        let i = self.add("fc", kind);
        self.calls.insert(index, i);
    }

    pub(crate) fn tool_args(&mut self, index: u32, json: &str) {
        let i = match self.calls.get(&index) {
            Some(&i) => i,
            None => {
                // Arguments before their start: open the call under a made-up id rather than lose them.
                self.tool_start(index, &format!("call_{index}"), "");
                self.items.len().saturating_sub(1)
            }
        };
        if json.is_empty() {
            return;
        }
        if let Some(Item { id, kind: Kind::Call { arguments, .. }, status: None }) = self.items.get_mut(i) {
            arguments.push_str(json);
            let id = id.clone();
            self.event(json!({"type": "response.function_call_arguments.delta", "item_id": id,
                              "output_index": i, "delta": json}));
        }
    }

    pub(crate) fn items_json(&self) -> Vec<Value> {
        self.items.iter().map(Item::json).collect()
    }
}

// -------------------------------------------------------------------------------------------------------------
// Encoding.

/// Canonical events → Responses SSE bytes, `sequence_number` counting every event from 0.
#[derive(Debug)]
pub struct StreamEncoder {
    ctx: EncodeCtx,
    seq: u64,
    output: Option<Output>,
    /// A terminal event was written: nothing follows it.
    ended: bool,
}

impl StreamEncoder {
    pub fn new(ctx: EncodeCtx) -> Self {
        StreamEncoder { ctx, seq: 0, output: None, ended: false }
    }

    fn emit(&mut self, mut ev: Value, out: &mut Vec<u8>) {
        let kind = str_of(&ev, "type").unwrap_or("error").to_owned();
        if let Some(o) = ev.as_object_mut() {
            o.insert("sequence_number".into(), json!(self.seq));
        }
        self.seq = self.seq.saturating_add(1);
        write_json(out, Some(&kind), &ev);
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        let events = self.output.as_mut().map(|o| std::mem::take(&mut o.events)).unwrap_or_default();
        for ev in events {
            self.emit(ev, out);
        }
    }

    fn response(&self, status: &str, incomplete: Value, usage: Value, error: Value) -> Value {
        let (id, items) = match &self.output {
            Some(o) => (o.response_id.as_str(), o.items_json()),
            None => ("resp_nines", Vec::new()),
        };
        response_object(id, &self.ctx, status, incomplete, items, usage, error)
    }

    fn start(&mut self, id: &str, out: &mut Vec<u8>) {
        let mut output = Output::new(response_id(&self.ctx, id), true);
        output.given = self.ctx.item_ids.clone();
        self.output = Some(output);
        for kind in ["response.created", "response.in_progress"] {
            let r = self.response("in_progress", Value::Null, Value::Null, Value::Null);
            self.emit(json!({"type": kind, "response": r}), out);
        }
    }

    /// The output being built, starting the stream first if no `Start` came.
    fn output(&mut self, out: &mut Vec<u8>) -> Option<&mut Output> {
        if self.output.is_none() {
            self.start("nines", out);
        }
        self.output.as_mut()
    }

    /// Whether reasoning text is shown: not when it comes from a provider that signs its reasoning (Anthropic,
    /// Gemini), whose signature a Responses client could never send back.
    fn shows_reasoning(&self) -> bool {
        !matches!(self.ctx.upstream, Some(Dialect::Anthropic) | Some(Dialect::Gemini))
    }

    pub fn push(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        match ev {
            StreamEvent::Start { id, .. } => {
                if self.output.is_none() {
                    self.start(id, out);
                }
            }
            StreamEvent::TextDelta(text) => {
                if let Some(o) = self.output(out) {
                    o.text(text);
                }
            }
            StreamEvent::ThinkingDelta(text) => {
                if self.shows_reasoning()
                    && let Some(o) = self.output(out)
                {
                    o.thinking(text);
                }
            }
            StreamEvent::ThinkingSignature(sig) => {
                if sig.origin == Dialect::OpenAiResponses
                    && let Some(o) = self.output(out)
                {
                    o.signature(sig);
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                if let Some(o) = self.output(out) {
                    o.tool_start(*index, id, name);
                }
            }
            StreamEvent::ToolCallArgs { index, json } => {
                if let Some(o) = self.output(out) {
                    o.tool_args(*index, json);
                }
            }
            StreamEvent::Unsupported(_) => {}
            StreamEvent::Finish { stop_reason, usage } => {
                let (status, incomplete) = status_of(stop_reason);
                if let Some(o) = self.output(out) {
                    o.close_all(status);
                }
                self.drain(out);
                let kind = if status == "completed" { "response.completed" } else { "response.incomplete" };
                let r = self.response(status, incomplete, usage_json(usage), Value::Null);
                self.emit(json!({"type": kind, "response": r}), out);
                self.ended = true;
            }
        }
        self.drain(out);
    }

    /// End the stream as failed: `response.failed` (the terminal event the reference defines, its Response with
    /// status `failed` and `error: {code, message}`), then an `error` event. The openai SDKs raise an `APIError`
    /// only for an event whose data has a top-level `error` object (`_streaming.py`: `data.get("error")`); neither
    /// `response.failed` nor the documented `error` event (`{type, code, message, param}`) has one, so the `error`
    /// event carries both forms and the SDKs raise with its message.
    pub fn error(&mut self, kind: ErrorType, message: &str, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let _ = self.output(out);
        self.drain(out);
        let code = error_code(kind);
        let r = self.response("failed", Value::Null, Value::Null, json!({"code": code, "message": message}));
        self.emit(json!({"type": "response.failed", "response": r}), out);
        let body = crate::ErrorShape { status: kind.http_status(), kind, message, param: None }
            .body(Dialect::OpenAiResponses);
        let mut ev = json!({"type": "error", "code": code, "message": message, "param": null});
        if let Some(e) = body.get("error") {
            ev["error"] = e.clone();
        }
        self.emit(ev, out);
        self.ended = true;
    }
}
