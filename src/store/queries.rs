//! Sources, fetch log, articles and matches.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::stories::{
    Placement, StoryCacheGuard, assign_stories, prefetch_signatures, prune_story_window,
    reserve_signatures, sync_story_cache,
};
use super::{BeginWrite, Context, Db, StoreError, with_db};
use crate::dedupe::StoryParams;
use crate::matcher::Hit;
use crate::model::{NewArticle, NewMatch};

/// Values looked up per statement at most: far below either backend's parameter limit.
const LOOKUP_CHUNK: usize = 128;
/// Rows written per statement at most (× at most 9 columns).
const INSERT_CHUNK: usize = 64;

/// `IN` lists are padded (with their last value again) to a power of two, so a handful of
/// statement shapes serve every batch from the prepared-statement cache.
fn padded_width(n: usize) -> usize {
    n.next_power_of_two().clamp(4, LOOKUP_CHUNK)
}

/// Rows of a multi-row `VALUES`: `($first, …), (…)`, `cols` placeholders each; on SQLite
/// anonymous `?`s, which it binds in order without looking each one up by name (a lookup that
/// grows with the number of placeholders, so binding a big statement took quadratic time).
fn values_placeholders(rows: usize, cols: usize, sqlite: bool) -> String {
    use std::fmt::Write as _;
    // Written into one string: a 1,024-row statement has thousands of placeholders.
    let mut out = String::with_capacity(rows * cols * if sqlite { 3 } else { 7 });
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            if sqlite {
                out.push('?');
            } else {
                let _ = write!(out, "${}", r * cols + c + 1);
            }
        }
        out.push(')');
    }
    out
}

/// How many of the remaining rows the next multi-row statement takes.
///
/// PostgreSQL: a power of two, so (as for `IN` lists) few statement shapes reach the cache.
/// SQLite: all of them, up to [`WRITE_ROWS`], in a statement prepared for this one use (see
/// [`insert_rows`]): each statement is a round trip to the connection's thread, and a batch's
/// writes split into power-of-two pieces took three to five statements per table.
fn insert_chunk(remaining: usize, sqlite: bool) -> usize {
    if sqlite {
        return remaining.min(WRITE_ROWS);
    }
    let cap = remaining.min(INSERT_CHUNK);
    1 << (usize::BITS - 1 - cap.leading_zeros())
}

/// Rows per SQLite statement at most (× at most 9 columns, well below its 32,766 parameters),
/// and rows story assignment hands [`insert_rows`] at a time.
const WRITE_ROWS: usize = 1024;

/// Values bound one after another, for a statement assembled piece by piece ([`Pending`]).
pub(super) struct Binder<DB: sqlx::Database> {
    args: Result<DB::Arguments, sqlx::error::BoxDynError>,
}

impl<DB: sqlx::Database> Default for Binder<DB> {
    fn default() -> Self {
        Binder {
            args: Ok(Default::default()),
        }
    }
}

impl<DB: sqlx::Database> Binder<DB> {
    /// Values bound so far.
    fn len(&self) -> usize {
        self.args.as_ref().map_or(0, sqlx::Arguments::len)
    }

    /// Binds the next value (as `Query::bind` does; an encoding error is reported on use).
    pub(super) fn bind<'t, T: sqlx::Encode<'t, DB> + sqlx::Type<DB>>(mut self, value: T) -> Self {
        if let Ok(args) = &mut self.args
            && let Err(e) = sqlx::Arguments::add(args, value)
        {
            self.args = Err(e);
        }
        self
    }
}

/// Statements of a transaction that return nothing, held back to go to the database together
/// with the next statement, in one round trip: storing a batch of refreshes took 17 statements,
/// and each trip to the connection (to SQLite's thread, or to the PostgreSQL server, and under
/// the story lock that several daemons wait for) cost more than most of the statements
/// themselves. SQLite: a text of statements run one after the other. PostgreSQL, which runs one
/// statement at a time: data-modifying `WITH` members of the next statement ([`Pending::hold`]).
pub(super) struct Pending<DB: sqlx::Database> {
    sql: String,
    /// PostgreSQL: the held-back statements as `WITH` members, `w1 AS (…), w2 AS (…)`.
    with: String,
    members: usize,
    /// PostgreSQL: rows held back (the values are in arrays, one per column).
    rows: usize,
    binder: Binder<DB>,
}

impl<DB: sqlx::Database> Default for Pending<DB> {
    fn default() -> Self {
        Pending {
            sql: String::new(),
            with: String::new(),
            members: 0,
            rows: 0,
            binder: Binder::default(),
        }
    }
}

/// Rows held back on PostgreSQL at most before they are sent on their own (the arrays of a
/// huge refresh are not all built at once).
const PG_PENDING_ROWS: usize = 4 * WRITE_ROWS;

/// `sql` with its numbered placeholders `$1`, `$2`, … moved up by `offset` (to follow the values
/// of the statements it is sent with). Only marsad's own statement texts are renumbered, and
/// none of them has a `$` outside a placeholder.
fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

impl<DB: sqlx::Database + sqlx::database::HasStatementCache> Pending<DB>
where
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    /// `sql` (one statement, its values bound by `bind`) run after whatever is held back, in one
    /// go; nothing is held back afterwards. Only the rows of `sql` come back: the held-back
    /// statements return none. On PostgreSQL the held-back statements run as part of `sql`,
    /// which therefore does not see their rows (all see the database as it was before).
    pub(super) fn then<'q>(
        &mut self,
        sql: &str,
        bind: impl FnOnce(Binder<DB>) -> Binder<DB>,
    ) -> Result<sqlx::query::Query<'q, DB, DB::Arguments>, sqlx::Error> {
        let Pending {
            sql: mut text,
            with,
            binder,
            ..
        } = std::mem::take(self);
        // Prepared once per connection unless SQLite statements are held back (their text holds
        // as many rows as the batch). PostgreSQL's held-back members make a text of few shapes
        // (which writes a batch has, in a fixed order), each parsed once instead of every batch.
        let persistent = text.is_empty();
        if with.is_empty() {
            text.push_str(sql);
        } else {
            let sql = renumber(sql, binder.len());
            let sql = if sql.is_empty() {
                "SELECT 1"
            } else {
                sql.as_str()
            };
            text = match sql.strip_prefix("WITH ") {
                Some(members) => format!("WITH {with}, {members}"),
                None => format!("WITH {with} {sql}"),
            };
        }
        let args = bind(binder).args.map_err(sqlx::Error::Encode)?;
        Ok(sqlx::query_with(sqlx::AssertSqlSafe(text), args).persistent(persistent))
    }

    /// PostgreSQL: holds back `sql` (a statement returning nothing, placeholders from `$1`, its
    /// `rows` rows bound by `bind`) as a `WITH` member of the next statement sent. True once
    /// enough is held back to send it on its own.
    pub(super) fn hold(
        &mut self,
        sql: &str,
        rows: usize,
        bind: impl FnOnce(Binder<DB>) -> Binder<DB>,
    ) -> bool {
        use std::fmt::Write as _;
        let sql = renumber(sql, self.binder.len());
        self.members += 1;
        let _ = write!(
            self.with,
            "{}w{} AS ({sql})",
            if self.with.is_empty() { "" } else { ", " },
            self.members
        );
        self.binder = bind(std::mem::take(&mut self.binder));
        self.rows += rows;
        self.rows >= PG_PENDING_ROWS
    }

    /// Runs whatever is held back.
    pub(super) fn flush<'q>(
        &mut self,
    ) -> Option<Result<sqlx::query::Query<'q, DB, DB::Arguments>, sqlx::Error>> {
        if self.sql.is_empty() && self.with.is_empty() {
            return None;
        }
        Some(self.then("", |b| b))
    }
}

/// The URL, GUID and content-hash lookups of a batch as one SQLite text of statements (one per
/// [`WRITE_ROWS`] values of each), with their values. Every row is `(k, s, g, id, h)`: kind
/// (0 URL, 1 GUID, 2 hash), URL or source, GUID, article, its content hash. (Generic only so
/// that it compiles in both arms of `with_db!`.)
fn sqlite_lookups<DB: sqlx::Database>(
    urls: &[String],
    guids: &[(String, String)],
    hashes: &[String],
) -> (String, Binder<DB>)
where
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let list = |n: usize| vec!["?"; n].join(", ");
    let mut sql = String::new();
    let mut binder = Binder::default();
    // Each statement within SQLite's limit of 32,766 values.
    for urls in urls.chunks(WRITE_ROWS) {
        sql.push_str(&format!(
            "SELECT 0 AS k, u.url AS s, NULL AS g, u.article AS id, a.content_hash AS h \
             FROM article_urls u JOIN articles a ON a.id = u.article WHERE u.url IN ({});\n",
            list(urls.len())
        ));
        binder = urls.iter().fold(binder, |b, u| b.bind(u.as_str()));
    }
    for guids in guids.chunks(WRITE_ROWS) {
        // A join with the list rather than `(source, guid) IN (…)`, which SQLite answers
        // with a scan of the whole table.
        sql.push_str(&format!(
            "SELECT 1 AS k, g.source AS s, g.guid AS g, g.article AS id, a.content_hash AS h \
             FROM (VALUES {}) AS v JOIN article_guids g ON g.source = v.column1 AND g.guid = v.column2 \
             JOIN articles a ON a.id = g.article;\n",
            values_placeholders(guids.len(), 2, true)
        ));
        binder = guids.iter().fold(binder, |b, (source, guid)| {
            b.bind(source.as_str()).bind(guid.as_str())
        });
    }
    for hashes in hashes.chunks(WRITE_ROWS) {
        sql.push_str(&format!(
            "SELECT 2 AS k, NULL AS s, NULL AS g, id, content_hash AS h FROM articles \
             WHERE content_hash IN ({});\n",
            list(hashes.len())
        ));
        binder = hashes.iter().fold(binder, |b, h| b.bind(h.as_str()));
    }
    (sql, binder)
}

/// The URL, GUID and content-hash lookups of a batch as one PostgreSQL statement, each list an
/// array (see [`PgArray`]); rows as in [`sqlite_lookups`].
const PG_LOOKUPS: &str = "SELECT 0::int8 AS k, u.url AS s, NULL::text AS g, u.article AS id, \
     a.content_hash AS h FROM article_urls u JOIN articles a ON a.id = u.article \
     WHERE u.url = ANY($1) \
     UNION ALL SELECT 1::int8, g.source, g.guid, g.article, a.content_hash \
     FROM unnest($2::text[], $3::text[]) AS v(source, guid) \
     JOIN article_guids g ON g.source = v.source AND g.guid = v.guid \
     JOIN articles a ON a.id = g.article \
     UNION ALL SELECT 2::int8, NULL, NULL, id, content_hash FROM articles \
     WHERE content_hash = ANY($4)";

/// Values of each list one [`PG_LOOKUPS`] statement looks up at most.
const PG_LOOKUP_ROWS: usize = 4 * WRITE_ROWS;

/// Values held back at most before they are sent on their own.
const PENDING_VALUES: usize = 4 * WRITE_ROWS;

/// Which backend an executor of [`insert_rows`] talks to.
trait Backend {
    const SQLITE: bool;
    fn is_sqlite(&self) -> bool {
        Self::SQLITE
    }
}

impl Backend for &mut sqlx::SqliteConnection {
    const SQLITE: bool = true;
}

impl Backend for &mut sqlx::PgConnection {
    const SQLITE: bool = false;
}

