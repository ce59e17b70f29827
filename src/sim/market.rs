//! Market data: the random walk, trade and depth pushes, and the readings
//! of the loosely documented wire formats they follow.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

#[cfg(feature = "testing")]
use super::Simulator;
use super::server::Inner;
use super::tape::Tape;
use super::{MAX_RECORDED_PUSHES, SentTick};
use crate::wire::protocol::FeedKind;

/// 2024-01-01T00:00:00Z in milliseconds since the Unix epoch: the origin of
/// [`SeqStyle::Counter`] starting values.
const COUNTER_EPOCH_MS: u64 = 1_704_067_200_000;

/// How the `seq` of pushes is numbered. AllTick documents no meaning for
/// it: the docs' example is time-like (`1605509068000001`), the HTTP
/// answers carry a counter (`30841439`), and nothing says it survives a
/// reconnect, a server restart or a fail-over.
// Without the `testing` feature only the default is ever played.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SeqStyle {
    /// A counter per code (+1 per push; trades and depth counted apart),
    /// shared by all connections and unrelated to `tick_time`. Every
    /// code's counter starts just above the simulator's start time counted
    /// in milliseconds since 2024-01-01 (an 11-digit number), so a simulator
    /// restarted on the same port continues above where the previous one
    /// stopped, as long as it pushed fewer than 1000 per second per code.
    #[default]
    Counter,
    /// Time-like, as in the docs' example: the push's time in milliseconds
    /// × 1000 plus a sequence within the millisecond; strictly increasing
    /// per code across connections.
    TimeLike,
    /// A counter per code and per connection that starts again at 1 on
    /// every new connection (as after a server restart or a fail-over to
    /// another node), while `tick_time` stays real time: a reconnected
    /// client sees lower seqs with later times.
    PerConnection,
}

/// Which reading the simulator plays of the points AllTick's docs leave
/// open (the meaning and type of `seq`, seconds or milliseconds in
/// `tick_time`, numbers as strings or JSON numbers, errors that do not echo
/// `seq_id`, padded depth levels, key order). Set at start with
/// [`SimConfig::readings`](super::SimConfig::readings)
/// and at runtime with [`Simulator::set_readings`]; every push and response
/// built after the change follows it. `Readings::default()`: `seq` is a
/// per-code [`SeqStyle::Counter`] written as a JSON number, `tick_time` in
/// milliseconds, prices/volumes/turnovers as decimal strings, errors echo
/// `seq_id`, depth levels all good, no trade pushed again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readings {
    /// How `seq` is numbered.
    pub seq: SeqStyle,
    /// Write `seq` as a JSON string (`"seq":"30841439"`) instead of a number.
    pub seq_as_string: bool,
    /// Write `tick_time` in seconds (10 digits, as in the docs' example)
    /// instead of milliseconds; several pushes then share one `tick_time`.
    pub tick_time_seconds: bool,
    /// Write `price`, `volume` and `turnover` (and depth levels' `price` and
    /// `volume`) as JSON numbers instead of strings, with exactly the
    /// digits the string would have had (`"price":651.10`, trailing zeros
    /// kept; prices always carry two decimals, so about one in ten ends in 0).
    pub numbers_as_json: bool,
    /// Error answers (any `ret` other than 200) carry `"seq_id":0` instead
    /// of echoing the request's `seq_id` (as in the docs' error example).
    pub error_seq_id_zero: bool,
    /// Depth pushes carry padding levels mixed with the good ones, as a
    /// server may send for a thin side: bids hold about half of the
    /// requested levels good, then padding up to the requested count (at
    /// least one); asks hold all good levels with one padding level after
    /// the first. Padding rotates through `{"price":"0","volume":"0"}`,
    /// `{"price":"","volume":""}` and `{"price":"0"}` (volume missing).
    /// Counted in [`SentTick::bad_levels`].
    pub padded_depth: bool,
    /// Write pushes with `data` before `cmd_id`, a space after each outer
    /// colon and comma (`{"data": {…}, "cmd_id": 22998}`): JSON fixes no key
    /// order, and the docs print spaces.
    pub data_first: bool,
    /// On a 22004 answered with ret 200, push the latest trade of each code
    /// new to the connection's set once more, exactly as it was last pushed
    /// (same `seq` and `tick_time`, on whichever connection), before the
    /// code's next trade: a server that greets a subscription with the last
    /// price. Re-pushes are recorded in
    /// [`SimState::repushes`](super::SimState::repushes), not in `ticks`.
    pub repush_last_trade: bool,
}

