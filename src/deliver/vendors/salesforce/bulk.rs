//! Bulk API 2.0 ingest jobs: one upsert job per upload of CSV data, closed
//! with `UploadComplete`, polled until `JobComplete`, `Failed` or
//! `Aborted`, then its successful, failed and unprocessed records read
//! back and matched to members by their match key.
//!
//! A job that a crash interrupts is simply done again by the next run:
//! upserts by external id are idempotent, so a record processed twice
//! ends the same.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::super::super::vendor::{BulkJobs, Job, JobState, Member, Op, RecordResult, Upload};
use super::super::super::wire::{WireRequest, WireResponse};
use super::Salesforce;
use super::csv::{self, Table};

/// Bytes of CSV per job. Salesforce takes 150 MB per upload after it
/// converts the data to base64, which can add up to half; it advises 100 MB
/// of data.
pub const MAX_UPLOAD_BYTES: usize = 100 * 1024 * 1024;

impl Salesforce {
    fn job_url(&self, job: &str, tail: &str) -> String {
        self.api(&format!("/jobs/ingest/{job}{tail}"))
    }

    /// [`BulkJobs::uploads`] within `max_bytes` per upload.
    pub(super) fn uploads_within(
        &self,
        audience: &str,
        op: Op,
        members: &[Member],
        max_bytes: usize,
    ) -> (Vec<Upload>, Vec<(Member, String)>) {
        let field = match self.audience_field(audience) {
            Ok(field) => field,
            Err(why) => {
                return (
                    Vec::new(),
                    members.iter().map(|m| (m.clone(), why.clone())).collect(),
                );
            }
        };
        let mut records = Vec::new();
        let mut unsendable = Vec::new();
        for member in members {
            match self.record(&field, op, member) {
                Ok(record) => records.push((member.clone(), record)),
                Err(why) => unsendable.push((member.clone(), why)),
            }
        }
        let fields: Vec<Vec<(String, Value)>> = records.iter().map(|(_, r)| r.clone()).collect();
        let header = csv::header(&fields);
        let head = csv::line(&header);
        let mut uploads: Vec<Upload> = Vec::new();
        for (member, record) in records {
            let line = csv::line(&csv::row(&header, &record));
            if head.len() + line.len() > max_bytes {
                let why = format!(
                    "its Bulk API row alone is {} bytes, over the {max_bytes} bytes of a job",
                    head.len() + line.len()
                );
                unsendable.push((member, why));
                continue;
            }
            match uploads.last_mut() {
                Some(upload) if upload.body.len() + line.len() <= max_bytes => {
                    upload.body.extend(line);
                    upload.members.push(member);
                }
                _ => uploads.push(Upload {
                    members: vec![member],
                    body: [head.as_slice(), line.as_slice()].concat(),
                }),
            }
        }
        (uploads, unsendable)
    }
}

impl BulkJobs for Salesforce {
    fn threshold(&self) -> usize {
        self.bulk_threshold
    }

    fn uploads(
        &self,
        audience: &str,
        op: Op,
        members: &[Member],
    ) -> (Vec<Upload>, Vec<(Member, String)>) {
        self.uploads_within(audience, op, members, MAX_UPLOAD_BYTES)
    }

    fn create_job(&self) -> WireRequest {
        WireRequest::new("POST", self.api("/jobs/ingest")).json(&json!({
            "object": self.object,
            "externalIdFieldName": self.external_id,
            "contentType": "CSV",
            "operation": "upsert",
            "lineEnding": "LF",
        }))
    }

    fn parse_job(&self, response: &WireResponse) -> Result<Job, String> {
        let body = response.json();
        let text = |key: &str| body.get(key).and_then(Value::as_str);
        let id = text("id").ok_or("Salesforce answered a Bulk API job request without a job id")?;
        let state = match text("state") {
            Some("Open") => JobState::Open,
            Some("UploadComplete" | "InProgress") => JobState::Processing,
            Some("JobComplete") => JobState::Complete,
            Some("Failed") => JobState::Failed(text("errorMessage").unwrap_or("").to_string()),
            Some("Aborted") => JobState::Aborted,
            other => {
                return Err(format!(
                    "Bulk API job {id} is in an unknown state {other:?}"
                ));
            }
        };
        Ok(Job {
            id: id.to_string(),
            state,
        })
    }

    fn upload_request(&self, job: &str, body: &[u8]) -> WireRequest {
        let mut request = WireRequest::new("PUT", self.job_url(job, "/batches"))
            .header("Content-Type", "text/csv");
        request.body = body.to_vec();
        request
    }

    fn close_request(&self, job: &str) -> WireRequest {
        WireRequest::new("PATCH", self.job_url(job, "")).json(&json!({ "state": "UploadComplete" }))
    }

    fn abort_request(&self, job: &str) -> WireRequest {
        WireRequest::new("PATCH", self.job_url(job, "")).json(&json!({ "state": "Aborted" }))
    }

    fn status_request(&self, job: &str) -> WireRequest {
        WireRequest::new("GET", self.job_url(job, ""))
    }

    fn result_requests(&self, job: &str) -> [WireRequest; 3] {
        [
            "/successfulResults/",
            "/failedResults/",
            "/unprocessedrecords/",
        ]
        .map(|tail| WireRequest::new("GET", self.job_url(job, tail)).header("Accept", "text/csv"))
    }

    fn parse_results(
        &self,
        members: &[Member],
        answers: &[WireResponse; 3],
    ) -> Result<Vec<Option<RecordResult>>, String> {
        // A member's match key may be shared (two people with one email):
        // each result row is given to the next member with its key.
        let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, member) in members.iter().enumerate().rev() {
            by_key.entry(self.match_key(member)?).or_default().push(i);
        }
        let mut results = vec![None; members.len()];
        let mut place = |key: &str, result: Option<RecordResult>| {
            if let Some(i) = by_key.get_mut(key).and_then(Vec::pop) {
                results[i] = result;
            }
        };
        let column = self.external_id.as_str();
        let [successful, failed, unprocessed] = answers.each_ref().map(|a| Table::parse(&a.body));
        let table = successful?;
        if !table.rows.is_empty() {
            let (key, id) = (need(&table, column)?, need(&table, "sf__Id")?);
            for row in &table.rows {
                let remote_id = Some(row[id].clone()).filter(|id| !id.is_empty());
                place(&row[key], Some(RecordResult::Accepted { remote_id }));
            }
        }
        let table = failed?;
        if !table.rows.is_empty() {
            let (key, error) = (need(&table, column)?, need(&table, "sf__Error")?);
            for row in &table.rows {
                place(&row[key], Some(failure(&row[error])));
            }
        }
        // Unprocessed rows stay pending: their members keep `None`.
        let table = unprocessed?;
        if !table.rows.is_empty() {
            let key = need(&table, column)?;
            for row in &table.rows {
                place(&row[key], None);
            }
        }
        Ok(results)
    }
}

/// A failed row's `sf__Error`, `CODE:message:fields --` as Salesforce
/// writes it; a locked row is sent again, as Salesforce advises.
fn failure(error: &str) -> RecordResult {
    let (code, message) = error.split_once(':').unwrap_or((error, ""));
    let code = code.trim().to_string();
    let message = message.trim().trim_end_matches("--").trim().to_string();
    match code.as_str() {
        "UNABLE_TO_LOCK_ROW" => RecordResult::Retry { code, message },
        _ => RecordResult::Rejected { code, message },
    }
}

fn need(table: &Table, column: &str) -> Result<usize, String> {
    table
        .column(column)
        .ok_or_else(|| format!("a Bulk API result set has no `{column}` column"))
}
