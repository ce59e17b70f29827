//! `--heal` wired up: the healer with `--bars`' interval and its wait,
//! and the thread that fetches its K-lines.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::bars::heal::Healer;
use crate::cli::Options;
use crate::writer::HealLink;

/// The writer's side of `--heal`, its thread started; None without it.
/// `demo`: the simulator's HTTP bases; `resumed_at`: a capture's last
/// line's time, on a restart.
pub(super) fn link(
    opts: &Options,
    token: Option<String>,
    demo: Option<(String, String)>,
    stop: &Arc<AtomicBool>,
    resumed_at: Option<u64>,
) -> Option<HealLink> {
    let heal = opts.heal.as_ref()?;
    let interval = opts.form.bars?;
    let (requests, answers, pace) =
        crate::history::start_healing(heal, token, demo, Arc::clone(stop));
    let grace = opts.form.bar_grace.as_millis() as u64;
    let wait = heal.wait.map(|w| w.as_millis() as u64);
    Some(HealLink {
        healer: Healer::new(interval, grace, wait, pace),
        requests,
        answers,
        resumed_at,
    })
}