/// Where [`SeqStyle::Counter`] counters of a simulator started now begin,
/// on a clock `offset_ms` off the real one.
pub(super) fn counter_base(offset_ms: i64) -> u64 {
    offset(now_ms(), offset_ms).saturating_sub(COUNTER_EPOCH_MS)
}

/// `ms` moved by `offset_ms`, within the range of `u64`.
fn offset(ms: u64, offset_ms: i64) -> u64 {
    ms.saturating_add_signed(offset_ms)
}

/// Per-code market state, shared by all connections (like the real feed).
pub(super) struct CodeMarket {
    /// The walk's price now.
    pub(super) cents: u64,
    /// The record of the code's trades.
    pub(super) tape: Tape,
    trade_seq: u64,
    depth_seq: u64,
    /// The last trade pushed, its text and record
    /// ([`Readings::repush_last_trade`]).
    #[cfg(feature = "testing")]
    last_trade: Option<(String, SentTick)>,
}

#[cfg(feature = "testing")]
impl Simulator {
    /// Play another reading of the loosely documented formats from now on
    /// (every push and response built after this call); see [`Readings`].
    pub fn set_readings(&self, readings: Readings) {
        self.shared.lock_inner().readings = readings;
    }

    /// The readings currently played.
    pub fn readings(&self) -> Readings {
        self.shared.lock_inner().readings
    }

    /// Run the simulated clock `ms` off the real one from now on (e.g. to
    /// just before midnight UTC): every push built after this call carries
    /// `tick_time` (and with [`SeqStyle::TimeLike`] its `seq`) on the moved
    /// clock, as do the records' [`SentTick::time_ms`]. Also
    /// [`SimConfig::clock_offset_ms`](super::SimConfig::clock_offset_ms)
    /// at start.
    pub fn set_clock_offset_ms(&self, ms: i64) {
        self.shared.lock_inner().clock_offset_ms = ms;
    }
}

/// A number's digits as a JSON string, or bare with
/// [`Readings::numbers_as_json`].
fn num(readings: Readings, digits: &str) -> String {
    if readings.numbers_as_json {
        digits.to_owned()
    } else {
        format!("\"{digits}\"")
    }
}

/// A push `{"cmd_id":N,"data":D}` rewritten as `{"data": D, "cmd_id": N}`
/// ([`Readings::data_first`]).
fn data_first(text: &str) -> String {
    let split = text
        .strip_prefix("{\"cmd_id\":")
        .and_then(|rest| rest.split_once(",\"data\":"))
        .and_then(|(cmd, data)| Some((cmd, data.strip_suffix('}')?)));
    match split {
        Some((cmd, data)) => format!("{{\"data\": {data}, \"cmd_id\": {cmd}}}"),
        None => text.to_owned(),
    }
}

/// The padding level number `n` of [`Readings::padded_depth`].
fn pad_level(n: usize) -> &'static str {
    match n % 3 {
        0 => r#"{"price":"0","volume":"0"}"#,
        1 => r#"{"price":"","volume":""}"#,
        _ => r#"{"price":"0"}"#,
    }
}

impl Inner {
    /// The readings played now.
    #[cfg(feature = "testing")]
    pub(super) fn readings(&self) -> Readings {
        self.readings
    }

    /// The readings played now: always the default without the `testing`
    /// feature.
    #[cfg(not(feature = "testing"))]
    pub(super) fn readings(&self) -> Readings {
        Readings::default()
    }

    /// The simulated clock, ms since the Unix epoch.
    #[cfg(feature = "testing")]
    pub(super) fn now_ms(&self) -> u64 {
        offset(now_ms(), self.clock_offset_ms)
    }

    /// The simulated clock: the real one without the `testing` feature.
    #[cfg(not(feature = "testing"))]
    pub(super) fn now_ms(&self) -> u64 {
        now_ms()
    }

    /// The last trade pushed for `code`, to push again, recorded as
    /// re-pushed on connection `conn` ([`Readings::repush_last_trade`]).
    #[cfg(feature = "testing")]
    pub(super) fn repush(&mut self, conn: u64, code: &str) -> Option<String> {
        let (text, sent) = self.market.get(code)?.last_trade.clone()?;
        self.state.repushes.push(SentTick {
            conn,
            at: Instant::now(),
            ..sent
        });
        Some(text)
    }

