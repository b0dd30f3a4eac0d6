//! A Marketo activity source: `[source.NAME] marketo = "DESTINATION"` with
//! `activity_types = [...]` in, the instance's lead activities of those
//! types typed into the source's event schema out, through the same
//! [`Builder`] as the files (so bad rows are counted and reported alike).
//!
//! The connection is the `marketo_engage` destination's: its `endpoint` or
//! `munchkin_id`, its `client_id` and `client_secret` references and its
//! rate limit. Every request goes through `deliver::read`: the
//! destination's throttle (shared with the run's deliveries to it), its
//! token cache and retries, each call counted in the store against the
//! destination's daily quota (not in a preview, whose store is read-only).
//!
//! Reading: the type names become ids (`activities/types.json`; a name the
//! instance does not have is R0014), then for each group of at most 10
//! types a paging token for [`since`] and the pages of `activities.json`
//! until `moreResult` is false.
//!
//! Fields (docs/destinations.md, "Marketo activity as a source"): each
//! schema field takes, by its name:
//! - `id`, `marketoGUID`, `leadId`, `activityDate`, `activityTypeId`,
//!   `campaignId`, `primaryAttributeValueId`, `primaryAttributeValue`: the
//!   activity's own value of that name;
//! - `activityType`: the name of the activity's type (`Open Email`);
//! - the field with `identity = "email"` (else a field named `email`): the
//!   email of the activity's lead;
//! - the `by` field of the schema's link to a person schema: the person's
//!   key;
//! - any other field: the activity attribute of that name, compared
//!   without case, spaces or punctuation (`isMobileDevice` is
//!   `Is Mobile Device`), or the type's primary attribute
//!   (`mailingId` is `Mailing ID`: the activity's `primaryAttributeValueId`).
//!
//! Values are typed as in JSON lines, strictly, with one exception: a
//! number or a boolean for a `string` field is its text (Marketo's ids are
//! numbers; schemas often keep ids as strings).
//!
//! People: activities carry lead ids. The lead ids the store recorded
//! from accord's upserts to the destination (the ledger's `remote_id`)
//! give the person's key and email directly; the emails of the other
//! leads are looked up in Marketo (`leads.json`, 300 ids a call), and
//! [`link_people`], once every source is read, finds their person by that
//! email among the person schema's rows (case-insensitive).
//!
//! Memory: the pages go to a file as they come ([`Activities`]) and are
//! typed from it once the leads are known, a batch at a time into a spill
//! file the engine streams, as a text source's rows are; linking by email
//! reads the people a batch at a time and fills the activities' people as
//! the engine reads them ([`WithPeople`]). Held: a map per lead and one per
//! person email, never the activities or the people's rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use serde_json::Value;

use super::freshness::judge_found;
use super::spill::Spill;
use super::typing::{Builder, Cell, arrow_schema, from_json, from_text};
use super::{Loaded, ReadContext, judge, present_fields};
use crate::deliver::read::{CallsOnly, ReadError, ReadFailure, Reader};
use crate::deliver::send::SendOptions;
use crate::deliver::storage::StorageErrorKind;
use crate::deliver::vendors::marketo_activities::{
    self as api, ActivityApi, ActivityType, MAX_LEADS_PER_CALL, MAX_TYPES_PER_CALL,
};
use crate::deliver::{Config, WireRequest, WireResponse};
use crate::plan::{
    FieldPlan, LinkPlan, MarketoSourcePlan, Plan, SchemaClass, SchemaPlan, SourcePlan,
};
use crate::run::error::RunError;
use crate::run::report::MarketoReport;
use crate::time::{self, Micros};

/// How far back a Marketo source reads from the evaluation time: 90 days.
pub const LOOKBACK_DAYS: i64 = 90;

const DAY: Micros = 86_400_000_000;

/// Where reading starts (`sinceDatetime`): `now` minus [`LOOKBACK_DAYS`].
/// The one place the start is decided, so that an append-only source can
/// start from the newest activity it remembers instead.
pub fn since(cx: &ReadContext<'_>, _source: &SourcePlan) -> Micros {
    cx.now - LOOKBACK_DAYS * DAY
}

