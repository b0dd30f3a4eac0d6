//! The JSON Schema (draft 2020-12) of the spec language, for editors.
//!
//! Input: nothing but the tables compiled into the binary: the closed value
//! sets the syntax layer reads (`syntax::*::CLASSES`, `MERGES`, `EXPORTS`,
//! ...), the built-in vocabulary, and the destination catalog with every
//! type's settings. Output: one schema document that covers `accord.toml`
//! and every spec file, written by `accord schema` and committed as
//! `schema/accord.schema.json`, which Taplo and Even Better TOML read for
//! completion, hover and validation.
//!
//! Invariants (held by the tests in `tests.rs` and `tests/json_schema.rs`):
//! - every table the reader reads has exactly the keys here that the reader
//!   knows (a key added to a reader and not here, or here and not read,
//!   fails a test that probes the reader);
//! - every spec file of a project that checks clean validates, and each
//!   file of `tests/schema_invalid/` fails at the instance path it names;
//! - the text is deterministic: the same binary prints the same bytes.
//!
//! The schema is stricter than `check` in one way, on purpose: a key the
//! reader does not know is a warning (`A0003`) for `check`, and an error
//! here (`additionalProperties: false`), because an editor should underline
//! a typo while it is typed. It is looser where JSON cannot say what TOML
//! does: a TOML date (`expires = 2026-12-31`) reaches a JSON Schema as a
//! string, and whether a name refers to something defined is `check`'s.

mod kinds;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

/// The draft the schema is written in.
pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Where the repository keeps the generated schema, and where `accord init`
/// writes it in a new project.
pub const FILE_NAME: &str = "accord.schema.json";

/// The schema as a JSON value.
pub fn schema() -> Value {
    kinds::document()
}

/// The schema as `accord schema` prints it: pretty JSON and a final newline.
pub fn text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// One key of a table: its name, whether it must be present, and the
/// schema of its value (which carries the key's description).
pub(crate) struct Key {
    pub name: &'static str,
    pub required: bool,
    pub value: Value,
}

/// An optional key.
pub(crate) fn key(name: &'static str, value: Value) -> Key {
    Key {
        name,
        required: false,
        value,
    }
}

/// A key that must be present.
pub(crate) fn required(name: &'static str, value: Value) -> Key {
    Key {
        name,
        required: true,
        value,
    }
}

/// A closed table: exactly `keys`, the required ones present.
pub(crate) fn table(description: &str, keys: Vec<Key>) -> Value {
    let mut object = open_table(description, &keys);
    object.insert("additionalProperties".into(), Value::Bool(false));
    Value::Object(object)
}

/// A table with `keys` whose other keys are judged elsewhere (a
/// destination's settings, judged per catalog type).
pub(crate) fn open_table(description: &str, keys: &[Key]) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("type".into(), json!("object"));
    object.insert("description".into(), json!(description));
    let properties: Map<String, Value> = keys
        .iter()
        .map(|k| (k.name.to_string(), k.value.clone()))
        .collect();
    object.insert("properties".into(), Value::Object(properties));
    let required: Vec<&str> = keys.iter().filter(|k| k.required).map(|k| k.name).collect();
    if !required.is_empty() {
        object.insert("required".into(), json!(required));
    }
    object
}

/// Adds `description` to a schema object.
pub(crate) fn described(mut schema: Value, description: &str) -> Value {
    if let Value::Object(object) = &mut schema {
        object.insert("description".into(), json!(description));
    }
    schema
}

pub(crate) fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

pub(crate) fn integer(description: &str) -> Value {
    json!({ "type": "integer", "description": description })
}

pub(crate) fn boolean(description: &str) -> Value {
    json!({ "type": "boolean", "description": description })
}

/// A string from a closed set: the reader's own list.
pub(crate) fn one_of(choices: &[&str], description: &str) -> Value {
    json!({ "type": "string", "enum": choices, "description": description })
}

pub(crate) fn string_list(description: &str) -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "description": description })
}

/// A reference to a definition in `$defs`.
pub(crate) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{name}") })
}

/// A reference to a definition, with a description of this use of it.
pub(crate) fn reference_described(name: &str, description: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{name}"), "description": description })
}
