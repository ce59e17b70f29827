//! `--heal` in the writer: outages and gaps handed to the converter's
//! healer, its requests sent to the thread that fetches K-lines, its
//! answers taken in beside the queue, and what it releases written: bars
//! and K-lines to the file of their start, gap lines where gaps go.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Select, Sender};

use crate::bars::Bar;
use crate::bars::heal::{Answer, Healer, Kept, Request};
use crate::form::LineForm;
use crate::form::convert::{Clock, Converter};
use crate::queue::Item;
use crate::stats::Stats;
use crate::wire::repeat::Last;

/// The writer's side of healing.
#[derive(Debug)]
pub struct HealLink {
    /// The rules, with `--bars`' interval and `--heal-wait`.
    pub healer: Healer,
    /// Requests for K-lines go here.
    pub requests: Sender<Request>,
    /// Their answers come from here.
    pub answers: Receiver<Answer>,
    /// A restart into a capture: its last line's time.
    pub resumed_at: Option<u64>,
    /// What the last run kept of its outages and gaps.
    pub kept: Vec<Kept>,
    /// The bars the capture holds since the oldest of them.
    pub written: HashSet<(String, u64)>,
    /// Where what is held is kept ([`crate::capture::heal_file`]).
    pub file: Option<PathBuf>,
}

/// The writer's ends of healing: requests out, answers in, and the file
/// that keeps what is held.
pub(super) type Ends = (
    Option<Sender<Request>>,
    Option<Receiver<Answer>>,
    Option<PathBuf>,
);

/// The converter of `form` (live), the bars taken back open again, and
/// with `--heal` its healer set for a restart from `resumed` (each code's
/// last push) and what the last run kept; the writer's ends.
pub(super) fn converter(
    form: LineForm,
    stats: &Arc<Stats>,
    reopen: Vec<Bar>,
    resumed: &HashMap<(bool, String), Last>,
    heal: Option<HealLink>,
) -> (Converter, Ends) {
    let mut converter = Converter::new(form, Clock::Wall, Arc::clone(stats));
    let reopened: Vec<(String, u64)> = reopen
        .iter()
        .map(|b| (b.code.to_string(), b.start))
        .collect();
    converter.reopen(reopen);
    let Some(link) = heal else {
        return (converter, (None, None, None));
    };
    converter.heal(link.healer);
    if let Some(at) = link.resumed_at {
        // The bar of each code's last push is in the capture if it says so
        // (a kill -9 lost it otherwise), and not taken back.
        let lasts: Vec<(String, u64)> = (resumed.iter())
            .filter(|((depth, _), _)| !depth)
            .map(|((_, code), last)| (code.clone(), last.parts().1))
            .collect();
        converter.resumed(at, &lasts, &reopened, &link.written);
    }
    converter.heal_resume(link.kept, &link.written);
    let ends = (Some(link.requests), Some(link.answers), link.file);
    (converter, ends)
}

/// What the writer waited for.
pub(super) enum Got {
    /// An item of the queue.
    Item(Item),
    /// An answer of the healing thread.
    Answer(Answer),
    /// Nothing came in time.
    Timeout,
    /// The queue is closed and empty.
    Closed,
}

/// `--heal`: the healer's clock is read at most this often while the
/// queue keeps the writer busy: a flood empties the queue thousands of
/// times a second, and a reading looks at every pending gap (and, after
/// a change, every held bar); its deadlines are interval ends plus a
/// grace of seconds, which 10 ms does not move.
pub(super) const HEAL_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// The next item of `queue` or answer of `answers`, waiting at most `wait`
/// (None: until one comes). When the healing thread is gone (it stops at
/// a stop, before the queue closes), `answers` becomes None: the queue
/// alone from then on, or its closed channel, ready at every turn, would
/// keep the writer from ever waiting (measured: 0.1–0.2 s of CPU spent
/// so at each stop with `--heal`).
pub(super) fn receive(
    queue: &Receiver<Item>,
    answers: &mut Option<Receiver<Answer>>,
    wait: Option<std::time::Duration>,
) -> Got {
    let Some(a_rx) = answers.as_ref() else {
        let got = match wait {
            None => queue.recv().map_err(|_| true),
            Some(d) => queue.recv_timeout(d).map_err(|e| e.is_disconnected()),
        };
        return match got {
            Ok(item) => Got::Item(item),
            Err(true) => Got::Closed,
            Err(false) => Got::Timeout,
        };
    };
    let mut sel = Select::new();
    let q = sel.recv(queue);
    let a = sel.recv(a_rx);
    let op = match wait {
        None => sel.select(),
        Some(d) => match sel.select_timeout(d) {
            Ok(op) => op,
            Err(_) => return Got::Timeout,
        },
    };
    match op.index() {
        i if i == q => match op.recv(queue) {
            Ok(item) => Got::Item(item),
            Err(_) => Got::Closed,
        },
        i if i == a => match op.recv(a_rx) {
            Ok(answer) => Got::Answer(answer),
            Err(_) => {
                *answers = None;
                Got::Timeout
            }
        },
        _ => Got::Timeout,
    }
}
