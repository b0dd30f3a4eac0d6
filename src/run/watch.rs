//! `accord run --watch`: continuous mode. One process runs cycle after
//! cycle, each an ordinary run at the time it starts, while the caller
//! holds the project lock for the whole process (no other run interleaves).
//!
//! Input: what the plan reads locally ([`Interests`], from [`interests`]),
//! the poll interval, and the caller's cycle ([`Cycles`]: compile at the
//! current time, run under the held lock, print). Output: cycles, each
//! started by a [`Trigger`]:
//! - `start`: the first one, at once;
//! - `change`: files of a local source were created, written, removed or
//!   renamed (inotify through `notify`), once they have been quiet for
//!   [`WatchOptions::quiet`], so that a file written in several chunks is
//!   read whole;
//! - `tick`: the poll interval passed since the last cycle started. A tick
//!   reads the remote sources (object stores, PostgreSQL, Marketo), which
//!   send no events, and gives schedules their turn: the run itself decides
//!   which activations are due, this loop only wakes it.
//!
//! Never a trigger: hidden and temporary files (`.name`, `name~`,
//! `name.tmp`, `name.swp`, `name.part`), anything under `.accord/` or a
//! folder where a delivery writes (a run must not trigger itself), file
//! reads (the cycle's own), and files a source does not read.
//!
//! A cycle that fails (bad data, a destination down) is the caller's to
//! report; the loop goes on and the next change or tick retries. The first
//! SIGINT or SIGTERM stops the loop once the cycle in progress has ended
//! (its deliveries committed, its report logged); a second one exits at
//! once, and the store's crash safety (`state`) covers the cycle it cuts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use globset::GlobMatcher;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};

use super::file_targets::local_folder;
use super::files;
use crate::plan::{Plan, SourcePlan};

/// How the loop waits.
#[derive(Clone, Copy, Debug)]
pub struct WatchOptions {
    /// The longest time between the starts of two cycles.
    pub poll: Duration,
    /// How long files stay unchanged before a cycle reads them.
    pub quiet: Duration,
}

/// The default quiet time: long enough for a writer's chunks, short enough
/// not to be noticed.
pub const QUIET: Duration = Duration::from_millis(500);

/// What started a cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    Start,
    /// Paths that changed, relative to the project when inside it, sorted.
    Change(Vec<String>),
    Tick,
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Start => f.write_str("start"),
            Trigger::Tick => f.write_str("tick"),
            Trigger::Change(paths) => match paths.as_slice() {
                [] => f.write_str("change"),
                [one] => write!(f, "change {one}"),
                [first, rest @ ..] => write!(f, "change {first} and {} more", rest.len()),
            },
        }
    }
}

/// The caller's side of the loop.
pub trait Cycles {
    /// Runs one cycle (reports it, whatever its outcome) and returns what
    /// the plan it ran reads, to watch from now on; `None` when it had no
    /// plan (the specs did not compile): the watch stays as it was.
    fn cycle(&mut self, trigger: &Trigger) -> Option<Interests>;
    /// A problem of the watcher after the first cycle (a folder that can
    /// no longer be watched): said, not fatal, since ticks still come.
    fn warn(&mut self, message: &str);
}

/// Why watching could not start.
#[derive(Debug)]
pub enum WatchError {
    /// The operating system's file events (inotify) could not be set up.
    Events(String),
    /// The signal handlers could not be installed.
    Signals(String),
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::Events(why) => write!(f, "the local sources cannot be watched: {why}"),
            WatchError::Signals(why) => {
                write!(f, "the signal handlers cannot be installed: {why}")
            }
        }
    }
}

/// The local files a plan reads, and the folders to leave alone.
#[derive(Debug)]
pub struct Interests {
    root: PathBuf,
    sources: Vec<Interest>,
    /// `.accord/` and every local folder a delivery writes to.
    ignored: Vec<PathBuf>,
}

/// One local source as the watcher sees it.
#[derive(Debug)]
struct Interest {
    /// The file, the folder, or the folder a glob starts in.
    base: PathBuf,
    what: Reads,
}

#[derive(Debug)]
enum Reads {
    File,
    /// A folder's files of one format (any file: `None`), recursively.
    Folder {
        format: Option<String>,
    },
    /// The files under `base` a glob matches.
    Glob(GlobMatcher),
}

