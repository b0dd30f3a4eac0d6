//! The effective file settings and names of one activation's file
//! delivery: the destination's settings, or the catalog's defaults where
//! it sets none, and the names its files and manifest get.
//!
//! `render` (the delivery manifest reviewers read) and `run` (what is
//! written) both take them from here, so the names a reviewer approves are
//! the names that land. `check` has refused every value this module could
//! not honour (`resolve::file_settings`), so a value it meets that does not
//! parse falls back to the catalog default instead of failing.
//!
//! The layout is flat: every file of every run sits directly under the
//! destination's location, named by the `file_name` pattern; the run id in
//! each name keeps runs apart.

use serde::Serialize;

pub use crate::catalog::file_name::manifest_name;
use crate::catalog::{self, DestinationType, file_name::Piece};
use crate::plan::{ActivationPlan, Plan, SettingPlan};

/// The format of the written files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
    Parquet,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

/// How CSV cells are written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CsvDialect {
    pub delimiter: char,
    pub quote: char,
    /// `"`: a quote inside a quoted cell is doubled (RFC 4180); any other
    /// character is written before a quote, and before itself.
    pub escape: char,
    /// The text of a missing value (JSON null), distinct from empty text.
    pub null: String,
    pub header: bool,
    /// Text cells that start a spreadsheet formula get a `'` in front.
    pub formula_escape: bool,
}

/// Everything that decides which files an activation's delivery writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileLayout {
    pub format: Format,
    pub gzip: bool,
    pub csv: CsvDialect,
    pub rows_per_file: u64,
    /// The `file_name` pattern.
    pub file_name: String,
    /// Whether `{activation}_{run_id}.manifest.json` is written last.
    pub manifest: bool,
}

/// The values a name is filled with; `None` leaves the placeholder as it is
/// (the rendered manifest shows what only the run knows as placeholders).
#[derive(Clone, Copy, Debug, Default)]
pub struct NameValues<'a> {
    pub activation: &'a str,
    pub destination: &'a str,
    pub audience: Option<&'a str>,
    pub run_id: Option<&'a str>,
    /// The run's UTC date, YYYYMMDD ([`run_date`]).
    pub date: Option<&'a str>,
}

/// The `{date}` of a run: the UTC date its run id starts with
/// (`YYYYMMDDTHHMMSSZ-xxxxxxxx`), so a later run that finishes the
/// delivery names its files as the first attempt did.
pub fn run_date(run_id: &str) -> &str {
    run_id.get(..8).unwrap_or(run_id)
}

