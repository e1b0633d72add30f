//! Scale benchmark: one full refresh of N loopback sources — RSS feeds of 20 items and, one source
//! in 10, HTML sites (a listing page linking 20 article pages); one in 20 slow, one in 20 failing —
//! on SQLite and PostgreSQL, 1 vs 3 daemons on PostgreSQL, and, in the same run over the same
//! sources, a Python reference (feedparser for feeds, the standard library's HTMLParser for pages)
//! with a thread pool of the same size as marsad's concurrency. Prints a table; its CPU % column
//! is how busy the whole machine was (all cores, loopback server and database included), which
//! tells a run limited by the machine from one limited by waiting.
//!
//! The text is generated (a fixed-seed generator over a 4,000-word vocabulary): unrelated
//! articles share few word pairs, every 10th item is a near-duplicate shared by 5 sources, one
//! item in 10 matches the watchlist.
//!
//! Each row is the run of median time of `MARSAD_BENCH_RUNS` (default 3 up to N = 1,000, 1 above;
//! `runs` and `±%`, the spread of their times, say which).
//!
//! `cargo bench --bench scale`; `MARSAD_BENCH_MAX_N=1000` caps N for quick runs (default 10000),
//! `MARSAD_BENCH_N=3000,5000` measures other sizes, `MARSAD_BENCH_SQLITE_ONLY=1` leaves PostgreSQL
//! out, `MARSAD_BENCH_NO_REFERENCE=1` the Python run; `MARSAD_BENCH_LATENCY_N` (default 1000, 0
//! for none) and `MARSAD_BENCH_LATENCY_MS` (default 200) size a last run of 1 vs 3 daemons whose
//! sources answer after that delay, as remote sites do;
//! `MARSAD_TEST_PG` names the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/test).
//! Needs python3 with feedparser (`pip install feedparser`). Loopback only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use marsad::demo::{Route, StaticServer};
use sqlx::Row;

const CONCURRENCY: usize = 32;
/// Items per feed and article links per listing page.
const ITEMS: usize = 20;

/// Deterministic pseudo-random numbers (splitmix64), so every run serves the same text.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A vocabulary of 4,000 Arabic-letter words: articles drawn from it share few word pairs, as
/// unrelated news articles do, so story detection has realistic (small) candidate sets.
fn vocabulary() -> Vec<String> {
    let letters: Vec<char> = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي".chars().collect();
    let mut rng = Rng::new(7);
    let mut seen = std::collections::HashSet::new();
    let mut words = Vec::new();
    while words.len() < 4_000 {
        let len = 3 + rng.below(4);
        let w: String = (0..len)
            .map(|_| letters[rng.below(letters.len())])
            .collect();
        if seen.insert(w.clone()) {
            words.push(w);
        }
    }
    words
}

