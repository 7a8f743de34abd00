//! The Anthropic Messages API (`POST /v1/messages`): authentication (`x-api-key`), the required
//! `anthropic-version` header, strict body validation with Anthropic's own error messages, and answers as a
//! Message object or as the published event stream (message_start, content_block_start, ping,
//! content_block_delta…, content_block_stop, message_delta, message_stop).
//!
//! It never answers with tool calls or thinking blocks, and never accepts fields the real API would refuse.

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::answer::{self, Answer, Finish, Prompt};
use crate::error::ApiError;
use crate::json::{integer, show, to_u64};
use crate::routes::{Call, Reply};

const VERSIONS: &[&str] = &["2026-10-21", "2023-06-01", "2023-01-01"];

/// From this version on, the Messages API refuses sampling parameters, `document` blocks in assistant messages and
/// citations on user text blocks (<https://platform.claude.com/docs/en/api/versioning>).
const STRICT_VERSION: &str = "2026-10-21";

const TOP_LEVEL: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_k",
    "top_p",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
    "output_config",
    "output_format",
];

const BLOCK_TYPES: &[&str] = &[
    "text",
    "image",
    "document",
    "search_result",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "container_upload",
];

const CUSTOM_TOOL_KEYS: &[&str] = &[
    "type",
    "name",
    "description",
    "input_schema",
    "cache_control",
    "strict",
    "defer_loading",
    "input_examples",
    "allowed_callers",
    "eager_input_streaming",
];

/// Serve one Messages request.
pub(crate) fn handle(call: &Call<'_>) -> Result<Reply, ApiError> {
    authenticate(call)?;
    let version = check_version(call)?;
    let body: Value = serde_json::from_slice(call.body).map_err(|err| {
        ApiError::bad(format!("There was an error parsing the body of your request: {err}"))
    })?;
    if version >= STRICT_VERSION {
        check_strict_version(&body)?;
    }
    let request = validate(&body)?;
    let answer = answer::compose(call.name, &request.prompt);
    Ok(if request.stream {
        Reply::Sse(stream(&request.model, &answer))
    } else {
        Reply::Json(message(&request.model, &answer))
    })
}

/// The error JSON for `err`.
pub(crate) fn error_body(err: &ApiError, request_id: &str) -> Value {
    json!({
        "type": "error",
        "error": {"type": error_type(err.status), "message": err.message},
        "request_id": request_id,
    })
}

/// The error a `Status` fault produces.
pub(crate) fn status_error(status: StatusCode) -> ApiError {
    let message = match status.as_u16() {
        400 => "Invalid request",
        401 => "invalid x-api-key",
        403 => "Your API key does not have permission to use the specified resource.",
        404 => "Not Found",
        413 => "Request exceeds the maximum allowed number of bytes.",
        429 => "This request would exceed the rate limit for your organization. Please try again later.",
        529 => "Overloaded",
        500 => "Internal server error",
        _ => "An unexpected error has occurred internal to Anthropic's systems.",
    };
    ApiError::new(status, message)
}

fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

fn authenticate(call: &Call<'_>) -> Result<(), ApiError> {
    let Some(expected) = call.api_key else {
        return Ok(());
    };
    // SDKs from 2.0 send the key as a bearer token; when both are present the API reads x-api-key.
    let bearer = call
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|k| http::HeaderValue::from_str(k).ok());
    match call.headers.get("x-api-key").cloned().or(bearer).as_ref() {
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "x-api-key header is required")),
        Some(got) if got.as_bytes() == expected.as_bytes() => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid x-api-key")),
    }
}

fn check_version<'a>(call: &Call<'a>) -> Result<&'a str, ApiError> {
    match call.headers.get("anthropic-version").map(|v| v.to_str().unwrap_or("")) {
        None => Err(ApiError::bad("anthropic-version: header is required")),
        Some(v) if VERSIONS.contains(&v) => Ok(v),
        Some(v) => Err(ApiError::bad(format!("anthropic-version: invalid version '{v}'"))),
    }
}

