//! Building the plan from a checked model and its governance verdicts.
//!
//! Input: a [`Model`] without errors and the [`Verdicts`] of one environment.
//! Output: a [`Plan`]. Pure and deterministic: everything is read from the
//! model in name order, and fingerprints are computed last.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::hash;

use super::ir::*;
use crate::catalog;
use crate::govern::{self, Verdicts};
use crate::resolve::{self, ExprSite, Model, activations};
use crate::syntax::{self, SettingValue};

pub fn build(model: &Model, verdicts: &Verdicts) -> Plan {
    let mut plan = Plan {
        format_version: FORMAT_VERSION,
        project: model.settings.name.clone(),
        environment: verdicts.environment.clone(),
        enforcement: verdicts.enforcement,
        delivery: delivery_mode(model, verdicts.environment.as_deref()),
        engine: engine(model, verdicts.environment.as_deref()),
        schemas: schemas(model),
        sources: sources(model),
        computed: computed(model),
        audiences: audiences(model),
        destinations: destinations(model),
        activations: activations(model, verdicts),
        policies: verdicts
            .policies
            .iter()
            .map(|(name, p)| {
                let policy = PolicyPlan {
                    core: p.core,
                    actions: p.actions.clone(),
                    deny: p.deny.clone(),
                    enforcement: p.enforcement,
                    status: p.status,
                };
                (name.clone(), policy)
            })
            .collect(),
        alerts: alerts(model),
        fingerprint: String::new(),
        typed: super::typed::TypedExprs::of(model),
    };
    fingerprint_all(&mut plan);
    plan
}

/// The compiled environment's `delivery`, when it writes one.
fn delivery_mode(model: &Model, environment: Option<&str>) -> Option<DeliveryMode> {
    let environment = environment?;
    model
        .syntax
        .environments
        .iter()
        .find(|e| e.name.value == environment)?
        .delivery
        .as_ref()
        .map(|d| d.value)
}

/// The compiled environment's engine settings, when it writes any.
fn engine(model: &Model, environment: Option<&str>) -> Option<EnginePlan> {
    let environment = environment?;
    let env = model
        .syntax
        .environments
        .iter()
        .find(|e| e.name.value == environment)?;
    let value = |s: &Option<crate::syntax::reader::Sp<String>>| s.as_ref().map(|s| s.value.clone());
    let plan = EnginePlan {
        engine: value(&env.engine),
        spark_remote: value(&env.spark_remote),
        spark_token: value(&env.spark_token),
        memory_limit: value(&env.memory_limit),
    };
    (plan != EnginePlan::default()).then_some(plan)
}

fn reads_of(model: &Model, site: &ExprSite) -> Vec<String> {
    model
        .exprs
        .get(site)
        .map(|e| {
            e.checked
                .reads
                .iter()
                .map(|r| format!("{}.{}", r.schema, r.field))
                .collect()
        })
        .unwrap_or_default()
}

fn schemas(model: &Model) -> BTreeMap<String, SchemaPlan> {
    let mut out = BTreeMap::new();
    for (name, index) in model.schemas.iter() {
        let schema = &model.syntax.schemas[index];
        let Some(info) = model.schema_info.get(name) else {
            continue;
        };
        // A schema without a valid class is an error: no plan is built.
        let Some(class) = SchemaClass::parse(&info.class) else {
            continue;
        };
        let fields = info
            .fields
            .iter()
            .map(|(field, f)| {
                let plan = FieldPlan {
                    ty: f.ty.name().to_string(),
                    values: f.values.clone(),
                    identity: f.identity.clone(),
                    labels: f.labels.keys().cloned().collect(),
                };
                (field.clone(), plan)
            })
            .collect();
        let links = schema
            .links
            .iter()
            .filter_map(|l| {
                let link = LinkPlan {
                    to: l.to.as_ref()?.value.clone(),
                    by: value(&l.by),
                    reverse: value(&l.reverse),
                    fallback: l
                        .fallback
                        .as_ref()
                        .and_then(|f| LinkFallback::parse(&f.value)),
                    via: value(&l.via),
                };
                Some((l.name.value.clone(), link))
            })
            .collect();
        out.insert(
            name.to_string(),
            SchemaPlan {
                class,
                key: info.key.clone(),
                timestamp: value(&schema.timestamp),
                fields,
                links,
                fingerprint: String::new(),
            },
        );
    }
    out
}

