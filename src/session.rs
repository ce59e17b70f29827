//! The session thread: owns the socket, and uses its read timeout as a clock.
//!
//! On every wake-up (a message, or the [`TICK`] timeout) it applies pending
//! stdin commands, sends a due heartbeat or the pending subscription set
//! (paced by [`Pacer`]), and declares the connection dead after
//! `stale_after` of silence. A lost connection is re-opened with
//! [`Backoff`] and the full set is sent again. Ticks go to the writer through
//! a bounded queue with `try_send`, so a slow stdout never stalls this thread.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::command::Command;
use crate::connect::{self, ConnectError, Ws};
use crate::output::Batch;
use crate::protocol::{self, CancelType, Incoming, Response, TradeView};
use crate::report::say;
use crate::scan::{self, Scan};
use crate::schedule::{Backoff, Due, Pacer};
use crate::stats::Stats;
use crate::subscriptions::{Outbox, Seen, Subscriptions};
use crate::symbol::{Feed, Market, Symbol};

/// Longest the session sleeps in one read: bounds how late it notices a
/// stdin command or a stop request.
pub const TICK: Duration = Duration::from_millis(250);

/// A connection counts as healthy (and resets the backoff) after this long
/// with its subscription acknowledged and heartbeats answered.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// How long to wait after a rate-limit answer before resending the set.
pub const RATE_LIMIT_RETRY: Duration = Duration::from_secs(2);

/// Least wait before reconnecting after `ret` 606.
pub const AFTER_606: Duration = Duration::from_secs(3);

/// How long a full queue may hold up the session before new ticks are
/// dropped. Far below the heartbeat period, so the link stays alive.
pub const OVERFLOW_GRACE: Duration = Duration::from_millis(50);

/// A batch is handed to the writer at this size even mid-burst.
pub const BATCH_BYTES: usize = 32 * 1024;

/// How long a stop waits for the server's close reply.
pub const CLOSE_WAIT: Duration = Duration::from_millis(400);

/// Messages from the other threads to the session.
#[derive(Debug)]
pub enum Control {
    /// A stdin command, with its line number.
    Command {
        /// Line number on stdin, for notes.
        line: u64,
        /// The command.
        command: Command,
    },
    /// Wake up: the stop flag was set.
    Wake,
}

/// Settings of one session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Endpoint without the token, safe to print.
    pub url: String,
    /// The token to append, if any.
    pub token: Option<String>,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// Silence after which the connection is dead.
    pub stale_after: Duration,
    /// Bound on one connection attempt.
    pub connect_timeout: Duration,
    /// Symbols to subscribe at start.
    pub initial: Vec<Symbol>,
    /// Ticks the writer may fall behind before new ones are dropped.
    pub queue: usize,
    /// The plan's symbol limit, if the user stated it (`--max-symbols`).
    pub max_symbols: Option<usize>,
    /// The endpoint's market, when known: codes of the other market are
    /// flagged, since the server refuses them (ret 600).
    pub market: Option<Market>,
}

/// How the session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// Asked to stop; everything received was queued.
    Stopped,
    /// Cannot go on (the token was refused); the reason is for the user.
    Fatal(String),
}

/// How one connection ended.
enum ConnEnd {
    Lost { reason: String, min_wait: Duration },
    Stopped,
    Fatal(String),
}

/// The request we are waiting on, matched by seq_id.
#[derive(Debug)]
struct InFlight {
    kind: Due,
    codes: Vec<String>,
    /// A depth request (22002, or 22006 cancel_type 1).
    depth: bool,
}

/// The depth feed: a set of its own under the same replace-the-set rules
/// (22002, cancelled with 22006 cancel_type 1), sharing the connection's
/// request pacing with trades.
#[derive(Default)]
struct DepthFeed {
    subs: Subscriptions,
    /// Levels asked for, per code (`None`: the server's default).
    levels: HashMap<String, Option<u8>>,
    /// The set the server holds on this connection.
    server_set: Vec<String>,
    out: Outbox<Vec<(String, Option<u8>)>>,
}

impl DepthFeed {
    fn target(&self) -> Vec<(String, Option<u8>)> {
        self.subs
            .codes()
            .iter()
            .map(|c| (c.clone(), self.levels.get(c).copied().flatten()))
            .collect()
    }

    fn pending(&mut self) -> bool {
        if self.out.needs_target() {
            let target = self.target();
            self.out.offer(target);
        }
        self.out.is_pending()
    }

    fn add(&mut self, symbols: &[Symbol]) -> crate::subscriptions::Change {
        let mut change = self.subs.add(symbols);
        for s in symbols {
            let Feed::Depth(levels) = s.feed else {
                continue;
            };
            let old = self.levels.insert(s.code.clone(), levels);
            // A new level for a code already subscribed is a change too.
            if old.is_some_and(|o| o != levels) && !change.applied.contains(&s.spelling) {
                change.unchanged.retain(|u| *u != s.spelling);
                change.applied.push(s.spelling.clone());
            }
        }
        self.out.changed();
        change
    }

