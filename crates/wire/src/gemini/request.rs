//! Gemini request bodies ⇄ the canonical request.

use serde_json::{Map, Value, json};

use super::{MAX_STOP_SEQUENCES, thought_part};
use crate::canonical::{
    ChatRequest, Effort, Encoded, ImageSource, Message, Part, Reasoning, ResponseFormat, Role, Signature,
    Thinking, Tool, ToolCall, ToolChoice, ToolResult,
};
use crate::json::{args_object, guess_image_type, note, str_of, to_text, unknown_keys};
use crate::{DecodeError, Dialect, EncodeError, EncodeOpts};

/// The request fields this module translates (in both of Google's spellings); any other is reported as dropped
/// when translating.
const MODELLED: &[&str] = &[
    "contents",
    "systemInstruction",
    "system_instruction",
    "generationConfig",
    "generation_config",
    "tools",
    "toolConfig",
    "tool_config",
    "model",
];
const GENERATION_MODELLED: &[&str] = &[
    "maxOutputTokens",
    "max_output_tokens",
    "temperature",
    "topP",
    "top_p",
    "topK",
    "top_k",
    "stopSequences",
    "stop_sequences",
    "candidateCount",
    "candidate_count",
    "responseMimeType",
    "response_mime_type",
    "responseSchema",
    "response_schema",
    "responseJsonSchema",
    "response_json_schema",
    "thinkingConfig",
    "thinking_config",
];

/// Google's JSON parsing accepts a single object where a repeated field is expected.
fn many(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(one) => vec![one],
    }
}

/// A field in either of Google's spellings (camelCase or snake_case).
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

/// The text a function response carries: its `content`, `result` or `output` string, else its JSON.
fn response_text(r: &Value) -> String {
    ["content", "result", "output"]
        .iter()
        .find_map(|k| str_of(r, k))
        .map(str::to_owned)
        .unwrap_or_else(|| to_text(r))
}

