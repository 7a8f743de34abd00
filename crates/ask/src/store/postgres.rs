//! The shared backend: everything in one Postgres database with pgvector, so that several replicas of the app (each
//! in its own nines process) serve the same notebooks. Tables are prefixed `ask_` (the database can be shared with
//! other things); the schema is made on first use, under an advisory lock (replicas may start at once).
//!
//! - Keywords: BM25 computed in SQL over a term table (`ask_terms`: notebook, term, chunk, frequency) filled by the
//!   same analyzer as the embedded tantivy index ([`crate::bm25::terms`]: the same words match in both), with
//!   document frequencies and the average length taken within the notebook.
//! - Vectors: pgvector's `vector` column, ranked by negative inner product (`<#>`) within the notebook and model.
//!   The scan is exact (a notebook holds at most `max_documents` documents; no approximate index to tune).
//! - PDFs: `bytea`, deleted with their document.
//!
//! A replica that stops mid-indexing cannot say so: a document whose indexer has not written progress for
//! [`STALE`] seconds is failed ("upload it again") by whichever replica next looks.

use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use super::{
    Document, INTERRUPTED, Notebook, PdfFile, Store, StoreError, StoredChunk, Turn, file_safe, new_id, now,
};
use crate::chunk::Chunk;

/// Seconds without progress after which a document being indexed is taken as abandoned.
pub const STALE: i64 = 600;

/// How often (seconds) a replica looks for abandoned documents.
const SWEEP_EVERY: i64 = 60;

/// Connections per replica.
const CONNECTIONS: usize = 8;

/// The longest a statement may run, and a connection stay silent with data unacknowledged.
const STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

const SCHEMA: &str = "
SELECT pg_advisory_xact_lock(7303519);
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS ask_notebooks (
  id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, created BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS ask_notebooks_owner ON ask_notebooks (owner);
CREATE TABLE IF NOT EXISTS ask_documents (
  id TEXT PRIMARY KEY, notebook TEXT NOT NULL REFERENCES ask_notebooks (id) ON DELETE CASCADE,
  owner TEXT NOT NULL, name TEXT NOT NULL, bytes BIGINT NOT NULL, status TEXT NOT NULL,
  pages INTEGER NOT NULL DEFAULT 0, pages_done INTEGER NOT NULL DEFAULT 0, chunks INTEGER NOT NULL DEFAULT 0,
  error TEXT, notice TEXT, created BIGINT NOT NULL, heartbeat BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS ask_documents_notebook ON ask_documents (notebook);
CREATE TABLE IF NOT EXISTS ask_files (
  document TEXT PRIMARY KEY REFERENCES ask_documents (id) ON DELETE CASCADE, data BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS ask_chunks (
  id BIGSERIAL PRIMARY KEY, document TEXT NOT NULL REFERENCES ask_documents (id) ON DELETE CASCADE,
  notebook TEXT NOT NULL, page INTEGER NOT NULL, start INTEGER NOT NULL, stop INTEGER NOT NULL, heading TEXT,
  text TEXT NOT NULL, length INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ask_chunks_notebook ON ask_chunks (notebook);
CREATE INDEX IF NOT EXISTS ask_chunks_document ON ask_chunks (document);
CREATE TABLE IF NOT EXISTS ask_terms (
  notebook TEXT NOT NULL, term TEXT NOT NULL, chunk BIGINT NOT NULL REFERENCES ask_chunks (id) ON DELETE CASCADE,
  tf INTEGER NOT NULL, PRIMARY KEY (notebook, term, chunk));
CREATE INDEX IF NOT EXISTS ask_terms_chunk ON ask_terms (chunk);
CREATE TABLE IF NOT EXISTS ask_vectors (
  chunk BIGINT NOT NULL REFERENCES ask_chunks (id) ON DELETE CASCADE, model TEXT NOT NULL, data vector NOT NULL,
  PRIMARY KEY (chunk, model));
CREATE TABLE IF NOT EXISTS ask_conversations (
  id TEXT PRIMARY KEY, notebook TEXT NOT NULL REFERENCES ask_notebooks (id) ON DELETE CASCADE,
  owner TEXT NOT NULL, created BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS ask_conversations_notebook ON ask_conversations (notebook);
CREATE TABLE IF NOT EXISTS ask_turns (
  conversation TEXT NOT NULL REFERENCES ask_conversations (id) ON DELETE CASCADE, seq INTEGER NOT NULL,
  question TEXT NOT NULL, answer TEXT NOT NULL, sources TEXT NOT NULL, route TEXT NOT NULL,
  PRIMARY KEY (conversation, seq));
";

/// The database's code and message (never its DETAIL, which can quote a row); a connection that closed or failed
/// is the database being unavailable.
impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => StoreError::Postgres(format!("{} ({})", db.message(), db.code().code())),
            None if e.is_closed() => StoreError::Unavailable("the connection closed".to_owned()),
            None => {
                let cause = std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
                StoreError::Unavailable(format!("{e}{cause}"))
            }
        }
    }
}

/// No connection (the server is down, unreachable or full): the app answers 503 until it is back.
impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

pub struct Postgres {
    pool: Pool,
    schema: tokio::sync::OnceCell<()>,
    /// When this replica last looked for abandoned documents (seconds since the epoch).
    swept: AtomicI64,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        f.write_str("Postgres")
    }
}

/// Postgres text holds no NUL: a PDF's text or a name that has one loses it.
fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') { s.replace('\0', "").into() } else { s.into() }
}

