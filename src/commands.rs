//! One function per subcommand. This is the binary's edge: errors are `anyhow` here and become
//! exit codes in `main`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use marsad::cli::{Cli, Command, DigestCommand, DigestFormat, SourcesCommand, WatchlistCommand};
use marsad::daemon::{self, Loaded};
use marsad::digest::render;
use marsad::digest::run as digest_run;
use marsad::matcher::Matcher;
use marsad::model::Field;
use marsad::pipeline;
use marsad::settings::{self, ConfigErrors, DigestConfig, Settings};
use marsad::store::Db;

/// Invalid input on the command line or in an input file (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(String);

fn invalid(message: impl Into<String>) -> anyhow::Error {
    InvalidInput(message.into()).into()
}

pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<ConfigErrors>().is_some() || err.downcast_ref::<InvalidInput>().is_some()
    {
        2
    } else {
        1
    }
}

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let config = cli.config;
    match cli.command {
        Command::Check => check(&config),
        Command::Fetch { sources } => fetch(&config, &sources).await,
        Command::Run => run(&config).await,
        Command::Digest { command } => match command {
            DigestCommand::Preview {
                name,
                since,
                format,
            } => digest_preview(&config, name, since, format).await,
            DigestCommand::Send { name } => digest_send(&config, name).await,
        },
        Command::Articles {
            since,
            sources,
            json,
        } => articles(&config, since.into(), &sources, json).await,
        Command::Stories {
            since,
            explain,
            json,
        } => stories(&config, since.into(), explain, json).await,
        Command::Matches {
            watchlist,
            since,
            json,
        } => matches(&config, watchlist, since.into(), json).await,
        Command::Watchlist {
            command: WatchlistCommand::Test { watchlist, texts },
        } => watchlist_test(&config, &watchlist, &texts),
        Command::Sources {
            command: SourcesCommand::Test { id, json },
        } => sources_test(&config, &id, json).await,
        Command::Extract { target, json } => extract(&target, json).await,
        Command::Status { json } => status(&config, json).await,
        Command::Demo { dir } => demo(&dir).await,
    }
}

fn load(config: &Path) -> Result<Settings> {
    Ok(settings::load(config)?)
}

async fn open(settings: &Settings) -> Result<Db> {
    let db = Db::open(&settings.storage).await?;
    db.sync_sources(&daemon::source_infos(settings)).await?;
    Ok(db)
}

fn build(settings: Settings) -> Result<Loaded> {
    Loaded::build(settings).map_err(|e| anyhow!(e))
}

