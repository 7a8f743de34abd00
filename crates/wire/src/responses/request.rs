//! OpenAI Responses request bodies ⇄ the canonical request.
//!
//! `input` is a string (one user message) or a list of items: messages, `function_call`, `function_call_output`
//! and `reasoning` items translate; consecutive items of one role become one canonical message (tool results are
//! parts of a user message, tool calls and reasoning parts of an assistant message). Items that only OpenAI can
//! act on (`item_reference`, hosted tool calls…), hosted tools, prompt templates, background mode and
//! `previous_response_id` are kept in `untranslated`, so a translation refuses rather than losing them.

use serde_json::{Map, Value, json};

use super::response::reasoning_of;
use super::{INCLUDE_ENCRYPTED_REASONING, encrypted_content_of};
use crate::canonical::{
    ChatRequest, Encoded, ImageSource, Message, Part, Reasoning, ResponseFormat, Role, Tool, ToolCall,
    ToolChoice, ToolResult,
};
use crate::json::{image_from_url, image_to_url, note, note_untranslated, require_str, str_of, unknown_keys};
use crate::openai::{effort_from, effort_str};
use crate::{DecodeError, Dialect, EncodeError, EncodeOpts};

/// The request fields this module reads; any other is reported as dropped when translating.
const MODELLED: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "reasoning",
    "max_output_tokens",
    "temperature",
    "top_p",
    "user",
    "safety_identifier",
    "stream",
    "stream_options",
    "previous_response_id",
    "background",
    "conversation",
    "prompt",
    "store",
];

/// How the tool types only the Responses API defines are named in the dropped-field report.
fn tool_field(kind: &str) -> &'static str {
    match kind {
        "web_search" => "tools[].type=web_search",
        "web_search_preview" => "tools[].type=web_search_preview",
        "web_search_2025_08_26" => "tools[].type=web_search_2025_08_26",
        "web_search_preview_2025_03_11" => "tools[].type=web_search_preview_2025_03_11",
        "file_search" => "tools[].type=file_search",
        "mcp" => "tools[].type=mcp",
        "code_interpreter" => "tools[].type=code_interpreter",
        "computer_use_preview" => "tools[].type=computer_use_preview",
        "computer_use" => "tools[].type=computer_use",
        "image_generation" => "tools[].type=image_generation",
        "local_shell" => "tools[].type=local_shell",
        "shell" => "tools[].type=shell",
        "apply_patch" => "tools[].type=apply_patch",
        "custom" => "tools[].type=custom",
        _ => "tools[].type (a tool type other than function)",
    }
}

/// `untranslated` names of the input items that only the Responses API can act on.
fn item_field(kind: &str) -> &'static str {
    match kind {
        "item_reference" => "input[].type=item_reference",
        "web_search_call" => "input[].type=web_search_call",
        "file_search_call" => "input[].type=file_search_call",
        "computer_call" => "input[].type=computer_call",
        "computer_call_output" => "input[].type=computer_call_output",
        "code_interpreter_call" => "input[].type=code_interpreter_call",
        "image_generation_call" => "input[].type=image_generation_call",
        "local_shell_call" => "input[].type=local_shell_call",
        "local_shell_call_output" => "input[].type=local_shell_call_output",
        "shell_call" => "input[].type=shell_call",
        "shell_call_output" => "input[].type=shell_call_output",
        "apply_patch_call" => "input[].type=apply_patch_call",
        "apply_patch_call_output" => "input[].type=apply_patch_call_output",
        "mcp_list_tools" => "input[].type=mcp_list_tools",
        "mcp_approval_request" => "input[].type=mcp_approval_request",
        "mcp_approval_response" => "input[].type=mcp_approval_response",
        "mcp_call" => "input[].type=mcp_call",
        "custom_tool_call" => "input[].type=custom_tool_call",
        "custom_tool_call_output" => "input[].type=custom_tool_call_output",
        "compaction" => "input[].type=compaction",
        _ => "input[].type (an item type other than message, function_call, function_call_output, reasoning)",
    }
}

fn image(p: &Value, path: &str, untranslated: &mut Vec<&'static str>) -> Result<Part, DecodeError> {
    let url = p.get("image_url").and_then(|u| u.as_str().or_else(|| str_of(u, "url")));
    Ok(match url {
        Some(url) => Part::Image(image_from_url(url)),
        None if str_of(p, "file_id").is_some() => {
            note_untranslated(untranslated, "input_image.file_id");
            Part::Unsupported("input_image with file_id".into())
        }
        None => {
            return Err(DecodeError::Invalid(format!("{path}.image_url: a URL or a file_id is required")));
        }
    })
}

