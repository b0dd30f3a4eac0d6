//! `accord init`: the project it writes checks clean in every environment,
//! runs (with the engine) and exports the audience; it never overwrites.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/temp.rs"]
mod temp;

use cli::{accord_in as accord, printed as text};

#[test]
fn a_new_project_checks_clean_in_every_environment() {
    let tmp = temp::dir("init");
    let out = accord(tmp.path(), &["init", "new project"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = tmp.path().join("new project");
    for env in ["dev", "prod"] {
        let out = accord(tmp.path(), &["check", "new project", "--env", env]);
        assert_eq!(out.status.code(), Some(0), "{env}: {}", text(&out));
        assert!(
            text(&out).contains("0 errors, 0 warnings"),
            "{}",
            text(&out)
        );
    }
    let toml = std::fs::read_to_string(dir.join("accord.toml")).expect("accord.toml");
    assert!(toml.contains("name = \"new-project\""), "{toml}");
    let ignored = std::fs::read_to_string(dir.join(".gitignore")).expect(".gitignore");
    assert!(ignored.lines().any(|l| l == ".accord/") && ignored.lines().any(|l| l == "out/"));
    // The plan shows the policy guarding the vendor-licensed field: its
    // label reaches the file, whose action the policy does not deny.
    let out = accord(&dir, &["plan", ".", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("policy no_vendor_data_to_partners Target_Accounts not_applicable"),
        "{}",
        text(&out)
    );
}

#[test]
fn init_never_overwrites() {
    let tmp = temp::dir("init-again");
    assert_eq!(accord(tmp.path(), &["init", "p"]).status.code(), Some(0));
    let out = accord(tmp.path(), &["init", "p"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("already holds an accord project"),
        "{}",
        text(&out)
    );

    // A folder with one of the files: refused before anything is written.
    let other = tmp.path().join("q");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("audiences.toml"), "# mine\n").expect("write");
    std::fs::write(other.join(".gitignore"), "/target").expect("write");
    let out = accord(tmp.path(), &["init", "q"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("already has audiences.toml"),
        "{}",
        text(&out)
    );
    assert!(!other.join("accord.toml").exists(), "nothing written");
    assert_eq!(
        std::fs::read_to_string(other.join("audiences.toml")).expect("read"),
        "# mine\n"
    );

    // An existing .gitignore keeps its lines and gains the missing ones.
    std::fs::remove_file(other.join("audiences.toml")).expect("rm");
    assert_eq!(accord(tmp.path(), &["init", "q"]).status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(other.join(".gitignore")).expect("read"),
        "/target\n.accord/\nout/\n"
    );
}

/// With the engine, the new project runs and exports the audience: the two
/// large software accounts with a reachable contact.
#[cfg(feature = "engine")]
#[test]
fn a_new_project_runs() {
    let tmp = temp::dir("init-run");
    assert_eq!(accord(tmp.path(), &["init", "p"]).status.code(), Some(0));
    let dir = tmp.path().join("p");
    let out = accord(
        &dir,
        &["run", ".", "--env", "dev", "--now", "2026-11-30T12:00:00Z"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let exports: Vec<_> = std::fs::read_dir(dir.join("out/exports"))
        .expect("exports")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    assert_eq!(exports.len(), 1, "{exports:?}");
    let csv = std::fs::read_to_string(&exports[0]).expect("csv");
    assert!(csv.contains("A-1001") && !csv.contains("A-1003"), "{csv}");
    assert_eq!(csv.lines().count(), 2, "one header and one account: {csv}");
}
