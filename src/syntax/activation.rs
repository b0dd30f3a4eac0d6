//! `[activation.NAME]`: a dataflow from audiences to a destination.

use toml::de::DeTable;

use super::reader::{Cx, Sp, Table, as_number, as_string};
use crate::diag::{Diagnostic, codes};

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
    /// The removal guard: the largest share (0 to 1) of the members
    /// delivered last time that one run may remove before it is held.
    pub max_removed_ratio: Option<Sp<f64>>,
}

pub const EXPORTS: &[&str] = &["incremental", "full"];

/// `max_removed_ratio`: a number from 0 to 1 (an integer 0 or 1 is fine).
fn ratio(cx: &mut Cx<'_>, t: &mut Table<'_, '_>, activation: &str) -> Option<Sp<f64>> {
    let value = t.raw("max_removed_ratio")?;
    let span = cx.span(value);
    let number = as_number(cx, value, "a number from 0 to 1")?.value;
    match number {
        n if (0.0..=1.0).contains(&n) => Some(Sp::new(n, span)),
        _ => {
            cx.report(
                Diagnostic::new(
                    codes::spec::INVALID_VALUE,
                    span,
                    format!(
                        "activation `{activation}`: max_removed_ratio must be a share from 0 to 1"
                    ),
                )
                .label("not between 0 and 1")
                .help(
                    "write the largest share of its members one run may remove, such as 0.2; \
                     1 turns the guard off",
                ),
            );
            None
        }
    }
}

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
        max_removed_ratio: ratio(cx, &mut t, &name.value),
        name,
    };
    t.finish(cx);
    a
}
