//! OpenAI Chat Completions (`POST /v1/chat/completions`): bearer authentication, strict body validation with
//! OpenAI's own error messages (`{"error":{"message","type","param","code"}}`), and answers as a
//! `chat.completion` object or as `chat.completion.chunk` events ending in `data: [DONE]`.
//!
//! It never answers with tool calls, and never accepts a parameter the real API would call unrecognized.

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::answer::{self, Answer, Finish, Prompt};
use crate::error::ApiError;
use crate::json::{integer, show, to_u64, type_name};
use crate::routes::{Call, Reply};

const TOP_LEVEL: &[&str] = &[
    "messages",
    "model",
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "metadata",
    "modalities",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "prompt_cache_retention",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
];

const MESSAGE_KEYS: &[&str] = &[
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
    "function_call",
    "refusal",
    "audio",
    "annotations",
];

const ROLES: &str = "'system', 'assistant', 'user', 'function', 'tool', and 'developer'";

/// Serve one Chat Completions request.
pub(crate) fn handle(call: &Call<'_>) -> Result<Reply, ApiError> {
    authenticate(call)?;
    let body: Value = serde_json::from_slice(call.body).map_err(|_| {
        ApiError::bad(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your \
             HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. \
             If you have trouble figuring out how to fix this, please contact us through our help center at \
             help.openai.com.)",
        )
    })?;
    let request = validate(&body)?;
    let answer = answer::compose(call.name, &request.prompt);
    Ok(if request.stream {
        Reply::Sse(stream(&request, &answer))
    } else {
        Reply::Json(completion(&request, &answer))
    })
}

/// The error JSON for `err`.
pub(crate) fn error_body(err: &ApiError) -> Value {
    let kind = match err.status.as_u16() {
        429 => "requests",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    json!({"error": {"message": err.message, "type": kind, "param": err.param, "code": err.code}})
}

/// The error a `Status` fault produces.
pub(crate) fn status_error(status: StatusCode) -> ApiError {
    match status.as_u16() {
        401 => ApiError::new(status, "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.")
            .code("invalid_api_key"),
        403 => ApiError::new(status, "You are not allowed to sample from this model").code("model_not_allowed"),
        404 => ApiError::new(status, "The model does not exist or you do not have access to it.").code("model_not_found"),
        429 => ApiError::new(status, "Rate limit reached for requests. Please try again later.").code("rate_limit_exceeded"),
        503 => ApiError::new(status, "The engine is currently overloaded, please try again later"),
        s if s >= 500 => ApiError::new(
            status,
            "The server had an error while processing your request. Sorry about that!",
        ),
        _ => ApiError::new(status, "Invalid request"),
    }
}

fn authenticate(call: &Call<'_>) -> Result<(), ApiError> {
    let Some(expected) = call.api_key else {
        return Ok(());
    };
    let given = call
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(key) if key == expected => Ok(()),
        Some(key) => {
            let shown: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!(
                    "Incorrect API key provided: ****{shown}. You can find your API key at \
                     https://platform.openai.com/account/api-keys."
                ),
            )
            .code("invalid_api_key"))
        }
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using \
             Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if \
             you're accessing the API from your browser and are prompted for a username and password. You can \
             obtain an API key from https://platform.openai.com/account/api-keys.",
        )),
    }
}

struct Request {
    model: String,
    stream: bool,
    include_usage: bool,
    n: u64,
    prompt: Prompt,
}

fn missing(param: &str) -> ApiError {
    ApiError::bad(format!("Missing required parameter: '{param}'."))
        .param(param)
        .code("missing_required_parameter")
}

fn wrong_type(param: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::bad(format!(
        "Invalid type for '{param}': expected {expected}, but got {} instead.",
        article(type_name(got))
    ))
    .param(param)
    .code("invalid_type")
}

