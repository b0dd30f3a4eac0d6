//! Activations against the destination catalog: what a dataflow sends must be
//! something the destination type can take.
//!
//! Input: the model (names bound) and the catalog. Output: `P0101`-`P0110`
//! diagnostics. Checks: the schedule and export mode are allowed for the
//! type; rows match (a person-level type needs `people` on account
//! audiences, an account-level type takes no people); every mapping target
//! exists on the destination (no silent drop); the identity and required
//! columns are mapped; hashed-only identities are mapped through `hash_*`;
//! mutually exclusive identities are not mixed in one flow; the per-dataflow
//! and per-destination limits hold; a CRM that holds one membership field
//! per audience gets each audience from one dataflow only.
//!
//! Activations whose destination or type does not resolve are skipped: the
//! reference checks already reported them.
//!
//! The same pass resolves each activation once for every later stage
//! ([`ResolvedActivation`]): its destination, the destination's catalog
//! type, its rows, schedule and export mode, so governance and the plan
//! read them instead of deriving them again.

use std::collections::BTreeMap;

use super::Model;
use super::audiences::base_name;
use super::kinds::{Entity, Schedule, Transform};
use crate::catalog::{
    self, DestinationType, ExportMode, HashingRule, IdentityRule, Membership, Rows, ScheduleKind,
};
use crate::diag::{Diagnostic, codes};
use crate::syntax::{Activation, Destination, SettingValue, Sp};

/// An activation with its references followed and its defaults applied.
#[derive(Clone, Debug)]
pub struct ResolvedActivation {
    /// The destination's name, and its index in `model.syntax.destinations`.
    pub destination: String,
    pub destination_index: usize,
    /// The destination's catalog type; `None` when its `type` names no
    /// catalog type (reported by the reference checks).
    pub destination_type: Option<&'static DestinationType>,
    /// Person rows when the activation expands to `people` or activates a
    /// person audience, else account rows.
    pub rows: Entity,
    /// As written, else the type's default; `None` when the written value
    /// is not a schedule (reported) or the type is unknown.
    pub schedule: Option<Schedule>,
    /// As written, else the type's first mode; `None` when the type is unknown.
    pub export: Option<ExportMode>,
}

/// A parsed `schedule` value.
pub fn parse_schedule(text: &str) -> Option<ScheduleKind> {
    Schedule::parse(text).map(Schedule::kind)
}

/// The hash transform a mapping expression applies: the `hash_*` function it
/// calls, or none.
pub fn transform_of(expr: &str) -> Transform {
    [Transform::HashEmail, Transform::HashPhone]
        .into_iter()
        .find(|t| {
            let f = t.as_str();
            expr.match_indices(f).any(|(i, _)| {
                let before = expr[..i].chars().next_back();
                let after = expr[i + f.len()..].trim_start();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    && after.starts_with('(')
            })
        })
        .unwrap_or(Transform::None)
}

/// The default schedule of a type when the activation sets none.
pub fn default_schedule(ty: &DestinationType) -> Schedule {
    if ty.schedules.contains(&ScheduleKind::Streaming) {
        Schedule::Streaming
    } else {
        Schedule::Daily { hour: 0, minute: 0 }
    }
}

/// The default export mode of a type when the activation sets none.
pub fn default_export(ty: &DestinationType) -> ExportMode {
    ty.export_modes
        .first()
        .copied()
        .unwrap_or(ExportMode::Incremental)
}

/// Whether `a` activates an audience about people.
fn is_person_audience(model: &Model, reference: &Sp<String>) -> bool {
    model
        .audiences
        .get(base_name(&reference.value))
        .and_then(|i| model.syntax.audiences[i].entity.as_ref())
        .is_some_and(|e| e.as_str() == "person")
}

