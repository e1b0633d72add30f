//! The real Arabic news pages of `shared/corpus/html/arabic`: every field their
//! `*.expected.json` asserts (title, full body or must / must-not snippets, publication date,
//! language) is what marsad's extractor gives, read the way the pipeline reads a page.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use marsad::extract::{PageContext, extractor};
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared/corpus"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no shared/corpus directory beside any ancestor of {}; these tests read the corpus",
                manifest.display()
            )
        })
}

/// Word tokens (`\w+`) and 4-token shingles, as `shared/tools/extraction-score` counts them.
fn shingles(text: &str) -> HashMap<Vec<&str>, usize> {
    let toks: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = HashMap::new();
    if toks.len() < 4 {
        if !toks.is_empty() {
            out.insert(toks, 1);
        }
        return out;
    }
    for w in toks.windows(4) {
        *out.entry(w.to_vec()).or_insert(0) += 1;
    }
    out
}

fn f1(truth: &str, pred: &str) -> f64 {
    let (t, p) = (shingles(truth), shingles(pred));
    let tp: usize = p
        .iter()
        .map(|(k, n)| (*n).min(t.get(k).copied().unwrap_or(0)))
        .sum();
    let (np, nt): (usize, usize) = (p.values().sum(), t.values().sum());
    if tp == 0 {
        return 0.0;
    }
    let (precision, recall) = (tp as f64 / np as f64, tp as f64 / nt as f64);
    2.0 * precision * recall / (precision + recall)
}

/// Where each publisher is: its day is the day the upstream suites assert. A source's
/// `timezone` in sources.toml plays this part in the pipeline.
fn publisher_zone(url: &str) -> chrono_tz::Tz {
    use chrono_tz::{Africa, Asia, Europe};
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    match host.trim_start_matches("www.") {
        "albayan.ae" => Asia::Dubai,
        "alyaum.com" => Asia::Riyadh,
        "almadenahnews.com" => Asia::Amman,
        "beirutobserver.com" | "lbcgroup.tv" => Asia::Beirut,
        "arabic.sputniknews.com" => Europe::Moscow,
        "assabah.com.tn" => Africa::Tunis,
        "youm7.com" | "akhbarelyom.com" | "elbaladtv.net" => Africa::Cairo,
        _ => chrono_tz::UTC,
    }
}

fn read_page(path: &Path) -> String {
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(
            std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out
    } else {
        std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    marsad::fetch::charset::decode(&bytes, None).0
}

fn clean(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn arabic_pages_meet_every_expectation() {
    let dir = corpus_dir().join("html/arabic");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".expected.json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 11, "the corpus README lists 11 pages");
    let mut failures = Vec::new();
    let (mut titles, mut bodies, mut snippets, mut dates) = (0, 0, 0, 0);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let html = read_page(&dir.join(expected["html_file"].as_str().unwrap()));
        let url_text = expected["url"].as_str().unwrap();
        let url = url::Url::parse(url_text).unwrap();
        let zone = publisher_zone(url_text);
        let got = extractor().extract(&html, &PageContext::new(&url).with_timezone(Some(zone)));

        if got.language.as_deref() != expected["language"].as_str() {
            failures.push(format!("{name}: language {:?}", got.language));
        }
        if let Some(want) = expected["title"].as_str() {
            titles += 1;
            if clean(want) != got.title {
                failures.push(format!("{name}: title {:?}, want {want:?}", got.title));
            }
        }
        if let Some(want) = expected["body"].as_str() {
            bodies += 1;
            let score = f1(want, &got.body);
            println!("{name}: body F1 {score:.3}");
            if score < 0.9 {
                failures.push(format!("{name}: body F1 {score:.3} < 0.9"));
            }
        }
        for snippet in expected["body_contains"].as_array().into_iter().flatten() {
            snippets += 1;
            let s = snippet.as_str().unwrap();
            if !got.body.contains(s) {
                failures.push(format!("{name}: body lacks {s:?}"));
            }
        }
        for snippet in expected["body_not_contains"]
            .as_array()
            .into_iter()
            .flatten()
        {
            snippets += 1;
            let s = snippet.as_str().unwrap();
            if got.body.contains(s) {
                failures.push(format!("{name}: body has boilerplate {s:?}"));
            }
        }
        if let Some(want) = expected["published"].as_str() {
            dates += 1;
            let ok = if want.len() == 10 {
                let day = NaiveDate::parse_from_str(want, "%Y-%m-%d").unwrap();
                got.published
                    .is_some_and(|p| p.with_timezone(&zone).date_naive() == day)
            } else {
                let instant = DateTime::parse_from_rfc3339(want)
                    .unwrap()
                    .with_timezone(&Utc);
                got.published == Some(instant)
            };
            if !ok {
                failures.push(format!(
                    "{name}: published {:?} (in {zone}), want {want}",
                    got.published.map(|p| p.with_timezone(&zone).to_rfc3339())
                ));
            }
        }
    }
    println!(
        "checked {titles} titles, {bodies} full bodies, {snippets} snippets, {dates} dates on {} pages",
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The depth guard against hostile nesting must leave real pages alone: every page of the
/// extraction benchmark and of the Arabic set passes through it unchanged.
#[test]
fn real_pages_are_untouched_by_the_depth_guard() {
    let mut pages = 0;
    for folder in ["extraction-benchmark/html", "html/arabic"] {
        let dir = corpus_dir().join(folder);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("corpus entry").path();
            let name = path.to_string_lossy().into_owned();
            if !path.is_file() {
                continue;
            }
            let bytes = std::fs::read(&path).expect("read page");
            let html = if name.ends_with(".html.gz") {
                let mut text = String::new();
                flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_string(&mut text)
                    .map(|_| text)
                    .unwrap_or_default()
            } else if name.ends_with(".html") {
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                continue;
            };
            if html.is_empty() {
                continue;
            }
            pages += 1;
            assert!(
                matches!(
                    marsad::extract::depth::flatten_deep(&html),
                    std::borrow::Cow::Borrowed(_)
                ),
                "{name} was changed by the depth guard"
            );
        }
    }
    assert!(pages > 180, "only {pages} pages read");
}
