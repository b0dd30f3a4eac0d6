//! Decoding JSON lines: one file in, each line's object typed into the
//! source's `Builder` out, with a key written twice on a line, keys no
//! field declares and an empty file as diagnostics.

use serde_json::Value;

use super::typing::{Builder, Cell, Line, from_json};
use crate::diag::codes;
use crate::run::report::RunDiagnostic;

/// Reads one JSON lines file (a local file or a fetched object: `input`),
/// shown in messages as `shown`.
pub(super) fn read_jsonl(
    input: impl std::io::Read,
    shown: &str,
    b: &mut Builder<'_>,
    present: &mut [bool],
) -> Result<(), String> {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(input);
    let mut lines_with_data = 0u64;
    // Keys no field declares, with the first line that holds each.
    let mut unknown: Vec<(String, usize)> = Vec::new();
    // Lines with a key written twice: (first line, key), count.
    let mut duplicated: Option<(usize, String)> = None;
    let mut duplicates = 0u64;
    let file = b.file(format!("{shown}:"));
    for (n, line) in reader.lines().enumerate() {
        let at = || format!("{shown}:{}", n + 1);
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                lines_with_data += 1;
                b.bad(&at(), e.to_string());
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        lines_with_data += 1;
        let obj = match serde_json::from_str::<Object>(&line) {
            Ok(o) => o,
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                b.bad(&at(), "not a JSON object".into());
                continue;
            }
            Err(e) => {
                b.bad(&at(), format!("not JSON: {e}"));
                continue;
            }
        };
        if let Some(key) = obj.duplicate {
            duplicates += 1;
            duplicated.get_or_insert((n + 1, key.clone()));
            b.bad(&at(), format!("the key `{key}` appears twice"));
            continue;
        }
        let obj = obj.map;
        let mut cells = Vec::with_capacity(b.names.len());
        let mut error = None;
        let mut found = 0;
        for (i, name) in b.names.iter().enumerate() {
            match obj.get(name.as_str()) {
                None => cells.push(Cell::Null),
                Some(v) => {
                    found += 1;
                    present[i] = true;
                    match from_json(v, b.fields[i]) {
                        Ok(c) => cells.push(c),
                        Err(e) => {
                            error = Some(format!("`{name}`: {e}"));
                            break;
                        }
                    }
                }
            }
        }
        // Only a line with more keys than it has fields is searched for
        // the others, so the common line costs nothing more.
        if error.is_none() && obj.len() > found {
            for key in obj.keys() {
                if !b.schema.fields.contains_key(key) && !unknown.iter().any(|(k, _)| k == key) {
                    unknown.push((key.clone(), n + 1));
                }
            }
        }
        match error {
            Some(e) => b.bad(&at(), e),
            None => b.row_at(
                Line {
                    file,
                    number: n as u64 + 1,
                },
                cells,
            ),
        }
    }
    for (key, line) in unknown {
        b.unknown_column(shown, &format!("{shown}:{line}"), "key", &key);
    }
    if let Some((line, key)) = duplicated {
        let others = match duplicates {
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
    if lines_with_data == 0 {
        b.empty_file(shown, "holds no JSON lines");
    }
    Ok(())
}

/// A JSON object as read from one line, with the first key it writes
/// twice: `serde_json` keeps the last value of a repeated key silently.
struct Object {
    map: serde_json::Map<String, Value>,
    duplicate: Option<String>,
}

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Object;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<Object, A::Error> {
                let mut map = serde_json::Map::new();
                let mut duplicate = None;
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if let Some(_earlier) = map.insert(key.clone(), value) {
                        duplicate.get_or_insert(key);
                    }
                }
                Ok(Object { map, duplicate })
            }
        }
        d.deserialize_map(Entries)
    }
}
