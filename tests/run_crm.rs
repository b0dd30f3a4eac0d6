//! `accord run` delivering to both CRMs end to end: the small project in
//! `tests/api_projects/crm/` run by the built binary against the loopback
//! Salesforce and Dataverse fakes, as a user runs it. The vendor files have
//! their own tests (`deliver_salesforce.rs`, `deliver_dynamics.rs`); this
//! one proves the run around them for vendors whose membership is a record
//! field: the first run sets the audience field of every member, a rerun
//! sends nothing, a member who leaves has the field cleared (and nothing
//! else changed), and every limit of both fakes is kept.
#![cfg(feature = "engine")]

#[path = "support/fakes/dynamics.rs"]
mod dynamics_fake;
#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/project.rs"]
mod project;
#[path = "support/fakes/salesforce.rs"]
mod salesforce_fake;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use fake::Policy;
use serde_json::Value;

const NOW: &str = "2026-11-28T12:00:00Z";
const LATER: &str = "2026-11-28T13:00:00Z";
const SF_FIELD: &str = "B2B_Software__c";
const DV_COLUMN: &str = "b2b_software";

/// A scratch copy of the project with both endpoints pointed at the fakes
/// and the Salesforce ids of its people (`@SF_p1@`, ...) filled in.
fn project(salesforce: &str, dataverse: &str, sf_ids: &[(&str, String)]) -> tempfile::TempDir {
    let temp = project::copy_of("tests/api_projects/crm", "crm");
    let spec = temp.path().join("accord.toml");
    let text = std::fs::read_to_string(&spec)
        .expect("read")
        .replace("http://127.0.0.1:9", salesforce)
        .replace("http://127.0.0.1:8", dataverse);
    std::fs::write(&spec, text).expect("write");
    let people = temp.path().join("data/people.csv");
    let mut text = std::fs::read_to_string(&people).expect("read");
    for (person, id) in sf_ids {
        text = text.replace(&format!("@SF_{person}@"), id);
    }
    std::fs::write(&people, text).expect("write");
    temp
}

fn run(dir: &Path, now: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("run")
        .arg(dir)
        .args(["--env", "test", "--now", now, "--format", "json"])
        .env("SF_CLIENT_ID", "fake-client")
        .env("SF_CLIENT_SECRET", "fake-secret")
        .env("DV_CLIENT_ID", "fake-app")
        .env("DV_CLIENT_SECRET", "fake-secret")
        .env_remove("ACCORD_FAULT_AFTER")
        .output()
        .expect("accord runs")
}

fn ok(out: Output) -> Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn both_crms_hold_the_audience_in_its_field_and_a_leave_clears_it() {
    let (sf_server, salesforce) = salesforce_fake::Salesforce::start(
        Policy::open(),
        salesforce_fake::Options {
            custom_fields: vec![SF_FIELD.into()],
            ..salesforce_fake::Options::default()
        },
    );
    let (dv_server, dataverse) = dynamics_fake::Dataverse::start(
        Policy::open(),
        dynamics_fake::Options {
            columns: ["emailaddress1", "firstname", "lastname", DV_COLUMN]
                .iter()
                .map(|c| c.to_string())
                .collect(),
            ..dynamics_fake::Options::default()
        },
    );
    // The people exist in Salesforce already (upserts match on their Id).
    let sf_ids: Vec<(&str, String)> = [
        ("p1", "Archer", "alice@acme.example"),
        ("p2", "Baker", "bob@acme.example"),
        ("p3", "Cole", "carol@globex.example"),
        ("p4", "Drake", "dan@initech.example"),
    ]
    .iter()
    .map(|(p, last, email)| {
        (
            *p,
            salesforce.create(&[("LastName", last), ("Email", email)]),
        )
    })
    .collect();
    let dir = project(&sf_server.url(), &dv_server.url(), &sf_ids);

    let first = ok(run(dir.path(), NOW));
    for activation in ["targets_salesforce", "targets_dataverse"] {
        let a = &first["activations"][activation];
        assert_eq!(a["status"], "delivered", "{first}");
        assert_eq!(a["api"]["planned"], 3, "{first}");
        assert_eq!(a["api"]["accepted"], 3, "{first}");
    }
    let software = set(&[
        "alice@acme.example",
        "bob@acme.example",
        "dan@initech.example",
    ]);
    assert_eq!(salesforce.active(SF_FIELD, "Email"), software);
    let dv_active: BTreeSet<String> = dataverse
        .active(DV_COLUMN)
        .iter()
        .map(|id| {
            dataverse.contact(id).expect("contact")["emailaddress1"]
                .as_str()
                .expect("email")
                .to_string()
        })
        .collect();
    assert_eq!(dv_active, software);
    let alice = salesforce
        .records()
        .into_iter()
        .find(|r| r["Email"] == "alice@acme.example")
        .expect("alice's record");
    assert_eq!(alice["LastName"], "Archer");

    // Nothing changed: nothing is sent.
    let rerun = ok(run(dir.path(), LATER));
    for activation in ["targets_salesforce", "targets_dataverse"] {
        assert_eq!(
            rerun["activations"][activation]["status"], "unchanged",
            "{rerun}"
        );
    }

    // Initech leaves the audience: Dan's field is cleared, his record kept.
    let accounts = dir.path().join("data/accounts.csv");
    let text = std::fs::read_to_string(&accounts).expect("read");
    std::fs::write(
        &accounts,
        text.replace("a3,Initech,Software", "a3,Initech,Fintech"),
    )
    .expect("write");
    let left = ok(run(dir.path(), LATER));
    for activation in ["targets_salesforce", "targets_dataverse"] {
        let a = &left["activations"][activation];
        assert_eq!(a["status"], "delivered", "{left}");
        assert_eq!(a["api"]["planned"], 1, "{left}");
        assert_eq!(a["api"]["accepted"], 1, "{left}");
    }
    let still = set(&["alice@acme.example", "bob@acme.example"]);
    assert_eq!(salesforce.active(SF_FIELD, "Email"), still);
    let dan = salesforce
        .records()
        .into_iter()
        .find(|r| r["Email"] == "dan@initech.example")
        .expect("Dan's record stays");
    assert!(dan.get(SF_FIELD).is_none_or(Value::is_null), "{dan:?}");
    let dan = dataverse
        .contact("0a3c1e5e-0004-4d6e-9a51-000000000004")
        .expect("Dan's contact stays");
    assert!(dan.get(DV_COLUMN).is_none_or(Value::is_null), "{dan:?}");
    assert_eq!(dataverse.contact_count(), 3);
    assert_eq!(sf_server.snapshot().violations, 0);
    assert_eq!(dv_server.snapshot().violations, 0);
}