/// The activity values every activity carries under these names.
const ACTIVITY_FIELDS: &[&str] = &[
    "id",
    "marketoGUID",
    "leadId",
    "activityDate",
    "activityTypeId",
    "campaignId",
    "primaryAttributeValueId",
    "primaryAttributeValue",
];

/// The field that holds the activity type's name.
const TYPE_NAME: &str = "activityType";

/// What one schema field takes from an activity.
#[derive(Clone, Debug, PartialEq)]
enum Take {
    Activity(&'static str),
    TypeName,
    Email,
    /// The key of the activity's person.
    Person,
    /// An attribute, by its name without case, spaces or punctuation.
    Attribute(String),
}

/// The lead of an activity, as far as it is known.
#[derive(Clone, Debug, Default)]
struct Lead {
    person: Option<String>,
    email: Option<String>,
}

pub(super) fn read(
    cx: &ReadContext<'_>,
    name: &str,
    source: &SourcePlan,
    marketo: &MarketoSourcePlan,
    schema: &SchemaPlan,
) -> Result<Loaded, RunError> {
    let failed = |reason: String| RunError::Source {
        source: name.to_string(),
        reason,
    };
    let destination = cx
        .plan
        .destinations
        .get(&marketo.destination)
        .ok_or_else(|| {
            failed(format!(
                "`marketo = \"{}\"` names no destination",
                marketo.destination
            ))
        })?;
    if destination.ty != "marketo_engage" {
        return Err(failed(format!(
            "`marketo = \"{}\"` names a {} destination, not a marketo_engage one",
            marketo.destination, destination.ty
        )));
    }
    let mut config = Config::from_plan(
        &marketo.destination,
        destination,
        crate::run::api::rate_limits(destination),
    );
    let activity_api = ActivityApi::new(&config).map_err(failed)?;
    let instance = activity_api.instance().to_string();
    let access = |kind: StorageErrorKind, reason: String| RunError::SourceAccess {
        source: name.to_string(),
        location: instance.clone(),
        kind,
        reason,
    };
    // Reading is not sending: a dry run and a preview read with the real
    // credentials too.
    config.secrets = crate::deliver::secrets::resolve(&destination.settings, cx.root)
        .map_err(|e| access(StorageErrorKind::Denied, e))?;
    let vendor = crate::deliver::vendors::build(&config).map_err(failed)?;
    let day = crate::run::api::quota_day(&destination.ty, cx.now);
    let used_today = match cx.store {
        Some(store) => store
            .calls_used(&marketo.destination, &day)
            .map_err(|e| failed(e.to_string()))?,
        None => 0,
    };
    let throttle = cx
        .throttles
        .get(&marketo.destination, &config.limits, used_today);
    let store = cx.store.filter(|_| cx.remember);
    let mut calls = CallsOnly(|destination: &str| match store {
        Some(store) => store
            .add_calls(destination, &day, 1)
            .map_err(|e| e.to_string()),
        None => Ok(()),
    });
    let options = SendOptions::default();
    let mut reader = Reader::new(vendor.as_ref(), &config, &throttle, &mut calls, &options)
        .map_err(|e| failed(e.message))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(format!("the reading runtime cannot start: {e}")))?;
    let since = since(cx, source);
    let mut report = MarketoReport {
        instance: instance.clone(),
        since: time::format_timestamp(since),
        ..MarketoReport::default()
    };
    let stopped = |e: ReadError| match e.failure {
        ReadFailure::Unreachable => access(StorageErrorKind::Unreachable, e.message),
        ReadFailure::Denied => access(StorageErrorKind::Denied, e.message),
        ReadFailure::Quota | ReadFailure::Failed => access(StorageErrorKind::Other, e.message),
    };
    let (types, mut activities) = runtime
        .block_on(async {
            let types = api::parse_types(&reader.get(activity_api.types_request()).await?)
                .map_err(failed_read)?;
            let wanted = wanted_types(name, &instance, marketo, &types)?;
            report.activity_types = wanted.iter().map(|t| (t.name.clone(), t.id)).collect();
            let ids: Vec<i64> = wanted.iter().map(|t| t.id).collect();
            let mut activities = Activities::new(cx.root, name);
            for group in ids.chunks(MAX_TYPES_PER_CALL) {
                read_pages(
                    &mut reader,
                    &activity_api,
                    group,
                    since,
                    &mut activities,
                    &mut report,
                )
                .await?;
            }
            Ok::<_, Stop>((types, activities))
        })
        .map_err(|stop| match stop {
            Stop::Read(e) => stopped(e),
            Stop::Run(e) => *e,
        })?;

