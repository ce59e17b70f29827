//! The simulated K-lines: a deterministic 1-minute walk per code, and
//! every longer bar the exact aggregate of the 1-minute bars it spans, cut
//! on the UTC calendar by [`KlineInterval::utc_start`] and
//! [`KlineInterval::end`]. For a code the market has traded, the intervals
//! starting at or after the first minute of its record of trades come from
//! that record instead (`tape`, chosen per interval by [`Source`]).
//!
//! A walk bar is a pure function of (code, interval, start): nothing is
//! stored and nothing depends on the simulator's seed, so a test computes
//! the walk's bars with [`kline_bars`]. Each UTC day of a code opens at an
//! anchor price (a slow drift of the code's base price, interpolated
//! between knots every 16 days, plus a little noise per day) and follows
//! one of 32 fixed day shapes (1440 minutes of a ±2-step walk, built once),
//! scaled by a step of about 1/4000 of the anchor. So any minute is a table
//! look-up, and a whole day's open, high, low, close, volume and turnover
//! come from the shape's precomputed summary: 500 month bars cost 15,000
//! look-ups, not 21 million minutes.
//!
//! Prices are integers in the code's smallest unit (`….US`, `….SH`,
//! `….SZ` and non-forex bare codes 2 decimals, `….HK` 3, forex pairs 5);
//! volume is whole; turnover is the exact sum of each minute's volume ×
//! close, in the price's unit.

use std::sync::OnceLock;

use super::market::{now_ms, splitmix};
use super::tape::Tape;
use crate::wire::calendar::DAY_MS;
use crate::wire::kline::{KlineInterval, RawKline};
use crate::wire::symbol::{Fnv, Market};

/// A minute in ms.
pub(super) const MINUTE_MS: u64 = 60_000;
const DAY_MINUTES: usize = 1440;
/// Number of day shapes.
const SHAPES: u64 = 32;
/// A shape's close never leaves ±this many steps from the anchor.
const MAX_OFFSET: i32 = 1000;
/// Days between two knots of an anchor's drift.
const KNOT_DAYS: u64 = 16;
/// Currencies whose pairs are forex (5 decimals).
const FIAT: [&str; 20] = [
    "USD", "EUR", "JPY", "GBP", "AUD", "NZD", "CAD", "CHF", "CNH", "CNY", "HKD", "SGD", "SEK",
    "NOK", "DKK", "MXN", "ZAR", "TRY", "PLN", "KRW",
];

/// One minute of a day shape: prices in steps from the day's anchor,
/// volume in lots.
#[derive(Clone, Copy)]
struct ShapeMinute {
    open: i32,
    high: i32,
    low: i32,
    close: i32,
    volume: u32,
}

/// A run of a shape's minutes summed up, still in steps and lots;
/// `volume_close` is Σ volume × close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    open: i32,
    high: i32,
    low: i32,
    close: i32,
    volume: u64,
    volume_close: i64,
}

struct Shape {
    minutes: Vec<ShapeMinute>,
    whole: Span,
}

fn shapes() -> &'static [Shape] {
    static TABLE: OnceLock<Vec<Shape>> = OnceLock::new();
    TABLE.get_or_init(|| (0..SHAPES).map(make_shape).collect())
}

fn make_shape(index: u64) -> Shape {
    let mut minutes = Vec::with_capacity(DAY_MINUTES);
    let mut close = 0i32;
    for m in 0..DAY_MINUTES as u64 {
        let h = splitmix((index << 32) ^ m ^ 0x6b6c_696e_6500_0000);
        let open = close;
        let step = (h % 5) as i32 - 2;
        close = (open + step).clamp(-MAX_OFFSET, MAX_OFFSET);
        minutes.push(ShapeMinute {
            open,
            high: open.max(close) + ((h >> 8) % 3) as i32,
            low: open.min(close) - ((h >> 16) % 3) as i32,
            close,
            volume: 1 + ((h >> 24) % 50) as u32,
        });
    }
    let whole = span(&minutes);
    Shape { minutes, whole }
}

