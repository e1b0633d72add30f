//! Fetching politely, with the real binary against a loopback site: robots.txt, pages that are
//! not web pages, and failing sources that back off (shown by `marsad status`).

mod common;

use chrono::{DateTime, Utc};
use common::*;
use marsad::demo::Route;

fn status_of(lines: &[serde_json::Value], id: &str) -> serde_json::Value {
    lines
        .iter()
        .find(|l| l["kind"] == "source" && l["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no status line for {id}: {lines:?}"))
}

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

const POST_4103: &str = "/post/4103/أسعار-الكيروسين-ترتفع";

#[tokio::test]
async fn robots_disallowed_article_is_skipped_with_its_reason_recorded() {
    let env = Env::demo(OUTBOX_MAIL).await;
    env.server.set_route(
        "/robots.txt",
        Route::new(
            "text/plain",
            "User-agent: *\nDisallow: /post/4103/\n\nUser-agent: marsad-test\nDisallow: /post/4103/\nDisallow: /atom.xml\n",
        ),
    );
    let fetch = env.marsad(&["fetch", "--source", "khanadeq-demo"]).await;
    assert!(
        fetch.status.success(),
        "{}\n{}",
        stdout(&fetch),
        stderr(&fetch)
    );
    let out = stdout(&fetch);
    assert!(out.contains("1 page(s) skipped"), "{out}");
    assert!(
        out.contains("disallowed by") && out.contains("/robots.txt"),
        "{out}"
    );
    assert!(
        env.hits(POST_4103).is_empty(),
        "a disallowed page was requested"
    );
    assert_eq!(env.hits("/robots.txt").len(), 1);

    assert_eq!(env.count("SELECT COUNT(*) FROM articles").await, 2);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM skipped_urls WHERE source = 'khanadeq-demo' AND reason LIKE 'disallowed by %/robots.txt'").await,
        1
    );
    // The source itself is healthy, and its status says what was skipped.
    let status = json_lines(&env.marsad(&["status", "--json"]).await);
    let st = status_of(&status, "khanadeq-demo");
    assert_eq!(st["consecutive_failures"], 0);
    assert!(
        st["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("skipped"),
        "{st}"
    );
}

#[tokio::test]
async fn robots_disallowed_source_fails_with_a_clear_message_and_is_not_fetched() {
    let env = Env::demo(OUTBOX_MAIL).await;
    env.server.set_route(
        "/robots.txt",
        Route::new(
            "text/plain",
            "User-agent: marsad-test\nDisallow: /atom.xml\n",
        ),
    );
    let fetch = env.marsad(&["fetch", "--source", "wire-en"]).await;
    assert_eq!(fetch.status.code(), Some(1));
    let out = stdout(&fetch);
    assert!(
        out.contains(&format!(
            "GET {}/atom.xml: disallowed by {}/robots.txt",
            env.server.base_url(),
            env.server.base_url()
        )),
        "{out}"
    );
    assert!(env.hits("/atom.xml").is_empty());
}

#[tokio::test]
async fn article_links_to_non_html_documents_are_skipped_before_download() {
    let env = Env::demo(OUTBOX_MAIL).await;
    let home = include_str!("../seeds/demo/site/index.html").replace(
        "</ul>",
        "<li><a href=\"/post/4104/annual-report.pdf\">التقرير السنوي</a></li></ul>",
    );
    env.server
        .set_route("/", Route::new("text/html; charset=utf-8", home));
    env.server.set_route(
        "/post/4104/annual-report.pdf",
        Route::new("application/pdf", vec![b'%'; 4096]),
    );
    let test = env.marsad(&["sources", "test", "khanadeq-demo"]).await;
    assert!(test.status.success(), "{}", stderr(&test));
    let out = stdout(&test);
    assert!(
        out.contains("annual-report.pdf: not a web page (content type application/pdf)"),
        "{out}"
    );
    assert!(
        out.contains("4 items listed, 3 articles extracted"),
        "{out}"
    );

    let fetch = env.marsad(&["fetch", "--source", "khanadeq-demo"]).await;
    assert!(fetch.status.success(), "{}", stdout(&fetch));
    assert_eq!(
        env.count("SELECT COUNT(*) FROM skipped_urls WHERE reason LIKE 'not a web page%'")
            .await,
        1
    );
    // Recorded, so the next refresh does not ask for it again.
    let before = env.hits("/post/4104/annual-report.pdf").len();
    env.server.set_route("/", Route::new("text/html; charset=utf-8", include_str!("../seeds/demo/site/index.html").replace(
        "</ul>",
        "<li><a href=\"/post/4104/annual-report.pdf\">التقرير السنوي</a></li><li><a href=\"/post/4105/x\">x</a></li></ul>",
    )));
    let again = env.marsad(&["fetch", "--source", "khanadeq-demo"]).await;
    assert!(again.status.success(), "{}", stdout(&again));
    assert_eq!(env.hits("/post/4104/annual-report.pdf").len(), before);
}

