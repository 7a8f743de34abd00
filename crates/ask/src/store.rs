//! What the app keeps: notebooks, documents, chunks, vectors and conversations, each owned by the key that made it.
//! Embedded in one SQLite file (vectors as little-endian f32 blobs, keyed by chunk and by the model that made them:
//! vectors of different models are never compared). Every read and write names the owner: another key's rows are
//! not found.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("the app's database: {0}")]
pub struct StoreError(#[from] rusqlite::Error);

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

pub struct Store {
    db: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
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

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A fresh id: `prefix_` and 16 random hex digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::random::<u64>())
}

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

impl Store {
    /// The database at `path` (made if absent), or in memory.
    pub fn open(path: Option<&Path>) -> Result<Store, StoreError> {
        let db = match path {
            Some(p) => Connection::open(p)?,
            None => Connection::open_in_memory()?,
        };
        db.execute_batch(SCHEMA)?;
        Ok(Store { db: Mutex::new(db) })
    }

    /// Documents left half-indexed by a stop: failed (the reader can upload them again), their chunks and vectors
    /// gone; their ids, for the keyword index to forget them too.
    pub fn fail_interrupted(&self) -> Result<Vec<String>, StoreError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let ids: Vec<String> = {
            let mut q = tx.prepare("SELECT id FROM documents WHERE status NOT IN ('ready', 'failed')")?;
            q.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        for id in &ids {
            tx.execute("DELETE FROM chunks WHERE document = ?1", [id])?;
            tx.execute(
                "UPDATE documents SET status = 'failed', error = 'indexing was interrupted: upload it again' \
                 WHERE id = ?1",
                [id],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Whether the document `id` is still there.
    pub fn exists(&self, id: &str) -> Result<bool, StoreError> {
        let n: i64 =
            self.db().query_row("SELECT COUNT(*) FROM documents WHERE id = ?1", [id], |r| r.get(0))?;
        Ok(n > 0)
    }

    /// Remove a document's chunks (and so their vectors): what a failed indexing leaves.
    pub fn drop_chunks(&self, document: &str) -> Result<(), StoreError> {
        self.db().execute("DELETE FROM chunks WHERE document = ?1", [document])?;
        Ok(())
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn notebooks(&self, owner: &str) -> Result<Vec<Notebook>, StoreError> {
        let db = self.db();
        let mut q = db.prepare(
            "SELECT n.id, n.name, (SELECT COUNT(*) FROM documents d WHERE d.notebook = n.id) FROM notebooks n \
             WHERE n.owner = ?1 ORDER BY n.created, n.id",
        )?;
        let rows =
            q.query_map([owner], |r| Ok(Notebook { id: r.get(0)?, name: r.get(1)?, documents: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn notebook(&self, owner: &str, id: &str) -> Result<Option<Notebook>, StoreError> {
        Ok(self.notebooks(owner)?.into_iter().find(|n| n.id == id))
    }

    pub fn create_notebook(&self, owner: &str, name: &str) -> Result<Notebook, StoreError> {
        let id = new_id("nb");
        self.db().execute(
            "INSERT INTO notebooks (id, owner, name, created) VALUES (?1, ?2, ?3, ?4)",
            params![id, owner, name, now()],
        )?;
        Ok(Notebook { id, name: name.to_owned(), documents: 0 })
    }

    /// Delete a notebook with everything in it; whether it was there.
    pub fn delete_notebook(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self.db().execute("DELETE FROM notebooks WHERE id = ?1 AND owner = ?2", params![id, owner])? > 0)
    }

    pub fn create_document(
        &self,
        owner: &str,
        notebook: &str,
        name: &str,
        bytes: u64,
    ) -> Result<Document, StoreError> {
        let id = new_id("doc");
        self.db().execute(
            "INSERT INTO documents (id, notebook, owner, name, bytes, status, created) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'extracting', ?6)",
            params![id, notebook, owner, name, bytes as i64, now()],
        )?;
        Ok(Document {
            id,
            notebook: notebook.to_owned(),
            name: name.to_owned(),
            bytes,
            status: "extracting".to_owned(),
            pages: 0,
            pages_done: 0,
            chunks: 0,
            error: None,
            notice: None,
        })
    }

    pub fn document(&self, owner: &str, id: &str) -> Result<Option<Document>, StoreError> {
        let db = self.db();
        let mut q = db.prepare(&format!("{DOCUMENT} WHERE id = ?1 AND owner = ?2"))?;
        Ok(q.query_row(params![id, owner], document).optional()?)
    }

    pub fn documents(&self, owner: &str, notebook: &str) -> Result<Vec<Document>, StoreError> {
        let db = self.db();
        let mut q =
            db.prepare(&format!("{DOCUMENT} WHERE notebook = ?1 AND owner = ?2 ORDER BY created, id"))?;
        let rows = q.query_map(params![notebook, owner], document)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Update a document's progress (the indexing task's own writes, by id).
    pub fn set_progress(
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

    pub fn finish_document(
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

    /// Delete a document, its chunks and their vectors; whether it was there.
    pub fn delete_document(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self.db().execute("DELETE FROM documents WHERE id = ?1 AND owner = ?2", params![id, owner])? > 0)
    }

    /// Store a document's chunks; their ids, in order.
    pub fn add_chunks(
        &self,
        document: &str,
        notebook: &str,
        chunks: &[crate::chunk::Chunk],
    ) -> Result<Vec<i64>, StoreError> {
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
        Ok(ids)
    }

    pub fn add_vectors(&self, model: &str, vectors: &[(i64, Vec<f32>)]) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        {
            let mut q =
                tx.prepare("INSERT OR REPLACE INTO vectors (chunk, model, data) VALUES (?1, ?2, ?3)")?;
            for (chunk, v) in vectors {
                let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                q.execute(params![chunk, model, blob])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every vector of `model` in `notebook`: (chunk, vector).
    pub fn vectors(&self, notebook: &str, model: &str) -> Result<Vec<(i64, Vec<f32>)>, StoreError> {
        let db = self.db();
        let mut q = db.prepare(
            "SELECT v.chunk, v.data FROM vectors v JOIN chunks c ON c.id = v.chunk \
             WHERE c.notebook = ?1 AND v.model = ?2",
        )?;
        let rows = q.query_map(params![notebook, model], |r| {
            let blob: Vec<u8> = r.get(1)?;
            let v = blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            Ok((r.get(0)?, v))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The `limit` chunks of `notebook` whose vectors of `model` are nearest `query` (unit vectors: the largest dot
    /// products), best first. The rows are read one at a time: memory holds `limit` of them, whatever the notebook's
    /// size.
    pub fn nearest(
        &self,
        notebook: &str,
        model: &str,
        query: &[f32],
        limit: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let db = self.db();
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

    /// The models that made vectors in `notebook`, with how many chunks each covers.
    pub fn vector_models(&self, notebook: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let db = self.db();
        let mut q = db.prepare(
            "SELECT v.model, COUNT(*) FROM vectors v JOIN chunks c ON c.id = v.chunk WHERE c.notebook = ?1 \
             GROUP BY v.model ORDER BY COUNT(*) DESC",
        )?;
        let rows = q.query_map([notebook], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The chunks with these ids that are in `notebook`, in the order asked.
    pub fn chunks(&self, notebook: &str, ids: &[i64]) -> Result<Vec<StoredChunk>, StoreError> {
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

    /// A conversation of `owner` in `notebook`, made when `id` is `None`; `None` when `id` is not theirs.
    pub fn conversation(
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

    /// The notebook a conversation of `owner` belongs to.
    pub fn conversation_notebook(&self, owner: &str, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT notebook FROM conversations WHERE id = ?1 AND owner = ?2",
                params![id, owner],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn add_turn(&self, conversation: &str, turn: &Turn) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::Chunk;

    #[test]
    fn rows_belong_to_their_owner_and_a_deleted_document_takes_its_chunks_and_vectors() {
        let s = Store::open(None).unwrap();
        let nb = s.create_notebook("alice", "Mine").unwrap();
        assert!(s.notebook("bob", &nb.id).unwrap().is_none());
        let d = s.create_document("alice", &nb.id, "a.pdf", 10).unwrap();
        assert!(s.document("bob", &d.id).unwrap().is_none());
        assert!(!s.delete_document("bob", &d.id).unwrap());
        let c = Chunk { page: 2, start: 0, end: 5, heading: None, text: "hello".into() };
        let ids = s.add_chunks(&d.id, &nb.id, &[c.clone(), c]).unwrap();
        s.add_vectors("m", &[(ids[0], vec![1.0, 0.5]), (ids[1], vec![0.0, 1.0])]).unwrap();
        assert_eq!(s.vectors(&nb.id, "m").unwrap()[0], (ids[0], vec![1.0, 0.5]));
        assert_eq!(s.nearest(&nb.id, "m", &[0.0, 1.0], 5).unwrap(), vec![ids[1], ids[0]]);
        assert_eq!(s.nearest(&nb.id, "m", &[1.0, 0.0], 1).unwrap(), vec![ids[0]]);
        assert!(
            s.nearest(&nb.id, "m", &[1.0, 0.0, 0.0], 5).unwrap().is_empty(),
            "another length: not compared"
        );
        assert!(s.nearest(&nb.id, "other", &[1.0, 0.0], 5).unwrap().is_empty());
        assert_eq!(s.vector_models(&nb.id).unwrap(), vec![("m".to_owned(), 2)]);
        assert!(s.chunks(&nb.id, &[ids[1]]).unwrap().is_empty(), "not searchable until ready");
        s.finish_document(&d.id, None, None).unwrap();
        assert_eq!(s.chunks(&nb.id, &[ids[1]]).unwrap()[0].page, 2);
        assert!(s.chunks("other", &[ids[1]]).unwrap().is_empty());
        assert_eq!(s.document("alice", &d.id).unwrap().unwrap().chunks, 2);
        assert!(s.delete_document("alice", &d.id).unwrap());
        assert!(s.vectors(&nb.id, "m").unwrap().is_empty());
        assert!(s.chunks(&nb.id, &ids).unwrap().is_empty());
        let n: i64 = s.db().query_row("SELECT COUNT(*) FROM chunks", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
        let n: i64 = s.db().query_row("SELECT COUNT(*) FROM vectors", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn conversations_keep_their_turns_for_their_owner_only() {
        let s = Store::open(None).unwrap();
        let nb = s.create_notebook("alice", "Mine").unwrap();
        let (id, turns) = s.conversation("alice", &nb.id, None).unwrap().unwrap();
        assert!(turns.is_empty());
        let t = Turn {
            question: "q".into(),
            answer: "a [1]".into(),
            sources: serde_json::json!([1]),
            route: serde_json::json!({}),
        };
        s.add_turn(&id, &t).unwrap();
        s.add_turn(&id, &t).unwrap();
        assert_eq!(s.conversation("alice", &nb.id, Some(&id)).unwrap().unwrap().1, vec![t.clone(), t]);
        assert!(s.conversation("bob", &nb.id, Some(&id)).unwrap().is_none());
    }
}
