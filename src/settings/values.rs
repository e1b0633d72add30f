//! Parsing of the scalar values users write as strings: durations, sizes, time zones, storage
//! URLs. Pure functions returning the message to show, so they are tested without files.

use std::path::Path;
use std::time::Duration;

use chrono_tz::Tz;

use super::Storage;

/// `"20s"`, `"1m 30s"`, `"2h"` (humantime syntax). Zero is refused: a zero timeout would make
/// every request fail.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration \"{text}\" ({e}); expected a duration like \"20s\", \"1m 30s\" or \"2h\"")
    })?;
    if d.is_zero() {
        return Err(format!("duration \"{text}\" must be more than zero"));
    }
    Ok(d)
}

/// Like [`duration`], but `"0s"` is allowed (`[http].min_delay = "0s"` turns the spacing off).
pub(crate) fn duration_or_zero(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration \"{text}\" ({e}); expected a duration like \"500ms\", \"1s\" or \"0s\"")
    })
}

/// `"15MiB"`, `"500 KB"`, `"1048576 bytes"`: decimal units (KB = 1000) and binary units
/// (KiB = 1024), case-insensitive, since users copy both from different places.
pub(crate) fn size(text: &str) -> Result<u64, String> {
    let expected = || {
        format!(
            "invalid size \"{text}\"; expected a number and a unit like \"15MiB\", \"500KB\" or \"2048 bytes\" \
             (units: bytes, B, KB, MB, GB, KiB, MiB, GiB)"
        )
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| expected())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "byte" | "bytes" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(expected()),
    };
    // f64 holds every size below 2^53 bytes exactly, far above any sensible body limit.
    let bytes = (number * multiplier as f64).round();
    if !(bytes >= 1.0 && bytes < 2f64.powi(53)) {
        return Err(format!("size \"{text}\" must be at least 1 byte"));
    }
    Ok(bytes as u64)
}

/// An IANA zone name. Suggests the right spelling when only the case is wrong.
pub(crate) fn timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        match chrono_tz::TZ_VARIANTS
            .iter()
            .find(|tz| tz.name().eq_ignore_ascii_case(name))
        {
            Some(tz) => format!(
                "unknown timezone \"{name}\"; did you mean \"{}\"?",
                tz.name()
            ),
            None => format!(
                "unknown timezone \"{name}\"; expected an IANA name like \"Asia/Beirut\" or \"UTC\""
            ),
        }
    })
}

/// `sqlite://PATH` (relative paths against the config directory), `sqlite:///abs/path`, or a
/// PostgreSQL URL passed through to the driver.
pub(crate) fn storage(url: &str, base: &Path) -> Result<Storage, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Storage::Postgres(url.to_owned()));
    }
    let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(format!(
            "unsupported storage URL \"{url}\"; expected \"sqlite://PATH\" (relative to this file) or \"postgres://user@host/db\""
        ));
    };
    if path.is_empty() || path.starts_with(":memory:") {
        return Err(format!(
            "storage URL \"{url}\" has no file path; marsad keeps its state on disk, e.g. \"sqlite://var/marsad.db\""
        ));
    }
    if path.contains('?') {
        return Err(format!(
            "storage URL \"{url}\" has options after \"?\"; marsad sets the SQLite options itself, give only the path"
        ));
    }
    Ok(Storage::Sqlite(base.join(path)))
}

/// Whether `id` is a usable source id: it appears in URLs, file names and the CLI.
pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A light check that an address has the `local@domain` part; the mail transport checks fully
/// when it builds a message, but a missing `@` is worth catching at `marsad check`.
pub(crate) fn mailbox(text: &str) -> Result<(), String> {
    let address = match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close => &text[open + 1..close],
        _ => text,
    };
    match address.trim().split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !address.trim().contains(' ') =>
        {
            Ok(())
        }
        _ => Err(format!(
            "invalid email address \"{text}\"; expected \"user@example.org\" or \"Name <user@example.org>\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn durations() {
        assert_eq!(duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration(" 2h "), Ok(Duration::from_secs(7200)));
        assert!(
            duration("20")
                .unwrap_err()
                .contains("expected a duration like \"20s\"")
        );
        assert!(duration("soon").is_err());
        assert!(duration("0s").unwrap_err().contains("more than zero"));
    }

    #[test]
    fn sizes_in_decimal_and_binary_units() {
        assert_eq!(size("15MiB"), Ok(15 * 1024 * 1024));
        assert_eq!(size("15 mib"), Ok(15 * 1024 * 1024));
        assert_eq!(size("500KB"), Ok(500_000));
        assert_eq!(size("2MB"), Ok(2_000_000));
        assert_eq!(size("1GiB"), Ok(1 << 30));
        assert_eq!(size("1GB"), Ok(1_000_000_000));
        assert_eq!(size("64KiB"), Ok(65_536));
        assert_eq!(size("2048 bytes"), Ok(2048));
        assert_eq!(size("10B"), Ok(10));
        assert_eq!(size("1.5MiB"), Ok(1_572_864));
        assert!(
            size("15 furlongs")
                .unwrap_err()
                .starts_with("invalid size \"15 furlongs\"")
        );
        assert!(size("MiB").is_err());
        assert!(size("").is_err());
        assert!(size("0MiB").unwrap_err().contains("at least 1 byte"));
    }

    #[test]
    fn timezones() {
        assert_eq!(timezone("Asia/Beirut"), Ok(chrono_tz::Asia::Beirut));
        assert_eq!(timezone("UTC"), Ok(chrono_tz::UTC));
        assert_eq!(
            timezone("asia/beirut").unwrap_err(),
            "unknown timezone \"asia/beirut\"; did you mean \"Asia/Beirut\"?"
        );
        assert!(timezone("Mars/Olympus").unwrap_err().contains("IANA"));
    }

    #[test]
    fn storage_urls() {
        let base = Path::new("/etc/marsad");
        match storage("sqlite://var/marsad.db", base).unwrap() {
            Storage::Sqlite(p) => assert_eq!(p, PathBuf::from("/etc/marsad/var/marsad.db")),
            other => panic!("{other:?}"),
        }
        match storage("sqlite:///var/lib/marsad/db.sqlite", base).unwrap() {
            Storage::Sqlite(p) => assert_eq!(p, PathBuf::from("/var/lib/marsad/db.sqlite")),
            other => panic!("{other:?}"),
        }
        match storage("postgres://marsad@db/marsad", base).unwrap() {
            Storage::Postgres(u) => assert_eq!(u, "postgres://marsad@db/marsad"),
            other => panic!("{other:?}"),
        }
        assert!(
            storage("mysql://x", base)
                .unwrap_err()
                .starts_with("unsupported storage URL")
        );
        assert!(storage("sqlite::memory:", base).is_err());
        assert!(storage("sqlite://x.db?mode=rwc", base).is_err());
    }

    #[test]
    fn ids_and_mailboxes() {
        assert!(is_valid_id("bbc-arabic"));
        assert!(is_valid_id("a1"));
        assert!(!is_valid_id("BBC"));
        assert!(!is_valid_id("al khanadeq"));
        assert!(!is_valid_id("الخنادق"));
        assert!(!is_valid_id(""));
        assert!(mailbox("desk@example.org").is_ok());
        assert!(mailbox("marsad <marsad@localhost>").is_ok());
        assert!(mailbox("desk").is_err());
        assert!(mailbox("Desk <@example.org>").is_err());
    }
}