/// Decode a body; `model` stays empty because Gemini names it in the path.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    if !v.is_object() {
        return Err(DecodeError::Invalid("the body must be a JSON object".into()));
    }
    let Some(contents) = v.get("contents") else {
        return Err(DecodeError::Invalid("contents: required".into()));
    };
    let mut messages = Vec::new();
    let mut untranslated = Vec::new();
    // Function calls of the conversation still waiting for their responses: (id, name).
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut calls = 0usize;
    for (i, c) in many(Some(contents)).into_iter().enumerate() {
        let role = match str_of(c, "role") {
            None | Some("user") | Some("function") | Some("tool") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(DecodeError::Invalid(format!(
                    "contents[{i}].role: unexpected role \"{other}\"; expected \"user\" or \"model\""
                )));
            }
        };
        let mut content = Vec::new();
        for p in many(c.get("parts")) {
            let signature = field(p, "thoughtSignature", "thought_signature")
                .and_then(Value::as_str)
                .map(|s| Signature { origin: Dialect::Gemini, value: s.to_owned() });
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                content.push(Part::Thinking(Thinking {
                    text: str_of(p, "text").unwrap_or_default().to_owned(),
                    signature,
                }));
                continue;
            }
            if signature.is_some() {
                content.push(Part::Thinking(Thinking { text: String::new(), signature }));
            }
            if let Some(t) = str_of(p, "text") {
                content.push(Part::Text(t.to_owned()));
            } else if let Some(d) = field(p, "inlineData", "inline_data") {
                content.push(Part::Image(ImageSource::Base64 {
                    media_type: field(d, "mimeType", "mime_type")
                        .and_then(Value::as_str)
                        .unwrap_or("image/png")
                        .to_owned(),
                    data: str_of(d, "data").unwrap_or_default().to_owned(),
                }));
            } else if let Some(f) = field(p, "fileData", "file_data") {
                let uri = field(f, "fileUri", "file_uri").and_then(Value::as_str).unwrap_or_default();
                content.push(Part::Image(ImageSource::Url(uri.to_owned())));
            } else if let Some(fc) = field(p, "functionCall", "function_call") {
                let name = str_of(fc, "name").unwrap_or_default().to_owned();
                let id = str_of(fc, "id").map(str::to_owned).unwrap_or_else(|| format!("call_{calls}"));
                calls += 1;
                pending.push((id.clone(), name.clone()));
                let arguments = fc.get("args").map(to_text).unwrap_or_else(|| "{}".into());
                content.push(Part::ToolCall(ToolCall { id, name, arguments }));
            } else if let Some(fr) = field(p, "functionResponse", "function_response") {
                let name = str_of(fr, "name").unwrap_or_default();
                let id = match str_of(fr, "id") {
                    Some(id) => id.to_owned(),
                    None => match pending.iter().position(|(_, n)| n == name) {
                        Some(k) => pending.remove(k).0,
                        None => format!("call_{name}"),
                    },
                };
                let response = fr.get("response").unwrap_or(&Value::Null);
                let is_error = response.get("error").is_some() && response.get("content").is_none();
                let text = if is_error {
                    str_of(response, "error").map(str::to_owned).unwrap_or_else(|| to_text(response))
                } else {
                    response_text(response)
                };
                content.push(Part::ToolResult(ToolResult {
                    call_id: id,
                    content: vec![Part::Text(text)],
                    is_error,
                }));
            } else if let Some(kind) = p.as_object().and_then(|o| o.keys().next()) {
                content.push(Part::Unsupported(kind.clone()));
            }
        }
        messages.push(Message { role, content });
    }
    let system = field(&v, "systemInstruction", "system_instruction")
        .map(|c| {
            many(c.get("parts")).into_iter().filter_map(|p| str_of(p, "text").map(str::to_owned)).collect()
        })
        .unwrap_or_default();
    let mut tools = Vec::new();
    for t in many(v.get("tools")) {
        let decls = field(t, "functionDeclarations", "function_declarations");
        if decls.is_none() {
            if !untranslated.contains(&"tools") {
                untranslated.push("tools");
            }
            continue;
        }
        for d in many(decls) {
            let parameters = field(d, "parametersJsonSchema", "parameters_json_schema")
                .or_else(|| d.get("parameters"))
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            tools.push(Tool {
                name: str_of(d, "name").unwrap_or_default().to_owned(),
                description: str_of(d, "description").map(str::to_owned),
                parameters,
            });
        }
    }
    let fcc = field(&v, "toolConfig", "tool_config")
        .and_then(|c| field(c, "functionCallingConfig", "function_calling_config"));
    let tool_choice = fcc.and_then(|f| {
        let allowed = field(f, "allowedFunctionNames", "allowed_function_names").and_then(Value::as_array);
        match str_of(f, "mode") {
            Some("AUTO") => Some(ToolChoice::Auto),
            Some("NONE") => Some(ToolChoice::None),
            Some("ANY") | Some("VALIDATED") => match allowed.map(Vec::as_slice) {
                Some([one]) => one.as_str().map(|n| ToolChoice::Named(n.to_owned())),
                _ => Some(ToolChoice::Required),
            },
            _ => None,
        }
    });
    let g = field(&v, "generationConfig", "generation_config").cloned().unwrap_or(Value::Null);
    let num = |camel: &str, snake: &str| {
        field(&g, camel, snake).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok())
    };
    let mime = field(&g, "responseMimeType", "response_mime_type").and_then(Value::as_str);
    let schema = field(&g, "responseJsonSchema", "response_json_schema")
        .or_else(|| field(&g, "responseSchema", "response_schema"));
    let response_format = match (mime, schema) {
        (_, Some(s)) => {
            Some(ResponseFormat::JsonSchema { name: "response".into(), schema: s.clone(), strict: None })
        }
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        _ => None,
    };
    let tc = field(&g, "thinkingConfig", "thinking_config");
    let reasoning = tc.map(|t| Reasoning {
        effort: match str_of(t, "thinkingLevel").or_else(|| str_of(t, "thinking_level")) {
            Some("low") | Some("LOW") => Some(Effort::Low),
            Some("medium") | Some("MEDIUM") => Some(Effort::Medium),
            Some("high") | Some("HIGH") => Some(Effort::High),
            _ => None,
        },
        budget_tokens: field(t, "thinkingBudget", "thinking_budget")
            .and_then(Value::as_i64)
            .and_then(|b| u32::try_from(b).ok()),
        visible: field(t, "includeThoughts", "include_thoughts").and_then(Value::as_bool) == Some(true),
    });
    if num("candidateCount", "candidate_count").is_some_and(|n| n > 1) {
        untranslated.push("generationConfig.candidateCount");
    }
    Ok(ChatRequest {
        model: String::new(),
        system,
        messages,
        max_tokens: num("maxOutputTokens", "max_output_tokens"),
        temperature: g.get("temperature").and_then(Value::as_f64),
        top_p: field(&g, "topP", "top_p").and_then(Value::as_f64),
        top_k: num("topK", "top_k"),
        stop: many(field(&g, "stopSequences", "stop_sequences"))
            .into_iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        stream: false,
        include_usage: true,
        tools,
        tool_choice,
        parallel_tool_calls: None,
        response_format,
        reasoning,
        user: None,
        untranslated,
        ignored: unknown_keys(&v, MODELLED)
            .into_iter()
            .chain(unknown_keys(&g, GENERATION_MODELLED).into_iter().map(|k| format!("generationConfig.{k}")))
            .collect(),
    })
}

