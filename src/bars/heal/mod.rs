//! Healing (`--heal`): the bars a gap touched, held back and replaced by
//! AllTick's own K-lines once those intervals are over. Pure: times are
//! passed in, requests come out, answers go in, and lines to write come
//! out ([`Release`]).
//!
//! - **Held.** While an outage is open ([`Healer::outage`]), every bar of
//!   its codes that ends after its start is held, not written. When the
//!   gap closes ([`Healer::gap`]) its span on the feed's clock is known
//!   once a trade of one of its codes comes after it (the feed's own time
//!   of the first trade after the hole; the wall clock moved by the feed's
//!   offset if none comes within an interval): the bars it touched are
//!   those from the one holding its start to the one holding its end,
//!   empty ones and the partly covered ones at its edges.
//! - **Asked.** Once the clock passes the end of its last bar (plus the
//!   grace), one [`Request`] per code (at most [`MAX_BARS`] bars each)
//!   goes out. A bar already written before the gap was known (a gap that
//!   reached the writer late) is left as it is: each `(code, start)` is
//!   written once.
//! - **Answered.** For each start of a request's span: the K-line when the
//!   server has one (the bar from trades is dropped); else the bar from
//!   trades, if any. A request given up on ([`Outcome::GaveUp`]), or a
//!   gap not answered within its wait, releases its bars from trades as
//!   they are. When every request of a gap is settled, its gap line goes
//!   out, saying whether its bars were healed.

mod types;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{Bar, Interval};
use crate::queue::{Gap, HealNote};
pub use types::*;

/// An outage not yet closed.
#[derive(Debug)]
struct Outage {
    connection: Option<Arc<str>>,
    /// None: every code (but those of `except`).
    codes: Option<Vec<String>>,
    /// A restart's: the codes whose gaps came already.
    except: Vec<String>,
    /// Its start on the feed's clock.
    from: u64,
}

/// A gap whose bars are being healed.
#[derive(Debug)]
struct Pending {
    gap: Gap,
    /// Its codes, each with the start of its last bar written when the gap
    /// came.
    codes: Vec<(Arc<str>, Option<u64>)>,
    /// Start on the feed's clock.
    from: u64,
    /// End on the feed's clock, once known.
    to: Option<u64>,
    /// When no trade comes: the end read from the wall clock.
    guess: u64,
    /// Requests not yet answered; None until asked.
    open: Option<usize>,
    /// Bars healed, bars left as they were, and why.
    healed: u64,
    unhealed: u64,
    why: Vec<String>,
    /// The wall clock (ms) after which it is given up.
    deadline: Option<u64>,
}

/// What a request was for.
#[derive(Debug)]
struct Asked {
    gap: u64,
    code: Arc<str>,
    first: u64,
    last: u64,
}

/// The held bars and the gaps being healed; see the module's docs.
#[derive(Debug)]
pub struct Healer {
    interval: Interval,
    grace: u64,
    /// `--heal-wait`, ms; None: by the pace ([`Healer::new`]).
    wait: Option<u64>,
    /// The plan's pace: ms per request.
    pace: u64,
    outages: Vec<Outage>,
    pending: BTreeMap<u64, Pending>,
    asked: HashMap<u64, Asked>,
    /// Bars from trades held back, by (code, start).
    held: BTreeMap<(Arc<str>, u64), Bar>,
    /// Per code: its label and the start of its last bar written.
    codes: HashMap<Arc<str>, (Arc<str>, Option<u64>)>,
    /// Per code: its first trade after an outage or a restart.
    firsts: HashMap<Arc<str>, u64>,
    /// Until then (the wall clock, ms) first trades are kept: a restart.
    record_until: u64,
    next_id: u64,
}

/// How long a gap waits beyond its requests' turn at the plan's pace.
pub const WAIT_BASE_MS: u64 = 120_000;

