//! Mid-stream resume: what a client was sent of a streamed answer ([`Transcript`]), the request asking another target
//! to continue it ([`continuation`]), and the splice of that continuation into the client's stream ([`Splicer`]).
//!
//! Overlap rule. A model asked to continue may repeat the end of the delivered text D (its last 2 KiB), or restart
//! the answer. Its text C is held back while it could still be such a repeat: while D has C at its start, or anywhere
//! at least [`MIN_OVERLAP`] bytes before its end. Then the whole of D is dropped if C starts with it, else the longest
//! prefix of C of at least `MIN_OVERLAP` bytes that D ends with, else nothing; leading whitespace of what is left that
//! repeats D's trailing whitespace is dropped too, and everything after passes untouched.

use crate::canonical::{ChatRequest, Message, Part, Role, Signature, StreamEvent, Usage};

/// The shortest repeat of the delivered text's end that is trimmed: a shorter overlap is taken as coincidence.
pub const MIN_OVERLAP: usize = 8;

/// How much of the delivered text's end a [`Splicer`] compares the continuation with.
const TAIL: usize = 2048;

/// How far past the delivered tail's length a [`Splicer`] may hold text back.
const SLACK: usize = 64;

/// The `Start` the client was sent.
#[derive(Clone, Debug)]
struct Start {
    id: String,
    model: String,
    usage: Usage,
}

/// A run of consecutive events of one kind. `deltas` counts the non-empty deltas it was built from.
#[derive(Clone, Debug)]
enum Block {
    /// `Transcript::text[range]`.
    Text {
        range: std::ops::Range<usize>,
        deltas: u32,
    },
    /// Reasoning, closed by its signature.
    Thinking {
        text: String,
        deltas: u32,
        signature: Option<Signature>,
    },
    /// A tool call: its start (unless its arguments came first) and its arguments.
    Tool {
        index: u32,
        start: Option<(String, String)>,
        args: String,
        deltas: u32,
    },
    Unsupported(String),
}

/// What the client has been sent of one streamed answer, as canonical events, compactly: consecutive deltas of the
/// same kind are merged into one block.
#[derive(Clone, Debug, Default)]
pub struct Transcript {
    start: Option<Start>,
    text: String,
    blocks: Vec<Block>,
    thinking_bytes: usize,
    tool_call: bool,
    unsupported: bool,
    /// The usage of the `Finish`, once delivered.
    finish: Option<Usage>,
    /// Bytes of content kept (text, reasoning, tool arguments).
    kept: usize,
    /// More content was delivered than is kept ([`MAX_KEPT`]): it cannot be continued.
    overflow: bool,
    /// See [`Transcript::estimate_input`].
    input_estimate: u64,
}

/// The most content a transcript keeps (text, reasoning, signatures, tool calls): what a continuation can carry, and
/// a bound on what an endless stream makes the gateway hold. Past it, nothing more is recorded.
pub const MAX_KEPT: usize = 1024 * 1024;

impl Transcript {
    /// An empty transcript: nothing delivered yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record one event the client was sent. Only the first `Start` counts (encoders ignore later ones).
    pub fn push(&mut self, ev: &StreamEvent) {
        let content = match ev {
            StreamEvent::TextDelta(t) | StreamEvent::ThinkingDelta(t) | StreamEvent::Unsupported(t) => {
                t.len()
            }
            StreamEvent::ToolCallArgs { json, .. } => json.len(),
            StreamEvent::ThinkingSignature(sig) => sig.value.len().max(1),
            StreamEvent::ToolCallStart { id, name, .. } => id.len().saturating_add(name.len()).max(1),
            StreamEvent::Start { .. } | StreamEvent::Finish { .. } => 0,
        };
        if content > 0 {
            if self.overflow || self.kept.saturating_add(content) > MAX_KEPT {
                self.overflow = true;
                return;
            }
            self.kept += content;
        }
        match ev {
            StreamEvent::Start { id, model, usage } => {
                if self.start.is_none() {
                    self.start = Some(Start { id: id.clone(), model: model.clone(), usage: *usage });
                }
            }
            StreamEvent::TextDelta(t) => self.push_text(t),
            StreamEvent::ThinkingDelta(t) => self.push_thinking(t),
            StreamEvent::ThinkingSignature(sig) => self.push_signature(sig),
            StreamEvent::ToolCallStart { index, id, name } => {
                self.tool_call = true;
                let start = Some((id.clone(), name.clone()));
                self.blocks.push(Block::Tool { index: *index, start, args: String::new(), deltas: 0 });
            }
            StreamEvent::ToolCallArgs { index, json } => self.push_args(*index, json),
            StreamEvent::Unsupported(kind) => {
                self.unsupported = true;
                self.blocks.push(Block::Unsupported(kind.clone()));
            }
            StreamEvent::Finish { usage, .. } => self.finish = Some(*usage),
        }
    }

