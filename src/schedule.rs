//! Cron schedules for source polling and digests.
//!
//! Users write the five-field expressions they know from crontab (`0 7 * * 1-5`), so the parser
//! is croner with seconds and years switched off: a sixth field is a mistake we report, not a
//! seconds column we silently accept. Weekdays follow crontab (0 and 7 = Sunday, 1-5 =
//! Monday–Friday), unlike the `cron` crate's 1 = Sunday, which would shift every weekday range.
//!
//! Times are evaluated on the wall clock of a chrono-tz zone so that "7 in the morning in Beirut"
//! stays 7 in the morning across daylight-saving changes; croner handles the gap (a fixed time that
//! does not exist that day runs at the first instant after the gap) and the repeated hour (a fixed
//! time runs once).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// What the error messages show as the shape of an expression.
const FIELDS_HINT: &str = "minute hour day-of-month month day-of-week";

/// The `@` shortcuts crontab users know, spelled out as five-field expressions.
///
/// We expand them ourselves rather than relying on croner because croner lacks `@midnight`
/// and passes unknown shortcuts on as illegal characters, which makes a poor message.
const SHORTCUTS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
    (IMMEDIATE, "* * * * *"),
];

/// `schedule = "@immediate"`: an alert digest, sent as soon as something matches (batched per
/// minute). As a cron expression it fires every minute.
pub const IMMEDIATE: &str = "@immediate";

/// Whether `expr` is the alert shortcut `@immediate`.
pub fn is_immediate(expr: &str) -> bool {
    expr.trim().eq_ignore_ascii_case(IMMEDIATE)
}

/// A parsed cron expression; keeps the text the user wrote for messages and `status` output.
#[derive(Debug, Clone)]
pub struct Schedule {
    expr: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Cron(Box<Cron>),
    /// `@every 30s`: fixed periods aligned to the Unix epoch (so every daemon, and a test, agrees
    /// on where a period starts), for intervals shorter than a minute or not dividing an hour.
    Every(chrono::Duration),
}

