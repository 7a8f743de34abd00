//! A document's way into a notebook, in the background after its upload: the PDF kept on disk → its pages'
//! text (under limits) → chunks → the keyword index → vectors through the gateway's embeddings route, a batch at a
//! time, progress written as it goes. Vectors that cannot be made leave the document searchable by keywords, and
//! the document says so.

use std::sync::Arc;

use secrecy::SecretString;

use crate::Ask;
use crate::bm25::Entry;
use crate::chunk::{self, Chunk};
use crate::extract;

/// Chunks embedded per request to the gateway.
const BATCH: usize = 16;

/// Index the document `id` (its PDF already at `path`), as `key`.
pub async fn run(
    ask: Arc<Ask>,
    id: String,
    notebook: String,
    path: std::path::PathBuf,
    key: Option<SecretString>,
) {
    // One document at a time: extraction and a local embedding model would otherwise compete for the same cores.
    let _turn = ask.indexing.acquire().await;
    let failed = |e: &dyn std::fmt::Display| e.to_string();
    let result = index(&ask, &id, &notebook, &path, key.as_ref()).await;
    // A failure leaves nothing searchable; nor does a document deleted while it was being indexed (its delete may
    // have come before its keyword entries did).
    let gone = !matches!(ask.store.exists(&id), Ok(true));
    if result.is_err() || gone {
        let _ = ask.store.drop_chunks(&id);
        let bm25 = ask.bm25.clone();
        let doc = id.clone();
        let _ = tokio::task::spawn_blocking(move || bm25.remove_document(&doc)).await;
    }
    let (error, notice) = match &result {
        Ok(notices) if notices.is_empty() => (None, None),
        Ok(notices) => (None, Some(notices.join("; "))),
        Err(e) => (Some(failed(e)), None),
    };
    if let Err(e) = ask.store.finish_document(&id, error.as_deref(), notice.as_deref()) {
        tracing::warn!(target: "nines::app", "document {id}: {e}");
    }
    match error {
        Some(e) => tracing::info!(target: "nines::app", document = %id, "not indexed: {e}"),
        None => tracing::info!(target: "nines::app", document = %id, "indexed"),
    }
    ask.finished.send_modify(|n| *n += 1);
}

#[derive(Debug, thiserror::Error)]
enum IngestError {
    #[error(transparent)]
    Extract(#[from] extract::ExtractError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Index(#[from] crate::bm25::Bm25Error),
    #[error("this PDF has no text that could be read")]
    Empty,
    #[error("the indexing task failed: {0}")]
    Task(String),
}

async fn index(
    ask: &Ask,
    id: &str,
    notebook: &str,
    path: &std::path::Path,
    key: Option<&SecretString>,
) -> Result<Vec<String>, IngestError> {
    let s = &ask.settings;
    let extracted = extract::extract(path, &s.tools, &s.limits).await?;
    let pages = extracted.pages.len() as u32;
    let mut notices = extracted.notices;
    ask.store.set_progress(id, "indexing", pages, 0)?;
    let chunks = chunk::chunk(&extracted.pages);
    if chunks.is_empty() {
        return Err(IngestError::Empty);
    }
    let ids = ask.store.add_chunks(id, notebook, &chunks)?;
    let texts: Vec<String> = chunks.iter().map(Chunk::indexed).collect();
    let entries: Vec<Entry<'_>> =
        ids.iter().zip(&texts).map(|(c, t)| Entry { chunk: *c, notebook, document: id, text: t }).collect();
    let bm25 = ask.bm25.clone();
    let owned: Vec<(i64, String)> = entries.iter().map(|e| (e.chunk, e.text.to_owned())).collect();
    let (nb, doc) = (notebook.to_owned(), id.to_owned());
    tokio::task::spawn_blocking(move || {
        let entries: Vec<Entry<'_>> =
            owned.iter().map(|(c, t)| Entry { chunk: *c, notebook: &nb, document: &doc, text: t }).collect();
        bm25.add(&entries)
    })
    .await
    .map_err(|e| IngestError::Task(e.to_string()))??;
    let mut spaces: Vec<String> = Vec::new();
    let mut vectorless = 0;
    for (batch, (ids, chunks)) in ids.chunks(BATCH).zip(chunks.chunks(BATCH)).enumerate() {
        let texts: Vec<&str> = texts[batch * BATCH..].iter().take(ids.len()).map(String::as_str).collect();
        match ask.gateway.embed(key, &s.embed_model, &texts).await {
            Ok(e) => {
                let rows: Vec<(i64, Vec<f32>)> = ids.iter().copied().zip(e.vectors).collect();
                ask.store.add_vectors(&e.space, &rows)?;
                if !spaces.contains(&e.space) {
                    spaces.push(e.space);
                }
            }
            Err(e) => {
                vectorless += ids.len();
                tracing::warn!(target: "nines::app", document = %id, "embeddings: {e}");
            }
        }
        let done = chunks.last().map_or(pages, |c| c.page);
        ask.store.set_progress(id, "indexing", pages, done)?;
    }
    if vectorless > 0 {
        notices.push(format!(
            "{vectorless} passage(s) could not be embedded (no embeddings target answered): found by keywords only"
        ));
    }
    if spaces.len() > 1 {
        notices.push(format!(
            "embedded by {} (vectors of one are not compared with another's)",
            spaces.join(", ")
        ));
    }
    ask.store.set_progress(id, "indexing", pages, pages)?;
    Ok(notices)
}
