//! Plan against plan: the reviewer's summary of what a change does.
//!
//! Input: two [`Plan`]s. Output: a [`PlanDiff`] (plain serde data) and its
//! text. Pure. Activations are compared fact by fact (audiences, rule
//! changes of the audiences they send, mapping columns, labels reaching the
//! destination, policy verdicts, settings); every other node is compared by
//! its fingerprint, so no change goes unreported.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub mod lines;
pub mod markdown;

use crate::plan::text::{definition_lines, one_line};
use crate::plan::{ActivationPlan, AudienceDefinition, AudiencePlan, Plan};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanDiff {
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    pub activations_added: Vec<AddedActivation>,
    pub activations_removed: Vec<String>,
    pub activations_changed: BTreeMap<String, ActivationChange>,
    /// Audiences whose definition changed: name -> old and new definition,
    /// as written (a multi-line rule keeps its lines).
    pub rules_changed: BTreeMap<String, RuleChange>,
    pub audiences_added: Vec<String>,
    pub audiences_removed: Vec<String>,
    /// Other nodes whose content changed, as `kind name` (`schema account`).
    pub other_changed: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AddedActivation {
    pub name: String,
    pub destination: String,
    pub audiences: Vec<String>,
    pub labels: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleChange {
    pub old: String,
    pub new: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActivationChange {
    /// `field: old -> new` for destination, rows, schedule, export, people.
    pub settings: Vec<SettingChange>,
    pub audiences_added: Vec<String>,
    pub audiences_removed: Vec<String>,
    pub exclude_added: Vec<String>,
    pub exclude_removed: Vec<String>,
    /// Sent audiences (base names) whose definition changed.
    pub rules_changed: Vec<String>,
    /// Changes upstream of what the activation sends, each as the path
    /// from the changed definition to a sent audience (`computed
    /// account.tier -> audience B2B_Tiers -> audience B2B_ABM_Top`): an
    /// audience composed from, or testing `in_audience` of, a changed one
    /// changes its members too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream_changed: Vec<String>,
    pub mapping_added: Vec<String>,
    pub mapping_removed: Vec<String>,
    /// Columns whose expression or transform changed.
    pub mapping_changed: Vec<String>,
    /// Labels that reach the destination now and did not before (any audience).
    pub labels_added: Vec<String>,
    pub labels_removed: Vec<String>,
    pub verdicts_changed: Vec<VerdictChange>,
    pub consent_changed: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SettingChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VerdictChange {
    pub audience: String,
    pub policy: String,
    /// `-` when the policy did not apply to the audience before (or after).
    pub old: String,
    pub new: String,
}

impl PlanDiff {
    pub fn is_empty(&self) -> bool {
        self.activations_added.is_empty()
            && self.activations_removed.is_empty()
            && self.activations_changed.is_empty()
            && self.rules_changed.is_empty()
            && self.audiences_added.is_empty()
            && self.audiences_removed.is_empty()
            && self.other_changed.is_empty()
    }
}

fn added_removed(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>) {
    let o: BTreeSet<&String> = old.iter().collect();
    let n: BTreeSet<&String> = new.iter().collect();
    (
        n.difference(&o).map(|s| s.to_string()).collect(),
        o.difference(&n).map(|s| s.to_string()).collect(),
    )
}

fn labels(a: &ActivationPlan) -> Vec<String> {
    let set: BTreeSet<&String> = a.governance.values().flat_map(|g| &g.labels).collect();
    set.into_iter().cloned().collect()
}

/// A definition as reviewers read it: a rule as written (its lines, without
/// the indentation and blank lines around them), a composition as its
/// steps, one per line.
fn definition_text(d: &AudienceDefinition) -> String {
    match d {
        AudienceDefinition::Rule { expr } => {
            let lines: Vec<&str> = expr.lines().map(str::trim_end).collect();
            let first = lines.iter().position(|l| !l.trim().is_empty());
            let last = lines.iter().rposition(|l| !l.trim().is_empty());
            let (Some(first), Some(last)) = (first, last) else {
                return String::new();
            };
            let body = &lines[first..=last];
            let indent = body
                .iter()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.len() - l.trim_start().len())
                .min()
                .unwrap_or(0);
            body.iter()
                .map(|l| l.get(indent..).unwrap_or(l.trim_start()))
                .collect::<Vec<_>>()
                .join("\n")
        }
        compose => definition_lines(compose).join("\n"),
    }
}

pub fn diff(old: &Plan, new: &Plan) -> PlanDiff {
    let mut out = PlanDiff {
        old_fingerprint: old.fingerprint.clone(),
        new_fingerprint: new.fingerprint.clone(),
        ..PlanDiff::default()
    };
    for (name, a) in &new.activations {
        if !old.activations.contains_key(name) {
            out.activations_added.push(AddedActivation {
                name: name.clone(),
                destination: a.destination.clone(),
                audiences: a.audiences.clone(),
                labels: labels(a),
            });
        }
    }
    out.activations_removed = old
        .activations
        .keys()
        .filter(|k| !new.activations.contains_key(*k))
        .cloned()
        .collect();
    let (added, removed) = added_removed(
        &old.audiences.keys().cloned().collect::<Vec<_>>(),
        &new.audiences.keys().cloned().collect::<Vec<_>>(),
    );
    out.audiences_added = added;
    out.audiences_removed = removed;
    for (name, n) in &new.audiences {
        let Some(o) = old.audiences.get(name) else {
            continue;
        };
        let (old_text, new_text) = (
            definition_text(&o.definition),
            definition_text(&n.definition),
        );
        // Compared as one line, so re-indenting a rule is not a rule change
        // (its fingerprint still says the audience changed).
        if one_line(&old_text) != one_line(&new_text) {
            out.rules_changed.insert(
                name.clone(),
                RuleChange {
                    old: old_text,
                    new: new_text,
                },
            );
        } else if o.fingerprint != n.fingerprint {
            // Same rule, other facts (labels, reads, evaluation, layout of
            // the rule text): reported with the other nodes.
            out.other_changed.push(format!("audience {name}"));
        }
    }
    let changed = Upstream::of(old, new, &out.rules_changed);
    for (name, n) in &new.activations {
        let Some(o) = old.activations.get(name) else {
            continue;
        };
        let mut change = activation(o, n, &out.rules_changed);
        change.upstream_changed = changed.paths_into(n);
        if change != ActivationChange::default() || o.fingerprint != n.fingerprint {
            out.activations_changed.insert(name.clone(), change);
        }
    }
    macro_rules! others {
        ($kind:literal, $field:ident) => {
            let keys: BTreeSet<&String> = old.$field.keys().chain(new.$field.keys()).collect();
            for key in keys {
                let (o, n) = (old.$field.get(key), new.$field.get(key));
                if o.map(|x| &x.fingerprint) != n.map(|x| &x.fingerprint) {
                    out.other_changed.push(format!("{} {key}", $kind));
                }
            }
        };
    }
    out.other_changed.sort();
    others!("computed", computed);
    others!("destination", destinations);
    others!("schema", schemas);
    others!("source", sources);
    others!("alert", alerts);
    let keys: BTreeSet<&String> = old.policies.keys().chain(new.policies.keys()).collect();
    for key in keys {
        if old.policies.get(key) != new.policies.get(key) {
            out.other_changed.push(format!("policy {key}"));
        }
    }
    if old.environment != new.environment || old.enforcement != new.enforcement {
        out.other_changed.push("environment".to_string());
    }
    out
}

/// Whether an audience's members can differ between two plans: anything but
/// its labels changed (labels reach activations as labels and verdicts, which
/// are compared on their own, and do not change who is a member).
fn members_may_differ(o: &AudiencePlan, n: &AudiencePlan) -> bool {
    o.entity != n.entity
        || o.evaluation != n.evaluation
        || o.definition != n.definition
        || o.depends_on != n.depends_on
        || o.parts != n.parts
        || o.reads != n.reads
}

/// The definitions a change touched, and how audiences reach them: what
/// the impact of a change on an activation is followed through.
struct Upstream<'a> {
    /// Audiences (base names) whose definition or other facts changed.
    audiences: BTreeSet<&'a str>,
    /// Computed attributes (`schema.name`) that changed, or read one that
    /// did, with the path from the changed one (`computed a -> computed b`).
    computed: BTreeMap<&'a str, String>,
    /// Per audience, the audiences it reads, in either plan (a dependency
    /// the change removed still changed the members).
    depends_on: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// Per audience, the fields it reads, in either plan.
    reads: BTreeMap<&'a str, BTreeSet<&'a str>>,
}

impl<'a> Upstream<'a> {
    fn of(old: &'a Plan, new: &'a Plan, rules: &'a BTreeMap<String, RuleChange>) -> Upstream<'a> {
        let mut audiences: BTreeSet<&str> = rules.keys().map(String::as_str).collect();
        for (name, n) in &new.audiences {
            if old
                .audiences
                .get(name)
                .is_some_and(|o| members_may_differ(o, n))
            {
                audiences.insert(name);
            }
        }
        let mut computed: BTreeMap<&str, String> = old
            .computed
            .keys()
            .chain(new.computed.keys())
            .filter(|k| {
                old.computed.get(*k).map(|c| &c.fingerprint)
                    != new.computed.get(*k).map(|c| &c.fingerprint)
            })
            .map(|k| (k.as_str(), format!("computed {k}")))
            .collect();
        // A computed attribute that reads a changed one changes too; its
        // path goes through the one it reads.
        loop {
            let more: Vec<(&str, String)> = new
                .computed
                .iter()
                .filter(|(k, _)| !computed.contains_key(k.as_str()))
                .filter_map(|(k, c)| {
                    let via = c.reads.iter().find_map(|r| computed.get(r.as_str()))?;
                    Some((k.as_str(), format!("{via} -> computed {k}")))
                })
                .collect();
            if more.is_empty() {
                break;
            }
            computed.extend(more);
        }
        let mut depends_on: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        let mut reads: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for plan in [old, new] {
            for (name, a) in &plan.audiences {
                depends_on
                    .entry(name)
                    .or_default()
                    .extend(a.depends_on.iter().map(String::as_str));
                reads
                    .entry(name)
                    .or_default()
                    .extend(a.reads.iter().map(String::as_str));
            }
        }
        Upstream {
            audiences,
            computed,
            depends_on,
            reads,
        }
    }

    /// The paths from a changed definition to each audience the activation
    /// sends or excludes, or to a column it maps, shortest first per changed
    /// definition; a sent
    /// audience that changed itself is `rules_changed`'s (or the audience
    /// node's), not a path.
    fn paths_into(&self, a: &ActivationPlan) -> Vec<String> {
        let mut found: BTreeMap<String, String> = BTreeMap::new();
        let sent: BTreeSet<&str> = a
            .audiences
            .iter()
            .chain(&a.exclude)
            .map(|x| x.split('.').next().unwrap_or(x))
            .collect();
        for start in sent {
            // Breadth first from the sent audience, upstream, so each
            // changed definition is reached by a shortest path.
            let mut seen: BTreeSet<&str> = BTreeSet::from([start]);
            let mut queue: std::collections::VecDeque<Vec<&str>> =
                std::collections::VecDeque::from([vec![start]]);
            while let Some(path) = queue.pop_front() {
                let at = *path.last().unwrap_or(&start);
                let through = |first: String| {
                    let mut text = first;
                    for audience in path.iter().rev() {
                        text.push_str(&format!(" -> audience {audience}"));
                    }
                    text
                };
                for field in self.reads.get(at).into_iter().flatten() {
                    if let Some(chain) = self.computed.get(field) {
                        found
                            .entry(format!("computed {field}"))
                            .or_insert_with(|| through(chain.clone()));
                    }
                }
                if path.len() > 1 && self.audiences.contains(at) {
                    let key = format!("audience {at}");
                    let mut rest = path.clone();
                    rest.pop();
                    let mut text = key.clone();
                    for audience in rest.iter().rev() {
                        text.push_str(&format!(" -> audience {audience}"));
                    }
                    found.entry(key).or_insert(text);
                }
                for next in self.depends_on.get(at).into_iter().flatten() {
                    if seen.insert(next) {
                        let mut longer = path.clone();
                        longer.push(next);
                        queue.push_back(longer);
                    }
                }
            }
        }
        // A mapped column computed from a changed attribute changes the
        // delivered rows as well, whatever the audiences do.
        for m in &a.mapping {
            for field in &m.reads {
                if let Some(chain) = self.computed.get(field.as_str()) {
                    found
                        .entry(format!("computed {field}"))
                        .or_insert_with(|| format!("{chain} -> column {}", m.column));
                }
            }
        }
        found.into_values().collect()
    }
}

fn activation(
    o: &ActivationPlan,
    n: &ActivationPlan,
    rules: &BTreeMap<String, RuleChange>,
) -> ActivationChange {
    let mut c = ActivationChange::default();
    let fields: [(&str, String, String); 6] = [
        ("destination", o.destination.clone(), n.destination.clone()),
        (
            "type",
            o.destination_type.clone(),
            n.destination_type.clone(),
        ),
        ("rows", o.rows.to_string(), n.rows.to_string()),
        ("schedule", o.schedule.to_string(), n.schedule.to_string()),
        ("export", o.export.to_string(), n.export.to_string()),
        (
            "people",
            o.people.as_deref().map_or("-".into(), one_line),
            n.people.as_deref().map_or("-".into(), one_line),
        ),
    ];
    for (field, old, new) in fields {
        if old != new {
            c.settings.push(SettingChange {
                field: field.to_string(),
                old,
                new,
            });
        }
    }
    (c.audiences_added, c.audiences_removed) = added_removed(&o.audiences, &n.audiences);
    (c.exclude_added, c.exclude_removed) = added_removed(&o.exclude, &n.exclude);
    let sent: BTreeSet<&str> = n
        .audiences
        .iter()
        .chain(&n.exclude)
        .map(|a| a.split('.').next().unwrap_or(a))
        .collect();
    c.rules_changed = sent
        .into_iter()
        .filter(|a| rules.contains_key(*a))
        .map(str::to_string)
        .collect();
    let columns = |a: &ActivationPlan| {
        a.mapping
            .iter()
            .map(|m| m.column.clone())
            .collect::<Vec<_>>()
    };
    (c.mapping_added, c.mapping_removed) = added_removed(&columns(o), &columns(n));
    for m in &n.mapping {
        if let Some(om) = o.mapping.iter().find(|x| x.column == m.column)
            && (one_line(&om.expr) != one_line(&m.expr) || om.transform != m.transform)
        {
            c.mapping_changed.push(m.column.clone());
        }
    }
    c.mapping_changed.sort();
    (c.labels_added, c.labels_removed) = added_removed(&labels(o), &labels(n));
    let audiences: BTreeSet<&String> = o.governance.keys().chain(n.governance.keys()).collect();
    for audience in audiences {
        let (og, ng) = (o.governance.get(audience), n.governance.get(audience));
        let policies: BTreeSet<&String> = og
            .iter()
            .flat_map(|g| g.policies.keys())
            .chain(ng.iter().flat_map(|g| g.policies.keys()))
            .collect();
        for policy in policies {
            let old = og.and_then(|g| g.policies.get(policy));
            let new = ng.and_then(|g| g.policies.get(policy));
            // An audience added or removed is reported as such; its verdicts
            // only when both sides have it.
            if og.is_some() && ng.is_some() && old != new {
                c.verdicts_changed.push(VerdictChange {
                    audience: audience.clone(),
                    policy: policy.clone(),
                    old: old.map_or_else(|| "-".into(), |v| v.to_string()),
                    new: new.map_or_else(|| "-".into(), |v| v.to_string()),
                });
            }
        }
    }
    c.consent_changed = o.consent != n.consent;
    c
}

/// The reviewer's text: `+` added, `-` removed, `~` changed, one fact per line.
pub fn render(d: &PlanDiff) -> String {
    let mut out = String::new();
    let w = &mut out;
    if d.is_empty() {
        let _ = writeln!(w, "no changes");
        return out;
    }
    for a in &d.activations_added {
        let _ = writeln!(w, "+ activation {} -> {}", a.name, a.destination);
        for audience in &a.audiences {
            let _ = writeln!(w, "    + audience {audience}");
        }
        for label in &a.labels {
            let _ = writeln!(w, "    + label {label} reaches {}", a.destination);
        }
    }
    for name in &d.activations_removed {
        let _ = writeln!(w, "- activation {name}");
    }
    for (name, c) in &d.activations_changed {
        let _ = writeln!(w, "~ activation {name}");
        for s in &c.settings {
            let _ = writeln!(w, "    ~ {}: {} -> {}", s.field, s.old, s.new);
        }
        for a in &c.audiences_added {
            let _ = writeln!(w, "    + audience {a}");
        }
        for a in &c.audiences_removed {
            let _ = writeln!(w, "    - audience {a}");
        }
        for a in &c.exclude_added {
            let _ = writeln!(w, "    + exclude {a}");
        }
        for a in &c.exclude_removed {
            let _ = writeln!(w, "    - exclude {a}");
        }
        for a in &c.rules_changed {
            let _ = writeln!(w, "    ~ rule of {a}");
        }
        for path in &c.upstream_changed {
            let _ = writeln!(w, "    ~ upstream: {path}");
        }
        for m in &c.mapping_added {
            let _ = writeln!(w, "    + map {m}");
        }
        for m in &c.mapping_removed {
            let _ = writeln!(w, "    - map {m}");
        }
        for m in &c.mapping_changed {
            let _ = writeln!(w, "    ~ map {m}");
        }
        for l in &c.labels_added {
            let _ = writeln!(w, "    + label {l} reaches the destination");
        }
        for l in &c.labels_removed {
            let _ = writeln!(w, "    - label {l} no longer reaches the destination");
        }
        for v in &c.verdicts_changed {
            let _ = writeln!(
                w,
                "    ~ policy {} {}: {} -> {}",
                v.policy, v.audience, v.old, v.new
            );
        }
        if c.consent_changed {
            let _ = writeln!(w, "    ~ consent filters");
        }
    }
    for a in &d.audiences_added {
        let _ = writeln!(w, "+ audience {a}");
    }
    for a in &d.audiences_removed {
        let _ = writeln!(w, "- audience {a}");
    }
    for (name, r) in &d.rules_changed {
        let _ = writeln!(w, "~ audience {name}");
        for line in lines::diff(&r.old, &r.new) {
            let _ = writeln!(w, "    {line}");
        }
    }
    for o in &d.other_changed {
        let _ = writeln!(w, "~ {o}");
    }
    let _ = writeln!(
        w,
        "activations: {} added, {} removed, {} changed",
        d.activations_added.len(),
        d.activations_removed.len(),
        d.activations_changed.len()
    );
    out
}
