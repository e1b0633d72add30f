//! Near-duplicate detection measured on a labelled fixture set (tests/fixtures/stories/docs.jsonl,
//! written for this project): 12 topics, 6 English and 6 Arabic, each with story A in three
//! versions (original; wire rewrite with a new headline and lede; short version of two
//! paragraphs) and story B, another event on the same topic sharing its vocabulary, in two
//! versions. Every pair of documents is labelled "same story" or not by their `story` field.
//!
//! The test prints precision and recall of the production decision (MinHash overlap ≥ the
//! default threshold) next to the alternatives it was chosen over (SimHash; other shingle sizes),
//! and asserts the production figures stay at the level reached.

use marsad::dedupe::{self, Signature, simhash};

struct Doc {
    id: String,
    topic: String,
    story: String,
    title: String,
    body: String,
}

fn docs() -> Vec<Doc> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stories/docs.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("read the story fixtures");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let s = |k: &str| v[k].as_str().expect(k).to_string();
            Doc {
                id: s("id"),
                topic: s("topic"),
                story: s("story"),
                title: s("title"),
                body: s("body"),
            }
        })
        .collect()
}

#[derive(Default, Debug)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
    tn: usize,
}

impl Counts {
    fn add(&mut self, same: bool, said_same: bool) {
        match (same, said_same) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
}

/// Every pair of documents as (i, j, same story?).
fn pairs(docs: &[Doc]) -> Vec<(usize, usize, bool)> {
    let mut out = Vec::new();
    for i in 0..docs.len() {
        for j in i + 1..docs.len() {
            out.push((i, j, docs[i].story == docs[j].story));
        }
    }
    out
}

fn exact_overlap(a: &[u64], b: &[u64]) -> f64 {
    let set: std::collections::HashSet<&u64> = a.iter().collect();
    let common = b.iter().filter(|x| set.contains(x)).count();
    common as f64 / a.len().min(b.len()).max(1) as f64
}

#[test]
fn same_story_precision_and_recall_on_the_fixtures() {
    let docs = docs();
    assert_eq!(
        docs.len(),
        60,
        "fixture set changed; update the figures below"
    );
    let pairs = pairs(&docs);
    let same = pairs.iter().filter(|p| p.2).count();
    let hard = pairs
        .iter()
        .filter(|&&(i, j, s)| !s && docs[i].topic == docs[j].topic)
        .count();
    println!(
        "{} documents, {} pairs: {same} same story, {hard} different stories on the same topic, {} unrelated",
        docs.len(),
        pairs.len(),
        pairs.len() - same - hard
    );

    // Production: MinHash overlap estimate on SHINGLE-word shingles, default threshold.
    let sigs: Vec<Signature> = docs
        .iter()
        .map(|d| dedupe::signature(&d.title, &d.body))
        .collect();
    let keys: Vec<_> = sigs.iter().map(|s| s.band_keys()).collect();
    let mut prod = Counts::default();
    for &(i, j, s) in &pairs {
        // What the store does for a pair: a candidate only when a band key is shared.
        let candidate = keys[i].iter().any(|k| keys[j].contains(k));
        let joined = candidate
            && dedupe::best_match(&sigs[i], [(j, &sigs[j])], dedupe::DEFAULT_THRESHOLD).is_some();
        prod.add(s, joined);
        if s != joined {
            println!(
                "  minhash {} {} vs {}: similarity {:.2}",
                if s { "missed" } else { "wrongly joined" },
                docs[i].id,
                docs[j].id,
                sigs[i].similarity(&sigs[j])
            );
        }
    }
    println!(
        "minhash+lsh (k={}, {}-word shingles, overlap >= {}): precision {:.3} recall {:.3} {:?}",
        dedupe::minhash::K,
        dedupe::SHINGLE,
        dedupe::DEFAULT_THRESHOLD,
        prod.precision(),
        prod.recall(),
        prod
    );

    // Clustering as the store does it (StoryIndex: LSH candidates, best match, join its story),
    // documents arriving in file order and in reverse: a pair is "same" when it ends up in one
    // story, directly or through a third version.
    let mut clustered = Vec::new();
    for reverse in [false, true] {
        let mut order: Vec<usize> = (0..docs.len()).collect();
        if reverse {
            order.reverse();
        }
        let mut index = dedupe::StoryIndex::new(dedupe::StoryParams::default());
        let mut story = vec![0u64; docs.len()];
        for (t, &i) in order.iter().enumerate() {
            story[i] = index.insert(i as u64, t as i64, sigs[i].clone()).story;
        }
        let mut c = Counts::default();
        for &(i, j, s) in &pairs {
            c.add(s, story[i] == story[j]);
        }
        println!(
            "clustered ({}): precision {:.3} recall {:.3} {c:?}",
            if reverse {
                "reverse order"
            } else {
                "file order"
            },
            c.precision(),
            c.recall()
        );
        clustered.push(c);
    }

    // The same signatures at other thresholds.
    for threshold in [0.25, 0.3, 0.35, 0.4, 0.45] {
        let mut c = Counts::default();
        for &(i, j, s) in &pairs {
            c.add(
                s,
                dedupe::best_match(&sigs[i], [(j, &sigs[j])], threshold).is_some(),
            );
        }
        println!(
            "minhash, overlap >= {threshold}: precision {:.3} recall {:.3}",
            c.precision(),
            c.recall()
        );
    }
    let (mut lowest_same, mut highest_different) = (1.0_f64, 0.0_f64);
    for &(i, j, s) in &pairs {
        let sim = sigs[i].similarity(&sigs[j]);
        if s {
            lowest_same = lowest_same.min(sim);
        } else {
            highest_different = highest_different.max(sim);
        }
    }
    println!(
        "minhash: lowest same-story similarity {lowest_same:.2}, highest different-story {highest_different:.2}"
    );

    // The alternatives, for the record.
    let words: Vec<Vec<u64>> = docs
        .iter()
        .map(|d| dedupe::word_hashes(&d.title, &d.body))
        .collect();
    for n in 1..=3 {
        let shingles: Vec<Vec<u64>> = words.iter().map(|w| dedupe::shingles_n(w, n)).collect();
        for threshold in [0.3, 0.4, 0.5, 0.6] {
            let mut c = Counts::default();
            for &(i, j, s) in &pairs {
                c.add(s, exact_overlap(&shingles[i], &shingles[j]) >= threshold);
            }
            println!(
                "exact overlap, {n}-word shingles, >= {threshold}: precision {:.3} recall {:.3}",
                c.precision(),
                c.recall()
            );
        }
        let prints: Vec<u64> = shingles.iter().map(|s| simhash::fingerprint(s)).collect();
        for threshold in [0.75, 0.8, 0.85, 0.9] {
            let mut c = Counts::default();
            for &(i, j, s) in &pairs {
                c.add(s, simhash::similarity(prints[i], prints[j]) >= threshold);
            }
            println!(
                "simhash, {n}-word shingles, equal bits >= {threshold}: precision {:.3} recall {:.3}",
                c.precision(),
                c.recall()
            );
        }
    }

    for c in clustered.iter().chain([&prod]) {
        assert!(c.precision() >= 0.95, "precision fell: {c:?}");
        assert!(c.recall() >= 0.95, "recall fell: {c:?}");
    }
}
