//! What each fuzz target asserts, shared by the libFuzzer targets (fuzz/fuzz_targets/) and by
//! tests/fuzz_regressions.rs, which replays the seeds, the kept corpus and every past finding
//! through the same functions on stable in the normal `cargo test`.
//!
//! Each function takes raw input bytes and must return normally for every input: a panic, an
//! endless loop or unbounded memory is a finding.
#![allow(dead_code)]

use std::path::Path;

use chrono::TimeZone;
use marsad::extract::feed::parse_feed;
use marsad::extract::sitemap;
use marsad::extract::{self, ArticleRules, PageContext, listing};
use marsad::fetch::charset;
use marsad::matcher::{ArticleFields, Matcher, WatchlistSpec, query};
use marsad::model::Field;
use marsad::normalize::text::content_hash;
use marsad::normalize::url::{canonical_str, canonicalize};
use marsad::settings;

/// Feed bytes as the fetcher hands them on: charset decoding, then feed-rs parsing and
/// marsad's item conversion, then what the pipeline derives from each item (canonical URL,
/// content hash).
pub fn feed(data: &[u8]) {
    let base = url::Url::parse("https://news.example/feeds/rss.xml").expect("static URL");
    let (text, _) = charset::decode(data, Some("application/rss+xml"));
    let Ok(items) = parse_feed(&text, &base) else {
        return;
    };
    for item in items {
        if let Some(url) = &item.url {
            // The pipeline only ever follows http(s) links, and fragments never reach the key.
            assert!(matches!(url.scheme(), "http" | "https"), "item link {url}");
            assert!(url.fragment().is_none(), "item link {url}");
            let canonical = canonicalize(url);
            assert_eq!(canonicalize(&canonical), canonical, "canonical of {url}");
        }
        if let Some(guid) = &item.guid {
            assert!(
                !guid.trim().is_empty() && guid.trim() == guid,
                "guid {guid:?}"
            );
        }
        let _ = content_hash(item.title.trim(), item.body.trim());
    }
}

/// Article and listing pages: the generic extractor (with per-source selectors) and the
/// three ways links are taken from a listing page.
pub fn page(data: &[u8]) {
    let Ok(html) = std::str::from_utf8(data) else {
        return;
    };
    let url = url::Url::parse("https://news.example/politics/2024/05/03/story-1234.html")
        .expect("static URL");
    let rules = ArticleRules::parse(Some("h1.title"), Some(".article-body p"), Some("time"))
        .expect("static selectors");
    let fetched = chrono::Utc
        .with_ymd_and_hms(2024, 5, 3, 12, 0, 0)
        .single()
        .expect("static date");
    for rules in [None, Some(&rules)] {
        let ctx = PageContext::new(&url)
            .with_rules(rules)
            .with_timezone(Some(chrono_tz::Asia::Beirut))
            .with_fetched(fetched);
        let out = extract::extractor().extract(html, &ctx);
        if let Some(lang) = &out.language {
            assert!(
                !lang.is_empty() && lang.chars().all(|c| c.is_ascii_lowercase()),
                "language {lang:?}"
            );
        }
    }
    let selector = extract::parse_selector("a").expect("static selector");
    for link in listing::article_links(html, &url, &selector)
        .into_iter()
        .chain(listing::feed_links(html, &url))
        .chain(listing::discover_article_links(html, &url))
    {
        assert!(matches!(link.scheme(), "http" | "https"), "link {link}");
    }
}

/// Charset decoding. Input: the first line is the Content-Type header (may be empty), the
/// second the TLD hint, the rest the body.
pub fn charset(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let content_type = parts.next().and_then(|b| std::str::from_utf8(b).ok());
    let tld = parts.next().and_then(|b| std::str::from_utf8(b).ok());
    let body = parts.next().unwrap_or_default();
    if let Some(label) = content_type.and_then(charset::charset_param) {
        assert!(!label.is_empty());
    }
    let content_type = content_type.filter(|ct| !ct.is_empty());
    let tld = tld.filter(|t| !t.is_empty());
    let (text, encoding) = charset::decode_hinted(body, content_type, tld);
    // Valid UTF-8 that nothing declares otherwise must come back unchanged.
    if content_type.is_none()
        && encoding.name() == "UTF-8"
        && let Ok(s) = std::str::from_utf8(body)
        && !s.starts_with('\u{feff}')
    {
        assert_eq!(text, s);
    }
}

