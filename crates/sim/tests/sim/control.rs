//! The `/_sim` control API, recording (hits, last request, last headers), and routing errors.

use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn control_endpoints_drive_faults_and_report_hits() {
    let sim = sim().await;
    let base = sim.base_url();
    let resp = client()
        .post(format!("{base}/_sim/faults"))
        .json(&json!({"kind": "status", "status": 529, "count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let queued: Value =
        client().get(format!("{base}/_sim/faults")).send().await.unwrap().json().await.unwrap();
    assert_eq!(queued, json!([{"kind": "status", "status": 529, "count": 2}]));

    assert_eq!(post_anthropic(&sim, &anthropic_body("a")).await.status(), 529);
    assert_eq!(post(&sim, OPENAI, &openai_body("b")).await.status(), 529);
    assert_eq!(post(&sim, OPENAI, &openai_body("c")).await.status(), 200);

    let hits: Value = client().get(format!("{base}/_sim/hits")).send().await.unwrap().json().await.unwrap();
    assert_eq!(hits, json!({"total": 3, "paths": {"/v1/messages": 1, "/v1/chat/completions": 2}}));

    let last: Value = client()
        .get(format!("{base}/_sim/last?path=/v1/chat/completions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(last, openai_body("c"));
    let resp = client().get(format!("{base}/_sim/last?path=/v1/nothing")).send().await.unwrap();
    assert_eq!(resp.status(), 404);

    let resp = client().post(format!("{base}/_sim/reset")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let hits: Value = client().get(format!("{base}/_sim/hits")).send().await.unwrap().json().await.unwrap();
    assert_eq!(hits, json!({"total": 0, "paths": {}}));
    assert_eq!(sim.total_hits(), 0, "control requests are not hits");
}

#[tokio::test]
async fn every_documented_fault_json_is_accepted() {
    let sim = sim().await;
    let faults = [
        json!({"kind": "status", "status": 529, "count": 2}),
        json!({"kind": "status", "status": 429, "retry_after": 1}),
        json!({"kind": "hang"}),
        json!({"kind": "reset"}),
        json!({"kind": "cut", "after": 1}),
        json!({"kind": "garbage"}),
        json!({"kind": "delay", "ms": 500}),
        json!({"kind": "drip", "ms": 20}),
        json!({"kind": "context_length"}),
        json!({"kind": "stall", "after": 1, "ms": 20000}),
        json!({"kind": "malformed", "after": 3}),
        json!({"kind": "in_band_error", "after": 3, "status": 529}),
        json!({"kind": "repeat", "words": 2}),
    ];
    for fault in &faults {
        let resp = client().post(format!("{}/_sim/faults", sim.base_url())).json(fault).send().await.unwrap();
        assert_eq!(resp.status(), 204, "{fault}");
    }
    let resp = client()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"kind": "explode"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let queued: Value =
        client().get(format!("{}/_sim/faults", sim.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(queued.as_array().unwrap().len(), faults.len());
}

#[tokio::test]
async fn records_last_request_and_headers_per_path() {
    let sim = sim().await;
    assert_eq!(sim.last_request(ANTHROPIC), None);
    assert!(sim.last_headers(ANTHROPIC).is_none());
    client()
        .post(format!("{}{ANTHROPIC}", sim.base_url()))
        .header("anthropic-version", "2023-06-01")
        .header("x-trace", "t-1")
        .json(&anthropic_body("first"))
        .send()
        .await
        .unwrap();
    post_anthropic(&sim, &anthropic_body("second")).await;
    assert_eq!(sim.hits(ANTHROPIC), 2);
    assert_eq!(sim.last_request(ANTHROPIC), Some(anthropic_body("second")));
    let headers = sim.last_headers(ANTHROPIC).unwrap();
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert!(!headers.contains_key("x-trace"));
    assert_eq!(sim.hits(OPENAI), 0);
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let sim = sim().await;
    let resp = post(&sim, "/v1/completions", &json!({})).await;
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"]["message"].as_str().unwrap().contains("Invalid URL"));
    let resp = client().get(format!("{}{ANTHROPIC}", sim.base_url())).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(sim.total_hits(), 0);
}

#[tokio::test]
async fn base_url_and_addr_agree() {
    let sim = sim().await;
    assert_eq!(sim.base_url(), format!("http://{}", sim.addr()));
    assert!(sim.addr().ip().is_loopback());
    assert_ne!(sim.addr().port(), 0);
    sim.shutdown().await;
}
