//! Leases: how several daemons on one database share the work without doing it twice.
//!
//! A daemon takes a due source by writing itself into `lease_owner` with an expiry in
//! `lease_until`, in one statement; on PostgreSQL the candidates are picked `FOR UPDATE SKIP
//! LOCKED`, so two daemons leasing at the same instant take disjoint sets instead of queueing on
//! the same rows. When the refresh is stored, the lease is released and `next_run` (set by the
//! refresh) keeps the source from being due again this period. A daemon that dies keeps its leases
//! only until they expire; then any other daemon takes the sources over. A daemon starting on the
//! same host frees them at once, since it can tell the holder's process is gone. SQLite runs the same
//! statement without `SKIP LOCKED` (a write there is serialised anyway).
//!
//! Pending digest runs are claimed the same way before sending, so two daemons never hand the same
//! message to the mail server at once; the unique (digest, period_end) row already prevents two
//! runs for one period.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::queries::source_state_from;
use super::{Context, Db, SourceState, StoreError};

const LEASE_PG: &str = "UPDATE sources SET lease_owner = $1, lease_until = $2 WHERE id IN (\
    SELECT id FROM sources WHERE id = ANY($3) AND (next_run IS NULL OR next_run <= $4) \
    AND (lease_until IS NULL OR lease_until <= $4) \
    ORDER BY next_run IS NOT NULL, next_run, id LIMIT $5 FOR UPDATE SKIP LOCKED) RETURNING id, name, \
    kind, url, etag, last_modified, last_attempt, last_success, last_error, consecutive_failures, \
    next_run, lease_owner, lease_until";

const LEASE_SQLITE: &str = "UPDATE sources SET lease_owner = $1, lease_until = $2 WHERE id IN (\
    SELECT id FROM sources WHERE id IN (SELECT value FROM json_each($3)) \
    AND (next_run IS NULL OR next_run <= $4) AND (lease_until IS NULL OR lease_until <= $4) \
    ORDER BY next_run IS NOT NULL, next_run, id LIMIT $5) RETURNING id, name, kind, url, etag, \
    last_modified, last_attempt, last_success, last_error, consecutive_failures, next_run, \
    lease_owner, lease_until";

const DUE_ALL: &str = "SELECT id, next_run, lease_until FROM sources";

const DUE_OF_PG: &str = "SELECT id, next_run, lease_until FROM sources WHERE id = ANY($1)";

const DUE_OF_SQLITE: &str = "SELECT id, next_run, lease_until FROM sources \
    WHERE id IN (SELECT value FROM json_each($1))";

/// When a source can next be leased, as [`Db::source_due_times`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDue {
    pub id: String,
    /// When it is due by its schedule; `None` before its first refresh (due at once).
    pub next_run: Option<DateTime<Utc>>,
    /// Until when a daemon holds it, if one does (or did: an expired lease is no hold).
    pub lease_until: Option<DateTime<Utc>>,
}

impl SourceDue {
    /// When the lease statement can take it: while a lease is live, the lease's expiry (or its
    /// `next_run`, if later); else its `next_run`, or `now` if it never ran. An overdue
    /// `next_run` is kept as it is, so the most overdue sources are taken first.
    pub fn due(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.lease_until {
            Some(until) if until > now => until.max(self.next_run.unwrap_or(until)),
            _ => self.next_run.unwrap_or(now),
        }
    }
}

