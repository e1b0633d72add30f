//! Shared test harness: a real HTTP server on loopback serving fixture sites, a temporary folder
//! holding a real configuration and SQLite database, the real `marsad` binary, and a real SMTP
//! server (Python's aiosmtpd) writing what it receives into a Maildir.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use marsad::demo::{Route, StaticServer};

/// A test site plus a configuration folder pointing at it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub server: StaticServer,
    pub config: PathBuf,
    /// The throwaway PostgreSQL database when `MARSAD_TEST_STORAGE=postgres`; dropped with the Env.
    pub pg: Option<PgDatabase>,
}

pub const WATCHLISTS: &[(&str, &str)] = &[
    (
        "russia-israel.toml",
        r#"title = "Russia–Israel"
fields = ["title", "body"]
[terms]
russia = ["روسيا", "موسكو", "الكرملين", "بوتين", "الروسية", "Russia", "Moscow", "Kremlin", "Putin", "Russian"]
israel = ["إسرائيل", "تل أبيب", "نتنياهو", "الإسرائيلي", "إسرائيلي", "إسرائيلياً", "Israel", "Tel Aviv", "Netanyahu", "Israeli"]
[match]
query = "russia AND israel"
"#,
    ),
    (
        "lebanon.toml",
        r#"title = "Lebanon"
[terms]
lebanon = ["لبنان", "بيروت", "اللبناني", "Lebanon", "Beirut"]
[match]
query = "lebanon"
"#,
    ),
];

/// The demo site's sources (an HTML listing, an Arabic RSS feed, an English Atom feed with full text).
pub fn demo_sources(base: &str) -> String {
    format!(
        r#"[[source]]
id = "khanadeq-demo"
name = "الخنادق (تجريبي)"
kind = "html"
url = "{base}/"
language = "ar"
[source.listing]
links = "ul.posts a[href*='/post/']"
[source.article]
title = "h1"
body = ".article-body"
published = "time[datetime]"

[[source]]
id = "wire-ar"
name = "وكالة الأنباء التجريبية"
kind = "feed"
url = "{base}/rss.xml"

[[source]]
id = "wire-en"
name = "Demo Wire"
kind = "feed"
url = "{base}/atom.xml"
full_text = true
"#
    )
}

/// `[mail]` for the outbox transport.
pub const OUTBOX_MAIL: &str = "[mail]\ntransport = \"outbox\"\noutbox_dir = \"var/outbox\"\nfrom = \"marsad <marsad@test.localhost>\"\n";

impl Env {
    /// Serves `routes` (plus nothing else) and writes a configuration with `sources` and `mail`.
    pub async fn new(
        routes: HashMap<String, Route>,
        sources: impl Fn(&str) -> String,
        mail: &str,
    ) -> Env {
        let server = StaticServer::start(routes)
            .await
            .expect("start test HTTP server");
        let dir = tempfile::tempdir().expect("temp dir");
        let config = write_config(
            dir.path(),
            &sources(&server.base_url()),
            mail,
            "timeout = \"3s\"\nmin_delay = \"0s\"\n",
        );
        let pg = use_storage_from_env(&config).await;
        Env {
            dir,
            server,
            config,
            pg,
        }
    }

    /// The bundled demo site with its sources.
    pub async fn demo(mail: &str) -> Env {
        Env::new(marsad::demo::site_routes(), demo_sources, mail).await
    }

    pub async fn marsad(&self, args: &[&str]) -> Output {
        run_marsad(&self.config, args).await
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("var/marsad.db")
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("var/outbox")
    }

