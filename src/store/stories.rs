//! Stories: placing each new article in the story of its nearest near-duplicate (see
//! `crate::dedupe`), inside the refresh transaction, and reading stories back.
//!
//! The store keeps each recent article's MinHash signature (`article_signatures`) and its LSH
//! band keys (`story_bands`); a new article looks up the articles of the window sharing a band,
//! and `dedupe::best_match` — the same function the in-memory `StoryIndex` uses — decides.

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

/// The query for a new article's candidates, per backend: `$1` is the window's start, `$2`…
/// its band keys.
///
/// The articles of the window sharing a band key with it, as `dedupe::StoryIndex` finds them: a
/// key held by more than `MAX_BUCKET` window articles is skipped (a frequent shingle, not a copy
/// — see `dedupe::MAX_BUCKET`), and candidates come in article order, which is insertion order,
/// so `best_match` breaks ties the same way. Each key reads at most `MAX_BUCKET + 1` entries of
/// the `(band_key, fetched)` index, so a crowded key costs the same however many articles share
/// it.
pub(crate) trait CandidateSql {
    fn candidates_sql(&self) -> &'static str;
}

fn key_values() -> String {
    (0..crate::dedupe::minhash::BANDS)
        .map(|i| format!("(${})", i + 2))
        .collect::<Vec<_>>()
        .join(", ")
}

/// SQLite (no LATERAL): a key is open when its `MAX_BUCKET + 1`-th window row does not exist.
impl CandidateSql for sqlx::SqliteConnection {
    fn candidates_sql(&self) -> &'static str {
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        SQL.get_or_init(|| {
            format!(
                "WITH keys (band_key) AS (VALUES {keys}), \
                 open_keys AS (SELECT k.band_key FROM keys k WHERE NOT EXISTS (\
                     SELECT 1 FROM story_bands c WHERE c.band_key = k.band_key AND c.fetched >= $1 \
                     ORDER BY c.fetched LIMIT 1 OFFSET {crowded})) \
                 SELECT a.id AS article, a.story, s.signature FROM articles a \
                 JOIN article_signatures s ON s.article = a.id \
                 WHERE a.id IN (SELECT b.article FROM story_bands b JOIN open_keys o ON b.band_key = o.band_key \
                                WHERE b.fetched >= $1) \
                 ORDER BY a.id",
                keys = key_values(),
                crowded = crate::dedupe::MAX_BUCKET,
            )
        })
    }
}

/// PostgreSQL: every lookup is a LATERAL subquery on an index, so the plan cannot turn into a
/// scan of `story_bands` when statistics are missing or stale (a fresh database: the join form
/// above ran at ~50 articles/s there).
impl CandidateSql for sqlx::PgConnection {
    fn candidates_sql(&self) -> &'static str {
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        SQL.get_or_init(|| {
            format!(
                "WITH hits AS (SELECT k.band_key, h.article FROM (VALUES {keys}) AS k (band_key) \
                     CROSS JOIN LATERAL (SELECT b.article FROM story_bands b \
                         WHERE b.band_key = k.band_key AND b.fetched >= $1 LIMIT {limit}) AS h), \
                 open_keys AS (SELECT band_key FROM hits GROUP BY band_key HAVING COUNT(*) <= {crowded}), \
                 found AS (SELECT DISTINCT h.article FROM hits h JOIN open_keys o ON o.band_key = h.band_key) \
                 SELECT f.article, x.story, x.signature FROM found f \
                 CROSS JOIN LATERAL (SELECT a.story, s.signature FROM article_signatures s \
                     JOIN articles a ON a.id = s.article WHERE s.article = f.article) AS x \
                 ORDER BY f.article",
                keys = key_values(),
                limit = crate::dedupe::MAX_BUCKET + 1,
                crowded = crate::dedupe::MAX_BUCKET,
            )
        })
    }
}

