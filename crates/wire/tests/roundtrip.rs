//! Property round trips through each dialect: canonical → wire → canonical.
//!
//! Each property names exactly what a dialect cannot carry (and so must come back normalised):
//! - requests: Gemini has no model in the body (it is in the URL) and no stream flag (streamGenerateContent);
//!   Anthropic always gets `max_tokens` (DEFAULT_MAX_TOKENS when absent); OpenAI Chat has no `top_k` and writes a
//!   message's text parts as one string; OpenAI Responses has neither `top_k` nor stop sequences, writes an
//!   assistant message's run of text as one string, and reads consecutive items of one role as one message; `include_usage` is the OpenAI Chat client's own flag (the others
//!   always report usage); every dialect carries one system prompt, so several system blocks arrive joined by a
//!   blank line.
//! - responses: ids gain the dialect's prefix (`msg_`, `chatcmpl-`, `resp_`), the model is the name the client
//!   asked for, OpenAI Chat and Responses write one text (Responses none when it is empty), finish reasons a dialect
//!   lacks become its plain stop (Responses: `completed`, unless `incomplete` for the output limit or the content
//!   filter), and only Anthropic and Responses report cache writes.
//! - streams: the concatenated text, the stop reason (as above) and the usage come back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ALL, ctx, decode_sse, encode_events};
use nines_wire::anthropic::DEFAULT_MAX_TOKENS;
use nines_wire::{
    ChatRequest, ChatResponse, Dialect, EncodeOpts, Message, Part, Role, StopReason, StreamEvent, Usage,
};
use proptest::prelude::*;

/// Arbitrary Unicode text, control characters and newlines included.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter),
        "(?s).{0,12}",
        Just(String::new()),
    ]
}

/// Values on a 1/1000 grid: every one is written and read back exactly by serde_json.
fn unit() -> impl Strategy<Value = f64> {
    (0..=1000u32).prop_map(|x| f64::from(x) / 1000.0)
}

fn message() -> impl Strategy<Value = Message> {
    (prop_oneof![Just(Role::User), Just(Role::Assistant)], prop::collection::vec(text(), 1..=2))
        .prop_map(|(role, parts)| Message { role, content: parts.into_iter().map(Part::Text).collect() })
}

prop_compose! {
    fn request()(
        model in "[a-z0-9][a-z0-9./:-]{0,30}",
        system in prop::collection::vec(text(), 0..3),
        messages in prop::collection::vec(message(), 0..6),
        max_tokens in prop::option::of(1..200_000u32),
        temperature in prop::option::of(unit()),
        top_p in prop::option::of(unit()),
        top_k in prop::option::of(1..1000u32),
        stop in prop::collection::vec(text(), 0..4),
        stream in any::<bool>(),
        include_usage in any::<bool>(),
    ) -> ChatRequest {
        ChatRequest {
            model,
            system,
            messages,
            max_tokens,
            temperature,
            top_p,
            top_k,
            stop,
            stream,
            include_usage,
            ..Default::default()
        }
    }
}

/// What `req` must come back as after a trip through `d`.
fn expected_request(d: Dialect, req: &ChatRequest) -> ChatRequest {
    let mut want = req.clone();
    want.system = req.system_text().into_iter().collect();
    if d == Dialect::OpenAiResponses {
        // Consecutive items of one role are one message, and an assistant's run of text is one string.
        let mut merged: Vec<Message> = Vec::new();
        for m in &want.messages {
            match merged.last_mut() {
                Some(last) if last.role == m.role => last.content.extend(m.content.iter().cloned()),
                _ => merged.push(m.clone()),
            }
        }
        for m in merged.iter_mut().filter(|m| m.role == Role::Assistant) {
            let joined: String =
                m.content.iter().map(|p| if let Part::Text(t) = p { t.as_str() } else { "" }).collect();
            m.content = vec![Part::Text(joined)];
        }
        want.messages = merged;
    }
    if matches!(d, Dialect::Anthropic | Dialect::Gemini) {
        // Both refuse empty text: it is left out, a turn left empty is dropped, and consecutive turns of one role
        // are merged (as both APIs read them).
        let mut merged: Vec<Message> = Vec::new();
        for m in &want.messages {
            let content: Vec<Part> =
                m.content.iter().filter(|p| !matches!(p, Part::Text(t) if t.is_empty())).cloned().collect();
            if content.is_empty() {
                continue;
            }
            match merged.last_mut() {
                Some(last) if last.role == m.role => last.content.extend(content),
                _ => merged.push(Message { role: m.role, content }),
            }
        }
        want.messages = merged;
    }
    match d {
        Dialect::Anthropic => {
            want.max_tokens = Some(req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS));
            want.include_usage = true;
            // Current Claude models take temperature or top_p, not both.
            if want.temperature.is_some() {
                want.top_p = None;
            }
        }
        Dialect::OpenAiChat => {
            want.top_k = None;
            want.include_usage = req.stream;
            for m in &mut want.messages {
                let joined: String =
                    m.content.iter().map(|p| if let Part::Text(t) = p { t.as_str() } else { "" }).collect();
                m.content = vec![Part::Text(joined)];
            }
        }
        Dialect::Gemini => {
            want.model = String::new();
            want.stream = false;
            want.include_usage = true;
        }
        Dialect::OpenAiResponses => {
            want.top_k = None;
            want.stop = Vec::new();
            want.include_usage = true;
        }
    }
    want
}

fn stop_reason() -> impl Strategy<Value = StopReason> {
    prop_oneof![
        Just(StopReason::EndTurn),
        Just(StopReason::MaxTokens),
        prop::option::of(text()).prop_map(StopReason::StopSequence),
        Just(StopReason::ToolUse),
        Just(StopReason::ContentFilter),
        Just(StopReason::Paused),
    ]
}