fn article(kind: &str) -> String {
    match kind {
        "null" => "null".to_owned(),
        "array" | "object" | "integer" => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

fn invalid_value(param: &str, got: &str, supported: &str) -> ApiError {
    ApiError::bad(format!("Invalid value: '{got}'. Supported values are: {supported}."))
        .param(param)
        .code("invalid_value")
}

/// The value of an optional parameter; `null` counts as absent, as in the real API.
fn opt<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn decimal_in(obj: &Map<String, Value>, key: &str, lo: f64, hi: f64) -> Result<(), ApiError> {
    let Some(v) = opt(obj, key) else { return Ok(()) };
    let Some(x) = v.as_f64() else {
        return Err(wrong_type(key, "a decimal", v));
    };
    if x < lo {
        return Err(ApiError::bad(format!(
            "Invalid '{key}': decimal below minimum value. Expected a value >= {lo}, but got {} instead.",
            show(v)
        ))
        .param(key)
        .code("decimal_below_min_value"));
    }
    if x > hi {
        return Err(ApiError::bad(format!(
            "Invalid '{key}': decimal above maximum value. Expected a value <= {hi}, but got {} instead.",
            show(v)
        ))
        .param(key)
        .code("decimal_above_max_value"));
    }
    Ok(())
}

fn integer_in(obj: &Map<String, Value>, key: &str, lo: i128, hi: i128) -> Result<Option<i128>, ApiError> {
    let Some(v) = opt(obj, key) else { return Ok(None) };
    let Some(n) = integer(v) else {
        return Err(wrong_type(key, "an integer", v));
    };
    if n < lo {
        return Err(ApiError::bad(format!(
            "Invalid '{key}': integer below minimum value. Expected a value >= {lo}, but got {n} instead."
        ))
        .param(key)
        .code("integer_below_min_value"));
    }
    if n > hi {
        return Err(ApiError::bad(format!(
            "Invalid '{key}': integer above maximum value. Expected a value <= {hi}, but got {n} instead."
        ))
        .param(key)
        .code("integer_above_max_value"));
    }
    Ok(Some(n))
}

fn validate(body: &Value) -> Result<Request, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(wrong_type("body", "an object", body));
    };
    if let Some(key) = obj.keys().find(|k| !TOP_LEVEL.contains(&k.as_str())) {
        return Err(ApiError::bad(format!("Unrecognized request argument supplied: {key}")));
    }
    let model = match opt(obj, "model") {
        None => return Err(ApiError::bad("you must provide a model parameter")),
        Some(Value::String(m)) => m.clone(),
        Some(other) => return Err(wrong_type("model", "a string", other)),
    };
    let mut prompt = Prompt::default();
    validate_messages(obj, &mut prompt)?;
    decimal_in(obj, "temperature", 0.0, 2.0)?;
    decimal_in(obj, "top_p", 0.0, 1.0)?;
    decimal_in(obj, "presence_penalty", -2.0, 2.0)?;
    decimal_in(obj, "frequency_penalty", -2.0, 2.0)?;
    let max_tokens = integer_in(obj, "max_tokens", 1, i128::from(u32::MAX))?;
    let max_completion = integer_in(obj, "max_completion_tokens", 1, i128::from(u32::MAX))?;
    prompt.max_tokens = max_completion.or(max_tokens).map(to_u64);
    let n = integer_in(obj, "n", 1, 128)?.map_or(1, to_u64);
    match opt(obj, "stop") {
        None => {}
        Some(Value::String(s)) => prompt.stop.push(s.clone()),
        Some(Value::Array(list)) => {
            if list.len() > 4 {
                return Err(ApiError::bad(format!(
                    "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array \
                     with length {} instead.",
                    list.len()
                ))
                .param("stop")
                .code("array_above_max_length"));
            }
            for (j, s) in list.iter().enumerate() {
                match s {
                    Value::String(s) => prompt.stop.push(s.clone()),
                    other => return Err(wrong_type(&format!("stop[{j}]"), "a string", other)),
                }
            }
        }
        Some(other) => return Err(wrong_type("stop", "a string or an array of strings", other)),
    }
    let stream = match opt(obj, "stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(wrong_type("stream", "a boolean", other)),
    };
    let include_usage = match opt(obj, "stream_options") {
        None => false,
        Some(_) if !stream => {
            return Err(ApiError::bad(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            )
            .param("stream_options"));
        }
        Some(Value::Object(options)) => match opt(options, "include_usage") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(wrong_type("stream_options.include_usage", "a boolean", other)),
        },
        Some(other) => return Err(wrong_type("stream_options", "an object", other)),
    };
    validate_tools(obj)?;
    Ok(Request { model, stream, include_usage, n, prompt })
}

