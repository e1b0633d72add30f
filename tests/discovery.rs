//! Finding articles without selectors, with the real binary against a loopback site: link
//! heuristics on a listing page, a feed the page advertises, and sitemaps (index, news, gzip).

mod common;

use std::collections::HashMap;

use chrono::{Duration as Days, Utc};
use common::*;
use marsad::demo::Route;

const HTML: &str = "text/html; charset=utf-8";

/// The demo site's listing as an html source without `[source.listing]`.
fn no_selector_source(base: &str) -> String {
    format!(
        r#"[[source]]
id = "khanadeq"
kind = "html"
url = "{base}/"
language = "ar"
"#
    )
}

#[tokio::test]
async fn html_source_without_selector_finds_the_posts_and_leaves_the_menu_alone() {
    let env = Env::new(marsad::demo::site_routes(), no_selector_source, OUTBOX_MAIL).await;
    let test = env.marsad(&["sources", "test", "khanadeq"]).await;
    assert!(test.status.success(), "{}", stderr(&test));
    let out = stdout(&test);
    assert!(
        out.contains("using article links found by URL and link-text heuristics"),
        "{out}"
    );
    assert!(
        out.contains("موسكو تستقبل وفداً إسرائيلياً لبحث التنسيق في سوريا"),
        "{out}"
    );
    assert!(
        out.contains("3 items listed, 3 articles extracted"),
        "{out}"
    );

    let fetch = env.marsad(&["fetch"]).await;
    assert!(
        fetch.status.success(),
        "{}\n{}",
        stdout(&fetch),
        stderr(&fetch)
    );
    let articles = json_lines(&env.marsad(&["articles", "--json", "--since", "1h"]).await);
    let mut urls: Vec<String> = articles
        .iter()
        .map(|a| a["url"].as_str().unwrap_or_default().to_string())
        .collect();
    urls.sort();
    assert_eq!(urls.len(), 3, "{urls:?}");
    assert!(urls.iter().all(|u| u.contains("/post/410")), "{urls:?}");
    for menu in ["/category/lebanon", "/category/world", "/about", "/contact"] {
        assert!(env.hits(menu).is_empty(), "{menu} was fetched");
    }
}

#[tokio::test]
async fn advertised_feed_is_used_when_the_source_has_no_selector() {
    let mut routes = marsad::demo::site_routes();
    let home = include_str!("../seeds/demo/site/index.html").replace(
        "</head>",
        "<link rel=\"alternate\" type=\"application/rss+xml\" title=\"RSS\" href=\"/rss.xml\">\n</head>",
    );
    routes.insert("/".into(), Route::new(HTML, home));
    let env = Env::new(routes, no_selector_source, OUTBOX_MAIL).await;

    let test = env.marsad(&["sources", "test", "khanadeq"]).await;
    assert!(test.status.success(), "{}", stderr(&test));
    let out = stdout(&test);
    let feed = format!("{}/rss.xml", env.server.base_url());
    assert!(
        out.contains(&format!("using the feed {feed} advertised by the page")),
        "{out}"
    );
    // The feed's items, not the listing's /post/ links.
    assert!(out.contains("/news/8801.html"), "{out}");
    assert!(
        env.hits("/post/4101/موسكو-تستقبل-وفدا-اسرائيليا")
            .is_empty()
    );

    let json = json_lines(&env.marsad(&["sources", "test", "khanadeq", "--json"]).await);
    assert!(!json.is_empty());
    for line in &json {
        assert!(
            line["via"]
                .as_str()
                .unwrap_or_default()
                .contains("/rss.xml"),
            "{line}"
        );
        for key in ["title", "url", "published", "body_chars", "language"] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
    }
    // An html source reads each item's page (full text), so the stored body is the page's.
    assert!(!env.hits("/news/8801.html").is_empty());
}

fn article(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><title>{title} — Port Daily</title></head><body>\
         <nav><a href=\"/\">Home</a></nav><article><h1>{title}</h1><p>{body}</p><p>{body}</p></article></body></html>"
    )
}

fn gzip(data: &str) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data.as_bytes()).expect("gzip");
    gz.finish().expect("gzip")
}

