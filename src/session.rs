//! The session thread: owns the socket, and uses its read timeout as a clock.
//!
//! On every wake-up (a message, or the [`TICK`] timeout) it applies pending
//! stdin commands, sends a due heartbeat or the pending subscription set
//! (paced by [`Pacer`]), and declares the connection dead after
//! `stale_after` of silence. A lost connection is re-opened with
//! [`Backoff`] and the full set is sent again. Ticks go to the writer through
//! a bounded queue with `try_send`, so a slow stdout never stalls this thread.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::command::Command;
use crate::connect::{self, ConnectError, Ws};
use crate::feed::{self, Act, Feed, Kind, Reaction, list};
use crate::output::Batch;
use crate::protocol::{self, Incoming, Response, TradeView};
use crate::report::say;
use crate::scan::{self, Scan};
use crate::schedule::{Backoff, Due, Pacer};
use crate::stats::Stats;
use crate::subscriptions::Seen;
use crate::symbol::{self, Market, Symbol};

/// Longest the session sleeps in one read: bounds how late it notices a
/// stdin command or a stop request.
pub const TICK: Duration = Duration::from_millis(250);

/// A connection counts as healthy (and resets the backoff) after this long
/// with its subscription acknowledged and heartbeats answered.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// A request the server has not answered within this long is forgotten
/// (and a subscription is sent again): a server that ignores some requests
/// must not make the table of requests in flight grow.
pub const REQUEST_EXPIRY: Duration = Duration::from_secs(30);

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

/// A request waiting for its answer.
#[derive(Debug, Clone)]
struct InFlight {
    /// The request's cmd_id (22000, 22002, 22004, 22006).
    cmd: u64,
    /// The feed whose set it carried; `None` for a heartbeat.
    feed: Option<Kind>,
    /// The codes it carried.
    codes: Vec<String>,
    /// When it was sent.
    sent_at: Instant,
}

/// Requests in flight on one connection, and the matching of answers to
/// them. AllTick echoes `seq_id`, but its error example carries
/// `seq_id: 0`: an answer is matched by `seq_id` when that matches, and
/// otherwise by its cmd_id to the oldest request of that kind.
#[derive(Debug, Default)]
struct Requests {
    by_id: HashMap<u32, InFlight>,
}

impl Requests {
    fn sent(&mut self, seq_id: u32, req: InFlight) {
        self.by_id.insert(seq_id, req);
    }

    /// The request `r` answers, if any.
    fn answered(&mut self, r: &Response) -> Option<InFlight> {
        if let Some(req) = r
            .seq_id
            .and_then(|id| u32::try_from(id).ok())
            .and_then(|id| self.by_id.remove(&id))
        {
            return Some(req);
        }
        let cmd = r.cmd_id.checked_sub(1)?;
        let id = self
            .by_id
            .iter()
            .filter(|(_, q)| q.cmd == cmd)
            .min_by_key(|(id, q)| (q.sent_at, **id))
            .map(|(id, _)| *id)?;
        self.by_id.remove(&id)
    }

    /// Forget requests sent before `now - REQUEST_EXPIRY`; returns them.
    fn expire(&mut self, now: Instant) -> Vec<InFlight> {
        let old: Vec<u32> = self
            .by_id
            .iter()
            .filter(|(_, q)| now.duration_since(q.sent_at) >= REQUEST_EXPIRY)
            .map(|(id, _)| *id)
            .collect();
        old.into_iter()
            .filter_map(|id| self.by_id.remove(&id))
            .collect()
    }
}