/// Message content (or a function call's output): a string, or a list of content parts.
fn decode_content(
    v: &Value,
    path: &str,
    untranslated: &mut Vec<&'static str>,
) -> Result<Vec<Part>, DecodeError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![Part::Text(s.clone())]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let path = format!("{path}[{i}]");
                Ok(match str_of(p, "type").unwrap_or_default() {
                    "input_text" | "output_text" => Part::Text(require_str(p, "text", &path)?.to_owned()),
                    "refusal" => Part::Text(require_str(p, "refusal", &path)?.to_owned()),
                    "input_image" => image(p, &path, untranslated)?,
                    other => Part::Unsupported(other.to_owned()),
                })
            })
            .collect(),
        _ => Err(DecodeError::Invalid(format!("{path}: a string or a list of content parts"))),
    }
}

/// Append parts to the conversation: to the last message when it has the same role, else as a new message.
fn push(messages: &mut Vec<Message>, role: Role, mut content: Vec<Part>) {
    match messages.last_mut() {
        Some(last) if last.role == role => last.content.append(&mut content),
        _ => messages.push(Message { role, content }),
    }
}

/// The `input` items: the conversation, and the system prompts of system and developer messages.
fn decode_input(
    input: &Value,
    system: &mut Vec<String>,
    untranslated: &mut Vec<&'static str>,
) -> Result<Vec<Message>, DecodeError> {
    let items = match input {
        Value::String(s) => return Ok(vec![Message::text(Role::User, s.clone())]),
        Value::Array(items) => items,
        _ => return Err(DecodeError::Invalid("input: a string or a list of items is required".into())),
    };
    let mut messages: Vec<Message> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("input[{i}]");
        if !item.is_object() {
            return Err(DecodeError::Invalid(format!("{path}: an item must be an object")));
        }
        let kind = str_of(item, "type").unwrap_or(if item.get("role").is_some() { "message" } else { "" });
        match kind {
            "message" => {
                let content = decode_content(
                    item.get("content").unwrap_or(&Value::Null),
                    &format!("{path}.content"),
                    untranslated,
                )?;
                match str_of(item, "role") {
                    Some("user") => push(&mut messages, Role::User, content),
                    Some("assistant") => push(&mut messages, Role::Assistant, content),
                    Some("system") | Some("developer") => system.extend(
                        content
                            .into_iter()
                            .filter_map(|p| if let Part::Text(t) = p { Some(t) } else { None }),
                    ),
                    other => {
                        return Err(DecodeError::Invalid(format!(
                            "{path}.role: unexpected role {other:?}; expected user, assistant, system or developer"
                        )));
                    }
                }
            }
            "function_call" => {
                let call = ToolCall {
                    id: require_str(item, "call_id", &path)?.to_owned(),
                    name: require_str(item, "name", &path)?.to_owned(),
                    arguments: str_of(item, "arguments").unwrap_or("{}").to_owned(),
                };
                push(&mut messages, Role::Assistant, vec![Part::ToolCall(call)]);
            }
            "function_call_output" => {
                let output = item
                    .get("output")
                    .ok_or_else(|| DecodeError::Invalid(format!("{path}.output: required")))?;
                let result = ToolResult {
                    call_id: require_str(item, "call_id", &path)?.to_owned(),
                    content: decode_content(output, &format!("{path}.output"), untranslated)?,
                    is_error: false,
                };
                push(&mut messages, Role::User, vec![Part::ToolResult(result)]);
            }
            "reasoning" => push(&mut messages, Role::Assistant, vec![Part::Thinking(reasoning_of(item))]),
            "" => return Err(DecodeError::Invalid(format!("{path}: an item needs a type or a role"))),
            other => note_untranslated(untranslated, item_field(other)),
        }
    }
    // An assistant's run of text is one string on the way out (see `encode_input`); read it the same way back.
    for m in messages.iter_mut().filter(|m| m.role == Role::Assistant) {
        let mut joined: Vec<Part> = Vec::with_capacity(m.content.len());
        for p in m.content.drain(..) {
            match (joined.last_mut(), p) {
                (Some(Part::Text(prev)), Part::Text(t)) => prev.push_str(&t),
                (_, p) => joined.push(p),
            }
        }
        m.content = joined;
    }
    Ok(messages)
}

