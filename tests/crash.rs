//! Crash consistency with real parts: the real binary is SIGKILLed at random moments while it
//! fetches and stores a loopback site of four sources (an HTML listing, an RSS feed that also
//! links some listing articles with tracking parameters, an Atom feed read in full text, and a
//! sitemap; some pages answer slowly so kills land mid-refresh), as `marsad fetch` and as the
//! daemon `marsad run`, and while it sends digests to a real SMTP server (aiosmtpd). A full disk
//! and a read-only database are tested at the end. After every kill the store must be
//! consistent; after a final clean
//! run nothing the site serves may be missing and no digest may be missing or sent twice, apart
//! from the one documented window (killed after the SMTP server accepted, before the run was
//! marked sent: resent once with the same Message-ID).
//!
//! The site's growth and the kill delays come from a seeded generator; the seed is printed, and
//! `MARSAD_CRASH_SEED=N` replays the same site and draws (the delays are scaled to how long runs
//! take on the machine at the time, so a replay lands close to, not exactly on, the same
//! moments). `MARSAD_CRASH_ITERATIONS=N` changes the number of kills per loop.
//!
//! Runs on the suite's backend (SQLite, or PostgreSQL on the second pass); on SQLite it also
//! checks `PRAGMA integrity_check` after every kill.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use marsad::demo::{Route, StaticServer};

// ---------------------------------------------------------------------------------------------
// A seeded generator (SplitMix64): enough randomness for delays and texts, replayable by seed.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn seed(test: &str) -> u64 {
    let seed = std::env::var("MARSAD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("{test}: seed {seed} (replay with MARSAD_CRASH_SEED={seed})");
    seed
}

