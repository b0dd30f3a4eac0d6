//! Verification, not trust: the rendered DuckDB SQL, run in a real DuckDB
//! over the sample data of `specs/`, gives exactly the CEL interpreter's
//! membership for every audience and split part; every export query runs.
//!
//! Needs the `duckdb` python package (`scripts/test` installs it); without it the
//! test fails and says so, it never skips.

#[path = "support/data.rs"]
mod data;
#[path = "support/plans.rs"]
mod plans;
#[path = "support/temp.rs"]
mod temp;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::rc::Rc;

use accord::render;
use accord::semantics;
use accord::time::parse_timestamp;

const NOW: &str = "2026-11-28T00:00:00Z";

fn require_python_module(module: &str) {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the `{module}` python package is missing: run the tests with `scripts/test`, which installs it"
    );
}

#[test]
fn duckdb_sql_agrees_with_the_interpreter_on_the_example_project() {
    differential("specs", true);
}

/// Compositions (intersection, exclude_overlap, ascending rank with missing
/// values and ties, three-part split, split by attribute without `other`)
/// and the CEL constructs over data with missing values and empty lists.
#[test]
fn duckdb_sql_agrees_with_the_interpreter_on_edge_cases() {
    let exports = differential("tests/render_projects/semantics", false);
    // Identity normalisation happened (both sides agreeing is not enough):
    // LinkedIn gets the bare domain, the Trade Desk the gmail-normalised hash.
    let text = |name: &str| exports[name].to_string();
    assert!(text("gold_linkedin").contains("\"omega.example\""));
    let gmail = accord::hash::sha256_hex("janedoe@gmail.com");
    assert!(text("ttd_crm").contains(&gmail), "{}", text("ttd_crm"));
    // googlemail.com is gmail.com (dots, `+suffix` and domain); an address
    // with a second `@` is not a gmail address, only lower-cased.
    for address in ["jsmith@gmail.com", "x.y@gmail.com@other.example"] {
        let hash = accord::hash::sha256_hex(address);
        assert!(
            text("ttd_crm").contains(&hash),
            "{address}: {}",
            text("ttd_crm")
        );
    }
    // Phones that are not E.164 after normalisation leave as a missing
    // identity (NULL), valid ones hashed with `+` and their digits.
    let phone = |person: &str| -> Vec<serde_json::Value> {
        exports["people_files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|row| row[2] == person)
            .map(|row| row[4].clone())
            .collect()
    };
    let valid = accord::hash::sha256_hex("+15550100001");
    assert!(phone("P01").iter().all(|p| p == &serde_json::json!(valid)));
    for invalid in ["P02", "P05", "P06", "P07", "P13"] {
        assert!(
            phone(invalid).iter().all(serde_json::Value::is_null),
            "{invalid}: {:?}",
            phone(invalid)
        );
    }
    assert!(
        !phone("P01").is_empty() && !phone("P13").is_empty(),
        "people with and without a valid phone are exported: {}",
        text("people_files")
    );
}

/// Random rules over the edge-case project's schemas and data: a fixed-seed
/// generator writes 300 audiences (comparisons, missing values, `in`, string
/// functions, every macro over people, lists and events, sizes and
/// aggregates, `!`, `&&`, `||`, `?:`), and every one must agree.
#[test]
fn duckdb_sql_agrees_with_the_interpreter_on_random_rules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/render_projects/semantics");
    let dir = temp::dir("random-rules");
    copy_dir(&src, dir.path());
    let mut generator = Gen(0x5eed_2026);
    let mut text = String::new();
    for i in 0..300 {
        let rule = generator.rule(3);
        text.push_str(&format!("[audience.R_{i:03}]\nrule = '''{rule}'''\n\n"));
    }
    std::fs::write(dir.path().join("random.toml"), &text).expect("write random rules");
    differential(dir.path().to_str().expect("utf-8 temp path"), false);
}

