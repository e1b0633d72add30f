//! The long-running loop: source timers, digest timers, reload and shutdown.
//!
//! Shutdown is a `CancellationToken` passed in (SIGTERM in production, the test harness in tests):
//! the loop stops scheduling, refreshes in flight abandon their HTTP requests but finish any
//! database write they started, and `run` returns. SIGHUP, or an edit to marsad.toml, the sources
//! file or a watchlist file (seen by a file watcher, debounced), reloads the configuration; an
//! invalid edit is logged, recorded for `marsad status`, and the last good configuration keeps
//! running.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::deliver::Mailer;
use crate::digest::run as digest_run;
use crate::fetch::Fetcher;
use crate::matcher::Matcher;
use crate::pipeline::{self, Context};
use crate::settings::{self, Settings};
use crate::store::{Db, SourceInfo, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("{0}")]
    Setup(String),
}

/// How long after a digest's fire time the daemon records it.
const RECORD_GRACE: chrono::Duration = chrono::Duration::seconds(2);

/// The parts of a running configuration that are swapped together on reload.
pub struct Loaded {
    pub settings: Arc<Settings>,
    pub matcher: Arc<Matcher>,
    pub fetcher: Fetcher,
    pub mailer: Mailer,
}

impl Loaded {
    /// Builds everything a configuration needs; any failure leaves the previous one in place.
    pub fn build(settings: Settings) -> Result<Loaded, String> {
        let matcher = Matcher::compile(&settings.watchlists).map_err(|e| e.to_string())?;
        let fetcher = Fetcher::new(crate::fetch::HttpOptions {
            user_agent: settings.http.user_agent.clone(),
            timeout: settings.http.timeout,
            max_body: settings.http.max_body,
            concurrency: settings.http.concurrency,
            per_host: settings.http.per_host,
            max_redirects: settings.http.max_redirects,
            min_delay: settings.http.min_delay,
            robots: settings.http.robots,
            deny: settings.http.deny_networks.clone(),
        })
        .map_err(|e| e.to_string())?;
        let mailer = crate::deliver::mailer_from_settings(&settings.mail, settings.http.timeout)
            .map_err(|e| e.to_string())?;
        Ok(Loaded {
            settings: Arc::new(settings),
            matcher: Arc::new(matcher),
            fetcher,
            mailer,
        })
    }

    pub fn context(&self, db: &Db) -> Context {
        Context {
            settings: self.settings.clone(),
            db: db.clone(),
            fetcher: self.fetcher.clone(),
            matcher: self.matcher.clone(),
        }
    }
}

pub fn source_infos(settings: &Settings) -> Vec<SourceInfo> {
    settings
        .sources
        .iter()
        .map(|s| SourceInfo {
            id: s.id.clone(),
            name: s.name.clone(),
            kind: s.kind.as_str().to_string(),
            url: s.url.to_string(),
        })
        .collect()
}

/// How long the file watcher waits for an editor to finish writing (save = truncate + write,
/// or write a temporary file + rename) before reloading once.
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(300);

/// A hash of what a configuration was loaded from: marsad.toml, the sources file and every
/// `*.toml` in the watchlists directory (by name and content). `marsad status` shows it, so a
/// user can tell whether the daemon runs what is on disk.
pub fn config_version(settings: &Settings) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut add = |name: &Path| {
        hasher.update(name.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(name).unwrap_or_default());
        hasher.update([0]);
    };
    add(&settings.config_path);
    add(&settings.sources_path);
    let mut watchlists: Vec<PathBuf> = std::fs::read_dir(&settings.watchlists_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
                .collect()
        })
        .unwrap_or_default();
    watchlists.sort();
    for path in &watchlists {
        add(path);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// Names this daemon in the `daemon_state` table: host and configuration file.
fn instance_name(config_path: &Path) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    let path = std::fs::canonicalize(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    format!("{host}:{}", path.display())
}

/// Watches the directories holding marsad.toml and the sources file, and the watchlists
/// directory, and sends `()` when a `.toml` file in them changes. Directories rather than files
/// are watched because editors often save by renaming a new file over the old one. `None` (with
/// a warning) when the platform refuses: SIGHUP still works.
fn watch_config(
    settings: &Settings,
    changed: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let dir_of = |p: &Path| match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut dirs = vec![
        dir_of(&settings.config_path),
        dir_of(&settings.sources_path),
        settings.watchlists_dir.clone(),
    ];
    dirs.sort();
    dirs.dedup();
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        if event
            .paths
            .iter()
            .any(|p| p.extension().is_some_and(|ext| ext == "toml"))
        {
            let _ = changed.send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the configuration files; reload with SIGHUP");
            return None;
        }
    };
    for dir in dirs {
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch a configuration directory; reload with SIGHUP");
        }
    }
    Some(watcher)
}

