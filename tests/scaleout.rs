//! Several `marsad run` on one database share the sources: each source is fetched once per period
//! (per the server's request log), a killed daemon's sources are taken over when its leases
//! expire, and each digest arrives once. Runs on the suite's backend (SQLite or PostgreSQL).

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use marsad::demo::Route;

const SOURCES: usize = 200;
const PERIOD_SECS: u64 = 10;
const CONCURRENCY: usize = 4;

fn feed(i: usize) -> String {
    // Every other source reports on Lebanon, so the digest has items.
    let topic = if i.is_multiple_of(2) {
        "لبنان"
    } else {
        "الطقس"
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>feed {i}</title><link>http://example.test/{i}</link>
<item><title>خبر رقم {i} عن {topic}</title><link>http://example.test/{i}/story</link>
<guid>story-{i}</guid><description>نص الخبر {i} حول {topic} وأكثر.</description>
<pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>"#
    )
}

fn period_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).expect("clock").as_secs() / PERIOD_SECS
}

fn now_in_period() -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    Duration::from_millis((now.as_millis() % (PERIOD_SECS as u128 * 1000)) as u64)
}

/// Sleeps until `offset` into the next period; returns that period.
async fn sleep_until_next_period(offset: Duration) -> u64 {
    let into = now_in_period();
    tokio::time::sleep(Duration::from_secs(PERIOD_SECS) - into + offset).await;
    period_of(SystemTime::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_fetch_each_source_once_per_period_and_survive_a_killed_one() {
    let smtp = SmtpServer::start();
    let mut routes = HashMap::new();
    for i in 0..SOURCES {
        routes.insert(
            format!("/feed/{i}.xml"),
            Route::new("application/rss+xml", feed(i)).with_delay(Duration::from_millis(150)),
        );
    }
    let mail = format!(
        "[mail]\ntransport = \"smtp\"\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"marsad <marsad@test.localhost>\"\n",
        smtp.port
    );
    let env = Env::new(
        routes,
        |base| {
            (0..SOURCES)
                .map(|i| {
                    format!("[[source]]\nid = \"s{i}\"\nkind = \"feed\"\nurl = \"{base}/feed/{i}.xml\"\n\n")
                })
                .collect()
        },
        &mail,
    )
    .await;
    // Three configurations on the same database, told apart by their User-Agent.
    let base = std::fs::read_to_string(&env.config).expect("read marsad.toml");
    let base = base
        .replace(
            "timeout = \"3s\"\n",
            &format!("timeout = \"3s\"\nconcurrency = {CONCURRENCY}\n"),
        )
        .replace(
            "[schedule]\n",
            &format!("[schedule]\npoll = \"@every {PERIOD_SECS}s\"\nlease = \"3s\"\n"),
        )
        .replace(
            "schedule = \"0 7 * * *\"",
            &format!("schedule = \"@every {PERIOD_SECS}s\""),
        );
    let configs: Vec<_> = (0..3)
        .map(|d| {
            let path = env.dir.path().join(format!("marsad-{d}.toml"));
            let text = base.replace("marsad-test/1", &format!("marsad-test/d{d}"));
            assert_ne!(text, base, "user agent not found in marsad.toml");
            std::fs::write(&path, text).expect("write config");
            path
        })
        .collect();
    // Create and migrate the database once, before three processes race to do it.
    let status = run_marsad(&configs[0], &["status"]).await;
    assert!(status.status.success(), "{}", stderr(&status));

    // Start just after a period boundary, so the first (partial) period holds the initial run.
    let first = sleep_until_next_period(Duration::from_millis(300)).await;
    let mut daemons: Vec<_> = configs.iter().map(|config| start_daemon(config)).collect();

    // Two periods later, kill daemon 0 mid-run (SIGKILL: no chance to give its leases back).
    let _ = sleep_until_next_period(Duration::ZERO).await;
    let kill_period = sleep_until_next_period(Duration::from_millis(800)).await;
    daemons[0].start_kill().expect("SIGKILL daemon 0");
    let killed_at = SystemTime::now();
    daemons[0].wait().await.expect("reap daemon 0");

    // Two more full periods for the survivors.
    let last = kill_period + 2;
    let _ = sleep_until_next_period(Duration::ZERO).await;
    let _ = sleep_until_next_period(Duration::ZERO).await;
    let _ = sleep_until_next_period(Duration::from_millis(500)).await;
    for d in &daemons[1..] {
        let pid = d.id().expect("pid");
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    for d in &mut daemons[1..] {
        let status = tokio::time::timeout(Duration::from_secs(20), d.wait())
            .await
            .expect("daemon stops on SIGTERM")
            .expect("wait daemon");
        assert_eq!(status.code(), Some(0));
    }

    // Requests per (source, period), and who made them.
    let mut per: HashMap<(String, u64), Vec<String>> = HashMap::new();
    for hit in env.server.log() {
        let agent = hit.user_agent.clone().unwrap_or_default();
        per.entry((hit.path.clone(), period_of(hit.at)))
            .or_default()
            .push(agent);
    }
    let killed_in_flight: Vec<_> = env
        .server
        .log()
        .into_iter()
        .filter(|h| {
            h.user_agent.as_deref() == Some("marsad-test/d0")
                && period_of(h.at) == kill_period
                && h.at <= killed_at
        })
        .collect();
    assert!(
        !killed_in_flight.is_empty(),
        "daemon 0 was not working when it was killed; the test proves nothing"
    );
    let mut doubled = Vec::new();
    for period in first..=last {
        let mut agents_seen = HashSet::new();
        for i in 0..SOURCES {
            let path = format!("/feed/{i}.xml");
            let agents = per
                .get(&(path.clone(), period))
                .cloned()
                .unwrap_or_default();
            assert!(
                !agents.is_empty(),
                "{path} was not fetched in period {} (kill in {})",
                period - first,
                kill_period - first
            );
            agents_seen.extend(agents.iter().cloned());
            if agents.len() > 1 {
                // Only a request daemon 0 had in flight when it died may be repeated, once.
                assert!(
                    period == kill_period
                        && agents.len() == 2
                        && agents.iter().any(|a| a == "marsad-test/d0"),
                    "{path} fetched {} times in period {}: {agents:?}",
                    agents.len(),
                    period - first
                );
                doubled.push(path);
            }
        }
        if period < kill_period {
            assert_eq!(
                agents_seen.len(),
                3,
                "all three daemons share the work in period {}: {agents_seen:?}",
                period - first
            );
        }
    }
    assert!(
        doubled.len() <= CONCURRENCY,
        "more sources repeated ({doubled:?}) than daemon 0 could have had in flight"
    );

    // Stored: one fetch log entry per source and period, every article once.
    assert_eq!(
        env.count("SELECT COUNT(DISTINCT source) FROM fetches")
            .await,
        SOURCES as i64
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM articles").await,
        SOURCES as i64
    );
    let at = |period: u64| {
        chrono::DateTime::from_timestamp((period * PERIOD_SECS) as i64, 0)
            .expect("period start")
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    };
    for period in first..=last {
        let (from, to) = (at(period), at(period + 1));
        let sql = |what: &str| {
            format!("SELECT {what} FROM fetches WHERE started >= '{from}' AND started < '{to}'")
        };
        assert_eq!(
            (
                env.count(&sql("COUNT(*)")).await,
                env.count(&sql("COUNT(DISTINCT source)")).await
            ),
            (SOURCES as i64, SOURCES as i64),
            "stored fetches in period {} (kill in {})",
            period - first,
            kill_period - first
        );
    }

    // Each digest arrived once: as many messages as sent runs, no Message-ID twice.
    let messages = smtp.messages();
    let ids: Vec<String> = messages
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(m);
            text.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .map(|l| l[11..].trim().to_string())
                .expect("Message-ID header")
        })
        .collect();
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a digest arrived twice: {ids:?}");
    let sent = env
        .count("SELECT COUNT(*) FROM digest_runs WHERE state = 'sent'")
        .await;
    assert!(sent >= 1, "no digest was sent");
    assert_eq!(ids.len() as i64, sent, "messages received vs runs sent");
}

/// A daemon records the configured sources at start and on every reload. Rewriting unchanged
/// rows locked them until its commit, holding up the refreshes other daemons were writing (each
/// updates its source's row) for up to a second at a shared start. Unchanged sources are not
/// written: recording them again finishes while another writer holds those rows (PostgreSQL) or
/// the database's write lock (SQLite); a changed source is still updated.
#[tokio::test]
async fn recording_unchanged_sources_waits_for_no_other_writer() {
    use marsad::store::{Db, SourceInfo};
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = if test_storage_is_postgres() {
        Some(PgDatabase::create().await)
    } else {
        None
    };
    let db = match &pg {
        Some(pg) => Db::open_postgres(&pg.url).await.expect("open PostgreSQL"),
        None => Db::open_sqlite(&dir.path().join("m.db"))
            .await
            .expect("open SQLite"),
    };
    let source = |id: &str, name: &str| SourceInfo {
        id: id.into(),
        name: name.into(),
        kind: "feed".into(),
        url: format!("http://example.test/{id}.xml"),
    };
    let configured = [source("a", "Alpha"), source("b", "Beta")];
    db.sync_sources(&configured).await.expect("first record");

    // Another writer holds the sources' rows (or the whole database) meanwhile.
    let again = async {
        tokio::time::timeout(Duration::from_secs(3), db.sync_sources(&configured))
            .await
            .expect("recording unchanged sources waited for another writer")
            .expect("record again");
    };
    match &pg {
        Some(pg) => {
            let other = sqlx::PgPool::connect(&pg.url).await.expect("connect");
            let mut tx = other.begin().await.expect("begin");
            sqlx::query("SELECT id FROM sources FOR UPDATE")
                .fetch_all(&mut *tx)
                .await
                .expect("lock the rows");
            again.await;
            tx.rollback().await.expect("release");
        }
        None => {
            let other = sqlx::SqlitePool::connect_with(
                sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("m.db")),
            )
            .await
            .expect("open the database");
            let mut conn = other.acquire().await.expect("connection");
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *conn)
                .await
                .expect("take the write lock");
            again.await;
            sqlx::query("ROLLBACK")
                .execute(&mut *conn)
                .await
                .expect("release");
        }
    }

    db.sync_sources(&[source("a", "Alpha"), source("b", "Beta News")])
        .await
        .expect("record a renamed source");
    let names: Vec<String> = db
        .source_states()
        .await
        .expect("read sources")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["Alpha", "Beta News"]);
}

