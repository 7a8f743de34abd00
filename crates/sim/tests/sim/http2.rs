//! The same surface over HTTP/2 (prior knowledge): answers, cut streams, and shutdown with a hanging stream.

use std::time::Duration;

use nines_sim::Fault;
use serde_json::{Value, json};

use crate::common::*;

fn h2() -> reqwest::Client {
    reqwest::Client::builder().http2_prior_knowledge().build().unwrap()
}

#[tokio::test]
async fn answers_and_streams_over_http2() {
    let sim = sim().await;
    let resp =
        h2().post(format!("{}{OPENAI}", sim.base_url())).json(&openai_body("hi")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["choices"][0]["message"]["content"], "alpha says: hi");

    let mut body = openai_body("hi");
    body["stream"] = json!(true);
    let text = h2()
        .post(format!("{}{OPENAI}", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(parse_sse(&text).last().unwrap().data, "[DONE]");
}

#[tokio::test]
async fn cut_resets_the_http2_stream() {
    let sim = sim().await;
    sim.push_fault(Fault::cut(1));
    let mut body = openai_body("hello there");
    body["stream"] = json!(true);
    let resp = h2().post(format!("{}{OPENAI}", sim.base_url())).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.is_err());
}

#[tokio::test]
async fn shutdown_ends_a_hanging_http2_stream() {
    let sim = sim().await;
    sim.push_fault(Fault::hang());
    let request = h2()
        .post(format!("{}{GEMINI}", sim.base_url()))
        .timeout(Duration::from_secs(30))
        .json(&gemini_body("hi"))
        .send();
    let stop = async {
        while sim.hits(GEMINI) == 0 {
            tokio::task::yield_now().await;
        }
        sim.shutdown().await;
    };
    let (result, ()) = tokio::join!(request, stop);
    let err = result.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
}
