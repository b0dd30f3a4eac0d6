//! Decoding CSV: one file in, its records typed into the source's
//! `Builder` out, with the file's problems (an empty file, a header that
//! names a column twice, a column no field declares, a quoted field that
//! swallows the lines after it) as diagnostics and bad rows.

use super::typing::{Builder, Line, from_text};
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
        .filter(|n| !n.is_empty() && !b.names.iter().any(|f| f.as_str() == *n))
        .collect();
    for name in unknown {
        b.unknown_column(shown, &format!("{shown}:1"), "column", name);
    }
    // For each schema field, its column in this file.
    let index: Vec<Option<usize>> = b
        .names
        .iter()
        .map(|n| names.iter().position(|h| *h == n.as_str()))
        .collect();
    for (i, idx) in index.iter().enumerate() {
        present[i] |= idx.is_some();
    }
    let mut records = 0u64;
    let mut record = csv::StringRecord::new();
    let file = b.file(format!("{shown}:"));
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                records += 1;
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                let at = || format!("{shown}:{line}");
                if let Some(opened) = swallowing_quote(&record, headers.len(), line) {
                    // The record and every line it took in were rows.
                    // (A quote that runs to the end of the file holds the
                    // file's last line break too: not a line.)
                    let lines: u64 = record
                        .iter()
                        .map(|f| f.trim_end_matches(['\r', '\n']).matches('\n').count() as u64)
                        .sum();
                    b.bad_rows(
                        &format!("{shown}:{opened}"),
                        format!(
                            "a quoted field opens here and is not closed on its line: {} lines read as one field",
                            lines + 1
                        ),
                        lines + 1,
                    );
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
                    b.bad(
                        &at(),
                        format!("{} fields, the header has {}", record.len(), headers.len()),
                    );
                    continue;
                }
                let mut cells = Vec::with_capacity(index.len());
                let mut error = None;
                for (i, idx) in index.iter().enumerate() {
                    let text = idx.and_then(|j| record.get(j)).unwrap_or("");
                    match from_text(text, b.fields[i]) {
                        Ok(c) => cells.push(c),
                        Err(e) => {
                            error = Some(format!("`{}`: {e}", b.names[i]));
                            break;
                        }
                    }
                }
                match error {
                    Some(e) => b.bad(&at(), e),
                    None => b.row_at(Line { file, number: line }, cells),
                }
            }
            Err(e) => {
                records += 1;
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                b.bad(&format!("{shown}:{line}"), e.to_string());
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    return Err(format!("{shown}:{line}: {e}"));
                }
            }
        }
    }
    if records == 0 {
        b.empty_file(shown, "holds only a header");
    }
    Ok(())
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
    use super::super::tests::{Scratch, accounts, codes_of, text_source};

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
