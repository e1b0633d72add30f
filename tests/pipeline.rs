//! `marsad fetch` end to end: a real HTTP server on loopback, the real binary, a real SQLite file.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use marsad::demo::Route;

#[tokio::test]
async fn fetch_stores_every_article_once_and_a_second_run_stores_nothing() {
    let env = Env::demo(OUTBOX_MAIL).await;

    let first = env.marsad(&["fetch"]).await;
    assert!(
        first.status.success(),
        "fetch failed: {}\n{}",
        stdout(&first),
        stderr(&first)
    );
    // 3 listing posts + 3 RSS items (one is post 4102 again, with utm_* added) + 3 Atom entries.
    assert_eq!(env.count("SELECT COUNT(*) FROM articles").await, 8);
    assert!(
        stdout(&first).contains("8 new articles"),
        "{}",
        stdout(&first)
    );

    // The duplicate is one article with both URLs it was linked at.
    let articles = json_lines(&env.marsad(&["articles", "--json", "--since", "1h"]).await);
    assert_eq!(articles.len(), 8);
    let power: Vec<_> = articles
        .iter()
        .filter(|a| a["title"] == "لبنان: جلسة حكومية لبحث خطة الكهرباء")
        .collect();
    assert_eq!(
        power.len(),
        1,
        "the article reached twice must be stored once"
    );
    let urls = power[0]["urls"].as_array().expect("urls array");
    assert_eq!(urls.len(), 2, "both URLs recorded: {urls:?}");
    assert!(
        urls.iter()
            .any(|u| u.as_str().is_some_and(|u| u.contains("utm_source=rss")))
    );
    for key in [
        "id",
        "source",
        "url",
        "urls",
        "title",
        "body",
        "published",
        "fetched",
        "language",
        "story",
    ] {
        assert!(power[0].get(key).is_some(), "articles --json lacks {key}");
    }
    assert_eq!(power[0]["published"], "2026-11-24T11:00:00Z");

    let second = env.marsad(&["fetch"]).await;
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(
        env.count("SELECT COUNT(*) FROM articles").await,
        8,
        "second fetch stored something"
    );
    assert!(
        stdout(&second).contains("0 new articles"),
        "{}",
        stdout(&second)
    );
}

#[tokio::test]
async fn second_fetch_uses_conditional_get_and_the_server_answers_304() {
    let env = Env::demo(OUTBOX_MAIL).await;
    assert!(env.marsad(&["fetch"]).await.status.success());
    assert!(env.marsad(&["fetch"]).await.status.success());
    for path in ["/", "/rss.xml", "/atom.xml"] {
        let hits = env.hits(path);
        assert_eq!(hits.len(), 2, "{path} fetched {} times", hits.len());
        assert_eq!(hits[0].status, 200);
        assert!(
            hits[1].if_none_match.is_some(),
            "{path}: no If-None-Match on the second fetch"
        );
        assert_eq!(hits[1].status, 304, "{path}: second fetch not answered 304");
        assert_eq!(hits[0].user_agent.as_deref(), Some("marsad-test/1"));
    }
    // Known article pages are not fetched again.
    assert_eq!(env.hits("/en/kremlin-call.html").len(), 1);
    let status = json_lines(&env.marsad(&["status", "--json"]).await);
    let src = status
        .iter()
        .find(|s| s["id"] == "khanadeq-demo")
        .expect("source in status");
    assert_eq!(src["consecutive_failures"], 0);
    assert!(src["last_success"].is_string());
}

