//! Driver leases: which orchestrator replica drives a promotion right now. Correctness never
//! depends on them — every decision is appended with an expected stream version, so two
//! drivers of one promotion only waste work — but they keep replicas from doing the same work
//! twice, and let a replica take over the promotions of one that died.
//!
//! PostgreSQL session advisory locks on one dedicated connection: they vanish with the
//! connection when a replica dies, which is exactly when another should take over. Under
//! `goosectl dev` (one process) an in-process set does the same.

use parking_lot::Mutex;
use sha3::{Digest as _, Sha3_256};
use sqlx::Connection as _;
use std::collections::HashSet;

/// Exclusive, best-effort ownership of keys by this process.
#[async_trait::async_trait]
pub trait Leases: Send + Sync + std::fmt::Debug {
    /// Takes `key` unless another process (or task) holds it.
    async fn try_acquire(&self, key: &str) -> bool;
    async fn release(&self, key: &str);
}

/// Leases within one process.
#[derive(Debug, Default)]
pub struct MemoryLeases(Mutex<HashSet<String>>);

#[async_trait::async_trait]
impl Leases for MemoryLeases {
    async fn try_acquire(&self, key: &str) -> bool {
        self.0.lock().insert(key.to_owned())
    }

    async fn release(&self, key: &str) {
        self.0.lock().remove(key);
    }
}

/// Leases as PostgreSQL session advisory locks.
#[derive(Debug)]
pub struct PgLeases {
    url: String,
    conn: tokio::sync::Mutex<Option<sqlx::PgConnection>>,
    held: Mutex<HashSet<String>>,
}

impl PgLeases {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            conn: tokio::sync::Mutex::new(None),
            held: Mutex::default(),
        }
    }

    /// The advisory lock key: the first 8 bytes of SHA3-256 of a namespaced name.
    fn lock_key(key: &str) -> i64 {
        let d = Sha3_256::digest(format!("goose-orchestrator-lease/{key}").as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        i64::from_be_bytes(b)
    }

    async fn query(&self, sql: &str, key: &str) -> Result<bool, sqlx::Error> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            *guard = Some(sqlx::PgConnection::connect(&self.url).await?);
            // A new session holds nothing: whatever we held went with the old one.
            self.held.lock().clear();
        }
        let Some(conn) = guard.as_mut() else {
            return Ok(false);
        };
        let r: Result<(bool,), sqlx::Error> = sqlx::query_as(sql)
            .bind(Self::lock_key(key))
            .fetch_one(&mut *conn)
            .await;
        match r {
            Ok((b,)) => Ok(b),
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }
}

#[async_trait::async_trait]
impl Leases for PgLeases {
    async fn try_acquire(&self, key: &str) -> bool {
        if self.held.lock().contains(key) {
            return false;
        }
        match self.query("SELECT pg_try_advisory_lock($1)", key).await {
            Ok(true) => {
                self.held.lock().insert(key.to_owned());
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(error = %e, "lease: PostgreSQL unavailable");
                false
            }
        }
    }

    async fn release(&self, key: &str) {
        let held = self.held.lock().remove(key);
        if held {
            if let Err(e) = self.query("SELECT pg_advisory_unlock($1)", key).await {
                tracing::warn!(error = %e, "lease: release failed (it ends with the session)");
            }
        }
    }
}
