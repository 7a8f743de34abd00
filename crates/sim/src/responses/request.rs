//! Validating a Responses request body with the API's own messages (`Unknown parameter: 'foo'.`, `Invalid
//! 'max_output_tokens': integer below minimum value…`, `Previous response with id '…' not found.`) and turning it
//! into the [`Prompt`] the answer is composed from: `instructions`, function tools (flat: `{"type":"function",
//! "name", "parameters"}`) and `tool_choice`, `parallel_tool_calls`, `text.format` (JSON mode), `reasoning`,
//! `max_output_tokens`; plus the request fields a Response object echoes back.
//!
//! `input` is checked in `content`. This module never renders a response.

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::content::{supported, validate_input, view};
use crate::answer::{self, Prompt};
use crate::continuation;
use crate::error::ApiError;
use crate::json::{self, Ordered, to_u64};
use crate::openai::{decimal_in, integer_in, invalid_value, missing, opt, wrong_type};
use crate::tools::{Choice, Offer, Tool};

/// Every body parameter of `POST /v1/responses`.
const TOP_LEVEL: &[&str] = &[
    "model",
    "input",
    "background",
    "context_management",
    "conversation",
    "include",
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt",
    "prompt_cache_key",
    "prompt_cache_retention",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "truncation",
    "user",
];

const INCLUDABLE: &[&str] = &[
    "code_interpreter_call.outputs",
    "computer_call_output.output.image_url",
    "file_search_call.results",
    "message.input_image.image_url",
    "message.output_text.logprobs",
    "reasoning.encrypted_content",
    "web_search_call.action.sources",
    "web_search_call.results",
];

/// Tool types other than `function`: offered to the model, never called by the simulator.
const OTHER_TOOLS: &[&str] = &[
    "custom",
    "file_search",
    "web_search",
    "web_search_2025_08_26",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "computer",
    "computer_use_preview",
    "mcp",
    "code_interpreter",
    "image_generation",
    "local_shell",
    "shell",
    "apply_patch",
    "namespace",
    "tool_search",
];

const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];

/// A validated Responses request.
pub(super) struct Request {
    pub model: String,
    pub stream: bool,
    pub prompt: Prompt,
    /// Reasoning was asked for (a `reasoning` object whose effort is not `none`): a reasoning item comes first.
    pub reasoning: Option<Reasoning>,
    /// `include` has `reasoning.encrypted_content`.
    pub encrypted_reasoning: bool,
    /// Stream deltas carry an `obfuscation` field (the default; `stream_options.include_obfuscation: false` drops it).
    pub obfuscation: bool,
    /// The request fields a Response object shows, with the defaults the API fills in.
    pub echo: Map<String, Value>,
}

/// How the reasoning item looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Reasoning {
    /// A summary was asked for (`reasoning.summary`): the item's summary is the thought text.
    pub summary: bool,
}

/// `Unknown parameter: '{path}.{key}'.` for the first key of `obj` not in `allowed` (`path` empty at the top).
pub(super) fn unknown_keys(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => {
            let param = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            Err(ApiError::bad(format!("Unknown parameter: '{param}'."))
                .param(param)
                .code("unknown_parameter"))
        }
    }
}

/// The required string `key` of the object at `path`.
pub(super) fn string<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(missing(&format!("{path}.{key}"))),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(wrong_type(&format!("{path}.{key}"), "a string", other)),
    }
}

fn boolean(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match opt(obj, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(key, "a boolean", other)),
    }
}

fn optional_string<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match opt(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(key, "a string", other)),
    }
}

fn one_of(obj: &Map<String, Value>, key: &str, values: &[&str]) -> Result<Option<String>, ApiError> {
    match optional_string(obj, key)? {
        None => Ok(None),
        Some(v) if values.contains(&v) => Ok(Some(v.to_owned())),
        Some(v) => Err(invalid_value(key, v, &supported(values))),
    }
}

fn too_long(param: &str, max: usize, len: usize) -> ApiError {
    ApiError::bad(format!(
        "Invalid '{param}': string too long. Expected a string with maximum length {max}, but got a string with \
         length {len} instead."
    ))
    .param(param)
    .code("string_above_max_length")
}

