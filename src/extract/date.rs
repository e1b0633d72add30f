//! Publication dates as sites write them.
//!
//! Machine-readable dates (RFC 3339, RFC 2822, ISO) are tried first. Then dates written for
//! people: English ("October 28, 2023", "28 Oct 2023") and Arabic, where Levantine sites use
//! the Syriac month names (تشرين الأول), Egyptian and Gulf sites the transliterated ones
//! (أكتوبر), Maghreb sites French-derived ones (جويلية), many print both ("28 تشرين
//! الأول/أكتوبر 2023"), and digits may be Arabic-Indic. A date without a zone is taken as UTC.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;

/// What a date is read against: the zone for dates written without one, and the moment the
/// page was fetched (for "3 hours ago" and for dates without a year).
#[derive(Debug, Clone, Copy)]
pub struct DateContext {
    /// `None` reads zoneless dates as UTC.
    pub timezone: Option<Tz>,
    pub now: DateTime<Utc>,
}

/// Parses a date or date-time; `None` when `s` holds no recognisable date. Zoneless dates
/// are UTC, a year is required, relative dates are not read (see [`parse_date_in`]).
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    let s = normalize(s);
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    machine_readable(s, None).or_else(|| written(s, None))
}

/// Parses a date as a reader of the page would: zoneless dates in `ctx.timezone`; relative
/// dates ("منذ 3 ساعات", "قبل يومين", "أمس", "2 hours ago", "yesterday") counted back from
/// `ctx.now`; a day and month without a year taken as the most recent such day not after
/// `ctx.now`.
pub fn parse_date_in(s: &str, ctx: &DateContext) -> Option<DateTime<Utc>> {
    let s = normalize(s);
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    machine_readable(s, Some(ctx))
        .or_else(|| written(s, Some(ctx)))
        .or_else(|| relative(s, ctx))
}

/// A wall-clock time in the context's zone (UTC without one).
fn local_to_utc(naive: NaiveDateTime, ctx: Option<&DateContext>) -> DateTime<Utc> {
    match ctx.and_then(|c| c.timezone) {
        Some(tz) => tz
            .from_local_datetime(&naive)
            .earliest()
            // A wall-clock time skipped by a DST change: read it an hour later.
            .or_else(|| {
                tz.from_local_datetime(&(naive + Duration::hours(1)))
                    .earliest()
            })
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&naive)),
        None => Utc.from_utc_datetime(&naive),
    }
}

/// Units of relative dates after [`normalize`], with their length in seconds; dual forms
/// ("ساعتين") mean two.
const RELATIVE_UNITS: &[(&str, i64, i64)] = &[
    // (word, seconds, implied count when no number is written)
    ("ثانيه", 1, 1),
    ("ثواني", 1, 1),
    ("ثوان", 1, 1),
    ("دقيقه", 60, 1),
    ("دقيقتين", 60, 2),
    ("دقيقتان", 60, 2),
    ("دقائق", 60, 1),
    ("ساعه", 3600, 1),
    ("ساعتين", 3600, 2),
    ("ساعتان", 3600, 2),
    ("ساعات", 3600, 1),
    ("يوم", 86400, 1),
    ("يومين", 86400, 2),
    ("يومان", 86400, 2),
    ("ايام", 86400, 1),
    ("اسبوع", 604800, 1),
    ("اسبوعين", 604800, 2),
    ("اسابيع", 604800, 1),
    ("second", 1, 1),
    ("seconds", 1, 1),
    ("sec", 1, 1),
    ("secs", 1, 1),
    ("minute", 60, 1),
    ("minutes", 60, 1),
    ("min", 60, 1),
    ("mins", 60, 1),
    ("hour", 3600, 1),
    ("hours", 3600, 1),
    ("hr", 3600, 1),
    ("hrs", 3600, 1),
    ("day", 86400, 1),
    ("days", 86400, 1),
    ("week", 604800, 1),
    ("weeks", 604800, 1),
];

