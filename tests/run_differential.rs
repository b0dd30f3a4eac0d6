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
#[path = "support/rng.rs"]
mod rng;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;

use accord::compile::{self, Options};
use accord::plan::{AudienceDefinition, AudiencePlan, Plan, SourcePlan};
use accord::render::{self, lower::audience_column, semantics};
use rng::Rng;

const NOW: &str = "2026-11-28T12:00:00Z";

fn sample_plan() -> Plan {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let options = Options {
        environment: Some("dev".into()),
        today: compile::parse_date("2026-11-28"),
        ..Options::default()
    };
    let compiled = compile::check(&dir, &options).expect("specs load");
    compile::plan(&compiled).expect("specs compile to a plan")
}

/// (engine, interpreter) members per audience column.
type Both = (
    BTreeMap<String, BTreeSet<String>>,
    BTreeMap<String, BTreeSet<String>>,
);

fn both(plan: &Plan, root: &Path) -> Both {
    let now = accord::run::time::parse_timestamp(NOW).expect("now");
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
        .iter()
        .filter(|(a, _)| {
            let base = a.split('.').next().unwrap_or(a);
            plan.audiences[base].entity == "account"
        })
        .map(|(a, m)| (audience_column(a), m.clone()))
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

const WORDS: &[&str] = &[
    "alpha",
    "beta",
    "VP Data",
    "Head of IT",
    "Chief Data Officer",
    "",
];

/// Random rows for every schema of the plan, written as one JSONL file per
/// schema; the plan's sources are replaced by them.
fn random_data(plan: &mut Plan, rng: &mut Rng, root: &Path) {
    let now = accord::run::time::parse_timestamp(NOW).expect("now");
    let sizes: BTreeMap<&str, usize> = [("account", 40), ("person", 120)].into_iter().collect();
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut domains = Vec::new();
    // Parents before children: accounts, people, then everything else.
    let mut order: Vec<String> = plan.schemas.keys().cloned().collect();
    order.sort_by_key(|s| match plan.schemas[s].class.as_str() {
        "account" => 0,
        "person" => 1,
        _ => 2,
    });
    std::fs::create_dir_all(root.join("data")).expect("mkdir");
    for schema_name in &order {
        let schema = plan.schemas[schema_name].clone();
        let n = *sizes.get(schema.class.as_str()).unwrap_or(&150);
        let mut lines = String::new();
        let mut own = Vec::new();
        for i in 0..n {
            let mut row = serde_json::Map::new();
            for (field, f) in &schema.fields {
                let link = schema
                    .links
                    .values()
                    .find(|l| l.by.as_deref() == Some(field));
                let value = if Some(field) == schema.key.as_ref() {
                    let k = format!("{}-{i:04}", &schema_name[..3.min(schema_name.len())]);
                    own.push(k.clone());
                    serde_json::json!(k)
                } else if let Some(link) = link {
                    match keys.get(&link.to) {
                        Some(targets) if !targets.is_empty() && !rng.chance(20) => {
                            serde_json::json!(rng.pick(targets))
                        }
                        _ => serde_json::Value::Null,
                    }
                } else if rng.chance(10) {
                    serde_json::Value::Null
                } else {
                    match (f.ty.as_str(), f.identity.as_deref(), &f.values) {
                        ("string", Some("domain"), _) => {
                            // Unique, so the email-domain fallback is unambiguous.
                            let d = format!("d{i}.example");
                            domains.push(d.clone());
                            serde_json::json!(d)
                        }
                        ("string", Some("email"), _) => {
                            let d = if domains.is_empty() {
                                "none.example".to_string()
                            } else {
                                rng.pick(&domains).clone()
                            };
                            serde_json::json!(format!("p{i}@{d}"))
                        }
                        ("string", _, Some(values)) => serde_json::json!(rng.pick(values)),
                        ("string", _, None) => serde_json::json!(rng.pick(WORDS)),
                        ("int", _, _) => serde_json::json!(rng.below(2000) as i64),
                        ("double", _, _) => serde_json::json!(rng.below(100_000) as f64 / 10.0),
                        ("bool", _, _) => serde_json::json!(rng.chance(50)),
                        ("timestamp", _, _) => {
                            let t = now - (rng.below(120 * 86_400) as i64) * 1_000_000;
                            serde_json::json!(accord::run::time::format_timestamp(t))
                        }
                        ("list<string>", _, _) => serde_json::json!(
                            (0..rng.below(3))
                                .map(|_| *rng.pick(WORDS))
                                .collect::<Vec<_>>()
                        ),
                        ("list<int>", _, _) => serde_json::json!(
                            (0..rng.below(3)).map(|_| rng.below(10)).collect::<Vec<_>>()
                        ),
                        _ => serde_json::json!(
                            (0..rng.below(3))
                                .map(|_| rng.below(10) as f64)
                                .collect::<Vec<_>>()
                        ),
                    }
                };
                row.insert(field.clone(), value);
            }
            lines.push_str(&serde_json::Value::Object(row).to_string());
            lines.push('\n');
        }
        keys.insert(schema_name.clone(), own);
        std::fs::write(root.join(format!("data/{schema_name}.jsonl")), lines).expect("write");
    }
    plan.sources = plan
        .schemas
        .keys()
        .map(|s| {
            (
                format!("src_{s}"),
                SourcePlan {
                    schema: s.clone(),
                    path: format!("data/{s}.jsonl"),
                    format: "jsonl".into(),
                    max_age: None,
                    precedence: 1,
                    fingerprint: String::new(),
                },
            )
        })
        .collect();
}

/// A random boolean expression over `var` (a row of `schema`), depth-bounded.
fn predicate(plan: &Plan, schema: &str, var: &str, depth: u32, rng: &mut Rng) -> String {
    let s = &plan.schemas[schema];
    // Collections of this schema: links of other schemas pointing here.
    let collections: Vec<(String, String)> = plan
        .schemas
        .iter()
        .flat_map(|(child, cs)| {
            cs.links
                .values()
                .filter(|l| l.to == schema && l.reverse.is_some())
                .map(move |l| (l.reverse.clone().unwrap_or_default(), child.clone()))
        })
        .collect();
    let choice = rng.below(10);
    if depth > 0 && choice < 2 {
        let a = predicate(plan, schema, var, depth - 1, rng);
        let b = predicate(plan, schema, var, depth - 1, rng);
        return format!("({a} {} {b})", if rng.chance(50) { "&&" } else { "||" });
    }
    if depth > 0 && choice == 2 {
        return format!("!({})", predicate(plan, schema, var, depth - 1, rng));
    }
    if depth > 0 && choice < 6 && !collections.is_empty() {
        let (coll, child) = rng.pick(&collections).clone();
        let v = format!("v{depth}");
        let inner = predicate(plan, &child, &v, depth - 1, rng);
        return if rng.chance(50) {
            format!("{var}.{coll}.exists({v}, {inner})")
        } else {
            format!(
                "size({var}.{coll}.filter({v}, {inner})) >= {}",
                rng.below(3)
            )
        };
    }
    let fields: Vec<(&String, &accord::plan::FieldPlan)> = s.fields.iter().collect();
    let (name, f) = *rng.pick(&fields);
    match (f.ty.as_str(), &f.values) {
        ("string", Some(values)) => {
            if rng.chance(50) {
                format!("{var}.{name} == {:?}", rng.pick(values))
            } else {
                format!(
                    "{var}.{name} in [{:?}, {:?}]",
                    rng.pick(values),
                    rng.pick(values)
                )
            }
        }
        ("string", None) => format!("{var}.{name} == {:?}", rng.pick(WORDS)),
        ("int", _) => format!("{var}.{name} >= {}", rng.below(2000)),
        ("double", _) => format!("{var}.{name} < {}.5", rng.below(10_000)),
        ("bool", _) => format!("{var}.{name} == true"),
        ("timestamp", _) => format!("{var}.{name} > now - days({})", 1 + rng.below(90)),
        ("list<string>", _) => format!("{:?} in {var}.{name}", rng.pick(WORDS)),
        _ => "true".to_string(),
    }
}

#[test]
fn the_engine_agrees_with_the_interpreter_on_random_rules_and_data() {
    let base = sample_plan();
    let model = render::query::Model::new(&base);
    let account = model.account.clone();
    let mut checked = 0;
    for seed in 1..=4u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x1000_0001));
        let root =
            std::env::temp_dir().join(format!("accord-differential-{}-{seed}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut plan = base.clone();
        plan.activations.clear();
        plan.computed.clear();
        plan.audiences.clear();
        let mut n = 0;
        while plan.audiences.len() < 12 && n < 200 {
            n += 1;
            let expr = predicate(&base, &account, "account", 3, &mut rng);
            // Only rules the checker accepts: the checked language.
            if model.typed(&expr, false).is_err() {
                continue;
            }
            plan.audiences.insert(
                format!("B2B_Random_{}", plan.audiences.len()),
                AudiencePlan {
                    entity: "account".into(),
                    evaluation: "batch".into(),
                    definition: AudienceDefinition::Rule { expr },
                    depends_on: vec![],
                    parts: vec![],
                    labels: vec![],
                    reads: vec![],
                    fingerprint: String::new(),
                },
            );
        }
        assert!(
            plan.audiences.len() >= 6,
            "the generator makes checked rules"
        );
        random_data(&mut plan, &mut rng, &root);
        let result = both(&plan, &root);
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
        let _ = std::fs::remove_dir_all(&root);
    }
    assert!(checked >= 24);
}
