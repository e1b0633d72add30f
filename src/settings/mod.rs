//! Configuration: `marsad.toml`, the sources file and the watchlists directory.
//!
//! `load` reads all three, checks everything that can be checked without the network (cron
//! expressions, time zones, CSS selectors, queries against their term groups, URLs, references
//! between files) and returns either a ready `Settings` or every problem found, each as
//! `file:line:col: message`. All files are checked in one run, because a user fixing a config
//! should not have to rerun `marsad check` once per mistake.
//!
//! Relative paths in `marsad.toml` are resolved against the directory of `marsad.toml`, so the
//! daemon behaves the same whatever its working directory.

mod digests;
mod error;
mod raw;
mod sources;
mod values;
mod watchlists;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use error::SourceText;
pub use error::{ConfigError, ConfigErrors};
use raw::{Key, RawHttp, RawMail, RawSchedule, RawStorage, RawStories, Value};
use toml::de::{DeTable, DeValue};
pub use watchlists::load_file as load_watchlist;

use crate::schedule::Schedule;

/// `sqlite://var/marsad.db`, relative to the config directory.
const DEFAULT_SQLITE_PATH: &str = "var/marsad.db";
const DEFAULT_USER_AGENT: &str = "marsad/0.1 (+https://github.com/marsad)";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
const DEFAULT_MAX_BODY: u64 = 15 * 1024 * 1024;
const DEFAULT_CONCURRENCY: usize = 16;
const DEFAULT_PER_HOST: usize = 2;
const DEFAULT_MAX_REDIRECTS: usize = 5;
const DEFAULT_MIN_DELAY: Duration = Duration::from_millis(500);
/// sitemap sources: entries older than this are ignored.
pub const DEFAULT_SITEMAP_MAX_AGE: Duration = Duration::from_secs(2 * 24 * 60 * 60);
const DEFAULT_POLL: &str = "*/30 * * * *";
const DEFAULT_OUTBOX_DIR: &str = "var/outbox";
const DEFAULT_FROM: &str = "marsad <marsad@localhost>";
const DEFAULT_SOURCES: &str = "sources.toml";
const DEFAULT_WATCHLISTS: &str = "watchlists";

/// The keys `marsad.toml` may have at its top level.
const MAIN_KEYS: &[&str] = &[
    "storage",
    "http",
    "schedule",
    "mail",
    "sources",
    "watchlists",
    "digest",
    "retention",
    "metrics",
    "stories",
];

/// Everything the daemon and the CLI need, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_path: PathBuf,
    pub storage: Storage,
    pub http: HttpSettings,
    pub schedule: ScheduleSettings,
    pub mail: MailSettings,
    pub sources: Vec<SourceConfig>,
    pub watchlists: Vec<crate::matcher::WatchlistSpec>,
    pub digests: Vec<DigestConfig>,
    /// The sources file and the watchlists directory as resolved from `marsad.toml`, so the
    /// daemon can watch them and version what it loaded.
    pub sources_path: PathBuf,
    pub watchlists_dir: PathBuf,
    pub retention: RetentionSettings,
    /// `[metrics] listen`: where the daemon serves Prometheus metrics; off when unset.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `[stories]`: how near-duplicates are grouped.
    pub stories: crate::dedupe::StoryParams,
}

/// `[retention]`: how long articles are kept (by fetch time); matched ones longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    pub articles: Duration,
    pub matched: Duration,
}

/// Where articles and state are kept, chosen by the URL's scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Absolute, or relative to the working directory when the config path itself was relative.
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub user_agent: String,
    pub timeout: Duration,
    pub max_body: u64,
    pub concurrency: usize,
    pub per_host: usize,
    pub max_redirects: usize,
    /// Shortest time between the starts of two requests to one host.
    pub min_delay: Duration,
    /// Whether robots.txt is honoured (default true).
    pub robots: bool,
    /// Addresses never connected to, on any hop (default: link-local).
    pub deny_networks: crate::fetch::deny::DenyList,
}

