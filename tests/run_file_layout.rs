//! The rendered delivery manifests and the run agree on file names: the
//! `file_name` (and `manifest_file`) that `accord render` shows reviewers,
//! filled with the run's id, date and audiences, are exactly the files the
//! run writes, for every file activation of the example project (one with
//! the default pattern, one with `{audience}` and `{date}`).
#![cfg(feature = "engine")]

use std::collections::BTreeSet;

use serde_json::Value;

#[path = "support/plans.rs"]
mod plans;
#[path = "support/project.rs"]
mod project;

use project::{NOW, delivered, run, scratch};

#[test]
fn the_rendered_names_are_the_names_written() {
    let scratch_dir = scratch("layout");
    let dir = scratch_dir.path();
    let plan = plans::plan_of(dir, "dev");
    let (jobs, problems) = accord::render::render(&plan, &accord::render::Options::default());
    assert!(problems.is_empty(), "{problems:?}");
    let out = run(dir, NOW, None, &["--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");

    let mut expected = BTreeSet::new();
    let mut per_audience = 0;
    for (path, text) in &jobs {
        if !path.starts_with("manifests/") {
            continue;
        }
        let manifest: Value = serde_json::from_str(text).expect("a JSON manifest");
        let delivery = &manifest["delivery"];
        if delivery["kind"] != "files" {
            continue;
        }
        let activation = manifest["activation"].as_str().expect("a name");
        let destination = manifest["destination"]["name"].as_str().expect("a name");
        let status = &report["activations"][activation];
        assert_eq!(status["status"], "delivered", "{activation}: {status}");
        let run_id = status["run_id"].as_str().expect("a run id");
        let fill = |pattern: &str, audience: &str| {
            let name = pattern
                .replace("{run_id}", run_id)
                .replace("{date}", &run_id[..8])
                .replace("{audience}", audience);
            assert!(
                !name.contains('{'),
                "{activation}: {name} keeps a placeholder"
            );
            format!("{destination}/{name}")
        };
        let pattern = delivery["file_name"].as_str().expect("a file name");
        if delivery["one_set_per_audience"] == true {
            per_audience += 1;
            for audience in manifest["audiences"].as_array().expect("audiences") {
                expected.insert(fill(pattern, audience.as_str().expect("a name")));
            }
        } else {
            expected.insert(fill(pattern, ""));
        }
        let manifest_file = delivery["manifest_file"].as_str().expect("a manifest");
        expected.insert(fill(manifest_file, ""));
    }
    assert!(
        per_audience > 0,
        "the example has a pattern with {{audience}}"
    );
    assert!(expected.len() > 3, "{expected:?}");
    let written: BTreeSet<String> = delivered(dir).into_keys().collect();
    assert_eq!(written, expected);
}