/// `a` resolved, when its destination resolves.
fn resolve_one(model: &Model, a: &Activation) -> Option<ResolvedActivation> {
    let destination = a.destination.as_ref()?;
    let destination_index = model.destinations.get(&destination.value)?;
    let d = &model.syntax.destinations[destination_index];
    let ty = d.ty.as_ref().and_then(|t| catalog::lookup(&t.value));
    let rows = if a.people.is_some() || a.audiences.iter().any(|r| is_person_audience(model, r)) {
        Entity::Person
    } else {
        Entity::Account
    };
    let schedule = match &a.schedule {
        Some(s) => Schedule::parse(&s.value),
        None => ty.map(default_schedule),
    };
    let export = match &a.export {
        Some(e) => ExportMode::parse(&e.value),
        None => ty.map(default_export),
    };
    Some(ResolvedActivation {
        destination: destination.value.clone(),
        destination_index,
        destination_type: ty,
        rows,
        schedule,
        export,
    })
}

fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    items
        .into_iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolves every activation whose destination resolves and checks it
/// against its type, then checks what a destination receives across its
/// activations.
pub fn check(model: &Model, diags: &mut Vec<Diagnostic>) -> BTreeMap<String, ResolvedActivation> {
    // Per CRM destination: audience -> the activations that send it.
    // Per destination, per audience: (activation, reference) in order.
    type Refs<'a> = Vec<(&'a str, &'a Sp<String>)>;
    let mut fields: BTreeMap<&str, BTreeMap<&str, Refs<'_>>> = BTreeMap::new();
    let mut resolved = BTreeMap::new();
    for (name, index) in model.activations.iter() {
        let a = &model.syntax.activations[index];
        let Some(r) = resolve_one(model, a) else {
            continue;
        };
        let d = &model.syntax.destinations[r.destination_index];
        let ty = r.destination_type;
        resolved.insert(name.to_string(), r);
        let Some(ty) = ty else {
            continue;
        };
        check_one(&Flow { model, a, d, ty }, diags);
        if ty.membership == Membership::AudienceField && ty.limits.max_audience_fields.is_some() {
            let per = fields.entry(d.name.value.as_str()).or_default();
            for audience in &a.audiences {
                per.entry(audience.value.as_str())
                    .or_default()
                    .push((a.name.value.as_str(), audience));
            }
        }
    }
    for (dest, audiences) in fields {
        let Some(d) = model
            .destinations
            .get(dest)
            .map(|i| &model.syntax.destinations[i])
        else {
            continue;
        };
        let Some(ty) = d.ty.as_ref().and_then(|t| catalog::lookup(&t.value)) else {
            continue;
        };
        for (audience, refs) in &audiences {
            if let [(first_activation, first), rest @ ..] = refs.as_slice() {
                for (activation, again) in rest {
                    diags.push(
                        Diagnostic::new(
                            codes::plan::AUDIENCE_FIELD_TWICE,
                            again.span,
                            format!("activation `{activation}` sends audience `{audience}` to `{dest}`, which activation `{first_activation}` already does"),
                        )
                        .label("a second membership field for the same audience")
                        .with_secondary(first.span, "first sent here")
                        .help(format!(
                            "`{}` holds one membership field per audience; send `{audience}` from one activation only",
                            ty.name
                        )),
                    );
                }
            }
        }
        if let Some(max) = ty.limits.max_audience_fields
            && audiences.len() > max as usize
        {
            diags.push(
                Diagnostic::new(
                    codes::plan::DESTINATION_LIMIT,
                    d.name.span,
                    format!(
                        "destination `{dest}` receives {} audiences, more than the {max} audience fields `{}` allows",
                        audiences.len(),
                        ty.name
                    ),
                )
                .label("too many audience fields")
                .help(format!(
                    "`{}` holds one custom field per audience, at most {max}; send fewer audiences or combine them",
                    ty.name
                )),
            );
        }
    }
    resolved
}

/// One activation and its destination, resolved.
#[derive(Clone, Copy)]
struct Flow<'a> {
    model: &'a Model,
    a: &'a Activation,
    d: &'a Destination,
    ty: &'static DestinationType,
}