/// The summary of a non-empty run of minutes.
fn span(minutes: &[ShapeMinute]) -> Span {
    let first = minutes[0];
    let mut s = Span {
        open: first.open,
        high: first.high,
        low: first.low,
        close: first.close,
        volume: 0,
        volume_close: 0,
    };
    for m in minutes {
        s.high = s.high.max(m.high);
        s.low = s.low.min(m.low);
        s.close = m.close;
        s.volume += u64::from(m.volume);
        s.volume_close += i64::from(m.volume) * i64::from(m.close);
    }
    s
}

/// A bar in the code's units: prices and turnover in its smallest price
/// unit, volume whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Bar {
    pub(super) open: u64,
    pub(super) high: u64,
    pub(super) low: u64,
    pub(super) close: u64,
    pub(super) volume: u64,
    pub(super) turnover: u128,
}

impl Bar {
    /// This bar followed by `later`, as one.
    pub(super) fn then(self, later: Bar) -> Bar {
        Bar {
            open: self.open,
            high: self.high.max(later.high),
            low: self.low.min(later.low),
            close: later.close,
            volume: self.volume + later.volume,
            turnover: self.turnover + later.turnover,
        }
    }
}

/// What is fixed for a code: its hash, digits, base price and lot.
pub(super) struct Code {
    hash: u64,
    decimals: u32,
    base: i64,
    lot: u64,
}

impl Code {
    pub(super) fn new(code: &str) -> Code {
        let hash = Fnv::hash(code.as_bytes());
        let decimals = decimals(code);
        let h = splitmix(hash);
        let base = if is_forex(code) {
            50_000 + h % 150_000
        } else {
            (2_000 + h % 48_000) * 10u64.pow(decimals - 2)
        };
        let lot = if Market::of_code(code) == Market::Stock {
            100
        } else {
            1
        };
        Code {
            hash,
            decimals,
            base: base as i64,
            lot,
        }
    }

    fn mix(&self, salt: u64, n: u64) -> u64 {
        splitmix(self.hash ^ splitmix((salt << 56) ^ n))
    }

    /// The anchor, step, shape and volume scale of UTC day `day`.
    fn day(&self, day: u64) -> Day {
        let knot = |k: u64| (self.mix(1, k) % 201) as i64 - 100;
        let (k, f) = (day / KNOT_DAYS, (day % KNOT_DAYS) as i64);
        let drift = knot(k) + (knot(k + 1) - knot(k)) * f / KNOT_DAYS as i64;
        let jitter = (self.mix(2, day) % 11) as i64 - 5;
        // At least 0.895 × a base of at least 2000 units: every price of
        // the day stays above anchor − 1002 steps > 0.
        let anchor = self.base + self.base * (drift + jitter) / 1000;
        Day {
            anchor,
            step: (anchor / 4000).max(1),
            shape: &shapes()[(self.mix(3, day) % SHAPES) as usize],
            scale: self.lot * (1 + self.mix(4, day) % 5),
        }
    }

    /// The aggregate of the 1-minute bars in `[from, to)` (ms, whole
    /// minutes); None if empty.
    pub(super) fn aggregate(&self, from: u64, to: u64) -> Option<Bar> {
        let mut out: Option<Bar> = None;
        let mut t = from;
        while t < to {
            let day_start = t - t % DAY_MS;
            let end = to.min(day_start + DAY_MS);
            let day = self.day(day_start / DAY_MS);
            let a = ((t - day_start) / MINUTE_MS) as usize;
            let b = (end - day_start).div_ceil(MINUTE_MS) as usize;
            let s = if a == 0 && b == DAY_MINUTES {
                day.shape.whole
            } else {
                span(&day.shape.minutes[a..b])
            };
            let bar = day.bar(s);
            out = Some(out.map_or(bar, |o| o.then(bar)));
            t = end;
        }
        out
    }