fn image_part(src: &ImageSource) -> Value {
    match src {
        ImageSource::Base64 { media_type, data } => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        ImageSource::Url(url) => match crate::json::parse_data_url(url) {
            Some((mt, data)) => json!({"inlineData": {"mimeType": mt, "data": data}}),
            None => json!({"fileData": {"mimeType": guess_image_type(url), "fileUri": url}}),
        },
    }
}

pub fn encode_request(req: &ChatRequest, opts: &EncodeOpts) -> Result<Encoded, EncodeError> {
    req.check_translatable(Dialect::Gemini)?;
    let mut dropped = req.dropped_fields();
    let mut contents: Vec<Value> = Vec::with_capacity(req.messages.len());
    let mut last_role = None;
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        let mut parts = Vec::with_capacity(m.content.len());
        for p in &m.content {
            match p {
                // Gemini refuses empty text parts ("empty text parameter").
                Part::Text(t) if t.is_empty() => {}
                Part::Text(t) => parts.push(json!({"text": t})),
                Part::Image(src) => parts.push(image_part(src)),
                Part::ToolCall(c) => {
                    parts.push(json!({"functionCall": {"name": c.name, "args": args_object(&c.arguments)}}))
                }
                Part::ToolResult(r) => {
                    let mut text = String::new();
                    for c in &r.content {
                        match c {
                            Part::Text(t) => text.push_str(t),
                            Part::Image(_) => note(&mut dropped, "images in tool results"),
                            _ => {}
                        }
                    }
                    let name = req.tool_name_of(&r.call_id).unwrap_or("unknown");
                    let response = if r.is_error { json!({"error": text}) } else { json!({"content": text}) };
                    parts.push(json!({"functionResponse": {"name": name, "response": response}}));
                }
                Part::Thinking(t) => match thought_part(t) {
                    Some(part) => parts.push(part),
                    None => note(
                        &mut dropped,
                        "reasoning from another provider (its signature cannot be verified here)",
                    ),
                },
                Part::Unsupported(kind) => {
                    return Err(EncodeError {
                        field: format!("messages[{i}].content"),
                        target: Dialect::Gemini,
                        why: format!("content of type \"{kind}\" is not translated yet"),
                    });
                }
            }
        }
        if parts.is_empty() {
            continue;
        }
        // Parallel function responses belong in one content; consecutive turns of one role are merged.
        if last_role == Some(role)
            && let Some(prev) = contents.last_mut().and_then(|c| c["parts"].as_array_mut())
        {
            prev.append(&mut parts);
            continue;
        }
        last_role = Some(role);
        contents.push(json!({"role": role, "parts": parts}));
    }
    let mut body = Map::new();
    body.insert("contents".into(), contents.into());
    if let Some(system) = req.system_text() {
        body.insert("systemInstruction".into(), json!({"parts": [{"text": system}]}));
    }
    let mut g = Map::new();
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
        if req.stop.len() > MAX_STOP_SEQUENCES {
            note(&mut dropped, "stop sequences beyond the first 5");
        }
        let stop: Vec<&String> = req.stop.iter().take(MAX_STOP_SEQUENCES).collect();
        g.insert("stopSequences".into(), json!(stop));
    }
    match &req.response_format {
        None => {}
        Some(ResponseFormat::JsonObject) => {
            g.insert("responseMimeType".into(), "application/json".into());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            g.insert("responseMimeType".into(), "application/json".into());
            g.insert("responseJsonSchema".into(), schema.clone());
        }
    }
    if let Some(r) = &req.reasoning {
        if opts.reasoning {
            let budget = i64::from(r.effective_budget());
            g.insert(
                "thinkingConfig".into(),
                json!({"thinkingBudget": budget, "includeThoughts": r.visible}),
            );
        } else {
            note(&mut dropped, "reasoning (the target does not declare the reasoning capability)");
        }
    }
    if !g.is_empty() {
        body.insert("generationConfig".into(), g.into());
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut d = json!({"name": t.name, "parametersJsonSchema": t.parameters});
                if let Some(desc) = &t.description {
                    d["description"] = json!(desc);
                }
                d
            })
            .collect();
        body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        if let Some(c) = &req.tool_choice {
            let fcc = match c {
                ToolChoice::Auto => json!({"mode": "AUTO"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Named(n) => json!({"mode": "ANY", "allowedFunctionNames": [n]}),
            };
            body.insert("toolConfig".into(), json!({"functionCallingConfig": fcc}));
        }
        if req.parallel_tool_calls == Some(false) {
            note(&mut dropped, "parallel_tool_calls");
        }
    }
    if req.user.is_some() {
        note(&mut dropped, "user");
    }
    Ok(Encoded { body: crate::json::map_to_vec(&body), dropped })
}
