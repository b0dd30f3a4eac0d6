//! The example project's governance situations (specs/README.md) hold: it
//! checks without errors in `dev` and `prod`, the partner export's soft
//! violation is waived, the advisory policy warns on the two Marketo flows,
//! and the draft policy is not evaluated.

use std::path::Path;

use accord::compile::{self, Options};
use accord::govern::Verdict;

fn check(env: &str) -> compile::Compiled {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let options = Options {
        environment: Some(env.to_string()),
        today: compile::parse_date("2026-11-28"),
        evaluate_drafts: false,
    };
    compile::check(&dir, &options).expect("specs load")
}

#[test]
fn example_project_is_clean_in_every_environment() {
    for env in ["dev", "prod"] {
        let compiled = check(env);
        let errors: Vec<&str> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.message.as_str())
            .collect();
        assert!(errors.is_empty(), "{env}: {errors:?}");
        let advisory: Vec<&str> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.code.as_str() == "G0002")
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(advisory.len(), 2, "{advisory:?}");
    }
}

#[test]
fn partner_export_is_waived_and_drafts_are_not_evaluated() {
    let compiled = check("prod");
    let verdicts = compiled.verdicts.expect("governance ran");
    let partner =
        &verdicts.activations["partner_contoso_s3"].audiences["B2B_Partner_Contoso_CoSell"];
    assert!(matches!(
        &partner.policies["no_partner_export_of_third_party"],
        Verdict::Waived { waiver, .. } if waiver == "contoso_cosell_fy2027"
    ));
    for activation in verdicts.activations.values() {
        for audience in activation.audiences.values() {
            assert_eq!(
                audience.policies["no_vendor_intent_in_crm"],
                Verdict::DraftNotEvaluated
            );
        }
    }
    let marketo = &verdicts.activations["abm_nurture_marketo"];
    assert!(marketo.consent.iter().any(|c| c.consent == "email_opt_in"));
}

#[test]
fn the_waiver_lapses_after_its_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let options = Options {
        environment: Some("prod".to_string()),
        today: compile::parse_date("2027-04-01"),
        evaluate_drafts: false,
    };
    let compiled = compile::check(&dir, &options).expect("specs load");
    let mut codes: Vec<&str> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.code.as_str())
        .collect();
    codes.sort();
    assert_eq!(codes, ["G0001", "G0007"], "{codes:?}");
}

#[test]
fn explain_activation_names_labels_and_verdicts() {
    let compiled = check("prod");
    let verdicts = compiled.verdicts.expect("governance ran");
    let text = accord::govern::explain::activation(&verdicts, "partner_contoso_s3")
        .expect("the activation exists");
    assert!(text.contains("export_to_third_party"), "{text}");
    assert!(text.contains("from `account.techStack`"), "{text}");
    assert!(
        text.contains("no_partner_export_of_third_party: waived by `contoso_cosell_fy2027`"),
        "{text}"
    );
    assert!(
        text.contains("no_vendor_intent_in_crm: draft, not evaluated"),
        "{text}"
    );
    assert!(accord::govern::explain::activation(&verdicts, "nope").is_none());
}

#[test]
fn drafts_are_evaluated_on_request() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let options = Options {
        environment: Some("prod".to_string()),
        today: compile::parse_date("2026-11-28"),
        evaluate_drafts: true,
    };
    let compiled = compile::check(&dir, &options).expect("specs load");
    assert!(!compiled.has_errors(), "drafts never produce diagnostics");
    let verdicts = compiled.verdicts.expect("governance ran");
    let mut hit: Vec<&str> = verdicts
        .activations
        .iter()
        .filter(|(_, a)| {
            a.audiences.values().any(|v| {
                matches!(
                    v.policies["no_vendor_intent_in_crm"],
                    Verdict::DraftWouldViolate { .. }
                )
            })
        })
        .map(|(name, _)| name.as_str())
        .collect();
    hit.sort();
    // specs/README.md: the draft would hit both CRM flows and the sales
    // alerts webhook, whose targets are chosen by intent.
    assert_eq!(
        hit,
        [
            "crm_dynamics_targets",
            "crm_salesforce_targets",
            "sales_alerts_targets"
        ]
    );
}
