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

/// Finding (feed, crash-9af5a0f0): feed-rs switches the XML decoder at any `<?xml … encoding=…?>`,
/// not only a leading one. A stray declaration after the first 64 bytes panicked inside
/// quick-xml ("set_encoding() called after prefix buffer was drained"), taking the refresh
/// down; an earlier one silently decoded the rest of the (already UTF-8) feed as windows-1256.
#[test]
fn a_stray_xml_declaration_inside_a_feed_neither_panics_nor_garbles_it() {
    let base = url::Url::parse("https://news.example/rss.xml").expect("static URL");
    for padding in ["", &" ".repeat(200)] {
        let feed = format!(
            r#"<?xml version="1.0"?>{padding}<rss version="2.0"><channel><title>t</title><?xml version="1.0" encoding="windows-1256"?>
            <item><title>وزير الخارجية في بيروت</title><link>https://news.example/a/1</link></item>
            </channel></rss>"#
        );
        let items = marsad::extract::parse_feed(&feed, &base).expect("the feed still parses");
        assert_eq!(items.len(), 1, "padding {}", padding.len());
        assert_eq!(items[0].title, "وزير الخارجية في بيروت");
    }
    // The fuzzer's own input, kept verbatim, must come back as a result (either way), not a panic.
    let found = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz/feed/stray-declaration-crash-9af5a0f0"),
    )
    .expect("fixture");
    let _ = marsad::extract::parse_feed(&String::from_utf8_lossy(&found), &base);
}

/// The same panic through another door: NULs make `\0<\0?` at the start, from which quick-xml
/// guesses UTF-16 for text that is UTF-8, and then `\0`-interleaved declarations are invisible
/// to a rewrite that looks for `<?xml`. NUL is never legal in XML, so it no longer gets that far.
#[test]
fn nul_interleaved_declarations_do_not_panic_the_feed_parser() {
    let base = url::Url::parse("https://news.example/rss.xml").expect("static URL");
    let utf16_lookalike: String = concat!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>"#,
        "                                        ",
        r#"<?xml version="1.0" encoding="windows-1256"?><item><title>x</title></item></channel></rss>"#
    )
    .chars()
    .flat_map(|c| ['\0', c])
    .collect();
    // Whether anything useful comes out of such a document is the parser's call; it must return.
    let _ = marsad::extract::parse_feed(&utf16_lookalike, &base);
}

/// Finding (url, crash-59277695): a stray `%` followed by a hex digit and an escape of a hex
/// digit (`%a%41`) became a new escape once the escape was decoded, so the key changed again
/// on the next pass. A stray `%` is now written `%25`, which is what it means.
#[test]
fn a_stray_percent_sign_cannot_merge_with_a_decoded_escape() {
    use marsad::normalize::url::canonical_str;
    for (input, expected) in [
        (
            "https://news.example/a?q=%a%41T",
            "https://news.example/a?q=%25aAT",
        ),
        (
            "https://news.example/%%41b/x",
            "https://news.example/%25Ab/x",
        ),
        (
            "https://news.example/100%/x",
            "https://news.example/100%25/x",
        ),
    ] {
        let key = canonical_str(input).expect("a valid URL");
        assert_eq!(key, expected, "{input}");
        assert_eq!(canonical_str(&key).expect("a valid URL"), key, "{input}");
    }
    // Escapes that are already right are left alone.
    assert_eq!(
        canonical_str("https://news.example/%25/%2F?a=%e2%82%ac").as_deref(),
        Ok("https://news.example/%25/%2F?a=%E2%82%AC")
    );
}

