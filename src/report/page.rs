//! What the report page shows, as plain data for its template: one row per
//! activation, destination label, audience and waiver, and the lineage
//! pictures.
//!
//! Input: [`super::Inputs`] and the plan's [`Lineage`]. Output: a [`Page`]
//! (serialisable; the template only lays it out and escapes it). Pure.
//!
//! Rows carry the ids of the activations and destinations they concern
//! (`a12`, `d3`: short, and free of any character a user wrote) and the
//! verdicts they hold, which the page's filters match on.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::lineage::{Kind, Lineage, Step};
use super::picture::{self, Picture};
use super::{Inputs, WaiverInfo};
use crate::govern::Verdict;
use crate::plan::{AudienceDefinition, PolicyVerdict};
use crate::resolve::audiences::base_name;

/// A project whose lineage has at most this many nodes gets one picture of
/// everything; a larger one gets one picture per activation, shown for the
/// activation the filters pick.
pub const WHOLE_PICTURE_MAX_NODES: usize = 250;

#[derive(Debug, Serialize)]
pub struct Page {
    pub project: String,
    pub environment: Option<String>,
    pub enforcement: Option<String>,
    pub fingerprint: String,
    pub today: Option<String>,
    pub generator: String,
    pub last_run: Option<LastRunView>,
    pub counts: Counts,
    /// Not in the template's context: the four tables (and the filters'
    /// lists) are rendered by the page's script from [`Page::rows`], which
    /// the page carries as JSON.
    #[serde(skip)]
    pub activations: Vec<ActivationRow>,
    #[serde(skip)]
    pub destinations: Vec<DestinationSection>,
    #[serde(skip)]
    pub audiences: Vec<AudienceRow>,
    #[serde(skip)]
    pub waivers: Vec<WaiverRow>,
    /// `whole` (one picture) or `per-activation`.
    pub lineage_mode: &'static str,
    /// Not in the template's context: the page carries them as JSON.
    #[serde(skip)]
    pub pictures: Vec<PictureView>,
}

/// The rows of the page's four tables, as the page's script reads them: a
/// table of thousands of rows is data until scrolled to, not markup the
/// browser must parse and lay out before the page opens.
#[derive(Debug, Serialize)]
pub struct Rows<'a> {
    /// Whether a run recorded sizes: an audience without one shows `–`,
    /// else `no run yet`.
    pub has_run: bool,
    pub activations: &'a [ActivationRow],
    pub destinations: &'a [DestinationSection],
    pub audiences: &'a [AudienceRow],
    pub waivers: &'a [WaiverRow],
}

