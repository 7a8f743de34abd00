//! What the gateway shows of an outage: the incident with its kinds, counts, blast radius, start and end; the two
//! availabilities (as nines saw the providers, as the clients saw nines) matching exactly what was sent; metrics;
//! the history kept across a restart; who may see it. Each scenario on a fresh gateway in front of simulators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is its job

mod common;

use std::time::Duration;

use common::{Harness, P, Reply, p, request};
use nines::config::Env;
use nines_sim::{Fault, FaultKind};
use serde_json::Value;

const HEALTH: &str = "[health]\ncooldown = \"300ms\"\ncooldown_max = \"2s\"\nramp = \"0s\"\n";

async fn chat(h: &Harness, stream: bool) -> Reply {
    let (path, body) = request("openai", "hello there", stream);
    h.post(path, body).await
}

async fn status(h: &Harness) -> Value {
    let r = h.get("/status.json", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

fn window<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["availability"].as_array().unwrap().iter().find(|w| w["window"] == name).unwrap()
}

fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|t| t[key] == name).unwrap_or_else(|| panic!("no {name} in {list}"))
}

fn counts(w: &Value) -> (u64, u64) {
    (w["total"].as_u64().unwrap(), w["good"].as_u64().unwrap())
}

/// One provider overloaded for a while, then recovered: the incident is there with the right kinds, counts, blast
/// radius, start and end; availability as nines saw each provider and as its clients saw the gateway match what
/// was sent and what the client saw; the metrics count the same.
#[tokio::test]
async fn an_outage_and_its_recovery_are_an_incident_and_two_availabilities() {
    let extra = format!("{HEALTH}[status]\npublic = true\n");
    let h =
        Harness::with(&[p("first", "anthropic", "m1"), p("second", "openai", "m2")], &extra, Env::default())
            .await;
    let fresh = status(&h).await;
    assert_eq!(
        window(&fresh["gateway"], "1h")["availability"],
        Value::Null,
        "no traffic is no data, not 100%"
    );
    assert_eq!(fresh["incidents"], serde_json::json!([]));
    assert_eq!(find(&fresh["targets"], "id", "first/m1")["state"], "healthy");

    h.sims[0].push_fault(Fault::new(FaultKind::Status { status: 529, retry_after: None }).forever());
    let mut client_ok = 0;
    for i in 0..10 {
        let r = chat(&h, i % 2 == 1).await;
        assert_eq!(r.status, 200, "{}", r.text);
        client_ok += 1;
    }
    assert_eq!(h.sims[0].total_hits(), 3, "three failures open the breaker");
    let during = status(&h).await;
    let inc = &during["incidents"][0];
    assert_eq!(inc["target"], "first/m1");
    assert_eq!(inc["ended_at"], Value::Null, "still open");
    assert_eq!(find(&during["targets"], "id", "first/m1")["state"], "breaker_open");
    assert_eq!(find(&during["providers"], "name", "first")["state"], "breaker_open");

    // Recovered: after the cooldown one trial closes the breaker, and three successes in a row close the incident.
    h.sims[0].reset();
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..5 {
        let r = chat(&h, false).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("x-nines-target"), "first/m1");
        client_ok += 1;
    }
    let after = status(&h).await;
    let incidents = after["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let inc = &incidents[0];
    assert_eq!(inc["target"], "first/m1");
    assert_eq!(inc["provider"], "first");
    assert_eq!(inc["opened_by"], "breaker");
    assert_eq!(inc["failures"], 3);
    assert_eq!(inc["kinds"]["overload"]["count"], 3);
    assert_eq!(inc["kinds"]["overload"]["statuses"]["529"], 3);
    assert_eq!(inc["kinds"].as_object().unwrap().len(), 1);
    assert!(inc["first_error"].as_str().unwrap().starts_with("overload 529"), "{inc}");
    let (start, end) = (inc["started_at"].as_u64().unwrap(), inc["ended_at"].as_u64().unwrap());
    assert!(start > 1_700_000_000_000 && start < end, "{start} .. {end}");
    assert!(
        end - start >= 300 && end - start < 30_000,
        "it lasted the cooldown and a little: {}",
        end - start
    );
    let r = &inc["requests"];
    assert_eq!(
        (r["affected"].as_u64(), r["saved"].as_u64(), r["failed"].as_u64()),
        (Some(10), Some(10), Some(0))
    );
    assert_eq!(r["saved_by_failover"], 10, "three failed over, seven skipped the open breaker");
    assert_eq!(inc["blast_radius"]["scope"], "provider", "{}", inc["blast_radius"]);
    assert!(inc["blast_radius"]["targets"].as_array().unwrap().contains(&Value::from("first/m1")));

    // Availability as nines saw the providers: attempts.
    let first = find(&after["targets"], "id", "first/m1");
    assert_eq!(counts(window(first, "1h")), (3 + 5, 5));
    assert_eq!(counts(window(first, "30d")), (8, 5));
    assert_eq!(first["failures_24h"]["overload"], 3);
    assert_eq!(first["state"], "healthy");
    let second = find(&after["targets"], "id", "second/m2");
    assert_eq!(counts(window(second, "24h")), (10, 10));
    assert_eq!(counts(window(find(&after["providers"], "name", "first"), "24h")), (8, 5));
    // As the clients saw the gateway: requests.
    assert_eq!(counts(window(&after["gateway"], "1h")), (client_ok, client_ok));
    assert_eq!(counts(window(find(&after["routes"], "name", "chat"), "7d")), (15, 15));
    assert_eq!(after["gateway"]["saved_24h"], 10);
    assert_eq!(window(&after["gateway"], "24h")["availability"], 1.0);
    assert_eq!(window(first, "24h")["availability"], 5.0 / 8.0);
    assert_eq!(after["headline"], "first 62.5% — your users 100% (24 h)");
    let bars = first["minutes"].as_array().unwrap();
    assert_eq!(bars.iter().map(|b| b["total"].as_u64().unwrap()).sum::<u64>(), 8);

    let m = h.get("/metrics", &[]).await;
    assert_eq!(m.status, 200);
    for line in [
        "nines_attempts_total{provider=\"first\",target=\"first/m1\",outcome=\"failure\",error_kind=\"overload\"} 3",
        "nines_attempts_total{provider=\"first\",target=\"first/m1\",outcome=\"success\",error_kind=\"\"} 5",
        "nines_attempts_total{provider=\"second\",target=\"second/m2\",outcome=\"success\",error_kind=\"\"} 10",
        "nines_requests_total{route=\"chat\",ending=\"saved\"} 3",
        "nines_requests_total{route=\"chat\",ending=\"served\"} 12",
        "nines_failovers_total{route=\"chat\"} 3",
        "nines_breaker_state{provider=\"first\",target=\"first/m1\"} 0",
        "nines_in_flight_requests 0",
    ] {
        assert!(m.text.contains(line), "{line} not in:\n{}", m.text);
    }
    assert!(
        m.text.contains("gen_ai_client_token_usage_count{gen_ai_provider_name=\"anthropic\""),
        "{}",
        m.text
    );
}

