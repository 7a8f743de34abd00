//! The deterministic answer every dialect gives: `"{name} says: {last user text}"` (after tool results:
//! `"{name} says: tool said: {r1} | {r2}"`), plus ` [images: N]` when the last user message has images and
//! ` [system: {system text}]` when there is a system prompt, cut by stop sequences and by max tokens; or, in JSON
//! mode, `{"answer":"<that text>"}` uncut. When tools are offered the answer may be tool calls instead ([`tools`]),
//! including the calls a test scripts with `[[sim:call NAME ARGS_JSON]]` directives in user text.
//!
//! A question over numbered sources (`Sources:` … `Question:`) is answered instead with the source sentence that
//! answers it and its citation, or "The documents do not say." ([`crate::grounded`]).
//!
//! A continuation (a request to continue an answer another model cut, [`crate::continuation`]) is answered with the
//! part of that answer after the words already delivered.
//!
//! A "token" is a whitespace-separated word. This module is pure text work: it never sees a wire shape or HTTP, so
//! that all three dialects answer a correctly translated request with exactly the same text and counts.

use crate::continuation::Continuation;
use crate::tools::{self, Offer, ToolCall};

/// What a dialect extracted from a valid request.
#[derive(Debug, Default)]
pub(crate) struct Prompt {
    /// The concatenated text of the last user message that has any text.
    pub last_user: String,
    /// The concatenated text of every user message that has any text, in order (tool results are not user text).
    /// Scripted calls (`[[sim:call NAME ARGS]]`, see [`tools`]) are read from all of them, since agents add
    /// reminder blocks after the prompt.
    pub user_texts: Vec<String>,
    /// How many turns of tool results the conversation has had so far (an Anthropic user message with
    /// `tool_result` blocks, a run of OpenAI `tool` messages or Responses `function_call_output` items, a Gemini
    /// content with `functionResponse` parts).
    pub tool_turns: u64,
    /// The concatenated system text (empty when there is none).
    pub system: String,
    /// Words across all request text (system and message text; tool calls and results are not text).
    pub input_words: u64,
    /// The request's output limit, if it set one.
    pub max_tokens: Option<u64>,
    /// The request's stop sequences.
    pub stop: Vec<String>,
    /// What the conversation's last message is.
    pub turn: Turn,
    /// Images in the last message, when it is a user message that does not carry tool results.
    pub images: u64,
    /// The request asked for JSON output.
    pub json: bool,
    /// The function tools offered.
    pub tools: Offer,
    /// The conversation ends with an assistant message (what a simulator that refuses prefill refuses).
    pub ends_with_assistant: bool,
    /// The request asks to continue a cut answer: the conversation fields above (`last_user`, `user_texts`,
    /// `tool_turns`, `turn`, `images`) are then those of the conversation before the continuation's messages, while
    /// `input_words` counts the whole request.
    pub continuation: Option<Continuation>,
    /// How many words of the continued text a continuation's answer repeats first (the `Repeat` fault).
    pub repeat: usize,
}

/// What the conversation's last message is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Turn {
    /// A user message with text (and no tool results).
    UserText,
    /// Tool results, in order (Anthropic `tool_result` blocks, OpenAI trailing `tool` messages, Gemini
    /// `functionResponse` parts).
    ToolResults(Vec<ToolResult>),
    /// Anything else (an assistant prefill, a user message without text).
    #[default]
    Other,
}

/// One tool result, as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ToolResult {
    pub text: String,
    /// Anthropic `is_error: true`.
    pub error: bool,
}

/// What a request is answered with.
#[derive(Debug)]
pub(crate) enum Outcome {
    Text(Answer),
    /// Tool calls; their output tokens are the words of their arguments JSON.
    Calls {
        calls: Vec<ToolCall>,
        input_tokens: u64,
        output_tokens: u64,
    },
}

impl Outcome {
    pub(crate) fn input_tokens(&self) -> u64 {
        match self {
            Outcome::Text(answer) => answer.input_tokens,
            Outcome::Calls { input_tokens, .. } => *input_tokens,
        }
    }

    pub(crate) fn output_tokens(&self) -> u64 {
        match self {
            Outcome::Text(answer) => answer.output_tokens,
            Outcome::Calls { output_tokens, .. } => *output_tokens,
        }
    }
}

