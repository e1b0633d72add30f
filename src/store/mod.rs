//! Storage: the only module that speaks SQL.
//!
//! `Db` is an enum over the two backends rather than `sqlx::Any` so each backend keeps its own
//! types (TIMESTAMPTZ on PostgreSQL, text on SQLite) and its own migrations folder. Queries are
//! written once with `$n` placeholders, which both backends accept, and the `with_db!` macro
//! expands a body once per backend so each expansion type-checks against its own pool.

mod digests;
mod lease;
mod queries;
mod search;
mod stories;
mod watchlist_state;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use digests::{DigestRun, NewDigestRun};
pub use lease::{SourceDue, lease_owner_name};
pub use queries::{
    FetchLog, PRECOMPUTED_SIGNATURES, RefreshWrite, SourceInfo, SourceState, StoreOutcome,
    StoredArticle, StoredMatch,
};
pub use search::{Pruned, SearchHit};
pub use stories::{Story, StoryMember};
pub use watchlist_state::DaemonState;

/// A database connection pool for either backend.
#[derive(Clone, Debug)]
pub enum Db {
    /// Reads and the occasional small write share the first pool; refreshes are stored through
    /// the [`SqliteWriter`].
    Sqlite(SqlitePool, SqliteWriter),
    /// Reads, leases and digests use the pool; refreshes are stored through the [`PgWriter`].
    Pg(PgPool, PgWriter),
}

/// The [`PG_WRITE_BATCHES`] connections this process stores refreshes through (PostgreSQL).
/// Spread over the pool's eight connections, each statement shape was prepared, and planned
/// afresh for its first executions, on every connection, and planning was an eighth of the
/// server's time on the write path.
#[derive(Clone, Debug)]
pub struct PgWriter(PgPool, Arc<KeyBudget>);

/// How many dedupe keys one refresh batch of this process locks one by one (PostgreSQL; see
/// [`BeginWrite::lock_keys`]). Each advisory lock takes a slot of the server's shared lock
/// table, which holds about `max_locks_per_transaction` × (`max_connections` +
/// `max_prepared_transactions`) locks for all sessions of every database on the server (6,400
/// by default); a transaction that finds it full fails with "out of shared memory", and so
/// would any other session's meanwhile. marsad's writers together take at most half of it: each
/// batch gets [`key_budget`] of the table for the writer connections marsad has open on the
/// server (each process's are named [`WRITER_APPLICATION_NAME`] and counted in
/// `pg_stat_activity`, again in the background at most every [`KEY_BUDGET_RECHECK`]). Bigger
/// batches are cheaper per refresh: with 1,600 keys per batch instead of a fixed 512, a
/// 1,000-source `fetch` took 14% less time and a lone daemon's refresh 18%.
#[derive(Debug)]
pub(crate) struct KeyBudget {
    /// Slots of the server's lock table.
    capacity: u64,
    keys: AtomicUsize,
    checked: std::sync::Mutex<std::time::Instant>,
}

/// `application_name` of the connections refreshes are written through (PostgreSQL).
pub const WRITER_APPLICATION_NAME: &str = "marsad writer";
/// The fewest keys a batch may lock one by one, however many writers share the lock table: a
/// refresh with more takes the bulk lock (and writes alone), so this keeps the usual refresh (a
/// few dozen items, two or three keys each) off it.
pub(crate) const MIN_KEY_LOCKS: usize = 128;
/// The most keys a batch locks one by one, however large the lock table: beyond a few
/// thousand, batches are no cheaper per refresh.
pub(crate) const MAX_KEY_LOCKS: usize = 4_096;
/// How often the writers on the server are counted again.
pub const KEY_BUDGET_RECHECK: Duration = Duration::from_secs(1);
/// The lock table of a server whose settings cannot be read (PostgreSQL's defaults).
const DEFAULT_LOCK_TABLE: u64 = 64 * 100;

