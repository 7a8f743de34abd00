//! The client's body for a committed stream: the delivery's chunks (`dispatch::deliver`, which owns the flight
//! and what the client has been sent), framed as the door wants (SSE, or Gemini's JSON array), with the Responses
//! store told the final answer before its terminal event is sent.

use std::convert::Infallible;

use bytes::Bytes;

use crate::dispatch::deliver::Delivery;

/// Called with the final Response object of a Responses-API stream (its `response.completed` or
/// `response.incomplete` event), before that event is sent: how the response store keeps what the client got.
pub type OnResponse = Box<dyn FnOnce(Bytes) -> futures_util::future::BoxFuture<'static, ()> + Send>;

/// The Response object of a Responses-API terminal event in `chunk`, if it has one.
fn terminal_response(chunk: &[u8]) -> Option<Bytes> {
    const MARKERS: [&[u8]; 2] = [b"response.completed", b"response.incomplete"];
    if !MARKERS.iter().any(|m| chunk.windows(m.len()).any(|w| w == *m)) {
        return None;
    }
    let text = std::str::from_utf8(chunk).ok()?;
    nines_wire::sse::parse(text).into_iter().find_map(|f| {
        let mut v: serde_json::Value = serde_json::from_str(&f.data).ok()?;
        let kind = v.get("type").and_then(serde_json::Value::as_str)?;
        if kind != "response.completed" && kind != "response.incomplete" {
            return None;
        }
        serde_json::to_vec(&v.get_mut("response")?.take()).ok().map(Bytes::from)
    })
}

#[cfg(test)]
mod tests {
    use super::ArrayFramer;

    fn framed(chunks: &[&str]) -> String {
        let mut f = ArrayFramer::default();
        let mut out = Vec::new();
        for c in chunks {
            f.convert(c.as_bytes(), &mut out);
        }
        f.close(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn sse_events_become_one_json_array() {
        assert_eq!(
            framed(&["data: {\"a\":1}\r\n\r\ndata: {\"b\":2}\r\n\r\n", "data: {\"c\":3}\n\n"]),
            "[{\"a\":1},\r\n{\"b\":2},\r\n{\"c\":3}]"
        );
        assert_eq!(framed(&["data: {\"a\":\n", "data: 1}\n\n"]), "[{\"a\":\n1}]");
        assert_eq!(framed(&[]), "[]");
        let whole = framed(&["data: {\"a\":1}\n\n", "data: {\"b\":[2]}\n\n"]);
        assert!(serde_json::from_str::<serde_json::Value>(&whole).is_ok(), "{whole}");
    }
}

/// How the stream's events are framed for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events (every door, and Gemini's `?alt=sse`).
    Sse,
    /// One JSON array whose elements arrive one by one: Gemini's `streamGenerateContent` without `alt=sse`.
    JsonArray,
}

/// Re-frames SSE events as the elements of one JSON array: `[` first, `,\r\n` between elements, `]` at the end.
#[derive(Default)]
struct ArrayFramer {
    opened: bool,
    /// The `data:` of an event whose blank line has not come yet.
    pending: Vec<u8>,
}

impl ArrayFramer {
    fn convert(&mut self, sse: &[u8], out: &mut Vec<u8>) {
        for line in sse.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                self.flush(out);
            } else if let Some(data) = line.strip_prefix(b"data:") {
                if !self.pending.is_empty() {
                    self.pending.push(b'\n');
                }
                self.pending.extend_from_slice(data.strip_prefix(b" ").unwrap_or(data));
            }
        }
    }

    fn flush(&mut self, out: &mut Vec<u8>) {
        if self.pending.is_empty() {
            return;
        }
        out.extend_from_slice(if self.opened { b",\r\n" } else { b"[" });
        self.opened = true;
        out.append(&mut self.pending);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        self.flush(out);
        if !self.opened {
            out.push(b'[');
        }
        out.push(b']');
    }
}

/// The client's body for a committed stream, delivered by `delivery` and framed by `framing`.
pub fn body(delivery: Delivery, framing: Framing, on_response: Option<OnResponse>) -> axum::body::Body {
    let live = (delivery, on_response);
    if framing == Framing::Sse {
        let s = futures_util::stream::unfold(live, |(mut live, mut on_response)| async move {
            let chunk = live.next_chunk().await?;
            if on_response.is_some()
                && let Some(response) = terminal_response(&chunk)
                && let Some(keep) = on_response.take()
            {
                keep(response).await;
            }
            Some((Ok::<_, Infallible>(chunk), (live, on_response)))
        });
        return axum::body::Body::from_stream(s);
    }
    let s = futures_util::stream::unfold(Some((live.0, ArrayFramer::default())), |state| async move {
        let (mut live, mut framer) = state?;
        let mut out = Vec::new();
        loop {
            match live.next_chunk().await {
                Some(chunk) => {
                    framer.convert(&chunk, &mut out);
                    if !out.is_empty() {
                        return Some((Ok::<_, Infallible>(Bytes::from(out)), Some((live, framer))));
                    }
                }
                None => {
                    framer.close(&mut out);
                    return Some((Ok(Bytes::from(out)), None));
                }
            }
        }
    });
    axum::body::Body::from_stream(s)
}
