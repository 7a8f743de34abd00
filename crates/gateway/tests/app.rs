//! "Ask your documents" (crates/ask) end to end, served by the gateway under `/app` and reaching the gateway's own
//! routes over HTTP: a PDF from the labelled corpus uploaded and indexed (real `pdftotext`, the local MiniLM model
//! through the embeddings route), questions answered through the chat route with citations to the right page,
//! through a failover and a stream cut mid-answer; owners kept apart; deletion and upload limits.
//!
//! Skipped without pdftotext or the model's weights, except under NINES_REQUIRE_MODELS=1 (CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../../tests/postgres/server.rs"]
mod server;

use common::{Harness, p};
use nines_sim::FaultKind;
use serde_json::{Value, json};

fn required() -> bool {
    #[allow(clippy::disallowed_methods)]
    std::env::var("NINES_REQUIRE_MODELS").is_ok_and(|v| v == "1")
}

fn minilm() -> Option<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models/all-minilm-l6-v2");
    let ready = dir.join("model.safetensors").exists() && nines_ask::extract::which("pdftotext").is_some();
    assert!(ready || !required(), "needs scripts/fetch-models and pdftotext (poppler-utils)");
    ready.then(|| dir.display().to_string())
}

/// The corpus's document `name` as a PDF.
fn corpus_pdf(name: &str) -> Vec<u8> {
    let corpus: Value = serde_json::from_str(include_str!("../../ask/tests/fixtures/corpus.json")).unwrap();
    let doc = corpus["documents"].as_array().unwrap().iter().find(|d| d["name"] == name).unwrap();
    let pages: Vec<Vec<String>> = serde_json::from_value(doc["pages"].clone()).unwrap();
    nines_ask::pdf::write(&pages)
}

async fn harness() -> Option<Harness> {
    let dir = minilm()?;
    Some(gateway(&dir, "", Default::default()).await)
}

/// A gateway with the app, answering through two simulated providers and embedding with the local MiniLM; `app`
/// adds to its `[app]`.
async fn gateway(model: &str, app: &str, env: nines::config::Env) -> Harness {
    let extra = format!(
        "[providers.minilm]\nkind = \"local-embeddings\"\nmodel_dir = \"{model}\"\n\n\
         [routes.ask]\ntargets = [\"a/m1\", \"b/m2\"]\n\n\
         [routes.embed]\ntargets = [\"minilm/all-minilm-l6-v2\"]\n\n\
         [app]\nenabled = true\n{app}"
    );
    Harness::with(&[p("a", "openai", "m1"), p("b", "anthropic", "m2")], &extra, env).await
}

struct Api<'a> {
    h: &'a Harness,
    key: &'a str,
}