impl Healer {
    /// Healing bars of `interval` written once the clock passes their end
    /// by `grace_ms`; a gap is given up `wait_ms` after it is asked for,
    /// or (None) [`WAIT_BASE_MS`] plus the turn of every request waiting
    /// at the plan's pace of `pace_ms` per request.
    pub fn new(interval: Interval, grace_ms: u64, wait_ms: Option<u64>, pace_ms: u64) -> Healer {
        Healer {
            interval,
            grace: grace_ms,
            wait: wait_ms,
            pace: pace_ms,
            outages: Vec::new(),
            pending: BTreeMap::new(),
            asked: HashMap::new(),
            held: BTreeMap::new(),
            codes: HashMap::new(),
            firsts: HashMap::new(),
            record_until: 0,
            next_id: 1,
        }
    }

    /// An outage began at `from` (the feed's clock): `codes` (None: every
    /// code) are incomplete from then until its gap comes.
    pub fn outage(&mut self, connection: Option<Arc<str>>, codes: Option<Vec<String>>, from: u64) {
        match &codes {
            Some(cs) => cs.iter().for_each(|c| {
                self.firsts.remove(c.as_str());
            }),
            None => self.firsts.clear(),
        }
        self.outages.retain(|o| o.connection != connection);
        self.outages.push(Outage {
            connection,
            codes,
            except: Vec::new(),
            from,
        });
    }

    /// A restart from a capture whose last line is at `from` (the feed's
    /// clock): every code is incomplete until its connection's first gap,
    /// and each code's first trade for `window` ms of the wall clock from
    /// `now` is kept to end those gaps.
    pub fn restart(&mut self, from: u64, now: u64, window: u64) {
        self.outage(None, None, from);
        self.record_until = now.saturating_add(window);
    }

    /// A trade of `code` at `time` was read at `now` (the wall clock): the
    /// first of its code after an outage (or a restart) ends its gap.
    #[inline]
    pub fn trade(&mut self, code: &[u8], time: u64, now: u64) {
        if self.pending.is_empty() && self.outages.is_empty() && now >= self.record_until {
            return;
        }
        for p in self.pending.values_mut() {
            if p.to.is_none() && p.codes.iter().any(|c| c.0.as_bytes() == code) {
                p.to = Some(time.max(p.from));
            }
        }
        if (!self.outages.is_empty() || now < self.record_until)
            && let Ok(code) = std::str::from_utf8(code)
            && !self.firsts.contains_key(code)
        {
            self.firsts.insert(Arc::from(code), time);
        }
    }

    /// A gap came: `from` and `guess` are its start and end moved onto the
    /// feed's clock; `restart`: the time the tool was not running. It
    /// closes its connection's outage (a restart's: the one opened for
    /// every code). It ends at the first trade of its codes after the
    /// outage or the restart; a gap of no outage (an overflow, a disk)
    /// where its own end says.
    pub fn gap(&mut self, gap: Gap, from: u64, guess: u64, restart: bool) {
        let conn = gap.connection.clone();
        // A restart's outage stays for the other connections' gaps, until
        // its window ends (`tick`).
        let outage = match restart {
            true => self
                .outages
                .iter_mut()
                .find(|o| o.connection.is_none())
                .map(|o| {
                    o.except.extend(gap.codes.iter().cloned());
                    o.from
                }),
            false => (self.outages.iter().position(|o| o.connection == conn))
                .map(|i| self.outages.remove(i).from),
        };
        let from = outage.map_or(from, |o| o.min(from));
        let first = (gap.codes.iter())
            .filter_map(|c| self.firsts.get(c.as_str()).copied())
            .min();
        let to = match (outage.is_some() || restart, first) {
            (true, first) => first.map(|t| t.max(from)),
            (false, _) => Some(guess.max(from)),
        };
        let id = self.id();
        let codes = gap
            .codes
            .iter()
            .map(|c| {
                let code = self.intern(c);
                let written = self.codes.get(&code).and_then(|e| e.1);
                (code, written)
            })
            .collect();
        self.pending.insert(
            id,
            Pending {
                gap,
                codes,
                from,
                to,
                guess: guess.max(from),
                open: None,
                healed: 0,
                unhealed: 0,
                why: Vec::new(),
                deadline: None,
            },
        );
    }

