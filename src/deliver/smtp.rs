//! The SMTP transport (lettre), with errors that say what to check and whether to retry.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, AsyncSmtpTransportBuilder, Error as SmtpError};
use lettre::{AsyncTransport, Message, Tokio1Executor};
use url::{Host, Url};

use super::DeliverError;

const URL_KEY: &str = "[mail].url";
const CA_KEY: &str = "[mail].tls_ca_file";
/// A whole SMTP session (connect, greeting, TLS, AUTH, envelope, data) may take this many times
/// the per-command timeout.
const SESSION_TIMEOUTS: u32 = 3;
const SMTP_PORT: u16 = 25;
const SUBMISSION_PORT: u16 = 587;
const SUBMISSIONS_PORT: u16 = 465;

/// A configured SMTP connection. Debug shows the server only.
pub struct SmtpMailer {
    /// `host:port`, what every error names.
    server: String,
    builder: AsyncSmtpTransportBuilder,
    /// Built on first use: lettre's pool spawns its cleanup task on the current tokio runtime,
    /// and [`SmtpMailer::new`] may run before there is one (while loading settings).
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    timeout: Duration,
    /// Kept only to scrub it out of server replies quoted in errors.
    password: Option<String>,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    pub(super) fn new(
        url: &str,
        username: Option<String>,
        password: Option<String>,
        timeout: Duration,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<SmtpMailer, DeliverError> {
        let config_err = |message: String| DeliverError::Config {
            key: URL_KEY,
            value: redact(url),
            message,
        };
        let parsed = Url::parse(url).map_err(|err| {
            config_err(format!(
                "not a URL ({err}); expected smtp://host:25, smtp://host:587?tls=starttls or smtps://host:465"
            ))
        })?;
        if parsed.password().is_some() || !parsed.username().is_empty() {
            return Err(config_err(
                "remove the credentials from the URL; set [mail].username, and give the password in a password file or the environment".into(),
            ));
        }
        let host = match parsed.host() {
            Some(Host::Domain(domain)) => domain.to_string(),
            Some(Host::Ipv4(addr)) => addr.to_string(),
            Some(Host::Ipv6(addr)) => addr.to_string(),
            None => return Err(config_err("the URL has no host".into())),
        };
        let mut tls_mode = None;
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "tls" => tls_mode = Some(value.into_owned()),
                other => {
                    return Err(config_err(format!(
                        "unknown URL parameter {other:?}; the only one is tls=starttls|opportunistic|none"
                    )));
                }
            }
        }

