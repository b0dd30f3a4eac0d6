//! What goes wrong in a run, as values: which file, which activation, which
//! destination. A `RunError` either stops the whole run (the CLI prints it
//! and exits 2; the run log records it) or ends one activation `failed`
//! while the others go on ([`RunError::fails_one_activation`]). Either way it
//! reaches the user as a coded diagnostic ([`RunError::diagnostic`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::report::RunDiagnostic;
use crate::deliver::storage::StorageErrorKind;
use crate::diag::codes;
use crate::plan::Entity;
use crate::source::SourceSet;
use crate::store::StoreError;
use crate::syntax::{Sp, Syntax};

#[derive(Clone, Debug, PartialEq)]
pub enum RunError {
    /// Another run of the project holds its lock (R0102).
    Locked { project: String, holder: String },
    /// The project's lock file cannot be opened or locked.
    LockFile {
        project: String,
        path: PathBuf,
        reason: String,
    },
    /// A name would put a file outside its folder, or a symbolic link sits
    /// where the file goes (R0101). `subject` names the definition
    /// (`activation \`x\``); `link` is the link's path.
    Outside {
        subject: String,
        folder: PathBuf,
        why: &'static str,
        link: Option<PathBuf>,
    },
    /// The run's store (`.accord/store.db`, or a state file it migrates) is
    /// refused as not ours (R0104) or cannot be read or written (R0107).
    Store(StoreError),
    /// A destination cannot be written (R0106). `path` as the report shows it.
    Delivery {
        activation: String,
        destination: String,
        path: String,
        reason: String,
    },
    /// A delivery to an API destination cannot start: a secret that is not
    /// set, a destination without a list to send to (R0109). The reason
    /// never holds a secret's value.
    Api {
        activation: String,
        destination: String,
        reason: String,
    },
    /// A bucket or SFTP server cannot be reached, refuses the credentials
    /// or a write, or its host key is not the pinned one (R0110).
    /// `location` is where the files go (`s3://bucket/prefix/`).
    Storage {
        activation: String,
        destination: String,
        location: String,
        kind: StorageErrorKind,
        reason: String,
    },
    /// A source's bucket, database or API cannot be reached, or refuses the
    /// credentials (R0011). `location` is where it reads
    /// (`s3://lake/crm/`, `postgres://db.internal:5432/crm`, the Marketo
    /// instance), never with a secret.
    SourceAccess {
        source: String,
        location: String,
        kind: StorageErrorKind,
        reason: String,
    },
    /// A database source's columns do not fit its schema (R0013): a field
    /// without a column, or a column whose type does not convert to the
    /// field's. `relation` is what it reads (`table crm.contacts`, `query`).
    SourceColumns {
        source: String,
        location: String,
        relation: String,
        schema: String,
        mismatches: Vec<ColumnMismatch>,
    },
    /// A Marketo activity source names activity types the instance does
    /// not have (R0014). `known` is every type name the instance lists.
    ActivityTypes {
        source: String,
        instance: String,
        unknown: Vec<String>,
        known: Vec<String>,
    },
    /// A source cannot be read at all (its message names the file).
    Source { source: String, reason: String },
    /// The engine failed on one definition's query: the definition and where
    /// it is written (`file:line`), never the SQL.
    Engine {
        kind: &'static str,
        name: String,
        place: Option<String>,
        reason: String,
    },
    /// The audience query of an entity failed and no single audience could
    /// be blamed.
    Audiences { entity: Entity, reason: String },
    /// The rendered jobs lack one the run needs.
    MissingJob { path: String },
    /// Setting up the engine's tables (typing, unifying, linking) failed.
    Data { reason: String },
    /// The run log cannot be appended to.
    Log { path: PathBuf, reason: String },
}

impl RunError {
    /// Whether the problem is one activation's: it ends that activation
    /// `failed` and the run goes on. Every other error stops the run.
    pub fn fails_one_activation(&self) -> bool {
        matches!(
            self,
            RunError::Outside { .. }
                | RunError::Store(StoreError::Corrupt { .. })
                | RunError::Delivery { .. }
                | RunError::Api { .. }
                | RunError::Storage { .. }
                | RunError::Engine {
                    kind: "activation",
                    ..
                }
        )
    }

