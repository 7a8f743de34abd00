//! Validating a GenerateContentRequest body (proto JSON, camelCase or snake_case) with Google's messages and
//! turning it into the [`Prompt`] the answer is composed from: contents, system instruction, generation config
//! (limits, stop sequences, `responseMimeType` for JSON mode, `thinkingConfig`), function declarations and the
//! function calling config.
//!
//! Parts are checked in `content`. This module never renders a response.

use serde_json::{Map, Value};

use super::content::{CONTENT_KEYS, parts};
use super::{camel, fields, semantic, snake};
use crate::answer::{Prompt, Turn};
use crate::continuation::{self, Message};
use crate::error::ApiError;
use crate::json::{self, Ordered, integer, show, to_u64};
use crate::tools::{Choice, Offer, Tool};

const TOP_LEVEL: &[&str] = &[
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
    "model",
];

const GENERATION_CONFIG: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "_responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];

/// A validated GenerateContentRequest.
pub(super) struct Request {
    pub candidates: u64,
    pub prompt: Prompt,
    /// `thinkingConfig.includeThoughts`: answer with a thought part and a thought signature.
    pub thoughts: bool,
}

const FUNCTION_DECLARATION: &[&str] = &[
    "name",
    "description",
    "behavior",
    "parameters",
    "parametersJsonSchema",
    "response",
    "responseJsonSchema",
];

const MODES: &[&str] = &["MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"];

const RESPONSE_MIME_TYPES: &[&str] =
    &["text/plain", "application/json", "application/xml", "application/yaml", "text/x.enum"];

/// Validate `body` (whose raw bytes are `raw`) for the simulator called `name`.
pub(super) fn validate(body: &Value, raw: &[u8], name: &str) -> Result<Request, ApiError> {
    let obj = fields(body, TOP_LEVEL, "")?;
    let mut prompt = Prompt::default();
    let contents = match obj.get("contents") {
        None => return Err(semantic("contents", "contents is not specified")),
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(semantic("contents", "contents is not specified"));
        }
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), {}",
                show(other)
            )));
        }
    };
    read_contents(contents, &mut prompt, name)?;
    if let Some(system) = obj.get("systemInstruction") {
        let system = fields(system, CONTENT_KEYS, "system_instruction")?;
        if let Some((text, words)) = parts(&system, "system_instruction", name)?.text {
            prompt.system = text;
            prompt.input_words += words;
        }
    }
    let (mut candidates, mut thoughts) = (1, false);
    if let Some(config) = obj.get("generationConfig") {
        let config = fields(config, GENERATION_CONFIG, "generation_config")?;
        (candidates, thoughts) = validate_config(&config, &mut prompt)?;
    }
    for key in ["tools", "safetySettings"] {
        if let Some(v) = obj.get(key)
            && !v.is_array()
        {
            return Err(ApiError::bad(format!(
                "Invalid value at '{}' (type.googleapis.com/google.ai.generativelanguage.v1beta.*), {}",
                snake(key),
                show(v)
            )));
        }
    }
    prompt.tools = validate_tools(&obj, raw)?;
    continuation::detect(&mut prompt, contents, view, |before, prompt| read_contents(before, prompt, name));
    Ok(Request { candidates, prompt, thoughts })
}

/// Check `contents` (not empty: the caller checked) and fill the prompt's user texts, tool turns, turn, images and
/// input words from them.
fn read_contents(contents: &[Value], prompt: &mut Prompt, name: &str) -> Result<(), ApiError> {
    let last = contents.len().saturating_sub(1);
    for (i, content) in contents.iter().enumerate() {
        let at = format!("contents[{i}]");
        let content = fields(content, CONTENT_KEYS, &at)?;
        let role = match content.get("role") {
            None => "user",
            Some(Value::String(r)) if r == "user" || r == "model" => r.as_str(),
            Some(Value::String(r)) if r.is_empty() => "user",
            Some(_) => return Err(ApiError::bad("Please use a valid role: user, model.")),
        };
        let parts = parts(&content, &at, name)?;
        let has_text = parts.text.is_some();
        if let Some(text) = parts.text {
            prompt.input_words += text.1;
            if role == "user" {
                prompt.user_texts.push(text.0.clone());
                prompt.last_user = text.0;
            }
        }
        if !parts.results.is_empty() {
            prompt.tool_turns += 1;
        }
        if i == last {
            if !parts.results.is_empty() {
                prompt.turn = Turn::ToolResults(parts.results);
            } else if role == "user" {
                prompt.images = parts.images;
                prompt.turn = if has_text { Turn::UserText } else { Turn::Other };
            }
        }
    }
    Ok(())
}