fn iterations(default: usize) -> usize {
    std::env::var("MARSAD_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// The site: four sources whose articles grow between runs.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// HTML listing `/news/` linking `/news/N.html`.
    Desk,
    /// RSS `/wire.rss`, items stored from the feed itself.
    Wire,
    /// Atom `/world.atom` with `full_text = true`: each entry's page `/world/N` is read.
    World,
    /// Sitemap `/sitemap.xml` listing `/report/N.html`.
    Report,
}

const KINDS: [Kind; 4] = [Kind::Desk, Kind::Wire, Kind::World, Kind::Report];

struct Article {
    n: usize,
    kind: Kind,
    title: String,
    body: Vec<String>,
    /// Should match the `lebanon` watchlist (its title names Beirut).
    lebanon: bool,
    /// The page answers this slowly.
    delay: Option<Duration>,
}

struct Site {
    articles: Vec<Article>,
    /// Desk articles the wire also links, as `/news/N.html?utm_source=wire` (the same article).
    aliases: Vec<usize>,
}

const EN_WORDS: &[&str] = &[
    "harbour",
    "council",
    "budget",
    "weather",
    "river",
    "school",
    "market",
    "railway",
    "museum",
    "festival",
    "bridge",
    "library",
    "farmers",
    "energy",
    "hospital",
    "airport",
    "election",
    "garden",
    "factory",
    "theatre",
    "orchard",
    "tunnel",
    "ferry",
    "stadium",
    "archive",
    "clinic",
    "quarry",
    "vineyard",
    "observatory",
    "bakery",
    "canal",
    "lighthouse",
];
const AR_WORDS: &[&str] = &[
    "الطقس",
    "السوق",
    "المدينة",
    "الحكومة",
    "الميناء",
    "الكهرباء",
    "المدرسة",
    "الطريق",
    "المياه",
    "الزراعة",
    "المكتبة",
    "المستشفى",
    "الجسر",
    "المطار",
    "الحديقة",
    "المصنع",
    "القطار",
    "المتحف",
];

impl Site {
    fn new() -> Site {
        Site {
            articles: Vec::new(),
            aliases: Vec::new(),
        }
    }

    /// Adds up to `per_kind` new articles to each source (and sometimes a wire alias).
    fn grow(&mut self, rng: &mut Rng, per_kind: usize) {
        for kind in KINDS {
            for _ in 0..per_kind {
                let n = self.articles.len() + 1;
                let arabic = rng.chance(40);
                let lebanon = rng.chance(35);
                let words = if arabic { AR_WORDS } else { EN_WORDS };
                let mut pick = |k: usize| -> Vec<&str> {
                    (0..k)
                        .map(|_| words[rng.below(words.len() as u64) as usize])
                        .collect()
                };
                let topic = pick(3).join(" ");
                let title = match (arabic, lebanon) {
                    (true, true) => format!("تقرير رقم {n} عن {topic} في بيروت"),
                    (true, false) => format!("تقرير رقم {n} عن {topic}"),
                    (false, true) => format!("Report {n} on the {topic} in Beirut"),
                    (false, false) => format!("Report {n} on the {topic}"),
                };
                let body = (0..4)
                    .map(|p| {
                        let words = pick(14).join(" ");
                        if arabic {
                            format!("الفقرة {p} من التقرير {n}: {words}.")
                        } else {
                            format!("Paragraph {p} of report {n}: {words}.")
                        }
                    })
                    .collect();
                let delay = rng
                    .chance(40)
                    .then(|| Duration::from_millis(20 + rng.below(100)));
                self.articles.push(Article {
                    n,
                    kind,
                    title,
                    body,
                    lebanon,
                    delay,
                });
                if kind == Kind::Desk && rng.chance(30) {
                    self.aliases.push(n);
                }
            }
        }
    }

    fn path(a: &Article) -> String {
        match a.kind {
            Kind::Desk => format!("/news/{}.html", a.n),
            Kind::Wire => format!("/wire/{}", a.n),
            Kind::World => format!("/world/{}", a.n),
            Kind::Report => format!("/report/{}.html", a.n),
        }
    }

    fn of(&self, kind: Kind) -> impl Iterator<Item = &Article> {
        self.articles.iter().filter(move |a| a.kind == kind)
    }

    fn article(&self, n: usize) -> &Article {
        &self.articles[n - 1]
    }

    fn page(a: &Article) -> String {
        let paragraphs: String = a.body.iter().map(|p| format!("<p>{p}</p>\n")).collect();
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body>\n\
             <nav><a href=\"/\">home</a></nav>\n<article><h1>{t}</h1>\n\
             <time datetime=\"{d}\">{d}</time>\n<div class=\"article-body\">\n{paragraphs}</div>\n\
             </article></body></html>\n",
            t = a.title,
            d = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        )
    }

    /// Sets every route on the server (pages, listing, feeds and sitemap as they are now).
    fn publish(&self, server: &StaticServer) {
        let base = server.base_url();
        for a in &self.articles {
            let mut route = Route::new("text/html; charset=utf-8", Site::page(a));
            if let Some(delay) = a.delay {
                route = route.with_delay(delay);
            }
            server.set_route(&Site::path(a), route);
        }
        let now = chrono::Utc::now();
        let links: String = self
            .of(Kind::Desk)
            .map(|a| {
                format!(
                    "<li><a href=\"{base}{}\">{}</a></li>\n",
                    Site::path(a),
                    a.title
                )
            })
            .collect();
        server.set_route(
            "/news/",
            Route::new(
                "text/html; charset=utf-8",
                format!(
                    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Desk</title></head>\
                     <body><h1>Desk</h1><ul class=\"posts\">\n{links}</ul></body></html>\n"
                ),
            ),
        );
        let mut items: String = self
            .of(Kind::Wire)
            .map(|a| {
                format!(
                    "<item><title>{}</title><link>{base}{}</link><guid isPermaLink=\"false\">wire-{}</guid>\
                     <description>{}</description><pubDate>{}</pubDate></item>\n",
                    a.title,
                    Site::path(a),
                    a.n,
                    a.body.join(" "),
                    now.to_rfc2822()
                )
            })
            .collect();
        for &n in &self.aliases {
            let a = self.article(n);
            items.push_str(&format!(
                "<item><title>{}</title><link>{base}{}?utm_source=wire</link>\
                 <guid isPermaLink=\"false\">wire-alias-{n}</guid><description>{}</description>\
                 <pubDate>{}</pubDate></item>\n",
                a.title,
                Site::path(a),
                a.body.join(" "),
                now.to_rfc2822()
            ));
        }
        server.set_route(
            "/wire.rss",
            Route::new(
                "application/rss+xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
                     <title>Wire</title><link>{base}/</link><description>wire</description>\n{items}</channel></rss>\n"
                ),
            ),
        );
        let entries: String = self
            .of(Kind::World)
            .map(|a| {
                format!(
                    "<entry><title>{}</title><link href=\"{base}{}\"/><id>tag:world.test,2026:{}</id>\
                     <updated>{}</updated><summary>{}</summary></entry>\n",
                    a.title,
                    Site::path(a),
                    a.n,
                    now.to_rfc3339(),
                    a.body[0]
                )
            })
            .collect();
        server.set_route(
            "/world.atom",
            Route::new(
                "application/atom+xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
                     <title>World</title><id>tag:world.test,2026:feed</id><updated>{}</updated>\n{entries}</feed>\n",
                    now.to_rfc3339()
                ),
            ),
        );
        let urls: String = self
            .of(Kind::Report)
            .map(|a| {
                format!(
                    "<url><loc>{base}{}</loc><lastmod>{}</lastmod></url>\n",
                    Site::path(a),
                    now.format("%Y-%m-%dT%H:%M:%SZ")
                )
            })
            .collect();
        server.set_route(
            "/sitemap.xml",
            Route::new(
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                     <urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n{urls}</urlset>\n"
                ),
            ),
        );
    }

    /// Canonical URL of every article the site serves.
    fn canonical(&self, base: &str) -> BTreeSet<String> {
        self.articles
            .iter()
            .map(|a| format!("{base}{}", Site::path(a)))
            .collect()
    }

    /// Every URL the site links an article at.
    fn raw(&self, base: &str) -> BTreeSet<String> {
        let mut out = self.canonical(base);
        for &n in &self.aliases {
            out.insert(format!(
                "{base}{}?utm_source=wire",
                Site::path(self.article(n))
            ));
        }
        out
    }

    /// Feed GUID -> canonical URL of the article it names.
    fn guids(&self, base: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for a in &self.articles {
            let url = format!("{base}{}", Site::path(a));
            match a.kind {
                Kind::Wire => {
                    out.insert(format!("wire-{}", a.n), url);
                }
                Kind::World => {
                    out.insert(format!("tag:world.test,2026:{}", a.n), url);
                }
                Kind::Desk | Kind::Report => {}
            }
        }
        for &n in &self.aliases {
            out.insert(
                format!("wire-alias-{n}"),
                format!("{base}{}", Site::path(self.article(n))),
            );
        }
        out
    }

    /// Canonical URLs of the articles the `lebanon` watchlist must match.
    fn lebanon(&self, base: &str) -> BTreeSet<String> {
        self.articles
            .iter()
            .filter(|a| a.lebanon)
            .map(|a| format!("{base}{}", Site::path(a)))
            .collect()
    }
}

