//! Label lineage: which labels reach an audience and a dataflow, and from
//! where.
//!
//! A field carries its own labels plus its schema's (resolved into
//! `FieldInfo::labels`). An expression carries the labels of every field it
//! reads; a read of a computed attribute is expanded to the fields the
//! attribute's expression reads, recursively. An audience carries the labels
//! of its rule, its composition (from, exclude, exclude_rule, rank by, split
//! by) and every audience it references. A dataflow carries, per activated
//! audience, that audience's labels, those of its exclusion audiences (they
//! are part of what decides membership), and those of its mapping and people
//! filter. Every label keeps the path it took, for diagnostics and `explain`.

use std::collections::{BTreeMap, BTreeSet};

use crate::resolve::{ExprSite, Model, audiences::base_name};
use crate::source::Span;

/// One way a label reaches an audience or a dataflow.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Origin {
    pub label: String,
    /// The labelled field, `schema.field`.
    pub field: String,
    /// Where the expression that reads the field sits, in words.
    pub read_in: String,
    /// The computed attributes and audiences the label passed through, from
    /// the dataflow outwards.
    pub via: Vec<String>,
    /// Where the label was attached (the field's or the schema's `labels`).
    #[serde(skip)]
    pub label_span: Span,
    /// The read of the field inside its expression.
    #[serde(skip)]
    pub read_span: Span,
}

/// Labels by name, each with every origin (sorted, deduplicated).
pub type Labels = BTreeMap<String, Vec<Origin>>;

pub fn merge(into: &mut Labels, from: &Labels, via: Option<&str>) {
    for (label, origins) in from {
        let entry = into.entry(label.clone()).or_default();
        for o in origins {
            let mut o = o.clone();
            if let Some(via) = via {
                o.via.insert(0, via.to_string());
            }
            entry.push(o);
        }
        entry.sort();
        entry.dedup();
    }
}

/// Computes labels of expressions and audiences, memoising audiences.
pub struct Lineage<'m> {
    model: &'m Model,
    account: Option<String>,
    person: Option<String>,
    audiences: BTreeMap<String, Labels>,
}

impl<'m> Lineage<'m> {
    pub fn new(model: &'m Model) -> Lineage<'m> {
        let r = model.roots.clone();
        Lineage {
            model,
            account: r.account,
            person: r.person,
            audiences: BTreeMap::new(),
        }
    }

    /// The labels an expression carries; `read_in` describes where it sits.
    pub fn expr(&self, site: &ExprSite, read_in: &str) -> Labels {
        let mut out = Labels::new();
        let mut visiting = BTreeSet::new();
        self.expr_into(site, read_in, &[], &mut visiting, &mut out);
        out
    }

    fn expr_into(
        &self,
        site: &ExprSite,
        read_in: &str,
        via: &[String],
        visiting: &mut BTreeSet<ExprSite>,
        out: &mut Labels,
    ) {
        let Some(expr) = self.model.exprs.get(site) else {
            return;
        };
        // Resolve reports computed-attribute cycles; this guard only keeps a
        // broken model from recursing forever.
        if !visiting.insert(site.clone()) {
            return;
        }
        for read in &expr.checked.reads {
            if let Some(key) = self.computed_key(&read.schema, &read.field) {
                // The path records the computed attributes passed through
                // before the one that reads the field; that one is `read_in`.
                let mut via = via.to_vec();
                if matches!(site, ExprSite::Computed(_)) {
                    via.push(read_in.to_string());
                }
                let inner_read_in = format!("computed `{key}`");
                self.expr_into(
                    &ExprSite::Computed(key),
                    &inner_read_in,
                    &via,
                    visiting,
                    out,
                );
                continue;
            }
            let Some(field) = self
                .model
                .schema_info
                .get(&read.schema)
                .and_then(|s| s.fields.get(&read.field))
            else {
                continue;
            };
            for (label, span) in &field.labels {
                let entry = out.entry(label.clone()).or_default();
                let origin = Origin {
                    label: label.clone(),
                    field: format!("{}.{}", read.schema, read.field),
                    read_in: read_in.to_string(),
                    via: via.to_vec(),
                    label_span: *span,
                    read_span: expr.span_of(read.range.clone()),
                };
                if !entry.contains(&origin) {
                    entry.push(origin);
                    entry.sort();
                }
            }
        }
        visiting.remove(site);
    }

    fn computed_key(&self, schema: &str, field: &str) -> Option<String> {
        let entity = if Some(schema) == self.account.as_deref() {
            "account"
        } else if Some(schema) == self.person.as_deref() {
            "person"
        } else {
            return None;
        };
        let key = format!("{entity}.{field}");
        self.model.computed.contains(&key).then_some(key)
    }

    /// The labels of an audience (a name or a `NAME.part` reference).
    pub fn audience(&mut self, reference: &str) -> Labels {
        let name = base_name(reference).to_string();
        let mut stack = BTreeSet::new();
        self.audience_inner(&name, &mut stack)
    }

    fn audience_inner(&mut self, name: &str, stack: &mut BTreeSet<String>) -> Labels {
        if let Some(done) = self.audiences.get(name) {
            return done.clone();
        }
        if !stack.insert(name.to_string()) {
            return Labels::new();
        }
        let mut out = Labels::new();
        let sites = [
            (ExprSite::AudienceRule(name.to_string()), "rule"),
            (ExprSite::ExcludeRule(name.to_string()), "exclude_rule"),
            (ExprSite::RankBy(name.to_string()), "rank by"),
            (ExprSite::SplitBy(name.to_string()), "split by"),
        ];
        for (site, what) in sites {
            let labels = self.expr(&site, &format!("{what} of audience `{name}`"));
            merge(&mut out, &labels, None);
        }
        // `depends_on` holds every audience this one reads: composition
        // `from` and `exclude`, and `in_audience` references in its rules.
        let deps: Vec<String> = self
            .model
            .audience_info
            .get(name)
            .map(|i| i.depends_on.iter().cloned().collect())
            .unwrap_or_default();
        for dep in deps {
            let labels = self.audience_inner(&dep, stack);
            merge(&mut out, &labels, Some(&format!("audience `{dep}`")));
        }
        stack.remove(name);
        self.audiences.insert(name.to_string(), out.clone());
        out
    }
}