fn decode_tools(v: &Value, ignored: &mut Vec<String>) -> Result<Vec<Tool>, DecodeError> {
    let tools = match v.get("tools") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(DecodeError::Invalid("tools: a list is required".into())),
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        match str_of(t, "type") {
            Some("function") => {
                out.push(Tool {
                    name: require_str(t, "name", &format!("tools[{i}]"))?.to_owned(),
                    description: str_of(t, "description").map(str::to_owned),
                    parameters: t
                        .get("parameters")
                        .filter(|p| !p.is_null())
                        .cloned()
                        .unwrap_or_else(|| json!({"type": "object"})),
                });
                // Strict schemas are the Responses default; no other dialect enforces them.
                if t.get("strict").and_then(Value::as_bool) != Some(false) {
                    note(ignored, "tools[].strict");
                }
            }
            // Hosted tools (web search, file search, code interpreter, MCP…) and the client-run tools only the
            // Responses API defines (custom grammars, shell, apply_patch, namespaces): no other API format can
            // offer them. A translation leaves them out and says so, rather than refusing the whole request: a
            // coding agent keeps working on another provider with its function tools. A Responses target gets them.
            Some(other) => note(ignored, &format!("{} (no other API format offers it)", tool_field(other))),
            None => return Err(DecodeError::Invalid(format!("tools[{i}].type: required"))),
        }
    }
    Ok(out)
}

fn decode_tool_choice(v: &Value, untranslated: &mut Vec<&'static str>) -> Option<ToolChoice> {
    match v.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "required" => Some(ToolChoice::Required),
            "none" => Some(ToolChoice::None),
            _ => None,
        },
        Some(c) => match (str_of(c, "type"), str_of(c, "name")) {
            (Some("function"), Some(name)) => Some(ToolChoice::Named(name.to_owned())),
            _ => {
                // allowed_tools, a hosted tool, mcp or custom: none has a canonical form.
                note_untranslated(untranslated, "tool_choice");
                None
            }
        },
    }
}

fn decode_text(v: &Value, ignored: &mut Vec<String>) -> Option<ResponseFormat> {
    let text = v.get("text").filter(|t| t.is_object())?;
    ignored.extend(unknown_keys(text, &["format"]).into_iter().map(|k| format!("text.{k}")));
    let f = text.get("format")?;
    match str_of(f, "type") {
        Some("json_object") => Some(ResponseFormat::JsonObject),
        Some("json_schema") => Some(ResponseFormat::JsonSchema {
            name: str_of(f, "name").unwrap_or("response").to_owned(),
            schema: f.get("schema").cloned().unwrap_or(Value::Null),
            strict: f.get("strict").and_then(Value::as_bool),
        }),
        _ => None,
    }
}

fn decode_reasoning(v: &Value) -> Option<Reasoning> {
    let r = v.get("reasoning").filter(|r| r.is_object())?;
    let effort = str_of(r, "effort");
    if effort == Some("none") {
        return None;
    }
    let visible = ["summary", "generate_summary"].iter().any(|k| r.get(*k).is_some_and(|s| !s.is_null()));
    let effort = effort.and_then(effort_from);
    (effort.is_some() || visible).then_some(Reasoning { effort, budget_tokens: None, visible })
}

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    if !v.is_object() {
        return Err(DecodeError::Invalid("the body must be a JSON object".into()));
    }
    let model =
        str_of(&v, "model").ok_or_else(|| DecodeError::Invalid("model: a string is required".into()))?;
    let input = v.get("input").ok_or_else(|| DecodeError::Invalid("input: required".into()))?;
    let mut system = match v.get("instructions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(_) => return Err(DecodeError::Invalid("instructions: a string is required".into())),
    };
    let mut untranslated = Vec::new();
    let mut ignored = unknown_keys(&v, MODELLED);
    let messages = decode_input(input, &mut system, &mut untranslated)?;
    let tools = decode_tools(&v, &mut ignored)?;
    let tool_choice = decode_tool_choice(&v, &mut untranslated);
    // State kept by OpenAI, or behaviour no other dialect has: refused rather than silently lost. The gateway
    // resolves `previous_response_id` before decoding; one still here names history the translation would lose.
    for field in ["previous_response_id", "conversation", "prompt"] {
        if v.get(field).is_some_and(|f| !f.is_null()) {
            note_untranslated(&mut untranslated, field);
        }
    }
    if v.get("background").and_then(Value::as_bool) == Some(true) {
        note_untranslated(&mut untranslated, "background");
    }
    // `store: false` is what every translation does anyway (the gateway keeps the state); `true` asked OpenAI to
    // keep the response, which a translation does not.
    if v.get("store").and_then(Value::as_bool) == Some(true) {
        ignored.push("store".into());
    }
    let num = |k: &str| v.get(k).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
    Ok(ChatRequest {
        model: model.to_owned(),
        system,
        messages,
        max_tokens: num("max_output_tokens"),
        temperature: v.get("temperature").and_then(Value::as_f64),
        top_p: v.get("top_p").and_then(Value::as_f64),
        top_k: None,
        stop: Vec::new(),
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        // A Responses stream always ends with the usage.
        include_usage: true,
        tools,
        tool_choice,
        parallel_tool_calls: v.get("parallel_tool_calls").and_then(Value::as_bool),
        response_format: decode_text(&v, &mut ignored),
        reasoning: decode_reasoning(&v),
        user: str_of(&v, "user").or_else(|| str_of(&v, "safety_identifier")).map(str::to_owned),
        untranslated,
        ignored,
    })
}