/// Random rules at the edges, from their own generator stream (the rules
/// above stay as committed): integer overflow in `+`, `-`, `*`, unary
/// minus and `sum`, division and remainder by zero and by -1, and regular
/// expressions with escapes (a literal backslash, `\s`, `\b`, `\d`, `(?i)`)
/// over names and tags holding backslashes and tabs, where the interpreter
/// says missing (so false) and engines used to wrap, fail or match.
#[test]
fn duckdb_sql_agrees_with_the_interpreter_on_overflow_and_regex_rules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/render_projects/semantics");
    let dir = temp::dir("edge-rules");
    copy_dir(&src, dir.path());
    let mut generator = Gen(0x000e_d9e5_2026);
    let mut text = String::new();
    for i in 0..200 {
        let rule = generator.edge_rule(2);
        text.push_str(&format!("[audience.E_{i:03}]\nrule = '''{rule}'''\n\n"));
    }
    std::fs::write(dir.path().join("edge.toml"), &text).expect("write edge rules");
    differential(dir.path().to_str().expect("utf-8 temp path"), false);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// A small deterministic generator of CEL rules (an LCG: no dependency, the
/// same rules on every machine).
struct Gen(u64);

impl Gen {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next(items.len())]
    }

    fn op(&mut self) -> &'static str {
        self.pick(&["==", "!=", "<", "<=", ">", ">="])
    }

    fn rule(&mut self, depth: u32) -> String {
        if depth == 0 || self.next(3) == 0 {
            return self.atom();
        }
        let (a, b) = (self.rule(depth - 1), self.rule(depth - 1));
        match self.next(5) {
            0 => format!("!({a})"),
            1 | 2 => format!("({a} && {b})"),
            3 => format!("({a} || {b})"),
            _ => {
                let c = self.rule(depth - 1);
                format!("({a} ? {b} : {c})")
            }
        }
    }

    fn edge_rule(&mut self, depth: u32) -> String {
        if depth == 0 || self.next(3) == 0 {
            return self.edge_atom();
        }
        let (a, b) = (self.edge_rule(depth - 1), self.edge_rule(depth - 1));
        match self.next(4) {
            0 => format!("!({a})"),
            1 | 2 => format!("({a} && {b})"),
            _ => format!("({a} || {b})"),
        }
    }

    /// Overflow, division and regex shapes. Patterns are CEL source inside
    /// a TOML literal string: `\\\\` is one literal backslash in the regex.
    fn edge_atom(&mut self) -> String {
        let op = self.op();
        let big = [
            "9223372036854775807",
            "-9223372036854775807",
            "3037000500",
            "2",
            "-1",
        ];
        match self.next(12) {
            0 => format!(
                "account.employees {} {} {op} {}",
                self.pick(&["*", "+", "-"]),
                self.pick(&big),
                self.pick(&["0", "100"])
            ),
            1 => format!("-account.employees {op} {}", self.pick(&["0", "5"])),
            2 => format!(
                "account.employees {} {} {op} {}",
                self.pick(&["/", "%"]),
                self.pick(&["2", "-1", "0", "7"]),
                self.pick(&["0", "1"])
            ),
            3 => format!(
                "account.employees / (account.employees - {}) {op} 0",
                self.pick(&["21", "0", "100"])
            ),
            4 => format!("sum(account.scores) {op} {}", self.pick(&["0", "5"])),
            5 => format!(
                "sum(account.scores.map(s, s * {})) {op} 0",
                self.pick(&["2", "1", "-1"])
            ),
            6 => format!(
                "account.scores.exists(s, s {} {} > 0)",
                self.pick(&["*", "+", "-"]),
                self.pick(&big)
            ),
            7 => format!("size(account.scores) * {} {op} 0", self.pick(&big)),
            8 => format!(
                "account.revenue / {} {op} 1.0",
                self.pick(&["0.0", "2.0", "-0.5"])
            ),
            9 | 10 => format!(
                "account.name.matches(\"{}\")",
                self.pick(&[
                    r"k\\\\s",
                    r"k\\s",
                    r"^k",
                    r"\\.$",
                    r"[.]",
                    r"(?i)k s",
                    r"\\bS\\b",
                    r"\\d",
                    r"\\w+\\s\\w+",
                    r"Max$|Min$",
                    r"\\t",
                    r"^[^a-z]",
                ])
            ),
            _ => format!(
                "account.tags.exists(t, t.matches(\"{}\"))",
                self.pick(&[
                    r"a\\\\b",
                    r"k\\\\\\\\s",
                    r"^k\\s",
                    r"\\\\",
                    r"^ks$",
                    r"\\bb"
                ])
            ),
        }
    }

    fn person(&mut self) -> String {
        let k = self.pick(&["0", "18", "40", "60"]);
        let op = self.op();
        match self.next(7) {
            0 => format!("p.age {op} {k}"),
            1 => format!("p.title == \"{}\"", self.pick(&["CTO", "VP", ""])),
            2 => "p.title.endsWith(\"CTO\")".to_string(),
            3 => format!(
                "p.visits.exists(v, v.seconds >= {})",
                self.pick(&["1", "10", "30"])
            ),
            4 => "p.visits.all(v, v.at > now - days(5))".to_string(),
            5 => "p.age == null".to_string(),
            _ => format!("size(p.visits) {op} 1"),
        }
    }

    fn atom(&mut self) -> String {
        let op = self.op();
        match self.next(18) {
            0 => format!(
                "account.employees {op} {}",
                self.pick(&["0", "50", "100", "250", "1000"])
            ),
            1 => format!(
                "account.revenue {op} {}",
                self.pick(&["1.5", "5.5", "7.0", "2"])
            ),
            2 => format!(
                "account.tier {} \"{}\"",
                self.pick(&["==", "!="]),
                self.pick(&["gold", "silver", "bronze"])
            ),
            3 => "account.tier in [\"gold\", \"silver\"]".to_string(),
            4 => format!("account.tier {} null", self.pick(&["==", "!="])),
            5 => "\"vip\" in account.tags".to_string(),
            6 => "account.tags.exists(t, t.startsWith(\"b\"))".to_string(),
            7 => format!("account.scores.all(s, s > {})", self.pick(&["0", "2", "4"])),
            8 => format!("size(account.scores) {op} {}", self.pick(&["0", "1", "2"])),
            9 => {
                let m = self.pick(&["exists", "all", "exists_one"]);
                // `contacts`: the many-to-many collection (relation schema).
                let c = self.pick(&["people", "contacts"]);
                let p = self.person();
                format!("account.{c}.{m}(p, {p})")
            }
            10 => {
                let p = self.person();
                let k = self.pick(&["0", "1", "2"]);
                format!("size(account.people.filter(p, {p})) {op} {k}")
            }
            11 => format!(
                "{}(account.people.map(p, {}p.age)) {op} {}",
                self.pick(&["sum", "max", "min"]),
                self.pick(&["", "p.age > 30, ", "p.title != \"\", "]),
                self.pick(&["17", "40", "100"])
            ),
            12 => format!(
                "account.name.startsWith(\"{}\")",
                self.pick(&["A", "Z", "Be"])
            ),
            13 => "account.domain.endsWith(\".example\")".to_string(),
            14 => format!(
                "account.createdAt > now - days({})",
                self.pick(&["30", "200", "400"])
            ),
            15 => format!("account.visitors {op} 1"),
            16 => format!(
                "(account.employees + 10) * 2 {op} {}",
                self.pick(&["100", "500"])
            ),
            _ => format!(
                "lower(account.name).contains(\"{}\")",
                self.pick(&["a", "corp", "x"])
            ),
        }
    }
}