#[tokio::test]
async fn failing_source_backs_off_exponentially_and_status_shows_it() {
    let env = Env::demo(OUTBOX_MAIL).await;
    env.server.set_route(
        "/rss.xml",
        Route::new("text/plain", "broken").with_status(500),
    );
    // [schedule].poll defaults to every 30 minutes.
    let mut gaps = Vec::new();
    for n in 1..=3 {
        let fetch = env.marsad(&["fetch", "--source", "wire-ar"]).await;
        assert_eq!(fetch.status.code(), Some(1), "{}", stdout(&fetch));
        let status = json_lines(&env.marsad(&["status", "--json"]).await);
        let st = status_of(&status, "wire-ar");
        assert_eq!(st["consecutive_failures"], n);
        let gap = time(&st["next_run"]) - time(&st["last_attempt"]);
        gaps.push(gap.num_minutes());
    }
    // 30 min × 2^(n-1): at least 30, 60, 120 minutes (the first may round up to the schedule).
    assert!(gaps[0] >= 29 && gaps[0] <= 31, "{gaps:?}");
    assert!(gaps[1] >= 59 && gaps[1] <= 61, "{gaps:?}");
    assert!(gaps[2] >= 119 && gaps[2] <= 121, "{gaps:?}");
    let text = stdout(&env.marsad(&["status"]).await);
    assert!(text.contains("FAILING (3×)"), "{text}");

    // One success resets the count and the schedule.
    env.server.set_route(
        "/rss.xml",
        Route::new(
            "application/rss+xml",
            include_str!("../seeds/demo/site/rss.xml"),
        ),
    );
    let fetch = env.marsad(&["fetch", "--source", "wire-ar"]).await;
    assert!(fetch.status.success(), "{}", stdout(&fetch));
    let st = status_of(
        &json_lines(&env.marsad(&["status", "--json"]).await),
        "wire-ar",
    );
    assert_eq!(st["consecutive_failures"], 0);
    assert!((time(&st["next_run"]) - time(&st["last_attempt"])).num_minutes() <= 30);
}

#[tokio::test]
async fn long_retry_after_pushes_the_next_run_past_it() {
    let env = Env::demo(OUTBOX_MAIL).await;
    let busy = Route::new("text/plain", "busy")
        .with_status(503)
        .with_header("Retry-After", "7200");
    env.server.set_route("/rss.xml", busy);
    let fetch = env.marsad(&["fetch", "--source", "wire-ar"]).await;
    assert_eq!(fetch.status.code(), Some(1));
    assert!(stdout(&fetch).contains("503"), "{}", stdout(&fetch));
    // Not retried within the run: 2 hours is far beyond the 3 s timeout.
    assert_eq!(env.hits("/rss.xml").len(), 1);
    let st = status_of(
        &json_lines(&env.marsad(&["status", "--json"]).await),
        "wire-ar",
    );
    let gap = time(&st["next_run"]) - time(&st["last_attempt"]);
    assert!(
        gap.num_minutes() >= 119,
        "next run only {gap} after the 503"
    );
}

#[tokio::test]
async fn short_retry_after_is_waited_out_within_the_run() {
    let env = Env::demo(OUTBOX_MAIL).await;
    env.server.set_route(
        "/rss.xml",
        Route::new(
            "application/rss+xml",
            include_str!("../seeds/demo/site/rss.xml"),
        )
        .failing_first(1, 429, &[("Retry-After", "1")]),
    );
    let fetch = env.marsad(&["fetch", "--source", "wire-ar"]).await;
    assert!(fetch.status.success(), "{}", stdout(&fetch));
    let hits = env.hits("/rss.xml");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].status, 429);
    assert_eq!(hits[1].status, 200);
}
