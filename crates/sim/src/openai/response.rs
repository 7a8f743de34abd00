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

/// An answer ready to render.
pub(super) struct Rendered<'a> {
    /// The simulator's name (tool call ids).
    pub name: &'a str,
    pub request: &'a Request,
    pub outcome: Outcome,
}

impl Rendered<'_> {
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
            "id": crate::ids::base62("chatcmpl-", 29),
            "object": "chat.completion",
            "created": crate::ids::unix_now(),
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
        let id = crate::ids::base62("chatcmpl-", 29);
        let created = crate::ids::unix_now();
        let chunk = |choices: Vec<Value>, usage: Option<Value>| -> String {
            let mut chunk = json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
                "choices": choices,
            });
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
