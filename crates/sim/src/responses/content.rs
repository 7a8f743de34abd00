//! Validating `input` (a string, or a list of items) as the Responses API does, and reading from it what the answer
//! needs: the system text of `system`/`developer` messages, every user text and the last one, the images of a last
//! user message, the trailing run of `function_call_output` items (the tool results) and how many such runs there
//! were, the words of the prompt.
//!
//! Items: messages (parts `input_text`, `input_image`, `input_file`; an assistant's `output_text`, `refusal`),
//! `function_call` and `function_call_output` (every output answers an earlier call, every call gets an output),
//! `reasoning` (only with `encrypted_content` this simulator minted: it stores nothing to look an id up in),
//! `item_reference` (always refused, for the same reason) and the hosted tools' items (accepted as they are).
//! This module never renders a response.

use http::StatusCode;
use serde_json::{Map, Value};

use super::request::{string, unknown_keys};
use crate::answer::{self, Prompt, ToolResult, Turn};
use crate::continuation::{Message, text_of, user_message};
use crate::error::ApiError;
use crate::json::show;
use crate::openai::{invalid_value, missing, wrong_type};
use crate::thinking;

const ROLES: &str = "'user', 'assistant', 'system', and 'developer'";

/// Every content part type the API knows, as its error message lists them.
const PART_TYPES: &[&str] = &[
    "input_text",
    "input_image",
    "output_text",
    "refusal",
    "input_file",
    "computer_screenshot",
    "summary_text",
];

/// The image formats an `input_image` data URL may carry.
const IMAGE_FORMATS: &[&str] = &["png", "jpeg", "gif", "webp"];

/// Item types of the hosted tools, accepted as they are (the simulator never produces them).
const HOSTED_ITEMS: &[&str] = &[
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "web_search_call",
    "image_generation_call",
    "code_interpreter_call",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "custom_tool_call",
    "custom_tool_call_output",
    "compaction",
];

/// What `input` told, beyond what went into the prompt.
pub(super) struct Input {
    /// Some input message mentions "json" (what `text.format` `json_object` requires; `instructions` do not count).
    pub mentions_json: bool,
}

/// What a message's content holds.
#[derive(Default)]
struct Parts {
    text: String,
    has_text: bool,
    images: u64,
}

