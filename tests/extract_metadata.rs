//! Metadata rules of the generic extractor, each on a small page written for the test:
//! which title wins, where the publication date comes from (machine-readable first, then
//! dates written for readers in Arabic and English, relative dates, dates without a year),
//! which zone a zoneless date is in, and the article's language.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Asia::Beirut;
use marsad::extract::{Extracted, PageContext, extractor};

const BODY: &str = "<p>حذّرت وزارة الخارجية الروسية، يوم السبت، الحكومة الإسرائيلية من مغبة توسيع العمليات العسكرية باتجاه جنوب لبنان، معتبرةً أن ذلك سيقود المنطقة إلى مواجهة شاملة في الأيام المقبلة.</p>\
<p>وقالت المتحدثة باسم الخارجية الروسية إن موسكو تتابع عن كثب التطورات على الحدود اللبنانية، وإنها أبلغت تل أبيب بموقفها عبر القنوات الدبلوماسية المعتادة.</p>";

const ENGLISH_BODY: &str = "<p>Russian officials met an Israeli envoy in Moscow on Saturday, the foreign ministry said, as talks on a ceasefire stalled for a third week and the region braced for a wider war.</p>\
<p>The envoy carried a message from the prime minister, according to two people familiar with the meeting, who asked not to be named because the talks were private.</p>";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn page(head: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">{head}</head><body><header><a href=\"/\">الخنادق</a></header><article>{body}</article><footer>© الخنادق</footer></body></html>"
    )
}

fn extract_at(html: &str, fetched: &str, tz: Option<chrono_tz::Tz>) -> Extracted {
    let url = url::Url::parse("https://news.example.org/post/1201/story").unwrap();
    extractor().extract(
        html,
        &PageContext::new(&url)
            .with_timezone(tz)
            .with_fetched(utc(fetched)),
    )
}

fn extract(html: &str) -> Extracted {
    extract_at(html, "2024-03-01T12:00:00Z", None)
}

// ---- title ----

#[test]
fn title_prefers_open_graph_without_the_site_name() {
    let html = page(
        r#"<title>عنوان الصفحة الطويل | الخنادق</title>
<meta property="og:site_name" content="الخنادق">
<meta property="og:title" content="روسيا تحذّر إسرائيل من توسيع الحرب | الخنادق">
<script type="application/ld+json">{"@type":"NewsArticle","headline":"عنوان من JSON-LD"}</script>"#,
        &format!("<h1>عنوان الصفحة الظاهر</h1>{BODY}"),
    );
    assert_eq!(extract(&html).title, "روسيا تحذّر إسرائيل من توسيع الحرب");
}

#[test]
fn title_from_json_ld_news_article_headline_without_open_graph() {
    let html = page(
        r#"<title>الخنادق</title>
<script type="application/ld+json">{"@context":"https://schema.org","@graph":[{"@type":"WebSite","name":"الخنادق","headline":"ليس هذا"},{"@type":"NewsArticle","headline":"موسكو تستقبل موفداً إسرائيلياً"}]}</script>"#,
        BODY,
    );
    assert_eq!(extract(&html).title, "موسكو تستقبل موفداً إسرائيلياً");
}

#[test]
fn title_from_document_title_minus_the_site_name() {
    let html = page(
        r#"<title>الكرملين يستقبل موفداً إسرائيلياً - الخنادق</title><meta property="og:site_name" content="الخنادق">"#,
        BODY,
    );
    assert_eq!(extract(&html).title, "الكرملين يستقبل موفداً إسرائيلياً");
    // No site name declared: the longest part, when it reads like a headline.
    let html = page(
        "<title>Example News | Kremlin hosts Israeli envoy as talks stall</title>",
        ENGLISH_BODY,
    );
    assert_eq!(
        extract(&html).title,
        "Kremlin hosts Israeli envoy as talks stall"
    );
}

#[test]
fn title_from_h1_when_nothing_else_names_the_page() {
    let html = page("", &format!("<h1>  لبنان:   غارات على الجنوب </h1>{BODY}"));
    assert_eq!(extract(&html).title, "لبنان: غارات على الجنوب");
}

// ---- published: machine-readable ----

#[test]
fn published_prefers_json_ld_then_meta_then_time_element() {
    let ld = r#"<script type="application/ld+json">{"@type":"NewsArticle","datePublished":"2023-10-28T14:05:00+03:00"}</script>"#;
    let meta = r#"<meta property="article:published_time" content="2023-10-27T09:00:00Z">"#;
    let time = r#"<time datetime="2023-10-26T08:00:00Z">26/10/2023</time>"#;
    let all = page(&format!("{ld}{meta}"), &format!("{time}{BODY}"));
    assert_eq!(extract(&all).published, Some(utc("2023-10-28T11:05:00Z")));
    let meta_and_time = page(meta, &format!("{time}{BODY}"));
    assert_eq!(
        extract(&meta_and_time).published,
        Some(utc("2023-10-27T09:00:00Z"))
    );
    let time_only = page("", &format!("{time}{BODY}"));
    assert_eq!(
        extract(&time_only).published,
        Some(utc("2023-10-26T08:00:00Z"))
    );
}

