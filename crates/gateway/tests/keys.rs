//! Client identities: keys with names, teams, routes, priorities, limits and budgets, from the configuration and
//! from the admin API; limits exact under concurrency; 429s the official SDKs understand; the admin API; hot
//! reload with state kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is its job

mod common;

use std::sync::Arc;

use common::{Harness, Reply, p, request};
use nines::config::Env;
use serde_json::{Value, json};

const ALICE: &str = "alice-key-0123456789";
const BOB: &str = "bob-key-0123456789";
const ADMIN: &str = "the-admin-key-0123456789";

fn env() -> Env {
    Env::from_pairs([("ALICE_KEY", ALICE), ("BOB_KEY", BOB), ("ADMIN_KEY", ADMIN)])
}

async fn post_as(h: &Harness, key: &str, door: &str, text: &str) -> Reply {
    let (path, body) = request(door, text, false);
    let auth = format!("Bearer {key}");
    h.post_with(path, body, &[("authorization", &auth)]).await
}

/// `n` requests at once with `key`; their replies.
async fn burst(h: &Arc<Harness>, key: &'static str, door: &'static str, n: usize) -> Vec<Reply> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let h = h.clone();
        tasks.spawn(async move { post_as(&h, key, door, &format!("hello {i}")).await });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        out.push(r.unwrap());
    }
    out
}

#[tokio::test]
async fn per_key_requests_per_minute_are_exact_under_concurrency_with_headers_sdks_obey() {
    let cfg = r#"
[keys.alice]
key_env = "ALICE_KEY"
limits = { requests_per_minute = 7 }
[keys.bob]
key_env = "BOB_KEY"
"#;
    let h = Arc::new(Harness::with(&[p("first", "openai", "m1")], cfg, env()).await);
    let replies = burst(&h, ALICE, "openai", 30).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 7, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(refused.len(), 23);
    let r = refused[0];
    assert_eq!(r.json()["error"]["type"], "rate_limit_error", "{}", r.text);
    assert!(r.text.contains("alice") && r.text.contains("requests per minute"), "{}", r.text);
    let retry: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=9).contains(&retry), "one request every 60/7 s: {retry}");
    assert_eq!(r.header("x-ratelimit-limit-requests"), "7");
    assert_eq!(r.header("x-ratelimit-remaining-requests"), "0");
    assert!(r.header("x-ratelimit-reset-requests").ends_with('s'));
    assert_eq!(r.header("x-should-retry"), "true");
    // The simulator saw only the admitted ones; bob has no limit.
    assert_eq!(h.sims[0].total_hits(), 7);
    assert!(burst(&h, BOB, "openai", 10).await.iter().all(|r| r.status == 200));
    // Anthropic's door: Anthropic's headers.
    let r = post_as(&h, ALICE, "anthropic", "hi").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.header("anthropic-ratelimit-requests-limit"), "7");
    assert_eq!(r.header("anthropic-ratelimit-requests-remaining"), "0");
    assert!(r.header("anthropic-ratelimit-requests-reset").ends_with('Z'), "{:?}", r.headers);
}

#[tokio::test]
async fn team_limits_bind_their_keys_together_and_concurrency_is_exact() {
    let cfg = r#"
[teams.search]
limits = { requests_per_minute = 5 }
[keys.alice]
key_env = "ALICE_KEY"
team = "search"
[keys.bob]
key_env = "BOB_KEY"
team = "search"
limits = { concurrency = 2 }
"#;
    let h = Arc::new(Harness::with(&[p("first", "openai", "m1")], cfg, env()).await);
    // Slow answers, so that bob's requests overlap.
    h.sims[0].set_capacity(Some(nines_sim::Capacity { concurrent: 100, latency_ms: 300 }));
    let replies = burst(&h, BOB, "openai", 6).await;
    assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 2, "bob: 2 at once");
    let r = replies.iter().find(|r| r.status == 429).unwrap();
    assert!(r.text.contains("concurrent requests"), "{}", r.text);
    // The team had 5 a minute: bob's 2 (his refused ones took nothing) and alice's 3.
    let replies = burst(&h, ALICE, "openai", 6).await;
    assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 3);
    assert!(replies.iter().any(|r| r.text.contains("team search")), "the team's limit names the team");
}