/// "منذ 3 ساعات", "قبل ساعتين", "2 hours ago", "an hour ago", "أمس", "yesterday", "اليوم".
fn relative(s: &str, ctx: &DateContext) -> Option<DateTime<Utc>> {
    let lower = s.to_lowercase();
    let tokens = tokenize(&lower);
    let words: Vec<&str> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.as_str()),
            _ => None,
        })
        .collect();
    let has = |w: &str| words.contains(&w);
    let marked = has("منذ") || has("قبل") || has("ago");
    if marked {
        for (i, token) in tokens.iter().enumerate() {
            let Token::Word(word) = token else { continue };
            let Some(&(_, seconds, implied)) = RELATIVE_UNITS.iter().find(|u| u.0 == word) else {
                continue;
            };
            let count = match i.checked_sub(1).map(|j| &tokens[j]) {
                Some(Token::Number(n, _)) => i64::from(*n),
                Some(Token::Word(w)) if matches!(w.as_str(), "a" | "an" | "one") => 1,
                _ => implied,
            };
            return Some(ctx.now - Duration::seconds(count.checked_mul(seconds)?));
        }
    }
    // Days named relative to today: the calendar day in the page's zone, at its start.
    let days_back = if has("امس") || has("البارحه") || has("yesterday") {
        Some(1)
    } else if has("اليوم") || has("today") {
        Some(0)
    } else {
        None
    }?;
    // Only labels ("أمس 14:05", "Yesterday at 6:40 pm"), not sentences or names that
    // mention the day ("اليوم السابع" is a newspaper).
    const LABEL_WORDS: &[&str] = &[
        "امس",
        "البارحه",
        "اليوم",
        "yesterday",
        "today",
        "at",
        "الساعه",
        "في",
        "ص",
        "م",
        "صباحا",
        "مساء",
        "مساءا",
        "am",
        "pm",
    ];
    if !words.iter().all(|w| LABEL_WORDS.contains(w)) {
        return None;
    }
    let today = match ctx.timezone {
        Some(tz) => ctx.now.with_timezone(&tz).date_naive(),
        None => ctx.now.date_naive(),
    };
    let day = today - Duration::days(days_back);
    let (time, offset) = time_and_offset(&tokens);
    let naive = day.and_time(time);
    Some(match offset {
        Some(o) => Utc.from_utc_datetime(&naive) - Duration::seconds(i64::from(o)),
        None => local_to_utc(naive, Some(ctx)),
    })
}

/// ASCII digits, ASCII punctuation for the Arabic comma and date separators, Arabic letters
/// folded (hamza forms, ta marbuta, alef maqsura, no tatweel or diacritics) so month names
/// compare equal however they were typed.
fn normalize(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\u{0660}'..='\u{0669}' => char::from_digit(c as u32 - 0x0660, 10),
            '\u{06F0}'..='\u{06F9}' => char::from_digit(c as u32 - 0x06F0, 10),
            '،' => Some(','),
            '\u{066B}' => Some('.'),
            '\u{0623}' | '\u{0625}' | '\u{0622}' | '\u{0671}' => Some('\u{0627}'),
            '\u{0629}' => Some('\u{0647}'),
            '\u{0649}' => Some('\u{064A}'),
            '\u{0640}' | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{200E}' | '\u{200F}' => None,
            '\u{00A0}' | '\u{202F}' => Some(' '),
            other => Some(other),
        })
        .collect()
}

fn machine_readable(s: &str, ctx: Option<&DateContext>) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(d.with_timezone(&Utc));
    }
    const ZONED: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
        "%Y-%m-%d %H:%M%z",
        "%Y-%m-%d %H:%M %z",
    ];
    for format in ZONED {
        if let Ok(d) = DateTime::<FixedOffset>::parse_from_str(s, format) {
            return Some(d.with_timezone(&Utc));
        }
    }
    const NAIVE: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
    ];
    if let Some(s_no_z) = s.strip_suffix('Z') {
        for format in NAIVE {
            if let Ok(d) = NaiveDateTime::parse_from_str(s_no_z, format) {
                return Some(Utc.from_utc_datetime(&d));
            }
        }
    }
    for format in NAIVE {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, format) {
            return Some(local_to_utc(d, ctx));
        }
    }
    for format in ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, format) {
            return Some(local_to_utc(d.and_time(NaiveTime::MIN), ctx));
        }
    }
    None
}