/// What a stop reason becomes in a dialect that has no word for it.
fn expected_stop(d: Dialect, r: &StopReason) -> StopReason {
    match (d, r) {
        (Dialect::Anthropic, r) => r.clone(),
        (Dialect::OpenAiChat, StopReason::StopSequence(_) | StopReason::Paused) => StopReason::EndTurn,
        (
            Dialect::Gemini | Dialect::OpenAiResponses,
            StopReason::StopSequence(_) | StopReason::Paused | StopReason::ToolUse,
        ) => StopReason::EndTurn,
        (_, r) => r.clone(),
    }
}

prop_compose! {
    /// Consistent usage: input counts every prompt token, cached ones included.
    fn usage()(uncached in 0..1_000_000u64, read in 0..1_000_000u64, write in 0..1_000_000u64,
               output in 0..1_000_000u64) -> Usage {
        Usage { input_tokens: uncached + read + write, output_tokens: output, cache_read_tokens: read, cache_write_tokens: write, reasoning_tokens: 0 }
    }
}

prop_compose! {
    fn response()(
        id in "[A-Za-z0-9_-]{0,30}",
        model in "[a-z0-9.-]{0,20}",
        content in prop::collection::vec(text().prop_map(Part::Text), 0..4),
        stop_reason in stop_reason(),
        usage in usage(),
    ) -> ChatResponse {
        ChatResponse { id, model, content, stop_reason, usage }
    }
}

fn expected_response(d: Dialect, r: &ChatResponse) -> ChatResponse {
    let mut want = r.clone();
    want.model = ctx().model;
    want.stop_reason = expected_stop(d, &r.stop_reason);
    match d {
        Dialect::Anthropic => {
            if !r.id.starts_with("msg_") {
                want.id = format!("msg_{}", r.id);
            }
        }
        Dialect::OpenAiChat => {
            if !r.id.starts_with("chatcmpl-") {
                want.id = format!("chatcmpl-{}", r.id);
            }
            want.content = vec![Part::Text(r.text())];
            want.usage.cache_write_tokens = 0;
        }
        Dialect::Gemini => want.usage.cache_write_tokens = 0,
        Dialect::OpenAiResponses => {
            if !r.id.starts_with("resp_") {
                want.id = format!("resp_{}", r.id);
            }
            let text = r.text();
            want.content = if text.is_empty() { Vec::new() } else { vec![Part::Text(text)] };
        }
    }
    want
}

proptest! {
    #[test]
    fn requests_survive_every_dialect(req in request()) {
        for d in ALL {
            let body = d.encode_request(&req, &req.model, &EncodeOpts::default()).unwrap().body;
            let back = d.decode_request(&body).unwrap();
            prop_assert_eq!(back, expected_request(d, &req), "through {}: {}", d, String::from_utf8_lossy(&body));
        }
    }

    /// Translating twice changes nothing more than translating once.
    #[test]
    fn request_translation_is_idempotent(req in request(), via in 0..ALL.len(), to in 0..ALL.len()) {
        let opts = EncodeOpts::default();
        let once = ALL[via].decode_request(&ALL[via].encode_request(&req, "m", &opts).unwrap().body).unwrap();
        let a = ALL[to].decode_request(&ALL[to].encode_request(&once, "m", &opts).unwrap().body).unwrap();
        let b = ALL[to].decode_request(&ALL[to].encode_request(&a, "m", &opts).unwrap().body).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn responses_survive_every_dialect(r in response()) {
        for d in ALL {
            let body = d.encode_response(&r, &ctx());
            let back = d.decode_response(&body).unwrap();
            prop_assert_eq!(back, expected_response(d, &r), "through {}: {}", d, String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn streams_survive_every_dialect(
        id in "[A-Za-z0-9_-]{1,30}",
        deltas in prop::collection::vec(text(), 0..8),
        stop in stop_reason(),
        input in 0..1_000_000u64,
        output in 0..1_000_000u64,
        include_usage in any::<bool>(),
    ) {
        let usage = Usage { input_tokens: input, output_tokens: output, ..Usage::default() };
        let mut events = vec![StreamEvent::Start { id: id.clone(), model: "upstream".into(), usage: Usage::default() }];
        events.extend(deltas.iter().cloned().map(StreamEvent::TextDelta));
        events.push(StreamEvent::Finish { stop_reason: stop.clone(), usage });

        for d in ALL {
            let wire = encode_events(d, &events, include_usage);
            let back = decode_sse(d, &wire);
            prop_assert!(back.end.is_ok(), "{}: {:?}\n{}", d, back.end, wire);
            prop_assert_eq!(back.text(), deltas.concat(), "{}", d);

            let starts = back.events.iter().filter(|e| matches!(e, StreamEvent::Start { .. })).count();
            let finishes = back.events.iter().filter(|e| matches!(e, StreamEvent::Finish { .. })).count();
            prop_assert_eq!((starts, finishes), (1, 1), "{}: {:?}", d, back.events);
            let StreamEvent::Start { id: got_id, model, .. } = &back.events[0] else {
                panic!("{d}: the stream must open with Start: {:?}", back.events);
            };
            prop_assert_eq!(model, "client-model");
            prop_assert!(got_id.ends_with(id.as_str()), "{}: {} lost {}", d, got_id, id);

            let (got_stop, got_usage) = back.finish();
            prop_assert_eq!(got_stop, &expected_stop(d, &stop), "{}", d);
            let want_usage = if d == Dialect::OpenAiChat && !include_usage { Usage::default() } else { usage };
            prop_assert_eq!(got_usage, &want_usage, "{}", d);
        }
    }
}
