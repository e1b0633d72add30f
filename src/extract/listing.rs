//! Which links on a listing page (a home or section page) are articles.
//!
//! Sources can say it with a CSS selector (`[source.listing].links`). Selectors written against
//! cards (`.post-card`) rather than anchors are common, so a matched element that is not an
//! `<a href>` contributes the anchors inside it. Without a selector, [`feed_links`] finds a feed
//! the page advertises and [`discover_article_links`] guesses the article links from their URLs
//! and texts.

use std::collections::HashSet;

use scraper::{ElementRef, Html, Selector};
use url::Url;

/// Article links on a listing page: hrefs of elements matched by `selector` (or of the
/// `<a href>` inside a matched non-anchor element), resolved against `base`, http(s) only,
/// fragments removed, de-duplicated in page order.
pub fn article_links(html: &str, base: &Url, selector: &Selector) -> Vec<Url> {
    let doc = Html::parse_document(&super::depth::flatten_deep(html));
    // A `<base href>` changes what relative links mean.
    let base = Selector::parse("base[href]")
        .ok()
        .and_then(|s| doc.select(&s).next())
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| base.join(href.trim()).ok())
        .unwrap_or_else(|| base.clone());
    let anchors = Selector::parse("a[href]").ok();
    let mut seen = HashSet::new();
    let mut links = Vec::new();
    for element in doc.select(selector) {
        let hrefs: Vec<&str> = match element.value().attr("href") {
            Some(href) if element.value().name() == "a" => vec![href],
            _ => anchors
                .as_ref()
                .map(|a| {
                    element
                        .select(a)
                        .filter_map(|a| a.value().attr("href"))
                        .collect()
                })
                .unwrap_or_default(),
        };
        for href in hrefs {
            let Ok(mut url) = base.join(href.trim()) else {
                continue;
            };
            if !matches!(url.scheme(), "http" | "https") {
                continue;
            }
            url.set_fragment(None);
            if seen.insert(url.clone()) {
                links.push(url);
            }
        }
    }
    links
}

/// The page's `<base href>`, or `base`.
fn document_base(doc: &Html, base: &Url) -> Url {
    Selector::parse("base[href]")
        .ok()
        .and_then(|s| doc.select(&s).next())
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| base.join(href.trim()).ok())
        .unwrap_or_else(|| base.clone())
}

/// Feeds the page advertises with `<link rel="alternate" type="application/rss+xml |
/// application/atom+xml | application/feed+json" href>`, in page order.
pub fn feed_links(html: &str, base: &Url) -> Vec<Url> {
    let doc = Html::parse_document(&super::depth::flatten_deep(html));
    let base = document_base(&doc, base);
    let Ok(links) = Selector::parse("link[href]") else {
        return Vec::new();
    };
    let mut feeds = Vec::new();
    for link in doc.select(&links) {
        let el = link.value();
        let rel_alternate = el.attr("rel").is_some_and(|r| {
            r.split_ascii_whitespace()
                .any(|w| w.eq_ignore_ascii_case("alternate"))
        });
        let feed_type = el.attr("type").is_some_and(|t| {
            let t = t.trim().to_ascii_lowercase();
            let essence = t.split(';').next().unwrap_or("").trim();
            matches!(
                essence,
                "application/rss+xml" | "application/atom+xml" | "application/feed+json"
            )
        });
        if !(rel_alternate && feed_type) {
            continue;
        }
        if let Some(url) = el
            .attr("href")
            .and_then(|h| base.join(h.trim()).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            && !feeds.contains(&url)
        {
            feeds.push(url);
        }
    }
    feeds
}

/// Path segments that mark a page about the site rather than an article: navigation,
/// taxonomy, people, accounts, search, feeds and pagination.
const NON_ARTICLE_SEGMENTS: &[&str] = &[
    "tag",
    "tags",
    "category",
    "categories",
    "cat",
    "section",
    "sections",
    "topic",
    "topics",
    "author",
    "authors",
    "writer",
    "writers",
    "editor",
    "editors",
    "about",
    "about-us",
    "contact",
    "contact-us",
    "login",
    "logout",
    "signin",
    "sign-in",
    "signup",
    "sign-up",
    "register",
    "account",
    "profile",
    "user",
    "users",
    "subscribe",
    "newsletter",
    "search",
    "privacy",
    "privacy-policy",
    "terms",
    "cookies",
    "feed",
    "rss",
    "page",
    "archive",
    "archives",
    "wp-admin",
    "wp-login.php",
    "cdn-cgi",
    "advertise",
    "jobs",
    "careers",
    "sitemap",
    "shop",
    "donate",
];

/// Parts of a segment that mark taxonomy pages however they are spelled (`newssection`,
/// `subcategory`, `tag-list`).
const NON_ARTICLE_PARTS: &[&str] = &["section", "category", "categories", "tag-", "trend"];

/// File endings of assets and downloads, never article pages.
const ASSET_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "webp", "svg", "ico", "bmp", "avif", "css", "js", "json", "xml",
    "rss", "pdf", "doc", "docx", "xls", "xlsx", "ppt", "zip", "gz", "rar", "mp3", "mp4", "m4a",
    "webm", "ogg", "wav", "avi", "mov", "woff", "woff2", "ttf", "eot", "apk", "exe", "dmg",
];

