//! `[[digest]]` tables: checked last, because they refer to the watchlists directory.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::error::{ConfigError, SourceText};
use super::raw::{DigestLanguage, RawDigest};
use super::{DigestConfig, values};

/// How often an alert digest gathers new matches into one message, unless `batch` says otherwise.
const DEFAULT_BATCH: Duration = Duration::from_secs(60);

/// Validates the digests of `marsad.toml` (`src`) against the watchlist names that exist.
pub(crate) fn validate(
    src: &SourceText<'_>,
    base: &Path,
    digests: Vec<RawDigest>,
    watchlists: &[String],
    errors: &mut Vec<ConfigError>,
) -> Vec<DigestConfig> {
    let mut out = Vec::new();
    // name → byte offset of its first definition.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for digest in digests {
        let errors_before = errors.len();
        let name = digest.name.get_ref();
        let name_at = digest.name.span().start;
        if name.trim().is_empty() {
            errors.push(src.error(
                name_at,
                "digest name is empty; it names the digest in the CLI and in mail",
            ));
        } else if let Some(first) = seen.get(name) {
            errors.push(src.error(
                name_at,
                format!(
                    "duplicate digest name \"{name}\"; first defined on line {}",
                    src.line_of(*first)
                ),
            ));
        } else {
            seen.insert(name.clone(), name_at);
        }

        if digest.to.get_ref().is_empty() {
            errors.push(src.error(
                digest.to.span().start,
                "to is empty; list at least one address, e.g. to = [\"desk@example.org\"]",
            ));
        }
        for address in digest.to.get_ref() {
            if let Err(message) = values::mailbox(address.get_ref()) {
                errors.push(src.error(address.span().start, message));
            }
        }

        let immediate = digest
            .schedule
            .as_ref()
            .is_some_and(|s| crate::schedule::is_immediate(s.get_ref()));
        let alert = immediate || digest.alert == Some(true);
        let schedule = match &digest.schedule {
            Some(expr) => super::parse_schedule(src, expr, errors),
            None if alert => crate::schedule::Schedule::parse(crate::schedule::IMMEDIATE).ok(),
            None => {
                errors.push(src.error(
                    name_at,
                    "this digest has no schedule; add schedule = \"0 7 * * *\" (five cron fields) or \"@immediate\" for alerts",
                ));
                None
            }
        };
        if digest.alert == Some(false) && immediate {
            errors.push(src.error(
                name_at,
                "schedule = \"@immediate\" makes this an alert digest, but alert = false; remove one of them",
            ));
        }
        let batch = match &digest.batch {
            Some(text) if !alert => {
                errors.push(src.error(
                    text.span().start,
                    "batch only applies to alert digests (schedule = \"@immediate\" or alert = true)",
                ));
                None
            }
            Some(text) => values::duration(text.get_ref())
                .map_err(|message| errors.push(src.error(text.span().start, message)))
                .ok(),
            None => None,
        };
        let templates = digest.templates.as_ref().and_then(|dir| {
            let path = base.join(dir.get_ref());
            if path.is_dir() {
                Some(path)
            } else {
                errors.push(src.error(
                    dir.span().start,
                    format!(
                        "templates = \"{}\": {} is not a folder; it should hold digest.html.j2 and/or digest.txt.j2 (relative to this file)",
                        dir.get_ref(),
                        path.display()
                    ),
                ));
                None
            }
        });
        let timezone = digest.timezone.as_ref().and_then(|tz| {
            values::timezone(tz.get_ref())
                .map_err(|message| errors.push(src.error(tz.span().start, message)))
                .ok()
        });

        if digest.watchlists.get_ref().is_empty() {
            errors.push(src.error(
                digest.watchlists.span().start,
                "watchlists is empty; name at least one watchlist (a file stem in the watchlists directory)",
            ));
        }
        for watchlist in digest.watchlists.get_ref() {
            if !watchlists.contains(watchlist.get_ref()) {
                let known = if watchlists.is_empty() {
                    "there are no watchlist files".to_owned()
                } else {
                    format!("watchlists are {}", watchlists.join(", "))
                };
                errors.push(src.error(
                    watchlist.span().start,
                    format!("unknown watchlist \"{}\"; {known}", watchlist.get_ref()),
                ));
            }
        }

        if errors.len() > errors_before {
            continue;
        }
        let Some(schedule) = schedule else { continue };
        out.push(DigestConfig {
            name: digest.name.into_inner(),
            to: digest
                .to
                .into_inner()
                .into_iter()
                .map(|a| a.into_inner())
                .collect(),
            schedule,
            timezone,
            watchlists: digest
                .watchlists
                .into_inner()
                .into_iter()
                .map(|w| w.into_inner())
                .collect(),
            subject: digest.subject,
            language: match digest.language {
                Some(DigestLanguage::Ar) => "ar",
                Some(DigestLanguage::En) | None => "en",
            }
            .to_owned(),
            templates,
            empty: digest.empty.unwrap_or_default(),
            alert: alert.then(|| batch.unwrap_or(DEFAULT_BATCH)),
        });
    }
    out
}