/// Validate `body` (whose raw bytes are `raw`) for the simulator called `name`.
pub(super) fn validate(body: &Value, raw: &[u8], name: &str) -> Result<Request, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(wrong_type("body", "an object", body));
    };
    unknown_keys(obj, TOP_LEVEL, "")?;
    let model = match opt(obj, "model") {
        None => return Err(missing("model")),
        Some(Value::String(m)) => m.clone(),
        Some(other) => return Err(wrong_type("model", "a string", other)),
    };
    let store = boolean(obj, "store")?.unwrap_or(true);
    let mut prompt = Prompt::default();
    let instructions = optional_string(obj, "instructions")?;
    if let Some(text) = instructions {
        prompt.input_words += answer::words(text);
        prompt.system.push_str(text);
    }
    let input_value = opt(obj, "input").ok_or_else(|| missing("input"))?;
    let input = validate_input(input_value, &mut prompt, store, name)?;
    decimal_in(obj, "temperature", 0.0, 2.0)?;
    decimal_in(obj, "top_p", 0.0, 1.0)?;
    integer_in(obj, "top_logprobs", 0, 20)?;
    prompt.max_tokens = integer_in(obj, "max_output_tokens", 16, i128::from(u32::MAX))?.map(to_u64);
    integer_in(obj, "max_tool_calls", 0, i128::from(u32::MAX))?;
    let stream = boolean(obj, "stream")?.unwrap_or(false);
    let obfuscation = stream_options(obj, stream)?;
    boolean(obj, "background")?;
    validate_metadata(obj)?;
    for key in ["user", "prompt_cache_key"] {
        optional_string(obj, key)?;
    }
    if let Some(id) = optional_string(obj, "safety_identifier")?
        && id.chars().count() > 64
    {
        return Err(too_long("safety_identifier", 64, id.chars().count()));
    }
    one_of(obj, "service_tier", &["auto", "default", "flex", "scale", "priority"])?;
    one_of(obj, "truncation", &["auto", "disabled"])?;
    one_of(obj, "prompt_cache_retention", &["in-memory", "in_memory", "24h"])?;
    if let Some(v) = opt(obj, "context_management")
        && !v.is_array()
    {
        return Err(wrong_type("context_management", "an array", v));
    }
    let encrypted_reasoning = validate_include(obj)?;
    let (offer, tools_echo) = validate_tools(obj, raw)?;
    prompt.tools = offer;
    let (json_mode, text_echo) = validate_text(obj, input.mentions_json)?;
    prompt.json = json_mode;
    let (reasoning, reasoning_echo) = validate_reasoning(obj)?;
    refuse_stored_state(obj)?;
    let items = input_value.as_array().map(Vec::as_slice).unwrap_or_default();
    continuation::detect(&mut prompt, items, view, |before, prompt| {
        validate_input(&Value::Array(before.to_vec()), prompt, store, name).map(drop)
    });
    let echo = echo(obj, tools_echo, text_echo, reasoning_echo, &prompt);
    Ok(Request { model, stream, prompt, reasoning, encrypted_reasoning, obfuscation, echo })
}

/// Check `stream_options` (only with `stream: true`); returns whether deltas carry `obfuscation`.
fn stream_options(obj: &Map<String, Value>, stream: bool) -> Result<bool, ApiError> {
    let Some(options) = opt(obj, "stream_options") else { return Ok(true) };
    if !stream {
        return Err(ApiError::bad(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        )
        .param("stream_options"));
    }
    let Some(options) = options.as_object() else {
        return Err(wrong_type("stream_options", "an object", options));
    };
    unknown_keys(options, &["include_obfuscation"], "stream_options")?;
    match opt(options, "include_obfuscation") {
        None => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(wrong_type("stream_options.include_obfuscation", "a boolean", other)),
    }
}

/// `metadata`: at most 16 string values, keys up to 64 and values up to 512 characters.
fn validate_metadata(obj: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(metadata) = opt(obj, "metadata") else { return Ok(()) };
    let Some(metadata) = metadata.as_object() else {
        return Err(wrong_type("metadata", "an object", metadata));
    };
    if metadata.len() > 16 {
        return Err(ApiError::bad(format!(
            "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got an \
             object with {} properties instead.",
            metadata.len()
        ))
        .param("metadata")
        .code("object_above_max_properties"));
    }
    for (key, value) in metadata {
        let param = format!("metadata.{key}");
        if key.chars().count() > 64 {
            return Err(too_long(&param, 64, key.chars().count()));
        }
        match value {
            Value::String(v) if v.chars().count() > 512 => {
                return Err(too_long(&param, 512, v.chars().count()));
            }
            Value::String(_) => {}
            other => return Err(wrong_type(&param, "a string", other)),
        }
    }
    Ok(())
}

