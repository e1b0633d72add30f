//! Daemon reload state and watchlist backfills.
//!
//! The daemon records which configuration version it runs and the last reload that failed, so
//! `marsad status` (another process) can tell the user that an edit was refused. Backfills add
//! matches for articles already stored; the (article, watchlist) key keeps them idempotent.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Context, Db, StoreError, with_db};
use crate::matcher::Hit;
use crate::model::NewMatch;

/// What one daemon has loaded, as `marsad status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DaemonState {
    pub instance: String,
    pub config_version: String,
    pub loaded_at: DateTime<Utc>,
    pub last_reload_error: Option<String>,
    pub last_reload_error_at: Option<DateTime<Utc>>,
    pub updated: DateTime<Utc>,
}

impl Db {
    /// A configuration version was loaded (at start or by a reload that succeeded): it replaces
    /// the previous one and clears the last reload error.
    pub async fn record_config_loaded(
        &self,
        instance: &str,
        version: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_db!(self, pool => {
            sqlx::query(
                "INSERT INTO daemon_state (instance, config_version, loaded_at, last_reload_error, last_reload_error_at, updated) \
                 VALUES ($1, $2, $3, NULL, NULL, $3) \
                 ON CONFLICT (instance) DO UPDATE SET config_version = $2, loaded_at = $3, \
                 last_reload_error = NULL, last_reload_error_at = NULL, updated = $3",
            )
            .bind(instance)
            .bind(version)
            .bind(at)
            .execute(pool)
            .await
            .context("recording the loaded configuration")?;
        });
        Ok(())
    }

    /// A reload failed; the loaded version stays what it was.
    pub async fn record_reload_error(
        &self,
        instance: &str,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_db!(self, pool => {
            sqlx::query(
                "UPDATE daemon_state SET last_reload_error = $2, last_reload_error_at = $3, updated = $3 \
                 WHERE instance = $1",
            )
            .bind(instance)
            .bind(error)
            .bind(at)
            .execute(pool)
            .await
            .context("recording a reload error")?;
        });
        Ok(())
    }

    /// Every daemon's state, most recently updated first.
    pub async fn daemon_states(&self) -> Result<Vec<DaemonState>, StoreError> {
        const SQL: &str = "SELECT instance, config_version, loaded_at, last_reload_error, \
            last_reload_error_at, updated FROM daemon_state ORDER BY updated DESC, instance";
        with_db!(self, pool => {
            let rows = sqlx::query(SQL).fetch_all(pool).await.context("reading daemon state")?;
            rows.iter()
                .map(|r| {
                    Ok(DaemonState {
                        instance: r.try_get("instance")?,
                        config_version: r.try_get("config_version")?,
                        loaded_at: r.try_get("loaded_at")?,
                        last_reload_error: r.try_get("last_reload_error")?,
                        last_reload_error_at: r.try_get("last_reload_error_at")?,
                        updated: r.try_get("updated")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("decoding daemon state")
        })
    }

    /// The stored matches of `watchlist` for articles fetched since `since`, by article id.
    pub async fn stored_matches_since(
        &self,
        watchlist: &str,
        since: DateTime<Utc>,
    ) -> Result<HashMap<i64, Vec<Hit>>, StoreError> {
        const SQL: &str = "SELECT m.article, m.hits FROM matches m JOIN articles a ON a.id = m.article \
            WHERE m.watchlist = $1 AND a.fetched >= $2";
        let rows: Vec<(i64, String)> = with_db!(self, pool => {
            let rows = sqlx::query(SQL).bind(watchlist).bind(since).fetch_all(pool).await
                .context("reading stored matches")?;
            rows.iter()
                .map(|r| Ok((r.try_get("article")?, r.try_get("hits")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("decoding stored matches")?
        });
        rows.into_iter()
            .map(|(article, hits)| {
                let hits: Vec<Hit> =
                    serde_json::from_str(&hits).map_err(|e| StoreError::Corrupt {
                        context: "decoding hits",
                        message: e.to_string(),
                    })?;
                Ok((article, hits))
            })
            .collect()
    }

    /// Stores matches for articles already stored; a match already there is left as it is.
    /// Returns how many were new.
    pub async fn add_matches(
        &self,
        matches: &[(i64, NewMatch)],
        matched: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut added = 0;
        with_db!(self, pool => {
            let mut tx = pool.begin().await.context("starting a transaction")?;
            for (article, m) in matches {
                let hits = serde_json::to_string(&m.hits).map_err(|e| StoreError::Corrupt {
                    context: "encoding hits",
                    message: e.to_string(),
                })?;
                let done = sqlx::query(
                    "INSERT INTO matches (article, watchlist, hits, matched) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (article, watchlist) DO NOTHING",
                )
                .bind(article)
                .bind(&m.watchlist)
                .bind(hits)
                .bind(matched)
                .execute(&mut *tx)
                .await
                .context("storing a backfilled match")?;
                added += done.rows_affected() as usize;
            }
            tx.commit().await.context("committing a backfill")?;
        });
        Ok(added)
    }
}