    fn push_text(&mut self, t: &str) {
        let from = self.text.len();
        self.text.push_str(t);
        let to = self.text.len();
        match self.blocks.last_mut() {
            Some(Block::Text { range, deltas }) => {
                range.end = to;
                *deltas = count(*deltas, t);
            }
            _ => self.blocks.push(Block::Text { range: from..to, deltas: count(0, t) }),
        }
    }

    fn push_thinking(&mut self, t: &str) {
        self.thinking_bytes = self.thinking_bytes.saturating_add(t.len());
        match self.blocks.last_mut() {
            Some(Block::Thinking { text, deltas, signature: None }) => {
                text.push_str(t);
                *deltas = count(*deltas, t);
            }
            _ => {
                self.blocks.push(Block::Thinking { text: t.to_owned(), deltas: count(0, t), signature: None })
            }
        }
    }

    fn push_signature(&mut self, sig: &Signature) {
        match self.blocks.last_mut() {
            Some(Block::Thinking { signature: s @ None, .. }) => *s = Some(sig.clone()),
            _ => self.blocks.push(Block::Thinking {
                text: String::new(),
                deltas: 0,
                signature: Some(sig.clone()),
            }),
        }
    }

    fn push_args(&mut self, at: u32, json: &str) {
        self.tool_call = true;
        match self.blocks.last_mut() {
            Some(Block::Tool { index, args, deltas, .. }) if *index == at => {
                args.push_str(json);
                *deltas = count(*deltas, json);
            }
            _ => self.blocks.push(Block::Tool {
                index: at,
                start: None,
                args: json.to_owned(),
                deltas: count(0, json),
            }),
        }
    }

    /// All answer text delivered (`TextDelta`), concatenated in order.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether any reasoning was delivered: its text or a signature.
    pub fn has_thinking(&self) -> bool {
        self.blocks.iter().any(|b| matches!(b, Block::Thinking { .. }))
    }

    /// Whether a `Finish` was delivered.
    pub fn finished(&self) -> bool {
        self.finish.is_some()
    }

    /// Whether the answer may be continued elsewhere: not once a tool call was started (partly or wholly delivered:
    /// the client may already be running it), content of an unsupported kind was delivered, or the answer finished.
    pub fn check(&self) -> Result<(), Unresumable> {
        if self.tool_call {
            Err(Unresumable::ToolCall)
        } else if self.overflow {
            Err(Unresumable::TooLong)
        } else if self.unsupported {
            Err(Unresumable::Unsupported)
        } else if self.finished() {
            Err(Unresumable::Finished)
        } else {
            Ok(())
        }
    }

    /// Events that bring a fresh [`crate::stream::Encoder`] to exactly the state the client's encoder is in: the
    /// `Start` as it was (nothing when none was delivered), then each block in order (a thinking block's signature
    /// after its text; a tool call's start, then its arguments). A block built from n non-empty deltas is given as n
    /// non-empty deltas of its text (the first n-1 one char each, then the rest), not one: the Responses encoder
    /// numbers its events (`sequence_number`), so the count must match for later events to continue it. A `Finish`
    /// is not replayed.
    pub fn replay(&self) -> Vec<StreamEvent> {
        let mut out = Vec::with_capacity(self.blocks.len().saturating_add(1));
        if let Some(s) = &self.start {
            out.push(StreamEvent::Start { id: s.id.clone(), model: s.model.clone(), usage: s.usage });
        }
        for block in &self.blocks {
            self.replay_block(block, &mut out);
        }
        out
    }

