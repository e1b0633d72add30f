//! Story clustering throughput and memory: synthetic articles through the same code the store
//! uses (`dedupe::signature` then `StoryIndex::insert`: LSH candidates, `best_match`).
//!
//! Articles are generated from a fixed vocabulary (half Latin-script, half Arabic-script
//! pseudo-words, Zipf-like frequencies), one per second of synthetic time; `DUP_RATE` of them are
//! copies of a recent article with `EDIT_RATE` of their words replaced and a new headline. Each
//! window size runs in its own child process so its peak memory (VmHWM) is its own. The named
//! peer is a brute-force scan of the window with the same signatures (no LSH), on fewer
//! articles.
//!
//! `STORIES_BENCH_COUNT` caps the number of articles (default 1,000,000) for quick runs:
//! `STORIES_BENCH_COUNT=50000 cargo bench --bench stories`.

use std::process::Command;
use std::time::{Duration, Instant};

use marsad::dedupe::{self, Signature, StoryIndex, StoryParams};

const DUP_RATE: f64 = 0.3;
const EDIT_RATE: f64 = 0.1;
const VOCABULARY: usize = 30_000;
const WORDS: usize = 120;
/// Window sizes in seconds of synthetic time (= articles in the window).
const WINDOWS: [u64; 2] = [20_000, 80_000];
const PEER_COUNT: usize = 20_000;
const PEER_WINDOW: u64 = 5_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Roughly Zipf-distributed index below `n` (frequent words are frequent).
    fn zipf(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((n as f64).powf(u) - 1.0) as usize % n
    }
}

fn vocabulary() -> Vec<String> {
    let latin = [
        "ba", "ko", "ri", "sa", "tem", "lo", "ni", "dar", "vel", "mu", "pe", "stra",
    ];
    let arabic = [
        "بل", "كا", "سم", "رو", "نا", "قد", "مي", "عل", "فت", "حر", "جو", "ست",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..VOCABULARY)
        .map(|i| {
            let syllables = if i % 2 == 0 { &latin } else { &arabic };
            let n = 2 + (rng.next() % 3) as usize;
            (0..n)
                .map(|_| syllables[(rng.next() % syllables.len() as u64) as usize])
                .collect()
        })
        .collect()
}

struct Generator {
    rng: Rng,
    vocab: Vec<String>,
    recent: Vec<(u64, Vec<usize>)>,
    next_story: u64,
}

impl Generator {
    /// The next article: (ground-truth story, title, body).
    fn article(&mut self) -> (u64, String, String) {
        let lang = (self.rng.next() % 2) as usize;
        let (story, words) = if !self.recent.is_empty() && self.rng.unit() < DUP_RATE {
            let i = (self.rng.next() % self.recent.len() as u64) as usize;
            let (story, original) = self.recent[i].clone();
            let edited = original
                .iter()
                .map(|&w| {
                    if self.rng.unit() < EDIT_RATE {
                        self.word(w % 2)
                    } else {
                        w
                    }
                })
                .collect();
            (story, edited)
        } else {
            let story = self.next_story;
            self.next_story += 1;
            let words: Vec<usize> = (0..WORDS).map(|_| self.word(lang)).collect();
            if self.recent.len() < 1000 {
                self.recent.push((story, words.clone()));
            } else {
                let i = (self.rng.next() % 1000) as usize;
                self.recent[i] = (story, words.clone());
            }
            (story, words)
        };
        let title_words: Vec<usize> = (0..8).map(|_| self.word(lang)).collect();
        let title: Vec<&str> = title_words
            .iter()
            .map(|&w| self.vocab[w].as_str())
            .collect();
        let mut body = String::with_capacity(words.len() * 8);
        for (i, &w) in words.iter().enumerate() {
            body.push_str(&self.vocab[w]);
            body.push_str(if i % 15 == 14 { ". " } else { " " });
        }
        (story, title.join(" "), body)
    }

    fn word(&mut self, lang: usize) -> usize {
        (self.rng.zipf(VOCABULARY / 2) * 2 + lang) % VOCABULARY
    }
}

fn generator() -> Generator {
    Generator {
        rng: Rng(0x2545_f491_4f6c_dd1d),
        vocab: vocabulary(),
        recent: Vec::new(),
        next_story: 0,
    }
}

/// CPU time this process has used (user + system), from /proc/self/stat: under a loaded machine
/// it, unlike wall time, still tells what one core can do.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Clock ticks are 100 per second on Linux (USER_HZ).
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds spent only generating `count` articles, to subtract from a run's CPU time.
fn generation_cpu(count: usize) -> f64 {
    let mut generator = generator();
    let started = cpu_seconds();
    let mut bytes = 0usize;
    for _ in 0..count {
        let (_, title, body) = generator.article();
        bytes += title.len() + body.len();
    }
    std::hint::black_box(bytes);
    cpu_seconds() - started
}