impl FileLayout {
    /// The layout of an activation's delivery; `None` when its destination
    /// does not take files.
    pub fn of(plan: &Plan, activation: &ActivationPlan) -> Option<FileLayout> {
        let ty = catalog::lookup(&activation.destination_type).filter(|t| !t.is_api())?;
        let settings = plan
            .destinations
            .get(&activation.destination)
            .map(|d| &d.settings);
        let written = |key: &str| settings.and_then(|s| s.get(key));
        let text = |key: &str| match written(key) {
            Some(SettingPlan::Text(t)) => t.clone(),
            _ => default(ty, key).to_string(),
        };
        let flag = |key: &str| match written(key) {
            Some(SettingPlan::Bool(b)) => *b,
            _ => default(ty, key) == "true",
        };
        let char_of = |key: &str| {
            let value = text(key);
            let mut chars = value.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii() => c,
                _ => default(ty, key).chars().next().unwrap_or(','),
            }
        };
        let limit = activation
            .limits
            .max_rows_per_file
            .or(ty.limits.max_rows_per_file);
        let rows_per_file = match written("rows_per_file") {
            Some(SettingPlan::Integer(n)) if *n > 0 => *n as u64,
            _ => default(ty, "rows_per_file").parse().unwrap_or(u64::MAX),
        };
        let format = match text("format").as_str() {
            "jsonl" => Format::Jsonl,
            "parquet" => Format::Parquet,
            _ => Format::Csv,
        };
        let file_name = text("file_name");
        let file_name = if catalog::file_name::check(&file_name).is_ok() {
            file_name
        } else {
            catalog::file_name::DEFAULT_PATTERN.to_string()
        };
        Some(FileLayout {
            format,
            // Parquet compresses inside the file; check refuses gzip on it.
            gzip: text("compression") == "gzip" && format != Format::Parquet,
            csv: CsvDialect {
                delimiter: char_of("delimiter"),
                quote: char_of("quote"),
                escape: char_of("escape"),
                null: text("null"),
                header: flag("header"),
                formula_escape: flag("formula_escape"),
            },
            rows_per_file: rows_per_file.min(limit.unwrap_or(u64::MAX)).max(1),
            file_name,
            manifest: flag("manifest"),
        })
    }

    /// `csv`, `jsonl` or `parquet`, plus `.gz` when gzipped.
    pub fn ext(&self) -> String {
        let gz = if self.gzip { ".gz" } else { "" };
        format!("{}{gz}", self.format.as_str())
    }

    /// Whether each audience gets its own files (`{audience}` in the name).
    pub fn per_audience(&self) -> bool {
        self.pieces().contains(&Piece::Placeholder("audience"))
    }

    /// The name of part `part` (from 1) of a delivery: the pattern filled;
    /// from the second part on, `_N` goes before `.{ext}` (or at the end
    /// of a pattern without it).
    pub fn name(&self, values: &NameValues, part: usize) -> String {
        self.fill(values, (part > 1).then(|| part.to_string()).as_deref())
    }

    /// The name of a later part, with `{n}` for the part number.
    pub fn split_name(&self, values: &NameValues) -> String {
        self.fill(values, Some("{n}"))
    }

    fn pieces(&self) -> Vec<Piece> {
        catalog::file_name::parse(&self.file_name).unwrap_or_default()
    }

    fn fill(&self, values: &NameValues, part: Option<&str>) -> String {
        let pieces = self.pieces();
        let ext = self.ext();
        let mut out = String::new();
        let mut part_at = None;
        for (i, piece) in pieces.iter().enumerate() {
            match piece {
                Piece::Text(t) => {
                    if part_at.is_none()
                        && t.ends_with('.')
                        && pieces.get(i + 1) == Some(&Piece::Placeholder("ext"))
                    {
                        part_at = Some(out.len() + t.len() - 1);
                    }
                    out.push_str(t);
                }
                Piece::Placeholder(name) => {
                    let value = match *name {
                        "activation" => Some(values.activation),
                        "destination" => Some(values.destination),
                        "audience" => values.audience,
                        "run_id" => values.run_id,
                        "date" => values.date,
                        _ => Some(ext.as_str()),
                    };
                    match value {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&format!("{{{name}}}")),
                    }
                }
            }
        }
        if let Some(part) = part {
            out.insert_str(part_at.unwrap_or(out.len()), &format!("_{part}"));
        }
        out
    }
}

fn default(ty: &DestinationType, key: &str) -> &'static str {
    ty.setting(key).and_then(|s| s.default).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(pattern: &str, gzip: bool) -> FileLayout {
        FileLayout {
            format: Format::Csv,
            gzip,
            csv: CsvDialect {
                delimiter: ',',
                quote: '"',
                escape: '"',
                null: String::new(),
                header: true,
                formula_escape: true,
            },
            rows_per_file: 10,
            file_name: pattern.into(),
            manifest: true,
        }
    }

    #[test]
    fn names_fill_the_pattern_and_number_parts_before_the_extension() {
        let values = NameValues {
            activation: "act",
            destination: "dest",
            audience: Some("B2B.part"),
            run_id: Some("20261128T120000Z-0123abcd"),
            date: Some("20261128"),
        };
        let default = layout(catalog::file_name::DEFAULT_PATTERN, true);
        assert_eq!(
            default.name(&values, 1),
            "act_20261128T120000Z-0123abcd.csv.gz"
        );
        assert_eq!(
            default.name(&values, 2),
            "act_20261128T120000Z-0123abcd_2.csv.gz"
        );
        assert!(!default.per_audience());
        let custom = layout("{destination}-{audience}-{date}-{run_id}", false);
        assert!(custom.per_audience());
        assert_eq!(
            custom.name(&values, 3),
            "dest-B2B.part-20261128-20261128T120000Z-0123abcd_3"
        );
        let rendered = NameValues {
            audience: None,
            run_id: None,
            date: None,
            ..values
        };
        assert_eq!(
            custom.split_name(&rendered),
            "dest-{audience}-{date}-{run_id}_{n}"
        );
        assert_eq!(manifest_name("act", None), "act_{run_id}.manifest.json");
    }
}
