//! The file settings of file destinations (filesystem, s3, azure_blob,
//! gcs, sftp): every setting the catalog documents is honoured by the run
//! or refused here, never silently ignored.
//!
//! Input: a destination and its catalog type (`check`), or the model with
//! its activations (`check_name_lengths`: a name's length depends on the
//! activation and audience names it is filled with). Output: diagnostics.
//! Pure.

use super::Model;
use crate::catalog::{self, DestinationType, file_name};
use crate::diag::{Diagnostic, codes};
use crate::syntax::{Destination, Setting, SettingValue};

/// Settings only CSV files have.
const CSV_ONLY: &[&str] = &[
    "delimiter",
    "quote",
    "escape",
    "null",
    "header",
    "formula_escape",
];

pub fn check(destination: &Destination, ty: &DestinationType, diags: &mut Vec<Diagnostic>) {
    let name = &destination.name.value;
    let setting = |key: &str| destination.settings.iter().find(|s| s.key.value == key);
    let text = |key: &str| match setting(key).map(|s| &s.value.value) {
        Some(SettingValue::String(t)) => Some(t.as_str()),
        _ => None,
    };
    if let Some(s) = setting("file_name")
        && let SettingValue::String(pattern) = &s.value.value
        && let Err(problem) = file_name::check(pattern)
    {
        diags.push(
            Diagnostic::new(
                codes::spec::INVALID_FILE_NAME,
                s.value.span,
                format!("destination `{name}`: `file_name` cannot name the files of every run"),
            )
            .label(problem.problem)
            .help(problem.help),
        );
    }
    if let Some(s) = setting("rows_per_file")
        && let SettingValue::Integer(n) = s.value.value
    {
        let limit = ty.limits.max_rows_per_file;
        let problem = if n < 1 {
            Some(format!("{n} rows per file would write no rows"))
        } else {
            limit
                .filter(|&limit| n as u64 > limit)
                .map(|limit| format!("{n} is above the `{}` limit of {limit}", ty.name))
        };
        if let Some(problem) = problem {
            diags.push(
                Diagnostic::new(
                    codes::spec::ROWS_PER_FILE_OUT_OF_RANGE,
                    s.value.span,
                    format!("destination `{name}`: `rows_per_file` is out of range"),
                )
                .label(problem)
                .help(match limit {
                    Some(limit) => format!(
                        "write a number from 1 to {limit}, or leave `rows_per_file` out for {limit}"
                    ),
                    None => "write a number from 1".to_string(),
                }),
            );
        }
    }
    let format = text("format").unwrap_or("csv");
    if format == "csv" {
        check_csv_characters(destination, diags);
    } else {
        for s in CSV_ONLY.iter().filter_map(|k| setting(k)) {
            diags.push(
                Diagnostic::new(
                    codes::spec::SETTING_NOT_FOR_FORMAT,
                    s.key.span,
                    format!(
                        "destination `{name}`: `{}` is a csv setting, and the files are {format}",
                        s.key.value
                    ),
                )
                .label(format!("{format} files have no `{}`", s.key.value))
                .help(format!(
                    "remove `{}`, or write `format = \"csv\"`",
                    s.key.value
                )),
            );
        }
    }
    if format == "parquet"
        && let Some(s) = setting("compression")
        && text("compression") == Some("gzip")
    {
        diags.push(
            Diagnostic::new(
                codes::spec::SETTING_NOT_FOR_FORMAT,
                s.value.span,
                format!("destination `{name}`: parquet files are not gzipped"),
            )
            .label("parquet compresses its column chunks inside the file")
            .help("remove `compression`: a gzipped parquet file is one most readers cannot open"),
        );
    }
    if ty.name != "filesystem"
        && let Some(s) = setting("manifest")
        && s.value.value == SettingValue::Boolean(false)
    {
        diags.push(
            Diagnostic::new(
                codes::spec::REMOTE_WITHOUT_MANIFEST,
                s.value.span,
                format!("destination `{name}`: `{}` files are delivered without a manifest", ty.name),
            )
            .label("a reader cannot tell a complete delivery from one still being written")
            .help("leave `manifest` out (it defaults to true): the manifest is written last, so a reader that sees it sees every file it lists"),
        );
    }
}

