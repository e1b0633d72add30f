//! Which links on a listing page (a home or section page) are articles.
//!
//! Sources say it with a CSS selector (`[source.listing].links`). Selectors written against
//! cards (`.post-card`) rather than anchors are common, so a matched element that is not an
//! `<a href>` contributes the anchors inside it.

use std::collections::HashSet;

use scraper::{Html, Selector};
use url::Url;

/// Article links on a listing page: hrefs of elements matched by `selector` (or of the
/// `<a href>` inside a matched non-anchor element), resolved against `base`, http(s) only,
/// fragments removed, de-duplicated in page order.
pub fn article_links(html: &str, base: &Url, selector: &Selector) -> Vec<Url> {
    let doc = Html::parse_document(html);
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
}
