//! Mid-stream resume (`nines_wire::resume`): the transcript of what a client was sent, the continuation request,
//! and the splice of a continuation into the client's stream (overlap trimming, usage, commit point).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::ALL;
use nines_wire::resume::{CONTINUE_INSTRUCTION, Form, Splicer, Transcript, Unresumable, continuation};
use nines_wire::stream::Encoder;
use nines_wire::{
    ChatRequest, Dialect, EncodeCtx, Message, Part, Role, Signature, StopReason, StreamEvent, Usage,
};
use proptest::prelude::*;

fn text(t: &str) -> StreamEvent {
    StreamEvent::TextDelta(t.into())
}

fn thinking(t: &str) -> StreamEvent {
    StreamEvent::ThinkingDelta(t.into())
}

fn signature(origin: Dialect, value: &str) -> StreamEvent {
    StreamEvent::ThinkingSignature(Signature { origin, value: value.into() })
}

fn usage(input: u64, output: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
}

fn start(input: u64, output: u64) -> StreamEvent {
    StreamEvent::Start { id: "msg_1".into(), model: "m1".into(), usage: usage(input, output) }
}

fn finish(u: Usage) -> StreamEvent {
    StreamEvent::Finish { stop_reason: StopReason::EndTurn, usage: u }
}

fn tool_start(index: u32) -> StreamEvent {
    StreamEvent::ToolCallStart { index, id: format!("call_{index}"), name: "get_weather".into() }
}

fn tool_args(index: u32, json: &str) -> StreamEvent {
    StreamEvent::ToolCallArgs { index, json: json.into() }
}

fn transcript(events: &[StreamEvent]) -> Transcript {
    let mut t = Transcript::new();
    for ev in events {
        t.push(ev);
    }
    t
}

/// A transcript of a `Start` and `delivered` as one delta.
fn delivered(d: &str) -> Transcript {
    transcript(&[start(10, 0), text(d)])
}

fn text_of(events: &[StreamEvent]) -> String {
    common::text_of(events)
}

/// Splice continuation text deltas (then a `Finish`) after `d`; the events for the client.
fn splice(d: &str, deltas: &[&str]) -> Vec<StreamEvent> {
    let mut s = Splicer::new(&delivered(d));
    let mut out = Vec::new();
    for delta in deltas {
        s.push(text(delta), &mut out);
    }
    s.push(finish(Usage::default()), &mut out);
    out
}

/// The text the client is sent when the continuation is `c`, delivered in one delta and one char per delta.
fn spliced(d: &str, c: &str) -> String {
    let whole = text_of(&splice(d, &[c]));
    let chars: Vec<String> = c.chars().map(String::from).collect();
    let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(text_of(&splice(d, &refs)), whole, "one char per delta splices as one delta: {c:?}");
    whole
}

const FOX: &str = "The quick brown fox";

// ---------------------------------------------------------------------------------------------------------------
// Overlap trimming.

#[test]
fn a_clean_continuation_passes() {
    assert_eq!(spliced(FOX, " jumps over the lazy dog."), " jumps over the lazy dog.");
    assert_eq!(text_of(&splice(FOX, &[" jumps over", " the lazy dog."])), " jumps over the lazy dog.");
}

#[test]
fn a_repeat_of_the_last_words_is_dropped() {
    assert_eq!(spliced(FOX, "brown fox jumps over"), " jumps over");
    assert_eq!(spliced(FOX, "quick brown fox jumps"), " jumps");
    assert_eq!(text_of(&splice(FOX, &["brown", " fox", " jumps", " over"])), " jumps over");
}

#[test]
fn a_restart_is_dropped() {
    assert_eq!(spliced(FOX, "The quick brown fox jumps over"), " jumps over");
    assert_eq!(text_of(&splice(FOX, &["The quick", " brown fox", " jumps"])), " jumps");
    // A delivered text shorter than MIN_OVERLAP is still recognised when repeated whole.
    assert_eq!(spliced("Hi", "Hi there"), " there");
}

