//! OpenAI Chat Completions (and every OpenAI-compatible server): request and response bodies to and from the
//! canonical model.
//!
//! Wire reference: <https://platform.openai.com/docs/api-reference/chat>. Streams are in [`stream`].

mod stream;

pub use stream::{StreamDecoder, StreamEncoder};

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use crate::canonical::{ChatRequest, ChatResponse, EncodeCtx, Message, Part, Role, StopReason, Usage};
use crate::{DecodeError, Dialect, EncodeError};

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    messages: Vec<WireMessage>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u32>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    tools: Option<IgnoredAny>,
    #[serde(default)]
    tool_choice: Option<IgnoredAny>,
    #[serde(default)]
    functions: Option<IgnoredAny>,
    #[serde(default)]
    function_call: Option<IgnoredAny>,
    #[serde(default)]
    response_format: Option<IgnoredAny>,
    #[serde(default)]
    n: Option<u32>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Option<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Deserialize)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

fn parts_of(content: Option<Content>) -> Vec<Part> {
    match content {
        None => Vec::new(),
        Some(Content::Text(t)) => vec![Part::Text(t)],
        Some(Content::Parts(parts)) => parts
            .into_iter()
            .map(|p| match (p.kind.as_str(), p.text) {
                ("text", Some(t)) => Part::Text(t),
                _ => Part::Unsupported(p.kind),
            })
            .collect(),
    }
}

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, DecodeError> {
    let w: WireRequest = serde_json::from_slice(body)?;
    let mut system = Vec::new();
    let mut messages = Vec::with_capacity(w.messages.len());
    for (i, m) in w.messages.into_iter().enumerate() {
        let mut content = parts_of(m.content);
        match m.role.as_str() {
            "system" | "developer" => system.extend(content.into_iter().filter_map(|p| match p {
                Part::Text(t) => Some(t),
                Part::Unsupported(_) => None,
            })),
            "user" => messages.push(Message { role: Role::User, content }),
            "assistant" => {
                if m.tool_calls.is_some() {
                    content.push(Part::Unsupported("tool_calls".into()));
                }
                messages.push(Message { role: Role::Assistant, content });
            }
            "tool" | "function" => messages.push(Message {
                role: Role::User,
                content: vec![Part::Unsupported(format!("{} message", m.role))],
            }),
            other => {
                return Err(DecodeError::Invalid(format!("messages[{i}].role: unexpected role \"{other}\"")));
            }
        }
    }
    let include_usage = w.stream_options.and_then(|o| o.include_usage).unwrap_or(false);
    let untranslated = [
        ("tools", w.tools.is_some()),
        ("tool_choice", w.tool_choice.is_some()),
        ("functions", w.functions.is_some()),
        ("function_call", w.function_call.is_some()),
        ("response_format", w.response_format.is_some()),
        ("n", w.n.is_some_and(|n| n > 1)),
    ]
    .into_iter()
    .filter_map(|(f, present)| present.then_some(f))
    .collect();
    Ok(ChatRequest {
        model: w.model,
        system,
        messages,
        max_tokens: w.max_completion_tokens.or(w.max_tokens),
        temperature: w.temperature,
        top_p: w.top_p,
        top_k: w.top_k,
        stop: match w.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) => v,
        },
        stream: w.stream.unwrap_or(false),
        include_usage,
        untranslated,
    })
}

/// One message's content: a plain string when it is all text (every OpenAI-compatible server accepts that form).
fn content_value(parts: &[Part], field: impl Fn() -> String) -> Result<Value, EncodeError> {
    let mut text = String::new();
    for p in parts {
        match p {
            Part::Text(t) => text.push_str(t),
            Part::Unsupported(kind) => {
                return Err(EncodeError {
                    field: field(),
                    target: Dialect::OpenAiChat,
                    why: format!("content of type \"{kind}\" is not translated yet"),
                });
            }
        }
    }
    Ok(Value::String(text))
}

/// How a target wants the output limit named.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MaxTokensField {
    /// `max_completion_tokens`: what OpenAI's current models require.
    #[default]
    MaxCompletionTokens,
    /// `max_tokens`: what most OpenAI-compatible servers (vLLM, Ollama, llama.cpp, Groq…) understand.
    MaxTokens,
}

pub fn encode_request(
    req: &ChatRequest,
    model: &str,
    max_field: MaxTokensField,
) -> Result<Vec<u8>, EncodeError> {
    req.check_translatable(Dialect::OpenAiChat)?;
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = req.system_text() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let content = content_value(&m.content, || format!("messages[{i}].content"))?;
        messages.push(json!({"role": role, "content": content}));
    }
    let mut body = serde_json::Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), messages.into());
    if let Some(n) = req.max_tokens {
        let key = match max_field {
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
            MaxTokensField::MaxTokens => "max_tokens",
        };
        body.insert(key.into(), n.into());
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), p.into());
    }
    if !req.stop.is_empty() {
        body.insert("stop".into(), req.stop.clone().into());
    }
    if req.stream {
        body.insert("stream".into(), true.into());
        // The gateway always wants usage, whatever the client asked for: it reports it to every dialect.
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(serde_json::to_vec(&body).unwrap_or_default())
}

#[derive(Deserialize)]
struct WireResponse {
    id: String,
    #[serde(default)]
    model: String,
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ResponseMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ResponseMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Value>,
}

#[derive(Deserialize, Default, Clone, Copy)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(w: WireUsage) -> Usage {
        Usage {
            input_tokens: w.prompt_tokens,
            output_tokens: w.completion_tokens,
            cache_read_tokens: w.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write_tokens: 0,
        }
    }
}

pub(crate) fn stop_reason_from(s: Option<&str>) -> StopReason {
    match s {
        Some("length") => StopReason::MaxTokens,
        Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
        Some("content_filter") => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

pub(crate) fn finish_reason_str(r: &StopReason) -> &'static str {
    match r {
        StopReason::EndTurn | StopReason::StopSequence(_) | StopReason::Paused => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
    }
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let w: WireResponse = serde_json::from_slice(body)?;
    let Some(choice) = w.choices.into_iter().next() else {
        return Err(DecodeError::Invalid("chat.completion without choices".into()));
    };
    let mut content = Vec::new();
    if let Some(t) = choice.message.content {
        content.push(Part::Text(t));
    }
    if choice.message.tool_calls.is_some() {
        content.push(Part::Unsupported("tool_calls".into()));
    }
    Ok(ChatResponse {
        id: w.id,
        model: w.model,
        content,
        stop_reason: stop_reason_from(choice.finish_reason.as_deref()),
        usage: w.usage.map(Usage::from).unwrap_or_default(),
    })
}

pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total(),
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
    })
}

pub(crate) fn completion_id(id: &str) -> String {
    if id.starts_with("chatcmpl-") { id.to_owned() } else { format!("chatcmpl-{id}") }
}

pub fn encode_response(resp: &ChatResponse, ctx: &EncodeCtx) -> Vec<u8> {
    let body = json!({
        "id": completion_id(&resp.id),
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": resp.text(), "refusal": null},
            "logprobs": null,
            "finish_reason": finish_reason_str(&resp.stop_reason),
        }],
        "usage": usage_json(&resp.usage),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}