/// Runs the project's audiences and exports in DuckDB and in the
/// interpreter and compares them; `populated`: every audience and export of
/// the project must have members, so agreement is not vacuous.
fn differential(project: &str, populated: bool) -> serde_json::Value {
    require_python_module("duckdb");
    // A relative project is under the crate; an absolute one anywhere.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(project);
    let plan = plans::plan_of(&root, "dev");
    let now = parse_timestamp(NOW).expect("now");

    // The reference: the interpreter over the same typed rows.
    let tables = data::load(&plan, &root);
    let (mut accounts, people) = data::records(&plan, &tables);
    semantics::add_computed(&plan, &mut accounts, now).expect("computed attributes evaluate");
    let accounts: Vec<Rc<_>> = accounts.into_iter().map(Rc::new).collect();
    let expected_accounts =
        semantics::account_memberships(&plan, &accounts, now).expect("audiences evaluate");
    let expected_people = semantics::person_memberships(&plan, &accounts, &people, now)
        .expect("person audiences evaluate");

    // The rendered jobs, run by DuckDB.
    let (jobs, problems) = render::render(
        &plan,
        &render::Options {
            dialects: vec!["duckdb".into()],
            ..render::Options::default()
        },
    );
    assert!(problems.is_empty(), "{problems:?}");
    let scratch = temp::dir("render-duckdb");
    let tmp = scratch.path();
    data::write_canonical(&plan, &tables, &tmp.join("data"));
    let columns = serde_json::json!({
        "account": render::query::audience_columns(&plan, "account"),
        "person": render::query::audience_columns(&plan, "person"),
    });
    std::fs::write(tmp.join("data/audiences.json"), columns.to_string()).expect("write audiences");
    for (path, text) in &jobs {
        let target = tmp.join("jobs").join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(&target, text).expect("write job");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/duckdb_run.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(tmp.join("data"))
        .arg(tmp.join("jobs/sql/duckdb"))
        .arg("2026-11-28 00:00:00")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "duckdb failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json result");

    let got = |side: &str| -> BTreeMap<String, BTreeSet<String>> {
        result[side]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !k.starts_with("__pre_"))
                    .map(|(k, v)| {
                        let keys = v
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|x| x.as_str().map(String::from))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (k.clone(), keys)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (got_accounts, got_people) = (got("accounts"), got("people"));
    assert_eq!(
        got_accounts.keys().collect::<Vec<_>>(),
        expected_accounts.keys().collect::<Vec<_>>(),
        "the same audience columns"
    );
    for (audience, expected) in &expected_accounts {
        let got = &got_accounts[audience];
        assert_eq!(
            got,
            expected,
            "{audience}: duckdb only {:?}, interpreter only {:?}",
            got.difference(expected).collect::<Vec<_>>(),
            expected.difference(got).collect::<Vec<_>>()
        );
    }
    assert_eq!(got_people, expected_people);
    // The sample data exercises every audience: none is trivially empty
    // (which would make agreement meaningless).
    let empty: Vec<&String> = expected_accounts
        .iter()
        .chain(&expected_people)
        .filter(|(_, m)| m.is_empty())
        .map(|(a, _)| a)
        .collect();
    assert!(
        !populated || empty.is_empty(),
        "audiences without members in the sample data: {empty:?}"
    );
    for (a, m) in expected_accounts.iter().chain(&expected_people) {
        eprintln!("{a}: {}", m.len());
    }
    let exports = result["exports"].as_object().expect("exports ran");
    assert_eq!(
        exports.len(),
        plan.activations.len(),
        "every export query ran"
    );

    // Export rows: the same accounts, people and mapped values.
    let mut consent_removed = 0;
    for name in plan.activations.keys() {
        let expected = semantics::export_rows(
            &plan,
            name,
            &accounts,
            &people,
            &expected_accounts,
            &expected_people,
            now,
        )
        .expect("export rows evaluate");
        let consent: BTreeMap<String, u64> = result["consent"]
            .get(name)
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        assert_eq!(
            consent, expected.consent_excluded,
            "{name}: rows removed by consent, duckdb against the interpreter"
        );
        consent_removed += consent.values().sum::<u64>();
        let mut expected: Vec<serde_json::Value> = expected
            .rows
            .iter()
            .map(|r| {
                let mut row = vec![
                    serde_json::json!(r.audience),
                    serde_json::json!(r.account),
                    serde_json::json!(r.person),
                ];
                row.extend(r.values.iter().map(json_of));
                serde_json::Value::Array(row)
            })
            .collect();
        let mut got: Vec<serde_json::Value> = exports[name].as_array().cloned().unwrap_or_default();
        let key = |v: &serde_json::Value| v.to_string();
        expected.sort_by_key(key);
        got.sort_by_key(key);
        eprintln!("{name}: {} rows", got.len());
        assert!(
            !populated || !expected.is_empty(),
            "{name}: no rows in the sample data"
        );
        if got != expected {
            let only_sql: Vec<_> = got
                .iter()
                .filter(|r| !expected.contains(r))
                .take(3)
                .collect();
            let only_cel: Vec<_> = expected
                .iter()
                .filter(|r| !got.contains(r))
                .take(3)
                .collect();
            panic!(
                "{name}: export rows differ ({} from duckdb, {} from the interpreter); duckdb only: {only_sql:?}; interpreter only: {only_cel:?}",
                got.len(),
                expected.len()
            );
        }
    }
    let consent_applies = plan
        .activations
        .values()
        .any(|a| a.rows == accord::plan::Entity::Person && !a.consent.is_empty());
    assert!(
        !populated || !consent_applies || consent_removed > 0,
        "consent removes no row in the sample data"
    );
    result["exports"].clone()
}

fn json_of(v: &accord::semantics::Value) -> serde_json::Value {
    use accord::semantics::Value;
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::json!(b),
        Value::Int(i) => serde_json::json!(i),
        Value::Double(d) => serde_json::json!(d),
        Value::Str(s) => serde_json::json!(s),
        Value::Timestamp(t) => serde_json::json!(data::timestamp_text(*t)),
        other => serde_json::json!(format!("{other:?}")),
    }
}