fn peak_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One run in this process: prints one result line.
fn run_lsh(count: usize, window: u64) {
    let base = peak_memory_kib();
    let mut generator = generator();
    let mut index = StoryIndex::new(StoryParams {
        window: Duration::from_secs(window),
        threshold: dedupe::DEFAULT_THRESHOLD,
    });
    let mut truth_to_story: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    let (mut copies, mut copies_joined, mut joined) = (0u64, 0u64, 0u64);
    let mut clustering = Duration::ZERO;
    let mut signing = Duration::ZERO;
    let cpu_started = cpu_seconds();
    for i in 0..count {
        let (truth, title, body) = generator.article();
        let started = Instant::now();
        let sig = dedupe::signature(&title, &body);
        signing += started.elapsed();
        let placement = index.insert(i as u64, i as i64, sig);
        clustering += started.elapsed();
        joined += u64::from(placement.joined.is_some());
        match truth_to_story.get(&truth) {
            Some(&story) => {
                copies += 1;
                copies_joined += u64::from(story == placement.story);
            }
            None => {
                truth_to_story.insert(truth, placement.story);
            }
        }
        if truth_to_story.len() > 200_000 {
            truth_to_story.clear();
        }
    }
    let cpu = cpu_seconds() - cpu_started;
    let memory = peak_memory_kib();
    let cpu = cpu - generation_cpu(count);
    let secs = clustering.as_secs_f64();
    println!(
        "minhash+lsh  window {:>6} articles  {count:>8} articles  {:>9.0} articles/s per CPU second ({:.0}/s wall)  peak memory {:>7.1} MiB (process {:.1} MiB)  joined {:.1}%  planted copies found {:.1}%  (signatures {:.0}% of the time)",
        window,
        count as f64 / cpu,
        count as f64 / secs,
        (memory - base) as f64 / 1024.0,
        memory as f64 / 1024.0,
        100.0 * joined as f64 / count as f64,
        100.0 * copies_joined as f64 / copies.max(1) as f64,
        100.0 * signing.as_secs_f64() / secs,
    );
}

/// The peer: every article compared with every article of the window, same signatures.
fn run_brute_force(count: usize, window: u64) {
    let mut generator = generator();
    let mut recent: std::collections::VecDeque<(i64, Signature)> = Default::default();
    let mut clustering = Duration::ZERO;
    let cpu_started = cpu_seconds();
    for i in 0..count {
        let (_, title, body) = generator.article();
        let started = Instant::now();
        let sig = dedupe::signature(&title, &body);
        while recent
            .front()
            .is_some_and(|(t, _)| *t < i as i64 - window as i64)
        {
            recent.pop_front();
        }
        let _ = dedupe::best_match(
            &sig,
            recent.iter().map(|(t, s)| (*t, s)),
            dedupe::DEFAULT_THRESHOLD,
        );
        recent.push_back((i as i64, sig));
        clustering += started.elapsed();
    }
    let cpu = cpu_seconds() - cpu_started - generation_cpu(count);
    println!(
        "brute force  window {:>6} articles  {count:>8} articles  {:>9.0} articles/s per CPU second ({:.0}/s wall)",
        window,
        count as f64 / cpu,
        count as f64 / clustering.as_secs_f64()
    );
}

fn main() {
    let count: usize = std::env::var("STORIES_BENCH_COUNT")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    if let Ok(window) = std::env::var("STORIES_BENCH_CHILD_WINDOW") {
        let window: u64 = window.parse().expect("window");
        if std::env::var("STORIES_BENCH_PEER").is_ok() {
            run_brute_force(count, window);
        } else {
            run_lsh(count, window);
        }
        return;
    }
    println!(
        "story clustering: {count} synthetic articles, {:.0}% near-copies with {:.0}% of words edited, one core",
        DUP_RATE * 100.0,
        EDIT_RATE * 100.0
    );
    let exe = std::env::current_exe().expect("own path");
    let child = |window: u64, peer: bool, n: usize| {
        let mut cmd = Command::new(&exe);
        cmd.env("STORIES_BENCH_CHILD_WINDOW", window.to_string())
            .env("STORIES_BENCH_COUNT", n.to_string());
        if peer {
            cmd.env("STORIES_BENCH_PEER", "1");
        }
        let status = cmd.status().expect("run the bench child");
        assert!(status.success(), "bench child failed");
    };
    for window in WINDOWS {
        child(window, false, count);
    }
    child(PEER_WINDOW, false, PEER_COUNT.min(count));
    child(PEER_WINDOW, true, PEER_COUNT.min(count));
}
