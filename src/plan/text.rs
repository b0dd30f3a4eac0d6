//! The review text of a plan: what `accord plan` prints.
//!
//! Input: a [`Plan`]. Output: text made for review in a git diff: one fact
//! per line, blocks in name order, facts in a fixed order within a block,
//! multi-line expressions folded to one line. Pure: the same plan gives the
//! same bytes.

use std::fmt::Write as _;

use super::ir::*;

/// Expressions on one line: runs of whitespace (newlines included) become
/// one space, so a re-indented rule does not show up as a change.
/// A setting as the text plan shows it: references as `<env:NAME>`.
fn setting_text(value: &SettingPlan) -> String {
    match value {
        SettingPlan::Text(t) => format!("{t:?}"),
        SettingPlan::Integer(i) => i.to_string(),
        SettingPlan::Bool(b) => b.to_string(),
        SettingPlan::List(l) => format!("{l:?}"),
        SettingPlan::Table(t) => format!("{t:?}"),
        SettingPlan::Reference(r) => format!("<{r}>"),
    }
}

pub fn one_line(expr: &str) -> String {
    expr.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn join(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}

/// The plan as reviewers read it: policies that allow a flow are counted,
/// not listed.
pub fn render(plan: &Plan) -> String {
    render_with(plan, false)
}

/// [`render`], or with every policy verdict listed (`verbose`).
pub fn render_with(plan: &Plan, verbose: bool) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "plan {}", plan.project);
    let _ = writeln!(w, "  format_version = {}", plan.format_version);
    let _ = writeln!(
        w,
        "  environment = {} ({})",
        plan.environment.as_deref().unwrap_or("-"),
        plan.enforcement.map_or("no enforcement", |e| e.as_str())
    );
    let _ = writeln!(w, "  fingerprint = {}", plan.fingerprint);
    for (name, a) in &plan.activations {
        activation(w, name, a, plan, verbose);
    }
    for (name, a) in &plan.audiences {
        audience(w, name, a);
    }
    for (name, c) in &plan.computed {
        let _ = writeln!(w, "\ncomputed {name}");
        let _ = writeln!(w, "  type = {}", c.ty);
        let _ = writeln!(w, "  expr = {}", one_line(&c.expr));
        let _ = writeln!(w, "  reads: {}", join(&c.reads));
        let _ = writeln!(w, "  fingerprint = {}", c.fingerprint);
    }
    for (name, d) in &plan.destinations {
        let _ = writeln!(w, "\ndestination {name}");
        let _ = writeln!(
            w,
            "  type = {} ({} delivery, {} rows)",
            d.ty, d.delivery, d.rows
        );
        for (action, source) in &d.actions {
            let _ = writeln!(w, "  action {action} ({source})");
        }
        for (key, value) in &d.settings {
            let _ = writeln!(w, "  setting {key} = {}", setting_text(value));
        }
        for field in &d.fields {
            let _ = writeln!(w, "  field {field}");
        }
        let _ = writeln!(w, "  fingerprint = {}", d.fingerprint);
    }
    for (name, p) in &plan.policies {
        let actions = p
            .actions
            .as_ref()
            .map_or_else(|| "every action".to_string(), |a| join(a));
        let _ = writeln!(
            w,
            "\npolicy {name} ({}{}, {})",
            if p.core { "core, " } else { "" },
            p.enforcement,
            p.status
        );
        let _ = writeln!(w, "  deny = {}", one_line(&p.deny));
        let _ = writeln!(w, "  actions: {actions}");
    }
    for (name, s) in &plan.sources {
        let _ = writeln!(w, "\nsource {name}");
        let _ = writeln!(w, "  schema = {}", s.schema);
        if let Some(pg) = &s.postgres {
            let _ = writeln!(w, "  postgres = <{}>", pg.url);
            if let Some(table) = &pg.table {
                let _ = writeln!(w, "  table = {table}");
            }
            if let Some(query) = &pg.query {
                let _ = writeln!(w, "  query = {}", one_line(query));
            }
        } else if let Some(m) = &s.marketo {
            let _ = writeln!(w, "  marketo = {}", m.destination);
            let _ = writeln!(w, "  activity_types = {}", m.activity_types.join(", "));
        } else {
            let _ = writeln!(w, "  path = {} ({})", s.path, s.format);
        }
        if let Some(endpoint) = &s.endpoint {
            let _ = writeln!(w, "  endpoint = {endpoint}");
        }
        for (key, value) in &s.settings {
            let _ = writeln!(w, "  {key} = {}", setting_text(value));
        }
        if let Some(age) = &s.max_age {
            let _ = writeln!(w, "  max_age = {age}");
        }
        if let Some(on_stale) = &s.on_stale {
            let on_stale = match on_stale {
                OnStale::Block => "block",
                OnStale::Warn => "warn",
            };
            let _ = writeln!(w, "  on_stale = {on_stale}");
        }
        if let Some(column) = &s.freshness_column {
            let _ = writeln!(w, "  freshness_column = {column}");
        }
        if s.append_only {
            let _ = writeln!(w, "  append_only = true");
        }
        let _ = writeln!(w, "  precedence = {}", s.precedence);
    }
    for (name, a) in &plan.alerts {
        alert(w, name, a);
    }
    for (name, s) in &plan.schemas {
        let _ = writeln!(w, "\nschema {name} ({})", s.class);
        for (field, f) in &s.fields {
            let mut line = format!("  field {field}: {}", f.ty);
            if let Some(id) = &f.identity {
                let _ = write!(line, " identity {id}");
            }
            if !f.labels.is_empty() {
                let _ = write!(line, " labels: {}", f.labels.join(", "));
            }
            let _ = writeln!(w, "{line}");
        }
        for (link, l) in &s.links {
            let _ = writeln!(w, "  link {link} -> {}", l.to);
        }
        let _ = writeln!(w, "  fingerprint = {}", s.fingerprint);
    }
    out
}