#[tokio::test]
async fn keys_may_use_only_their_routes_and_see_only_them() {
    let cfg = r#"
[routes.other]
targets = ["first/m2"]
[keys.alice]
key_env = "ALICE_KEY"
routes = ["ch*"]
"#;
    let h = Harness::with(&[p("first", "openai", "m1")], cfg, env()).await;
    assert_eq!(post_as(&h, ALICE, "openai", "hi").await.status, 200);
    let auth = format!("Bearer {ALICE}");
    let r = h
        .post_with(
            "/v1/chat/completions",
            json!({"model": "other", "messages": [{"role": "user", "content": "x"}]}),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "permission_error");
    let models = h.get("/v1/models", &[("authorization", &auth)]).await.json();
    let ids: Vec<&str> =
        models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["chat"]);
    // A key nobody configured: 401.
    assert_eq!(post_as(&h, "nobody-0123456789", "openai", "hi").await.status, 401);
}

#[tokio::test]
async fn output_tokens_are_estimated_then_reconciled_with_real_usage() {
    // 300 output tokens a minute; each request asks up to 250 (the estimate) but the simulator answers in a few.
    let cfg = r#"
[keys.alice]
key_env = "ALICE_KEY"
limits = { output_tokens_per_minute = 300 }
"#;
    let h = Harness::with(&[p("first", "anthropic", "m1")], cfg, env()).await;
    let auth = format!("Bearer {ALICE}");
    let body = json!({"model": "chat", "max_tokens": 250, "messages": [{"role": "user", "content": "hi"}]});
    for i in 0..5 {
        let r = h.post_with("/v1/messages", body.clone(), &[("authorization", &auth)]).await;
        // Without reconciliation the second would be refused (250 + 250 > 300).
        assert_eq!(r.status, 200, "request {i}: {}", r.text);
        assert!(r.json()["usage"]["output_tokens"].as_u64().unwrap() < 30);
    }
    // A request that asks more than the whole minute's worth can never pass: a 429 that says not to retry.
    let big = json!({"model": "chat", "max_tokens": 250, "messages": [{"role": "user", "content": "x"}]});
    let cfg2 = "[keys.alice]\nkey_env = \"ALICE_KEY\"\nlimits = { input_tokens_per_minute = 10 }\n";
    let h2 = Harness::with(&[p("first", "anthropic", "m1")], cfg2, env()).await;
    let mut long = big.clone();
    long["messages"][0]["content"] = json!("word ".repeat(400));
    let r = h2.post_with("/v1/messages", long, &[("authorization", &auth)]).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.header("x-should-retry"), "false");
    assert!(r.header("anthropic-ratelimit-input-tokens-limit") == "10", "{:?}", r.headers);
}

#[tokio::test]
async fn a_budget_stops_spend_at_its_figure_within_one_request() {
    // $1 per million input and output tokens; a daily budget of $0.0002 (200 tokens' worth).
    let cfg = r#"
[prices."first/m1"]
input = 1.0
output = 1.0
[keys.alice]
key_env = "ALICE_KEY"
budget = { daily = 0.0002 }
"#;
    let h = Harness::with(&[p("first", "openai", "m1")], cfg, env()).await;
    let mut served_tokens = 0u64;
    let mut refused = None;
    for i in 0..100 {
        let r = post_as(&h, ALICE, "openai", "tell me something about the weather today please").await;
        if r.status == 429 {
            refused = Some((i, r));
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text);
        served_tokens += r.json()["usage"]["total_tokens"].as_u64().unwrap();
    }
    let (i, r) = refused.expect("the budget must stop spend");
    assert!(i > 1, "several requests fit");
    // Spend stopped at the figure, overshooting by at most the last request.
    let last = served_tokens / i as u64;
    assert!(served_tokens >= 200 && served_tokens < 200 + 2 * last, "{served_tokens} tokens in {i} requests");
    assert!(r.text.contains("daily budget"), "{}", r.text);
    assert_eq!(r.header("x-should-retry"), "false", "waiting a few seconds will not help");
    // A model without a price cannot be spent on by a key with a budget.
    let auth = format!("Bearer {ALICE}");
    let body = json!({"model": "first/unpriced", "messages": [{"role": "user", "content": "hi"}]});
    let r = h.post_with("/v1/chat/completions", body, &[("authorization", &auth)]).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("no price"), "{}", r.text);
}

