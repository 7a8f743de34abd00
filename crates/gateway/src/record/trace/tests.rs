// Tests fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use prost::Message as _;

use super::*;
use crate::app::{Runtime, Snapshot};
use crate::auth::Caller;
use crate::config::{Env, parse_and_validate};
use crate::dispatch::flight::{RequestId, Takeoff};
use crate::provider::ErrorKind;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn traceparent_is_parsed_strictly() {
    let sc = parse_traceparent(PARENT).unwrap();
    assert_eq!(sc.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
    assert!(sc.is_sampled() && sc.is_remote());
    assert!(
        !parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap().is_sampled()
    );
    for bad in [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-é",
    ] {
        assert!(parse_traceparent(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn operations_and_provider_names_follow_the_genai_conventions() {
    assert_eq!(operation("/v1/chat/completions"), "chat");
    assert_eq!(operation("/v1/messages"), "chat");
    assert_eq!(operation("/v1/responses"), "chat");
    assert_eq!(operation("models:generateContent"), "generate_content");
    assert_eq!(operation("models:streamGenerateContent"), "generate_content");
    assert_eq!(operation("/v1/embeddings"), "embeddings");
    assert_eq!(operation("/v1/messages/count_tokens"), "count_tokens");
    assert_eq!(operation("models:countTokens"), "count_tokens");
    assert_eq!(attempt_operation("chat", ProviderKind::Gemini), "generate_content");
    assert_eq!(attempt_operation("generate_content", ProviderKind::Anthropic), "chat");
    assert_eq!(attempt_operation("embeddings", ProviderKind::Gemini), "embeddings");
    assert_eq!(provider_name(ProviderKind::Anthropic), "anthropic");
    assert_eq!(provider_name(ProviderKind::OpenAi), "openai");
    assert_eq!(provider_name(ProviderKind::OpenAiResponses), "openai");
    assert_eq!(provider_name(ProviderKind::Gemini), "gcp.gemini");
}

/// A span processor that keeps what ends.
#[derive(Clone, Debug, Default)]
struct Kept(Arc<Mutex<Vec<SpanData>>>);

impl SpanProcessor for Kept {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}
    fn on_end(&self, span: SpanData) {
        self.0.lock().unwrap().push(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

const CONFIG: &str = r#"
[providers.a]
kind = "anthropic"
base_url = "http://127.0.0.1:9"
[providers.b]
kind = "openai"
base_url = "https://api.example.com/v1"
[providers.g]
kind = "gemini"
base_url = "https://generativelanguage.googleapis.com"
[routes.r]
targets = ["a/claude-sonnet-4-5", "b/gpt-4.1", "g/gemini-2.5-flash"]
"#;

fn flight(stream: bool, traceparent: Option<&str>) -> Flight {
    let config = parse_and_validate(CONFIG).unwrap();
    let runtime = Runtime::new(&config).unwrap();
    let snap = Snapshot::build(config, &Env::default(), &runtime).unwrap();
    let plan = snap.routes.plan("r").unwrap();
    let t = Takeoff {
        id: RequestId::Ours(7),
        traceparent: traceparent.map(Box::from),
        door: "/v1/chat/completions",
        caller: Caller::Open,
        route: "r".to_owned(),
        stream,
        plan,
        started: Instant::now(),
        admitted: Default::default(),
    };
    Flight::new(t, Arc::new(snap), runtime.recorder.clone())
}

fn error(kind: ErrorKind, status: Option<u16>) -> Box<ProviderError> {
    let mut e = ProviderError::new(kind, "upstream said: bad key sk-live-123456 for Bearer abc");
    e.status = status;
    Box::new(e)
}

/// The spans `flight` makes, once ended: (request, attempts in start order).
fn spans(flight: &Flight) -> (SpanData, Vec<SpanData>) {
    let kept = Kept::default();
    let provider = SdkTracerProvider::builder().with_span_processor(kept.clone()).build();
    let tracer = provider.tracer("test");
    let ended = flight.log().last().unwrap();
    assert!(matches!(ended.kind, EventKind::Ended { .. }));
    record(&tracer, flight, ended, Instant::now(), SystemTime::now());
    let mut all = std::mem::take(&mut *kept.0.lock().unwrap());
    all.sort_by_key(|s| s.start_time);
    let at = all.iter().position(|s| s.span_kind == SpanKind::Server).unwrap();
    let request = all.remove(at);
    assert!(all.iter().all(|s| s.span_kind == SpanKind::Client));
    (request, all)
}

fn attr<'s>(span: &'s SpanData, key: &str) -> Option<&'s Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

fn s(span: &SpanData, key: &str) -> String {
    match attr(span, key) {
        Some(Value::String(v)) => v.as_str().to_owned(),
        other => panic!("{key}: {other:?} in {}", span.name),
    }
}

fn i(span: &SpanData, key: &str) -> i64 {
    match attr(span, key) {
        Some(Value::I64(v)) => *v,
        other => panic!("{key}: {other:?} in {}", span.name),
    }
}

fn b(span: &SpanData, key: &str) -> bool {
    match attr(span, key) {
        Some(Value::Bool(v)) => *v,
        other => panic!("{key}: {other:?} in {}", span.name),
    }
}

fn duration(span: &SpanData) -> Duration {
    span.end_time.duration_since(span.start_time).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_failover_is_a_request_span_with_two_attempt_spans() {
    let mut f = flight(false, Some(PARENT));
    f.emit(EventKind::Started { target: 0, attempt: 1, role: Role::Normal });
    tokio::time::advance(Duration::from_millis(100)).await;
    f.emit(EventKind::Failed {
        target: 0,
        role: Role::Normal,
        error: error(ErrorKind::Overloaded, Some(529)),
        elapsed: Duration::from_millis(100),
        timed_out: None,
        deadline_cut: false,
        after_commit: false,
    });
    f.emit(EventKind::Skipped { target: 2, why: crate::dispatch::flight::Skip::Cannot("no images".into()) });
    f.emit(EventKind::Started { target: 1, attempt: 1, role: Role::Normal });
    tokio::time::advance(Duration::from_millis(200)).await;
    f.emit(EventKind::Committed {
        target: 1,
        role: Role::Normal,
        elapsed: Duration::from_millis(200),
        limits: None,
    });
    let tokens = Some(Tokens { input: 12, output: 34 });
    let elapsed = Duration::from_millis(200);
    f.emit(EventKind::Succeeded { target: 1, role: Role::Normal, elapsed, max_gap: None, tokens });
    f.end(Ending::Saved, Some(1));
    let (req, attempts) = spans(&f);

    assert_eq!(req.name, "chat r");
    assert_eq!(req.span_context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(req.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(req.parent_span_is_remote);
    assert_eq!(s(&req, "gen_ai.operation.name"), "chat");
    assert_eq!(s(&req, "gen_ai.request.model"), "r");
    assert_eq!(s(&req, "gen_ai.response.model"), "gpt-4.1");
    assert_eq!(s(&req, "gen_ai.provider.name"), "openai");
    assert_eq!((i(&req, "gen_ai.usage.input_tokens"), i(&req, "gen_ai.usage.output_tokens")), (12, 34));
    assert_eq!(s(&req, "http.route"), "/v1/chat/completions");
    assert_eq!(s(&req, "nines.request.id"), "req_0000000000000007");
    assert_eq!(s(&req, "nines.ending"), "saved");
    assert_eq!(s(&req, "nines.target"), "b/gpt-4.1");
    assert_eq!((i(&req, "nines.attempts"), i(&req, "nines.failovers")), (2, 1));
    assert!(!b(&req, "nines.resumed") && !b(&req, "nines.hedged") && !b(&req, "nines.stream"));
    assert!(attr(&req, "gen_ai.request.stream").is_none() && attr(&req, "error.type").is_none());
    assert_eq!(req.status, Status::Unset);
    assert_eq!(duration(&req), Duration::from_millis(300));
    let skipped: Vec<_> = req.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(skipped, ["nines.skipped"]);

    let [first, second] = &attempts[..] else { panic!("{attempts:?}") };
    for a in &attempts {
        assert_eq!(a.span_context.trace_id(), req.span_context.trace_id());
        assert_eq!(a.parent_span_id, req.span_context.span_id());
        assert!(!a.parent_span_is_remote);
    }
    assert_eq!(first.name, "chat claude-sonnet-4-5");
    assert_eq!(s(first, "gen_ai.provider.name"), "anthropic");
    assert_eq!(s(first, "gen_ai.request.model"), "claude-sonnet-4-5");
    assert_eq!(s(first, "error.type"), "overload");
    assert_eq!(i(first, "http.response.status_code"), 529);
    assert!(!b(first, "nines.after_commit"));
    assert_eq!(s(first, "nines.outcome"), "failed");
    assert_eq!((i(first, "nines.attempt"), i(first, "nines.try")), (1, 1));
    assert_eq!((s(first, "server.address"), i(first, "server.port")), ("127.0.0.1".to_owned(), 9));
    assert_eq!(first.status, Status::error("overload 529"));
    assert!(attr(first, "gen_ai.response.model").is_none());
    assert_eq!(duration(first), Duration::from_millis(100));

    assert_eq!(second.name, "chat gpt-4.1");
    assert_eq!((s(second, "nines.provider"), s(second, "nines.target")), ("b".into(), "b/gpt-4.1".into()));
    assert_eq!(s(second, "gen_ai.response.model"), "gpt-4.1");
    assert_eq!((i(second, "gen_ai.usage.input_tokens"), i(second, "gen_ai.usage.output_tokens")), (12, 34));
    assert_eq!((s(second, "server.address"), i(second, "server.port")), ("api.example.com".to_owned(), 443));
    assert_eq!(i(second, "nines.attempt"), 2);
    assert!(attr(second, "error.type").is_none() && attr(second, "nines.hedge").is_none());
    assert_eq!(second.status, Status::Unset);
    assert_eq!(duration(second), Duration::from_millis(200));

    // No provider message in any span (it may hold a key or the prompt).
    for span in attempts.iter().chain([&req]) {
        let text = format!("{:?} {:?} {:?}", span.attributes, span.status, span.events);
        assert!(
            !text.contains("sk-live") && !text.contains("Bearer") && !text.contains("upstream said"),
            "{text}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn hedges_and_resumes_are_marked_on_their_attempts() {
    let mut f = flight(true, None);
    f.emit(EventKind::Started { target: 0, attempt: 1, role: Role::Normal });
    tokio::time::advance(Duration::from_millis(50)).await;
    f.emit(EventKind::Hedged { target: 0, to: 1, after: Duration::from_millis(50) });
    f.emit(EventKind::Started { target: 1, attempt: 1, role: Role::Normal });
    tokio::time::advance(Duration::from_millis(30)).await;
    f.emit(EventKind::Abandoned { target: 0, elapsed: Duration::from_millis(80), slow: true });
    f.emit(EventKind::Committed {
        target: 1,
        role: Role::Normal,
        elapsed: Duration::from_millis(30),
        limits: None,
    });
    tokio::time::advance(Duration::from_millis(100)).await;
    f.emit(EventKind::Failed {
        target: 1,
        role: Role::Normal,
        error: error(ErrorKind::StreamCut, None),
        elapsed: Duration::from_millis(180),
        timed_out: None,
        deadline_cut: false,
        after_commit: true,
    });
    f.emit(EventKind::Started { target: 2, attempt: 1, role: Role::Normal });
    tokio::time::advance(Duration::from_millis(40)).await;
    f.emit(EventKind::Committed {
        target: 2,
        role: Role::Normal,
        elapsed: Duration::from_millis(40),
        limits: None,
    });
    f.emit(EventKind::Resumed { from: 1, to: 2, delivered: 10, form: nines_wire::resume::Form::Instruction });
    tokio::time::advance(Duration::from_millis(60)).await;
    let tokens = Some(Tokens { input: 5, output: 6 });
    let elapsed = Duration::from_millis(280);
    f.emit(EventKind::Succeeded { target: 2, role: Role::Normal, elapsed, max_gap: None, tokens });
    f.end(Ending::Resumed, Some(2));
    let (req, attempts) = spans(&f);

    assert!(req.parent_span_id == SpanId::INVALID, "no traceparent: a new trace");
    assert!(b(&req, "nines.resumed") && b(&req, "nines.hedged") && b(&req, "gen_ai.request.stream"));
    assert_eq!((i(&req, "nines.attempts"), i(&req, "nines.failovers")), (3, 0));
    assert_eq!(s(&req, "gen_ai.provider.name"), "gcp.gemini");
    assert_eq!((i(&req, "gen_ai.usage.input_tokens"), i(&req, "gen_ai.usage.output_tokens")), (5, 6));
    assert_eq!(duration(&req), Duration::from_millis(280));

    let [slow, hedge, cont] = &attempts[..] else { panic!("{attempts:?}") };
    assert_eq!(s(slow, "nines.outcome"), "abandoned");
    assert_eq!(slow.status, Status::Unset);
    assert_eq!(duration(slow), Duration::from_millis(80));
    assert!(b(hedge, "nines.hedge"));
    assert_eq!(s(hedge, "nines.hedge_of"), "a/claude-sonnet-4-5");
    assert!(b(hedge, "nines.after_commit"));
    assert_eq!(s(hedge, "error.type"), "stream_cut");
    assert!(attr(hedge, "http.response.status_code").is_none());
    assert_eq!(hedge.status, Status::error("stream_cut"));
    assert_eq!(duration(hedge), Duration::from_millis(130));
    match attr(hedge, "gen_ai.response.time_to_first_chunk") {
        Some(Value::F64(v)) => assert!((v - 0.03).abs() < 1e-9),
        other => panic!("{other:?}"),
    }
    assert_eq!(cont.name, "generate_content gemini-2.5-flash");
    assert_eq!(s(cont, "gen_ai.operation.name"), "generate_content");
    assert_eq!(s(cont, "nines.resume_of"), "b/gpt-4.1");
    assert!(attr(cont, "nines.hedge").is_none());
    assert_eq!(duration(cont), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn a_failed_request_is_an_error_and_a_bad_traceparent_starts_a_new_trace() {
    let mut f = flight(false, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
    f.emit(EventKind::Started { target: 0, attempt: 1, role: Role::Trial(3) });
    tokio::time::advance(Duration::from_millis(10)).await;
    f.emit(EventKind::Failed {
        target: 0,
        role: Role::Trial(3),
        error: error(ErrorKind::Server, Some(500)),
        elapsed: Duration::from_millis(10),
        timed_out: None,
        deadline_cut: false,
        after_commit: false,
    });
    f.emit(EventKind::Waited { target: 0, wait: Duration::from_millis(5) });
    tokio::time::advance(Duration::from_millis(5)).await;
    f.emit(EventKind::Started { target: 0, attempt: 2, role: Role::Normal });
    tokio::time::advance(Duration::from_millis(10)).await;
    f.emit(EventKind::Failed {
        target: 0,
        role: Role::Normal,
        error: error(ErrorKind::RateLimited, Some(429)),
        elapsed: Duration::from_millis(10),
        timed_out: None,
        deadline_cut: false,
        after_commit: false,
    });
    f.end(Ending::Failed, None);
    let (req, attempts) = spans(&f);
    assert_eq!(req.parent_span_id, SpanId::INVALID);
    assert_ne!(req.span_context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(s(&req, "nines.ending"), "failed");
    assert_eq!(s(&req, "error.type"), "rate_limit");
    assert_eq!(req.status, Status::error("rate_limit 429"));
    assert!(
        attr(&req, "gen_ai.provider.name").is_none() && attr(&req, "gen_ai.usage.input_tokens").is_none()
    );
    assert_eq!((i(&req, "nines.attempts"), i(&req, "nines.failovers")), (2, 0));
    let [first, retry] = &attempts[..] else { panic!("{attempts:?}") };
    assert!(b(first, "nines.trial"));
    assert_eq!((i(retry, "nines.attempt"), i(retry, "nines.try")), (2, 2));
    assert!(attr(retry, "nines.trial").is_none());
}

#[tokio::test]
async fn an_unsampled_parent_is_respected() {
    let mut f = flight(false, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
    f.emit(EventKind::Started { target: 0, attempt: 1, role: Role::Normal });
    f.end(Ending::Cancelled, None);
    let kept = Kept::default();
    let provider = SdkTracerProvider::builder().with_span_processor(kept.clone()).build();
    let tracer = provider.tracer("test");
    record(&tracer, &f, f.log().last().unwrap(), Instant::now(), SystemTime::now());
    assert!(kept.0.lock().unwrap().is_empty());
}

#[test]
fn no_endpoint_no_pipeline() {
    assert!(Traces::start(&TracesConfig::default()).unwrap().is_none());
}

/// What a collector received: every `ExportTraceServiceRequest`'s spans, by name.
type Received = Arc<Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>;

/// A collector on a thread and runtime of its own (as a real one is elsewhere): its URL and what it received.
fn collector() -> (String, Received) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    let received = Received::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| async move {
            let req = ExportTraceServiceRequest::decode(body).unwrap();
            for rs in req.resource_spans {
                let service = rs.resource.unwrap().attributes.into_iter().find(|kv| kv.key == "service.name");
                assert!(format!("{service:?}").contains("nines-test"), "{service:?}");
                for ss in rs.scope_spans {
                    kept.lock().unwrap().extend(ss.spans);
                }
            }
            ""
        }),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}/v1/traces", listener.local_addr().unwrap())).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (rx.recv().unwrap(), received)
}

/// The whole pipeline, in a current-thread runtime (the hardest case for a blocking shutdown, which the export
/// must not need): spans queued by `flight_ended` reach the collector on `shutdown`, within its bound.
#[tokio::test]
async fn spans_reach_an_otlp_collector_and_shutdown_flushes_them() {
    let (url, received) = collector();
    let cfg = TracesConfig { otlp_endpoint: Some(url), service_name: "nines-test".to_owned() };
    let traces = Traces::start(&cfg).unwrap().unwrap();
    let mut f = flight(false, Some(PARENT));
    f.emit(EventKind::Started { target: 1, attempt: 1, role: Role::Normal });
    let tokens = Some(Tokens { input: 1, output: 2 });
    f.emit(EventKind::Succeeded {
        target: 1,
        role: Role::Normal,
        elapsed: Duration::ZERO,
        max_gap: None,
        tokens,
    });
    f.end(Ending::Served, Some(1));
    traces.flight_ended(&f, f.log().last().unwrap(), Instant::now());
    let began = Instant::now();
    traces.shutdown();
    assert!(began.elapsed() < SHUTDOWN_TIMEOUT, "{:?}", began.elapsed());
    let spans = received.lock().unwrap().clone();
    let mut names: Vec<_> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["chat gpt-4.1", "chat r"]);
    let req = spans.iter().find(|s| s.name == "chat r").unwrap();
    assert_eq!(hex(&req.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&req.parent_span_id), "00f067aa0ba902b7");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