/// Check `include`; returns whether it asks for `reasoning.encrypted_content`.
fn validate_include(obj: &Map<String, Value>) -> Result<bool, ApiError> {
    let list = match opt(obj, "include") {
        None => return Ok(false),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong_type("include", "an array", other)),
    };
    let mut encrypted = false;
    for (j, v) in list.iter().enumerate() {
        let param = format!("include[{j}]");
        match v {
            Value::String(s) if INCLUDABLE.contains(&s.as_str()) => {
                encrypted |= s == "reasoning.encrypted_content"
            }
            Value::String(s) => return Err(invalid_value(&param, s, &supported(INCLUDABLE))),
            other => return Err(wrong_type(&param, "a string", other)),
        }
    }
    Ok(encrypted)
}

/// Check `tools`, `tool_choice` and `parallel_tool_calls`; returns the function tools offered and the tools as a
/// Response shows them.
fn validate_tools(obj: &Map<String, Value>, raw: &[u8]) -> Result<(Offer, Vec<Value>), ApiError> {
    let tools = match opt(obj, "tools") {
        None => &Vec::new(),
        Some(Value::Array(tools)) => tools,
        Some(other) => return Err(wrong_type("tools", "an array", other)),
    };
    let mut offer = Offer::default();
    let mut echo = Vec::new();
    // Parsed again, keeping key order, only when there are tools to read schemas from.
    let ordered = if tools.is_empty() { Ordered::Null } else { json::ordered(raw) };
    let ordered_tools = ordered.get("tools").map(Ordered::items).unwrap_or_default();
    for (j, tool) in tools.iter().enumerate() {
        let path = format!("tools[{j}]");
        let Some(tool) = tool.as_object() else {
            return Err(wrong_type(&path, "an object", tool));
        };
        let kind = string(tool, "type", &path)?;
        match kind {
            "function" => {
                let name = string(tool, "name", &path)?;
                unknown_keys(tool, &["type", "name", "description", "parameters", "strict"], &path)?;
                let parameters = opt(tool, "parameters");
                if let Some(p) = parameters
                    && !p.is_object()
                {
                    return Err(wrong_type(&format!("{path}.parameters"), "an object", p));
                }
                let strict = match opt(tool, "strict") {
                    None => true,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => return Err(wrong_type(&format!("{path}.strict"), "a boolean", other)),
                };
                let description = match opt(tool, "description") {
                    None => Value::Null,
                    Some(Value::String(d)) => Value::String(d.clone()),
                    Some(other) => return Err(wrong_type(&format!("{path}.description"), "a string", other)),
                };
                let schema = ordered_tools.get(j).and_then(|t| t.get("parameters"));
                offer.tools.push(Tool::new(name, schema));
                echo.push(json!({
                    "type": "function",
                    "name": name,
                    "description": description,
                    "parameters": parameters.cloned().unwrap_or(Value::Null),
                    "strict": strict,
                }));
            }
            "custom" => {
                string(tool, "name", &path)?;
                echo.push(Value::Object(tool.clone()));
            }
            kind if OTHER_TOOLS.contains(&kind) => echo.push(Value::Object(tool.clone())),
            other => {
                let mut known = vec!["function"];
                known.extend(OTHER_TOOLS);
                return Err(invalid_value(&format!("{path}.type"), other, &supported(&known)));
            }
        }
    }
    if let Some(parallel) = boolean(obj, "parallel_tool_calls")? {
        offer.parallel = parallel;
    }
    offer.choice = match opt(obj, "tool_choice") {
        None => Choice::Auto,
        Some(Value::String(choice)) => match choice.as_str() {
            "none" => Choice::None,
            "auto" | "required" => Choice::Auto,
            _ => return Err(invalid_value("tool_choice", choice, "'none', 'auto', and 'required'")),
        },
        Some(Value::Object(choice)) => named_choice(choice, &offer)?,
        Some(other) => return Err(wrong_type("tool_choice", "a string or an object", other)),
    };
    Ok((offer, echo))
}