fn sources(base: &str) -> String {
    let article = "[source.article]\ntitle = \"h1\"\nbody = \".article-body\"\npublished = \"time[datetime]\"\n";
    format!(
        "[[source]]\nid = \"desk\"\nname = \"Desk\"\nkind = \"html\"\nurl = \"{base}/news/\"\n\
         [source.listing]\nlinks = \"ul.posts a\"\n{article}\n\
         [[source]]\nid = \"wire\"\nname = \"Wire\"\nkind = \"feed\"\nurl = \"{base}/wire.rss\"\n\n\
         [[source]]\nid = \"world\"\nname = \"World\"\nkind = \"feed\"\nurl = \"{base}/world.atom\"\nfull_text = true\n\n\
         [[source]]\nid = \"report\"\nname = \"Report\"\nkind = \"sitemap\"\nurl = \"{base}/sitemap.xml\"\n{article}"
    )
}

// ---------------------------------------------------------------------------------------------
// Running the binary and killing it.

enum Ended {
    /// SIGKILLed after the delay.
    Killed,
    /// Finished on its own before the delay, taking this long.
    Exited(ExitStatus, Duration),
}

/// Runs `marsad ARGS` and SIGKILLs it after `after` unless it finished first. Its output goes to
/// files in `logs` (returned as text for failure messages).
async fn run_and_kill(
    config: &Path,
    args: &[&str],
    after: Duration,
    logs: &Path,
) -> (Ended, String) {
    let out_path = logs.join("stdout");
    let err_path = logs.join("stderr");
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("MARSAD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn marsad");
    let ended = match tokio::time::timeout(after, child.wait()).await {
        Ok(status) => Ended::Exited(status.expect("wait for marsad"), started.elapsed()),
        Err(_) => {
            child.start_kill().expect("SIGKILL marsad");
            let status = child.wait().await.expect("wait for killed marsad");
            match status.signal() {
                Some(9) => Ended::Killed,
                // It finished just as the timer fired.
                _ => Ended::Exited(status, started.elapsed()),
            }
        }
    };
    let text = format!(
        "stdout:\n{}\nstderr:\n{}",
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    (ended, text)
}

/// The span kill delays are drawn from, following how long runs take on this machine now: a
/// run that finished pulls it towards 1.3 × its duration, a killed run widens it by 8 %, so most
/// runs are killed somewhere between start-up and their last write, and some finish.
struct Window(Duration);

impl Window {
    fn delay(&self, rng: &mut Rng) -> Duration {
        Duration::from_micros(rng.below(self.0.as_micros() as u64))
    }

    fn observe(&mut self, ended: &Ended) {
        self.0 = match ended {
            Ended::Killed => self.0.mul_f64(1.08),
            Ended::Exited(_, took) => (self.0 + took.mul_f64(1.3)) / 2,
        };
    }
}

fn both(o: &std::process::Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o))
}

/// How long a clean `marsad ARGS` takes (the kill delays are spread over this).
async fn timed(env: &Env, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = env.marsad(args).await;
    let took = started.elapsed();
    assert!(out.status.success(), "marsad {args:?}: {}", both(&out));
    took
}

// ---------------------------------------------------------------------------------------------
// What a user checks in the store.

fn set(v: Vec<String>) -> BTreeSet<String> {
    v.into_iter().collect()
}

fn no_dups(what: &str, v: &[String]) {
    let mut seen = BTreeSet::new();
    let dups: Vec<&String> = v.iter().filter(|s| !seen.insert(*s)).collect();
    assert!(dups.is_empty(), "duplicate {what}: {dups:?}");
}

