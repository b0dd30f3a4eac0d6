//! The plan of the example project builds and is deterministic, and
//! carries the typed trees render needs (its file does not).

#[path = "support/plans.rs"]
mod plans;

fn plan_json(env: &str) -> String {
    let plan = plans::plan_of("specs", env);
    serde_json::to_string_pretty(&plan).expect("plan serialises")
}

#[test]
fn the_example_project_plans_in_every_environment() {
    for env in ["dev", "prod"] {
        let a = plan_json(env);
        assert_eq!(a, plan_json(env), "planning twice gives the same bytes");
        assert!(a.contains("\"format_version\": 1"));
    }
}

#[test]
fn a_built_plan_carries_the_checked_trees_and_its_file_does_not() {
    use accord::plan::{self, AudienceDefinition};
    use accord::resolve::ExprSite;

    let plan = plans::plan_of("specs", "dev");
    assert!(accord::render::unlowerable(&plan).is_empty());
    let (name, audience) = plan
        .audiences
        .iter()
        .find_map(|(n, a)| match &a.definition {
            AudienceDefinition::Rule { expr } => Some((n, expr)),
            _ => None,
        })
        .expect("the example has a rule audience");
    let site = ExprSite::AudienceRule(name.clone());
    assert!(plan.typed.at(&site, audience, false).is_ok());

    // The file round-trips to an equal plan without trees: rendering it
    // gives a reason at every expression, and no panic.
    let read = plan::read(&plan::to_json(&plan)).expect("the plan file reads");
    assert_eq!(read, plan);
    let reason = read.typed.at(&site, audience, false).unwrap_err();
    assert!(reason.contains("read from a file"), "{reason}");
    let errors = accord::render::unlowerable(&read);
    assert!(!errors.is_empty());
    assert!(errors.keys().all(|e| e.reason == reason));
}