/// Month names after [`normalize`]; multi-word names before their one-word prefixes.
const MONTHS: &[(&str, u32)] = &[
    // Levantine (Syriac) names.
    ("كانون الثاني", 1),
    ("شباط", 2),
    ("اذار", 3),
    ("نيسان", 4),
    ("ايار", 5),
    ("حزيران", 6),
    ("تموز", 7),
    ("اب", 8),
    ("ايلول", 9),
    ("تشرين الاول", 10),
    ("تشرين الثاني", 11),
    ("كانون الاول", 12),
    // Egyptian / Gulf names and their common spellings.
    ("يناير", 1),
    ("فبراير", 2),
    ("مارس", 3),
    ("ابريل", 4),
    ("مايو", 5),
    ("ماي", 5),
    ("يونيو", 6),
    ("يونيه", 6),
    ("يوليو", 7),
    ("يوليه", 7),
    ("اغسطس", 8),
    ("سبتمبر", 9),
    ("اكتوبر", 10),
    ("نوفمبر", 11),
    ("ديسمبر", 12),
    // Maghreb (French-derived) names.
    ("جانفي", 1),
    ("فيفري", 2),
    ("افريل", 4),
    ("جوان", 6),
    ("جويليه", 7),
    ("اوت", 8),
    // English, full and abbreviated.
    ("january", 1),
    ("february", 2),
    ("march", 3),
    ("april", 4),
    ("may", 5),
    ("june", 6),
    ("july", 7),
    ("august", 8),
    ("september", 9),
    ("october", 10),
    ("november", 11),
    ("december", 12),
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sept", 9),
    ("sep", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];

#[derive(Debug, PartialEq)]
enum Token {
    Number(u32, usize),
    Time(u32, u32, u32),
    Word(String),
    Offset(i32),
}

/// Splits into numbers (with their digit count), times (`14:05`, `14:05:09`), words, and
/// numeric zone offsets (`+03:00`, `+0300`) that directly follow a time.
fn tokenize(s: &str) -> Vec<Token> {
    let chars: Vec<char> = s.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == ':') {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            let run = run.trim_end_matches(':');
            let parts: Vec<&str> = run.split(':').collect();
            let nums: Vec<u32> = parts.iter().filter_map(|p| p.parse().ok()).collect();
            match nums.as_slice() {
                [n] => tokens.push(Token::Number(*n, parts[0].len())),
                [h, m] => tokens.push(Token::Time(*h, *m, 0)),
                [h, m, sec, ..] => tokens.push(Token::Time(*h, *m, *sec)),
                _ => {}
            }
            // Skip fractional seconds such as ".123".
            if i + 1 < chars.len()
                && chars[i] == '.'
                && matches!(tokens.last(), Some(Token::Time(..)))
            {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
        } else if (c == '+' || c == '-')
            && follows_time_or_zone(&tokens)
            && chars.get(i + 1).is_some_and(char::is_ascii_digit)
        {
            let start = i + 1;
            let mut j = start;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == ':') {
                j += 1;
            }
            let digits: String = chars[start..j]
                .iter()
                .filter(|c| c.is_ascii_digit())
                .collect();
            let (h, m) = match digits.len() {
                1 | 2 => (digits.parse::<i32>().unwrap_or(0), 0),
                4 => (
                    digits[..2].parse().unwrap_or(0),
                    digits[2..].parse().unwrap_or(0),
                ),
                _ => {
                    i = j;
                    continue;
                }
            };
            let sign = if c == '-' { -1 } else { 1 };
            tokens.push(Token::Offset(sign * (h * 3600 + m * 60)));
            i = j;
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect::<String>().to_lowercase();
            tokens.push(Token::Word(word));
        } else {
            i += 1;
        }
    }
    tokens
}

/// A sign right after a time or after "GMT"/"UTC" starts a zone offset, not a range or a
/// date separator.
fn follows_time_or_zone(tokens: &[Token]) -> bool {
    match tokens.last() {
        Some(Token::Time(..)) => true,
        Some(Token::Word(w)) => w == "gmt" || w == "utc",
        _ => false,
    }
}

