//! Anthropic request bodies ⇄ the canonical request.

use serde_json::{Map, Value, json};

use super::{DEFAULT_MAX_TOKENS, MIN_THINKING_BUDGET, REDACTED, signature_in, tool_use_id};
use crate::canonical::{
    ChatRequest, Effort, Encoded, ImageSource, Message, Part, Reasoning, ResponseFormat, Role, Signature,
    Thinking, Tool, ToolCall, ToolChoice, ToolResult,
};
use crate::json::{args_object, arr_of, note, require_str, str_of, to_text, unknown_keys};
use crate::{DecodeError, Dialect, EncodeError, EncodeOpts};

fn decode_block(b: &Value, path: &str) -> Result<Part, DecodeError> {
    let kind = str_of(b, "type").unwrap_or_default();
    Ok(match kind {
        "text" => Part::Text(require_str(b, "text", path)?.to_owned()),
        "image" => match b.get("source") {
            Some(src) => match str_of(src, "type") {
                Some("base64") => Part::Image(ImageSource::Base64 {
                    media_type: require_str(src, "media_type", path)?.to_owned(),
                    data: require_str(src, "data", path)?.to_owned(),
                }),
                Some("url") => Part::Image(ImageSource::Url(require_str(src, "url", path)?.to_owned())),
                _ => Part::Unsupported("image source".into()),
            },
            None => return Err(DecodeError::Invalid(format!("{path}.source: required"))),
        },
        "tool_use" => Part::ToolCall(ToolCall {
            id: require_str(b, "id", path)?.to_owned(),
            name: require_str(b, "name", path)?.to_owned(),
            arguments: b.get("input").map(to_text).unwrap_or_else(|| "{}".into()),
        }),
        "tool_result" => {
            let content = match b.get("content") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) => vec![Part::Text(s.clone())],
                Some(Value::Array(blocks)) => blocks
                    .iter()
                    .enumerate()
                    .map(|(i, c)| decode_block(c, &format!("{path}.content[{i}]")))
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(DecodeError::Invalid(format!("{path}.content: a string or a list"))),
            };
            Part::ToolResult(ToolResult {
                call_id: require_str(b, "tool_use_id", path)?.to_owned(),
                content,
                is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
            })
        }
        "thinking" => Part::Thinking(Thinking {
            text: str_of(b, "thinking").unwrap_or_default().to_owned(),
            signature: str_of(b, "signature").filter(|s| !s.is_empty()).map(signature_in),
        }),
        "redacted_thinking" => Part::Thinking(Thinking {
            text: String::new(),
            signature: Some(Signature {
                origin: Dialect::Anthropic,
                value: format!("{REDACTED}{}", str_of(b, "data").unwrap_or_default()),
            }),
        }),
        other => Part::Unsupported(other.to_owned()),
    })
}

fn decode_content(v: &Value, path: &str) -> Result<Vec<Part>, DecodeError> {
    match v {
        Value::String(s) => Ok(vec![Part::Text(s.clone())]),
        Value::Array(blocks) => {
            blocks.iter().enumerate().map(|(i, b)| decode_block(b, &format!("{path}[{i}]"))).collect()
        }
        _ => Err(DecodeError::Invalid(format!("{path}: a string or a list of content blocks"))),
    }
}

/// The request fields this module translates; any other is reported as dropped when translating.
const MODELLED: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "metadata",
    "mcp_servers",
    "container",
];