fn value(v: &Option<syntax::Sp<String>>) -> Option<String> {
    v.as_ref().map(|s| s.value.clone())
}

fn sources(model: &Model) -> BTreeMap<String, SourcePlan> {
    let mut out = BTreeMap::new();
    for (name, index) in model.sources.iter() {
        let s = &model.syntax.sources[index];
        let Some(schema) = &s.schema else {
            continue;
        };
        let postgres = s.postgres.as_ref().and_then(|url| match &url.value {
            SettingValue::Reference { kind, name } => Some(PostgresSourcePlan {
                url: format!("{kind}:{name}"),
                table: value(&s.table),
                query: value(&s.query),
            }),
            _ => None,
        });
        let marketo = s.marketo.as_ref().map(|destination| MarketoSourcePlan {
            destination: destination.value.clone(),
            activity_types: s.activity_types.iter().map(|t| t.value.clone()).collect(),
        });
        let path = match &s.path {
            Some(path) => path.value.clone(),
            None if postgres.is_some() || marketo.is_some() => String::new(),
            None => continue,
        };
        let format = s
            .format
            .as_ref()
            .and_then(|f| SourceFormat::parse(&f.value))
            .unwrap_or_else(|| infer_format(&path));
        out.insert(
            name.to_string(),
            SourcePlan {
                schema: schema.value.clone(),
                path,
                format,
                max_age: value(&s.max_age),
                precedence: s.precedence.as_ref().map_or(1, |p| p.value),
                endpoint: value(&s.endpoint),
                settings: s
                    .settings
                    .iter()
                    .filter_map(|s| Some((s.key.value.clone(), setting_plan(&s.value.value)?)))
                    .collect(),
                postgres,
                marketo,
                append_only: s.append_only.as_ref().is_some_and(|a| a.value),
                on_stale: s.on_stale.as_ref().map(|o| match o.value.as_str() {
                    "block" => OnStale::Block,
                    _ => OnStale::Warn,
                }),
                freshness_column: value(&s.freshness_column),
                fingerprint: String::new(),
            },
        );
    }
    out
}

/// `data/x.jsonl` -> `jsonl`; a folder or glob without an extension reads CSV.
fn infer_format(path: &str) -> SourceFormat {
    let last = path.rsplit('/').next().unwrap_or(path);
    match last.rsplit_once('.') {
        Some((_, "jsonl" | "json" | "ndjson")) => SourceFormat::Jsonl,
        Some((_, "parquet")) => SourceFormat::Parquet,
        _ => SourceFormat::Csv,
    }
}

fn computed(model: &Model) -> BTreeMap<String, ComputedPlan> {
    let roots = &model.roots;
    let mut out = BTreeMap::new();
    for (key, index) in model.computed.iter() {
        let c = &model.syntax.computed[index];
        let (Some(ty), Some(expr)) = (&c.ty, &c.expr) else {
            continue;
        };
        let entity = Entity::written(Some(&c.entity));
        let schema = match entity {
            Entity::Account => &roots.account,
            Entity::Person => &roots.person,
        };
        out.insert(
            key.to_string(),
            ComputedPlan {
                entity,
                schema: schema.clone().unwrap_or_default(),
                ty: ty.value.clone(),
                expr: expr.value.clone(),
                reads: reads_of(model, &ExprSite::Computed(key.to_string())),
                fingerprint: String::new(),
            },
        );
    }
    out
}

