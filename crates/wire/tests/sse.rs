//! `sse::parse` and `sse::write_*` against the SSE framing rules of the WHATWG HTML standard
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>), within what the
//! module documents (`\n` and `\r\n` line ends; a trailing frame without its blank line is kept).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nines_wire::sse::{self, Frame};
use proptest::prelude::*;

fn frame(event: &str, data: &str) -> Frame {
    Frame { event: event.into(), data: data.into() }
}

#[test]
fn crlf_and_lf_frames_parse_alike() {
    let lf = "event: a\ndata: 1\n\ndata: 2\n\n";
    let crlf = "event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n";
    let want = vec![frame("a", "1"), frame("", "2")];
    assert_eq!(sse::parse(lf), want);
    assert_eq!(sse::parse(crlf), want);
}

#[test]
fn comments_and_unknown_fields_are_ignored() {
    let text = ": keep-alive\nid: 7\nretry: 100\nfoo: bar\ndata: x\n\n";
    assert_eq!(sse::parse(text), vec![frame("", "x")]);
}

#[test]
fn multi_line_data_is_joined_with_newlines() {
    assert_eq!(sse::parse("data: {\ndata:  \"a\": 1\ndata: }\n\n"), vec![frame("", "{\n \"a\": 1\n}")]);
}

#[test]
fn only_one_space_after_the_colon_is_stripped() {
    assert_eq!(sse::parse("data:x\n\ndata:  y\n\n"), vec![frame("", "x"), frame("", " y")]);
}

#[test]
fn a_field_without_colon_has_an_empty_value() {
    assert_eq!(sse::parse("data\n\n"), vec![frame("", "")]);
}

#[test]
fn the_event_name_does_not_leak_into_the_next_frame() {
    // A block with an event name but no data dispatches nothing, and its name is forgotten.
    let text = "event: ping\n\ndata: a\n\nevent: message_stop\ndata: b\n\ndata: c\n\n";
    assert_eq!(sse::parse(text), vec![frame("", "a"), frame("message_stop", "b"), frame("", "c")]);
}

#[test]
fn a_trailing_frame_without_blank_line_is_kept() {
    assert_eq!(sse::parse("data: a\n\ndata: b"), vec![frame("", "a"), frame("", "b")]);
}

#[test]
fn written_frames_are_single_line_and_parse_back() {
    let mut out = Vec::new();
    sse::write_event(&mut out, Some("message_stop"), r#"{"type":"message_stop"}"#);
    sse::write_json(&mut out, None, &serde_json::json!({"text": "two\nlines\r\n"}));
    sse::write_event(&mut out, None, "[DONE]");
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\ndata: {\"text\":\"two\\nlines\\r\\n\"}\n\ndata: [DONE]\n\n"
    );
    let frames = sse::parse(&text);
    assert_eq!(frames[0], frame("message_stop", r#"{"type":"message_stop"}"#));
    assert_eq!(frames[2], frame("", "[DONE]"));
}

proptest! {
    /// Any JSON payload written with write_json comes back from parse unchanged, whatever its text.
    #[test]
    fn write_json_then_parse_roundtrips(
        items in prop::collection::vec((prop::option::of("[a-z_]{1,20}"), any::<String>()), 0..8),
    ) {
        let mut out = Vec::new();
        for (event, text) in &items {
            sse::write_json(&mut out, event.as_deref(), &serde_json::json!({"text": text}));
        }
        let frames = sse::parse(std::str::from_utf8(&out).unwrap());
        prop_assert_eq!(frames.len(), items.len());
        for (f, (event, text)) in frames.iter().zip(&items) {
            prop_assert_eq!(&f.event, event.as_deref().unwrap_or(""));
            let v: serde_json::Value = serde_json::from_str(&f.data).unwrap();
            prop_assert_eq!(v["text"].as_str().unwrap(), text.as_str());
        }
    }
}
