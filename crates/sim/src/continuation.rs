//! Continuations: a request that asks the model to go on with an answer another model broke off, in either of the
//! two forms a gateway sends:
//!
//! - prefill: the original conversation, then a final assistant message whose text is what was already delivered;
//! - instruction: the original conversation, an assistant message with that text, then a final user message whose
//!   text starts with [`INSTRUCTION`].
//!
//! The assistant message must have text (not only whitespace) and no tool calls. A continuation is answered as a
//! model that continues would: the answer to the original conversation, without its first words(prefill) words
//! ([`crate::answer::compose`]). Each dialect shows its conversation's last two messages as [`Message`]s and reads
//! its own messages again without the ones a continuation adds; [`detect`] does the rest, the same for all of them.
//! This module never sees a wire shape: it decides from what the dialect tells it.

use serde_json::Value;

use crate::answer::Prompt;
use crate::error::ApiError;

/// How the final user message of the instruction form starts.
pub(crate) const INSTRUCTION: &str = "Your previous reply was cut off.";

/// The 400 message of a simulator that refuses assistant prefill (`Sim::set_refuse_prefill`).
pub(crate) const PREFILL_REFUSED: &str = "This model does not support assistant message prefill. The conversation \
                                          must end with a user message.";

/// Which form a continuation request takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// The conversation ends with an assistant message holding the answer so far.
    Prefill,
    /// The answer so far in an assistant message, then a user message starting with [`INSTRUCTION`].
    Instruction,
}

/// A request to continue a cut answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Continuation {
    /// The answer so far: the assistant message's text, trailing whitespace trimmed.
    pub prefill: String,
    pub form: Form,
}

/// One message of a conversation, as far as continuations care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Message {
    /// A user message: its text, when it has text and carries no tool results.
    User(Option<String>),
    /// An assistant (Gemini: `model`) message: its text (thoughts left out) and whether it carries tool calls.
    Assistant { text: String, calls: bool },
    /// Anything else: a system message, a tool message or item, a hosted tool's item…
    Other,
}

/// The continuation that conversation's last messages (`tail`: at most the last two) ask for, and how many of them
/// are not part of the original conversation (1 for a prefill, 2 for an instruction).
fn shape(tail: &[Message]) -> Option<(Continuation, usize)> {
    let prefill = |text: &str| Continuation { prefill: text.trim_end().to_owned(), form: Form::Prefill };
    match tail {
        [.., Message::Assistant { text, calls: false }] if !text.trim().is_empty() => {
            Some((prefill(text), 1))
        }
        [Message::Assistant { text, calls: false }, Message::User(Some(instruction))]
            if !text.trim().is_empty() && instruction.trim_start().starts_with(INSTRUCTION) =>
        {
            Some((Continuation { form: Form::Instruction, ..prefill(text) }, 2))
        }
        _ => None,
    }
}

/// Fill the continuation fields of `prompt`, already filled from all of `messages` (a dialect's messages, contents or
/// input items): whether the conversation ends with an assistant message and, when its last messages ask for a
/// continuation, the continuation, with the conversation fields (last user text, user texts, tool turns, turn,
/// images) read again by `read` from the messages before it. Input words, system text and everything else stay
/// those of the whole request. `view` shows one message; `read` is the dialect's own reading of a list of messages
/// (when it refuses the shorter list, the request is not taken as a continuation).
pub(crate) fn detect(
    prompt: &mut Prompt,
    messages: &[Value],
    view: impl Fn(&Value) -> Message,
    read: impl FnOnce(&[Value], &mut Prompt) -> Result<(), ApiError>,
) {
    let tail: Vec<Message> = messages[messages.len().saturating_sub(2)..].iter().map(view).collect();
    prompt.ends_with_assistant = matches!(tail.last(), Some(Message::Assistant { .. }));
    let Some((continuation, added)) = shape(&tail) else { return };
    let original = &messages[..messages.len() - added];
    let mut before = Prompt::default();
    if !original.is_empty() && read(original, &mut before).is_err() {
        return;
    }
    prompt.last_user = before.last_user;
    prompt.user_texts = before.user_texts;
    prompt.tool_turns = before.tool_turns;
    prompt.turn = before.turn;
    prompt.images = before.images;
    prompt.continuation = Some(continuation);
}

/// A user message as continuations see it, for the dialects whose content is a string or a list of parts: its text
/// when it has any (a string, or a part whose `type` is one of `text_types`).
pub(crate) fn user_message(content: Option<&Value>, text_types: &[&str]) -> Message {
    let has_text = content.is_some_and(|c| {
        c.is_string()
            || c.as_array().is_some_and(|parts| {
                parts
                    .iter()
                    .any(|p| p.get("type").and_then(Value::as_str).is_some_and(|t| text_types.contains(&t)))
            })
    });
    Message::User(has_text.then(|| text_of(content, text_types)))
}

