//! The requests each code needs, and the order its bars are written in.
//!
//! AllTick answers a K-line request with the bars *before* a time
//! (`kline_timestamp_end`, 0 = now), so every walk goes from new to old.
//! For a forex, metal or crypto code:
//! - what is newer than the files' newest bar is fetched back to it, held
//!   in memory, and written oldest first once all of it is in, so an
//!   interrupted run leaves no hole between the old newest and the new;
//! - what is older than the files' oldest bar (down to `--from`) is
//!   written period file by period file, newest first, each as soon as
//!   the walk has passed its start: the bars on disk stay one unbroken run.
//!
//! For a stock code the server answers only its latest bars: one request,
//! and a note of how far back that reached when more was asked for.
//!
//! Each page is asked for [`MAX_PAGE`] bars; a shorter page is not taken
//! as the end: only a page with nothing older than the one before is.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;

use crate::form::{Columns, Format};
use crate::wire::calendar::iso;
use crate::wire::kline::{Answer, MAX_PAGE};
use crate::wire::plan::Plan;
use crate::wire::symbol::Symbol;

use super::check::{Kline, check};
use super::fetch::{Client, Reply};
use super::options::{EXIT_DONE, EXIT_FAILURE, EXIT_SOME_FAILED, EXIT_UNFINISHED, HistoryOptions};
use super::options::{is_stock, ms_since};
use super::pace::{Backoff, Pacer};
use super::progress::Progress;
use super::store::{Holdings, Out, Who};

/// Tries of one request that fails for no reason the server gave (no
/// connection, a timeout, HTTP 5xx, a body that is not JSON).
const TRIES: u32 = 6;
/// Refusals for rate in a row after which the run stops: the server's
/// count (its day, or another client on the token) is not the tool's.
const RATE_REFUSALS: u32 = 8;
/// Broken bars said one by one per code; beyond, only counted.
const SAY_BROKEN: u64 = 5;

/// Why the run stopped before its end.
#[derive(Debug)]
pub enum Halt {
    /// The token was refused.
    Token,
    /// The day's allowance, or refusals for rate: the next run goes on.
    Unfinished(String),
    /// SIGINT or SIGTERM.
    Signal,
    /// The output could not be written.
    Output(std::io::Error),
    /// Stdout was closed (`| head`): nothing more to do.
    Closed,
}

/// Why a code, or the run, ended.
enum Miss {
    /// This code fails (said); the others go on.
    Code(String),
    /// The run stops.
    Halt(Halt),
}

/// One answer's bars: final and checked, oldest first, each start once.
struct Page {
    bars: Vec<Kline>,
    /// The oldest start of any bar read (forming ones included).
    oldest: Option<u64>,
}

/// The run over every code.
pub struct Walk<'a> {
    opts: &'a HistoryOptions,
    /// The form bars are written in: for Parquet, the full JSON lines the
    /// file is made from.
    text: Columns,
    client: Client,
    pacer: Pacer,
    clock: Instant,
    out: Out,
    holdings: Holdings,
    stop: Arc<AtomicBool>,
    wake: Receiver<()>,
    progress: Arc<Progress>,
    forming: u64,
    dropped: u64,
    failed: Vec<(String, String)>,
}