/// The request rules added by API version 2026-10-21.
fn check_strict_version(body: &Value) -> Result<(), ApiError> {
    let Some(obj) = body.as_object() else { return Ok(()) };
    for key in ["temperature", "top_p", "top_k"] {
        if obj.contains_key(key) {
            return Err(bad(format!("{key}: Extra inputs are not permitted")));
        }
    }
    let messages = obj.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let blocks = m.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for (j, b) in blocks.iter().enumerate() {
            let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
            if role == "assistant" && kind == "document" {
                return Err(bad(format!(
                    "messages.{i}.content.{j}: `document` blocks are not allowed in `assistant` messages"
                )));
            }
            let cited = b.get("citations").and_then(Value::as_array).is_some_and(|c| !c.is_empty());
            if role == "user" && kind == "text" && cited {
                return Err(bad(format!(
                    "messages.{i}.content.{j}.text.citations: citations are not allowed on `text` blocks in `user` messages"
                )));
            }
        }
    }
    Ok(())
}

struct Request {
    model: String,
    stream: bool,
    prompt: Prompt,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad(message)
}

fn extra_keys(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(format!("{path}{k}: Extra inputs are not permitted"))),
        None => Ok(()),
    }
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, ApiError> {
    match obj.get(key) {
        None => Err(bad(format!("{path}{key}: Field required"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(bad(format!("{path}{key}: Input should be a valid string"))),
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| bad(format!("{path}: Input should be a valid dictionary")))
}

fn number_in(obj: &Map<String, Value>, key: &str, lo: f64, hi: f64) -> Result<(), ApiError> {
    match obj.get(key) {
        None => Ok(()),
        Some(v) => match v.as_f64() {
            None => Err(bad(format!("{key}: Input should be a valid number"))),
            Some(x) if x < lo => Err(bad(format!("{key}: Input should be greater than or equal to {lo}"))),
            Some(x) if x > hi => Err(bad(format!("{key}: Input should be less than or equal to {hi}"))),
            Some(_) => Ok(()),
        },
    }
}

fn validate(body: &Value) -> Result<Request, ApiError> {
    let obj = body.as_object().ok_or_else(|| bad("Input should be a valid dictionary"))?;
    extra_keys(obj, TOP_LEVEL, "")?;
    let model = string(obj, "model", "")?.to_owned();
    let max_tokens = match obj.get("max_tokens") {
        None => return Err(bad("max_tokens: Field required")),
        Some(v) => match integer(v) {
            None => return Err(bad("max_tokens: Input should be a valid integer")),
            Some(n) if n < 1 => return Err(bad("max_tokens: Input should be greater than or equal to 1")),
            Some(n) => to_u64(n),
        },
    };
    let mut prompt = Prompt { max_tokens: Some(max_tokens), ..Prompt::default() };
    validate_messages(obj, &mut prompt)?;
    validate_system(obj, &mut prompt)?;
    number_in(obj, "temperature", 0.0, 1.0)?;
    number_in(obj, "top_p", 0.0, 1.0)?;
    if let Some(v) = obj.get("top_k") {
        match integer(v) {
            None => return Err(bad("top_k: Input should be a valid integer")),
            Some(n) if n < 0 => return Err(bad("top_k: Input should be greater than or equal to 0")),
            Some(_) => {}
        }
    }
    if let Some(v) = obj.get("stop_sequences") {
        let list = v.as_array().ok_or_else(|| bad("stop_sequences: Input should be a valid list"))?;
        for (j, s) in list.iter().enumerate() {
            let s = s
                .as_str()
                .ok_or_else(|| bad(format!("stop_sequences.{j}: Input should be a valid string")))?;
            prompt.stop.push(s.to_owned());
        }
    }
    let stream = match obj.get("stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("stream: Input should be a valid boolean")),
    };
    if let Some(v) = obj.get("metadata") {
        let meta = object(v, "metadata")?;
        extra_keys(meta, &["user_id"], "metadata.")?;
        if let Some(id) = meta.get("user_id")
            && !(id.is_string() || id.is_null())
        {
            return Err(bad("metadata.user_id: Input should be a valid string"));
        }
    }
    validate_tools(obj)?;
    validate_thinking(obj, max_tokens)?;
    if let Some(tier) = obj.get("service_tier")
        && !matches!(tier.as_str(), Some("auto" | "standard_only"))
    {
        return Err(bad("service_tier: Input should be 'auto' or 'standard_only'"));
    }
    Ok(Request { model, stream, prompt })
}

/// What a content block contributes to validation and to the answer.
enum Block {
    Text(String),
    ToolUse(String),
    ToolResult(String),
    Other,
}

fn validate_messages(obj: &Map<String, Value>, prompt: &mut Prompt) -> Result<(), ApiError> {
    let messages = match obj.get("messages") {
        None => return Err(bad("messages: Field required")),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(bad("messages: Input should be a valid list")),
    };
    if messages.is_empty() {
        return Err(bad("messages: at least one message is required"));
    }
    let last = messages.len() - 1;
    // tool_use ids of the previous message, when it was an assistant message.
    let mut open_tool_uses: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let path = format!("messages.{i}");
        let m = object(m, &path)?;
        extra_keys(m, &["role", "content"], &format!("{path}."))?;
        let role = match m.get("role") {
            None => return Err(bad(format!("{path}.role: Field required"))),
            Some(Value::String(r)) if r == "user" || r == "assistant" => r.as_str(),
            Some(_) => return Err(bad(format!("{path}.role: Input should be 'user' or 'assistant'"))),
        };
        let blocks = match m.get("content") {
            None => return Err(bad(format!("{path}.content: Field required"))),
            Some(Value::String(s)) => vec![Block::Text(s.clone())],
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(j, b)| content_block(b, &format!("{path}.content.{j}")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(bad(format!("{path}.content: Input should be a valid list"))),
        };
        let final_assistant = i == last && role == "assistant";
        let empty = blocks.is_empty() || matches!(blocks.as_slice(), [Block::Text(t)] if t.is_empty());
        if empty && !final_assistant {
            return Err(bad(format!(
                "{path}: all messages must have non-empty content except for the optional final assistant message"
            )));
        }
        if m.get("content").is_some_and(Value::is_array)
            && blocks.iter().any(|b| matches!(b, Block::Text(t) if t.is_empty()))
        {
            return Err(bad("messages: text content blocks must be non-empty"));
        }
        let text: String = blocks
            .iter()
            .filter_map(|b| if let Block::Text(t) = b { Some(t.as_str()) } else { None })
            .collect();
        if final_assistant && text.ends_with(char::is_whitespace) {
            return Err(bad("messages: final assistant content cannot end with trailing whitespace"));
        }
        check_tool_pairing(role, &blocks, &open_tool_uses, &path)?;
        open_tool_uses = if role == "assistant" {
            blocks
                .iter()
                .filter_map(|b| if let Block::ToolUse(id) = b { Some(id.clone()) } else { None })
                .collect()
        } else {
            Vec::new()
        };
        for block in &blocks {
            if let Block::Text(t) = block {
                prompt.input_words += answer::words(t);
            }
        }
        if role == "user" && blocks.iter().any(|b| matches!(b, Block::Text(_))) {
            prompt.last_user = text;
        }
    }
    Ok(())
}

fn check_tool_pairing(role: &str, blocks: &[Block], open: &[String], path: &str) -> Result<(), ApiError> {
    let results: Vec<&String> =
        blocks.iter().filter_map(|b| if let Block::ToolResult(id) = b { Some(id) } else { None }).collect();
    if let Some((j, id)) = blocks.iter().enumerate().find_map(|(j, b)| match b {
        Block::ToolResult(id) if !open.contains(id) => Some((j, id)),
        _ => None,
    }) {
        return Err(bad(format!(
            "{path}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` \
             block must have a corresponding `tool_use` block in the previous message."
        )));
    }
    let missing: Vec<&str> =
        open.iter().filter(|id| role != "user" || !results.contains(id)).map(String::as_str).collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "{path}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` \
             block must have a corresponding `tool_result` block in the next message.",
            missing.join(", ")
        )));
    }
    Ok(())
}

