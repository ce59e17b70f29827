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
use crate::output::OutTick;
use crate::protocol::{self, CancelType, Incoming, Response};
use crate::report::say;
use crate::schedule::{Backoff, Due, Pacer};
use crate::stats::Stats;
use crate::subscriptions::Subscriptions;
use crate::symbol::{Market, Symbol};

/// Longest the session sleeps in one read: bounds how late it notices a
/// stdin command or a stop request.
pub const TICK: Duration = Duration::from_millis(100);

/// A connection counts as healthy (and resets the backoff) after this long
/// with its subscription acknowledged and heartbeats answered.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// How long to wait after a rate-limit answer before resending the set.
pub const RATE_LIMIT_RETRY: Duration = Duration::from_secs(2);

/// Least wait before reconnecting after `ret` 606.
pub const AFTER_606: Duration = Duration::from_secs(3);

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
}

/// The session: state that outlives single connections.
pub struct Session {
    cfg: SessionConfig,
    url_with_token: String,
    subs: Subscriptions,
    /// The set the server last acknowledged (for messages).
    acked: Vec<String>,
    controls: Receiver<Control>,
    stop: Arc<AtomicBool>,
    out: Sender<OutTick>,
    stats: Arc<Stats>,
    next_seq_id: u32,
    backoff: Backoff,
    drops: DropLog,
    /// The set last sent on this connection; `None` forces a resend.
    sent_codes: Option<Vec<String>>,
    /// `subs.generation()` when `sent_codes` was last compared with it.
    sent_generation: u64,
}

/// Rate-limited reports of dropped data: the first of a kind at once, then
/// at most one line per kind every [`DropLog::EVERY`], with running totals.
#[derive(Default)]
struct DropLog {
    last: HashMap<&'static str, (Instant, u64)>,
}

impl DropLog {
    const EVERY: Duration = Duration::from_secs(10);

