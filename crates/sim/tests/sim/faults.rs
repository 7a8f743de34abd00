//! Every fault kind, in every dialect where its shape differs, and the FIFO/count semantics.

use std::time::Duration;

use futures_util::StreamExt;
use nines_sim::Fault;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn status_fault_uses_each_providers_error_shape() {
    let sim = sim().await;
    sim.push_fault(Fault::status(529).times(2));
    for _ in 0..2 {
        let resp = post_anthropic(&sim, &anthropic_body("hi")).await;
        assert_eq!(resp.status(), 529);
        assert!(resp.headers().contains_key("request-id"));
        assert!(!resp.headers().contains_key("retry-after"));
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["type"], "error");
        assert_eq!(err["error"]["type"], "overloaded_error");
    }
    assert_eq!(post_anthropic(&sim, &anthropic_body("hi")).await.status(), 200);

    sim.push_fault(Fault::status_retry_after(429, 7));
    let resp = post(&sim, OPENAI, &openai_body("hi")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "requests");
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");

    sim.push_fault(Fault::status(500));
    let err: Value = post(&sim, OPENAI, &openai_body("hi")).await.json().await.unwrap();
    assert_eq!(err["error"]["type"], "server_error");

    sim.push_fault(Fault::status(503));
    let resp = post(&sim, GEMINI, &gemini_body("hi")).await;
    assert_eq!(resp.status(), 503);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err["error"],
        json!({"code": 503, "message": err["error"]["message"], "status": "UNAVAILABLE"})
    );

    sim.push_fault(Fault::status_retry_after(429, 2));
    let resp = post(&sim, GEMINI, &gemini_body("hi")).await;
    assert_eq!(resp.headers()["retry-after"], "2");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(err["error"]["details"][0]["retryDelay"], "2s");

    sim.push_fault(Fault::status(429));
    let err: Value = post_anthropic(&sim, &anthropic_body("hi")).await.json().await.unwrap();
    assert_eq!(err["error"]["type"], "rate_limit_error");
    sim.push_fault(Fault::status(500));
    let err: Value = post_anthropic(&sim, &anthropic_body("hi")).await.json().await.unwrap();
    assert_eq!(err["error"]["type"], "api_error");
    assert_eq!(sim.total_hits(), 9);
}

#[tokio::test]
async fn faults_are_fifo_and_shared_by_all_paths() {
    let sim = sim().await;
    sim.push_fault(Fault::status(500));
    sim.push_fault(Fault::status(503).times(2));
    assert_eq!(post(&sim, OPENAI, &openai_body("hi")).await.status(), 500);
    assert_eq!(post(&sim, GEMINI, &gemini_body("hi")).await.status(), 503);
    assert_eq!(post_anthropic(&sim, &anthropic_body("hi")).await.status(), 503);
    assert_eq!(post_anthropic(&sim, &anthropic_body("hi")).await.status(), 200);

    sim.push_fault(Fault::status(529).forever());
    for _ in 0..5 {
        assert_eq!(post_anthropic(&sim, &anthropic_body("hi")).await.status(), 529);
    }
    sim.reset();
    assert_eq!(sim.total_hits(), 0);
    assert_eq!(post_anthropic(&sim, &anthropic_body("hi")).await.status(), 200);
}

