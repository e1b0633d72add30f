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
use crate::digest::render::{self, DigestItem, DigestView, WatchlistSection};
use crate::settings::{DigestConfig, Settings};
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
    let start = match last_end {
        Some(last) => last,
        None => digest
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
    format!("{safe}.{}@{domain}", end.format("%Y%m%dT%H%M%SZ"))
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
    let subject = digest.subject.clone().unwrap_or_else(|| {
        let date = period.end.with_timezone(&tz).format("%Y-%m-%d");
        format!("marsad {}: {} matches, {}", digest.name, total, date)
    });
    Ok(DigestView {
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

/// Renders and records the run ending at `end`, unless one exists already. Returns the run's
/// period and whether it was newly recorded.
pub async fn record(
    db: &Db,
    settings: &Settings,
    digest: &DigestConfig,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(Period, bool, usize), RunError> {
    let tz = timezone(settings, digest);
    let last_end = db.last_digest_end(&digest.name).await?;
    if let Some(last) = last_end
        && last >= end
    {
        return Ok((
            Period {
                start: last,
                end: last,
            },
            false,
            0,
        ));
    }
    let period = period(digest, tz, end, last_end)?;
    let view = build_view(db, settings, digest, period).await?;
    let render_err = |source| RunError::Render {
        digest: digest.name.clone(),
        source,
    };
    let html = render::render_html(&view).map_err(render_err)?;
    let text = render::render_text(&view).map_err(render_err)?;
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
        })
        .await?;
    Ok((period, inserted, view.total))
}

/// What happened to one pending run.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub run: DigestRun,
    pub result: Result<Option<std::path::PathBuf>, String>,
}

/// Sends every pending run whose retry time has come. Failures stay pending with exponential
/// backoff (1 min, 2, 4, … up to 6 h); permanent failures (5xx, bad address) too, so an operator
/// who fixes the configuration gets the digest delivered rather than lost.
///
/// `force` ignores the backoff: a user running `digest send` wants an attempt now.
pub async fn deliver_pending(
    db: &Db,
    settings: &Settings,
    mailer: &Mailer,
    now: DateTime<Utc>,
    force: bool,
) -> Result<Vec<Delivery>, StoreError> {
    let mut out = Vec::new();
    for run in db.due_digest_runs(now, force).await? {
        let message = OutgoingMessage {
            message_id: run.message_id.clone(),
            from: settings.mail.from.clone(),
            to: run.recipients.clone(),
            subject: run.subject.clone(),
            html: run.html.clone(),
            text: run.text.clone(),
            date: run.created,
        };
        match mailer.send(&message).await {
            Ok(path) => {
                let to = path.as_ref().map(|p| p.display().to_string());
                db.mark_digest_sent(run.id, Utc::now(), to.as_deref())
                    .await?;
                tracing::info!(digest = %run.digest, message_id = %run.message_id, "digest delivered");
                out.push(Delivery {
                    run,
                    result: Ok(path),
                });
            }
            Err(e) => {
                let exp = run.attempts.clamp(0, 9) as u32;
                let wait = Duration::minutes(2_i64.pow(exp)).min(Duration::hours(6));
                let message = e.to_string();
                db.mark_digest_failed(run.id, &message, now + wait).await?;
                tracing::warn!(digest = %run.digest, error = %message, retry_in = %wait, "digest delivery failed");
                out.push(Delivery {
                    run,
                    result: Err(message),
                });
            }
        }
    }
    Ok(out)
}
