//! One run, in order: finish deliveries a crash interrupted, read and unify
//! the data, evaluate the audiences (the rendered feature table, then
//! composition), build each activation's destination rows, deliver the
//! changes, commit state, record the run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::deliver::{self, FileFormat, Manifest, Rows};
use super::engine::{self, Engine};
use super::io::Faults;
use super::report::{ActivationReport, Overlap, RunReport};
use super::state::{self, Membership, Pending, Store};
use super::{Jobs, Options, sources, time, unify};
use crate::plan::{ActivationPlan, AudienceDefinition, Plan, SettingPlan, SplitPlan};

/// Destination types whose deliveries are files.
const FILE_TYPES: &[&str] = &["filesystem", "s3", "azure_blob", "gcs", "sftp"];

pub fn run(plan: &Plan, jobs: &Jobs, root: &Path, options: &Options) -> Result<RunReport, String> {
    let started = Instant::now();
    let faults = Faults::after(options.fault_after);
    let store = Store::new(root);
    let mut report = RunReport {
        project: plan.project.clone(),
        environment: plan.environment.clone(),
        now: time::format_timestamp(options.now),
        preview: options.preview,
        ..RunReport::default()
    };

    // 1. Finish what a crash interrupted, before anything new.
    if !options.preview {
        for (name, activation) in &plan.activations {
            if let Some(pending) = store.load_pending(name)? {
                let old = store.load(name)?.map(|s| s.membership).unwrap_or_default();
                let target = destination_dir(plan, activation, root, options);
                if let Some(dir) = target {
                    deliver_changes(plan, name, activation, &dir, &old, &pending, &faults)?;
                }
                store.commit(&pending, &faults)?;
                report.warnings.push(format!(
                    "finished the delivery {} of `{name}` that an earlier run left unfinished",
                    pending.run_id
                ));
            }
        }
    }

    // 2. Read, type and unify the data.
    let engine = Engine::new()?;
    let mut loaded = Vec::new();
    for (name, source) in &plan.sources {
        let schema = plan
            .schemas
            .get(&source.schema)
            .ok_or_else(|| format!("source `{name}` reads unknown schema `{}`", source.schema))?;
        let l = sources::read(root, name, source, schema, options.now)?;
        if l.report.freshness == "stale" {
            report.warnings.push(format!(
                "source `{name}` is stale: newest record {} is older than max_age {}",
                l.report.newest.as_deref().unwrap_or("?"),
                source.max_age.as_deref().unwrap_or("?")
            ));
        }
        if l.report.bad_rows > 0 {
            report.warnings.push(format!(
                "source `{name}`: {} bad row{} skipped (see the source report)",
                l.report.bad_rows,
                if l.report.bad_rows == 1 { "" } else { "s" }
            ));
        }
        report.sources.insert(name.clone(), l.report.clone());
        loaded.push(l);
    }
    report.links = unify::unify(&engine, plan, loaded)?;

    // 3. Evaluate: the rendered feature table, then composition.
    for statement in &jobs.setup {
        engine.sql(statement)?;
    }
    let features = engine.query(&jobs.features)?;
    let members = evaluate(plan, &features, &mut report.warnings)?;
    for (name, set) in &members {
        report.audiences.insert(name.clone(), set.len() as u64);
    }
    if options.preview {
        let names: Vec<&String> = members.keys().collect();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                // A part and its own audience always overlap: not news.
                if b.starts_with(&format!("{a}.")) {
                    continue;
                }
                let n = members[*a].intersection(&members[*b]).count() as u64;
                if n > 0 {
                    report.overlaps.push(Overlap {
                        a: a.to_string(),
                        b: b.to_string(),
                        members: n,
                    });
                }
            }
        }
    }

    // 4. Per activation: destination rows, then delivery.
    let mut run_hash = Sha256::new();
    for (name, activation) in &plan.activations {
        let mut a = ActivationReport {
            destination: activation.destination.clone(),
            destination_type: activation.destination_type.clone(),
            export: activation.export.clone(),
            ..ActivationReport::default()
        };
        let Some(job) = jobs.activations.get(name) else {
            a.status = "skipped".into();
            a.warnings
                .push("no rendered job for this activation".into());
            report.activations.insert(name.clone(), a);
            continue;
        };
        let target = destination_rows(&engine, plan, activation, &job.rows, &members, &mut a)?;
        a.members = target.rows.len() as u64;
        if let Some(min) = activation.limits.min_audience_size
            && a.members < min
        {
            a.warnings.push(format!(
                "{} members, below the {} minimum of {min}: the destination will not serve it",
                a.members, activation.destination_type
            ));
        }
        let old = store.load(name)?.map(|s| s.membership).unwrap_or_default();
        let changes = state::changes(&old, &target);
        a.created = changes.added.len() as u64;
        a.updated = changes.updated.len() as u64;
        a.removed = changes.removed.len() as u64;
        let dir = destination_dir(plan, activation, root, options);
        if options.preview {
            a.status = "preview".into();
        } else if dir.is_none() {
            a.status = "skipped".into();
            a.warnings.push(if FILE_TYPES.contains(&activation.destination_type.as_str()) {
                format!(
                    "uploads to {} are not implemented yet; `--out DIR` writes the files locally",
                    activation.destination_type
                )
            } else {
                format!(
                    "{} is an API destination, which the local runner does not call yet",
                    activation.destination_type
                )
            });
        } else if changes.is_empty() && activation.export != "full" {
            a.status = "unchanged".into();
        } else {
            let dir = dir.expect("checked above");
            let target_json = serde_json::to_vec(&target).map_err(|e| e.to_string())?;
            let digest = deliver::sha256_hex(&target_json);
            run_hash.update(digest.as_bytes());
            let pending = Pending {
                activation: name.clone(),
                run_id: format!("{}-{}", time::compact_timestamp(options.now), &digest[..8]),
                target,
            };
            store.begin(&pending, &faults)?;
            let (files, bytes) =
                deliver_changes(plan, name, activation, &dir, &old, &pending, &faults)?;
            store.commit(&pending, &faults)?;
            a.status = "delivered".into();
            a.files = files;
            a.bytes = bytes;
            a.location = Some(
                dir.join(name)
                    .join(&pending.run_id)
                    .strip_prefix(root)
                    .map(|p| p.to_path_buf())
                    .unwrap_or_else(|_| dir.join(name).join(&pending.run_id))
                    .to_string_lossy()
                    .replace('\\', "/"),
            );
            a.run_id = Some(pending.run_id);
        }
        report.activations.insert(name.clone(), a);
    }
    let run_digest: String = run_hash
        .finalize()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    report.run_id = format!("{}-{run_digest}", time::compact_timestamp(options.now));
    report.duration_ms = started.elapsed().as_millis() as u64;
    if !options.preview {
        report.append_to_log(root, &faults)?;
    }
    Ok(report)
}

