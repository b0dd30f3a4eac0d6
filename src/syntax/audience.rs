//! `[audience.NAME]` (a CEL rule or a composition) and
//! `[computed.ENTITY.NAME]` (derived attributes).

use toml::de::{DeTable, DeValue};

use super::reader::{Cx, Sp, Table, as_int, as_string, as_string_list};
use crate::diag::{Diagnostic, codes};
use crate::source::Span;

#[derive(Clone, Debug)]
pub struct Audience {
    pub name: Sp<String>,
    pub description: Option<Sp<String>>,
    /// `account` (the default) or `person`.
    pub entity: Option<Sp<String>>,
    pub rule: Option<Sp<String>>,
    pub evaluation: Option<Sp<String>>,
    pub compose: Option<Compose>,
}

#[derive(Clone, Debug)]
pub struct Compose {
    pub span: Span,
    pub from: Vec<Sp<String>>,
    pub merge: Option<Sp<String>>,
    pub exclude: Vec<Sp<String>>,
    pub exclude_rule: Option<Sp<String>>,
    pub rank: Option<Rank>,
    pub split: Option<Split>,
}

#[derive(Clone, Debug)]
pub struct Rank {
    pub span: Span,
    /// A CEL expression, usually an attribute path such as `account.engagementScore`.
    pub by: Option<Sp<String>>,
    pub order: Option<Sp<String>>,
    pub limit: Option<Sp<i64>>,
}

#[derive(Clone, Debug)]
pub enum Split {
    /// `{ percent = { test = 90, control = 10 }, seed = "..." }`
    Percent {
        span: Span,
        parts: Vec<(Sp<String>, Sp<i64>)>,
        seed: Option<Sp<String>>,
    },
    /// `{ by = "account.tier", parts = { high = ["high"] }, other = "low" }`
    ByAttribute {
        span: Span,
        by: Option<Sp<String>>,
        parts: Vec<(Sp<String>, Vec<Sp<String>>)>,
        other: Option<Sp<String>>,
    },
}

impl Split {
    pub fn span(&self) -> Span {
        match self {
            Split::Percent { span, .. } | Split::ByAttribute { span, .. } => *span,
        }
    }

