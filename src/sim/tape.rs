//! The market's record of its own trades (its tape), kept per code as one
//! aggregate per UTC minute, and the trades it makes while nobody receives.
//!
//! Every trade the random walk makes is recorded once with its own time
//! (the simulator's clock, ms), price (cents), volume and turnover (cents
//! × volume): pushed trades when they are pushed, and unseen ones when the
//! market catches up. A minute keeps open (its earliest trade), high, low,
//! close (its latest trade), the volume and turnover summed, and the times
//! of its first and last trade. Only the last [`KEEP_MS`] of minutes
//! before a code's latest trade are kept, so memory stays bounded.
//!
//! The market goes on when nobody receives: before a code trades at time
//! `t` (a push, a K-line request for the code, or a test's look at its
//! record), if its latest recorded trade was at `p` with `t − p` over
//! [`UNSEEN_EVERY_MS`], it first makes and records a trade every
//! [`UNSEEN_EVERY_MS`] over `(p, t)`, each one step of the same walk, and
//! pushes none of them. A gap over [`MAX_UNSEEN_MS`], or a clock moved
//! back by more than [`UNSEEN_EVERY_MS`], starts the code's record over
//! instead. Codes never traded have no record and make no unseen trades.
//!
//! The K-line API answers from the record every interval that starts at or
//! after the record's first minute (`kline`'s `Source`): the aggregate of
//! the minutes it spans, prices and turnover written as the trades' cents
//! (`651.10`), volume as the whole sum. An interval without a trade has no
//! bar.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

#[cfg(feature = "testing")]
use super::Simulator;
use super::kline::{Bar, MINUTE_MS};
use super::market::{step, trade_volume};
use super::server::Inner;
use crate::wire::calendar::DAY_MS;
#[cfg(feature = "testing")]
use crate::wire::kline::KlineInterval;
use crate::wire::kline::RawKline;

/// How far back a code's record reaches from its latest trade: 7 days.
pub(super) const KEEP_MS: u64 = 7 * DAY_MS;
/// The spacing of unseen trades, and the longest gap between two trades
/// that makes none.
pub(super) const UNSEEN_EVERY_MS: u64 = 1000;
/// The longest gap filled with unseen trades (6 hours); a longer one
/// starts the record over.
pub(super) const MAX_UNSEEN_MS: u64 = 6 * 3_600_000;

/// The trades of one minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Minute {
    /// Prices and turnover in cents.
    bar: Bar,
    first_ms: u64,
    last_ms: u64,
}

/// A code's record of trades: minute start (ms) → its trades.
#[derive(Debug, Default)]
pub(super) struct Tape {
    minutes: BTreeMap<u64, Minute>,
    /// The time of the latest trade recorded.
    last_ms: Option<u64>,
}

impl Tape {
    /// Record one trade at `time_ms` of `volume` at `cents`.
    pub(super) fn record(&mut self, time_ms: u64, cents: u64, volume: u64) {
        let trade = Bar {
            open: cents,
            high: cents,
            low: cents,
            close: cents,
            volume,
            turnover: u128::from(cents.saturating_mul(volume)),
        };
        match self.minutes.entry(time_ms - time_ms % MINUTE_MS) {
            Entry::Vacant(e) => {
                e.insert(Minute {
                    bar: trade,
                    first_ms: time_ms,
                    last_ms: time_ms,
                });
            }
            Entry::Occupied(mut e) => {
                let m = e.get_mut();
                let mut bar = m.bar.then(trade);
                if time_ms < m.first_ms {
                    bar.open = cents;
                    m.first_ms = time_ms;
                }
                if time_ms < m.last_ms {
                    bar.close = m.bar.close;
                } else {
                    m.last_ms = time_ms;
                }
                m.bar = bar;
            }
        }
        let last = self.last_ms.map_or(time_ms, |l| l.max(time_ms));
        self.last_ms = Some(last);
        let cutoff = (last - last % MINUTE_MS).saturating_sub(KEEP_MS);
        while self
            .minutes
            .first_key_value()
            .is_some_and(|(k, _)| *k < cutoff)
        {
            self.minutes.pop_first();
        }
    }

    /// The time of the latest trade recorded.
    pub(super) fn last_ms(&self) -> Option<u64> {
        self.last_ms
    }

    /// The start of the record's first minute (None: nothing recorded).
    pub(super) fn first_minute(&self) -> Option<u64> {
        self.minutes.keys().next().copied()
    }

