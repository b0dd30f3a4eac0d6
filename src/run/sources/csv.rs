//! Decoding CSV: one file in, its records typed into the source's
//! `Builder` out, with the file's problems (an empty file, a header that
//! names a column twice, a column no field declares, a quoted field that
//! swallows the lines after it) as diagnostics and bad rows.

use super::keys::KeySet;
use super::typing::{Builder, Fields, Line, Part, from_text};
use crate::diag::codes;
use crate::run::report::RunDiagnostic;

/// Reads one CSV file (a local file or a fetched object: `input`), shown
/// in messages as `shown`.
pub(super) fn read_csv(
    input: impl std::io::Read,
    shown: &str,
    b: &mut Builder<'_>,
    present: &mut [bool],
) -> Result<(), String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(std::io::BufReader::new(input));
    let headers = reader
        .headers()
        .map_err(|e| format!("{shown}: {e}"))?
        .clone();
    if headers.is_empty() {
        b.empty_file(shown, "is empty");
        return Ok(());
    }
    // A column named twice: which one holds the field is a guess, so the
    // file is not read.
    let names: Vec<&str> = headers.iter().map(str::trim).collect();
    if let Some((first, second)) = (0..names.len())
        .flat_map(|j| (0..j).map(move |i| (i, j)))
        .find(|&(i, j)| names[i] == names[j] && !names[i].is_empty())
    {
        b.diagnostics.push(
            RunDiagnostic::new(
                codes::run::DUPLICATE_HEADER,
                format!(
                    "source `{}`: the header of {shown} names the column `{}` twice (columns {} and {}); the file is not read",
                    b.source,
                    names[first],
                    first + 1,
                    second + 1
                ),
            )
            .at(format!("{shown}:1"))
            .help("rename or remove one of the two columns"),
        );
        return Ok(());
    }
    let unknown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !n.is_empty() && !b.names().iter().any(|f| f.as_str() == *n))
        .collect();
    for name in unknown {
        b.unknown_column(shown, &format!("{shown}:1"), "column", name);
    }
    // For each schema field, its column in this file.
    let index: Vec<Option<usize>> = b
        .names()
        .iter()
        .map(|n| names.iter().position(|h| *h == n.as_str()))
        .collect();
    for (i, idx) in index.iter().enumerate() {
        present[i] |= idx.is_some();
    }
    let file = b.file(format!("{shown}:"));
    let prefix = format!("{shown}:");
    let of = b.of();
    // The records are parsed here and typed on another core, a part at a
    // time, in order, where each part's keys are checked too (the set of
    // keys is that core's while the file is read): parsing and writing
    // batches is about half the work, typing and checking keys the rest.
    b.settle();
    let mut keys = std::mem::replace(&mut b.keys, KeySet::new());
    let read = std::thread::scope(|scope| {
        let (to_typist, chunks) = std::sync::mpsc::sync_channel::<Chunk>(2);
        let (typed, parts) = std::sync::mpsc::channel::<Part<'_>>();
        let (of, index, prefix, width) = (&of, &index, &prefix, headers.len());
        let keys = &mut keys;
        scope.spawn(move || {
            for chunk in chunks {
                let mut part = chunk.typed(of, (index, width), file, prefix);
                part.settle(keys, &|at| format!("{prefix}{}", at.number));
                if typed.send(part).is_err() {
                    break;
                }
            }
        });
        let mut records = 0u64;
        let mut record = csv::StringRecord::new();
        let mut chunk = Chunk::default();
        let outcome = loop {
            if chunk.items.len() >= PART_RECORDS {
                if to_typist.send(std::mem::take(&mut chunk)).is_err() {
                    break Err(format!("{shown}: the typing thread stopped"));
                }
                while let Ok(part) = parts.try_recv() {
                    b.absorb(part);
                }
            }
            match reader.read_record(&mut record) {
                Ok(false) => break Ok(()),
                Ok(true) => {
                    records += 1;
                    let line = record.position().map(|p| p.line()).unwrap_or(0);
                    if let Some(opened) = swallowing_quote(&record, headers.len(), line) {
                        // The record and every line it took in were rows.
                        // (A quote that runs to the end of the file holds the
                        // file's last line break too: not a line.)
                        let lines: u64 = record
                            .iter()
                            .map(|f| f.trim_end_matches(['\r', '\n']).matches('\n').count() as u64)
                            .sum();
                        chunk.items.push(Item::Bad {
                            at: format!("{shown}:{opened}"),
                            reason: format!(
                                "a quoted field opens here and is not closed on its line: {} lines read as one field",
                                lines + 1
                            ),
                            n: lines + 1,
                        });
                        b.diagnostics.push(
                            RunDiagnostic::new(
                                codes::run::UNTERMINATED_QUOTE,
                                match lines {
                                    0 => format!(
                                        "source `{}`: a quoted field of {shown} opens on line {opened} and is never closed",
                                        b.source
                                    ),
                                    n => format!(
                                        "source `{}`: a quoted field of {shown} opens on line {opened} and is not closed there; the {n} line{} after it {} read as part of that field",
                                        b.source,
                                        if n == 1 { "" } else { "s" },
                                        if n == 1 { "was" } else { "were" }
                                    ),
                                },
                            )
                            .at(format!("{shown}:{opened}"))
                            .help("close the quote, or double a quote that belongs inside a quoted field (`\"\"`); every delivery waits until the file reads cleanly"),
                        );
                        continue;
                    }
                    if record.len() != headers.len() {
                        chunk.items.push(Item::Bad {
                            at: format!("{shown}:{line}"),
                            reason: format!(
                                "{} fields, the header has {}",
                                record.len(),
                                headers.len()
                            ),
                            n: 1,
                        });
                        continue;
                    }
                    chunk.record(line, &record);
                }
                Err(e) => {
                    records += 1;
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    chunk.items.push(Item::Bad {
                        at: format!("{shown}:{line}"),
                        reason: e.to_string(),
                        n: 1,
                    });
                    if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                        break Err(format!("{shown}:{line}: {e}"));
                    }
                }
            }
        };
        // The last part; then every part, in order, once the typing ends.
        let sent = to_typist.send(chunk);
        drop(to_typist);
        for part in parts {
            b.absorb(part);
        }
        match (outcome, sent) {
            (Ok(()), Err(_)) => Err(format!("{shown}: the typing thread stopped")),
            (outcome, _) => outcome.map(|()| records),
        }
    });
    b.keys = keys;
    let records = read?;
    if records == 0 {
        b.empty_file(shown, "holds only a header");
    }
    Ok(())
}

