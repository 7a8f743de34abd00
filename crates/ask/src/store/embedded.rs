//! The embedded backend: one SQLite file (vectors as little-endian f32 blobs), the tantivy keyword index
//! ([`crate::bm25`]) beside it, and the PDFs in a folder. One process owns it: what a stop interrupted is failed
//! when it opens.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Document, INTERRUPTED, Notebook, PdfFile, Store, StoreError, StoredChunk, Turn, file_safe, new_id, now,
};
use crate::bm25::{Bm25, Entry};

pub struct Embedded {
    db: Arc<Mutex<Connection>>,
    bm25: Arc<Bm25>,
    files: PathBuf,
    /// In memory: `files` is a temporary folder of ours, removed with the store.
    temporary: bool,
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.files);
        }
    }
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Embedded")
    }
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS notebooks (
  id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
  id TEXT PRIMARY KEY, notebook TEXT NOT NULL REFERENCES notebooks(id) ON DELETE CASCADE, owner TEXT NOT NULL,
  name TEXT NOT NULL, bytes INTEGER NOT NULL, status TEXT NOT NULL, pages INTEGER NOT NULL DEFAULT 0,
  pages_done INTEGER NOT NULL DEFAULT 0, chunks INTEGER NOT NULL DEFAULT 0, error TEXT, notice TEXT,
  created INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS documents_notebook ON documents(notebook);
CREATE TABLE IF NOT EXISTS chunks (
  id INTEGER PRIMARY KEY, document TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  notebook TEXT NOT NULL, page INTEGER NOT NULL, start INTEGER NOT NULL, stop INTEGER NOT NULL, heading TEXT,
  text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_notebook ON chunks(notebook);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document);
CREATE TABLE IF NOT EXISTS vectors (
  chunk INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE, model TEXT NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY (chunk, model));
CREATE TABLE IF NOT EXISTS conversations (
  id TEXT PRIMARY KEY, notebook TEXT NOT NULL REFERENCES notebooks(id) ON DELETE CASCADE, owner TEXT NOT NULL,
  created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
  conversation TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE, seq INTEGER NOT NULL,
  question TEXT NOT NULL, answer TEXT NOT NULL, sources TEXT NOT NULL, route TEXT NOT NULL,
  PRIMARY KEY (conversation, seq));
";

fn document(row: &rusqlite::Row<'_>) -> rusqlite::Result<Document> {
    Ok(Document {
        id: row.get(0)?,
        notebook: row.get(1)?,
        name: row.get(2)?,
        bytes: row.get::<_, i64>(3)? as u64,
        status: row.get(4)?,
        pages: row.get(5)?,
        pages_done: row.get(6)?,
        chunks: row.get(7)?,
        error: row.get(8)?,
        notice: row.get(9)?,
    })
}

const DOCUMENT: &str =
    "SELECT id, notebook, name, bytes, status, pages, pages_done, chunks, error, notice FROM documents";

impl Embedded {
    /// The store in `dir` (the database `app.sqlite`, the keyword index `bm25/`, the PDFs `files/`; made if
    /// absent), or in memory with the PDFs in a fresh temporary folder, removed when the store is dropped. What a
    /// stop interrupted is failed.
    pub fn open(dir: Option<&Path>) -> Result<Embedded, StoreError> {
        let (db, bm25, files) = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (
                    Connection::open(dir.join("app.sqlite"))?,
                    Bm25::open(Some(&dir.join("bm25")))?,
                    dir.join("files"),
                )
            }
            None => {
                let tmp = std::env::temp_dir().join(format!(
                    "nines-app-{}-{:08x}",
                    std::process::id(),
                    rand::random::<u32>()
                ));
                (Connection::open_in_memory()?, Bm25::open(None)?, tmp)
            }
        };
        db.execute_batch(SCHEMA)?;
        let store =
            Embedded { db: Arc::new(Mutex::new(db)), bm25: Arc::new(bm25), files, temporary: dir.is_none() };
        for id in store.fail_interrupted()? {
            store.bm25.remove_document(&id)?;
        }
        Ok(store)
    }

    /// Documents left half-indexed by a stop: failed (the reader can upload them again), their chunks and vectors
    /// gone; their ids, for the keyword index to forget them too.
    fn fail_interrupted(&self) -> Result<Vec<String>, StoreError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let ids: Vec<String> = {
            let mut q = tx.prepare("SELECT id FROM documents WHERE status NOT IN ('ready', 'failed')")?;
            q.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        for id in &ids {
            tx.execute("DELETE FROM chunks WHERE document = ?1", [id])?;
            tx.execute(
                "UPDATE documents SET status = 'failed', error = ?2 WHERE id = ?1",
                params![id, INTERRUPTED],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pdf_path(&self, id: &str) -> PathBuf {
        self.files.join(format!("{}.pdf", file_safe(id)))
    }

    /// Run tantivy's work on a blocking thread.
    async fn index<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Bm25) -> Result<T, crate::bm25::Bm25Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let bm25 = self.bm25.clone();
        Ok(tokio::task::spawn_blocking(move || work(&bm25))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??)
    }
}

