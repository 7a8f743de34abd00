//! The delivery of a committed stream, to its last byte: upstream events → (decoder) → canonical events →
//! (encoder) → the client's bytes, with a record of what the client has been sent ([`Transcript`]).
//!
//! Same-dialect streams pass the upstream events through untranslated, but still run the decoder, so the gateway
//! always knows where the stream stands and what was delivered. When the stream breaks after its commit point (a
//! cut, a stall past the target's learnt idle limit, a malformed event, an in-band error event), the answer is
//! continued on another target of the route when that is safe ([`resume`]): its output is spliced into the same
//! client stream (same id, no second start, overlap trimmed, one stop reason, usage summed). When it is not safe or
//! nobody can continue, the stream ends with the client dialect's error event, never with a marker that would make
//! a cut answer look complete.
//!
//! The delivery carries its flight: every break, resume and the ending are events on it.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use http::HeaderMap;
use nines_wire::resume::{Form, Splicer, Transcript};
use nines_wire::stream::Encoder;
use nines_wire::{ChatRequest, Dialect, EncodeCtx, StreamEvent, sse};
use tokio::time::{Instant, timeout_at};

use super::attempt::{reframe, stream_transport_error};
use super::flight::{NotResumed, Tokens};
use super::{Answer, Committed, EventKind, Flight, Served, resume};
use crate::health::InFlight;
use crate::provider::{ErrorKind, ProviderError};
use crate::record::Ending;

/// Most bytes gathered into one chunk before it is sent.
const COALESCE_LIMIT: usize = 64 * 1024;

/// Most upstream events gathered into one chunk before it is sent.
const COALESCE_EVENTS: u32 = 256;

/// How many times a stream's task yields, waiting for an event its upstream connection has already read, before it
/// sends what it has: the connection task hands over one body chunk per turn of the scheduler, and it takes two turns
/// after the previous chunk was taken (measured: a whole answer in one read comes out of one or two writes, not one
/// per event).
const YIELDS: u32 = 3;

/// What a continuation needs of the client's request: the request itself (continuations are always translated
/// from it) and the headers a same-dialect provider should see.
#[derive(Debug)]
pub struct Resume {
    pub request: ChatRequest,
    pub headers: HeaderMap,
}

/// How a committed stream is delivered.
pub struct Spec {
    pub client: Dialect,
    pub ctx: EncodeCtx,
    pub include_usage: bool,
    pub flight: Flight,
    /// The serving target's index in the flight's plan.
    pub target: usize,
    pub in_flight: InFlight,
    /// Present when the route may resume this stream elsewhere.
    pub resume: Option<Resume>,
}

/// How an upstream stream broke after its commit point.
struct Break {
    error: ProviderError,
    /// The provider's own error event, already in the client's dialect (passthrough).
    own: Option<nines_wire::sse::SseEvent>,
    /// The request's (or the attempt's) deadline ended it: no verdict on the target.
    deadline_cut: bool,
}

impl Break {
    fn of(error: ProviderError, own: Option<nines_wire::sse::SseEvent>) -> Box<Break> {
        Box::new(Break { error, own, deadline_cut: false })
    }
}

enum Phase {
    Head,
    Body,
    Done,
}

pub struct Delivery {
    up: Committed,
    enc: Encoder,
    /// Upstream events go to the client as their own bytes (same dialect, nothing spliced yet).
    passthrough: bool,
    client: Dialect,
    ctx: EncodeCtx,
    include_usage: bool,
    flight: Flight,
    target: usize,
    /// Counts the stream in flight on its target (let go when the target's stream breaks).
    in_flight: Option<InFlight>,
    /// How long the serving target may leave between two events (learnt, capped by its `idle` timeout).
    idle: Duration,
    phase: Phase,
    events: Vec<StreamEvent>,
    /// What the client has been sent, as canonical events.
    transcript: Transcript,
    /// Boxed, as the other rarely used parts: what every open stream holds stays small.
    resume: Option<Box<Resume>>,
    /// Set while a continuation is being delivered.
    splice: Option<Box<Splicer>>,
    /// A break to handle once what was ready before it has been sent.
    pending: Option<Box<Break>>,
    resumes: u32,
    /// The output item ids a Responses client was told of while its stream passed through, by output index: an
    /// encoder that takes over keeps them.
    item_ids: Vec<String>,
    /// When the last upstream event arrived, and the longest wait between two so far.
    last_event: Instant,
    max_gap: Duration,
    /// The size of the last chunk sent (within bounds): what the next one starts with.
    chunk_hint: usize,
}

