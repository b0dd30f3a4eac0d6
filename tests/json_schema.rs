//! The JSON Schema of spec files (`accord schema`) against real specs:
//! - the committed `schema/accord.schema.json` is what `accord schema`
//!   prints (regenerate it with the command the failure names);
//! - every spec file of every project in the repository that checks clean
//!   (`specs/`, the fixture projects of every test, a project `accord init`
//!   writes) validates, after TOML-to-JSON conversion;
//! - every file in `tests/schema_invalid/` fails, for the reason its header
//!   names (`# schema: KEYWORD at /INSTANCE/PATH`), and `accord check`
//!   reports the code its header names (`# check: CODE`) for it too, so the
//!   set shows mistakes of the spec language, not of the schema.
//!
//! The validator is draft 2020-12 with no remote resolution: the schema
//! refers only to its own `$defs`.

use std::path::{Path, PathBuf};

use accord::compile::{self, Options};
use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;
#[path = "support/folders.rs"]
mod folders;
#[path = "support/temp.rs"]
mod temp;

const COMMITTED: &str = "schema/accord.schema.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&accord::json_schema::schema())
        .expect("the schema compiles")
}

/// TOML as a TOML editor hands it to a JSON Schema: dates and times as
/// their TOML text.
fn to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        toml::Value::Table(table) => {
            Value::Object(table.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

fn parse(path: &str, text: &str) -> Value {
    let table: toml::Table =
        toml::from_str(text).unwrap_or_else(|e| panic!("{path} is not TOML: {e}"));
    to_json(&toml::Value::Table(table))
}

/// Each error as `KEYWORD at /PATH: message` (`(root)` for the document).
fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() {
                "(root)".to_string()
            } else {
                path
            };
            format!("{} at {path}: {e}", e.kind().keyword())
        })
        .collect()
}

#[test]
fn the_committed_schema_is_what_accord_schema_prints() {
    let printed = cli::accord_in(root(), &["schema"]);
    assert_eq!(printed.status.code(), Some(0), "{}", cli::printed(&printed));
    let printed = String::from_utf8(printed.stdout).expect("UTF-8");
    assert_eq!(printed, accord::json_schema::text());
    let committed = std::fs::read_to_string(root().join(COMMITTED)).unwrap_or_default();
    assert!(
        committed == printed,
        "{COMMITTED} is stale: regenerate it with `cargo run -- schema --out {COMMITTED}` and commit it"
    );
    // `--out` writes the same bytes.
    let tmp = temp::dir("schema-out");
    let out = tmp.path().join("s.json");
    let written = cli::accord_in(root(), &["schema", "--out", out.to_str().unwrap()]);
    assert_eq!(written.status.code(), Some(0), "{}", cli::printed(&written));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), printed);
    // The example project points Taplo at the committed file.
    assert_eq!(
        taplo_schema(&root().join("specs")),
        std::fs::canonicalize(root().join(COMMITTED)).unwrap()
    );
}

/// The schema file the project's `.taplo.toml` points Taplo at (a path
/// relative to the configuration file, as Taplo resolves it).
fn taplo_schema(project: &Path) -> PathBuf {
    let config = project.join(".taplo.toml");
    let text =
        std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    let config: toml::Table = toml::from_str(&text).expect(".taplo.toml is TOML");
    let path = config["schema"]["path"].as_str().expect("schema.path");
    std::fs::canonicalize(project.join(path)).expect("the schema file exists")
}

/// Every folder holding a project: the example, and the fixture projects
/// of every data-driven test.
fn projects() -> Vec<PathBuf> {
    let mut dirs = vec![root().join("specs")];
    for under in [
        "fixtures",
        "run_fixtures",
        "render_projects",
        "source_projects",
        "storage_projects",
        "api_projects",
        "explain_projects",
        "watch_projects",
        "state_projects",
    ] {
        dirs.extend(folders::fixture_folders(under));
    }
    dirs.retain(|d| d.join("accord.toml").is_file());
    dirs
}

/// Whether `check` finds the project clean: no error and no unknown key.
/// Policy verdicts (`G` codes) judge dataflows, not the files' shape, so a
/// project blocked only by governance counts as clean here.
fn checks_clean(dir: &Path) -> bool {
    let Ok(compiled) = compile::check(dir, &Options::default()) else {
        return false;
    };
    compiled.diagnostics.iter().all(|d| {
        let code = d.code.as_str();
        code != "A0003" && (!d.is_error() || code.starts_with('G'))
    })
}

fn assert_project_validates(validator: &jsonschema::Validator, dir: &Path) {
    let sources = accord::load::load(dir).expect("the project loads");
    for (_, file) in sources.iter() {
        let instance = parse(&file.path, &file.text);
        let problems = errors(validator, &instance);
        assert!(
            problems.is_empty(),
            "{}/{} checks clean but does not validate:\n{}",
            dir.display(),
            file.path,
            problems.join("\n")
        );
    }
}

#[test]
fn every_project_that_checks_clean_validates() {
    let validator = validator();
    let mut validated = 0;
    for dir in projects() {
        if checks_clean(&dir) {
            assert_project_validates(&validator, &dir);
            validated += 1;
        }
    }
    // The example and most fixtures check clean; a harness that silently
    // found none would prove nothing.
    assert!(validated >= 40, "only {validated} projects checked clean");
    eprintln!("{validated} projects check clean and validate");
}

#[test]
fn the_project_accord_init_writes_validates() {
    let tmp = temp::dir("schema-init");
    let out = cli::accord_in(tmp.path(), &["init", "p"]);
    assert_eq!(out.status.code(), Some(0), "{}", cli::printed(&out));
    let dir = tmp.path().join("p");
    assert!(checks_clean(&dir));
    assert_project_validates(&validator(), &dir);
    // It carries the schema of the accord that wrote it, for Taplo.
    let schema = std::fs::read_to_string(taplo_schema(&dir)).unwrap();
    assert_eq!(schema, accord::json_schema::text());
}

/// The value of `# NAME: VALUE` in a file's header.
fn header<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&format!("# {name}: ")))
        .map(str::trim)
}

const PROJECT: &str = "[project]\nname = \"invalid\"\nformat = 1\n";

#[test]
fn every_invalid_file_fails_for_its_reason() {
    let validator = validator();
    let dir = root().join("tests/schema_invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/schema_invalid")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{} invalid files", files.len());
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let expected = header(&text, "schema")
            .unwrap_or_else(|| panic!("{name}: no `# schema: KEYWORD at /PATH` header"));
        let problems = errors(&validator, &parse(&name, &text));
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("{expected}:"))),
            "{name}: expected `{expected}`, got:\n{}",
            problems.join("\n")
        );
        // `accord check` finds the same mistake.
        let code =
            header(&text, "check").unwrap_or_else(|| panic!("{name}: no `# check: CODE` header"));
        let project = temp::dir("schema-invalid");
        let (accord_toml, spec) = if name.starts_with("accord_toml_") {
            (text.clone(), String::new())
        } else {
            (PROJECT.to_string(), text.clone())
        };
        std::fs::write(project.path().join("accord.toml"), accord_toml).unwrap();
        std::fs::write(project.path().join("spec.toml"), spec).unwrap();
        let compiled = compile::check(project.path(), &Options::default()).expect("checks");
        let codes: Vec<&str> = compiled
            .diagnostics
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        assert!(
            codes.contains(&code),
            "{name}: `accord check` reports {codes:?}, not {code}"
        );
    }
}
