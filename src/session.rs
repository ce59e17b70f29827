//! The session thread: keeps one endpoint connected and its subscriptions
//! in step, for as long as the tool runs.
//!
//! It owns the [`Connection`] (socket, pacing, requests in flight,
//! liveness), the [`Feeds`] (what the user wants, what the server holds)
//! and the [`Intake`] (pushes → lines → the writer's queue). On every
//! wake-up — a frame, or the socket's read timeout — it applies stdin
//! commands, lets the connection check its clock, and sends what is due. A
//! lost connection is re-opened with [`Backoff`] and the full sets are
//! sent again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::command::Command;
use crate::connect::{self, Ws};
use crate::connection::{Connection, Frame, TICK};
use crate::error::{ConnectError, Disconnect};
use crate::feed::{Act, Feeds, Histories, Kind, Reaction};
use crate::intake::Intake;
use crate::output::Batch;
use crate::policy::{self, InFlight, REQUEST_EXPIRY};
use crate::protocol::{self, Response};
use crate::report::say;
use crate::schedule::{Backoff, Due};
use crate::stagger::Stagger;
use crate::stats::{ConnStats, Stats};
use crate::symbol::{Market, Symbol};

/// While a burst is drained, the clock's work runs every this many frames.
const HOUSEKEEPING_EVERY: u32 = 64;

/// A connection left with nothing to carry closes after this long; it
/// opens again when a symbol comes.
pub const IDLE_CLOSE: Duration = Duration::from_secs(60);

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
    /// The endpoint's market, when one endpoint is forced for every code:
    /// codes of the other market are flagged (the server refuses them).
    pub market: Option<Market>,
    /// The connection's name in messages: `stock#1`.
    pub name: String,
    /// Several connections may be open: an early close may mean the
    /// token's connection limit.
    pub several: bool,
    /// The gate spacing subscription requests of different connections.
    pub stagger: Arc<Mutex<Stagger>>,
    /// This connection's place at the gate.
    pub turn: usize,
    /// What was written, shared by every connection (de-duplication).
    pub histories: Histories,
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
    Lost(Disconnect),
    Stopped,
    Fatal(String),
    /// Nothing to carry for [`IDLE_CLOSE`].
    Idle,
}

impl From<Disconnect> for ConnEnd {
    fn from(d: Disconnect) -> ConnEnd {
        ConnEnd::Lost(d)
    }
}

/// The session: state that outlives single connections.
pub struct Session {
    cfg: SessionConfig,
    url_with_token: String,
    controls: Receiver<Control>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    backoff: Backoff,
    feeds: Feeds,
    intake: Intake,
    /// This connection's figures.
    figures: Arc<ConnStats>,
    /// A connection is open (for `?`).
    connected: bool,
    /// The open connection had a subscription acknowledged.
    acknowledged: bool,
    /// Since when the feeds carry nothing.
    empty_since: Option<Instant>,
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
        warn_market(cfg.market, &cfg.initial, "argument");
        Session {
            feeds: Feeds::new(&cfg.initial, &cfg.histories),
            intake: Intake::new(out, Arc::clone(&stats), cfg.queue),
            figures: stats.connection(&cfg.name),
            acknowledged: false,
            empty_since: None,
            cfg,
            url_with_token,
            controls,
            stop,
            stats,
            backoff: Backoff::new(seed),
            connected: false,
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Say `line` on stderr, naming this connection.
    fn say(&self, line: impl std::fmt::Display) {
        say(format!("{}: {line}", self.cfg.name));
    }

    /// A hint for an early end when several connections are open.
    fn limit_hint(&self) -> &'static str {
        if self.cfg.several && !self.acknowledged {
            " (with several connections open, the token's connection limit may be hit: free and basic plans allow 1, premium 3, professional 10; see --connections, --plan)"
        } else {
            ""
        }
    }

