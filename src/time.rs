//! Timestamps as microseconds since the Unix epoch (UTC), and the small
//! parsers they need: RFC 3339 instants in data, on the command line and in
//! CEL's `timestamp("...")` (one strict parser for all three, so the
//! interpreter, the checker and the run agree on which dates exist), and
//! durations such as `26h` or `8d` in `max_age`. The calendar (which days
//! exist, days since the epoch) is chrono's; the parser's strictness and
//! messages are ours.
//!
//! Pure functions; the clock is read only by the CLI.

use chrono::{DateTime, Datelike, Month, NaiveDate, NaiveDateTime, Timelike};

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// The UTC date and time of an instant; `None` beyond the years chrono
/// represents (about ±262,000), which no timestamp the parser accepts
/// reaches.
pub fn utc(t: Micros) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(t).map(|t| t.naive_utc())
}

/// A run of exactly `len` ASCII digits.
fn digits_of(s: &str, len: usize) -> Option<i64> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DD`, or `YYYY-MM-DD[T ]HH:MM[:SS[.frac]]` with `Z`, an
/// offset `+HH:MM` (or `+HHMM`, `+HH`), or nothing (read as UTC); `None`
/// for anything else. [`check_timestamp`] says why.
pub fn parse_timestamp(text: &str) -> Option<Micros> {
    check_timestamp(text).ok()
}

/// [`parse_timestamp`], with the reason a text is not a timestamp. Strict
/// as RFC 3339 is: a day that its month does not have (`2026-02-30`,
/// `2026-11-31`) or an hour, minute, second or offset out of range
/// (`+99:99`) is refused, never rolled over into the next day. A leap
/// second (`23:59:60`) is read as the next second, as Unix time does.
pub fn check_timestamp(text: &str) -> Result<Micros, String> {
    match canonical(text.as_bytes()) {
        Some(t) => Ok(t),
        None => any_timestamp(text),
    }
}

/// The timestamp of `YYYY-MM-DDTHH:MM:SSZ` exactly, the shape exports
/// write (and accord's own), read by position; `None` for any other text,
/// which [`any_timestamp`] then reads (or refuses, saying why). Splitting
/// each text by its separators cost about a twentieth of reading a CSV
/// source of events.
fn canonical(b: &[u8]) -> Option<Micros> {
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let n = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let (y, m, d) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
    let (h, mi, sec) = (n(11, 13)?, n(14, 16)?, n(17, 19)?);
    // A leap second, and every refusal, are the general reading's.
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
    let days = i64::from(date.to_epoch_days());
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec);
    Some(secs * MICROS_PER_SECOND)
}

/// [`check_timestamp`] of any text: every shape it reads, or why not.
fn any_timestamp(text: &str) -> Result<Micros, String> {
    let shape = || "expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ".to_string();
    let s = text.trim();
    if s.len() < 10 || !s.is_char_boundary(10) {
        return Err(shape());
    }
    let (date, rest) = s.split_at(10);
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) = (
        parts.next().and_then(|p| digits_of(p, 4)),
        parts.next().and_then(|p| digits_of(p, 2)),
        parts.next().and_then(|p| digits_of(p, 2)),
        parts.next(),
    ) else {
        return Err(shape());
    };
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| format!("there is no month {m}"))?;
    // Four digits: always a year chrono represents.
    let year = i32::try_from(y).map_err(|_| shape())?;
    let Some(date) = u32::try_from(d)
        .ok()
        .and_then(|d| NaiveDate::from_ymd_opt(year, month.number_from_month(), d))
    else {
        let days = month.num_days(year).unwrap_or(31);
        return Err(format!("{} {y} has {days} days", month.name()));
    };
    let days = i64::from(date.to_epoch_days());
    if rest.is_empty() {
        return Ok(days * 86_400 * MICROS_PER_SECOND);
    }
    let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(shape)?;
    // Split off the zone.
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(pos) = rest.rfind(['+', '-']).filter(|&p| p >= 5) {
        let (c, zone) = rest.split_at(pos);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let hm = &zone[1..];
        let (h, mm) = match hm.split_once(':') {
            Some((h, mm)) => (digits_of(h, 2), digits_of(mm, 2)),
            // `get`, not slicing: four bytes of text need not split into
            // characters at 2 (`+a€`).
            None if hm.len() == 4 => (
                hm.get(..2).and_then(|h| digits_of(h, 2)),
                hm.get(2..).and_then(|mm| digits_of(mm, 2)),
            ),
            None => (digits_of(hm, 2), Some(0)),
        };
        let (Some(h), Some(mm)) = (h, mm) else {
            return Err(format!("`{zone}` is not an offset such as +02:00"));
        };
        if h > 23 || mm > 59 {
            return Err(format!(
                "the offset `{zone}` is out of range (-23:59 to +23:59)"
            ));
        }
        (c, sign * (h * 3600 + mm * 60))
    } else {
        (rest, 0)
    };
    let mut hms = clock.split(':');
    let h = hms.next().and_then(|p| digits_of(p, 2)).ok_or_else(shape)?;
    let mi = hms.next().and_then(|p| digits_of(p, 2)).ok_or_else(shape)?;
    let (sec, frac) = match hms.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let mut micros = 0i64;
            if sec.contains('.') {
                if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(shape());
                }
                // Microseconds: the first six digits; finer ones dropped.
                let six: String = frac.chars().chain("00000".chars()).take(6).collect();
                micros = digits(&six).ok_or_else(shape)?;
            }
            (digits_of(whole, 2).ok_or_else(shape)?, micros)
        }
    };
    if hms.next().is_some() {
        return Err(shape());
    }
    if h > 23 {
        return Err(format!("there is no hour {h}"));
    }
    if mi > 59 {
        return Err(format!("there is no minute {mi}"));
    }
    if sec > 60 || (sec == 60 && mi != 59) {
        return Err(format!("there is no second {sec}"));
    }
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Ok(secs * MICROS_PER_SECOND + frac)
}

/// Formats as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds; sub-seconds as `.ffffff`
/// only when present).
pub fn format_timestamp(t: Micros) -> String {
    let Some(at) = utc(t) else {
        // Out of the calendar's range: the count itself, never a panic.
        return format!("{t}us since 1970-01-01T00:00:00Z");
    };
    let frac = t.rem_euclid(MICROS_PER_SECOND);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    if frac == 0 {
        base + "Z"
    } else {
        format!("{base}.{frac:06}Z")
    }
}

/// A compact form for run ids and file names: `20261128T120000Z`.
pub fn compact_timestamp(t: Micros) -> String {
    format_timestamp(t - t.rem_euclid(MICROS_PER_SECOND)).replace(['-', ':'], "")
}

/// Parses `26h`, `8d`, `90m`, `30s`, `2w` into microseconds: the parser
/// `check` validates `max_age` with ([`crate::duration`]), so a duration
/// the check accepts is the one the run applies.
pub fn parse_duration(text: &str) -> Option<Micros> {
    crate::duration::parse_micros(text).ok()
}

/// Parses a CEL duration such as `90s`, `1h30m`, `-2h`, `1.5h` into
/// microseconds. Units: `h`, `m`, `s`, `ms`, `us`. `None` for anything else.
/// One parser for the checker (literal ranges), the lowering and the
/// interpreter, so they agree on every `duration("...")`.
pub fn parse_cel_duration(s: &str) -> Option<Micros> {
    let s = s.trim();
    let (sign, mut rest) = match s.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, s),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (unit, len) = ["ms", "us", "h", "m", "s"]
            .iter()
            .find(|u| rest.starts_with(**u))
            .map(|u| (*u, u.len()))?;
        rest = &rest[len..];
        total += value
            * match unit {
                "h" => 3_600_000_000.0,
                "m" => 60_000_000.0,
                "s" => 1_000_000.0,
                "ms" => 1_000.0,
                _ => 1.0,
            };
    }
    Some((sign * total).round() as i64)
}

/// A duration for people: `3d 4h`, `26h`, `12m`, `40s`.
pub fn format_duration(d: Micros) -> String {
    let s = d / MICROS_PER_SECOND;
    if s >= 86_400 {
        format!("{}d {}h", s / 86_400, s % 86_400 / 3600)
    } else if s >= 3600 {
        format!("{}h {}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical shape read by position gives what the general reading
    /// gives, for every text: random fields in and out of range (month 13,
    /// day 31 of a short month, hour 24, a leap second, year 0), a wrong
    /// separator or a letter for a digit now and then.
    #[test]
    fn the_canonical_shape_reads_as_any_shape_does() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        let mut read_by_position = 0;
        for _ in 0..200_000 {
            let mut text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                random(10_000),
                random(14),
                random(33),
                random(26),
                random(62),
                random(62)
            )
            .into_bytes();
            if random(8) == 0 {
                let at = random(20) as usize;
                text[at] = b"0T:-Zx +"[random(8) as usize];
            }
            let text = String::from_utf8(text).expect("ascii");
            if let Some(t) = canonical(text.as_bytes()) {
                read_by_position += 1;
                assert_eq!(any_timestamp(&text), Ok(t), "{text}");
            }
            assert_eq!(check_timestamp(&text), any_timestamp(&text), "{text}");
        }
        assert!(read_by_position > 50_000, "{read_by_position}");
    }

    #[test]
    fn round_trips_rfc3339() {
        let t = parse_timestamp("2026-11-28T12:00:00Z").unwrap();
        assert_eq!(format_timestamp(t), "2026-11-28T12:00:00Z");
        assert_eq!(compact_timestamp(t), "20261128T120000Z");
        assert_eq!(parse_timestamp("2026-11-28T13:00:00+01:00"), Some(t));
        assert_eq!(parse_timestamp("2026-11-28T12:00:00.5Z"), Some(t + 500_000));
        assert_eq!(
            parse_timestamp("2026-11-28"),
            Some(t - 12 * 3600 * 1_000_000)
        );
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_timestamp("not a date"), None);
        assert_eq!(parse_timestamp("2026-13-01"), None);
    }

    /// Dates a calendar does not have are refused, not rolled over into the
    /// next month; so are clocks and offsets out of range.
    #[test]
    fn refuses_impossible_dates_times_and_offsets() {
        for text in [
            "2026-11-31T23:00:00Z",
            "2026-02-30T12:00:00Z",
            "2026-02-29",
            "2100-02-29",
            "2026-04-31",
            "2026-00-10",
            "2026-01-00",
            "2026-11-28T24:00:00Z",
            "2026-11-28T12:60:00Z",
            "2026-11-28T12:00:61Z",
            "2026-11-28T12:30:60Z",
            "2026-11-28T12:00:00+99:99",
            "2026-11-28T12:00:00+24:00",
            "2026-11-28T12:00:00-12:60",
            "2026-11-28T12:00:00+1:00",
            "2026-11-28T12:00:00+",
            "26-11-28",
            "2026-1-28T12:00:00Z",
            "2026-11-28T1:00:00Z",
            "2026-11-28T12:00:00.Z",
            "2026-11-28T12:00:00.5xZ",
            "2026-11-28T12:00:00:00Z",
            "2026-11-28X12:00:00Z",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text} should be refused");
        }
        assert_eq!(
            check_timestamp("2026-11-31T23:00:00Z"),
            Err("November 2026 has 30 days".into())
        );
        assert_eq!(
            check_timestamp("2026-02-30"),
            Err("February 2026 has 28 days".into())
        );
        assert_eq!(
            check_timestamp("2026-11-28T12:00:00+99:99"),
            Err("the offset `+99:99` is out of range (-23:59 to +23:59)".into())
        );
    }

    #[test]
    fn accepts_every_valid_form() {
        let t = parse_timestamp("2026-11-28T12:00:00Z").unwrap();
        let hour = 3600 * 1_000_000;
        assert!(parse_timestamp("2024-02-29").is_some(), "a leap year");
        assert!(parse_timestamp("2000-02-29").is_some(), "a leap century");
        assert!(parse_timestamp("2026-12-31T23:59:59Z").is_some());
        assert_eq!(parse_timestamp("2026-11-28T12:00:00+0100"), Some(t - hour));
        assert_eq!(parse_timestamp("2026-11-28T12:00:00+01"), Some(t - hour));
        assert_eq!(
            parse_timestamp("2026-11-28T12:00:00-23:59"),
            Some(t + 24 * hour - 60_000_000)
        );
        assert_eq!(parse_timestamp("2026-11-28 12:00"), Some(t));
        assert_eq!(parse_timestamp("2026-11-28t12:00:00z"), Some(t));
        assert_eq!(
            parse_timestamp("2026-11-28T12:00:00.123456789Z"),
            Some(t + 123_456)
        );
        assert_eq!(
            parse_timestamp("2026-12-31T23:59:60Z"),
            parse_timestamp("2027-01-01T00:00:00Z"),
            "a leap second is the next second"
        );
    }

    proptest::proptest! {
        /// Text mixing the parser's separators with characters of two and
        /// three bytes, after a date or alone: an answer, never a panic (the
        /// parser slices text it has not validated yet).
        #[test]
        fn any_text_is_answered_without_a_panic(
            clock in "[0-9T:+. Zz-]{0,14}",
            tail in "[+:0-9aé€日 -]{0,6}",
        ) {
            let _ = check_timestamp(&format!("2026-11-28{clock}{tail}"));
            let _ = check_timestamp(&format!("2026-11-28T12:00:00{tail}{clock}"));
            let _ = check_timestamp(&format!("{tail}{clock}"));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("26h"), Some(26 * 3600 * 1_000_000));
        assert_eq!(parse_duration("8d"), Some(8 * 86_400 * 1_000_000));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(format_duration(26 * 3600 * 1_000_000), "1d 2h");
    }
}
