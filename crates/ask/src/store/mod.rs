//! What the app keeps: notebooks, documents (their PDFs too), chunks with their keyword entries and vectors, and
//! conversations, each owned by the key that made it. One trait, two backends:
//!
//! - [`embedded::Embedded`] (the default): one SQLite file, a tantivy index beside it and the PDFs in a folder — one
//!   process, nothing to run.
//! - [`postgres::Postgres`]: everything in one Postgres database with pgvector, so several replicas of the app share
//!   it (BM25 over a term table filled by the same analyzer, vectors ranked by pgvector, PDFs as bytea).
//!
//! Every read and write names the owner: another key's rows are not found. Vectors are keyed by the chunk and the
//! model that made them: vectors of different models are never compared.

pub mod embedded;
pub mod postgres;

use async_trait::async_trait;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the app's database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the app's database: {0}")]
    Postgres(String),
    #[error("the app's database is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Index(#[from] crate::bm25::Bm25Error),
    #[error("the app's files: {0}")]
    Io(#[from] std::io::Error),
    #[error("the app's storage task failed: {0}")]
    Task(String),
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Notebook {
    pub id: String,
    pub name: String,
    pub documents: u32,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Document {
    pub id: String,
    pub notebook: String,
    pub name: String,
    pub bytes: u64,
    pub status: String,
    pub pages: u32,
    pub pages_done: u32,
    pub chunks: u32,
    pub error: Option<String>,
    pub notice: Option<String>,
}

impl Document {
    /// A document just uploaded: extracting, nothing counted yet.
    pub(crate) fn uploaded(id: String, notebook: &str, name: String, bytes: u64) -> Document {
        Document {
            id,
            notebook: notebook.to_owned(),
            name,
            bytes,
            status: "extracting".to_owned(),
            pages: 0,
            pages_done: 0,
            chunks: 0,
            error: None,
            notice: None,
        }
    }
}

/// A stored chunk, as retrieval returns it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StoredChunk {
    pub id: i64,
    pub document: String,
    pub name: String,
    pub page: u32,
    pub start: u32,
    pub end: u32,
    pub heading: Option<String>,
    pub text: String,
}

/// One question and its answer.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Turn {
    pub question: String,
    pub answer: String,
    pub sources: serde_json::Value,
    pub route: serde_json::Value,
}

/// A document's PDF as a file the extractor can read: the stored file itself, or a private copy removed when this
/// is dropped.
#[derive(Debug)]
pub struct PdfFile {
    pub path: std::path::PathBuf,
    temporary: bool,
}

impl Drop for PdfFile {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What a reader is told while the database is unavailable (the page's API and an answer's stream alike).
pub const UNAVAILABLE: &str = "the app's database is unavailable: try again shortly";

/// What a stop interrupts: a document that was being indexed becomes failed, with this error.
pub const INTERRUPTED: &str = "indexing was interrupted: upload it again";

/// The app's storage. Ids of chunks are the backend's; everything else is named by the ids made here.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// "embedded" or "postgres", for logs.
    fn kind(&self) -> &'static str;

    async fn notebooks(&self, owner: &str) -> Result<Vec<Notebook>, StoreError>;

    async fn notebook(&self, owner: &str, id: &str) -> Result<Option<Notebook>, StoreError> {
        Ok(self.notebooks(owner).await?.into_iter().find(|n| n.id == id))
    }

    /// A new notebook, unless `owner` has `max` already (`None`; counted and made at once: parallel requests, on
    /// any replica, cannot pass it).
    async fn create_notebook(
        &self,
        owner: &str,
        name: &str,
        max: usize,
    ) -> Result<Option<Notebook>, StoreError>;

    /// Delete a notebook with everything in it (documents, PDFs, chunks, keyword entries, vectors,
    /// conversations); whether it was there.
    async fn delete_notebook(&self, owner: &str, id: &str) -> Result<bool, StoreError>;

    /// A new document, `extracting`, with its PDF kept, unless `notebook` holds `max` already (`None`; counted and
    /// made at once, like notebooks).
    async fn create_document(
        &self,
        owner: &str,
        notebook: &str,
        name: &str,
        pdf: &[u8],
        max: u32,
    ) -> Result<Option<Document>, StoreError>;

