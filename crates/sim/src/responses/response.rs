//! Rendering an answer as a Response object (`resp_…`, its `output` items, `usage`, and the request fields it echoes)
//! or as its event stream: `response.created`, `response.in_progress`, then per output item
//! `response.output_item.added` … `response.output_item.done` with the item's own events in between (a reasoning
//! summary part and its text deltas; a message's `output_text` part and one delta per word; a function call's
//! arguments in three deltas), then `response.completed` (or `response.incomplete` when `max_output_tokens` cut the
//! text) carrying the whole Response. Every event has `type` and a `sequence_number` counting from 0.
//!
//! Items come in the order reasoning, then the message or the function calls (`call_sim_{name}_{k}`). This module
//! never validates.

use serde_json::{Map, Value, json};

use super::request::Request;
use crate::answer::{self, Finish, Outcome};
use crate::thinking::{self, THOUGHT_TOKENS};
use crate::tools::{self, ToolCall};

/// An answer ready to render, with the ids of its response and items.
pub(super) struct Rendered<'a> {
    /// The simulator's name (call ids, thought text, encrypted content).
    name: &'a str,
    request: &'a Request,
    outcome: Outcome,
    id: String,
    created_at: u64,
    reasoning_id: String,
    message_id: String,
    call_item_ids: Vec<String>,
}

impl<'a> Rendered<'a> {
    pub(super) fn new(name: &'a str, request: &'a Request, outcome: Outcome) -> Self {
        let calls = match &outcome {
            Outcome::Calls { calls, .. } => calls.len(),
            Outcome::Text(_) => 0,
        };
        Self {
            name,
            request,
            outcome,
            id: crate::ids::hex("resp_", 50),
            created_at: crate::ids::unix_now(),
            reasoning_id: crate::ids::hex("rs_", 50),
            message_id: crate::ids::hex("msg_", 50),
            call_item_ids: (0..calls).map(|_| crate::ids::hex("fc_", 50)).collect(),
        }
    }

    /// `max_output_tokens` cut the text.
    fn incomplete(&self) -> bool {
        matches!(&self.outcome, Outcome::Text(answer) if answer.finish == Finish::Length)
    }

    fn usage(&self) -> Value {
        let reasoning = if self.request.reasoning.is_some() { THOUGHT_TOKENS } else { 0 };
        let input = self.outcome.input_tokens();
        let output = self.outcome.output_tokens() + reasoning;
        json!({
            "input_tokens": input,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input + output,
        })
    }

    fn call_id(&self, k: usize) -> String {
        format!("call_sim_{}_{k}", self.name)
    }

    /// The reasoning summary text, when a summary was asked for.
    fn summary(&self) -> Option<String> {
        self.request.reasoning.filter(|r| r.summary).map(|_| thinking::thought(self.name))
    }

    /// The reasoning item (when reasoning was asked for): as first added (empty summary), or done.
    fn reasoning_item(&self, done: bool) -> Option<Value> {
        self.request.reasoning?;
        let summary: Vec<Value> = match self.summary() {
            Some(text) if done => vec![json!({"type": "summary_text", "text": text})],
            _ => Vec::new(),
        };
        let mut item = Map::new();
        item.insert("id".into(), json!(self.reasoning_id));
        item.insert("type".into(), json!("reasoning"));
        item.insert("summary".into(), Value::Array(summary));
        if done && self.request.encrypted_reasoning {
            item.insert("encrypted_content".into(), json!(thinking::encrypted_content(self.name)));
        }
        Some(Value::Object(item))
    }

    /// The message item: as first added (no content yet), or done with `text`.
    fn message_item(&self, text: Option<&str>) -> Value {
        let (status, content) = match text {
            None => ("in_progress", Vec::new()),
            Some(text) => {
                (if self.incomplete() { "incomplete" } else { "completed" }, vec![output_text(text)])
            }
        };
        json!({"id": self.message_id, "type": "message", "status": status, "content": content, "role": "assistant"})
    }

    /// Function call item `k`: as first added (empty arguments), or done.
    fn call_item(&self, k: usize, call: &ToolCall, done: bool) -> Value {
        json!({
            "id": self.call_item_ids.get(k).cloned().unwrap_or_default(),
            "type": "function_call",
            "status": if done { "completed" } else { "in_progress" },
            "arguments": if done { call.arguments.as_str() } else { "" },
            "call_id": self.call_id(k),
            "name": call.name,
        })
    }

