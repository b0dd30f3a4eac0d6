//! Small random projects for the property tests of governance and of the
//! plan diff: labels on fields and on the schema, computed attributes over
//! labelled fields, policies with random deny expressions, audiences reading
//! random fields and attributes and referencing each other, a composed
//! audience with from, exclude, exclude_rule and rank by, mappings,
//! activation exclusions, destinations with random actions; with the
//! brute-force labels and verdicts of every dataflow, computed straight
//! from the generated data.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

pub const LABELS: &[&str] = &["L0", "L1", "L2", "L3"];
pub const ACTIONS: &[&str] = &["analytics", "data_science", "email_targeting"];
pub const FIELDS: usize = 5;
/// Computed attributes `k0`, `k1`; a read index `FIELDS + i` reads `k{i}`.
pub const COMPUTED: usize = 2;
pub const READS: usize = FIELDS + COMPUTED;

#[derive(Clone, Debug, PartialEq)]
pub enum Deny {
    Label(usize),
    Not(Box<Deny>),
    And(Box<Deny>, Box<Deny>),
    Or(Box<Deny>, Box<Deny>),
}

impl Deny {
    pub fn text(&self) -> String {
        match self {
            Deny::Label(i) => LABELS[*i].to_string(),
            Deny::Not(e) => format!("!({})", e.text()),
            Deny::And(a, b) => format!("({} && {})", a.text(), b.text()),
            Deny::Or(a, b) => format!("({} || {})", a.text(), b.text()),
        }
    }

    pub fn eval(&self, labels: &BTreeSet<usize>) -> bool {
        match self {
            Deny::Label(i) => labels.contains(i),
            Deny::Not(e) => !e.eval(labels),
            Deny::And(a, b) => a.eval(labels) && b.eval(labels),
            Deny::Or(a, b) => a.eval(labels) || b.eval(labels),
        }
    }
}

pub fn deny() -> impl Strategy<Value = Deny> {
    let leaf = (0..LABELS.len()).prop_map(Deny::Label);
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Deny::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Deny::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Deny::Or(Box::new(a), Box::new(b))),
        ]
    })
}

#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub schema_labels: BTreeSet<usize>,
    pub field_labels: Vec<BTreeSet<usize>>,
    /// The fields each computed attribute reads.
    pub computed: Vec<BTreeSet<usize>>,
    /// (deny, actions, soft)
    pub policies: Vec<(Deny, BTreeSet<usize>, bool)>,
    /// (fields read, audience referenced with in_audience: an earlier one)
    pub audiences: Vec<(BTreeSet<usize>, Option<usize>)>,
    /// A composed audience `B2B_C`: from, exclude, exclude_rule and rank by
    /// reads. It is audience index `audiences.len()`.
    pub composed: Option<Composed>,
    pub destinations: Vec<BTreeSet<usize>>,
    pub activations: Vec<Dataflow>,
}

/// (destination, audiences, excluded audiences, mapped reads)
pub type Dataflow = (usize, BTreeSet<usize>, BTreeSet<usize>, BTreeSet<usize>);

#[derive(Clone, Debug, PartialEq)]
pub struct Composed {
    pub from: BTreeSet<usize>,
    pub exclude: BTreeSet<usize>,
    pub exclude_rule: Option<usize>,
    pub rank_by: Option<usize>,
}

pub fn subset(n: usize) -> impl Strategy<Value = BTreeSet<usize>> {
    proptest::collection::btree_set(0..n, 0..=n)
}

pub fn nonempty(n: usize) -> impl Strategy<Value = BTreeSet<usize>> {
    proptest::collection::btree_set(0..n, 1..=n)
}

