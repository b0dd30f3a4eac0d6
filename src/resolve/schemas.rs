//! Schemas: field types, keys, labels and links, and the entity graph that
//! CEL rules navigate (`account.people`, `person.account`).

use std::collections::BTreeMap;

use super::Model;
use super::names::unknown;
use crate::diag::{Diagnostic, codes};
use crate::source::Span;
use crate::syntax::{Schema, Sp};

/// The field types of the spec language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Int,
    Double,
    Bool,
    Timestamp,
    ListString,
    ListInt,
    ListDouble,
}

impl FieldType {
    pub const ALL: &[(&str, FieldType)] = &[
        ("string", FieldType::String),
        ("int", FieldType::Int),
        ("double", FieldType::Double),
        ("bool", FieldType::Bool),
        ("timestamp", FieldType::Timestamp),
        ("list<string>", FieldType::ListString),
        ("list<int>", FieldType::ListInt),
        ("list<double>", FieldType::ListDouble),
    ];

    pub fn parse(text: &str) -> Option<FieldType> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        FieldType::ALL
            .iter()
            .find(|(n, _)| *n == compact)
            .map(|(_, t)| *t)
    }

    pub fn name(self) -> &'static str {
        FieldType::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(n, _)| n)
    }
}

/// What later stages need to know about one field.
#[derive(Clone, Debug)]
pub struct FieldInfo {
    pub ty: FieldType,
    pub values: Option<Vec<String>>,
    pub identity: Option<String>,
    /// The field's own labels plus its schema's labels, each with the span
    /// where it was attached (for lineage in governance diagnostics).
    pub labels: BTreeMap<String, Span>,
    pub span: Span,
}

/// A schema's class, fields and navigable links.
#[derive(Clone, Debug, Default)]
pub struct SchemaInfo {
    pub class: String,
    pub key: Option<String>,
    pub fields: BTreeMap<String, FieldInfo>,
    /// Forward links (to one): link name -> target schema.
    pub to_one: BTreeMap<String, String>,
    /// Reverse collections (to many): collection name -> source schema.
    pub to_many: BTreeMap<String, String>,
    /// Many-to-many links of this schema: link name -> the collection on
    /// the target that rules read instead (`account.relatedContacts`).
    pub read_from_target: BTreeMap<String, String>,
}

/// Which classes a link may point to, by the class of the linking schema.
fn link_targets(class: &str) -> &'static [&'static str] {
    match class {
        "person" => &["account"],
        "opportunity" => &["account", "person"],
        "event" => &["person", "account", "opportunity", "campaign"],
        "campaign" => &["account"],
        "relation" => &["account", "person", "opportunity"],
        "account" => &["account"],
        _ => &[],
    }
}

pub fn check(model: &Model, diags: &mut Vec<Diagnostic>) -> BTreeMap<String, SchemaInfo> {
    let mut infos = BTreeMap::new();
    for (name, index) in model.schemas.iter() {
        let schema = &model.syntax.schemas[index];
        infos.insert(name.to_string(), schema_info(model, schema, diags));
    }
    // Links need every schema's fields, so they are bound in a second pass.
    for (_, index) in model.schemas.iter() {
        let schema = &model.syntax.schemas[index];
        for link in &schema.links {
            bind_link(model, schema, link, &mut infos, diags);
        }
    }
    infos
}

