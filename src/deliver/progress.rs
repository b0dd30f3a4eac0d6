//! A progress bar of the members sent, on stderr, only when stderr is a
//! terminal: logs and captured output stay free of control sequences.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The members a delivery has finished with (accepted, rejected or left pending).
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `total` members, drawn only on a terminal; [`Progress::planned`]
    /// adds to it as more are planned.
    pub fn new(total: u64, destination: &str) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), draw_target());
        if let Ok(style) =
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} members {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(destination.to_string());
        Progress { bar }
    }

    /// A bar never drawn (tests, dry runs).
    pub fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    /// More members to finish with.
    pub fn planned(&self, members: u64) {
        self.bar.inc_length(members);
    }

    pub fn done(&self, members: u64) {
        self.bar.inc(members);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}