fn content_block(v: &Value, path: &str) -> Result<Block, ApiError> {
    let b = v.as_object().ok_or_else(|| {
        bad(format!("{path}: Input should be a valid dictionary or object to extract fields from"))
    })?;
    let kind = match b.get("type") {
        Some(Value::String(t)) => t.as_str(),
        _ => {
            return Err(bad(format!("{path}: Unable to extract tag using discriminator 'type'")));
        }
    };
    if !BLOCK_TYPES.contains(&kind) {
        let expected = BLOCK_TYPES.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
        return Err(bad(format!(
            "{path}: Input tag '{kind}' found using 'type' does not match any of the expected tags: {expected}"
        )));
    }
    let inner = format!("{path}.{kind}.");
    match kind {
        "text" => {
            extra_keys(b, &["type", "text", "cache_control", "citations"], &inner)?;
            Ok(Block::Text(string(b, "text", &inner)?.to_owned()))
        }
        "image" | "document" => {
            let allowed: &[&str] = if kind == "image" {
                &["type", "source", "cache_control"]
            } else {
                &["type", "source", "cache_control", "citations", "context", "title"]
            };
            extra_keys(b, allowed, &inner)?;
            let source = b.get("source").ok_or_else(|| bad(format!("{inner}source: Field required")))?;
            let source = object(source, &format!("{inner}source"))?;
            string(source, "type", &format!("{inner}source."))?;
            Ok(Block::Other)
        }
        "tool_use" => {
            extra_keys(b, &["type", "id", "name", "input", "cache_control", "caller"], &inner)?;
            let id = string(b, "id", &inner)?.to_owned();
            string(b, "name", &inner)?;
            match b.get("input") {
                None => return Err(bad(format!("{inner}input: Field required"))),
                Some(Value::Object(_)) => {}
                Some(_) => return Err(bad(format!("{inner}input: Input should be a valid dictionary"))),
            }
            Ok(Block::ToolUse(id))
        }
        "tool_result" => {
            extra_keys(b, &["type", "tool_use_id", "content", "is_error", "cache_control"], &inner)?;
            let id = string(b, "tool_use_id", &inner)?.to_owned();
            match b.get("content") {
                None | Some(Value::String(_)) => {}
                Some(Value::Array(parts)) => {
                    for (k, part) in parts.iter().enumerate() {
                        let part_path = format!("{inner}content.{k}");
                        let part = object(part, &part_path)?;
                        let t = string(part, "type", &format!("{part_path}."))?;
                        if t == "text" {
                            string(part, "text", &format!("{part_path}.text."))?;
                        }
                    }
                }
                Some(_) => return Err(bad(format!("{inner}content: Input should be a valid list"))),
            }
            if let Some(flag) = b.get("is_error")
                && !flag.is_boolean()
            {
                return Err(bad(format!("{inner}is_error: Input should be a valid boolean")));
            }
            Ok(Block::ToolResult(id))
        }
        "thinking" => {
            string(b, "thinking", &inner)?;
            string(b, "signature", &inner)?;
            Ok(Block::Other)
        }
        "redacted_thinking" => {
            string(b, "data", &inner)?;
            Ok(Block::Other)
        }
        _ => Ok(Block::Other),
    }
}

