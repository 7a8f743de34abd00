//! nines-sim: simulated LLM providers for the gateway's tests, demo and game days.
//!
//! One [`Sim`] is one HTTP server that speaks all three real wire formats at once: the Anthropic Messages API
//! (`POST /v1/messages`), OpenAI Chat Completions (`POST /v1/chat/completions`) and Responses (`POST /v1/responses`,
//! stateless: what points at a stored response or item is refused as not found) and Gemini
//! (`POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent`). It validates requests as strictly
//! as the real APIs (a malformed request gets a 400 in that provider's error shape), answers deterministically and
//! identically in every dialect (`"{name} says: {last user text}"`; tool calls when tools are offered; `"{name}
//! says: tool said: …"` after tool results; ` [images: N]`; `{"answer":…}` in JSON mode; thinking blocks, thought
//! parts or reasoning tokens when asked for), and suffers scripted [`Fault`]s in FIFO order: an error status in the
//! provider's shape (`status`), the provider's context-length 400 (`context_length`), no answer (`hang`), a TCP reset
//! (`reset`), a body cut short (`cut`), a body that is not JSON (`garbage`), a wait before the headers (`delay`),
//! a wait between stream events (`drip`), a pause after the first stream events (`stall`: a slow first token), a
//! stream event that is not JSON (`malformed`), the provider's in-band error event mid-stream (`in_band_error`), or
//! a continuation that first repeats the end of what it continues (`repeat`).
//!
//! It answers continuations as a model that continues would: a request whose conversation ends with an assistant
//! message that has text and no tool calls (a prefill), or with such an assistant message followed by a user message
//! starting `Your previous reply was cut off.` (an instruction), gets the answer to the conversation before them
//! minus its first words(assistant text) words, one delta per word as usual (an empty answer when nothing is left).
//! [`Sim::set_refuse_prefill`] makes it refuse a conversation that ends with an assistant message, as models without
//! prefill support do.
//!
//! A [`RateLimit`] (requests and tokens per fixed window, [`Sim::set_rate_limit`]) makes it report its quota on
//! every chat answer in the provider's own headers (Anthropic's `anthropic-ratelimit-*`, OpenAI's `x-ratelimit-*`;
//! Google sends none) and refuse what goes over it with the provider's 429 and `retry-after`. A queued fault comes
//! first: a request that gets one is not counted against the limit. A control API under `/_sim/` on the same port
//! drives it from other languages.
//!
//! Tests that drive real agents script the tool calls in the prompt: a user text with directives
//! `[[sim:call NAME {"json":"object"}]]` is answered, in every dialect, with exactly one call of the directive whose
//! turn it is (the `k`-th after `k` turns of tool results) with exactly those arguments, when `NAME` is offered; then
//! with `"{name} says: tool said: …"`. Requests without a directive are answered as above.
//!
//! It never talks to a real provider and never listens anywhere but where it is told (tests use `127.0.0.1:0`).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use nines_sim::{Fault, Sim, SimOptions};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let sim = Sim::start(listener, SimOptions::new("alpha")).await?;
//! sim.push_fault(Fault::status(529).times(2));
//! // ... point the gateway at sim.base_url() ...
//! assert_eq!(sim.hits("/v1/messages"), 0);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod answer;
mod anthropic;
mod continuation;
mod control;
mod embed;
mod error;
mod faults;
mod gemini;
mod grounded;
mod ids;
mod json;
mod openai;
mod ratelimit;
mod responses;
mod routes;
mod server;
mod state;
mod thinking;
mod tls;
mod tools;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use faults::{Fault, FaultKind};
pub use ratelimit::RateLimit;
pub use state::Capacity;
pub use tls::TlsError;

/// Who a simulator is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimOptions {
    /// The name that starts every answer (`"{name} says: …"`).
    pub name: String,
    /// When set, every model request must carry this key the way its provider expects (`x-api-key`,
    /// `Authorization: Bearer`, `x-goog-api-key` or `?key=`).
    pub api_key: Option<String>,
    /// Serve HTTPS (HTTP/2 or HTTP/1.1 by ALPN) with a self-signed certificate made at start-up
    /// ([`Sim::cert_pem`]).
    pub tls: bool,
    /// The most streams one HTTP/2 connection may carry at once (hyper's default, 200, when unset).
    pub h2_max_streams: Option<u32>,
}

impl SimOptions {
    /// A simulator called `name` that accepts any (or no) API key.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), api_key: None, tls: false, h2_max_streams: None }
    }

    /// The same options, serving HTTPS with a self-signed certificate.
    #[must_use]
    pub fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// The same options, requiring `key` on every model request.
    #[must_use]
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        Self::new("sim")
    }
}

