//! Prometheus metrics: process-wide counters and a tiny HTTP endpoint serving them as text.
//!
//! Counters are plain atomics in statics (the process is one daemon; a registry crate would add
//! weight for half a dozen numbers). The endpoint is off unless `[metrics] listen` is set, and
//! answers every path with the exposition text so `curl host:9464/metrics` just works.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

static FETCHES_OK: AtomicU64 = AtomicU64::new(0);
static FETCHES_NOT_MODIFIED: AtomicU64 = AtomicU64::new(0);
static FETCH_ERRORS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static ARTICLES: AtomicU64 = AtomicU64::new(0);
static MATCHES: AtomicU64 = AtomicU64::new(0);
static DIGESTS_SENT: AtomicU64 = AtomicU64::new(0);
static DIGEST_FAILURES: AtomicU64 = AtomicU64::new(0);
static LAG_MS: AtomicI64 = AtomicI64::new(0);

/// Counts one finished refresh.
pub fn record_refresh(report: &crate::pipeline::RefreshReport) {
    match report.outcome {
        "ok" => FETCHES_OK.fetch_add(1, Ordering::Relaxed),
        "not_modified" => FETCHES_NOT_MODIFIED.fetch_add(1, Ordering::Relaxed),
        "error" => FETCH_ERRORS.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
    ARTICLES.fetch_add(report.new_articles as u64, Ordering::Relaxed);
    MATCHES.fetch_add(report.matches as u64, Ordering::Relaxed);
}

/// Counts bytes received (decoded bodies of feeds and pages).
pub fn add_bytes(n: usize) {
    BYTES.fetch_add(n as u64, Ordering::Relaxed);
}

pub fn record_digest(sent: bool) {
    if sent {
        DIGESTS_SENT.fetch_add(1, Ordering::Relaxed);
    } else {
        DIGEST_FAILURES.fetch_add(1, Ordering::Relaxed);
    }
}

/// How far behind schedule the most overdue source is (0 when none waits).
pub fn set_lag(lag: chrono::Duration) {
    LAG_MS.store(lag.num_milliseconds().max(0), Ordering::Relaxed);
}

/// The exposition text (format 0.0.4).
pub fn render() -> String {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in lines {
            out.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    metric(
        "marsad_fetches_total",
        "counter",
        "Source refreshes by outcome.",
        &[
            ("{outcome=\"ok\"}".into(), get(&FETCHES_OK).to_string()),
            (
                "{outcome=\"not_modified\"}".into(),
                get(&FETCHES_NOT_MODIFIED).to_string(),
            ),
            ("{outcome=\"error\"}".into(), get(&FETCH_ERRORS).to_string()),
        ],
    );
    metric(
        "marsad_fetch_errors_total",
        "counter",
        "Source refreshes that failed.",
        &[(String::new(), get(&FETCH_ERRORS).to_string())],
    );
    metric(
        "marsad_fetched_bytes_total",
        "counter",
        "Decoded bytes of feeds and pages received.",
        &[(String::new(), get(&BYTES).to_string())],
    );
    metric(
        "marsad_articles_stored_total",
        "counter",
        "New articles stored.",
        &[(String::new(), get(&ARTICLES).to_string())],
    );
    metric(
        "marsad_matches_total",
        "counter",
        "Watchlist matches stored.",
        &[(String::new(), get(&MATCHES).to_string())],
    );
    metric(
        "marsad_digests_sent_total",
        "counter",
        "Digests handed to the outbox or the SMTP server.",
        &[(String::new(), get(&DIGESTS_SENT).to_string())],
    );
    metric(
        "marsad_digest_failures_total",
        "counter",
        "Digest delivery attempts that failed (retried later).",
        &[(String::new(), get(&DIGEST_FAILURES).to_string())],
    );
    metric(
        "marsad_schedule_lag_seconds",
        "gauge",
        "How long the most overdue source has been waiting.",
        &[(
            String::new(),
            format!("{:.3}", LAG_MS.load(Ordering::Relaxed) as f64 / 1000.0),
        )],
    );
    out
}

/// Binds `[metrics] listen`; done before the daemon reports ready, so a taken port fails the start.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving Prometheus metrics");
    Ok(listener)
}

/// Serves the metrics until `cancel` fires.
pub async fn serve(listener: tokio::net::TcpListener, cancel: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    continue;
                }
            },
        };
        tokio::spawn(async move {
            let service = service_fn(|_req| async {
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                    .body(Full::new(Bytes::from(render())))
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
