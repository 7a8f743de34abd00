//! Rate limits: each provider's headers on counted answers (plain and streaming), its 429 with `retry-after` over
//! the limit, refusals and faulted requests not counted, the fixed window ending, and the control route.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nines_sim::{Fault, RateLimit};
use serde_json::{Value, json};

use crate::common::*;

fn requests(n: u64, window_ms: u64) -> RateLimit {
    RateLimit { requests: Some(n), tokens: None, window_ms }
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers().get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
}

/// The UNIX time of an RFC 3339 UTC timestamp `YYYY-MM-DDTHH:MM:SSZ` (days counted by hand, for the test).
fn unix_of(stamp: &str) -> u64 {
    assert_eq!(stamp.len(), 20, "{stamp}");
    let b = stamp.as_bytes();
    assert_eq!((b[4], b[7], b[10], b[13], b[16], b[19]), (b'-', b'-', b'T', b':', b':', b'Z'), "{stamp}");
    let num = |r: std::ops::Range<usize>| stamp[r].parse::<u64>().unwrap();
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let leap = |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
    let mut days = (1970..year).map(|y| if leap(y) { 366 } else { 365 }).sum::<u64>();
    let lengths = [31, if leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    days += lengths[..(month - 1) as usize].iter().sum::<u64>() + day - 1;
    days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19)
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn anthropic_reports_its_headers_and_refuses_the_third_request() {
    let sim = sim().await;
    sim.set_rate_limit(Some(requests(2, 60_000)));
    for remaining in ["1", "0"] {
        let resp = post_anthropic(&sim, &anthropic_body("hi")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "anthropic-ratelimit-requests-limit"), "2");
        assert_eq!(header(&resp, "anthropic-ratelimit-requests-remaining"), remaining);
        let reset = unix_of(header(&resp, "anthropic-ratelimit-requests-reset"));
        let now = now_unix();
        assert!(reset >= now && reset <= now + 61, "reset {reset}, now {now}");
        assert!(!resp.headers().contains_key("anthropic-ratelimit-tokens-limit"), "no token limit is set");
        assert!(!resp.headers().contains_key("retry-after"));
        let got: Value = resp.json().await.unwrap();
        assert_eq!(got["content"][0]["text"], "alpha says: hi");
    }
    let resp = post_anthropic(&sim, &anthropic_body("hi")).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = header(&resp, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(header(&resp, "anthropic-ratelimit-requests-remaining"), "0");
    let request_id = header(&resp, "request-id").to_owned();
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err,
        json!({
            "type": "error",
            "error": {
                "type": "rate_limit_error",
                "message": "This request would exceed the rate limit for your organization. Please try again later.",
            },
            "request_id": request_id,
        })
    );
    assert_eq!(sim.hits(ANTHROPIC), 3, "refused requests are hits too");
}

#[tokio::test]
async fn anthropic_token_budget_and_streams() {
    let sim = sim().await;
    let big = anthropic_body("hi");
    let mut small = anthropic_body("hi");
    small["max_tokens"] = json!(1);
    let cost = |body: &Value| body.to_string().len() as u64 / 4 + body["max_tokens"].as_u64().unwrap();
    let mut stream = big.clone();
    stream["stream"] = json!(true);
    let budget = cost(&stream) + cost(&small);
    sim.set_rate_limit(Some(RateLimit { requests: None, tokens: Some(budget), window_ms: 60_000 }));

    let resp = post_anthropic(&sim, &stream).await;
    assert_eq!(resp.status(), 200);
    for kind in ["tokens", "input-tokens", "output-tokens"] {
        assert_eq!(header(&resp, &format!("anthropic-ratelimit-{kind}-limit")), budget.to_string());
        assert_eq!(
            header(&resp, &format!("anthropic-ratelimit-{kind}-remaining")),
            (budget - cost(&stream)).to_string()
        );
        unix_of(header(&resp, &format!("anthropic-ratelimit-{kind}-reset")));
    }
    assert!(!resp.headers().contains_key("anthropic-ratelimit-requests-limit"));
    let events = parse_sse(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap().name.as_deref(), Some("message_stop"));

    // The big one no longer fits and is not counted; the small one still does.
    let resp = post_anthropic(&sim, &big).await;
    assert_eq!(resp.status(), 429);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "rate_limit_error");
    let resp = post_anthropic(&sim, &small).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "anthropic-ratelimit-tokens-remaining"), "0");
}

#[tokio::test]
async fn openai_reports_its_headers_and_refuses_the_third_request() {
    let sim = sim().await;
    sim.set_rate_limit(Some(RateLimit { requests: Some(2), tokens: Some(10_000), window_ms: 60_000 }));
    let mut body = openai_body("hi");
    body["max_completion_tokens"] = json!(100);
    let cost = body.to_string().len() as u64 / 4 + 100;
    for (i, remaining) in ["1", "0"].into_iter().enumerate() {
        let resp = post(&sim, OPENAI, &body).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-ratelimit-limit-requests"), "2");
        assert_eq!(header(&resp, "x-ratelimit-remaining-requests"), remaining);
        assert_eq!(header(&resp, "x-ratelimit-limit-tokens"), "10000");
        let used = (i as u64 + 1) * cost;
        assert_eq!(header(&resp, "x-ratelimit-remaining-tokens"), (10_000 - used).to_string());
        for name in ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"] {
            let reset = header(&resp, name);
            // Under a minute left of a one-minute window: `59.998s`, or `1m0s` at the very start.
            assert!(reset == "1m0s" || (reset.ends_with('s') && !reset.contains('m')), "{name}: {reset}");
        }
    }
    let resp = post(&sim, OPENAI, &body).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = header(&resp, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(header(&resp, "x-ratelimit-remaining-requests"), "0");
    assert_eq!(header(&resp, "x-ratelimit-remaining-tokens"), (10_000 - 2 * cost).to_string());
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err,
        json!({"error": {
            "message": "Rate limit reached for requests. Please try again later.",
            "type": "requests",
            "param": null,
            "code": "rate_limit_exceeded",
        }})
    );
}

