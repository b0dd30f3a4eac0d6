//! Stale sources that block: a source whose newest judged time is older
//! than its `max_age` blocks, with `on_stale = "block"` or (without
//! `on_stale`) where the environment's enforcement is `block`, every
//! activation that reads its schema; with `on_stale = "warn"` (or
//! enforcement `warn`) the run only warns.
//!
//! Input: the plan and the source reports of a run. Output: the blocking
//! stale sources, and per activation the ones that block it. Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::report::{RunDiagnostic, SourceReport};
use crate::diag::codes;
use crate::plan::{ActivationPlan, Entity, EnvEnforcement, OnStale, Plan, SchemaClass, SourcePlan};
use crate::time::{self, Micros};

/// A stale source.
#[derive(Clone, Debug)]
pub struct Stale {
    pub source: String,
    pub schema: String,
    /// The newest time freshness was judged on.
    pub newest: String,
    /// What that time was read from (`column updatedAt`, `file
    /// modification time`, ...).
    pub basis: Option<String>,
    /// How old `newest` is at the run's `now`, as people read it.
    pub age: String,
    pub max_age: String,
    /// Whether it blocks the activations that read its schema.
    pub blocks: bool,
}

impl Stale {
    /// The warning of a stale source that does not block.
    pub fn warning(&self) -> String {
        format!("source `{}` is stale: {}", self.source, self.why())
    }

    /// `newest record T (by BASIS) is AGE old, older than max_age M`.
    fn why(&self) -> String {
        format!(
            "newest record {}{} is {} old, older than max_age {}",
            self.newest,
            self.basis
                .as_deref()
                .map(|b| format!(" (by {b})"))
                .unwrap_or_default(),
            self.age,
            self.max_age
        )
    }

    /// R0012: a stale source that blocks `activations` (sorted names).
    pub fn diagnostic(&self, activations: &[&str]) -> RunDiagnostic {
        let blocked = if activations.is_empty() {
            "no activation reads it".to_string()
        } else {
            format!(
                "blocked: {}",
                activations
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        RunDiagnostic::new(
            codes::run::SOURCE_STALE,
            format!(
                "source `{}` is stale: {}; activations reading schema `{}` {blocked}",
                self.source,
                self.why(),
                self.schema
            ),
        )
        .help(
            "refresh the source's data and run again; `on_stale = \"warn\"` on the source delivers \
             stale data with a warning instead",
        )
    }
}

/// Whether a stale `source` blocks in an environment of `enforcement`.
fn blocks(source: &SourcePlan, enforcement: Option<EnvEnforcement>) -> bool {
    match source.on_stale {
        Some(OnStale::Block) => true,
        Some(OnStale::Warn) => false,
        None => enforcement == Some(EnvEnforcement::Block),
    }
}

/// The stale sources of a run, by name, from their reports, judged at `now`.
pub fn stale_sources(
    plan: &Plan,
    reports: &BTreeMap<String, SourceReport>,
    now: Micros,
) -> Vec<Stale> {
    plan.sources
        .iter()
        .filter_map(|(name, source)| {
            let report = reports.get(name).filter(|r| r.freshness == "stale")?;
            let newest = report.newest.clone().unwrap_or_else(|| "?".into());
            let age = time::parse_timestamp(&newest)
                .map_or_else(|| "?".into(), |t| time::format_duration(now - t));
            Some(Stale {
                source: name.clone(),
                schema: source.schema.clone(),
                newest,
                basis: report.freshness_basis.clone(),
                age,
                max_age: source.max_age.clone().unwrap_or_else(|| "?".into()),
                blocks: blocks(source, plan.enforcement),
            })
        })
        .collect()
}

/// The blocking stale sources among `stale` that `activation` reads.
pub fn blocking<'a>(
    plan: &Plan,
    activation: &ActivationPlan,
    stale: &'a [Stale],
) -> Vec<&'a Stale> {
    let read = schemas_read(plan, activation);
    stale
        .iter()
        .filter(|s| s.blocks && read.contains(s.schema.as_str()))
        .collect()
}

/// The schemas an activation reads: every field its audiences (with the
/// audiences and computed attributes they build on), its exclusions and
/// its mapping read; the account schema, which every audience starts from;
/// and for person rows the person schema.
pub fn schemas_read<'a>(plan: &'a Plan, activation: &'a ActivationPlan) -> BTreeSet<&'a str> {
    let mut fields: Vec<&str> = activation
        .mapping
        .iter()
        .flat_map(|m| m.reads.iter().map(String::as_str))
        .collect();
    // Audiences, following what they depend on.
    let mut audiences: Vec<&str> = activation
        .audiences
        .iter()
        .chain(&activation.exclude)
        .map(|a| a.split_once('.').map_or(a.as_str(), |(base, _)| base))
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(name) = audiences.pop() {
        if !seen.insert(name) {
            continue;
        }
        if let Some(audience) = plan.audiences.get(name) {
            fields.extend(audience.reads.iter().map(String::as_str));
            audiences.extend(audience.depends_on.iter().map(String::as_str));
        }
    }
    // Computed attributes read as `schema.name`, following what they read.
    let mut schemas = BTreeSet::new();
    let mut seen = BTreeSet::new();
    while let Some(read) = fields.pop() {
        if !seen.insert(read) {
            continue;
        }
        let Some((schema, field)) = read.split_once('.') else {
            continue;
        };
        schemas.insert(schema);
        for (key, computed) in &plan.computed {
            let name = key.split_once('.').map_or(key.as_str(), |(_, n)| n);
            if computed.schema == schema && name == field {
                fields.extend(computed.reads.iter().map(String::as_str));
            }
        }
    }
    for (name, schema) in &plan.schemas {
        let rows = schema.class == SchemaClass::Account
            || (activation.rows == Entity::Person && schema.class == SchemaClass::Person);
        if rows {
            schemas.insert(name.as_str());
        }
    }
    schemas
}
