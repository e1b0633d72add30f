//! The stored story path decides like the benchmarked in-memory `StoryIndex`: a few hundred
//! generated articles go through the real store (`commit_refresh_with`, on the backend the pass
//! runs on), and the same articles at the same times through a `StoryIndex`; every article must
//! join the same article (or start a story) in both.
//!
//! The set is built to exercise what a plain "shares a band" lookup gets wrong: half of the
//! articles end with the same boilerplate paragraph, so some band keys are held by more than
//! `MAX_BUCKET` articles of the window, and short items that are mostly that boilerplate would
//! join an unrelated article through those keys if crowded keys were not skipped. Near-copies
//! (rewrites, short versions) are planted so joining is exercised too, and the window is short
//! enough that articles leave it during the run.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use marsad::dedupe::{self, StoryIndex, StoryParams};
use marsad::model::NewArticle;
use marsad::store::{Db, RefreshWrite};

const WINDOW_SECS: i64 = 240;
const PER_REFRESH: usize = 4;
const REFRESHES: usize = 100;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pseudo-words from syllables: text no one wrote, with a vocabulary big enough that unrelated
/// articles rarely share a two-word shingle except in the boilerplate.
fn vocabulary(rng: &mut Rng) -> Vec<String> {
    let syllables = [
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zu", "bel", "dor", "fen", "gar", "hul",
    ];
    let mut words: Vec<String> = (0..4000)
        .map(|_| {
            (0..2 + rng.below(3))
                .map(|_| syllables[rng.below(syllables.len())])
                .collect()
        })
        .collect();
    words.sort();
    words.dedup();
    words
}

struct Generated {
    title: String,
    body: String,
}

/// Articles in arrival order. Kinds, by position: fresh text; fresh text plus the boilerplate;
/// a rewrite (a tenth of the words replaced) or a short version (the first 40%) of a recent
/// article; the boilerplate with two words of a recent boilerplate article.
fn articles() -> Vec<Generated> {
    let mut rng = Rng(0x005e_ed0f_5700_0e1e);
    let vocab = vocabulary(&mut rng);
    let pick = |rng: &mut Rng, n: usize| -> Vec<String> {
        (0..n)
            .map(|_| vocab[rng.below(vocab.len())].clone())
            .collect()
    };
    let boilerplate = pick(&mut rng, 50);
    let mut recent: Vec<Vec<String>> = Vec::new();
    let mut recent_crowd: Vec<Vec<String>> = Vec::new();
    let mut out = Vec::new();
    for n in 0..PER_REFRESH * REFRESHES {
        let title = pick(&mut rng, 6).join(" ");
        let words: Vec<String> = match n % 10 {
            0..=2 => pick(&mut rng, 110),
            3..=7 => {
                let mut w = pick(&mut rng, 110);
                w.extend(boilerplate.iter().cloned());
                recent_crowd.push(w[..110].to_vec());
                w
            }
            8 if !recent.is_empty() => {
                let original = &recent[recent.len() - 1 - rng.below(recent.len().min(30))];
                if rng.below(2) == 0 {
                    let replacements = pick(&mut rng, original.len());
                    original
                        .iter()
                        .zip(replacements)
                        .map(|(w, r)| if rng.below(10) == 0 { r } else { w.clone() })
                        .collect()
                } else {
                    original[..original.len() * 2 / 5].to_vec()
                }
            }
            _ if !recent_crowd.is_empty() => {
                let own =
                    &recent_crowd[recent_crowd.len() - 1 - rng.below(recent_crowd.len().min(30))];
                let mut w = own[..2].to_vec();
                w.extend(boilerplate.iter().cloned());
                w
            }
            _ => pick(&mut rng, 110),
        };
        if n % 10 <= 7 {
            recent.push(words.clone());
        }
        let mut body = String::new();
        for (i, w) in words.iter().enumerate() {
            body.push_str(w);
            body.push_str(if i % 12 == 11 { ". " } else { " " });
        }
        out.push(Generated { title, body });
    }
    out
}

async fn open_store() -> (Db, Option<common::PgDatabase>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    if common::test_storage_is_postgres() {
        let pg = common::PgDatabase::create().await;
        let db = Db::open_postgres(&pg.url).await.expect("open PostgreSQL");
        (db, Some(pg), dir)
    } else {
        let db = Db::open_sqlite(&dir.path().join("stories.db"))
            .await
            .expect("open SQLite");
        (db, None, dir)
    }
}

