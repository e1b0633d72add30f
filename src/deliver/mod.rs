//! Delivering rendered digests: as `.eml` files in an outbox directory, or over SMTP (lettre).
//!
//! Exactly-once bookkeeping (pending → sent) belongs to the caller and the store; this module
//! gives it the two things it needs: a deterministic Message-ID that makes a retry recognisably
//! the same message (the outbox overwrites the same file), and errors that say whether retrying
//! later can help ([`DeliverError::is_transient`]).

mod config;
mod message;
mod outbox;
mod smtp;

use std::io;
use std::path::PathBuf;

pub use config::mailer_from_settings;
pub use message::build_message;
pub use smtp::SmtpMailer;

/// A digest ready to send: rendered parts plus envelope data.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// Without angle brackets, e.g. `daily.20261125T0700Z@marsad`.
    pub message_id: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub date: chrono::DateTime<chrono::Utc>,
}

/// Why a digest was not delivered. Messages name the offending value or server and the config
/// key to check; none ever contains the SMTP password.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// A From/To address that does not parse.
    #[error(
        "{key}: {value:?} is not a usable email address ({reason}); write it as user@example.org or \"Name <user@example.org>\""
    )]
    Address {
        key: &'static str,
        value: String,
        reason: String,
    },
    /// Mail settings that cannot work (URL scheme, TLS mode, credentials). `value` never
    /// holds a password.
    #[error("{key} = {value:?}: {message}")]
    Config {
        key: &'static str,
        value: String,
        message: String,
    },
    /// The message itself could not be assembled.
    #[error("cannot build message <{message_id}>: {message}")]
    Build { message_id: String, message: String },
    /// Writing to the outbox directory failed.
    #[error("cannot write {}: {source}; check that [mail].outbox_dir exists or can be created and is writable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The SMTP exchange failed.
    #[error("sending via {server} failed: {message}")]
    Smtp {
        server: String,
        transient: bool,
        message: String,
    },
}

impl DeliverError {
    /// Whether the same message may go through if retried later: network trouble, timeouts and
    /// 4xx replies are transient; 5xx replies, bad addresses and bad settings need a person.
    pub fn is_transient(&self) -> bool {
        match self {
            DeliverError::Smtp { transient, .. } => *transient,
            DeliverError::Io { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied
                    | io::ErrorKind::ReadOnlyFilesystem
                    | io::ErrorKind::NotADirectory
                    | io::ErrorKind::IsADirectory
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::InvalidFilename
            ),
            DeliverError::Address { .. }
            | DeliverError::Config { .. }
            | DeliverError::Build { .. } => false,
        }
    }
}

/// Where digests go.
#[derive(Debug)]
pub enum Mailer {
    /// Write each message as `<dir>/<message id>.eml` (for local reading, or a relay that
    /// picks files up).
    Outbox { dir: PathBuf },
    /// Boxed: the transport is large and the outbox variant is tiny.
    Smtp(Box<SmtpMailer>),
}

impl Mailer {
    pub fn outbox(dir: PathBuf) -> Mailer {
        Mailer::Outbox { dir }
    }

    /// An SMTP mailer for `url`:
    /// - `smtp://host[:port]` — plain SMTP (default port 25), for loopback and trusted relays;
    ///   on port 587 STARTTLS is required unless `?tls=none`;
    /// - `smtp://host[:port]?tls=starttls` — STARTTLS required (default port 587);
    ///   `?tls=opportunistic` uses it when offered;
    /// - `smtps://host[:port]` — implicit TLS (default port 465).
    ///
    /// The password comes from a file or the environment read by the caller; it is never
    /// logged or put in an error. Nothing connects until the first [`Mailer::send`].
    pub fn smtp(
        url: &str,
        username: Option<String>,
        password: Option<String>,
        timeout: std::time::Duration,
    ) -> Result<Mailer, DeliverError> {
        Mailer::smtp_with_ca(url, username, password, timeout, None)
    }