    fn remove(&mut self, symbols: &[Symbol]) -> crate::subscriptions::Change {
        self.out.changed();
        self.subs.remove(symbols)
    }

    fn on_connect(&mut self) {
        self.out.assume_sent(Some(Vec::new()));
        self.server_set.clear();
    }
}

/// The session: state that outlives single connections.
pub struct Session {
    cfg: SessionConfig,
    url_with_token: String,
    subs: Subscriptions,
    /// The set the server holds on this connection (last acknowledged).
    server_set: Vec<String>,
    /// Every code the server ever acknowledged: known to be valid.
    known_good: HashSet<String>,
    controls: Receiver<Control>,
    stop: Arc<AtomicBool>,
    out: Sender<Batch>,
    stats: Arc<Stats>,
    next_seq_id: u32,
    backoff: Backoff,
    drops: DropLog,
    /// Codes suspected of a 600/604 refusal, tried one at a time.
    probe: VecDeque<String>,
    /// What to send for the trade set.
    trades: Outbox<Vec<String>>,
    /// Formatted ticks not yet handed to the writer.
    batch: Batch,
    /// A connection is open (for `?`).
    connected: bool,
    /// The depth feed.
    depth: DepthFeed,
}

/// Rate-limited reports of dropped data: the first of a kind at once, then
/// at most one line per kind every [`DropLog::EVERY`], with running totals.
#[derive(Default)]
struct DropLog {
    last: HashMap<&'static str, Instant>,
}

impl DropLog {
    const EVERY: Duration = Duration::from_secs(10);

    fn note(&mut self, kind: &'static str, now: Instant, what: impl FnOnce() -> String) {
        let due = match self.last.get(kind) {
            None => true,
            Some(at) => now >= *at + Self::EVERY,
        };
        if due {
            say(what());
            self.last.insert(kind, now);
        }
    }
}

impl Session {
    /// A session that will read controls from `controls`, stop when `stop`
    /// is set, and queue ticks on `out`.
    pub fn new(
        cfg: SessionConfig,
        controls: Receiver<Control>,
        stop: Arc<AtomicBool>,
        out: Sender<Batch>,
        stats: Arc<Stats>,
    ) -> Session {
        let url_with_token = match &cfg.token {
            Some(t) => {
                let sep = if cfg.url.contains('?') { '&' } else { '?' };
                format!("{}{}token={}", cfg.url, sep, crate::cli::url_encode(t))
            }
            None => cfg.url.clone(),
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7)
            ^ u64::from(std::process::id()).rotate_left(32);
        let (trades, depths): (Vec<Symbol>, Vec<Symbol>) = cfg
            .initial
            .iter()
            .cloned()
            .partition(|s| s.feed == Feed::Trades);
        let mut subs = Subscriptions::new();
        subs.add(&trades);
        let mut depth = DepthFeed::default();
        depth.add(&depths);
        warn_market(cfg.market, &cfg.initial, "argument");
        Session {
            cfg,
            url_with_token,
            subs,
            server_set: Vec::new(),
            known_good: HashSet::new(),
            probe: VecDeque::new(),
            controls,
            stop,
            out,
            stats,
            next_seq_id: 1,
            backoff: Backoff::new(seed),
            drops: DropLog::default(),
            trades: Outbox::default(),
            batch: Batch::default(),
            connected: false,
            depth,
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Run until stopped or a fatal error.
    pub fn run(mut self) -> SessionEnd {
        let mut wait = Duration::ZERO;
        loop {
            if !wait.is_zero() && !self.idle_for(wait) {
                return SessionEnd::Stopped;
            }
            if self.stopping() {
                return SessionEnd::Stopped;
            }
            match self.connect() {
                None => return SessionEnd::Stopped,
                Some(Err(ConnectError::Fatal(m))) => return SessionEnd::Fatal(m),
                Some(Err(ConnectError::Retry(m))) => {
                    wait = self.backoff.next_delay();
                    say(format!(
                        "cannot connect to {}: {m}; retrying in {}",
                        self.cfg.url,
                        self.attempt_text(wait)
                    ));
                }
                Some(Ok(ws)) => {
                    say(format!("connected to {}", self.cfg.url));
                    self.connected = true;
                    Stats::set(&self.stats.connected, 1);
                    let end = self.run_connection(ws);
                    self.connected = false;
                    self.server_set.clear();
                    Stats::set(&self.stats.connected, 0);
                    // Whatever was read before the end goes out.
                    self.flush_batch();
                    match end {
                        ConnEnd::Stopped => return SessionEnd::Stopped,
                        ConnEnd::Fatal(m) => return SessionEnd::Fatal(m),
                        ConnEnd::Lost { reason, min_wait } => {
                            Stats::add(&self.stats.reconnects, 1);
                            wait = self.backoff.next_delay().max(min_wait);
                            say(format!(
                                "connection lost: {reason}; reconnecting in {}",
                                self.attempt_text(wait)
                            ));
                        }
                    }
                }
            }
        }
    }

    fn attempt_text(&self, wait: Duration) -> String {
        format!(
            "{:.1} s (attempt {})",
            wait.as_secs_f64(),
            self.backoff.attempts()
        )
    }

    /// One connection attempt on a helper thread, so that a stop request is
    /// honoured at once even while TCP or TLS is still handshaking. `None`
    /// means we were asked to stop (the attempt is abandoned; it ends by
    /// itself within the connect timeout).
    fn connect(&mut self) -> Option<Result<Ws, ConnectError>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let url = self.url_with_token.clone();
        let timeout = self.cfg.connect_timeout;
        let spawned = std::thread::Builder::new()
            .name("connect".into())
            .spawn(move || {
                let _ = tx.send(connect::connect(&url, timeout));
            });
        if let Err(e) = spawned {
            return Some(Err(ConnectError::Retry(format!(
                "cannot start a thread: {e}"
            ))));
        }
        loop {
            if self.stopping() {
                return None;
            }
            crossbeam_channel::select! {
                recv(rx) -> r => return Some(r.unwrap_or_else(|_| {
                    Err(ConnectError::Retry("the connect attempt failed".into()))
                })),
                recv(self.controls) -> c => match c {
                    Ok(c) => self.apply(c),
                    // No more controls: wait on the attempt alone, in ticks.
                    Err(_) => {
                        if let Ok(r) = rx.recv_timeout(TICK) {
                            return Some(r);
                        }
                    }
                },
            }
        }
    }

    /// Wait `d` while applying stdin commands. False when asked to stop.
    fn idle_for(&mut self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if self.stopping() {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            match self.controls.recv_timeout(left) {
                Ok(c) => self.apply(c),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => return true,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    // Nobody can send controls any more; wait in ticks so a
                    // stop request is still seen.
                    std::thread::sleep(left.min(TICK));
                }
            }
        }
    }

