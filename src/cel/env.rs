//! What a CEL expression can see: the schemas (as entities with fields and
//! links), the audience names, and the variables in scope.
//!
//! Input: built by the resolve stage from the spec's schemas and audiences.
//! Output: plain data the checker reads; it never changes during a check.

use std::collections::{BTreeMap, BTreeSet};

use super::types::Type;

/// One field of a schema.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDef {
    pub ty: Type,
    /// The closed domain of a string field (`values = [...]`), if any.
    pub values: Option<Vec<String>>,
    /// Whether the field is a computed attribute rather than source data.
    pub computed: bool,
}

impl FieldDef {
    /// A plain source field of type `ty`.
    pub fn new(ty: Type) -> FieldDef {
        FieldDef {
            ty,
            values: None,
            computed: false,
        }
    }
}

/// A schema as CEL sees it: its fields and its links to other schemas.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntityDef {
    pub fields: BTreeMap<String, FieldDef>,
    /// Reverse collections, name -> schema of the elements:
    /// `people` -> `person` makes `account.people` a `list<person>`.
    pub to_many: BTreeMap<String, String>,
    /// Forward links, name -> schema: `account` -> `account` makes
    /// `person.account` an `account`.
    pub to_one: BTreeMap<String, String>,
    /// Many-to-many links declared here, name -> where rules read them
    /// (`account.relatedContacts`): not members, named in the error help.
    pub read_from_target: BTreeMap<String, String>,
}

impl EntityDef {
    /// Every name that can follow a `.` on this entity, for suggestions.
    pub fn member_names(&self) -> impl Iterator<Item = &str> {
        self.fields
            .keys()
            .chain(self.to_many.keys())
            .chain(self.to_one.keys())
            .map(String::as_str)
    }
}

/// Everything an expression can reference beyond its own variables.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CelEnv {
    /// Schemas by name.
    pub entities: BTreeMap<String, EntityDef>,
    /// Audience names `in_audience` may reference, split parts (`X.part`) included.
    pub audiences: BTreeSet<String>,
}

/// The variables an expression starts with, e.g. `account`, `person`, `now`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope {
    pub vars: Vec<(String, Type)>,
}

impl Scope {
    /// The scope of an account-level expression: `account` and `now`.
    pub fn account() -> Scope {
        Scope {
            vars: vec![
                ("account".into(), Type::Entity("account".into())),
                ("now".into(), Type::Timestamp),
            ],
        }
    }

    /// The scope of a person-level expression: `account`, `person` and `now`.
    pub fn person() -> Scope {
        let mut scope = Scope::account();
        scope
            .vars
            .push(("person".into(), Type::Entity("person".into())));
        scope
    }
}

/// A small account/person environment for unit tests of the checker's
/// consumers (interpreter, lowering): `account` with `status`, `employees`,
/// `domain`, `tags` and the collection `people`; `person` with `title` and
/// the link `account`.
#[cfg(test)]
pub(crate) fn test_env() -> CelEnv {
    let mut env = CelEnv::default();
    let mut account = EntityDef::default();
    for (f, t) in [
        ("status", Type::String),
        ("employees", Type::Int),
        ("domain", Type::String),
        ("tags", Type::list(Type::String)),
    ] {
        account.fields.insert(f.into(), FieldDef::new(t));
    }
    account.to_many.insert("people".into(), "person".into());
    let mut person = EntityDef::default();
    person
        .fields
        .insert("title".into(), FieldDef::new(Type::String));
    person.to_one.insert("account".into(), "account".into());
    env.entities.insert("account".into(), account);
    env.entities.insert("person".into(), person);
    env
}
