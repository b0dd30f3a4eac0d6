//! Rendering diagnostics: human (miette), json, sarif and github annotations.
//!
//! Every format is a pure function from diagnostics and sources to a string,
//! so tests snapshot exactly what users see.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use serde_json::json;

use crate::diag::{Diagnostic, Severity};
use crate::source::{SourceSet, Span};

/// Options for the human format.
#[derive(Clone, Copy, Debug)]
pub struct HumanStyle {
    pub color: bool,
    pub width: usize,
}

/// A diagnostic located in its file, ready for miette.
struct Located<'a> {
    diagnostic: &'a Diagnostic,
    source: NamedSource<String>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
}

impl fmt::Debug for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Located<'_> {}

impl miette::Diagnostic for Located<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diagnostic.code.as_str()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
}

fn source_span(span: Span) -> SourceSpan {
    SourceSpan::new(
        (span.start as usize).into(),
        (span.end - span.start) as usize,
    )
}

/// `path:line:column` of a span's start.
pub fn location(sources: &SourceSet, span: Span) -> String {
    let file = sources.file(span.source);
    let (line, column) = file.line_col(span.start as usize);
    format!("{}:{line}:{column}", file.path)
}

/// Spans that hold a secret written as a literal (`A0110`): no format may
/// print what they hold, and no excerpt may show it, whichever diagnostic
/// the excerpt is for.
fn secret_spans(diags: &[Diagnostic]) -> Vec<Span> {
    diags
        .iter()
        .filter(|d| d.code == crate::diag::codes::spec::LITERAL_CREDENTIAL)
        .map(|d| d.primary.span)
        .collect()
}

/// The text of a file with every secret in it masked by `*`, byte for byte,
/// so every span and line still points where it did. A quoted string keeps
/// its quotes, so the excerpt still reads as the TOML it was.
fn redacted_text(sources: &SourceSet, id: crate::source::SourceId, secrets: &[Span]) -> String {
    let text = &sources.file(id).text;
    let mut bytes = text.as_bytes().to_vec();
    for span in secrets.iter().filter(|s| s.source == id) {
        let range = span.range();
        let Some(value) = text.get(range.clone()) else {
            continue;
        };
        let quote = ["\"\"\"", "'''", "\"", "'"]
            .into_iter()
            .find(|q| value.len() >= 2 * q.len() && value.starts_with(q) && value.ends_with(q))
            .map_or(0, str::len);
        for b in &mut bytes[range.start + quote..range.end - quote] {
            if *b != b'\n' && *b != b'\r' {
                *b = b'*';
            }
        }
    }
    // Whole characters were replaced by ASCII, so this cannot fail; the
    // fallback still keeps the secret out if it did.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

pub fn human(diags: &[Diagnostic], sources: &SourceSet, style: HumanStyle) -> String {
    let secrets = secret_spans(diags);
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_links(false);
    let mut out = String::new();
    for d in diags {
        let file = sources.file(d.primary.span.source);
        let primary_label = (!d.primary.message.is_empty()).then(|| d.primary.message.clone());
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            primary_label,
            source_span(d.primary.span),
        )];
        // miette shows one file per report: labels elsewhere become notes.
        let mut notes = Vec::new();
        for secondary in &d.secondary {
            if secondary.span.source == d.primary.span.source {
                labels.push(LabeledSpan::new_with_span(
                    Some(secondary.message.clone()),
                    source_span(secondary.span),
                ));
            } else {
                notes.push(format!(
                    "{}: {}",
                    location(sources, secondary.span),
                    secondary.message
                ));
            }
        }
        let mut help = d.help.clone();
        if !notes.is_empty() {
            let joined = notes.join("\n");
            help = Some(match help {
                Some(h) => format!("{h}\nsee also: {joined}"),
                None => format!("see also: {joined}"),
            });
        }
        let located = Located {
            diagnostic: d,
            source: NamedSource::new(
                &file.path,
                redacted_text(sources, d.primary.span.source, &secrets),
            ),
            labels,
            help,
        };
        let _ = handler.render_report(&mut out, &located);
        out.push('\n');
    }
    out
}

