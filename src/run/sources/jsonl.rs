//! Decoding JSON lines: one file in, each line's object typed into the
//! source's `Builder` out, with a key written twice on a line, keys no
//! field declares and an empty file as diagnostics.

use std::borrow::Cow;

use rayon::prelude::*;
use serde_json::Value;

use super::typing::{Builder, Cell, Fields, Line, Part, from_json};
use crate::diag::codes;
use crate::run::report::RunDiagnostic;

/// Lines per part typed on a core of their own.
const PART_LINES: usize = 8 * 1024;

/// Reads one JSON lines file (a local file or a fetched object: `input`),
/// shown in messages as `shown`.
///
/// Lines are independent (unlike CSV records, where a quote may span
/// lines), so the file is cut into parts of [`PART_LINES`] lines, parsed
/// and typed a part per core at a time while this thread takes in the
/// parts typed before (into the builder, in file order, where their keys
/// are checked) and reads the next: the rows, bad rows, samples and
/// diagnostics are those of reading a line at a time.
pub(super) fn read_jsonl(
    input: impl std::io::Read,
    shown: &str,
    b: &mut Builder<'_>,
    present: &mut [bool],
) -> Result<(), String> {
    let mut reader = std::io::BufReader::new(input);
    let file = b.file(format!("{shown}:"));
    let prefix = format!("{shown}:");
    let of = b.of();
    let cores = rayon::current_num_threads().max(1);
    let mut seen = Seen::new(present.len());
    let mut number = 0u64;
    let mut chunks = read_chunks(&mut reader, cores, &mut number, shown)?;
    let mut typed: Vec<(Part<'_>, Seen)> = Vec::new();
    while !chunks.is_empty() || !typed.is_empty() {
        let (these, done) = (std::mem::take(&mut chunks), std::mem::take(&mut typed));
        let mut next = Ok(Vec::new());
        rayon::in_place_scope(|scope| {
            scope.spawn(|_| {
                typed = these
                    .into_par_iter()
                    .map(|chunk| chunk.typed(&of, file, &prefix))
                    .collect();
            });
            for (part, part_seen) in done {
                b.absorb(part);
                seen.take_in(part_seen);
            }
            next = read_chunks(&mut reader, cores, &mut number, shown);
        });
        chunks = next?;
    }
    for (i, p) in seen.present.iter().enumerate() {
        present[i] |= p;
    }
    for (key, line) in seen.unknown {
        b.unknown_column(shown, &format!("{shown}:{line}"), "key", &key);
    }
    if let Some((line, key)) = seen.duplicated {
        let others = match seen.duplicates {
            1 => String::new(),
            n => format!(" ({n} lines have a key twice)"),
        };
        b.diagnostics.push(
            RunDiagnostic::new(
                codes::run::DUPLICATE_JSON_KEY,
                format!(
                    "source `{}`: line {line} of {shown} has the key `{key}` twice{others}; such lines are bad rows",
                    b.source
                ),
            )
            .at(format!("{shown}:{line}"))
            .help("write each key once per line in the program that writes the file"),
        );
    }
    if seen.lines_with_data == 0 {
        b.empty_file(shown, "holds no JSON lines");
    }
    Ok(())
}

/// Up to `cores` parts of the file's next lines (none at its end);
/// `number`: the lines read so far.
fn read_chunks(
    reader: &mut impl std::io::BufRead,
    cores: usize,
    number: &mut u64,
    shown: &str,
) -> Result<Vec<Chunk>, String> {
    let mut chunks = Vec::with_capacity(cores);
    while chunks.len() < cores {
        let mut chunk = Chunk::default();
        while chunk.lines.len() < PART_LINES {
            let read = reader
                .read_until(b'\n', &mut chunk.text)
                .map_err(|e| format!("{shown}:{}: {e}", *number + 1))?;
            if read == 0 {
                break;
            }
            *number += 1;
            chunk.lines.push((*number, chunk.text.len()));
        }
        if chunk.lines.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    Ok(chunks)
}

/// Lines of a file, in order: their bytes in one buffer, each line's
/// number and end.
#[derive(Default)]
struct Chunk {
    text: Vec<u8>,
    lines: Vec<(u64, usize)>,
}

/// What the lines of a file showed beyond their rows, merged part by part
/// in file order.
struct Seen {
    /// Which fields some line wrote.
    present: Vec<bool>,
    /// Keys no field declares, with the first line that holds each.
    unknown: Vec<(String, u64)>,
    /// The first line with a key written twice, and the key; how many.
    duplicated: Option<(u64, String)>,
    duplicates: u64,
    lines_with_data: u64,
}

impl Seen {
    fn new(fields: usize) -> Seen {
        Seen {
            present: vec![false; fields],
            unknown: Vec::new(),
            duplicated: None,
            duplicates: 0,
            lines_with_data: 0,
        }
    }

    /// What a later part saw.
    fn take_in(&mut self, later: Seen) {
        for (mine, theirs) in self.present.iter_mut().zip(later.present) {
            *mine |= theirs;
        }
        for (key, line) in later.unknown {
            if !self.unknown.iter().any(|(k, _)| *k == key) {
                self.unknown.push((key, line));
            }
        }
        if self.duplicated.is_none() {
            self.duplicated = later.duplicated;
        }
        self.duplicates += later.duplicates;
        self.lines_with_data += later.lines_with_data;
    }
}

impl Chunk {
    /// The lines parsed and typed, as a part of the file `file` (shown as
    /// `prefix` and a line's number).
    fn typed<'a>(self, of: &Fields<'a>, file: u32, prefix: &str) -> (Part<'a>, Seen) {
        let mut part = Part::new(of);
        let mut seen = Seen::new(of.names.len());
        let mut from = 0;
        // Per field, the index of its entry on the line (one buffer for
        // every line of the part).
        let mut slots: Vec<Option<usize>> = Vec::with_capacity(of.names.len());
        for (number, end) in self.lines {
            let bytes = &self.text[from..end];
            from = end;
            // The line without its break, as `BufRead::lines` gives it.
            let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
            let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            let at = || format!("{prefix}{number}");
            let Ok(line) = std::str::from_utf8(bytes) else {
                seen.lines_with_data += 1;
                part.bad(at, || "stream did not contain valid UTF-8".into(), 1);
                continue;
            };
            if line.trim().is_empty() {
                continue;
            }
            seen.lines_with_data += 1;
            let obj = match serde_json::from_str::<Object>(line) {
                Ok(o) => o,
                Err(e) if e.classify() == serde_json::error::Category::Data => {
                    part.bad(at, || "not a JSON object".into(), 1);
                    continue;
                }
                Err(e) => {
                    part.bad(at, || format!("not JSON: {e}"), 1);
                    continue;
                }
            };
            if let Some(key) = obj.duplicate {
                seen.duplicates += 1;
                let reason = format!("the key `{key}` appears twice");
                seen.duplicated.get_or_insert((number, key));
                part.bad(at, || reason, 1);
                continue;
            }
            // Each field's entry, found by a search of the sorted names.
            slots.clear();
            slots.resize(of.names.len(), None);
            let mut unknown = Vec::new();
            for (entry, (key, _)) in obj.entries.iter().enumerate() {
                match of.names.binary_search_by(|n| n.as_str().cmp(key)) {
                    Ok(i) => slots[i] = Some(entry),
                    Err(_) => unknown.push(key),
                }
            }
            let mut cells = Vec::with_capacity(of.names.len());
            let mut error = None;
            for (i, slot) in slots.iter().enumerate() {
                match slot.map(|entry| &obj.entries[entry].1) {
                    None => cells.push(Cell::Null),
                    Some(v) => {
                        seen.present[i] = true;
                        match from_json(v, of.fields[i]) {
                            Ok(c) => cells.push(c),
                            Err(e) => {
                                error = Some(format!("`{}`: {e}", of.names[i]));
                                break;
                            }
                        }
                    }
                }
            }
            if error.is_none() {
                // A line's unknown keys in name order, as before.
                unknown.sort();
                for key in unknown {
                    if !seen.unknown.iter().any(|(k, _)| k == key) {
                        seen.unknown.push((key.to_string(), number));
                    }
                }
            }
            match error {
                Some(e) => part.bad(at, || e, 1),
                None => part.row_at(Line { file, number }, prefix, cells),
            }
        }
        (part, seen)
    }
}

/// A JSON object as read from one line: its entries in line order (keys
/// borrowed from the line where they have no escapes), and the first key
/// it writes twice (`serde_json`'s own map would keep the last value of a
/// repeated key silently). A line's few keys are searched, not hashed.
struct Object<'de> {
    entries: Vec<(Cow<'de, str>, Value)>,
    duplicate: Option<String>,
}

impl<'de> serde::Deserialize<'de> for Object<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<Object<'de>, A::Error> {
                let mut entries: Vec<(Cow<'de, str>, Value)> = Vec::new();
                let mut duplicate = None;
                while let Some((Key(key), value)) = access.next_entry::<Key<'de>, Value>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        duplicate.get_or_insert_with(|| key.to_string());
                    }
                    entries.push((key, value));
                }
                Ok(Object { entries, duplicate })
            }
        }
        d.deserialize_map(Entries)
    }
}

