//! `--heal` wired up: the healer with `--bars`' interval and its wait,
//! and the thread that fetches its K-lines.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::bars::heal::Healer;
use crate::capture::heal_file;
use crate::cli::Options;
use crate::report::{count, say};
use crate::stats::Stats;
use crate::writer::HealLink;

/// The writer's side of `--heal`, its thread started; None without it.
/// `demo`: the simulator's HTTP bases; `resumed_at`: a capture's last
/// line's time, on a restart; `memory`: the capture's memory file, beside
/// which what is held is kept.
pub(super) fn link(
    opts: &Options,
    token: Option<String>,
    demo: Option<(String, String)>,
    stop: &Arc<AtomicBool>,
    (resumed_at, memory): (Option<u64>, Option<&Path>),
) -> Option<HealLink> {
    let heal = opts.heal.as_ref()?;
    let interval = opts.form.bars?;
    let (requests, answers, pace) =
        crate::history::start_healing(heal, token, demo, Arc::clone(stop));
    let grace = opts.form.bar_grace.as_millis() as u64;
    let wait = heal.wait.map(|w| w.as_millis() as u64);
    let file = memory.map(heal_file::beside);
    let kept = file.as_deref().map(heal_file::load).unwrap_or_default();
    // The bars the capture holds since the oldest time anything is healed
    // from: none is written twice.
    let oldest = (kept.iter().map(|k| k.from)).chain(resumed_at).min();
    let written = match (&opts.output, oldest) {
        (Some(pattern), Some(from)) => {
            heal_file::written_bars(pattern, interval.start(from), Stats::now_ms().max(from))
        }
        _ => HashSet::new(),
    };
    if !kept.is_empty() {
        say(format!(
            "heal: {} kept from the last run healed again",
            count(kept.len(), "outage or gap")
        ));
    }
    Some(HealLink {
        healer: Healer::new(interval, grace, wait, pace),
        requests,
        answers,
        resumed_at,
        kept,
        written,
        file,
    })
}
