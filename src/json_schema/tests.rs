//! The schema against the reader it describes: the same keys in every
//! table, and patterns that accept exactly what the reader's parsers accept.

use std::collections::BTreeSet;

use serde_json::Value;

use super::kinds::{DAILY_PATTERN, duration_pattern, kind_schema, name_pattern};
use super::schema;
use crate::source::{SourceFile, SourceSet};
use crate::syntax::{self, names::NameUse, reader::known_keys};

/// One table the reader reads: a project in which the reader meets it, the
/// name the reader gives it in messages, and where its schema is.
struct Probe {
    accord_toml: &'static str,
    spec: &'static str,
    what: &'static str,
    pointer: &'static str,
}

const PROJECT: &str = "[project]\nname = \"p\"\nformat = 1\n";

const PROBES: &[Probe] = &[
    Probe {
        accord_toml: PROJECT,
        spec: "",
        what: "`[project]`",
        pointer: "/$defs/project",
    },
    Probe {
        accord_toml: "[project]\nname = \"p\"\n[guardrails]\n",
        spec: "",
        what: "`[guardrails]`",
        pointer: "/$defs/guardrails",
    },
    Probe {
        accord_toml: "[project]\nname = \"p\"\n[environment.dev]\n",
        spec: "",
        what: "environment `dev`",
        pointer: "/$defs/environment",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[schema.s]\nclass = \"account\"\n[schema.s.fields]\nf = { type = \"string\" }\n[schema.s.links.l]\nto = \"t\"\n",
        what: "schema `s`",
        pointer: "/$defs/schema",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[schema.s]\nclass = \"account\"\n[schema.s.fields]\nf = { type = \"string\" }\n",
        what: "field `f` of schema `s`",
        pointer: "/$defs/field_table",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[schema.s]\nclass = \"account\"\nfields = {}\n[schema.s.links.l]\nto = \"t\"\n",
        what: "link `l` of schema `s`",
        pointer: "/$defs/link",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[label.l]\n",
        what: "label `l`",
        pointer: "/$defs/label",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[marketing_action.m]\n",
        what: "marketing action `m`",
        pointer: "/$defs/marketing_action",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[policy.p]\nactions = []\ndeny = \"C2\"\n",
        what: "policy `p`",
        pointer: "/$defs/policy",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[policy.core_C2_no_third_party_export]\nstatus = \"enabled\"\n",
        what: "policy `core_C2_no_third_party_export`",
        pointer: "/$defs/core_policy",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[consent.c]\nactions = []\nrequire = \"true\"\n",
        what: "consent policy `c`",
        pointer: "/$defs/consent",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[waiver.w]\n",
        what: "waiver `w`",
        pointer: "/$defs/waiver",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[audience.a]\nrule = \"true\"\n",
        what: "audience `a`",
        pointer: "/$defs/audience",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[audience.a]\ncompose.from = [\"b\"]\n",
        what: "the `compose` block of audience `a`",
        pointer: "/$defs/compose",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[audience.a]\ncompose.from = [\"b\"]\ncompose.rank = { by = \"x\" }\n",
        what: "the `rank` of audience `a`",
        pointer: "/$defs/rank",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[audience.a]\ncompose.from = [\"b\"]\ncompose.split = { percent = { t = 1 }, seed = \"s\" }\n",
        what: "the `split` of audience `a`",
        pointer: "/$defs/split_percent",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[audience.a]\ncompose.from = [\"b\"]\ncompose.split = { by = \"x\" }\n",
        what: "the `split` of audience `a`",
        pointer: "/$defs/split_by",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[computed.account.c]\ntype = \"int\"\nexpr = \"1\"\n",
        what: "computed attribute `account.c`",
        pointer: "/$defs/computed",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[activation.a]\n",
        what: "activation `a`",
        pointer: "/$defs/activation",
    },
    Probe {
        accord_toml: PROJECT,
        spec: "[source.s]\npath = \"a.csv\"\n",
        what: "source `s`",
        pointer: "/$defs/source",
    },
];

/// The keys the reader knew when it finished the table `what` of a project.
fn reader_keys(accord_toml: &str, spec: &str, what: &str) -> BTreeSet<String> {
    let sources = SourceSet::new(vec![
        SourceFile::new("accord.toml", accord_toml),
        SourceFile::new("spec.toml", spec),
    ]);
    known_keys::take();
    let _ = syntax::parse(&sources);
    let read = known_keys::take();
    let (_, keys) = read
        .iter()
        .find(|(name, _)| name == what)
        .unwrap_or_else(|| {
            let names: Vec<&String> = read.iter().map(|(n, _)| n).collect();
            panic!("the reader read no table `{what}`; it read {names:?}")
        });
    keys.iter().map(|k| k.to_string()).collect()
}

fn schema_keys(schema: &Value, pointer: &str) -> BTreeSet<String> {
    let table = schema
        .pointer(pointer)
        .unwrap_or_else(|| panic!("the schema has nothing at {pointer}"));
    table["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{pointer} has no properties"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn every_table_has_the_keys_the_reader_knows() {
    let schema = schema();
    for probe in PROBES {
        let read = reader_keys(probe.accord_toml, probe.spec, probe.what);
        let described = schema_keys(&schema, probe.pointer);
        assert_eq!(
            read, described,
            "{}: the reader's keys (left) and the schema's at {} (right) differ; \
             describe the key in src/json_schema/kinds.rs",
            probe.what, probe.pointer
        );
    }
}

/// Destinations: the reader reads the keys common to every type and leaves
/// the rest to the catalog; each type's schema has the common keys, that
/// type's settings and nothing else.
#[test]
fn every_destination_type_has_the_reader_keys_and_its_catalog_settings() {
    let schema = schema();
    let read = reader_keys(
        PROJECT,
        "[destination.d]\ntype = \"s3\"\n",
        "destination `d`",
    );
    let delivery: BTreeSet<String> = syntax::delivery_keys::KEYS
        .iter()
        .map(|k| k.to_string())
        .collect();
    // `fields` and the delivery keys are read for every type, then judged
    // per type against the catalog (only types with such settings take them).
    let common: BTreeSet<String> = read
        .iter()
        .filter(|k| *k != "fields" && !delivery.contains(*k))
        .cloned()
        .collect();
    assert_eq!(common, schema_keys(&schema, "/$defs/destination/allOf/0"));
    let per_type = &schema["$defs"]["destination"]["allOf"].as_array().unwrap()[1..];
    assert_eq!(per_type.len(), crate::catalog::all().len());
    for (ty, branch) in crate::catalog::all().iter().zip(per_type) {
        assert_eq!(branch["if"]["properties"]["type"]["const"], ty.name);
        let mut expected = common.clone();
        expected.extend(
            ty.settings
                .iter()
                .chain(ty.delivery_settings())
                .map(|s| s.key.to_string()),
        );
        let described: BTreeSet<String> = branch["then"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(described, expected, "destination type {}", ty.name);
        for key in read.iter().filter(|k| !common.contains(*k)) {
            assert!(
                ty.setting(key).is_some()
                    || ty.delivery_settings().iter().any(|s| s.key == key)
                    || !described.contains(key),
                "{}: `{key}`",
                ty.name
            );
        }
    }
}

#[test]
fn every_spec_kind_is_described() {
    let schema = schema();
    let described: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let kinds: BTreeSet<&str> = syntax::KINDS
        .iter()
        .chain(syntax::PROJECT_KINDS)
        .copied()
        .collect();
    for kind in &kinds {
        assert!(
            kind_schema(kind).is_some(),
            "spec kind `{kind}` has no schema: describe it in src/json_schema/kinds.rs"
        );
    }
    assert_eq!(described, kinds);
}

#[test]
fn every_key_has_a_description() {
    fn walk(at: &str, value: &Value, missing: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                // An `if` names keys to test them, not to describe them.
                if let Some(Value::Object(properties)) = object.get("properties")
                    && !at.ends_with("/if")
                {
                    for (name, property) in properties {
                        let described = property
                            .get("description")
                            .is_some_and(|d| d.as_str().is_some_and(|d| !d.trim().is_empty()));
                        if !described {
                            missing.push(format!("{at}/properties/{name}"));
                        }
                    }
                }
                for (name, child) in object {
                    walk(&format!("{at}/{name}"), child, missing);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(&format!("{at}/{i}"), item, missing);
                }
            }
            _ => {}
        }
    }
    let mut missing = Vec::new();
    walk("", &schema(), &mut missing);
    assert!(
        missing.is_empty(),
        "keys without a description: {missing:#?}"
    );
}

fn matches(pattern: &str, text: &str) -> bool {
    regex::Regex::new(pattern).unwrap().is_match(text)
}

#[test]
fn the_schedule_pattern_accepts_what_the_resolver_parses() {
    use crate::resolve::activations::parse_schedule;
    let fixed: Vec<&str> = crate::catalog::ScheduleKind::ALL
        .iter()
        .filter(|k| **k != crate::catalog::ScheduleKind::Daily)
        .map(|k| k.as_str())
        .collect();
    // The resolver also trims the text; the schema asks for the spelling
    // without padding, as every example writes it.
    let accepts = |text: &str| fixed.contains(&text) || matches(DAILY_PATTERN, text);
    let mut texts: Vec<String> = (0..25)
        .flat_map(|h| (0..61).map(move |m| format!("daily@{h:02}:{m:02}")))
        .collect();
    texts.extend(
        [
            "daily",
            "daily@2:00",
            "daily@02:0",
            "Daily@02:00",
            "every 3h",
            "every 5h",
            "every 12h",
            "every  3h",
            "streaming",
            "hourly",
            "",
        ]
        .map(String::from),
    );
    for text in &texts {
        assert_eq!(
            accepts(text),
            parse_schedule(text).is_some(),
            "schedule `{text}`"
        );
    }
}

#[test]
fn the_name_patterns_accept_what_the_reader_allows() {
    let long = "a".repeat(crate::syntax::names::MAX_LEN);
    let too_long = "a".repeat(crate::syntax::names::MAX_LEN + 1);
    let samples = [
        "B2B_ICP",
        "icp-linkedin",
        "_x",
        "9lives",
        "-x",
        "a.b",
        "a b",
        "a/b",
        "..",
        ".x",
        "",
        "é",
        "x-",
        &long,
        &too_long,
    ];
    for name_use in [NameUse::File, NameUse::Identifier] {
        let pattern = name_pattern(name_use);
        for name in samples {
            assert_eq!(
                matches(&pattern, name),
                crate::syntax::names::problem(name, name_use).is_none(),
                "{name_use:?} name `{name}`"
            );
        }
    }
}

#[test]
fn the_duration_pattern_accepts_what_the_parser_reads() {
    for text in [
        "26h", " 7d ", "2w", "90m", "30s", "0s", "00h", "01h", "26 hours", "26", "-3d", "+3d",
        "1.5h", "1d2h", "", "h",
    ] {
        assert_eq!(
            matches(&duration_pattern(), text),
            crate::duration::parse_micros(text).is_ok(),
            "duration `{text}`"
        );
    }
}

#[test]
fn the_text_is_the_same_every_time() {
    assert_eq!(super::text(), super::text());
    assert!(super::text().ends_with("}\n"));
}

#[test]
fn every_definition_is_used() {
    let text = super::text();
    let schema = schema();
    for name in schema["$defs"].as_object().unwrap().keys() {
        assert!(
            text.contains(&format!("\"#/$defs/{name}\"")),
            "`$defs/{name}` is never referred to"
        );
    }
}
