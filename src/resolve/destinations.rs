//! Destinations against the catalog: the type exists, every setting is one the
//! type takes with a value of the right kind, required settings are present,
//! and secrets are references, never literals. The delivery keys of API types
//! are checked by `delivery_keys`, the credentials of object stores by
//! `storage_credentials`, the settings only SFTP has by `sftp`.

use crate::catalog::{self, SettingValue as Kind};
use crate::diag::{Diagnostic, codes};
use crate::syntax::{Destination, SettingValue, Sp, data_source};

/// Key fragments that mark a secret, for keys the catalog does not know (an
/// unknown type, or a typo of a secret key): a literal there is still a leak.
const SECRET_WORDS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passphrase",
    "api_key",
    "apikey",
    "private_key",
    "credentials",
    "access_key",
];

fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| key.contains(w))
}

pub fn check(destination: &Destination, diags: &mut Vec<Diagnostic>) {
    let ty = destination.ty.as_ref().and_then(|ty| {
        let found = catalog::lookup(&ty.value);
        if found.is_none() {
            diags.push(
                Diagnostic::new(
                    codes::spec::UNKNOWN_DESTINATION_TYPE,
                    ty.span,
                    format!(
                        "destination `{}`: `{}` is not a destination type",
                        destination.name.value, ty.value
                    ),
                )
                .label("not in the catalog")
                .suggest(
                    &ty.value,
                    catalog::names(),
                    "`accord destinations` lists the catalog types",
                ),
            );
        }
        found
    });
    for setting in &destination.settings {
        let key = &setting.key.value;
        let spec = ty.and_then(|t| t.setting(key));
        let secret = spec.map_or_else(|| looks_secret(key), |s| s.secret);
        if secret && !matches!(setting.value.value, SettingValue::Reference { .. }) {
            diags.push(literal_credential(
                &format!("destination `{}`", destination.name.value),
                setting,
                &format!("{}_{key}", destination.name.value),
            ));
            continue;
        }
        if ty.is_some_and(|t| t.name == "filesystem") && key == "path" {
            let what = format!("destination `{}`", destination.name.value);
            match &setting.value.value {
                SettingValue::Reference { .. } => {
                    diags.push(data_source::reference_not_allowed(
                        &what,
                        setting.value.span,
                    ));
                    continue;
                }
                SettingValue::String(path) => diags.extend(data_source::path_leaves_project(
                    &what,
                    &Sp::new(path.clone(), setting.value.span),
                )),
                _ => {}
            }
        }
        let (Some(ty), None) = (ty, spec) else {
            if let Some(spec) = spec {
                check_value(destination, setting, spec.value, diags);
            }
            continue;
        };
        let keys: Vec<&str> = ty
            .settings
            .iter()
            .chain(ty.delivery_settings())
            .map(|s| s.key)
            .chain(["actions", "description"])
            .collect();
        diags.push(
            Diagnostic::new(
                codes::spec::UNKNOWN_KEY,
                setting.key.span,
                format!(
                    "destination `{}`: `{}` destinations have no setting `{key}`",
                    destination.name.value, ty.name
                ),
            )
            .label("not a setting of this destination type; it is ignored")
            .suggest(
                key,
                keys.iter().copied(),
                format!("settings of `{}`: {}", ty.name, keys.join(", ")),
            ),
        );
    }
    let Some(ty) = ty else { return };
    credential_headers(destination, diags);
    super::delivery_keys::check(destination, ty, diags);
    super::storage_credentials::check(
        &format!("destination `{}`", destination.name.value),
        &destination.settings,
        ty.name,
        diags,
    );
    if ty.name == "sftp" {
        super::sftp::check(destination, diags);
    }
    if !ty.is_api() {
        super::file_settings::check(destination, ty, diags);
    }
    if !destination.fields.is_empty() && ty.setting("fields").is_none() {
        let span = destination.fields[0].span;
        diags.push(
            Diagnostic::new(codes::spec::UNKNOWN_KEY, span, format!("destination `{}`: `{}` destinations take no `fields` list", destination.name.value, ty.name))
                .label("ignored")
                .help("only destinations whose fields must pre-exist (Marketo, Salesforce, Dynamics 365) declare `fields`"),
        );
    }
    for spec in ty
        .settings
        .iter()
        .filter(|s| s.required && s.default.is_none())
    {
        let present = destination.settings.iter().any(|s| s.key.value == spec.key)
            || (spec.key == "fields" && !destination.fields.is_empty());
        if !present {
            diags.push(
                Diagnostic::new(
                    codes::spec::MISSING_KEY,
                    destination.name.span,
                    format!(
                        "destination `{}` has no `{}`",
                        destination.name.value, spec.key
                    ),
                )
                .label(format!("`{}` destinations need `{}`", ty.name, spec.key))
                .help(if spec.secret {
                    format!(
                        "add `{} = {{ env = \"VARIABLE\" }}`: {}",
                        spec.key, spec.description
                    )
                } else {
                    format!("add `{} = ...`: {}", spec.key, spec.description)
                }),
            );
        }
    }
}

