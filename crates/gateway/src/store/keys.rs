//! The keys made through the admin API (`/admin/keys`), each a JSON record holding digests of its secrets, never a
//! secret; and the spend of every account (per UTC day and month), so that a restart does not reset a budget.
//! Embedded SQLite: `[auth] store`, or in memory.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, params};

use super::StoreError;
use crate::admit::KeyRecord;
use crate::admit::limits::Spend;

#[derive(Clone, Debug)]
pub struct KeyStore {
    db: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, record TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS spend (
        account TEXT PRIMARY KEY, day INTEGER NOT NULL, day_usd REAL NOT NULL,
        month INTEGER NOT NULL, month_usd REAL NOT NULL
    );
";

impl KeyStore {
    pub fn open(path: Option<&Path>) -> Result<KeyStore, StoreError> {
        let shown = path.map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string());
        let open = || -> Result<Connection, rusqlite::Error> {
            let conn = super::connect(path)?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        };
        let conn = open().map_err(|source| StoreError::Open { path: shown, source })?;
        Ok(KeyStore { db: Arc::new(Mutex::new(conn)) })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        super::blocking(&self.db, f).await
    }

    /// Every stored key (records that no longer parse are skipped: a newer version's, say).
    pub fn load(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let conn = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn.prepare("SELECT record FROM keys ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(rec) = serde_json::from_str::<KeyRecord>(&row?) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    pub async fn put(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let id = record.id.clone();
        let text = serde_json::to_string(record).unwrap_or_default();
        self.with(move |c| {
            c.execute("INSERT OR REPLACE INTO keys (id, record) VALUES (?1, ?2)", params![id, text])
                .map(|_| ())
        })
        .await
    }

    /// Every account's spend, as last written.
    pub fn spend(&self) -> Result<Vec<(String, Spend)>, StoreError> {
        let conn = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn.prepare("SELECT account, day, day_usd, month, month_usd FROM spend")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Spend {
                    day: r.get(1)?,
                    day_usd: r.get(2)?,
                    month: r.get(3)?,
                    month_usd: r.get(4)?,
                    reserved: 0.0,
                    here_day_usd: 0.0,
                    here_month_usd: 0.0,
                },
            ))
        })?;
        Ok(rows.filter_map(Result::ok).collect())
    }

    pub async fn write_spend(&self, spend: Vec<(String, Spend)>) -> Result<(), StoreError> {
        self.with(move |c| {
            let tx = c.unchecked_transaction()?;
            for (account, s) in spend {
                tx.execute(
                    "INSERT OR REPLACE INTO spend (account, day, day_usd, month, month_usd) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![account, s.day, s.day_usd, s.month, s.month_usd],
                )?;
            }
            tx.commit()
        })
        .await
    }
}
