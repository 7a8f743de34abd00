//! One attempt on one target: send, then read up to the commit point.
//!
//! For a plain request the commit point is the whole, parsed answer. For a stream it is the first content event:
//! everything before it (headers, `message_start`, pings) is buffered here, so any failure until then is still
//! invisible to the client and the engine may try elsewhere.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyDataStream, BodyExt};
use nines_wire::sse::{NotUtf8, Reader, SseEvent as Event};
use nines_wire::stream::Decoder;
use nines_wire::{ChatResponse, Dialect, StreamEvent, Usage, sse};
use tokio::time::{Instant, timeout_at};

use super::Limits;
use crate::health::ratelimit::RateLimits;
use crate::provider::error::{rate_limits, request_id};
use crate::provider::{ErrorKind, Provider, ProviderError, UpstreamRequest, UpstreamResponse};

pub type UpstreamEvents = Pin<Box<dyn Stream<Item = Result<Event, StreamReadError>> + Send>>;

/// Why reading an upstream event stream stopped.
#[derive(Debug)]
pub enum StreamReadError {
    Transport(BodyError),
    Utf8(NotUtf8),
}

/// The upstream's events, read by [`Reader`] as the bytes arrive; over after an error.
fn sse_events(body: impl Stream<Item = Result<Bytes, BodyError>> + Send + 'static) -> UpstreamEvents {
    let state = (Box::pin(body), Reader::new(), false);
    Box::pin(futures_util::stream::unfold(state, |(mut body, mut reader, over)| async move {
        if over {
            return None;
        }
        loop {
            match reader.next_event() {
                Ok(Some(ev)) => return Some((Ok(ev), (body, reader, false))),
                Err(e) => return Some((Err(StreamReadError::Utf8(e)), (body, reader, true))),
                Ok(None) => {}
            }
            match body.next().await {
                Some(Ok(bytes)) => reader.feed(&bytes),
                Some(Err(e)) => return Some((Err(StreamReadError::Transport(e)), (body, reader, true))),
                None => {
                    return match reader.finish() {
                        Ok(()) => None,
                        Err(e) => Some((Err(StreamReadError::Utf8(e)), (body, reader, true))),
                    };
                }
            }
        }
    }))
}

/// Bounds on what an upstream may make the gateway hold: nothing a provider sends is buffered without limit.
const MAX_ERROR_BODY: usize = 64 * 1024;
const MAX_WHOLE_BODY: usize = 64 * 1024 * 1024;
/// The longest SSE line (one event's data); real events are kilobytes.
const MAX_LINE: usize = 8 * 1024 * 1024;
/// The most a stream may send before its first content event.
const MAX_HEAD: usize = 1024 * 1024;
/// The longest wait for an error body.
const ERROR_BODY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Transport(#[from] hyper::Error),
    #[error("an upstream stream line exceeded {MAX_LINE} bytes")]
    LineTooLong,
}

/// The upstream byte stream, failing once a line grows past [`MAX_LINE`].
fn guarded(
    bytes: impl Stream<Item = Result<Bytes, hyper::Error>>,
) -> impl Stream<Item = Result<Bytes, BodyError>> {
    let mut since_newline = 0usize;
    bytes.map(move |chunk| {
        let b = chunk?;
        match b.iter().rposition(|&c| c == b'\n') {
            Some(i) => since_newline = b.len() - i - 1,
            None => since_newline = since_newline.saturating_add(b.len()),
        }
        if since_newline > MAX_LINE { Err(BodyError::LineTooLong) } else { Ok(b) }
    })
}