    /// The aggregate of the minutes in `[from, to)`, in cents; None if no
    /// trade.
    fn aggregate(&self, from: u64, to: u64) -> Option<Bar> {
        if from >= to {
            return None;
        }
        self.minutes
            .range(from..to)
            .map(|(_, m)| m.bar)
            .reduce(Bar::then)
    }

    /// The bar of the interval `[start, end)` as the server writes it, over
    /// its minutes before `until`; None if no trade.
    pub(super) fn raw(&self, start: u64, end: u64, until: u64) -> Option<RawKline> {
        let bar = self.aggregate(start, end.min(until))?;
        Some(RawKline {
            timestamp: (start / 1000).to_string(),
            open: cents_text(u128::from(bar.open)),
            high: cents_text(u128::from(bar.high)),
            low: cents_text(u128::from(bar.low)),
            close: cents_text(u128::from(bar.close)),
            volume: bar.volume.to_string(),
            turnover: cents_text(bar.turnover),
        })
    }
}

/// `cents` written with two decimals, as the trades' prices are.
fn cents_text(cents: u128) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

impl Inner {
    /// The record of `code`'s trades (None: never traded).
    pub(super) fn tape(&self, code: &str) -> Option<&Tape> {
        self.market.get(code).map(|m| &m.tape)
    }

    /// Record a trade of `code` just made at `time_ms`.
    pub(super) fn record_trade(&mut self, code: &str, time_ms: u64, cents: u64, volume: u64) {
        if let Some(market) = self.market.get_mut(code) {
            market.tape.record(time_ms, cents, volume);
        }
    }

    /// Let `code`'s market go on up to `t`: the unseen trades since its
    /// latest recorded one (see the module's doc), or a fresh record after
    /// a gap too long or a clock moved back.
    pub(super) fn catch_up(&mut self, code: &str, t: u64) {
        let Some(market) = self.market.get_mut(code) else {
            return;
        };
        let Some(p) = market.tape.last_ms() else {
            return;
        };
        if t.saturating_add(UNSEEN_EVERY_MS) < p || t.saturating_sub(p) > MAX_UNSEEN_MS {
            market.tape = Tape::default();
            return;
        }
        let mut at = p.saturating_add(UNSEEN_EVERY_MS);
        while at < t {
            market.cents = step(market.cents, &mut self.rng);
            let volume = trade_volume(&mut self.rng);
            market.tape.record(at, market.cents, volume);
            self.unseen_trades += 1;
            at += UNSEEN_EVERY_MS;
        }
    }
}

#[cfg(feature = "testing")]
impl Simulator {
    /// The final K-lines of `code` and `interval` that come from its
    /// record of trades (the market caught up to now first), starting
    /// within `from_start_ms ..= to_start_ms`, oldest first: exactly the
    /// bars the HTTP API answers for them. Empty for a code never traded;
    /// intervals starting before the record's first minute
    /// ([`Simulator::recorded_since_ms`]) or without a trade are left out.
    pub fn recorded_klines(
        &self,
        code: &str,
        interval: KlineInterval,
        from_start_ms: u64,
        to_start_ms: u64,
    ) -> Vec<RawKline> {
        let mut inner = self.shared.lock_inner();
        let now = inner.now_ms();
        inner.catch_up(code, now);
        let Some(tape) = inner.tape(code) else {
            return Vec::new();
        };
        let Some(first) = tape.first_minute() else {
            return Vec::new();
        };
        super::kline::bars_between(
            code,
            interval,
            from_start_ms.max(first),
            to_start_ms,
            now,
            Some(tape),
        )
    }

    /// The start (ms) of the first minute of `code`'s record of trades
    /// (the market caught up to now first): K-lines of intervals starting
    /// at or after it come from the record. None: no record (never traded,
    /// or started over and not traded since).
    pub fn recorded_since_ms(&self, code: &str) -> Option<u64> {
        let mut inner = self.shared.lock_inner();
        let now = inner.now_ms();
        inner.catch_up(code, now);
        inner.tape(code)?.first_minute()
    }

