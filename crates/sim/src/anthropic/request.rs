//! Validating a Messages request body the way the API does, with its pydantic-style messages (`max_tokens: Field
//! required`, `temperature: Input should be less than or equal to 1`), and turning it into the [`Prompt`] the
//! answer is composed from: system text, stop sequences, custom tools and tool choice, extended thinking, the
//! structured output format (`output_config.format`, or the deprecated beta `output_format`).
//!
//! Messages and their content blocks are checked in `content`. This module never renders a response.

use serde_json::{Map, Value};

use super::bad;
use super::content::{validate_messages, view};
use crate::answer::{self, Prompt, Turn};
use crate::continuation;
use crate::error::ApiError;
use crate::json::{self, Ordered, integer, show, to_u64};
use crate::tools::{Choice, Offer, Tool};

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

/// A validated Messages request.
pub(super) struct Request {
    pub model: String,
    pub stream: bool,
    pub prompt: Prompt,
    pub thinking: Thinking,
}

/// Whether the answer starts with a thinking block, and whether its text is shown (`display: "omitted"` hides it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Thinking {
    Off,
    Shown,
    Omitted,
}

/// The `thinking` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Off,
    Enabled,
    Adaptive,
}

pub(super) fn extra_keys(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(format!("{path}{k}: Extra inputs are not permitted"))),
        None => Ok(()),
    }
}