    /// [`Mailer::smtp`], also trusting the CA certificates in `extra_ca_pem` (PEM) for the
    /// server's TLS certificate — for a private CA or a self-signed test server
    /// (`[mail].tls_ca_file`). Certificate checks are never switched off.
    pub fn smtp_with_ca(
        url: &str,
        username: Option<String>,
        password: Option<String>,
        timeout: std::time::Duration,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<Mailer, DeliverError> {
        SmtpMailer::new(url, username, password, timeout, extra_ca_pem)
            .map(|smtp| Mailer::Smtp(Box::new(smtp)))
    }

    /// Deliver `msg`. Returns the written file for the outbox, `None` for SMTP.
    pub async fn send(&self, msg: &OutgoingMessage) -> Result<Option<PathBuf>, DeliverError> {
        let message = build_message(msg)?;
        match self {
            Mailer::Outbox { dir } => outbox::write(dir, &msg.message_id, message.formatted())
                .await
                .map(Some),
            Mailer::Smtp(smtp) => smtp.send(message, &msg.message_id).await.map(|()| None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    const ARABIC_SUBJECT: &str = "موجز يومي: روسيا وإسرائيل — 3 مقالات";

    fn message(id: &str) -> OutgoingMessage {
        OutgoingMessage {
            message_id: id.into(),
            from: "marsad <marsad@example.org>".into(),
            to: vec!["desk@example.org".into(), "Editor <editor@example.org>".into()],
            subject: ARABIC_SUBJECT.into(),
            html: "<!DOCTYPE html><html lang=\"ar\" dir=\"rtl\"><body><p>روسيا تحذر <mark>إسرائيل</mark></p></body></html>\n".into(),
            text: "روسيا تحذر إسرائيل\nhttps://alkhanadeq.org.lb/post/123\n".into(),
            date: Utc.with_ymd_and_hms(2026, 11, 25, 5, 0, 0).unwrap(),
        }
    }

    fn normalized(s: &str) -> String {
        s.replace("\r\n", "\n").trim_end().to_string()
    }

    /// What a recipient would check in a delivered message.
    fn assert_delivered_intact(raw: &[u8], sent: &OutgoingMessage) {
        let parsed = mail_parser::MessageParser::default()
            .parse(raw)
            .expect("a parseable message");
        assert_eq!(parsed.subject(), Some(sent.subject.as_str()));
        assert_eq!(parsed.message_id(), Some(sent.message_id.as_str()));
        assert_eq!(
            parsed
                .from()
                .and_then(|a| a.first())
                .and_then(|a| a.address()),
            Some("marsad@example.org")
        );
        let to: Vec<&str> = parsed
            .to()
            .and_then(|a| a.as_list())
            .unwrap_or(&[])
            .iter()
            .filter_map(|a| a.address())
            .collect();
        assert_eq!(to, ["desk@example.org", "editor@example.org"]);
        assert_eq!(
            parsed.date().map(|d| d.to_timestamp()),
            Some(sent.date.timestamp())
        );
        assert!(
            parsed
                .header_raw("Content-Type")
                .unwrap_or("")
                .contains("multipart/alternative")
        );
        assert_eq!((parsed.text_body_count(), parsed.html_body_count()), (1, 1));
        assert_eq!(
            normalized(&parsed.body_text(0).expect("text part")),
            normalized(&sent.text)
        );
        assert_eq!(
            normalized(&parsed.body_html(0).expect("html part")),
            normalized(&sent.html)
        );
    }

    #[test]
    fn message_has_encoded_arabic_subject_and_no_header_injection() {
        let mut msg = message("daily.20261125T0500Z@marsad");
        msg.subject = "Digest\r\nBcc: victim@example.org\nX-Evil: 1".into();
        let raw = build_message(&msg).unwrap().formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert!(parsed.header_raw("Bcc").is_none() && parsed.header_raw("X-Evil").is_none());
        assert_eq!(
            parsed.subject(),
            Some("Digest Bcc: victim@example.org X-Evil: 1")
        );

        let raw = build_message(&message("a@b")).unwrap().formatted();
        let head = String::from_utf8_lossy(&raw);
        let head = &head[..head.find("\r\n\r\n").unwrap()];
        assert!(head.is_ascii(), "headers must be 7-bit (RFC 2047): {head}");
    }

    #[test]
    fn bad_addresses_and_ids_name_the_value_and_key() {
        let mut msg = message("a@b");
        msg.from = "not an address".into();
        let err = build_message(&msg).unwrap_err();
        assert!(!err.is_transient());
        let text = err.to_string();
        assert!(
            text.contains("[mail].from") && text.contains("not an address"),
            "{text}"
        );

        let mut msg = message("a@b");
        msg.to.push("desk@@example".into());
        let text = build_message(&msg).unwrap_err().to_string();
        assert!(
            text.contains("to") && text.contains("desk@@example"),
            "{text}"
        );

        let mut msg = message("a@b");
        msg.to.clear();
        assert!(matches!(
            build_message(&msg),
            Err(DeliverError::Address { .. })
        ));

        for id in ["<a@b>", "no-at-sign", "a b@c", "a@b\r\nBcc: x@y"] {
            let err = build_message(&message(id)).unwrap_err();
            assert!(matches!(err, DeliverError::Build { .. }), "{id}: {err}");
        }
    }

    #[tokio::test]
    async fn outbox_writes_one_parseable_file_per_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("var/outbox");
        let mailer = Mailer::outbox(outbox.clone());
        let msg = message("daily.20261125T0500Z@marsad");

        let path = mailer
            .send(&msg)
            .await
            .unwrap()
            .expect("outbox returns the path");
        assert_eq!(path.parent(), Some(outbox.as_path()));
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("eml"));
        assert_delivered_intact(&std::fs::read(&path).unwrap(), &msg);

        // A retry of the same digest period replaces the file instead of adding one.
        let mut retry = msg.clone();
        retry.text = "second attempt\n".into();
        assert_eq!(mailer.send(&retry).await.unwrap(), Some(path.clone()));
        let files: Vec<_> = std::fs::read_dir(&outbox).unwrap().collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_delivered_intact(&std::fs::read(&path).unwrap(), &retry);

        let other = mailer
            .send(&message("daily.20261126T0500Z@marsad"))
            .await
            .unwrap();
        assert_ne!(other, Some(path));
        assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 2);
    }

    #[tokio::test]
    async fn outbox_in_a_file_path_is_a_permanent_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("outbox");
        std::fs::write(&blocker, "not a directory").unwrap();
        let err = Mailer::outbox(blocker.clone())
            .send(&message("a@b"))
            .await
            .unwrap_err();
        assert!(matches!(err, DeliverError::Io { .. }), "{err}");
        assert!(
            err.to_string().contains(&blocker.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn smtp_urls_are_checked_before_any_connection() {
        let t = Duration::from_secs(5);
        for good in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.org?tls=starttls",
            "smtp://mail.example.org:587",
            "smtps://mail.example.org",
            "smtp://[::1]:25",
        ] {
            assert!(Mailer::smtp(good, None, None, t).is_ok(), "{good}");
        }
        for bad in [
            "http://mail.example.org",
            "smtp://mail.example.org?tls=maybe",
            "smtp://mail.example.org?tsl=starttls",
            "smtps://mail.example.org?tls=none",
            "not a url",
        ] {
            let err = Mailer::smtp(bad, None, None, t).unwrap_err();
            assert!(err.to_string().contains("[mail].url"), "{bad}: {err}");
            assert!(!err.is_transient());
        }
        let err = Mailer::smtp("smtp://bob:hunter2-secret@mail.example.org", None, None, t)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2-secret"), "{err}");
        assert!(
            Mailer::smtp("smtp://m.example.org", Some("bob".into()), None, t).is_err(),
            "username without password"
        );
        let mailer = Mailer::smtp(
            "smtp://m.example.org",
            Some("bob".into()),
            Some("hunter2-secret".into()),
            t,
        )
        .unwrap();
        assert!(!format!("{mailer:?}").contains("hunter2-secret"));
    }

    /// A real SMTP server (aiosmtpd) on loopback, storing mail in a Maildir; killed on drop.
    struct SmtpServer {
        child: Child,
        port: u16,
        maildir: tempfile::TempDir,
    }

    impl SmtpServer {
        fn start() -> SmtpServer {
            let check = Command::new("python3")
                .args(["-c", "import aiosmtpd"])
                .output();
            match check {
                Ok(out) if out.status.success() => {}
                Ok(out) => panic!(
                    "the SMTP tests need aiosmtpd: run `pip install aiosmtpd` ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Err(err) => panic!(
                    "the SMTP tests need python3 with aiosmtpd: install python3, then `pip install aiosmtpd` ({err})"
                ),
            }
            let port = free_port();
            let maildir = tempfile::tempdir().unwrap();
            let mut child = Command::new("python3")
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                // Python's Maildir only creates cur/new/tmp when it creates the directory itself.
                .arg(maildir.path().join("Maildir"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start python3 -m aiosmtpd (pip install aiosmtpd)");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let mut stderr = String::new();
                    if let Some(mut pipe) = child.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                    }
                    panic!("aiosmtpd exited ({status}): {stderr}\n(pip install aiosmtpd)");
                }
                assert!(
                    Instant::now() < deadline,
                    "aiosmtpd did not start listening on {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            SmtpServer {
                child,
                port,
                maildir,
            }
        }

        fn url(&self) -> String {
            format!("smtp://127.0.0.1:{}", self.port)
        }

        fn received(&self) -> Vec<Vec<u8>> {
            let new = self.maildir.path().join("Maildir").join("new");
            let mut files: Vec<_> = std::fs::read_dir(&new)
                .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
                .unwrap_or_default();
            files.sort();
            files.iter().map(|p| std::fs::read(p).unwrap()).collect()
        }
    }

    impl Drop for SmtpServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn free_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn smtp_delivers_to_a_real_server_intact() {
        let server = SmtpServer::start();
        let mailer = Mailer::smtp(&server.url(), None, None, Duration::from_secs(10)).unwrap();
        let msg = message("daily.20261125T0500Z@marsad");
        assert_eq!(mailer.send(&msg).await.unwrap(), None);

        let received = server.received();
        assert_eq!(received.len(), 1);
        assert_delivered_intact(&received[0], &msg);
    }

    #[tokio::test]
    async fn smtp_auth_failure_is_permanent_and_never_shows_the_password() {
        // aiosmtpd offers no AUTH on a plain connection, so the login cannot happen.
        let server = SmtpServer::start();
        let mailer = Mailer::smtp(
            &server.url(),
            Some("bob".into()),
            Some("hunter2-secret".into()),
            Duration::from_secs(10),
        )
        .unwrap();
        let err = mailer.send(&message("a@b")).await.unwrap_err();
        assert!(!err.is_transient(), "{err}");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert!(
            text.contains(&format!("127.0.0.1:{}", server.port)),
            "{text}"
        );
        assert!(server.received().is_empty());
    }

    #[tokio::test]
    async fn smtp_with_nothing_listening_is_transient_and_names_the_server() {
        let port = free_port();
        let mailer = Mailer::smtp(
            &format!("smtp://127.0.0.1:{port}"),
            None,
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        let err = mailer.send(&message("a@b")).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        let text = err.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.contains("[mail].url"), "{text}");
    }
}
