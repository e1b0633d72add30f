//! Full-text search over stored articles, and retention (pruning old articles).
//!
//! Both backends index the same thing: an article's title and body folded and split by
//! `crate::normalize::text` (the matcher's normalizer), words joined by spaces — SQLite in an FTS5
//! table, PostgreSQL in a `tsvector` with the `simple` configuration. A query word is looked up in
//! every form it may take in Arabic text (with `و`/`ف`, `ب`/`ل`/`ك` and `لل` attached, as the
//! matcher does), so `إسرائيل` finds `وإسرائيل` and `اسرائيل`.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Context, Db, StoreError, with_db};
use crate::matcher::TermPattern;

/// One search hit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchHit {
    pub id: i64,
    pub source: String,
    pub url: String,
    pub title: String,
    pub published: Option<DateTime<Utc>>,
    pub fetched: DateTime<Utc>,
}

/// What `prune` removed.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Pruned {
    pub articles: u64,
    pub matched_articles: u64,
    pub fetches: u64,
}

/// An article's searchable text: normalized words joined by spaces.
pub fn search_doc(title: &str, body: &str) -> String {
    let mut words: Vec<String> = crate::normalize::text::tokenize(title)
        .into_iter()
        .map(|t| t.norm)
        .collect();
    words.extend(
        crate::normalize::text::tokenize(body)
            .into_iter()
            .map(|t| t.norm),
    );
    words.join(" ")
}

/// The forms of each query word (all must occur, any form will do). Empty when the query has no
/// letters or digits.
pub fn query_forms(query: &str) -> Vec<Vec<String>> {
    crate::normalize::text::tokenize(query)
        .into_iter()
        .map(|t| {
            TermPattern::parse(&t.norm)
                .map(|p| p.first_word_forms())
                .unwrap_or_else(|_| vec![t.norm.clone()])
        })
        .collect()
}

