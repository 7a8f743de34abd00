//! Holding the line under a spike: ten times what the provider can serve, interactive and batch keys mixed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is its job

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, P, p, request};
use nines::config::Env;
use tokio::time::Instant;

const UI: &str = "interactive-key-0123456789";
const JOBS: &str = "batch-key-0123456789";

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4
}

struct Outcome {
    status: u16,
    took: Duration,
    retry_after: String,
}

async fn call(h: &Harness, key: &str) -> Outcome {
    let (path, body) = request("openai", "hi", false);
    let auth = format!("Bearer {key}");
    let t0 = Instant::now();
    let r = h.post_with(path, body, &[("authorization", &auth)]).await;
    Outcome { status: r.status, took: t0.elapsed(), retry_after: r.header("retry-after").to_owned() }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[tokio::test]
async fn a_tenfold_spike_sheds_batch_fast_and_keeps_interactive_latency() {
    let cfg = r#"
[keys.ui]
key_env = "UI_KEY"
priority = "interactive"
[keys.jobs]
key_env = "JOBS_KEY"
priority = "batch"
"#;
    let env = Env::from_pairs([("UI_KEY", UI), ("JOBS_KEY", JOBS)]);
    let provider = P { extra: "max_concurrency = 4", ..p("first", "openai", "m1") };
    let h = Arc::new(Harness::with(&[provider], cfg, env).await);
    h.sims[0].set_capacity(Some(nines_sim::Capacity { concurrent: 4, latency_ms: 100 }));

    // Unloaded: the interactive latency to keep.
    let mut alone = Vec::new();
    for _ in 0..5 {
        let o = call(&h, UI).await;
        assert_eq!(o.status, 200);
        alone.push(o.took);
    }
    let alone = median(alone);

    // The spike: 40 clients at once for 2 s (10x the 4 the provider serves), 3 of them interactive.
    let rss_before = rss_kib();
    let until = Instant::now() + Duration::from_secs(2);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let h = h.clone();
        let key = if i < 3 { UI } else { JOBS };
        tasks.spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < until {
                let o = call(&h, key).await;
                if o.status != 200 {
                    // A client backing off as told (but briefly: this is a test).
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                out.push((key, o));
            }
            out
        });
    }
    let mut ui = Vec::new();
    let mut batch_ok = 0;
    let mut shed = Vec::new();
    while let Some(r) = tasks.join_next().await {
        for (key, o) in r.unwrap() {
            match (key, o.status) {
                (UI, 200) => ui.push(o.took),
                (UI, s) => panic!("an interactive request failed: {s}"),
                (_, 200) => batch_ok += 1,
                (_, 503) => shed.push(o),
                (_, s) => panic!("a batch request got {s}"),
            }
        }
    }
    let ui_median = median(ui.clone());
    assert!(ui.len() >= 20, "interactive kept being served: {}", ui.len());
    assert!(
        ui_median <= alone * 3,
        "interactive latency within a small factor: {ui_median:?} under the spike, {alone:?} alone"
    );
    assert!(!shed.is_empty() && batch_ok > 0, "batch both served when there was room and shed: {batch_ok}");
    let shed_median = median(shed.iter().map(|o| o.took).collect());
    assert!(shed_median < Duration::from_millis(50), "batch shed fast: {shed_median:?}");
    assert!(shed.iter().all(|o| o.retry_after == "1"), "with Retry-After");
    assert!(
        h.sims[0].peak_concurrency() <= 4,
        "the provider never saw more than it declared: {}",
        h.sims[0].peak_concurrency()
    );
    let grew = rss_kib().saturating_sub(rss_before);
    assert!(grew < 64 * 1024, "memory bounded: +{grew} KiB");
    eprintln!(
        "spike: interactive median {ui_median:?} (alone {alone:?}), {} served; batch {batch_ok} served, {} shed (median {shed_median:?}); peak at the provider {}; RSS +{grew} KiB",
        ui.len(),
        shed.len(),
        h.sims[0].peak_concurrency()
    );
}

#[tokio::test]
async fn the_global_bound_on_requests_in_flight_refuses_with_retry_after() {
    let h = Arc::new(
        Harness::with(&[p("first", "openai", "m1")], "[server]\nmax_in_flight = 10\n", Env::default()).await,
    );
    h.sims[0].set_capacity(Some(nines_sim::Capacity { concurrent: 100, latency_ms: 300 }));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let h = h.clone();
        tasks.spawn(async move {
            let (path, body) = request("anthropic", "hi", false);
            h.post(path, body).await
        });
    }
    let mut ok = 0;
    let mut busy = 0;
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        match r.status {
            200 => ok += 1,
            503 => {
                busy += 1;
                assert_eq!(r.header("retry-after"), "1");
                assert_eq!(r.json()["error"]["type"], "overloaded_error", "Anthropic's shape: {}", r.text);
                assert!(r.text.contains("requests in flight"), "{}", r.text);
            }
            s => panic!("{s}: {}", r.text),
        }
    }
    // Default priority may use 90% of the bound: 9 at once.
    assert_eq!((ok, busy), (9, 21));
    assert_eq!(h.sims[0].total_hits(), 9);
}
