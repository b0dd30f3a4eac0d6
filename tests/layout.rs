//! `accord fmt`'s promises, over every spec project in the repository (the
//! example, the clean fixtures, the diff pairs): formatting never changes
//! the compiled plan's fingerprint, formatting twice changes nothing, and
//! the layout does not depend on the order keys were written in (a property
//! test shuffles them).

#[path = "support/project.rs"]
mod project;
#[path = "support/temp.rs"]
mod temp;

use std::path::{Path, PathBuf};

use accord::compile::{self, Options};
use proptest::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every project folder that compiles to a plan.
fn projects() -> Vec<PathBuf> {
    let mut out = vec![root().join("specs")];
    for entry in std::fs::read_dir(root().join("tests/fixtures")).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("valid_"))
        {
            out.push(path);
        }
    }
    for entry in std::fs::read_dir(root().join("tests/diff")).expect("diff pairs") {
        let path = entry.expect("entry").path();
        out.push(path.join("old"));
        out.push(path.join("new"));
    }
    out.sort();
    out
}

fn fingerprint(dir: &Path) -> String {
    let options = Options {
        today: compile::parse_date("2026-11-28"),
        ..Options::default()
    };
    let compiled = compile::check(dir, &options).expect("loads");
    compile::plan(&compiled)
        .unwrap_or_else(|| panic!("{} has a plan", dir.display()))
        .fingerprint
}

/// The project's spec files: (path relative to it, text).
fn spec_files(dir: &Path) -> Vec<(String, String)> {
    let sources = accord::load::load(dir).expect("loads");
    sources
        .iter()
        .map(|(_, f)| (f.path.clone(), f.text.clone()))
        .collect()
}

#[test]
fn formatting_keeps_the_plan_and_is_idempotent() {
    for dir in projects() {
        let tmp = temp::dir("layout");
        let copy = tmp.path().join("p");
        project::copy_tree(&dir, &copy);
        let before = fingerprint(&copy);
        for (path, text) in spec_files(&copy) {
            let once = accord::layout::format(&text).expect("formats");
            let twice = accord::layout::format(&once).expect("formats");
            assert_eq!(
                once,
                twice,
                "{}/{path}: formatting twice changes it",
                dir.display()
            );
            std::fs::write(copy.join(&path), once).expect("write");
        }
        assert_eq!(
            fingerprint(&copy),
            before,
            "{}: formatting changed the plan",
            dir.display()
        );
    }
}

/// The example project is kept formatted (CI runs `accord fmt --check`).
#[test]
fn the_example_project_is_formatted() {
    for (path, text) in spec_files(&root().join("specs")) {
        assert_eq!(
            accord::layout::format(&text).expect("formats"),
            text,
            "specs/{path} is not formatted: run `accord fmt specs`"
        );
    }
}

/// `text` with the keys of each definition (`[KIND.NAME]`, and
/// `[computed.SCHEMA.NAME]`) in an order given by `seed`. Tables inside a
/// definition keep theirs: a `map`'s order is the export's column order.
fn shuffled(text: &str, seed: u64) -> String {
    let mut doc: toml_edit::DocumentMut = text.parse().expect("parses");
    let hash = |key: &str| {
        key.bytes().fold(seed, |h, b| {
            h.wrapping_mul(1_099_511_628_211).wrapping_add(u64::from(b))
        })
    };
    for (kind, item) in doc.iter_mut() {
        let toml_edit::Item::Table(kinds) = item else {
            continue;
        };
        let depth = if kind.get() == "computed" { 2 } else { 1 };
        let mut level = vec![kinds];
        for _ in 0..depth {
            level = level
                .into_iter()
                .flat_map(|t| t.iter_mut().filter_map(|(_, i)| i.as_table_mut()))
                .collect();
        }
        for definition in level {
            definition.sort_values_by(|k1, _, k2, _| hash(k1.get()).cmp(&hash(k2.get())));
        }
    }
    doc.to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Whatever order the keys are written in, the layout is the same.
    #[test]
    fn the_layout_does_not_depend_on_key_order(seed in any::<u64>()) {
        for (path, text) in spec_files(&root().join("specs")) {
            let canonical = accord::layout::format(&text).expect("formats");
            let reordered = accord::layout::format(&shuffled(&text, seed)).expect("formats");
            prop_assert_eq!(&reordered, &canonical, "specs/{}", path);
        }
    }
}