    /// Nothing is pushed again without the `testing` feature.
    #[cfg(not(feature = "testing"))]
    pub(super) fn repush(&mut self, _conn: u64, _code: &str) -> Option<String> {
        None
    }

    /// The next `seq` for a push of `kind` for `code` on connection `conn`
    /// ([`Readings::seq`]).
    fn next_seq(&mut self, conn: u64, kind: FeedKind, code: &str, time_ms: u64) -> u64 {
        let style = self.readings().seq;
        if style == SeqStyle::PerConnection {
            let n = self
                .conn_seq
                .entry((conn, kind, code.to_owned()))
                .or_insert(0);
            *n = n.saturating_add(1);
            return *n;
        }
        let base = self.counter_base;
        let Some(market) = self.market.get_mut(code) else {
            return 1;
        };
        let last = match kind {
            FeedKind::Trades => &mut market.trade_seq,
            FeedKind::Depth => &mut market.depth_seq,
        };
        *last = match style {
            SeqStyle::TimeLike => last
                .saturating_add(1)
                .max(time_ms.saturating_mul(1000).saturating_add(1)),
            _ => (*last).max(base).saturating_add(1),
        };
        *last
    }

    /// One random-walk step for `code` (starting it if new); its price in
    /// cents.
    fn walk(&mut self, code: &str) -> u64 {
        let seed_price = initial_cents(code, &mut self.rng);
        let market = self
            .market
            .entry(code.to_owned())
            .or_insert_with(|| CodeMarket {
                cents: seed_price,
                tape: Tape::default(),
                trade_seq: 0,
                depth_seq: 0,
                #[cfg(feature = "testing")]
                last_trade: None,
            });
        market.cents = step(market.cents, &mut self.rng);
        market.cents
    }

    /// Generate one push for `code` now, record it, and return its JSON
    /// text (built by hand so that numbers keep their exact digits).
    pub(super) fn push(&mut self, conn: u64, kind: FeedKind, code: &str, level: usize) -> String {
        let time_ms = self.now_ms();
        self.push_at(time_ms, conn, kind, code, level)
    }

    /// [`Inner::push`] at `time_ms` on the simulator's clock.
    pub(super) fn push_at(
        &mut self,
        time_ms: u64,
        conn: u64,
        kind: FeedKind,
        code: &str,
        level: usize,
    ) -> String {
        let readings = self.readings();
        let tick_time = if readings.tick_time_seconds {
            time_ms / 1000
        } else {
            time_ms
        };
        if kind == FeedKind::Trades {
            self.catch_up(code, time_ms);
        }
        let cents = self.walk(code);
        let price = fmt_cents(cents);
        let seq = self.next_seq(conn, kind, code, time_ms);
        let seq_text = if readings.seq_as_string {
            format!("\"{seq}\"")
        } else {
            seq.to_string()
        };
        let code_json = Value::from(code).to_string();
        let head = format!("\"code\":{code_json},\"seq\":{seq_text},\"tick_time\":{tick_time}");
        let mut sent = SentTick {
            conn,
            code: code.to_owned(),
            seq,
            at: Instant::now(),
            price,
            volume: String::new(),
            tick_time,
            time_ms,
            bad_levels: 0,
        };
        let (text, list) = match kind {
            FeedKind::Trades => {
                let (text, volume) = self.trade_text(&head, cents, readings);
                sent.volume = volume.to_string();
                self.record_trade(code, time_ms, cents, volume);
                (text, &mut self.state.ticks)
            }
            FeedKind::Depth => {
                let (text, bad) = self.depth_text(&head, cents, level, readings);
                sent.bad_levels = bad;
                (text, &mut self.state.depth_pushes)
            }
        };
        let text = if readings.data_first {
            data_first(&text)
        } else {
            text
        };
        #[cfg(feature = "testing")]
        if kind == FeedKind::Trades
            && let Some(market) = self.market.get_mut(code)
        {
            market.last_trade = Some((text.clone(), sent.clone()));
        }
        record(list, &mut self.state.discarded_pushes, sent);
        text
    }

    /// A trade push (22998) at `cents`; also its volume.
    fn trade_text(&mut self, head: &str, cents: u64, readings: Readings) -> (String, u64) {
        let volume = trade_volume(&mut self.rng);
        let direction = self.rng.below(3);
        let volume_text = volume.to_string();
        let text = format!(
            "{{\"cmd_id\":22998,\"data\":{{{head},\"price\":{},\"volume\":{},\"turnover\":{},\
             \"trade_direction\":{direction}}}}}",
            num(readings, &fmt_cents(cents)),
            num(readings, &volume_text),
            num(readings, &fmt_cents(cents.saturating_mul(volume))),
        );
        (text, volume)
    }

