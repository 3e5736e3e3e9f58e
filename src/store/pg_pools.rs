//! PostgreSQL connection pools: the primary, and an optional streaming
//! replica for reads.
//!
//! Reads take a connection from the replica while it is reachable. When the
//! replica cannot hand out a connection, reads go to the primary for
//! [`REPLICA_RETRY`], then the replica is tried again. The pool checks each
//! connection before handing it out, so a replica that went away is noticed
//! when a connection is acquired, not halfway through a query.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

use crate::error::Result;
use crate::metrics::{self, PoolStats};

/// How long reads stay on the primary after the replica failed.
pub const REPLICA_RETRY: Duration = Duration::from_secs(5);

/// A read replica and its health.
#[derive(Debug)]
pub struct Replica {
    pool: PgPool,
    /// Until when reads skip the replica.
    down_until: Mutex<Option<Instant>>,
    /// Whether the last attempt failed, so recovery is logged once.
    down: AtomicBool,
}

impl Replica {
    /// Wraps the pool of a read replica.
    pub fn new(pool: PgPool) -> Self {
        Replica {
            pool,
            down_until: Mutex::new(None),
            down: AtomicBool::new(false),
        }
    }

    fn is_skipped(&self) -> bool {
        let down_until = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        down_until.is_some_and(|until| Instant::now() < until)
    }

    fn mark_down(&self, error: &sqlx::Error) {
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + REPLICA_RETRY);
        if !self.down.swap(true, Ordering::SeqCst) {
            tracing::warn!(error = %error, retry_after_s = REPLICA_RETRY.as_secs(),
                "read replica unavailable: reading from the primary");
        }
    }

    fn mark_up(&self) {
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if self.down.swap(false, Ordering::SeqCst) {
            tracing::info!("read replica reachable again: reads go to it");
        }
    }

    /// Checks the replica with a query, and records the outcome.
    pub async fn ping(&self) -> bool {
        match sqlx::query("SELECT 1").execute(&self.pool).await {
            Ok(_) => {
                self.mark_up();
                true
            }
            Err(e) => {
                self.mark_down(&e);
                false
            }
        }
    }
}

/// The pools of one PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgPools {
    /// The primary: every write, and reads that must see the latest writes.
    pub primary: PgPool,
    /// The read replica, when one is configured.
    pub replica: Option<std::sync::Arc<Replica>>,
}

impl PgPools {
    /// Acquires a primary connection, timing the wait.
    pub async fn write(&self) -> Result<PoolConnection<Postgres>> {
        let started = Instant::now();
        let connection = self.primary.acquire().await?;
        metrics::record_acquire("primary", started);
        Ok(connection)
    }

    /// Acquires a connection for a read: from the replica while it is
    /// reachable, else from the primary.
    pub async fn read(&self) -> Result<PoolConnection<Postgres>> {
        if let Some(replica) = self.replica.as_ref().filter(|r| !r.is_skipped()) {
            let started = Instant::now();
            match replica.pool.acquire().await {
                Ok(connection) => {
                    metrics::record_acquire("replica", started);
                    replica.mark_up();
                    return Ok(connection);
                }
                Err(e) => replica.mark_down(&e),
            }
        }
        self.write().await
    }

    /// Connection counts of each pool, for `/metrics`.
    pub fn stats(&self) -> Vec<PoolStats> {
        let mut stats = vec![PoolStats::of("primary", &self.primary)];
        if let Some(replica) = &self.replica {
            stats.push(PoolStats::of("replica", &replica.pool));
        }
        stats
    }
}
