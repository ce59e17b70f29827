//! The healer's answers: K-lines in place of the bars from trades, spans
//! given up, and the gap lines of the gaps whose requests are all settled.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{Answer, Asked, Healer, KlineBar, Outcome, Pending, Release};
use crate::bars::Bar;
use crate::queue::{Gap, HealNote};

impl Healer {
    /// An answer came: what it releases.
    pub fn answer(&mut self, answer: Answer) -> Vec<Release> {
        let mut out = Vec::new();
        let Some(a) = self.asked.remove(&answer.id) else {
            // Given up on already.
            return out;
        };
        self.loosened = true;
        let (healed, unhealed, why) = match answer.outcome {
            Outcome::Klines { bars, from } => self.fill(&a, bars, from, &mut out),
            Outcome::GaveUp(why) => {
                let n = self.release_span(&a.code, a.first, a.last, &mut out);
                (0, n, Some(format!("{}: {why}", a.code)))
            }
        };
        if let Some(p) = self.pending.get_mut(&a.gap) {
            p.healed += healed;
            p.unhealed += unhealed;
            p.why.extend(why);
            p.open = p.open.map(|n| n.saturating_sub(1));
        }
        self.settle(&mut out);
        out
    }

    /// The K-lines of `a`'s span in place of its bars from trades.
    pub(super) fn fill(
        &mut self,
        a: &Asked,
        bars: Vec<KlineBar>,
        from: u64,
        out: &mut Vec<Release>,
    ) -> (u64, u64, Option<String>) {
        let ms = self.interval.ms();
        let mut by_start: BTreeMap<u64, KlineBar> = bars
            .into_iter()
            .filter(|k| k.start >= a.first.max(from) && k.start <= a.last)
            .map(|k| (k.start, k))
            .collect();
        let symbol = self.codes.get(&a.code).map(|c| c.0.clone());
        let mut unhealed = 0;
        let mut start = a.first;
        while start <= a.last {
            let key = (a.code.clone(), start);
            let held = self.held.remove(&key);
            let done = self.done.contains(&key);
            match by_start.remove(&start) {
                // In the capture already (a restart): written once.
                Some(_) if done && start >= from => {}
                Some(bar) if start >= from => out.push(Release::Kline {
                    symbol: held
                        .as_ref()
                        .map(|b| b.symbol.clone())
                        .or_else(|| symbol.clone())
                        .unwrap_or_else(|| a.code.clone()),
                    code: a.code.clone(),
                    bar,
                }),
                _ => {
                    if start < from {
                        unhealed += 1;
                    }
                    if let Some(b) = held {
                        out.push(Release::Bar(b));
                    }
                }
            }
            self.done.insert(key);
            start += ms;
        }
        let bars = (a.last - a.first) / ms + 1;
        let why = (unhealed > 0).then(|| {
            format!(
                "{}: the server no longer has the bars from {} to {}",
                a.code,
                crate::wire::calendar::iso(a.first),
                crate::wire::calendar::iso(from.min(a.last + ms))
            )
        });
        (bars - unhealed, unhealed, why)
    }

    /// Release the held bars of `code` from `first` to `last`: how many
    /// bars the span has.
    pub(super) fn release_span(
        &mut self,
        code: &Arc<str>,
        first: u64,
        last: u64,
        out: &mut Vec<Release>,
    ) -> u64 {
        let keys: Vec<(Arc<str>, u64)> = self
            .held
            .range((code.clone(), first)..=(code.clone(), last))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some(b) = self.held.remove(&k) {
                out.push(Release::Bar(b));
            }
        }
        (last - first) / self.interval.ms() + 1
    }

    /// Give gap `id` up: its held bars as they are.
    pub(super) fn give_up(&mut self, id: u64, why: &str, out: &mut Vec<Release>) {
        let asks: Vec<u64> = self
            .asked
            .iter()
            .filter(|(_, a)| a.gap == id)
            .map(|(k, _)| *k)
            .collect();
        for rid in asks {
            let a = self.asked.remove(&rid).expect("asked");
            self.loosened = true;
            let n = self.release_span(&a.code, a.first, a.last, out);
            if let Some(p) = self.pending.get_mut(&id) {
                p.unhealed += n;
            }
        }
        if let Some(p) = self.pending.get_mut(&id) {
            p.why.push(why.to_string());
            p.open = Some(0);
        }
    }

    /// Held bars that no outage or gap touches any more are written.
    pub(super) fn release_untouched(&mut self, out: &mut Vec<Release>) {
        if !std::mem::take(&mut self.loosened) || self.held.is_empty() {
            return;
        }
        // The spans asked for, by code.
        let mut asked: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
        for a in self.asked.values() {
            asked.entry(&*a.code).or_default().push((a.first, a.last));
        }
        let is_asked = |b: &Bar| {
            (asked.get(&*b.code))
                .is_some_and(|spans| spans.iter().any(|&(a, z)| (a..=z).contains(&b.start)))
        };
        let free: Vec<(Arc<str>, u64)> = (self.held.iter())
            .filter(|(_, b)| !self.touches(b) && !is_asked(b))
            .map(|(k, _)| k.clone())
            .collect();
        for k in free {
            if let Some(b) = self.held.remove(&k) {
                self.written(&b.code, &b.symbol, b.start);
                out.push(Release::Bar(b));
            }
        }
    }

    /// Gaps whose requests are all settled: their lines.
    pub(super) fn settle(&mut self, out: &mut Vec<Release>) {
        let done: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.open == Some(0))
            .map(|(k, _)| *k)
            .collect();
        for id in done {
            let p = self.pending.remove(&id).expect("pending");
            self.loosened = true;
            out.push(Release::Gap(noted(p)));
            self.generation += 1;
        }
        if self.pending.is_empty() && self.outages.is_empty() {
            self.done.clear();
        }
    }

    /// Everything held, as it is (a stop), and every gap's line.
    pub fn stop(&mut self) -> Vec<Release> {
        let mut out = Vec::new();
        let ids: Vec<u64> = self.pending.keys().copied().collect();
        for id in ids {
            self.give_up(id, "stopped before its bars were healed", &mut out);
        }
        for (_, b) in std::mem::take(&mut self.held) {
            out.push(Release::Bar(b));
        }
        self.settle(&mut out);
        self.outages.clear();
        out
    }
}

/// A settled gap's line, with its note.
fn noted(p: Pending) -> Gap {
    let mut gap = p.gap;
    let healed = p.unhealed == 0 && p.why.is_empty();
    let mut note = format!(
        "{} healed from K-lines, {} left as built from trades",
        crate::report::count(p.healed as usize, "bar"),
        p.unhealed
    );
    if !p.why.is_empty() {
        note.push_str(": ");
        note.push_str(&p.why.join("; "));
    }
    gap.heal = Some(HealNote { healed, note });
    gap
}
