//! nines-bench: the load client of the benchmark harness, for what wrk cannot measure.
//!
//! - `load`: a fixed number of workers, each on its own HTTP/1.1 keep-alive connection, send chat requests (plain,
//!   or streaming: SSE) for a fixed time, either back to back (closed loop: a fixed concurrency) or at a fixed rate
//!   (open loop: a moderate load, where latency is the path's own and not queueing), and record in HDR histograms
//!   the total time and, for streams, the time to the first content event (time to first token).
//! - `open`: open N streams at once (HTTP/1.1, one connection each, or HTTP/2 with many streams per connection),
//!   wait until every one has delivered its first token, hold them open until a line arrives on stdin, then close
//!   them all.
//!
//! Output: one JSON object per line on stdout, read by `bench/run`. It never retries a failed request (it counts
//! it), and it only ever connects to the address it is given.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{HeaderMap, Request, Response, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "\
usage:
  nines-bench load   --url URL --body FILE --dialect openai|anthropic [--kind stream|plain]
                     [--concurrency 32] [--rate REQ_PER_S] [--seconds 10] [--warmup 1] [--header 'name: value']...
  nines-bench open   --url URL --body FILE --dialect openai|anthropic --count N
                     [--http2] [--per-conn 100] [--open-rate 1000] [--ramp 128] [--timeout 120] [--header 'name: value']...

URL is http://IP:PORT/path. Prints JSON lines on stdout.";

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = match argv.first().map(String::as_str) {
        Some("load") => Args::parse(&argv[1..]).and_then(|a| runtime()?.block_on(run_load(a))),
        Some("open") => Args::parse(&argv[1..]).and_then(|a| runtime()?.block_on(run_open(a))),
        _ => Err(USAGE.into()),
    };
    if let Err(e) = result {
        eprintln!("nines-bench: {e}");
        std::process::exit(2);
    }
}

/// One thread: the client shares its CPU with the simulator, and one thread drives thousands of connections.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// `--name value` pairs (a flag without a value, like `--http2`, maps to "true"); repeated names accumulate.
struct Args(HashMap<String, Vec<String>>);

impl Args {
    fn parse(argv: &[String]) -> Result<Args, Error> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let mut i = 0;
        while i < argv.len() {
            let name = argv[i]
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {:?}\n{USAGE}", argv[i]))?;
            let value = match argv.get(i + 1) {
                Some(v) if !v.starts_with("--") => {
                    i += 1;
                    v.clone()
                }
                _ => "true".to_owned(),
            };
            map.entry(name.to_owned()).or_default().push(value);
            i += 1;
        }
        Ok(Args(map))
    }

    fn str(&self, name: &str) -> Result<&str, Error> {
        self.0
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
            .ok_or_else(|| format!("--{name} is required\n{USAGE}").into())
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, Error> {
        match self.0.get(name).and_then(|v| v.last()) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: not a number: {v}").into()),
        }
    }

    fn flag(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Which front door's SSE the responses are in: it decides what a content event and a complete stream look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    OpenAi,
    Anthropic,
}

/// What to send, and where.
struct Spec {
    addr: SocketAddr,
    authority: String,
    path: String,
    absolute: Uri,
    body: Bytes,
    headers: HeaderMap,
    dialect: Dialect,
}

impl Spec {
    fn from_args(a: &Args) -> Result<Spec, Error> {
        let url = a.str("url")?;
        let rest = url.strip_prefix("http://").ok_or("--url: only http://IP:PORT/path URLs")?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr: SocketAddr = authority.parse().map_err(|_| format!("--url: not IP:PORT: {authority}"))?;
        let body = std::fs::read(a.str("body")?).map_err(|e| format!("--body: {e}"))?;
        let dialect = match a.str("dialect")? {
            "openai" => Dialect::OpenAi,
            "anthropic" => Dialect::Anthropic,
            other => return Err(format!("--dialect: openai or anthropic, not {other}").into()),
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        for h in a.all("header") {
            let (name, value) =
                h.split_once(':').ok_or_else(|| format!("--header: not 'name: value': {h}"))?;
            headers.insert(HeaderName::try_from(name.trim())?, HeaderValue::try_from(value.trim())?);
        }
        Ok(Spec {
            addr,
            authority: authority.to_owned(),
            path: path.to_owned(),
            absolute: url.parse()?,
            body: Bytes::from(body),
            headers,
            dialect,
        })
    }

    /// The request; HTTP/2 wants an absolute URI (for `:scheme` and `:authority`), HTTP/1.1 a path and `Host`.
    fn request(&self, http2: bool) -> Result<Request<Full<Bytes>>, Error> {
        let mut req = Request::post(if http2 { self.absolute.clone() } else { self.path.parse()? })
            .body(Full::new(self.body.clone()))?;
        *req.headers_mut() = self.headers.clone();
        if !http2 {
            req.headers_mut().insert(HOST, HeaderValue::try_from(self.authority.as_str())?);
        }
        Ok(req)
    }
}

/// A client connection of either protocol.
enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(&mut self, spec: &Spec) -> Result<Response<Incoming>, Error> {
        match self {
            Sender::H1(s) => {
                s.ready().await?;
                Ok(s.send_request(spec.request(false)?).await?)
            }
            Sender::H2(s) => {
                s.ready().await?;
                Ok(s.send_request(spec.request(true)?).await?)
            }
        }
    }
}