/// Configuration loading: marsad.toml, the sources file and one watchlist, written to a
/// scratch directory and loaded with `settings::load` exactly as `marsad check` does; every
/// error is rendered as the user would see it. A standalone watchlist goes through
/// `watchlists::load_file` too.
///
/// Input: the three files separated by lines reading `#---` (a TOML comment, so each seed
/// is itself a readable TOML file): marsad.toml, then sources.toml, then watchlists/w.toml.
pub fn config(data: &[u8], dir: &Path) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Paths in the config are followed: keep the fuzzer away from devices and special files
    // (reading /dev/zero would exhaust memory, /dev/stdin would block), which is the
    // environment's doing, not the loader's. Escapes could spell them too, so refuse those.
    for banned in ["dev", "proc", "sys", "\\u", "\\U", ".."] {
        if text.contains(banned) {
            return;
        }
    }
    let mut parts = text.splitn(3, "\n#---\n");
    let main = parts.next().unwrap_or_default();
    let sources = parts.next().unwrap_or_default();
    let watchlist = parts.next().unwrap_or_default();

    let config = dir.join("marsad.toml");
    let watchlist_path = dir.join("watchlists").join("w.toml");
    std::fs::write(&config, main).expect("write marsad.toml");
    std::fs::write(dir.join("sources.toml"), sources).expect("write sources.toml");
    std::fs::write(&watchlist_path, watchlist).expect("write watchlist");

    match settings::load(&config) {
        Ok(loaded) => {
            assert!(!loaded.sources.iter().any(|s| s.id.is_empty()));
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "Err without any error");
            for e in &errors.0 {
                // Whatever file the error names (a config may point `sources` at any file),
                // as it is on disk now.
                let file_text = std::fs::read_to_string(&e.file).unwrap_or_default();
                // A position the user can go to: inside the file (or just past its end).
                let lines = file_text.split('\n').count();
                assert!(e.line >= 1 && e.col >= 1, "position of {e}");
                assert!(e.line <= lines.max(1), "{e}: the file has {lines} lines");
                let line_chars = file_text
                    .split('\n')
                    .nth(e.line - 1)
                    .map_or(0, |l| l.chars().count());
                assert!(
                    e.col <= line_chars + 1,
                    "{e}: line {} has {line_chars} chars",
                    e.line
                );
            }
            let _ = errors.to_string();
        }
    }
    if let Err(errors) = settings::load_watchlist(&watchlist_path) {
        for e in &errors.0 {
            let _ = e.to_string();
        }
    }
    let _ = settings::load_storage(&config);
}

/// The watchlist query language, then the compiled matcher over an article.
///
/// Input, line by line: the query; then term groups as `name=term|term|…` up to an empty line;
/// then the article: its title on one line and the rest as the body.
pub fn query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let query_src = lines.next().unwrap_or_default();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let (name, terms) = line.split_once('=').unwrap_or((line, ""));
        groups.push((
            name.to_string(),
            terms.split('|').map(str::to_string).collect(),
        ));
    }
    let title = lines.next().unwrap_or_default();
    let body = lines.collect::<Vec<_>>().join("\n");

    let names: Vec<String> = groups.iter().map(|(n, _)| n.clone()).collect();
    match query::parse(query_src, &names) {
        Ok(_) => {}
        Err(e) => {
            // The offset is used to point into the config file: it must be inside the query.
            assert!(
                e.offset <= query_src.len(),
                "offset {} of {query_src:?}",
                e.offset
            );
            return;
        }
    }
    let spec = WatchlistSpec {
        name: "w".into(),
        title: "W".into(),
        fields: vec![Field::Title, Field::Body],
        groups,
        query: query_src.to_string(),
        ..WatchlistSpec::default()
    };
    let Ok(matcher) = Matcher::compile(&[spec]) else {
        return;
    };
    let article = ArticleFields {
        title,
        body: &body,
        url: "https://news.example/a",
        source_id: "src",
        source_name: "src",
        language: Some("ar"),
    };
    for m in matcher.match_article(&article) {
        for hit in m.hits {
            let field = match hit.field {
                Field::Title => title,
                Field::Body => body.as_str(),
                other => panic!("hit in {other:?}, which the watchlist does not look at"),
            };
            // Offsets are chars into the original field and must cover the quoted text.
            assert!(hit.start <= hit.end, "{hit:?}");
            let covered: String = field
                .chars()
                .skip(hit.start)
                .take(hit.end - hit.start)
                .collect();
            assert_eq!(covered, hit.text, "{hit:?} in {field:?}");
        }
    }
}

/// URL canonicalization: the exact-duplicate key must never panic and must be a fixed point
/// (a stored key canonicalized again is the same key, or dedupe would miss duplicates).
pub fn url(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(once) = canonical_str(s) else {
        return;
    };
    let twice = canonical_str(&once).expect("a canonical URL parses again");
    let parsed = url::Url::parse(&once).expect("parses");
    assert!(parsed.fragment().is_none(), "{once}");
    // Only http(s) URLs ever become keys (feeds, links and sources are filtered to them).
    // Elsewhere the url crate's own parse/serialize round trip is not always stable (a file:
    // host before a Windows drive letter: `file://0.0.0.2/e:/` parses as `file:///e:/`).
    if matches!(parsed.scheme(), "http" | "https") {
        assert_eq!(once, twice, "canonical form of {s:?} is not stable");
    }
    // Relative links on a page resolve against the page first, as the extractor does.
    let base = url::Url::parse("https://news.example/section/").expect("static URL");
    if let Ok(joined) = base.join(s) {
        let key = canonicalize(&joined);
        if matches!(key.scheme(), "http" | "https") {
            assert_eq!(canonicalize(&key), key, "joined {s:?}");
        }
    }
}

/// Sitemaps (and sitemap indexes, news sitemaps), plain or gzip-compressed.
pub fn sitemap(data: &[u8]) {
    let base = url::Url::parse("https://news.example/sitemap.xml").expect("static URL");
    let Ok(xml) = sitemap::decompress(data, 1 << 20) else {
        return;
    };
    if data.starts_with(&[0x1f, 0x8b]) {
        assert!(xml.len() <= 1 << 20, "inflated past the limit");
    }
    if let Ok(map) = sitemap::parse(&xml, &base) {
        let _ = format!("{map:?}");
    }
}
