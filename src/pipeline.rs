//! One source refresh, end to end — the function to read first.
//!
//! `refresh` reads top to bottom as the data flow: fetch the source (conditional GET), turn it
//! into items (feed entries or listing links), fetch and extract the article pages it needs,
//! normalize and key every article, match it against all watchlists, and write everything in one
//! transaction. A fetch error is not an `Err`: it is recorded against the source and reported, so
//! one broken source never stops the others. Only a store failure is returned as an error.
//!
//! A source that keeps failing backs off: its next run is pushed out to poll interval ×
//! 2^(failures−1), capped at a day, and never before a `Retry-After` the server asked for.
//! Pages that were deliberately not fetched (robots.txt, not a web page) are *skipped*, not
//! failed: they are recorded with their reason and do not make the source retry.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::extract::{self, ArticleRules, Extracted, FeedItem};
use crate::fetch::{Conditional, FetchError, FetchOutcome, Fetcher};
use crate::matcher::{ArticleFields, Matcher, Prescanned};
use crate::model::{NewArticle, NewMatch};
use crate::normalize;
use crate::settings::{DEFAULT_SITEMAP_MAX_AGE, Settings, SourceConfig, SourceKind};
use crate::store::{Db, RefreshWrite, SourceState, StoreError, StoredArticle};

/// Everything a refresh needs; cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub fetcher: Fetcher,
    pub matcher: Arc<Matcher>,
    /// The daemon holding the source's lease, which storing the refresh ends; `None` outside one.
    pub lease_owner: Option<String>,
    /// `[http] concurrency` permits, one held by each refresh while it parses its source's answer
    /// and fetches the article pages it leads to (see [`REFRESHES_PER_SLOT`]); the source's own
    /// request waits only for the fetcher's limit of requests in flight, and for room among the
    /// answers waiting for a slot ([`CollectSlots`]).
    pub collect_slots: Arc<CollectSlots>,
    /// In a daemon, this refresh's place in the count of refreshes that have not yet fetched
    /// their source, given up once it has (see [`LEASED_PER_SLOT`]); `None` outside one.
    pub unfetched: Option<Arc<UnfetchedTicket>>,
}

/// A daemon's refreshes that have leased their source but not yet fetched it (fetching its
/// answer, waiting with it for a collect slot, or parsing it): the ones whose lease could run out
/// before they fetch.
#[derive(Default)]
pub struct Unfetched {
    count: std::sync::atomic::AtomicUsize,
    changed: tokio::sync::Notify,
}

impl Unfetched {
    pub fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Counts one more refresh, until its ticket is given up.
    pub fn ticket(self: &Arc<Self>) -> UnfetchedTicket {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        UnfetchedTicket {
            count: self.clone(),
            given_up: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Waits until a refresh has fetched its source (or ended).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// One refresh counted in [`Unfetched`], taken off the count once (by [`UnfetchedTicket::fetched`]
/// once the source is fetched, or when the ticket is dropped as the refresh ends otherwise).
pub struct UnfetchedTicket {
    count: Arc<Unfetched>,
    given_up: std::sync::atomic::AtomicBool,
}

impl UnfetchedTicket {
    pub fn fetched(&self) {
        if !self
            .given_up
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.count
                .count
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            self.count.changed.notify_one();
        }
    }
}

impl Drop for UnfetchedTicket {
    fn drop(&mut self) {
        self.fetched();
    }
}

/// Refreshes under way at once, per `[http] concurrency`: that many parse their source (each holds
/// a collect slot), the others wait for their source's answer, with it for a slot, or for their
/// write to commit; the answers waiting for a slot are bounded in bytes ([`PARKED_BYTES`]). A
/// refresh whose articles wait in the store's queue no longer holds up fetching, so fetching, parsing and
/// the one-at-a-time write to the database overlap instead of taking turns; the queue stays
/// bounded, so memory does not grow with the number of sources. With 4 per slot the queue
/// filled while a large batch was written and fetching stopped until it committed (batches
/// swung between 1 and 60 refreshes); 16 kept fetching going: a 1,000-source `fetch` on
/// PostgreSQL 15% faster (SQLite within noise), for 16 MB more at the peak (concurrency 32).
pub const REFRESHES_PER_SLOT: usize = 16;

/// Refreshes per `[http] concurrency` a daemon has leased and not yet fetched at once. Every
/// refresh under way holds its source's lease, and one that waits long for a collect slot could
/// outlive it: another daemon would then fetch the source again (with 16 per slot the scale-out
/// test's 3-second leases ran out so). A daemon leases a new source only while fewer than this
/// many wait to fetch; those that have fetched wait only for their write, up to
/// [`REFRESHES_PER_SLOT`] under way in all.
pub const LEASED_PER_SLOT: usize = 4;

impl Context {
    /// Collect slots for a configuration: `[http] concurrency` of them.
    pub fn collect_slots(settings: &Settings) -> Arc<CollectSlots> {
        Arc::new(CollectSlots::new(
            settings.http.concurrency.max(1),
            PARKED_BYTES,
        ))
    }
}

/// Bytes of fetched answers that may wait for a collect slot before refreshes stop fetching more.
/// Answers arrive faster than they are parsed when parsing is the bottleneck, and each may be
/// up to `[http] max_body` (15 MiB by default): without a bound, the hundreds of refreshes under
/// way could hold gigabytes of feeds. Once this much waits, a refresh fetches only when some of
/// it has been taken up for parsing; answers already on the way still arrive, so the most that
/// waits is this plus `[http] concurrency` answers.
pub const PARKED_BYTES: u64 = 64 << 20;

/// The collect slots (see [`Context::collect_slots`]) and the answers waiting for one.
pub struct CollectSlots {
    slots: Arc<tokio::sync::Semaphore>,
    parked: std::sync::atomic::AtomicU64,
    budget: u64,
    taken_up: tokio::sync::Notify,
}

impl CollectSlots {
    /// `slots` collect slots; fetching pauses while `budget` bytes of answers wait for one.
    pub fn new(slots: usize, budget: u64) -> CollectSlots {
        CollectSlots {
            slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            parked: std::sync::atomic::AtomicU64::new(0),
            budget,
            taken_up: tokio::sync::Notify::new(),
        }
    }

    /// Waits until fewer than the budget's bytes of answers wait for a slot.
    pub async fn room_to_fetch(&self) {
        loop {
            let taken_up = self.taken_up.notified();
            tokio::pin!(taken_up);
            // Registered before the check, so a release between the two is not missed.
            taken_up.as_mut().enable();
            if self.parked.load(std::sync::atomic::Ordering::SeqCst) < self.budget {
                return;
            }
            taken_up.await;
        }
    }

    /// Counts `bytes` of an answer as waiting, until the returned guard is dropped.
    pub fn park(self: &Arc<Self>, bytes: u64) -> Parked {
        self.parked
            .fetch_add(bytes, std::sync::atomic::Ordering::SeqCst);
        Parked {
            slots: self.clone(),
            bytes,
        }
    }

    /// Waits for a collect slot (`None` only if the slots were closed, which they never are).
    pub async fn acquire(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }
}

/// An answer counted as waiting for a collect slot ([`CollectSlots::park`]).
pub struct Parked {
    slots: Arc<CollectSlots>,
    bytes: u64,
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.slots
            .parked
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::SeqCst);
        self.slots.taken_up.notify_waiters();
    }
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
    /// Pages deliberately not fetched, with the reason (robots.txt, content type).
    pub skipped: Vec<String>,
    /// When the source is due again (after backoff when it failed).
    pub next_run: Option<DateTime<Utc>>,
}

