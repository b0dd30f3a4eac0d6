//! The columns a run needs of a schema: the plan in, the schema's field
//! names that something reads out. Parquet sources (local and in object
//! stores) fetch and check only these; every other field is null.
//!
//! Read means: a field an audience (rule, `exclude_rule`, `rank.by`,
//! `split.by`), a computed attribute or an activation's mapping reads (the
//! plan's `reads`); a field named in an expression the plan keeps no reads
//! for (an activation's `people` filter, a consent condition), found by
//! its name, so more rather than fewer; the schema's key, identity fields
//! (unification, the email-domain fallback, identities sent), the foreign
//! keys of its links; and what freshness judges (the `freshness_column`,
//! else the event time, else every timestamp field).

use std::collections::BTreeSet;

use crate::plan::{Plan, SchemaPlan, SourcePlan};

/// The fields of `schema` (named `schema_name` in the plan) that the run
/// reads, for `source`.
pub fn needed(
    plan: &Plan,
    schema_name: &str,
    schema: &SchemaPlan,
    source: &SourcePlan,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let reads = plan
        .audiences
        .values()
        .flat_map(|a| &a.reads)
        .chain(plan.computed.values().flat_map(|c| &c.reads))
        .chain(
            plan.activations
                .values()
                .flat_map(|a| a.mapping.iter().flat_map(|m| &m.reads)),
        );
    for read in reads {
        if let Some((s, field)) = read.split_once('.')
            && s == schema_name
        {
            out.insert(field.to_string());
        }
    }
    // Expressions without reads in the plan: every field of the schema
    // whose name appears in them as a word.
    let texts = plan.activations.values().flat_map(|a| {
        a.people
            .iter()
            .map(String::as_str)
            .chain(a.consent.iter().map(|c| c.require.as_str()))
    });
    for text in texts {
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if schema.fields.contains_key(word) {
                out.insert(word.to_string());
            }
        }
    }
    out.extend(schema.key.iter().cloned());
    out.extend(
        schema
            .fields
            .iter()
            .filter(|(_, f)| f.identity.is_some())
            .map(|(n, _)| n.clone()),
    );
    out.extend(schema.links.values().filter_map(|l| l.by.clone()));
    match (&source.freshness_column, &schema.timestamp) {
        (Some(column), _) => {
            out.insert(column.clone());
        }
        (None, Some(time)) => {
            out.insert(time.clone());
        }
        (None, None) => out.extend(
            schema
                .fields
                .iter()
                .filter(|(_, f)| f.ty == "timestamp")
                .map(|(n, _)| n.clone()),
        ),
    }
    // Only fields the schema declares: a read of a computed attribute
    // names no column.
    out.retain(|f| schema.fields.contains_key(f));
    out
}
