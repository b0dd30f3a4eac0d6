//! Data-driven run tests: every folder in `tests/run_fixtures/` is a spec
//! project with its data and a `fixture.steps` file; the steps run in a
//! scratch copy of the folder and their output (exit codes, stdout and
//! stderr, paths and times normalised) is snapshotted in
//! `snapshots/run_fixtures/NAME.snap`.
//!
//! `fixture.steps` holds one step per line (`#` starts a comment):
//! - `run ARGS...`: `accord run <project> ARGS...`, where `{project}` in an
//!   argument stands for the scratch copy;
//! - `accord ARGS...`: any other `accord` command, `{project}` as above;
//! - `write PATH TEXT`: writes TEXT (with `\n` for line breaks) to PATH
//!   inside the project, replacing it;
//! - `copy FROM TO`, `remove PATH`: files inside the project;
//! - `touch PATH TIME`: sets a file's modification time to TIME (RFC 3339),
//!   as an export that wrote it then would;
//! - `symlink TARGET LINK`: a symbolic link at LINK pointing to TARGET;
//! - `lock NOTE`: holds the project lock (`.accord/lock`, the operating
//!   system lock a run takes) with NOTE as its holder's note, as a run in
//!   progress would, until `unlock` or the end of the steps;
//! - `list DIR`: the files under DIR (relative, sorted), into the transcript;
//! - `show PATH`: a file's contents into the transcript (gzip unpacked,
//!   parquet as its columns and rows);
//! - `postgres FILE`: starts a PostgreSQL server for the fixture (the first
//!   time), makes a database `fixture`, runs the SQL file FILE of the project
//!   in it with psql (in the project's folder, so `\copy` reads its files),
//!   and sets `ACCORD_FIXTURE_DATABASE_URL` to its URL for the steps after;
//!   the server's port shows as `<port>`, and its password must show nowhere;
//! - `expect-file PATH` and `expect-no-file PATH`: asserts that a path
//!   (relative to the project; `..` allowed, to prove nothing escapes) does
//!   or does not exist after the steps before it.
//!
//! A folder named after a code (`R0003_unterminated_quote`) must report that
//! code in some step, and every registered `R` code must have such a folder,
//! or, when only a test server can provoke it, an integration test named in
//! `PROVEN_ELSEWHERE`: run-time diagnostics are explained, and shown, like
//! the checker's.
#![cfg(feature = "engine")]

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/temp.rs"]
mod temp;

#[path = "support/folders.rs"]
mod folders;

#[path = "support/servers/mod.rs"]
mod servers;

/// The variable a `postgres` step sets to its database's URL.
const DATABASE_URL_VAR: &str = "ACCORD_FIXTURE_DATABASE_URL";

fn fixture_dirs() -> Vec<PathBuf> {
    folders::fixture_folders("run_fixtures")
}

fn name(dir: &Path) -> String {
    dir.file_name()
        .expect("a folder name")
        .to_string_lossy()
        .into_owned()
}

/// Copies a fixture (symbolic links as links) into `to`.
fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk the fixture");
        let rel = entry.path().strip_prefix(from).expect("inside the fixture");
        let target = to.join(rel);
        let kind = entry.file_type();
        if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).expect("read a link");
            std::os::unix::fs::symlink(link, &target).expect("copy a link");
        } else if kind.is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Splits a step into words; `"..."` keeps spaces inside one word.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(word);
    }
    out
}

/// Replaces what differs between machines and runs: the scratch folder,
/// wall-clock durations (in reports and in `--metrics` files).
fn normalise(text: &str, project: &Path) -> String {
    let mut text = text.replace(&project.display().to_string(), "<project>");
    let parent = project.parent().expect("a scratch parent");
    text = text.replace(&parent.display().to_string(), "<scratch>");
    let durations = regex::Regex::new(
        r"(?m)(done in )[0-9.]+(?:s|ms|m|h)[^\n]*|(\x22(?:duration_ms|run_duration_ms|read|unify|audiences|activations)\x22: )[0-9]+|(  run )[0-9.]+ (?:s|ms)$|(^accord_run(?:_phase)?_duration_seconds\{[^}]*\} )[0-9.]+$",
    )
    .expect("a valid pattern");
    durations
        .replace_all(&text, |c: &regex::Captures| {
            if let Some(prefix) = c.get(1).or_else(|| c.get(3)).or_else(|| c.get(4)) {
                format!("{}<time>", prefix.as_str())
            } else {
                format!("{}0", &c[2])
            }
        })
        .into_owned()
}

