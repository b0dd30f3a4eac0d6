//! Property tests of the front end (load-free: sources in memory).
//!
//! The front end must never fail on any input: whatever the text of
//! `accord.toml` and of the other spec files, `check_sources` returns
//! diagnostics, and all four output formats render them. Every diagnostic has
//! a registered code and spans that lie inside their file, on char boundaries.
//!
//! Inputs are (a) arbitrary strings, and (b) the real spec projects of this
//! repository (every fixture, and `specs/` when present) mutated the way people
//! and editors break files: characters deleted, TOML punctuation inserted,
//! values swapped between keys, files truncated, lines duplicated.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use accord::cli::HumanStyle;
use accord::cli::output;
use accord::compile::{Compiled, Options, check_sources};
use accord::source::{SourceFile, SourceSet, Span};
use proptest::prelude::*;

/// Cases per property; `PROPTEST_CASES=5000 cargo test --test frontend_fuzz`
/// for a longer hunt.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

// ---------------------------------------------------------------------------
// The oracle

/// Runs the front end and every renderer and checks the invariants; returns
/// the diagnostics rendered as JSON lines so callers can compare runs.
fn check_files(files: Vec<(String, String)>) -> String {
    let sources = SourceSet::new(
        files
            .into_iter()
            .map(|(path, text)| SourceFile::new(path, text))
            .collect(),
    );
    let compiled = check_sources(sources, &Options::default());
    // Rendering first: a renderer panicking on a bad span is the worse bug.
    let json = render_all(&compiled);
    assert_invariants(&compiled);
    json
}

fn assert_invariants(compiled: &Compiled) {
    let sources = &compiled.sources;
    for d in &compiled.diagnostics {
        let code = d.code.as_str();
        assert!(
            accord::diag::codes::lookup(code).is_some(),
            "unregistered code {code}: {}",
            d.message
        );
        assert!(!d.message.is_empty(), "{code} has an empty message");
        let spans = std::iter::once(d.primary.span).chain(d.secondary.iter().map(|l| l.span));
        for span in spans {
            assert_span_ok(sources, span, code, &d.message);
        }
    }
}

fn assert_span_ok(sources: &SourceSet, span: Span, code: &str, message: &str) {
    assert!(
        (span.source.0 as usize) < sources.len(),
        "{code} `{message}`: span in file #{} of {}",
        span.source.0,
        sources.len()
    );
    let text = &sources.file(span.source).text;
    let (start, end) = (span.start as usize, span.end as usize);
    assert!(
        start <= end && end <= text.len(),
        "{code} `{message}`: span {start}..{end} outside a file of {} bytes",
        text.len()
    );
    assert!(
        text.is_char_boundary(start) && text.is_char_boundary(end),
        "{code} `{message}`: span {start}..{end} splits a character in {text:?}"
    );
}

fn render_all(compiled: &Compiled) -> String {
    let (diags, sources) = (&compiled.diagnostics, &compiled.sources);
    let style = HumanStyle {
        color: false,
        width: 100,
    };
    let _ = output::human(diags, sources, style);
    let _ = output::summary(diags);
    let sarif = output::sarif(diags, sources);
    let log: serde_json::Value = serde_json::from_str(&sarif).expect("sarif output is JSON");
    assert_eq!(log["version"], "2.1.0");
    let github = output::github(diags, sources);
    assert_eq!(
        github.lines().count(),
        diags.len(),
        "one annotation per line"
    );
    let json = output::json(diags, sources);
    assert_eq!(
        json.lines().count(),
        diags.len(),
        "one JSON object per line"
    );
    for line in json.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("json line parses");
    }
    json
}

// ---------------------------------------------------------------------------
// The corpus: real projects from this repository

type Project = Vec<(String, String)>;

fn read_project(root: &Path) -> Project {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            // Not through symbolic links: a fixture may hold a link loop.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && !hidden {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                if let Ok(text) = std::fs::read_to_string(&path) {
                    files.push((relative, text));
                }
            }
        }
    }
    files.sort();
    files
}

/// Every fixture project, and `specs/` when the repository has one.
fn corpus() -> &'static [Project] {
    static CORPUS: OnceLock<Vec<Project>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut roots: Vec<PathBuf> = std::fs::read_dir(manifest.join("tests/fixtures"))
            .expect("tests/fixtures exists")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        roots.sort();
        let specs = manifest.join("specs");
        if specs.join("accord.toml").is_file() {
            roots.push(specs);
        }
        let projects: Vec<Project> = roots
            .iter()
            .map(|r| read_project(r))
            .filter(|p| !p.is_empty())
            .collect();
        assert!(projects.len() > 10, "the corpus holds the fixtures");
        projects
    })
}