    /// How many unseen trades the market has made, over all codes (each
    /// recorded, none pushed).
    pub fn unseen_trades(&self) -> u64 {
        self.shared.lock_inner().unseen_trades
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::sim::SimConfig;
    use crate::sim::kline::bars_between;
    use crate::sim::server::Shared;
    use crate::wire::kline::KlineInterval;
    use crate::wire::protocol::FeedKind;

    /// 2025-01-01T00:00:00Z.
    const T0: u64 = 1_735_689_600_000;
    const M1: KlineInterval = KlineInterval::M1;

    /// A trade as pushed: time (ms), price, volume and turnover in cents.
    struct Trade {
        time_ms: u64,
        price: u64,
        volume: u64,
        turnover: u64,
    }

    fn cents(text: &str) -> u64 {
        let (whole, frac) = text.split_once('.').unwrap();
        assert_eq!(frac.len(), 2, "{text}");
        whole.parse::<u64>().unwrap() * 100 + frac.parse::<u64>().unwrap()
    }

    /// Push a trade of `code` at `time_ms` through the simulator's own
    /// push path, and read the pushed text back.
    fn push(inner: &mut Inner, code: &str, time_ms: u64) -> Trade {
        let text = inner.push_at(time_ms, 1, FeedKind::Trades, code, 0);
        let v: Value = serde_json::from_str(&text).unwrap();
        let d = &v["data"];
        let s = |k: &str| d[k].as_str().unwrap().to_owned();
        Trade {
            time_ms: d["tick_time"].as_u64().unwrap(),
            price: cents(&s("price")),
            volume: s("volume").parse().unwrap(),
            turnover: cents(&s("turnover")),
        }
    }

    /// The bar of `trades` (in time order) as the K-line API writes it.
    fn bar_of(start: u64, trades: &[&Trade]) -> RawKline {
        RawKline {
            timestamp: (start / 1000).to_string(),
            open: cents_text(trades[0].price.into()),
            high: cents_text(trades.iter().map(|t| t.price).max().unwrap().into()),
            low: cents_text(trades.iter().map(|t| t.price).min().unwrap().into()),
            close: cents_text(trades[trades.len() - 1].price.into()),
            volume: trades.iter().map(|t| t.volume).sum::<u64>().to_string(),
            turnover: cents_text(trades.iter().map(|t| u128::from(t.turnover)).sum()),
        }
    }

    /// The bars of `interval` of `trades`, every interval with a trade.
    fn bars_of(interval: KlineInterval, trades: &[Trade]) -> Vec<RawKline> {
        let mut out: Vec<(u64, Vec<&Trade>)> = Vec::new();
        for t in trades {
            let start = interval.utc_start(t.time_ms);
            match out.last_mut() {
                Some((s, list)) if *s == start => list.push(t),
                _ => out.push((start, vec![t])),
            }
        }
        out.iter().map(|(s, list)| bar_of(*s, list)).collect()
    }

    fn shared() -> Shared {
        Shared::new(SimConfig::default(), None).unwrap()
    }

    #[test]
    fn klines_are_the_aggregate_of_the_trades_pushed() {
        let shared = shared();
        let mut inner = shared.lock_inner();
        let mut trades = Vec::new();
        // 5 minutes of AAPL.US at 4 a second, EURUSD pushed in between.
        for i in 0..1200 {
            trades.push(push(&mut inner, "AAPL.US", T0 + 7 + i * 250));
            push(&mut inner, "EURUSD", T0 + 100 + i * 250);
        }
        assert_eq!(inner.unseen_trades, 0);
        let tape = inner.tape("AAPL.US");
        let got = bars_between("AAPL.US", M1, T0, T0 + 4 * MINUTE_MS, u64::MAX, tape);
        assert_eq!(got.len(), 5);
        assert_eq!(got, bars_of(M1, &trades));
        // Before the record's first minute: the deterministic walk.
        let before = bars_between("AAPL.US", M1, T0 - 2 * MINUTE_MS, T0, u64::MAX, tape);
        let walk = super::super::kline::kline_bars("AAPL.US", M1, T0 - 2 * MINUTE_MS, T0);
        assert_eq!(before[..2], walk[..2]);
        assert_eq!(before[2], got[0]);
        // Final bars only: on a clock inside the last minute it is left out.
        let now = T0 + 4 * MINUTE_MS + 30_000;
        let final_only = bars_between("AAPL.US", M1, T0, u64::MAX, now, tape);
        assert_eq!(final_only, got[..4]);
        // The forming bar over the trades so far, and the newest first.
        let source = super::super::kline::Source::new("AAPL.US", tape);
        let latest = source.latest(M1, now, now, 0, 2, true);
        assert_eq!(latest, got[3..]);
    }

    #[test]
    fn a_clock_jump_makes_the_unseen_trades_of_the_skipped_minutes() {
        let shared = shared();
        let mut inner = shared.lock_inner();
        let first = push(&mut inner, "700.HK", T0 + 30_000);
        let second = push(&mut inner, "700.HK", T0 + 30_000 + 5 * MINUTE_MS);
        // One a second over (p, t): p + 1 s, …, t − 1 s.
        assert_eq!(inner.unseen_trades, 299);
        let tape = inner.tape("700.HK");
        let bars = bars_between("700.HK", M1, T0, T0 + 5 * MINUTE_MS, u64::MAX, tape);
        let starts: Vec<String> = (0..6)
            .map(|m| ((T0 + m * MINUTE_MS) / 1000).to_string())
            .collect();
        let got: Vec<&String> = bars.iter().map(|b| &b.timestamp).collect();
        assert_eq!(got, starts.iter().collect::<Vec<_>>());
        assert_eq!(bars[0].open, cents_text(first.price.into()));
        assert_eq!(bars[5].close, cents_text(second.price.into()));
        // 30 trades in the first and last minute, 60 in each other, each of
        // 100 to 2000.
        for (i, b) in bars.iter().enumerate() {
            let n = if i == 0 || i == 5 { 30 } else { 60 };
            let v: u64 = b.volume.parse().unwrap();
            assert!(
                v.is_multiple_of(100) && (100 * n..=2000 * n).contains(&v),
                "{b:?}"
            );
        }
        // The walk goes on: a minute opens within a step of the last close.
        for w in bars.windows(2) {
            let (close, open) = (cents(&w[0].close), cents(&w[1].open));
            assert!(close.abs_diff(open) <= (close / 1000).max(1), "{w:?}");
        }
        // The next push follows within a step too.
        let third = push(&mut inner, "700.HK", second.time_ms + 300);
        assert!(third.price.abs_diff(second.price) <= (second.price / 1000).max(1));
        assert_eq!(inner.unseen_trades, 299);
    }

    /// The aggregate of `minutes` (in time order) as the bar starting at
    /// `start`.
    fn sum(start: u64, minutes: &[&RawKline]) -> RawKline {
        let prices = |f: fn(&RawKline) -> &String| minutes.iter().map(move |m| cents(f(m)));
        RawKline {
            timestamp: (start / 1000).to_string(),
            open: minutes[0].open.clone(),
            high: cents_text(prices(|m| &m.high).max().unwrap().into()),
            low: cents_text(prices(|m| &m.low).min().unwrap().into()),
            close: minutes[minutes.len() - 1].close.clone(),
            volume: (minutes.iter())
                .map(|m| m.volume.parse::<u64>().unwrap())
                .sum::<u64>()
                .to_string(),
            turnover: cents_text(prices(|m| &m.turnover).map(u128::from).sum()),
        }
    }

    #[test]
    fn longer_intervals_are_the_aggregate_of_their_minutes() {
        // 2024-01-01T00:00:00Z, a Monday: every interval starts there.
        let t0 = 1_704_067_200_000;
        let shared = shared();
        let mut inner = shared.lock_inner();
        // Trades for 10 minutes, a 10-minute hole the market fills with
        // unseen trades, then an hour of trades.
        let times = (0..1500)
            .map(|i| t0 + 500 + i * 400)
            .chain((0..5140).map(|i| t0 + 20 * MINUTE_MS + 300 + i * 700));
        for t in times {
            push(&mut inner, "BTCUSDT", t);
        }
        assert_eq!(inner.unseen_trades, 600);
        let tape = inner.tape("BTCUSDT");
        let to = t0 + 80 * MINUTE_MS;
        let minutes = bars_between("BTCUSDT", M1, t0, to, u64::MAX, tape);
        assert_eq!(minutes.len(), 80);
        let start_of = |b: &RawKline| b.timestamp.parse::<u64>().unwrap() * 1000;
        for iv in KlineInterval::ALL {
            let bars = bars_between("BTCUSDT", iv, t0, to, u64::MAX, tape);
            assert!(!bars.is_empty(), "{iv:?}");
            let want: Vec<RawKline> = (bars.iter())
                .map(|b| {
                    let (s, e) = (start_of(b), iv.end(start_of(b)));
                    let inside: Vec<&RawKline> = (minutes.iter())
                        .filter(|m| (s..e).contains(&start_of(m)))
                        .collect();
                    sum(s, &inside)
                })
                .collect();
            assert_eq!(bars, want, "{iv:?}");
        }
    }
}