fn refresh(n: usize, fetched: DateTime<Utc>, batch: &[Generated]) -> RefreshWrite {
    RefreshWrite {
        source: "generated".into(),
        started: fetched,
        finished: fetched,
        outcome: "ok",
        http_status: Some(200),
        validators: None,
        error: None,
        items: batch.len(),
        articles: batch
            .iter()
            .enumerate()
            .map(|(k, a)| {
                let url = format!("https://generated.test/{}", n + k);
                (
                    NewArticle {
                        source: "generated".into(),
                        url: url.clone(),
                        raw_url: url,
                        guid: None,
                        title: a.title.clone(),
                        body: a.body.clone(),
                        published: None,
                        language: None,
                        author: None,
                        content_hash: marsad::normalize::text::content_hash(&a.title, &a.body),
                        signature: None,
                    },
                    Vec::new(),
                )
            })
            .collect(),
        seen_urls: Vec::new(),
        next_run: None,
        release_lease: None,
    }
}

#[tokio::test]
async fn the_store_joins_the_same_stories_as_the_in_memory_index() {
    let articles = articles();
    let params = StoryParams {
        window: Duration::from_secs(WINDOW_SECS as u64),
        threshold: dedupe::DEFAULT_THRESHOLD,
        ..StoryParams::default()
    };
    let (db, _pg, _dir) = open_store().await;
    let mut index = StoryIndex::new(params);
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();

    // What the index decided, by store id: the article joined (None: a new story).
    let mut expected: HashMap<i64, Option<i64>> = HashMap::new();
    // The same decision without skipping crowded keys, to show the set exercises the skip.
    let mut window: Vec<(i64, i64, dedupe::Signature)> = Vec::new();
    let mut differs_without_skip = 0;
    let mut most_crowded = 0usize;
    for (r, batch) in articles.chunks(PER_REFRESH).enumerate() {
        let time = (r * PER_REFRESH) as i64;
        let fetched = t0 + chrono::Duration::seconds(time);
        let outcome = db
            .commit_refresh_with(refresh(r * PER_REFRESH, fetched, batch), &params)
            .await
            .expect("commit a refresh");
        assert_eq!(
            outcome.new.len(),
            batch.len(),
            "every generated article is new"
        );
        for (id, a) in outcome.new.iter().zip(batch) {
            let sig = dedupe::signature(&a.title, &a.body);
            let placement = index.insert(*id as u64, time, sig.clone());
            let joined = placement.joined.map(|(via, _)| via as i64);
            expected.insert(*id, joined);

            window.retain(|(_, t, _)| *t >= time - WINDOW_SECS);
            let keys = sig.band_keys();
            let mut bucket: HashMap<u64, usize> = HashMap::new();
            for (_, _, s) in &window {
                for k in s.band_keys() {
                    if keys.contains(&k) && s.shingles >= dedupe::MIN_SHINGLES {
                        *bucket.entry(k).or_default() += 1;
                    }
                }
            }
            most_crowded = most_crowded.max(bucket.values().copied().max().unwrap_or(0));
            let unskipped = dedupe::best_match(
                &sig,
                window
                    .iter()
                    .filter(|(_, _, s)| s.band_keys().iter().any(|k| keys.contains(k)))
                    .map(|(id, _, s)| (*id, s)),
                params.threshold,
            )
            .map(|(via, _)| via);
            differs_without_skip += usize::from(unskipped != joined);
            window.push((*id, time, sig));
        }
    }
    assert!(
        most_crowded > dedupe::MAX_BUCKET as usize,
        "the generated set should crowd a band key past MAX_BUCKET (most crowded: {most_crowded})"
    );
    assert!(
        differs_without_skip > 0,
        "the generated set should contain articles that only crowded keys would join"
    );

    let stories = db
        .stories_since(t0 - chrono::Duration::days(1))
        .await
        .expect("read stories");
    let mut stored: HashMap<i64, Option<i64>> = HashMap::new();
    for story in &stories {
        for m in &story.articles {
            let via = match m.reason.as_deref() {
                Some("similar") => m.via,
                Some("new") => None,
                other => panic!("article {} has story reason {other:?}", m.article),
            };
            stored.insert(m.article, via);
        }
    }
    assert_eq!(stored.len(), articles.len(), "every article is in a story");
    let joined = expected.values().filter(|v| v.is_some()).count();
    assert!(
        joined >= articles.len() / 10,
        "planted near-copies should join their stories (joined: {joined})"
    );
    let mut mismatches: Vec<String> = expected
        .iter()
        .filter(|(id, want)| stored.get(id) != Some(want))
        .map(|(id, want)| format!("article {id}: index {want:?}, store {:?}", stored.get(id)))
        .collect();
    mismatches.sort();
    assert!(
        mismatches.is_empty(),
        "{} of {} decisions differ (without skipping crowded keys {differs_without_skip} would):\n{}",
        mismatches.len(),
        articles.len(),
        mismatches.join("\n")
    );
    println!(
        "{} articles, {joined} joined, most crowded band key {most_crowded} articles, \
         {differs_without_skip} decisions that skipping crowded keys changes: store = index",
        articles.len()
    );
    db.close().await;
}

