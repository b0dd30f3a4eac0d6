//! The lineage graph of a plan: which field feeds which computed attribute,
//! audience and activation, and where each activation delivers.
//!
//! Input: the [`Plan`] and the governance [`Verdicts`] it was built from
//! (they name the labels each violated or waived policy blames). Output: a
//! [`Lineage`]: nodes by kind, one edge per lineage step, and per activation
//! the nodes upstream of it. [`Lineage::verdicts`] colours the edges a
//! blamed label flows along for a set of activations. Pure.

use std::collections::{BTreeMap, BTreeSet};

use crate::govern::{Verdict, Verdicts};
use crate::plan::{AudienceDefinition, Plan};
use crate::resolve::audiences::base_name;

/// Node kinds, in the order of their columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Field,
    Computed,
    Audience,
    Activation,
    Destination,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Field,
        Kind::Computed,
        Kind::Audience,
        Kind::Activation,
        Kind::Destination,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Field => "field",
            Kind::Computed => "computed",
            Kind::Audience => "audience",
            Kind::Activation => "activation",
            Kind::Destination => "destination",
        }
    }
}

/// What an edge means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// A computed attribute or an audience rule reads a field or attribute.
    Reads,
    /// A composed audience takes another (`from`, `exclude`, `in_audience`).
    Composes,
    /// An activation sends the audience (or some of its parts).
    Activates,
    /// An activation removes the audience's members from what it sends.
    Excludes,
    /// An activation's mapping reads the field or attribute.
    Maps,
    /// An activation delivers to its destination.
    Delivers,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Reads => "reads",
            Step::Composes => "composes",
            Step::Activates => "activates",
            Step::Excludes => "excludes",
            Step::Maps => "maps",
            Step::Delivers => "delivers",
        }
    }
}

/// The policy outcome an edge carries: the worst of the dataflows a blamed
/// label reaches through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeVerdict {
    None,
    Waived,
    Violated,
}

impl EdgeVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeVerdict::None => "none",
            EdgeVerdict::Waived => "waived",
            EdgeVerdict::Violated => "violated",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: Kind,
    /// `schema.field`, `schema.attribute`, or the definition's name.
    pub name: String,
    /// Labels that reach the node.
    pub labels: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub step: Step,
    /// For `activates`: the parts sent (`high`, `medium`), empty for the
    /// whole audience.
    pub parts: Vec<String>,
}