/// The checks of one activation against its destination type, in the
/// order their diagnostics are reported.
fn check_one(flow: &Flow<'_>, diags: &mut Vec<Diagnostic>) {
    let schedule = check_schedule(flow, diags);
    check_export(flow, schedule, diags);
    check_rows(flow, diags);
    check_mapping_targets(flow, diags);
    check_identity_columns(flow, diags);
    check_required_columns(flow, diags);
    check_hashing(flow, diags);
    check_mixed_identities(flow, diags);
    check_dataflow_limits(flow, diags);
}

/// P0101: the schedule is one, and one the type allows. Returns the
/// schedule's kind when it is (the default when none is written).
fn check_schedule(flow: &Flow<'_>, diags: &mut Vec<Diagnostic>) -> Option<ScheduleKind> {
    let Flow { a, d, ty, .. } = *flow;
    let name = &a.name;
    match &a.schedule {
        Some(s) => match parse_schedule(&s.value) {
            None => {
                diags.push(
                    Diagnostic::new(
                        codes::plan::SCHEDULE_NOT_ALLOWED,
                        s.span,
                        format!("activation `{}`: `{}` is not a schedule", name.value, s.value),
                    )
                    .label("not a schedule")
                    .help("write `streaming`, `daily@HH:MM` or `every 3h`, `every 6h`, `every 8h`, `every 12h`"),
                );
                None
            }
            Some(kind) if !ty.schedules.contains(&kind) => {
                diags.push(
                    Diagnostic::new(
                        codes::plan::SCHEDULE_NOT_ALLOWED,
                        s.span,
                        format!(
                            "activation `{}`: `{}` destinations cannot run on schedule `{}`",
                            name.value, ty.name, s.value
                        ),
                    )
                    .label("not allowed for this destination type")
                    .with_secondary(d.name.span, format!("destination of type `{}`", ty.name))
                    .help(format!(
                        "`{}` allows: {}",
                        ty.name,
                        list(ty.schedules.iter().map(|k| match k {
                            ScheduleKind::Daily => "daily@HH:MM",
                            k => k.as_str(),
                        }))
                    )),
                );
                None
            }
            Some(kind) => Some(kind),
        },
        None => Some(default_schedule(ty).kind()),
    }
}

/// P0102: the export mode is one the type allows, on a schedule that
/// can carry it.
fn check_export(flow: &Flow<'_>, schedule: Option<ScheduleKind>, diags: &mut Vec<Diagnostic>) {
    let Flow { a, d, ty, .. } = *flow;
    let name = &a.name;
    // Only a written mode is checked: the default is one the type allows.
    let export = a.export.as_ref().and_then(|e| ExportMode::parse(&e.value));
    if let (Some(mode), Some(span)) = (export, a.export.as_ref().map(|e| e.span)) {
        if !ty.export_modes.contains(&mode) {
            diags.push(
                Diagnostic::new(
                    codes::plan::EXPORT_NOT_ALLOWED,
                    span,
                    format!(
                        "activation `{}`: `{}` destinations take no `{}` exports",
                        name.value,
                        ty.name,
                        mode.as_str()
                    ),
                )
                .label("not allowed for this destination type")
                .with_secondary(d.name.span, format!("destination of type `{}`", ty.name))
                .help(format!(
                    "`{}` allows: {}",
                    ty.name,
                    list(ty.export_modes.iter().map(|m| m.as_str()))
                )),
            );
        } else if let (Some(kind), Some(s)) = (schedule, &a.schedule)
            && !kind.allows(mode)
        {
            diags.push(
                Diagnostic::new(
                    codes::plan::EXPORT_NOT_ALLOWED,
                    span,
                    format!(
                        "activation `{}`: a `{}` export cannot run on schedule `{}`",
                        name.value,
                        mode.as_str(),
                        s.value
                    ),
                )
                .label("full exports run at most daily")
                .with_secondary(s.span, "this schedule")
                .help("use `daily@HH:MM` for full exports, or `incremental` for this schedule"),
            );
        }
    }
}

