//! The attempt engine: one [`Flight`], its targets tried in the order the policy gives, each only when the policy
//! admits it, until one answers, the request is found at fault, or the deadline passes. A failure that is the
//! provider's fault moves on (or, when the policy says it is worth it, retries the same target); a failure that is
//! the client's fault returns at once; a context window exceeded moves on only to a larger model.
//!
//! Every step is an event on the flight, which hands it to the recorder. Policy is asked at the seam between
//! attempts ([`policy`]), never written inline here. The engine never renders HTTP: it returns what happened.

pub mod attempt;
pub mod deliver;
pub mod flight;
pub mod hedge;
pub mod ops;
pub mod policy;
pub mod probe;
pub mod resume;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use nines_wire::{ChatRequest, Dialect, EncodeError};
use serde_json::value::RawValue;
use tokio::time::Instant;

pub use attempt::{Answer, Committed, Whole, WholeBody};
pub use flight::{EventKind, Flight};

use crate::health::ratelimit::{Need, RateLimits};
use crate::health::{Admit, InFlight, Role, TimedOut, Unavailable};
use crate::provider::{ErrorKind, ProviderError};
use crate::route::Target;
use flight::Skip as SkipWhy;
use flight::Tokens;
use nines_wire::resume::Form;
use policy::{AfterFailure, Policy};

/// A request as the front door hands it over.
#[derive(Debug)]
pub struct Inbound {
    pub dialect: Dialect,
    /// The client's body, untouched: sent on (with only `model` replaced) to targets of the same dialect.
    pub raw: Bytes,
    pub request: ChatRequest,
    /// Client headers a same-dialect provider should see (`anthropic-version`, `anthropic-beta`).
    pub headers: HeaderMap,
}

#[derive(Debug)]
pub struct Served<T = Answer> {
    pub answer: T,
    pub target: Target,
    /// The serving target's index in the flight's plan.
    pub index: usize,
    /// Parameters the serving target could not take and that were left out (for the warning header).
    pub dropped: Vec<String>,
    /// Counts the request in flight on its target until the answer is delivered.
    pub in_flight: InFlight,
    /// For a continuation: how it was asked.
    pub continuation: Option<Form>,
}

/// What one attempt is held to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// When the attempt must be over (its `request` timeout, within the request's deadline).
    pub deadline: Instant,
    /// How long its first token (a stream's first content event; a plain answer's whole body) may take.
    pub first_token: Duration,
}

/// A request body made for one target.
#[derive(Debug)]
pub struct Prepared {
    pub body: Bytes,
    /// The client's own bytes (same dialect): a 400 to them is the client's fault.
    pub passthrough: bool,
    pub dropped: Vec<String>,
    /// For a continuation of a broken stream: how it asks.
    pub continuation: Option<Form>,
}

/// Why a target is not tried.
#[derive(Debug)]
pub enum Skip {
    /// It cannot carry the request (a capability or field it lacks): a 400 if no target can.
    Cannot(EncodeError),
    /// Anything else (no body could be made for it).
    Other(String),
}

/// One kind of upstream call (chat, embeddings, token counting): how to make a body for a target, and how to run
/// one attempt with it. The engine does everything else: order, skips, retries, backoff, deadline, ledger.
pub trait Operation {
    type Output: Outcome;
    fn prepare(&self, target: &Target) -> Result<Prepared, Skip>;
    fn attempt(
        &self,
        target: &Target,
        prepared: &Prepared,
        limits: Limits,
    ) -> impl std::future::Future<Output = Result<Self::Output, ProviderError>> + Send;
    /// Another body for the same target, to send at once when it refused `prepared` with `error` (a continuation
    /// whose prefill was refused is asked again with an instruction).
    fn instead(&self, _target: &Target, _prepared: &Prepared, _error: &ProviderError) -> Option<Prepared> {
        None
    }
    /// What the request will spend of a target's rate limits.
    fn need(&self) -> Need {
        Need::default()
    }
    /// Whether its outcomes speak for a target's health (token counting, sent to a chat target's name, does
    /// not).
    fn judges_health(&self) -> bool {
        true
    }
}

