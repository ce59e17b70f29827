//! The lines the tool writes, made into what `--bars`, `--fields` and
//! `--format` ask for. The writer (live) and `replay` hand over each full
//! line as they would write it; it comes back rewritten, or folded into a
//! bar, or gone (depth and gap lines have no CSV form: a gap goes to
//! stderr, depth is counted).

use std::borrow::Cow;
use std::sync::Arc;

use crate::bars::{self, Bar, Bars, Interval, Refused};
use crate::form::line::{LineType, TradeLine, digits, find, unquoted};
use crate::form::{Format, LineForm};
use crate::report::{count, say};
use crate::stats::{DropLog, Stats};
use crate::wire::calendar::iso;
use crate::wire::repeat::{Last, Seen};

/// What closes bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The wall clock, read by the caller ([`Converter::close_due`]): live.
    Wall,
    /// The lines' own times, as they are read: `replay`.
    Stream,
}

/// Turns full lines into the lines of a [`LineForm`].
pub struct Converter {
    pub(super) form: LineForm,
    /// The line being converted, when it came in the output buffer.
    line: Vec<u8>,
    pub(super) cell: Vec<u8>,
    canon: Vec<u8>,
    /// Depth lines left out of CSV.
    depth_skipped: u64,
    /// Bar and K-line lines read back, left out of a changed form.
    bars_skipped: u64,
    /// Trade lines that could not be read back.
    unreadable: u64,
    /// `--bars`: the open bars.
    /// With, per code on the stream's clock, the de-duplication memory of
    /// what its bars took: a trade is counted once, as the live stream
    /// writes it once.
    pub(super) bars: Option<Bars<Last>>,
    /// `--heal`: the bars gaps touched, held.
    pub(super) healer: Option<crate::bars::heal::Healer>,
    clock: Clock,
    /// The latest trade time seen (the stream's clock).
    latest: u64,
    /// Live: how far the feed's times run from the wall clock.
    pub(super) skew: Skew,
    stats: Arc<Stats>,
    drops: DropLog,
}

impl Converter {
    /// Lines of `form`; bars closed by `clock`; late trades counted in
    /// `stats`.
    pub fn new(form: LineForm, clock: Clock, stats: Arc<Stats>) -> Converter {
        let bars = form
            .bars
            .map(|interval| Bars::with_memo(interval, form.bar_grace.as_millis() as u64));
        Converter {
            form,
            line: Vec::new(),
            cell: Vec::new(),
            canon: Vec::new(),
            depth_skipped: 0,
            bars_skipped: 0,
            unreadable: 0,
            bars,
            healer: None,
            clock,
            latest: 0,
            skew: Skew::default(),
            stats,
            drops: DropLog::default(),
        }
    }

    /// Bars written at a stop, open again to take their intervals' later
    /// trades (taken back from a capture on start).
    pub fn reopen(&mut self, bars: Vec<Bar>) {
        if let Some(b) = &mut self.bars {
            for bar in bars {
                b.reopen(bar);
            }
        }
    }

    /// The wall clock's reading (ms) at which [`Converter::close_wall`] next
    /// has a bar to write.
    pub fn next_due(&self) -> Option<u64> {
        let bar = (self.bars.as_ref())
            .and_then(Bars::next_due)
            .map(|due| due.saturating_add_signed(-self.skew.get()));
        let heal = (self.healer.as_ref()).and_then(|h| h.next_due(self.skew.get()));
        match (bar, heal) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Live: every bar due when the wall clock reads `now` (ms), on the
    /// feed's own clock: `now` plus the feed's offset from it ([`Skew`]).
    pub fn close_wall(&mut self, now: u64) -> Vec<(u64, Vec<u8>)> {
        self.close_due(now.saturating_add_signed(self.skew.get()))
    }

    /// Every bar due at `clock` (ms), as lines: (its start, the line).
    fn close_due(&mut self, clock: u64) -> Vec<(u64, Vec<u8>)> {
        let mut closed = Vec::new();
        if let Some(b) = &mut self.bars
            && b.next_due().is_some_and(|d| d <= clock)
        {
            b.close_due(clock, &mut |bar| closed.push(bar));
        }
        self.lines(closed)
    }

    /// Every bar still open (the end of the input, a stop), as lines.
    pub fn close_all(&mut self) -> Vec<(u64, Vec<u8>)> {
        let mut closed = Vec::new();
        if let Some(b) = &mut self.bars {
            b.close_all(&mut |bar| closed.push(bar));
        }
        self.lines(closed)
    }

    fn lines(&mut self, bars: Vec<Bar>) -> Vec<(u64, Vec<u8>)> {
        let bars: Vec<Bar> = match &mut self.healer {
            Some(h) => bars.into_iter().filter_map(|b| h.closed(b)).collect(),
            None => bars,
        };
        self.bar_lines(bars)
    }

    /// Bars as lines: (start, line).
    pub(super) fn bar_lines(&mut self, bars: Vec<Bar>) -> Vec<(u64, Vec<u8>)> {
        bars.into_iter()
            .map(|bar| {
                let mut line = Vec::new();
                self.form.columns.bar(&mut line, &mut self.cell, &bar);
                (bar.start, line)
            })
            .collect()
    }

    /// Whether lines go out as they are: nothing to do.
    pub fn is_plain(&self) -> bool {
        self.form.is_plain()
    }

    /// Whether lines are CSV rows.
    pub fn is_csv(&self) -> bool {
        self.form.columns.format == Format::Csv
    }

    /// The header row a stream or a new file starts with (CSV), else
    /// nothing.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.form.columns.header(&mut out);
        out
    }