/// P0103: account rows go to account-level types, person rows (or
/// account audiences expanded with `people`) to person-level ones.
fn check_rows(flow: &Flow<'_>, diags: &mut Vec<Diagnostic>) {
    let Flow { model, a, d, ty } = *flow;
    let dest = &d.name.value;
    let name = &a.name;
    let person_audiences: Vec<&Sp<String>> = a
        .audiences
        .iter()
        .filter(|r| is_person_audience(model, r))
        .collect();
    match ty.rows {
        Rows::Person if a.people.is_none() => {
            if let Some(account) = a
                .audiences
                .iter()
                .find(|r| !person_audiences.iter().any(|p| p.value == r.value))
            {
                diags.push(
                    Diagnostic::new(
                        codes::plan::ROWS_MISMATCH,
                        account.span,
                        format!(
                            "activation `{}` sends account audience `{}` to person-level destination `{dest}` without `people`",
                            name.value, account.value
                        ),
                    )
                    .label("an account audience")
                    .with_secondary(d.name.span, format!("`{}` takes one row per person", ty.name))
                    .help("add `people = '...'` to the activation to expand each account to its people, e.g. `people = 'person.email != \"\"'`"),
                );
            }
        }
        Rows::Account => {
            let people_span = a.people.as_ref().map(|p| p.span);
            if let Some(span) = people_span.or(person_audiences.first().map(|p| p.span)) {
                diags.push(
                    Diagnostic::new(
                        codes::plan::ROWS_MISMATCH,
                        span,
                        format!(
                            "activation `{}` sends people to account-level destination `{dest}`",
                            name.value
                        ),
                    )
                    .label(if people_span.is_some() {
                        "expands to people"
                    } else {
                        "a person audience"
                    })
                    .with_secondary(
                        d.name.span,
                        format!("`{}` takes one row per account", ty.name),
                    )
                    .help("remove `people` and activate account audiences only"),
                );
            }
        }
        _ => {}
    }
}

/// P0104: every mapped column exists at the destination.
fn check_mapping_targets(flow: &Flow<'_>, diags: &mut Vec<Diagnostic>) {
    let Flow { a, d, ty, .. } = *flow;
    let dest = &d.name.value;
    let name = &a.name;
    let declared: Vec<&str> = d.fields.iter().map(|f| f.value.as_str()).collect();
    for (column, _) in &a.map {
        let c = column.value.as_str();
        let known = ty.accepts_column(c) || (ty.declares_fields && declared.contains(&c));
        if !known {
            let mut candidates: Vec<&str> = ty.identities.iter().map(|i| i.column).collect();
            candidates.extend(ty.fixed_columns);
            if ty.declares_fields {
                candidates.extend(&declared);
            }
            let otherwise = if ty.declares_fields {
                format!(
                    "add `{c}` to `fields` of destination `{dest}` once it exists there; known columns: {}",
                    list(&candidates)
                )
            } else {
                format!("`{}` takes: {}", ty.name, list(&candidates))
            };
            diags.push(
                Diagnostic::new(
                    codes::plan::UNKNOWN_MAPPING_TARGET,
                    column.span,
                    format!(
                        "activation `{}` maps `{c}`, a column destination `{dest}` does not have",
                        name.value
                    ),
                )
                .label("the destination would drop this silently")
                .with_secondary(d.name.span, format!("destination of type `{}`", ty.name))
                .suggest(c, candidates.iter().copied(), otherwise),
            );
        }
    }
}

