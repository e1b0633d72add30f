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
    let owner = crate::store::lease_owner_name();
    let mut next_digest = initial_digest_times(&db, &loaded.settings).await?;
    let mut inflight: JoinSet<String> = JoinSet::new();
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
                match pipeline::refresh(&ctx, &task_source, &cancel).await {
                    Ok(report) => crate::metrics::record_refresh(&report),
                    Err(e) => {
                        tracing::error!(source = %task_source.id, error = %e, "could not store a refresh")
                    }
                }
                task_source.id
            });
        }
        // Digests whose fire time has come: record the run, then deliver.
        let mut recorded = false;
        for digest in &loaded.settings.digests {
            if let Some(fire) = next_digest.get(&digest.name).copied()
                && fire <= now
            {
                match digest_run::record(&db, &loaded.settings, digest, fire, now).await {
                    Ok((_, inserted, items)) => {
                        recorded |= inserted;
                        tracing::info!(digest = %digest.name, items, "digest recorded");
                    }
                    Err(e) => {
                        tracing::error!(digest = %digest.name, error = %e, "digest not recorded")
                    }
                }
                let tz = digest_run::timezone(&loaded.settings, digest);
                let next = digest
                    .schedule
                    .next_after(now, tz)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                next_digest.insert(digest.name.clone(), next);
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
            .chain(next_digest.values())
            .copied()
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
                if let Ok(id) = done {
                    running.remove(&id);
                    let now = Utc::now();
                    let next = loaded
                        .settings
                        .sources
                        .iter()
                        .find(|s| s.id == id)
                        .and_then(|source| pipeline::next_run(&loaded.settings, source, now))
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    if let Err(e) = db.release_source(&id, &owner, now, next).await {
                        tracing::error!(source = %id, error = %e, "could not release a source lease");
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
    while let Some(done) = inflight.join_next().await {
        if let Ok(id) = done {
            // Give the source back at once so another daemon need not wait for the lease to expire.
            let now = Utc::now();
            if let Err(e) = db.release_source(&id, &owner, now, now).await {
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
        let last_fire = digest.schedule.prev_at_or_before(now, tz);
        let last_end = db.last_digest_end(&digest.name).await?;
        let missed = matches!((last_end, last_fire), (Some(end), Some(fire)) if end < fire);
        let at = if missed {
            last_fire.unwrap_or(now)
        } else {
            digest
                .schedule
                .next_after(now, tz)
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
        out.insert(digest.name.clone(), at);
    }
    Ok(out)
}