/// The store after any run, killed or not: no duplicate article, URL or GUID, nothing the site
/// does not serve, each GUID and URL on the right article, matches exactly on the articles that
/// should match and never without their article. With `complete`, also nothing missing.
async fn check_store(env: &Env, site: &Site, complete: bool, when: &str) {
    // The killed process's last commit may still be landing (PostgreSQL).
    env.settle().await;
    let base = env.server.base_url();
    if env.pg.is_none() && !env.db_path().exists() {
        assert!(!complete, "{when}: no database file");
        return;
    }
    if env.pg.is_none() {
        let pool = sqlite(&env.db_path()).await;
        let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&pool)
            .await
            .expect("integrity_check");
        assert_eq!(integrity, ["ok"], "{when}: PRAGMA integrity_check");
        let fk = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(&pool)
            .await
            .expect("foreign_key_check");
        assert!(fk.is_empty(), "{when}: {} foreign key violations", fk.len());
        pool.close().await;
    }
    if !complete
        && env
            .try_count("SELECT COUNT(*) FROM articles")
            .await
            .is_err()
    {
        // Killed before the migrations created the tables: nothing stored, nothing to check.
        return;
    }

    let served = site.canonical(&base);
    let stored = env.strings("SELECT url FROM articles").await;
    no_dups(&format!("{when}: articles (canonical URL)"), &stored);
    let stored = set(stored);
    let unknown: Vec<_> = stored.difference(&served).collect();
    assert!(
        unknown.is_empty(),
        "{when}: stored but not served: {unknown:?}"
    );

    let raw = env.strings("SELECT raw_url FROM article_urls").await;
    no_dups(&format!("{when}: raw URLs"), &raw);
    let raw = set(raw);
    let served_raw = site.raw(&base);
    let unknown: Vec<_> = raw.difference(&served_raw).collect();
    assert!(
        unknown.is_empty(),
        "{when}: raw URLs never linked: {unknown:?}"
    );
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM (SELECT url FROM article_urls GROUP BY url \
             HAVING COUNT(DISTINCT article) > 1) d"
        )
        .await,
        0,
        "{when}: one canonical URL on two articles"
    );
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM articles a WHERE NOT EXISTS \
             (SELECT 1 FROM article_urls u WHERE u.article = a.id AND u.url = a.url)"
        )
        .await,
        0,
        "{when}: an article without its own URL recorded"
    );
    // Each URL names the article stored under that canonical URL.
    let pairs = env
        .strings(
            "SELECT u.url || ' ' || a.url FROM article_urls u JOIN articles a ON a.id = u.article",
        )
        .await;
    for pair in &pairs {
        let (u, a) = pair.split_once(' ').expect("pair");
        assert_eq!(u, a, "{when}: a URL recorded on another article");
    }

    let guids = env
        .strings("SELECT g.guid || ' ' || a.url FROM article_guids g JOIN articles a ON a.id = g.article")
        .await;
    no_dups(&format!("{when}: GUIDs"), &guids);
    let served_guids = site.guids(&base);
    for pair in &guids {
        let (guid, url) = pair.split_once(' ').expect("pair");
        assert_eq!(
            served_guids.get(guid).map(String::as_str),
            Some(url),
            "{when}: GUID {guid} on the wrong article"
        );
    }

    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM matches m WHERE NOT EXISTS \
             (SELECT 1 FROM articles a WHERE a.id = m.article)"
        )
        .await,
        0,
        "{when}: a match without its article"
    );
    let matched = env
        .strings(
            "SELECT a.url FROM matches m JOIN articles a ON a.id = m.article \
             WHERE m.watchlist = 'lebanon'",
        )
        .await;
    no_dups(&format!("{when}: lebanon matches"), &matched);
    let should: BTreeSet<String> = site.lebanon(&base).intersection(&stored).cloned().collect();
    assert_eq!(set(matched), should, "{when}: lebanon matches");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM matches WHERE watchlist <> 'lebanon'")
            .await,
        0,
        "{when}: unexpected matches"
    );

    if complete {
        let missing: Vec<_> = served.difference(&stored).collect();
        assert!(missing.is_empty(), "{when}: lost articles: {missing:?}");
        let missing: Vec<_> = served_raw.difference(&raw).collect();
        assert!(
            missing.is_empty(),
            "{when}: raw URLs not recorded: {missing:?}"
        );
        assert_eq!(
            guids.len(),
            served_guids.len(),
            "{when}: GUIDs recorded vs served"
        );
    }
}

// ---------------------------------------------------------------------------------------------

/// `marsad fetch`, SIGKILLed at random moments over and over while the site grows: after every
/// kill the store is consistent, and a final clean fetch leaves exactly what the site serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_killed_at_random_moments_stores_every_article_exactly_once() {
    let seed = seed("fetch");
    let mut rng = Rng(seed);
    let mut site = Site::new();
    site.grow(&mut rng, 5);

    // A first guess; it follows how long the runs take here (see `Window`).
    let mut window = Window(Duration::from_secs(1));
    let env = Env::new(HashMap::new(), sources, OUTBOX_MAIL).await;
    site.publish(&env.server);
    let logs = tempfile::tempdir().expect("log dir");
    let n = iterations(24);
    let (mut killed, mut finished, mut midway) = (0, 0, 0);
    let mut delays = Vec::new();
    for i in 0..n {
        if i > 0 {
            let more = rng.below(4) as usize;
            site.grow(&mut rng, more);
            site.publish(&env.server);
        }
        let delay = window.delay(&mut rng);
        delays.push(delay.as_millis());
        let logged = env
            .try_count("SELECT COUNT(*) FROM fetches")
            .await
            .unwrap_or(0);
        let (ended, output) = run_and_kill(&env.config, &["fetch"], delay, logs.path()).await;
        window.observe(&ended);
        match ended {
            Ended::Killed => {
                killed += 1;
                // Some of the four sources' refreshes committed, not all: killed mid-run.
                let done = env
                    .try_count("SELECT COUNT(*) FROM fetches")
                    .await
                    .unwrap_or(0)
                    - logged;
                if (1..KINDS.len() as i64).contains(&done) {
                    midway += 1;
                }
            }
            Ended::Exited(status, _) => {
                assert!(
                    status.success(),
                    "iteration {i}: fetch after earlier kills failed ({status}): {output}"
                );
                finished += 1;
            }
        }
        check_store(&env, &site, false, &format!("after kill {i} at {delay:?}")).await;
    }
    let out = env.marsad(&["fetch"]).await;
    assert!(out.status.success(), "final fetch: {}", both(&out));
    check_store(&env, &site, true, "after the final clean fetch").await;
    println!(
        "fetch: {n} runs, {killed} killed ({midway} between the commits of two sources), \
         {finished} finished first; delays (ms) {delays:?}; \
         {} articles, {} raw URLs",
        site.articles.len(),
        site.raw(&env.server.base_url()).len()
    );
    assert!(killed > 0, "no run was killed: the kill window is too late");
}

