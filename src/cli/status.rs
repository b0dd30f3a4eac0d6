//! `accord status [DIR]`: each activation's last runs and each audience's
//! size trend, from the run log (`run::history`). Needs no engine.

use std::path::PathBuf;

use super::{DataFormat, EXIT_OK, EXIT_USAGE};
use crate::run::history;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The project folder (holding accord.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// How many of each activation's runs to show, newest first.
    #[arg(long, default_value_t = 5)]
    last: usize,
    /// `text` for people, `json` for tools.
    #[arg(long, value_enum, default_value_t = DataFormat::Text)]
    format: DataFormat,
}

pub fn status_cmd(args: StatusArgs) -> u8 {
    if !args.dir.join("accord.toml").is_file() {
        eprintln!(
            "error: {} holds no accord.toml: not an accord project",
            args.dir.display()
        );
        return EXIT_USAGE;
    }
    let log = match history::read(&args.dir) {
        Ok(log) => log.unwrap_or_default(),
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut h = history::history(&log, args.last);
    h.project
        .get_or_insert_with(|| args.dir.display().to_string());
    match args.format {
        DataFormat::Text => out!("{}", h.render_text()),
        DataFormat::Json => outln!("{}", serde_json::to_string_pretty(&h).unwrap_or_default()),
    }
    EXIT_OK
}
