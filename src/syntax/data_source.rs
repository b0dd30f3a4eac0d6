//! `[source.NAME]`: where `accord run` reads the data of a schema.

use toml::de::DeTable;

use super::reader::{Cx, Sp, Table};

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
    let s = DataSource {
        schema: t.required_string(cx, "schema"),
        path: t.required_string(cx, "path"),
        format: t.choice(cx, "format", FORMATS),
        max_age: t.string(cx, "max_age"),
        precedence: t.int(cx, "precedence"),
        description: t.string(cx, "description"),
        name,
    };
    t.finish(cx);
    s
}