impl Delivery {
    pub fn new(up: Committed, spec: Spec) -> Delivery {
        let idle = idle_limit(&spec.flight, spec.target);
        Delivery {
            passthrough: up.passthrough,
            up,
            enc: Encoder::new(spec.client, spec.ctx.clone(), spec.include_usage),
            client: spec.client,
            ctx: spec.ctx,
            include_usage: spec.include_usage,
            flight: spec.flight,
            target: spec.target,
            in_flight: Some(spec.in_flight),
            idle,
            phase: Phase::Head,
            events: Vec::new(),
            transcript: Transcript::new(),
            resume: spec.resume.map(Box::new),
            splice: None,
            pending: None,
            resumes: 0,
            item_ids: Vec::new(),
            last_event: Instant::now(),
            max_gap: Duration::ZERO,
            chunk_hint: 512,
        }
    }

    /// Produce the next chunk of client bytes, or `None` when the stream is over.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        // How often the task has yielded since the last upstream event, and how many events this chunk gathered:
        // see the coalescing below.
        let mut yielded = 0u32;
        let mut gathered = 0u32;
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Head => {
                    if self.passthrough {
                        out = std::mem::take(&mut self.up.head_raw);
                        if self.client == Dialect::OpenAiResponses
                            && let Ok(text) = std::str::from_utf8(&out)
                        {
                            for f in nines_wire::sse::parse(text) {
                                self.note_item(&f.event, &f.data);
                            }
                        }
                    }
                    self.events = std::mem::take(&mut self.up.head);
                    self.deliver_decoded(&mut out);
                    if self.up.ended {
                        self.finished_ok();
                    } else {
                        self.phase = Phase::Body;
                    }
                }
                Phase::Body if self.pending.is_some() => {
                    // What was ready before the break goes to the client first: finding a continuation may take a
                    // while.
                    if !out.is_empty() {
                        return Some(self.sent(out));
                    }
                    if let Some(b) = self.pending.take() {
                        // Boxed: finding a continuation runs the whole engine, whose future would otherwise make
                        // every open stream's state that much larger.
                        Box::pin(self.broke(b, &mut out)).await;
                    }
                }
                Phase::Body => {
                    // Events the upstream already sent (often a whole answer per TCP read) go out in one chunk:
                    // one write to the client instead of one per event. hyper's connection task hands the body
                    // over one chunk at a time, and only once the previous one was taken: when the next is not
                    // there yet, yield (up to YIELDS times), so that it can decode what it has already read; when
                    // it still is not there, nothing more is ready: send. Once something is ready, never wait.
                    let next = if out.is_empty() {
                        let wait_until = (Instant::now() + self.idle).min(self.up.deadline);
                        timeout_at(wait_until, self.up.rest.next()).await
                    } else if out.len() >= COALESCE_LIMIT || gathered >= COALESCE_EVENTS {
                        // Bounded in bytes, and in events (events that add no bytes must not hold what is ready).
                        return Some(self.sent(out));
                    } else {
                        match self.up.rest.next().now_or_never() {
                            Some(ready) => {
                                yielded = 0;
                                Ok(ready)
                            }
                            None if yielded < YIELDS => {
                                yielded += 1;
                                tokio::task::yield_now().await;
                                continue;
                            }
                            None => return Some(self.sent(out)),
                        }
                    };
                    match next {
                        Err(_) => {
                            let deadline_cut = Instant::now() >= self.up.deadline;
                            let what = if deadline_cut {
                                "the stream did not end within the request timeout"
                            } else {
                                "no stream event within the idle limit"
                            };
                            let error = ProviderError::new(ErrorKind::Timeout, what);
                            self.pending = Some(Box::new(Break { error, own: None, deadline_cut }));
                        }
                        Ok(None) => match self.up.decoder.finish(&mut self.events) {
                            Ok(()) => {
                                self.deliver_decoded(&mut out);
                                self.finished_ok();
                            }
                            Err(e) => self.pending = Some(Break::of(ProviderError::from_stream(e), None)),
                        },
                        Ok(Some(Err(e))) => self.pending = Some(Break::of(stream_transport_error(e), None)),
                        Ok(Some(Ok(ev))) => {
                            self.arrived();
                            gathered += 1;
                            // Sized as the previous chunk was (grown from nothing, a chunk of several events
                            // reallocated a few times), and only once there is something to hold: an open stream
                            // waiting for its next event holds no buffer.
                            if out.capacity() == 0 {
                                out.reserve(self.chunk_hint);
                            }
                            match self.up.decoder.push(&ev.event, &ev.data, &mut self.events) {
                                Ok(()) => {
                                    if self.passthrough {
                                        reframe(self.up.upstream, &ev, &mut out);
                                        if self.client == Dialect::OpenAiResponses {
                                            self.note_item(&ev.event, &ev.data);
                                        }
                                    }
                                    let finished =
                                        self.events.iter().any(|e| matches!(e, StreamEvent::Finish { .. }));
                                    self.deliver_decoded(&mut out);
                                    if finished {
                                        self.finished_ok();
                                    }
                                }
                                Err(e) => {
                                    let pe = ProviderError::from_stream(e);
                                    // The provider's own error event, already in the client's dialect.
                                    let own =
                                        (self.passthrough && pe.kind != ErrorKind::Protocol).then_some(ev);
                                    self.pending = Some(Break::of(pe, own));
                                }
                            }
                        }
                    }
                }
            }
            // Keep draining ready events while streaming; any other phase change sends what there is.
            if !out.is_empty() && !matches!(self.phase, Phase::Body) {
                return Some(self.sent(out));
            }
        }
    }

    /// A chunk goes to the client; the next one starts as large.
    fn sent(&mut self, out: Vec<u8>) -> Bytes {
        self.chunk_hint = out.len().clamp(256, 16 * 1024);
        Bytes::from(out)
    }

    /// A Responses event passed through: the id of an output item it announces, kept by output index.
    fn note_item(&mut self, event: &str, data: &str) {
        if event != "response.output_item.added" {
            return;
        }
        #[derive(serde::Deserialize)]
        struct Added {
            output_index: usize,
            item: Item,
        }
        #[derive(serde::Deserialize)]
        struct Item {
            id: String,
        }
        let Ok(added) = serde_json::from_str::<Added>(data) else { return };
        // An index far beyond what was announced is not an item list worth growing.
        if added.output_index > self.item_ids.len() + 64 {
            return;
        }
        if self.item_ids.len() <= added.output_index {
            self.item_ids.resize(added.output_index + 1, String::new());
        }
        if let Some(slot) = self.item_ids.get_mut(added.output_index) {
            *slot = added.item.id;
        }
    }

    /// Events the decoder produced: recorded, and encoded unless their bytes were passed through.
    fn deliver_decoded(&mut self, out: &mut Vec<u8>) {
        if self.passthrough {
            for ev in self.events.drain(..) {
                self.transcript.push(&ev);
            }
        } else {
            self.deliver_events(out);
        }
    }

    /// Encode the pending events for the client (through the splicer while a continuation is delivered).
    fn deliver_events(&mut self, out: &mut Vec<u8>) {
        if let Some(splicer) = &mut self.splice {
            let mut spliced = Vec::with_capacity(self.events.len());
            for ev in self.events.drain(..) {
                splicer.push(ev, &mut spliced);
            }
            self.events = spliced;
        }
        self.deliver_events_raw(out);
    }

    /// An upstream event arrived now.
    fn arrived(&mut self) {
        let now = Instant::now();
        self.max_gap = self.max_gap.max(now.saturating_duration_since(self.last_event));
        self.last_event = now;
    }

    fn finished_ok(&mut self) {
        self.phase = Phase::Done;
        if self.flight.is_ended() {
            return;
        }
        let elapsed = self.flight.attempt_elapsed(self.target);
        let target = self.target;
        let max_gap = Some(self.max_gap);
        let role = self.flight.role_of(target);
        let tokens = Some(Tokens::from(&self.transcript.usage()));
        self.flight.emit(EventKind::Succeeded { target, role, elapsed, max_gap, tokens });
        let ending = self.flight.served_ending();
        self.flight.end(ending, Some(target));
    }

    /// The stream broke after its commit point: an event on the flight; then, if its stop reason had already come
    /// (only the closing events are missing), the answer ends complete; else a continuation elsewhere when that is
    /// safe and possible, or the end of the stream with the client dialect's error event (or the provider's own,
    /// passed through).
    async fn broke(&mut self, b: Box<Break>, out: &mut Vec<u8>) {
        let Break { mut error, own, deadline_cut } = *b;
        error.hide_secret(self.flight.target(self.target).and_then(|t| t.provider.secret()));
        if let Some(s) = &mut self.splice {
            // What the continuation had given but the splicer still held is the client's.
            s.finish(&mut self.events);
            self.deliver_events_raw(out);
        }
        if self.up.decoder.settle(&mut self.events) {
            self.settled(out);
            return;
        }
        // The broken upstream is let go now: its connection closes, it no longer counts as in flight.
        self.up.rest = Box::pin(futures_util::stream::empty());
        self.in_flight = None;
        let elapsed = self.flight.attempt_elapsed(self.target);
        let message = format!(
            "the upstream stream from {} broke after the answer had started ({}): {}",
            self.flight.target(self.target).map_or("the provider", |t| t.label()),
            error.kind.label(),
            error.message
        );
        let kind = error.kind;
        self.flight.emit(EventKind::Failed {
            target: self.target,
            role: self.flight.role_of(self.target),
            error: Box::new(error),
            elapsed,
            timed_out: None,
            deadline_cut,
            after_commit: true,
        });
        match self.continuation().await {
            Ok(served) => return self.splice_in(served, out),
            Err(why) => self.flight.emit(EventKind::NotResumed { target: self.target, why }),
        }
        self.phase = Phase::Done;
        match own {
            Some(ev) if self.passthrough => reframe(self.up.upstream, &ev, out),
            _ => {
                self.sync_encoder();
                self.enc.error(kind.error_type(), &message, out);
            }
        }
        self.flight.end(Ending::BrokenStream, Some(self.target));
    }

    /// The upstream broke after its stop reason: the answer is complete. A translated stream gets its ending from
    /// the encoder; a passed-through one only the closing bytes its client still lacks.
    fn settled(&mut self, out: &mut Vec<u8>) {
        let passthrough = self.passthrough;
        self.deliver_decoded(out);
        if passthrough {
            match self.client {
                Dialect::Anthropic => {
                    sse::write_event(out, Some("message_stop"), r#"{"type":"message_stop"}"#)
                }
                Dialect::OpenAiChat => sse::write_event(out, None, "[DONE]"),
                Dialect::Gemini | Dialect::OpenAiResponses => {}
            }
        }
        self.finished_ok();
    }

    /// Encode the pending events as they are (no splicer).
    fn deliver_events_raw(&mut self, out: &mut Vec<u8>) {
        for ev in self.events.drain(..) {
            self.enc.push(&ev, out);
            self.transcript.push(&ev);
        }
    }

    /// Ask the route for a continuation of what the client has, if that is safe and allowed.
    async fn continuation(&mut self) -> Result<Served, NotResumed> {
        let max = self.flight.plan.streams.max_resumes;
        let Some(resume) = &self.resume else {
            // Kept only where a continuation is possible: here the route has no other target, or does not resume.
            return Err(if max == 0 { NotResumed::Off } else { NotResumed::NoTarget });
        };
        // A continuation of structured output would be a second, whole JSON document after the first's beginning.
        if resume.request.response_format.is_some() {
            return Err(NotResumed::Structured);
        }
        if self.resumes >= max {
            return Err(NotResumed::Limit(max));
        }
        self.transcript.check().map_err(NotResumed::Unsafe)?;
        self.flight.exclude(self.target);
        let op = resume::Continue { resume, transcript: &self.transcript };
        match super::run(&op, &mut self.flight).await {
            Ok(served) => Ok(served),
            Err(_) => Err(NotResumed::NoTarget),
        }
    }

    /// Deliver `served`, a continuation, from here on.
    fn splice_in(&mut self, served: Served, out: &mut Vec<u8>) {
        let Served { answer, index, in_flight, continuation, .. } = served;
        let Answer::Stream(up) = answer else {
            // A continuation is always asked as a stream; anything else ends the stream honestly.
            self.phase = Phase::Done;
            self.sync_encoder();
            self.enc.error(ErrorKind::Protocol.error_type(), "the continuation was not a stream", out);
            self.flight.end(Ending::BrokenStream, Some(index));
            return;
        };
        self.sync_encoder();
        let from = self.target;
        self.resumes += 1;
        self.flight.emit(EventKind::Resumed {
            from,
            to: index,
            delivered: self.transcript.text().len(),
            form: continuation.unwrap_or(Form::Instruction),
        });
        let label = |i: usize| self.flight.target(i).map_or("?", |t| t.label()).to_owned();
        // An SSE comment: for machines that look, ignored by SSE parsers. Not for Gemini clients: google-genai reads
        // every line that is not `data: …` as a JSON chunk and fails on a comment.
        if self.client != Dialect::Gemini {
            let note = format!(": nines resumed the answer from {} on {}\n\n", label(from), label(index));
            out.extend_from_slice(note.as_bytes());
        }
        if let Some(r) = &self.resume {
            self.transcript.estimate_input(super::estimate_input(&r.request));
        }
        self.splice = Some(Box::new(Splicer::new(&self.transcript)));
        self.target = index;
        self.in_flight = Some(in_flight);
        self.idle = idle_limit(&self.flight, index);
        self.up = up;
        self.max_gap = Duration::ZERO;
        self.last_event = Instant::now();
        // Its head (at least one content event) goes out as any stream's does, through the splicer.
        self.phase = Phase::Head;
    }

    /// From passing bytes through to encoding: bring a fresh encoder to the state of what the client has (same
    /// ids, same blocks), its output discarded, so what follows continues the client's stream.
    fn sync_encoder(&mut self) {
        if !self.passthrough {
            return;
        }
        self.passthrough = false;
        let mut ctx = self.ctx.clone();
        // The client saw the upstream's own response and item ids.
        ctx.response_id = None;
        ctx.item_ids = std::mem::take(&mut self.item_ids);
        ctx.verbatim_ids = true;
        self.enc = Encoder::new(self.client, ctx, self.include_usage);
        let mut sink = Vec::new();
        for ev in self.transcript.replay() {
            self.enc.push(&ev, &mut sink);
            sink.clear();
        }
    }
}

/// How long `target` may leave between two stream events: learnt from its streams, capped by its `idle` timeout.
fn idle_limit(flight: &Flight, target: usize) -> Duration {
    match flight.target(target) {
        Some(t) => t.health.idle_limit(&flight.snap.config.health, t.provider.config.timeouts.idle),
        None => Duration::from_secs(30),
    }
}
