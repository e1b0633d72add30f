//! Sources, fetch log, articles and matches.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::stories::{StoryCacheGuard, assign_story, prune_story_window, sync_story_cache};
use super::{BeginWrite, Context, Db, StoreError, with_db};
use crate::dedupe::StoryParams;
use crate::matcher::Hit;
use crate::model::{NewArticle, NewMatch};

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

impl Db {
    /// Records the configured sources (insert or update name/kind/url); state columns are kept.
    pub async fn sync_sources(&self, sources: &[SourceInfo]) -> Result<(), StoreError> {
        with_db!(self, pool => {
            let mut tx = pool.begin().await.context("starting a transaction")?;
            for s in sources {
                sqlx::query(
                    "INSERT INTO sources (id, name, kind, url) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, url = excluded.url",
                )
                .bind(&s.id)
                .bind(&s.name)
                .bind(&s.kind)
                .bind(&s.url)
                .execute(&mut *tx)
                .await
                .context("recording sources")?;
            }
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
                .map(|r| {
                    Ok(SourceState {
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
                })
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
            row.map(|r| {
                Ok(SourceState {
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
            })
            .transpose()
            .context("decoding a source")
        })
    }

    /// Which of these canonical URLs are already stored (so their pages need not be fetched again).
    pub async fn known_urls(&self, urls: &[String]) -> Result<HashSet<String>, StoreError> {
        let mut known = HashSet::new();
        with_db!(self, pool => {
            for url in urls {
                let row = sqlx::query("SELECT url FROM article_urls WHERE url = $1 LIMIT 1")
                    .bind(url)
                    .fetch_optional(pool)
                    .await
                    .context("looking up known URLs")?;
                if row.is_some() {
                    known.insert(url.clone());
                }
            }
        });
        Ok(known)
    }

    /// Records pages `source` deliberately did not fetch, as (canonical URL, reason).
    pub async fn record_skipped(
        &self,
        source: &str,
        skipped: &[(String, String)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_db!(self, pool => {
            let mut tx = pool.begin().await.context("starting a transaction")?;
            for (url, reason) in skipped {
                sqlx::query(
                    "INSERT INTO skipped_urls (url, source, reason, last_seen) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (url) DO UPDATE SET source = excluded.source, reason = excluded.reason, \
                     last_seen = excluded.last_seen",
                )
                .bind(url)
                .bind(source)
                .bind(reason)
                .bind(at)
                .execute(&mut *tx)
                .await
                .context("recording a skipped page")?;
            }
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
        let mut skipped = HashSet::new();
        with_db!(self, pool => {
            for url in urls {
                let row = sqlx::query("SELECT url FROM skipped_urls WHERE url = $1 AND last_seen >= $2")
                    .bind(url)
                    .bind(since)
                    .fetch_optional(pool)
                    .await
                    .context("looking up skipped pages")?;
                if row.is_some() {
                    skipped.insert(url.clone());
                }
            }
        });
        Ok(skipped)
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
        let mut known = HashSet::new();
        with_db!(self, pool => {
            for guid in guids {
                let row = sqlx::query("SELECT guid FROM article_guids WHERE source = $1 AND guid = $2")
                    .bind(source)
                    .bind(guid)
                    .fetch_optional(pool)
                    .await
                    .context("looking up known GUIDs")?;
                if row.is_some() {
                    known.insert(guid.clone());
                }
            }
        });
        Ok(known)
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
    pub async fn commit_refresh_with(
        &self,
        write: RefreshWrite,
        stories: &StoryParams,
    ) -> Result<StoreOutcome, StoreError> {
        let mut outcome = StoreOutcome::default();
        let fetched = write.finished;
        with_db!(self, pool => {
            let mut tx = pool.begin_write().await.context("starting a transaction")?;
            let mut story_cache = StoryCacheGuard::acquire(self, stories).await;
            sync_story_cache!(tx, story_cache, fetched, stories);
            for (article, matches) in &write.articles {
                // 1. canonical URL, 2. GUID within the source, 3. same normalized text.
                let mut existing: Option<i64> = sqlx::query("SELECT article FROM article_urls WHERE url = $1 LIMIT 1")
                    .bind(&article.url)
                    .fetch_optional(&mut *tx)
                    .await
                    .context("deduplicating by URL")?
                    .map(|r| r.try_get("article"))
                    .transpose()
                    .context("decoding article id")?;
                if existing.is_none()
                    && let Some(guid) = &article.guid
                {
                    existing = sqlx::query("SELECT article FROM article_guids WHERE source = $1 AND guid = $2")
                        .bind(&article.source)
                        .bind(guid)
                        .fetch_optional(&mut *tx)
                        .await
                        .context("deduplicating by GUID")?
                        .map(|r| r.try_get("article"))
                        .transpose()
                        .context("decoding article id")?;
                }
                let by_identity = existing.is_some();
                if existing.is_none() {
                    existing = sqlx::query("SELECT id FROM articles WHERE content_hash = $1 ORDER BY id LIMIT 1")
                        .bind(&article.content_hash)
                        .fetch_optional(&mut *tx)
                        .await
                        .context("deduplicating by content")?
                        .map(|r| r.try_get("id"))
                        .transpose()
                        .context("decoding article id")?;
                }
                let id = match existing {
                    Some(id) => {
                        outcome.known += 1;
                        if by_identity {
                            sqlx::query(
                                "UPDATE articles SET title = $2, body = $3, content_hash = $4 \
                                 WHERE id = $1 AND content_hash <> $4",
                            )
                            .bind(id)
                            .bind(&article.title)
                            .bind(&article.body)
                            .bind(&article.content_hash)
                            .execute(&mut *tx)
                            .await
                            .context("updating an edited article")?;
                        }
                        id
                    }
                    None => {
                        let id: i64 = sqlx::query(
                            "INSERT INTO articles (source, url, title, body, published, fetched, language, author, content_hash) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                        )
                        .bind(&article.source)
                        .bind(&article.url)
                        .bind(&article.title)
                        .bind(&article.body)
                        .bind(article.published)
                        .bind(fetched)
                        .bind(&article.language)
                        .bind(&article.author)
                        .bind(&article.content_hash)
                        .fetch_one(&mut *tx)
                        .await
                        .context("storing an article")?
                        .try_get("id")
                        .context("decoding article id")?;
                        for m in matches {
                            let hits = serde_json::to_string(&m.hits).map_err(|e| StoreError::Corrupt {
                                context: "encoding hits",
                                message: e.to_string(),
                            })?;
                            sqlx::query(
                                "INSERT INTO matches (article, watchlist, hits, matched) VALUES ($1, $2, $3, $4) \
                                 ON CONFLICT (article, watchlist) DO NOTHING",
                            )
                            .bind(id)
                            .bind(&m.watchlist)
                            .bind(hits)
                            // The time of this write, not of the fetch: digest periods select
                            // matches by this time, and a full-text refresh can take long enough
                            // that a period ending meanwhile would otherwise never see them.
                            .bind(Utc::now())
                            .execute(&mut *tx)
                            .await
                            .context("storing a match")?;
                            outcome.matches += 1;
                        }
                        assign_story!(tx, story_cache, id, article, fetched, stories);
                        outcome.new.push(id);
                        id
                    }
                };
                sqlx::query(
                    "INSERT INTO article_urls (url, article, source, raw_url, first_seen) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (raw_url) DO NOTHING",
                )
                .bind(&article.url)
                .bind(id)
                .bind(&article.source)
                .bind(&article.raw_url)
                .bind(fetched)
                .execute(&mut *tx)
                .await
                .context("recording an article URL")?;
                if let Some(guid) = &article.guid {
                    sqlx::query(
                        "INSERT INTO article_guids (source, guid, article) VALUES ($1, $2, $3) \
                         ON CONFLICT (source, guid) DO NOTHING",
                    )
                    .bind(&article.source)
                    .bind(guid)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .context("recording a GUID")?;
                }
            }

            prune_story_window!(tx, fetched, stories);

            for (canonical, raw) in &write.seen_urls {
                sqlx::query(
                    "INSERT INTO article_urls (url, article, source, raw_url, first_seen) \
                     SELECT $1, article, $3, $2, $4 FROM article_urls WHERE url = $1 LIMIT 1 \
                     ON CONFLICT (raw_url) DO NOTHING",
                )
                .bind(canonical)
                .bind(raw)
                .bind(&write.source)
                .bind(fetched)
                .execute(&mut *tx)
                .await
                .context("recording a known article's URL")?;
            }

            sqlx::query(
                "INSERT INTO fetches (source, started, finished, outcome, http_status, items, new_articles, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&write.source)
            .bind(write.started)
            .bind(write.finished)
            .bind(write.outcome)
            .bind(write.http_status.map(i64::from))
            .bind(write.items as i64)
            .bind(outcome.new.len() as i64)
            .bind(&write.error)
            .execute(&mut *tx)
            .await
            .context("logging a fetch")?;

            if write.outcome == "error" {
                sqlx::query(
                    "UPDATE sources SET last_attempt = $2, last_error = $3, \
                     consecutive_failures = consecutive_failures + 1, next_run = $4 WHERE id = $1",
                )
                .bind(&write.source)
                .bind(write.finished)
                .bind(&write.error)
                .bind(write.next_run)
                .execute(&mut *tx)
                .await
                .context("recording a source error")?;
            } else {
                sqlx::query(
                    "UPDATE sources SET last_attempt = $2, last_success = $2, last_error = $3, \
                     consecutive_failures = 0, next_run = $4 WHERE id = $1",
                )
                .bind(&write.source)
                .bind(write.finished)
                .bind(&write.error)
                .bind(write.next_run)
                .execute(&mut *tx)
                .await
                .context("recording a source success")?;
            }
            if let Some((etag, last_modified)) = &write.validators {
                sqlx::query("UPDATE sources SET etag = $2, last_modified = $3 WHERE id = $1")
                    .bind(&write.source)
                    .bind(etag)
                    .bind(last_modified)
                    .execute(&mut *tx)
                    .await
                    .context("recording cache validators")?;
            }
            tx.commit().await.context("committing a refresh")?;
            story_cache.confirm();
        });
        Ok(outcome)
    }

    /// All URLs each of these articles was seen at, canonical first-seen order.
    async fn urls_of(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<String>>, StoreError> {
        let mut out: HashMap<i64, Vec<String>> = HashMap::new();
        with_db!(self, pool => {
            for id in ids {
                let rows = sqlx::query("SELECT raw_url FROM article_urls WHERE article = $1 ORDER BY first_seen, raw_url")
                    .bind(id)
                    .fetch_all(pool)
                    .await
                    .context("reading article URLs")?;
                for r in rows {
                    out.entry(*id).or_default().push(r.try_get("raw_url").context("decoding URL")?);
                }
            }
        });
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
