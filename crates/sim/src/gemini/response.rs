//! Rendering an answer as a GenerateContentResponse or as the list of them a stream sends: parts are an optional
//! thought (`{"text":"{name} thinks.","thought":true}`), then the answer's text or its `functionCall`s (no ids, as
//! the real API); the first answer part carries the `thoughtSignature` when thoughts are on. Streams send the
//! thought, then one chunk per word or per call; the last carries `finishReason` and `usageMetadata`.
//!
//! This module never validates.

use serde_json::{Value, json};

use crate::answer::{Finish, Outcome};
use crate::thinking::{self, THOUGHT_TOKENS};

/// An answer ready to render.
pub(super) struct Rendered<'a> {
    /// The simulator's name (thought and signature).
    pub name: &'a str,
    pub model: &'a str,
    pub response_id: String,
    pub candidates: u64,
    pub thoughts: bool,
    pub outcome: Outcome,
}

impl Rendered<'_> {
    fn finish_reason(&self) -> &'static str {
        match &self.outcome {
            Outcome::Text(answer) if answer.finish == Finish::Length => "MAX_TOKENS",
            _ => "STOP",
        }
    }

    fn usage(&self) -> Value {
        let input = self.outcome.input_tokens();
        let output = self.outcome.output_tokens();
        let mut usage = json!({
            "promptTokenCount": input,
            "candidatesTokenCount": output,
            "totalTokenCount": input + output + if self.thoughts { THOUGHT_TOKENS } else { 0 },
        });
        if self.thoughts
            && let Some(obj) = usage.as_object_mut()
        {
            obj.insert("thoughtsTokenCount".into(), json!(THOUGHT_TOKENS));
        }
        usage
    }

    /// The answer's parts in stream order: the thought (if any), then one group per chunk (a word, or a call).
    fn groups(&self) -> Vec<Vec<Value>> {
        let mut groups = Vec::new();
        if self.thoughts {
            groups.push(vec![json!({"text": thinking::thought(self.name), "thought": true})]);
        }
        let first_answer = groups.len();
        match &self.outcome {
            Outcome::Text(answer) => {
                let mut deltas = answer.deltas();
                if deltas.is_empty() {
                    deltas.push("");
                }
                groups.extend(deltas.into_iter().map(|d| vec![json!({"text": d})]));
            }
            Outcome::Calls { calls, .. } => {
                groups.extend(
                    calls.iter().map(|c| vec![json!({"functionCall": {"name": c.name, "args": c.input}})]),
                );
            }
        }
        if self.thoughts
            && let Some(part) =
                groups.get_mut(first_answer).and_then(|g| g.first_mut()).and_then(Value::as_object_mut)
        {
            part.insert("thoughtSignature".into(), json!(thinking::gemini_signature(self.name)));
        }
        groups
    }

    /// The GenerateContentResponse of a non-streaming answer: text in one part, calls in one part each.
    pub(super) fn response(&self) -> Value {
        let groups = self.groups();
        let thought = usize::from(self.thoughts);
        let mut parts: Vec<Value> = groups[..thought].iter().flatten().cloned().collect();
        match &self.outcome {
            Outcome::Text(answer) => {
                let mut part = groups[thought][0].clone();
                if let Some(obj) = part.as_object_mut() {
                    obj.insert("text".into(), json!(answer.text));
                }
                parts.push(part);
            }
            Outcome::Calls { .. } => parts.extend(groups[thought..].iter().flatten().cloned()),
        }
        let candidates: Vec<Value> = (0..self.candidates)
            .map(|index| {
                json!({
                    "content": {"parts": parts, "role": "model"},
                    "finishReason": self.finish_reason(),
                    "index": index,
                })
            })
            .collect();
        json!({
            "candidates": candidates,
            "usageMetadata": self.usage(),
            "modelVersion": self.model,
            "responseId": self.response_id,
        })
    }

    /// The first chunk of the answer proper (after the thought, if any), as a stream sends it before the last:
    /// what a `Malformed` fault cuts in half.
    pub(super) fn first_chunk(&self) -> Value {
        let groups = self.groups();
        let parts = groups.get(usize::from(self.thoughts)).or(groups.last()).cloned().unwrap_or_default();
        let candidates: Vec<Value> = (0..self.candidates)
            .map(|index| json!({"content": {"parts": parts, "role": "model"}, "index": index}))
            .collect();
        json!({"candidates": candidates, "modelVersion": self.model, "responseId": self.response_id})
    }

    /// The GenerateContentResponses of a streaming answer; the last one carries `finishReason` and
    /// `usageMetadata`.
    pub(super) fn chunks(&self) -> Vec<Value> {
        let groups = self.groups();
        let last = groups.len() - 1;
        groups
            .iter()
            .enumerate()
            .map(|(i, parts)| {
                let candidates: Vec<Value> = (0..self.candidates)
                    .map(|index| {
                        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": index});
                        if i == last
                            && let Some(obj) = candidate.as_object_mut()
                        {
                            obj.insert("finishReason".into(), json!(self.finish_reason()));
                        }
                        candidate
                    })
                    .collect();
                let mut chunk =
                    json!({"candidates": candidates, "modelVersion": self.model, "responseId": self.response_id});
                if i == last
                    && let Some(obj) = chunk.as_object_mut()
                {
                    obj.insert("usageMetadata".into(), self.usage());
                }
                chunk
            })
            .collect()
    }
}