    fn replay_block(&self, block: &Block, out: &mut Vec<StreamEvent>) {
        match block {
            Block::Text { range, deltas } => {
                let text = self.text.get(range.clone()).unwrap_or_default();
                pieces(text, *deltas, |p| out.push(StreamEvent::TextDelta(p.to_owned())));
            }
            Block::Thinking { text, deltas, signature } => {
                if *deltas > 0 || signature.is_none() {
                    pieces(text, *deltas, |p| out.push(StreamEvent::ThinkingDelta(p.to_owned())));
                }
                if let Some(sig) = signature {
                    out.push(StreamEvent::ThinkingSignature(sig.clone()));
                }
            }
            Block::Tool { index, start, args, deltas } => {
                if let Some((id, name)) = start {
                    out.push(StreamEvent::ToolCallStart {
                        index: *index,
                        id: id.clone(),
                        name: name.clone(),
                    });
                }
                if *deltas > 0 || start.is_none() {
                    let index = *index;
                    pieces(args, *deltas, |p| {
                        out.push(StreamEvent::ToolCallArgs { index, json: p.to_owned() })
                    });
                }
            }
            Block::Unsupported(kind) => out.push(StreamEvent::Unsupported(kind.clone())),
        }
    }

    /// Usage of the delivered part: the latest usage the provider reported (the `Start`'s, i.e. the input tokens, or
    /// a delivered `Finish`'s), with `output_tokens` raised to an estimate from the delivered text and thinking,
    /// ceil(bytes / 4), when the report is lower (a report made at the start, like Anthropic's `output_tokens: 1`,
    /// does not count what followed it). A `Finish` that reports output tokens is the provider's final count and is
    /// kept as it is (a token is often more than 4 bytes). Input tokens the provider never reported are the estimate
    /// given, if any.
    pub fn usage(&self) -> Usage {
        let mut usage = self.finish.or(self.start.as_ref().map(|s| s.usage)).unwrap_or_default();
        if self.finish.is_none_or(|f| f.output_tokens == 0) {
            let bytes = self.text.len().saturating_add(self.thinking_bytes);
            let estimate = u64::try_from(bytes.div_ceil(4)).unwrap_or(u64::MAX);
            usage.output_tokens = usage.output_tokens.max(estimate);
        }
        if usage.input_tokens == 0 {
            usage.input_tokens = self.input_estimate;
        }
        usage
    }

    /// The input tokens to count for the delivered part when its provider reported none (OpenAI, Responses and
    /// Gemini streams report usage only at their end, which a broken stream never reaches).
    pub fn estimate_input(&mut self, tokens: u64) {
        self.input_estimate = tokens;
    }
}

/// The most deltas a block is replayed as: enough for the event numbering of any ordinary answer; a stream of
/// millions of one-byte deltas is replayed in fewer, larger pieces (its later sequence numbers then restart lower).
const MAX_REPLAYED_DELTAS: u32 = 4096;

/// `deltas` plus one if `t` is not empty (at most [`MAX_REPLAYED_DELTAS`]).
fn count(deltas: u32, t: &str) -> u32 {
    if t.is_empty() { deltas } else { deltas.saturating_add(1).min(MAX_REPLAYED_DELTAS) }
}

/// Give `text` to `emit` as `n` non-empty pieces (the first n-1 one char each), or whole when n ≤ 1.
fn pieces(text: &str, n: u32, mut emit: impl FnMut(&str)) {
    let mut rest = text;
    for _ in 1..n {
        let Some(c) = rest.chars().next() else { break };
        let (head, tail) = rest.split_at(c.len_utf8());
        if tail.is_empty() {
            break;
        }
        emit(head);
        rest = tail;
    }
    emit(rest);
}

