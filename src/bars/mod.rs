//! Trades into OHLCV bars, without I/O and without a float.
//!
//! A trade belongs to the bar of its own time ([`Interval::start`]); a bar
//! is keyed by its code and start. Its open is the trade with the earliest
//! time (ties: the first received), its close the one with the latest
//! (ties: the last received), so trades reordered within a bar make the
//! same bar; its high and low are by exact value (ties keep the first
//! received). Open, high, low and close keep the trades' own digits;
//! volume and turnover are exact sums ([`exact::Sum`]), absent when no
//! trade carried one, while the count of trades counts every trade.
//!
//! [`Bars`] holds the open bars of one interval and closes them by a clock
//! the caller reads: an interval is closed once the clock passes its end
//! by the grace, and every trade in a closed interval is refused as late,
//! whether or not its code had a bar there; so bars are handed out in
//! order of their end, per code and across codes. Closed bars are handed
//! out and freed, so what is held is bounded by the bars open.

pub mod exact;
pub mod heal;
pub mod interval;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use crate::wire::symbol::Fnv;
use crate::wire::text::{push_json_str, push_u64};
use exact::{Num, Places, Sum};
pub use interval::Interval;

/// A trade as the aggregator needs it (all numbers as the JSON number text
/// of the trade line).
#[derive(Clone, Copy, Debug)]
pub struct Trade<'a> {
    /// The label written on lines, e.g. `NASDAQ:AAPL`.
    pub symbol: &'a str,
    /// The AllTick code, e.g. `AAPL.US`.
    pub code: &'a str,
    /// Milliseconds since the epoch.
    pub time: u64,
    /// The price's number text, e.g. `651.10`.
    pub price: &'a [u8],
    /// The volume's number text, when the trade carries one.
    pub volume: Option<&'a [u8]>,
    /// The turnover's number text, when the trade carries one.
    pub turnover: Option<&'a [u8]>,
}

/// Why a trade was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its interval was already closed: the clock passed its end plus the
    /// grace (whether or not its code had a bar there).
    Late,
    /// Its price, volume or turnover is not a number (the tool's own lines
    /// never have one that is not).
    Bad,
    /// Its code's memory says it was counted already ([`Bars::add_new`]).
    Repeat,
}

/// A finished bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    /// The label of the bar's first trade.
    pub symbol: Arc<str>,
    /// The AllTick code.
    pub code: Arc<str>,
    /// The bar's length.
    pub interval: Interval,
    /// Start, ms since the epoch.
    pub start: u64,
    /// End, ms since the epoch, exclusive: `start + interval.ms()`.
    pub end: u64,
    /// The price of the earliest trade, its digits as received.
    pub open: Box<[u8]>,
    /// The highest price, its digits as received.
    pub high: Box<[u8]>,
    /// The lowest price, its digits as received.
    pub low: Box<[u8]>,
    /// The price of the latest trade, its digits as received.
    pub close: Box<[u8]>,
    /// The exact sum of the volumes, None when no trade carried one.
    pub volume: Option<Sum>,
    /// The exact sum of the turnovers, None when no trade carried one.
    pub turnover: Option<Sum>,
    /// Every trade of the bar, whether it carried a volume or not.
    pub trades: u64,
}

impl Bar {
    /// Append the full JSON line with its newline:
    /// `{"type":"bar","symbol":"NASDAQ:AAPL","code":"AAPL.US","interval":"1m",
    /// "start":1796166540000,"end":1796166600000,"open":651.10,"high":…,
    /// "low":…,"close":…,"volume":…|null,"turnover":…|null,"trades":42}`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"type\":\"bar\",\"symbol\":");
        push_json_str(out, &self.symbol);
        out.extend_from_slice(b",\"code\":");
        push_json_str(out, &self.code);
        out.extend_from_slice(b",\"interval\":\"");
        out.extend_from_slice(self.interval.name().as_bytes());
        out.extend_from_slice(b"\",\"start\":");
        push_u64(out, self.start);
        out.extend_from_slice(b",\"end\":");
        push_u64(out, self.end);
        for (key, digits) in [
            (&b",\"open\":"[..], &self.open),
            (b",\"high\":", &self.high),
            (b",\"low\":", &self.low),
            (b",\"close\":", &self.close),
        ] {
            out.extend_from_slice(key);
            out.extend_from_slice(digits);
        }
        for (key, sum) in [
            (&b",\"volume\":"[..], &self.volume),
            (b",\"turnover\":", &self.turnover),
        ] {
            out.extend_from_slice(key);
            match sum {
                Some(sum) => sum.write(out),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b",\"trades\":");
        push_u64(out, self.trades);
        out.extend_from_slice(b"}\n");
    }
}

