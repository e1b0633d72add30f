//! Stories: placing each new article in the story of its nearest near-duplicate (see
//! `crate::dedupe`), inside the refresh transaction, and reading stories back.
//!
//! The store keeps each recent article's MinHash signature (`article_signatures`); each writing
//! process keeps the window's LSH index in memory ([`StoryCache`]), built from those signatures
//! and kept in step with other writers, and places new articles with it exactly as
//! `dedupe::StoryIndex` does (the benchmarked code).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Context, Db, StoreError, with_db};

/// One article of a story, with how it joined.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoryMember {
    pub article: i64,
    pub source: String,
    pub url: String,
    pub title: String,
    pub published: Option<DateTime<Utc>>,
    pub fetched: DateTime<Utc>,
    /// `new` (it started the story) or `similar`.
    pub reason: Option<String>,
    /// The article it was found most similar to.
    pub via: Option<i64>,
    /// Estimated overlap coefficient of their shingle sets (0–1).
    pub similarity: Option<f64>,
}

/// A story and its articles, earliest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Story {
    pub id: i64,
    pub articles: Vec<StoryMember>,
}

/// The story window of one database as this process knows it: an in-memory
/// [`StoryIndex`](crate::dedupe::StoryIndex) of the window's signatures (the same index the
/// `stories` benchmark measures), and the sequence number of the last signature read.
///
/// Several processes may write one database (daemons sharing PostgreSQL, or a `fetch` beside a
/// daemon on SQLite): before placing articles, a writer holding the story lock reads the
/// signatures committed since its last look (`seq` numbers them in commit order). Articles of
/// the current transaction enter the index at once, so copies within one refresh join; if the
/// transaction does not commit, the index is dropped and rebuilt from the database next time.
pub(crate) struct StoryCache {
    index: crate::dedupe::StoryIndex,
    last_seq: i64,
}

type Slot = std::sync::Arc<tokio::sync::Mutex<Option<StoryCache>>>;

fn slots() -> &'static std::sync::Mutex<HashMap<String, Slot>> {
    static SLOTS: std::sync::OnceLock<std::sync::Mutex<HashMap<String, Slot>>> =
        std::sync::OnceLock::new();
    SLOTS.get_or_init(Default::default)
}

/// Exclusive use of one database's [`StoryCache`] for one refresh transaction. Take it after
/// the database's story lock (`BEGIN IMMEDIATE` on SQLite, `reserve_signatures!` on PostgreSQL) and
/// call [`StoryCacheGuard::confirm`] once the transaction has committed; dropped unconfirmed,
/// it forgets the cache, which is then rebuilt from the database.
pub(crate) struct StoryCacheGuard {
    slot: tokio::sync::OwnedMutexGuard<Option<StoryCache>>,
    params: crate::dedupe::StoryParams,
    /// The last sequence number read or written by this transaction.
    last_seq: i64,
    confirmed: bool,
}

fn slot_of(db: &Db, params: &crate::dedupe::StoryParams) -> Slot {
    let key = format!(
        "{}|{}|{}|{}",
        db.identity(),
        params.window.as_secs(),
        params.window_articles,
        params.threshold
    );
    let mut slots = slots().lock().unwrap_or_else(|e| e.into_inner());
    slots.entry(key).or_default().clone()
}

/// Signatures other writers committed, read before the story lock was taken (see
/// `prefetch_signatures!`), each as (seq, article, fetched, story, signature), oldest first.
#[derive(Default)]
pub(crate) struct Prefetched {
    rows: Vec<SignatureRow>,
}

pub(crate) type SignatureRow = (
    i64,
    i64,
    DateTime<Utc>,
    Option<i64>,
    crate::dedupe::Signature,
);

impl Prefetched {
    pub(crate) fn new(mut rows: Vec<SignatureRow>) -> Prefetched {
        rows.sort_unstable_by_key(|r| r.0);
        Prefetched { rows }
    }
}

impl StoryCacheGuard {
    /// The sequence number `db`'s story cache has read up to, if it is loaded and no
    /// transaction is using it at this moment: where reading ahead of the story lock starts.
    pub(crate) fn peek_last_seq(db: &Db, params: &crate::dedupe::StoryParams) -> Option<i64> {
        let slot = slot_of(db, params);
        let cache = slot.try_lock().ok()?;
        cache.as_ref().map(|c| c.last_seq)
    }