fn audiences(model: &Model) -> BTreeMap<String, AudiencePlan> {
    let mut lineage = govern::lineage::Lineage::new(model);
    let mut out = BTreeMap::new();
    for (name, index) in model.audiences.iter() {
        let a = &model.syntax.audiences[index];
        let Some(info) = model.audience_info.get(name) else {
            continue;
        };
        let definition = match (&a.rule, &a.compose) {
            (_, Some(c)) => AudienceDefinition::Compose {
                from: c.from.iter().map(|s| s.value.clone()).collect(),
                merge: c
                    .merge
                    .as_ref()
                    .and_then(|m| Merge::parse(&m.value))
                    .unwrap_or(Merge::Union),
                exclude: c.exclude.iter().map(|s| s.value.clone()).collect(),
                exclude_rule: value(&c.exclude_rule),
                rank: c.rank.as_ref().map(|r| RankPlan {
                    by: value(&r.by).unwrap_or_default(),
                    order: r
                        .order
                        .as_ref()
                        .and_then(|o| Order::parse(&o.value))
                        .unwrap_or(Order::Desc),
                    limit: r.limit.as_ref().map(|l| l.value),
                }),
                split: c.split.as_ref().map(|s| match s {
                    syntax::Split::Percent { parts, seed, .. } => SplitPlan::Percent {
                        seed: value(seed).unwrap_or_default(),
                        parts: parts
                            .iter()
                            .map(|(n, p)| PercentPart {
                                name: n.value.clone(),
                                percent: p.value,
                            })
                            .collect(),
                    },
                    syntax::Split::ByAttribute {
                        by, parts, other, ..
                    } => SplitPlan::ByAttribute {
                        by: value(by).unwrap_or_default(),
                        parts: parts
                            .iter()
                            .map(|(n, v)| ValuePart {
                                name: n.value.clone(),
                                values: v.iter().map(|s| s.value.clone()).collect(),
                            })
                            .collect(),
                        other: value(other),
                    },
                }),
            },
            (Some(rule), None) => AudienceDefinition::Rule {
                expr: rule.value.clone(),
            },
            (None, None) => continue,
        };
        let mut reads: Vec<String> = [
            ExprSite::AudienceRule(name.to_string()),
            ExprSite::ExcludeRule(name.to_string()),
            ExprSite::RankBy(name.to_string()),
            ExprSite::SplitBy(name.to_string()),
        ]
        .iter()
        .flat_map(|site| reads_of(model, site))
        .collect();
        reads.sort();
        reads.dedup();
        out.insert(
            name.to_string(),
            AudiencePlan {
                entity: Entity::written(a.entity.as_ref()),
                evaluation: info.evaluation,
                definition,
                depends_on: info.depends_on.iter().cloned().collect(),
                parts: a
                    .compose
                    .as_ref()
                    .and_then(|c| c.split.as_ref())
                    .map(|s| s.part_names().iter().map(|p| p.value.clone()).collect())
                    .unwrap_or_default(),
                labels: lineage.audience(name).keys().cloned().collect(),
                reads,
                fingerprint: String::new(),
            },
        );
    }
    out
}

/// A setting as the plan keeps it; `None` for a value of no setting's type
/// (`check` has reported it).
fn setting_plan(value: &SettingValue) -> Option<SettingPlan> {
    Some(match value {
        SettingValue::String(v) => SettingPlan::Text(v.clone()),
        SettingValue::Integer(i) => SettingPlan::Integer(*i),
        SettingValue::Boolean(b) => SettingPlan::Bool(*b),
        SettingValue::List(l) => SettingPlan::List(l.clone()),
        SettingValue::Reference { kind, name } => SettingPlan::Reference(format!("{kind}:{name}")),
        SettingValue::Table(pairs) => SettingPlan::Table(
            pairs
                .iter()
                .map(|(k, v)| (k.value.clone(), v.value.clone()))
                .collect(),
        ),
        SettingValue::Other(_) => return None,
    })
}

fn destinations(model: &Model) -> BTreeMap<String, DestinationPlan> {
    let mut out = BTreeMap::new();
    for (name, index) in model.destinations.iter() {
        let d = &model.syntax.destinations[index];
        let Some(ty) = d.ty.as_ref().and_then(|t| catalog::lookup(&t.value)) else {
            continue;
        };
        let settings = d
            .settings
            .iter()
            .filter_map(|s| Some((s.key.value.clone(), setting_plan(&s.value.value)?)))
            .collect();
        out.insert(
            name.to_string(),
            DestinationPlan {
                ty: ty.name.to_string(),
                delivery: ty.delivery,
                rows: ty.rows,
                actions: govern::actions::of(d),
                settings,
                fields: d.fields.iter().map(|f| f.value.clone()).collect(),
                endpoint: d.delivery.endpoint.as_ref().map(|e| e.value.value.clone()),
                rate_limit: rate_limit_plan(d, ty),
                lists: d
                    .delivery
                    .lists
                    .iter()
                    .flat_map(|l| &l.value.value)
                    .map(|(audience, id)| (audience.value.clone(), id.value.clone()))
                    .collect(),
                list_prefix: d
                    .delivery
                    .list_prefix
                    .as_ref()
                    .map(|p| p.value.value.clone()),
                fingerprint: String::new(),
            },
        );
    }
    out
}

