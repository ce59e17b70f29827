//! What a live run goes on with from the last one's capture: each code's
//! last line, the memory file, and the bars still open.

use std::path::PathBuf;

use crate::bars::Bar;
use crate::capture::resume::{self, Resumed};
use crate::capture::{memory, takeback};
use crate::cli::Options;
use crate::stats::Stats;

/// What a run goes on with from the last one's capture (with `--output`
/// or `--resume`).
pub(super) struct Restart {
    /// The capture's tail: each code's last line written.
    pub(super) resumed: Resumed,
    /// The memory file beside a capture whose lines do not say it.
    pub(super) memory: Option<PathBuf>,
    /// Bars the last stop wrote whose intervals are still open.
    pub(super) reopen: Vec<Bar>,
}

impl Restart {
    /// Read what the capture (and its memory file) say; bars still open
    /// are cut from its end.
    pub(super) fn read(opts: &Options) -> Restart {
        let mut resumed = resume::read_capture(opts.output.as_ref(), opts.resume.as_deref());
        let memory = memory_file(opts);
        if let Some(path) = &memory {
            resumed.remember(path);
        }
        Restart {
            resumed,
            memory,
            reopen: bars_to_reopen(opts),
        }
    }
}

/// Where a capture whose lines do not say each code's last push (bars,
/// `--fields` without code, seq or time) keeps it: beside the capture.
fn memory_file(opts: &Options) -> Option<PathBuf> {
    if opts.form.lines_say_seq() {
        return None;
    }
    match (&opts.output, &opts.resume) {
        (Some(pattern), _) => Some(memory::for_pattern(pattern)),
        (None, Some(file)) => Some(memory::for_file(file)),
        (None, None) => None,
    }
}

/// With `--bars`, the bars the last stop wrote whose intervals are still
/// open, cut from the end of the newest files (or of `--resume FILE` when
/// stdout is FILE).
fn bars_to_reopen(opts: &Options) -> Vec<Bar> {
    let Some(interval) = opts.form.bars else {
        return Vec::new();
    };
    let files = match (&opts.output, &opts.resume) {
        (Some(pattern), _) => pattern.existing().into_iter().take(2).collect(),
        (None, Some(file)) if resume::is_stdout(file) => vec![file.clone()],
        _ => return Vec::new(),
    };
    let grace = opts.form.bar_grace.as_millis() as u64;
    takeback::take_back(&files, interval, grace, Stats::now_ms())
}