/// An alert: its condition on one line, then what it does when it fires;
/// the channel's URL and key only as the references they are read from.
fn alert(w: &mut String, name: &str, a: &AlertPlan) {
    let _ = writeln!(w, "\nalert {name}");
    let threshold = a.threshold.map(|t| format!(" > {t}")).unwrap_or_default();
    let _ = writeln!(w, "  on {} when {}{threshold}", a.on, a.when);
    let _ = writeln!(w, "  severity = {}, repeat = {}", a.severity, a.repeat);
    match &a.notify {
        Some(NotifyPlan::Webhook { url, secret }) => {
            let _ = writeln!(w, "  notify webhook <{url}> signed with <{secret}>");
        }
        Some(NotifyPlan::Slack { url }) => {
            let _ = writeln!(w, "  notify slack <{url}>");
        }
        None => {
            let _ = writeln!(w, "  notify: - (reported in the run only)");
        }
    }
    let _ = writeln!(w, "  fingerprint = {}", a.fingerprint);
}

fn activation(w: &mut String, name: &str, a: &ActivationPlan, plan: &Plan, verbose: bool) {
    let _ = writeln!(w, "\nactivation {name}");
    let delivery = plan
        .destinations
        .get(&a.destination)
        .map_or("?", |d| d.delivery.as_str());
    let _ = writeln!(
        w,
        "  destination = {} ({}, {delivery}, {} rows)",
        a.destination, a.destination_type, a.rows
    );
    let _ = writeln!(w, "  schedule = {}", a.schedule);
    let _ = writeln!(w, "  export = {}", a.export);
    let _ = writeln!(w, "  max_removed_ratio = {}", a.max_removed_ratio);
    for audience in &a.audiences {
        let base = audience.split('.').next().unwrap_or(audience);
        let evaluation = plan
            .audiences
            .get(base)
            .map_or("?", |x| x.evaluation.as_str());
        let labels = a
            .governance
            .get(audience)
            .map(|g| join(&g.labels))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(w, "  audience {audience} ({evaluation}) labels: {labels}");
    }
    for exclude in &a.exclude {
        let _ = writeln!(w, "  exclude {exclude}");
    }
    if let Some(people) = &a.people {
        let _ = writeln!(w, "  people = {}", one_line(people));
    }
    for c in &a.consent {
        let _ = writeln!(
            w,
            "  consent {} ({}) requires {}",
            c.policy,
            c.actions.join(", "),
            one_line(&c.require)
        );
    }
    for m in &a.mapping {
        let mut line = format!("  map {} = {}", m.column, one_line(&m.expr));
        if m.transform != Transform::None {
            let _ = write!(line, " [{}]", m.transform);
        }
        if let Some(id) = &m.identity {
            let _ = write!(line, " [identity {id}]");
        }
        let _ = writeln!(w, "{line}");
    }
    if let Some(d) = plan.destinations.get(&a.destination) {
        for (action, source) in &d.actions {
            let _ = writeln!(w, "  action {action} ({source})");
        }
    }
    for (audience, g) in &a.governance {
        let mut allowed = 0;
        for (policy, verdict) in &g.policies {
            if *verdict == PolicyVerdict::Allowed && !verbose {
                allowed += 1;
                continue;
            }
            let _ = writeln!(w, "  policy {policy} {audience} {verdict}");
        }
        // What a reviewer must read is what is not allowed; the allowed
        // ones are counted (listed with `--verbose`, and always in JSON).
        if allowed > 0 {
            let _ = writeln!(w, "  policies {audience}: {allowed} allowed");
        }
    }
    let l = &a.limits;
    let limits: [(&str, Option<String>); 9] = [
        (
            "min_audience_size",
            l.min_audience_size.map(|v| v.to_string()),
        ),
        (
            "max_audiences_per_dataflow",
            l.max_audiences_per_dataflow.map(|v| v.to_string()),
        ),
        (
            "max_mapped_attributes",
            l.max_mapped_attributes.map(|v| v.to_string()),
        ),
        (
            "max_audience_fields",
            l.max_audience_fields.map(|v| v.to_string()),
        ),
        (
            "max_rows_per_file",
            l.max_rows_per_file.map(|v| v.to_string()),
        ),
        (
            "max_file_name_len",
            l.max_file_name_len.map(|v| v.to_string()),
        ),
        ("batch_size", l.batch_size.map(|v| v.to_string())),
        (
            "max_payload_bytes",
            l.max_payload_bytes.map(|v| v.to_string()),
        ),
        ("rate_limit", l.rate_limit.clone()),
    ];
    for (key, value) in limits {
        if let Some(value) = value {
            let _ = writeln!(w, "  limit {key} = {value}");
        }
    }
    let _ = writeln!(w, "  fingerprint = {}", a.fingerprint);
}

