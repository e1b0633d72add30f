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
//! After the index, each window runs `STORIES_BENCH_STORE_COUNT` articles (default 20,000; 0
//! skips) through the real store — a SQLite file and a throwaway PostgreSQL database on
//! `MARSAD_TEST_PG` (default postgres://postgres@127.0.0.1:5432/test) — with a `StoryIndex`
//! alongside, and counts decisions that differ from it (expected: 0).
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
/// Articles through the real store per backend and window (`STORIES_BENCH_STORE_COUNT`; 0 skips).
const DEFAULT_STORE_COUNT: usize = 20_000;

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
        window_articles: usize::MAX, // this bench measures the index by time window
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

/// The store a store run writes to.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

fn pg_admin_url() -> String {
    std::env::var("MARSAD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Articles per refresh: what one feed brings at a time; they share one fetch time.
const STORE_BATCH: usize = 20;

/// One run through the real store (`Db::commit_refresh_with`, story assignment inside the
/// refresh transaction), with a `StoryIndex` fed the same articles at the same times alongside:
/// prints articles/s of the commits and of story assignment alone, peak memory, the stored
/// window's size, and how many decisions differ from the index's.
fn run_store(backend: Backend, count: usize, window: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(store_run(backend, count, window));
}

async fn store_run(backend: Backend, count: usize, window: u64) {
    use marsad::model::NewArticle;
    use marsad::store::{Db, RefreshWrite};
    use sqlx::Row;

    let base_memory = peak_memory_kib();
    let dir = tempfile::tempdir().expect("temp dir");
    let pg_name = format!(
        "marsad_bench_stories_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let admin = pg_admin_url();
    let db = match backend {
        Backend::Sqlite => Db::open_sqlite(&dir.path().join("bench.db"))
            .await
            .expect("open SQLite"),
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {admin} (set MARSAD_TEST_PG): {e}"));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {pg_name}")))
                .execute(&pool)
                .await
                .expect("create the bench database");
            pool.close().await;
            let mut url = url::Url::parse(&admin).expect("MARSAD_TEST_PG is a URL");
            url.set_path(&format!("/{pg_name}"));
            Db::open_postgres(url.as_str())
                .await
                .expect("open PostgreSQL")
        }
    };
    let params = StoryParams {
        window: Duration::from_secs(window),
        window_articles: usize::MAX, // this bench measures the index by time window
        threshold: dedupe::DEFAULT_THRESHOLD,
    };
    let mut index = StoryIndex::new(params);
    let mut generator = generator();
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("a date")
        .with_timezone(&chrono::Utc);
    // Store id → index id, to compare where each article went.
    let mut index_id: std::collections::HashMap<i64, u64> = Default::default();
    let mut expected: Vec<(u64, Option<u64>)> = Vec::with_capacity(count);
    let (mut committing, mut sizes) = (Duration::ZERO, Vec::new());
    let assigning_before = dedupe::store_assignment_time();
    let mut n = 0usize;
    while n < count {
        let batch = STORE_BATCH.min(count - n);
        let fetched = start + chrono::Duration::seconds(n as i64);
        let mut articles = Vec::with_capacity(batch);
        for i in n..n + batch {
            let (_, title, body) = generator.article();
            let placement = index.insert(i as u64, n as i64, dedupe::signature(&title, &body));
            expected.push((i as u64, placement.joined.map(|(id, _)| id)));
            articles.push((
                NewArticle {
                    source: "bench".into(),
                    url: format!("https://bench.test/{i}"),
                    raw_url: format!("https://bench.test/{i}"),
                    guid: None,
                    content_hash: marsad::normalize::text::content_hash(&title, &body),
                    signature: None,
                    title,
                    body,
                    published: None,
                    language: None,
                    author: None,
                },
                Vec::new(),
            ));
        }
        let write = RefreshWrite {
            source: "bench".into(),
            started: fetched,
            finished: fetched,
            outcome: "ok",
            http_status: Some(200),
            validators: None,
            error: None,
            items: batch,
            articles,
            seen_urls: Vec::new(),
            next_run: None,
            release_lease: None,
        };
        let started = Instant::now();
        let outcome = db
            .commit_refresh_with(write, &params)
            .await
            .expect("commit a refresh");
        committing += started.elapsed();
        assert_eq!(outcome.new.len(), batch, "every generated article is new");
        for (k, id) in outcome.new.iter().enumerate() {
            index_id.insert(*id, (n + k) as u64);
        }
        n += batch;
        if n % (count / 4).max(STORE_BATCH) < STORE_BATCH {
            sizes.push((n, story_tables_kib(&db).await));
        }
    }
    let assigning = dedupe::store_assignment_time() - assigning_before;
    let memory = peak_memory_kib();
    // Where the store put each article: the article it joined, as an index id.
    let mut differ = 0usize;
    let rows = match &db {
        Db::Sqlite(pool, _) => sqlx::query("SELECT id, story_via FROM articles ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("read placements")
            .into_iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<Option<i64>, _>(1)))
            .collect::<Vec<_>>(),
        Db::Pg(pool, _) => sqlx::query("SELECT id, story_via FROM articles ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("read placements")
            .into_iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<Option<i64>, _>(1)))
            .collect::<Vec<_>>(),
    };
    for (id, via) in rows {
        let (i, want) = expected[index_id[&id] as usize];
        debug_assert_eq!(i, index_id[&id]);
        if via.map(|v| index_id[&v]) != want {
            differ += 1;
        }
    }
    let sizes: Vec<String> = sizes
        .iter()
        .map(|(n, kib)| format!("{n}: {:.1} MiB", *kib as f64 / 1024.0))
        .collect();
    println!(
        "store {:<8}  window {:>6} articles  {count:>8} articles  {:>9.0} articles/s committed  {:>9.0} articles/s story assignment  peak memory {:>7.1} MiB (process {:.1} MiB)  story tables {}  decisions unlike StoryIndex {differ}",
        backend.name(),
        window,
        count as f64 / committing.as_secs_f64(),
        count as f64 / assigning.as_secs_f64(),
        (memory - base_memory) as f64 / 1024.0,
        memory as f64 / 1024.0,
        sizes.join(", "),
    );
    db.close().await;
    if backend == Backend::Postgres
        && let Ok(pool) = sqlx::PgPool::connect(&admin).await
    {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"
        )))
        .execute(&pool)
        .await;
        pool.close().await;
    }
}