    /// Run until stopped or a fatal error.
    pub fn run(mut self) -> SessionEnd {
        let mut wait = Duration::ZERO;
        loop {
            if (!wait.is_zero() && !self.idle_for(wait)) || self.stopping() {
                return SessionEnd::Stopped;
            }
            let ws = match self.connect() {
                None => return SessionEnd::Stopped,
                Some(Ok(ws)) => ws,
                Some(Err(e)) if e.is_fatal() => return SessionEnd::Fatal(e.to_string()),
                Some(Err(e)) => {
                    wait = self.backoff.next_delay().max(e.min_wait());
                    self.say(format!(
                        "cannot connect to {}: {e}; retrying in {}{}",
                        self.cfg.url,
                        self.attempt_text(wait),
                        self.limit_hint()
                    ));
                    continue;
                }
            };
            wait = match self.connected(ws) {
                ConnEnd::Stopped => return SessionEnd::Stopped,
                ConnEnd::Fatal(m) => return SessionEnd::Fatal(m),
                ConnEnd::Idle => match self.park() {
                    true => Duration::ZERO,
                    false => return SessionEnd::Stopped,
                },
                ConnEnd::Lost(why) => self.lost(&why),
            };
        }
    }

    /// Report a lost connection; returns the wait before reconnecting.
    fn lost(&mut self, why: &Disconnect) -> Duration {
        if why.is_refused_frame() {
            self.intake.refused_frame();
        }
        Stats::add(&self.stats.reconnects, 1);
        let wait = self.backoff.next_delay().max(why.min_wait());
        self.say(format!(
            "connection lost: {why}; reconnecting in {}{}",
            self.attempt_text(wait),
            self.limit_hint()
        ));
        wait
    }

    /// The connection carried nothing for [`IDLE_CLOSE`] and was closed:
    /// wait for a symbol to carry. False when asked to stop.
    fn park(&mut self) -> bool {
        self.say(format!(
            "carried nothing for {} s: closed the connection; it opens again when a symbol comes",
            IDLE_CLOSE.as_secs()
        ));
        self.empty_since = None;
        while self.carries_nothing() {
            if !self.idle_for(TICK * 4) {
                return false;
            }
        }
        true
    }

    fn carries_nothing(&self) -> bool {
        self.feeds.trades.codes().is_empty() && self.feeds.depth.codes().is_empty()
    }