#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    /// The zone cron expressions are read in unless a digest names its own.
    pub timezone: chrono_tz::Tz,
    /// Poll schedule for sources without their own `poll`.
    pub poll: Schedule,
    /// How long a daemon holds a due source (or a pending digest) before another daemon sharing
    /// the database may take it over; longer than any one refresh, short enough to recover from a
    /// crashed daemon within a period.
    pub lease: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Write `.eml` files to `outbox_dir`; the default, so a fresh install sends nothing.
    Outbox,
    Smtp,
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub transport: MailTransport,
    /// `smtp://` or `smtps://`; always set when `transport` is `Smtp`.
    pub url: Option<String>,
    pub from: String,
    pub outbox_dir: PathBuf,
    pub username: Option<String>,
    /// Read at send time, so a rotated secret needs no reload; never both with `password_env`.
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// PEM file of extra CA certificates to trust for the SMTP server's TLS certificate (a
    /// private CA or a self-signed server); the web PKI roots stay trusted as well.
    pub tls_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Feed,
    Html,
    Sitemap,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Feed => "feed",
            SourceKind::Html => "html",
            SourceKind::Sitemap => "sitemap",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub id: String,
    /// Display name; the id when the file gives none.
    pub name: String,
    pub kind: SourceKind,
    pub url: url::Url,
    pub language: Option<String>,
    /// Zone of dates the source's pages write without one; `[schedule].timezone` when unset.
    pub timezone: Option<chrono_tz::Tz>,
    pub poll: Option<Schedule>,
    /// CSS selector for article links on a listing page. Without it an `html` source uses the
    /// feed its page advertises, or else finds article links by URL and link-text heuristics
    /// (see [`crate::extract::listing::discover_article_links`]).
    pub links: Option<String>,
    pub article_title: Option<String>,
    pub article_body: Option<String>,
    pub article_published: Option<String>,
    pub full_text: bool,
    /// sitemap sources: only entries dated within this age (default 2 days).
    pub max_age: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct DigestConfig {
    pub name: String,
    pub to: Vec<String>,
    pub schedule: Schedule,
    /// Overrides `[schedule].timezone` for this digest.
    pub timezone: Option<chrono_tz::Tz>,
    pub watchlists: Vec<String>,
    pub subject: Option<String>,
    /// `"ar"` (right-to-left page) or `"en"` (the default).
    pub language: String,
    /// Folder whose `digest.html.j2` / `digest.txt.j2` replace the built-in templates.
    pub templates: Option<PathBuf>,
    /// What to do with a period in which nothing matched.
    pub empty: EmptyPolicy,
    /// `Some(batch)` for an immediate-alert digest (`schedule = "@immediate"` or `alert = true`):
    /// the daemon looks for new matches every `batch` and sends them in one short message.
    pub alert: Option<Duration>,
}

/// `[[digest]] empty = "send" | "skip"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmptyPolicy {
    /// Send a digest saying that nothing matched (the default: silence looks like breakage).
    #[default]
    Send,
    /// Send nothing; the period is still recorded, so its matches are never lost or repeated.
    Skip,
}

/// Loads and validates `marsad.toml` at `path` and the files it names.
pub fn load(path: &Path) -> Result<Settings, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![SourceText::whole_file(
            path,
            format!("cannot read config file: {e}"),
        )])
    })?;
    let src = SourceText { path, text: &text };
    let base = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut errors = Vec::new();
    let main = read_main(&src, &base, &mut errors);

    let mut file_order = vec![path.to_path_buf()];
    let errors_before_sources = errors.len();
    let sources = sources::load(&src, &main.sources, &mut errors);
    file_order.push(main.sources.path.clone());
    let source_ids: Vec<String> = sources.iter().map(|s| s.id.clone()).collect();
    let sources_clean = errors[errors_before_sources..]
        .iter()
        .all(|e| e.file != main.sources.path);
    let watchlists = watchlists::load(
        &src,
        &main.watchlists,
        sources_clean.then_some(source_ids.as_slice()),
        &mut errors,
    );
    file_order.extend(watchlists.files.iter().cloned());

    let digests = if main.syntax_ok {
        digests::validate(&src, &base, main.digests, &watchlists.names, &mut errors)
    } else {
        Vec::new()
    };

    if !errors.is_empty() {
        let rank = |file: &Path| {
            file_order
                .iter()
                .position(|f| f == file)
                .unwrap_or(file_order.len())
        };
        errors.sort_by_key(|e| (rank(&e.file), e.line, e.col));
        return Err(ConfigErrors(errors));
    }
    Ok(Settings {
        config_path: path.to_path_buf(),
        storage: main.storage,
        http: main.http,
        schedule: main.schedule,
        mail: main.mail,
        sources,
        watchlists: watchlists.specs,
        digests,
        sources_path: main.sources.path,
        watchlists_dir: main.watchlists.path,
        retention: main.retention,
        metrics_listen: main.metrics_listen,
        stories: main.stories,
    })
}

