//! The attempt engine: one request, one deadline, a ledger of attempts. Targets are tried in order; a failure that
//! is the provider's fault moves on (after optional retries on the same target, with backoff and `Retry-After`),
//! a failure that is the client's fault returns at once.
//!
//! Every attempt emits one typed event through `record`. The engine never renders HTTP: it returns what happened.

pub mod attempt;
pub mod ledger;
pub mod ops;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use http::HeaderMap;
use nines_wire::{ChatRequest, Dialect, EncodeError};
use serde_json::value::RawValue;
use tokio::time::Instant;

pub use attempt::{Answer, Committed, Whole, WholeBody};
pub use ledger::{Attempt, Ledger, Outcome};

use crate::config::DispatchConfig;
use crate::provider::ProviderError;
use crate::record;
use crate::route::Target;

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
    pub ledger: Ledger,
    /// Parameters the serving target could not take and that were left out (for the warning header).
    pub dropped: Vec<String>,
}

/// A request body made for one target.
#[derive(Debug)]
pub struct Prepared {
    pub body: Bytes,
    /// The client's own bytes (same dialect): a 400 to them is the client's fault.
    pub passthrough: bool,
    pub dropped: Vec<String>,
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
    type Output;
    fn prepare(&self, target: &Target) -> Result<Prepared, Skip>;
    fn attempt(
        &self,
        target: &Target,
        prepared: &Prepared,
        deadline: Instant,
    ) -> impl std::future::Future<Output = Result<Self::Output, ProviderError>> + Send;
}

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
        let provider = &target.provider;
        if provider.dialect() == inbound.dialect {
            // Gemini names the model in the URL, never in the body.
            let body = if inbound.dialect == Dialect::Gemini {
                inbound.raw.clone()
            } else {
                with_model(&inbound.raw, &target.model)
                    .map_err(|e| Skip::Other(format!("cannot rewrite the body: {e}")))?
            };
            return Ok(Prepared { body, passthrough: true, dropped: Vec::new() });
        }
        let opts = provider.encode_opts(target.caps);
        let enc = provider
            .dialect()
            .encode_request(&inbound.request, &target.model, &opts)
            .map_err(Skip::Cannot)?;
        Ok(Prepared { body: Bytes::from(enc.body), passthrough: false, dropped: enc.dropped })
    }

    async fn attempt(
        &self,
        target: &Target,
        prepared: &Prepared,
        deadline: Instant,
    ) -> Result<Answer, ProviderError> {
        attempt::run(attempt::AttemptSpec {
            provider: &target.provider,
            model: &target.model,
            body: prepared.body.clone(),
            stream: self.inbound.request.stream,
            passthrough: prepared.passthrough,
            headers: &self.inbound.headers,
            attempt_deadline: deadline,
        })
        .await
    }
}

/// Why `target` cannot take this request at all, if it cannot (a capability it lacks).
fn lacks(target: &Target, req: &nines_wire::ChatRequest) -> Option<EncodeError> {
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
        why: format!("{} is declared without {what} support", target.label),
    })
}

#[derive(Debug)]
pub enum Failure {
    /// The request's own fault (a 400-class answer): not tried elsewhere.
    Client { error: ProviderError, target: Target, ledger: Ledger },
    /// No target could express the request (every one skipped, at least one for a field it cannot carry).
    Inexpressible { error: EncodeError, ledger: Ledger },
    /// Every target was tried (or skipped) and none answered.
    Exhausted { ledger: Ledger },
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

/// Try the targets in order until one answers, the request is found at fault, or the deadline passes.
pub async fn dispatch(
    inbound: &Inbound,
    targets: &Arc<[Target]>,
    cfg: &DispatchConfig,
) -> Result<Served, Failure> {
    run(&Chat { inbound }, targets, cfg).await
}

/// The attempt engine, for any [`Operation`].
pub async fn run<O: Operation>(
    op: &O,
    targets: &[Target],
    cfg: &DispatchConfig,
) -> Result<Served<O::Output>, Failure> {
    let mut ledger = Ledger::new(cfg.deadline);
    let mut inexpressible: Option<EncodeError> = None;

    'targets: for target in targets {
        let provider = &target.provider;
        let skip = |ledger: &mut Ledger, why: String| {
            ledger.attempts.push(Attempt {
                target: target.label.clone(),
                outcome: Outcome::Skipped(why),
                elapsed: Duration::ZERO,
            });
        };
        if let Some(why) = &provider.unusable {
            skip(&mut ledger, why.clone());
            continue;
        }
        let prepared = match op.prepare(target) {
            Ok(p) => p,
            Err(Skip::Cannot(e)) => {
                skip(&mut ledger, e.to_string());
                inexpressible.get_or_insert(e);
                continue;
            }
            Err(Skip::Other(why)) => {
                skip(&mut ledger, why);
                continue;
            }
        };

        let mut delays = ExponentialBuilder::default()
            .with_min_delay(cfg.backoff_base)
            .with_max_delay(cfg.backoff_max)
            .with_max_times(provider.config.retries as usize)
            .with_jitter()
            .build();
        loop {
            if ledger.remaining().is_zero() {
                break 'targets;
            }
            let began = Instant::now();
            let attempt_deadline = (began + provider.config.timeouts.request).min(ledger.deadline);
            let result = op.attempt(target, &prepared, attempt_deadline).await;
            let elapsed = began.elapsed();
            match result {
                Ok(answer) => {
                    ledger.attempts.push(Attempt {
                        target: target.label.clone(),
                        outcome: Outcome::Served,
                        elapsed,
                    });
                    return Ok(Served { answer, target: target.clone(), ledger, dropped: prepared.dropped });
                }
                // A 400 to the client's own bytes is the client's; a 400 to a body we translated may be ours (a
                // field this model will not take), so only the former returns at once.
                Err(error) if !error.failover() && prepared.passthrough => {
                    record::AttemptFailed {
                        target: &target.label,
                        error: &error,
                        elapsed,
                        will_failover: false,
                    }
                    .emit();
                    return Err(Failure::Client { error, target: target.clone(), ledger });
                }
                Err(error) => {
                    record::AttemptFailed {
                        target: &target.label,
                        error: &error,
                        elapsed,
                        will_failover: true,
                    }
                    .emit();
                    let retry = error.retry_same_target();
                    let retry_after = error.retry_after;
                    ledger.attempts.push(Attempt {
                        target: target.label.clone(),
                        outcome: Outcome::Failed(error),
                        elapsed,
                    });
                    let Some(backoff) = delays.next().filter(|_| retry) else { break };
                    // Honour Retry-After when the provider gives one, unless it is longer than we are willing to
                    // wait: then the next target is the better bet.
                    let wait = match retry_after {
                        Some(ra) if ra > cfg.retry_after_cap => break,
                        Some(ra) => ra,
                        None => backoff,
                    };
                    if wait >= ledger.remaining() {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    match inexpressible {
        Some(error) if ledger.sent() == 0 => Err(Failure::Inexpressible { error, ledger }),
        _ => Err(Failure::Exhausted { ledger }),
    }
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
