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
use marsad::matcher::{Hit, Matcher, WatchlistSpec};
use marsad::model::{Field, NewMatch};
use marsad::pipeline;
use marsad::settings::{self, ConfigErrors, DigestConfig, Settings};
use marsad::store::{Db, StoreError, StoredArticle};

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
            DigestCommand::Send { name, to: None } => digest_send(&config, name).await,
            DigestCommand::Send { name, to: Some(to) } => {
                digest_send_copy(&config, name, &to).await
            }
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
        Command::Watchlist { command } => match command {
            WatchlistCommand::Test {
                watchlist,
                texts: Some(texts),
                ..
            } => watchlist_test(&config, &watchlist, &texts),
            WatchlistCommand::Test {
                watchlist,
                since,
                json,
                ..
            } => {
                let since = since.map_or(THIRTY_DAYS, Into::into);
                watchlist_diff(&config, &watchlist, since, json).await
            }
            WatchlistCommand::Backfill { watchlist, since } => {
                watchlist_backfill(&config, &watchlist, since.into()).await
            }
        },
        Command::Sources {
            command: SourcesCommand::Test { id, json },
        } => sources_test(&config, &id, json).await,
        Command::Sources {
            command: SourcesCommand::Import { file },
        } => sources_import(&config, &file),
        Command::Sources {
            command: SourcesCommand::Export,
        } => sources_export(&config),
        Command::Extract { target, json } => extract(&target, json).await,
        Command::Status { json } => status(&config, json).await,
        Command::Search {
            query,
            since,
            limit,
            json,
        } => search(&config, &query, since.map(Into::into), limit, json).await,
        Command::Prune { json } => prune(&config, json).await,
        Command::Demo { dir } => demo(&dir).await,
    }
}

fn load(config: &Path) -> Result<Settings> {
    Ok(settings::load(config)?)
}

async fn open(settings: &Settings) -> Result<Db> {
    let db = Db::open(&settings.storage)
        .await
        .map_err(|e| store_failure(&settings.storage, e))?;
    db.sync_sources(&daemon::source_infos(settings))
        .await
        .map_err(|e| store_failure(&settings.storage, e))?;
    Ok(db)
}

/// The database a configuration names, safe to print (no password).
fn storage_target(storage: &settings::Storage) -> String {
    match storage {
        settings::Storage::Sqlite(path) => path.display().to_string(),
        settings::Storage::Postgres(url) => marsad::store::redact_url(url),
    }
}

/// A store error as one message naming the database. Its text already includes its causes, so
/// they are not chained again (`error: {err:#}` would repeat each of them).
fn store_failure(storage: &settings::Storage, e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Query { .. }
        | StoreError::Corrupt { .. }
        | StoreError::RefreshAborted { .. } => {
            anyhow!("the database {}: {e}", storage_target(storage))
        }
        // These name the database (or its folder) themselves.
        StoreError::CreateDir { .. } | StoreError::Connect { .. } | StoreError::Migrate { .. } => {
            anyhow!("{e}")
        }
    }
}

fn build(settings: Settings) -> Result<Loaded> {
    Loaded::build(settings).map_err(|e| anyhow!(e))
}

fn check(config: &Path) -> Result<ExitCode> {
    let settings = load(config)?;
    Matcher::compile(&settings.watchlists).map_err(|e| invalid(e.to_string()))?;
    // A user template with a syntax error or a misspelt variable should fail here, not at 07:00.
    for digest in settings.digests.iter().filter(|d| d.templates.is_some()) {
        let view = render::DigestView {
            name: digest.name.clone(),
            language: digest.language.clone(),
            ..Default::default()
        };
        let dir = digest.templates.as_deref();
        render::render_html_with(&view, dir)
            .and_then(|_| render::render_text_with(&view, dir))
            .map_err(|e| invalid(format!("digest {}: {e}", digest.name)))?;
    }
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
    /// Sources whose refresh could not be written to the database, with the first such error.
    store_failed: usize,
    store_error: Option<StoreError>,
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
    let bar = progress_bar(sources.len(), "fetching");
    let reports = pipeline::refresh_all_with(&ctx, &sources, &CancellationToken::new(), |id| {
        if let Some(bar) = &bar {
            bar.set_message(id.to_string());
            bar.inc(1);
        }
    })
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut summary = FetchSummary {
        sources: sources.len(),
        failed: 0,
        new_articles: 0,
        matches: 0,
        store_failed: 0,
        store_error: None,
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
                summary.store_failed += 1;
                writeln!(out, "{source:<20} store-error  {e}")?;
                summary.store_error.get_or_insert(e);
            }
        }
    }
    Ok(summary)
}