/// Records per part typed on the other core.
const PART_RECORDS: usize = 8 * 1024;

/// Records of a file for the other core, in order: the good ones' fields
/// (their text in one buffer, each field's end), and the bad ones found
/// while parsing.
#[derive(Default)]
struct Chunk {
    text: String,
    ends: Vec<usize>,
    items: Vec<Item>,
}

enum Item {
    /// A record of the header's width, its fields next in `ends`.
    Record {
        line: u64,
    },
    Bad {
        at: String,
        reason: String,
        n: u64,
    },
}

impl Chunk {
    fn record(&mut self, line: u64, record: &csv::StringRecord) {
        for field in record {
            self.text.push_str(field);
            self.ends.push(self.text.len());
        }
        self.items.push(Item::Record { line });
    }

    /// The records typed (`index`: each field's column in the file, of
    /// `width`), as the builder types them.
    fn typed<'a>(
        self,
        of: &Fields<'a>,
        (index, width): (&[Option<usize>], usize),
        file: u32,
        prefix: &str,
    ) -> Part<'a> {
        let mut part = Part::new(of);
        // Where the next record's first field starts: in `text`, and its
        // end in `ends`.
        let (mut from, mut next) = (0, 0);
        for item in self.items {
            let line = match item {
                Item::Bad { at, reason, n } => {
                    part.bad(|| at, || reason, n);
                    continue;
                }
                Item::Record { line } => line,
            };
            let ends = &self.ends[next..next + width];
            let field = |j: usize| {
                let start = if j == 0 { from } else { ends[j - 1] };
                &self.text[start..ends[j]]
            };
            let mut cells = Vec::with_capacity(index.len());
            let mut error = None;
            for (i, idx) in index.iter().enumerate() {
                match from_text(idx.map_or("", field), of.fields[i]) {
                    Ok(c) => cells.push(c),
                    Err(e) => {
                        error = Some(format!("`{}`: {e}", of.names[i]));
                        break;
                    }
                }
            }
            match error {
                Some(e) => part.bad(|| format!("{prefix}{line}"), || e, 1),
                None => part.row_at(Line { file, number: line }, prefix, cells),
            }
            next += width;
            from = ends.last().copied().unwrap_or(from);
        }
        part
    }
}

