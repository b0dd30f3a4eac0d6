//! `[destination.NAME]`: a connection of a catalog type. The keys common to
//! every type are read here, the delivery keys of API types by
//! `delivery_keys`; the type-specific settings are kept as written and
//! checked against the catalog in `resolve`.

use toml::de::{DeTable, DeValue};

use super::delivery_keys::{self, DeliveryKeys};
use super::reader::{Cx, Sp, Table, as_string};

#[derive(Clone, Debug)]
pub struct Destination {
    pub name: Sp<String>,
    pub ty: Option<Sp<String>>,
    /// Marketing actions added to the type's implied ones.
    pub actions: Vec<Sp<String>>,
    /// Fields that exist in the destination (Marketo, CRM types).
    pub fields: Vec<Sp<String>>,
    pub description: Option<Sp<String>>,
    pub settings: Vec<Setting>,
    /// `endpoint`, `rate_limit`, `lists`, `list_prefix`; API types only
    /// (`resolve` reports them on file types).
    pub delivery: DeliveryKeys,
}

#[derive(Clone, Debug)]
pub struct Setting {
    pub key: Sp<String>,
    pub value: Sp<SettingValue>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingValue {
    String(String),
    Integer(i64),
    Boolean(bool),
    List(Vec<String>),
    /// A credential reference: `{ env = "NAME" }`, `{ profile = "..." }`,
    /// `{ file = "..." }`. Only the reference is kept, never a value.
    Reference {
        kind: String,
        name: String,
    },
    /// A table that is not a reference (`audience_fields`), with the span of
    /// each key and value; a value that is not a string is `""`.
    Table(Vec<(Sp<String>, Sp<String>)>),
    Other(&'static str),
}

pub const REFERENCE_KINDS: &[&str] = &["env", "profile", "file"];

pub fn destination(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> Destination {
    let mut t = Table::new(table, name.span, format!("destination `{}`", name.value));
    let ty = t.required_string(cx, "type");
    let actions = t.string_list(cx, "actions");
    let fields = t.string_list(cx, "fields");
    let description = t.string(cx, "description");
    let delivery = delivery_keys::read(cx, table, &t.what);
    t.allow(delivery_keys::KEYS);
    let settings = t
        .rest()
        .map(|(k, v)| Setting {
            key: Sp::new(k.get_ref().to_string(), cx.span(k)),
            value: Sp::new(setting_value(cx, v), cx.span(v)),
        })
        .collect();
    // Unknown keys are judged against the catalog type, not here.
    Destination {
        name,
        ty,
        actions,
        fields,
        description,
        settings,
        delivery,
    }
}

pub(super) fn setting_value(cx: &mut Cx<'_>, value: &toml::Spanned<DeValue<'_>>) -> SettingValue {
    match value.get_ref() {
        DeValue::String(s) => SettingValue::String(s.to_string()),
        DeValue::Integer(_) => super::reader::as_int(cx, value)
            .map(|i| SettingValue::Integer(i.value))
            .unwrap_or(SettingValue::Other("an integer")),
        DeValue::Boolean(b) => SettingValue::Boolean(*b),
        DeValue::Array(items) => SettingValue::List(
            items
                .iter()
                .filter_map(|i| as_string(cx, i).map(|s| s.value))
                .collect(),
        ),
        DeValue::Table(entries) => {
            let pairs: Vec<(String, String)> = entries
                .iter()
                .map(|(k, v)| {
                    (
                        k.get_ref().to_string(),
                        v.get_ref().as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            match pairs.as_slice() {
                [(kind, name)] if REFERENCE_KINDS.contains(&kind.as_str()) && !name.is_empty() => {
                    SettingValue::Reference {
                        kind: kind.clone(),
                        name: name.clone(),
                    }
                }
                _ => {
                    let mut pairs = Vec::new();
                    for (k, v) in entries.iter() {
                        // A value such as `{ env = ... }` inside a table
                        // would otherwise arrive as "": said, not lost.
                        if v.get_ref().as_str().is_none() {
                            cx.wrong_type(v, "a string");
                        }
                        pairs.push((
                            Sp::new(k.get_ref().to_string(), cx.span(k)),
                            Sp::new(v.get_ref().as_str().unwrap_or("").to_string(), cx.span(v)),
                        ));
                    }
                    SettingValue::Table(pairs)
                }
            }
        }
        other => SettingValue::Other(super::reader::type_name(other)),
    }
}
