//! The one HTTP client of marsad.
//!
//! Every request goes through [`Fetcher::get`], so politeness and safety are enforced in one
//! place: an overall in-flight limit and a per-host limit (semaphores with named limits, never
//! "spawn and hope"), a timeout, a body cap checked while the body streams in (a hostile or
//! broken server cannot make us buffer gigabytes), conditional GET so unchanged feeds cost a
//! 304, and redirects followed by hand so each hop is checked (http/https only, counted, and
//! limited per host like any other request).
//!
//! Politeness lives here too, so no caller can forget it: robots.txt is read once per host (and
//! re-read after a day) and a disallowed URL is refused with [`FetchError::Disallowed`]; requests
//! to one host start at least `[http].min_delay` apart (or the site's `Crawl-delay`, when larger);
//! a 429/503 whose `Retry-After` fits in the timeout is waited out and retried once; article
//! pages fetched with [`Fetcher::get_html`] stop after the headers when the content type is not a
//! web page (PDF, images, video), before any of the body is downloaded.

pub mod charset;
pub mod deny;
pub mod robots;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap, HeaderValue};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

/// What `[http]` in marsad.toml configures.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub user_agent: String,
    /// Limit for one request/response exchange (each redirect hop gets its own), from sending
    /// the request to the last body byte.
    pub timeout: Duration,
    /// Largest decoded body accepted, in bytes.
    pub max_body: u64,
    /// Requests in flight overall.
    pub concurrency: usize,
    /// Requests in flight to one host.
    pub per_host: usize,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
    /// Shortest time between the starts of two requests to one host.
    pub min_delay: Duration,
    /// Whether robots.txt is read and honoured.
    pub robots: bool,
    /// Addresses never connected to (`[http].deny_networks`), checked on every hop and after
    /// DNS resolution.
    pub deny: deny::DenyList,
}

impl Default for HttpOptions {
    /// The defaults documented for `[http]`.
    fn default() -> Self {
        HttpOptions {
            user_agent: concat!("marsad/", env!("CARGO_PKG_VERSION")).to_string(),
            timeout: Duration::from_secs(20),
            max_body: 15 * 1024 * 1024,
            concurrency: 16,
            per_host: 2,
            max_redirects: 10,
            min_delay: Duration::from_millis(500),
            robots: true,
            deny: deny::DenyList::default_list(),
        }
    }
}

/// Validators from the previous fetch of the same URL.
#[derive(Debug, Clone, Default)]
pub struct Conditional {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// The result of a successful exchange.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per fetch, moved once; boxing would only add an allocation"
)]
pub enum FetchOutcome {
    /// The server answered 304: nothing changed since the validators were issued.
    NotModified,
    Fetched(Page),
}

/// A fetched, decoded document.
#[derive(Debug, Clone)]
pub struct Page {
    /// Final URL after redirects; relative links in the document resolve against it.
    pub url: Url,
    pub status: u16,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_type: Option<String>,
    /// The body decoded to UTF-8 (see [`charset::decode_hinted`]).
    pub text: String,
    /// Name of the encoding the body was decoded from, e.g. `"windows-1256"`.
    pub encoding: &'static str,
    /// Body size in bytes after content decoding (gzip etc.), before charset decoding.
    pub bytes: usize,
}

/// Why a GET failed. Each message names the URL and says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("invalid [http] settings: {0}")]
    Options(String),
    #[error("cannot build the HTTP client: {0}; check the TLS setup of this machine")]
    Client(String),
    #[error(
        "GET {url}: unsupported URL scheme {scheme:?}; only http and https sources can be fetched"
    )]
    UnsupportedScheme { url: String, scheme: String },
    #[error(
        "GET {url}: no response within {}; raise [http].timeout or check the source",
        humanize(*after)
    )]
    Timeout { url: String, after: Duration },
    #[error(
        "GET {url}: body larger than {limit} bytes; raise [http].max_body if this source is legitimately that large"
    )]
    TooLarge { url: String, limit: u64 },
    #[error("GET {url}: server answered {status}{}; {}", reason_suffix(*status), status_advice(*status))]
    Status {
        url: String,
        status: u16,
        /// From `Retry-After` (delta-seconds or an HTTP date), for 429/503 backoff.
        retry_after: Option<Duration>,
    },
    #[error(
        "GET {url}: more than {max} redirects; check the source URL or raise [http].max_redirects"
    )]
    TooManyRedirects { url: String, max: usize },
    #[error("GET {url}: redirect ({status}) without a usable Location header{}; check the source URL", location.as_deref().map(|l| format!(" ({l:?})")).unwrap_or_default())]
    BadRedirect {
        url: String,
        status: u16,
        location: Option<String>,
    },
    #[error(
        "GET {url}: disallowed by {robots} for our user agent; skipped (ask the site owner, or remove the source)"
    )]
    Disallowed { url: String, robots: String },
    #[error(
        "GET {url}: robots.txt at {robots} could not be read ({reason}); nothing is fetched from this host until it can be, per RFC 9309"
    )]
    RobotsUnreachable {
        url: String,
        robots: String,
        reason: String,
    },
    #[error(
        "GET {url}: content type {content_type:?} is not a web page; skipped (only HTML pages are extracted)"
    )]
    NotHtml { url: String, content_type: String },
    #[error(
        "GET {url}: not fetched: {reason}; remove the source, or change [http].deny_networks if this address is meant to be reached"
    )]
    Denied { url: String, reason: deny::Denied },
    #[error("GET {url}: cannot connect: {reason}; check the host name, DNS and network")]
    Connect { url: String, reason: String },
    #[error("GET {url}: network error: {reason}; it may be temporary, the source will be retried")]
    Network { url: String, reason: String },
}

