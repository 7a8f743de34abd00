//! A document's way into a notebook, in the background after its upload: the PDF kept by the store → its pages'
//! text (under limits) → chunks with their keyword entries → vectors through the gateway's embeddings route, a batch at a
//! time, progress written as it goes. Vectors that cannot be made leave the document searchable by keywords, and
//! the document says so.

use std::sync::Arc;

use secrecy::SecretString;

use crate::Ask;
use crate::chunk::{self, Chunk};
use crate::extract;

/// Chunks embedded per request to the gateway.
const BATCH: usize = 16;

/// How often a document waiting for its turn says it is still on its way.
const TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Index the document `id` of `owner` (its PDF already stored), as `key`.
pub async fn run(ask: Arc<Ask>, id: String, owner: String, notebook: String, key: Option<SecretString>) {
    // One document at a time (extraction and a local embedding model would otherwise compete for the same cores),
    // owners taking turns. Waiting its turn, it says so now and then (a shared store fails documents that say
    // nothing for long); the wait keeps its place in the line.
    let acquire = ask.indexing.take(&owner);
    tokio::pin!(acquire);
    // The first a minute from now: a document whose turn is free at once writes nothing more.
    let mut waiting = tokio::time::interval_at(tokio::time::Instant::now() + TOUCH_EVERY, TOUCH_EVERY);
    let _turn = loop {
        tokio::select! {
            turn = &mut acquire => break turn,
            _ = waiting.tick() => {
                if let Err(e) = ask.store.touch(&id).await {
                    tracing::warn!(target: "nines::app", document = %id, "{e}");
                }
            }
        }
    };
    let failed = |e: &dyn std::fmt::Display| e.to_string();
    let result = index(&ask, &id, &notebook, key.as_ref()).await;
    // A failure leaves nothing searchable; nor does a document deleted while it was being indexed (its delete may
    // have come before its keyword entries did).
    let gone = !matches!(ask.store.exists(&id).await, Ok(true));
    if result.is_err() || gone {
        let _ = ask.store.drop_chunks(&id).await;
    }
    let (error, notice) = match &result {
        Ok(notices) if notices.is_empty() => (None, None),
        Ok(notices) => (None, Some(notices.join("; "))),
        Err(e) => (Some(failed(e)), None),
    };
    if let Err(e) = ask.store.finish_document(&id, error.as_deref(), notice.as_deref()).await {
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
    #[error("this PDF has no text that could be read")]
    Empty,
}

async fn index(
    ask: &Ask,
    id: &str,
    notebook: &str,
    key: Option<&SecretString>,
) -> Result<Vec<String>, IngestError> {
    let s = &ask.settings;
    let pdf = ask.store.pdf_file(id).await?;
    let extracted = extract::extract(&pdf.path, &s.tools, &s.limits).await?;
    drop(pdf);
    let pages = extracted.pages.len() as u32;
    let mut notices = extracted.notices;
    ask.store.set_progress(id, "indexing", pages, 0).await?;
    let chunks = chunk::chunk(&extracted.pages);
    if chunks.is_empty() {
        return Err(IngestError::Empty);
    }
    let texts: Vec<String> = chunks.iter().map(Chunk::indexed).collect();
    let ids = ask.store.add_chunks(id, notebook, &chunks, &texts).await?;
    let mut spaces: Vec<String> = Vec::new();
    let mut vectorless = 0;
    for (batch, (ids, chunks)) in ids.chunks(BATCH).zip(chunks.chunks(BATCH)).enumerate() {
        let texts: Vec<&str> = texts[batch * BATCH..].iter().take(ids.len()).map(String::as_str).collect();
        match ask.gateway.embed(key, &s.embed_model, &texts).await {
            Ok(e) => {
                let rows: Vec<(i64, Vec<f32>)> = ids.iter().copied().zip(e.vectors).collect();
                ask.store.add_vectors(&e.space, &rows).await?;
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
        ask.store.set_progress(id, "indexing", pages, done).await?;
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
    ask.store.set_progress(id, "indexing", pages, pages).await?;
    Ok(notices)
}
