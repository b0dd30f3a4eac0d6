//! The built-in destination catalog, as data.
//!
//! Input: nothing; the catalog is a static table compiled into the binary.
//! Output: one [`DestinationType`] per destination type a spec may name in
//! `[destination.NAME] type = "..."`, plus text renderings for
//! `accord destinations` and `accord destinations TYPE`.
//!
//! Invariants (held by the tests in this module):
//! - type names are unique and the table is sorted by name, so lookups, listings
//!   and everything derived from the catalog are deterministic;
//! - every fixed action is also implied, and both are core marketing actions;
//! - every type allows at least one schedule and one export mode; types that
//!   deliver by streaming allow the `streaming` schedule, batch-only types do not;
//! - file types (those with [`Membership::FileRows`]) list their formats;
//! - every required column is a column the type accepts.
//!
//! The catalog says what a destination *can* take; checking a spec against it
//! is the resolver's job, and normalising and hashing identities is `run`'s.
//! Facts come from the platform's published reference; where it is silent, from the vendors' public
//! documentation, marked as such in `table.rs`.

pub mod dataverse;
pub mod file_name;
pub mod marketo_activities;
mod rate;
mod render;
pub mod salesforce;
mod table;

#[cfg(test)]
mod tests;

pub use rate::{RateLimit, Window};
pub use render::{render_list, render_one};

use serde::Serialize;

use crate::closed_set::closed_set;

closed_set! {
    /// How records reach the destination.
    pub enum Delivery {
        /// Records are pushed to an API as membership changes.
        Streaming = "streaming",
        /// Files are written on a schedule.
        Batch = "batch",
        /// The type can do either; the activation's schedule picks one.
        Either = "either",
    }
}

closed_set! {
    /// What one exported row stands for.
    pub enum Rows {
        /// One row per account: account audiences export as they are.
        Account = "account",
        /// One row per person: an account audience must expand to its `people`.
        Person = "person",
        /// The activation chooses (file and webhook destinations).
        Either = "either",
    }
}

/// How an identity value is normalised before it is sent or hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalise {
    /// Sent exactly as mapped.
    None,
    /// Leading and trailing whitespace removed.
    Trim,
    /// Trimmed and lower-cased.
    EmailLower,
    /// Trimmed and lower-cased; for `gmail.com` and `googlemail.com`
    /// addresses the dots and any `+suffix` of the local part are also
    /// dropped and the domain becomes `gmail.com`.
    EmailGmail,
    /// Trimmed, lower-cased, scheme, path and a leading `www.` dropped.
    Domain,
    /// E.164: `+`, country code and digits only.
    PhoneE164,
}

/// Whether an identity column takes SHA-256 hashes, raw values or either.
///
/// Hashing is always SHA-256 of the normalised value, as lowercase hex, without
/// salt: that is what every vendor in the catalog matches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HashingRule {
    /// Only hashed values are accepted: an unhashed mapping is an error.
    Required,
    /// Only raw values are accepted: the vendor cannot match a hash.
    Forbidden,
    /// The vendor detects and accepts both.
    Either,
}

/// One column through which a destination matches records to its own people
/// or companies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct IdentityColumn {
    /// The mapping target (`[activation.X.map]` key).
    pub column: &'static str,
    /// The identity namespace the mapped value must come from; one of
    /// [`NAMESPACES`].
    pub namespace: &'static str,
    pub normalise: Normalise,
    pub hashing: HashingRule,
}

/// Which identity columns an activation must map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityRule {
    /// At least one of the identity columns.
    AnyOf,
    /// Every identity column.
    AllOf,
    /// None needed: the destination stores whatever it is given (files).
    NotRequired,
}

/// A column an activation must map, possibly only under one setting value
/// (Salesforce needs `Company` only when it writes Leads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RequiredColumn {
    pub column: &'static str,
    /// `Some((key, value))`: required only when the destination sets `key = value`.
    pub when: Option<(&'static str, &'static str)>,
}

/// The kind of value a destination setting takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingValue {
    Text,
    Integer,
    Bool,
    /// A list of strings (`fields = ["email", ...]`).
    List,
    /// A table of strings; values may be secret references (`headers`).
    Table,
    /// One of a closed set of strings.
    Choice(&'static [&'static str]),
}