/// Segment names news sites put in front of an article's id or slug.
const ARTICLE_SEGMENTS: &[&str] = &[
    "post",
    "posts",
    "article",
    "articles",
    "story",
    "stories",
    "news",
    "p",
    "a",
    "details",
    "detail",
    "item",
    "content",
    "read",
    "view",
    "node",
    "blog",
    "opinion",
    "report",
    "reports",
    "analysis",
    "interview",
];

/// Score at or above which a link counts as an article.
const ARTICLE_SCORE: i32 = 4;

/// Article links on a listing page that has no `links` selector, found by URL and link text.
///
/// Every `<a href>` is resolved (honouring `<base href>`), fragments dropped, and kept only if it
/// passes all of these:
/// - same site as the listing (host equal, ignoring a leading `www.`), http(s);
/// - not the listing page itself and not the site root;
/// - not inside `<nav>`, `<footer>` or `role="navigation"` (menus link sections, not stories);
/// - no path segment naming a non-article page (`tag`, `category`, `author`, `about`,
///   `contact`, `login`, `search`, `feed`, `page`, … see `NON_ARTICLE_SEGMENTS`), nor one
///   containing `section`, `category`, `tag-` or `trend` (`newssection`, `subcategory`);
/// - not an asset or download (`.jpg`, `.css`, `.pdf`, `.xml`, … see `ASSET_EXTENSIONS`).
///
/// Then it is scored, and kept at 4 or more:
/// - a date in the path (`/2024/05/`, `/2024-05-28/`, `/20240528/`): +4;
/// - a numeric id segment of 3+ digits (`/4101/`, `/8801.html`, `/article-123456`): +3;
/// - a slug segment of 3+ words joined by `-` or `_` (Arabic or Latin), or of 25+ letters: +3;
///   a two-word slug: +1;
/// - a segment such as `post`, `article`, `story`, `news` in front of it: +1;
/// - a page ending (`.html`, `.htm`, `.php`, `.aspx`): +1;
/// - path depth of 2 or more segments: +1; a single short segment without digits: -2;
/// - link text of 4+ words or 25+ characters (a headline): +2; 1–2 short words: -1.
///
/// `/post/4101/موسكو-تستقبل-وفدا` scores 3+3+1+1+2 = 10; `/category/lebanon` and `/about` are
/// excluded outright; `/en/kremlin-call.html` with a headline scores 1+1+1+2 = 5.
pub fn discover_article_links(html: &str, base: &Url) -> Vec<Url> {
    let doc = Html::parse_document(&super::depth::flatten_deep(html));
    let page = {
        let mut p = base.clone();
        p.set_fragment(None);
        p
    };
    let base = document_base(&doc, base);
    let Ok(anchors) = Selector::parse("a[href]") else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    let mut links = Vec::new();
    for a in doc.select(&anchors) {
        if in_navigation(&a) {
            continue;
        }
        let Some(href) = a.value().attr("href") else {
            continue;
        };
        let Ok(mut url) = base.join(href.trim()) else {
            continue;
        };
        url.set_fragment(None);
        let text: String = a.text().collect::<Vec<_>>().join(" ");
        if article_score(&url, &page, &text).is_some_and(|s| s >= ARTICLE_SCORE)
            && seen.insert(url.clone())
        {
            links.push(url);
        }
    }
    links
}

