//! Body extraction on the article-extraction benchmark (181 English news pages with
//! human-annotated main text), side by side: marsad's generic extractor, the `trafilatura`
//! crate and the `dom_smoothie` crate, on the same decoded pages, one core, one run.
//!
//! F1 is computed the way `shared/tools/extraction-score` computes it (word tokens `\w+`,
//! 4-token shingles with multiplicity, per-page tp/fp/fn normalised to sum 1, precision and
//! recall averaged over pages, F1 of the two means). Each extractor's output is also written
//! as JSON Lines to `target/extract-bench/<name>.jsonl` so the Python scorer can check it:
//! `../shared/tools/extraction-score target/extract-bench/marsad.jsonl`.
//!
//! Run: `cargo bench --bench extract` (`-- --rounds N`, default 3: each page's time is its best
//! of N; `-- --only NAME` for one extractor; `-- --page ID-PREFIX` to print outputs).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use marsad::extract::PageContext;

fn corpus_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared/corpus"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no shared/corpus directory beside any ancestor of {}; the benchmark reads its pages from there",
                manifest.display()
            )
        })
}

struct Page {
    id: String,
    url: url::Url,
    html: String,
    truth: String,
}

fn load_pages() -> Vec<Page> {
    let dir = corpus_dir().join("extraction-benchmark");
    let truth_path = dir.join("ground-truth.json");
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&truth_path)
            .unwrap_or_else(|e| panic!("{}: {e}", truth_path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", truth_path.display()));
    let mut pages: Vec<Page> = truth
        .as_object()
        .expect("ground-truth.json is an object")
        .iter()
        .map(|(id, v)| {
            let path = dir.join("html").join(format!("{id}.html.gz"));
            let mut bytes = Vec::new();
            flate2::read::MultiGzDecoder::new(
                std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            )
            .read_to_end(&mut bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (html, _) = marsad::fetch::charset::decode(&bytes, None);
            let url = v["url"]
                .as_str()
                .and_then(|u| url::Url::parse(u).ok())
                .unwrap_or_else(|| url::Url::parse("https://example.invalid/").unwrap());
            Page {
                id: id.clone(),
                url,
                html,
                truth: v["articleBody"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect();
    pages.sort_by(|a, b| a.id.cmp(&b.id));
    pages
}

/// Python's `\w+` for the text at hand: runs of alphanumerics and underscores.
fn tokens(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .collect()
}

fn shingles(text: &str) -> HashMap<Vec<&str>, usize> {
    let toks = tokens(text);
    let mut out = HashMap::new();
    if toks.is_empty() {
        return out;
    }
    if toks.len() < 4 {
        *out.entry(toks).or_insert(0) += 1;
        return out;
    }
    for w in toks.windows(4) {
        *out.entry(w.to_vec()).or_insert(0) += 1;
    }
    out
}

/// (tp, fp, fn) normalised to sum 1.
fn page_counts(truth: &str, pred: &str) -> (f64, f64, f64) {
    let t = shingles(truth);
    let p = shingles(pred);
    let mut tp = 0usize;
    let mut fp = 0usize;
    for (k, &n) in &p {
        let m = t.get(k).copied().unwrap_or(0);
        tp += n.min(m);
        fp += n.saturating_sub(m);
    }
    let fn_ = t
        .iter()
        .map(|(k, &n)| n.saturating_sub(p.get(k).copied().unwrap_or(0)))
        .sum::<usize>();
    let s = (tp + fp + fn_) as f64;
    if s == 0.0 {
        (0.0, 0.0, 0.0)
    } else {
        (tp as f64 / s, fp as f64 / s, fn_ as f64 / s)
    }
}

struct Score {
    precision: f64,
    recall: f64,
    f1: f64,
}

fn score(pages: &[Page], outputs: &[String]) -> Score {
    let ratio = |hit: f64, miss: f64| {
        if hit + miss == 0.0 {
            1.0
        } else {
            hit / (hit + miss)
        }
    };
    let (mut ps, mut rs) = (Vec::new(), Vec::new());
    for (page, out) in pages.iter().zip(outputs) {
        let (tp, fp, fn_) = page_counts(&page.truth, out);
        if tp + fp > 0.0 || fn_ == 0.0 {
            ps.push(ratio(tp, fp));
        }
        if tp + fn_ > 0.0 || fp == 0.0 {
            rs.push(ratio(tp, fn_));
        }
    }
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let (precision, recall) = (mean(&ps), mean(&rs));
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Score {
        precision,
        recall,
        f1,
    }
}

type Run = Box<dyn Fn(&Page) -> String>;

fn extractors() -> Vec<(&'static str, Run)> {
    let marsad_extractor = marsad::extract::extractor();
    let trafilatura_options = trafilatura::Options::default();
    vec![
        (
            "marsad",
            Box::new(move |page: &Page| {
                marsad_extractor
                    .extract(&page.html, &PageContext::new(&page.url))
                    .body
            }),
        ),
        (
            "trafilatura",
            Box::new(move |page: &Page| {
                let mut options = trafilatura_options.clone();
                options.original_url = Some(page.url.clone());
                trafilatura::extract(&page.html, &options)
                    .map(|r| r.content_text)
                    .unwrap_or_default()
            }),
        ),
        (
            "dom_smoothie",
            Box::new(|page: &Page| {
                let config = dom_smoothie::Config {
                    text_mode: dom_smoothie::TextMode::Formatted,
                    ..Default::default()
                };
                dom_smoothie::Readability::new(
                    page.html.as_str(),
                    Some(page.url.as_str()),
                    Some(config),
                )
                .ok()
                .and_then(|mut r| r.parse().ok())
                .map(|a| a.text_content.to_string())
                .unwrap_or_default()
            }),
        ),
        (
            // Not an extractor: parsing alone, the floor every DOM-based extractor here stands on.
            "parse-only",
            Box::new(|page: &Page| {
                let doc = scraper::Html::parse_document(&page.html);
                std::hint::black_box(&doc);
                String::new()
            }),
        ),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let only: Option<&String> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1));
    let mut pages = load_pages();
    // `--page ID-PREFIX`: only the pages whose id starts with it, body printed (debugging).
    let page_filter = args
        .iter()
        .position(|a| a == "--page")
        .and_then(|i| args.get(i + 1));
    if let Some(prefix) = page_filter {
        pages.retain(|p| p.id.starts_with(prefix.as_str()));
    }
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/extract-bench");
    std::fs::create_dir_all(&out_dir).expect("create target/extract-bench");
    let bytes: usize = pages.iter().map(|p| p.html.len()).sum();
    println!(
        "extraction benchmark: {} pages, {:.1} MiB of HTML, best of {rounds} round(s) per page, interleaved, one thread",
        pages.len(),
        bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "{:<14} {:>7} {:>9} {:>7} {:>10} {:>9}",
        "extractor", "F1", "precision", "recall", "pages/s", "ms/page"
    );
    let runs: Vec<(&'static str, Run)> = extractors()
        .into_iter()
        .filter(|(name, _)| only.is_none_or(|o| o == name))
        .collect();
    // Interleaved: each page goes through every extractor in turn, so load from elsewhere on
    // the machine falls on all of them alike; a page's time is its best over the rounds.
    let mut best = vec![vec![Duration::MAX; pages.len()]; runs.len()];
    let mut outputs = vec![Vec::with_capacity(pages.len()); runs.len()];
    for round in 0..rounds {
        for (p, page) in pages.iter().enumerate() {
            for (r, (_, run)) in runs.iter().enumerate() {
                let start = Instant::now();
                let out = run(page);
                let took = start.elapsed();
                best[r][p] = best[r][p].min(took);
                if round == 0 {
                    outputs[r].push(out);
                }
            }
        }
    }
    let mut rows = Vec::new();
    for (r, (name, _)) in runs.iter().enumerate() {
        let name = *name;
        let outputs = &outputs[r];
        let elapsed: Duration = best[r].iter().sum();
        if page_filter.is_some() {
            for (page, out) in pages.iter().zip(outputs) {
                println!(
                    "--- {name} {} ({} bytes of HTML)\n{out}",
                    page.id,
                    page.html.len()
                );
            }
        }
        let s = score(&pages, outputs);
        let per_sec = pages.len() as f64 / elapsed.as_secs_f64();
        println!(
            "{:<14} {:>7.4} {:>9.4} {:>7.4} {:>10.1} {:>9.2}",
            name,
            s.f1,
            s.precision,
            s.recall,
            per_sec,
            1000.0 / per_sec
        );
        let path = out_dir.join(format!("{name}.jsonl"));
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        );
        for (page, out) in pages.iter().zip(outputs) {
            let line = serde_json::json!({"id": page.id, "articleBody": out});
            writeln!(file, "{line}").expect("write bench output");
        }
        rows.push((name, s.f1, per_sec));
    }
    if let Some(&(_, f1, speed)) = rows.iter().find(|r| r.0 == "marsad") {
        for &(name, other_f1, other_speed) in rows
            .iter()
            .filter(|r| r.0 != "marsad" && r.0 != "parse-only")
        {
            println!(
                "marsad vs {name}: F1 {:+.4}, throughput {:.2}x",
                f1 - other_f1,
                speed / other_speed
            );
        }
    }
    println!("outputs: {}/<extractor>.jsonl", out_dir.display());
}
