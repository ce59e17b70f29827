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

mod settle;
mod types;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::{Bar, Interval};
use crate::queue::Gap;
use crate::wire::symbol::Fnv;
pub use types::*;

/// An outage not yet closed.
#[derive(Debug)]
struct Outage {
    connection: Option<Arc<str>>,
    /// None: every code (but those of `except`).
    codes: Option<HashSet<String>>,
    /// A restart's: the codes whose gaps came already.
    except: HashSet<String>,
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
    /// The same codes, to be found by name (a trade's, a bar's).
    named: HashSet<Arc<str>>,
    /// Start on the feed's clock.
    from: u64,
    /// End on the feed's clock, once known.
    to: Option<u64>,
    /// When no trade comes: the end read from the wall clock.
    guess: u64,
    /// A restart's: no guess; without a trade of its codes within the
    /// restart's window, it ends where the clock is then.
    restart: bool,
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
    firsts: HashMap<Arc<str>, u64, BuildHasherDefault<Fnv>>,
    /// Until then (the wall clock, ms) first trades are kept: a restart.
    record_until: u64,
    /// Bars written already (by code and start), not to be written again:
    /// those a capture held on start, and those written while healing.
    done: HashSet<(Arc<str>, u64)>,
    /// Bumped at every change of what [`Healer::kept`] gives.
    generation: u64,
    next_id: u64,
    /// An outage, a gap or a request that held bars ended or narrowed
    /// since [`Healer::release_untouched`] looked: only then can a held
    /// bar be touched no more, and only then are they all looked at.
    loosened: bool,
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
            firsts: HashMap::default(),
            record_until: 0,
            done: HashSet::new(),
            generation: 0,
            loosened: false,
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
        self.generation += 1;
        self.loosened = true;
        self.outages.retain(|o| o.connection != connection);
        self.outages.push(Outage {
            connection,
            codes: codes.map(HashSet::from_iter),
            except: HashSet::new(),
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

    /// Whether a trade read at `now` (the wall clock) is of interest
    /// ([`Healer::trade`]): an outage or a restart is open, or a gap waits
    /// for its end.
    #[inline]
    pub fn watching(&self, now: u64) -> bool {
        !(self.pending.is_empty() && self.outages.is_empty() && now >= self.record_until)
    }

    /// A trade of `code` at `time` was read at `now` (the wall clock): the
    /// first of its code after an outage (or a restart) ends its gap.
    pub fn trade(&mut self, code: &str, time: u64, now: u64) {
        for p in self.pending.values_mut() {
            if p.to.is_none() && p.named.contains(code) {
                p.to = Some(time.max(p.from));
                self.loosened = true;
            }
        }
        if (!self.outages.is_empty() || now < self.record_until) && !self.firsts.contains_key(code)
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
        self.loosened = true;
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
        self.generation += 1;
        let id = self.id();
        let codes: Vec<(Arc<str>, Option<u64>)> = gap
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
                named: codes.iter().map(|c| c.0.clone()).collect(),
                codes,
                from,
                to,
                guess: guess.max(from),
                restart,
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

    /// Whether an open outage or a gap being healed may touch `bar`: a
    /// few lookups, however many codes they have.
    fn touches(&self, bar: &Bar) -> bool {
        let code = &*bar.code;
        let open = self.outages.iter().any(|o| {
            bar.end > o.from
                && match &o.codes {
                    Some(cs) => cs.contains(code),
                    None => !o.except.contains(code),
                }
        });
        open || self.pending.values().any(|p| {
            bar.end > p.from && p.to.is_none_or(|to| bar.start <= to) && p.named.contains(code)
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
            let before = self.outages.len();
            self.outages.retain(|o| o.connection.is_some());
            self.loosened |= self.outages.len() < before;
        }
        let ids: Vec<u64> = self.pending.keys().copied().collect();
        for id in ids {
            let p = self.pending.get_mut(&id).expect("pending");
            if p.to.is_none() {
                if p.restart && now >= self.record_until {
                    p.to = Some(clock.max(p.from));
                    self.loosened = true;
                } else if !p.restart && clock >= p.guess.saturating_add(ms + self.grace) {
                    p.to = Some(p.guess);
                    self.loosened = true;
                }
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

    /// What a `kill -9` must not lose: the outages open and the gaps being
    /// healed.
    pub fn kept(&self) -> Vec<Kept> {
        let outages = (self.outages.iter())
            .filter(|o| o.connection.is_some())
            .map(|o| Kept {
                codes: {
                    let mut cs: Vec<String> = o.codes.iter().flatten().cloned().collect();
                    cs.sort_unstable();
                    cs
                },
                from: o.from,
                to: None,
                gap: None,
            });
        let pending = self.pending.values().map(|p| Kept {
            codes: p.codes.iter().map(|c| c.0.to_string()).collect(),
            from: p.from,
            to: p.to,
            gap: Some(p.gap.clone()),
        });
        outages.chain(pending).collect()
    }

    /// Changes each time [`Healer::kept`] would give something else.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A start after a `kill -9`: what the last run kept is healed again,
    /// but for the bars in `written` (the capture holds them).
    pub fn resume(&mut self, kept: Vec<Kept>, written: &HashSet<(String, u64)>) {
        for (code, start) in written {
            let code = self.intern(code);
            self.done.insert((code, *start));
        }
        for k in kept {
            let gap = k.gap.unwrap_or_else(|| Gap {
                connection: None,
                codes: k.codes.clone(),
                from: k.from,
                to: k.from,
                reason: "an outage still open when the last run ended without its stop".into(),
                dropped: None,
                heal: None,
            });
            let to = k.to;
            self.gap(gap, k.from, k.from, to.is_none());
            if let (Some(to), Some(p)) = (to, self.pending.values_mut().last()) {
                p.to = Some(to);
                self.loosened = true;
            }
        }
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
                (None, _) if p.restart => Some(self.record_until),
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
#[cfg(test)]
mod tests;
