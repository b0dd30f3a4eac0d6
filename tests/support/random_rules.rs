//! Random audiences within the checked language over random data, for the
//! differential tests (engine against interpreter, Spark against the
//! embedded engine): a seeded generator writes rules over the example
//! project's schemas and one JSONL file of rows per schema.

use std::collections::BTreeMap;
use std::path::Path;

use accord::plan::{AudienceDefinition, AudiencePlan, Entity, Evaluation, Plan, SourcePlan};
use accord::semantics;

use super::rng::Rng;

/// The evaluation time the random data is written around.
pub const NOW: &str = "2026-11-28T12:00:00Z";

pub type Predicate = fn(&Plan, &str, &str, u32, &mut Rng) -> String;

/// `base` with its activations, computed attributes and audiences replaced
/// by up to 12 checked random account rules (generator stream `stream`,
/// `seed`), its sources by random rows written under `root`.
pub fn random_plan(
    base: &Plan,
    stream: u64,
    seed: u64,
    predicate: Predicate,
    words: &[&str],
    root: &Path,
) -> Plan {
    let model = semantics::Model::new(base);
    let account = model.account.clone();
    let mut rng = Rng(stream ^ seed.wrapping_mul(0x1000_0001));
    let mut plan = base.clone();
    plan.activations.clear();
    plan.computed.clear();
    plan.audiences.clear();
    let mut n = 0;
    while plan.audiences.len() < 12 && n < 200 {
        n += 1;
        let expr = predicate(base, &account, "account", 3, &mut rng);
        // Only rules the checker accepts: the checked language.
        if model.typed(&expr, false).is_err() {
            continue;
        }
        plan.audiences.insert(
            format!("B2B_Random_{}", plan.audiences.len()),
            AudiencePlan {
                entity: Entity::Account,
                evaluation: Evaluation::Batch,
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
    random_data(&mut plan, &mut rng, root, words);
    plan
}

pub const WORDS: &[&str] = &[
    "alpha",
    "beta",
    "VP Data",
    "Head of IT",
    "Chief Data Officer",
    "",
];

/// Random rows for every schema of the plan, written as one JSONL file per
/// schema; the plan's sources are replaced by them.
fn random_data(plan: &mut Plan, rng: &mut Rng, root: &Path, words: &[&str]) {
    let now = accord::time::parse_timestamp(NOW).expect("now");
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
                        ("string", _, None) => serde_json::json!(rng.pick(words)),
                        ("int", _, _) => serde_json::json!(rng.below(2000) as i64),
                        ("double", _, _) => serde_json::json!(rng.below(100_000) as f64 / 10.0),
                        ("bool", _, _) => serde_json::json!(rng.chance(50)),
                        ("timestamp", _, _) => {
                            let t = now - (rng.below(120 * 86_400) as i64) * 1_000_000;
                            serde_json::json!(accord::time::format_timestamp(t))
                        }
                        ("list<string>", _, _) => serde_json::json!(
                            (0..rng.below(3))
                                .map(|_| *rng.pick(words))
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
                SourcePlan::files(
                    s,
                    &format!("data/{s}.jsonl"),
                    accord::plan::SourceFormat::Jsonl,
                ),
            )
        })
        .collect();
}

/// The collections of `schema`'s rows, `(name, child schema)`: the
/// reverse links of other schemas pointing here.
fn collections_of(plan: &Plan, schema: &str) -> Vec<(String, String)> {
    plan.schemas
        .iter()
        .flat_map(|(child, cs)| {
            cs.links
                .values()
                .filter(|l| l.to == schema && l.reverse.is_some())
                .map(move |l| (l.reverse.clone().unwrap_or_default(), child.clone()))
        })
        .collect()
}

/// A random boolean expression over `var` (a row of `schema`), depth-bounded.
pub fn predicate(plan: &Plan, schema: &str, var: &str, depth: u32, rng: &mut Rng) -> String {
    let s = &plan.schemas[schema];
    let collections = collections_of(plan, schema);
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

/// Rules over a collection whose elements' conditions read collections of
/// their own (`account.people.exists(p, p.emailOpens.exists(..) && ..)`):
/// conjunctions, disjunctions, negations and size comparisons of every
/// operator and side, where an element with no row in its own collection
/// can or cannot pass. The rest as [`predicate`].
pub fn nested_predicate(plan: &Plan, schema: &str, var: &str, depth: u32, rng: &mut Rng) -> String {
    let collections = collections_of(plan, schema);
    if depth == 0 || collections.is_empty() || rng.below(5) == 0 {
        return predicate(plan, schema, var, 0, rng);
    }
    match rng.below(6) {
        0 => format!(
            "({} {} {})",
            nested_predicate(plan, schema, var, depth - 1, rng),
            if rng.chance(50) { "&&" } else { "||" },
            nested_predicate(plan, schema, var, depth - 1, rng)
        ),
        1 => format!("!({})", nested_predicate(plan, schema, var, depth - 1, rng)),
        2 => {
            let (coll, child) = rng.pick(&collections).clone();
            let v = format!("v{depth}");
            let inner = nested_predicate(plan, &child, &v, depth - 1, rng);
            let k = rng.below(3);
            match rng.below(6) {
                0 => format!("size({var}.{coll}.filter({v}, {inner})) == {k}"),
                1 => format!("size({var}.{coll}.filter({v}, {inner})) > {k}"),
                2 => format!("{k} <= size({var}.{coll}.filter({v}, {inner}))"),
                3 => format!("{k} < size({var}.{coll}.filter({v}, {inner}))"),
                4 => format!("size({var}.{coll}.filter({v}, {inner})) <= {k}"),
                _ => format!("size({var}.{coll}.filter({v}, {inner})) != {k}"),
            }
        }
        3 => {
            let (coll, child) = rng.pick(&collections).clone();
            let v = format!("v{depth}");
            let inner = nested_predicate(plan, &child, &v, depth - 1, rng);
            format!("{var}.{coll}.all({v}, {inner})")
        }
        _ => {
            let (coll, child) = rng.pick(&collections).clone();
            let v = format!("v{depth}");
            let inner = nested_predicate(plan, &child, &v, depth - 1, rng);
            let m = rng.pick(&["exists", "exists", "exists_one"]);
            format!("{var}.{coll}.{m}({v}, {inner})")
        }
    }
}

/// Overflow, division and regex-escape shapes over `var`: ints times, plus
/// and minus numbers at the edge of the int range, unary minus, division and
/// remainder by 0 and -1, sums of large products, and patterns with a
/// literal backslash, `\s`, `\b`, `\d` and `(?i)` over texts holding
/// backslashes and tabs (`EDGE_WORDS`).
pub fn edge_predicate(plan: &Plan, schema: &str, var: &str, depth: u32, rng: &mut Rng) -> String {
    let s = &plan.schemas[schema];
    let of_type = |ty: &str| -> Vec<String> {
        s.fields
            .iter()
            .filter(|(_, f)| f.ty == ty && f.values.is_none())
            .map(|(n, _)| n.clone())
            .collect()
    };
    let (ints, strings) = (of_type("int"), of_type("string"));
    let collections = collections_of(plan, schema);
    let op = *rng.pick(&["==", "!=", "<", "<=", ">", ">="]);
    let big = *rng.pick(&[
        "9223372036854775807",
        "-9223372036854775807",
        "4611686018427387904",
        "3037000500",
        "-1",
        "2",
    ]);
    let choice = rng.below(10);
    if depth > 0 && choice < 2 {
        let a = edge_predicate(plan, schema, var, depth - 1, rng);
        let b = edge_predicate(plan, schema, var, depth - 1, rng);
        return format!("({a} {} {b})", if rng.chance(50) { "&&" } else { "||" });
    }
    if depth > 0 && choice == 2 {
        return format!("!({})", edge_predicate(plan, schema, var, depth - 1, rng));
    }
    if depth > 0 && choice == 3 && !collections.is_empty() {
        let (coll, child) = rng.pick(&collections).clone();
        let v = format!("v{depth}");
        let inner = edge_predicate(plan, &child, &v, depth - 1, rng);
        return format!("{var}.{coll}.exists({v}, {inner})");
    }
    if choice == 4 && !collections.is_empty() {
        let (coll, child) = rng.pick(&collections).clone();
        let child_ints: Vec<String> = plan.schemas[&child]
            .fields
            .iter()
            .filter(|(_, f)| f.ty == "int")
            .map(|(n, _)| n.clone())
            .collect();
        if let Some(field) = child_ints.first() {
            return format!("sum({var}.{coll}.map(x, x.{field} * {big})) {op} 0");
        }
    }
    if choice >= 7 && !strings.is_empty() {
        let field = rng.pick(&strings);
        let pattern = *rng.pick(&[
            r"k\\\\s",
            r"k\\s",
            r"\\\\",
            r"(?i)^K",
            r"\\bdata\\b",
            r"\\d",
            r"\\t",
            r"^a\\\\b$",
            r"\\w\\s\\w",
        ]);
        return format!("{var}.{field}.matches(\"{pattern}\")");
    }
    let Some(field) = (!ints.is_empty()).then(|| rng.pick(&ints).clone()) else {
        return "true".to_string();
    };
    match rng.below(5) {
        0 => format!("{var}.{field} * {big} {op} 0"),
        1 => format!("{var}.{field} + {big} {op} 0"),
        2 => format!("{var}.{field} - {big} {op} 0"),
        3 => format!("-({var}.{field} - {big}) {op} 0"),
        _ => format!(
            "{var}.{field} {} {} {op} 1",
            rng.pick(&["/", "%"]),
            rng.pick(&["0", "-1", "7"])
        ),
    }
}

/// Texts for the regex-escape shapes: backslashes, tabs, a word boundary.
pub const EDGE_WORDS: &[&str] = &[
    "k\\s",
    "ks",
    "k s",
    "a\\b",
    "tab\there",
    "big data",
    "K9",
    "",
];