/// P0105: the identity columns the type matches on are mapped.
fn check_identity_columns(flow: &Flow<'_>, diags: &mut Vec<Diagnostic>) {
    let Flow { a, d, ty, .. } = *flow;
    if upserts_by_another_key(d, ty) {
        return;
    }
    let name = &a.name;
    let mapped = |c: &str| a.map.iter().any(|(k, _)| k.value == c);
    let ids: Vec<&str> = ty.identities.iter().map(|i| i.column).collect();
    let missing_ids: Vec<&str> = match ty.identity_rule {
        IdentityRule::AnyOf if !ids.iter().any(|c| mapped(c)) => ids.clone(),
        IdentityRule::AllOf => ids.iter().copied().filter(|c| !mapped(c)).collect(),
        _ => Vec::new(),
    };
    if !missing_ids.is_empty() {
        let how = match (ty.identity_rule, missing_ids.len()) {
            (IdentityRule::AnyOf, n) if n > 1 => "none of the identity columns",
            (_, 1) => "no identity column",
            _ => "none of the required identity columns",
        };
        diags.push(
            Diagnostic::new(
                codes::plan::MISSING_COLUMN,
                name.span,
                format!(
                    "activation `{}` maps {how} {} that `{}` matches on",
                    name.value,
                    list(&missing_ids),
                    ty.name
                ),
            )
            .label("records without an identity cannot be matched")
            .help(format!(
                "map it in `[activation.{}.map]`, e.g. `{} = \"...\"`",
                name.value, missing_ids[0]
            )),
        );
    }
}

/// Whether the destination matches records on a key of its own choosing
/// (Salesforce `external_id` other than `Id`, Dataverse `alternate_key`)
/// instead of the type's identity columns: then that key is what every
/// activation must map, and A0126 / A0129 say so at the setting.
fn upserts_by_another_key(d: &Destination, ty: &DestinationType) -> bool {
    let text = |key: &str| text_setting(d, key);
    match ty.name {
        "salesforce" => text("external_id").is_some_and(|key| key != "Id"),
        "dynamics365" => text("alternate_key").is_some(),
        _ => false,
    }
}

/// A text setting of the destination, as written.
fn text_setting<'a>(d: &'a Destination, key: &str) -> Option<&'a str> {
    d.settings
        .iter()
        .find(|s| s.key.value == key)
        .and_then(|s| match &s.value.value {
            SettingValue::String(v) => Some(v.as_str()),
            _ => None,
        })
}

/// P0105: the columns the type requires are mapped.
fn check_required_columns(flow: &Flow<'_>, diags: &mut Vec<Diagnostic>) {
    let Flow { a, d, ty, .. } = *flow;
    let name = &a.name;
    let mapped = |c: &str| a.map.iter().any(|(k, _)| k.value == c);
    for column in ty.required_columns_with(|key| text_setting(d, key)) {
        if !mapped(column) {
            diags.push(
                Diagnostic::new(
                    codes::plan::MISSING_COLUMN,
                    name.span,
                    format!(
                        "activation `{}` does not map `{column}`, which `{}` requires",
                        name.value, ty.name
                    ),
                )
                .label("the destination rejects records without it")
                .help(format!(
                    "map it in `[activation.{}.map]`, e.g. `{column} = \"...\"`",
                    name.value
                )),
            );
        }
    }
}

/// P0106: hashed-only identities are hashed, raw-only ones are not.
fn check_hashing(flow: &Flow<'_>, diags: &mut Vec<Diagnostic>) {
    let Flow { a, ty, .. } = *flow;
    let name = &a.name;
    for (column, expr) in &a.map {
        let Some(id) = ty.identity(&column.value) else {
            continue;
        };
        let transform = transform_of(&expr.value);
        let wrong = match id.hashing {
            HashingRule::Required if transform == Transform::None => Some(format!(
                "activation `{}`: `{}` takes only SHA-256 hashes, but the mapping sends the raw value",
                name.value, column.value
            )),
            HashingRule::Forbidden if transform != Transform::None => Some(format!(
                "activation `{}`: `{}` takes only raw values, but the mapping hashes it",
                name.value, column.value
            )),
            _ => None,
        };
        if let Some(message) = wrong {
            let fix = match (id.hashing, id.namespace) {
                (HashingRule::Required, "phone_e164") => {
                    format!("wrap it: `hash_phone({})`", expr.value.trim())
                }
                (HashingRule::Required, _) => {
                    format!("wrap it: `hash_email({})`", expr.value.trim())
                }
                _ => "map the raw value; the vendor cannot match a hash".to_string(),
            };
            diags.push(
                Diagnostic::new(codes::plan::WRONG_HASHING, expr.span, message)
                    .label(if id.hashing == HashingRule::Required {
                        "unhashed identity"
                    } else {
                        "hashed identity"
                    })
                    .with_secondary(column.span, format!("identity column of `{}`", ty.name))
                    .help(fix),
            );
        }
    }
}