/// Number text, inline when short (as prices are): a bar's close changes
/// with nearly every trade and then costs no allocation.
#[derive(Clone, Debug)]
enum Digits {
    Inline { len: u8, buf: [u8; Digits::INLINE] },
    Heap(Vec<u8>),
}

impl Digits {
    const INLINE: usize = 30;

    fn new(text: &[u8]) -> Digits {
        let mut d = Digits::Inline {
            len: 0,
            buf: [0; Digits::INLINE],
        };
        d.set(text);
        d
    }

    fn set(&mut self, text: &[u8]) {
        match self {
            Digits::Heap(v) if text.len() > Digits::INLINE => {
                v.clear();
                v.extend_from_slice(text);
            }
            Digits::Inline { len, buf } if text.len() <= Digits::INLINE => {
                buf[..text.len()].copy_from_slice(text);
                *len = text.len() as u8;
            }
            _ if text.len() > Digits::INLINE => *self = Digits::Heap(text.to_vec()),
            _ => *self = Digits::new(text),
        }
    }

    fn get(&self) -> &[u8] {
        match self {
            Digits::Inline { len, buf } => &buf[..usize::from(*len)],
            Digits::Heap(v) => v,
        }
    }
}

/// A bar still open.
#[derive(Debug)]
struct Open {
    start: u64,
    symbol: Arc<str>,
    /// The times of the trades `open` and `close` are from.
    first: u64,
    last: u64,
    open: Digits,
    high: Digits,
    low: Digits,
    close: Digits,
    /// Where the parts of `high` and `low` lie (`None`: not a number, so
    /// the next price takes its place).
    high_at: Option<Places>,
    low_at: Option<Places>,
    volume: Option<Sum>,
    turnover: Option<Sum>,
    trades: u64,
}

impl Open {
    fn finish(self, code: Arc<str>, interval: Interval) -> Bar {
        Bar {
            symbol: self.symbol,
            code,
            interval,
            start: self.start,
            end: self.start.saturating_add(interval.ms()),
            open: self.open.get().into(),
            high: self.high.get().into(),
            low: self.low.get().into(),
            close: self.close.get().into(),
            volume: self.volume,
            turnover: self.turnover,
            trades: self.trades,
        }
    }
}

/// What is kept of a code: its open bars (usually one or two), the label
/// of its latest bar (shared by its bars while it does not change), and
/// what the caller keeps of it ([`Bars::add_new`]).
#[derive(Debug)]
struct Entry<M> {
    code: Arc<str>,
    symbol: Arc<str>,
    bars: Vec<Open>,
    memo: M,
}

/// A trade's numbers, read.
struct Read<'a, 't> {
    trade: &'t Trade<'a>,
    start: u64,
    price: Num<'a>,
    volume: Option<Num<'a>>,
    turnover: Option<Num<'a>>,
}

/// The open bars' codes by bar start, and their count.
#[derive(Debug, Default)]
struct Index {
    by_start: BTreeMap<u64, Vec<Arc<str>>>,
    open: usize,
}

/// Open bars of one interval, closed by a clock; with `M`, what the
/// caller keeps per code, in the same table ([`Bars::add_new`]).
#[derive(Debug)]
pub struct Bars<M = ()> {
    interval: Interval,
    grace: u64,
    codes: HashMap<Arc<str>, Entry<M>, BuildHasherDefault<Fnv>>,
    index: Index,
    /// Every interval before this time is closed: aligned, never lower.
    closed: u64,
    /// The clock reading from which `close_due` has something to do: the
    /// end of the first interval not closed, plus the grace.
    due_at: u64,
}

/// The number `text` holds, when a sum takes it; Err when it holds none.
fn summable(text: Option<&[u8]>) -> Result<Option<Num<'_>>, Refused> {
    match text {
        None => Ok(None),
        Some(t) => match exact::parse(t) {
            Some(n) if Sum::takes(&n) => Ok(Some(n)),
            _ => Err(Refused::Bad),
        },
    }
}

// The tests' ways in: the writer and replay go through `with_memo` and
// `add_new` with their clock.
#[cfg(test)]
impl Bars {
    /// No bar open, nothing closed; an interval closes once the clock
    /// passes its end by `grace_ms`.
    pub fn new(interval: Interval, grace_ms: u64) -> Bars {
        Bars::with_memo(interval, grace_ms)
    }
}

impl<M: Default> Bars<M> {
    /// No bar open, nothing closed, keeping an `M` per code for
    /// [`Bars::add_new`]; an interval closes once the clock passes its end
    /// by `grace_ms`.
    pub fn with_memo(interval: Interval, grace_ms: u64) -> Bars<M> {
        let mut bars = Bars {
            interval,
            grace: grace_ms,
            codes: HashMap::default(),
            index: Index::default(),
            closed: 0,
            due_at: 0,
        };
        bars.set_closed(0);
        bars
    }