    pub(crate) async fn acquire(db: &Db, params: &crate::dedupe::StoryParams) -> StoryCacheGuard {
        let slot = slot_of(db, params).lock_owned().await;
        let last_seq = slot.as_ref().map_or(0, |c| c.last_seq);
        StoryCacheGuard {
            slot,
            params: *params,
            last_seq,
            confirmed: false,
        }
    }

    pub(crate) fn is_loaded(&self) -> bool {
        self.slot.is_some()
    }

    pub(crate) fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// Starts an empty index (before a full load from the database).
    pub(crate) fn reset(&mut self) {
        *self.slot = Some(StoryCache {
            index: crate::dedupe::StoryIndex::new(self.params),
            last_seq: 0,
        });
    }

    /// Adds a stored article (read from the database, or just written by this transaction).
    pub(crate) fn push(
        &mut self,
        seq: i64,
        article: i64,
        fetched: DateTime<Utc>,
        story: i64,
        sig: crate::dedupe::Signature,
    ) {
        if self.slot.is_none() {
            self.reset();
        }
        if let Some(cache) = self.slot.as_mut() {
            cache
                .index
                .push(article as u64, fetched.timestamp(), story as u64, sig);
        }
        self.last_seq = self.last_seq.max(seq);
    }

    /// Gives the stories of the `count` articles pushed last their final ids (see
    /// `assign_stories!`: provisional ids are negative).
    pub(crate) fn rename_recent(&mut self, count: usize, rename: impl Fn(i64) -> i64) {
        if let Some(cache) = self.slot.as_mut() {
            cache
                .index
                .rename_recent_stories(count, |story| rename(story as i64) as u64);
        }
    }

    /// Adds what was read ahead of the story lock. The rows are every signature committed
    /// after some sequence number up to the highest among them (numbers are taken under the
    /// story lock, which is held until commit, so what is visible is always a prefix); those
    /// past what the cache has read continue it without a gap. Nothing is added to a cache
    /// that is not loaded (it is loaded whole, under the lock).
    pub(crate) fn absorb(&mut self, prefetched: Prefetched) {
        if self.slot.is_none() {
            return;
        }
        for (seq, article, fetched, story, sig) in prefetched.rows {
            if seq <= self.last_seq {
                continue;
            }
            match story {
                Some(story) => self.push(seq, article, fetched, story, sig),
                None => self.caught_up(seq),
            }
        }
    }

    /// Records that the database's sequence has reached `seq` (nothing unread before it).
    pub(crate) fn caught_up(&mut self, seq: i64) {
        self.last_seq = self.last_seq.max(seq);
    }

    /// The window article most similar to `sig` as (article, story, similarity), if any.
    pub(crate) fn nearest(
        &mut self,
        sig: &crate::dedupe::Signature,
        fetched: DateTime<Utc>,
    ) -> Option<(i64, i64, f64)> {
        let since = fetched.timestamp() - self.params.window.as_secs() as i64;
        let cache = self.slot.as_mut()?;
        cache.index.evict_before(since);
        cache
            .index
            .nearest(sig)
            .map(|(article, story, similarity)| (article as i64, story as i64, similarity))
    }

    /// The transaction committed: what it added to the index stands.
    pub(crate) fn confirm(mut self) {
        let last = self.last_seq;
        if let Some(cache) = self.slot.as_mut() {
            cache.last_seq = last;
        }
        self.confirmed = true;
    }
}

impl Drop for StoryCacheGuard {
    fn drop(&mut self) {
        if !self.confirmed {
            *self.slot = None;
        }
    }
}

impl Db {
    /// Which database this is, for the per-database story cache and write gate.
    pub(super) fn identity(&self) -> String {
        match self {
            Db::Sqlite(pool, _) => {
                format!("sqlite:{}", pool.connect_options().get_filename().display())
            }
            Db::Pg(pool, _) => {
                let o = pool.connect_options();
                format!(
                    "postgres:{}:{}/{}",
                    o.get_host(),
                    o.get_port(),
                    o.get_database().unwrap_or_default()
                )
            }
        }
    }
}