#[test]
fn a_coincidental_short_overlap_is_kept() {
    assert_eq!(spliced(FOX, "x marks the spot"), "x marks the spot");
    assert_eq!(spliced(FOX, "ox and cart"), "ox and cart");
    assert_eq!(spliced(FOX, "fox and hound"), "fox and hound");
    // Seven bytes: one short of MIN_OVERLAP.
    assert_eq!(spliced(FOX, "own fox!"), "own fox!");
    assert_eq!(spliced(FOX, "rown fox!"), "!");
}

#[test]
fn text_held_back_is_released_once_it_cannot_be_a_repeat() {
    let mut s = Splicer::new(&delivered(FOX));
    let mut out = Vec::new();
    s.push(text("brown"), &mut out);
    s.push(text(" fox"), &mut out);
    assert!(out.is_empty() && !s.produced(), "a possible repeat is held: {out:?}");
    s.push(text(" jumps"), &mut out);
    assert_eq!(out, [text(" jumps")]);
    assert!(s.produced());
    s.push(text("brown fox"), &mut out);
    assert_eq!(
        out,
        [text(" jumps"), text("brown fox")],
        "after the overlap is settled, text passes untouched"
    );
}

#[test]
fn multibyte_text_is_never_split() {
    let d = "Le café est très bon, 日本語も 🎉🎉";
    assert_eq!(spliced(d, "très bon, 日本語も 🎉🎉 et la suite"), " et la suite");
    assert_eq!(spliced(d, d.to_owned().as_str()), "");
    assert_eq!(spliced(d, "日本語も 🎉🎉ok"), "ok");
    assert_eq!(spliced(d, "🎉🎉 encore"), " encore", "MIN_OVERLAP counts bytes: two emoji are 8");
    assert_eq!(spliced(d, "🎉 encore"), "🎉 encore");
    assert_eq!(spliced(d, "も 🎉🎉 encore"), " encore");
    assert_eq!(spliced(d, "é ensuite"), "é ensuite");
}

#[test]
fn only_the_last_2_kib_are_compared_on_a_char_boundary() {
    // 3-byte chars: the last 2048 bytes start mid-char, so the tail starts at the next char.
    let d = "日".repeat(1000) + "本 end of it!!";
    assert_ne!((d.len() - 2048) % 3, 0);
    assert_eq!(spliced(&d, "日日日本 end of it!!, more"), ", more");
    assert_eq!(
        spliced(&d, &format!("{d} more")),
        format!("{d} more"),
        "a restart longer than the tail is not seen"
    );
}

#[test]
fn nothing_is_held_when_nothing_was_delivered() {
    let mut s = Splicer::new(&transcript(&[start(1, 0)]));
    let mut out = Vec::new();
    s.push(text("The"), &mut out);
    assert_eq!(out, [text("The")]);
    assert!(s.produced());
    // Thinking alone delivered: no text to overlap either.
    let mut s = Splicer::new(&transcript(&[start(1, 0), thinking("hmm")]));
    let mut out = Vec::new();
    s.push(text("A"), &mut out);
    assert_eq!(out, [text("A")]);
}

#[test]
fn whitespace_the_delivered_text_ends_with_is_not_sent_twice() {
    assert_eq!(spliced("The quick brown fox ", " jumps"), "jumps");
    assert_eq!(spliced("The quick brown fox ", "jumps"), "jumps");
    assert_eq!(spliced("The quick brown fox", " jumps"), " jumps");
    assert_eq!(spliced("Some text.\n", "\n\nNext paragraph"), "\nNext paragraph");
    assert_eq!(spliced("Code:\n```\n", "    indented()"), "    indented()", "a different whitespace is kept");
    assert_eq!(spliced("The quick brown fox ", "brown fox  jumps"), "jumps", "after a trimmed repeat too");
}