/// Tells systemd (when started with Type=notify) we are ready / alive / stopping; a no-op elsewhere.
fn notify(state: &[sd_notify::NotifyState]) {
    let _ = sd_notify::notify(state);
}

/// Runs until `cancel` fires. `config_path` is re-read on SIGHUP.
pub async fn run(
    config_path: PathBuf,
    loaded: Loaded,
    db: Db,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;

    let mut loaded = loaded;
    db.sync_sources(&source_infos(&loaded.settings)).await?;
    let instance = instance_name(&config_path);
    let mut version = config_version(&loaded.settings);
    db.record_config_loaded(&instance, &version, Utc::now())
        .await?;
    let (changed_tx, mut changed) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = watch_config(&loaded.settings, changed_tx.clone());
    // The version of the files the last failed reload saw, so the watcher does not repeat a
    // failure (and its log line) for an event that changed nothing, e.g. a touch.
    let mut failed_version: Option<String> = None;
    let owner = crate::store::lease_owner_name();
    let mut next_digest = initial_digest_times(&db, &loaded.settings).await?;
    let mut inflight: JoinSet<(String, Option<DateTime<Utc>>)> = JoinSet::new();
    let mut running: HashSet<String> = HashSet::new();
    let mut next_retry = Utc::now();
    let mut next_prune = Utc::now();

    if let Some(addr) = loaded.settings.metrics_listen {
        let listener = crate::metrics::bind(addr).await.map_err(|e| {
            DaemonError::Setup(format!(
                "cannot listen on [metrics] listen = \"{addr}\": {e}; pick a free port or remove [metrics]"
            ))
        })?;
        tokio::spawn(crate::metrics::serve(listener, cancel.child_token()));
    }

    notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!(
        sources = loaded.settings.sources.len(),
        digests = loaded.settings.digests.len(),
        "daemon started"
    );
    match db.release_dead_source_leases().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            sources = n,
            "took over the sources a crashed daemon of this host held"
        ),
        Err(e) => tracing::warn!(error = %e, "could not look for leases of crashed daemons"),
    }

    loop {
        let now = Utc::now();
        // Lease due sources from the database, as many as there are free fetch slots, so several
        // daemons sharing a database each take a share and none fetches a source another holds.
        let free = loaded
            .settings
            .http
            .concurrency
            .max(1)
            .saturating_sub(running.len());
        let ids: Vec<String> = loaded
            .settings
            .sources
            .iter()
            .map(|s| s.id.clone())
            .collect();
        let lease = chrono::Duration::from_std(loaded.settings.schedule.lease)
            .unwrap_or(chrono::Duration::minutes(5));
        let leased = match db
            .lease_due_sources(&owner, &ids, now, now + lease, free)
            .await
        {
            Ok(leased) => leased,
            Err(e) => {
                tracing::error!(error = %e, "could not lease due sources");
                Vec::new()
            }
        };
        for id in leased {
            let Some(source) = loaded.settings.sources.iter().find(|s| s.id == id) else {
                continue;
            };
            running.insert(id.clone());
            let (ctx, task_source, cancel) =
                (loaded.context(&db), source.clone(), cancel.child_token());
            inflight.spawn(async move {
                let next = match pipeline::refresh(&ctx, &task_source, &cancel).await {
                    Ok(report) => {
                        crate::metrics::record_refresh(&report);
                        report.next_run
                    }
                    Err(e) => {
                        tracing::error!(source = %task_source.id, error = %e, "could not store a refresh");
                        None
                    }
                };
                (task_source.id, next)
            });
        }
        // Digests whose fire time has come: record the run, then deliver. Recording waits a
        // moment past the fire time so a refresh committing right at it is inside the period.
        let mut recorded = false;
        for digest in &loaded.settings.digests {
            if let Some(fire) = next_digest.get(&digest.name).copied()
                && fire + RECORD_GRACE <= now
            {
                match digest_run::record(&db, &loaded.settings, digest, fire, now).await {
                    Ok((_, outcome, items)) => {
                        recorded |= outcome == digest_run::Recorded::Pending;
                        if outcome != digest_run::Recorded::NothingNew {
                            tracing::info!(digest = %digest.name, items, ?outcome, "digest recorded");
                        }
                    }
                    Err(e) => {
                        tracing::error!(digest = %digest.name, error = %e, "digest not recorded")
                    }
                }
                let tz = digest_run::timezone(&loaded.settings, digest);
                let next = match digest.alert {
                    Some(batch) => {
                        fire + chrono::Duration::from_std(batch)
                            .unwrap_or(chrono::Duration::minutes(1))
                    }
                    None => digest
                        .schedule
                        .next_after(now, tz)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC),
                };
                // An alert that fell behind (a long stall) continues from now, not in a burst.
                next_digest.insert(digest.name.clone(), next.max(now));
            }
        }
        if recorded || now >= next_retry {
            match digest_run::deliver_pending(&db, &loaded.settings, &loaded.mailer, now, false)
                .await
            {
                Ok(deliveries) => {
                    for d in &deliveries {
                        crate::metrics::record_digest(d.result.is_ok());
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not deliver pending digests"),
            }
            next_retry = now + chrono::Duration::seconds(60);
        }

        if now >= next_prune {
            match prune(&db, &loaded.settings, now).await {
                Ok(p) => tracing::info!(
                    articles = p.articles,
                    matched_articles = p.matched_articles,
                    fetches = p.fetches,
                    "pruned by [retention]"
                ),
                Err(e) => tracing::error!(error = %e, "could not prune old articles"),
            }
            next_prune = now + chrono::Duration::days(1);
        }

        notify(&[sd_notify::NotifyState::Watchdog]);
        let next_source = if running.len() < loaded.settings.http.concurrency.max(1) {
            db.next_source_due(&ids, now).await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "could not read when sources are due");
                None
            })
        } else {
            None // a finishing refresh wakes the loop
        };
        crate::metrics::set_lag(next_source.map_or(chrono::Duration::zero(), |due| now - due));
        let wake = next_source
            .iter()
            .copied()
            .chain(next_digest.values().map(|t| *t + RECORD_GRACE))
            .chain([next_retry])
            .min()
            .unwrap_or(now + chrono::Duration::seconds(10));
        // Wake at least every 10 s so the watchdog is fed and clock jumps are noticed.
        let sleep = (wake - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(10));

        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = terminate.recv() => { cancel.cancel(); break; }
            _ = interrupt.recv() => { cancel.cancel(); break; }
            signal = async {
                tokio::select! {
                    _ = hangup.recv() => "SIGHUP",
                    Some(()) = changed.recv() => {
                        // Let the editor finish; one reload for a burst of events.
                        tokio::time::sleep(RELOAD_DEBOUNCE).await;
                        while changed.try_recv().is_ok() {}
                        "file change"
                    }
                }
            } => {
                let on_disk = config_version(&loaded.settings);
                let unchanged = on_disk == version || failed_version.as_deref() == Some(on_disk.as_str());
                if on_disk == version && failed_version.take().is_some() {
                    // The broken edit was undone: the running version is what is on disk again.
                    if let Err(e) = db.record_config_loaded(&instance, &version, Utc::now()).await {
                        tracing::error!(error = %e, "could not record the reload");
                    }
                }
                if signal == "SIGHUP" || !unchanged {
                    notify(&[sd_notify::NotifyState::Reloading]);
                    match settings::load(&config_path).map_err(|e| e.to_string()).and_then(Loaded::build) {
                        Ok(new) => {
                            loaded = new;
                            db.sync_sources(&source_infos(&loaded.settings)).await?;
                            next_digest = initial_digest_times(&db, &loaded.settings).await?;
                            version = config_version(&loaded.settings);
                            failed_version = None;
                            if let Err(e) = db.record_config_loaded(&instance, &version, Utc::now()).await {
                                tracing::error!(error = %e, "could not record the reload");
                            }
                            // The files named may have moved: watch what the new version names.
                            watcher = watch_config(&loaded.settings, changed_tx.clone());
                            tracing::info!(trigger = signal, version = %version, "configuration reloaded");
                        }
                        Err(e) => {
                            failed_version = Some(on_disk);
                            if let Err(e) = db.record_reload_error(&instance, &e, Utc::now()).await {
                                tracing::error!(error = %e, "could not record the reload error");
                            }
                            tracing::error!(
                                trigger = signal,
                                error = %e,
                                version = %version,
                                "reload failed; keeping the last good configuration"
                            );
                        }
                    }
                    notify(&[sd_notify::NotifyState::Ready]);
                }
            }
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Ok((id, reported)) = done {
                    running.remove(&id);
                    let now = Utc::now();
                    // The refresh says when it is due again (later than scheduled when it backs off).
                    let next = reported
                        .or_else(|| {
                            loaded
                                .settings
                                .sources
                                .iter()
                                .find(|s| s.id == id)
                                .and_then(|source| pipeline::next_run(&loaded.settings, source, now))
                        })
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    if let Err(e) = db.release_source(&id, &owner, now, next).await {
                        tracing::error!(source = %id, error = %e, "could not release a source lease");
                    }
                }
            }
            _ = tokio::time::sleep(sleep) => {}
        }
    }

    drop(watcher);
    notify(&[sd_notify::NotifyState::Stopping]);
    tracing::info!(
        in_flight = inflight.len(),
        "shutting down; letting in-flight writes finish"
    );
    while let Some(done) = inflight.join_next().await {
        if let Ok((id, next)) = done {
            // Give the source back at once so another daemon need not wait for the lease to
            // expire; a refresh cancelled before it stored anything is due again now.
            let now = Utc::now();
            if let Err(e) = db
                .release_source(&id, &owner, now, next.unwrap_or(now))
                .await
            {
                tracing::warn!(source = %id, error = %e, "could not release a source lease");
            }
        }
    }
    db.close().await;
    Ok(())
}

/// Applies `[retention]`: deletes what is older than it allows.
pub async fn prune(
    db: &Db,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<crate::store::Pruned, StoreError> {
    let age = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let articles = now
        .checked_sub_signed(age(settings.retention.articles))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .max(DateTime::<Utc>::UNIX_EPOCH);
    let matched = now
        .checked_sub_signed(age(settings.retention.matched))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .max(DateTime::<Utc>::UNIX_EPOCH);
    db.prune(articles, matched).await
}

/// The next fire time of each digest — or its most recent one, if a run was missed while the
/// daemon was down (one catch-up run covers the whole gap).
async fn initial_digest_times(
    db: &Db,
    settings: &Settings,
) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
    let now = Utc::now();
    let mut out = HashMap::new();
    for digest in &settings.digests {
        let tz = digest_run::timezone(settings, digest);
        let last_end = db.last_digest_end(&digest.name).await?;
        out.insert(
            digest.name.clone(),
            digest_run::first_fire(digest, tz, last_end, now),
        );
    }
    Ok(out)
}
