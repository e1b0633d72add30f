//! Leases: how several daemons on one database share the work without doing it twice.
//!
//! A daemon takes a due source by writing itself into `lease_owner` with an expiry in
//! `lease_until`, in one statement; on PostgreSQL the candidates are picked `FOR UPDATE SKIP
//! LOCKED`, so two daemons leasing at the same instant take disjoint sets instead of queueing on
//! the same rows. When the refresh is stored, the lease is released and `next_run` (set by the
//! refresh) keeps the source from being due again this period. A daemon that dies keeps its leases
//! only until they expire; then any other daemon takes the sources over. SQLite runs the same
//! statement without `SKIP LOCKED` (a write there is serialised anyway).
//!
//! Pending digest runs are claimed the same way before sending, so two daemons never hand the same
//! message to the mail server at once; the unique (digest, period_end) row already prevents two
//! runs for one period.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Context, Db, StoreError};

const LEASE_PG: &str = "UPDATE sources SET lease_owner = $1, lease_until = $2 WHERE id IN (\
    SELECT id FROM sources WHERE id = ANY($3) AND (next_run IS NULL OR next_run <= $4) \
    AND (lease_until IS NULL OR lease_until <= $4) \
    ORDER BY next_run IS NOT NULL, next_run, id LIMIT $5 FOR UPDATE SKIP LOCKED) RETURNING id";

const LEASE_SQLITE: &str = "UPDATE sources SET lease_owner = $1, lease_until = $2 WHERE id IN (\
    SELECT id FROM sources WHERE id IN (SELECT value FROM json_each($3)) \
    AND (next_run IS NULL OR next_run <= $4) AND (lease_until IS NULL OR lease_until <= $4) \
    ORDER BY next_run IS NOT NULL, next_run, id LIMIT $5) RETURNING id";

const NEXT_DUE_PG: &str = "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > $2 \
    THEN lease_until ELSE COALESCE(next_run, $2) END) AS due FROM sources WHERE id = ANY($1)";

const NEXT_DUE_SQLITE: &str = "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > $2 \
    THEN lease_until ELSE COALESCE(next_run, $2) END) AS due FROM sources \
    WHERE id IN (SELECT value FROM json_each($1))";

impl Db {
    /// Leases up to `limit` of the sources `ids` that are due at `now` and not leased by a live
    /// daemon, until `until`. Returns the ids leased, most overdue first.
    pub async fn lease_due_sources(
        &self,
        owner: &str,
        ids: &[String],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        if limit == 0 || ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = match self {
            Db::Pg(pool) => sqlx::query(LEASE_PG)
                .bind(owner)
                .bind(until)
                .bind(ids)
                .bind(now)
                .bind(limit as i64)
                .fetch_all(pool)
                .await
                .context("leasing due sources")?
                .iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<Result<Vec<_>, _>>(),
            Db::Sqlite(pool) => sqlx::query(LEASE_SQLITE)
                .bind(owner)
                .bind(until)
                .bind(json_ids(ids)?)
                .bind(now)
                .bind(limit as i64)
                .fetch_all(pool)
                .await
                .context("leasing due sources")?
                .iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<Result<Vec<_>, _>>(),
        };
        rows.context("decoding leased sources")
    }

    /// When the earliest of `ids` becomes due (or its lease expires); `None` without sources.
    pub async fn next_source_due(
        &self,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        if ids.is_empty() {
            return Ok(None);
        }
        match self {
            Db::Pg(pool) => sqlx::query(NEXT_DUE_PG)
                .bind(ids)
                .bind(now)
                .fetch_one(pool)
                .await
                .context("reading the next due source")?
                .try_get::<Option<DateTime<Utc>>, _>("due")
                .context("decoding the next due source"),
            Db::Sqlite(pool) => {
                // SQLite's MIN over a CASE yields text; read it as text and parse.
                let due: Option<String> = sqlx::query(NEXT_DUE_SQLITE)
                    .bind(json_ids(ids)?)
                    .bind(now)
                    .fetch_one(pool)
                    .await
                    .context("reading the next due source")?
                    .try_get("due")
                    .context("decoding the next due source")?;
                due.map(|t| {
                    DateTime::parse_from_rfc3339(&t)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|e| StoreError::Corrupt {
                            context: "next due source",
                            message: format!("{t}: {e}"),
                        })
                })
                .transpose()
            }
        }
    }

    /// Gives a source back after its refresh. If the refresh could not store its own `next_run`
    /// (a database error), `next_run` becomes `fallback_next` so the source is not retried at once.
    pub async fn release_source(
        &self,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        fallback_next: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE sources SET lease_owner = NULL, lease_until = NULL, \
            next_run = CASE WHEN next_run IS NULL OR next_run <= $3 THEN $4 ELSE next_run END \
            WHERE id = $1 AND lease_owner = $2";
        super::with_db!(self, pool => {
            sqlx::query(SQL)
                .bind(id)
                .bind(owner)
                .bind(now)
                .bind(fallback_next)
                .execute(pool)
                .await
                .context("releasing a source lease")?;
            Ok(())
        })
    }

    /// Claims a pending digest run for sending until `until`; false when another daemon holds it
    /// or it was sent meanwhile.
    pub async fn claim_digest_run(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE digest_runs SET lease_owner = $2, lease_until = $3 \
            WHERE id = $1 AND state = 'pending' AND (lease_until IS NULL OR lease_until <= $4 OR lease_owner = $2)";
        super::with_db!(self, pool => {
            let done = sqlx::query(SQL)
                .bind(id)
                .bind(owner)
                .bind(until)
                .bind(now)
                .execute(pool)
                .await
                .context("claiming a digest run")?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Gives a digest run back after an attempt (its state or `next_attempt` now says what's next).
    pub async fn release_digest_run(&self, id: i64, owner: &str) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE digest_runs SET lease_owner = NULL, lease_until = NULL             WHERE id = $1 AND lease_owner = $2";
        super::with_db!(self, pool => {
            sqlx::query(SQL)
                .bind(id)
                .bind(owner)
                .execute(pool)
                .await
                .context("releasing a digest run")?;
            Ok(())
        })
    }
}

fn json_ids(ids: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(ids).map_err(|e| StoreError::Corrupt {
        context: "encoding source ids",
        message: e.to_string(),
    })
}

/// A name for this process in lease columns: host, pid and start time, unique across restarts.
pub fn lease_owner_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".to_string());
        let started = Utc::now().timestamp_micros();
        format!("{host}:{}:{started}", std::process::id())
    })
    .clone()
}
