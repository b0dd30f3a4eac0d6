//! Google Customer Match through the Data Manager API (catalog type
//! `google_customer_match`).
//!
//! In: the destination's `customer_id` (the Google Ads account), the secret
//! `service_account` (the PATH of a service-account key file), the optional
//! `app_id` (lists of mobile ids of that app) and `endpoint` (a base URL
//! that replaces both the API's and the token endpoint's, for tests and
//! sandboxes). Out: requests to `audienceMembers:ingest` and
//! `audienceMembers:remove` (at most 10,000 members each), to the account's
//! `userLists`, and to the OAuth token endpoint; and their outcomes.
//!
//! The Google Ads API stopped taking new Customer Match adopters; the Data
//! Manager API is the supported path.

mod auth;
mod classify;
mod encode;
mod lists;

use std::time::SystemTime;

use crate::deliver::config::Config;
use crate::deliver::vendor::{Auth, ListRef, Member, Op, Outcome, Token, Vendor};
use crate::deliver::wire::{WireRequest, WireResponse};

pub use auth::ServiceAccount;
pub use encode::ListKind;

const API: &str = "https://datamanager.googleapis.com";

/// The Data Manager API's Customer Match client of one destination.
#[derive(Debug)]
pub struct Google {
    /// The Google Ads account id, digits only.
    customer_id: String,
    /// `https://datamanager.googleapis.com` or `endpoint`.
    base: String,
    token_uri: String,
    /// The key; `None` in a dry run, which reads no credentials.
    account: Option<ServiceAccount>,
    kind: ListKind,
}

impl Google {
    /// Reads the destination's settings and its service-account key file.
    pub fn new(config: &Config) -> Result<Google, String> {
        let customer_id = customer_id(config.require("customer_id")?)
            .map_err(|e| format!("destination `{}`: {e}", config.name))?;
        let account = if config.dry_run {
            None
        } else {
            let key_path = crate::deliver::vendor::secret(config.secret("service_account")?);
            Some(
                ServiceAccount::read(key_path)
                    .map_err(|e| format!("destination `{}`: {e}", config.name))?,
            )
        };
        // With `endpoint`, tokens come from the same server, so that a test
        // or a sandbox never reaches Google.
        let token_uri = match &config.endpoint {
            Some(_) => format!("{}/token", config.base_url(API)),
            None => account
                .as_ref()
                .map_or(auth::DEFAULT_TOKEN_URI, |a| a.token_uri.as_str())
                .to_string(),
        };
        Ok(Google {
            customer_id,
            base: config.base_url(API),
            token_uri,
            account,
            kind: ListKind::from_app_id(config.text("app_id")),
        })
    }

    /// Checks, before any delivery, that this destination's lists can carry
    /// every mapped column (a Customer Match list takes one kind of key).
    pub fn check_columns<'a>(
        &self,
        columns: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), String> {
        encode::check_columns(&self.kind, columns)
    }

    fn lists_url(&self) -> String {
        format!(
            "{}/v1/accountTypes/GOOGLE_ADS/accounts/{}/userLists",
            self.base, self.customer_id
        )
    }
}

/// `123-456-7890` as the API wants it: `1234567890`.
fn customer_id(text: &str) -> Result<String, String> {
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`customer_id` must be a Google Ads customer id like 123-456-7890, not `{text}`"
        ));
    }
    Ok(digits)
}

