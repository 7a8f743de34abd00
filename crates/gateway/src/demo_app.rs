//! The demo's last act: "Ask your documents" (crates/ask) on the demo's gateway. The four sample documents are
//! uploaded into a notebook, then questions are asked through the app as a reader would, once as things are and once
//! with the provider that answered cutting its stream mid-answer; the report says which page each answer cites and
//! who answered.

use nines_sim::{Fault, FaultKind, Sim};
use serde_json::{Value, json};

use crate::app::App;

/// What the app's act showed.
#[derive(Debug, Default)]
pub struct AppReport {
    pub documents: usize,
    pub pages: usize,
    /// (question, the page cited, the page that says it, who answered, resumed)
    pub answers: Vec<(String, String, String, String, bool)>,
}

/// Upload the samples and ask; `None` when the app cannot run here (no `pdftotext`).
/// The questions asked: (document, page) of the labelled corpus.
const ASKED: [(&str, u32); 2] = [("warranty-handbook.pdf", 5), ("recycling-guide.pdf", 4)];

pub async fn play(base: &str, sims: &[(&str, &Sim)], app: &App) -> Option<AppReport> {
    let ask = app.state.runtime.ask.clone()?;
    if nines_ask::extract::which("pdftotext").is_none() {
        println!(
            "\n  Ask your documents needs pdftotext to read PDFs (Debian: apt-get install poppler-utils)."
        );
        return None;
    }
    let client = reqwest::Client::new();
    let api = |p: &str| format!("{base}/app/api{p}");
    let nb: Value = client
        .post(api("/notebooks"))
        .json(&json!({"name": "Demo documents"}))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let nb = nb["id"].as_str()?.to_owned();
    let mut finished = ask.finished.subscribe();
    let start = *finished.borrow();
    let mut report = AppReport::default();
    let began = tokio::time::Instant::now();
    for (name, pdf, pages) in nines_ask::sample::documents() {
        let r = client
            .post(api(&format!("/notebooks/{nb}/documents")))
            .header("x-filename", name)
            .header("content-type", "application/pdf")
            .body(pdf)
            .send()
            .await
            .ok()?;
        if r.status().is_success() {
            report.documents += 1;
            report.pages += pages;
        }
    }
    let want = start + report.documents as u64;
    finished.wait_for(|n| *n >= want).await.ok()?;
    println!(
        "\n  Ask your documents (http{}/app/): {} sample PDFs, {} pages, indexed in {:.1} s.",
        base.trim_start_matches("http"),
        report.documents,
        report.pages,
        began.elapsed().as_secs_f64()
    );
    let questions = nines_ask::sample::questions();
    let mut cut: Option<&Sim> = None;
    for (doc, page) in ASKED {
        let Some(q) = questions.iter().find(|q| q.document == doc && q.page == page) else { continue };
        if let Some(sim) = cut {
            sim.push_fault(Fault::new(FaultKind::Cut { after: 4 }));
        }
        let text = client
            .post(api(&format!("/notebooks/{nb}/ask")))
            .json(&json!({"question": q.q}))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let events: Vec<(String, Value)> = nines_wire::sse::parse(&text)
            .into_iter()
            .filter_map(|f| Some((f.event, serde_json::from_str(&f.data).ok()?)))
            .collect();
        let find = |name: &str| events.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let (sources, done, route) = (find("sources")?, find("done")?, find("route")?);
        let cited = done["cited"][0].as_u64().and_then(|n| {
            sources["sources"]
                .as_array()?
                .iter()
                .find(|s| s["n"] == n)
                .map(|s| format!("{} p.{}", s["name"].as_str().unwrap_or("?"), s["page"]))
        });
        // The next answer's provider cuts its stream after its first words.
        let who = route["target"].as_str().unwrap_or("").split('/').next().unwrap_or("");
        cut = sims.iter().find(|(name, _)| *name == who).map(|(_, s)| *s);
        report.answers.push((
            q.q.clone(),
            cited.unwrap_or_else(|| "nothing".to_owned()),
            format!("{} p.{}", q.document, q.page),
            route["target"].as_str().unwrap_or("?").to_owned(),
            route["resumed"].as_bool().unwrap_or(false),
        ));
    }
    for (_, sim) in sims {
        sim.reset();
    }
    for (q, cited, expected, who, resumed) in &report.answers {
        println!("    “{q}”");
        let how = if *resumed { format!("{who}, its stream resumed after a cut") } else { who.clone() };
        println!("      cites {cited} (the answer is on {expected}); answered by {how}");
    }
    Some(report)
}