// ---------------------------------------------------------------------------
// Mutations

/// Characters that change the meaning of TOML, plus a few multi-byte ones so
/// that spans near them must respect char boundaries.
const INSERTS: &[&str] = &[
    "[", "]", "=", "\"", "'", "{", "}", ",", "\n", ".", "#", "\"\"\"", "'''", "é", "🙂", "\t",
    "\r\n", "[[", "]]", "\\",
];

#[derive(Clone, Debug)]
enum Mutation {
    /// Delete the character at (a fraction of) the text.
    Delete(usize),
    /// Insert one of [`INSERTS`].
    Insert(usize, usize),
    /// Swap the values of two `key = value` lines.
    SwapValues(usize, usize),
    /// Cut the file.
    Truncate(usize),
    /// Repeat a line right after itself.
    DuplicateLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => any::<usize>().prop_map(Mutation::Delete),
        4 => (any::<usize>(), 0..INSERTS.len()).prop_map(|(p, i)| Mutation::Insert(p, i)),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapValues(a, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        2 => any::<usize>().prop_map(Mutation::DuplicateLine),
    ]
}

/// The char boundary at or before `seed % (len + 1)`.
fn boundary(text: &str, seed: usize) -> usize {
    let mut at = seed % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, m: &Mutation) {
    match *m {
        Mutation::Delete(seed) => {
            if text.is_empty() {
                return;
            }
            let at = boundary(text, seed % text.len());
            text.remove(at);
        }
        Mutation::Insert(seed, which) => {
            let at = boundary(text, seed);
            text.insert_str(at, INSERTS[which]);
        }
        Mutation::Truncate(seed) => {
            let at = boundary(text, seed);
            text.truncate(at);
        }
        Mutation::DuplicateLine(seed) => {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            if lines.is_empty() {
                return;
            }
            let i = seed % lines.len();
            let mut out = String::with_capacity(text.len() + lines[i].len() + 1);
            for (j, line) in lines.iter().enumerate() {
                out.push_str(line);
                if j == i {
                    if !line.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str(line);
                }
            }
            *text = out;
        }
        Mutation::SwapValues(a, b) => {
            let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
            let assignments: Vec<usize> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.trim_start().starts_with('[') && l.contains(" = "))
                .map(|(i, _)| i)
                .collect();
            if assignments.len() < 2 {
                return;
            }
            let (i, j) = (
                assignments[a % assignments.len()],
                assignments[b % assignments.len()],
            );
            let split = |l: &str| {
                let (k, v) = l.split_once(" = ").unwrap();
                (k.to_string(), v.to_string())
            };
            let (ki, vi) = split(&lines[i]);
            let (kj, vj) = split(&lines[j]);
            lines[i] = format!("{ki} = {}\n", vj.trim_end_matches('\n'));
            lines[j] = format!("{kj} = {}\n", vi.trim_end_matches('\n'));
            *text = lines.concat();
        }
    }
}

/// A project from the corpus with some of its files mutated.
fn mutated_project() -> impl Strategy<Value = (usize, Project)> {
    let n = corpus().len();
    (
        0..n,
        prop::collection::vec((any::<usize>(), mutation()), 1..6),
    )
        .prop_map(|(which, edits)| {
            let mut project = corpus()[which].clone();
            for (file_seed, m) in &edits {
                let f = file_seed % project.len();
                apply(&mut project[f].1, m);
            }
            (which, project)
        })
}

// ---------------------------------------------------------------------------
// Properties