/// Runs the steps of one fixture; returns the transcript and the codes seen.
fn transcript(dir: &Path) -> String {
    let steps = std::fs::read_to_string(dir.join("fixture.steps"))
        .unwrap_or_else(|_| panic!("{}: no fixture.steps", dir.display()));
    let scratch = temp::dir(&format!("run-fixture-{}", name(dir)));
    let project = scratch.path().join("project");
    copy_tree(dir, &project);
    let mut out = String::new();
    let mut held: Vec<std::fs::File> = Vec::new();
    let mut postgres: Option<servers::postgres::Postgres> = None;
    for line in steps.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<String> = words(line)
            .into_iter()
            .map(|w| w.replace("{project}", &project.display().to_string()))
            .collect();
        let inside = |p: &str| project.join(p);
        match words[0].as_str() {
            "run" | "accord" => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_accord"));
                if words[0] == "run" {
                    cmd.arg("run").arg(&project);
                }
                match &postgres {
                    Some(server) => cmd.env(DATABASE_URL_VAR, server.url("fixture")),
                    None => cmd.env_remove(DATABASE_URL_VAR),
                };
                // From the project's folder, as a user runs it: paths in
                // diagnostics are relative to it.
                cmd.args(&words[1..])
                    .current_dir(&project)
                    .env_remove("ACCORD_FAULT_AFTER")
                    .env("NO_COLOR", "1")
                    .env("TZ", "UTC");
                let output = cmd.output().expect("accord runs");
                out.push_str(&format!("$ {line}\n"));
                out.push_str(&String::from_utf8_lossy(&output.stdout));
                let stderr = String::from_utf8_lossy(&output.stderr);
                if !stderr.is_empty() {
                    out.push_str("--- stderr\n");
                    out.push_str(&stderr);
                }
                out.push_str(&format!(
                    "--- exit {}\n\n",
                    output.status.code().unwrap_or(-1)
                ));
            }
            "write" => {
                let path = inside(&words[1]);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).expect("mkdir");
                }
                std::fs::write(path, words[2..].join(" ").replace("\\n", "\n")).expect("write");
            }
            "copy" => {
                std::fs::copy(inside(&words[1]), inside(&words[2])).expect("copy");
            }
            "remove" => {
                std::fs::remove_file(inside(&words[1])).expect("remove");
            }
            "touch" => {
                let micros = accord::time::parse_timestamp(&words[2])
                    .unwrap_or_else(|| panic!("{}: `{}` is not a time", dir.display(), words[2]));
                let at = std::time::UNIX_EPOCH
                    + std::time::Duration::from_micros(u64::try_from(micros).expect("after 1970"));
                std::fs::File::options()
                    .write(true)
                    .open(inside(&words[1]))
                    .and_then(|f| f.set_modified(at))
                    .expect("set the modification time");
            }
            "lock" => {
                use std::io::Write;
                let path = inside(".accord/lock");
                std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
                let mut file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .expect("open the lock");
                file.try_lock().expect("the project lock is free");
                file.write_all(words[1..].join(" ").as_bytes())
                    .expect("write the note");
                held.push(file);
            }
            "unlock" => held.clear(),
            "postgres" => {
                let server = postgres.get_or_insert_with(|| {
                    let server = servers::postgres::start();
                    server.psql("postgres", "CREATE DATABASE fixture");
                    server
                });
                server.psql_file(&project, "fixture", &words[1]);
            }
            "symlink" => {
                std::os::unix::fs::symlink(&words[1], inside(&words[2])).expect("symlink");
            }
            "list" => {
                out.push_str(&format!("$ {line}\n"));
                out.push_str(&listing(&inside(&words[1])));
                out.push('\n');
            }
            "show" => {
                out.push_str(&format!("$ {line}\n"));
                out.push_str(&shown_file(&inside(&words[1])));
                out.push('\n');
            }
            "expect-file" => {
                assert!(
                    inside(&words[1]).exists(),
                    "{}: {} should exist",
                    dir.display(),
                    words[1]
                );
            }
            "expect-no-file" => {
                assert!(
                    !inside(&words[1]).exists(),
                    "{}: {} should not exist",
                    dir.display(),
                    words[1]
                );
            }
            other => panic!("{}: unknown step `{other}`", dir.display()),
        }
    }
    if let Some(server) = &postgres {
        assert!(
            !out.contains(&server.password),
            "{}: the database password shows in the output:\n{out}",
            dir.display()
        );
        out = out.replace(&format!("127.0.0.1:{}", server.port()), "127.0.0.1:<port>");
    }
    normalise(&out, &project)
}

