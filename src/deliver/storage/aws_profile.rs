//! A named profile of the AWS shared credentials file, for an S3 destination
//! that says `credentials = { profile = "NAME" }`.
//!
//! The file is the one the AWS CLI and SDKs read: `AWS_SHARED_CREDENTIALS_FILE`
//! when set, else `~/.aws/credentials`; an INI file of `[NAME]` sections with
//! `aws_access_key_id`, `aws_secret_access_key` and an optional
//! `aws_session_token`. Only static keys are read: a profile that assumes a
//! role or runs a credential process is refused by name, not half-used.
//! Errors name the profile and the file, never a value.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

/// The static keys of one profile.
pub struct ProfileKeys {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

/// Where the shared credentials file is, from the environment the SDKs read.
pub fn credentials_file() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(Path::new(&home).join(".aws").join("credentials"))
}

/// Reads profile `name` from the shared credentials file.
pub fn read(name: &str) -> Result<ProfileKeys, String> {
    let path = credentials_file().ok_or_else(|| {
        format!("profile `{name}`: neither AWS_SHARED_CREDENTIALS_FILE nor HOME is set")
    })?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "profile `{name}`: the credentials file `{}` cannot be read: {}",
            path.display(),
            e.kind()
        )
    })?;
    parse(&text, name).map_err(|why| format!("profile `{name}` in `{}`: {why}", path.display()))
}

fn parse(text: &str, name: &str) -> Result<ProfileKeys, String> {
    let mut in_profile = false;
    let mut found = false;
    let (mut key_id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == name;
            found |= in_profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().to_string();
        match key.trim() {
            "aws_access_key_id" => key_id = Some(value),
            "aws_secret_access_key" => secret = Some(SecretString::from(value)),
            "aws_session_token" => token = Some(SecretString::from(value)),
            other @ ("role_arn"
            | "credential_process"
            | "sso_session"
            | "sso_start_url"
            | "source_profile"
            | "web_identity_token_file") => {
                return Err(format!(
                    "`{other}` profiles are not read; give the profile static keys, or leave `credentials` out to use the environment's credential chain"
                ));
            }
            _ => {}
        }
    }
    if !found {
        return Err("no such profile".into());
    }
    match (key_id, secret) {
        (Some(access_key_id), Some(secret_access_key)) if !access_key_id.is_empty() => {
            Ok(ProfileKeys {
                access_key_id,
                secret_access_key,
                session_token: token,
            })
        }
        _ => Err("needs both `aws_access_key_id` and `aws_secret_access_key`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const FILE: &str = "\
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default-secret

# the partner's bucket
[partner]
aws_access_key_id=AKIAPARTNER
aws_secret_access_key = partner-secret
aws_session_token = partner-token

[assumed]
role_arn = arn:aws:iam::123456789012:role/x
source_profile = default

[half]
aws_access_key_id = AKIAHALF
";

    #[test]
    fn a_named_profile_is_read_whole() {
        let keys = parse(FILE, "partner").expect("partner");
        assert_eq!(keys.access_key_id, "AKIAPARTNER");
        assert_eq!(keys.secret_access_key.expose_secret(), "partner-secret");
        assert_eq!(
            keys.session_token.as_ref().map(|t| t.expose_secret()),
            Some("partner-token")
        );
        let default = parse(FILE, "default").expect("default");
        assert_eq!(default.access_key_id, "AKIADEFAULT");
        assert!(default.session_token.is_none());
    }

    #[test]
    fn missing_partial_and_role_profiles_are_refused_by_reason() {
        assert_eq!(
            parse(FILE, "nope").err().as_deref(),
            Some("no such profile")
        );
        assert!(parse(FILE, "half").err().unwrap().contains("both"));
        assert!(parse(FILE, "assumed").err().unwrap().contains("role_arn"));
    }
}