impl Page {
    pub fn rows(&self) -> Rows<'_> {
        Rows {
            has_run: self.last_run.is_some(),
            activations: &self.activations,
            destinations: &self.destinations,
            audiences: &self.audiences,
            waivers: &self.waivers,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct LastRunView {
    pub run_id: String,
    pub at: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub activations: usize,
    pub destinations: usize,
    pub audiences: usize,
    pub violated: usize,
    pub waived: usize,
    pub lineage_nodes: usize,
    pub lineage_edges: usize,
}

/// A violated or waived policy on one activated audience.
#[derive(Clone, Debug, Serialize)]
pub struct VerdictItem {
    pub activation: String,
    pub audience: String,
    pub policy: String,
    /// `violated` or `waived`.
    pub verdict: &'static str,
    pub enforcement: String,
    /// The labels the policy blames.
    pub labels: Vec<String>,
    pub waiver: Option<String>,
    pub expires: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ActivationRow {
    pub id: String,
    pub name: String,
    pub destination: String,
    pub destination_id: String,
    pub destination_type: String,
    pub rows: String,
    pub schedule: String,
    pub export: String,
    pub audiences: Vec<Sized>,
    pub exclude: Vec<String>,
    pub labels: Vec<String>,
    /// Space-separated: `violated`, `waived`, or `allowed` when neither.
    pub verdicts: String,
    pub notable: Vec<VerdictItem>,
    /// Policy verdicts that are neither violated nor waived.
    pub others: usize,
}

#[derive(Debug, Serialize)]
pub struct Sized {
    pub name: String,
    pub size: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct DestinationSection {
    pub id: String,
    pub name: String,
    pub ty: String,
    pub delivery: String,
    pub actions: Vec<String>,
    pub acts: String,
    pub verdicts: String,
    pub labels: Vec<LabelRow>,
}

#[derive(Debug, Serialize)]
pub struct LabelRow {
    pub label: String,
    /// `activation / audience` for each dataflow the label reaches here.
    pub flows: Vec<String>,
    pub acts: String,
    pub verdicts: String,
    /// The violated and waived verdicts that blame this label here.
    pub notable: Vec<VerdictItem>,
}

#[derive(Debug, Serialize)]
pub struct AudienceRow {
    pub name: String,
    pub entity: String,
    pub evaluation: String,
    pub kind: &'static str,
    pub labels: Vec<String>,
    pub size: Option<u64>,
    pub parts: Vec<Sized>,
    pub acts: String,
    pub dests: String,
    pub activations: usize,
    pub verdicts: String,
}

#[derive(Debug, Serialize)]
pub struct WaiverRow {
    pub name: String,
    pub policy: String,
    pub activation: String,
    pub acts: String,
    pub dests: String,
    pub owner: String,
    pub reason: String,
    pub expires: Option<String>,
    /// Days from `today` to the expiry date.
    pub days_left: Option<i64>,
    /// The audiences whose violation it covers.
    pub covers: Vec<String>,
    pub verdicts: String,
}

#[derive(Debug, Serialize)]
pub struct PictureView {
    /// The activation id it is the picture of; `None` for the whole project.
    #[serde(rename = "a")]
    pub activation: Option<String>,
    #[serde(rename = "t")]
    pub title: String,
    #[serde(flatten)]
    pub picture: Picture,
}

/// Where one label reaches a destination: the dataflows (`activation /
/// audience`), their activation ids, and the verdicts that blame it.
type LabelReach<'a> = (Vec<String>, BTreeSet<&'a str>, Vec<VerdictItem>);

pub fn build(inputs: &Inputs<'_>, lineage: &Lineage) -> Page {
    let plan = inputs.plan;
    let act_id: BTreeMap<&str, String> = plan
        .activations
        .keys()
        .enumerate()
        .map(|(i, name)| (name.as_str(), format!("a{i}")))
        .collect();
    let dest_id: BTreeMap<&str, String> = plan
        .destinations
        .keys()
        .chain(plan.activations.values().map(|a| &a.destination))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), format!("d{i}")))
        .collect();
    let sizes = inputs.last_run.as_ref().map(|r| &r.audiences);
    let size = |name: &str| sizes.and_then(|s| s.get(name).copied());
    let waiver_of: BTreeMap<&str, &WaiverInfo> = inputs
        .waivers
        .iter()
        .map(|w| (w.name.as_str(), w))
        .collect();