fn fts5_query(forms: &[Vec<String>]) -> String {
    forms
        .iter()
        .map(|alts| {
            let alts: Vec<String> = alts.iter().map(|f| format!("\"{f}\"")).collect();
            format!("({})", alts.join(" OR "))
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn tsquery(forms: &[Vec<String>]) -> String {
    forms
        .iter()
        .map(|alts| {
            let alts: Vec<String> = alts.iter().map(|f| format!("'{f}'")).collect();
            format!("({})", alts.join(" | "))
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

/// How far back `index_for_search` looks for articles that committed after later ones were
/// indexed: far longer than any refresh transaction lasts.
const SEARCH_RECHECK: chrono::TimeDelta = chrono::TimeDelta::days(1);

impl Db {
    /// Indexes articles stored since the last call. Returns how many were indexed.
    ///
    /// Ids only grow, but on PostgreSQL they need not commit in order: daemons (and a process's
    /// two write batches) take ids before they commit, so an article may become visible after
    /// one with a higher id was indexed. Articles above the highest id indexed are taken, and
    /// also any fetched within [`SEARCH_RECHECK`] that the index lacks.
    pub async fn index_for_search(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        let recent = Utc::now() - SEARCH_RECHECK;
        loop {
            let batch: Vec<(i64, String, String)> = with_db!(self, pool => {
                let sql = match self {
                    Db::Sqlite(..) => "SELECT a.id, a.title, a.body FROM articles a WHERE a.id > \
                        (SELECT COALESCE(MAX(rowid), 0) FROM article_search) \
                        OR (a.fetched >= $1 AND NOT EXISTS \
                            (SELECT 1 FROM article_search s WHERE s.rowid = a.id)) \
                        ORDER BY a.id LIMIT 500",
                    Db::Pg(..) => "SELECT a.id, a.title, a.body FROM articles a WHERE a.id > \
                        (SELECT COALESCE(MAX(article), 0) FROM article_search) \
                        OR (a.fetched >= $1 AND NOT EXISTS \
                            (SELECT 1 FROM article_search s WHERE s.article = a.id)) \
                        ORDER BY a.id LIMIT 500",
                };
                sqlx::query(sql)
                    .bind(recent)
                    .fetch_all(pool)
                    .await
                    .context("reading articles to index")?
                    .iter()
                    .map(|r| Ok((r.try_get("id")?, r.try_get("title")?, r.try_get("body")?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .context("decoding articles to index")?
            });
            if batch.is_empty() {
                return Ok(total);
            }
            total += batch.len();
            with_db!(self, pool => {
                let insert = match self {
                    Db::Sqlite(..) => "INSERT INTO article_search (rowid, doc) VALUES ($1, $2)",
                    Db::Pg(..) => "INSERT INTO article_search (article, doc) VALUES ($1, to_tsvector('simple', $2)) \
                        ON CONFLICT (article) DO NOTHING",
                };
                let mut tx = pool.begin().await.context("starting a transaction")?;
                for (id, title, body) in &batch {
                    sqlx::query(insert)
                        .bind(id)
                        .bind(search_doc(title, body))
                        .execute(&mut *tx)
                        .await
                        .context("indexing an article")?;
                }
                tx.commit().await.context("committing the search index")?;
            });
        }
    }

    /// Articles containing every word of `query` (in any of its forms), fetched since `since`,
    /// newest first.
    pub async fn search(
        &self,
        query: &str,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<SearchHit>, StoreError> {
        self.index_for_search().await?;
        let forms = query_forms(query);
        if forms.is_empty() {
            return Ok(Vec::new());
        }
        let (sql, q) = match self {
            Db::Sqlite(..) => (
                "SELECT a.id, a.source, a.url, a.title, a.published, a.fetched FROM article_search s \
                 JOIN articles a ON a.id = s.rowid WHERE article_search MATCH $1 AND a.fetched >= $2 \
                 ORDER BY a.fetched DESC, a.id DESC LIMIT $3",
                fts5_query(&forms),
            ),
            Db::Pg(..) => (
                "SELECT a.id, a.source, a.url, a.title, a.published, a.fetched FROM article_search s \
                 JOIN articles a ON a.id = s.article WHERE s.doc @@ to_tsquery('simple', $1) \
                 AND a.fetched >= $2 ORDER BY a.fetched DESC, a.id DESC LIMIT $3",
                tsquery(&forms),
            ),
        };
        with_db!(self, pool => {
            sqlx::query(sql)
                .bind(&q)
                .bind(since)
                .bind(limit)
                .fetch_all(pool)
                .await
                .context("searching articles")?
                .iter()
                .map(|r| {
                    Ok(SearchHit {
                        id: r.try_get("id")?,
                        source: r.try_get("source")?,
                        url: r.try_get("url")?,
                        title: r.try_get("title")?,
                        published: r.try_get("published")?,
                        fetched: r.try_get("fetched")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("decoding search results")
        })
    }

    /// Deletes articles fetched before `articles_before` that matched no watchlist, and matched
    /// ones fetched before `matched_before` (with their URLs, GUIDs, matches and search entries),
    /// plus fetch log entries older than `articles_before`. Digest runs are kept: they are the
    /// record of what was sent.
    pub async fn prune(
        &self,
        articles_before: DateTime<Utc>,
        matched_before: DateTime<Utc>,
    ) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        // Articles are deleted only where one is old enough to go (not in a new database, nor
        // one pruned within the day): that takes the write lock (SQLite) or the bulk lock
        // (PostgreSQL, which waits for every daemon's refresh writes under way and holds up new
        // ones until it commits), and a daemon starting beside others stalled their writes for a
        // prune that deleted nothing. The fetch log, which nothing refers to, goes after.
        let any_old = with_db!(self, pool => {
            sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM articles WHERE fetched < $1)")
                .bind(articles_before.max(matched_before))
                .fetch_one(pool)
                .await
                .context("looking for articles to prune")?
        });
        match self {
            _ if !any_old => {}
            Db::Sqlite(pool, _) => {
                // Foreign keys (ON DELETE CASCADE) take the articles' rows with them.
                let mut tx = pool.begin().await.context("starting a transaction")?;
                pruned.articles = sqlx::query(
                    "DELETE FROM articles WHERE fetched < $1 \
                     AND NOT EXISTS (SELECT 1 FROM matches m WHERE m.article = articles.id)",
                )
                .bind(articles_before)
                .execute(&mut *tx)
                .await
                .context("pruning unmatched articles")?
                .rows_affected();
                pruned.matched_articles = sqlx::query("DELETE FROM articles WHERE fetched < $1")
                    .bind(matched_before)
                    .execute(&mut *tx)
                    .await
                    .context("pruning matched articles")?
                    .rows_affected();
                // FTS5 tables take no foreign keys.
                sqlx::query(
                    "DELETE FROM article_search WHERE rowid NOT IN (SELECT id FROM articles)",
                )
                .execute(&mut *tx)
                .await
                .context("pruning the search index")?;
                tx.commit().await.context("committing the prune")?;
            }
            Db::Pg(pool, _) => {
                // No foreign keys here (migration 0010): the rows keyed by a pruned article are
                // deleted with it. The bulk lock, taken exclusively, waits for the refresh
                // writes under way and keeps new ones out until the prune commits, so none can
                // link a URL, GUID or story to an article being deleted.
                let mut tx = pool.begin().await.context("starting a transaction")?;
                super::lock_bulk_exclusive(&mut tx)
                    .await
                    .context("waiting for refresh writes to finish")?;
                const WITH_ROWS: &str = ", \
                     u AS (DELETE FROM article_urls WHERE article IN (SELECT id FROM gone)), \
                     g AS (DELETE FROM article_guids WHERE article IN (SELECT id FROM gone)), \
                     m AS (DELETE FROM matches WHERE article IN (SELECT id FROM gone)), \
                     s AS (DELETE FROM article_search WHERE article IN (SELECT id FROM gone)), \
                     x AS (DELETE FROM article_signatures WHERE article IN (SELECT id FROM gone)) \
                     SELECT COUNT(*) AS n FROM gone";
                let count = |row: sqlx::postgres::PgRow| -> Result<u64, sqlx::Error> {
                    Ok(row.try_get::<i64, _>("n")?.max(0) as u64)
                };
                let unmatched = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "WITH gone AS (DELETE FROM articles WHERE fetched < $1 \
                     AND NOT EXISTS (SELECT 1 FROM matches m WHERE m.article = articles.id) \
                     RETURNING id){WITH_ROWS}"
                )))
                .bind(articles_before)
                .fetch_one(&mut *tx)
                .await
                .context("pruning unmatched articles")?;
                pruned.articles = count(unmatched).context("pruning unmatched articles")?;
                let matched = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "WITH gone AS (DELETE FROM articles WHERE fetched < $1 RETURNING id){WITH_ROWS}"
                )))
                .bind(matched_before)
                .fetch_one(&mut *tx)
                .await
                .context("pruning matched articles")?;
                pruned.matched_articles = count(matched).context("pruning matched articles")?;
                tx.commit().await.context("committing the prune")?;
            }
        }
        pruned.fetches = with_db!(self, pool => {
            sqlx::query("DELETE FROM fetches WHERE started < $1")
                .bind(articles_before)
                .execute(pool)
                .await
                .context("pruning the fetch log")?
                .rows_affected()
        });
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_words_expand_to_their_arabic_forms() {
        let forms = query_forms("إسرائيل Moscow");
        assert_eq!(forms.len(), 2);
        assert!(forms[0].contains(&"اسرائيل".to_string()), "{forms:?}");
        assert!(forms[0].contains(&"واسرائيل".to_string()), "{forms:?}");
        assert_eq!(forms[1], vec!["moscow".to_string()]);
        assert_eq!(
            fts5_query(&[vec!["a".into(), "b".into()], vec!["c".into()]]),
            "(\"a\" OR \"b\") AND (\"c\")"
        );
        assert_eq!(
            tsquery(&[vec!["a".into(), "b".into()], vec!["c".into()]]),
            "('a' | 'b') & ('c')"
        );
    }

    #[test]
    fn documents_are_normalized_words() {
        assert_eq!(
            search_doc("الكرملين!", "إسرائيلَ، 12"),
            "الكرملين اسرائيل 12"
        );
    }
}