/// A one-line summary such as "2 errors, 1 warning".
pub fn summary(diags: &[Diagnostic]) -> String {
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

fn json_value(d: &Diagnostic, sources: &SourceSet) -> serde_json::Value {
    let file = sources.file(d.primary.span.source);
    let (line, column) = file.line_col(d.primary.span.start as usize);
    let (end_line, end_column) = file.line_col(d.primary.span.end as usize);
    json!({
        "code": d.code.as_str(),
        "severity": d.severity.as_str(),
        "message": d.message,
        "file": file.path,
        "line": line,
        "column": column,
        "end_line": end_line,
        "end_column": end_column,
        "byte_start": d.primary.span.start,
        "byte_end": d.primary.span.end,
        "label": d.primary.message,
        "help": d.help,
        "related": d.secondary.iter().map(|s| {
            let f = sources.file(s.span.source);
            let (line, column) = f.line_col(s.span.start as usize);
            json!({"file": f.path, "line": line, "column": column, "byte_start": s.span.start, "byte_end": s.span.end, "message": s.message})
        }).collect::<Vec<_>>(),
    })
}

/// One JSON object per line (JSON Lines), so tools can stream it.
pub fn json(diags: &[Diagnostic], sources: &SourceSet) -> String {
    diags
        .iter()
        .map(|d| json_value(d, sources).to_string() + "\n")
        .collect()
}

/// SARIF 2.1.0, for code scanning.
pub fn sarif(diags: &[Diagnostic], sources: &SourceSet) -> String {
    let mut rule_ids: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    rule_ids.sort_unstable();
    rule_ids.dedup();
    let rules: Vec<_> = rule_ids
        .iter()
        .map(|code| {
            let info = crate::diag::codes::lookup(code);
            json!({
                "id": code,
                "name": info.map(|i| i.name).unwrap_or_default(),
                "shortDescription": {"text": info.map(|i| i.title).unwrap_or_default()},
                "fullDescription": {"text": info.map(|i| i.explain).unwrap_or_default()},
                "help": {"text": format!("run `accord explain {code}`")},
            })
        })
        .collect();
    let region = |span: Span| {
        let file = sources.file(span.source);
        let (start_line, start_column) = file.line_col(span.start as usize);
        let (end_line, end_column) = file.line_col(span.end as usize);
        json!({
            "artifactLocation": {"uri": file.path},
            "region": {"startLine": start_line, "startColumn": start_column, "endLine": end_line, "endColumn": end_column,
                       "byteOffset": span.start, "byteLength": span.end - span.start},
        })
    };
    let results: Vec<_> = diags
        .iter()
        .map(|d| {
            let mut message = with_label(d);
            if let Some(help) = &d.help {
                message = format!("{message}\nhelp: {help}");
            }
            json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": rule_ids.iter().position(|r| *r == d.code.as_str()).unwrap_or(0),
                "level": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": {"text": message},
                "locations": [{"physicalLocation": region(d.primary.span)}],
                "relatedLocations": d.secondary.iter().enumerate().map(|(i, s)| json!({
                    "id": i, "physicalLocation": region(s.span), "message": {"text": s.message}
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "accord", "version": env!("CARGO_PKG_VERSION"), "informationUri": "https://github.com/accord-dev/accord", "rules": rules}},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).unwrap_or_default() + "\n"
}

/// GitHub Actions workflow commands: `::error file=...,line=...::message`.
pub fn github(diags: &[Diagnostic], sources: &SourceSet) -> String {
    let mut out = String::new();
    for d in diags {
        let file = sources.file(d.primary.span.source);
        let (line, column) = file.line_col(d.primary.span.start as usize);
        let (end_line, end_column) = file.line_col(d.primary.span.end as usize);
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = format!("{} {}", d.code.as_str(), with_label(d));
        if let Some(help) = &d.help {
            message.push_str(&format!("\nhelp: {help}"));
        }
        out.push_str(&format!(
            "::{level} file={},line={line},col={column},endLine={end_line},endColumn={end_column},title={}::{}\n",
            escape_property(&file.path),
            escape_property(d.code.as_str()),
            escape_data(&message)
        ));
    }
    out
}

/// The message and the primary label, for formats that show no source
/// snippet (the label often carries the specific reason).
fn with_label(d: &Diagnostic) -> String {
    if d.primary.message.is_empty() {
        d.message.clone()
    } else {
        format!("{}: {}", d.message, d.primary.message)
    }
}

/// Workflow command escaping, as the Actions toolkit does it.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}
