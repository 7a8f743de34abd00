//! Retrieval quality on the labelled fixture corpus (tests/fixtures/corpus.json: 4 documents, 30 pages, 40
//! questions with the page that answers each): every document made into a real PDF, read back by `pdftotext`,
//! chunked, indexed by BM25 and embedded by the local all-MiniLM-L6-v2; recall@5 (the answering page among the
//! pages of the 5 chunks retrieved) must be at least 0.9 for the fused ranking. Prints each ranking's figures:
//!
//!   cargo test -p nines-ask --test retrieval -- --nocapture
//!
//! Skipped without pdftotext or the model's weights, except under NINES_REQUIRE_MODELS=1 (CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use nines_ask::sample::Question;
use nines_ask::store::{Store, embedded::Embedded};
use nines_ask::{chunk, extract, retrieve, sample};

#[path = "../../../tests/postgres/server.rs"]
mod server;

fn required() -> bool {
    #[allow(clippy::disallowed_methods)]
    std::env::var("NINES_REQUIRE_MODELS").is_ok_and(|v| v == "1")
}

fn model_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models/all-minilm-l6-v2");
    if dir.join("model.safetensors").exists() {
        return Some(dir);
    }
    assert!(!required(), "{} has no model: run scripts/fetch-models", dir.display());
    None
}

/// Recall@5 of the fused ranking, on `store`; prints each ranking's figures.
async fn recall(store: &dyn Store, model: &nines_embed::Embedder) -> f64 {
    let tools = extract::Tools::find();
    let questions = sample::questions();
    let nb = store.create_notebook("t", "corpus", 100).await.unwrap().unwrap();
    let tmp =
        std::env::temp_dir().join(format!("nines-ask-retrieval-{}-{}", std::process::id(), store.kind()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut names = std::collections::HashMap::new();
    for (name, pdf, pages) in sample::documents() {
        let path = tmp.join(&name);
        std::fs::write(&path, &pdf).unwrap();
        let got = extract::extract(&path, &tools, &extract::Limits::default()).await.unwrap();
        assert_eq!(got.pages.len(), pages, "{name}: pages");
        assert!(got.notices.is_empty(), "{:?}", got.notices);
        for q in questions.iter().filter(|q| q.document == name) {
            let text = &got.pages[q.page as usize - 1].text;
            assert!(text.contains(&q.quote), "{name} page {}: {:?} not in\n{text}", q.page, q.quote);
        }
        let chunks = chunk::chunk(&got.pages);
        let doc = store.create_document("t", &nb.id, &name, &pdf, 50).await.unwrap().unwrap();
        names.insert(doc.id.clone(), name.clone());
        let texts: Vec<String> = chunks.iter().map(chunk::Chunk::indexed).collect();
        let ids = store.add_chunks(&doc.id, &nb.id, &chunks, &texts).await.unwrap();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = model.embed(&refs).unwrap();
        store.add_vectors("minilm", &ids.iter().copied().zip(vectors).collect::<Vec<_>>()).await.unwrap();
        store.finish_document(&doc.id, None, None).await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let (mut fused5, mut fused1, mut kw5, mut vec5) = (0, 0, 0, 0);
    let hit = async |ids: &[i64], q: &Question, k: usize| {
        store
            .chunks(&nb.id, &ids[..ids.len().min(k)])
            .await
            .unwrap()
            .iter()
            .any(|c| names[&c.document] == q.document && c.page == q.page)
    };
    for q in &questions {
        let keywords = store.keywords(&nb.id, &q.q, retrieve::DEPTH).await.unwrap();
        let qv = model.embed(&[q.q.as_str()]).unwrap().remove(0);
        let near = store.nearest(&nb.id, "minilm", &qv, retrieve::DEPTH).await.unwrap();
        let fused = retrieve::fuse(&[&keywords, &near]);
        let found = hit(&fused, q, 5).await;
        fused5 += usize::from(found);
        fused1 += usize::from(hit(&fused, q, 1).await);
        kw5 += usize::from(hit(&keywords, q, 5).await);
        vec5 += usize::from(hit(&near, q, 5).await);
        if !found {
            println!("{}: missed: {} ({} p.{})", store.kind(), q.q, q.document, q.page);
        }
    }
    let n = questions.len() as f64;
    println!(
        "{}: {} questions: recall@5 fused {:.3}, recall@1 fused {:.3}; recall@5 BM25 alone {:.3}, vectors alone {:.3}",
        store.kind(),
        questions.len(),
        fused5 as f64 / n,
        fused1 as f64 / n,
        kw5 as f64 / n,
        vec5 as f64 / n,
    );
    fused5 as f64 / n
}

fn ready() -> Option<nines_embed::Embedder> {
    let dir = model_dir()?;
    if extract::which("pdftotext").is_none() {
        assert!(!required(), "pdftotext is missing (apt-get install poppler-utils)");
        return None;
    }
    Some(nines_embed::Embedder::load(&dir).unwrap())
}

#[tokio::test]
async fn hybrid_retrieval_finds_the_answering_page_for_nine_questions_in_ten() {
    let Some(model) = ready() else { return };
    let store = Embedded::open(None).unwrap();
    let r = recall(&store, &model).await;
    assert!(r >= 0.9, "recall@5 {r}");
}

/// The same corpus and questions on Postgres: BM25 computed in SQL over the term table (the same analyzer), vectors
/// ranked by pgvector.
#[tokio::test]
async fn on_postgres_too() {
    let Some(model) = ready() else { return };
    let Some(pg) = server::Postgres::start() else { return };
    let store = nines_ask::store::postgres::Postgres::new(&pg.url).unwrap();
    let r = recall(&store, &model).await;
    assert!(r >= 0.9, "recall@5 {r}");
}