/// Reserves `$count` signature numbers (the story sequence advanced by `$count` in one
/// statement) and evaluates to the last of them: the range is `last - count + 1 ..= last`. The
/// `UPDATE` holds the sequence's row until the transaction ends, which makes it the story lock
/// on PostgreSQL: a writer reserving next waits for this one to commit, and then sees its
/// signatures. What `$pending` held back is sent first.
macro_rules! reserve_signatures {
    ($tx:expr, $pending:expr, $count:expr) => {{
        let count = i64::try_from($count).unwrap_or(i64::MAX);
        // After held-back statements SQLite's placeholders must be anonymous.
        let sql = if Backend::is_sqlite(&&mut *$tx) {
            "UPDATE story_seq SET last = last + ? WHERE id = 1 RETURNING last"
        } else {
            "UPDATE story_seq SET last = last + $1 WHERE id = 1 RETURNING last"
        };
        let last: i64 = $pending
            .then(sql, |b| b.bind(count))
            .context("waiting for story assignment")?
            .fetch_one(&mut *$tx)
            .await
            .context("waiting for story assignment")?
            .try_get("last")
            .context("decoding the story sequence")?;
        last
    }};
}
pub(crate) use reserve_signatures;

/// Brings the story cache `$cache` (a [`StoryCacheGuard`]) up to date inside `$tx`: the whole
/// window on first use (or after a failed transaction), else the signatures other writers
/// committed since. Run it after `reserve_signatures!` (the story lock), before
/// `assign_stories!`; `$last` is the last number taken before that reservation.
macro_rules! sync_story_cache {
    ($tx:expr, $cache:expr, $last:expr, $fetched:expr, $params:expr) => {{
        let last: i64 = $last;
        let since = $fetched - chrono::Duration::from_std($params.window).unwrap_or(chrono::Duration::MAX);
        // Newest first, at most what the window keeps (so loading it never holds more), then
        // replayed oldest first.
        let keep = i64::try_from($params.window_articles).unwrap_or(i64::MAX);
        let rows = if !$cache.is_loaded() {
            $cache.reset();
            Some(
                sqlx::query(
                    "SELECT s.seq, s.article, s.signature, s.fetched, a.story FROM article_signatures s \
                     JOIN articles a ON a.id = s.article WHERE s.fetched >= $1 ORDER BY s.seq DESC LIMIT $2",
                )
                .bind(since)
                .bind(keep)
                .fetch_all(&mut *$tx)
                .await
                .context("loading the story window")?,
            )
        } else if $cache.last_seq() < last {
            Some(
                sqlx::query(
                    "SELECT s.seq, s.article, s.signature, s.fetched, a.story FROM article_signatures s \
                     JOIN articles a ON a.id = s.article WHERE s.seq > $1 AND s.fetched >= $2 \
                     ORDER BY s.seq DESC LIMIT $3",
                )
                .bind($cache.last_seq())
                .bind(since)
                .bind(keep)
                .fetch_all(&mut *$tx)
                .await
                .context("reading other writers' signatures")?,
            )
        } else {
            None
        };
        for row in rows.unwrap_or_default().iter().rev() {
            let (seq, article, fetched, story, sig) = $crate::store::stories::signature_row!(row);
            if let Some(story) = story {
                $cache.push(seq, article, fetched, story, sig);
            }
        }
        $cache.caught_up(last);
    }};
}
pub(crate) use sync_story_cache;

/// Decodes one row of `article_signatures` joined with its article's story into a
/// [`SignatureRow`].
macro_rules! signature_row {
    ($row:expr) => {{
        let row = $row;
        let blob: Vec<u8> = row.try_get("signature").context("decoding a signature")?;
        let sig = $crate::dedupe::Signature::from_bytes(&blob).ok_or(StoreError::Corrupt {
            context: "decoding a signature",
            message: format!("{} bytes", blob.len()),
        })?;
        let seq: Option<i64> = row.try_get("seq").context("decoding a signature number")?;
        let article: i64 = row.try_get("article").context("decoding an article id")?;
        let fetched: DateTime<Utc> = row.try_get("fetched").context("decoding a fetch time")?;
        let story: Option<i64> = row.try_get("story").context("decoding a story id")?;
        (seq.unwrap_or(0), article, fetched, story, sig)
    }};
}
pub(crate) use signature_row;