fn words(vocab: &[String], rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| vocab[rng.below(vocab.len())].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Title and text of item `j` of source `i`. Every 10th item is a wire story shared by five
/// neighbouring sources (same text, a few words changed: near-duplicates, one story); one item
/// in 10 mentions Lebanon (the watchlist's term).
fn article(vocab: &[String], i: usize, j: usize) -> (String, String) {
    let (seed, shared) = if j.is_multiple_of(10) {
        ((i / 5 * 1_000 + j) as u64 | 1 << 40, true)
    } else {
        ((i * 1_000 + j) as u64, false)
    };
    let mut rng = Rng::new(seed);
    let mut title = words(vocab, &mut rng, 8);
    let mut body = words(vocab, &mut rng, 90);
    if shared {
        let mut own = Rng::new((i * 1_000 + j) as u64);
        body.push(' ');
        body.push_str(&words(vocab, &mut own, 4));
    }
    if (i + j) % 10 == 3 {
        title.push_str(" لبنان");
    }
    (title, body)
}

fn feed(vocab: &[String], i: usize) -> String {
    let mut items = String::new();
    for j in 0..ITEMS {
        let (title, body) = article(vocab, i, j);
        items.push_str(&format!(
            "<item><title>{title}</title>\
             <link>http://bench.test/{i}/{j}</link><guid>b-{i}-{j}</guid>\
             <description>{body}</description><pubDate>Tue, 24 Nov 2026 10:{:02}:00 GMT</pubDate></item>\n",
            j % 60
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>bench {i}</title>\
         <link>http://bench.test/{i}</link>\n{items}</channel></rss>"
    )
}

/// Site furniture around every HTML page, as news sites have.
fn chrome(title: &str, main: &str) -> String {
    let nav: String = (0..30)
        .map(|k| format!("<li><a href=\"/section/{k}\">قسم {k}</a></li>"))
        .collect();
    format!(
        "<!doctype html><html lang=\"ar\" dir=\"rtl\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/site.css\"></head><body><header><nav><ul>{nav}</ul></nav></header>\
         <main>{main}</main><footer><p>جميع الحقوق محفوظة</p><ul>{nav}</ul></footer></body></html>"
    )
}

fn listing(i: usize) -> String {
    let links: String = (0..ITEMS)
        .map(|j| format!("<li><a class=\"post\" href=\"/h/{i}/{j}.html\">خبر {j}</a></li>"))
        .collect();
    chrome(
        &format!("موقع {i}"),
        &format!("<ul class=\"posts\">{links}</ul>"),
    )
}

fn page(vocab: &[String], i: usize, j: usize) -> String {
    let (title, body) = article(vocab, i, j);
    let paragraphs: String = body
        .split(' ')
        .collect::<Vec<_>>()
        .chunks(30)
        .map(|c| format!("<p>{}</p>", c.join(" ")))
        .collect();
    chrome(
        &title,
        &format!(
            "<article><h1>{title}</h1><time datetime=\"2026-11-24T10:{:02}:00Z\"></time>\
             <div class=\"body\">{paragraphs}</div></article><aside>اقرأ أيضاً</aside>",
            j % 60
        ),
    )
}

/// Every 10th source (offset 3) is an HTML site: a listing page and its article pages.
fn is_html(i: usize) -> bool {
    i % 10 == 3
}

/// Every 20th source is slow (400 ms more), every 20th (offset 15) fails with 500; with
/// `latency`, every response (article pages too) waits that long first, as a remote site's would.
fn routes(n: usize, latency: Option<Duration>) -> HashMap<String, Route> {
    let vocab = vocabulary();
    let mut routes = HashMap::new();
    for i in 0..n {
        let mut route = if is_html(i) {
            for j in 0..ITEMS {
                let mut page = Route::new("text/html; charset=utf-8", page(&vocab, i, j));
                if let Some(latency) = latency {
                    page = page.with_delay(latency);
                }
                routes.insert(format!("/h/{i}/{j}.html"), page);
            }
            Route::new("text/html; charset=utf-8", listing(i))
        } else {
            Route::new("application/rss+xml", feed(&vocab, i))
        };
        let slow = if i % 20 == 5 {
            Duration::from_millis(400)
        } else {
            Duration::ZERO
        };
        if let Some(delay) = latency.map_or(Some(slow), |l| Some(l + slow))
            && !delay.is_zero()
        {
            route = route.with_delay(delay);
        }
        if i % 20 == 15 {
            route = route.with_status(500);
        }
        routes.insert(source_path(i), route);
    }
    routes
}

fn source_path(i: usize) -> String {
    if is_html(i) {
        format!("/h/{i}/")
    } else {
        format!("/f/{i}.xml")
    }
}

/// Every source is on the one loopback host, so the per-host limits are lifted (`per_host`,
/// `min_delay`): they stand for N different sites.
fn write_config(dir: &Path, base: &str, n: usize, storage: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("watchlists")).expect("mkdir");
    std::fs::write(
        dir.join("watchlists/lebanon.toml"),
        "[terms]\nlebanon = [\"لبنان\", \"Lebanon\"]\n[match]\nquery = \"lebanon\"\n",
    )
    .expect("watchlist");
    let mut sources = String::new();
    for i in 0..n {
        let url = format!("{base}{}", source_path(i));
        if is_html(i) {
            sources.push_str(&format!(
                "[[source]]\nid = \"s{i}\"\nkind = \"html\"\nurl = \"{url}\"\n\
                 [source.listing]\nlinks = \"a.post\"\n[source.article]\ntitle = \"h1\"\nbody = \".body\"\n\
                 published = \"time[datetime]\"\n\n"
            ));
        } else {
            sources.push_str(&format!(
                "[[source]]\nid = \"s{i}\"\nkind = \"feed\"\nurl = \"{url}\"\n\n"
            ));
        }
    }
    std::fs::write(dir.join("sources.toml"), sources).expect("sources");
    let config = dir.join("marsad.toml");
    std::fs::write(
        &config,
        format!(
            "sources = \"sources.toml\"\nwatchlists = \"watchlists\"\n[storage]\nurl = \"{storage}\"\n\
             [http]\ntimeout = \"5s\"\nconcurrency = {CONCURRENCY}\nper_host = {CONCURRENCY}\nmin_delay = \"0s\"\n\
             [schedule]\npoll = \"@daily\"\n[mail]\ntransport = \"outbox\"\n"
        ),
    )
    .expect("config");
    config
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs marsad processes until `done` says so (or they exit); returns (seconds, peak RSS of the
/// largest process in KiB).
async fn run_until(
    mut children: Vec<tokio::process::Child>,
    done: impl AsyncFn() -> bool,
) -> (f64, u64) {
    let start = Instant::now();
    let mut peak = 0;
    loop {
        for c in &children {
            if let Some(kb) = c.id().and_then(vm_hwm_kb) {
                peak = peak.max(kb);
            }
        }
        let mut all_exited = true;
        for c in &mut children {
            if c.try_wait().expect("poll").is_none() {
                all_exited = false;
            }
        }
        if all_exited || done().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    for c in &mut children {
        let _ = c.start_kill();
        let _ = c.wait().await;
    }
    (secs, peak)
}

fn marsad(config: &Path, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("MARSAD_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start marsad")
}

enum Store {
    Sqlite(PathBuf),
    Pg {
        name: String,
        url: String,
        /// One connection kept for the harness's polls: a connection per poll (20 a second)
        /// made the server fork a backend each time, CPU taken from the daemons measured.
        conn: tokio::sync::OnceCell<sqlx::PgPool>,
    },
}

fn pg_admin() -> String {
    std::env::var("MARSAD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

impl Store {
    async fn new(pg: bool, dir: &Path, tag: &str) -> Store {
        if !pg {
            return Store::Sqlite(dir.join("marsad.db"));
        }
        let name = format!("marsad_bench_{}_{tag}", std::process::id());
        let admin = sqlx::PgPool::connect(&pg_admin())
            .await
            .expect("PostgreSQL reachable (MARSAD_TEST_PG)");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&admin)
        .await
        .expect("drop");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create database");
        admin.close().await;
        let mut url = url::Url::parse(&pg_admin()).expect("url");
        url.set_path(&format!("/{name}"));
        Store::Pg {
            name,
            url: url.to_string(),
            conn: tokio::sync::OnceCell::new(),
        }
    }

    fn url(&self) -> String {
        match self {
            Store::Sqlite(p) => format!("sqlite://{}", p.display()),
            Store::Pg { url, .. } => url.clone(),
        }
    }

    async fn scalar(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            Store::Sqlite(p) => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(p)
                    .read_only(true);
                let pool = sqlx::SqlitePool::connect_with(opts).await.expect("open");
                let v = sqlx::query(sql)
                    .fetch_one(&pool)
                    .await
                    .map(|r| r.get::<i64, _>(0));
                pool.close().await;
                v.unwrap_or(0)
            }
            Store::Pg { url, conn, .. } => {
                let pool = conn
                    .get_or_init(async || {
                        sqlx::postgres::PgPoolOptions::new()
                            .max_connections(1)
                            .connect(url)
                            .await
                            .expect("connect")
                    })
                    .await;
                sqlx::query(sql)
                    .fetch_one(pool)
                    .await
                    .map(|r| r.get::<i64, _>(0))
                    .unwrap_or(0)
            }
        }
    }

    async fn size_bytes(&self) -> i64 {
        match self {
            Store::Sqlite(p) => {
                let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len() as i64).unwrap_or(0);
                size(p.clone()) + size(PathBuf::from(format!("{}-wal", p.display())))
            }
            Store::Pg { .. } => {
                self.scalar("SELECT pg_database_size(current_database())")
                    .await
            }
        }
    }

    async fn drop_db(&self) {
        if let Store::Pg { name, conn, .. } = self {
            if let Some(pool) = conn.get() {
                pool.close().await;
            }
            let admin = sqlx::PgPool::connect(&pg_admin()).await.expect("connect");
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&admin)
            .await;
            admin.close().await;
        }
    }
}

struct Row_ {
    what: String,
    n: usize,
    secs: f64,
    articles: i64,
    rss_kb: u64,
    db_mb: f64,
    /// How busy the whole machine was meanwhile, in % of all its cores (server and database too).
    cpu_pct: f64,
}

/// The run of median time among runs of one configuration, and the spread of their times
/// ((slowest - fastest) / median, in %; 0 for a single run).
fn median(mut runs: Vec<Row_>) -> (Row_, f64) {
    runs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let spread = match (runs.first(), runs.last()) {
        (Some(fast), Some(slow)) => (slow.secs - fast.secs) * 100.0,
        _ => 0.0,
    };
    let mid = runs.swap_remove(runs.len() / 2);
    let spread = spread / mid.secs;
    (mid, spread)
}

/// The machine's (busy, total) CPU time so far, in clock ticks, from /proc/stat.
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    // idle and iowait are the 4th and 5th fields
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn busy_pct(before: (u64, u64), after: (u64, u64)) -> f64 {
    let (busy, total) = (after.0 - before.0, after.1 - before.1);
    if total == 0 {
        f64::NAN
    } else {
        busy as f64 * 100.0 / total as f64
    }
}

async fn marsad_run(base: &str, n: usize, pg: bool, daemons: usize) -> Row_ {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::new(pg, dir.path(), &format!("{n}_{daemons}")).await;
    let config = write_config(dir.path(), base, n, &store.url());
    // Migrate once, outside the measurement.
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"))
        .arg("--config")
        .arg(&config)
        .args(["status", "--json"])
        .stdout(Stdio::null())
        .status()
        .await
        .expect("status");
    assert!(status.success());
    let cpu_before = cpu_ticks();
    let (secs, rss_kb) = if daemons == 0 {
        run_until(vec![marsad(&config, &["fetch"])], async || false).await
    } else {
        let children = (0..daemons).map(|_| marsad(&config, &["run"])).collect();
        run_until(children, async || {
            store
                .scalar("SELECT COUNT(DISTINCT source) FROM fetches")
                .await
                >= n as i64
        })
        .await
    };
    let cpu_pct = busy_pct(cpu_before, cpu_ticks());
    let articles = store.scalar("SELECT COUNT(*) FROM articles").await;
    let fetched = store
        .scalar("SELECT COUNT(DISTINCT source) FROM fetches")
        .await;
    assert_eq!(fetched, n as i64, "every source refreshed once");
    let db_mb = store.size_bytes().await as f64 / 1e6;
    store.drop_db().await;
    let what = match (pg, daemons) {
        (false, _) => "marsad fetch, SQLite".to_string(),
        (true, 0) => "marsad fetch, PostgreSQL".to_string(),
        (true, d) => format!("{d} × marsad run, PostgreSQL"),
    };
    Row_ {
        what,
        n,
        secs,
        articles,
        rss_kb,
        db_mb,
        cpu_pct,
    }
}

async fn feedparser_run(base: &str, n: usize) -> Row_ {
    let dir = tempfile::tempdir().expect("tempdir");
    let urls = dir.path().join("urls.txt");
    let list: String = (0..n)
        .map(|i| {
            let kind = if is_html(i) { "html" } else { "feed" };
            format!("{kind} {base}{}\n", source_path(i))
        })
        .collect();
    std::fs::write(&urls, list).expect("urls");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/feedparser_ref.py");
    let cpu_before = cpu_ticks();
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(&urls)
        .arg(CONCURRENCY.to_string())
        .output()
        .await
        .expect("python3 (pip install feedparser)");
    let cpu_pct = busy_pct(cpu_before, cpu_ticks());
    assert!(
        out.status.success(),
        "feedparser reference failed (pip install feedparser): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("reference JSON");
    Row_ {
        what: format!("python feedparser, {CONCURRENCY} threads"),
        n,
        secs: v["seconds"].as_f64().unwrap_or(f64::NAN),
        articles: v["entries"].as_i64().unwrap_or(0),
        rss_kb: v["peak_rss_kb"].as_u64().unwrap_or(0),
        db_mb: 0.0,
        cpu_pct,
    }
}

fn print_row(r: &Row_, runs: usize, spread_pct: f64) {
    println!(
        "{:<34} {:>6} {:>8.2} {:>10.0} {:>10} {:>10.0} {:>9.1} {:>8.1} {:>6.0} {:>5} {:>6.0}",
        r.what,
        r.n,
        r.secs,
        r.n as f64 / r.secs,
        r.articles,
        r.articles as f64 / r.secs,
        r.rss_kb as f64 / 1024.0,
        r.db_mb,
        r.cpu_pct,
        runs,
        spread_pct
    );
}

fn main() {
    let max_n: usize = std::env::var("MARSAD_BENCH_MAX_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // MARSAD_BENCH_SQLITE_ONLY=1 leaves out the PostgreSQL runs.
    let pg = std::env::var_os("MARSAD_BENCH_SQLITE_ONLY").is_none();
    // MARSAD_BENCH_NO_REFERENCE=1 leaves out the Python reference (for quick comparisons of
    // marsad changes; the reported table has it).
    let reference = std::env::var_os("MARSAD_BENCH_NO_REFERENCE").is_none();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // MARSAD_BENCH_SERVE=N: only serve N sources and write a SQLite configuration for them
        // in MARSAD_BENCH_DIR (or for MARSAD_BENCH_STORAGE), to run (and profile) `marsad
        // fetch` by hand.
        if let Some(n) = std::env::var("MARSAD_BENCH_SERVE")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
        {
            let server = StaticServer::start(routes(n, None)).await.expect("server");
            let dir = PathBuf::from(std::env::var("MARSAD_BENCH_DIR").expect("MARSAD_BENCH_DIR"));
            // MARSAD_BENCH_STORAGE overrides the store (a postgres:// URL, say).
            let storage = std::env::var("MARSAD_BENCH_STORAGE")
                .unwrap_or_else(|_| format!("sqlite://{}", dir.join("marsad.db").display()));
            let config = write_config(&dir, &server.base_url(), n, &storage);
            println!("serving {n} sources; config {}", config.display());
            std::future::pending::<()>().await;
        }
        println!(
            "{:<34} {:>6} {:>8} {:>10} {:>10} {:>10} {:>9} {:>8} {:>6} {:>5} {:>6}",
            "run",
            "N",
            "secs",
            "sources/s",
            "items",
            "items/s",
            "peak MiB",
            "DB MB",
            "CPU %",
            "runs",
            "±%"
        );
        // MARSAD_BENCH_N=3000,5000 measures other sizes (to see where memory levels off).
        let sizes: Vec<usize> = match std::env::var("MARSAD_BENCH_N") {
            Ok(list) => list
                .split(',')
                .map(|n| {
                    n.trim()
                        .parse()
                        .expect("MARSAD_BENCH_N: numbers, comma-separated")
                })
                .collect(),
            Err(_) => vec![100, 1_000, 10_000],
        };
        // MARSAD_BENCH_RUNS: runs of each configuration (default 3 up to N = 1,000, 1 above),
        // taken in rounds (every configuration once, then again), so that a burst of noise on
        // the machine touches all alike; each row is the run of median time.
        let runs_env: Option<usize> = std::env::var("MARSAD_BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse().ok());
        for n in sizes.into_iter().filter(|n| *n <= max_n) {
            let server = StaticServer::start(routes(n, None)).await.expect("server");
            let base = server.base_url();
            let runs = runs_env.unwrap_or(if n <= 1_000 { 3 } else { 1 }).max(1);
            let mut measured: Vec<Vec<Row_>> = Vec::new();
            for _ in 0..runs {
                let mut round = Vec::new();
                if reference {
                    round.push(feedparser_run(&base, n).await);
                }
                round.push(marsad_run(&base, n, false, 0).await);
                if pg {
                    round.push(marsad_run(&base, n, true, 0).await);
                    round.push(marsad_run(&base, n, true, 1).await);
                    round.push(marsad_run(&base, n, true, 3).await);
                }
                for (i, row) in round.into_iter().enumerate() {
                    match measured.get_mut(i) {
                        Some(config) => config.push(row),
                        None => measured.push(vec![row]),
                    }
                }
            }
            // Printed once each size is measured: a long N = 10,000 run that is stopped
            // part-way still reports the sizes it finished.
            for config in measured {
                let count = config.len();
                let (row, spread) = median(config);
                print_row(&row, count, spread);
            }
            server.stop();
        }
        // Daemon scaling where it matters: sources that answer after a network round trip, so
        // that one daemon is limited by its concurrency, not by the machine.
        // MARSAD_BENCH_LATENCY_N (default 1000; 0 leaves it out), MARSAD_BENCH_LATENCY_MS (200).
        let latency_n: usize = std::env::var("MARSAD_BENCH_LATENCY_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000);
        let latency_ms: u64 = std::env::var("MARSAD_BENCH_LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        if pg && latency_n > 0 && latency_n <= max_n {
            println!("with {latency_ms} ms before every response:");
            let server =
                StaticServer::start(routes(latency_n, Some(Duration::from_millis(latency_ms))))
                    .await
                    .expect("server");
            let base = server.base_url();
            for row in [reference.then_some(0), Some(1), Some(3)]
                .into_iter()
                .flatten()
            {
                let r = if row == 0 {
                    feedparser_run(&base, latency_n).await
                } else {
                    marsad_run(&base, latency_n, true, row).await
                };
                print_row(&r, 1, 0.0);
            }
            server.stop();
        }
    });
}
