//! `[schema.NAME]`: entity classes, typed fields, identities, labels and links.

use toml::de::{DeTable, DeValue};

use super::reader::{Cx, Sp, Table, as_string};

pub const CLASSES: &[&str] = &[
    "account",
    "person",
    "opportunity",
    "campaign",
    "event",
    "relation",
];

pub const FALLBACKS: &[&str] = &["email_domain"];

#[derive(Clone, Debug)]
pub struct Schema {
    pub name: Sp<String>,
    pub class: Option<Sp<String>>,
    pub key: Option<Sp<String>>,
    /// The event time field of an `event` schema.
    pub timestamp: Option<Sp<String>>,
    pub labels: Vec<Sp<String>>,
    pub description: Option<Sp<String>>,
    pub fields: Vec<Field>,
    pub links: Vec<Link>,
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: Sp<String>,
    /// The type as written (`string`, `list<int>`, ...); checked in `resolve`.
    pub ty: Option<Sp<String>>,
    /// A closed string domain.
    pub values: Option<Vec<Sp<String>>>,
    pub identity: Option<Sp<String>>,
    pub labels: Vec<Sp<String>>,
    pub description: Option<Sp<String>>,
}

#[derive(Clone, Debug)]
pub struct Link {
    pub name: Sp<String>,
    pub to: Option<Sp<String>>,
    /// The foreign key field on this schema.
    pub by: Option<Sp<String>>,
    /// The collection name on the target (`account.people`).
    pub reverse: Option<Sp<String>>,
    /// `email_domain`: link people whose email domain equals the account's domain.
    pub fallback: Option<Sp<String>>,
    /// A relation schema for a many-to-many link.
    pub via: Option<Sp<String>>,
}

pub fn schema(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> Schema {
    let mut t = Table::new(table, name.span, format!("schema `{}`", name.value));
    let class = t.choice(cx, "class", CLASSES);
    if table.get("class").is_none() {
        t.missing(
            cx,
            "class",
            "one of account, person, opportunity, campaign, event, relation",
        );
    }
    let key = t.string(cx, "key");
    let timestamp = t.string(cx, "timestamp");
    let labels = t.string_list(cx, "labels");
    let description = t.string(cx, "description");
    let fields = match t.table(cx, "fields") {
        Some((fields, _)) => fields
            .iter()
            .filter_map(|(k, v)| field(cx, Sp::new(k.get_ref().to_string(), cx.span(k)), v))
            .collect(),
        None => {
            t.missing(cx, "fields", "a table of field definitions");
            Vec::new()
        }
    };
    let links = match t.table(cx, "links") {
        Some((links, _)) => links
            .iter()
            .filter_map(|(k, v)| {
                let link_name = Sp::new(k.get_ref().to_string(), cx.span(k));
                match v.get_ref() {
                    DeValue::Table(lt) => Some(link(cx, link_name, lt)),
                    _ => {
                        cx.wrong_type(v, "a link table with `to` and `by`");
                        None
                    }
                }
            })
            .collect(),
        None => Vec::new(),
    };
    t.finish(cx);
    Schema {
        name,
        class,
        key,
        timestamp,
        labels,
        description,
        fields,
        links,
    }
}

fn field(cx: &mut Cx<'_>, name: Sp<String>, value: &toml::Spanned<DeValue<'_>>) -> Option<Field> {
    match value.get_ref() {
        // The shorthand `name = "string"`.
        DeValue::String(_) => Some(Field {
            ty: as_string(cx, value),
            name,
            values: None,
            identity: None,
            labels: Vec::new(),
            description: None,
        }),
        DeValue::Table(table) => {
            let what = format!("field `{}` of {}", name.value, cx.subject);
            let mut t = Table::new(table, name.span, what);
            let ty = t.required_string(cx, "type");
            let values = t.raw("values").map(|_| t.string_list(cx, "values"));
            let f = Field {
                ty,
                values,
                identity: t.string(cx, "identity"),
                labels: t.string_list(cx, "labels"),
                description: t.string(cx, "description"),
                name,
            };
            t.finish(cx);
            Some(f)
        }
        _ => {
            cx.wrong_type(value, "a type name or a field table");
            None
        }
    }
}

fn link(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> Link {
    let what = format!("link `{}` of {}", name.value, cx.subject);
    let mut t = Table::new(table, name.span, what);
    let link = Link {
        to: t.required_string(cx, "to"),
        by: t.string(cx, "by"),
        reverse: t.string(cx, "reverse"),
        fallback: t.choice(cx, "fallback", FALLBACKS),
        via: t.string(cx, "via"),
        name,
    };
    t.allow(&["description"]);
    t.finish(cx);
    link
}
