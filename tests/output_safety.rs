//! Output safety (issue 9), end to end: hostile page text goes through `fetch` and `digest send`
//! and the .eml a reader opens is checked with a real MIME parser and a real HTML parser; text
//! that looks like SQL is stored verbatim; secrets from the configuration never reach logs,
//! errors or `status`.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};

use common::*;
use mail_parser::MessageParser;
use marsad::demo::Route;

/// A title a hostile page might carry: markup, an event-handler attribute, a right-to-left
/// override reversing what follows, and an Arabic word the `lebanon` watchlist matches.
const SCRIPT_TITLE: &str =
    "<script>alert(1)</script> لبنان \"onerror=alert(2) x=\" \u{202E}gnp.exe";
const SQL_TITLE: &str = "لبنان '); DROP TABLE articles; --";
const CRLF_TITLE: &str = "لبنان\r\nBcc: leak@evil.example";

/// An article page; `filler` makes each page's body its own, so the digest does not group the
/// hostile pages as one story.
fn page(title_html: &str, body_html: &str, filler: &str) -> String {
    format!(
        "<html><head><meta charset=\"utf-8\"></head><body><article><h1>{title_html}</h1>\
         <div class=\"article-body\"><p>{body_html}</p><p>{}</p></div></article></body></html>",
        filler.repeat(4)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Runs marsad with a log level and format of the test's choosing.
async fn marsad_logged(config: &Path, args: &[&str], level: &str, json: bool) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"));
    cmd.arg("--config").arg(config);
    if json {
        cmd.args(["--log-format", "json"]);
    }
    cmd.args(args)
        .env("MARSAD_LOG", level)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run marsad")
}

fn both(o: &Output) -> String {
    format!("{}\n{}", stdout(o), stderr(o))
}

fn hostile_site() -> std::collections::HashMap<String, Route> {
    let mut routes = marsad::demo::site_routes();
    routes.insert(
        "/hostile/".into(),
        Route::new(
            "text/html",
            "<ul class=\"posts\"><a href=\"/hostile/post/1\">1</a><a href=\"/hostile/post/2\">2</a>\
             <a href=\"/hostile/post/3\">3</a><a href=\"javascript:alert(3)\">js</a>\
             <a href=\"data:text/html,&lt;script&gt;alert(4)&lt;/script&gt;\">data</a></ul>",
        ),
    );
    routes.insert(
        "/hostile/post/1".into(),
        Route::new(
            "text/html; charset=utf-8",
            page(
                &escape(SCRIPT_TITLE),
                "<script>document.write('from the page')</script>\
                 <img src=\"x\" onerror=\"alert(5)\"><a href=\"javascript:alert(6)\">لبنان رابط</a>\
                 &lt;script&gt;alert(7)&lt;/script&gt; \u{202E}لبنان نص معكوس",
                "وتتابع بيروت الوضع في لبنان عن كثب بحسب مصادر متعددة في العاصمة. ",
            ),
        ),
    );
    routes.insert(
        "/hostile/post/2".into(),
        Route::new(
            "text/html; charset=utf-8",
            page(
                &escape(SQL_TITLE),
                "خبر عن لبنان",
                "أعلنت وزارة الزراعة عن موسم قطاف الزيتون في الجنوب والبقاع هذا الخريف. ",
            ),
        ),
    );
    // CR LF in a title: the HTML parser keeps it (as a line break inside <h1>).
    routes.insert(
        "/hostile/post/3".into(),
        Route::new(
            "text/html; charset=utf-8",
            page(
                &escape(CRLF_TITLE),
                "خبر آخر عن لبنان",
                "افتتح معرض الكتاب السنوي أبوابه للزوار مع مشاركة دور نشر كثيرة من الخارج. ",
            ),
        ),
    );
    // A feed item whose link is javascript: and one whose link is data:.
    routes.insert(
        "/hostile.xml".into(),
        Route::new(
            "application/rss+xml",
            "<rss version=\"2.0\"><channel><title>h</title>\
             <item><title>لبنان خبر برابط جافاسكربت</title><link>javascript:alert(8)</link><guid>js-1</guid><description>بيروت</description></item>\
             <item><title>لبنان خبر برابط بيانات</title><link>data:text/html;base64,PHNjcmlwdD5hbGVydCg5KTwvc2NyaXB0Pg==</link><guid>data-1</guid><description>بيروت</description></item>\
             </channel></rss>",
        ),
    );
    routes
}

fn hostile_sources(base: &str) -> String {
    format!(
        "{}\n[[source]]\nid = \"hostile\"\nname = \"\u{202E}مصدر معاد\"\nkind = \"html\"\nurl = \"{base}/hostile/\"\n\
         [source.listing]\nlinks = \"ul.posts a\"\n[source.article]\ntitle = \"h1\"\nbody = \".article-body\"\n\n\
         [[source]]\nid = \"hostile-feed\"\nkind = \"feed\"\nurl = \"{base}/hostile.xml\"\n",
        demo_sources(base)
    )
}

#[tokio::test]
async fn hostile_page_text_is_escaped_linked_only_over_http_and_cannot_inject_headers() {
    let env = Env::new(hostile_site(), hostile_sources, OUTBOX_MAIL).await;
    // The digest's own subject, from the configuration, tries a header injection too, and so
    // does the name of a second digest (which goes into its default subject).
    let mut config = std::fs::read_to_string(&env.config).expect("read marsad.toml");
    config.push_str("subject = \"Daily\\r\\nBcc: config@evil.example\"\n");
    config.push_str(
        "\n[[digest]]\nname = \"named\\r\\nBcc: name@evil.example\"\nto = [\"desk@example.org\"]\n\
         schedule = \"0 7 * * *\"\nwatchlists = [\"lebanon\"]\nlanguage = \"en\"\n",
    );
    std::fs::write(&env.config, config).expect("write marsad.toml");

    let fetched = env.marsad(&["fetch"]).await;
    let articles = json_lines(&env.marsad(&["articles", "--json", "--since", "1h"]).await);
    let titles: Vec<&str> = articles
        .iter()
        .filter_map(|a| a["title"].as_str())
        .collect();
    // SQL-looking text is data: stored verbatim, and the table is intact.
    assert!(
        titles.contains(&SQL_TITLE),
        "{titles:?}\n{}",
        both(&fetched)
    );
    assert!(
        env.count("SELECT COUNT(*) FROM articles").await >= 10,
        "{titles:?}"
    );
    // The hostile title is stored as the page wrote it (escaping is the renderer's job).
    assert!(titles.contains(&SCRIPT_TITLE), "{titles:?}");
    // A javascript:/data: link on a listing is never fetched, and never stored as an article.
    for a in &articles {
        let url = a["url"].as_str().unwrap_or_default();
        if a["source"] == "hostile" {
            assert!(url.starts_with("http://"), "stored {url}");
        }
    }

    // Both digests.
    let sent = env.marsad(&["digest", "send"]).await;
    assert!(sent.status.success(), "{}", both(&sent));
    let mut files: Vec<_> = std::fs::read_dir(env.outbox())
        .expect("outbox")
        .flatten()
        .map(|f| std::fs::read(f.path()).expect("read eml"))
        .collect();
    assert_eq!(files.len(), 2, "{}", both(&sent));
    let parser = MessageParser::default();
    for raw in &files {
        // Headers: nothing from a title or the configuration starts a header of its own.
        let head_end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        for line in head.split("\r\n") {
            assert!(!line.starts_with("bcc:"), "injected header: {head}");
        }
        let msg = parser.parse(raw).expect("parsable MIME");
        assert!(msg.bcc().is_none(), "a Bcc header");
        assert_eq!(
            msg.to()
                .map(|to| to.iter().filter_map(|a| a.address()).collect::<Vec<_>>()),
            Some(vec!["desk@example.org"]),
            "only the configured recipient"
        );
        let subject = msg.subject().expect("subject");
        assert!(
            !subject.contains(['\r', '\n']) && subject.contains("Bcc: "),
            "the would-be header stays inside the subject: {subject:?}"
        );
    }
    // The rest is about the daily digest.
    files.retain(|raw| {
        parser
            .parse(raw)
            .and_then(|m| m.subject().map(|s| s.starts_with("Daily")))
            .unwrap_or(false)
    });
    assert_eq!(files.len(), 1, "one subject starts with Daily");
    let msg = parser.parse(&files[0]).expect("parsable MIME");
    let html = msg.body_html(0).expect("HTML part").into_owned();
    let text = msg.body_text(0).expect("text part").into_owned();
    let doc = scraper::Html::parse_document(&html);
    let sel = |s: &str| scraper::Selector::parse(s).expect("selector");
    // The hostile items are in the digest (so the checks below are not vacuous)…
    let page_text: String = doc.root_element().text().collect();
    assert!(
        page_text.contains("<script>alert(1)</script> لبنان"),
        "{html}"
    );
    assert!(page_text.contains(SQL_TITLE), "{html}");
    assert!(text.contains("<script>alert(1)</script>"), "{text}");
    // …as text only: no script element, no event handler attribute, no non-http link.
    assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
    assert_eq!(doc.select(&sel("script, img, iframe, object")).count(), 0);
    for element in doc.select(&sel("*")) {
        for (name, value) in element.value().attrs() {
            assert!(!name.starts_with("on"), "{name}={value:?} in the digest");
        }
    }
    let hrefs: Vec<&str> = doc
        .select(&sel("a"))
        .filter_map(|a| a.value().attr("href"))
        .collect();
    assert!(!hrefs.is_empty());
    for href in &hrefs {
        assert!(
            href.starts_with("http://") || href.starts_with("https://"),
            "link {href:?} in the digest"
        );
    }
    // The javascript:/data: feed items are listed, linked to the feed itself (their http
    // fallback URL), never to their own javascript:/data: link.
    assert!(page_text.contains("لبنان خبر برابط جافاسكربت"), "{html}");
    assert!(
        hrefs
            .iter()
            .all(|h| !h.contains("javascript") && !h.contains("data:")),
        "{hrefs:?}"
    );
    // U+202E from pages and source names is dropped in both parts: it cannot reverse the
    // text after it. The title's words are still there, in their own order.
    for part in [&html, &text] {
        assert!(
            !part.contains(['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}']),
            "bidi override in the digest"
        );
    }
    assert!(page_text.contains("gnp.exe"), "{html}");
    // The CR LF title is in the body, on no header line.
    assert!(page_text.contains("Bcc: leak@evil.example"), "{html}");
}

#[tokio::test]
async fn secrets_never_appear_in_logs_errors_or_status() {
    const SMTP_SECRET: &str = "smtp-Secret-7731";
    const PG_SECRET: &str = "pg-Secret-4431";
    let secrets_dir = tempfile::tempdir().expect("dir");
    let password_file = secrets_dir.path().join("smtp-password");
    std::fs::write(&password_file, format!("{SMTP_SECRET}\n")).expect("write password");
    // A real SMTP server that offers no AUTH: logging in fails after the password was read.
    let smtp = SmtpServer::start();
    let smtp_port = smtp.port;
    let mail = format!(
        "[mail]\ntransport = \"smtp\"\nurl = \"smtp://127.0.0.1:{smtp_port}\"\nfrom = \"marsad <marsad@test.localhost>\"\n\
         username = \"marsad\"\npassword_file = \"{}\"\n",
        password_file.display()
    );
    let env = Env::demo(&mail).await;
    // On the PostgreSQL pass the storage URL carries a password (trust auth accepts any).
    if let Some(pg) = &env.pg {
        let mut url = url::Url::parse(&pg.url).expect("pg url");
        url.set_password(Some(PG_SECRET)).expect("set password");
        set_storage_url_from(&env.config, &pg.url, url.as_str());
    }
    let mut seen = String::new();
    for json in [false, true] {
        for args in [
            &["fetch"][..],
            &["digest", "send", "daily"],
            &["status", "--json"],
            &["status"],
            &["check"],
        ] {
            let out = marsad_logged(&env.config, args, "debug", json).await;
            seen.push_str(&both(&out));
        }
    }
    assert!(
        seen.contains(&format!("127.0.0.1:{smtp_port}"))
            && seen.contains("authentication")
            && seen.contains("[mail].username"),
        "the SMTP login failure is reported: {seen}"
    );
    assert!(smtp.messages().is_empty(), "nothing was delivered");
    assert!(!seen.contains(SMTP_SECRET), "SMTP password leaked");
    assert!(!seen.contains(PG_SECRET), "database password leaked");

    // PostgreSQL pass only: a database that refuses us; the error names the server and the
    // reason, never the password.
    let Some(pg) = &env.pg else {
        return;
    };
    let mut refused = url::Url::parse(&pg.url).expect("pg url");
    refused.set_username("no_such_role").expect("set user");
    refused.set_password(Some(PG_SECRET)).expect("set password");
    let mut current = url::Url::parse(&pg.url).expect("pg url");
    current.set_password(Some(PG_SECRET)).expect("set password");
    set_storage_url_from(&env.config, current.as_str(), refused.as_str());
    let mut seen = String::new();
    for json in [false, true] {
        for args in [&["fetch"][..], &["status", "--json"]] {
            let out = marsad_logged(&env.config, args, "debug", json).await;
            assert!(!out.status.success(), "{}", both(&out));
            seen.push_str(&both(&out));
        }
    }
    assert!(
        seen.contains("no_such_role") && seen.contains("127.0.0.1"),
        "names the server and the reason: {seen}"
    );
    assert!(
        !seen.contains(PG_SECRET),
        "database password leaked: {seen}"
    );
}

/// Replaces the storage URL `from` with `to` in marsad.toml.
fn set_storage_url_from(config: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(config).expect("read marsad.toml");
    let replaced = text.replace(&format!("url = \"{from}\""), &format!("url = \"{to}\""));
    assert_ne!(text, replaced, "storage URL {from} not in marsad.toml");
    std::fs::write(config, replaced).expect("write marsad.toml");
}