// ---- published: dates written for readers ----

fn visible(date: &str) -> String {
    page(
        "",
        &format!("<span class=\"post-date\">{date}</span>{BODY}"),
    )
}

#[test]
fn levantine_month_names() {
    for (text, want) in [
        ("28 تشرين الأول 2023", "2023-10-28T00:00:00Z"),
        ("السبت 4 كانون الثاني 2025", "2025-01-04T00:00:00Z"),
        ("١٥ آذار ٢٠٢٤", "2024-03-15T00:00:00Z"),
        ("2 أيلول 2023", "2023-09-02T00:00:00Z"),
    ] {
        assert_eq!(extract(&visible(text)).published, Some(utc(want)), "{text}");
    }
}

#[test]
fn egyptian_and_gulf_month_names_and_arabic_indic_digits() {
    for (text, want) in [
        ("الأحد، 24 أغسطس 2020 11:23 ص", "2020-08-24T11:23:00Z"),
        ("٢٨ أكتوبر ٢٠٢٣", "2023-10-28T00:00:00Z"),
        ("1 ديسمبر 2020 - 09:15 م", "2020-12-01T21:15:00Z"),
    ] {
        assert_eq!(extract(&visible(text)).published, Some(utc(want)), "{text}");
    }
}

#[test]
fn combined_levantine_and_egyptian_form() {
    assert_eq!(
        extract(&visible("28 تشرين الأول/أكتوبر 2023")).published,
        Some(utc("2023-10-28T00:00:00Z"))
    );
    assert_eq!(
        extract(&visible("٣ شباط/فبراير ٢٠٢٤")).published,
        Some(utc("2024-02-03T00:00:00Z"))
    );
}

#[test]
fn english_dates() {
    for (text, want) in [
        ("October 28, 2023", "2023-10-28T00:00:00Z"),
        ("Published: Oct. 28, 2023 2:05 pm", "2023-10-28T14:05:00Z"),
        ("28 Oct 2023 14:05 GMT", "2023-10-28T14:05:00Z"),
    ] {
        assert_eq!(extract(&visible(text)).published, Some(utc(want)), "{text}");
    }
}

#[test]
fn a_date_without_a_year_is_the_most_recent_such_day() {
    // Fetched on 1 March 2024: 28 October is last year's, 25 February this year's.
    let fetched = "2024-03-01T12:00:00Z";
    assert_eq!(
        extract_at(&visible("28 تشرين الأول"), fetched, None).published,
        Some(utc("2023-10-28T00:00:00Z"))
    );
    assert_eq!(
        extract_at(&visible("25 فبراير، 10:30"), fetched, None).published,
        Some(utc("2024-02-25T10:30:00Z"))
    );
    assert_eq!(
        extract_at(&visible("Feb 29"), fetched, None).published,
        Some(utc("2024-02-29T00:00:00Z"))
    );
    // The same day as the fetch is today, not a year ago.
    assert_eq!(
        extract_at(&visible("1 آذار"), fetched, None).published,
        Some(utc("2024-03-01T00:00:00Z"))
    );
}

#[test]
fn zoneless_dates_are_in_the_configured_timezone() {
    // Beirut is UTC+3 in October (summer time) and UTC+2 in January.
    let fetched = "2024-03-01T12:00:00Z";
    assert_eq!(
        extract_at(&visible("28 تشرين الأول 2023 14:05"), fetched, Some(Beirut)).published,
        Some(utc("2023-10-28T11:05:00Z"))
    );
    assert_eq!(
        extract_at(&visible("2024-01-10 09:00"), fetched, Some(Beirut)).published,
        Some(utc("2024-01-10T07:00:00Z"))
    );
    let meta = page(
        r#"<meta property="article:published_time" content="2023-10-28T14:05:00">"#,
        BODY,
    );
    assert_eq!(
        extract_at(&meta, fetched, Some(Beirut)).published,
        Some(utc("2023-10-28T11:05:00Z"))
    );
    // A date that names its zone keeps it.
    let zoned = page(
        r#"<meta property="article:published_time" content="2023-10-28T14:05:00+00:00">"#,
        BODY,
    );
    assert_eq!(
        extract_at(&zoned, fetched, Some(Beirut)).published,
        Some(utc("2023-10-28T14:05:00Z"))
    );
    // Without a configured zone, UTC.
    assert_eq!(
        extract_at(&visible("28 تشرين الأول 2023 14:05"), fetched, None).published,
        Some(utc("2023-10-28T14:05:00Z"))
    );
}

