//! The delivery of a committed stream: upstream events → (decoder) → canonical events → (encoder) → client SSE.
//!
//! Same-dialect streams pass the upstream events through untranslated, but still run the decoder, so the gateway
//! always knows where the stream stands. After the commit point a failure cannot be hidden: the stream ends with
//! the client dialect's error event, never with a marker that would make a cut answer look complete.
//!
//! The stream carries its flight: how it ends (complete, broken, or dropped by the client) goes back to the flight
//! as an event, with the longest gap between two upstream events (what learnt idle limits are made of).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use nines_wire::stream::Encoder;
use nines_wire::{Dialect, EncodeCtx, StreamEvent};
use tokio::time::{Instant, timeout_at};

use crate::dispatch::attempt::{reframe, stream_transport_error};
use crate::dispatch::{Committed, EventKind, Flight};
use crate::health::{InFlight, Role};
use crate::provider::{ErrorKind, ProviderError};
use crate::record::Ending;

/// The flight a stream belongs to, and the target serving it.
pub struct Owner {
    pub flight: Flight,
    /// The serving target's index in the flight's plan.
    pub target: usize,
    pub in_flight: InFlight,
}

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

/// Most bytes gathered into one chunk before it is sent.
const COALESCE_LIMIT: usize = 64 * 1024;

enum Phase {
    Head,
    Body,
    Done,
}

struct Live {
    c: Committed,
    enc: Encoder,
    idle: Duration,
    deadline: Instant,
    phase: Phase,
    events: Vec<StreamEvent>,
    owner: Owner,
    /// When the last upstream event arrived, and the longest wait between two so far.
    last_event: Instant,
    max_gap: Duration,
    on_response: Option<OnResponse>,
}

impl Live {
    fn encode_events(&mut self, out: &mut Vec<u8>) {
        for ev in self.events.drain(..) {
            self.enc.push(&ev, out);
        }
    }

    fn fail(&mut self, error: ProviderError, out: &mut Vec<u8>) {
        let message = format!(
            "the upstream stream from {} broke after the answer had started ({}): {}",
            self.owner.flight.target(self.owner.target).map_or("the provider", |t| t.label()),
            error.kind.label(),
            error.message
        );
        self.enc.error(error.kind.error_type(), &message, out);
        self.broke(error);
    }

    /// The stream broke after its commit point: an event on its flight, which ends.
    fn broke(&mut self, error: ProviderError) {
        self.phase = Phase::Done;
        let flight = &mut self.owner.flight;
        let elapsed = flight.started.elapsed();
        let target = self.owner.target;
        flight.emit(EventKind::Failed {
            target,
            role: Role::Normal,
            error: Box::new(error),
            elapsed,
            timed_out: None,
            deadline_cut: false,
            after_commit: true,
        });
        flight.end(Ending::BrokenStream, Some(target));
    }

    fn finished_ok(&mut self) {
        self.phase = Phase::Done;
        let flight = &mut self.owner.flight;
        if flight.is_ended() {
            return;
        }
        let elapsed = flight.started.elapsed();
        let target = self.owner.target;
        let max_gap = Some(self.max_gap);
        flight.emit(EventKind::Succeeded { target, elapsed, max_gap });
        let ending = flight.served_ending();
        flight.end(ending, Some(target));
    }

    /// An upstream event arrived now.
    fn arrived(&mut self) {
        let now = Instant::now();
        self.max_gap = self.max_gap.max(now.saturating_duration_since(self.last_event));
        self.last_event = now;
    }