impl FetchError {
    /// Whether retrying later may succeed (timeouts, network trouble, 408/425/429/5xx), as
    /// opposed to errors that need a change of configuration or source.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Timeout { .. }
            | FetchError::Connect { .. }
            | FetchError::Network { .. }
            | FetchError::RobotsUnreachable { .. } => true,
            FetchError::Status { status, .. } => {
                matches!(status, 408 | 425 | 429) || (500..600).contains(status)
            }
            FetchError::Options(_)
            | FetchError::Client(_)
            | FetchError::UnsupportedScheme { .. }
            | FetchError::TooLarge { .. }
            | FetchError::TooManyRedirects { .. }
            | FetchError::BadRedirect { .. }
            | FetchError::Disallowed { .. }
            | FetchError::Denied { .. }
            | FetchError::NotHtml { .. } => false,
        }
    }

    /// Whether the URL was deliberately not fetched (robots.txt, content type, a denied address)
    /// rather than failed: such a page is recorded as skipped, not retried as an error.
    pub fn is_skip(&self) -> bool {
        matches!(
            self,
            FetchError::Disallowed { .. } | FetchError::NotHtml { .. } | FetchError::Denied { .. }
        )
    }

    /// How long the server asked us to wait (`Retry-After` on 429/503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The URL the failing request was for, if the error concerns one.
    /// The HTTP status the server answered with, when the failure was an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn url(&self) -> Option<&str> {
        match self {
            FetchError::Options(_) | FetchError::Client(_) => None,
            FetchError::UnsupportedScheme { url, .. }
            | FetchError::Timeout { url, .. }
            | FetchError::TooLarge { url, .. }
            | FetchError::Status { url, .. }
            | FetchError::TooManyRedirects { url, .. }
            | FetchError::BadRedirect { url, .. }
            | FetchError::Connect { url, .. }
            | FetchError::Network { url, .. }
            | FetchError::Disallowed { url, .. }
            | FetchError::RobotsUnreachable { url, .. }
            | FetchError::Denied { url, .. }
            | FetchError::NotHtml { url, .. } => Some(url),
        }
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn reason_suffix(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

fn status_advice(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            "the site refuses us; check the URL, or whether it blocks our [http].user_agent"
        }
        404 | 410 => "the page is gone; update the source URL",
        408 | 425 | 429 => "the site asks us to slow down; it will be retried later",
        500..=599 => "the server has trouble; it will be retried later",
        _ => "check the source URL",
    }
}

/// Shared state behind [`Fetcher`]'s `Arc`.
struct Inner {
    client: reqwest::Client,
    opts: HttpOptions,
    /// Named limit: `[http].concurrency` requests in flight overall.
    in_flight: Arc<Semaphore>,
    /// Named limit: `[http].per_host` requests in flight per host, one semaphore per host.
    per_host: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Per host: the earliest time the next request may start (`[http].min_delay` apart).
    next_start: Mutex<HashMap<String, Instant>>,
    /// Per host: a robots.txt `Crawl-delay` longer than `[http].min_delay`.
    crawl_delay: Mutex<HashMap<String, Duration>>,
    /// robots.txt rules per origin.
    robots: robots::Cache,
}

/// The HTTP client; cheap to clone, and clones share the limits.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

/// A response body before charset decoding, as [`Fetcher::get_bytes`] returns it.
#[derive(Debug, Clone)]
pub struct Body {
    /// Final URL after redirects.
    pub url: Url,
    pub status: u16,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_type: Option<String>,
    /// After content decoding (Content-Encoding), not charset decoding.
    pub bytes: Vec<u8>,
}

impl Body {
    fn into_page(self) -> Page {
        let tld = self
            .url
            .host_str()
            .and_then(|h| h.rsplit('.').next())
            .filter(|t| t.chars().all(|c| c.is_ascii_alphabetic()));
        // A header charset the bytes plainly contradict is a misconfigured server (a default
        // charset set for the whole site): it is ignored and the document's own declaration, or
        // detection, decides instead.
        let declared = self
            .content_type
            .as_deref()
            .filter(|ct| !header_charset_contradicted(ct, &self.bytes));
        if declared.is_none() && self.content_type.is_some() {
            tracing::debug!(url = %self.url, content_type = ?self.content_type, "the header's charset contradicts the body; ignored");
        }
        let (text, encoding) = charset::decode_hinted(&self.bytes, declared, tld);
        Page {
            status: self.status,
            etag: self.etag,
            last_modified: self.last_modified,
            content_type: self.content_type,
            text,
            encoding: encoding.name(),
            bytes: self.bytes.len(),
            url: self.url,
        }
    }
}

/// Whether the `charset` of a Content-Type is contradicted by the body: a legacy charset
/// (ISO-8859-1, windows-1256, …) for bytes that are valid UTF-8 with non-ASCII text in them, or
/// UTF-8 for bytes most of whose non-ASCII part is invalid UTF-8. Text in a legacy single-byte
/// encoding is practically never valid UTF-8 by accident, and a UTF-8 page with a few broken
/// bytes (which keeps its charset) has far more valid non-ASCII characters than invalid bytes.
fn header_charset_contradicted(content_type: &str, body: &[u8]) -> bool {
    let Some(declared) = charset::charset_param(content_type)
        .and_then(|label| encoding_rs::Encoding::for_label(label.trim().as_bytes()))
    else {
        return false;
    };
    if encoding_rs::Encoding::for_bom(body).is_some() {
        return false;
    }
    let (mut valid_non_ascii, mut invalid) = (0usize, 0usize);
    for chunk in body.utf8_chunks() {
        valid_non_ascii += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        invalid += chunk.invalid().len();
    }
    if declared == encoding_rs::UTF_8 {
        invalid > valid_non_ascii
    } else {
        invalid == 0 && valid_non_ascii > 0
    }
}

/// What a caller will accept as the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Anything,
    /// A web page: stop after the headers when the content type says otherwise.
    Html,
}

/// Where a redirect hop or the final answer leaves the request.
enum Hop {
    /// `None`: 304 Not Modified.
    Done(Option<Body>),
    Redirect(Url),
}

/// Above this many remembered hosts, idle per-host semaphores are dropped so a long-running
/// daemon that followed links to many hosts does not keep them all.
const HOST_TABLE_PRUNE_AT: usize = 1024;