/// What the engine reads of an attempt's answer.
pub trait Outcome {
    /// The rate limits the provider announced with it.
    fn limits(&mut self) -> Option<Box<RateLimits>> {
        None
    }
    /// Whether the answer is already complete at its commit point (whole bodies; streams that ended early).
    fn complete(&self) -> bool {
        true
    }
    /// The tokens a complete answer reports.
    fn tokens(&self) -> Option<Tokens> {
        None
    }
}

impl Outcome for Bytes {}

struct Chat<'a> {
    inbound: &'a Inbound,
}

impl Operation for Chat<'_> {
    type Output = Answer;

    fn prepare(&self, target: &Target) -> Result<Prepared, Skip> {
        let inbound = self.inbound;
        if let Some(e) = lacks(target, &inbound.request) {
            return Err(Skip::Cannot(e));
        }
        if target.provider.dialect() == inbound.dialect {
            // Gemini names the model in the URL, never in the body.
            let body = if inbound.dialect == Dialect::Gemini {
                inbound.raw.clone()
            } else {
                with_model(&inbound.raw, &target.model)
                    .map_err(|e| Skip::Other(format!("cannot rewrite the body: {e}")))?
            };
            return Ok(Prepared { body, passthrough: true, dropped: Vec::new(), continuation: None });
        }
        translated(target, &inbound.request, None)
    }

    async fn attempt(
        &self,
        target: &Target,
        prepared: &Prepared,
        limits: Limits,
    ) -> Result<Answer, ProviderError> {
        chat_attempt(target, prepared, self.inbound.request.stream, &self.inbound.headers, limits).await
    }

    fn need(&self) -> Need {
        Need {
            input_tokens: estimate_input(&self.inbound.request),
            output_tokens: u64::from(self.inbound.request.max_tokens.unwrap_or(0)),
        }
    }
}

/// `request` encoded for `target`'s dialect (`continuation`: how it asks to continue a broken stream, if it does).
pub(crate) fn translated(
    target: &Target,
    request: &ChatRequest,
    continuation: Option<Form>,
) -> Result<Prepared, Skip> {
    let provider = &target.provider;
    let opts = provider.encode_opts(target.caps);
    let enc = provider.dialect().encode_request(request, &target.model, &opts).map_err(Skip::Cannot)?;
    Ok(Prepared { body: Bytes::from(enc.body), passthrough: false, dropped: enc.dropped, continuation })
}

/// One chat attempt of `prepared` on `target`, read to its commit point.
pub(crate) async fn chat_attempt(
    target: &Target,
    prepared: &Prepared,
    stream: bool,
    headers: &HeaderMap,
    limits: Limits,
) -> Result<Answer, ProviderError> {
    attempt::run(attempt::AttemptSpec {
        provider: &target.provider,
        model: &target.model,
        body: prepared.body.clone(),
        stream,
        passthrough: prepared.passthrough,
        headers,
        limits,
    })
    .await
}

/// Input tokens, roughly: four bytes of text a token, an image a thousand. Lengths only, no scan of the text
/// (images are not counted by their base64 size).
pub(crate) fn estimate_input(req: &ChatRequest) -> u64 {
    input_size(req, |t| t.len() as u64, 4000) / 4
}