fn unsupported(path: &str, kind: &str) -> EncodeError {
    EncodeError {
        field: path.to_owned(),
        target: Dialect::OpenAiResponses,
        why: format!("content of type \"{kind}\" is not translated yet"),
    }
}

fn image_part(src: &ImageSource) -> Value {
    json!({"type": "input_image", "image_url": image_to_url(src), "detail": "auto"})
}

/// A tool result's `output`: a string when it is all text, else a list of input parts.
fn tool_output(r: &ToolResult, path: &str) -> Result<Value, EncodeError> {
    let prefix = if r.is_error { "Error: " } else { "" };
    if r.content.iter().all(|p| matches!(p, Part::Text(_))) {
        let text: String = r
            .content
            .iter()
            .filter_map(|p| if let Part::Text(t) = p { Some(t.as_str()) } else { None })
            .collect();
        return Ok(Value::String(format!("{prefix}{text}")));
    }
    let mut parts = Vec::with_capacity(r.content.len() + 1);
    if r.is_error {
        parts.push(json!({"type": "input_text", "text": prefix}));
    }
    for p in &r.content {
        match p {
            Part::Text(t) => parts.push(json!({"type": "input_text", "text": t})),
            Part::Image(src) => parts.push(image_part(src)),
            Part::Unsupported(kind) => return Err(unsupported(path, kind)),
            _ => {}
        }
    }
    Ok(Value::Array(parts))
}

/// The `input` items of a conversation, in order. Text and images go to message items (one per run of them: a
/// user's as `input_text`/`input_image` parts, an assistant's as one string, the form the reference gives for
/// earlier answers), tool calls and results to their own items, reasoning to `reasoning` items when a Responses
/// provider signed it with its encrypted content. No item carries an `id`: with `store: false` the API looks ids up
/// and fails ("Items are not persisted when `store` is set to false"), even beside `encrypted_content`, which is
/// what carries the reasoning (OpenAI's own Codex client leaves the ids out the same way).
fn encode_input(req: &ChatRequest, dropped: &mut Vec<String>) -> Result<Vec<Value>, EncodeError> {
    let mut items = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let path = format!("messages[{i}].content");
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let mut run: Vec<Value> = Vec::new();
        let flush = |run: &mut Vec<Value>, items: &mut Vec<Value>| {
            if run.is_empty() {
                return;
            }
            let content = match role {
                "assistant" => Value::String(
                    run.drain(..).filter_map(|p| str_of(&p, "text").map(str::to_owned)).collect(),
                ),
                _ => Value::Array(std::mem::take(run)),
            };
            items.push(json!({"type": "message", "role": role, "content": content}));
        };
        for p in &m.content {
            match (m.role, p) {
                (Role::User, Part::Text(t)) => run.push(json!({"type": "input_text", "text": t})),
                (Role::Assistant, Part::Text(t)) => run.push(json!({"text": t})),
                (Role::User, Part::Image(src)) => run.push(image_part(src)),
                (Role::Assistant, Part::Image(_)) => note(dropped, "images in assistant messages"),
                (Role::User, Part::ToolResult(r)) => {
                    flush(&mut run, &mut items);
                    let output = tool_output(r, &path)?;
                    items.push(
                        json!({"type": "function_call_output", "call_id": r.call_id, "output": output}),
                    );
                }
                (Role::Assistant, Part::ToolCall(c)) => {
                    flush(&mut run, &mut items);
                    items.push(json!({"type": "function_call", "call_id": c.id, "name": c.name,
                                      "arguments": c.arguments}));
                }
                (Role::Assistant, Part::Thinking(t)) => {
                    match t.signature.as_ref().and_then(encrypted_content_of) {
                        Some(enc) => {
                            flush(&mut run, &mut items);
                            let summary = if t.text.is_empty() {
                                json!([])
                            } else {
                                json!([{"type": "summary_text", "text": t.text}])
                            };
                            items.push(
                                json!({"type": "reasoning", "summary": summary, "encrypted_content": enc}),
                            );
                        }
                        None => note(
                            dropped,
                            "reasoning without a Responses provider's encrypted content (it cannot be sent back)",
                        ),
                    }
                }
                (Role::User, Part::Thinking(_)) => {}
                (_, Part::Unsupported(kind)) => return Err(unsupported(&path, kind)),
                (Role::User, Part::ToolCall(_)) => {
                    return Err(unsupported(&path, "tool call in a user message"));
                }
                (Role::Assistant, Part::ToolResult(_)) => {
                    return Err(unsupported(&path, "tool result in an assistant message"));
                }
            }
        }
        flush(&mut run, &mut items);
    }
    Ok(items)
}

