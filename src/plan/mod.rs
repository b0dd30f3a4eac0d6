//! The plan stage: the activation plan IR, its builder, fingerprints, the
//! text view reviewers read, and the plan file (`--out`, `--check`).

pub mod build;
pub mod ir;
pub mod text;

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
