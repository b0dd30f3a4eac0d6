//! The audience graph and the audience rules that need the whole project:
//! computed-attribute cycles, audience reference cycles, composition rules,
//! evaluation mode, nesting depth, the naming lint and the guardrails.

use std::collections::{BTreeMap, BTreeSet};

use super::Model;
use super::expressions::{Expr, ExprSite};
use crate::closed_set::closed_set;
use crate::diag::{Diagnostic, codes};
use crate::source::Span;
use crate::syntax::{Audience, Split};

closed_set! {
    /// How an audience is evaluated.
    pub enum Evaluation {
        Batch = "batch",
        Streaming = "streaming",
    }
}

/// Derived facts about one audience.
#[derive(Clone, Debug)]
pub struct AudienceInfo {
    pub evaluation: Evaluation,
    pub composed: bool,
    /// Audiences this one reads (by base name, split parts folded to their audience).
    pub depends_on: BTreeSet<String>,
    /// Why the audience needs batch, if it does: the span and a reason.
    pub needs_batch: Option<(Span, String)>,
}

/// The audience an `X.part` reference belongs to.
pub fn base_name(reference: &str) -> &str {
    reference
        .rsplit_once('.')
        .map_or(reference, |(base, _)| base)
}

pub fn check(
    model: &Model,
    exprs: &BTreeMap<ExprSite, Expr>,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, AudienceInfo> {
    let computed_batch = check_computed(model, exprs, diags);
    let mut infos = BTreeMap::new();
    for (name, index) in model.audiences.iter() {
        let audience = &model.syntax.audiences[index];
        infos.insert(
            name.to_string(),
            audience_info(model, audience, exprs, &computed_batch, diags),
        );
    }
    check_cycles_and_depth(model, &infos, diags);
    check_guardrails(model, &infos, diags);
    infos
}

/// Computed attributes: dependency cycles, and which ones need batch (they
/// read collections, links or `now`), directly or through another attribute.
fn check_computed(
    model: &Model,
    exprs: &BTreeMap<ExprSite, Expr>,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, (Span, String)> {
    let roots = &model.roots;
    let key_of = |schema: &str, field: &str| -> Option<String> {
        let entity = if Some(schema) == roots.account.as_deref() {
            "account"
        } else if Some(schema) == roots.person.as_deref() {
            "person"
        } else {
            return None;
        };
        let key = format!("{entity}.{field}");
        model.computed.contains(&key).then_some(key)
    };
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, _) in model.computed.iter() {
        let deps = exprs
            .get(&ExprSite::Computed(name.to_string()))
            .map(|e| {
                e.checked
                    .reads
                    .iter()
                    .filter_map(|r| key_of(&r.schema, &r.field))
                    .collect()
            })
            .unwrap_or_default();
        edges.insert(name.to_string(), deps);
    }
    for cycle in find_cycles(&edges) {
        let first = &cycle[0];
        let Some(index) = model.computed.get(first) else {
            continue;
        };
        let span = model.syntax.computed[index].name.span;
        diags.push(
            Diagnostic::new(
                codes::spec::COMPUTED_CYCLE,
                span,
                format!(
                    "computed attribute `{first}` depends on itself: {}",
                    quoted_chain(&cycle)
                ),
            )
            .label("this attribute depends on itself")
            .help("break the cycle: compute one of these from source fields only"),
        );
    }
    // Batch need, propagated through dependencies in a fixed-point loop
    // (cycles were reported above and simply stop propagating).
    let mut batch: BTreeMap<String, (Span, String)> = BTreeMap::new();
    for (name, _) in model.computed.iter() {
        if let Some(expr) = exprs.get(&ExprSite::Computed(name.to_string()))
            && let Some((range, reason)) = &expr.checked.needs_batch
        {
            batch.insert(
                name.to_string(),
                (expr.span_of(range.clone()), reason.clone()),
            );
        }
    }
    loop {
        let mut changed = false;
        for (name, deps) in &edges {
            if batch.contains_key(name) {
                continue;
            }
            if let Some(dep) = deps.iter().find(|d| batch.contains_key(*d)) {
                let (span, _) = batch[dep].clone();
                batch.insert(
                    name.clone(),
                    (
                        span,
                        format!("reads the computed attribute `{dep}`, which needs batch"),
                    ),
                );
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    batch
}

fn audience_info(
    model: &Model,
    audience: &Audience,
    exprs: &BTreeMap<ExprSite, Expr>,
    computed_batch: &BTreeMap<String, (Span, String)>,
    diags: &mut Vec<Diagnostic>,
) -> AudienceInfo {
    let name = &audience.name.value;
    let mut depends_on = BTreeSet::new();
    let mut needs_batch = None;
    if let Some(rule) = exprs.get(&ExprSite::AudienceRule(name.clone())) {
        depends_on.extend(
            rule.checked
                .audiences
                .iter()
                .map(|(a, _)| base_name(a).to_string()),
        );
        needs_batch = rule
            .checked
            .needs_batch
            .as_ref()
            .map(|(range, reason)| (rule.span_of(range.clone()), reason.clone()));
        if needs_batch.is_none() {
            let roots = &model.roots;
            for read in &rule.checked.reads {
                let entity = if Some(read.schema.as_str()) == roots.account.as_deref() {
                    "account"
                } else {
                    "person"
                };
                if let Some((_, reason)) = computed_batch.get(&format!("{entity}.{}", read.field)) {
                    needs_batch = Some((
                        rule.span_of(read.range.clone()),
                        format!("reads `{entity}.{}`, which {reason}", read.field),
                    ));
                    break;
                }
            }
        }
    }
    if audience.rule.is_some()
        && audience.compose.is_some()
        && let Some(compose) = &audience.compose
    {
        diags.push(
            Diagnostic::new(codes::spec::RULE_AND_COMPOSE, compose.span, format!("audience `{name}` has both a `rule` and a `compose`"))
                .label("composition here")
                .with_secondary(audience.rule.as_ref().map_or(audience.name.span, |r| r.span), "rule here")
                .help("define the audience by one of them; a rule can become `compose.exclude_rule` or a separate audience"),
        );
    }
    let composed = audience.compose.is_some();
    if let Some(compose) = &audience.compose {
        needs_batch = Some((
            compose.span,
            "is a composition, and compositions are evaluated in batch".to_string(),
        ));
        for reference in compose.from.iter().chain(&compose.exclude) {
            let base = base_name(&reference.value);
            depends_on.insert(base.to_string());
            if let Some(i) = model.audiences.get(base)
                && let Some(inner) = &model.syntax.audiences[i].compose
            {
                diags.push(
                    Diagnostic::new(codes::spec::NESTED_COMPOSITION, reference.span, format!("audience `{name}` composes from `{}`, which is itself a composition", reference.value))
                        .label("a composition cannot feed another composition")
                        .with_secondary(inner.span, "composed here")
                        .help("compose from rule audiences directly, or turn the inner composition into a rule with `in_audience`"),
                );
            }
        }
        check_composition(audience, compose, diags);
        check_split_values(model, audience, exprs, diags);
    }
    let asked_streaming = audience
        .evaluation
        .as_ref()
        .is_some_and(|e| e.as_str() == "streaming");
    let evaluation = match (&needs_batch, asked_streaming) {
        (Some((span, reason)), true) => {
            let eval_span = audience
                .evaluation
                .as_ref()
                .map_or(audience.name.span, |e| e.span);
            diags.push(
                Diagnostic::new(codes::spec::NEEDS_BATCH, *span, format!("audience `{name}` cannot be evaluated in streaming mode"))
                    .label(format!("this {reason}"))
                    .with_secondary(eval_span, "streaming asked for here")
                    .help("use `evaluation = \"batch\"` (or omit it), or rewrite the rule over the account's own attributes"),
            );
            Evaluation::Batch
        }
        (None, true) => Evaluation::Streaming,
        _ => match (
            &needs_batch,
            audience.evaluation.as_ref().map(|e| e.as_str()),
        ) {
            (None, None) => Evaluation::Streaming,
            _ => Evaluation::Batch,
        },
    };
    if let Some((pattern, pattern_span)) = &model.settings.audience_naming
        && !pattern.is_match(name)
    {
        diags.push(
            Diagnostic::new(codes::spec::AUDIENCE_NAMING, audience.name.span, format!("audience `{name}` does not follow the naming convention"))
                .label(format!("expected a name matching `{}`", pattern.as_str()))
                .with_secondary(*pattern_span, "convention set here")
                .help("rename the audience (and its references), or change `audience_naming` in accord.toml"),
        );
    }
    AudienceInfo {
        evaluation,
        composed,
        depends_on,
        needs_batch,
    }
}

fn check_composition(
    audience: &Audience,
    compose: &crate::syntax::Compose,
    diags: &mut Vec<Diagnostic>,
) {
    let name = &audience.name.value;
    let invalid = |span: Span, message: String, label: &str, help: &str| {
        Diagnostic::new(
            codes::spec::INVALID_COMPOSITION,
            span,
            format!("audience `{name}`: {message}"),
        )
        .label(label.to_string())
        .help(help.to_string())
    };
    if let (Some(rank), Some(split)) = (&compose.rank, &compose.split) {
        diags.push(
            invalid(split.span(), "its composition has both `rank` and `split`".into(), "split here", "the last block of a composition is rank or split, not both; split a ranked audience in a second audience")
                .with_secondary(rank.span, "rank here"),
        );
    }
    if let Some(merge) = &compose.merge
        && merge.as_str() != "union"
        && compose.from.len() < 2
    {
        diags.push(invalid(
            merge.span,
            format!("`{}` needs at least two audiences in `from`", merge.value),
            "nothing to combine",
            "add audiences to `from`, or use `union`",
        ));
    }
    if let Some(limit) = compose.rank.as_ref().and_then(|r| r.limit.as_ref())
        && limit.value < 1
    {
        diags.push(invalid(
            limit.span,
            "a rank limit must be at least 1".into(),
            "keeps no account",
            "use a positive limit, or remove it to rank without a limit",
        ));
    }
    match &compose.split {
        Some(Split::Percent { span, parts, .. }) => {
            for (part, percent) in parts {
                if percent.value <= 0 || percent.value > 100 {
                    diags.push(invalid(
                        percent.span,
                        format!("part `{}` has {}%", part.value, percent.value),
                        "a part's share is between 1 and 100",
                        "give every part a positive percentage",
                    ));
                }
            }
            let total: i64 = parts.iter().map(|(_, p)| p.value).sum();
            if parts.is_empty() {
                diags.push(invalid(
                    *span,
                    "a percentage split has no parts".into(),
                    "no parts",
                    "write `percent = { test = 90, control = 10 }`",
                ));
            } else if total != 100 {
                diags.push(invalid(
                    *span,
                    format!("split percentages sum to {total}, not 100"),
                    "every account must land in exactly one part",
                    "adjust the percentages so they sum to 100",
                ));
            }
        }
        Some(Split::ByAttribute {
            span, parts, other, ..
        }) => {
            if parts.is_empty() && other.is_none() {
                diags.push(invalid(
                    *span,
                    "an attribute split has no parts".into(),
                    "no parts",
                    "write `parts = { high = [\"high\"] }` and optionally `other = \"rest\"`",
                ));
            }
            let mut names = BTreeSet::new();
            for part in compose.split.iter().flat_map(|s| s.part_names()) {
                if !names.insert(part.value.as_str()) {
                    diags.push(invalid(
                        part.span,
                        format!("split part `{}` is named twice", part.value),
                        "duplicate part name",
                        "give every part its own name",
                    ));
                }
            }
        }
        None => {}
    }
}

/// A split by a closed-domain attribute: each part's values must be in the
/// domain, or the part can never receive an account.
fn check_split_values(
    model: &Model,
    audience: &Audience,
    exprs: &BTreeMap<ExprSite, Expr>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(Split::ByAttribute { parts, .. }) =
        audience.compose.as_ref().and_then(|c| c.split.as_ref())
    else {
        return;
    };
    let Some(by) = exprs.get(&ExprSite::SplitBy(audience.name.value.clone())) else {
        return;
    };
    let [read] = by.checked.reads.as_slice() else {
        return;
    };
    let Some(domain) = model
        .schema_info
        .get(&read.schema)
        .and_then(|s| s.fields.get(&read.field))
        .and_then(|f| f.values.as_ref())
    else {
        return;
    };
    for value in parts.iter().flat_map(|(_, values)| values) {
        if domain.contains(&value.value) {
            continue;
        }
        diags.push(
            Diagnostic::new(
                codes::cel::VALUE_OUTSIDE_DOMAIN,
                value.span,
                format!(
                    "the `split` of audience `{}`: `{}` is not a value of `{}.{}`",
                    audience.name.value, value.value, read.schema, read.field
                ),
            )
            .label("no account can have this value, so this part stays empty")
            .suggest(
                &value.value,
                domain.iter().map(String::as_str),
                format!("values of `{}`: {}", read.field, domain.join(", ")),
            ),
        );
    }
}

fn check_cycles_and_depth(
    model: &Model,
    infos: &BTreeMap<String, AudienceInfo>,
    diags: &mut Vec<Diagnostic>,
) {
    let edges: BTreeMap<String, Vec<String>> = infos
        .iter()
        .map(|(n, i)| {
            (
                n.clone(),
                i.depends_on
                    .iter()
                    .filter(|d| infos.contains_key(*d))
                    .cloned()
                    .collect(),
            )
        })
        .collect();
    let cycles = find_cycles(&edges);
    let in_cycle: BTreeSet<&String> = cycles.iter().flatten().collect();
    for cycle in &cycles {
        let Some(index) = model.audiences.get(&cycle[0]) else {
            continue;
        };
        diags.push(
            Diagnostic::new(
                codes::spec::AUDIENCE_CYCLE,
                model.syntax.audiences[index].name.span,
                format!(
                    "audience `{}` depends on itself: {}",
                    cycle[0],
                    quoted_chain(cycle)
                ),
            )
            .label("this audience depends on itself")
            .help("break the cycle: one of these audiences must not reference the others"),
        );
    }
    // Depth: the longest reference chain starting at each audience (audiences in
    // cycles are skipped; they are already errors).
    let mut depth: BTreeMap<&str, (u64, Vec<String>)> = BTreeMap::new();
    fn longest<'a>(
        name: &'a str,
        edges: &'a BTreeMap<String, Vec<String>>,
        skip: &BTreeSet<&String>,
        memo: &mut BTreeMap<&'a str, (u64, Vec<String>)>,
    ) -> (u64, Vec<String>) {
        if let Some(found) = memo.get(name) {
            return found.clone();
        }
        let mut best = (1, vec![name.to_string()]);
        for dep in edges.get(name).into_iter().flatten() {
            if skip.contains(dep) {
                continue;
            }
            let (d, mut path) = longest(dep, edges, skip, memo);
            if d + 1 > best.0 {
                path.insert(0, name.to_string());
                best = (d + 1, path);
            }
        }
        memo.insert(name, best.clone());
        best
    }
    let max = model.settings.guardrails.max_nesting_depth;
    for name in edges.keys() {
        if in_cycle.contains(name) {
            continue;
        }
        let (d, path) = longest(name, &edges, &in_cycle, &mut depth);
        // Depth counts nesting levels: an audience that references none has depth 0.
        if d - 1 > max {
            let Some(index) = model.audiences.get(name) else {
                continue;
            };
            let mut diag = Diagnostic::new(
                codes::plan::NESTING_TOO_DEEP,
                model.syntax.audiences[index].name.span,
                format!(
                    "audience `{name}` nests {} levels deep, above the limit of {max}",
                    d - 1
                ),
            )
            .label(format!("chain: {}", path.join(" -> ")))
            .help("reference base audiences directly instead of through chains");
            if let Some(span) = model.settings.guardrails.spans.get("max_nesting_depth") {
                diag = diag.with_secondary(*span, "limit set here");
            }
            diags.push(diag);
        }
    }
}

fn check_guardrails(
    model: &Model,
    infos: &BTreeMap<String, AudienceInfo>,
    diags: &mut Vec<Diagnostic>,
) {
    let g = &model.settings.guardrails;
    let streaming = infos
        .values()
        .filter(|i| i.evaluation == Evaluation::Streaming)
        .count() as u64;
    let schema_fields: u64 = model
        .schema_info
        .values()
        .map(|s| s.fields.len() as u64)
        .sum();
    let checks = [
        (
            codes::plan::TOO_MANY_AUDIENCES,
            "audiences",
            model.audiences.len() as u64,
            g.max_audiences,
            "max_audiences",
            model
                .syntax
                .audiences
                .get(g.max_audiences as usize)
                .map(|a| a.name.span),
        ),
        (
            codes::plan::TOO_MANY_AUDIENCES,
            "streaming audiences",
            streaming,
            g.max_streaming_audiences,
            "max_streaming_audiences",
            None,
        ),
        (
            codes::plan::TOO_MANY_DEFINITIONS,
            "destinations",
            model.destinations.len() as u64,
            g.max_destinations,
            "max_destinations",
            model
                .syntax
                .destinations
                .get(g.max_destinations as usize)
                .map(|d| d.name.span),
        ),
        (
            codes::plan::TOO_MANY_DEFINITIONS,
            "activations",
            model.activations.len() as u64,
            g.max_activations,
            "max_activations",
            model
                .syntax
                .activations
                .get(g.max_activations as usize)
                .map(|a| a.name.span),
        ),
        (
            codes::plan::TOO_MANY_DEFINITIONS,
            "schema fields",
            schema_fields,
            g.max_fields,
            "max_fields",
            None,
        ),
    ];
    for (code, what, count, max, key, first_over) in checks {
        if count <= max {
            continue;
        }
        let anchor = g.spans.get(key).copied();
        let span = first_over.or(anchor).unwrap_or(model.settings.project_span);
        let mut d = Diagnostic::new(
            code,
            span,
            format!("the project has {count} {what}, above the guardrail of {max}"),
        )
        .label(if first_over.is_some() {
            "the first definition over the limit"
        } else {
            "over the limit"
        })
        .help(format!(
            "remove {what}, or raise `{key}` in `[guardrails]` if your platform allows it"
        ));
        if let (Some(a), true) = (anchor, first_over.is_some()) {
            d = d.with_secondary(a, "limit set here");
        }
        diags.push(d);
    }
}

/// Every elementary cycle found by a depth-first search, each reported once,
/// starting at its smallest name, with the first name repeated at the end.
pub fn find_cycles(edges: &BTreeMap<String, Vec<String>>) -> Vec<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        node: &str,
        edges: &BTreeMap<String, Vec<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
        out: &mut BTreeSet<Vec<String>>,
    ) {
        marks.insert(node.to_string(), Mark::Visiting);
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            match marks.get(next) {
                Some(Mark::Visiting) => {
                    let start = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle: Vec<String> = stack[start..].to_vec();
                    // Rotate to start at the smallest name, so each cycle has one spelling.
                    let min = cycle
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, n)| *n)
                        .map_or(0, |(i, _)| i);
                    cycle.rotate_left(min);
                    cycle.push(cycle[0].clone());
                    out.insert(cycle);
                }
                Some(Mark::Done) => {}
                None => visit(next, edges, marks, stack, out),
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
    }
    let mut marks = BTreeMap::new();
    let mut out = BTreeSet::new();
    for node in edges.keys() {
        if !marks.contains_key(node) {
            visit(node, edges, &mut marks, &mut Vec::new(), &mut out);
        }
    }
    out.into_iter().collect()
}

/// `a` -> `b` -> `a`, for cycle messages.
fn quoted_chain(cycle: &[String]) -> String {
    cycle
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(" -> ")
}
