//! Digest runs: which period a run covers, what it contains, and exactly-once delivery.
//!
//! Periods tile time without gaps or overlaps: a run covers `(start, end]` where `start` is the end
//! of the previous recorded run of the same digest (or, for the first run, the schedule's fire
//! time before `end`). A scheduled run ends at its fire time; `digest send` ends at "now" and the
//! next scheduled run starts there, so every match is in exactly one digest. A daemon that was down
//! for several fire times makes one run ending at the latest of them: it catches up once.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::deliver::{Mailer, OutgoingMessage};
use crate::digest::render::{
    self, DigestItem, DigestView, SourceHealth, VolumeNote, WatchlistCount, WatchlistSection,
};
use crate::settings::{DigestConfig, EmptyPolicy, Settings};
use crate::store::{Db, DigestRun, NewDigestRun, StoreError, StoredMatch, Story};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("digest {digest}: {source}")]
    Render {
        digest: String,
        #[source]
        source: render::DigestError,
    },
    #[error("digest {digest}: its schedule \"{schedule}\" never fires before {end}")]
    NoPeriod {
        digest: String,
        schedule: String,
        end: DateTime<Utc>,
    },
}

/// The window a run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

pub fn timezone(settings: &Settings, digest: &DigestConfig) -> Tz {
    digest.timezone.unwrap_or(settings.schedule.timezone)
}

/// The period ending at `end`, continuing from `last_end` when there was a previous run.
pub fn period(
    digest: &DigestConfig,
    tz: Tz,
    end: DateTime<Utc>,
    last_end: Option<DateTime<Utc>>,
) -> Result<Period, RunError> {
    let start = match (last_end, digest.alert) {
        (Some(last), _) => last,
        // A new alert digest starts with what matched in its last batch interval.
        (None, Some(batch)) => end - Duration::from_std(batch).unwrap_or(Duration::minutes(1)),
        (None, None) => digest
            .schedule
            .prev_at_or_before(end - Duration::seconds(1), tz)
            .ok_or_else(|| RunError::NoPeriod {
                digest: digest.name.clone(),
                schedule: digest.schedule.as_str().to_string(),
                end,
            })?,
    };
    Ok(Period { start, end })
}

