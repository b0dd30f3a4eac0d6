//! A source's freshness: its newest record, what that time was read from,
//! and whether it is older than the source's `max_age` at the run's `now`.
//!
//! The basis, in order: the source's `freshness_column`; else the schema's
//! event time field (`timestamp = "..."` of an event schema); else every
//! timestamp field of the schema (the one holding the newest value names
//! the basis); else, when the data holds no such time, the newest
//! modification time of the source's objects (always) or local files (only
//! for a source with `max_age`: a time no row carries is shown only where
//! it is judged).
//!
//! A time later than `now` is no record of the past: it is left out of the
//! newest record (a clock or time zone error upstream would otherwise keep
//! a source "fresh" forever) and reported per field as R0020, with how
//! many rows carry one and the latest of them.
//!
//! Every kind of source (files, objects, PostgreSQL, Marketo) ends its read
//! in [`judge`]. Input: the source's typed batches. Pure.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, TimestampMicrosecondArray};
use datafusion::arrow::record_batch::RecordBatch;

use crate::diag::codes;
use crate::plan::{SchemaPlan, SourcePlan};
use crate::run::report::{FutureTimestamps, RunDiagnostic, SourceReport};
use crate::time::{self, Micros};

/// A modification time to judge freshness on when no row carries one.
pub(super) struct Modified {
    pub at: Micros,
    /// `file modification time` or `object modification time`.
    pub basis: &'static str,
}

/// The newest judged time of a source's batches, and the times later than
/// `now` found on the way.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Newest {
    /// The newest time at or before `now`, and the field holding it.
    pub(super) newest: Option<(Micros, String)>,
    /// Per field: rows later than `now`, and the latest of them.
    pub(super) future: BTreeMap<String, (u64, Micros)>,
}

impl Newest {
    pub(super) fn of(
        batches: &[RecordBatch],
        schema: &SchemaPlan,
        source: &SourcePlan,
        now: Micros,
    ) -> Self {
        let mut out = Newest {
            newest: None,
            future: BTreeMap::new(),
        };
        let column = source.freshness_column.as_deref();
        for name in schema
            .fields
            .keys()
            .filter(|n| judges_freshness(schema, column, n))
        {
            for batch in batches {
                let Some(col) = batch
                    .column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
                else {
                    continue;
                };
                let mut newest: Option<Micros> = None;
                for (i, &t) in col.values().iter().enumerate() {
                    if !col.is_valid(i) {
                        continue;
                    }
                    if t > now {
                        let entry = out.future.entry(name.clone()).or_insert((0, t));
                        entry.0 += 1;
                        entry.1 = entry.1.max(t);
                    } else {
                        newest = Some(newest.map_or(t, |n| n.max(t)));
                    }
                }
                if let Some(t) = newest
                    && out.newest.as_ref().is_none_or(|(n, _)| t > *n)
                {
                    out.newest = Some((t, name.clone()));
                }
            }
        }
        out
    }
}

impl Newest {
    /// What `of` finds over the batches of both (`self`'s first): the
    /// newest time, the first field in schema (name) order on a tie, and
    /// the future times of both.
    pub(super) fn merge(&mut self, other: Newest) {
        if let Some((t, field)) = other.newest
            && self
                .newest
                .as_ref()
                .is_none_or(|(n, f)| t > *n || (t == *n && field < *f))
        {
            self.newest = Some((t, field));
        }
        for (field, (rows, latest)) in other.future {
            let entry = self.future.entry(field).or_insert((0, latest));
            entry.0 += rows;
            entry.1 = entry.1.max(latest);
        }
    }

    /// Nothing found.
    pub(super) fn none() -> Newest {
        Newest {
            newest: None,
            future: BTreeMap::new(),
        }
    }
}

/// Whether freshness reads field `name`: the source's `freshness_column`
/// when it has one, else the event time of an event schema, else every
/// timestamp field.
pub(super) fn judges_freshness(schema: &SchemaPlan, column: Option<&str>, name: &str) -> bool {
    match (column, &schema.timestamp) {
        (Some(column), _) => column == name,
        (None, Some(t)) => t == name,
        (None, None) => schema.fields.get(name).is_some_and(|f| f.ty == "timestamp"),
    }
}

/// What the newest time of field `name` says of the source, as the report
/// names it.
fn field_basis(schema: &SchemaPlan, source: &SourcePlan, name: &str) -> String {
    if source.freshness_column.is_some() {
        format!("column {name}")
    } else if schema.timestamp.as_deref() == Some(name) {
        format!("event time field {name}")
    } else {
        format!("timestamp field {name}")
    }
}

/// Records the newest judged time of a source in its report, what it was
/// read from, and the source's freshness at `now`; times later than `now`
/// become R0020 in `diagnostics`. `modified`: the newest modification time
/// of the source's files or objects, judged on when no row has a time.
pub(super) fn judge(
    report: &mut SourceReport,
    diagnostics: &mut Vec<RunDiagnostic>,
    name: &str,
    (source, schema): (&SourcePlan, &SchemaPlan),
    batches: &[RecordBatch],
    modified: Option<Modified>,
    now: Micros,
) {
    let found = Newest::of(batches, schema, source, now);
    judge_found(
        report,
        diagnostics,
        name,
        (source, schema),
        found,
        modified,
        now,
    );
}

/// [`judge`], from the timestamps already found (an engine that holds the
/// rows computed them).
pub(super) fn judge_found(
    report: &mut SourceReport,
    diagnostics: &mut Vec<RunDiagnostic>,
    name: &str,
    (source, schema): (&SourcePlan, &SchemaPlan),
    found: Newest,
    modified: Option<Modified>,
    now: Micros,
) {
    let (newest, basis) = match (found.newest, modified) {
        (Some((t, field)), _) => (Some(t), Some(field_basis(schema, source, &field))),
        (None, Some(m)) => (Some(m.at), Some(m.basis.to_string())),
        (None, None) => (None, None),
    };
    report.newest = newest.map(time::format_timestamp);
    report.freshness_basis = basis;
    report.freshness = freshness(source, newest, now).into();
    for (field, (rows, latest)) in found.future {
        let latest = time::format_timestamp(latest);
        let mut d = RunDiagnostic::new(
            codes::run::FUTURE_TIMESTAMPS,
            format!(
                "source `{name}`: {rows} row{} {} `{field}` later than the run's time {}, the latest {latest}: left out of the source's newest record",
                if rows == 1 { "" } else { "s" },
                if rows == 1 { "has" } else { "have" },
                time::format_timestamp(now),
            ),
        )
        .help(
            "check the clock and time zone of the system that writes the data (a time without an offset is read as UTC); \
             the rows are still read and evaluated",
        );
        if let Some(file) = report.files.first() {
            d = d.at(file.clone());
        }
        diagnostics.push(d);
        report.future_timestamps.push(FutureTimestamps {
            field,
            rows,
            latest,
        });
    }
}

/// How fresh a source is whose newest judged time is `newest`: `stale`
/// when it is older than `max_age` at `now`, `fresh`, or `unknown` (no
/// `max_age`, or no time to judge). Every kind of source is judged here.
pub fn freshness(source: &SourcePlan, newest: Option<Micros>, now: Micros) -> &'static str {
    match (
        source.max_age.as_deref().and_then(time::parse_duration),
        newest,
    ) {
        (Some(max), Some(n)) if now - n > max => "stale",
        (Some(_), Some(_)) => "fresh",
        _ => "unknown",
    }
}
