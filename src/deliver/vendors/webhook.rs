//! The generic webhook (catalog type `http`): JSON batches sent to an
//! endpoint the team runs.
//!
//! In: the destination's `url` (text, or a secret reference resolved into
//! the `url` secret; `endpoint` overrides both), `method` (`POST` or `PUT`),
//! `headers` (a table of `Name = "value"`), and `signing_secret`. Out: one
//! request per batch, body
//! `{"activation", "audience", "operation": "add"|"remove", "members": [{"key", "fields": {column: value}}]}`,
//! signed when a signing secret is set: `X-Accord-Signature:
//! sha256=<hex HMAC-SHA256 of the exact body>`, so the receiver can check
//! the body came from accord unchanged.
//!
//! The receiver answers per batch: 2xx applied; 429 throttled (with
//! `Retry-After`); 408 and 5xx passing; 401 and 403 fatal (the credentials
//! are wrong); any other 4xx refuses the batch, which the core splits.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::deliver::config::Config;
use crate::deliver::vendor::{Auth, ListRef, Member, Op, Outcome, Vendor, secret};
use crate::deliver::wire::{WireRequest, WireResponse};
use crate::plan::SettingPlan;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Accord-Signature";

pub struct Webhook {
    url: UrlSource,
    method: &'static str,
    headers: Vec<(String, String)>,
    signing_secret: Option<SecretString>,
}

enum UrlSource {
    Text(String),
    Secret(SecretString),
}

impl Webhook {
    pub fn new(config: &Config) -> Result<Webhook, String> {
        let url = match (&config.endpoint, config.settings.get("url")) {
            (Some(endpoint), _) => UrlSource::Text(endpoint.clone()),
            (None, Some(SettingPlan::Text(url))) => UrlSource::Text(url.clone()),
            (None, Some(SettingPlan::Reference(_))) => {
                UrlSource::Secret(config.secret("url")?.clone())
            }
            (None, _) => return Err(format!("destination `{}` has no `url`", config.name)),
        };
        let method = match config.text("method").unwrap_or("POST") {
            "POST" => "POST",
            "PUT" => "PUT",
            other => {
                return Err(format!(
                    "destination `{}`: method `{other}` is not POST or PUT",
                    config.name
                ));
            }
        };
        let signing_secret = match config.settings.get("signing_secret") {
            Some(_) => Some(config.secret("signing_secret")?.clone()),
            None => None,
        };
        Ok(Webhook {
            url,
            method,
            headers: headers(config)?,
            signing_secret,
        })
    }

    fn url(&self) -> &str {
        match &self.url {
            UrlSource::Text(url) => url,
            UrlSource::Secret(url) => secret(url),
        }
    }
}

/// `headers = { Name = "value", ... }`, as the catalog declares them
/// (`check` keeps credentials out of them).
fn headers(config: &Config) -> Result<Vec<(String, String)>, String> {
    match config.settings.get("headers") {
        None => Ok(Vec::new()),
        Some(SettingPlan::Table(entries)) => Ok(entries
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()),
        Some(_) => Err(format!(
            "destination `{}`: `headers` is not a table of `Name = \"value\"`",
            config.name
        )),
    }
}

