//! How much memory the embedded engine may hold for a run's queries, as an
//! environment's `memory_limit` or `--memory-limit` writes it: `4GB`,
//! `512MiB`, or a share of the machine's memory, `50%`. `check` reports a
//! text this parser cannot read, and the run reads the plan's text with it
//! again, so both agree on every text. Pure: what the machine has is the
//! run's to find out (`run::engine`).
//!
//! The form is a whole number and one unit, nothing else: `B`, `KB`, `MB`,
//! `GB`, `TB` (powers of 1000, as DuckDB and the disk makers count),
//! `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024), or `%` (1 to 100). Units
//! are read without regard to case (`4gb`), since `4Gb` meaning bits would
//! surprise no one who wrote it on purpose. No space, no fraction: a limit
//! that reads two ways must not silently mean one of them.

/// The units, with their size in bytes.
pub const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// How to write a limit: the help line of every message about one.
pub const HELP: &str = "write a whole number and one unit, such as `4GB` or `512MiB`, or a share of the machine's memory, such as `50%`";

/// A memory limit as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryLimit {
    /// So many bytes.
    Bytes(u64),
    /// This percentage (1 to 100) of the memory the machine (or the
    /// container it runs in) has.
    Share(u8),
}

impl MemoryLimit {
    /// The limit in bytes, on a machine with `available` bytes.
    pub fn bytes(self, available: u64) -> u64 {
        match self {
            MemoryLimit::Bytes(bytes) => bytes,
            MemoryLimit::Share(percent) => available / 100 * u64::from(percent),
        }
    }
}

/// Why a text is not a memory limit; `Display` is a lowercase phrase for a
/// diagnostic label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryLimitError {
    Empty,
    /// No unit at the end, or one that is not a unit.
    Unit,
    /// The part before the unit is not a whole number of ASCII digits.
    Number,
    Zero,
    /// A share over 100%.
    Share,
    TooLarge,
}

impl std::fmt::Display for MemoryLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemoryLimitError::Empty => "the limit is empty",
            MemoryLimitError::Unit => {
                "it does not end in a unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB or %"
            }
            MemoryLimitError::Number => "it is not a whole number followed by one unit",
            MemoryLimitError::Zero => "a zero limit leaves the engine no memory",
            MemoryLimitError::Share => "a share is at most 100%",
            MemoryLimitError::TooLarge => "it is larger than accord can count",
        })
    }
}

/// The limit `text` denotes.
pub fn parse(text: &str) -> Result<MemoryLimit, MemoryLimitError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(MemoryLimitError::Empty);
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = s.split_at(digits);
    if unit.is_empty() {
        return Err(MemoryLimitError::Unit);
    }
    let percent = unit == "%";
    let scale = if percent {
        1
    } else {
        UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|(_, bytes)| *bytes)
            .ok_or(if unit.starts_with(|c: char| c.is_ascii_alphabetic()) {
                MemoryLimitError::Unit
            } else {
                MemoryLimitError::Number
            })?
    };
    if number.is_empty() {
        return Err(MemoryLimitError::Number);
    }
    let value: u64 = number.parse().map_err(|_| MemoryLimitError::TooLarge)?;
    if value == 0 {
        return Err(MemoryLimitError::Zero);
    }
    if percent {
        return match u8::try_from(value) {
            Ok(p) if p <= 100 => Ok(MemoryLimit::Share(p)),
            _ => Err(MemoryLimitError::Share),
        };
    }
    value
        .checked_mul(scale)
        .map(MemoryLimit::Bytes)
        .ok_or(MemoryLimitError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_shares_read_one_way() {
        for (text, want) in [
            ("4GB", MemoryLimit::Bytes(4_000_000_000)),
            ("4gb", MemoryLimit::Bytes(4_000_000_000)),
            ("512MiB", MemoryLimit::Bytes(512 << 20)),
            (" 2GiB ", MemoryLimit::Bytes(2 << 30)),
            ("100B", MemoryLimit::Bytes(100)),
            ("1TiB", MemoryLimit::Bytes(1 << 40)),
            ("80%", MemoryLimit::Share(80)),
            ("100%", MemoryLimit::Share(100)),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
        for (text, why) in [
            ("", MemoryLimitError::Empty),
            ("4", MemoryLimitError::Unit),
            ("4 GB", MemoryLimitError::Number),
            ("4.5GB", MemoryLimitError::Number),
            ("-4GB", MemoryLimitError::Number),
            ("GB", MemoryLimitError::Number),
            ("4PB", MemoryLimitError::Unit),
            ("4Gigs", MemoryLimitError::Unit),
            ("0MB", MemoryLimitError::Zero),
            ("0%", MemoryLimitError::Zero),
            ("101%", MemoryLimitError::Share),
            ("99999999999TiB", MemoryLimitError::TooLarge),
            ("99999999999999999999999B", MemoryLimitError::TooLarge),
        ] {
            assert_eq!(parse(text), Err(why), "{text}");
        }
    }

    #[test]
    fn a_share_is_of_what_the_machine_has() {
        assert_eq!(MemoryLimit::Share(50).bytes(8_000_000_000), 4_000_000_000);
        assert_eq!(MemoryLimit::Bytes(7).bytes(8_000_000_000), 7);
    }
}
