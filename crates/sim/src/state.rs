//! The simulator's shared state: who it is, its fault queue, its rate limit and the window in progress, whether it
//! refuses assistant prefill, and what it has received (hits, last bodies and headers per path).
//!
//! Everything sits behind one `std::sync::Mutex` that is only ever held for a few map operations: it is never held
//! across an `.await`, and this module never does I/O (it reads `tokio::time::Instant::now()` for the rate-limit
//! window).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use http::HeaderMap;
use serde_json::Value;

use crate::faults::{Fault, FaultKind, FaultQueue};
use crate::ratelimit::{self, Admission, Limiter, RateLimit};

/// What a model request meets on arrival.
#[derive(Debug)]
pub(crate) struct Arrival {
    /// The fault it suffers, if any.
    pub fault: Option<FaultKind>,
    /// What the rate limit says (`Unlimited` when it has a fault, is not a chat request, or no limit is set).
    pub admission: Admission,
    /// The simulator refuses a conversation that ends with an assistant message.
    pub refuse_prefill: bool,
}

/// State shared by every connection of one simulator.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The simulator's name, used in every answer.
    pub name: String,
    /// The API key every model request must carry, when set.
    pub api_key: Option<String>,
    inner: Mutex<Inner>,
    /// Chat requests being served now, and the most ever at once (for [`crate::Sim::set_capacity`]).
    pub(crate) busy: std::sync::atomic::AtomicUsize,
    pub(crate) peak: std::sync::atomic::AtomicUsize,
}

/// How much the simulator can serve: at most `concurrent` chat requests at once, each taking `latency_ms` before
/// its answer; one more is refused at once with the provider's "overloaded" error (Anthropic's 529, a 503
/// elsewhere), as a provider past its capacity does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    pub concurrent: usize,
    pub latency_ms: u64,
}

#[derive(Debug, Default)]
struct Inner {
    faults: FaultQueue,
    limiter: Option<Limiter>,
    capacity: Option<Capacity>,
    refuse_prefill: bool,
    total: u64,
    hits: BTreeMap<String, u64>,
    bodies: HashMap<String, Value>,
    headers: HashMap<String, HeaderMap>,
}

impl Shared {
    pub(crate) fn new(name: String, api_key: Option<String>) -> Self {
        Self {
            name,
            api_key,
            inner: Mutex::new(Inner::default()),
            busy: std::sync::atomic::AtomicUsize::new(0),
            peak: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave these maps half-updated in a way that matters to a test tool.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Count a model request on `path`, remember its headers and (JSON) body, take the fault it must suffer and,
    /// when it has none and is `limited` (a chat request), admit it against the rate limit or refuse it. One lock for
    /// all of it, so that concurrent requests take faults and quota in the order they are counted.
    pub(crate) fn arrive(&self, path: &str, headers: &HeaderMap, body: &[u8], limited: bool) -> Arrival {
        let json = serde_json::from_slice::<Value>(body).ok();
        let cost = ratelimit::cost(body, json.as_ref());
        // The model asked for: the body's `model`, or Gemini's path (`…/models/{model}:generateContent`).
        let model =
            json.as_ref().and_then(|j| j.get("model")).and_then(Value::as_str).map(str::to_owned).or_else(
                || path.split("models/").nth(1).and_then(|rest| rest.split(':').next()).map(str::to_owned),
            );
        let mut inner = self.lock();
        inner.total += 1;
        *inner.hits.entry(path.to_owned()).or_insert(0) += 1;
        inner.headers.insert(path.to_owned(), headers.clone());
        if let Some(json) = json {
            inner.bodies.insert(path.to_owned(), json);
        }
        let fault = inner.faults.take(model.as_deref());
        let admission = match (&fault, &mut inner.limiter) {
            (None, Some(limiter)) if limited => limiter.admit(cost, tokio::time::Instant::now()),
            _ => Admission::Unlimited,
        };
        Arrival { fault, admission, refuse_prefill: inner.refuse_prefill }
    }

    pub(crate) fn set_capacity(&self, capacity: Option<Capacity>) {
        self.lock().capacity = capacity;
    }

    pub(crate) fn capacity(&self) -> Option<Capacity> {
        self.lock().capacity
    }

    /// Refuse (or accept again) conversations that end with an assistant message.
    pub(crate) fn set_refuse_prefill(&self, refuse: bool) {
        self.lock().refuse_prefill = refuse;
    }

    pub(crate) fn refuse_prefill(&self) -> bool {
        self.lock().refuse_prefill
    }

    /// Set or clear the rate limit; a new limit starts with no window in progress.
    pub(crate) fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.lock().limiter = limit.map(Limiter::new);
    }

    pub(crate) fn push_fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub(crate) fn pending_faults(&self) -> Vec<Fault> {
        self.lock().faults.pending()
    }

    pub(crate) fn hits(&self, path: &str) -> u64 {
        self.lock().hits.get(path).copied().unwrap_or(0)
    }

    pub(crate) fn total_hits(&self) -> u64 {
        self.lock().total
    }

    /// Every path hit so far with its count, in path order.
    pub(crate) fn all_hits(&self) -> BTreeMap<String, u64> {
        self.lock().hits.clone()
    }

    pub(crate) fn last_request(&self, path: &str) -> Option<Value> {
        self.lock().bodies.get(path).cloned()
    }

    pub(crate) fn last_headers(&self, path: &str) -> Option<HeaderMap> {
        self.lock().headers.get(path).cloned()
    }

    /// Forget faults, the rate limit, the prefill refusal, hits and recorded requests.
    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        *inner = Inner::default();
    }
}
