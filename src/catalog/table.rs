//! The catalog table: one entry per built-in destination type, sorted by name.
//!
//! Facts marked "REFERENCE" come from the platform's published reference. Facts marked "vendor doc"
//! come from the vendor's public documentation because the platform's reference is silent;
//! they are plausible defaults, kept where a reviewer can question them. A
//! limit the vendor ties to the customer's edition or contract is `None`
//! rather than a guess.

use super::{
    Delivery, DestinationType, ExportMode, HashingRule, IdentityColumn, IdentityRule, Limits,
    Membership, Normalise, Quirk, RateLimit, RequiredColumn, Rows, ScheduleKind, Setting,
    SettingValue, Window,
};

// Per dataflow (REFERENCE): up to 250 audiences on streaming destinations,
// about 100 on batch ones, and 50 mapped attributes.
const STREAMING_AUDIENCES: u32 = 250;
const BATCH_AUDIENCES: u32 = 100;
const MAPPED_ATTRIBUTES: u32 = 50;

const NO_LIMITS_STREAMING: Limits = Limits {
    min_audience_size: None,
    max_audiences_per_dataflow: STREAMING_AUDIENCES,
    max_mapped_attributes: MAPPED_ATTRIBUTES,
    max_rows_per_file: None,
    max_file_name_len: None,
    rate_limit: None,
    batch_size: None,
    max_payload_bytes: None,
    max_audience_fields: None,
};

// File destinations (REFERENCE): files split at 5,000,000 rows, names of at
// most 255 characters.
const FILE_LIMITS: Limits = Limits {
    max_audiences_per_dataflow: BATCH_AUDIENCES,
    max_rows_per_file: Some(5_000_000),
    max_file_name_len: Some(255),
    ..NO_LIMITS_STREAMING
};

// Batch-evaluated audiences (every account audience with person or activity
// conditions) reach a streaming destination once per evaluation, which is
// daily; so streaming types accept `daily` as well as `streaming`. The spec language's own
// LinkedIn example uses `daily@02:00`. They push changes, so only incremental.
const STREAMING_SCHEDULES: &[ScheduleKind] = &[ScheduleKind::Streaming, ScheduleKind::Daily];
const BATCH_SCHEDULES: &[ScheduleKind] = &[
    ScheduleKind::Daily,
    ScheduleKind::Every3h,
    ScheduleKind::Every6h,
    ScheduleKind::Every8h,
    ScheduleKind::Every12h,
];
const INCREMENTAL: &[ExportMode] = &[ExportMode::Incremental];
const INCREMENTAL_OR_FULL: &[ExportMode] = &[ExportMode::Incremental, ExportMode::Full];

const FILE_FORMATS: &[&str] = &["csv", "jsonl", "parquet"];

// Ad platforms send data to a third party that targets people across sites
// (SPEC: "ad platforms imply export_to_third_party and cross_site_targeting").
const AD_PLATFORM_ACTIONS: &[&str] = &["cross_site_targeting", "export_to_third_party"];

const fn setting(key: &'static str, description: &'static str) -> Setting {
    Setting {
        key,
        required: true,
        secret: false,
        value: SettingValue::Text,
        default: None,
        description,
    }
}

const fn secret(key: &'static str, description: &'static str) -> Setting {
    Setting {
        secret: true,
        ..setting(key, description)
    }
}

const fn optional(setting: Setting) -> Setting {
    Setting {
        required: false,
        ..setting
    }
}

const fn with_value(setting: Setting, value: SettingValue) -> Setting {
    Setting { value, ..setting }
}

const fn with_default(setting: Setting, default: &'static str) -> Setting {
    Setting {
        required: false,
        default: Some(default),
        ..setting
    }
}

const fn identity(
    column: &'static str,
    namespace: &'static str,
    normalise: Normalise,
    hashing: HashingRule,
) -> IdentityColumn {
    IdentityColumn {
        column,
        namespace,
        normalise,
        hashing,
    }
}

