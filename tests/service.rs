//! Running as a service: status, retention, search, metrics, logs, OPML — on the suite's backend.

mod common;

use common::*;

fn demo_with_broken(base: &str) -> String {
    format!(
        "{}\n[[source]]\nid = \"broken\"\nkind = \"feed\"\nurl = \"{base}/missing.xml\"\n",
        demo_sources(base)
    )
}

#[tokio::test]
async fn status_json_reports_source_health_and_digests() {
    let env = Env::new(marsad::demo::site_routes(), demo_with_broken, OUTBOX_MAIL).await;
    for _ in 0..2 {
        let out = env.marsad(&["fetch"]).await;
        assert_eq!(
            out.status.code(),
            Some(1),
            "the broken source fails the fetch"
        );
    }
    let sent = env.marsad(&["digest", "send", "daily"]).await;
    assert!(sent.status.success(), "{}", stderr(&sent));

    let out = env.marsad(&["status", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    let now = chrono::Utc::now();
    let sources: Vec<_> = lines.iter().filter(|l| l["kind"] == "source").collect();
    assert_eq!(sources.len(), 4);
    let mut day_total = 0;
    for s in &sources {
        let next = s["next_run"].as_str().expect("next_run");
        let next = chrono::DateTime::parse_from_rfc3339(next).expect("next_run is RFC 3339");
        assert!(next > now, "{} next run in the future: {next}", s["id"]);
        day_total += s["articles_last_day"].as_i64().expect("articles_last_day");
        if s["id"] == "broken" {
            assert_eq!(s["consecutive_failures"], 2);
            assert!(s["last_success"].is_null());
            let error = s["last_error"].as_str().expect("last_error");
            assert!(
                error.contains("/missing.xml") && error.contains("404"),
                "{error}"
            );
        } else {
            assert_eq!(s["consecutive_failures"], 0, "{s}");
            assert!(s["last_success"].is_string(), "{s}");
            assert!(s["last_error"].is_null(), "{s}");
        }
    }
    assert_eq!(day_total, 8, "the demo's 8 articles, fetched today");

    let digest = lines
        .iter()
        .find(|l| l["kind"] == "digest" && l["name"] == "daily")
        .expect("digest line");
    assert_eq!(digest["last"]["state"], "sent");
    assert!(digest["last"]["items"].as_i64().expect("items") > 0);
    assert!(digest["next"].is_string());

    let text = env.marsad(&["status"]).await;
    let text = stdout(&text);
    assert!(text.contains("FAILING (2×)"), "{text}");
}

fn item(n: usize, title: &str, body: &str) -> String {
    format!(
        "<item><title>{title}</title><link>http://news.test/{n}</link><guid>n{n}</guid>\
         <description>{body}</description><pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate></item>"
    )
}

fn search_feed() -> String {
    let items = [
        item(1, "خبر أول", "زيارة وإسرائيل في الجولة"),
        item(2, "خبر ثان", "قالت اسرائيل إن الوفد وصل"),
        item(3, "خبر ثالث", "صادرت الشرطة عبوتين ناسفتين"),
        item(4, "خبر رابع", "اتصال بين بوتين ونتنياهو"),
        item(5, "Kremlin talks", "The Kremlin said talks went well"),
        item(6, "خبر سادس", "الإسرائيليون يتظاهرون"),
    ];
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>t</title>\
         <link>http://news.test/</link>{}</channel></rss>",
        items.concat()
    )
}

fn search_env_sources(base: &str) -> String {
    format!("[[source]]\nid = \"news\"\nkind = \"feed\"\nurl = \"{base}/news.xml\"\n")
}

async fn search_titles(env: &Env, query: &str) -> Vec<String> {
    let out = env.marsad(&["search", query, "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let mut titles: Vec<String> = json_lines(&out)
        .iter()
        .map(|l| l["title"].as_str().expect("title").to_string())
        .collect();
    titles.sort();
    titles
}

#[tokio::test]
async fn search_finds_arabic_variants_and_not_words_inside_words() {
    let routes = std::collections::HashMap::from([(
        "/news.xml".to_string(),
        marsad::demo::Route::new("application/rss+xml", search_feed()),
    )]);
    let env = Env::new(routes, search_env_sources, OUTBOX_MAIL).await;
    let out = env.marsad(&["fetch"]).await;
    assert!(out.status.success(), "{}", stderr(&out));

    // With and without hamza, with a conjunction attached; not the plural "الإسرائيليون".
    assert_eq!(search_titles(&env, "إسرائيل").await, ["خبر أول", "خبر ثان"]);
    // "بوتين" is not the tail of "عبوتين".
    assert_eq!(search_titles(&env, "بوتين").await, ["خبر رابع"]);
    assert_eq!(search_titles(&env, "kremlin").await, ["Kremlin talks"]);
    // Every word must occur.
    assert_eq!(search_titles(&env, "بوتين نتنياهو").await, ["خبر رابع"]);
    assert!(search_titles(&env, "بوتين الجولة").await.is_empty());
    let text = stdout(&env.marsad(&["search", "بوتين"]).await);
    assert!(text.contains("http://news.test/4"), "{text}");

    // An article that became visible after later ones were indexed (on PostgreSQL, writers take
    // article ids before they commit) is still indexed: here its entry is taken out again.
    let first = env
        .count("SELECT MIN(article) FROM article_urls WHERE url = 'http://news.test/1'")
        .await;
    env.execute(&match env.storage_url().starts_with("postgres") {
        true => format!("DELETE FROM article_search WHERE article = {first}"),
        false => format!("DELETE FROM article_search WHERE rowid = {first}"),
    })
    .await;
    assert_eq!(search_titles(&env, "إسرائيل").await, ["خبر أول", "خبر ثان"]);
}

#[tokio::test]
async fn prune_keeps_matched_articles_longer() {
    let env = Env::demo(OUTBOX_MAIL).await;
    let config = std::fs::read_to_string(&env.config).expect("read config");
    std::fs::write(
        &env.config,
        format!("{config}\n[retention]\narticles = \"2s\"\nmatched = \"6s\"\n"),
    )
    .expect("write config");
    assert!(env.marsad(&["fetch"]).await.status.success());
    let matched = env
        .count("SELECT COUNT(DISTINCT article) FROM matches")
        .await;
    assert!(
        matched > 0 && matched < 8,
        "{matched} of 8 demo articles matched"
    );

    // Nothing is old yet.
    let out = env.marsad(&["prune"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.count("SELECT COUNT(*) FROM articles").await, 8);

    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let out = env.marsad(&["prune", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let pruned = &json_lines(&out)[0];
    assert_eq!(pruned["articles"], 8 - matched);
    assert_eq!(env.count("SELECT COUNT(*) FROM articles").await, matched);
    for table in [
        "article_urls",
        "article_guids",
        "matches",
        "article_signatures",
    ] {
        let sql =
            format!("SELECT COUNT(*) FROM {table} WHERE article NOT IN (SELECT id FROM articles)");
        assert_eq!(
            env.count(&sql).await,
            0,
            "rows of {table} of pruned articles go with them"
        );
    }
    assert!(env.count("SELECT COUNT(*) FROM article_guids").await > 0);
    // The search index forgets them too.
    assert!(search_titles(&env, "لبنان").await.len() as i64 <= matched);

    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let out = env.marsad(&["prune"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.count("SELECT COUNT(*) FROM articles").await, 0);
    assert_eq!(env.count("SELECT COUNT(*) FROM matches").await, 0);
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in metrics:\n{text}"))
}

#[tokio::test]
async fn daemon_serves_prometheus_metrics_and_logs_json_lines() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncReadExt;

    let env = Env::demo(OUTBOX_MAIL).await;
    let port = free_port();
    let config = std::fs::read_to_string(&env.config).expect("read config");
    std::fs::write(
        &env.config,
        format!("{config}\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .expect("write config");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"))
        .arg("--config")
        .arg(&env.config)
        .args(["--log-format", "json", "run"])
        .env("MARSAD_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start daemon");

    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        if let Ok(resp) = reqwest::get(&url).await {
            let text = resp.text().await.expect("metrics body");
            if metric(&text, "marsad_articles_stored_total") == 8.0 {
                break text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no metrics with 8 articles within 30s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        metric(&text, "marsad_fetches_total{outcome=\"ok\"}"),
        3.0,
        "{text}"
    );
    assert_eq!(metric(&text, "marsad_fetch_errors_total"), 0.0);
    assert!(
        metric(&text, "marsad_fetched_bytes_total") > 1000.0,
        "{text}"
    );
    assert!(metric(&text, "marsad_matches_total") > 0.0, "{text}");
    assert!(text.contains("# TYPE marsad_digests_sent_total counter"));
    metric(&text, "marsad_schedule_lag_seconds");

    let pid = child.id().expect("pid");
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops on SIGTERM")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .await
        .expect("read log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(lines.len() >= 2, "{log}");
    assert!(
        lines
            .iter()
            .all(|l| l["timestamp"].is_string() && l["level"].is_string())
    );
    let started = lines
        .iter()
        .find(|l| l["fields"]["message"] == "daemon started")
        .unwrap_or_else(|| panic!("no 'daemon started' line: {log}"));
    assert_eq!(
        started["fields"]["sources"], 3,
        "structured fields: {started}"
    );
}

#[tokio::test]
async fn opml_import_appends_new_feeds_and_export_round_trips() {
    let env = Env::demo(OUTBOX_MAIL).await;
    let base = env.server.base_url();
    let opml = format!(
        r#"<?xml version="1.0"?><opml version="2.0"><head><title>mine</title></head><body>
<outline text="World">
  <outline type="rss" text="Demo Wire again" xmlUrl="{base}/atom.xml"/>
  <outline type="rss" text="Science &amp; Tech Daily" xmlUrl="https://science.example/feed.xml"/>
  <outline type="rss" title="الأخبار" xmlUrl="https://akhbar.example/rss"/>
</outline></body></opml>"#
    );
    let file = env.dir.path().join("subs.opml");
    std::fs::write(&file, opml).expect("write opml");
    let out = env
        .marsad(&["sources", "import", file.to_str().expect("utf-8 path")])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("imported 2 sources") && stdout(&out).contains("skipped 1"),
        "{}",
        stdout(&out)
    );
    let check = env.marsad(&["check"]).await;
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).contains("5 sources"), "{}", stdout(&check));

    // Importing again adds nothing.
    let again = env
        .marsad(&["sources", "import", file.to_str().expect("utf-8 path")])
        .await;
    assert!(
        stdout(&again).contains("imported 0 sources"),
        "{}",
        stdout(&again)
    );

    let export = env.marsad(&["sources", "export"]).await;
    assert!(export.status.success(), "{}", stderr(&export));
    let xml = stdout(&export);
    let doc = scraper::Html::parse_document(&xml);
    let sel = scraper::Selector::parse("outline").expect("selector");
    let outlines: Vec<_> = doc.select(&sel).collect();
    assert_eq!(outlines.len(), 5, "{xml}");
    let feeds: Vec<&str> = outlines
        .iter()
        .filter_map(|o| o.value().attr("xmlurl"))
        .collect();
    assert!(feeds.contains(&"https://science.example/feed.xml"), "{xml}");
    assert!(feeds.contains(&"https://akhbar.example/rss"), "{xml}");
    assert!(xml.contains("Science &amp; Tech Daily"), "{xml}");
    let sources = std::fs::read_to_string(env.dir.path().join("sources.toml")).expect("sources");
    assert!(sources.contains("id = \"science-tech-daily\""), "{sources}");
    assert!(sources.contains("id = \"akhbar-example-rss\""), "{sources}");
}

/// A PostgreSQL server that is down, or a database that does not exist, is reported at once with
/// its cause and what to do, not after the connection pool's 30-second wait as "pool timed out".
/// Always on PostgreSQL, whichever backend the rest of the suite runs on.
#[tokio::test]
async fn an_unreachable_or_missing_postgres_database_is_reported_with_its_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &demo_sources("http://127.0.0.1:9"),
        OUTBOX_MAIL,
        "",
    );
    let closed = free_port();
    set_storage_url(
        &config,
        &format!("postgres://postgres@127.0.0.1:{closed}/test"),
    );
    let started = std::time::Instant::now();
    let out = run_marsad(&config, &["status"]).await;
    let waited = started.elapsed();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("127.0.0.1:{closed}")) && err.contains("refused"),
        "{err}"
    );
    assert!(
        waited < std::time::Duration::from_secs(10),
        "a refused connection took {waited:?} to report"
    );
    assert!(!err.contains("pool timed out"), "{err}");

    let admin = pg_admin_url();
    let missing = admin
        .rsplit_once('/')
        .map(|(server, _)| format!("{server}/marsad_no_such_database"))
        .expect("a database URL");
    let text = std::fs::read_to_string(&config).expect("read");
    let text = text.replace(
        &format!("postgres://postgres@127.0.0.1:{closed}/test"),
        &missing,
    );
    std::fs::write(&config, text).expect("write");
    let out = run_marsad(&config, &["status"]).await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("marsad_no_such_database") && err.contains("does not exist"),
        "{err}"
    );
    assert!(
        err.contains("createdb"),
        "the advice says how to fix it: {err}"
    );
    assert_eq!(
        err.matches("does not exist").count(),
        1,
        "the cause once, not repeated by the error chain: {err}"
    );
}
