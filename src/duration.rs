//! Durations written in specs, such as `max_age = "26h"`. `check` reports
//! a duration this parser cannot read; the run's freshness check is meant
//! to read durations with it too, so both agree on every text.
//!
//! The form is a whole number and one unit, nothing else: `30s`, `90m`,
//! `26h`, `7d`, `2w`. No sign, no space, no fraction, no combination
//! (`1d2h`): a duration that reads two ways must not silently mean one of
//! them. The value is positive and, in microseconds (the run's clock
//! resolution), fits an `i64`. Pure: no clock, no I/O.

/// Microseconds in a second.
const MICROS_PER_SECOND: i64 = 1_000_000;

/// The units, with their length in seconds.
pub const UNITS: &[(char, i64, &str)] = &[
    ('s', 1, "seconds"),
    ('m', 60, "minutes"),
    ('h', 3_600, "hours"),
    ('d', 86_400, "days"),
    ('w', 7 * 86_400, "weeks"),
];

/// Why a text is not a duration; `Display` is a lowercase phrase for a
/// diagnostic label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    Empty,
    /// No unit letter at the end, or one that is not a unit.
    Unit,
    /// The part before the unit is not a whole number of ASCII digits
    /// (a sign, a space, a fraction, a second unit).
    Number,
    Zero,
    TooLong,
}

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DurationError::Empty => "the duration is empty",
            DurationError::Unit => "it does not end in a unit: s, m, h, d or w",
            DurationError::Number => "it is not a whole number followed by one unit",
            DurationError::Zero => "a zero duration is never met",
            DurationError::TooLong => "it is longer than accord can count",
        })
    }
}

/// The duration `text` denotes, in microseconds.
pub fn parse_micros(text: &str) -> Result<i64, DurationError> {
    let s = text.trim();
    let unit = s.chars().next_back().ok_or(DurationError::Empty)?;
    let (_, seconds, _) = UNITS
        .iter()
        .find(|(u, _, _)| *u == unit)
        .ok_or(DurationError::Unit)?;
    let number = &s[..s.len() - unit.len_utf8()];
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError::Number);
    }
    let n: i64 = number.parse().map_err(|_| DurationError::TooLong)?;
    if n == 0 {
        return Err(DurationError::Zero);
    }
    n.checked_mul(*seconds)
        .and_then(|s| s.checked_mul(MICROS_PER_SECOND))
        .ok_or(DurationError::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_with_one_unit() {
        assert_eq!(parse_micros("26h"), Ok(26 * 3_600 * MICROS_PER_SECOND));
        assert_eq!(parse_micros(" 7d "), Ok(7 * 86_400 * MICROS_PER_SECOND));
        assert_eq!(parse_micros("2w"), Ok(14 * 86_400 * MICROS_PER_SECOND));
        assert_eq!(parse_micros("90m"), Ok(90 * 60 * MICROS_PER_SECOND));
        assert_eq!(parse_micros("30s"), Ok(30 * MICROS_PER_SECOND));
    }

    #[test]
    fn everything_else_is_refused_with_a_reason() {
        assert_eq!(parse_micros(""), Err(DurationError::Empty));
        assert_eq!(parse_micros("26 hours"), Err(DurationError::Number));
        assert_eq!(parse_micros("26 hour"), Err(DurationError::Unit));
        assert_eq!(parse_micros("26"), Err(DurationError::Unit));
        assert_eq!(parse_micros("-3d"), Err(DurationError::Number));
        assert_eq!(parse_micros("+3d"), Err(DurationError::Number));
        assert_eq!(parse_micros("1.5h"), Err(DurationError::Number));
        assert_eq!(parse_micros("26 h"), Err(DurationError::Number));
        assert_eq!(parse_micros("1d2h"), Err(DurationError::Number));
        assert_eq!(parse_micros("h"), Err(DurationError::Number));
        assert_eq!(parse_micros("٣d"), Err(DurationError::Number));
        assert_eq!(parse_micros("0d"), Err(DurationError::Zero));
        assert_eq!(
            parse_micros("99999999999999999999d"),
            Err(DurationError::TooLong)
        );
        assert_eq!(parse_micros("9999999999999w"), Err(DurationError::TooLong));
    }
}