/// What a request gives the model to read: each text (system, messages, tool calls, the text of tool results,
/// thinking, tool names and descriptions) measured by `text`, each image counted as `image`. Token estimates are
/// made of it (the rate-limit need here, an estimated token count at the door).
pub fn input_size(req: &ChatRequest, text: impl Fn(&str) -> u64, image: u64) -> u64 {
    use nines_wire::Part;
    let part = |p: &Part| match p {
        Part::Text(t) => text(t),
        Part::ToolCall(c) => text(&c.name) + text(&c.arguments),
        Part::ToolResult(r) => {
            r.content.iter().map(|c| if let Part::Text(t) = c { text(t) } else { 0 }).sum()
        }
        Part::Thinking(t) => text(&t.text),
        Part::Image(_) => image,
        Part::Unsupported(_) => 0,
    };
    req.system.iter().map(|s| text(s)).sum::<u64>()
        + req.messages.iter().flat_map(|m| &m.content).map(part).sum::<u64>()
        + req.tools.iter().map(|t| text(&t.name) + t.description.as_deref().map_or(0, &text)).sum::<u64>()
}

impl Outcome for Answer {
    fn limits(&mut self) -> Option<Box<RateLimits>> {
        match self {
            Answer::Whole(w) => w.limits.take(),
            Answer::Stream(c) => c.limits.take(),
        }
    }

    /// A stream's end, even one that came with its first event, is reported by its delivery (`respond`).
    fn complete(&self) -> bool {
        matches!(self, Answer::Whole(_))
    }

    fn tokens(&self) -> Option<Tokens> {
        match self {
            Answer::Whole(w) => match &w.body {
                WholeBody::Raw(_, usage) => usage.as_ref().map(Tokens::from),
                WholeBody::Decoded(r) => Some(Tokens::from(&r.usage)),
            },
            Answer::Stream(_) => None,
        }
    }
}

/// Why `target` cannot take this request at all, if it cannot (a capability it lacks).
pub(crate) fn lacks(target: &Target, req: &nines_wire::ChatRequest) -> Option<EncodeError> {
    if target.provider.config.kind == crate::config::ProviderKind::LocalEmbeddings {
        return Some(EncodeError {
            field: "model".to_owned(),
            target: target.provider.dialect(),
            why: format!("{} is an embedding model: it does not chat", target.label()),
        });
    }
    let (field, what) = if !target.caps.images && req.has_images() {
        ("images", "images")
    } else if !target.caps.tools && !req.tools.is_empty() {
        ("tools", "tools")
    } else {
        return None;
    };
    Some(EncodeError {
        field: field.to_owned(),
        target: target.provider.dialect(),
        why: format!("{} is declared without {what} support", target.label()),
    })
}

#[derive(Debug)]
pub enum Failure {
    /// The request's own fault (a 400-class answer): not tried elsewhere.
    Client { error: ProviderError, target: Target },
    /// No target could express the request (every one skipped, at least one for a field it cannot carry).
    Inexpressible { error: EncodeError },
    /// Every target was tried (or skipped) and none answered: the flight's log says why.
    Exhausted,
}

/// Replace `model` in a JSON object body, keeping every other byte as the client wrote it: the new value is spliced
/// over the old one (or, when there is none, put first), so nothing else is parsed into memory or re-serialised.
pub fn with_model(raw: &[u8], model: &str) -> Result<Bytes, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct ModelOnly<'a> {
        // Present even when `null` (an `Option` alone would read `null` as absent).
        #[serde(borrow, default, deserialize_with = "present")]
        model: Option<&'a RawValue>,
    }
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
        serde::Deserialize::deserialize(d).map(Some)
    }
    let model_json = serde_json::to_vec(model)?;
    let open = raw.iter().position(|b| !b.is_ascii_whitespace());
    let parsed = match open {
        // Only an object: serde would also read a struct from an array.
        Some(i) if raw[i] == b'{' => serde_json::from_slice::<ModelOnly<'_>>(raw).ok(),
        _ => None,
    };
    let Some(parsed) = parsed else { return with_model_rebuilt(raw, model) };
    let mut out = Vec::with_capacity(raw.len() + model_json.len() + 10);
    match parsed.model {
        Some(old) => {
            // The old value's place in `raw`: RawValue borrows its bytes straight from the input.
            let start = (old.get().as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
            let end = start.wrapping_add(old.get().len());
            let (Some(before), Some(after)) = (raw.get(..start), raw.get(end..)) else {
                return with_model_rebuilt(raw, model);
            };
            out.extend_from_slice(before);
            out.extend_from_slice(&model_json);
            out.extend_from_slice(after);
        }
        None => {
            let brace = open.unwrap_or(0);
            let rest = &raw[brace + 1..];
            let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
            out.extend_from_slice(&raw[..=brace]);
            out.extend_from_slice(b"\"model\":");
            out.extend_from_slice(&model_json);
            if !empty {
                out.push(b',');
            }
            out.extend_from_slice(rest);
        }
    }
    Ok(Bytes::from(out))
}