/// A (validated) content as continuations see it: a `model` content's text (thoughts left out) and whether it has
/// `functionCall` parts; a user content's text when it has no `functionResponse` parts.
fn view(content: &Value) -> Message {
    let parts = content.get("parts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let has =
        |key: &str| parts.iter().any(|p| p.as_object().is_some_and(|p| p.keys().any(|k| camel(k) == key)));
    let text = || -> String {
        parts
            .iter()
            .filter(|p| !p.get("thought").and_then(Value::as_bool).unwrap_or(false))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect()
    };
    match content.get("role").and_then(Value::as_str).unwrap_or("user") {
        "model" => Message::Assistant { text: text(), calls: has("functionCall") },
        "user" | "" if has("functionResponse") || !has("text") => Message::User(None),
        "user" | "" => Message::User(Some(text())),
        _ => Message::Other,
    }
}

fn config_number(config: &Map<String, Value>, key: &str) -> Result<Option<f64>, ApiError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(x) => Ok(Some(x)),
            None => Err(ApiError::bad(format!(
                "Invalid value at 'generation_config.{}' (TYPE_FLOAT), {}",
                snake(key),
                v
            ))),
        },
    }
}

fn config_int(config: &Map<String, Value>, key: &str) -> Result<Option<i128>, ApiError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match integer(v).or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(n) => Ok(Some(n)),
            None => Err(ApiError::bad(format!(
                "Invalid value at 'generation_config.{}' (TYPE_INT32), {}",
                snake(key),
                v
            ))),
        },
    }
}

/// Check `generationConfig`; returns the candidate count and whether thoughts are included.
fn validate_config(config: &Map<String, Value>, prompt: &mut Prompt) -> Result<(u64, bool), ApiError> {
    let range = |key: &str, lo: f64, hi: f64| -> Result<(), ApiError> {
        match config_number(config, key)? {
            Some(x) if x < lo || x > hi => Err(semantic(
                &format!("generation_config.{}", snake(key)),
                &format!("must be in the range [{lo:.1}, {hi:.1}]."),
            )),
            _ => Ok(()),
        }
    };
    range("temperature", 0.0, 2.0)?;
    range("topP", 0.0, 1.0)?;
    range("presencePenalty", -2.0, 2.0)?;
    range("frequencyPenalty", -2.0, 2.0)?;
    if let Some(k) = config_int(config, "topK")?
        && k < 1
    {
        return Err(semantic("generation_config.top_k", "must be positive."));
    }
    if let Some(max) = config_int(config, "maxOutputTokens")? {
        if max < 1 {
            return Err(semantic("generation_config.max_output_tokens", "must be positive."));
        }
        prompt.max_tokens = Some(to_u64(max));
    }
    let candidates = match config_int(config, "candidateCount")? {
        None => 1,
        Some(n) if (1..=8).contains(&n) => to_u64(n),
        Some(_) => {
            return Err(semantic("generation_config.candidate_count", "must be in the range [1, 8]."));
        }
    };
    match config.get("stopSequences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            if list.len() > 5 {
                return Err(semantic(
                    "generation_config.stop_sequences",
                    "the number of stop sequences must not exceed 5.",
                ));
            }
            for (j, s) in list.iter().enumerate() {
                match s {
                    Value::String(s) => prompt.stop.push(s.clone()),
                    other => {
                        return Err(ApiError::bad(format!(
                            "Invalid value at 'generation_config.stop_sequences[{j}]' (TYPE_STRING), {other}"
                        )));
                    }
                }
            }
        }
        Some(other) => {
            return Err(ApiError::bad(format!(
                "Invalid value at 'generation_config.stop_sequences' (TYPE_STRING), {other}"
            )));
        }
    }
    prompt.json = match config.get("responseMimeType") {
        None | Some(Value::Null) => false,
        Some(Value::String(mime)) if RESPONSE_MIME_TYPES.contains(&mime.as_str()) => {
            mime == "application/json"
        }
        Some(Value::String(_)) => {
            return Err(semantic(
                "generation_config.response_mime_type",
                "allowed mimetypes are `text/plain`, `application/json`, `application/xml`, `application/yaml` and \
                 `text/x.enum`.",
            ));
        }
        Some(other) => {
            return Err(ApiError::bad(format!(
                "Invalid value at 'generation_config.response_mime_type' (TYPE_STRING), {other}"
            )));
        }
    };
    let schema = ["responseSchema", "responseJsonSchema", "_responseJsonSchema"]
        .iter()
        .any(|k| config.get(*k).is_some_and(|s| !s.is_null()));
    let mime = config.get("responseMimeType").and_then(Value::as_str);
    if schema && !matches!(mime, Some("application/json" | "text/x.enum")) {
        return Err(semantic(
            "generation_config.response_mime_type",
            "response_mime_type must be application/json or text/x.enum when a response schema is set.",
        ));
    }
    let thoughts = match config.get("thinkingConfig") {
        None | Some(Value::Null) => false,
        Some(thinking) => {
            let thinking = fields(
                thinking,
                &["includeThoughts", "thinkingBudget", "thinkingLevel"],
                "generation_config.thinking_config",
            )?;
            let budget = match thinking.get("thinkingBudget") {
                None | Some(Value::Null) => None,
                Some(budget) => match integer(budget) {
                    Some(n) => Some(n),
                    None => {
                        return Err(ApiError::bad(format!(
                            "Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), \
                             {budget}"
                        )));
                    }
                },
            };
            let include = match thinking.get("includeThoughts") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(ApiError::bad(format!(
                        "Invalid value at 'generation_config.thinking_config.include_thoughts' (TYPE_BOOL), {other}"
                    )));
                }
            };
            // A budget of 0 turns thinking off: there are no thoughts to include.
            include && budget != Some(0)
        }
    };
    Ok((candidates, thoughts))
}

