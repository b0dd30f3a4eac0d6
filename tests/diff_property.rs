//! Property: `accord diff` flags exactly the activations a change affects.
//!
//! Random small projects (the generator the governance property uses) get
//! one random single-definition change: a computed attribute's expression,
//! an audience's rule, a field's labels, a policy's deny expression, a
//! destination's actions, the composed audience's from list, exclude rule or
//! rank, or an activation's mapping. Both versions are compiled and diffed.
//! A brute-force oracle, computed from the generated data alone, says which
//! activations the change affects: those whose delivered rows can change
//! (the changed definition is upstream of an audience they send or exclude,
//! or of a column they map) and those whose labels or policy verdicts change.
//! The activations the diff lists as changed must be exactly those.

use std::collections::{BTreeMap, BTreeSet};

use accord::compile::{self, Options};
use accord::source::{SourceFile, SourceSet};
use proptest::prelude::*;

#[path = "support/generated_project.rs"]
mod generated_project;
use generated_project::{
    ACTIONS, COMPUTED, Deny, FIELDS, LABELS, Project, READS, dataflow_labels, deny, nonempty,
    project, render, verdicts,
};

/// One change to one definition; indices are taken modulo what exists.
#[derive(Clone, Debug)]
enum Change {
    /// `computed.account.k{i}` reads other fields.
    Computed(usize, BTreeSet<usize>),
    /// Rule audience `B2B_A{i}` reads other fields and attributes.
    Rule(usize, BTreeSet<usize>),
    /// Field `f{i}` carries other labels.
    FieldLabels(usize, BTreeSet<usize>),
    /// Policy `p{i}` denies another expression.
    Policy(usize, Deny),
    /// Destination `d{i}` declares other actions.
    Destination(usize, BTreeSet<usize>),
    /// The composed audience composes from other audiences.
    ComposedFrom(BTreeSet<usize>),
    /// The composed audience's exclude rule reads something else (or nothing).
    ExcludeRule(Option<usize>),
    /// The composed audience ranks by something else (or not at all).
    Rank(Option<usize>),
    /// Activation `x{i}` maps other columns.
    Mapping(usize, BTreeSet<usize>),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0..COMPUTED, nonempty(FIELDS)).prop_map(|(i, s)| Change::Computed(i, s)),
        (any::<usize>(), nonempty(READS)).prop_map(|(i, s)| Change::Rule(i, s)),
        (
            0..FIELDS,
            proptest::collection::btree_set(0..LABELS.len(), 0..=1)
        )
            .prop_map(|(i, s)| Change::FieldLabels(i, s)),
        (any::<usize>(), deny()).prop_map(|(i, d)| Change::Policy(i, d)),
        (any::<usize>(), nonempty(ACTIONS.len())).prop_map(|(i, s)| Change::Destination(i, s)),
        nonempty(3).prop_map(Change::ComposedFrom),
        proptest::option::of(0..READS).prop_map(Change::ExcludeRule),
        proptest::option::of(0..READS).prop_map(Change::Rank),
        (
            any::<usize>(),
            proptest::collection::btree_set(0..READS, 0..=3)
        )
            .prop_map(|(i, s)| Change::Mapping(i, s)),
    ]
}

/// What a change touched, for the oracle's reachability.
#[derive(Clone, Debug, PartialEq)]
enum Touched {
    Computed(usize),
    Audience(usize),
    /// Only labels, verdicts or actions: no delivered row changes.
    Governance,
    Activation(usize),
}

/// `p` with `change` applied, or `None` when the change changes nothing.
fn apply(p: &Project, change: &Change) -> Option<(Project, Touched)> {
    let mut q = p.clone();
    let touched = match change {
        Change::Computed(i, reads) => {
            q.computed[*i] = reads.clone();
            Touched::Computed(*i)
        }
        Change::Rule(i, reads) => {
            let i = i % q.audiences.len();
            q.audiences[i].0 = reads.clone();
            Touched::Audience(i)
        }
        Change::FieldLabels(i, labels) => {
            q.field_labels[*i] = labels.clone();
            Touched::Governance
        }
        Change::Policy(i, deny) => {
            let i = i % q.policies.len();
            q.policies[i].0 = deny.clone();
            Touched::Governance
        }
        Change::Destination(i, actions) => {
            let i = i % q.destinations.len();
            q.destinations[i] = actions.clone();
            Touched::Governance
        }
        Change::ComposedFrom(from) => {
            let n = q.audiences.len();
            let c = q.composed.as_mut()?;
            c.from = from.iter().map(|a| a % n).collect();
            c.exclude = c.exclude.difference(&c.from).copied().collect();
            Touched::Audience(n)
        }
        Change::ExcludeRule(read) => {
            let n = q.audiences.len();
            q.composed.as_mut()?.exclude_rule = *read;
            Touched::Audience(n)
        }
        Change::Rank(read) => {
            let n = q.audiences.len();
            q.composed.as_mut()?.rank_by = *read;
            Touched::Audience(n)
        }
        Change::Mapping(i, reads) => {
            let i = i % q.activations.len();
            q.activations[i].3 = reads.clone();
            Touched::Activation(i)
        }
    };
    (q != *p).then_some((q, touched))
}

