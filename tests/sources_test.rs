//! `marsad sources test alkhanadeq` against a loopback copy of pages shaped like
//! Al-Khanadeq's (our own fixtures: an Arabic listing page and two article pages with
//! navigation, share buttons, related posts, comments, visible Levantine and relative dates).
//! The source is an `html` source with no `[source.article]` selectors, so every field comes
//! from the generic extractor; `[schedule].timezone` (Asia/Beirut) reads the zoneless dates.

mod common;

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use common::{Env, OUTBOX_MAIL, json_lines, stderr, stdout};
use marsad::demo::Route;

const INDEX: &str = include_str!("fixtures/alkhanadeq/index.html");
const POST_1201: &str = include_str!("fixtures/alkhanadeq/post-1201.html");
const POST_1202: &str = include_str!("fixtures/alkhanadeq/post-1202.html");

fn routes() -> HashMap<String, Route> {
    let html = |body: &str| Route::new("text/html; charset=utf-8", body.to_string());
    HashMap::from([
        ("/".to_string(), html(INDEX)),
        ("/post/1201/روسيا-تحذر-إسرائيل".to_string(), html(POST_1201)),
        ("/post/1202/المقاومة-والردع".to_string(), html(POST_1202)),
    ])
}

fn sources(base: &str) -> String {
    format!(
        r#"[[source]]
id = "alkhanadeq"
name = "الخنادق"
kind = "html"
url = "{base}/"
language = "ar"
[source.listing]
links = ".latest-posts a[href*='/post/']"
"#
    )
}

#[tokio::test]
async fn sources_test_extracts_alkhanadeq_without_article_selectors() {
    let env = Env::new(routes(), sources, OUTBOX_MAIL).await;
    let before = Utc::now();
    let out = env
        .marsad(&["sources", "test", "alkhanadeq", "--json"])
        .await;
    let after = Utc::now();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "{}", stdout(&out));
    let by_url = |suffix: &str| {
        lines
            .iter()
            .find(|l| l["url"].as_str().is_some_and(|u| u.contains(suffix)))
            .unwrap_or_else(|| panic!("no article for {suffix}: {}", stdout(&out)))
    };

    let first = by_url("/post/1201/");
    assert_eq!(
        first["title"],
        "روسيا تحذّر إسرائيل من توسيع الحرب على لبنان"
    );
    assert_eq!(first["language"], "ar");
    // 14:05 in Beirut on 28 October 2023 (UTC+3, summer time).
    assert_eq!(first["published"], "2023-10-28T11:05:00Z");
    let body = first["body"].as_str().unwrap();
    assert!(body.starts_with("حذّرت وزارة الخارجية الروسية"), "{body}");
    assert!(
        body.contains("اتصالات إقليمية"),
        "the subheading is kept: {body}"
    );
    assert!(body.ends_with("إلى حرب إقليمية واسعة."), "{body}");
    for boilerplate in [
        "فيسبوك",
        "مقالات ذات صلة",
        "جميع الحقوق",
        "صورة أرشيفية",
        "الرئيسية",
    ] {
        assert!(!body.contains(boilerplate), "{boilerplate} leaked: {body}");
    }
    assert_eq!(first["body_chars"], body.chars().count());

    let second = by_url("/post/1202/");
    assert_eq!(
        second["title"],
        "معادلات الردع على الجبهة الجنوبية: قراءة في الأسابيع الأولى"
    );
    // No lang attribute: detected from the text.
    assert_eq!(second["language"], "ar");
    // "منذ يومين" (two days ago), counted back from the fetch.
    let published = DateTime::parse_from_rfc3339(second["published"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    assert!(
        published >= before - Duration::days(2) - Duration::seconds(1)
            && published <= after - Duration::days(2) + Duration::seconds(1),
        "published {published}, fetched between {before} and {after}"
    );
    let body = second["body"].as_str().unwrap();
    assert!(
        body.contains("استهداف المواقع العسكرية"),
        "list items are kept: {body}"
    );
    assert!(body.ends_with("وفق ما يراه المراقبون."), "{body}");
    assert!(
        !body.contains("التعليقات") && !body.contains("تعليق من أحد القراء"),
        "{body}"
    );

    // Nothing stored: a later `articles` lists nothing.
    let articles = env.marsad(&["articles", "--json"]).await;
    assert!(articles.status.success(), "{}", stderr(&articles));
    assert!(json_lines(&articles).is_empty(), "{}", stdout(&articles));
}

#[tokio::test]
async fn sources_test_prints_a_readable_summary() {
    let env = Env::new(routes(), sources, OUTBOX_MAIL).await;
    let out = env.marsad(&["sources", "test", "alkhanadeq"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("روسيا تحذّر إسرائيل من توسيع الحرب على لبنان"),
        "{text}"
    );
    assert!(
        text.contains("published 2023-10-28T11:05:00+00:00"),
        "{text}"
    );
    assert!(text.contains("language ar"), "{text}");
    assert!(
        text.contains("2 articles extracted (nothing stored)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_source_timezone_overrides_the_schedule_timezone_for_page_dates() {
    let sources_in_cairo = |base: &str| {
        sources(base).replace(
            "language = \"ar\"\n",
            "language = \"ar\"\ntimezone = \"Africa/Cairo\"\n",
        )
    };
    let env = Env::new(routes(), sources_in_cairo, OUTBOX_MAIL).await;
    let out = env
        .marsad(&["sources", "test", "alkhanadeq", "--json"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    let first = lines
        .iter()
        .find(|l| l["url"].as_str().is_some_and(|u| u.contains("/post/1201/")))
        .unwrap_or_else(|| panic!("{}", stdout(&out)));
    // 14:05 in Cairo on 28 October 2023: UTC+2 (Egypt's summer time ended on 26 October),
    // where Beirut's would have given 11:05Z.
    assert_eq!(first["published"], "2023-10-28T12:05:00Z");
}
