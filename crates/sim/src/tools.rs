//! Which tool calls the simulator answers with, the same in every dialect: the tools a request offers (already
//! validated and reduced to names and parameter kinds by its dialect), what its tool choice allows, and the
//! deterministic arguments (`{"<string property>": "<last user text>", "<integer>": 7, "<number>": 1.5,
//! "<boolean>": true}` in schema order).
//!
//! Scripted calls, for tests that drive real agents (which offer dozens of tools and wrap the prompt in their own
//! text): a user text may carry directives `[[sim:call NAME {"json":"object"}]]`. A request whose user texts have
//! any directive never gets the default call above. After `k` turns of tool results it gets exactly one call of the
//! `k`-th directive (counting from 0, across all user texts in order), with exactly that JSON object as its
//! arguments (compact, keys in written order), when `NAME` is offered and allowed; once every directive has had its
//! turn, or when `NAME` is not offered, it gets text.
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

/// The tool calls that answer `prompt`, or `None` when it gets text. When its user texts carry directives, the
/// scripted call of this turn ([`scripted`]). Otherwise tools must be offered and allowed, and the last message must
/// be a user turn with text: two calls (the first two allowed tools) when the last user text has the word
/// `parallel` and parallel calls are allowed; otherwise one (the first allowed tool).
pub(crate) fn plan(prompt: &Prompt) -> Option<Vec<ToolCall>> {
    let script = directives(&prompt.user_texts);
    if !script.is_empty() {
        return scripted(prompt, &script).map(|call| vec![call]);
    }
    if prompt.turn != Turn::UserText {
        return None;
    }
    let allowed = allowed(&prompt.tools);
    if allowed.is_empty() {
        return None;
    }
    let count = if prompt.tools.parallel && allowed.len() >= 2 && has_word(&prompt.last_user, "parallel") {
        2
    } else {
        1
    };
    Some(allowed.into_iter().take(count).map(|tool| call(tool, &prompt.last_user)).collect())
}

/// The tools `offer`'s tool choice allows, in offer order.
fn allowed(offer: &Offer) -> Vec<&Tool> {
    match &offer.choice {
        Choice::None => Vec::new(),
        Choice::Auto => offer.tools.iter().collect(),
        Choice::Only(names) => offer.tools.iter().filter(|t| names.contains(&t.name)).collect(),
    }
}

/// What starts a directive.
const DIRECTIVE: &str = "[[sim:call ";

/// A scripted call written in a user text: `[[sim:call NAME ARGS_JSON]]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Directive {
    pub name: String,
    /// `ARGS_JSON` re-serialized compactly, keys in the order written.
    pub arguments: String,
    /// The same object.
    pub input: Value,
}

/// The directives in `texts`, in order. Malformed ones (no name, arguments that are not one JSON object on the
/// same line, no closing `]]`) are ignored.
pub(crate) fn directives(texts: &[String]) -> Vec<Directive> {
    let mut out = Vec::new();
    for text in texts {
        let mut rest = text.as_str();
        while let Some(at) = rest.find(DIRECTIVE) {
            rest = &rest[at + DIRECTIVE.len()..];
            if let Some((directive, used)) = directive(rest) {
                out.push(directive);
                rest = &rest[used..];
            }
        }
    }
    out
}

/// The directive whose `NAME ARGS_JSON]]` starts `text`, and how many bytes of `text` it takes.
fn directive(text: &str) -> Option<(Directive, usize)> {
    let blank = |s: &str| s.len() - s.trim_start_matches([' ', '\t']).len();
    let name_end = text.find(char::is_whitespace)?;
    let gap = blank(&text[name_end..]);
    if name_end == 0 || gap == 0 {
        return None;
    }
    let json_text = &text[name_end + gap..];
    let mut stream = serde_json::Deserializer::from_str(json_text).into_iter::<Ordered>();
    let args = stream.next()?.ok()?;
    let json_end = stream.byte_offset();
    if !matches!(args, Ordered::Object(_)) || json_text[..json_end].contains(['\n', '\r']) {
        return None;
    }
    let close = blank(&json_text[json_end..]);
    if !json_text[json_end + close..].starts_with("]]") {
        return None;
    }
    let arguments = serde_json::to_string(&args).ok()?;
    let input = serde_json::from_str(&arguments).ok()?;
    let used = name_end + gap + json_end + close + 2;
    Some((Directive { name: text[..name_end].to_owned(), arguments, input }, used))
}