    fn note(
        &mut self,
        kind: &'static str,
        total: u64,
        now: Instant,
        what: impl FnOnce() -> String,
    ) {
        let due = match self.last.get(kind) {
            None => true,
            Some((at, _)) => now >= *at + Self::EVERY,
        };
        if due {
            say(what());
            self.last.insert(kind, (now, total));
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
        out: Sender<OutTick>,
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
        let mut subs = Subscriptions::new();
        subs.add(&cfg.initial);
        warn_market(cfg.market, &cfg.initial, "argument");
        Session {
            cfg,
            url_with_token,
            subs,
            acked: Vec::new(),
            controls,
            stop,
            out,
            stats,
            next_seq_id: 1,
            backoff: Backoff::new(seed),
            drops: DropLog::default(),
            sent_codes: None,
            sent_generation: 0,
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Run until stopped or a fatal error.
    pub fn run(mut self) -> SessionEnd {
        let mut wait = Duration::ZERO;
        loop {
            if !wait.is_zero() {
                say(format!(
                    "reconnecting in {:.1} s (attempt {})",
                    wait.as_secs_f64(),
                    self.backoff.attempts()
                ));
                if !self.idle_for(wait) {
                    return SessionEnd::Stopped;
                }
            }
            if self.stopping() {
                return SessionEnd::Stopped;
            }
            match connect::connect(&self.url_with_token, self.cfg.connect_timeout) {
                Err(ConnectError::Fatal(m)) => return SessionEnd::Fatal(m),
                Err(ConnectError::Retry(m)) => {
                    say(format!("cannot connect to {}: {m}", self.cfg.url));
                    wait = self.backoff.next_delay();
                }
                Ok(ws) => {
                    say(format!("connected to {}", self.cfg.url));
                    match self.run_connection(ws) {
                        ConnEnd::Stopped => return SessionEnd::Stopped,
                        ConnEnd::Fatal(m) => return SessionEnd::Fatal(m),
                        ConnEnd::Lost { reason, min_wait } => {
                            Stats::add(&self.stats.reconnects, 1);
                            say(format!("connection lost: {reason}; will reconnect"));
                            wait = self.backoff.next_delay().max(min_wait);
                        }
                    }
                }
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
                    // Nobody can send controls any more; just wait out the delay.
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
        let (change, verb, state) = match &command {
            Command::Add(symbols) => (self.subs.add(symbols), "added", "already subscribed"),
            Command::Remove(symbols) => (self.subs.remove(symbols), "removed", "not subscribed"),
        };
        for s in &change.unchanged {
            say(format!("stdin:{line}: note: {s} is {state}"));
        }
        if !change.applied.is_empty() {
            say(format!(
                "stdin:{line}: {verb} {}; {} symbols wanted",
                list(&change.applied),
                self.subs.codes().len()
            ));
        }
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
        // A fresh connection has nothing subscribed; compare once.
        self.sent_codes = Some(Vec::new());
        self.sent_generation = self.subs.generation().wrapping_sub(1);
        let mut in_flight: HashMap<u32, InFlight> = HashMap::new();
        let mut healthy_since: Option<Instant> = None;
        let mut close_reason: Option<String> = None;

        loop {
            self.drain_controls();
            if self.stopping() {
                return self.close(ws);
            }
            let now = Instant::now();
            if now.duration_since(last_rx) >= self.cfg.stale_after {
                return lost(format!(
                    "nothing received for {} s (no heartbeat replies)",
                    self.cfg.stale_after.as_secs_f64()
                ));
            }
            if let Some(t) = healthy_since
                && now.duration_since(t) >= HEALTHY_AFTER
                && self.backoff.attempts() > 0
            {
                self.backoff.reset();
            }

            // Is the set on the server different from the one wanted?
            let generation = self.subs.generation();
            let pending = match &self.sent_codes {
                None => true,
                Some(_) if self.sent_generation == generation => false,
                Some(sent) if sent == self.subs.codes() => {
                    self.sent_generation = generation;
                    false
                }
                Some(_) => true,
            };
            match pacer.due(now, pending) {
                Due::Nothing => {}
                Due::Heartbeat => {
                    let id = self.seq_id();
                    let text = protocol::heartbeat(id, &format!("hb-{id}"));
                    if let Err(e) = send(&mut ws, text) {
                        return lost(e);
                    }
                    in_flight.insert(
                        id,
                        InFlight {
                            kind: Due::Heartbeat,
                            codes: Vec::new(),
                        },
                    );
                    pacer.sent(Due::Heartbeat, now);
                }
                Due::Subscription => {
                    let id = self.seq_id();
                    let codes = self.subs.codes().to_vec();
                    let text = if codes.is_empty() {
                        protocol::cancel(id, &format!("cancel-{id}"), CancelType::Trades)
                    } else {
                        protocol::subscribe_trades(
                            id,
                            &format!("sub-{id}"),
                            codes.iter().map(String::as_str),
                        )
                    };
                    if let Err(e) = send(&mut ws, text) {
                        return lost(e);
                    }
                    pacer.sent(Due::Subscription, now);
                    self.sent_generation = generation;
                    self.sent_codes = Some(codes.clone());
                    in_flight.insert(
                        id,
                        InFlight {
                            kind: Due::Subscription,
                            codes,
                        },
                    );
                }
            }

            let msg = match ws.read() {
                Ok(m) => m,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(tungstenite::Error::ConnectionClosed) => {
                    return lost(
                        close_reason.unwrap_or_else(|| "the server closed the connection".into()),
                    );
                }
                Err(e) => return lost(connect::describe(&e)),
            };
            last_rx = Instant::now();
            match msg {
                Message::Text(text) => match protocol::decode(text.as_str()) {
                    Ok(Incoming::Trade(trade)) => self.forward(trade),
                    Ok(Incoming::BadTrade(why)) => {
                        Stats::add(&self.stats.dropped_invalid, 1);
                        let total = Stats::get(&self.stats.dropped_invalid);
                        self.drops.note("invalid", total, last_rx, || {
                            format!("skipped an invalid trade ({why}); {total} invalid trades skipped so far")
                        });
                    }
                    Ok(Incoming::Response(r)) => {
                        let request = r.seq_id.and_then(|id| in_flight.remove(&(id as u32)));
                        match self.on_response(&r, request, &mut pacer, &mut healthy_since) {
                            Ok(()) => {}
                            Err(end) => return end,
                        }
                    }
                    Ok(Incoming::Other { .. }) => {}
                    Err(why) => self.garbage(why, last_rx),
                },
                Message::Binary(_) => self.garbage("unexpected binary frame", last_rx),
                Message::Close(frame) => {
                    close_reason = Some(match frame {
                        Some(f) if f.code == CloseCode::Normal && f.reason.is_empty() => {
                            "the server closed the connection (code 1000)".into()
                        }
                        Some(f) => format!(
                            "the server closed the connection (code {}{}{})",
                            u16::from(f.code),
                            if f.reason.is_empty() { "" } else { ": " },
                            f.reason.chars().take(100).collect::<String>()
                        ),
                        None => "the server closed the connection".into(),
                    });
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    fn garbage(&mut self, why: &'static str, now: Instant) {
        Stats::add(&self.stats.garbage_frames, 1);
        let total = Stats::get(&self.stats.garbage_frames);
        self.drops.note("garbage", total, now, || {
            format!("skipped an unreadable frame ({why}); {total} skipped so far")
        });
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
        if r.ret == 200 {
            if let Some(InFlight {
                kind: Due::Subscription,
                codes,
            }) = request
            {
                self.report_ack(&codes);
                self.acked = codes;
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
                say(format!(
                    "{what} refused: ret {} {meaning}{server_msg}; resending the full set in {} s",
                    r.ret,
                    RATE_LIMIT_RETRY.as_secs()
                ));
                if let Some(InFlight {
                    kind: Due::Subscription,
                    ..
                }) = request
                {
                    pacer.delay_subscription_until(Instant::now() + RATE_LIMIT_RETRY);
                    // Force a resend: the server did not take this set.
                    self.sent_codes = None;
                }
                Ok(())
            }
            606 => Err(ConnEnd::Lost {
                reason: format!("ret 606 {meaning}{server_msg}"),
                min_wait: AFTER_606,
            }),
            603 => {
                let n = request.map(|r| r.codes.len()).unwrap_or(0);
                say(format!(
                    "{what} refused: ret 603 {meaning}{server_msg}; {n} codes were sent; the set stays as it was"
                ));
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

    fn report_ack(&self, codes: &[String]) {
        let added: Vec<String> = codes
            .iter()
            .filter(|c| !self.acked.contains(c))
            .map(|c| format!("+{}", self.subs.display(c)))
            .collect();
        let removed: Vec<String> = self
            .acked
            .iter()
            .filter(|c| !codes.contains(c))
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

    fn forward(&mut self, trade: protocol::Trade) {
        Stats::add(&self.stats.received, 1);
        let symbol = self
            .subs
            .name_of(&trade.code)
            .unwrap_or_else(|| Arc::from(trade.code.as_str()));
        match self.out.try_send(OutTick { symbol, trade }) {
            Ok(()) => Stats::add(&self.stats.queued, 1),
            Err(TrySendError::Full(_)) => {
                Stats::add(&self.stats.dropped_overflow, 1);
                let total = Stats::get(&self.stats.dropped_overflow);
                let cap = self.out.capacity().unwrap_or(0);
                self.drops.note("overflow", total, Instant::now(), || {
                    format!(
                        "output queue full ({cap} ticks): stdout is not keeping up; dropping new ticks, {total} dropped so far"
                    )
                });
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Send a close frame and keep reading (bounded) until the server's
    /// reply, so every tick it sent before seeing our close is kept.
    fn close(&mut self, mut ws: Ws) -> ConnEnd {
        let _ = connect::tcp(&ws).set_read_timeout(Some(Duration::from_millis(50)));
        let _ = ws.close(None);
        let until = Instant::now() + CLOSE_WAIT;
        while Instant::now() < until {
            match ws.read() {
                Ok(Message::Text(text)) => {
                    if let Ok(Incoming::Trade(t)) = protocol::decode(text.as_str()) {
                        self.forward(t);
                    }
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