    /// The coded diagnostic the report and the CLI show.
    pub fn diagnostic(&self) -> RunDiagnostic {
        let message = self.to_string();
        match self {
            RunError::Locked { .. } => RunDiagnostic::new(codes::run::PROJECT_LOCKED, message)
                .at(".accord/lock")
                .help("wait for it to finish, or run with `--wait` to wait for the lock"),
            RunError::LockFile { path, .. } => {
                RunDiagnostic::new(codes::run::RUN_FAILED, message).at(path.display().to_string())
            }
            RunError::Outside { link, .. } => {
                let d = RunDiagnostic::new(codes::run::PATH_OUTSIDE_ROOT, message);
                match link {
                    None => d.help("rename the definition to a plain name (letters, digits, `_`, `-`)"),
                    Some(link) => d.at(link.display().to_string()).help(
                        "remove the symbolic link: accord writes only inside the project's own folders",
                    ),
                }
            }
            RunError::Store(e) => {
                let code = if e.refused() {
                    codes::run::FOREIGN_STATE
                } else {
                    codes::run::RUN_FAILED
                };
                let d = RunDiagnostic::new(code, message).at(e.path());
                match e.help() {
                    Some(help) => d.help(help),
                    None => d,
                }
            }
            RunError::Delivery { path, .. } => {
                RunDiagnostic::new(codes::run::DELIVERY_FAILED, message)
                    .at(path.clone())
                    .help(
                        "make the destination's folder writable; the next run delivers what this one could not",
                    )
            }
            RunError::Api { .. } => RunDiagnostic::new(codes::run::API_DELIVERY_FAILED, message)
                .help(
                    "set the destination's secrets in the environment, or run with `--dry-run` to see the requests without sending them",
                ),
            RunError::Storage { kind, .. } => {
                RunDiagnostic::new(codes::run::FILE_STORE_FAILED, message).help(match kind {
                    StorageErrorKind::Unreachable => {
                        "check the destination's host, port or `endpoint` and the network; the next run delivers what this one could not"
                    }
                    StorageErrorKind::Denied => {
                        "check the credentials the destination references and that they may write there; nothing was delivered"
                    }
                    StorageErrorKind::HostKeyMismatch => {
                        "the server is not the one whose key was pinned: confirm the new key with its owner (`ssh-keyscan`) before changing `host_key`"
                    }
                    StorageErrorKind::NotFound => {
                        "create the bucket, container or folder, or fix its name in the destination"
                    }
                    StorageErrorKind::Other => {
                        "the message is the store's own; the next run delivers what this one could not"
                    }
                })
            }
            RunError::SourceAccess { kind, .. } => {
                RunDiagnostic::new(codes::run::SOURCE_UNREACHABLE, message).help(match kind {
                    StorageErrorKind::Unreachable => {
                        "check the source's host, port or `endpoint` and the network; nothing was read, nothing delivered"
                    }
                    StorageErrorKind::Denied => {
                        "check the credentials the source references and that they may read there; nothing was read, nothing delivered"
                    }
                    StorageErrorKind::NotFound => {
                        "check the bucket, container, table or instance the source names"
                    }
                    StorageErrorKind::HostKeyMismatch | StorageErrorKind::Other => {
                        "the message is the server's own; nothing was read, nothing delivered"
                    }
                })
            }
            RunError::SourceColumns {
                relation,
                mismatches,
                ..
            } => {
                let d = RunDiagnostic::new(codes::run::SOURCE_COLUMNS_MISMATCH, message)
                    .at(relation.clone());
                match mismatches.iter().find_map(|m| m.near.as_ref().map(|n| (m, n))) {
                    Some((m, near)) => d.help(format!(
                        "did you mean `{near}`? rename the field `{}` in the schema, or select the column under the field's name in a `query` (`SELECT \"{near}\" AS \"{}\" ...`)",
                        m.column, m.column
                    )),
                    None => d.help(
                        "change the field's type in the schema, or read the source through a `query` that casts the column (`SELECT employees::bigint AS employees ...`)",
                    ),
                }
            }
            RunError::ActivityTypes { unknown, known, .. } => {
                let suggestions: Vec<String> = unknown
                    .iter()
                    .filter_map(|name| {
                        crate::diag::did_you_mean(name, known.iter().map(String::as_str))
                            .map(|best| format!("`{best}` for `{name}`"))
                    })
                    .collect();
                let help = if suggestions.is_empty() {
                    "write the names as Marketo lists them (Admin > Activity types, or `GET /rest/v1/activities/types.json`)".to_string()
                } else {
                    format!(
                        "did you mean {}? activity type names are Marketo's, spelled as it lists them",
                        suggestions.join(", ")
                    )
                };
                RunDiagnostic::new(codes::run::UNKNOWN_ACTIVITY_TYPE, message).help(help)
            }
            RunError::Engine { reason, .. } | RunError::Audiences { reason, .. }
                if out_of_memory(reason) =>
            {
                RunDiagnostic::new(codes::run::ENGINE_FAILED, message).help(OUT_OF_MEMORY_HELP)
            }
            RunError::Data { reason } if out_of_memory(reason) => {
                RunDiagnostic::new(codes::run::RUN_FAILED, message).help(OUT_OF_MEMORY_HELP)
            }
            RunError::Engine { .. } | RunError::Audiences { .. } => {
                RunDiagnostic::new(codes::run::ENGINE_FAILED, message)
                    .help("`accord render` shows the query; `accord explain account` evaluates a rule step by step")
            }
            RunError::Source { .. }
            | RunError::MissingJob { .. }
            | RunError::Data { .. }
            | RunError::Log { .. } => RunDiagnostic::new(codes::run::RUN_FAILED, message),
        }
    }
}