    let lead_ids = std::mem::take(&mut activities.lead_ids);
    report.leads = lead_ids.len() as u64;
    let mut leads = known_leads(cx, &marketo.destination, &lead_ids).map_err(failed)?;
    report.leads_from_store = leads.len() as u64;
    let unknown: Vec<i64> = lead_ids
        .iter()
        .filter(|id| !leads.contains_key(id))
        .copied()
        .collect();
    report.leads_looked_up = unknown.len() as u64;
    let fetched = runtime
        .block_on(look_up_leads(&mut reader, &activity_api, &unknown))
        .map_err(|stop| match stop {
            Stop::Read(e) => stopped(e),
            Stop::Run(e) => *e,
        })?;
    report.leads_without_email = unknown
        .iter()
        .filter(|id| fetched.get(id).is_none_or(Option::is_none))
        .count() as u64;
    for (id, email) in fetched {
        leads.insert(
            id,
            Lead {
                person: None,
                email,
            },
        );
    }
    report.calls = reader.calls();
    report.throttle_wait_ms = reader.waited().as_millis() as u64;
    drop(reader);

    let types: HashMap<i64, &ActivityType> = types.iter().map(|t| (t.id, t)).collect();
    let takes = takes(cx.plan, schema);
    let mut b = Builder::new(&source.schema, schema);
    b.source = name.to_string();
    // Typed rows go to a spill file a batch at a time, as a text source's
    // do, and the engine streams it.
    if cx.stream {
        b.spill = Some(Spill::new((cx.root, name), (source, schema), cx.now));
    }
    // The fields the mapping defines are the source's whether or not an
    // activity has a value; an attribute only once an activity carries it.
    let mut present: Vec<bool> = takes
        .iter()
        .map(|t| !matches!(t, Take::Attribute(_)))
        .collect();
    report.activities = activities.count;
    activities
        .each(|activity| row(&mut b, &mut present, &takes, activity, &types, &leads))
        .map_err(failed)?;
    if let Some(e) = b.spill_failed.take() {
        return Err(failed(e));
    }
    let spill = b.spill.take();
    let (columns, mut source_report, mut diagnostics) = b.finish();
    let present = present_fields(schema, &present);
    let (batches, streams) = match spill {
        Some(spill) => {
            let (rows, found) = spill.finish(columns).map_err(failed)?;
            judge_found(
                &mut source_report,
                &mut diagnostics,
                name,
                (source, schema),
                found,
                None,
                cx.now,
            );
            rows.into_tables()
        }
        None => {
            let batch = RecordBatch::try_new(arrow_schema(schema), columns)
                .map_err(|e| failed(e.to_string()))?;
            judge(
                &mut source_report,
                &mut diagnostics,
                name,
                (source, schema),
                std::slice::from_ref(&batch),
                None,
                cx.now,
            );
            (vec![batch], Vec::new())
        }
    };
    source_report.marketo = Some(report);
    Ok(Loaded {
        batches,
        streams,
        ..Loaded::of(name, source, present, source_report, diagnostics)
    })
}

/// The activities read, as the pages come: written to a file of JSON
/// lines under `.accord/tmp/` (removed with this value) and read back one
/// at a time once their leads are known, so that no step holds them all;
/// held only where no folder can be made (a read-only project). Their
/// leads' ids are gathered as they come: the leads are looked up once
/// every page is read, in as few calls as the ids allow.
struct Activities {
    /// The source's name, for errors.
    source: String,
    sink: Sink,
    count: u64,
    lead_ids: BTreeSet<i64>,
}

enum Sink {
    File {
        writer: std::io::BufWriter<std::fs::File>,
        path: std::path::PathBuf,
        _folder: std::sync::Arc<tempfile::TempDir>,
    },
    Held(Vec<Value>),
}