/// Open an HTTP/1.1 connection; the returned task drives it (abort it to close the socket).
async fn connect_h1(addr: SocketAddr) -> Result<(Sender, JoinHandle<()>), Error> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((Sender::H1(sender), task))
}

async fn connect_h2(addr: SocketAddr) -> Result<(http2::SendRequest<Full<Bytes>>, JoinHandle<()>), Error> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, task))
}

/// Finds the first content event and the end-of-stream marker in a body that arrives in arbitrary chunks.
struct Scan {
    dialect: Dialect,
    /// The last bytes seen, so that a marker split across two chunks is still found.
    tail: Vec<u8>,
    content: bool,
}

const TAIL: usize = 48;

impl Scan {
    fn new(dialect: Dialect) -> Scan {
        Scan { dialect, tail: Vec::with_capacity(TAIL * 2), content: false }
    }

    /// Feed one chunk of the body; true when it brought the first content event.
    fn feed(&mut self, chunk: &[u8]) -> bool {
        let mut buf = std::mem::take(&mut self.tail);
        buf.extend_from_slice(chunk);
        let newly = !self.content && has_content(self.dialect, &buf);
        self.content |= newly;
        let cut = buf.len().saturating_sub(TAIL);
        buf.drain(..cut);
        self.tail = buf;
        newly
    }

    /// Whether the body ended with the dialect's end-of-stream marker (a cut stream does not).
    fn complete(&self) -> bool {
        let marker: &[u8] = match self.dialect {
            Dialect::OpenAi => b"[DONE]",
            Dialect::Anthropic => b"message_stop",
        };
        find(&self.tail, marker).is_some()
    }
}

/// A content event: an Anthropic `content_block_delta`, or an OpenAI chunk whose `content` is a non-empty string
/// (the first chunk carries the role and `"content":""`).
fn has_content(dialect: Dialect, buf: &[u8]) -> bool {
    match dialect {
        Dialect::Anthropic => find(buf, b"content_block_delta").is_some(),
        Dialect::OpenAi => {
            let marker = b"\"content\":\"";
            let mut from = 0;
            while let Some(i) = find(&buf[from..], marker) {
                let after = from + i + marker.len();
                match buf.get(after) {
                    Some(b'"') => from = after,
                    Some(_) => return true,
                    // The value starts in the next chunk: the tail keeps the marker.
                    None => return false,
                }
            }
            false
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn histogram() -> Histogram<u64> {
    // Nanoseconds, from 1 ns to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// Percentiles in microseconds.
fn summary(h: &Histogram<u64>) -> Value {
    let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "p50": us(h.value_at_quantile(0.50)),
        "p90": us(h.value_at_quantile(0.90)),
        "p99": us(h.value_at_quantile(0.99)),
        "p999": us(h.value_at_quantile(0.999)),
        "max": us(h.max()),
        "mean": (h.mean() / 100.0).round() / 10.0,
        "count": h.len(),
    })
}

fn emit(v: &Value) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

// ── load: latency (and time to first token) at a fixed concurrency or a fixed rate ──────────────────────────────

/// Whole answers, or SSE streams read event by event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plain,
    Stream,
}

struct Tally {
    ttft: Histogram<u64>,
    total: Histogram<u64>,
    ok: u64,
    errors: u64,
    warmup_errors: u64,
    bytes: u64,
    error_samples: Vec<String>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            ttft: histogram(),
            total: histogram(),
            ok: 0,
            errors: 0,
            warmup_errors: 0,
            bytes: 0,
            error_samples: Vec::new(),
        }
    }

    fn error(&mut self, measured: bool, e: &Error) {
        if measured {
            self.errors += 1;
        } else {
            self.warmup_errors += 1;
        }
        if self.error_samples.len() < 3 {
            self.error_samples.push(e.to_string());
        }
    }

    fn merge(&mut self, other: Tally) {
        self.ttft.add(&other.ttft).expect("same histogram bounds");
        self.total.add(&other.total).expect("same histogram bounds");
        self.ok += other.ok;
        self.errors += other.errors;
        self.warmup_errors += other.warmup_errors;
        self.bytes += other.bytes;
        for s in other.error_samples {
            if self.error_samples.len() < 5 {
                self.error_samples.push(s);
            }
        }
    }
}