#[test]
fn finish_releases_held_text() {
    let out = splice(FOX, &["brown"]);
    assert_eq!(out, [text("brown"), finish(usage(10, 5))]);
    // Text held that was all a repeat: nothing but the Finish.
    let out = splice(FOX, &["quick brown fox"]);
    assert_eq!(out, [finish(usage(10, 5))]);
}

#[test]
fn a_tool_call_releases_held_text() {
    let mut s = Splicer::new(&delivered(FOX));
    let mut out = Vec::new();
    s.push(text("brown"), &mut out);
    s.push(tool_start(0), &mut out);
    s.push(tool_args(0, "{}"), &mut out);
    s.push(text("brown"), &mut out);
    assert_eq!(out, [text("brown"), tool_start(0), tool_args(0, "{}"), text("brown")]);
    let mut s = Splicer::new(&delivered(FOX));
    let mut out = Vec::new();
    s.push(text("brown fox"), &mut out);
    s.push(StreamEvent::Unsupported("image".into()), &mut out);
    assert_eq!(out, [StreamEvent::Unsupported("image".into())]);
}

#[test]
fn finish_without_a_finish_event_releases_held_text() {
    let mut s = Splicer::new(&delivered(FOX));
    let mut out = Vec::new();
    s.push(text("The qu"), &mut out);
    assert!(out.is_empty());
    s.finish(&mut out);
    assert_eq!(out, [text("The qu")]);
    s.finish(&mut out);
    assert_eq!(out.len(), 1, "finish twice adds nothing");
}

#[test]
fn a_continuation_that_only_repeats_has_produced_nothing() {
    let mut s = Splicer::new(&delivered(FOX));
    let mut out = Vec::new();
    for ev in [start(50, 0), thinking("I should"), signature(Dialect::Anthropic, "sig"), text("The quick ")] {
        s.push(ev, &mut out);
    }
    assert!(out.is_empty() && !s.produced());
}

#[test]
fn start_and_thinking_are_dropped() {
    let mut s = Splicer::new(&delivered(FOX));
    let mut out = Vec::new();
    s.push(start(50, 1), &mut out);
    s.push(thinking("Let me continue"), &mut out);
    s.push(signature(Dialect::Anthropic, "sig"), &mut out);
    assert!(out.is_empty() && !s.produced());
    s.push(text(" jumps"), &mut out);
    s.push(thinking("more"), &mut out);
    assert_eq!(out, [text(" jumps")]);
}

#[test]
fn usage_is_the_sum_of_both_parts() {
    // Delivered: Anthropic-like start (input 100, output 1), then 40 bytes: output estimated as 10.
    let t = transcript(&[start(100, 1), text(&"a".repeat(40))]);
    assert_eq!(t.usage(), usage(100, 10));
    let cont = Usage {
        input_tokens: 130,
        output_tokens: 25,
        cache_read_tokens: 90,
        cache_write_tokens: 3,
        reasoning_tokens: 4,
    };
    let mut s = Splicer::new(&t);
    let mut out = Vec::new();
    s.push(start(130, 0), &mut out);
    s.push(text("b"), &mut out);
    s.push(StreamEvent::Finish { stop_reason: StopReason::MaxTokens, usage: cont }, &mut out);
    let expected = Usage { input_tokens: 230, output_tokens: 35, ..cont };
    assert_eq!(out, [text("b"), StreamEvent::Finish { stop_reason: StopReason::MaxTokens, usage: expected }]);

    // A Finish without usage: the continuation's Start usage counts.
    let mut s = Splicer::new(&t);
    let mut out = Vec::new();
    s.push(start(130, 2), &mut out);
    s.push(finish(Usage::default()), &mut out);
    assert_eq!(out, [finish(usage(230, 12))]);

    // Saturating.
    let mut s = Splicer::new(&transcript(&[start(u64::MAX, u64::MAX)]));
    let mut out = Vec::new();
    s.push(finish(usage(5, 5)), &mut out);
    assert_eq!(out, [finish(usage(u64::MAX, u64::MAX))]);
}

