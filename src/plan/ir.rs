//! The activation plan: the versioned, deterministic IR that reviewers read
//! and that `render` and `run` consume.
//!
//! Plain serde data, built only from a checked model and its governance
//! verdicts. Invariants: every map is a `BTreeMap` and every list has a
//! defined order, so the same specs give the same bytes anywhere; no absolute
//! paths, no timestamps, no secrets (credentials stay references such as
//! `env:LINKEDIN_TOKEN`), no personal data. Each node carries a sha256
//! `fingerprint` of its canonical JSON (without the fingerprint itself), and
//! the plan's fingerprint covers every node (through the nodes' fingerprints).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::catalog::{Delivery, ExportMode, Rows};
pub use crate::govern::{ActionSource, Enforcement, Status};
pub use crate::resolve::alerts::{AlertKind, AlertRepeat, AlertSeverity, AlertTargetKind};
pub use crate::resolve::kinds::{
    Entity, LinkFallback, Merge, Order, Schedule, SchemaClass, SourceFormat, Transform,
};
pub use crate::resolve::{Enforcement as EnvEnforcement, Evaluation};
pub use crate::syntax::DeliveryMode;

/// The engine an environment runs on (`engine`, `spark_remote`,
/// `spark_token`, `memory_limit` of `[environment.NAME]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnginePlan {
    /// `datafusion` or `spark`; absent means the embedded `datafusion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_remote: Option<String>,
    /// Where the token is: `env:NAME` or `file:PATH`, never the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_token: Option<String>,
    /// The embedded engine's memory limit as written (`4GB`, `50%`;
    /// `crate::memory_limit` reads it); absent means the default share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
}

/// Bumped on any change of meaning; readers refuse versions they do not know.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub project: String,
    /// The environment compiled for, and its enforcement (`block`/`warn`).
    pub environment: Option<String>,
    pub enforcement: Option<EnvEnforcement>,
    /// The environment's `delivery` (`live` or `dry-run`), only when it sets
    /// one: absent means live, so plans of projects that never write the key
    /// keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryMode>,
    /// The environment's engine settings, only when it writes any (plans
    /// of projects that never do keep their bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EnginePlan>,
    pub schemas: BTreeMap<String, SchemaPlan>,
    pub sources: BTreeMap<String, SourcePlan>,
    /// Computed attributes by `entity.name` (`account.engagementScore`).
    pub computed: BTreeMap<String, ComputedPlan>,
    pub audiences: BTreeMap<String, AudiencePlan>,
    pub destinations: BTreeMap<String, DestinationPlan>,
    pub activations: BTreeMap<String, ActivationPlan>,
    pub policies: BTreeMap<String, PolicyPlan>,
    /// Alerts by name, only when the project declares some: plans of
    /// projects without alerts keep their bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alerts: BTreeMap<String, AlertPlan>,
    pub fingerprint: String,
    /// The typed trees of the expressions, from the check; not in the file.
    #[serde(skip)]
    pub typed: super::typed::TypedExprs,
}

/// What `render` and `run` need to read and type the data of one schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SchemaPlan {
    pub class: SchemaClass,
    pub key: Option<String>,
    /// The event time field of an event schema.
    pub timestamp: Option<String>,
    pub fields: BTreeMap<String, FieldPlan>,
    /// Links from this schema, by link name.
    pub links: BTreeMap<String, LinkPlan>,
    pub fingerprint: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldPlan {
    /// `string`, `int`, `double`, `bool`, `timestamp`, `list<string>`, ...
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub values: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub identity: Option<String>,
    /// The field's labels, its schema's included; sorted.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub labels: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkPlan {
    pub to: String,
    /// The foreign key on this schema (absent for a `via` link).
    pub by: Option<String>,
    /// The collection on the target, e.g. `people` for `account.people`.
    pub reverse: Option<String>,
    pub fallback: Option<LinkFallback>,
    /// A relation schema for many-to-many links.
    pub via: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourcePlan {
    pub schema: String,
    /// A file, folder or glob: relative to the project root (`/`-separated),
    /// absolute, or an object-store URI (`s3://BUCKET/...`,
    /// `az://ACCOUNT/CONTAINER/...`, `gs://BUCKET/...`). Empty for a
    /// PostgreSQL or Marketo source.
    pub path: String,
    /// Inferred from the extension when not set.
    pub format: SourceFormat,
    pub max_age: Option<String>,
    /// Lower wins per field when several sources feed one schema.
    pub precedence: i64,
    /// Object-store sources: the store's base URL (`endpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Object-store sources: the credential settings, with the keys and
    /// values of the storage destination of the same store.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, SettingPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSourcePlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketo: Option<MarketoSourcePlan>,
    /// Remember what was read; read only what is new next run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub append_only: bool,
    /// What a stale source does; `None`: the environment's enforcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_stale: Option<OnStale>,
    /// The timestamp field freshness is judged on; `None`: the schema's
    /// event time, else every timestamp field, else the files' times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness_column: Option<String>,
    pub fingerprint: String,
}

/// Where the kind of a source is decided: its plan says where it reads.
impl SourcePlan {
    /// A local source of `path` in `format`, with every other key at its
    /// default: what tests build plans with.
    pub fn files(schema: &str, path: &str, format: SourceFormat) -> SourcePlan {
        SourcePlan {
            schema: schema.to_string(),
            path: path.to_string(),
            format,
            max_age: None,
            precedence: 1,
            endpoint: None,
            settings: BTreeMap::new(),
            postgres: None,
            marketo: None,
            append_only: false,
            on_stale: None,
            freshness_column: None,
            fingerprint: String::new(),
        }
    }

    /// `s3`, `azure_blob` or `gcs` when the path is an object-store URI:
    /// the storage destination type whose credentials it takes.
    pub fn object_store(&self) -> Option<&'static str> {
        object_store_of(&self.path)
    }
}