impl<'a> Walk<'a> {
    /// A walk over `opts.symbols`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        opts: &'a HistoryOptions,
        client: Client,
        plan: &Plan,
        out: Out,
        holdings: Holdings,
        stop: Arc<AtomicBool>,
        wake: Receiver<()>,
        progress: Arc<Progress>,
    ) -> Walk<'a> {
        let text = match opts.columns.format {
            Format::Parquet => Columns::all(Format::Jsonl, true),
            _ => opts.columns.clone(),
        };
        Walk {
            opts,
            text,
            client,
            pacer: Pacer::new(&plan.http),
            clock: Instant::now(),
            out,
            holdings,
            stop,
            wake,
            progress,
            forming: 0,
            dropped: 0,
            failed: Vec::new(),
        }
    }

    /// The output, at the end of the run.
    pub fn into_out(self) -> Out {
        self.out
    }

    /// The plan's steady pace, ms per request.
    pub fn ms_per_request(&self) -> u64 {
        self.pacer.ms_per_request()
    }

    /// Every code in turn; what stopped the run early, if anything.
    pub fn all(&mut self) -> Option<Halt> {
        for sym in &self.opts.symbols {
            let result = if is_stock(&sym.code) {
                self.stock(sym)
            } else {
                self.other(sym)
            };
            match result {
                Ok(()) => {}
                Err(Miss::Code(why)) => {
                    self.progress.note(&format!("{}: failed: {why}", sym.code));
                    self.failed.push((sym.code.to_string(), why));
                }
                Err(Miss::Halt(h)) => return Some(h),
            }
            Progress::add(&self.progress.codes, 1);
        }
        None
    }

    /// The summary on stderr, and the exit status.
    pub fn summary(&self, halt: Option<&Halt>) -> i32 {
        let p = &self.progress;
        let done = p.codes.load(Ordering::Relaxed);
        let mut line = format!(
            "history: {done} of {} codes done, {} requests, {} bars written",
            p.total,
            self.pacer.count(),
            p.bars.load(Ordering::Relaxed)
        );
        if self.forming > 0 {
            line += &format!(
                ", {} still forming (the next run writes them)",
                self.forming
            );
        }
        if self.dropped > 0 {
            line += &format!(", {} broken bars dropped", self.dropped);
        }
        if !self.failed.is_empty() {
            let codes: Vec<&str> = self.failed.iter().map(|(c, _)| c.as_str()).collect();
            line += &format!("; {} failed: {}", codes.len(), codes.join(", "));
        }
        p.note(&line);
        match halt {
            Some(Halt::Token) => {
                p.note("history: the token was refused (401): stopping");
                EXIT_FAILURE
            }
            Some(Halt::Output(e)) => {
                p.note(&format!("history: cannot write the bars: {e}"));
                EXIT_FAILURE
            }
            Some(Halt::Unfinished(why)) => {
                p.note(&format!(
                    "history: stopped: {why}; the next run goes on from where this one stopped"
                ));
                EXIT_UNFINISHED
            }
            Some(Halt::Closed) => EXIT_DONE,
            Some(Halt::Signal) => {
                p.note("history: stopped by a signal; the next run goes on from where this one stopped");
                EXIT_UNFINISHED
            }
            None if !self.failed.is_empty() => EXIT_SOME_FAILED,
            None => EXIT_DONE,
        }
    }

    /// A stock code: the latest bars, one request.
    fn stock(&mut self, sym: &Symbol) -> Result<(), Miss> {
        let interval = self.opts.interval;
        let held = self.holdings.get(&sym.code, interval.name());
        let page = self.request(sym, 0)?;
        let after = held.map(|h| h.newest);
        let bars: Vec<Kline> = page
            .bars
            .into_iter()
            .filter(|k| after.is_none_or(|n| k.start > n) && self.in_range(k.start))
            .collect();
        self.write(sym, &bars)?;
        let Some(reach) = page.oldest else {
            return Err(Miss::Code("the server has no bars for it".into()));
        };
        if let Some(n) = after.filter(|n| reach > interval.end(*n)) {
            self.progress.note(&format!(
                "{}: the server's latest bars reach back to {}: any bars between {} (the newest kept) and then can no longer be fetched (stocks: latest bars only)",
                sym.code,
                iso(reach),
                iso(n)
            ));
        }
        let wanted = self
            .opts
            .from
            .filter(|f| held.is_none_or(|h| *f < h.oldest));
        if let Some(from) = wanted.filter(|f| *f < reach) {
            self.progress.note(&format!(
                "{}: reached back to {} only, not {} (AllTick serves a stock's latest bars only)",
                sym.code,
                iso(reach),
                iso(from)
            ));
        }
        Ok(())
    }

    /// A forex, metal or crypto code: newer bars, then older ones.
    fn other(&mut self, sym: &Symbol) -> Result<(), Miss> {
        let held = self.holdings.get(&sym.code, self.opts.interval.name());
        // A second past `--to`: whether the server answers bars starting
        // before `kline_timestamp_end` or at it too, the bar at `--to` comes.
        let to_secs = self.opts.to.map_or(0, |t| t / 1000 + 1);
        let Some(h) = held else {
            return self.older(sym, to_secs, u64::MAX);
        };
        if self.opts.to.is_none_or(|t| t > h.newest) {
            self.newer(sym, h.newest, to_secs)?;
        }
        match self.opts.from {
            Some(f) if f < h.oldest => {
                self.older(sym, (h.oldest / 1000).saturating_sub(1), h.oldest)
            }
            _ => Ok(()),
        }
    }

    /// The bars after `newest`, fetched back to it from `end_secs`, then
    /// written oldest first.
    fn newer(&mut self, sym: &Symbol, newest: u64, end_secs: u64) -> Result<(), Miss> {
        let mut got = BTreeMap::new();
        let mut end = end_secs;
        loop {
            let page = self.request(sym, end)?;
            let fresh = page
                .bars
                .into_iter()
                .filter(|k| k.start > newest && self.in_range(k.start));
            got.extend(fresh.map(|k| (k.start, k)));
            match page.oldest {
                Some(o) if o > newest && (end == 0 || o <= end * 1000) => end = o / 1000 - 1,
                _ => break,
            }
        }
        let bars: Vec<Kline> = got.into_values().collect();
        self.write(sym, &bars)
    }

    /// The bars before `below` (ms), down to `--from` (without it, one
    /// page), fetched back from `end_secs`; period files written newest
    /// first as the walk passes their starts.
    fn older(&mut self, sym: &Symbol, end_secs: u64, below: u64) -> Result<(), Miss> {
        let from = self.opts.from;
        let mut pending: BTreeMap<u64, Kline> = BTreeMap::new();
        let mut end = end_secs;
        // The newest start the next page may hold.
        let mut limit = if end == 0 { u64::MAX } else { end * 1000 };
        let mut reached: Option<u64> = None;
        let outcome = loop {
            let page = match self.request(sym, end) {
                Ok(p) => p,
                Err(miss) => break Err(miss),
            };
            let keep = |k: &Kline| k.start < below && k.start <= limit && self.in_range(k.start);
            let fresh: Vec<Kline> = page.bars.into_iter().filter(keep).collect();
            pending.extend(fresh.into_iter().map(|k| (k.start, k)));
            let oldest = match page.oldest {
                Some(o) if o <= limit => o,
                // Nothing older than the page before: the server has no more.
                _ if reached.is_none() && below == u64::MAX => {
                    break Err(Miss::Code("the server has no bars for it".into()));
                }
                _ => break Ok(from.zip(reached)),
            };
            reached = Some(oldest);
            if from.is_none_or(|f| oldest <= f) {
                break Ok(None);
            }
            if let Err(e) = self.flush_complete(sym, &mut pending, oldest) {
                break Err(e);
            }
            end = oldest / 1000 - 1;
            limit = end * 1000;
        };
        // What was fetched joins what is on disk: written whatever came next.
        self.flush_all(sym, pending)?;
        if let Some((from, reached)) = outcome? {
            self.progress.note(&format!(
                "{}: the server has nothing before {} (asked from {})",
                sym.code,
                iso(reached),
                iso(from)
            ));
        }
        Ok(())
    }

    /// Write the period files the walk has passed the start of (all bars
    /// at or after `oldest` are in), newest first.
    fn flush_complete(
        &mut self,
        sym: &Symbol,
        pending: &mut BTreeMap<u64, Kline>,
        oldest: u64,
    ) -> Result<(), Miss> {
        let Some(period) = self.out.period_start(oldest) else {
            return Ok(());
        };
        let boundary = match self.out.period_start(oldest - 1) {
            Some(p) if p == period => self.out.period_end(period),
            _ => period,
        };
        let done = pending.split_off(&boundary);
        self.write_newest_first(sym, done)
    }

    fn flush_all(&mut self, sym: &Symbol, pending: BTreeMap<u64, Kline>) -> Result<(), Miss> {
        if self.out.period_start(0).is_none() {
            let bars: Vec<Kline> = pending.into_values().collect();
            return self.write(sym, &bars);
        }
        self.write_newest_first(sym, pending)
    }

    /// Write `bars` one period file at a time, the newest period first.
    fn write_newest_first(&mut self, sym: &Symbol, bars: BTreeMap<u64, Kline>) -> Result<(), Miss> {
        let bars: Vec<Kline> = bars.into_values().collect();
        let mut end = bars.len();
        while end > 0 {
            let period = self.out.period_start(bars[end - 1].start).unwrap_or(0);
            let n = bars[..end]
                .iter()
                .rev()
                .take_while(|k| self.out.period_start(k.start) == Some(period))
                .count();
            self.write(sym, &bars[end - n..end])?;
            end -= n;
        }
        Ok(())
    }

    fn write(&mut self, sym: &Symbol, bars: &[Kline]) -> Result<(), Miss> {
        if bars.is_empty() {
            return Ok(());
        }
        let who = Who {
            symbol: &sym.spelling,
            code: &sym.code,
            interval: self.opts.interval.name(),
        };
        let n = self.out.write(&self.text, who, bars).map_err(|e| {
            match (e.kind(), self.out.period_start(0)) {
                (std::io::ErrorKind::BrokenPipe, None) => Miss::Halt(Halt::Closed),
                _ => Miss::Halt(Halt::Output(e)),
            }
        })?;
        Progress::add(&self.progress.bars, n as u64);
        Ok(())
    }

    fn in_range(&self, start: u64) -> bool {
        self.opts.from.is_none_or(|f| start >= f) && self.opts.to.is_none_or(|t| start <= t)
    }

    /// One page of `sym`'s bars ending at `end_secs`, paced, retried.
    fn request(&mut self, sym: &Symbol, end_secs: u64) -> Result<Page, Miss> {
        let stock = is_stock(&sym.code);
        let mut failures = Backoff::new(250, 8000);
        let mut refusals = Backoff::new(2000, 60_000);
        loop {
            self.wait_turn()?;
            self.pacer.sent(ms_since(self.clock));
            Progress::add(&self.progress.requests, 1);
            let reply = self
                .client
                .get(stock, &sym.code, self.opts.interval, end_secs, MAX_PAGE);
            let wait = match reply {
                Reply::Bars { answer, server_now } => return Ok(self.page(sym, answer, server_now)),
                Reply::Refused(ret, msg) => {
                    let msg = if msg.is_empty() {
                        String::new()
                    } else {
                        format!(" ({msg})")
                    };
                    return Err(Miss::Code(format!("the server answered ret {ret}{msg}")));
                }
                Reply::TokenRefused => return Err(Miss::Halt(Halt::Token)),
                Reply::RateLimited(what) => {
                    if refusals.tries + 1 >= RATE_REFUSALS {
                        return Err(Miss::Halt(Halt::Unfinished(format!(
                            "the server refused {RATE_REFUSALS} requests in a row for rate ({what}): its count for the day may be spent"
                        ))));
                    }
                    let wait = refusals.fail();
                    self.progress.note(&format!(
                        "{}: refused for rate ({what}): the same request again in {} ms",
                        sym.code, wait
                    ));
                    wait
                }
                Reply::Failed(what) => {
                    if failures.tries + 1 >= TRIES {
                        return Err(Miss::Code(format!("{what} (after {TRIES} tries)")));
                    }
                    let wait = failures.fail();
                    self.progress
                        .note(&format!("{}: {what}: trying again in {wait} ms", sym.code));
                    wait
                }
            };
            self.sleep(Duration::from_millis(wait))?;
        }
    }

    /// Wait until the plan lets the next request go.
    fn wait_turn(&mut self) -> Result<(), Miss> {
        let now = ms_since(self.clock);
        let Some(at) = self.pacer.next_at(now) else {
            return Err(Miss::Halt(Halt::Unfinished(format!(
                "this run made the plan's {} requests of the day",
                self.pacer.count()
            ))));
        };
        self.sleep(Duration::from_millis(at - now))
    }

    fn sleep(&mut self, d: Duration) -> Result<(), Miss> {
        if !d.is_zero() {
            let _ = self.wake.recv_timeout(d);
        }
        if self.stop.load(Ordering::SeqCst) {
            return Err(Miss::Halt(Halt::Signal));
        }
        Ok(())
    }

    /// The answer's bars, checked; forming and broken ones counted and said.
    fn page(&mut self, sym: &Symbol, answer: Answer, server_now: Option<u64>) -> Page {
        let now = server_now.unwrap_or_else(wall_ms);
        let mut bars = BTreeMap::new();
        let mut oldest: Option<u64> = None;
        let mut broken = 0u64;
        for raw in answer.bars {
            let checked = raw
                .map_err(|e| e.to_string())
                .and_then(|r| check(r, self.opts.interval).map_err(|e| e.to_string()));
            let k = match checked {
                Ok(k) => k,
                Err(why) => {
                    broken += 1;
                    if broken <= SAY_BROKEN {
                        self.progress
                            .note(&format!("{}: a bar dropped: {why}", sym.code));
                    }
                    continue;
                }
            };
            oldest = Some(oldest.map_or(k.start, |o| o.min(k.start)));
            if k.end > now {
                if self.forming == 0 {
                    self.progress.note(&format!(
                        "{}: the bar from {} is still forming on the server's clock: not written (said once; the summary counts them)",
                        sym.code,
                        iso(k.start)
                    ));
                }
                self.forming += 1;
                continue;
            }
            bars.insert(k.start, k);
        }
        if broken > SAY_BROKEN {
            self.progress.note(&format!(
                "{}: {broken} bars dropped in one answer",
                sym.code
            ));
        }
        self.dropped += broken;
        Page {
            bars: bars.into_values().collect(),
            oldest,
        }
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