/// [`with_model`] for what the splice does not take (a repeated `model` key): the top level rebuilt, last key wins.
fn with_model_rebuilt(raw: &[u8], model: &str) -> Result<Bytes, serde_json::Error> {
    let mut map: BTreeMap<&str, &RawValue> = serde_json::from_slice(raw)?;
    let model_raw = RawValue::from_string(serde_json::to_string(model)?)?;
    map.insert("model", &model_raw);
    Ok(Bytes::from(serde_json::to_vec(&map)?))
}

/// Dispatch a chat request on its flight.
pub async fn dispatch(inbound: &Inbound, flight: &mut Flight) -> Result<Served, Failure> {
    run(&Chat { inbound }, flight).await
}

/// A target said the request exceeds its context window: from then on only targets declared larger are tried,
/// and never the same model again (the same request is never resent unchanged to the same model).
struct ContextLimit {
    model: String,
    window: Option<u64>,
    error: ProviderError,
    target: Target,
    /// Attempts sent when it was learnt: if none is sent after, the client gets this error as it came.
    sent: usize,
}

impl ContextLimit {
    fn allows(&self, t: &Target) -> bool {
        t.model != self.model && t.context_window.is_some_and(|w| self.window.is_none_or(|f| w > f))
    }
}

/// How trying one target ended.
enum Tried<T> {
    Served(Served<T>),
    /// The client's own fault: returned as it is.
    Client(ProviderError),
    /// The request exceeds this model's context window.
    Context(ProviderError),
    Failed,
    Deadline,
}

