//! `accord run` end to end on the example project and its sample data.
#![cfg(feature = "engine")]

#[path = "support/project.rs"]
mod project;

use project::{LATER, NOW, delivered, run, scratch};

fn report(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "accord run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON run report")
}

#[test]
fn runs_the_example_project_and_delivers_only_changes() {
    let scratch_dir = scratch("run-sample");
    let dir = scratch_dir.path();
    let first = report(&run(dir, NOW, None, &["--format", "json"]));

    // Sources: every source read, rows typed, freshness judged.
    let sources = first["sources"].as_object().expect("sources");
    assert_eq!(sources.len(), 7, "{sources:?}");
    for (name, s) in sources {
        assert!(s["rows"].as_u64().unwrap_or(0) > 0, "{name} read no rows");
    }
    assert_eq!(first["sources"]["crm_accounts"]["freshness"], "fresh");

    // Links: people reach accounts by key, by email domain and, with no
    // account of their own, through the account-contact relation.
    let link = &first["links"][0];
    assert!(link["by_key"].as_u64().unwrap_or(0) > 0, "{link}");
    assert!(link["by_email_domain"].as_u64().unwrap_or(0) > 0, "{link}");
    assert!(link["by_relation"].as_u64().unwrap_or(0) > 0, "{link}");

    // Many-to-many: the executive briefing reaches related executives.
    let briefing = &first["activations"]["exec_briefing_local"];
    assert_eq!(briefing["status"], "delivered", "{briefing}");
    assert!(briefing["members"].as_u64().unwrap_or(0) > 0, "{briefing}");

    // Audiences: sizes for every audience and split part.
    let audiences = first["audiences"].as_object().expect("audiences");
    assert!(audiences.contains_key("B2B_Webinar_Invite.control"));

    // The local file activations delivered; the first incremental one is a
    // full backfill, everything created.
    let tiers = &first["activations"]["engagement_tiers_local"];
    assert_eq!(tiers["status"], "delivered", "{tiers}");
    assert!(tiers["created"].as_u64().unwrap_or(0) > 0);
    assert_eq!(tiers["removed"], 0);
    // Consent: the Marketo activations report the people it removed.
    let nurture = &first["activations"]["abm_nurture_marketo"];
    assert!(
        nurture["excluded_consent"].as_u64().unwrap_or(0) > 0,
        "{nurture}"
    );
    let files = delivered(dir);
    assert!(
        files.keys().any(|f| f.ends_with(".manifest.json")),
        "{:?}",
        files.keys()
    );

    // The same time again: the batch schedules are not due (the streaming
    // ones are, on every run) ...
    let again = report(&run(dir, NOW, None, &["--format", "json"]));
    let tiers = &again["activations"]["engagement_tiers_local"];
    assert_eq!(tiers["status"], "not_due", "{tiers}");
    assert_eq!(
        tiers["schedule"]["next_due"], "2026-11-28T18:00:00Z",
        "{tiers}"
    );
    // ... and forced with `--all`, the same data has nothing new for
    // incremental exports.
    let again = report(&run(dir, NOW, None, &["--format", "json", "--all"]));
    assert_eq!(
        again["activations"]["engagement_tiers_local"]["status"],
        "unchanged"
    );

    // A week later, time windows move: only the changes are delivered.
    let later = report(&run(dir, LATER, None, &["--format", "json"]));
    let t = &later["activations"]["engagement_tiers_local"];
    assert_eq!(t["status"], "delivered", "{t}");
    let changed = t["created"].as_u64().unwrap_or(0)
        + t["updated"].as_u64().unwrap_or(0)
        + t["removed"].as_u64().unwrap_or(0);
    assert!(
        changed > 0
            && changed
                < t["members"].as_u64().unwrap_or(0) + t["removed"].as_u64().unwrap_or(0) + 1
    );

    // The run log has one line per delivering run.
    let log = std::fs::read_to_string(dir.join(".accord/runs.jsonl")).expect("run log");
    assert_eq!(log.lines().count(), 4);
}

#[test]
fn preview_prints_sizes_and_overlaps_and_delivers_nothing() {
    let scratch_dir = scratch("run-preview");
    let dir = scratch_dir.path();
    let out = run(dir, NOW, None, &["--preview"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("preview: nothing delivered"), "{text}");
    assert!(text.contains("overlaps"), "{text}");
    assert!(delivered(dir).is_empty());
    assert!(!dir.join(".accord/state").exists());
}