// ---------------------------------------------------------------------------------------------------------------
// Transcript.

#[test]
fn deltas_of_one_kind_are_merged() {
    let sig = signature(Dialect::Anthropic, "s1");
    let t =
        transcript(&[start(3, 0), thinking("Let me think."), sig.clone(), text("Hello"), text(", world")]);
    assert_eq!(t.text(), "Hello, world");
    assert!(t.has_thinking() && !t.finished());
    assert_eq!(t.check(), Ok(()));
    // One delta per block: the replay is the stream as it was.
    let t = transcript(&[start(3, 0), thinking("Let me think."), sig.clone(), text("Hello, world")]);
    assert_eq!(t.replay(), [start(3, 0), thinking("Let me think."), sig, text("Hello, world")]);
}

#[test]
fn a_block_is_replayed_as_as_many_deltas_as_it_came_in() {
    let t = transcript(&[text("Hel"), text(""), text("lo 日本"), thinking("a"), thinking("bc")]);
    assert_eq!(t.replay(), [text("H"), text("ello 日本"), thinking("a"), thinking("bc")]);
    assert_eq!(t.text(), "Hello 日本");
    // Empty deltas alone still open their block.
    let t = transcript(&[text(""), thinking("")]);
    assert_eq!(t.replay(), [text(""), thinking("")]);
}

#[test]
fn thinking_after_a_signature_is_a_new_block() {
    let (s1, s2) = (signature(Dialect::Anthropic, "s1"), signature(Dialect::Anthropic, "s2"));
    let t = transcript(&[thinking("a"), s1.clone(), thinking("b"), s2.clone(), s2.clone()]);
    assert_eq!(t.replay(), [thinking("a"), s1, thinking("b"), s2.clone(), s2]);
    assert!(t.has_thinking());
    assert_eq!(t.text(), "");
}

#[test]
fn check_refuses_what_cannot_be_continued() {
    assert_eq!(Transcript::new().check(), Ok(()));
    assert_eq!(transcript(&[start(1, 0), text("a"), tool_start(0)]).check(), Err(Unresumable::ToolCall));
    assert_eq!(transcript(&[tool_args(0, "{")]).check(), Err(Unresumable::ToolCall));
    assert_eq!(
        transcript(&[text("a"), StreamEvent::Unsupported("image".into())]).check(),
        Err(Unresumable::Unsupported)
    );
    let done = transcript(&[start(1, 0), text("a"), finish(usage(1, 1))]);
    assert!(done.finished());
    assert_eq!(done.check(), Err(Unresumable::Finished));
    assert_eq!(Unresumable::ToolCall.to_string(), "a tool call had already been sent to the client");
}

#[test]
fn usage_estimates_output_unless_reported() {
    assert_eq!(Transcript::new().usage(), Usage::default());
    let t = transcript(&[start(7, 0), thinking("abcde"), text("fgh")]);
    assert_eq!(t.usage(), usage(7, 2), "ceil(8 / 4)");
    let t = transcript(&[start(7, 0), text("abcdefghi")]);
    assert_eq!(t.usage(), usage(7, 3), "ceil(9 / 4)");
    let t = transcript(&[start(7, 50), text("abcd")]);
    assert_eq!(t.usage(), usage(7, 50), "a report above the estimate is kept");
    let t = transcript(&[start(7, 0), text("abcd"), finish(usage(9, 40))]);
    assert_eq!(t.usage(), usage(9, 40), "a Finish's usage is the latest report");
    let t = transcript(&[start(7, 0), text(&"a".repeat(40)), finish(usage(7, 4))]);
    assert_eq!(t.usage(), usage(7, 4), "a Finish's count is final, even below the estimate");
    let t = transcript(&[start(7, 0), text(&"a".repeat(40)), finish(usage(0, 0))]);
    assert_eq!(t.usage(), usage(0, 10), "a Finish that reports nothing: the estimate");
}