/// The text of a message's `content`, checking its parts against the ones this role may send.
fn content_text(content: &Value, path: &str, parts_allowed: &[&str]) -> Result<String, ApiError> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut text = String::new();
            for (k, part) in parts.iter().enumerate() {
                let part_path = format!("{path}[{k}]");
                let Some(part) = part.as_object() else {
                    return Err(wrong_type(&part_path, "an object", part));
                };
                let kind = match part.get("type") {
                    None => return Err(missing(&format!("{part_path}.type"))),
                    Some(Value::String(t)) => t.as_str(),
                    Some(other) => return Err(wrong_type(&format!("{part_path}.type"), "a string", other)),
                };
                if !parts_allowed.contains(&kind) {
                    let supported =
                        parts_allowed.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ");
                    return Err(invalid_value(&format!("{part_path}.type"), kind, &supported));
                }
                let field = |name: &str| -> Result<&Value, ApiError> {
                    part.get(name).ok_or_else(|| missing(&format!("{part_path}.{name}")))
                };
                match kind {
                    "text" => match field("text")? {
                        Value::String(t) => text.push_str(t),
                        other => return Err(wrong_type(&format!("{part_path}.text"), "a string", other)),
                    },
                    "refusal" => match field("refusal")? {
                        Value::String(_) => {}
                        other => return Err(wrong_type(&format!("{part_path}.refusal"), "a string", other)),
                    },
                    "image_url" => {
                        let image = field("image_url")?;
                        let url =
                            image.get("url").ok_or_else(|| missing(&format!("{part_path}.image_url.url")))?;
                        if !url.is_string() {
                            return Err(wrong_type(&format!("{part_path}.image_url.url"), "a string", url));
                        }
                    }
                    "input_audio" => {
                        field("input_audio")?;
                    }
                    "file" => {
                        field("file")?;
                    }
                    _ => {}
                }
            }
            Ok(text)
        }
        other => Err(wrong_type(path, "a string or an array of objects", other)),
    }
}