fn effort_from(s: &str) -> Option<Effort> {
    match s {
        "low" => Some(Effort::Low),
        "medium" => Some(Effort::Medium),
        "high" => Some(Effort::High),
        "xhigh" | "max" => Some(Effort::Max),
        _ => None,
    }
}

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    if !v.is_object() {
        return Err(DecodeError::Invalid("the body must be a JSON object".into()));
    }
    let model =
        str_of(&v, "model").ok_or_else(|| DecodeError::Invalid("model: a string is required".into()))?;
    let Some(raw_messages) = v.get("messages").and_then(Value::as_array) else {
        return Err(DecodeError::Invalid("messages: a list is required".into()));
    };
    let mut messages = Vec::with_capacity(raw_messages.len());
    // System messages inside the conversation (Claude Code sends one after its first user message): the canonical
    // model has one system prompt, so their text joins it (reported when translating: the position is lost).
    let mut inline_system = Vec::new();
    for (i, m) in raw_messages.iter().enumerate() {
        let role = match str_of(m, "role") {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("system") => {
                let path = format!("messages.{i}.content");
                for p in decode_content(m.get("content").unwrap_or(&Value::Null), &path)? {
                    if let Part::Text(t) = p {
                        inline_system.push(t);
                    }
                }
                continue;
            }
            other => {
                return Err(DecodeError::Invalid(format!(
                    "messages.{i}.role: unexpected role {other:?}; expected \"user\", \"assistant\" or \"system\""
                )));
            }
        };
        let content =
            decode_content(m.get("content").unwrap_or(&Value::Null), &format!("messages.{i}.content"))?;
        messages.push(Message { role, content });
    }
    let mut system: Vec<String> = match v.get("system") {
        None | Some(Value::Null) => Vec::new(),
        Some(s) => decode_content(s, "system")?
            .into_iter()
            .filter_map(|p| if let Part::Text(t) = p { Some(t) } else { None })
            .collect(),
    };
    let moved_system = !inline_system.is_empty();
    system.append(&mut inline_system);
    let mut untranslated = Vec::new();
    // Fields that give the model abilities no other dialect can carry: refused rather than silently lost.
    for field in ["mcp_servers", "container"] {
        if v.get(field).is_some_and(|f| !f.is_null()) {
            untranslated.push(field);
        }
    }
    let mut tools = Vec::new();
    for t in arr_of(&v, "tools") {
        // Custom tools have no `type` (or "custom"); server tools (web search, code execution…) are typed.
        match str_of(t, "type") {
            None | Some("custom") => tools.push(Tool {
                name: require_str(t, "name", "tools[]")?.to_owned(),
                description: str_of(t, "description").map(str::to_owned),
                parameters: t.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"})),
            }),
            Some(_) => {
                if !untranslated.contains(&"tools") {
                    untranslated.push("tools");
                }
            }
        }
    }
    let choice = v.get("tool_choice");
    let tool_choice = choice.and_then(|c| match str_of(c, "type") {
        Some("auto") => Some(ToolChoice::Auto),
        Some("any") => Some(ToolChoice::Required),
        Some("none") => Some(ToolChoice::None),
        Some("tool") => str_of(c, "name").map(|n| ToolChoice::Named(n.to_owned())),
        _ => None,
    });
    let parallel_tool_calls = choice
        .and_then(|c| c.get("disable_parallel_tool_use"))
        .and_then(Value::as_bool)
        .map(|disabled| !disabled);
    let output = v.get("output_config");
    let response_format = output.and_then(|o| o.get("format")).and_then(|f| match str_of(f, "type") {
        Some("json_schema") => Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            schema: f.get("schema").cloned().unwrap_or(Value::Null),
            strict: Some(true),
        }),
        _ => None,
    });
    let effort = output.and_then(|o| str_of(o, "effort")).and_then(effort_from);
    let thinking = v.get("thinking");
    let budget = thinking.and_then(|t| t.get("budget_tokens")).and_then(Value::as_u64);
    let visible = matches!(thinking.and_then(|t| str_of(t, "type")), Some("enabled") | Some("adaptive"));
    let reasoning = (visible || effort.is_some()).then(|| Reasoning {
        effort,
        budget_tokens: budget.and_then(|b| u32::try_from(b).ok()),
        visible,
    });
    Ok(ChatRequest {
        model: model.to_owned(),
        system,
        messages,
        max_tokens: v.get("max_tokens").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
        temperature: v.get("temperature").and_then(Value::as_f64),
        top_p: v.get("top_p").and_then(Value::as_f64),
        top_k: v.get("top_k").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
        stop: arr_of(&v, "stop_sequences").iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: true,
        tools,
        tool_choice,
        parallel_tool_calls,
        response_format,
        reasoning,
        user: v.get("metadata").and_then(|m| str_of(m, "user_id")).map(str::to_owned),
        untranslated,
        ignored: {
            let mut ignored = unknown_keys(&v, MODELLED);
            if moved_system {
                ignored.push(
                    "messages[].role=system (joined to the system prompt, its position lost)".to_owned(),
                );
            }
            ignored
        },
    })
}