/// The bytes `further` encodes to for a `d` client after `before` (whose bytes are dropped).
fn bytes_after(d: Dialect, ctx: &EncodeCtx, before: &[StreamEvent], further: &[StreamEvent]) -> String {
    let mut enc = Encoder::new(d, ctx.clone(), true);
    let mut sink = Vec::new();
    for ev in before {
        enc.push(ev, &mut sink);
    }
    let mut out = Vec::new();
    for ev in further {
        enc.push(ev, &mut out);
    }
    String::from_utf8(out).unwrap()
}

/// For every client dialect, with and without reasoning shown: a fresh encoder fed `replay()` encodes what follows
/// exactly as the encoder that was fed the original events.
fn assert_replay_restores(original: &[StreamEvent], further: &[StreamEvent]) {
    let replay = transcript(original).replay();
    for d in ALL {
        for upstream in [None, Some(d)] {
            let ctx = EncodeCtx { model: "client-model".into(), upstream, ..EncodeCtx::default() };
            let want = bytes_after(d, &ctx, original, further);
            assert!(!want.is_empty());
            assert_eq!(bytes_after(d, &ctx, &replay, further), want, "{d}, upstream {upstream:?}");
        }
    }
}

#[test]
fn replay_restores_the_encoder_of_every_dialect() {
    let further = [text(" and more"), finish(usage(12, 34))];
    for d in ALL {
        let original = [
            start(12, 1),
            thinking("Let me"),
            thinking(" think."),
            signature(d, "sig-1"),
            text("The "),
            text(""),
            text("quick "),
            text("brown 日本 🎉"),
        ];
        assert_replay_restores(&original, &further);
        let two_thoughts = [
            start(12, 0),
            thinking("a"),
            signature(d, "s1"),
            thinking("b"),
            thinking("c"),
            text("x"),
            text("y"),
        ];
        assert_replay_restores(&two_thoughts, &further);
    }
    assert_replay_restores(&[text("no "), text("start")], &further);
    assert_replay_restores(&[start(1, 0), thinking("only"), thinking(" thinking")], &further);
    assert_replay_restores(&[start(1, 0), StreamEvent::Unsupported("audio".into()), text("t")], &further);
}

#[test]
fn replay_restores_tool_calls_too() {
    let original = [
        start(5, 0),
        text("Calling"),
        tool_start(0),
        tool_args(0, "{\"city\""),
        tool_args(0, ":\"Paris\"}"),
        tool_start(1),
        tool_args(1, "{\"a\":"),
        tool_args(0, ""),
    ];
    let further =
        [tool_args(1, "1}"), StreamEvent::Finish { stop_reason: StopReason::ToolUse, usage: usage(5, 9) }];
    assert_replay_restores(&original, &further);
}

// ---------------------------------------------------------------------------------------------------------------
// The continuation request.

fn request() -> ChatRequest {
    ChatRequest {
        model: "route".into(),
        system: vec!["Be brief.".into()],
        messages: vec![Message::text(Role::User, "Tell me about foxes.")],
        max_tokens: Some(300),
        stream: false,
        ..ChatRequest::default()
    }
}

#[test]
fn the_prefill_form_appends_the_trimmed_text() {
    let t = transcript(&[start(1, 0), thinking("hmm"), text("Foxes are "), text("quick.  \n")]);
    let next = continuation(&request(), &t, Form::Prefill);
    let mut want = request();
    want.stream = true;
    want.messages.push(Message::text(Role::Assistant, "Foxes are quick."));
    assert_eq!(next, want);
}

#[test]
fn the_instruction_form_appends_the_text_as_delivered_and_the_instruction() {
    let t = transcript(&[start(1, 0), text("Foxes are quick. ")]);
    let next = continuation(&request(), &t, Form::Instruction);
    let mut want = request();
    want.stream = true;
    want.messages.push(Message::text(Role::Assistant, "Foxes are quick. "));
    want.messages.push(Message::text(Role::User, CONTINUE_INSTRUCTION));
    assert_eq!(next, want);
    assert!(CONTINUE_INSTRUCTION.starts_with("Your previous reply was cut off. "));
}