/// The attempt engine, for any [`Operation`], on `flight`.
pub async fn run<O: Operation>(op: &O, flight: &mut Flight) -> Result<Served<O::Output>, Failure> {
    let snap = flight.snap.clone();
    let policy = Policy { health: &snap.config.health, dispatch: &snap.config.dispatch };
    flight.judges_health = op.judges_health();
    let plan = flight.plan.clone();
    let need = op.need();
    let mut order = Vec::with_capacity(plan.targets.len());
    policy.order(&plan, &mut order);
    let mut inexpressible: Option<EncodeError> = None;
    let mut unavailable: Vec<(usize, Unavailable)> = Vec::new();
    let mut context: Option<ContextLimit> = None;
    // Targets already put back once by the slow start (a bit each; routes have far fewer than 64 targets).
    let mut deferred = 0u64;
    // Targets already started as hedges.
    let mut hedged = 0u64;
    let mut pos = 0;
    while let Some(&i) = order.get(pos) {
        let Some(target) = plan.targets.get(i) else { break };
        let bit = flight::bit(i);
        if hedged & bit != 0 {
            pos += 1;
            continue;
        }
        let skip = |flight: &mut Flight, why: SkipWhy| flight.emit(EventKind::Skipped { target: i, why });
        if flight.excluded(i) {
            skip(flight, SkipWhy::Broke);
            pos += 1;
            continue;
        }
        if let Some(why) = &target.provider.unusable {
            skip(flight, SkipWhy::Unusable(why.clone()));
            pos += 1;
            continue;
        }
        if context.as_ref().is_some_and(|c| !c.allows(target)) {
            skip(flight, SkipWhy::ContextWindow);
            pos += 1;
            continue;
        }
        // Health first: a target set aside costs no encoding.
        let role = match policy.admit(target, need) {
            // An operation that does not judge health must not hold the breaker's one trial.
            Admit::Go { role: Role::Trial(e) } if !flight.judges_health => {
                target.health.release_trial(e);
                Role::Normal
            }
            Admit::Go { role } => role,
            Admit::Defer if pos + 1 < order.len() && deferred & bit == 0 => {
                deferred |= bit;
                order.swap(pos, pos + 1);
                continue;
            }
            Admit::Defer => Role::Normal,
            Admit::Skip(u) => {
                skip(flight, SkipWhy::Unavailable(u));
                unavailable.push((i, u));
                pos += 1;
                continue;
            }
        };
        let prepared = match op.prepare(target) {
            Ok(p) => p,
            Err(why) => {
                if let Role::Trial(e) = role {
                    target.health.release_trial(e);
                }
                match why {
                    Skip::Cannot(e) => {
                        skip(flight, SkipWhy::Cannot(e.to_string()));
                        inexpressible.get_or_insert(e);
                    }
                    Skip::Other(why) => skip(flight, SkipWhy::Cannot(why)),
                }
                pos += 1;
                continue;
            }
        };
        // Room at the target: at once, or after a wait as long as the request's priority allows (never past its
        // deadline); none in time and it is passed by, shed from this target.
        let (permit, waited) = match enter_gate(flight, target).await {
            Ok(p) => p,
            Err(full) => {
                if let Role::Trial(e) = role {
                    target.health.release_trial(e);
                }
                skip(flight, SkipWhy::Unavailable(full));
                pos += 1;
                continue;
            }
        };
        // A wait at the gate is time in which the target's health may have changed (the request that held its room
        // may have opened its breaker): a target set aside meanwhile is passed by. (Asked without spending: the
        // admission above already counted this request against the target's headroom.)
        if waited
            && matches!(role, Role::Normal)
            && let Some(u) = policy.set_aside(target)
        {
            drop(permit);
            skip(flight, SkipWhy::Unavailable(u));
            unavailable.push((i, u));
            pos += 1;
            continue;
        }
        let hedging = plan.streams.hedge.filter(|_| flight.stream).map(|hedge| hedge::Hedging {
            hedge,
            rest: order.get(pos + 1..).unwrap_or(&[]),
            targets: &plan.targets,
            need,
            started: &mut hedged,
        });
        match attempts(op, flight, &policy, (target, permit), i, prepared, role, hedging).await {
            Tried::Served(s) => return Ok(s),
            Tried::Client(error) => return Err(Failure::Client { error, target: target.clone() }),
            Tried::Context(error) => {
                let sent = flight.sent();
                let (model, window) = (target.model.clone(), target.context_window);
                context = Some(ContextLimit { model, window, error, target: target.clone(), sent });
            }
            Tried::Failed => {}
            Tried::Deadline => break,
        }
        pos += 1;
    }

    // Every target was unavailable and nothing was sent: rather than refusing, try the one most likely to have
    // recovered, as its breaker's one trial (a target whose trial is already in flight is not sent more).
    if flight.sent() == 0 && !flight.remaining().is_zero() && flight.judges_health {
        for i in policy.last_resort(&unavailable) {
            let Some(target) = plan.targets.get(i) else { continue };
            let Ok(prepared) = op.prepare(target) else { continue };
            let Some(role) = target.health.force(Instant::now(), need) else { continue };
            let permit = target.health.gate.try_enter(cap(target));
            match attempts(op, flight, &policy, (target, permit), i, prepared, role, None).await {
                Tried::Served(s) => return Ok(s),
                Tried::Client(error) | Tried::Context(error) => {
                    return Err(Failure::Client { error, target: target.clone() });
                }
                Tried::Failed | Tried::Deadline => {}
            }
            break;
        }
    }

    if let Some(c) = context
        && flight.sent() == c.sent
    {
        return Err(Failure::Client { error: c.error, target: c.target });
    }
    match inexpressible {
        Some(error) if flight.sent() == 0 => Err(Failure::Inexpressible { error }),
        _ => Err(Failure::Exhausted),
    }
}