    async fn document(&self, owner: &str, id: &str) -> Result<Option<Document>, StoreError>;

    async fn documents(&self, owner: &str, notebook: &str) -> Result<Vec<Document>, StoreError>;

    /// A document's PDF, for its owner.
    async fn pdf(&self, owner: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// A document's PDF as a file, for the indexer (by id).
    async fn pdf_file(&self, id: &str) -> Result<PdfFile, StoreError>;

    /// Whether the document `id` is still there and not failed (by a sweep that took its indexing for abandoned).
    async fn exists(&self, id: &str) -> Result<bool, StoreError>;

    /// Say that the document `id` is still on its way (queued behind another): a shared store fails documents
    /// that say nothing for long.
    async fn touch(&self, _id: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Update a document's progress (the indexing task's own writes, by id).
    async fn set_progress(
        &self,
        id: &str,
        status: &str,
        pages: u32,
        pages_done: u32,
    ) -> Result<(), StoreError>;

    /// `ready` (or `failed` with `error`), counting its chunks.
    async fn finish_document(
        &self,
        id: &str,
        error: Option<&str>,
        notice: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Delete a document, its PDF, chunks, keyword entries and vectors; whether it was there.
    async fn delete_document(&self, owner: &str, id: &str) -> Result<bool, StoreError>;

    /// Store a document's chunks and their keyword entries (`indexed[i]` is chunk i's text as searched); their
    /// ids, in order.
    async fn add_chunks(
        &self,
        document: &str,
        notebook: &str,
        chunks: &[crate::chunk::Chunk],
        indexed: &[String],
    ) -> Result<Vec<i64>, StoreError>;

    /// Remove a document's chunks, keyword entries and vectors: what a failed indexing leaves.
    async fn drop_chunks(&self, document: &str) -> Result<(), StoreError>;

    /// Keep vectors of `model` (one that is not [`usable`] is left out).
    async fn add_vectors(&self, model: &str, vectors: &[(i64, Vec<f32>)]) -> Result<(), StoreError>;

    /// The `limit` chunks of `notebook` that BM25 ranks best for `question`, best first (only its words are
    /// searched for: a question is never a query language).
    async fn keywords(&self, notebook: &str, question: &str, limit: usize) -> Result<Vec<i64>, StoreError>;

    /// The `limit` chunks of `notebook` whose vectors of `model` are nearest `query` (unit vectors: the largest
    /// dot products), best first; vectors of another length are not compared.
    async fn nearest(
        &self,
        notebook: &str,
        model: &str,
        query: &[f32],
        limit: usize,
    ) -> Result<Vec<i64>, StoreError>;

    /// The models that made vectors in `notebook`, with how many chunks each covers.
    async fn vector_models(&self, notebook: &str) -> Result<Vec<(String, u64)>, StoreError>;

    /// The chunks with these ids that are in `notebook` and of a ready document, in the order asked.
    async fn chunks(&self, notebook: &str, ids: &[i64]) -> Result<Vec<StoredChunk>, StoreError>;

    /// A conversation of `owner` in `notebook`, made when `id` is `None`; `None` when `id` is not theirs.
    async fn conversation(
        &self,
        owner: &str,
        notebook: &str,
        id: Option<&str>,
    ) -> Result<Option<(String, Vec<Turn>)>, StoreError>;

    /// The notebook a conversation of `owner` belongs to.
    async fn conversation_notebook(&self, owner: &str, id: &str) -> Result<Option<String>, StoreError>;

    async fn add_turn(&self, conversation: &str, turn: &Turn) -> Result<(), StoreError>;
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A fresh id: `prefix_` and 16 random hex digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::random::<u64>())
}

/// A vector worth keeping: not empty, every value finite (a NaN would poison every ranking it is in).
pub(crate) fn usable(v: &[f32]) -> bool {
    !v.is_empty() && v.iter().all(|x| x.is_finite())
}

/// Ids are ours (`doc_` and hex digits); anything else never names a file.
pub(crate) fn file_safe(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}