    /// The part names, in the order written (first match wins for attributes).
    pub fn part_names(&self) -> Vec<&Sp<String>> {
        match self {
            Split::Percent { parts, .. } => parts.iter().map(|(n, _)| n).collect(),
            Split::ByAttribute { parts, other, .. } => {
                parts.iter().map(|(n, _)| n).chain(other.iter()).collect()
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct Computed {
    /// `account` or `person`: which entity the attribute is added to.
    pub entity: Sp<String>,
    pub name: Sp<String>,
    pub ty: Option<Sp<String>>,
    pub expr: Option<Sp<String>>,
    pub description: Option<Sp<String>>,
}

pub const ENTITIES: &[&str] = &["account", "person"];
pub const EVALUATIONS: &[&str] = &["batch", "streaming"];
pub const MERGES: &[&str] = &["union", "intersection", "exclude_overlap"];
pub const ORDERS: &[&str] = &["asc", "desc"];

pub fn audience(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> Audience {
    let mut t = Table::new(table, name.span, format!("audience `{}`", name.value));
    let compose = t
        .table(cx, "compose")
        .map(|(c, span)| compose(cx, c, span, &name));
    let rule = t.string(cx, "rule");
    if rule.is_none()
        && compose.is_none()
        && table.get("rule").is_none()
        && table.get("compose").is_none()
    {
        t.missing(cx, "rule", "a CEL expression, or a `compose` table");
    }
    let a = Audience {
        description: t.string(cx, "description"),
        entity: t.choice(cx, "entity", ENTITIES),
        rule,
        evaluation: t.choice(cx, "evaluation", EVALUATIONS),
        compose,
        name,
    };
    t.finish(cx);
    a
}

fn compose(cx: &mut Cx<'_>, table: &DeTable<'_>, span: Span, audience: &Sp<String>) -> Compose {
    let mut t = Table::new(
        table,
        span,
        format!("the `compose` block of audience `{}`", audience.value),
    );
    let from = t.string_list(cx, "from");
    match table.get("from") {
        None => t.missing(cx, "from", "an array of audience names"),
        // An empty `from` composes nothing: the audience would always be
        // empty, which is never what was meant.
        Some(value) if matches!(value.get_ref(), DeValue::Array(items) if items.is_empty()) => {
            cx.report(
                Diagnostic::new(
                    codes::spec::INVALID_COMPOSITION,
                    cx.span(value),
                    format!("audience `{}` composes from no audience", audience.value),
                )
                .label("`from` is empty")
                .help("name the audiences to compose in `from`, or write a `rule` instead"),
            );
        }
        Some(_) => {}
    }
    let c = Compose {
        span,
        from,
        merge: t.choice(cx, "merge", MERGES),
        exclude: t.string_list(cx, "exclude"),
        exclude_rule: t.string(cx, "exclude_rule"),
        rank: t
            .table(cx, "rank")
            .map(|(r, span)| rank(cx, r, span, audience)),
        split: t
            .table(cx, "split")
            .and_then(|(s, span)| split(cx, s, span, audience)),
    };
    t.finish(cx);
    c
}

fn rank(cx: &mut Cx<'_>, table: &DeTable<'_>, span: Span, audience: &Sp<String>) -> Rank {
    let mut t = Table::new(
        table,
        span,
        format!("the `rank` of audience `{}`", audience.value),
    );
    let r = Rank {
        span,
        by: t.required_string(cx, "by"),
        order: t.choice(cx, "order", ORDERS),
        limit: t.int(cx, "limit"),
    };
    t.finish(cx);
    r
}

fn split(cx: &mut Cx<'_>, table: &DeTable<'_>, span: Span, audience: &Sp<String>) -> Option<Split> {
    let mut t = Table::new(
        table,
        span,
        format!("the `split` of audience `{}`", audience.value),
    );
    let result = if table.get("percent").is_some() {
        let parts = t
            .table(cx, "percent")
            .map(|(parts, _)| {
                parts
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((Sp::new(k.get_ref().to_string(), cx.span(k)), as_int(cx, v)?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let seed = t.string(cx, "seed");
        if seed.is_none() && table.get("seed").is_none() {
            t.missing(
                cx,
                "seed",
                "a string that fixes which part each account lands in",
            );
        }
        Some(Split::Percent { span, parts, seed })
    } else if table.get("by").is_some() {
        let by = t.string(cx, "by");
        let parts = t
            .table(cx, "parts")
            .map(|(parts, _)| {
                parts
                    .iter()
                    .map(|(k, v)| {
                        let values = match v.get_ref() {
                            DeValue::String(_) => as_string(cx, v).into_iter().collect(),
                            _ => as_string_list(cx, v),
                        };
                        (Sp::new(k.get_ref().to_string(), cx.span(k)), values)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Split::ByAttribute {
            span,
            by,
            parts,
            other: t.string(cx, "other"),
        })
    } else {
        t.missing(
            cx,
            "percent",
            "`percent = { part = N, ... }` with a `seed`, or `by` with `parts`",
        );
        None
    };
    // `AUDIENCE.PART` names an audience of its own, in files and SQL.
    for part in result.iter().flat_map(Split::part_names) {
        super::names::check_part(cx, audience, part);
    }
    t.finish(cx);
    result
}

/// `[computed.ENTITY.NAME]`: the entity level holds one table per attribute.
pub fn computed(cx: &mut Cx<'_>, entity: Sp<String>, table: &DeTable<'_>) -> Vec<Computed> {
    let mut out = Vec::new();
    for (key, value) in table.iter() {
        let name = Sp::new(key.get_ref().to_string(), cx.span(key));
        super::names::check(cx, "computed", &name);
        cx.subject = format!("computed attribute `{}.{}`", entity.value, name.value);
        let DeValue::Table(def) = value.get_ref() else {
            cx.wrong_type(
                value,
                &format!("a `[computed.{}.{}]` table", entity.value, name.value),
            );
            continue;
        };
        let mut t = Table::new(
            def,
            name.span,
            format!("computed attribute `{}.{}`", entity.value, name.value),
        );
        out.push(Computed {
            entity: entity.clone(),
            ty: t.required_string(cx, "type"),
            expr: t.required_string(cx, "expr"),
            description: t.string(cx, "description"),
            name,
        });
        t.finish(cx);
    }
    out
}
