//! The CI files users copy (`ci/github/accord.yml`,
//! `ci/gitlab/accord.gitlab-ci.yml`) do what `docs/ci.md` says: their shell
//! steps are extracted and run, as the CI services run them, in a temporary
//! git repository holding the example project, with this build's `accord`
//! and fakes of `gh` and `curl` on the PATH that record what they were asked
//! to post. Only the step that installs accord from the network is skipped.

#[path = "support/git.rs"]
mod git;
#[path = "support/project.rs"]
mod project;
#[path = "support/temp.rs"]
mod temp;

use git::git;

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The lines indented deeper than `indent` from `lines[start]` on, with
/// that indentation and two more spaces taken off: a YAML block scalar's
/// text. Also the index of the first line after it.
fn block(lines: &[&str], start: usize, indent: usize) -> (String, usize) {
    let mut text = Vec::new();
    let mut i = start;
    while i < lines.len() {
        let l = lines[i];
        if !l.trim().is_empty() && l.len() - l.trim_start().len() <= indent {
            break;
        }
        text.push(l.get(indent + 2..).unwrap_or("").to_string());
        i += 1;
    }
    (text.join("\n"), i)
}

/// The `run: |` blocks of a GitHub workflow, with their step names.
fn github_steps(workflow: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = workflow.lines().collect();
    let mut steps = Vec::new();
    let mut name = String::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if let Some(n) = trimmed.strip_prefix("- name: ") {
            name = n.to_string();
        }
        if trimmed == "run: |" {
            let (script, next) = block(&lines, i + 1, lines[i].len() - trimmed.len());
            steps.push((name.clone(), script));
            i = next;
            continue;
        }
        i += 1;
    }
    steps
}

/// The `script:` commands of a GitLab job: `- cmd` lines and `- |` blocks.
fn gitlab_script(job: &str) -> Vec<String> {
    let lines: Vec<&str> = job.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "script:")
        .expect("a script");
    let mut commands = Vec::new();
    let mut i = start + 1;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let indent = lines[i].len() - trimmed.len();
        if indent <= 2 && !trimmed.is_empty() {
            break;
        }
        if trimmed == "- |" {
            let (script, next) = block(&lines, i + 1, indent);
            commands.push(script);
            i = next;
            continue;
        }
        if let Some(command) = trimmed.strip_prefix("- ") {
            commands.push(command.to_string());
        }
        i += 1;
    }
    commands
}

/// A repository whose `main` holds the example project and its plan lock,
/// with `origin` pointing at itself (so `git fetch origin` works offline),
/// and a folder of fake tools first on the PATH.
struct Repo {
    _dir: tempfile::TempDir,
    path: PathBuf,
    bin: PathBuf,
    /// What the fakes were asked: one line per call, then the body posted.
    log: PathBuf,
}