    /// The bar of `interval` starting at `start`, as the server writes it,
    /// over its minutes before `until` (its end for a final bar).
    pub(super) fn raw(&self, interval: KlineInterval, start: u64, until: u64) -> Option<RawKline> {
        let until = until.min(interval.end(start));
        let bar = self.aggregate(start, until)?;
        let d = self.decimals;
        Some(RawKline {
            timestamp: (start / 1000).to_string(),
            open: decimal(u128::from(bar.open), d),
            high: decimal(u128::from(bar.high), d),
            low: decimal(u128::from(bar.low), d),
            close: decimal(u128::from(bar.close), d),
            volume: bar.volume.to_string(),
            turnover: decimal(bar.turnover, d),
        })
    }
}

/// Where a code's bars come from: its record of trades for intervals
/// starting at or after the record's first minute, its deterministic walk
/// before (and for a code without a record).
pub(super) struct Source<'a> {
    walk: Code,
    tape: Option<(&'a Tape, u64)>,
}

impl<'a> Source<'a> {
    pub(super) fn new(code: &str, tape: Option<&'a Tape>) -> Source<'a> {
        Source {
            walk: Code::new(code),
            tape: tape.and_then(|t| Some((t, t.first_minute()?))),
        }
    }

    /// The bar of `interval` starting at `start`, as the server writes it,
    /// over its minutes before `until` (its end for a final bar).
    pub(super) fn raw(&self, interval: KlineInterval, start: u64, until: u64) -> Option<RawKline> {
        match self.tape {
            Some((tape, first)) if start >= first => tape.raw(start, interval.end(start), until),
            _ => self.walk.raw(interval, start, until),
        }
    }
}

/// One UTC day of a code.
struct Day {
    anchor: i64,
    step: i64,
    shape: &'static Shape,
    scale: u64,
}

impl Day {
    /// A span of this day's shape in the code's units.
    fn bar(&self, s: Span) -> Bar {
        let price = |steps: i32| (self.anchor + self.step * i64::from(steps)) as u64;
        let turnover = i128::from(self.scale)
            * (i128::from(self.anchor) * i128::from(s.volume)
                + i128::from(self.step) * i128::from(s.volume_close));
        Bar {
            open: price(s.open),
            high: price(s.high),
            low: price(s.low),
            close: price(s.close),
            volume: self.scale * s.volume,
            turnover: turnover as u128,
        }
    }
}

/// Whether `code` is a pair of two currencies (`EURUSD`).
fn is_forex(code: &str) -> bool {
    code.len() == 6
        && code.is_char_boundary(3)
        && FIAT.contains(&&code[..3])
        && FIAT.contains(&&code[3..])
}

/// The decimals of a code's prices: `….HK` 3, forex pairs 5, others 2.
fn decimals(code: &str) -> u32 {
    match code.rsplit_once('.') {
        Some((_, "HK")) => 3,
        Some((_, "US" | "SH" | "SZ")) => 2,
        _ if is_forex(code) => 5,
        _ => 2,
    }
}

/// `units` with `decimals` digits after the point: `decimal(13642, 2)` is
/// `136.42`.
fn decimal(units: u128, decimals: u32) -> String {
    let scale = 10u128.pow(decimals);
    format!(
        "{}.{:0width$}",
        units / scale,
        units % scale,
        width = decimals as usize
    )
}

impl Source<'_> {
    /// The newest `num` bars whose start is at most `end_ms`, none
    /// starting before `oldest_ms`, oldest first, on a clock that reads
    /// `now_ms`. Final bars only, unless `forming`: then the bar that holds
    /// now (if its start is at most `end_ms`) comes too, over its minutes
    /// so far (the current minute counted whole).
    pub(super) fn latest(
        &self,
        interval: KlineInterval,
        end_ms: u64,
        now_ms: u64,
        oldest_ms: u64,
        num: usize,
        forming: bool,
    ) -> Vec<RawKline> {
        let mut start = interval.utc_start(end_ms.min(now_ms));
        let mut out = Vec::new();
        if interval.end(start) > now_ms {
            let minute_end = KlineInterval::M1.utc_start(now_ms) + MINUTE_MS;
            if forming && start >= oldest_ms && num > 0 {
                out.extend(self.raw(interval, start, minute_end));
            }
            start = previous(interval, start);
        }
        while out.len() < num && start >= oldest_ms && start > 0 {
            out.extend(self.raw(interval, start, u64::MAX));
            start = previous(interval, start);
        }
        out.reverse();
        out
    }
}