fn in_navigation(a: &ElementRef<'_>) -> bool {
    a.ancestors().filter_map(ElementRef::wrap).any(|el| {
        let v = el.value();
        matches!(v.name(), "nav" | "footer")
            || v.attr("role")
                .is_some_and(|r| r.eq_ignore_ascii_case("navigation"))
    })
}

fn same_site(a: &Url, b: &Url) -> bool {
    let host = |u: &Url| {
        u.host_str()
            .map(|h| h.trim_start_matches("www.").to_ascii_lowercase())
    };
    host(a).is_some()
        && host(a) == host(b)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The score of `url` as an article link on `page`, or `None` when a rule excludes it.
fn article_score(url: &Url, page: &Url, text: &str) -> Option<i32> {
    if !matches!(url.scheme(), "http" | "https") || !same_site(url, page) {
        return None;
    }
    let segments: Vec<String> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).map(decode_segment).collect())
        .unwrap_or_default();
    if segments.is_empty() {
        return None;
    }
    if url.path().trim_end_matches('/') == page.path().trim_end_matches('/') {
        return None;
    }
    let lower: Vec<String> = segments.iter().map(|s| s.to_lowercase()).collect();
    if lower.iter().any(|s| {
        NON_ARTICLE_SEGMENTS.contains(&s.as_str())
            || NON_ARTICLE_PARTS.iter().any(|part| s.contains(part))
    }) {
        return None;
    }
    let last = lower.last().map(String::as_str).unwrap_or("");
    let (stem, extension) = match last.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric()) => {
            (stem, Some(ext))
        }
        _ => (last, None),
    };
    if extension.is_some_and(|e| ASSET_EXTENSIONS.contains(&e)) {
        return None;
    }

    let mut score = 0;
    if has_date(&lower) {
        score += 4;
    }
    let stems: Vec<&str> = lower[..lower.len() - 1]
        .iter()
        .map(String::as_str)
        .chain([stem])
        .collect();
    if stems.iter().any(|s| is_numeric_id(s)) {
        score += 3;
    }
    let best_slug = stems.iter().map(|s| slug_words(s)).max().unwrap_or(0);
    let long_slug = stems
        .iter()
        .any(|s| s.chars().filter(|c| c.is_alphabetic()).count() >= 25);
    if best_slug >= 3 || long_slug {
        score += 3;
    } else if best_slug == 2 {
        score += 1;
    }
    if lower[..lower.len() - 1]
        .iter()
        .any(|s| ARTICLE_SEGMENTS.contains(&s.as_str()))
    {
        score += 1;
    }
    if matches!(
        extension,
        Some("html" | "htm" | "php" | "aspx" | "asp" | "shtml")
    ) {
        score += 1;
    }
    if segments.len() >= 2 {
        score += 1;
    } else if !stem.chars().any(|c| c.is_ascii_digit())
        && stem.chars().count() < 25
        && best_slug < 3
    {
        score -= 2;
    }
    let text = text.split_whitespace().collect::<Vec<_>>();
    let chars: usize =
        text.iter().map(|w| w.chars().count()).sum::<usize>() + text.len().saturating_sub(1);
    if text.len() >= 4 || chars >= 25 {
        score += 2;
    } else if !text.is_empty() && text.len() <= 2 && chars < 15 {
        score -= 1;
    }
    Some(score)
}

/// `2024/05/28`, `2024/05`, `2024-05-28` or `20240528` among the segments.
fn has_date(segments: &[String]) -> bool {
    let year = |s: &str| s.len() == 4 && s.parse::<u32>().is_ok_and(|y| (1990..=2100).contains(&y));
    let month = |s: &str| {
        (1..=2).contains(&s.len()) && s.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
    };
    segments.windows(2).any(|w| year(&w[0]) && month(&w[1]))
        || segments.iter().any(|s| {
            let digits: String = s
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect();
            let parts: Vec<&str> = digits.split('-').collect();
            (parts.len() >= 3 && year(parts[0]) && month(parts[1]))
                || (digits.len() == 8 && year(&digits[..4]) && month(&digits[4..6]))
        })
}