    /// The whole line at `buf[at..]` (with its newline), as the tool
    /// writes it: rewritten in place into the form's line, or folded into
    /// a bar, or left out ([`Converter::convert`]). Returns the number of lines
    /// at `buf[at..]` now.
    pub fn convert_in_place(&mut self, buf: &mut Vec<u8>, at: usize) -> usize {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        line.extend_from_slice(&buf[at..]);
        buf.truncate(at);
        let n = self.convert(&line, buf);
        self.line = line;
        n
    }

    /// A line that is not a trade: written as it is, said, or left out
    /// (the lines appended); `None` for a trade.
    #[inline]
    fn not_a_trade(&mut self, line: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let csv = self.form.columns.format == Format::Csv;
        match line_type(line) {
            Some(LineType::Trade) => None,
            Some(LineType::Depth) if csv => {
                self.depth_skipped += 1;
                if self.depth_skipped == 1 {
                    say("depth lines have no CSV form: left out (use --format jsonl for depth)");
                }
                Some(0)
            }
            Some(LineType::Gap) if csv => {
                let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line));
                say(format!("gap: {text}"));
                Some(0)
            }
            Some(LineType::Bar) => {
                self.bars_skipped += 1;
                if self.bars_skipped == 1 {
                    say(
                        "bar and K-line lines read back keep their form: left out of --bars, --fields and --format (a plain replay writes them as they are)",
                    );
                }
                Some(0)
            }
            Some(LineType::Depth | LineType::Gap) | None => {
                out.extend_from_slice(line);
                Some(1)
            }
        }
    }

    /// A whole line (with its newline) as the tool writes it: append the
    /// form's line for it to `out`, or fold it into a bar, or leave it out.
    /// With bars on the stream's clock, the bars it closes are appended
    /// instead. Returns the number of lines appended.
    pub fn convert(&mut self, line: &[u8], out: &mut Vec<u8>) -> usize {
        if let Some(n) = self.not_a_trade(line, out) {
            return n;
        }
        let trade = match TradeLine::parse(line) {
            Some(t) => t,
            None if TradeLine::canonical(line, &mut self.canon) => {
                match TradeLine::parse(&self.canon) {
                    Some(t) => t,
                    None => return self.unreadable(),
                }
            }
            None => return self.unreadable(),
        };
        let Some(bars) = &mut self.bars else {
            self.form.columns.trade(out, &mut self.cell, &trade);
            return 1;
        };
        let time = trade.time;
        // The clock the trade is judged by (late once it passed the end of
        // the trade's interval plus the grace, bar written or not). Live:
        // the wall clock moved by the feed's offset, this trade's arrival
        // counted in; on the stream's clock, the latest time read.
        let clock = match self.clock {
            Clock::Wall => {
                let now = Stats::now_ms();
                if let Some(h) = &mut self.healer
                    && h.watching(now)
                    && let Some(code) = trade.code_str()
                {
                    h.trade(code, time, now);
                }
                self.skew.see(time, now);
                now.saturating_add_signed(self.skew.get())
            }
            Clock::Stream => self.latest.max(time),
        };
        // Live, the writer's de-duplication came first; on the stream's
        // clock it is done here, in the bars' own table of codes.
        let dedupe = self.clock == Clock::Stream;
        match add(bars, &trade, clock, dedupe) {
            Ok(()) => {}
            Err((Refused::Repeat, _)) => {
                Stats::add(&self.stats.dropped_repeat, 1);
                return 0;
            }
            Err((Refused::Late, code)) => self.late(&code, time),
            Err((Refused::Bad, _)) => return self.unreadable(),
        }
        if self.clock == Clock::Wall {
            return 0;
        }
        // The stream's clock moves only with a later trade; most trades
        // close nothing, and cost no more than this comparison.
        if time <= self.latest {
            return 0;
        }
        self.latest = time;
        if self
            .bars
            .as_ref()
            .and_then(Bars::next_due)
            .is_none_or(|d| d > time)
        {
            return 0;
        }
        let closed = self.close_due(time);
        for (_, line) in &closed {
            out.extend_from_slice(line);
        }
        closed.len()
    }

    /// A trade of `code` at `time` came after its interval closed.
    fn late(&mut self, code: &str, time: u64) {
        let interval = self.form.bars.map_or("", Interval::name);
        self.drops.count(&self.stats.late_trades, 1, "late", |total| {
            format!(
                "a trade of {code} at {} came after its {interval} interval closed (its end plus the grace passed): it is in no bar; {total} late trades so far",
                iso(time)
            )
        });
    }

    /// A trade line that cannot be read back: left out, counted and said.
    fn unreadable(&mut self) -> usize {
        self.unreadable += 1;
        if self.unreadable.is_power_of_two() {
            say(format!(
                "a trade line could not be read back to write its fields; {} left out so far",
                count(self.unreadable as usize, "line")
            ));
        }
        0
    }

    /// What was left out, for the summary at the end (empty if nothing).
    pub fn left_out(&self) -> Vec<String> {
        let mut said = Vec::new();
        if self.depth_skipped > 0 {
            said.push(format!(
                "{} left out of CSV",
                count(self.depth_skipped as usize, "depth line")
            ));
        }
        if self.bars_skipped > 0 {
            said.push(format!(
                "{} left out",
                count(self.bars_skipped as usize, "bar line")
            ));
        }
        if self.unreadable > 0 {
            said.push(format!(
                "{} unreadable",
                count(self.unreadable as usize, "trade line")
            ));
        }
        let late = Stats::get(&self.stats.late_trades);
        if late > 0 {
            said.push(format!(
                "{} after its interval closed (late: in no bar)",
                count(late as usize, "trade")
            ));
        }
        let repeats = Stats::get(&self.stats.dropped_repeat);
        if repeats > 0 {
            said.push(format!(
                "{} already counted (the same seq and time)",
                count(repeats as usize, "repeated trade")
            ));
        }
        said
    }
}

