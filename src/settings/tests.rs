//! Loads real files from a temporary directory and checks what a user would see: the exact
//! `file:line:col: message` of each mistake, and the values of a config that is right.

use super::*;
use crate::model::Field;
use std::fs;
use tempfile::TempDir;

/// A config directory with `marsad.toml`, `sources.toml` and `watchlists/`.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    /// A valid minimal setup: empty `marsad.toml`, no sources, no watchlists.
    fn new() -> Fixture {
        let f = Fixture {
            dir: TempDir::new().unwrap(),
        };
        f.write("marsad.toml", "");
        f.write("sources.toml", "");
        fs::create_dir(f.path("watchlists")).unwrap();
        f
    }

    /// The ARCHITECTURE.md example: two sources, one watchlist, one digest.
    fn full() -> Fixture {
        let f = Fixture::new();
        f.write("marsad.toml", FULL_MAIN);
        f.write("sources.toml", FULL_SOURCES);
        f.write("watchlists/russia-israel.toml", FULL_WATCHLIST);
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn load(&self) -> Result<Settings, ConfigErrors> {
        load(&self.path("marsad.toml"))
    }

    /// The error lines as printed, with the temporary directory left out.
    fn errors(&self) -> Vec<String> {
        let errors = match self.load() {
            Ok(settings) => panic!("expected errors, loaded {settings:#?}"),
            Err(e) => e,
        };
        let prefix = format!("{}/", self.dir.path().display());
        let printed = errors.to_string();
        assert_eq!(
            printed.lines().count(),
            errors.0.len(),
            "one error per line"
        );
        printed
            .lines()
            .map(|line| line.strip_prefix(&prefix).unwrap_or(line).to_owned())
            .collect()
    }
}

const FULL_MAIN: &str = r#"[storage]
url = "sqlite://var/marsad.db"

[http]
user_agent = "marsad/0.1 (+https://example.org/marsad)"
timeout = "20s"
max_body = "15MiB"
concurrency = 16
per_host = 2
max_redirects = 3

[schedule]
timezone = "Asia/Beirut"
poll = "*/30 * * * *"

[mail]
transport = "smtp"
url = "smtp://127.0.0.1:25"
from = "marsad <marsad@example.org>"
outbox_dir = "var/outbox"
username = "marsad"
password_file = "secrets/smtp-password"

sources = "sources.toml"
watchlists = "watchlists"

[[digest]]
name = "daily"
to = ["desk@example.org"]
schedule = "0 7 * * *"
watchlists = ["russia-israel"]

[[digest]]
name = "weekly-ar"
to = ["Desk <desk@example.org>", "editor@example.org"]
schedule = "@weekly"
timezone = "Europe/London"
watchlists = ["russia-israel"]
subject = "ملخص الأسبوع"
language = "ar"
"#;

const FULL_SOURCES: &str = r#"[[source]]
id = "alkhanadeq"
name = "الخنادق"
kind = "html"
url = "https://alkhanadeq.org.lb/"
language = "ar"
poll = "0 * * * *"
[source.listing]
links = "a[href*='/post/']"
[source.article]
title = "h1"
body = ".article-body"
published = "time[datetime], .date"

[[source]]
id = "bbc-arabic"
kind = "feed"
url = "https://feeds.bbci.co.uk/arabic/rss.xml"
full_text = true
"#;

const FULL_WATCHLIST: &str = r#"title = "Russia–Israel relations"
fields = ["title", "body"]
[terms]
russia = ["روسيا", "موسكو", "الكرملين", "بوتين", "Russia", "Moscow", "Kremlin", "Putin", "Russian"]
israel = ["إسرائيل", "تل أبيب", "نتنياهو", "Israel", "Tel Aviv", "Netanyahu", "Israeli"]
[match]
query = "russia AND israel"
"#;