#[test]
fn without_delivered_text_only_stream_changes() {
    let mut want = request();
    want.stream = true;
    for t in [
        transcript(&[start(1, 0), thinking("Let me think"), signature(Dialect::Anthropic, "s")]),
        transcript(&[start(1, 0)]),
        transcript(&[start(1, 0), text(" \n ")]),
    ] {
        for form in [Form::Prefill, Form::Instruction] {
            assert_eq!(continuation(&request(), &t, form), want, "{form:?} {t:?}");
        }
    }
}

#[test]
fn a_client_prefill_is_continued_not_repeated() {
    let mut req = request();
    req.messages.push(Message::text(Role::Assistant, "Foxes are"));
    let t = transcript(&[start(1, 0), text(" quick ")]);
    let next = continuation(&req, &t, Form::Prefill);
    assert_eq!(next.messages.len(), 2);
    assert_eq!(next.messages[1], Message::text(Role::Assistant, "Foxes are quick"));
    let next = continuation(&req, &t, Form::Instruction);
    assert_eq!(next.messages[1], Message::text(Role::Assistant, "Foxes are quick "));
    assert_eq!(next.messages[2], Message::text(Role::User, CONTINUE_INSTRUCTION));
    // An assistant message ending in another part gets a text part.
    let mut req = request();
    let call = nines_wire::ToolCall { id: "c".into(), name: "n".into(), arguments: "{}".into() };
    req.messages.push(Message { role: Role::Assistant, content: vec![Part::ToolCall(call.clone())] });
    let next = continuation(&req, &t, Form::Prefill);
    assert_eq!(next.messages[1].content, [Part::ToolCall(call), Part::Text(" quick".into())]);
}

// ---------------------------------------------------------------------------------------------------------------
// Properties.

/// A string of `text` cut into deltas of 1..=4 chars, by `cuts`.
fn cut<'a>(text: &'a str, cuts: &[usize]) -> Vec<&'a str> {
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
    let mut out = Vec::new();
    let (mut at, mut k) = (0, 0);
    while at + 1 < bounds.len() {
        let step = cuts.get(k % cuts.len().max(1)).copied().unwrap_or(1);
        let next = (at + step).min(bounds.len() - 1);
        out.push(&text[bounds[at]..bounds[next]]);
        at = next;
        k += 1;
    }
    out
}

fn event(kind: u8, s: String) -> StreamEvent {
    match kind % 8 {
        0 => StreamEvent::Start { id: s, model: "m".into(), usage: usage(3, 4) },
        1 => StreamEvent::ThinkingDelta(s),
        2 => StreamEvent::ThinkingSignature(Signature { origin: Dialect::Gemini, value: s }),
        3 => StreamEvent::ToolCallStart { index: 0, id: s, name: "f".into() },
        4 => StreamEvent::ToolCallArgs { index: 1, json: s },
        5 => StreamEvent::Unsupported(s),
        6 => StreamEvent::Finish { stop_reason: StopReason::EndTurn, usage: usage(1, 2) },
        _ => StreamEvent::TextDelta(s),
    }
}