/// Check `tools` and `toolConfig`; returns the function declarations offered.
fn validate_tools(obj: &Map<String, Value>, raw: &[u8]) -> Result<Offer, ApiError> {
    let mut offer = Offer::default();
    let tools = match obj.get("tools") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Array(tools)) => tools,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "Invalid value at 'tools' (type.googleapis.com/google.ai.generativelanguage.v1beta.Tool), {}",
                show(other)
            )));
        }
    };
    // Parsed again, keeping key order, only when there are tools to read schemas from.
    let ordered = if tools.is_empty() { Ordered::Null } else { json::ordered(raw) };
    let ordered_tools = ordered.get("tools").map(Ordered::items).unwrap_or_default();
    for (i, tool) in tools.iter().enumerate() {
        let Some(tool) = tool.as_object() else {
            return Err(ApiError::bad(format!(
                "Invalid value at 'tools[{i}]' (type.googleapis.com/google.ai.generativelanguage.v1beta.Tool), {}",
                show(tool)
            )));
        };
        let Some((_, declarations)) = tool.iter().find(|(k, _)| camel(k) == "functionDeclarations") else {
            continue;
        };
        let at = format!("tools[{i}].function_declarations");
        let Value::Array(declarations) = declarations else {
            return Err(ApiError::bad(format!(
                "Invalid value at '{at}' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionDeclaration), {}",
                show(declarations)
            )));
        };
        let ordered_declarations = ordered_tools
            .get(i)
            .and_then(|t| t.get_any(&["functionDeclarations", "function_declarations"]))
            .map(Ordered::items)
            .unwrap_or_default();
        for (j, declaration) in declarations.iter().enumerate() {
            let declaration = fields(declaration, FUNCTION_DECLARATION, &format!("{at}[{j}]"))?;
            let name = match declaration.get("name") {
                Some(Value::String(name)) if !name.is_empty() => name,
                _ => return Err(semantic(&format!("{at}[{j}].name"), "Name cannot be empty.")),
            };
            for key in ["parameters", "parametersJsonSchema"] {
                if let Some(schema) = declaration.get(key)
                    && !schema.is_object()
                {
                    return Err(ApiError::bad(format!(
                        "Invalid value at '{at}[{j}].{}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Schema), {}",
                        snake(key),
                        show(schema)
                    )));
                }
            }
            let schema = ordered_declarations
                .get(j)
                .and_then(|d| d.get_any(&["parameters", "parametersJsonSchema", "parameters_json_schema"]));
            offer.tools.push(Tool::new(name.as_str(), schema));
        }
    }
    if let Some(config) = obj.get("toolConfig") {
        let config = fields(config, &["functionCallingConfig", "retrievalConfig"], "tool_config")?;
        if let Some(calling) = config.get("functionCallingConfig") {
            offer.choice = function_calling(calling, &offer)?;
        }
    }
    Ok(offer)
}

/// Check `toolConfig.functionCallingConfig`; returns the tool choice it makes.
fn function_calling(calling: &Value, offer: &Offer) -> Result<Choice, ApiError> {
    let at = "tool_config.function_calling_config";
    let calling = fields(calling, &["mode", "allowedFunctionNames"], at)?;
    let mode = match calling.get("mode") {
        None | Some(Value::Null) => "AUTO",
        Some(Value::String(mode)) if MODES.contains(&mode.as_str()) => mode.as_str(),
        Some(other) => {
            return Err(ApiError::bad(format!(
                "Invalid value at '{at}.mode' \
                 (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), {other}"
            )));
        }
    };
    let mut allowed = Vec::new();
    match calling.get("allowedFunctionNames") {
        None | Some(Value::Null) => {}
        Some(Value::Array(names)) => {
            for (k, name) in names.iter().enumerate() {
                let Value::String(name) = name else {
                    return Err(ApiError::bad(format!(
                        "Invalid value at '{at}.allowed_function_names[{k}]' (TYPE_STRING), {name}"
                    )));
                };
                if !offer.tools.iter().any(|t| &t.name == name) {
                    return Err(semantic(
                        &format!("{at}.allowed_function_names[{k}]"),
                        &format!("function '{name}' is not declared in tools."),
                    ));
                }
                allowed.push(name.clone());
            }
        }
        Some(other) => {
            return Err(ApiError::bad(format!(
                "Invalid value at '{at}.allowed_function_names' (TYPE_STRING), {other}"
            )));
        }
    }
    match mode {
        "NONE" if allowed.is_empty() => Ok(Choice::None),
        "ANY" | "VALIDATED" if !allowed.is_empty() => Ok(Choice::Only(allowed)),
        _ if allowed.is_empty() => Ok(Choice::Auto),
        _ => Err(semantic(
            &format!("{at}.allowed_function_names"),
            "allowed_function_names may only be set when the mode is ANY or VALIDATED.",
        )),
    }
}
