//! Traces: OpenTelemetry spans exported over OTLP/HTTP (protobuf), off unless `[traces] otlp_endpoint` is set.
//!
//! A request's spans are built after the fact, when its flight ends, from the flight's log: one SERVER span for
//! the request, and one CLIENT span per attempt sent upstream, its child. Attributes follow the OpenTelemetry GenAI
//! semantic conventions (`gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`,
//! `gen_ai.response.model`, `gen_ai.usage.*`), plus nines' own (`nines.*`) for attempts, failovers, hedges and
//! resumes. docs/observability.md lists them.
//!
//! Building the spans is the only work on the request's path: they go to the SDK's batch processor, whose bounded
//! queue takes them without blocking (a full queue drops them) and whose own thread exports them. The HTTP requests
//! run on a small runtime of their own ("nines-otlp"), so a slow collector holds no request thread.
//!
//! No secrets in spans: a failed attempt is described by its error kind and HTTP status, never by the provider's
//! message (which may echo a key or the prompt).

use std::borrow::Cow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue, Value};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider};
use tokio::time::Instant;

use crate::config::{ProviderKind, TracesConfig};
use crate::dispatch::flight::{Event, EventKind, Flight, Tokens};
use crate::health::Role;
use crate::provider::ProviderError;
use crate::record::Ending;
use crate::route::Target;

/// How long one export to the collector may take (the OTLP default).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Traces::shutdown`] waits for the last batch.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a collector's answer that is read (an OTLP answer is a few bytes).
const MAX_ANSWER: usize = 64 * 1024;
/// At most one warning per this many seconds about a collector that fails.
const WARN_EVERY_SECS: u64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot start the trace exporter's thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("cannot build the trace exporter's HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("traces.otlp_endpoint: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The trace pipeline: a tracer whose spans are batched and exported over OTLP/HTTP.
pub struct Traces {
    // Dropped in this order: the provider flushes through `io`, which stops last.
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    io: Io,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces").finish_non_exhaustive()
    }
}

impl Traces {
    /// The pipeline `cfg` asks for; `None` when no endpoint is configured. Batching follows the standard
    /// `OTEL_BSP_*` variables (an export every 5 s, or every 512 spans; at most 2,048 queued).
    pub fn start(cfg: &TracesConfig) -> Result<Option<Traces>, TraceError> {
        let Some(endpoint) = cfg.otlp_endpoint.as_deref() else { return Ok(None) };
        let io = Io::start()?;
        let client = Collector {
            client: reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?,
            io: io.handle.clone(),
            warned: AtomicU64::new(0),
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()?;
        let resource = Resource::builder()
            .with_service_name(cfg.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter).build())
            .with_resource(resource)
            .build();
        let scope = InstrumentationScope::builder("nines").with_version(env!("CARGO_PKG_VERSION")).build();
        let tracer = provider.tracer_with_scope(scope);
        // Host and port only: a URL may carry credentials.
        let to =
            endpoint.parse::<http::Uri>().ok().and_then(|u| u.authority().map(|a| a.as_str().to_owned()));
        let to = to.map(|a| a.rsplit('@').next().unwrap_or_default().to_owned()).unwrap_or_default();
        tracing::info!(target: "nines::traces", collector = to, "exporting traces over OTLP/HTTP");
        Ok(Some(Traces { provider, tracer, io }))
    }

    /// Build the spans of `flight`, which ended (`ended`, its `Ended` event) at `now`, and queue them for export.
    /// Never blocks: a full queue drops them.
    pub fn flight_ended(&self, flight: &Flight, ended: &Event, now: Instant) {
        record(&self.tracer, flight, ended, now, SystemTime::now());
    }

    /// Export what is queued and stop. Blocks the calling thread for at most a few seconds (the export itself runs
    /// on the pipeline's own thread, so any runtime may call this). Spans of flights that end later are dropped.
    pub fn shutdown(&self) {
        match self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            Ok(()) | Err(opentelemetry_sdk::error::OTelSdkError::AlreadyShutdown) => {}
            Err(e) => tracing::warn!(target: "nines::traces", "traces not all exported at shutdown: {e}"),
        }
        self.io.stop();
    }
}