/// The most requests a target's provider takes at once (its declared `max_concurrency`).
pub(super) fn cap(target: &Target) -> u32 {
    target.provider.config.max_concurrency.unwrap_or(crate::health::gate::UNDECLARED)
}

/// Room at `target`'s gate for this flight: now, or within its priority's wait and its deadline.
async fn enter_gate(
    flight: &Flight,
    target: &Target,
) -> Result<(Option<crate::health::gate::Permit>, bool), Unavailable> {
    let gate = &target.health.gate;
    let cap = cap(target);
    if let Some(p) = gate.try_enter(cap) {
        return Ok((Some(p), false));
    }
    let priority = flight.admitted.priority;
    let wait = flight.snap.config.protect.server.queue.get(priority as usize).copied().unwrap_or_default();
    match gate.enter(cap, priority, wait, flight.deadline).await {
        Ok(p) => Ok((Some(p), true)),
        Err(_) => Err(Unavailable::Full { until: Instant::now() + std::time::Duration::from_secs(1) }),
    }
}

/// Try one target: its attempt (hedged when the route says so), and its retries while the policy says they are
/// worth it. The room it holds at the target's gate (`permit`) goes with a served answer to its last byte.
#[allow(clippy::too_many_arguments)]
async fn attempts<O: Operation>(
    op: &O,
    flight: &mut Flight,
    policy: &Policy<'_>,
    (target, mut permit): (&Target, Option<crate::health::gate::Permit>),
    i: usize,
    mut prepared: Prepared,
    mut role: Role,
    mut hedging: Option<hedge::Hedging<'_>>,
) -> Tried<O::Output> {
    let mut tries = 0u32;
    let mut instead_used = false;
    loop {
        if flight.remaining().is_zero() {
            if let Role::Trial(e) = role {
                target.health.release_trial(e);
            }
            return Tried::Deadline;
        }
        tries += 1;
        flight.emit(EventKind::Started { target: i, attempt: tries, role });
        let mut in_flight = target.health.fly();
        let began = Instant::now();
        let limits = policy.limits(target, flight.stream, flight.deadline);
        let first_token = limits.first_token;
        let result = match hedging.take() {
            Some(h) if tries == 1 && role == Role::Normal => {
                // Boxed: a race holds two attempts, and would double the size of every request's future.
                match Box::pin(hedge::race(op, flight, policy, (i, target, &prepared), limits, began, h))
                    .await
                {
                    hedge::Raced::Alone(r) => r,
                    hedge::Raced::Won(served) => return Tried::Served(served),
                }
            }
            _ => op.attempt(target, &prepared, limits).await,
        };
        let elapsed = began.elapsed();
        let mut error = match result {
            Ok(mut answer) => {
                let limits = answer.limits();
                flight.emit(EventKind::Committed { target: i, role, elapsed, limits });
                if answer.complete() {
                    let tokens = answer.tokens();
                    flight.emit(EventKind::Succeeded { target: i, role, elapsed, max_gap: None, tokens });
                }
                in_flight.1 = permit.take();
                return Tried::Served(Served {
                    answer,
                    target: target.clone(),
                    index: i,
                    dropped: prepared.dropped,
                    in_flight,
                    continuation: prepared.continuation,
                });
            }
            Err(error) => error,
        };
        drop(in_flight);
        record_failure(flight, target, i, role, &mut error, began, first_token);
        // A 400 to the client's own bytes is the client's; a 400 to a body we translated may be ours (a field this
        // model will not take), so only the former returns at once.
        if error.kind == ErrorKind::ContextLength {
            return Tried::Context(error);
        }
        if !instead_used && let Some(other) = op.instead(target, &prepared, &error) {
            instead_used = true;
            prepared = other;
            role = Role::Normal;
            continue;
        }
        if !error.failover() && prepared.passthrough {
            return Tried::Client(error);
        }
        // A trial is never retried: its verdict (or release) is in; the next request may be the next trial.
        if matches!(role, Role::Trial(_)) {
            return Tried::Failed;
        }
        match policy.after_failure(target, &error, tries, flight.remaining()) {
            AfterFailure::Retry(wait) => {
                flight.emit(EventKind::Waited { target: i, wait });
                tokio::time::sleep(wait).await;
                role = Role::Normal;
            }
            AfterFailure::MoveOn => return Tried::Failed,
        }
    }
}

