//! The long-running loop: source timers, digest timers, reload and shutdown.
//!
//! Shutdown is a `CancellationToken` passed in (SIGTERM in production, the test harness in tests):
//! the loop stops scheduling, refreshes in flight abandon their HTTP requests but finish any
//! database write they started, and `run` returns. SIGHUP, or an edit to marsad.toml, the sources
//! file or a watchlist file (seen by a file watcher, debounced), reloads the configuration; an
//! invalid edit is logged, recorded for `marsad status`, and the last good configuration keeps
//! running.

use std::collections::{BTreeSet, HashMap, HashSet};
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
use crate::store::{Db, SourceDue, SourceInfo, StoreError};

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

/// How often the daemon re-reads from the database when each of its sources is due, to notice
/// what other daemons (or a `marsad fetch` by hand) changed in between.
const RESYNC: chrono::Duration = chrono::Duration::seconds(60);

/// This daemon's view of when each of its sources can next be leased, ordered by that time.
///
/// Choosing what to lease from it costs the database work for a few candidates per turn of the
/// loop instead of a statement over every source (which made one refresh of 10,000 sources
/// quadratic). The database stays the authority: a candidate another daemon took or refreshed
/// meanwhile fails to lease and is re-read, and the whole view is re-read every [`RESYNC`].
/// Sources being refreshed by this daemon are not in it.
#[derive(Default)]
struct DueQueue {
    order: BTreeSet<(DateTime<Utc>, String)>,
    due: HashMap<String, DateTime<Utc>>,
}

impl DueQueue {
    /// Sets when `id` is next due, replacing what was known.
    fn set(&mut self, id: &str, at: DateTime<Utc>) {
        if let Some(old) = self.due.insert(id.to_string(), at) {
            self.order.remove(&(old, id.to_string()));
        }
        self.order.insert((at, id.to_string()));
    }

    fn remove(&mut self, id: &str) {
        if let Some(old) = self.due.remove(id) {
            self.order.remove(&(old, id.to_string()));
        }
    }