/// The exporter's I/O: a current-thread runtime on a thread of its own, where the HTTP requests run (the SDK's
/// batch thread waits for them there, outside every request-serving runtime).
struct Io {
    handle: tokio::runtime::Handle,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Io {
    fn start() -> Result<Io, TraceError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // The runtime is dropped on its own thread, never in an async context; the thread is not joined.
        std::thread::Builder::new().name("nines-otlp".to_owned()).spawn(move || {
            rt.block_on(async {
                let _ = stopped.await;
            })
        })?;
        Ok(Io { handle, stop: Mutex::new(Some(stop)) })
    }

    fn stop(&self) {
        let mut stop = self.stop.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = stop.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The OTLP exporter's HTTP client: reqwest (the gateway's own version), each request run on the [`Io`] runtime.
#[derive(Debug)]
struct Collector {
    client: reqwest::Client,
    io: tokio::runtime::Handle,
    /// When the last warning about a failed export was logged (seconds since the epoch).
    warned: AtomicU64,
}

impl Collector {
    /// A failed export, logged at most once a minute (an unreachable collector fails every batch).
    fn warn(&self, what: std::fmt::Arguments<'_>) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let last = self.warned.load(Ordering::Relaxed);
        if (last == 0 || now >= last.saturating_add(WARN_EVERY_SECS))
            && self.warned.compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(target: "nines::traces", "trace export failed: {what}");
        }
    }
}

#[async_trait]
impl HttpClient for Collector {
    async fn send_bytes(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self.io.spawn(async move {
            let request = reqwest::Request::try_from(request)?;
            let mut response = client.execute(request).await?;
            let mut out = http::Response::builder().status(response.status());
            if let Some(h) = out.headers_mut() {
                *h = std::mem::take(response.headers_mut());
            }
            let mut body = Vec::new();
            while body.len() < MAX_ANSWER
                && let Some(chunk) = response.chunk().await?
            {
                body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER - body.len())]);
            }
            Ok::<_, HttpError>(out.body(Bytes::from(body))?)
        });
        let answer = match sent.await {
            Ok(answer) => answer,
            Err(e) => Err(Box::new(e) as HttpError),
        };
        match &answer {
            Ok(r) if !r.status().is_success() => {
                self.warn(format_args!("the collector answered {}", r.status()))
            }
            Ok(_) => {}
            Err(e) => self.warn(format_args!("{e}")),
        }
        answer
    }
}

/// The client's W3C `traceparent`, if it is valid: `00-{32 hex}-{16 hex}-{2 hex}`, lowercase, neither id all
/// zeros. Anything else is ignored, as the W3C Trace Context asks (the request then starts a new trace).
pub fn parse_traceparent(header: &str) -> Option<SpanContext> {
    let b = header.as_bytes();
    let lower_hex = |s: &[u8]| s.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    if b.len() != 55 || !header.starts_with("00-") || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let (trace, span, flags) = (&header[3..35], &header[36..52], &header[53..55]);
    if !lower_hex(trace.as_bytes()) || !lower_hex(span.as_bytes()) || !lower_hex(flags.as_bytes()) {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok().filter(|t| *t != TraceId::INVALID)?;
    let span = SpanId::from_hex(span).ok().filter(|s| *s != SpanId::INVALID)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(SpanContext::new(trace, span, TraceFlags::new(flags), true, TraceState::default()))
}

/// `gen_ai.provider.name` for a provider kind (the GenAI conventions' well-known values). OpenAI-compatible servers
/// speak OpenAI's API and are reported as `openai`; `nines.provider` has the configured name.
pub fn provider_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::OpenAi | ProviderKind::OpenAiResponses => "openai",
        ProviderKind::Gemini => "gcp.gemini",
        // Not a well-known value: the conventions allow a custom one.
        ProviderKind::LocalEmbeddings => "nines.local",
    }
}

/// `gen_ai.operation.name` of a request, from its front door.
pub fn operation(door: &str) -> &'static str {
    if door.ends_with("embeddings") || door.contains("embedContent") {
        "embeddings"
    } else if door.ends_with("count_tokens") || door.ends_with("countTokens") {
        // Not a GenAI convention's operation: the conventions allow a custom value.
        "count_tokens"
    } else if door.starts_with("models:") {
        "generate_content"
    } else {
        "chat"
    }
}

/// `gen_ai.operation.name` of an attempt on a provider of `kind`, for a request whose operation is `op`: a chat
/// sent to Gemini is a `generate_content`, one sent elsewhere a `chat`.
fn attempt_operation(op: &'static str, kind: ProviderKind) -> &'static str {
    match op {
        "chat" | "generate_content" if kind == ProviderKind::Gemini => "generate_content",
        "chat" | "generate_content" => "chat",
        other => other,
    }
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Failed,
    /// Cancelled: another attempt won a race (a hedge).
    Abandoned,
    /// Still running when the request ended (the client went away).
    Unfinished,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Abandoned => "abandoned",
            Outcome::Unfinished => "unfinished",
        }
    }
}