#[tokio::test]
async fn hang_never_answers_and_consumes_one_unit() {
    let sim = sim().await;
    sim.push_fault(Fault::hang());
    let err = client()
        .post(format!("{}{OPENAI}", sim.base_url()))
        .timeout(Duration::from_millis(300))
        .json(&openai_body("hi"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(sim.hits(OPENAI), 1);
    assert_eq!(post(&sim, OPENAI, &openai_body("hi")).await.status(), 200);
}

#[tokio::test]
async fn shutdown_ends_a_hanging_request() {
    let sim = sim().await;
    sim.push_fault(Fault::hang());
    let url = format!("{}{ANTHROPIC}", sim.base_url());
    let request = client()
        .post(url)
        .header("anthropic-version", "2023-06-01")
        .timeout(Duration::from_secs(30))
        .json(&anthropic_body("hi"))
        .send();
    let stop = async {
        while sim.hits(ANTHROPIC) == 0 {
            tokio::task::yield_now().await;
        }
        sim.shutdown().await;
    };
    let (result, ()) = tokio::join!(request, stop);
    let err = result.unwrap_err();
    assert!(!err.is_timeout(), "the connection is dropped, not left hanging: {err:?}");
}

#[tokio::test]
async fn reset_closes_the_connection_with_an_rst() {
    let sim = sim().await;
    sim.push_fault(Fault::reset());
    let err = client()
        .post(format!("{}{GEMINI}", sim.base_url()))
        .timeout(Duration::from_secs(10))
        .json(&gemini_body("hi"))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert!(has_io_kind(&err, std::io::ErrorKind::ConnectionReset), "expected a connection reset: {err:?}");
    assert_eq!(sim.hits(GEMINI), 1);
    assert_eq!(post(&sim, GEMINI, &gemini_body("hi")).await.status(), 200);
}

/// Read a streaming body until it ends or fails; returns what arrived and whether it failed.
async fn read_all(resp: reqwest::Response) -> (String, bool) {
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(bytes) => got.extend_from_slice(&bytes),
            Err(_) => return (String::from_utf8(got).unwrap(), true),
        }
    }
    (String::from_utf8(got).unwrap(), false)
}

#[tokio::test]
async fn cut_stream_sends_some_events_then_aborts() {
    let sim = sim().await;
    sim.push_fault(Fault::cut(2));
    let mut body = anthropic_body("hello there");
    body["stream"] = json!(true);
    let resp = post_anthropic(&sim, &body).await;
    assert_eq!(resp.status(), 200);
    let (text, failed) = read_all(resp).await;
    assert!(failed, "the body must end in an error, not a clean end");
    let names: Vec<String> = parse_sse(&text).into_iter().map(|e| e.name.unwrap()).collect();
    assert_eq!(names, ["message_start", "content_block_start"]);

    sim.push_fault(Fault::cut(3));
    let mut body = openai_body("hello there");
    body["stream"] = json!(true);
    let (text, failed) = read_all(post(&sim, OPENAI, &body).await).await;
    assert!(failed);
    let events = parse_sse(&text);
    assert_eq!(events.len(), 3);
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn cut_json_sends_half_a_body_then_aborts() {
    let sim = sim().await;
    sim.push_fault(Fault::cut(0));
    let resp = post(&sim, OPENAI, &openai_body("hello")).await;
    assert_eq!(resp.status(), 200);
    let (text, failed) = read_all(resp).await;
    assert!(failed);
    assert!(text.starts_with('{'));
    assert!(serde_json::from_str::<Value>(&text).is_err());
}

#[tokio::test]
async fn garbage_is_not_json() {
    let sim = sim().await;
    sim.push_fault(Fault::garbage());
    let resp = post_anthropic(&sim, &anthropic_body("hi")).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    sim.push_fault(Fault::garbage());
    let url = format!("{}{GEMINI_STREAM}?alt=sse", sim.base_url());
    let resp = client().post(url).json(&gemini_body("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let events = parse_sse(&resp.text().await.unwrap());
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| serde_json::from_str::<Value>(&e.data).is_err()));
}

#[tokio::test]
async fn delay_answers_normally_after_the_wait() {
    let sim = sim().await;
    sim.push_fault(Fault::delay(50));
    let started = tokio::time::Instant::now();
    let resp = post(&sim, OPENAI, &openai_body("hi")).await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["choices"][0]["message"]["content"], "alpha says: hi");
}

