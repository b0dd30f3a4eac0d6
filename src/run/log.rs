//! The run log, `<project>/.accord/runs.jsonl`: one JSON line per run,
//! appended whole under the project lock.

use std::io::Write;
use std::path::Path;

use super::error::RunError;
use super::io::Faults;
use super::report::{RunDiagnostic, RunReport};
use crate::diag::codes;

/// Bytes after the last line break of the log (0 when it ends in one or is
/// empty), read backwards from the end in blocks: the log grows with every
/// run, and only its tail matters.
fn partial_line(file: &mut std::fs::File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let mut end = len;
    let mut block = vec![0u8; 8192];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block[..n])?;
        if let Some(i) = block[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(len - (start + i as u64 + 1));
        }
        end = start;
    }
    Ok(len)
}

/// Appends the report as one line to the run log, in one write. A log
/// that ends in a partial line (a run killed while appending, an edit)
/// gets its line ended first, in the same write, and the repair is
/// reported (R0105) in this report, so this line stays whole and
/// readable on its own. The caller holds the project lock, so nothing
/// appends between the look at the end and the write.
pub fn append(
    report: &mut RunReport,
    project_root: &Path,
    faults: &Faults,
) -> Result<(), RunError> {
    let dir = project_root.join(".accord");
    let path = dir.join("runs.jsonl");
    let failed = |e: std::io::Error| RunError::Log {
        path: path.clone(),
        reason: e.to_string(),
    };
    faults.step();
    std::fs::create_dir_all(&dir).map_err(|e| RunError::Log {
        path: dir.clone(),
        reason: e.to_string(),
    })?;
    faults.step();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)
        .map_err(failed)?;
    let partial = partial_line(&mut file).map_err(failed)?;
    let mut line = Vec::new();
    if partial > 0 {
        line.push(b'\n');
        report.diagnostics.push(
                RunDiagnostic::new(
                    codes::run::LOG_PARTIAL_LINE,
                    format!(
                        "run log `.accord/runs.jsonl`: it ended in a partial line of {partial} bytes, \
                         which was ended before this report"
                    ),
                )
                .help("the partial line is a report cut short; tools reading the log skip lines that are not JSON"),
            );
    }
    serde_json::to_writer(&mut line, report).map_err(|e| RunError::Log {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    line.push(b'\n');
    faults.step();
    file.write_all(&line).map_err(failed)
}