/// What `plan` reads from this machine, and the folders its deliveries
/// write to (`out`: the run's `--out`). Remote sources (object stores,
/// PostgreSQL, Marketo) are not here: ticks read them.
pub fn interests(plan: &Plan, root: &Path, out: Option<&Path>) -> Interests {
    // Absolute, as the events name their files, however the folders were
    // spelt on the command line.
    let absolute = |p: &Path| {
        p.canonicalize()
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let root = absolute(root);
    let out = out.map(absolute);
    let mut ignored: Vec<PathBuf> = out.iter().cloned().collect();
    ignored.extend(
        plan.activations
            .values()
            .filter_map(|a| local_folder(plan, a, &root, out.as_deref()).ok().flatten()),
    );
    Interests::new(&root, plan.sources.values(), ignored)
}

impl Interests {
    /// The local ones of `sources`; `ignored` besides `.accord/`.
    fn new<'a>(
        root: &Path,
        sources: impl Iterator<Item = &'a SourcePlan>,
        ignored: Vec<PathBuf>,
    ) -> Interests {
        let mut interests = Vec::new();
        for source in sources {
            let remote = source.object_store().is_some()
                || source.postgres.is_some()
                || source.marketo.is_some();
            if remote || source.path.is_empty() {
                continue;
            }
            let interest = match files::glob_base(&source.path) {
                Some((base, pattern)) => Interest {
                    base: root.join(base),
                    // The run reports a glob it cannot read; every change
                    // under its folder still wakes it.
                    what: files::glob(&pattern).map_or(Reads::Folder { format: None }, Reads::Glob),
                },
                None if root.join(&source.path).is_dir() => Interest {
                    base: root.join(&source.path),
                    what: Reads::Folder {
                        format: Some(source.format.as_str().to_string()),
                    },
                },
                None => Interest {
                    base: root.join(&source.path),
                    what: Reads::File,
                },
            };
            interests.push(interest);
        }
        let mut all_ignored = vec![root.join(".accord")];
        all_ignored.extend(ignored);
        Interests {
            root: root.to_path_buf(),
            sources: interests,
            ignored: all_ignored,
        }
    }

    /// Whether a change at `path` may change what a run reads.
    fn wants(&self, path: &Path) -> bool {
        if self.ignored.iter().any(|i| path.starts_with(i)) {
            return false;
        }
        self.sources.iter().any(|s| s.wants(path))
    }

    /// The folders to watch and how: a folder source or a glob's folder
    /// with what is under it, a file source's folder alone. A folder that
    /// does not exist yet is watched through its nearest existing
    /// ancestor (alone), whose change to it wakes a cycle, after which the
    /// watch is set again.
    fn folders(&self) -> BTreeMap<PathBuf, RecursiveMode> {
        let mut out = BTreeMap::new();
        for s in &self.sources {
            let (folder, mode) = match s.what {
                Reads::File => (
                    s.base.parent().unwrap_or(&s.base),
                    RecursiveMode::NonRecursive,
                ),
                _ => (s.base.as_path(), RecursiveMode::Recursive),
            };
            let (folder, mode) = if folder.is_dir() {
                (folder.to_path_buf(), mode)
            } else {
                match folder.ancestors().find(|a| a.is_dir()) {
                    Some(a) => (a.to_path_buf(), RecursiveMode::NonRecursive),
                    None => continue,
                }
            };
            let slot = out.entry(folder).or_insert(mode);
            if mode == RecursiveMode::Recursive {
                *slot = mode;
            }
        }
        out
    }

    /// `path` as a trigger shows it: relative to the project when inside.
    fn shown(&self, path: &Path) -> String {
        super::file_targets::shown(&self.root, path)
    }
}

impl Interest {
    fn wants(&self, path: &Path) -> bool {
        // A folder on the way to the source appearing or going (the source
        // did not exist, or was moved in or out whole).
        if self.base.starts_with(path) {
            return true;
        }
        let Ok(relative) = path.strip_prefix(&self.base) else {
            return false;
        };
        if relative.components().any(|c| match c {
            Component::Normal(name) => temporary(&name.to_string_lossy()),
            _ => false,
        }) {
            return false;
        }
        // A path without an extension may be a folder moved in or out.
        let folder_like = path.extension().is_none();
        match &self.what {
            Reads::File => relative.as_os_str().is_empty(),
            Reads::Folder { format } => {
                folder_like || format.is_none() || files::format_of(path) == *format
            }
            Reads::Glob(glob) => {
                folder_like || glob.is_match(relative.to_string_lossy().replace('\\', "/"))
            }
        }
    }
}