/// Every marsad process on a PostgreSQL server locks the articles it stores in the server's
/// shared lock table; together they keep to half of it however many run, so that neither they
/// nor the server's other sessions run out of it. A DBA sees the writers by name.
/// PostgreSQL only: SQLite has no such table (and writes one batch at a time).
#[tokio::test]
async fn writers_on_one_server_share_half_its_lock_table() {
    use marsad::store::{Db, WRITER_APPLICATION_NAME};
    let pg = PgDatabase::create().await;
    let admin = sqlx::PgPool::connect(&pg.url).await.expect("connect");
    let table: i64 = sqlx::query_scalar(
        "SELECT current_setting('max_locks_per_transaction')::int8 \
         * (current_setting('max_connections')::int8 \
            + current_setting('max_prepared_transactions')::int8)",
    )
    .fetch_one(&admin)
    .await
    .expect("lock table size");
    let writers_here = async || -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND datname = current_database()",
        )
        .bind(WRITER_APPLICATION_NAME)
        .fetch_one(&admin)
        .await
        .expect("count writers")
    };

    let first = Db::open_postgres(&pg.url).await.expect("open");
    let alone = first.key_budget().expect("a budget on PostgreSQL");
    assert!(
        alone as i64 <= table / 2,
        "one process may take at most half of the {table}-slot lock table, took {alone}"
    );
    assert!(
        alone >= 128,
        "a budget of {alone} keys would send most refreshes to the bulk lock"
    );

    // Three more processes (as `marsad run` each opens its store).
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(Db::open_postgres(&pg.url).await.expect("open"));
    }
    let named = writers_here().await;
    assert!(
        named >= 4,
        "each process's writer shows in pg_stat_activity by name, saw {named}"
    );
    // The writers are counted again, in the background, once the last count is a second old.
    // Other tests' writers on the server may make the share smaller still, never larger.
    let fair = (table / 2 / named).max(128);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut shared = alone;
    while shared as i64 > fair && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        shared = first.key_budget().expect("a budget on PostgreSQL");
    }
    assert!(
        shared as i64 <= fair,
        "{named} writers on a {table}-slot lock table: each batch may lock {fair} keys, \
         this process took {shared} (alone: {alone})"
    );
    for db in others.iter().chain([&first]) {
        db.close().await;
    }
    admin.close().await;
}

