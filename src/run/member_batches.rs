//! An activation's members as they come from the export query: batches of
//! [`Members`], in member order, one row per member across all of them.
//!
//! The export query's result arrives a batch at a time
//! (`Engine::stream`), and every step after it (the change set, the
//! members file, the delivered files) reads the members again in order, a
//! batch at a time: nothing needs them whole. So the members are held as
//! the batches they came in, up to a budget; past it (a run under a
//! `memory_limit`), the batches go to a spill file under `.accord/tmp/`,
//! written once and read back by each step, so an activation's memory is
//! a few batches whatever its size. The first key of every batch is kept,
//! so a step that wants one audience (an API delivery plans its changes
//! audience by audience) starts at the batch that holds it: the spill
//! file is an Arrow IPC file, whose footer indexes its batches.
//!
//! While the batches are added, the builder checks their order (a key
//! after the last batch's last), keeps the later of two rows with one key
//! (at a batch's edge: within a batch the caller did), counts the members
//! per audience, and takes the run id's digest. The digest covers the
//! payload's column names, then per member its key and payload hash: the
//! same for any cut of the members into batches.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::record_batch::RecordBatch;

use super::members::{Members, column_names, names_hasher, payload_schema};

/// An activation's members, in member order, as batches (see the module
/// doc).
pub struct MemberBatches {
    /// The members' columns: member key, payload, hash.
    schema: SchemaRef,
    /// The batches spilled, first, in order; then `held`.
    spilled: Option<Spilled>,
    held: Vec<RecordBatch>,
    /// Every batch's first key, spilled ones first.
    firsts: Vec<String>,
    len: usize,
    counts: BTreeMap<String, u64>,
    digest: String,
}

/// The spill file and the folder it is in (removed with it).
struct Spilled {
    _folder: tempfile::TempDir,
    file: std::path::PathBuf,
    /// The batches it holds.
    batches: usize,
}

impl MemberBatches {
    /// Members whole, as their one batch.
    pub fn of(members: Members) -> MemberBatches {
        let mut builder = Builder::new(members.batch().schema(), None);
        builder
            .push(members)
            .expect("one batch of the builder's columns is in order with nothing");
        builder.finish().expect("held batches need no file")
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The members' columns: `__member`, the payload, `__hash`.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The payload's column names, in order.
    pub fn columns(&self) -> Vec<String> {
        column_names(&payload_schema(&self.schema))
    }

    /// Members per audience (the `audience` column).
    pub fn count_in(&self, audience: &str) -> u64 {
        self.counts.get(audience).copied().unwrap_or(0)
    }

    /// The run id's digest of the members (hex; see the module doc).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The spill file's size in bytes, when the batches went to one.
    pub fn spilled_bytes(&self) -> Option<u64> {
        let spilled = self.spilled.as_ref()?;
        Some(std::fs::metadata(&spilled.file).map_or(0, |m| m.len()))
    }

    /// The batches, in member order: read back from the spill file first,
    /// then the ones held.
    pub fn batches(&self) -> impl Iterator<Item = Result<Members, String>> + '_ {
        self.batches_after(0)
    }