fn validate_messages(obj: &Map<String, Value>, prompt: &mut Prompt) -> Result<(), ApiError> {
    let messages = match obj.get("messages") {
        None | Some(Value::Null) => return Err(missing("messages")),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong_type("messages", "an array of objects", other)),
    };
    if messages.is_empty() {
        return Err(ApiError::bad(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array \
             instead.",
        )
        .param("messages")
        .code("empty_array"));
    }
    // Tool call ids of the latest assistant message still waiting for their tool messages.
    let mut waiting: Vec<String> = Vec::new();
    let mut waiting_since = 0;
    for (i, m) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let Some(m) = m.as_object() else {
            return Err(wrong_type(&path, "an object", m));
        };
        if let Some(key) = m.keys().find(|k| !MESSAGE_KEYS.contains(&k.as_str())) {
            return Err(ApiError::bad(format!(
                "Additional properties are not allowed ('{key}' was unexpected) - 'messages.{i}'"
            ))
            .param(format!("messages[{i}]")));
        }
        let role = match m.get("role") {
            None => return Err(missing(&format!("{path}.role"))),
            Some(Value::String(r)) => r.as_str(),
            Some(other) => return Err(wrong_type(&format!("{path}.role"), "a string", other)),
        };
        if role != "tool" && !waiting.is_empty() {
            return Err(unanswered_tool_calls(waiting_since, &waiting));
        }
        if let Some(name) = m.get("name")
            && !name.is_string()
        {
            return Err(wrong_type(&format!("{path}.name"), "a string", name));
        }
        let content = m.get("content").filter(|c| !c.is_null());
        let content_path = format!("{path}.content");
        match role {
            "system" | "developer" => {
                let content = content.ok_or_else(|| missing(&content_path))?;
                let text = content_text(content, &content_path, &["text"])?;
                prompt.input_words += answer::words(&text);
                prompt.system.push_str(&text);
            }
            "user" => {
                let content = content.ok_or_else(|| missing(&content_path))?;
                let text =
                    content_text(content, &content_path, &["text", "image_url", "input_audio", "file"])?;
                prompt.input_words += answer::words(&text);
                let has_text = content.is_string()
                    || content
                        .as_array()
                        .is_some_and(|parts| parts.iter().any(|p| p.get("type") == Some(&json!("text"))));
                if has_text {
                    prompt.last_user = text;
                }
            }
            "assistant" => {
                let calls = validate_tool_calls(m.get("tool_calls"), &path)?;
                match content {
                    Some(content) => {
                        let text = content_text(content, &content_path, &["text", "refusal"])?;
                        prompt.input_words += answer::words(&text);
                    }
                    None if calls.is_empty() && m.get("function_call").is_none() => {
                        return Err(ApiError::bad(format!(
                            "Invalid value for 'content': expected a string, got null. ('{content_path}')"
                        ))
                        .param(content_path)
                        .code("invalid_value"));
                    }
                    None => {}
                }
                waiting = calls;
                waiting_since = i;
            }
            "tool" => {
                let content = content.ok_or_else(|| missing(&content_path))?;
                content_text(content, &content_path, &["text"])?;
                let id = match m.get("tool_call_id") {
                    None => return Err(missing(&format!("{path}.tool_call_id"))),
                    Some(Value::String(id)) => id,
                    Some(other) => {
                        return Err(wrong_type(&format!("{path}.tool_call_id"), "a string", other));
                    }
                };
                let Some(at) = waiting.iter().position(|w| w == id) else {
                    return Err(ApiError::bad(
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message \
                         with 'tool_calls'.",
                    )
                    .param(format!("messages.[{i}].role")));
                };
                waiting.remove(at);
            }
            "function" => {
                content.ok_or_else(|| missing(&content_path))?;
                if m.get("name").is_none() {
                    return Err(missing(&format!("{path}.name")));
                }
            }
            other => return Err(invalid_value(&format!("{path}.role"), other, ROLES)),
        }
    }
    if !waiting.is_empty() {
        return Err(unanswered_tool_calls(waiting_since, &waiting));
    }
    Ok(())
}

fn unanswered_tool_calls(index: usize, ids: &[String]) -> ApiError {
    ApiError::bad(format!(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each \
         'tool_call_id'. The following tool_call_ids did not have response messages: {}",
        ids.join(", ")
    ))
    .param(format!("messages.[{index}].role"))
}

/// Check an assistant message's `tool_calls`; returns their ids.
fn validate_tool_calls(calls: Option<&Value>, path: &str) -> Result<Vec<String>, ApiError> {
    let calls = match calls {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(calls)) => calls,
        Some(other) => return Err(wrong_type(&format!("{path}.tool_calls"), "an array", other)),
    };
    let mut ids = Vec::new();
    for (k, call) in calls.iter().enumerate() {
        let call_path = format!("{path}.tool_calls[{k}]");
        let Some(call) = call.as_object() else {
            return Err(wrong_type(&call_path, "an object", call));
        };
        let field = |name: &str| call.get(name).ok_or_else(|| missing(&format!("{call_path}.{name}")));
        let id = field("id")?;
        let Value::String(id) = id else {
            return Err(wrong_type(&format!("{call_path}.id"), "a string", id));
        };
        let kind = field("type")?;
        if kind.as_str() != Some("function") && kind.as_str() != Some("custom") {
            return Err(invalid_value(&format!("{call_path}.type"), &show(kind), "'function' and 'custom'"));
        }
        if kind.as_str() == Some("function") {
            let function = field("function")?;
            let fpath = format!("{call_path}.function");
            let Some(function) = function.as_object() else {
                return Err(wrong_type(&fpath, "an object", function));
            };
            match function.get("name") {
                None => return Err(missing(&format!("{fpath}.name"))),
                Some(Value::String(_)) => {}
                Some(other) => return Err(wrong_type(&format!("{fpath}.name"), "a string", other)),
            }
            match function.get("arguments") {
                None => return Err(missing(&format!("{fpath}.arguments"))),
                Some(Value::String(_)) => {}
                Some(other) => return Err(wrong_type(&format!("{fpath}.arguments"), "a string", other)),
            }
        }
        ids.push(id.clone());
    }
    Ok(ids)
}