#[test]
fn full_example_loads_with_its_values() {
    let f = Fixture::full();
    let s = f.load().unwrap();
    assert_eq!(s.config_path, f.path("marsad.toml"));
    assert_eq!(s.storage, Storage::Sqlite(f.path("var/marsad.db")));

    assert_eq!(
        s.http.user_agent,
        "marsad/0.1 (+https://example.org/marsad)"
    );
    assert_eq!(s.http.timeout, Duration::from_secs(20));
    assert_eq!(s.http.max_body, 15 * 1024 * 1024);
    assert_eq!(
        (s.http.concurrency, s.http.per_host, s.http.max_redirects),
        (16, 2, 3)
    );

    assert_eq!(s.schedule.timezone, chrono_tz::Asia::Beirut);
    assert_eq!(s.schedule.poll.as_str(), "*/30 * * * *");

    assert_eq!(s.mail.transport, MailTransport::Smtp);
    assert_eq!(s.mail.url.as_deref(), Some("smtp://127.0.0.1:25"));
    assert_eq!(s.mail.from, "marsad <marsad@example.org>");
    assert_eq!(s.mail.outbox_dir, f.path("var/outbox"));
    assert_eq!(s.mail.username.as_deref(), Some("marsad"));
    assert_eq!(s.mail.password_file, Some(f.path("secrets/smtp-password")));
    assert_eq!(s.mail.password_env, None);

    assert_eq!(s.sources.len(), 2);
    let kh = &s.sources[0];
    assert_eq!(
        (kh.id.as_str(), kh.name.as_str()),
        ("alkhanadeq", "الخنادق")
    );
    assert_eq!(kh.kind, SourceKind::Html);
    assert_eq!(kh.url.as_str(), "https://alkhanadeq.org.lb/");
    assert_eq!(kh.language.as_deref(), Some("ar"));
    assert_eq!(kh.poll.as_ref().map(Schedule::as_str), Some("0 * * * *"));
    assert_eq!(kh.links.as_deref(), Some("a[href*='/post/']"));
    assert_eq!(kh.article_title.as_deref(), Some("h1"));
    assert_eq!(kh.article_body.as_deref(), Some(".article-body"));
    assert_eq!(
        kh.article_published.as_deref(),
        Some("time[datetime], .date")
    );
    assert!(!kh.full_text);
    let bbc = &s.sources[1];
    assert_eq!(
        (bbc.id.as_str(), bbc.name.as_str()),
        ("bbc-arabic", "bbc-arabic")
    );
    assert_eq!(bbc.kind, SourceKind::Feed);
    assert!(bbc.full_text);
    assert!(bbc.poll.is_none() && bbc.links.is_none() && bbc.language.is_none());

    assert_eq!(s.watchlists.len(), 1);
    let w = &s.watchlists[0];
    assert_eq!(w.name, "russia-israel");
    assert_eq!(w.title, "Russia–Israel relations");
    assert_eq!(w.fields, [Field::Title, Field::Body]);
    let group_names: Vec<&str> = w.groups.iter().map(|(g, _)| g.as_str()).collect();
    assert_eq!(group_names, ["russia", "israel"], "file order, not sorted");
    assert_eq!(w.groups[1].1[1], "تل أبيب");
    assert_eq!(w.groups[0].1.len(), 9);
    assert_eq!(w.query, "russia AND israel");

    assert_eq!(s.digests.len(), 2);
    let daily = &s.digests[0];
    assert_eq!(daily.name, "daily");
    assert_eq!(daily.to, ["desk@example.org"]);
    assert_eq!(daily.schedule.as_str(), "0 7 * * *");
    assert_eq!(daily.timezone, None);
    assert_eq!(daily.watchlists, ["russia-israel"]);
    assert_eq!(
        (daily.subject.as_deref(), daily.language.as_str()),
        (None, "en")
    );
    let weekly = &s.digests[1];
    assert_eq!(weekly.to.len(), 2);
    assert_eq!(weekly.timezone, Some(chrono_tz::Europe::London));
    assert_eq!(weekly.subject.as_deref(), Some("ملخص الأسبوع"));
    assert_eq!(weekly.language, "ar");
}

#[test]
fn minimal_config_uses_defaults() {
    let f = Fixture::new();
    let s = f.load().unwrap();
    assert_eq!(s.storage, Storage::Sqlite(f.path("var/marsad.db")));
    assert_eq!(s.http.user_agent, "marsad/0.1 (+https://github.com/marsad)");
    assert_eq!(s.http.timeout, Duration::from_secs(20));
    assert_eq!(s.http.max_body, 15 * 1024 * 1024);
    assert_eq!(
        (s.http.concurrency, s.http.per_host, s.http.max_redirects),
        (16, 2, 5)
    );
    assert_eq!(s.schedule.timezone, chrono_tz::UTC);
    assert_eq!(s.schedule.poll.as_str(), "*/30 * * * *");
    assert_eq!(s.mail.transport, MailTransport::Outbox);
    assert_eq!(s.mail.url, None);
    assert_eq!(s.mail.from, "marsad <marsad@localhost>");
    assert_eq!(s.mail.outbox_dir, f.path("var/outbox"));
    assert!(s.sources.is_empty() && s.watchlists.is_empty() && s.digests.is_empty());
}