/// Answer `prompt` as the simulator called `name`: tool calls when [`tools::plan`] calls (never for a
/// continuation), text otherwise.
pub(crate) fn respond(name: &str, prompt: &Prompt) -> Outcome {
    let planned = if prompt.continuation.is_some() { None } else { tools::plan(prompt) };
    match planned {
        Some(calls) => {
            let output_tokens = calls.iter().map(|c| words(&c.arguments)).sum();
            Outcome::Calls { calls, input_tokens: prompt.input_words, output_tokens }
        }
        None => Outcome::Text(compose(name, prompt)),
    }
}

/// Why the answer ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    /// The whole answer was produced.
    Natural,
    /// Cut by the max tokens limit.
    Length,
    /// Cut right before this stop sequence.
    StopSequence(String),
}

/// The answer to one request.
#[derive(Debug)]
pub(crate) struct Answer {
    pub text: String,
    pub finish: Finish,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Answer {
    /// The answer as one delta per word, keeping the spaces: their concatenation is `text` exactly.
    pub(crate) fn deltas(&self) -> Vec<&str> {
        pieces(&self.text)
    }
}

/// Compose the answer of the simulator called `name` to `prompt`.
///
/// For a continuation: the answer F to the conversation before it, from its piece number words(prefill) on (F's
/// first words are taken as delivered, without comparing them), after the last `repeat` pieces of the prefill when a
/// `Repeat` fault asks for them; stop sequences and the output limit then apply to that answered text. When F has no
/// more words than the prefill, the answer is empty and ends naturally.
pub(crate) fn compose(name: &str, prompt: &Prompt) -> Answer {
    let full = full_text(name, prompt);
    let Some(continuation) = &prompt.continuation else {
        return limit(full, prompt);
    };
    let delivered = usize::try_from(words(&continuation.prefill)).unwrap_or(usize::MAX);
    let prefill = pieces(&continuation.prefill);
    let mut text = prefill[prefill.len().saturating_sub(prompt.repeat)..].concat();
    text.extend(pieces(&full).into_iter().skip(delivered));
    limit(text, prompt)
}

/// The whole answer before any cut: the echo of the last user text or of the tool results, images and system text;
/// in JSON mode, that as `{"answer": …}`.
fn full_text(name: &str, prompt: &Prompt) -> String {
    let mut full = match &prompt.turn {
        Turn::ToolResults(results) => {
            let results: Vec<String> = results
                .iter()
                .map(|r| if r.error { format!("error: {}", r.text) } else { r.text.clone() })
                .collect();
            format!("{name} says: tool said: {}", results.join(" | "))
        }
        Turn::UserText | Turn::Other => match crate::grounded::answer(&prompt.last_user) {
            // A question over numbered sources: the cited sentence, and nothing of the (long) prompt echoed.
            Some(grounded) if !prompt.json => return format!("{name} says: {grounded}"),
            _ => format!("{name} says: {}", prompt.last_user),
        },
    };
    if prompt.images > 0 {
        full.push_str(&format!(" [images: {}]", prompt.images));
    }
    if !prompt.system.is_empty() {
        full.push_str(" [system: ");
        full.push_str(&prompt.system);
        full.push(']');
    }
    if prompt.json {
        return serde_json::json!({ "answer": full }).to_string();
    }
    full
}

/// The answer `full`, cut by the earliest stop sequence and by max tokens (neither in JSON mode).
fn limit(full: String, prompt: &Prompt) -> Answer {
    if prompt.json {
        return Answer {
            output_tokens: words(&full),
            text: full,
            finish: Finish::Natural,
            input_tokens: prompt.input_words,
        };
    }
    let first_stop = prompt
        .stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| full.find(s.as_str()).map(|at| (at, s)))
        .min_by_key(|(at, _)| *at);
    let (mut text, mut finish) = match first_stop {
        Some((at, seq)) => (full[..at].to_owned(), Finish::StopSequence(seq.clone())),
        None => (full, Finish::Natural),
    };
    if let Some(max) = prompt.max_tokens
        && words(&text) > max
    {
        text = first_words(&text, max).to_owned();
        finish = Finish::Length;
    }
    Answer { output_tokens: words(&text), text, finish, input_tokens: prompt.input_words }
}