/// One column of a batch's rows, bound as one PostgreSQL array for `unnest($1::text[], …)`: the
/// batch is one statement per table, of one fixed text that plans in a moment. As multi-row
/// `VALUES` lists (64 rows and up to 576 parameters a statement, so three or four statements
/// per table and batch, each planned for its values) planning was a sixth of the server's time
/// storing refreshes, and each statement a round trip. SQLite has no arrays: the statements
/// that bind one run on PostgreSQL only, and binding one on SQLite is an error.
pub(super) struct PgArray<T>(pub(super) Vec<T>);

impl<T> sqlx::Type<sqlx::Postgres> for PgArray<T>
where
    Vec<T>: sqlx::Type<sqlx::Postgres>,
{
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <Vec<T> as sqlx::Type<sqlx::Postgres>>::type_info()
    }
    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <Vec<T> as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'q, T> sqlx::Encode<'q, sqlx::Postgres> for PgArray<T>
where
    Vec<T>: sqlx::Encode<'q, sqlx::Postgres>,
{
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        self.0.encode_by_ref(buf)
    }
    fn size_hint(&self) -> usize {
        self.0.size_hint()
    }
}

impl<T> sqlx::Type<sqlx::Sqlite> for PgArray<T> {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <Vec<u8> as sqlx::Type<sqlx::Sqlite>>::type_info()
    }
}

impl<'q, T> sqlx::Encode<'q, sqlx::Sqlite> for PgArray<T> {
    fn encode_by_ref(
        &self,
        _buf: &mut <sqlx::Sqlite as sqlx::Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Err("a column array is bound on PostgreSQL only".into())
    }
}

/// `sql`'s `VALUES {VALUES}` as PostgreSQL reads a batch of rows from one array per column
/// (see [`PgArray`]): `SELECT * FROM unnest($1::text[], …) AS t(column1, …)`, the column names
/// a `VALUES` list has.
fn unnest_sql(sql: &str, types: &[&str]) -> String {
    use std::fmt::Write as _;
    let mut rows = String::from("SELECT * FROM unnest(");
    for (i, ty) in types.iter().enumerate() {
        let _ = write!(rows, "{}${}::{ty}[]", if i == 0 { "" } else { ", " }, i + 1);
    }
    rows.push_str(") AS t(");
    for i in 1..=types.len() {
        let _ = write!(rows, "{}column{i}", if i == 1 { "" } else { ", " });
    }
    rows.push(')');
    sql.replace("VALUES {VALUES}", &rows)
}

/// Writes `$rows` with `$sql`, whose `VALUES {VALUES}` stands for the rows, each row's values
/// given by `|row| (value => "sql type", …)`: on SQLite as [`insert_rows`] does (multi-row
/// `VALUES`), on PostgreSQL one statement per [`WRITE_ROWS`] rows with one array per column
/// ([`unnest_sql`]); with `defer`, held back in `$pending` (see [`Pending`]). With `after` and a trailing
/// `for row { … }`, runs that on each row returned (`RETURNING`), sending what `$pending` held
/// back first. A macro so it expands once per backend inside `with_db!`.
macro_rules! write_rows {
    (defer $pending:expr, $exec:expr, $sql:expr, $context:expr, $rows:expr, |$row:ident| ($($col:expr => $ty:literal),+ $(,)?)) => {{
        let types: &[&str] = &[$($ty),+];
        if Backend::is_sqlite(&$exec) {
            insert_rows!(defer $pending, $exec, $sql, $context, types.len(), $rows, |q, $row| q $(.bind($col))+);
        } else {
            let sql = unnest_sql($sql, types);
            for part in $rows.chunks(WRITE_ROWS) {
                let full = $pending.hold(&sql, part.len(), |b| {
                    b $(.bind(PgArray(part.iter().map(|$row| $col).collect::<Vec<_>>())))+
                });
                if full && let Some(query) = $pending.flush() {
                    query.context($context)?.execute(&mut *$exec).await.context($context)?;
                }
            }
        }
    }};
    (after $pending:expr, $exec:expr, $sql:expr, $context:expr, $rows:expr, |$row:ident| ($($col:expr => $ty:literal),+ $(,)?), for $r:ident $handle:block) => {{
        let types: &[&str] = &[$($ty),+];
        if Backend::is_sqlite(&$exec) {
            insert_rows!(after $pending, $exec, $sql, $context, types.len(), $rows, |q, $row| q $(.bind($col))+, for $r $handle);
        } else {
            let sql = unnest_sql($sql, types);
            for part in $rows.chunks(WRITE_ROWS) {
                for $r in $pending
                    .then(&sql, |b| b $(.bind(PgArray(part.iter().map(|$row| $col).collect::<Vec<_>>())))+)
                    .context($context)?
                    .fetch_all(&mut *$exec)
                    .await
                    .context($context)? $handle
            }
        }
    }};
}

fn distinct<T: Clone + Ord>(items: &[T]) -> Vec<T> {
    let mut out = items.to_vec();
    out.sort_unstable();
    out.dedup();
    out
}

/// Runs `$sql`, whose `(?)` stands for the list of `$keys`, in chunks; `$pre` are bound first
/// (as `$1`, `$2`, …). Evaluates to all rows. A macro so it expands once per backend.
macro_rules! select_in {
    ($exec:expr, $sql:expr, $context:expr, [$($pre:expr),*], $keys:expr) => {{
        let keys = $keys;
        let fixed: usize = 0 $(+ { let _ = &$pre; 1 })*;
        let mut rows = Vec::new();
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            let width = padded_width(chunk.len());
            let list: Vec<String> = (0..width).map(|i| format!("${}", fixed + i + 1)).collect();
            // Only numbered placeholders are formatted in; the values are bound.
            let sql = $sql.replace("(?)", &format!("({})", list.join(", ")));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)) $(.bind($pre))*;
            for i in 0..width {
                query = query.bind(chunk[i.min(chunk.len() - 1)].clone());
            }
            rows.extend(query.fetch_all($exec).await.context($context)?);
        }
        rows
    }};
}

/// Runs `$sql`, whose `{VALUES}` stands for rows of `$cols` placeholders, over `$rows` in chunks,
/// binding each row with `|query, row| …`. Evaluates to the rows returned (`RETURNING`); with a
/// trailing `for row { … }`, runs that on each row returned instead, chunk by chunk (a refresh
/// of 100,000 items does not hold 100,000 returned rows at once).
macro_rules! insert_rows {
    // Statements that return nothing: held back in `$pending` on SQLite (sent with the next
    // statement, see `Pending`), run at once on PostgreSQL.
    (defer $pending:expr, $exec:expr, $sql:expr, $context:expr, $cols:expr, $rows:expr, |$q:ident, $row:ident| $bind:expr) => {{
        let rows = $rows;
        let exec = $exec;
        let sqlite = Backend::is_sqlite(&exec);
        let pending = &mut $pending;
        let mut at = 0;
        while at < rows.len() {
            let take = insert_chunk(rows.len() - at, sqlite);
            // Only placeholders are formatted in; the values are bound.
            let sql = $sql.replace("{VALUES}", &values_placeholders(take, $cols, sqlite));
            let part = &rows[at..at + take];
            let bind = |mut $q: Binder<_>| {
                for $row in part {
                    $q = $bind;
                }
                $q
            };
            if sqlite {
                pending.binder = bind(std::mem::take(&mut pending.binder));
                pending.sql.push_str(&sql);
                pending.sql.push_str(";\n");
                // A huge refresh (100,000 items) is not held back whole: memory stays bounded.
                if pending.binder.len() >= PENDING_VALUES {
                    if let Some(query) = pending.flush() {
                        query.context($context)?.execute(&mut *exec).await.context($context)?;
                    }
                }
            } else {
                pending.then(&sql, bind).context($context)?.execute(&mut *exec).await.context($context)?;
            }
            at += take;
        }
    }};
    // Statements that return rows, each handled by `$handle`; what `$pending` held back goes
    // with the first.
    (after $pending:expr, $exec:expr, $sql:expr, $context:expr, $cols:expr, $rows:expr, |$q:ident, $row:ident| $bind:expr, for $r:ident $handle:block) => {{
        let rows = $rows;
        let exec = $exec;
        let sqlite = Backend::is_sqlite(&exec);
        let pending = &mut $pending;
        let mut at = 0;
        while at < rows.len() {
            let take = insert_chunk(rows.len() - at, sqlite);
            // Only placeholders are formatted in; the values are bound.
            let sql = $sql.replace("{VALUES}", &values_placeholders(take, $cols, sqlite));
            let part = &rows[at..at + take];
            let query = pending.then(&sql, |mut $q| {
                for $row in part {
                    $q = $bind;
                }
                $q
            }).context($context)?;
            for $r in query.persistent(!sqlite).fetch_all(&mut *exec).await.context($context)? $handle
            at += take;
        }
    }};
    ($exec:expr, $sql:expr, $context:expr, $cols:expr, $rows:expr, |$q:ident, $row:ident| $bind:expr, for $r:ident $handle:block) => {{
        let rows = $rows;
        let exec = $exec;
        let sqlite = Backend::is_sqlite(&exec);
        let mut at = 0;
        while at < rows.len() {
            let take = insert_chunk(rows.len() - at, sqlite);
            // Only placeholders are formatted in; the values are bound.
            let sql = $sql.replace("{VALUES}", &values_placeholders(take, $cols, sqlite));
            let mut $q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(!sqlite);
            for $row in &rows[at..at + take] {
                $q = $bind;
            }
            for $r in $q.fetch_all(&mut *exec).await.context($context)? $handle
            at += take;
        }
    }};
    ($exec:expr, $sql:expr, $context:expr, $cols:expr, $rows:expr, |$q:ident, $row:ident| $bind:expr) => {{
        let rows = $rows;
        let exec = $exec;
        let sqlite = Backend::is_sqlite(&exec);
        let mut returned = Vec::new();
        let mut at = 0;
        while at < rows.len() {
            let take = insert_chunk(rows.len() - at, sqlite);
            // Only placeholders are formatted in; the values are bound.
            let sql = $sql.replace("{VALUES}", &values_placeholders(take, $cols, sqlite));
            let mut $q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(!sqlite);
            for $row in &rows[at..at + take] {
                $q = $bind;
            }
            returned.extend($q.fetch_all(&mut *exec).await.context($context)?);
            at += take;
        }
        returned
    }};
}

/// A [`SourceState`] from a row of the `sources` columns it names (either backend's row type).
macro_rules! source_state_from {
    ($r:expr) => {{
        let r = $r;
        Ok::<_, sqlx::Error>(SourceState {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            url: r.try_get("url")?,
            etag: r.try_get("etag")?,
            last_modified: r.try_get("last_modified")?,
            last_attempt: r.try_get("last_attempt")?,
            last_success: r.try_get("last_success")?,
            last_error: r.try_get("last_error")?,
            consecutive_failures: r.try_get("consecutive_failures")?,
            next_run: r.try_get("next_run")?,
            lease_owner: r.try_get("lease_owner")?,
            lease_until: r.try_get("lease_until")?,
        })
    }};
}
pub(super) use source_state_from;

/// Collects a tuple of column reads into one result.
trait Columns<T> {
    fn all(self) -> Result<T, sqlx::Error>;
}

impl<A, B> Columns<(A, B)> for (Result<A, sqlx::Error>, Result<B, sqlx::Error>) {
    fn all(self) -> Result<(A, B), sqlx::Error> {
        Ok((self.0?, self.1?))
    }
}

