//! The embedded SQLite backend: what `goosectl dev` runs on. One file, WAL mode, fully synced.

use crate::event::{AppendReceipt, StreamId};
use crate::merkle::Frontier;
use crate::seal::Sealer;
use crate::sequencer::{self, AppendRequest, ExistingEvent, Head};
use crate::store::{head_from_rows, raise_size, Backend, StoredCheckpoint, StoredRow};
use crate::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Leadership of the process that owns an embedded ledger: always held.
#[derive(Debug)]
struct SoleProcess;

#[async_trait::async_trait]
impl crate::store::Leadership for SoleProcess {
    async fn still_leads(&mut self) -> bool {
        true
    }
}

/// Ledger storage in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    pool: SqlitePool,
}

fn pos(v: u64) -> i64 {
    v as i64
}

fn to_u64(v: i64) -> u64 {
    v.max(0) as u64
}

impl SqliteBackend {
    /// Opens (creating if needed) the database file and applies the embedded migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn row_of(r: &sqlx::sqlite::SqliteRow) -> Result<StoredRow> {
    Ok(StoredRow {
        position: to_u64(r.try_get("position")?),
        record: r.try_get("record")?,
        digest: r.try_get("digest")?,
        subtrees: r.try_get("subtrees")?,
        seal: r.try_get("seal")?,
    })
}

fn cp_of(r: &sqlx::sqlite::SqliteRow) -> Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        id: r.try_get("id")?,
        size: to_u64(r.try_get("tree_size")?),
        root: r.try_get("root")?,
        note: r.try_get("note")?,
    })
}

const ROW_COLUMNS: &str = "position, record, digest, subtrees, seal";

#[async_trait::async_trait]
impl Backend for SqliteBackend {
    async fn commit_group(
        &self,
        requests: &[AppendRequest],
        cache: &mut Option<Head>,
        sealer: &Sealer,
    ) -> Result<Vec<Result<AppendReceipt>>> {
        // IMMEDIATE takes the write lock up front, so the head read below cannot go stale.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let head_row = sqlx::query("SELECT size, last_digest FROM ledger_head")
            .fetch_one(&mut *tx)
            .await?;
        let size = to_u64(head_row.try_get("size")?);
        let last_digest: Vec<u8> = head_row.try_get("last_digest")?;
        let fresh = matches!(cache, Some(h) if h.frontier.size() == size && h.last_digest[..] == last_digest[..]);
        if !fresh {
            let mut rows = Vec::new();
            for node in Frontier::plan(size) {
                let r = sqlx::query(&format!(
                    "SELECT {ROW_COLUMNS} FROM ledger_events WHERE position = ?"
                ))
                .bind(pos(node.row()))
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(r) = r {
                    rows.push(row_of(&r)?);
                }
            }
            *cache = Some(head_from_rows(size, last_digest, &rows)?);
        }
        let Some(head) = cache.as_mut() else {
            return Err(Error::Unavailable("no head state".into()));
        };

        let mut existing = HashMap::new();
        for ev in requests.iter().flat_map(|r| &r.events) {
            let found = sqlx::query(
                "SELECT position, aggregate_type, aggregate_id, version FROM ledger_events WHERE event_id = ?",
            )
            .bind(ev.event_id.as_bytes().as_slice())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(r) = found {
                existing.insert(
                    ev.event_id,
                    ExistingEvent {
                        position: to_u64(r.try_get("position")?),
                        stream: StreamId::new(
                            r.try_get::<String, _>("aggregate_type")?,
                            r.try_get::<String, _>("aggregate_id")?,
                        )?,
                        version: to_u64(r.try_get("version")?),
                    },
                );
            }
        }
        let mut versions = HashMap::new();
        for req in requests {
            if versions.contains_key(&req.stream) {
                continue;
            }
            let v: Option<i64> = sqlx::query_scalar(
                "SELECT max(version) FROM ledger_events WHERE aggregate_type = ? AND aggregate_id = ?",
            )
            .bind(req.stream.aggregate_type())
            .bind(req.stream.aggregate_id())
            .fetch_one(&mut *tx)
            .await?;
            if let Some(v) = v {
                versions.insert(req.stream.clone(), to_u64(v));
            }
        }

        let before = head.clone();
        let (mut rows, outcomes) = sequencer::plan_group(head, &versions, &existing, requests);
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(outcomes);
        }
        let result: Result<()> = async {
            sequencer::seal_rows(&mut rows, head, sealer)?;
            for r in &rows {
                sqlx::query(
                    "INSERT INTO ledger_events \
                     (position, event_id, aggregate_type, aggregate_id, version, event_type, record, digest, subtrees, seal) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(pos(r.position))
                .bind(r.event_id.as_bytes().as_slice())
                .bind(r.stream.aggregate_type())
                .bind(r.stream.aggregate_id())
                .bind(pos(r.version))
                .bind(&r.event_type)
                .bind(&r.record)
                .bind(&r.digest[..])
                .bind(&r.subtrees)
                .bind(&r.seal)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE ledger_head SET size = ?, last_digest = ?")
                .bind(pos(head.frontier.size()))
                .bind(&head.last_digest[..])
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                tx.commit().await?;
                Ok(outcomes)
            }
            Err(e) => {
                *head = before;
                Err(e)
            }
        }
    }