struct Timing {
    /// Streams only: when the first content event arrived.
    ttft: Option<Duration>,
    total: Duration,
    bytes: u64,
}

/// One request on `sender`, its body read to the end; times count from `started`.
async fn one_request(
    sender: &mut Sender,
    spec: &Spec,
    kind: Kind,
    started: Instant,
) -> Result<Timing, Error> {
    let resp = sender.send(spec).await?;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let text = body.collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned();
        return Err(format!("HTTP {status}: {text}").into());
    }
    let mut scan = Scan::new(spec.dialect);
    let mut ttft = None;
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            bytes += data.len() as u64;
            if kind == Kind::Stream && scan.feed(&data) {
                ttft = Some(started.elapsed());
            }
        }
    }
    let total = started.elapsed();
    match (kind, ttft) {
        (Kind::Plain, _) => Ok(Timing { ttft: None, total, bytes }),
        (Kind::Stream, Some(_)) if scan.complete() => Ok(Timing { ttft, total, bytes }),
        (Kind::Stream, Some(_)) => Err("the stream ended without its end-of-stream marker".into()),
        (Kind::Stream, None) => Err("the stream ended without a content event".into()),
    }
}

/// Where a worker's next request comes from.
#[derive(Clone)]
enum Pace {
    /// Closed loop: the next request as soon as the last one is done, until `end`.
    Closed { warm_until: Instant, end: Instant },
    /// Open loop: requests (dispatch time, measured?) from the dispatcher, which sends them at a fixed rate.
    Open { jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(Instant, bool)>>> },
}