fn check(config: &Path) -> Result<ExitCode> {
    let settings = load(config)?;
    Matcher::compile(&settings.watchlists).map_err(|e| invalid(e.to_string()))?;
    println!(
        "{}: ok ({} sources, {} watchlists, {} digests)",
        config.display(),
        settings.sources.len(),
        settings.watchlists.len(),
        settings.digests.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Summary of one `fetch` run, printed and returned for `demo`.
struct FetchSummary {
    sources: usize,
    failed: usize,
    new_articles: usize,
    matches: usize,
}

async fn fetch_all(
    loaded: &Loaded,
    db: &Db,
    only: &[String],
    out: &mut impl Write,
) -> Result<FetchSummary> {
    for id in only {
        if !loaded.settings.sources.iter().any(|s| &s.id == id) {
            let known: Vec<&str> = loaded
                .settings
                .sources
                .iter()
                .map(|s| s.id.as_str())
                .collect();
            return Err(invalid(format!(
                "unknown source \"{id}\"; sources are {}",
                known.join(", ")
            )));
        }
    }
    let sources: Vec<_> = loaded
        .settings
        .sources
        .iter()
        .filter(|s| only.is_empty() || only.contains(&s.id))
        .cloned()
        .collect();
    let ctx = loaded.context(db);
    let reports = pipeline::refresh_all(&ctx, &sources, &CancellationToken::new()).await;
    let mut summary = FetchSummary {
        sources: sources.len(),
        failed: 0,
        new_articles: 0,
        matches: 0,
    };
    for report in reports {
        match report {
            Ok(r) => {
                summary.new_articles += r.new_articles;
                summary.matches += r.matches;
                if r.outcome == "error" {
                    summary.failed += 1;
                }
                let detail = r
                    .error
                    .as_deref()
                    .map(|e| format!(" — {e}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{:<20} {:<12} items {:>3}  new {:>3}  known {:>3}  matches {:>3}{detail}",
                    r.source, r.outcome, r.items, r.new_articles, r.known_articles, r.matches
                )?;
            }
            Err((source, e)) => {
                summary.failed += 1;
                writeln!(out, "{source:<20} store-error  {e}")?;
            }
        }
    }
    Ok(summary)
}

async fn fetch(config: &Path, only: &[String]) -> Result<ExitCode> {
    let settings = load(config)?;
    let db = open(&settings).await?;
    let loaded = build(settings)?;
    let summary = fetch_all(&loaded, &db, only, &mut std::io::stdout()).await?;
    db.close().await;
    println!(
        "{} sources, {} failed, {} new articles, {} matches",
        summary.sources, summary.failed, summary.new_articles, summary.matches
    );
    // A failed source is a runtime failure for scripts, after every other source has run.
    Ok(if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn run(config: &Path) -> Result<ExitCode> {
    let settings = load(config)?;
    let db = open(&settings).await?;
    let loaded = build(settings)?;
    daemon::run(config.to_path_buf(), loaded, db, CancellationToken::new()).await?;
    Ok(ExitCode::SUCCESS)
}

fn pick_digests<'a>(settings: &'a Settings, name: Option<&str>) -> Result<Vec<&'a DigestConfig>> {
    let names = || {
        settings
            .digests
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(name) => settings
            .digests
            .iter()
            .find(|d| d.name == name)
            .map(|d| vec![d])
            .ok_or_else(|| {
                invalid(format!(
                    "unknown digest \"{name}\"; digests are {}",
                    names()
                ))
            }),
        None if settings.digests.is_empty() => Err(invalid(
            "no [[digest]] is configured; add one to marsad.toml".to_string(),
        )),
        None => Ok(settings.digests.iter().collect()),
    }
}

async fn digest_preview(
    config: &Path,
    name: Option<String>,
    since: Option<humantime::Duration>,
    format: DigestFormat,
) -> Result<ExitCode> {
    let settings = load(config)?;
    let db = open(&settings).await?;
    let now = Utc::now();
    for digest in pick_digests(&settings, name.as_deref())? {
        let period = match since {
            Some(since) => digest_run::Period {
                start: now
                    - chrono::Duration::from_std(since.into()).context("--since is too large")?,
                end: now,
            },
            None => {
                let tz = digest_run::timezone(&settings, digest);
                let last = db.last_digest_end(&digest.name).await?;
                digest_run::period(digest, tz, now, last)?
            }
        };
        let view = digest_run::build_view(&db, &settings, digest, period).await?;
        let text = match format {
            DigestFormat::Html => render::render_html(&view)?,
            DigestFormat::Text => render::render_text(&view)?,
        };
        println!("{text}");
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Records a run for each chosen digest covering everything since its last run, then delivers
/// all pending runs. Running it twice sends nothing new the second time.
async fn send_digests(
    settings: &Settings,
    db: &Db,
    loaded: &Loaded,
    name: Option<&str>,
    out: &mut impl Write,
) -> Result<(usize, Vec<PathBuf>, usize)> {
    let now = Utc::now();
    for digest in pick_digests(settings, name)? {
        let tz = digest_run::timezone(settings, digest);
        let last = db.last_digest_end(&digest.name).await?;
        // Nothing new since a run of the current scheduled period: do not send an empty repeat.
        if let Some(last) = last {
            let period = digest_run::period(digest, tz, now, Some(last))?;
            let view = digest_run::build_view(db, settings, digest, period).await?;
            let current_period_start = digest.schedule.prev_at_or_before(now, tz);
            if view.total == 0 && current_period_start.is_some_and(|p| last >= p) {
                writeln!(
                    out,
                    "{}: nothing new since the digest of {}; not sent again",
                    digest.name, last
                )?;
                continue;
            }
        }
        let (_, inserted, items) = digest_run::record(db, settings, digest, now, now).await?;
        if inserted {
            writeln!(out, "{}: recorded a digest with {items} items", digest.name)?;
        }
    }
    let deliveries = digest_run::deliver_pending(db, settings, &loaded.mailer, now, true).await?;
    let mut paths = Vec::new();
    let mut failed = 0;
    for d in deliveries {
        match d.result {
            Ok(Some(path)) => {
                writeln!(out, "{}: written to {}", d.run.digest, path.display())?;
                paths.push(path);
            }
            Ok(None) => writeln!(
                out,
                "{}: sent to {}",
                d.run.digest,
                d.run.recipients.join(", ")
            )?,
            Err(e) => {
                failed += 1;
                writeln!(out, "{}: not delivered, will retry: {e}", d.run.digest)?;
            }
        }
    }
    Ok((paths.len(), paths, failed))
}

async fn digest_send(config: &Path, name: Option<String>) -> Result<ExitCode> {
    let settings = load(config)?;
    let db = open(&settings).await?;
    let loaded = build(settings.clone())?;
    let (_, _, failed) = send_digests(
        &settings,
        &db,
        &loaded,
        name.as_deref(),
        &mut std::io::stdout(),
    )
    .await?;
    db.close().await;
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn rfc3339(t: Option<DateTime<Utc>>) -> serde_json::Value {
    t.map(|t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .unwrap_or(serde_json::Value::Null)
}

async fn articles(
    config: &Path,
    since: std::time::Duration,
    sources: &[String],
    as_json: bool,
) -> Result<ExitCode> {
    let settings = load(config)?;
    let db = open(&settings).await?;
    let since = Utc::now() - chrono::Duration::from_std(since).context("--since is too large")?;
    let mut out = std::io::stdout().lock();
    for a in db.articles(since, sources).await? {
        if as_json {
            let line = json!({
                "id": a.id, "source": a.source, "url": a.url, "urls": a.urls, "title": a.title,
                "body": a.body, "published": rfc3339(a.published), "fetched": rfc3339(Some(a.fetched)),
                "language": a.language, "story": a.story,
            });
            writeln!(out, "{line}")?;
        } else {
            writeln!(
                out,
                "{}  {:<16} {}\n    {}",
                a.fetched.format("%Y-%m-%d %H:%M"),
                a.source,
                a.title,
                a.url
            )?;
        }
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `marsad stories`: each story with its articles (earliest first) and their sources;
/// `--explain ID` adds how each article joined (the article it was most similar to and the
/// estimated share of shared word pairs).
async fn stories(
    config: &Path,
    since: std::time::Duration,
    explain: Option<i64>,
    as_json: bool,
) -> Result<ExitCode> {
    let settings = load(config)?;
    let db = open(&settings).await?;
    let stories = match explain {
        Some(id) => match db.story(id).await? {
            Some(story) => vec![story],
            None => {
                db.close().await;
                return Err(invalid(format!(
                    "no story {id}; `marsad stories` lists the stories of the last 24h with their ids"
                )));
            }
        },
        None => {
            let since =
                Utc::now() - chrono::Duration::from_std(since).context("--since is too large")?;
            db.stories_since(since).await?
        }
    };
    let names: std::collections::HashMap<&str, &str> = settings
        .sources
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();
    let mut out = std::io::stdout().lock();
    for story in &stories {
        if as_json {
            let articles: Vec<serde_json::Value> = story
                .articles
                .iter()
                .map(|m| {
                    json!({
                        "id": m.article, "source": m.source,
                        "source_name": names.get(m.source.as_str()).copied().unwrap_or(&m.source),
                        "url": m.url, "title": m.title, "published": rfc3339(m.published),
                        "fetched": rfc3339(Some(m.fetched)), "reason": m.reason, "via": m.via,
                        "similarity": m.similarity,
                    })
                })
                .collect();
            let sources: std::collections::BTreeSet<&str> =
                story.articles.iter().map(|m| m.source.as_str()).collect();
            writeln!(
                out,
                "{}",
                json!({"id": story.id, "articles": articles, "sources": sources})
            )?;
            continue;
        }
        writeln!(
            out,
            "story {}  ({} article{})",
            story.id,
            story.articles.len(),
            if story.articles.len() == 1 { "" } else { "s" }
        )?;
        for m in &story.articles {
            let source = names.get(m.source.as_str()).copied().unwrap_or(&m.source);
            writeln!(
                out,
                "  {} {}  {}  {}\n      {}",
                m.article,
                m.fetched.format("%Y-%m-%d %H:%M"),
                source,
                m.title,
                m.url
            )?;
            if explain.is_some() {
                let why = match (m.reason.as_deref(), m.via, m.similarity) {
                    (Some("similar"), Some(via), Some(sim)) => format!(
                        "joined: {:.0}% of its word pairs are shared with article {via} (threshold {:.0}%)",
                        sim * 100.0,
                        settings.stories.threshold * 100.0
                    ),
                    (Some("new"), _, _) => {
                        "started the story (no similar article in the window)".to_string()
                    }
                    _ => "assigned before story detection recorded its reason".to_string(),
                };
                writeln!(out, "      {why}")?;
            }
        }
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn matches(
    config: &Path,
    watchlist: Option<String>,
    since: std::time::Duration,
    as_json: bool,
) -> Result<ExitCode> {
    let settings = load(config)?;
    if let Some(w) = &watchlist
        && !settings.watchlists.iter().any(|x| &x.name == w)
    {
        let names: Vec<&str> = settings
            .watchlists
            .iter()
            .map(|w| w.name.as_str())
            .collect();
        return Err(invalid(format!(
            "unknown watchlist \"{w}\"; watchlists are {}",
            names.join(", ")
        )));
    }
    let db = open(&settings).await?;
    let now = Utc::now();
    let start = now - chrono::Duration::from_std(since).context("--since is too large")?;
    let filter: Vec<String> = watchlist.into_iter().collect();
    let mut out = std::io::stdout().lock();
    for m in db
        .matches_between(start, now + chrono::Duration::seconds(1), &filter)
        .await?
    {
        if as_json {
            let line = json!({
                "watchlist": m.watchlist, "article": m.article, "url": m.url, "title": m.title,
                "published": rfc3339(m.published), "hits": m.hits,
            });
            writeln!(out, "{line}")?;
        } else {
            let terms: Vec<&str> = m.hits.iter().map(|h| h.text.as_str()).collect();
            writeln!(
                out,
                "{:<16} {}\n    {}\n    terms: {}",
                m.watchlist,
                m.title,
                m.url,
                terms.join(", ")
            )?;
        }
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

fn watchlist_test(config: &Path, watchlist: &str, texts: &Path) -> Result<ExitCode> {
    let spec = if watchlist.ends_with(".toml") || Path::new(watchlist).is_file() {
        settings::load_watchlist(Path::new(watchlist))?
    } else {
        let settings = load(config)?;
        let names: Vec<&str> = settings
            .watchlists
            .iter()
            .map(|w| w.name.as_str())
            .collect();
        settings
            .watchlists
            .iter()
            .find(|w| w.name == watchlist)
            .cloned()
            .ok_or_else(|| {
                invalid(format!(
                    "unknown watchlist \"{watchlist}\"; watchlists are {}",
                    names.join(", ")
                ))
            })?
    };
    let matcher =
        Matcher::compile(std::slice::from_ref(&spec)).map_err(|e| invalid(e.to_string()))?;
    let input = std::fs::read_to_string(texts)
        .map_err(|e| invalid(format!("cannot read {}: {e}", texts.display())))?;
    let mut out = std::io::stdout().lock();
    for (n, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            invalid(format!(
                "{}:{}:{}: {e}; expected one JSON object per line",
                texts.display(),
                n + 1,
                e.column()
            ))
        })?;
        let field = |k: &str| {
            value
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let id = value.get("id").cloned().unwrap_or(json!(n + 1));
        let (title, body) = match value.get("text") {
            Some(text) => (String::new(), text.as_str().unwrap_or("").to_string()),
            None => (field("title"), field("body")),
        };
        let fields = [(Field::Title, title.as_str()), (Field::Body, body.as_str())];
        let found = matcher.match_fields(&fields);
        let hits: Vec<_> = found.iter().flat_map(|m| m.hits.clone()).collect();
        writeln!(
            out,
            "{}",
            json!({"id": id, "matched": !found.is_empty(), "hits": hits})
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn sources_test(config: &Path, id: &str, as_json: bool) -> Result<ExitCode> {
    let settings = load(config)?;
    let source = settings
        .sources
        .iter()
        .find(|s| s.id == id)
        .cloned()
        .ok_or_else(|| {
            let ids: Vec<&str> = settings.sources.iter().map(|s| s.id.as_str()).collect();
            invalid(format!(
                "unknown source \"{id}\"; sources are {}",
                ids.join(", ")
            ))
        })?;
    let db = open(&settings).await?;
    let loaded = build(settings)?;
    let ctx = loaded.context(&db);
    let collected = pipeline::collect(&ctx, &source, None, false).await?;
    let mut out = std::io::stdout().lock();
    for a in &collected.articles {
        if as_json {
            let line = json!({
                "source": a.source, "url": a.url, "title": a.title, "published": rfc3339(a.published),
                "language": a.language, "body_chars": a.body.chars().count(), "body": a.body,
            });
            writeln!(out, "{line}")?;
        } else {
            writeln!(
                out,
                "{}\n    {}\n    published {}  language {}  body {} chars",
                a.title,
                a.url,
                a.published
                    .map(|p| p.to_rfc3339())
                    .unwrap_or_else(|| "unknown".into()),
                a.language.as_deref().unwrap_or("unknown"),
                a.body.chars().count()
            )?;
        }
    }
    for e in &collected.page_errors {
        eprintln!("page error: {e}");
    }
    if !as_json {
        writeln!(
            out,
            "{} items listed, {} articles extracted (nothing stored)",
            collected.items,
            collected.articles.len()
        )?;
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn extract(target: &str, as_json: bool) -> Result<ExitCode> {
    let (html, url) = if target.starts_with("http://") || target.starts_with("https://") {
        let url = url::Url::parse(target).map_err(|e| invalid(format!("{target}: {e}")))?;
        let fetcher = marsad::fetch::Fetcher::new(marsad::fetch::HttpOptions {
            user_agent: "marsad/0.1".into(),
            timeout: std::time::Duration::from_secs(20),
            max_body: 15 * 1024 * 1024,
            concurrency: 1,
            per_host: 1,
            max_redirects: 5,
        })?;
        match fetcher.get(&url, None).await? {
            marsad::fetch::FetchOutcome::Fetched(page) => (page.text, page.url),
            marsad::fetch::FetchOutcome::NotModified => {
                bail!("{target}: the server answered 304 to a plain GET")
            }
        }
    } else {
        let path = std::fs::canonicalize(target).map_err(|e| invalid(format!("{target}: {e}")))?;
        let bytes = std::fs::read(&path).map_err(|e| invalid(format!("{target}: {e}")))?;
        let (text, _) = marsad::fetch::charset::decode(&bytes, None);
        let url = url::Url::from_file_path(&path)
            .map_err(|_| invalid(format!("{target}: not an absolute path")))?;
        (text, url)
    };
    let e = marsad::extract::extract_article(&html, &url, None);
    if as_json {
        println!(
            "{}",
            json!({"url": url.to_string(), "title": e.title, "body": e.body, "published": rfc3339(e.published),
                   "author": e.author, "language": e.language})
        );
    } else {
        println!(
            "{}\n{}\n",
            e.title,
            "=".repeat(e.title.chars().count().min(80))
        );
        if let Some(p) = e.published {
            println!("published: {}", p.to_rfc3339());
        }
        if let Some(a) = &e.author {
            println!("author: {a}");
        }
        println!("{}", e.body);
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(config: &Path, as_json: bool) -> Result<ExitCode> {
    let settings = load(config)?;
    let db = open(&settings).await?;
    let now = Utc::now();
    let counts = db.article_counts(now - chrono::Duration::days(1)).await?;
    let states = db.source_states().await?;
    let mut out = std::io::stdout().lock();
    for source in &settings.sources {
        let st = states
            .iter()
            .find(|s| s.id == source.id)
            .cloned()
            .unwrap_or_default();
        let next = st
            .next_run
            .or_else(|| pipeline::next_run(&settings, source, now));
        let day = counts.get(&source.id).copied().unwrap_or(0);
        if as_json {
            let line = json!({
                "kind": "source", "id": source.id, "url": source.url.to_string(),
                "last_success": rfc3339(st.last_success), "last_attempt": rfc3339(st.last_attempt),
                "last_error": st.last_error, "consecutive_failures": st.consecutive_failures,
                "next_run": rfc3339(next), "articles_last_day": day,
            });
            writeln!(out, "{line}")?;
        } else {
            let health = match (&st.last_error, st.consecutive_failures) {
                (_, 0) if st.last_success.is_none() => "never fetched".to_string(),
                (None, 0) => "ok".to_string(),
                (Some(e), 0) => format!("ok, with warnings: {e}"),
                (e, n) => format!("FAILING ({n}×): {}", e.as_deref().unwrap_or("")),
            };
            writeln!(
                out,
                "source {:<20} {health}\n    last success {}  next run {}  articles (24h) {day}",
                source.id,
                st.last_success
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "-".into()),
                next.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into()),
            )?;
        }
    }
    for digest in &settings.digests {
        let tz = digest_run::timezone(&settings, digest);
        let runs = db.digest_runs(Some(&digest.name), 1).await?;
        let last = runs.first();
        let next = digest.schedule.next_after(now, tz);
        if as_json {
            let line = json!({
                "kind": "digest", "name": digest.name, "next": rfc3339(next),
                "last": last.map(|r| json!({"period_end": rfc3339(Some(r.period_end)), "state": r.state,
                    "items": r.items, "sent": rfc3339(r.sent), "last_error": r.last_error})),
            });
            writeln!(out, "{line}")?;
        } else {
            let last = last
                .map(|r| {
                    format!(
                        "{} ({}, {} items)",
                        r.period_end.to_rfc3339(),
                        r.state,
                        r.items
                    )
                })
                .unwrap_or_else(|| "never".into());
            writeln!(
                out,
                "digest {:<20} last {last}  next {}",
                digest.name,
                next.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into())
            )?;
        }
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Marks a folder as made by `marsad demo`, so a rerun may safely start it afresh.
const DEMO_MARKER: &str = ".marsad-demo";

async fn demo(dir: &Path) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    if dir.exists() {
        if !dir.join(DEMO_MARKER).exists() && std::fs::read_dir(dir)?.next().is_some() {
            return Err(invalid(format!(
                "{} exists and was not made by `marsad demo`; choose another folder with --dir",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot clear the demo folder {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join(DEMO_MARKER), "made by marsad demo\n")?;

    let server = marsad::demo::StaticServer::start(marsad::demo::site_routes())
        .await
        .context("cannot start the demo web server on 127.0.0.1")?;
    let config = marsad::demo::write_config(dir, &server.base_url())?;
    println!("demo site served at {}", server.base_url());
    println!("configuration written to {}", config.display());

    let settings = load(&config)?;
    let db = open(&settings).await?;
    let loaded = build(settings.clone())?;
    let mut out = std::io::stdout();
    let summary = fetch_all(&loaded, &db, &[], &mut out).await?;
    let (_, paths, failed) = send_digests(&settings, &db, &loaded, None, &mut out).await?;
    db.close().await;
    server.stop();

    println!(
        "\n{} sources, {} failed, {} new articles, {} matches, in {:.1}s",
        summary.sources,
        summary.failed,
        summary.new_articles,
        summary.matches,
        started.elapsed().as_secs_f64()
    );
    match paths.first() {
        Some(path) if failed == 0 && summary.failed == 0 => {
            println!("digest: {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!("the demo did not complete: see the lines above");
            Ok(ExitCode::from(1))
        }
    }
}