/// The audiences activation `x` sends or excludes, and every audience they
/// read through `in_audience` or a composition.
fn audiences_reached(p: &Project, x: usize) -> BTreeSet<usize> {
    let (_, sent, excluded, _) = &p.activations[x];
    let mut todo: Vec<usize> = sent.iter().chain(excluded).copied().collect();
    let mut seen = BTreeSet::new();
    while let Some(a) = todo.pop() {
        if !seen.insert(a) {
            continue;
        }
        if a == p.audiences.len() {
            let c = p.composed.as_ref().expect("the composed audience exists");
            todo.extend(c.from.iter().chain(&c.exclude).copied());
        } else if let Some(r) = p.audiences[a].1 {
            todo.push(r);
        }
    }
    seen
}

/// The reads (fields and computed attributes, as read indices) behind what
/// activation `x` delivers: its audiences' rules, the composition's exclude
/// rule and rank, and its mapping.
fn reads_reached(p: &Project, x: usize) -> BTreeSet<usize> {
    let mut reads: BTreeSet<usize> = p.activations[x].3.clone();
    for a in audiences_reached(p, x) {
        if a == p.audiences.len() {
            let c = p.composed.as_ref().expect("the composed audience exists");
            reads.extend(c.exclude_rule.iter().chain(&c.rank_by).copied());
        } else {
            reads.extend(p.audiences[a].0.iter().copied());
        }
    }
    reads
}

/// Whether the change can alter the rows activation `x` delivers, in either
/// version of the project.
fn rows_can_change(old: &Project, new: &Project, touched: &Touched, x: usize) -> bool {
    [old, new].into_iter().any(|p| match touched {
        Touched::Computed(k) => reads_reached(p, x).contains(&(FIELDS + k)),
        Touched::Audience(a) => audiences_reached(p, x).contains(a),
        Touched::Activation(i) => *i == x,
        Touched::Governance => false,
    })
}

/// The labels and verdicts of activation `x`'s dataflows.
fn governance_of(p: &Project, x: usize) -> (BTreeMap<String, BTreeSet<usize>>, Vec<String>) {
    let name = format!("x{x}");
    let labels = dataflow_labels(p)
        .into_iter()
        .filter(|((a, _), _)| *a == name)
        .map(|((_, audience), labels)| (audience, labels))
        .collect();
    let verdicts = verdicts(p)
        .into_iter()
        .filter(|((a, _, _), _)| *a == name)
        .map(|((_, audience, policy), v)| format!("{audience} {policy} {v}"))
        .collect();
    (labels, verdicts)
}

fn plan_of(p: &Project) -> Result<accord::plan::Plan, String> {
    let text = render(p);
    let sources = SourceSet::new(vec![
        SourceFile::new(
            "accord.toml",
            "[project]\nname = \"p\"\nformat = 1\n[environment.prod]\nenforcement = \"warn\"\n",
        ),
        SourceFile::new("specs.toml", text.clone()),
    ]);
    let options = Options {
        environment: Some("prod".into()),
        ..Options::default()
    };
    let compiled = compile::check_sources(sources, &options);
    let errors: Vec<String> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}: {}", d.code.as_str(), d.message))
        .collect();
    if !errors.is_empty() {
        return Err(format!("unexpected errors {errors:?} in\n{text}"));
    }
    compile::plan(&compiled).ok_or_else(|| format!("no plan for\n{text}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_diff_flags_exactly_the_affected_activations(p in project(), change in change()) {
        let Some((q, touched)) = apply(&p, &change) else {
            return Ok(());
        };
        let old = plan_of(&p).map_err(TestCaseError::fail)?;
        let new = plan_of(&q).map_err(TestCaseError::fail)?;
        let diff = accord::diff::diff(&old, &new);
        let flagged: BTreeSet<String> = diff.activations_changed.keys().cloned().collect();
        let affected: BTreeSet<String> = (0..p.activations.len())
            .filter(|x| {
                rows_can_change(&p, &q, &touched, *x) || governance_of(&p, *x) != governance_of(&q, *x)
            })
            .map(|x| format!("x{x}"))
            .collect();
        prop_assert_eq!(
            &flagged,
            &affected,
            "change {:?}\n--- old\n{}\n--- new\n{}\n--- diff\n{}",
            change,
            render(&p),
            render(&q),
            accord::diff::render(&diff)
        );
    }
}
