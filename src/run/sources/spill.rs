//! Text sources (CSV, JSONL) and PostgreSQL sources streamed into the
//! embedded engine: their rows are typed and checked exactly as a whole
//! read does (`typing::Builder`: the same bad rows, samples and
//! diagnostics), but once a batch of typed rows is full it is written to a
//! local Parquet file instead of being held. The file is then the
//! source's table, streamed like a Parquet source (`streamed::streams`),
//! and is removed once the run lets go of the source. A source that never
//! fills a batch is kept in memory as it was: a file would cost more than
//! it saves.
//!
//! What stays in memory while the files are read: the batch being typed
//! and a 16-byte hash of every key seen so far (the duplicate-key check,
//! `keys::KeySet`), never the rows. Freshness is found batch by batch.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::run::engine::Scan;
use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderMetadata;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::freshness::Newest;
use super::parquet::{Target, footer, layout};
use super::streamed::{File, stamp, streams};
use super::typing::arrow_schema;
use crate::plan::{SchemaPlan, SourcePlan};
use crate::time::Micros;

/// Typed rows per batch written: the Builder holds at most this many, and
/// one part of a file typed on another core (a few thousand rows) more.
pub(super) const SPILL_ROWS: usize = 64 * 1024;

/// Rows per row group of the file: two batches, so a large source is many
/// row groups, shared among the cores when it is scanned.
const GROUP_ROWS: usize = 2 * SPILL_ROWS;

/// Where a source's typed rows go (see the module doc).
pub(super) struct Spill<'a> {
    plans: (&'a SourcePlan, &'a SchemaPlan),
    now: Micros,
    /// The project, where the file's folder is made, and the source.
    root: PathBuf,
    name: String,
    arrow: SchemaRef,
    /// The file, once a batch filled.
    file: Option<Writing>,
    /// The batches held where no folder could be made (a read-only
    /// project): the source is then held whole, as before streaming.
    held: Vec<RecordBatch>,
    /// The folder to write the file in from the first row on, however
    /// few rows there are (an append-only source's new rows, which its
    /// cache takes as a file): `None` makes a folder once a batch fills.
    eager: Option<Arc<tempfile::TempDir>>,
    found: Newest,
}

/// The spill file being written.
struct Writing {
    folder: Arc<tempfile::TempDir>,
    path: PathBuf,
    writer: ArrowWriter<std::fs::File>,
}

/// How typed rows are written to a local file (a spill file, an
/// append-only source's cached segment). Written once and read a few times
/// on this machine: plain pages, no compression and no statistics (nothing
/// prunes by them), so writing costs little more than copying the rows.
pub(super) fn spill_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_max_row_group_row_count(Some(GROUP_ROWS))
        .build()
}

/// A source's rows once typed: held batches, or its file, checked.
pub(super) enum Rows {
    Held(Vec<RecordBatch>),
    File(Box<File>),
}

impl Rows {
    /// The rows as the engine takes them: batches, or streams over the
    /// file (and no batches).
    pub(super) fn into_tables(self) -> (Vec<RecordBatch>, Vec<Arc<dyn Scan>>) {
        match self {
            Rows::Held(batches) => (batches, Vec::new()),
            Rows::File(file) => {
                let target = file.target.clone();
                (Vec::new(), streams(vec![*file], &target))
            }
        }
    }
}