/// A batch's share of a lock table of `capacity` slots when `writers` marsad writer connections
/// are open on the server: half the table, shared equally, within [`MIN_KEY_LOCKS`] ..=
/// [`MAX_KEY_LOCKS`].
pub(crate) fn key_budget(capacity: u64, writers: u64) -> usize {
    let share = capacity / 2 / writers.max(1);
    usize::try_from(share)
        .unwrap_or(usize::MAX)
        .clamp(MIN_KEY_LOCKS, MAX_KEY_LOCKS)
}

impl KeyBudget {
    /// Reads the size of the server's lock table and counts the writers on it.
    async fn read(pool: &PgPool) -> KeyBudget {
        let capacity = sqlx::query_scalar::<_, i64>(
            "SELECT current_setting('max_locks_per_transaction')::int8 \
             * (current_setting('max_connections')::int8 \
                + current_setting('max_prepared_transactions')::int8)",
        )
        .fetch_one(pool)
        .await
        .ok()
        .and_then(|c| u64::try_from(c).ok())
        .unwrap_or(DEFAULT_LOCK_TABLE);
        let budget = KeyBudget {
            capacity,
            keys: AtomicUsize::new(key_budget(capacity, PG_WRITE_BATCHES as u64)),
            checked: std::sync::Mutex::new(std::time::Instant::now()),
        };
        budget.recount(pool).await;
        budget
    }

    /// Counts the writer connections on the server and sets the budget from them; on failure
    /// (the statistics view unreadable) keeps the last one.
    async fn recount(&self, pool: &PgPool) {
        let writers = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(WRITER_APPLICATION_NAME)
        .fetch_one(pool)
        .await;
        match writers {
            Ok(n) => {
                // This process's own writers count even before their first connection opens.
                let n = u64::try_from(n).unwrap_or(0).max(PG_WRITE_BATCHES as u64);
                let keys = key_budget(self.capacity, n);
                if self.keys.swap(keys, Ordering::Relaxed) != keys {
                    tracing::debug!(
                        writers = n,
                        lock_table = self.capacity,
                        keys,
                        "dedupe keys per refresh batch"
                    );
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not count marsad's writers on the server"),
        }
    }

    /// The keys a batch may lock one by one now. If the last count of the writers is older
    /// than [`KEY_BUDGET_RECHECK`], they are counted again in the background (the write path
    /// does not wait for a connection of the pool): later batches get the new budget.
    pub(crate) fn keys(self: &Arc<Self>, pool: &PgPool) -> usize {
        let stale = {
            let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
            let stale = checked.elapsed() >= KEY_BUDGET_RECHECK;
            if stale {
                *checked = std::time::Instant::now();
            }
            stale
        };
        // Outside a runtime (nothing to count on) the last budget stands.
        if let (true, Ok(runtime)) = (stale, tokio::runtime::Handle::try_current()) {
            let (budget, pool) = (self.clone(), pool.clone());
            runtime.spawn(async move { budget.recount(&pool).await });
        }
        self.keys.load(Ordering::Relaxed)
    }
}

/// The one connection this process stores refreshes through (SQLite). Refreshes are written one
/// batch at a time anyway (one writer per database file); with a connection of their own they
/// no longer wait for one of the pool's, which 32 concurrent refreshes keep busy with lookups:
/// that wait was a tenth of the write path's time.
///
/// The writer does not copy the write-ahead log back into the database file itself (SQLite's
/// automatic checkpoint, run by the committing connection, was a quarter of its time): after
/// each batch a background task checkpoints through a reader connection while the next batch
/// is written. The writer still checkpoints once the log passes [`WAL_BACKSTOP_PAGES`], should
/// the background ones fall behind.
#[derive(Clone, Debug)]
pub struct SqliteWriter(SqlitePool, Arc<AtomicBool>);

/// Pages (4 KiB) of write-ahead log after which the writer checkpoints itself.
const WAL_BACKSTOP_PAGES: u32 = 8_192;

/// Expands `$body` once for each backend with `$pool` bound to that backend's pool.
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool, _) => $body,
            $crate::store::Db::Pg($pool, _) => $body,
        }
    };
    // `$pool` is the connection refreshes are stored through (SQLite: the writer's).
    (@write $db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite(_, $crate::store::SqliteWriter($pool, _)) => $body,
            $crate::store::Db::Pg(_, $crate::store::PgWriter($pool, _)) => $body,
        }
    };
}
pub(crate) use with_db;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot create the directory {path} for the SQLite database: {source}; check [storage].url and the permissions"
    )]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database {target}: {source}; {}", advice(source).unwrap_or("check [storage].url"))]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "cannot apply the database migrations to {target}: {source}{}",
        with_advice(migrate_cause(source))
    )]
    Migrate {
        target: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error(
        "database error while {context}: {source}{}",
        with_advice(Some(source))
    )]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("stored data is invalid ({context}): {message}")]
    Corrupt {
        context: &'static str,
        message: String,
    },
    /// A refresh's task ended without an outcome (a bug in marsad: it panicked); nothing of it
    /// was stored and the other sources went on.
    #[error(
        "the refresh stopped unexpectedly ({message}); nothing of it was stored and it will be \
         retried on the next run; please report this as a bug"
    )]
    RefreshAborted { message: String },
}

