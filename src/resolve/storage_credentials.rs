//! The credentials of an object store (`s3`, `azure_blob`, `gcs`), of a
//! storage destination or of a source on `s3://`, `az://` or `gs://`, hang
//! together: a secret key comes with its key id, one kind of
//! credential at a time, and each reference is of a kind its setting can
//! read. What a run would otherwise find out at the first request (or
//! never: a half-given key silently falling back to the ambient identity)
//! is reported here, at the settings.
//!
//! Input: what holds the settings (for messages, such as "destination
//! `x`" or "source `y`"), its settings and the store's catalog type name.
//! Output: diagnostics. Pure.

use crate::diag::{Diagnostic, codes};
use crate::syntax::{Setting, SettingValue};

pub fn check(what: &str, settings: &[Setting], store: &str, diags: &mut Vec<Diagnostic>) {
    let find = |key: &str| settings.iter().find(|s| s.key.value == key);
    let name = what;
    match store {
        "s3" => {
            let key_id = find("access_key_id");
            let secret = find("secret_access_key");
            let token = find("session_token");
            let profile = find("credentials");
            for (given, missing) in [(secret, key_id), (key_id, secret)] {
                if let (Some(given), None) = (given, missing) {
                    let missing = if given.key.value == "access_key_id" {
                        "secret_access_key"
                    } else {
                        "access_key_id"
                    };
                    diags.push(incomplete(name, given, missing));
                }
            }
            if let Some(token) = token
                && (key_id.is_none() || secret.is_none())
            {
                diags.push(
                    Diagnostic::new(
                        codes::spec::INCOMPLETE_CREDENTIALS,
                        token.key.span,
                        format!("{name}: `session_token` without both access keys"),
                    )
                    .label("a session token belongs to a temporary key pair")
                    .help("give `access_key_id` and `secret_access_key` of the same temporary keys, or remove `session_token`"),
                );
            }
            if let Some(profile) = profile {
                if let Some(keys) = key_id.or(secret) {
                    diags.push(
                        Diagnostic::new(
                            codes::spec::CONFLICTING_CREDENTIALS,
                            profile.key.span,
                            format!("{name}: both a profile and access keys"),
                        )
                        .label("a profile names its own keys")
                        .with_secondary(keys.key.span, "and so does this")
                        .help("keep one: `credentials = { profile = \"NAME\" }` or `access_key_id` with `secret_access_key`"),
                    );
                }
                if !is_reference(profile, "profile") {
                    diags.push(wrong_kind(
                        name,
                        profile,
                        "an S3 `credentials` names a profile of the AWS shared credentials file",
                        "write `credentials = { profile = \"NAME\" }`; give keys as `access_key_id` and `secret_access_key`",
                    ));
                }
            }
            for setting in [key_id, secret, token].into_iter().flatten() {
                refuse_profile(name, setting, diags);
            }
        }
        "azure_blob" => {
            if let (Some(key), Some(sas)) = (find("access_key"), find("sas_token")) {
                diags.push(
                    Diagnostic::new(
                        codes::spec::CONFLICTING_CREDENTIALS,
                        sas.key.span,
                        format!("{name}: both `access_key` and `sas_token`"),
                    )
                    .label("a SAS token")
                    .with_secondary(key.key.span, "and the account key")
                    .help("keep one: the account key signs every request, a SAS token grants what it was issued for"),
                );
            }
            for key in ["access_key", "sas_token"] {
                if let Some(setting) = find(key) {
                    refuse_profile(name, setting, diags);
                }
            }
        }
        "gcs" => {
            if let Some(setting) = find("credentials") {
                refuse_profile(name, setting, diags);
            }
        }
        _ => {}
    }
}

fn is_reference(setting: &Setting, wanted: &str) -> bool {
    matches!(&setting.value.value, SettingValue::Reference { kind, .. } if kind == wanted)
}

fn incomplete(name: &str, given: &Setting, missing: &str) -> Diagnostic {
    Diagnostic::new(
        codes::spec::INCOMPLETE_CREDENTIALS,
        given.key.span,
        format!(
            "{name}: `{}` without `{missing}`",
            given.key.value
        ),
    )
    .label(format!("`{missing}` is missing"))
    .help(format!(
        "an access key is a pair: add `{missing} = {{ env = \"AWS_{}\" }}`, or remove `{}` to use the default AWS credential chain",
        missing.to_ascii_uppercase(),
        given.key.value
    ))
}

fn wrong_kind(name: &str, setting: &Setting, label: &str, help: &str) -> Diagnostic {
    Diagnostic::new(
        codes::spec::WRONG_REFERENCE_KIND,
        setting.value.span,
        format!(
            "{name}: `{}` cannot be read from this reference",
            setting.key.value
        ),
    )
    .label(label)
    .help(help)
}

/// A profile is a set of AWS credentials, not one secret value.
fn refuse_profile(name: &str, setting: &Setting, diags: &mut Vec<Diagnostic>) {
    if is_reference(setting, "profile") {
        diags.push(wrong_kind(
            name,
            setting,
            "a profile names a set of AWS keys, not this one secret",
            &format!(
                "write `{} = {{ env = \"VARIABLE\" }}` or `{{ file = \"PATH\" }}`",
                setting.key.value
            ),
        ));
    }
}