/// The files under a folder, one relative path a line, sorted; hidden
/// ones too (a temporary file left behind would show).
fn listing(dir: &Path) -> String {
    let mut names: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk the folder"))
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .expect("inside")
                .display()
                .to_string()
        })
        .collect();
    names.sort();
    names.iter().map(|n| format!("{n}\n")).collect()
}

/// A delivered file as text: gzip is unpacked (and said so), a parquet
/// file is shown as its schema and rows.
fn shown_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.to_string_lossy();
    if name.ends_with(".gz") {
        use std::io::Read;
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .expect("a gzip file of text");
        return format!("(gzip, {} bytes, unpacked:)\n{text}", bytes.len());
    }
    if name.ends_with(".parquet") {
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        let file = std::fs::File::open(path).expect("open");
        let reader = SerializedFileReader::new(file).expect("a parquet file");
        let schema = reader.metadata().file_metadata().schema_descr();
        let mut text = String::from("(parquet) columns:");
        for column in schema.columns() {
            text.push_str(&format!(" {} {:?}", column.name(), column.physical_type()));
        }
        text.push('\n');
        for row in reader.get_row_iter(None).expect("rows") {
            text.push_str(&format!("{}\n", row.expect("a row")));
        }
        return text;
    }
    String::from_utf8(bytes).expect("a text file")
}

#[test]
fn run_fixtures() {
    let mut failures = Vec::new();
    for dir in fixture_dirs() {
        let fixture = name(&dir);
        let text = transcript(&dir);
        // A fixture named after a code shows that code.
        if let Some(code) = fixture.split('_').next().filter(|c| {
            c.len() == 5 && c.starts_with('R') && c[1..].bytes().all(|b| b.is_ascii_digit())
        }) && !text.contains(&format!("[{code}]"))
        {
            failures.push(format!("{fixture}: does not report {code}"));
        }
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots/run_fixtures"),
        );
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(fixture.clone(), text));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Run codes that only a test server can provoke, which a fixture cannot
/// start: each is proven by the integration test named here instead, which
/// must mention the code.
const PROVEN_ELSEWHERE: &[(&str, &str)] = &[
    // An activity type the Marketo instance does not list: the Marketo fake.
    ("R0014", "tests/run_marketo_source.rs"),
];

#[test]
fn every_run_code_has_a_fixture() {
    let names: Vec<String> = fixture_dirs().iter().map(|d| name(d)).collect();
    for (code, test) in PROVEN_ELSEWHERE {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(test);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{test} is missing"));
        assert!(text.contains(code), "{test} does not prove {code}");
    }
    let missing: Vec<&str> = accord::diag::codes::all()
        .map(|c| c.code)
        .filter(|code| code.starts_with('R'))
        .filter(|code| !PROVEN_ELSEWHERE.iter().any(|(c, _)| c == code))
        .filter(|code| !names.iter().any(|n| n.starts_with(&format!("{code}_"))))
        .collect();
    assert!(
        missing.is_empty(),
        "run codes without a fixture in tests/run_fixtures: {missing:?}"
    );
}
