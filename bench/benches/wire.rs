//! Criterion benchmarks of nines-wire, the pure protocol code on the gateway's hot path.
//!
//! - `decode_request` / `encode_request`: each dialect, a small prompt and a 100 KB prompt.
//! - `translate_request`: Anthropic → OpenAI and OpenAI → Anthropic (decode one dialect, encode the other), as the
//!   gateway does for a translated request.
//! - `decode_response` / `encode_response` / `translate_response`: whole (non-streaming) answers, small and 100 KB.
//! - `check_response`: what the gateway does instead of decoding a whole answer it passes on as it is.
//! - `stream_event`: one upstream SSE event pushed through `nines_wire::stream::Decoder` and then either an
//!   `Encoder` of another dialect (translated) or re-framed as it came (same dialect: the gateway still decodes it
//!   to know where the stream stands), in steady state (the stream's head already pushed).
//! - `stream_whole`: a whole recorded stream through fresh state machines; criterion reports the time per event.
//!
//! The payloads are what the simulator sends and what the official SDKs send. Run:
//! `cargo bench --manifest-path bench/Cargo.toml` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nines_wire::stream::{Decoder, Encoder};
use nines_wire::{ChatRequest, ChatResponse, Dialect, EncodeCtx, EncodeOpts, StreamEvent, sse};
use serde_json::json;

const DIALECTS: [Dialect; 4] =
    [Dialect::OpenAiChat, Dialect::Anthropic, Dialect::Gemini, Dialect::OpenAiResponses];

const SMALL_PROMPT: &str = "Hello there! Please summarise the plot of Hamlet in two sentences.";

/// About 100 KB of prose-like words (the size of a long document pasted into a prompt).
fn big_prompt() -> String {
    const WORDS: [&str; 16] = [
        "the",
        "gateway",
        "forwards",
        "every",
        "request",
        "to",
        "a",
        "healthy",
        "provider",
        "and",
        "translates",
        "between",
        "formats",
        "when",
        "needed,",
        "quickly.",
    ];
    let mut text = String::with_capacity(100 * 1024 + 16);
    let mut i = 0;
    while text.len() < 100 * 1024 {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(WORDS[i % WORDS.len()]);
        i += 1;
    }
    text
}

fn prompts() -> [(&'static str, String); 2] {
    [("small", SMALL_PROMPT.to_owned()), ("100k", big_prompt())]
}

/// A request body as each dialect's official client sends it.
fn request_body(dialect: Dialect, text: &str) -> Vec<u8> {
    let v = match dialect {
        Dialect::OpenAiChat => json!({
            "model": "chat", "max_tokens": 16,
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}],
        }),
        Dialect::Anthropic => json!({
            "model": "chat", "max_tokens": 16, "system": "be brief",
            "messages": [{"role": "user", "content": text}],
        }),
        Dialect::Gemini => json!({
            "contents": [{"role": "user", "parts": [{"text": text}]}],
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "generationConfig": {"maxOutputTokens": 16},
        }),
        Dialect::OpenAiResponses => json!({
            "model": "chat", "max_output_tokens": 16, "instructions": "be brief",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": text}]}],
        }),
    };
    serde_json::to_vec(&v).expect("serialisable")
}

