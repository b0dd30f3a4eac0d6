//! Symbolic links in a spec project: followed, files and folders alike, so a
//! spec behind a link is checked like any other; a dangling link is an
//! `A0013` error naming the link, never a file skipped without a word. A
//! link that leads back into its own folder hides nothing: it is a warning
//! (`A0014`) and is not followed. The projects are built at test time, so
//! the links are real on every checkout.
#![cfg(unix)]

#[path = "support/temp.rs"]
mod temp;

use std::os::unix::fs::symlink;
use std::path::Path;

use accord::compile::{self, Options};

const PROJECT: &str = r#"
[project]
name = "links"
format = 1

[environment.prod]
enforcement = "block"

[schema.account]
class = "account"
key = "accountId"
[schema.account.fields]
accountId = { type = "string", identity = "crm_account_id" }
name = "string"
employees = { type = "int", labels = ["third_party"] }

[audience.B2B_Big]
rule = 'account.employees > 1000'

[destination.files]
type = "filesystem"
path = "out/exports"
format = "csv"
actions = ["export_to_third_party"]

[activation.big_files]
destination = "files"
audiences = ["B2B_Big"]
schedule = "daily@02:00"
export = "full"
[activation.big_files.map]
name = "account.name"
"#;

/// A hard policy the project's only activation violates.
const POLICY: &str = r#"
[policy.no_vendor_data_out]
actions = ["export_to_third_party"]
deny = "third_party"
enforcement = "hard"
"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `check --env prod` of the project at `root`: the codes it reports.
fn codes(root: &Path) -> Vec<String> {
    let options = Options {
        environment: Some("prod".into()),
        ..Options::default()
    };
    let compiled = compile::check(root, &options).expect("the project loads");
    compiled
        .diagnostics
        .iter()
        .map(|d| format!("{} {}", d.code.as_str(), d.message))
        .collect()
}

#[test]
fn a_policy_file_behind_a_link_applies() {
    let tmp = temp::dir("links-file");
    let root = tmp.path().join("project");
    write(&root.join("accord.toml"), PROJECT);
    write(&tmp.path().join("shared/policies.toml"), POLICY);
    std::fs::create_dir_all(root.join("governance")).unwrap();
    symlink(
        "../../shared/policies.toml",
        root.join("governance/policies.toml"),
    )
    .unwrap();
    let codes = codes(&root);
    assert!(
        codes.iter().any(|c| c.starts_with("G0001")),
        "the linked hard policy blocks the activation: {codes:?}"
    );
}

#[test]
fn a_folder_behind_a_link_is_read() {
    let tmp = temp::dir("links-folder");
    let root = tmp.path().join("project");
    write(&root.join("accord.toml"), PROJECT);
    write(&tmp.path().join("shared/governance/policies.toml"), POLICY);
    symlink("../shared/governance", root.join("governance")).unwrap();
    let codes = codes(&root);
    assert!(codes.iter().any(|c| c.starts_with("G0001")), "{codes:?}");
}

#[test]
fn a_dangling_link_is_an_error_that_names_it() {
    let tmp = temp::dir("links-dangling");
    let root = tmp.path().join("project");
    write(&root.join("accord.toml"), PROJECT);
    std::fs::create_dir_all(root.join("governance")).unwrap();
    symlink(
        "../../gone/policies.toml",
        root.join("governance/policies.toml"),
    )
    .unwrap();
    symlink("../../gone/waivers", root.join("governance/waivers")).unwrap();
    // A dangling link to a data file cannot hide specs: not this check's.
    symlink("../gone.csv", root.join("accounts.csv")).unwrap();
    let codes = codes(&root);
    let links: Vec<&String> = codes.iter().filter(|c| c.starts_with("A0013")).collect();
    assert_eq!(
        links,
        [
            "A0013 symbolic link `governance/policies.toml` cannot be followed: it points to \
             `../../gone/policies.toml`, which does not exist",
            "A0013 symbolic link `governance/waivers` cannot be followed: it points to \
             `../../gone/waivers`, which does not exist",
        ],
        "{codes:?}"
    );
}

#[test]
fn a_link_loop_is_a_warning_not_an_endless_walk() {
    let tmp = temp::dir("links-loop");
    let root = tmp.path().join("project");
    write(&root.join("accord.toml"), PROJECT);
    write(&root.join("governance/policies.toml"), POLICY);
    symlink("..", root.join("governance/again")).unwrap();
    let codes = codes(&root);
    assert!(
        codes.contains(
            &"A0014 symbolic link `governance/again` is not followed: it leads back to `.`, \
              a folder it is in"
                .to_string()
        ),
        "{codes:?}"
    );
    // The policy was read once, not once per trip round the loop.
    assert_eq!(
        codes.iter().filter(|c| c.starts_with("A0007")).count(),
        0,
        "{codes:?}"
    );
}

/// Runs git in `dir`, with an identity so a commit works on any machine.
fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=accord",
            "-c",
            "user.email=accord@example.com",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(status.status.success(), "git {args:?}: {:?}", status);
}

#[test]
fn links_are_followed_at_a_git_revision_too() {
    // `accord diff --base REV` reads specs from git, where a link is a blob
    // holding its target: it must be followed like on disk.
    let tmp = temp::dir("links-git");
    let repo = tmp.path();
    let root = repo.join("project");
    write(&root.join("accord.toml"), PROJECT);
    write(&repo.join("shared/policies.toml"), POLICY);
    write(
        &repo.join("shared/governance/more.toml"),
        "[label.partner_only]\n",
    );
    std::fs::create_dir_all(root.join("governance")).unwrap();
    symlink(
        "../../shared/policies.toml",
        root.join("governance/policies.toml"),
    )
    .unwrap();
    symlink("../shared/governance", root.join("linked")).unwrap();
    symlink("../gone.toml", root.join("gone.toml")).unwrap();
    git(repo, &["init", "-q"]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "specs"]);
    let options = Options {
        environment: Some("prod".into()),
        ..Options::default()
    };
    let compiled = compile::check_revision(&root, "HEAD", &options).expect("the revision loads");
    let paths: Vec<&str> = compiled
        .sources
        .iter()
        .map(|(_, f)| f.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "accord.toml",
            "gone.toml",
            "governance/policies.toml",
            "linked/more.toml"
        ]
    );
    let codes: Vec<String> = compiled
        .diagnostics
        .iter()
        .map(|d| format!("{} {}", d.code.as_str(), d.message))
        .collect();
    // The linked policy and label were read (governance itself waits for
    // the dangling link to be fixed).
    let model = compiled.model.as_ref().expect("resolution ran");
    assert!(model.policies.contains("no_vendor_data_out"));
    assert!(model.labels.contains_key("partner_only"));
    assert_eq!(
        codes,
        [
            "A0013 symbolic link `gone.toml` cannot be followed: it points to `../gone.toml`, \
             which does not exist"
        ]
    );
    assert!(
        codes.contains(
            &"A0013 symbolic link `gone.toml` cannot be followed: it points to `../gone.toml`, \
              which does not exist"
                .to_string()
        ),
        "{codes:?}"
    );
}