/// Only the `[storage]` of `marsad.toml`, for tools that must reach the database even while
/// another file (a watchlist being edited) is broken, e.g. `marsad status`.
pub fn load_storage(path: &Path) -> Result<Storage, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![SourceText::whole_file(
            path,
            format!("cannot read config file: {e}"),
        )])
    })?;
    let src = SourceText { path, text: &text };
    let base = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut errors = Vec::new();
    let main = read_main(&src, &base, &mut errors);
    if errors.is_empty() {
        Ok(main.storage)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// A file or directory named in `marsad.toml`, with where it was named for error messages.
pub(crate) struct NamedPath {
    pub path: PathBuf,
    /// Byte offset of the key in `marsad.toml`; `None` when the default was used.
    pub key_offset: Option<usize>,
    /// Whether a missing file is worth reporting: not when `marsad.toml` itself is broken and
    /// the path may only be a default the user never meant.
    pub report_missing: bool,
}

impl NamedPath {
    /// An error about this path, at its key in `marsad.toml` (or the top of the file when the
    /// path is a default, with a hint on how to set it).
    fn error(&self, main: &SourceText<'_>, key: &str, message: String) -> ConfigError {
        match self.key_offset {
            Some(offset) => main.error(offset, message),
            None => main.error(
                0,
                format!("{message}; set {key} = \"PATH\" in this file if it lives elsewhere"),
            ),
        }
    }
}

/// What `marsad.toml` itself holds, with defaults filled in.
struct MainFile {
    syntax_ok: bool,
    storage: Storage,
    http: HttpSettings,
    schedule: ScheduleSettings,
    mail: MailSettings,
    sources: NamedPath,
    watchlists: NamedPath,
    digests: Vec<raw::RawDigest>,
    retention: RetentionSettings,
    metrics_listen: Option<std::net::SocketAddr>,
    stories: crate::dedupe::StoryParams,
}

fn read_main(src: &SourceText<'_>, base: &Path, errors: &mut Vec<ConfigError>) -> MainFile {
    let (doc, syntax_error) = raw::parse_document(src);
    let syntax_ok = syntax_error.is_none();
    errors.extend(syntax_error);

    let mut main = MainFile {
        syntax_ok,
        storage: Storage::Sqlite(base.join(DEFAULT_SQLITE_PATH)),
        http: HttpSettings {
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            concurrency: DEFAULT_CONCURRENCY,
            per_host: DEFAULT_PER_HOST,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            min_delay: DEFAULT_MIN_DELAY,
            robots: true,
            deny_networks: crate::fetch::deny::DenyList::default_list(),
        },
        schedule: ScheduleSettings {
            timezone: chrono_tz::UTC,
            poll: default_poll(),
            lease: DEFAULT_LEASE,
        },
        mail: MailSettings {
            transport: MailTransport::Outbox,
            url: None,
            from: DEFAULT_FROM.to_owned(),
            outbox_dir: base.join(DEFAULT_OUTBOX_DIR),
            username: None,
            password_file: None,
            password_env: None,
            tls_ca_file: None,
        },
        sources: NamedPath {
            path: base.join(DEFAULT_SOURCES),
            key_offset: None,
            report_missing: syntax_ok,
        },
        watchlists: NamedPath {
            path: base.join(DEFAULT_WATCHLISTS),
            key_offset: None,
            report_missing: syntax_ok,
        },
        digests: Vec::new(),
        retention: RetentionSettings {
            articles: DEFAULT_RETENTION_ARTICLES,
            matched: DEFAULT_RETENTION_MATCHED,
        },
        metrics_listen: None,
        stories: crate::dedupe::StoryParams::default(),
    };

    for (key, value) in raw::entries(&doc) {
        let name: &str = key.get_ref();
        let (value, stray_paths) = split_path_keys(name, value);
        for (path_key, path_value) in stray_paths {
            read_path_key(src, base, path_key, path_value, &mut main, errors);
        }
        match name {
            "sources" | "watchlists" => read_path_key(src, base, key, &value, &mut main, errors),
            // With a syntax error only the paths are salvaged, so the other files still get
            // checked; everything else in a broken file would only produce echo errors.
            _ if !syntax_ok => {}
            "storage" => {
                if let Some(storage) = raw::decode::<RawStorage>(src, &value, errors) {
                    read_storage(src, base, storage, &mut main, errors);
                }
            }
            "http" => {
                if let Some(http) = raw::decode::<RawHttp>(src, &value, errors) {
                    read_http(src, http, &mut main.http, errors);
                }
            }
            "schedule" => {
                if let Some(schedule) = raw::decode::<RawSchedule>(src, &value, errors) {
                    read_schedule(src, schedule, &mut main.schedule, errors);
                }
            }
            "mail" => {
                if let Some(mail) = raw::decode::<RawMail>(src, &value, errors) {
                    read_mail(src, base, &value, mail, &mut main.mail, errors);
                }
            }
            "retention" => {
                if let Some(retention) = raw::decode::<raw::RawRetention>(src, &value, errors) {
                    read_retention(src, retention, &mut main.retention, errors);
                }
            }
            "metrics" => {
                if let Some(metrics) = raw::decode::<raw::RawMetrics>(src, &value, errors)
                    && let Some(listen) = metrics.listen
                {
                    match listen.get_ref().parse::<std::net::SocketAddr>() {
                        Ok(addr) => main.metrics_listen = Some(addr),
                        Err(e) => errors.push(src.error(
                            listen.span().start,
                            format!(
                                "invalid listen address \"{}\": {e}; write e.g. \"127.0.0.1:9464\"",
                                listen.get_ref()
                            ),
                        )),
                    }
                }
            }
            "stories" => {
                if let Some(stories) = raw::decode::<RawStories>(src, &value, errors) {
                    read_stories(src, stories, &mut main.stories, errors);
                }
            }
            "digest" => {
                for item in raw::array_of_tables(src, "digest", &value, errors) {
                    main.digests.extend(raw::decode(src, item, errors));
                }
            }
            _ => errors.push(raw::unknown_key(src, key, MAIN_KEYS)),
        }
    }
    main
}

/// Keys that name other files; top-level keys, also accepted inside a section (see
/// `split_path_keys`).
const PATH_KEYS: &[&str] = &["sources", "watchlists"];

/// Takes `sources` and `watchlists` out of a section table.
///
/// They are top-level keys, but written after a section header (as in the documented example,
/// after `[mail]`) TOML puts them inside that section. Their meaning is unambiguous, so they are
/// accepted there rather than rejected as unknown keys of the section.
fn split_path_keys<'t, 'a>(
    name: &str,
    value: &'t Value<'a>,
) -> (Value<'a>, Vec<(&'t Key<'a>, &'t Value<'a>)>) {
    match value.get_ref() {
        DeValue::Table(table) if !PATH_KEYS.contains(&name) => {
            let (paths, rest): (Vec<_>, Vec<_>) = table
                .iter()
                .partition(|(key, _)| PATH_KEYS.contains(&key.get_ref().as_ref()));
            let rest: DeTable<'a> = rest
                .into_iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (Spanned::new(value.span(), DeValue::Table(rest)), paths)
        }
        _ => (value.clone(), Vec::new()),
    }
}

/// Reads `sources = "..."` or `watchlists = "..."`, refusing a second definition.
fn read_path_key(
    src: &SourceText<'_>,
    base: &Path,
    key: &Key<'_>,
    value: &Value<'_>,
    main: &mut MainFile,
    errors: &mut Vec<ConfigError>,
) {
    let Some(path) = raw::decode::<String>(src, value, errors) else {
        return;
    };
    let name: &str = key.get_ref();
    let target = if name == "sources" {
        &mut main.sources
    } else {
        &mut main.watchlists
    };
    if let Some(first) = target.key_offset {
        errors.push(src.error(
            key.span().start,
            format!("{name} is set twice; first on line {}", src.line_of(first)),
        ));
        return;
    }
    *target = NamedPath {
        path: base.join(path),
        key_offset: Some(key.span().start),
        report_missing: main.syntax_ok,
    };
}

/// Default `[retention]`: three months of articles, a year of matched ones.
const DEFAULT_RETENTION_ARTICLES: Duration = Duration::from_secs(90 * 86_400);
const DEFAULT_RETENTION_MATCHED: Duration = Duration::from_secs(365 * 86_400);

fn read_retention(
    src: &SourceText<'_>,
    retention: raw::RawRetention,
    out: &mut RetentionSettings,
    errors: &mut Vec<ConfigError>,
) {
    for (value, slot) in [
        (retention.articles, &mut out.articles),
        (retention.matched, &mut out.matched),
    ] {
        if let Some(value) = value {
            match values::duration(value.get_ref()) {
                Ok(d) => *slot = d,
                Err(message) => errors.push(src.error(value.span().start, message)),
            }
        }
    }
}

/// Default `[schedule] lease`: well beyond one refresh (timeouts are seconds), short next to a poll period.
const DEFAULT_LEASE: Duration = Duration::from_secs(5 * 60);

fn default_poll() -> Schedule {
    // A constant expression; a failure here is a bug caught by the tests of a minimal config.
    Schedule::parse(DEFAULT_POLL).unwrap_or_else(|e| unreachable!("default poll: {e}"))
}

fn read_storage(
    src: &SourceText<'_>,
    base: &Path,
    storage: RawStorage,
    main: &mut MainFile,
    errors: &mut Vec<ConfigError>,
) {
    if let Some(url) = storage.url {
        match values::storage(url.get_ref(), base) {
            Ok(storage) => main.storage = storage,
            Err(message) => errors.push(src.error(url.span().start, message)),
        }
    }
}

fn read_http(
    src: &SourceText<'_>,
    http: RawHttp,
    out: &mut HttpSettings,
    errors: &mut Vec<ConfigError>,
) {
    if let Some(user_agent) = http.user_agent {
        out.user_agent = user_agent;
    }
    if let Some(timeout) = http.timeout {
        match values::duration(timeout.get_ref()) {
            Ok(d) => out.timeout = d,
            Err(message) => errors.push(src.error(timeout.span().start, message)),
        }
    }
    if let Some(max_body) = http.max_body {
        match values::size(max_body.get_ref()) {
            Ok(n) => out.max_body = n,
            Err(message) => errors.push(src.error(max_body.span().start, message)),
        }
    }
    for (value, target, key) in [
        (http.concurrency, &mut out.concurrency, "concurrency"),
        (http.per_host, &mut out.per_host, "per_host"),
    ] {
        if let Some(value) = value {
            if *value.get_ref() == 0 {
                errors.push(src.error(
                    value.span().start,
                    format!("{key} must be at least 1, or nothing would ever be fetched"),
                ));
            } else {
                *target = value.into_inner();
            }
        }
    }
    if let Some(max_redirects) = http.max_redirects {
        out.max_redirects = max_redirects;
    }
    if let Some(min_delay) = http.min_delay {
        match values::duration_or_zero(min_delay.get_ref()) {
            Ok(d) => out.min_delay = d,
            Err(message) => errors.push(src.error(min_delay.span().start, message)),
        }
    }
    if let Some(robots) = http.robots {
        out.robots = robots;
    }
    if let Some(entries) = http.deny_networks {
        // The list replaces the default, so `deny_networks = []` denies nothing.
        let mut deny = crate::fetch::deny::DenyList::none();
        let mut ok = true;
        for entry in &entries {
            if let Err(message) = deny.add(entry.get_ref()) {
                errors.push(src.error(entry.span().start, message));
                ok = false;
            }
        }
        if ok {
            out.deny_networks = deny;
        }
    }
}

fn read_schedule(
    src: &SourceText<'_>,
    schedule: RawSchedule,
    out: &mut ScheduleSettings,
    errors: &mut Vec<ConfigError>,
) {
    if let Some(tz) = schedule.timezone {
        match values::timezone(tz.get_ref()) {
            Ok(tz) => out.timezone = tz,
            Err(message) => errors.push(src.error(tz.span().start, message)),
        }
    }
    if let Some(poll) = schedule.poll.and_then(|p| parse_schedule(src, &p, errors)) {
        out.poll = poll;
    }
    if let Some(lease) = schedule.lease {
        match values::duration(lease.get_ref()) {
            Ok(d) => out.lease = d,
            Err(message) => errors.push(src.error(lease.span().start, message)),
        }
    }
}

fn read_mail(
    src: &SourceText<'_>,
    base: &Path,
    table: &Value<'_>,
    mail: RawMail,
    out: &mut MailSettings,
    errors: &mut Vec<ConfigError>,
) {
    if let Some(transport) = &mail.transport {
        out.transport = *transport.get_ref();
    }
    if let Some(url) = &mail.url {
        match url::Url::parse(url.get_ref()) {
            Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host_str().is_some() => {
                out.url = Some(url.get_ref().clone());
            }
            Ok(_) => errors.push(src.error(
                url.span().start,
                format!(
                    "mail url \"{}\" must be smtp://host:port (STARTTLS when offered) or smtps://host:port",
                    url.get_ref()
                ),
            )),
            Err(e) => errors.push(src.error(
                url.span().start,
                format!("invalid mail url \"{}\": {e}", url.get_ref()),
            )),
        }
    } else if out.transport == MailTransport::Smtp {
        let at = mail
            .transport
            .as_ref()
            .map_or(table.span().start, |t| t.span().start);
        errors.push(src.error(
            at,
            "transport = \"smtp\" needs url = \"smtp://host:port\" (or smtps://) in [mail]",
        ));
    }
    if let Some(from) = mail.from {
        match values::mailbox(from.get_ref()) {
            Ok(()) => out.from = from.into_inner(),
            Err(message) => errors.push(src.error(from.span().start, message)),
        }
    }
    if let Some(dir) = mail.outbox_dir {
        out.outbox_dir = base.join(dir);
    }
    out.username = mail.username;
    out.password_file = mail.password_file.map(|p| base.join(p));
    out.tls_ca_file = mail.tls_ca_file.map(|p| base.join(p));
    if let Some(env) = mail.password_env {
        if out.password_file.is_some() {
            errors.push(src.error(
                env.span().start,
                "set password_file or password_env, not both",
            ));
        } else if env.get_ref().is_empty() {
            errors.push(src.error(
                env.span().start,
                "password_env must name an environment variable",
            ));
        } else {
            out.password_env = Some(env.into_inner());
        }
    }
}

fn read_stories(
    src: &SourceText<'_>,
    stories: RawStories,
    out: &mut crate::dedupe::StoryParams,
    errors: &mut Vec<ConfigError>,
) {
    if let Some(window) = stories.window {
        match values::duration(window.get_ref()) {
            Ok(d) => out.window = d,
            Err(message) => errors.push(src.error(window.span().start, message)),
        }
    }
    if let Some(threshold) = stories.threshold {
        let t = *threshold.get_ref();
        if t > 0.0 && t <= 1.0 {
            out.threshold = t;
        } else {
            errors.push(src.error(
                threshold.span().start,
                format!(
                    "threshold {t} must be above 0 and at most 1 (the share of word pairs two \
                     articles have in common); the default is {}",
                    crate::dedupe::DEFAULT_THRESHOLD
                ),
            ));
        }
    }
    if let Some(count) = stories.window_articles {
        match usize::try_from(*count.get_ref()) {
            Ok(n) if n >= 1 => out.window_articles = n,
            _ => errors.push(src.error(
                count.span().start,
                format!(
                    "window_articles = {} must be a positive number of articles (the newest \
                     ones the story window keeps, 4-5 KB of memory each); the default is {}",
                    count.get_ref(),
                    crate::dedupe::DEFAULT_WINDOW_ARTICLES
                ),
            )),
        }
    }
}

/// Parses a cron expression from the file, reporting a bad one at its value.
pub(crate) fn parse_schedule(
    src: &SourceText<'_>,
    expr: &Spanned<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<Schedule> {
    Schedule::parse(expr.get_ref())
        .map_err(|message| errors.push(src.error(expr.span().start, message)))
        .ok()
}

#[cfg(test)]
mod tests;