#[tokio::test]
async fn matches_follow_the_arabic_rules_and_explain_themselves() {
    let env = Env::demo(OUTBOX_MAIL).await;
    assert!(env.marsad(&["fetch"]).await.status.success());
    let out = env.marsad(&["matches", "--json", "--since", "1h"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let matches = json_lines(&out);
    let titles = |w: &str| -> Vec<String> {
        matches
            .iter()
            .filter(|m| m["watchlist"] == w)
            .map(|m| m["title"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let ri = titles("russia-israel");
    assert!(ri.iter().any(|t| t.starts_with("موسكو تستقبل")), "{ri:?}");
    assert!(
        ri.iter().any(|t| t.starts_with("الكرملين: بوتين")),
        "{ri:?}"
    );
    assert!(
        ri.iter().any(|t| t.starts_with("Kremlin says Putin")),
        "{ri:?}"
    );
    assert_eq!(ri.len(), 3, "{ri:?}");
    let lb = titles("lebanon");
    assert!(lb.iter().any(|t| t.contains("بيروت")), "{lb:?}");
    assert!(lb.iter().any(|t| t.starts_with("Beirut port")), "{lb:?}");
    // الكيروسين, عبوتين and "Prussian" must not match anything.
    for m in &matches {
        let t = m["title"].as_str().unwrap_or_default();
        assert!(
            !t.contains("الكيروسين") && !t.contains("Prussian"),
            "false match: {t}"
        );
    }
    // Every hit points at the matched text in the stored field.
    let articles = json_lines(&env.marsad(&["articles", "--json", "--since", "1h"]).await);
    for m in &matches {
        let article = articles
            .iter()
            .find(|a| a["id"] == m["article"])
            .expect("matched article listed");
        for hit in m["hits"].as_array().expect("hits") {
            let field = article[hit["field"].as_str().expect("field")]
                .as_str()
                .expect("field text");
            let (s, e) = (
                hit["start"].as_u64().expect("start") as usize,
                hit["end"].as_u64().expect("end") as usize,
            );
            let text: String = field.chars().skip(s).take(e - s).collect();
            assert_eq!(
                text,
                hit["text"].as_str().expect("text"),
                "offsets of {hit}"
            );
            for key in ["term", "group", "field", "start", "end", "text"] {
                assert!(hit.get(key).is_some(), "hit lacks {key}");
            }
        }
    }
}

#[tokio::test]
async fn legacy_arabic_charsets_are_decoded() {
    let title = "وزير الخارجية الروسي يزور بيروت";
    let body = "قال وزير الخارجية الروسي في بيروت إن موسكو تدعم الحوار بين اللبنانيين، وإن العلاقات مع لبنان قديمة.";
    let page = |charset_meta: &str| {
        format!(
            "<html lang=\"ar\"><head>{charset_meta}<title>{title}</title></head><body><article><h1>{title}</h1><p>{body}</p></article></body></html>"
        )
    };
    let cp1256 = encoding_rs::WINDOWS_1256.encode(&page("")).0.into_owned();
    let iso = encoding_rs::ISO_8859_6
        .encode(&page("<meta charset=\"iso-8859-6\">"))
        .0
        .into_owned();
    let listing = "<ul class=\"posts\"><li><a href=\"/post/1/a\">1</a></li><li><a href=\"/post/2/b\">2</a></li></ul>";
    let routes = HashMap::from([
        (
            "/".to_string(),
            Route::new("text/html; charset=utf-8", listing),
        ),
        // Charset only in the HTTP header.
        (
            "/post/1/a".to_string(),
            Route::new("text/html; charset=windows-1256", cp1256),
        ),
        // Charset only in <meta>.
        ("/post/2/b".to_string(), Route::new("text/html", iso)),
    ]);
    let sources = |base: &str| {
        format!(
            "[[source]]\nid = \"legacy\"\nname = \"Legacy\"\nkind = \"html\"\nurl = \"{base}/\"\n[source.listing]\nlinks = \"ul.posts a\"\n"
        )
    };
    let env = Env::new(routes, sources, OUTBOX_MAIL).await;
    let out = env.marsad(&["fetch"]).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let articles = json_lines(&env.marsad(&["articles", "--json"]).await);
    assert_eq!(
        articles.len(),
        1,
        "same text in two charsets is one article: {articles:?}"
    );
    assert_eq!(articles[0]["title"], title);
    assert!(
        articles[0]["body"]
            .as_str()
            .unwrap_or_default()
            .contains(body)
    );
    assert_eq!(articles[0]["urls"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_source_that_times_out_does_not_stop_the_others() {
    let mut routes = marsad::demo::site_routes();
    routes.insert(
        "/slow.xml".to_string(),
        Route::new(
            "application/rss+xml",
            "<rss version=\"2.0\"><channel></channel></rss>",
        )
        .with_delay(Duration::from_secs(30)),
    );
    let sources = |base: &str| {
        format!(
            "{}\n[[source]]\nid = \"slow\"\nname = \"Slow\"\nkind = \"feed\"\nurl = \"{base}/slow.xml\"\n",
            demo_sources(base)
        )
    };
    let env = Env::new(routes, sources, OUTBOX_MAIL).await;
    let started = Instant::now();
    let out = env.marsad(&["fetch"]).await;
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed source makes fetch exit 1: {}",
        stdout(&out)
    );
    assert!(
        took < Duration::from_secs(20),
        "fetch took {took:?} with a 3s timeout"
    );
    assert!(stdout(&out).contains("slow"), "{}", stdout(&out));
    assert_eq!(
        env.count("SELECT COUNT(*) FROM articles").await,
        8,
        "healthy sources stored"
    );
    let status = json_lines(&env.marsad(&["status", "--json"]).await);
    let slow = status
        .iter()
        .find(|s| s["id"] == "slow")
        .expect("slow in status");
    assert_eq!(slow["consecutive_failures"], 1);
    let error = slow["last_error"].as_str().expect("error recorded");
    assert!(error.contains("/slow.xml"), "error names the URL: {error}");
}

#[tokio::test]
async fn sources_test_shows_articles_without_storing() {
    let env = Env::demo(OUTBOX_MAIL).await;
    let out = env
        .marsad(&["sources", "test", "khanadeq-demo", "--json"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let items = json_lines(&out);
    assert_eq!(items.len(), 3);
    assert!(
        items
            .iter()
            .all(|i| i["url"].as_str().is_some_and(|u| u.contains("/post/")))
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM articles").await, 0);
}

#[tokio::test]
async fn items_already_stored_are_not_fetched_again_when_the_feed_comes_back_whole() {
    // No ETag: the second fetch gets the whole feed again, not a 304, and must recognise its
    // items (by GUID and URL) before fetching their pages.
    let items: String = (1..=3)
        .map(|n| {
            format!(
                "<item><title>خبر رقم {n}</title><link>/p/{n}</link><guid>g{n}</guid>\
                 <description>ملخص قصير</description></item>"
            )
        })
        .collect();
    let feed = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>t</title>\
         <link>/</link>{items}</channel></rss>"
    );
    let mut routes = HashMap::from([(
        "/full.xml".to_string(),
        Route::new("application/rss+xml", feed).without_etag(),
    )]);
    for n in 1..=3 {
        routes.insert(
            format!("/p/{n}"),
            Route::new(
                "text/html; charset=utf-8",
                format!(
                    "<html><body><article><h1>خبر رقم {n}</h1><p>{}</p></article></body></html>",
                    "نص المقال الكامل كما نشره الموقع، فقرة طويلة بما يكفي. ".repeat(8)
                ),
            ),
        );
    }
    let sources = |base: &str| {
        format!(
            "[[source]]\nid = \"full\"\nkind = \"feed\"\nurl = \"{base}/full.xml\"\nfull_text = true\n"
        )
    };
    let env = Env::new(routes, sources, OUTBOX_MAIL).await;
    for _ in 0..2 {
        let out = env.marsad(&["fetch"]).await;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let feed_hits = env.hits("/full.xml");
    assert_eq!(feed_hits.len(), 2);
    assert!(
        feed_hits.iter().all(|h| h.status == 200),
        "the feed was not sent whole twice"
    );
    for n in 1..=3 {
        assert_eq!(
            env.hits(&format!("/p/{n}")).len(),
            1,
            "/p/{n} fetched again"
        );
    }
    assert_eq!(env.count("SELECT COUNT(*) FROM articles").await, 3);
}

#[tokio::test]
async fn a_new_source_recognises_pages_another_source_stored_and_stores_no_duplicates() {
    // "wire" stores two article pages; "mirror", refreshed for the first time afterwards, lists
    // the same pages: one item with a GUID of its own (new to the store under that source, so it
    // goes to the store, which finds the article by URL), one without (looked up by URL, known,
    // so its page is not fetched again).
    let page = |n: u32| {
        Route::new(
            "text/html; charset=utf-8",
            format!(
                "<html><body><article><h1>برقية رقم {n}</h1><p>{}</p></article></body></html>",
                "نص البرقية كما وزعتها الوكالة على المشتركين، فقرة طويلة بما يكفي. ".repeat(8)
            ),
        )
    };
    let feed = |items: &str| {
        Route::new(
            "application/rss+xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel>\
                 <title>t</title><link>/</link>{items}</channel></rss>"
            ),
        )
        // Sent whole every time, so that a refresh reads its items again.
        .without_etag()
    };
    let routes = HashMap::from([
        ("/p/1".to_string(), page(1)),
        ("/p/2".to_string(), page(2)),
        (
            "/wire.xml".to_string(),
            feed(
                "<item><title>برقية رقم 1</title><link>/p/1</link><guid>w1</guid></item>\
                 <item><title>برقية رقم 2</title><link>/p/2</link><guid>w2</guid></item>",
            ),
        ),
        (
            "/mirror.xml".to_string(),
            feed(
                "<item><title>برقية رقم 1</title><link>/p/1</link><guid>m1</guid></item>\
                 <item><title>برقية رقم 2</title><link>/p/2</link></item>",
            ),
        ),
    ]);
    let sources = |base: &str| {
        format!(
            "[[source]]\nid = \"wire\"\nkind = \"feed\"\nurl = \"{base}/wire.xml\"\nfull_text = true\n\n\
             [[source]]\nid = \"mirror\"\nkind = \"feed\"\nurl = \"{base}/mirror.xml\"\nfull_text = true\n"
        )
    };
    let env = Env::new(routes, sources, OUTBOX_MAIL).await;
    let wire = env.marsad(&["fetch", "--source", "wire"]).await;
    assert!(wire.status.success(), "{}", stderr(&wire));
    assert_eq!(env.count("SELECT COUNT(*) FROM articles").await, 2);

    let mirror = env.marsad(&["fetch", "--source", "mirror"]).await;
    assert!(mirror.status.success(), "{}", stderr(&mirror));
    assert_eq!(
        env.count("SELECT COUNT(*) FROM articles").await,
        2,
        "the mirror's items are the wire's articles, not new ones"
    );
    assert!(
        stdout(&mirror).contains("0 new articles"),
        "{}",
        stdout(&mirror)
    );
    assert_eq!(
        env.hits("/p/2").len(),
        1,
        "the known GUID-less item's page was fetched again"
    );
    // The GUID is recorded for the article it names, so the mirror's next refresh skips it.
    assert_eq!(
        env.count("SELECT COUNT(*) FROM article_guids WHERE source = 'mirror' AND guid = 'm1'")
            .await,
        1
    );
    let again = env.marsad(&["fetch", "--source", "mirror"]).await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        env.hits("/p/1").len(),
        2,
        "wire once, the mirror's first refresh once"
    );
}
