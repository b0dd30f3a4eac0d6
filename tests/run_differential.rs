//! The embedded engine agrees with the CEL interpreter, account by account:
//! on the example project's audiences and sample data, and on random rules
//! within the checked language over random data.
//!
//! Both sides read the same files: `run::evaluate` through the rendered
//! `datafusion` jobs, the interpreter through the test loader.
#![cfg(feature = "engine")]

#[allow(dead_code)]
#[path = "support/data.rs"]
mod data;
#[path = "support/plans.rs"]
mod plans;
#[allow(dead_code)]
#[path = "support/random_rules.rs"]
mod random_rules;
#[allow(dead_code)]
#[path = "support/rng.rs"]
mod rng;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;

use accord::plan::{AudienceDefinition, AudiencePlan, Entity, Evaluation, Plan};
use accord::render;
use accord::semantics::{self, audience_column};

const NOW: &str = "2026-11-28T12:00:00Z";

fn sample_plan() -> Plan {
    plans::plan_of("specs", "dev")
}

/// (engine, interpreter) members per audience column.
type Both = (
    BTreeMap<String, BTreeSet<String>>,
    BTreeMap<String, BTreeSet<String>>,
);

fn both(plan: &Plan, root: &Path) -> Both {
    let now = accord::time::parse_timestamp(NOW).expect("now");
    let (jobs, problems) = render::render(
        plan,
        &render::Options {
            dialects: vec!["datafusion".into()],
            ..render::Options::default()
        },
    );
    assert!(problems.is_empty(), "{problems:?}");
    let evaluation = accord::run::evaluate(plan, &jobs, root, now).expect("the engine evaluates");
    let engine: BTreeMap<String, BTreeSet<String>> = evaluation
        .members
        .sets()
        .into_iter()
        .filter(|(a, _)| {
            let base = a.split('.').next().unwrap_or(a);
            plan.audiences[base].entity == Entity::Account
        })
        .map(|(a, m)| (audience_column(&a), m))
        .collect();
    let tables = data::load(plan, root);
    let (mut accounts, _people) = data::records(plan, &tables);
    semantics::add_computed(plan, &mut accounts, now).expect("computed attributes evaluate");
    let accounts: Vec<Rc<_>> = accounts.into_iter().map(Rc::new).collect();
    let interpreter = semantics::account_memberships(plan, &accounts, now)
        .expect("audiences evaluate")
        .into_iter()
        .filter(|(a, _)| !a.starts_with("__pre_"))
        .collect();
    (engine, interpreter)
}