/// Whether the conversation continues a tool loop (it ends with tool results) whose assistant turn does not begin
/// with thinking signed by Anthropic.
fn unsigned_tool_turn(req: &ChatRequest) -> bool {
    let ends_with_results = req
        .messages
        .last()
        .is_some_and(|m| m.role == Role::User && m.content.iter().any(|p| matches!(p, Part::ToolResult(_))));
    let Some(turn) = req.messages.iter().rev().find(|m| m.role == Role::Assistant) else {
        return false;
    };
    let calls = turn.content.iter().any(|p| matches!(p, Part::ToolCall(_)));
    let signed = matches!(turn.content.first(),
        Some(Part::Thinking(Thinking { signature: Some(sig), .. })) if sig.origin == Dialect::Anthropic);
    ends_with_results && calls && !signed
}

fn image_block(src: &ImageSource) -> Value {
    match src {
        ImageSource::Base64 { media_type, data } => {
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
        }
        ImageSource::Url(url) => match crate::json::parse_data_url(url) {
            Some((media_type, data)) => {
                json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
            }
            None => json!({"type": "image", "source": {"type": "url", "url": url}}),
        },
    }
}

/// Encode parts as Anthropic blocks. Empty text is left out (Anthropic refuses empty text blocks), and reasoning
/// signed by another provider is dropped (Anthropic could not verify it).
fn encode_blocks(parts: &[Part], path: &str, dropped: &mut Vec<String>) -> Result<Vec<Value>, EncodeError> {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            Part::Text(t) if t.is_empty() => {}
            Part::Text(t) => out.push(json!({"type": "text", "text": t})),
            Part::Image(src) => out.push(image_block(src)),
            Part::ToolCall(c) => out
                .push(json!({"type": "tool_use", "id": tool_use_id(&c.id), "name": c.name,
                                                 "input": args_object(&c.arguments)})),
            Part::ToolResult(r) => {
                let content = encode_blocks(&r.content, path, dropped)?;
                let mut b = json!({"type": "tool_result", "tool_use_id": tool_use_id(&r.call_id), "content": content});
                if r.is_error {
                    b["is_error"] = json!(true);
                }
                out.push(b);
            }
            Part::Thinking(t) => match &t.signature {
                Some(sig) if sig.origin == Dialect::Anthropic => match sig.value.strip_prefix(REDACTED) {
                    Some(data) => out.push(json!({"type": "redacted_thinking", "data": data})),
                    None => out.push(json!({"type": "thinking", "thinking": t.text, "signature": sig.value})),
                },
                _ => note(dropped, "reasoning from another provider (its signature cannot be verified here)"),
            },
            Part::Unsupported(kind) => {
                return Err(EncodeError {
                    field: path.to_owned(),
                    target: Dialect::Anthropic,
                    why: format!("content of type \"{kind}\" is not translated yet"),
                });
            }
        }
    }
    Ok(out)
}