        let extra_ca = extra_ca_pem
            .map(|pem| {
                Certificate::from_pem(pem).map_err(|err| DeliverError::Config {
                    key: CA_KEY,
                    value: String::new(),
                    message: format!("not a PEM certificate file ({err})"),
                })
            })
            .transpose()?;
        let tls_params = || {
            let mut builder = TlsParameters::builder(host.clone());
            if let Some(ca) = &extra_ca {
                builder = builder.add_root_certificate(ca.clone());
            }
            builder
                .build()
                .map_err(|err| config_err(format!("cannot set up TLS for {host:?}: {err}")))
        };
        let (port, tls) = match (parsed.scheme(), tls_mode.as_deref()) {
            ("smtps", None) => {
                let port = parsed.port().unwrap_or(SUBMISSIONS_PORT);
                (port, Tls::Wrapper(tls_params()?))
            }
            ("smtps", Some(_)) => {
                return Err(config_err(
                    "smtps:// always uses implicit TLS; remove ?tls= (or use smtp://…?tls=starttls)"
                        .into(),
                ));
            }
            ("smtp", Some("starttls" | "required")) => {
                let port = parsed.port().unwrap_or(SUBMISSION_PORT);
                (port, Tls::Required(tls_params()?))
            }
            ("smtp", Some("opportunistic")) => {
                let port = parsed.port().unwrap_or(SUBMISSION_PORT);
                (port, Tls::Opportunistic(tls_params()?))
            }
            ("smtp", Some("none")) => (parsed.port().unwrap_or(SMTP_PORT), Tls::None),
            // Submission (587) without TLS would send the password in clear text.
            ("smtp", None) if parsed.port() == Some(SUBMISSION_PORT) => {
                (SUBMISSION_PORT, Tls::Required(tls_params()?))
            }
            ("smtp", None) => (parsed.port().unwrap_or(SMTP_PORT), Tls::None),
            ("smtp", Some(other)) => {
                return Err(config_err(format!(
                    "unknown tls={other:?}; use tls=starttls, tls=opportunistic or tls=none"
                )));
            }
            (scheme, _) => {
                return Err(config_err(format!(
                    "unsupported scheme {scheme:?}; use smtp:// or smtps://"
                )));
            }
        };

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        match (&username, &password) {
            (Some(user), Some(pass)) => {
                builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(config_err(
                    "a username is set but no password; give the password in a password file or the environment".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(config_err(
                    "a password is given but no username; set [mail].username".into(),
                ));
            }
        }

        let server = match parsed.host() {
            Some(Host::Ipv6(addr)) => format!("[{addr}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        Ok(SmtpMailer {
            server,
            builder,
            transport: OnceLock::new(),
            timeout,
            password: password.filter(|p| !p.is_empty()),
        })
    }

    pub(super) async fn send(
        &self,
        message: Message,
        message_id: &str,
    ) -> Result<(), DeliverError> {
        let transport = self.transport.get_or_init(|| self.builder.clone().build());
        // lettre's timeout covers each command but not the wait for the server's greeting, so a
        // server that accepts the connection and then says nothing would hang the send (and a
        // daemon's whole digest loop) forever. One deadline over the whole exchange bounds it.
        let deadline = self.timeout.saturating_mul(SESSION_TIMEOUTS);
        let sent = match tokio::time::timeout(deadline, transport.send(message)).await {
            Ok(sent) => sent,
            Err(_) => {
                return Err(DeliverError::Smtp {
                    server: self.server.clone(),
                    transient: true,
                    message: format!(
                        "no complete SMTP exchange within {deadline:?}; check {URL_KEY} and that the server is responding; will retry later"
                    ),
                });
            }
        };
        match sent {
            Ok(response) => {
                tracing::debug!(
                    server = %self.server,
                    message_id,
                    reply = ?response.code(),
                    "SMTP server accepted the message"
                );
                Ok(())
            }
            Err(err) => Err(self.classify(&err)),
        }
    }

    /// Turns a lettre error into what an operator needs: is it worth retrying, and what to
    /// check. Reply text from the server is quoted, with the password scrubbed just in case.
    fn classify(&self, err: &SmtpError) -> DeliverError {
        let detail = match &self.password {
            Some(password) => err.to_string().replace(password.as_str(), "********"),
            None => err.to_string(),
        };
        let (transient, message) = if let Some(code) = err.status() {
            let code = u16::from(code);
            let hint = match code {
                530 | 534 | 535 | 538 => "check [mail].username and the password",
                550..=553 => "check [mail].from and the digest's `to` addresses",
                _ if err.is_transient() => "will retry later",
                _ => "see the server's log for why it refused",
            };
            (
                err.is_transient(),
                format!("the server answered {code} ({detail}); {hint}"),
            )
        } else if err.is_timeout() {
            (
                true,
                format!(
                    "no answer within {:?} ({detail}); check {URL_KEY} and that the server is reachable; will retry later",
                    self.timeout
                ),
            )
        } else if err.is_tls() || detail.contains("certificate") {
            (
                false,
                format!(
                    "TLS failed ({detail}); check {URL_KEY}: smtps:// is for implicit TLS (port 465), ?tls=starttls for STARTTLS (port 587); a server with a private or self-signed certificate needs its CA in {CA_KEY}"
                ),
            )
        } else if err.is_client() {
            (
                false,
                format!(
                    "{detail}; check {URL_KEY} and [mail].username (many servers offer login only over TLS: smtps:// or ?tls=starttls)"
                ),
            )
        } else {
            // Connection refused/reset, DNS failure, dropped connection, garbled reply.
            (
                true,
                format!(
                    "cannot talk to the server ({detail}); check {URL_KEY} and that the server is running; will retry later"
                ),
            )
        };
        DeliverError::Smtp {
            server: self.server.clone(),
            transient,
            message,
        }
    }
}

/// The URL as it may appear in an error: no password, even if one was (wrongly) put there.
fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have credentials, which this one just had.
            let _ = parsed.set_password(Some("********"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        // Unparseable: we cannot tell where a password would be, so show only the scheme.
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…"),
            None => "…".to_string(),
        },
    }
}