    /// Produce the next chunk of client bytes, or `None` when the stream is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Head => {
                    if self.c.passthrough {
                        out = std::mem::take(&mut self.c.head_raw);
                        self.events.clear();
                    } else {
                        self.events = std::mem::take(&mut self.c.head);
                        self.encode_events(&mut out);
                    }
                    if self.c.ended {
                        self.finished_ok();
                    } else {
                        self.phase = Phase::Body;
                    }
                }
                Phase::Body => {
                    // Events the upstream already sent (often several per TCP read) go out in one chunk: one write
                    // to the client instead of one per event. Once something is ready to send, never wait.
                    let next = if out.is_empty() {
                        let wait_until = (Instant::now() + self.idle).min(self.deadline);
                        timeout_at(wait_until, self.c.rest.next()).await
                    } else if out.len() >= COALESCE_LIMIT {
                        return Some(Bytes::from(out));
                    } else {
                        match self.c.rest.next().now_or_never() {
                            Some(ready) => Ok(ready),
                            None => return Some(Bytes::from(out)),
                        }
                    };
                    match next {
                        Err(_) => {
                            let e = ProviderError::new(
                                ErrorKind::Timeout,
                                "no stream event within the idle timeout",
                            );
                            self.fail(e, &mut out);
                        }
                        Ok(None) => match self.c.decoder.finish(&mut self.events) {
                            Ok(()) => {
                                self.encode_events_unless_passthrough(&mut out);
                                self.finished_ok();
                            }
                            Err(e) => self.fail(ProviderError::from_stream(e), &mut out),
                        },
                        Ok(Some(Err(e))) => self.fail(stream_transport_error(e), &mut out),
                        Ok(Some(Ok(ev))) => {
                            self.arrived();
                            match self.c.decoder.push(&ev.event, &ev.data, &mut self.events) {
                                Ok(()) => {
                                    if self.c.passthrough {
                                        reframe(self.c.upstream, &ev, &mut out);
                                    }
                                    let finished =
                                        self.events.iter().any(|e| matches!(e, StreamEvent::Finish { .. }));
                                    self.encode_events_unless_passthrough(&mut out);
                                    if finished {
                                        self.finished_ok();
                                    }
                                }
                                Err(e) => {
                                    let pe = ProviderError::from_stream(e);
                                    if self.c.passthrough && pe.kind != ErrorKind::Protocol {
                                        // The provider's own error event, in the client's own dialect: pass it on.
                                        reframe(self.c.upstream, &ev, &mut out);
                                        self.broke(pe);
                                    } else {
                                        self.fail(pe, &mut out);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            // Keep draining ready events while streaming; any other phase change sends what there is.
            if !out.is_empty() && !matches!(self.phase, Phase::Body) {
                return Some(Bytes::from(out));
            }
        }
    }

    fn encode_events_unless_passthrough(&mut self, out: &mut Vec<u8>) {
        if self.c.passthrough {
            self.events.clear();
        } else {
            self.encode_events(out);
        }
    }
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

/// How the client's stream is made: its dialect and framing, and what happens around it.
pub struct Spec {
    pub client: Dialect,
    pub framing: Framing,
    pub ctx: EncodeCtx,
    pub include_usage: bool,
    pub idle: Duration,
    pub deadline: Instant,
    pub owner: Owner,
    pub on_response: Option<OnResponse>,
}

/// The client's body for a committed stream.
pub fn body(committed: Committed, spec: Spec) -> axum::body::Body {
    let live = Live {
        c: committed,
        enc: Encoder::new(spec.client, spec.ctx, spec.include_usage),
        idle: spec.idle,
        deadline: spec.deadline,
        phase: Phase::Head,
        events: Vec::new(),
        owner: spec.owner,
        last_event: Instant::now(),
        max_gap: Duration::ZERO,
        on_response: spec.on_response,
    };
    if spec.framing == Framing::Sse {
        let s = futures_util::stream::unfold(live, |mut live| async move {
            let chunk = live.next_chunk().await?;
            if live.on_response.is_some()
                && let Some(response) = terminal_response(&chunk)
                && let Some(keep) = live.on_response.take()
            {
                keep(response).await;
            }
            Some((Ok::<_, Infallible>(chunk), live))
        });
        return axum::body::Body::from_stream(s);
    }
    let s = futures_util::stream::unfold(Some((live, ArrayFramer::default())), |state| async move {
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