impl Schedule {
    /// Parses a five-field crontab expression or an `@` shortcut.
    ///
    /// The error says what shape is expected, since a schedule error is most often a
    /// Quartz-style seconds field or a missing field.
    pub fn parse(expr: &str) -> Result<Schedule, String> {
        let trimmed = expr.trim();
        if let Some(interval) = trimmed
            .strip_prefix("@every ")
            .or_else(|| trimmed.strip_prefix("@EVERY "))
        {
            let every = humantime::parse_duration(interval.trim())
                .ok()
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .filter(|d| d.num_seconds() >= 1)
                .ok_or_else(|| {
                    format!(
                        "invalid interval in \"{trimmed}\"; write e.g. \"@every 30s\" or \"@every 10m\" (at least 1s)"
                    )
                })?;
            return Ok(Schedule {
                expr: trimmed.to_owned(),
                kind: Kind::Every(every),
            });
        }
        let pattern = if trimmed.starts_with('@') {
            SHORTCUTS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
                .map(|(_, pattern)| *pattern)
                .ok_or_else(|| {
                    let names: Vec<&str> = SHORTCUTS.iter().map(|(name, _)| *name).collect();
                    format!(
                        "unknown shortcut \"{trimmed}\"; use one of {} or five fields ({FIELDS_HINT})",
                        names.join(", ")
                    )
                })?
        } else {
            let count = trimmed.split_whitespace().count();
            if count != 5 {
                return Err(format!(
                    "expected five fields ({FIELDS_HINT}) like \"0 7 * * 1-5\", got {count}"
                ));
            }
            trimmed
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(pattern)
            .map_err(|e| {
                format!(
                    "invalid cron expression \"{trimmed}\": {e}; fields are minute (0-59) hour (0-23) \
                     day-of-month (1-31) month (1-12) day-of-week (0-7, 0 and 7 = Sunday)"
                )
            })?;
        Ok(Schedule {
            expr: trimmed.to_owned(),
            kind: Kind::Cron(Box::new(cron)),
        })
    }

    /// The expression as the user wrote it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// The first fire time strictly after `after`, reading the expression on `tz`'s wall clock.
    ///
    /// `None` when the expression never fires again (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let cron = match &self.kind {
            Kind::Cron(cron) => cron,
            Kind::Every(every) => {
                let step = every.num_milliseconds();
                let k = after.timestamp_millis().div_euclid(step) + 1;
                return DateTime::from_timestamp_millis(k * step);
            }
        };
        cron.find_next_occurrence(&after.with_timezone(&tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The most recent fire time at or before `at`, on `tz`'s wall clock.
    ///
    /// Digests use it to name their period: the run due at `at` covers the time since the
    /// previous fire time, so a daemon that was down still knows which period is owed.
    pub fn prev_at_or_before(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let cron = match &self.kind {
            Kind::Cron(cron) => cron,
            Kind::Every(every) => {
                let step = every.num_milliseconds();
                let k = at.timestamp_millis().div_euclid(step);
                return DateTime::from_timestamp_millis(k * step);
            }
        };
        cron.find_previous_occurrence(&at.with_timezone(&tz), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.expr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// The next `n` fire times after `start`.
    fn fires(s: &Schedule, start: DateTime<Utc>, tz: Tz, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = start;
        for _ in 0..n {
            t = s.next_after(t, tz).unwrap();
            out.push(t);
        }
        out
    }

    #[test]
    fn weekdays_one_to_five_are_monday_to_friday() {
        let s = Schedule::parse("0 7 * * 1-5").unwrap();
        // 2025-06-01 is a Sunday.
        let got = fires(&s, utc(2025, 6, 1, 0, 0), Tz::UTC, 10);
        let days: Vec<Weekday> = got.iter().map(|t| t.weekday()).collect();
        use Weekday::*;
        assert_eq!(days, [Mon, Tue, Wed, Thu, Fri, Mon, Tue, Wed, Thu, Fri]);
        assert!(got.iter().all(|t| t.hour() == 7 && t.minute() == 0));
        assert_eq!(got[0], utc(2025, 6, 2, 7, 0));
    }

    #[test]
    fn zero_and_seven_are_both_sunday() {
        for expr in ["0 0 * * 0", "0 0 * * 7", "0 0 * * SUN"] {
            let s = Schedule::parse(expr).unwrap();
            let got = fires(&s, utc(2025, 6, 3, 12, 0), Tz::UTC, 3);
            assert!(
                got.iter().all(|t| t.weekday() == Weekday::Sun),
                "{expr}: {got:?}"
            );
            assert_eq!(got[0], utc(2025, 6, 8, 0, 0), "{expr}");
        }
    }

    #[test]
    fn every_interval_is_aligned_to_the_epoch() {
        let s = Schedule::parse("@every 10s").unwrap();
        let t = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 3).unwrap();
        let next = s.next_after(t, Tz::UTC).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 10).unwrap());
        assert_eq!(
            s.next_after(next, Tz::UTC).unwrap(),
            Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 20).unwrap()
        );
        assert_eq!(
            s.prev_at_or_before(next, Tz::UTC),
            Some(next),
            "a fire time is its own previous"
        );
        assert_eq!(
            s.prev_at_or_before(t, Tz::UTC),
            Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap())
        );
        assert!(Schedule::parse("@every soon").is_err());
        assert!(Schedule::parse("@every 0s").is_err());
    }

    #[test]
    fn shortcuts() {
        let daily = Schedule::parse("@daily").unwrap();
        assert_eq!(daily.as_str(), "@daily");
        assert_eq!(
            fires(&daily, utc(2025, 1, 1, 0, 0), Tz::UTC, 2),
            [utc(2025, 1, 2, 0, 0), utc(2025, 1, 3, 0, 0)]
        );
        let midnight = Schedule::parse("@midnight").unwrap();
        assert_eq!(
            midnight.next_after(utc(2025, 1, 1, 5, 0), Tz::UTC),
            Some(utc(2025, 1, 2, 0, 0))
        );
        let hourly = Schedule::parse("@HOURLY").unwrap();
        assert_eq!(
            hourly.next_after(utc(2025, 1, 1, 5, 0), Tz::UTC),
            Some(utc(2025, 1, 1, 6, 0))
        );
        let weekly = Schedule::parse("@weekly").unwrap();
        let next = weekly.next_after(utc(2025, 6, 3, 0, 0), Tz::UTC).unwrap();
        assert_eq!(next, utc(2025, 6, 8, 0, 0));
        let monthly = Schedule::parse("@monthly").unwrap();
        assert_eq!(
            monthly.next_after(utc(2025, 2, 10, 0, 0), Tz::UTC),
            Some(utc(2025, 3, 1, 0, 0))
        );
        let yearly = Schedule::parse("@yearly").unwrap();
        assert_eq!(
            yearly.next_after(utc(2025, 2, 10, 0, 0), Tz::UTC),
            Some(utc(2026, 1, 1, 0, 0))
        );
    }

    #[test]
    fn wrong_field_count_says_what_is_expected() {
        let err = Schedule::parse("0 0 7 * * 1-5").unwrap_err();
        assert_eq!(
            err,
            "expected five fields (minute hour day-of-month month day-of-week) like \"0 7 * * 1-5\", got 6"
        );
        let err = Schedule::parse("0 7 *").unwrap_err();
        assert!(err.ends_with("got 3"), "{err}");
        assert!(Schedule::parse("").unwrap_err().ends_with("got 0"));
    }

    #[test]
    fn bad_values_and_shortcuts_are_rejected() {
        let err = Schedule::parse("61 * * * *").unwrap_err();
        assert!(
            err.starts_with("invalid cron expression \"61 * * * *\""),
            "{err}"
        );
        assert!(err.contains("minute (0-59)"), "{err}");
        assert!(Schedule::parse("* 24 * * *").is_err());
        assert!(Schedule::parse("* * * * 8").is_err());
        assert!(Schedule::parse("x * * * *").is_err());
        let err = Schedule::parse("@fortnightly").unwrap_err();
        assert!(
            err.starts_with("unknown shortcut \"@fortnightly\""),
            "{err}"
        );
        assert!(err.contains("@daily"), "{err}");
    }

    #[test]
    fn next_after_is_strictly_after() {
        let s = Schedule::parse("0 7 * * *").unwrap();
        let at_seven = utc(2025, 5, 5, 7, 0);
        assert_eq!(s.next_after(at_seven, Tz::UTC), Some(utc(2025, 5, 6, 7, 0)));
        let half_second_later = at_seven + chrono::Duration::milliseconds(500);
        assert_eq!(
            s.next_after(half_second_later, Tz::UTC),
            Some(utc(2025, 5, 6, 7, 0))
        );
        let just_before = at_seven - chrono::Duration::seconds(1);
        assert_eq!(s.next_after(just_before, Tz::UTC), Some(at_seven));
    }

    #[test]
    fn prev_at_or_before_includes_the_instant_itself() {
        let s = Schedule::parse("0 7 * * *").unwrap();
        let at_seven = utc(2025, 5, 5, 7, 0);
        assert_eq!(s.prev_at_or_before(at_seven, Tz::UTC), Some(at_seven));
        assert_eq!(
            s.prev_at_or_before(at_seven + chrono::Duration::milliseconds(500), Tz::UTC),
            Some(at_seven)
        );
        assert_eq!(
            s.prev_at_or_before(at_seven - chrono::Duration::seconds(1), Tz::UTC),
            Some(utc(2025, 5, 4, 7, 0))
        );
        // Weekday schedule: on a Sunday the last period started on Friday.
        let weekdays = Schedule::parse("0 7 * * 1-5").unwrap();
        assert_eq!(
            weekdays.prev_at_or_before(utc(2025, 6, 1, 12, 0), Tz::UTC),
            Some(utc(2025, 5, 30, 7, 0))
        );
    }

    #[test]
    fn beirut_spring_forward_keeps_seven_local() {
        // Lebanon moves clocks from 00:00 to 01:00 on the last Sunday of March (2025-03-30):
        // UTC+2 before, UTC+3 after.
        let tz: Tz = "Asia/Beirut".parse().unwrap();
        let s = Schedule::parse("0 7 * * *").unwrap();
        let got = fires(&s, utc(2025, 3, 28, 12, 0), tz, 3);
        assert_eq!(
            got,
            [
                utc(2025, 3, 29, 5, 0), // 07:00 EET
                utc(2025, 3, 30, 4, 0), // 07:00 EEST
                utc(2025, 3, 31, 4, 0),
            ]
        );
        assert!(got.iter().all(|t| t.with_timezone(&tz).hour() == 7));
        // The previous-period boundary across the change is also a local 07:00.
        assert_eq!(
            s.prev_at_or_before(utc(2025, 3, 30, 3, 59), tz),
            Some(utc(2025, 3, 29, 5, 0))
        );
    }

    #[test]
    fn beirut_skipped_time_still_runs_once_that_day() {
        // 00:30 does not exist on 2025-03-30 in Beirut; the job runs at the first instant after
        // the gap (01:00 EEST = 22:00 UTC the day before) instead of being lost.
        let tz: Tz = "Asia/Beirut".parse().unwrap();
        let s = Schedule::parse("30 0 * * *").unwrap();
        let got = fires(&s, utc(2025, 3, 28, 12, 0), tz, 3);
        assert_eq!(
            got,
            [
                utc(2025, 3, 28, 22, 30), // 00:30 EET on the 29th
                utc(2025, 3, 29, 22, 0),  // gap: 01:00 EEST on the 30th
                utc(2025, 3, 30, 21, 30), // 00:30 EEST on the 31st
            ]
        );
    }

    #[test]
    fn beirut_fall_back_runs_repeated_time_once() {
        // On 2025-10-26 at 00:00 EEST clocks go back to 23:00 on the 25th, so 23:30 on the 25th
        // happens twice (20:30 and 21:30 UTC). A daily job must run once.
        let tz: Tz = "Asia/Beirut".parse().unwrap();
        let s = Schedule::parse("30 23 * * *").unwrap();
        let got = fires(&s, utc(2025, 10, 25, 12, 0), tz, 2);
        assert_eq!(got, [utc(2025, 10, 25, 20, 30), utc(2025, 10, 26, 21, 30)]);
        // And 07:00 moves from 04:00 UTC to 05:00 UTC.
        let seven = Schedule::parse("0 7 * * *").unwrap();
        assert_eq!(
            fires(&seven, utc(2025, 10, 25, 0, 0), tz, 2),
            [utc(2025, 10, 25, 4, 0), utc(2025, 10, 26, 5, 0)]
        );
    }

    #[test]
    fn never_firing_expression_has_no_next() {
        let s = Schedule::parse("0 0 30 2 *").unwrap();
        assert_eq!(s.next_after(utc(2025, 1, 1, 0, 0), Tz::UTC), None);
    }
}
