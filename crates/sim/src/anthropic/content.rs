//! Validating `messages` and their content blocks as the Messages API does (its pydantic-style error paths such as
//! `messages.0.content.1.image.source.base64.media_type`), and reading from them what the answer needs: the last
//! user text, the tool results or images of the last message, the words of the prompt.
//!
//! Thinking blocks sent back are accepted only with the signature this simulator minted. This module never renders
//! a response.

use serde_json::{Map, Value};

use super::bad;
use super::request::{extra_keys, object, string};
use crate::answer::{self, Prompt, ToolResult, Turn};
use crate::continuation::{Message, text_of};
use crate::error::ApiError;
use crate::thinking;

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

/// The image media types the Messages API takes.
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// What a content block contributes to validation and to the answer.
enum Block {
    Text(String),
    Image,
    ToolUse(String),
    ToolResult { id: String, result: ToolResult },
    Other,
}

/// Check `messages` and fill the prompt's last user text, turn, images and input words.
pub(super) fn validate_messages(
    obj: &Map<String, Value>,
    prompt: &mut Prompt,
    name: &str,
) -> Result<(), ApiError> {
    let messages = match obj.get("messages") {
        None => return Err(bad("messages: Field required")),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(bad("messages: Input should be a valid list")),
    };
    if messages.is_empty() {
        return Err(bad("messages: at least one message is required"));
    }
    // The conversation's last turn: a system message inside the conversation (Claude Code puts one after the
    // first user message) is not a turn.
    let last = messages
        .iter()
        .rposition(|m| m.get("role").and_then(Value::as_str) != Some("system"))
        .unwrap_or(messages.len() - 1);
    // tool_use ids of the previous message, when it was an assistant message.
    let mut open_tool_uses: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let path = format!("messages.{i}");
        let m = object(m, &path)?;
        extra_keys(m, &["role", "content"], &format!("{path}."))?;
        let role = match m.get("role") {
            None => return Err(bad(format!("{path}.role: Field required"))),
            Some(Value::String(r)) if r == "user" || r == "assistant" || r == "system" => r.as_str(),
            Some(_) => {
                return Err(bad(format!("{path}.role: Input should be 'user', 'assistant' or 'system'")));
            }
        };
        // A system message inside the conversation (what Claude Code sends after its first user message): it
        // applies from its position on; it is read (its words count) but is neither a turn nor the user's text.
        if role == "system" {
            let text = match m.get("content") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Array(list)) if !list.is_empty() => {
                    let mut text = String::new();
                    for (j, b) in list.iter().enumerate() {
                        match content_block(b, &format!("{path}.content.{j}"), name)? {
                            Block::Text(t) => text.push_str(&t),
                            _ => {
                                return Err(bad(format!(
                                    "{path}.content.{j}: system messages may only contain text blocks"
                                )));
                            }
                        }
                    }
                    text
                }
                Some(Value::String(_)) | Some(Value::Array(_)) => {
                    return Err(bad(format!("{path}: system messages must have non-empty content")));
                }
                None => return Err(bad(format!("{path}.content: Field required"))),
                Some(_) => return Err(bad(format!("{path}.content: Input should be a valid list"))),
            };
            if i == 0 {
                return Err(bad(format!("{path}: the first message must not be a system message")));
            }
            prompt.input_words += answer::words(&text);
            continue;
        }
        let blocks = match m.get("content") {
            None => return Err(bad(format!("{path}.content: Field required"))),
            Some(Value::String(s)) => vec![Block::Text(s.clone())],
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(j, b)| content_block(b, &format!("{path}.content.{j}"), name))
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
        let has_text = blocks.iter().any(|b| matches!(b, Block::Text(_)));
        if role == "user" && has_text {
            prompt.user_texts.push(text.clone());
            prompt.last_user = text;
        }
        if role == "user" && blocks.iter().any(|b| matches!(b, Block::ToolResult { .. })) {
            prompt.tool_turns += 1;
        }
        if i == last && role == "user" {
            let results: Vec<ToolResult> = blocks
                .iter()
                .filter_map(|b| {
                    if let Block::ToolResult { result, .. } = b { Some(result.clone()) } else { None }
                })
                .collect();
            if results.is_empty() {
                prompt.images = crate::json::count(blocks.iter().filter(|b| matches!(b, Block::Image)));
                prompt.turn = if has_text { Turn::UserText } else { Turn::Other };
            } else {
                prompt.turn = Turn::ToolResults(results);
            }
        }
    }
    Ok(())
}