/// `marsad run`, SIGKILLed at random moments while it refreshes the sources: after every kill the
/// store is consistent, and a daemon then left running stores everything the site serves, once.
/// A source leased by a killed daemon is taken over by the next daemon of the same host at start
/// (its holder is known dead), not after the lease expires: with a 10-minute lease the final
/// daemon must still finish within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_killed_at_random_moments_resumes_and_stores_every_article_once() {
    let seed = seed("daemon");
    let mut rng = Rng(seed.rotate_left(29));
    let mut site = Site::new();
    site.grow(&mut rng, 8);
    let env = Env::new(HashMap::new(), sources, OUTBOX_MAIL).await;
    let text = std::fs::read_to_string(&env.config).expect("read marsad.toml");
    let text = text.replace(
        "[schedule]\ntimezone = \"Asia/Beirut\"\n",
        "[schedule]\ntimezone = \"Asia/Beirut\"\nlease = \"10m\"\n",
    );
    assert!(text.contains("lease = \"10m\""), "lease set: {text}");
    std::fs::write(&env.config, text).expect("write marsad.toml");
    site.publish(&env.server);
    let logs = tempfile::tempdir().expect("log dir");

    // A daemon never finishes by itself; the kills spread over the time one refresh round takes.
    let window = Window(Duration::from_millis(1500));
    let n = iterations(24) / 2;
    let mut delays = Vec::new();
    for i in 0..n {
        if i > 0 {
            // News arrives and the poll time comes (without waiting for the clock): every source
            // is due again. Leases a killed daemon held are left as they are.
            let more = rng.below(3) as usize;
            site.grow(&mut rng, more);
            site.publish(&env.server);
            make_all_sources_due(&env).await;
        }
        let delay = window.delay(&mut rng);
        delays.push(delay.as_millis());
        let (ended, output) = run_and_kill(&env.config, &["run"], delay, logs.path()).await;
        assert!(
            matches!(ended, Ended::Killed),
            "iteration {i}: the daemon exited by itself: {output}"
        );
        check_store(
            &env,
            &site,
            false,
            &format!("after daemon kill {i} at {delay:?}"),
        )
        .await;
    }
    let served = site.canonical(&env.server.base_url()).len() as i64;
    let stored_by_killed = env
        .try_count("SELECT COUNT(*) FROM articles")
        .await
        .unwrap_or(0);

    let started = Instant::now();
    let log = logs.path().join("daemon.log");
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"))
        .arg("--config")
        .arg(&env.config)
        .arg("run")
        .env("MARSAD_LOG", "warn,marsad=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("daemon log"))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the daemon");
    loop {
        let stored = env
            .try_count("SELECT COUNT(*) FROM articles")
            .await
            .unwrap_or(0);
        // Every source refreshed since it was last made due, none in flight: done. (All
        // articles stored is not enough: a source still refreshing may only add a link form.)
        let pending = env
            .try_count(
                "SELECT COUNT(*) FROM sources WHERE next_run IS NULL OR lease_owner IS NOT NULL",
            )
            .await
            .unwrap_or(1);
        // Up (its SIGTERM handler installed) and done.
        let up = std::fs::read_to_string(&log).is_ok_and(|l| l.contains("daemon started"));
        if up && stored >= served && pending == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "within 30 s of starting after the kills the daemon stored {stored} of {served} \
             articles, {pending} source(s) still due or refreshing"
        );
        assert!(
            daemon.try_wait().expect("poll the daemon").is_none(),
            "the daemon exited"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    let pid = daemon.id().expect("daemon pid") as libc::pid_t;
    // SAFETY: signalling our own child, which has not been reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM");
    let status = tokio::time::timeout(Duration::from_secs(20), daemon.wait())
        .await
        .expect("the daemon stops within 20 s of SIGTERM")
        .expect("wait for the daemon");
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exits 0 ({status}): {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    check_store(&env, &site, true, "after an undisturbed daemon").await;
    println!(
        "daemon: {n} kills (delays ms {delays:?}); {stored_by_killed} of {served} articles stored \
         by the killed daemons; an undisturbed daemon stored the rest in {took:?}"
    );
}

/// Sets every source's `next_run` to "now", as the poll schedule eventually does.
async fn make_all_sources_due(env: &Env) {
    const SQL: &str = "UPDATE sources SET next_run = NULL";
    match &env.pg {
        Some(pg) => {
            let pool = sqlx::PgPool::connect(&pg.url).await.expect("connect");
            match sqlx::query(SQL).execute(&pool).await {
                Ok(_) => {}
                // A daemon killed before its migrations ran leaves no tables (42P01, undefined
                // table): nothing is due yet.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {}
                Err(e) => panic!("{SQL}: {e}"),
            }
            pool.close().await;
        }
        None => {
            if !env.db_path().exists() {
                return;
            }
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(env.db_path());
            let pool = sqlx::SqlitePool::connect_with(options)
                .await
                .expect("open the database");
            // Before the first stored refresh the table may not exist yet.
            let _ = sqlx::query(SQL).execute(&pool).await;
            pool.close().await;
        }
    }
}

/// Message-IDs of the messages the SMTP server holds, with how many copies of each.
fn received_ids(smtp: &SmtpServer) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for raw in smtp.messages() {
        let msg = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("parsable message");
        let id = msg.message_id().expect("a Message-ID").to_string();
        *out.entry(id).or_insert(0) += 1;
    }
    out
}

/// Records the copies that arrived since `before` as arrivals of `round`.
fn collect(
    smtp: &SmtpServer,
    before: &mut BTreeMap<String, usize>,
    arrivals: &mut BTreeMap<String, Vec<usize>>,
    round: usize,
) {
    let now = received_ids(smtp);
    for (id, &copies) in &now {
        let had = before.get(id).copied().unwrap_or(0);
        for _ in had..copies {
            arrivals.entry(id.clone()).or_default().push(round);
        }
    }
    *before = now;
}