/// Number of whitespace-separated words in `text`.
pub(crate) fn words(text: &str) -> u64 {
    u64::try_from(text.split_whitespace().count()).unwrap_or(u64::MAX)
}

/// `text` up to the end of its `n`th word.
fn first_words(text: &str, n: u64) -> &str {
    let mut seen = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                seen += 1;
                if seen == n {
                    return &text[..i];
                }
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    text
}

/// Split `text` into one piece per word; whitespace before a word belongs to it, trailing whitespace to the last.
pub(crate) fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut word_end = 0;
    let mut seen_word = false;
    let mut prev_ws = true;
    for (i, c) in text.char_indices() {
        let ws = c.is_whitespace();
        if !ws {
            if prev_ws && seen_word {
                out.push(&text[start..word_end]);
                start = word_end;
            }
            seen_word = true;
            word_end = i + c.len_utf8();
        }
        prev_ws = ws;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(user: &str) -> Prompt {
        Prompt { last_user: user.into(), input_words: words(user), ..Prompt::default() }
    }

    #[test]
    fn plain_answer_echoes_the_user() {
        let a = compose("alpha", &prompt("hello there"));
        assert_eq!(a.text, "alpha says: hello there");
        assert_eq!(a.finish, Finish::Natural);
        assert_eq!((a.input_tokens, a.output_tokens), (2, 4));
    }

    #[test]
    fn system_is_appended() {
        let p = Prompt { system: "be brief".into(), ..prompt("hi") };
        assert_eq!(compose("a", &p).text, "a says: hi [system: be brief]");
    }

    #[test]
    fn max_tokens_cuts_words() {
        let p = Prompt { max_tokens: Some(3), ..prompt("one two three") };
        let a = compose("a", &p);
        assert_eq!(a.text, "a says: one");
        assert_eq!(a.finish, Finish::Length);
        assert_eq!(a.output_tokens, 3);
        let p = Prompt { max_tokens: Some(5), ..prompt("one two three") };
        assert_eq!(compose("a", &p).finish, Finish::Natural);
    }

    #[test]
    fn earliest_stop_sequence_wins() {
        let p = Prompt { stop: vec!["three".into(), "two".into()], ..prompt("one two three") };
        let a = compose("a", &p);
        assert_eq!(a.text, "a says: one ");
        assert_eq!(a.finish, Finish::StopSequence("two".into()));
        assert_eq!(a.output_tokens, 3);
    }

    #[test]
    fn length_wins_when_it_comes_first() {
        let p = Prompt { stop: vec!["three".into()], max_tokens: Some(2), ..prompt("one two three") };
        let a = compose("a", &p);
        assert_eq!(a.text, "a says:");
        assert_eq!(a.finish, Finish::Length);
    }

    #[test]
    fn tool_results_images_and_json() {
        let results = vec![
            ToolResult { text: "sunny".into(), error: false },
            ToolResult { text: "no such city".into(), error: true },
        ];
        let p = Prompt { turn: Turn::ToolResults(results), system: "sys".into(), ..prompt("ignored") };
        assert_eq!(compose("a", &p).text, "a says: tool said: sunny | error: no such city [system: sys]");
        let p = Prompt { images: 2, system: "sys".into(), ..prompt("look") };
        assert_eq!(compose("a", &p).text, "a says: look [images: 2] [system: sys]");
        let p = Prompt { json: true, max_tokens: Some(1), stop: vec!["says".into()], ..prompt("say \"hi\"") };
        let a = compose("a", &p);
        assert_eq!(a.text, r#"{"answer":"a says: say \"hi\""}"#);
        assert_eq!((a.finish, a.output_tokens), (Finish::Natural, 4));
    }

    #[test]
    fn a_directive_is_answered_with_its_call_then_with_the_tool_result() {
        let tools = Offer { tools: vec![crate::tools::Tool::new("Bash", None)], ..Offer::default() };
        let text = r#"go [[sim:call Bash {"command": "echo hi"}]]"#;
        let p = Prompt {
            user_texts: vec![text.into()],
            turn: Turn::UserText,
            tools: tools.clone(),
            ..prompt(text)
        };
        match respond("a", &p) {
            Outcome::Calls { calls, input_tokens, output_tokens } => {
                assert_eq!(calls.len(), 1);
                assert_eq!(calls[0].arguments, r#"{"command":"echo hi"}"#);
                assert_eq!((input_tokens, output_tokens), (6, 2));
            }
            Outcome::Text(answer) => panic!("expected a call, got {:?}", answer.text),
        }
        let results = vec![ToolResult { text: "hi".into(), error: false }];
        let p = Prompt {
            user_texts: vec![text.into()],
            turn: Turn::ToolResults(results),
            tool_turns: 1,
            tools,
            ..prompt(text)
        };
        match respond("a", &p) {
            Outcome::Text(answer) => assert_eq!(answer.text, "a says: tool said: hi"),
            Outcome::Calls { calls, .. } => panic!("expected text, got {calls:?}"),
        }
    }

    #[test]
    fn deltas_concatenate_to_the_text() {
        for text in ["a says: hello  world ", "  lead", "", "one", "x\ty\nz", "é ü  ß"] {
            let a = Answer { text: text.into(), finish: Finish::Natural, input_tokens: 0, output_tokens: 0 };
            let d = a.deltas();
            assert_eq!(d.concat(), text);
            assert_eq!(u64::try_from(d.len()).unwrap(), words(text).max(u64::from(!text.is_empty())));
        }
        let a =
            Answer { text: "a says: hi".into(), finish: Finish::Natural, input_tokens: 0, output_tokens: 0 };
        assert_eq!(a.deltas(), vec!["a", " says:", " hi"]);
    }

    fn continuing(user: &str, prefill: &str) -> Prompt {
        let continuation = Continuation { prefill: prefill.into(), form: crate::continuation::Form::Prefill };
        Prompt { turn: Turn::UserText, continuation: Some(continuation), ..prompt(user) }
    }

    #[test]
    fn a_continuation_answers_what_follows_the_delivered_words() {
        let a = compose("beta", &continuing("one two three four five", "alpha says: one two"));
        assert_eq!(a.text, " three four five");
        assert_eq!(a.deltas(), vec![" three", " four", " five"]);
        assert_eq!((a.finish, a.output_tokens, a.input_tokens), (Finish::Natural, 3, 5));
        // Positional: the delivered words are not compared with the answer's.
        assert_eq!(compose("beta", &continuing("one two three", "x y")).text, " one two three");
        for prefill in ["a b c d e", "a b c d e f g"] {
            let a = compose("beta", &continuing("one two three", prefill));
            assert_eq!((a.text.as_str(), a.finish, a.output_tokens), ("", Finish::Natural, 0));
        }
    }

    #[test]
    fn a_continuation_may_repeat_the_end_of_the_prefill_and_is_cut_like_any_answer() {
        let p = Prompt { repeat: 1, ..continuing("one two three", "alpha says: one") };
        assert_eq!(compose("beta", &p).text, " one two three");
        let p = Prompt { repeat: 9, ..continuing("one two three", "alpha  says: one") };
        assert_eq!(compose("beta", &p).deltas(), vec!["alpha", "  says:", " one", " two", " three"]);
        let p = Prompt { max_tokens: Some(1), ..continuing("one two three", "alpha says:") };
        let a = compose("beta", &p);
        assert_eq!((a.text.as_str(), a.finish), (" one", Finish::Length));
        let p = Prompt { stop: vec!["three".into()], ..continuing("one two three", "alpha says:") };
        let a = compose("beta", &p);
        assert_eq!((a.text.as_str(), a.finish), (" one two ", Finish::StopSequence("three".into())));
        let p = Prompt { json: true, ..continuing("one two", "{\"answer\":\"b says:") };
        assert_eq!(compose("b", &p).text, " one two\"}");
    }

    #[test]
    fn a_continuation_is_never_answered_with_tool_calls() {
        let tools = Offer { tools: vec![crate::tools::Tool::new("f", None)], ..Offer::default() };
        let p = Prompt { tools, ..continuing("one two", "a says:") };
        match respond("a", &p) {
            Outcome::Text(answer) => assert_eq!(answer.text, " one two"),
            Outcome::Calls { calls, .. } => panic!("expected text, got {calls:?}"),
        }
    }
}