/// An object `tool_choice`: a named function or custom tool, `allowed_tools`, or a hosted tool type.
fn named_choice(choice: &Map<String, Value>, offer: &Offer) -> Result<Choice, ApiError> {
    let kind = string(choice, "type", "tool_choice")?;
    match kind {
        "function" => {
            unknown_keys(choice, &["type", "name"], "tool_choice")?;
            let name = string(choice, "name", "tool_choice")?;
            if !offer.tools.iter().any(|t| t.name == name) {
                return Err(ApiError::bad("Tool choice 'function' not found in 'tools' parameter.")
                    .param("tool_choice"));
            }
            Ok(Choice::Only(vec![name.to_owned()]))
        }
        "custom" => Ok(Choice::Only(vec![string(choice, "name", "tool_choice")?.to_owned()])),
        "allowed_tools" => {
            unknown_keys(choice, &["type", "mode", "tools"], "tool_choice")?;
            let mode = string(choice, "mode", "tool_choice")?;
            if mode != "auto" && mode != "required" {
                return Err(invalid_value("tool_choice.mode", mode, "'auto' and 'required'"));
            }
            let tools = match choice.get("tools") {
                None => return Err(missing("tool_choice.tools")),
                Some(Value::Array(tools)) => tools,
                Some(other) => return Err(wrong_type("tool_choice.tools", "an array", other)),
            };
            let mut names = Vec::new();
            for (k, tool) in tools.iter().enumerate() {
                let path = format!("tool_choice.tools[{k}]");
                let Some(tool) = tool.as_object() else {
                    return Err(wrong_type(&path, "an object", tool));
                };
                if let Some(name) = tool.get("name").and_then(Value::as_str) {
                    names.push(name.to_owned());
                }
            }
            Ok(Choice::Only(names))
        }
        kind if OTHER_TOOLS.contains(&kind) => Ok(Choice::Only(Vec::new())),
        other => {
            let mut known = vec!["function", "allowed_tools"];
            known.extend(OTHER_TOOLS);
            Err(invalid_value("tool_choice.type", other, &supported(&known)))
        }
    }
}

/// Check `text` (`format` and `verbosity`); returns whether JSON is asked for and `text` as a Response shows it.
/// JSON mode (`json_object`) needs the word "json" in an input message, as in the real API.
fn validate_text(obj: &Map<String, Value>, mentions_json: bool) -> Result<(bool, Value), ApiError> {
    let mut echo = Map::new();
    echo.insert("format".into(), json!({"type": "text"}));
    echo.insert("verbosity".into(), json!("medium"));
    let Some(text) = opt(obj, "text") else { return Ok((false, Value::Object(echo))) };
    let Some(text) = text.as_object() else {
        return Err(wrong_type("text", "an object", text));
    };
    unknown_keys(text, &["format", "verbosity"], "text")?;
    if let Some(verbosity) =
        one_of(text, "verbosity", &["low", "medium", "high"]).map_err(|err| reparam(err, "text.verbosity"))?
    {
        echo.insert("verbosity".into(), Value::String(verbosity));
    }
    let Some(format) = opt(text, "format") else { return Ok((false, Value::Object(echo))) };
    let Some(format) = format.as_object() else {
        return Err(wrong_type("text.format", "an object", format));
    };
    let json_mode = match string(format, "type", "text.format")? {
        "text" => {
            unknown_keys(format, &["type"], "text.format")?;
            false
        }
        "json_object" => {
            unknown_keys(format, &["type"], "text.format")?;
            if !mentions_json {
                return Err(ApiError::bad(
                    "Response input messages must contain the word 'json' in some form to use 'text.format' of \
                     type 'json_object'.",
                )
                .param("input"));
            }
            true
        }
        "json_schema" => {
            unknown_keys(format, &["type", "name", "schema", "description", "strict"], "text.format")?;
            let name = string(format, "name", "text.format")?;
            if !valid_schema_name(name) {
                return Err(ApiError::bad(format!(
                    "Invalid 'text.format.name': string does not match pattern. Expected a string that matches \
                     the pattern '^[a-zA-Z0-9_-]+$', but got '{name}' instead."
                ))
                .param("text.format.name")
                .code("invalid_value"));
            }
            match format.get("schema") {
                None | Some(Value::Null) => return Err(missing("text.format.schema")),
                Some(Value::Object(_)) => {}
                Some(other) => return Err(wrong_type("text.format.schema", "an object", other)),
            }
            if let Some(strict) = opt(format, "strict")
                && !strict.is_boolean()
            {
                return Err(wrong_type("text.format.strict", "a boolean", strict));
            }
            if let Some(description) = opt(format, "description")
                && !description.is_string()
            {
                return Err(wrong_type("text.format.description", "a string", description));
            }
            true
        }
        other => {
            return Err(invalid_value("text.format.type", other, "'text', 'json_object', and 'json_schema'"));
        }
    };
    let mut shown = format.clone();
    if shown.get("type").and_then(Value::as_str) == Some("json_schema") {
        shown.entry("description").or_insert(Value::Null);
        shown.entry("strict").or_insert(Value::Bool(false));
    }
    echo.insert("format".into(), Value::Object(shown));
    Ok((json_mode, Value::Object(echo)))
}