    /// A depth push (22999) of `level` levels around `cents`; also its
    /// number of padding levels.
    fn depth_text(
        &mut self,
        head: &str,
        cents: u64,
        level: usize,
        readings: Readings,
    ) -> (String, usize) {
        let tick = (cents / 2000).max(1);
        let level = level as u64;
        let good_bids = if readings.padded_depth {
            (level / 2).max(1)
        } else {
            level
        };
        let mut pad_kind = self.state.depth_pushes.len() + self.state.discarded_pushes as usize;
        let mut bad = 0usize;
        let mut pad = || -> String {
            bad += 1;
            pad_kind += 1;
            pad_level(pad_kind).to_owned()
        };
        let level_text = |p: u64, v: u64| {
            format!(
                "{{\"price\":{},\"volume\":{}}}",
                num(readings, &fmt_cents(p)),
                num(readings, &v.to_string())
            )
        };
        let mut bids: Vec<String> = Vec::with_capacity(level as usize + 1);
        let mut asks: Vec<String> = Vec::with_capacity(level as usize + 1);
        for i in 1..=level {
            if i <= good_bids {
                if let Some(p) = cents.checked_sub(i * tick).filter(|p| *p >= 1) {
                    bids.push(level_text(p, (1 + self.rng.below(50)) * 100));
                }
            } else {
                bids.push(pad());
            }
            asks.push(level_text(cents + i * tick, (1 + self.rng.below(50)) * 100));
            if readings.padded_depth && i == 1 {
                asks.push(pad());
            }
        }
        if readings.padded_depth && good_bids == level {
            bids.push(pad());
        }
        let text = format!(
            "{{\"cmd_id\":22999,\"data\":{{{head},\"bids\":[{}],\"asks\":[{}]}}}}",
            bids.join(","),
            asks.join(","),
        );
        (text, bad)
    }
}

/// Append `item` to a record kept under [`MAX_RECORDED_PUSHES`] entries,
/// dropping (and counting) the oldest half when it is full.
pub(super) fn record<T>(list: &mut Vec<T>, discarded: &mut u64, item: T) {
    if list.len() >= MAX_RECORDED_PUSHES {
        let half = MAX_RECORDED_PUSHES / 2;
        list.drain(..half);
        *discarded += half as u64;
    }
    list.push(item);
}

/// One random-walk step from `cents`: about ±0.1 % (at least a cent),
/// never below 0.02.
pub(super) fn step(cents: u64, rng: &mut Rng) -> u64 {
    let k = (cents / 1000).max(1);
    (cents + rng.below(2 * k + 1)).saturating_sub(k).max(2)
}

/// A trade's volume: 100 to 2000, in hundreds.
pub(super) fn trade_volume(rng: &mut Rng) -> u64 {
    (1 + rng.below(20)) * 100
}

/// Starting price of a code, in cents, within 20.00..500.00: from a hash of
/// the code mixed with one draw of the seeded generator.
fn initial_cents(code: &str, rng: &mut Rng) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in code.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mixed = splitmix(h ^ rng.next_u64());
    2_000 + mixed % 48_000
}

fn fmt_cents(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(super) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xorshift64* generator.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        let s = splitmix(seed);
        Rng(if s == 0 { 0x9e37_79b9_7f4a_7c15 } else { s })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_stays_positive_moves_and_keeps_its_step_size() {
        // From the floor, from a typical price and from a large one.
        for start in [2u64, 3, 45_000, 10_000_000] {
            let mut rng = Rng::new(start);
            let (mut cents, mut seen) = (start, std::collections::HashSet::new());
            for _ in 0..10_000 {
                let next = step(cents, &mut rng);
                assert!(next >= 2, "{cents} -> {next}");
                let k = (cents / 1000).max(1);
                assert!(
                    next.abs_diff(cents) <= k,
                    "{cents} -> {next}: a step over {k}"
                );
                seen.insert(next);
                cents = next;
            }
            assert!(
                seen.len() > 10,
                "from {start} the walk hardly moved: {seen:?}"
            );
        }
        for code in ["AAPL.US", "TSLA.US", "700.HK", "BTCUSDT"] {
            let start = initial_cents(code, &mut Rng::new(1));
            assert!((2_000..50_000).contains(&start), "{code}: {start}");
        }
    }
}
