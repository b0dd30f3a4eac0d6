//! A generated spec project at the platform's guardrails: 4,000 audiences,
//! 100 destinations, 1,000 activations and 300 attributes (296 schema fields
//! plus 4 computed attributes), spread over about 50 files in sub-folders.
//! Deterministic (a fixed-seed xorshift), so every user measures the same
//! bytes; it checks clean. The check benchmark (`benches/check.rs`) times
//! the front end on it, and the report's browser test
//! (`tests/report_browser.rs`) loads its report.
//!
//! Include it with `#[path]` beside `rng.rs`, as `mod rng; mod guardrails;`.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::rng::Rng;

/// Scale: the platform's default guardrails.
const AUDIENCES: usize = 4000;
const DESTINATIONS: usize = 100;
const ACTIVATIONS: usize = 1000;
const ACCOUNT_FIELDS: usize = 148;
const PERSON_FIELDS: usize = 98;
const OPPORTUNITY_FIELDS: usize = 30;
const EVENT_FIELDS: usize = 10;
/// Audience files (in sub-folders by theme) and activation files.
const AUDIENCE_FILES: usize = 30;
const ACTIVATION_FILES: usize = 8;
/// Rule audiences that other audiences exclude (`B2B_Suppress_*`).
const SUPPRESSIONS: usize = 24;
const PERSON_AUDIENCES: usize = 40;
const COMPOSED_AUDIENCES: usize = 260;
const SPLIT_AUDIENCES: usize = 20;

pub struct Generated {
    pub root: PathBuf,
    pub files: Vec<PathBuf>,
    pub bytes: usize,
    pub counts: Counts,
}

#[derive(Default)]
pub struct Counts {
    pub fields: usize,
    pub computed: usize,
    pub audiences: usize,
    pub destinations: usize,
    pub activations: usize,
}

/// The closed string domains of the schemas; rules compare only to these values.
const INDUSTRIES: &[&str] = &[
    "Software",
    "Fintech",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Logistics",
    "Energy",
    "Media",
    "Telecom",
];
const STATUSES: &[&str] = &["prospect", "customer", "churned"];
const REGIONS: &[&str] = &["NA", "EMEA", "APAC", "LATAM"];
const TIERS: &[&str] = &["strategic", "enterprise", "midmarket", "smb"];
const BANDS: &[&str] = &["none", "low", "medium", "high", "very_high"];
const SENIORITIES: &[&str] = &["cxo", "vp", "director", "manager", "individual"];
const DEPARTMENTS: &[&str] = &[
    "marketing",
    "sales",
    "it",
    "finance",
    "operations",
    "engineering",
];
const STAGES_OPP: &[&str] = &[
    "qualification",
    "discovery",
    "proposal",
    "negotiation",
    "closed_won",
    "closed_lost",
];
const PRODUCTS: &[&str] = &["core", "analytics", "platform", "services"];
const PAGE_TYPES: &[&str] = &["home", "pricing", "docs", "blog", "careers", "demo"];
const CHANNELS: &[&str] = &["newsletter", "nurture", "event", "product"];
const TOPICS: &[&str] = &[
    "cdp",
    "abm",
    "data_governance",
    "marketing_automation",
    "crm",
    "analytics",
    "privacy",
];
const THEMES: &[&str] = &["ICP", "Intent", "Pipeline", "Engage", "Expansion", "Region"];

/// Labels that no core policy denies for the actions of the generated
/// destinations, so the project stays clean once governance runs; `C2`,
/// `C3`, `C4`, `C5` and `C12` would (rightly) block the ad platforms.
const SAFE_LABELS: &[&str] = &["I2", "third_party", "C1", "C6", "C7", "C9", "C10", "C11"];

/// The generated attributes of one schema, by type, for the rule generator.
#[derive(Default)]
struct Attributes {
    ints: Vec<String>,
    doubles: Vec<String>,
    bools: Vec<String>,
    timestamps: Vec<String>,
    string_lists: Vec<String>,
    int_lists: Vec<String>,
    double_lists: Vec<String>,
    /// Closed-domain strings: all take [`BANDS`].
    bands: Vec<String>,
}

/// One schema file being written: fixed fields first, then generated ones.
struct SchemaWriter {
    text: String,
    fields: usize,
}

