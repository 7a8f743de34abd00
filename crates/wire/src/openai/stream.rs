//! OpenAI Chat Completions streams: `data: {chat.completion.chunk}` lines ending in `data: [DONE]`, decoded into
//! canonical events and encoded from them. Tool calls stream as `delta.tool_calls[]` entries keyed by `index`.
//!
//! Both directions are state machines fed one event at a time; neither buffers the stream.

use std::borrow::Cow;
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
        // Most chunks read as typed, borrowing structs (no `Value` built); anything they do not take as it is —
        // an error, an odd type, a duplicate key — goes the general way below, whose verdict is the reference.
        if data.trim_start().starts_with('{')
            && let Ok(c) = serde_json::from_str::<fast::Chunk<'_>>(data)
            && c.error.is_none()
        {
            self.push_fast(c, out);
            return Ok(());
        }
        self.push_value(data, out)
    }

    fn push_fast(&mut self, c: fast::Chunk<'_>, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: c.id.as_deref().unwrap_or_default().to_owned(),
                model: c.model.as_deref().unwrap_or_default().to_owned(),
                usage: Usage::default(),
            });
        }
        if let Some(u) = c.usage {
            self.usage = u.into();
        }
        let Some(choice) = c.choices.and_then(|cs| cs.into_iter().next()) else { return };
        if let Some(d) = choice.delta {
            if let Some(r) = d.reasoning_content.or(d.reasoning).filter(|r| !r.is_empty()) {
                out.push(StreamEvent::ThinkingDelta(r.into_owned()));
            }
            if let Some(t) = d.content.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta(t.into_owned()));
            }
            for tc in d.tool_calls.unwrap_or_default() {
                let raw_index = tc.index.unwrap_or(0);
                let index = u32::try_from(raw_index).unwrap_or(u32::MAX);
                let (name, arguments) = tc.function.map_or((None, None), |f| (f.name, f.arguments));
                if self.tools.insert(raw_index) {
                    out.push(StreamEvent::ToolCallStart {
                        index,
                        id: tc.id.map(Cow::into_owned).unwrap_or_else(|| format!("call_{index}")),
                        name: name.map(Cow::into_owned).unwrap_or_default(),
                    });
                }
                if let Some(a) = arguments.filter(|a| !a.is_empty()) {
                    out.push(StreamEvent::ToolCallArgs { index, json: a.into_owned() });
                }
            }
        }
        if let Some(r) = choice.finish_reason {
            self.stop_reason = Some(stop_reason_from(Some(&r)));
        }
    }

    /// The general way: the chunk as a `Value`, every odd shape handled as the API's clients do.
    fn push_value(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
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

/// A chunk as the fast path reads it: only what the decoder uses, strings borrowed from the event's data where they
/// need no unescaping. A field of another type than these fails the read (and the chunk goes the general way).
mod fast {
    use std::borrow::Cow;

    use serde::Deserialize;
    use serde::de::IgnoredAny;

    use super::super::WireUsage;

    #[derive(Deserialize)]
    pub(super) struct Chunk<'a> {
        #[serde(default, borrow)]
        pub id: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        pub model: Option<Cow<'a, str>>,
        #[serde(default)]
        pub error: Option<IgnoredAny>,
        #[serde(default)]
        pub usage: Option<WireUsage>,
        #[serde(default, borrow)]
        pub choices: Option<Vec<Choice<'a>>>,
    }

    #[derive(Deserialize)]
    pub(super) struct Choice<'a> {
        #[serde(default, borrow)]
        pub delta: Option<Delta<'a>>,
        #[serde(default, borrow)]
        pub finish_reason: Option<Cow<'a, str>>,
    }

    #[derive(Deserialize)]
    pub(super) struct Delta<'a> {
        #[serde(default, borrow)]
        pub reasoning_content: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        pub reasoning: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        pub content: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        pub tool_calls: Option<Vec<ToolCall<'a>>>,
    }

    #[derive(Deserialize)]
    pub(super) struct ToolCall<'a> {
        #[serde(default)]
        pub index: Option<u64>,
        #[serde(default, borrow)]
        pub id: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        pub function: Option<Function<'a>>,
    }

    #[derive(Deserialize)]
    pub(super) struct Function<'a> {
        #[serde(default, borrow)]
        pub name: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        pub arguments: Option<Cow<'a, str>>,
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::*;

    /// A field's value: mostly what a provider sends, sometimes what it should not.
    fn odd() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(|n| json!(n)),
            Just(json!(1.5)),
            Just(json!([])),
            Just(json!({})),
            Just(json!(true)),
        ]
    }

    fn text() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => "[ -~]{0,12}".prop_map(Value::String),
            2 => Just(json!("")),
            2 => Just(json!("é \"quoted\" \\ \n tab\t ✓")),
            1 => odd(),
        ]
    }

    /// Some of `fields` (each present or not).
    fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
        let parts: Vec<BoxedStrategy<Option<(&'static str, Value)>>> = fields
            .into_iter()
            .map(|(k, s)| proptest::option::weighted(0.7, s.prop_map(move |v| (k, v))).boxed())
            .collect();
        parts
            .prop_map(|kv| {
                Value::Object(kv.into_iter().flatten().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>())
            })
            .boxed()
    }

    fn chunk() -> BoxedStrategy<Value> {
        let function = object(vec![("name", text().boxed()), ("arguments", text().boxed())]);
        let index = prop_oneof![4 => (0u64..3).prop_map(|n| json!(n)), 1 => odd()].boxed();
        let tool = object(vec![
            ("index", index),
            ("id", text().boxed()),
            ("function", prop_oneof![4 => function, 1 => odd()].boxed()),
        ]);
        let tools =
            prop_oneof![4 => proptest::collection::vec(tool, 0..3).prop_map(Value::Array), 1 => odd()]
                .boxed();
        let delta = object(vec![
            ("content", text().boxed()),
            ("reasoning_content", text().boxed()),
            ("reasoning", text().boxed()),
            ("tool_calls", tools),
        ]);
        let finish =
            prop_oneof![Just(json!("stop")), Just(json!("length")), Just(json!("tool_calls")), odd()].boxed();
        let choice =
            object(vec![("delta", prop_oneof![5 => delta, 1 => odd()].boxed()), ("finish_reason", finish)]);
        let choices =
            prop_oneof![5 => proptest::collection::vec(prop_oneof![5 => choice, 1 => odd()], 0..3).prop_map(Value::Array), 1 => odd()].boxed();
        let usage = prop_oneof![
            Just(json!({"prompt_tokens": 3, "completion_tokens": 5})),
            Just(json!({"prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": 1}})),
            Just(json!({"prompt_tokens": "x"})),
            odd(),
        ]
        .boxed();
        let error =
            prop_oneof![Just(Value::Null), Just(json!({"message": "down", "type": "server_error"})), odd()]
                .boxed();
        object(vec![
            ("id", text().boxed()),
            ("model", text().boxed()),
            ("choices", choices),
            ("usage", usage),
            ("error", error),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The typed fast path decides every chunk as the general `Value` way does: the same events, the same
        /// errors, the same state after a sequence of them (and the same for a chunk written twice a key, or not
        /// an object at all).
        #[test]
        fn the_fast_path_decodes_as_the_general_way(chunks in proptest::collection::vec(chunk(), 1..4)) {
            let (mut fast, mut general) = (StreamDecoder::new(), StreamDecoder::new());
            let mut datas: Vec<String> = chunks.iter().map(Value::to_string).collect();
            datas.push("{\"id\":\"a\",\"id\":\"b\",\"choices\":[]}".to_owned());
            datas.push("[1]".to_owned());
            for data in datas {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let ra = fast.push("", &data, &mut a).map_err(|e| e.to_string());
                let rb = general.push_value(&data, &mut b).map_err(|e| e.to_string());
                prop_assert_eq!(ra, rb, "{}", data);
                prop_assert_eq!(a, b, "{}", data);
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let ra = fast.finish(&mut a).map_err(|e| e.to_string());
            let rb = general.finish(&mut b).map_err(|e| e.to_string());
            prop_assert_eq!(ra, rb);
            prop_assert_eq!(a, b);
        }
    }
}