/// A type-specific key of a `[destination.NAME]` table.
///
/// Every type also accepts `type` and `actions`; the caller handles those.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub key: &'static str,
    pub required: bool,
    /// A secret must be a reference (`{ env = ".." }`, `{ profile = ".." }`,
    /// `{ file = ".." }`), never a literal: plans carry no secrets.
    pub secret: bool,
    pub value: SettingValue,
    /// The value used when the key is absent, as written in a spec.
    pub default: Option<&'static str>,
    pub description: &'static str,
}

/// Limits of a destination type. `None` means the catalog knows no fixed
/// limit (the vendor's may depend on the account's edition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Matched members an audience needs before the vendor serves it.
    pub min_audience_size: Option<u64>,
    pub max_audiences_per_dataflow: u32,
    pub max_mapped_attributes: u32,
    /// Files are split after this many rows (`name.csv`, `name_2.csv`, ...).
    pub max_rows_per_file: Option<u64>,
    pub max_file_name_len: Option<u32>,
    pub rate_limit: Option<RateLimit>,
    /// Records per API call.
    pub batch_size: Option<u32>,
    pub max_payload_bytes: Option<u64>,
    /// Audience fields a CRM org can hold, across all dataflows.
    pub max_audience_fields: Option<u32>,
}

/// An activation schedule, without its time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ScheduleKind {
    #[serde(rename = "streaming")]
    Streaming,
    #[serde(rename = "daily")]
    Daily,
    #[serde(rename = "every 3h")]
    Every3h,
    #[serde(rename = "every 6h")]
    Every6h,
    #[serde(rename = "every 8h")]
    Every8h,
    #[serde(rename = "every 12h")]
    Every12h,
}

impl ScheduleKind {
    /// Every schedule kind, in display order.
    pub const ALL: &'static [ScheduleKind] = &[
        ScheduleKind::Streaming,
        ScheduleKind::Daily,
        ScheduleKind::Every3h,
        ScheduleKind::Every6h,
        ScheduleKind::Every8h,
        ScheduleKind::Every12h,
    ];

    /// The spelling in a spec (`daily` stands for `daily@HH:MM`).
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleKind::Streaming => "streaming",
            ScheduleKind::Daily => "daily",
            ScheduleKind::Every3h => "every 3h",
            ScheduleKind::Every6h => "every 6h",
            ScheduleKind::Every8h => "every 8h",
            ScheduleKind::Every12h => "every 12h",
        }
    }

    /// Whether this schedule can carry `mode`: full exports run at most
    /// daily (the platform's rule), incremental ones at any schedule.
    pub fn allows(self, mode: ExportMode) -> bool {
        match mode {
            ExportMode::Incremental => true,
            ExportMode::Full => matches!(self, ScheduleKind::Daily),
        }
    }
}

closed_set! {
    /// What each delivery contains.
    pub enum ExportMode {
        /// Changes since the last delivery; the first one is a full backfill.
        Incremental = "incremental",
        /// The whole membership every time.
        Full = "full",
    }
}

/// How audience membership shows up at the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    /// Each audience is a list (matched audience, static list, segment); members
    /// are added and removed.
    ListMembership,
    /// Each audience is one text field on the CRM record, set to the membership
    /// status; the field must exist in the CRM.
    AudienceField,
    /// Members are rows of the exported files.
    FileRows,
    /// Each record is sent with its audiences and status.
    ApiUpsert,
}

/// A vendor behaviour that checks must guard against, because the vendor
/// does not report it well.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quirk {
    /// Updates to a field the vendor does not know fail without an error.
    UnknownFieldsFailSilently,
    /// An empty value for a date field rejects the whole record.
    EmptyDatesRejected,
}