#[tokio::test]
async fn sitemap_index_with_gzip_news_sitemap_yields_only_recent_articles() {
    let now = Utc::now();
    let recent = (now - Days::hours(3)).to_rfc3339();
    // A date without a time counts from its midnight: the date 12 hours ago is 12 to 36 hours
    // old whatever the time of day (30 hours ago was over two days old before 06:00 UTC).
    let yesterday = (now - Days::hours(12)).format("%Y-%m-%d").to_string();
    let old = (now - Days::days(10)).to_rfc3339();
    let news = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>{{base}}/2026/port-lanes-approved</loc>
    <news:news><news:publication><news:name>Port Daily</news:name><news:language>en</news:language></news:publication>
      <news:publication_date>{recent}</news:publication_date><news:title>Night shipping lanes approved</news:title></news:news></url>
  <url><loc>{{base}}/2026/ferry-timetable</loc><lastmod>{yesterday}</lastmod></url>
  <url><loc>{{base}}/2026/old-story</loc>
    <news:news><news:publication_date>{old}</news:publication_date><news:title>Old</news:title></news:news></url>
</urlset>"#
    );
    let index = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{{base}}/sitemaps/news.xml.gz</loc><lastmod>{recent}</lastmod></sitemap>
  <sitemap><loc>{{base}}/sitemaps/2019.xml</loc><lastmod>2019-01-01</lastmod></sitemap>
</sitemapindex>"#
    );
    let server = marsad::demo::StaticServer::start(HashMap::new())
        .await
        .expect("server");
    let base = server.base_url();
    server.set_route(
        "/sitemap_index.xml",
        Route::new("application/xml", index.replace("{base}", &base)),
    );
    server.set_route(
        "/sitemaps/news.xml.gz",
        Route::new("application/x-gzip", gzip(&news.replace("{base}", &base))),
    );
    server.set_route(
        "/sitemaps/2019.xml",
        Route::new("application/xml", "<urlset/>"),
    );
    // The page has no title of its own: the sitemap's news:title stands in.
    server.set_route(
        "/2026/port-lanes-approved",
        Route::new(
            HTML,
            "<html><body><div class=\"story\"><p>The port authority approved night shipping lanes after months of talks with the unions and the city council.</p></div></body></html>",
        ),
    );
    server.set_route(
        "/2026/ferry-timetable",
        Route::new(HTML, article("Ferry timetable changes for winter", "The ferry company publishes its winter timetable with fewer crossings on weekdays.")),
    );
    server.set_route(
        "/2026/old-story",
        Route::new(HTML, article("Old story", "Ten days old.")),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let sources = format!(
        "[[source]]\nid = \"port\"\nkind = \"sitemap\"\nurl = \"{base}/sitemap_index.xml\"\nmax_age = \"2d\"\n\
         [source.article]\nbody = \".story, article\"\n"
    );
    let config = write_config(dir.path(), &sources, OUTBOX_MAIL, "min_delay = \"0s\"\n");

    let test = run_marsad(&config, &["sources", "test", "port", "--json"]).await;
    assert!(test.status.success(), "{}", stderr(&test));
    let lines = json_lines(&test);
    let titles: Vec<&str> = lines.iter().filter_map(|l| l["title"].as_str()).collect();
    assert_eq!(
        titles,
        [
            "Night shipping lanes approved",
            "Ferry timetable changes for winter"
        ]
    );
    assert_eq!(
        lines[0]["published"].as_str().map(|p| p[..16].to_string()),
        Some(recent[..16].to_string())
    );
    assert!(
        lines[1]["body_chars"].as_u64().unwrap_or(0) > 50,
        "{}",
        lines[1]
    );
    let log = server.log();
    let asked = |p: &str| log.iter().filter(|l| l.path == p).count();
    assert_eq!(asked("/2026/old-story"), 0, "older than max_age");
    assert_eq!(
        asked("/sitemaps/2019.xml"),
        0,
        "child sitemap older than max_age"
    );

    let fetch = run_marsad(&config, &["fetch"]).await;
    assert!(
        fetch.status.success(),
        "{}\n{}",
        stdout(&fetch),
        stderr(&fetch)
    );
    let db = sqlite(&dir.path().join("var/marsad.db")).await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM articles WHERE source = 'port'").await,
        2
    );
}

#[tokio::test]
async fn a_page_that_is_not_a_sitemap_fails_the_source_with_a_clear_error() {
    let mut routes = HashMap::new();
    routes.insert(
        "/sitemap.xml".to_string(),
        Route::new(HTML, "<html><body>moved</body></html>"),
    );
    let env = Env::new(
        routes,
        |base| {
            format!("[[source]]\nid = \"map\"\nkind = \"sitemap\"\nurl = \"{base}/sitemap.xml\"\n")
        },
        OUTBOX_MAIL,
    )
    .await;
    let fetch = env.marsad(&["fetch"]).await;
    assert!(!fetch.status.success());
    let out = stdout(&fetch);
    assert!(
        out.contains("not a sitemap") && out.contains("\"map\""),
        "{out}"
    );
}