/// A segment that is, or ends or starts with, a number of 3+ digits (`4101`, `article-123456`,
/// `123456-title`).
fn is_numeric_id(segment: &str) -> bool {
    let run = |s: &str| s.chars().take_while(char::is_ascii_digit).count();
    segment.len() >= 3 && segment.chars().all(|c| c.is_ascii_digit())
        || run(segment) >= 3
        || run(&segment.chars().rev().collect::<String>()) >= 3
}

/// Words of a slug joined by `-` or `_`, each with at least one letter or digit.
fn slug_words(segment: &str) -> usize {
    if !segment.contains(['-', '_']) {
        return usize::from(segment.chars().any(char::is_alphanumeric));
    }
    segment
        .split(['-', '_'])
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

/// Percent-decodes a path segment (Arabic slugs arrive encoded).
fn decode_segment(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r##"<!DOCTYPE html><html lang="ar"><body>
      <nav><a href="/">الرئيسية</a><a href="/category/1">لبنان</a></nav>
      <main>
        <div class="card"><a href="/post/1201/المقاومة-تستهدف-موقعاً"><img src="a.jpg"></a>
          <h3><a href="/post/1201/المقاومة-تستهدف-موقعاً#comments">المقاومة تستهدف موقعاً</a></h3></div>
        <div class="card"><h3><a href="https://alkhanadeq.org.lb/post/1202/روسيا-وإسرائيل">روسيا وإسرائيل</a></h3></div>
        <div class="card"><a href="javascript:void(0)">share</a><a href="mailto:x@y.z">mail</a></div>
        <div class="card"><a href="//alkhanadeq.org.lb/post/1203/x?ref=home">x</a></div>
      </main>
      <footer><a href="/post/9999/footer-link">footer</a></footer>
    </body></html>"##;

    fn base() -> Url {
        Url::parse("https://alkhanadeq.org.lb/").unwrap()
    }

    #[test]
    fn anchor_selector_resolves_dedupes_and_drops_fragments() {
        let sel = Selector::parse("main a[href*='/post/']").unwrap();
        let links = article_links(LISTING, &base(), &sel);
        let got: Vec<String> = links.iter().map(Url::to_string).collect();
        assert_eq!(
            got,
            [
                "https://alkhanadeq.org.lb/post/1201/%D8%A7%D9%84%D9%85%D9%82%D8%A7%D9%88%D9%85%D8%A9-%D8%AA%D8%B3%D8%AA%D9%87%D8%AF%D9%81-%D9%85%D9%88%D9%82%D8%B9%D8%A7%D9%8B",
                "https://alkhanadeq.org.lb/post/1202/%D8%B1%D9%88%D8%B3%D9%8A%D8%A7-%D9%88%D8%A5%D8%B3%D8%B1%D8%A7%D8%A6%D9%8A%D9%84",
                "https://alkhanadeq.org.lb/post/1203/x?ref=home",
            ]
        );
    }

    #[test]
    fn container_selector_uses_anchors_inside_and_skips_non_http() {
        let sel = Selector::parse(".card").unwrap();
        let links = article_links(LISTING, &base(), &sel);
        assert_eq!(links.len(), 3);
        assert!(links.iter().all(|u| u.scheme() == "https"));
        assert!(links.iter().all(|u| u.path().starts_with("/post/")));
    }

    #[test]
    fn base_element_changes_resolution() {
        let html = r#"<html><head><base href="https://example.org/news/"></head>
            <body><a class="x" href="story-1.html">a</a></body></html>"#;
        let sel = Selector::parse("a.x").unwrap();
        let links = article_links(html, &Url::parse("https://other.example/").unwrap(), &sel);
        assert_eq!(links[0].as_str(), "https://example.org/news/story-1.html");
    }

    fn decoded(links: &[Url]) -> Vec<String> {
        links
            .iter()
            .map(|u| {
                percent_encoding::percent_decode_str(u.as_str())
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect()
    }

    #[test]
    fn demo_site_listing_yields_the_posts_not_the_menu() {
        let html = include_str!("../../seeds/demo/site/index.html");
        let links = discover_article_links(html, &Url::parse("http://127.0.0.1:8080/").unwrap());
        assert_eq!(
            decoded(&links),
            [
                "http://127.0.0.1:8080/post/4101/موسكو-تستقبل-وفدا-اسرائيليا",
                "http://127.0.0.1:8080/post/4102/جلسة-حكومية-لبحث-خطة-الكهرباء",
                "http://127.0.0.1:8080/post/4103/أسعار-الكيروسين-ترتفع",
            ]
        );
    }

    #[test]
    fn english_news_home_yields_stories_not_sections_authors_assets_or_other_sites() {
        let html = include_str!("testdata/listing_english_home.html");
        let base = Url::parse("https://www.harbourherald.example/").unwrap();
        let links = discover_article_links(html, &base);
        assert_eq!(
            decoded(&links),
            [
                "https://www.harbourherald.example/2026/11/24/port-authority-approves-night-shipping-lanes/",
                "https://harbourherald.example/politics/article-20481733",
                "https://www.harbourherald.example/business/fuel-prices-fall-for-the-third-week-in-a-row-analysts-say",
                "https://www.harbourherald.example/world/middle-east/story/2026-11-23/ceasefire-talks-resume",
                "https://www.harbourherald.example/news/88123.html",
                "https://www.harbourherald.example/2026/11/22/five-things-to-know-about-the-new-bridge/",
            ]
        );
    }

    #[test]
    fn arabic_news_home_yields_articles_with_arabic_slugs() {
        let html = include_str!("testdata/listing_arabic_home.html");
        let base = Url::parse("https://janoub.example/").unwrap();
        let links = discover_article_links(html, &base);
        assert_eq!(
            decoded(&links),
            [
                "https://janoub.example/news/2026/11/24/غارات-على-أطراف-البلدات-الحدودية",
                "https://janoub.example/article/51877/الحكومة-تقر-خطة-الطوارئ",
                "https://janoub.example/article/51878/وزير-الخارجية-يلتقي-نظيره-الروسي-في-موسكو?utm_source=home",
                "https://janoub.example/opinion/مقالة-رأي-عن-مستقبل-المنطقة-بعد-الحرب",
            ]
        );
    }

    #[test]
    fn listing_page_itself_and_short_menu_words_are_not_articles() {
        let html = r#"<html><body><main>
            <a href="/news/">News</a><a href="/news/#top">top</a><a href="/live">Live</a>
            <a href="/news/2026/05/01/a-story-about-something">A story about something that happened</a>
            </main></body></html>"#;
        let links = discover_article_links(html, &Url::parse("https://x.example/news/").unwrap());
        assert_eq!(
            decoded(&links),
            ["https://x.example/news/2026/05/01/a-story-about-something"]
        );
    }

    #[test]
    fn advertised_feeds_are_found_in_page_order() {
        let html = r#"<html><head>
            <link rel="stylesheet" href="/a.css">
            <link rel="alternate" hreflang="en" href="/en/">
            <link rel="alternate" type="application/rss+xml" title="RSS" href="/feed.xml">
            <link rel="Alternate" type="application/atom+xml; charset=utf-8" href="https://cdn.example/atom">
            <link rel="alternate" type="application/feed+json" href="/feed.json">
            <link rel="alternate" type="application/rss+xml" href="javascript:x">
            </head><body></body></html>"#;
        let feeds = feed_links(html, &Url::parse("https://x.example/news/").unwrap());
        let got: Vec<&str> = feeds.iter().map(Url::as_str).collect();
        assert_eq!(
            got,
            [
                "https://x.example/feed.xml",
                "https://cdn.example/atom",
                "https://x.example/feed.json"
            ]
        );
        assert!(feed_links(include_str!("../../seeds/demo/site/index.html"), &base()).is_empty());
    }

    #[test]
    fn documented_scores_hold() {
        let page = Url::parse("https://x.example/").unwrap();
        let score = |path: &str, text: &str| article_score(&page.join(path).unwrap(), &page, text);
        assert_eq!(
            score(
                "/post/4101/موسكو-تستقبل-وفدا",
                "موسكو تستقبل وفداً إسرائيلياً"
            ),
            Some(10)
        );
        assert_eq!(
            score(
                "/en/kremlin-call.html",
                "Kremlin confirms a call with Netanyahu"
            ),
            Some(5)
        );
        assert_eq!(score("/category/lebanon", "لبنان"), None);
        assert_eq!(score("/about", "About"), None);
        assert!(score("/live", "Live").is_some_and(|s| s < ARTICLE_SCORE));
    }
}