/// Waits until the wall clock enters a new millisecond. A digest's Message-ID names its period's
/// end to the millisecond (`digest::run::message_id`), so two periods ending within one
/// millisecond would share a Message-ID.
async fn next_millisecond() {
    tokio::time::sleep(Duration::from_millis(2)).await;
}

/// `marsad digest send`, SIGKILLed at random moments after each clean fetch of new articles: no
/// digest is lost, none is sent twice except the documented window, and every match reaches one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_send_killed_at_random_moments_sends_every_digest_once() {
    let seed = seed("digest");
    let mut rng = Rng(seed.rotate_left(17));
    let smtp = SmtpServer::start();
    let mail = format!(
        "[mail]\ntransport = \"smtp\"\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"marsad <marsad@test.localhost>\"\n",
        smtp.port
    );
    let env = Env::new(HashMap::new(), sources, &mail).await;
    let logs = tempfile::tempdir().expect("log dir");
    let mut site = Site::new();

    // The first round runs clean and times the send.
    site.grow(&mut rng, 2);
    site.publish(&env.server);
    timed(&env, &["fetch"]).await;
    next_millisecond().await;
    let full = timed(&env, &["digest", "send", "daily"]).await;
    let mut window = Window(full.mul_f64(1.3));
    println!("a clean digest send took {full:?}");
    let mut before = received_ids(&smtp);
    assert_eq!(before.len(), 1, "the first digest arrived");
    // Message-ID -> the rounds in which a copy arrived (round 0 is the clean first one).
    let mut arrivals: BTreeMap<String, Vec<usize>> =
        before.keys().map(|id| (id.clone(), vec![0])).collect();
    let mut killed_rounds = BTreeSet::new();

    let n = iterations(16);
    let mut delays = Vec::new();
    for round in 1..=n + 1 {
        let last = round == n + 1;
        if !last {
            let more = 1 + rng.below(2) as usize;
            site.grow(&mut rng, more);
            site.publish(&env.server);
            let out = env.marsad(&["fetch"]).await;
            assert!(out.status.success(), "round {round}: fetch: {}", both(&out));
        }
        next_millisecond().await;
        // No marsad runs between rounds: a message landing only now is the previous round's.
        collect(&smtp, &mut before, &mut arrivals, round - 1);
        // The last round is the clean final run.
        let delay = if last {
            Duration::from_secs(60)
        } else {
            window.delay(&mut rng)
        };
        let (ended, output) = run_and_kill(
            &env.config,
            &["digest", "send", "daily"],
            delay,
            logs.path(),
        )
        .await;
        window.observe(&ended);
        match ended {
            Ended::Killed => {
                assert!(!last, "the final send took over a minute: {output}");
                killed_rounds.insert(round);
                delays.push(delay.as_millis());
            }
            Ended::Exited(status, _) => assert!(
                status.success(),
                "round {round}: digest send failed ({status}): {output}"
            ),
        }
        // aiosmtpd writes a message before answering 250; give a message whose sender was
        // killed mid-DATA time to land, so it is counted in this round.
        tokio::time::sleep(Duration::from_millis(150)).await;
        collect(&smtp, &mut before, &mut arrivals, round);
        let state = env
            .strings(
                "SELECT message_id || ' ' || state || ' ' || attempts || ' ' || COALESCE(lease_owner, '-') \
                 FROM digest_runs ORDER BY id",
            )
            .await;
        println!(
            "round {round}: {} after {delay:?}; runs {state:?}",
            if killed_rounds.contains(&round) {
                "killed"
            } else {
                "finished"
            }
        );
    }

    // A send with nothing new sends nothing.
    let again = env.marsad(&["digest", "send", "daily"]).await;
    assert!(again.status.success(), "{}", both(&again));
    assert_eq!(received_ids(&smtp), before, "a repeat send sent something");

    let runs = env
        .strings("SELECT message_id FROM digest_runs WHERE digest = 'daily'")
        .await;
    no_dups("Message-IDs of digest runs", &runs);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM digest_runs WHERE state <> 'sent'")
            .await,
        0,
        "every recorded digest is sent after the final run"
    );
    let runs = set(runs);
    let received: BTreeSet<String> = arrivals.keys().cloned().collect();
    assert_eq!(received, runs, "received vs recorded digests");
    // The documented window: the server accepted a message, the sender died before marking it
    // sent, and a later send delivered it again (same Message-ID). So each copy after the first
    // follows a killed round, and a killed round can leave at most one message in that window.
    let mut resent = 0;
    let mut explained = BTreeMap::new();
    for (id, rounds) in &arrivals {
        for pair in rounds.windows(2) {
            let (earlier, later) = (pair[0], pair[1]);
            assert!(
                killed_rounds.contains(&earlier) && later > earlier,
                "{id} arrived again in round {later} after an unkilled send in round {earlier}; \
                 arrivals {rounds:?}, killed rounds {killed_rounds:?}"
            );
            *explained.entry(earlier).or_insert(0) += 1;
            resent += 1;
        }
    }
    for (round, copies) in &explained {
        assert_eq!(
            *copies, 1,
            "round {round} was killed once but left {copies} messages to be resent"
        );
    }
    // Every match of the digest's watchlists falls in a sent period.
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM matches m WHERE NOT EXISTS (SELECT 1 FROM digest_runs r \
             WHERE r.digest = 'daily' AND r.state = 'sent' \
             AND m.matched > r.period_start AND m.matched <= r.period_end)"
        )
        .await,
        0,
        "a match that no sent digest covered"
    );
    assert!(
        env.count("SELECT COUNT(*) FROM matches").await > 0,
        "the site produced matches"
    );
    println!(
        "digest: {n} sends, {} killed (delays ms {delays:?}), {} digests recorded and delivered, \
         {resent} resent once with the same Message-ID (killed between acceptance and marking sent)",
        killed_rounds.len(),
        runs.len()
    );
    assert!(!killed_rounds.is_empty(), "no send was killed");
}