impl Vendor for Google {
    fn kind(&self) -> &'static str {
        "google_customer_match"
    }

    fn auth(&self) -> Auth {
        Auth::Fetched
    }

    fn token_request(&self, now: SystemTime) -> Option<WireRequest> {
        // The key signed once when it was read, so signing cannot fail here
        // short of a broken clock.
        self.account
            .as_ref()?
            .token_request(&self.token_uri, now)
            .ok()
    }

    fn parse_token(&self, response: &WireResponse) -> Result<Token, String> {
        auth::parse_token(response)
    }

    fn find_list_request(&self, name: &str) -> Option<WireRequest> {
        lists::find_request(&self.lists_url(), name)
    }

    fn parse_found_list(
        &self,
        name: &str,
        response: &WireResponse,
    ) -> Result<Option<String>, String> {
        lists::parse_found(name, response)
    }

    fn create_list_request(&self, name: &str) -> Option<WireRequest> {
        Some(lists::create_request(&self.lists_url(), name, &self.kind))
    }

    fn parse_created_list(&self, response: &WireResponse) -> Result<String, String> {
        lists::parse_created(response)
    }

    fn encode(
        &self,
        list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String> {
        let list =
            list.ok_or("Google Customer Match sends members to a user list; none was given")?;
        let method = match op {
            Op::Add => "ingest",
            Op::Remove => "remove",
            Op::Upsert => return Err("Google Customer Match has no upsert".into()),
        };
        let destination = encode::destination(&self.customer_id, &list.id);
        let body = encode::body(&self.kind, destination, op, members)?;
        let url = format!("{}/v1/audienceMembers:{method}", self.base);
        Ok(WireRequest::new("POST", url).json(&body))
    }

    fn classify(&self, _op: Op, _members: &[Member], response: &WireResponse) -> Outcome {
        classify::outcome(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::config::Limits;
    use crate::plan::SettingPlan;
    use secrecy::SecretString;
    use serde_json::json;
    use std::collections::BTreeMap;

    const KEY_FILE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/keys/google_service_account_TEST_ONLY.json"
    );

    fn config(endpoint: Option<&str>, customer: &str) -> Config {
        Config {
            name: "google_ads".into(),
            kind: "google_customer_match".into(),
            endpoint: endpoint.map(str::to_string),
            settings: BTreeMap::from([(
                "customer_id".to_string(),
                SettingPlan::Text(customer.into()),
            )]),
            secrets: BTreeMap::from([(
                "service_account".to_string(),
                SecretString::from(KEY_FILE.to_string()),
            )]),
            limits: Limits {
                batch_size: 10_000,
                max_bytes: None,
                window: None,
                concurrent: 10,
                daily: None,
            },
            lists: BTreeMap::new(),
            list_prefix: "accord_".into(),
            dry_run: false,
        }
    }

    fn list() -> ListRef {
        ListRef {
            audience: "vip".into(),
            name: "accord_vip".into(),
            id: "4242".into(),
        }
    }

    #[test]
    fn requests_go_to_the_published_urls() {
        let google = Google::new(&config(None, "123-456-7890")).unwrap();
        let member = Member {
            key: "p1".into(),
            fields: vec![("email_lc_sha256".into(), json!("c".repeat(64)))],
            remote_id: None,
        };
        let add = google
            .encode(Some(&list()), Op::Add, std::slice::from_ref(&member))
            .unwrap();
        assert_eq!(
            add.url,
            "https://datamanager.googleapis.com/v1/audienceMembers:ingest"
        );
        let body: serde_json::Value = serde_json::from_slice(&add.body).unwrap();
        assert_eq!(
            body["destinations"][0]["operatingAccount"]["accountId"],
            "1234567890"
        );
        let remove = google.encode(Some(&list()), Op::Remove, &[member]).unwrap();
        assert_eq!(
            remove.url,
            "https://datamanager.googleapis.com/v1/audienceMembers:remove"
        );
        let token = google.token_request(SystemTime::now()).unwrap();
        assert_eq!(token.url, "https://oauth2.googleapis.com/token");
        let create = google.create_list_request("accord_vip").unwrap();
        assert_eq!(
            create.url,
            "https://datamanager.googleapis.com/v1/accountTypes/GOOGLE_ADS/accounts/1234567890/userLists"
        );
    }

    #[test]
    fn an_endpoint_replaces_the_api_and_the_token_uri() {
        let google = Google::new(&config(Some("http://127.0.0.1:9/"), "1234567890")).unwrap();
        assert_eq!(
            google.token_request(SystemTime::now()).unwrap().url,
            "http://127.0.0.1:9/token"
        );
        let add = google.encode(Some(&list()), Op::Add, &[]).unwrap();
        assert_eq!(add.url, "http://127.0.0.1:9/v1/audienceMembers:ingest");
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let error = Google::new(&config(None, "12x-456")).unwrap_err();
        assert!(error.contains("customer_id"), "{error}");
        let mut missing = config(None, "1");
        missing.secrets.clear();
        let error = Google::new(&missing).unwrap_err();
        assert!(error.contains("service_account"), "{error}");
        let google = Google::new(&config(None, "1")).unwrap();
        assert!(
            google
                .check_columns(["email_lc_sha256", "phone_sha256_e.164"])
                .is_ok()
        );
        assert!(google.check_columns(["gaid"]).is_err());
        assert!(google.encode(None, Op::Add, &[]).is_err());
    }

    #[test]
    fn debug_shows_no_secret() {
        let google = Google::new(&config(None, "1")).unwrap();
        let shown = format!("{google:?}");
        assert!(
            !shown.contains("PRIVATE KEY") && !shown.contains("MII"),
            "{shown}"
        );
    }
}
