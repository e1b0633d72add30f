//! Digest runs: the bookkeeping that makes sending exactly-once per (digest, period).
//!
//! A run is inserted — with its rendered message — before anything is sent; the unique key
//! (digest, period_end) means a second scheduler, a restart or a repeated `digest send` finds the
//! row instead of making a new one. The state only becomes `sent` after the transport accepted the
//! message, so a crash or an SMTP outage leaves a `pending` row that is retried with the very same
//! Message-ID and content.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Context, Db, StoreError, with_db};

#[derive(Debug, Clone)]
pub struct NewDigestRun {
    pub digest: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub items: usize,
    pub created: DateTime<Utc>,
    /// `pending` (to be sent) or `skipped` (an empty period under `empty = "skip"`: recorded so
    /// the period is accounted for, never sent).
    pub state: &'static str,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DigestRun {
    pub id: i64,
    pub digest: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub subject: String,
    #[serde(skip)]
    pub html: String,
    #[serde(skip)]
    pub text: String,
    pub items: i64,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub sent: Option<DateTime<Utc>>,
    pub delivered_to: Option<String>,
}

const RUN_COLUMNS: &str = "id, digest, period_start, period_end, message_id, recipients, subject, html, text, \
    items, state, attempts, last_error, next_attempt, created, sent, delivered_to";

fn decode_run<R>(r: &R) -> Result<DigestRun, sqlx::Error>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> DateTime<Utc>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<DateTime<Utc>>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let recipients: String = r.try_get("recipients")?;
    Ok(DigestRun {
        id: r.try_get("id")?,
        digest: r.try_get("digest")?,
        period_start: r.try_get("period_start")?,
        period_end: r.try_get("period_end")?,
        message_id: r.try_get("message_id")?,
        recipients: recipients
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        subject: r.try_get("subject")?,
        html: r.try_get("html")?,
        text: r.try_get("text")?,
        items: r.try_get("items")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        next_attempt: r.try_get("next_attempt")?,
        created: r.try_get("created")?,
        sent: r.try_get("sent")?,
        delivered_to: r.try_get("delivered_to")?,
    })
}

impl Db {
    /// End of the most recent recorded period of `digest` (pending or sent): the next period starts there.
    pub async fn last_digest_end(&self, digest: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        with_db!(self, pool => {
            let row = sqlx::query("SELECT period_end FROM digest_runs WHERE digest = $1 ORDER BY period_end DESC LIMIT 1")
                .bind(digest)
                .fetch_optional(pool)
                .await
                .context("reading the last digest run")?;
            row.map(|r| r.try_get("period_end")).transpose().context("decoding the last digest run")
        })
    }

    /// Records a run before it is sent. Returns false when a run for this (digest, period) exists.
    pub async fn insert_digest_run(&self, run: &NewDigestRun) -> Result<bool, StoreError> {
        let sql = "INSERT INTO digest_runs (digest, period_start, period_end, message_id, recipients, subject, html, \
            text, items, state, attempts, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, 0, $10) \
            ON CONFLICT (digest, period_end) DO NOTHING";
        with_db!(self, pool => {
            let done = sqlx::query(sql)
                .bind(&run.digest)
                .bind(run.period_start)
                .bind(run.period_end)
                .bind(&run.message_id)
                .bind(run.recipients.join("\n"))
                .bind(&run.subject)
                .bind(&run.html)
                .bind(&run.text)
                .bind(run.items as i64)
                .bind(run.created)
                .bind(run.state)
                .execute(pool)
                .await
                .context("recording a digest run")?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Runs not yet delivered whose retry time has come, oldest first. With `force` (a person ran
    /// `digest send`): every pending run, and the `failed` ones too (permanent errors such as a
    /// 550 that the operator may have fixed meanwhile).
    pub async fn due_digest_runs(
        &self,
        now: DateTime<Utc>,
        force: bool,
    ) -> Result<Vec<DigestRun>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM digest_runs WHERE (state = 'pending' \
             AND ($2 OR next_attempt IS NULL OR next_attempt <= $1)) OR ($2 AND state = 'failed') \
             ORDER BY period_end, id"
        );
        with_db!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(now)
                .bind(force)
                .fetch_all(pool)
                .await
                .context("reading pending digests")?;
            rows.iter().map(decode_run).collect::<Result<Vec<_>, _>>().context("decoding digest runs")
        })
    }

    /// Every run of a digest (or of all digests), newest first.
    pub async fn digest_runs(
        &self,
        digest: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DigestRun>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM digest_runs WHERE ($1 = '' OR digest = $1) ORDER BY period_end DESC, id DESC LIMIT $2"
        );
        with_db!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(digest.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await
                .context("reading digest runs")?;
            rows.iter().map(decode_run).collect::<Result<Vec<_>, _>>().context("decoding digest runs")
        })
    }

    /// The transport accepted the message: never send this run again.
    pub async fn mark_digest_sent(
        &self,
        id: i64,
        at: DateTime<Utc>,
        delivered_to: Option<&str>,
    ) -> Result<(), StoreError> {
        with_db!(self, pool => {
            sqlx::query(
                "UPDATE digest_runs SET state = 'sent', sent = $2, delivered_to = $3, attempts = attempts + 1, \
                 last_error = NULL, next_attempt = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(at)
            .bind(delivered_to)
            .execute(pool)
            .await
            .context("marking a digest sent")?;
            Ok(())
        })
    }

    /// Sending failed. Transient (`next_attempt` set): keep the run pending and say when to try
    /// again. Permanent (`None`): state `failed`, which the daemon no longer retries but
    /// `status` shows and `digest send` retries.
    pub async fn mark_digest_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        with_db!(self, pool => {
            sqlx::query(
                "UPDATE digest_runs SET attempts = attempts + 1, last_error = $2, next_attempt = $3, \
                 state = CASE WHEN $3 IS NULL THEN 'failed' ELSE 'pending' END WHERE id = $1",
            )
            .bind(id)
            .bind(error)
            .bind(next_attempt)
            .execute(pool)
            .await
            .context("recording a digest failure")?;
            Ok(())
        })
    }
}

impl Db {
    /// Start of the first recorded period of `digest`: how far back its history goes.
    pub async fn first_digest_start(
        &self,
        digest: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        with_db!(self, pool => {
            let row = sqlx::query("SELECT period_start FROM digest_runs WHERE digest = $1 ORDER BY period_start LIMIT 1")
                .bind(digest)
                .fetch_optional(pool)
                .await
                .context("reading the first digest run")?;
            row.map(|r| r.try_get("period_start")).transpose().context("decoding the first digest run")
        })
    }

    /// Number of matches per watchlist recorded in `(start, end]`.
    pub async fn match_counts_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        with_db!(self, pool => {
            let rows = sqlx::query(
                "SELECT watchlist, COUNT(*) AS n FROM matches WHERE matched > $1 AND matched <= $2 GROUP BY watchlist",
            )
            .bind(start)
            .bind(end)
            .fetch_all(pool)
            .await
            .context("counting matches")?;
            rows.iter()
                .map(|r| Ok((r.try_get("watchlist")?, r.try_get("n")?)))
                .collect::<Result<std::collections::HashMap<_, _>, sqlx::Error>>()
                .context("decoding match counts")
        })
    }
}