impl<A, B, C> Columns<(A, B, C)>
    for (
        Result<A, sqlx::Error>,
        Result<B, sqlx::Error>,
        Result<C, sqlx::Error>,
    )
{
    fn all(self) -> Result<(A, B, C), sqlx::Error> {
        Ok((self.0?, self.1?, self.2?))
    }
}

impl<A, B, C, D> Columns<(A, B, C, D)>
    for (
        Result<A, sqlx::Error>,
        Result<B, sqlx::Error>,
        Result<C, sqlx::Error>,
        Result<D, sqlx::Error>,
    )
{
    fn all(self) -> Result<(A, B, C, D), sqlx::Error> {
        Ok((self.0?, self.1?, self.2?, self.3?))
    }
}

/// Keys of the advisory locks a refresh takes on PostgreSQL before deduplicating: every
/// canonical URL and content hash it stores or looks up, and its source's GUIDs as one (GUIDs
/// are per source: only refreshes of the same source can meet on one). Two refreshes that could
/// find or create the same article share a key and so run one after the other; the rest write
/// in parallel. Sorted, so refreshes take them in one order and cannot deadlock. Each key takes
/// a slot of the server's lock table, which bounds the keys of a batch (see
/// [`KeyBudget`](super::KeyBudget)): a key per GUID made batches a third smaller. FNV-1a:
/// stable across builds, so daemons of different versions agree (versions that locked each GUID
/// alone too: a source is leased to one daemon at a time, so its GUIDs meet no other daemon's).
fn dedupe_lock_keys(write: &RefreshWrite) -> Vec<i64> {
    fn key(parts: &[&str]) -> i64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for b in part.bytes().chain([0xff]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h as i64
    }
    let mut keys = Vec::new();
    for (a, _) in &write.articles {
        keys.push(key(&["url", &a.url]));
        keys.push(key(&["hash", &a.content_hash]));
        if a.guid.is_some() {
            keys.push(key(&["guids", &a.source]));
        }
    }
    for (canonical, _) in &write.seen_urls {
        keys.push(key(&["url", canonical]));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// An article of a refresh: one already stored, or the k-th new one of this refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ref {
    Old(i64),
    New(usize),
}

/// What the database holds, before the refresh, for the refresh's URLs, GUIDs and texts.
#[derive(Debug, Default)]
struct Stored {
    /// Canonical URL → article.
    urls: HashMap<String, i64>,
    /// (source, GUID) → article.
    guids: HashMap<(String, String), i64>,
    /// Content hash → articles with it, lowest id first.
    by_hash: HashMap<String, Vec<i64>>,
    /// The content hash of every article above.
    hashes: HashMap<i64, String>,
}

/// A new article: `first` is the index of the article stored (source, URL, dates, matches,
/// story); `text` of the one whose title and body it ends up with (a later article of the same
/// refresh at the same URL or GUID with other text is an edit of it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct NewRow {
    first: usize,
    text: usize,
}

#[derive(Debug, Default)]
struct Plan {
    /// Per article of the refresh, in order: which article it is.
    refs: Vec<Ref>,
    new: Vec<NewRow>,
    /// Stored articles whose text changed → index of the article with the text to keep.
    edits: Vec<(i64, usize)>,
    /// Every canonical URL known after the refresh's articles → its article.
    urls: HashMap<String, Ref>,
    known: usize,
}

/// Decides, for each article of a refresh, whether it is new or which article it is, with the
/// same outcome as storing them one by one in order: by canonical URL, then GUID within its
/// source, then the lowest id with the same text (articles stored earlier in the refresh and
/// edits made earlier in it included).
fn plan_refresh(articles: &[&NewArticle], stored: &Stored) -> Plan {
    let mut plan = Plan {
        urls: stored
            .urls
            .iter()
            .map(|(u, id)| (u.clone(), Ref::Old(*id)))
            .collect(),
        ..Plan::default()
    };
    let mut guids: HashMap<(&str, &str), Ref> = stored
        .guids
        .iter()
        .map(|((s, g), id)| ((s.as_str(), g.as_str()), Ref::Old(*id)))
        .collect();
    // Text changes made by this refresh so far: stored article → index of the article with its
    // current text.
    let mut edited: HashMap<i64, usize> = HashMap::new();
    // The same, by current text: which edited stored articles and which new rows now have each
    // content hash (lowest first), so a lookup by text costs a map probe, not a scan of every
    // article of the refresh (a 100,000-item feed made that scan quadratic).
    let mut edited_by_hash: HashMap<&str, std::collections::BTreeSet<i64>> = HashMap::new();
    let mut new_by_hash: HashMap<&str, std::collections::BTreeSet<usize>> = HashMap::new();
    let hash_of = |r: Ref, plan: &Plan, edited: &HashMap<i64, usize>| -> Option<String> {
        match r {
            Ref::Old(id) => match edited.get(&id) {
                Some(i) => Some(articles[*i].content_hash.clone()),
                None => stored.hashes.get(&id).cloned(),
            },
            Ref::New(k) => Some(articles[plan.new[k].text].content_hash.clone()),
        }
    };
    for (i, a) in articles.iter().enumerate() {
        let mut found = plan.urls.get(a.url.as_str()).copied();
        if found.is_none()
            && let Some(guid) = &a.guid
        {
            found = guids.get(&(a.source.as_str(), guid.as_str())).copied();
        }
        let by_identity = found.is_some();
        if found.is_none() {
            let h = a.content_hash.as_str();
            // The lowest stored id whose text is (still) this one, else the first new one.
            let unchanged = stored
                .by_hash
                .get(h)
                .into_iter()
                .flatten()
                .copied()
                .find(|id| hash_of(Ref::Old(*id), &plan, &edited) == Some(h.to_string()));
            let changed_to = edited_by_hash.get(h).and_then(|ids| ids.first()).copied();
            found = match (unchanged, changed_to) {
                (Some(x), Some(y)) => Some(Ref::Old(x.min(y))),
                (Some(x), None) | (None, Some(x)) => Some(Ref::Old(x)),
                (None, None) => new_by_hash
                    .get(h)
                    .and_then(|ks| ks.first())
                    .map(|k| Ref::New(*k)),
            };
        }
        let r = match found {
            Some(r) => {
                plan.known += 1;
                if by_identity && hash_of(r, &plan, &edited) != Some(a.content_hash.clone()) {
                    match r {
                        Ref::Old(id) => {
                            if let Some(before) = edited.insert(id, i)
                                && let Some(ids) =
                                    edited_by_hash.get_mut(articles[before].content_hash.as_str())
                            {
                                ids.remove(&id);
                            }
                            edited_by_hash
                                .entry(a.content_hash.as_str())
                                .or_default()
                                .insert(id);
                        }
                        Ref::New(k) => {
                            let before = articles[plan.new[k].text].content_hash.as_str();
                            if let Some(ks) = new_by_hash.get_mut(before) {
                                ks.remove(&k);
                            }
                            plan.new[k].text = i;
                            new_by_hash
                                .entry(a.content_hash.as_str())
                                .or_default()
                                .insert(k);
                        }
                    }
                }
                r
            }
            None => {
                plan.new.push(NewRow { first: i, text: i });
                let k = plan.new.len() - 1;
                new_by_hash
                    .entry(a.content_hash.as_str())
                    .or_default()
                    .insert(k);
                Ref::New(k)
            }
        };
        plan.refs.push(r);
        plan.urls.entry(a.url.clone()).or_insert(r);
        if let Some(guid) = &a.guid {
            guids.entry((a.source.as_str(), guid.as_str())).or_insert(r);
        }
    }
    plan.edits = edited.into_iter().collect();
    plan.edits.sort_unstable();
    plan
}

/// Static description of a source, synchronised from sources.toml so status can list it.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub url: String,
}

/// What the store remembers about a source between refreshes.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SourceState {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub consecutive_failures: i64,
    pub next_run: Option<DateTime<Utc>>,
    /// The daemon holding the source (several daemons on one database) and until when.
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
}

/// The outcome of one refresh, written in one transaction with its articles and matches.
#[derive(Debug, Clone)]
pub struct RefreshWrite {
    pub source: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// `ok`, `not_modified` or `error`.
    pub outcome: &'static str,
    pub http_status: Option<u16>,
    /// New validators for the next conditional GET; `None` keeps what is stored.
    pub validators: Option<(Option<String>, Option<String>)>,
    pub error: Option<String>,
    pub items: usize,
    pub articles: Vec<(NewArticle, Vec<NewMatch>)>,
    /// Links to stored articles seen again, as (canonical, as linked); each new form is recorded.
    pub seen_urls: Vec<(String, String)>,
    pub next_run: Option<DateTime<Utc>>,
    /// The daemon whose lease on the source this write ends (see `Db::lease_due_sources`), so
    /// giving the source back costs no statement of its own; `None` outside a daemon.
    pub release_lease: Option<String>,
}