/// An audience's definition, one fact per line: `rule = ...` on one line,
/// or the `compose ...` steps in the order they apply.
pub fn definition_lines(definition: &AudienceDefinition) -> Vec<String> {
    let mut lines = Vec::new();
    match definition {
        AudienceDefinition::Rule { expr } => lines.push(format!("rule = {}", one_line(expr))),
        AudienceDefinition::Compose {
            from,
            merge,
            exclude,
            exclude_rule,
            rank,
            split,
        } => {
            lines.push(format!("compose {merge} of {}", join(from)));
            for e in exclude {
                lines.push(format!("compose exclude {e}"));
            }
            if let Some(rule) = exclude_rule {
                lines.push(format!("compose exclude_rule = {}", one_line(rule)));
            }
            if let Some(r) = rank {
                let limit = r.limit.map(|l| format!(" limit {l}")).unwrap_or_default();
                lines.push(format!(
                    "compose rank by {} {}{limit}",
                    one_line(&r.by),
                    r.order
                ));
            }
            match split {
                Some(SplitPlan::Percent { seed, parts }) => {
                    lines.push(format!("compose split seed {seed:?}"));
                    for p in parts {
                        lines.push(format!("compose part {} = {}%", p.name, p.percent));
                    }
                }
                Some(SplitPlan::ByAttribute { by, parts, other }) => {
                    lines.push(format!("compose split by {}", one_line(by)));
                    for p in parts {
                        lines.push(format!("compose part {} = {}", p.name, join(&p.values)));
                    }
                    if let Some(o) = other {
                        lines.push(format!("compose part {o} = other"));
                    }
                }
                None => {}
            }
        }
    }
    lines
}

fn audience(w: &mut String, name: &str, a: &AudiencePlan) {
    let _ = writeln!(w, "\naudience {name} ({}, {})", a.entity, a.evaluation);
    for line in definition_lines(&a.definition) {
        let _ = writeln!(w, "  {line}");
    }
    let _ = writeln!(w, "  labels: {}", join(&a.labels));
    let _ = writeln!(w, "  reads: {}", join(&a.reads));
    if !a.depends_on.is_empty() {
        let _ = writeln!(w, "  depends_on: {}", join(&a.depends_on));
    }
    let _ = writeln!(w, "  fingerprint = {}", a.fingerprint);
}