    /// Serve one open connection until it ends.
    fn connected(&mut self, ws: Ws) -> ConnEnd {
        self.say(format!("connected to {}", self.cfg.url));
        self.connected = true;
        self.acknowledged = false;
        Stats::set(&self.figures.connected, 1);
        let end =
            match Connection::new(ws, self.cfg.heartbeat, self.cfg.stale_after, Instant::now()) {
                Ok(conn) => self.serve(conn),
                Err(d) => ConnEnd::Lost(d),
            };
        self.connected = false;
        self.feeds.on_disconnect();
        self.cfg
            .stagger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .withdraw(self.cfg.turn);
        Stats::set(&self.figures.connected, 0);
        // Whatever was read before the end goes out.
        self.intake.hand_over();
        end
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
            return Some(Err(ConnectError::Setup(format!(
                "cannot start a thread: {e}"
            ))));
        }
        loop {
            if self.stopping() {
                return None;
            }
            crossbeam_channel::select! {
                recv(rx) -> r => return Some(r.unwrap_or_else(|_| {
                    Err(ConnectError::Setup("the connect attempt failed".into()))
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
        let (adding, symbols) = match &command {
            Command::Add(symbols) => (true, symbols),
            Command::Remove(symbols) => (false, symbols),
            Command::Query => {
                self.report_state(line);
                return;
            }
        };
        if adding {
            warn_market(self.cfg.market, symbols, &format!("stdin:{line}"));
        }
        self.empty_since = None;
        let change = self.feeds.change(adding, symbols);
        let (verb, state) = if adding {
            ("added", "already subscribed")
        } else {
            ("removed", "not subscribed")
        };
        for s in &change.unchanged {
            self.say(format!("stdin:{line}: note: {s} is {state}"));
        }
        if !change.applied.is_empty() {
            self.say(format!(
                "stdin:{line}: {verb} {}; {} trade and {} depth symbols wanted",
                crate::feed::list(&change.applied),
                self.feeds.trades.codes().len(),
                self.feeds.depth.codes().len()
            ));
        }
    }

    /// Answer `?`: the wanted sets and the sets the server acknowledged.
    fn report_state(&self, line: u64) {
        let link = if self.connected {
            "connected"
        } else {
            "not connected"
        };
        let (t, d) = (&self.feeds.trades, &self.feeds.depth);
        let last = Stats::get(&self.figures.last_message_ms);
        let since = if last == 0 {
            "no message yet".to_string()
        } else {
            format!(
                "last message {:.1} s ago",
                Stats::now_ms().saturating_sub(last) as f64 / 1000.0
            )
        };
        self.say(format!(
            "stdin:{line}: {link} to {} ({since}); wanted {} trade symbols: {}; acknowledged by the server {}: {}; wanted {} depth symbols: {}; acknowledged {}: {}",
            self.cfg.url,
            t.codes().len(),
            t.names(t.codes()),
            t.server_set().len(),
            t.names(t.server_set()),
            d.codes().len(),
            d.names(d.codes()),
            d.server_set().len(),
            d.names(d.server_set())
        ));
    }

    fn drain_controls(&mut self) {
        while let Ok(c) = self.controls.try_recv() {
            self.apply(c);
        }
    }

    /// Read frames until the connection ends or a stop is asked for.
    fn serve(&mut self, mut conn: Connection) -> ConnEnd {
        // A fresh connection has nothing subscribed.
        self.feeds.on_connect();
        let mut burst: u32 = 0;
        loop {
            burst = burst.wrapping_add(1);
            if !conn.is_draining() || burst.is_multiple_of(HOUSEKEEPING_EVERY) {
                match self.housekeeping(&mut conn) {
                    Ok(()) => {}
                    Err(end @ (ConnEnd::Stopped | ConnEnd::Idle)) => {
                        self.close(conn);
                        return end;
                    }
                    Err(end) => return end,
                }
            }
            let now = Instant::now();
            match conn.read() {
                Ok(Frame::Text(text)) => {
                    if let Some(r) = self.intake.text(text.as_str(), &mut self.feeds, now) {
                        let request = conn.answered(&r);
                        if let Err(end) = self.on_response(&mut conn, &r, request) {
                            return end;
                        }
                    }
                }
                Ok(Frame::Binary) => self.intake.binary(now),
                Ok(Frame::Idle) => {}
                // The burst is over: hand it to the writer.
                Ok(Frame::BurstOver) => self.intake.hand_over(),
                Err(d) => return ConnEnd::Lost(d),
            }
            // Lines are waiting: read on without blocking until the socket
            // is empty, then hand them over in one batch.
            if self.intake.has_lines()
                && let Err(d) = conn.drain()
            {
                return ConnEnd::Lost(d);
            }
        }
    }

    /// The clock's work on each wake-up: stdin commands, a stop request,
    /// the connection's liveness, the backoff reset, expired requests, an
    /// idle close, and a due heartbeat or subscription.
    fn housekeeping(&mut self, conn: &mut Connection) -> Result<(), ConnEnd> {
        self.drain_controls();
        if self.stopping() {
            return Err(ConnEnd::Stopped);
        }
        let now = Instant::now();
        self.update_figures(conn, now);
        if conn.health().resets_backoff(now, self.backoff.attempts()) {
            self.backoff.reset();
        }
        self.expire(conn, now);
        if self.idle_too_long(now) {
            return Err(ConnEnd::Idle);
        }
        let next = self.feeds.next_pending();
        let due = conn.tick(now, next.is_some())?;
        let Some(kind) = next else {
            self.gate().withdraw(self.cfg.turn);
            return match due {
                Due::Heartbeat => Ok(conn.heartbeat(now)?),
                _ => Ok(()),
            };
        };
        match due {
            Due::Nothing => Ok(()),
            Due::Heartbeat => Ok(conn.heartbeat(now)?),
            // Requests on different connections wait their turn.
            Due::Subscription if self.gate().try_turn(self.cfg.turn, now) => {
                self.send_subscription(conn, kind, now)
            }
            Due::Subscription => Ok(()),
        }
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, Stagger> {
        self.cfg.stagger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_figures(&mut self, conn: &mut Connection, now: Instant) {
        if conn.take_heard(now) {
            Stats::set(&self.figures.last_message_ms, Stats::now_ms());
        }
        let f = &self.figures;
        Stats::set(&f.trade_symbols, self.feeds.trades.codes().len() as u64);
        Stats::set(&f.depth_symbols, self.feeds.depth.codes().len() as u64);
    }

    /// Forget requests that got no answer; a subscription is sent again.
    fn expire(&mut self, conn: &mut Connection, now: Instant) {
        for req in conn.expire(now) {
            if let Some(kind) = req.feed {
                self.say(format!(
                    "no answer to the {} subscription request after {} s; sending the set again",
                    kind.name(),
                    REQUEST_EXPIRY.as_secs()
                ));
                self.feeds.get_mut(kind).resend();
            }
        }
    }

    /// Whether the connection has carried nothing (and the server holds
    /// nothing of ours) for [`IDLE_CLOSE`].
    fn idle_too_long(&mut self, now: Instant) -> bool {
        let empty = self.carries_nothing()
            && self.feeds.trades.server_set().is_empty()
            && self.feeds.depth.server_set().is_empty();
        if !empty {
            self.empty_since = None;
            return false;
        }
        let since = *self.empty_since.get_or_insert(now);
        now.duration_since(since) >= IDLE_CLOSE
    }

    /// Send the pending set of `kind` (or its cancel).
    fn send_subscription(
        &mut self,
        conn: &mut Connection,
        kind: Kind,
        now: Instant,
    ) -> Result<(), ConnEnd> {
        let id = conn.next_seq_id();
        let Some((text, codes)) = self.feeds.get_mut(kind).take_request(id) else {
            return Ok(());
        };
        let cmd = if codes.is_empty() {
            protocol::CMD_CANCEL
        } else {
            kind.request_cmd()
        };
        let req = InFlight {
            cmd,
            feed: Some(kind),
            codes,
            sent_at: now,
        };
        Ok(conn.send(id, text, req, Due::Subscription)?)
    }

    /// Act on an answer from the server, given the request it answers.
    fn on_response(
        &mut self,
        conn: &mut Connection,
        r: &Response,
        request: Option<InFlight>,
    ) -> Result<(), ConnEnd> {
        let now = Instant::now();
        let reaction = match request {
            Some(InFlight {
                feed: Some(kind),
                codes,
                ..
            }) => {
                let max = self.cfg.max_symbols;
                let reaction = self
                    .feeds
                    .get_mut(kind)
                    .on_answer(r.ret, &r.msg, codes, max);
                if matches!(r.ret, 200 | 201) {
                    conn.health().acknowledged(now);
                    self.acknowledged = true;
                }
                if let Act::ResendAfter(d) = reaction.act {
                    conn.delay_subscriptions(now + d);
                    self.feeds.get_mut(kind).resend();
                }
                reaction
            }
            _ => {
                let other = policy::other_answer(r, self.feeds.trades.codes().is_empty());
                if other.healthy {
                    conn.health().acknowledged(now);
                }
                if let Some(d) = other.resend_all_after {
                    conn.delay_subscriptions(now + d);
                    self.feeds.resend_all();
                }
                other.reaction
            }
        };
        self.act(reaction)
    }

    /// Say a reaction's notes and turn its action into the connection's fate.
    fn act(&self, reaction: Reaction) -> Result<(), ConnEnd> {
        for note in reaction.notes {
            self.say(note);
        }
        match reaction.act {
            Act::Nothing | Act::ResendAfter(_) => Ok(()),
            Act::Reconnect { reason, .. } => Err(ConnEnd::Lost(Disconnect::Ret606(reason))),
            Act::Fatal(m) => Err(ConnEnd::Fatal(m)),
        }
    }

    /// Close the connection, keeping every push read before the server's
    /// close reply.
    fn close(&mut self, conn: Connection) {
        let (intake, feeds) = (&mut self.intake, &mut self.feeds);
        conn.close(|text| {
            let _ = intake.text(text, feeds, Instant::now());
        });
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