/// A deterministic Message-ID for (digest, period): a resend after a crash carries the same id,
/// so mail clients and servers can recognise it.
pub fn message_id(settings: &Settings, digest: &str, end: DateTime<Utc>) -> String {
    let domain = settings
        .mail
        .from
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').trim())
        .filter(|d| !d.is_empty())
        .unwrap_or("marsad.localhost");
    let safe: String = digest
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Milliseconds too: two manual sends within one second are two periods and need two ids.
    format!("{safe}.{}@{domain}", end.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// Selects and groups the matches of a period into the view the templates render.
pub async fn build_view(
    db: &Db,
    settings: &Settings,
    digest: &DigestConfig,
    period: Period,
) -> Result<DigestView, RunError> {
    let tz = timezone(settings, digest);
    let matches = db
        .matches_between(period.start, period.end, &digest.watchlists)
        .await?;
    let ids: Vec<i64> = matches.iter().map(|m| m.article).collect();
    let stories = db.stories_of(&ids).await?;
    let names: HashMap<&str, &str> = settings
        .sources
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();

    let mut by_watchlist: BTreeMap<usize, Vec<StoredMatch>> = BTreeMap::new();
    let order = |w: &str| -> usize {
        let list: Vec<&str> = if digest.watchlists.is_empty() {
            settings
                .watchlists
                .iter()
                .map(|w| w.name.as_str())
                .collect()
        } else {
            digest.watchlists.iter().map(String::as_str).collect()
        };
        list.iter().position(|n| *n == w).unwrap_or(usize::MAX)
    };
    for m in matches {
        by_watchlist.entry(order(&m.watchlist)).or_default().push(m);
    }

    let mut sections = Vec::new();
    let mut total = 0;
    for (_, mut matches) in by_watchlist {
        matches.sort_by(|a, b| {
            b.published
                .or(Some(b.matched))
                .cmp(&a.published.or(Some(a.matched)))
        });
        let name = matches[0].watchlist.clone();
        let title = settings
            .watchlists
            .iter()
            .find(|w| w.name == name)
            .map(|w| w.title.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| name.clone());
        let items: Vec<DigestItem> = group_by_story(matches, &stories)
            .into_iter()
            .map(|(m, others)| {
                let mut item = item(&m, &names, tz);
                let reported: Vec<(String, String)> = others
                    .into_iter()
                    .map(|(source, url)| {
                        let name = names.get(source.as_str()).copied().unwrap_or(&source);
                        (name.to_string(), url)
                    })
                    .collect();
                item.also.splice(0..0, reported);
                item
            })
            .collect();
        total += items.len();
        sections.push(WatchlistSection { name, title, items });
    }
    let alert = digest.alert.is_some();
    let subject = digest.subject.clone().unwrap_or_else(|| {
        if alert {
            let time = period.end.with_timezone(&tz).format("%Y-%m-%d %H:%M");
            format!(
                "marsad alert {}: {} new matches, {}",
                digest.name, total, time
            )
        } else {
            let date = period.end.with_timezone(&tz).format("%Y-%m-%d");
            format!("marsad {}: {} matches, {}", digest.name, total, date)
        }
    });
    let counts = watchlist_counts(settings, digest, &sections);
    // Alerts stay short: source health and volume belong to the regular digests.
    let (health, surges) = if alert {
        (Vec::new(), Vec::new())
    } else {
        (
            source_health(db, &names, period, tz).await?,
            surges(db, digest, period, &counts).await?,
        )
    };
    Ok(DigestView {
        alert,
        counts,
        health,
        surges,
        name: digest.name.clone(),
        subject,
        language: digest.language.clone(),
        period: format!(
            "{} – {} ({})",
            period.start.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
            period.end.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
            tz.name()
        ),
        total,
        watchlists: sections,
    })
}

/// Every watchlist of the digest with its item count (zeros included), in the digest's order.
fn watchlist_counts(
    settings: &Settings,
    digest: &DigestConfig,
    sections: &[WatchlistSection],
) -> Vec<WatchlistCount> {
    let names: Vec<&str> = if digest.watchlists.is_empty() {
        settings
            .watchlists
            .iter()
            .map(|w| w.name.as_str())
            .collect()
    } else {
        digest.watchlists.iter().map(String::as_str).collect()
    };
    names
        .into_iter()
        .map(|name| {
            let title = settings
                .watchlists
                .iter()
                .find(|w| w.name == name)
                .map(|w| w.title.clone())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| name.to_string());
            let count = sections
                .iter()
                .find(|s| s.name == name)
                .map_or(0, |s| s.items.len());
            WatchlistCount {
                name: name.to_string(),
                title,
                count,
            }
        })
        .collect()
}

/// Sources whose fetches failed within the period, with their latest error: users otherwise
/// learn about a broken source weeks later, from what is missing.
async fn source_health(
    db: &Db,
    names: &HashMap<&str, &str>,
    period: Period,
    tz: Tz,
) -> Result<Vec<SourceHealth>, RunError> {
    let mut by_source: BTreeMap<String, SourceHealth> = BTreeMap::new();
    // Newest first, so the first failure seen per source is its latest.
    for fetch in db.recent_fetches(period.start).await? {
        if fetch.outcome != "error" || fetch.started > period.end {
            continue;
        }
        let entry = by_source
            .entry(fetch.source.clone())
            .or_insert_with(|| SourceHealth {
                source: names
                    .get(fetch.source.as_str())
                    .map_or_else(|| fetch.source.clone(), |n| n.to_string()),
                failures: 0,
                last_failure: fetch
                    .started
                    .with_timezone(&tz)
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                error: fetch
                    .error
                    .clone()
                    .unwrap_or_else(|| "unknown error".to_string()),
            });
        entry.failures += 1;
    }
    Ok(by_source.into_values().collect())
}

/// How many earlier periods' worth of history the volume note compares against.
const SURGE_HISTORY_PERIODS: i32 = 7;
/// A watchlist is "far above its usual level" above this multiple of its usual count...
const SURGE_FACTOR: f64 = 3.0;
/// ...and with at least this many items, so 1 item instead of 0 is no news.
const SURGE_MIN_ITEMS: usize = 5;

/// Watchlists with more than three times their usual number of items.
///
/// "Usual" is the match rate over up to seven period lengths before this period, scaled to this
/// period's length (so a short `digest send` period is compared fairly), counted from the
/// digest's first recorded period on. Less than three period lengths of history: no judgement.
async fn surges(
    db: &Db,
    digest: &DigestConfig,
    period: Period,
    counts: &[WatchlistCount],
) -> Result<Vec<VolumeNote>, RunError> {
    let len = period.end - period.start;
    let Some(first) = db.first_digest_start(&digest.name).await? else {
        return Ok(Vec::new());
    };
    if len <= Duration::zero() {
        return Ok(Vec::new());
    }
    let history_start = (period.start - len * SURGE_HISTORY_PERIODS).max(first);
    let history = period.start - history_start;
    if history < len * 3 {
        return Ok(Vec::new());
    }
    let before = db.match_counts_between(history_start, period.start).await?;
    let scale = len.num_seconds() as f64 / history.num_seconds() as f64;
    Ok(counts
        .iter()
        .filter_map(|c| {
            let usual = before.get(&c.name).copied().unwrap_or(0) as f64 * scale;
            (c.count >= SURGE_MIN_ITEMS && c.count as f64 > SURGE_FACTOR * usual).then(|| {
                VolumeNote {
                    title: c.title.clone(),
                    count: c.count,
                    usual: format!("{usual:.1}"),
                }
            })
        })
        .collect())
}

fn item(m: &StoredMatch, names: &HashMap<&str, &str>, tz: Tz) -> DigestItem {
    let mut terms: Vec<String> = Vec::new();
    for hit in &m.hits {
        if !terms.contains(&hit.text) {
            terms.push(hit.text.clone());
        }
    }
    // The snippet shows the first hit in the body; a title-only match needs no snippet.
    let snippet = m
        .hits
        .iter()
        .find(|h| h.field == crate::model::Field::Body)
        .map(|h| render::snippet(&m.body, h.start, h.end, 80));
    let source = names
        .get(m.source.as_str())
        .copied()
        .unwrap_or(&m.source)
        .to_string();
    DigestItem {
        title: if m.title.is_empty() {
            m.url.clone()
        } else {
            m.title.clone()
        },
        url: m.url.clone(),
        source,
        published: m
            .published
            .map(|p| p.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()),
        language: m.language.clone(),
        terms,
        snippet,
        also: m
            .urls
            .iter()
            .filter(|u| {
                crate::normalize::url::canonical_str(u).ok().as_deref() != Some(m.url.as_str())
            })
            .map(|u| (host_of(u), u.clone()))
            .collect(),
    }
}

/// One entry per story of a watchlist's matches (already in display order): the story's earliest
/// matching copy leads, at the position of the first of its copies, and every other article of
/// the story is returned as (source id, url), earliest first, for "also reported by". Articles
/// without a story stand alone.
fn group_by_story(
    matches: Vec<StoredMatch>,
    stories: &HashMap<i64, Story>,
) -> Vec<(StoredMatch, Vec<(String, String)>)> {
    let story_of = |m: &StoredMatch| stories.get(&m.article).map(|s| s.id);
    let when = |m: &StoredMatch| m.published.unwrap_or(m.matched);
    let mut order: Vec<Option<i64>> = Vec::new();
    let mut groups: HashMap<i64, Vec<StoredMatch>> = HashMap::new();
    let mut alone: Vec<StoredMatch> = Vec::new();
    for m in matches {
        match story_of(&m) {
            Some(story) => {
                if !groups.contains_key(&story) {
                    order.push(Some(story));
                }
                groups.entry(story).or_default().push(m);
            }
            None => {
                order.push(None);
                alone.push(m);
            }
        }
    }
    let mut alone = alone.into_iter();
    let mut out = Vec::new();
    for entry in order {
        let Some(story) = entry else {
            out.extend(alone.next().map(|m| (m, Vec::new())));
            continue;
        };
        let Some(mut copies) = groups.remove(&story) else {
            continue;
        };
        copies.sort_by_key(|m| (when(m), m.article));
        let lead = copies.swap_remove(0);
        let others = stories
            .get(&lead.article)
            .map(|s| {
                let mut members: Vec<_> = s
                    .articles
                    .iter()
                    .filter(|a| a.article != lead.article)
                    .collect();
                members.sort_by_key(|a| (a.published.unwrap_or(a.fetched), a.article));
                members
                    .into_iter()
                    .map(|a| (a.source.clone(), a.url.clone()))
                    .collect()
            })
            .unwrap_or_default();
        out.push((lead, others));
    }
    out
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| url.to_string())
}

