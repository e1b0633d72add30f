//! Fuzzing findings as ordinary tests, on stable, in every `cargo test`.
//!
//! The assertions live in fuzz/checks.rs, shared with the libFuzzer targets in fuzz/, so an
//! input replayed here is judged exactly as the fuzzer judged it. Replayed for each target:
//! the hand-written seeds (fuzz/seeds/<target>/), the corpus the fuzzer grew from them and
//! that was kept (fuzz/corpus/<target>/), and every input that once failed
//! (tests/fixtures/fuzz/<target>/). The named tests below each pin one finding with the
//! behaviour a user would check.
//!
//! Storage is not involved, so both test passes (SQLite and PostgreSQL) run the same checks.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Every input kept for `target`, with its path for the failure message.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = [
        root.join("fuzz/seeds").join(target),
        root.join("fuzz/corpus").join(target),
        root.join("tests/fixtures/fuzz").join(target),
    ];
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).expect("read a kept fuzz input");
            out.push((path, bytes));
        }
    }
    out
}

/// Runs `check` over every kept input of `target`, reporting all that fail, by path.
fn replay(target: &str, check: impl Fn(&[u8])) {
    let inputs = inputs(target);
    assert!(
        inputs.len() >= 2,
        "fuzz/seeds/{target}/ should hold the hand-written seeds; found {} inputs",
        inputs.len()
    );
    let failed: Vec<String> = inputs
        .iter()
        .filter(|(_, bytes)| catch_unwind(AssertUnwindSafe(|| check(bytes))).is_err())
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs fail (replay one with `cargo +nightly fuzz run -O -a -s none {target} FILE` in fuzz/): {failed:#?}",
        failed.len(),
        inputs.len()
    );
}

#[test]
fn feed_inputs_parse_without_panics() {
    replay("feed", checks::feed);
}

#[test]
fn page_inputs_extract_without_panics() {
    replay("page", checks::page);
}

#[test]
fn charset_inputs_decode_without_panics() {
    replay("charset", checks::charset);
}

#[test]
fn config_inputs_load_or_report_positions_inside_the_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::create_dir_all(dir.path().join("watchlists")).expect("watchlists directory");
    replay("config", |data| checks::config(data, dir.path()));
}

#[test]
fn query_inputs_parse_and_match_with_hits_inside_the_text() {
    replay("query", checks::query);
}

#[test]
fn url_inputs_canonicalize_to_a_fixed_point() {
    replay("url", checks::url);
}

#[test]
fn sitemap_inputs_parse_without_panics() {
    replay("sitemap", checks::sitemap);
}

/// Finding (url, fixed-point check): AMP variants nest, and one pass stripped only one level,
/// so a stored key canonicalized again gave another key and dedupe missed the duplicate.
#[test]
fn nested_amp_variants_reduce_to_the_article_and_stay_there() {
    use marsad::normalize::url::canonical_str;
    let cases = [
        ("https://news.example/x/amp/amp", "https://news.example/x"),
        ("https://news.example/x/amp/amp/", "https://news.example/x/"),
        ("https://news.example/amp/amp/x", "https://news.example/x"),
        ("https://news.example/amp/x/amp/", "https://news.example/x/"),
        ("https://news.example/x.amp/amp", "https://news.example/x"),
        ("https://amp.amp.news.example/x", "https://news.example/x"),
    ];
    for (input, expected) in cases {
        let key = canonical_str(input).expect("a valid URL");
        assert_eq!(key, expected, "{input}");
        assert_eq!(canonical_str(&key).expect("a valid URL"), key, "{input}");
    }
    // Single variants keep their meaning: `/amp/` alone is a page called amp.
    assert_eq!(
        canonical_str("https://news.example/amp/").as_deref(),
        Ok("https://news.example/amp/")
    );
    assert_eq!(
        canonical_str("https://news.example/amp").as_deref(),
        Ok("https://news.example/")
    );
}

/// The same reduction on a hostile link (a page may carry any href): 60,000 nested variants
/// must finish (one pass per level over the whole path would be ~10^10 byte copies).
#[test]
fn a_link_of_thousands_of_amp_levels_is_reduced_in_one_pass() {
    let url = format!("https://news.example/x{}", "/amp".repeat(60_000));
    assert_eq!(
        marsad::normalize::url::canonical_str(&url).as_deref(),
        Ok("https://news.example/x")
    );
    let host = format!("https://{}news.example/x", "amp.".repeat(20_000));
    assert_eq!(
        marsad::normalize::url::canonical_str(&host).as_deref(),
        Ok("https://news.example/x")
    );
}

/// Finding (feed, link check): an item whose only URL is a permalink `<guid>` kept the guid's
/// fragment, unlike items with a `<link>` (whose fragment is dropped), so the URL fetched and
/// recorded for it depended on which anchor the publisher put in the guid.
#[test]
fn a_permalink_guid_becomes_the_item_link_without_its_fragment() {
    let base = url::Url::parse("https://news.example/rss.xml").expect("static URL");
    let feed = r#"<rss version="2.0"><channel><title>t</title>
        <item><title>Guid only</title><guid>https://news.example/live/9#update-3</guid></item>
        </channel></rss>"#;
    let items = marsad::extract::parse_feed(feed, &base).expect("a valid feed");
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].url.as_ref().map(url::Url::as_str),
        Some("https://news.example/live/9")
    );
    // The guid itself is the feed's identifier and stays as written.
    assert_eq!(
        items[0].guid.as_deref(),
        Some("https://news.example/live/9#update-3")
    );
}