/// Refresh batches one process writes to PostgreSQL at once (see [`Db::gate`]). Measured on a
/// 1,000-source fetch: one 4.4–4.9 s, two 3.6 s, three 3.4–3.7 s.
pub const PG_WRITE_BATCHES: usize = 2;

/// How long opening a PostgreSQL database waits for the server before giving up.
pub const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Db {
    /// This process's write gate for this database: held by whoever writes a refresh batch
    /// (`Db::group_commit`). SQLite has one writer at a time; without the gate the pool's
    /// connections race for its lock and the losers sleep in SQLite's busy handler (1, 2, 5 …
    /// 100 ms) while the lock is free again long before. Other processes (a `fetch` beside the
    /// daemon) still meet at SQLite's own lock. On PostgreSQL it lets [`PG_WRITE_BATCHES`]
    /// batches through at once: one batch at a time left the writer idle (and the server
    /// waiting) for half of each batch's time, on round trips and on building the next
    /// statement; more than two do not wait for each other less, since story assignment is
    /// serialised (the story lock) and the rest then queues behind it.
    pub(crate) fn gate(&self) -> Arc<tokio::sync::Semaphore> {
        type Gates =
            std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>;
        static GATES: std::sync::OnceLock<Gates> = std::sync::OnceLock::new();
        let mut gates = GATES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let permits = match self {
            Db::Sqlite(..) => 1,
            Db::Pg(..) => PG_WRITE_BATCHES,
        };
        gates
            .entry(self.identity())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(permits)))
            .clone()
    }
}