pub(super) fn string<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, ApiError> {
    match obj.get(key) {
        None => Err(bad(format!("{path}{key}: Field required"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(bad(format!("{path}{key}: Input should be a valid string"))),
    }
}

pub(super) fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ApiError> {
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

/// Validate `body` (whose raw bytes are `raw`) for the simulator called `name`.
pub(super) fn validate(body: &Value, raw: &[u8], name: &str) -> Result<Request, ApiError> {
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
    validate_messages(obj, &mut prompt, name)?;
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
    let forced = validate_tools(obj, raw, &mut prompt)?;
    let (mode, display) = validate_thinking(obj, max_tokens)?;
    if mode != Mode::Off && forced {
        return Err(bad("Thinking may not be enabled when tool_choice forces tool use."));
    }
    if mode == Mode::Enabled {
        require_thinking_before_tool_results(obj, &prompt)?;
    }
    prompt.json = validate_output(obj)?;
    if let Some(tier) = obj.get("service_tier")
        && !matches!(tier.as_str(), Some("auto" | "standard_only"))
    {
        return Err(bad("service_tier: Input should be 'auto' or 'standard_only'"));
    }
    let thinking = match (mode, display) {
        (Mode::Off, _) => Thinking::Off,
        (_, Some("omitted")) => Thinking::Omitted,
        _ => Thinking::Shown,
    };
    let messages = obj.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    continuation::detect(&mut prompt, messages, view, |before, prompt| {
        let only = Map::from_iter([("messages".to_owned(), Value::Array(before.to_vec()))]);
        validate_messages(&only, prompt, name)
    });
    Ok(Request { model, stream, prompt, thinking })
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

fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Check `tools` and `tool_choice`, filling the prompt's offer of custom tools; returns whether the choice forces
/// tool use (`any` or `tool`).
fn validate_tools(obj: &Map<String, Value>, raw: &[u8], prompt: &mut Prompt) -> Result<bool, ApiError> {
    let mut offer = Offer::default();
    if let Some(v) = obj.get("tools") {
        let tools = v.as_array().ok_or_else(|| bad("tools: Input should be a valid list"))?;
        let ordered = json::ordered(raw);
        let ordered_tools = ordered.get("tools").map(Ordered::items).unwrap_or_default();
        let mut names: Vec<&str> = Vec::new();
        for (j, tool) in tools.iter().enumerate() {
            let path = format!("tools.{j}");
            let tool = object(tool, &path)?;
            match tool.get("type").map(|t| t.as_str()) {
                None | Some(Some("custom")) => {
                    let inner = format!("{path}.custom.");
                    extra_keys(tool, CUSTOM_TOOL_KEYS, &inner)?;
                    let name = string(tool, "name", &inner)?;
                    if !valid_tool_name(name) {
                        return Err(bad(format!(
                            "{inner}name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                        )));
                    }
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
                    let schema = ordered_tools.get(j).and_then(|t| t.get("input_schema"));
                    offer.tools.push(Tool::new(name, schema));
                    names.push(name);
                }
                Some(Some(kind)) if is_server_tool(kind) => {
                    if let Some(name) = tool.get("name").and_then(Value::as_str) {
                        names.push(name);
                    }
                }
                Some(other) => {
                    let kind = other.unwrap_or("");
                    return Err(bad(format!(
                        "{path}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
                    )));
                }
            }
        }
        if names.iter().enumerate().any(|(k, n)| names[..k].contains(n)) {
            return Err(bad("tools: Tool names must be unique."));
        }
    }
    let mut forced = false;
    if let Some(v) = obj.get("tool_choice") {
        let choice = object(v, "tool_choice")?;
        extra_keys(choice, &["type", "name", "disable_parallel_tool_use"], "tool_choice.")?;
        let kind = choice.get("type").and_then(Value::as_str);
        match kind {
            Some("auto" | "any") => {}
            Some("none") => offer.choice = Choice::None,
            Some("tool") => {
                let name = string(choice, "name", "tool_choice.tool.")?;
                if !offer.tools.iter().any(|t| t.name == name) {
                    return Err(bad(format!(
                        "tool_choice.tool.name: `{name}` does not match the name of any tool in `tools`"
                    )));
                }
                offer.choice = Choice::Only(vec![name.to_owned()]);
            }
            _ => {
                return Err(bad(
                    "tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', \
                     'any', 'tool', 'none'",
                ));
            }
        }
        forced = matches!(kind, Some("any" | "tool"));
        match choice.get("disable_parallel_tool_use") {
            None => {}
            Some(Value::Bool(disabled)) => offer.parallel = !disabled,
            Some(_) => {
                let kind = kind.unwrap_or_default();
                return Err(bad(format!(
                    "tool_choice.{kind}.disable_parallel_tool_use: Input should be a valid boolean"
                )));
            }
        }
    }
    prompt.tools = offer;
    Ok(forced)
}

/// Check `thinking`; returns its mode and its `display` when given.
fn validate_thinking(obj: &Map<String, Value>, max_tokens: u64) -> Result<(Mode, Option<&str>), ApiError> {
    let Some(v) = obj.get("thinking") else {
        return Ok((Mode::Off, None));
    };
    let thinking = object(v, "thinking")?;
    let kind = thinking.get("type").and_then(Value::as_str);
    let display = |inner: &str| -> Result<Option<&str>, ApiError> {
        match thinking.get("display") {
            None => Ok(None),
            Some(Value::String(d)) if d == "summarized" || d == "omitted" => Ok(Some(d.as_str())),
            Some(_) => Err(bad(format!("{inner}display: Input should be 'summarized' or 'omitted'"))),
        }
    };
    match kind {
        Some("enabled") => {
            extra_keys(thinking, &["type", "budget_tokens", "display"], "thinking.enabled.")?;
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
            Ok((Mode::Enabled, display("thinking.enabled.")?))
        }
        Some("adaptive") => {
            extra_keys(thinking, &["type", "display"], "thinking.adaptive.")?;
            Ok((Mode::Adaptive, display("thinking.adaptive.")?))
        }
        Some("disabled") => {
            extra_keys(thinking, &["type"], "thinking.disabled.")?;
            Ok((Mode::Off, None))
        }
        _ => Err(bad(
            "thinking: Input tag found using 'type' does not match any of the expected tags: 'enabled', \
             'disabled', 'adaptive'",
        )),
    }
}

/// With thinking enabled, the assistant message answered by the final tool results must start with a thinking
/// block (the API's rule for tool use with extended thinking).
fn require_thinking_before_tool_results(obj: &Map<String, Value>, prompt: &Prompt) -> Result<(), ApiError> {
    if !matches!(prompt.turn, Turn::ToolResults(_)) {
        return Ok(());
    }
    let messages = obj.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let Some(i) = messages.len().checked_sub(2) else { return Ok(()) };
    let first = match messages[i].get("content") {
        Some(Value::Array(blocks)) => blocks.first().and_then(|b| b.get("type")).and_then(Value::as_str),
        _ => Some("text"),
    }
    .unwrap_or("text");
    if first == "thinking" || first == "redacted_thinking" {
        return Ok(());
    }
    Err(bad(format!(
        "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{first}`. When \
         `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the \
         lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from \
         previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at \
         https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
    )))
}

/// Check `output_config` and the deprecated `output_format`; returns whether JSON output is asked for.
fn validate_output(obj: &Map<String, Value>) -> Result<bool, ApiError> {
    let mut json = false;
    if let Some(v) = obj.get("output_config") {
        let config = object(v, "output_config")?;
        extra_keys(config, &["effort", "format", "task_budget"], "output_config.")?;
        if let Some(effort) = config.get("effort")
            && !matches!(effort.as_str(), Some("low" | "medium" | "high" | "xhigh" | "max"))
        {
            return Err(bad(
                "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'",
            ));
        }
        if let Some(format) = config.get("format").filter(|f| !f.is_null()) {
            json_format(format, "output_config.format")?;
            json = true;
        }
    }
    if let Some(format) = obj.get("output_format").filter(|f| !f.is_null()) {
        json_format(format, "output_format")?;
        json = true;
    }
    Ok(json)
}

/// Check a `{"type": "json_schema", "schema": {...}}` output format.
fn json_format(format: &Value, path: &str) -> Result<(), ApiError> {
    let format = object(format, path)?;
    if format.get("type").and_then(Value::as_str) != Some("json_schema") {
        return Err(bad(format!("{path}.type: Input should be 'json_schema'")));
    }
    extra_keys(format, &["type", "schema"], &format!("{path}."))?;
    match format.get("schema") {
        None => Err(bad(format!("{path}.schema: Field required"))),
        Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(bad(format!("{path}.schema: Input should be a valid dictionary"))),
    }
}