/// Articles a source yields right now, before anything is stored.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub http_status: Option<u16>,
    pub not_modified: bool,
    pub validators: Option<(Option<String>, Option<String>)>,
    pub items: usize,
    /// Each article with the watchlists it matches.
    pub articles: Vec<(NewArticle, Vec<NewMatch>)>,
    /// Links to articles already stored, as (canonical, as linked): recorded, not fetched again.
    pub seen_urls: Vec<(String, String)>,
    pub page_errors: Vec<String>,
    /// Pages not fetched on purpose, as (URL, reason): disallowed by robots.txt, not a web page.
    pub skipped: Vec<(String, String)>,
    /// How the articles were found when the source did not say (an advertised feed, the link
    /// heuristics), for `sources test`.
    pub via: Option<String>,
    /// Things worth telling the user that did not stop the refresh (an advertised feed that
    /// could not be used, a child sitemap that failed).
    pub notes: Vec<String>,
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
    refresh_from(ctx, source, None, cancel).await
}

/// [`refresh`] of a source the daemon has leased, from the state the lease returned.
pub async fn refresh_leased(
    ctx: &Context,
    source: &SourceConfig,
    state: SourceState,
    cancel: &CancellationToken,
) -> Result<RefreshReport, StoreError> {
    refresh_from(ctx, source, Some(Some(state)), cancel).await
}