/// Whether the engine stopped a query at its memory limit
/// (`memory_limit`): DataFusion's "Resources exhausted".
fn out_of_memory(reason: &str) -> bool {
    reason.contains("Resources exhausted")
}

const OUT_OF_MEMORY_HELP: &str = "the query needed more memory than the engine's `memory_limit`, in a step that cannot spill to disk (a join's smaller side, a sort's merge); raise `memory_limit` in the environment, or pass a larger `--memory-limit`";

/// The engine's reason without what follows its first line (a plan or a
/// query dump, in some errors). A first line that opens a debug dump (the
/// regex crate's `Syntax(`) is completed by the dump's own `error:` line,
/// which says what is wrong.
fn first_line(error: &str) -> String {
    let first = error.lines().next().unwrap_or(error).trim();
    let Some(opened) = first.strip_suffix('(') else {
        return first.to_string();
    };
    match error.lines().find_map(|l| l.trim().strip_prefix("error:")) {
        Some(why) => format!("{}: {}", opened.trim_end(), why.trim()),
        None => opened.trim_end().to_string(),
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Locked { project, holder } => {
                write!(
                    f,
                    "project `{project}`: another run holds the lock ({holder})"
                )
            }
            RunError::LockFile {
                project, reason, ..
            } => write!(
                f,
                "project `{project}`: the lock file cannot be opened: {reason}"
            ),
            RunError::Outside {
                subject,
                folder,
                why,
                ..
            } => write!(
                f,
                "{subject}: the name cannot be a file name inside `{}`: {why}",
                folder.display()
            ),
            RunError::Store(e) => e.fmt(f),
            RunError::Api {
                activation,
                destination,
                reason,
            } => write!(
                f,
                "activation `{activation}`: the delivery to `{destination}` cannot start: {reason}"
            ),
            RunError::Delivery {
                activation,
                destination,
                reason,
                ..
            } => write!(
                f,
                "activation `{activation}`: destination `{destination}` could not be written: {reason}"
            ),
            RunError::Storage {
                activation,
                destination,
                location,
                reason,
                ..
            } => write!(
                f,
                "activation `{activation}`: destination `{destination}` ({location}): {reason}"
            ),
            RunError::SourceAccess {
                source,
                location,
                reason,
                ..
            } => write!(f, "source `{source}` ({location}): {reason}"),
            RunError::SourceColumns {
                source,
                location,
                relation,
                schema,
                mismatches,
            } => {
                write!(
                    f,
                    "source `{source}` ({location}, {relation}): the columns do not fit schema `{schema}`: "
                )?;
                for (i, m) in mismatches.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    match &m.found {
                        Some(found) => write!(
                            f,
                            "column `{}` is {found}, which does not convert to {}",
                            m.column, m.expected
                        )?,
                        None => write!(
                            f,
                            "column `{}` is missing ({} expected)",
                            m.column, m.expected
                        )?,
                    }
                }
                Ok(())
            }
            RunError::ActivityTypes {
                source,
                instance,
                unknown,
                ..
            } => write!(
                f,
                "source `{source}` ({instance}): the instance has no activity type {}",
                unknown
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            RunError::Source { source, reason } => write!(f, "source `{source}`: {reason}"),
            RunError::Engine {
                kind,
                name,
                place,
                reason,
            } => {
                write!(f, "{kind} `{name}`")?;
                if let Some(place) = place {
                    write!(f, " ({place})")?;
                }
                write!(f, ": the engine failed: {}", first_line(reason))
            }
            RunError::Audiences { entity, reason } => write!(
                f,
                "the {entity} audiences failed in the engine: {}",
                first_line(reason)
            ),
            RunError::MissingJob { path } => write!(f, "the rendered jobs have no {path}"),
            RunError::Data { reason } => f.write_str(reason),
            RunError::Log { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for RunError {}

/// One schema field a database source cannot provide (R0013).
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnMismatch {
    /// The field, and the column of that name.
    pub column: String,
    /// The column's PostgreSQL type (`text`, `numeric`), `None` when the
    /// source has no such column.
    pub found: Option<String>,
    /// What the field needs: `an int`, `a timestamp`.
    pub expected: String,
    /// A column of a close name, when the field has none.
    pub near: Option<String>,
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> RunError {
        RunError::Store(e)
    }
}

/// Where each audience and activation is written (`file:line` of its
/// `[KIND.NAME]` table), for messages about a definition the engine failed
/// on. The CLI builds it from the sources it compiled, so a run never reads
/// the spec files again.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Places(BTreeMap<(String, String), String>);

impl Places {
    /// Where every audience and activation of the checked project is
    /// defined: the line of its name in its `[KIND.NAME]` table (the first,
    /// should a name be defined twice).
    pub fn of_definitions(syntax: &Syntax, sources: &SourceSet) -> Places {
        let mut places = BTreeMap::new();
        let mut add = |kind: &str, name: &Sp<String>| {
            let file = sources.file(name.span.source);
            let (line, _) = file.line_col(name.span.start as usize);
            places
                .entry((kind.to_string(), name.value.clone()))
                .or_insert_with(|| format!("{}:{line}", file.path));
        };
        for a in &syntax.audiences {
            add("audience", &a.name);
        }
        for a in &syntax.activations {
            add("activation", &a.name);
        }
        Places(places)
    }

    /// `file:line` of `[KIND.NAME]`, when written in the specs.
    pub fn of(&self, kind: &str, name: &str) -> Option<String> {
        self.0.get(&(kind.to_string(), name.to_string())).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    #[test]
    fn places_name_the_line_of_each_definition() {
        let sources = SourceSet::with_broken_links(
            vec![
                SourceFile::new(
                    "a.toml",
                    "[project]\nname = \"x\"\n\n[audience.Big]\nrule = \"true\"\n",
                ),
                SourceFile::new(
                    "b.toml",
                    "[activation.send.map]\nx = \"y\"\n\n[activation.send]\ndestination = \"d\"\n\
                     \n[audience.Bigger]\nrule = \"true\"\n",
                ),
            ],
            Vec::new(),
        );
        let (syntax, _) = crate::syntax::parse(&sources);
        let places = Places::of_definitions(&syntax, &sources);
        assert_eq!(places.of("audience", "Big").as_deref(), Some("a.toml:4"));
        assert_eq!(places.of("audience", "Bigger").as_deref(), Some("b.toml:7"));
        // The activation's own table, not the sub-table written before it.
        assert_eq!(places.of("activation", "send").as_deref(), Some("b.toml:4"));
        assert_eq!(places.of("audience", "Other"), None);
    }

    #[test]
    fn one_activations_problems_do_not_stop_the_run() {
        let delivery = RunError::Delivery {
            activation: "a".into(),
            destination: "files".into(),
            path: "out/a".into(),
            reason: "denied".into(),
        };
        assert!(delivery.fails_one_activation());
        assert_eq!(delivery.diagnostic().code, "R0106");
        let unusable = RunError::Store(StoreError::Database {
            reason: "disk I/O error".into(),
        });
        assert!(!unusable.fails_one_activation());
        assert_eq!(
            unusable.diagnostic().to_text(),
            "error[R0107]: the run's store cannot be read or written: disk I/O error\n  --> .accord/store.db\n"
        );
        let corrupt = RunError::Store(StoreError::Corrupt {
            activation: "a".into(),
            why: "expected value".into(),
        });
        assert!(corrupt.fails_one_activation());
        assert_eq!(corrupt.diagnostic().code, "R0104");
    }

    #[test]
    fn an_engine_reason_is_its_first_line_or_the_error_of_its_dump() {
        assert_eq!(
            first_line("Schema error: no field x\nplan:\n  ..."),
            "Schema error: no field x"
        );
        let regex = "Compute error: Regular expression did not compile: Syntax(\n~~~\nregex parse error:\n    [\n    ^\nerror: unclosed character class\n~~~\n)";
        assert_eq!(
            first_line(regex),
            "Compute error: Regular expression did not compile: Syntax: unclosed character class"
        );
    }
}
