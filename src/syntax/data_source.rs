//! `[source.NAME]`: where `accord run` reads the data of a schema.

use toml::de::{DeTable, DeValue};

use super::reader::{Cx, Sp, Table};
use crate::diag::{Diagnostic, codes};
use crate::source::Span;

#[derive(Clone, Debug)]
pub struct DataSource {
    pub name: Sp<String>,
    pub schema: Option<Sp<String>>,
    /// A file, a folder or a glob, relative to the project root.
    pub path: Option<Sp<String>>,
    /// `csv`, `jsonl` or `parquet`; inferred from the extension when omitted.
    pub format: Option<Sp<String>>,
    /// A duration such as `26h` or `7d`: the newest record must be younger.
    pub max_age: Option<Sp<String>>,
    /// When several sources feed one schema, the lower value wins per field.
    pub precedence: Option<Sp<i64>>,
    pub description: Option<Sp<String>>,
}

pub const FORMATS: &[&str] = &["csv", "jsonl", "parquet"];

pub fn data_source(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> DataSource {
    let mut t = Table::new(table, name.span, format!("source `{}`", name.value));
    let path = match table.get("path") {
        // `path = { env = ... }` is refused, not read as "no path": where a
        // run reads is part of the reviewed spec.
        Some(value) if matches!(value.get_ref(), DeValue::Table(_)) => {
            t.raw("path");
            cx.report(reference_not_allowed(
                &format!("source `{}`", name.value),
                cx.span(value),
            ));
            None
        }
        _ => t.required_string(cx, "path"),
    };
    if let Some(diagnostic) = path
        .as_ref()
        .and_then(|path| path_leaves_project(&format!("source `{}`", name.value), path))
    {
        cx.report(diagnostic);
    }
    let s = DataSource {
        schema: t.required_string(cx, "schema"),
        path,
        format: t.choice(cx, "format", FORMATS),
        max_age: t
            .string(cx, "max_age")
            .filter(|age| valid_max_age(cx, &name, age)),
        precedence: t.int(cx, "precedence"),
        description: t.string(cx, "description"),
        name,
    };
    t.finish(cx);
    s
}

/// `A0006` when `max_age` is not a duration: a run could not judge the
/// source's freshness, and would call it "unknown" without a word.
fn valid_max_age(cx: &mut Cx<'_>, source: &Sp<String>, age: &Sp<String>) -> bool {
    let Err(error) = crate::duration::parse_micros(&age.value) else {
        return true;
    };
    cx.report(
        Diagnostic::new(
            codes::spec::INVALID_VALUE,
            age.span,
            format!(
                "`max_age` of source `{}` is not a duration: `{}`",
                source.value, age.value
            ),
        )
        .label(error.to_string())
        .help("write a whole number and one unit: `30m`, `26h`, `7d` or `2w` (s, m, h, d, w)"),
    );
    false
}

/// True when a local relative path has a `..` component, so it reaches
/// outside the folder it is relative to. Absolute paths and URLs
/// (`s3://...`) are not relative to the project.
pub fn climbs_out(path: &str) -> bool {
    let absolute = path.starts_with(['/', '\\'])
        || path.contains("://")
        || path.as_bytes().get(1) == Some(&b':');
    !absolute && path.split(['/', '\\']).any(|part| part == "..")
}

/// `A0011` when `path` of `what` (such as "source `crm`") climbs out of the
/// project with `..`.
pub fn path_leaves_project(what: &str, path: &Sp<String>) -> Option<Diagnostic> {
    if !climbs_out(&path.value) {
        return None;
    }
    Some(
        Diagnostic::new(
            codes::spec::PATH_LEAVES_PROJECT,
            path.span,
            format!("`path` of {what} climbs out of the project with `..`"),
        )
        .label("relative to the project folder, this leaves it")
        .help(
            "keep the files inside the project, or write an absolute path to \
             reach outside it on purpose",
        ),
    )
}

/// `A0012` for a `path` written as a reference (`{ env = ... }`) in `what`.
pub fn reference_not_allowed(what: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        codes::spec::REFERENCE_NOT_ALLOWED,
        span,
        format!("`path` of {what} cannot be a reference"),
    )
    .label("accord does not read a path from the environment")
    .help(
        "write the path here, relative to the project or absolute: where a run \
         reads and writes is part of the reviewed spec",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_relative_paths_with_dot_dot_climb_out() {
        use super::climbs_out;
        assert!(climbs_out("../data/a.csv"));
        assert!(climbs_out("data/../../a.csv"));
        assert!(climbs_out("data\\..\\..\\a.csv"));
        assert!(!climbs_out("data/a..b.csv"));
        assert!(!climbs_out("/srv/../data/a.csv"));
        assert!(!climbs_out("C:\\data\\..\\a.csv"));
        assert!(!climbs_out("s3://lake/../x"));
    }
}