    fn apply(&mut self, control: Control) {
        let Control::Command { line, command } = control else {
            return;
        };
        if let Command::Add(symbols) = &command {
            warn_market(self.cfg.market, symbols, &format!("stdin:{line}"));
        }
        let (verb, state, symbols) = match &command {
            Command::Add(symbols) => ("added", "already subscribed", symbols),
            Command::Remove(symbols) => ("removed", "not subscribed", symbols),
            Command::Query => {
                self.report_state(line);
                return;
            }
        };
        let (trades, depths): (Vec<Symbol>, Vec<Symbol>) = symbols
            .iter()
            .cloned()
            .partition(|s| s.feed == Feed::Trades);
        let adding = matches!(command, Command::Add(_));
        let mut change = if adding {
            self.subs.add(&trades)
        } else {
            self.subs.remove(&trades)
        };
        if !change.applied.is_empty() {
            self.trades.changed();
        }
        if !depths.is_empty() {
            let d = if adding {
                self.depth.add(&depths)
            } else {
                self.depth.remove(&depths)
            };
            change
                .applied
                .extend(d.applied.into_iter().map(|s| format!("{s}@depth")));
            change
                .unchanged
                .extend(d.unchanged.into_iter().map(|s| format!("{s}@depth")));
        }
        for s in &change.unchanged {
            say(format!("stdin:{line}: note: {s} is {state}"));
        }
        if !change.applied.is_empty() {
            say(format!(
                "stdin:{line}: {verb} {}; {} trade and {} depth symbols wanted",
                list(&change.applied),
                self.subs.codes().len(),
                self.depth.subs.codes().len()
            ));
        }
    }

