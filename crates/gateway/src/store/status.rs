//! The status store: per-minute history of every series and every incident, in embedded SQLite (a file, or in
//! memory), so that availability over 30 days and the incident history survive a restart.
//!
//! Each process writes its own rows (`writer`, a random id per start): a minute's row is replaced whole each time
//! it is written, never merged, and the readers sum over writers — so a restart in the middle of a minute loses
//! nothing, and replicas sharing a database add up. Used from blocking threads only (the writer task, and the
//! status endpoints after they flush); never from a request's path.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, params};

use super::StoreError;
use crate::record::history::Minute;
use crate::record::incidents::Incident;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS minutes (
        series TEXT NOT NULL,
        minute INTEGER NOT NULL,
        writer TEXT NOT NULL,
        total INTEGER NOT NULL,
        good INTEGER NOT NULL,
        saved INTEGER NOT NULL,
        failures TEXT NOT NULL,
        latency_p50_ms INTEGER, latency_p95_ms INTEGER, latency_p99_ms INTEGER,
        ttft_p50_ms INTEGER, ttft_p95_ms INTEGER, ttft_p99_ms INTEGER,
        tokens_in INTEGER NOT NULL,
        tokens_out INTEGER NOT NULL,
        PRIMARY KEY (series, minute, writer)
    );
    CREATE INDEX IF NOT EXISTS minutes_by_age ON minutes (minute);
    CREATE TABLE IF NOT EXISTS incidents (
        id TEXT PRIMARY KEY,
        target TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS incidents_by_start ON incidents (started_at);
    CREATE INDEX IF NOT EXISTS incidents_by_end ON incidents (ended_at);
";

/// Requests or attempts in a window, and how many succeeded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub good: u64,
    pub saved: u64,
}

/// One bar of an availability chart: a minute or an hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Unix seconds of the bar's start.
    pub start: u64,
    pub counts: Counts,
}

/// Percentiles and tokens of a series over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub ttft_p50_ms: Option<u64>,
    pub ttft_p95_ms: Option<u64>,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

/// One writer's row of one series' minute, as the store keeps it and as the fleet ships it (`shared.rs`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub series: String,
    pub minute: u64,
    pub total: u32,
    pub good: u32,
    pub saved: u32,
    /// By kind label, a JSON object.
    pub failures: String,
    /// p50, p95, p99.
    pub latency_ms: [Option<u64>; 3],
    pub ttft_ms: [Option<u64>; 3],
    pub tokens_in: u64,
    pub tokens_out: u64,
}

impl Row {
    pub fn of(series: &str, m: &Minute) -> Row {
        let failures: serde_json::Map<String, serde_json::Value> =
            m.failures_by_kind().map(|(k, n)| (k.to_owned(), n.into())).collect();
        let q = |h: &crate::record::history::Hist| [0.5, 0.95, 0.99].map(|q| h.quantile_ms(q));
        Row {
            series: series.to_owned(),
            minute: m.minute,
            total: m.total,
            good: m.good,
            saved: m.saved,
            failures: serde_json::Value::Object(failures).to_string(),
            latency_ms: q(&m.latency),
            ttft_ms: q(&m.ttft),
            tokens_in: m.tokens_in,
            tokens_out: m.tokens_out,
        }
    }
}

#[derive(Clone, Debug)]
pub struct StatusStore {
    db: Arc<Mutex<Connection>>,
    writer: String,
}

