//! Property: governance never lets a violation through.
//!
//! Random small projects (labels on fields and on the schema, computed
//! attributes over labelled fields, policies with random deny expressions,
//! audiences reading random fields and attributes and referencing each other,
//! a composed audience with from, exclude, exclude_rule and rank by, mappings,
//! activation exclusions, destinations with random actions) are compiled in a
//! blocking environment. A brute-force evaluator computes each activated
//! audience's labels directly from the generated data; every (activation,
//! audience, policy) it finds in violation must be reported as an error, and
//! every reported violation must be one it finds.

use std::collections::BTreeSet;

use accord::compile::{self, Options};
use accord::source::{SourceFile, SourceSet};
use proptest::prelude::*;

#[path = "support/generated_project.rs"]
mod generated_project;
use generated_project::{LABELS, dataflow_labels, expected, project, render};

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
        prop_assert_eq!(&reported, &expected(&p), "in\n{}", text);
        // The lineage itself: the verdicts carry exactly the brute-force labels.
        let verdicts = compiled.verdicts.as_ref().expect("governance ran");
        for ((x, a), labels) in dataflow_labels(&p) {
            let got: BTreeSet<&str> = verdicts.activations[&x].audiences[&a]
                .labels
                .keys()
                .map(String::as_str)
                .collect();
            let want: BTreeSet<&str> = labels.iter().map(|l| LABELS[*l]).collect();
            prop_assert_eq!(got, want, "labels of {} in {}, in\n{}", a, x, text);
        }
    }
}
