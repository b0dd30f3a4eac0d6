//! `[activation.NAME]`: a dataflow from audiences to a destination.

use toml::de::DeTable;

use super::reader::{Cx, Sp, Table, as_string};

#[derive(Clone, Debug)]
pub struct Activation {
    pub name: Sp<String>,
    pub destination: Option<Sp<String>>,
    pub audiences: Vec<Sp<String>>,
    pub exclude: Vec<Sp<String>>,
    /// `daily@HH:MM`, `every Nh` or `streaming`; checked against the catalog.
    pub schedule: Option<Sp<String>>,
    pub export: Option<Sp<String>>,
    /// A CEL filter over `person` that expands account rows to their people.
    pub people: Option<Sp<String>>,
    /// Destination column -> CEL expression, in the order written.
    pub map: Vec<(Sp<String>, Sp<String>)>,
    pub description: Option<Sp<String>>,
}

pub const EXPORTS: &[&str] = &["incremental", "full"];

pub fn activation(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> Activation {
    let mut t = Table::new(table, name.span, format!("activation `{}`", name.value));
    let audiences = t.string_list(cx, "audiences");
    if table.get("audiences").is_none() {
        t.missing(cx, "audiences", "an array of audience names");
    }
    let map = t
        .table(cx, "map")
        .map(|(map, _)| {
            map.iter()
                .filter_map(|(k, v)| {
                    Some((
                        Sp::new(k.get_ref().to_string(), cx.span(k)),
                        as_string(cx, v)?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let a = Activation {
        destination: t.required_string(cx, "destination"),
        audiences,
        exclude: t.string_list(cx, "exclude"),
        schedule: t.string(cx, "schedule"),
        export: t.choice(cx, "export", EXPORTS),
        people: t.string(cx, "people"),
        map,
        description: t.string(cx, "description"),
        name,
    };
    t.finish(cx);
    a
}