/// Why a streamed answer cannot be continued on another target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unresumable {
    #[error("a tool call had already been sent to the client")]
    ToolCall,
    #[error("content nines cannot continue had already been sent to the client")]
    Unsupported,
    #[error("the answer was already complete")]
    Finished,
    #[error("the delivered answer is longer than nines keeps for a continuation (1 MiB)")]
    TooLong,
}

/// How a target is asked to continue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// The request with the delivered text appended as a final assistant message, which the model continues.
    Prefill,
    /// The request with the delivered text as an assistant message, then a user message with
    /// [`CONTINUE_INSTRUCTION`].
    Instruction,
}

/// The user message of the instruction form (the simulator recognises it by its first sentence).
pub const CONTINUE_INSTRUCTION: &str = "Your previous reply was cut off. Continue it from exactly where it stopped: do not repeat any of it and do not add anything before the continuation.";

/// The request that asks for a continuation of `t`: `req` with `stream = true` and the delivered text as an
/// assistant message (Prefill; trailing whitespace removed, which Anthropic refuses at the end of a final assistant
/// message), or as an assistant message followed by a user message with [`CONTINUE_INSTRUCTION`] (Instruction; the
/// text as delivered). When `req` already ends with an assistant message (the client's own prefill, which the answer
/// continues), the text is appended to it rather than sent as a second one. Delivered thinking is never sent: no
/// provider can continue another's reasoning. With no text delivered (only thinking or whitespace), only `stream`
/// changes.
pub fn continuation(req: &ChatRequest, t: &Transcript, form: Form) -> ChatRequest {
    let mut next = req.clone();
    next.stream = true;
    if t.text().trim().is_empty() {
        return next;
    }
    match form {
        Form::Prefill => append_assistant(&mut next.messages, t.text().trim_end()),
        Form::Instruction => {
            append_assistant(&mut next.messages, t.text());
            next.messages.push(Message::text(Role::User, CONTINUE_INSTRUCTION));
        }
    }
    next
}

/// Append `text` to the final assistant message, or as a new one.
fn append_assistant(messages: &mut Vec<Message>, text: &str) {
    match messages.last_mut() {
        Some(m) if m.role == Role::Assistant => match m.content.last_mut() {
            Some(Part::Text(last)) => last.push_str(text),
            _ => m.content.push(Part::Text(text.to_owned())),
        },
        _ => messages.push(Message::text(Role::Assistant, text)),
    }
}

/// Turns the continuation's canonical stream into the rest of the client's stream (see the module's overlap rule).
#[derive(Debug)]
pub struct Splicer {
    /// The delivered text's end, at most [`TAIL`] bytes.
    tail: String,
    /// The usage of the delivered part.
    delivered: Usage,
    /// The usage the continuation's `Start` reported.
    started: Usage,
    /// Continuation text held back while it could repeat the tail.
    held: String,
    /// The overlap is settled: text passes untouched.
    settled: bool,
    produced: bool,
}

impl Splicer {
    /// For a continuation of `t`: keeps the last 2 KiB of its text (on a char boundary) and its usage.
    pub fn new(t: &Transcript) -> Self {
        let text = t.text();
        let mut from = text.len().saturating_sub(TAIL);
        while !text.is_char_boundary(from) {
            from = from.saturating_add(1);
        }
        let tail = text.get(from..).unwrap_or_default().to_owned();
        Splicer {
            settled: tail.is_empty(),
            tail,
            delivered: t.usage(),
            started: Usage::default(),
            held: String::new(),
            produced: false,
        }
    }

    /// One event of the continuation → events for the client. `Start` is dropped (its usage kept for the total),
    /// reasoning is dropped (the client has this answer's reasoning already), text is trimmed of any repeat of what
    /// was delivered (possibly held back for that), and any other event first releases held text. `Finish` reports
    /// the delivered part's usage plus the continuation's (its `Finish` usage, or its `Start`'s when that is zero).
    pub fn push(&mut self, ev: StreamEvent, out: &mut Vec<StreamEvent>) {
        match ev {
            StreamEvent::Start { usage, .. } => self.started = usage,
            StreamEvent::ThinkingDelta(_) | StreamEvent::ThinkingSignature(_) => {}
            StreamEvent::TextDelta(t) => self.text(t, out),
            StreamEvent::Finish { stop_reason, usage } => {
                self.finish(out);
                let own = if usage == Usage::default() { self.started } else { usage };
                self.emit(StreamEvent::Finish { stop_reason, usage: add(self.delivered, own) }, out);
            }
            ev @ (StreamEvent::ToolCallStart { .. }
            | StreamEvent::ToolCallArgs { .. }
            | StreamEvent::Unsupported(_)) => {
                self.finish(out);
                self.emit(ev, out);
            }
        }
    }

