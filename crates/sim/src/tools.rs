//! Which tool calls the simulator answers with, the same in every dialect: the tools a request offers (already
//! validated and reduced to names and parameter kinds by its dialect), what its tool choice allows, and the
//! deterministic arguments (`{"<string property>": "<last user text>", "<integer>": 7, "<number>": 1.5,
//! "<boolean>": true}` in schema order).
//!
//! Pure data work: this module never sees HTTP, never mints ids (ids are each dialect's business) and never
//! validates a request.

use serde_json::{Map, Value};

use crate::answer::{Prompt, Turn};
use crate::json::Ordered;

/// The JSON type of a tool parameter, as far as the simulator fills it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Integer,
    Number,
    Boolean,
}

/// A function tool: its name and its schema's properties, in schema order (`None`: a type the simulator leaves
/// out).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tool {
    pub name: String,
    pub properties: Vec<(String, Option<Kind>)>,
}

impl Tool {
    /// A tool whose parameter schema is `schema` (`input_schema`, `parameters`, `parametersJsonSchema`).
    pub(crate) fn new(name: impl Into<String>, schema: Option<&Ordered>) -> Self {
        let mut properties: Vec<(String, Option<Kind>)> = Vec::new();
        for (key, property) in
            schema.and_then(|s| s.get("properties")).map(Ordered::entries).unwrap_or_default()
        {
            if !properties.iter().any(|(seen, _)| seen == key) {
                properties.push((key.clone(), kind(property)));
            }
        }
        Self { name: name.into(), properties }
    }
}

/// The kind of a property schema: its `type` (case-insensitive, as Gemini writes `STRING`), or the first
/// non-null one of a list of types.
fn kind(property: &Ordered) -> Option<Kind> {
    let name = match property.get("type")? {
        Ordered::String(t) => t.as_str(),
        Ordered::Array(types) => {
            types.iter().filter_map(Ordered::as_str).find(|t| !t.eq_ignore_ascii_case("null"))?
        }
        _ => return None,
    };
    match name.to_ascii_lowercase().as_str() {
        "string" => Some(Kind::String),
        "integer" => Some(Kind::Integer),
        "number" => Some(Kind::Number),
        "boolean" => Some(Kind::Boolean),
        _ => None,
    }
}

/// What the request's tool choice allows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Choice {
    /// The model decides (Anthropic `auto`/`any`, OpenAI `auto`/`required`, Gemini `AUTO`/`ANY`): the simulator
    /// always calls.
    #[default]
    Auto,
    /// No tool calls (Anthropic `none`, OpenAI `none`, Gemini `NONE`).
    None,
    /// Only these tools (a named tool, OpenAI `allowed_tools`, Gemini `allowedFunctionNames`).
    Only(Vec<String>),
}

/// The function tools a request offers and how it lets them be used.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Offer {
    pub tools: Vec<Tool>,
    pub choice: Choice,
    /// Whether more than one call per answer is allowed (OpenAI `parallel_tool_calls`, Anthropic
    /// `disable_parallel_tool_use`).
    pub parallel: bool,
}

impl Default for Offer {
    fn default() -> Self {
        Self { tools: Vec::new(), choice: Choice::Auto, parallel: true }
    }
}

/// One tool call of an answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ToolCall {
    pub name: String,
    /// The arguments as JSON text, properties in schema order (OpenAI `arguments`, Anthropic `partial_json`).
    pub arguments: String,
    /// The same arguments as an object (Anthropic `input`, Gemini `args`).
    pub input: Value,
}

/// The tool calls that answer `prompt`, or `None` when it gets text: tools must be offered and allowed, and the
/// last message must be a user turn with text. Two calls (the first two allowed tools) when the last user text
/// has the word `parallel` and parallel calls are allowed; otherwise one (the first allowed tool).
pub(crate) fn plan(prompt: &Prompt) -> Option<Vec<ToolCall>> {
    let offer = &prompt.tools;
    if prompt.turn != Turn::UserText {
        return None;
    }
    let allowed: Vec<&Tool> = match &offer.choice {
        Choice::None => return None,
        Choice::Auto => offer.tools.iter().collect(),
        Choice::Only(names) => offer.tools.iter().filter(|t| names.contains(&t.name)).collect(),
    };
    if allowed.is_empty() {
        return None;
    }
    let count =
        if offer.parallel && allowed.len() >= 2 && has_word(&prompt.last_user, "parallel") { 2 } else { 1 };
    Some(allowed.into_iter().take(count).map(|tool| call(tool, &prompt.last_user)).collect())
}