    /// Fold a trade into the bar of its own `time`. Late when that bar's
    /// interval is already closed, by the latest clock reading given
    /// ([`Bars::add_at`], [`Bars::close_due`]).
    #[cfg(test)]
    pub fn add(&mut self, t: &Trade) -> Result<(), Refused> {
        self.add_new(t, 0, |_| true)
    }

    /// [`Bars::add`] when the clock (ms) reads `clock`: every interval
    /// whose end + grace <= `clock` is closed first, so a trade in one is
    /// late whether or not its code had a bar there. The bars open in such
    /// an interval take no more trades; [`Bars::close_due`] hands them out
    /// ([`Bars::next_due`] says they are due).
    #[cfg(test)]
    pub fn add_at(&mut self, t: &Trade, clock: u64) -> Result<(), Refused> {
        self.add_new(t, clock, |_| true)
    }

    /// Fold a trade into the bar of its own `time` when the clock (ms)
    /// reads `clock` (every interval whose end + grace <= `clock` is closed
    /// first, so a trade in one is late whether or not its code had a bar
    /// there), first asking `new` whether the trade is new to its code, with what is kept of the code (`M`): a `Repeat` when not. One
    /// lookup of the code serves both.
    pub fn add_new(
        &mut self,
        t: &Trade,
        clock: u64,
        new: impl FnOnce(&mut M) -> bool,
    ) -> Result<(), Refused> {
        self.pass(clock);
        let entry = match self.codes.get_mut(t.code) {
            Some(e) => e,
            None => {
                let code: Arc<str> = t.code.into();
                self.codes.entry(code.clone()).or_insert(Entry {
                    code,
                    symbol: t.symbol.into(),
                    bars: Vec::new(),
                    memo: M::default(),
                })
            }
        };
        if !new(&mut entry.memo) {
            return Err(Refused::Repeat);
        }
        if t.time < self.closed {
            return Err(Refused::Late);
        }
        let read = Read {
            trade: t,
            start: self.interval.start(t.time),
            price: exact::parse(t.price).ok_or(Refused::Bad)?,
            volume: summable(t.volume)?,
            turnover: summable(t.turnover)?,
        };
        fold(entry, &mut self.index, &read)
    }

    /// The clock (ms) reads `clock`: close every interval whose end +
    /// grace <= `clock`, handing each open bar of a closed interval (these
    /// and any closed by [`Bars::add_new`]) to `out` in order of (start,
    /// code), and remember that those intervals are closed (a later trade
    /// in them is late, even for a code that had no bar there). The closed
    /// boundary never moves backwards.
    pub fn close_due(&mut self, clock: u64, out: &mut dyn FnMut(Bar)) {
        self.pass(clock);
        self.hand_out(out);
    }

    /// Hand every open bar to `out`, in order of (start, code) (end of
    /// input, or a stop). Afterwards every interval up to the latest bar's
    /// end is closed.
    pub fn close_all(&mut self, out: &mut dyn FnMut(Bar)) {
        if let Some((&last, _)) = self.index.by_start.last_key_value() {
            self.close_before(last.saturating_add(self.interval.ms()), out);
        }
    }

    /// The label of `code`'s first trade, if it had one.
    pub fn symbol(&self, code: &str) -> Option<Arc<str>> {
        self.codes.get(code).map(|e| e.symbol.clone())
    }

    /// The clock reading (ms) at which [`Bars::close_due`] next has a bar
    /// to hand out (the earliest open bar's end + grace), None when no bar
    /// is open.
    pub fn next_due(&self) -> Option<u64> {
        let (&start, _) = self.index.by_start.first_key_value()?;
        Some(
            start
                .saturating_add(self.interval.ms())
                .saturating_add(self.grace),
        )
    }