/// Places the just-inserted article `$id` (`$article`: a `NewArticle`) in a story, in `$tx`.
/// A macro rather than a function so it expands once per backend inside `with_db!`.
macro_rules! assign_story {
    ($tx:expr, $id:expr, $article:expr, $fetched:expr, $params:expr) => {{
        let assigning = std::time::Instant::now();
        let sig = $crate::dedupe::signature(&$article.title, &$article.body);
        let since = $fetched - chrono::Duration::from_std($params.window).unwrap_or(chrono::Duration::MAX);
        let keys = sig.band_keys();
        let mut candidates: Vec<(i64, Option<i64>, $crate::dedupe::Signature)> = Vec::new();
        if sig.shingles >= $crate::dedupe::MIN_SHINGLES {
            let sql = $crate::store::stories::CandidateSql::candidates_sql(&*$tx);
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(since);
            for key in &keys {
                query = query.bind(*key as i64);
            }
            for row in query.fetch_all(&mut *$tx).await.context("finding story candidates")? {
                let blob: Vec<u8> = row.try_get("signature").context("decoding a signature")?;
                let other = $crate::dedupe::Signature::from_bytes(&blob).ok_or(StoreError::Corrupt {
                    context: "decoding a signature",
                    message: format!("{} bytes", blob.len()),
                })?;
                candidates.push((
                    row.try_get("article").context("decoding a story candidate")?,
                    row.try_get("story").context("decoding a story candidate")?,
                    other,
                ));
            }
        }
        let best = $crate::dedupe::best_match(
            &sig,
            candidates.iter().map(|(id, story, s)| ((*id, *story), s)),
            $params.threshold,
        );
        let (story, reason, via, similarity): (i64, &str, Option<i64>, Option<f64>) = match best {
            Some(((via, Some(story)), similarity)) => (story, "similar", Some(via), Some(similarity)),
            _ => {
                let story: i64 = sqlx::query("INSERT INTO stories (first_article, created) VALUES ($1, $2) RETURNING id")
                    .bind($id)
                    .bind($fetched)
                    .fetch_one(&mut *$tx)
                    .await
                    .context("starting a story")?
                    .try_get("id")
                    .context("decoding a story id")?;
                (story, "new", None, None)
            }
        };
        sqlx::query("UPDATE articles SET story = $2, story_reason = $3, story_via = $4, story_similarity = $5 WHERE id = $1")
            .bind($id)
            .bind(story)
            .bind(reason)
            .bind(via)
            .bind(similarity)
            .execute(&mut *$tx)
            .await
            .context("recording an article's story")?;
        sqlx::query("INSERT INTO article_signatures (article, signature, fetched) VALUES ($1, $2, $3)")
            .bind($id)
            .bind(sig.to_bytes())
            .bind($fetched)
            .execute(&mut *$tx)
            .await
            .context("recording a signature")?;
        if sig.shingles >= $crate::dedupe::MIN_SHINGLES {
            let values: Vec<String> = (0..keys.len()).map(|i| format!("(${}, $1, $2)", i + 3)).collect();
            let sql = format!("INSERT INTO story_bands (band_key, article, fetched) VALUES {}", values.join(", "));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind($id).bind($fetched);
            for key in &keys {
                query = query.bind(*key as i64);
            }
            query.execute(&mut *$tx).await.context("recording band keys")?;
        }
        $crate::dedupe::add_store_assignment_time(assigning.elapsed());
    }};
}
pub(crate) use assign_story;

/// Forgets signatures and band keys older than the window: they can no longer be joined.
macro_rules! prune_story_window {
    ($tx:expr, $fetched:expr, $params:expr) => {{
        let since =
            $fetched - chrono::Duration::from_std($params.window).unwrap_or(chrono::Duration::MAX);
        sqlx::query("DELETE FROM story_bands WHERE fetched < $1")
            .bind(since)
            .execute(&mut *$tx)
            .await
            .context("pruning band keys")?;
        sqlx::query("DELETE FROM article_signatures WHERE fetched < $1")
            .bind(since)
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