/// The text of a message's content in the shapes the dialects share: a string, or a list of parts whose `type` is
/// one of `text_types` and whose text is under `text`.
pub(crate) fn text_of(content: Option<&Value>, text_types: &[&str]) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str).is_some_and(|t| text_types.contains(&t)))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assistant(text: &str) -> Message {
        Message::Assistant { text: text.into(), calls: false }
    }

    fn user(text: &str) -> Message {
        Message::User(Some(text.into()))
    }

    const CUT: &str = "Your previous reply was cut off. Continue it from exactly where it stopped: do not repeat any \
                       of it and do not add anything before the continuation.";

    #[test]
    fn both_forms_are_recognised() {
        let (c, added) = shape(&[user("hi"), assistant("so far  \n")]).unwrap();
        assert_eq!((c.prefill.as_str(), c.form, added), ("so far", Form::Prefill, 1));
        let (c, added) = shape(&[assistant("so far"), user(CUT)]).unwrap();
        assert_eq!((c.prefill.as_str(), c.form, added), ("so far", Form::Instruction, 2));
        let (c, _) = shape(&[assistant("only")]).unwrap();
        assert_eq!(c.form, Form::Prefill);
    }

    #[test]
    fn other_shapes_are_not_continuations() {
        assert_eq!(shape(&[user("hi"), assistant("  ")]), None);
        assert_eq!(shape(&[user("hi"), Message::Assistant { text: "calling".into(), calls: true }]), None);
        assert_eq!(shape(&[assistant("so far"), user("go on")]), None);
        assert_eq!(shape(&[assistant(""), user(CUT)]), None);
        assert_eq!(shape(&[Message::Assistant { text: "x".into(), calls: true }, user(CUT)]), None);
        assert_eq!(shape(&[assistant("so far"), Message::User(None)]), None);
        assert_eq!(shape(&[user("hi")]), None);
        assert_eq!(shape(&[]), None);
    }

    #[test]
    fn detect_reads_the_conversation_before_the_continuation() {
        let messages = vec![Value::from("one"), Value::from("two"), Value::from("three")];
        let view = |m: &Value| match m.as_str() {
            Some("one") => user("hello there"),
            Some("two") => assistant("a says: hello"),
            _ => user(CUT),
        };
        let mut prompt = Prompt { last_user: CUT.into(), input_words: 30, ..Prompt::default() };
        detect(&mut prompt, &messages, view, |before, p| {
            assert_eq!(before.len(), 1);
            p.last_user = "hello there".into();
            p.user_texts.push("hello there".into());
            Ok(())
        });
        assert_eq!(prompt.last_user, "hello there");
        assert_eq!(prompt.user_texts, ["hello there"]);
        assert_eq!(prompt.input_words, 30);
        assert!(!prompt.ends_with_assistant);
        assert_eq!(prompt.continuation.unwrap().form, Form::Instruction);

        let mut prompt = Prompt::default();
        detect(&mut prompt, &messages[..2], view, |_, _| Err(ApiError::bad("no")));
        assert!(prompt.ends_with_assistant);
        assert_eq!(
            prompt.continuation, None,
            "a shorter conversation the dialect refuses is no continuation"
        );
    }

    /// The prompt each dialect reads from `(role, text)` messages (`assistant` is Gemini's `model`).
    fn prompts(messages: &[(&str, &str)]) -> Vec<(&'static str, Prompt)> {
        use serde_json::json;
        let plain: Vec<Value> = messages.iter().map(|(r, t)| json!({"role": r, "content": t})).collect();
        let contents: Vec<Value> = messages
            .iter()
            .map(
                |(r, t)| json!({"role": if *r == "assistant" { "model" } else { r }, "parts": [{"text": t}]}),
            )
            .collect();
        let anthropic = json!({"model": "m", "max_tokens": 100, "messages": plain});
        let openai = json!({"model": "m", "messages": plain});
        let responses = json!({"model": "m", "input": plain});
        let gemini = json!({"contents": contents});
        vec![
            ("anthropic", crate::anthropic::prompt_of(&anthropic, "a").unwrap()),
            ("openai", crate::openai::prompt_of(&openai).unwrap()),
            ("responses", crate::responses::prompt_of(&responses, "a").unwrap()),
            ("gemini", crate::gemini::prompt_of(&gemini, "a").unwrap()),
        ]
    }

    #[test]
    fn every_dialect_records_the_form_and_the_original_conversation() {
        use crate::answer::Turn;
        for (dialect, p) in
            prompts(&[("user", "first"), ("assistant", "x"), ("user", "one two"), ("assistant", "so far")])
        {
            let c = p.continuation.unwrap_or_else(|| panic!("{dialect}: not taken as a continuation"));
            assert_eq!((c.prefill.as_str(), c.form), ("so far", Form::Prefill), "{dialect}");
            assert_eq!(
                (p.last_user.as_str(), &p.user_texts),
                ("one two", &vec!["first".to_owned(), "one two".to_owned()]),
                "{dialect}"
            );
            assert_eq!(p.turn, Turn::UserText, "{dialect}");
            assert!(p.ends_with_assistant, "{dialect}");
            assert_eq!(p.input_words, 6, "{dialect}: the whole request");
        }
        for (dialect, p) in prompts(&[("user", "one two"), ("assistant", "so far"), ("user", CUT)]) {
            let c = p.continuation.unwrap_or_else(|| panic!("{dialect}: not taken as a continuation"));
            assert_eq!((c.prefill.as_str(), c.form), ("so far", Form::Instruction), "{dialect}");
            assert_eq!((p.last_user.as_str(), p.user_texts.len()), ("one two", 1), "{dialect}");
            assert_eq!(p.turn, Turn::UserText, "{dialect}");
            assert!(!p.ends_with_assistant, "{dialect}");
        }
        for (dialect, p) in prompts(&[("user", "one two"), ("assistant", "so far"), ("user", "go on")]) {
            assert_eq!(p.continuation, None, "{dialect}");
            assert_eq!(p.last_user, "go on", "{dialect}");
        }
        for (dialect, p) in prompts(&[("user", "one two")]) {
            assert_eq!((p.continuation, p.ends_with_assistant), (None, false), "{dialect}");
        }
    }
}