/// The storage destination type of an object-store URI (`s3://`, `az://`
/// or `azure://`, `gs://`), `None` for a local path.
pub fn object_store_of(path: &str) -> Option<&'static str> {
    crate::syntax::data_source::object_store_of(path)
}

/// A source read from PostgreSQL: one of `table` and `query`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PostgresSourcePlan {
    /// Where the connection URL is: a reference, `env:NAME` or `file:PATH`.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// A source read from Marketo's lead activities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarketoSourcePlan {
    /// The `marketo_engage` destination whose connection is reused.
    pub destination: String,
    /// Activity type names, as Marketo spells them (`Open Email`).
    pub activity_types: Vec<String>,
}

/// What a stale source does to the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStale {
    /// Activations reading the source end `blocked`.
    Block,
    /// The run warns and goes on.
    Warn,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComputedPlan {
    pub entity: Entity,
    /// The schema the attribute is added to.
    pub schema: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub expr: String,
    /// Fields read, as `schema.field`, sorted.
    pub reads: Vec<String>,
    pub fingerprint: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudiencePlan {
    pub entity: Entity,
    pub evaluation: Evaluation,
    pub definition: AudienceDefinition,
    /// Audiences this one reads (base names), sorted.
    pub depends_on: Vec<String>,
    /// Split part names in evaluation order (first match wins); empty when
    /// the audience is not split.
    pub parts: Vec<String>,
    /// Labels reaching this audience through its definition, sorted.
    pub labels: Vec<String>,
    /// Fields the definition reads, as `schema.field`, sorted.
    pub reads: Vec<String>,
    pub fingerprint: String,
}

// A plan holds a few thousand of these at most, built once: boxing the
// larger variant would only make every consumer's match noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AudienceDefinition {
    Rule {
        expr: String,
    },
    /// Applied in a fixed order: merge, exclude, exclude_rule, then rank or split.
    Compose {
        from: Vec<String>,
        merge: Merge,
        exclude: Vec<String>,
        exclude_rule: Option<String>,
        rank: Option<RankPlan>,
        split: Option<SplitPlan>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankPlan {
    pub by: String,
    /// Ties break by the account key, ascending.
    pub order: Order,
    pub limit: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SplitPlan {
    /// Each account lands in the part whose cumulative percentage range holds
    /// `bucket(seed, key)` in 0..100, parts in the order written.
    Percent {
        seed: String,
        parts: Vec<PercentPart>,
    },
    /// First part whose values contain the attribute's value; else `other`.
    ByAttribute {
        by: String,
        parts: Vec<ValuePart>,
        other: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PercentPart {
    pub name: String,
    pub percent: i64,
}

/// The bucket range `lo..hi` (of 0..100) of each part of a percent split:
/// cumulative, parts in the order written.
pub fn percent_ranges(parts: &[PercentPart]) -> Vec<(&PercentPart, i64, i64)> {
    let mut lo = 0;
    parts
        .iter()
        .map(|part| {
            let hi = lo + part.percent;
            let range = (part, lo, hi);
            lo = hi;
            range
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValuePart {
    pub name: String,
    pub values: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestinationPlan {
    #[serde(rename = "type")]
    pub ty: String,
    /// From the catalog.
    pub delivery: Delivery,
    /// From the catalog.
    pub rows: Rows,
    /// Marketing actions with where each comes from.
    pub actions: BTreeMap<String, ActionSource>,
    /// Settings as written; secrets only as references (`env:NAME`).
    pub settings: BTreeMap<String, SettingPlan>,
    /// Fields that exist in the destination (Marketo, CRM types).
    pub fields: Vec<String>,
    /// `endpoint`: the base URL that replaces the vendor's (sandboxes, tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The limit requests to this destination keep to: the catalog's, lowered
    /// by the destination's `rate_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitPlan>,
    /// `lists`: vendor list or segment ids pinned per audience.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lists: BTreeMap<String, String>,
    /// `list_prefix`: put before the audience name of a list accord creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_prefix: Option<String>,
    pub fingerprint: String,
}

/// An API rate limit a run keeps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitPlan {
    /// Requests allowed in any sliding window of `per_seconds`.
    pub calls: u32,
    pub per_seconds: u32,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<u32>,
    /// Requests per vendor day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum SettingPlan {
    Text(String),
    Integer(i64),
    Bool(bool),
    List(Vec<String>),
    /// A credential reference, `env:NAME`, `profile:NAME` or `file:PATH`.
    Reference(String),
    /// A table of text values (`audience_fields = { AUDIENCE = "Field__c" }`).
    Table(BTreeMap<String, String>),
}

/// `max_removed_ratio` when an activation does not set it: a fifth of an
/// audience leaving in one run is far more often missing input than change.
pub const DEFAULT_MAX_REMOVED_RATIO: f64 = 0.2;

fn default_max_removed_ratio() -> f64 {
    DEFAULT_MAX_REMOVED_RATIO
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivationPlan {
    pub destination: String,
    /// The catalog type's name: open, as the catalog grows.
    pub destination_type: String,
    /// Account rows or person rows.
    pub rows: Entity,
    /// Activated audiences as referenced (`NAME` or `NAME.part`), in the order written.
    pub audiences: Vec<String>,
    /// Audiences whose members are removed from every activated audience.
    pub exclude: Vec<String>,
    /// The people filter that expands account rows to people.
    pub people: Option<String>,
    /// Consent requirements applied to person rows, by consent policy.
    pub consent: Vec<ConsentFilter>,
    /// Destination columns in the order written.
    pub mapping: Vec<MappingPlan>,
    pub schedule: Schedule,
    pub export: ExportMode,
    /// Governance per activated audience.
    pub governance: BTreeMap<String, AudienceGovernance>,
    pub limits: LimitsPlan,
    /// The removal guard: a run holds the activation's delivery when it
    /// would remove more than this share of the members delivered last time
    /// (0 to 1; `max_removed_ratio`, default 0.2).
    #[serde(default = "default_max_removed_ratio")]
    pub max_removed_ratio: f64,
    pub fingerprint: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsentFilter {
    pub policy: String,
    /// The actions of the dataflow that trigger it.
    pub actions: Vec<String>,
    pub require: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MappingPlan {
    pub column: String,
    pub expr: String,
    /// The normalise-and-hash the expression applies.
    pub transform: Transform,
    /// The identity namespace the column carries, when it is an identity.
    pub identity: Option<String>,
    /// Fields read, as `schema.field`, sorted.
    pub reads: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudienceGovernance {
    /// Labels reaching the dataflow for this audience (definition, mapping,
    /// people filter), sorted.
    pub labels: Vec<String>,
    /// Verdict per policy.
    pub policies: BTreeMap<String, PolicyVerdict>,
}

/// The plan's verdict of one policy on one activated audience: the outcome
/// without its evidence (`explain` shows that). Serialised as one word,
/// `allowed`, `not_applicable`, `violated`, `waived:WAIVER`, `draft`,
/// `disabled` or `invalid`, so a reviewer reads it at a glance.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PolicyVerdict {
    Allowed,
    /// The labels match but the dataflow performs none of the denied actions.
    NotApplicable,
    Violated,
    /// Violated, and covered by this waiver.
    Waived(String),
    /// A draft policy: never enforced.
    Draft,
    Disabled,
    /// The deny expression has errors; nothing was evaluated.
    Invalid,
}

impl PolicyVerdict {
    /// Whether the run must honour or report it: a violation, or a waiver
    /// standing in for one.
    pub fn is_notable(&self) -> bool {
        matches!(self, PolicyVerdict::Violated | PolicyVerdict::Waived(_))
    }
}

impl From<&crate::govern::Verdict> for PolicyVerdict {
    fn from(v: &crate::govern::Verdict) -> PolicyVerdict {
        use crate::govern::Verdict;
        match v {
            Verdict::Allowed => PolicyVerdict::Allowed,
            Verdict::NotApplicable => PolicyVerdict::NotApplicable,
            Verdict::Violated { .. } => PolicyVerdict::Violated,
            Verdict::Waived { waiver, .. } => PolicyVerdict::Waived(waiver.clone()),
            Verdict::DraftNotEvaluated | Verdict::DraftWouldViolate { .. } => PolicyVerdict::Draft,
            Verdict::Disabled => PolicyVerdict::Disabled,
            Verdict::Invalid => PolicyVerdict::Invalid,
        }
    }
}

impl std::fmt::Display for PolicyVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyVerdict::Allowed => f.write_str("allowed"),
            PolicyVerdict::NotApplicable => f.write_str("not_applicable"),
            PolicyVerdict::Violated => f.write_str("violated"),
            PolicyVerdict::Waived(waiver) => write!(f, "waived:{waiver}"),
            PolicyVerdict::Draft => f.write_str("draft"),
            PolicyVerdict::Disabled => f.write_str("disabled"),
            PolicyVerdict::Invalid => f.write_str("invalid"),
        }
    }
}

impl From<PolicyVerdict> for String {
    fn from(v: PolicyVerdict) -> String {
        v.to_string()
    }
}

impl TryFrom<String> for PolicyVerdict {
    type Error = String;
    fn try_from(text: String) -> Result<PolicyVerdict, String> {
        Ok(match text.as_str() {
            "allowed" => PolicyVerdict::Allowed,
            "not_applicable" => PolicyVerdict::NotApplicable,
            "violated" => PolicyVerdict::Violated,
            "draft" => PolicyVerdict::Draft,
            "disabled" => PolicyVerdict::Disabled,
            "invalid" => PolicyVerdict::Invalid,
            _ => match text.strip_prefix("waived:") {
                Some(waiver) => PolicyVerdict::Waived(waiver.to_string()),
                None => return Err(format!("`{text}` is not a policy verdict")),
            },
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct LimitsPlan {
    pub min_audience_size: Option<u64>,
    pub max_rows_per_file: Option<u64>,
    pub max_file_name_len: Option<u32>,
    pub batch_size: Option<u32>,
    pub max_payload_bytes: Option<u64>,
    /// `CALLS/SECONDSs` with concurrency and daily caps when the vendor sets them.
    pub rate_limit: Option<String>,
    /// Audiences one dataflow may carry (checked, P0108).
    #[serde(default)]
    pub max_audiences_per_dataflow: Option<u32>,
    /// Mapped attributes one dataflow may carry (checked, P0108).
    #[serde(default)]
    pub max_mapped_attributes: Option<u32>,
    /// Audience fields a CRM destination can hold across its dataflows
    /// (checked, P0109).
    #[serde(default)]
    pub max_audience_fields: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyPlan {
    pub core: bool,
    /// `None`: every action.
    pub actions: Option<Vec<String>>,
    pub deny: String,
    pub enforcement: Enforcement,
    pub status: Status,
}

/// An alert: a condition on a run's figures, checked after the
/// activations end (`run::alerts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertPlan {
    /// What it watches: `activation.NAME`, `audience.NAME` (or
    /// `audience.NAME.part`) or `source.NAME`.
    pub on: String,
    pub when: AlertKind,
    /// The ratio the condition compares with (0.3 = 30%), for the kinds
    /// that compare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    pub severity: AlertSeverity,
    pub repeat: AlertRepeat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyPlan>,
    pub fingerprint: String,
}

impl AlertPlan {
    /// The kind and name of what it watches.
    pub fn target(&self) -> Option<(AlertTargetKind, &str)> {
        let (kind, name) = self.on.split_once('.')?;
        Some((AlertTargetKind::parse(kind)?, name))
    }
}

/// Where a fired alert is sent; the URLs and the key only as references
/// (`env:NAME`, `file:PATH`): a webhook URL is a credential.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "channel")]
pub enum NotifyPlan {
    /// A JSON body signed with HMAC-SHA256 under `secret`.
    Webhook { url: String, secret: String },
    /// A Slack incoming webhook: `{"text": ...}`.
    Slack { url: String },
}