pub fn encode_request(req: &ChatRequest, model: &str, opts: &EncodeOpts) -> Result<Encoded, EncodeError> {
    req.check_translatable(Dialect::Anthropic)?;
    let mut dropped = req.dropped_fields();
    // Anthropic takes consecutive turns of one role as one turn; merging them keeps tool results right after the
    // tool calls they answer, and first in their turn, as the API requires.
    let mut messages: Vec<Value> = Vec::with_capacity(req.messages.len());
    let mut last_role = None;
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let mut content = encode_blocks(&m.content, &format!("messages[{i}].content"), &mut dropped)?;
        if content.is_empty() {
            continue;
        }
        if last_role == Some(role)
            && let Some(prev) = messages.last_mut().and_then(|p| p["content"].as_array_mut())
        {
            prev.append(&mut content);
            continue;
        }
        last_role = Some(role);
        messages.push(json!({"role": role, "content": content}));
    }
    for m in &mut messages {
        if let Some(blocks) = m["content"].as_array_mut() {
            // Tool results first in their turn.
            blocks.sort_by_key(|b| b["type"] != "tool_result");
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), messages.into());
    let mut max_tokens = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let mut system = req.system_text();
    if let Some(ResponseFormat::JsonObject) = req.response_format {
        let rule = "Respond with a single JSON object and nothing else.";
        system = Some(match system {
            Some(s) => format!("{s}\n\n{rule}"),
            None => rule.to_owned(),
        });
        note(&mut dropped, "response_format json_object (approximated by an instruction)");
    }
    if let Some(s) = system {
        body.insert("system".into(), s.into());
    }
    let mut thinking_on = false;
    if req.reasoning.is_some() {
        let forced = matches!(req.tool_choice, Some(ToolChoice::Required) | Some(ToolChoice::Named(_)));
        if !opts.reasoning {
            note(&mut dropped, "reasoning (the target does not declare the reasoning capability)");
        } else if forced && !req.tools.is_empty() {
            // Anthropic refuses extended thinking together with a forced tool choice.
            note(&mut dropped, "reasoning (not allowed with a forced tool choice)");
        } else if unsigned_tool_turn(req) {
            // With thinking on, Anthropic requires the assistant turn of an ongoing tool loop to begin with its own
            // signed thinking block; a turn another provider produced has none.
            note(
                &mut dropped,
                "reasoning (the tool-use turn being continued has no Anthropic-signed thinking)",
            );
        } else if let Some(r) = &req.reasoning {
            // Effort becomes a thinking budget: every Claude model with extended thinking takes one.
            let budget = r.effective_budget().max(MIN_THINKING_BUDGET);
            // The budget is part of max_tokens: keep the client's room for the answer itself.
            if max_tokens <= budget {
                max_tokens = budget.saturating_add(max_tokens);
            }
            body.insert("thinking".into(), json!({"type": "enabled", "budget_tokens": budget}));
            thinking_on = true;
        }
    }
    if let Some(ResponseFormat::JsonSchema { schema, .. }) = &req.response_format {
        let format = json!({"type": "json_schema", "schema": schema});
        match body.get_mut("output_config").and_then(Value::as_object_mut) {
            Some(oc) => {
                oc.insert("format".into(), format);
            }
            None => {
                body.insert("output_config".into(), json!({"format": format}));
            }
        }
    }
    body.insert("max_tokens".into(), max_tokens.into());
    // Sampling parameters: refused from API version 2026-10-21, and not allowed with extended thinking.
    let sampling = opts.sampling_params && !thinking_on;
    for (name, present) in [
        ("temperature", req.temperature.is_some()),
        ("top_p", req.top_p.is_some()),
        ("top_k", req.top_k.is_some()),
    ] {
        if present && !sampling {
            note(&mut dropped, name);
        }
    }
    if sampling {
        if let Some(t) = req.temperature {
            // Anthropic's range is [0, 1]; OpenAI's and Gemini's is [0, 2]. Values up to 1 mean the same
            // everywhere and pass unchanged; higher ones are clamped to Anthropic's most random.
            body.insert("temperature".into(), t.clamp(0.0, 1.0).into());
        }
        // Current Claude models refuse temperature and top_p together; temperature is the one clients mean.
        match (req.temperature, req.top_p) {
            (Some(_), Some(_)) => note(&mut dropped, "top_p (Claude takes temperature or top_p, not both)"),
            (None, Some(p)) => {
                body.insert("top_p".into(), p.into());
            }
            _ => {}
        }
        if let Some(k) = req.top_k {
            body.insert("top_k".into(), k.into());
        }
    }
    if !req.stop.is_empty() {
        body.insert("stop_sequences".into(), req.stop.clone().into());
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut schema = t.parameters.clone();
                if !schema.is_object() {
                    schema = json!({"type": "object", "properties": {}});
                }
                let mut tool = json!({"name": t.name, "input_schema": schema});
                if let Some(d) = &t.description {
                    tool["description"] = json!(d);
                }
                tool
            })
            .collect();
        body.insert("tools".into(), tools.into());
        let mut choice = match &req.tool_choice {
            None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
            Some(ToolChoice::Required) => json!({"type": "any"}),
            Some(ToolChoice::None) => json!({"type": "none"}),
            Some(ToolChoice::Named(n)) => json!({"type": "tool", "name": n}),
        };
        if req.parallel_tool_calls == Some(false) && choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = json!(true);
        }
        if req.tool_choice.is_some() || req.parallel_tool_calls == Some(false) {
            body.insert("tool_choice".into(), choice);
        }
    }
    if let Some(u) = &req.user {
        body.insert("metadata".into(), json!({"user_id": u}));
    }
    if req.stream {
        body.insert("stream".into(), true.into());
    }
    Ok(Encoded { body: crate::json::map_to_vec(&body), dropped })
}