    /// Open `bar` again, as written at a stop, to take the interval's
    /// later trades: its open and high/low stand, a later trade becomes
    /// its close. False (and nothing done) when it is of another interval,
    /// its interval is closed, or its code has that bar open already.
    pub fn reopen(&mut self, bar: Bar) -> bool {
        if bar.interval != self.interval || bar.start < self.closed {
            return false;
        }
        let entry = self.codes.entry(bar.code.clone()).or_insert_with(|| Entry {
            code: bar.code.clone(),
            symbol: bar.symbol.clone(),
            bars: Vec::new(),
            memo: M::default(),
        });
        if entry.bars.iter().any(|b| b.start == bar.start) {
            return false;
        }
        entry.symbol = bar.symbol.clone();
        entry.bars.push(Open {
            start: bar.start,
            symbol: bar.symbol,
            // Every later trade is at or after the start: the written open
            // keeps its place (the first received of its time) and the
            // latest such trade becomes the close.
            first: bar.start,
            last: bar.start,
            open: Digits::new(&bar.open),
            high: Digits::new(&bar.high),
            low: Digits::new(&bar.low),
            close: Digits::new(&bar.close),
            high_at: exact::parse(&bar.high).map(|n| n.places()),
            low_at: exact::parse(&bar.low).map(|n| n.places()),
            volume: bar.volume,
            turnover: bar.turnover,
            trades: bar.trades,
        });
        self.index
            .by_start
            .entry(bar.start)
            .or_default()
            .push(bar.code);
        self.index.open += 1;
        true
    }

    /// Bars open now.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.index.open
    }

    /// The clock reads `clock`: close every interval whose end + grace <=
    /// `clock` (its bars are handed out by [`Bars::hand_out`]).
    fn pass(&mut self, clock: u64) {
        if clock >= self.due_at {
            // `due_at` >= grace, so this does not wrap.
            self.set_closed(self.interval.start(clock - self.grace));
        }
    }

    /// Move the closed boundary to `boundary` (never back).
    fn set_closed(&mut self, boundary: u64) {
        self.closed = self.closed.max(boundary);
        self.due_at = self
            .closed
            .saturating_add(self.interval.ms())
            .saturating_add(self.grace);
    }

    /// Close every interval before `boundary` and hand out its bars.
    fn close_before(&mut self, boundary: u64, out: &mut dyn FnMut(Bar)) {
        self.set_closed(boundary);
        self.hand_out(out);
    }

    /// Hand out the open bars of the closed intervals, in order of (start,
    /// code).
    fn hand_out(&mut self, out: &mut dyn FnMut(Bar)) {
        while let Some(first) = self.index.by_start.first_entry() {
            if *first.key() >= self.closed {
                break;
            }
            let (start, mut codes) = first.remove_entry();
            codes.sort_unstable();
            for code in codes {
                let Some(entry) = self.codes.get_mut(&*code) else {
                    continue;
                };
                let Some(i) = entry.bars.iter().position(|b| b.start == start) else {
                    continue;
                };
                let bar = entry.bars.swap_remove(i);
                if entry.bars.capacity() > 8 && entry.bars.len() <= 2 {
                    entry.bars.shrink_to(2);
                }
                self.index.open -= 1;
                out(bar.finish(code, self.interval));
            }
        }
    }
}

/// Fold a read trade into its code's bar, opening it when it is the first.
fn fold<M>(entry: &mut Entry<M>, index: &mut Index, r: &Read) -> Result<(), Refused> {
    let t = r.trade;
    let Some(bar) = entry.bars.iter_mut().find(|b| b.start == r.start) else {
        if *entry.symbol != *t.symbol {
            entry.symbol = t.symbol.into();
        }
        let sum = |n: &Option<Num>| {
            n.as_ref().map(|n| {
                let mut s = Sum::default();
                s.add_num(n);
                s
            })
        };
        let price = Digits::new(t.price);
        entry.bars.push(Open {
            start: r.start,
            symbol: entry.symbol.clone(),
            first: t.time,
            last: t.time,
            open: price.clone(),
            high: price.clone(),
            low: price.clone(),
            close: price,
            high_at: Some(r.price.places()),
            low_at: Some(r.price.places()),
            volume: sum(&r.volume),
            turnover: sum(&r.turnover),
            trades: 1,
        });
        index
            .by_start
            .entry(r.start)
            .or_default()
            .push(entry.code.clone());
        index.open += 1;
        return Ok(());
    };
    bar.trades += 1;
    if t.time < bar.first {
        bar.first = t.time;
        bar.open.set(t.price);
    }
    if t.time >= bar.last {
        bar.last = t.time;
        bar.close.set(t.price);
    }
    let beyond = |d: &Digits, at: Option<Places>, way: Ordering| {
        at.and_then(|p| p.num(d.get()))
            .is_none_or(|n| r.price.cmp_value(&n) == way)
    };
    if beyond(&bar.high, bar.high_at, Ordering::Greater) {
        bar.high.set(t.price);
        bar.high_at = Some(r.price.places());
    } else if beyond(&bar.low, bar.low_at, Ordering::Less) {
        bar.low.set(t.price);
        bar.low_at = Some(r.price.places());
    }
    for (sum, n) in [
        (&mut bar.volume, &r.volume),
        (&mut bar.turnover, &r.turnover),
    ] {
        if let Some(n) = n {
            sum.get_or_insert_default().add_num(n);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
