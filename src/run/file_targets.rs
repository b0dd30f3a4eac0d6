//! Where an activation's files go, as a `FileStore`: a local folder (a
//! filesystem destination's `path`, or `--out DIR/<destination>` for any
//! file destination), the bucket or SFTP server of a remote destination in
//! a live run, or, in a dry run, a store that records what a live run would
//! upload and writes nothing.
//!
//! Input: the plan's activation and destination, the project root, the
//! run's options and whether the run is a dry run. Output: a
//! [`FileTarget`]. Secrets of a remote destination are read here, from
//! their references, only for a live run; a missing one is the
//! activation's R0110, named by its reference, never by a value.

use std::path::{Path, PathBuf};

use super::Options;
use super::error::RunError;
use super::io::{self, Faults};
use super::local_store::LocalFileStore;
use crate::deliver::storage::dry_run::DryRunStore;
use crate::deliver::storage::{self, FileStore, StorageError, StorageErrorKind};
use crate::deliver::{Config, Limits, secrets};
use crate::plan::{ActivationPlan, Plan, SettingPlan};

/// The file destination types.
pub const FILE_TYPES: &[&str] = &["filesystem", "s3", "azure_blob", "gcs", "sftp"];

/// Where one activation's files are written.
pub enum FileTarget {
    /// A folder on this machine: names are proven to stay inside it.
    Local(LocalFileStore),
    /// A bucket or SFTP folder, written for real.
    Remote(Box<dyn FileStore>),
    /// A dry run of a remote destination: nothing leaves the machine.
    DryRun(DryRunStore),
}

impl FileTarget {
    pub fn store(&self) -> &dyn FileStore {
        match self {
            FileTarget::Local(s) => s,
            FileTarget::Remote(s) => s.as_ref(),
            FileTarget::DryRun(s) => s,
        }
    }
}

/// The target of `activation`'s files, or `None` for a destination that
/// takes no files (an API).
pub fn file_target(
    plan: &Plan,
    name: &str,
    activation: &ActivationPlan,
    root: &Path,
    options: &Options,
    faults: &Faults,
    dry_run: bool,
) -> Result<Option<FileTarget>, RunError> {
    let ty = activation.destination_type.as_str();
    if !FILE_TYPES.contains(&ty) {
        return Ok(None);
    }
    if let Some(local) = local_store(plan, activation, root, options, faults)? {
        return Ok(Some(FileTarget::Local(local)));
    }
    let Some(destination) = plan.destinations.get(&activation.destination) else {
        return Ok(None);
    };
    let mut config = Config::from_plan(&activation.destination, destination, Limits::default());
    let failed = |location: String, e: StorageError| RunError::Storage {
        activation: name.to_string(),
        destination: activation.destination.clone(),
        location,
        kind: e.kind,
        reason: e.message,
    };
    if dry_run {
        config.secrets = secrets::placeholders(&destination.settings);
        let location = storage::location(&config).unwrap_or_else(|| format!("{ty}://"));
        return Ok(Some(FileTarget::DryRun(DryRunStore::new(location))));
    }
    let location = storage::location(&config).unwrap_or_else(|| format!("{ty}://"));
    config.secrets = secrets::resolve_storage(&destination.settings, root).map_err(|reason| {
        failed(
            location.clone(),
            StorageError::new(StorageErrorKind::Denied, reason),
        )
    })?;
    let store = storage::open(&config).map_err(|e| failed(location, e))?;
    Ok(Some(FileTarget::Remote(store)))
}

/// The local folder an activation's files go to: a filesystem
/// destination's `path` (relative to the project), or `<out>/<destination>`
/// with `--out`; `None` for a remote destination without `--out`. A folder
/// named after the destination is proven to stay inside its parent (R0101).
fn local_store(
    plan: &Plan,
    activation: &ActivationPlan,
    root: &Path,
    options: &Options,
    faults: &Faults,
) -> Result<Option<LocalFileStore>, RunError> {
    let subject = format!("destination `{}`", activation.destination);
    let Some(dir) = local_folder(plan, activation, root, options.out.as_deref())? else {
        return Ok(None);
    };
    let location = shown(root, &dir);
    Ok(Some(LocalFileStore::new(
        dir,
        location,
        subject,
        faults.clone(),
    )))
}

/// The local folder an activation's files go to (see [`local_store`]),
/// `None` for a remote destination without `out`. Also what `accord run
/// --watch` leaves unwatched, so that a delivery never triggers a run.
pub fn local_folder(
    plan: &Plan,
    activation: &ActivationPlan,
    root: &Path,
    out: Option<&Path>,
) -> Result<Option<PathBuf>, RunError> {
    let subject = format!("destination `{}`", activation.destination);
    if let Some(out) = out {
        return io::inside(out, &activation.destination, "", &subject).map(Some);
    }
    if activation.destination_type != "filesystem" {
        return Ok(None);
    }
    let Some(dest) = plan.destinations.get(&activation.destination) else {
        return Ok(None);
    };
    match dest.settings.get("path") {
        Some(SettingPlan::Text(p)) => Ok(Some(root.join(p))),
        _ => io::inside(&root.join("out"), &activation.destination, "", &subject).map(Some),
    }
}

/// A path as the report shows it: relative to the project when inside it.
pub fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}