/// `delimiter`, `quote` and `escape`: one ASCII character each (a tab
/// for the delimiter too), the delimiter neither the quote nor the escape.
fn check_csv_characters(destination: &Destination, diags: &mut Vec<Diagnostic>) {
    let name = &destination.name.value;
    let mut chars: Vec<(&str, char, &Setting)> = Vec::new();
    for key in ["delimiter", "quote", "escape"] {
        let Some(s) = destination.settings.iter().find(|s| s.key.value == key) else {
            continue;
        };
        let SettingValue::String(text) = &s.value.value else {
            continue;
        };
        let mut it = text.chars();
        match (it.next(), it.next()) {
            (Some(c), None) if c.is_ascii_graphic() || c == ' ' || (c == '\t' && key == "delimiter") => {
                chars.push((key, c, s));
            }
            _ => diags.push(
                Diagnostic::new(
                    codes::spec::INVALID_CSV_CHARACTER,
                    s.value.span,
                    format!("destination `{name}`: `{key}` must be one ASCII character"),
                )
                .label(format!("{:?} is {} characters", text, text.chars().count()))
                .help(match key {
                    "delimiter" => "write one character, e.g. `delimiter = \";\"` or `delimiter = \"\\t\"`",
                    "quote" => "write one character, e.g. `quote = '\"'` (the default)",
                    _ => "write `escape = '\"'` (quotes are doubled, the default) or `escape = \"\\\\\"`",
                }),
            ),
        }
    }
    let find = |key: &str| chars.iter().find(|(k, _, _)| *k == key);
    let effective = |key: &str, default: char| find(key).map_or(default, |(_, c, _)| *c);
    let Some((_, delimiter, at)) = find("delimiter") else {
        return;
    };
    let quote = effective("quote", '"');
    let escape = effective("escape", quote);
    for (other, c) in [("quote", quote), ("escape", escape)] {
        if *delimiter == c && (other == "quote" || escape != quote) {
            diags.push(
                Diagnostic::new(
                    codes::spec::INVALID_CSV_CHARACTER,
                    at.value.span,
                    format!("destination `{name}`: the delimiter is also the {other} character"),
                )
                .label(format!("{c:?} is the {other} too"))
                .help("a reader could not tell where a cell ends: choose different characters"),
            );
        }
    }
}

/// Names filled with an activation's and its audiences' names must stay
/// within the type's file name limit, and so must its manifest's.
pub fn check_name_lengths(model: &Model, diags: &mut Vec<Diagnostic>) {
    for activation in &model.syntax.activations {
        let Some(destination) = activation.destination.as_ref().and_then(|d| {
            model
                .syntax
                .destinations
                .iter()
                .find(|x| x.name.value == d.value)
        }) else {
            continue;
        };
        let Some(ty) = destination
            .ty
            .as_ref()
            .and_then(|t| catalog::lookup(&t.value))
            .filter(|t| !t.is_api())
        else {
            continue;
        };
        let Some(limit) = ty.limits.max_file_name_len.map(|l| l as usize) else {
            continue;
        };
        let written = destination
            .settings
            .iter()
            .find(|s| s.key.value == "file_name");
        let pattern = match written.map(|s| &s.value.value) {
            Some(SettingValue::String(p)) => p.as_str(),
            Some(_) => continue,
            None => file_name::DEFAULT_PATTERN,
        };
        // An unusable pattern is reported by `check` already.
        let Ok(pieces) = file_name::check(pattern) else {
            continue;
        };
        let audience = activation
            .audiences
            .iter()
            .map(|a| a.value.as_str())
            .max_by_key(|a| a.chars().count())
            .unwrap_or("");
        let act = &activation.name.value;
        let longest = file_name::longest(&pieces, act, audience, &destination.name.value);
        let manifest = file_name::manifest_name(act, Some(&"0".repeat(file_name::RUN_ID_LEN)));
        let (length, span, owner, what) = if longest > limit {
            match written {
                Some(s) => (
                    longest,
                    s.value.span,
                    format!("destination `{}`", destination.name.value),
                    format!("a data file of activation `{act}`"),
                ),
                None => (
                    longest,
                    activation.name.span,
                    format!("activation `{act}`"),
                    "a data file".to_string(),
                ),
            }
        } else if manifest.chars().count() > limit {
            (
                manifest.chars().count(),
                activation.name.span,
                format!("activation `{act}`"),
                "the manifest".to_string(),
            )
        } else {
            continue;
        };
        diags.push(
            Diagnostic::new(
                codes::spec::INVALID_FILE_NAME,
                span,
                format!(
                    "{owner}: the name of {what} can reach {length} characters, above the {limit} `{}` allows",
                    ty.name
                ),
            )
            .label(format!(
                "`{pattern}` with the longest names of `{act}`, a run id, the longest extension and a part number"
            ))
            .help("shorten the pattern, or the activation and audience names it holds"),
        );
    }
}