/// Reads, in `$tx` but before the story lock is taken, the signatures other writers committed
/// since the story cache's last look (`$since_seq`, from [`StoryCacheGuard::peek_last_seq`]),
/// so that `sync_story_cache!` under the lock has only the last moments' to read. With several
/// daemons every writer waits for that lock, and reading and indexing the others' signatures
/// while holding it made up much of the time each held it. Evaluates to a [`Prefetched`]
/// (empty where the window's worth came back: the cache is then better read under the lock).
/// What `$pending` held back goes with it.
macro_rules! prefetch_signatures {
    ($tx:expr, $pending:expr, $since_seq:expr, $fetched:expr, $params:expr) => {{
        let since =
            $fetched - chrono::Duration::from_std($params.window).unwrap_or(chrono::Duration::MAX);
        let keep = i64::try_from($params.window_articles).unwrap_or(i64::MAX);
        let rows = $pending
            .then(
                "SELECT s.seq, s.article, s.signature, s.fetched, a.story FROM article_signatures s \
                 JOIN articles a ON a.id = s.article WHERE s.seq > $1 AND s.fetched >= $2 \
                 ORDER BY s.seq DESC LIMIT $3",
                |b| b.bind($since_seq).bind(since).bind(keep),
            )
            .context("reading other writers' signatures")?
            .fetch_all(&mut *$tx)
            .await
            .context("reading other writers' signatures")?;
        if rows.len() as i64 >= keep {
            $crate::store::stories::Prefetched::default()
        } else {
            let mut decoded = Vec::with_capacity(rows.len());
            for row in &rows {
                decoded.push($crate::store::stories::signature_row!(row));
            }
            $crate::store::stories::Prefetched::new(decoded)
        }
    }};
}
pub(crate) use prefetch_signatures;

/// Where story assignment placed an article: its story, `new` (it started the story) or
/// `similar`, the article it was found most similar to and their estimated similarity.
pub(crate) struct Placement {
    pub(crate) id: i64,
    pub(crate) story: i64,
    pub(crate) reason: &'static str,
    pub(crate) via: Option<i64>,
    pub(crate) similarity: Option<f64>,
}