/// A violated or waived policy on one activated audience, with the labels
/// it blames.
#[derive(Clone, Debug, PartialEq)]
pub struct Blame {
    /// The audience as the activation references it (`NAME` or `NAME.part`).
    pub audience: String,
    pub verdict: EdgeVerdict,
    pub labels: BTreeSet<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Lineage {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Per activation name: its node, and the nodes upstream of it (itself
    /// and its destination included), sorted.
    pub activations: BTreeMap<String, (usize, Vec<usize>)>,
    /// Per node: the edges into it.
    pub incoming: Vec<Vec<usize>>,
    outgoing_edges: Vec<Vec<usize>>,
    /// Per activation node: the violated and waived verdicts of its audiences.
    blames: BTreeMap<usize, Vec<Blame>>,
    index: BTreeMap<(Kind, String), usize>,
    edge_index: BTreeMap<(usize, usize, Step), usize>,
}

impl Lineage {
    pub fn node(&self, kind: Kind, name: &str) -> Option<usize> {
        self.index.get(&(kind, name.to_string())).copied()
    }

    fn add_node(&mut self, kind: Kind, name: &str) -> usize {
        if let Some(&i) = self.index.get(&(kind, name.to_string())) {
            return i;
        }
        let i = self.nodes.len();
        self.nodes.push(Node {
            kind,
            name: name.to_string(),
            labels: BTreeSet::new(),
        });
        self.index.insert((kind, name.to_string()), i);
        i
    }

    fn add_edge(&mut self, from: usize, to: usize, step: Step, part: Option<&str>) {
        if let Some(&i) = self.edge_index.get(&(from, to, step)) {
            self.edges[i].parts.extend(part.map(str::to_string));
            return;
        }
        self.edge_index.insert((from, to, step), self.edges.len());
        self.edges.push(Edge {
            from,
            to,
            step,
            parts: part.map(str::to_string).into_iter().collect(),
        });
    }

    /// The edges out of `node`.
    pub fn outgoing(&self, node: usize) -> impl Iterator<Item = &usize> {
        self.outgoing_edges.get(node).into_iter().flatten()
    }

    /// The verdict of each edge for the dataflows of `activations` (nodes):
    /// an edge is violated (or waived) when a label a violated (or waived)
    /// policy blames flows along it into one of those dataflows.
    pub fn verdicts(&self, activations: &[usize]) -> Vec<EdgeVerdict> {
        let mut marks = vec![EdgeVerdict::None; self.edges.len()];
        let carries =
            |node: usize, labels: &BTreeSet<String>| !self.nodes[node].labels.is_disjoint(labels);
        for &activation in activations {
            for blame in self.blames.get(&activation).into_iter().flatten() {
                let base = self.node(Kind::Audience, base_name(&blame.audience));
                // From the activation back along every edge whose source
                // carries a blamed label.
                let mut stack = vec![activation];
                let mut seen = BTreeSet::new();
                while let Some(node) = stack.pop() {
                    if !seen.insert(node) {
                        continue;
                    }
                    for &i in self.incoming.get(node).into_iter().flatten() {
                        let e = &self.edges[i];
                        let relevant = match e.step {
                            Step::Activates => Some(e.from) == base,
                            Step::Excludes | Step::Delivers => false,
                            Step::Reads | Step::Composes | Step::Maps => true,
                        };
                        if relevant && carries(e.from, &blame.labels) {
                            marks[i] = marks[i].max(blame.verdict);
                            stack.push(e.from);
                        }
                    }
                }
                for &i in self.outgoing(activation) {
                    if self.edges[i].step == Step::Delivers {
                        marks[i] = marks[i].max(blame.verdict);
                    }
                }
            }
        }
        marks
    }
}

/// The lineage of `plan`; `verdicts` supplies the blamed labels.
pub fn build(plan: &Plan, verdicts: &Verdicts) -> Lineage {
    let mut g = Lineage::default();
    // Computed attributes are read as `schema.name`.
    let computed: BTreeMap<String, &crate::plan::ComputedPlan> = plan
        .computed
        .iter()
        .map(|(key, c)| {
            let name = key.rsplit_once('.').map_or(key.as_str(), |(_, n)| n);
            (format!("{}.{name}", c.schema), c)
        })
        .collect();
    let read = |g: &mut Lineage, reference: &str| -> usize {
        if computed.contains_key(reference) {
            g.add_node(Kind::Computed, reference)
        } else {
            let at = g.add_node(Kind::Field, reference);
            if let Some((schema, field)) = reference.split_once('.')
                && let Some(f) = plan.schemas.get(schema).and_then(|s| s.fields.get(field))
            {
                g.nodes[at].labels.extend(f.labels.iter().cloned());
            }
            at
        }
    };
    for (name, c) in &computed {
        let to = g.add_node(Kind::Computed, name);
        for r in &c.reads {
            let from = read(&mut g, r);
            g.add_edge(from, to, Step::Reads, None);
        }
    }
    for (name, a) in &plan.audiences {
        let to = g.add_node(Kind::Audience, name);
        g.nodes[to].labels.extend(a.labels.iter().cloned());
        for r in &a.reads {
            let from = read(&mut g, r);
            g.add_edge(from, to, Step::Reads, None);
        }
        let mut taken: BTreeSet<&str> = a.depends_on.iter().map(String::as_str).collect();
        if let AudienceDefinition::Compose { from, exclude, .. } = &a.definition {
            taken.extend(from.iter().chain(exclude).map(|r| base_name(r)));
        }
        for other in taken {
            let from = g.add_node(Kind::Audience, other);
            g.add_edge(from, to, Step::Composes, None);
        }
    }
    for (name, a) in &plan.activations {
        let at = g.add_node(Kind::Activation, name);
        for reference in &a.audiences {
            let base = base_name(reference);
            let part = (base != reference).then(|| &reference[base.len() + 1..]);
            let from = g.add_node(Kind::Audience, base);
            g.add_edge(from, at, Step::Activates, part);
        }
        for reference in &a.exclude {
            let from = g.add_node(Kind::Audience, base_name(reference));
            g.add_edge(from, at, Step::Excludes, None);
        }
        let mapped: BTreeSet<&String> = a.mapping.iter().flat_map(|m| &m.reads).collect();
        for r in mapped {
            let from = read(&mut g, r);
            g.add_edge(from, at, Step::Maps, None);
        }
        let destination = g.add_node(Kind::Destination, &a.destination);
        g.add_edge(at, destination, Step::Delivers, None);
        for labels in a.governance.values() {
            g.nodes[at].labels.extend(labels.labels.iter().cloned());
        }
        let blames = verdicts
            .activations
            .get(name)
            .map(|v| blames(&v.audiences))
            .unwrap_or_default();
        g.blames.insert(at, blames);
    }
    // A computed attribute carries the labels of what it reads, through
    // chains of attributes: settle in dependency order (a fixpoint; chains
    // are short and acyclic in a checked plan).
    loop {
        let mut changed = false;
        for e in 0..g.edges.len() {
            let (from, to) = (g.edges[e].from, g.edges[e].to);
            if g.nodes[to].kind == Kind::Computed && g.edges[e].step == Step::Reads {
                let add: Vec<String> = g.nodes[from]
                    .labels
                    .difference(&g.nodes[to].labels)
                    .cloned()
                    .collect();
                changed |= !add.is_empty();
                g.nodes[to].labels.extend(add);
            }
        }
        if !changed {
            break;
        }
    }
    g.incoming = vec![Vec::new(); g.nodes.len()];
    g.outgoing_edges = vec![Vec::new(); g.nodes.len()];
    for (i, e) in g.edges.iter().enumerate() {
        g.incoming[e.to].push(i);
        g.outgoing_edges[e.from].push(i);
    }
    let mut upstream = BTreeMap::new();
    for name in plan.activations.keys() {
        let Some(at) = g.node(Kind::Activation, name) else {
            continue;
        };
        let mut seen = BTreeSet::new();
        let mut stack = vec![at];
        while let Some(node) = stack.pop() {
            if seen.insert(node) {
                stack.extend(g.incoming[node].iter().map(|&i| g.edges[i].from));
            }
        }
        seen.extend(
            g.outgoing(at)
                .map(|&i| &g.edges[i])
                .filter(|e| e.step == Step::Delivers)
                .map(|e| e.to),
        );
        upstream.insert(name.clone(), (at, seen.into_iter().collect()));
    }
    g.activations = upstream;
    g
}

fn blames(audiences: &BTreeMap<String, crate::govern::AudienceVerdict>) -> Vec<Blame> {
    let mut out = Vec::new();
    for (audience, v) in audiences {
        for verdict in v.policies.values() {
            let (verdict, labels) = match verdict {
                Verdict::Violated { labels, .. } => (EdgeVerdict::Violated, labels),
                Verdict::Waived { labels, .. } => (EdgeVerdict::Waived, labels),
                _ => continue,
            };
            out.push(Blame {
                audience: audience.clone(),
                verdict,
                labels: labels.iter().cloned().collect(),
            });
        }
    }
    out
}
