//! Scripted faults: what the next model requests suffer instead of (or on top of) a normal answer: an error status,
//! a context-length refusal, a hang, a TCP reset, a cut or garbage body, a delay before the headers, a drip between
//! stream events, a stall after the first stream events, a stream event that is not JSON, an in-band error event
//! mid-stream, or a continuation that repeats the end of what it continues.
//!
//! Faults that act after the first `after` events of a stream (`Cut`, `Stall`, `Malformed`, `InBandError`) all count
//! the same events: the server-sent events of the answer as the dialect writes them, each with its terminating blank
//! line. Anthropic: every `event:`/`data:` pair, `ping` included (a text answer without thinking is `message_start`,
//! `content_block_start`, `ping`, one `content_block_delta` per word, `content_block_stop`, `message_delta`,
//! `message_stop`). OpenAI Chat: every `data:` chunk, the final `data: [DONE]` included. Responses: every event (an
//! event's `sequence_number` is how many came before it). Gemini (`alt=sse`): every `data:` chunk (one per word,
//! after the thought chunk when thoughts are on). A Gemini `streamGenerateContent` without `alt=sse` answers one
//! JSON array, and counts as non-streaming.
//!
//! This module only describes faults and keeps the FIFO queue of them. It never touches a socket: the server
//! (`routes` and `server`) is what applies a fault to a request.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// One scripted fault and how many upcoming model requests it applies to.
///
/// JSON form (as `POST /_sim/faults` takes it): `{"kind":"status","status":529,"count":2}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Fault {
    /// What happens to the request.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many upcoming model requests this fault applies to; `u32::MAX` means until `reset`.
    #[serde(default = "one")]
    pub count: u32,
    /// Only requests for this model suffer it (others pass it by); `None`: every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

fn one() -> u32 {
    1
}

/// What a fault does to a model request.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Reply with this status and the provider's own error JSON for it, in the format of the path hit;
    /// a `Retry-After` header (seconds) when `retry_after` is given.
    Status {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Accept the request and never answer (until the client goes away or the simulator stops).
    Hang,
    /// Close the TCP connection abruptly with an RST (SO_LINGER 0): no response at all.
    Reset,
    /// Streams: send the first `after` SSE events (counted as the module documentation says), then abort the
    /// connection mid-body. Non-streaming: send the headers and half the body, then abort.
    Cut { after: usize },
    /// 200 with a body that is not valid JSON (streams: `data:` lines with junk).
    Garbage,
    /// Wait this long before sending the response headers, then answer normally.
    Delay { ms: u64 },
    /// Answer normally but wait this long between stream events.
    Drip { ms: u64 },
    /// Reply 400 with the provider's own "prompt is too long" error (OpenAI's `context_length_exceeded`,
    /// Anthropic's `prompt is too long: …`, Google's `The input token count … exceeds …`).
    ContextLength,
    /// Streams: send the headers and the first `after` SSE events at once, pause `ms` milliseconds, then send the
    /// rest normally (`after: 1` on an Anthropic stream is a slow first token). Non-streaming: like `Delay`.
    Stall { after: usize, ms: u64 },
    /// Streams: send the first `after` events, then one event whose data is not valid JSON (the dialect's usual
    /// delta event cut in half; Anthropic's keeps its `event: content_block_delta` line), then the rest of the stream
    /// normally. Non-streaming: like `Garbage`.
    Malformed { after: usize },
    /// Streams: send the first `after` events, then the provider's own in-band error event for `status`, then end the
    /// body cleanly (no abort, nothing after it): Anthropic `event: error` (`overloaded_error` for 529,
    /// `rate_limit_error` for 429, `api_error` otherwise), OpenAI Chat a `data: {"error":{…}}` chunk (the error JSON
    /// the status gets), Responses a `response.failed` event (its Response `failed`, with `error: {code, message}`),
    /// Gemini a `data: {"error":{"code","message","status"}}` chunk. Non-streaming: like `Status`.
    ///
    /// JSON form: `{"kind":"in_band_error","after":3,"status":529}`.
    InBandError { after: usize, status: u16 },
    /// Answer `status` with the provider's error JSON whose message echoes every request header, `authorization`
    /// and `x-api-key` included, and the same header's value back as the response's `request-id`: a provider that
    /// leaks what it was sent.
    ///
    /// JSON form: `{"kind":"echo","status":400}`.
    Echo { status: u16 },
    /// A continuation (a request that asks to continue a cut answer) is answered with the last `words` words of
    /// what it continues (with their spacing, one delta per word) before the continuation proper: a model that
    /// repeats itself. Any other request is answered normally, and still consumes the fault.
    Repeat { words: usize },
}