impl Api<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req =
            self.h.client.request(method, format!("{}/app/api{path}", self.h.base)).bearer_auth(self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn upload(&self, nb: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
        let resp = self
            .h
            .client
            .post(format!("{}/app/api/notebooks/{nb}/documents", self.h.base))
            .bearer_auth(self.key)
            .header("content-type", "application/pdf")
            .header("x-filename", name)
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Ask, and read every event of the answer: (name, data) in order.
    async fn ask(&self, nb: &str, question: &str, conversation: Option<&str>) -> Vec<(String, Value)> {
        let resp = self
            .h
            .client
            .post(format!("{}/app/api/notebooks/{nb}/ask", self.h.base))
            .bearer_auth(self.key)
            .json(&json!({"question": question, "conversation": conversation}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        nines_wire::sse::parse(&text)
            .into_iter()
            .map(|f| (f.event, serde_json::from_str(&f.data).unwrap()))
            .collect()
    }
}

fn named<'a>(events: &'a [(String, Value)], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|(n, _)| n == name).map(|(_, v)| v).collect()
}

/// The page of the first source the answer cites.
fn cited_page(events: &[(String, Value)]) -> (String, u64) {
    let sources = &named(events, "sources")[0]["sources"];
    let done = named(events, "done")[0];
    let n = done["cited"][0].as_u64().unwrap_or_else(|| panic!("nothing cited: {done}"));
    let s = sources.as_array().unwrap().iter().find(|s| s["n"] == n).unwrap();
    (s["name"].as_str().unwrap().to_owned(), s["page"].as_u64().unwrap())
}

#[tokio::test]
async fn a_question_is_answered_from_the_right_page_through_failover_and_a_cut_stream() {
    let Some(h) = harness().await else { return };
    let ask = h.app.state.runtime.ask.clone().unwrap();
    let mut finished = ask.finished.subscribe();
    let api = Api { h: &h, key: "reader-one" };

    let page = h.client.get(format!("{}/app/", h.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert!(page.text().await.unwrap().contains("/app/static/app.js"));

    let (status, nb) = api.call(reqwest::Method::POST, "/notebooks", Some(json!({"name": "Home"}))).await;
    assert_eq!(status, 201, "{nb}");
    let nb = nb["id"].as_str().unwrap().to_owned();
    let (status, up) = api.upload(&nb, "warranty-handbook.pdf", corpus_pdf("warranty-handbook.pdf")).await;
    assert_eq!(status, 202, "{up}");
    let doc = up["document"]["id"].as_str().unwrap().to_owned();
    finished.wait_for(|n| *n >= 1).await.unwrap();
    let (_, d) = api.call(reqwest::Method::GET, &format!("/documents/{doc}"), None).await;
    assert_eq!(d["status"], "ready", "{d}");
    assert_eq!(d["pages"], 8);
    assert!(d["chunks"].as_u64().unwrap() >= 8, "{d}");
    assert_eq!(d["notice"], Value::Null, "{d}");

    // Healthy: the answer cites the page that says it.
    let q = "How many days do I have to send back an unused appliance I no longer want?";
    let events = api.ask(&nb, q, None).await;
    assert_eq!(cited_page(&events), ("warranty-handbook.pdf".to_owned(), 5), "{events:#?}");
    let route = named(&events, "route")[0];
    assert_eq!(route["target"], "a/m1");
    assert_eq!(route["failed_over"], false);
    let done = named(&events, "done")[0];
    assert!(done["answer"].as_str().unwrap().contains("30 days"), "{done}");
    assert_eq!(done["unsupported"], false);
    let conversation = named(&events, "sources")[0]["conversation"].as_str().unwrap().to_owned();

    // The first provider down: the second answers, and the page is told.
    h.fault(0, FaultKind::Status { status: 503, retry_after: None }, 1);
    let q = "How many years are spare parts stocked after the last unit of a model is made?";
    let events = api.ask(&nb, q, Some(&conversation)).await;
    assert_eq!(cited_page(&events), ("warranty-handbook.pdf".to_owned(), 7), "{events:#?}");
    let route = named(&events, "route")[0];
    assert_eq!(route["target"], "b/m2");
    assert_eq!(route["failed_over"], true);
    assert!(named(&events, "done")[0]["answer"].as_str().unwrap().contains("10 years"));

    // A stream cut after its first words: resumed on the other provider, the answer whole.
    h.fault(0, FaultKind::Cut { after: 4 }, 1);
    let q = "How many days do I have to send back an unused appliance I no longer want?";
    let events = api.ask(&nb, q, Some(&conversation)).await;
    let resumed = named(&events, "resumed");
    assert_eq!(resumed.len(), 1, "{events:#?}");
    assert_eq!(resumed[0]["to"], "b/m2");
    let done = named(&events, "done")[0];
    let text: String = named(&events, "delta").iter().map(|d| d["text"].as_str().unwrap()).collect();
    assert_eq!(done["answer"], text);
    assert!(text.contains("30 days"), "{text}");
    assert_eq!(cited_page(&events).1, 5);
    assert_eq!(named(&events, "route").last().unwrap()["resumed"], true);

    // The conversation kept its three turns, for its owner only.
    let (status, c) = api.call(reqwest::Method::GET, &format!("/conversations/{conversation}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(c["turns"].as_array().unwrap().len(), 3);
    // The follow-up was sent with the turns before it.
    let sent = h.sims[1].last_request("/v1/messages").unwrap();
    assert!(sent["messages"].as_array().unwrap().len() >= 3, "{sent}");

    // What the documents do not say.
    let events =
        api.ask(&nb, "What is the annual energy consumption of the R500 in kilowatt hours?", None).await;
    let done = named(&events, "done")[0];
    assert_eq!(done["unsupported"], true, "{done}");
    assert!(done["answer"].as_str().unwrap().contains("The documents do not say"));
}

#[tokio::test]
async fn owners_are_kept_apart_and_a_deleted_document_leaves_nothing() {
    let Some(h) = harness().await else { return };
    let ask = h.app.state.runtime.ask.clone().unwrap();
    let mut finished = ask.finished.subscribe();
    let alice = Api { h: &h, key: "alice-key" };
    let bob = Api { h: &h, key: "bob-key" };
    let (_, nb) = alice.call(reqwest::Method::POST, "/notebooks", Some(json!({"name": "A"}))).await;
    let nb = nb["id"].as_str().unwrap().to_owned();
    let (_, up) = alice.upload(&nb, "recycling-guide.pdf", corpus_pdf("recycling-guide.pdf")).await;
    let doc = up["document"]["id"].as_str().unwrap().to_owned();
    finished.wait_for(|n| *n >= 1).await.unwrap();

    // Bob sees none of it.
    let (_, list) = bob.call(reqwest::Method::GET, "/notebooks", None).await;
    assert_eq!(list["notebooks"], json!([]));
    for path in
        [format!("/documents/{doc}"), format!("/documents/{doc}/pdf"), format!("/notebooks/{nb}/documents")]
    {
        let (status, body) = bob.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, _) = bob
        .call(reqwest::Method::POST, &format!("/notebooks/{nb}/ask"), Some(json!({"question": "x"})))
        .await;
    assert_eq!(status, 404);
    let (status, _) = bob.call(reqwest::Method::DELETE, &format!("/documents/{doc}"), None).await;
    assert_eq!(status, 404);
    let pdf = h
        .client
        .get(format!("{}/app/api/documents/{doc}/pdf", h.base))
        .bearer_auth("alice-key")
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));

    // A body must say what it is (a cross-site form cannot send JSON or a PDF without the browser asking first).
    let r = h
        .client
        .post(format!("{}/app/api/notebooks", h.base))
        .bearer_auth("alice-key")
        .header("content-type", "text/plain")
        .body(r#"{"name": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(r.headers()["cache-control"], "no-store");

    // Upload limits: not a PDF, too large.
    let (status, e) = alice.upload(&nb, "x.txt", b"hello".to_vec()).await;
    assert_eq!(status, 415, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("not a PDF"));
    let (status, e) = alice.upload(&nb, "big.pdf", vec![b'%'; (32 << 20) + 10]).await;
    assert_eq!(status, 413, "{e}");

    // Deleted: its text, chunks and vectors are gone, and a question finds nothing of it.
    let (status, _) = alice.call(reqwest::Method::DELETE, &format!("/documents/{doc}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = alice.call(reqwest::Method::GET, &format!("/documents/{doc}"), None).await;
    assert_eq!(status, 404);
    let (status, _) = alice.call(reqwest::Method::GET, &format!("/documents/{doc}/pdf"), None).await;
    assert_eq!(status, 404);
    assert!(ask.store.vector_models(&nb).await.unwrap().is_empty());
    assert!(ask.store.keywords(&nb, "recycling cart glass", 10).await.unwrap().is_empty());
    let events = alice.ask(&nb, "Which day is the blue cart collected?", None).await;
    assert_eq!(named(&events, "sources")[0]["sources"], json!([]));
    assert_eq!(named(&events, "done")[0]["unsupported"], true);
}

/// The app's replicas on one Postgres (pgvector; tests/postgres): a document uploaded to one is indexed there and
/// answered from by the other, a conversation goes on across them, a delete on one is seen by the other, and
/// another key sees nothing on either.
#[tokio::test]
async fn two_replicas_on_one_postgres_serve_the_same_notebooks() {
    let Some(model) = minilm() else { return };
    let Some(pg) = server::Postgres::start() else { return };
    let env = || nines::config::Env::from_pairs([("NINES_TEST_APP_POSTGRES", pg.url.clone())]);
    let app = "postgres_url_env = \"NINES_TEST_APP_POSTGRES\"\n";
    let (one, two) = (gateway(&model, app, env()).await, gateway(&model, app, env()).await);
    let mut indexed = one.app.state.runtime.ask.clone().unwrap().finished.subscribe();
    let (on_one, on_two) = (Api { h: &one, key: "reader" }, Api { h: &two, key: "reader" });

    let (status, nb) =
        on_one.call(reqwest::Method::POST, "/notebooks", Some(json!({"name": "Shared"}))).await;
    assert_eq!(status, 201, "{nb}");
    let nb = nb["id"].as_str().unwrap().to_owned();
    let (status, up) = on_one.upload(&nb, "warranty-handbook.pdf", corpus_pdf("warranty-handbook.pdf")).await;
    assert_eq!(status, 202, "{up}");
    let doc = up["document"]["id"].as_str().unwrap().to_owned();
    indexed.wait_for(|n| *n >= 1).await.unwrap();

    // The other replica lists it, serves its PDF and answers from it.
    let (_, list) = on_two.call(reqwest::Method::GET, &format!("/notebooks/{nb}/documents"), None).await;
    assert_eq!(list["documents"][0]["status"], "ready", "{list}");
    let pdf = two
        .client
        .get(format!("{}/app/api/documents/{doc}/pdf", two.base))
        .bearer_auth("reader")
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.bytes().await.unwrap(), corpus_pdf("warranty-handbook.pdf"));
    let q = "How many days do I have to send back an unused appliance I no longer want?";
    let events = on_two.ask(&nb, q, None).await;
    assert_eq!(cited_page(&events), ("warranty-handbook.pdf".to_owned(), 5), "{events:#?}");
    let conversation = named(&events, "sources")[0]["conversation"].as_str().unwrap().to_owned();
    // The conversation goes on through the first replica.
    let q = "How many years are spare parts stocked after the last unit of a model is made?";
    let events = on_one.ask(&nb, q, Some(&conversation)).await;
    assert_eq!(cited_page(&events).1, 7, "{events:#?}");
    let (_, c) = on_two.call(reqwest::Method::GET, &format!("/conversations/{conversation}"), None).await;
    assert_eq!(c["turns"].as_array().unwrap().len(), 2, "{c}");

    // An id that is not one of ours never reaches the database (Postgres would refuse a NUL: a 500, not a 404).
    for path in ["/documents/doc%00x", "/notebooks/nb%00/documents", "/conversations/c%27%3B--"] {
        let (status, body) = on_two.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }

    // Another key sees nothing on either replica.
    for h in [&one, &two] {
        let (status, _) = Api { h, key: "someone-else" }
            .call(reqwest::Method::GET, &format!("/documents/{doc}"), None)
            .await;
        assert_eq!(status, 404);
    }

    // Deleted on the second: gone on the first, and nothing of it is a source any more.
    let (status, _) = on_two.call(reqwest::Method::DELETE, &format!("/documents/{doc}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = on_one.call(reqwest::Method::GET, &format!("/documents/{doc}/pdf"), None).await;
    assert_eq!(status, 404);
    let events = on_one.ask(&nb, "How many days do I have to send back an unused appliance?", None).await;
    assert_eq!(named(&events, "sources")[0]["sources"], json!([]));
}
