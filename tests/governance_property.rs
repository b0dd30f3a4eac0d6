//! Property: governance never lets a violation through.
//!
//! Random small projects (labels on fields and on the schema, policies with
//! random deny expressions, audiences reading random fields and referencing
//! each other, mappings, destinations with random actions) are compiled in a
//! blocking environment. A brute-force evaluator computes each activated
//! audience's labels directly from the generated data; every (activation,
//! audience, policy) it finds in violation must be reported as an error, and
//! every reported violation must be one it finds.

use std::collections::{BTreeMap, BTreeSet};

use accord::compile::{self, Options};
use accord::source::{SourceFile, SourceSet};
use proptest::prelude::*;

const LABELS: &[&str] = &["L0", "L1", "L2", "L3"];
const ACTIONS: &[&str] = &["analytics", "data_science", "email_targeting"];
const FIELDS: usize = 5;

#[derive(Clone, Debug)]
enum Deny {
    Label(usize),
    Not(Box<Deny>),
    And(Box<Deny>, Box<Deny>),
    Or(Box<Deny>, Box<Deny>),
}

impl Deny {
    fn text(&self) -> String {
        match self {
            Deny::Label(i) => LABELS[*i].to_string(),
            Deny::Not(e) => format!("!({})", e.text()),
            Deny::And(a, b) => format!("({} && {})", a.text(), b.text()),
            Deny::Or(a, b) => format!("({} || {})", a.text(), b.text()),
        }
    }

    fn eval(&self, labels: &BTreeSet<usize>) -> bool {
        match self {
            Deny::Label(i) => labels.contains(i),
            Deny::Not(e) => !e.eval(labels),
            Deny::And(a, b) => a.eval(labels) && b.eval(labels),
            Deny::Or(a, b) => a.eval(labels) || b.eval(labels),
        }
    }
}

fn deny() -> impl Strategy<Value = Deny> {
    let leaf = (0..LABELS.len()).prop_map(Deny::Label);
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Deny::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Deny::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Deny::Or(Box::new(a), Box::new(b))),
        ]
    })
}

#[derive(Clone, Debug)]
struct Project {
    schema_labels: BTreeSet<usize>,
    field_labels: Vec<BTreeSet<usize>>,
    /// (deny, actions, soft)
    policies: Vec<(Deny, BTreeSet<usize>, bool)>,
    /// (fields read, audience referenced with in_audience: an earlier one)
    audiences: Vec<(BTreeSet<usize>, Option<usize>)>,
    destinations: Vec<BTreeSet<usize>>,
    /// (destination, audiences, mapped fields)
    activations: Vec<(usize, BTreeSet<usize>, BTreeSet<usize>)>,
}

fn subset(n: usize) -> impl Strategy<Value = BTreeSet<usize>> {
    proptest::collection::btree_set(0..n, 0..=n)
}

fn nonempty(n: usize) -> impl Strategy<Value = BTreeSet<usize>> {
    proptest::collection::btree_set(0..n, 1..=n)
}

fn project() -> impl Strategy<Value = Project> {
    (
        proptest::collection::btree_set(0..LABELS.len(), 0..=1),
        proptest::collection::vec(subset(LABELS.len()), FIELDS),
        proptest::collection::vec((deny(), nonempty(ACTIONS.len()), any::<bool>()), 1..=3),
        proptest::collection::vec((nonempty(FIELDS), any::<Option<usize>>()), 1..=3),
        proptest::collection::vec(nonempty(ACTIONS.len()), 1..=2),
        proptest::collection::vec((any::<usize>(), any::<Vec<bool>>(), subset(FIELDS)), 1..=2),
    )
        .prop_map(
            |(schema_labels, field_labels, policies, audiences, destinations, activations)| {
                let n_aud = audiences.len();
                let audiences = audiences
                    .into_iter()
                    .enumerate()
                    .map(|(i, (reads, r))| (reads, r.filter(|_| i > 0).map(|r| r % i.max(1))))
                    .collect();
                let activations = activations
                    .into_iter()
                    .map(|(d, picks, mapped)| {
                        let mut chosen: BTreeSet<usize> = (0..n_aud)
                            .filter(|i| picks.get(*i).copied().unwrap_or(false))
                            .collect();
                        if chosen.is_empty() {
                            chosen.insert(d % n_aud);
                        }
                        (d % destinations.len(), chosen, mapped)
                    })
                    .collect();
                Project {
                    schema_labels,
                    field_labels,
                    policies,
                    audiences,
                    destinations,
                    activations,
                }
            },
        )
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", items.join(", "))
}