    /// The batches from the one that holds `key` (or would: the last whose
    /// first key is not after it) to the last, in member order.
    pub fn batches_from(&self, key: &str) -> impl Iterator<Item = Result<Members, String>> + '_ {
        let at = self.firsts.partition_point(|first| first.as_str() <= key);
        self.batches_after(at.saturating_sub(1))
    }

    /// The batches from the `skip`th on.
    fn batches_after(&self, skip: usize) -> impl Iterator<Item = Result<Members, String>> + '_ {
        let spilled: Box<dyn Iterator<Item = Result<RecordBatch, String>>> = match &self.spilled {
            Some(spilled) if skip < spilled.batches => match read_spilled(&spilled.file, skip) {
                Ok(reader) => Box::new(reader.map(|b| b.map_err(|e| e.to_string()))),
                Err(e) => Box::new(std::iter::once(Err(format!(
                    "the members spilled to {}: {e}",
                    spilled.file.display()
                )))),
            },
            _ => Box::new(std::iter::empty()),
        };
        let spilled_batches = self.spilled.as_ref().map_or(0, |s| s.batches);
        spilled
            .chain(
                self.held
                    .iter()
                    .skip(skip.saturating_sub(spilled_batches))
                    .cloned()
                    .map(Ok),
            )
            .map(|batch| batch.and_then(Members::from_stored))
    }

    /// Walks `items` (in member order; each is at a member's row among
    /// all of them, or at none: `row`) alongside the batches: per batch
    /// with items, the batch, its first row and its items, the items at no
    /// row going with the batch where they fall. Items past the last
    /// member come last, with no batch.
    pub fn alongside<'a, T>(
        &'a self,
        items: &'a [T],
        row: impl Fn(&T) -> Option<usize> + 'a,
    ) -> impl Iterator<Item = Result<(Option<Members>, usize, &'a [T]), String>> + 'a {
        let mut batches = self.batches();
        let (mut next, mut start) = (0, 0);
        std::iter::from_fn(move || {
            loop {
                let batch = match batches.next() {
                    Some(Ok(batch)) => Some(batch),
                    Some(Err(e)) => return Some(Err(e)),
                    None if next == items.len() => return None,
                    None => None,
                };
                let end = start + batch.as_ref().map_or(0, Members::len);
                let first = next;
                while items
                    .get(next)
                    .is_some_and(|item| row(item).is_none_or(|r| r < end))
                {
                    next += 1;
                }
                let at = start;
                start = end;
                if next > first {
                    return Some(Ok((batch, at, &items[first..next])));
                }
                if batch.is_none() {
                    next = items.len();
                    return Some(Err("a change refers to a member past the last".into()));
                }
            }
        })
    }

    /// Whether `member` (`audience/key`) is one of the members: looked up
    /// in the batch that would hold it.
    pub fn contains(&self, member: &str) -> Result<bool, String> {
        match self.batches_from(member).next() {
            Some(batch) => Ok(batch?.contains(member)),
            None => Ok(false),
        }
    }
}

/// The spill file's batches from the `skip`th on.
fn read_spilled(file: &Path, skip: usize) -> Result<FileReader<BufReader<File>>, String> {
    let file = File::open(file).map_err(|e| e.to_string())?;
    let mut reader = FileReader::try_new_buffered(file, None).map_err(|e| e.to_string())?;
    reader.set_index(skip).map_err(|e| e.to_string())?;
    Ok(reader)
}

/// Where a builder may spill: a project's `.accord/tmp/`, past so many
/// bytes held.
pub struct SpillPast<'a> {
    pub root: &'a Path,
    pub bytes: usize,
}

/// Takes an activation's members a batch at a time (see the module doc).
pub struct Builder<'a> {
    /// The members' columns, every batch's.
    schema: SchemaRef,
    spill: Option<SpillPast<'a>>,
    /// The last batch added: its last member may yet give way to the next
    /// batch's first.
    last: Option<Members>,
    held: Vec<RecordBatch>,
    held_bytes: usize,
    firsts: Vec<String>,
    writer: Option<(Spilled, FileWriter<BufWriter<File>>)>,
    len: usize,
    counts: BTreeMap<String, u64>,
    hasher: blake3::Hasher,
    /// Members' keys and hashes on their way to the hasher.
    buffer: Vec<u8>,
}

/// The digest's buffer is hashed whenever it holds this much: BLAKE3 runs
/// at full speed on large inputs, and the result does not depend on where
/// its input was cut.
const DIGEST_BUFFER: usize = 1 << 20;