/// Places the new articles in stories, in `$tx`, with the story cache `$cache`
/// synchronised by `sync_story_cache!` and `$last` the last signature number
/// `reserve_signatures!` took for them. `$new` yields `(id, signature, fetched)` for each, in
/// insertion order (`$count` of them; a signature may be computed as it is asked for, so a
/// refresh of 100,000 items never holds them all twice). Each article is placed in memory
/// first, exactly as one by one (a copy joins a story an earlier article of the same batch
/// started). A story an article starts takes the id `$story_ids` reserved for that article
/// (`Some`, PostgreSQL: taken from the stories' sequence with the article ids, before the story
/// lock), and every write is held back in `$pending`; without (`None`, SQLite) stories carry
/// provisional negative ids until one multi-row insert returns the real ones. Writes the
/// signatures and the new stories, and evaluates to each article's [`Placement`], in order,
/// for the caller to record with the article (on PostgreSQL the articles are inserted after
/// this, with their story) or onto it (SQLite). A macro rather than a function so it expands
/// once per backend inside `with_db!`.
macro_rules! assign_stories {
    ($tx:expr, $pending:expr, $cache:expr, $last:expr, $story_ids:expr, $new:expr, $count:expr, $params:expr) => {{
        let assigning = std::time::Instant::now();
        let count: usize = $count;
        let story_ids: Option<&[i64]> = $story_ids;
        // One sequence range for the batch: numbers last - count + 1 ..= last, in order.
        let last: i64 = $last;
        let first_seq = last - count as i64 + 1;
        // (id, story (or provisional -(k + 1)), via, similarity) per article; `starts[k]` is the
        // article (and its fetch time) that started story k, and its id where reserved.
        let mut placed: Vec<(i64, i64, Option<i64>, Option<f64>)> = Vec::with_capacity(count);
        let mut starts: Vec<(i64, DateTime<Utc>, i64)> = Vec::new();
        let mut sig_rows: Vec<(i64, Vec<u8>, DateTime<Utc>, i64)> = Vec::new();
        let mut seq = first_seq;
        for (k, (id, sig, fetched)) in $new.enumerate() {
            let sig: std::borrow::Cow<'_, $crate::dedupe::Signature> = sig;
            let (story, via, similarity) = match $cache.nearest(&sig, fetched) {
                Some((via, story, similarity)) => (story, Some(via), Some(similarity)),
                None => {
                    let story = match story_ids {
                        Some(ids) => *ids.get(k).ok_or_else(|| StoreError::Corrupt {
                            context: "placing articles in stories",
                            message: format!("{} story ids for {count} articles", ids.len()),
                        })?,
                        None => -(starts.len() as i64 + 1),
                    };
                    starts.push((id, fetched, story));
                    (story, None, None)
                }
            };
            sig_rows.push((id, sig.to_bytes(), fetched, seq));
            $cache.push(seq, id, fetched, story, sig.into_owned());
            placed.push((id, story, via, similarity));
            seq += 1;
            if sig_rows.len() == WRITE_ROWS {
                write_rows!(defer $pending, &mut *$tx,
                    "INSERT INTO article_signatures (article, signature, fetched, seq) VALUES {VALUES}",
                    "recording signatures", &sig_rows,
                    |r| (r.0 => "int8", r.1.as_slice() => "bytea", r.2 => "timestamptz", r.3 => "int8"));
                sig_rows.clear();
            }
        }
        write_rows!(defer $pending, &mut *$tx,
            "INSERT INTO article_signatures (article, signature, fetched, seq) VALUES {VALUES}",
            "recording signatures", &sig_rows,
            |r| (r.0 => "int8", r.1.as_slice() => "bytea", r.2 => "timestamptz", r.3 => "int8"));
        if seq != last + 1 {
            return Err(StoreError::Corrupt {
                context: "placing articles in stories",
                message: format!("{} signatures for {count} articles", seq - first_seq),
            });
        }
        // Story ids by the article that started each story, chunk by chunk.
        let mut real: Vec<i64> = Vec::with_capacity(starts.len());
        if story_ids.is_some() {
            write_rows!(defer $pending, &mut *$tx,
                "INSERT INTO stories (id, first_article, created) OVERRIDING SYSTEM VALUE VALUES {VALUES}",
                "starting stories", &starts,
                |s| (s.2 => "int8", s.0 => "int8", s.1 => "timestamptz"));
        } else {
            for chunk in starts.chunks(WRITE_ROWS) {
                let mut started: HashMap<i64, i64> = HashMap::with_capacity(chunk.len());
                write_rows!(after $pending, &mut *$tx,
                    "INSERT INTO stories (first_article, created) VALUES {VALUES} RETURNING id, first_article",
                    "starting stories", chunk,
                    |first| (first.0 => "int8", first.1 => "timestamptz"),
                    for r {
                        let (story, first): (i64, i64) = (r.try_get("id"), r.try_get("first_article"))
                            .all()
                            .context("decoding a story id")?;
                        started.insert(first, story);
                    });
                for (first, _, _) in chunk {
                    real.push(*started.get(first).ok_or_else(|| StoreError::Corrupt {
                        context: "starting stories",
                        message: format!("no story id returned for article {first}"),
                    })?);
                }
            }
        }
        drop(starts);
        let resolve = |story: i64| if story < 0 { real[(-story - 1) as usize] } else { story };
        if story_ids.is_none() {
            $cache.rename_recent(count, resolve);
        }
        let placed: Vec<Placement> = placed
            .into_iter()
            .map(|(id, story, via, similarity)| Placement {
                id,
                story: resolve(story),
                reason: if via.is_some() { "similar" } else { "new" },
                via,
                similarity,
            })
            .collect();
        $crate::dedupe::add_store_assignment_time(assigning.elapsed());
        placed
    }};
}
pub(crate) use assign_stories;