/// [`refresh`], with the source's stored state when the caller has read it already
/// (`Some(None)`: it has none yet); otherwise it is read here.
async fn refresh_from(
    ctx: &Context,
    source: &SourceConfig,
    known_state: Option<Option<SourceState>>,
    cancel: &CancellationToken,
) -> Result<RefreshReport, StoreError> {
    let cancelled = || Ok(RefreshReport::empty(&source.id, "cancelled"));
    let started = Utc::now();
    let state = match known_state {
        Some(state) => state,
        None => ctx.db.source_state(&source.id).await?,
    };
    let conditional = state.as_ref().map(|s| Conditional {
        etag: s.etag.clone(),
        last_modified: s.last_modified.clone(),
    });
    // Only a successful refresh stores a source's articles (and so its GUIDs).
    let known = if state.as_ref().is_some_and(|s| s.last_success.is_some()) {
        Known::Skip
    } else {
        Known::SkipNew
    };

    // The source's own answer is awaited without a collect slot (the fetcher's `[http]
    // concurrency` bounds the requests in flight): a slow server then holds up no parsing, and
    // the sources listed after it are fetched meanwhile, so the last slow one does not start
    // only when nearly everything else is done.
    let first = tokio::select! {
        _ = cancel.cancelled() => return cancelled(),
        first = async {
            ctx.collect_slots.room_to_fetch().await;
            fetch_source(ctx, source, conditional.as_ref()).await
        } => first,
    };
    let collected = match first {
        Err(e) => Err(e),
        Ok(first) => {
            let parked = ctx.collect_slots.park(match &first {
                Some(FetchOutcome::Fetched(page)) => page.text.len() as u64,
                _ => 0,
            });
            // Held while parsing and fetching article pages, not while the write waits to
            // commit.
            let _slot = tokio::select! {
                _ = cancel.cancelled() => return cancelled(),
                slot = ctx.collect_slots.acquire() => slot,
            };
            drop(parked);
            tokio::select! {
                _ = cancel.cancelled() => return cancelled(),
                collected = collect_fetched(ctx, source, first, known) => collected,
            }
        }
    };
    let finished = Utc::now();
    // Fetched: the daemon may lease another source in its place.
    if let Some(ticket) = &ctx.unfetched {
        ticket.fetched();
    }

    let collected = match collected {
        Ok(c) => c,
        Err(CollectError::Store(e)) => return Err(e),
        Err(e) => {
            let message = e.to_string();
            let failures = state.as_ref().map_or(0, |s| s.consecutive_failures) + 1;
            let retry_after = match &e {
                CollectError::Fetch(f) => f.retry_after(),
                _ => None,
            };
            let next_run = backoff_next_run(&ctx.settings, source, finished, failures, retry_after);
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
                    release_lease: ctx.lease_owner.clone(),
                })
                .await?;
            let mut report = RefreshReport::empty(&source.id, "error");
            report.error = Some(message);
            report.next_run = next_run;
            return Ok(report);
        }
    };

    // From the start, not the end: a refresh begun just before a period boundary must not make the
    // source skip the next period.
    let next_run = next_run(&ctx.settings, source, started);
    if !collected.skipped.is_empty() {
        ctx.db
            .record_skipped(&source.id, &collected.skipped, finished)
            .await?;
    }
    let skipped: Vec<String> = collected
        .skipped
        .iter()
        .map(|(url, reason)| format!("{url}: {reason}"))
        .collect();
    let outcome = if collected.not_modified {
        "not_modified"
    } else {
        "ok"
    };
    let articles = collected.articles;
    let mut warnings = Vec::new();
    if !collected.page_errors.is_empty() {
        warnings.push(format!(
            "{} article page(s) failed, will retry: {}",
            collected.page_errors.len(),
            collected.page_errors.join("; ")
        ));
    }
    if !skipped.is_empty() {
        warnings.push(format!(
            "{} page(s) skipped: {}",
            skipped.len(),
            skipped.join("; ")
        ));
    }
    let page_error = (!warnings.is_empty()).then(|| warnings.join(" | "));
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
                release_lease: ctx.lease_owner.clone(),
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
        skipped,
        next_run,
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
            skipped: Vec::new(),
            next_run: None,
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

