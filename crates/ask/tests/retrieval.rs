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

use nines_ask::{bm25, chunk, extract, pdf, retrieve, store};
use serde::Deserialize;

#[derive(Deserialize)]
struct Corpus {
    documents: Vec<Doc>,
    questions: Vec<Question>,
}

#[derive(Deserialize)]
struct Doc {
    name: String,
    pages: Vec<Vec<String>>,
}

#[derive(Deserialize)]
struct Question {
    q: String,
    document: String,
    page: u32,
    quote: String,
}

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

#[tokio::test]
async fn hybrid_retrieval_finds_the_answering_page_for_nine_questions_in_ten() {
    let Some(dir) = model_dir() else { return };
    let tools = extract::Tools::find();
    if extract::which("pdftotext").is_none() {
        assert!(!required(), "pdftotext is missing (apt-get install poppler-utils)");
        return;
    }
    let corpus: Corpus =
        serde_json::from_str(include_str!("fixtures/corpus.json")).expect("the corpus parses");
    let model = nines_embed::Embedder::load(&dir).unwrap();
    let store = store::Store::open(None).unwrap();
    let index = bm25::Bm25::open(None).unwrap();
    let nb = store.create_notebook("t", "corpus").unwrap();
    let tmp = std::env::temp_dir().join(format!("nines-ask-retrieval-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut names = std::collections::HashMap::new();
    for d in &corpus.documents {
        let path = tmp.join(&d.name);
        std::fs::write(&path, pdf::write(&d.pages)).unwrap();
        let got = extract::extract(&path, &tools, &extract::Limits::default()).await.unwrap();
        assert_eq!(got.pages.len(), d.pages.len(), "{}: pages", d.name);
        assert!(got.notices.is_empty(), "{:?}", got.notices);
        for q in corpus.questions.iter().filter(|q| q.document == d.name) {
            let text = &got.pages[q.page as usize - 1].text;
            assert!(text.contains(&q.quote), "{} page {}: {:?} not in\n{text}", d.name, q.page, q.quote);
        }
        let chunks = chunk::chunk(&got.pages);
        let doc = store.create_document("t", &nb.id, &d.name, 0).unwrap();
        names.insert(doc.id.clone(), d.name.clone());
        let ids = store.add_chunks(&doc.id, &nb.id, &chunks).unwrap();
        let texts: Vec<String> = chunks.iter().map(chunk::Chunk::indexed).collect();
        let entries: Vec<bm25::Entry<'_>> = ids
            .iter()
            .zip(&texts)
            .map(|(id, t)| bm25::Entry { chunk: *id, notebook: &nb.id, document: &doc.id, text: t })
            .collect();
        index.add(&entries).unwrap();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = model.embed(&refs).unwrap();
        store.add_vectors("minilm", &ids.iter().copied().zip(vectors).collect::<Vec<_>>()).unwrap();
        store.finish_document(&doc.id, None, None).unwrap();
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let (mut fused5, mut fused1, mut kw5, mut vec5) = (0, 0, 0, 0);
    let hit = |ids: &[i64], q: &Question, k: usize| {
        store
            .chunks(&nb.id, &ids[..ids.len().min(k)])
            .unwrap()
            .iter()
            .any(|c| names[&c.document] == q.document && c.page == q.page)
    };
    for q in &corpus.questions {
        let keywords = index.search(&nb.id, &q.q, retrieve::DEPTH).unwrap();
        let qv = model.embed(&[q.q.as_str()]).unwrap().remove(0);
        let near = store.nearest(&nb.id, "minilm", &qv, retrieve::DEPTH).unwrap();
        let fused = retrieve::fuse(&[&keywords, &near]);
        let found = hit(&fused, q, 5);
        fused5 += usize::from(found);
        fused1 += usize::from(hit(&fused, q, 1));
        kw5 += usize::from(hit(&keywords, q, 5));
        vec5 += usize::from(hit(&near, q, 5));
        if !found {
            println!("missed: {} ({} p.{})", q.q, q.document, q.page);
        }
    }
    let n = corpus.questions.len() as f64;
    println!(
        "{} questions: recall@5 fused {:.3}, recall@1 fused {:.3}; recall@5 BM25 alone {:.3}, vectors alone {:.3}",
        corpus.questions.len(),
        fused5 as f64 / n,
        fused1 as f64 / n,
        kw5 as f64 / n,
        vec5 as f64 / n,
    );
    assert!(fused5 as f64 / n >= 0.9, "recall@5 {fused5}/{}", corpus.questions.len());
}
