//! Providers over TLS, as hosted ones are reached: the simulator serves HTTPS with a self-signed certificate made at
//! start-up, nines trusts it through the provider's `tls_ca`, speaks HTTP/2 to it (ALPN) and carries many requests
//! over one connection; without that CA the certificate is refused and nothing reaches the provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is its job

use nines::App;
use nines::config::{self, Env};
use nines_sim::{Fault, FaultKind, Sim, SimOptions};
use serde_json::json;
use tokio::net::TcpListener;

async fn https_sim() -> Sim {
    Sim::start(TcpListener::bind("127.0.0.1:0").await.unwrap(), SimOptions::new("secure").with_tls())
        .await
        .unwrap()
}

/// A private directory for this test's files.
fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("nines-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn gateway(toml: &str) -> (App, String) {
    let config = config::parse_and_validate(toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let app = App::build(config, &Env::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    app.spawn(listener);
    (app, base)
}

fn provider(sim: &Sim, tls_ca: Option<&std::path::Path>) -> String {
    let ca = tls_ca.map(|p| format!("tls_ca = \"{}\"\n", p.display())).unwrap_or_default();
    format!(
        "[providers.secure]\nkind = \"openai\"\nbase_url = \"{}/v1\"\n{ca}\n[providers.secure.timeouts]\n\
         connect = \"2s\"\nfirst_byte = \"5s\"\n\n[routes.chat]\ntargets = [\"secure/m\"]\n",
        sim.base_url()
    )
}

fn chat(stream: bool) -> serde_json::Value {
    json!({"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test]
async fn an_https_provider_trusted_by_its_ca_is_reached_over_http2() {
    let sim = https_sim().await;
    assert!(sim.base_url().starts_with("https://127.0.0.1:"), "{}", sim.base_url());
    let d = dir("ok");
    let ca = d.join("sim.pem");
    std::fs::write(&ca, sim.cert_pem().unwrap()).unwrap();
    let (_app, base) = gateway(&provider(&sim, Some(&ca))).await;
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");

    let r = client.post(&url).json(&chat(false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.starts_with("secure says:"), "{body}");

    let r = client.post(&url).json(&chat(true)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let sse = r.text().await.unwrap();
    assert!(sse.contains("secure says:") || sse.contains(" says:"), "{sse}");
    assert!(sse.trim_end().ends_with("data: [DONE]"), "{sse}");

    // Eight requests at once, each held 200 ms by the provider: over HTTP/2 they share the one connection already
    // open (over HTTP/1.1 the pool would hold eight).
    for _ in 0..8 {
        sim.push_fault(Fault::new(FaultKind::Delay { ms: 200 }));
    }
    let all = (0..8).map(|i| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let stream = i % 2 == 0;
            let r = client.post(&url).json(&chat(stream)).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    });
    let answers = futures_util::future::join_all(all).await;
    assert!(answers.iter().all(|a| a.contains(" says:")), "{answers:?}");
    assert!(sim.peak_concurrency() >= 2, "the requests did not overlap: {}", sim.peak_concurrency());
    assert_eq!(sim.open_connections(), 1, "one HTTP/2 connection carries them all");
    std::fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn without_its_ca_a_self_signed_provider_is_refused() {
    let sim = https_sim().await;
    refused(&sim, None).await;

    // Another CA (a second simulator's certificate) is no better.
    let other = https_sim().await;
    let d = dir("other");
    let ca = d.join("other.pem");
    std::fs::write(&ca, other.cert_pem().unwrap()).unwrap();
    refused(&sim, Some(&ca)).await;
    std::fs::remove_dir_all(d).unwrap();
}

/// A gateway whose provider is `sim`, trusted through `tls_ca` (or the platform's roots): the request fails, and
/// none reaches the provider.
async fn refused(sim: &Sim, tls_ca: Option<&std::path::Path>) {
    let (_app, base) = gateway(&provider(sim, tls_ca)).await;
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!([502, 503].contains(&status), "{status}: {text}");
    assert_eq!(sim.total_hits(), 0, "a request reached a provider whose certificate is not trusted");
}

#[tokio::test]
async fn a_tls_ca_that_cannot_be_used_stops_the_start_with_its_reason() {
    let sim = https_sim().await;
    let d = dir("bad");
    let missing = d.join("missing.pem");
    let empty = d.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for (path, reason) in [(&missing, "missing.pem"), (&empty, "no certificate in it")] {
        let toml = provider(&sim, Some(path));
        let config = config::parse_and_validate(&toml).unwrap();
        let err = App::build(config, &Env::default()).err().expect("built with an unusable tls_ca");
        let chain = error_chain(&err);
        assert!(chain.contains("tls_ca") && chain.contains(reason), "{chain}");
    }
    // And on a plain http:// provider it is a configuration error.
    let toml = "[providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\ntls_ca = \"/x.pem\"\n\
                [routes.chat]\ntargets = [\"p/m\"]\n";
    let Err(err) = config::parse_and_validate(toml) else { panic!("tls_ca on http:// accepted") };
    let err = err.to_string();
    assert!(err.contains("providers.p.tls_ca: is set, but base_url is not https://"), "{err}");
    std::fs::remove_dir_all(d).unwrap();
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// A reload reads the `tls_ca` file again: a rotated CA file at the same path takes effect without a restart.
#[tokio::test]
async fn a_reload_reads_the_tls_ca_file_again() {
    let sim = https_sim().await;
    let other = https_sim().await;
    let d = dir("rotate");
    let ca = d.join("ca.pem");
    std::fs::write(&ca, other.cert_pem().unwrap()).unwrap();
    let toml = provider(&sim, Some(&ca));
    let file = d.join("nines.toml");
    std::fs::write(&file, &toml).unwrap();
    let (app, base) = gateway(&toml).await;
    app.state.set_source(file);
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");
    let r = client.post(&url).json(&chat(false)).send().await.unwrap();
    assert!([502, 503].contains(&r.status().as_u16()), "{}", r.status());

    std::fs::write(&ca, sim.cert_pem().unwrap()).unwrap();
    app.state.reload().await.unwrap();
    let r = client.post(&url).json(&chat(false)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    std::fs::remove_dir_all(d).unwrap();
}
