//! Name binding and checking of a spec project.
//!
//! Input: the [`Syntax`] of a project and its [`SourceSet`] (for mapping CEL
//! positions into files). Output: a [`Model`] (the definitions with every name
//! bound to an index) plus diagnostics. Never fails: an unbound reference is
//! reported at the reference and left out of the model's derived data, so later
//! checks still run on everything else.

pub mod activations;
pub mod alerts;
pub mod audiences;
mod dataverse_columns;
pub mod delivery_keys;
mod destinations;
pub(crate) mod endpoint;
pub mod expressions;
mod field_overwrites;
mod file_settings;
pub mod kinds;
pub mod names;
mod pinned_lists;
mod project;
mod references;
mod salesforce;
mod schemas;
mod sftp;
mod source_settings;
mod storage_credentials;

use std::collections::BTreeMap;

use crate::diag::Diagnostic;
use crate::source::SourceSet;
use crate::syntax::Syntax;
pub use activations::ResolvedActivation;
pub use audiences::{AudienceInfo, Evaluation};
pub use expressions::{Expr, ExprSite};
pub use kinds::{
    Entity, LinkFallback, Merge, Order, Schedule, SchemaClass, SourceFormat, Transform,
};
pub use names::NameIndex;
pub use project::{Enforcement, Guardrails, Settings};
pub use schemas::{FieldInfo, FieldType, SchemaInfo};

/// A project with names bound.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub syntax: Syntax,
    pub settings: Settings,
    pub schemas: NameIndex,
    /// Type and lineage facts per schema, by schema name.
    pub schema_info: BTreeMap<String, SchemaInfo>,
    /// Core and custom labels, by name, with their description.
    pub labels: BTreeMap<String, String>,
    /// Core and custom marketing actions, by name, with their description.
    pub actions: BTreeMap<String, String>,
    pub policies: NameIndex,
    pub consents: NameIndex,
    pub waivers: NameIndex,
    pub audiences: NameIndex,
    /// Computed attributes by `entity.name`.
    pub computed: NameIndex,
    pub destinations: NameIndex,
    pub activations: NameIndex,
    pub sources: NameIndex,
    pub alerts: NameIndex,
    /// The schemas the CEL variables `account` and `person` denote.
    pub roots: expressions::Roots,
    /// What CEL expressions are checked against: the schemas, computed
    /// attributes and audience names.
    pub cel_env: std::sync::Arc<crate::cel::CelEnv>,
    /// Every type-checked CEL expression, by where it sits.
    pub exprs: BTreeMap<ExprSite, Expr>,
    /// Evaluation mode and dependencies per audience.
    pub audience_info: BTreeMap<String, AudienceInfo>,
    /// Each activation whose destination resolves, with its destination,
    /// catalog type, rows, schedule and export mode, by activation name.
    pub activation_info: BTreeMap<String, ResolvedActivation>,
}

pub fn resolve(syntax: Syntax, sources: &SourceSet) -> (Model, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let settings = project::settings(&syntax, sources, &mut diags);
    let mut model = Model {
        schemas: NameIndex::build("schema", syntax.schemas.iter().map(|s| &s.name), &mut diags),
        policies: NameIndex::build(
            "policy",
            syntax.policies.iter().map(|p| &p.name),
            &mut diags,
        ),
        consents: NameIndex::build(
            "consent policy",
            syntax.consents.iter().map(|c| &c.name),
            &mut diags,
        ),
        waivers: NameIndex::build("waiver", syntax.waivers.iter().map(|w| &w.name), &mut diags),
        audiences: NameIndex::build(
            "audience",
            syntax.audiences.iter().map(|a| &a.name),
            &mut diags,
        ),
        destinations: NameIndex::build(
            "destination",
            syntax.destinations.iter().map(|d| &d.name),
            &mut diags,
        ),
        activations: NameIndex::build(
            "activation",
            syntax.activations.iter().map(|a| &a.name),
            &mut diags,
        ),
        sources: NameIndex::build("source", syntax.sources.iter().map(|s| &s.name), &mut diags),
        alerts: NameIndex::build("alert", syntax.alerts.iter().map(|a| &a.name), &mut diags),
        computed: computed_index(&syntax, &mut diags),
        labels: references::labels(&syntax, &mut diags),
        actions: references::actions(&syntax, &mut diags),
        settings,
        schema_info: BTreeMap::new(),
        roots: expressions::Roots::default(),
        cel_env: Default::default(),
        exprs: BTreeMap::new(),
        audience_info: BTreeMap::new(),
        activation_info: BTreeMap::new(),
        syntax,
    };
    model.schema_info = schemas::check(&model, &mut diags);
    model.roots = expressions::roots(&model);
    references::check(&model, &mut diags);
    source_settings::check(&model, &mut diags);
    model.cel_env = std::sync::Arc::new(expressions::env(&model, &model.roots));
    model.exprs = expressions::check_all(&model, sources, &mut diags);
    model.audience_info = audiences::check(&model, &model.exprs, &mut diags);
    model.activation_info = activations::check(&model, &mut diags);
    pinned_lists::check(&model, &mut diags);
    file_settings::check_name_lengths(&model, &mut diags);
    salesforce::check(&model, &mut diags);
    field_overwrites::check(&model, &mut diags);
    dataverse_columns::check(&model, &mut diags);
    alerts::check(&model, &mut diags);
    (model, diags)
}

/// Computed attributes are named `entity.name`; the qualified names live only
/// in this index, so the duplicate check sees both parts.
fn computed_index(syntax: &Syntax, diags: &mut Vec<Diagnostic>) -> NameIndex {
    let qualified: Vec<crate::syntax::Sp<String>> = syntax
        .computed
        .iter()
        .map(|c| {
            crate::syntax::Sp::new(format!("{}.{}", c.entity.value, c.name.value), c.name.span)
        })
        .collect();
    NameIndex::build("computed attribute", qualified.iter(), diags)
}