    /// The output items of the finished response.
    fn output(&self) -> Vec<Value> {
        let mut output: Vec<Value> = self.reasoning_item(true).into_iter().collect();
        match &self.outcome {
            Outcome::Text(answer) => output.push(self.message_item(Some(&answer.text))),
            Outcome::Calls { calls, .. } => {
                output.extend(calls.iter().enumerate().map(|(k, call)| self.call_item(k, call, true)));
            }
        }
        output
    }

    /// The Response object in `status`, with these output items and usage.
    fn object(&self, status: &str, output: Vec<Value>, usage: Value) -> Value {
        let finished = status != "in_progress";
        let incomplete_details =
            if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null };
        let mut object = self.request.echo.clone();
        object.insert("id".into(), json!(self.id));
        object.insert("object".into(), json!("response"));
        object.insert("created_at".into(), json!(self.created_at));
        object.insert("status".into(), json!(status));
        object.insert(
            "completed_at".into(),
            if finished { json!(crate::ids::unix_now().max(self.created_at)) } else { Value::Null },
        );
        object.insert("error".into(), Value::Null);
        object.insert("incomplete_details".into(), incomplete_details);
        object.insert("model".into(), json!(self.request.model));
        object.insert("output".into(), Value::Array(output));
        object.insert("usage".into(), usage);
        Value::Object(object)
    }

    fn final_status(&self) -> &'static str {
        if self.incomplete() { "incomplete" } else { "completed" }
    }

    /// The Response object of a non-streaming answer.
    pub(super) fn response(&self) -> Value {
        self.object(self.final_status(), self.output(), self.usage())
    }

    /// The events of a streaming answer.
    pub(super) fn stream(&self) -> Vec<String> {
        let mut events = Events { out: Vec::new(), obfuscation: self.request.obfuscation };
        let started = self.object("in_progress", Vec::new(), Value::Null);
        events.push("response.created", json!({"response": started}));
        events.push("response.in_progress", json!({"response": started}));
        let mut index = 0;
        if let (Some(added), Some(done)) = (self.reasoning_item(false), self.reasoning_item(true)) {
            events.push("response.output_item.added", json!({"output_index": index, "item": added}));
            if let Some(text) = self.summary() {
                let at = json!({"item_id": self.reasoning_id, "output_index": index, "summary_index": 0});
                let part = |text: &str| json!({"type": "summary_text", "text": text});
                events.push("response.reasoning_summary_part.added", with(&at, "part", part("")));
                for piece in answer::pieces(&text) {
                    events.delta("response.reasoning_summary_text.delta", &at, piece, false);
                }
                events.push("response.reasoning_summary_text.done", with(&at, "text", json!(text)));
                events.push("response.reasoning_summary_part.done", with(&at, "part", part(&text)));
            }
            events.push("response.output_item.done", json!({"output_index": index, "item": done}));
            index += 1;
        }
        match &self.outcome {
            Outcome::Text(answer) => {
                events.push(
                    "response.output_item.added",
                    json!({"output_index": index, "item": self.message_item(None)}),
                );
                let at = json!({"item_id": self.message_id, "output_index": index, "content_index": 0});
                events.push("response.content_part.added", with(&at, "part", output_text("")));
                for piece in answer.deltas() {
                    events.delta("response.output_text.delta", &at, piece, true);
                }
                let done = with(&with(&at, "text", json!(answer.text)), "logprobs", json!([]));
                events.push("response.output_text.done", done);
                events.push("response.content_part.done", with(&at, "part", output_text(&answer.text)));
                let item = self.message_item(Some(&answer.text));
                events.push("response.output_item.done", json!({"output_index": index, "item": item}));
            }
            Outcome::Calls { calls, .. } => {
                for (k, call) in calls.iter().enumerate() {
                    let output_index = index + k;
                    let added = self.call_item(k, call, false);
                    events.push(
                        "response.output_item.added",
                        json!({"output_index": output_index, "item": added}),
                    );
                    let item_id = self.call_item_ids.get(k).cloned().unwrap_or_default();
                    let at = json!({"item_id": item_id, "output_index": output_index});
                    for piece in tools::thirds(&call.arguments) {
                        events.delta("response.function_call_arguments.delta", &at, piece, false);
                    }
                    let done = with(&with(&at, "arguments", json!(call.arguments)), "name", json!(call.name));
                    events.push("response.function_call_arguments.done", done);
                    let item = self.call_item(k, call, true);
                    events.push(
                        "response.output_item.done",
                        json!({"output_index": output_index, "item": item}),
                    );
                }
            }
        }
        let status = self.final_status();
        let finished = self.object(status, self.output(), self.usage());
        events.push(&format!("response.{status}"), json!({"response": finished}));
        events.out
    }

    /// The output index of the message or of the first function call: after the reasoning item, if any.
    fn answer_index(&self) -> usize {
        usize::from(self.request.reasoning.is_some())
    }

    /// An `response.output_text.delta` event whose data is cut in half (not JSON): what a `Malformed` fault sends.
    pub(super) fn malformed(&self) -> String {
        let text = match &self.outcome {
            Outcome::Text(answer) => answer.deltas().first().copied().unwrap_or_default().to_owned(),
            Outcome::Calls { .. } => String::new(),
        };
        let kind = "response.output_text.delta";
        let data = json!({"type": kind, "item_id": self.message_id, "output_index": self.answer_index(),
            "content_index": 0, "delta": text, "logprobs": []});
        format!("event: {kind}\ndata: {}\n\n", crate::json::half(&data.to_string()))
    }

    /// The `response.failed` event (number `at` of the stream) an `InBandError` fault ends a stream with: the
    /// Response `failed`, with `error: {code, message}` (`rate_limit_exceeded` for 429, `server_error` otherwise).
    pub(super) fn failed(&self, status: u16, at: usize) -> String {
        let code = if status == 429 { "rate_limit_exceeded" } else { "server_error" };
        let message = crate::openai::status_error(crate::error::fault_status(status)).message;
        let mut response = self.object("failed", Vec::new(), Value::Null);
        if let Some(object) = response.as_object_mut() {
            object.insert("error".into(), json!({"code": code, "message": message}));
        }
        let kind = "response.failed";
        let data = json!({"type": kind, "sequence_number": at, "response": response});
        format!("event: {kind}\ndata: {data}\n\n")
    }
}

