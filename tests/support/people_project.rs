//! The project in `tests/state_projects/people`, with its data written by
//! the test: large enough that a source fills several spill batches and an
//! activation several batches of members.

use std::fmt::Write as _;
use std::path::Path;

/// Writes the project into `dir`: an audience of every account and two
/// smaller ones; a full export of their people to CSV files per audience,
/// cut every 70,000 rows, an incremental one to Parquet, and one of
/// accounts keyed by an integer. Its data: 2,000 accounts and `people`
/// people, as CSV. `changed`: the second data set, where every 100th
/// person changed, every 250th is gone and a few are new.
pub fn write(dir: &Path, people: usize, changed: bool) {
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    let mut accounts = String::from("accountId,employees\n");
    for i in 0..2_000 {
        let _ = writeln!(accounts, "{i},{}", i % 97);
    }
    std::fs::write(dir.join("data/accounts.csv"), accounts).expect("accounts");
    let mut rows = String::from("personId,accountId,email,seniority\n");
    for i in 0..people {
        if changed && i % 250 == 3 {
            continue;
        }
        let seniority = if changed && i % 100 == 7 { "VP" } else { "IC" };
        let _ = writeln!(
            rows,
            "P{i:07},{},p{i}@example.com,{seniority}",
            (i * 7) % 2_000
        );
    }
    if changed {
        for i in people..people + people / 500 {
            let _ = writeln!(rows, "P{i:07},{},p{i}@example.com,IC", i % 2_000);
        }
    }
    std::fs::write(dir.join("data/people.csv"), rows).expect("people");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/state_projects/people/accord.toml"),
        dir.join("accord.toml"),
    )
    .expect("specs");
}