/// Check `input` (present: the caller checked) and fill the prompt; `store` and `name` decide how reasoning items
/// are refused.
pub(super) fn validate_input(
    input: &Value,
    prompt: &mut Prompt,
    store: bool,
    name: &str,
) -> Result<Input, ApiError> {
    let items = match input {
        Value::String(text) => {
            prompt.input_words += answer::words(text);
            prompt.user_texts.push(text.clone());
            prompt.last_user = text.clone();
            prompt.turn = Turn::UserText;
            return Ok(Input { mentions_json: mentions_json(text) });
        }
        Value::Array(items) => items,
        other => return Err(wrong_type("input", "a string or an array", other)),
    };
    if items.is_empty() {
        return Err(ApiError::bad(
            "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        )
        .param("input")
        .code("empty_array"));
    }
    let mut seen = Seen::default();
    for (i, item) in items.iter().enumerate() {
        let path = format!("input[{i}]");
        let Some(item) = item.as_object() else {
            return Err(wrong_type(&path, "an object", item));
        };
        let kind = match item.get("type").filter(|t| !t.is_null()) {
            Some(Value::String(kind)) => kind.as_str(),
            Some(other) => return Err(wrong_type(&format!("{path}.type"), "a string", other)),
            None if item.contains_key("role") => "message",
            None if item.contains_key("id") => "item_reference",
            None => return Err(missing(&format!("{path}.role"))),
        };
        if kind != "function_call_output" {
            seen.results.clear();
        }
        seen.last_user = None;
        match kind {
            "message" => message(item, &path, prompt, &mut seen)?,
            "function_call" => {
                unknown_keys(item, &["type", "id", "call_id", "name", "arguments", "status"], &path)?;
                let call_id = string(item, "call_id", &path)?;
                string(item, "name", &path)?;
                string(item, "arguments", &path)?;
                seen.calls.push(call_id.to_owned());
            }
            "function_call_output" => {
                unknown_keys(item, &["type", "id", "call_id", "output", "status"], &path)?;
                let call_id = string(item, "call_id", &path)?;
                let text = output_text(item, &path)?;
                if !seen.calls.iter().any(|c| c == call_id) {
                    return Err(ApiError::bad(format!(
                        "No tool call found for function call output with call_id {call_id}."
                    ))
                    .param("input"));
                }
                seen.answered.push(call_id.to_owned());
                if seen.results.is_empty() {
                    prompt.tool_turns += 1;
                }
                seen.results.push(ToolResult { text, error: false });
            }
            "reasoning" => reasoning(item, &path, store, name)?,
            "item_reference" => {
                unknown_keys(item, &["type", "id"], &path)?;
                return Err(item_not_found(string(item, "id", &path)?, store));
            }
            kind if HOSTED_ITEMS.contains(&kind) => {}
            other => {
                let mut known =
                    vec!["message", "function_call", "function_call_output", "reasoning", "item_reference"];
                known.extend(HOSTED_ITEMS);
                return Err(invalid_value(&format!("{path}.type"), other, &supported(&known)));
            }
        }
    }
    if let Some(call_id) = seen.calls.iter().find(|c| !seen.answered.contains(c)) {
        return Err(
            ApiError::bad(format!("No tool output found for function call {call_id}.")).param("input")
        );
    }
    prompt.turn = match seen.last_user {
        Some(parts) => {
            prompt.images = parts.images;
            if parts.has_text { Turn::UserText } else { Turn::Other }
        }
        None if !seen.results.is_empty() => Turn::ToolResults(seen.results),
        None => Turn::Other,
    };
    Ok(Input { mentions_json: seen.mentions_json })
}

/// A (validated) input item as continuations see it: a message item's role and text (an assistant's `output_text`,
/// a user's `input_text`, or string content); any other item is neither. (Assistant messages carry no tool calls
/// here: those are `function_call` items of their own.)
pub(super) fn view(item: &Value) -> Message {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
    let content = item.get("content");
    match (kind, item.get("role").and_then(Value::as_str)) {
        ("message", Some("assistant")) => {
            Message::Assistant { text: text_of(content, &["output_text", "input_text"]), calls: false }
        }
        ("message", Some("user")) => user_message(content, &["input_text"]),
        _ => Message::Other,
    }
}

/// What the items read so far have shown.
#[derive(Default)]
struct Seen {
    /// `call_id`s of the `function_call` items, in order.
    calls: Vec<String>,
    /// `call_id`s answered by a `function_call_output`.
    answered: Vec<String>,
    /// The current run of `function_call_output` items.
    results: Vec<ToolResult>,
    /// The content of the item just read, when it is a user message.
    last_user: Option<Parts>,
    mentions_json: bool,
}

fn mentions_json(text: &str) -> bool {
    text.to_lowercase().contains("json")
}

/// `'a', 'b', and 'c'` (or `'a' and 'b'`), as OpenAI lists supported values.
pub(super) fn supported(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [first, second] => format!("{first} and {second}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

/// A message item: role, content, and what it adds to the prompt.
fn message(
    item: &Map<String, Value>,
    path: &str,
    prompt: &mut Prompt,
    seen: &mut Seen,
) -> Result<(), ApiError> {
    unknown_keys(item, &["type", "role", "content", "id", "status", "phase"], path)?;
    let role = match item.get("role") {
        None => return Err(missing(&format!("{path}.role"))),
        Some(Value::String(role))
            if ["user", "assistant", "system", "developer"].contains(&role.as_str()) =>
        {
            role.as_str()
        }
        Some(Value::String(role)) => return Err(invalid_value(&format!("{path}.role"), role, ROLES)),
        Some(other) => return Err(wrong_type(&format!("{path}.role"), "a string", other)),
    };
    let content_path = format!("{path}.content");
    let parts = match item.get("content") {
        None | Some(Value::Null) => return Err(missing(&content_path)),
        Some(Value::String(text)) => Parts { text: text.clone(), has_text: true, images: 0 },
        Some(Value::Array(parts)) => content_parts(parts, &content_path, role == "assistant")?,
        Some(other) => return Err(wrong_type(&content_path, "a string or an array", other)),
    };
    seen.mentions_json |= mentions_json(&parts.text);
    prompt.input_words += answer::words(&parts.text);
    match role {
        "system" | "developer" => prompt.system.push_str(&parts.text),
        "user" => {
            if parts.has_text {
                prompt.user_texts.push(parts.text.clone());
                prompt.last_user = parts.text.clone();
            }
            seen.last_user = Some(parts);
        }
        _ => {}
    }
    Ok(())
}

/// Check a message's content parts (an assistant's are output parts, everyone else's input parts).
fn content_parts(parts: &[Value], path: &str, assistant: bool) -> Result<Parts, ApiError> {
    let mut out = Parts::default();
    for (k, part) in parts.iter().enumerate() {
        let part_path = format!("{path}[{k}]");
        let Some(part) = part.as_object() else {
            return Err(wrong_type(&part_path, "an object", part));
        };
        let kind = match part.get("type") {
            None => return Err(missing(&format!("{part_path}.type"))),
            Some(Value::String(kind)) => kind.as_str(),
            Some(other) => return Err(wrong_type(&format!("{part_path}.type"), "a string", other)),
        };
        if !PART_TYPES.contains(&kind) {
            return Err(invalid_value(&format!("{part_path}.type"), kind, &supported(PART_TYPES)));
        }
        let allowed: &[&str] = if assistant {
            &["output_text", "refusal"]
        } else {
            &["input_text", "input_image", "input_file"]
        };
        if !allowed.contains(&kind) {
            return Err(invalid_value(&format!("{part_path}.type"), kind, &supported(allowed)));
        }
        match kind {
            "input_text" | "output_text" => {
                let keys: &[&str] = if kind == "input_text" {
                    &["type", "text"]
                } else {
                    &["type", "text", "annotations", "logprobs"]
                };
                unknown_keys(part, keys, &part_path)?;
                out.text.push_str(string(part, "text", &part_path)?);
                out.has_text = true;
            }
            "refusal" => {
                unknown_keys(part, &["type", "refusal"], &part_path)?;
                string(part, "refusal", &part_path)?;
            }
            "input_image" => {
                input_image(part, &part_path)?;
                out.images += 1;
            }
            _ => input_file(part, &part_path)?,
        }
    }
    Ok(out)
}

/// An `input_image` part: an image URL (http(s) or a base64 data URL of a supported type) or a file id, and
/// `detail`.
fn input_image(part: &Map<String, Value>, path: &str) -> Result<(), ApiError> {
    unknown_keys(part, &["type", "image_url", "file_id", "detail"], path)?;
    if let Some(detail) = part.get("detail").filter(|d| !d.is_null())
        && !matches!(detail.as_str(), Some("low" | "high" | "auto" | "original"))
    {
        return Err(invalid_value(
            &format!("{path}.detail"),
            &show(detail),
            "'low', 'high', 'auto', and 'original'",
        ));
    }
    let url = match part.get("image_url").filter(|u| !u.is_null()) {
        None => {
            return match part.get("file_id").filter(|f| !f.is_null()) {
                None => Err(missing(&format!("{path}.image_url"))),
                Some(Value::String(_)) => Ok(()),
                Some(other) => Err(wrong_type(&format!("{path}.file_id"), "a string", other)),
            };
        }
        Some(Value::String(url)) => url,
        Some(other) => return Err(wrong_type(&format!("{path}.image_url"), "a string", other)),
    };
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(());
    }
    let invalid = |problem: &str| {
        ApiError::bad(format!(
            "Invalid '{path}.image_url'. Expected a base64-encoded data URL with an image MIME type (e.g. \
             'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got {problem}."
        ))
        .param(format!("{path}.image_url"))
        .code("invalid_value")
    };
    let Some(data_url) = url.strip_prefix("data:") else {
        return Err(invalid("a value without the 'data:' prefix"));
    };
    let (media, data) = data_url.split_once(',').unwrap_or((data_url, ""));
    let Some(mime) = media.strip_suffix(";base64") else {
        return Err(invalid(&format!("unsupported MIME type '{media}'")));
    };
    match mime.strip_prefix("image/") {
        Some(format) if IMAGE_FORMATS.contains(&format) => {}
        _ => return Err(invalid(&format!("unsupported MIME type '{mime}'"))),
    }
    if data.is_empty() {
        return Err(invalid("empty base64-encoded bytes"));
    }
    Ok(())
}

/// An `input_file` part: a file id, inline data (with a file name) or a URL.
fn input_file(part: &Map<String, Value>, path: &str) -> Result<(), ApiError> {
    unknown_keys(part, &["type", "file_id", "file_data", "file_url", "filename"], path)?;
    for key in ["file_id", "file_data", "file_url", "filename"] {
        if let Some(v) = part.get(key).filter(|v| !v.is_null())
            && !v.is_string()
        {
            return Err(wrong_type(&format!("{path}.{key}"), "a string", v));
        }
    }
    let given = |key: &str| part.get(key).is_some_and(Value::is_string);
    if !(given("file_id") || given("file_data") || given("file_url")) {
        return Err(missing(&format!("{path}.file_id")));
    }
    Ok(())
}

/// The text of a `function_call_output`'s `output`: a string, or the text of its `input_text` parts.
fn output_text(item: &Map<String, Value>, path: &str) -> Result<String, ApiError> {
    let output_path = format!("{path}.output");
    match item.get("output") {
        None | Some(Value::Null) => Err(missing(&output_path)),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => Ok(content_parts(parts, &output_path, false)?.text),
        Some(other) => Err(wrong_type(&output_path, "a string or an array", other)),
    }
}

/// A reasoning item sent back: it must carry this simulator's `encrypted_content` (there is no stored item to find
/// by its id).
fn reasoning(item: &Map<String, Value>, path: &str, store: bool, name: &str) -> Result<(), ApiError> {
    unknown_keys(item, &["type", "id", "summary", "content", "encrypted_content", "status"], path)?;
    let id = string(item, "id", path)?;
    let summary = match item.get("summary") {
        None => return Err(missing(&format!("{path}.summary"))),
        Some(Value::Array(summary)) => summary,
        Some(other) => return Err(wrong_type(&format!("{path}.summary"), "an array", other)),
    };
    for (k, part) in summary.iter().enumerate() {
        let part_path = format!("{path}.summary[{k}]");
        let Some(part) = part.as_object() else {
            return Err(wrong_type(&part_path, "an object", part));
        };
        unknown_keys(part, &["type", "text"], &part_path)?;
        let kind = string(part, "type", &part_path)?;
        if kind != "summary_text" {
            return Err(invalid_value(&format!("{part_path}.type"), kind, "'summary_text'"));
        }
        string(part, "text", &part_path)?;
    }
    match item.get("encrypted_content").filter(|e| !e.is_null()) {
        None => Err(item_not_found(id, store)),
        Some(Value::String(content)) if *content == thinking::encrypted_content(name) => Ok(()),
        Some(Value::String(content)) => Err(ApiError::bad(format!(
            "The encrypted content {} could not be verified.",
            abbreviate(content)
        ))
        .code("invalid_encrypted_content")),
        Some(other) => Err(wrong_type(&format!("{path}.encrypted_content"), "a string", other)),
    }
}

/// `gAAA...Rg==`: the first and last four characters, as the API quotes encrypted content.
fn abbreviate(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 8 {
        return text.to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

/// The 404 for an item id the API would look up in its store (the simulator has none).
fn item_not_found(id: &str, store: bool) -> ApiError {
    let message = if store {
        format!("Item with id '{id}' not found.")
    } else {
        format!(
            "Item with id '{id}' not found. Items are not persisted when `store` is set to false. Try again with \
             `store` set to true, or remove this item from your input."
        )
    };
    ApiError::new(StatusCode::NOT_FOUND, message).param("input")
}