/// Longest a failing source is left alone.
pub const MAX_BACKOFF: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Wait after the `failures`-th consecutive failure: `interval` × 2^(failures−1), capped at
/// [`MAX_BACKOFF`].
pub fn backoff_delay(interval: chrono::TimeDelta, failures: i64) -> chrono::TimeDelta {
    let doublings = u32::try_from(failures.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(20);
    interval
        .checked_mul(1 << doublings)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// When a source that just failed for the `failures`-th time in a row is due again: its
/// scheduled run, pushed out by [`backoff_delay`] of its poll interval, and never before the
/// server's `Retry-After`.
pub fn backoff_next_run(
    settings: &Settings,
    source: &SourceConfig,
    after: DateTime<Utc>,
    failures: i64,
    retry_after: Option<Duration>,
) -> Option<DateTime<Utc>> {
    let scheduled = next_run(settings, source, after)?;
    let interval = next_run(settings, source, scheduled)
        .map(|n| n - scheduled)
        .unwrap_or(scheduled - after);
    let backed_off = after + backoff_delay(interval, failures);
    let asked = retry_after
        .and_then(|d| chrono::TimeDelta::from_std(d).ok())
        .map(|d| after + d);
    [Some(scheduled), Some(backed_off), asked]
        .into_iter()
        .flatten()
        .max()
}

/// Runs every watchlist over an article's fields (source scope by id; no display name).
pub fn match_article(matcher: &Matcher, article: &NewArticle) -> Vec<NewMatch> {
    match_article_from(matcher, article, "")
}

/// Runs every watchlist over an article's fields: title, body, the canonical URL (what is
/// stored, so hit offsets point into the stored field), and the source's id and display name;
/// each watchlist's source and language scope applies.
pub fn match_article_from(
    matcher: &Matcher,
    article: &NewArticle,
    source_name: &str,
) -> Vec<NewMatch> {
    to_new_matches(matcher.match_article(&ArticleFields {
        title: &article.title,
        body: &article.body,
        url: &article.url,
        source_id: &article.source,
        source_name,
        language: article.language.as_deref(),
    }))
}

/// The same matching for an article already stored (watchlist test --since, backfill).
pub fn match_stored(
    matcher: &Matcher,
    article: &StoredArticle,
    source_name: &str,
) -> Vec<NewMatch> {
    to_new_matches(matcher.match_article(&ArticleFields {
        title: &article.title,
        body: &article.body,
        url: &article.url,
        source_id: &article.source,
        source_name,
        language: article.language.as_deref(),
    }))
}

fn to_new_matches(found: Vec<crate::matcher::WatchlistMatch>) -> Vec<NewMatch> {
    found
        .into_iter()
        .map(|m| NewMatch {
            watchlist: m.watchlist,
            hits: m.hits,
        })
        .collect()
}

/// What collecting a source leaves out because it is stored already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// Nothing: everything the source offers (`sources test`).
    Keep,
    /// Items whose every identifier (URL, feed GUID) is stored: their pages are not fetched
    /// again, nor their text worked over.
    Skip,
    /// As [`Known::Skip`], for a source never refreshed successfully: GUIDs are stored per
    /// source, and only by a successful refresh, so none of its own can be, and only its items
    /// without one are looked up (by URL, which another source may have stored). The store
    /// deduplicates whatever comes anyway; this spares a new source's first refresh a lookup
    /// that cannot find anything.
    SkipNew,
}

/// Fetches a source and turns it into articles without storing anything, leaving out what
/// `skip_known` says.
pub async fn collect(
    ctx: &Context,
    source: &SourceConfig,
    conditional: Option<&Conditional>,
    skip_known: Known,
) -> Result<Collected, CollectError> {
    let first = fetch_source(ctx, source, conditional).await?;
    collect_fetched(ctx, source, first, skip_known).await
}

/// The source's own URL, fetched: the answer a refresh waits for before it needs a collect
/// slot. `None` for a sitemap source, whose sitemaps [`collect_fetched`] reads.
pub async fn fetch_source(
    ctx: &Context,
    source: &SourceConfig,
    conditional: Option<&Conditional>,
) -> Result<Option<FetchOutcome>, CollectError> {
    if source.kind == SourceKind::Sitemap {
        return Ok(None);
    }
    Ok(Some(ctx.fetcher.get(&source.url, conditional).await?))
}

/// [`collect`] from the answer of [`fetch_source`]: parses it, fetches the article pages it
/// leads to, extracts and matches the articles.
pub async fn collect_fetched(
    ctx: &Context,
    source: &SourceConfig,
    first: Option<FetchOutcome>,
    skip_known: Known,
) -> Result<Collected, CollectError> {
    let rules = article_rules(source)?;
    let Some(first) = first else {
        return collect_sitemap(ctx, source, rules.as_ref(), skip_known).await;
    };
    let mut page = match first {
        FetchOutcome::NotModified => {
            return Ok(Collected {
                http_status: Some(304),
                not_modified: true,
                ..Collected::default()
            });
        }
        FetchOutcome::Fetched(page) => page,
    };
    let mut collected = Collected {
        http_status: Some(page.status),
        validators: Some((page.etag.clone(), page.last_modified.clone())),
        ..Collected::default()
    };

    match (&source.links, source.kind) {
        (_, SourceKind::Feed) => {
            // The body is not needed once parsed: a huge feed's text is freed before its items
            // become articles.
            let text = std::mem::take(&mut page.text);
            let items = extract::feed::parse_feed(&text, &page.url).map_err(|e| CollectError::Parse {
                url: page.url.to_string(),
                message: format!("{e}; check that [source] url of \"{}\" points at an RSS, Atom or JSON feed", source.id),
            })?;
            drop(text);
            collect_feed_items(
                ctx,
                source,
                &page.url,
                items,
                source.full_text,
                rules.as_ref(),
                skip_known,
                &mut collected,
            )
            .await?;
        }
        (Some(css), _) => {
            let selector = extract::parse_selector(css).map_err(|message| CollectError::Parse {
                url: source.url.to_string(),
                message: format!("bad links selector: {message}"),
            })?;
            let links = extract::listing::article_links(&page.text, &page.url, &selector);
            let targets = links.into_iter().map(Target::from).collect();
            collect_pages(
                ctx,
                source,
                targets,
                rules.as_ref(),
                skip_known,
                &mut collected,
            )
            .await?;
        }
        (None, _) => {
            // No selector: the feed the page advertises, if one works, else the heuristics.
            for feed_url in extract::listing::feed_links(&page.text, &page.url)
                .into_iter()
                .take(3)
            {
                let feed = match ctx.fetcher.get(&feed_url, None).await {
                    Ok(FetchOutcome::Fetched(feed)) => feed,
                    Ok(FetchOutcome::NotModified) => continue,
                    Err(e) => {
                        collected
                            .notes
                            .push(format!("advertised feed not used: {e}"));
                        continue;
                    }
                };
                match extract::feed::parse_feed(&feed.text, &feed.url) {
                    Ok(items) => {
                        collected.via = Some(format!(
                            "the feed {feed_url} advertised by the page (<link rel=\"alternate\">)"
                        ));
                        // An html source promises whole articles, so each item's page is read.
                        collect_feed_items(
                            ctx,
                            source,
                            &feed.url,
                            items,
                            true,
                            rules.as_ref(),
                            skip_known,
                            &mut collected,
                        )
                        .await?;
                        return Ok(collected);
                    }
                    Err(e) => collected
                        .notes
                        .push(format!("advertised feed {feed_url} not used: {e}")),
                }
            }
            collected.via = Some(
                "article links found by URL and link-text heuristics (no [source.listing] links)"
                    .to_string(),
            );
            let links = extract::listing::discover_article_links(&page.text, &page.url);
            let targets = links.into_iter().map(Target::from).collect();
            collect_pages(
                ctx,
                source,
                targets,
                rules.as_ref(),
                skip_known,
                &mut collected,
            )
            .await?;
        }
    }
    Ok(collected)
}

/// An article page to fetch, with what the listing already said about it.
#[derive(Debug, Clone)]
struct Target {
    url: Url,
    /// `news:title` of a news sitemap: used when the page yields no title.
    title: Option<String>,
    /// `news:publication_date`: used when the page yields no date.
    published: Option<DateTime<Utc>>,
}

impl From<Url> for Target {
    fn from(url: Url) -> Target {
        Target {
            url,
            title: None,
            published: None,
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site per way a feed is found; a struct would only rename them"
)]
async fn collect_feed_items(
    ctx: &Context,
    source: &SourceConfig,
    feed_url: &Url,
    items: Vec<FeedItem>,
    full_text: bool,
    rules: Option<&ArticleRules>,
    skip_known: Known,
    collected: &mut Collected,
) -> Result<(), CollectError> {
    collected.items = items.len();
    let mut wanted: Vec<FeedItem> = items;
    if skip_known != Known::Keep {
        // A new source's items with a GUID cannot be known (see `Known::SkipNew`).
        let lookup = |i: &&FeedItem| skip_known == Known::Skip || i.guid.is_none();
        let guids: Vec<String> = wanted
            .iter()
            .filter(lookup)
            .filter_map(|i| i.guid.clone())
            .collect();
        let urls: Vec<String> = wanted
            .iter()
            .filter(lookup)
            .filter_map(|i| i.url.as_ref().map(canonical))
            .collect();
        let (known_guids, known_urls) = ctx
            .db
            .known_guids_and_urls(&source.id, &guids, &urls)
            .await?;
        let (known, fresh): (Vec<FeedItem>, Vec<FeedItem>) = wanted.into_iter().partition(|i| {
            // Skip an item only when every identifier it has is known: a known GUID at a new
            // URL (or a known URL under a new GUID) goes to the store, which finds the article
            // and records the new identifier. An item with neither is keyed by its text there.
            let guid_known = i.guid.as_ref().is_none_or(|g| known_guids.contains(g));
            let url_known = i
                .url
                .as_ref()
                .is_none_or(|u| known_urls.contains(&canonical(u)));
            (i.guid.is_some() || i.url.is_some()) && guid_known && url_known
        });
        collected.seen_urls = known
            .iter()
            .filter_map(|i| i.url.as_ref().map(|u| (canonical(u), u.to_string())))
            .collect();
        wanted = fresh;
    }
    let pages = if full_text {
        let urls: Vec<Option<Url>> = wanted.iter().map(|i| i.url.clone()).collect();
        fetch_pages(ctx, source, &urls, rules).await
    } else {
        wanted.iter().map(|_| None).collect()
    };
    // A usual feed's signatures are worked out with the content hashes, in one pass over the
    // words; a huge feed's are left to the store (see `PRECOMPUTED_SIGNATURES`).
    let with_signature = wanted.len() <= crate::store::PRECOMPUTED_SIGNATURES;
    for (item, item_page) in wanted.into_iter().zip(pages) {
        let extracted = match item_page {
            Some(Ok(e)) => Some(e),
            Some(Err(e)) if e.is_skip() => {
                // Keep the feed's own text: the feed itself was allowed.
                collected
                    .skipped
                    .push((e.url().unwrap_or_default().to_string(), skip_reason(&e)));
                None
            }
            Some(Err(e)) => {
                collected.page_errors.push(e.to_string());
                // Keep the feed's own text rather than drop the item.
                None
            }
            None => None,
        };
        collected.articles.push(from_feed_item(
            &ctx.matcher,
            source,
            &page_url_fallback(feed_url, &item),
            item,
            extracted,
            with_signature,
        ));
    }
    Ok(())
}

/// Fetches and extracts the pages a listing or sitemap points at.
async fn collect_pages(
    ctx: &Context,
    source: &SourceConfig,
    targets: Vec<Target>,
    rules: Option<&ArticleRules>,
    skip_known: Known,
    collected: &mut Collected,
) -> Result<(), CollectError> {
    collected.items = targets.len();
    let mut wanted = targets;
    if skip_known != Known::Keep {
        let urls: Vec<String> = wanted.iter().map(|t| canonical(&t.url)).collect();
        let known = ctx.db.known_urls(&urls).await?;
        // Pages skipped within the robots.txt cache lifetime are not asked for again.
        let since = Utc::now() - chrono::TimeDelta::hours(24);
        let skipped = ctx.db.recently_skipped(&urls, since).await?;
        let (seen, fresh): (Vec<Target>, Vec<Target>) = wanted
            .into_iter()
            .filter(|t| !skipped.contains(&canonical(&t.url)))
            .partition(|t| known.contains(&canonical(&t.url)));
        collected.seen_urls = seen
            .iter()
            .map(|t| (canonical(&t.url), t.url.to_string()))
            .collect();
        wanted = fresh;
    }
    let urls: Vec<Option<Url>> = wanted.iter().map(|t| Some(t.url.clone())).collect();
    let pages = fetch_pages(ctx, source, &urls, rules).await;
    let with_signature = wanted.len() <= crate::store::PRECOMPUTED_SIGNATURES;
    for (target, page) in wanted.into_iter().zip(pages) {
        let url = &target.url;
        match page {
            Some(Ok(mut extracted)) => {
                if extracted.title.trim().is_empty()
                    && let Some(title) = target.title
                {
                    extracted.title = title;
                }
                extracted.published = extracted.published.or(target.published);
                if extracted.title.trim().is_empty() && extracted.body.trim().is_empty() {
                    collected.page_errors.push(format!(
                        "{url}: no title or text found; check [source.article] selectors"
                    ));
                    continue;
                }
                collected.articles.push(from_page(
                    &ctx.matcher,
                    source,
                    url,
                    extracted,
                    with_signature,
                ));
            }
            Some(Err(e)) if e.is_skip() => {
                collected.skipped.push((canonical(url), skip_reason(&e)));
            }
            Some(Err(e)) => collected.page_errors.push(e.to_string()),
            None => {}
        }
    }
    Ok(())
}

/// Child sitemaps of an index read per refresh (the most recent first).
const MAX_CHILD_SITEMAPS: usize = 10;
/// Entries taken from a sitemap per refresh (dated ones newest first, then undated ones).
const MAX_SITEMAP_ENTRIES: usize = 100;

/// A `sitemap` source: the sitemap (or index of sitemaps), its entries from the last `max_age`,
/// each page extracted.
async fn collect_sitemap(
    ctx: &Context,
    source: &SourceConfig,
    rules: Option<&ArticleRules>,
    skip_known: Known,
) -> Result<Collected, CollectError> {
    let max_age = source.max_age.unwrap_or(DEFAULT_SITEMAP_MAX_AGE);
    let cutoff = Utc::now() - chrono::TimeDelta::from_std(max_age).unwrap_or(MAX_BACKOFF);
    let limit = ctx.settings.http.max_body;
    let body = ctx.fetcher.get_bytes(&source.url).await?;
    let mut collected = Collected {
        http_status: Some(body.status),
        ..Collected::default()
    };
    let parse_error = |url: &Url, e: &dyn std::fmt::Display| CollectError::Parse {
        url: url.to_string(),
        message: format!(
            "{e}; check that [source] url of \"{}\" points at a sitemap (<urlset> or <sitemapindex>)",
            source.id
        ),
    };
    let xml =
        extract::sitemap::decompress(&body.bytes, limit).map_err(|e| parse_error(&body.url, &e))?;
    let mut entries = Vec::new();
    let mut pending = vec![(
        extract::sitemap::parse(&xml, &body.url).map_err(|e| parse_error(&body.url, &e))?,
        0,
    )];
    while let Some((map, depth)) = pending.pop() {
        match map {
            extract::sitemap::Sitemap::Urls(urls) => entries.extend(urls),
            extract::sitemap::Sitemap::Index(mut children) => {
                // Indexes of indexes exist, but not deeper than this in practice.
                if depth >= 2 {
                    continue;
                }
                children.retain(|c| c.lastmod.is_none_or(|m| m >= cutoff));
                children.sort_by_key(|c| std::cmp::Reverse(c.lastmod));
                for child in children.into_iter().take(MAX_CHILD_SITEMAPS) {
                    let parsed = match ctx.fetcher.get_bytes(&child.url).await {
                        Ok(b) => extract::sitemap::decompress(&b.bytes, limit)
                            .and_then(|xml| extract::sitemap::parse(&xml, &b.url))
                            .map_err(|e| format!("{}: {e}", child.url)),
                        Err(e) => Err(e.to_string()),
                    };
                    match parsed {
                        Ok(map) => pending.push((map, depth + 1)),
                        Err(e) => collected.page_errors.push(format!("child sitemap {e}")),
                    }
                }
            }
        }
    }
    entries.retain(|e| e.date().is_none_or(|d| d >= cutoff));
    // Newest first; undated entries after the dated ones, in sitemap order.
    entries.sort_by_key(|e| std::cmp::Reverse(e.date()));
    let mut seen = HashSet::new();
    let targets: Vec<Target> = entries
        .into_iter()
        .filter(|e| seen.insert(e.url.clone()))
        .take(MAX_SITEMAP_ENTRIES)
        .map(|e| Target {
            url: e.url,
            title: e.title,
            published: e.published,
        })
        .collect();
    collect_pages(ctx, source, targets, rules, skip_known, &mut collected).await?;
    Ok(collected)
}

/// The reason recorded for a skipped page.
fn skip_reason(e: &FetchError) -> String {
    match e {
        FetchError::Disallowed { robots, .. } => format!("disallowed by {robots}"),
        FetchError::NotHtml { content_type, .. } => {
            format!("not a web page (content type {content_type})")
        }
        other => other.to_string(),
    }
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
    source: &SourceConfig,
    urls: &[Option<Url>],
    rules: Option<&ArticleRules>,
) -> Vec<Option<Result<Extracted, FetchError>>> {
    // Dates a page gives without a zone are in the source's (or the configured) timezone.
    let timezone = source.timezone.unwrap_or(ctx.settings.schedule.timezone);
    let limit = ctx.settings.http.concurrency.max(1);
    futures_util::stream::iter(urls.iter().cloned())
        .map(|url| async move {
            let url = url?;
            Some(ctx.fetcher.get_html(&url).await.map(|page| {
                let page_ctx = extract::PageContext::new(&page.url)
                    .with_rules(rules)
                    .with_timezone(Some(timezone));
                extract::extractor().extract(&page.text, &page_ctx)
            }))
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

/// Longest title stored, in characters; a page's title past it is cut (with "…"). Real headlines
/// are far shorter, and a hostile page's megabyte "title" would otherwise be matched, hashed and
/// shown in every digest and listing.
pub const MAX_TITLE_CHARS: usize = 1000;

/// A title as stored: one line, no control characters (a page could otherwise move a terminal's
/// cursor or colour `marsad articles` output), whitespace runs collapsed, at most
/// [`MAX_TITLE_CHARS`] characters.
pub fn stored_title(title: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    let words = title
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty());
    for word in words {
        let sep = usize::from(!out.is_empty());
        let len = word.chars().take(MAX_TITLE_CHARS + 1).count();
        if chars + sep + len > MAX_TITLE_CHARS {
            // Room left for this word once the ellipsis is counted.
            let room = MAX_TITLE_CHARS.saturating_sub(chars + 1);
            if room > sep {
                if sep == 1 {
                    out.push(' ');
                }
                out.extend(word.chars().take(room - sep));
            }
            out.push('…');
            return out;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(word);
        chars += sep + len;
    }
    out
}

/// A body as stored: trimmed, without control characters other than newlines and tabs.
pub fn stored_body(body: &str) -> String {
    let unwanted = |c: char| c.is_control() && c != '\n' && c != '\t';
    let body = body.trim();
    if body.contains(unwanted) {
        body.chars().filter(|&c| !unwanted(c)).collect()
    } else {
        body.to_string()
    }
}

fn from_feed_item(
    matcher: &Matcher,
    source: &SourceConfig,
    raw_url: &str,
    item: FeedItem,
    page: Option<Extracted>,
    with_signature: bool,
) -> (NewArticle, Vec<NewMatch>) {
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
    let title = stored_title(&title);
    let body = stored_body(&body);
    let (content_hash, signature, prescanned) =
        hash_and_signature(matcher, &title, &body, with_signature);
    let article = NewArticle {
        source: source.id.clone(),
        content_hash,
        signature,
        url,
        raw_url: raw_url.to_string(),
        guid: item.guid,
        title,
        body,
        published,
        language: language.or_else(|| source.language.clone()),
        author,
    };
    with_matches(matcher, source, article, prescanned)
}

/// The article with the watchlists it matches, its title and body scanned already.
fn with_matches(
    matcher: &Matcher,
    source: &SourceConfig,
    article: NewArticle,
    prescanned: Prescanned,
) -> (NewArticle, Vec<NewMatch>) {
    let found = matcher.match_prescanned(
        &ArticleFields {
            title: &article.title,
            body: &article.body,
            url: &article.url,
            source_id: &article.source,
            source_name: &source.name,
            language: article.language.as_deref(),
        },
        prescanned,
    );
    (article, to_new_matches(found))
}

/// The content hash of an article's stored text, if asked its story signature, and the
/// watchlist terms in its title and body: all from one pass over the words.
fn hash_and_signature(
    matcher: &Matcher,
    title: &str,
    body: &str,
    with_signature: bool,
) -> (String, Option<Box<crate::dedupe::Signature>>, Prescanned) {
    let mut prescanned = Prescanned::default();
    let prescan =
        |body: bool, words: &normalize::text::Words| matcher.prescan(body, words, &mut prescanned);
    let (hash, signature) = if with_signature {
        let (hash, signature) =
            crate::dedupe::content_hash_and_signature_with(title, body, prescan);
        (hash, Some(Box::new(signature)))
    } else {
        (
            normalize::text::content_hash_of_words(title, body, prescan),
            None,
        )
    };
    (hash, signature, prescanned)
}

fn from_page(
    matcher: &Matcher,
    source: &SourceConfig,
    url: &Url,
    page: Extracted,
    with_signature: bool,
) -> (NewArticle, Vec<NewMatch>) {
    let title = stored_title(&page.title);
    let body = stored_body(&page.body);
    let (content_hash, signature, prescanned) =
        hash_and_signature(matcher, &title, &body, with_signature);
    let article = NewArticle {
        source: source.id.clone(),
        content_hash,
        signature,
        url: canonical(url),
        raw_url: url.to_string(),
        guid: None,
        title,
        body,
        published: page.published,
        language: page.language.or_else(|| source.language.clone()),
        author: page.author,
    };
    with_matches(matcher, source, article, prescanned)
}

/// Refreshes several sources concurrently; one failure never stops the others.
pub async fn refresh_all(
    ctx: &Context,
    sources: &[SourceConfig],
    cancel: &CancellationToken,
) -> Vec<Result<RefreshReport, (String, StoreError)>> {
    refresh_all_with(ctx, sources, cancel, |_| {}).await
}

type SourceResult = Result<RefreshReport, (String, StoreError)>;

/// [`refresh_all`], calling `on_done` with each source's id as its refresh finishes (in the
/// order they finish, e.g. to advance a progress bar). The reports are in source order.
///
/// Up to [`REFRESHES_PER_SLOT`] × `[http] concurrency` refreshes are under way at once (no
/// more than `[http] concurrency` fetching) and a finished one is replaced at once: a slow source
/// holds one slot, not the sources listed after it.
pub async fn refresh_all_with(
    ctx: &Context,
    sources: &[SourceConfig],
    cancel: &CancellationToken,
    on_done: impl Fn(&str),
) -> Vec<Result<RefreshReport, (String, StoreError)>> {
    let mut seen = HashSet::new();
    let unique: Vec<&SourceConfig> = sources
        .iter()
        .filter(|s| seen.insert(s.id.clone()))
        .collect();
    // Every source's state in one read rather than one each (if that read fails, each refresh
    // reads its own, and reports the error as its own).
    let mut states: Option<HashMap<String, SourceState>> = ctx
        .db
        .source_states()
        .await
        .ok()
        .map(|all| all.into_iter().map(|s| (s.id.clone(), s)).collect());
    let mut reports: Vec<(usize, SourceResult)> =
        futures_util::stream::iter(unique.into_iter().enumerate())
            .map(|(i, source)| {
                // Each refresh is a task of its own, so that the parsing, extraction and
                // matching of concurrent refreshes use every core (polled together in this
                // stream they shared one thread). Dropping this future aborts the task.
                let (ctx, task_source, cancel) = (ctx.clone(), source.clone(), cancel.clone());
                let state = states.as_mut().map(|all| all.remove(&source.id));
                let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
                    refresh_from(&ctx, &task_source, state, &cancel).await
                }));
                async move {
                    let report = match task.await {
                        Ok(report) => report,
                        Err(e) => Err(StoreError::RefreshAborted {
                            message: e.to_string(),
                        }),
                    };
                    (i, report.map_err(|e| (source.id.clone(), e)))
                }
            })
            .buffer_unordered(ctx.settings.http.concurrency.max(1) * REFRESHES_PER_SLOT)
            .inspect(|(_, r)| {
                on_done(match r {
                    Ok(report) => &report.source,
                    Err((id, _)) => id,
                })
            })
            .collect()
            .await;
    reports.sort_by_key(|(i, _)| *i);
    reports.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::{CollectSlots, MAX_TITLE_CHARS, stored_body, stored_title};

    #[tokio::test]
    async fn fetching_pauses_while_the_answers_waiting_for_a_slot_fill_the_budget() {
        use std::sync::Arc;
        use std::time::Duration;
        let slots = Arc::new(CollectSlots::new(1, 100));
        let first = slots.park(60);
        tokio::time::timeout(Duration::from_secs(5), slots.room_to_fetch())
            .await
            .expect("room while less than the budget waits");
        let second = slots.park(50);
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.room_to_fetch().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !waiting.is_finished(),
            "fetched more while 110 of 100 bytes wait for a slot"
        );
        // An answer taken up for parsing makes room.
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("room once an answer is taken up")
            .expect("the waiting task");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), slots.room_to_fetch())
            .await
            .expect("room once nothing waits");
    }

    #[test]
    fn titles_are_one_clean_line_of_bounded_length() {
        assert_eq!(
            stored_title("  بوتين\n\tيتصل \u{1b}[31mبنتنياهو\r\n"),
            "بوتين يتصل [31mبنتنياهو"
        );
        let long = "كلمة ".repeat(1000);
        let cut = stored_title(&long);
        assert!(
            cut.chars().count() <= MAX_TITLE_CHARS,
            "{}",
            cut.chars().count()
        );
        assert!(cut.chars().count() > MAX_TITLE_CHARS - 6);
        assert!(cut.ends_with('…') && cut.starts_with("كلمة كلمة"));
        let one_word = "x".repeat(5_000_000);
        let cut = stored_title(&one_word);
        assert_eq!(cut.chars().count(), MAX_TITLE_CHARS);
        assert!(cut.ends_with("x…"));
        let exact = "y".repeat(MAX_TITLE_CHARS);
        assert_eq!(
            stored_title(&exact),
            exact,
            "a title at the limit is kept whole"
        );
    }

    #[test]
    fn bodies_keep_lines_and_lose_control_characters() {
        assert_eq!(
            stored_body("\n first line\u{7}\nsecond\tcolumn\u{1b}[0m \u{85}end\n"),
            "first line\nsecond\tcolumn[0m end"
        );
    }

    use super::*;

    #[test]
    fn backoff_doubles_per_failure_and_stops_at_a_day() {
        let half_hour = chrono::TimeDelta::minutes(30);
        let got: Vec<i64> = (1..=8)
            .map(|n| backoff_delay(half_hour, n).num_minutes())
            .collect();
        assert_eq!(got, [30, 60, 120, 240, 480, 960, 1440, 1440]);
        assert_eq!(backoff_delay(half_hour, i64::MAX), MAX_BACKOFF);
        assert_eq!(backoff_delay(chrono::TimeDelta::hours(48), 1), MAX_BACKOFF);
    }
}