impl Fault {
    /// A fault that applies to the next model request only.
    pub fn new(kind: FaultKind) -> Self {
        Self { kind, count: 1, model: None }
    }

    /// The same fault, only for requests for `model` (one model of a provider failing, the others fine).
    #[must_use]
    pub fn for_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// The same fault, applied to the next `count` model requests.
    #[must_use]
    pub fn times(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// The same fault, applied to every model request until `reset`.
    #[must_use]
    pub fn forever(self) -> Self {
        self.times(u32::MAX)
    }

    /// Reply with `status` and the provider's error JSON for it.
    pub fn status(status: u16) -> Self {
        Self::new(FaultKind::Status { status, retry_after: None })
    }

    /// Reply with `status`, the provider's error JSON and `Retry-After: secs`.
    pub fn status_retry_after(status: u16, secs: u64) -> Self {
        Self::new(FaultKind::Status { status, retry_after: Some(secs) })
    }

    /// Never answer.
    pub fn hang() -> Self {
        Self::new(FaultKind::Hang)
    }

    /// Reset the TCP connection without answering.
    pub fn reset() -> Self {
        Self::new(FaultKind::Reset)
    }

    /// Abort the body after `after` stream events (or half a JSON body).
    pub fn cut(after: usize) -> Self {
        Self::new(FaultKind::Cut { after })
    }

    /// Answer 200 with a body that is not JSON.
    pub fn garbage() -> Self {
        Self::new(FaultKind::Garbage)
    }

    /// Wait `ms` milliseconds before the response headers.
    pub fn delay(ms: u64) -> Self {
        Self::new(FaultKind::Delay { ms })
    }

    /// Wait `ms` milliseconds between stream events.
    pub fn drip(ms: u64) -> Self {
        Self::new(FaultKind::Drip { ms })
    }

    /// Reply 400 with the provider's context-length error.
    pub fn context_length() -> Self {
        Self::new(FaultKind::ContextLength)
    }

    /// Send the first `after` stream events, then pause `ms` milliseconds before the rest (non-streaming: wait
    /// before the headers).
    pub fn stall(after: usize, ms: u64) -> Self {
        Self::new(FaultKind::Stall { after, ms })
    }

    /// Send the first `after` stream events, then one that is not JSON, then the rest (non-streaming: garbage).
    pub fn malformed(after: usize) -> Self {
        Self::new(FaultKind::Malformed { after })
    }

    /// Send the first `after` stream events, then the provider's in-band error event for `status`, and end the
    /// stream (non-streaming: reply with `status`).
    pub fn in_band_error(after: usize, status: u16) -> Self {
        Self::new(FaultKind::InBandError { after, status })
    }

    /// Start a continuation's answer by repeating the last `words` words of what it continues.
    pub fn repeat(words: usize) -> Self {
        Self::new(FaultKind::Repeat { words })
    }
}

impl From<FaultKind> for Fault {
    fn from(kind: FaultKind) -> Self {
        Self::new(kind)
    }
}

/// The FIFO of pending faults. Each model request takes one unit of the front fault's count.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    queue: VecDeque<Fault>,
}

impl FaultQueue {
    /// Queue a fault behind the others; a fault with a count of 0 applies to nothing and is dropped.
    pub(crate) fn push(&mut self, fault: Fault) {
        if fault.count > 0 {
            self.queue.push_back(fault);
        }
    }

    /// The fault for the request being served now (for `model`), if any, consuming one unit of its count: the
    /// first queued fault for every model or for this one.
    pub(crate) fn take(&mut self, model: Option<&str>) -> Option<FaultKind> {
        let i = self.queue.iter().position(|f| f.model.is_none() || f.model.as_deref() == model)?;
        let fault = self.queue.get_mut(i)?;
        let kind = fault.kind.clone();
        if fault.count != u32::MAX {
            fault.count -= 1;
            if fault.count == 0 {
                self.queue.remove(i);
            }
        }
        Some(kind)
    }