/// P0107: mutually exclusive identities are not mixed in one flow.
fn check_mixed_identities(flow: &Flow<'_>, diags: &mut Vec<Diagnostic>) {
    let Flow { a, ty, .. } = *flow;
    let name = &a.name;
    for (x, y) in ty.exclusive_identities {
        let (Some(first), Some(second)) = (
            a.map.iter().find(|(k, _)| k.value == *x),
            a.map.iter().find(|(k, _)| k.value == *y),
        ) else {
            continue;
        };
        diags.push(
            Diagnostic::new(
                codes::plan::MIXED_IDENTITIES,
                second.0.span,
                format!("activation `{}` maps both `{x}` and `{y}`", name.value),
            )
            .label("the second of two exclusive identities")
            .with_secondary(first.0.span, "the first")
            .help(format!(
                "`{}` never takes both in one flow; map one of them",
                ty.name
            )),
        );
    }
}

/// P0108: the audiences and mapped attributes fit one dataflow.
fn check_dataflow_limits(flow: &Flow<'_>, diags: &mut Vec<Diagnostic>) {
    let Flow { a, ty, .. } = *flow;
    let name = &a.name;
    let limits = &ty.limits;
    if a.audiences.len() > limits.max_audiences_per_dataflow as usize {
        let span = a.audiences[limits.max_audiences_per_dataflow as usize].span;
        diags.push(
            Diagnostic::new(
                codes::plan::DATAFLOW_LIMIT,
                span,
                format!(
                    "activation `{}` sends {} audiences, more than the {} a `{}` dataflow allows",
                    name.value,
                    a.audiences.len(),
                    limits.max_audiences_per_dataflow,
                    ty.name
                ),
            )
            .label("the first audience over the limit")
            .help("split the audiences over several activations"),
        );
    }
    if a.map.len() > limits.max_mapped_attributes as usize {
        let span = a.map[limits.max_mapped_attributes as usize].0.span;
        diags.push(
            Diagnostic::new(
                codes::plan::DATAFLOW_LIMIT,
                span,
                format!(
                    "activation `{}` maps {} attributes, more than the {} a `{}` dataflow allows",
                    name.value,
                    a.map.len(),
                    limits.max_mapped_attributes,
                    ty.name
                ),
            )
            .label("the first attribute over the limit")
            .help("map fewer attributes"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_as_the_spec_writes_them() {
        assert_eq!(parse_schedule("streaming"), Some(ScheduleKind::Streaming));
        assert_eq!(parse_schedule("daily@02:00"), Some(ScheduleKind::Daily));
        assert_eq!(parse_schedule("daily@23:59"), Some(ScheduleKind::Daily));
        assert_eq!(parse_schedule("every 12h"), Some(ScheduleKind::Every12h));
        for bad in [
            "daily",
            "daily@24:00",
            "daily@2:00",
            "daily@02:60",
            "every 5h",
            "hourly",
        ] {
            assert_eq!(parse_schedule(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_transform_is_the_hash_function_called() {
        assert_eq!(
            transform_of("hash_email(person.email)").as_str(),
            "hash_email"
        );
        assert_eq!(
            transform_of(r#"person.phone != "" ? hash_phone(person.phone) : """#).as_str(),
            "hash_phone"
        );
        assert_eq!(transform_of("lower(person.email)").as_str(), "none");
        assert_eq!(transform_of("person.hash_email_flag").as_str(), "none");
        assert_eq!(transform_of("my_hash_email(x)").as_str(), "none");
    }
}