/// Starts a transaction that will write after reading, safely under concurrency.
///
/// SQLite: `BEGIN IMMEDIATE` takes the write lock up front; a deferred transaction that read first
/// could not upgrade after another connection committed (a busy-snapshot error no timeout fixes).
/// Writes are serialised there anyway, so `lock_keys` is a no-op.
///
/// PostgreSQL: refresh writes of several daemons run in parallel. A refresh first takes
/// transaction-scoped advisory locks on the keys it deduplicates by (`lock_keys`: canonical URLs,
/// GUIDs, content hashes), so two daemons storing the same article at once cannot both decide it
/// is new, while refreshes with nothing in common do not wait for each other. Story assignment
/// looks at every recent article, so it is serialised as a whole, for the short end of the
/// transaction: the `UPDATE` that reserves the signature numbers of a refresh's new articles
/// (`reserve_signatures!`) holds the one row of `story_seq` until commit, so two near-duplicates
/// stored at once still see each other. A refresh with no new article does not wait for it.
pub(crate) trait BeginWrite {
    type Database: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>;
    /// Waits for the advisory locks on `keys` (sorted and distinct); more than `max_keys` of
    /// them take the bulk lock instead.
    async fn lock_keys(
        &self,
        tx: &mut sqlx::Transaction<'static, Self::Database>,
        keys: &[i64],
        max_keys: usize,
    ) -> Result<(), sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Database = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
    async fn lock_keys(
        &self,
        _tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        _keys: &[i64],
        _max_keys: usize,
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

/// marsad's two-key advisory locks (a space that does not overlap the single-key one of the
/// dedupe keys): (marsad, which). Key 1 was the story lock, now the row of `story_seq`.
const ADVISORY_SPACE: i32 = 0x6d61_7273; // "mars"
/// Held shared by a refresh that locks its keys one by one, exclusively by one with more keys
/// than its [`KeyBudget`].
const BULK_LOCK: i32 = 2;

impl BeginWrite for PgPool {
    type Database = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
    async fn lock_keys(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        keys: &[i64],
        max_keys: usize,
    ) -> Result<(), sqlx::Error> {
        if keys.is_empty() {
            return Ok(());
        }
        // Each advisory lock takes a slot of the server's shared lock table (see `KeyBudget`):
        // a refresh of a feed with 100,000 items cannot lock every key. Such a refresh takes
        // the bulk lock instead, exclusively, which waits for — and keeps out — every keyed
        // refresh, since those hold the bulk lock shared.
        if keys.len() > max_keys {
            return lock_bulk_exclusive(tx).await;
        }
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1, $2)")
            .bind(ADVISORY_SPACE)
            .bind(BULK_LOCK)
            .execute(&mut **tx)
            .await?;
        // In array order (the keys are sorted), in one statement.
        sqlx::query("SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::int8[]) AS t(k)")
            .bind(keys)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Takes one of marsad's two-key advisory locks (PostgreSQL) exclusively, until the transaction
/// ends.
async fn advisory_xact_lock(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    lock: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(ADVISORY_SPACE)
        .bind(lock)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Takes the bulk lock exclusively (PostgreSQL): waits for every refresh write under way and
/// keeps new ones out until the transaction ends.
pub(crate) async fn lock_bulk_exclusive(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
) -> Result<(), sqlx::Error> {
    advisory_xact_lock(tx, BULK_LOCK).await
}

/// Attaches what the store was doing to an sqlx error.
pub(crate) trait Context<T> {
    fn context(self, what: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, what: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query {
            context: what,
            source,
        })
    }
}

impl Db {
    /// Opens (creating if needed) and migrates a SQLite database file.
    pub async fn open_sqlite(path: &Path) -> Result<Db, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let target = path.display().to_string();
        // WAL lets readers (`marsad articles`) run while the daemon writes; the busy timeout
        // makes a second process wait for the write lock instead of failing at once.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(|source| StoreError::Connect {
                target: target.clone(),
                source,
            })?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                target: target.clone(),
                source,
            })?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // A local file's connection does not go stale; the check would be one more round
            // trip per batch.
            .test_before_acquire(false)
            .connect_with(options.pragma("wal_autocheckpoint", WAL_BACKSTOP_PAGES.to_string()))
            .await
            .map_err(|source| StoreError::Connect { target, source })?;
        Ok(Db::Sqlite(
            pool,
            SqliteWriter(writer, Arc::new(AtomicBool::new(false))),
        ))
    }

    /// Connects to and migrates a PostgreSQL database. Fails within [`PG_CONNECT_TIMEOUT`],
    /// with the server's or the network's own error, when it cannot connect.
    pub async fn open_postgres(url: &str) -> Result<Db, StoreError> {
        let target = redact_url(url);
        let options = sqlx::postgres::PgConnectOptions::from_str(url)
            .map_err(|source| StoreError::Connect {
                target: target.clone(),
                source,
            })?
            // Plan every statement for its own values. sqlx prepares each statement once per
            // connection, and after five runs PostgreSQL may switch to a generic plan chosen while
            // the tables were nearly empty (a sequential scan): the URL lookups of a 10,000-source
            // refresh then took 100-200 ms each instead of well under one.
            // No parallel plans: marsad's statements each touch a few hundred rows by index, and
            // once the tables grew the planner gave the lookups of a batch two parallel workers,
            // whose start-up took longer than the work (22 ms instead of 4 at 190,000 articles).
            .options([
                ("plan_cache_mode", "force_custom_plan"),
                ("max_parallel_workers_per_gather", "0"),
            ]);
        // One connection first, so a server that is down, a wrong password or a missing
        // database is reported at once with its cause; the pool would retry for its whole
        // acquire timeout and then say only "pool timed out".
        {
            use sqlx::{ConnectOptions, Connection};
            let probe = tokio::time::timeout(PG_CONNECT_TIMEOUT, options.connect()).await;
            match probe {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                }
                Ok(Err(source)) => {
                    return Err(StoreError::Connect {
                        target: target.clone(),
                        source,
                    });
                }
                Err(_) => {
                    return Err(StoreError::Connect {
                        target: target.clone(),
                        source: sqlx::Error::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!(
                                "no answer within {} s; check that the server runs and that \
                                 nothing between here and it drops the connection",
                                PG_CONNECT_TIMEOUT.as_secs()
                            ),
                        )),
                    });
                }
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(|source| StoreError::Connect {
                target: target.clone(),
                source,
            })?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                target: target.clone(),
                source,
            })?;
        let writer = PgPoolOptions::new()
            .max_connections(PG_WRITE_BATCHES as u32)
            .acquire_timeout(Duration::from_secs(30))
            // The write path's lookups touch a handful of rows each; a parallel plan (which the
            // planner picked for a batch's combined lookup) spent more starting its workers
            // than the whole statement takes alone.
            .connect_with(
                options
                    .options([("max_parallel_workers_per_gather", "0")])
                    .application_name(WRITER_APPLICATION_NAME),
            )
            .await
            .map_err(|source| StoreError::Connect { target, source })?;
        let budget = KeyBudget::read(&pool).await;
        Ok(Db::Pg(pool, PgWriter(writer, Arc::new(budget))))
    }

    /// PostgreSQL: how many dedupe keys one refresh batch of this process locks one by one at
    /// the moment (see [`KeyBudget`]; the writers on the server are counted again, in the
    /// background, when the last count is older than [`KEY_BUDGET_RECHECK`]); `None` on SQLite,
    /// which writes one batch at a time and takes no such locks.
    pub fn key_budget(&self) -> Option<usize> {
        match self {
            Db::Sqlite(..) => None,
            Db::Pg(pool, PgWriter(_, budget)) => Some(budget.keys(pool)),
        }
    }

    /// Opens the store the settings name.
    pub async fn open(storage: &crate::settings::Storage) -> Result<Db, StoreError> {
        match storage {
            crate::settings::Storage::Sqlite(path) => Db::open_sqlite(path).await,
            crate::settings::Storage::Postgres(url) => Db::open_postgres(url).await,
        }
    }

    /// SQLite: starts a checkpoint of the write-ahead log in the background unless one is
    /// running (see [`SqliteWriter`]). A failed one is left to the next (or to the writer's own).
    pub(crate) fn checkpoint_in_background(&self) {
        let Db::Sqlite(pool, SqliteWriter(_, running)) = self else {
            return;
        };
        if running.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, running) = (pool.clone(), running.clone());
        tokio::spawn(async move {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::debug!(error = %e, "background checkpoint failed");
            }
            running.store(false, Ordering::Release);
        });
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(_, SqliteWriter(writer, _)) => writer.close().await,
            Db::Pg(_, PgWriter(writer, _)) => writer.close().await,
        }
        with_db!(self, pool => pool.close().await)
    }
}