/// Read a body up to `cap` bytes by `deadline`.
async fn read_capped(resp: UpstreamResponse, cap: usize, deadline: Instant) -> Result<Bytes, ProviderError> {
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    loop {
        let frame = timeout_at(deadline, body.frame())
            .await
            .map_err(|_| {
                ProviderError::new(ErrorKind::Timeout, "the body did not arrive within the timeout")
            })?
            .transpose()
            .map_err(|e| {
                let mut pe = ProviderError::from_body(e);
                if pe.kind == ErrorKind::Network {
                    pe.kind = ErrorKind::StreamCut;
                }
                pe
            })?;
        let Some(frame) = frame else { return Ok(Bytes::from(buf)) };
        // Trailers carry nothing a JSON answer needs.
        let Ok(chunk) = frame.into_data() else { continue };
        if buf.len() + chunk.len() > cap {
            return Err(ProviderError::new(ErrorKind::Protocol, format!("the body exceeded {cap} bytes")));
        }
        if buf.is_empty() && hyper::body::Body::is_end_stream(&body) {
            // The whole body came in one frame: no copy.
            return Ok(chunk);
        }
        buf.extend_from_slice(&chunk);
    }
}

/// A whole (non-streaming) answer.
#[derive(Debug)]
pub struct Whole {
    pub body: WholeBody,
    pub request_id: Option<String>,
    /// The rate limits announced with it.
    pub limits: Option<Box<RateLimits>>,
}

#[derive(Debug)]
pub enum WholeBody {
    /// The upstream's own bytes, for a client of the target's dialect: checked (`Dialect::check_response`), never
    /// decoded, returned untouched.
    Raw(Bytes, Option<Usage>),
    /// Decoded, to be encoded in the client's dialect.
    Decoded(ChatResponse),
}

/// A stream past its commit point, ready to be delivered.
pub struct Committed {
    /// Canonical events decoded so far (at least one content event, or the whole stream if it already ended).
    pub head: Vec<StreamEvent>,
    /// The same events as the upstream sent them, re-framed (only when passing through).
    pub head_raw: Vec<u8>,
    pub rest: UpstreamEvents,
    pub decoder: Decoder,
    /// The upstream dialect, to re-frame passthrough events.
    pub upstream: Dialect,
    /// Pass upstream events through (same dialect) rather than translating them.
    pub passthrough: bool,
    /// The upstream stream already ended cleanly (short answers).
    pub ended: bool,
    pub request_id: Option<String>,
    /// The rate limits announced with it.
    pub limits: Option<Box<RateLimits>>,
    /// When this attempt must be over, stream included (its `request` timeout, within the request's deadline).
    pub deadline: Instant,
}

impl std::fmt::Debug for Committed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committed").field("head", &self.head).field("ended", &self.ended).finish()
    }
}

#[derive(Debug)]
pub enum Answer {
    Whole(Whole),
    Stream(Committed),
}

/// Re-frame one upstream event as SSE bytes of its own dialect (only Anthropic names its events).
pub fn reframe(dialect: Dialect, ev: &Event, out: &mut Vec<u8>) {
    // Anthropic and the Responses API name their events; the others send bare `data:` lines.
    let named = matches!(dialect, Dialect::Anthropic | Dialect::OpenAiResponses);
    let name = (named && !ev.event.is_empty()).then_some(ev.event.as_str());
    sse::write_event(out, name, &ev.data);
}

/// Why an upstream stream ended or broke, as a provider error.
pub fn stream_transport_error(e: StreamReadError) -> ProviderError {
    match e {
        StreamReadError::Transport(BodyError::LineTooLong) => {
            ProviderError::new(ErrorKind::Protocol, BodyError::LineTooLong.to_string())
        }
        StreamReadError::Transport(BodyError::Transport(e)) => {
            let mut pe = ProviderError::from_body(e);
            if pe.kind == ErrorKind::Network || pe.kind == ErrorKind::Protocol {
                pe.kind = ErrorKind::StreamCut;
            }
            pe
        }
        StreamReadError::Utf8(e) => ProviderError::new(ErrorKind::Protocol, e.to_string()),
    }
}

pub struct AttemptSpec<'a> {
    pub provider: &'a Provider,
    pub model: &'a str,
    pub body: Bytes,
    pub stream: bool,
    pub passthrough: bool,
    pub headers: &'a http::HeaderMap,
    pub limits: Limits,
}

