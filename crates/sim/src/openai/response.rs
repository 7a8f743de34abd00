//! Rendering an answer as a `chat.completion` object or as `chat.completion.chunk` events ending in
//! `data: [DONE]`: text deltas one word at a time, or tool calls as OpenAI streams them (a chunk naming the call
//! with empty `arguments`, then chunks carrying three pieces of the arguments), then a chunk with the finish reason
//! and, when asked for, a usage chunk.
//!
//! Tool call ids are `call_sim_{name}_{k}`; reasoning shows only as `reasoning_tokens`. This module never validates.

use serde_json::{Value, json};

use super::request::Request;
use crate::answer::{Finish, Outcome};
use crate::thinking::THOUGHT_TOKENS;
use crate::tools::{self, ToolCall};

const FINGERPRINT: &str = "fp_nines_sim";

/// An answer ready to render, with the id and creation time of its completion.
pub(super) struct Rendered<'a> {
    /// The simulator's name (tool call ids).
    name: &'a str,
    request: &'a Request,
    outcome: Outcome,
    id: String,
    created: u64,
}

impl<'a> Rendered<'a> {
    pub(super) fn new(name: &'a str, request: &'a Request, outcome: Outcome) -> Self {
        Self {
            name,
            request,
            outcome,
            id: crate::ids::base62("chatcmpl-", 29),
            created: crate::ids::unix_now(),
        }
    }

    fn finish_reason(&self) -> &'static str {
        match &self.outcome {
            Outcome::Calls { .. } => "tool_calls",
            Outcome::Text(answer) => match answer.finish {
                Finish::Length => "length",
                Finish::Natural | Finish::StopSequence(_) => "stop",
            },
        }
    }

    fn usage(&self) -> Value {
        let reasoning = if self.request.reasoning { THOUGHT_TOKENS } else { 0 };
        let input = self.outcome.input_tokens();
        let output = self.outcome.output_tokens() + reasoning;
        json!({
            "prompt_tokens": input,
            "completion_tokens": output,
            "total_tokens": input + output,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        })
    }

    fn call_id(&self, k: usize) -> String {
        format!("call_sim_{}_{k}", self.name)
    }

    /// The `chat.completion` object of a non-streaming answer.
    pub(super) fn completion(&self) -> Value {
        let message = match &self.outcome {
            Outcome::Text(answer) => {
                json!({"role": "assistant", "content": answer.text, "refusal": null, "annotations": []})
            }
            Outcome::Calls { calls, .. } => {
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(k, call)| {
                        json!({
                            "id": self.call_id(k),
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        })
                    })
                    .collect();
                json!({"role": "assistant", "content": null, "tool_calls": calls, "refusal": null, "annotations": []})
            }
        };
        let choices: Vec<Value> = (0..self.request.n)
            .map(|index| {
                json!({
                    "index": index,
                    "message": message,
                    "logprobs": null,
                    "finish_reason": self.finish_reason(),
                })
            })
            .collect();
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.request.model,
            "choices": choices,
            "usage": self.usage(),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        })
    }

    /// The events of a streaming answer.
    pub(super) fn stream(&self) -> Vec<String> {
        let request = self.request;
        let chunk = |choices: Vec<Value>, usage: Option<Value>| -> String {
            let mut chunk = self.chunk(choices);
            if request.include_usage
                && let Some(obj) = chunk.as_object_mut()
            {
                obj.insert("usage".into(), usage.unwrap_or(Value::Null));
            }
            format!("data: {chunk}\n\n")
        };
        let each = |delta: &Value, finish: Value| -> Vec<Value> {
            (0..request.n)
                .map(|index| json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}))
                .collect()
        };
        let mut deltas = Vec::new();
        match &self.outcome {
            Outcome::Text(answer) => {
                deltas.push(json!({"role": "assistant", "content": "", "refusal": null}));
                deltas.extend(answer.deltas().into_iter().map(|d| json!({"content": d})));
            }
            Outcome::Calls { calls, .. } => {
                for (k, call) in calls.iter().enumerate() {
                    let head = self.call_head(k, call);
                    deltas.push(if k == 0 {
                        json!({"role": "assistant", "content": null, "tool_calls": [head], "refusal": null})
                    } else {
                        json!({"tool_calls": [head]})
                    });
                    for piece in tools::thirds(&call.arguments) {
                        deltas.push(json!({"tool_calls": [{"index": k, "function": {"arguments": piece}}]}));
                    }
                }
            }
        }
        let mut events: Vec<String> = deltas.iter().map(|d| chunk(each(d, Value::Null), None)).collect();
        events.push(chunk(each(&json!({}), json!(self.finish_reason())), None));
        if request.include_usage {
            events.push(chunk(Vec::new(), Some(self.usage())));
        }
        events.push("data: [DONE]\n\n".to_owned());
        events
    }

    /// A `chat.completion.chunk` with these choices.
    fn chunk(&self, choices: Vec<Value>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.request.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        })
    }

    /// A content chunk whose data is cut in half (not JSON): what a `Malformed` fault sends.
    pub(super) fn malformed(&self) -> String {
        let text = match &self.outcome {
            Outcome::Text(answer) => answer.deltas().first().copied().unwrap_or_default().to_owned(),
            Outcome::Calls { .. } => String::new(),
        };
        let choice = json!({"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": null});
        format!("data: {}\n\n", crate::json::half(&self.chunk(vec![choice]).to_string()))
    }

    /// The first delta of tool call `k`: its id, type and name, with empty arguments.
    fn call_head(&self, k: usize, call: &ToolCall) -> Value {
        json!({
            "index": k,
            "id": self.call_id(k),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        })
    }
}