/// Two writers on one database (two daemons sharing PostgreSQL, or `fetch` beside a daemon on
/// SQLite) each keep the story window in memory; a writer must see the articles the other
/// committed since its last look, or a copy of them starts a new story.
#[tokio::test]
async fn a_writer_joins_a_story_another_writer_started() {
    let (a, _pg, dir) = open_store().await;
    // The same database under a second name, so the second handle keeps its own story cache
    // as a second process would.
    let b = match &_pg {
        Some(pg) => {
            let other = pg.url.replacen("127.0.0.1", "localhost", 1);
            assert_ne!(
                other, pg.url,
                "the test database URL should name 127.0.0.1 so a second name can reach it"
            );
            Db::open_postgres(&other)
                .await
                .expect("open PostgreSQL as localhost")
        }
        None => {
            let link = dir.path().join("same.db");
            std::os::unix::fs::symlink(dir.path().join("stories.db"), &link).expect("symlink");
            Db::open_sqlite(&link)
                .await
                .expect("open SQLite through a link")
        }
    };
    let mut rng = Rng(0x0005_7e11_a5ed);
    let vocab = vocabulary(&mut rng);
    let mut text = |n: usize| -> String {
        (0..n)
            .map(|_| vocab[rng.below(vocab.len())].clone())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let x = Generated {
        title: text(6),
        body: text(120),
    };
    let y = Generated {
        title: text(6),
        body: text(120),
    };
    let y_copy = Generated {
        title: text(6),
        body: format!("{} {}", y.body, text(8)),
    };
    let params = StoryParams::default();
    let t0 = Utc::now();
    let commit = |db: &Db, n: usize, at: i64, g: &Generated| {
        let write = refresh(
            n,
            t0 + chrono::Duration::seconds(at),
            std::slice::from_ref(g),
        );
        let db = db.clone();
        async move {
            let outcome = db
                .commit_refresh_with(write, &params)
                .await
                .expect("commit a refresh");
            assert_eq!(outcome.new.len(), 1, "a new article");
            outcome.new[0]
        }
    };
    // A loads its window (X); B stores Y; A then stores a copy of Y.
    let x_id = commit(&a, 0, 0, &x).await;
    let y_id = commit(&b, 1, 10, &y).await;
    let copy_id = commit(&a, 2, 20, &y_copy).await;

    let story_of = |id: i64| {
        let db = a.clone();
        async move {
            db.stories_of(&[id])
                .await
                .expect("read stories")
                .remove(&id)
                .expect("the article has a story")
        }
    };
    let y_story = story_of(y_id).await;
    assert_eq!(
        y_story
            .articles
            .iter()
            .map(|m| m.article)
            .collect::<Vec<_>>(),
        vec![y_id, copy_id],
        "the copy stored by the first writer joins the story the second writer started"
    );
    let copy = &y_story.articles[1];
    assert_eq!(copy.reason.as_deref(), Some("similar"));
    assert_eq!(copy.via, Some(y_id));
    assert_ne!(story_of(x_id).await.id, y_story.id, "X is another story");
    a.close().await;
    b.close().await;
}

/// A PostgreSQL server whose autovacuum is off (as here) keeps no statistics for tables that grew
/// from empty, and its planner then scans where an index would do. The store analyses the tables
/// itself as they grow: after a thousand new articles the planner knows how many there are.
/// Always on PostgreSQL, whichever backend the rest of the suite runs on.
#[tokio::test]
async fn a_growing_postgres_store_keeps_its_table_statistics() {
    let pg = common::PgDatabase::create().await;
    let db = Db::open_postgres(&pg.url).await.expect("open PostgreSQL");
    let admin = sqlx::PgPool::connect(&pg.url).await.expect("connect");
    let analysed = async || -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>, f32) {
        sqlx::query_as(
            "SELECT s.last_analyze, s.last_autoanalyze, c.reltuples FROM pg_stat_user_tables s \
             JOIN pg_class c ON c.oid = s.relid WHERE s.relname = 'articles'",
        )
        .fetch_one(&admin)
        .await
        .expect("read statistics")
    };
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    let params = StoryParams::default();
    for r in 0..3 {
        let batch: Vec<Generated> = (0..400)
            .map(|k| Generated {
                title: format!("report {r} {k}"),
                body: format!("distinct body number {r} {k} of the growth test"),
            })
            .collect();
        let fetched = t0 + chrono::Duration::seconds(r);
        let stored = db
            .commit_refresh_with(refresh(r as usize * 400, fetched, &batch), &params)
            .await
            .expect("commit a refresh");
        assert_eq!(stored.new.len(), 400);
        if r == 1 {
            let (manual, _, _) = analysed().await;
            assert_eq!(manual, None, "not analysed before 1,000 articles");
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (manual, auto, rows) = analysed().await;
        if manual.is_some() || auto.is_some() {
            assert!(
                rows >= 1_000.0,
                "statistics count {rows} articles of the 1,200 stored"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the articles table was not analysed within 20 s of storing 1,200 articles"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    admin.close().await;
    db.close().await;
}

/// Several daemons sharing one PostgreSQL database each count the articles they store and pass
/// the same growth thresholds at about the same time: statistics one of them has just taken
/// are not taken again by the next. Always on PostgreSQL.
#[tokio::test]
async fn daemons_sharing_a_database_do_not_analyse_it_again_and_again() {
    let pg = common::PgDatabase::create().await;
    // One process keeps one count per server address and database: two addresses of the same
    // server stand for two daemons.
    let mut other = url::Url::parse(&pg.url).expect("a URL");
    let alias = match other.host_str() {
        Some("127.0.0.1") => "localhost",
        Some("localhost") => "127.0.0.1",
        host => panic!("MARSAD_TEST_PG on {host:?}: this test needs 127.0.0.1 or localhost"),
    };
    other.set_host(Some(alias)).expect("set host");
    let a = Db::open_postgres(&pg.url).await.expect("open PostgreSQL");
    let b = Db::open_postgres(other.as_str())
        .await
        .expect("open PostgreSQL");
    let admin = sqlx::PgPool::connect(&pg.url).await.expect("connect");
    let analyses = async || -> i64 {
        sqlx::query_scalar(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'articles'",
        )
        .fetch_one(&admin)
        .await
        .expect("read statistics")
    };
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    let params = StoryParams::default();
    let mut next = 0;
    let mut store = async |db: &Db, count: usize| {
        let batch: Vec<Generated> = (next..next + count)
            .map(|k| Generated {
                title: format!("report {k}"),
                body: format!("distinct body number {k} of the shared growth test"),
            })
            .collect();
        let fetched = t0 + chrono::Duration::seconds(next as i64);
        let stored = db
            .commit_refresh_with(refresh(next, fetched, &batch), &params)
            .await
            .expect("commit a refresh");
        assert_eq!(stored.new.len(), count);
        next += count;
    };
    let wait_for_analyses = async |n: i64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while analyses().await < n {
            assert!(
                std::time::Instant::now() < deadline,
                "the articles table was not analysed {n} time(s) within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };

    // A passes 1,000 articles of its own with 1,600 in the table: it analyses.
    store(&a, 600).await;
    store(&b, 600).await;
    store(&a, 400).await;
    wait_for_analyses(1).await;
    // B passes 1,000 of its own moments later, the table at 2,000: the statistics are recent.
    store(&b, 400).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(analyses().await, 1, "the second writer analysed again");
    // A passes 4,000 of its own with the table at 5,600, over three times the rows the last
    // analysis saw: it analyses again.
    store(&a, 3_000).await;
    wait_for_analyses(2).await;
    admin.close().await;
    a.close().await;
    b.close().await;
}
