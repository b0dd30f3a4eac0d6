//! The render stage: the plan to the jobs that carry it out.
//!
//! Input: a `Plan`, `Options` (dialects, user templates as name -> text).
//! Output: `Jobs`, a sorted map of relative path -> file contents (the plan,
//! the audience and export SQL per dialect, a delivery manifest per
//! activation), plus diagnostics (`P0101` an expression that does not lower,
//! `P0102` a template error). Pure: the CLI reads template folders and writes
//! the files. Same plan in, same bytes out.

pub mod dialect;
pub mod export;
pub mod lower;
pub mod manifest;
pub mod query;
pub mod semantics;
pub mod templates;

use std::collections::BTreeMap;

use crate::plan::Plan;
use dialect::Dialect;

/// Relative path -> contents.
pub type Jobs = BTreeMap<String, String>;

/// What the caller chose.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Dialect names; empty means every dialect.
    pub dialects: Vec<String>,
    /// User templates by name (`audiences.sql.tera`), overriding built-ins.
    pub templates: BTreeMap<String, String>,
}

/// Renders every job of `plan`.
pub fn render(plan: &Plan, options: &Options) -> (Jobs, Vec<templates::Problem>) {
    let mut jobs = Jobs::new();
    let mut diags = Vec::new();
    let engine = match templates::Engine::new(&options.templates) {
        Ok(engine) => engine,
        Err(d) => return (jobs, vec![d]),
    };
    let model = query::Model::new(plan);
    let dialects: Vec<Box<dyn Dialect>> = dialect::all()
        .into_iter()
        .filter(|d| options.dialects.is_empty() || options.dialects.iter().any(|n| n == d.name()))
        .collect();
    jobs.insert(
        "plan.json".into(),
        serde_json::to_string_pretty(plan).unwrap_or_default() + "\n",
    );
    for d in &dialects {
        let d = d.as_ref();
        let dir = format!("sql/{}", d.name());
        match query::accounts(&model, d) {
            Ok(built) => {
                let ctx = templates::query_context(plan, d.name(), "accounts", &built);
                match engine.render("audiences.sql.tera", &ctx) {
                    Ok(text) => {
                        jobs.insert(format!("{dir}/audiences.sql"), text);
                    }
                    Err(e) => diags.push(e),
                }
            }
            Err(errors) => diags.extend(errors.iter().map(|e| templates::lower_diag(d.name(), e))),
        }
        match query::people(&model, d) {
            Ok(Some(built)) => {
                let ctx = templates::query_context(plan, d.name(), "people", &built);
                match engine.render("person_audiences.sql.tera", &ctx) {
                    Ok(text) => {
                        jobs.insert(format!("{dir}/person_audiences.sql"), text);
                    }
                    Err(e) => diags.push(e),
                }
            }
            Ok(None) => {}
            Err(errors) => diags.extend(errors.iter().map(|e| templates::lower_diag(d.name(), e))),
        }
        for (name, activation) in &plan.activations {
            match export::export_sql(&model, d, name, activation) {
                Ok(sql) => {
                    let ctx = templates::export_context(plan, d.name(), name, &sql);
                    match engine.render("export.sql.tera", &ctx) {
                        Ok(text) => {
                            jobs.insert(format!("{dir}/exports/{name}.sql"), text);
                        }
                        Err(e) => diags.push(e),
                    }
                }
                Err(errors) => {
                    diags.extend(errors.iter().map(|e| templates::lower_diag(d.name(), e)))
                }
            }
        }
    }
    let names: Vec<&str> = dialects.iter().map(|d| d.name()).collect();
    for (name, activation) in &plan.activations {
        let value = manifest::manifest(plan, name, activation, &names);
        let ctx = templates::manifest_context(name, &value);
        match engine.render("manifest.json.tera", &ctx) {
            Ok(text) => {
                jobs.insert(format!("manifests/{name}.json"), text);
            }
            Err(e) => diags.push(e),
        }
    }
    diags.sort();
    diags.dedup();
    (jobs, diags)
}
