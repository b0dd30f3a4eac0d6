//! `accord schema [--out FILE]`: the JSON Schema of spec files, for editors
//! (Taplo, Even Better TOML). The text is deterministic, so a committed copy
//! can be compared with it in CI.

use std::path::PathBuf;

use super::{EXIT_OK, EXIT_USAGE};

#[derive(clap::Args, Debug)]
pub struct SchemaArgs {
    /// Write the schema to this file instead of printing it.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn schema_cmd(args: SchemaArgs) -> u8 {
    let text = crate::json_schema::text();
    match args.out {
        None => {
            out!("{text}");
            EXIT_OK
        }
        Some(path) => match std::fs::write(&path, text) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                EXIT_USAGE
            }
        },
    }
}