/// Where an activation's files go: a filesystem destination's `path`
/// (relative to the project), or `<out>/<destination>` with `--out`; `None`
/// when this runner cannot deliver to the destination.
fn destination_dir(
    plan: &Plan,
    activation: &ActivationPlan,
    root: &Path,
    options: &Options,
) -> Option<PathBuf> {
    if !FILE_TYPES.contains(&activation.destination_type.as_str()) {
        return None;
    }
    if let Some(out) = &options.out {
        return Some(out.join(&activation.destination));
    }
    if activation.destination_type != "filesystem" {
        return None;
    }
    let dest = plan.destinations.get(&activation.destination)?;
    match dest.settings.get("path") {
        Some(SettingPlan::Text(p)) => Some(root.join(p)),
        _ => Some(root.join("out").join(&activation.destination)),
    }
}

fn file_format(plan: &Plan, activation: &ActivationPlan) -> FileFormat {
    let mut f = FileFormat::default();
    if let Some(dest) = plan.destinations.get(&activation.destination) {
        if let Some(SettingPlan::Text(fmt)) = dest.settings.get("format") {
            f.format = fmt.clone();
        }
        if let Some(SettingPlan::Bool(g)) = dest.settings.get("gzip") {
            f.gzip = *g;
        }
        if let Some(SettingPlan::Text(d)) = dest.settings.get("delimiter")
            && d.len() == 1
        {
            f.delimiter = d.as_bytes()[0];
        }
    }
    if let Some(max) = activation.limits.max_rows_per_file {
        f.max_rows_per_file = max;
    }
    f
}