/// How far the feed's trade times run ahead of the wall clock (behind:
/// negative), ms: the median of the last trades' `time` less their
/// arrival. A server or local clock set a few seconds off then neither
/// delays bars nor makes trades late; an odd trade time, far ahead or
/// behind, moves the median by one place only.
#[derive(Debug, Default)]
pub(super) struct Skew {
    recent: Vec<i64>,
    /// `recent`, sorted for the median (kept to be reused).
    sorted: Vec<i64>,
    next: usize,
    median: i64,
}

impl Skew {
    /// Trades the median is taken over.
    const TRADES: usize = 63;

    /// A trade of `time` arrived at `now` (ms).
    fn see(&mut self, time: u64, now: u64) {
        let offset = time as i64 - now as i64;
        if self.recent.len() < Self::TRADES {
            self.recent.push(offset);
        } else {
            self.recent[self.next] = offset;
            self.next = (self.next + 1) % Self::TRADES;
        }
        // Taken now and then (each trade when few are in), not each trade.
        if self.recent.len() < Self::TRADES || self.next.is_multiple_of(16) {
            self.sorted.clear();
            self.sorted.extend_from_slice(&self.recent);
            self.sorted.sort_unstable();
            self.median = self.sorted[self.sorted.len() / 2];
        }
    }

    pub(super) fn get(&self) -> i64 {
        self.median
    }
}