/// The scripted call of this turn: the directive numbered by the tool-result turns so far, when the last message is
/// a user turn or tool results and its tool is offered and allowed. `None` (text) otherwise.
fn scripted(prompt: &Prompt, script: &[Directive]) -> Option<ToolCall> {
    if !matches!(prompt.turn, Turn::UserText | Turn::ToolResults(_)) {
        return None;
    }
    let directive = script.get(usize::try_from(prompt.tool_turns).ok()?)?;
    allowed(&prompt.tools).iter().any(|tool| tool.name == directive.name).then(|| ToolCall {
        name: directive.name.clone(),
        arguments: directive.arguments.clone(),
        input: directive.input.clone(),
    })
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

    fn scripted_prompt(texts: &[&str], tools: Vec<Tool>, tool_turns: u64, turn: Turn) -> Prompt {
        Prompt {
            user_texts: texts.iter().map(|t| (*t).to_owned()).collect(),
            last_user: texts.last().map(|t| (*t).to_owned()).unwrap_or_default(),
            tool_turns,
            turn,
            tools: Offer { tools, ..Offer::default() },
            ..Prompt::default()
        }
    }

    fn results() -> Turn {
        Turn::ToolResults(vec![crate::answer::ToolResult { text: "ok".into(), error: false }])
    }

    #[test]
    fn directives_parse_name_and_ordered_arguments() {
        let got = directives(&[
            r#"do it [[sim:call Bash {"command": "ls -la", "description": "list", "n": 1.50}]] please"#
                .into(),
        ]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "Bash");
        assert_eq!(got[0].arguments, r#"{"command":"ls -la","description":"list","n":1.5}"#);
        assert_eq!(got[0].input, serde_json::json!({"command": "ls -la", "description": "list", "n": 1.5}));
        // Brackets inside the JSON strings do not end it; spaces before `]]` are allowed; several per text.
        let got = directives(&[
            r#"[[sim:call a {"x": "]] [[sim:call b {}]]"} ]] then [[sim:call mcp__fs__read {}]]"#.into(),
            r#"[[sim:call c {"k": [1, {"z": 0, "a": 1}]}]]"#.into(),
        ]);
        let names: Vec<&str> = got.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "mcp__fs__read", "c"]);
        assert_eq!(got[0].arguments, r#"{"x":"]] [[sim:call b {}]]"}"#);
        assert_eq!(got[2].arguments, r#"{"k":[1,{"z":0,"a":1}]}"#);
    }

    #[test]
    fn malformed_directives_are_ignored() {
        for text in [
            "[[sim:call Bash {\"command\": }]]",
            "[[sim:call Bash [1, 2]]]",
            "[[sim:call Bash \"ls\"]]",
            "[[sim:call Bash {\"a\": 1}",
            "[[sim:call Bash {\"a\": 1} trailing]]",
            "[[sim:call  {\"a\": 1}]]",
            "[[sim:call Bash\n{\"a\": 1}]]",
            "[[sim:call Bash {\"a\":\n 1}]]",
            "[[sim:call Bash]]",
            "[[sim:call",
            "[[sim:cal Bash {}]]",
        ] {
            assert_eq!(directives(&[text.into()]), vec![], "{text:?}");
        }
        // A malformed directive does not hide a good one after it.
        let got = directives(&["[[sim:call Bash {oops}]] [[sim:call Read {\"path\": \"a\"}]]".into()]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "Read");
    }

    #[test]
    fn directives_are_issued_in_turn_then_text() {
        let tools = vec![weather(), Tool::new("Bash", None), Tool::new("Read", None)];
        let texts = [
            "<system-reminder>be careful</system-reminder>",
            r#"fix it [[sim:call Bash {"command":"ls"}]]"#,
            r#"<system-reminder>[[sim:call Read {"path":"a.txt"}]]</system-reminder>"#,
        ];
        let calls = plan(&scripted_prompt(&texts, tools.clone(), 0, Turn::UserText)).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!((calls[0].name.as_str(), calls[0].arguments.as_str()), ("Bash", r#"{"command":"ls"}"#));
        assert_eq!(calls[0].input, serde_json::json!({"command": "ls"}));
        let calls = plan(&scripted_prompt(&texts, tools.clone(), 1, results())).unwrap();
        assert_eq!((calls[0].name.as_str(), calls[0].arguments.as_str()), ("Read", r#"{"path":"a.txt"}"#));
        // Every directive has had its turn: text (which `compose` makes "tool said: …").
        assert_eq!(plan(&scripted_prompt(&texts, tools.clone(), 2, results())), None);
        assert_eq!(plan(&scripted_prompt(&texts, tools.clone(), 2, Turn::UserText)), None);
        // "parallel" in the prompt does not add a second call.
        let texts = [r#"in parallel [[sim:call Bash {}]]"#];
        assert_eq!(plan(&scripted_prompt(&texts, tools.clone(), 0, Turn::UserText)).unwrap().len(), 1);
        // A last message that is neither user text nor tool results gets text.
        assert_eq!(plan(&scripted_prompt(&texts, tools, 0, Turn::Other)), None);
    }

    #[test]
    fn a_directive_never_calls_a_tool_not_offered_or_not_allowed() {
        let texts = [r#"[[sim:call Bash {"command":"rm -rf /"}]]"#];
        // Not offered: text, not the default call of the first tool.
        assert_eq!(plan(&scripted_prompt(&texts, vec![weather()], 0, Turn::UserText)), None);
        assert_eq!(plan(&scripted_prompt(&texts, vec![], 0, Turn::UserText)), None);
        let mut p = scripted_prompt(&texts, vec![weather(), Tool::new("Bash", None)], 0, Turn::UserText);
        p.tools.choice = Choice::None;
        assert_eq!(plan(&p), None);
        p.tools.choice = Choice::Only(vec!["weather".into()]);
        assert_eq!(plan(&p), None);
        p.tools.choice = Choice::Only(vec!["Bash".into()]);
        assert_eq!(plan(&p).unwrap()[0].name, "Bash");
    }

    #[test]
    fn without_directives_the_default_policy_is_unchanged() {
        let mut p = scripted_prompt(&["in Paris", "[sim:call Bash {}]"], vec![weather()], 0, Turn::UserText);
        p.last_user = "in Paris".into();
        let calls = plan(&p).unwrap();
        assert_eq!(calls[0].arguments, r#"{"city":"in Paris","days":7,"scale":1.5,"metric":true}"#);
        // Tool-result turns do not change the default policy either.
        p.tool_turns = 3;
        assert_eq!(plan(&p).unwrap()[0].name, "weather");
        p.turn = results();
        assert_eq!(plan(&p), None);
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
