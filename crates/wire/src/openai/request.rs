//! OpenAI Chat Completions request bodies ⇄ the canonical request.

use serde_json::{Map, Value, json};

use super::{MAX_STOP_SEQUENCES, MaxTokensField, effort_from, effort_str};
use crate::canonical::{
    ChatRequest, Encoded, Message, Part, Reasoning, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
    ToolResult,
};
use crate::json::{
    arr_of, image_from_url, image_to_url, note, note_untranslated, require_str, str_of, unknown_keys,
};
use crate::{DecodeError, Dialect, EncodeError, EncodeOpts};

fn decode_parts(v: &Value, path: &str) -> Result<Vec<Part>, DecodeError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![Part::Text(s.clone())]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let path = format!("{path}[{i}]");
                Ok(match str_of(p, "type").unwrap_or_default() {
                    "text" => Part::Text(require_str(p, "text", &path)?.to_owned()),
                    "image_url" => {
                        let url = p
                            .get("image_url")
                            .and_then(|u| u.as_str().or_else(|| str_of(u, "url")))
                            .ok_or_else(|| DecodeError::Invalid(format!("{path}.image_url.url: required")))?;
                        Part::Image(image_from_url(url))
                    }
                    other => Part::Unsupported(other.to_owned()),
                })
            })
            .collect(),
        _ => Err(DecodeError::Invalid(format!("{path}: a string or a list of content parts"))),
    }
}