    pub(crate) fn pending(&self) -> Vec<Fault> {
        self.queue.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_forms_parse_with_default_count() {
        let f: Fault = serde_json::from_str(r#"{"kind":"status","status":529,"count":2}"#).unwrap();
        assert_eq!(f, Fault::status(529).times(2));
        let f: Fault = serde_json::from_str(r#"{"kind":"status","status":429,"retry_after":1}"#).unwrap();
        assert_eq!(f, Fault::status_retry_after(429, 1));
        let f: Fault = serde_json::from_str(r#"{"kind":"cut","after":1}"#).unwrap();
        assert_eq!(f, Fault::cut(1));
        let f: Fault = serde_json::from_str(r#"{"kind":"hang"}"#).unwrap();
        assert_eq!(f, Fault::hang());
        let f: Fault = serde_json::from_str(r#"{"kind":"drip","ms":20}"#).unwrap();
        assert_eq!(f, Fault::drip(20));
        let f: Fault = serde_json::from_str(r#"{"kind":"context_length"}"#).unwrap();
        assert_eq!(f, Fault::context_length());
        let f: Fault = serde_json::from_str(r#"{"kind":"stall","after":1,"ms":20000}"#).unwrap();
        assert_eq!(f, Fault::stall(1, 20_000));
        let f: Fault = serde_json::from_str(r#"{"kind":"malformed","after":2}"#).unwrap();
        assert_eq!(f, Fault::malformed(2));
        let f: Fault = serde_json::from_str(r#"{"kind":"in_band_error","after":3,"status":529}"#).unwrap();
        assert_eq!(f, Fault::in_band_error(3, 529));
        let f: Fault = serde_json::from_str(r#"{"kind":"repeat","words":2,"count":3}"#).unwrap();
        assert_eq!(f, Fault::repeat(2).times(3));
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"explode"}"#).is_err());
    }

    #[test]
    fn serializes_back_to_the_same_json() {
        let json = serde_json::to_value(Fault::delay(5).times(3)).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "delay", "ms": 5, "count": 3}));
        let json = serde_json::to_value(Fault::stall(1, 400)).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "stall", "after": 1, "ms": 400, "count": 1}));
        let json = serde_json::to_value(Fault::context_length()).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "context_length", "count": 1}));
        let json = serde_json::to_value(Fault::in_band_error(3, 529)).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "in_band_error", "after": 3, "status": 529, "count": 1}));
        let json = serde_json::to_value(Fault::malformed(0)).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "malformed", "after": 0, "count": 1}));
        let json = serde_json::to_value(Fault::repeat(2)).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "repeat", "words": 2, "count": 1}));
    }

    #[test]
    fn queue_is_fifo_and_counts_down() {
        let mut q = FaultQueue::default();
        q.push(Fault::status(500).times(2));
        q.push(Fault::hang());
        q.push(Fault::garbage().times(0));
        assert_eq!(q.take(None), Some(FaultKind::Status { status: 500, retry_after: None }));
        assert_eq!(q.take(None), Some(FaultKind::Status { status: 500, retry_after: None }));
        assert_eq!(q.take(None), Some(FaultKind::Hang));
        assert_eq!(q.take(None), None);
    }

    #[test]
    fn forever_never_counts_down() {
        let mut q = FaultQueue::default();
        q.push(Fault::reset().forever());
        for _ in 0..10 {
            assert_eq!(q.take(None), Some(FaultKind::Reset));
        }
        assert_eq!(q.pending(), vec![Fault::reset().forever()]);
    }

    #[test]
    fn a_fault_for_one_model_lets_the_others_by() {
        let mut q = FaultQueue::default();
        q.push(Fault::status(529).for_model("m1").forever());
        q.push(Fault::hang());
        assert_eq!(q.take(Some("m2")), Some(FaultKind::Hang), "m2 passes m1's fault, takes the next");
        assert_eq!(q.take(Some("m2")), None);
        assert_eq!(q.take(Some("m1")), Some(FaultKind::Status { status: 529, retry_after: None }));
        let json: Fault = serde_json::from_str(r#"{"kind":"reset","model":"m1"}"#).unwrap();
        assert_eq!(json, Fault::reset().for_model("m1"));
    }
}