impl<'a> Spill<'a> {
    /// Where the rows of source `name` (of project `root`) go; nothing is
    /// made before a batch is full.
    pub(super) fn new(
        (root, name): (&Path, &str),
        (source, schema): (&'a SourcePlan, &'a SchemaPlan),
        now: Micros,
    ) -> Spill<'a> {
        Spill {
            plans: (source, schema),
            now,
            root: root.to_path_buf(),
            name: name.to_string(),
            arrow: arrow_schema(schema),
            file: None,
            held: Vec::new(),
            eager: None,
            found: Newest::none(),
        }
    }

    /// Writes the file in `folder`, whatever the number of rows: the rows
    /// are never held.
    pub(super) fn in_folder(mut self, folder: Arc<tempfile::TempDir>) -> Spill<'a> {
        self.eager = Some(folder);
        self
    }

    /// A full batch of typed columns (one per schema field, as the
    /// Builder gives them): written to the file, made on the first.
    pub(super) fn write(&mut self, columns: Vec<ArrayRef>) -> Result<(), String> {
        let batch = self.batch(columns)?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.file.is_none() && self.held.is_empty() {
            self.file = self.create()?;
        }
        match &mut self.file {
            Some(file) => file
                .writer
                .write(&batch)
                .map_err(|e| format!("{}: {e}", file.path.display())),
            None => {
                self.held.push(batch);
                Ok(())
            }
        }
    }

    /// The batch of `columns`, its freshness noted.
    fn batch(&mut self, columns: Vec<ArrayRef>) -> Result<RecordBatch, String> {
        let batch = RecordBatch::try_new(self.arrow.clone(), columns).map_err(|e| e.to_string())?;
        let (source, schema) = self.plans;
        self.found.merge(Newest::of(
            std::slice::from_ref(&batch),
            schema,
            source,
            self.now,
        ));
        Ok(batch)
    }

    /// The file, in a new folder; `None` where no folder can be made.
    fn create(&self) -> Result<Option<Writing>, String> {
        let folder = match &self.eager {
            Some(folder) => folder.clone(),
            None => match super::run_folder(&self.root, &self.name) {
                Some(folder) => folder,
                None => return Ok(None),
            },
        };
        let path = folder.path().join("rows.parquet");
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let writer = ArrowWriter::try_new(file, self.arrow.clone(), Some(spill_properties()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(Writing {
            folder,
            path,
            writer,
        }))
    }

    /// The last typed `columns` added: the source's rows (its file
    /// closed and streamed by every field, or the batches held), and what
    /// freshness found.
    pub(super) fn finish(mut self, columns: Vec<ArrayRef>) -> Result<(Rows, Newest), String> {
        let last = self.batch(columns)?;
        if self.file.is_none() && self.eager.is_some() {
            self.file = self.create()?;
        }
        let Some(Writing {
            folder,
            path,
            mut writer,
        }) = self.file
        else {
            self.held.push(last);
            return Ok((Rows::Held(self.held), self.found));
        };
        let shown = path.display().to_string();
        let failed = |e: &dyn std::fmt::Display| format!("{shown}: {e}");
        writer.write(&last).map_err(|e| failed(&e))?;
        writer.close().map_err(|e| failed(&e))?;
        let (_, schema) = self.plans;
        let written = footer(&path, &shown)?;
        let file = checked_file((path, shown), written, schema, Some(folder))?;
        Ok((Rows::File(Box::new(file)), self.found))
    }
}