impl StatusStore {
    pub fn open(path: Option<&Path>) -> Result<StatusStore, StoreError> {
        let shown = path.map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string());
        let open = || -> Result<Connection, rusqlite::Error> {
            let conn = super::connect(path)?;
            if path.is_some() {
                conn.pragma_update(None, "synchronous", "NORMAL")?;
            }
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        };
        let conn = open().map_err(|source| StoreError::Open { path: shown, source })?;
        Ok(StatusStore { db: Arc::new(Mutex::new(conn)), writer: format!("{:016x}", rand::random::<u64>()) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic elsewhere while holding the lock leaves the connection usable: SQLite is transactional.
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This process's writer id (its rows in `minutes`).
    pub fn writer(&self) -> &str {
        &self.writer
    }

    /// Write minutes (each replacing this writer's row for its series and minute) and incidents, in one
    /// transaction; delete what is older than `keep_from` (a Unix minute). The rows written, for the fleet.
    pub fn write(
        &self,
        minutes: &[(String, Minute)],
        incidents: &[Incident],
        keep_from: u64,
    ) -> Result<Vec<Row>, StoreError> {
        let rows: Vec<Row> = minutes.iter().map(|(series, m)| Row::of(series, m)).collect();
        self.write_rows(&self.writer, &rows, incidents, Some(keep_from))?;
        Ok(rows)
    }

    /// Write `writer`'s rows (another replica's, read from the fleet) and incidents, each replacing the row or
    /// incident of the same key: writing the same twice changes nothing.
    pub fn write_rows(
        &self,
        writer: &str,
        rows: &[Row],
        incidents: &[Incident],
        keep_from: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO minutes (series, minute, writer, total, good, saved, failures, \
                 latency_p50_ms, latency_p95_ms, latency_p99_ms, ttft_p50_ms, ttft_p95_ms, ttft_p99_ms, \
                 tokens_in, tokens_out) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?;
            for r in rows {
                let [l50, l95, l99] = r.latency_ms.map(|q| q.map(sql_int));
                let [t50, t95, t99] = r.ttft_ms.map(|q| q.map(sql_int));
                put.execute(params![
                    r.series,
                    sql_int(r.minute),
                    writer,
                    r.total,
                    r.good,
                    r.saved,
                    r.failures,
                    l50,
                    l95,
                    l99,
                    t50,
                    t95,
                    t99,
                    sql_int(r.tokens_in),
                    sql_int(r.tokens_out),
                ])?;
            }
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO incidents (id, target, started_at, ended_at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for i in incidents {
                let body = serde_json::to_string(i).unwrap_or_default();
                put.execute(params![i.id, i.target, sql_int(i.started_at), i.ended_at.map(sql_int), body])?;
            }
            if let Some(keep_from) = keep_from {
                tx.execute("DELETE FROM minutes WHERE minute < ?1", params![sql_int(keep_from)])?;
                tx.execute(
                    "DELETE FROM incidents WHERE ended_at IS NOT NULL AND ended_at < ?1",
                    params![sql_int(keep_from.saturating_mul(60_000))],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Counts of `series` over the minutes `from..until`.
    pub fn counts(&self, series: &str, from: u64, until: u64) -> Result<Counts, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT COALESCE(SUM(total), 0), COALESCE(SUM(good), 0), COALESCE(SUM(saved), 0) FROM minutes \
             WHERE series = ?1 AND minute >= ?2 AND minute < ?3",
        )?;
        let c = q.query_row(params![series, sql_int(from), sql_int(until)], |r| {
            Ok(Counts {
                total: r.get::<_, i64>(0)? as u64,
                good: r.get::<_, i64>(1)? as u64,
                saved: r.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(c)
    }

    /// Bars of `series` over the minutes `from..until`, `width` minutes each (1: per minute, 60: hourly), oldest
    /// first; only bars with data.
    pub fn bars(&self, series: &str, from: u64, until: u64, width: u64) -> Result<Vec<Bar>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT minute / ?3, SUM(total), SUM(good), SUM(saved) FROM minutes WHERE series = ?1 AND minute >= ?2 \
             AND minute < ?4 GROUP BY minute / ?3 ORDER BY 1",
        )?;
        let width = width.max(1);
        let rows = q.query_map(params![series, sql_int(from), sql_int(width), sql_int(until)], |r| {
            Ok(Bar {
                start: r.get::<_, i64>(0)? as u64 * width * 60,
                counts: Counts {
                    total: r.get::<_, i64>(1)? as u64,
                    good: r.get::<_, i64>(2)? as u64,
                    saved: r.get::<_, i64>(3)? as u64,
                },
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Failures of `series` by kind over the minutes `from..until`.
    pub fn failures(&self, series: &str, from: u64, until: u64) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT j.key, SUM(j.value) FROM minutes, json_each(minutes.failures) AS j \
             WHERE series = ?1 AND minute >= ?2 AND minute < ?3 AND failures != '{}' GROUP BY j.key ORDER BY 2 DESC",
        )?;
        let rows = q.query_map(params![series, sql_int(from), sql_int(until)], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Percentiles (p50: the average of the minutes' p50; p95: the worst minute's) and tokens of `series` over the
    /// minutes `from..until`.
    pub fn latency(&self, series: &str, from: u64, until: u64) -> Result<Latency, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT CAST(AVG(latency_p50_ms) AS INTEGER), MAX(latency_p95_ms), CAST(AVG(ttft_p50_ms) AS INTEGER), \
             MAX(ttft_p95_ms), COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0) FROM minutes \
             WHERE series = ?1 AND minute >= ?2 AND minute < ?3",
        )?;
        let l = q.query_row(params![series, sql_int(from), sql_int(until)], |r| {
            let ms = |i| r.get::<_, Option<i64>>(i).map(|v| v.map(|v| v as u64));
            Ok(Latency {
                latency_p50_ms: ms(0)?,
                latency_p95_ms: ms(1)?,
                ttft_p50_ms: ms(2)?,
                ttft_p95_ms: ms(3)?,
                tokens_in: r.get::<_, i64>(4)? as u64,
                tokens_out: r.get::<_, i64>(5)? as u64,
            })
        })?;
        Ok(l)
    }

    /// The most recent incidents (open first, then by start, newest first).
    pub fn incidents(&self, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT body FROM incidents ORDER BY ended_at IS NOT NULL, started_at DESC LIMIT ?1",
        )?;
        let rows =
            q.query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            // A row this version cannot read (written by a newer one) is skipped, not fatal.
            if let Ok(i) = serde_json::from_str::<Incident>(&body?) {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// Incidents still open (when the gateway last stopped, for the trackers to continue).
    pub fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        Ok(self.incidents(10_000)?.into_iter().filter(Incident::is_open).collect())
    }
}

fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(minute: u64, total: u32, good: u32) -> Minute {
        Minute { minute, total, good, ..Minute::default() }
    }

    #[test]
    fn rows_replace_per_writer_and_add_up_across_writers() {
        let dir = std::env::temp_dir().join(format!("nines-status-{:x}.db", rand::random::<u64>()));
        let a = StatusStore::open(Some(&dir)).unwrap();
        a.write(&[("route:chat".into(), minute(10, 2, 1))], &[], 0).unwrap();
        // The same minute written again by the same process: replaced, not added.
        a.write(&[("route:chat".into(), minute(10, 3, 2)), ("route:chat".into(), minute(11, 1, 1))], &[], 0)
            .unwrap();
        let b = StatusStore::open(Some(&dir)).unwrap();
        b.write(&[("route:chat".into(), minute(10, 1, 0))], &[], 0).unwrap();
        assert_eq!(a.counts("route:chat", 10, u64::MAX).unwrap(), Counts { total: 5, good: 3, saved: 0 });
        assert_eq!(b.counts("route:chat", 11, u64::MAX).unwrap().total, 1);
        assert_eq!(b.counts("route:chat", 0, 11).unwrap().total, 4, "until is exclusive");
        assert_eq!(a.counts("route:other", 0, u64::MAX).unwrap(), Counts::default());
        let bars = a.bars("route:chat", 0, u64::MAX, 60).unwrap();
        assert_eq!(bars, vec![Bar { start: 0, counts: Counts { total: 5, good: 3, saved: 0 } }]);
        // Retention.
        a.write(&[], &[], 11).unwrap();
        assert_eq!(a.counts("route:chat", 0, u64::MAX).unwrap().total, 1);
        // Closed first, then every file of it (its write-ahead log and shared memory too).
        drop((a, b));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", dir.display()));
        }
    }
}