impl SchemaWriter {
    fn new(name: &str, class: &str, key: &str, timestamp: Option<&str>, labels: &str) -> Self {
        let mut text = format!("[schema.{name}]\nclass = \"{class}\"\nkey = \"{key}\"\n");
        if let Some(ts) = timestamp {
            writeln!(text, "timestamp = \"{ts}\"").unwrap();
        }
        if !labels.is_empty() {
            writeln!(text, "labels = [{labels}]").unwrap();
        }
        writeln!(text, "description = \"generated {class} schema\"").unwrap();
        writeln!(text, "[schema.{name}.fields]").unwrap();
        SchemaWriter { text, fields: 0 }
    }

    fn field(&mut self, name: &str, definition: &str) {
        writeln!(self.text, "{name} = {definition}").unwrap();
        self.fields += 1;
    }

    /// Generated fields of every type, named after their type, until the
    /// schema has `total` fields.
    fn generated(&mut self, prefix: &str, total: usize, rng: &mut Rng) -> Attributes {
        let mut attrs = Attributes::default();
        let mut i = 0;
        while self.fields < total {
            i += 1;
            let labels = if rng.chance(20) {
                format!(", labels = [\"{}\"]", rng.pick(SAFE_LABELS))
            } else {
                String::new()
            };
            let (name, ty) = match i % 10 {
                0 => (format!("{prefix}Text{i:03}"), "\"string\""),
                1 => (format!("{prefix}Count{i:03}"), "\"int\""),
                2 => (format!("{prefix}Amount{i:03}"), "\"double\""),
                3 => (format!("{prefix}Flag{i:03}"), "\"bool\""),
                4 => (format!("{prefix}At{i:03}"), "\"timestamp\""),
                5 => (format!("{prefix}Tags{i:03}"), "\"list<string>\""),
                6 => (format!("{prefix}Counts{i:03}"), "\"list<int>\""),
                7 => (format!("{prefix}Ratios{i:03}"), "\"list<double>\""),
                8 => (format!("{prefix}Band{i:03}"), "\"string\""),
                _ => (format!("{prefix}Score{i:03}"), "\"int\""),
            };
            let definition = if i % 10 == 8 {
                format!(
                    "{{ type = \"string\", values = [{}]{labels} }}",
                    quoted(BANDS)
                )
            } else if labels.is_empty() && i % 3 == 0 {
                // The shorthand form, as users write most fields.
                ty.to_string()
            } else {
                format!("{{ type = {ty}{labels}, description = \"generated {i}\" }}")
            };
            self.field(&name, &definition);
            let list = match i % 10 {
                0 => continue,
                1 | 9 => &mut attrs.ints,
                2 => &mut attrs.doubles,
                3 => &mut attrs.bools,
                4 => &mut attrs.timestamps,
                5 => &mut attrs.string_lists,
                6 => &mut attrs.int_lists,
                7 => &mut attrs.double_lists,
                _ => &mut attrs.bands,
            };
            list.push(name);
        }
        attrs
    }
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn quoted_refs(values: &[&&str]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything the audience and activation generators need to know.
struct World {
    account: Attributes,
    person: Attributes,
    opportunity: Attributes,
}

/// Writes the project into `root` (an empty folder).
pub fn generate(root: &Path) -> Generated {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut files: Vec<(String, String)> = Vec::new();
    let mut counts = Counts::default();

    files.push(("accord.toml".into(), project_file()));

    let (schema_files, world, fields) = schemas(&mut rng);
    counts.fields = fields;
    files.extend(schema_files);

    files.push(("governance/vocabulary.toml".into(), governance()));
    let (computed, n) = computed();
    counts.computed = n;
    files.push(("computed/engagement.toml".into(), computed));

    let audiences = audiences(&mut rng, &world);
    counts.audiences = audiences.names.len();
    files.extend(audiences.files.iter().cloned());

    let destinations = destinations(&mut rng);
    counts.destinations = destinations.list.len();
    files.extend(destinations.files.iter().cloned());

    let (activation_files, n) = activations(&mut rng, &audiences, &destinations);
    counts.activations = n;
    files.extend(activation_files);

    let mut paths = Vec::new();
    let mut bytes = 0;
    for (relative, text) in &files {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().expect("a file has a folder"))
            .expect("the project folder can be created");
        std::fs::write(&path, text).expect("the generated file can be written");
        bytes += text.len();
        paths.push(path);
    }
    paths.sort();
    Generated {
        root: root.to_path_buf(),
        files: paths,
        bytes,
        counts,
    }
}

fn project_file() -> String {
    r#"# Generated by benches/check.rs: a project at the platform's guardrails.
[project]
name = "bench_guardrails"
format = 1
audience_naming = '^B2B_[A-Za-z0-9]+(_[A-Za-z0-9]+)*$'

[environment.dev]
enforcement = "warn"

[environment.prod]
enforcement = "block"

[guardrails]
max_audiences = 4000
max_destinations = 100
max_activations = 1000
max_fields = 300
"#
    .to_string()
}

fn schemas(rng: &mut Rng) -> (Vec<(String, String)>, World, usize) {
    let mut account = SchemaWriter::new("account", "account", "accountId", None, "");
    account.field(
        "accountId",
        "{ type = \"string\", identity = \"crm_account_id\" }",
    );
    account.field("name", "{ type = \"string\", identity = \"company_name\" }");
    account.field("domain", "{ type = \"string\", identity = \"domain\" }");
    account.field(
        "industry",
        &format!("{{ type = \"string\", values = [{}] }}", quoted(INDUSTRIES)),
    );
    account.field(
        "status",
        &format!("{{ type = \"string\", values = [{}] }}", quoted(STATUSES)),
    );
    account.field(
        "region",
        &format!("{{ type = \"string\", values = [{}] }}", quoted(REGIONS)),
    );
    account.field(
        "tier",
        &format!("{{ type = \"string\", values = [{}] }}", quoted(TIERS)),
    );
    account.field(
        "employees",
        "{ type = \"int\", labels = [\"third_party\"] }",
    );
    account.field(
        "annualRevenue",
        "{ type = \"double\", labels = [\"C9\", \"third_party\"] }",
    );
    account.field(
        "intentTopics",
        "{ type = \"list<string>\", labels = [\"third_party\"] }",
    );
    account.field(
        "contractNotes",
        "{ type = \"string\", labels = [\"partner_restricted\"] }",
    );
    account.field("updatedAt", "\"timestamp\"");
    account.field("isPublic", "\"bool\"");
    let account_attrs = account.generated("acct", ACCOUNT_FIELDS, rng);

    let mut person = SchemaWriter::new("person", "person", "personId", None, "");
    person.field("personId", "\"string\"");
    person.field("accountId", "\"string\"");
    person.field(
        "email",
        "{ type = \"string\", identity = \"email\", labels = [\"I1\"] }",
    );
    person.field(
        "phone",
        "{ type = \"string\", identity = \"phone_e164\", labels = [\"I1\"] }",
    );
    person.field(
        "salesforceId",
        "{ type = \"string\", identity = \"salesforce_id\" }",
    );
    person.field("firstName", "{ type = \"string\", labels = [\"I2\"] }");
    person.field("lastName", "{ type = \"string\", labels = [\"I2\"] }");
    person.field("jobTitle", "\"string\"");
    person.field(
        "seniority",
        &format!(
            "{{ type = \"string\", values = [{}] }}",
            quoted(SENIORITIES)
        ),
    );
    person.field(
        "department",
        &format!(
            "{{ type = \"string\", values = [{}] }}",
            quoted(DEPARTMENTS)
        ),
    );
    person.field(
        "emailConsent",
        "{ type = \"string\", values = [\"y\", \"n\"] }",
    );
    person.field("lastActivityAt", "\"timestamp\"");
    let person_attrs = person.generated("person", PERSON_FIELDS, rng);
    person.text.push_str(
        "[schema.person.links.account]\nto = \"account\"\nby = \"accountId\"\nreverse = \"people\"\nfallback = \"email_domain\"\n",
    );

    let mut opportunity =
        SchemaWriter::new("opportunity", "opportunity", "opportunityId", None, "");
    opportunity.field("opportunityId", "\"string\"");
    opportunity.field("accountId", "\"string\"");
    opportunity.field(
        "stage",
        &format!("{{ type = \"string\", values = [{}] }}", quoted(STAGES_OPP)),
    );
    opportunity.field(
        "product",
        &format!("{{ type = \"string\", values = [{}] }}", quoted(PRODUCTS)),
    );
    opportunity.field("amount", "\"double\"");
    opportunity.field("isWon", "\"bool\"");
    opportunity.field("createdAt", "\"timestamp\"");
    opportunity.field("closeDate", "\"timestamp\"");
    let opportunity_attrs = opportunity.generated("opp", OPPORTUNITY_FIELDS, rng);
    opportunity.text.push_str(
        "[schema.opportunity.links.account]\nto = \"account\"\nby = \"accountId\"\nreverse = \"opportunities\"\n",
    );

    let mut opened = SchemaWriter::new("email_opened", "event", "eventId", Some("occurredAt"), "");
    opened.field("eventId", "\"string\"");
    opened.field("personId", "\"string\"");
    opened.field("occurredAt", "\"timestamp\"");
    opened.field("campaign", "\"string\"");
    opened.field(
        "channel",
        &format!("{{ type = \"string\", values = [{}] }}", quoted(CHANNELS)),
    );
    opened.field("clicked", "\"bool\"");
    let _ = opened.generated("open", EVENT_FIELDS, rng);
    opened.text.push_str(
        "[schema.email_opened.links.person]\nto = \"person\"\nby = \"personId\"\nreverse = \"emailOpens\"\n",
    );

    let mut visit = SchemaWriter::new(
        "web_visit",
        "event",
        "eventId",
        Some("occurredAt"),
        "\"third_party\"",
    );
    visit.field("eventId", "\"string\"");
    visit.field("accountId", "\"string\"");
    visit.field("occurredAt", "\"timestamp\"");
    visit.field("url", "\"string\"");
    visit.field(
        "pageType",
        &format!("{{ type = \"string\", values = [{}] }}", quoted(PAGE_TYPES)),
    );
    visit.field("durationSec", "\"int\"");
    let _ = visit.generated("visit", EVENT_FIELDS, rng);
    visit.text.push_str(
        "[schema.web_visit.links.account]\nto = \"account\"\nby = \"accountId\"\nreverse = \"webVisits\"\n",
    );

    let fields = account.fields + person.fields + opportunity.fields + opened.fields + visit.fields;
    let files = vec![
        ("schemas/account.toml".to_string(), account.text),
        ("schemas/person.toml".to_string(), person.text),
        ("schemas/opportunity.toml".to_string(), opportunity.text),
        (
            "schemas/events.toml".to_string(),
            format!("{}\n{}", opened.text, visit.text),
        ),
    ];
    let world = World {
        account: account_attrs,
        person: person_attrs,
        opportunity: opportunity_attrs,
    };
    (files, world, fields)
}

fn governance() -> String {
    r#"[label.partner_restricted]
description = "bought under a no-resale contract"

[marketing_action.sales_outreach]
description = "handing accounts to sales in the CRM"

[policy.no_partner_data_to_sales]
description = "partner data stays out of the CRM"
actions = ["sales_outreach"]
deny = "partner_restricted"
enforcement = "hard"
status = "enabled"

[policy.review_revenue_modelling]
actions = ["data_science"]
deny = "C9 && third_party"
enforcement = "soft"
status = "draft"

[consent.email_opt_in]
actions = ["email_targeting"]
require = 'person.emailConsent == "y"'
"#
    .to_string()
}

fn computed() -> (String, usize) {
    let text = r#"[computed.account.engagementScore]
type = "int"
expr = 'size(account.people.filter(p, p.emailOpens.exists(e, e.occurredAt > now - days(30))))'

[computed.account.engagementTier]
type = "string"
expr = 'account.engagementScore >= 5 ? "high" : account.engagementScore >= 2 ? "medium" : "low"'

[computed.account.recentVisits]
type = "int"
expr = 'size(account.webVisits.filter(v, v.occurredAt > now - days(14)))'

[computed.account.openPipeline]
type = "double"
expr = 'sum(account.opportunities.filter(o, o.stage != "closed_won" && o.stage != "closed_lost").map(o, o.amount))'
"#;
    (text.to_string(), 4)
}

/// One atom of an account rule.
fn account_atom(rng: &mut Rng, world: &World) -> String {
    let a = &world.account;
    match rng.below(22) {
        0 => {
            let n = rng.range(1, 4) as usize;
            format!(
                "account.industry in [{}]",
                quoted_refs(&rng.some(INDUSTRIES, n))
            )
        }
        1 => format!("account.tier == \"{}\"", rng.pick(TIERS)),
        2 => format!("account.region in [{}]", quoted_refs(&rng.some(REGIONS, 2))),
        3 => format!("account.status != \"{}\"", rng.pick(STATUSES)),
        4 => format!(
            "account.employees {} {}",
            rng.pick(&[">=", ">", "<"]),
            rng.pick(&[50, 200, 1000, 5000, 10000])
        ),
        5 => format!(
            "account.annualRevenue >= {}.0",
            rng.pick(&[1_000_000, 10_000_000, 50_000_000])
        ),
        6 => format!("\"{}\" in account.intentTopics", rng.pick(TOPICS)),
        7 => format!("account.updatedAt > now - days({})", rng.pick(&[7, 30, 90])),
        8 => format!(
            "account.{} {} {}",
            rng.pick(&a.ints),
            rng.pick(&[">=", "<", "=="]),
            rng.range(0, 500)
        ),
        9 => format!(
            "account.{} > {}.5",
            rng.pick(&a.doubles),
            rng.range(0, 1000)
        ),
        10 => {
            let flag = rng.pick(&a.bools);
            if rng.chance(50) {
                format!("account.{flag}")
            } else {
                format!("!account.{flag}")
            }
        }
        11 => format!(
            "account.{} > now - days({})",
            rng.pick(&a.timestamps),
            rng.pick(&[14, 30, 60, 180])
        ),
        12 => format!(
            "size(account.{}) > {}",
            rng.pick(&a.string_lists),
            rng.range(0, 3)
        ),
        13 => format!(
            "account.{} in [{}]",
            rng.pick(&a.bands),
            quoted_refs(&rng.some(BANDS, 2))
        ),
        14 => format!(
            "account.people.exists(p, p.seniority in [{}] && p.department == \"{}\")",
            quoted_refs(&rng.some(SENIORITIES, 2)),
            rng.pick(DEPARTMENTS)
        ),
        15 => r#"account.people.exists(p, p.jobTitle.matches("(?i)\\b(VP|Chief|Head)\\b"))"#
            .to_string(),
        16 => format!(
            "account.opportunities.exists(o, o.stage == \"{}\" && o.amount > {}.0)",
            rng.pick(STAGES_OPP),
            rng.pick(&[10_000, 50_000, 250_000])
        ),
        17 => format!(
            "size(account.opportunities.filter(o, o.product == \"{}\" && o.createdAt > now - days({}))) >= {}",
            rng.pick(PRODUCTS),
            rng.pick(&[30, 90, 365]),
            rng.range(1, 3)
        ),
        18 => format!(
            "account.people.exists(p, p.emailOpens.exists(e, e.channel == \"{}\" && e.occurredAt > now - days(30)))",
            rng.pick(CHANNELS)
        ),
        19 => format!(
            "size(account.webVisits.filter(v, v.pageType == \"{}\")) >= {}",
            rng.pick(PAGE_TYPES),
            rng.range(1, 5)
        ),
        20 => {
            if rng.chance(50) {
                format!("account.engagementScore >= {}", rng.range(1, 8))
            } else {
                format!(
                    "account.engagementTier == \"{}\"",
                    rng.pick(&["high", "medium"])
                )
            }
        }
        _ => {
            let w = &world.opportunity;
            let p = &world.person;
            if rng.chance(50) {
                format!(
                    "account.opportunities.exists(o, o.{} > {} && o.isWon)",
                    rng.pick(&w.ints),
                    rng.range(0, 100)
                )
            } else {
                format!(
                    "size(account.people.filter(p, p.{} && p.emailConsent == \"y\")) >= {}",
                    rng.pick(&p.bools),
                    rng.range(1, 4)
                )
            }
        }
    }
}

/// A rule of 2 to 5 atoms joined by `&&`, sometimes with an `||` group.
fn account_rule(rng: &mut Rng, world: &World) -> String {
    let n = rng.range(2, 5) as usize;
    let mut atoms: Vec<String> = (0..n).map(|_| account_atom(rng, world)).collect();
    if n >= 3 && rng.chance(30) {
        let b = atoms.pop().expect("n >= 3");
        let a = atoms.pop().expect("n >= 3");
        atoms.push(format!("({a} || {b})"));
    }
    atoms.join("\n  && ")
}

fn person_rule(rng: &mut Rng, world: &World) -> String {
    let p = &world.person;
    let mut atoms = vec![
        format!(
            "person.seniority in [{}]",
            quoted_refs(&rng.some(SENIORITIES, 2))
        ),
        format!("person.account.industry == \"{}\"", rng.pick(INDUSTRIES)),
    ];
    match rng.below(4) {
        0 => atoms.push("person.emailConsent == \"y\"".into()),
        1 => atoms.push(format!(
            "person.{} > {}",
            rng.pick(&p.ints),
            rng.range(0, 50)
        )),
        2 => atoms.push(format!(
            "person.emailOpens.exists(e, e.occurredAt > now - days({}))",
            rng.pick(&[7, 30])
        )),
        _ => atoms.push(format!(
            "person.lastActivityAt > now - days({})",
            rng.pick(&[30, 90])
        )),
    }
    atoms.join(" && ")
}

struct Audiences {
    files: Vec<(String, String)>,
    names: Vec<String>,
    suppressions: Vec<String>,
    /// Account audiences that can be activated (rule and composed, not person).
    activatable: Vec<String>,
    /// `NAME.part` of every split part.
    split_parts: Vec<String>,
}

fn audiences(rng: &mut Rng, world: &World) -> Audiences {
    let mut out = Audiences {
        files: Vec::new(),
        names: Vec::new(),
        suppressions: Vec::new(),
        activatable: Vec::new(),
        split_parts: Vec::new(),
    };
    let mut texts = vec![String::new(); AUDIENCE_FILES];
    // Rule audiences composed ones may draw from.
    let mut rule_audiences: Vec<String> = Vec::new();
    let rules = AUDIENCES - SUPPRESSIONS - PERSON_AUDIENCES - COMPOSED_AUDIENCES - SPLIT_AUDIENCES;

    for i in 0..AUDIENCES {
        let file = i % AUDIENCE_FILES;
        let text = &mut texts[file];
        let theme = THEMES[file % THEMES.len()];
        if i < SUPPRESSIONS {
            let name = format!("B2B_Suppress_{i:04}");
            let rule = match i % 3 {
                0 => "account.status == \"customer\"".to_string(),
                1 => format!(
                    "account.opportunities.exists(o, o.stage == \"{}\")",
                    rng.pick(&["negotiation", "proposal"])
                ),
                _ => format!(
                    "account.industry == \"{}\" && account.employees < 50",
                    rng.pick(INDUSTRIES)
                ),
            };
            writeln!(
                text,
                "[audience.{name}]\ndescription = \"suppression list {i}\"\nrule = '{rule}'\n"
            )
            .unwrap();
            out.suppressions.push(name.clone());
            out.names.push(name);
        } else if i < SUPPRESSIONS + rules {
            let name = format!("B2B_{theme}_{i:04}");
            writeln!(
                text,
                "[audience.{name}]\ndescription = \"{theme} segment {i}\"\nevaluation = \"batch\"\nrule = '''\n{}\n'''\n",
                account_rule(rng, world)
            )
            .unwrap();
            rule_audiences.push(name.clone());
            out.activatable.push(name.clone());
            out.names.push(name);
        } else if i < SUPPRESSIONS + rules + PERSON_AUDIENCES {
            let name = format!("B2B_Person_{theme}_{i:04}");
            writeln!(
                text,
                "[audience.{name}]\nentity = \"person\"\nrule = '{}'\n",
                person_rule(rng, world)
            )
            .unwrap();
            out.names.push(name);
        } else if i < SUPPRESSIONS + rules + PERSON_AUDIENCES + COMPOSED_AUDIENCES {
            let name = format!("B2B_{theme}_Composed_{i:04}");
            let n = rng.range(2, 3) as usize;
            let from = rng.some(&rule_audiences, n);
            let from: Vec<String> = from.iter().map(|s| format!("\"{s}\"")).collect();
            writeln!(
                text,
                "[audience.{name}]\ndescription = \"composed {i}\"\ncompose.from = [{}]\ncompose.merge = \"{}\"",
                from.join(", "),
                rng.pick(&["union", "union", "intersection", "exclude_overlap"])
            )
            .unwrap();
            if rng.chance(70) {
                let n = rng.range(1, 2) as usize;
                let exclude = rng.some(&out.suppressions, n);
                let exclude: Vec<String> = exclude.iter().map(|s| format!("\"{s}\"")).collect();
                writeln!(text, "compose.exclude = [{}]", exclude.join(", ")).unwrap();
            }
            if rng.chance(30) {
                writeln!(
                    text,
                    "compose.exclude_rule = 'account.status == \"churned\"'"
                )
                .unwrap();
            }
            if rng.chance(40) {
                writeln!(
                    text,
                    "compose.rank = {{ by = \"account.{}\", order = \"desc\", limit = {} }}",
                    rng.pick(&["engagementScore", "recentVisits", "employees"]),
                    rng.pick(&[100, 500, 1000])
                )
                .unwrap();
            }
            text.push('\n');
            out.activatable.push(name.clone());
            out.names.push(name);
        } else {
            let name = format!("B2B_{theme}_Split_{i:04}");
            let from = rng.pick(&rule_audiences).clone();
            if i % 2 == 0 {
                let test = rng.pick(&[50, 80, 90]);
                writeln!(
                    text,
                    "[audience.{name}]\ncompose.from = [\"{from}\"]\ncompose.split = {{ percent = {{ test = {test}, control = {} }}, seed = \"bench-{i}\" }}\n",
                    100 - test
                )
                .unwrap();
                out.split_parts.push(format!("{name}.test"));
            } else {
                writeln!(
                    text,
                    "[audience.{name}]\ncompose.from = [\"{from}\"]\ncompose.split = {{ by = \"account.engagementTier\", parts = {{ high = [\"high\"], medium = [\"medium\"] }}, other = \"low\" }}\n"
                )
                .unwrap();
                out.split_parts.push(format!("{name}.high"));
            }
            out.names.push(name);
        }
    }
    for (file, text) in texts.into_iter().enumerate() {
        let theme = THEMES[file % THEMES.len()].to_ascii_lowercase();
        out.files
            .push((format!("audiences/{theme}/part_{file:02}.toml"), text));
    }
    out
}

/// The destination types generated, with how many of each.
const DESTINATION_MIX: &[(&str, usize)] = &[
    ("linkedin_companies", 20),
    ("marketo_engage", 15),
    ("salesforce", 15),
    ("google_customer_match", 15),
    ("s3", 15),
    ("filesystem", 20),
];

struct Destinations {
    files: Vec<(String, String)>,
    /// (name, type), in generation order.
    list: Vec<(String, &'static str)>,
}

fn destinations(rng: &mut Rng) -> Destinations {
    let mut out = Destinations {
        files: Vec::new(),
        list: Vec::new(),
    };
    debug_assert_eq!(
        DESTINATION_MIX.iter().map(|(_, n)| n).sum::<usize>(),
        DESTINATIONS
    );
    let mut n = 0;
    for &(ty, count) in DESTINATION_MIX {
        let mut text = String::new();
        for k in 0..count {
            n += 1;
            let name = format!("{ty}_{k:02}");
            let env = name.to_ascii_uppercase();
            writeln!(text, "[destination.{name}]\ntype = \"{ty}\"").unwrap();
            match ty {
                "linkedin_companies" => writeln!(
                    text,
                    "ad_account = \"urn:li:sponsoredAccount:{}\"\nclient_id = {{ env = \"{env}_CLIENT_ID\" }}\nclient_secret = {{ env = \"{env}_CLIENT_SECRET\" }}\nrefresh_token = {{ env = \"{env}_REFRESH_TOKEN\" }}",
                    5000 + n
                ),
                "marketo_engage" => writeln!(
                    text,
                    "munchkin_id = \"{}-ABC-{:03}\"\nclient_id = {{ env = \"{env}_CLIENT_ID\" }}\nclient_secret = {{ env = \"{env}_CLIENT_SECRET\" }}\nfields = [\"email\", \"company\", \"b2bTier\", \"jobTitle\"]",
                    100 + n,
                    n
                ),
                "salesforce" => writeln!(
                    text,
                    "domain = \"org{n}.my.salesforce.com\"\nobject = \"contact\"\nclient_id = {{ env = \"{env}_CLIENT_ID\" }}\nclient_secret = {{ env = \"{env}_CLIENT_SECRET\" }}\nfields = [\"Tier__c\", \"B2B_Audience_Status__c\"]\nactions = [\"sales_outreach\"]"
                ),
                "google_customer_match" => writeln!(
                    text,
                    "customer_id = \"123-456-{:04}\"\nservice_account = {{ env = \"{env}_SERVICE_ACCOUNT\" }}",
                    n
                ),
                "s3" => writeln!(
                    text,
                    "bucket = \"northwind-share-{k:02}\"\nprefix = \"exports/{k:02}/\"\nformat = \"{}\"\ncredentials = {{ profile = \"partner{k:02}\" }}\nactions = [\"export_to_third_party\"]",
                    rng.pick(&["csv", "jsonl", "parquet"])
                ),
                _ => writeln!(
                    text,
                    "path = \"out/exports/{k:02}\"\nformat = \"csv\"\nactions = [\"email_targeting\"]"
                ),
            }
            .unwrap();
            text.push('\n');
            out.list.push((name, ty));
        }
        out.files.push((format!("destinations/{ty}.toml"), text));
    }
    out
}

fn activations(
    rng: &mut Rng,
    audiences: &Audiences,
    destinations: &Destinations,
) -> (Vec<(String, String)>, usize) {
    let mut texts = vec![String::new(); ACTIVATION_FILES];
    for i in 0..ACTIVATIONS {
        let (destination, ty) = &destinations.list[i % destinations.list.len()];
        let text = &mut texts[i % ACTIVATION_FILES];
        let name = format!("act_{i:04}_{destination}");
        let files = matches!(*ty, "s3" | "filesystem");
        let count = if *ty == "salesforce" {
            1
        } else {
            rng.range(1, 4) as usize
        };
        let mut chosen: Vec<String> = rng
            .some(&audiences.activatable, count)
            .into_iter()
            .map(|s| format!("\"{s}\""))
            .collect();
        if *ty == "salesforce" {
            // A CRM holds one membership field per audience (P0110): each
            // Salesforce dataflow sends an audience of its own.
            let list = &audiences.activatable;
            chosen = vec![format!("\"{}\"", list[i % list.len()])];
        }
        if files && rng.chance(20) {
            chosen.push(format!("\"{}\"", rng.pick(&audiences.split_parts)));
        }
        writeln!(
            text,
            "[activation.{name}]\ndestination = \"{destination}\"\naudiences = [{}]",
            chosen.join(", ")
        )
        .unwrap();
        if rng.chance(60) {
            let n = rng.range(1, 2) as usize;
            let exclude: Vec<String> = rng
                .some(&audiences.suppressions, n)
                .into_iter()
                .map(|s| format!("\"{s}\""))
                .collect();
            writeln!(text, "exclude = [{}]", exclude.join(", ")).unwrap();
        }
        let hour = rng.range(0, 23);
        if files {
            // Full exports run at most daily (P0102).
            if rng.chance(50) {
                writeln!(text, "schedule = \"daily@{hour:02}:30\"").unwrap();
                writeln!(text, "export = \"{}\"", rng.pick(&["incremental", "full"])).unwrap();
            } else {
                writeln!(text, "schedule = \"every {}h\"", rng.pick(&[3, 6, 8, 12])).unwrap();
                writeln!(text, "export = \"incremental\"").unwrap();
            }
        } else {
            writeln!(
                text,
                "schedule = \"daily@{hour:02}:00\"\nexport = \"incremental\""
            )
            .unwrap();
        }
        let map: &[(&str, &str)] = match *ty {
            "linkedin_companies" => &[
                ("companyName", "account.name"),
                ("companyDomain", "account.domain"),
            ],
            "marketo_engage" => {
                text.push_str("people = 'person.email != \"\" && person.emailConsent == \"y\"'\n");
                &[
                    ("email", "person.email"),
                    ("company", "account.name"),
                    ("b2bTier", "account.engagementTier"),
                    ("jobTitle", "person.jobTitle"),
                ]
            }
            "salesforce" => {
                text.push_str("people = 'person.salesforceId != \"\"'\n");
                &[
                    ("salesforceId", "person.salesforceId"),
                    ("LastName", "person.lastName"),
                    ("Email", "person.email"),
                    ("Title", "person.jobTitle"),
                    ("Tier__c", "account.tier"),
                ]
            }
            "google_customer_match" => {
                text.push_str("people = 'person.email != \"\"'\n");
                &[("email_lc_sha256", "hash_email(person.email)")]
            }
            "s3" => &[
                ("account_id", "account.accountId"),
                ("domain", "account.domain"),
                ("industry", "account.industry"),
                ("employees", "string(account.employees)"),
            ],
            _ => {
                text.push_str("people = 'person.emailConsent == \"y\"'\n");
                &[
                    ("email", "person.email"),
                    ("first_name", "person.firstName"),
                    ("company", "account.name"),
                    ("score", "account.engagementScore"),
                ]
            }
        };
        writeln!(text, "[activation.{name}.map]").unwrap();
        for (column, expr) in map {
            writeln!(text, "{column} = \"{}\"", expr.replace('"', "\\\"")).unwrap();
        }
        text.push('\n');
    }
    let files = texts
        .into_iter()
        .enumerate()
        .map(|(k, text)| (format!("activations/dataflows_{k:02}.toml"), text))
        .collect();
    (files, ACTIVATIONS)
}