/// The month whose name (one or two words) starts at token `i`.
fn month_at(tokens: &[Token], i: usize) -> Option<u32> {
    let Token::Word(first) = &tokens[i] else {
        return None;
    };
    let second = match tokens.get(i + 1) {
        Some(Token::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    for (name, month) in MONTHS {
        match name.split_once(' ') {
            Some((a, b)) => {
                if first == a && second == Some(b) {
                    return Some(*month);
                }
            }
            None => {
                if first == name {
                    return Some(*month);
                }
            }
        }
    }
    None
}

/// Dates written for readers: a month name with a day and a four-digit year in any order, or
/// all-numeric `28/10/2023`, optionally with a time, am/pm (ص/م) and a zone.
fn written(s: &str, ctx: Option<&DateContext>) -> Option<DateTime<Utc>> {
    let tokens = tokenize(s);
    let named = (0..tokens.len()).find_map(|i| month_at(&tokens, i).map(|m| (m, i)));
    let numbers: Vec<(usize, u32, usize)> = tokens
        .iter()
        .enumerate()
        .filter_map(|(pos, t)| match t {
            Token::Number(n, digits) => Some((pos, *n, *digits)),
            _ => None,
        })
        .collect();
    let (year, month, day) = match named {
        Some((month, month_pos)) => {
            let year = numbers
                .iter()
                .find(|(_, n, d)| *d == 4 && (1900..=2100).contains(n));
            // The day is the number nearest the month name that is not the year.
            let day = numbers
                .iter()
                .filter(|(pos, n, d)| {
                    Some(*pos) != year.map(|y| y.0) && *d <= 2 && (1..=31).contains(n)
                })
                .min_by_key(|(pos, _, _)| pos.abs_diff(month_pos))?;
            match year {
                Some(year) => (year.1 as i32, month, day.1),
                // "28 تشرين الأول", "Oct 28": the most recent such day, when the context
                // knows when "now" is and the day sits right beside the month.
                None => {
                    let ctx = ctx?;
                    if day.0.abs_diff(month_pos) > 2 {
                        return None;
                    }
                    let today = match ctx.timezone {
                        Some(tz) => ctx.now.with_timezone(&tz).date_naive(),
                        None => ctx.now.date_naive(),
                    };
                    let this_year = NaiveDate::from_ymd_opt(today.year(), month, day.1);
                    match this_year {
                        Some(d) if d <= today => (today.year(), month, day.1),
                        _ => (today.year() - 1, month, day.1),
                    }
                }
            }
        }
        None => numeric_date(&numbers)?,
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let (time, offset) = time_and_offset(&tokens);
    let naive = date.and_time(time);
    Some(match offset {
        Some(o) => Utc.from_utc_datetime(&naive) - Duration::seconds(i64::from(o)),
        None => local_to_utc(naive, ctx),
    })
}

/// `28/10/2023`, `28-10-2023`, `28.10.2023`, `2023/10/28`: day-first unless the numbers
/// say otherwise, as Arabic and European sites write it.
fn numeric_date(numbers: &[(usize, u32, usize)]) -> Option<(i32, u32, u32)> {
    let adjacent = |w: &[(usize, u32, usize)]| w[1].0 == w[0].0 + 1 && w[2].0 == w[1].0 + 1;
    for w in numbers.windows(3).filter(|w| adjacent(w)) {
        let [(_, a, ad), (_, b, _), (_, c, cd)] = [w[0], w[1], w[2]];
        if ad == 4 && (1900..=2100).contains(&a) {
            return Some((a as i32, b, c));
        }
        if cd == 4 && (1900..=2100).contains(&c) {
            return Some(if b > 12 && a <= 12 {
                (c as i32, a, b)
            } else {
                (c as i32, b, a)
            });
        }
    }
    None
}

/// The time of day and the zone offset in seconds, `None` when the text names no zone.
fn time_and_offset(tokens: &[Token]) -> (NaiveTime, Option<i32>) {
    let Some(pos) = tokens.iter().position(|t| matches!(t, Token::Time(..))) else {
        return (NaiveTime::MIN, None);
    };
    let Token::Time(mut h, m, sec) = tokens[pos] else {
        return (NaiveTime::MIN, None);
    };
    let mut offset = None;
    for t in tokens.iter().skip(pos + 1).take(3) {
        match t {
            Token::Word(w) if h < 12 && matches!(w.as_str(), "pm" | "م" | "مساء" | "مساءا") =>
            {
                h += 12;
            }
            Token::Word(w) if h == 12 && matches!(w.as_str(), "am" | "ص" | "صباحا" | "صباح") =>
            {
                h = 0;
            }
            Token::Offset(o) => offset = Some(*o),
            Token::Word(w) if matches!(w.as_str(), "gmt" | "utc" | "z") => {
                offset = offset.or(Some(0));
            }
            _ => {}
        }
    }
    let time = NaiveTime::from_hms_opt(h, m, sec).unwrap_or(NaiveTime::MIN);
    (time, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn check(input: &str, expected: &str) {
        assert_eq!(parse_date(input), Some(utc(expected)), "input: {input:?}");
    }

    fn ctx(now: &str) -> DateContext {
        DateContext {
            timezone: None,
            now: utc(now),
        }
    }

    #[test]
    fn day_words_only_as_labels() {
        let c = ctx("2024-03-01T12:00:00Z");
        assert_eq!(
            parse_date_in("أمس الساعة 14:05", &c),
            Some(utc("2024-02-29T14:05:00Z"))
        );
        assert_eq!(
            parse_date_in("Today at 9:30 am", &c),
            Some(utc("2024-03-01T09:30:00Z"))
        );
        assert_eq!(parse_date_in("اليوم السابع", &c), None);
        assert_eq!(parse_date_in("Today's papers", &c), None);
        // Without a context, nothing relative and nothing year-less is read.
        assert_eq!(parse_date("منذ 3 ساعات"), None);
        assert_eq!(parse_date("28 تشرين الأول"), None);
    }

    #[test]
    fn machine_formats() {
        check("2023-10-28T14:05:00+03:00", "2023-10-28T11:05:00Z");
        check("2023-10-28T14:05:00.123Z", "2023-10-28T14:05:00.123Z");
        check("Sat, 28 Oct 2023 14:05:00 GMT", "2023-10-28T14:05:00Z");
        check("Sat, 28 Oct 2023 14:05:00 +0300", "2023-10-28T11:05:00Z");
        check("2023-10-28T14:05:00+0300", "2023-10-28T11:05:00Z");
        check("2023-10-28T14:05:00", "2023-10-28T14:05:00Z");
        check("2023-10-28 14:05", "2023-10-28T14:05:00Z");
        check("2023-10-28", "2023-10-28T00:00:00Z");
        check("2023/10/28 14:05", "2023-10-28T14:05:00Z");
    }

    #[test]
    fn english_written_dates() {
        check("October 28, 2023", "2023-10-28T00:00:00Z");
        check("28 Oct 2023", "2023-10-28T00:00:00Z");
        check("Published: Oct. 28, 2023 2:05 pm", "2023-10-28T14:05:00Z");
        check(
            "Saturday 28 October 2023 14:05 GMT+3",
            "2023-10-28T11:05:00Z",
        );
        check("28/10/2023", "2023-10-28T00:00:00Z");
        check("10/28/2023", "2023-10-28T00:00:00Z");
    }

    #[test]
    fn levantine_month_names() {
        let names = [
            "كانون الثاني",
            "شباط",
            "آذار",
            "نيسان",
            "أيار",
            "حزيران",
            "تموز",
            "آب",
            "أيلول",
            "تشرين الأول",
            "تشرين الثاني",
            "كانون الأول",
        ];
        for (i, name) in names.iter().enumerate() {
            let expected = format!("2023-{:02}-05T00:00:00Z", i + 1);
            check(&format!("5 {name} 2023"), &expected);
        }
    }

    #[test]
    fn egyptian_and_gulf_month_names_with_variants() {
        let names = [
            (1, "يناير"),
            (2, "فبراير"),
            (3, "مارس"),
            (4, "أبريل"),
            (4, "إبريل"),
            (5, "مايو"),
            (5, "ماي"),
            (6, "يونيو"),
            (6, "يونيه"),
            (7, "يوليو"),
            (7, "يوليه"),
            (8, "أغسطس"),
            (8, "اغسطس"),
            (9, "سبتمبر"),
            (10, "أكتوبر"),
            (11, "نوفمبر"),
            (12, "ديسمبر"),
        ];
        for (month, name) in names {
            let expected = format!("2020-{month:02}-17T00:00:00Z");
            check(&format!("17 {name} 2020"), &expected);
        }
    }

    #[test]
    fn arabic_indic_digits_and_combined_names() {
        check("٢٨ تشرين الأول/أكتوبر ٢٠٢٣", "2023-10-28T00:00:00Z");
        check("السبت، 28 تشرين الأول/أكتوبر 2023", "2023-10-28T00:00:00Z");
        check("۲۸ أكتوبر ۲۰۲۳", "2023-10-28T00:00:00Z");
        check(
            "الخميس 08 كانون الثاني 2026 - 13:42",
            "2026-01-08T13:42:00Z",
        );
        check("نشر في: 24 أبريل 2020 - 02:05 م", "2020-04-24T14:05:00Z");
        check("2023م 28 أكتوبر", "2023-10-28T00:00:00Z");
    }

    #[test]
    fn non_dates_are_none() {
        for input in [
            "",
            "   ",
            "أخبار لبنان",
            "Breaking news",
            "2023",
            "31 February 2023",
            "99/99/2023",
        ] {
            assert_eq!(parse_date(input), None, "input: {input:?}");
        }
    }
}
