//! The CSV of Bulk API 2.0 jobs: the data uploaded (a header of field API
//! names, LF line endings, comma delimited, fields quoted when needed) and
//! the result sets read back (`sf__Id`, `sf__Created`, `sf__Error`, then
//! the uploaded columns).
//!
//! In Bulk CSV an empty cell leaves a field as it is and `#N/A` clears it,
//! so a JSON `null` (a leave's audience field) is written `#N/A`, while a
//! mapped column with no value is written empty.

use serde_json::Value;

/// The cell that sets a field to null.
pub const NULL: &str = "#N/A";

/// One row per record; the header is the union of the records' fields in
/// first-seen order.
pub fn header(records: &[Vec<(String, Value)>]) -> Vec<String> {
    let mut header: Vec<String> = Vec::new();
    for record in records {
        for (field, _) in record {
            if !header.contains(field) {
                header.push(field.clone());
            }
        }
    }
    header
}

/// One CSV line (with its `\n`) of `cells`.
pub fn line(cells: &[String]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    writer
        .write_record(cells)
        .expect("writing CSV to memory cannot fail");
    writer.into_inner().expect("a Vec flushes")
}

/// The cells of `record` under `header`.
pub fn row(header: &[String], record: &[(String, Value)]) -> Vec<String> {
    header
        .iter()
        .map(|field| {
            record
                .iter()
                .find(|(f, _)| f == field)
                .map_or_else(String::new, |(_, value)| cell(value))
        })
        .collect()
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => NULL.to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// A result set: its header and rows, as text.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn parse(body: &[u8]) -> Result<Table, String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(body);
        let header = reader
            .headers()
            .map_err(|e| format!("a Bulk API result is not CSV: {e}"))?
            .iter()
            .map(str::to_string)
            .collect();
        let rows = reader
            .records()
            .map(|r| r.map(|r| r.iter().map(str::to_string).collect()))
            .collect::<Result<Vec<Vec<String>>, _>>()
            .map_err(|e| format!("a Bulk API result is not CSV: {e}"))?;
        Ok(Table { header, rows })
    }

    /// The index of a column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_are_quoted_when_needed_and_null_clears() {
        let records = vec![
            vec![
                ("Email".to_string(), json!("a@example.com")),
                ("Title".to_string(), json!("VP, \"Sales\"")),
            ],
            vec![
                ("Email".to_string(), json!("b@example.com")),
                ("Hot__c".to_string(), Value::Null),
            ],
        ];
        let header = header(&records);
        assert_eq!(header, ["Email", "Title", "Hot__c"]);
        let mut out = line(&header);
        for record in &records {
            out.extend(line(&row(&header, record)));
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Email,Title,Hot__c\na@example.com,\"VP, \"\"Sales\"\"\",\nb@example.com,,#N/A\n"
        );
    }

    #[test]
    fn result_sets_parse_with_quoted_newlines() {
        let table =
            Table::parse(b"sf__Id,sf__Error,Email\n,\"INVALID_EMAIL_ADDRESS:bad\nemail\",x\n")
                .unwrap();
        assert_eq!(table.column("Email"), Some(2));
        assert_eq!(table.rows[0][1], "INVALID_EMAIL_ADDRESS:bad\nemail");
        assert!(Table::parse(b"a,b\n1\n").is_err());
    }
}