/// A vector as pgvector's text input; `None` when it has a value pgvector refuses (NaN, infinities).
fn vector_text(v: &[f32]) -> Option<String> {
    if !super::usable(v) {
        return None;
    }
    let parts: Vec<String> = v.iter().map(f32::to_string).collect();
    Some(format!("[{}]", parts.join(",")))
}

fn document(r: &tokio_postgres::Row) -> Result<Document, tokio_postgres::Error> {
    Ok(Document {
        id: r.try_get(0)?,
        notebook: r.try_get(1)?,
        name: r.try_get(2)?,
        bytes: r.try_get::<_, i64>(3)? as u64,
        status: r.try_get(4)?,
        pages: r.try_get::<_, i32>(5)? as u32,
        pages_done: r.try_get::<_, i32>(6)? as u32,
        chunks: r.try_get::<_, i32>(7)? as u32,
        error: r.try_get(8)?,
        notice: r.try_get(9)?,
    })
}

const DOCUMENT: &str =
    "SELECT id, notebook, name, bytes, status, pages, pages_done, chunks, error, notice FROM ask_documents";

impl Postgres {
    /// A pool to the database at `url` (`postgresql://user:password@host/db`, or `?host=/socket/dir` for a Unix
    /// socket). Nothing is connected until first use.
    pub fn new(url: &str) -> Result<Postgres, StoreError> {
        // The parser's error may quote the URL: say only that it is not one.
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
            StoreError::Postgres("the Postgres URL is not a valid connection string".to_owned())
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        // A server that stops answering fails the query instead of holding it (and an indexer's turn) forever.
        if config.get_options().is_none() {
            config.options(format!("-c statement_timeout={}", STATEMENT_TIMEOUT.as_millis()));
        }
        config.tcp_user_timeout(STATEMENT_TIMEOUT);
        config.keepalives_idle(std::time::Duration::from_secs(30));
        config.application_name("nines-app");
        let manager =
            Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(CONNECTIONS)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(10)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Postgres(e.to_string()))?;
        Ok(Postgres { pool, schema: tokio::sync::OnceCell::new(), swept: AtomicI64::new(0) })
    }

    /// A connection, the schema made first.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.schema
            .get_or_try_init(|| async {
                let mut c = self.pool.get().await?;
                let tx = c.transaction().await?;
                tx.batch_execute(SCHEMA).await?;
                tx.commit().await?;
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(self.pool.get().await?)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let c = self.client().await?;
        let statement = c.prepare_cached(sql).await?;
        Ok(c.query(&statement, params).await?)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let statement = c.prepare_cached(sql).await?;
        Ok(c.execute(&statement, params).await?)
    }

    /// Fail the documents whose indexer stopped writing progress [`STALE`] seconds ago (a replica that died), at
    /// most once a minute per replica.
    async fn sweep(&self) -> Result<(), StoreError> {
        let now = now();
        let last = self.swept.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY
            || self.swept.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return Ok(());
        }
        let n = self
            .execute(
                "WITH stale AS (UPDATE ask_documents SET status = 'failed', error = $1 \
                 WHERE status NOT IN ('ready', 'failed') AND heartbeat < $2 RETURNING id) \
                 DELETE FROM ask_chunks WHERE document IN (SELECT id FROM stale)",
                &[&INTERRUPTED, &(now - STALE)],
            )
            .await?;
        if n > 0 {
            tracing::info!(target: "nines::app", chunks = n, "abandoned documents failed");
        }
        Ok(())
    }
}