/// The request fields this module translates; any other is reported as dropped when translating.
const MODELLED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "user",
    "safety_identifier",
    "n",
    "functions",
    "function_call",
    "audio",
    "web_search_options",
];

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    if !v.is_object() {
        return Err(DecodeError::Invalid("the body must be a JSON object".into()));
    }
    let model =
        str_of(&v, "model").ok_or_else(|| DecodeError::Invalid("model: a string is required".into()))?;
    let Some(raw) = v.get("messages").and_then(Value::as_array) else {
        return Err(DecodeError::Invalid("messages: a list is required".into()));
    };
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::with_capacity(raw.len());
    let mut untranslated = Vec::new();
    for (i, m) in raw.iter().enumerate() {
        let path = format!("messages[{i}]");
        let content = decode_parts(m.get("content").unwrap_or(&Value::Null), &format!("{path}.content"))?;
        match str_of(m, "role") {
            Some("system") | Some("developer") => system.extend(
                content.into_iter().filter_map(|p| if let Part::Text(t) = p { Some(t) } else { None }),
            ),
            Some("user") => messages.push(Message { role: Role::User, content }),
            Some("assistant") => {
                let mut content = content;
                for c in arr_of(m, "tool_calls") {
                    let f = c.get("function").unwrap_or(&Value::Null);
                    content.push(Part::ToolCall(ToolCall {
                        id: require_str(c, "id", &path)?.to_owned(),
                        name: require_str(f, "name", &path)?.to_owned(),
                        arguments: str_of(f, "arguments").unwrap_or("{}").to_owned(),
                    }));
                }
                if m.get("function_call").is_some_and(|f| !f.is_null()) {
                    untranslated.push("function_call");
                }
                messages.push(Message { role: Role::Assistant, content });
            }
            Some("tool") => {
                let result = Part::ToolResult(ToolResult {
                    call_id: require_str(m, "tool_call_id", &path)?.to_owned(),
                    content,
                    is_error: false,
                });
                // Several tool messages answer one turn of calls: they form one user turn.
                match messages.last_mut() {
                    Some(last)
                        if last.role == Role::User
                            && last.content.iter().all(|p| matches!(p, Part::ToolResult(_))) =>
                    {
                        last.content.push(result)
                    }
                    _ => messages.push(Message { role: Role::User, content: vec![result] }),
                }
            }
            Some("function") => messages.push(Message {
                role: Role::User,
                content: vec![Part::Unsupported("function message".into())],
            }),
            other => return Err(DecodeError::Invalid(format!("{path}.role: unexpected role {other:?}"))),
        }
    }
    let mut tools = Vec::new();
    for t in arr_of(&v, "tools") {
        match str_of(t, "type") {
            Some("function") => {
                let f = t.get("function").unwrap_or(&Value::Null);
                tools.push(Tool {
                    name: require_str(f, "name", "tools[].function")?.to_owned(),
                    description: str_of(f, "description").map(str::to_owned),
                    parameters: f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"})),
                });
            }
            _ => note_untranslated(&mut untranslated, "tools"),
        }
    }
    let tool_choice = match v.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "required" => Some(ToolChoice::Required),
            "none" => Some(ToolChoice::None),
            _ => None,
        },
        Some(c) => match c.get("function").and_then(|f| str_of(f, "name")) {
            Some(name) => Some(ToolChoice::Named(name.to_owned())),
            None => {
                note_untranslated(&mut untranslated, "tool_choice");
                None
            }
        },
    };
    if v.get("functions").is_some_and(|f| !f.is_null()) {
        note_untranslated(&mut untranslated, "functions");
    }
    if v.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        note_untranslated(&mut untranslated, "n");
    }
    for field in ["audio", "web_search_options"] {
        if v.get(field).is_some_and(|a| !a.is_null()) {
            note_untranslated(&mut untranslated, field);
        }
    }
    let response_format = v.get("response_format").and_then(|f| match str_of(f, "type") {
        Some("json_object") => Some(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let js = f.get("json_schema").unwrap_or(&Value::Null);
            Some(ResponseFormat::JsonSchema {
                name: str_of(js, "name").unwrap_or("response").to_owned(),
                schema: js.get("schema").cloned().unwrap_or(Value::Null),
                strict: js.get("strict").and_then(Value::as_bool),
            })
        }
        _ => None,
    });
    let reasoning = str_of(&v, "reasoning_effort").and_then(effort_from).map(|e| Reasoning {
        effort: Some(e),
        budget_tokens: None,
        visible: false,
    });
    let stop = match v.get("stop") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    let max = |k: &str| v.get(k).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
    Ok(ChatRequest {
        model: model.to_owned(),
        system,
        messages,
        max_tokens: max("max_completion_tokens").or_else(|| max("max_tokens")),
        temperature: v.get("temperature").and_then(Value::as_f64),
        top_p: v.get("top_p").and_then(Value::as_f64),
        top_k: v.get("top_k").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
        stop,
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: v
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        tools,
        tool_choice,
        parallel_tool_calls: v.get("parallel_tool_calls").and_then(Value::as_bool),
        response_format,
        reasoning,
        user: str_of(&v, "user").or_else(|| str_of(&v, "safety_identifier")).map(str::to_owned),
        untranslated,
        ignored: unknown_keys(&v, MODELLED),
    })
}

fn unsupported(path: String, kind: &str) -> EncodeError {
    EncodeError {
        field: path,
        target: Dialect::OpenAiChat,
        why: format!("content of type \"{kind}\" is not translated yet"),
    }
}

/// Text and images as OpenAI content: a plain string when it is all text (every compatible server takes that).
fn content_value(parts: &[&Part], path: &str) -> Result<Value, EncodeError> {
    if parts.iter().all(|p| matches!(p, Part::Text(_))) {
        let text: String = parts
            .iter()
            .filter_map(|p| if let Part::Text(t) = p { Some(t.as_str()) } else { None })
            .collect();
        return Ok(Value::String(text));
    }
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            Part::Text(t) => out.push(json!({"type": "text", "text": t})),
            Part::Image(src) => {
                out.push(json!({"type": "image_url", "image_url": {"url": image_to_url(src)}}))
            }
            Part::Unsupported(kind) => return Err(unsupported(path.to_owned(), kind)),
            _ => {}
        }
    }
    Ok(Value::Array(out))
}