#[test]
fn paths_resolve_against_the_config_directory() {
    let f = Fixture::new();
    f.write("lists/feeds.toml", "");
    f.write(
        "etc/marsad.toml",
        "sources = \"../lists/feeds.toml\"\nwatchlists = \"w-dir\"\n\
         [storage]\nurl = \"sqlite:///var/lib/marsad/db\"\n[mail]\noutbox_dir = \"out\"\npassword_env = \"SMTP_PASSWORD\"\n",
    );
    fs::create_dir(f.path("etc/w-dir")).unwrap();
    let s = load(&f.path("etc/marsad.toml")).unwrap();
    assert_eq!(
        s.storage,
        Storage::Sqlite(PathBuf::from("/var/lib/marsad/db"))
    );
    assert_eq!(s.mail.outbox_dir, f.path("etc/out"));
    assert_eq!(s.mail.password_env.as_deref(), Some("SMTP_PASSWORD"));
}

#[test]
fn error_has_file_line_col_and_message_fields() {
    let f = Fixture::new();
    f.write("marsad.toml", "[schedule]\ntimezone = \"Asia/Beriut\"\n");
    let errors = f.load().unwrap_err();
    assert_eq!(errors.0.len(), 1);
    let e = &errors.0[0];
    assert_eq!(e.file, f.path("marsad.toml"));
    assert_eq!((e.line, e.col), (2, 12));
    assert_eq!(
        e.message,
        "unknown timezone \"Asia/Beriut\"; expected an IANA name like \"Asia/Beirut\" or \"UTC\""
    );
    assert_eq!(
        e.to_string(),
        format!("{}:2:12: {}", f.path("marsad.toml").display(), e.message)
    );
}

#[test]
fn missing_config_file() {
    let f = Fixture::new();
    let errors = load(&f.path("nope.toml")).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert!(
        errors
            .to_string()
            .contains("nope.toml:1:1: cannot read config file"),
        "{errors}"
    );
}

#[test]
fn toml_syntax_error() {
    let f = Fixture::new();
    f.write(
        "marsad.toml",
        "[http]\ntimeout = \"20s\nmax_body = \"15MiB\"\n",
    );
    assert_eq!(
        f.errors(),
        ["marsad.toml:2:15: invalid basic string, expected `\"`"]
    );
}

#[test]
fn unknown_keys_name_the_key_and_the_expected_ones() {
    let f = Fixture::new();
    f.write(
        "marsad.toml",
        "[http]\ntimeuot = \"20s\"\n\n[schedul]\npoll = \"@daily\"\n",
    );
    f.write(
        "sources.toml",
        "[[source]]\nid = \"a\"\nkind = \"feed\"\nurl = \"https://example.org/feed\"\nfulltext = true\n",
    );
    f.write(
        "watchlists/w.toml",
        "[terms]\na = [\"x\"]\n[match]\nquery = \"a\"\nmode = \"any\"\n",
    );
    assert_eq!(
        f.errors(),
        [
            "marsad.toml:2:1: unknown key `timeuot`, expected one of `user_agent`, `timeout`, `max_body`, `concurrency`, `per_host`, `max_redirects`, `min_delay`, `robots`, `deny_networks`",
            "marsad.toml:4:2: unknown key `schedul`, expected one of `storage`, `http`, `schedule`, `mail`, `sources`, `watchlists`, `digest`, `retention`, `metrics`, `stories`",
            "sources.toml:5:1: unknown key `fulltext`, expected one of `id`, `name`, `kind`, `url`, `language`, `poll`, `listing`, `article`, `full_text`, `max_age`, `timezone`",
            "watchlists/w.toml:5:1: unknown key `mode`, expected `query`",
        ]
    );
}

#[test]
fn bad_cron_expressions_everywhere() {
    let f = Fixture::full();
    f.write(
        "marsad.toml",
        &FULL_MAIN
            .replace("poll = \"*/30 * * * *\"", "poll = \"0 */30 * * * *\"")
            .replace("schedule = \"0 7 * * *\"", "schedule = \"0 25 * * *\""),
    );
    f.write(
        "sources.toml",
        &FULL_SOURCES.replace("poll = \"0 * * * *\"", "poll = \"@fortnightly\""),
    );
    let errors = f.errors();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_eq!(
        errors[0],
        "marsad.toml:14:8: expected five fields (minute hour day-of-month month day-of-week) like \"0 7 * * 1-5\", got 6"
    );
    assert!(
        errors[1].starts_with("marsad.toml:30:12: invalid cron expression \"0 25 * * *\""),
        "{}",
        errors[1]
    );
    assert!(
        errors[2]
            .starts_with("sources.toml:7:8: unknown shortcut \"@fortnightly\"; use one of @yearly"),
        "{}",
        errors[2]
    );
}