#[async_trait]
impl Store for Postgres {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn notebooks(&self, owner: &str) -> Result<Vec<Notebook>, StoreError> {
        let rows = self
            .query(
                "SELECT n.id, n.name, (SELECT COUNT(*) FROM ask_documents d WHERE d.notebook = n.id) \
                 FROM ask_notebooks n WHERE n.owner = $1 ORDER BY n.created, n.id",
                &[&owner],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Notebook {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    documents: r.try_get::<_, i64>(2)? as u32,
                })
            })
            .collect()
    }

    /// Under a lock on the owner (a transaction's advisory lock): replicas count and insert one at a time.
    async fn create_notebook(
        &self,
        owner: &str,
        name: &str,
        max: usize,
    ) -> Result<Option<Notebook>, StoreError> {
        let id = new_id("nb");
        let name = clean(name);
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('ask_notebooks:' || $1))", &[&owner]).await?;
        let n: i64 = tx
            .query_one("SELECT COUNT(*) FROM ask_notebooks WHERE owner = $1", &[&owner])
            .await?
            .try_get(0)?;
        if n as usize >= max {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO ask_notebooks (id, owner, name, created) VALUES ($1, $2, $3, $4)",
            &[&id, &owner, &name, &now()],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Notebook { id, name: name.into_owned(), documents: 0 }))
    }

    async fn delete_notebook(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        // Documents, their PDFs, chunks, terms, vectors and the conversations go with it (ON DELETE CASCADE).
        Ok(self.execute("DELETE FROM ask_notebooks WHERE id = $1 AND owner = $2", &[&id, &owner]).await? > 0)
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
        let name = clean(name);
        let bytes = pdf.len() as u64;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // The notebook's row locked (NO KEY: a conversation started meanwhile is not held up): uploads to it, on any
        // replica, count and insert one at a time.
        tx.execute("SELECT 1 FROM ask_notebooks WHERE id = $1 FOR NO KEY UPDATE", &[&notebook]).await?;
        let n: i64 = tx
            .query_one("SELECT COUNT(*) FROM ask_documents WHERE notebook = $1", &[&notebook])
            .await?
            .try_get(0)?;
        if n >= i64::from(max) {
            return Ok(None);
        }
        let now = now();
        tx.execute(
            "INSERT INTO ask_documents (id, notebook, owner, name, bytes, status, created, heartbeat) \
             VALUES ($1, $2, $3, $4, $5, 'extracting', $6, $6)",
            &[&id, &notebook, &owner, &name, &(bytes as i64), &now],
        )
        .await?;
        tx.execute("INSERT INTO ask_files (document, data) VALUES ($1, $2)", &[&id, &pdf]).await?;
        tx.commit().await?;
        Ok(Some(Document::uploaded(id, notebook, name.into_owned(), bytes)))
    }

    async fn document(&self, owner: &str, id: &str) -> Result<Option<Document>, StoreError> {
        let rows = self.query(&format!("{DOCUMENT} WHERE id = $1 AND owner = $2"), &[&id, &owner]).await?;
        Ok(rows.first().map(document).transpose()?)
    }

    async fn documents(&self, owner: &str, notebook: &str) -> Result<Vec<Document>, StoreError> {
        self.sweep().await?;
        let rows = self
            .query(
                &format!("{DOCUMENT} WHERE notebook = $1 AND owner = $2 ORDER BY created, id"),
                &[&notebook, &owner],
            )
            .await?;
        Ok(rows.iter().map(document).collect::<Result<_, _>>()?)
    }

    async fn pdf(&self, owner: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self
            .query(
                "SELECT f.data FROM ask_files f JOIN ask_documents d ON d.id = f.document \
                 WHERE f.document = $1 AND d.owner = $2",
                &[&id, &owner],
            )
            .await?;
        Ok(rows.first().map(|r| r.try_get(0)).transpose()?)
    }

    /// A private copy in the temporary folder (mode 0600), removed when the indexer drops it.
    async fn pdf_file(&self, id: &str) -> Result<PdfFile, StoreError> {
        let rows = self.query("SELECT data FROM ask_files WHERE document = $1", &[&id]).await?;
        let data: Vec<u8> = match rows.first() {
            Some(r) => r.try_get(0)?,
            None => {
                return Err(StoreError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, "no such PDF")));
            }
        };
        let path = std::env::temp_dir().join(format!(
            "nines-app-{}-{:016x}.pdf",
            file_safe(id),
            rand::random::<u64>()
        ));
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true).mode(0o600);
        let mut f = options.open(&path).await?;
        // Ours from here: removed when dropped, written or not.
        let file = PdfFile { path, temporary: true };
        tokio::io::AsyncWriteExt::write_all(&mut f, &data).await?;
        tokio::io::AsyncWriteExt::flush(&mut f).await?;
        Ok(file)
    }

    async fn exists(&self, id: &str) -> Result<bool, StoreError> {
        let rows =
            self.query("SELECT 1 FROM ask_documents WHERE id = $1 AND status <> 'failed'", &[&id]).await?;
        Ok(!rows.is_empty())
    }

    async fn touch(&self, id: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE ask_documents SET heartbeat = $2 WHERE id = $1 AND status NOT IN ('ready', 'failed')",
            &[&id, &now()],
        )
        .await?;
        Ok(())
    }

    /// Not on a document failed meanwhile (by a sweep that took it for abandoned).
    async fn set_progress(
        &self,
        id: &str,
        status: &str,
        pages: u32,
        pages_done: u32,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE ask_documents SET status = $2, pages = $3, pages_done = $4, heartbeat = $5 \
             WHERE id = $1 AND status <> 'failed'",
            &[&id, &status, &(pages as i32), &(pages_done as i32), &now()],
        )
        .await?;
        Ok(())
    }

    async fn finish_document(
        &self,
        id: &str,
        error: Option<&str>,
        notice: Option<&str>,
    ) -> Result<(), StoreError> {
        let status = if error.is_some() { "failed" } else { "ready" };
        let (error, notice) = (error.map(clean), notice.map(clean));
        self.execute(
            "UPDATE ask_documents SET status = $2, error = $3, notice = $4, heartbeat = $5, \
             chunks = (SELECT COUNT(*) FROM ask_chunks WHERE document = $1) WHERE id = $1 AND status <> 'failed'",
            &[&id, &status, &error, &notice, &now()],
        )
        .await?;
        Ok(())
    }

    async fn delete_document(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM ask_documents WHERE id = $1 AND owner = $2", &[&id, &owner]).await? > 0)
    }

    async fn add_chunks(
        &self,
        document: &str,
        notebook: &str,
        chunks: &[Chunk],
        indexed: &[String],
    ) -> Result<Vec<i64>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let rows = tx
            .query(
                "SELECT nextval(pg_get_serial_sequence('ask_chunks', 'id')) FROM generate_series(1, $1::bigint)",
                &[&(chunks.len() as i64)],
            )
            .await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
        // Each chunk's terms with their frequencies; its length in terms.
        let (mut term, mut term_chunk, mut tf) = (Vec::new(), Vec::new(), Vec::new());
        let mut length = Vec::with_capacity(chunks.len());
        for (id, text) in ids.iter().zip(indexed) {
            let mut terms = crate::bm25::terms(text);
            length.push(terms.len() as i32);
            terms.sort_unstable();
            for group in terms.chunk_by(|a, b| a == b) {
                term.push(group[0].clone());
                term_chunk.push(*id);
                tf.push(group.len() as i32);
            }
        }
        let page: Vec<i32> = chunks.iter().map(|c| c.page as i32).collect();
        let start: Vec<i32> = chunks.iter().map(|c| c.start as i32).collect();
        let stop: Vec<i32> = chunks.iter().map(|c| c.end as i32).collect();
        let heading: Vec<Option<String>> =
            chunks.iter().map(|c| c.heading.as_deref().map(|h| clean(h).into_owned())).collect();
        let text: Vec<String> = chunks.iter().map(|c| clean(&c.text).into_owned()).collect();
        tx.execute(
            "INSERT INTO ask_chunks (id, document, notebook, page, start, stop, heading, text, length) \
             SELECT u.id, $2, $3, u.page, u.start, u.stop, u.heading, u.text, u.length \
             FROM unnest($1::bigint[], $4::int[], $5::int[], $6::int[], $7::text[], $8::text[], $9::int[]) \
             AS u(id, page, start, stop, heading, text, length)",
            &[&ids, &document, &notebook, &page, &start, &stop, &heading, &text, &length],
        )
        .await?;
        tx.execute(
            "INSERT INTO ask_terms (notebook, term, chunk, tf) SELECT $1, u.term, u.chunk, u.tf \
             FROM unnest($2::text[], $3::bigint[], $4::int[]) AS u(term, chunk, tf)",
            &[&notebook, &term, &term_chunk, &tf],
        )
        .await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn drop_chunks(&self, document: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM ask_chunks WHERE document = $1", &[&document]).await?;
        Ok(())
    }

    async fn add_vectors(&self, model: &str, vectors: &[(i64, Vec<f32>)]) -> Result<(), StoreError> {
        let (chunk, data): (Vec<i64>, Vec<String>) =
            vectors.iter().filter_map(|(c, v)| Some((*c, vector_text(v)?))).unzip();
        self.execute(
            "INSERT INTO ask_vectors (chunk, model, data) \
             SELECT u.chunk, $1, u.data::vector FROM unnest($2::bigint[], $3::text[]) AS u(chunk, data) \
             ON CONFLICT (chunk, model) DO UPDATE SET data = EXCLUDED.data",
            &[&model, &chunk, &data],
        )
        .await?;
        Ok(())
    }

    /// BM25 (k1 = 1.2, b = 0.75, Lucene's idf) over the notebook's term table. The notebook's figures are computed
    /// once (MATERIALIZED: inlined, Postgres counted the notebook's chunks again for every matching chunk).
    async fn keywords(&self, notebook: &str, question: &str, limit: usize) -> Result<Vec<i64>, StoreError> {
        let mut terms = crate::bm25::terms(&crate::bm25::words(question));
        terms.sort_unstable();
        terms.dedup();
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let rows = self
            .query(
                "WITH stats AS MATERIALIZED (SELECT COUNT(*)::float8 AS n, GREATEST(AVG(length), 1)::float8 AS avgdl \
                   FROM ask_chunks WHERE notebook = $1), \
                 df AS MATERIALIZED (SELECT term, COUNT(*)::float8 AS df FROM ask_terms \
                   WHERE notebook = $1 AND term = ANY($2) GROUP BY term) \
                 SELECT t.chunk FROM ask_terms t JOIN df ON df.term = t.term JOIN ask_chunks c ON c.id = t.chunk \
                   CROSS JOIN stats s WHERE t.notebook = $1 AND t.term = ANY($2) GROUP BY t.chunk \
                 ORDER BY SUM(ln(1 + (s.n - df.df + 0.5) / (df.df + 0.5)) * t.tf::float8 * 2.2 \
                   / (t.tf::float8 + 1.2 * (0.25 + 0.75 * c.length::float8 / s.avgdl))) DESC, t.chunk LIMIT $3",
                &[&notebook, &terms, &(limit as i64)],
            )
            .await?;
        Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
    }

    /// The query vector is parsed once (a subquery): written as a cast in the ORDER BY, a generic plan parsed its
    /// 384 numbers again for every row (7.7 ms a question at 300 passages, in bench/app's Postgres log).
    async fn nearest(
        &self,
        notebook: &str,
        model: &str,
        query: &[f32],
        limit: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let Some(q) = vector_text(query) else { return Ok(Vec::new()) };
        let rows = self
            .query(
                "SELECT v.chunk FROM ask_vectors v JOIN ask_chunks c ON c.id = v.chunk \
                 WHERE c.notebook = $1 AND v.model = $2 AND vector_dims(v.data) = $3 \
                 ORDER BY v.data <#> (SELECT $4::text::vector), v.chunk LIMIT $5",
                &[&notebook, &model, &(query.len() as i32), &q, &(limit as i64)],
            )
            .await?;
        Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
    }

    async fn vector_models(&self, notebook: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self
            .query(
                "SELECT v.model, COUNT(*) FROM ask_vectors v JOIN ask_chunks c ON c.id = v.chunk \
                 WHERE c.notebook = $1 GROUP BY v.model ORDER BY COUNT(*) DESC",
                &[&notebook],
            )
            .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64))).collect()
    }

    async fn chunks(&self, notebook: &str, ids: &[i64]) -> Result<Vec<StoredChunk>, StoreError> {
        let rows = self
            .query(
                "SELECT c.id, c.document, d.name, c.page, c.start, c.stop, c.heading, c.text FROM ask_chunks c \
                 JOIN ask_documents d ON d.id = c.document \
                 WHERE c.id = ANY($1) AND c.notebook = $2 AND d.status = 'ready'",
                &[&ids, &notebook],
            )
            .await?;
        let mut found = Vec::with_capacity(rows.len());
        for r in &rows {
            found.push(StoredChunk {
                id: r.try_get(0)?,
                document: r.try_get(1)?,
                name: r.try_get(2)?,
                page: r.try_get::<_, i32>(3)? as u32,
                start: r.try_get::<_, i32>(4)? as u32,
                end: r.try_get::<_, i32>(5)? as u32,
                heading: r.try_get(6)?,
                text: r.try_get(7)?,
            });
        }
        // In the order asked.
        Ok(ids.iter().filter_map(|id| found.iter().find(|c| c.id == *id).cloned()).collect())
    }

    async fn conversation(
        &self,
        owner: &str,
        notebook: &str,
        id: Option<&str>,
    ) -> Result<Option<(String, Vec<Turn>)>, StoreError> {
        let Some(id) = id else {
            let id = new_id("conv");
            self.execute(
                "INSERT INTO ask_conversations (id, notebook, owner, created) VALUES ($1, $2, $3, $4)",
                &[&id, &notebook, &owner, &now()],
            )
            .await?;
            return Ok(Some((id, Vec::new())));
        };
        let found = self
            .query(
                "SELECT id FROM ask_conversations WHERE id = $1 AND owner = $2 AND notebook = $3",
                &[&id, &owner, &notebook],
            )
            .await?;
        let Some(id) = found.first().map(|r| r.try_get::<_, String>(0)).transpose()? else { return Ok(None) };
        let rows = self
            .query(
                "SELECT question, answer, sources, route FROM ask_turns WHERE conversation = $1 ORDER BY seq",
                &[&id],
            )
            .await?;
        let parse = |s: String| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null);
        let mut turns = Vec::with_capacity(rows.len());
        for r in &rows {
            turns.push(Turn {
                question: r.try_get(0)?,
                answer: r.try_get(1)?,
                sources: parse(r.try_get(2)?),
                route: parse(r.try_get(3)?),
            });
        }
        Ok(Some((id, turns)))
    }

    async fn conversation_notebook(&self, owner: &str, id: &str) -> Result<Option<String>, StoreError> {
        let rows = self
            .query("SELECT notebook FROM ask_conversations WHERE id = $1 AND owner = $2", &[&id, &owner])
            .await?;
        Ok(rows.first().map(|r| r.try_get(0)).transpose()?)
    }

    /// Turns of one conversation are numbered one at a time (its row locked): two answers finishing at once, on
    /// two replicas, both keep their turn.
    async fn add_turn(&self, conversation: &str, turn: &Turn) -> Result<(), StoreError> {
        let (question, answer) = (clean(&turn.question), clean(&turn.answer));
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute("SELECT 1 FROM ask_conversations WHERE id = $1 FOR UPDATE", &[&conversation]).await?;
        tx.execute(
            "INSERT INTO ask_turns (conversation, seq, question, answer, sources, route) VALUES \
             ($1, (SELECT COUNT(*) FROM ask_turns WHERE conversation = $1), $2, $3, $4, $5)",
            &[&conversation, &question, &answer, &turn.sources.to_string(), &turn.route.to_string()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_written_as_pgvector_reads_them_and_refused_when_it_would_not() {
        assert_eq!(vector_text(&[1.0, -0.5, 0.1]).unwrap(), "[1,-0.5,0.1]");
        assert!(vector_text(&[1.0, f32::NAN]).is_none());
        assert!(vector_text(&[f32::INFINITY]).is_none());
        assert!(vector_text(&[]).is_none());
        assert_eq!(clean("a\0b"), "ab");
    }

    #[test]
    fn a_bad_url_is_refused_without_being_quoted() {
        let e = Postgres::new("postgresql://u:s3cret@[::1").unwrap_err().to_string();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