impl Fetcher {
    pub fn new(opts: HttpOptions) -> Result<Fetcher, FetchError> {
        if opts.concurrency == 0 || opts.per_host == 0 {
            return Err(FetchError::Options(
                "[http].concurrency and [http].per_host must be at least 1".into(),
            ));
        }
        if opts.timeout.is_zero() {
            return Err(FetchError::Options(
                "[http].timeout must be longer than 0s".into(),
            ));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,\
                 application/feed+json,application/xml;q=0.9,*/*;q=0.8",
            ),
        );
        let client = reqwest::Client::builder()
            .user_agent(opts.user_agent.clone())
            .default_headers(headers)
            // Redirects are followed in `get`, hop by hop, so each one is checked and counted.
            .redirect(reqwest::redirect::Policy::none())
            // Host names are checked against [http].deny_networks once resolved.
            .dns_resolver(Arc::new(deny::DenyResolver {
                deny: Arc::new(opts.deny.clone()),
            }))
            .connect_timeout(opts.timeout)
            .build()
            .map_err(|e| FetchError::Client(error_chain(&e)))?;
        Ok(Fetcher {
            inner: Arc::new(Inner {
                client,
                in_flight: Arc::new(Semaphore::new(opts.concurrency)),
                per_host: Mutex::new(HashMap::new()),
                next_start: Mutex::new(HashMap::new()),
                crawl_delay: Mutex::new(HashMap::new()),
                robots: robots::Cache::default(),
                opts,
            }),
        })
    }

    pub fn options(&self) -> &HttpOptions {
        &self.inner.opts
    }

    /// GET with optional conditional headers (If-None-Match / If-Modified-Since); 304 =>
    /// NotModified. Waiting for a free slot does not count against the timeout; each hop's
    /// exchange does.
    pub async fn get(
        &self,
        url: &Url,
        cond: Option<&Conditional>,
    ) -> Result<FetchOutcome, FetchError> {
        Ok(match self.fetch(url, cond, Want::Anything).await? {
            Some(body) => FetchOutcome::Fetched(body.into_page()),
            None => FetchOutcome::NotModified,
        })
    }

    /// GET of an article page: like [`Fetcher::get`] without validators, but a response whose
    /// content type is not a web page (`text/html`, `application/xhtml+xml`, other `text/*`, or
    /// none) is refused with [`FetchError::NotHtml`] before its body is read.
    pub async fn get_html(&self, url: &Url) -> Result<Page, FetchError> {
        match self.fetch(url, None, Want::Html).await? {
            Some(body) => Ok(body.into_page()),
            None => Err(FetchError::Network {
                url: url.to_string(),
                reason: "unexpected 304 to a request without validators".into(),
            }),
        }
    }

    /// GET returning the bytes undecoded (gzip sitemaps, robots.txt).
    pub async fn get_bytes(&self, url: &Url) -> Result<Body, FetchError> {
        match self.fetch(url, None, Want::Anything).await? {
            Some(body) => Ok(body),
            None => Err(FetchError::Network {
                url: url.to_string(),
                reason: "unexpected 304 to a request without validators".into(),
            }),
        }
    }

    /// robots.txt check, then the request; a 429/503 whose `Retry-After` fits within
    /// `[http].timeout` is waited out (holding no slot) and retried once.
    async fn fetch(
        &self,
        url: &Url,
        cond: Option<&Conditional>,
        want: Want,
    ) -> Result<Option<Body>, FetchError> {
        check_scheme(url)?;
        match self.fetch_once(url, cond, want, true).await {
            Err(FetchError::Status {
                status: 429 | 503,
                retry_after: Some(wait),
                ..
            }) if wait <= self.inner.opts.timeout => {
                tracing::debug!(%url, wait = ?wait, "server asked us to wait (Retry-After); retrying once");
                tokio::time::sleep(wait).await;
                self.fetch_once(url, cond, want, true).await
            }
            other => other,
        }
    }

    /// One GET with its redirects. `polite` checks robots.txt for every hop (off only for
    /// fetching robots.txt itself).
    async fn fetch_once(
        &self,
        url: &Url,
        cond: Option<&Conditional>,
        want: Want,
        polite: bool,
    ) -> Result<Option<Body>, FetchError> {
        let mut current = url.clone();
        let mut redirects = 0;
        loop {
            self.check_address(&current)?;
            if polite && self.inner.opts.robots {
                self.check_robots(&current).await?;
            }
            let hop = {
                let _slot = self
                    .inner
                    .in_flight
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| closed(url))?;
                let _host_slot = self.host_permit(&current).await?;
                let timeout = self.inner.opts.timeout;
                tokio::time::timeout(timeout, self.exchange(&current, cond, want))
                    .await
                    .map_err(|_| FetchError::Timeout {
                        url: current.to_string(),
                        after: timeout,
                    })??
            };
            match hop {
                Hop::Done(body) => return Ok(body),
                Hop::Redirect(next) => {
                    redirects += 1;
                    if redirects > self.inner.opts.max_redirects {
                        return Err(FetchError::TooManyRedirects {
                            url: url.to_string(),
                            max: self.inner.opts.max_redirects,
                        });
                    }
                    check_scheme(&next)?;
                    tracing::debug!(from = %current, to = %next, "following redirect");
                    current = next;
                }
            }
        }
    }

    /// Refuses a URL whose host is an address literal in `[http].deny_networks` (host names are
    /// checked by the resolver, on the addresses they resolve to).
    fn check_address(&self, url: &Url) -> Result<(), FetchError> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
            _ => return Ok(()),
        };
        match self.inner.opts.deny.denies(ip) {
            Some(network) => Err(FetchError::Denied {
                url: url.to_string(),
                reason: deny::Denied {
                    host: url.host_str().unwrap_or_default().to_string(),
                    addr: ip,
                    network: network.to_string(),
                },
            }),
            None => Ok(()),
        }
    }

    /// Refuses `url` when its host's robots.txt disallows it for our user agent.
    async fn check_robots(&self, url: &Url) -> Result<(), FetchError> {
        let Some(origin) = robots::origin(url) else {
            return Ok(());
        };
        let rules = self
            .inner
            .robots
            .rules(&origin, || self.load_robots(url))
            .await?;
        if let Some(delay) = rules.crawl_delay() {
            self.raise_host_delay(url, delay);
        }
        if rules.allowed(url) {
            Ok(())
        } else {
            Err(FetchError::Disallowed {
                url: url.to_string(),
                robots: robots::robots_url(url)
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
            })
        }
    }

    /// Fetches and parses a host's robots.txt (RFC 9309: 4xx means no rules; 5xx or network
    /// failure means nothing may be fetched for now).
    async fn load_robots(&self, for_url: &Url) -> Result<robots::Rules, FetchError> {
        let Some(robots_url) = robots::robots_url(for_url) else {
            return Ok(robots::Rules::allow_all());
        };
        let unreachable = |reason: String| FetchError::RobotsUnreachable {
            url: for_url.to_string(),
            robots: robots_url.to_string(),
            reason,
        };
        // Boxed: fetching robots.txt is a (non-polite) fetch inside the polite one.
        match Box::pin(self.fetch_once(&robots_url, None, Want::Anything, false)).await {
            Ok(Some(body)) => Ok(robots::Rules::parse(
                &self.inner.opts.user_agent,
                &body.bytes,
            )),
            Ok(None) => Ok(robots::Rules::allow_all()),
            Err(FetchError::Status { status, .. }) if (400..500).contains(&status) => {
                Ok(robots::Rules::allow_all())
            }
            // An oversized file, or one behind broken redirects, is the site's mistake and
            // counts as no file (RFC 9309 2.3.1.2: give up after 5 redirects, treat as 4xx).
            Err(
                FetchError::TooLarge { .. }
                | FetchError::TooManyRedirects { .. }
                | FetchError::BadRedirect { .. }
                | FetchError::UnsupportedScheme { .. },
            ) => Ok(robots::Rules::allow_all()),
            // The host cannot be reached at all: say so plainly, the page would fail the same way.
            Err(
                e @ (FetchError::Connect { .. }
                | FetchError::Timeout { .. }
                | FetchError::Denied { .. }),
            ) => Err(e),
            Err(e) => Err(unreachable(e.to_string())),
        }
    }

    fn host_key(url: &Url) -> String {
        match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => String::new(),
        }
    }

    /// Remembers a site's `Crawl-delay` when it is longer than `[http].min_delay`.
    fn raise_host_delay(&self, url: &Url, delay: Duration) {
        if delay <= self.inner.opts.min_delay {
            return;
        }
        let mut delays = self
            .inner
            .crawl_delay
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if delays.len() >= HOST_TABLE_PRUNE_AT {
            delays.clear();
        }
        delays.insert(Self::host_key(url), delay);
    }

    /// Time between two request starts to this host.
    fn host_delay(&self, key: &str) -> Duration {
        let crawl = self
            .inner
            .crawl_delay
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(key)
            .copied()
            .unwrap_or_default();
        crawl.max(self.inner.opts.min_delay)
    }

    async fn host_permit(&self, url: &Url) -> Result<OwnedSemaphorePermit, FetchError> {
        let key = Self::host_key(url);
        let semaphore = {
            // A poisoned lock only means another task panicked while holding it; the map
            // itself is still consistent.
            let mut hosts = self
                .inner
                .per_host
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if hosts.len() >= HOST_TABLE_PRUNE_AT {
                hosts.retain(|_, s| Arc::strong_count(s) > 1);
            }
            hosts
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.inner.opts.per_host)))
                .clone()
        };
        let permit = semaphore.acquire_owned().await.map_err(|_| closed(url))?;
        // Reserve this request's start time: the host's next free slot, then move the slot on
        // by min_delay. Reserving under the lock spaces concurrent requests correctly.
        let delay = self.host_delay(&key);
        let wait = {
            let mut next = self
                .inner
                .next_start
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            if next.len() >= HOST_TABLE_PRUNE_AT {
                next.retain(|_, at| *at > now);
            }
            let start = next
                .get(&key)
                .copied()
                .filter(|at| *at > now)
                .unwrap_or(now);
            next.insert(key, start + delay);
            start - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(permit)
    }

    /// One request/response exchange: send, then either report a redirect or read the body.
    async fn exchange(
        &self,
        url: &Url,
        cond: Option<&Conditional>,
        want: Want,
    ) -> Result<Hop, FetchError> {
        let mut request = self.inner.client.get(url.clone());
        if let Some(cond) = cond {
            if let Some(etag) = &cond.etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(last_modified) = &cond.last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, last_modified);
            }
        }
        let mut response = request.send().await.map_err(|e| classify(url, &e))?;
        let status = response.status();
        let headers = response.headers();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Hop::Done(None));
        }
        if status.is_redirection() {
            let location = headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            return match location.as_deref().and_then(|l| url.join(l).ok()) {
                Some(next) => Ok(Hop::Redirect(next)),
                None => Err(FetchError::BadRedirect {
                    url: url.to_string(),
                    status: status.as_u16(),
                    location,
                }),
            };
        }
        if status.is_client_error() || status.is_server_error() || !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                retry_after: headers
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after),
            });
        }
        let header_text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header_text(header::ETAG);
        let last_modified = header_text(header::LAST_MODIFIED);
        let content_type = header_text(header::CONTENT_TYPE);
        if want == Want::Html
            && let Some(ct) = content_type.as_deref()
            && !is_web_page(ct)
        {
            return Err(FetchError::NotHtml {
                url: url.to_string(),
                content_type: ct.to_string(),
            });
        }
        let final_url = response.url().clone();
        let limit = self.inner.opts.max_body;
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            limit,
        };
        // A declared length over the cap fails before any byte is read. reqwest hides the
        // header when it decompresses, so compressed bodies are checked while streaming.
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(url, &e))? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        crate::metrics::add_bytes(body.len());
        Ok(Hop::Done(Some(Body {
            url: final_url,
            status: status.as_u16(),
            etag,
            last_modified,
            content_type,
            bytes: body,
        })))
    }
}

/// Whether a Content-Type names something the article extractor can read.
pub fn is_web_page(content_type: &str) -> bool {
    match content_type.parse::<mime::Mime>() {
        Ok(m) => {
            m.type_() == mime::TEXT
                || (m.type_() == mime::APPLICATION && m.subtype().as_str() == "xhtml")
                || m.essence_str() == "application/xhtml+xml"
        }
        // An unparsable header says nothing reliable; let the extractor try.
        Err(_) => true,
    }
}

fn check_scheme(url: &Url) -> Result<(), FetchError> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(FetchError::UnsupportedScheme {
            url: url.to_string(),
            scheme: other.to_string(),
        }),
    }
}

/// The semaphores are never closed; this only guards the API's `Result`.
fn closed(url: &Url) -> FetchError {
    FetchError::Network {
        url: url.to_string(),
        reason: "the fetcher is shutting down".into(),
    }
}

fn classify(url: &Url, e: &reqwest::Error) -> FetchError {
    let url = url.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(denied) = s.downcast_ref::<deny::Denied>() {
            return FetchError::Denied {
                url,
                reason: denied.clone(),
            };
        }
        source = s.source();
    }
    let reason = error_chain(e);
    if e.is_connect() {
        FetchError::Connect { url, reason }
    } else {
        FetchError::Network { url, reason }
    }
}

/// reqwest's own message is "error sending request"; the useful part (DNS failure, refused
/// connection, bad certificate) is further down the source chain.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper::{Request, Response};
    use std::convert::Infallible;
    use std::future::Future;
    use std::net::SocketAddr;
    use std::time::Instant;

    type Reply = Response<Full<Bytes>>;

    /// Serves `handler` over real HTTP/1.1 on an ephemeral loopback port until the test ends.
    async fn serve<F, Fut>(handler: F) -> SocketAddr
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        serve_on("127.0.0.1:0", handler).await
    }

    /// Like [`serve`], on another loopback address (Linux answers on all of 127.0.0.0/8).
    async fn serve_on<F, Fut>(bind: &str, handler: F) -> SocketAddr
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler(req).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        addr
    }

    fn reply(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Full::new(body.into())).unwrap()
    }

    fn fetcher() -> Fetcher {
        Fetcher::new(HttpOptions {
            user_agent: "marsad-test/1.0 (+https://example.org)".into(),
            timeout: Duration::from_secs(5),
            max_body: 64 * 1024,
            concurrency: 4,
            per_host: 2,
            max_redirects: 3,
            min_delay: Duration::ZERO,
            // The generic handlers below answer every path; robots.txt has its own tests.
            robots: false,
            deny: deny::DenyList::default_list(),
        })
        .unwrap()
    }

    fn url(addr: SocketAddr, path: &str) -> Url {
        Url::parse(&format!("http://{addr}{path}")).unwrap()
    }

    fn page(outcome: FetchOutcome) -> Page {
        match outcome {
            FetchOutcome::Fetched(page) => page,
            FetchOutcome::NotModified => panic!("expected a page, got NotModified"),
        }
    }

    #[tokio::test]
    async fn conditional_get_yields_not_modified_on_304() {
        let addr = serve(|req: Request<Incoming>| async move {
            let etag = "\"v1\"";
            let matches = req
                .headers()
                .get("if-none-match")
                .is_some_and(|v| v == etag);
            if matches {
                reply(304, &[("etag", etag)], "")
            } else {
                reply(
                    200,
                    &[
                        ("etag", etag),
                        ("last-modified", "Sat, 28 Oct 2023 14:05:00 GMT"),
                    ],
                    "<rss/>",
                )
            }
        })
        .await;
        let f = fetcher();
        let first = page(f.get(&url(addr, "/feed"), None).await.unwrap());
        assert_eq!(first.etag.as_deref(), Some("\"v1\""));
        assert_eq!(
            first.last_modified.as_deref(),
            Some("Sat, 28 Oct 2023 14:05:00 GMT")
        );
        let cond = Conditional {
            etag: first.etag.clone(),
            last_modified: first.last_modified.clone(),
        };
        let second = f.get(&url(addr, "/feed"), Some(&cond)).await.unwrap();
        assert!(matches!(second, FetchOutcome::NotModified));
    }

    #[tokio::test]
    async fn gzip_body_is_decompressed() {
        use std::io::Write;
        let html = "<html><body><p>مرحبا بالعالم — hello</p></body></html>".repeat(20);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(html.as_bytes()).unwrap();
        let compressed = Bytes::from(gz.finish().unwrap());
        let addr = serve(move |req: Request<Incoming>| {
            let compressed = compressed.clone();
            async move {
                let accepts = req
                    .headers()
                    .get("accept-encoding")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("gzip"));
                assert!(accepts, "client did not offer gzip");
                reply(
                    200,
                    &[
                        ("content-encoding", "gzip"),
                        ("content-type", "text/html; charset=utf-8"),
                    ],
                    compressed,
                )
            }
        })
        .await;
        let page = page(fetcher().get(&url(addr, "/"), None).await.unwrap());
        assert_eq!(page.text, html);
        assert_eq!(page.bytes, html.len());
        assert_eq!(page.encoding, "UTF-8");
    }

    #[tokio::test]
    async fn body_over_the_cap_is_too_large_even_without_content_length() {
        use http_body_util::StreamBody;
        use hyper::body::Frame;
        // A chunked body that would never end: the fetcher must stop at the cap.
        let addr = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(|_req| async {
                            let chunk = Bytes::from(vec![b'a'; 8192]);
                            let frames = futures_util::stream::repeat_with(move || {
                                Ok::<_, Infallible>(Frame::data(chunk.clone()))
                            });
                            Ok::<_, Infallible>(Response::new(StreamBody::new(frames)))
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            addr
        };
        let started = Instant::now();
        let err = fetcher().get(&url(addr, "/big"), None).await.unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit: 65536, .. }),
            "{err}"
        );
        assert!(!err.is_transient());
        assert!(err.to_string().contains("[http].max_body"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn declared_length_over_the_cap_is_too_large() {
        let addr =
            serve(|_req: Request<Incoming>| async { reply(200, &[], vec![b'x'; 70_000]) }).await;
        let err = fetcher().get(&url(addr, "/big"), None).await.unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn slow_server_times_out_after_the_timeout() {
        let addr = serve(|_req: Request<Incoming>| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            reply(200, &[], "late")
        })
        .await;
        let f = Fetcher::new(HttpOptions {
            timeout: Duration::from_millis(400),
            min_delay: Duration::ZERO,
            robots: false,
            ..HttpOptions::default()
        })
        .unwrap();
        let started = Instant::now();
        let err = f.get(&url(addr, "/slow"), None).await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
        assert!(err.is_transient());
        assert!(
            elapsed >= Duration::from_millis(390) && elapsed < Duration::from_millis(1500),
            "took {elapsed:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("GET http://{addr}/slow")),
            "{message}"
        );
        assert!(
            message.contains("400ms") && message.contains("[http].timeout"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn redirect_loop_is_too_many_redirects() {
        let addr = serve(|req: Request<Incoming>| async move {
            let next = if req.uri().path() == "/a" { "/b" } else { "/a" };
            reply(302, &[("location", next)], "")
        })
        .await;
        let err = fetcher().get(&url(addr, "/a"), None).await.unwrap_err();
        assert!(
            matches!(err, FetchError::TooManyRedirects { max: 3, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn redirects_are_followed_and_the_final_url_reported() {
        let addr = serve(|req: Request<Incoming>| async move {
            match req.uri().path() {
                "/old" => reply(301, &[("location", "/new?x=1")], ""),
                _ => reply(200, &[("content-type", "text/plain")], "here"),
            }
        })
        .await;
        let page = page(fetcher().get(&url(addr, "/old"), None).await.unwrap());
        assert_eq!(page.url, url(addr, "/new?x=1"));
        assert_eq!(page.text, "here");
    }

    #[tokio::test]
    async fn redirect_to_another_scheme_is_refused() {
        let addr = serve(|_req: Request<Incoming>| async {
            reply(302, &[("location", "file:///etc/passwd")], "")
        })
        .await;
        let err = fetcher().get(&url(addr, "/"), None).await.unwrap_err();
        assert!(
            matches!(err, FetchError::UnsupportedScheme { ref scheme, .. } if scheme == "file"),
            "{err}"
        );
    }

    fn denying(entries: &[&str]) -> Fetcher {
        Fetcher::new(HttpOptions {
            min_delay: Duration::ZERO,
            robots: false,
            deny: deny::DenyList::parse(entries.iter().copied()).unwrap(),
            ..HttpOptions::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn redirect_to_a_denied_address_is_refused() {
        let target = serve_on("127.0.0.2:0", |_req: Request<Incoming>| async {
            reply(200, &[], "inside")
        })
        .await;
        let location = format!("http://{target}/admin");
        let addr = serve(move |_req: Request<Incoming>| {
            let location = location.clone();
            async move { reply(302, &[("location", location.as_str())], "") }
        })
        .await;
        let f = denying(&["127.0.0.2/32"]);
        // The redirecting host itself (127.0.0.1) is allowed; the hop to 127.0.0.2 is not.
        let err = f.get(&url(addr, "/"), None).await.unwrap_err();
        assert!(
            matches!(&err, FetchError::Denied { url, reason } if url.contains("127.0.0.2") && reason.network == "127.0.0.2/32"),
            "{err}"
        );
        assert!(!err.is_transient());
        assert!(
            err.is_skip(),
            "an article page there is skipped, not retried"
        );
        assert!(err.to_string().contains("[http].deny_networks"), "{err}");
        // The denied address does answer when nothing denies it.
        let ok = page(denying(&[]).get(&url(addr, "/"), None).await.unwrap());
        assert_eq!(ok.text, "inside");
    }

    #[tokio::test]
    async fn a_host_name_resolving_to_a_denied_address_is_refused() {
        let addr = serve(|_req: Request<Incoming>| async { reply(200, &[], "local") }).await;
        let by_name = Url::parse(&format!("http://localhost:{}/", addr.port())).unwrap();
        let err = denying(&["loopback"])
            .get(&by_name, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, FetchError::Denied { reason, .. } if reason.host == "localhost" && reason.network.starts_with("loopback")),
            "{err}"
        );
        // The message says which address the name resolved to.
        assert!(
            err.to_string()
                .contains("localhost is 127.0.0.1, in loopback (127.0.0.0/8)")
                || err
                    .to_string()
                    .contains("localhost is ::1, in loopback (::1/128)"),
            "{err}"
        );
        // Denying another block leaves the name usable.
        let ok = page(denying(&["10.0.0.0/8"]).get(&by_name, None).await.unwrap());
        assert_eq!(ok.text, "local");
    }

    #[tokio::test]
    async fn windows_1256_declared_only_in_header_decodes_to_arabic() {
        let arabic = "الجيش الإسرائيلي يقصف جنوب لبنان";
        let (bytes, _, _) = encoding_rs::WINDOWS_1256.encode(arabic);
        let mut body = b"<html><head><title>x</title></head><body><h1>".to_vec();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"</h1></body></html>");
        let body = Bytes::from(body);
        let addr = serve(move |_req: Request<Incoming>| {
            let body = body.clone();
            async move {
                reply(
                    200,
                    &[("content-type", "text/html; charset=windows-1256")],
                    body,
                )
            }
        })
        .await;
        let page = page(fetcher().get(&url(addr, "/ar"), None).await.unwrap());
        assert!(page.text.contains(arabic), "{}", page.text);
        assert_eq!(page.encoding, "windows-1256");
        assert_eq!(
            page.content_type.as_deref(),
            Some("text/html; charset=windows-1256")
        );
    }

    #[test]
    fn a_header_charset_contradicted_by_the_body_is_ignored() {
        let arabic = "الجيش الإسرائيلي يقصف جنوب لبنان";
        let body = |bytes: &[u8]| Body {
            url: Url::parse("http://example.org/a").unwrap(),
            status: 200,
            etag: None,
            last_modified: None,
            content_type: None,
            bytes: bytes.to_vec(),
        };
        // UTF-8 bytes under a legacy label, and windows-1256 bytes under a UTF-8 label.
        let (cp1256, _, _) = encoding_rs::WINDOWS_1256.encode(arabic);
        for (label, bytes) in [
            ("ISO-8859-1", arabic.as_bytes()),
            ("windows-1256", arabic.as_bytes()),
            ("utf-8", &cp1256[..]),
        ] {
            let mut b = body(bytes);
            b.content_type = Some(format!("text/html; charset={label}"));
            let page = b.into_page();
            assert_eq!(page.text, arabic, "declared {label}");
        }
        // A right label stays, and so does UTF-8 with a few broken bytes.
        let mut right = body(&cp1256);
        right.content_type = Some("text/html; charset=windows-1256".into());
        assert_eq!(right.into_page().encoding, "windows-1256");
        let mut broken = arabic.as_bytes().to_vec();
        broken.extend_from_slice(b" \xff ");
        broken.extend_from_slice(arabic.as_bytes());
        let mut b = body(&broken);
        b.content_type = Some("text/html; charset=utf-8".into());
        let page = b.into_page();
        assert_eq!(page.encoding, "UTF-8");
        assert!(page.text.starts_with(arabic) && page.text.contains('\u{fffd}'));
    }

    #[tokio::test]
    async fn user_agent_is_sent() {
        let addr = serve(|req: Request<Incoming>| async move {
            let ua = req
                .headers()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            reply(200, &[], ua)
        })
        .await;
        let page = page(fetcher().get(&url(addr, "/ua"), None).await.unwrap());
        assert_eq!(page.text, "marsad-test/1.0 (+https://example.org)");
    }

    #[tokio::test]
    async fn error_statuses_are_classified() {
        let addr = serve(|req: Request<Incoming>| async move {
            match req.uri().path() {
                "/gone" => reply(404, &[], "no"),
                _ => reply(503, &[("retry-after", "120")], "busy"),
            }
        })
        .await;
        let f = fetcher();
        let gone = f.get(&url(addr, "/gone"), None).await.unwrap_err();
        assert!(matches!(gone, FetchError::Status { status: 404, .. }));
        assert!(!gone.is_transient());
        assert!(gone.to_string().contains("404 Not Found"), "{gone}");
        let busy = f.get(&url(addr, "/busy"), None).await.unwrap_err();
        assert!(busy.is_transient());
        assert!(matches!(
            busy,
            FetchError::Status { status: 503, retry_after: Some(d), .. } if d == Duration::from_secs(120)
        ));
    }

    #[tokio::test]
    async fn refused_connection_is_a_transient_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = fetcher().get(&url(addr, "/"), None).await.unwrap_err();
        assert!(matches!(err, FetchError::Connect { .. }), "{err}");
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn non_http_scheme_is_refused_up_front() {
        let err = fetcher()
            .get(&Url::parse("ftp://example.org/feed").unwrap(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::UnsupportedScheme { .. }));
    }

    #[tokio::test]
    async fn per_host_limit_bounds_requests_in_flight() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (n, p) = (now.clone(), peak.clone());
        let addr = serve(move |_req: Request<Incoming>| {
            let (now, peak) = (n.clone(), p.clone());
            async move {
                let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                reply(200, &[], "ok")
            }
        })
        .await;
        let f = fetcher();
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let f = f.clone();
                let u = url(addr, &format!("/{i}"));
                tokio::spawn(async move { f.get(&u, None).await.map(|_| ()) })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2, "per_host = 2");
    }

    #[test]
    fn zero_limits_are_rejected() {
        let err = Fetcher::new(HttpOptions {
            per_host: 0,
            ..HttpOptions::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("[http].per_host"));
    }

    fn polite_fetcher(min_delay: Duration) -> Fetcher {
        Fetcher::new(HttpOptions {
            user_agent: "marsad-test/1.0 (+https://example.org)".into(),
            timeout: Duration::from_secs(3),
            max_body: 64 * 1024,
            concurrency: 4,
            per_host: 2,
            max_redirects: 3,
            min_delay,
            robots: true,
            deny: deny::DenyList::default_list(),
        })
        .unwrap()
    }

    /// A server that logs every path it is asked for.
    async fn logging_serve<F>(answer: F) -> (SocketAddr, Arc<Mutex<Vec<(String, Instant)>>>)
    where
        F: Fn(&str, usize) -> Reply + Clone + Send + Sync + 'static,
    {
        let log = Arc::new(Mutex::new(Vec::new()));
        let task_log = log.clone();
        let addr = serve(move |req: Request<Incoming>| {
            let (log, answer) = (task_log.clone(), answer.clone());
            async move {
                let path = req.uri().path().to_string();
                let nth = {
                    let mut log = log.lock().unwrap();
                    log.push((path.clone(), Instant::now()));
                    log.iter().filter(|(p, _)| *p == path).count()
                };
                answer(&path, nth)
            }
        })
        .await;
        (addr, log)
    }

    fn paths(log: &Mutex<Vec<(String, Instant)>>) -> Vec<String> {
        log.lock().unwrap().iter().map(|(p, _)| p.clone()).collect()
    }

    #[tokio::test]
    async fn robots_txt_disallow_is_honoured_and_read_once_per_host() {
        let (addr, log) = logging_serve(|path, _| match path {
            "/robots.txt" => reply(
                200,
                &[("content-type", "text/plain")],
                "User-agent: *\nDisallow: /private/\n\nUser-agent: otherbot\nDisallow: /\n",
            ),
            _ => reply(200, &[("content-type", "text/html")], "<p>ok</p>"),
        })
        .await;
        let f = polite_fetcher(Duration::ZERO);
        page(f.get(&url(addr, "/news/1"), None).await.unwrap());
        let err = f.get(&url(addr, "/private/2"), None).await.unwrap_err();
        assert!(matches!(err, FetchError::Disallowed { .. }), "{err}");
        assert!(err.is_skip() && !err.is_transient());
        let message = err.to_string();
        assert!(
            message.contains(&format!("GET http://{addr}/private/2"))
                && message.contains(&format!("http://{addr}/robots.txt")),
            "{message}"
        );
        page(f.get(&url(addr, "/news/3"), None).await.unwrap());
        assert_eq!(paths(&log), ["/robots.txt", "/news/1", "/news/3"]);
    }

    #[tokio::test]
    async fn missing_robots_txt_allows_and_a_failing_one_stops_the_host() {
        let (addr, _log) = logging_serve(|path, _| match path {
            "/robots.txt" => reply(404, &[], "no"),
            _ => reply(200, &[], "ok"),
        })
        .await;
        let f = polite_fetcher(Duration::ZERO);
        page(f.get(&url(addr, "/a"), None).await.unwrap());

        let (addr, log) = logging_serve(|path, nth| match path {
            // Down at first, fixed later: the failure is not cached.
            "/robots.txt" if nth == 1 => reply(503, &[], "down"),
            "/robots.txt" => reply(200, &[], "User-agent: *\nAllow: /\n"),
            _ => reply(200, &[], "ok"),
        })
        .await;
        let err = f.get(&url(addr, "/a"), None).await.unwrap_err();
        assert!(matches!(err, FetchError::RobotsUnreachable { .. }), "{err}");
        assert!(err.is_transient(), "retried on a later refresh");
        page(f.get(&url(addr, "/a"), None).await.unwrap());
        assert_eq!(paths(&log), ["/robots.txt", "/robots.txt", "/a"]);
    }

    #[tokio::test]
    async fn requests_to_one_host_start_min_delay_apart() {
        let (addr, log) = logging_serve(|_, _| reply(200, &[], "ok")).await;
        let f = Fetcher::new(HttpOptions {
            min_delay: Duration::from_millis(150),
            robots: false,
            ..HttpOptions::default()
        })
        .unwrap();
        // Concurrent requests too: the delay is reserved per host, not per task. Measured on
        // the client (delays under load only lengthen it): 4 starts need 3 gaps.
        let started = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let f = f.clone();
                let u = url(addr, &format!("/{i}"));
                tokio::spawn(async move { f.get(&u, None).await.map(|_| ()) })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let elapsed = started.elapsed();
        assert_eq!(log.lock().unwrap().len(), 4);
        assert!(
            elapsed >= Duration::from_millis(450),
            "4 requests in {elapsed:?}"
        );
    }

    #[tokio::test]
    async fn short_retry_after_is_waited_out_and_retried_once() {
        let (addr, log) = logging_serve(|path, nth| match (path, nth) {
            ("/busy", 1) => reply(429, &[("retry-after", "1")], "slow down"),
            ("/busy", _) => reply(200, &[], "fine now"),
            ("/down", _) => reply(503, &[("retry-after", "1")], "down"),
            ("/later", _) => reply(503, &[("retry-after", "3600")], "down"),
            _ => reply(404, &[], ""),
        })
        .await;
        let f = polite_fetcher(Duration::ZERO);
        let started = Instant::now();
        let got = page(f.get(&url(addr, "/busy"), None).await.unwrap());
        assert_eq!(got.text, "fine now");
        assert!(started.elapsed() >= Duration::from_secs(1));

        // Still failing after the one retry: the error keeps the server's wish.
        let err = f.get(&url(addr, "/down"), None).await.unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));

        // Longer than the timeout: not waited for here, handed to the scheduler.
        let started = Instant::now();
        let err = f.get(&url(addr, "/later"), None).await.unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "waited for an hour-long Retry-After?"
        );
        let p = paths(&log);
        assert_eq!(p.iter().filter(|p| *p == "/busy").count(), 2);
        assert_eq!(p.iter().filter(|p| *p == "/down").count(), 2);
        assert_eq!(p.iter().filter(|p| *p == "/later").count(), 1);
    }

    #[tokio::test]
    async fn article_pages_that_are_not_web_pages_are_refused() {
        let addr = serve(|req: Request<Incoming>| async move {
            match req.uri().path() {
                "/report.pdf" => reply(
                    200,
                    &[("content-type", "application/pdf")],
                    vec![b'%'; 60_000],
                ),
                "/photo" => reply(200, &[("content-type", "image/jpeg")], "jpeg"),
                "/story" => reply(
                    200,
                    &[("content-type", "application/xhtml+xml; charset=utf-8")],
                    "<p>x</p>",
                ),
                _ => reply(200, &[], "<p>no content type</p>"),
            }
        })
        .await;
        let f = fetcher();
        for path in ["/report.pdf", "/photo"] {
            let err = f.get_html(&url(addr, path)).await.unwrap_err();
            assert!(matches!(err, FetchError::NotHtml { .. }), "{err}");
            assert!(err.is_skip());
            assert!(err.to_string().contains("is not a web page"), "{err}");
        }
        assert_eq!(
            f.get_html(&url(addr, "/story")).await.unwrap().text,
            "<p>x</p>"
        );
        assert!(f.get_html(&url(addr, "/untyped")).await.is_ok());
        // Plain `get` (feeds, sitemaps) takes anything.
        assert!(f.get(&url(addr, "/photo"), None).await.is_ok());
    }

    #[tokio::test]
    async fn crawl_delay_spaces_requests_more_than_min_delay() {
        let (addr, log) = logging_serve(|path, _| match path {
            "/robots.txt" => reply(200, &[], "User-agent: *\nCrawl-delay: 0.3\n"),
            _ => reply(200, &[], "ok"),
        })
        .await;
        let f = polite_fetcher(Duration::ZERO);
        // robots.txt first, so the delay is known before the pages are asked for. The clock
        // starts before /0 so the bound holds however long any request takes on a busy machine.
        let started = Instant::now();
        page(f.get(&url(addr, "/0"), None).await.unwrap());
        for i in 1..3 {
            page(f.get(&url(addr, &format!("/{i}")), None).await.unwrap());
        }
        // Two more starts after /0, each at least 0.3 s after the one before.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(590), "took {elapsed:?}");
        assert_eq!(
            log.lock().unwrap().len(),
            4,
            "robots.txt once and three pages"
        );
    }
}
