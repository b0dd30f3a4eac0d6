//! `accord diff --format markdown`: the plan diff as a pull-request comment.
//! A summary table a reviewer reads first (what is added, changed and
//! removed, which labels newly reach a destination, which verdicts change),
//! then one collapsed section per activation and per changed definition,
//! rules as line diffs. GitHub and GitLab render it the same way.
//!
//! Input: a [`PlanDiff`]. Output: markdown text. Pure.

use std::fmt::Write as _;

use super::{ActivationChange, PlanDiff, lines};

/// The comment's first line: a tool that posts it can find and update its
/// earlier comment by it.
pub const HEADING: &str = "### accord: what this change does to the activation plan";

pub fn render(d: &PlanDiff) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "{HEADING}\n");
    if d.is_empty() {
        let _ = writeln!(w, "No changes: the compiled plan is the same.");
        return out;
    }
    summary(w, d);
    for a in &d.activations_added {
        let _ = writeln!(
            w,
            "\n<details><summary>added: activation <code>{}</code> to <code>{}</code></summary>\n",
            html(&a.name),
            html(&a.destination)
        );
        for audience in &a.audiences {
            let _ = writeln!(w, "- sends audience `{}`", code(audience));
        }
        for label in &a.labels {
            let _ = writeln!(
                w,
                "- label `{}` reaches `{}`",
                code(label),
                code(&a.destination)
            );
        }
        let _ = writeln!(w, "\n</details>");
    }
    for name in &d.activations_removed {
        let _ = writeln!(w, "\n- removed: activation `{}`", code(name));
    }
    for (name, c) in &d.activations_changed {
        let _ = writeln!(
            w,
            "\n<details><summary>changed: activation <code>{}</code></summary>\n",
            html(name)
        );
        changed(w, c);
        let _ = writeln!(w, "\n</details>");
    }
    for (name, r) in &d.rules_changed {
        let _ = writeln!(
            w,
            "\n<details><summary>changed: audience <code>{}</code></summary>\n",
            html(name)
        );
        let _ = writeln!(w, "```diff");
        for line in lines::diff(&r.old, &r.new) {
            let _ = writeln!(w, "{line}");
        }
        let _ = writeln!(w, "```\n\n</details>");
    }
    let others: Vec<String> = d
        .audiences_added
        .iter()
        .map(|a| format!("added: audience `{}`", code(a)))
        .chain(
            d.audiences_removed
                .iter()
                .map(|a| format!("removed: audience `{}`", code(a))),
        )
        .chain(
            d.other_changed
                .iter()
                .map(|o| format!("changed: `{}`", code(o))),
        )
        .collect();
    if !others.is_empty() {
        let _ = writeln!(w, "\n**Other definitions**\n");
        for o in others {
            let _ = writeln!(w, "- {o}");
        }
    }
    let _ = writeln!(
        w,
        "\n<sub>plan {} → {}</sub>",
        short(&d.old_fingerprint),
        short(&d.new_fingerprint)
    );
    out
}

/// The table a reviewer decides from.
fn summary(w: &mut String, d: &PlanDiff) {
    let names = |items: Vec<String>| {
        if items.is_empty() {
            String::new()
        } else {
            items
                .iter()
                .map(|i| format!("`{}`", cell(i)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let labels: Vec<String> = d
        .activations_added
        .iter()
        .flat_map(|a| a.labels.iter().map(move |l| format!("{l} → {}", a.name)))
        .chain(
            d.activations_changed
                .iter()
                .flat_map(|(name, c)| c.labels_added.iter().map(move |l| format!("{l} → {name}"))),
        )
        .collect();
    let verdicts: Vec<String> = d
        .activations_changed
        .iter()
        .flat_map(|(name, c)| {
            c.verdicts_changed
                .iter()
                .map(move |v| format!("{name}: {} {}: {} → {}", v.policy, v.audience, v.old, v.new))
        })
        .collect();
    let rows: [(&str, Vec<String>); 6] = [
        (
            "Activations added",
            d.activations_added.iter().map(|a| a.name.clone()).collect(),
        ),
        (
            "Activations changed",
            d.activations_changed.keys().cloned().collect(),
        ),
        ("Activations removed", d.activations_removed.clone()),
        ("Labels newly reaching a destination", labels),
        ("Policy verdicts changed", verdicts),
        (
            "Audience definitions changed",
            d.rules_changed.keys().cloned().collect(),
        ),
    ];
    let _ = writeln!(w, "| Change | Count | Which |\n|---|---:|---|");
    for (what, items) in rows {
        let _ = writeln!(w, "| {what} | {} | {} |", items.len(), names(items));
    }
}

/// The facts of one changed activation, one bullet each.
fn changed(w: &mut String, c: &ActivationChange) {
    let mut bullet = |text: String| {
        let _ = writeln!(w, "- {text}");
    };
    for s in &c.settings {
        bullet(format!(
            "{}: `{}` → `{}`",
            s.field,
            code(&s.old),
            code(&s.new)
        ));
    }
    for a in &c.audiences_added {
        bullet(format!("sends audience `{}` (new)", code(a)));
    }
    for a in &c.audiences_removed {
        bullet(format!("no longer sends audience `{}`", code(a)));
    }
    for a in &c.exclude_added {
        bullet(format!("excludes `{}` (new)", code(a)));
    }
    for a in &c.exclude_removed {
        bullet(format!("no longer excludes `{}`", code(a)));
    }
    for a in &c.rules_changed {
        bullet(format!("the rule of `{}` changed", code(a)));
    }
    for path in &c.upstream_changed {
        bullet(format!("upstream change: {}", code_path(path)));
    }
    for m in &c.mapping_added {
        bullet(format!("maps `{}` (new)", code(m)));
    }
    for m in &c.mapping_removed {
        bullet(format!("no longer maps `{}`", code(m)));
    }
    for m in &c.mapping_changed {
        bullet(format!("the mapping of `{}` changed", code(m)));
    }
    for l in &c.labels_added {
        bullet(format!(
            "**label `{}` now reaches the destination**",
            code(l)
        ));
    }
    for l in &c.labels_removed {
        bullet(format!(
            "label `{}` no longer reaches the destination",
            code(l)
        ));
    }
    for v in &c.verdicts_changed {
        bullet(format!(
            "policy `{}` on `{}`: {} → **{}**",
            code(&v.policy),
            code(&v.audience),
            v.old,
            v.new
        ));
    }
    if c.consent_changed {
        bullet("consent filters changed".into());
    }
    if c == &ActivationChange::default() {
        bullet("other facts changed (see `accord plan`)".into());
    }
}

/// `audience A -> audience B` with each name in code.
fn code_path(path: &str) -> String {
    path.split(" -> ")
        .map(|step| match step.split_once(' ') {
            Some((kind, name)) => format!("{kind} `{}`", code(name)),
            None => format!("`{}`", code(step)),
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Text inside backticks: a backtick would end the span.
fn code(text: &str) -> String {
    text.replace('`', "'")
}

/// Text in a table cell: a pipe would end the cell.
fn cell(text: &str) -> String {
    code(text).replace('|', "\\|")
}

/// Text inside HTML (`<summary>`).
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}