/// A database URL with any password replaced, safe for logs and error messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparsable database URL>".to_string(),
    }
}

impl StoreError {
    /// What to do about this error when its cause is one a person can fix on the machine: a full
    /// disk, a read-only or unopenable database file, a failing write, a damaged file.
    pub fn advice(&self) -> Option<&'static str> {
        match self {
            StoreError::Connect { source, .. } | StoreError::Query { source, .. } => advice(source),
            StoreError::Migrate { source, .. } => migrate_cause(source).and_then(advice),
            StoreError::CreateDir { .. }
            | StoreError::Corrupt { .. }
            | StoreError::RefreshAborted { .. } => None,
        }
    }
}

fn migrate_cause(e: &sqlx::migrate::MigrateError) -> Option<&sqlx::Error> {
    match e {
        sqlx::migrate::MigrateError::Execute(e)
        | sqlx::migrate::MigrateError::ExecuteMigration(e, _) => Some(e),
        _ => None,
    }
}

fn with_advice(e: Option<&sqlx::Error>) -> String {
    e.and_then(advice)
        .map(|a| format!("; {a}"))
        .unwrap_or_default()
}

/// Advice for the database errors a person can fix, by SQLite result code or PostgreSQL SQLSTATE.
fn advice(e: &sqlx::Error) -> Option<&'static str> {
    use sqlx::error::DatabaseError as _;
    let db = e.as_database_error()?;
    if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        // Extended result codes carry the primary code in their low byte.
        let code = sqlite.code()?.parse::<i32>().ok()? & 0xff;
        return match code {
            13 => Some(
                "the disk holding the database is full: free space on it (or move the database \
                 to a disk with room and change [storage].url), then run marsad again; the \
                 interrupted write was rolled back and nothing stored before is lost",
            ),
            8 => Some(
                "the database is read-only for marsad: make the file, its folder and its \
                 -wal/-shm files writable by the user marsad runs as (and the disk mounted \
                 read-write), then run marsad again; nothing stored before is lost",
            ),
            14 => Some(
                "marsad cannot open the file or create its -wal/-shm files beside it: check the \
                 folder exists, is writable by the user marsad runs as and is on a disk mounted \
                 read-write",
            ),
            10 => Some(
                "reading or writing the database file failed: the disk may be full (free space \
                 on it), past a file size limit (ulimit -f) or failing; fix that, then run \
                 marsad again; the interrupted write was rolled back",
            ),
            11 | 26 => Some(
                "the database file is damaged or not a marsad database: restore it from a \
                 backup (`sqlite3 FILE 'PRAGMA integrity_check'` shows the damage)",
            ),
            _ => None,
        };
    }
    match db.code()?.as_ref() {
        "53100" => Some(
            "the PostgreSQL server's disk is full: free space there, then run marsad again; the \
             interrupted write was rolled back and nothing stored before is lost",
        ),
        "25006" => Some(
            "the database is read-only (default_transaction_read_only is on, or the server is a \
             standby): make it writable (ALTER DATABASE … RESET default_transaction_read_only) \
             or point [storage].url at the primary, then run marsad again",
        ),
        "3D000" => Some(
            "the database named in [storage].url is not on that server: create it \
             (`createdb NAME`, owned by the user in the URL) or correct the name; marsad \
             creates its tables itself",
        ),
        "28P01" | "28000" => Some(
            "the server refused the user or password in [storage].url: correct them, or allow \
             this user from this host in the server's pg_hba.conf",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn an_aborted_refresh_says_what_happened_in_one_clean_sentence() {
        let message = StoreError::RefreshAborted {
            message: "task 7 panicked".into(),
        }
        .to_string();
        assert!(message.starts_with("the refresh stopped unexpectedly (task 7 panicked)"));
        assert!(message.contains("nothing of it was stored and it will be retried"));
        assert!(!message.contains("  "), "stray spaces in {message:?}");
    }

    #[test]
    fn writers_share_half_the_lock_table_within_bounds() {
        use super::{MAX_KEY_LOCKS, MIN_KEY_LOCKS, key_budget};
        // PostgreSQL's defaults: 64 locks per transaction × 100 connections.
        assert_eq!(key_budget(6_400, 2), 1_600, "one daemon's two writers");
        assert_eq!(key_budget(6_400, 6), 533, "three daemons");
        assert_eq!(key_budget(6_400, 0), 3_200, "no writer counted yet: as one");
        assert_eq!(key_budget(6_400, 40), MIN_KEY_LOCKS, "twenty daemons");
        assert_eq!(key_budget(640_000, 2), MAX_KEY_LOCKS, "a huge lock table");
        assert_eq!(key_budget(0, 2), MIN_KEY_LOCKS, "no lock table at all");
    }
}
