//! Rendering an answer as a Messages API `message` object or as its published event stream: `message_start`,
//! then per content block `content_block_start`, deltas (`thinking_delta` + `signature_delta`, `text_delta`, or
//! `input_json_delta` in three pieces), `content_block_stop`, then `message_delta` and `message_stop`; one `ping`
//! after the first block starts (after `message_start` when there is no block).
//!
//! Blocks come in the order thinking, then text or tool uses (`toolu_sim_{name}_{k}`). An empty text (a stop
//! sequence at the very start, a continuation with nothing left to say) has no block at all, as the API answers
//! `content: []` when the model ends its turn at once. This module never validates.

use serde_json::{Value, json};

use super::request::Thinking;
use crate::answer::{Finish, Outcome};
use crate::thinking::{self, THOUGHT_TOKENS};
use crate::tools;

/// An answer ready to render.
pub(super) struct Rendered<'a> {
    /// The simulator's name (ids and signatures).
    pub name: &'a str,
    pub model: &'a str,
    pub thinking: Thinking,
    pub outcome: Outcome,
}

impl Rendered<'_> {
    fn stop_reason(&self) -> (&'static str, Value) {
        match &self.outcome {
            Outcome::Calls { .. } => ("tool_use", Value::Null),
            Outcome::Text(answer) => match &answer.finish {
                Finish::Natural => ("end_turn", Value::Null),
                Finish::Length => ("max_tokens", Value::Null),
                Finish::StopSequence(seq) => ("stop_sequence", Value::String(seq.clone())),
            },
        }
    }

    /// The thinking text shown, when there is a thinking block.
    fn thought(&self) -> Option<String> {
        match self.thinking {
            Thinking::Off => None,
            Thinking::Shown => Some(thinking::thought(self.name)),
            Thinking::Omitted => Some(String::new()),
        }
    }

    /// Output tokens: the answer's plus the thought's.
    fn output_tokens(&self) -> u64 {
        let thought = if self.thinking == Thinking::Off { 0 } else { THOUGHT_TOKENS };
        self.outcome.output_tokens() + thought
    }

    fn tool_use_id(&self, k: usize) -> String {
        format!("toolu_sim_{}_{k}", self.name)
    }

    /// The `message` object of a non-streaming answer.
    pub(super) fn message(&self) -> Value {
        let (reason, sequence) = self.stop_reason();
        let mut content = Vec::new();
        if let Some(thought) = self.thought() {
            content.push(
                json!({"type": "thinking", "thinking": thought, "signature": thinking::signature(self.name)}),
            );
        }
        match &self.outcome {
            Outcome::Text(answer) if answer.text.is_empty() => {}
            Outcome::Text(answer) => content.push(json!({"type": "text", "text": answer.text})),
            Outcome::Calls { calls, .. } => {
                for (k, call) in calls.iter().enumerate() {
                    content.push(
                        json!({"type": "tool_use", "id": self.tool_use_id(k), "name": call.name, "input": call.input}),
                    );
                }
            }
        }
        json!({
            "id": crate::ids::base62("msg_01", 22),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": reason,
            "stop_sequence": sequence,
            "usage": {
                "input_tokens": self.outcome.input_tokens(),
                "output_tokens": self.output_tokens(),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        })
    }

    /// The events of a streaming answer.
    pub(super) fn stream(&self) -> Vec<String> {
        let (reason, sequence) = self.stop_reason();
        let mut events = vec![event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": crate::ids::base62("msg_01", 22),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": self.outcome.input_tokens(),
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            }}),
        )];
        let mut blocks = Blocks { events: &mut events, next: 0 };
        if let Some(thought) = self.thought() {
            let mut deltas = Vec::new();
            if !thought.is_empty() {
                deltas.push(json!({"type": "thinking_delta", "thinking": thought}));
            }
            deltas.push(json!({"type": "signature_delta", "signature": thinking::signature(self.name)}));
            blocks.push(&json!({"type": "thinking", "thinking": "", "signature": ""}), deltas);
        }
        match &self.outcome {
            Outcome::Text(answer) if answer.text.is_empty() => {}
            Outcome::Text(answer) => {
                let deltas =
                    answer.deltas().into_iter().map(|d| json!({"type": "text_delta", "text": d})).collect();
                blocks.push(&json!({"type": "text", "text": ""}), deltas);
            }
            Outcome::Calls { calls, .. } => {
                for (k, call) in calls.iter().enumerate() {
                    let deltas = tools::thirds(&call.arguments)
                        .into_iter()
                        .map(|piece| json!({"type": "input_json_delta", "partial_json": piece}))
                        .collect();
                    let start = json!({"type": "tool_use", "id": self.tool_use_id(k), "name": call.name, "input": {}});
                    blocks.push(&start, deltas);
                }
            }
        }
        if blocks.next == 0 {
            events.push(event("ping", &json!({"type": "ping"})));
        }
        events.push(event(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": {"output_tokens": self.output_tokens()},
            }),
        ));
        events.push(event("message_stop", &json!({"type": "message_stop"})));
        events
    }

    /// A `content_block_delta` event whose data is cut in half (not JSON): what a `Malformed` fault sends.
    pub(super) fn malformed(&self) -> String {
        let text = match &self.outcome {
            Outcome::Text(answer) => answer.deltas().first().copied().unwrap_or_default().to_owned(),
            Outcome::Calls { .. } => String::new(),
        };
        let index = usize::from(self.thinking != Thinking::Off);
        let data = json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "text_delta", "text": text}});
        format!("event: content_block_delta\ndata: {}\n\n", crate::json::half(&data.to_string()))
    }
}

/// Appends content blocks to a stream, numbering them and sending the one `ping` after the first start.
struct Blocks<'a> {
    events: &'a mut Vec<String>,
    next: usize,
}

impl Blocks<'_> {
    fn push(&mut self, start: &Value, deltas: Vec<Value>) {
        let index = self.next;
        self.next += 1;
        self.events.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        if index == 0 {
            self.events.push(event("ping", &json!({"type": "ping"})));
        }
        for delta in deltas {
            self.events.push(event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        self.events.push(event("content_block_stop", &json!({"type": "content_block_stop", "index": index})));
    }
}

fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}
