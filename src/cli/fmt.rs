//! `accord fmt [DIR] [--check]`: every spec file of the project in its
//! canonical layout (`layout`). `--check` writes nothing and exits 1 with
//! the files it would change, for CI and pre-commit.

use std::path::PathBuf;

use super::{EXIT_ERRORS, EXIT_OK, EXIT_USAGE};

#[derive(clap::Args, Debug)]
pub struct FmtArgs {
    /// The project folder (holding accord.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Change nothing; exit 1 listing the files that are not formatted.
    #[arg(long)]
    check: bool,
}

pub fn fmt_cmd(args: FmtArgs) -> u8 {
    let sources = match crate::load::load(&args.dir) {
        Ok(sources) => sources,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut unformatted = Vec::new();
    let mut unreadable = false;
    for (_, file) in sources.iter() {
        let formatted = match crate::layout::format(&file.text) {
            Ok(formatted) => formatted,
            Err(why) => {
                eprintln!(
                    "error: {} is not valid TOML ({why}); `accord check` shows where",
                    file.path
                );
                unreadable = true;
                continue;
            }
        };
        if formatted == file.text {
            continue;
        }
        if !args.check {
            let path = args.dir.join(&file.path);
            if let Err(e) = std::fs::write(&path, &formatted) {
                eprintln!("error: cannot write {}: {e}", path.display());
                unreadable = true;
                continue;
            }
        }
        unformatted.push(file.path.clone());
    }
    for path in &unformatted {
        if args.check {
            outln!("would format {path}");
        } else {
            outln!("formatted {path}");
        }
    }
    if unreadable {
        EXIT_USAGE
    } else if args.check && !unformatted.is_empty() {
        eprintln!(
            "error: {} file{} not formatted; run `accord fmt {}`",
            unformatted.len(),
            if unformatted.len() == 1 {
                " is"
            } else {
                "s are"
            },
            args.dir.display()
        );
        EXIT_ERRORS
    } else {
        EXIT_OK
    }
}