/// The limit requests keep to: the catalog's, lowered by `rate_limit`.
fn rate_limit_plan(
    d: &syntax::Destination,
    ty: &catalog::DestinationType,
) -> Option<RateLimitPlan> {
    let limit = resolve::delivery_keys::effective_rate_limit(d, ty)?;
    let window = limit.window?;
    Some(RateLimitPlan {
        calls: window.calls,
        per_seconds: window.per_seconds,
        concurrent: limit.concurrency,
        daily: limit.daily,
    })
}

/// `CALLS/SECONDSs, N concurrent, N/day`, each part only when the catalog
/// sets it.
fn rate_limit_text(r: catalog::RateLimit) -> String {
    let mut parts = Vec::new();
    if let Some(w) = r.window {
        parts.push(format!("{}/{}s", w.calls, w.per_seconds));
    }
    if let Some(c) = r.concurrency {
        parts.push(format!("{c} concurrent"));
    }
    if let Some(d) = r.daily {
        parts.push(format!("{d}/day"));
    }
    parts.join(", ")
}

fn activations(model: &Model, verdicts: &Verdicts) -> BTreeMap<String, ActivationPlan> {
    let mut out = BTreeMap::new();
    for (name, index) in model.activations.iter() {
        let a = &model.syntax.activations[index];
        // Resolve reported whatever is missing here: no plan is built then.
        let Some(resolved) = model.activation_info.get(name) else {
            continue;
        };
        let (Some(ty), Some(schedule), Some(export)) = (
            resolved.destination_type,
            resolved.schedule,
            resolved.export,
        ) else {
            continue;
        };
        let mapping = a
            .map
            .iter()
            .map(|(column, expr)| {
                let transform = activations::transform_of(&expr.value);
                MappingPlan {
                    column: column.value.clone(),
                    expr: expr.value.clone(),
                    transform,
                    identity: ty.identity(&column.value).map(|i| i.namespace.to_string()),
                    reads: reads_of(
                        model,
                        &ExprSite::Map(name.to_string(), column.value.clone()),
                    ),
                }
            })
            .collect();
        let verdict = verdicts.activations.get(name);
        let governance = verdict
            .map(|v| {
                v.audiences
                    .iter()
                    .map(|(audience, av)| {
                        let policies = av
                            .policies
                            .iter()
                            .map(|(p, v)| (p.clone(), PolicyVerdict::from(v)))
                            .collect();
                        (
                            audience.clone(),
                            AudienceGovernance {
                                labels: av.labels.keys().cloned().collect(),
                                policies,
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let consent = verdict
            .map(|v| {
                v.consent
                    .iter()
                    .map(|c| ConsentFilter {
                        policy: c.consent.clone(),
                        actions: c.actions.clone(),
                        require: c.require.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let limits = &ty.limits;
        out.insert(
            name.to_string(),
            ActivationPlan {
                destination: resolved.destination.clone(),
                destination_type: ty.name.to_string(),
                rows: resolved.rows,
                audiences: a.audiences.iter().map(|s| s.value.clone()).collect(),
                exclude: a.exclude.iter().map(|s| s.value.clone()).collect(),
                people: value(&a.people),
                consent,
                mapping,
                schedule,
                export,
                governance,
                max_removed_ratio: a
                    .max_removed_ratio
                    .as_ref()
                    .map_or(super::ir::DEFAULT_MAX_REMOVED_RATIO, |r| r.value),
                limits: LimitsPlan {
                    min_audience_size: limits.min_audience_size,
                    max_rows_per_file: limits.max_rows_per_file,
                    max_file_name_len: limits.max_file_name_len,
                    batch_size: limits.batch_size,
                    max_payload_bytes: limits.max_payload_bytes,
                    rate_limit: limits.rate_limit.map(rate_limit_text),
                    max_audiences_per_dataflow: Some(limits.max_audiences_per_dataflow),
                    max_mapped_attributes: Some(limits.max_mapped_attributes),
                    max_audience_fields: limits.max_audience_fields,
                },
                fingerprint: String::new(),
            },
        );
    }
    out
}

/// sha256 of the canonical JSON of a node whose fingerprint is blank,
/// as lowercase hex. The JSON is streamed into the hash, never held whole.
fn alerts(model: &Model) -> BTreeMap<String, AlertPlan> {
    let mut out = BTreeMap::new();
    for (name, i) in model.alerts.iter() {
        let a = &model.syntax.alerts[i];
        let (Some(on), Some(when)) = (
            &a.on,
            a.when.as_ref().and_then(|w| AlertKind::parse(&w.value)),
        ) else {
            continue;
        };
        let reference = |key: &str| {
            a.notify
                .as_ref()?
                .entries
                .iter()
                .find_map(|s| match &s.value.value {
                    SettingValue::Reference { kind, name } if s.key.value == key => {
                        Some(format!("{kind}:{name}"))
                    }
                    _ => None,
                })
        };
        let notify = match (
            reference("webhook"),
            reference("secret"),
            reference("slack"),
        ) {
            (Some(url), Some(secret), None) => Some(NotifyPlan::Webhook { url, secret }),
            (None, None, Some(url)) => Some(NotifyPlan::Slack { url }),
            _ => None,
        };
        let choice = |value: &Option<syntax::Sp<String>>| value.as_ref().map(|v| v.value.clone());
        let plan = AlertPlan {
            on: on.value.clone(),
            when,
            threshold: a.threshold.as_ref().map(|t| t.value),
            // Absent: a warning, which notifies without failing the run;
            // failing it is a choice the spec writes out.
            severity: choice(&a.severity)
                .and_then(|s| AlertSeverity::parse(&s))
                .unwrap_or(AlertSeverity::Warning),
            repeat: choice(&a.repeat)
                .and_then(|r| AlertRepeat::parse(&r))
                .unwrap_or(AlertRepeat::Once),
            notify,
            fingerprint: String::new(),
        };
        out.insert(name.to_string(), plan);
    }
    out
}

pub fn fingerprint_of<T: serde::Serialize>(node: &T) -> String {
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut writer = HashWriter(Sha256::new());
    // Serialising plain data into a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut writer, node);
    hash::hex(&writer.0.finalize())
}

/// What the plan's fingerprint is computed over: every scalar of the plan,
/// the policies in full, and every other node by its own fingerprint (which
/// covers the node's whole content), so the plan's fingerprint changes
/// exactly when some content does, without hashing every node twice.
#[derive(serde::Serialize)]
struct PlanDigest<'a> {
    format_version: u32,
    project: &'a str,
    environment: &'a Option<String>,
    enforcement: &'a Option<EnvEnforcement>,
    schemas: BTreeMap<&'a str, &'a str>,
    sources: BTreeMap<&'a str, &'a str>,
    computed: BTreeMap<&'a str, &'a str>,
    audiences: BTreeMap<&'a str, &'a str>,
    destinations: BTreeMap<&'a str, &'a str>,
    activations: BTreeMap<&'a str, &'a str>,
    policies: &'a BTreeMap<String, PolicyPlan>,
    /// Absent when the plan has no alerts, so their fingerprints stay.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    alerts: BTreeMap<&'a str, &'a str>,
}

fn fingerprint_all(plan: &mut Plan) {
    macro_rules! stamp {
        ($map:expr) => {
            for node in $map.values_mut() {
                node.fingerprint.clear();
                node.fingerprint = fingerprint_of(&*node);
            }
        };
    }
    stamp!(plan.schemas);
    stamp!(plan.sources);
    stamp!(plan.computed);
    stamp!(plan.audiences);
    stamp!(plan.destinations);
    stamp!(plan.activations);
    stamp!(plan.alerts);
    macro_rules! prints {
        ($map:expr) => {
            $map.iter()
                .map(|(k, v)| (k.as_str(), v.fingerprint.as_str()))
                .collect()
        };
    }
    let digest = PlanDigest {
        format_version: plan.format_version,
        project: &plan.project,
        environment: &plan.environment,
        enforcement: &plan.enforcement,
        schemas: prints!(plan.schemas),
        sources: prints!(plan.sources),
        computed: prints!(plan.computed),
        audiences: prints!(plan.audiences),
        destinations: prints!(plan.destinations),
        activations: prints!(plan.activations),
        policies: &plan.policies,
        alerts: prints!(plan.alerts),
    };
    let fingerprint = fingerprint_of(&digest);
    plan.fingerprint = fingerprint;
}