fn valid_schema_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Check `reasoning`; returns how the reasoning item looks (none when not asked for) and `reasoning` as a Response
/// shows it.
fn validate_reasoning(obj: &Map<String, Value>) -> Result<(Option<Reasoning>, Value), ApiError> {
    let Some(reasoning) = opt(obj, "reasoning") else {
        return Ok((None, json!({"effort": null, "summary": null})));
    };
    let Some(reasoning) = reasoning.as_object() else {
        return Err(wrong_type("reasoning", "an object", reasoning));
    };
    unknown_keys(reasoning, &["effort", "summary", "generate_summary", "context", "mode"], "reasoning")?;
    one_of(reasoning, "context", &["auto", "current_turn", "all_turns"])
        .map_err(|err| reparam(err, "reasoning.context"))?;
    let effort = one_of(reasoning, "effort", EFFORTS).map_err(|err| reparam(err, "reasoning.effort"))?;
    let mut summary = None;
    for key in ["summary", "generate_summary"] {
        if let Some(s) = one_of(reasoning, key, &["auto", "concise", "detailed"])
            .map_err(|err| reparam(err, &format!("reasoning.{key}")))?
        {
            summary = Some(s);
        }
    }
    let echo = json!({"effort": effort, "summary": summary});
    let asked = effort.as_deref() != Some("none");
    Ok((asked.then_some(Reasoning { summary: summary.is_some() }), echo))
}

/// The same error about a nested parameter, with its full path in the message and `param`.
fn reparam(err: ApiError, param: &str) -> ApiError {
    let leaf = param.rsplit('.').next().unwrap_or(param);
    let message = err.message.replacen(&format!("'{leaf}'"), &format!("'{param}'"), 1);
    ApiError { message, ..err }.param(param)
}

/// Refuse what points at state the simulator does not keep, as the API refuses an id it cannot find.
fn refuse_stored_state(obj: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(id) = optional_string(obj, "previous_response_id")? {
        return Err(ApiError::bad(format!("Previous response with id '{id}' not found."))
            .param("previous_response_id")
            .code("previous_response_not_found"));
    }
    let id_of = |key: &str| -> Result<Option<String>, ApiError> {
        match opt(obj, key) {
            None => Ok(None),
            Some(Value::String(id)) => Ok(Some(id.clone())),
            Some(Value::Object(o)) => Ok(Some(string(o, "id", key)?.to_owned())),
            Some(other) => Err(wrong_type(key, "a string or an object", other)),
        }
    };
    if let Some(id) = id_of("conversation")? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("Conversation with id '{id}' not found."))
            .param("conversation"));
    }
    if let Some(id) = id_of("prompt")? {
        return Err(
            ApiError::new(StatusCode::NOT_FOUND, format!("Prompt with id '{id}' not found.")).param("prompt")
        );
    }
    Ok(())
}

/// The request fields a Response object shows, with the API's defaults.
fn echo(
    obj: &Map<String, Value>,
    tools: Vec<Value>,
    text: Value,
    reasoning: Value,
    prompt: &Prompt,
) -> Map<String, Value> {
    let given = |key: &str, default: Value| opt(obj, key).cloned().unwrap_or(default);
    let service_tier = match opt(obj, "service_tier").and_then(Value::as_str) {
        None | Some("auto") => "default".to_owned(),
        Some(tier) => tier.to_owned(),
    };
    let mut echo = Map::new();
    echo.insert("background".into(), given("background", Value::Bool(false)));
    echo.insert("instructions".into(), given("instructions", Value::Null));
    echo.insert("max_output_tokens".into(), prompt.max_tokens.map_or(Value::Null, Value::from));
    echo.insert("max_tool_calls".into(), given("max_tool_calls", Value::Null));
    echo.insert("metadata".into(), given("metadata", json!({})));
    echo.insert("parallel_tool_calls".into(), Value::Bool(prompt.tools.parallel));
    echo.insert("previous_response_id".into(), Value::Null);
    echo.insert("prompt_cache_key".into(), given("prompt_cache_key", Value::Null));
    echo.insert("prompt_cache_retention".into(), given("prompt_cache_retention", Value::Null));
    echo.insert("reasoning".into(), reasoning);
    echo.insert("safety_identifier".into(), given("safety_identifier", Value::Null));
    echo.insert("service_tier".into(), Value::String(service_tier));
    echo.insert("store".into(), given("store", Value::Bool(true)));
    echo.insert("temperature".into(), given("temperature", json!(1.0)));
    echo.insert("text".into(), text);
    echo.insert("tool_choice".into(), given("tool_choice", json!("auto")));
    echo.insert("tools".into(), Value::Array(tools));
    echo.insert("top_logprobs".into(), given("top_logprobs", json!(0)));
    echo.insert("top_p".into(), given("top_p", json!(1.0)));
    echo.insert("truncation".into(), given("truncation", json!("disabled")));
    echo.insert("user".into(), given("user", Value::Null));
    echo
}
