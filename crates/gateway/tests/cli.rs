//! The `nines` binary: a bad configuration exits 64 before binding, `check` lists every error, the demo plays its
//! outage to the end, JSON logs carry the request id, `nines status` reads a running gateway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is its job

use std::process::Command;

fn nines() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nines"))
}

#[test]
fn serve_refuses_a_bad_config_with_exit_code_64() {
    let dir = std::env::temp_dir().join(format!("nines-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[routes.chat]\ntargets = [\"ghost/m\"]\n").unwrap();
    // A port that is certainly free is not needed: the process must exit before binding anything.
    let out = nines().args(["serve", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("routes.chat.targets[0]: unknown provider \"ghost\""), "{err}");
    assert!(out.stdout.is_empty(), "nothing may be served: {out:?}");

    let out = nines().args(["check", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = nines()
        .args(["check", "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/../../nines.example.toml")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_demo_plays_its_outage_without_a_failed_request() {
    let out = nines().args(["demo", "--once", "--listen", "127.0.0.1:0"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("48/48 requests succeeded"), "{stdout}");
    // A lone 529 retried once, a second 529, a third one: the breaker opens, and nothing more is sent there.
    assert!(stdout.contains("anthropic was asked 3 times before its breaker opened"), "{stdout}");
    // A silent provider costs one request its timeout: the breaker opens at once.
    assert!(stdout.contains("while silent, 1 time(s)"), "{stdout}");
    assert!(stdout.contains("3 were saved"), "{stdout}");
    // Streams cut after their first words: each completed by another provider, until three cuts open the breaker.
    assert!(stdout.contains("3 of them were completed by another provider"), "{stdout}");
    // What the status report saw: the clients never noticed; one incident per outage, each with its root cause.
    assert!(stdout.contains("— your users 100% (24 h)"), "{stdout}");
    for kinds in ["timeout ×1", "overload ×3", "stream_cut ×3"] {
        assert!(stdout.contains(&format!("incident anthropic: {kinds}; blast radius provider")), "{stdout}");
    }
    // The spike: the provider never had more than it serves, and batch was shed with Retry-After.
    let peak: usize = stdout
        .split("never had more than ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(99);
    assert!(peak <= 4, "{stdout}");
    assert!(stdout.contains("with Retry-After"), "{stdout}");
}

/// A child process killed when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `nines ARGS`, and read the address from its first stdout line (`… listening on http://ADDR`).
fn start(args: &[&str]) -> (Child, String) {
    use std::io::BufRead;
    let mut child = nines()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    (Child(child), base)
}

/// One HTTP/1.1 request over a plain socket; the whole response as text.
fn http(base: &str, method: &str, path: &str, headers: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n{headers}\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// `--log-format json`: every line a JSON object, the request's line carrying the client's `x-request-id`; and
/// `nines status` prints the running gateway's availability.
#[test]
fn json_logs_carry_the_request_id_and_nines_status_reads_a_running_gateway() {
    let (_sim, sim) = start(&["sim", "--listen", "127.0.0.1:0", "--name", "up"]);
    let dir = std::env::temp_dir().join(format!("nines-cli-status-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nines.toml");
    std::fs::write(
        &path,
        format!(
            "[providers.up]\nkind = \"anthropic\"\nbase_url = \"{sim}\"\n\n[routes.chat]\ntargets = [\"up/m\"]\n\n\
             [status]\npublic = true\n"
        ),
    )
    .unwrap();
    let config = path.to_str().unwrap();
    let (mut gw, base) =
        start(&["serve", "--config", config, "--listen", "127.0.0.1:0", "--log-format", "json"]);
    let body = r#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#;
    let resp = http(&base, "POST", "/v1/chat/completions", "x-request-id: cli-req-42\r\n", body);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.to_ascii_lowercase().contains("x-request-id: cli-req-42"), "{resp}");

    let out = nines().args(["status", "--url", &base]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("up 100% — your users 100% (24 h)"), "{text}");
    assert!(text.contains("up/m") && text.contains("healthy"), "{text}");
    let json = nines().args(["status", "--json", "--url", &base]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["schema"], "nines.status.v1");

    // SIGTERM: the gateway drains and writes its log out.
    let pid = gw.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = gw.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut gw.0.stderr.take().unwrap(), &mut stderr).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let done = lines
        .iter()
        .find(|l| l["message"] == "request completed")
        .unwrap_or_else(|| panic!("no request line in {stderr}"));
    assert_eq!(done["request"], "cli-req-42", "{done}");
    assert_eq!(done["ending"], "served");
    assert_eq!(done["level"], "INFO");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real process: SIGHUP reloads the configuration file (the log says so, and the new route answers), an invalid
/// file is refused with the old one kept; and with a provider that echoes our key back, no log line (at debug level)
/// holds it.
#[test]
fn sighup_reloads_the_file_and_no_provider_key_reaches_a_log_line() {
    use std::io::BufRead;
    const KEY: &str = "sk-test-SECRETKEY-0123456789abcdef";
    let (_sim, sim) = start(&["sim", "--listen", "127.0.0.1:0", "--name", "echo"]);
    let dir = std::env::temp_dir().join(format!("nines-cli-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nines.toml");
    let base_config = format!(
        "[providers.echo]\nkind = \"anthropic\"\nbase_url = \"{sim}\"\napi_key_env = \"ECHO_KEY\"\nretries = 0\n\n\
         [routes.chat]\ntargets = [\"echo/m\"]\n"
    );
    std::fs::write(&path, &base_config).unwrap();
    let mut child = nines()
        .args(["serve", "--config", path.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("ECHO_KEY", KEY)
        .env("NINES_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    let stderr = child.stderr.take().unwrap();
    let pid = child.id().to_string();
    let _gw = Child(child);
    // Every log line, as it comes.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for l in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut log = Vec::new();
    let wait_for = |what: &str, log: &mut Vec<String>| loop {
        let l = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no log line with {what:?} in {log:#?}"));
        let hit = l.contains(what);
        log.push(l);
        if hit {
            return;
        }
    };

    // The provider echoes our key in its error and its request-id header.
    let fault = r#"{"kind":"echo","status":503,"count":2}"#;
    assert!(http(&sim, "POST", "/_sim/faults", "", fault).starts_with("HTTP/1.1 2"));
    let body = r#"{"model":"chat","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#;
    let resp = http(&base, "POST", "/v1/messages", "", body);
    assert!(!resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(!resp.contains("SECRETKEY"), "{resp}");
    wait_for("request completed", &mut log);

    // SIGHUP with a new route: applied.
    std::fs::write(&path, format!("{base_config}\n[routes.later]\ntargets = [\"echo/m2\"]\n")).unwrap();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    wait_for("configuration reloaded", &mut log);
    let models = http(&base, "GET", "/v1/models", "", "");
    assert!(models.contains("\"later\""), "{models}");
    // An invalid file: refused, the old configuration kept.
    std::fs::write(&path, format!("{base_config}\n[routes.bad]\ntargets = [\"nowhere/x\"]\n")).unwrap();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    wait_for("reload refused", &mut log);
    let models = http(&base, "GET", "/v1/models", "", "");
    assert!(models.contains("\"later\"") && !models.contains("\"bad\""), "{models}");

    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    while let Ok(l) = rx.recv_timeout(std::time::Duration::from_secs(10)) {
        log.push(l);
    }
    let _ = reader.join();
    assert!(log.len() > 3);
    for l in &log {
        assert!(!l.contains("SECRETKEY"), "a log line holds the provider key: {l}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Replicas stopped during load, as real processes: SIGTERM drains (every request it held is answered), SIGKILL
/// loses exactly the requests it held (their connections reset) and the other replica serves on. Counted.
#[test]
fn a_replica_stopped_during_load_loses_none_with_sigterm_and_only_what_it_held_with_sigkill() {
    let (_sim, sim) = start(&["sim", "--listen", "127.0.0.1:0", "--name", "slow"]);
    // Every answer takes 600 ms: requests are in flight when the signal comes.
    let fault = r#"{"kind":"delay","ms":600,"count":100000}"#;
    assert!(http(&sim, "POST", "/_sim/faults", "", fault).starts_with("HTTP/1.1 2"));
    let dir = std::env::temp_dir().join(format!("nines-cli-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nines.toml");
    std::fs::write(
        &path,
        format!("[providers.slow]\nkind = \"anthropic\"\nbase_url = \"{sim}\"\nretries = 0\n[routes.chat]\ntargets = [\"slow/m\"]\n"),
    )
    .unwrap();
    let config = path.to_str().unwrap().to_owned();
    let body = r#"{"model":"chat","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#;
    // `n` requests at once to `base`; each one's answer (or "" when its connection failed).
    let burst = |base: &str, n: usize| {
        (0..n)
            .map(|_| {
                let base = base.to_owned();
                std::thread::spawn(move || {
                    std::panic::catch_unwind(|| http(&base, "POST", "/v1/messages", "", body))
                        .unwrap_or_default()
                })
            })
            .collect::<Vec<_>>()
    };
    // Until the simulator has received `n` requests in all: they are then held by the replicas (bounded wait on
    // what can be observed, not a guess).
    let received = |n: u64| {
        for _ in 0..500 {
            let hits = http(&sim, "GET", "/_sim/hits", "", "");
            let total = hits.split("\"total\":").nth(1).and_then(|r| {
                r.split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse::<u64>().ok())
            });
            if total.is_some_and(|t| t >= n) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the simulator never received {n} requests");
    };
    let (a, base_a) = start(&["serve", "--config", &config, "--listen", "127.0.0.1:0"]);
    let (b, base_b) = start(&["serve", "--config", &config, "--listen", "127.0.0.1:0"]);

    // SIGTERM with 12 in flight: all 12 answered.
    let held = burst(&base_a, 12);
    received(12);
    let pid = a.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let answered =
        held.into_iter().map(|t| t.join().unwrap()).filter(|r| r.starts_with("HTTP/1.1 200")).count();
    assert_eq!(answered, 12, "SIGTERM lost {} of 12", 12 - answered);
    drop(a);

    // SIGKILL with 12 in flight on B, while C serves 12 of its own: B's 12 are lost, C's 12 are not.
    let (_c, base_c) = start(&["serve", "--config", &config, "--listen", "127.0.0.1:0"]);
    let held = burst(&base_b, 12);
    let elsewhere = burst(&base_c, 12);
    received(36);
    let pid = b.0.id().to_string();
    assert!(Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    let lost = held.into_iter().map(|t| t.join().unwrap()).filter(|r| !r.starts_with("HTTP/1.1 200")).count();
    let served =
        elsewhere.into_iter().map(|t| t.join().unwrap()).filter(|r| r.starts_with("HTTP/1.1 200")).count();
    eprintln!(
        "SIGTERM: 12 of 12 answered; SIGKILL: {lost} of 12 held lost, the other replica served {served} of 12"
    );
    assert_eq!(lost, 12, "only what it held, and all of it");
    assert_eq!(served, 12);
    let _ = std::fs::remove_dir_all(&dir);
}