#[test]
fn unknown_timezones() {
    let f = Fixture::full();
    f.write(
        "marsad.toml",
        &FULL_MAIN
            .replace("\"Asia/Beirut\"", "\"asia/beirut\"")
            .replace("\"Europe/London\"", "\"Europe/Londres\""),
    );
    assert_eq!(
        f.errors(),
        [
            "marsad.toml:13:12: unknown timezone \"asia/beirut\"; did you mean \"Asia/Beirut\"?",
            "marsad.toml:37:12: unknown timezone \"Europe/Londres\"; expected an IANA name like \"Asia/Beirut\" or \"UTC\"",
        ]
    );
}

#[test]
fn bad_css_selectors() {
    let f = Fixture::full();
    f.write(
        "sources.toml",
        &FULL_SOURCES
            .replace("links = \"a[href*='/post/']\"", "links = \"a[href*=\"")
            .replace("body = \".article-body\"", "body = \"..article-body\""),
    );
    let errors = f.errors();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("sources.toml:9:9: invalid CSS selector \"a[href*=\": "),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with("sources.toml:12:8: invalid CSS selector \"..article-body\": "),
        "{}",
        errors[1]
    );
}

#[test]
fn unknown_group_in_query_points_inside_the_string() {
    let f = Fixture::full();
    f.write(
        "watchlists/russia-israel.toml",
        &FULL_WATCHLIST.replace("russia AND israel", "russia AND isreal"),
    );
    // `query = "russia AND isreal"`: the quote is column 9, `isreal` column 21.
    assert_eq!(
        f.errors(),
        [
            "watchlists/russia-israel.toml:7:21: unknown group \"isreal\" in query; groups are russia, israel"
        ]
    );
}

#[test]
fn query_positions_account_for_escapes_and_multiline_strings() {
    let f = Fixture::new();
    f.write(
        "watchlists/escaped.toml",
        "[terms]\nrussia = [\"Russia\"]\n[match]\nquery = \"\\\"Tel Aviv\\\" AND russia OR isreal\"\n",
    );
    f.write(
        "watchlists/multiline.toml",
        "[terms]\nrussia = [\"Russia\"]\n[match]\nquery = '''\nrussia AND\n  (lebanon OR russia)'''\n",
    );
    assert_eq!(
        f.errors(),
        [
            "watchlists/escaped.toml:4:37: unknown group \"isreal\" in query; groups are russia",
            "watchlists/multiline.toml:6:4: unknown group \"lebanon\" in query; groups are russia",
        ]
    );
}

#[test]
fn duplicate_and_malformed_source_ids() {
    let f = Fixture::new();
    f.write(
        "sources.toml",
        "[[source]]\nid = \"bbc-arabic\"\nkind = \"feed\"\nurl = \"https://example.org/a\"\n\n\
         [[source]]\nid = \"BBC Arabic\"\nkind = \"feed\"\nurl = \"https://example.org/b\"\n\n\
         [[source]]\nid   = \"bbc-arabic\"\nkind = \"feed\"\nurl = \"https://example.org/c\"\n",
    );
    assert_eq!(
        f.errors(),
        [
            "sources.toml:7:6: source id \"BBC Arabic\" may only contain lower-case letters a-z, digits 0-9 and \"-\", e.g. \"bbc-arabic\"",
            "sources.toml:12:8: duplicate source id \"bbc-arabic\"; first defined on line 2",
        ]
    );
}

#[test]
fn bad_and_non_http_urls() {
    let f = Fixture::new();
    f.write(
        "sources.toml",
        "[[source]]\nid = \"a\"\nkind = \"feed\"\nurl = \"example.org/feed\"\n\n\
         [[source]]\nid = \"b\"\nkind = \"feed\"\nurl = \"ftp://example.org/feed\"\n",
    );
    assert_eq!(
        f.errors(),
        [
            "sources.toml:4:7: invalid source URL \"example.org/feed\": relative URL without a base; expected a full URL like \"https://example.org/news/\"",
            "sources.toml:9:7: source URL \"ftp://example.org/feed\" must start with http:// or https://",
        ]
    );
}

#[test]
fn missing_sources_file_points_at_its_key() {
    let f = Fixture::new();
    f.write(
        "marsad.toml",
        "[http]\ntimeout = \"5s\"\n\nsources = \"feeds.toml\"\n",
    );
    let errors = f.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let expected = format!(
        "marsad.toml:4:1: cannot read sources file \"{}\": ",
        f.path("feeds.toml").display()
    );
    assert!(errors[0].starts_with(&expected), "{}", errors[0]);
}

