//! The `file_name` pattern of file destinations: which placeholders it
//! takes, what makes it unusable, and how long a filled name can get.
//!
//! It lives in the catalog because it is part of what file destinations
//! accept: `check` validates a written pattern against it, and the file
//! layout that `render` and `run` share fills it.

/// The pattern when a destination sets none: one set of files per
/// activation and run.
pub const DEFAULT_PATTERN: &str = "{activation}_{run_id}.{ext}";

/// The placeholders a pattern may hold, with what each stands for.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("activation", "the activation's name"),
    (
        "audience",
        "the audience (one set of files per audience of the activation)",
    ),
    ("destination", "the destination's name"),
    (
        "run_id",
        "the run id, YYYYMMDDTHHMMSSZ-xxxxxxxx (required: runs never collide)",
    ),
    ("date", "the run's UTC date, YYYYMMDD"),
    ("ext", "csv, jsonl or parquet, plus .gz when gzipped"),
];

/// Characters a run id has: `YYYYMMDDTHHMMSSZ-` and eight hex digits.
pub const RUN_ID_LEN: usize = 25;
const DATE_LEN: usize = 8;
/// The longest `{ext}`: `jsonl.gz`.
const MAX_EXT_LEN: usize = 8;
/// Room kept for a part number (`_2` ... `_999999`): a million parts of
/// the largest file is far beyond any delivery.
pub const PART_SUFFIX_ROOM: usize = 7;

/// The manifest's name: `{activation}_{run_id}.manifest.json`; `None`
/// leaves `{run_id}` as a placeholder.
pub fn manifest_name(activation: &str, run_id: Option<&str>) -> String {
    format!(
        "{activation}_{}.manifest.json",
        run_id.unwrap_or("{run_id}")
    )
}

/// One piece of a parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Placeholder(&'static str),
}

/// Why a pattern cannot name files, with the byte range of the culprit in
/// the pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    pub at: std::ops::Range<usize>,
    pub problem: String,
    pub help: String,
}

/// Parses a pattern: text and `{placeholder}`s.
pub fn parse(pattern: &str) -> Result<Vec<Piece>, PatternError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = pattern.char_indices().peekable();
    while let Some((at, c)) = rest.next() {
        match c {
            '{' => {
                let Some(end) = pattern[at..].find('}').map(|e| at + e) else {
                    return Err(PatternError {
                        at: at..pattern.len(),
                        problem: "`{` opens a placeholder that is never closed".into(),
                        help: format!("placeholders are {}", placeholder_list()),
                    });
                };
                let name = &pattern[at + 1..end];
                let Some((known, _)) = PLACEHOLDERS.iter().find(|(p, _)| *p == name) else {
                    return Err(PatternError {
                        at: at..end + 1,
                        problem: format!("`{{{name}}}` is not a placeholder"),
                        help: format!("placeholders are {}", placeholder_list()),
                    });
                };
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Placeholder(known));
                while rest.peek().is_some_and(|(i, _)| *i <= end) {
                    rest.next();
                }
            }
            '}' => {
                return Err(PatternError {
                    at: at..at + 1,
                    problem: "`}` closes no placeholder".into(),
                    help: format!("placeholders are {}", placeholder_list()),
                });
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Checks a pattern: it parses, holds `{run_id}`, and its text can only
/// make a plain file name (no folder, no `..`, no control character).
pub fn check(pattern: &str) -> Result<Vec<Piece>, PatternError> {
    if let Some(at) = pattern.find(['/', '\\']) {
        return Err(PatternError {
            at: at..at + 1,
            problem:
                "a path separator: files are written directly under the destination's location"
                    .into(),
            help:
                "put folders in the destination's `path` or `prefix`; `file_name` names files only"
                    .into(),
        });
    }
    if let Some(at) = pattern.find("..") {
        return Err(PatternError {
            at: at..at + 2,
            problem: "`..` in a file name".into(),
            help: "a file name may not hold `..`; use one `.` before the extension".into(),
        });
    }
    if let Some((at, c)) = pattern.char_indices().find(|(_, c)| c.is_control()) {
        return Err(PatternError {
            at: at..at + c.len_utf8(),
            problem: "a control character in a file name".into(),
            help: "write printable characters only".into(),
        });
    }
    let pieces = parse(pattern)?;
    if !pieces.contains(&Piece::Placeholder("run_id")) {
        return Err(PatternError {
            at: 0..pattern.len(),
            problem: "no `{run_id}`: two runs on one day would write the same names".into(),
            help: format!("add `{{run_id}}`, e.g. `file_name = \"{DEFAULT_PATTERN}\"`"),
        });
    }
    Ok(pieces)
}

/// The longest name a pattern can give: names filled with the given
/// longest values, the run id, date and extension at their longest, and
/// room for a part number.
pub fn longest(pieces: &[Piece], activation: &str, audience: &str, destination: &str) -> usize {
    let filled: usize = pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(t) => t.chars().count(),
            Piece::Placeholder("activation") => activation.chars().count(),
            Piece::Placeholder("audience") => audience.chars().count(),
            Piece::Placeholder("destination") => destination.chars().count(),
            Piece::Placeholder("run_id") => RUN_ID_LEN,
            Piece::Placeholder("date") => DATE_LEN,
            Piece::Placeholder(_) => MAX_EXT_LEN,
        })
        .sum();
    filled + PART_SUFFIX_ROOM
}

fn placeholder_list() -> String {
    PLACEHOLDERS
        .iter()
        .map(|(p, _)| format!("{{{p}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(check(DEFAULT_PATTERN).is_ok());
        assert_eq!(
            parse("a_{run_id}.{ext}").unwrap(),
            [
                Piece::Text("a_".into()),
                Piece::Placeholder("run_id"),
                Piece::Text(".".into()),
                Piece::Placeholder("ext"),
            ]
        );
        for (bad, at) in [
            ("{activation}.{ext}", 0..18),
            ("{run_id}_{day}.csv", 9..14),
            ("{run_id}/{ext}", 8..9),
            ("..{run_id}", 0..2),
            ("{run_id", 0..7),
            ("run_id}", 6..7),
            ("a\\{run_id}", 1..2),
        ] {
            assert_eq!(check(bad).expect_err(bad).at, at, "{bad}");
        }
        let pieces = check(DEFAULT_PATTERN).unwrap();
        assert_eq!(
            longest(&pieces, "abc", "", "d"),
            3 + 1 + RUN_ID_LEN + 1 + 8 + PART_SUFFIX_ROOM
        );
    }
}