// ---------------------------------------------------------------------------------------------
// A full disk and a read-only database.

/// A tmpfs of its own for the database, mounted for the test and unmounted on drop. Mounting
/// needs root with CAP_SYS_ADMIN (so here and in CI's container when it is privileged); when it
/// is refused the tests say so and use the closest real mechanism instead.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    /// `MARSAD_CRASH_NO_MOUNT=1` refuses, to try the fallbacks where mounting works.
    fn mount(path: &Path, size: &str) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(path).expect("mount point");
        if std::env::var("MARSAD_CRASH_NO_MOUNT").is_ok_and(|v| v == "1") {
            return Err("MARSAD_CRASH_NO_MOUNT=1".to_string());
        }
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if out.status.success() {
            Ok(SmallDisk {
                path: path.to_path_buf(),
            })
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// `mount -o remount,ro` or `rw`: the disk turning read-only, as ext4 does after errors.
    fn remount(&self, mode: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "remount {mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// A configuration on a SQLite file at `db`, whatever backend the suite runs on.
fn sqlite_config(dir: &Path, base: &str, db: &Path) -> std::path::PathBuf {
    let config = write_config(
        dir,
        &sources(base),
        OUTBOX_MAIL,
        "timeout = \"3s\"\nmin_delay = \"0s\"\n",
    );
    set_storage_url(&config, &format!("sqlite://{}", db.display()));
    config
}

/// `PRAGMA integrity_check` and the stored canonical URLs of a SQLite file.
async fn sqlite_state(db: &Path) -> (Vec<String>, BTreeSet<String>) {
    let pool = sqlite(db).await;
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&pool)
        .await
        .expect("integrity_check");
    let urls: Vec<String> = sqlx::query_scalar("SELECT url FROM articles")
        .fetch_all(&pool)
        .await
        .expect("read articles");
    pool.close().await;
    no_dups("articles", &urls);
    (integrity, set(urls))
}

/// Runs `marsad fetch` with a limit on the size of files it writes (RLIMIT_FSIZE) and SIGXFSZ
/// ignored, so a write past the limit fails with EFBIG like a write to a full disk fails.
async fn fetch_with_file_size_limit(config: &Path, bytes: u64) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"));
    cmd.arg("--config")
        .arg(config)
        .arg("fetch")
        .env("MARSAD_LOG", "warn")
        .stdin(Stdio::null());
    // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    cmd.output().await.expect("run marsad")
}

/// Fills the filesystem holding `file` until a write fails with ENOSPC.
fn fill_disk(file: &Path) -> std::fs::File {
    use std::io::Write;
    let mut f = std::fs::File::create(file).expect("filler");
    let chunk = vec![0u8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = f.flush();
    f
}

fn assert_clear(out: &std::process::Output, what: &str, db: &str, needles: &[&str]) {
    let text = both(out);
    println!("{what}: marsad said: {}", stderr(out).trim());
    assert!(!out.status.success(), "{what}: fetch succeeded: {text}");
    assert!(
        text.contains(db),
        "{what}: the message does not name the database {db}: {text}"
    );
    for needle in needles {
        assert!(
            text.contains(needle),
            "{what}: the message does not say \"{needle}\": {text}"
        );
    }
}

/// SQLite on a full disk: `fetch` fails (exit 1) naming the database file and saying to free
/// space, both when the disk is full before it starts and when it fills during the write; once
/// space is freed the file passes `PRAGMA integrity_check` and a fetch stores everything,
/// nothing stored before lost. SQLite-specific (a PostgreSQL server's disk is not ours to fill),
/// so it runs on both passes of the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_disk_fails_clearly_and_corrupts_nothing() {
    let mut rng = Rng(seed("full disk"));
    let mut site = Site::new();
    site.grow(&mut rng, 3);
    let server = StaticServer::start(HashMap::new())
        .await
        .expect("start test HTTP server");
    site.publish(&server);
    let base = server.base_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let disk_dir = dir.path().join("disk");
    let mounted = SmallDisk::mount(&disk_dir, "4m");
    let db = disk_dir.join("marsad.db");
    let db_name = db.display().to_string();
    let config = sqlite_config(dir.path(), &base, &db);

    let out = run_marsad(&config, &["fetch"]).await;
    assert!(out.status.success(), "first fetch: {}", both(&out));
    let (_, before) = sqlite_state(&db).await;
    assert_eq!(before, site.canonical(&base));

    // News arrives while the disk is full: long articles, so the write needs room.
    site.grow(&mut rng, 12);
    site.publish(&server);
    let filler = disk_dir.join("filler");
    match &mounted {
        Ok(_) => {
            let file = fill_disk(&filler);
            let out = run_marsad(&config, &["fetch"]).await;
            assert_clear(
                &out,
                "disk full at start",
                &db_name,
                &["full", "free space"],
            );

            // Room to open the database (its 32 KiB shared-memory file), not to store the news.
            let len = file.metadata().expect("filler size").len();
            file.set_len(len.saturating_sub(48 * 1024))
                .expect("free some space");
            let out = run_marsad(&config, &["fetch"]).await;
            assert_clear(
                &out,
                "disk full while writing",
                &db_name,
                &["full", "free space"],
            );
            drop(file);
            std::fs::remove_file(&filler).expect("free the disk");
        }
        Err(why) => {
            println!(
                "mounting a small tmpfs was refused ({why}); the disk fills by RLIMIT_FSIZE \
                 instead (writes past the limit fail with EFBIG)"
            );
            let size = std::fs::metadata(&db).expect("database file").len();
            let out = fetch_with_file_size_limit(&config, size).await;
            assert_clear(&out, "file size limit", &db_name, &["disk"]);
        }
    }
    let (integrity, kept) = sqlite_state(&db).await;
    assert_eq!(integrity, ["ok"], "integrity after the failed fetches");
    assert!(
        kept.is_superset(&before),
        "articles lost by the failed fetches"
    );

    let out = run_marsad(&config, &["fetch"]).await;
    assert!(
        out.status.success(),
        "fetch with space again: {}",
        both(&out)
    );
    let (integrity, after) = sqlite_state(&db).await;
    assert_eq!(integrity, ["ok"]);
    assert_eq!(
        after,
        site.canonical(&base),
        "everything stored once space is back"
    );
}