    /// Up to `limit` sources due at `now`, most overdue first.
    fn due_now(&self, now: DateTime<Utc>, limit: usize) -> Vec<String> {
        self.order
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// When the earliest source is due.
    fn next(&self) -> Option<DateTime<Utc>> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Takes in what the database says of some sources (of this configuration's `known` ones).
    fn update(&mut self, rows: &[SourceDue], known: &HashMap<String, usize>, now: DateTime<Utc>) {
        for row in rows.iter().filter(|r| known.contains_key(&r.id)) {
            self.set(&row.id, row.due(now));
        }
    }

    /// Rebuilds the view from the database: every source of `known` not in `running`.
    async fn resync(
        db: &Db,
        known: &HashMap<String, usize>,
        running: &HashSet<String>,
        now: DateTime<Utc>,
    ) -> Result<DueQueue, StoreError> {
        let rows = db.source_due_times(None).await?;
        let mut queue = DueQueue::default();
        queue.update(&rows, known, now);
        for id in running {
            queue.remove(id);
        }
        Ok(queue)
    }
}

/// Each source's position in the configuration, by id.
fn source_index(settings: &Settings) -> HashMap<String, usize> {
    settings
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect()
}

/// The parts of a running configuration that are swapped together on reload.
pub struct Loaded {
    pub settings: Arc<Settings>,
    pub matcher: Arc<Matcher>,
    pub fetcher: Fetcher,
    pub mailer: Mailer,
    pub collect_slots: Arc<pipeline::CollectSlots>,
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
            collect_slots: Context::collect_slots(&settings),
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
            lease_owner: None,
            collect_slots: self.collect_slots.clone(),
            unfetched: None,
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
    let mut inflight: JoinSet<(String, Option<DateTime<Utc>>, bool)> = JoinSet::new();
    let mut running: HashSet<String> = HashSet::new();
    let unfetched = Arc::new(pipeline::Unfetched::default());
    let mut next_retry = Utc::now();
    let mut next_prune = Utc::now();
    let mut index = source_index(&loaded.settings);
    let mut queue = DueQueue::default();
    let mut next_resync = Utc::now();

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
        // Lease due sources from the database, as many as there are free places for refreshes
        // (`REFRESHES_PER_SLOT` per fetch slot under way, of which `LEASED_PER_SLOT` still to
        // fetch: a refresh waiting for its write to commit does not hold up fetching, and one
        // waiting to fetch must not outlive its lease), so several daemons sharing a database
        // each take a share and none fetches a source another holds.
        let slots = loaded.settings.http.concurrency.max(1);
        let free_places = |running: usize| {
            (slots * pipeline::REFRESHES_PER_SLOT)
                .saturating_sub(running)
                .min((slots * pipeline::LEASED_PER_SLOT).saturating_sub(unfetched.count()))
        };
        let free = free_places(running.len());
        if now >= next_resync {
            match DueQueue::resync(&db, &index, &running, now).await {
                Ok(fresh) => queue = fresh,
                Err(e) => tracing::error!(error = %e, "could not read when sources are due"),
            }
            next_resync = now + RESYNC;
        }
        // Try to lease the sources this daemon believes due — twice as many candidates as free
        // slots, so that losing some to other daemons still fills the slots — at most `free`.
        // While more are due than there are free slots, lease a group at a time (an eighth of
        // the slots), not one source per finished refresh: each lease is a statement on the
        // shared database, and a 1,000-source refresh made a thousand of them.
        let mut candidates = queue.due_now(now, free.saturating_mul(2));
        let lease_step = (slots * pipeline::LEASED_PER_SLOT / 8).max(1);
        let wait_for_group = free < lease_step && candidates.len() > free;
        if wait_for_group {
            candidates.clear();
        }
        let lease = chrono::Duration::from_std(loaded.settings.schedule.lease)
            .unwrap_or(chrono::Duration::minutes(5));
        let leased = if candidates.is_empty() {
            Vec::new()
        } else {
            match db
                .lease_due_sources(&owner, &candidates, now, now + lease, free)
                .await
            {
                Ok(leased) => leased,
                Err(e) => {
                    // Try again in a while, not in a tight loop against a failing database.
                    tracing::error!(error = %e, "could not lease due sources");
                    for id in &candidates {
                        queue.set(id, now + chrono::Duration::seconds(10));
                    }
                    candidates.clear();
                    Vec::new()
                }
            }
        };
        // With `free` leased, the candidates left were over the limit, not lost: still due.
        let missed: Vec<String> = if leased.len() >= free {
            Vec::new()
        } else {
            candidates
                .iter()
                .filter(|c| !leased.iter().any(|s| &s.id == *c))
                .cloned()
                .collect()
        };
        if !missed.is_empty() {
            // Another daemon holds or refreshed them (or they were past the limit): learn when
            // they are due now. Ones the database does not answer for wait for the next resync.
            match db.source_due_times(Some(&missed)).await {
                Ok(rows) => {
                    for id in &missed {
                        queue.set(id, now + RESYNC);
                    }
                    queue.update(&rows, &index, now);
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not read when sources are due");
                    for id in &missed {
                        queue.set(id, now + chrono::Duration::seconds(10));
                    }
                }
            }
        }
        for state in leased {
            let id = state.id.clone();
            queue.remove(&id);
            let Some(source) = index.get(&id).map(|&i| &loaded.settings.sources[i]) else {
                continue;
            };
            running.insert(id);
            let (mut ctx, task_source, cancel) =
                (loaded.context(&db), source.clone(), cancel.child_token());
            ctx.lease_owner = Some(owner.clone());
            ctx.unfetched = Some(Arc::new(unfetched.ticket()));
            inflight.spawn(async move {
                match pipeline::refresh_leased(&ctx, &task_source, state, &cancel).await {
                    Ok(report) => {
                        crate::metrics::record_refresh(&report);
                        // Storing the refresh ended the lease; a cancelled one stored nothing.
                        let released = report.outcome != "cancelled";
                        (task_source.id, report.next_run, released)
                    }
                    Err(e) => {
                        tracing::error!(source = %task_source.id, error = %e, "could not store a refresh");
                        (task_source.id, None, false)
                    }
                }
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
        let next_source = if free_places(running.len()) > 0 && !wait_for_group {
            queue.next()
        } else {
            None // a finishing refresh wakes the loop
        };
        // Sources waiting for a free slot are behind schedule too.
        crate::metrics::set_lag(
            queue
                .next()
                .map_or(chrono::Duration::zero(), |due| now - due),
        );
        let wake = next_source
            .iter()
            .copied()
            .chain(next_digest.values().map(|t| *t + RECORD_GRACE))
            .chain([next_retry, next_resync])
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
                            index = source_index(&loaded.settings);
                            next_resync = Utc::now(); // sources may have come or gone
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
            // A refresh that has fetched leaves room to lease another.
            _ = unfetched.changed(), if unfetched.count() > 0 => {}
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Ok((id, reported, released)) = done {
                    running.remove(&id);
                    let now = Utc::now();
                    // The refresh says when it is due again (later than scheduled when it backs off).
                    let next = reported
                        .or_else(|| {
                            index
                                .get(&id)
                                .and_then(|&i| pipeline::next_run(&loaded.settings, &loaded.settings.sources[i], now))
                        })
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    if !released
                        && let Err(e) = db.release_source(&id, &owner, now, next).await
                    {
                        tracing::error!(source = %id, error = %e, "could not release a source lease");
                    }
                    if index.contains_key(&id) {
                        queue.set(&id, next);
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
        if let Ok((id, next, false)) = done {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs)
    }

    fn row(id: &str, next_run: Option<i64>, lease_until: Option<i64>) -> SourceDue {
        SourceDue {
            id: id.to_string(),
            next_run: next_run.map(at),
            lease_until: lease_until.map(at),
        }
    }

    #[test]
    fn a_source_is_due_at_its_next_run_or_when_a_live_lease_ends() {
        let now = at(100);
        assert_eq!(row("a", None, None).due(now), now, "never ran: due at once");
        assert_eq!(
            row("a", Some(40), None).due(now),
            at(40),
            "overdue keeps its time"
        );
        assert_eq!(
            row("a", Some(40), Some(90)).due(now),
            at(40),
            "expired lease"
        );
        assert_eq!(
            row("a", Some(40), Some(160)).due(now),
            at(160),
            "live lease"
        );
        assert_eq!(row("a", Some(300), Some(160)).due(now), at(300));
        assert_eq!(row("a", None, Some(160)).due(now), at(160));
    }

    #[test]
    fn the_queue_offers_the_most_overdue_sources_first_and_forgets_running_ones() {
        let known: HashMap<String, usize> = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, id)| (id.to_string(), i))
            .collect();
        let now = at(100);
        let mut queue = DueQueue::default();
        queue.update(
            &[
                row("a", Some(90), None),
                row("b", Some(20), None),
                row("c", Some(500), None),
                row("d", Some(50), Some(200)),
                row("gone", Some(10), None), // no longer configured: not offered
            ],
            &known,
            now,
        );
        assert_eq!(queue.due_now(now, 10), ["b", "a"]);
        assert_eq!(queue.due_now(now, 1), ["b"]);
        queue.remove("b"); // leased: being refreshed
        assert_eq!(queue.due_now(now, 10), ["a"]);
        assert_eq!(queue.next(), Some(at(90)));
        queue.set("a", at(400)); // refreshed: due next period
        assert_eq!(queue.due_now(now, 10), Vec::<String>::new());
        assert_eq!(queue.next(), Some(at(200)), "d, when its lease runs out");
        assert_eq!(queue.due_now(at(450), 10), ["d", "a"]);
        assert_eq!(queue.order.len(), queue.due.len(), "one entry per source");
    }
}