/// Hidden files and the temporary files of writers and editors: the run
/// reads no hidden file, and a temporary one becomes a real file by a
/// rename, which is the change that counts.
fn temporary(name: &str) -> bool {
    name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || [".tmp", ".swp", ".part", ".crdownload"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// Whether an event can change a file's contents or presence. Opening and
/// reading files (the cycle's own reads) and metadata alone cannot.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        _ => true,
    }
}

/// What reaches the loop.
enum Wake {
    Files(notify::Result<notify::Event>),
    /// SIGINT or SIGTERM.
    Stop,
}

/// Runs cycles until a signal stops the loop. Errors only before the first
/// cycle: the caller exits as for a configuration error.
pub fn watch(
    first: Interests,
    options: &WatchOptions,
    cycles: &mut impl Cycles,
) -> Result<(), WatchError> {
    let (tx, rx) = mpsc::channel();
    listen_for_signals(tx.clone()).map_err(|e| WatchError::Signals(e.to_string()))?;
    let events = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let _ = events.send(Wake::Files(event));
    })
    .map_err(|e| WatchError::Events(e.to_string()))?;
    let mut watched = BTreeMap::new();
    let mut interests = first;
    if let Some(problem) = rewatch(&mut watcher, &mut watched, &interests)
        .into_iter()
        .next()
    {
        return Err(WatchError::Events(problem));
    }
    let mut trigger = Trigger::Start;
    loop {
        let started = Instant::now();
        if let Some(next) = cycles.cycle(&trigger) {
            interests = next;
        }
        // After every cycle, not only when the plan changed: a folder that
        // did not exist may exist now.
        for problem in rewatch(&mut watcher, &mut watched, &interests) {
            cycles.warn(&problem);
        }
        match next_trigger(&rx, &interests, options, started + options.poll, cycles) {
            Some(next) => trigger = next,
            None => return Ok(()),
        }
    }
}