#[test]
fn relative_dates_count_back_from_the_fetch() {
    let fetched = "2024-03-01T12:00:00Z";
    for (text, want) in [
        ("منذ 3 ساعات", "2024-03-01T09:00:00Z"),
        ("منذ ساعتين", "2024-03-01T10:00:00Z"),
        ("قبل ٥ دقائق", "2024-03-01T11:55:00Z"),
        ("منذ يومين", "2024-02-28T12:00:00Z"),
        ("2 hours ago", "2024-03-01T10:00:00Z"),
        ("an hour ago", "2024-03-01T11:00:00Z"),
        ("3 days ago", "2024-02-27T12:00:00Z"),
    ] {
        assert_eq!(
            extract_at(&visible(text), fetched, None).published,
            Some(utc(want)),
            "{text}"
        );
    }
    // "Yesterday" is the day before the fetch in the source's zone: at 23:30 UTC on
    // 1 March it is already 2 March in Beirut, so yesterday is 1 March there.
    let late = "2024-03-01T23:30:00Z";
    let expected = Beirut
        .with_ymd_and_hms(2024, 3, 1, 0, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(
        extract_at(&visible("أمس"), late, Some(Beirut)).published,
        Some(expected)
    );
    let expected = Beirut
        .with_ymd_and_hms(2024, 3, 1, 18, 40, 0)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(
        extract_at(&visible("Yesterday 18:40"), late, Some(Beirut)).published,
        Some(expected)
    );
}

// ---- language ----

#[test]
fn language_from_the_html_lang_attribute() {
    let html = format!(
        "<html lang=\"en-GB\"><head></head><body><article>{ENGLISH_BODY}</article></body></html>"
    );
    assert_eq!(extract(&html).language.as_deref(), Some("en"));
}

#[test]
fn language_detected_from_the_text_when_undeclared() {
    assert_eq!(extract(&page("", BODY)).language.as_deref(), Some("ar"));
    assert_eq!(
        extract(&page("", ENGLISH_BODY)).language.as_deref(),
        Some("en")
    );
    let french = "<p>Les responsables russes ont rencontré samedi à Moscou un émissaire israélien, a indiqué le ministère des affaires étrangères, alors que les négociations sur un cessez-le-feu piétinent depuis trois semaines.</p>\
<p>L'émissaire portait un message du premier ministre, selon deux personnes proches de la rencontre, qui ont demandé à ne pas être nommées.</p>";
    assert_eq!(extract(&page("", french)).language.as_deref(), Some("fr"));
}

#[test]
fn arabic_text_under_an_english_declaration_is_arabic() {
    let html = format!(
        "<html lang=\"en-US\" dir=\"rtl\"><head></head><body><article>{BODY}</article></body></html>"
    );
    assert_eq!(extract(&html).language.as_deref(), Some("ar"));
}

// ---- body ----

#[test]
fn body_keeps_headings_and_lists_and_drops_share_related_and_comments() {
    let body = format!(
        "{ENGLISH_BODY}<h2>What the envoy asked for</h2><ul><li>A guarantee that the northern border stays quiet through the winter months.</li><li>Help with the exchange of prisoners held on both sides of the line.</li></ul>\
<div class=\"share-buttons\"><a href=\"#\">Share on Facebook</a> <a href=\"#\">Share on X</a></div>\
<div class=\"related-articles\"><p>Related: Another story about a completely different topic entirely here.</p></div>\
<section id=\"comments\"><p>I think this is a very interesting article and I agree with it, thanks for writing.</p></section>"
    );
    let got = extract(&page("", &body));
    assert!(
        got.body.contains("What the envoy asked for"),
        "{}",
        got.body
    );
    assert!(
        got.body.contains("A guarantee that the northern border"),
        "{}",
        got.body
    );
    for leaked in ["Share on", "Related:", "I think this"] {
        assert!(!got.body.contains(leaked), "{leaked} leaked: {}", got.body);
    }
}

#[test]
fn json_ld_article_body_when_the_layout_hides_the_text() {
    let html = page(
        r#"<script type="application/ld+json">{"@type":"NewsArticle","headline":"h","articleBody":"The full text of the story, which the page renders with a script, is long enough to be the body of this article and much longer than the teaser below."}</script>"#,
        "<p>Teaser only.</p>",
    );
    assert!(
        extract(&html)
            .body
            .starts_with("The full text of the story"),
        "{}",
        extract(&html).body
    );
}