/// The start of the bar before the one starting at `start` (0 at the epoch).
fn previous(interval: KlineInterval, start: u64) -> u64 {
    start.checked_sub(1).map_or(0, |t| interval.utc_start(t))
}

/// The simulator's K-lines of `code` and `interval` from its deterministic
/// walk, as its HTTP API sends them for a code it never traded: every bar
/// whose start (ms) lies in `from_start_ms ..= to_start_ms` and whose
/// interval is over on the real clock, oldest first. A pure function of its
/// arguments and the clock (the simulator's seed plays no part);
/// `Simulator::kline_bars` reads the simulator's own clock and the record
/// of a traded code.
pub fn kline_bars(
    code: &str,
    interval: KlineInterval,
    from_start_ms: u64,
    to_start_ms: u64,
) -> Vec<RawKline> {
    bars_between(code, interval, from_start_ms, to_start_ms, now_ms(), None)
}

/// [`kline_bars`] on a clock that reads `now_ms`, from `tape` where it
/// applies ([`Source`]).
pub(super) fn bars_between(
    code: &str,
    interval: KlineInterval,
    from: u64,
    to: u64,
    now_ms: u64,
    tape: Option<&Tape>,
) -> Vec<RawKline> {
    let c = Source::new(code, tape);
    let mut start = interval.utc_start(from);
    if start < from {
        start = interval.end(start);
    }
    let mut out = Vec::new();
    while start <= to && interval.end(start) <= now_ms {
        out.extend(c.raw(interval, start, u64::MAX));
        start = interval.end(start);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::calendar::days_from_civil;

    /// 2026-03-02T00:00:00Z (a Monday).
    const MONDAY: u64 = 1_772_409_600_000;

    /// The walk's newest bars of `code` ([`Source::latest`]).
    fn latest(
        code: &str,
        interval: KlineInterval,
        end_ms: u64,
        now_ms: u64,
        oldest_ms: u64,
        num: usize,
        forming: bool,
    ) -> Vec<RawKline> {
        Source::new(code, None).latest(interval, end_ms, now_ms, oldest_ms, num, forming)
    }

    /// The aggregate of `bar`'s 1-minute bars, one minute at a time.
    fn by_minutes(c: &Code, from: u64, to: u64) -> Bar {
        (from / MINUTE_MS..to / MINUTE_MS)
            .map(|m| c.aggregate(m * MINUTE_MS, (m + 1) * MINUTE_MS).unwrap())
            .reduce(Bar::then)
            .unwrap()
    }

    #[test]
    fn every_bar_is_the_exact_aggregate_of_its_minutes() {
        let c = Code::new("AAPL.US");
        let t = MONDAY + 13 * 3_600_000;
        for iv in [
            KlineInterval::M5,
            KlineInterval::H1,
            KlineInterval::H4,
            KlineInterval::D1,
            KlineInterval::W1,
        ] {
            let start = iv.utc_start(t);
            let end = iv.end(start);
            assert_eq!(c.aggregate(start, end), Some(by_minutes(&c, start, end)));
        }
        // A minute's turnover is its volume × close.
        let m = c.aggregate(t, t + MINUTE_MS).unwrap();
        assert_eq!(m.turnover, u128::from(m.volume) * u128::from(m.close));
        assert!(m.low <= m.open.min(m.close) && m.high >= m.open.max(m.close));
    }

    #[test]
    fn months_are_cut_by_the_calendar_and_are_their_days() {
        let c = Code::new("EURUSD");
        let feb = days_from_civil(2024, 2, 1) as u64 * DAY_MS;
        let mar = days_from_civil(2024, 3, 1) as u64 * DAY_MS;
        let m = KlineInterval::Mo1;
        assert_eq!(m.utc_start(feb + 10 * DAY_MS), feb);
        assert_eq!(m.end(feb), mar);
        let days = (0..29)
            .map(|d| {
                let s = feb + d * DAY_MS;
                c.aggregate(s, s + DAY_MS).unwrap()
            })
            .reduce(Bar::then);
        assert_eq!(c.aggregate(feb, mar), days);
        let apr = days_from_civil(2024, 4, 1) as u64 * DAY_MS;
        let bars = bars_between("EURUSD", m, feb, mar, apr, None);
        assert_eq!(bars.len(), 2, "February and March: {bars:?}");
        assert_eq!(bars[1].timestamp, (mar / 1000).to_string());
        // Final bars only: on these clocks March, then February, is not over.
        assert_eq!(bars_between("EURUSD", m, feb, mar, apr - 1, None).len(), 1);
        assert!(bars_between("EURUSD", m, feb, mar, mar - 1, None).is_empty());
    }

    #[test]
    fn bars_are_deterministic_and_written_with_the_codes_digits() {
        let day = KlineInterval::D1;
        let a = bars_between("700.HK", day, MONDAY, MONDAY + 6 * DAY_MS, u64::MAX, None);
        assert_eq!(a.len(), 7);
        assert_eq!(
            a,
            bars_between("700.HK", day, MONDAY, MONDAY + 6 * DAY_MS, u64::MAX, None)
        );
        assert_ne!(
            a,
            bars_between("9988.HK", day, MONDAY, MONDAY + 6 * DAY_MS, u64::MAX, None)
        );
        let digits = |s: &str| s.split_once('.').map_or(0, |(_, f)| f.len());
        for (code, d) in [
            ("700.HK", 3),
            ("AAPL.US", 2),
            ("600519.SH", 2),
            ("EURUSD", 5),
            ("XAUUSD", 2),
            ("BTCUSDT", 2),
        ] {
            let b = &bars_between(code, KlineInterval::M1, MONDAY, MONDAY, u64::MAX, None)[0];
            for p in [&b.open, &b.high, &b.low, &b.close, &b.turnover] {
                assert_eq!(digits(p), d, "{code}: {b:?}");
                assert!(p.parse::<f64>().unwrap() > 0.0, "{code}: {b:?}");
            }
            assert!(b.volume.parse::<u64>().is_ok(), "{code}: {b:?}");
        }
        assert_eq!(decimal(5, 3), "0.005");
        assert_eq!(decimal(123_456, 2), "1234.56");
    }

    #[test]
    fn latest_counts_back_from_the_end_and_stops_at_the_oldest() {
        let now = MONDAY + 10 * 3_600_000 + 30_000;
        let iv = KlineInterval::H1;
        let bars = latest("EURUSD", iv, now, now, 0, 3, false);
        let starts: Vec<u64> = bars.iter().map(|b| b.timestamp.parse().unwrap()).collect();
        let h = 3600;
        let ten = (MONDAY + 10 * 3_600_000) / 1000;
        assert_eq!(starts, vec![ten - 3 * h, ten - 2 * h, ten - h]);
        let forming = latest("EURUSD", iv, now, now, 0, 3, true);
        assert_eq!(forming[..2], bars[1..]);
        assert_eq!(forming[2].timestamp, ten.to_string());
        // The end is inclusive: a bar starting at it is answered.
        let at = latest("EURUSD", iv, (ten - h) * 1000, now, 0, 1, false);
        assert_eq!(at[0].timestamp, (ten - h).to_string());
        let oldest = (ten - 2 * h) * 1000;
        assert_eq!(latest("EURUSD", iv, now, now, oldest, 500, false).len(), 2);
        assert!(latest("EURUSD", iv, oldest - 1, now, oldest, 5, false).is_empty());
        // 500 month bars, from 1985 on: quick.
        let months = latest("AAPL.US", KlineInterval::Mo1, now, now, 0, 500, false);
        assert_eq!(months.len(), 500);
    }
}