/// The line where a quote opened that swallowed the lines after it, when
/// `record` (starting on `line`) looks like one: a multi-line record with
/// the wrong number of fields, or a multi-line field that holds a whole
/// row (as many separators as the header has). A genuine multi-line value
/// (an address) has neither.
fn swallowing_quote(record: &csv::StringRecord, header_len: usize, line: u64) -> Option<u64> {
    // Most records hold no line break: one search of the record's bytes
    // says so, where searching each field took a twentieth of the read.
    if !record.as_byte_record().as_slice().contains(&b'\n') {
        return None;
    }
    let multi = record.iter().position(|f| f.contains('\n'))?;
    let holds_a_row = header_len > 1
        && record.iter().any(|f| {
            f.split('\n')
                .skip(1)
                .any(|l| l.matches(',').count() + 1 >= header_len)
        });
    if record.len() != header_len || holds_a_row {
        let before: u64 = record
            .iter()
            .take(multi)
            .map(|f| f.matches('\n').count() as u64)
            .sum();
        Some(line + before)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::read_files as read;
    use super::super::tests::{Scratch, accounts, codes_of, first_column, text_source};

    /// A quote opened and never closed swallows the rest of the file into
    /// one field: reported where it opened (R0001), every swallowed line a
    /// bad row, instead of "1 bad row".
    #[test]
    fn an_unterminated_quote_is_reported_where_it_opened() {
        let dir = Scratch::new("quote");
        dir.write(
            "t.csv",
            "id,name,employees\na1,Acme,5\na2,\"Globex Corp,7\na3,Initech,9\na4,Umbrella,11\n",
        );
        let loaded =
            read(&dir.0, "t", &text_source("t.csv", "csv"), &accounts(), 0).expect("reads");
        assert_eq!(codes_of(&loaded), vec![("R0001", Some("t.csv:3"))]);
        assert_eq!(loaded.report.rows, 1);
        assert_eq!(
            loaded.report.bad_rows, 3,
            "{:?}",
            loaded.report.bad_row_samples
        );
        // Closed by a later quote: the record has the wrong arity.
        dir.write(
            "t.csv",
            "id,name,employees\na1,\"Acme,5\na2,Globex,7\na3,\"Initech\",9\na4,Umbrella,11\n",
        );
        let loaded =
            read(&dir.0, "t", &text_source("t.csv", "csv"), &accounts(), 0).expect("reads");
        assert_eq!(codes_of(&loaded), vec![("R0001", Some("t.csv:2"))]);
        assert_eq!(loaded.report.rows, 1, "a4 only");
        assert_eq!(loaded.report.bad_rows, 3);
    }

    /// A file of many parts (typed on another core, a part of
    /// `PART_RECORDS` records at a time) reads as a row at a time would:
    /// bad rows of every kind on both sides of a part's edge are sampled in
    /// line order, a key repeated across parts is caught where it repeats
    /// (the first row stays), and the good rows come in file order.
    #[test]
    fn a_file_typed_in_parts_reads_in_file_order() {
        use std::fmt::Write;

        use super::super::tests::tiered;
        use super::PART_RECORDS;
        let dir = Scratch::new("parts");
        let rows = 3 * PART_RECORDS + 77;
        let edge = PART_RECORDS - 4;
        let mut text = String::from("id,n,tier\n");
        let (mut good, mut samples) = (Vec::new(), Vec::new());
        for i in 0..rows {
            // Line i + 2; the bad rows sit around the first part's edge
            // (its records count bad ones too) and later.
            let line = i + 2;
            let (row, why) = match i {
                _ if i == edge => (
                    format!("k{i},x,gold"),
                    Some("`n`: `x` is not an int".to_string()),
                ),
                _ if i == edge + 2 => (
                    format!("k{i},1,tin"),
                    Some("`tin` is not one of the values of `tier` (gold, silver)".into()),
                ),
                _ if i == edge + 3 => (",1,gold".into(), Some("missing key `id`".into())),
                _ if i == edge + 5 => ("k3,1,gold".into(), Some("duplicate key `k3`".into())),
                _ if i == edge + 6 => {
                    (format!("k{i},1"), Some("2 fields, the header has 3".into()))
                }
                _ if i == edge + 9 || i == rows - 1 => {
                    ("k5,2,silver".into(), Some("duplicate key `k5`".into()))
                }
                _ => (format!("k{i},{i},gold"), None),
            };
            writeln!(text, "{row}").expect("writes");
            match why {
                Some(why) => samples.push(format!("t.csv:{line}: {why}")),
                None => good.push(format!("k{i}")),
            }
        }
        dir.write("t.csv", &text);
        let loaded = read(
            &dir.0,
            "t",
            &text_source("t.csv", "csv"),
            &tiered(vec![]),
            0,
        )
        .expect("reads");
        assert_eq!(loaded.report.bad_rows, samples.len() as u64);
        assert_eq!(loaded.report.bad_row_samples, samples);
        assert_eq!(loaded.report.rows, good.len() as u64);
        assert_eq!(first_column(&loaded), good);
    }

    /// A quoted value that spans lines on purpose (an address) is a value.
    #[test]
    fn a_multi_line_value_is_not_a_broken_quote() {
        let dir = Scratch::new("multiline");
        dir.write(
            "t.csv",
            "id,name,employees\na1,\"Acme\nHead Office\",5\na2,Globex,7\n",
        );
        let loaded =
            read(&dir.0, "t", &text_source("t.csv", "csv"), &accounts(), 0).expect("reads");
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        assert_eq!((loaded.report.rows, loaded.report.bad_rows), (2, 0));
    }
}
