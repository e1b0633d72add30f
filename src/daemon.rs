//! The long-running loop: source timers, digest timers, reload and shutdown.
//!
//! Shutdown is a `CancellationToken` passed in (SIGTERM in production, the test harness in tests):
//! the loop stops scheduling, refreshes in flight abandon their HTTP requests but finish any
//! database write they started, and `run` returns. SIGHUP reloads the configuration; an invalid
//! edit is logged and the last good configuration keeps running.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
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
    let mut next_source = initial_source_times(&db, &loaded.settings).await?;
    let mut next_digest = initial_digest_times(&db, &loaded.settings).await?;
    let mut inflight: JoinSet<(String, Option<DateTime<Utc>>)> = JoinSet::new();
    let mut running: HashSet<String> = HashSet::new();
    let mut next_retry = Utc::now();

    notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!(
        sources = loaded.settings.sources.len(),
        digests = loaded.settings.digests.len(),
        "daemon started"
    );

    loop {
        let now = Utc::now();
        // Sources that are due and not already being refreshed.
        for source in &loaded.settings.sources {
            let due = next_source.get(&source.id).is_none_or(|t| *t <= now);
            if due && !running.contains(&source.id) {
                running.insert(source.id.clone());
                let (ctx, task_source, cancel) =
                    (loaded.context(&db), source.clone(), cancel.child_token());
                inflight.spawn(async move {
                    // The refresh says when it is due again (later than scheduled when it backs off).
                    let next = match pipeline::refresh(&ctx, &task_source, &cancel).await {
                        Ok(report) => report.next_run,
                        Err(e) => {
                            tracing::error!(source = %task_source.id, error = %e, "could not store a refresh");
                            None
                        }
                    };
                    (task_source.id, next)
                });
                next_source.insert(source.id.clone(), DateTime::<Utc>::MAX_UTC);
            }
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
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "could not deliver pending digests"),
            }
            next_retry = now + chrono::Duration::seconds(60);
        }

        notify(&[sd_notify::NotifyState::Watchdog]);
        let wake = next_source
            .values()
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
            _ = hangup.recv() => {
                notify(&[sd_notify::NotifyState::Reloading]);
                match settings::load(&config_path).map_err(|e| e.to_string()).and_then(Loaded::build) {
                    Ok(new) => {
                        loaded = new;
                        db.sync_sources(&source_infos(&loaded.settings)).await?;
                        let known: HashSet<&str> = loaded.settings.sources.iter().map(|s| s.id.as_str()).collect();
                        next_source.retain(|id, _| known.contains(id.as_str()));
                        next_digest = initial_digest_times(&db, &loaded.settings).await?;
                        tracing::info!("configuration reloaded");
                    }
                    Err(e) => tracing::error!(
                        error = %e,
                        "reload failed; keeping the last good configuration"
                    ),
                }
                notify(&[sd_notify::NotifyState::Ready]);
            }
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Ok((id, reported)) = done {
                    running.remove(&id);
                    if let Some(source) = loaded.settings.sources.iter().find(|s| s.id == id) {
                        let next = reported
                            .or_else(|| pipeline::next_run(&loaded.settings, source, Utc::now()))
                            .unwrap_or(DateTime::<Utc>::MAX_UTC);
                        next_source.insert(id, next);
                    }
                }
            }
            _ = tokio::time::sleep(sleep) => {}
        }
    }

    notify(&[sd_notify::NotifyState::Stopping]);
    tracing::info!(
        in_flight = inflight.len(),
        "shutting down; letting in-flight writes finish"
    );
    while inflight.join_next().await.is_some() {}
    db.close().await;
    Ok(())
}

/// A source is due at its stored next run, or now if it never ran or the time has passed.
async fn initial_source_times(
    db: &Db,
    settings: &Settings,
) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
    let states = db.source_states().await?;
    let now = Utc::now();
    Ok(settings
        .sources
        .iter()
        .map(|s| {
            let stored = states
                .iter()
                .find(|st| st.id == s.id)
                .and_then(|st| st.next_run);
            (s.id.clone(), stored.unwrap_or(now))
        })
        .collect())
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