impl Activities {
    fn new(root: &std::path::Path, name: &str) -> Activities {
        let file = super::run_folder(root, name).and_then(|folder| {
            let path = folder.path().join("activities.jsonl");
            let file = std::fs::File::create(&path).ok()?;
            Some(Sink::File {
                writer: std::io::BufWriter::new(file),
                path,
                _folder: folder,
            })
        });
        Activities {
            source: name.to_string(),
            sink: file.unwrap_or(Sink::Held(Vec::new())),
            count: 0,
            lead_ids: BTreeSet::new(),
        }
    }

    /// A page's activities, after those of the pages before.
    fn extend(&mut self, page: Vec<Value>) -> Result<(), RunError> {
        use std::io::Write as _;
        for activity in page {
            if let Some(lead) = activity.get("leadId").and_then(Value::as_i64) {
                self.lead_ids.insert(lead);
            }
            self.count += 1;
            match &mut self.sink {
                Sink::File { writer, path, .. } => serde_json::to_writer(&mut *writer, &activity)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writer.write_all(b"\n"))
                    .map_err(|e| RunError::Source {
                        source: self.source.clone(),
                        reason: format!("{}: {e}", path.display()),
                    })?,
                Sink::Held(held) => held.push(activity),
            }
        }
        Ok(())
    }

    /// Each activity, in the order read.
    fn each(self, mut f: impl FnMut(&Value)) -> Result<(), String> {
        use std::io::BufRead as _;
        let (writer, path) = match self.sink {
            Sink::Held(held) => {
                held.iter().for_each(f);
                return Ok(());
            }
            Sink::File { writer, path, .. } => (writer, path),
        };
        let failed = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        writer.into_inner().map_err(|e| failed(e.error()))?;
        let file = std::fs::File::open(&path).map_err(|e| failed(&e))?;
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| failed(&e))?;
            let activity: Value = serde_json::from_str(&line).map_err(|e| failed(&e))?;
            f(&activity);
        }
        Ok(())
    }
}

/// Why reading stopped: the API, or the source itself.
enum Stop {
    Read(ReadError),
    Run(Box<RunError>),
}

impl From<ReadError> for Stop {
    fn from(e: ReadError) -> Stop {
        Stop::Read(e)
    }
}

impl From<RunError> for Stop {
    fn from(e: RunError) -> Stop {
        Stop::Run(Box::new(e))
    }
}

/// An answer the parsers do not accept: Marketo failed the read.
fn failed_read(message: String) -> Stop {
    Stop::Read(ReadError {
        failure: ReadFailure::Failed,
        message,
    })
}

/// The instance's types the source names, in the source's order; R0014
/// for names the instance does not have.
fn wanted_types(
    source: &str,
    instance: &str,
    marketo: &MarketoSourcePlan,
    types: &[ActivityType],
) -> Result<Vec<ActivityType>, RunError> {
    let mut wanted = Vec::new();
    let mut unknown = Vec::new();
    for name in &marketo.activity_types {
        match types.iter().find(|t| &t.name == name) {
            Some(t) if !wanted.contains(t) => wanted.push(t.clone()),
            Some(_) => {}
            None => unknown.push(name.clone()),
        }
    }
    if !unknown.is_empty() {
        let mut known: Vec<String> = types.iter().map(|t| t.name.clone()).collect();
        known.sort();
        return Err(RunError::ActivityTypes {
            source: source.to_string(),
            instance: instance.to_string(),
            unknown,
            known,
        });
    }
    Ok(wanted)
}

/// Every page of the activities of `group` (at most 10 types) since `since`.
async fn read_pages(
    reader: &mut Reader<'_>,
    activity_api: &ActivityApi,
    group: &[i64],
    since: Micros,
    activities: &mut Activities,
    report: &mut MarketoReport,
) -> Result<(), Stop> {
    let start = activity_api.paging_token_request(&time::format_timestamp(since));
    let mut token = api::parse_paging_token(&reader.get(start).await?).map_err(failed_read)?;
    loop {
        let request = activity_api
            .activities_request(&token, group)
            .map_err(failed_read)?;
        let page = api::parse_activities(&get(reader, request).await?).map_err(failed_read)?;
        report.pages += 1;
        activities.extend(page.activities)?;
        match page.next_page_token {
            Some(next) if page.more_result => {
                if next == token {
                    return Err(failed_read(
                        "Marketo said there are more activities but gave the same nextPageToken again"
                            .into(),
                    ));
                }
                token = next;
            }
            _ => return Ok(()),
        }
    }
}