    /// Answer `?`: the wanted set and the set the server acknowledged.
    fn report_state(&self, line: u64) {
        let names = |codes: &[String]| -> String {
            if codes.is_empty() {
                "(none)".into()
            } else {
                codes
                    .iter()
                    .map(|c| self.subs.display(c))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        let link = if self.connected {
            "connected"
        } else {
            "not connected"
        };
        let depth_names = |codes: &[String]| -> String {
            if codes.is_empty() {
                "(none)".into()
            } else {
                codes
                    .iter()
                    .map(|c| self.depth.subs.display(c))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        say(format!(
            "stdin:{line}: {link}; wanted {} trade symbols: {}; acknowledged by the server {}: {}; wanted {} depth symbols: {}; acknowledged {}: {}",
            self.subs.codes().len(),
            names(self.subs.codes()),
            self.server_set.len(),
            names(&self.server_set),
            self.depth.subs.codes().len(),
            depth_names(self.depth.subs.codes()),
            self.depth.server_set.len(),
            depth_names(&self.depth.server_set)
        ));
    }

    fn drain_controls(&mut self) {
        while let Ok(c) = self.controls.try_recv() {
            self.apply(c);
        }
    }

    fn seq_id(&mut self) -> u32 {
        let id = self.next_seq_id;
        self.next_seq_id = self.next_seq_id.wrapping_add(1).max(1);
        id
    }

    /// The set to have on the server now: the wanted set, or while suspects
    /// are being tried, the known-good part of it plus the next suspect.
    fn target(&mut self) -> Vec<String> {
        while let Some(front) = self.probe.front() {
            if self.subs.contains(front) {
                let mut t: Vec<String> = self
                    .subs
                    .codes()
                    .iter()
                    .filter(|c| self.known_good.contains(*c))
                    .cloned()
                    .collect();
                t.push(front.clone());
                return t;
            }
            self.probe.pop_front();
        }
        self.subs.codes().to_vec()
    }

    /// The set to send, if it differs from the one last sent. Recomputed
    /// only after something changed, so the hot path costs a flag check.
    fn pending_subscription(&mut self) -> bool {
        if self.trades.needs_target() {
            let target = self.target();
            self.trades.offer(target);
        }
        self.trades.is_pending()
    }

    fn run_connection(&mut self, mut ws: Ws) -> ConnEnd {
        if let Err(e) = connect::tcp(&ws).set_read_timeout(Some(TICK)) {
            return lost(format!("socket setup failed: {e}"));
        }
        let opened = Instant::now();
        let mut pacer = Pacer::new(self.cfg.heartbeat, opened);
        let mut last_rx = opened;
        // A fresh connection has nothing subscribed.
        self.trades.assume_sent(Some(Vec::new()));
        self.server_set.clear();
        self.depth.on_connect();
        let mut in_flight: HashMap<u32, InFlight> = HashMap::new();
        let mut healthy_since: Option<Instant> = None;
        let mut close_reason: Option<String> = None;
        // True while the socket is non-blocking to drain a burst.
        let mut draining = false;
        // Messages read since the last housekeeping; while draining a burst,
        // housekeeping (clock, controls, requests) runs every 64 messages.
        let mut burst: u32 = 0;
        let mut got_any = false;
        let mut now = opened;

        loop {
            burst = burst.wrapping_add(1);
            if (!draining || burst.is_multiple_of(64))
                && let Some(end) = self.housekeeping(
                    &mut ws,
                    &mut now,
                    &mut got_any,
                    &mut last_rx,
                    &mut pacer,
                    &mut in_flight,
                    healthy_since,
                )
            {
                return match end {
                    ConnEnd::Stopped => self.close(ws),
                    other => other,
                };
            }

            let msg = match ws.read() {
                Ok(m) => m,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if draining {
                        // The burst is over: hand it to the writer and go
                        // back to waiting with the read timeout as the clock.
                        self.flush_batch();
                        draining = false;
                        if let Err(e) = connect::tcp(&ws).set_nonblocking(false) {
                            return lost(format!("socket setup failed: {e}"));
                        }
                    }
                    continue;
                }
                Err(tungstenite::Error::ConnectionClosed) => {
                    return lost(
                        close_reason.unwrap_or_else(|| "the server closed the connection".into()),
                    );
                }
                Err(e) => return lost(self.read_failure(&e)),
            };
            got_any = true;
            match msg {
                Message::Text(text) => {
                    if let Some(r) = self.on_text(text.as_str(), now) {
                        let request = r.seq_id.and_then(|id| in_flight.remove(&(id as u32)));
                        if let Err(end) =
                            self.on_response(&r, request, &mut pacer, &mut healthy_since)
                        {
                            return end;
                        }
                    }
                }
                Message::Binary(_) => self.garbage("unexpected binary frame", now),
                Message::Close(frame) => {
                    close_reason = Some(match frame {
                        Some(f) if f.code == CloseCode::Normal && f.reason.is_empty() => {
                            "the server closed the connection (code 1000, no reason)".into()
                        }
                        Some(f) => format!(
                            "the server closed the connection (code {}{}{})",
                            u16::from(f.code),
                            if f.reason.is_empty() { "" } else { ": " },
                            f.reason.chars().take(100).collect::<String>()
                        ),
                        None => "the server closed the connection (no close code)".into(),
                    });
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
            // Ticks are waiting: read on without blocking until the socket
            // is empty, then hand them over in one batch.
            if !draining && !self.batch.is_empty() {
                if let Err(e) = connect::tcp(&ws).set_nonblocking(true) {
                    return lost(format!("socket setup failed: {e}"));
                }
                draining = true;
            }
        }
    }

    /// The clock's work on each wake-up: stdin commands, a stop request,
    /// liveness, the backoff reset, and a due heartbeat or subscription.
    #[allow(clippy::too_many_arguments)]
    fn housekeeping(
        &mut self,
        ws: &mut Ws,
        now: &mut Instant,
        got_any: &mut bool,
        last_rx: &mut Instant,
        pacer: &mut Pacer,
        in_flight: &mut HashMap<u32, InFlight>,
        healthy_since: Option<Instant>,
    ) -> Option<ConnEnd> {
        self.drain_controls();
        if self.stopping() {
            return Some(ConnEnd::Stopped);
        }
        *now = Instant::now();
        let now = *now;
        if std::mem::take(got_any) {
            *last_rx = now;
            Stats::set(&self.stats.last_message_ms, Stats::now_ms());
        }
        Stats::set(&self.stats.trade_symbols, self.subs.codes().len() as u64);
        Stats::set(
            &self.stats.depth_symbols,
            self.depth.subs.codes().len() as u64,
        );
        if now.duration_since(*last_rx) >= self.cfg.stale_after {
            return Some(lost(format!(
                "nothing received for {} s (no heartbeat replies)",
                self.cfg.stale_after.as_secs_f64()
            )));
        }
        if let Some(t) = healthy_since
            && now.duration_since(t) >= HEALTHY_AFTER
            && self.backoff.attempts() > 0
        {
            self.backoff.reset();
        }

        // A request that met a full socket buffer is still inside
        // tungstenite: push it out before anything else.
        match ws.flush() {
            Err(tungstenite::Error::Io(e))
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Some(lost(format!("sending failed: {e}")));
            }
            // Closed connections and the like surface on the next read,
            // with their reason.
            _ => {}
        }
        let trades_pending = self.pending_subscription();
        let pending = trades_pending || self.depth.pending();
        match pacer.due(now, pending) {
            Due::Nothing => {}
            Due::Heartbeat => {
                let id = self.seq_id();
                let text = protocol::heartbeat(id, &format!("hb-{id}"));
                if let Err(e) = send(ws, text) {
                    return Some(lost(e));
                }
                in_flight.insert(
                    id,
                    InFlight {
                        kind: Due::Heartbeat,
                        codes: Vec::new(),
                        depth: false,
                    },
                );
                pacer.sent(Due::Heartbeat, now);
            }
            Due::Subscription if !trades_pending => {
                let set = self.depth.out.take().unwrap_or_default();
                let id = self.seq_id();
                let text = if set.is_empty() {
                    protocol::cancel(id, &format!("cancel-{id}"), CancelType::Depth)
                } else {
                    protocol::subscribe_depth(
                        id,
                        &format!("depth-{id}"),
                        set.iter().map(|(c, l)| (c.as_str(), *l)),
                    )
                };
                if let Err(e) = send(ws, text) {
                    return Some(lost(e));
                }
                pacer.sent(Due::Subscription, now);
                let codes = set.iter().map(|(c, _)| c.clone()).collect();
                in_flight.insert(
                    id,
                    InFlight {
                        kind: Due::Subscription,
                        codes,
                        depth: true,
                    },
                );
            }
            Due::Subscription => {
                let codes = self.trades.take().unwrap_or_default();
                self.warn_plan_limit(&codes);
                let id = self.seq_id();
                let text = if codes.is_empty() {
                    protocol::cancel(id, &format!("cancel-{id}"), CancelType::Trades)
                } else {
                    protocol::subscribe_trades(
                        id,
                        &format!("sub-{id}"),
                        codes.iter().map(String::as_str),
                    )
                };
                if let Err(e) = send(ws, text) {
                    return Some(lost(e));
                }
                pacer.sent(Due::Subscription, now);
                in_flight.insert(
                    id,
                    InFlight {
                        kind: Due::Subscription,
                        codes,
                        depth: false,
                    },
                );
            }
        }
        None
    }

    /// Describe a read error that ends the connection; frames that broke
    /// the rules (too large, bad UTF-8) also count as unreadable.
    fn read_failure(&mut self, e: &tungstenite::Error) -> String {
        match e {
            tungstenite::Error::Capacity(_) | tungstenite::Error::Utf8(_) => {
                Stats::add(&self.stats.garbage_frames, 1);
                format!("{} (frame refused)", connect::describe(e))
            }
            tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionReset => {
                "the connection was reset (TCP RST)".into()
            }
            tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ) => "the server dropped the connection without a close frame".into(),
            _ => connect::describe(e),
        }
    }

    fn garbage(&mut self, why: &'static str, now: Instant) {
        Stats::add(&self.stats.garbage_frames, 1);
        let total = Stats::get(&self.stats.garbage_frames);
        self.drops.note("garbage", now, || {
            format!("skipped an unreadable frame ({why}); {total} skipped so far")
        });
    }

    /// Warn before sending more codes than the plan allows (`--max-symbols`):
    /// real servers may ignore the excess silently.
    fn warn_plan_limit(&self, codes: &[String]) {
        let Some(max) = self.cfg.max_symbols else {
            return;
        };
        if codes.len() > max {
            let over: Vec<String> = codes[max..].iter().map(|c| self.subs.display(c)).collect();
            say(format!(
                "sending {} codes but --max-symbols is {max}: the server will likely ignore {}",
                codes.len(),
                list(&over)
            ));
        }
    }

    fn on_response(
        &mut self,
        r: &Response,
        request: Option<InFlight>,
        pacer: &mut Pacer,
        healthy_since: &mut Option<Instant>,
    ) -> Result<(), ConnEnd> {
        let what = match r.cmd_id {
            protocol::CMD_HEARTBEAT_ACK => "heartbeat",
            protocol::CMD_SUB_TRADES_ACK => "trade subscription",
            protocol::CMD_CANCEL_ACK => "cancel",
            protocol::CMD_SUB_DEPTH_ACK => "depth subscription",
            _ => "request",
        };
        let sub_codes = match request {
            Some(InFlight {
                kind: Due::Subscription,
                codes,
                depth: true,
            }) => return self.on_depth_response(r, codes, pacer),
            Some(InFlight {
                kind: Due::Subscription,
                codes,
                ..
            }) => Some(codes),
            _ => None,
        };
        if r.ret == 200 {
            if let Some(codes) = sub_codes {
                self.report_ack(&codes);
                if self.probe.front().is_some_and(|p| codes.contains(p)) {
                    self.probe.pop_front();
                    self.trades.changed();
                }
                self.known_good.extend(codes.iter().cloned());
                self.server_set = codes;
                healthy_since.get_or_insert_with(Instant::now);
            } else if r.cmd_id == protocol::CMD_HEARTBEAT_ACK && self.subs.codes().is_empty() {
                healthy_since.get_or_insert_with(Instant::now);
            }
            return Ok(());
        }
        let meaning = protocol::ret_meaning(r.ret);
        let server_msg = if r.msg.is_empty() {
            String::new()
        } else {
            format!(" (server: {:?})", r.msg)
        };
        match r.ret {
            401 => Err(ConnEnd::Fatal(
                "the server refused the token (ret 401 token invalid); check ALLTICK_TOKEN or --token-file".to_string(),
            )),
            429 | 605 => {
                if sub_codes.is_some() {
                    say(format!(
                        "{what} refused: ret {} {meaning}{server_msg}; resending the full set in {} s",
                        r.ret,
                        RATE_LIMIT_RETRY.as_secs()
                    ));
                    pacer.delay_subscription_until(Instant::now() + RATE_LIMIT_RETRY);
                    // The server did not take this set: send it again.
                    self.trades.assume_sent(None);
                } else {
                    say(format!("{what} refused: ret {} {meaning}{server_msg}", r.ret));
                }
                Ok(())
            }
            606 => Err(ConnEnd::Lost {
                reason: format!("ret 606 {meaning}{server_msg}"),
                min_wait: AFTER_606,
            }),
            603 => {
                // Resending the same set would be refused again: wait for
                // the user to change it.
                self.trades.assume_sent(sub_codes.clone());
                let n = sub_codes.map(|c| c.len()).unwrap_or(0);
                let limit = self
                    .cfg
                    .max_symbols
                    .map(|m| format!(" (--max-symbols says {m})"))
                    .unwrap_or_default();
                say(format!(
                    "{what} refused: ret 603 {meaning}{server_msg}: {n} codes were sent{limit}; the server keeps the previous set; remove symbols to go on"
                ));
                Ok(())
            }
            600 | 604 => {
                match sub_codes {
                    Some(codes) => self.refused_codes(r.ret, meaning, &codes),
                    None => say(format!("{what} refused: ret {} {meaning}{server_msg}", r.ret)),
                }
                Ok(())
            }
            _ => {
                say(format!(
                    "{what} refused: ret {} {meaning}{server_msg}",
                    r.ret
                ));
                Ok(())
            }
        }
    }

    /// The answer to a depth request. Refusals are reported with their
    /// meaning; rate limits resend the full depth set; nothing loops.
    fn on_depth_response(
        &mut self,
        r: &Response,
        codes: Vec<String>,
        pacer: &mut Pacer,
    ) -> Result<(), ConnEnd> {
        let meaning = protocol::ret_meaning(r.ret);
        match r.ret {
            200 => {
                if codes.is_empty() {
                    say("depth subscriptions cancelled (0 symbols)");
                } else {
                    say(format!(
                        "depth subscribed for {} symbols ({})",
                        codes.len(),
                        list(&codes
                            .iter()
                            .map(|c| self.depth.subs.display(c))
                            .collect::<Vec<_>>())
                    ));
                }
                self.depth.server_set = codes;
                Ok(())
            }
            401 => Err(ConnEnd::Fatal(
                "the server refused the token (ret 401 token invalid); check ALLTICK_TOKEN or --token-file".to_string(),
            )),
            429 | 605 => {
                say(format!(
                    "depth subscription refused: ret {} {meaning}; resending the full depth set in {} s",
                    r.ret,
                    RATE_LIMIT_RETRY.as_secs()
                ));
                pacer.delay_subscription_until(Instant::now() + RATE_LIMIT_RETRY);
                self.depth.out.assume_sent(None);
                Ok(())
            }
            606 => Err(ConnEnd::Lost {
                reason: format!("ret 606 {meaning}"),
                min_wait: AFTER_606,
            }),
            _ => {
                say(format!(
                    "depth subscription refused: ret {} {meaning}; {} codes were sent; keeping the set until it changes",
                    r.ret,
                    codes.len()
                ));
                Ok(())
            }
        }
    }

    /// A subscription was refused for a bad code (600/604) without saying
    /// which. The codes it added over the last acknowledged set are the
    /// suspects: one is dropped at once; several are tried one at a time.
    fn refused_codes(&mut self, ret: i64, meaning: &str, codes: &[String]) {
        // The server keeps the set it had.
        self.trades.assume_sent(Some(self.server_set.clone()));
        // While probing, the request carried exactly one suspect.
        let probed = self.probe.front().filter(|p| codes.contains(p)).cloned();
        let suspects: Vec<String> = match probed {
            Some(p) => {
                self.probe.pop_front();
                vec![p]
            }
            None => codes
                .iter()
                .filter(|c| !self.known_good.contains(*c))
                .cloned()
                .collect(),
        };
        match suspects.as_slice() {
            [] => {
                // Resending it would be refused again: wait for a change.
                self.trades.assume_sent(Some(codes.to_vec()));
                say(format!(
                    "trade subscription refused: ret {ret} {meaning}, though every code in it was accepted before; keeping the set until it changes"
                ));
            }
            [bad] => {
                let name = self.subs.display(bad);
                self.subs.drop_code(bad);
                say(format!(
                    "{name} refused by the server (ret {ret} {meaning}); dropped it from the set, {} symbols remain",
                    self.subs.codes().len()
                ));
            }
            many => {
                say(format!(
                    "trade subscription refused: ret {ret} {meaning}; trying the {} new codes one at a time to find the bad ones",
                    many.len()
                ));
                self.probe = many.iter().cloned().collect();
            }
        }
    }

    fn report_ack(&self, codes: &[String]) {
        let before: HashSet<&str> = self.server_set.iter().map(String::as_str).collect();
        let after: HashSet<&str> = codes.iter().map(String::as_str).collect();
        let added: Vec<String> = codes
            .iter()
            .filter(|c| !before.contains(c.as_str()))
            .map(|c| format!("+{}", self.subs.display(c)))
            .collect();
        let removed: Vec<String> = self
            .server_set
            .iter()
            .filter(|c| !after.contains(c.as_str()))
            .map(|c| format!("-{}", self.subs.display(c)))
            .collect();
        let mut changes = added;
        changes.extend(removed);
        if codes.is_empty() {
            say("trade subscriptions cancelled (0 symbols)");
        } else {
            say(format!(
                "subscribed to {} symbols{}",
                codes.len(),
                if changes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", list(&changes))
                }
            ));
        }
    }

    /// Handle a text frame. Trades go into the batch (fast path first);
    /// a response is returned for the caller to act on.
    fn on_text(&mut self, text: &str, now: Instant) -> Option<Response> {
        match scan::scan(text) {
            Scan::Trade(raw) => match protocol::validate(&raw) {
                Ok(view) => self.forward(&view),
                Err(why) => self.invalid(why, now),
            },
            Scan::Other => match protocol::decode(text) {
                Ok(Incoming::Trade(trade)) => self.forward(&trade.view()),
                Ok(Incoming::BadTrade(why)) => self.invalid(why, now),
                Ok(Incoming::Depth(d)) => self.forward_depth(&d),
                Ok(Incoming::BadDepth(why)) => self.invalid(why, now),
                Ok(Incoming::Response(r)) => return Some(r),
                Ok(Incoming::Other { cmd_id }) => self.garbage(
                    match cmd_id {
                        Some(_) => "unknown cmd_id",
                        None => "no cmd_id",
                    },
                    now,
                ),
                Err(why) => self.garbage(why, now),
            },
        }
        None
    }

    fn invalid(&mut self, why: &'static str, now: Instant) {
        Stats::add(&self.stats.dropped_invalid, 1);
        let total = Stats::get(&self.stats.dropped_invalid);
        self.drops.note("invalid", now, || {
            format!("skipped an invalid trade ({why}); {total} invalid trades skipped so far")
        });
    }

    /// Format a trade into the batch, unless it was already written.
    fn forward(&mut self, trade: &TradeView) {
        match self.subs.see(trade.code, trade.seq) {
            Seen::New(name) => self.batch.push_trade(name, trade),
            Seen::Unknown => self.batch.push_trade(trade.code, trade),
            Seen::Repeat => {
                Stats::add(&self.stats.dropped_repeat, 1);
                let total = Stats::get(&self.stats.dropped_repeat);
                self.drops.note("repeat", Instant::now(), || {
                    format!(
                        "skipped a trade already written (same or lower seq for {}); {total} skipped so far",
                        trade.code
                    )
                });
            }
        }
        if self.batch.bytes.len() >= BATCH_BYTES {
            self.flush_batch();
        }
    }

    /// Format a depth push into the batch, unless it was already written.
    fn forward_depth(&mut self, d: &protocol::Depth) {
        match self.depth.subs.see(&d.code, d.seq) {
            Seen::New(name) => self.batch.push_depth(name, d),
            Seen::Unknown => self.batch.push_depth(&d.code, d),
            Seen::Repeat => {
                Stats::add(&self.stats.dropped_repeat, 1);
                return;
            }
        }
        if self.batch.bytes.len() >= BATCH_BYTES {
            self.flush_batch();
        }
    }

    /// Hand the batch to the writer; if the writer is `--queue` ticks
    /// behind, drop it (the newest ticks) and count them.
    fn flush_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let n = batch.ticks;
        Stats::add(&self.stats.received, n);
        // A writer that is momentarily behind (descheduled on a busy
        // machine) gets a short grace: meanwhile the kernel's socket buffer
        // holds what arrives, and nothing is lost. Only a writer that stays
        // behind costs ticks.
        let limit = self.cfg.queue as u64;
        let full = self.stats.unwritten() + n > limit
            && !self.stats.wait_for_room(n, limit, OVERFLOW_GRACE);
        let sent = if full {
            Err(n)
        } else {
            match self.out.try_send(batch) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(n),
                // The writer is gone (stdout closed): nothing to count.
                Err(TrySendError::Disconnected(_)) => Ok(()),
            }
        };
        match sent {
            Ok(()) => Stats::add(&self.stats.queued, n),
            Err(n) => {
                Stats::add(&self.stats.dropped_overflow, n);
                let total = Stats::get(&self.stats.dropped_overflow);
                let cap = self.cfg.queue;
                self.drops.note("overflow", Instant::now(), || {
                    format!(
                        "output queue full ({cap} ticks): stdout is not keeping up; dropping new ticks, {total} dropped so far"
                    )
                });
            }
        }
    }