/// An object's key, borrowed from the line when it can be.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_string())))
            }
            fn visit_string<E>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key)))
            }
        }
        d.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;

    use super::super::read_files as read;
    use super::super::tests::{Scratch, codes_of, first_column, text_source, tiered};
    use super::PART_LINES;

    /// `t.jsonl` of `dir` read as a source of the tiered schema.
    fn read_t(dir: &Scratch) -> super::super::Loaded {
        read(
            &dir.0,
            "t",
            &text_source("t.jsonl", "jsonl"),
            &tiered(vec![]),
            0,
        )
        .expect("reads")
    }

    /// A key written with escapes is the key it spells (keys are borrowed
    /// from the line only where they have none), also when written twice.
    #[test]
    fn escaped_keys_are_the_keys_they_spell() {
        let dir = Scratch::new("json-escapes");
        dir.write(
            "t.jsonl",
            "{\"id\": \"k1\", \"\\u0074ier\": \"silver\", \"n\": 1}\n{\"id\": \"k2\", \"tier\": \"gold\", \"ti\\u0065r\": \"gold\"}\n",
        );
        let loaded = read_t(&dir);
        assert_eq!(first_column(&loaded), vec!["k1"]);
        // Columns in name order: id, n, tier.
        let tier = loaded.batches[0]
            .column(2)
            .as_string::<i32>()
            .value(0)
            .to_string();
        assert_eq!(tier, "silver");
        assert_eq!(
            loaded.report.bad_row_samples,
            vec!["t.jsonl:2: the key `tier` appears twice"]
        );
        assert_eq!(codes_of(&loaded), vec![("R0009", Some("t.jsonl:2"))]);
    }

    /// A file of many parts (typed a part per core, taken in in order)
    /// reads as a line at a time would: bad lines of every kind on both
    /// sides of the parts' edges are sampled in line order, a key repeated
    /// across parts is caught where it repeats (the first row stays), the
    /// unknown keys and the first line with a key written twice are named
    /// where they first occur, and the good rows come in file order.
    #[test]
    fn a_file_typed_in_parts_reads_in_file_order() {
        let dir = Scratch::new("json-parts");
        let lines = 3 * PART_LINES + 77;
        let edge = PART_LINES - 3;
        let mut text: Vec<u8> = Vec::new();
        let (mut good, mut samples) = (Vec::new(), Vec::new());
        for i in 0..lines {
            let number = i + 1;
            let (line, why): (Vec<u8>, Option<String>) = match i {
                _ if i == edge => (
                    b"{\"id\": \"k\xff\"}".to_vec(),
                    Some("stream did not contain valid UTF-8".into()),
                ),
                _ if i == edge + 1 => (b"[1, 2]".to_vec(), Some("not a JSON object".into())),
                _ if i == edge + 2 => (b"".to_vec(), None),
                _ if i == edge + 3 => (
                    format!("{{\"id\": \"k{i}\", \"n\": true}}").into_bytes(),
                    Some("`n`: true is not an int".into()),
                ),
                _ if i == edge + 4 => (
                    b"{\"id\": \"k1\", \"id\": \"k2\"}".to_vec(),
                    Some("the key `id` appears twice".into()),
                ),
                _ if i == edge + 5 => (
                    b"{\"n\": 1, \"tier\": \"gold\"}".to_vec(),
                    Some("missing key `id`".into()),
                ),
                _ if i == edge + 6 => (
                    b"{\"id\": \"k3\", \"tier\": \"tin\"}".to_vec(),
                    Some("`tin` is not one of the values of `tier` (gold, silver)".into()),
                ),
                _ if i == PART_LINES + 10 || i == lines - 1 => (
                    b"{\"id\": \"k5\", \"n\": 2}\r".to_vec(),
                    Some("duplicate key `k5`".into()),
                ),
                _ if i == 2 * PART_LINES + 1 => (
                    format!("{{\"id\": \"k{i}\", \"region\": \"EMEA\"}}").into_bytes(),
                    None,
                ),
                _ if i == 3 * PART_LINES + 2 => (
                    format!("{{\"id\": \"k{i}\", \"zone\": 1, \"region\": \"x\"}}").into_bytes(),
                    None,
                ),
                _ if i == 3 * PART_LINES + 3 => (b"{\"id\": ".to_vec(), Some(String::new())),
                _ => (
                    format!("{{\"id\": \"k{i}\", \"n\": {i}, \"tier\": \"gold\"}}").into_bytes(),
                    None,
                ),
            };
            text.extend_from_slice(&line);
            text.push(b'\n');
            match why {
                // Not JSON: serde_json's message, which this test does not
                // pin down.
                Some(why) if why.is_empty() => samples.push(format!("t.jsonl:{number}: not JSON")),
                Some(why) => samples.push(format!("t.jsonl:{number}: {why}")),
                None if line.is_empty() => {}
                None => good.push(format!("k{i}")),
            }
        }
        std::fs::write(dir.0.join("t.jsonl"), &text).expect("writes");
        let loaded = read_t(&dir);
        assert_eq!(loaded.report.bad_rows, samples.len() as u64);
        let found: Vec<String> = loaded
            .report
            .bad_row_samples
            .iter()
            .map(|s| match s.find(": not JSON") {
                Some(at) => s[..at + ": not JSON".len()].to_string(),
                None => s.clone(),
            })
            .collect();
        assert_eq!(found, samples);
        assert_eq!(loaded.report.rows, good.len() as u64);
        assert_eq!(first_column(&loaded), good);
        let region = format!("t.jsonl:{}", 2 * PART_LINES + 2);
        let zone = format!("t.jsonl:{}", 3 * PART_LINES + 3);
        let twice = format!("t.jsonl:{}", edge + 5);
        assert_eq!(
            codes_of(&loaded),
            vec![
                ("R0005", Some(region.as_str())),
                ("R0005", Some(zone.as_str())),
                ("R0009", Some(twice.as_str())),
            ]
        );
    }
}