pub fn encode_request(req: &ChatRequest, model: &str, opts: &EncodeOpts) -> Result<Encoded, EncodeError> {
    req.check_translatable(Dialect::OpenAiResponses)?;
    let mut dropped = req.dropped_fields();
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("input".into(), encode_input(req, &mut dropped)?.into());
    if let Some(system) = req.system_text() {
        body.insert("instructions".into(), system.into());
    }
    if let Some(n) = req.max_tokens {
        body.insert("max_output_tokens".into(), n.into());
    }
    for (name, value) in [("temperature", req.temperature), ("top_p", req.top_p)] {
        match value {
            Some(x) if opts.sampling_params => {
                body.insert(name.into(), x.into());
            }
            Some(_) => note(&mut dropped, name),
            None => {}
        }
    }
    if req.top_k.is_some() {
        note(&mut dropped, "top_k");
    }
    if !req.stop.is_empty() {
        note(&mut dropped, "stop sequences (the Responses API has none)");
    }
    if !req.tools.is_empty() {
        // Function tools are strict by default in the Responses API; every other dialect's are not.
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut tool =
                    json!({"type": "function", "name": t.name, "parameters": t.parameters, "strict": false});
                if let Some(d) = &t.description {
                    tool["description"] = json!(d);
                }
                tool
            })
            .collect();
        body.insert("tools".into(), tools.into());
        if let Some(c) = &req.tool_choice {
            let v = match c {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::Required => json!("required"),
                ToolChoice::None => json!("none"),
                ToolChoice::Named(n) => json!({"type": "function", "name": n}),
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
            body.insert("text".into(), json!({"format": {"type": "json_object"}}));
        }
        Some(ResponseFormat::JsonSchema { name, schema, strict }) => {
            let mut format = json!({"type": "json_schema", "name": name, "schema": schema});
            if let Some(s) = strict {
                format["strict"] = json!(s);
            }
            body.insert("text".into(), json!({"format": format}));
        }
    }
    if let Some(r) = &req.reasoning {
        if opts.reasoning {
            let mut reasoning = json!({"effort": effort_str(r.effective_effort())});
            if r.visible {
                reasoning["summary"] = json!("auto");
            }
            body.insert("reasoning".into(), reasoning);
            body.insert("include".into(), json!([INCLUDE_ENCRYPTED_REASONING]));
        } else {
            note(&mut dropped, "reasoning (the target does not declare the reasoning capability)");
        }
    }
    if let Some(u) = &req.user {
        body.insert("user".into(), u.as_str().into());
    }
    if req.stream {
        body.insert("stream".into(), true.into());
    }
    // The gateway keeps conversation state itself (`previous_response_id`); nothing is left with the provider.
    body.insert("store".into(), false.into());
    Ok(Encoded { body: crate::json::map_to_vec(&body), dropped })
}
