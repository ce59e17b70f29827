//! A session thread: keeps one connection of one endpoint open and its
//! subscriptions in step, for as long as the tool runs.
//!
//! It owns the [`Connection`] (socket, pacing, requests in flight,
//! liveness), the subscription [`Channels`] (what the user wants, what the
//! server holds)
//! and the [`Intake`] (push frames → the writer's queue; answers back
//! here). On every
//! wake-up — a frame, or the socket's read timeout — it applies stdin
//! commands, lets the connection check its clock, and sends what is due. A
//! lost connection is re-opened with [`Backoff`] and the full sets are
//! sent again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::queue::{Frames, Item, Label};
use crate::report::say;
use crate::router::command::Command;
use crate::stats::{ConnStats, Stats};
use crate::wire::protocol::FeedKind;
use crate::wire::symbol::{Market, Symbol};
use channel::Channels;
use connect::Ws;
use connection::{Connection, TICK};
use error::{ConnectError, Disconnect};
use gaps::GapWatch;
use intake::Intake;
use policy::Idle;
use schedule::Backoff;
use stagger::Stagger;

pub(crate) mod channel;
mod commands;
pub(crate) mod connect;
pub(crate) mod connection;
pub(crate) mod error;
pub(crate) mod gaps;
pub(crate) mod intake;
pub(crate) mod policy;
mod read_loop;
pub(crate) mod schedule;
pub(crate) mod stagger;
pub(crate) mod subscriptions;

/// While a burst is drained, the clock's work runs every this many frames.
const HOUSEKEEPING_EVERY: u32 = 64;

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
    /// Send gap items when the data is known to be incomplete (`--gaps`).
    pub gaps: bool,
    /// The time of a capture's last line, when restarting into one: the
    /// first acknowledgement closes the gap of the time not running.
    pub resumed_at: Option<u64>,
    /// A connection left with nothing to carry closes after this long
    /// (`--idle-close`); it opens again when a
    /// symbol comes.
    pub idle_close: Duration,
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
    /// How many connections are open, over all sessions: with others
    /// open, an early close may mean the token's connection limit.
    pub open: Arc<AtomicUsize>,
    /// The gate spacing subscription requests of different connections.
    pub stagger: Arc<Mutex<Stagger>>,
    /// This connection's place at the gate.
    pub turn: usize,
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
    /// Nothing to carry for [`SessionConfig::idle_close`].
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
    channels: Channels,
    intake: Intake,
    /// This connection's figures.
    figures: Arc<ConnStats>,
    /// A connection is open (for `?`).
    connected: bool,
    /// The open connection had a subscription acknowledged.
    acknowledged: bool,
    /// Since when the channels carry nothing.
    idle: Idle,
    /// Outages to mark in the output (`--gaps`).
    gaps: Option<GapWatch>,
}

impl Session {
    /// A session that will read controls from `controls`, stop when `stop`
    /// is set, and queue ticks on `out`.
    pub fn new(
        mut cfg: SessionConfig,
        controls: Receiver<Control>,
        stop: Arc<AtomicBool>,
        out: Sender<Item>,
        spares: Receiver<Frames>,
        stats: Arc<Stats>,
    ) -> Session {
        let url_with_token = match &cfg.token {
            Some(t) => {
                let sep = if cfg.url.contains('?') { '&' } else { '?' };
                format!("{}{}token={}", cfg.url, sep, crate::wire::url_encode(t))
            }
            None => cfg.url.clone(),
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7)
            ^ u64::from(std::process::id()).rotate_left(32);
        // The initial symbols live on in the channels and the writer's labels;
        // a copy kept here would cost ~140 bytes a symbol for the whole run.
        let initial = std::mem::take(&mut cfg.initial);
        warn_market(cfg.market, &initial, "argument");
        let mut session = Session {
            channels: Channels::new(&initial),
            intake: Intake::new(out, spares, Arc::clone(&stats), cfg.queue)
                .with_gaps(cfg.gaps.then(|| Arc::from(cfg.name.as_str()))),
            figures: stats.connection(&cfg.name),
            acknowledged: false,
            idle: Idle::default(),
            gaps: cfg.gaps.then(|| GapWatch::new(&cfg.name, cfg.resumed_at)),
            cfg,
            url_with_token,
            controls,
            stop,
            stats,
            backoff: Backoff::new(seed),
            connected: false,
        };
        session.label(&initial);
        session
    }

    /// Tell the writer how the user spells these symbols' codes.
    pub(super) fn label(&mut self, symbols: &[Symbol]) {
        let labels = symbols
            .iter()
            .map(|s| {
                let depth = s.feed.kind() == FeedKind::Depth;
                let feed = if depth {
                    &self.channels.depth
                } else {
                    &self.channels.trades
                };
                Label {
                    depth,
                    code: s.code.clone(),
                    name: feed.name_of(&s.code),
                }
            })
            .collect();
        self.intake.labels(labels);
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
        if self.cfg.open.load(Ordering::SeqCst) > 0 && !self.acknowledged {
            " (with several connections open, the token's connection limit may be hit: free and basic plans allow 1, premium 3, professional 10; see --connections, --plan)"
        } else {
            ""
        }
    }

    /// Run until stopped or a fatal error.
    pub fn run(mut self) -> SessionEnd {
        let end = self.run_connections();
        if let Some(gap) = self.gaps.as_mut().and_then(|g| g.stopped(Stats::now_ms())) {
            self.intake.gap(gap);
        }
        self.intake.end();
        end
    }

    /// Connect, serve, reconnect: until stopped or a fatal error.
    fn run_connections(&mut self) -> SessionEnd {
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

    /// The connection carried nothing for `idle_close` and was closed:
    /// wait for a symbol to carry. False when asked to stop.
    fn park(&mut self) -> bool {
        self.say(format!(
            "carried nothing for {} s: closed the connection; it opens again when a symbol comes",
            secs(self.cfg.idle_close)
        ));
        self.idle.reset();
        while self.carries_nothing() {
            if !self.idle_for(TICK * 4) {
                return false;
            }
        }
        true
    }

    fn carries_nothing(&self) -> bool {
        self.channels.trades.codes().is_empty() && self.channels.depth.codes().is_empty()
    }

    /// Serve one open connection until it ends.
    fn connected(&mut self, ws: Ws) -> ConnEnd {
        self.say(format!("connected to {}", self.cfg.url));
        self.connected = true;
        self.acknowledged = false;
        self.cfg.open.fetch_add(1, Ordering::SeqCst);
        Stats::set(&self.figures.connected, 1);
        let end =
            match Connection::new(ws, self.cfg.heartbeat, self.cfg.stale_after, Instant::now()) {
                Ok(conn) => self.read_loop(conn),
                Err(d) => ConnEnd::Lost(d),
            };
        self.connected = false;
        self.cfg.open.fetch_sub(1, Ordering::SeqCst);
        // What the server held is what the outage leaves without data.
        if let (ConnEnd::Lost(why), Some(g)) = (&end, &mut self.gaps) {
            let codes = (self.channels.trades.server_set().iter())
                .chain(self.channels.depth.server_set())
                .map(|c| c.to_string())
                .collect();
            let from = Stats::get(&self.figures.last_message_ms);
            if let Some(codes) = g.lost(from, &why.to_string(), codes) {
                // Bars of these codes wait for the gap (`--heal`).
                self.intake.outage(Arc::clone(g.name()), codes, from);
            }
        }
        self.channels.on_disconnect();
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
}

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

/// Seconds for a message: `60`, `1.5`.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}