/// One built-in destination type: what it accepts, implies and allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DestinationType {
    /// The `type = "..."` value.
    pub name: &'static str,
    pub title: &'static str,
    /// One line on what the vendor does with the data.
    pub summary: &'static str,
    pub delivery: Delivery,
    pub rows: Rows,
    pub membership: Membership,
    pub identities: &'static [IdentityColumn],
    pub identity_rule: IdentityRule,
    /// Identity columns that must never both be mapped in one dataflow.
    pub exclusive_identities: &'static [(&'static str, &'static str)],
    pub required_columns: &'static [RequiredColumn],
    /// Non-identity columns the type always accepts, whatever the destination
    /// declares.
    pub fixed_columns: &'static [&'static str],
    /// Mapping targets must also be listed in the destination's `fields`,
    /// because the vendor needs them to exist before data arrives.
    pub declares_fields: bool,
    /// Any column name is accepted (files, webhooks).
    pub any_columns: bool,
    pub settings: &'static [Setting],
    /// Marketing actions every dataflow to this type performs.
    pub implied_actions: &'static [&'static str],
    /// The implied actions a destination cannot opt out of.
    pub fixed_actions: &'static [&'static str],
    pub schedules: &'static [ScheduleKind],
    pub export_modes: &'static [ExportMode],
    /// File formats, for types that write files.
    pub formats: &'static [&'static str],
    pub limits: Limits,
    pub quirks: &'static [Quirk],
}

/// The identity namespaces the catalog's identity columns draw from: the
/// namespaces of the spec language plus the device and vendor identifiers ad platforms
/// match on.
pub const NAMESPACES: &[&str] = &[
    "company_name",
    "crm_account_id",
    "domain",
    "dynamics_contact_id",
    "email",
    "gaid",
    "idfa",
    "phone_e164",
    "salesforce_id",
    "tdid",
    "user_id",
];

/// Every built-in destination type, sorted by name.
pub fn all() -> &'static [DestinationType] {
    table::TYPES
}

/// The type named `name`, if it is built in. Names are case-sensitive, as in
/// specs; callers suggest close names with `diag::did_you_mean(name, names())`.
pub fn lookup(name: &str) -> Option<&'static DestinationType> {
    // The table is sorted by name (a tested invariant).
    table::TYPES
        .binary_search_by(|t| t.name.cmp(name))
        .ok()
        .and_then(|i| table::TYPES.get(i))
}

/// The names of every built-in type, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    table::TYPES.iter().map(|t| t.name)
}

impl DestinationType {
    /// The identity column named `column`.
    pub fn identity(&self, column: &str) -> Option<&'static IdentityColumn> {
        self.identities.iter().find(|i| i.column == column)
    }

    /// The setting named `key`.
    pub fn setting(&self, key: &str) -> Option<&'static Setting> {
        self.settings.iter().find(|s| s.key == key)
    }

    /// Whether records reach the vendor through its API rather than as files.
    pub fn is_api(&self) -> bool {
        self.membership != Membership::FileRows
    }

    /// The keys every API type takes besides its own settings (`endpoint`,
    /// `rate_limit`, `lists`, `list_prefix`); none for file types.
    pub fn delivery_settings(&self) -> &'static [Setting] {
        if self.is_api() {
            table::DELIVERY_SETTINGS
        } else {
            &[]
        }
    }

    /// Whether the type accepts `column` as a mapping target without the
    /// destination declaring it: an identity or fixed column, or any column
    /// for types that take any. Types with `declares_fields` also accept the
    /// destination's `fields`; the caller checks those.
    pub fn accepts_column(&self, column: &str) -> bool {
        self.any_columns || self.identity(column).is_some() || self.fixed_columns.contains(&column)
    }

    /// Whether an activation may use `schedule` with `mode` on this type.
    pub fn allows(&self, schedule: ScheduleKind, mode: ExportMode) -> bool {
        self.schedules.contains(&schedule)
            && self.export_modes.contains(&mode)
            && schedule.allows(mode)
    }

    /// The columns required when the destination's settings are as `setting`
    /// reports them (`setting(key)` returns the literal value, if any).
    pub fn required_columns_with<'a>(
        &'a self,
        setting: impl Fn(&str) -> Option<&'a str> + 'a,
    ) -> impl Iterator<Item = &'static str> + 'a {
        self.required_columns
            .iter()
            .filter(move |r| match r.when {
                None => true,
                Some((key, value)) => setting(key) == Some(value),
            })
            .map(|r| r.column)
    }
}
