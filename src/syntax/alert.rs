//! `[alert.NAME]`: a condition on a run's figures (an activation, an
//! audience or a source, compared with the last run) that is reported, may
//! fail the run, and may notify a webhook or a Slack channel.
//!
//! Read here: the keys as written, `when`, `severity` and `repeat` against
//! their choices (`A0006`), `threshold` as a number, and `notify` as a table
//! of credential references read like a destination's settings. Whether the
//! target exists, the kind fits it, the threshold is needed and in range and
//! `notify` has a usable shape is `resolve`'s (`resolve::alerts`).

use toml::de::DeTable;

use super::destination::{Setting, setting_value};
use super::reader::{Cx, Sp, Table, as_number};
use crate::source::Span;

#[derive(Clone, Debug)]
pub struct Alert {
    pub name: Sp<String>,
    /// `activation.NAME`, `audience.NAME` or `source.NAME`.
    pub on: Option<Sp<String>>,
    /// One of [`WHEN`].
    pub when: Option<Sp<String>>,
    /// A ratio (0.3 = 30%), for the kinds that compare.
    pub threshold: Option<Sp<f64>>,
    /// `threshold` is written, even if not as a number (reported then):
    /// so it is not reported missing as well.
    pub threshold_written: bool,
    /// One of [`SEVERITIES`].
    pub severity: Option<Sp<String>>,
    /// One of [`REPEATS`].
    pub repeat: Option<Sp<String>>,
    pub notify: Option<Notify>,
    pub description: Option<Sp<String>>,
}

/// `notify = { ... }`: its entries as written (`webhook`, `secret`,
/// `slack`), each value read as a destination setting is, so a credential
/// reference is `{ env = ... }` or `{ file = ... }` here as everywhere.
#[derive(Clone, Debug)]
pub struct Notify {
    /// The whole table, where shape errors point.
    pub span: Span,
    pub entries: Vec<Setting>,
}

/// The conditions an alert can watch.
pub const WHEN: &[&str] = &[
    "size_drop",
    "size_growth",
    "rejected_ratio",
    "failed",
    "stale",
];
pub const SEVERITIES: &[&str] = &["error", "warning"];
pub const REPEATS: &[&str] = &["once", "every_run"];

pub fn alert(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> Alert {
    let mut t = Table::new(table, name.span, format!("alert `{}`", name.value));
    let threshold = t
        .raw("threshold")
        .and_then(|value| as_number(cx, value, "a ratio such as 0.3"));
    let notify = match t.raw("notify") {
        Some(value) => match value.get_ref() {
            toml::de::DeValue::Table(entries) => Some(Notify {
                span: cx.span(value),
                entries: entries
                    .iter()
                    .map(|(k, v)| Setting {
                        key: Sp::new(k.get_ref().to_string(), cx.span(k)),
                        value: Sp::new(setting_value(cx, v), cx.span(v)),
                    })
                    .collect(),
            }),
            _ => {
                cx.wrong_type(
                    value,
                    "a table such as `{ webhook = { env = \"URL\" }, secret = { env = \"KEY\" } }`",
                );
                None
            }
        },
        None => None,
    };
    let a = Alert {
        on: t.required_string(cx, "on"),
        when: match table.get("when") {
            None => {
                t.missing(cx, "when", WHEN.join(" | ").as_str());
                None
            }
            Some(_) => t.choice(cx, "when", WHEN),
        },
        threshold,
        threshold_written: table.contains_key("threshold"),
        severity: t.choice(cx, "severity", SEVERITIES),
        repeat: t.choice(cx, "repeat", REPEATS),
        notify,
        description: t.string(cx, "description"),
        name,
    };
    t.finish(cx);
    a
}
