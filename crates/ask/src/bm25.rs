//! The keyword half of retrieval: a tantivy index of every chunk's text (English stemming), searched by BM25 within
//! one notebook. Kept on disk beside the database (or in memory for tests); a document's chunks leave it with the
//! document.

use std::path::Path;
use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, QueryParser, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

#[derive(Debug, thiserror::Error)]
#[error("the keyword index: {0}")]
pub struct Bm25Error(#[from] tantivy::TantivyError);

impl From<tantivy::directory::error::OpenDirectoryError> for Bm25Error {
    fn from(e: tantivy::directory::error::OpenDirectoryError) -> Self {
        Bm25Error(e.into())
    }
}

/// English words: lowercased, stop words ("should", "the", "by") dropped, stemmed ("warranties" → "warranti").
const TOKENIZER: &str = "en_stem_stop";

/// The fields of a chunk's entry.
struct Fields {
    chunk: Field,
    notebook: Field,
    document: Field,
    text: Field,
}

pub struct Bm25 {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
}

impl std::fmt::Debug for Bm25 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bm25")
    }
}

/// What one chunk puts in the index.
pub struct Entry<'a> {
    pub chunk: i64,
    pub notebook: &'a str,
    pub document: &'a str,
    pub text: &'a str,
}

/// The analyzer of [`TOKENIZER`]: words split on non-alphanumerics, longer than 40 bytes dropped, lowercased, English
/// stop words dropped, stemmed.
fn analyzer() -> tantivy::tokenizer::TextAnalyzer {
    use tantivy::tokenizer::{
        Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
    };
    let mut analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .dynamic();
    if let Some(stop) = StopWordFilter::new(Language::English) {
        analyzer = analyzer.filter_dynamic(stop);
    }
    analyzer.filter_dynamic(Stemmer::new(Language::English)).build()
}

/// A text's terms as the index sees them, in order (repeats kept): what a backend without tantivy indexes and
/// searches for, so both rank the same words.
pub fn terms(text: &str) -> Vec<String> {
    use tantivy::tokenizer::TokenStream;
    thread_local! {
        // Made once per thread, not per text (its stop-word set and stemmer are built when it is).
        static ANALYZER: std::cell::RefCell<tantivy::tokenizer::TextAnalyzer> = std::cell::RefCell::new(analyzer());
    }
    ANALYZER.with_borrow_mut(|analyzer| {
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            out.push(token.text.clone());
        }
        out
    })
}

/// A question reduced to its words: operators a person did not mean (quotes, colons, brackets, AND/OR/NOT) are
/// never a query language.
pub fn words(question: &str) -> String {
    question
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' })
        .collect::<String>()
        .to_lowercase()
}

impl Bm25 {
    /// The index in `dir` (made if absent), or in memory when `dir` is `None`.
    pub fn open(dir: Option<&Path>) -> Result<Bm25, Bm25Error> {
        let mut b = Schema::builder();
        let text_options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            chunk: b.add_i64_field("chunk", INDEXED | STORED | FAST),
            notebook: b.add_text_field("notebook", STRING),
            document: b.add_text_field("document", STRING),
            text: b.add_text_field("text", text_options),
        };
        let schema = b.build();
        let index = match dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| Bm25Error(e.into()))?;
                Index::open_or_create(tantivy::directory::MmapDirectory::open(d)?, schema)?
            }
            None => Index::create_in_ram(schema),
        };
        index.tokenizers().register(TOKENIZER, analyzer());
        // One indexing thread and tantivy's smallest arena: documents are indexed one at a time, in the background.
        let writer = index.writer_with_num_threads(1, 15_000_000)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(Bm25 { index, reader, writer: Mutex::new(writer), fields })
    }

    /// Index one document's chunks (searchable once this returns).
    pub fn add(&self, entries: &[Entry<'_>]) -> Result<(), Bm25Error> {
        let mut w = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in entries {
            let mut doc = TantivyDocument::default();
            doc.add_i64(self.fields.chunk, e.chunk);
            doc.add_text(self.fields.notebook, e.notebook);
            doc.add_text(self.fields.document, e.document);
            doc.add_text(self.fields.text, e.text);
            w.add_document(doc)?;
        }
        w.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    /// Remove a document's chunks.
    pub fn remove_document(&self, document: &str) -> Result<(), Bm25Error> {
        self.remove(self.fields.document, document)
    }

    /// Remove a notebook's chunks.
    pub fn remove_notebook(&self, notebook: &str) -> Result<(), Bm25Error> {
        self.remove(self.fields.notebook, notebook)
    }

    fn remove(&self, field: Field, value: &str) -> Result<(), Bm25Error> {
        let mut w = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        w.delete_term(Term::from_field_text(field, value));
        w.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    /// The best `limit` chunks of `notebook` for `question`, best first. The question is read leniently: whatever
    /// a person types (quotes, colons, stray brackets) is searched for, never an error.
    pub fn search(&self, notebook: &str, question: &str, limit: usize) -> Result<Vec<i64>, Bm25Error> {
        let parser = QueryParser::for_index(&self.index, vec![self.fields.text]);
        // Operators a person did not mean: only words are searched for (lowercased: no AND, OR, NOT).
        let (query, _) = parser.parse_query_lenient(&words(question));
        let within =
            TermQuery::new(Term::from_field_text(self.fields.notebook, notebook), IndexRecordOption::Basic);
        let query = BooleanQuery::new(vec![(Occur::Must, Box::new(within)), (Occur::Must, query)]);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (_, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            if let Some(id) = doc.get_first(self.fields.chunk).and_then(|v| v.as_i64()) {
                out.push(id);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_stays_in_its_notebook_stems_and_forgets_a_removed_document() {
        let b = Bm25::open(None).unwrap();
        b.add(&[
            Entry { chunk: 1, notebook: "n1", document: "d1", text: "The warranty lasts 24 months." },
            Entry { chunk: 2, notebook: "n1", document: "d1", text: "Returns are accepted within 30 days." },
            Entry { chunk: 3, notebook: "n2", document: "d2", text: "Warranties everywhere." },
        ])
        .unwrap();
        assert_eq!(b.search("n1", "warranties?", 5).unwrap(), vec![1]);
        assert_eq!(b.search("n1", "how long: \"returns\" (accepted) AND [x", 5).unwrap(), vec![2]);
        assert_eq!(b.search("n2", "warranty", 5).unwrap(), vec![3]);
        assert!(b.search("n1", "", 5).unwrap().is_empty());
        assert_eq!(terms("The Warranties, the warranty!"), vec!["warranti", "warranti"]);
        b.remove_document("d1").unwrap();
        assert!(b.search("n1", "warranty", 5).unwrap().is_empty());
        assert_eq!(b.search("n2", "warranty", 5).unwrap(), vec![3]);
    }
}