/// An attempt on `target` (index `i`), begun at `began` with `first_token` to its first token, failed before its
/// commit point: the event, with whether its own first-token limit (not the request's deadline) ended it.
pub(super) fn record_failure(
    flight: &mut Flight,
    target: &Target,
    i: usize,
    role: Role,
    error: &mut ProviderError,
    began: Instant,
    first_token: Duration,
) {
    // The provider's own key never goes further than here, whatever it echoed: not to the log, not to the client.
    error.hide_secret(target.provider.secret());
    let elapsed = began.elapsed();
    let cap = target.provider.config.timeouts.first_byte;
    let limit_fired = began.checked_add(first_token).is_some_and(|t| t <= flight.deadline);
    let timed_out = (error.silent && elapsed >= first_token && limit_fired)
        .then_some(TimedOut { limit: first_token, learnt: flight.stream && first_token < cap });
    let deadline_cut =
        error.kind == ErrorKind::Timeout && timed_out.is_none() && flight.remaining().is_zero();
    flight.emit(EventKind::Failed {
        target: i,
        role,
        error: Box::new(error.detached()),
        elapsed,
        timed_out,
        deadline_cut,
        after_commit: false,
    });
}

#[cfg(test)]
mod tests {
    use super::with_model;

    fn replaced(raw: &str, model: &str) -> String {
        String::from_utf8(with_model(raw.as_bytes(), model).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn model_is_replaced_in_place_and_every_other_byte_kept() {
        let raw = r#" {"z": 1, "model" :  "chat", "messages":[{"model":"inner"}], "a":"\"model\""} "#;
        assert_eq!(
            replaced(raw, "gpt-x"),
            r#" {"z": 1, "model" :  "gpt-x", "messages":[{"model":"inner"}], "a":"\"model\""} "#
        );
    }

    #[test]
    fn a_model_name_is_escaped_as_json() {
        let out = replaced(r#"{"model":"a"}"#, "we\"ird\\");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["model"], "we\"ird\\");
    }

    #[test]
    fn a_missing_model_is_added_first() {
        assert_eq!(replaced(r#"{"input":"x"}"#, "m"), r#"{"model":"m","input":"x"}"#);
        assert_eq!(replaced("{ }", "m"), r#"{"model":"m" }"#);
        assert_eq!(replaced(r#"{"model":null}"#, "m"), r#"{"model":"m"}"#);
    }

    #[test]
    fn an_escaped_key_still_names_the_model() {
        let out = replaced(r#"{"mod\u0065l":"a","b":2}"#, "m");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["model"], "m");
        assert_eq!(v["b"], 2);
    }

    #[test]
    fn a_repeated_model_key_is_rebuilt_with_one_model() {
        let out = replaced(r#"{"model":"a","model":"b","c":1}"#, "m");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v, serde_json::json!({"model": "m", "c": 1}));
    }

    #[test]
    fn what_is_not_an_object_is_an_error() {
        assert!(with_model(b"[\"model\"]", "m").is_err());
        assert!(with_model(b"{\"model\":", "m").is_err());
    }
}