/// One attempt, from the log.
struct Attempt<'f> {
    target: usize,
    /// Its try on this target (2 for the first retry).
    attempt: u32,
    role: Role,
    start: Duration,
    end: Option<Duration>,
    /// Its time to the commit point (first token, or whole answer).
    committed: Option<Duration>,
    outcome: Outcome,
    tokens: Option<Tokens>,
    error: Option<&'f ProviderError>,
    after_commit: bool,
    /// Started as a hedge of this target's late first token.
    hedge_of: Option<usize>,
    /// Continues this target's broken stream.
    resume_of: Option<usize>,
}

/// What the log says of a request.
struct Digest<'f> {
    attempts: Vec<Attempt<'f>>,
    /// Request-level notes: a target skipped, a break not resumed (name, target, why).
    notes: Vec<(&'static str, Duration, usize, String)>,
    resumes: usize,
}

/// End `target`'s open attempt: the attempt, to fill in.
fn close<'a, 'f>(
    attempts: &'a mut [Attempt<'f>],
    open: &mut Vec<(usize, usize)>,
    target: usize,
) -> Option<&'a mut Attempt<'f>> {
    let at = open.iter().position(|(t, _)| *t == target)?;
    let (_, i) = open.swap_remove(at);
    attempts.get_mut(i)
}

fn digest<'f>(log: &'f [Event], end: Duration) -> Digest<'f> {
    let mut attempts: Vec<Attempt<'f>> = Vec::with_capacity(2);
    // Attempts not yet ended: (target, index). A target has at most one at a time.
    let mut open: Vec<(usize, usize)> = Vec::with_capacity(2);
    // Hedges announced, not yet started: (hedge target, slow target).
    let mut hedges: Vec<(usize, usize)> = Vec::new();
    let mut notes = Vec::new();
    let mut resumes = 0;
    for ev in log {
        match &ev.kind {
            EventKind::Started { target, attempt, role } => {
                let hedge_of =
                    hedges.iter().position(|(to, _)| to == target).map(|k| hedges.swap_remove(k).1);
                open.retain(|(t, _)| t != target);
                open.push((*target, attempts.len()));
                attempts.push(Attempt {
                    target: *target,
                    attempt: *attempt,
                    role: *role,
                    start: ev.at,
                    end: None,
                    committed: None,
                    outcome: Outcome::Unfinished,
                    tokens: None,
                    error: None,
                    after_commit: false,
                    hedge_of,
                    resume_of: None,
                });
            }
            EventKind::Committed { target, elapsed, .. } => {
                if let Some(&(_, i)) = open.iter().find(|(t, _)| t == target)
                    && let Some(a) = attempts.get_mut(i)
                {
                    a.committed = Some(*elapsed);
                }
            }
            EventKind::Succeeded { target, elapsed, tokens, .. } => {
                if let Some(a) = close(&mut attempts, &mut open, *target) {
                    a.end = Some(ev.at.min(a.start + *elapsed));
                    a.outcome = Outcome::Succeeded;
                    a.tokens = *tokens;
                }
            }
            EventKind::Failed { target, error, elapsed, after_commit, .. } => {
                if let Some(a) = close(&mut attempts, &mut open, *target) {
                    // A failure may be reported late (a hedge's first attempt): its own elapsed is exact.
                    a.end = Some(ev.at.min(a.start + *elapsed));
                    a.outcome = Outcome::Failed;
                    a.error = Some(&**error);
                    a.after_commit = *after_commit;
                }
            }
            EventKind::Abandoned { target, elapsed, .. } => {
                if let Some(a) = close(&mut attempts, &mut open, *target) {
                    a.end = Some(ev.at.min(a.start + *elapsed));
                    a.outcome = Outcome::Abandoned;
                }
            }
            EventKind::Hedged { target, to, .. } => hedges.push((*to, *target)),
            EventKind::Resumed { from, to, .. } => {
                resumes += 1;
                if let Some(a) = attempts.iter_mut().rev().find(|a| a.target == *to) {
                    a.resume_of = Some(*from);
                }
            }
            EventKind::Skipped { target, why } => {
                notes.push(("nines.skipped", ev.at, *target, why.to_string()))
            }
            EventKind::NotResumed { target, why } => {
                notes.push(("nines.not_resumed", ev.at, *target, why.to_string()))
            }
            EventKind::Waited { .. } | EventKind::Ended { .. } => {}
        }
    }
    for a in &mut attempts {
        if a.end.is_none() {
            a.end = Some(end);
        }
    }
    Digest { attempts, notes, resumes }
}