impl Repo {
    fn new(name: &str) -> Repo {
        let dir = temp::dir(name);
        let path = dir.path().join("repo");
        let bin = dir.path().join("bin");
        let log = dir.path().join("posted.log");
        std::fs::create_dir_all(&bin).expect("mkdir");
        project::copy_tree(&root().join("specs"), &path.join("specs"));
        // The example's waiver expires on 2027-03-31 by design; the
        // workflow judges it on the day it runs, so push it out of reach.
        let waivers = path.join("specs/governance/waivers.toml");
        let text = std::fs::read_to_string(&waivers).expect("waivers");
        std::fs::write(&waivers, text.replace("2027-03-31", "2099-12-31")).expect("write");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_accord"), bin.join("accord"))
            .expect("link accord");
        // `gh pr comment --edit-last` fails when the token wrote no comment
        // yet, as the real one does: the workflow must then write one.
        let fake = |tool: &str, edit_last_fails: bool| {
            let script = format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{log}'\nfor a in \"$@\"; do\n  case \"$a\" in\n    --edit-last) [ ! -e '{log}.commented' ] && {fail} ;;\n  esac\ndone\nprev=''\nfor a in \"$@\"; do\n  if [ \"$prev\" = '--body-file' ]; then cat \"$a\" >> '{log}'; touch '{log}.commented'; fi\n  case \"$a\" in body@*) cat \"${{a#body@}}\" >> '{log}';; esac\n  prev=\"$a\"\ndone\nexit 0\n",
                log = log.display(),
                fail = if edit_last_fails { "exit 1" } else { "true" }
            );
            let file = bin.join(tool);
            std::fs::write(&file, script).expect("write fake");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        };
        fake("gh", true);
        fake("curl", false);
        git(&path, &["init", "-q"]);
        let accord = Command::new(env!("CARGO_BIN_EXE_accord"))
            .args([
                "plan",
                "specs",
                "--env",
                "prod",
                "--out",
                "specs/plan.lock.json",
            ])
            .current_dir(&path)
            .output()
            .expect("accord runs");
        assert!(
            accord.status.success(),
            "{}",
            String::from_utf8_lossy(&accord.stderr)
        );
        git(&path, &["add", "-A"]);
        git(&path, &["commit", "-q", "-m", "specs"]);
        let own = path.display().to_string();
        git(&path, &["remote", "add", "origin", &own]);
        git(&path, &["fetch", "-q", "origin"]);
        Repo {
            _dir: dir,
            path,
            bin,
            log,
        }
    }

    /// A pull request's branch that widens the enterprise ICP.
    fn change_a_rule(&self) {
        git(&self.path, &["checkout", "-q", "-b", "widen-icp"]);
        let icp = self.path.join("specs/audiences/icp.toml");
        let text = std::fs::read_to_string(&icp).expect("icp");
        let changed = text.replacen("\"Healthcare\"]", "\"Healthcare\", \"Retail\"]", 1);
        assert_ne!(text, changed, "the rule to change is in the example");
        std::fs::write(&icp, changed).expect("write");
        git(
            &self.path,
            &["commit", "-q", "-am", "widen the enterprise ICP"],
        );
    }

    /// Runs a step as the CI service does (`bash -eo pipefail`), with
    /// `env`; its exit code and output.
    fn run(&self, script: &str, env: &[(&str, &str)]) -> (i32, String) {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(&self.path)
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .output()
            .expect("bash runs");
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn posted(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

const GITHUB_ENV: &[(&str, &str)] = &[
    ("ACCORD_DIR", "specs"),
    ("ACCORD_ENV", "prod"),
    ("ACCORD_PLAN", "specs/plan.lock.json"),
    ("GH_TOKEN", "not-a-token"),
    ("PR_NUMBER", "7"),
    ("BASE_REF", "main"),
];

#[test]
fn the_github_workflow_checks_locks_and_posts_one_comment() {
    let workflow = std::fs::read_to_string(root().join("ci/github/accord.yml")).expect("workflow");
    let steps = github_steps(&workflow);
    let names: Vec<&str> = steps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Install accord",
            "Check the specs",
            "Compare the plan with its lock",
            "Post what the change does"
        ]
    );
    let step = |name: &str| &steps.iter().find(|(n, _)| n == name).expect("a step").1;
    let repo = Repo::new("ci-github");

    // On main: clean, the lock matches, and a diff against itself says so.
    let (code, out) = repo.run(step("Check the specs"), GITHUB_ENV);
    assert_eq!(code, 0, "{out}");
    let (code, out) = repo.run(step("Compare the plan with its lock"), GITHUB_ENV);
    assert_eq!(code, 0, "{out}");

    // A pull request that changes a rule but not the lock: the lock step
    // fails and says how to update it; the diff step succeeds (exit 2 is
    // "changed") and posts the markdown, creating the comment first, then
    // editing it on the next push.
    repo.change_a_rule();
    let (code, out) = repo.run(step("Check the specs"), GITHUB_ENV);
    assert_eq!(code, 0, "{out}");
    let (code, out) = repo.run(step("Compare the plan with its lock"), GITHUB_ENV);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("accord plan specs --env prod"), "{out}");
    let (code, out) = repo.run(step("Post what the change does"), GITHUB_ENV);
    assert_eq!(code, 0, "{out}");
    let posted = repo.posted();
    assert!(
        posted.starts_with(
            "gh pr comment 7 --edit-last --body-file accord-diff.md\ngh pr comment 7 --body-file accord-diff.md\n### accord:"
        ),
        "{posted}"
    );
    assert!(
        posted.contains("audience `B2B_ICP_Enterprise` → audience `B2B_ABM_Top`"),
        "{posted}"
    );
    let (code, out) = repo.run(step("Post what the change does"), GITHUB_ENV);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        repo.posted().matches("gh pr comment 7 --edit-last").count(),
        2,
        "the second push edits the comment: {}",
        repo.posted()
    );

    // An error in the specs fails the diff step instead of posting.
    std::fs::write(
        repo.path.join("specs/broken.toml"),
        "[audience.X]\nrule = 'account.nope'\n",
    )
    .expect("write");
    let before = repo.posted();
    let (code, out) = repo.run(step("Post what the change does"), GITHUB_ENV);
    assert_eq!(code, 1, "{out}");
    assert_eq!(repo.posted(), before, "nothing is posted on an error");
    let (code, out) = repo.run(step("Check the specs"), GITHUB_ENV);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("::error file=specs/broken.toml,"),
        "annotations attach: {out}"
    );
}

#[test]
fn the_gitlab_job_checks_locks_and_posts_a_note() {
    let job = std::fs::read_to_string(root().join("ci/gitlab/accord.gitlab-ci.yml")).expect("job");
    let script = gitlab_script(&job);
    assert_eq!(script.len(), 3, "{script:?}");
    let repo = Repo::new("ci-gitlab");
    repo.change_a_rule();
    let env = [
        ("ACCORD_DIR", "specs"),
        ("ACCORD_ENV", "prod"),
        ("ACCORD_PLAN", "specs/plan.lock.json"),
        ("CI_MERGE_REQUEST_IID", "12"),
        ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
        ("CI_API_V4_URL", "https://gitlab.example.com/api/v4"),
        ("CI_PROJECT_ID", "99"),
        ("ACCORD_API_TOKEN", "not-a-token"),
    ];
    let (code, out) = repo.run(&script[0], &env);
    assert_eq!(code, 0, "{out}");
    let (code, out) = repo.run(&script[1], &env);
    assert_eq!(code, 1, "the lock is stale on the branch: {out}");
    let (code, out) = repo.run(&script[2], &env);
    assert_eq!(code, 0, "{out}");
    let posted = repo.posted();
    assert!(
        posted.contains("https://gitlab.example.com/api/v4/projects/99/merge_requests/12/notes"),
        "{posted}"
    );
    assert!(posted.contains("### accord:"), "{posted}");
}

#[test]
fn the_pre_commit_hooks_run_accord() {
    let hooks = std::fs::read_to_string(root().join(".pre-commit-hooks.yaml")).expect("hooks");
    for id in ["accord-fmt", "accord-check", "accord-plan-lock"] {
        assert!(hooks.contains(&format!("- id: {id}")), "{id}");
    }
    assert!(hooks.contains("entry: accord check"));
    assert!(hooks.contains("pass_filenames: false"));
}