fn schema_info(model: &Model, schema: &Schema, diags: &mut Vec<Diagnostic>) -> SchemaInfo {
    let class = schema
        .class
        .as_ref()
        .map(|c| c.value.clone())
        .unwrap_or_default();
    let from = format!("schema `{}`", schema.name.value);
    let mut schema_labels = BTreeMap::new();
    for label in &schema.labels {
        if check_label(model, &from, label, diags) {
            schema_labels
                .entry(label.value.clone())
                .or_insert(label.span);
        }
    }
    let mut fields = BTreeMap::new();
    let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
    for field in &schema.fields {
        seen.insert(&field.name.value, field.name.span);
        // Labels are checked even when the type is wrong: both get reported.
        let mut labels = schema_labels.clone();
        let field_from = format!(
            "field `{}` of schema `{}`",
            field.name.value, schema.name.value
        );
        for label in &field.labels {
            if check_label(model, &field_from, label, diags) {
                labels.insert(label.value.clone(), label.span);
            }
        }
        let Some(ty_text) = &field.ty else { continue };
        let Some(ty) = FieldType::parse(&ty_text.value) else {
            let names: Vec<&str> = FieldType::ALL.iter().map(|(n, _)| *n).collect();
            diags.push(
                Diagnostic::new(
                    codes::spec::INVALID_VALUE,
                    ty_text.span,
                    format!("{field_from}: `{}` is not a field type", ty_text.value),
                )
                .label("unknown type")
                .suggest(
                    &ty_text.value,
                    names.iter().copied(),
                    format!("field types: {}", names.join(", ")),
                ),
            );
            continue;
        };
        if let (Some(values), false) = (&field.values, ty == FieldType::String) {
            let span = values.first().map_or(field.name.span, |v| v.span);
            diags.push(
                Diagnostic::new(
                    codes::spec::INVALID_VALUE,
                    span,
                    format!(
                        "{field_from}: `values` closes the domain of a string, but the field is {}",
                        ty.name()
                    ),
                )
                .label("only string fields take `values`")
                .help("remove `values`, or make the field a string"),
            );
        }
        fields.insert(
            field.name.value.clone(),
            FieldInfo {
                ty,
                values: field
                    .values
                    .as_ref()
                    .map(|v| v.iter().map(|s| s.value.clone()).collect()),
                identity: field.identity.as_ref().map(|i| i.value.clone()),
                labels,
                span: field.name.span,
            },
        );
    }
    let field_names: Vec<&str> = seen.keys().copied().collect();
    let mut check_field = |reference: &Option<Sp<String>>, role: &str| {
        if let Some(r) = reference
            && !seen.contains_key(r.as_str())
        {
            diags.push(
                unknown(
                    codes::spec::UNKNOWN_FIELD,
                    &from,
                    r,
                    "field",
                    field_names.iter().copied(),
                )
                .label(format!(
                    "the {role} must be a field of schema `{}`",
                    schema.name.value
                )),
            );
        }
    };
    check_field(&schema.key, "key");
    check_field(&schema.timestamp, "timestamp");
    if schema.key.is_none() && class != "relation" && schema.class.is_some() {
        missing(schema, "key", "the field that identifies a record", diags);
    }
    if schema.timestamp.is_none() && class == "event" {
        missing(
            schema,
            "timestamp",
            "the field with the time the event happened",
            diags,
        );
    }
    SchemaInfo {
        class,
        key: schema.key.as_ref().map(|k| k.value.clone()),
        fields,
        ..SchemaInfo::default()
    }
}

fn missing(schema: &Schema, key: &str, what: &str, diags: &mut Vec<Diagnostic>) {
    diags.push(
        Diagnostic::new(
            codes::spec::MISSING_KEY,
            schema.name.span,
            format!("schema `{}` has no `{key}`", schema.name.value),
        )
        .label(format!(
            "`{key}` is required for class `{}`",
            schema.class.as_ref().map_or("", |c| c.as_str())
        ))
        .help(format!("add `{key} = \"FIELD\"`: {what}")),
    );
}

