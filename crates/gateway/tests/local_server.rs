//! A server that nines runs itself (`[providers.X] command`): here the simulator, started by the gateway on the
//! `{port}` it chose, answering through the route; killed, started again by the gateway, answering again; gone when
//! the gateway stops, after an answer streaming from it has finished. (The real llama.cpp runtime behind the same setting: tests/local/test_local_model.py.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use nines::App;
use nines::config::{self, Env};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The pids of this process's children whose command line mentions `needle`.
fn children(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Field 4 (after the parenthesised name, which may hold spaces) is the parent's pid.
        let ppid =
            stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1)).and_then(|p| p.parse().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(me) && String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(pid);
        }
    }
    out
}

async fn ask(client: &reqwest::Client, base: &str) -> Option<Value> {
    let body = json!({"model": "local", "messages": [{"role": "user", "content": "hello there"}]});
    let resp = client.post(format!("{base}/v1/chat/completions")).json(&body).send().await.ok()?;
    if resp.status() != 200 {
        return None;
    }
    resp.json().await.ok()
}

/// Ask until the route answers, within `limit`.
async fn answered(client: &reqwest::Client, base: &str, limit: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = ask(client, base).await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "no answer within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A gateway serving, whose one route goes to a simulator called `name` that the gateway runs itself on its
/// `{port}`; the gateway and its base URL.
async fn serve_local(name: &str) -> (App, String) {
    let bin = env!("CARGO_BIN_EXE_nines");
    let toml = format!(
        "[providers.local]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{{port}}/v1\"\n\
         command = [\"{bin}\", \"sim\", \"--name\", \"{name}\", \"--listen\", \"127.0.0.1:{{port}}\"]\n\
         [routes.local]\ntargets = [\"local/tiny\"]\n"
    );
    let app = App::build(config::parse_and_validate(&toml).unwrap(), &Env::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    app.spawn(listener);
    (app, base)
}

#[tokio::test]
async fn the_gateway_runs_its_local_server_and_starts_it_again_when_it_dies() {
    let name = format!("local-sim-{}", std::process::id());
    let (app, base) = serve_local(&name).await;
    let client = reqwest::Client::new();

    let v = answered(&client, &base, Duration::from_secs(20)).await;
    assert!(
        v["choices"][0]["message"]["content"].as_str().unwrap().starts_with(&format!("{name} says:")),
        "{v}"
    );
    let first = children(&name);
    assert_eq!(first.len(), 1, "{first:?}");

    // Killed: the gateway starts it again (after 0.5 s) and the route answers again, from a new process.
    std::process::Command::new("kill").args(["-9", &first[0].to_string()]).status().unwrap();
    let v = answered(&client, &base, Duration::from_secs(20)).await;
    assert!(v["choices"][0]["message"]["content"].as_str().unwrap().starts_with(&format!("{name} says:")));
    let second = children(&name);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first);

    // Stopped with the gateway.
    app.shutdown().await;
    assert!(children(&name).is_empty(), "the local server outlived the gateway");
}

#[tokio::test]
async fn a_restarted_local_server_gets_its_traffic_back_once_it_listens() {
    // The local server first, a simulator behind it; a long cool-down: without the supervisor's word that the
    // server listens again, the breaker its restart opened would keep it out for 30 s.
    let bin = env!("CARGO_BIN_EXE_nines");
    let name = format!("local-back-{}", std::process::id());
    let fallback = nines_sim::Sim::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        nines_sim::SimOptions::new("fallback"),
    )
    .await
    .unwrap();
    let toml = format!(
        "[providers.local]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{{port}}/v1\"\nretries = 0\n\
         command = [\"{bin}\", \"sim\", \"--name\", \"{name}\", \"--listen\", \"127.0.0.1:{{port}}\"]\n\
         [providers.fallback]\nkind = \"openai\"\nbase_url = \"{}/v1\"\n\
         [routes.local]\ntargets = [\"local/tiny\", \"fallback/m\"]\n\
         [health]\ncooldown = \"30s\"\nramp = \"0s\"\n",
        fallback.base_url()
    );
    let app = App::build(config::parse_and_validate(&toml).unwrap(), &Env::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    app.spawn(listener);
    let client = reqwest::Client::new();
    let served_by_local =
        |v: &Value| v["choices"][0]["message"]["content"].as_str().unwrap_or("").starts_with(&name);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ask(&client, &base).await.is_some_and(|v| served_by_local(&v)) {
        assert!(tokio::time::Instant::now() < deadline, "the local server never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = children(&name)[0];
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    // Meanwhile the fallback answers, and the local target's breaker opens (connections refused).
    for _ in 0..4 {
        let v = ask(&client, &base).await.unwrap();
        assert!(!served_by_local(&v) || children(&name) != vec![pid], "{v}");
    }
    let restarted = tokio::time::Instant::now();
    let deadline = restarted + Duration::from_secs(10);
    loop {
        let v = ask(&client, &base).await.unwrap();
        if served_by_local(&v) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the local server did not get its traffic back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.shutdown().await;
    fallback.shutdown().await;
}

/// The port a child was started with (`--listen 127.0.0.1:PORT` in its command line).
fn listen_port(pid: u32) -> u16 {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> =
        cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let at = args.iter().position(|a| a == "--listen").unwrap();
    args[at + 1].rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_answer_streaming_from_the_local_server_at_shutdown_is_finished_before_the_server_stops() {
    let name = format!("local-drain-{}", std::process::id());
    let (app, base) = serve_local(&name).await;
    let client = reqwest::Client::new();
    answered(&client, &base, Duration::from_secs(20)).await;
    let pid = children(&name)[0];

    // The next answer drips, 50 ms an event: shutdown starts after its first bytes.
    let sim = format!("http://127.0.0.1:{}", listen_port(pid));
    let r = client
        .post(format!("{sim}/_sim/faults"))
        .json(&json!({"kind": "drip", "ms": 50}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let body =
        json!({"model": "local", "stream": true, "messages": [{"role": "user", "content": "hello there"}]});
    let mut resp = client.post(format!("{base}/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::from_utf8(resp.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    let stopping = {
        let app = app.clone();
        #[allow(clippy::disallowed_methods)]
        tokio::spawn(async move { app.shutdown().await })
    };
    while let Some(chunk) = resp.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.trim_end().ends_with("data: [DONE]"), "cut: {text}");
    assert!(text.contains(&name), "{text}");
    stopping.await.unwrap();
    assert!(children(&name).is_empty(), "the local server outlived the gateway");
}