/// A Parquet file of typed rows that were checked when they were typed (a
/// spill file, an append-only source's cached rows), as a streamed source
/// reads it, from its footer: every field, no row left out. `folder`: kept
/// while the file is read.
pub(super) fn checked_file(
    (path, shown): (PathBuf, String),
    footer: ArrowReaderMetadata,
    schema: &SchemaPlan,
    folder: Option<Arc<tempfile::TempDir>>,
) -> Result<File, String> {
    // Every field, as a whole read of text files gives them.
    let every: BTreeSet<String> = schema.fields.keys().cloned().collect();
    Ok(File {
        layout: layout(footer, Some(&every)),
        stamp: stamp(&path).map_err(|e| format!("{shown}: {e}"))?,
        path,
        shown,
        left_out: Vec::new(),
        target: Arc::new(Target::of(schema)),
        _folder: folder,
    })
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::super::streamed::tests::rows_of;
    use super::super::tests::{Scratch, field, local_inputs, text_source, tiered};
    use super::super::{Earlier, Inputs, Loaded, decode, run_folder};
    use super::*;

    /// Every row of a source, in key order, as one batch.
    fn all_rows(loaded: &Loaded) -> RecordBatch {
        let rows = rows_of(loaded);
        datafusion::arrow::compute::concat_batches(&rows[0].schema(), &rows).expect("concats")
    }

    /// The text files under `data` of `dir` read whole, or spilled.
    fn read(dir: &Scratch, format: &str, now: Micros, spill: bool) -> Loaded {
        let schema = tiered(vec![("at", field("timestamp", None))]);
        let source = text_source("data", format);
        let (inputs, problems) = local_inputs(&dir.0, "data", format);
        let spill = spill.then_some(dir.0.as_path());
        let inputs = Inputs {
            inputs,
            remote: None,
            problems,
            spill,
        };
        decode("t", &source, &schema, now, None, inputs, Earlier::default()).expect("reads")
    }

    /// Text files of more rows than a spilled batch, with bad rows of every
    /// kind on both sides of the batches' edges and a key repeated across
    /// them and across files: spilled, they give what reading them whole
    /// gives (the report, diagnostics, rows), and the spill file goes with
    /// the source.
    #[test]
    fn a_spilled_text_source_is_the_source_read_whole() {
        let dir = Scratch::new("spill");
        let hour = 3_600_000_000i64;
        let now = 1_000 * hour;
        let at = |i: usize| crate::time::format_timestamp(now - (i as i64 % 50) * hour);
        let rows = SPILL_ROWS * 2 + 100;
        let mut csv = String::from("id,n,tier,at\n");
        for i in 0..rows {
            let (n, tier) = match i {
                _ if i == SPILL_ROWS - 1 => ("five".to_string(), "gold"),
                _ if i == SPILL_ROWS => (i.to_string(), "tin"),
                _ => (i.to_string(), ["gold", "silver"][i % 2]),
            };
            // Row 7's key again in the second batch; a missing key in the third.
            let id = match i {
                _ if i == SPILL_ROWS + 3 => "k7".to_string(),
                _ if i == 2 * SPILL_ROWS + 1 => String::new(),
                _ => format!("k{i}"),
            };
            writeln!(csv, "{id},{n},{tier},{}", at(i)).expect("writes");
        }
        dir.write("data/a.csv", &csv);
        // A second file: a key of the first file's last batch, a future time.
        let last = format!("k{}", rows - 1);
        dir.write(
            "data/b.csv",
            &format!(
                "id,n,tier,at\n{last},1,gold,{}\nb1,2,gold,{}\n",
                at(0),
                crate::time::format_timestamp(now + hour)
            ),
        );
        let whole = read(&dir, "csv", now, false);
        let spilled = read(&dir, "csv", now, true);
        assert!(spilled.batches.is_empty() && !spilled.streams.is_empty());
        assert_eq!(spilled.report, whole.report);
        assert_eq!(spilled.report.bad_rows, 5, "{:?}", spilled.report);
        assert_eq!(spilled.report.rows, rows as u64 - 4 + 1);
        assert_eq!(spilled.present, whole.present);
        assert_eq!(
            format!("{:?}", spilled.diagnostics),
            format!("{:?}", whole.diagnostics)
        );
        assert_eq!(all_rows(&spilled), all_rows(&whole));
        let tmp = dir.0.join(".accord/tmp");
        let folders = || std::fs::read_dir(&tmp).expect("the folder").count();
        assert_eq!(folders(), 1);
        drop(spilled);
        assert_eq!(folders(), 0);
    }

    /// A source that never fills a batch is held as it was: no file, no
    /// folder. Where the run's folder cannot be made (here a file sits at
    /// `.accord/tmp`; a read-only project is the same), a large source is
    /// held whole too, as before streaming, and reads the same.
    #[test]
    fn small_sources_and_read_only_projects_hold_their_rows() {
        let small = Scratch::new("spill-small");
        small.write("data/a.csv", "id,n,tier,at\nk1,1,gold,\nk1,2,gold,\n");
        let held = read(&small, "csv", 0, true);
        assert_eq!(held.batches.len(), 1);
        assert!(held.streams.is_empty());
        assert_eq!(held.report, read(&small, "csv", 0, false).report);
        assert!(!small.0.join(".accord").exists());

        let dir = Scratch::new("spill-none");
        let mut csv = String::from("id,n,tier,at\n");
        for i in 0..SPILL_ROWS + 5 {
            writeln!(csv, "k{i},{i},gold,").expect("writes");
        }
        dir.write("data/a.csv", &csv);
        dir.write(".accord/tmp", "not a folder");
        assert!(run_folder(&dir.0, "t").is_none());
        let held = read(&dir, "csv", 0, true);
        assert!(held.streams.is_empty());
        assert_eq!(held.report, read(&dir, "csv", 0, false).report);
        assert_eq!(all_rows(&held), all_rows(&read(&dir, "csv", 0, false)));
    }

    /// JSON lines spill as CSV does.
    #[test]
    fn a_spilled_jsonl_source_is_the_source_read_whole() {
        let dir = Scratch::new("spill-jsonl");
        let mut lines = String::new();
        for i in 0..SPILL_ROWS + 10 {
            let id = if i == SPILL_ROWS + 2 { 5 } else { i };
            writeln!(
                lines,
                r#"{{"id": "k{id}", "n": {i}, "tier": "gold", "at": "2026-01-01T00:00:00Z"}}"#
            )
            .expect("writes");
        }
        lines.push_str("{\"id\": \"x\", \"n\": \"many\"}\n");
        dir.write("data/a.jsonl", &lines);
        let whole = read(&dir, "jsonl", 0, false);
        let spilled = read(&dir, "jsonl", 0, true);
        assert_eq!(spilled.report, whole.report);
        assert_eq!(spilled.report.bad_rows, 2, "{:?}", spilled.report);
        assert_eq!(all_rows(&spilled), all_rows(&whole));
    }
}