/// Reports an unknown label; true when the label exists.
fn check_label(model: &Model, from: &str, label: &Sp<String>, diags: &mut Vec<Diagnostic>) -> bool {
    if model.labels.contains_key(&label.value) {
        return true;
    }
    diags.push(
        unknown(codes::spec::UNKNOWN_LABEL, from, label, "label", model.labels.keys().map(String::as_str))
            .help(match crate::diag::did_you_mean(&label.value, model.labels.keys().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`? custom labels are declared with `[label.NAME]`"),
                None => format!("declare it with `[label.{}]`, or use a core label (C1..C12, I1, I2, S1, S2, PSPD, RHD, third_party)", label.value),
            }),
    );
    false
}

fn bind_link(
    model: &Model,
    schema: &Schema,
    link: &crate::syntax::Link,
    infos: &mut BTreeMap<String, SchemaInfo>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(to) = &link.to else { return };
    let from = format!(
        "link `{}` of schema `{}`",
        link.name.value, schema.name.value
    );
    let Some(target_index) = model.schemas.get(&to.value) else {
        diags.push(unknown(
            codes::spec::UNKNOWN_SCHEMA,
            &from,
            to,
            "schema",
            model.schemas.names(),
        ));
        return;
    };
    let source_class = infos
        .get(&schema.name.value)
        .map(|i| i.class.clone())
        .unwrap_or_default();
    let target_class = infos
        .get(&to.value)
        .map(|i| i.class.clone())
        .unwrap_or_default();
    let allowed = link_targets(&source_class);
    if !source_class.is_empty()
        && !target_class.is_empty()
        && !allowed.contains(&target_class.as_str())
    {
        diags.push(
            Diagnostic::new(
                codes::spec::INVALID_LINK,
                to.span,
                format!(
                    "{from}: {} cannot link to {}",
                    with_article(&source_class),
                    with_article(&target_class)
                ),
            )
            .label(format!("`{}` is a {target_class} schema", to.value))
            .with_secondary(
                model.syntax.schemas[target_index].name.span,
                "target defined here",
            )
            .help(if allowed.is_empty() {
                format!("{source_class} schemas have no links")
            } else {
                format!("a {source_class} links to: {}", allowed.join(", "))
            }),
        );
        return;
    }
    match (&link.by, &link.via) {
        (Some(by), _) => {
            let has_field = schema.fields.iter().any(|f| f.name.value == by.value);
            if !has_field {
                let names: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
                diags.push(
                    unknown(codes::spec::UNKNOWN_FIELD, &from, by, "field", names.iter().copied())
                        .label(format!("`by` names the foreign key field on schema `{}`", schema.name.value)),
                );
            }
        }
        (None, Some(via)) => match infos.get(&via.value) {
            Some(relation) if relation.class == "relation" => {
                check_relation(model, &schema.name.value, &to.value, via, diags);
            }
            Some(other) => diags.push(
                Diagnostic::new(codes::spec::INVALID_LINK, via.span, format!("{from}: `via` must name a relation schema, but `{}` is a {}", via.value, other.class))
                    .label("not a relation schema")
                    .help("declare a schema with `class = \"relation\"` that links both sides, and name it here"),
            ),
            None => diags.push(unknown(codes::spec::UNKNOWN_SCHEMA, &from, via, "schema", model.schemas.names())),
        },
        (None, None) => diags.push(
            Diagnostic::new(codes::spec::MISSING_KEY, link.name.span, format!("link `{}` has neither `by` nor `via`", link.name.value))
                .label("how are records linked?")
                .help("add `by = \"FIELD\"` (a foreign key on this schema) or `via = \"RELATION\"` (a many-to-many relation schema)"),
        ),
    }
    if let Some(fallback) = &link.fallback {
        let email = infos.get(&schema.name.value).is_some_and(|i| {
            i.fields
                .values()
                .any(|f| f.identity.as_deref() == Some("email"))
        });
        let domain = infos.get(&to.value).is_some_and(|i| {
            i.fields
                .values()
                .any(|f| f.identity.as_deref() == Some("domain"))
        });
        if source_class != "person" || target_class != "account" || !email || !domain {
            diags.push(
                Diagnostic::new(codes::spec::INVALID_LINK, fallback.span, "the `email_domain` fallback needs a person with an email identity and an account with a domain identity")
                    .label("this fallback cannot link anything")
                    .help("mark the person's email field `identity = \"email\"` and the account's domain field `identity = \"domain\"`, or remove the fallback"),
            );
        }
    }
    // Register navigation: forward (to one) on this schema, reverse (to many)
    // on the target. A many-to-many link (`via`) has no "one" to follow
    // forward; rules read it from the target, through its `reverse`.
    if let Some(info) = infos.get_mut(&schema.name.value) {
        if link.via.is_none() {
            info.to_one
                .insert(link.name.value.clone(), to.value.clone());
        } else {
            let target = match &link.reverse {
                Some(reverse) => format!("{}.{}", to.value, reverse.value),
                None => format!("{} (give the link a `reverse` name)", to.value),
            };
            info.read_from_target
                .insert(link.name.value.clone(), target);
        }
    }
    if let Some(reverse) = &link.reverse {
        let target = infos.entry(to.value.clone()).or_default();
        let clash = target.fields.contains_key(&reverse.value)
            || target.to_one.contains_key(&reverse.value);
        if clash || target.to_many.contains_key(&reverse.value) {
            diags.push(
                Diagnostic::new(
                    codes::spec::INVALID_LINK,
                    reverse.span,
                    format!(
                        "{from}: schema `{}` already has a member named `{}`",
                        to.value, reverse.value
                    ),
                )
                .label("this collection name is taken")
                .help("choose another `reverse` name"),
            );
        } else {
            target
                .to_many
                .insert(reverse.value.clone(), schema.name.value.clone());
        }
    }
}

/// A many-to-many link's relation schema must link, by key, to both sides.
fn check_relation(
    model: &Model,
    from: &str,
    to: &str,
    via: &Sp<String>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(index) = model.schemas.get(&via.value) else {
        return;
    };
    let relation = &model.syntax.schemas[index];
    let links_to = |side: &str| {
        relation
            .links
            .iter()
            .any(|l| l.by.is_some() && l.to.as_ref().is_some_and(|t| t.value == side))
    };
    let missing: Vec<&str> = [from, to]
        .into_iter()
        .filter(|side| !links_to(side))
        .collect();
    if missing.is_empty() {
        return;
    }
    diags.push(
        Diagnostic::new(
            codes::spec::INVALID_LINK,
            via.span,
            format!(
                "schema `{from}` links to `{to}` through relation schema `{}`, which does not link to `{}`",
                via.value,
                missing.join("` and `")
            ),
        )
        .label("a many-to-many link goes through a relation that links both sides")
        .with_secondary(relation.name.span, "relation defined here")
        .help(format!(
            "add `[schema.{}.links.{}]` with `to = \"{}\"` and `by = \"FIELD\"` (its foreign key)",
            via.value, missing[0], missing[0]
        )),
    );
}

/// "an event", "a person".
fn with_article(class: &str) -> String {
    let article = if class.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {class}")
}