    /// Send a close frame and keep reading (bounded) until the server's
    /// reply, so every tick it sent before seeing our close is kept.
    fn close(&mut self, mut ws: Ws) -> ConnEnd {
        let _ = connect::tcp(&ws).set_nonblocking(false);
        let _ = connect::tcp(&ws).set_read_timeout(Some(Duration::from_millis(50)));
        let _ = ws.close(None);
        let until = Instant::now() + CLOSE_WAIT;
        while Instant::now() < until {
            match ws.read() {
                Ok(Message::Text(text)) => {
                    let _ = self.on_text(text.as_str(), Instant::now());
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let _ = ws.flush();
                }
                Err(_) => break,
            }
        }
        ConnEnd::Stopped
    }
}

/// Flag codes that belong to the other endpoint.
fn warn_market(market: Option<Market>, symbols: &[Symbol], place: &str) {
    let Some(market) = market else { return };
    for s in symbols {
        if Market::of_code(&s.code) != market {
            say(format!(
                "{place}: note: {} looks like a {} code but this is the {} endpoint; the server will likely refuse it (ret 600); see --market",
                s.spelling,
                Market::of_code(&s.code).name(),
                market.name()
            ));
        }
    }
}

fn lost(reason: impl Into<String>) -> ConnEnd {
    ConnEnd::Lost {
        reason: reason.into(),
        min_wait: Duration::ZERO,
    }
}

/// Send one text frame and flush it. A write that times out leaves the frame
/// buffered inside tungstenite; it goes out with the next flush.
fn send(ws: &mut Ws, text: String) -> Result<(), String> {
    match ws.send(Message::text(text)) {
        Ok(()) => Ok(()),
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(format!("sending failed: {}", connect::describe(&e))),
    }
}

/// A short list for messages: the first few items, then a count.
fn list(items: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}