#[tokio::test]
async fn revoking_the_last_key_never_opens_the_gateway() {
    let h =
        Harness::with(&[p("first", "openai", "m1")], "[auth]\nadmin_key_env = \"ADMIN_KEY\"\n", env()).await;
    use reqwest::Method;
    assert_eq!(post_as(&h, "anyone", "openai", "hi").await.status, 200, "open: no key was ever asked for");
    let made = admin(&h, Method::POST, "/admin/keys", Some(json!({"name": "only"})), ADMIN).await.json();
    let (key, id) = (made["key"].as_str().unwrap().to_owned(), made["id"].as_str().unwrap().to_owned());
    assert_eq!(post_as(&h, "anyone", "openai", "hi").await.status, 401, "closed by the first key");
    assert_eq!(post_as(&h, &key, "openai", "hi").await.status, 200);
    assert_eq!(admin(&h, Method::DELETE, &format!("/admin/keys/{id}"), None, ADMIN).await.status, 200);
    assert_eq!(post_as(&h, &key, "openai", "hi").await.status, 401);
    assert_eq!(post_as(&h, "anyone", "openai", "hi").await.status, 401, "still closed");
    // A configured key whose variable is unset: closed too, not open.
    let h =
        Harness::with(&[p("first", "openai", "m1")], "[keys.ghost]\nkey_env = \"UNSET_KEY\"\n", env()).await;
    assert_eq!(post_as(&h, "anyone", "openai", "hi").await.status, 401);
}

async fn admin(h: &Harness, method: reqwest::Method, path: &str, body: Option<Value>, key: &str) -> Reply {
    let mut req = h.client.request(method, format!("{}{path}", h.base)).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    Reply::read(req.send().await.unwrap()).await
}