#[test]
fn missing_default_watchlists_dir_points_at_the_top_and_says_how_to_set_it() {
    let f = Fixture::new();
    fs::remove_dir(f.path("watchlists")).unwrap();
    let errors = f.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let expected = format!(
        "marsad.toml:1:1: cannot read watchlists directory \"{}\": ",
        f.path("watchlists").display()
    );
    assert!(errors[0].starts_with(&expected), "{}", errors[0]);
    assert!(
        errors[0].ends_with("; set watchlists = \"PATH\" in this file if it lives elsewhere"),
        "{}",
        errors[0]
    );
}

#[test]
fn digest_with_unknown_watchlist() {
    let f = Fixture::full();
    f.write(
        "marsad.toml",
        &FULL_MAIN.replace(
            "watchlists = [\"russia-israel\"]\n\n",
            "watchlists = [\"russia-israel\", \"russia-iran\"]\n\n",
        ),
    );
    assert_eq!(
        f.errors(),
        ["marsad.toml:31:32: unknown watchlist \"russia-iran\"; watchlists are russia-israel"]
    );
}

#[test]
fn empty_term_group_and_empty_term() {
    let f = Fixture::new();
    f.write(
        "watchlists/w.toml",
        "[terms]\nrussia = [\"روسيا\", \"\"]\nisrael = []\n[match]\nquery = \"russia AND israel\"\n",
    );
    assert_eq!(
        f.errors(),
        [
            // Columns count characters: روسيا is 5 characters but 10 bytes.
            "watchlists/w.toml:2:20: empty term in group \"russia\"; remove it or write a word",
            "watchlists/w.toml:3:10: term group \"israel\" is empty; list at least one word or phrase",
        ]
    );
}

#[test]
fn html_source_without_links_is_valid_and_max_age_is_for_sitemaps() {
    let f = Fixture::new();
    f.write(
        "sources.toml",
        "[[source]]\nid = \"site\"\nkind = \"html\"\nurl = \"https://example.org/\"\n[source.article]\ntitle = \"h1\"\n\n\
         [[source]]\nid = \"map\"\nkind = \"sitemap\"\nurl = \"https://example.org/news-sitemap.xml\"\nmax_age = \"6h\"\n\n\
         [[source]]\nid = \"bad\"\nkind = \"html\"\nurl = \"https://example.org/\"\nmax_age = \"6h\"\n",
    );
    assert_eq!(
        f.errors(),
        [
            "sources.toml:18:11: max_age applies to sitemap sources only; remove it or set kind = \"sitemap\""
        ]
    );
}

#[test]
fn http_min_delay_and_robots_are_read() {
    let f = Fixture::new();
    f.write(
        "marsad.toml",
        "[http]\nmin_delay = \"0s\"\nrobots = false\n",
    );
    f.write("sources.toml", "");
    let s = f.load().expect("valid");
    assert_eq!(s.http.min_delay, std::time::Duration::ZERO);
    assert!(!s.http.robots);
    f.write("marsad.toml", "[http]\nmin_delay = \"soon\"\n");
    let errors = f.errors();
    assert!(
        errors[0].starts_with("marsad.toml:2:13: invalid duration \"soon\""),
        "{errors:?}"
    );
}

#[test]
fn http_deny_networks_are_read_and_replace_the_default() {
    let f = Fixture::new();
    f.write("sources.toml", "");
    f.write("marsad.toml", "");
    let s = f.load().expect("valid");
    let ip = |t: &str| t.parse::<std::net::IpAddr>().unwrap();
    // By default only link-local (cloud metadata) is denied; loopback stays usable.
    assert!(s.http.deny_networks.denies(ip("169.254.169.254")).is_some());
    assert!(s.http.deny_networks.denies(ip("127.0.0.1")).is_none());
    f.write(
        "marsad.toml",
        "[http]\ndeny_networks = [\"private\", \"192.0.2.7\", \"2001:db8::/32\"]\n",
    );
    let s = f.load().expect("valid");
    let deny = &s.http.deny_networks;
    assert!(deny.denies(ip("10.1.2.3")).is_some());
    assert!(deny.denies(ip("192.0.2.7")).is_some());
    assert!(deny.denies(ip("2001:db8::1")).is_some());
    assert!(deny.denies(ip("192.0.2.8")).is_none());
    assert!(
        deny.denies(ip("169.254.169.254")).is_none(),
        "the list replaces the default"
    );
    f.write("marsad.toml", "[http]\ndeny_networks = []\n");
    assert!(f.load().expect("valid").http.deny_networks.is_empty());
}