proptest! {
    /// Any delivered text, any continuation events: no panic, and the text sent is the continuation's text with
    /// at most a prefix dropped.
    #[test]
    fn splicing_never_panics(
        d in "\\PC{0,700}",
        evs in prop::collection::vec((0u8..12, "\\PC{0,12}"), 0..40),
        end in any::<bool>(),
    ) {
        let mut t = Transcript::new();
        t.push(&text(&d));
        for (kind, s) in &evs {
            t.push(&event(*kind, s.clone()));
        }
        let _ = (t.replay(), t.usage(), t.check(), continuation(&request(), &t, Form::Prefill));
        let mut s = Splicer::new(&delivered(&d));
        let mut out = Vec::new();
        let mut sent = String::new();
        for (kind, x) in evs {
            let ev = event(kind, x);
            if let StreamEvent::TextDelta(x) = &ev {
                sent.push_str(x);
            }
            s.push(ev, &mut out);
        }
        if end {
            s.finish(&mut out);
            let got = text_of(&out);
            prop_assert!(sent.ends_with(&got), "{got:?} is not a suffix of {sent:?}");
        }
    }

    /// A continuation that repeats any part of the delivered text's end (>= 8 bytes, or all of it) and then goes
    /// on with something new, cut into any deltas, reaches the client as the new part alone.
    #[test]
    fn a_repeat_is_never_sent_twice(
        d in "[ab é日🎉\n]{0,400}",
        at in any::<prop::sample::Index>(),
        new in "#[ab é日🎉\n#]{0,30}",
        cuts in prop::collection::vec(1usize..5, 1..8),
    ) {
        let starts: Vec<usize> = d
            .char_indices()
            .map(|(i, _)| i)
            .chain([d.len()])
            .filter(|&j| j == 0 || j == d.len() || d.len() - j >= 8)
            .collect();
        let j = starts[at.index(starts.len())];
        let c = format!("{}{new}", &d[j..]);
        let out = splice(&d, &cut(&c, &cuts));
        prop_assert_eq!(text_of(&out), new);
    }
}

#[test]
fn a_transcript_keeps_at_most_max_kept_bytes_and_then_cannot_be_continued() {
    use nines_wire::resume::MAX_KEPT;
    let mut t = Transcript::new();
    let chunk = "x".repeat(64 * 1024);
    for _ in 0..(MAX_KEPT / chunk.len()) {
        t.push(&StreamEvent::TextDelta(chunk.clone()));
    }
    assert_eq!(t.text().len(), MAX_KEPT);
    assert_eq!(t.check(), Ok(()));
    for _ in 0..100 {
        t.push(&StreamEvent::TextDelta(chunk.clone()));
    }
    assert_eq!(t.text().len(), MAX_KEPT, "nothing more is kept");
    assert_eq!(t.check(), Err(Unresumable::TooLong));
}

#[test]
fn verbatim_ids_are_used_as_the_upstream_gave_them() {
    let start = StreamEvent::Start { id: "930c-uuid".into(), model: "m".into(), usage: Usage::default() };
    for (dialect, prefixed) in [
        (Dialect::OpenAiChat, "chatcmpl-930c-uuid"),
        (Dialect::Anthropic, "msg_930c-uuid"),
        (Dialect::OpenAiResponses, "resp_930c-uuid"),
    ] {
        for verbatim in [false, true] {
            let ctx = EncodeCtx { verbatim_ids: verbatim, ..EncodeCtx::default() };
            let mut enc = Encoder::new(dialect, ctx, true);
            let mut out = Vec::new();
            enc.push(&start, &mut out);
            enc.push(&StreamEvent::TextDelta("hi".into()), &mut out);
            let text = String::from_utf8(out).unwrap();
            let want = if verbatim { "\"930c-uuid\"" } else { prefixed };
            assert!(text.contains(want), "{dialect:?} verbatim={verbatim}: {text}");
            if verbatim {
                assert!(!text.contains(prefixed), "{dialect:?}: {text}");
            }
        }
    }
}

#[test]
fn unreported_input_tokens_are_the_estimate_given() {
    let mut t = Transcript::new();
    t.push(&StreamEvent::Start { id: "c".into(), model: "m".into(), usage: Usage::default() });
    t.push(&StreamEvent::TextDelta("12345678".into()));
    t.estimate_input(42);
    assert_eq!((t.usage().input_tokens, t.usage().output_tokens), (42, 2));
    let mut reported = Transcript::new();
    let usage = Usage { input_tokens: 7, output_tokens: 1, ..Usage::default() };
    reported.push(&StreamEvent::Start { id: "m".into(), model: "m".into(), usage });
    reported.estimate_input(42);
    assert_eq!(reported.usage().input_tokens, 7, "a report wins over the estimate");
}