/// `A0110` for a secret `setting` of `what` (such as "destination `x`")
/// written as a literal; `variable` is the environment variable the help
/// suggests (upper-cased here). Destinations and sources share it, and the
/// human output masks the value at its primary span.
pub(super) fn literal_credential(
    what: &str,
    setting: &crate::syntax::Setting,
    variable: &str,
) -> Diagnostic {
    let key = &setting.key.value;
    let mut d = Diagnostic::new(
        codes::spec::LITERAL_CREDENTIAL,
        setting.value.span,
        format!("`{key}` of {what} is written as a literal"),
    )
    .label("a secret must not be written into a spec");
    // A key without a place of its own (a synthesised setting) has no
    // secondary label.
    if setting.key.span != setting.value.span {
        d = d.with_secondary(setting.key.span, "this key holds a credential");
    }
    d.help(format!(
        "reference it instead, e.g. `{key} = {{ env = \"{}\" }}`, and remove the secret from git history",
        variable.to_ascii_uppercase()
    ))
}

/// Header names that carry a credential whatever their value.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// A0110 for a `headers` entry that carries a credential: header values are
/// literals in the spec (and so in git and the plan), which a credential
/// must never be.
fn credential_headers(destination: &Destination, diags: &mut Vec<Diagnostic>) {
    let Some(SettingValue::Table(entries)) = destination
        .settings
        .iter()
        .find(|s| s.key.value == "headers")
        .map(|s| &s.value.value)
    else {
        return;
    };
    for (name, value) in entries {
        let lower = name.value.to_ascii_lowercase();
        if !CREDENTIAL_HEADERS.contains(&lower.as_str()) && !looks_secret(&lower.replace('-', "_"))
        {
            continue;
        }
        diags.push(
            Diagnostic::new(
                codes::spec::LITERAL_CREDENTIAL,
                value.span,
                format!(
                    "header `{}` of destination `{}` carries a credential written as a literal",
                    name.value, destination.name.value
                ),
            )
            .label("a secret must not be written into a spec")
            .with_secondary(name.span, "this header authenticates")
            .help(
                "authenticate with `signing_secret = { env = \"...\" }` (an HMAC of every body), \
                 keep only non-secret headers here, and remove the secret from git history",
            ),
        );
    }
}

fn check_value(
    destination: &Destination,
    setting: &crate::syntax::Setting,
    kind: Kind,
    diags: &mut Vec<Diagnostic>,
) {
    let value = &setting.value.value;
    let ok = match (kind, value) {
        (_, SettingValue::Reference { .. }) => true,
        (Kind::Text, SettingValue::String(_)) => true,
        (Kind::Integer, SettingValue::Integer(_)) => true,
        (Kind::Bool, SettingValue::Boolean(_)) => true,
        (Kind::List, SettingValue::List(_)) => true,
        (Kind::Table, SettingValue::Table(_)) => true,
        (Kind::Choice(choices), SettingValue::String(s)) => {
            if !choices.contains(&s.as_str()) {
                let list = choices
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                diags.push(
                    Diagnostic::new(
                        codes::spec::INVALID_VALUE,
                        setting.value.span,
                        format!(
                            "`{s}` is not a valid `{}` for destination `{}`",
                            setting.key.value, destination.name.value
                        ),
                    )
                    .label(format!("expected one of {list}"))
                    .suggest(
                        s,
                        choices.iter().copied(),
                        format!("use one of {list}"),
                    ),
                );
            }
            true
        }
        _ => false,
    };
    if !ok {
        let expected = match kind {
            Kind::Text | Kind::Choice(_) => "a string",
            Kind::Integer => "an integer",
            Kind::Bool => "a boolean",
            Kind::List => "an array of strings",
            Kind::Table => "a table",
        };
        diags.push(
            Diagnostic::new(
                codes::spec::WRONG_TYPE,
                setting.value.span,
                format!(
                    "destination `{}`: expected {expected} for `{}`",
                    destination.name.value, setting.key.value
                ),
            )
            .label("wrong type")
            .help(format!("write {expected} here")),
        );
    }
}
