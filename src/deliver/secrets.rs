//! Secret references into secrets: the plan names where a credential is
//! (`env:NAME`, `file:PATH`), never the credential; a live delivery reads it
//! here, into a [`SecretString`] that never prints.
//!
//! Errors name the setting and the reference, never a value. `profile:`
//! references name a cloud credential profile, which only the storage
//! destinations read: an API destination refuses one.

use std::collections::BTreeMap;
use std::path::Path;

use secrecy::SecretString;

use crate::plan::SettingPlan;

/// What a dry run holds in place of every secret: requests built with it
/// show it only where a secret would be.
pub const PLACEHOLDER: &str = "<redacted>";

/// Every secret reference of a destination's settings, read.
pub fn resolve(
    settings: &BTreeMap<String, SettingPlan>,
    root: &Path,
) -> Result<BTreeMap<String, SecretString>, String> {
    let mut out = BTreeMap::new();
    for (key, value) in settings {
        let SettingPlan::Reference(reference) = value else {
            continue;
        };
        out.insert(key.clone(), read(key, reference, root)?);
    }
    Ok(out)
}

/// Every secret reference of a storage destination, read, but its
/// `profile:` references: a profile names a set of cloud credentials that
/// the store reads itself (`deliver::storage::aws_profile`).
pub fn resolve_storage(
    settings: &BTreeMap<String, SettingPlan>,
    root: &Path,
) -> Result<BTreeMap<String, SecretString>, String> {
    let without_profiles: BTreeMap<String, SettingPlan> = settings
        .iter()
        .filter(|(_, v)| !matches!(v, SettingPlan::Reference(r) if r.starts_with("profile:")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    resolve(&without_profiles, root)
}

/// A placeholder for every secret reference: what a dry run builds with.
pub fn placeholders(settings: &BTreeMap<String, SettingPlan>) -> BTreeMap<String, SecretString> {
    settings
        .iter()
        .filter(|(_, v)| matches!(v, SettingPlan::Reference(_)))
        .map(|(k, _)| (k.clone(), SecretString::from(PLACEHOLDER)))
        .collect()
}

/// One secret reference (`env:NAME`, `file:PATH`) read; errors name `key`
/// and the reference, never a value.
pub(crate) fn read(key: &str, reference: &str, root: &Path) -> Result<SecretString, String> {
    let (kind, name) = reference.split_once(':').unwrap_or(("", reference));
    match kind {
        "env" => match std::env::var(name) {
            Ok(value) if !value.is_empty() => Ok(SecretString::from(value)),
            _ => Err(format!("the secret `{key}` is not set (env {name})")),
        },
        "file" => {
            let path = root.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "the secret `{key}` cannot be read from `{name}`: {}",
                    e.kind()
                )
            })?;
            // Editors end files with a newline that is no part of a secret.
            let value = text.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                return Err(format!("the secret `{key}` in `{name}` is empty"));
            }
            Ok(SecretString::from(value.to_string()))
        }
        _ => Err(format!(
            "the secret `{key}` is a `{kind}` reference, which API destinations cannot read; use `{{ env = \"NAME\" }}` or `{{ file = \"PATH\" }}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn settings(reference: &str) -> BTreeMap<String, SettingPlan> {
        let mut s = BTreeMap::new();
        s.insert(
            "token".to_string(),
            SettingPlan::Reference(reference.into()),
        );
        s.insert("region".to_string(), SettingPlan::Text("us".into()));
        s
    }

    #[test]
    fn files_are_read_relative_to_the_project_without_their_newline() {
        let dir = tempfile::tempdir().expect("temp");
        std::fs::write(dir.path().join("token.txt"), "s3cr3t\n").expect("write");
        let secrets = resolve(&settings("file:token.txt"), dir.path()).expect("read");
        assert_eq!(secrets.len(), 1, "only references are secrets");
        assert_eq!(secrets["token"].expose_secret(), "s3cr3t");
    }

    #[test]
    fn errors_name_the_reference_never_a_value() {
        let dir = tempfile::tempdir().expect("temp");
        let missing = resolve(&settings("env:ACCORD_TEST_SURELY_UNSET"), dir.path()).unwrap_err();
        assert!(
            missing.contains("env ACCORD_TEST_SURELY_UNSET"),
            "{missing}"
        );
        let absent = resolve(&settings("file:nope.txt"), dir.path()).unwrap_err();
        assert!(absent.contains("`nope.txt`"), "{absent}");
        let profile = resolve(&settings("profile:partner"), dir.path()).unwrap_err();
        assert!(profile.contains("profile"), "{profile}");
    }

    #[test]
    fn storage_destinations_leave_profiles_to_the_store() {
        let dir = tempfile::tempdir().expect("temp");
        std::fs::write(dir.path().join("key.txt"), "k\n").expect("write");
        let mut s = settings("profile:partner");
        s.insert(
            "access_key".into(),
            SettingPlan::Reference("file:key.txt".into()),
        );
        let secrets = resolve_storage(&s, dir.path()).expect("read");
        assert_eq!(secrets.keys().collect::<Vec<_>>(), ["access_key"]);
    }

    #[test]
    fn a_dry_run_holds_placeholders() {
        let p = placeholders(&settings("env:X"));
        assert_eq!(p["token"].expose_secret(), PLACEHOLDER);
        assert!(!p.contains_key("region"));
    }
}
