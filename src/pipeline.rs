//! One source refresh, end to end — the function to read first.
//!
//! `refresh` reads top to bottom as the data flow: fetch the source (conditional GET), turn it
//! into items (feed entries or listing links), fetch and extract the article pages it needs,
//! normalize and key every article, match it against all watchlists, and write everything in one
//! transaction. A fetch error is not an `Err`: it is recorded against the source and reported, so
//! one broken source never stops the others. Only a store failure is returned as an error.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::extract::{self, ArticleRules, Extracted, FeedItem};
use crate::fetch::{Conditional, FetchError, FetchOutcome, Fetcher};
use crate::matcher::Matcher;
use crate::model::{Field, NewArticle, NewMatch};
use crate::normalize;
use crate::settings::{Settings, SourceConfig, SourceKind};
use crate::store::{Db, RefreshWrite, StoreError};

/// Everything a refresh needs; cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub fetcher: Fetcher,
    pub matcher: Arc<Matcher>,
}

/// What one refresh did, for the CLI summary and the daemon's log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RefreshReport {
    pub source: String,
    /// `ok`, `not_modified`, `error` or `cancelled`.
    pub outcome: &'static str,
    pub error: Option<String>,
    /// Items the source listed (feed entries or article links).
    pub items: usize,
    pub new_articles: usize,
    pub known_articles: usize,
    pub matches: usize,
    /// Article pages that could not be fetched; they are retried on the next refresh.
    pub page_errors: Vec<String>,
}