/// A running simulator. Dropping it stops serving (without waiting); [`Sim::shutdown`] stops and waits.
pub struct Sim {
    addr: SocketAddr,
    shared: Arc<state::Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    connections: tokio::sync::watch::Receiver<usize>,
    tls: Option<tls::Tls>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("name", &self.shared.name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// Serve on an already-bound listener (tests pass `TcpListener::bind("127.0.0.1:0")`).
    pub async fn start(listener: TcpListener, opts: SimOptions) -> std::io::Result<Sim> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(state::Shared::new(opts.name, opts.api_key));
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let router = routes::router(Arc::clone(&shared));
        let (open, connections) = tokio::sync::watch::channel(0usize);
        let tls = if opts.tls { Some(tls::Tls::self_signed().map_err(std::io::Error::other)?) } else { None };
        let serve = server::Serve {
            tls: tls.as_ref().map(|t| t.acceptor.clone()),
            h2_max_streams: opts.h2_max_streams,
        };
        tracker.spawn(server::accept_loop(listener, router, shutdown.clone(), tracker.clone(), open, serve));
        Ok(Sim { addr, shared, shutdown, tracker, connections, tls })
    }

    /// The PEM of its self-signed certificate, when it serves HTTPS: what a client trusts to reach it.
    pub fn cert_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.cert_pem.as_str())
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many client connections are open right now.
    pub fn open_connections(&self) -> usize {
        *self.connections.borrow()
    }

    /// Wait until the number of open connections satisfies `pred` (e.g. the caller went away). Tests bound this
    /// with a timeout; nothing here sleeps.
    pub async fn wait_connections(&self, pred: impl FnMut(&usize) -> bool) {
        let mut rx = self.connections.clone();
        let _ = rx.wait_for(pred).await;
    }

    /// `http://IP:PORT` (`https://` when it serves TLS), without a trailing slash or an API version.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The simulator's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Queue a fault behind the ones already queued.
    pub fn push_fault(&self, fault: Fault) {
        self.shared.push_fault(fault);
    }

    /// Set (or, with `None`, clear) the rate limit on chat model requests. A new limit starts with no window in
    /// progress: the first request counted against it opens one.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.shared.set_rate_limit(limit);
    }

    /// Refuse (`true`) or accept again (`false`, the default) a conversation that ends with an assistant message
    /// (a prefill), as models without prefill support do: such a request gets a 400 with the provider's
    /// invalid-request error and the message `This model does not support assistant message prefill. The
    /// conversation must end with a user message.` It still counts as a hit. The instruction form of a
    /// continuation (a final user message) is accepted. [`Sim::reset`] turns the refusal off.
    pub fn set_refuse_prefill(&self, refuse: bool) {
        self.shared.set_refuse_prefill(refuse);
    }

    /// Whether the simulator refuses conversations that end with an assistant message.
    pub fn refuses_prefill(&self) -> bool {
        self.shared.refuse_prefill()
    }

    /// Serve at most `concurrent` chat requests at once, each after `latency_ms`; more are refused with the
    /// provider's overloaded error (`None`: unbounded, the default).
    pub fn set_capacity(&self, capacity: Option<state::Capacity>) {
        self.shared.set_capacity(capacity);
    }

    /// The most chat requests it was ever serving at once (counted whether or not a capacity is set).
    pub fn peak_concurrency(&self) -> usize {
        self.shared.peak.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Model-API requests received on exactly this path (e.g. `/v1/messages`,
    /// `/v1beta/models/m:generateContent`), whatever their outcome.
    pub fn hits(&self, path: &str) -> u64 {
        self.shared.hits(path)
    }

    /// All model-API requests received (control requests are not counted).
    pub fn total_hits(&self) -> u64 {
        self.shared.total_hits()
    }

    /// The last JSON body received on this path.
    pub fn last_request(&self, path: &str) -> Option<serde_json::Value> {
        self.shared.last_request(path)
    }

    /// The headers of the last request received on this path.
    pub fn last_headers(&self, path: &str) -> Option<http::HeaderMap> {
        self.shared.last_headers(path)
    }

    /// Forget queued faults, the rate limit, the prefill refusal, hits and recorded requests.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stop serving, drop every open connection, and wait for all of the simulator's tasks to end.
    pub async fn shutdown(self) {
        let tracker = self.tracker.clone();
        drop(self);
        tracker.close();
        tracker.wait().await;
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Bind `listen`, print `nines-sim NAME listening on http(s)://ADDR` to stdout (having written its certificate to
/// `cert_out` when it serves TLS), and serve until ctrl-c.
pub async fn run(
    listen: SocketAddr,
    opts: SimOptions,
    cert_out: Option<&std::path::Path>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    let sim = Sim::start(listener, opts).await?;
    if let (Some(path), Some(pem)) = (cert_out, sim.cert_pem()) {
        std::fs::write(path, pem)?;
    }
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "nines-sim {} listening on {}", sim.name(), sim.base_url())?;
        stdout.flush()?;
    }
    let stopped = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    stopped
}
