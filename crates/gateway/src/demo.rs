//! `nines demo`: three simulated providers (Anthropic, OpenAI and Gemini formats), the gateway in front of them with
//! one route over all three, and outages of the first provider played while traffic flows: an overload that opens
//! its breaker (after which it receives nothing until one trial finds it recovered), a silent provider that costs
//! one request its timeout, not every request, and streams cut mid-answer that another provider completes. It
//! prints who served what and how often the failing provider was asked, then (unless `--once`) stays up for you to
//! try.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use nines_sim::{Fault, FaultKind, Sim, SimOptions};
use serde_json::json;
use tokio::net::TcpListener;

use crate::App;
use crate::config::{self, Env};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start: {0}")]
    Io(#[from] std::io::Error),
    #[error("demo configuration is invalid: {0}")]
    Config(#[from] config::ConfigErrors),
    #[error(transparent)]
    Build(#[from] crate::app::SnapshotError),
    #[error("demo client: {0}")]
    Client(#[from] reqwest::Error),
}

/// What the outage looked like from the client's side.
#[derive(Debug, Default)]
pub struct DemoReport {
    pub sent: usize,
    pub succeeded: usize,
    /// `x-nines-target` → how many answers it served.
    pub served_by: BTreeMap<String, usize>,
    /// Answers that needed more than one attempt: outages the client never saw.
    pub saved: usize,
    /// Requests sent to the failing provider while it was overloaded, and while it was silent.
    pub overloaded_hits: u64,
    pub silent_hits: u64,
    /// Streams cut mid-answer that another provider completed, and the cuts.
    pub rescued: usize,
    pub cut_hits: u64,
    pub spike: Option<SpikeReport>,
    pub app: Option<crate::demo_app::AppReport>,
}

/// The spike scene: default-priority and batch clients at ten times what a provider serves.
#[derive(Debug, Default)]
pub struct SpikeReport {
    pub alone_ms: u64,
    pub default_ms: u64,
    pub default_served: usize,
    pub batch_served: usize,
    pub shed: usize,
    pub shed_ms: f64,
    /// The most requests the provider had at once.
    pub peak: usize,
}

/// 40 clients for 1.5 s against route `spike`, whose provider serves 4 at once in 100 ms: 3 at default priority,
/// 37 at batch (`x-nines-priority: batch`, which any client may ask for its own requests).
async fn spike(base: &str, sim: &Sim) -> SpikeReport {
    use std::time::Duration;
    use tokio::time::Instant;
    sim.reset();
    sim.set_capacity(Some(nines_sim::Capacity { concurrent: 4, latency_ms: 100 }));
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");
    let body = json!({"model": "spike", "messages": [{"role": "user", "content": "hello"}]});
    let call = move |priority: &'static str| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move {
            let t0 = Instant::now();
            let r = client.post(url).header("x-nines-priority", priority).json(&body).send().await;
            let ok = r.as_ref().is_ok_and(|r| r.status().is_success());
            if let Ok(r) = r {
                let _ = r.bytes().await;
            }
            (ok, t0.elapsed())
        }
    };
    let median = |mut v: Vec<Duration>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let mut alone = Vec::new();
    for _ in 0..3 {
        alone.push(call("default").await.1);
    }
    let until = Instant::now() + Duration::from_millis(1500);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let call = call.clone();
        let priority = if i < 3 { "default" } else { "batch" };
        tasks.spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < until {
                let (ok, took) = call(priority).await;
                if !ok {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                out.push((priority, ok, took));
            }
            out
        });
    }
    let (mut default, mut shed, mut r) = (Vec::new(), Vec::new(), SpikeReport::default());
    while let Some(Ok(out)) = tasks.join_next().await {
        for (priority, ok, took) in out {
            match (priority, ok) {
                ("default", true) => default.push(took),
                (_, true) => r.batch_served += 1,
                _ => shed.push(took),
            }
        }
    }
    r.alone_ms = median(alone).as_millis() as u64;
    r.default_served = default.len();
    r.default_ms = median(default).as_millis() as u64;
    r.shed = shed.len();
    r.shed_ms = median(shed).as_secs_f64() * 1000.0;
    r.peak = sim.peak_concurrency();
    sim.set_capacity(None);
    r
}

const ROUTE: &str = "demo";
/// The slow start after a recovery, in the demo (seconds).
const RAMP_SECS: u64 = 2;

struct Phase {
    title: &'static str,
    fault: Option<FaultKind>,
    /// Wait for the anthropic breaker's cooldown first.
    after_cooldown: bool,
    /// Wait until anthropic has its whole share of traffic back first (the slow start after a recovery).
    after_ramp: bool,
    /// Streaming requests only.
    streams: bool,
}

/// Where `scripts/fetch-models` puts the local embedding model (relative to the working directory).
const MINILM: &str = ".cache/models/all-minilm-l6-v2";