/// Forgets signatures older than the window: they can no longer be joined. What `$pending` held back is sent first.
macro_rules! prune_story_window {
    ($tx:expr, $pending:expr, $fetched:expr, $params:expr) => {{
        let since =
            $fetched - chrono::Duration::from_std($params.window).unwrap_or(chrono::Duration::MAX);
        // After held-back statements SQLite's placeholders must be anonymous (a numbered one
        // counts from the first value of them all).
        let sql = if Backend::is_sqlite(&&mut *$tx) {
            "DELETE FROM article_signatures WHERE fetched < ?"
        } else {
            "DELETE FROM article_signatures WHERE fetched < $1"
        };
        $pending
            .then(sql, |b| b.bind(since))
            .context("pruning signatures")?
            .execute(&mut *$tx)
            .await
            .context("pruning signatures")?;
    }};
}
pub(crate) use prune_story_window;

const MEMBER_COLUMNS: &str = "a.story, a.id, a.source, a.url, a.title, a.published, a.fetched, \
    a.story_reason, a.story_via, a.story_similarity";

impl Db {
    /// Stories with an article fetched since `since`, newest story first, each with all its
    /// articles (earliest first).
    pub async fn stories_since(&self, since: DateTime<Utc>) -> Result<Vec<Story>, StoreError> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM articles a WHERE a.story IN \
             (SELECT story FROM articles WHERE fetched >= $1 AND story IS NOT NULL)"
        );
        let mut stories = self.read_stories(&sql, Some(since), &[]).await?;
        stories.sort_by(|a, b| {
            let last = |s: &Story| s.articles.iter().map(|m| m.fetched).max();
            last(b).cmp(&last(a)).then(b.id.cmp(&a.id))
        });
        Ok(stories)
    }

    /// One story by id.
    pub async fn story(&self, id: i64) -> Result<Option<Story>, StoreError> {
        let sql = format!("SELECT {MEMBER_COLUMNS} FROM articles a WHERE a.story = $1");
        Ok(self
            .read_stories(&sql, None, &[id])
            .await?
            .into_iter()
            .next())
    }

    /// The story of each of these articles (articles without one are left out).
    pub async fn stories_of(&self, articles: &[i64]) -> Result<HashMap<i64, Story>, StoreError> {
        let mut story_of: HashMap<i64, i64> = HashMap::new();
        with_db!(self, pool => {
            for id in articles {
                let row = sqlx::query("SELECT story FROM articles WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .context("reading an article's story")?;
                if let Some(story) = row
                    .map(|r| r.try_get::<Option<i64>, _>("story"))
                    .transpose()
                    .context("decoding a story id")?
                    .flatten()
                {
                    story_of.insert(*id, story);
                }
            }
        });
        let mut ids: Vec<i64> = story_of.values().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut stories: HashMap<i64, Story> = HashMap::new();
        for id in ids {
            if let Some(story) = self.story(id).await? {
                stories.insert(id, story);
            }
        }
        Ok(story_of
            .into_iter()
            .filter_map(|(article, story)| Some((article, stories.get(&story)?.clone())))
            .collect())
    }

    async fn read_stories(
        &self,
        sql: &str,
        since: Option<DateTime<Utc>>,
        ids: &[i64],
    ) -> Result<Vec<Story>, StoreError> {
        let mut by_story: BTreeMap<i64, Vec<StoryMember>> = BTreeMap::new();
        with_db!(self, pool => {
            // `sql` is one of this module's constant queries.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
            if let Some(since) = since {
                query = query.bind(since);
            }
            for id in ids {
                query = query.bind(*id);
            }
            for r in query.fetch_all(pool).await.context("reading stories")? {
                let member = (|| -> Result<(i64, StoryMember), sqlx::Error> {
                    Ok((
                        r.try_get("story")?,
                        StoryMember {
                            article: r.try_get("id")?,
                            source: r.try_get("source")?,
                            url: r.try_get("url")?,
                            title: r.try_get("title")?,
                            published: r.try_get("published")?,
                            fetched: r.try_get("fetched")?,
                            reason: r.try_get("story_reason")?,
                            via: r.try_get("story_via")?,
                            similarity: r.try_get("story_similarity")?,
                        },
                    ))
                })()
                .context("decoding stories")?;
                by_story.entry(member.0).or_default().push(member.1);
            }
        });
        Ok(by_story
            .into_iter()
            .map(|(id, mut articles)| {
                articles.sort_by_key(|m| (m.fetched, m.article));
                Story { id, articles }
            })
            .collect())
    }
}