/// Articles a source yields right now, before anything is stored.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub http_status: Option<u16>,
    pub not_modified: bool,
    pub validators: Option<(Option<String>, Option<String>)>,
    pub items: usize,
    pub articles: Vec<NewArticle>,
    /// Links to articles already stored, as (canonical, as linked): recorded, not fetched again.
    pub seen_urls: Vec<(String, String)>,
    pub page_errors: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("{url}: {message}")]
    Parse { url: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Refreshes one source and stores the result.
pub async fn refresh(
    ctx: &Context,
    source: &SourceConfig,
    cancel: &CancellationToken,
) -> Result<RefreshReport, StoreError> {
    let started = Utc::now();
    let state = ctx.db.source_state(&source.id).await?;
    let conditional = state.as_ref().map(|s| Conditional {
        etag: s.etag.clone(),
        last_modified: s.last_modified.clone(),
    });

    let collected = tokio::select! {
        _ = cancel.cancelled() => {
            return Ok(RefreshReport::empty(&source.id, "cancelled"));
        }
        collected = collect(ctx, source, conditional.as_ref(), true) => collected,
    };
    let finished = Utc::now();
    let next_run = next_run(&ctx.settings, source, finished);

    let collected = match collected {
        Ok(c) => c,
        Err(CollectError::Store(e)) => return Err(e),
        Err(e) => {
            let message = e.to_string();
            tracing::warn!(source = %source.id, error = %message, "refresh failed");
            ctx.db
                .commit_refresh(RefreshWrite {
                    source: source.id.clone(),
                    started,
                    finished,
                    outcome: "error",
                    http_status: match &e {
                        CollectError::Fetch(f) => f.status(),
                        _ => None,
                    },
                    validators: None,
                    error: Some(message.clone()),
                    items: 0,
                    articles: Vec::new(),
                    seen_urls: Vec::new(),
                    next_run,
                })
                .await?;
            let mut report = RefreshReport::empty(&source.id, "error");
            report.error = Some(message);
            return Ok(report);
        }
    };

    let outcome = if collected.not_modified {
        "not_modified"
    } else {
        "ok"
    };
    let articles: Vec<(NewArticle, Vec<NewMatch>)> = collected
        .articles
        .into_iter()
        .map(|a| {
            let matches = match_article(&ctx.matcher, &a);
            (a, matches)
        })
        .collect();
    let page_error = (!collected.page_errors.is_empty()).then(|| {
        format!(
            "{} article page(s) failed, will retry: {}",
            collected.page_errors.len(),
            collected.page_errors.join("; ")
        )
    });
    // Keep the old validators while some pages failed, so the next refresh does not get a 304
    // for the listing and skip the pages that still need fetching.
    let validators = if collected.page_errors.is_empty() {
        collected.validators
    } else {
        None
    };
    let stored = ctx
        .db
        .commit_refresh_with(
            RefreshWrite {
                source: source.id.clone(),
                started,
                finished,
                outcome,
                http_status: collected.http_status,
                validators,
                error: page_error.clone(),
                items: collected.items,
                articles,
                seen_urls: collected.seen_urls,
                next_run,
            },
            &ctx.settings.stories,
        )
        .await?;
    tracing::info!(
        source = %source.id,
        outcome,
        items = collected.items,
        new = stored.new.len(),
        matches = stored.matches,
        "refreshed"
    );
    Ok(RefreshReport {
        source: source.id.clone(),
        outcome,
        error: page_error,
        items: collected.items,
        new_articles: stored.new.len(),
        known_articles: stored.known,
        matches: stored.matches,
        page_errors: collected.page_errors,
    })
}

impl RefreshReport {
    fn empty(source: &str, outcome: &'static str) -> RefreshReport {
        RefreshReport {
            source: source.to_string(),
            outcome,
            error: None,
            items: 0,
            new_articles: 0,
            known_articles: 0,
            matches: 0,
            page_errors: Vec::new(),
        }
    }
}

/// When the source is due again: its own `poll` schedule or the default one.
pub fn next_run(
    settings: &Settings,
    source: &SourceConfig,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let schedule = source.poll.as_ref().unwrap_or(&settings.schedule.poll);
    schedule.next_after(after, settings.schedule.timezone)
}

/// Runs every watchlist over an article's fields.
pub fn match_article(matcher: &Matcher, article: &NewArticle) -> Vec<NewMatch> {
    let fields = [
        (Field::Title, article.title.as_str()),
        (Field::Body, article.body.as_str()),
        (Field::Url, article.raw_url.as_str()),
        (Field::Source, article.source.as_str()),
    ];
    matcher
        .match_fields(&fields)
        .into_iter()
        .map(|m| NewMatch {
            watchlist: m.watchlist,
            hits: m.hits,
        })
        .collect()
}

/// Fetches a source and turns it into articles without storing anything.
///
/// With `skip_known`, article pages whose URL (or feed GUID) is already stored are not fetched
/// again; `sources test` passes false to show everything the source offers.
pub async fn collect(
    ctx: &Context,
    source: &SourceConfig,
    conditional: Option<&Conditional>,
    skip_known: bool,
) -> Result<Collected, CollectError> {
    let page = match ctx.fetcher.get(&source.url, conditional).await? {
        FetchOutcome::NotModified => {
            return Ok(Collected {
                http_status: Some(304),
                not_modified: true,
                ..Collected::default()
            });
        }
        FetchOutcome::Fetched(page) => page,
    };
    let rules = article_rules(source)?;
    let mut collected = Collected {
        http_status: Some(page.status),
        validators: Some((page.etag.clone(), page.last_modified.clone())),
        ..Collected::default()
    };

    match source.kind {
        SourceKind::Feed => {
            let items = extract::feed::parse_feed(&page.text, &page.url).map_err(|e| CollectError::Parse {
                url: page.url.to_string(),
                message: format!("{e}; check that [source] url of \"{}\" points at an RSS, Atom or JSON feed", source.id),
            })?;
            collected.items = items.len();
            let mut wanted: Vec<FeedItem> = items;
            if skip_known {
                let guids: Vec<String> = wanted.iter().filter_map(|i| i.guid.clone()).collect();
                let urls: Vec<String> = wanted
                    .iter()
                    .filter_map(|i| i.url.as_ref().map(canonical))
                    .collect();
                let known_guids = ctx.db.known_guids(&source.id, &guids).await?;
                let known_urls = ctx.db.known_urls(&urls).await?;
                let (known, fresh): (Vec<FeedItem>, Vec<FeedItem>) =
                    wanted.into_iter().partition(|i| {
                        // Skip an item only when every identifier it has is known: a known
                        // GUID at a new URL (or a known URL under a new GUID) goes to the store,
                        // which finds the article and records the new identifier.
                        let guid_known = i.guid.as_ref().is_none_or(|g| known_guids.contains(g));
                        let url_known = i
                            .url
                            .as_ref()
                            .is_none_or(|u| known_urls.contains(&canonical(u)));
                        guid_known && url_known
                    });
                collected.seen_urls = known
                    .iter()
                    .filter_map(|i| i.url.as_ref().map(|u| (canonical(u), u.to_string())))
                    .collect();
                wanted = fresh;
            }
            let pages = if source.full_text {
                let urls: Vec<Option<Url>> = wanted.iter().map(|i| i.url.clone()).collect();
                fetch_pages(ctx, &urls, rules.as_ref()).await
            } else {
                wanted.iter().map(|_| None).collect()
            };
            for (item, item_page) in wanted.into_iter().zip(pages) {
                let extracted = match item_page {
                    Some(Ok(e)) => Some(e),
                    Some(Err(e)) => {
                        collected.page_errors.push(e);
                        // Keep the feed's own text rather than drop the item.
                        None
                    }
                    None => None,
                };
                collected.articles.push(from_feed_item(
                    source,
                    &page_url_fallback(&page.url, &item),
                    item,
                    extracted,
                ));
            }
        }
        SourceKind::Html | SourceKind::Sitemap => {
            let links = match &source.links {
                Some(css) => {
                    let selector =
                        extract::parse_selector(css).map_err(|message| CollectError::Parse {
                            url: source.url.to_string(),
                            message: format!("bad links selector: {message}"),
                        })?;
                    extract::listing::article_links(&page.text, &page.url, &selector)
                }
                None => Vec::new(),
            };
            collected.items = links.len();
            let mut wanted = links;
            if skip_known {
                let urls: Vec<String> = wanted.iter().map(canonical).collect();
                let known = ctx.db.known_urls(&urls).await?;
                let (seen, fresh): (Vec<Url>, Vec<Url>) = wanted
                    .into_iter()
                    .partition(|u| known.contains(&canonical(u)));
                collected.seen_urls = seen.iter().map(|u| (canonical(u), u.to_string())).collect();
                wanted = fresh;
            }
            let urls: Vec<Option<Url>> = wanted.iter().cloned().map(Some).collect();
            let pages = fetch_pages(ctx, &urls, rules.as_ref()).await;
            for (url, page) in wanted.into_iter().zip(pages) {
                match page {
                    Some(Ok(extracted)) => {
                        if extracted.title.trim().is_empty() && extracted.body.trim().is_empty() {
                            collected.page_errors.push(format!(
                                "{url}: no title or text found; check [source.article] selectors"
                            ));
                            continue;
                        }
                        collected.articles.push(from_page(source, &url, extracted));
                    }
                    Some(Err(e)) => collected.page_errors.push(e),
                    None => {}
                }
            }
        }
    }
    Ok(collected)
}

fn article_rules(source: &SourceConfig) -> Result<Option<ArticleRules>, CollectError> {
    if source.article_title.is_none()
        && source.article_body.is_none()
        && source.article_published.is_none()
    {
        return Ok(None);
    }
    ArticleRules::parse(
        source.article_title.as_deref(),
        source.article_body.as_deref(),
        source.article_published.as_deref(),
    )
    .map(Some)
    .map_err(|message| CollectError::Parse {
        url: source.url.to_string(),
        message: format!("bad [source.article] selector: {message}"),
    })
}

/// Fetches and extracts article pages concurrently; the fetcher's semaphores bound the load per
/// host and overall. The result is in the order of `urls`.
async fn fetch_pages(
    ctx: &Context,
    urls: &[Option<Url>],
    rules: Option<&ArticleRules>,
) -> Vec<Option<Result<Extracted, String>>> {
    let limit = ctx.settings.http.concurrency.max(1);
    futures_util::stream::iter(urls.iter().cloned())
        .map(|url| async move {
            let url = url?;
            Some(match ctx.fetcher.get(&url, None).await {
                Ok(FetchOutcome::Fetched(page)) => {
                    Ok(extract::extract_article(&page.text, &page.url, rules))
                }
                Ok(FetchOutcome::NotModified) => Err(format!(
                    "{url}: unexpected 304 without a conditional request"
                )),
                Err(e) => Err(e.to_string()),
            })
        })
        .buffered(limit)
        .collect()
        .await
}

fn canonical(url: &Url) -> String {
    normalize::url::canonicalize(url).to_string()
}

/// Items without a link still get a stable key: the feed URL plus their GUID.
fn page_url_fallback(feed_url: &Url, item: &FeedItem) -> String {
    match (&item.url, &item.guid) {
        (Some(url), _) => url.to_string(),
        (None, Some(guid)) => format!("{feed_url}#{guid}"),
        (None, None) => format!(
            "{feed_url}#{}",
            normalize::text::content_hash(&item.title, &item.body)
        ),
    }
}

fn from_feed_item(
    source: &SourceConfig,
    raw_url: &str,
    item: FeedItem,
    page: Option<Extracted>,
) -> NewArticle {
    let url = match &item.url {
        Some(u) => canonical(u),
        None => raw_url.to_string(),
    };
    let (mut title, mut body, mut published, mut author, mut language) = (
        item.title,
        item.body,
        item.published,
        item.author,
        item.language,
    );
    if let Some(page) = page {
        if !page.body.trim().is_empty() {
            body = page.body;
        }
        if title.trim().is_empty() {
            title = page.title;
        }
        published = published.or(page.published);
        author = author.or(page.author);
        language = language.or(page.language);
    }
    let title = title.trim().to_string();
    let body = body.trim().to_string();
    NewArticle {
        source: source.id.clone(),
        content_hash: normalize::text::content_hash(&title, &body),
        url,
        raw_url: raw_url.to_string(),
        guid: item.guid,
        title,
        body,
        published,
        language: language.or_else(|| source.language.clone()),
        author,
    }
}

fn from_page(source: &SourceConfig, url: &Url, page: Extracted) -> NewArticle {
    let title = page.title.trim().to_string();
    let body = page.body.trim().to_string();
    NewArticle {
        source: source.id.clone(),
        content_hash: normalize::text::content_hash(&title, &body),
        url: canonical(url),
        raw_url: url.to_string(),
        guid: None,
        title,
        body,
        published: page.published,
        language: page.language.or_else(|| source.language.clone()),
        author: page.author,
    }
}

/// Refreshes several sources concurrently; one failure never stops the others.
pub async fn refresh_all(
    ctx: &Context,
    sources: &[SourceConfig],
    cancel: &CancellationToken,
) -> Vec<Result<RefreshReport, (String, StoreError)>> {
    let mut seen = HashSet::new();
    let unique: Vec<&SourceConfig> = sources
        .iter()
        .filter(|s| seen.insert(s.id.clone()))
        .collect();
    futures_util::stream::iter(unique)
        .map(|source| async move {
            refresh(ctx, source, cancel)
                .await
                .map_err(|e| (source.id.clone(), e))
        })
        .buffered(ctx.settings.http.concurrency.max(1))
        .collect()
        .await
}