/// An `output_text` content part.
fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

/// `fields` (an object) with `key` set to `value`.
fn with(fields: &Value, key: &str, value: Value) -> Value {
    let mut fields = fields.as_object().cloned().unwrap_or_default();
    fields.insert(key.into(), value);
    Value::Object(fields)
}

/// The events of one stream, numbered as they are pushed.
struct Events {
    out: Vec<String>,
    obfuscation: bool,
}

impl Events {
    /// Frame an event of type `kind` with these fields (an object), its `type` and its `sequence_number`.
    fn push(&mut self, kind: &str, fields: Value) {
        let mut data = fields.as_object().cloned().unwrap_or_default();
        data.insert("type".into(), json!(kind));
        data.insert("sequence_number".into(), json!(self.out.len()));
        self.out.push(format!("event: {kind}\ndata: {}\n\n", Value::Object(data)));
    }

    /// A delta event at `at` (an object of indexes), with `logprobs: []` for output text and, unless turned off,
    /// the `obfuscation` padding the API adds to deltas.
    fn delta(&mut self, kind: &str, at: &Value, delta: &str, logprobs: bool) {
        let mut fields = with(at, "delta", json!(delta));
        if logprobs {
            fields = with(&fields, "logprobs", json!([]));
        }
        if self.obfuscation {
            fields = with(&fields, "obfuscation", json!(obfuscation(delta)));
        }
        self.push(kind, fields);
    }
}

/// Padding that brings a delta's length up to a multiple of 16 characters (at least one), as the API's random
/// `obfuscation` strings do to hide token lengths; the simulator's is deterministic.
fn obfuscation(delta: &str) -> String {
    const FILL: &[u8] = b"nines0sim1pad2xyz3";
    let len = 16 - delta.chars().count() % 16;
    FILL.iter().cycle().take(len).map(|&b| char::from(b)).collect()
}