/// Send a plain JSON request and read its whole answer, classifying failures as a chat attempt does.
pub async fn exchange(
    provider: &Provider,
    req: UpstreamRequest,
    limits: Limits,
) -> Result<(Bytes, Option<String>), ProviderError> {
    let t = provider.config.timeouts;
    let attempt_deadline = limits.deadline;
    let first_byte_deadline = (Instant::now() + limits.first_token).min(attempt_deadline);
    let resp = timeout_at(first_byte_deadline, provider.send(req))
        .await
        .map_err(|_| ProviderError::silent_timeout("no response within the timeout"))??;
    let status = resp.status();
    let id = request_id(resp.headers());
    if !status.is_success() {
        let headers = resp.headers().clone();
        let deadline = (Instant::now() + t.first_byte.min(ERROR_BODY_WAIT)).min(attempt_deadline);
        let body = read_capped(resp, MAX_ERROR_BODY, deadline).await.unwrap_or_default();
        return Err(ProviderError::from_status(status.as_u16(), &headers, &body));
    }
    Ok((read_capped(resp, MAX_WHOLE_BODY, first_byte_deadline).await?, id))
}

/// Send one request and read it to its commit point.
pub async fn run(spec: AttemptSpec<'_>) -> Result<Answer, ProviderError> {
    let t = spec.provider.config.timeouts;
    let attempt_deadline = spec.limits.deadline;
    let first_byte_deadline = (Instant::now() + spec.limits.first_token).min(attempt_deadline);
    let timeout_err = |what: &str| ProviderError::silent_timeout(format!("no {what} within the timeout"));

    let req = spec.provider.chat_request(spec.model, spec.stream, spec.body, spec.headers)?;
    let resp = timeout_at(first_byte_deadline, spec.provider.send(req))
        .await
        .map_err(|_| timeout_err("response"))??;
    let status = resp.status();
    let request_id = request_id(resp.headers());
    if !status.is_success() {
        let headers = resp.headers().clone();
        // An error body explains the failure; it is not worth waiting long for, nor holding much of.
        let deadline = (Instant::now() + t.first_byte.min(ERROR_BODY_WAIT)).min(attempt_deadline);
        let body = read_capped(resp, MAX_ERROR_BODY, deadline).await.unwrap_or_default();
        let mut e = ProviderError::from_status(status.as_u16(), &headers, &body);
        // A field path, and nothing credential-shaped (a provider may echo what it was sent).
        e.param = nines_wire::error::upstream_error_param(&body)
            .filter(|p| crate::provider::redact::redact(p, &[]) == *p)
            .map(|p| Box::new((spec.provider.dialect(), p)));
        return Err(e);
    }
    let dialect = spec.provider.dialect();
    let limits = rate_limits(resp.headers()).map(Box::new);

    if !spec.stream {
        // A plain answer arrives all at once: `first_byte` bounds all of it (see docs/failover.md).
        let body = read_capped(resp, MAX_WHOLE_BODY, first_byte_deadline).await?;
        let unreadable = |e: nines_wire::DecodeError| {
            ProviderError::new(ErrorKind::Protocol, format!("unreadable {dialect} response: {e}"))
                .with_source(e)
        };
        let body = if spec.passthrough {
            let usage = dialect.check_response(&body).map_err(unreadable)?;
            WholeBody::Raw(body, usage)
        } else {
            WholeBody::Decoded(dialect.decode_response(&body).map_err(unreadable)?)
        };
        return Ok(Answer::Whole(Whole { body, request_id, limits }));
    }

    let mut rest: UpstreamEvents = sse_events(guarded(BodyDataStream::new(resp.into_body())));
    let mut decoder = Decoder::new(dialect);
    let mut head = Vec::new();
    let mut head_raw = Vec::new();
    let mut head_bytes = 0usize;
    loop {
        let next =
            timeout_at(first_byte_deadline, rest.next()).await.map_err(|_| timeout_err("first token"))?;
        match next {
            None => {
                decoder.finish(&mut head).map_err(ProviderError::from_stream)?;
                return Ok(Answer::Stream(Committed {
                    head,
                    head_raw,
                    rest,
                    decoder,
                    upstream: dialect,
                    passthrough: spec.passthrough,
                    ended: true,
                    request_id,
                    limits,
                    deadline: attempt_deadline,
                }));
            }
            Some(Err(e)) => return Err(stream_transport_error(e)),
            Some(Ok(ev)) => {
                decoder.push(&ev.event, &ev.data, &mut head).map_err(ProviderError::from_stream)?;
                if spec.passthrough {
                    reframe(dialect, &ev, &mut head_raw);
                }
                head_bytes += ev.data.len();
                if head_bytes > MAX_HEAD {
                    return Err(ProviderError::new(ErrorKind::Protocol, "too much before the first token"));
                }
                if head.iter().any(StreamEvent::is_content) {
                    let ended = head.iter().any(|e| matches!(e, StreamEvent::Finish { .. }));
                    return Ok(Answer::Stream(Committed {
                        head,
                        head_raw,
                        rest,
                        decoder,
                        upstream: dialect,
                        passthrough: spec.passthrough,
                        ended,
                        request_id,
                        limits,
                        deadline: attempt_deadline,
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use eventsource_stream::Eventsource;
    use futures_util::StreamExt;
    use proptest::prelude::*;

    use super::*;

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("event: content_block_delta".to_owned()),
            Just("event:ping".to_owned()),
            Just("event".to_owned()),
            "data: [ -~]{0,12}".prop_map(String::from),
            Just("data:{\"a\": \"é ✓\"}".to_owned()),
            Just("data".to_owned()),
            Just("data:  two spaces".to_owned()),
            Just(": a comment".to_owned()),
            Just("id: 7".to_owned()),
            Just("retry: 100".to_owned()),
            Just("other: x".to_owned()),
            Just(String::new()),
            Just(String::new()),
        ]
    }

    /// Every `(name, data)` of a stream that must not fail.
    async fn events<E: std::fmt::Debug>(
        s: impl Stream<Item = Result<(String, String), E>>,
    ) -> Vec<(String, String)> {
        s.collect::<Vec<_>>().await.into_iter().collect::<Result<_, _>>().unwrap()
    }

    fn ending() -> impl Strategy<Value = &'static str> {
        prop_oneof![6 => Just("\n"), 2 => Just("\r\n"), 1 => Just("\r")]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// Our reader gives the events eventsource-stream gives, whatever the lines, their endings and where the
        /// bytes are cut into chunks (inside a character, between CR and LF); with a BOM first, the events of the
        /// same text without it (eventsource-stream 0.2.3 panics on a BOM: it slices inside the character).
        #[test]
        fn the_reader_reads_as_eventsource_stream(
            bom in any::<bool>(),
            lines in proptest::collection::vec((line(), ending()), 0..14),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut text = String::new();
            for (l, e) in &lines {
                text.push_str(l);
                text.push_str(e);
            }
            let plain = Bytes::from(text.clone().into_bytes());
            if bom {
                text.insert(0, '\u{feff}');
            }
            let bytes = text.into_bytes();
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            at.push(0);
            at.push(bytes.len());
            at.sort_unstable();
            at.dedup();
            let chunks: Vec<Bytes> = at.windows(2).map(|w| Bytes::copy_from_slice(&bytes[w[0]..w[1]])).collect();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (theirs, ours) = rt.block_on(async {
                let body = futures_util::stream::iter([Ok::<_, BodyError>(plain)]);
                let theirs = events(body.eventsource().map(|e| e.map(|e| (e.event, e.data)))).await;
                let body = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, BodyError>));
                let ours = events(sse_events(body).map(|e| e.map(|e| (e.event, e.data)))).await;
                (theirs, ours)
            });
            prop_assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(&bytes));
        }
    }
}