/// The session: state that outlives single connections.
pub struct Session {
    cfg: SessionConfig,
    url_with_token: String,
    controls: Receiver<Control>,
    stop: Arc<AtomicBool>,
    out: Sender<Batch>,
    stats: Arc<Stats>,
    next_seq_id: u32,
    backoff: Backoff,
    drops: DropLog,
    /// The trade feed.
    trades: Feed,
    /// The depth feed.
    depth: Feed,
    /// Formatted ticks not yet handed to the writer.
    batch: Batch,
    /// A connection is open (for `?`).
    connected: bool,
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
        let (trade_syms, depth_syms) = by_kind(&cfg.initial);
        let mut trades = Feed::new(Kind::Trades);
        trades.add(&trade_syms);
        let mut depth = Feed::new(Kind::Depth);
        depth.add(&depth_syms);
        warn_market(cfg.market, &cfg.initial, "argument");
        Session {
            cfg,
            url_with_token,
            controls,
            stop,
            out,
            stats,
            next_seq_id: 1,
            backoff: Backoff::new(seed),
            drops: DropLog::default(),
            trades,
            depth,
            batch: Batch::default(),
            connected: false,
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
                Some(Err(ConnectError::RetryAfter { reason, min_wait })) => {
                    wait = self.backoff.next_delay().max(min_wait);
                    say(format!(
                        "cannot connect to {}: {reason}; retrying in {}",
                        self.cfg.url,
                        self.attempt_text(wait)
                    ));
                }
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
                    self.trades.on_disconnect();
                    self.depth.on_disconnect();
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
        let (trade_syms, depth_syms) = by_kind(symbols);
        let adding = matches!(command, Command::Add(_));
        let mut change = if adding {
            self.trades.add(&trade_syms)
        } else {
            self.trades.remove(&trade_syms)
        };
        if !depth_syms.is_empty() {
            let d = if adding {
                self.depth.add(&depth_syms)
            } else {
                self.depth.remove(&depth_syms)
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
                self.trades.codes().len(),
                self.depth.codes().len()
            ));
        }
    }

    /// Answer `?`: the wanted set and the set the server acknowledged.
    fn report_state(&self, line: u64) {
        let names = |feed: &Feed, codes: &[String]| -> String {
            if codes.is_empty() {
                "(none)".into()
            } else {
                codes
                    .iter()
                    .map(|c| feed.display(c))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        let link = if self.connected {
            "connected"
        } else {
            "not connected"
        };
        let (t, d) = (&self.trades, &self.depth);
        say(format!(
            "stdin:{line}: {link}; wanted {} trade symbols: {}; acknowledged by the server {}: {}; wanted {} depth symbols: {}; acknowledged {}: {}",
            t.codes().len(),
            names(t, t.codes()),
            t.server_set().len(),
            names(t, t.server_set()),
            d.codes().len(),
            names(d, d.codes()),
            d.server_set().len(),
            names(d, d.server_set())
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

    fn run_connection(&mut self, mut ws: Ws) -> ConnEnd {
        if let Err(e) = connect::tcp(&ws).set_read_timeout(Some(TICK)) {
            return lost(format!("socket setup failed: {e}"));
        }
        let opened = Instant::now();
        let mut pacer = Pacer::new(self.cfg.heartbeat, opened);
        let mut last_rx = opened;
        // A fresh connection has nothing subscribed.
        self.trades.on_connect();
        self.depth.on_connect();
        let mut in_flight = Requests::default();
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
                        let request = in_flight.answered(&r);
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
        in_flight: &mut Requests,
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
        Stats::set(&self.stats.trade_symbols, self.trades.codes().len() as u64);
        Stats::set(&self.stats.depth_symbols, self.depth.codes().len() as u64);
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
        for req in in_flight.expire(now) {
            if let Some(kind) = req.feed {
                say(format!(
                    "no answer to the {} subscription request after {} s; sending the set again",
                    kind.name(),
                    REQUEST_EXPIRY.as_secs()
                ));
                self.feed_mut(kind).resend();
            }
        }
        let trades_pending = self.trades.pending();
        let pending = trades_pending || self.depth.pending();
        match pacer.due(now, pending) {
            Due::Nothing => {}
            Due::Heartbeat => {
                let id = self.seq_id();
                let text = protocol::heartbeat(id, &format!("hb-{id}"));
                if let Err(e) = send(ws, text) {
                    return Some(lost(e));
                }
                in_flight.sent(
                    id,
                    InFlight {
                        cmd: protocol::CMD_HEARTBEAT,
                        feed: None,
                        codes: Vec::new(),
                        sent_at: now,
                    },
                );
                pacer.sent(Due::Heartbeat, now);
            }
            Due::Subscription => {
                let kind = if trades_pending {
                    Kind::Trades
                } else {
                    Kind::Depth
                };
                let id = self.seq_id();
                let max = self.cfg.max_symbols;
                let feed = self.feed_mut(kind);
                let (text, codes) = feed.take_request(id)?;
                let cmd = if codes.is_empty() {
                    protocol::CMD_CANCEL
                } else {
                    kind.request_cmd()
                };
                if let Some(w) = feed.plan_warning(&codes, max) {
                    say(w);
                }
                if let Err(e) = send(ws, text) {
                    return Some(lost(e));
                }
                pacer.sent(Due::Subscription, now);
                in_flight.sent(
                    id,
                    InFlight {
                        cmd,
                        feed: Some(kind),
                        codes,
                        sent_at: now,
                    },
                );
            }
        }
        None
    }

    fn feed_mut(&mut self, kind: Kind) -> &mut Feed {
        match kind {
            Kind::Trades => &mut self.trades,
            Kind::Depth => &mut self.depth,
        }
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

    /// Act on an answer from the server, given the request it answers.
    fn on_response(
        &mut self,
        r: &Response,
        request: Option<InFlight>,
        pacer: &mut Pacer,
        healthy_since: &mut Option<Instant>,
    ) -> Result<(), ConnEnd> {
        let reaction = match request {
            Some(InFlight {
                feed: Some(kind),
                codes,
                ..
            }) => {
                let max = self.cfg.max_symbols;
                let reaction = self.feed_mut(kind).on_answer(r.ret, &r.msg, codes, max);
                if reaction.act == Act::Nothing && matches!(r.ret, 200 | 201) {
                    healthy_since.get_or_insert_with(Instant::now);
                }
                if let Act::ResendAfter(d) = reaction.act {
                    pacer.delay_subscription_until(Instant::now() + d);
                    self.feed_mut(kind).resend();
                }
                reaction
            }
            _ => self.on_other_answer(r, healthy_since, pacer),
        };
        for note in reaction.notes {
            say(note);
        }
        match reaction.act {
            Act::Nothing | Act::ResendAfter(_) => Ok(()),
            Act::Reconnect { reason, min_wait } => Err(ConnEnd::Lost { reason, min_wait }),
            Act::Fatal(m) => Err(ConnEnd::Fatal(m)),
        }
    }

    /// An answer to a heartbeat, or one that matches no request in flight.
    fn on_other_answer(
        &mut self,
        r: &Response,
        healthy_since: &mut Option<Instant>,
        pacer: &mut Pacer,
    ) -> Reaction {
        let what = match r.cmd_id {
            protocol::CMD_HEARTBEAT_ACK => "heartbeat",
            protocol::CMD_SUB_TRADES_ACK => "trade subscription",
            protocol::CMD_CANCEL_ACK => "cancel",
            protocol::CMD_SUB_DEPTH_ACK => "depth subscription",
            _ => "request",
        };
        let meaning = protocol::ret_meaning(r.ret);
        let server_msg = if r.msg.is_empty() {
            String::new()
        } else {
            format!(" (server: {:?})", r.msg)
        };
        let nothing = |notes| Reaction {
            notes,
            act: Act::Nothing,
        };
        match r.ret {
            200 | 201 => {
                if r.cmd_id == protocol::CMD_HEARTBEAT_ACK && self.trades.codes().is_empty() {
                    healthy_since.get_or_insert_with(Instant::now);
                }
                nothing(Vec::new())
            }
            401 => Reaction {
                notes: Vec::new(),
                act: Act::Fatal(feed::TOKEN_REFUSED.into()),
            },
            429 | 605 => {
                // Not matched to a request: whichever it refused, sending
                // both sets again (paced) is safe and loses nothing.
                let d = feed::RATE_LIMIT_RETRY;
                pacer.delay_subscription_until(Instant::now() + d);
                self.trades.resend();
                self.depth.resend();
                nothing(vec![format!(
                    "{what} refused: ret {} {meaning}{server_msg}; resending the subscriptions in {} s",
                    r.ret,
                    d.as_secs()
                )])
            }
            606 => Reaction {
                notes: Vec::new(),
                act: Act::Reconnect {
                    reason: format!("ret 606 {meaning}{server_msg}"),
                    min_wait: feed::AFTER_606,
                },
            },
            _ => nothing(vec![format!(
                "{what} refused: ret {} {meaning}{server_msg}",
                r.ret
            )]),
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
                Ok(Incoming::Depth(d)) => self.forward_depth(&d, now),
                Ok(Incoming::BadDepth(why)) => self.invalid_depth(why, now),
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

    fn invalid_depth(&mut self, why: &'static str, now: Instant) {
        Stats::add(&self.stats.dropped_invalid_depth, 1);
        let total = Stats::get(&self.stats.dropped_invalid_depth);
        self.drops.note("invalid depth", now, || {
            format!("skipped an unreadable depth push ({why}); {total} depth pushes skipped so far")
        });
    }

    /// A push of `kind` passed de-duplication, or not: say what needs
    /// saying and return the label to write it under.
    fn dedupe<'a>(
        feed: &'a mut Feed,
        stats: &Stats,
        drops: &mut DropLog,
        code: &'a str,
        seq: u64,
        time: u64,
        now: Instant,
    ) -> Option<&'a str> {
        let kind = feed.kind();
        match feed.see(code, seq, time) {
            Seen::New(name) => Some(name),
            Seen::Unknown => Some(code),
            Seen::Restarted { name, first } => {
                Stats::add(&stats.seq_restarts, 1);
                if first {
                    say(format!(
                        "{name}: the server's {} seq numbering restarted (seq {seq} with a later time than the last one written); writing it",
                        kind.name()
                    ));
                }
                Some(name)
            }
            Seen::Repeat => {
                Stats::add(&stats.dropped_repeat, 1);
                let total = Stats::get(&stats.dropped_repeat);
                drops.note("repeat", now, || {
                    format!(
                        "skipped a {} push already written (seq and time not after the last written for {code}); {total} skipped so far",
                        kind.name()
                    )
                });
                None
            }
        }
    }

    /// Format a trade into the batch, unless it was already written.
    fn forward(&mut self, trade: &TradeView) {
        let now = Instant::now();
        let name = Self::dedupe(
            &mut self.trades,
            &self.stats,
            &mut self.drops,
            trade.code,
            trade.seq,
            trade.time,
            now,
        );
        if let Some(name) = name {
            self.batch.push_trade(name, trade);
        }
        if self.batch.bytes.len() >= BATCH_BYTES {
            self.flush_batch();
        }
    }

    /// Format a depth push into the batch, unless it was already written;
    /// count the levels the decoder dropped.
    fn forward_depth(&mut self, d: &protocol::Depth, now: Instant) {
        if d.bad_levels > 0 {
            Stats::add(&self.stats.bad_depth_levels, u64::from(d.bad_levels));
            let total = Stats::get(&self.stats.bad_depth_levels);
            let code = d.code.clone();
            self.drops.note("bad depth level", now, || {
                format!(
                    "dropped a bad depth level (zero or empty price, or a bad volume) from a book of {code}, kept the rest; {total} bad depth levels dropped so far"
                )
            });
        }
        let name = Self::dedupe(
            &mut self.depth,
            &self.stats,
            &mut self.drops,
            &d.code,
            d.seq,
            d.time,
            now,
        );
        if let Some(name) = name {
            self.batch.push_depth(name, d);
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

/// Split symbols into the trade feed's and the depth feed's.
fn by_kind(symbols: &[Symbol]) -> (Vec<Symbol>, Vec<Symbol>) {
    symbols
        .iter()
        .cloned()
        .partition(|s| s.feed == symbol::Feed::Trades)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cmd: u64, at: Instant) -> InFlight {
        InFlight {
            cmd,
            feed: (cmd != protocol::CMD_HEARTBEAT).then_some(Kind::Trades),
            codes: Vec::new(),
            sent_at: at,
        }
    }

    fn answer(cmd_id: u64, ret: i64, seq_id: Option<u64>) -> Response {
        Response {
            cmd_id,
            ret,
            msg: String::new(),
            seq_id,
        }
    }

    #[test]
    fn answers_match_by_seq_id_first() {
        let t0 = Instant::now();
        let mut q = Requests::default();
        q.sent(1, req(22004, t0));
        q.sent(2, req(22004, t0 + Duration::from_secs(2)));
        let got = q.answered(&answer(22005, 200, Some(2))).unwrap();
        assert_eq!(got.sent_at, t0 + Duration::from_secs(2));
        assert!(q.answered(&answer(22005, 200, Some(1))).is_some());
        assert!(q.answered(&answer(22005, 200, Some(1))).is_none());
    }

    #[test]
    fn answers_without_a_matching_seq_id_go_to_the_oldest_request_of_their_kind() {
        let t0 = Instant::now();
        let mut q = Requests::default();
        q.sent(5, req(22000, t0));
        q.sent(6, req(22004, t0 + Duration::from_secs(1)));
        q.sent(7, req(22004, t0 + Duration::from_secs(3)));
        // The docs' error example: seq_id 0.
        let got = q.answered(&answer(22005, 429, Some(0))).unwrap();
        assert_eq!(got.cmd, 22004);
        assert_eq!(got.sent_at, t0 + Duration::from_secs(1));
        // No seq_id at all.
        let got = q.answered(&answer(22005, 429, None)).unwrap();
        assert_eq!(got.sent_at, t0 + Duration::from_secs(3));
        // Nothing of that kind left: unmatched.
        assert!(q.answered(&answer(22005, 429, None)).is_none());
        assert!(q.answered(&answer(0, 429, None)).is_none());
        assert_eq!(q.answered(&answer(22001, 200, Some(0))).unwrap().cmd, 22000);
    }

    #[test]
    fn unanswered_requests_expire() {
        let t0 = Instant::now();
        let mut q = Requests::default();
        for id in 1..=100 {
            q.sent(id, req(22000, t0));
        }
        q.sent(101, req(22004, t0 + REQUEST_EXPIRY));
        assert!(q.expire(t0 + REQUEST_EXPIRY / 2).is_empty());
        let gone = q.expire(t0 + REQUEST_EXPIRY);
        assert_eq!(gone.len(), 100);
        assert_eq!(q.by_id.len(), 1);
        assert_eq!(q.expire(t0 + REQUEST_EXPIRY * 2).len(), 1);
        assert!(q.by_id.is_empty());
    }
}
