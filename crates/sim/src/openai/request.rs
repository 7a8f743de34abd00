//! Validating a Chat Completions request body with OpenAI's own messages (`Unrecognized request argument
//! supplied`, `Invalid type for 'top_p'`, `integer_below_min_value`…) and turning it into the [`Prompt`] the answer
//! is composed from: sampling limits, stop sequences, function tools and tool choice, `parallel_tool_calls`,
//! `response_format` (JSON mode) and `reasoning_effort`.
//!
//! Messages and their content parts are checked in `content`. This module never renders a response.

use serde_json::{Map, Value};

use super::content::{validate_messages, view};
use super::{decimal_in, integer_in, invalid_value, missing, opt, wrong_type};
use crate::answer::Prompt;
use crate::continuation;
use crate::error::ApiError;
use crate::json::{self, Ordered, show, to_u64};
use crate::tools::{Choice, Offer, Tool};

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

const REASONING_EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];

/// A validated Chat Completions request.
pub(super) struct Request {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub n: u64,
    pub prompt: Prompt,
    /// `reasoning_effort` asked for reasoning (any value but `none`).
    pub reasoning: bool,
}

/// Validate `body` (whose raw bytes are `raw`).
pub(super) fn validate(body: &Value, raw: &[u8]) -> Result<Request, ApiError> {
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
    let mentions_json = validate_messages(obj, &mut prompt)?;
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
    prompt.tools = validate_tools(obj, raw)?;
    prompt.json = validate_response_format(obj, mentions_json)?;
    let reasoning = match opt(obj, "reasoning_effort") {
        None => false,
        Some(Value::String(effort)) if REASONING_EFFORTS.contains(&effort.as_str()) => effort != "none",
        Some(Value::String(effort)) => {
            return Err(invalid_value(
                "reasoning_effort",
                effort,
                "'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'",
            ));
        }
        Some(other) => return Err(wrong_type("reasoning_effort", "a string", other)),
    };
    let messages = obj.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    continuation::detect(&mut prompt, messages, view, |before, prompt| {
        let only = Map::from_iter([("messages".to_owned(), Value::Array(before.to_vec()))]);
        validate_messages(&only, prompt).map(drop)
    });
    Ok(Request { model, stream, include_usage, n, prompt, reasoning })
}

/// Check `tools`, `tool_choice` and `parallel_tool_calls`; returns the function tools offered.
fn validate_tools(obj: &Map<String, Value>, raw: &[u8]) -> Result<Offer, ApiError> {
    let tools = match opt(obj, "tools") {
        None => None,
        Some(Value::Array(tools)) => Some(tools),
        Some(other) => return Err(wrong_type("tools", "an array", other)),
    };
    let mut offer = Offer::default();
    // Parsed again, keeping key order, only when there are tools to read schemas from.
    let ordered = if tools.is_some() { json::ordered(raw) } else { Ordered::Null };
    let ordered_tools = ordered.get("tools").map(Ordered::items).unwrap_or_default();
    for (j, tool) in tools.into_iter().flatten().enumerate() {
        let path = format!("tools[{j}]");
        let Some(tool) = tool.as_object() else {
            return Err(wrong_type(&path, "an object", tool));
        };
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => {
                let function = tool.get("function").ok_or_else(|| missing(&format!("{path}.function")))?;
                let name = match function.get("name") {
                    Some(Value::String(name)) => name,
                    None => return Err(missing(&format!("{path}.function.name"))),
                    Some(other) => {
                        return Err(wrong_type(&format!("{path}.function.name"), "a string", other));
                    }
                };
                if let Some(params) = function.get("parameters")
                    && !params.is_object()
                {
                    return Err(wrong_type(&format!("{path}.function.parameters"), "an object", params));
                }
                let schema =
                    ordered_tools.get(j).and_then(|t| t.get("function")).and_then(|f| f.get("parameters"));
                offer.tools.push(Tool::new(name.as_str(), schema));
            }
            Some("custom") => {}
            None => return Err(missing(&format!("{path}.type"))),
            Some(other) => {
                return Err(invalid_value(&format!("{path}.type"), other, "'function' and 'custom'"));
            }
        }
    }
    match opt(obj, "parallel_tool_calls") {
        None => {}
        Some(Value::Bool(parallel)) => offer.parallel = *parallel,
        Some(other) => return Err(wrong_type("parallel_tool_calls", "a boolean", other)),
    }
    offer.choice = match opt(obj, "tool_choice") {
        None => Choice::Auto,
        Some(_) if tools.is_none_or(Vec::is_empty) => {
            return Err(ApiError::bad(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            )
            .param("tool_choice"));
        }
        Some(Value::String(choice)) => match choice.as_str() {
            "none" => Choice::None,
            "auto" | "required" => Choice::Auto,
            _ => return Err(invalid_value("tool_choice", choice, "'none', 'auto', and 'required'")),
        },
        Some(Value::Object(choice)) => named_choice(choice, &offer)?,
        Some(other) => return Err(wrong_type("tool_choice", "a string or an object", other)),
    };
    Ok(offer)
}

