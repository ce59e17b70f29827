//! `--heal` in the converter: gaps and outages moved onto the feed's clock
//! for [`Healer`], and what it releases made into the form's lines (a
//! K-line as a `"kline"` bar, [`crate::form::columns::Columns::kline`]).

use std::collections::HashSet;
use std::sync::Arc;

use crate::bars::heal::{Answer, Healer, Kept, Release, Request};
use crate::form::columns::KlineRow;
use crate::form::convert::Converter;
use crate::queue::Gap;

/// How long after a restart each code's first trade is kept to end the
/// restart's gaps: every connection acknowledges its first subscription
/// well within it.
const RESTART_WINDOW_MS: u64 = 120_000;

/// What healing hands the writer: lines by their start, and gap lines.
#[derive(Debug, Default)]
pub struct Healed {
    /// Bar and K-line lines: (start, line).
    pub lines: Vec<(u64, Vec<u8>)>,
    /// Gap lines, their notes set.
    pub gaps: Vec<Gap>,
}

impl Converter {
    /// Heal with `healer` (live, with bars).
    pub fn heal(&mut self, healer: Healer) {
        if self.bars.is_some() {
            self.healer = Some(healer);
        }
    }

    /// Whether gaps are held for healing.
    pub fn heals(&self) -> bool {
        self.healer.is_some()
    }

    /// An outage of `codes` on `connection` began at `from` (the wall
    /// clock).
    pub fn outage(&mut self, connection: Arc<str>, codes: Vec<String>, from: u64) {
        let from = from.saturating_add_signed(self.skew.get());
        if let Some(h) = &mut self.healer {
            h.outage(Some(connection), Some(codes), from);
        }
    }

    /// A restart: every code is incomplete from `from` (the feed's clock:
    /// a capture's last line) until the first gap comes. `last`: each
    /// code's last push before the stop; the bar holding it is in the
    /// capture (the stop wrote it) unless it was taken back and opened
    /// again (`reopened`, by code and start).
    pub fn resumed(
        &mut self,
        from: u64,
        last: &[(String, u64)],
        reopened: &[(String, u64)],
        written: &HashSet<(String, u64)>,
    ) {
        let Some(interval) = self.form.bars else {
            return;
        };
        if let Some(h) = &mut self.healer {
            h.restart(from, crate::stats::Stats::now_ms(), RESTART_WINDOW_MS);
            for (code, time) in last {
                let start = interval.start(*time);
                let cut = reopened.iter().any(|(c, s)| c == code && *s == start);
                if !cut && written.contains(&(code.clone(), start)) {
                    h.in_capture(code, start);
                }
            }
        }
    }

    /// What the last run kept (a `kill -9`), healed again but for the bars
    /// in `written`.
    pub fn heal_resume(&mut self, kept: Vec<Kept>, written: &HashSet<(String, u64)>) {
        if let Some(h) = &mut self.healer {
            h.resume(kept, written);
        }
    }

    /// What is held to be kept, when it changed since `generation`.
    pub fn heal_kept(&self, generation: u64) -> Option<(u64, Vec<Kept>)> {
        let h = self.healer.as_ref()?;
        (h.generation() != generation).then(|| (h.generation(), h.kept()))
    }

    /// A gap, held until its bars are healed.
    pub fn gap(&mut self, gap: Gap) {
        let skew = self.skew.get();
        let (from, to) = (
            gap.from.saturating_add_signed(skew),
            gap.to.saturating_add_signed(skew),
        );
        // A restart's gap starts at a capture's line: the feed's clock.
        let restart = gap.reason.starts_with("not running");
        let from = if restart { gap.from } else { from };
        if let Some(h) = &mut self.healer {
            h.gap(gap, from, to, restart);
        }
    }

    /// The wall clock reads `now`: the requests due, and what is released.
    pub fn heal_tick(&mut self, now: u64) -> (Vec<Request>, Healed) {
        let clock = now.saturating_add_signed(self.skew.get());
        let Some(h) = &mut self.healer else {
            return (Vec::new(), Healed::default());
        };
        let (requests, out) = h.tick(clock, now);
        (requests, self.released(out))
    }

    /// An answer came.
    pub fn healed(&mut self, answer: Answer) -> Healed {
        let out = match &mut self.healer {
            Some(h) => h.answer(answer),
            None => Vec::new(),
        };
        self.released(out)
    }

    /// Everything held goes out as it is (the end).
    pub fn heal_stop(&mut self) -> Healed {
        let out = match &mut self.healer {
            Some(h) => h.stop(),
            None => Vec::new(),
        };
        self.released(out)
    }

    fn released(&mut self, out: Vec<Release>) -> Healed {
        let mut healed = Healed::default();
        let interval = self.form.bars.map_or("", |i| i.name());
        for r in out {
            match r {
                Release::Bar(bar) => healed.lines.extend(self.bar_lines(vec![bar])),
                Release::Kline { symbol, code, bar } => {
                    // A code whose label the bars know, if the healer did not.
                    let symbol = match (&self.bars, symbol == code) {
                        (Some(b), true) => b.symbol(&code).unwrap_or(symbol),
                        _ => symbol,
                    };
                    let [o, h, l, c, v, t] = &bar.values;
                    let row = KlineRow {
                        symbol: &symbol,
                        code: &code,
                        interval,
                        start: bar.start,
                        end: bar.end,
                        values: [o, h, l, c, v, t],
                    };
                    let mut line = Vec::new();
                    self.form.columns.kline(&mut line, &mut self.cell, &row);
                    healed.lines.push((bar.start, line));
                }
                Release::Gap(g) => healed.gaps.push(g),
            }
        }
        healed
    }
}