#[tokio::test]
async fn drip_streams_the_same_events_slowly() {
    let sim = sim().await;
    sim.push_fault(Fault::drip(5));
    let mut body = anthropic_body("hello there");
    body["stream"] = json!(true);
    let started = tokio::time::Instant::now();
    let (text, failed) = read_all(post_anthropic(&sim, &body).await).await;
    assert!(!failed);
    // 10 events, 9 pauses.
    assert!(started.elapsed() >= Duration::from_millis(45));
    let events = parse_sse(&text);
    assert_eq!(events.len(), 10);
    assert_eq!(events.last().unwrap().name.as_deref(), Some("message_stop"));
}

#[tokio::test]
async fn context_length_answers_each_providers_too_long_error() {
    let sim = sim().await;
    sim.push_fault(Fault::context_length());
    let resp = post_anthropic(&sim, &anthropic_body("hi")).await;
    assert_eq!(resp.status(), 400);
    let request_id = resp.headers()["request-id"].to_str().unwrap().to_owned();
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err,
        json!({
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"},
            "request_id": request_id,
        })
    );

    let openai_error = json!({"error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 \
                    tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }});
    sim.push_fault(Fault::context_length().times(2));
    let resp = post(&sim, OPENAI, &openai_body("hi")).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap(), openai_error);
    let resp = post(&sim, RESPONSES, &responses_body("hi")).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap(), openai_error);

    sim.push_fault(Fault::context_length());
    let resp = post(&sim, GEMINI, &gemini_body("hi")).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": {
            "code": 400,
            "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            "status": "INVALID_ARGUMENT",
        }})
    );
    assert_eq!(post(&sim, GEMINI, &gemini_body("hi")).await.status(), 200);
}

/// Read a stream, noting when each complete SSE event arrived (relative to `started`).
async fn event_times(resp: reqwest::Response, started: tokio::time::Instant) -> (String, Vec<Duration>) {
    let mut stream = resp.bytes_stream();
    let mut got = String::new();
    let mut times = Vec::new();
    while let Some(item) = stream.next().await {
        got.push_str(std::str::from_utf8(&item.unwrap()).unwrap());
        let complete = got.replace("\r\n", "\n").matches("\n\n").count();
        while times.len() < complete {
            times.push(started.elapsed());
        }
    }
    (got, times)
}

#[tokio::test]
async fn stall_sends_the_first_events_then_pauses() {
    let sim = sim().await;
    sim.push_fault(Fault::stall(1, 400));
    let mut body = anthropic_body("hello there");
    body["stream"] = json!(true);
    let started = tokio::time::Instant::now();
    let resp = post_anthropic(&sim, &body).await;
    assert_eq!(resp.status(), 200);
    let (text, times) = event_times(resp, started).await;
    let events = parse_sse(&text);
    assert_eq!(events.len(), 10, "every event arrives");
    assert_eq!(events[0].name.as_deref(), Some("message_start"));
    assert_eq!(events.last().unwrap().name.as_deref(), Some("message_stop"));
    assert!(times[0] < Duration::from_millis(350), "message_start comes promptly: {times:?}");
    assert!(times[1] - times[0] >= Duration::from_millis(350), "then the stall: {times:?}");

    // Non-streaming: a wait before the headers, then the normal answer.
    sim.push_fault(Fault::stall(1, 50));
    let started = tokio::time::Instant::now();
    let resp = post(&sim, OPENAI, &openai_body("hi")).await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["choices"][0]["message"]["content"], "alpha says: hi");
}