    /// The storage URL the configuration uses (SQLite file or throwaway PostgreSQL database).
    pub fn storage_url(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite://{}", self.db_path().display()),
        }
    }

    /// Runs a `SELECT COUNT(*) ...` (or any single-integer query) against the test's database,
    /// whichever backend it is on. Panics on errors.
    pub async fn count(&self, sql: &str) -> i64 {
        self.try_count(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Waits until no other session is connected to the test's PostgreSQL database. A process
    /// killed right after sending a COMMIT leaves a server session that still finishes it; two
    /// reads made meanwhile may see the database before and after that commit. (A killed
    /// process writes nothing more to a SQLite file.)
    pub async fn settle(&self) {
        if self.pg.is_none() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let others = self
                .count(
                    "SELECT COUNT(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                .await;
            if others == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{others} sessions still connected to the test database 10 s after their process ended"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs one statement that returns nothing against the test's database, whichever backend
    /// it is on. Panics on errors.
    pub async fn execute(&self, sql: &str) {
        let done = match &self.pg {
            Some(pg) => match sqlx::PgPool::connect(&pg.url).await {
                Ok(pool) => {
                    let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                        .execute(&pool)
                        .await
                        .map(|_| ());
                    pool.close().await;
                    done
                }
                Err(e) => Err(e),
            },
            None => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(self.db_path());
                let pool = sqlx::SqlitePool::connect_with(opts)
                    .await
                    .expect("open test database");
                let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&pool)
                    .await
                    .map(|_| ());
                pool.close().await;
                done
            }
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Like `count`, but an error (no database or table yet) is returned instead of panicking.
    pub async fn try_count(&self, sql: &str) -> Result<i64, sqlx::Error> {
        use sqlx::Row;
        match &self.pg {
            Some(pg) => {
                let pool = sqlx::PgPool::connect(&pg.url).await?;
                let n = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_one(&pool)
                    .await
                    .and_then(|r| r.try_get::<i64, _>(0));
                pool.close().await;
                n
            }
            None => {
                if !self.db_path().exists() {
                    return Err(sqlx::Error::RowNotFound);
                }
                let pool = sqlite(&self.db_path()).await;
                let n = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_one(&pool)
                    .await
                    .and_then(|r| r.try_get::<i64, _>(0));
                pool.close().await;
                n
            }
        }
    }

    /// Requests the server saw for a path.
    pub fn hits(&self, path: &str) -> Vec<marsad::demo::server::Logged> {
        self.server
            .log()
            .into_iter()
            .filter(|l| l.path == path)
            .collect()
    }
}

/// Writes marsad.toml, sources.toml and the watchlists into `dir`.
pub fn write_config(dir: &Path, sources: &str, mail: &str, http_extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("watchlists")).expect("mkdir watchlists");
    for (name, text) in WATCHLISTS {
        std::fs::write(dir.join("watchlists").join(name), text).expect("write watchlist");
    }
    std::fs::write(dir.join("sources.toml"), sources).expect("write sources");
    let config = format!(
        "sources = \"sources.toml\"\nwatchlists = \"watchlists\"\n\n[storage]\nurl = \"sqlite://var/marsad.db\"\n\n\
         [http]\nuser_agent = \"marsad-test/1\"\n{http_extra}\n[schedule]\ntimezone = \"Asia/Beirut\"\n\n{mail}\n\
         [[digest]]\nname = \"daily\"\nto = [\"desk@example.org\"]\nschedule = \"0 7 * * *\"\n\
         watchlists = [\"russia-israel\", \"lebanon\"]\nlanguage = \"ar\"\n"
    );
    let path = dir.join("marsad.toml");
    std::fs::write(&path, config).expect("write marsad.toml");
    path
}

/// Starts `marsad run` on `config` in the background (warnings only, output discarded); killed
/// when the handle is dropped.
pub fn start_daemon(config: &Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"))
        .arg("--config")
        .arg(config)
        .arg("run")
        .env("MARSAD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start daemon")
}

pub async fn run_marsad(config: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("MARSAD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run marsad")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses JSON Lines output.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A real SMTP server on loopback (aiosmtpd), delivering into a Maildir; killed on drop.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts aiosmtpd. Fails the test (never skips) when it is not installed.
    pub fn start() -> SmtpServer {
        SmtpServer::start_on(free_port())
    }

    /// Starts aiosmtpd on a given port (to bring a server "back" where one was missing).
    pub fn start_on(port: u16) -> SmtpServer {
        let maildir = tempfile::tempdir().expect("maildir");
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            // aiosmtpd's Mailbox creates the Maildir (tmp/new/cur) only when the folder is missing.
            .arg(maildir.path().join("mail"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the SMTP tests");
        let mut server = SmtpServer {
            child,
            port,
            maildir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = server.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!(
                    "aiosmtpd exited ({status}): {err}\ninstall it with `pip install aiosmtpd` (.ci/run does)"
                );
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start listening on {port} within 20s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Raw messages received so far.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.path().join("mail").join(sub)) {
                for e in entries.flatten() {
                    out.push(std::fs::read(e.path()).expect("read mail"));
                }
            }
        }
        out
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens the test's SQLite database directly (read-only checks).
pub async fn sqlite(path: &Path) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    sqlx::SqlitePool::connect_with(opts)
        .await
        .expect("open test database")
}

pub async fn count(pool: &sqlx::SqlitePool, sql: &'static str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .expect("count query")
        .get::<i64, _>(0)
}

/// Which backend the tests run on: `MARSAD_TEST_STORAGE=postgres` or SQLite (the default).
pub fn test_storage_is_postgres() -> bool {
    match std::env::var("MARSAD_TEST_STORAGE").as_deref() {
        Ok("postgres") | Ok("postgresql") | Ok("pg") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("MARSAD_TEST_STORAGE={other}: expected \"postgres\" or \"sqlite\""),
    }
}

/// The server the throwaway databases are created on (`MARSAD_TEST_PG`, default the local one).
pub fn pg_admin_url() -> String {
    std::env::var("MARSAD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A throwaway PostgreSQL database, dropped (with FORCE) when this value is dropped.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Creates `marsad_test_<unique>`. Fails the test (never skips) when PostgreSQL is unreachable.
    pub async fn create() -> PgDatabase {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "marsad_test_{}_{}_{}",
            std::process::id(),
            nanos,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let admin = pg_admin_url();
        let pool = sqlx::PgPool::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "MARSAD_TEST_STORAGE=postgres but PostgreSQL at {admin} is unreachable: {e}; \
                 start it (.ci/run does) or point MARSAD_TEST_PG at a server"
            )
        });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        pool.close().await;
        let mut url = url::Url::parse(&admin).expect("MARSAD_TEST_PG is a URL");
        url.set_path(&format!("/{name}"));
        PgDatabase {
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime; a fresh thread with its own runtime can block.
        let (admin, name) = (pg_admin_url(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for DROP DATABASE");
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            })
        })
        .join();
    }
}

/// Points the configuration at a throwaway PostgreSQL database when the tests run on PostgreSQL.
pub async fn use_storage_from_env(config: &Path) -> Option<PgDatabase> {
    if !test_storage_is_postgres() {
        return None;
    }
    let pg = PgDatabase::create().await;
    set_storage_url(config, &pg.url);
    Some(pg)
}

/// Rewrites `[storage] url` in a marsad.toml written by `write_config`.
pub fn set_storage_url(config: &Path, url: &str) {
    let text = std::fs::read_to_string(config).expect("read marsad.toml");
    let replaced = text.replace(
        "url = \"sqlite://var/marsad.db\"",
        &format!("url = \"{url}\""),
    );
    assert_ne!(
        text, replaced,
        "marsad.toml has no sqlite storage line to replace"
    );
    std::fs::write(config, replaced).expect("write marsad.toml");
}

impl Env {
    /// Runs a query returning one text column (e.g. `SELECT raw_url FROM article_urls`) against
    /// the test's database, whichever backend it is on. Panics on errors.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        use sqlx::Row;
        let rows = match &self.pg {
            Some(pg) => {
                let pool = sqlx::PgPool::connect(&pg.url)
                    .await
                    .unwrap_or_else(|e| panic!("connect for {sql}: {e}"));
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_all(&pool)
                    .await
                    .and_then(|rows| rows.iter().map(|r| r.try_get::<String, _>(0)).collect());
                pool.close().await;
                rows
            }
            None => {
                let pool = sqlite(&self.db_path()).await;
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_all(&pool)
                    .await
                    .and_then(|rows| rows.iter().map(|r| r.try_get::<String, _>(0)).collect());
                pool.close().await;
                rows
            }
        };
        rows.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}
