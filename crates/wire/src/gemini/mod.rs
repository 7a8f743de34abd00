//! Google Gemini `generateContent`: request and response bodies to and from the canonical model.
//!
//! Wire reference: <https://ai.google.dev/api/generate-content>. The model is named in the URL path, never in the
//! body. Streams (`streamGenerateContent?alt=sse`) are in [`stream`].

mod stream;

pub use stream::{StreamDecoder, StreamEncoder};

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use crate::canonical::{ChatRequest, ChatResponse, EncodeCtx, Message, Part, Role, StopReason, Usage};
use crate::{DecodeError, Dialect, EncodeError};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    contents: OneOrMany<WireContent>,
    #[serde(default, alias = "system_instruction")]
    system_instruction: Option<WireContent>,
    #[serde(default, alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
    #[serde(default)]
    tools: Option<IgnoredAny>,
    #[serde(default, alias = "tool_config")]
    tool_config: Option<IgnoredAny>,
}

/// Google's JSON parsing accepts a single object where a repeated field is expected.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::Many(v) => v,
            OneOrMany::One(t) => vec![t],
        }
    }
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(default, alias = "max_output_tokens")]
    max_output_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default, alias = "top_p")]
    top_p: Option<f64>,
    #[serde(default, alias = "top_k")]
    top_k: Option<u32>,
    #[serde(default, alias = "stop_sequences")]
    stop_sequences: Option<Vec<String>>,
    #[serde(default, alias = "response_schema")]
    response_schema: Option<IgnoredAny>,
    #[serde(default, alias = "response_json_schema")]
    response_json_schema: Option<IgnoredAny>,
}

#[derive(Deserialize)]
pub(crate) struct WireContent {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    parts: OneOrMany<WirePart>,
}

#[derive(Deserialize)]
pub(crate) struct WirePart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

pub(crate) fn part_of(p: WirePart) -> Part {
    match p.text {
        Some(t) if p.thought != Some(true) => Part::Text(t),
        Some(_) => Part::Unsupported("thought".into()),
        None => Part::Unsupported(p.other.keys().next().cloned().unwrap_or_else(|| "empty part".into())),
    }
}

/// Decode a body; `model` stays empty because Gemini names it in the path.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, DecodeError> {
    let w: WireRequest = serde_json::from_slice(body)?;
    let contents = w.contents.into_vec();
    let mut messages = Vec::with_capacity(contents.len());
    for (i, c) in contents.into_iter().enumerate() {
        let role = match c.role.as_deref() {
            None | Some("user") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(DecodeError::Invalid(format!(
                    "contents[{i}].role: unexpected role \"{other}\"; expected \"user\" or \"model\""
                )));
            }
        };
        messages.push(Message { role, content: c.parts.into_vec().into_iter().map(part_of).collect() });
    }
    let system = w
        .system_instruction
        .map(|c| c.parts.into_vec().into_iter().filter_map(|p| p.text).collect())
        .unwrap_or_default();
    let g = w.generation_config.unwrap_or_default();
    let untranslated = [
        ("tools", w.tools.is_some()),
        ("toolConfig", w.tool_config.is_some()),
        ("generationConfig.responseSchema", g.response_schema.is_some() || g.response_json_schema.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, present)| present.then_some(f))
    .collect();
    Ok(ChatRequest {
        model: String::new(),
        system,
        messages,
        max_tokens: g.max_output_tokens,
        temperature: g.temperature,
        top_p: g.top_p,
        top_k: g.top_k,
        stop: g.stop_sequences.unwrap_or_default(),
        stream: false,
        include_usage: true,
        untranslated,
    })
}

