//! The plan of the example project builds and is deterministic.

use accord::compile::{self, Options};

fn plan_json(env: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let options = Options {
        environment: Some(env.to_string()),
        today: compile::parse_date("2026-11-28"),
        ..Options::default()
    };
    let compiled = compile::check(&dir, &options).expect("specs load");
    let plan = compile::plan(&compiled).expect("specs compile to a plan");
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