async fn get(reader: &mut Reader<'_>, request: WireRequest) -> Result<WireResponse, Stop> {
    Ok(reader.get(request).await?)
}

/// The leads among `ids` that the store knows from accord's upserts to
/// `destination`: the person each was upserted for, and the email it was
/// upserted with. A lead upserted for several people (one email) links to
/// the first in key order.
fn known_leads(
    cx: &ReadContext<'_>,
    destination: &str,
    ids: &BTreeSet<i64>,
) -> Result<BTreeMap<i64, Lead>, String> {
    let mut known = BTreeMap::new();
    let Some(store) = cx.store else {
        return Ok(known);
    };
    for (activation, plan) in &cx.plan.activations {
        if plan.destination != destination {
            continue;
        }
        for member in store
            .remote_members(activation)
            .map_err(|e| e.to_string())?
        {
            let Some(id) = member
                .remote_id
                .parse::<i64>()
                .ok()
                .filter(|id| ids.contains(id))
            else {
                continue;
            };
            let email = member
                .payload
                .as_deref()
                .and_then(|p| serde_json::from_slice::<Value>(p).ok())
                .and_then(|p| p.get("email").and_then(Value::as_str).map(str::to_string));
            let lead = Lead {
                person: Some(member.member),
                email,
            };
            match known.entry(id) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(lead);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    if lead.person < e.get().person {
                        e.insert(lead);
                    }
                }
            }
        }
    }
    Ok(known)
}

/// The email of each of `ids` that Marketo still has (`None`: no email).
async fn look_up_leads(
    reader: &mut Reader<'_>,
    activity_api: &ActivityApi,
    ids: &[i64],
) -> Result<BTreeMap<i64, Option<String>>, Stop> {
    let mut found = BTreeMap::new();
    for chunk in ids.chunks(MAX_LEADS_PER_CALL) {
        let request = activity_api.leads_request(chunk).map_err(failed_read)?;
        let leads = api::parse_leads(&get(reader, request).await?).map_err(failed_read)?;
        found.extend(leads);
    }
    Ok(found)
}

/// What each field of the schema takes from an activity, in schema order.
fn takes(plan: &Plan, schema: &SchemaPlan) -> Vec<Take> {
    let email_identity = schema
        .fields
        .iter()
        .any(|(_, f)| f.identity.as_deref() == Some("email"));
    let person_keys: BTreeSet<&str> = schema
        .links
        .values()
        .filter(|l| {
            plan.schemas
                .get(&l.to)
                .is_some_and(|s| s.class == SchemaClass::Person)
        })
        .filter_map(|l| l.by.as_deref())
        .collect();
    schema
        .fields
        .iter()
        .map(|(name, field)| {
            let is_email = if email_identity {
                field.identity.as_deref() == Some("email")
            } else {
                name == "email"
            };
            if is_email {
                Take::Email
            } else if person_keys.contains(name.as_str()) {
                Take::Person
            } else if let Some(top) = ACTIVITY_FIELDS.iter().copied().find(|f| *f == name) {
                Take::Activity(top)
            } else if name == TYPE_NAME {
                Take::TypeName
            } else {
                Take::Attribute(squash(name))
            }
        })
        .collect()
}

