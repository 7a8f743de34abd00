//! A fleet sharing state through a real Redis (Debian's `redis-server`, started by the test on a Unix socket of its
//! own): three replicas, one key's limit. Skipped when `redis-server` is not installed, unless
//! `NINES_REQUIRE_REDIS=1` (as `.ci/run` sets).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is its job

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{Reply, request};
use nines::App;
use nines::config::{self, Env};
use nines_sim::{Sim, SimOptions};
use tokio::net::TcpListener;

const ALICE: &str = "alice-key-0123456789";
const BOB: &str = "bob-key-0123456789";

/// A `redis-server` of the test's own, on a Unix socket; killed when dropped.
struct Redis {
    child: std::process::Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl Redis {
    fn start(dir: &std::path::Path) -> Option<Redis> {
        let bin = std::path::Path::new("/usr/bin/redis-server");
        if !bin.exists() {
            let required = Env::from_process().get("NINES_REQUIRE_REDIS").is_some();
            assert!(!required, "redis-server is required but not installed");
            eprintln!("skipped: redis-server not installed");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("redis.sock");
        let _ = std::fs::remove_file(&socket);
        let mut child = std::process::Command::new(bin)
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--enable-debug-command", "yes", "--dir"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Ready when its socket accepts a PING.
        for _ in 0..200 {
            if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&socket) {
                use std::io::{Read, Write};
                s.write_all(b"PING\r\n").unwrap();
                let mut buf = [0u8; 7];
                if s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                    return Some(Redis { child, dir: dir.to_owned(), socket });
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start");
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Replica {
    app: App,
    base: String,
}

/// A simulated provider named `name`, on a port of its own.
async fn sim(name: &str) -> Sim {
    Sim::start(TcpListener::bind("127.0.0.1:0").await.unwrap(), SimOptions::new(name)).await.unwrap()
}

/// Stop every replica (each drains and gives its places back).
async fn shut(fleet: &[Replica]) {
    for r in fleet {
        r.app.shutdown().await;
    }
}

async fn replicas(n: usize, sim: &Sim, redis_url: &str) -> Vec<Replica> {
    let toml = one_target(
        sim,
        "[keys.alice]\nkey_env = \"ALICE_KEY\"\nlimits = { requests_per_minute = 10 }\n[keys.bob]\nkey_env = \"BOB_KEY\"\n",
    );
    fleet(n, &toml, redis_url).await
}

/// One OpenAI-kind provider `first` (no retries) behind the route `chat` (`first/m1`), then `rest`.
fn one_target(sim: &Sim, rest: &str) -> String {
    format!(
        "[providers.first]\nkind = \"openai\"\nbase_url = \"{}/v1\"\nretries = 0\n\n[routes.chat]\ntargets = [\"first/m1\"]\n\n{rest}",
        sim.base_url()
    )
}

/// `n` replicas of the configuration `toml`, sharing the Redis at `redis_url`, each connected.
async fn fleet(n: usize, toml: &str, redis_url: &str) -> Vec<Replica> {
    let toml = format!("{toml}\n[state]\nredis_url = \"{redis_url}\"\nbudget = \"200ms\"\n");
    let env = Env::from_pairs([("ALICE_KEY", ALICE), ("BOB_KEY", BOB)]);
    let mut out = Vec::new();
    for _ in 0..n {
        let config = config::parse_and_validate(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        let app = App::build(config, &env).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        app.spawn(listener);
        out.push(Replica { app, base });
    }
    // Each connects in the background: wait until every one has (bounded).
    for r in &out {
        let shared = r.app.state.runtime.shared.clone().unwrap();
        tokio::time::timeout(Duration::from_secs(5), shared.reachable())
            .await
            .expect("a replica never reached Redis");
    }
    out
}

async fn post(client: &reqwest::Client, base: &str, key: &str) -> Reply {
    let (path, body) = request("openai", "hi", false);
    let mut req = client.post(format!("{base}{path}")).json(&body);
    if !key.is_empty() {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    Reply::read(resp).await
}

#[tokio::test]
async fn a_keys_limit_holds_across_three_replicas_and_falls_back_to_each_when_redis_dies() {
    let dir = std::env::temp_dir().join(format!("nines-redis-{}", std::process::id()));
    let Some(mut redis) = Redis::start(&dir) else { return };
    let sim = sim("first").await;
    let fleet = Arc::new(replicas(3, &sim, &redis.url()).await);
    let client = reqwest::Client::new();

    // 45 requests at once, spread over the three: exactly the key's 10 a minute get through.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..45 {
        let (fleet, client) = (fleet.clone(), client.clone());
        tasks.spawn(async move { post(&client, &fleet[i % 3].base, ALICE).await.status });
    }
    let mut statuses = Vec::new();
    while let Some(s) = tasks.join_next().await {
        statuses.push(s.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 35);
    assert_eq!(sim.total_hits(), 10);

    // Redis dies: nothing fails for a key without limits, and alice's limit is each replica's own.
    redis.kill();
    let hits = sim.total_hits();
    for i in 0..9 {
        let r = post(&client, &fleet[i % 3].base, BOB).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let mut ok = 0;
    for i in 0..12 {
        if post(&client, &fleet[i % 3].base, ALICE).await.status == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 12, "each replica's own limit (10 a minute each) admits 4 of its share");
    assert_eq!(sim.total_hits(), hits + 9 + 12);
    for r in fleet.iter() {
        assert!(r.app.state.runtime.shared.as_ref().unwrap().degraded(), "the degraded state is visible");
    }
    let ready = client.get(format!("{}/readyz", fleet[0].base)).bearer_auth(BOB).send().await.unwrap();
    let ready = ready.text().await.unwrap();
    assert!(ready.contains("\"shared_state\":\"degraded\""), "{ready}");
    // The status page says its view is this replica's alone.
    let report = status_json(&client, &fleet[0].base).await;
    assert_eq!(report["fleet"]["state"], "degraded", "{report}");
    let page = client.get(format!("{}/status", fleet[0].base)).bearer_auth(BOB).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("Fleet view degraded"));

    // Redis back (empty, as after a restart without persistence): every replica notices and the key's limit is
    // the fleet's again.
    let _again = Redis::start(&dir).unwrap();
    for r in fleet.iter() {
        let shared = r.app.state.runtime.shared.clone().unwrap();
        tokio::time::timeout(Duration::from_secs(10), shared.reachable())
            .await
            .expect("no replica reconverged");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..15 {
        let (fleet, client) = (fleet.clone(), client.clone());
        tasks.spawn(async move { post(&client, &fleet[i % 3].base, ALICE).await.status });
    }
    let mut ok = 0;
    while let Some(s) = tasks.join_next().await {
        ok += usize::from(s.unwrap() == 200);
    }
    assert_eq!(ok, 10, "shared again: 10 a minute for the whole fleet");
    // History re-converges, what each replica served while Redis was away included: every replica's report counts
    // the same requests, the fleet's.
    for r in fleet.iter() {
        status_json(&client, &r.base).await;
    }
    all_synced(&fleet, 3).await;
    let reports: Vec<serde_json::Value> =
        futures_util::future::join_all(fleet.iter().map(|r| status_json(&client, &r.base))).await;
    let total = |r: &serde_json::Value| r["gateway"]["availability"][1]["total"].as_u64().unwrap();
    assert!(total(&reports[0]) >= 10 + 9 + 12 + 10, "{}", reports[0]["gateway"]);
    for r in &reports {
        assert_eq!(r["fleet"]["state"], "shared");
        assert_eq!(total(r), total(&reports[0]), "one fleet view");
    }
    shut(&fleet).await;
}

#[tokio::test]
async fn a_breaker_opened_on_one_replica_keeps_the_others_off_that_target() {
    let dir = std::env::temp_dir().join(format!("nines-redis-br-{}", std::process::id()));
    let Some(redis) = Redis::start(&dir) else { return };
    let first = sim("first").await;
    let second = sim("second").await;
    let toml = format!(
        "[providers.first]\nkind = \"openai\"\nbase_url = \"{}/v1\"\nretries = 0\n\
         [providers.second]\nkind = \"anthropic\"\nbase_url = \"{}\"\nretries = 0\n\
         [routes.chat]\ntargets = [\"first/m1\", \"second/m2\"]\n\
         [health]\nconsecutive_failures = 3\ncooldown = \"30s\"\n",
        first.base_url(),
        second.base_url()
    );
    let fleet = fleet(3, &toml, &redis.url()).await;
    let client = reqwest::Client::new();
    first.push_fault(nines_sim::Fault::status(503).times(100));
    // Replica A meets three failures in a row (each request saved by the second target): its breaker opens.
    for _ in 0..3 {
        assert_eq!(post(&client, &fleet[0].base, "").await.status, 200);
    }
    assert_eq!(first.total_hits(), 3);
    // B and C read the fleet's open breakers within a second or two.
    for r in &fleet[1..] {
        let shared = r.app.state.runtime.shared.clone().unwrap();
        tokio::time::timeout(Duration::from_secs(5), shared.synced(2)).await.expect("no fleet read");
    }
    for r in &fleet[1..] {
        for _ in 0..4 {
            let reply = post(&client, &r.base, "").await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            assert_eq!(reply.header("x-nines-target"), "second/m2");
            assert_eq!(reply.header("x-nines-attempts"), "1", "the first target was skipped, not tried");
        }
    }
    assert_eq!(first.total_hits(), 3, "B and C never asked the target A found failing");
    shut(&fleet).await;
}

#[tokio::test]
async fn a_responses_conversation_begun_on_one_replica_continues_on_the_others() {
    let dir = std::env::temp_dir().join(format!("nines-redis-resp-{}", std::process::id()));
    let Some(redis) = Redis::start(&dir) else { return };
    let sim = sim("first").await;
    let toml = format!(
        "[providers.first]\nkind = \"anthropic\"\nbase_url = \"{}\"\nretries = 0\n[routes.chat]\ntargets = [\"first/m1\"]\n\
         [keys.alice]\nkey_env = \"ALICE_KEY\"\n[keys.bob]\nkey_env = \"BOB_KEY\"\n",
        sim.base_url()
    );
    let fleet = fleet(3, &toml, &redis.url()).await;
    let client = reqwest::Client::new();
    let ask = |base: &str, key: &str, text: &str, previous: Option<&str>| {
        let mut body = serde_json::json!({"model": "chat", "input": text});
        if let Some(p) = previous {
            body["previous_response_id"] = serde_json::json!(p);
        }
        client.post(format!("{base}/v1/responses")).bearer_auth(key).json(&body).send()
    };
    let a = ask(&fleet[0].base, ALICE, "my name is Ada", None).await.unwrap();
    assert_eq!(a.status(), 200);
    let a: serde_json::Value = a.json().await.unwrap();
    let id = a["id"].as_str().unwrap().to_owned();
    // B continues it: the provider is sent the whole conversation.
    let b = ask(&fleet[1].base, ALICE, "what is my name?", Some(&id)).await.unwrap();
    assert_eq!(b.status(), 200);
    let b: serde_json::Value = b.json().await.unwrap();
    let sent = sim.last_request("/v1/messages").unwrap().to_string();
    assert!(sent.contains("my name is Ada") && sent.contains("what is my name?"), "{sent}");
    // C continues B's, and another key gets the same 404 as for an unknown id on every replica.
    let c = ask(&fleet[2].base, ALICE, "and again?", Some(b["id"].as_str().unwrap())).await.unwrap();
    assert_eq!(c.status(), 200);
    assert!(sim.last_request("/v1/messages").unwrap().to_string().contains("my name is Ada"));
    for r in &fleet {
        let other = ask(&r.base, BOB, "what was it?", Some(&id)).await.unwrap();
        assert_eq!(other.status(), 404);
        let got =
            client.get(format!("{}/v1/responses/{id}", r.base)).bearer_auth(ALICE).send().await.unwrap();
        assert_eq!(got.status(), 200, "every replica reads it");
    }
    shut(&fleet).await;
}

#[tokio::test]
async fn a_keys_concurrency_holds_across_replicas_and_places_come_back() {
    let dir = std::env::temp_dir().join(format!("nines-redis-conc-{}", std::process::id()));
    let Some(redis) = Redis::start(&dir) else { return };
    let sim = sim("first").await;
    sim.set_capacity(Some(nines_sim::Capacity { concurrent: 100, latency_ms: 300 }));
    let toml = one_target(&sim, "[keys.alice]\nkey_env = \"ALICE_KEY\"\nlimits = { concurrency = 3 }\n");
    let fleet = Arc::new(fleet(3, &toml, &redis.url()).await);
    let client = reqwest::Client::new();
    for round in 0..2 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..12 {
            let (fleet, client) = (fleet.clone(), client.clone());
            tasks.spawn(async move { post(&client, &fleet[i % 3].base, ALICE).await.status });
        }
        let mut ok = 0;
        while let Some(s) = tasks.join_next().await {
            ok += usize::from(s.unwrap() == 200);
        }
        assert_eq!(ok, 3, "round {round}: 3 at once over the whole fleet");
        // The places are given back in the background: wait until Redis holds none (bounded).
        let mut redis_conn = std::os::unix::net::UnixStream::connect(redis.socket.clone()).unwrap();
        let mut held = Vec::new();
        for _ in 0..100 {
            use std::io::{Read, Write};
            let key = "nines:conc:key alice";
            redis_conn
                .write_all(format!("*2\r\n$5\r\nZCARD\r\n${}\r\n{key}\r\n", key.len()).as_bytes())
                .unwrap();
            let mut buf = [0u8; 16];
            let n = redis_conn.read(&mut buf).unwrap();
            held = buf[..n].to_vec();
            if held == b":0\r\n" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(String::from_utf8_lossy(&held), ":0\r\n", "every place given back");
    }
    shut(&fleet).await;
}

/// A Redis that hangs (here `DEBUG SLEEP`): no request waits for it past `[state] budget`, none fails, and while
/// the fleet view is degraded requests do not ask it at all.
#[tokio::test]
async fn a_hung_redis_costs_a_request_at_most_its_budget() {
    let dir = std::env::temp_dir().join(format!("nines-redis-hang-{}", std::process::id()));
    let Some(redis) = Redis::start(&dir) else { return };
    let sim = sim("first").await;
    let fleet = replicas(1, &sim, &redis.url()).await;
    let client = reqwest::Client::new();
    assert_eq!(post(&client, &fleet[0].base, ALICE).await.status, 200);
    // Redis stops answering for 3 s.
    let socket = redis.socket.clone();
    let hang = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
        s.write_all(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$1\r\n3\r\n").unwrap();
        let mut buf = [0u8; 8];
        let _ = s.read(&mut buf);
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let t0 = tokio::time::Instant::now();
        let r = post(&client, &fleet[0].base, ALICE).await;
        assert_eq!(r.status, 200, "{}", r.text);
        slowest = slowest.max(t0.elapsed());
    }
    // The first waits its budget (200 ms), the others none: the view is degraded.
    assert!(slowest < Duration::from_millis(1000), "a request waited {slowest:?} for a hung Redis");
    assert!(fleet[0].app.state.runtime.shared.as_ref().unwrap().degraded());
    hang.join().unwrap();
    fleet[0].app.shutdown().await;
}

/// Wait until every replica in `fleet` has read the fleet's view `n` more times (each read is a whole tick: breakers,
/// cooldowns, history, spend, retries).
async fn all_synced(fleet: &[Replica], n: u64) {
    let shared: Vec<_> = fleet.iter().map(|r| r.app.state.runtime.shared.clone().unwrap()).collect();
    let all = futures_util::future::join_all(shared.iter().map(|s| s.synced(n)));
    tokio::time::timeout(Duration::from_secs(10), all).await.expect("no fleet read");
}

async fn status_json(client: &reqwest::Client, base: &str) -> serde_json::Value {
    let r = client.get(format!("{base}/status.json")).bearer_auth(BOB).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn two_targets(first: &Sim, second: &Sim, health: &str) -> String {
    format!(
        "[providers.first]\nkind = \"openai\"\nbase_url = \"{}/v1\"\nretries = 0\n\
         [providers.second]\nkind = \"anthropic\"\nbase_url = \"{}\"\nretries = 0\n\
         [routes.chat]\ntargets = [\"first/m1\", \"second/m2\"]\n\
         [keys.bob]\nkey_env = \"BOB_KEY\"\n{health}",
        first.base_url(),
        second.base_url()
    )
}

async fn two_sims() -> (Sim, Sim) {
    let first = sim("first").await;
    let second = sim("second").await;
    (first, second)
}

#[tokio::test]
async fn every_replica_shows_the_same_incident_and_the_fleets_availability() {
    let dir = std::env::temp_dir().join(format!("nines-redis-inc-{}", std::process::id()));
    let Some(redis) = Redis::start(&dir) else { return };
    let (first, second) = two_sims().await;
    let toml = two_targets(&first, &second, "[health]\nconsecutive_failures = 3\ncooldown = \"30s\"\n");
    let fleet = fleet(3, &toml, &redis.url()).await;
    let client = reqwest::Client::new();
    first.push_fault(nines_sim::Fault::status(503).times(100));
    // Replica A meets the outage (its breaker opens, an incident opens); B and C serve a few requests of their own.
    for _ in 0..3 {
        assert_eq!(post(&client, &fleet[0].base, BOB).await.status, 200);
    }
    all_synced(&fleet, 2).await;
    for r in &fleet[1..] {
        assert_eq!(post(&client, &r.base, BOB).await.status, 200);
    }
    // Each writes its history (what its status page does first), then reads the others'.
    for r in fleet.iter() {
        status_json(&client, &r.base).await;
    }
    all_synced(&fleet, 3).await;
    let reports: Vec<serde_json::Value> =
        futures_util::future::join_all(fleet.iter().map(|r| status_json(&client, &r.base))).await;
    let a = &reports[0];
    let incident = &a["incidents"][0];
    assert_eq!(incident["target"], "first/m1", "{a}");
    assert!(incident["ended_at"].is_null(), "open: {incident}");
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r["incidents"][0]["id"], incident["id"], "replica {i} shows A's incident: {r}");
        assert_eq!(r["incidents"].as_array().unwrap().len(), 1, "one incident, not one per replica: {r}");
        assert_eq!(r["fleet"]["state"], "shared", "{r}");
        assert_eq!(r["fleet"]["replicas"], 3, "{r}");
        // The fleet's requests: A's three and one each on B and C.
        let day = &r["gateway"]["availability"][1];
        assert_eq!(day["window"], "24h");
        assert_eq!(day["total"], 5, "replica {i} counts the fleet's requests: {day}");
        let target = r["targets"].as_array().unwrap().iter().find(|t| t["id"] == "first/m1").unwrap();
        assert_eq!(target["state"], "breaker_open", "replica {i}: {target}");
    }
    shut(&fleet).await;
}

#[tokio::test]
async fn a_half_open_target_gets_one_trial_from_the_fleet() {
    let dir = std::env::temp_dir().join(format!("nines-redis-trial-{}", std::process::id()));
    let Some(redis) = Redis::start(&dir) else { return };
    let (first, second) = two_sims().await;
    // A cooldown of 3 s is 2.4 to 3.6 s (jittered ±20%); the others keep it aside for twice A's.
    let toml = two_targets(&first, &second, "[health]\nconsecutive_failures = 3\ncooldown = \"3s\"\n");
    let fleet = fleet(3, &toml, &redis.url()).await;
    let client = reqwest::Client::new();
    // Three failures, then the target recovers.
    first.push_fault(nines_sim::Fault::status(503).times(3));
    for _ in 0..3 {
        assert_eq!(post(&client, &fleet[0].base, BOB).await.status, 200);
    }
    let opened = tokio::time::Instant::now();
    assert_eq!(first.total_hits(), 3);
    all_synced(&fleet[1..], 2).await;
    // The cooldown has passed: A's breaker is half-open. B and C still keep the target aside: A owns the trial.
    tokio::time::sleep_until(opened + Duration::from_millis(3700)).await;
    for r in &fleet[1..] {
        let reply = post(&client, &r.base, BOB).await;
        assert_eq!(reply.header("x-nines-target"), "second/m2", "{}", reply.text);
    }
    assert_eq!(first.total_hits(), 3, "no trial from B or C");
    // A's trial succeeds: its breaker closes, and the fleet's with it.
    let trial = post(&client, &fleet[0].base, BOB).await;
    assert_eq!(trial.header("x-nines-target"), "first/m1", "{}", trial.text);
    assert_eq!(first.total_hits(), 4, "exactly one trial in the fleet");
    all_synced(&fleet[1..], 2).await;
    for r in &fleet[1..] {
        let reply = post(&client, &r.base, BOB).await;
        assert_eq!(reply.header("x-nines-target"), "first/m1", "{}", reply.text);
    }
    shut(&fleet).await;
}

#[tokio::test]
async fn a_providers_rate_limit_cooldown_holds_on_every_replica() {
    let dir = std::env::temp_dir().join(format!("nines-redis-cool-{}", std::process::id()));
    let Some(redis) = Redis::start(&dir) else { return };
    let (first, second) = two_sims().await;
    let fleet = fleet(3, &two_targets(&first, &second, ""), &redis.url()).await;
    let client = reqwest::Client::new();
    // The provider tells A to come back in 30 s.
    first.push_fault(nines_sim::Fault::status_retry_after(429, 30).times(1));
    let reply = post(&client, &fleet[0].base, BOB).await;
    assert_eq!(reply.header("x-nines-target"), "second/m2", "{}", reply.text);
    assert_eq!(first.total_hits(), 1);
    all_synced(&fleet, 2).await;
    for r in fleet.iter() {
        let reply = post(&client, &r.base, BOB).await;
        assert_eq!(reply.header("x-nines-target"), "second/m2", "{}", reply.text);
        assert_eq!(reply.header("x-nines-attempts"), "1", "skipped, not tried");
    }
    assert_eq!(first.total_hits(), 1, "no replica asked before the provider's time");
    shut(&fleet).await;
}

#[tokio::test]
async fn a_keys_budget_is_spent_by_the_whole_fleet() {
    let dir = std::env::temp_dir().join(format!("nines-redis-spend-{}", std::process::id()));
    let Some(redis) = Redis::start(&dir) else { return };
    let sim = sim("first").await;
    // $1 per million tokens; alice may spend $0.0002 a day (200 tokens' worth).
    let toml = one_target(
        &sim,
        "[prices.\"first/m1\"]\ninput = 1.0\noutput = 1.0\n\
         [keys.alice]\nkey_env = \"ALICE_KEY\"\nbudget = { daily = 0.0002 }\n",
    );
    let fleet = fleet(3, &toml, &redis.url()).await;
    let client = reqwest::Client::new();
    // A spends the whole budget.
    let mut served = 0;
    loop {
        let r = post(&client, &fleet[0].base, ALICE).await;
        if r.status == 429 {
            assert!(r.text.contains("daily budget"), "{}", r.text);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text);
        served += 1;
        assert!(served < 100, "the budget never stopped A");
    }
    // A tells the fleet; B and C read it: they refuse too, without spending anything more.
    all_synced(&fleet[..1], 2).await;
    all_synced(&fleet[1..], 2).await;
    let hits = sim.total_hits();
    for r in &fleet[1..] {
        let reply = post(&client, &r.base, ALICE).await;
        assert_eq!(reply.status, 429, "{}", reply.text);
        assert!(reply.text.contains("daily budget"), "{}", reply.text);
    }
    assert_eq!(sim.total_hits(), hits);
    shut(&fleet).await;
}

#[tokio::test]
async fn the_retry_budget_is_the_fleets() {
    let dir = std::env::temp_dir().join(format!("nines-redis-retry-{}", std::process::id()));
    let Some(redis) = Redis::start(&dir) else { return };
    let (first, second) = two_sims().await;
    // No share of requests, a floor of 1 retry a second over 60 s: 60 retries for the whole fleet, a third each.
    let toml = two_targets(
        &first,
        &second,
        "[health.retry_budget]\nratio = 0.0\nmin_per_second = 1\nttl = \"60s\"\n",
    );
    let fleet = fleet(3, &toml, &redis.url()).await;
    let id = nines::health::TargetId::new("first", "m1");
    let health = |i: usize| fleet[i].app.state.runtime.health.target(&id);
    for i in 0..3 {
        health(i);
    }
    // Every replica counts three in the fleet, and has taken its share since.
    for _ in 0..10 {
        all_synced(&fleet, 1).await;
        if fleet.iter().all(|r| r.app.state.runtime.shared.as_ref().unwrap().replicas() == 3) {
            break;
        }
    }
    all_synced(&fleet, 1).await;
    // A takes its share of the fleet's 60 (its own budget would allow all 60).
    let taken = |i: usize| (0..100).take_while(|_| health(i).withdraw()).count();
    assert_eq!(taken(0), 20);
    // A tells the fleet; B's share is then a third of what is left, not a third of 60.
    all_synced(&fleet[..1], 2).await;
    all_synced(&fleet[1..], 2).await;
    assert_eq!(taken(1), 13, "(60 - 20) / 3");
    drop(redis);
    shut(&fleet).await;
}

#[tokio::test]
async fn a_key_and_its_team_are_admitted_in_one_round_trip_across_the_fleet() {
    let dir = std::env::temp_dir().join(format!("nines-redis-team-{}", std::process::id()));
    let Some(redis) = Redis::start(&dir) else { return };
    let sim = sim("first").await;
    // The team allows 4 a minute, its two keys 3 each: the team's limit binds them across the fleet.
    let toml = one_target(
        &sim,
        "[teams.eng]\nlimits = { requests_per_minute = 4 }\n\
         [keys.alice]\nkey_env = \"ALICE_KEY\"\nteam = \"eng\"\nlimits = { requests_per_minute = 3 }\n\
         [keys.bob]\nkey_env = \"BOB_KEY\"\nteam = \"eng\"\nlimits = { requests_per_minute = 3 }\n",
    );
    let fleet = Arc::new(fleet(3, &toml, &redis.url()).await);
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let (fleet, client) = (fleet.clone(), client.clone());
        let key = if i % 2 == 0 { ALICE } else { BOB };
        tasks.spawn(async move { post(&client, &fleet[i % 3].base, key).await.status });
    }
    let mut ok = 0;
    while let Some(s) = tasks.join_next().await {
        ok += usize::from(s.unwrap() == 200);
    }
    assert_eq!(ok, 4, "the team's 4 a minute, for the whole fleet");
    assert_eq!(sim.total_hits(), 4);
    drop(redis);
    shut(&fleet).await;
}

/// A `redis-server` (or sentinel) of the test's own on a TCP port of 127.0.0.1 (the kernel's pick), with `args`;
/// killed when dropped.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One command over RESP; the first reply line (bulk strings: their body too).
fn redis_cmd(port: u16, args: &[&str]) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = vec![0u8; 8192];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Start `redis-server` with `args` on a port of its own; ready when `ready` holds (bounded).
fn server(dir: &std::path::Path, args: &[String], ready: impl Fn(u16) -> bool) -> Option<Server> {
    let bin = std::path::Path::new("/usr/bin/redis-server");
    if !bin.exists() {
        assert!(Env::from_process().get("NINES_REQUIRE_REDIS").is_none(), "redis-server is required");
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let args: Vec<String> = args.iter().map(|a| a.replace("{port}", &port.to_string())).collect();
    let child = std::process::Command::new(bin)
        .args(&args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, port };
    for _ in 0..300 {
        if ready(port) {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("redis-server {args:?} did not become ready");
}

fn pong(port: u16) -> bool {
    redis_cmd(port, &["PING"]).is_some_and(|r| r.starts_with("+PONG"))
}

/// 45 requests at once over the fleet: exactly alice's 10 a minute pass, wherever they land.
async fn limit_holds(fleet: Arc<Vec<Replica>>, sim: &Sim) {
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..45 {
        let (fleet, client) = (fleet.clone(), client.clone());
        tasks.spawn(async move { post(&client, &fleet[i % fleet.len()].base, ALICE).await.status });
    }
    let mut ok = 0;
    while let Some(s) = tasks.join_next().await {
        ok += usize::from(s.unwrap() == 200);
    }
    assert_eq!(ok, 10);
    assert_eq!(sim.total_hits(), 10);
    for r in fleet.iter() {
        assert_eq!(r.app.state.runtime.shared.as_ref().unwrap().status().state, "shared");
        r.app.shutdown().await;
    }
}

#[tokio::test]
async fn a_fleet_shares_its_state_through_a_redis_cluster() {
    let dir = std::env::temp_dir().join(format!("nines-redis-cluster-{}", std::process::id()));
    let args = [
        "--port",
        "{port}",
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .map(str::to_owned);
    let Some(node) = server(&dir, &args, pong) else { return };
    // One node holding every slot: a cluster (MOVED, slots, the cluster protocol) of one.
    let added = redis_cmd(node.port, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).unwrap();
    assert!(added.starts_with("+OK"), "{added}");
    for _ in 0..300 {
        if redis_cmd(node.port, &["CLUSTER", "INFO"]).is_some_and(|i| i.contains("cluster_state:ok")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let sim = sim("first").await;
    let fleet = replicas(3, &sim, &format!("redis+cluster://127.0.0.1:{}", node.port)).await;
    limit_holds(Arc::new(fleet), &sim).await;
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_fleet_finds_its_redis_through_sentinel() {
    let dir = std::env::temp_dir().join(format!("nines-redis-sentinel-{}", std::process::id()));
    let args =
        ["--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"].map(str::to_owned);
    let Some(master) = server(&dir, &args, pong) else { return };
    std::fs::write(
        dir.join("sentinel.conf"),
        format!("bind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {} 1\n", master.port),
    )
    .unwrap();
    let sentinel = server(
        &dir,
        &["sentinel.conf".to_owned(), "--sentinel".to_owned(), "--port".to_owned(), "{port}".to_owned()],
        |port| {
            redis_cmd(port, &["SENTINEL", "get-master-addr-by-name", "mymaster"])
                .is_some_and(|r| r.contains("127.0.0.1"))
        },
    )
    .unwrap();
    let sim = sim("first").await;
    let fleet = replicas(3, &sim, &format!("redis+sentinel://127.0.0.1:{}/mymaster", sentinel.port)).await;
    limit_holds(Arc::new(fleet), &sim).await;
    drop((sentinel, master));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_fleet_reaches_redis_over_tls_checked_against_its_own_ca() {
    let dir = std::env::temp_dir().join(format!("nines-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if !std::path::Path::new("/usr/bin/openssl").exists() {
        assert!(
            Env::from_process().get("NINES_REQUIRE_REDIS").is_none(),
            "openssl is required for the TLS test"
        );
        return;
    }
    // A CA, and a certificate for 127.0.0.1 signed by it.
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).current_dir(&dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=nines test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "redis.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    let args = [
        "--port",
        "0",
        "--tls-port",
        "{port}",
        "--bind",
        "127.0.0.1",
        "--tls-cert-file",
        "redis.pem",
        "--tls-key-file",
        "redis.key",
        "--tls-ca-cert-file",
        "ca.pem",
        "--tls-auth-clients",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .map(str::to_owned);
    let Some(tls) = server(&dir, &args, |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
    else {
        return;
    };
    let sim = sim("first").await;
    let url = format!("rediss://127.0.0.1:{}\"\ntls_ca = \"{}", tls.port, dir.join("ca.pem").display());
    let fleet = replicas(2, &sim, &url).await;
    limit_holds(Arc::new(fleet), &sim).await;
    // Another CA than the one that signed the server's certificate: never connected.
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "other.key",
        "-out",
        "other.pem",
        "-days",
        "2",
        "-subj",
        "/CN=another CA",
    ]);
    let toml = format!(
        "[providers.first]\nkind = \"openai\"\nbase_url = \"{}/v1\"\n[routes.chat]\ntargets = [\"first/m1\"]\n\
         [state]\nredis_url = \"rediss://127.0.0.1:{}\"\ntls_ca = \"{}\"\n",
        sim.base_url(),
        tls.port,
        dir.join("other.pem").display()
    );
    let app = App::build(config::parse_and_validate(&toml).unwrap(), &Env::from_pairs([("X", "y")])).unwrap();
    app.spawn(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let shared = app.state.runtime.shared.clone().unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(1), shared.reachable()).await.is_err(),
        "a server whose certificate the CA did not sign is never trusted"
    );
    app.shutdown().await;
    drop(tls);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn redis_killed_during_load_fails_no_request() {
    let dir = std::env::temp_dir().join(format!("nines-redis-load-{}", std::process::id()));
    let Some(mut redis) = Redis::start(&dir) else { return };
    let sim = sim("first").await;
    // Alice's limits are high enough never to refuse here: every request of hers asks Redis (one round trip).
    let toml = one_target(
        &sim,
        "[keys.alice]\nkey_env = \"ALICE_KEY\"\nlimits = { requests_per_minute = 1000000, concurrency = 1000 }\n\
         [keys.bob]\nkey_env = \"BOB_KEY\"\n",
    );
    let fleet = Arc::new(fleet(3, &toml, &redis.url()).await);
    let client = reqwest::Client::new();
    let sent = Arc::new(tokio::sync::watch::Sender::new(0usize));
    let stop = tokio_util::sync::CancellationToken::new();
    // Eight clients, each sending one request after another, over the three replicas.
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..8 {
        let (fleet, client, sent, stop) = (fleet.clone(), client.clone(), sent.clone(), stop.clone());
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            let mut i = w;
            while !stop.is_cancelled() {
                let key = if i % 2 == 0 { ALICE } else { BOB };
                statuses.push(post(&client, &fleet[i % 3].base, key).await.status);
                sent.send_modify(|n| *n += 1);
                i += 1;
            }
            statuses
        });
    }
    let until = |n: usize| {
        let mut rx = sent.subscribe();
        async move {
            let _ = rx.wait_for(|k| *k >= n).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), until(150)).await.expect("load too slow");
    redis.kill();
    let killed_at = *sent.borrow();
    tokio::time::timeout(Duration::from_secs(20), until(killed_at + 150)).await.expect("load too slow");
    stop.cancel();
    let mut statuses = Vec::new();
    while let Some(s) = tasks.join_next().await {
        statuses.extend(s.unwrap());
    }
    let failed = statuses.iter().filter(|s| **s != 200).count();
    eprintln!("{} requests, Redis killed after {killed_at}: {failed} failed", statuses.len());
    assert_eq!(failed, 0, "no client request fails because Redis died");
    assert!(statuses.len() >= 300);
    for r in fleet.iter() {
        assert!(r.app.state.runtime.shared.as_ref().unwrap().degraded());
        r.app.shutdown().await;
    }
}

#[tokio::test]
async fn a_fleet_follows_its_master_when_sentinel_fails_over() {
    let dir = std::env::temp_dir().join(format!("nines-redis-failover-{}", std::process::id()));
    // Replication starts at once (a master waits 5 s for more replicas before a diskless sync by default).
    let base = [
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--repl-diskless-sync-delay",
        "0",
        "--port",
        "{port}",
    ]
    .map(str::to_owned);
    let Some(master) = server(&dir, &base, pong) else { return };
    let mut replica_args = base.to_vec();
    replica_args.extend(["--replicaof".to_owned(), "127.0.0.1".to_owned(), master.port.to_string()]);
    let replica = server(&dir, &replica_args, |port| {
        redis_cmd(port, &["INFO", "replication"]).is_some_and(|i| i.contains("master_link_status:up"))
    })
    .unwrap();
    std::fs::write(
        dir.join("sentinel.conf"),
        format!(
            "bind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {} 1\nsentinel down-after-milliseconds mymaster 300\n\
             sentinel failover-timeout mymaster 2000\n",
            master.port
        ),
    )
    .unwrap();
    let sentinel = server(
        &dir,
        &["sentinel.conf".to_owned(), "--sentinel".to_owned(), "--port".to_owned(), "{port}".to_owned()],
        |port| {
            redis_cmd(port, &["SENTINEL", "replicas", "mymaster"])
                .is_some_and(|r| r.contains(&replica.port.to_string()))
        },
    )
    .unwrap();
    let sim = sim("first").await;
    let fleet = replicas(2, &sim, &format!("redis+sentinel://127.0.0.1:{}/mymaster", sentinel.port)).await;
    let client = reqwest::Client::new();
    assert_eq!(post(&client, &fleet[0].base, ALICE).await.status, 200);
    // The master dies: the sentinel promotes the replica; each replica of the fleet notices, asks the sentinel
    // again and is shared again — no client request failing meanwhile.
    drop(master);
    for r in fleet.iter() {
        let shared = r.app.state.runtime.shared.clone().unwrap();
        tokio::time::timeout(Duration::from_secs(10), shared.unreachable()).await.expect("never noticed");
    }
    for i in 0..4 {
        assert_eq!(post(&client, &fleet[i % 2].base, BOB).await.status, 200);
    }
    for r in fleet.iter() {
        let shared = r.app.state.runtime.shared.clone().unwrap();
        tokio::time::timeout(Duration::from_secs(30), shared.reachable())
            .await
            .expect("never found the new master");
    }
    let role = redis_cmd(replica.port, &["ROLE"]).unwrap();
    assert!(role.contains("master"), "the replica was promoted: {role}");
    // Shared again, on the new master: alice's 10 a minute hold across both (one was spent before).
    let mut ok = 0;
    for i in 0..14 {
        ok += usize::from(post(&client, &fleet[i % 2].base, ALICE).await.status == 200);
    }
    assert!((9..=10).contains(&ok), "{ok} (9 if the first one reached the replica before the failover)");
    let keys = redis_cmd(replica.port, &["EXISTS", "{nines}:rpm:key alice:10"]).unwrap();
    assert!(keys.starts_with(":1"), "the limit lives on the new master: {keys}");
    shut(&fleet).await;
    drop((sentinel, replica));
    let _ = std::fs::remove_dir_all(&dir);
}