pub fn encode_request(req: &ChatRequest) -> Result<Vec<u8>, EncodeError> {
    req.check_translatable(Dialect::Gemini)?;
    let mut contents = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        let mut parts = Vec::with_capacity(m.content.len());
        for p in &m.content {
            match p {
                Part::Text(t) => parts.push(json!({"text": t})),
                Part::Unsupported(kind) => {
                    return Err(EncodeError {
                        field: format!("messages[{i}].content"),
                        target: Dialect::Gemini,
                        why: format!("content of type \"{kind}\" is not translated yet"),
                    });
                }
            }
        }
        contents.push(json!({"role": role, "parts": parts}));
    }
    let mut body = serde_json::Map::new();
    body.insert("contents".into(), contents.into());
    if let Some(system) = req.system_text() {
        body.insert("systemInstruction".into(), json!({"parts": [{"text": system}]}));
    }
    let mut g = serde_json::Map::new();
    if let Some(n) = req.max_tokens {
        g.insert("maxOutputTokens".into(), n.into());
    }
    if let Some(t) = req.temperature {
        g.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.top_p {
        g.insert("topP".into(), p.into());
    }
    if let Some(k) = req.top_k {
        g.insert("topK".into(), k.into());
    }
    if !req.stop.is_empty() {
        g.insert("stopSequences".into(), req.stop.clone().into());
    }
    if !g.is_empty() {
        body.insert("generationConfig".into(), g.into());
    }
    Ok(serde_json::to_vec(&body).unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub response_id: Option<String>,
    #[serde(default)]
    pub prompt_feedback: Option<Value>,
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Candidate {
    #[serde(default)]
    pub content: Option<WireContent>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
}

impl From<UsageMetadata> for Usage {
    fn from(u: UsageMetadata) -> Usage {
        Usage {
            input_tokens: u.prompt_token_count,
            output_tokens: u.candidates_token_count.saturating_add(u.thoughts_token_count),
            cache_read_tokens: u.cached_content_token_count,
            cache_write_tokens: 0,
        }
    }
}

pub(crate) fn stop_reason_from(s: &str) -> StopReason {
    match s {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

pub(crate) fn finish_reason_str(r: &StopReason) -> &'static str {
    match r {
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
        StopReason::EndTurn | StopReason::StopSequence(_) | StopReason::ToolUse | StopReason::Paused => {
            "STOP"
        }
    }
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let w: WireResponse = serde_json::from_slice(body)?;
    if w.error.is_some() {
        return Err(DecodeError::Invalid("an error object where a response was expected".into()));
    }
    let blocked = w.prompt_feedback.is_some() && w.candidates.is_empty();
    let Some(candidate) = w.candidates.into_iter().next() else {
        if blocked {
            return Ok(ChatResponse {
                id: w.response_id.unwrap_or_default(),
                model: w.model_version.unwrap_or_default(),
                content: Vec::new(),
                stop_reason: StopReason::ContentFilter,
                usage: w.usage_metadata.map(Usage::from).unwrap_or_default(),
            });
        }
        return Err(DecodeError::Invalid("generateContent response without candidates".into()));
    };
    let content =
        candidate.content.map(|c| c.parts.into_vec().into_iter().map(part_of).collect()).unwrap_or_default();
    Ok(ChatResponse {
        id: w.response_id.unwrap_or_default(),
        model: w.model_version.unwrap_or_default(),
        content,
        stop_reason: candidate.finish_reason.as_deref().map(stop_reason_from).unwrap_or(StopReason::EndTurn),
        usage: w.usage_metadata.map(Usage::from).unwrap_or_default(),
    })
}

pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens,
        "totalTokenCount": u.total(),
        "cachedContentTokenCount": u.cache_read_tokens,
    })
}

pub fn encode_response(resp: &ChatResponse, ctx: &EncodeCtx) -> Vec<u8> {
    let parts: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(json!({"text": t})),
            Part::Unsupported(_) => None,
        })
        .collect();
    let body = json!({
        "candidates": [{
            "content": {"role": "model", "parts": parts},
            "finishReason": finish_reason_str(&resp.stop_reason),
            "index": 0,
        }],
        "usageMetadata": usage_json(&resp.usage),
        "modelVersion": ctx.model,
        "responseId": resp.id,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}