const fn required(column: &'static str) -> RequiredColumn {
    RequiredColumn { column, when: None }
}

// Identity columns shared by several ad platforms. Column names follow the
// vendors' (and the platform's) target identity names.
const EMAIL_SHA256: IdentityColumn = identity(
    "email_lc_sha256",
    "email",
    Normalise::EmailLower,
    HashingRule::Required,
);
// Mobile advertising ids are matched raw; they are already pseudonymous.
const GAID: IdentityColumn = identity("gaid", "gaid", Normalise::Trim, HashingRule::Forbidden);
const IDFA: IdentityColumn = identity("idfa", "idfa", Normalise::Trim, HashingRule::Forbidden);

const FIELDS: Setting = with_value(
    setting(
        "fields",
        "fields that exist at the destination; mapping targets must be listed here",
    ),
    SettingValue::List,
);
const CLIENT_ID: Setting = secret("client_id", "OAuth client id");
const CLIENT_SECRET: Setting = secret("client_secret", "OAuth client secret");
const TOKEN: Setting = secret("token", "API access token");
// vendor doc: LinkedIn's Marketing APIs take 3-legged OAuth only; a run
// trades the member's refresh token for access tokens.
const LINKEDIN_SETTINGS: &[Setting] = &[
    setting("ad_account", "ad account URN, urn:li:sponsoredAccount:N"),
    CLIENT_ID,
    CLIENT_SECRET,
    secret(
        "refresh_token",
        "refresh token of a member with a role on the ad account (3-legged OAuth)",
    ),
    // vendor doc: LinkedIn assigns each developer application the platform
    // name its DMP segments are created under.
    optional(setting(
        "source_platform",
        "your application's sourcePlatform, needed to create segments; absent: pin them in `lists`",
    )),
];
// vendor doc: LinkedIn publishes no element cap for BATCH_CREATE on the
// /dmpSegments users and companies streams. accord's choice: 5,000 per
// request keeps each request small enough to retry cheaply while a full
// list of tens of thousands still fits in a handful of the per-minute calls.
const LINKEDIN_BATCH: u32 = 5_000;

/// The keys every API (non-file) type takes besides its own settings; read
/// and checked with their own shapes (`resolve::delivery_keys`).
pub(super) static DELIVERY_SETTINGS: &[Setting] = &[
    optional(setting(
        "endpoint",
        "base URL that replaces the vendor's (a sandbox, a test server): https, or http on a loopback host",
    )),
    optional(with_value(
        setting(
            "rate_limit",
            "lowers the type's rate limit: { calls, per, concurrent, daily }, each at most the catalog's",
        ),
        SettingValue::Table,
    )),
    optional(with_value(
        setting(
            "lists",
            "vendor list or segment id pinned per audience: { AUDIENCE = \"ID\" }",
        ),
        SettingValue::Table,
    )),
    optional(setting(
        "list_prefix",
        "put before the audience name of each list accord creates",
    )),
];
const PREFIX: Setting = optional(setting("prefix", "key prefix for written files"));
// Object stores read `endpoint` like API types do (`resolve::delivery_keys`
// checks it): an S3-compatible store, or an emulator in tests.
const OBJECT_ENDPOINT: Setting = optional(setting(
    "endpoint",
    "base URL replacing the service's (an S3-compatible store, an emulator): https, or http on a loopback host",
));