/// The test hook `MARSAD_TEST_CRASH_AT=<point>`: when set to `point`, the process kills itself
/// with SIGKILL right there, the way a power cut or the OOM killer would. Only the exactly-once
/// tests set it; unset (always, in production) it does nothing. Points: `after_record` (the run
/// is stored, nothing sent) and `after_send` (the SMTP server accepted, not yet marked sent).
fn crash_point(point: &str) {
    if std::env::var("MARSAD_TEST_CRASH_AT").is_ok_and(|v| v == point) {
        tracing::warn!(point, "MARSAD_TEST_CRASH_AT: killing this process");
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        // `kill` missing: still die without running any cleanup.
        std::process::abort();
    }
}

/// Renders `view` with the digest's own templates when it has any.
fn render_parts(digest: &DigestConfig, view: &DigestView) -> Result<(String, String), RunError> {
    let render_err = |source| RunError::Render {
        digest: digest.name.clone(),
        source,
    };
    let dir = digest.templates.as_deref();
    let html = render::render_html_with(view, dir).map_err(render_err)?;
    let text = render::render_text_with(view, dir).map_err(render_err)?;
    Ok((html, text))
}

/// What [`record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A new run, pending delivery.
    Pending,
    /// A new run for an empty period under `empty = "skip"`: accounted for, never sent.
    Skipped,
    /// An alert digest with nothing new: nothing recorded; the next alert covers this time too.
    NothingNew,
    /// A run ending at or after `end` exists already.
    Exists,
}

