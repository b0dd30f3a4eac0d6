//! A destination as a vendor file reads it: its settings from the plan, its
//! secrets resolved from their references, its base URL and its limits.
//!
//! Secrets are resolved when the run starts, from the references the plan
//! holds (`env:NAME`, `file:PATH`), and live only in [`SecretString`]s.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;

use crate::plan::{DestinationPlan, SettingPlan};

/// The limits requests to one destination keep to (the default: none,
/// for destinations that send no requests, such as file stores).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Members per request.
    pub batch_size: usize,
    /// Request body bytes; a batch over it is split.
    pub max_bytes: Option<usize>,
    /// At most `.0` requests in any sliding window of `.1`.
    pub window: Option<(u32, Duration)>,
    /// Requests in flight at once.
    pub concurrent: usize,
    /// Requests per vendor day.
    pub daily: Option<u64>,
}

/// One destination, ready for its vendor file.
#[derive(Clone, Debug)]
pub struct Config {
    /// The destination's name in the spec.
    pub name: String,
    /// The catalog type.
    pub kind: String,
    /// `endpoint` when set, else `None` (the vendor file uses its own).
    pub endpoint: Option<String>,
    pub settings: BTreeMap<String, SettingPlan>,
    /// Secrets by setting key, resolved from their references.
    pub secrets: BTreeMap<String, SecretString>,
    pub limits: Limits,
    /// Pinned list ids by audience.
    pub lists: BTreeMap<String, String>,
    pub list_prefix: String,
    /// A dry run: nothing is sent, so no credential is read; vendor files
    /// build their requests without them.
    pub dry_run: bool,
}

impl Config {
    /// A text setting (`munchkin_id`).
    pub fn text(&self, key: &str) -> Option<&str> {
        match self.settings.get(key)? {
            SettingPlan::Text(t) => Some(t),
            _ => None,
        }
    }

    /// A required text setting; `check` makes sure it is there.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        self.text(key)
            .ok_or_else(|| format!("destination `{}` has no `{key}`", self.name))
    }

    /// A secret, resolved.
    pub fn secret(&self, key: &str) -> Result<&SecretString, String> {
        self.secrets
            .get(key)
            .ok_or_else(|| format!("destination `{}`: the secret `{key}` is not set", self.name))
    }

    /// The base URL: `endpoint` when set, else the vendor's, without a
    /// trailing slash.
    pub fn base_url(&self, vendor_default: &str) -> String {
        self.endpoint
            .as_deref()
            .unwrap_or(vendor_default)
            .trim_end_matches('/')
            .to_string()
    }

    /// The name of the list accord creates for an audience.
    pub fn list_name(&self, audience: &str) -> String {
        format!("{}{audience}", self.list_prefix)
    }

    /// The settings of a destination in the plan; secrets are resolved
    /// separately (see `send`).
    pub fn from_plan(name: &str, plan: &DestinationPlan, limits: Limits) -> Config {
        Config {
            name: name.to_string(),
            kind: plan.ty.clone(),
            endpoint: plan.endpoint.clone(),
            settings: plan.settings.clone(),
            secrets: BTreeMap::new(),
            limits,
            lists: plan.lists.clone(),
            list_prefix: plan.list_prefix.clone().unwrap_or_default(),
            dry_run: false,
        }
    }
}