fn validate_tools(obj: &Map<String, Value>) -> Result<(), ApiError> {
    let tools = match opt(obj, "tools") {
        None => None,
        Some(Value::Array(tools)) => Some(tools),
        Some(other) => return Err(wrong_type("tools", "an array", other)),
    };
    for (j, tool) in tools.into_iter().flatten().enumerate() {
        let path = format!("tools[{j}]");
        let Some(tool) = tool.as_object() else {
            return Err(wrong_type(&path, "an object", tool));
        };
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => {
                let function = tool.get("function").ok_or_else(|| missing(&format!("{path}.function")))?;
                match function.get("name") {
                    Some(Value::String(_)) => {}
                    None => return Err(missing(&format!("{path}.function.name"))),
                    Some(other) => {
                        return Err(wrong_type(&format!("{path}.function.name"), "a string", other));
                    }
                }
                if let Some(params) = function.get("parameters")
                    && !params.is_object()
                {
                    return Err(wrong_type(&format!("{path}.function.parameters"), "an object", params));
                }
            }
            Some("custom") => {}
            None => return Err(missing(&format!("{path}.type"))),
            Some(other) => {
                return Err(invalid_value(&format!("{path}.type"), other, "'function' and 'custom'"));
            }
        }
    }
    match opt(obj, "tool_choice") {
        None => Ok(()),
        Some(_) if tools.is_none_or(Vec::is_empty) => Err(ApiError::bad(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
        )
        .param("tool_choice")),
        Some(Value::String(choice)) if matches!(choice.as_str(), "none" | "auto" | "required") => Ok(()),
        Some(Value::String(choice)) => {
            Err(invalid_value("tool_choice", choice, "'none', 'auto', and 'required'"))
        }
        Some(Value::Object(_)) => Ok(()),
        Some(other) => Err(wrong_type("tool_choice", "a string or an object", other)),
    }
}

fn finish_reason(answer: &Answer) -> &'static str {
    match answer.finish {
        Finish::Length => "length",
        Finish::Natural | Finish::StopSequence(_) => "stop",
    }
}

fn usage(answer: &Answer) -> Value {
    json!({
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    })
}

const FINGERPRINT: &str = "fp_nines_sim";

fn completion(request: &Request, answer: &Answer) -> Value {
    let choices: Vec<Value> = (0..request.n)
        .map(|index| {
            json!({
                "index": index,
                "message": {"role": "assistant", "content": answer.text, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": finish_reason(answer),
            })
        })
        .collect();
    json!({
        "id": crate::ids::base62("chatcmpl-", 29),
        "object": "chat.completion",
        "created": crate::ids::unix_now(),
        "model": request.model,
        "choices": choices,
        "usage": usage(answer),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    })
}

fn stream(request: &Request, answer: &Answer) -> Vec<String> {
    let id = crate::ids::base62("chatcmpl-", 29);
    let created = crate::ids::unix_now();
    let chunk = |choices: Vec<Value>| -> String {
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
            obj.insert("usage".into(), Value::Null);
        }
        format!("data: {chunk}\n\n")
    };
    let each = |delta: &Value, finish: Value| -> Vec<Value> {
        (0..request.n)
            .map(|index| json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}))
            .collect()
    };
    let mut events =
        vec![chunk(each(&json!({"role": "assistant", "content": "", "refusal": null}), Value::Null))];
    for delta in answer.deltas() {
        events.push(chunk(each(&json!({"content": delta}), Value::Null)));
    }
    events.push(chunk(each(&json!({}), json!(finish_reason(answer)))));
    if request.include_usage {
        let last = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [],
            "usage": usage(answer),
        });
        events.push(format!("data: {last}\n\n"));
    }
    events.push("data: [DONE]\n\n".to_owned());
    events
}
