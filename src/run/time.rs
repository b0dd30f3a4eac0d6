//! Timestamps as microseconds since the Unix epoch (UTC), and the small
//! parsers `run` needs: RFC 3339 instants in data and on the command line,
//! and durations such as `26h` or `8d` in `max_age`.
//!
//! Pure functions; the clock is read only by the CLI.

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Days since the epoch of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DD`, or `YYYY-MM-DD[T ]HH:MM[:SS[.frac]]` with `Z`, an
/// offset `+HH:MM`, or nothing (read as UTC).
pub fn parse_timestamp(text: &str) -> Option<Micros> {
    let s = text.trim();
    if s.len() < 10 || !s.is_char_boundary(10) {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let mut parts = date.split('-');
    let (y, m, d) = (
        digits(parts.next()?)?,
        digits(parts.next()?)?,
        digits(parts.next()?)?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if rest.is_empty() {
        return Some(days * 86_400 * MICROS_PER_SECOND);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    // Split off the zone.
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(pos) = rest.rfind(['+', '-']).filter(|&p| p >= 5) {
        let (c, zone) = rest.split_at(pos);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let mut hm = zone[1..].split(':');
        let h = digits(hm.next()?)?;
        let mm = hm.next().map(digits).unwrap_or(Some(0))?;
        (c, sign * (h * 3600 + mm * 60))
    } else {
        (rest, 0)
    };
    let mut hms = clock.split(':');
    let h = digits(hms.next()?)?;
    let mi = digits(hms.next()?)?;
    let (sec, frac) = match hms.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let mut micros = 0i64;
            if !frac.is_empty() {
                let f = digits(frac)?;
                let len = frac.len() as u32;
                micros = if len <= 6 {
                    f * 10i64.pow(6 - len)
                } else {
                    f / 10i64.pow((len - 6).min(18))
                };
            }
            (digits(whole)?, micros)
        }
    };
    if hms.next().is_some() || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(secs * MICROS_PER_SECOND + frac)
}

/// Formats as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds; sub-seconds as `.ffffff`
/// only when present).
pub fn format_timestamp(t: Micros) -> String {
    let secs = t.div_euclid(MICROS_PER_SECOND);
    let frac = t.rem_euclid(MICROS_PER_SECOND);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
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

/// Parses `26h`, `8d`, `90m`, `30s`, `2w` into microseconds.
pub fn parse_duration(text: &str) -> Option<Micros> {
    let s = text.trim();
    let unit = s.chars().last()?;
    let n = digits(&s[..s.len() - unit.len_utf8()])?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(secs)?.checked_mul(MICROS_PER_SECOND)
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

    #[test]
    fn durations() {
        assert_eq!(parse_duration("26h"), Some(26 * 3600 * 1_000_000));
        assert_eq!(parse_duration("8d"), Some(8 * 86_400 * 1_000_000));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(format_duration(26 * 3600 * 1_000_000), "1d 2h");
    }
}