fn assert_agree((engine, interpreter): &Both, what: &str) {
    assert_eq!(
        engine.keys().collect::<Vec<_>>(),
        interpreter.keys().collect::<Vec<_>>(),
        "{what}: the same audiences"
    );
    for (audience, expected) in interpreter {
        let got = &engine[audience];
        assert_eq!(
            got,
            expected,
            "{what}, {audience}: engine only {:?}, interpreter only {:?}",
            got.difference(expected).collect::<Vec<_>>(),
            expected.difference(got).collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_engine_agrees_with_the_interpreter_on_the_example_project() {
    let plan = sample_plan();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let result = both(&plan, &root);
    assert!(result.1.values().any(|m| !m.is_empty()));
    assert_agree(&result, "specs");
}

#[test]
fn the_engine_agrees_with_the_interpreter_on_random_rules_and_data() {
    random_rules(
        0x9e37_79b9_7f4a_7c15,
        random_rules::predicate,
        random_rules::WORDS,
    );
}

/// The same, from a generator stream of its own (the stream above stays as
/// committed): overflow, division by zero and regex escapes.
#[test]
fn the_engine_agrees_with_the_interpreter_on_overflow_and_regex_rules() {
    random_rules(
        0x0ed9_e5e5_2026_0011,
        random_rules::edge_predicate,
        random_rules::EDGE_WORDS,
    );
}

/// The same, from a stream of its own: conditions over collections whose
/// elements' conditions read collections of their own, which the feature
/// table computes over the elements that have rows there when the
/// condition needs one (a person who opened an email) and over every
/// element when it does not (`!`, `||` with a condition that does not,
/// `size(..) <= k`, `all`).
#[test]
fn the_engine_agrees_with_the_interpreter_on_nested_collection_rules() {
    random_rules(
        0x005e_ed0f_c011_2026,
        random_rules::nested_predicate,
        random_rules::WORDS,
    );
}

fn random_rules(stream: u64, predicate: random_rules::Predicate, words: &[&str]) {
    let base = sample_plan();
    let mut checked = 0;
    for seed in 1..=4u64 {
        let scratch = tempfile::Builder::new()
            .prefix(&format!("accord-differential-{seed}-"))
            .tempdir()
            .expect("temp dir");
        let root = scratch.path();
        let plan = random_rules::random_plan(&base, stream, seed, predicate, words, root);
        let result = both(&plan, root);
        let rules: BTreeMap<&String, String> = plan
            .audiences
            .iter()
            .map(|(n, a)| match &a.definition {
                AudienceDefinition::Rule { expr } => (n, expr.clone()),
                _ => (n, String::new()),
            })
            .collect();
        assert_agree(&result, &format!("seed {seed}, rules {rules:#?}"));
        checked += plan.audiences.len();
    }
    assert!(checked >= 24);
}

/// The rules of issue 11 over the example project's data: an int overflow
/// is missing (the engine had 149 members, the interpreter 0), division and
/// remainder by zero are missing (the engine stopped with an Arrow error),
/// and `k\\s` matches a backslash (the engine matched "ks": DataFusion made
/// the pattern a LIKE, where the backslash escaped the `s`).
#[test]
fn the_engine_agrees_with_the_interpreter_on_overflow_division_and_escapes() {
    let mut plan = sample_plan();
    plan.activations.clear();
    plan.audiences.clear();
    let rules = [
        "account.employees * 9223372036854775807 > 0",
        "account.employees + 9223372036854775807 > 0",
        "-(account.employees - 9223372036854775807 - 2) > 0",
        "account.employees / 0 > 1",
        "account.employees % 0 == 0",
        "account.employees / (account.employees - account.employees) > 1",
        r#"account.name.matches("k\\\\s")"#,
        r#"account.name.matches("ks")"#,
        r#"account.name.matches("(?i)\\bWORKS\\b")"#,
    ];
    for (i, rule) in rules.iter().enumerate() {
        plan.audiences.insert(
            format!("B2B_Edge_{i}"),
            AudiencePlan {
                entity: Entity::Account,
                evaluation: Evaluation::Batch,
                definition: AudienceDefinition::Rule {
                    expr: rule.to_string(),
                },
                depends_on: vec![],
                parts: vec![],
                labels: vec![],
                reads: vec![],
                fingerprint: String::new(),
            },
        );
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let result = both(&plan, &root);
    assert_agree(&result, "issue 11 rules");
    // Not vacuous: "ks" names exist, and no name holds a backslash.
    assert!(!result.1["B2B_Edge_7"].is_empty());
    assert!(result.1["B2B_Edge_6"].is_empty());
    assert!(!result.1["B2B_Edge_8"].is_empty());
}

/// An engine error that `check` cannot see names the audience and where it
/// is written, and shows no SQL.
#[test]
fn an_engine_error_names_the_audience_and_its_file_and_line() {
    let plan = sample_plan();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let (mut jobs, problems) = render::render(
        &plan,
        &render::Options {
            dialects: vec!["datafusion".into()],
            ..render::Options::default()
        },
    );
    assert!(problems.is_empty(), "{problems:?}");
    // A failure at run time in one audience's expression (as a division by
    // zero was before it became missing): doctor the rendered job.
    // B2B_ABM_Top reads B2B_ICP_Enterprise and fails with it: the message
    // names the one that fails of itself.
    let (audience, condition) = ("B2B_ICP_Enterprise", r#"(r."employees" >= 1000)"#);
    let sql = jobs
        .get_mut("sql/datafusion/audiences.sql")
        .expect("the audience job");
    assert!(
        sql.contains(condition),
        "the ICP condition is rendered as expected"
    );
    *sql = sql.replace(
        condition,
        r#"((1 / (r."employees" - r."employees")) >= 1000)"#,
    );
    let now = accord::time::parse_timestamp(NOW).expect("now");
    // The places of the definitions, as the CLI passes them from what it
    // compiled.
    let compiled = accord::compile::check(&root, &plans::options("dev")).expect("specs load");
    let model = compiled.model.as_ref().expect("specs resolve");
    let places = accord::run::Places::of_definitions(&model.syntax, &compiled.sources);
    let error = match accord::run::evaluate_with(
        &plan,
        &jobs,
        &root,
        now,
        &places,
        &accord::run::engine::Choice::default(),
    ) {
        Ok(_) => panic!("the doctored job must fail"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.starts_with(&format!(
            "audience `{audience}` (audiences/icp.toml:6): the engine failed: "
        )),
        "{error}"
    );
    assert!(!error.contains("SELECT"), "no SQL in the message: {error}");
    assert_eq!(error.lines().count(), 1, "{error}");
}