/// A (validated) message as continuations see it: an assistant's text and whether it has tool use blocks; a user's
/// text when it carries no tool results.
pub(super) fn view(message: &Value) -> Message {
    let content = message.get("content");
    let blocks = content.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let has = |kinds: &[&str]| {
        blocks.iter().any(|b| b.get("type").and_then(Value::as_str).is_some_and(|t| kinds.contains(&t)))
    };
    let has_text = content.is_some_and(Value::is_string) || has(&["text"]);
    match message.get("role").and_then(Value::as_str) {
        Some("assistant") => Message::Assistant {
            text: text_of(content, &["text"]),
            calls: has(&["tool_use", "server_tool_use", "mcp_tool_use"]),
        },
        Some("user") if has(&["tool_result"]) || !has_text => Message::User(None),
        Some("user") => Message::User(Some(text_of(content, &["text"]))),
        _ => Message::Other,
    }
}

fn check_tool_pairing(role: &str, blocks: &[Block], open: &[String], path: &str) -> Result<(), ApiError> {
    let results: Vec<&String> = blocks
        .iter()
        .filter_map(|b| if let Block::ToolResult { id, .. } = b { Some(id) } else { None })
        .collect();
    if let Some((j, id)) = blocks.iter().enumerate().find_map(|(j, b)| match b {
        Block::ToolResult { id, .. } if !open.contains(id) => Some((j, id)),
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

fn content_block(v: &Value, path: &str, name: &str) -> Result<Block, ApiError> {
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
        "image" => {
            extra_keys(b, &["type", "source", "cache_control"], &inner)?;
            image_source(b, &inner)?;
            Ok(Block::Image)
        }
        "document" => {
            extra_keys(b, &["type", "source", "cache_control", "citations", "context", "title"], &inner)?;
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
            let text = match b.get("content") {
                None => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => {
                    let mut text = String::new();
                    for (k, part) in parts.iter().enumerate() {
                        let part_path = format!("{inner}content.{k}");
                        let part = object(part, &part_path)?;
                        let t = string(part, "type", &format!("{part_path}."))?;
                        if t == "text" {
                            text.push_str(string(part, "text", &format!("{part_path}.text."))?);
                        }
                    }
                    text
                }
                Some(_) => return Err(bad(format!("{inner}content: Input should be a valid list"))),
            };
            let error = match b.get("is_error") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(flag)) => *flag,
                Some(_) => return Err(bad(format!("{inner}is_error: Input should be a valid boolean"))),
            };
            Ok(Block::ToolResult { id, result: ToolResult { text, error } })
        }
        "thinking" => {
            extra_keys(b, &["type", "thinking", "signature"], &inner)?;
            string(b, "thinking", &inner)?;
            if string(b, "signature", &inner)? != thinking::signature(name) {
                return Err(bad(format!("{path}: Invalid `signature` in `thinking` block")));
            }
            Ok(Block::Other)
        }
        "redacted_thinking" => {
            extra_keys(b, &["type", "data"], &inner)?;
            if string(b, "data", &inner)? != thinking::signature(name) {
                return Err(bad(format!("{path}: Invalid `data` in `redacted_thinking` block")));
            }
            Ok(Block::Other)
        }
        _ => Ok(Block::Other),
    }
}

/// Check an image block's `source`: base64 (a supported media type, non-empty valid data), url or file.
fn image_source(b: &Map<String, Value>, inner: &str) -> Result<(), ApiError> {
    let source = b.get("source").ok_or_else(|| bad(format!("{inner}source: Field required")))?;
    let source = object(source, &format!("{inner}source"))?;
    let kind = match source.get("type") {
        Some(Value::String(t)) => t.as_str(),
        _ => return Err(bad(format!("{inner}source: Unable to extract tag using discriminator 'type'"))),
    };
    let at = format!("{inner}source.{kind}.");
    match kind {
        "base64" => {
            extra_keys(source, &["type", "media_type", "data"], &at)?;
            let media_type = string(source, "media_type", &at)?;
            if !IMAGE_TYPES.contains(&media_type) {
                return Err(bad(format!(
                    "{at}media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
                )));
            }
            let data = string(source, "data", &at)?;
            if data.is_empty() {
                return Err(bad(format!("{inner}source.base64: image cannot be empty")));
            }
            if thinking::base64_decode(data).is_none() {
                return Err(bad(format!("{inner}source.base64: invalid base64 data")));
            }
            Ok(())
        }
        "url" => {
            extra_keys(source, &["type", "url"], &at)?;
            string(source, "url", &at).map(drop)
        }
        "file" => {
            extra_keys(source, &["type", "file_id"], &at)?;
            string(source, "file_id", &at).map(drop)
        }
        other => Err(bad(format!(
            "{inner}source: Input tag '{other}' found using 'type' does not match any of the expected tags: \
             'base64', 'url', 'file'"
        ))),
    }
}