#[tokio::test]
async fn the_admin_api_creates_lists_rotates_and_revokes_keys_that_persist() {
    let dir = std::env::temp_dir().join(format!("nines-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("keys.sqlite3");
    let _ = std::fs::remove_file(&store);
    let cfg = format!(
        "[auth]\nadmin_key_env = \"ADMIN_KEY\"\nstore = \"{}\"\n[keys.alice]\nkey_env = \"ALICE_KEY\"\n\
         [prices.\"first/m1\"]\ninput = 1.0\noutput = 1.0\n",
        store.display()
    );
    let mut h = Harness::with(&[p("first", "openai", "m1")], Box::leak(cfg.into_boxed_str()), env()).await;
    use reqwest::Method;
    // Only the admin key.
    let new = json!({"name": "ci-bot", "team": "infra", "routes": ["chat"], "priority": "batch",
                     "limits": {"requests_per_minute": 100}, "budget": {"monthly": 5.0}});
    assert_eq!(admin(&h, Method::POST, "/admin/keys", Some(new.clone()), ALICE).await.status, 401);
    let made = admin(&h, Method::POST, "/admin/keys", Some(new), ADMIN).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let made = made.json();
    let key = made["key"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("nines-") && key.len() > 40);
    assert_eq!(made["priority"], "batch");
    assert_eq!(post_as(&h, &key, "openai", "hi").await.status, 200);
    // Listed, without any secret.
    let list = admin(&h, Method::GET, "/admin/keys", None, ADMIN).await;
    assert_eq!(list.status, 200);
    assert!(!list.text.contains(&key) && !list.text.contains(ALICE), "{}", list.text);
    let listed = list.json();
    let names: Vec<&str> =
        listed["data"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"alice") && names.contains(&"ci-bot"), "{names:?}");
    // Bad input is refused with a reason.
    let bad = admin(&h, Method::POST, "/admin/keys", Some(json!({"name": "x y"})), ADMIN).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    // A configured key is not the API's to revoke.
    assert_eq!(admin(&h, Method::DELETE, "/admin/keys/alice", None, ADMIN).await.status, 409);

    // Rotation with an overlap: both work, then only the new one.
    let rotated =
        admin(&h, Method::POST, &format!("/admin/keys/{id}/rotate"), Some(json!({"overlap": "1h"})), ADMIN)
            .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let key2 = rotated.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(post_as(&h, &key, "openai", "hi").await.status, 200, "the old key, within the overlap");
    assert_eq!(post_as(&h, &key2, "openai", "hi").await.status, 200);
    let rotated =
        admin(&h, Method::POST, &format!("/admin/keys/{id}/rotate"), Some(json!({"overlap": "0s"})), ADMIN)
            .await;
    let key3 = rotated.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(post_as(&h, &key, "openai", "hi").await.status, 401, "rotated out at once");
    assert_eq!(post_as(&h, &key2, "openai", "hi").await.status, 401);
    assert_eq!(post_as(&h, &key3, "openai", "hi").await.status, 200);

    // Kept across a restart (the store holds digests, never a key).
    h.restart().await;
    assert_eq!(post_as(&h, &key3, "openai", "hi").await.status, 200, "the key survived the restart");
    let raw = std::fs::read(&store).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains(&key3), "the store never holds a key");
    // Revoked: refused at once.
    assert_eq!(admin(&h, Method::DELETE, &format!("/admin/keys/{id}"), None, ADMIN).await.status, 200);
    assert_eq!(post_as(&h, &key3, "openai", "hi").await.status, 401);
    assert_eq!(admin(&h, Method::DELETE, &format!("/admin/keys/{id}"), None, ADMIN).await.status, 404);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn without_an_admin_key_the_admin_api_is_off() {
    let h =
        Harness::with(&[p("first", "openai", "m1")], "[keys.alice]\nkey_env = \"ALICE_KEY\"\n", env()).await;
    let r = admin(&h, reqwest::Method::GET, "/admin/keys", None, ALICE).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("admin_key_env"));
}

#[tokio::test]
async fn priorities_come_from_the_key_and_only_a_trusted_key_may_raise_them() {
    // One request at a time; batch never waits; a trusted key may ask for interactive.
    let cfg = r#"
[keys.alice]
key_env = "ALICE_KEY"
priority = "batch"
[keys.bob]
key_env = "BOB_KEY"
priority = "batch"
set_priority = true
"#;
    let mut providers = [p("first", "openai", "m1")];
    providers[0].extra = "max_concurrency = 1";
    let h = Arc::new(Harness::with(&providers, cfg, env()).await);
    h.sims[0].set_capacity(Some(nines_sim::Capacity { concurrent: 1, latency_ms: 300 }));
    let ask = |key: &'static str, priority: &'static str| {
        let h = h.clone();
        async move {
            let (path, body) = request("openai", "hi", false);
            let auth = format!("Bearer {key}");
            h.post_with(path, body, &[("authorization", &auth), ("x-nines-priority", priority)]).await
        }
    };
    // Alice (batch) asks for interactive: not hers to ask; both her requests are batch and one is shed at once.
    let (a, b) = tokio::join!(ask(ALICE, "interactive"), ask(ALICE, "interactive"));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 503], "{} / {}", a.text, b.text);
    let shed = if a.status == 503 { &a } else { &b };
    assert_eq!(shed.header("retry-after"), "1");
    assert!(shed.text.contains("concurrency limit"), "{}", shed.text);
    // Bob may: interactive waits for room.
    let (a, b) = tokio::join!(ask(BOB, "interactive"), ask(BOB, "interactive"));
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(h.sims[0].peak_concurrency(), 1, "never more than the declared capacity");
}