/// What happened to each article handed to `commit_refresh`.
#[derive(Debug, Clone, Default)]
pub struct StoreOutcome {
    /// Ids of articles stored for the first time.
    pub new: Vec<i64>,
    /// Articles already known (by URL, GUID or content) — only their new URLs were recorded.
    pub known: usize,
    /// Matches stored for the new articles.
    pub matches: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredArticle {
    pub id: i64,
    pub source: String,
    pub url: String,
    pub urls: Vec<String>,
    pub title: String,
    pub body: String,
    pub published: Option<DateTime<Utc>>,
    pub fetched: DateTime<Utc>,
    pub language: Option<String>,
    pub story: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredMatch {
    pub watchlist: String,
    pub article: i64,
    pub source: String,
    pub url: String,
    pub urls: Vec<String>,
    pub title: String,
    pub body: String,
    pub published: Option<DateTime<Utc>>,
    pub language: Option<String>,
    pub matched: DateTime<Utc>,
    pub hits: Vec<Hit>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FetchLog {
    pub source: String,
    pub started: DateTime<Utc>,
    pub outcome: String,
    pub new_articles: i64,
    pub error: Option<String>,
}

/// A refresh's write with what can be worked out before its transaction: nothing that cannot
/// fail on the database is done inside it, and the CPU work (signatures) is done by the
/// refreshes in parallel rather than by the (on SQLite, single) writer.
struct PreparedWrite {
    write: RefreshWrite,
    keys: Vec<i64>,
    lookup_urls: Vec<String>,
    hashes: Vec<String>,
    /// (source, GUID) of its articles.
    guids: Vec<(String, String)>,
    /// Per article, its matches' hits as JSON.
    hits: Vec<Vec<String>>,
    /// Per article, its story signature; empty for a write of more than
    /// [`PRECOMPUTED_SIGNATURES`] articles, whose new ones get theirs as they are placed.
    signatures: Vec<crate::dedupe::Signature>,
}

impl PreparedWrite {
    fn new(mut write: RefreshWrite) -> Result<PreparedWrite, StoreError> {
        let keys = dedupe_lock_keys(&write);
        let mut lookup_urls: Vec<String> =
            write.articles.iter().map(|(a, _)| a.url.clone()).collect();
        lookup_urls.extend(
            write
                .seen_urls
                .iter()
                .map(|(canonical, _)| canonical.clone()),
        );
        let lookup_urls = distinct(&lookup_urls);
        let hashes = distinct(
            &write
                .articles
                .iter()
                .map(|(a, _)| a.content_hash.clone())
                .collect::<Vec<_>>(),
        );
        let guids = distinct(
            &write
                .articles
                .iter()
                .filter_map(|(a, _)| Some((a.source.clone(), a.guid.clone()?)))
                .collect::<Vec<_>>(),
        );
        let mut hits: Vec<Vec<String>> = Vec::with_capacity(write.articles.len());
        for (_, matches) in &write.articles {
            hits.push(
                matches
                    .iter()
                    .map(|m| serde_json::to_string(&m.hits))
                    .collect::<Result<_, _>>()
                    .map_err(|e| StoreError::Corrupt {
                        context: "encoding hits",
                        message: e.to_string(),
                    })?,
            );
        }
        let signatures = if write.articles.len() <= PRECOMPUTED_SIGNATURES {
            write
                .articles
                .iter_mut()
                .map(|(a, _)| match a.signature.take() {
                    Some(signature) => *signature,
                    None => crate::dedupe::signature(&a.title, &a.body),
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(PreparedWrite {
            write,
            keys,
            lookup_urls,
            hashes,
            guids,
            hits,
            signatures,
        })
    }
}

/// Signatures (1 KiB each) worked out before the transaction for a write of at most this many
/// articles (with their content hash, by the pipeline, or else here): a feed's usual size, not a
/// hostile 100,000-item one.
pub const PRECOMPUTED_SIGNATURES: usize = 1_000;

/// A source's state after a refresh, as bound: (id, time, error, next run, failed, keep
/// validators, etag, last-modified).
type SourceStateRow<'a> = (
    &'a str,
    DateTime<Utc>,
    Option<&'a str>,
    Option<DateTime<Utc>>,
    bool,
    bool,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

/// Articles a process stores in a PostgreSQL database before it first refreshes the table
/// statistics (see `Db::note_growth`).
const ANALYZE_FIRST: u64 = 1_000;

/// Per database: articles this process stored, the count at which it next analyses, and whether
/// an analysis is running.
struct Growth {
    stored: u64,
    next: u64,
    running: bool,
}

fn growth() -> &'static std::sync::Mutex<HashMap<String, Growth>> {
    static GROWTH: std::sync::OnceLock<std::sync::Mutex<HashMap<String, Growth>>> =
        std::sync::OnceLock::new();
    GROWTH.get_or_init(Default::default)
}

/// Writes one group commit takes at most.
const GROUP_MAX_WRITES: usize = 64;
/// Articles one group commit takes at most (a single larger write is taken alone).
const GROUP_MAX_ARTICLES: usize = 4_096;

/// A write waiting for a group commit.
struct Queued {
    ticket: u64,
    write: PreparedWrite,
    stories: StoryParams,
    done: tokio::sync::oneshot::Sender<Result<StoreOutcome, StoreError>>,
}

#[derive(Default)]
struct Queue {
    next_ticket: u64,
    waiting: Vec<Queued>,
}

impl Queue {
    /// The oldest writes, within the group limits, with the same story parameters and each
    /// source at most once.
    fn take_batch(&mut self, max_keys: usize) -> Vec<Queued> {
        let Some(first) = self.waiting.first() else {
            return Vec::new();
        };
        let stories = first.stories;
        let mut articles = 0;
        let mut keys = 0;
        let mut take = 0;
        let mut sources = HashSet::new();
        for q in &self.waiting {
            let n = q.write.write.articles.len();
            let k = q.write.keys.len();
            let source = q.write.write.source.as_str();
            if take > 0
                && (take == GROUP_MAX_WRITES
                    || articles + n > GROUP_MAX_ARTICLES
                    || keys + k > max_keys
                    || q.stories != stories
                    || sources.contains(source))
            {
                break;
            }
            sources.insert(source);
            articles += n;
            keys += k;
            take += 1;
        }
        self.waiting.drain(..take).collect()
    }
}

/// One database's group commit state in this process: the queue and the write gate
/// ([`Db::gate`]).
struct Group {
    queue: std::sync::Mutex<Queue>,
    gate: std::sync::Arc<tokio::sync::Semaphore>,
}

fn group_of(db: &Db) -> std::sync::Arc<Group> {
    type Groups = std::sync::Mutex<HashMap<String, std::sync::Arc<Group>>>;
    static GROUPS: std::sync::OnceLock<Groups> = std::sync::OnceLock::new();
    let mut groups = GROUPS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    groups
        .entry(db.identity())
        .or_insert_with(|| {
            std::sync::Arc::new(Group {
                queue: Default::default(),
                gate: db.gate(),
            })
        })
        .clone()
}

/// Takes a queued write back out if its refresh is dropped before a batch took it.
struct Withdraw {
    group: std::sync::Arc<Group>,
    ticket: u64,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        let mut queue = self.group.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.waiting.retain(|q| q.ticket != self.ticket);
    }
}

impl Db {
    /// Records the configured sources (insert or update name/kind/url); state columns are kept.
    ///
    /// Only sources that are new or changed are written. Writing every row locked all of them
    /// until the commit: daemons starting together, or one reloading its configuration, held
    /// up each other's refreshes (whose writes update those rows) for up to a second.
    pub async fn sync_sources(&self, sources: &[SourceInfo]) -> Result<(), StoreError> {
        with_db!(self, pool => {
            let stored: HashMap<String, (String, String, String)> =
                sqlx::query("SELECT id, name, kind, url FROM sources")
                    .fetch_all(pool)
                    .await
                    .context("reading sources")?
                    .iter()
                    .map(|r| Ok((r.try_get("id")?, (r.try_get("name")?, r.try_get("kind")?, r.try_get("url")?))))
                    .collect::<Result<_, sqlx::Error>>()
                    .context("decoding sources")?;
            // Many rows per statement (10,000 sources were 10,000 statements at every start);
            // a statement may not upsert one id twice, so the last of a repeated id wins, as it
            // did one by one.
            let mut last: HashMap<&str, usize> = HashMap::with_capacity(sources.len());
            for (i, s) in sources.iter().enumerate() {
                last.insert(s.id.as_str(), i);
            }
            let rows: Vec<&SourceInfo> = sources
                .iter()
                .enumerate()
                .filter(|(i, s)| last.get(s.id.as_str()) == Some(i))
                .map(|(_, s)| s)
                .filter(|s| {
                    stored.get(&s.id).is_none_or(|(name, kind, url)| {
                        (name, kind, url) != (&s.name, &s.kind, &s.url)
                    })
                })
                .collect();
            if rows.is_empty() {
                return Ok(());
            }
            let mut tx = pool.begin().await.context("starting a transaction")?;
            insert_rows!(&mut *tx,
                "INSERT INTO sources (id, name, kind, url) VALUES {VALUES} \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, url = excluded.url",
                "recording sources", 4, &rows,
                |q, s| q.bind(&s.id).bind(&s.name).bind(&s.kind).bind(&s.url));
            tx.commit().await.context("committing sources")?;
            Ok(())
        })
    }

    pub async fn source_states(&self) -> Result<Vec<SourceState>, StoreError> {
        const SQL: &str = "SELECT id, name, kind, url, etag, last_modified, last_attempt, last_success, \
            last_error, consecutive_failures, next_run, lease_owner, lease_until FROM sources ORDER BY id";
        with_db!(self, pool => {
            let rows = sqlx::query(SQL).fetch_all(pool).await.context("reading sources")?;
            rows.iter()
                .map(|r| source_state_from!(r))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("decoding sources")
        })
    }

    /// One source's state; read once per refresh, so it must not scan every source.
    pub async fn source_state(&self, id: &str) -> Result<Option<SourceState>, StoreError> {
        const SQL: &str = "SELECT id, name, kind, url, etag, last_modified, last_attempt, last_success, \
            last_error, consecutive_failures, next_run, lease_owner, lease_until FROM sources WHERE id = $1";
        with_db!(self, pool => {
            let row = sqlx::query(SQL).bind(id).fetch_optional(pool).await.context("reading a source")?;
            row.map(|r| source_state_from!(&r))
            .transpose()
            .context("decoding a source")
        })
    }

    /// Which of these canonical URLs are already stored (so their pages need not be fetched again).
    pub async fn known_urls(&self, urls: &[String]) -> Result<HashSet<String>, StoreError> {
        let urls = distinct(urls);
        with_db!(self, pool => select_in!(pool,
            "SELECT DISTINCT url FROM article_urls WHERE url IN (?)",
            "looking up known URLs", [], &urls)
            .iter()
            .map(|r| r.try_get("url"))
            .collect::<Result<HashSet<String>, _>>()
            .context("decoding known URLs"))
    }

    /// Records pages `source` deliberately did not fetch, as (canonical URL, reason).
    pub async fn record_skipped(
        &self,
        source: &str,
        skipped: &[(String, String)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // One row per URL (the last reason given wins), so one statement never updates a row twice.
        let mut last: HashMap<&str, &str> = HashMap::new();
        let mut rows: Vec<(&str, &str)> = Vec::new();
        for (url, reason) in skipped {
            if last.insert(url, reason).is_none() {
                rows.push((url, reason));
            }
        }
        for row in &mut rows {
            row.1 = last[row.0];
        }
        with_db!(self, pool => {
            let mut tx = pool.begin().await.context("starting a transaction")?;
            insert_rows!(&mut *tx,
                "INSERT INTO skipped_urls (url, source, reason, last_seen) VALUES {VALUES} \
                 ON CONFLICT (url) DO UPDATE SET source = excluded.source, reason = excluded.reason, \
                 last_seen = excluded.last_seen",
                "recording a skipped page", 4, &rows,
                |q, r| q.bind(r.0).bind(source).bind(r.1).bind(at));
            tx.commit().await.context("committing skipped pages")?;
            Ok(())
        })
    }

    /// Which of these canonical URLs were skipped at or after `since`.
    pub async fn recently_skipped(
        &self,
        urls: &[String],
        since: DateTime<Utc>,
    ) -> Result<HashSet<String>, StoreError> {
        let urls = distinct(urls);
        with_db!(self, pool => select_in!(pool,
            "SELECT url FROM skipped_urls WHERE last_seen >= $1 AND url IN (?)",
            "looking up skipped pages", [since], &urls)
            .iter()
            .map(|r| r.try_get("url"))
            .collect::<Result<HashSet<String>, _>>()
            .context("decoding skipped pages"))
    }

    /// Skipped pages of `source`, newest first, as (URL, reason, when).
    pub async fn skipped_urls(
        &self,
        source: &str,
    ) -> Result<Vec<(String, String, DateTime<Utc>)>, StoreError> {
        with_db!(self, pool => {
            let rows = sqlx::query("SELECT url, reason, last_seen FROM skipped_urls WHERE source = $1 ORDER BY last_seen DESC, url")
                .bind(source)
                .fetch_all(pool)
                .await
                .context("reading skipped pages")?;
            rows.iter()
                .map(|r| Ok((r.try_get("url")?, r.try_get("reason")?, r.try_get("last_seen")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("decoding skipped pages")
        })
    }

    /// Which of these GUIDs of `source` are already stored.
    pub async fn known_guids(
        &self,
        source: &str,
        guids: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        let guids = distinct(guids);
        with_db!(self, pool => select_in!(pool,
            "SELECT guid FROM article_guids WHERE source = $1 AND guid IN (?)",
            "looking up known GUIDs", [source], &guids)
            .iter()
            .map(|r| r.try_get("guid"))
            .collect::<Result<HashSet<String>, _>>()
            .context("decoding known GUIDs"))
    }

    /// [`Db::known_guids`] of `source` and [`Db::known_urls`] at once: on PostgreSQL one statement
    /// (a round trip and a plan per refresh fewer, 2,000 of them in a 1,000-source refresh).
    pub async fn known_guids_and_urls(
        &self,
        source: &str,
        guids: &[String],
        urls: &[String],
    ) -> Result<(HashSet<String>, HashSet<String>), StoreError> {
        let Db::Pg(pool, _) = self else {
            return Ok((
                self.known_guids(source, guids).await?,
                self.known_urls(urls).await?,
            ));
        };
        if guids.is_empty() && urls.is_empty() {
            return Ok(Default::default());
        }
        let rows = sqlx::query(
            "SELECT 0::int8 AS k, guid AS v FROM article_guids WHERE source = $1 AND guid = ANY($2) \
             UNION ALL SELECT 1::int8, url FROM article_urls WHERE url = ANY($3)",
        )
        .bind(source)
        .bind(guids)
        .bind(urls)
        .fetch_all(pool)
        .await
        .context("looking up known GUIDs and URLs")?;
        let (mut known_guids, mut known_urls) = (HashSet::new(), HashSet::new());
        for r in rows {
            let (kind, value): (i64, String) = (r.try_get("k"), r.try_get("v"))
                .all()
                .context("decoding known GUIDs and URLs")?;
            if kind == 0 {
                known_guids.insert(value);
            } else {
                known_urls.insert(value);
            }
        }
        Ok((known_guids, known_urls))
    }

    /// Writes one refresh — fetch log, source state, articles, URLs, GUIDs and matches — in one
    /// transaction, deduplicating each article by canonical URL, then GUID, then content hash.
    pub async fn commit_refresh(&self, write: RefreshWrite) -> Result<StoreOutcome, StoreError> {
        self.commit_refresh_with(write, &StoryParams::default())
            .await
    }

    /// [`Db::commit_refresh`] with the configured `[stories]` parameters: each new article is
    /// also placed in a story (see `store::stories`) in the same transaction.
    ///
    /// An article found by URL or GUID whose text changed (an edited article) keeps its id, its
    /// story and its matches; its stored title and body become the new text. An article found by
    /// its text under a new URL or GUID records them, so either finds it next time.
    ///
    /// The articles are looked up with a few batched queries, deduplicated against each other in
    /// memory (exactly as if they were stored one by one, see [`plan_refresh`]), and written with
    /// multi-row statements; stories are assigned last, so that the lock serialising story
    /// assignment across daemons (PostgreSQL) is held only for that part.
    ///
    /// Refreshes of this process finishing at the same time are committed together (see
    /// [`Db::group_commit`]); each still gets its own outcome, and one that fails fails alone.
    pub async fn commit_refresh_with(
        &self,
        write: RefreshWrite,
        stories: &StoryParams,
    ) -> Result<StoreOutcome, StoreError> {
        let prepared = PreparedWrite::new(write)?;
        self.group_commit(prepared, *stories).await
    }

    /// Group commit: the write joins this process's queue for the database; whoever holds the
    /// write gate takes the queue (up to [`GROUP_MAX_WRITES`] writes, [`GROUP_MAX_ARTICLES`]
    /// articles and, on PostgreSQL, as many dedupe keys as are locked one by one) and commits
    /// it in one transaction, on a task of its own so that the batch finishes even if the
    /// caller is cancelled. A refresh that waits for the gate usually finds its write already
    /// committed by the batch before. Per-refresh transactions spent most of their time on
    /// BEGIN/COMMIT, rewriting the same index pages into SQLite's WAL, and round trips; on
    /// PostgreSQL each also queued for the story lock. Daemons sharing PostgreSQL still write
    /// in parallel with each other, one batch each at a time.
    ///
    /// If a batch fails, each of its writes is retried alone, so a bad write (or a bug it
    /// triggers) fails only its own refresh. A write whose caller was cancelled before a batch
    /// took it is withdrawn, as if the refresh had not finished.
    async fn group_commit(
        &self,
        write: PreparedWrite,
        stories: StoryParams,
    ) -> Result<StoreOutcome, StoreError> {
        let group = group_of(self);
        let (sender, mut receiver) = tokio::sync::oneshot::channel();
        let ticket = {
            let mut queue = group.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.next_ticket += 1;
            let ticket = queue.next_ticket;
            queue.waiting.push(Queued {
                ticket,
                write,
                stories,
                done: sender,
            });
            ticket
        };
        // Withdraws the write if this future is dropped before a batch took it.
        let _withdraw = Withdraw {
            group: group.clone(),
            ticket,
        };
        let lost = || StoreError::Corrupt {
            context: "committing a refresh",
            message: "the batch writing it ended without an outcome".to_string(),
        };
        loop {
            // A write committed by another refresh's batch is answered at once: the refreshes
            // waiting in line for the gate do not each have to take it in turn (one after the
            // other, a wake-up each) only to find their outcome there.
            let gate = tokio::select! {
                biased;
                outcome = &mut receiver => return outcome.unwrap_or_else(|_| Err(lost())),
                gate = group.gate.clone().acquire_owned() => gate,
            };
            let Ok(gate) = gate else {
                return Err(lost());
            };
            // PostgreSQL: no more keys than are locked one by one, so that a batch does not
            // take the exclusive bulk lock and keep other daemons' writes out.
            let max_keys = self.key_budget().unwrap_or(usize::MAX);
            let batch = {
                let mut queue = group.queue.lock().unwrap_or_else(|e| e.into_inner());
                queue.take_batch(max_keys)
            };
            if batch.is_empty() {
                // Taken by a batch that has finished or is under way (it held a gate permit):
                // its outcome is sent or will be.
                drop(gate);
                return receiver.await.unwrap_or_else(|_| Err(lost()));
            }
            let db = self.clone();
            let work = async move {
                db.run_batch(batch, max_keys).await;
                drop(gate);
            };
            let task = match self {
                Db::Sqlite(..) => sqlite_writer_runtime().spawn(work),
                Db::Pg(..) => tokio::spawn(work),
            };
            // A panic in the batch drops the senders: reported as `lost` above.
            let _ = task.await;
        }
    }

    /// Commits `batch` in one transaction and sends each write its outcome; on failure, commits
    /// each write alone. A write with more than `max_keys` dedupe keys takes the bulk lock.
    async fn run_batch(&self, batch: Vec<Queued>, max_keys: usize) {
        let stories = batch[0].stories;
        let (writes, senders): (Vec<PreparedWrite>, Vec<_>) =
            batch.into_iter().map(|q| (q.write, q.done)).unzip();
        match self.commit_batch(&writes, &stories, max_keys).await {
            Ok(outcomes) => {
                self.checkpoint_in_background();
                self.note_growth(outcomes.iter().map(|o| o.new.len() as u64).sum());
                for (sender, outcome) in senders.into_iter().zip(outcomes) {
                    let _ = sender.send(Ok(outcome));
                }
            }
            Err(e) if writes.len() == 1 => {
                if let Some(sender) = senders.into_iter().next() {
                    let _ = sender.send(Err(e));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, writes = writes.len(), "a group commit failed; committing its refreshes one by one");
                for (write, sender) in writes.iter().zip(senders) {
                    let outcome = self
                        .commit_batch(std::slice::from_ref(write), &stories, max_keys)
                        .await
                        .and_then(|mut o| {
                            o.pop().ok_or(StoreError::Corrupt {
                                context: "committing a refresh",
                                message: "no outcome".to_string(),
                            })
                        });
                    let _ = sender.send(outcome);
                }
            }
        }
    }

    /// Counts articles this process stored in a PostgreSQL database and, each time the count
    /// has grown fourfold (from [`ANALYZE_FIRST`] on), refreshes the planner's statistics of the
    /// tables that grow with it, in the background.
    ///
    /// PostgreSQL plans lookups by those statistics, which autovacuum keeps current — when it
    /// runs. With it off (some managed and test servers) tables that grew from empty have none,
    /// and the URL and hash lookups of a 10,000-source refresh fell back to scans (50-70 ms each,
    /// 44 sources/s instead of over 100). A handful of `ANALYZE` runs in a process's life is
    /// harmless where autovacuum does run.
    ///
    /// Only the columns that lookups, joins and pruning filter on are analysed: statistics of
    /// titles and bodies serve no plan and made each run twice as long (about 400 ms on 19,000
    /// articles). Row counts need no new run, as the planner scales them by the tables' current
    /// size, and the shares of distinct values that these plans depend on (all URLs, hashes and
    /// ids distinct) stay as they are while the tables grow: a run every fourfold growth keeps
    /// plans right at half the runs of every doubling.
    ///
    /// Several daemons sharing the database each count what they stored and pass each
    /// threshold at about the same time: the first to do so analyses for all, and the others
    /// leave statistics that are recent (taken when the articles table had at least half the
    /// rows its highest id says it has now). Three daemons ran 6 `ANALYZE`s in a
    /// 1,000-source refresh instead of 2.
    fn note_growth(&self, stored: u64) {
        let Db::Pg(pool, _) = self else { return };
        if stored == 0 {
            return;
        }
        let run = {
            let mut all = growth().lock().unwrap_or_else(|e| e.into_inner());
            let g = all.entry(self.identity()).or_insert(Growth {
                stored: 0,
                next: ANALYZE_FIRST,
                running: false,
            });
            g.stored += stored;
            let due = g.stored >= g.next && !g.running;
            if due {
                g.running = true;
                g.next = g.stored.saturating_mul(4);
            }
            due
        };
        if run {
            let (pool, identity) = (pool.clone(), self.identity());
            tokio::spawn(async move {
                const SQL: &str = "ANALYZE articles (id, source, content_hash, fetched, story), \
                    article_urls (url, raw_url, article), article_guids (source, guid, article), \
                    article_signatures (article, seq, fetched), matches (article, matched), \
                    stories (id), fetches (source, started)";
                // Never analysed (reltuples < 0), or analysed only by VACUUM's row count
                // (no analyse time): stale. Unreadable: analyse anyway.
                const RECENT: &str = "SELECT c.reltuples >= 0 \
                    AND (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL) \
                    AND c.reltuples * 2 >= (SELECT COALESCE(max(id), 0) FROM articles) \
                    FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid \
                    WHERE c.oid = 'articles'::regclass";
                let recent = sqlx::query_scalar::<_, bool>(RECENT)
                    .fetch_optional(&pool)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(false);
                if !recent && let Err(e) = sqlx::query(SQL).execute(&pool).await {
                    tracing::warn!(error = %e, "could not refresh the database's table statistics");
                }
                let mut all = growth().lock().unwrap_or_else(|e| e.into_inner());
                if let Some(g) = all.get_mut(&identity) {
                    g.running = false;
                }
            });
        }
    }

    /// Writes refreshes in one transaction, in order, exactly as if each were committed alone
    /// after the one before; one outcome per write.
    async fn commit_batch(
        &self,
        writes: &[PreparedWrite],
        stories: &StoryParams,
        max_keys: usize,
    ) -> Result<Vec<StoreOutcome>, StoreError> {
        let Some(last_fetched) = writes.iter().map(|p| p.write.finished).max() else {
            return Ok(Vec::new());
        };
        // The batch's articles in order, and for each the write it came from and its place there.
        let mut articles: Vec<&NewArticle> = Vec::new();
        let mut origin: Vec<(usize, usize)> = Vec::new();
        for (w, p) in writes.iter().enumerate() {
            for (k, (a, _)) in p.write.articles.iter().enumerate() {
                articles.push(a);
                origin.push((w, k));
            }
        }
        let fetched_of = |i: usize| writes[origin[i].0].write.finished;
        // The batch's keys and lookups: a lone write's own (no copy of a huge refresh's).
        fn union<'a, T: Clone + Ord>(
            writes: &'a [PreparedWrite],
            of: impl Fn(&'a PreparedWrite) -> &'a Vec<T>,
        ) -> std::borrow::Cow<'a, [T]> {
            match writes {
                [one] => std::borrow::Cow::Borrowed(of(one)),
                _ => std::borrow::Cow::Owned(distinct(
                    &writes
                        .iter()
                        .flat_map(|p| of(p).iter().cloned())
                        .collect::<Vec<_>>(),
                )),
            }
        }
        let keys = union(writes, |p| &p.keys);
        let lookup_urls = union(writes, |p| &p.lookup_urls);
        let hashes = union(writes, |p| &p.hashes);
        let guids = union(writes, |p| &p.guids);
        let mut outcomes: Vec<StoreOutcome> =
            writes.iter().map(|_| StoreOutcome::default()).collect();
        // On SQLite the caller holds this process's write gate (`group_commit`), and writes
        // through the connection kept for it.
        with_db!(@write self, pool => {
            let mut tx = pool.begin_write().await.context("starting a transaction")?;
            let mut pending = Pending::default();
            pool.lock_keys(&mut tx, &keys, max_keys).await.context("locking the articles being stored")?;

            // What the database knows of these URLs, GUIDs and texts: three lookups (per chunk;
            // on SQLite all in one round trip, unless the batch is huge).
            let mut stored = Stored::default();
            let sqlite = Backend::is_sqlite(&&mut *tx);
            let combined = if !sqlite {
                let parts = lookup_urls.len().max(guids.len()).max(hashes.len()).div_ceil(PG_LOOKUP_ROWS);
                let mut rows = Vec::new();
                for i in 0..parts {
                    let part = |n: usize| (i * PG_LOOKUP_ROWS).min(n)..((i + 1) * PG_LOOKUP_ROWS).min(n);
                    let urls = &lookup_urls[part(lookup_urls.len())];
                    let guids = &guids[part(guids.len())];
                    let hashes = &hashes[part(hashes.len())];
                    rows.extend(
                        sqlx::query(PG_LOOKUPS)
                            .bind(PgArray(urls.iter().map(String::as_str).collect()))
                            .bind(PgArray(guids.iter().map(|g| g.0.as_str()).collect()))
                            .bind(PgArray(guids.iter().map(|g| g.1.as_str()).collect()))
                            .bind(PgArray(hashes.iter().map(String::as_str).collect()))
                            .fetch_all(&mut *tx)
                            .await
                            .context("deduplicating by URL, GUID and content")?,
                    );
                }
                Some(rows)
            } else if lookup_urls.len() + 2 * guids.len() + hashes.len() <= PENDING_VALUES {
                let (sql, binder) = sqlite_lookups(&lookup_urls, &guids, &hashes);
                Some(match (Pending { sql, binder, ..Pending::default() }).flush() {
                    Some(query) => query
                        .context("deduplicating")?
                        .fetch_all(&mut *tx)
                        .await
                        .context("deduplicating by URL, GUID and content")?,
                    None => Vec::new(),
                })
            } else {
                None
            };
            if let Some(rows) = combined {
                for r in rows {
                    let (kind, key, guid): (i64, Option<String>, Option<String>) =
                        (r.try_get("k"), r.try_get("s"), r.try_get("g"))
                            .all()
                            .context("decoding article id")?;
                    let (id, hash): (i64, String) = (r.try_get("id"), r.try_get("h"))
                        .all()
                        .context("decoding article id")?;
                    match (kind, key, guid) {
                        (0, Some(url), _) => {
                            let e = stored.urls.entry(url).or_insert(id);
                            *e = (*e).min(id);
                        }
                        (1, Some(source), Some(guid)) => {
                            stored.guids.insert((source, guid), id);
                        }
                        (2, _, _) => stored.by_hash.entry(hash.clone()).or_default().push(id),
                        _ => return Err(StoreError::Corrupt {
                            context: "deduplicating",
                            message: format!("a lookup row of kind {kind} without its key"),
                        }),
                    }
                    stored.hashes.insert(id, hash);
                }
            } else {
                for r in select_in!(&mut *tx,
                    "SELECT u.url, u.article, a.content_hash FROM article_urls u \
                     JOIN articles a ON a.id = u.article WHERE u.url IN (?)",
                    "deduplicating by URL", [], &lookup_urls)
                {
                    let (url, id, hash): (String, i64, String) =
                        (r.try_get("url"), r.try_get("article"), r.try_get("content_hash"))
                            .all()
                            .context("decoding article id")?;
                    let e = stored.urls.entry(url).or_insert(id);
                    *e = (*e).min(id);
                    stored.hashes.insert(id, hash);
                }
                // A join with the list rather than `(source, guid) IN (…)`, which SQLite answers
                // with a scan of the whole table.
                for r in insert_rows!(&mut *tx,
                    "SELECT g.source, g.guid, g.article, a.content_hash FROM (VALUES {VALUES}) AS v \
                     JOIN article_guids g ON g.source = v.column1 AND g.guid = v.column2 \
                     JOIN articles a ON a.id = g.article",
                    "deduplicating by GUID", 2, &guids,
                    |q, g| q.bind(&g.0).bind(&g.1))
                {
                    let (source, guid, id, hash): (String, String, i64, String) =
                        (r.try_get("source"), r.try_get("guid"), r.try_get("article"), r.try_get("content_hash"))
                            .all()
                            .context("decoding article id")?;
                    stored.guids.insert((source, guid), id);
                    stored.hashes.insert(id, hash);
                }
                for r in select_in!(&mut *tx,
                    "SELECT id, content_hash FROM articles WHERE content_hash IN (?)",
                    "deduplicating by content", [], &hashes)
                {
                    let (id, hash): (i64, String) = (r.try_get("id"), r.try_get("content_hash"))
                        .all()
                        .context("decoding article id")?;
                    stored.by_hash.entry(hash.clone()).or_default().push(id);
                    stored.hashes.insert(id, hash);
                }
            }
            for ids in stored.by_hash.values_mut() {
                ids.sort_unstable();
            }

            // The whole batch as if stored one refresh after the other.
            let plan = plan_refresh(&articles, &stored);

            // Edited articles found by URL or GUID take the new text.
            for (id, text) in &plan.edits {
                let article = articles[*text];
                sqlx::query("UPDATE articles SET title = $2, body = $3, content_hash = $4 WHERE id = $1")
                    .bind(*id)
                    .bind(&article.title)
                    .bind(&article.body)
                    .bind(&article.content_hash)
                    .execute(&mut *tx)
                    .await
                    .context("updating an edited article")?;
            }

            // New articles, in one statement per chunk; their URLs are distinct, so the returned
            // (id, url) pairs say which id each got.
            // SQLite: inserted here, their story recorded onto them once placed. PostgreSQL:
            // their ids taken from the table's sequence now, the rows inserted once placed, with
            // their story; an update of every new article (a second version of each row, and of
            // each of its index entries) was the costliest statement of the server's share.
            // PostgreSQL also reserves a story id for each, the one it takes if it starts a
            // story: the stories are then written with the articles, in the statement that ends
            // the time under the story lock, rather than in a round trip of their own (the ids
            // of articles that join a story go unused, as sequence numbers may).
            let mut new_ids: Vec<i64> = Vec::with_capacity(plan.new.len());
            let mut story_ids: Vec<i64> = Vec::new();
            if !plan.new.is_empty() && !sqlite {
                story_ids.reserve(plan.new.len());
                // The sequences are looked up once per statement: as arguments of `nextval`
                // they were looked up twice per row (1.5 ms for 235 rows instead of 0.4 ms, on
                // the write path's critical path).
                for r in sqlx::query(
                    "WITH s AS MATERIALIZED (SELECT \
                     pg_get_serial_sequence('articles', 'id')::regclass AS a, \
                     pg_get_serial_sequence('stories', 'id')::regclass AS b) \
                     SELECT nextval(s.a) AS id, nextval(s.b) AS story \
                     FROM s, generate_series(1, $1)",
                )
                .bind(plan.new.len() as i64)
                .fetch_all(&mut *tx)
                .await
                .context("numbering new articles")?
                {
                    new_ids.push(r.try_get("id").context("decoding article id")?);
                    story_ids.push(r.try_get("story").context("decoding story id")?);
                }
                if new_ids.len() != plan.new.len() {
                    return Err(StoreError::Corrupt {
                        context: "numbering new articles",
                        message: format!("{} ids for {} articles", new_ids.len(), plan.new.len()),
                    });
                }
            } else if !plan.new.is_empty() {
                let mut by_url: HashMap<String, i64> = HashMap::new();
                write_rows!(after pending, &mut *tx,
                    "INSERT INTO articles (source, url, title, body, published, fetched, language, author, content_hash) \
                     VALUES {VALUES} RETURNING id, url",
                    "storing an article", &plan.new,
                    |n| (
                        articles[n.first].source.as_str() => "text",
                        articles[n.first].url.as_str() => "text",
                        articles[n.text].title.as_str() => "text",
                        articles[n.text].body.as_str() => "text",
                        articles[n.first].published => "timestamptz",
                        fetched_of(n.first) => "timestamptz",
                        articles[n.first].language.as_deref() => "text",
                        articles[n.first].author.as_deref() => "text",
                        articles[n.text].content_hash.as_str() => "text",
                    ),
                    for r {
                        let (id, url): (i64, String) = (r.try_get("id"), r.try_get("url"))
                            .all()
                            .context("decoding article id")?;
                        by_url.insert(url, id);
                    });
                for n in &plan.new {
                    let url = &articles[n.first].url;
                    new_ids.push(*by_url.get(url).ok_or_else(|| StoreError::Corrupt {
                        context: "storing articles",
                        message: format!("no id returned for {url}"),
                    })?);
                }
            }
            let id_of = |r: Ref| match r {
                Ref::Old(id) => id,
                Ref::New(k) => new_ids[k],
            };
            for (n, id) in plan.new.iter().zip(&new_ids) {
                outcomes[origin[n.first].0].new.push(*id);
            }
            for (i, r) in plan.refs.iter().enumerate() {
                let created_here = matches!(r, Ref::New(k) if plan.new[*k].first == i);
                if !created_here {
                    outcomes[origin[i].0].known += 1;
                }
            }

            // Every URL each article was reached at, its GUID, and the new forms of links to
            // articles already stored.
            let mut url_rows: Vec<(&str, i64, &str, &str, DateTime<Utc>)> = articles
                .iter()
                .zip(&plan.refs)
                .enumerate()
                .map(|(i, (a, r))| (a.url.as_str(), id_of(*r), a.source.as_str(), a.raw_url.as_str(), fetched_of(i)))
                .collect();
            for p in writes {
                url_rows.extend(p.write.seen_urls.iter().filter_map(|(canonical, raw)| {
                    let r = plan.urls.get(canonical)?;
                    Some((canonical.as_str(), id_of(*r), p.write.source.as_str(), raw.as_str(), p.write.finished))
                }));
            }
            write_rows!(defer pending, &mut *tx,
                "INSERT INTO article_urls (url, article, source, raw_url, first_seen) VALUES {VALUES} \
                 ON CONFLICT (raw_url) DO NOTHING",
                "recording an article URL", &url_rows,
                |u| (u.0 => "text", u.1 => "int8", u.2 => "text", u.3 => "text", u.4 => "timestamptz"));
            let guid_rows: Vec<(&str, &str, i64)> = articles
                .iter()
                .zip(&plan.refs)
                .filter_map(|(a, r)| Some((a.source.as_str(), a.guid.as_deref()?, id_of(*r))))
                .collect();
            write_rows!(defer pending, &mut *tx,
                "INSERT INTO article_guids (source, guid, article) VALUES {VALUES} \
                 ON CONFLICT (source, guid) DO NOTHING",
                "recording a GUID", &guid_rows,
                |g| (g.0 => "text", g.1 => "text", g.2 => "int8"));

            // The fetch log and each source's state, one row per refresh.
            let logged: Vec<(&RefreshWrite, i64)> = writes
                .iter()
                .zip(&outcomes)
                .map(|(p, o)| (&p.write, o.new.len() as i64))
                .collect();
            write_rows!(defer pending, &mut *tx,
                "INSERT INTO fetches (source, started, finished, outcome, http_status, items, new_articles, error) \
                 VALUES {VALUES}",
                "logging a fetch", &logged,
                |l| (
                    l.0.source.as_str() => "text",
                    l.0.started => "timestamptz",
                    l.0.finished => "timestamptz",
                    l.0.outcome => "text",
                    l.0.http_status.map(i64::from) => "int8",
                    l.0.items as i64 => "int8",
                    l.1 => "int8",
                    l.0.error.as_deref() => "text",
                ));
            // Per refresh: (id, time, error, next run, failed, keep validators, etag,
            // last-modified, lease to end). A batch holds each source at most once (`Queue::take_batch`).
            let states: Vec<SourceStateRow<'_>> =
                writes
                    .iter()
                    .map(|p| {
                        let w = &p.write;
                        let (keep, etag, last_modified) = match &w.validators {
                            Some((etag, last_modified)) => (false, etag.as_deref(), last_modified.as_deref()),
                            None => (true, None, None),
                        };
                        (w.source.as_str(), w.finished, w.error.as_deref(), w.next_run,
                         w.outcome == "error", keep, etag, last_modified, w.release_lease.as_deref())
                    })
                    .collect();
            write_rows!(defer pending, &mut *tx,
                "UPDATE sources SET last_attempt = v.column2, \
                 last_success = CASE WHEN v.column5 THEN sources.last_success ELSE v.column2 END, \
                 last_error = v.column3, \
                 consecutive_failures = CASE WHEN v.column5 THEN sources.consecutive_failures + 1 ELSE 0 END, \
                 next_run = v.column4, \
                 etag = CASE WHEN v.column6 THEN sources.etag ELSE v.column7 END, \
                 last_modified = CASE WHEN v.column6 THEN sources.last_modified ELSE v.column8 END, \
                 lease_owner = CASE WHEN sources.lease_owner = v.column9 THEN NULL ELSE sources.lease_owner END, \
                 lease_until = CASE WHEN sources.lease_owner = v.column9 THEN NULL ELSE sources.lease_until END \
                 FROM (VALUES {VALUES}) AS v WHERE sources.id = v.column1",
                "recording a source's state", &states,
                |s| (
                    s.0 => "text",
                    s.1 => "timestamptz",
                    s.2 => "text",
                    s.3 => "timestamptz",
                    s.4 => "bool",
                    s.5 => "bool",
                    s.6 => "text",
                    s.7 => "text",
                    s.8 => "text",
                ));

            // Stories last: near-duplicates stored at the same time by several daemons must see
            // each other, so this part is serialised (PostgreSQL: from `reserve_signatures!` to
            // the commit) and kept short: what other writers committed is read ahead of the lock.
            // PostgreSQL: the writes held back so far go with that read, or on their own, before
            // the lock is taken.
            let prefetched = match StoryCacheGuard::peek_last_seq(self, stories) {
                Some(seq) if !sqlite && !plan.new.is_empty() => {
                    Some(prefetch_signatures!(tx, pending, seq, last_fetched, stories))
                }
                _ => None,
            };
            if !sqlite && let Some(held) = pending.flush() {
                held.context("storing a refresh")?.execute(&mut *tx).await.context("storing a refresh")?;
            }
            // This process's copy of the story window, brought up to date with what other
            // writers committed; taken after the story lock, confirmed after the commit.
            let mut story_cache = None;
            if !plan.new.is_empty() {
                let last_seq = reserve_signatures!(tx, pending, plan.new.len());
                let mut cache = StoryCacheGuard::acquire(self, stories).await;
                if let Some(prefetched) = prefetched {
                    cache.absorb(prefetched);
                }
                sync_story_cache!(tx, cache, last_seq - plan.new.len() as i64, last_fetched, stories);
                let placing = plan.new.iter().zip(&new_ids).map(|(n, id)| {
                    let (w, k) = origin[n.first];
                    let signature = match writes[w].signatures.get(k) {
                        Some(signature) => std::borrow::Cow::Borrowed(signature),
                        None => {
                            let (a, _) = &writes[w].write.articles[k];
                            std::borrow::Cow::Owned(crate::dedupe::signature(&a.title, &a.body))
                        }
                    };
                    (*id, signature, writes[w].write.finished)
                });
                let placed = assign_stories!(tx, pending, cache, last_seq, (!sqlite).then_some(story_ids.as_slice()), placing, plan.new.len(), stories);
                story_cache = Some(cache);
                if sqlite {
                    // `column1`… are the names both backends give the columns of a `VALUES` list.
                    write_rows!(defer pending, &mut *tx,
                        "UPDATE articles SET story = v.column2, story_reason = v.column3, story_via = v.column4, \
                         story_similarity = v.column5 FROM (VALUES {VALUES}) AS v WHERE articles.id = v.column1",
                        "recording articles' stories", &placed,
                        |p| (p.id => "int8", p.story => "int8", p.reason => "text", p.via => "int8", p.similarity => "float8"));
                } else {
                    let rows: Vec<(&NewRow, &Placement)> = plan.new.iter().zip(&placed).collect();
                    write_rows!(defer pending, &mut *tx,
                        "INSERT INTO articles (id, source, url, title, body, published, fetched, language, author, \
                         content_hash, story, story_reason, story_via, story_similarity) \
                         OVERRIDING SYSTEM VALUE VALUES {VALUES}",
                        "storing an article", &rows,
                        |r| (
                            r.1.id => "int8",
                            articles[r.0.first].source.as_str() => "text",
                            articles[r.0.first].url.as_str() => "text",
                            articles[r.0.text].title.as_str() => "text",
                            articles[r.0.text].body.as_str() => "text",
                            articles[r.0.first].published => "timestamptz",
                            fetched_of(r.0.first) => "timestamptz",
                            articles[r.0.first].language.as_deref() => "text",
                            articles[r.0.first].author.as_deref() => "text",
                            articles[r.0.text].content_hash.as_str() => "text",
                            r.1.story => "int8",
                            r.1.reason => "text",
                            r.1.via => "int8",
                            r.1.similarity => "float8",
                        ));
                }
            }
            // Matches last, stamped with the time of this write (not of the fetch): digest
            // periods select matches by this time, and a full-text refresh can take long enough
            // that a period ending meanwhile would otherwise never see them. Taken after story
            // assignment, which may wait for the story lock and, for a huge refresh, take a
            // while, so that the commit follows within moments: a digest recorded a little after
            // its period ends finds every match stamped inside it.
            let matched = Utc::now();
            let mut match_rows: Vec<(i64, &str, &str, DateTime<Utc>)> = Vec::new();
            for (n, id) in plan.new.iter().zip(&new_ids) {
                let (w, k) = origin[n.first];
                let found = &writes[w].write.articles[k].1;
                for (m, hits) in found.iter().zip(&writes[w].hits[k]) {
                    match_rows.push((*id, m.watchlist.as_str(), hits.as_str(), matched));
                }
                outcomes[w].matches += found.len();
            }
            write_rows!(defer pending, &mut *tx,
                "INSERT INTO matches (article, watchlist, hits, matched) VALUES {VALUES} \
                 ON CONFLICT (article, watchlist) DO NOTHING",
                "storing a match", &match_rows,
                |m| (m.0 => "int8", m.1 => "text", m.2 => "text", m.3 => "timestamptz"));
            prune_story_window!(tx, pending, last_fetched, stories);
            if let Some(rest) = pending.flush() {
                rest.context("storing a refresh")?.execute(&mut *tx).await.context("storing a refresh")?;
            }
            tx.commit().await.context("committing a refresh")?;
            if let Some(cache) = story_cache {
                cache.confirm();
            }
        });
        Ok(outcomes)
    }

    /// All URLs each of these articles was seen at, canonical first-seen order.
    async fn urls_of(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<String>>, StoreError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut urls: Vec<(i64, DateTime<Utc>, String)> = with_db!(self, pool => select_in!(pool,
            "SELECT article, raw_url, first_seen FROM article_urls WHERE article IN (?)",
            "reading article URLs", [], &ids)
            .iter()
            .map(|r| Ok((r.try_get("article")?, r.try_get("first_seen")?, r.try_get("raw_url")?)))
            .collect::<Result<_, sqlx::Error>>()
            .context("decoding URL")?);
        urls.sort();
        let mut out: HashMap<i64, Vec<String>> = HashMap::new();
        for (id, _, url) in urls {
            out.entry(id).or_default().push(url);
        }
        Ok(out)
    }

    /// Articles fetched since `since`, newest first, optionally only from some sources.
    pub async fn articles(
        &self,
        since: DateTime<Utc>,
        sources: &[String],
    ) -> Result<Vec<StoredArticle>, StoreError> {
        const SQL: &str = "SELECT id, source, url, title, body, published, fetched, language, story \
            FROM articles WHERE fetched >= $1 ORDER BY fetched DESC, id DESC";
        let mut articles = with_db!(self, pool => {
            let rows = sqlx::query(SQL).bind(since).fetch_all(pool).await.context("reading articles")?;
            rows.iter()
                .map(|r| {
                    Ok(StoredArticle {
                        id: r.try_get("id")?,
                        source: r.try_get("source")?,
                        url: r.try_get("url")?,
                        urls: Vec::new(),
                        title: r.try_get("title")?,
                        body: r.try_get("body")?,
                        published: r.try_get("published")?,
                        fetched: r.try_get("fetched")?,
                        language: r.try_get("language")?,
                        story: r.try_get("story")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("decoding articles")?
        });
        if !sources.is_empty() {
            articles.retain(|a| sources.contains(&a.source));
        }
        let ids: Vec<i64> = articles.iter().map(|a| a.id).collect();
        let mut urls = self.urls_of(&ids).await?;
        for a in &mut articles {
            a.urls = urls.remove(&a.id).unwrap_or_else(|| vec![a.url.clone()]);
        }
        Ok(articles)
    }

    /// Matches recorded in `(start, end]`, optionally for some watchlists only, oldest first.
    pub async fn matches_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        watchlists: &[String],
    ) -> Result<Vec<StoredMatch>, StoreError> {
        const SQL: &str = "SELECT m.watchlist, m.hits, m.matched, a.id, a.source, a.url, a.title, a.body, \
            a.published, a.language FROM matches m JOIN articles a ON a.id = m.article \
            WHERE m.matched > $1 AND m.matched <= $2 ORDER BY m.matched, a.id";
        let mut matches = with_db!(self, pool => {
            let rows = sqlx::query(SQL).bind(start).bind(end).fetch_all(pool).await.context("reading matches")?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let hits: String = r.try_get("hits").context("decoding hits")?;
                let hits: Vec<Hit> = serde_json::from_str(&hits).map_err(|e| StoreError::Corrupt {
                    context: "decoding hits",
                    message: e.to_string(),
                })?;
                out.push(
                    (|| -> Result<StoredMatch, sqlx::Error> {
                        Ok(StoredMatch {
                            watchlist: r.try_get("watchlist")?,
                            article: r.try_get("id")?,
                            source: r.try_get("source")?,
                            url: r.try_get("url")?,
                            urls: Vec::new(),
                            title: r.try_get("title")?,
                            body: r.try_get("body")?,
                            published: r.try_get("published")?,
                            language: r.try_get("language")?,
                            matched: r.try_get("matched")?,
                            hits,
                        })
                    })()
                    .context("decoding matches")?,
                );
            }
            out
        });
        if !watchlists.is_empty() {
            matches.retain(|m| watchlists.contains(&m.watchlist));
        }
        let ids: Vec<i64> = matches.iter().map(|m| m.article).collect();
        let urls = self.urls_of(&ids).await?;
        for m in &mut matches {
            m.urls = urls
                .get(&m.article)
                .cloned()
                .unwrap_or_else(|| vec![m.url.clone()]);
        }
        Ok(matches)
    }

    /// Recent fetch log entries of every source, newest first.
    pub async fn recent_fetches(&self, since: DateTime<Utc>) -> Result<Vec<FetchLog>, StoreError> {
        const SQL: &str = "SELECT source, started, outcome, new_articles, error FROM fetches \
            WHERE started >= $1 ORDER BY started DESC, id DESC";
        with_db!(self, pool => {
            let rows = sqlx::query(SQL).bind(since).fetch_all(pool).await.context("reading the fetch log")?;
            rows.iter()
                .map(|r| {
                    Ok(FetchLog {
                        source: r.try_get("source")?,
                        started: r.try_get("started")?,
                        outcome: r.try_get("outcome")?,
                        new_articles: r.try_get("new_articles")?,
                        error: r.try_get("error")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("decoding the fetch log")
        })
    }

    /// Number of articles fetched since `since`, per source.
    pub async fn article_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, i64>, StoreError> {
        with_db!(self, pool => {
            let rows = sqlx::query("SELECT source, COUNT(*) AS n FROM articles WHERE fetched >= $1 GROUP BY source")
                .bind(since)
                .fetch_all(pool)
                .await
                .context("counting articles")?;
            rows.iter()
                .map(|r| Ok((r.try_get("source")?, r.try_get("n")?)))
                .collect::<Result<HashMap<_, _>, sqlx::Error>>()
                .context("decoding article counts")
        })
    }
}

/// Where SQLite batches run: a thread of their own, with a runtime of its own.
///
/// A SQLite refresh is as fast as its one writer: batch after batch, each a chain of statements
/// handed to the connection's thread and answered back (on a 1,000-source `fetch` the writer was
/// busy 93% of the time). On the shared runtime every answer woke the batch behind the tasks
/// parsing and extracting, so the chain also waited for them; here the batch goes on as soon as
/// its answer is in, and the operating system shares the cores between it and the parsing
/// (the same `fetch` 5% faster). PostgreSQL batches stay on the shared runtime: there two run at
/// once and the server does their work, and a thread of their own measured no faster.
fn sqlite_writer_runtime() -> &'static tokio::runtime::Handle {
    static RT: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        // Neither can fail short of the process being out of threads or file descriptors,
        // when nothing could be stored anyway.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building the SQLite writer's runtime");
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("marsad-writer".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .expect("starting the SQLite writer's thread");
        handle
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(url: &str, guid: Option<&str>, text: &str) -> (NewArticle, Vec<NewMatch>) {
        (
            NewArticle {
                source: "s".to_string(),
                url: url.to_string(),
                raw_url: url.to_string(),
                guid: guid.map(str::to_string),
                title: text.to_string(),
                body: String::new(),
                published: None,
                language: None,
                author: None,
                content_hash: format!("h-{text}"),
                signature: None,
            },
            Vec::new(),
        )
    }

    fn stored(rows: &[(i64, &str, Option<&str>, &str)]) -> Stored {
        let mut s = Stored::default();
        for (id, url, guid, text) in rows {
            s.urls.insert(url.to_string(), *id);
            if let Some(g) = guid {
                s.guids.insert(("s".to_string(), g.to_string()), *id);
            }
            s.by_hash.entry(format!("h-{text}")).or_default().push(*id);
            s.hashes.insert(*id, format!("h-{text}"));
        }
        s
    }

    #[test]
    fn articles_of_one_refresh_are_deduplicated_against_each_other_in_order() {
        let articles = [
            article("u1", Some("g1"), "a"),
            // Same URL, other text: an edit of the article just stored.
            article("u1", None, "b"),
            // Other URL, GUID of the first: the same article.
            article("u2", Some("g1"), "c"),
            // New URL and GUID with the text the first one has now: found by content.
            article("u3", Some("g3"), "c"),
            article("u4", None, "d"),
        ];
        let plan = plan_refresh(
            &articles.iter().map(|(a, _)| a).collect::<Vec<_>>(),
            &Stored::default(),
        );
        assert_eq!(
            plan.refs,
            [
                Ref::New(0),
                Ref::New(0),
                Ref::New(0),
                Ref::New(0),
                Ref::New(1)
            ]
        );
        // Stored with the first article's URL and the last text it was given.
        assert_eq!(
            plan.new,
            [NewRow { first: 0, text: 2 }, NewRow { first: 4, text: 4 }]
        );
        assert_eq!(plan.known, 3);
        assert!(plan.edits.is_empty());
        assert_eq!(plan.urls["u3"], Ref::New(0));
    }

    #[test]
    fn stored_articles_are_found_by_url_then_guid_then_the_lowest_id_with_the_text() {
        let db = stored(&[
            (7, "old", Some("g7"), "x"),
            (3, "other", None, "y"),
            (9, "dup", None, "y"),
        ]);
        let articles = [
            article("old", None, "x"),
            article("new1", Some("g7"), "x"),
            article("new2", None, "y"),
            article("new3", None, "z"),
        ];
        let plan = plan_refresh(&articles.iter().map(|(a, _)| a).collect::<Vec<_>>(), &db);
        assert_eq!(
            plan.refs,
            [Ref::Old(7), Ref::Old(7), Ref::Old(3), Ref::New(0)]
        );
        assert!(plan.edits.is_empty(), "same text is no edit");
        assert_eq!(plan.known, 3);
    }

    #[test]
    fn an_edit_moves_an_article_to_its_new_text_and_off_its_old_one() {
        let db = stored(&[(4, "a", None, "old"), (6, "b", None, "old")]);
        let articles = [
            // Article 4 edited: its text is now "new".
            article("a", None, "new"),
            // The old text now belongs to 6 only; the new text to 4.
            article("c", None, "old"),
            article("d", None, "new"),
        ];
        let plan = plan_refresh(&articles.iter().map(|(a, _)| a).collect::<Vec<_>>(), &db);
        assert_eq!(plan.refs, [Ref::Old(4), Ref::Old(6), Ref::Old(4)]);
        assert_eq!(plan.edits, [(4, 0)]);
        assert!(plan.new.is_empty());
    }

    #[test]
    fn held_back_statements_number_their_placeholders_after_the_values_before_them() {
        assert_eq!(
            renumber("a = $1 AND b = ANY($2::text[]) OR c = $10", 3),
            "a = $4 AND b = ANY($5::text[]) OR c = $13"
        );
        assert_eq!(renumber("SELECT 1", 7), "SELECT 1");
        assert_eq!(renumber("x = $1", 0), "x = $1");

        // Two writes held back, then a statement of its own placeholders: one text, its values
        // numbered in the order they were bound.
        let mut pending: Pending<sqlx::Postgres> = Pending::default();
        assert!(!pending.hold(
            "INSERT INTO t (a, b) SELECT * FROM unnest($1::int8[], $2::text[])",
            2,
            |b| b.bind(vec![1_i64, 2]).bind(vec!["x", "y"]),
        ));
        assert!(!pending.hold("UPDATE u SET v = $1 WHERE id = $2", 1, |b| {
            b.bind(5_i64).bind(6_i64)
        }));
        let query = pending
            .then("WITH r AS (SELECT $1::int8 AS n) SELECT n FROM r", |b| {
                b.bind(9_i64)
            })
            .expect("bound");
        assert_eq!(
            sqlx::Execute::sql(query).as_str(),
            "WITH w1 AS (INSERT INTO t (a, b) SELECT * FROM unnest($1::int8[], $2::text[])), \
             w2 AS (UPDATE u SET v = $3 WHERE id = $4), r AS (SELECT $5::int8 AS n) SELECT n FROM r"
        );
        // Nothing is held back afterwards: the next statement goes alone, and may be prepared.
        assert!(pending.flush().is_none());
    }

    #[test]
    fn lock_keys_are_sorted_distinct_and_shared_by_refreshes_storing_the_same_article() {
        let write = |articles: Vec<(NewArticle, Vec<NewMatch>)>| RefreshWrite {
            source: "s".to_string(),
            started: Utc::now(),
            finished: Utc::now(),
            outcome: "ok",
            http_status: None,
            validators: None,
            error: None,
            items: articles.len(),
            articles,
            seen_urls: Vec::new(),
            next_run: None,
            release_lease: None,
        };
        let one = dedupe_lock_keys(&write(vec![
            article("u1", Some("g"), "a"),
            article("u1", Some("g"), "a"),
        ]));
        assert_eq!(one.len(), 3, "URL, GUID and text, each once");
        assert!(one.windows(2).all(|w| w[0] < w[1]));
        let two = dedupe_lock_keys(&write(vec![
            article("u1", Some("g"), "a"),
            article("u4", Some("h"), "c"),
        ]));
        assert_eq!(two.len(), 5, "two URLs, two texts, the source's GUIDs");
        let same_text = dedupe_lock_keys(&write(vec![article("u2", None, "a")]));
        let other = dedupe_lock_keys(&write(vec![article("u3", None, "b")]));
        assert!(same_text.iter().any(|k| one.contains(k)));
        assert!(!other.iter().any(|k| one.contains(k)));
    }

    #[test]
    fn statement_shapes_are_few() {
        assert_eq!(
            (1..=1000).map(padded_width).collect::<HashSet<_>>().len(),
            6
        );
        let takes = |sqlite: bool| {
            let mut left = 1100;
            let mut takes = Vec::new();
            while left > 0 {
                takes.push(insert_chunk(left, sqlite));
                left -= insert_chunk(left, sqlite);
            }
            takes
        };
        assert_eq!(takes(false)[..], [[64; 17].as_slice(), &[8, 4]].concat());
        // SQLite: as few statements as its parameter limit allows, each prepared once.
        assert_eq!(takes(true), [1024, 76]);
        assert_eq!(values_placeholders(2, 2, false), "($1, $2), ($3, $4)");
        assert_eq!(values_placeholders(2, 2, true), "(?, ?), (?, ?)");
    }
}