fn render(p: &Project) -> String {
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
    for (i, (deny, actions, soft)) in p.policies.iter().enumerate() {
        s += &format!(
            "\n[policy.p{i}]\nactions = {}\ndeny = \"{}\"\nenforcement = \"{}\"\n",
            list(actions.iter().map(|a| ACTIONS[*a].to_string())),
            deny.text(),
            if *soft { "soft" } else { "hard" }
        );
    }
    for (i, (reads, reference)) in p.audiences.iter().enumerate() {
        let mut terms: Vec<String> = reads.iter().map(|f| format!("account.f{f} > 0")).collect();
        if let Some(r) = reference {
            terms.push(format!("in_audience(\"B2B_A{r}\")"));
        }
        s += &format!("\n[audience.B2B_A{i}]\nrule = '{}'\n", terms.join(" && "));
    }
    for (i, actions) in p.destinations.iter().enumerate() {
        s += &format!(
            "\n[destination.d{i}]\ntype = \"filesystem\"\npath = \"out\"\nformat = \"csv\"\nactions = {}\n",
            list(actions.iter().map(|a| ACTIONS[*a].to_string()))
        );
    }
    for (i, (dest, audiences, mapped)) in p.activations.iter().enumerate() {
        s += &format!(
            "\n[activation.x{i}]\ndestination = \"d{dest}\"\naudiences = {}\nschedule = \"daily@02:00\"\nexport = \"full\"\n[activation.x{i}.map]\nname = \"account.name\"\n",
            list(audiences.iter().map(|a| format!("B2B_A{a}")))
        );
        for f in mapped {
            s += &format!("c{f} = \"account.f{f}\"\n");
        }
    }
    s
}

/// The labels of one audience, straight from the generated data.
fn audience_labels(p: &Project, a: usize) -> BTreeSet<usize> {
    let (reads, reference) = &p.audiences[a];
    let mut out: BTreeSet<usize> = reads
        .iter()
        .flat_map(|f| p.field_labels[*f].iter().copied())
        .collect();
    out.extend(p.schema_labels.iter().copied());
    if let Some(r) = reference {
        out.extend(audience_labels(p, *r));
    }
    out
}

/// (activation, audience, policy) triples in violation.
fn expected(p: &Project) -> BTreeSet<(String, String, String)> {
    let implied: Vec<&str> = accord::catalog::lookup("filesystem")
        .map(|t| t.implied_actions.to_vec())
        .unwrap_or_default();
    let mut out = BTreeSet::new();
    for (x, (dest, audiences, mapped)) in p.activations.iter().enumerate() {
        let mut actions: BTreeSet<&str> =
            p.destinations[*dest].iter().map(|a| ACTIONS[*a]).collect();
        actions.extend(implied.iter().copied());
        for a in audiences {
            let mut labels = audience_labels(p, *a);
            // `name` is always mapped: it carries the schema's labels.
            labels.extend(p.schema_labels.iter().copied());
            for f in mapped {
                labels.extend(p.field_labels[*f].iter().copied());
            }
            for (i, (deny, denied, _)) in p.policies.iter().enumerate() {
                let acts = denied.iter().any(|d| actions.contains(ACTIONS[*d]));
                if acts && deny.eval(&labels) {
                    out.insert((format!("x{x}"), format!("B2B_A{a}"), format!("p{i}")));
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_violation_is_an_error(p in project()) {
        let text = render(&p);
        let sources = SourceSet::new(vec![
            SourceFile::new("accord.toml", "[project]\nname = \"p\"\nformat = 1\n[environment.prod]\nenforcement = \"block\"\n"),
            SourceFile::new("specs.toml", text.clone()),
        ]);
        let options = Options { environment: Some("prod".into()), ..Options::default() };
        let compiled = compile::check_sources(sources, &options);
        let others: Vec<String> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.is_error() && d.code.as_str() != "G0001")
            .map(|d| format!("{}: {}", d.code.as_str(), d.message))
            .collect();
        prop_assert!(others.is_empty(), "unexpected errors {others:?} in\n{text}");
        let mut reported = BTreeSet::new();
        for d in compiled.diagnostics.iter().filter(|d| d.code.as_str() == "G0001") {
            prop_assert!(d.is_error(), "a violation in a blocking environment is an error");
            let activation = d.message.split('`').nth(1).unwrap_or_default().to_string();
            let policy = d.message.rsplit('`').nth(1).unwrap_or_default().to_string();
            let audience = d
                .secondary
                .iter()
                .find_map(|l| l.message.strip_prefix("audience `").and_then(|m| m.split('`').next()))
                .unwrap_or_default()
                .to_string();
            reported.insert((activation, audience, policy));
        }
        let expected = expected(&p);
        let verdicts: BTreeMap<_, _> = compiled
            .verdicts
            .iter()
            .flat_map(|v| v.activations.iter())
            .collect();
        prop_assert_eq!(&reported, &expected, "verdicts {:?}\nin\n{}", verdicts.keys().collect::<Vec<_>>(), text);
    }
}