/// An object `tool_choice`: a named function, a named custom tool, or `allowed_tools`.
fn named_choice(choice: &Map<String, Value>, offer: &Offer) -> Result<Choice, ApiError> {
    let name_at = |value: Option<&Value>, param: &str| -> Result<String, ApiError> {
        match value.and_then(|v| v.get("name")) {
            Some(Value::String(name)) => Ok(name.clone()),
            None => Err(missing(param)),
            Some(other) => Err(wrong_type(param, "a string", other)),
        }
    };
    match choice.get("type") {
        Some(Value::String(kind)) if kind == "function" => {
            let name = name_at(choice.get("function"), "tool_choice.function.name")?;
            if !offer.tools.iter().any(|t| t.name == name) {
                return Err(ApiError::bad(format!(
                    "Invalid value for 'tool_choice': function '{name}' is not one of the functions in 'tools'."
                ))
                .param("tool_choice"));
            }
            Ok(Choice::Only(vec![name]))
        }
        Some(Value::String(kind)) if kind == "custom" => {
            Ok(Choice::Only(vec![name_at(choice.get("custom"), "tool_choice.custom.name")?]))
        }
        Some(Value::String(kind)) if kind == "allowed_tools" => {
            let allowed = choice.get("allowed_tools").ok_or_else(|| missing("tool_choice.allowed_tools"))?;
            match allowed.get("mode") {
                Some(Value::String(mode)) if mode == "auto" || mode == "required" => {}
                Some(other) => {
                    return Err(invalid_value(
                        "tool_choice.allowed_tools.mode",
                        &show(other),
                        "'auto' and 'required'",
                    ));
                }
                None => return Err(missing("tool_choice.allowed_tools.mode")),
            }
            let Some(Value::Array(tools)) = allowed.get("tools") else {
                return Err(missing("tool_choice.allowed_tools.tools"));
            };
            let mut names = Vec::new();
            for (k, tool) in tools.iter().enumerate() {
                let kind = tool.get("type").and_then(Value::as_str).unwrap_or("function");
                names.push(name_at(
                    tool.get(kind),
                    &format!("tool_choice.allowed_tools.tools[{k}].{kind}.name"),
                )?);
            }
            Ok(Choice::Only(names))
        }
        Some(Value::String(kind)) => {
            Err(invalid_value("tool_choice.type", kind, "'function', 'custom', and 'allowed_tools'"))
        }
        Some(other) => Err(wrong_type("tool_choice.type", "a string", other)),
        None => Err(missing("tool_choice.type")),
    }
}

/// Check `response_format`; returns whether it asks for JSON. JSON mode (`json_object`) needs the word "json"
/// somewhere in the messages, as in the real API.
fn validate_response_format(obj: &Map<String, Value>, mentions_json: bool) -> Result<bool, ApiError> {
    let Some(format) = opt(obj, "response_format") else { return Ok(false) };
    let Some(format) = format.as_object() else {
        return Err(wrong_type("response_format", "an object", format));
    };
    match format.get("type") {
        None => Err(missing("response_format.type")),
        Some(Value::String(kind)) if kind == "text" => Ok(false),
        Some(Value::String(kind)) if kind == "json_object" => {
            if !mentions_json {
                return Err(ApiError::bad(
                    "'messages' must contain the word 'json' in some form, to use 'response_format' of type \
                     'json_object'.",
                )
                .param("messages"));
            }
            Ok(true)
        }
        Some(Value::String(kind)) if kind == "json_schema" => {
            let schema = format.get("json_schema").ok_or_else(|| missing("response_format.json_schema"))?;
            let Some(schema) = schema.as_object() else {
                return Err(wrong_type("response_format.json_schema", "an object", schema));
            };
            match schema.get("name") {
                None => return Err(missing("response_format.json_schema.name")),
                Some(Value::String(name)) if valid_schema_name(name) => {}
                Some(Value::String(name)) => {
                    return Err(ApiError::bad(format!(
                        "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a \
                         string that matches the pattern '^[a-zA-Z0-9_-]+$', but got '{name}' instead."
                    ))
                    .param("response_format.json_schema.name")
                    .code("invalid_value"));
                }
                Some(other) => return Err(wrong_type("response_format.json_schema.name", "a string", other)),
            }
            if let Some(s) = schema.get("schema").filter(|s| !s.is_null())
                && !s.is_object()
            {
                return Err(wrong_type("response_format.json_schema.schema", "an object", s));
            }
            if let Some(strict) = schema.get("strict").filter(|s| !s.is_null())
                && !strict.is_boolean()
            {
                return Err(wrong_type("response_format.json_schema.strict", "a boolean", strict));
            }
            Ok(true)
        }
        Some(Value::String(kind)) => {
            Err(invalid_value("response_format.type", kind, "'json_object', 'json_schema', and 'text'"))
        }
        Some(other) => Err(wrong_type("response_format.type", "a string", other)),
    }
}

fn valid_schema_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