/// A name without case, spaces or punctuation: how field names meet
/// Marketo's attribute names.
fn squash(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Types one activity into the builder, or counts it as a bad row.
fn row(
    b: &mut Builder<'_>,
    present: &mut [bool],
    takes: &[Take],
    activity: &Value,
    types: &HashMap<i64, &ActivityType>,
    leads: &BTreeMap<i64, Lead>,
) {
    let id = activity
        .get("marketoGUID")
        .or_else(|| activity.get("id"))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "?".into());
    let at = format!("activity {id}");
    let kind = activity
        .get("activityTypeId")
        .and_then(Value::as_i64)
        .and_then(|t| types.get(&t));
    let lead = activity
        .get("leadId")
        .and_then(Value::as_i64)
        .and_then(|l| leads.get(&l));
    let schema = b.schema;
    let names = b.names().to_vec();
    let mut cells = Vec::with_capacity(takes.len());
    for (i, take) in takes.iter().enumerate() {
        let name = names[i];
        let field = &schema.fields[name];
        let value = match take {
            Take::Activity(key) => activity.get(*key).cloned(),
            Take::TypeName => kind.map(|t| Value::String(t.name.clone())),
            Take::Email => Some(
                lead.and_then(|l| l.email.clone())
                    .map_or(Value::Null, Value::String),
            ),
            Take::Person => {
                match lead.and_then(|l| l.person.as_deref()) {
                    // The person's key is text in the store: typed as text.
                    Some(key) => match from_text(key, field) {
                        Ok(cell) => {
                            cells.push(cell);
                            continue;
                        }
                        Err(e) => return b.bad(&at, format!("`{name}`: {e}")),
                    },
                    None => Some(Value::Null),
                }
            }
            Take::Attribute(squashed) => attribute(activity, kind, squashed),
        };
        let Some(value) = value else {
            cells.push(Cell::Null);
            continue;
        };
        present[i] = true;
        match typed(&value, field) {
            Ok(cell) => cells.push(cell.into_owned()),
            Err(e) => return b.bad(&at, format!("`{name}`: {e}")),
        }
    }
    b.row(|| at.clone(), cells);
}

/// The attribute of an activity whose squashed name is `squashed`, else
/// the primary attribute's id when the type's primary attribute has it.
fn attribute(activity: &Value, kind: Option<&&ActivityType>, squashed: &str) -> Option<Value> {
    let found = activity
        .get("attributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| {
            a.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| squash(n) == squashed)
        })
        .and_then(|a| a.get("value").cloned());
    found.or_else(|| {
        let primary = kind?.primary_attribute.as_deref()?;
        (squash(primary) == squashed)
            .then(|| activity.get("primaryAttributeValueId").cloned())
            .flatten()
    })
}

/// A JSON value as the field's type, as in JSON lines; a number or a
/// boolean for a string field is its text.
fn typed<'v>(value: &'v Value, field: &FieldPlan) -> Result<Cell<'v>, String> {
    match (field.ty.as_str(), value) {
        ("string", Value::Number(_) | Value::Bool(_)) => Ok(Cell::Str(value.to_string().into())),
        _ => from_json(value, field),
    }
}

/// Links the activities of every Marketo source whose person is not known
/// from the store to the person whose email is their lead's email
/// (case-insensitive), among the rows of the person schema the link names.
/// Runs once every source is read; updates the sources' reports. A source
/// held in batches gets new batches; a streamed one is read once here to
/// count what links, and its streams fill each batch as the engine reads
/// it ([`WithPeople`]).
pub fn link_people(plan: &Plan, loaded: &mut [Loaded]) -> Result<(), String> {
    for i in 0..loaded.len() {
        let Some(source) = plan.sources.get(&loaded[i].name) else {
            continue;
        };
        if source.marketo.is_none() {
            continue;
        }
        let Some(schema) = plan.schemas.get(&source.schema) else {
            continue;
        };
        let Some((email_field, link)) = email_link(plan, schema) else {
            let mut unlinked = 0;
            loaded[i].each_batch(|batch| {
                unlinked += batch.num_rows() as u64;
                Ok(())
            })?;
            if let Some(m) = loaded[i].report.marketo.as_mut() {
                m.unlinked = unlinked;
            }
            continue;
        };
        let by = link.by.clone().unwrap_or_default();
        let people = std::sync::Arc::new(emails_of_people(plan, &link.to, loaded)?);
        let l = &mut loaded[i];
        let (mut linked, mut unlinked) = (0u64, 0u64);
        let mut batches = Vec::with_capacity(l.batches.len());
        l.each_batch(|batch| {
            let (batch, n) = fill_people(batch, email_field, &by, &people)?;
            linked += n;
            unlinked += batch
                .column_by_name(&by)
                .map_or(batch.num_rows(), |c| c.null_count()) as u64;
            batches.push(batch);
            Ok(())
        })?;
        if l.streams.is_empty() {
            l.batches = batches;
        } else {
            drop(batches);
            l.streams = std::mem::take(&mut l.streams)
                .into_iter()
                .map(|inner| {
                    std::sync::Arc::new(WithPeople {
                        inner,
                        email: email_field.to_string(),
                        by: by.clone(),
                        people: people.clone(),
                    }) as std::sync::Arc<dyn crate::run::engine::Scan>
                })
                .collect();
        }
        if let Some(m) = l.report.marketo.as_mut() {
            m.linked_by_email = linked;
            m.unlinked = unlinked;
        }
    }
    Ok(())
}