/// Renders and records the run ending at `end`, unless one exists already. Returns the run's
/// period, what was recorded and the number of items.
///
/// An empty period of a digest with `empty = "skip"` is recorded as `skipped`, so it is neither
/// sent nor covered again. An alert digest records nothing when nothing matched: alerts are
/// messages about news, and leaving the period open loses nothing because the next alert starts
/// from the last recorded end.
pub async fn record(
    db: &Db,
    settings: &Settings,
    digest: &DigestConfig,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(Period, Recorded, usize), RunError> {
    let tz = timezone(settings, digest);
    let last_end = db.last_digest_end(&digest.name).await?;
    if let Some(last) = last_end
        && last >= end
    {
        let period = Period {
            start: last,
            end: last,
        };
        return Ok((period, Recorded::Exists, 0));
    }
    let period = period(digest, tz, end, last_end)?;
    let view = build_view(db, settings, digest, period).await?;
    if view.total == 0 && digest.alert.is_some() {
        return Ok((period, Recorded::NothingNew, 0));
    }
    let skip = view.total == 0 && digest.empty == EmptyPolicy::Skip;
    let (html, text) = render_parts(digest, &view)?;
    let inserted = db
        .insert_digest_run(&NewDigestRun {
            digest: digest.name.clone(),
            period_start: period.start,
            period_end: period.end,
            message_id: message_id(settings, &digest.name, period.end),
            recipients: digest.to.clone(),
            subject: view.subject.clone(),
            html,
            text,
            items: view.total,
            created: now,
            state: if skip { "skipped" } else { "pending" },
        })
        .await?;
    crash_point("after_record");
    let outcome = match (inserted, skip) {
        (false, _) => Recorded::Exists,
        (true, true) => Recorded::Skipped,
        (true, false) => Recorded::Pending,
    };
    if skip && inserted {
        tracing::info!(digest = %digest.name, "nothing matched; period recorded, nothing sent (empty = \"skip\")");
    }
    Ok((period, outcome, view.total))
}

/// Sends a one-off copy of what the digest's current period holds to `to`, for trying a
/// template or a mail setup. Nothing is recorded: the copy does not consume the period, and it
/// carries its own Message-ID (`<name>.copy.<time>@…`) so it is never mistaken for the digest.
pub async fn send_copy(
    db: &Db,
    settings: &Settings,
    digest: &DigestConfig,
    mailer: &Mailer,
    to: &str,
    now: DateTime<Utc>,
) -> Result<Result<Option<std::path::PathBuf>, crate::deliver::DeliverError>, RunError> {
    let tz = timezone(settings, digest);
    let last_end = db.last_digest_end(&digest.name).await?;
    let period = match last_end {
        Some(last) if last >= now => Period {
            start: last,
            end: last,
        },
        _ => period(digest, tz, now, last_end)?,
    };
    let view = build_view(db, settings, digest, period).await?;
    let (html, text) = render_parts(digest, &view)?;
    let id = message_id(settings, &digest.name, now);
    let message = OutgoingMessage {
        message_id: id.replacen('.', ".copy.", 1),
        from: settings.mail.from.clone(),
        to: vec![to.to_string()],
        subject: view.subject,
        html,
        text,
        date: now,
    };
    Ok(mailer.send(&message).await)
}

/// When a digest should next fire, given the end of its last recorded period: its most recent
/// fire time if that one was missed (the daemon was down: one catch-up run covers the whole
/// gap, however many fire times it spans), else the next fire time after `now`.
/// Alerts fire `batch` after `now`, and always continue from the last recorded end.
pub fn first_fire(
    digest: &DigestConfig,
    tz: Tz,
    last_end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    if let Some(batch) = digest.alert {
        return now + Duration::from_std(batch).unwrap_or(Duration::minutes(1));
    }
    let last_fire = digest.schedule.prev_at_or_before(now, tz);
    match (last_end, last_fire) {
        (Some(end), Some(fire)) if end < fire => fire,
        _ => digest
            .schedule
            .next_after(now, tz)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    }
}

/// What happened to one pending run.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub run: DigestRun,
    pub result: Result<Option<std::path::PathBuf>, String>,
    /// The failure needs a person (5xx, bad address, bad settings): the run is now `failed`.
    pub permanent: bool,
}