/// A read-only database: `fetch` fails naming the database and saying how to make it writable;
/// once it is writable again nothing is lost and the news is stored. On SQLite the disk is
/// remounted read-only (or, where mounting is refused, the file and folder are not writable for
/// the user marsad runs as); on PostgreSQL the database is set `default_transaction_read_only`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_fails_clearly_and_loses_nothing() {
    let mut rng = Rng(seed("read-only"));
    let mut site = Site::new();
    site.grow(&mut rng, 3);
    if test_storage_is_postgres() {
        let env = Env::new(HashMap::new(), sources, OUTBOX_MAIL).await;
        site.publish(&env.server);
        let out = env.marsad(&["fetch"]).await;
        assert!(out.status.success(), "first fetch: {}", both(&out));
        let pg = env.pg.as_ref().expect("a PostgreSQL database");
        let admin = sqlx::PgPool::connect(&pg_admin_url())
            .await
            .expect("connect to PostgreSQL");
        let set_read_only = |on: bool| {
            let sql = if on {
                format!(
                    "ALTER DATABASE {} SET default_transaction_read_only = on",
                    pg.name
                )
            } else {
                format!(
                    "ALTER DATABASE {} RESET default_transaction_read_only",
                    pg.name
                )
            };
            let admin = admin.clone();
            async move {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&admin)
                    .await
                    .expect("ALTER DATABASE");
            }
        };
        set_read_only(true).await;
        site.grow(&mut rng, 3);
        site.publish(&env.server);
        let out = env.marsad(&["fetch"]).await;
        assert_clear(&out, "read-only PostgreSQL", &pg.name, &["read-only"]);
        set_read_only(false).await;
        admin.close().await;
        let out = env.marsad(&["fetch"]).await;
        assert!(out.status.success(), "fetch once writable: {}", both(&out));
        check_store(
            &env,
            &site,
            true,
            "after the read-only database became writable",
        )
        .await;
        return;
    }

    let server = StaticServer::start(HashMap::new())
        .await
        .expect("start test HTTP server");
    site.publish(&server);
    let base = server.base_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let disk_dir = dir.path().join("disk");
    let mounted = SmallDisk::mount(&disk_dir, "8m");
    let db = disk_dir.join("marsad.db");
    let db_name = db.display().to_string();
    let config = sqlite_config(dir.path(), &base, &db);
    let out = run_marsad(&config, &["fetch"]).await;
    assert!(out.status.success(), "first fetch: {}", both(&out));
    let (_, before) = sqlite_state(&db).await;

    site.grow(&mut rng, 3);
    site.publish(&server);
    let out = match &mounted {
        Ok(disk) => {
            disk.remount("ro");
            let out = run_marsad(&config, &["fetch"]).await;
            disk.remount("rw");
            out
        }
        Err(why) => {
            use std::os::unix::fs::PermissionsExt;
            println!(
                "mounting a small tmpfs was refused ({why}); the database file and its folder \
                 are made not writable for the user marsad runs as instead"
            );
            let mode = |p: &Path, m: u32| {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
            };
            mode(dir.path(), 0o755);
            mode(&disk_dir, 0o555);
            mode(&db, 0o444);
            // Root ignores permission bits: run marsad as nobody then.
            let out = if unsafe { libc::geteuid() } == 0 {
                tokio::process::Command::new("setpriv")
                    .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                    .arg(env!("CARGO_BIN_EXE_marsad"))
                    .arg("--config")
                    .arg(&config)
                    .arg("fetch")
                    .env("MARSAD_LOG", "warn")
                    .stdin(Stdio::null())
                    .output()
                    .await
                    .expect("setpriv (util-linux) runs marsad as nobody")
            } else {
                run_marsad(&config, &["fetch"]).await
            };
            mode(&disk_dir, 0o755);
            mode(&db, 0o644);
            out
        }
    };
    assert_clear(&out, "read-only SQLite", &db_name, &["writable"]);
    let (integrity, kept) = sqlite_state(&db).await;
    assert_eq!(integrity, ["ok"]);
    assert_eq!(kept, before, "the read-only run changed nothing");
    let out = run_marsad(&config, &["fetch"]).await;
    assert!(out.status.success(), "fetch once writable: {}", both(&out));
    let (integrity, after) = sqlite_state(&db).await;
    assert_eq!(integrity, ["ok"]);
    assert_eq!(
        after,
        site.canonical(&base),
        "everything stored once writable"
    );
}
