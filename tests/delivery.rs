//! Delivery with real parts: the real binary, a real SQLite file, and an aiosmtpd server on
//! loopback (tests/smtp_server.py) that speaks STARTTLS or implicit TLS with a certificate made by
//! `openssl` for the test, requires AUTH, or answers 451 / 550 / drops the connection. Received
//! messages are parsed with mail-parser. Crash tests kill `marsad digest send` with SIGKILL at
//! the points named by the MARSAD_TEST_CRASH_AT test hook.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mail_parser::MessageParser;

const PASSWORD: &str = "s3cret-Pa55-do-not-log";
const ARABIC_SUBJECT: &str = "موجز يومي: روسيا وإسرائيل";

/// tests/smtp_server.py on a loopback port; killed on drop. Fails (never skips) without aiosmtpd.
struct TestSmtp {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl TestSmtp {
    fn start(port: u16, args: &[&str]) -> TestSmtp {
        let dir = tempfile::tempdir().expect("smtp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the SMTP tests (with aiosmtpd: pip install aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!(
                    "tests/smtp_server.py exited ({status}): {err}\ninstall aiosmtpd with `pip install aiosmtpd` (.ci/run does)"
                );
            }
            assert!(Instant::now() < deadline, "SMTP server not up within 20s");
            std::thread::sleep(Duration::from_millis(100));
        }
        TestSmtp { child, port, dir }
    }

    /// Received messages as (raw message, envelope recipients).
    fn received(&self) -> Vec<(Vec<u8>, String)> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("mail/new")) {
            for e in entries.flatten() {
                let rcpt =
                    std::fs::read_to_string(self.dir.path().join("rcpt").join(e.file_name()))
                        .unwrap_or_default();
                out.push((std::fs::read(e.path()).expect("read mail"), rcpt));
            }
        }
        out
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with openssl.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn make() -> Certs {
        let dir = tempfile::tempdir().expect("cert dir");
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl is needed for the TLS tests (apt-get install openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(
            dir.path().join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write ext");
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=marsad test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        Certs { dir }
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn smtp_mail(url: &str, extra: &str) -> String {
    format!(
        "[mail]\ntransport = \"smtp\"\nurl = \"{url}\"\nfrom = \"marsad <marsad@test.localhost>\"\n{extra}"
    )
}

/// Appends keys to the `daily` digest (the last table of the test configuration).
fn add_to_digest(env: &Env, keys: &str) {
    let mut text = std::fs::read_to_string(&env.config).expect("read config");
    text.push_str(keys);
    std::fs::write(&env.config, text).expect("write config");
}

async fn marsad_env(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_marsad"))
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .env("MARSAD_LOG", "debug")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run marsad")
}

fn both(o: &std::process::Output) -> String {
    format!("{}\n{}", stdout(o), stderr(o))
}

/// What a reader checks: headers, both parts, the encoded Arabic subject, working links.
fn check_message(raw: &[u8], to: &str) -> String {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n" || w.starts_with(b"\n\n"))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
    assert!(head.is_ascii(), "headers must be 7-bit: {head}");
    assert!(
        head.contains("subject: =?utf-8?"),
        "RFC 2047 subject: {head}"
    );
    let msg = MessageParser::default().parse(raw).expect("parsable MIME");
    assert_eq!(msg.subject(), Some(ARABIC_SUBJECT));
    assert_eq!(
        msg.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some(to)
    );
    assert_eq!(
        msg.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("marsad@test.localhost")
    );
    let html = msg.body_html(0).expect("HTML part").into_owned();
    let text = msg.body_text(0).expect("text part").into_owned();
    let doc = scraper::Html::parse_document(&html);
    let sel = scraper::Selector::parse("a[href]").expect("selector");
    let links: Vec<&str> = doc
        .select(&sel)
        .filter_map(|a| a.value().attr("href"))
        .collect();
    assert!(
        links
            .iter()
            .any(|l| l.starts_with("http://127.0.0.1:") && l.contains("/post/")),
        "links to the articles: {links:?}"
    );
    for link in &links {
        assert!(text.contains(link), "text part lacks link {link}");
    }
    assert!(text.contains("موسكو تستقبل وفداً إسرائيلياً"));
    msg.message_id().expect("Message-ID").to_string()
}

async fn runs(env: &Env, sql: &'static str) -> i64 {
    env.count(sql).await
}

#[tokio::test]
async fn starttls_with_auth_from_a_password_file_never_shows_the_password() {
    let certs = Certs::make();
    let pass_dir = tempfile::tempdir().expect("dir");
    let good = pass_dir.path().join("good");
    let bad = pass_dir.path().join("bad");
    std::fs::write(&good, format!("{PASSWORD}\n")).expect("write");
    std::fs::write(&bad, format!("{PASSWORD}-wrong\n")).expect("write");
    let smtp = TestSmtp::start(
        free_port(),
        &[
            "--starttls",
            &certs.path("server.pem"),
            &certs.path("server.key"),
            "--auth",
            "marsad",
            &good.display().to_string(),
        ],
    );
    let mail = |pass: &PathBuf| {
        smtp_mail(
            &format!("smtp://127.0.0.1:{}?tls=starttls", smtp.port),
            &format!(
                "username = \"marsad\"\npassword_file = \"{}\"\ntls_ca_file = \"{}\"\n",
                pass.display(),
                certs.path("ca.pem")
            ),
        )
    };
    let env = Env::demo(&mail(&bad)).await;
    add_to_digest(&env, &format!("subject = \"{ARABIC_SUBJECT}\"\n"));
    assert!(env.marsad(&["fetch"]).await.status.success());

    let refused = marsad_env(&env, &["digest", "send", "daily"], &[]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", both(&refused));
    let out = both(&refused);
    assert!(out.contains("535"), "names the refusal: {out}");
    assert!(out.contains("[mail].username"), "says what to check: {out}");
    assert!(!out.contains(PASSWORD), "password leaked: {out}");
    assert!(smtp.received().is_empty());
    let status = env.marsad(&["status"]).await;
    assert!(stdout(&status).contains("failed"), "{}", stdout(&status));
    assert!(!both(&status).contains(PASSWORD));

    // Fix the password: `digest send` retries the failed run, the same one.
    std::fs::write(
        &env.config,
        std::fs::read_to_string(&env.config)
            .unwrap()
            .replace(&bad.display().to_string(), &good.display().to_string()),
    )
    .unwrap();
    let sent = marsad_env(&env, &["digest", "send", "daily"], &[]).await;
    assert!(sent.status.success(), "{}", both(&sent));
    assert!(!both(&sent).contains(PASSWORD));
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    check_message(&received[0].0, "desk@example.org");
    assert_eq!(
        runs(
            &env,
            "SELECT COUNT(*) FROM digest_runs WHERE state = 'sent'"
        )
        .await,
        1
    );
    assert_eq!(runs(&env, "SELECT COUNT(*) FROM digest_runs").await, 1);
}

#[tokio::test]
async fn implicit_tls_needs_the_ca_and_then_delivers() {
    let certs = Certs::make();
    let smtp = TestSmtp::start(
        free_port(),
        &[
            "--smtps",
            &certs.path("server.pem"),
            &certs.path("server.key"),
        ],
    );
    let url = format!("smtps://127.0.0.1:{}", smtp.port);
    let env = Env::demo(&smtp_mail(&url, "")).await;
    add_to_digest(&env, &format!("subject = \"{ARABIC_SUBJECT}\"\n"));
    assert!(env.marsad(&["fetch"]).await.status.success());

    // The certificate is not from a public CA: refused, with a hint, not retried blindly.
    let untrusted = env.marsad(&["digest", "send", "daily"]).await;
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(
        stdout(&untrusted).contains("tls_ca_file"),
        "{}",
        both(&untrusted)
    );
    assert!(smtp.received().is_empty());
    assert_eq!(
        runs(
            &env,
            "SELECT COUNT(*) FROM digest_runs WHERE state = 'failed'"
        )
        .await,
        1
    );

    let text = std::fs::read_to_string(&env.config).unwrap().replace(
        "[mail]\n",
        &format!("[mail]\ntls_ca_file = \"{}\"\n", certs.path("ca.pem")),
    );
    std::fs::write(&env.config, text).unwrap();
    let sent = env.marsad(&["digest", "send", "daily"]).await;
    assert!(sent.status.success(), "{}", both(&sent));
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    check_message(&received[0].0, "desk@example.org");
}

#[tokio::test]
async fn a_451_and_a_dropped_connection_are_retried_and_delivered_once() {
    let port = free_port();
    let env = Env::demo(&smtp_mail(&format!("smtp://127.0.0.1:{port}"), "")).await;
    add_to_digest(&env, &format!("subject = \"{ARABIC_SUBJECT}\"\n"));
    assert!(env.marsad(&["fetch"]).await.status.success());

    for (mode, attempts) in [("451", 1), ("drop", 2)] {
        let smtp = TestSmtp::start(port, &["--mode", mode]);
        let out = env.marsad(&["digest", "send", "daily"]).await;
        assert_eq!(out.status.code(), Some(1), "{mode}: {}", both(&out));
        assert!(
            stdout(&out).contains("will retry"),
            "{mode}: {}",
            stdout(&out)
        );
        if mode == "451" {
            assert!(stdout(&out).contains("451"), "{}", stdout(&out));
        }
        assert!(smtp.received().is_empty());
        assert_eq!(
            env.count("SELECT COUNT(*) FROM digest_runs").await,
            1,
            "{mode}"
        );
        assert_eq!(
            env.count(&format!(
                "SELECT COUNT(*) FROM digest_runs WHERE state = 'pending' AND attempts = {attempts} \
                 AND next_attempt IS NOT NULL"
            ))
            .await,
            1,
            "{mode}: still pending, {attempts} attempt(s), backoff set"
        );
        drop(smtp);
    }

    let smtp = TestSmtp::start(port, &[]);
    let out = env.marsad(&["digest", "send", "daily"]).await;
    assert!(out.status.success(), "{}", both(&out));
    let again = env.marsad(&["digest", "send", "daily"]).await;
    assert!(again.status.success());
    let received = smtp.received();
    assert_eq!(received.len(), 1, "delivered exactly once");
    check_message(&received[0].0, "desk@example.org");
}

#[tokio::test]
async fn a_550_is_permanent_shown_in_status_and_retried_only_by_digest_send() {
    let port = free_port();
    let env = Env::demo(&smtp_mail(&format!("smtp://127.0.0.1:{port}"), "")).await;
    add_to_digest(&env, &format!("subject = \"{ARABIC_SUBJECT}\"\n"));
    assert!(env.marsad(&["fetch"]).await.status.success());

    let smtp = TestSmtp::start(port, &["--mode", "550"]);
    let out = env.marsad(&["digest", "send", "daily"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("550") && stdout(&out).contains("failed permanently"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        runs(
            &env,
            "SELECT COUNT(*) FROM digest_runs WHERE state = 'failed' AND next_attempt IS NULL"
        )
        .await,
        1
    );
    let status = env.marsad(&["status", "--json"]).await;
    let digest = json_lines(&status)
        .into_iter()
        .find(|l| l["kind"] == "digest")
        .expect("digest line");
    assert_eq!(digest["last"]["state"], "failed");
    assert!(
        digest["last"]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("550")
    );
    drop(smtp);

    let smtp = TestSmtp::start(port, &[]);
    let out = env.marsad(&["digest", "send", "daily"]).await;
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(
        runs(
            &env,
            "SELECT COUNT(*) FROM digest_runs WHERE state = 'sent'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn killed_after_recording_the_digest_is_sent_once_on_restart() {
    let smtp = TestSmtp::start(free_port(), &[]);
    let env = Env::demo(&smtp_mail(&format!("smtp://127.0.0.1:{}", smtp.port), "")).await;
    add_to_digest(&env, &format!("subject = \"{ARABIC_SUBJECT}\"\n"));
    assert!(env.marsad(&["fetch"]).await.status.success());

    let crashed = marsad_env(
        &env,
        &["digest", "send", "daily"],
        &[("MARSAD_TEST_CRASH_AT", "after_record")],
    )
    .await;
    assert_eq!(
        crashed.status.signal(),
        Some(9),
        "SIGKILLed: {}",
        both(&crashed)
    );
    assert!(smtp.received().is_empty(), "nothing sent before the crash");
    assert_eq!(
        runs(
            &env,
            "SELECT COUNT(*) FROM digest_runs WHERE state = 'pending'"
        )
        .await,
        1
    );

    let restarted = env.marsad(&["digest", "send", "daily"]).await;
    assert!(restarted.status.success(), "{}", both(&restarted));
    let again = env.marsad(&["digest", "send", "daily"]).await;
    assert!(again.status.success());
    let received = smtp.received();
    assert_eq!(received.len(), 1, "no loss, no duplicate");
    check_message(&received[0].0, "desk@example.org");
    assert_eq!(runs(&env, "SELECT COUNT(*) FROM digest_runs").await, 1);
}

/// The single at-least-once window: the server accepted the message, then the process died
/// before marking it sent. The restart sends it again — the same message with the same
/// Message-ID — and never a third time.
#[tokio::test]
async fn killed_between_acceptance_and_marking_sent_resends_with_the_same_message_id() {
    let smtp = TestSmtp::start(free_port(), &[]);
    let env = Env::demo(&smtp_mail(&format!("smtp://127.0.0.1:{}", smtp.port), "")).await;
    add_to_digest(&env, &format!("subject = \"{ARABIC_SUBJECT}\"\n"));
    assert!(env.marsad(&["fetch"]).await.status.success());

    let crashed = marsad_env(
        &env,
        &["digest", "send", "daily"],
        &[("MARSAD_TEST_CRASH_AT", "after_send")],
    )
    .await;
    assert_eq!(crashed.status.signal(), Some(9), "{}", both(&crashed));
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(
        runs(
            &env,
            "SELECT COUNT(*) FROM digest_runs WHERE state = 'pending'"
        )
        .await,
        1
    );

    assert!(
        env.marsad(&["digest", "send", "daily"])
            .await
            .status
            .success()
    );
    assert!(
        env.marsad(&["digest", "send", "daily"])
            .await
            .status
            .success()
    );
    let received = smtp.received();
    assert_eq!(received.len(), 2, "one resend, no more");
    let ids: Vec<String> = received
        .iter()
        .map(|(raw, _)| check_message(raw, "desk@example.org"))
        .collect();
    assert_eq!(ids[0], ids[1], "the resend carries the same Message-ID");
    assert_eq!(
        runs(
            &env,
            "SELECT COUNT(*) FROM digest_runs WHERE state = 'sent'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn send_to_an_address_is_a_copy_that_does_not_consume_the_period() {
    let smtp = TestSmtp::start(free_port(), &[]);
    let env = Env::demo(&smtp_mail(&format!("smtp://127.0.0.1:{}", smtp.port), "")).await;
    add_to_digest(&env, &format!("subject = \"{ARABIC_SUBJECT}\"\n"));
    assert!(env.marsad(&["fetch"]).await.status.success());

    let copy = env
        .marsad(&["digest", "send", "daily", "--to", "tester@example.org"])
        .await;
    assert!(copy.status.success(), "{}", both(&copy));
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].1.trim(),
        "tester@example.org",
        "envelope recipient"
    );
    let copy_id = check_message(&received[0].0, "tester@example.org");
    assert_eq!(
        runs(&env, "SELECT COUNT(*) FROM digest_runs").await,
        0,
        "nothing recorded"
    );

    let real = env.marsad(&["digest", "send", "daily"]).await;
    assert!(real.status.success(), "{}", both(&real));
    let received = smtp.received();
    assert_eq!(received.len(), 2);
    let digest = received
        .iter()
        .find(|(_, rcpt)| rcpt.trim() == "desk@example.org")
        .expect("the digest itself");
    let id = check_message(&digest.0, "desk@example.org");
    assert_ne!(id, copy_id);
}

#[tokio::test]
async fn empty_periods_send_a_nothing_matched_line_or_are_skipped_but_recorded() {
    // Default: send, saying nothing matched.
    let env = Env::demo(OUTBOX_MAIL).await;
    let out = env.marsad(&["digest", "send", "daily"]).await;
    assert!(out.status.success(), "{}", both(&out));
    let files: Vec<_> = std::fs::read_dir(env.outbox()).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let msg = std::fs::read(files[0].path()).unwrap();
    let parsed = MessageParser::default().parse(&msg).unwrap();
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains("لم يطابق شيء في هذه الفترة.")
    );
    assert!(
        parsed
            .body_html(0)
            .unwrap()
            .contains("لم يطابق شيء في هذه الفترة.")
    );

    // skip: nothing sent, the period recorded; the next period's matches are sent once.
    let env = Env::demo(OUTBOX_MAIL).await;
    add_to_digest(&env, "empty = \"skip\"\n");
    let out = env.marsad(&["digest", "send", "daily"]).await;
    assert!(out.status.success(), "{}", both(&out));
    assert!(stdout(&out).contains("nothing sent"), "{}", stdout(&out));
    assert!(!env.outbox().exists() || std::fs::read_dir(env.outbox()).unwrap().count() == 0);
    assert_eq!(
        runs(
            &env,
            "SELECT COUNT(*) FROM digest_runs WHERE state = 'skipped'"
        )
        .await,
        1
    );
    assert!(env.marsad(&["fetch"]).await.status.success());
    let out = env.marsad(&["digest", "send", "daily"]).await;
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(std::fs::read_dir(env.outbox()).unwrap().count(), 1);
    assert_eq!(runs(&env, "SELECT COUNT(*) FROM digest_runs").await, 2);
}

#[tokio::test]
async fn the_footer_names_sources_that_failed_and_why() {
    let dead = free_port();
    let env = Env::new(
        marsad::demo::site_routes(),
        move |base| {
            format!(
                "{}\n[[source]]\nid = \"broken\"\nname = \"Broken Wire\"\nkind = \"feed\"\nurl = \"http://127.0.0.1:{dead}/feed.xml\"\n",
                demo_sources(base)
            )
        },
        OUTBOX_MAIL,
    )
    .await;
    let fetch = env.marsad(&["fetch"]).await;
    assert_eq!(fetch.status.code(), Some(1), "one source failed");
    let out = env.marsad(&["digest", "send", "daily"]).await;
    assert!(out.status.success(), "{}", both(&out));
    let files: Vec<_> = std::fs::read_dir(env.outbox()).unwrap().flatten().collect();
    let raw = std::fs::read(files[0].path()).unwrap();
    let msg = MessageParser::default().parse(&raw).unwrap();
    let html = msg.body_html(0).unwrap().into_owned();
    let doc = scraper::Html::parse_document(&html);
    let footer: String = doc
        .select(&scraper::Selector::parse("footer").unwrap())
        .next()
        .expect("footer")
        .text()
        .collect();
    assert!(footer.contains("Broken Wire"), "{footer}");
    assert!(
        footer.contains(&format!("127.0.0.1:{dead}")),
        "the error says why: {footer}"
    );
    assert!(
        !footer.contains("Demo Wire"),
        "healthy sources are not listed: {footer}"
    );
    let text = msg.body_text(0).unwrap();
    assert!(text.contains("Broken Wire"));
    // Header: a count per watchlist, zeros included.
    let header: String = doc
        .select(&scraper::Selector::parse("header").unwrap())
        .next()
        .expect("header")
        .text()
        .collect();
    assert!(
        header.contains("Russia–Israel") && header.contains("Lebanon"),
        "{header}"
    );
}

#[tokio::test]
async fn immediate_alert_arrives_from_the_daemon_soon_after_a_match() {
    let smtp = TestSmtp::start(free_port(), &[]);
    let env = Env::demo(&smtp_mail(&format!("smtp://127.0.0.1:{}", smtp.port), "")).await;
    // The daily digest fires at 07:00 only; the alert batches every 2 s (default: 1 min).
    add_to_digest(
        &env,
        "\n[[digest]]\nname = \"flash\"\nto = [\"duty@example.org\"]\nschedule = \"@immediate\"\nbatch = \"2s\"\nwatchlists = [\"russia-israel\"]\n",
    );
    assert!(env.marsad(&["check"]).await.status.success());
    let mut daemon = start_daemon(&env.config);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(70);
    while smtp.received().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no alert within 70 s of the first fetch"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Another few batches with nothing new: no second alert.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let received = smtp.received();
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;
    let alerts: Vec<String> = received
        .iter()
        .filter(|(_, r)| r.trim() == "duty@example.org")
        .map(|(raw, _)| {
            let msg = MessageParser::default().parse(raw).expect("parsable alert");
            assert!(
                msg.subject().unwrap_or("").contains("alert flash"),
                "{:?}",
                msg.subject()
            );
            msg.body_text(0).expect("text part").into_owned()
        })
        .collect();
    // Sources commit one by one, so matches may span two batches; each match is in one alert.
    assert!(
        !alerts.is_empty() && alerts.len() <= 3,
        "{} alerts",
        alerts.len()
    );
    for title in [
        "موسكو تستقبل وفداً إسرائيلياً لبحث التنسيق في سوريا",
        "Kremlin says Putin and Netanyahu discussed Syria by phone",
    ] {
        let n = alerts.iter().filter(|t| t.contains(title)).count();
        assert_eq!(n, 1, "{title} in {n} alerts");
    }
    assert!(
        received.iter().all(|(_, r)| r.trim() == "duty@example.org"),
        "the daily digest is not due"
    );
}

#[tokio::test]
async fn a_user_template_folder_replaces_the_built_in_one_and_check_catches_its_mistakes() {
    let env = Env::demo(OUTBOX_MAIL).await;
    let tpl = env.dir.path().join("templates");
    std::fs::create_dir_all(&tpl).unwrap();
    std::fs::write(
        tpl.join("digest.txt.j2"),
        "{{ subject }}\n{% for w in watchlists %}{% for i in w.items %}- {{ i.title }} <{{ i.url }}>\n{% endfor %}{% endfor %}",
    )
    .unwrap();
    add_to_digest(&env, "templates = \"templates\"\n");
    assert!(env.marsad(&["check"]).await.status.success());
    assert!(env.marsad(&["fetch"]).await.status.success());
    let preview = env.marsad(&["digest", "preview", "daily"]).await;
    assert!(preview.status.success(), "{}", both(&preview));
    assert!(
        stdout(&preview)
            .contains("- موسكو تستقبل وفداً إسرائيلياً لبحث التنسيق في سوريا <http://127.0.0.1:"),
        "{}",
        stdout(&preview)
    );
    let out = env.marsad(&["digest", "send", "daily"]).await;
    assert!(out.status.success(), "{}", both(&out));
    let file = std::fs::read_dir(env.outbox())
        .unwrap()
        .flatten()
        .next()
        .unwrap();
    let raw = std::fs::read(file.path()).unwrap();
    let msg = MessageParser::default().parse(&raw).unwrap();
    assert!(msg.body_text(0).unwrap().contains("- Kremlin says Putin"));
    assert!(
        msg.body_html(0).unwrap().contains("<mark"),
        "built-in HTML kept"
    );

    std::fs::write(tpl.join("digest.html.j2"), "<p>\n{{ titel }}</p>\n").unwrap();
    let check = env.marsad(&["check"]).await;
    assert_eq!(check.status.code(), Some(2));
    assert!(
        stderr(&check).contains(&format!("{}:2", tpl.join("digest.html.j2").display())),
        "names the file and line: {}",
        stderr(&check)
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_and_is_retried_later() {
    // The kernel completes the TCP handshake for a bound socket that never accepts: the client
    // connects, then waits for a greeting that never comes.
    let silent = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let port = silent.local_addr().unwrap().port();
    let env = Env::demo(&smtp_mail(&format!("smtp://127.0.0.1:{port}"), "")).await;
    assert!(env.marsad(&["fetch"]).await.status.success());
    let started = Instant::now();
    let out = env.marsad(&["digest", "send", "daily"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(stdout(&out).contains("will retry"), "{}", stdout(&out));
    assert_eq!(
        runs(
            &env,
            "SELECT COUNT(*) FROM digest_runs WHERE state = 'pending' AND next_attempt IS NOT NULL"
        )
        .await,
        1
    );
    drop(silent);
}