/// A streamed Marketo source's rows with their people filled in by email
/// ([`fill_people`]), a batch at a time on every scan.
struct WithPeople {
    inner: std::sync::Arc<dyn crate::run::engine::Scan>,
    email: String,
    by: String,
    people: std::sync::Arc<People>,
}

impl std::fmt::Debug for WithPeople {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithPeople")
            .field("inner", &self.inner)
            .field("people", &self.people.len())
            .finish()
    }
}

impl PartitionStream for WithPeople {
    fn schema(&self) -> &SchemaRef {
        self.inner.schema()
    }

    fn execute(&self, ctx: std::sync::Arc<TaskContext>) -> SendableRecordBatchStream {
        use futures_util::StreamExt as _;
        let (email, by, people) = (self.email.clone(), self.by.clone(), self.people.clone());
        let filled = self.inner.execute(ctx).map(move |batch| {
            let (batch, _) = fill_people(&batch?, &email, &by, &people)
                .map_err(datafusion::error::DataFusionError::Execution)?;
            Ok(batch)
        });
        Box::pin(RecordBatchStreamAdapter::new(
            self.inner.schema().clone(),
            filled,
        ))
    }
}

/// Scanned as a whole (the default): filling a batch's people reads its
/// email column, which a query's columns may not hold.
impl crate::run::engine::Scan for WithPeople {}

/// The person schemas whose rows [`link_people`] reads: those that some
/// Marketo source's activities link to by email. accord reads them itself
/// (Spark does not read them into its own table), streamed or held, so
/// that their emails can be read once every source is.
pub fn people_linked_by_email(plan: &Plan) -> BTreeSet<&str> {
    plan.sources
        .values()
        .filter(|source| source.marketo.is_some())
        .filter_map(|source| plan.schemas.get(&source.schema))
        .filter_map(|schema| email_link(plan, schema))
        .map(|(_, link)| link.to.as_str())
        .collect()
}