fn validate_system(obj: &Map<String, Value>, prompt: &mut Prompt) -> Result<(), ApiError> {
    match obj.get("system") {
        None => {}
        Some(Value::String(s)) => {
            prompt.input_words += answer::words(s);
            prompt.system = s.clone();
        }
        Some(Value::Array(blocks)) => {
            for (j, b) in blocks.iter().enumerate() {
                let path = format!("system.{j}");
                let b = object(b, &path)?;
                if b.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(bad(format!("{path}.type: Input should be 'text'")));
                }
                extra_keys(b, &["type", "text", "cache_control", "citations"], &format!("{path}."))?;
                let text = string(b, "text", &format!("{path}."))?;
                if text.is_empty() {
                    return Err(bad("system: text content blocks must be non-empty"));
                }
                prompt.input_words += answer::words(text);
                prompt.system.push_str(text);
            }
        }
        Some(_) => return Err(bad("system: Input should be a valid list")),
    }
    Ok(())
}

/// A server tool's type ends in a date (`web_search_20250305`); `custom` (or no type) is a client tool.
fn is_server_tool(kind: &str) -> bool {
    kind == "mcp_toolset"
        || kind
            .rsplit_once('_')
            .is_some_and(|(_, date)| date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()))
}

fn validate_tools(obj: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(v) = obj.get("tools") {
        let tools = v.as_array().ok_or_else(|| bad("tools: Input should be a valid list"))?;
        for (j, tool) in tools.iter().enumerate() {
            let path = format!("tools.{j}");
            let tool = object(tool, &path)?;
            match tool.get("type").map(|t| t.as_str()) {
                None | Some(Some("custom")) => {
                    let inner = format!("{path}.custom.");
                    extra_keys(tool, CUSTOM_TOOL_KEYS, &inner)?;
                    string(tool, "name", &inner)?;
                    match tool.get("input_schema") {
                        None => return Err(bad(format!("{inner}input_schema: Field required"))),
                        Some(Value::Object(schema)) => {
                            if schema.get("type").and_then(Value::as_str) != Some("object") {
                                return Err(bad(format!(
                                    "{inner}input_schema.type: Input should be 'object'"
                                )));
                            }
                        }
                        Some(_) => {
                            return Err(bad(format!(
                                "{inner}input_schema: Input should be a valid dictionary"
                            )));
                        }
                    }
                }
                Some(Some(kind)) if is_server_tool(kind) => {}
                Some(other) => {
                    let kind = other.unwrap_or("");
                    return Err(bad(format!(
                        "{path}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
                    )));
                }
            }
        }
    }
    if let Some(v) = obj.get("tool_choice") {
        let choice = object(v, "tool_choice")?;
        extra_keys(choice, &["type", "name", "disable_parallel_tool_use"], "tool_choice.")?;
        match choice.get("type").and_then(Value::as_str) {
            Some("auto" | "any" | "none") => {}
            Some("tool") => {
                string(choice, "name", "tool_choice.tool.")?;
            }
            _ => {
                return Err(bad(
                    "tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', \
                     'any', 'tool', 'none'",
                ));
            }
        }
    }
    Ok(())
}