/// A daemon prunes when it starts: where nothing is old enough to go, the prune must not hold
/// up the other daemons' refresh writes (on PostgreSQL it takes the bulk lock, which waits for
/// every write under way and keeps new ones out). Where an article is old enough, it still
/// waits for the writes under way, so none links a URL to an article being deleted.
/// PostgreSQL only: the bulk lock is PostgreSQL's (SQLite has one writer at a time).
#[tokio::test]
async fn a_prune_with_no_old_article_does_not_wait_for_refresh_writes() {
    use marsad::store::Db;
    let pg = PgDatabase::create().await;
    let db = Db::open_postgres(&pg.url).await.expect("open");
    let other = sqlx::PgPool::connect(&pg.url).await.expect("connect");
    let now = chrono::Utc::now();
    let (articles_before, matched_before) = (
        now - chrono::Duration::days(30),
        now - chrono::Duration::days(90),
    );
    sqlx::raw_sql(
        "INSERT INTO sources (id, name, kind, url) VALUES ('s', 'S', 'feed', 'http://s.test/'); \
         INSERT INTO fetches (source, started, finished, outcome) \
         VALUES ('s', now() - interval '40 days', now() - interval '40 days', 'ok'); \
         INSERT INTO articles (source, url, title, body, fetched, content_hash) \
         VALUES ('s', 'http://s.test/new', 'new', 'new', now(), 'h1')",
    )
    .execute(&other)
    .await
    .expect("seed");

    // A refresh write under way holds the bulk lock shared (marsad's lock space, key 2).
    let mut writer = other.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock_shared(1835102835, 2)")
        .execute(&mut *writer)
        .await
        .expect("hold the bulk lock shared");
    let pruned = tokio::time::timeout(
        Duration::from_secs(5),
        db.prune(articles_before, matched_before),
    )
    .await
    .expect("a prune with nothing old to delete waited for a refresh write")
    .expect("prune");
    assert_eq!(pruned.articles + pruned.matched_articles, 0);
    assert_eq!(pruned.fetches, 1, "the old fetch log entry still goes");

    // Now an article old enough to go: the prune waits for the write, then deletes it.
    sqlx::query(
        "INSERT INTO articles (source, url, title, body, fetched, content_hash) \
         VALUES ('s', 'http://s.test/old', 'old', 'old', now() - interval '40 days', 'h2')",
    )
    .execute(&other)
    .await
    .expect("an old article");
    let prune = db.prune(articles_before, matched_before);
    tokio::pin!(prune);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut prune)
            .await
            .is_err(),
        "a prune deleting articles went ahead of a refresh write under way"
    );
    writer.commit().await.expect("end the write");
    let pruned = tokio::time::timeout(Duration::from_secs(5), prune)
        .await
        .expect("the prune goes on once the write is done")
        .expect("prune");
    assert_eq!(pruned.articles, 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT url FROM articles")
        .fetch_all(&other)
        .await
        .expect("articles");
    assert_eq!(left, ["http://s.test/new"]);
    other.close().await;
    db.close().await;
}
