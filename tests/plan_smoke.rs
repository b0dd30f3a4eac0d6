//! The plan of the example project builds and is deterministic.

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