pub async fn run(listen: SocketAddr, once: bool) -> Result<DemoReport, DemoError> {
    let mut sims = Vec::new();
    for name in ["anthropic-sim", "openai-sim", "gemini-sim"] {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        sims.push(Sim::start(l, SimOptions::new(name)).await?);
    }
    let toml = format!(
        r#"
[providers.anthropic]
kind = "anthropic"
base_url = "{a}"
timeouts = {{ first_byte = "2s" }}

[health]
cooldown = "2s"
ramp = "{RAMP_SECS}s"

[status]
public = true

# The demo's phases are a few requests each: an incident closes at the first success after the breaker closed.
[status.incidents]
recover_after = 1

[providers.openai]
kind = "openai"
base_url = "{o}/v1"
max_concurrency = 4

[providers.gemini]
kind = "gemini"
base_url = "{g}"

[routes.{ROUTE}]
targets = ["anthropic/claude-sonnet-4-5", "openai/gpt-4.1", "gemini/gemini-2.5-flash"]

[routes.spike]
targets = ["openai/gpt-4.1"]

# Ask your documents, at /app/: answers through its own route (anthropic's breaker is whatever the outages above
# left it); passages embedded by the local model when its weights are there (scripts/fetch-models; the simulators'
# embeddings are hashes, not meanings), else by a simulator.
[routes.ask]
targets = ["openai/gpt-4.1", "gemini/gemini-2.5-flash"]

[app]
enabled = true
{embed}
"#,
        embed = match std::path::Path::new(MINILM).join("model.safetensors").is_file() {
            true => format!(
                "[providers.minilm]\nkind = \"local-embeddings\"\nmodel_dir = \"{}\"\n\n[routes.embed]\n\
                 targets = [\"minilm/all-minilm-l6-v2\", \"openai/text-embedding-3-small\"]\n",
                MINILM
            ),
            false => "[routes.embed]\ntargets = [\"openai/text-embedding-3-small\"]\n".to_owned(),
        },
        a = sims[0].base_url(),
        o = sims[1].base_url(),
        g = sims[2].base_url(),
    );
    let config = config::parse_and_validate(&toml)?;
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(_) => TcpListener::bind("127.0.0.1:0").await?,
    };
    let addr = listener.local_addr()?;
    let app = App::build(config, &Env::default())?;
    app.spawn(listener);

    println!("nines demo: three simulated providers and the gateway on http://{addr}\n");
    for (sim, kind) in sims.iter().zip(["anthropic", "openai", "gemini"]) {
        println!("  simulated {kind:<9} provider  {}", sim.base_url());
    }
    println!("\n  OpenAI SDK:     base_url=\"http://{addr}/v1\"   model=\"{ROUTE}\"");
    println!("  Anthropic SDK:  base_url=\"http://{addr}\"      model=\"{ROUTE}\"");
    println!(
        "  try:  curl -s http://{addr}/v1/chat/completions -H 'content-type: application/json' \\\n          -d '{{\"model\":\"{ROUTE}\",\"messages\":[{{\"role\":\"user\",\"content\":\"hello\"}}]}}'\n"
    );

    let phases = [
        Phase {
            title: "all providers healthy",
            fault: None,
            after_cooldown: false,
            after_ramp: false,
            streams: false,
        },
        Phase {
            title: "anthropic silent (never answers)",
            fault: Some(FaultKind::Hang),
            after_cooldown: false,
            after_ramp: false,
            streams: false,
        },
        Phase {
            title: "anthropic recovered (one trial, then a ramp)",
            fault: None,
            after_cooldown: true,
            after_ramp: false,
            streams: false,
        },
        Phase {
            title: "anthropic overloaded (529 on every request)",
            fault: Some(FaultKind::Status { status: 529, retry_after: None }),
            after_cooldown: false,
            after_ramp: true,
            streams: false,
        },
        Phase {
            title: "anthropic back (one trial, then a ramp)",
            fault: None,
            after_cooldown: true,
            after_ramp: false,
            streams: false,
        },
        Phase {
            title: "anthropic cuts its streams mid-answer",
            fault: Some(FaultKind::Cut { after: 4 }),
            after_cooldown: false,
            after_ramp: true,
            streams: true,
        },
    ];
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let mut report = DemoReport::default();
    let health = app.state.runtime.health.clone();
    let anthropic = crate::health::TargetId::new("anthropic", "claude-sonnet-4-5");
    let first_byte = std::time::Duration::from_secs(2);
    let health_cfg = app.state.snapshot().config.health.clone();
    let breaker =
        move || health.target(&anthropic).report(tokio::time::Instant::now(), &health_cfg, first_byte);
    println!("  {:<44} {:>5} {:>10}  {:<10} served by", "phase", "ok", "anthropic", "breaker");
    for phase in phases {
        sims[0].reset();
        if phase.after_cooldown
            && let Some(until) = breaker().until
        {
            println!(
                "  … waiting {:.1} s for the anthropic breaker's cooldown",
                until.saturating_duration_since(tokio::time::Instant::now()).as_secs_f64()
            );
            tokio::time::sleep_until(until).await;
        }
        if phase.after_ramp {
            println!("  … waiting {RAMP_SECS} s for anthropic's share of traffic to ramp back up");
            tokio::time::sleep(std::time::Duration::from_secs(RAMP_SECS)).await;
        }
        if let Some(kind) = &phase.fault {
            sims[0].push_fault(Fault::new(kind.clone()).forever());
        }
        let mut ok = 0;
        let mut by: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..8 {
            let (path, body) = demo_request(if phase.streams { i / 2 * 4 + 2 + i % 2 } else { i });
            report.sent += 1;
            let resp = client.post(format!("{base}{path}")).json(&body).send().await?;
            let status = resp.status();
            let target = header(&resp, "x-nines-target");
            let attempts: usize = header(&resp, "x-nines-attempts").parse().unwrap_or(0);
            let text = resp.text().await?;
            let complete = !body["stream"].as_bool().unwrap_or(false)
                || text.contains("[DONE]")
                || text.contains("message_stop");
            if status.is_success() && complete {
                ok += 1;
                report.succeeded += 1;
                if attempts > 1 {
                    report.saved += 1;
                }
                // The mark of a resumed stream, an SSE comment no client shows: `from A on B`.
                let mut who = short(&target).to_owned();
                if let Some((_, rest)) = text.split_once(": nines resumed the answer from ") {
                    report.rescued += 1;
                    let on = rest.lines().next().and_then(|l| l.split_once(" on ")).map(|(_, b)| short(b));
                    who = format!("{who}→{}", on.unwrap_or("?"));
                }
                *by.entry(who).or_default() += 1;
                *report.served_by.entry(target).or_default() += 1;
            }
        }
        let hits = sims[0].total_hits();
        match phase.fault {
            Some(FaultKind::Hang) => report.silent_hits = hits,
            Some(FaultKind::Cut { .. }) => report.cut_hits = hits,
            Some(_) => report.overloaded_hits = hits,
            None => {}
        }
        let who: Vec<String> = by.iter().map(|(t, n)| format!("{t} ×{n}")).collect();
        let state = breaker().state;
        println!("  {:<44} {ok:>3}/8 {hits:>8}×  {state:<10} {}", phase.title, who.join(", "));
    }
    sims[0].reset();
    println!(
        "\n  {}/{} requests succeeded; {} were saved by failing over or retrying.\n  While overloaded, anthropic \
         was asked {} times before its breaker opened; while silent, {} time(s):\n  one request paid the 2 s \
         timeout, not every request.\n  While it cut its streams after their first words, {} of them were \
         completed by another provider\n  in the same answer (anthropic→openai: no error, no repeated text); then \
         its breaker opened.",
        report.succeeded,
        report.sent,
        report.saved,
        report.overloaded_hits,
        report.silent_hits,
        report.rescued,
    );
    match crate::record::status::report(&app.state).await {
        Ok(status) => {
            println!("\n  What nines saw (http://{addr}/status, or `nines status --url http://{addr}`):");
            println!("    {}", status.headline);
            for i in status.incidents.iter().rev() {
                let kinds: Vec<String> = i.kinds.iter().map(|(k, c)| format!("{k} ×{}", c.count)).collect();
                println!(
                    "    incident {}: {}; blast radius {}; {} of {} requests saved",
                    short(&i.target),
                    kinds.join(", "),
                    i.blast_radius.scope,
                    i.requests.saved,
                    i.requests.affected
                );
            }
        }
        Err(e) => println!("\n  (the status report failed: {e})"),
    }
    let spike = spike(&base, &sims[1]).await;
    println!(
        "\n  A spike: 40 clients at once for 1.5 s on a route whose provider serves 4 at a time (10x):\n    \
         the 3 default-priority clients were served in {} ms (median; {} ms unloaded), {} answers;\n    \
         batch requests were served when there was room ({}) and otherwise shed in {:.1} ms with Retry-After ({});\n    \
         the provider never had more than {} at once.",
        spike.default_ms,
        spike.alone_ms,
        spike.default_served,
        spike.batch_served,
        spike.shed_ms,
        spike.shed,
        spike.peak
    );
    report.spike = Some(spike);
    let named = [("anthropic", &sims[0]), ("openai", &sims[1]), ("gemini", &sims[2])];
    report.app = crate::demo_app::play(&base, &named, &app).await;
    if !once {
        println!("\nThe gateway stays up on http://{addr}; press Ctrl-C to stop.");
        let _ = tokio::signal::ctrl_c().await;
    }
    app.shutdown().await;
    for sim in sims {
        sim.shutdown().await;
    }
    Ok(report)
}

/// `anthropic/claude-sonnet-4-5` → `anthropic`.
fn short(target: &str) -> &str {
    target.split('/').next().unwrap_or(target)
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned()
}

/// Alternate the two front doors, plain and streaming.
fn demo_request(i: usize) -> (&'static str, serde_json::Value) {
    let stream = i % 4 >= 2;
    if i.is_multiple_of(2) {
        let body = json!({"model": ROUTE, "stream": stream,
                          "messages": [{"role": "user", "content": format!("hello number {i}")}]});
        ("/v1/chat/completions", body)
    } else {
        let body = json!({"model": ROUTE, "max_tokens": 64, "stream": stream,
                          "messages": [{"role": "user", "content": format!("hello number {i}")}]});
        ("/v1/messages", body)
    }
}
