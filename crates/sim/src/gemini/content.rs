//! Validating a content's `parts` as the Gemini API does (one `data` field per part, proto JSON errors such as
//! `Invalid value at 'contents[0].parts[0].text' (TYPE_STRING)`), media parts and thought signatures included, and
//! reading from them what the answer needs: text and its words, images, function responses.
//!
//! A `thoughtSignature` is accepted only when this simulator minted it. This module never renders a response.

use serde_json::{Map, Value};

use super::{fields, join, semantic};
use crate::answer::{self, ToolResult};
use crate::error::ApiError;
use crate::json::show;
use crate::thinking;

pub(super) const CONTENT_KEYS: &[&str] = &["role", "parts"];

const PART_DATA: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];

const PART_META: &[&str] =
    &["thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"];

/// The image types Gemini reads (<https://ai.google.dev/gemini-api/docs/image-understanding>): no GIF.
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"];

/// What a content's parts hold.
#[derive(Default)]
pub(super) struct Parts {
    /// The concatenated text (thought parts left out) and its words, when any part is text.
    pub text: Option<(String, u64)>,
    /// Image parts (`inlineData` or `fileData` with an image MIME type).
    pub images: u64,
    /// Function responses, in order.
    pub results: Vec<ToolResult>,
}

/// Check a content's parts for the simulator called `name`.
pub(super) fn parts(content: &Map<String, Value>, at: &str, name: &str) -> Result<Parts, ApiError> {
    let parts = match content.get("parts") {
        None => {
            return Err(semantic(&format!("{at}.parts"), "contents.parts must not be empty."));
        }
        Some(Value::Array(parts)) if parts.is_empty() => {
            return Err(semantic(&format!("{at}.parts"), "contents.parts must not be empty."));
        }
        Some(Value::Array(parts)) => parts,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "Invalid value at '{at}.parts' (type.googleapis.com/google.ai.generativelanguage.v1beta.Part), {}",
                show(other)
            )));
        }
    };
    let known: Vec<&str> = PART_DATA.iter().chain(PART_META).copied().collect();
    let mut out = Parts::default();
    for (k, part) in parts.iter().enumerate() {
        let part_at = format!("{at}.parts[{k}]");
        let part = fields(part, &known, &part_at)?;
        let data: Vec<&str> = PART_DATA.iter().copied().filter(|d| part.contains_key(*d)).collect();
        match data.as_slice() {
            [] => {
                return Err(semantic(
                    &format!("{part_at}.data"),
                    "required oneof field 'data' must have one initialized field",
                ));
            }
            [_] => {}
            [_, second, ..] => {
                return Err(ApiError::bad(format!(
                    "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{second}'"
                )));
            }
        }
        let thought = match part.get("thought") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(ApiError::bad(format!(
                    "Invalid value at '{part_at}.thought' (TYPE_BOOL), {other}"
                )));
            }
        };
        if let Some(signature) = part.get("thoughtSignature") {
            check_signature(signature, &part_at, name)?;
        }
        match (data[0], &part[data[0]]) {
            ("text", Value::String(t)) if !thought => {
                let entry = out.text.get_or_insert_with(|| (String::new(), 0));
                entry.0.push_str(t);
                entry.1 += answer::words(t);
            }
            ("text", Value::String(_)) => {}
            ("text", other) => {
                return Err(ApiError::bad(format!(
                    "Invalid value at '{part_at}.text' (TYPE_STRING), {other}"
                )));
            }
            ("functionCall", call) => {
                let call = fields(call, &["id", "name", "args"], &join(&part_at, "functionCall"))?;
                if !call.get("name").is_some_and(Value::is_string) {
                    return Err(semantic(&format!("{part_at}.function_call.name"), "Name cannot be empty."));
                }
                if let Some(args) = call.get("args")
                    && !args.is_object()
                {
                    return Err(ApiError::bad(format!(
                        "Invalid value at '{part_at}.function_call.args' (type.googleapis.com/google.protobuf.Struct), {args}"
                    )));
                }
            }
            ("functionResponse", response) => {
                let response = fields(
                    response,
                    &["id", "name", "response", "parts", "willContinue", "scheduling"],
                    &join(&part_at, "functionResponse"),
                )?;
                if !response.get("name").is_some_and(Value::is_string) {
                    return Err(semantic(
                        &format!("{part_at}.function_response.name"),
                        "Name cannot be empty.",
                    ));
                }
                let Some(Value::Object(result)) = response.get("response") else {
                    return Err(semantic(
                        &format!("{part_at}.function_response.response"),
                        "Function response must be a valid Struct.",
                    ));
                };
                out.results.push(ToolResult { text: result_text(result), error: false });
            }
            ("inlineData", blob) => {
                let blob = fields(blob, &["mimeType", "data"], &join(&part_at, "inlineData"))?;
                let Some(Value::String(mime)) = blob.get("mimeType") else {
                    return Err(semantic(
                        &format!("{part_at}.inline_data.mime_type"),
                        "mime_type is required.",
                    ));
                };
                match blob.get("data") {
                    Some(Value::String(data)) if !data.is_empty() => {
                        if thinking::base64_decode(data).is_none() {
                            return Err(ApiError::bad(format!(
                                "Invalid value at '{part_at}.inline_data.data' (TYPE_BYTES), Base64 decoding failed \
                                 for \"{data}\""
                            )));
                        }
                    }
                    _ => return Err(semantic(&format!("{part_at}.inline_data.data"), "data is required.")),
                }
                out.images += image(mime)?;
            }
            ("fileData", file) => {
                let file =
                    fields(file, &["mimeType", "fileUri", "displayName"], &join(&part_at, "fileData"))?;
                if file.get("fileUri").and_then(Value::as_str).is_none_or(str::is_empty) {
                    return Err(semantic(&format!("{part_at}.file_data.file_uri"), "file_uri is required."));
                }
                if let Some(Value::String(mime)) = file.get("mimeType") {
                    out.images += image(mime)?;
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// 1 for a supported image type, 0 for other media; an unsupported image type is refused.
fn image(mime: &str) -> Result<u64, ApiError> {
    if !mime.starts_with("image/") {
        return Ok(0);
    }
    if IMAGE_TYPES.contains(&mime) {
        Ok(1)
    } else {
        Err(ApiError::bad(format!("Unsupported MIME type: {mime}")))
    }
}

/// A `thoughtSignature` must be base64 (it is `bytes`) and one this simulator minted.
fn check_signature(signature: &Value, part_at: &str, name: &str) -> Result<(), ApiError> {
    let Value::String(signature) = signature else {
        return Err(ApiError::bad(format!(
            "Invalid value at '{part_at}.thought_signature' (TYPE_BYTES), {signature}"
        )));
    };
    if thinking::base64_decode(signature).is_none() {
        return Err(ApiError::bad(format!(
            "Invalid value at '{part_at}.thought_signature' (TYPE_BYTES), Base64 decoding failed for \"{signature}\""
        )));
    }
    if !thinking::is_own_gemini_signature(name, signature) {
        return Err(ApiError::bad("Corrupted thought signature."));
    }
    Ok(())
}

/// The text of a function response: its `content` when that is a string, else its `result`, else its `output`
/// (a string as is, anything else as compact JSON), else the whole response as compact JSON.
fn result_text(response: &Map<String, Value>) -> String {
    if let Some(Value::String(content)) = response.get("content") {
        return content.clone();
    }
    match response.get("result").or_else(|| response.get("output")) {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => Value::Object(response.clone()).to_string(),
    }
}
