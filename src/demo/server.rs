//! A small static HTTP/1.1 server on loopback: it serves the bundled demo site for `marsad demo`
//! and the fixture sites of the integration tests, so both exercise the real HTTP client.
//!
//! It honours `If-None-Match` (answering 304), can delay a route (to test timeouts) and keeps a
//! log of every request so tests can count fetches and conditional GETs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// (how many requests, status, headers) for [`Route::failing_first`].
pub type FailFirst = (usize, u16, Vec<(String, String)>);

/// One thing the server can answer at a path.
#[derive(Debug, Clone)]
pub struct Route {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
    /// Sent as `ETag`; a request with a matching `If-None-Match` gets 304.
    pub etag: Option<String>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Extra headers, e.g. `Location` for redirects.
    pub headers: Vec<(String, String)>,
    /// Answer the first N requests with this status and these headers instead (e.g. a 429 with
    /// `Retry-After`), the rest normally.
    pub fail_first: Option<FailFirst>,
}

impl Route {
    pub fn new(content_type: &str, body: impl Into<Bytes>) -> Route {
        let body = body.into();
        // A content-derived ETag, so an unchanged file is "not modified" across server restarts.
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(&body));
        let etag = format!("\"{}\"", &digest[..16]);
        Route {
            status: 200,
            content_type: content_type.to_string(),
            body,
            etag: Some(etag),
            delay: None,
            headers: Vec::new(),
            fail_first: None,
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: &str) -> Route {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Answers the first `times` requests with `status` and `headers`, then normally.
    pub fn failing_first(mut self, times: usize, status: u16, headers: &[(&str, &str)]) -> Route {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.fail_first = Some((times, status, headers));
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> Route {
        self.delay = Some(delay);
        self
    }

    pub fn with_status(mut self, status: u16) -> Route {
        self.status = status;
        self
    }

    pub fn without_etag(mut self) -> Route {
        self.etag = None;
        self
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub status: u16,
    pub user_agent: Option<String>,
    pub if_none_match: Option<String>,
    /// When the request arrived (before any configured delay).
    pub at: std::time::SystemTime,
}

#[derive(Debug, Default)]
struct State {
    routes: HashMap<String, Route>,
    log: Vec<Logged>,
    /// Requests logged so far per path: what `log` says, without scanning it on every request
    /// (a scan made a long benchmark's later runs wait for the server).
    logged: HashMap<String, usize>,
}

/// A running server; dropping it (or calling `stop`) shuts it down.
#[derive(Debug)]
pub struct StaticServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

impl StaticServer {
    /// Binds 127.0.0.1 on an ephemeral port and serves `routes` (keys are decoded paths like `/post/1/سلام`).
    pub async fn start(routes: HashMap<String, Route>) -> std::io::Result<StaticServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            routes,
            ..State::default()
        }));
        let stop = CancellationToken::new();
        let (task_state, task_stop) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = task_stop.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { continue };
                let state = task_state.clone();
                let stop = task_stop.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(state.clone(), req));
                    let conn =
                        http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = conn => {}
                    }
                });
            }
        });
        Ok(StaticServer { addr, state, stop })
    }

    /// `http://127.0.0.1:PORT` without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds or replaces a route while running.
    pub fn set_route(&self, path: &str, route: Route) {
        if let Ok(mut state) = self.state.lock() {
            state.routes.insert(path.to_string(), route);
        }
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().map(|s| s.log.clone()).unwrap_or_default()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn answer(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let raw_path = req.uri().path().to_string();
    let path = percent_decode(&raw_path);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let user_agent = header("user-agent");
    let if_none_match = header("if-none-match");
    let at = std::time::SystemTime::now();
    let (route, earlier) = state
        .lock()
        .ok()
        .map(|s| {
            let earlier = s.logged.get(&path).copied().unwrap_or(0);
            (s.routes.get(&path).cloned(), earlier)
        })
        .unwrap_or((None, 0));
    // A route failing its first requests answers them with the failure instead.
    let route = route.map(|route| match &route.fail_first {
        Some((times, status, headers)) if earlier < *times => Route {
            status: *status,
            etag: None,
            headers: headers.clone(),
            body: Bytes::from_static(b"try again later"),
            content_type: "text/plain".into(),
            fail_first: None,
            ..route.clone()
        },
        _ => route,
    });

    let response = match &route {
        None => plain(StatusCode::NOT_FOUND, "not found"),
        Some(route) => {
            if let Some(delay) = route.delay {
                tokio::time::sleep(delay).await;
            }
            let not_modified = route.status == 200
                && route.etag.is_some()
                && if_none_match.is_some()
                && if_none_match == route.etag;
            let mut builder = Response::builder();
            if let Some(etag) = &route.etag {
                builder = builder.header("etag", etag);
            }
            for (k, v) in &route.headers {
                builder = builder.header(k, v);
            }
            if not_modified {
                builder
                    .status(StatusCode::NOT_MODIFIED)
                    .body(Full::new(Bytes::new()))
                    .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "bad route"))
            } else {
                builder
                    .status(StatusCode::from_u16(route.status).unwrap_or(StatusCode::OK))
                    .header("content-type", &route.content_type)
                    .body(Full::new(route.body.clone()))
                    .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "bad route"))
            }
        }
    };
    if let Ok(mut s) = state.lock() {
        *s.logged.entry(path.clone()).or_default() += 1;
        s.log.push(Logged {
            path,
            status: response.status().as_u16(),
            user_agent,
            if_none_match,
            at,
        });
    }
    Ok(response)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Decodes %XX escapes (Arabic paths arrive percent-encoded).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
