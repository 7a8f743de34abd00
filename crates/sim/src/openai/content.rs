//! Validating `messages` and their content parts as Chat Completions does (`messages[1].content[0].type`-style
//! params, `invalid_type`/`invalid_value` codes), image parts included, and reading from them what the answer needs:
//! the system and last user text, the trailing tool results or the images of the last message, the prompt's words.
//!
//! This module never renders a response.

use serde_json::{Map, Value};

use super::{invalid_value, missing, wrong_type};
use crate::answer::{self, Prompt, ToolResult, Turn};
use crate::continuation::{Message, text_of, user_message};
use crate::error::ApiError;
use crate::json::show;

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

/// What a message's `content` holds.
struct Parts {
    /// The concatenated text.
    text: String,
    /// Whether there is any text (a string content, or a text part).
    has_text: bool,
    /// How many `image_url` parts.
    images: u64,
}

/// Check a message's `content` against the parts this role may send; returns its text and images.
fn content_text(content: &Value, path: &str, parts_allowed: &[&str]) -> Result<Parts, ApiError> {
    let parts = match content {
        Value::String(s) => return Ok(Parts { text: s.clone(), has_text: true, images: 0 }),
        Value::Array(parts) => parts,
        other => return Err(wrong_type(path, "a string or an array of objects", other)),
    };
    let mut out = Parts { text: String::new(), has_text: false, images: 0 };
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
            let supported = parts_allowed.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ");
            return Err(invalid_value(&format!("{part_path}.type"), kind, &supported));
        }
        let field = |name: &str| -> Result<&Value, ApiError> {
            part.get(name).ok_or_else(|| missing(&format!("{part_path}.{name}")))
        };
        match kind {
            "text" => match field("text")? {
                Value::String(t) => {
                    out.text.push_str(t);
                    out.has_text = true;
                }
                other => return Err(wrong_type(&format!("{part_path}.text"), "a string", other)),
            },
            "refusal" => match field("refusal")? {
                Value::String(_) => {}
                other => return Err(wrong_type(&format!("{part_path}.refusal"), "a string", other)),
            },
            "image_url" => {
                image_url(field("image_url")?, &format!("{part_path}.image_url"))?;
                out.images += 1;
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
    Ok(out)
}

/// The image formats Chat Completions takes.
const IMAGE_FORMATS: &[&str] = &["png", "jpeg", "gif", "webp"];

/// Check an `image_url` part: an http(s) URL or a base64 data URL of a supported image type, and `detail`.
fn image_url(image: &Value, path: &str) -> Result<(), ApiError> {
    let Some(image) = image.as_object() else {
        return Err(wrong_type(path, "an object", image));
    };
    let url = match image.get("url") {
        None => return Err(missing(&format!("{path}.url"))),
        Some(Value::String(url)) => url,
        Some(other) => return Err(wrong_type(&format!("{path}.url"), "a string", other)),
    };
    if let Some(detail) = image.get("detail").filter(|d| !d.is_null())
        && !matches!(detail.as_str(), Some("auto" | "low" | "high"))
    {
        return Err(invalid_value(&format!("{path}.detail"), &show(detail), "'auto', 'low', and 'high'"));
    }
    let invalid = |problem: &str| {
        ApiError::bad(format!(
            "Invalid image URL: '{path}.url'. Expected a base64-encoded data URL with an image MIME type (e.g. \
             'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got {problem}."
        ))
        .param(format!("{path}.url"))
        .code("invalid_value")
    };
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(());
    }
    let Some(data_url) = url.strip_prefix("data:") else {
        return Err(invalid("a value without the 'data:' prefix"));
    };
    let (media, data) = data_url.split_once(',').unwrap_or((data_url, ""));
    let Some(mime) = media.strip_suffix(";base64") else {
        return Err(invalid(&format!("unsupported MIME type '{media}'")));
    };
    let Some(format) = mime.strip_prefix("image/") else {
        return Err(invalid(&format!("unsupported MIME type '{mime}'")));
    };
    if data.is_empty() {
        return Err(invalid("empty base64-encoded bytes"));
    }
    if !IMAGE_FORMATS.contains(&format) {
        return Err(ApiError::bad(
            "You uploaded an unsupported image. Please make sure your image has of one the following formats: \
             ['png', 'jpeg', 'gif', 'webp'].",
        )
        .code("invalid_image_format"));
    }
    Ok(())
}

/// Check `messages` and fill the prompt's system and last user text, turn, images and input words; returns whether
/// any message text mentions "json" (JSON mode's requirement).
pub(super) fn validate_messages(obj: &Map<String, Value>, prompt: &mut Prompt) -> Result<bool, ApiError> {
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
    let mut mentions_json = false;
    // Results of the trailing run of tool messages.
    let mut results: Vec<ToolResult> = Vec::new();
    let last = messages.len() - 1;
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
        if role != "tool" {
            results.clear();
        }
        let content = m.get("content").filter(|c| !c.is_null());
        let content_path = format!("{path}.content");
        match role {
            "system" | "developer" => {
                let content = content.ok_or_else(|| missing(&content_path))?;
                let text = content_text(content, &content_path, &["text"])?.text;
                mentions_json |= text.to_lowercase().contains("json");
                prompt.input_words += answer::words(&text);
                prompt.system.push_str(&text);
            }
            "user" => {
                let content = content.ok_or_else(|| missing(&content_path))?;
                let parts =
                    content_text(content, &content_path, &["text", "image_url", "input_audio", "file"])?;
                mentions_json |= parts.text.to_lowercase().contains("json");
                prompt.input_words += answer::words(&parts.text);
                if i == last {
                    prompt.images = parts.images;
                    prompt.turn = if parts.has_text { Turn::UserText } else { Turn::Other };
                }
                if parts.has_text {
                    prompt.user_texts.push(parts.text.clone());
                    prompt.last_user = parts.text;
                }
            }
            "assistant" => {
                let calls = validate_tool_calls(m.get("tool_calls"), &path)?;
                match content {
                    Some(content) => {
                        let text = content_text(content, &content_path, &["text", "refusal"])?.text;
                        mentions_json |= text.to_lowercase().contains("json");
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
                let text = content_text(content, &content_path, &["text"])?.text;
                mentions_json |= text.to_lowercase().contains("json");
                if results.is_empty() {
                    // The first tool message of a run: one more turn of tool results.
                    prompt.tool_turns += 1;
                }
                results.push(ToolResult { text, error: false });
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
    if !results.is_empty() {
        prompt.turn = Turn::ToolResults(results);
    }
    Ok(mentions_json)
}

/// A (validated) message as continuations see it: an assistant's text and whether it has `tool_calls` (or a
/// legacy `function_call`); a user's text.
pub(super) fn view(message: &Value) -> Message {
    let content = message.get("content").filter(|c| !c.is_null());
    match message.get("role").and_then(Value::as_str) {
        Some("assistant") => {
            let calls = message.get("tool_calls").and_then(Value::as_array).is_some_and(|c| !c.is_empty())
                || message.get("function_call").is_some_and(|f| !f.is_null());
            Message::Assistant { text: text_of(content, &["text"]), calls }
        }
        Some("user") => user_message(content, &["text"]),
        _ => Message::Other,
    }
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