/// Delivers the changes from `old` to the pending target under its run id;
/// returns (files, bytes). Idempotent: a rerun writes only missing files.
fn deliver_changes(
    plan: &Plan,
    name: &str,
    activation: &ActivationPlan,
    dir: &Path,
    old: &Membership,
    pending: &Pending,
    faults: &Faults,
) -> Result<(u64, u64), String> {
    let format = file_format(plan, activation);
    let target = &pending.target;
    let rows = if activation.export == "full" {
        Rows {
            columns: target.columns.clone(),
            rows: target.rows.values().cloned().collect(),
        }
    } else {
        let c = state::changes(old, target);
        let mut columns = vec!["change".to_string()];
        columns.extend(target.columns.iter().cloned());
        let mut rows: Vec<(String, Vec<Value>)> = Vec::new();
        for (kind, keys, from) in [
            ("added", &c.added, target),
            ("updated", &c.updated, target),
            ("removed", &c.removed, old),
        ] {
            for key in keys {
                let mut row = vec![Value::String(kind.into())];
                row.extend(from.rows[key].iter().cloned());
                rows.push((key.clone(), row));
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Rows {
            columns,
            rows: rows.into_iter().map(|(_, r)| r).collect(),
        }
    };
    let run_dir = dir.join(name).join(&pending.run_id);
    let files = deliver::write_files(&run_dir, name, &rows, &format, faults)?;
    let manifest = Manifest {
        run_id: pending.run_id.clone(),
        activation: name.to_string(),
        destination: activation.destination.clone(),
        export: activation.export.clone(),
        format: format.format.clone(),
        gzip: format.gzip,
        columns: rows.columns.clone(),
        rows: rows.rows.len() as u64,
        files: files.clone(),
    };
    deliver::write_manifest(&run_dir, &manifest, faults)?;
    Ok((files.len() as u64, files.iter().map(|f| f.bytes).sum()))
}

/// Audience and part memberships as sorted account keys.
pub fn evaluate(
    plan: &Plan,
    features: &datafusion::arrow::record_batch::RecordBatch,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let keys = engine::keys(features, "key")?;
    let column = |name: &str| -> Result<Vec<Value>, String> {
        let col = features
            .column_by_name(name)
            .ok_or_else(|| format!("the feature table has no column `{name}`"))?;
        Ok((0..features.num_rows())
            .map(|i| engine::cell(col, i))
            .collect())
    };
    let truthy = |values: &[Value]| -> BTreeSet<String> {
        values
            .iter()
            .zip(&keys)
            .filter(|(v, _)| **v == Value::Bool(true))
            .filter_map(|(_, k)| k.clone())
            .collect()
    };
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Rule audiences first, then compositions once their inputs exist.
    let mut todo: Vec<&String> = Vec::new();
    for (name, audience) in &plan.audiences {
        if audience.entity != "account" {
            warnings.push(format!(
                "audience `{name}` is a person audience, which the embedded engine does not evaluate yet"
            ));
            continue;
        }
        match &audience.definition {
            AudienceDefinition::Rule { .. } => {
                out.insert(name.clone(), truthy(&column(name)?));
            }
            AudienceDefinition::Compose { .. } => todo.push(name),
        }
    }
    while !todo.is_empty() {
        let before = todo.len();
        let mut rest = Vec::new();
        for name in todo {
            let audience = &plan.audiences[name];
            let AudienceDefinition::Compose {
                from,
                merge,
                exclude,
                exclude_rule,
                rank,
                split,
            } = &audience.definition
            else {
                continue;
            };
            let ready = from.iter().chain(exclude).all(|r| out.contains_key(r));
            if !ready {
                rest.push(name);
                continue;
            }
            let sets: Vec<&BTreeSet<String>> = from.iter().map(|r| &out[r]).collect();
            let mut set: BTreeSet<String> = match merge.as_str() {
                "intersection" => sets
                    .first()
                    .map(|first| {
                        first
                            .iter()
                            .filter(|k| sets.iter().all(|s| s.contains(*k)))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default(),
                "exclude_overlap" => {
                    let mut count: BTreeMap<&String, usize> = BTreeMap::new();
                    for s in &sets {
                        for k in s.iter() {
                            *count.entry(k).or_default() += 1;
                        }
                    }
                    count
                        .into_iter()
                        .filter(|(_, n)| *n == 1)
                        .map(|(k, _)| k.clone())
                        .collect()
                }
                _ => sets.iter().flat_map(|s| s.iter().cloned()).collect(),
            };
            for e in exclude {
                set.retain(|k| !out[e].contains(k));
            }
            if let Some(rule) = exclude_rule {
                let excluded = truthy(&column(rule)?);
                set.retain(|k| !excluded.contains(k));
            }
            // Values by key for rank and split-by-attribute.
            let values_of = |expr: &str| -> Result<BTreeMap<String, Value>, String> {
                Ok(column(expr)?
                    .into_iter()
                    .zip(&keys)
                    .filter_map(|(v, k)| k.clone().map(|k| (k, v)))
                    .collect())
            };
            if let Some(rank) = rank {
                let values = values_of(&rank.by)?;
                let mut ranked: Vec<String> = set.into_iter().collect();
                let num = |k: &String| values.get(k).and_then(Value::as_f64);
                ranked.sort_by(|a, b| {
                    let (va, vb) = (num(a), num(b));
                    let ord = match (va, vb) {
                        (Some(x), Some(y)) => {
                            let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                            if rank.order == "desc" { o.reverse() } else { o }
                        }
                        // Nulls last either way.
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => std::cmp::Ordering::Equal,
                    };
                    ord.then_with(|| a.cmp(b))
                });
                if let Some(limit) = rank.limit {
                    ranked.truncate(limit.max(0) as usize);
                }
                set = ranked.into_iter().collect();
            }
            match split {
                Some(SplitPlan::Percent { seed, parts }) => {
                    for p in parts {
                        out.insert(format!("{name}.{}", p.name), BTreeSet::new());
                    }
                    for k in &set {
                        let b = i64::from(super::bucket(seed, k));
                        let mut upper = 0;
                        for p in parts {
                            upper += p.percent;
                            if b < upper {
                                out.get_mut(&format!("{name}.{}", p.name))
                                    .expect("inserted above")
                                    .insert(k.clone());
                                break;
                            }
                        }
                    }
                }
                Some(SplitPlan::ByAttribute { by, parts, other }) => {
                    let values = values_of(by)?;
                    for p in parts.iter().map(|p| &p.name).chain(other) {
                        out.insert(format!("{name}.{p}"), BTreeSet::new());
                    }
                    for k in &set {
                        let v = match values.get(k) {
                            Some(Value::String(s)) => Some(s.clone()),
                            Some(Value::Null) | None => None,
                            Some(v) => Some(v.to_string()),
                        };
                        let part = parts
                            .iter()
                            .find(|p| v.as_ref().is_some_and(|v| p.values.contains(v)))
                            .map(|p| &p.name)
                            .or(other.as_ref());
                        if let Some(part) = part {
                            out.get_mut(&format!("{name}.{part}"))
                                .expect("inserted above")
                                .insert(k.clone());
                        }
                    }
                }
                None => {}
            }
            out.insert(name.clone(), set);
        }
        if rest.len() == before {
            return Err(format!(
                "compositions with missing inputs: {}",
                rest.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        todo = rest;
    }
    Ok(out)
}

/// The rows an activation delivers, after exclusions, consent, identities,
/// policy and hashing; counts go to the report.
fn destination_rows(
    engine: &Engine,
    plan: &Plan,
    activation: &ActivationPlan,
    sql: &str,
    members: &BTreeMap<String, BTreeSet<String>>,
    report: &mut ActivationReport,
) -> Result<Membership, String> {
    let blocking = plan.enforcement.as_deref() == Some("block");
    let mut included: BTreeSet<&String> = BTreeSet::new();
    let mut blocked: BTreeSet<&String> = BTreeSet::new();
    for reference in &activation.audiences {
        let set = members
            .get(reference)
            .ok_or_else(|| format!("activation audience `{reference}` was not evaluated"))?;
        let violated: Vec<&String> = activation
            .governance
            .get(reference)
            .map(|g| {
                g.policies
                    .iter()
                    .filter(|(_, v)| v.as_str() == "violated")
                    .map(|(p, _)| p)
                    .collect()
            })
            .unwrap_or_default();
        if !violated.is_empty() {
            let names = violated
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            if blocking {
                report
                    .warnings
                    .push(format!("`{reference}` not activated: it violates {names}"));
                blocked.extend(set.iter());
                continue;
            }
            report.warnings.push(format!(
                "`{reference}` violates {names} (enforcement is warn: delivered)"
            ));
        }
        included.extend(set.iter());
    }
    for e in &activation.exclude {
        if let Some(set) = members.get(e) {
            included.retain(|k| !set.contains(*k));
            blocked.retain(|k| !set.contains(*k));
        }
    }
    blocked.retain(|k| !included.contains(k));
    let batch = engine.query(sql)?;
    let account_keys = engine::keys(&batch, "account_key")?;
    let person_rows = activation.rows == "person";
    let row_keys = if person_rows {
        engine::keys(&batch, "person_key")?
    } else {
        account_keys.clone()
    };
    let consent = match batch.column_by_name("consent") {
        Some(col) if person_rows => (0..batch.num_rows())
            .map(|i| engine::cell(col, i) == Value::Bool(true))
            .collect(),
        _ => vec![true; batch.num_rows()],
    };
    let mut columns = Vec::new();
    for m in &activation.mapping {
        let col = batch
            .column_by_name(&m.column)
            .ok_or_else(|| format!("the rows of the activation have no column `{}`", m.column))?;
        columns.push((m, col.clone()));
    }
    let mut membership = Membership {
        columns: activation
            .mapping
            .iter()
            .map(|m| m.column.clone())
            .collect(),
        rows: BTreeMap::new(),
    };
    let has_identity = activation.mapping.iter().any(|m| m.identity.is_some());
    'rows: for i in 0..batch.num_rows() {
        let (Some(account), Some(key)) = (&account_keys[i], &row_keys[i]) else {
            continue;
        };
        if blocked.contains(account) {
            report.excluded_policy += 1;
            continue;
        }
        if !included.contains(account) {
            continue;
        }
        report.profiles_received += 1;
        if !consent[i] {
            report.excluded_consent += 1;
            continue;
        }
        let mut row = Vec::with_capacity(columns.len());
        let mut any_identity = false;
        for (m, col) in &columns {
            let raw = engine::cell(col, i);
            let value = match deliver::transform(&m.transform, &raw) {
                Ok(v) => v,
                Err(deliver::HashError::Missing) => Value::Null,
                Err(deliver::HashError::Invalid(_)) => {
                    report.failed += 1;
                    continue 'rows;
                }
            };
            let present = !matches!(&value, Value::Null) && value != Value::String(String::new());
            if m.identity.is_some() && present {
                any_identity = true;
            }
            row.push(value);
        }
        if has_identity && !any_identity {
            report.excluded_missing_identity += 1;
            continue;
        }
        membership.rows.insert(key.clone(), row);
    }
    Ok(membership)
}