#[test]
fn bad_deny_networks_are_reported_where_written() {
    let f = Fixture::new();
    f.write(
        "marsad.toml",
        "[http]\ndeny_networks = [\n  \"10.0.0.0/8\",\n  \"10.1.0.0/8\",\n  \"intranet\",\n]\n",
    );
    let errors = f.errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("marsad.toml:4:3: \"10.1.0.0/8\" has bits set")
            && errors[0].contains("did you mean \"10.0.0.0/8\""),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("marsad.toml:5:3: \"intranet\" is not an IP network"),
        "{errors:?}"
    );
}

#[test]
fn watchlist_fields_must_be_known() {
    let f = Fixture::new();
    f.write(
        "watchlists/w.toml",
        "fields = [\"title\", \"headline\"]\n[terms]\na = [\"x\"]\n[match]\nquery = \"a\"\n",
    );
    f.write(
        "watchlists/x.toml",
        "fields = []\n[terms]\na = [\"x\"]\n[match]\nquery = \"a\"\n",
    );
    assert_eq!(
        f.errors(),
        [
            "watchlists/w.toml:1:20: unknown value `headline`, expected one of `title`, `body`, `url`, `source`",
            "watchlists/x.toml:1:10: fields is empty; list where to look: some of \"title\", \"body\", \"url\", \"source\"",
        ]
    );
}

#[test]
fn watchlist_without_match_and_defaults() {
    let f = Fixture::new();
    f.write("watchlists/a.toml", "[terms]\nlebanon = [\"لبنان\"]\n");
    f.write(
        "watchlists/b.toml",
        "[terms]\nlebanon = [\"لبنان\"]\n[match]\nquery = \"lebanon\"\n",
    );
    assert_eq!(
        f.errors(),
        [
            "watchlists/a.toml:1:1: missing [match] table; add [match] query = \"GROUP AND OTHER-GROUP\" using the groups in [terms]"
        ]
    );
    fs::remove_file(f.path("watchlists/a.toml")).unwrap();
    let s = f.load().unwrap();
    assert_eq!(s.watchlists[0].name, "b");
    assert_eq!(s.watchlists[0].title, "b", "title defaults to the name");
    assert_eq!(s.watchlists[0].fields, [Field::Title, Field::Body]);
}

#[test]
fn only_toml_files_are_watchlists_in_name_order() {
    let f = Fixture::new();
    let wl = |g: &str| format!("[terms]\n{g} = [\"{g}\"]\n[match]\nquery = \"{g}\"\n");
    f.write("watchlists/zeta.toml", &wl("z"));
    f.write("watchlists/alpha.toml", &wl("a"));
    f.write("watchlists/notes.txt", "not toml at all [[[");
    f.write("watchlists/alpha.toml~", "editor backup [[[");
    let s = f.load().unwrap();
    let names: Vec<&str> = s.watchlists.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"]);
}

#[test]
fn bad_durations_and_sizes() {
    let f = Fixture::new();
    f.write(
        "marsad.toml",
        "[http]\ntimeout = \"20\"\nmax_body = \"15 MegaBytes\"\nconcurrency = 0\n",
    );
    assert_eq!(
        f.errors(),
        [
            "marsad.toml:2:11: invalid duration \"20\" (time unit needed, for example 20sec or 20ms); expected a duration like \"20s\", \"1m 30s\" or \"2h\"",
            "marsad.toml:3:12: invalid size \"15 MegaBytes\"; expected a number and a unit like \"15MiB\", \"500KB\" or \"2048 bytes\" (units: bytes, B, KB, MB, GB, KiB, MiB, GiB)",
            "marsad.toml:4:15: concurrency must be at least 1, or nothing would ever be fetched",
        ]
    );
}

#[test]
fn sizes_accept_all_units() {
    for (text, bytes) in [
        ("512KB", 512_000),
        ("3MB", 3_000_000),
        ("64KiB", 65_536),
        ("1GiB", 1 << 30),
        ("4096 bytes", 4096),
    ] {
        let f = Fixture::new();
        f.write("marsad.toml", &format!("[http]\nmax_body = \"{text}\"\n"));
        assert_eq!(f.load().unwrap().http.max_body, bytes, "{text}");
    }
}