async fn fetch(config: &Path, only: &[String]) -> Result<ExitCode> {
    let settings = load(config)?;
    let db = open(&settings).await?;
    let target = storage_target(&settings.storage);
    let loaded = build(settings)?;
    let summary = fetch_all(&loaded, &db, only, &mut std::io::stdout()).await?;
    db.close().await;
    println!(
        "{} sources, {} failed, {} new articles, {} matches",
        summary.sources, summary.failed, summary.new_articles, summary.matches
    );
    if let Some(e) = &summary.store_error {
        // The other sources' articles are stored; these sources are fetched again next time.
        eprintln!(
            "error: {} of {} sources could not be stored in the database {target}: {}",
            summary.store_failed,
            summary.sources,
            e.advice()
                .unwrap_or("see the store errors above, fix the cause, then run marsad again")
        );
    }
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
        let dir = digest.templates.as_deref();
        let text = match format {
            DigestFormat::Html => render::render_html_with(&view, dir)?,
            DigestFormat::Text => render::render_text_with(&view, dir)?,
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
        let (_, outcome, items) = digest_run::record(db, settings, digest, now, now).await?;
        match outcome {
            digest_run::Recorded::Pending => {
                writeln!(out, "{}: recorded a digest with {items} items", digest.name)?
            }
            digest_run::Recorded::Skipped => writeln!(
                out,
                "{}: nothing matched; period recorded, nothing sent (empty = \"skip\")",
                digest.name
            )?,
            digest_run::Recorded::NothingNew => {
                writeln!(out, "{}: no new matches to alert about", digest.name)?
            }
            digest_run::Recorded::Exists => {}
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
            Err(e) if d.permanent => {
                failed += 1;
                writeln!(
                    out,
                    "{}: not delivered, failed permanently (fix the cause, then run `marsad digest send` again): {e}",
                    d.run.digest
                )?;
            }
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

/// `digest send NAME --to ADDRESS`: a one-off copy of the current period for trying a template
/// or the mail setup; nothing is recorded, so the scheduled digest still covers the period.
async fn digest_send_copy(config: &Path, name: Option<String>, to: &str) -> Result<ExitCode> {
    let Some(name) = name else {
        return Err(invalid(
            "--to needs a digest name: marsad digest send NAME --to ADDRESS",
        ));
    };
    let settings = load(config)?;
    let digest = pick_digests(&settings, Some(&name))?[0].clone();
    let db = open(&settings).await?;
    let loaded = build(settings.clone())?;
    let result =
        digest_run::send_copy(&db, &settings, &digest, &loaded.mailer, to, Utc::now()).await?;
    db.close().await;
    match result {
        Ok(Some(path)) => println!("{name}: copy written to {} (not recorded)", path.display()),
        Ok(None) => println!("{name}: copy sent to {to} (not recorded)"),
        Err(e) => {
            println!("{name}: copy not delivered: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
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

async fn search(
    config: &Path,
    query: &str,
    since: Option<std::time::Duration>,
    limit: i64,
    as_json: bool,
) -> Result<ExitCode> {
    let settings = load(config)?;
    let db = open(&settings).await?;
    let since = match since {
        Some(d) => Utc::now() - chrono::Duration::from_std(d).context("--since is too large")?,
        None => DateTime::<Utc>::UNIX_EPOCH,
    };
    let hits = db.search(query, since, limit).await?;
    let mut out = std::io::stdout().lock();
    for a in &hits {
        if as_json {
            let line = json!({
                "id": a.id, "source": a.source, "url": a.url, "title": a.title,
                "published": rfc3339(a.published), "fetched": rfc3339(Some(a.fetched)),
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
    if !as_json && hits.is_empty() {
        writeln!(out, "no stored article contains {query:?}")?;
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

fn sources_import(config: &Path, file: &Path) -> Result<ExitCode> {
    let settings = load(config)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let outlines = marsad::opml::parse(&file.display().to_string(), &text)
        .map_err(|e| invalid(e.to_string()))?;
    let mut known: std::collections::HashSet<String> =
        settings.sources.iter().map(|s| s.url.to_string()).collect();
    let mut taken: std::collections::HashSet<String> =
        settings.sources.iter().map(|s| s.id.clone()).collect();
    let mut entries = String::new();
    let (mut added, mut skipped) = (0, 0);
    let bar = progress_bar(outlines.len(), "importing");
    for outline in &outlines {
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        let normalized = url::Url::parse(&outline.xml_url)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| outline.xml_url.clone());
        if !known.insert(normalized) {
            skipped += 1;
            continue;
        }
        let id = marsad::opml::derive_id(outline.title.as_deref(), &outline.xml_url, &mut taken);
        entries.push_str(&marsad::opml::source_entry(&id, outline));
        tracing::info!(source = %id, url = %outline.xml_url, "imported");
        added += 1;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if added > 0 {
        let path = &settings.sources_path;
        let before = std::fs::read_to_string(path).unwrap_or_default();
        std::fs::write(path, format!("{before}{entries}"))
            .with_context(|| format!("cannot write {}", path.display()))?;
        // An imported URL the checks refuse must not leave a broken configuration behind.
        if let Err(e) = settings::load(config) {
            std::fs::write(path, before)
                .with_context(|| format!("cannot restore {}", path.display()))?;
            return Err(invalid(format!(
                "{}: the imported sources do not pass `marsad check`, nothing was changed:\n{e}",
                file.display()
            )));
        }
    }
    println!(
        "imported {added} sources into {}, skipped {skipped} already configured",
        settings.sources_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn sources_export(config: &Path) -> Result<ExitCode> {
    let settings = load(config)?;
    let sources: Vec<(String, &str, String)> = settings
        .sources
        .iter()
        .map(|s| (s.name.clone(), s.kind.as_str(), s.url.to_string()))
        .collect();
    print!("{}", marsad::opml::render("marsad sources", &sources));
    Ok(ExitCode::SUCCESS)
}

async fn prune(config: &Path, as_json: bool) -> Result<ExitCode> {
    let settings = load(config)?;
    let db = open(&settings).await?;
    let pruned = daemon::prune(&db, &settings, Utc::now()).await?;
    if as_json {
        println!("{}", serde_json::to_string(&pruned)?);
    } else {
        println!(
            "pruned {} unmatched and {} matched articles, {} fetch log entries",
            pruned.articles, pruned.matched_articles, pruned.fetches
        );
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
                "snippet": first_hit_snippet(&m.hits, &m.title, &m.body, &m.url),
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

/// The excerpt around the first hit, in the field it was found in: `{"field", "before", "hit",
/// "after"}`, or null without hits. A source hit is shown on its own (the name is short).
fn first_hit_snippet(hits: &[Hit], title: &str, body: &str, url: &str) -> serde_json::Value {
    let Some(hit) = hits.first() else {
        return serde_json::Value::Null;
    };
    let text = match hit.field {
        Field::Title => title,
        Field::Body => body,
        Field::Url => url,
        Field::Source => hit.text.as_str(),
    };
    let (start, end) = match hit.field {
        Field::Source => (0, hit.text.chars().count()),
        _ => (hit.start, hit.end),
    };
    let s = render::snippet(text, start, end, SNIPPET_CONTEXT);
    json!({"field": hit.field, "before": s.before, "hit": s.hit, "after": s.after})
}

/// Characters of context on each side of a hit in `matches --json` (as in the digest).
const SNIPPET_CONTEXT: usize = 80;

/// `watchlist test NAME --since` without a value is never built (clap requires one of the two);
/// this is only the fallback the type asks for.
const THIRTY_DAYS: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// The watchlist as its file stands now: a path, or a name looked up in the watchlists folder.
/// Reading the configuration validates the edited file with file:line:col errors.
fn current_spec(config: &Path, watchlist: &str) -> Result<(Settings, WatchlistSpec)> {
    let is_file = watchlist.ends_with(".toml") || Path::new(watchlist).is_file();
    let settings = load(config)?;
    if is_file {
        let spec = settings::load_watchlist(Path::new(watchlist))?;
        return Ok((settings, spec));
    }
    let spec = find_watchlist(&settings, watchlist)?;
    Ok((settings, spec))
}

fn find_watchlist(settings: &Settings, watchlist: &str) -> Result<WatchlistSpec> {
    settings
        .watchlists
        .iter()
        .find(|w| w.name == watchlist)
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = settings
                .watchlists
                .iter()
                .map(|w| w.name.as_str())
                .collect();
            invalid(format!(
                "unknown watchlist \"{watchlist}\"; watchlists are {}",
                names.join(", ")
            ))
        })
}

/// Runs one watchlist over the stored articles fetched since `start`: (article, its matches).
async fn match_stored_articles(
    settings: &Settings,
    db: &Db,
    spec: &WatchlistSpec,
    start: DateTime<Utc>,
) -> Result<(usize, Vec<(StoredArticle, NewMatch)>)> {
    let matcher =
        Matcher::compile(std::slice::from_ref(spec)).map_err(|e| invalid(e.to_string()))?;
    let articles = db.articles(start, &[]).await?;
    let total = articles.len();
    let mut found = Vec::new();
    let bar = progress_bar(total, "matching stored articles");
    for article in articles {
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        let name = settings
            .sources
            .iter()
            .find(|s| s.id == article.source)
            .map_or("", |s| s.name.as_str());
        if let Some(m) = pipeline::match_stored(&matcher, &article, name)
            .into_iter()
            .next()
        {
            found.push((article, m));
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok((total, found))
}

/// A progress bar on stderr for a long interactive command — only when stderr is a terminal, so
/// scripts, pipes and the journal get plain lines.
fn progress_bar(len: usize, what: &'static str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || len < 2 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(what);
    // Redraw while waiting on a slow source, so the terminal shows the command is alive.
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}

fn since_start(since: std::time::Duration) -> Result<DateTime<Utc>> {
    Ok(Utc::now() - chrono::Duration::from_std(since).context("--since is too large")?)
}

/// `watchlist test NAME --since`: what the edited file would change against the stored matches.
async fn watchlist_diff(
    config: &Path,
    watchlist: &str,
    since: std::time::Duration,
    as_json: bool,
) -> Result<ExitCode> {
    let (settings, spec) = current_spec(config, watchlist)?;
    let db = open(&settings).await?;
    let start = since_start(since)?;
    let (total, found) = match_stored_articles(&settings, &db, &spec, start).await?;
    let mut stored = db.stored_matches_since(&spec.name, start).await?;
    let mut out = std::io::stdout().lock();
    let (mut new, mut kept) = (0, 0);
    for (article, m) in &found {
        if stored.remove(&article.id).is_some() {
            kept += 1;
            continue;
        }
        new += 1;
        print_change(&mut out, as_json, "new", &spec.name, article, &m.hits)?;
    }
    // What is left was stored but no longer matches.
    let mut gone: Vec<(i64, Vec<Hit>)> = stored.into_iter().collect();
    gone.sort_by_key(|(id, _)| *id);
    let articles = db.articles(start, &[]).await?;
    for (id, hits) in &gone {
        if let Some(article) = articles.iter().find(|a| a.id == *id) {
            print_change(&mut out, as_json, "gone", &spec.name, article, hits)?;
        }
    }
    if !as_json {
        writeln!(
            out,
            "{}: {total} articles since {}: {new} would newly match, {} would stop matching, \
             {kept} still match",
            spec.name,
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            gone.len()
        )?;
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

fn print_change(
    out: &mut impl Write,
    as_json: bool,
    change: &str,
    watchlist: &str,
    article: &StoredArticle,
    hits: &[Hit],
) -> Result<()> {
    if as_json {
        let line = json!({
            "change": change, "watchlist": watchlist, "article": article.id, "url": article.url,
            "title": article.title, "published": rfc3339(article.published), "hits": hits,
            "snippet": first_hit_snippet(hits, &article.title, &article.body, &article.url),
        });
        writeln!(out, "{line}")?;
    } else {
        let sign = if change == "new" { '+' } else { '-' };
        let mut terms: Vec<&str> = Vec::new();
        for hit in hits {
            if !terms.contains(&hit.text.as_str()) {
                terms.push(&hit.text);
            }
        }
        writeln!(
            out,
            "{sign} {}\n    {}\n    terms: {}",
            article.title,
            article.url,
            terms.join(", ")
        )?;
    }
    Ok(())
}

/// `watchlist backfill NAME --since`: store the matches the watchlist finds among stored articles.
async fn watchlist_backfill(
    config: &Path,
    watchlist: &str,
    since: std::time::Duration,
) -> Result<ExitCode> {
    let settings = load(config)?;
    let spec = find_watchlist(&settings, watchlist)?;
    let db = open(&settings).await?;
    let start = since_start(since)?;
    let (total, found) = match_stored_articles(&settings, &db, &spec, start).await?;
    let matches: Vec<(i64, NewMatch)> = found
        .into_iter()
        .map(|(article, m)| (article.id, m))
        .collect();
    let added = db.add_matches(&matches, Utc::now()).await?;
    println!(
        "{}: {total} articles since {}: {} match, {added} new matches stored, {} already stored",
        spec.name,
        start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        matches.len(),
        matches.len() - added
    );
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
    let collected = pipeline::collect(&ctx, &source, None, pipeline::Known::Keep).await?;
    let mut out = std::io::stdout().lock();
    if !as_json && let Some(via) = &collected.via {
        writeln!(out, "using {via}")?;
    }
    for (a, _) in &collected.articles {
        if as_json {
            let line = json!({
                "source": a.source, "url": a.url, "title": a.title, "published": rfc3339(a.published),
                "language": a.language, "body_chars": a.body.chars().count(), "body": a.body,
                "via": collected.via,
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
    for note in &collected.notes {
        eprintln!("note: {note}");
    }
    for (url, reason) in &collected.skipped {
        // stderr under --json, so stdout stays one article per line.
        if as_json {
            eprintln!("skipped {url}: {reason}");
        } else {
            writeln!(out, "skipped {url}: {reason}")?;
        }
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
            ..marsad::fetch::HttpOptions::default()
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
    let e = marsad::extract::extractor().extract(&html, &marsad::extract::PageContext::new(&url));
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
    // A broken file on disk (a watchlist mid-edit) must not hide what the daemon is running:
    // the errors are shown, and the rest comes from the database alone.
    let settings = match settings::load(config) {
        Ok(settings) => settings,
        Err(errors) => {
            let storage = settings::load_storage(config).map_err(|_| errors.clone())?;
            let db = Db::open(&storage)
                .await
                .map_err(|e| store_failure(&storage, e))?;
            let mut out = std::io::stdout().lock();
            print_config_errors(&mut out, as_json, &errors)?;
            print_daemon_states(&mut out, as_json, &db).await?;
            db.close().await;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let db = open(&settings).await?;
    let now = Utc::now();
    let counts = db.article_counts(now - chrono::Duration::days(1)).await?;
    let states = db.source_states().await?;
    let mut out = std::io::stdout().lock();
    print_daemon_states(&mut out, as_json, &db).await?;
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
                "leased_by": st.lease_until.filter(|t| *t > now).and(st.lease_owner.clone()),
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
                    let error = r
                        .last_error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    format!(
                        "{} ({}, {} items){error}",
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

/// What each daemon runs: its configuration version and the last reload it refused.
async fn print_daemon_states(out: &mut impl Write, as_json: bool, db: &Db) -> Result<()> {
    for d in db.daemon_states().await? {
        if as_json {
            let line = json!({
                "kind": "daemon", "instance": d.instance, "config_version": d.config_version,
                "loaded_at": rfc3339(Some(d.loaded_at)), "last_reload_error": d.last_reload_error,
                "last_reload_error_at": rfc3339(d.last_reload_error_at), "updated": rfc3339(Some(d.updated)),
            });
            writeln!(out, "{line}")?;
        } else {
            writeln!(
                out,
                "daemon {}\n    config version {} loaded {}",
                d.instance,
                d.config_version,
                d.loaded_at.to_rfc3339()
            )?;
            if let (Some(e), Some(at)) = (&d.last_reload_error, d.last_reload_error_at) {
                writeln!(
                    out,
                    "    RELOAD FAILED at {}, still running the version above: {e}",
                    at.to_rfc3339()
                )?;
            }
        }
    }
    Ok(())
}

fn print_config_errors(out: &mut impl Write, as_json: bool, errors: &ConfigErrors) -> Result<()> {
    let lines: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
    if as_json {
        writeln!(out, "{}", json!({"kind": "config", "errors": lines}))?;
    } else {
        writeln!(
            out,
            "configuration on disk has {} error(s); a running daemon keeps its last good version:",
            lines.len()
        )?;
        for line in lines {
            writeln!(out, "    {line}")?;
        }
    }
    Ok(())
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