/// Every provider failing at once is "everything": most likely nines' own network, not the providers.
#[tokio::test]
async fn every_provider_failing_at_once_points_at_nines_own_network() {
    let extra = format!("{HEALTH}[status]\npublic = true\n");
    let h =
        Harness::with(&[p("first", "anthropic", "m1"), p("second", "openai", "m2")], &extra, Env::default())
            .await;
    for s in &h.sims {
        s.push_fault(Fault::new(FaultKind::Reset).forever());
    }
    for _ in 0..5 {
        let r = chat(&h, false).await;
        assert!(r.status >= 500, "{}", r.text);
    }
    let s = status(&h).await;
    let incidents = s["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    for i in incidents {
        assert_eq!(i["blast_radius"]["scope"], "everything", "{i}");
        assert!(i["blast_radius"]["explanation"].as_str().unwrap().contains("network"), "{i}");
        assert_eq!(i["requests"]["failed"], 5);
    }
    assert_eq!(counts(window(&s["gateway"], "1h")), (5, 0));
    let budget = window(&s["gateway"], "1h")["budget_left"].as_f64().unwrap();
    assert!(
        (budget - (1.0 - 1.0 / 0.001)).abs() < 1e-6,
        "every request failed: the budget is overspent {budget}"
    );
}

/// One model of a provider failing while another of the same provider answers is a model (or deployment) problem,
/// not the provider's.
#[tokio::test]
async fn one_failing_model_of_a_provider_is_told_from_the_provider() {
    let extra = format!("{HEALTH}[status]\npublic = true\n");
    let mut h = Harness::with(&[p("first", "anthropic", "m1")], &extra, Env::default()).await;
    // The same provider's second model as the fallback (the harness makes one route of one target per provider).
    h.toml = h.toml.replace("targets = [\"first/m1\"]", "targets = [\"first/m1\", \"first/m2\"]");
    h.restart().await;
    h.sims[0].push_fault(
        Fault::new(FaultKind::Status { status: 500, retry_after: None }).for_model("m1").forever(),
    );
    for _ in 0..5 {
        let r = chat(&h, false).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("x-nines-target"), "first/m2");
    }
    let s = status(&h).await;
    let inc = find(&s["incidents"], "target", "first/m1");
    assert_eq!(inc["blast_radius"]["scope"], "model", "{inc}");
    assert!(inc["blast_radius"]["explanation"].as_str().unwrap().contains("first/m2"), "{inc}");
    assert_eq!(find(&s["providers"], "name", "first")["state"], "degraded", "one of its two models is down");
}

