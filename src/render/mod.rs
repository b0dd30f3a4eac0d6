//! The render stage: the plan to the jobs that carry it out.
//!
//! Input: a `Plan`, `Options` (dialects, user templates as name -> text).
//! Output: `Jobs`, a sorted map of relative path -> file contents (the plan,
//! the audience and export SQL per dialect, a delivery manifest per
//! activation), plus diagnostics (`P0201` an expression that does not lower,
//! `P0202` a template error). Pure: the CLI reads template folders and writes
//! the files. Same plan in, same bytes out.

pub mod dialect;
pub mod export;
pub mod lower;
pub mod manifest;
pub mod normalise;
pub mod query;
pub mod templates;
pub mod views;

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
    // Expressions that do not lower, with the dialects they fail in: one
    // problem per expression, not one per dialect.
    let mut unlowered: BTreeMap<query::LowerError, Vec<&'static str>> = BTreeMap::new();
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
            Err(errors) => note(&mut unlowered, d.name(), errors),
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
            Err(errors) => note(&mut unlowered, d.name(), errors),
        }
        for (name, activation) in &plan.activations {
            match export::export_sql(&model, d, name, activation) {
                Ok(sql) => {
                    let rendered = std::iter::once(("export.sql.tera", "sql", sql.rows)).chain(
                        sql.consent_excluded
                            .map(|q| ("consent_excluded.sql.tera", "consent.sql", q)),
                    );
                    for (template, extension, query) in rendered {
                        let ctx = templates::export_context(plan, d.name(), name, &query);
                        match engine.render(template, &ctx) {
                            Ok(text) => {
                                jobs.insert(format!("{dir}/exports/{name}.{extension}"), text);
                            }
                            Err(e) => diags.push(e),
                        }
                    }
                }
                Err(errors) => note(&mut unlowered, d.name(), errors),
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
    diags.extend(
        unlowered
            .iter()
            .map(|(e, dialects)| templates::lower_problem(dialects, e)),
    );
    diags.sort();
    diags.dedup();
    (jobs, diags)
}

fn note(
    unlowered: &mut BTreeMap<query::LowerError, Vec<&'static str>>,
    dialect: &'static str,
    errors: Vec<query::LowerError>,
) {
    for e in errors {
        unlowered.entry(e).or_default().push(dialect);
    }
}

/// Every expression of the plan that does not lower to SQL, with the
/// dialects it fails in: what `check` reports as `P0201` at the expression.
pub fn unlowerable(plan: &Plan) -> BTreeMap<query::LowerError, Vec<&'static str>> {
    // The lowering is shared and a dialect only spells its result: `Dialect`
    // has no fallible method, so an expression lowers in every dialect or in
    // none. `check` runs this on every project, so it lowers once and
    // attributes a failure to every dialect (5x less work than lowering each).
    let dialects: Vec<&'static str> = dialect::all().iter().map(|d| d.name()).collect();
    let model = query::Model::new(plan);
    let mut out = BTreeMap::new();
    for error in lower_errors(&model, "datafusion") {
        out.entry(error).or_insert_with(|| dialects.clone());
    }
    out
}

/// Every lowering error of one dialect.
fn lower_errors(model: &query::Model<'_>, name: &str) -> Vec<query::LowerError> {
    let plan = model.plan;
    let mut errors = Vec::new();
    let Some(d) = dialect::all().into_iter().find(|d| d.name() == name) else {
        return errors;
    };
    let d = d.as_ref();
    errors.extend(query::accounts(model, d).err().into_iter().flatten());
    errors.extend(query::people(model, d).err().into_iter().flatten());
    for (activation_name, activation) in &plan.activations {
        errors.extend(
            export::export_sql(model, d, activation_name, activation)
                .err()
                .into_iter()
                .flatten(),
        );
    }
    errors
}