/// Moves to another target after a failure (not hedges, nor continuations of a broken stream).
fn failovers(attempts: &[Attempt<'_>]) -> usize {
    attempts
        .windows(2)
        .filter(|w| w[1].target != w[0].target && w[1].hedge_of.is_none() && w[1].resume_of.is_none())
        .count()
}

fn int(n: u64) -> Value {
    Value::I64(i64::try_from(n).unwrap_or(i64::MAX))
}

fn usage(attrs: &mut Vec<KeyValue>, tokens: Option<Tokens>) {
    if let Some(t) = tokens {
        attrs.push(KeyValue::new("gen_ai.usage.input_tokens", int(t.input)));
        attrs.push(KeyValue::new("gen_ai.usage.output_tokens", int(t.output)));
    }
}

/// `server.address` and `server.port` of a provider's base URL (never its path, query or credentials).
fn server(attrs: &mut Vec<KeyValue>, base_url: &str) {
    let Ok(uri) = base_url.parse::<http::Uri>() else { return };
    let Some(host) = uri.host() else { return };
    let port = uri.port_u16().or(match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    });
    attrs
        .push(KeyValue::new("server.address", host.trim_start_matches('[').trim_end_matches(']').to_owned()));
    if let Some(p) = port {
        attrs.push(KeyValue::new("server.port", i64::from(p)));
    }
}

/// The status of a failed attempt: its kind and HTTP status, never the provider's message.
fn failure(e: &ProviderError) -> Status {
    match e.status {
        Some(s) => Status::error(format!("{} {s}", e.kind.label())),
        None => Status::error(e.kind.label()),
    }
}