/// Waits for the next trigger: changed files once quiet, or the tick at
/// `tick`, whichever comes first (changes pending at the tick make it a
/// change). `None`: a signal asked to stop. Changes that arrived while the
/// cycle ran count: the cycle may have read the file before it changed.
fn next_trigger(
    rx: &Receiver<Wake>,
    interests: &Interests,
    options: &WatchOptions,
    tick: Instant,
    cycles: &mut impl Cycles,
) -> Option<Trigger> {
    let mut changed = BTreeSet::new();
    let mut quiet_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let due = quiet_at.map_or(tick, |q| q.min(tick));
        if now >= due {
            return Some(if changed.is_empty() {
                Trigger::Tick
            } else {
                Trigger::Change(changed.into_iter().collect())
            });
        }
        match rx.recv_timeout(due - now) {
            Ok(Wake::Stop) => return None,
            Ok(Wake::Files(Ok(event))) => {
                // The kernel's queue overflowed: changes were lost, so read
                // everything again.
                let rescan = event.need_rescan();
                let wanted: Vec<&PathBuf> = event
                    .paths
                    .iter()
                    .filter(|p| changes_content(&event.kind) && interests.wants(p))
                    .collect();
                if rescan || !wanted.is_empty() {
                    changed.extend(wanted.into_iter().map(|p| interests.shown(p)));
                    quiet_at = Some(Instant::now() + options.quiet);
                }
            }
            Ok(Wake::Files(Err(e))) => cycles.warn(&format!("file events: {e}")),
            Err(RecvTimeoutError::Timeout) => {}
            // The loop holds a sender: cannot happen; stop rather than spin.
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// Makes the watched folders those `interests` needs; returns the folders
/// that could not be watched, as messages.
fn rewatch(
    watcher: &mut impl Watcher,
    watched: &mut BTreeMap<PathBuf, RecursiveMode>,
    interests: &Interests,
) -> Vec<String> {
    let wanted = interests.folders();
    let mut problems = Vec::new();
    for (folder, mode) in watched.clone() {
        if wanted.get(&folder) != Some(&mode) {
            // A folder that is gone is unwatched already.
            let _ = watcher.unwatch(&folder);
            watched.remove(&folder);
        }
    }
    for (folder, mode) in wanted {
        if watched.contains_key(&folder) {
            continue;
        }
        match watcher.watch(&folder, mode) {
            Ok(()) => {
                watched.insert(folder, mode);
            }
            Err(e) => problems.push(format!("{}: {e}", interests.shown(&folder))),
        }
    }
    problems
}

/// Turns SIGINT and SIGTERM into a [`Wake::Stop`]; a second one exits at
/// once (130 or 143, as a shell reports a process those signals ended).
/// The handlers are installed before this returns, so a signal during the
/// first cycle waits for it to end.
fn listen_for_signals(tx: Sender<Wake>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut interrupt, mut terminate) = runtime.block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })?;
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let mut stopping = false;
                loop {
                    let (name, code) = tokio::select! {
                        _ = interrupt.recv() => ("SIGINT", 130),
                        _ = terminate.recv() => ("SIGTERM", 143),
                    };
                    if stopping {
                        eprintln!("[accord run] {name} again: stopping now");
                        std::process::exit(code);
                    }
                    stopping = true;
                    eprintln!(
                        "[accord run] {name}: stopping once the cycle in progress has ended (again to stop now)"
                    );
                    let _ = tx.send(Wake::Stop);
                }
            })
        });
    }
    #[cfg(not(unix))]
    std::thread::spawn(move || {
        runtime.block_on(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(Wake::Stop);
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        })
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SourceFormat;

    fn interests_of(root: &Path, paths: &[(&str, SourceFormat)], ignored: &[&str]) -> Interests {
        let sources: Vec<SourcePlan> = paths
            .iter()
            .map(|(path, format)| SourcePlan::files("account", path, *format))
            .collect();
        Interests::new(
            root,
            sources.iter(),
            ignored.iter().map(|i| root.join(i)).collect(),
        )
    }

    #[test]
    fn only_the_files_a_source_reads_are_changes() {
        let root = std::env::temp_dir().join(format!("accord-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("data/people")).unwrap();
        std::fs::write(root.join("accounts.csv"), "id\n").unwrap();
        let i = interests_of(
            &root,
            &[
                ("accounts.csv", SourceFormat::Csv),
                ("data/people", SourceFormat::Csv),
                ("data/events/*.jsonl", SourceFormat::Jsonl),
            ],
            &["data/people/out"],
        );
        let wants = |p: &str| i.wants(&root.join(p));
        assert!(wants("accounts.csv"));
        assert!(!wants("accord.toml"), "a file source's neighbours");
        assert!(wants("data/people/2026.csv"));
        assert!(wants("data/people/q1/2026.csv"), "folders are recursive");
        assert!(!wants("data/people/notes.txt"), "another format");
        assert!(!wants("data/people/.2026.csv"), "hidden");
        assert!(!wants("data/people/2026.csv.tmp"), "temporary");
        assert!(!wants("data/people/.cache/2026.csv"), "in a hidden folder");
        assert!(!wants("data/people/out/files/x.csv"), "where deliveries go");
        assert!(wants("data/events/2026-12.jsonl"));
        assert!(!wants("data/events/sub/2026-12.jsonl"), "`*` is one folder");
        assert!(wants("data/events"), "the glob's folder appearing");
        assert!(!wants(".accord/store.db"));
        let folders = i.folders();
        assert_eq!(folders.get(&root), Some(&RecursiveMode::NonRecursive));
        assert_eq!(
            folders.get(&root.join("data/people")),
            Some(&RecursiveMode::Recursive)
        );
        // `data/events` does not exist: its nearest ancestor, alone.
        assert_eq!(
            folders.get(&root.join("data")),
            Some(&RecursiveMode::NonRecursive)
        );
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn remote_sources_are_polled_not_watched() {
        let i = interests_of(
            Path::new("/p"),
            &[("s3://bucket/accounts/*.csv", SourceFormat::Csv)],
            &[],
        );
        assert!(i.folders().is_empty());
    }

    #[test]
    fn triggers_read_short() {
        assert_eq!(Trigger::Start.to_string(), "start");
        assert_eq!(
            Trigger::Change(vec!["a.csv".into(), "b.csv".into(), "c.csv".into()]).to_string(),
            "change a.csv and 2 more"
        );
    }
}