/// Text that looks a little like TOML, so the parser gets past the first byte.
fn tomlish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\[\\]=\"'{},.\\n #a-z_0-9A-Zé]{0,200}",
        "(\\[(project|schema|audience|destination|activation|source|waiver|policy|environment)(\\.[a-z_]{1,8}){0,3}\\]\\n([a-z_]{1,10} = (\"[a-z_. =]{0,12}\"|[0-9]{1,3}|\\[\"[a-zA-Z_]{0,8}\"\\]|\\{ [a-z]{1,5} = \"[a-z]{0,5}\" \\}|true|2026-12-31)\\n){0,4}){0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_project_file_never_panics(text in tomlish()) {
        check_files(vec![("accord.toml".into(), text)]);
    }

    #[test]
    fn arbitrary_spec_files_never_panic(project in tomlish(), other in tomlish(), third in tomlish()) {
        check_files(vec![
            ("accord.toml".into(), project),
            ("audiences/icp.toml".into(), other),
            ("z/deep/more.toml".into(), third),
        ]);
    }

    #[test]
    fn arbitrary_second_file_next_to_a_valid_project(other in tomlish()) {
        let mut files = corpus()[0].clone();
        files.push(("extra/fuzz.toml".into(), other));
        check_files(files);
    }

    #[test]
    fn mutated_real_projects_never_panic((_which, project) in mutated_project()) {
        check_files(project);
    }

    /// The result does not depend on the order files are handed over.
    #[test]
    fn file_order_does_not_matter((_which, project) in mutated_project()) {
        let forward = check_files(project.clone());
        let mut reversed = project;
        reversed.reverse();
        prop_assert_eq!(forward, check_files(reversed));
    }
}

// ---------------------------------------------------------------------------
// Fixed cases: edges the strategies reach only by luck

#[test]
fn edge_cases_never_panic() {
    let cases: &[&str] = &[
        "",
        "\n",
        "\u{feff}",
        "\u{feff}[project]\nname = \"x\"\nformat = 1\n",
        "[",
        "[project",
        "[project]\nformat = 99999999999999999999\n",
        "[project]\nformat = -1\n",
        "[project]\nname = \"é\"\nformat = 1\naudience_naming = '(🙂'\n",
        "project = 1\n",
        "project = []\nenvironment = 1\nguardrails = \"x\"\n",
        "[project]\nname = 1\nformat = \"1\"\n[guardrails]\nmax_audiences = 0\n",
        "[[audience]]\nrule = 'true'\n",
        "[audience]\nB2B = 1\n",
        "[computed.account]\nx = 1\n",
        "[computed.opportunity.x]\ntype = \"int\"\nexpr = '1'\n",
        "[schema.a.links.b]\n",
        "[schema.a]\nclass = \"account\"\nfields = 1\nlinks = 1\n",
        "[audience.A]\ncompose = 1\n",
        "[audience.A]\ncompose.split = { percent = 1 }\n",
        "[audience.A]\ncompose.split = { by = 1, parts = 1 }\n",
        "[destination.d]\ntype = \"s3\"\ntoken = { env = \"\" }\nsecret = { a = 1, b = 2 }\n",
        "a.b.c.d.e.f = 1\n",
        "\"\" = 1\n[\"\"]\n",
        "[schema.\"é🙂\"]\nclass = \"account\"\nkey = \"🙂\"\n",
        "\r\n[project]\r\nname = \"x\"\r\nformat = 1\r\n",
        "x = \"\\u00e9\"\n[y]\nz = '''\n\n'''\n",
    ];
    for text in cases {
        check_files(vec![("accord.toml".into(), text.to_string())]);
        check_files(vec![
            (
                "accord.toml".into(),
                "[project]\nname = \"p\"\nformat = 1\n".into(),
            ),
            ("specs/other.toml".into(), text.to_string()),
        ]);
    }
}

// ---------------------------------------------------------------------------
// Regressions found by the properties above. Each pins today's behaviour with
// a FIXME; when the compiler is fixed the assertion fails, and the test
// should then be turned into a plain check of the right behaviour.

fn compile(files: &[(&str, &str)]) -> Compiled {
    let files = files.iter().map(|(p, t)| SourceFile::new(*p, *t)).collect();
    check_sources(SourceSet::new(files), &Options::default())
}

#[test]
fn regression_a0001_span_covers_a_whole_character() {
    // The parser stops at `Σ` (2 bytes): the span covers the whole character,
    // and an unreadable accord.toml is only A0001, not also "no [project]".
    let c = compile(&[("accord.toml", "\"\"Σ")]);
    assert_eq!(c.diagnostics.len(), 1, "{:?}", c.diagnostics);
    let d = &c.diagnostics[0];
    assert_eq!(d.code.as_str(), "A0001");
    assert_eq!(d.primary.span.range(), 2..4);
}

#[test]
fn regression_no_files_at_all_renders_in_every_format() {
    // `accord check` refuses a folder without accord.toml, but `check_sources`
    // is public: with no files it reports nothing rather than point into a
    // file that does not exist.
    let c = compile(&[]);
    assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
    for text in [
        output::json(&c.diagnostics, &c.sources),
        output::github(&c.diagnostics, &c.sources),
        output::sarif(&c.diagnostics, &c.sources),
    ] {
        assert!(!text.contains("A0008"));
    }
}