/// Build and end `flight`'s spans with `tracer`: `now` (monotonic) is `wall_now` (wall clock).
fn record<T>(tracer: &T, flight: &Flight, ended: &Event, now: Instant, wall_now: SystemTime)
where
    T: opentelemetry::trace::Tracer,
    T::Span: Send + Sync + 'static,
{
    let (ending, served, end) = match &ended.kind {
        EventKind::Ended { ending, target } => (*ending, *target, ended.at),
        _ => match flight.log().iter().rev().find(|e| matches!(e.kind, EventKind::Ended { .. })) {
            Some(Event { kind: EventKind::Ended { ending, target }, at }) => (*ending, *target, *at),
            _ => (Ending::Cancelled, None, now.saturating_duration_since(flight.started)),
        },
    };
    let started_wall =
        wall_now.checked_sub(now.saturating_duration_since(flight.started)).unwrap_or(wall_now);
    let wall = |at: Duration| started_wall.checked_add(at).unwrap_or(started_wall);
    let label = |i: usize| flight.target(i).map_or("?", Target::label).to_owned();
    let op = operation(flight.door);
    let d = digest(flight.log(), end);

    // The request: a SERVER span, the child of the client's span when it sent a valid traceparent.
    let parent = match flight.traceparent.as_deref().and_then(parse_traceparent) {
        Some(sc) => Context::new().with_remote_span_context(sc),
        None => Context::new(),
    };
    let served_target = served.and_then(|i| flight.target(i));
    let tokens = served
        .and_then(|i| d.attempts.iter().rev().find(|a| a.target == i && a.tokens.is_some()))
        .or_else(|| d.attempts.iter().rev().find(|a| a.tokens.is_some()))
        .and_then(|a| a.tokens);
    let mut attrs = Vec::with_capacity(20);
    attrs.push(KeyValue::new("gen_ai.operation.name", op));
    attrs.push(KeyValue::new("gen_ai.request.model", flight.route.clone()));
    if let Some(t) = served_target {
        attrs.push(KeyValue::new("gen_ai.provider.name", provider_name(t.provider.config.kind)));
        attrs.push(KeyValue::new("gen_ai.response.model", t.model.clone()));
        attrs.push(KeyValue::new("nines.target", t.label().to_owned()));
    }
    if flight.stream {
        attrs.push(KeyValue::new("gen_ai.request.stream", true));
    }
    usage(&mut attrs, tokens);
    if flight.door.starts_with('/') {
        attrs.push(KeyValue::new("http.route", flight.door));
    }
    attrs.push(KeyValue::new("nines.door", flight.door));
    attrs.push(KeyValue::new("nines.request.id", flight.id.to_string()));
    attrs.push(KeyValue::new("nines.ending", ending.label()));
    attrs.push(KeyValue::new("nines.attempts", d.attempts.len() as i64));
    attrs.push(KeyValue::new("nines.failovers", failovers(&d.attempts) as i64));
    attrs.push(KeyValue::new("nines.resumed", d.resumes > 0));
    attrs.push(KeyValue::new("nines.hedged", d.attempts.iter().any(|a| a.hedge_of.is_some())));
    attrs.push(KeyValue::new("nines.stream", flight.stream));
    let failed = matches!(ending, Ending::Failed | Ending::BrokenStream);
    let last_error = d.attempts.iter().rev().find_map(|a| a.error);
    if failed {
        attrs.push(KeyValue::new("error.type", last_error.map_or("_OTHER", |e| e.kind.label())));
    }
    let events = d
        .notes
        .iter()
        .map(|(name, at, target, why)| {
            let attrs = vec![
                KeyValue::new("nines.target", label(*target)),
                KeyValue::new("nines.reason", why.clone()),
            ];
            opentelemetry::trace::Event::new(*name, wall(*at), attrs, 0)
        })
        .collect();
    let name = format!("{op} {}", flight.route);
    let span = SpanBuilder::from_name(name)
        .with_kind(SpanKind::Server)
        .with_start_time(wall(Duration::ZERO))
        .with_attributes(attrs)
        .with_events(events)
        .start_with_context(tracer, &parent);
    let request = parent.with_span(span);

    // Its attempts: CLIENT spans, children of the request's.
    for (n, a) in d.attempts.iter().enumerate() {
        let Some(t) = flight.target(a.target) else { continue };
        let kind = t.provider.config.kind;
        let aop = attempt_operation(op, kind);
        let mut attrs = Vec::with_capacity(20);
        attrs.push(KeyValue::new("gen_ai.operation.name", aop));
        attrs.push(KeyValue::new("gen_ai.provider.name", provider_name(kind)));
        attrs.push(KeyValue::new("gen_ai.request.model", t.model.clone()));
        if flight.stream {
            attrs.push(KeyValue::new("gen_ai.request.stream", true));
            if let Some(c) = a.committed {
                attrs.push(KeyValue::new("gen_ai.response.time_to_first_chunk", c.as_secs_f64()));
            }
        }
        if a.outcome == Outcome::Succeeded {
            attrs.push(KeyValue::new("gen_ai.response.model", t.model.clone()));
        }
        usage(&mut attrs, a.tokens);
        server(&mut attrs, &t.provider.config.base_url);
        attrs.push(KeyValue::new("nines.provider", t.provider.name().to_owned()));
        attrs.push(KeyValue::new("nines.target", t.label().to_owned()));
        attrs.push(KeyValue::new("nines.attempt", (n + 1) as i64));
        attrs.push(KeyValue::new("nines.try", i64::from(a.attempt)));
        attrs.push(KeyValue::new("nines.outcome", a.outcome.label()));
        if let Role::Trial(_) = a.role {
            attrs.push(KeyValue::new("nines.trial", true));
        }
        if let Some(h) = a.hedge_of {
            attrs.push(KeyValue::new("nines.hedge", true));
            attrs.push(KeyValue::new("nines.hedge_of", label(h)));
        }
        if let Some(r) = a.resume_of {
            attrs.push(KeyValue::new("nines.resume_of", label(r)));
        }
        if let Some(e) = a.error {
            attrs.push(KeyValue::new("error.type", e.kind.label()));
            if let Some(s) = e.status {
                attrs.push(KeyValue::new("http.response.status_code", i64::from(s)));
            }
            attrs.push(KeyValue::new("nines.after_commit", a.after_commit));
        }
        let name: Cow<'static, str> = format!("{aop} {}", t.model).into();
        let mut span = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Client)
            .with_start_time(wall(a.start))
            .with_attributes(attrs)
            .start_with_context(tracer, &request);
        if let Some(e) = a.error {
            span.set_status(failure(e));
        }
        span.end_with_timestamp(wall(a.end.unwrap_or(end)));
    }

    let span = request.span();
    if failed {
        span.set_status(last_error.map_or_else(|| Status::error(ending.label()), failure));
    }
    span.end_with_timestamp(wall(end));
}

#[cfg(test)]
mod tests;
