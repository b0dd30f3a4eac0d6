//! `accord explain account`: the interpreter's account of one account's
//! membership, next to the engine's verdict, on the sample data.
#![cfg(feature = "engine")]

use std::process::Command;

fn explain(account: &str, audience: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args([
            "explain",
            "account",
            account,
            "specs",
            "--audience",
            audience,
        ])
        .args(["--now", "2026-11-28T12:00:00Z"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("the accord binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn an_account_outside_an_audience_shows_which_conditions_failed() {
    let (code, text) = explain("ACC-000001", "B2B_ICP_Enterprise");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("account ACC-000001 is OUT of B2B_ICP_Enterprise"),
        "{text}"
    );
    assert!(
        text.contains("account.employees >= 1000  => false"),
        "{text}"
    );
    assert!(text.contains("account.people.exists("), "{text}");
}

#[test]
fn an_unknown_account_or_audience_is_a_clear_error() {
    let (code, text) = explain("NO-SUCH-ACCOUNT", "B2B_ICP_Enterprise");
    assert_ne!(code, 0);
    assert!(text.contains("no account `NO-SUCH-ACCOUNT`"), "{text}");
    let (code, text) = explain("ACC-000001", "B2B_No_Such_Audience");
    assert_ne!(code, 0, "{text}");
}