async fn load_worker(spec: Arc<Spec>, kind: Kind, pace: Pace) -> Tally {
    let mut tally = Tally::new();
    let mut conn: Option<(Sender, JoinHandle<()>)> = None;
    loop {
        let (started, measured) = match &pace {
            Pace::Closed { warm_until, end } => {
                let now = Instant::now();
                if now >= *end {
                    break;
                }
                (now, now >= *warm_until)
            }
            Pace::Open { jobs } => match jobs.lock().await.recv().await {
                Some(job) => job,
                None => break,
            },
        };
        let (sender, _) = match &mut conn {
            Some(c) => c,
            None => match connect_h1(spec.addr).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tally.error(measured, &e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        match one_request(sender, &spec, kind, started).await {
            Ok(t) if measured => {
                tally.ok += 1;
                tally.bytes += t.bytes;
                if let Some(ttft) = t.ttft {
                    let _ = tally.ttft.record(nanos(ttft));
                }
                let _ = tally.total.record(nanos(t.total));
            }
            Ok(_) => {}
            Err(e) => {
                tally.error(measured, &e);
                // Start afresh: the connection may be in any state.
                if let Some((_, task)) = conn.take() {
                    task.abort();
                }
            }
        }
    }
    if let Some((_, task)) = conn {
        task.abort();
    }
    tally
}

async fn run_load(a: Args) -> Result<(), Error> {
    let spec = Arc::new(Spec::from_args(&a)?);
    let kind = match a.str("kind").unwrap_or("stream") {
        "plain" => Kind::Plain,
        "stream" => Kind::Stream,
        other => return Err(format!("--kind: plain or stream, not {other}").into()),
    };
    let concurrency: usize = a.num("concurrency", 32)?;
    let seconds: f64 = a.num("seconds", 10.0)?;
    let warmup: f64 = a.num("warmup", 1.0)?;
    let rate: f64 = a.num("rate", 0.0)?;
    let start = Instant::now();
    let warm_until = start + Duration::from_secs_f64(warmup);
    let end = warm_until + Duration::from_secs_f64(seconds);
    let (dispatcher, pace) = if rate > 0.0 {
        let (tx, rx) = mpsc::unbounded_channel();
        let interval = Duration::from_secs_f64(1.0 / rate);
        // Requests leave at fixed times whatever the answers do (no coordinated omission): a request that waits for
        // a free connection counts the wait. Latency counts from the moment the request is dispatched, so the
        // timer's millisecond granularity (which sends requests in small bursts) is not counted as latency.
        let dispatcher = tokio::spawn(async move {
            let mut next = start;
            while next < end {
                tokio::time::sleep_until(next.into()).await;
                if tx.send((Instant::now(), next >= warm_until)).is_err() {
                    break;
                }
                next += interval;
            }
        });
        (Some(dispatcher), Pace::Open { jobs: Arc::new(tokio::sync::Mutex::new(rx)) })
    } else {
        (None, Pace::Closed { warm_until, end })
    };
    let workers: Vec<_> =
        (0..concurrency).map(|_| tokio::spawn(load_worker(spec.clone(), kind, pace.clone()))).collect();
    drop(pace);
    tokio::time::sleep_until(warm_until.into()).await;
    emit(&json!({"event": "measuring"}));
    let mut tally = Tally::new();
    for w in workers {
        tally.merge(w.await?);
    }
    if let Some(d) = dispatcher {
        d.await?;
    }
    emit(&json!({
        "event": "result",
        "kind": if kind == Kind::Plain { "plain" } else { "stream" },
        "requests": tally.ok,
        "errors": tally.errors,
        "warmup_errors": tally.warmup_errors,
        "error_samples": tally.error_samples,
        "seconds": seconds,
        "concurrency": concurrency,
        "rate": if rate > 0.0 { json!(rate) } else { Value::Null },
        "rps": tally.ok as f64 / seconds,
        "bytes": tally.bytes,
        "ttft_us": summary(&tally.ttft),
        "total_us": summary(&tally.total),
    }));
    Ok(())
}

// ── open: N concurrent streams held open ────────────────────────────────────────────────────────────────────────

#[derive(Default)]
struct OpenState {
    open: AtomicUsize,
    failed: AtomicUsize,
    /// Streams that ended by themselves before they were closed (the answer was too short for the hold).
    ended: AtomicUsize,
    ttft: Mutex<Option<Histogram<u64>>>,
    error_samples: Mutex<Vec<String>>,
}

impl OpenState {
    fn fail(&self, e: &Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut samples = self.error_samples.lock().expect("not poisoned");
        if samples.len() < 5 {
            samples.push(e.to_string());
        }
    }
}

/// One held stream: connect (HTTP/1.1) or use a shared HTTP/2 connection, wait for the first token, then keep
/// reading until `close` says so.
async fn hold_one(
    spec: Arc<Spec>,
    h2: Option<http2::SendRequest<Full<Bytes>>>,
    ramp: Arc<Semaphore>,
    state: Arc<OpenState>,
    mut close: watch::Receiver<bool>,
) {
    let mut conn_task = None;
    let held = async {
        let mut sender = match h2 {
            Some(s) => Sender::H2(s),
            None => {
                // Bound the connects in flight so the gateway's accept backlog never overflows.
                let _permit = ramp.acquire().await?;
                let (sender, task) = connect_h1(spec.addr).await?;
                conn_task = Some(task);
                sender
            }
        };
        let started = Instant::now();
        let resp = sender.send(&spec).await?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()).into());
        }
        let mut body = resp.into_body();
        let mut scan = Scan::new(spec.dialect);
        let mut counted = false;
        loop {
            tokio::select! {
                _ = close.changed() => return Ok::<_, Error>(()),
                frame = body.frame() => match frame {
                    None => {
                        if !counted {
                            return Err("the stream ended before its first token".into());
                        }
                        state.ended.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    Some(frame) => {
                        if let Ok(data) = frame?.into_data()
                            && scan.feed(&data)
                            && !counted
                        {
                            counted = true;
                            let mut h = state.ttft.lock().expect("not poisoned");
                            let _ = h.get_or_insert_with(histogram).record(nanos(started.elapsed()));
                            state.open.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                },
            }
        }
    };
    if let Err(e) = held.await {
        state.fail(&e);
    }
    // Dropping the body and aborting the connection's task closes the socket.
    if let Some(task) = conn_task {
        task.abort();
    }
}

async fn run_open(a: Args) -> Result<(), Error> {
    let spec = Arc::new(Spec::from_args(&a)?);
    let count: usize = a.num("count", 10_000)?;
    let ramp: usize = a.num("ramp", 128)?;
    let per_conn: usize = a.num("per-conn", 100)?.max(1);
    let timeout: f64 = a.num("timeout", 120.0)?;
    let open_rate: f64 = a.num("open-rate", 1000.0)?;
    if open_rate <= 0.0 {
        return Err("--open-rate must be positive".into());
    }
    let use_h2 = a.flag("http2");
    let state = Arc::new(OpenState::default());
    let (close_tx, close_rx) = watch::channel(false);
    let ramp = Arc::new(Semaphore::new(ramp.max(1)));
    let start = Instant::now();

    let mut h2_conns = Vec::new();
    if use_h2 {
        for _ in 0..count.div_ceil(per_conn) {
            h2_conns.push(connect_h2(spec.addr).await?);
        }
    }
    // Streams start at a steady rate: thousands at once would overflow the accept backlogs of the gateway and the
    // simulator (SYN retries take seconds) and measure that instead of the held streams.
    let interval = Duration::from_secs_f64(1.0 / open_rate);
    let mut streams: Vec<JoinHandle<()>> = Vec::with_capacity(count);
    for i in 0..count {
        tokio::time::sleep_until((start + interval * u32::try_from(i)?).into()).await;
        let h2 = h2_conns.get(i / per_conn).map(|(s, _)| s.clone());
        streams.push(tokio::spawn(hold_one(spec.clone(), h2, ramp.clone(), state.clone(), close_rx.clone())));
    }

    let deadline = start + Duration::from_secs_f64(timeout);
    while state.open.load(Ordering::Relaxed) + state.failed.load(Ordering::Relaxed) < count
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ttft = state.ttft.lock().expect("not poisoned").as_ref().map(summary).unwrap_or(Value::Null);
    emit(&json!({
        "event": "open",
        "requested": count,
        "open": state.open.load(Ordering::Relaxed),
        "failed": state.failed.load(Ordering::Relaxed),
        "ended_early": state.ended.load(Ordering::Relaxed),
        "seconds_to_open": start.elapsed().as_secs_f64(),
        "protocol": if use_h2 { "h2c" } else { "http/1.1" },
        "connections": if use_h2 { h2_conns.len() } else { count },
        "ttft_us": ttft,
        "error_samples": *state.error_samples.lock().expect("not poisoned"),
    }));

    // Hold until told (or until stdin closes).
    let mut line = String::new();
    let _ = tokio::io::BufReader::new(tokio::io::stdin()).read_line(&mut line).await;
    let closing = Instant::now();
    let _ = close_tx.send(true);
    for s in streams {
        let _ = s.await;
    }
    for (sender, task) in h2_conns {
        drop(sender);
        task.abort();
    }
    emit(&json!({
        "event": "closed",
        "seconds_to_close": closing.elapsed().as_secs_f64(),
        "ended_early": state.ended.load(Ordering::Relaxed),
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_role_chunk_is_not_content() {
        let role = br#"data: {"choices":[{"delta":{"content":"","role":"assistant"}}]}"#;
        assert!(!has_content(Dialect::OpenAi, role));
        let delta = br#"data: {"choices":[{"delta":{"content":"s"}}]}"#;
        assert!(has_content(Dialect::OpenAi, delta));
    }

    #[test]
    fn markers_split_across_chunks_are_found() {
        let text = br#"data: {"choices":[{"delta":{"content":"","role":"assistant"}}]}

data: {"choices":[{"delta":{"content":" hi"}}]}

data: [DONE]

"#;
        for cut in 1..text.len() {
            let mut scan = Scan::new(Dialect::OpenAi);
            let first = scan.feed(&text[..cut]);
            let second = scan.feed(&text[cut..]);
            assert!(first ^ second, "content found exactly once (cut at {cut})");
            assert!(scan.complete());
        }
        let mut scan = Scan::new(Dialect::Anthropic);
        assert!(!scan.feed(b"event: content_block_st"));
        assert!(!scan.feed(b"art\n\nevent: content_block_de"));
        assert!(scan.feed(b"lta\ndata: {}\n\n"));
        assert!(!scan.complete());
        scan.feed(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        assert!(scan.complete());
    }
}
