//! `git` in a test's scratch repository: a fixed identity, no signing, and
//! `main` as the first branch, whatever the machine's configuration says.

use std::path::Path;
use std::process::Command;

/// Runs `git ARGS` in `dir`; a failure fails the test with git's message.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=accord",
            "-c",
            "user.email=accord@example.com",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