#[async_trait]
impl Store for Embedded {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn notebooks(&self, owner: &str) -> Result<Vec<Notebook>, StoreError> {
        let db = self.db();
        let mut q = db.prepare(
            "SELECT n.id, n.name, (SELECT COUNT(*) FROM documents d WHERE d.notebook = n.id) FROM notebooks n \
             WHERE n.owner = ?1 ORDER BY n.created, n.id",
        )?;
        let rows =
            q.query_map([owner], |r| Ok(Notebook { id: r.get(0)?, name: r.get(1)?, documents: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn create_notebook(
        &self,
        owner: &str,
        name: &str,
        max: usize,
    ) -> Result<Option<Notebook>, StoreError> {
        let id = new_id("nb");
        // One connection under one lock: the count and the insert are one step.
        let db = self.db();
        let n: i64 =
            db.query_row("SELECT COUNT(*) FROM notebooks WHERE owner = ?1", [owner], |r| r.get(0))?;
        if n as usize >= max {
            return Ok(None);
        }
        db.execute(
            "INSERT INTO notebooks (id, owner, name, created) VALUES (?1, ?2, ?3, ?4)",
            params![id, owner, name, now()],
        )?;
        Ok(Some(Notebook { id, name: name.to_owned(), documents: 0 }))
    }

    async fn delete_notebook(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let docs: Vec<String> = {
            let db = self.db();
            let mut q = db.prepare("SELECT id FROM documents WHERE notebook = ?1 AND owner = ?2")?;
            q.query_map(params![id, owner], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        let deleted =
            self.db().execute("DELETE FROM notebooks WHERE id = ?1 AND owner = ?2", params![id, owner])? > 0;
        if deleted {
            let nb = id.to_owned();
            self.index(move |b| b.remove_notebook(&nb)).await?;
            for d in docs {
                let _ = tokio::fs::remove_file(self.pdf_path(&d)).await;
            }
        }
        Ok(deleted)
    }

    async fn create_document(
        &self,
        owner: &str,
        notebook: &str,
        name: &str,
        pdf: &[u8],
        max: u32,
    ) -> Result<Option<Document>, StoreError> {
        let id = new_id("doc");
        let bytes = pdf.len() as u64;
        // The PDF first (a delete that finds the row then finds the file too), then the count and the insert
        // under one lock; the file goes again if the row does not come.
        let path = self.pdf_path(&id);
        tokio::fs::create_dir_all(&self.files).await?;
        tokio::fs::write(&path, pdf).await?;
        let inserted = (|| {
            let db = self.db();
            let n: i64 =
                db.query_row("SELECT COUNT(*) FROM documents WHERE notebook = ?1", [notebook], |r| r.get(0))?;
            if n >= i64::from(max) {
                return Ok(false);
            }
            db.execute(
                "INSERT INTO documents (id, notebook, owner, name, bytes, status, created) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'extracting', ?6)",
                params![id, notebook, owner, name, bytes as i64, now()],
            )?;
            Ok::<_, rusqlite::Error>(true)
        })();
        match inserted {
            Ok(true) => {}
            Ok(false) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Ok(None);
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(e.into());
            }
        }
        Ok(Some(Document::uploaded(id, notebook, name.to_owned(), bytes)))
    }

    async fn document(&self, owner: &str, id: &str) -> Result<Option<Document>, StoreError> {
        let db = self.db();
        let mut q = db.prepare(&format!("{DOCUMENT} WHERE id = ?1 AND owner = ?2"))?;
        Ok(q.query_row(params![id, owner], document).optional()?)
    }

    async fn documents(&self, owner: &str, notebook: &str) -> Result<Vec<Document>, StoreError> {
        let db = self.db();
        let mut q =
            db.prepare(&format!("{DOCUMENT} WHERE notebook = ?1 AND owner = ?2 ORDER BY created, id"))?;
        let rows = q.query_map(params![notebook, owner], document)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn pdf(&self, owner: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if self.document(owner, id).await?.is_none() {
            return Ok(None);
        }
        match tokio::fs::read(self.pdf_path(id)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn pdf_file(&self, id: &str) -> Result<PdfFile, StoreError> {
        Ok(PdfFile { path: self.pdf_path(id), temporary: false })
    }

    async fn exists(&self, id: &str) -> Result<bool, StoreError> {
        let n: i64 = self.db().query_row(
            "SELECT COUNT(*) FROM documents WHERE id = ?1 AND status <> 'failed'",
            [id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    async fn set_progress(
        &self,
        id: &str,
        status: &str,
        pages: u32,
        pages_done: u32,
    ) -> Result<(), StoreError> {
        self.db().execute(
            "UPDATE documents SET status = ?2, pages = ?3, pages_done = ?4 WHERE id = ?1",
            params![id, status, pages, pages_done],
        )?;
        Ok(())
    }

    async fn finish_document(
        &self,
        id: &str,
        error: Option<&str>,
        notice: Option<&str>,
    ) -> Result<(), StoreError> {
        let status = if error.is_some() { "failed" } else { "ready" };
        self.db().execute(
            "UPDATE documents SET status = ?2, error = ?3, notice = ?4, \
             chunks = (SELECT COUNT(*) FROM chunks WHERE document = ?1) WHERE id = ?1",
            params![id, status, error, notice],
        )?;
        Ok(())
    }

    async fn delete_document(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let deleted =
            self.db().execute("DELETE FROM documents WHERE id = ?1 AND owner = ?2", params![id, owner])? > 0;
        if deleted {
            let doc = id.to_owned();
            self.index(move |b| b.remove_document(&doc)).await?;
            let _ = tokio::fs::remove_file(self.pdf_path(id)).await;
        }
        Ok(deleted)
    }

    async fn add_chunks(
        &self,
        document: &str,
        notebook: &str,
        chunks: &[crate::chunk::Chunk],
        indexed: &[String],
    ) -> Result<Vec<i64>, StoreError> {
        let ids = {
            let mut db = self.db();
            let tx = db.transaction()?;
            let mut ids = Vec::with_capacity(chunks.len());
            {
                let mut q = tx.prepare(
                    "INSERT INTO chunks (document, notebook, page, start, stop, heading, text) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for c in chunks {
                    q.execute(params![
                        document,
                        notebook,
                        c.page,
                        c.start as i64,
                        c.end as i64,
                        c.heading,
                        c.text
                    ])?;
                    ids.push(tx.last_insert_rowid());
                }
            }
            tx.commit()?;
            ids
        };
        let owned: Vec<(i64, String)> = ids.iter().copied().zip(indexed.iter().cloned()).collect();
        let (nb, doc) = (notebook.to_owned(), document.to_owned());
        self.index(move |b| {
            let entries: Vec<Entry<'_>> = owned
                .iter()
                .map(|(c, t)| Entry { chunk: *c, notebook: &nb, document: &doc, text: t })
                .collect();
            b.add(&entries)
        })
        .await?;
        Ok(ids)
    }

    async fn drop_chunks(&self, document: &str) -> Result<(), StoreError> {
        self.db().execute("DELETE FROM chunks WHERE document = ?1", [document])?;
        let doc = document.to_owned();
        self.index(move |b| b.remove_document(&doc)).await
    }

    async fn add_vectors(&self, model: &str, vectors: &[(i64, Vec<f32>)]) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        {
            let mut q =
                tx.prepare("INSERT OR REPLACE INTO vectors (chunk, model, data) VALUES (?1, ?2, ?3)")?;
            for (chunk, v) in vectors.iter().filter(|(_, v)| super::usable(v)) {
                let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                q.execute(params![chunk, model, blob])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    async fn keywords(&self, notebook: &str, question: &str, limit: usize) -> Result<Vec<i64>, StoreError> {
        let (nb, text) = (notebook.to_owned(), question.to_owned());
        self.index(move |b| b.search(&nb, &text, limit)).await
    }

    /// The rows are read one at a time on a blocking thread: memory holds `limit` of them, whatever the notebook's
    /// size.
    async fn nearest(
        &self,
        notebook: &str,
        model: &str,
        query: &[f32],
        limit: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let db = self.db.clone();
        let (notebook, model, query) = (notebook.to_owned(), model.to_owned(), query.to_vec());
        tokio::task::spawn_blocking(move || {
            let db = db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            nearest(&db, &notebook, &model, &query, limit)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    async fn vector_models(&self, notebook: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let db = self.db();
        let mut q = db.prepare(
            "SELECT v.model, COUNT(*) FROM vectors v JOIN chunks c ON c.id = v.chunk WHERE c.notebook = ?1 \
             GROUP BY v.model ORDER BY COUNT(*) DESC",
        )?;
        let rows = q.query_map([notebook], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn chunks(&self, notebook: &str, ids: &[i64]) -> Result<Vec<StoredChunk>, StoreError> {
        let db = self.db();
        let mut q = db.prepare(
            "SELECT c.id, c.document, d.name, c.page, c.start, c.stop, c.heading, c.text FROM chunks c \
             JOIN documents d ON d.id = c.document WHERE c.id = ?1 AND c.notebook = ?2 AND d.status = 'ready'",
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = q
                .query_row(params![id, notebook], |r| {
                    Ok(StoredChunk {
                        id: r.get(0)?,
                        document: r.get(1)?,
                        name: r.get(2)?,
                        page: r.get(3)?,
                        start: r.get(4)?,
                        end: r.get(5)?,
                        heading: r.get(6)?,
                        text: r.get(7)?,
                    })
                })
                .optional()?;
            out.extend(row);
        }
        Ok(out)
    }

    async fn conversation(
        &self,
        owner: &str,
        notebook: &str,
        id: Option<&str>,
    ) -> Result<Option<(String, Vec<Turn>)>, StoreError> {
        let Some(id) = id else {
            let id = new_id("conv");
            self.db().execute(
                "INSERT INTO conversations (id, notebook, owner, created) VALUES (?1, ?2, ?3, ?4)",
                params![id, notebook, owner, now()],
            )?;
            return Ok(Some((id, Vec::new())));
        };
        let db = self.db();
        let found: Option<String> = db
            .query_row(
                "SELECT id FROM conversations WHERE id = ?1 AND owner = ?2 AND notebook = ?3",
                params![id, owner, notebook],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = found else { return Ok(None) };
        let mut q = db.prepare(
            "SELECT question, answer, sources, route FROM turns WHERE conversation = ?1 ORDER BY seq",
        )?;
        let turns = q
            .query_map([&id], |r| {
                let parse = |s: String| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null);
                Ok(Turn {
                    question: r.get(0)?,
                    answer: r.get(1)?,
                    sources: parse(r.get(2)?),
                    route: parse(r.get(3)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some((id, turns)))
    }

    async fn conversation_notebook(&self, owner: &str, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT notebook FROM conversations WHERE id = ?1 AND owner = ?2",
                params![id, owner],
                |r| r.get(0),
            )
            .optional()?)
    }

    async fn add_turn(&self, conversation: &str, turn: &Turn) -> Result<(), StoreError> {
        self.db().execute(
            "INSERT INTO turns (conversation, seq, question, answer, sources, route) VALUES \
             (?1, (SELECT COUNT(*) FROM turns WHERE conversation = ?1), ?2, ?3, ?4, ?5)",
            params![
                conversation,
                turn.question,
                turn.answer,
                turn.sources.to_string(),
                turn.route.to_string()
            ],
        )?;
        Ok(())
    }
}

/// The `limit` nearest chunks, scored row by row.
fn nearest(
    db: &Connection,
    notebook: &str,
    model: &str,
    query: &[f32],
    limit: usize,
) -> Result<Vec<i64>, StoreError> {
    let mut q = db.prepare_cached(
        "SELECT v.chunk, v.data FROM vectors v JOIN chunks c ON c.id = v.chunk \
         WHERE c.notebook = ?1 AND v.model = ?2",
    )?;
    let mut rows = q.query(params![notebook, model])?;
    let mut best: Vec<(f32, i64)> = Vec::with_capacity(limit + 1);
    while let Some(row) = rows.next()? {
        let blob = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        if blob.len() != query.len() * 4 {
            continue;
        }
        let score: f32 = blob
            .chunks_exact(4)
            .zip(query)
            .map(|(b, q)| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * q)
            .sum();
        if best.len() < limit || best.last().is_some_and(|(s, _)| score > *s) {
            let at = best.partition_point(|(s, _)| *s >= score);
            best.insert(at, (score, row.get(0)?));
            best.truncate(limit);
        }
    }
    Ok(best.into_iter().map(|(_, id)| id).collect())
}