    /// The continuation ended without `Finish`: release any held text so what was received is not lost.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.settled {
            self.settle(out);
        }
    }

    /// Whether any event has been produced for the client yet: a continuation that only repeated delivered text has
    /// given nothing.
    pub fn produced(&self) -> bool {
        self.produced
    }

    fn emit(&mut self, ev: StreamEvent, out: &mut Vec<StreamEvent>) {
        self.produced = true;
        out.push(ev);
    }

    fn text(&mut self, t: String, out: &mut Vec<StreamEvent>) {
        if self.settled {
            if !t.is_empty() {
                self.emit(StreamEvent::TextDelta(t), out);
            }
            return;
        }
        self.held.push_str(&t);
        if !self.may_repeat() {
            self.settle(out);
        }
    }

    /// Whether the held text could still be a repeat: the tail has it at its start, or starting at least
    /// [`MIN_OVERLAP`] bytes before its end (the leftmost occurrence decides: any later one is nearer the end).
    fn may_repeat(&self) -> bool {
        if self.held.len() > self.tail.len().saturating_add(SLACK) {
            return false;
        }
        self.tail
            .find(self.held.as_str())
            .is_some_and(|j| j == 0 || self.tail.len().saturating_sub(j) >= MIN_OVERLAP)
    }

    /// Drop the repeat from the held text, send the rest, and let all later text through.
    fn settle(&mut self, out: &mut Vec<StreamEvent>) {
        self.settled = true;
        let held = std::mem::take(&mut self.held);
        let rest = held.get(overlap(&self.tail, &held)..).unwrap_or_default();
        let rest = rest.get(repeated_space(&self.tail, rest)..).unwrap_or_default();
        if !rest.is_empty() {
            self.emit(StreamEvent::TextDelta(rest.to_owned()), out);
        }
    }
}

/// How many leading bytes of `c` repeat `d`: all of `d` when `c` starts with it, else the longest prefix of `c` of
/// at least [`MIN_OVERLAP`] bytes that `d` ends with, else 0.
fn overlap(d: &str, c: &str) -> usize {
    if c.starts_with(d) {
        return d.len();
    }
    let longest = c.len().min(d.len());
    (MIN_OVERLAP..=longest).rev().find(|&k| c.get(..k).is_some_and(|p| d.ends_with(p))).unwrap_or(0)
}

/// How many leading bytes of `c` are whitespace that `d`'s trailing whitespace already ends with: the longest
/// whitespace prefix of `c` that `d` ends with (a model continuing a prefill whose trailing space was trimmed sends
/// it again; a different whitespace, like an indent after a newline, is kept).
fn repeated_space(d: &str, c: &str) -> usize {
    let space = c.get(..c.len() - c.trim_start().len()).unwrap_or_default();
    let mut ends = space.char_indices().rev().map(|(i, ch)| i + ch.len_utf8());
    ends.find(|&e| space.get(..e).is_some_and(|p| d.ends_with(p))).unwrap_or(0)
}

/// `a + b`, field by field, saturating.
fn add(a: Usage, b: Usage) -> Usage {
    Usage {
        input_tokens: a.input_tokens.saturating_add(b.input_tokens),
        output_tokens: a.output_tokens.saturating_add(b.output_tokens),
        cache_read_tokens: a.cache_read_tokens.saturating_add(b.cache_read_tokens),
        cache_write_tokens: a.cache_write_tokens.saturating_add(b.cache_write_tokens),
        reasoning_tokens: a.reasoning_tokens.saturating_add(b.reasoning_tokens),
    }
}