/// Twenty reloads during steady load, valid and invalid alternately: no request fails, an invalid file changes
/// nothing, a valid one applies whole; a key's limit state and a target's breaker survive them.
#[tokio::test]
async fn twenty_reloads_under_load_fail_no_request_and_keep_state() {
    let dir = std::env::temp_dir().join(format!("nines-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("nines.toml");
    let base = "[auth]\nadmin_key_env = \"ADMIN_KEY\"\n[keys.alice]\nkey_env = \"ALICE_KEY\"\nlimits = { requests_per_minute = 3 }\n[keys.bob]\nkey_env = \"BOB_KEY\"\n";
    let h = Arc::new(
        Harness::with(&[p("first", "openai", "m1"), p("second", "anthropic", "m2")], base, env()).await,
    );
    std::fs::write(&file, &h.toml).unwrap();
    h.app.state.set_source(file.clone());
    // Alice uses her 3; the first target's breaker opens (a silent target opens it at once).
    for _ in 0..3 {
        assert_eq!(post_as(&h, ALICE, "openai", "hi").await.status, 200);
    }
    h.fault(0, nines_sim::FaultKind::Status { status: 503, retry_after: None }, 10);
    for _ in 0..6 {
        assert_eq!(post_as(&h, BOB, "openai", "hi").await.status, 200);
    }
    let first_hits = h.sims[0].total_hits();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (h, stop) = (h.clone(), stop.clone());
        load.spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = post_as(&h, BOB, "openai", "steady").await;
                if r.status == 200 { ok += 1 } else { failed.push(format!("{}: {}", r.status, r.text)) }
            }
            (ok, failed)
        });
    }
    for i in 0..20 {
        let (text, valid) = if i % 2 == 0 {
            // Valid: a new route and a changed comment; alice's limit unchanged.
            (format!("{}\n[routes.extra{i}]\ntargets = [\"second/m2\"]\n", h.toml), true)
        } else {
            (
                format!("{}\n[routes.broken]\ntargets = [\"nowhere/x\"]\nstrategy = \"fastest\"\n", h.toml),
                false,
            )
        };
        std::fs::write(&file, &text).unwrap();
        let r = admin(&h, reqwest::Method::POST, "/admin/reload", None, ADMIN).await;
        if valid {
            assert_eq!(r.status, 200, "{}", r.text);
            let models = h.get("/v1/models", &[("authorization", &format!("Bearer {BOB}"))]).await;
            assert!(models.text.contains(&format!("extra{i}")), "applied whole: {}", models.text);
        } else {
            assert_eq!(r.status, 400);
            let errors = r.json()["error"]["errors"].as_array().unwrap().len();
            assert!(errors >= 2, "every error: {}", r.text);
            let models = h.get("/v1/models", &[("authorization", &format!("Bearer {BOB}"))]).await;
            assert!(!models.text.contains("broken"), "refused whole");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    while let Some(r) = load.join_next().await {
        let (ok, failed) = r.unwrap();
        assert!(failed.is_empty(), "{failed:?}");
        total += ok;
    }
    assert!(total > 20, "load ran throughout: {total}");
    // Alice's limit state and the breaker were kept.
    assert_eq!(post_as(&h, ALICE, "openai", "hi").await.status, 429, "her 3 a minute are still spent");
    assert_eq!(h.sims[0].total_hits(), first_hits, "the open breaker kept traffic off the first target");
    std::fs::remove_dir_all(&dir).unwrap();
}