impl<'a> Builder<'a> {
    /// A builder of members of these columns (`__member`, the payload,
    /// `__hash`) that holds every batch (`spill` is `None`), or spills past
    /// a budget.
    pub fn new(schema: SchemaRef, spill: Option<SpillPast<'a>>) -> Builder<'a> {
        Builder {
            hasher: names_hasher(&payload_schema(&schema)),
            schema,
            spill,
            last: None,
            held: Vec::new(),
            held_bytes: 0,
            firsts: Vec::new(),
            writer: None,
            len: 0,
            counts: BTreeMap::new(),
            buffer: Vec::new(),
        }
    }

    /// Adds the next batch of members: its keys after the last batch's
    /// (one equal to the last batch's last replaces it: the later row
    /// stays), its columns the same.
    pub fn push(&mut self, members: Members) -> Result<(), String> {
        if members.is_empty() {
            return Ok(());
        }
        if members.batch().schema() != self.schema {
            return Err("the batches of the members differ in their columns".into());
        }
        if let Some(last) = self.last.take() {
            let (end, start) = (last.keys().value(last.len() - 1), members.keys().value(0));
            let last = match end.cmp(start) {
                std::cmp::Ordering::Less => last,
                std::cmp::Ordering::Equal => last.slice(0, last.len() - 1),
                std::cmp::Ordering::Greater => {
                    return Err(format!("the members are not in member order at `{start}`"));
                }
            };
            self.add(last)?;
        }
        self.last = Some(members);
        Ok(())
    }

    /// Whether a batch whose first key is `first` may come next: its key
    /// is not before the last batch's last.
    pub fn follows(&self, first: &str) -> bool {
        self.last
            .as_ref()
            .is_none_or(|last| last.keys().value(last.len() - 1) <= first)
    }

    /// The members.
    pub fn finish(mut self) -> Result<MemberBatches, String> {
        if let Some(last) = self.last.take() {
            self.add(last)?;
        }
        self.hasher.update(&self.buffer);
        let spilled = match self.writer.take() {
            Some((mut spilled, mut writer)) => {
                writer.finish().map_err(|e| e.to_string())?;
                let mut file = writer.into_inner().map_err(|e| e.to_string())?;
                file.flush().map_err(|e| e.to_string())?;
                spilled.batches = self.firsts.len() - self.held.len();
                Some(spilled)
            }
            None => None,
        };
        Ok(MemberBatches {
            schema: self.schema,
            spilled,
            held: self.held,
            firsts: self.firsts,
            len: self.len,
            counts: self.counts,
            digest: self.hasher.finalize().to_hex().to_string(),
        })
    }

    /// A batch that is final: counted, hashed into the digest, then held
    /// or spilled.
    fn add(&mut self, members: Members) -> Result<(), String> {
        if members.is_empty() {
            return Ok(());
        }
        self.len += members.len();
        if let Some(audiences) = members
            .batch()
            .column_by_name("audience")
            .and_then(|c| c.as_string_opt::<i32>())
        {
            let mut run: Option<(&str, u64)> = None;
            // Members come audience by audience: count runs, not rows.
            for audience in audiences.iter().flatten() {
                match &mut run {
                    Some((name, n)) if *name == audience => *n += 1,
                    _ => {
                        if let Some((name, n)) = run.take() {
                            *self.counts.entry(name.to_string()).or_default() += n;
                        }
                        run = Some((audience, 1));
                    }
                }
            }
            if let Some((name, n)) = run {
                *self.counts.entry(name.to_string()).or_default() += n;
            }
        }
        let (keys, hashes) = (members.keys(), members.hashes());
        for i in 0..keys.len() {
            let key = keys.value(i);
            self.buffer
                .extend_from_slice(&(key.len() as u32).to_le_bytes());
            self.buffer.extend_from_slice(key.as_bytes());
            self.buffer.extend_from_slice(hashes.value(i));
            if self.buffer.len() >= DIGEST_BUFFER {
                self.hasher.update(&self.buffer);
                self.buffer.clear();
            }
        }
        self.firsts.push(keys.value(0).to_string());
        let batch = members.batch().clone();
        if let Some((_, writer)) = &mut self.writer {
            return writer.write(&batch).map_err(|e| e.to_string());
        }
        self.held_bytes += batch.get_array_memory_size();
        self.held.push(batch);
        match &self.spill {
            Some(spill) if self.held_bytes > spill.bytes => self.start_spilling(),
            _ => Ok(()),
        }
    }

    /// Past the budget: the batches held so far, and every one after them,
    /// go to a spill file.
    fn start_spilling(&mut self) -> Result<(), String> {
        let Some(spill) = &self.spill else {
            return Ok(());
        };
        let folder = super::io::scratch_folder(spill.root, "members", "an activation's members")
            .map_err(|e| e.to_string())?;
        let file = folder.path().join("members.arrow");
        let out = File::create(&file).map_err(|e| e.to_string())?;
        let mut writer =
            FileWriter::try_new(BufWriter::new(out), &self.schema).map_err(|e| e.to_string())?;
        for batch in self.held.drain(..) {
            writer.write(&batch).map_err(|e| e.to_string())?;
        }
        self.held_bytes = 0;
        self.writer = Some((
            Spilled {
                _folder: folder,
                file,
                batches: 0,
            },
            writer,
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn members(rows: &[(&str, i64)]) -> Members {
        let keys = StringArray::from_iter_values(rows.iter().map(|(k, _)| format!("a/{k}")));
        let payload = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("audience", DataType::Utf8, true),
                Field::new("score", DataType::Int64, true),
            ])),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "a"))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, v)| *v))),
            ],
        )
        .unwrap();
        Members::new(keys, &payload).unwrap()
    }

    fn rows(batches: &MemberBatches) -> Vec<(String, i64)> {
        batches
            .batches()
            .flat_map(|m| {
                let m = m.unwrap();
                let payload = m.payload();
                let scores = payload
                    .column(1)
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .clone();
                (0..m.len())
                    .map(|i| (m.keys().value(i).to_string(), scores.value(i)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// However the members are cut into batches, and whether they are held
    /// or spilled, they read back the same, count the same and have one
    /// digest; a key repeated at a batch's edge keeps its later row.
    #[test]
    fn batches_held_or_spilled_are_the_same_members() {
        let whole = MemberBatches::of(members(&[("1", 1), ("2", 2), ("3", 3), ("4", 4)]));
        let root = tempfile::tempdir().unwrap();
        for spill in [None, Some(0)] {
            let spill = spill.map(|bytes| SpillPast {
                root: root.path(),
                bytes,
            });
            let spills = spill.is_some();
            let mut builder = Builder::new(whole.schema().clone(), spill);
            builder.push(members(&[("1", 1), ("2", 9)])).unwrap();
            builder.push(members(&[("2", 2), ("3", 3)])).unwrap();
            builder.push(members(&[])).unwrap();
            builder.push(members(&[("4", 4)])).unwrap();
            let cut = builder.finish().unwrap();
            assert_eq!(cut.spilled_bytes().is_some_and(|b| b > 0), spills);
            assert_eq!(rows(&cut), rows(&whole));
            assert_eq!(cut.len(), 4);
            assert_eq!(cut.count_in("a"), 4);
            assert_eq!(cut.digest(), whole.digest());
            // A key is found in the batch that holds it, spilled or held.
            for key in ["a/1", "a/2", "a/3", "a/4"] {
                assert!(cut.contains(key).unwrap(), "{key}");
                let first = cut.batches_from(key).next().unwrap().unwrap();
                assert!(first.contains(key), "{key} is in the first batch from it");
            }
            for key in ["", "a/", "a/0", "a/25", "a/5", "b"] {
                assert!(!cut.contains(key).unwrap(), "{key}");
            }
            // Batches `a/1`, `a/2 a/3`, `a/4`: the members before the
            // first batch from a key.
            let before = |key| {
                let from: usize = cut.batches_from(key).map(|b| b.unwrap().len()).sum();
                4 - from
            };
            assert_eq!(before("a/0"), 0, "before the first key: from the first");
            assert_eq!(before("a/25"), 1, "between keys: from the batch before");
            assert_eq!(before("z"), 3, "past the last key: the last batch");
        }
        let other = MemberBatches::of(members(&[("1", 1), ("2", 2), ("3", 3), ("4", 5)]));
        assert_ne!(other.digest(), whole.digest());
    }

    #[test]
    fn batches_out_of_order_are_refused() {
        let schema = MemberBatches::of(members(&[("1", 1)])).schema().clone();
        let mut builder = Builder::new(schema, None);
        builder.push(members(&[("2", 2)])).unwrap();
        assert!(builder.follows("a/2") && !builder.follows("a/1"));
        let error = builder.push(members(&[("1", 1)])).unwrap_err();
        assert_eq!(error, "the members are not in member order at `a/1`");
    }

    #[test]
    fn no_members_have_a_digest_of_their_columns() {
        let schema = MemberBatches::of(members(&[("1", 1)])).schema().clone();
        let none = Builder::new(schema.clone(), None).finish().unwrap();
        assert_eq!(none.len(), 0);
        assert_eq!(none.batches().count(), 0);
        let again = Builder::new(schema, None).finish().unwrap();
        assert_eq!(none.digest(), again.digest());
    }
}