    /// A bar closed: Some(bar) to write it now, None when it is held.
    pub fn closed(&mut self, bar: Bar) -> Option<Bar> {
        if self.touches(&bar) {
            self.held.insert((bar.code.clone(), bar.start), bar);
            return None;
        }
        self.written(&bar.code, &bar.symbol, bar.start);
        Some(bar)
    }

    /// Whether an open outage or a gap being healed may touch `bar`.
    fn touches(&self, bar: &Bar) -> bool {
        let code = &*bar.code;
        let open = self.outages.iter().any(|o| {
            bar.end > o.from
                && match &o.codes {
                    Some(cs) => cs.iter().any(|c| c == code),
                    None => !o.except.iter().any(|c| c == code),
                }
        });
        open || self.pending.values().any(|p| {
            bar.end > p.from
                && p.to.is_none_or(|to| bar.start <= to)
                && p.codes.iter().any(|c| &*c.0 == code)
        })
    }

    fn written(&mut self, code: &Arc<str>, symbol: &Arc<str>, start: u64) {
        let e = self
            .codes
            .entry(code.clone())
            .or_insert_with(|| (symbol.clone(), None));
        e.1 = Some(e.1.map_or(start, |s| s.max(start)));
    }

    fn intern(&mut self, code: &str) -> Arc<str> {
        match self.codes.get_key_value(code) {
            Some((k, _)) => k.clone(),
            None => {
                let k: Arc<str> = Arc::from(code);
                self.codes.insert(k.clone(), (k.clone(), None));
                k
            }
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The feed's clock reads `clock` and the wall clock `now` (ms): the
    /// requests now due, and what is released (held bars and gaps given up,
    /// bars no gap touches any more).
    pub fn tick(&mut self, clock: u64, now: u64) -> (Vec<Request>, Vec<Release>) {
        let mut requests = Vec::new();
        let mut out = Vec::new();
        let ms = self.interval.ms();
        if now >= self.record_until {
            self.outages.retain(|o| o.connection.is_some());
        }
        let ids: Vec<u64> = self.pending.keys().copied().collect();
        for id in ids {
            let p = self.pending.get_mut(&id).expect("pending");
            if p.to.is_none() && clock >= p.guess.saturating_add(ms).saturating_add(self.grace) {
                p.to = Some(p.guess);
            }
            let Some(to) = p.to else { continue };
            if p.open.is_none() {
                let last = self.interval.start(to);
                if clock >= last.saturating_add(ms).saturating_add(self.grace) {
                    requests.extend(self.ask(id, last, clock, now));
                }
            } else if p.deadline.is_some_and(|d| now >= d) {
                self.give_up(id, "no K-lines within its wait (--heal-wait)", &mut out);
            }
        }
        self.release_untouched(&mut out);
        self.settle(&mut out);
        (requests, out)
    }

    /// The wait of a gap whose requests are `queued` behind the others.
    fn wait_for(&self, queued: u64) -> u64 {
        self.wait
            .unwrap_or_else(|| WAIT_BASE_MS + self.pace.saturating_mul(queued))
    }

    /// Ask for gap `id`'s bars, up to the one starting at `last`.
    fn ask(&mut self, id: u64, last: u64, clock: u64, now: u64) -> Vec<Request> {
        let ms = self.interval.ms();
        let p = &self.pending[&id];
        let first = self.interval.start(p.from);
        let codes = p.codes.clone();
        let mut requests = Vec::new();
        for (code, after) in codes {
            // Bars written before the gap was known stay as they are.
            let mut from = first;
            if let Some(w) = after.filter(|w| *w >= first) {
                let skipped = (w.min(last) - first) / ms + 1;
                let p = self.pending.get_mut(&id).expect("pending");
                p.unhealed += skipped;
                p.why
                    .push(format!("{code}: written before the gap was known"));
                from = w + ms;
            }
            while from <= last {
                let to = last.min(from + (MAX_BARS - 1) * ms);
                let rid = self.id();
                self.asked.insert(
                    rid,
                    Asked {
                        gap: id,
                        code: code.clone(),
                        first: from,
                        last: to,
                    },
                );
                requests.push(Request {
                    id: rid,
                    code: code.clone(),
                    interval: self.interval,
                    first: from,
                    last: to,
                    clock,
                });
                from = to + ms;
            }
        }
        let wait = self.wait_for(self.asked.len() as u64);
        let p = self.pending.get_mut(&id).expect("pending");
        p.open = Some(requests.len());
        p.deadline = Some(now.saturating_add(wait));
        requests
    }

    /// An answer came: what it releases.
    pub fn answer(&mut self, answer: Answer) -> Vec<Release> {
        let mut out = Vec::new();
        let Some(a) = self.asked.remove(&answer.id) else {
            // Given up on already.
            return out;
        };
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
    fn fill(
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
            let held = self.held.remove(&(a.code.clone(), start));
            match by_start.remove(&start) {
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
    fn release_span(
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
    fn give_up(&mut self, id: u64, why: &str, out: &mut Vec<Release>) {
        let asks: Vec<u64> = self
            .asked
            .iter()
            .filter(|(_, a)| a.gap == id)
            .map(|(k, _)| *k)
            .collect();
        for rid in asks {
            let a = self.asked.remove(&rid).expect("asked");
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
    fn release_untouched(&mut self, out: &mut Vec<Release>) {
        let free: Vec<(Arc<str>, u64)> = self
            .held
            .iter()
            .filter(|(_, b)| !self.touches(b) && !self.is_asked(b))
            .map(|(k, _)| k.clone())
            .collect();
        for k in free {
            if let Some(b) = self.held.remove(&k) {
                self.written(&b.code, &b.symbol, b.start);
                out.push(Release::Bar(b));
            }
        }
    }

    fn is_asked(&self, bar: &Bar) -> bool {
        self.asked
            .values()
            .any(|a| a.code == bar.code && (a.first..=a.last).contains(&bar.start))
    }

    /// Gaps whose requests are all settled: their lines.
    fn settle(&mut self, out: &mut Vec<Release>) {
        let done: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.open == Some(0))
            .map(|(k, _)| *k)
            .collect();
        for id in done {
            let p = self.pending.remove(&id).expect("pending");
            out.push(Release::Gap(noted(p)));
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

    /// A restart: `code`'s bar starting at `start` is in the capture
    /// already (the stop wrote it): it is not healed.
    pub fn in_capture(&mut self, code: &str, start: u64) {
        let code = self.intern(code);
        let e = self.codes.get_mut(&code).expect("interned");
        e.1 = Some(e.1.map_or(start, |s| s.max(start)));
    }

    /// Bars held now.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The wall clock (ms) by which [`Healer::tick`] next has something
    /// to do, given the feed's clock runs `offset` ms off it.
    pub fn next_due(&self, offset: i64) -> Option<u64> {
        let ms = self.interval.ms() + self.grace;
        self.pending
            .values()
            .filter_map(|p| match (p.to, p.open) {
                (None, _) => Some(p.guess.saturating_add(ms).saturating_add_signed(-offset)),
                (Some(to), None) => Some(
                    self.interval
                        .start(to)
                        .saturating_add(ms)
                        .saturating_add_signed(-offset),
                ),
                (Some(_), Some(_)) => p.deadline,
            })
            .min()
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

#[cfg(test)]
mod tests;