    // Every violated or waived verdict, per activation.
    let mut notable: BTreeMap<&str, Vec<VerdictItem>> = BTreeMap::new();
    let mut others: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, a) in &plan.activations {
        let governed = inputs.verdicts.activations.get(name);
        for (audience, g) in &a.governance {
            for (policy, verdict) in &g.policies {
                let blamed = governed
                    .and_then(|v| v.audiences.get(audience))
                    .and_then(|v| v.policies.get(policy));
                let labels = match blamed {
                    Some(Verdict::Violated { labels, .. } | Verdict::Waived { labels, .. }) => {
                        labels.clone()
                    }
                    _ => Vec::new(),
                };
                let (word, waiver) = match verdict {
                    PolicyVerdict::Violated => ("violated", None),
                    PolicyVerdict::Waived(w) => ("waived", Some(w.clone())),
                    _ => {
                        *others.entry(name).or_default() += 1;
                        continue;
                    }
                };
                notable.entry(name).or_default().push(VerdictItem {
                    activation: name.clone(),
                    audience: audience.clone(),
                    policy: policy.clone(),
                    verdict: word,
                    enforcement: plan
                        .policies
                        .get(policy)
                        .map(|p| p.enforcement.to_string())
                        .unwrap_or_default(),
                    labels,
                    expires: waiver
                        .as_deref()
                        .and_then(|w| waiver_of.get(w))
                        .and_then(|w| w.expires.clone()),
                    waiver,
                });
            }
        }
    }
    let verdict_words = |items: &mut dyn Iterator<Item = &VerdictItem>| -> String {
        let words: BTreeSet<&str> = items.map(|v| v.verdict).collect();
        if words.is_empty() {
            "allowed".to_string()
        } else {
            words.into_iter().rev().collect::<Vec<_>>().join(" ")
        }
    };

    let activations: Vec<ActivationRow> = plan
        .activations
        .iter()
        .map(|(name, a)| {
            let items = notable.get(name.as_str()).cloned().unwrap_or_default();
            let labels: BTreeSet<&String> = a.governance.values().flat_map(|g| &g.labels).collect();
            ActivationRow {
                id: act_id[name.as_str()].clone(),
                name: name.clone(),
                destination: a.destination.clone(),
                destination_id: dest_id[a.destination.as_str()].clone(),
                destination_type: a.destination_type.clone(),
                rows: a.rows.to_string(),
                schedule: a.schedule.to_string(),
                export: a.export.to_string(),
                audiences: a
                    .audiences
                    .iter()
                    .map(|r| Sized {
                        name: r.clone(),
                        size: size(r),
                    })
                    .collect(),
                exclude: a.exclude.clone(),
                labels: labels.into_iter().cloned().collect(),
                verdicts: verdict_words(&mut items.iter()),
                notable: items,
                others: others.get(name.as_str()).copied().unwrap_or(0),
            }
        })
        .collect();

    let destinations = plan
        .destinations
        .iter()
        .map(|(name, d)| {
            let feeding: Vec<(&String, &crate::plan::ActivationPlan)> = plan
                .activations
                .iter()
                .filter(|(_, a)| &a.destination == name)
                .collect();
            let mut by_label: BTreeMap<&str, LabelReach> = BTreeMap::new();
            for (act, a) in &feeding {
                for (audience, g) in &a.governance {
                    for label in &g.labels {
                        let row = by_label.entry(label).or_default();
                        row.0.push(format!("{act} / {audience}"));
                        row.1.insert(&act_id[act.as_str()]);
                        row.2.extend(
                            notable
                                .get(act.as_str())
                                .into_iter()
                                .flatten()
                                .filter(|v| &v.audience == audience && v.labels.contains(label))
                                .cloned(),
                        );
                    }
                }
            }
            let acts: BTreeSet<&str> = feeding
                .iter()
                .map(|(act, _)| act_id[act.as_str()].as_str())
                .collect();
            let all: Vec<&VerdictItem> = feeding
                .iter()
                .flat_map(|(act, _)| notable.get(act.as_str()).into_iter().flatten())
                .collect();
            DestinationSection {
                id: dest_id[name.as_str()].clone(),
                name: name.clone(),
                ty: d.ty.clone(),
                delivery: d.delivery.to_string(),
                actions: d.actions.keys().cloned().collect(),
                acts: join(acts),
                verdicts: verdict_words(&mut all.into_iter()),
                labels: by_label
                    .into_iter()
                    .map(|(label, (flows, acts, items))| LabelRow {
                        label: label.to_string(),
                        flows,
                        acts: join(acts),
                        verdicts: verdict_words(&mut items.iter()),
                        notable: items,
                    })
                    .collect(),
            }
        })
        .collect();

    // Which activations each lineage node feeds.
    let mut acts_of: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (name, (_, upstream)) in &lineage.activations {
        for &n in upstream {
            acts_of
                .entry(n)
                .or_default()
                .insert(act_id[name.as_str()].clone());
        }
    }
    let audiences = plan
        .audiences
        .iter()
        .map(|(name, a)| {
            let node = lineage.node(Kind::Audience, name);
            let acts = node
                .and_then(|n| acts_of.get(&n))
                .cloned()
                .unwrap_or_default();
            let dests: BTreeSet<&str> = plan
                .activations
                .iter()
                .filter(|(act, _)| acts.contains(&act_id[act.as_str()]))
                .map(|(_, a)| dest_id[a.destination.as_str()].as_str())
                .collect();
            let items = notable
                .values()
                .flatten()
                .filter(|v| base_name(&v.audience) == name);
            AudienceRow {
                name: name.clone(),
                entity: a.entity.to_string(),
                evaluation: a.evaluation.to_string(),
                kind: match a.definition {
                    AudienceDefinition::Rule { .. } => "rule",
                    AudienceDefinition::Compose { .. } => "composed",
                },
                labels: a.labels.clone(),
                size: size(name),
                parts: a
                    .parts
                    .iter()
                    .map(|p| Sized {
                        name: p.clone(),
                        size: size(&format!("{name}.{p}")),
                    })
                    .collect(),
                activations: acts.len(),
                acts: join(acts.iter().map(String::as_str)),
                dests: join(dests),
                verdicts: verdict_words(&mut items.into_iter()),
            }
        })
        .collect();

    let waivers = inputs
        .waivers
        .iter()
        .map(|w| {
            let covered: Vec<&VerdictItem> = notable
                .get(w.activation.as_str())
                .into_iter()
                .flatten()
                .filter(|v| v.waiver.as_deref() == Some(w.name.as_str()))
                .collect();
            let act = act_id.get(w.activation.as_str());
            WaiverRow {
                name: w.name.clone(),
                policy: w.policy.clone(),
                activation: w.activation.clone(),
                acts: act.cloned().unwrap_or_default(),
                dests: plan
                    .activations
                    .get(&w.activation)
                    .map(|a| dest_id[a.destination.as_str()].clone())
                    .unwrap_or_default(),
                owner: w.owner.clone(),
                reason: w.reason.clone(),
                expires: w.expires.clone(),
                days_left: w.days_left,
                covers: covered.iter().map(|v| v.audience.clone()).collect(),
                verdicts: if covered.is_empty() {
                    "allowed".to_string()
                } else {
                    "waived".to_string()
                },
            }
        })
        .collect();

    // The whole project's chain (without mapping reads, which would tie
    // every field to every activation) when it is small enough to read; and
    // each activation's own lineage, mapped fields included, shown when the
    // filters pick it.
    let whole = lineage.nodes.len() <= WHOLE_PICTURE_MAX_NODES;
    let mut pictures = Vec::new();
    if whole {
        let every: Vec<usize> = lineage.activations.values().map(|(a, _)| *a).collect();
        let chain = |step: Step| step != Step::Maps;
        let mut drawn: BTreeSet<usize> = BTreeSet::new();
        for e in lineage.edges.iter().filter(|e| chain(e.step)) {
            drawn.extend([e.from, e.to]);
        }
        let nodes: Vec<usize> = drawn.into_iter().collect();
        pictures.push(PictureView {
            activation: None,
            title: format!("lineage of {}", plan.project),
            picture: picture::draw(lineage, &nodes, &chain, &lineage.verdicts(&every)),
        });
    }
    pictures.extend(
        lineage
            .activations
            .iter()
            .map(|(name, (at, upstream))| PictureView {
                activation: Some(act_id[name.as_str()].clone()),
                title: format!("lineage of activation {name}"),
                picture: picture::draw(lineage, upstream, &|_| true, &lineage.verdicts(&[*at])),
            }),
    );

    let count = |word: &str| {
        notable
            .values()
            .flatten()
            .filter(|v| v.verdict == word)
            .count()
    };
    Page {
        project: plan.project.clone(),
        environment: plan.environment.clone(),
        enforcement: plan.enforcement.map(|e| e.to_string()),
        fingerprint: plan.fingerprint.clone(),
        today: inputs.today.map(|d| d.to_string()),
        generator: inputs.generator.to_string(),
        last_run: inputs.last_run.as_ref().map(|r| LastRunView {
            run_id: r.run_id.clone(),
            at: r.at.clone(),
        }),
        counts: Counts {
            activations: plan.activations.len(),
            destinations: plan.destinations.len(),
            audiences: plan.audiences.len(),
            violated: count("violated"),
            waived: count("waived"),
            lineage_nodes: lineage.nodes.len(),
            lineage_edges: lineage.edges.len(),
        },
        activations,
        destinations,
        audiences,
        waivers,
        lineage_mode: if whole { "whole" } else { "per-activation" },
        pictures,
    }
}

fn join<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    ids.into_iter().collect::<Vec<_>>().join(" ")
}