#[test]
fn mail_settings_are_checked() {
    let f = Fixture::new();
    f.write(
        "marsad.toml",
        "[mail]\ntransport = \"smtp\"\nfrom = \"marsad\"\npassword_file = \"pw\"\npassword_env = \"PW\"\n",
    );
    assert_eq!(
        f.errors(),
        [
            "marsad.toml:2:13: transport = \"smtp\" needs url = \"smtp://host:port\" (or smtps://) in [mail]",
            "marsad.toml:3:8: invalid email address \"marsad\"; expected \"user@example.org\" or \"Name <user@example.org>\"",
            "marsad.toml:5:16: set password_file or password_env, not both",
        ]
    );
    f.write("marsad.toml", "[mail]\ntransport = \"sendmail\"\n");
    assert_eq!(
        f.errors(),
        ["marsad.toml:2:13: unknown value `sendmail`, expected `outbox` or `smtp`"]
    );
    f.write(
        "marsad.toml",
        "[mail]\ntransport = \"smtp\"\nurl = \"http://mail.example.org\"\n",
    );
    assert_eq!(
        f.errors(),
        [
            "marsad.toml:3:7: mail url \"http://mail.example.org\" must be smtp://host:port (STARTTLS when offered) or smtps://host:port"
        ]
    );
}

#[test]
fn mistakes_in_every_file_are_all_reported_in_file_order() {
    let f = Fixture::full();
    f.write(
        "marsad.toml",
        &FULL_MAIN
            .replace("timeout = \"20s\"", "timeout = \"twenty\"")
            .replace("[\"russia-israel\"]\n\n", "[\"russia-isreal\"]\n\n"),
    );
    f.write(
        "sources.toml",
        &FULL_SOURCES.replace("id = \"bbc-arabic\"", "id = \"alkhanadeq\""),
    );
    f.write(
        "watchlists/russia-israel.toml",
        &FULL_WATCHLIST.replace("russia AND israel", "russia AND isreal"),
    );
    f.write("watchlists/broken.toml", "title = \"x\n");
    let errors = f.errors();
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert!(
        errors[0].starts_with("marsad.toml:6:11: invalid duration \"twenty\""),
        "{}",
        errors[0]
    );
    assert_eq!(
        errors[1],
        "marsad.toml:31:15: unknown watchlist \"russia-isreal\"; watchlists are broken, russia-israel"
    );
    assert_eq!(
        errors[2],
        "sources.toml:16:6: duplicate source id \"alkhanadeq\"; first defined on line 2"
    );
    assert!(
        errors[3].starts_with("watchlists/broken.toml:1:"),
        "{}",
        errors[3]
    );
    assert_eq!(
        errors[4],
        "watchlists/russia-israel.toml:7:21: unknown group \"isreal\" in query; groups are russia, israel"
    );
}

#[test]
fn syntax_error_in_main_file_still_checks_the_other_files() {
    let f = Fixture::full();
    f.write("marsad.toml", &FULL_MAIN.replace("[http]", "[http"));
    f.write(
        "watchlists/russia-israel.toml",
        &FULL_WATCHLIST.replace("russia AND israel", "russia AND isreal"),
    );
    let errors = f.errors();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].starts_with("marsad.toml:4:6: "), "{}", errors[0]);
    assert!(
        errors[1].starts_with("watchlists/russia-israel.toml:7:21: unknown group"),
        "{}",
        errors[1]
    );
}
#[test]
fn file_keys_after_a_section_are_accepted_but_not_twice() {
    // As in the documented example, `sources` written after [mail] lands inside [mail] in TOML.
    let f = Fixture::new();
    f.write("lists.toml", "");
    f.write("marsad.toml", "[http]\nsources = \"lists.toml\"\n");
    assert!(f.load().is_ok());
    f.write(
        "marsad.toml",
        "sources = \"lists.toml\"\n[mail]\nfrom = \"a@b.org\"\nsources = \"other.toml\"\n",
    );
    assert_eq!(
        f.errors(),
        ["marsad.toml:4:1: sources is set twice; first on line 1"]
    );
}

#[test]
fn source_timezone_is_read_and_checked() {
    let f = Fixture::new();
    f.write(
        "sources.toml",
        "[[source]]\nid = \"cairo\"\nkind = \"feed\"\nurl = \"https://example.org/a\"\ntimezone = \"Africa/Cairo\"\n\n\
         [[source]]\nid = \"plain\"\nkind = \"feed\"\nurl = \"https://example.org/b\"\n",
    );
    let s = f.load().unwrap();
    assert_eq!(s.sources[0].timezone, Some(chrono_tz::Africa::Cairo));
    assert_eq!(s.sources[1].timezone, None);
    f.write(
        "sources.toml",
        "[[source]]\nid = \"cairo\"\nkind = \"feed\"\nurl = \"https://example.org/a\"\ntimezone = \"Africa/Kairo\"\n",
    );
    assert_eq!(
        f.errors(),
        [
            "sources.toml:5:12: unknown timezone \"Africa/Kairo\"; expected an IANA name like \"Asia/Beirut\" or \"UTC\""
        ]
    );
}

