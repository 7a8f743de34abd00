//! The store of the Responses API: each stored response (as the client received it) with its conversation (every
//! input item so far plus the response's output items, in Responses item form), so that `previous_response_id`
//! continues a conversation on whichever target serves the next turn.
//!
//! Embedded SQLite (a file, or in memory), used from blocking threads; bounded by age and by count. The caller
//! passes the clock (`now`, Unix seconds), so retention is tested without waiting.

pub mod keys;
pub mod status;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::config::ResponsesConfig;

/// An embedded database: a file (write-ahead log, waiting up to 5 s for another writer: replicas and restarts may
/// share it) or, without a path, memory.
pub(crate) fn connect(path: Option<&Path>) -> Result<Connection, rusqlite::Error> {
    let conn = match path {
        Some(p) => Connection::open(p)?,
        None => Connection::open_in_memory()?,
    };
    conn.busy_timeout(Duration::from_secs(5))?;
    if path.is_some() {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    Ok(conn)
}

/// Run `f` on a shared connection in a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    db: &Arc<Mutex<Connection>>,
    f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
) -> Result<T, StoreError> {
    let db = db.clone();
    let result = tokio::task::spawn_blocking(move || {
        // A panic elsewhere while holding the lock leaves the connection usable: SQLite is transactional.
        let conn: MutexGuard<'_, Connection> = db.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    })
    .await?;
    Ok(result?)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the responses store at {path}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("responses store query failed")]
    Query(#[from] rusqlite::Error),
    #[error("responses store task failed")]
    Join(#[from] tokio::task::JoinError),
    /// The fleet's store did not answer, and this replica has no copy: unknown is not the same as gone.
    #[error("the fleet's responses store (Redis) did not answer")]
    Unavailable,
}

/// One stored response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The Response object, as the client received it (JSON).
    pub response: Vec<u8>,
    /// The conversation up to and including this response's output: a JSON array of Responses input items.
    pub conversation: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct ResponseStore {
    db: Arc<Mutex<Connection>>,
    retention: Duration,
    max_responses: u64,
    max_bytes: u64,
    /// Bytes of responses and conversations kept (kept up to date by every put and delete).
    bytes: Arc<std::sync::atomic::AtomicU64>,
    /// The fleet's store (Redis), when shared: tried first; this one holds what was kept while Redis was away.
    shared: Option<Arc<crate::shared::Shared>>,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS responses (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        response BLOB NOT NULL,
        conversation BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS responses_by_age ON responses (created_at);
";

impl ResponseStore {
    pub fn open(cfg: &ResponsesConfig) -> Result<ResponseStore, StoreError> {
        let shown = cfg.path.as_deref().map(Path::display).map(|p| p.to_string());
        let shown = shown.unwrap_or_else(|| ":memory:".to_owned());
        let open = || -> Result<(Connection, i64), rusqlite::Error> {
            let conn = connect(cfg.path.as_deref())?;
            conn.execute_batch(SCHEMA)?;
            // Stores made before responses had owners: theirs is "" (an open gateway's), so no key sees them.
            let has_owner = conn
                .prepare("SELECT 1 FROM pragma_table_info('responses') WHERE name = 'owner'")?
                .exists([])?;
            if !has_owner {
                conn.execute_batch("ALTER TABLE responses ADD COLUMN owner TEXT NOT NULL DEFAULT ''")?;
            }
            let has_size = conn
                .prepare("SELECT 1 FROM pragma_table_info('responses') WHERE name = 'size'")?
                .exists([])?;
            if !has_size {
                conn.execute_batch(
                    "ALTER TABLE responses ADD COLUMN size INTEGER NOT NULL DEFAULT 0; \
                     UPDATE responses SET size = length(response) + length(conversation);",
                )?;
            }
            let bytes: i64 =
                conn.query_row("SELECT COALESCE(SUM(size), 0) FROM responses", [], |r| r.get(0))?;
            Ok((conn, bytes))
        };
        let (conn, bytes) = open().map_err(|source| StoreError::Open { path: shown, source })?;
        Ok(ResponseStore {
            db: Arc::new(Mutex::new(conn)),
            retention: cfg.retention,
            max_responses: cfg.max_responses,
            max_bytes: cfg.max_bytes,
            bytes: Arc::new(std::sync::atomic::AtomicU64::new(u64::try_from(bytes).unwrap_or(0))),
            shared: None,
        })
    }

    fn oldest_kept(&self, now: u64) -> i64 {
        i64::try_from(now.saturating_sub(self.retention.as_secs())).unwrap_or(i64::MAX)
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        blocking(&self.db, f).await
    }

    /// Keep a response for `owner` (the key that made it: `Caller::owner`); drop what is past retention and the
    /// oldest beyond the count and byte limits.
    /// Keep responses in the fleet's Redis first (a conversation then continues on any replica).
    pub fn with_shared(mut self, shared: Option<Arc<crate::shared::Shared>>) -> ResponseStore {
        self.shared = shared;
        self
    }

    pub async fn put(&self, id: String, owner: String, stored: Stored, now: u64) -> Result<(), StoreError> {
        if let Some(s) = &self.shared
            && s.put_response(&id, &owner, &stored, self.retention).await.is_some()
        {
            return Ok(());
        }
        self.put_local(id, owner, stored, now).await
    }

    async fn put_local(&self, id: String, owner: String, stored: Stored, now: u64) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let oldest = self.oldest_kept(now);
        let max = i64::try_from(self.max_responses).unwrap_or(i64::MAX);
        let max_bytes = self.max_bytes;
        let created = i64::try_from(now).unwrap_or(i64::MAX);
        let size = (stored.response.len() + stored.conversation.len()) as u64;
        let bytes = self.bytes.clone();
        self.with(move |c| {
            // One transaction: a failure part-way changes neither the rows nor the count.
            let tx = c.unchecked_transaction()?;
            let c = &*tx;
            let freed = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u64, rusqlite::Error> {
                let mut stmt = c.prepare_cached(sql)?;
                let sizes = stmt.query_map(p, |r| r.get::<_, i64>(0))?;
                let mut n = 0u64;
                for s in sizes {
                    n += u64::try_from(s?).unwrap_or(0);
                }
                Ok(n)
            };
            let replaced = freed("DELETE FROM responses WHERE id = ?1 RETURNING size", &[&id])?;
            c.execute(
                "INSERT INTO responses (id, created_at, response, conversation, owner, size) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, created, stored.response, stored.conversation, owner, i64::try_from(size).unwrap_or(i64::MAX)],
            )?;
            let mut gone = replaced;
            gone += freed("DELETE FROM responses WHERE created_at < ?1 RETURNING size", &[&oldest])?;
            gone += freed(
                "DELETE FROM responses WHERE id IN (SELECT id FROM responses ORDER BY created_at DESC, rowid DESC \
                 LIMIT -1 OFFSET ?1) RETURNING size",
                &[&max],
            )?;
            // Every change to the count happens here or in `delete`, under the connection's lock.
            let mut total = (bytes.load(Ordering::Acquire) + size).saturating_sub(gone);
            if total > max_bytes {
                // The newest first, as long as they fit (the one just kept always does, if it alone fits).
                total = total.saturating_sub(freed(
                    "DELETE FROM responses WHERE id IN (SELECT id FROM (SELECT id, SUM(size) OVER \
                     (ORDER BY created_at DESC, rowid DESC) AS running FROM responses) WHERE running > ?1) \
                     RETURNING size",
                    &[&i64::try_from(max_bytes).unwrap_or(i64::MAX)],
                )?);
            }
            tx.commit()?;
            bytes.store(total, Ordering::Release);
            Ok(())
        })
        .await
    }

    /// Bytes of responses and conversations kept.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A stored response of `owner`'s, unless unknown, expired or another's (all three look the same).
    /// A stored response of `owner`'s (`None`: anyone's, for the admin), unless unknown, expired or another's (all
    /// three look the same): from the fleet's Redis, else this replica's own store.
    pub async fn get(
        &self,
        id: String,
        owner: Option<String>,
        now: u64,
    ) -> Result<Option<Stored>, StoreError> {
        let Some(s) = &self.shared else { return self.get_local(id, owner, now).await };
        match s.get_response(&id).await {
            Some(Some((by, stored))) => Ok(owner.is_none_or(|o| o == by).then_some(stored)),
            Some(None) => self.get_local(id, owner, now).await,
            // Redis did not answer: this replica's copy (kept while Redis was away), else "unavailable" rather
            // than a 404 for a conversation that may well exist.
            None => match self.get_local(id, owner, now).await? {
                Some(found) => Ok(Some(found)),
                None => Err(StoreError::Unavailable),
            },
        }
    }

    async fn get_local(
        &self,
        id: String,
        owner: Option<String>,
        now: u64,
    ) -> Result<Option<Stored>, StoreError> {
        let oldest = self.oldest_kept(now);
        self.with(move |c| {
            c.query_row(
                "SELECT response, conversation FROM responses WHERE id = ?1 AND created_at >= ?2 \
                 AND (?3 IS NULL OR owner = ?3)",
                params![id, oldest, owner],
                |row| Ok(Stored { response: row.get(0)?, conversation: row.get(1)? }),
            )
            .optional()
        })
        .await
    }

    /// Forget a response of `owner`'s; whether it was there (and not expired, and `owner`'s).
    pub async fn delete(&self, id: String, owner: Option<String>, now: u64) -> Result<bool, StoreError> {
        let mut gone = false;
        if let Some(s) = &self.shared {
            match s.get_response(&id).await {
                Some(Some((by, _))) if owner.as_ref().is_none_or(|o| *o == by) => {
                    gone = s.delete_response(&id).await.ok_or(StoreError::Unavailable)?;
                }
                Some(_) => {}
                // Not known to be gone from the fleet: refused rather than half done.
                None => return Err(StoreError::Unavailable),
            }
        }
        Ok(self.delete_local(id, owner, now).await? || gone)
    }

    async fn delete_local(&self, id: String, owner: Option<String>, now: u64) -> Result<bool, StoreError> {
        let oldest = self.oldest_kept(now);
        let bytes = self.bytes.clone();
        self.with(move |c| {
            let size: Option<i64> = c
                .query_row(
                    "DELETE FROM responses WHERE id = ?1 AND created_at >= ?2 AND (?3 IS NULL OR owner = ?3) \
                     RETURNING size",
                    params![id, oldest, owner],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(size) = size {
                let size = u64::try_from(size).unwrap_or(0);
                let now = bytes.load(std::sync::atomic::Ordering::Acquire);
                bytes.fetch_sub(size.min(now), std::sync::atomic::Ordering::AcqRel);
            }
            Ok(size.is_some())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(tag: &str) -> Stored {
        Stored { response: format!("{{\"id\":\"{tag}\"}}").into_bytes(), conversation: b"[]".to_vec() }
    }

    fn store(max: u64) -> ResponseStore {
        let cfg = ResponsesConfig {
            path: None,
            retention: Duration::from_secs(100),
            max_responses: max,
            max_bytes: 1 << 30,
        };
        ResponseStore::open(&cfg).unwrap()
    }

    #[tokio::test]
    async fn responses_are_kept_fetched_and_deleted() {
        let s = store(10);
        s.put("r1".into(), "a".into(), stored("r1"), 1000).await.unwrap();
        assert_eq!(s.get("r1".into(), Some("a".into()), 1000).await.unwrap(), Some(stored("r1")));
        assert_eq!(s.get("r2".into(), Some("a".into()), 1000).await.unwrap(), None);
        assert!(s.delete("r1".into(), Some("a".into()), 1000).await.unwrap());
        assert!(!s.delete("r1".into(), Some("a".into()), 1000).await.unwrap());
        assert_eq!(s.get("r1".into(), Some("a".into()), 1000).await.unwrap(), None);
        // Another key's response looks unknown: not readable, not deletable.
        s.put("r3".into(), "a".into(), stored("r3"), 1000).await.unwrap();
        assert_eq!(s.get("r3".into(), Some("b".into()), 1000).await.unwrap(), None);
        assert!(!s.delete("r3".into(), Some("b".into()), 1000).await.unwrap());
        assert!(s.get("r3".into(), Some("a".into()), 1000).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn retention_bounds_age_and_count() {
        let s = store(2);
        s.put("old".into(), "a".into(), stored("old"), 1000).await.unwrap();
        assert!(s.get("old".into(), Some("a".into()), 1100).await.unwrap().is_some());
        assert_eq!(s.get("old".into(), Some("a".into()), 1101).await.unwrap(), None, "past retention");
        s.put("a".into(), "a".into(), stored("a"), 2000).await.unwrap();
        s.put("b".into(), "a".into(), stored("b"), 2001).await.unwrap();
        s.put("c".into(), "a".into(), stored("c"), 2002).await.unwrap();
        assert_eq!(s.get("a".into(), Some("a".into()), 2002).await.unwrap(), None, "beyond the count limit");
        assert!(s.get("b".into(), Some("a".into()), 2002).await.unwrap().is_some());
        assert!(s.get("c".into(), Some("a".into()), 2002).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn bytes_are_bounded_too_the_oldest_going_first() {
        let cfg = ResponsesConfig {
            path: None,
            retention: Duration::from_secs(100),
            max_responses: 1000,
            max_bytes: 3000,
        };
        let s = ResponseStore::open(&cfg).unwrap();
        let big = |tag: &str| Stored { response: vec![b'x'; 900], conversation: tag.as_bytes().to_vec() };
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            s.put((*id).into(), "o".into(), big(id), 10 + i as u64).await.unwrap();
        }
        assert!(s.bytes() <= 3000, "{}", s.bytes());
        assert_eq!(s.get("a".into(), None, 20).await.unwrap(), None, "the oldest went");
        assert!(s.get("d".into(), None, 20).await.unwrap().is_some());
        assert!(s.delete("d".into(), Some("o".into()), 20).await.unwrap());
        assert_eq!(s.bytes(), 2 * 901);
    }

    #[tokio::test]
    async fn a_file_store_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("nines-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = ResponsesConfig {
            path: Some(dir.join("r.sqlite3")),
            retention: Duration::from_secs(100),
            max_responses: 10,
            max_bytes: 1 << 30,
        };
        ResponseStore::open(&cfg).unwrap().put("r".into(), "a".into(), stored("r"), 5).await.unwrap();
        let again = ResponseStore::open(&cfg).unwrap();
        assert_eq!(again.get("r".into(), Some("a".into()), 5).await.unwrap(), Some(stored("r")));
        let bad = ResponsesConfig { path: Some(dir.join("no/such/dir/r.sqlite3")), ..cfg };
        assert!(matches!(ResponseStore::open(&bad), Err(StoreError::Open { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_store_from_before_owners_gets_the_column_and_keeps_its_rows_from_every_key() {
        let dir = std::env::temp_dir().join(format!("nines-store-old-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.sqlite3");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE responses (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, response BLOB NOT NULL, \
             conversation BLOB NOT NULL); INSERT INTO responses VALUES ('r', 5, x'7b7d', x'5b5d');",
        )
        .unwrap();
        drop(old);
        let cfg = ResponsesConfig {
            path: Some(path),
            retention: Duration::from_secs(100),
            max_responses: 10,
            max_bytes: 1 << 30,
        };
        let s = ResponseStore::open(&cfg).unwrap();
        assert_eq!(s.get("r".into(), Some("a-key".into()), 5).await.unwrap(), None, "no key owns an old row");
        assert!(s.get("r".into(), Some(String::new()), 5).await.unwrap().is_some(), "an open gateway's");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
