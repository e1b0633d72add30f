//! The one HTTP client of marsad.
//!
//! Every request goes through [`Fetcher::get`], so politeness and safety are enforced in one
//! place: an overall in-flight limit and a per-host limit (semaphores with named limits, never
//! "spawn and hope"), a timeout, a body cap checked while the body streams in (a hostile or
//! broken server cannot make us buffer gigabytes), conditional GET so unchanged feeds cost a
//! 304, and redirects followed by hand so each hop is checked (http/https only, counted, and
//! limited per host like any other request).

pub mod charset;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
            | FetchError::Network { .. } => true,
            FetchError::Status { status, .. } => {
                matches!(status, 408 | 425 | 429) || (500..600).contains(status)
            }
            FetchError::Options(_)
            | FetchError::Client(_)
            | FetchError::UnsupportedScheme { .. }
            | FetchError::TooLarge { .. }
            | FetchError::TooManyRedirects { .. }
            | FetchError::BadRedirect { .. } => false,
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
            | FetchError::Network { url, .. } => Some(url),
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

/// Where a redirect hop or the final answer leaves the request.
enum Hop {
    Done(FetchOutcome),
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
            .connect_timeout(opts.timeout)
            .build()
            .map_err(|e| FetchError::Client(error_chain(&e)))?;
        Ok(Fetcher {
            inner: Arc::new(Inner {
                client,
                in_flight: Arc::new(Semaphore::new(opts.concurrency)),
                per_host: Mutex::new(HashMap::new()),
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
        check_scheme(url)?;
        let _slot = self
            .inner
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| closed(url))?;
        let mut current = url.clone();
        let mut redirects = 0;
        loop {
            let _host_slot = self.host_permit(&current).await?;
            let timeout = self.inner.opts.timeout;
            let hop = tokio::time::timeout(timeout, self.exchange(&current, cond))
                .await
                .map_err(|_| FetchError::Timeout {
                    url: current.to_string(),
                    after: timeout,
                })??;
            match hop {
                Hop::Done(outcome) => return Ok(outcome),
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

    async fn host_permit(&self, url: &Url) -> Result<OwnedSemaphorePermit, FetchError> {
        let key = match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => String::new(),
        };
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
                .entry(key)
                .or_insert_with(|| Arc::new(Semaphore::new(self.inner.opts.per_host)))
                .clone()
        };
        semaphore.acquire_owned().await.map_err(|_| closed(url))
    }

    /// One request/response exchange: send, then either report a redirect or read the body.
    async fn exchange(&self, url: &Url, cond: Option<&Conditional>) -> Result<Hop, FetchError> {
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
            return Ok(Hop::Done(FetchOutcome::NotModified));
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
        let tld = final_url
            .host_str()
            .and_then(|h| h.rsplit('.').next())
            .filter(|t| t.chars().all(|c| c.is_ascii_alphabetic()));
        crate::metrics::add_bytes(body.len());
        let (text, encoding) = charset::decode_hinted(&body, content_type.as_deref(), tld);
        Ok(Hop::Done(FetchOutcome::Fetched(Page {
            url: final_url,
            status: status.as_u16(),
            etag,
            last_modified,
            content_type,
            text,
            encoding: encoding.name(),
            bytes: body.len(),
        })))
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
}
