//! Digests end to end: fetch from a loopback site, then `digest send` into an outbox folder or to a
//! real SMTP server (aiosmtpd), with the received message parsed by a real MIME parser.

mod common;

use common::*;
use mail_parser::{MessageParser, MimeHeaders};

fn smtp_mail(port: u16) -> String {
    format!(
        "[mail]\ntransport = \"smtp\"\nurl = \"smtp://127.0.0.1:{port}\"\nfrom = \"marsad <marsad@test.localhost>\"\n"
    )
}

/// Checks what a reader of the digest would see.
fn check_digest(raw: &[u8]) {
    let msg = MessageParser::default()
        .parse(raw)
        .expect("a parsable MIME message");
    assert_eq!(
        msg.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("marsad@test.localhost")
    );
    assert_eq!(
        msg.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("desk@example.org")
    );
    let id = msg.message_id().expect("Message-ID");
    assert!(id.starts_with("daily."), "deterministic Message-ID: {id}");
    assert!(msg.subject().is_some_and(|s| s.contains("daily")));
    assert!(
        msg.content_type()
            .is_some_and(|c| c.subtype() == Some("alternative")),
        "multipart/alternative"
    );

    let html = msg.body_html(0).expect("an HTML part");
    let text = msg.body_text(0).expect("a text part");
    let doc = scraper::Html::parse_document(&html);
    let sel = |s: &str| scraper::Selector::parse(s).expect("selector");
    let root = doc.select(&sel("html")).next().expect("html element");
    assert_eq!(
        root.value().attr("dir"),
        Some("rtl"),
        "digest language ar → page rtl"
    );
    // Arabic text intact, in an rtl element; English items ltr.
    let arabic = "موسكو تستقبل وفداً إسرائيلياً لبحث التنسيق في سوريا";
    let english = "Kremlin says Putin and Netanyahu discussed Syria by phone";
    for (title, dir) in [(arabic, "rtl"), (english, "ltr")] {
        let link = doc
            .select(&sel("a"))
            .find(|a| a.text().collect::<String>().contains(title))
            .unwrap_or_else(|| panic!("no link titled {title}"));
        assert!(
            link.value()
                .attr("href")
                .is_some_and(|h| h.starts_with("http://127.0.0.1:"))
        );
        let dir_of = link
            .ancestors()
            .filter_map(scraper::ElementRef::wrap)
            .find_map(|e| e.value().attr("dir"))
            .expect("an element with dir around the item");
        assert_eq!(dir_of, dir, "{title}");
        assert!(text.contains(title), "text part lacks {title}");
    }
    assert!(
        doc.select(&sel("mark")).next().is_some(),
        "matched terms highlighted"
    );
    // Nothing that did not match.
    assert!(!html.contains("الكيروسين") && !html.contains("Prussian"));
}

#[tokio::test]
async fn digest_to_outbox_is_written_once_per_period() {
    let env = Env::demo(OUTBOX_MAIL).await;
    assert!(env.marsad(&["fetch"]).await.status.success());

    let preview = env
        .marsad(&["digest", "preview", "daily", "--format", "html"])
        .await;
    assert!(preview.status.success(), "{}", stderr(&preview));
    assert!(stdout(&preview).contains("dir=\"rtl\""));

    let first = env.marsad(&["digest", "send", "daily"]).await;
    assert!(
        first.status.success(),
        "{}\n{}",
        stdout(&first),
        stderr(&first)
    );
    let files: Vec<_> = std::fs::read_dir(env.outbox())
        .expect("outbox")
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    check_digest(&std::fs::read(files[0].path()).expect("read eml"));

    // Again: nothing new, nothing sent.
    let second = env.marsad(&["digest", "send", "daily"]).await;
    assert!(second.status.success());
    assert!(
        stdout(&second).contains("nothing new"),
        "{}",
        stdout(&second)
    );
    assert_eq!(std::fs::read_dir(env.outbox()).expect("outbox").count(), 1);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM digest_runs WHERE state = 'sent'")
            .await,
        1
    );
}

#[tokio::test]
async fn digest_over_smtp_arrives_once_with_both_parts() {
    let smtp = SmtpServer::start();
    let env = Env::demo(&smtp_mail(smtp.port)).await;
    assert!(env.marsad(&["fetch"]).await.status.success());
    let out = env.marsad(&["digest", "send", "daily"]).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let received = smtp.messages();
    assert_eq!(received.len(), 1);
    check_digest(&received[0]);

    let again = env.marsad(&["digest", "send", "daily"]).await;
    assert!(again.status.success());
    assert_eq!(smtp.messages().len(), 1, "sent twice");
}

#[tokio::test]
async fn smtp_outage_keeps_the_digest_pending_and_it_is_sent_once_later() {
    let port = free_port();
    let env = Env::demo(&smtp_mail(port)).await;
    assert!(env.marsad(&["fetch"]).await.status.success());

    let down = env.marsad(&["digest", "send", "daily"]).await;
    assert_eq!(down.status.code(), Some(1), "{}", stdout(&down));
    assert!(
        stdout(&down).contains(&format!("127.0.0.1:{port}")),
        "error names the server: {}",
        stdout(&down)
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM digest_runs WHERE state = 'pending' AND attempts = 1")
            .await,
        1
    );

    let smtp = SmtpServer::start_on(port);
    let up = env.marsad(&["digest", "send", "daily"]).await;
    assert!(up.status.success(), "{}\n{}", stdout(&up), stderr(&up));
    let received = smtp.messages();
    assert_eq!(received.len(), 1);
    check_digest(&received[0]);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM digest_runs").await,
        1,
        "the retry is the same run"
    );
    let again = env.marsad(&["digest", "send", "daily"]).await;
    assert!(again.status.success());
    assert_eq!(smtp.messages().len(), 1);
}