fn validate_thinking(obj: &Map<String, Value>, max_tokens: u64) -> Result<(), ApiError> {
    let Some(v) = obj.get("thinking") else {
        return Ok(());
    };
    let thinking = object(v, "thinking")?;
    match thinking.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = thinking
                .get("budget_tokens")
                .ok_or_else(|| bad("thinking.enabled.budget_tokens: Field required"))?;
            let Some(n) = integer(budget) else {
                return Err(bad("thinking.enabled.budget_tokens: Input should be a valid integer"));
            };
            if n < 1024 {
                return Err(bad(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
                ));
            }
            if to_u64(n) >= max_tokens {
                return Err(bad(format!(
                    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation \
                     at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size \
                     (max_tokens: {max_tokens}, budget_tokens: {})",
                    show(budget)
                )));
            }
            Ok(())
        }
        Some("disabled" | "adaptive") => Ok(()),
        _ => Err(bad(
            "thinking: Input tag found using 'type' does not match any of the expected tags: 'enabled', 'disabled'",
        )),
    }
}

fn stop_reason(answer: &Answer) -> (&'static str, Value) {
    match &answer.finish {
        Finish::Natural => ("end_turn", Value::Null),
        Finish::Length => ("max_tokens", Value::Null),
        Finish::StopSequence(seq) => ("stop_sequence", Value::String(seq.clone())),
    }
}

fn message(model: &str, answer: &Answer) -> Value {
    let (reason, sequence) = stop_reason(answer);
    json!({
        "id": crate::ids::base62("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": answer.text}],
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": {
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    })
}

fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn stream(model: &str, answer: &Answer) -> Vec<String> {
    let (reason, sequence) = stop_reason(answer);
    let mut events = vec![
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": crate::ids::base62("msg_01", 22),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": answer.input_tokens,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            }}),
        ),
        event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", &json!({"type": "ping"})),
    ];
    for delta in answer.deltas() {
        events.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": delta}}),
        ));
    }
    events.push(event("content_block_stop", &json!({"type": "content_block_stop", "index": 0})));
    events.push(event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": {"output_tokens": answer.output_tokens},
        }),
    ));
    events.push(event("message_stop", &json!({"type": "message_stop"})));
    events
}