#[test]
fn digest_alerts_templates_and_empty_policy() {
    let f = Fixture::full();
    f.write("tpl/digest.html.j2", "x");
    let main = format!(
        "{FULL_MAIN}\n[[digest]]\nname = \"flash\"\nto = [\"duty@example.org\"]\nschedule = \"@immediate\"\n\
         watchlists = [\"russia-israel\"]\nbatch = \"10s\"\ntemplates = \"tpl\"\nempty = \"skip\"\n\n\
         [[digest]]\nname = \"flash2\"\nto = [\"duty@example.org\"]\nalert = true\nwatchlists = [\"russia-israel\"]\n"
    );
    f.write("marsad.toml", &main);
    let s = f.load().unwrap();
    let flash = s.digests.iter().find(|d| d.name == "flash").unwrap();
    assert_eq!(flash.alert, Some(Duration::from_secs(10)));
    assert_eq!(flash.templates, Some(f.path("tpl")));
    assert_eq!(flash.empty, EmptyPolicy::Skip);
    let flash2 = s.digests.iter().find(|d| d.name == "flash2").unwrap();
    assert_eq!(flash2.alert, Some(Duration::from_secs(60)), "default batch");
    assert!(
        s.digests
            .iter()
            .filter(|d| d.alert.is_none())
            .all(|d| d.empty == EmptyPolicy::Send)
    );
}

#[test]
fn digest_setting_mistakes_are_reported() {
    let f = Fixture::full();
    let main = format!(
        "{FULL_MAIN}\n[[digest]]\nname = \"a\"\nto = [\"x@example.org\"]\nwatchlists = [\"russia-israel\"]\n\n\
         [[digest]]\nname = \"b\"\nto = [\"x@example.org\"]\nschedule = \"0 7 * * *\"\nbatch = \"5s\"\n\
         templates = \"missing\"\nwatchlists = [\"russia-israel\"]\n"
    );
    f.write("marsad.toml", &main);
    let text = f.errors().join("\n");
    assert!(text.contains("has no schedule"), "{text}");
    assert!(
        text.contains("batch only applies to alert digests"),
        "{text}"
    );
    assert!(text.contains("is not a folder"), "{text}");
    f.write("marsad.toml", &format!("{FULL_MAIN}\n[[digest]]\nname = \"c\"\nto = [\"x@example.org\"]\nschedule = \"@daily\"\nempty = \"maybe\"\nwatchlists = [\"russia-israel\"]\n"));
    let text = f.errors().join("\n");
    assert!(text.contains("maybe"), "{text}");
}

#[test]
fn stories_settings_default_and_override() {
    let f = Fixture::new();
    let s = f.load().unwrap();
    assert_eq!(s.stories.window, Duration::from_secs(3 * 24 * 3600));
    assert_eq!(s.stories.threshold, crate::dedupe::DEFAULT_THRESHOLD);
    f.write(
        "marsad.toml",
        "[stories]\nwindow = \"12h\"\nwindow_articles = 20000\nthreshold = 0.7\n",
    );
    let s = f.load().unwrap();
    assert_eq!(s.stories.window, Duration::from_secs(12 * 3600));
    assert_eq!(s.stories.window_articles, 20_000);
    assert_eq!(s.stories.threshold, 0.7);
}

#[test]
fn bad_stories_settings_are_reported_at_their_values() {
    let f = Fixture::new();
    f.write(
        "marsad.toml",
        "[stories]\nwindow = \"three days\"\nthreshold = 1.5\nmethod = \"x\"\n",
    );
    let errors = f.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            == "marsad.toml:4:1: unknown key `method`, expected one of `window`, `window_articles`, `threshold`",
        "{errors:?}"
    );
    f.write(
        "marsad.toml",
        "[stories]\nwindow = \"three days\"\nthreshold = 1.5\nwindow_articles = 0\n",
    );
    let errors = f.errors();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("marsad.toml:2:10: invalid duration \"three days\""));
    assert!(errors[1].starts_with("marsad.toml:3:13: threshold 1.5 must be above 0"));
    assert!(
        errors[2].starts_with("marsad.toml:4:19: window_articles = 0 must be a positive number"),
        "{errors:?}"
    );
}