/// A whole answer as the simulator (and the real provider) sends it.
fn response_body(dialect: Dialect, text: &str) -> Vec<u8> {
    let v = match dialect {
        Dialect::OpenAiChat => json!({
            "choices": [{"finish_reason": "stop", "index": 0, "logprobs": null,
                         "message": {"annotations": [], "content": text, "refusal": null, "role": "assistant"}}],
            "created": 1_795_527_758, "id": "chatcmpl-JaHlZCotva5F2sbc6Q9UprJKrZuH6", "model": "m",
            "object": "chat.completion", "service_tier": "default", "system_fingerprint": "fp_nines_sim",
            "usage": {"completion_tokens": 10, "prompt_tokens": 7, "total_tokens": 17,
                      "completion_tokens_details": {"accepted_prediction_tokens": 0, "audio_tokens": 0,
                                                    "reasoning_tokens": 0, "rejected_prediction_tokens": 0},
                      "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0}},
        }),
        Dialect::Anthropic => json!({
            "content": [{"text": text, "type": "text"}], "id": "msg_01flB9i46oqQiRyaOIvBvyD8", "model": "m",
            "role": "assistant", "stop_reason": "end_turn", "stop_sequence": null, "type": "message",
            "usage": {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "input_tokens": 4,
                      "output_tokens": 7},
        }),
        Dialect::Gemini => json!({
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP",
                            "index": 0}],
            "modelVersion": "m", "responseId": "ds4j7GjsxeAlPiQYtoJdlV",
            "usageMetadata": {"candidatesTokenCount": 7, "promptTokenCount": 4, "totalTokenCount": 11},
        }),
        Dialect::OpenAiResponses => json!({
            "id": "resp_0a1b2c3d4e5f", "object": "response", "created_at": 1_795_527_758, "status": "completed",
            "model": "m", "output": [{"id": "msg_0a1b2c3d4e5f", "type": "message", "status": "completed",
            "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": 4, "output_tokens": 7, "total_tokens": 11,
                      "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
        }),
    };
    serde_json::to_vec(&v).expect("serialisable")
}

fn decode_request(dialect: Dialect, body: &[u8]) -> ChatRequest {
    let mut req = dialect.decode_request(body).expect("the benchmark's request decodes");
    if req.model.is_empty() {
        req.model = "chat".to_owned(); // Gemini carries the model in the path
    }
    req
}

fn decode_response(dialect: Dialect, body: &[u8]) -> ChatResponse {
    dialect.decode_response(body).expect("the benchmark's response decodes")
}

fn ctx() -> EncodeCtx {
    // `..Default::default()`: later fields (such as the upstream dialect, which only matters for signed
    // reasoning, absent here) keep this benchmark compiling as the canonical model grows.
    EncodeCtx { created: 1_795_527_758, model: "m".to_owned(), ..Default::default() }
}

fn requests(c: &mut Criterion) {
    let opts = EncodeOpts::default();
    let prompts = prompts();

    let mut g = c.benchmark_group("decode_request");
    for (size, text) in &prompts {
        for dialect in DIALECTS {
            let body = request_body(dialect, text);
            g.throughput(Throughput::Bytes(body.len() as u64));
            g.bench_with_input(BenchmarkId::new(dialect.name(), size), &body, |b, body| {
                b.iter(|| dialect.decode_request(black_box(body)).expect("decodes"))
            });
        }
    }
    g.finish();

    // What every request pays before it is parsed: its shape (objects, arrays, depth) counted on its bytes.
    let mut g = c.benchmark_group("request_shape");
    for (size, text) in &prompts {
        let body = request_body(Dialect::OpenAiChat, text);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("openai", size), &body, |b, body| {
            b.iter(|| {
                nines_wire::shape::check(black_box(body), 100_000, 64).expect("a real request passes")
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("encode_request");
    for (size, text) in &prompts {
        for dialect in DIALECTS {
            let req = decode_request(dialect, &request_body(dialect, text));
            dialect.encode_request(&req, "m", &opts).expect("the benchmark's request encodes");
            g.bench_with_input(BenchmarkId::new(dialect.name(), size), &req, |b, req| {
                b.iter(|| dialect.encode_request(black_box(req), "m", &opts).expect("encodes"))
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("translate_request");
    for (size, text) in &prompts {
        for (from, to) in
            [(Dialect::Anthropic, Dialect::OpenAiChat), (Dialect::OpenAiChat, Dialect::Anthropic)]
        {
            let body = request_body(from, text);
            let req = decode_request(from, &body);
            to.encode_request(&req, "m", &opts).expect("the benchmark's request translates");
            g.throughput(Throughput::Bytes(body.len() as u64));
            let id = BenchmarkId::new(format!("{}_to_{}", from.name(), to.name()), size);
            g.bench_with_input(id, &body, |b, body| {
                b.iter(|| {
                    let req = from.decode_request(black_box(body)).expect("decodes");
                    to.encode_request(&req, "m", &opts).expect("encodes")
                })
            });
        }
    }
    g.finish();
}

fn responses(c: &mut Criterion) {
    let prompts = prompts();

    let mut g = c.benchmark_group("decode_response");
    for (size, text) in &prompts {
        for dialect in DIALECTS {
            let body = response_body(dialect, text);
            decode_response(dialect, &body);
            g.throughput(Throughput::Bytes(body.len() as u64));
            g.bench_with_input(BenchmarkId::new(dialect.name(), size), &body, |b, body| {
                b.iter(|| dialect.decode_response(black_box(body)).expect("decodes"))
            });
        }
    }
    g.finish();

    // What the gateway does instead of decoding when the client speaks the answer's dialect.
    let mut g = c.benchmark_group("check_response");
    for (size, text) in &prompts {
        for dialect in DIALECTS {
            let body = response_body(dialect, text);
            dialect.check_response(&body).expect("the benchmark's response passes the check");
            g.throughput(Throughput::Bytes(body.len() as u64));
            g.bench_with_input(BenchmarkId::new(dialect.name(), size), &body, |b, body| {
                b.iter(|| dialect.check_response(black_box(body)).expect("passes"))
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("encode_response");
    let ctx = ctx();
    for (size, text) in &prompts {
        let resp = decode_response(Dialect::OpenAiChat, &response_body(Dialect::OpenAiChat, text));
        for dialect in DIALECTS {
            g.bench_with_input(BenchmarkId::new(dialect.name(), size), &resp, |b, resp| {
                b.iter(|| dialect.encode_response(black_box(resp), &ctx))
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("translate_response");
    for (size, text) in &prompts {
        for (from, to) in
            [(Dialect::OpenAiChat, Dialect::Anthropic), (Dialect::Anthropic, Dialect::OpenAiChat)]
        {
            let body = response_body(from, text);
            g.throughput(Throughput::Bytes(body.len() as u64));
            let id = BenchmarkId::new(format!("{}_to_{}", from.name(), to.name()), size);
            g.bench_with_input(id, &body, |b, body| {
                b.iter(|| {
                    let resp = from.decode_response(black_box(body)).expect("decodes");
                    to.encode_response(&resp, &ctx)
                })
            });
        }
    }
    g.finish();
}

/// One SSE event as `eventsource-stream` hands it to the gateway: its name (empty when absent) and its data.
#[derive(Clone)]
struct Event {
    name: String,
    data: String,
}

fn ev(name: &str, data: serde_json::Value) -> Event {
    Event { name: name.to_owned(), data: data.to_string() }
}

const DELTAS: [&str; 16] = [
    "s",
    " says:",
    " Hello",
    " there!",
    " Please",
    " summarise",
    " the",
    " plot",
    " of",
    " Hamlet",
    " in",
    " two",
    " sentences.",
    " [system:",
    " be",
    " brief]",
];

/// A recorded stream of `dialect` as the simulator sends it: (head events before the first content, one content
/// event, the whole stream).
fn recorded_stream(dialect: Dialect) -> (Vec<Event>, Event, Vec<Event>) {
    match dialect {
        Dialect::OpenAiChat => {
            let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
                ev(
                    "",
                    json!({"choices": [{"delta": delta, "finish_reason": finish, "index": 0, "logprobs": null}],
                    "created": 1_795_527_758, "id": "chatcmpl-naaowI8Atli1KHoC3FXZUbWdXt9cZ", "model": "m",
                    "object": "chat.completion.chunk", "service_tier": "default",
                    "system_fingerprint": "fp_nines_sim"}),
                )
            };
            let head = vec![chunk(json!({"content": "", "refusal": null, "role": "assistant"}), json!(null))];
            let delta = chunk(json!({"content": " hello"}), json!(null));
            let mut all = head.clone();
            all.extend(DELTAS.iter().map(|d| chunk(json!({"content": d}), json!(null))));
            all.push(chunk(json!({}), json!("stop")));
            all.push(ev("", json!({"choices": [], "created": 1_795_527_758, "id": "chatcmpl-naaowI8Atli1KHoC3FXZUbWdXt9cZ",
                "model": "m", "object": "chat.completion.chunk",
                "usage": {"completion_tokens": 16, "prompt_tokens": 13, "total_tokens": 29}})));
            all.push(Event { name: String::new(), data: "[DONE]".to_owned() });
            (head, delta, all)
        }
        Dialect::Anthropic => {
            let head = vec![
                ev(
                    "message_start",
                    json!({"message": {"content": [], "id": "msg_01DNFo5281Y9GdSrv4861jXw",
                    "model": "m", "role": "assistant", "stop_reason": null, "stop_sequence": null,
                    "type": "message", "usage": {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                    "input_tokens": 13, "output_tokens": 1}}, "type": "message_start"}),
                ),
                ev(
                    "content_block_start",
                    json!({"content_block": {"text": "", "type": "text"}, "index": 0,
                    "type": "content_block_start"}),
                ),
                ev("ping", json!({"type": "ping"})),
            ];
            let delta_of = |t: &str| {
                ev(
                    "content_block_delta",
                    json!({"delta": {"text": t, "type": "text_delta"}, "index": 0,
                    "type": "content_block_delta"}),
                )
            };
            let delta = delta_of(" hello");
            let mut all = head.clone();
            all.extend(DELTAS.iter().map(|d| delta_of(d)));
            all.push(ev("content_block_stop", json!({"index": 0, "type": "content_block_stop"})));
            all.push(ev(
                "message_delta",
                json!({"delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "type": "message_delta", "usage": {"output_tokens": 16}}),
            ));
            all.push(ev("message_stop", json!({"type": "message_stop"})));
            (head, delta, all)
        }
        Dialect::Gemini => {
            let chunk = |t: &str| {
                json!({"candidates": [{"content": {"parts": [{"text": t}], "role": "model"}, "index": 0}],
                    "modelVersion": "m", "responseId": "vV22C3ywnHPcXz09coJgSh"})
            };
            let head = vec![ev("", chunk(DELTAS[0]))];
            let delta = ev("", chunk(" hello"));
            let mut all = head.clone();
            all.extend(DELTAS[1..DELTAS.len() - 1].iter().map(|d| ev("", chunk(d))));
            let mut last = chunk(DELTAS[DELTAS.len() - 1]);
            last["candidates"][0]["finishReason"] = json!("STOP");
            last["usageMetadata"] =
                json!({"candidatesTokenCount": 16, "promptTokenCount": 13, "totalTokenCount": 29});
            all.push(ev("", last));
            (head, delta, all)
        }
        Dialect::OpenAiResponses => {
            // The OpenAI stream through the gateway's own Responses encoder: the event sequence a Responses client
            // gets, which is what a Responses provider sends.
            let (_, _, openai) = recorded_stream(Dialect::OpenAiChat);
            let mut pipe = Pipe::new(Dialect::OpenAiChat, Dialect::OpenAiResponses);
            let mut bytes = Vec::new();
            for e in &openai {
                bytes.extend(pipe.push(e));
            }
            bytes.extend(pipe.finish());
            let text = String::from_utf8(bytes).expect("UTF-8");
            let all: Vec<Event> =
                sse::parse(&text).into_iter().map(|f| Event { name: f.event, data: f.data }).collect();
            let first_delta = all
                .iter()
                .position(|e| e.name == "response.output_text.delta")
                .expect("the encoded stream has text deltas");
            let head = all[..first_delta].to_vec();
            let delta = all[first_delta + 1].clone();
            (head, delta, all)
        }
    }
}

/// A decoder (and, when translating, an encoder) that has already been fed the stream's head.
struct Pipe {
    decoder: Decoder,
    encoder: Option<Encoder>,
    upstream: Dialect,
    events: Vec<StreamEvent>,
}

impl Pipe {
    fn new(upstream: Dialect, client: Dialect) -> Pipe {
        let encoder = (upstream != client).then(|| Encoder::new(client, ctx(), true));
        Pipe { decoder: Decoder::new(upstream), encoder, upstream, events: Vec::new() }
    }

    /// What the gateway does with one upstream event after the commit point (`respond::stream`): decode it, then
    /// encode the canonical events for the client, or (same dialect) re-frame the event as it came.
    fn push(&mut self, e: &Event) -> Vec<u8> {
        let mut out = Vec::new();
        self.decoder.push(&e.name, &e.data, &mut self.events).expect("the recorded event decodes");
        match &mut self.encoder {
            Some(enc) => {
                for ev in self.events.drain(..) {
                    enc.push(&ev, &mut out);
                }
            }
            None => {
                let named = matches!(self.upstream, Dialect::Anthropic | Dialect::OpenAiResponses);
                let name = (named && !e.name.is_empty()).then_some(e.name.as_str());
                sse::write_event(&mut out, name, &e.data);
                self.events.clear();
            }
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.decoder.finish(&mut self.events).expect("the recorded stream is complete");
        if let Some(enc) = &mut self.encoder {
            for ev in self.events.drain(..) {
                enc.push(&ev, &mut out);
            }
        }
        self.events.clear();
        out
    }
}

const STREAM_PAIRS: [(Dialect, Dialect); 9] = [
    (Dialect::OpenAiChat, Dialect::Anthropic),
    (Dialect::OpenAiChat, Dialect::OpenAiResponses),
    (Dialect::OpenAiResponses, Dialect::Anthropic),
    (Dialect::OpenAiResponses, Dialect::OpenAiResponses),
    (Dialect::Anthropic, Dialect::OpenAiChat),
    (Dialect::Gemini, Dialect::OpenAiChat),
    (Dialect::Gemini, Dialect::Anthropic),
    (Dialect::OpenAiChat, Dialect::OpenAiChat),
    (Dialect::Anthropic, Dialect::Anthropic),
];

fn pair_name(upstream: Dialect, client: Dialect) -> String {
    if upstream == client {
        format!("{}_passthrough", upstream.name())
    } else {
        format!("{}_to_{}", upstream.name(), client.name())
    }
}

fn streams(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_event");
    g.throughput(Throughput::Elements(1));
    for (upstream, client) in STREAM_PAIRS {
        let (head, delta, _) = recorded_stream(upstream);
        let mut pipe = Pipe::new(upstream, client);
        for e in &head {
            pipe.push(e);
        }
        assert!(!pipe.push(&delta).is_empty(), "a content event produces client bytes");
        g.bench_function(pair_name(upstream, client), |b| b.iter(|| pipe.push(black_box(&delta))));
    }
    g.finish();

    let mut g = c.benchmark_group("stream_whole");
    for (upstream, client) in STREAM_PAIRS {
        let (_, _, all) = recorded_stream(upstream);
        g.throughput(Throughput::Elements(all.len() as u64));
        g.bench_function(pair_name(upstream, client), |b| {
            b.iter(|| {
                let mut pipe = Pipe::new(upstream, client);
                let mut bytes = 0;
                for e in &all {
                    bytes += pipe.push(black_box(e)).len();
                }
                bytes + pipe.finish().len()
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    // Short by default: these are microsecond-scale functions, and the machine is shared.
    Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = wire;
    config = config();
    targets = requests, responses, streams
}
criterion_main!(wire);