/// Model listings (what a gateway's probe asks for) answer in each provider's shape, count as hits and suffer faults
/// like any model request: a provider that is down is down for its listing too.
#[tokio::test]
async fn model_listings_answer_in_each_shape_and_take_faults() {
    let sim = sim().await;
    let c = client();
    let get = |path: &str, anthropic: bool| {
        let mut req = c.get(format!("{}{path}", sim.base_url()));
        if anthropic {
            req = req.header("anthropic-version", "2023-06-01");
        }
        req.send()
    };
    let v: Value = get("/v1/models", false).await.unwrap().json().await.unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "gpt-alpha");
    let v: Value = get("/v1/models", true).await.unwrap().json().await.unwrap();
    assert_eq!(v["data"][0]["type"], "model");
    let v: Value = get("/v1beta/models", false).await.unwrap().json().await.unwrap();
    assert_eq!(v["models"][0]["name"], "models/gemini-alpha");
    assert_eq!(sim.total_hits(), 3);

    sim.push_fault(Fault::status(529));
    let resp = get("/v1/models", true).await.unwrap();
    assert_eq!(resp.status(), 529);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "overloaded_error", "Anthropic's shape: {err}");
}

/// A streaming request of each dialect (Gemini with `alt=sse`), and how to send it.
async fn stream_of(sim: &nines_sim::Sim, dialect: &str) -> reqwest::Response {
    match dialect {
        "anthropic" => {
            let mut body = anthropic_body("hello there");
            body["stream"] = json!(true);
            post_anthropic(sim, &body).await
        }
        "openai" => {
            let mut body = openai_body("hello there");
            body["stream"] = json!(true);
            post(sim, OPENAI, &body).await
        }
        "responses" => {
            let mut body = responses_body("hello there");
            body["stream"] = json!(true);
            post(sim, RESPONSES, &body).await
        }
        _ => {
            let url = format!("{}{GEMINI_STREAM}?alt=sse", sim.base_url());
            client().post(url).json(&gemini_body("hello there")).send().await.unwrap()
        }
    }
}

const DIALECTS: [&str; 4] = ["anthropic", "openai", "responses", "gemini"];

#[tokio::test]
async fn malformed_sends_one_event_that_is_not_json_then_the_rest() {
    let sim = sim().await;
    for dialect in DIALECTS {
        let (normal, failed) = read_all(stream_of(&sim, dialect).await).await;
        assert!(!failed);
        let normal = parse_sse(&normal);
        for after in [0, 2, 4] {
            sim.push_fault(Fault::malformed(after));
            let resp = stream_of(&sim, dialect).await;
            assert_eq!(resp.status(), 200);
            let (text, failed) = read_all(resp).await;
            assert!(!failed, "{dialect}: the body ends cleanly");
            let events = parse_sse(&text);
            assert_eq!(events.len(), normal.len() + 1, "{dialect} after {after}: one event more");
            let bad = &events[after];
            assert!(serde_json::from_str::<Value>(&bad.data).is_err(), "{dialect}: {}", bad.data);
            assert!(bad.data.starts_with('{'), "{dialect}: a JSON object cut short: {}", bad.data);
            let expected_name = match dialect {
                "anthropic" => Some("content_block_delta"),
                "responses" => Some("response.output_text.delta"),
                _ => None,
            };
            assert_eq!(bad.name.as_deref(), expected_name, "{dialect}");
            // Before and after it, the stream as usual (ids aside).
            let names = |events: &[Event]| events.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
            assert_eq!(names(&events[..after]), names(&normal[..after]), "{dialect}");
            assert_eq!(names(&events[after + 1..]), names(&normal[after..]), "{dialect}");
            for e in events.iter().enumerate().filter(|(i, _)| *i != after).map(|(_, e)| e) {
                if e.data != "[DONE]" {
                    e.json();
                }
            }
        }
    }
    // Not a stream: a body that is not JSON, as `garbage`.
    sim.push_fault(Fault::malformed(1));
    let resp = post(&sim, GEMINI, &gemini_body("hi")).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
}