/// What linking the activities of a Marketo source of `schema` by email
/// needs: the field that holds the lead's email, and the link to people
/// whose key field it fills.
fn email_link<'p>(plan: &Plan, schema: &'p SchemaPlan) -> Option<(&'p str, &'p LinkPlan)> {
    let fields: Vec<(&'p str, Take)> = schema
        .fields
        .keys()
        .map(String::as_str)
        .zip(takes(plan, schema))
        .collect();
    let email = fields.iter().find(|(_, t)| *t == Take::Email)?.0;
    let link = schema.links.values().find(|l| {
        l.by.as_deref()
            .is_some_and(|by| fields.iter().any(|(n, t)| *n == by && *t == Take::Person))
    })?;
    Some((email, link))
}

/// Person keys by lower-cased email (`None`: an email two people share).
type People = HashMap<String, Option<String>>;

/// Person keys by lower-cased email, from every source of the person
/// schema `person`, read a batch at a time; an email two people share
/// links to neither. Holds an entry per person with an email: the two
/// columns the link needs, not the people's rows.
fn emails_of_people(plan: &Plan, person: &str, loaded: &[Loaded]) -> Result<People, String> {
    let mut out = People::new();
    let Some(schema) = plan.schemas.get(person) else {
        return Ok(out);
    };
    let (Some(key), Some(email)) = (
        schema.key.as_deref(),
        schema
            .fields
            .iter()
            .find(|(_, f)| f.identity.as_deref() == Some("email"))
            .map(|(n, _)| n.as_str()),
    ) else {
        return Ok(out);
    };
    for l in loaded.iter().filter(|l| l.schema == person) {
        l.each_batch(|batch| {
            let (Some(keys), Some(emails)) = (text_column(batch, key)?, text_column(batch, email)?)
            else {
                return Ok(());
            };
            for row in 0..batch.num_rows() {
                if keys.is_null(row) || emails.is_null(row) {
                    continue;
                }
                let email = emails.value(row).trim().to_lowercase();
                let key = keys.value(row).to_string();
                out.entry(email)
                    .and_modify(|k| {
                        if k.as_deref() != Some(key.as_str()) {
                            *k = None;
                        }
                    })
                    .or_insert(Some(key));
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// A column as text (keys may be ints), `None` when the batch lacks it.
fn text_column(batch: &RecordBatch, name: &str) -> Result<Option<StringArray>, String> {
    let Some(column) = batch.column_by_name(name) else {
        return Ok(None);
    };
    let text =
        datafusion::arrow::compute::cast(column, &datafusion::arrow::datatypes::DataType::Utf8)
            .map_err(|e| e.to_string())?;
    Ok(Some(text.as_string::<i32>().clone()))
}

/// The batch with `by` filled where it is null and the email names one
/// person; how many rows were filled.
fn fill_people(
    batch: &RecordBatch,
    email_field: &str,
    by: &str,
    people: &People,
) -> Result<(RecordBatch, u64), String> {
    let (Some(emails), Some(index)) = (
        text_column(batch, email_field)?,
        batch.schema().index_of(by).ok(),
    ) else {
        return Ok((batch.clone(), 0));
    };
    let current = batch.column(index);
    let target_type = current.data_type().clone();
    let current_text = text_column(batch, by)?.expect("the column exists");
    let mut filled = 0u64;
    let values: StringArray = (0..batch.num_rows())
        .map(|row| {
            if !current_text.is_null(row) {
                return Some(current_text.value(row).to_string());
            }
            if emails.is_null(row) {
                return None;
            }
            let key = people
                .get(&emails.value(row).trim().to_lowercase())
                .cloned()
                .flatten();
            filled += u64::from(key.is_some());
            key
        })
        .collect();
    if filled == 0 {
        return Ok((batch.clone(), 0));
    }
    let column: ArrayRef =
        datafusion::arrow::compute::cast(&values, &target_type).map_err(|e| e.to_string())?;
    let mut columns = batch.columns().to_vec();
    columns[index] = column;
    let batch = RecordBatch::try_new(batch.schema(), columns).map_err(|e| e.to_string())?;
    Ok((batch, filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_meet_attributes_without_case_or_spaces() {
        assert_eq!(squash("Is Mobile Device"), squash("isMobileDevice"));
        assert_eq!(squash("Mailing ID"), "mailingid");
        let kind = ActivityType {
            id: 10,
            name: "Open Email".into(),
            primary_attribute: Some("Mailing ID".into()),
        };
        let activity = serde_json::json!({
            "id": 7, "primaryAttributeValueId": 1021,
            "attributes": [{"name": "Is Mobile Device", "value": true}]
        });
        assert_eq!(
            attribute(&activity, Some(&&kind), "ismobiledevice"),
            Some(Value::Bool(true))
        );
        assert_eq!(
            attribute(&activity, Some(&&kind), "mailingid"),
            Some(serde_json::json!(1021))
        );
        assert_eq!(attribute(&activity, Some(&&kind), "device"), None);
    }

    #[test]
    fn numbers_are_text_for_string_fields_only() {
        let field = |ty: &str| FieldPlan {
            ty: ty.into(),
            values: None,
            identity: None,
            labels: vec![],
        };
        assert_eq!(
            typed(&serde_json::json!(102988), &field("string")),
            Ok(Cell::Str("102988".into()))
        );
        assert_eq!(
            typed(&serde_json::json!(5), &field("int")),
            Ok(Cell::Int(5))
        );
        assert!(typed(&serde_json::json!("five"), &field("int")).is_err());
    }
}