/// Sends every pending run whose retry time has come. Transient failures (4xx, timeouts,
/// dropped connections) stay pending with exponential backoff (1 min, 2, 4, … up to 6 h).
/// Permanent ones (5xx, bad address) become `failed`: not retried by the daemon, shown by
/// `status`, and retried by `digest send` once the operator has fixed the cause.
///
/// `force` ignores the backoff and includes failed runs: a user running `digest send` wants an
/// attempt now.
///
/// The one window that cannot be closed: a crash after the server accepted a message and before
/// it is marked sent. The restart sends it again — with the same Message-ID, so receiving
/// systems and mail clients can recognise the duplicate.
pub async fn deliver_pending(
    db: &Db,
    settings: &Settings,
    mailer: &Mailer,
    now: DateTime<Utc>,
    force: bool,
) -> Result<Vec<Delivery>, StoreError> {
    let owner = crate::store::lease_owner_name();
    let lease = Duration::from_std(settings.schedule.lease).unwrap_or(Duration::minutes(5));
    let mut out = Vec::new();
    for run in db.due_digest_runs(now, force).await? {
        // Another daemon sharing the database may be sending this very run: claim it first.
        let claimed = db
            .claim_digest_run(run.id, &owner, now, now + lease)
            .await?
            || db.take_over_digest_run(run.id, &owner, now + lease).await?;
        if !claimed {
            continue;
        }
        let message = OutgoingMessage {
            message_id: run.message_id.clone(),
            from: settings.mail.from.clone(),
            to: run.recipients.clone(),
            subject: run.subject.clone(),
            html: run.html.clone(),
            text: run.text.clone(),
            date: run.created,
        };
        let sent = mailer.send(&message).await;
        let id = run.id;
        // Released only after the outcome is recorded, so no other daemon can pick the run up
        // between the send and the `sent` mark.
        match sent {
            Ok(path) => {
                crash_point("after_send");
                let to = path.as_ref().map(|p| p.display().to_string());
                db.mark_digest_sent(run.id, Utc::now(), to.as_deref())
                    .await?;
                tracing::info!(digest = %run.digest, message_id = %run.message_id, "digest delivered");
                out.push(Delivery {
                    run,
                    result: Ok(path),
                    permanent: false,
                });
            }
            Err(e) => {
                let message = e.to_string();
                let permanent = !e.is_transient();
                if permanent {
                    db.mark_digest_failed(run.id, &message, None).await?;
                    tracing::error!(digest = %run.digest, error = %message, "digest delivery failed permanently; fix the cause, then run `marsad digest send`");
                } else {
                    let exp = run.attempts.clamp(0, 9) as u32;
                    let wait = Duration::minutes(2_i64.pow(exp)).min(Duration::hours(6));
                    db.mark_digest_failed(run.id, &message, Some(now + wait))
                        .await?;
                    tracing::warn!(digest = %run.digest, error = %message, retry_in = %wait, "digest delivery failed");
                }
                out.push(Delivery {
                    run,
                    result: Err(message),
                    permanent,
                });
            }
        }
        db.release_digest_run(id, &owner).await?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Hit;
    use crate::model::Field;
    use chrono::{TimeZone, Timelike};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// A configuration folder with one watchlist and a daily 07:00 Beirut digest.
    fn settings(dir: &std::path::Path) -> Settings {
        std::fs::create_dir_all(dir.join("watchlists")).unwrap();
        std::fs::write(
            dir.join("watchlists/ru.toml"),
            "[terms]\nru = [\"روسيا\"]\n[match]\nquery = \"ru\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("sources.toml"), "").unwrap();
        std::fs::write(
            dir.join("marsad.toml"),
            "[schedule]\ntimezone = \"Asia/Beirut\"\n[[digest]]\nname = \"daily\"\nto = [\"d@example.org\"]\n\
             schedule = \"0 7 * * *\"\nwatchlists = [\"ru\"]\n",
        )
        .unwrap();
        crate::settings::load(&dir.join("marsad.toml")).unwrap()
    }

    /// What the daemon does: fire, record a period ending at the fire time, fire again.
    #[test]
    fn periods_tile_time_across_beirut_dst_changes() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let digest = &s.digests[0];
        let tz = timezone(&s, digest);
        for (start, spans) in [
            // Spring forward on 2025-03-30 (00:00 → 01:00): the period ending that morning is 23 h.
            (utc(2025, 3, 28, 12, 0), [24, 23, 24, 24]),
            // Fall back on 2025-10-26 (00:00 → 23:00 the day before): that period is 25 h.
            (utc(2025, 10, 24, 12, 0), [24, 25, 24, 24]),
        ] {
            let mut now = start;
            let mut last_end = None;
            let mut hours = Vec::new();
            for _ in 0..4 {
                let fire = first_fire(digest, tz, last_end, now);
                let p = period(digest, tz, fire, last_end).unwrap();
                assert_eq!(fire.with_timezone(&tz).hour(), 7, "07:00 local: {fire}");
                assert_eq!(p.start.with_timezone(&tz).hour(), 7);
                if let Some(last) = last_end {
                    assert_eq!(p.start, last, "no gap, no overlap");
                }
                hours.push((p.end - p.start).num_hours());
                last_end = Some(p.end);
                now = fire + Duration::seconds(5);
            }
            assert_eq!(hours, spans, "from {start}");
        }
    }

    #[tokio::test]
    async fn a_daemon_down_for_three_fire_times_catches_up_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let digest = &s.digests[0];
        let tz = timezone(&s, digest);
        let db = Db::open_sqlite(&dir.path().join("var/marsad.db"))
            .await
            .unwrap();

        let day1 = utc(2025, 6, 1, 4, 0); // 07:00 in Beirut (UTC+3)
        let (_, outcome, _) = record(&db, &s, digest, day1, day1).await.unwrap();
        assert_eq!(outcome, Recorded::Pending);

        // Down from just after day 1 until the afternoon of day 4.
        let back = utc(2025, 6, 4, 13, 0);
        let last = db.last_digest_end("daily").await.unwrap();
        let fire = first_fire(digest, tz, last, back);
        assert_eq!(fire, utc(2025, 6, 4, 4, 0), "the latest missed fire time");
        let (p, outcome, _) = record(&db, &s, digest, fire, back).await.unwrap();
        assert_eq!(outcome, Recorded::Pending);
        assert_eq!((p.start, p.end), (day1, fire), "one run covers the gap");

        // Restarting again the same day: nothing more to catch up; recording again is a no-op.
        let last = db.last_digest_end("daily").await.unwrap();
        assert_eq!(first_fire(digest, tz, last, back), utc(2025, 6, 5, 4, 0));
        let (_, again, _) = record(&db, &s, digest, fire, back).await.unwrap();
        assert_eq!(again, Recorded::Exists);
        assert_eq!(db.digest_runs(Some("daily"), 10).await.unwrap().len(), 2);
        db.close().await;
    }

    #[tokio::test]
    async fn permanent_failures_wait_for_a_person_and_transient_ones_for_their_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let db = Db::open_sqlite(&dir.path().join("var/marsad.db"))
            .await
            .unwrap();
        let t = utc(2025, 6, 1, 4, 0);
        record(&db, &s, &s.digests[0], t, t).await.unwrap();
        record(&db, &s, &s.digests[0], t + Duration::days(1), t)
            .await
            .unwrap();
        let runs = db.due_digest_runs(t, false).await.unwrap();
        assert_eq!(runs.len(), 2);
        db.mark_digest_failed(runs[0].id, "550 no such user", None)
            .await
            .unwrap();
        db.mark_digest_failed(runs[1].id, "451 later", Some(t + Duration::minutes(2)))
            .await
            .unwrap();
        // The daemon: nothing now; the transient one after its backoff; never the 550.
        assert!(db.due_digest_runs(t, false).await.unwrap().is_empty());
        let later = db
            .due_digest_runs(t + Duration::minutes(3), false)
            .await
            .unwrap();
        assert_eq!(later.iter().map(|r| r.id).collect::<Vec<_>>(), [runs[1].id]);
        // `digest send`: both, now.
        assert_eq!(db.due_digest_runs(t, true).await.unwrap().len(), 2);
        let failed = &db.digest_runs(Some("daily"), 10).await.unwrap()[1];
        assert_eq!(failed.state, "failed");
        db.close().await;
    }

    fn stored(hits: Vec<Hit>) -> StoredMatch {
        StoredMatch {
            watchlist: "lebanon".into(),
            article: 1,
            source: "wire-ar".into(),
            url: "https://news.example/1".into(),
            urls: vec!["https://news.example/1".into()],
            title: "زيارة إلى بيروت".into(),
            body: "قال مسؤولون إن الوفد وصل إلى لبنان صباح اليوم بعد تأخير.".into(),
            published: None,
            language: Some("ar".into()),
            matched: Utc::now(),
            hits,
        }
    }

    fn hit(field: Field, text: &str, haystack: &str) -> Hit {
        let byte = haystack.find(text).expect("hit in text");
        let start = haystack[..byte].chars().count();
        Hit {
            term: text.into(),
            group: "lebanon".into(),
            field,
            start,
            end: start + text.chars().count(),
            text: text.into(),
        }
    }

    #[test]
    fn snippet_shows_the_first_body_hit_even_when_the_title_also_matched() {
        let m = stored(Vec::new());
        let hits = vec![
            hit(Field::Title, "بيروت", &m.title),
            hit(Field::Body, "لبنان", &m.body),
        ];
        let m = StoredMatch { hits, ..m };
        let item = item(&m, &HashMap::new(), chrono_tz::UTC);
        let snippet = item.snippet.expect("a body hit gives a snippet");
        assert_eq!(snippet.hit, "لبنان");
        assert!(snippet.before.ends_with("إلى "), "{snippet:?}");
    }

    #[test]
    fn a_title_only_match_has_no_snippet_but_lists_its_terms() {
        // The title is printed as the item's heading already; repeating it as an excerpt
        // would show the same words twice.
        let m = stored(Vec::new());
        let hits = vec![hit(Field::Title, "بيروت", &m.title)];
        let m = StoredMatch { hits, ..m };
        let item = item(&m, &HashMap::new(), chrono_tz::UTC);
        assert!(item.snippet.is_none());
        assert_eq!(item.terms, ["بيروت"]);
        assert_eq!(item.title, "زيارة إلى بيروت");
    }
}