#[tokio::test]
async fn in_band_error_ends_the_stream_with_the_providers_error_event() {
    let sim = sim().await;
    for dialect in DIALECTS {
        sim.push_fault(Fault::in_band_error(3, 529));
        let resp = stream_of(&sim, dialect).await;
        assert_eq!(resp.status(), 200);
        let (text, failed) = read_all(resp).await;
        assert!(!failed, "{dialect}: the body ends cleanly, no abort");
        let events = parse_sse(&text);
        assert_eq!(events.len(), 4, "{dialect}: three events, then the error:\n{text}");
        let error = events[3].json();
        match dialect {
            "anthropic" => {
                assert_eq!(events[3].name.as_deref(), Some("error"));
                assert_eq!(
                    error,
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                );
            }
            "openai" => {
                assert_eq!(events[3].name, None);
                assert_eq!(
                    error,
                    json!({"error": {
                        "message": "The server had an error while processing your request. Sorry about that!",
                        "type": "server_error", "param": null, "code": null}})
                );
                assert!(!text.contains("[DONE]"));
            }
            "responses" => {
                assert_eq!(events[3].name.as_deref(), Some("response.failed"));
                assert_eq!(error["type"], "response.failed");
                assert_eq!(error["sequence_number"], 3);
                let created = events[0].json();
                assert_eq!(error["response"]["id"], created["response"]["id"]);
                assert_eq!(error["response"]["status"], "failed");
                assert_eq!(error["response"]["error"]["code"], "server_error");
                assert!(error["response"]["error"]["message"].is_string());
            }
            _ => {
                assert_eq!(events[3].name, None);
                assert_eq!(error["error"]["code"], 529);
                assert_eq!(error["error"]["status"], "INTERNAL");
            }
        }
    }

    // The error type follows the status.
    for (status, kind) in [(429, "rate_limit_error"), (500, "api_error"), (503, "api_error")] {
        sim.push_fault(Fault::in_band_error(1, status));
        let events = parse_sse(&read_all(stream_of(&sim, "anthropic").await).await.0);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].json()["error"]["type"], kind, "{status}");
    }
    sim.push_fault(Fault::in_band_error(0, 503));
    let events = parse_sse(&read_all(stream_of(&sim, "gemini").await).await.0);
    assert_eq!(
        events[0].json(),
        json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                         "status": "UNAVAILABLE"}})
    );
    sim.push_fault(Fault::in_band_error(2, 429));
    let events = parse_sse(&read_all(stream_of(&sim, "responses").await).await.0);
    assert_eq!(events[2].json()["response"]["error"]["code"], "rate_limit_exceeded");

    // `after` counts the same events as `cut`: Anthropic's first two are message_start and content_block_start.
    sim.push_fault(Fault::in_band_error(2, 529));
    let events = parse_sse(&read_all(stream_of(&sim, "anthropic").await).await.0);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(names, ["message_start", "content_block_start", "error"]);

    // Not a stream: the status, as a `status` fault gives it.
    sim.push_fault(Fault::in_band_error(3, 529));
    let resp = post_anthropic(&sim, &anthropic_body("hi")).await;
    assert_eq!(resp.status(), 529);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "overloaded_error");
    sim.push_fault(Fault::in_band_error(3, 503));
    let resp = post(&sim, OPENAI, &openai_body("hi")).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(post(&sim, OPENAI, &openai_body("hi")).await.status(), 200);
}

#[tokio::test]
async fn repeat_does_nothing_to_a_request_that_continues_nothing() {
    let sim = sim().await;
    sim.push_fault(Fault::repeat(3).times(2));
    let got: Value = post(&sim, OPENAI, &openai_body("hi")).await.json().await.unwrap();
    assert_eq!(got["choices"][0]["message"]["content"], "alpha says: hi");
    assert_eq!(sim.total_hits(), 1);
    let body = json!({"model": "gpt-test", "messages": [
        {"role": "user", "content": "hello there"}, {"role": "assistant", "content": "beta says:"}]});
    let got: Value = post(&sim, OPENAI, &body).await.json().await.unwrap();
    assert_eq!(got["choices"][0]["message"]["content"], "beta says: hello there", "the second unit repeats");
    let got: Value = post(&sim, OPENAI, &body).await.json().await.unwrap();
    assert_eq!(got["choices"][0]["message"]["content"], " hello there", "and the fault is used up");
}