pub fn encode_request(req: &ChatRequest, model: &str, opts: &EncodeOpts) -> Result<Encoded, EncodeError> {
    req.check_translatable(Dialect::OpenAiChat)?;
    let mut dropped = req.dropped_fields();
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = req.system_text() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for (i, m) in req.messages.iter().enumerate() {
        let path = format!("messages[{i}].content");
        match m.role {
            Role::User => {
                // Tool results become `tool` messages, which must come right after the assistant's calls.
                let mut rest: Vec<&Part> = Vec::new();
                for p in &m.content {
                    match p {
                        Part::ToolResult(r) => {
                            let mut text = String::new();
                            if r.is_error {
                                text.push_str("Error: ");
                            }
                            for c in &r.content {
                                match c {
                                    Part::Text(t) => text.push_str(t),
                                    Part::Image(_) => note(&mut dropped, "images in tool results"),
                                    Part::Unsupported(kind) => return Err(unsupported(path.clone(), kind)),
                                    _ => {}
                                }
                            }
                            messages
                                .push(json!({"role": "tool", "tool_call_id": r.call_id, "content": text}));
                        }
                        Part::Thinking(_) => {}
                        Part::ToolCall(_) => {
                            return Err(unsupported(path.clone(), "tool call in a user message"));
                        }
                        other => rest.push(other),
                    }
                }
                if !rest.is_empty() {
                    messages.push(json!({"role": "user", "content": content_value(&rest, &path)?}));
                }
            }
            Role::Assistant => {
                let mut text = String::new();
                let mut calls = Vec::new();
                for p in &m.content {
                    match p {
                        Part::Text(t) => text.push_str(t),
                        Part::ToolCall(c) => calls.push(json!({"id": c.id, "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments}})),
                        Part::Thinking(_) => {}
                        Part::Image(_) => note(&mut dropped, "images in assistant messages"),
                        Part::ToolResult(_) => {
                            return Err(unsupported(path.clone(), "tool result in an assistant message"));
                        }
                        Part::Unsupported(kind) => return Err(unsupported(path.clone(), kind)),
                    }
                }
                let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), messages.into());
    if let Some(n) = req.max_tokens {
        let key = match opts.max_tokens_field {
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
    if req.top_k.is_some() {
        note(&mut dropped, "top_k");
    }
    if !req.stop.is_empty() {
        if req.stop.len() > MAX_STOP_SEQUENCES {
            note(&mut dropped, "stop sequences beyond the first 4");
        }
        let stop: Vec<&String> = req.stop.iter().take(MAX_STOP_SEQUENCES).collect();
        body.insert("stop".into(), json!(stop));
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut f = json!({"name": t.name, "parameters": t.parameters});
                if let Some(d) = &t.description {
                    f["description"] = json!(d);
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        body.insert("tools".into(), tools.into());
        if let Some(c) = &req.tool_choice {
            let v = match c {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::Required => json!("required"),
                ToolChoice::None => json!("none"),
                ToolChoice::Named(n) => json!({"type": "function", "function": {"name": n}}),
            };
            body.insert("tool_choice".into(), v);
        }
        if let Some(p) = req.parallel_tool_calls {
            body.insert("parallel_tool_calls".into(), p.into());
        }
    }
    match &req.response_format {
        None => {}
        Some(ResponseFormat::JsonObject) => {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }
        Some(ResponseFormat::JsonSchema { name, schema, strict }) => {
            let mut js = json!({"name": name, "schema": schema});
            if let Some(s) = strict {
                js["strict"] = json!(s);
            }
            body.insert("response_format".into(), json!({"type": "json_schema", "json_schema": js}));
        }
    }
    if let Some(r) = &req.reasoning {
        if opts.reasoning {
            body.insert("reasoning_effort".into(), effort_str(r.effective_effort()).into());
        } else {
            note(&mut dropped, "reasoning (the target does not declare the reasoning capability)");
        }
    }
    if let Some(u) = &req.user {
        body.insert("user".into(), u.as_str().into());
    }
    if req.stream {
        body.insert("stream".into(), true.into());
        // The gateway always wants usage, whatever the client asked for: it reports it to every dialect.
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Encoded { body: crate::json::map_to_vec(&body), dropped })
}
