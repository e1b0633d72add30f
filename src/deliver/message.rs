//! Assembling the MIME message both transports send.

use std::time::SystemTime;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::{DeliverError, OutgoingMessage};

const FROM_KEY: &str = "[mail].from";
const TO_KEY: &str = "[[digest]].to";

/// A `multipart/alternative` message (text first, then HTML, both UTF-8) with
/// `Message-ID: <msg.message_id>`. lettre encodes a non-ASCII subject per RFC 2047; control
/// characters in the subject (which may quote page text) become spaces, so it can never
/// start a new header.
pub fn build_message(msg: &OutgoingMessage) -> Result<Message, DeliverError> {
    check_message_id(&msg.message_id)?;
    let from = parse_mailbox(FROM_KEY, &msg.from)?;
    if msg.to.is_empty() {
        return Err(DeliverError::Address {
            key: TO_KEY,
            value: String::new(),
            reason: "no recipients".into(),
        });
    }
    let mut builder = Message::builder()
        .from(from)
        .message_id(Some(format!("<{}>", msg.message_id)))
        .date(SystemTime::from(msg.date))
        .subject(single_line(&msg.subject));
    for to in &msg.to {
        builder = builder.to(parse_mailbox(TO_KEY, to)?);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            msg.text.clone(),
            msg.html.clone(),
        ))
        .map_err(|err| DeliverError::Build {
            message_id: msg.message_id.clone(),
            message: err.to_string(),
        })
}

fn parse_mailbox(key: &'static str, value: &str) -> Result<Mailbox, DeliverError> {
    value
        .trim()
        .parse::<Mailbox>()
        .map_err(|err| DeliverError::Address {
            key,
            value: value.to_string(),
            reason: err.to_string(),
        })
}

/// RFC 5322 `msg-id` content: dot-atom text on both sides of one `@`. Anything else would
/// either break the header or make two runs of one digest look like different messages.
fn check_message_id(id: &str) -> Result<(), DeliverError> {
    let atom = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
    };
    match id.split_once('@') {
        Some((left, right)) if atom(left) && atom(right) => Ok(()),
        _ => Err(DeliverError::Build {
            message_id: id.to_string(),
            message:
                "a Message-ID must look like local@domain, ASCII, without spaces or angle brackets"
                    .into(),
        }),
    }
}

fn single_line(subject: &str) -> String {
    subject
        .split(char::is_control)
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}