pub fn project() -> impl Strategy<Value = Project> {
    (
        (
            // Sparse labels: a label then usually reaches an audience one way
            // only, so a missed path changes the outcome.
            prop_oneof![
                3 => Just(BTreeSet::new()),
                1 => proptest::collection::btree_set(0..LABELS.len(), 1),
            ],
            proptest::collection::vec(
                proptest::collection::btree_set(0..LABELS.len(), 0..=1),
                FIELDS,
            ),
            proptest::collection::vec(nonempty(FIELDS), COMPUTED),
        ),
        proptest::collection::vec((deny(), nonempty(ACTIONS.len()), any::<bool>()), 1..=3),
        proptest::collection::vec((nonempty(READS), any::<Option<usize>>()), 1..=3),
        // Mostly present, so that its own paths (exclude_rule, rank by) are
        // exercised in most cases.
        proptest::option::weighted(
            0.8,
            (
                any::<Vec<bool>>(),
                any::<Vec<bool>>(),
                proptest::option::of(0..READS),
                proptest::option::of(0..READS),
            ),
        ),
        proptest::collection::vec(nonempty(ACTIONS.len()), 1..=2),
        proptest::collection::vec(
            (
                any::<usize>(),
                any::<Vec<bool>>(),
                any::<Vec<bool>>(),
                subset(READS),
            ),
            1..=2,
        ),
    )
        .prop_map(
            |(
                (schema_labels, field_labels, computed),
                policies,
                audiences,
                composed,
                destinations,
                activations,
            )| {
                let n_rule = audiences.len();
                let audiences: Vec<_> = audiences
                    .into_iter()
                    .enumerate()
                    .map(|(i, (reads, r))| (reads, r.filter(|_| i > 0).map(|r| r % i.max(1))))
                    .collect();
                let pick = |flags: &[bool], n: usize| -> BTreeSet<usize> {
                    (0..n)
                        .filter(|i| flags.get(*i).copied().unwrap_or(false))
                        .collect()
                };
                let composed = composed.map(|(from, exclude, exclude_rule, rank_by)| {
                    let mut from = pick(&from, n_rule);
                    if from.is_empty() {
                        from.insert(0);
                    }
                    let exclude = pick(&exclude, n_rule).difference(&from).copied().collect();
                    Composed {
                        from,
                        exclude,
                        exclude_rule,
                        rank_by,
                    }
                });
                let n_all = n_rule + usize::from(composed.is_some());
                let activations = activations
                    .into_iter()
                    .map(|(d, picks, excluded, mapped)| {
                        let mut chosen = pick(&picks, n_all);
                        if chosen.is_empty() {
                            chosen.insert(d % n_all);
                        }
                        // Exclusions are rule audiences not activated here.
                        let excluded = pick(&excluded, n_rule)
                            .difference(&chosen)
                            .copied()
                            .collect();
                        (d % destinations.len(), chosen, excluded, mapped)
                    })
                    .collect();
                Project {
                    schema_labels,
                    field_labels,
                    computed,
                    policies,
                    audiences,
                    composed,
                    destinations,
                    activations,
                }
            },
        )
}

/// The CEL path of a read index: a field or a computed attribute.
pub fn path(read: usize) -> String {
    if read < FIELDS {
        format!("account.f{read}")
    } else {
        format!("account.k{}", read - FIELDS)
    }
}

pub fn audience_name(p: &Project, a: usize) -> String {
    if a == p.audiences.len() {
        "B2B_C".to_string()
    } else {
        format!("B2B_A{a}")
    }
}

pub fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", items.join(", "))
}

pub fn render(p: &Project) -> String {
    let mut s = String::new();
    for l in LABELS {
        s += &format!("[label.{l}]\ndescription = \"a label\"\n\n");
    }
    s += "[schema.account]\nclass = \"account\"\nkey = \"accountId\"\n";
    s += &format!(
        "labels = {}\n",
        list(p.schema_labels.iter().map(|l| LABELS[*l].to_string()))
    );
    s += "[schema.account.fields]\naccountId = \"string\"\nname = \"string\"\n";
    for (i, labels) in p.field_labels.iter().enumerate() {
        s += &format!(
            "f{i} = {{ type = \"int\", labels = {} }}\n",
            list(labels.iter().map(|l| LABELS[*l].to_string()))
        );
    }
    for (i, reads) in p.computed.iter().enumerate() {
        let terms: Vec<String> = reads.iter().map(|f| format!("account.f{f}")).collect();
        s += &format!(
            "\n[computed.account.k{i}]\ntype = \"int\"\nexpr = '{}'\n",
            terms.join(" + ")
        );
    }
    for (i, (deny, actions, soft)) in p.policies.iter().enumerate() {
        s += &format!(
            "\n[policy.p{i}]\nactions = {}\ndeny = \"{}\"\nenforcement = \"{}\"\n",
            list(actions.iter().map(|a| ACTIONS[*a].to_string())),
            deny.text(),
            if *soft { "soft" } else { "hard" }
        );
    }
    for (i, (reads, reference)) in p.audiences.iter().enumerate() {
        let mut terms: Vec<String> = reads.iter().map(|r| format!("{} > 0", path(*r))).collect();
        if let Some(r) = reference {
            terms.push(format!("in_audience(\"B2B_A{r}\")"));
        }
        s += &format!("\n[audience.B2B_A{i}]\nrule = '{}'\n", terms.join(" && "));
    }
    if let Some(c) = &p.composed {
        s += &format!(
            "\n[audience.B2B_C]\ncompose.from = {}\ncompose.exclude = {}\n",
            list(c.from.iter().map(|a| format!("B2B_A{a}"))),
            list(c.exclude.iter().map(|a| format!("B2B_A{a}")))
        );
        if let Some(r) = c.exclude_rule {
            s += &format!("compose.exclude_rule = '{} > 0'\n", path(r));
        }
        if let Some(r) = c.rank_by {
            s += &format!(
                "compose.rank = {{ by = \"double({})\", order = \"desc\" }}\n",
                path(r)
            );
        }
    }
    for (i, actions) in p.destinations.iter().enumerate() {
        s += &format!(
            "\n[destination.d{i}]\ntype = \"filesystem\"\npath = \"out\"\nformat = \"csv\"\nactions = {}\n",
            list(actions.iter().map(|a| ACTIONS[*a].to_string()))
        );
    }
    for (i, (dest, audiences, excluded, mapped)) in p.activations.iter().enumerate() {
        s += &format!(
            "\n[activation.x{i}]\ndestination = \"d{dest}\"\naudiences = {}\nexclude = {}\nschedule = \"daily@02:00\"\nexport = \"full\"\n[activation.x{i}.map]\nname = \"account.name\"\n",
            list(audiences.iter().map(|a| audience_name(p, *a))),
            list(excluded.iter().map(|a| audience_name(p, *a)))
        );
        for r in mapped {
            s += &format!("c{r} = \"{}\"\n", path(*r));
        }
    }
    s
}