/// The hex HMAC-SHA256 of `body` under `key`.
pub fn signature(key: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn member_json(member: &Member) -> Value {
    let fields: Map<String, Value> = member.fields.iter().cloned().collect();
    json!({ "key": member.key, "fields": fields })
}

impl Vendor for Webhook {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn auth(&self) -> Auth {
        Auth::None
    }

    fn has_lists(&self) -> bool {
        false
    }

    /// The body names the activation, which only `encode_for` is given.
    fn encode(
        &self,
        list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String> {
        let _ = (list, op, members);
        Err("the webhook's body names the activation: requests are built by `encode_for`".into())
    }

    fn encode_for(
        &self,
        activation: &str,
        audience: &str,
        _list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String> {
        let operation = match op {
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Upsert => return Err("the webhook has no upsert".into()),
        };
        let body = json!({
            "activation": activation,
            "audience": audience,
            "operation": operation,
            "members": members.iter().map(member_json).collect::<Vec<_>>(),
        });
        let mut request = WireRequest::new(self.method, self.url()).json(&body);
        for (name, value) in &self.headers {
            request = request.header(name, value.clone());
        }
        if let Some(key) = &self.signing_secret {
            let signed = format!("sha256={}", signature(secret(key), &request.body));
            request.set_secret_header(SIGNATURE_HEADER, signed);
        }
        Ok(request)
    }

    fn classify(&self, op: Op, members: &[Member], response: &WireResponse) -> Outcome {
        let _ = (op, members);
        classify_status(response)
    }
}

/// How an answer to a webhook request classifies: also what an alert
/// channel's answers mean (`run::alerts::notify`).
pub(crate) fn classify_status(response: &WireResponse) -> Outcome {
    let status = response.status;
    let message = || {
        String::from_utf8_lossy(&response.body)
            .chars()
            .take(300)
            .collect::<String>()
    };
    match status {
        200..=299 => Outcome::Accepted,
        429 => Outcome::Throttled {
            retry_after: response.retry_after(),
            code: "429".into(),
        },
        408 | 500..=599 => Outcome::Transient {
            code: status.to_string(),
            message: message(),
        },
        401 | 403 => Outcome::Fatal {
            code: status.to_string(),
            message: message(),
        },
        _ => Outcome::Refused {
            status,
            code: status.to_string(),
            message: message(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::deliver::config::Limits;

    fn config(signing: bool) -> Config {
        let mut settings = BTreeMap::new();
        settings.insert(
            "url".to_string(),
            SettingPlan::Text("https://hooks.example.com/in".into()),
        );
        settings.insert(
            "headers".to_string(),
            SettingPlan::Table(BTreeMap::from([(
                "X-Team".to_string(),
                "growth".to_string(),
            )])),
        );
        let mut secrets = BTreeMap::new();
        if signing {
            settings.insert(
                "signing_secret".to_string(),
                SettingPlan::Reference("env:SIGN".into()),
            );
            secrets.insert(
                "signing_secret".to_string(),
                SecretString::from("key".to_string()),
            );
        }
        Config {
            name: "hook".into(),
            kind: "http".into(),
            endpoint: None,
            settings,
            secrets,
            limits: Limits {
                batch_size: 10,
                max_bytes: None,
                window: None,
                concurrent: 1,
                daily: None,
            },
            lists: BTreeMap::new(),
            list_prefix: String::new(),
            dry_run: false,
        }
    }

    fn member() -> Member {
        Member {
            key: "a1".into(),
            fields: vec![("email".into(), json!("a@example.com"))],
            remote_id: None,
        }
    }

    #[test]
    fn a_batch_is_the_documented_json_signed_over_its_exact_body() {
        let hook = Webhook::new(&config(true)).unwrap();
        let request = hook
            .encode_for("act", "aud", None, Op::Remove, &[member()])
            .unwrap();
        assert_eq!(
            (request.method, request.url.as_str()),
            ("POST", "https://hooks.example.com/in")
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            json!({"activation": "act", "audience": "aud", "operation": "remove",
                   "members": [{"key": "a1", "fields": {"email": "a@example.com"}}]})
        );
        let (name, value) = &request.secret_headers[0];
        assert_eq!(name, SIGNATURE_HEADER);
        assert_eq!(
            secret(value),
            format!("sha256={}", signature("key", &request.body))
        );
        assert!(
            request
                .headers
                .contains(&("X-Team".into(), "growth".into()))
        );
        assert_eq!(
            request.redacted()["headers"][SIGNATURE_HEADER],
            "<redacted>"
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn statuses_classify_as_documented() {
        let hook = Webhook::new(&config(false)).unwrap();
        let answer = |status: u16, headers: Vec<(String, String)>| {
            let response = WireResponse {
                status,
                headers,
                body: b"no".to_vec(),
            };
            hook.classify(Op::Add, &[member()], &response)
        };
        assert_eq!(answer(204, vec![]), Outcome::Accepted);
        assert_eq!(
            answer(429, vec![("retry-after".into(), "2".into())]),
            Outcome::Throttled {
                retry_after: Some(std::time::Duration::from_secs(2)),
                code: "429".into()
            }
        );
        assert!(matches!(answer(503, vec![]), Outcome::Transient { .. }));
        assert!(matches!(answer(408, vec![]), Outcome::Transient { .. }));
        assert!(matches!(answer(401, vec![]), Outcome::Fatal { .. }));
        assert!(matches!(answer(403, vec![]), Outcome::Fatal { .. }));
        assert!(matches!(
            answer(422, vec![]),
            Outcome::Refused { status: 422, .. }
        ));
    }

    #[test]
    fn a_missing_url_or_a_bad_header_is_a_clear_error() {
        let mut no_url = config(false);
        no_url.settings.remove("url");
        assert_eq!(
            Webhook::new(&no_url).err().unwrap(),
            "destination `hook` has no `url`"
        );
        let mut bad = config(false);
        bad.settings.insert(
            "headers".into(),
            SettingPlan::List(vec!["X-Team: growth".into()]),
        );
        assert!(
            Webhook::new(&bad)
                .err()
                .unwrap()
                .contains("not a table of `Name = \"value\"`")
        );
    }
}