/// Size of the tables story assignment reads and writes (signatures and their indexes).
async fn story_tables_kib(db: &marsad::store::Db) -> u64 {
    use sqlx::Row;
    match db {
        marsad::store::Db::Sqlite(pool, _) => {
            // Without the dbstat table: pages in use of the whole file (articles included).
            let pages: i64 = sqlx::query("SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count())")
                .fetch_one(pool)
                .await
                .map(|r| r.get(0))
                .unwrap_or(0);
            let size: i64 = sqlx::query("SELECT page_size FROM pragma_page_size()")
                .fetch_one(pool)
                .await
                .map(|r| r.get(0))
                .unwrap_or(0);
            (pages * size / 1024) as u64
        }
        marsad::store::Db::Pg(pool, _) => {
            sqlx::query("SELECT (pg_total_relation_size('article_signatures')) / 1024")
                .fetch_one(pool)
                .await
                .map(|r| r.get::<i64, _>(0) as u64)
                .unwrap_or(0)
        }
    }
}

fn main() {
    let count: usize = std::env::var("STORIES_BENCH_COUNT")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let store_count: usize = std::env::var("STORIES_BENCH_STORE_COUNT")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_STORE_COUNT)
        .min(count);
    if let Ok(window) = std::env::var("STORIES_BENCH_CHILD_WINDOW") {
        let window: u64 = window.parse().expect("window");
        if let Ok(store) = std::env::var("STORIES_BENCH_STORE") {
            let backend = match store.as_str() {
                "postgres" => Backend::Postgres,
                _ => Backend::Sqlite,
            };
            run_store(backend, count, window);
        } else if std::env::var("STORIES_BENCH_PEER").is_ok() {
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
    let child = |window: u64, kind: &str, n: usize| {
        let mut cmd = Command::new(&exe);
        cmd.env("STORIES_BENCH_CHILD_WINDOW", window.to_string())
            .env("STORIES_BENCH_COUNT", n.to_string());
        match kind {
            "peer" => {
                cmd.env("STORIES_BENCH_PEER", "1");
            }
            "sqlite" | "postgres" => {
                cmd.env("STORIES_BENCH_STORE", kind);
            }
            _ => {}
        }
        let status = cmd.status().expect("run the bench child");
        assert!(status.success(), "bench child failed");
    };
    for window in WINDOWS {
        child(window, "index", count);
        if store_count > 0 {
            child(window, "sqlite", store_count);
            child(window, "postgres", store_count);
        }
    }
    child(PEER_WINDOW, "index", PEER_COUNT.min(count));
    child(PEER_WINDOW, "peer", PEER_COUNT.min(count));
}