impl Db {
    /// Leases up to `limit` of the sources `ids` that are due at `now` and not leased by a live
    /// daemon, until `until`. Returns the state of each source leased (as the lease left it),
    /// which its refresh starts from: read here rather than by each refresh, one statement per
    /// source fewer on the shared database.
    pub async fn lease_due_sources(
        &self,
        owner: &str,
        ids: &[String],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<SourceState>, StoreError> {
        if limit == 0 || ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = match self {
            Db::Pg(pool, _) => sqlx::query(LEASE_PG)
                .bind(owner)
                .bind(until)
                .bind(ids)
                .bind(now)
                .bind(limit as i64)
                .fetch_all(pool)
                .await
                .context("leasing due sources")?
                .iter()
                .map(|r| source_state_from!(r))
                .collect::<Result<Vec<_>, _>>(),
            Db::Sqlite(pool, _) => sqlx::query(LEASE_SQLITE)
                .bind(owner)
                .bind(until)
                .bind(json_ids(ids)?)
                .bind(now)
                .bind(limit as i64)
                .fetch_all(pool)
                .await
                .context("leasing due sources")?
                .iter()
                .map(|r| source_state_from!(r))
                .collect::<Result<Vec<_>, _>>(),
        };
        rows.context("decoding leased sources")
    }

    /// Frees the sources leased by processes of this host that no longer run (see
    /// [`lease_holder_is_dead`]), so a daemon restarted after a crash fetches them at once
    /// instead of waiting for the dead process's leases to expire. Returns how many were freed.
    pub async fn release_dead_source_leases(&self) -> Result<u64, StoreError> {
        const HOLDERS: &str =
            "SELECT DISTINCT lease_owner FROM sources WHERE lease_owner IS NOT NULL";
        const FREE: &str =
            "UPDATE sources SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1";
        let holders: Vec<String> = super::with_db!(self, pool => {
            sqlx::query(HOLDERS)
                .fetch_all(pool)
                .await
                .context("reading source lease holders")?
                .iter()
                .map(|r| r.try_get::<String, _>("lease_owner"))
                .collect::<Result<Vec<_>, _>>()
                .context("decoding source lease holders")?
        });
        let mut freed = 0;
        for dead in holders.iter().filter(|h| lease_holder_is_dead(h)) {
            freed += super::with_db!(self, pool => {
                sqlx::query(FREE)
                    .bind(dead)
                    .execute(pool)
                    .await
                    .context("freeing a dead process's source leases")?
                    .rows_affected()
            });
        }
        Ok(freed)
    }

    /// The lease state of the sources `ids`, or of every source with `None`: what a daemon reads
    /// to know which of its sources to try to lease next, without asking the database on every
    /// turn of its loop (see `daemon::DueQueue`). Sources not in the table are left out.
    pub async fn source_due_times(
        &self,
        ids: Option<&[String]>,
    ) -> Result<Vec<SourceDue>, StoreError> {
        macro_rules! decode {
            ($rows:expr) => {
                $rows
                    .context("reading when sources are due")?
                    .iter()
                    .map(|r| {
                        Ok(SourceDue {
                            id: r.try_get("id")?,
                            next_run: r.try_get("next_run")?,
                            lease_until: r.try_get("lease_until")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .context("decoding when sources are due")
            };
        }
        match (self, ids) {
            (_, Some([])) => Ok(Vec::new()),
            (Db::Pg(pool, _), Some(ids)) => {
                decode!(sqlx::query(DUE_OF_PG).bind(ids).fetch_all(pool).await)
            }
            (Db::Sqlite(pool, _), Some(ids)) => decode!(
                sqlx::query(DUE_OF_SQLITE)
                    .bind(json_ids(ids)?)
                    .fetch_all(pool)
                    .await
            ),
            (Db::Pg(pool, _), None) => decode!(sqlx::query(DUE_ALL).fetch_all(pool).await),
            (Db::Sqlite(pool, _), None) => decode!(sqlx::query(DUE_ALL).fetch_all(pool).await),
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
            WHERE id = $1 AND state IN ('pending', 'failed') AND (lease_until IS NULL OR lease_until <= $4 OR lease_owner = $2)";
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

    /// Takes a digest run over from a lease holder that is known to be dead (see
    /// [`lease_holder_is_dead`]), so a restart right after a crash need not wait for the lease to
    /// expire. Returns false when the run is no longer held by `dead`.
    pub async fn take_over_digest_run(
        &self,
        id: i64,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const HOLDER: &str =
            "SELECT lease_owner FROM digest_runs WHERE id = $1 AND state IN ('pending', 'failed')";
        const SQL: &str = "UPDATE digest_runs SET lease_owner = $2, lease_until = $3 \
            WHERE id = $1 AND state IN ('pending', 'failed') AND lease_owner = $4";
        super::with_db!(self, pool => {
            let holder: Option<String> = sqlx::query(HOLDER)
                .bind(id)
                .fetch_optional(pool)
                .await
                .context("reading a digest run's lease")?
                .and_then(|r| sqlx::Row::try_get::<Option<String>, _>(&r, "lease_owner").ok().flatten());
            let Some(dead) = holder.filter(|h| lease_holder_is_dead(h)) else {
                return Ok(false);
            };
            let done = sqlx::query(SQL)
                .bind(id)
                .bind(owner)
                .bind(until)
                .bind(&dead)
                .execute(pool)
                .await
                .context("taking over a digest run")?;
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

/// Whether a lease holder named by [`lease_owner_name`] is a process of this host that no longer
/// runs. Only a certain death counts: another host's process, or a live pid, is never presumed dead.
pub fn lease_holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (Some(_started), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let this_host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    host == this_host
        && pid.parse::<u32>().is_ok_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_vanished_process_of_this_host_is_presumed_dead() {
        assert!(
            !lease_holder_is_dead(&lease_owner_name()),
            "this process is alive"
        );
        let host = lease_owner_name()
            .rsplitn(3, ':')
            .nth(2)
            .unwrap_or_default()
            .to_string();
        // PIDs are below 2^22 on Linux: this one cannot exist.
        assert!(lease_holder_is_dead(&format!("{host}:99999999:1")));
        assert!(!lease_holder_is_dead("some-other-host:99999999:1"));
        assert!(!lease_holder_is_dead("garbage"));
    }
}