// ---------------------------------------------------------------------------
// Deep nesting: the parsers and every walk of a tree recurse, so a deep
// enough expression used to overflow the stack and abort the process. These
// shapes must come back as diagnostics (or check clean), on a test thread's
// 2 MiB stack like on the checker's threads.

/// A valid project whose audience rule, mapping and policy are given.
fn deep_project(rule: &str, map: &str, deny: &str) -> Vec<(String, String)> {
    let accord =
        "[project]\nname = \"deep\"\nformat = 1\n\n[environment.prod]\nenforcement = \"block\"\n";
    let specs = format!(
        r#"
[schema.account]
class = "account"
key = "accountId"
[schema.account.fields]
accountId = {{ type = "string", identity = "crm_account_id" }}
name = "string"
employees = "int"
tags = "list<string>"

[policy.deep]
actions = ["analytics"]
deny = """{deny}"""

[audience.B2B_Deep]
rule = """{rule}"""

[destination.files]
type = "filesystem"
path = "out/exports"
format = "csv"

[activation.deep_files]
destination = "files"
audiences = ["B2B_Deep"]
schedule = "daily@02:00"
export = "full"
[activation.deep_files.map]
name = """{map}"""
"#
    );
    vec![
        ("accord.toml".to_string(), accord.to_string()),
        ("specs.toml".to_string(), specs),
    ]
}

fn codes_of(files: Vec<(String, String)>) -> Vec<String> {
    let sources = SourceSet::new(
        files
            .into_iter()
            .map(|(path, text)| SourceFile::new(path, text))
            .collect(),
    );
    let compiled = check_sources(sources, &Options::default());
    render_all(&compiled);
    assert_invariants(&compiled);
    compiled
        .diagnostics
        .iter()
        .map(|d| d.code.as_str().to_string())
        .collect()
}

#[test]
fn deep_cel_expressions_are_refused_not_a_crash() {
    let shapes = [
        format!("account.name{} == \"\"", ".name".repeat(2_000)),
        format!("account.name{} > 0", ".size()".repeat(3_000)),
        format!("account.tags{} == \"\"", "[0]".repeat(3_000)),
        format!("{}true{}", "(".repeat(20_000), ")".repeat(20_000)),
        format!("{}true{}", "[".repeat(20_000), "]".repeat(20_000)),
        format!("{} > 0", vec!["account.employees"; 1_000].join(" + ")),
        format!("{}{}", "size(".repeat(5_000), ")".repeat(5_000)),
    ];
    for rule in &shapes {
        let codes = codes_of(deep_project(rule, "account.name", "C2"));
        assert!(
            codes.contains(&"A0215".to_string()),
            "{codes:?} for {}",
            &rule[..40]
        );
        let codes = codes_of(deep_project("true", rule, "C2"));
        assert!(
            codes.contains(&"A0215".to_string()),
            "{codes:?} in a mapping"
        );
    }
}

#[test]
fn long_flat_cel_expressions_still_check() {
    // Balanced by the parser (`&&`, `||`), folded (`!`), or siblings (list
    // items): no depth, so no error, at any length.
    for rule in [
        vec!["account.employees > 1"; 20_000].join(" && "),
        vec!["account.name == \"x\""; 20_000].join(" || "),
        format!("{}true", "!".repeat(40_000)),
        format!("account.name in [{}]", vec!["\"v\""; 20_000].join(", ")),
    ] {
        let codes = codes_of(deep_project(&rule, "account.name", "C2"));
        assert!(codes.is_empty(), "{codes:?} for {}", &rule[..40]);
    }
}

#[test]
fn deep_deny_expressions_are_refused_or_flat() {
    let too_deep = format!("{}C2{}", "(".repeat(20_000), ")".repeat(20_000));
    let codes = codes_of(deep_project("true", "account.name", &too_deep));
    assert_eq!(codes, ["G0011"]);
    for flat in [
        format!("{}C2", "!".repeat(40_000)),
        vec!["C2"; 100_000].join(" && "),
        vec!["C2"; 100_000].join(" || "),
    ] {
        let codes = codes_of(deep_project("true", "account.name", &flat));
        assert!(codes.is_empty(), "{codes:?}");
    }
}
