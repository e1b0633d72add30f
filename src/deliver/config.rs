//! Builds the configured transport; the SMTP password is read here, from a file (e.g. a systemd
//! credential) or an environment variable, never from the TOML and never logged.

use std::time::Duration;

use super::{DeliverError, Mailer};
use crate::settings::{MailSettings, MailTransport};

pub fn mailer_from_settings(
    mail: &MailSettings,
    timeout: Duration,
) -> Result<Mailer, DeliverError> {
    match mail.transport {
        MailTransport::Outbox => Ok(Mailer::outbox(mail.outbox_dir.clone())),
        MailTransport::Smtp => {
            let url = mail.url.as_deref().ok_or_else(|| DeliverError::Config {
                key: "[mail].url",
                value: String::new(),
                message: "transport = \"smtp\" needs [mail].url, e.g. \"smtp://127.0.0.1:25\""
                    .to_string(),
            })?;
            let password = match (&mail.password_file, &mail.password_env) {
                (Some(path), _) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| DeliverError::Config {
                            key: "[mail].password_file",
                            value: path.display().to_string(),
                            message: format!("cannot read it: {e}"),
                        })?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                ),
                (None, Some(var)) => {
                    Some(std::env::var(var).map_err(|_| DeliverError::Config {
                        key: "[mail].password_env",
                        value: var.clone(),
                        message: "that environment variable is not set".to_string(),
                    })?)
                }
                (None, None) => None,
            };
            let ca = match &mail.tls_ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| DeliverError::Config {
                    key: "[mail].tls_ca_file",
                    value: path.display().to_string(),
                    message: format!("cannot read it: {e}"),
                })?),
                None => None,
            };
            Mailer::smtp_with_ca(url, mail.username.clone(), password, timeout, ca.as_deref())
        }
    }
}
