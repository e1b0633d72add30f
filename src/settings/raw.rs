//! The TOML shapes as users write them, and helpers to read them section by section.
//!
//! Each section (and each `[[source]]`, `[[digest]]`) is deserialized on its own from toml's
//! spanned document, so one mistake does not hide the mistakes after it: a check run lists every
//! broken section, each at its own position. Every struct denies unknown keys, so a typo is an
//! error rather than a silently ignored setting.

use serde::Deserialize;
use serde::de::{DeserializeOwned, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::error::{ConfigError, SourceText};
use super::{EmptyPolicy, MailTransport, SourceKind};

pub(crate) type Value<'a> = Spanned<DeValue<'a>>;
pub(crate) type Key<'a> = Spanned<DeString<'a>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [storage] table")]
pub(crate) struct RawStorage {
    pub url: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [http] table")]
pub(crate) struct RawHttp {
    pub user_agent: Option<String>,
    pub timeout: Option<Spanned<String>>,
    pub max_body: Option<Spanned<String>>,
    pub concurrency: Option<Spanned<usize>>,
    pub per_host: Option<Spanned<usize>>,
    pub max_redirects: Option<usize>,
    pub min_delay: Option<Spanned<String>>,
    pub robots: Option<bool>,
    pub deny_networks: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [schedule] table")]
pub(crate) struct RawSchedule {
    pub timezone: Option<Spanned<String>>,
    pub poll: Option<Spanned<String>>,
    pub lease: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [retention] table")]
pub(crate) struct RawRetention {
    pub articles: Option<Spanned<String>>,
    pub matched: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [metrics] table")]
pub(crate) struct RawMetrics {
    pub listen: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [mail] table")]
pub(crate) struct RawMail {
    pub transport: Option<Spanned<MailTransport>>,
    pub url: Option<Spanned<String>>,
    pub from: Option<Spanned<String>>,
    pub outbox_dir: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub password_env: Option<Spanned<String>>,
    pub tls_ca_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [stories] table")]
pub(crate) struct RawStories {
    pub window: Option<Spanned<String>>,
    pub window_articles: Option<Spanned<i64>>,
    pub threshold: Option<Spanned<f64>>,
}

/// Page language of a digest; decides `lang`/`dir` of the page chrome.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DigestLanguage {
    Ar,
    En,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[digest]] table")]
pub(crate) struct RawDigest {
    pub name: Spanned<String>,
    pub to: Spanned<Vec<Spanned<String>>>,
    pub schedule: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub watchlists: Spanned<Vec<Spanned<String>>>,
    pub subject: Option<String>,
    pub language: Option<DigestLanguage>,
    /// A folder with `digest.html.j2` / `digest.txt.j2` overriding the built-in templates.
    pub templates: Option<Spanned<String>>,
    pub empty: Option<EmptyPolicy>,
    /// Same as `schedule = "@immediate"`.
    pub alert: Option<bool>,
    /// How often an alert digest looks for new matches (default one minute).
    pub batch: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[source]] table")]
pub(crate) struct RawSource {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub kind: Spanned<SourceKind>,
    pub url: Spanned<String>,
    pub language: Option<String>,
    pub poll: Option<Spanned<String>>,
    pub listing: Option<RawListing>,
    pub article: Option<RawArticle>,
    #[serde(default)]
    pub full_text: bool,
    /// sitemap sources: only entries published (or modified) this recently, e.g. "2d".
    pub max_age: Option<Spanned<String>>,
    /// Zone of dates the source's pages write without one.
    pub timezone: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [source.listing] table")]
pub(crate) struct RawListing {
    pub links: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [source.article] table")]
pub(crate) struct RawArticle {
    pub title: Option<Spanned<String>>,
    pub body: Option<Spanned<String>>,
    pub published: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [match] table")]
pub(crate) struct RawMatch {
    pub query: Spanned<String>,
}

/// Parses a whole file. Only the first syntax error is reported: later ones are usually echoes
/// of it. The best-effort table comes back too, for the few settings worth salvaging.
pub(crate) fn parse_document<'a>(src: &SourceText<'a>) -> (DeTable<'a>, Option<ConfigError>) {
    let (table, errors) = DeTable::parse_recoverable(src.text);
    let first = errors.first().map(|e| src.toml_error(e, 0));
    (table.into_inner(), first)
}

/// A table's entries in file order (toml's map sorts them by name).
pub(crate) fn entries<'t, 'a>(table: &'t DeTable<'a>) -> Vec<(&'t Key<'a>, &'t Value<'a>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

/// Deserializes one value, reporting a failure at the offending key or value.
pub(crate) fn decode<T: DeserializeOwned>(
    src: &SourceText<'_>,
    value: &Value<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    match T::deserialize(value.clone().into_deserializer()) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(src.toml_error(&e, value.span().start));
            None
        }
    }
}

/// The elements of an array of tables such as `[[source]]`.
pub(crate) fn array_of_tables<'t, 'a>(
    src: &SourceText<'_>,
    header: &str,
    value: &'t Value<'a>,
    errors: &mut Vec<ConfigError>,
) -> &'t [Value<'a>] {
    match value.get_ref() {
        DeValue::Array(items) => items,
        _ => {
            errors.push(src.error(
                value.span().start,
                format!("expected [[{header}]] tables, one per {header}"),
            ));
            &[]
        }
    }
}

/// An error for a key that this file or table does not have, listing the ones it does.
pub(crate) fn unknown_key(src: &SourceText<'_>, key: &Key<'_>, expected: &[&str]) -> ConfigError {
    let expected: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
    src.error(
        key.span().start,
        format!(
            "unknown key `{}`, expected one of {}",
            key.get_ref(),
            expected.join(", ")
        ),
    )
}