/// Whether `text` has `word` as a whole word (case-insensitive; words are runs of letters and digits).
fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric()).any(|w| w.eq_ignore_ascii_case(word))
}

fn call(tool: &Tool, text: &str) -> ToolCall {
    let mut arguments = String::from("{");
    let mut input = Map::new();
    for (key, kind) in &tool.properties {
        let value = match kind {
            Some(Kind::String) => Value::String(text.to_owned()),
            Some(Kind::Integer) => Value::from(7),
            Some(Kind::Number) => Value::from(1.5),
            Some(Kind::Boolean) => Value::Bool(true),
            None => continue,
        };
        if arguments.len() > 1 {
            arguments.push(',');
        }
        arguments.push_str(&Value::String(key.clone()).to_string());
        arguments.push(':');
        arguments.push_str(&value.to_string());
        input.insert(key.clone(), value);
    }
    arguments.push('}');
    ToolCall { name: tool.name.clone(), arguments, input: Value::Object(input) }
}

/// `text` cut into three pieces of (nearly) equal length in characters; they concatenate to `text`. Pieces of a
/// very short text may be empty.
pub(crate) fn thirds(text: &str) -> [&str; 3] {
    let chars = text.chars().count();
    let at = |n: usize| text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
    let (one, two) = (at(chars.div_ceil(3)), at((2 * chars).div_ceil(3)));
    [&text[..one], &text[one..two], &text[two..]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::ordered;

    fn weather() -> Tool {
        let schema = ordered(
            br#"{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},
                "scale":{"type":["null","number"]},"metric":{"type":"BOOLEAN"},"tags":{"type":"array"},
                "any":{}}}"#,
        );
        Tool::new("weather", Some(&schema))
    }

    fn prompt(text: &str, tools: Vec<Tool>) -> Prompt {
        Prompt {
            last_user: text.into(),
            turn: Turn::UserText,
            tools: Offer { tools, ..Offer::default() },
            ..Prompt::default()
        }
    }

    #[test]
    fn arguments_follow_the_schema_order_and_kinds() {
        let calls = plan(&prompt("in Paris", vec![weather()])).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "weather");
        assert_eq!(calls[0].arguments, r#"{"city":"in Paris","days":7,"scale":1.5,"metric":true}"#);
        let parsed: Value = serde_json::from_str(&calls[0].arguments).unwrap();
        assert_eq!(parsed, calls[0].input);
        assert_eq!(Tool::new("t", None).properties, vec![]);
    }

    #[test]
    fn choice_and_parallel_pick_the_calls() {
        let tools = vec![weather(), Tool::new("time", None), Tool::new("news", None)];
        let names = |p: &Prompt| plan(p).map(|c| c.into_iter().map(|c| c.name).collect::<Vec<_>>());
        assert_eq!(names(&prompt("hi", tools.clone())), Some(vec!["weather".into()]));
        assert_eq!(
            names(&prompt("both, in Parallel!", tools.clone())),
            Some(vec!["weather".into(), "time".into()])
        );
        assert_eq!(names(&prompt("parallelism", tools.clone())), Some(vec!["weather".into()]));
        let mut p = prompt("in parallel", tools.clone());
        p.tools.parallel = false;
        assert_eq!(names(&p), Some(vec!["weather".into()]));
        p.tools.parallel = true;
        p.tools.choice = Choice::Only(vec!["news".into()]);
        assert_eq!(names(&p), Some(vec!["news".into()]));
        p.tools.choice = Choice::Only(vec!["news".into(), "time".into()]);
        assert_eq!(names(&p), Some(vec!["time".into(), "news".into()]));
        p.tools.choice = Choice::None;
        assert_eq!(names(&p), None);
        let mut p = prompt("hi", tools);
        p.turn = Turn::Other;
        assert_eq!(names(&p), None);
        assert_eq!(names(&prompt("hi", vec![])), None);
    }

    #[test]
    fn thirds_concatenate_to_the_text() {
        for text in ["", "{}", "{\"a\":1}", "{\"city\":\"é ü ß\"}"] {
            let pieces = thirds(text);
            assert_eq!(pieces.concat(), text);
        }
        assert_eq!(thirds("abcdefghi"), ["abc", "def", "ghi"]);
        assert_eq!(thirds("abcd"), ["ab", "c", "d"]);
    }
}