// Settings shared by every file destination (REFERENCE: CSV with delimiter,
// quote, escape, null and gzip; JSON; Parquet; an optional manifest per run).
macro_rules! file_settings {
    ($($connection:expr),* $(,)?) => {
        &[
            $($connection,)*
            with_default(
                with_value(setting("format", "file format"), SettingValue::Choice(FILE_FORMATS)),
                "csv",
            ),
            with_default(
                with_value(
                    setting("compression", "compression of written files"),
                    SettingValue::Choice(&["none", "gzip"]),
                ),
                "none",
            ),
            with_default(
                with_value(
                    setting(
                        "manifest",
                        "write `{activation}_{run_id}.manifest.json` after the files of each run, listing them; a reader that sees it sees complete files",
                    ),
                    SettingValue::Bool,
                ),
                "true",
            ),
            with_default(
                setting(
                    "file_name",
                    "name of the written files: {activation} {audience} {destination} {run_id} {date} {ext}; must hold {run_id}; with {audience}, one set of files per audience",
                ),
                super::file_name::DEFAULT_PATTERN,
            ),
            with_default(
                with_value(
                    setting(
                        "rows_per_file",
                        "rows per file before the next part (NAME_2.ext, ...); at most the type's row limit",
                    ),
                    SettingValue::Integer,
                ),
                "5000000",
            ),
            with_default(
                with_value(setting("header", "csv: first line names the columns"), SettingValue::Bool),
                "true",
            ),
            with_default(setting("delimiter", "csv field delimiter, one ASCII character"), ","),
            with_default(setting("quote", "csv quote character, one ASCII character"), "\""),
            with_default(
                setting(
                    "escape",
                    r#"csv: escapes a quote inside a quoted cell: `"` doubles it (RFC 4180); `\` writes it as `\"` and a backslash as `\\`"#,
                ),
                "\"",
            ),
            with_default(setting("null", "csv text written for a missing value; a text cell equal to it is quoted"), ""),
            with_default(
                with_value(
                    setting(
                        "formula_escape",
                        "csv: prefix text cells starting with = + - @ tab or carriage return with ' so spreadsheets do not run them as formulas (numbers are never changed)",
                    ),
                    SettingValue::Bool,
                ),
                "true",
            ),
        ]
    };
}

const fn file_type(
    name: &'static str,
    title: &'static str,
    summary: &'static str,
    settings: &'static [Setting],
) -> DestinationType {
    DestinationType {
        name,
        title,
        summary,
        delivery: Delivery::Batch,
        rows: Rows::Either,
        membership: Membership::FileRows,
        identities: &[],
        identity_rule: IdentityRule::NotRequired,
        exclusive_identities: &[],
        required_columns: &[],
        fixed_columns: &[],
        declares_fields: false,
        any_columns: true,
        settings,
        // Where files go says nothing about how they are used: the destination
        // adds its actions (`actions = [...]`).
        implied_actions: &[],
        fixed_actions: &[],
        schedules: BATCH_SCHEDULES,
        export_modes: INCREMENTAL_OR_FULL,
        formats: FILE_FORMATS,
        limits: FILE_LIMITS,
        quirks: &[],
    }
}

