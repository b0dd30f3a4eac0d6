//! The module stack is one way: a module of `src/` may use only the modules
//! listed before it in [`STACK`] (docs/architecture.md says what each takes
//! and gives). A new top-level module must be placed in the stack, so its
//! place is a decision someone reviewed.
//!
//! The check reads the source: every `crate::NAME` path outside comments,
//! including grouped imports (`use crate::{a, b::c}`), counts as a use of
//! the top-level module `NAME`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules, from the base up. Each may use the ones above it
/// in this list, never one below it.
const STACK: &[&str] = &[
    // Shared ground: spans and files, durations, memory sizes and instants, digests and
    // SSH host keys, diagnostics, the built-in vocabulary (labels, actions),
    // the destination catalog and the crash test hook.
    "source",
    "exit",
    "duration",
    "memory_limit",
    "time",
    "hash",
    "host_key",
    "diag",
    "closed_set",
    "builtins",
    "catalog",
    "faults",
    // The pipeline, in order.
    "load",
    "syntax",
    "cel",
    "resolve",
    "govern",
    "plan",
    "file_layout",
    "semantics",
    "render",
    "diff",
    "store",
    "deliver",
    "run",
    // The plan as one HTML page (`accord report`), with the sizes of the
    // last run from the run log.
    "report",
    // The canonical layout of spec files (`accord fmt`): beside the
    // pipeline, on the files' text alone.
    "layout",
    // The JSON Schema of spec files (`accord schema`), for editors: from
    // the reader's closed sets, the vocabulary and the catalog.
    "json_schema",
    // The drivers.
    "compile",
    "cli",
];

/// Top-level module of a file under `src/` (`render/query.rs` -> `render`);
/// `None` for the crate roots.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("src/ entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without `//` comments (doc comments included): a path named in
/// prose is not a dependency.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            // `"http://..."` in a string literal keeps its line.
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file's code names through `crate::`.
fn used_modules(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = item.trim().split("::").next().unwrap_or("");
                if !name.is_empty() && name != "self" {
                    used.insert(name.to_string());
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                used.insert(name);
            }
        }
    }
    used
}

/// module -> (used module -> first file that uses it).
fn dependencies() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut deps: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let Some(module) = module_of(relative) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("source is UTF-8");
        let entry = deps.entry(module.clone()).or_default();
        for used in used_modules(&code_of(&text)) {
            if used != module {
                entry
                    .entry(used)
                    .or_insert_with(|| relative.display().to_string());
            }
        }
    }
    deps
}

#[test]
fn every_module_has_a_place_in_the_stack() {
    let unplaced: Vec<String> = dependencies()
        .into_keys()
        .filter(|m| !STACK.contains(&m.as_str()))
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules missing from STACK in tests/layering.rs (and from docs/architecture.md): {unplaced:?}"
    );
}

#[test]
fn modules_use_only_earlier_modules() {
    let rank = |m: &str| STACK.iter().position(|s| *s == m);
    let mut back_edges = Vec::new();
    for (module, used) in dependencies() {
        let Some(own) = rank(&module) else { continue };
        for (dep, file) in used {
            match rank(&dep) {
                Some(r) if r < own => {}
                _ => back_edges.push(format!("{module} -> {dep} (src/{file})")),
            }
        }
    }
    assert!(
        back_edges.is_empty(),
        "uses against the stack (a module may use only modules before it):\n{}",
        back_edges.join("\n")
    );
}

#[test]
fn the_reader_sees_grouped_imports_and_skips_comments() {
    let code = code_of(
        "use crate::{plan::Plan, cel};\n\
         // crate::run is only named here\n\
         let x = crate::time::now(); /// crate::cli\n",
    );
    let used: Vec<String> = used_modules(&code).into_iter().collect();
    assert_eq!(used, ["cel", "plan", "time"]);
}