/// The labels of one read (a field, or a computed attribute's fields); the
/// schema's labels come with every field.
pub fn read_labels(p: &Project, read: usize) -> BTreeSet<usize> {
    let fields: Vec<usize> = if read < FIELDS {
        vec![read]
    } else {
        p.computed[read - FIELDS].iter().copied().collect()
    };
    let mut out: BTreeSet<usize> = fields
        .iter()
        .flat_map(|f| p.field_labels[*f].iter().copied())
        .collect();
    out.extend(p.schema_labels.iter().copied());
    out
}

/// The labels of one audience, straight from the generated data.
pub fn audience_labels(p: &Project, a: usize) -> BTreeSet<usize> {
    if a == p.audiences.len() {
        let c = p.composed.as_ref().expect("the composed audience exists");
        let mut out = BTreeSet::new();
        for x in c.from.iter().chain(&c.exclude) {
            out.extend(audience_labels(p, *x));
        }
        for r in c.exclude_rule.iter().chain(&c.rank_by) {
            out.extend(read_labels(p, *r));
        }
        return out;
    }
    let (reads, reference) = &p.audiences[a];
    let mut out: BTreeSet<usize> = reads.iter().flat_map(|r| read_labels(p, *r)).collect();
    if let Some(r) = reference {
        out.extend(audience_labels(p, *r));
    }
    out
}

/// The labels of each (activation, activated audience): the audience's, its
/// exclusion audiences', and those of the mapping (`name` is always mapped,
/// so the schema's labels always count).
pub fn dataflow_labels(p: &Project) -> BTreeMap<(String, String), BTreeSet<usize>> {
    let mut out = BTreeMap::new();
    for (x, (_, audiences, excluded, mapped)) in p.activations.iter().enumerate() {
        for a in audiences {
            let mut labels = audience_labels(p, *a);
            labels.extend(p.schema_labels.iter().copied());
            for r in mapped {
                labels.extend(read_labels(p, *r));
            }
            for e in excluded {
                labels.extend(audience_labels(p, *e));
            }
            out.insert((format!("x{x}"), audience_name(p, *a)), labels);
        }
    }
    out
}

/// The brute-force verdict of every (activation, activated audience,
/// policy): `violated` when the deny expression matches the dataflow's
/// labels and the destination performs a denied action, `not_applicable`
/// when it matches but no denied action is performed, `allowed` otherwise.
pub fn verdicts(p: &Project) -> BTreeMap<(String, String, String), &'static str> {
    let implied: Vec<&str> = accord::catalog::lookup("filesystem")
        .map(|t| t.implied_actions.to_vec())
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for ((x, a), labels) in dataflow_labels(p) {
        let index: usize = x[1..].parse().expect("activation names are x<N>");
        let dest = p.activations[index].0;
        let mut actions: BTreeSet<&str> =
            p.destinations[dest].iter().map(|a| ACTIONS[*a]).collect();
        actions.extend(implied.iter().copied());
        for (i, (deny, denied, _)) in p.policies.iter().enumerate() {
            let acts = denied.iter().any(|d| actions.contains(ACTIONS[*d]));
            let verdict = match (deny.eval(&labels), acts) {
                (true, true) => "violated",
                (true, false) => "not_applicable",
                (false, _) => "allowed",
            };
            out.insert((x.clone(), a.clone(), format!("p{i}")), verdict);
        }
    }
    out
}

/// (activation, audience, policy) triples in violation.
pub fn expected(p: &Project) -> BTreeSet<(String, String, String)> {
    verdicts(p)
        .into_iter()
        .filter(|(_, v)| *v == "violated")
        .map(|(k, _)| k)
        .collect()
}