pub(super) static TYPES: &[DestinationType] = &[
    file_type(
        "azure_blob",
        "Azure Blob Storage",
        "files written to a container of an Azure storage account",
        file_settings![
            setting("account", "storage account name"),
            setting("container", "blob container"),
            PREFIX,
            OBJECT_ENDPOINT,
            // vendor doc: Azure Storage authorizes requests with the account's
            // Shared Key or with a SAS token; absent both, Microsoft Entra ID
            // (the ambient identity).
            optional(secret(
                "access_key",
                "storage account key (Shared Key); or sas_token; absent both: the ambient Azure identity",
            )),
            optional(secret(
                "sas_token",
                "shared access signature, the query string Azure issues; or access_key",
            )),
        ],
    ),
    DestinationType {
        name: "dynamics365",
        title: "Microsoft Dynamics 365",
        summary: "updates Contacts in Dataverse; one text field per audience holds its status",
        delivery: Delivery::Streaming,
        rows: Rows::Person,
        membership: Membership::AudienceField,
        identities: &[identity(
            "contactId",
            "dynamics_contact_id",
            Normalise::Trim,
            HashingRule::Forbidden,
        )],
        identity_rule: IdentityRule::AnyOf,
        exclusive_identities: &[],
        required_columns: &[],
        fixed_columns: &[],
        declares_fields: true,
        any_columns: false,
        settings: &[
            setting(
                "environment_url",
                "Dataverse environment, https://ORG.crm.dynamics.com",
            ),
            setting("tenant_id", "Microsoft Entra tenant id"),
            CLIENT_ID,
            CLIENT_SECRET,
            FIELDS,
            optional(with_value(
                setting(
                    "audience_fields",
                    "Contact column (logical name) of each audience's status: { AUDIENCE = \"nw_column\" }; default: the audience name in lower case, other characters as _",
                ),
                SettingValue::Table,
            )),
            optional(setting(
                "alternate_key",
                "Contact alternate key column contacts are upserted by (emailaddress1); default: the primary key contactid, from contactId",
            )),
        ],
        implied_actions: &[],
        fixed_actions: &[],
        schedules: STREAMING_SCHEDULES,
        export_modes: INCREMENTAL,
        formats: &[],
        limits: Limits {
            // vendor doc: Dataverse service protection allows 6,000 requests
            // per user per 5 minutes and 52 concurrent requests; a $batch
            // request holds at most 1,000 operations.
            rate_limit: Some(RateLimit {
                window: Some(Window {
                    calls: 6_000,
                    per_seconds: 300,
                }),
                concurrency: Some(52),
                daily: None,
            }),
            batch_size: Some(1_000),
            ..NO_LIMITS_STREAMING
        },
        quirks: &[Quirk::EmptyDatesRejected],
    },
    file_type(
        "filesystem",
        "Local filesystem",
        "files written to a folder on the machine that runs accord",
        file_settings![setting("path", "output folder, relative to the project")],
    ),
    file_type(
        "gcs",
        "Google Cloud Storage",
        "files written to a Google Cloud Storage bucket",
        file_settings![
            setting("bucket", "bucket name"),
            PREFIX,
            OBJECT_ENDPOINT,
            // vendor doc: a service account key file (JSON), else application
            // default credentials.
            optional(secret(
                "credentials",
                "service account key: { file = \"key.json\" } (the key) or { env = \"GOOGLE_APPLICATION_CREDENTIALS\" } (its path); absent: application default credentials",
            )),
        ],
    ),
    DestinationType {
        name: "google_customer_match",
        title: "Google Customer Match",
        summary: "Customer Match user lists in Google Ads for Search, YouTube, Gmail and Display",
        delivery: Delivery::Streaming,
        rows: Rows::Person,
        membership: Membership::ListMembership,
        identities: &[
            EMAIL_SHA256,
            identity(
                "phone_sha256_e.164",
                "phone_e164",
                Normalise::PhoneE164,
                HashingRule::Required,
            ),
            GAID,
            IDFA,
            identity(
                "user_id",
                "user_id",
                Normalise::Trim,
                HashingRule::Forbidden,
            ),
        ],
        identity_rule: IdentityRule::AnyOf,
        exclusive_identities: &[],
        required_columns: &[],
        fixed_columns: &[],
        declares_fields: false,
        any_columns: false,
        settings: &[
            setting("customer_id", "Google Ads customer id, 123-456-7890"),
            secret(
                "service_account",
                "path of a service account key file, by reference; vendor doc: the Data Manager API takes OAuth tokens of a service account",
            ),
            optional(setting(
                "app_id",
                "mobile app id; vendor doc: needed to match gaid or idfa",
            )),
        ],
        // REFERENCE: combine_with_pii is implied and cannot be removed; Google
        // joins the list with its signed-in users.
        implied_actions: &[
            "combine_with_pii",
            "cross_site_targeting",
            "export_to_third_party",
        ],
        fixed_actions: &["combine_with_pii"],
        schedules: STREAMING_SCHEDULES,
        export_modes: INCREMENTAL,
        formats: &[],
        limits: Limits {
            // REFERENCE: lists populate above 100 members.
            min_audience_size: Some(100),
            // vendor doc (Data Manager API, limits and quotas): an
            // IngestAudienceMembersRequest or RemoveAudienceMembersRequest
            // carries at most 10,000 audience members; a Cloud project makes
            // at most 300 requests per minute and 100,000 per day to the
            // ingestion service. Google advises at most 10 concurrent
            // requests.
            batch_size: Some(10_000),
            rate_limit: Some(RateLimit {
                window: Some(Window {
                    calls: 300,
                    per_seconds: 60,
                }),
                concurrency: Some(10),
                daily: Some(100_000),
            }),
            ..NO_LIMITS_STREAMING
        },
        quirks: &[],
    },
    DestinationType {
        name: "http",
        title: "HTTP webhook",
        summary: "JSON records posted to an endpoint the team runs, streaming or in batches",
        delivery: Delivery::Either,
        rows: Rows::Either,
        membership: Membership::ApiUpsert,
        identities: &[],
        identity_rule: IdentityRule::NotRequired,
        exclusive_identities: &[],
        required_columns: &[],
        fixed_columns: &[],
        declares_fields: false,
        any_columns: true,
        settings: &[
            setting(
                "url",
                "URL records are sent to: https (http only on a loopback host), or a reference",
            ),
            optional(secret(
                "signing_secret",
                "key of the HMAC-SHA256 signature header sent with every request",
            )),
            with_default(
                with_value(
                    setting("method", "HTTP method"),
                    SettingValue::Choice(&["POST", "PUT"]),
                ),
                "POST",
            ),
            optional(with_value(
                setting(
                    "headers",
                    "extra request headers; credentials must be secret references",
                ),
                SettingValue::Table,
            )),
        ],
        implied_actions: &[],
        fixed_actions: &[],
        schedules: &[
            ScheduleKind::Streaming,
            ScheduleKind::Daily,
            ScheduleKind::Every3h,
            ScheduleKind::Every6h,
            ScheduleKind::Every8h,
            ScheduleKind::Every12h,
        ],
        export_modes: INCREMENTAL_OR_FULL,
        formats: &[],
        limits: Limits {
            // The endpoint is the team's own, so accord sets the limits: the
            // batch audience limit (the stricter of the two, so a dataflow
            // stays valid whichever schedule it uses), and requests of at
            // most 1,000 records and 1 MiB.
            max_audiences_per_dataflow: BATCH_AUDIENCES,
            batch_size: Some(1_000),
            max_payload_bytes: Some(1_048_576),
            ..NO_LIMITS_STREAMING
        },
        quirks: &[],
    },
    DestinationType {
        name: "linkedin_companies",
        title: "LinkedIn Matched Audiences (companies)",
        summary: "company lists matched to LinkedIn Pages for account-based campaigns",
        delivery: Delivery::Streaming,
        rows: Rows::Account,
        membership: Membership::ListMembership,
        identities: &[
            identity(
                "companyName",
                "company_name",
                Normalise::Trim,
                HashingRule::Forbidden,
            ),
            identity(
                "companyDomain",
                "domain",
                Normalise::Domain,
                HashingRule::Forbidden,
            ),
        ],
        identity_rule: IdentityRule::AnyOf,
        exclusive_identities: &[],
        // vendor doc: LinkedIn's company list needs a company name on every
        // row; the domain raises the match rate.
        required_columns: &[required("companyName")],
        fixed_columns: &[],
        declares_fields: false,
        any_columns: false,
        settings: LINKEDIN_SETTINGS,
        implied_actions: AD_PLATFORM_ACTIONS,
        fixed_actions: &[],
        schedules: STREAMING_SCHEDULES,
        export_modes: INCREMENTAL,
        formats: &[],
        limits: Limits {
            // REFERENCE: an audience needs 300 matched members to serve.
            min_audience_size: Some(300),
            // vendor doc: the /dmpSegments/companies stream allows 300
            // requests per member per minute, on top of the app's daily
            // quota (which LinkedIn sets per app, so it is not fixed here).
            rate_limit: Some(RateLimit {
                window: Some(Window {
                    calls: 300,
                    per_seconds: 60,
                }),
                concurrency: None,
                daily: None,
            }),
            batch_size: Some(LINKEDIN_BATCH),
            ..NO_LIMITS_STREAMING
        },
        quirks: &[],
    },
    DestinationType {
        name: "linkedin_contacts",
        title: "LinkedIn Matched Audiences (contacts)",
        summary: "contact lists matched to LinkedIn members by hashed email or device id",
        delivery: Delivery::Streaming,
        rows: Rows::Person,
        membership: Membership::ListMembership,
        identities: &[EMAIL_SHA256, GAID, IDFA],
        identity_rule: IdentityRule::AnyOf,
        exclusive_identities: &[],
        required_columns: &[],
        fixed_columns: &[],
        declares_fields: false,
        any_columns: false,
        settings: LINKEDIN_SETTINGS,
        implied_actions: AD_PLATFORM_ACTIONS,
        fixed_actions: &[],
        schedules: STREAMING_SCHEDULES,
        export_modes: INCREMENTAL,
        formats: &[],
        limits: Limits {
            // vendor doc: the same 300-member serving threshold as company lists.
            min_audience_size: Some(300),
            // vendor doc: the /dmpSegments/users stream allows 600 requests
            // per member per minute, on top of the app's daily quota.
            rate_limit: Some(RateLimit {
                window: Some(Window {
                    calls: 600,
                    per_seconds: 60,
                }),
                concurrency: None,
                daily: None,
            }),
            batch_size: Some(LINKEDIN_BATCH),
            ..NO_LIMITS_STREAMING
        },
        quirks: &[],
    },
    DestinationType {
        name: "marketo_engage",
        title: "Adobe Marketo Engage",
        summary: "upserts people by email and adds them to one static list per audience",
        delivery: Delivery::Streaming,
        rows: Rows::Person,
        membership: Membership::ListMembership,
        // REFERENCE: email is the dedupe field; Marketo matches it raw.
        identities: &[identity(
            "email",
            "email",
            Normalise::EmailLower,
            HashingRule::Forbidden,
        )],
        identity_rule: IdentityRule::AllOf,
        exclusive_identities: &[],
        required_columns: &[],
        fixed_columns: &[],
        // REFERENCE: fields must pre-exist or updates fail silently.
        declares_fields: true,
        any_columns: false,
        settings: &[
            setting("munchkin_id", "instance id, 123-ABC-456"),
            CLIENT_ID,
            CLIENT_SECRET,
            FIELDS,
            optional(setting(
                "partition",
                "lead partition new people are created in",
            )),
            optional(setting(
                "folder",
                "id of the folder new static lists are created in; vendor doc: Marketo creates a list only inside a folder",
            )),
        ],
        // Marketo exists to email and nurture the people it receives.
        implied_actions: &["email_targeting"],
        fixed_actions: &[],
        schedules: STREAMING_SCHEDULES,
        export_modes: INCREMENTAL,
        formats: &[],
        limits: Limits {
            // REFERENCE: 100 calls per 20 s, 10 concurrent, 50,000 per day,
            // 300 records per call, 1 MB payload.
            rate_limit: Some(RateLimit {
                window: Some(Window {
                    calls: 100,
                    per_seconds: 20,
                }),
                concurrency: Some(10),
                daily: Some(50_000),
            }),
            batch_size: Some(300),
            max_payload_bytes: Some(1_048_576),
            ..NO_LIMITS_STREAMING
        },
        quirks: &[Quirk::UnknownFieldsFailSilently],
    },
    file_type(
        "s3",
        "Amazon S3",
        "files written to an S3 bucket",
        file_settings![
            setting("bucket", "bucket name"),
            PREFIX,
            with_default(setting("region", "AWS region of the bucket"), "us-east-1"),
            OBJECT_ENDPOINT,
            // vendor doc: S3 signs requests with an access key pair (plus a
            // session token for temporary keys); the SDKs also read named
            // profiles of the shared credentials file and the default chain.
            optional(secret(
                "access_key_id",
                "access key id, with secret_access_key",
            )),
            optional(secret(
                "secret_access_key",
                "secret access key, with access_key_id",
            )),
            optional(secret(
                "session_token",
                "session token of temporary keys, with both keys",
            )),
            optional(secret(
                "credentials",
                "{ profile = \"NAME\" }: a profile of the AWS shared credentials file; absent (and no keys): the default AWS credential chain",
            )),
        ],
    ),
    DestinationType {
        name: "salesforce",
        title: "Salesforce CRM",
        summary: "updates Contacts or Leads; one custom text field per audience holds its status",
        delivery: Delivery::Streaming,
        rows: Rows::Person,
        membership: Membership::AudienceField,
        identities: &[identity(
            "salesforceId",
            "salesforce_id",
            Normalise::Trim,
            HashingRule::Forbidden,
        )],
        identity_rule: IdentityRule::AnyOf,
        exclusive_identities: &[],
        // REFERENCE: LastName is required, and Company too for Leads.
        required_columns: &[
            required("LastName"),
            RequiredColumn {
                column: "Company",
                when: Some(("object", "lead")),
            },
        ],
        // Standard fields exist in every org, so they need no declaring.
        fixed_columns: &[
            "Company",
            "Email",
            "FirstName",
            "LastName",
            "Phone",
            "Title",
        ],
        declares_fields: true,
        any_columns: false,
        settings: &[
            setting("domain", "My Domain, ORG.my.salesforce.com"),
            with_value(
                setting("object", "which records are updated"),
                SettingValue::Choice(&["contact", "lead"]),
            ),
            CLIENT_ID,
            CLIENT_SECRET,
            FIELDS,
            optional(with_value(
                setting(
                    "audience_fields",
                    "custom text field holding each audience's status: { AUDIENCE = \"Field__c\" }; default: the audience name as a field name, NAME__c",
                ),
                SettingValue::Table,
            )),
            with_default(
                setting(
                    "external_id",
                    "field upserts match records on: Id (the salesforceId column) or an External ID field every activation maps, such as Email",
                ),
                "Id",
            ),
            // vendor doc: Salesforce advises Bulk API 2.0 above about 2,000
            // records; below that the REST sObject Collections are faster.
            with_default(
                with_value(
                    setting(
                        "bulk_threshold",
                        "members of one audience change above which a run uses a Bulk API 2.0 job instead of sObject Collections",
                    ),
                    SettingValue::Integer,
                ),
                "2000",
            ),
        ],
        implied_actions: &[],
        fixed_actions: &[],
        schedules: STREAMING_SCHEDULES,
        export_modes: INCREMENTAL,
        formats: &[],
        limits: Limits {
            // REFERENCE: at most 25 audience fields. vendor doc: sObject
            // Collections take 200 records per call; an org runs at most 25
            // concurrent long-running requests; the daily API allocation
            // depends on the edition, so it is not fixed here.
            max_audience_fields: Some(25),
            batch_size: Some(200),
            rate_limit: Some(RateLimit {
                window: None,
                concurrency: Some(25),
                daily: None,
            }),
            ..NO_LIMITS_STREAMING
        },
        quirks: &[],
    },
    file_type(
        "sftp",
        "SFTP",
        "files written to a folder on an SFTP server",
        file_settings![
            setting("host", "server host name"),
            with_default(
                with_value(setting("port", "server port"), SettingValue::Integer),
                "22",
            ),
            // SPEC: "required: the server's public host key, pinned". A
            // run never trusts a key on first use: an SFTP server that
            // answers with another key is refused (`ssh-keyscan` prints it).
            setting(
                "host_key",
                "the server's public host key, pinned: `ssh-ed25519 AAAA...` as ssh-keyscan prints it after the host"
            ),
            setting("username", "login user"),
            setting(
                "path",
                "remote folder (relative to the login folder, or absolute), created when missing"
            ),
            optional(secret("password", "password; give this or private_key")),
            optional(secret(
                "private_key",
                "OpenSSH private key (the key file's text); give this or password"
            )),
            optional(secret("passphrase", "unlocks an encrypted private_key")),
        ],
    ),
    DestinationType {
        name: "trade_desk",
        title: "The Trade Desk",
        summary: "first-party data segments for programmatic buying",
        delivery: Delivery::Streaming,
        rows: Rows::Person,
        membership: Membership::ListMembership,
        identities: &[
            identity("tdid", "tdid", Normalise::Trim, HashingRule::Forbidden),
            GAID,
            IDFA,
        ],
        identity_rule: IdentityRule::AnyOf,
        exclusive_identities: &[],
        required_columns: &[],
        fixed_columns: &[],
        declares_fields: false,
        any_columns: false,
        // vendor doc: segments belong to an advertiser, served from a regional
        // data centre. The first-party data endpoint (POST /data/advertiser)
        // authenticates with the TTD-Auth header, an API token from the
        // partner portal.
        settings: &[
            setting("advertiser_id", "advertiser id"),
            optional(setting(
                "region",
                "data centre region; absent: the account's default",
            )),
            secret("token", "API token sent as the TTD-Auth header"),
            // vendor doc: segment membership lives 30 days unless renewed;
            // at most 180.
            with_default(
                with_value(
                    setting(
                        "ttl_days",
                        "days a member stays in the segment unless sent again, 1 to 180",
                    ),
                    SettingValue::Integer,
                ),
                "30",
            ),
        ],
        implied_actions: AD_PLATFORM_ACTIONS,
        fixed_actions: &[],
        schedules: STREAMING_SCHEDULES,
        export_modes: INCREMENTAL,
        formats: &[],
        // vendor doc: The Trade Desk limits requests per endpoint and per
        // user account and answers 429 above them, but publishes no figure
        // (it is agreed with the account team), and documents no item cap
        // for POST /data/advertiser: both stay open; a destination sets its
        // agreed figure with `rate_limit`.
        limits: NO_LIMITS_STREAMING,
        quirks: &[],
    },
    DestinationType {
        name: "trade_desk_crm",
        title: "The Trade Desk CRM",
        summary: "daily full uploads of CRM emails, matched by The Trade Desk to its ids",
        delivery: Delivery::Batch,
        rows: Rows::Person,
        membership: Membership::ListMembership,
        // REFERENCE: email or its hash, never both in one dataflow; normalise
        // with the gmail rule before sending or hashing.
        identities: &[
            identity(
                "email",
                "email",
                Normalise::EmailGmail,
                HashingRule::Forbidden,
            ),
            identity(
                "email_lc_sha256",
                "email",
                Normalise::EmailGmail,
                HashingRule::Required,
            ),
        ],
        identity_rule: IdentityRule::AnyOf,
        exclusive_identities: &[("email", "email_lc_sha256")],
        required_columns: &[],
        fixed_columns: &[],
        declares_fields: false,
        any_columns: false,
        settings: &[
            setting("advertiser_id", "advertiser id"),
            optional(setting(
                "region",
                "data centre region; absent: the account's default",
            )),
            TOKEN,
        ],
        implied_actions: AD_PLATFORM_ACTIONS,
        fixed_actions: &[],
        // REFERENCE: batch daily, full file.
        schedules: &[ScheduleKind::Daily],
        export_modes: &[ExportMode::Full],
        formats: &[],
        limits: Limits {
            max_audiences_per_dataflow: BATCH_AUDIENCES,
            ..NO_LIMITS_STREAMING
        },
        quirks: &[],
    },
];