/// Finding (query corpus replayed here): 540 nested parentheses overflowed the stack of a
/// test thread (2 MiB; the daemon's worker threads are no bigger) in the recursive query
/// parser, aborting the process; a chain of thousands of ANDs is as deep in every later pass.
/// Queries now stop at 64 levels of nesting and 1000 tokens, with a message that says where.
#[test]
fn absurdly_deep_or_long_queries_are_refused_with_a_position() {
    use marsad::matcher::query::parse;
    let groups = vec!["a".to_string()];
    let deep = format!("{}a{}", "(".repeat(300), ")".repeat(300));
    let err = parse(&deep, &groups).expect_err("300 levels are refused");
    assert!(err.message.contains("nested"), "{}", err.message);
    assert_eq!(err.offset, 64, "points at the first parenthesis too many");
    let nots = format!("a AND {}a", "NOT ".repeat(500));
    let err = parse(&nots, &groups).expect_err("500 NOTs are refused");
    assert!(err.message.contains("nested"), "{}", err.message);

    let long = vec!["a"; 3000].join(" AND ");
    let err = parse(&long, &groups).expect_err("a 5999-token chain is refused");
    assert!(err.message.contains("[terms] groups"), "{}", err.message);
    assert!(err.offset < long.len());

    // What stays allowed is deep enough for real use and safe on a small stack.
    let nested_ok = format!("{}a{}", "(".repeat(60), ")".repeat(60));
    assert!(parse(&nested_ok, &groups).is_ok());
}

/// The largest query still accepted (999 tokens, a chain 499 operators deep) compiles and
/// matches on an ordinary 2 MiB test thread.
#[test]
fn the_longest_accepted_query_compiles_and_matches() {
    use marsad::matcher::{ArticleFields, Matcher, WatchlistSpec};
    let query = vec!["a"; 500].join(" AND ");
    let spec = WatchlistSpec {
        name: "long".into(),
        title: "Long".into(),
        fields: vec![marsad::model::Field::Title],
        groups: vec![("a".into(), vec!["بيروت".into()])],
        query,
        ..WatchlistSpec::default()
    };
    let matcher = Matcher::compile(&[spec]).expect("999 tokens are accepted");
    let hit = ArticleFields {
        title: "وصل إلى بيروت",
        ..ArticleFields::default()
    };
    assert_eq!(matcher.match_article(&hit).len(), 1);
    let miss = ArticleFields {
        title: "لا شيء هنا",
        ..ArticleFields::default()
    };
    assert!(matcher.match_article(&miss).is_empty());
}

/// Finding (charset, crash-b6a5d005): chardetng asserts that the TLD hint is one lower-case
/// ASCII label and panics otherwise; `decode_hinted` passed any string through. The fetcher
/// only ever passed a letters-only label, so this was reachable through the public API only.
#[test]
fn a_malformed_tld_hint_is_ignored_not_a_panic() {
    use marsad::fetch::charset::decode_hinted;
    // "مرحبا" in windows-1256, no declaration anywhere: detection has to guess.
    let body = b"<p>\xe3\xd1\xcd\xc8\xc7 \xc8\xdf</p>";
    let (plain, _) = decode_hinted(body, None, None);
    for tld in [".lb", "co.uk", "مصر", "LB", ""] {
        let (text, _) = decode_hinted(body, None, Some(tld));
        assert!(!text.is_empty(), "{tld:?}");
        if tld != "LB" {
            assert_eq!(
                text, plain,
                "a hint that is no TLD changes nothing: {tld:?}"
            );
        }
    }
    // A valid hint still steers detection (upper case is fine: it is lower-cased).
    let (lb, _) = decode_hinted(body, None, Some("LB"));
    assert_eq!(lb, decode_hinted(body, None, Some("lb")).0);
}

/// Finding (url, crash-fbb26313): a non-http URL whose host is only dots (`s://ua@.`) lost its
/// host to the trailing-dot rule, and the result (`s://ua@`) no longer parsed.
#[test]
fn a_host_of_only_dots_is_kept_so_the_key_parses_again() {
    use marsad::normalize::url::canonical_str;
    let key = canonical_str("s://ua@.").expect("a valid URL");
    assert_eq!(canonical_str(&key).as_deref(), Ok(key.as_str()));
    assert_eq!(
        canonical_str("https://news.example./a").as_deref(),
        Ok("https://news.example/a")
    );
}