/// The incident history is kept in the status store: a restarted gateway shows the incident still open.
#[tokio::test]
async fn a_restart_keeps_the_incident_history() {
    let dir = std::env::temp_dir().join(format!("nines-status-test-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("status.db");
    let extra = format!("{HEALTH}[status]\npublic = true\npath = \"{}\"\n", db.display());
    let mut h =
        Harness::with(&[p("first", "anthropic", "m1"), p("second", "openai", "m2")], &extra, Env::default())
            .await;
    h.sims[0].push_fault(Fault::new(FaultKind::Status { status: 503, retry_after: None }).forever());
    for _ in 0..4 {
        assert_eq!(chat(&h, false).await.status, 200);
    }
    let before = status(&h).await;
    let id = before["incidents"][0]["id"].clone();
    assert!(id.is_string(), "{before}");
    h.restart().await;
    let after = status(&h).await;
    let inc = find(&after["incidents"], "id", id.as_str().unwrap());
    assert_eq!(inc["kinds"]["overload"]["statuses"]["503"], 3);
    assert_eq!(inc["ended_at"], Value::Null);
    assert_eq!(inc["requests"]["affected"], 4);
    assert_eq!(counts(window(&after["gateway"], "24h")), (4, 4), "the history too");
    assert_eq!(find(&after["targets"], "id", "first/m1")["open_incident"], id, "the tracker continues it");
    // Restarted without that target: nothing could close its incident, so the restart does.
    h.toml = h.toml.replace("targets = [\"first/m1\", \"second/m2\"]", "targets = [\"second/m2\"]");
    h.restart().await;
    let last = status(&h).await;
    assert!(find(&last["incidents"], "id", id.as_str().unwrap())["ended_at"].is_u64(), "{last}");
    h.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Not public: the admin key (as a bearer token, or a browser's Basic password) and nobody else.
#[tokio::test]
async fn the_status_and_metrics_need_the_admin_key_unless_public() {
    let env = Env::from_pairs([("KEYS", "client-key"), ("ADMIN", "admin-key")]);
    let extra = "[auth]\nkeys_env = \"KEYS\"\nadmin_key_env = \"ADMIN\"\n";
    let h = Harness::with(&[p("first", "anthropic", "m1")], extra, env).await;
    for path in ["/status", "/status.json", "/metrics"] {
        let r = h.get(path, &[]).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.header("www-authenticate"), "Basic realm=\"nines status\"");
        assert_eq!(h.get(path, &[("authorization", "Bearer client-key")]).await.status, 401, "{path}");
        assert_eq!(h.get(path, &[("authorization", "Bearer admin-key")]).await.status, 200, "{path}");
    }
    // "status:admin-key"
    let page = h.get("/status", &[("authorization", "Basic c3RhdHVzOmFkbWluLWtleQ==")]).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.text.contains("first/m1") && page.text.contains("no data"), "{}", page.text);
    // /readyz: ready or not to anyone (load balancers); which providers and routes only to the admin.
    let anyone = h.get("/readyz", &[]).await;
    assert_eq!((anyone.status, anyone.json()), (200, serde_json::json!({"status": "ready"})));
    let admin = h.get("/readyz", &[("authorization", "Bearer admin-key")]).await.json();
    assert_eq!(admin["routes"], serde_json::json!(["chat"]));
    assert_eq!(admin["usable_providers"], serde_json::json!(["first"]));
}

/// The request id is the client's `x-request-id` when it sent a sane one, else a new one; either way it is
/// returned.
#[tokio::test]
async fn the_request_id_is_the_clients_or_ours_and_always_returned() {
    let h = Harness::new(&[P { ..p("first", "anthropic", "m1") }]).await;
    let (path, body) = request("openai", "hi", false);
    let r = h.post_with(path, body.clone(), &[("x-request-id", "trace-abc-123")]).await;
    assert_eq!(r.header("x-request-id"), "trace-abc-123");
    let r = h.post_with(path, body.clone(), &[("x-request-id", "has space")]).await;
    assert!(r.header("x-request-id").starts_with("req_"), "{}", r.header("x-request-id"));
    let long = "x".repeat(200);
    let r = h.post_with(path, body, &[("x-request-id", &long)]).await;
    assert!(r.header("x-request-id").starts_with("req_"));
}
