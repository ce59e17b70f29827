//! `--heal` in the writer: outages and gaps handed to the converter's
//! healer, its requests sent to the thread that fetches K-lines, its
//! answers taken in beside the queue, and what it releases written: bars
//! and K-lines to the file of their start, gap lines where gaps go.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Select, Sender};

use super::Batcher;
use crate::bars::Bar;
use crate::bars::heal::{Answer, Healer, Request};
use crate::form::LineForm;
use crate::form::convert::{Clock, Converter};
use crate::form::heal::Healed;
use crate::queue::{Gap, Item};
use crate::report::say;
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
}

/// The converter of `form` (live), the bars taken back open again, and
/// with `--heal` its healer set for a restart from `resumed` (each code's
/// last push); the channels to the fetching thread.
pub(super) fn converter(
    form: LineForm,
    stats: &Arc<Stats>,
    reopen: Vec<Bar>,
    resumed: &HashMap<(bool, String), Last>,
    heal: Option<HealLink>,
) -> (Converter, Option<Sender<Request>>, Option<Receiver<Answer>>) {
    let mut converter = Converter::new(form, Clock::Wall, Arc::clone(stats));
    let reopened: Vec<(String, u64)> = reopen
        .iter()
        .map(|b| (b.code.to_string(), b.start))
        .collect();
    converter.reopen(reopen);
    let Some(link) = heal else {
        return (converter, None, None);
    };
    converter.heal(link.healer);
    if let Some(at) = link.resumed_at {
        let lasts: Vec<(String, u64)> = (resumed.iter())
            .filter(|((depth, _), _)| !depth)
            .map(|((_, code), last)| (code.clone(), last.parts().1))
            .collect();
        converter.resumed(at, &lasts, &reopened);
    }
    (converter, Some(link.requests), Some(link.answers))
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

/// The next item of `queue` or answer of `answers`, waiting at most `wait`
/// (None: until one comes).
pub(super) fn receive(
    queue: &Receiver<Item>,
    answers: Option<&Receiver<Answer>>,
    wait: Option<std::time::Duration>,
) -> Got {
    let Some(answers) = answers else {
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
    let a = sel.recv(answers);
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
        i if i == a => match op.recv(answers) {
            Ok(answer) => Got::Answer(answer),
            // The healing thread is gone: the queue alone from now on.
            Err(_) => Got::Timeout,
        },
        _ => Got::Timeout,
    }
}

impl<W: Write> Batcher<W> {
    /// A gap: held by the healer, or written now.
    pub(super) fn gap(&mut self, g: Gap) {
        match &mut self.converter {
            Some(c) if c.heals() => c.gap(g),
            _ => self.write_gap(&g),
        }
    }

    /// Write a gap line in each period it spans.
    pub(super) fn write_gap(&mut self, g: &Gap) {
        let times = match &self.sink {
            super::Sink::Files(c) => c.gap_periods(g),
            super::Sink::Stream(_) | super::Sink::Parquet(_) => vec![g.from],
        };
        for t in times {
            let at = self.buf.len();
            crate::form::json::format_gap(&mut self.buf, g);
            if self.convert(at) {
                self.placed(t.max(g.from), at);
            }
        }
    }

    /// What healing released, written.
    pub(super) fn write_healed(&mut self, healed: Healed) {
        for (start, line) in healed.lines {
            let at = self.buf.len();
            self.buf.extend_from_slice(&line);
            self.placed(start, at);
        }
        for g in healed.gaps {
            self.write_gap(&g);
        }
    }

    /// Healing's clock: requests due go to the fetching thread, and what
    /// is released is written.
    pub(super) fn heal_tick(&mut self) {
        let Some(c) = &mut self.converter else {
            return;
        };
        if !c.heals() {
            return;
        }
        let (requests, healed) = c.heal_tick(Stats::now_ms());
        if let Some(tx) = &self.heal_requests {
            for r in requests {
                if tx.send(r).is_err() && !self.heal_gone {
                    self.heal_gone = true;
                    say(
                        "heal: the thread that fetches K-lines is gone: held bars are written as built from trades once their wait ends",
                    );
                }
            }
        }
        self.write_healed(healed);
    }

    /// An answer of the fetching thread.
    pub(super) fn heal_answer(&mut self, answer: Answer) {
        if let Some(c) = &mut self.converter {
            let healed = c.healed(answer);
            self.write_healed(healed);
        }
    }

    /// The end: everything held goes out as it is.
    pub(super) fn heal_stop(&mut self) {
        if let Some(c) = &mut self.converter
            && c.heals()
        {
            let healed = c.heal_stop();
            self.write_healed(healed);
        }
    }
}