    async fn size(&self) -> Result<u64> {
        let size: i64 = sqlx::query_scalar("SELECT size FROM ledger_head")
            .fetch_one(&self.pool)
            .await?;
        Ok(to_u64(size))
    }

    async fn read_rows(&self, from: u64, limit: u32) -> Result<Vec<StoredRow>> {
        sqlx::query(&format!(
            "SELECT {ROW_COLUMNS} FROM ledger_events WHERE position >= ? ORDER BY position LIMIT ?"
        ))
        .bind(pos(from))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(row_of)
        .collect()
    }

    async fn read_stream_rows(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: u32,
    ) -> Result<Vec<StoredRow>> {
        sqlx::query(&format!(
            "SELECT {ROW_COLUMNS} FROM ledger_events \
             WHERE aggregate_type = ? AND aggregate_id = ? AND version >= ? ORDER BY version LIMIT ?"
        ))
        .bind(stream.aggregate_type())
        .bind(stream.aggregate_id())
        .bind(pos(from_version))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(row_of)
        .collect()
    }

    async fn rows_at(&self, positions: &[u64]) -> Result<Vec<StoredRow>> {
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::with_capacity(positions.len());
        for p in positions {
            let r = sqlx::query(
                "SELECT position, x'' AS record, digest, subtrees, NULL AS seal FROM ledger_events WHERE position = ?",
            )
            .bind(pos(*p))
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(r) = r {
                out.push(row_of(&r)?);
            }
        }
        Ok(out)
    }

    async fn find_event(&self, event_id: Uuid) -> Result<Option<StoredRow>> {
        sqlx::query(&format!(
            "SELECT {ROW_COLUMNS} FROM ledger_events WHERE event_id = ?"
        ))
        .bind(event_id.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(row_of)
        .transpose()
    }

    async fn insert_checkpoint(&self, size: u64, root: &[u8], note: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO ledger_checkpoints (tree_size, root, note) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(pos(size))
        .bind(root)
        .bind(note)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        sqlx::query(
            "SELECT id, tree_size, root, note FROM ledger_checkpoints ORDER BY tree_size, id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(cp_of)
        .collect()
    }

    async fn checkpoints_from(&self, min_size: u64, limit: u32) -> Result<Vec<StoredCheckpoint>> {
        sqlx::query(
            "SELECT id, tree_size, root, note FROM ledger_checkpoints WHERE tree_size >= ? \
             ORDER BY tree_size DESC, id DESC LIMIT ?",
        )
        .bind(pos(min_size))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(cp_of)
        .collect()
    }

    async fn seal_at_or_after(&self, position: u64) -> Result<Option<(u64, String)>> {
        let row = sqlx::query(
            "SELECT position, seal FROM ledger_events WHERE position >= ? AND seal IS NOT NULL \
             ORDER BY position LIMIT 1",
        )
        .bind(pos(position))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((to_u64(r.try_get("position")?), r.try_get("seal")?)))
            .transpose()
    }

    async fn load_cursor(&self, name: &str) -> Result<Option<u64>> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT next_position FROM ledger_cursors WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.map(to_u64))
    }

    async fn store_cursor(&self, name: &str, next_position: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO ledger_cursors (name, next_position) VALUES (?, ?) \
             ON CONFLICT (name) DO UPDATE SET next_position = max(next_position, excluded.next_position)",
        )
        .bind(name)
        .bind(pos(next_position))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn try_lead(&self, _name: &str) -> Result<Option<Box<dyn crate::store::Leadership>>> {
        // An embedded ledger belongs to the one process that serves it (`goosectl dev`).
        Ok(Some(Box::new(SoleProcess)))
    }

    async fn watch_commits(&self, sender: watch::Sender<u64>) {
        // Only this process writes an embedded ledger in normal use; a slow poll covers a
        // second process (goosectl checkpoint) without busy-waiting.
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if sender.is_closed() {
                return;
            }
            if let Ok(size) = self.size().await {
                raise_size(&sender, size);
            }
        }
    }
}
