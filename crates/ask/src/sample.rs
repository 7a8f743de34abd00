//! The sample documents (the labelled corpus of the tests: four documents, 30 pages, facts on known pages) as PDFs,
//! for the demo and the benchmark.

use serde::Deserialize;

const CORPUS: &str = include_str!("../tests/fixtures/corpus.json");

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

/// A labelled question: the document and page that answer it.
#[derive(Clone, Debug, Deserialize)]
pub struct Question {
    pub q: String,
    pub document: String,
    pub page: u32,
    pub quote: String,
}

fn corpus() -> Corpus {
    serde_json::from_str(CORPUS).unwrap_or(Corpus { documents: Vec::new(), questions: Vec::new() })
}

/// (file name, PDF bytes, pages) of each sample document.
pub fn documents() -> Vec<(String, Vec<u8>, usize)> {
    corpus().documents.into_iter().map(|d| (d.name, crate::pdf::write(&d.pages), d.pages.len())).collect()
}

/// The labelled questions.
pub fn questions() -> Vec<Question> {
    corpus().questions
}