/// Fold `t` into `bars`, the clock reading `clock` (ms); why not, with
/// its code. With `dedupe`, a repeat of its code's last trade is refused
/// first.
fn add(
    bars: &mut Bars<Last>,
    t: &TradeLine,
    clock: u64,
    dedupe: bool,
) -> Result<(), (Refused, String)> {
    let code = json_text(t.code);
    let symbol = json_text(t.symbol);
    let seq = digits(t.seq).unwrap_or(0);
    let trade = bars::Trade {
        symbol: &symbol,
        code: &code,
        time: t.time,
        price: t.price,
        volume: number(t.volume),
        turnover: number(t.turnover),
    };
    bars.add_new(&trade, clock, |last| {
        !dedupe || last.see(seq, t.time) != Seen::Repeat
    })
    .map_err(|why| (why, code.to_string()))
}

/// A number token, or `None` for `null`.
fn number(token: &[u8]) -> Option<&[u8]> {
    (token != b"null").then_some(token)
}

/// A JSON string token's text.
fn json_text(token: &[u8]) -> Cow<'_, str> {
    match unquoted(token) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(serde_json::from_slice(token).unwrap_or_default()),
    }
}

/// What a full line is: by its start as the tool writes it, else by its
/// `type` wherever it stands; `None` for any other line.
fn line_type(line: &[u8]) -> Option<LineType> {
    let types: [(&[u8], LineType); 5] = [
        (b"\"type\":\"trade\"", LineType::Trade),
        (b"\"type\":\"depth\"", LineType::Depth),
        (b"\"type\":\"gap\"", LineType::Gap),
        (b"\"type\":\"bar\"", LineType::Bar),
        (b"\"type\":\"kline\"", LineType::Bar),
    ];
    for (key, ty) in types {
        if line.get(1..).is_some_and(|l| l.starts_with(key)) {
            return Some(ty);
        }
    }
    types
        .into_iter()
        .find(|(key, _)| find(line, key).is_some())
        .map(|(_, ty)| ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_and_replay_alike_a_first_trade_in_an_interval_the_clock_passed_is_late() {
        const MINUTE: u64 = 60_000;
        let line = |code: &str, seq: u64, time: u64| {
            format!(
                "{{\"type\":\"trade\",\"symbol\":\"{code}\",\"code\":\"{code}\",\"seq\":{seq},\"time\":{time},\"price\":1.5,\"volume\":2,\"turnover\":null,\"side\":null}}\n"
            )
        };
        for clock in [Clock::Wall, Clock::Stream] {
            let stats = Arc::new(Stats::default());
            let form = LineForm {
                columns: crate::form::columns::Columns::all(Format::Jsonl, true),
                bars: Interval::parse("1m").ok(),
                ..LineForm::default()
            };
            let mut s = Converter::new(form, clock, Arc::clone(&stats));
            let now = Stats::now_ms();
            // A's trades now (live: arriving as they happen): the clock
            // reads now. B's first trade, of ten minutes ago, came after
            // its interval closed, though B has no bar there.
            let mut out = Vec::new();
            let trades = [("A", 1, now), ("A", 2, now), ("A", 3, now)];
            let late = ("B", 1, now - 10 * MINUTE);
            for (code, seq, time) in trades.into_iter().chain([late]) {
                s.convert(line(code, seq, time).as_bytes(), &mut out);
            }
            for (_, l) in s.close_all() {
                out.extend_from_slice(&l);
            }
            let text = String::from_utf8(out).unwrap();
            assert_eq!(Stats::get(&stats.late_trades), 1, "{clock:?}: {text}");
            let bars: Vec<&str> = text.lines().collect();
            assert_eq!(bars.len(), 1, "{clock:?}: {text}");
            assert!(
                bars[0].contains("\"code\":\"A\"") && bars[0].ends_with("\"trades\":3}"),
                "{clock:?}: {text}"
            );
        }
    }

    #[test]
    fn the_feeds_offset_is_a_median_that_an_odd_time_does_not_move() {
        let mut s = Skew::default();
        assert_eq!(s.get(), 0, "no trade yet: the wall clock");
        // A server 5 s ahead, trades arriving 10 to 40 ms after their time,
        // and one trade stamped an hour ahead.
        for i in 0..200u64 {
            let now = 1_000_000 + i * 100;
            let time = if i == 50 {
                now + 3_600_000
            } else {
                now + 5_000 - 10 - i % 31
            };
            s.see(time, now);
            if i >= 2 {
                assert!((4_950..=4_990).contains(&s.get()), "{i}: {}", s.get());
            }
        }
    }
}