#[tokio::test]
async fn responses_share_openais_headers_plain_and_streaming() {
    let sim = sim().await;
    sim.set_rate_limit(Some(requests(2, 60_000)));
    let resp = post(&sim, RESPONSES, &responses_body("hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-ratelimit-remaining-requests"), "1");
    let mut body = responses_body("hi");
    body["stream"] = json!(true);
    let resp = post(&sim, RESPONSES, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-ratelimit-remaining-requests"), "0");
    assert!(!resp.headers().contains_key("x-ratelimit-limit-tokens"));
    let events = parse_sse(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap().name.as_deref(), Some("response.completed"));
    let resp = post(&sim, OPENAI, &openai_body("hi")).await;
    assert_eq!(resp.status(), 429, "one limit for every chat path");
}

#[tokio::test]
async fn gemini_sends_no_headers_but_refuses_with_resource_exhausted() {
    let sim = sim().await;
    sim.set_rate_limit(Some(requests(1, 60_000)));
    let resp = post(&sim, GEMINI, &gemini_body("hi")).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().keys().all(|k| !k.as_str().contains("ratelimit")),
        "Google sends no rate-limit headers: {:?}",
        resp.headers()
    );
    let resp = post(&sim, GEMINI_STREAM, &gemini_body("hi")).await;
    assert_eq!(resp.status(), 429);
    let retry = header(&resp, "retry-after").to_owned();
    assert!(resp.headers().keys().all(|k| !k.as_str().contains("ratelimit")));
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], 429);
    assert_eq!(err["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(err["error"]["details"][0]["retryDelay"], format!("{retry}s"));
}

#[tokio::test]
async fn the_window_ends_and_requests_succeed_again() {
    let sim = sim().await;
    sim.set_rate_limit(Some(requests(1, 300)));
    assert_eq!(post(&sim, OPENAI, &openai_body("a")).await.status(), 200);
    let resp = post(&sim, OPENAI, &openai_body("b")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), "1", "under a second left, rounded up");
    let reset = header(&resp, "x-ratelimit-reset-requests");
    assert!(reset.ends_with("ms") && reset.trim_end_matches("ms").parse::<u64>().unwrap() <= 300, "{reset}");
    // The window is the scenario's time: wait it out.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let resp = post(&sim, OPENAI, &openai_body("c")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-ratelimit-remaining-requests"), "0");
    assert_eq!(header(&resp, "x-ratelimit-reset-requests"), "300ms", "a new window starts with this request");
    assert_eq!(post(&sim, OPENAI, &openai_body("d")).await.status(), 429);
}

#[tokio::test]
async fn faults_come_first_and_faulted_or_other_requests_are_not_counted() {
    let sim = sim().await;
    sim.set_rate_limit(Some(requests(1, 60_000)));
    sim.push_fault(Fault::status(500));
    let resp = post_anthropic(&sim, &anthropic_body("hi")).await;
    assert_eq!(resp.status(), 500);
    assert!(!resp.headers().contains_key("anthropic-ratelimit-requests-remaining"));
    // Token counting and embeddings are not chat requests.
    let count = client()
        .post(format!("{}/v1/messages/count_tokens", sim.base_url()))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-test", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(count.status(), 200);
    let embed =
        post(&sim, "/v1/embeddings", &json!({"model": "text-embedding-3-small", "input": "hi"})).await;
    assert_eq!(embed.status(), 200);

    let resp = post_anthropic(&sim, &anthropic_body("hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "anthropic-ratelimit-requests-remaining"), "0");
    // Over the limit, a queued fault still applies first.
    sim.push_fault(Fault::status(503));
    assert_eq!(post_anthropic(&sim, &anthropic_body("hi")).await.status(), 503);
    assert_eq!(post_anthropic(&sim, &anthropic_body("hi")).await.status(), 429);

    sim.set_rate_limit(None);
    let resp = post_anthropic(&sim, &anthropic_body("hi")).await;
    assert_eq!(resp.status(), 200);
    assert!(!resp.headers().contains_key("anthropic-ratelimit-requests-remaining"));
}

#[tokio::test]
async fn control_route_sets_and_clears_the_limit() {
    let sim = sim().await;
    let url = format!("{}/_sim/ratelimit", sim.base_url());
    let resp = client().post(&url).json(&json!({"requests": 1, "window_ms": 60_000})).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(post(&sim, OPENAI, &openai_body("a")).await.status(), 200);
    assert_eq!(post(&sim, OPENAI, &openai_body("b")).await.status(), 429);

    let resp = client().post(&url).json(&Value::Null).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(post(&sim, OPENAI, &openai_body("c")).await.status(), 200);

    for bad in [json!({"requests": 1}), json!({"request": 1, "window_ms": 10}), json!("fast")] {
        let resp = client().post(&url).json(&bad).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }

    let resp = client().post(&url).json(&json!({"tokens": 1, "window_ms": 60_000})).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(post(&sim, OPENAI, &openai_body("d")).await.status(), 429);
    let resp = client().post(format!("{}/_sim/reset", sim.base_url())).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let resp = post(&sim, OPENAI, &openai_body("e")).await;
    assert_eq!(resp.status(), 200, "reset clears the limit");
    assert!(!resp.headers().contains_key("x-ratelimit-limit-tokens"));
}
