//! The plan stage: the activation plan IR, its builder, fingerprints, the
//! text view reviewers read, and the plan file (`--out`, `--check`).

pub mod build;
pub mod ir;
pub mod text;
pub mod typed;

pub use build::build;

pub use ir::*;

/// The plan file: pretty JSON with a trailing newline, the form committed
/// as a lock and compared by `accord plan --check`.
pub fn to_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_default() + "\n"
}

/// Reads a plan file, refusing a `format_version` this build does not know.
pub fn read(text: &str) -> Result<Plan, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a plan file: {e}"))?;
    match value.get("format_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "plan format_version {v} is not supported; this accord reads format_version {FORMAT_VERSION}"
            ));
        }
        None => return Err("not a plan file: no `format_version`".to_string()),
    }
    serde_json::from_value(value).map_err(|e| format!("not a plan file: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn read_refuses_unknown_format_versions() {
        assert!(
            super::read(r#"{"format_version": 99}"#)
                .unwrap_err()
                .contains("99")
        );
        assert!(super::read("[]").is_err());
    }
}

/// How a many-to-many link (`via`) joins: the relation table, its foreign
/// key to the linking schema (`child_fk`) and to the link's target
/// (`parent_fk`). The target reads the link as the collection `reverse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationPath {
    pub table: String,
    pub child_fk: String,
    pub parent_fk: String,
}

/// The relation path of link `link` of schema `schema`, when it is a
/// many-to-many link whose relation links, by key, to both sides (`check`
/// reports any other).
pub fn relation_path(plan: &Plan, schema: &str, link: &str) -> Option<RelationPath> {
    let def = plan.schemas.get(schema)?.links.get(link)?;
    let table = def.via.clone()?;
    let relation = plan.schemas.get(&table)?;
    let fk_to = |side: &str, not: Option<&str>| {
        relation
            .links
            .values()
            .filter(|l| l.to == side)
            .filter_map(|l| l.by.clone())
            .find(|by| Some(by.as_str()) != not)
    };
    let child_fk = fk_to(schema, None)?;
    let parent_fk = fk_to(&def.to, Some(&child_fk))?;
    Some(RelationPath {
        table,
        child_fk,
        parent_fk,
    })
}

/// The many-to-many link from `schema` to `target`, if any: its name and
/// relation path (how people reach accounts through a relation).
pub fn relation_to(plan: &Plan, schema: &str, target: &str) -> Option<(String, RelationPath)> {
    plan.schemas
        .get(schema)?
        .links
        .iter()
        .find_map(|(name, l)| {
            (l.to == target)
                .then(|| relation_path(plan, schema, name).map(|p| (name.clone(), p)))
                .flatten()
        })
}
