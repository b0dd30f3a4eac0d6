//! The settings only an SFTP destination has: the pinned `host_key` is an
//! OpenSSH public key line written into the spec (reviewed in git, never
//! read from the environment), and the login is exactly one of `password`
//! and `private_key` (`passphrase` only with a `private_key`).
//!
//! Input: an `sftp` destination. Output: diagnostics. Pure.

use crate::diag::{Diagnostic, codes};
use crate::host_key;
use crate::syntax::{Destination, Setting, SettingValue};

pub fn check(destination: &Destination, diags: &mut Vec<Diagnostic>) {
    let setting = |key: &str| destination.settings.iter().find(|s| s.key.value == key);
    if let Some(host_key) = setting("host_key") {
        check_host_key(destination, host_key, diags);
    }
    check_login(
        destination,
        setting("password"),
        setting("private_key"),
        setting("passphrase"),
        diags,
    );
}

fn check_host_key(destination: &Destination, setting: &Setting, diags: &mut Vec<Diagnostic>) {
    let name = &destination.name.value;
    let text = match &setting.value.value {
        SettingValue::String(text) => text,
        SettingValue::Reference { .. } => {
            diags.push(
                Diagnostic::new(
                    codes::spec::REFERENCE_NOT_ALLOWED,
                    setting.value.span,
                    format!("`host_key` of destination `{name}` cannot be a reference"),
                )
                .label("the pinned key is public and belongs in the spec")
                .help(
                    "write the key line here (`ssh-keyscan -t ed25519 HOST` prints it after the \
                     host name): which server a run trusts is part of the reviewed spec",
                ),
            );
            return;
        }
        // Another TOML type: `check_value` reports it.
        _ => return,
    };
    let Err(problem) = host_key::parse(text) else {
        return;
    };
    diags.push(
        Diagnostic::new(
            codes::spec::INVALID_HOST_KEY,
            setting.value.span,
            format!("`host_key` of destination `{name}` is not an OpenSSH public key line"),
        )
        .label(problem.to_string())
        .help(
            "paste the server's key as `TYPE BASE64`, e.g. the line `ssh-keyscan -t ed25519 HOST` \
             prints, without the host name; check its fingerprint with the server's operator \
             (`ssh-keygen -lf KEY.pub`)",
        ),
    );
}

fn check_login(
    destination: &Destination,
    password: Option<&Setting>,
    private_key: Option<&Setting>,
    passphrase: Option<&Setting>,
    diags: &mut Vec<Diagnostic>,
) {
    let name = &destination.name.value;
    match (password, private_key) {
        (Some(password), Some(private_key)) => diags.push(
            Diagnostic::new(
                codes::spec::SFTP_LOGIN,
                private_key.key.span,
                format!("destination `{name}` has both `password` and `private_key`"),
            )
            .label("a second way to log in")
            .with_secondary(password.key.span, "the first")
            .help(
                "keep one: accord logs in with exactly one credential, so the one that is used \
                 is the one the spec shows",
            ),
        ),
        (None, None) => diags.push(
            Diagnostic::new(
                codes::spec::SFTP_LOGIN,
                destination.name.span,
                format!("destination `{name}` has neither `password` nor `private_key`"),
            )
            .label("`sftp` destinations log in with one of them")
            .help(
                "add `private_key = { env = \"VARIABLE\" }` (the key file's text; \
                 `{ file = \"PATH\" }` reads the file) or `password = { env = \"VARIABLE\" }`",
            ),
        ),
        _ => {}
    }
    if let (Some(passphrase), None) = (passphrase, private_key) {
        diags.push(
            Diagnostic::new(
                codes::spec::SFTP_LOGIN,
                passphrase.key.span,
                format!("destination `{name}` has a `passphrase` but no `private_key`"),
            )
            .label("it unlocks nothing")
            .help("`passphrase` unlocks an encrypted `private_key`; remove it or add the key"),
        );
    }
}
