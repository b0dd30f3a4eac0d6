//! Golden requests: the example project's `dev` environment is a dry run,
//! so `accord run specs --env dev` writes the exact requests each API
//! destination would receive, and the uploads each remote file destination
//! would get. Their first requests, and how many there
//! are, are snapshotted per activation: a change to a vendor's encoding, or
//! to what the example sends, shows in review.
#![cfg(feature = "engine")]

#[path = "support/project.rs"]
mod project;

use std::collections::BTreeMap;

use project::{NOW, run, scratch};
use serde_json::{Value, json};

/// Requests shown per activation; the count covers the rest.
const SHOWN: usize = 4;
/// Members shown per request body; the rest are counted.
const MEMBERS_SHOWN: usize = 2;

/// A request with every long array of its body cut to its first members
/// and a count of the rest: the shape of each vendor's body is what review
/// needs, not every member of the example.
fn shortened(request: &Value) -> Value {
    fn cut(value: &Value) -> Value {
        match value {
            Value::Array(items) if items.len() > MEMBERS_SHOWN => {
                let mut kept: Vec<Value> = items.iter().take(MEMBERS_SHOWN).map(cut).collect();
                kept.push(json!(format!("... {} more", items.len() - MEMBERS_SHOWN)));
                Value::Array(kept)
            }
            Value::Array(items) => Value::Array(items.iter().map(cut).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), cut(v))).collect())
            }
            other => other.clone(),
        }
    }
    cut(request)
}

#[test]
fn the_example_projects_dry_run_requests() {
    let scratch_dir = scratch("dry-requests");
    let dir = scratch_dir.path();
    let out = run(dir, NOW, None, &["--format", "json"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let mut golden = BTreeMap::new();
    for (name, activation) in report["activations"].as_object().expect("activations") {
        if activation["status"] != "dry_run" {
            continue;
        }
        if activation["api"].is_null() {
            // A remote file destination: the uploads a live run would make,
            // in order (data files, then the manifest).
            let file = activation["written"][0].as_str().expect("an objects file");
            let text = std::fs::read_to_string(dir.join(file)).expect("the objects");
            let uploads: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line"))
                .collect();
            assert_eq!(
                uploads.last().map(|u| &u["op"]),
                Some(&json!("put_new")),
                "{name}: the manifest comes last"
            );
            golden.insert(
                name.clone(),
                json!({
                    "destination": activation["destination_type"],
                    "uploads": uploads,
                }),
            );
            continue;
        }
        let api = &activation["api"];
        let file = api["written"][0].as_str().expect("a requests file");
        let text = std::fs::read_to_string(dir.join(file)).expect("the requests");
        let requests: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        // The calls count a token request too, which is never written.
        let calls = api["calls"].as_u64().expect("calls");
        let written = requests.len() as u64;
        assert!(
            calls == written || calls == written + 1,
            "{name}: {calls} calls, {written} written"
        );
        let secrets = ["secret", "token"];
        for r in &requests {
            for (header, value) in r["headers"].as_object().into_iter().flatten() {
                let lower = header.to_ascii_lowercase();
                if lower == "authorization" || secrets.iter().any(|s| lower.contains(s)) {
                    assert_eq!(value, "<redacted>", "{name}: {header} is not redacted");
                }
            }
        }
        golden.insert(
            name.clone(),
            json!({
                "destination": activation["destination_type"],
                "planned": api["planned"],
                "requests": requests.len(),
                "first": requests.iter().take(SHOWN).map(shortened).collect::<Vec<_>>(),
            }),
        );
    }
    assert!(
        golden.len() >= 4,
        "API activations in the example: {golden:?}"
    );
    insta::with_settings!({
        snapshot_path => "../snapshots/run_dry_requests",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!("example_project", golden);
    });
}
