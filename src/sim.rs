//! A simulated AllTick WebSocket server.
//!
//! Used by the tool's `--demo` mode (started in-process) and by integration
//! tests (started in the test process, with the real binary pointed at
//! [`Simulator::url`]). It speaks the wire protocol described in
//! `ALLTICK.md`: JSON requests 22000/22002/22004/22006, their responses,
//! trade pushes (22998) and depth pushes (22999), the 1 s request interval
//! (ret 605), token checks (HTTP 401 or ret 401) and the heartbeat cutoff.
//!
//! Where AllTick's docs allow more than one reading of the wire format, the
//! simulator can play each of them ([`Readings`], set in
//! [`SimConfig::readings`] or at runtime with [`Simulator::set_readings`]):
//! `seq` as a per-code counter (the default), time-like, or restarting on
//! every connection ([`SeqStyle`]); `seq` as a string; `tick_time` in
//! seconds; numbers as JSON numbers; error answers with `seq_id` 0; padded
//! depth levels.
//!
//! Everything the server sees and sends is recorded in a [`SimState`] that
//! tests can inspect with [`Simulator::state`] or wait on with
//! [`Simulator::wait_until`].
//!
//! Fault injection, for tests of the client's error handling: server close
//! frames ([`Simulator::close_connections`]), TCP resets
//! ([`Simulator::reset_connections`]), abrupt drops
//! ([`Simulator::drop_connections`], [`Simulator::set_drop_after_ack`]), raw
//! frames ([`Simulator::inject`]), error replies ([`Simulator::fail_next`],
//! [`Simulator::refuse_codes`], [`Simulator::set_max_symbols`]), a
//! connections-per-token limit ([`Simulator::set_connection_limit`]), HTTP
//! errors at the handshake ([`Simulator::set_handshake_status`]) and silence
//! ([`Simulator::set_silent`]). With [`SimConfig::tls`] it serves `wss://`
//! (see [`test_certificate`]).
//!
//! Design: one accept thread plus one thread per connection, all blocking
//! (std threads and tungstenite's blocking API). Each connection thread owns
//! its socket; the simulator only keeps a `try_clone` of each `TcpStream` so
//! that it can shut connections down from outside, plus a command channel
//! and flags through which the other switches reach the connection thread
//! (which looks at them at least every 10 ms).

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tungstenite::handshake::server::{ErrorResponse, Request as HsRequest, Response as HsResponse};
use tungstenite::http::StatusCode;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Bytes, Error as WsError, HandshakeError, Message, WebSocket};

/// Path of the simulated stock endpoint (the simulator accepts any path).
pub const STOCK_PATH: &str = "/quote-stock-b-ws-api";

/// Maximum number of entries kept in [`SimState::ticks`] and
/// [`SimState::depth_pushes`]; beyond it the oldest half is discarded (and
/// counted in [`SimState::discarded_pushes`]) so a long `--demo` run does not
/// grow memory without bound.
pub const MAX_RECORDED_PUSHES: usize = 100_000;

/// Longest a connection thread blocks in one read before looking at its
/// clock again (ticks due, heartbeat cutoff, silent mode, shutdown).
const LOOP_TICK: Duration = Duration::from_millis(10);
/// Read timeout while the WebSocket handshake is in progress.
const HANDSHAKE_POLL: Duration = Duration::from_millis(20);
/// Write timeout on every accepted socket.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a server-initiated close waits for the client's close reply.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);
/// Longest a TLS handshake may take (not counting silent periods).
const TLS_HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);
/// Longest [`Simulator::reset_connections`] waits for unread client data.
const RESET_WAIT: Duration = Duration::from_secs(5);
/// Chunk size used to stream an [`Inject::Huge`] payload.
const HUGE_CHUNK: usize = 64 * 1024;
/// At most this many pushes per code per loop iteration (catch-up cap).
const MAX_CATCHUP: usize = 64;
/// Largest accepted `depth_level`.
const MAX_DEPTH_LEVEL: u64 = 10;
/// 2024-01-01T00:00:00Z in milliseconds since the Unix epoch: the origin of
/// [`SeqStyle::Counter`] starting values.
const COUNTER_EPOCH_MS: u64 = 1_704_067_200_000;

/// Configuration of a [`Simulator`].
#[derive(Clone)]
pub struct SimConfig {
    /// Trade pushes per second per subscribed code (demo: 3.0). 0 = no pushes.
    /// Depth pushes use the same rate per depth-subscribed code. This is the
    /// initial rate; [`Simulator::set_ticks_per_sec`] changes it at runtime.
    pub ticks_per_sec: f64,
    /// Close a connection that sent no 22000 heartbeat for this long (AllTick: 30 s).
    /// Counted from the handshake and from each 22000 answered with ret 200
    /// (a heartbeat answered 605 does not count). The server sends a close
    /// frame, waits up to 1 s for the reply, then drops the TCP connection.
    pub heartbeat_cutoff: Duration,
    /// If Some, a connection whose `token` query parameter differs is rejected (see `reject`).
    pub expected_token: Option<String>,
    /// How a bad token is rejected.
    pub reject: Reject,
    /// Minimum interval between two requests on one connection; a request
    /// arriving sooner is answered with ret 605 "too many requests" and
    /// otherwise ignored. None = no enforcement. Default Some(1 s).
    ///
    /// Measured on arrival against the previous request of any kind on the
    /// same connection (including ones that were themselves answered 605).
    pub min_request_interval: Option<Duration>,
    /// Seed for the random walk.
    pub seed: u64,
    /// If Some, connections are TLS (`wss://`): each accepted TCP stream is
    /// wrapped with a `native_tls::TlsAcceptor` using this identity before
    /// the WebSocket handshake, and [`Simulator::url`] names `localhost` so
    /// that the client's host-name check can pass. See [`test_certificate`].
    pub tls: Option<native_tls::Identity>,
    /// Which reading of the loosely documented wire formats the simulator
    /// plays at start; [`Simulator::set_readings`] changes it at runtime.
    pub readings: Readings,
}

impl Default for SimConfig {
    /// 3 ticks/s, 30 s heartbeat cutoff, no token check, [`Reject::Ret401`],
    /// 1 s minimum request interval, seed 1, no TLS, default [`Readings`]
    /// (`seq` a per-code counter).
    fn default() -> Self {
        SimConfig {
            ticks_per_sec: 3.0,
            heartbeat_cutoff: Duration::from_secs(30),
            expected_token: None,
            reject: Reject::Ret401,
            min_request_interval: Some(Duration::from_secs(1)),
            seed: 1,
            tls: None,
            readings: Readings::default(),
        }
    }
}

/// How the `seq` of pushes is numbered. AllTick documents no meaning for
/// it: the docs' example is time-like (`1605509068000001`), the HTTP
/// answers carry a counter (`30841439`), and nothing says it survives a
/// reconnect, a server restart or a fail-over.
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

/// Which reading of the points ALLTICK.md leaves open ("survive every
/// reading") the simulator plays. Set at start with [`SimConfig::readings`]
/// and at runtime with [`Simulator::set_readings`]; every push and response
/// built after the change follows it. `Readings::default()`: `seq` is a
/// per-code [`SeqStyle::Counter`] written as a JSON number, `tick_time` in
/// milliseconds, prices/volumes/turnovers as decimal strings, errors echo
/// `seq_id`, depth levels all good.
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
}

// By hand: `native_tls::Identity` does not implement Debug.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("ticks_per_sec", &self.ticks_per_sec)
            .field("heartbeat_cutoff", &self.heartbeat_cutoff)
            .field("expected_token", &self.expected_token)
            .field("reject", &self.reject)
            .field("min_request_interval", &self.min_request_interval)
            .field("seed", &self.seed)
            .field("tls", &self.tls.as_ref().map(|_| "<identity>"))
            .finish()
    }
}

/// A raw frame for [`Simulator::inject`], sent as-is to every open connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inject {
    /// A text frame with this content (e.g. invalid JSON, an unknown cmd_id,
    /// a trade with price "0").
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A (final) text frame whose payload is these bytes, which need not be
    /// valid UTF-8 (a raw tungstenite frame; `Message::Text` cannot hold
    /// invalid UTF-8).
    InvalidUtf8(Vec<u8>),
    /// One final text frame with a payload of this many bytes, written as a
    /// raw frame header followed by the payload streamed in 64 KiB chunks
    /// (the simulator never holds it in memory). The payload is valid UTF-8
    /// shaped like a trade push padded with `x` (just `x`s if too short for
    /// that). A client is expected to refuse it and disconnect, so the write
    /// failing is normal; in any case the connection ends if the frame could
    /// not be written completely.
    Huge(usize),
}

/// How a connection with a bad token is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// HTTP 401 at the WebSocket handshake.
    Http401,
    /// Handshake succeeds; every request is answered with ret 401 "token
    /// invalid", then the server closes.
    Ret401,
}

/// Why the simulator considers a connection finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseCause {
    /// The client sent a close frame (the close handshake was completed).
    ClientClose,
    /// The peer went away without a close handshake (EOF or reset).
    PeerGone,
    /// No 22000 heartbeat within [`SimConfig::heartbeat_cutoff`]; the server
    /// sent a close frame.
    HeartbeatTimeout,
    /// Bad token: HTTP 401 at the handshake, or ret 401 then a close frame.
    TokenRejected,
    /// The handshake was answered with this HTTP status
    /// ([`Simulator::set_handshake_status`]).
    HandshakeStatus(u16),
    /// The TLS or WebSocket handshake failed for another reason.
    HandshakeFailed(String),
    /// Closed without a close frame (TCP shutdown): by
    /// [`Simulator::drop_connections`], by [`Simulator::set_drop_after_ack`],
    /// or by [`Simulator::reset_connections`] when no unread client data
    /// arrived within 5 s (then the client sees an orderly FIN, not a reset).
    Dropped,
    /// Reset by [`Simulator::reset_connections`]: the socket was closed with
    /// unread data in its receive buffer, so the kernel sent a TCP RST.
    Reset,
    /// The server sent a close frame with this code: by
    /// [`Simulator::close_connections`], or 1008 after a ret 606 injected by
    /// [`Simulator::fail_next`].
    ServerClose(u16),
    /// Refused by the connections-per-token limit
    /// ([`Simulator::set_connection_limit`]): accepted at the WebSocket
    /// level, then closed at once with close frame 1008 "too many connections".
    TooManyConnections,
    /// Closed because the simulator was dropped.
    Shutdown,
    /// Any other I/O or protocol error (message text).
    Error(String),
}

/// One accepted TCP connection.
#[derive(Clone, Debug)]
pub struct ConnRecord {
    /// Connection id (1, 2, 3, … in accept order).
    pub id: u64,
    /// The `token` query parameter of the handshake request (percent-decoded),
    /// None if absent or if the handshake request was never read.
    pub token: Option<String>,
    /// The WebSocket handshake completed.
    pub accepted: bool,
    /// The connection is finished (socket closed by either side).
    pub closed: bool,
    /// A close frame from the client was read.
    pub close_frame_received: bool,
    /// Path of the handshake request URI (empty until it was read).
    pub path: String,
    /// When the TCP connection was accepted.
    pub opened_at: Instant,
    /// When the connection was finished.
    pub closed_at: Option<Instant>,
    /// Why the connection was finished.
    pub cause: Option<CloseCause>,
    /// Current trade subscription set (22004), in request order.
    pub trade_codes: Vec<String>,
    /// Current depth subscription set (22002), in request order.
    pub depth_codes: Vec<String>,
}

/// One request frame received from a client.
#[derive(Clone, Debug)]
pub struct Request {
    /// Connection id ([`ConnRecord::id`]).
    pub conn: u64,
    /// Arrival time (when the frame was read).
    pub at: Instant,
    /// `cmd_id` of the request; 0 if missing or the frame was not JSON.
    pub cmd_id: u64,
    /// `seq_id` of the request, if it was an unsigned integer.
    pub seq_id: Option<u64>,
    /// `trace` of the request, if it was a string.
    pub trace: Option<String>,
    /// `data` of the request (Null if missing or not JSON).
    pub data: serde_json::Value,
    /// The frame's text exactly as received (binary frames lossily decoded).
    pub raw: String,
    /// The `ret` the simulator answered with (200, 400, 401, 601, 605, or a
    /// ret injected by [`Simulator::fail_next`], [`Simulator::refuse_codes`]
    /// or [`Simulator::set_max_symbols`]: 600, 603, 604, 606, …).
    pub ret: u32,
}

impl Request {
    /// codes of data.symbol_list in order (empty if none)
    pub fn codes(&self) -> Vec<String> {
        self.data
            .get("symbol_list")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|item| item.get("code").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One push (trade or depth) sent to a client; recorded before it is written.
#[derive(Clone, Debug)]
pub struct SentTick {
    /// Connection id ([`ConnRecord::id`]).
    pub conn: u64,
    /// The code pushed.
    pub code: String,
    /// The push's `seq` (see [`SeqStyle`]; with the default per code and
    /// strictly increasing across connections).
    pub seq: u64,
    /// When it was recorded (just before writing).
    pub at: Instant,
    /// Trade price, exactly the digits sent, whether as a string or a JSON
    /// number (for depth pushes: the mid price around which the book was
    /// built).
    pub price: String,
    /// Trade volume, exactly the digits sent (empty for depth pushes).
    pub volume: String,
    /// The `tick_time` as sent (milliseconds, or seconds with
    /// [`Readings::tick_time_seconds`]).
    pub tick_time: u64,
    /// The push's real time in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Padding levels in a depth push ([`Readings::padded_depth`]); 0 for trades.
    pub bad_levels: usize,
}

/// One [`Simulator::inject`] frame as handled by one connection.
#[derive(Clone, Debug)]
pub struct Injected {
    /// Connection id ([`ConnRecord::id`]).
    pub conn: u64,
    /// When the write was attempted.
    pub at: Instant,
    /// The frame.
    pub frame: Inject,
    /// The frame was written and flushed completely (false e.g. when the
    /// client refused an [`Inject::Huge`] and disconnected mid-frame).
    pub written: bool,
}

/// Everything the simulator has recorded so far.
#[derive(Clone, Debug, Default)]
pub struct SimState {
    /// One per TCP connection accepted, in order (including those rejected at the handshake).
    pub connections: Vec<ConnRecord>,
    /// Every request frame received, in arrival order.
    pub requests: Vec<Request>,
    /// Every trade push sent (22998).
    pub ticks: Vec<SentTick>,
    /// Every depth push sent (22999).
    pub depth_pushes: Vec<SentTick>,
    /// Number of old entries removed from `ticks` and `depth_pushes` to stay
    /// under [`MAX_RECORDED_PUSHES`] each.
    pub discarded_pushes: u64,
    /// Every injected frame, per connection, recorded after the write attempt.
    pub injected: Vec<Injected>,
}

impl SimState {
    /// The connection record with this id.
    pub fn conn(&self, id: u64) -> Option<&ConnRecord> {
        self.connections.iter().find(|c| c.id == id)
    }

    /// Connections whose handshake completed and that are not closed yet.
    pub fn open_connections(&self) -> Vec<&ConnRecord> {
        self.connections
            .iter()
            .filter(|c| c.accepted && !c.closed)
            .collect()
    }

    /// Requests with this `cmd_id`, in arrival order.
    pub fn requests_with_cmd(&self, cmd_id: u64) -> Vec<&Request> {
        self.requests
            .iter()
            .filter(|r| r.cmd_id == cmd_id)
            .collect()
    }

    /// Trade pushes of this code, in send order.
    pub fn ticks_for(&self, code: &str) -> Vec<&SentTick> {
        self.ticks.iter().filter(|t| t.code == code).collect()
    }
}

/// A running simulated AllTick server on 127.0.0.1. Dropping it shuts it down
/// (stops accepting, closes connections, joins its threads).
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Bind 127.0.0.1:0 and start serving in background threads.
    pub fn start(cfg: SimConfig) -> io::Result<Simulator> {
        Simulator::start_on(0, cfg)
    }

    /// Like [`Simulator::start`] but bind 127.0.0.1:`port` (0 = any port):
    /// used to "restart" a killed server on the same port. (std sets
    /// SO_REUSEADDR on Unix listeners, so connections of the previous server
    /// left in TIME_WAIT do not block the bind.)
    pub fn start_on(port: u16, cfg: SimConfig) -> io::Result<Simulator> {
        let tls = match &cfg.tls {
            Some(identity) => {
                Some(native_tls::TlsAcceptor::new(identity.clone()).map_err(io::Error::other)?)
            }
            None => None,
        };
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                state: SimState::default(),
                market: HashMap::new(),
                rng: Rng::new(cfg.seed),
                over_limit: HashSet::new(),
                readings: cfg.readings,
                counter_base: now_ms().saturating_sub(COUNTER_EPOCH_MS),
                conn_seq: HashMap::new(),
            }),
            rate_bits: AtomicU64::new(cfg.ticks_per_sec.to_bits()),
            cfg,
            tls,
            cond: Condvar::new(),
            stop: AtomicBool::new(false),
            silent: AtomicBool::new(false),
            handles: Mutex::new(Vec::new()),
            faults: Mutex::new(Faults::default()),
        });
        let for_thread = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("alltick-sim-accept".into())
            .spawn(move || accept_loop(listener, for_thread))?;
        Ok(Simulator {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    /// The TCP port the simulator listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `ws://127.0.0.1:PORT/quote-stock-b-ws-api`, or with [`SimConfig::tls`]
    /// `wss://localhost:PORT/quote-stock-b-ws-api` (the simulator listens on
    /// 127.0.0.1 only).
    pub fn url(&self) -> String {
        if self.shared.tls.is_some() {
            format!("wss://localhost:{}{}", self.port(), STOCK_PATH)
        } else {
            format!("ws://127.0.0.1:{}{}", self.port(), STOCK_PATH)
        }
    }

    /// Snapshot of everything recorded so far.
    pub fn state(&self) -> SimState {
        self.shared.lock_inner().state.clone()
    }

    /// Block until `pred(&state)` is true or `timeout` passes; returns the
    /// final verdict. Woken by a Condvar notified on every state change
    /// (request, connection, push, close), not by polling.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&SimState) -> bool) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut guard = self.shared.lock_inner();
        loop {
            if pred(&guard.state) {
                return true;
            }
            let now = Instant::now();
            let remaining = match deadline {
                Some(d) if d > now => d - now,
                Some(_) => return false,
                // Timeout too large to represent: wait in long slices.
                None => Duration::from_secs(3600),
            };
            guard = match self.shared.cond.wait_timeout(guard, remaining) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Abruptly close every open connection (TCP shutdown, no close frame).
    /// New connections are still accepted.
    pub fn drop_connections(&self) {
        self.shared.kill_all();
    }

    /// While true: send nothing at all on existing and new connections (no
    /// pushes, no replies to requests, no pongs, no handshake responses —
    /// the sockets are neither read nor written), keep TCP open.
    ///
    /// While silent, [`Simulator::close_connections`] and
    /// [`Simulator::inject`] wait until silence ends (they write);
    /// [`Simulator::reset_connections`] acts at once (without its ping).
    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.store(silent, Ordering::SeqCst);
        self.shared.cond.notify_all();
    }

    /// Close every open connection (handshake completed, i.e. shown
    /// [`ConnRecord::accepted`] and not closed; a connection still in its
    /// handshake is not affected) with a close frame (`code`, `reason`),
    /// e.g. (1011, "internal error") or (1000, ""); the connection then ends
    /// after the client's close reply or at most 1 s. Recorded as
    /// [`CloseCause::ServerClose`]. Acts asynchronously (within about 10 ms).
    pub fn close_connections(&self, code: u16, reason: &str) {
        self.shared
            .send_to_open(|| Command::Close(code, reason.to_owned()));
    }

    /// Abruptly reset every open connection (as in
    /// [`Simulator::close_connections`]) so that the client sees ECONNRESET
    /// (a TCP RST, not a FIN). Acts asynchronously.
    ///
    /// The trick, without libc (std cannot set SO_LINGER 0): Linux answers
    /// with RST when a socket is closed while unread data sits in its
    /// receive buffer. So the connection thread sends a WebSocket ping
    /// (tungstenite clients queue the pong and send it on their next
    /// read/write, i.e. at once if they are reading), stops reading, and
    /// blocks in `TcpStream::peek` (a real wait on data, bounded by 5 s)
    /// until unread bytes (the pong, a heartbeat, anything) are in the
    /// receive buffer; then it drops the socket — every descriptor of it —
    /// without `shutdown`. Recorded as [`CloseCause::Reset`]. If no data
    /// arrives within 5 s it falls back to `shutdown(Both)` (a FIN) and
    /// records [`CloseCause::Dropped`].
    pub fn reset_connections(&self) {
        let handles = lock(&self.shared.handles);
        for h in handles.iter().filter(|h| h.open) {
            h.reset.store(true, Ordering::SeqCst);
        }
    }

    /// Send a raw frame to every open connection (as in
    /// [`Simulator::close_connections`]), as-is (recorded in
    /// [`SimState::injected`]). Acts asynchronously (within about 10 ms).
    pub fn inject(&self, frame: Inject) {
        self.shared.send_to_open(|| Command::Inject(frame.clone()));
    }

    /// Answer the next `count` requests (on any connection) whose `cmd_id`
    /// is `cmd_id` with `ret` (and the `msg` of ALLTICK.md's table) instead
    /// of processing them. For ret 606 the connection is then closed with
    /// close frame 1008 "too many requests" (recorded as
    /// [`CloseCause::ServerClose`]`(1008)`).
    ///
    /// Checked after the token check and before the 1 s rate check, so the
    /// next matching requests get `ret` even if they came too fast. Calls
    /// queue up: `fail_next(22004, 605, 1); fail_next(22004, 606, 1)`
    /// answers the next two 22004 with 605, then 606.
    pub fn fail_next(&self, cmd_id: u64, ret: u32, count: usize) {
        if count > 0 {
            lock(&self.shared.faults)
                .fail_next
                .push_back((cmd_id, ret, count));
        }
    }

    /// From now on, any 22004/22002 whose `symbol_list` contains one of
    /// `codes` is refused as a whole with `ret` (600 "code invalid" or 604
    /// "code unauthorized"); the connection's set is unchanged. Calls add up
    /// (a later call for the same code replaces its ret); `ret` 200 removes
    /// `codes` from the refused ones. If a request contains several refused
    /// codes, the first in request order decides the ret.
    pub fn refuse_codes(&self, codes: &[&str], ret: u32) {
        let mut faults = lock(&self.shared.faults);
        faults.refused.retain(|(c, _)| !codes.contains(&c.as_str()));
        if ret != 200 {
            faults
                .refused
                .extend(codes.iter().map(|c| ((*c).to_owned(), ret)));
        }
    }

    /// Plan limit: a 22004/22002 with more than `n` distinct codes is
    /// answered ret 603 "token level not enough" and the set is unchanged.
    /// None = unlimited (the default).
    pub fn set_max_symbols(&self, n: Option<usize>) {
        lock(&self.shared.faults).max_symbols = n;
    }

    /// Connections per token (None = unlimited, the default). A new
    /// connection with the same `token` query parameter (absent counts as
    /// one more token value) while `limit` others are counted is accepted at
    /// the WebSocket level and then immediately closed with close frame 1008
    /// "too many connections" (recorded as [`CloseCause::TooManyConnections`];
    /// refused connections never count). A connection counts from its
    /// handshake until `release_delay` after it closed (models the real
    /// server noticing a dead connection late).
    pub fn set_connection_limit(&self, limit: Option<usize>, release_delay: Duration) {
        let mut faults = lock(&self.shared.faults);
        faults.conn_limit = limit;
        faults.release_delay = release_delay;
    }

    /// If Some(d): each connection is dropped (TCP shutdown, no close frame;
    /// recorded as [`CloseCause::Dropped`]) `d` after its first 22004
    /// answered with ret 200 (its first successful 22005). Evaluated
    /// continuously against the current setting; None (the default) = never.
    pub fn set_drop_after_ack(&self, d: Option<Duration>) {
        lock(&self.shared.faults).drop_after_ack = d;
    }

    /// If Some(status): answer every WebSocket handshake with this HTTP
    /// status (e.g. 500; an invalid code becomes 500) instead of upgrading,
    /// before any token check; recorded as [`CloseCause::HandshakeStatus`].
    /// None (the default) = upgrade normally.
    pub fn set_handshake_status(&self, status: Option<u16>) {
        lock(&self.shared.faults).handshake_status = status;
    }

    /// Change the per-code push rate (trades and depth) of every connection
    /// at runtime; 0 = no pushes. Existing subscriptions are rescheduled,
    /// staggered over one new interval (the first push is due at once).
    pub fn set_ticks_per_sec(&self, rate: f64) {
        self.shared
            .rate_bits
            .store(rate.to_bits(), Ordering::SeqCst);
    }

    /// Play another reading of the loosely documented formats from now on
    /// (every push and response built after this call); see [`Readings`].
    pub fn set_readings(&self, readings: Readings) {
        self.shared.lock_inner().readings = readings;
    }

    /// The readings currently played.
    pub fn readings(&self) -> Readings {
        self.shared.lock_inner().readings
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.kill_all();
        // Wake the accept loop, which is blocked in accept().
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        // The accept loop joins every connection thread; all of them notice
        // the stop flag within a few milliseconds. If the wake-up failed,
        // detach rather than risk blocking forever.
        if let Some(handle) = self.accept.take()
            && woke
        {
            let _ = handle.join();
        }
        self.shared.cond.notify_all();
    }
}

/// For tests: create a throwaway certificate authority and a server
/// certificate for `localhost` (subjectAltName DNS:localhost and
/// IP:127.0.0.1) signed by it, in `dir` (created if needed; files `ca.pem`,
/// `ca.key`, `server.pem`, `server.key`, `server.csr`, `server.ext`), by
/// running the `openssl` command-line tool (OpenSSL 3; P-256 keys, PKCS#8,
/// valid for 30 days).
///
/// Returns the server identity, ready for [`SimConfig::tls`], and the path
/// of the CA certificate (PEM). A client trusts the simulator if it adds
/// that CA as a root (`native_tls::TlsConnectorBuilder::add_root_certificate`)
/// or, for native-tls on Linux (OpenSSL), runs with the environment
/// variable `SSL_CERT_FILE=<that path>`.
pub fn test_certificate(dir: &Path) -> io::Result<(native_tls::Identity, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let openssl = |args: &[&str]| -> io::Result<()> {
        let out = Process::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("running openssl: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "openssl {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    };
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )?;
    let serial = splitmix(now_ms() ^ u64::from(std::process::id())) >> 1;
    let new_key = "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out";
    for cmd in [
        format!("{new_key} ca.key"),
        "req -x509 -new -key ca.key -out ca.pem -days 30 -subj /CN=alltick-sim-test-CA \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
            .to_owned(),
        format!("{new_key} server.key"),
        "req -new -key server.key -out server.csr -subj /CN=localhost".to_owned(),
        format!(
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial {serial} -days 30 \
             -extfile server.ext -out server.pem"
        ),
    ] {
        openssl(&cmd.split_whitespace().collect::<Vec<_>>())?;
    }
    let cert = std::fs::read(dir.join("server.pem"))?;
    let key = std::fs::read(dir.join("server.key"))?;
    let identity = native_tls::Identity::from_pkcs8(&cert, &key).map_err(io::Error::other)?;
    Ok((identity, dir.join("ca.pem")))
}

// ---------------------------------------------------------------------------
// Shared state

struct Shared {
    cfg: SimConfig,
    /// Built from `cfg.tls` at start.
    tls: Option<native_tls::TlsAcceptor>,
    inner: Mutex<Inner>,
    cond: Condvar,
    stop: AtomicBool,
    silent: AtomicBool,
    handles: Mutex<Vec<ConnHandle>>,
    faults: Mutex<Faults>,
    /// Current ticks per second (`f64::to_bits`).
    rate_bits: AtomicU64,
}

/// Fault-injection switches set through the [`Simulator`] methods.
#[derive(Default)]
struct Faults {
    /// (cmd_id, ret, remaining count), consumed front to back.
    fail_next: VecDeque<(u64, u32, usize)>,
    /// Refused codes and the ret that refuses them.
    refused: Vec<(String, u32)>,
    max_symbols: Option<usize>,
    conn_limit: Option<usize>,
    release_delay: Duration,
    drop_after_ack: Option<Duration>,
    handshake_status: Option<u16>,
}

/// What the simulator keeps to reach a connection from outside its thread.
struct ConnHandle {
    id: u64,
    stream: TcpStream,
    kill: Arc<AtomicBool>,
    reset: Arc<AtomicBool>,
    cmds: Sender<Command>,
    /// The WebSocket handshake completed (only open connections get commands).
    open: bool,
}

/// The connection thread's side of its [`ConnHandle`].
struct Ctl {
    kill: Arc<AtomicBool>,
    reset: Arc<AtomicBool>,
    cmds: Receiver<Command>,
}

/// A command for a connection thread.
enum Command {
    Close(u16, String),
    Inject(Inject),
}

struct Inner {
    state: SimState,
    /// Per-code market state, shared by all connections (like the real feed).
    market: HashMap<String, CodeMarket>,
    rng: Rng,
    /// Connections refused by the connection limit (they never count).
    over_limit: HashSet<u64>,
    /// The readings played now.
    readings: Readings,
    /// Where [`SeqStyle::Counter`] counters start.
    counter_base: u64,
    /// [`SeqStyle::PerConnection`] counters: (connection, kind, code) → last seq.
    conn_seq: HashMap<(u64, PushKind, String), u64>,
}

struct CodeMarket {
    cents: u64,
    trade_seq: u64,
    depth_seq: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn lock_inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn silent(&self) -> bool {
        self.silent.load(Ordering::SeqCst)
    }

    /// Apply `f` to the record of connection `id` and notify waiters.
    fn update_conn(&self, id: u64, f: impl FnOnce(&mut ConnRecord)) {
        let mut inner = self.lock_inner();
        if let Some(rec) = inner.state.connections.iter_mut().find(|c| c.id == id) {
            f(rec);
        }
        drop(inner);
        self.cond.notify_all();
    }

    /// Record a newly accepted TCP connection; returns its id.
    fn new_conn(&self) -> u64 {
        let mut inner = self.lock_inner();
        let id = inner.state.connections.len() as u64 + 1;
        inner.state.connections.push(ConnRecord {
            id,
            token: None,
            accepted: false,
            closed: false,
            close_frame_received: false,
            path: String::new(),
            opened_at: Instant::now(),
            closed_at: None,
            cause: None,
            trade_codes: Vec::new(),
            depth_codes: Vec::new(),
        });
        drop(inner);
        self.cond.notify_all();
        id
    }

    /// Mark connection `id` finished and forget its kill handle.
    fn finish_conn(&self, id: u64, cause: CloseCause) {
        {
            let mut handles = lock(&self.handles);
            if let Some(pos) = handles.iter().position(|h| h.id == id) {
                let h = handles.swap_remove(pos);
                let _ = h.stream.shutdown(Shutdown::Both);
            }
        }
        self.lock_inner()
            .conn_seq
            .retain(|(conn, _, _), _| *conn != id);
        self.update_conn(id, |rec| {
            rec.closed = true;
            rec.closed_at = Some(Instant::now());
            rec.cause = Some(cause);
        });
    }

    /// Shut down every registered connection (no close frame).
    fn kill_all(&self) {
        let handles = lock(&self.handles);
        for h in handles.iter() {
            h.kill.store(true, Ordering::SeqCst);
            let _ = h.stream.shutdown(Shutdown::Both);
        }
    }

    /// Send a command to every open connection.
    fn send_to_open(&self, make: impl Fn() -> Command) {
        let handles = lock(&self.handles);
        for h in handles.iter().filter(|h| h.open) {
            // A send error means the thread has just ended: nothing to do.
            let _ = h.cmds.send(make());
        }
    }

    /// Forget connection `id`'s handle without shutting its socket down
    /// (dropping the handle closes our duplicate descriptor).
    fn forget_handle(&self, id: u64) {
        let mut handles = lock(&self.handles);
        if let Some(pos) = handles.iter().position(|h| h.id == id) {
            drop(handles.swap_remove(pos));
        }
    }

    /// The handshake of connection `id` completed: mark it accepted and
    /// open, and apply the connections-per-token limit atomically. Returns
    /// true if the connection is over the limit (it must be closed at once).
    fn admit(&self, id: u64) -> bool {
        let (limit, delay) = {
            let faults = lock(&self.faults);
            (faults.conn_limit, faults.release_delay)
        };
        // Open for commands before it shows as accepted in the state, so a
        // test that saw it accepted can reach it.
        if let Some(h) = lock(&self.handles).iter_mut().find(|h| h.id == id) {
            h.open = true;
        }
        let mut inner = self.lock_inner();
        let now = Instant::now();
        let token = inner.state.conn(id).and_then(|c| c.token.clone());
        let over = limit.is_some_and(|limit| {
            let counted = inner
                .state
                .connections
                .iter()
                .filter(|c| {
                    c.id != id
                        && c.accepted
                        && c.token == token
                        && !inner.over_limit.contains(&c.id)
                        && c.closed_at.is_none_or(|t| now.duration_since(t) < delay)
                })
                .count();
            counted >= limit
        });
        if over {
            inner.over_limit.insert(id);
        }
        if let Some(rec) = inner.state.connections.iter_mut().find(|c| c.id == id) {
            rec.accepted = true;
        }
        drop(inner);
        self.cond.notify_all();
        over
    }

    /// Consume one matching [`Simulator::fail_next`] entry; returns its ret.
    fn take_failure(&self, cmd_id: u64) -> Option<u32> {
        let mut faults = lock(&self.faults);
        let pos = faults.fail_next.iter().position(|f| f.0 == cmd_id)?;
        let entry = &mut faults.fail_next[pos];
        let ret = entry.1;
        entry.2 -= 1;
        if entry.2 == 0 {
            faults.fail_next.remove(pos);
        }
        Some(ret)
    }

    /// The ret refusing this subscription list, if any ([`Simulator::refuse_codes`],
    /// [`Simulator::set_max_symbols`]).
    fn refusal(&self, list: &[(String, usize)]) -> Option<u32> {
        let faults = lock(&self.faults);
        for (code, _) in list {
            if let Some((_, ret)) = faults.refused.iter().find(|(c, _)| c == code) {
                return Some(*ret);
            }
        }
        match faults.max_symbols {
            Some(max) if list.len() > max => Some(603),
            _ => None,
        }
    }

    fn drop_after_ack(&self) -> Option<Duration> {
        lock(&self.faults).drop_after_ack
    }

    fn handshake_status(&self) -> Option<u16> {
        lock(&self.faults).handshake_status
    }

    /// Record an injected frame and notify waiters.
    fn record_injected(&self, rec: Injected) {
        self.lock_inner().state.injected.push(rec);
        self.cond.notify_all();
    }
}

/// The `msg` of a `ret`, per ALLTICK.md's table.
fn ret_msg(ret: u32) -> &'static str {
    match ret {
        200 => "ok",
        400 => "request header/data param invalid",
        401 => "token invalid",
        429 => "rate limit",
        600 => "code invalid",
        601 => "body empty",
        603 => "token level not enough",
        604 => "code unauthorized",
        605 => "too many requests",
        606 => "too many requests and connection will be closed",
        _ => "error",
    }
}

/// Push interval for a ticks-per-second rate (None = no pushes).
fn interval_for(rate: f64) -> Option<Duration> {
    if rate.is_finite() && rate > 0.0 {
        Duration::try_from_secs_f64(1.0 / rate)
            .ok()
            .filter(|d| !d.is_zero())
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Accept loop

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let accepted = listener.accept();
        if shared.stopping() {
            break;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // E.g. out of file descriptors: do not spin.
                thread::sleep(LOOP_TICK);
                continue;
            }
        };
        workers.retain(|w| !w.is_finished());
        let id = shared.new_conn();
        let clone = match stream.try_clone() {
            Ok(c) => c,
            Err(e) => {
                shared.finish_conn(id, CloseCause::Error(format!("try_clone: {e}")));
                continue;
            }
        };
        let (tx, rx) = mpsc::channel();
        let ctl = Ctl {
            kill: Arc::new(AtomicBool::new(false)),
            reset: Arc::new(AtomicBool::new(false)),
            cmds: rx,
        };
        lock(&shared.handles).push(ConnHandle {
            id,
            stream: clone,
            kill: Arc::clone(&ctl.kill),
            reset: Arc::clone(&ctl.reset),
            cmds: tx,
            open: false,
        });
        let for_thread = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name(format!("alltick-sim-conn-{id}"))
            .spawn(move || {
                let cause = serve(&for_thread, id, stream, &ctl);
                for_thread.finish_conn(id, cause);
            });
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(e) => shared.finish_conn(id, CloseCause::Error(format!("spawn: {e}"))),
        }
    }
    for w in workers {
        let _ = w.join();
    }
}

// ---------------------------------------------------------------------------
// One connection

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 << 20)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// While the simulator is silent, idle without touching the socket. Returns
/// Some(cause) if the connection must end (shutdown or drop_connections).
fn idle_while_silent(shared: &Shared, kill: &AtomicBool) -> Option<CloseCause> {
    loop {
        if shared.stopping() {
            return Some(CloseCause::Shutdown);
        }
        if kill.load(Ordering::SeqCst) {
            return Some(CloseCause::Dropped);
        }
        if !shared.silent() {
            return None;
        }
        thread::sleep(LOOP_TICK);
    }
}

/// The socket of one connection: plain TCP or TLS over TCP.
enum SimStream {
    Plain(TcpStream),
    Tls(Box<native_tls::TlsStream<TcpStream>>),
}

impl SimStream {
    /// The underlying TCP stream (for timeouts and `peek`).
    fn tcp(&self) -> &TcpStream {
        match self {
            SimStream::Plain(s) => s,
            SimStream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for SimStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            SimStream::Plain(s) => s.read(buf),
            SimStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for SimStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            SimStream::Plain(s) => s.write(buf),
            SimStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            SimStream::Plain(s) => s.flush(),
            SimStream::Tls(s) => s.flush(),
        }
    }
}

/// Run the server side of a TLS handshake on `stream` (whose read timeout
/// is [`HANDSHAKE_POLL`]), bounded by [`TLS_HANDSHAKE_LIMIT`] of non-silent
/// time.
fn tls_accept(
    shared: &Shared,
    acceptor: &native_tls::TlsAcceptor,
    stream: TcpStream,
    kill: &AtomicBool,
) -> Result<native_tls::TlsStream<TcpStream>, CloseCause> {
    let mut deadline = Instant::now() + TLS_HANDSHAKE_LIMIT;
    let mut attempt = acceptor.accept(stream);
    loop {
        match attempt {
            Ok(tls) => return Ok(tls),
            Err(native_tls::HandshakeError::WouldBlock(mid)) => {
                let idle_from = Instant::now();
                if let Some(cause) = idle_while_silent(shared, kill) {
                    return Err(cause);
                }
                deadline += idle_from.elapsed();
                if Instant::now() >= deadline {
                    return Err(CloseCause::HandshakeFailed(
                        "TLS handshake timed out".to_owned(),
                    ));
                }
                attempt = mid.handshake();
            }
            Err(native_tls::HandshakeError::Failure(e)) => {
                if shared.stopping() {
                    return Err(CloseCause::Shutdown);
                }
                if kill.load(Ordering::SeqCst) {
                    return Err(CloseCause::Dropped);
                }
                return Err(CloseCause::HandshakeFailed(format!("TLS: {e}")));
            }
        }
    }
}

/// Run one connection from handshake to end; returns why it ended.
// The handshake callback's error type is fixed by tungstenite.
#[allow(clippy::result_large_err)]
fn serve(shared: &Shared, id: u64, stream: TcpStream, ctl: &Ctl) -> CloseCause {
    let kill = &*ctl.kill;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    if let Err(e) = stream.set_read_timeout(Some(HANDSHAKE_POLL)) {
        return CloseCause::Error(format!("set_read_timeout: {e}"));
    }
    if let Some(cause) = idle_while_silent(shared, kill) {
        return cause;
    }
    let stream = match &shared.tls {
        None => SimStream::Plain(stream),
        Some(acceptor) => match tls_accept(shared, acceptor, stream, kill) {
            Ok(tls) => SimStream::Tls(Box::new(tls)),
            Err(cause) => return cause,
        },
    };

    let token_bad = Cell::new(false);
    let rejected_http = Cell::new(false);
    let refused_status = Cell::new(None);
    let callback = |req: &HsRequest, resp: HsResponse| -> Result<HsResponse, ErrorResponse> {
        let token = token_from_query(req.uri().query());
        let path = req.uri().path().to_owned();
        let bad = match &shared.cfg.expected_token {
            Some(expected) => token.as_deref() != Some(expected.as_str()),
            None => false,
        };
        token_bad.set(bad);
        shared.update_conn(id, |rec| {
            rec.token = token;
            rec.path = path;
        });
        if let Some(status) = shared.handshake_status() {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            refused_status.set(Some(status.as_u16()));
            let mut err = ErrorResponse::new(Some("simulated handshake failure".to_owned()));
            *err.status_mut() = status;
            return Err(err);
        }
        if bad && shared.cfg.reject == Reject::Http401 {
            rejected_http.set(true);
            let mut err = ErrorResponse::new(Some("token invalid".to_owned()));
            *err.status_mut() = StatusCode::UNAUTHORIZED;
            return Err(err);
        }
        Ok(resp)
    };

    let mut attempt = tungstenite::accept_hdr_with_config(stream, callback, Some(ws_config()));
    let ws = loop {
        match attempt {
            Ok(ws) => break ws,
            Err(HandshakeError::Interrupted(mid)) => {
                if let Some(cause) = idle_while_silent(shared, kill) {
                    return cause;
                }
                attempt = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => {
                if let Some(status) = refused_status.get() {
                    return CloseCause::HandshakeStatus(status);
                }
                if rejected_http.get() {
                    return CloseCause::TokenRejected;
                }
                if shared.stopping() {
                    return CloseCause::Shutdown;
                }
                if kill.load(Ordering::SeqCst) {
                    return CloseCause::Dropped;
                }
                return CloseCause::HandshakeFailed(e.to_string());
            }
        }
    };
    let over_limit = shared.admit(id);

    let rate_bits = shared.rate_bits.load(Ordering::SeqCst);
    let now = Instant::now();
    let mut conn = Conn {
        shared,
        id,
        ctl,
        ws,
        token_bad: token_bad.get(),
        interval: interval_for(f64::from_bits(rate_bits)),
        rate_bits,
        trades: Vec::new(),
        depth: Vec::new(),
        last_request: None,
        last_heartbeat: now,
        first_ack: None,
        pending: None,
    };
    if over_limit {
        return conn.close_with(
            CloseCode::Policy,
            "too many connections",
            CloseCause::TooManyConnections,
        );
    }
    conn.run()
}

/// Schedule of pushes for one subscribed code.
struct Sched {
    code: String,
    level: usize,
    due: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum PushKind {
    Trade,
    Depth,
}

struct Conn<'a> {
    shared: &'a Shared,
    id: u64,
    ctl: &'a Ctl,
    ws: WebSocket<SimStream>,
    token_bad: bool,
    interval: Option<Duration>,
    /// The rate `interval` was computed from (`f64::to_bits`).
    rate_bits: u64,
    trades: Vec<Sched>,
    depth: Vec<Sched>,
    last_request: Option<Instant>,
    last_heartbeat: Instant,
    /// When the first 22004 was answered with ret 200.
    first_ack: Option<Instant>,
    /// A message read just as silence began, handled when it ends.
    pending: Option<Message>,
}

fn is_timeout(e: &WsError) -> bool {
    matches!(e, WsError::Io(io) if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

impl Conn<'_> {
    fn run(mut self) -> CloseCause {
        let mut was_silent = false;
        loop {
            if self.shared.stopping() {
                return CloseCause::Shutdown;
            }
            if self.ctl.kill.load(Ordering::SeqCst) {
                return CloseCause::Dropped;
            }
            if self.shared.silent() {
                if self.ctl.reset.load(Ordering::SeqCst) {
                    // No ping while silent: wait for the client's own data.
                    return self.reset(false);
                }
                was_silent = true;
                thread::sleep(LOOP_TICK);
                continue;
            }
            let now = Instant::now();
            if was_silent {
                // Do not punish the client for our own silence: restart the
                // heartbeat and rate clocks, and do not burst missed pushes.
                was_silent = false;
                self.last_heartbeat = now;
                self.last_request = None;
                for s in self.trades.iter_mut().chain(self.depth.iter_mut()) {
                    s.due = s.due.max(now);
                }
            }
            self.refresh_rate(now);
            if let Some(msg) = self.pending.take()
                && let Some(cause) = self.handle_message(msg)
            {
                return cause;
            }
            while let Ok(cmd) = self.ctl.cmds.try_recv() {
                if let Some(cause) = self.command(cmd) {
                    return cause;
                }
            }
            if self.ctl.reset.load(Ordering::SeqCst) {
                return self.reset(true);
            }
            if self.drop_at().is_some_and(|at| now >= at) {
                return CloseCause::Dropped;
            }
            if now.duration_since(self.last_heartbeat) >= self.shared.cfg.heartbeat_cutoff {
                return self.close_with(
                    CloseCode::Policy,
                    "heartbeat timeout",
                    CloseCause::HeartbeatTimeout,
                );
            }
            if let Err(cause) = self.push_due(now) {
                return cause;
            }
            let wait = self.next_wait(Instant::now());
            if let Err(e) = self.ws.get_ref().tcp().set_read_timeout(Some(wait)) {
                return CloseCause::Error(format!("set_read_timeout: {e}"));
            }
            match self.ws.read() {
                // Silence may have begun while we were blocked in read():
                // keep the message for when it ends, send nothing now.
                Ok(msg) if self.shared.silent() => self.pending = Some(msg),
                Ok(msg) => {
                    if let Some(cause) = self.handle_message(msg) {
                        return cause;
                    }
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) => return self.fatal(e),
            }
        }
    }

    /// When [`Simulator::set_drop_after_ack`] wants this connection dropped.
    fn drop_at(&self) -> Option<Instant> {
        let ack = self.first_ack?;
        ack.checked_add(self.shared.drop_after_ack()?)
    }

    /// Pick up a rate change ([`Simulator::set_ticks_per_sec`]): reschedule
    /// every subscribed code, staggered over one new interval.
    fn refresh_rate(&mut self, now: Instant) {
        let bits = self.shared.rate_bits.load(Ordering::SeqCst);
        if bits == self.rate_bits {
            return;
        }
        self.rate_bits = bits;
        self.interval = interval_for(f64::from_bits(bits));
        if let Some(iv) = self.interval {
            for list in [&mut self.trades, &mut self.depth] {
                let n = u32::try_from(list.len()).unwrap_or(u32::MAX).max(1);
                for (k, s) in (0u32..).zip(list.iter_mut()) {
                    s.due = now + iv * k / n;
                }
            }
        }
    }

    /// Carry out a command from the [`Simulator`]. Returns Some(cause) if
    /// the connection ends.
    fn command(&mut self, cmd: Command) -> Option<CloseCause> {
        match cmd {
            Command::Close(code, reason) => Some(self.close_with(
                CloseCode::from(code),
                &reason,
                CloseCause::ServerClose(code),
            )),
            Command::Inject(frame) => self.inject(frame),
        }
    }

    /// Write one injected frame and record it. Returns Some(cause) if the
    /// connection ends.
    fn inject(&mut self, frame: Inject) -> Option<CloseCause> {
        let at = Instant::now();
        let result = match &frame {
            Inject::Text(text) => self.ws.send(Message::text(text.as_str())),
            Inject::Binary(bytes) => self.ws.send(Message::binary(bytes.clone())),
            Inject::InvalidUtf8(bytes) => self.ws.send(Message::Frame(Frame::message(
                bytes.clone(),
                OpCode::Data(Data::Text),
                true,
            ))),
            Inject::Huge(len) => self.write_huge(*len),
        };
        self.shared.record_injected(Injected {
            conn: self.id,
            at,
            frame: frame.clone(),
            written: result.is_ok(),
        });
        match result {
            Ok(()) => None,
            // A huge frame cut short leaves the stream mid-frame: end it.
            Err(e) if matches!(frame, Inject::Huge(_)) => Some(self.fatal(e)),
            r => self.check_write(r).err(),
        }
    }

    /// Write one final text frame of `len` payload bytes directly to the
    /// socket, header first, payload in [`HUGE_CHUNK`]s.
    fn write_huge(&mut self, len: usize) -> Result<(), WsError> {
        // Whatever tungstenite still buffers must go out first (bounded).
        let deadline = Instant::now() + WRITE_TIMEOUT;
        loop {
            match self.ws.flush() {
                Ok(()) => break,
                Err(e) if is_timeout(&e) && Instant::now() < deadline => {}
                Err(e) => return Err(e),
            }
        }
        // RFC 6455 5.2: FIN + opcode 1 (text), unmasked, shortest length form.
        let mut header = vec![0x81u8];
        match (u8::try_from(len), u16::try_from(len)) {
            (Ok(n), _) if n < 126 => header.push(n),
            (_, Ok(n)) => {
                header.push(126);
                header.extend_from_slice(&n.to_be_bytes());
            }
            _ => {
                header.push(127);
                header.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        const PREFIX: &[u8] = br#"{"cmd_id":22998,"data":{"code":"HUGE","pad":""#;
        const SUFFIX: &[u8] = br#""}}"#;
        let (prefix, suffix) = if len >= PREFIX.len() + SUFFIX.len() {
            (PREFIX, SUFFIX)
        } else {
            (&b""[..], &b""[..])
        };
        let chunk = vec![b'x'; HUGE_CHUNK.min(len)];
        let stream = self.ws.get_mut();
        stream.write_all(&header)?;
        stream.write_all(prefix)?;
        let mut left = len - prefix.len() - suffix.len();
        while left > 0 {
            if self.shared.stopping() || self.ctl.kill.load(Ordering::SeqCst) {
                return Err(WsError::ConnectionClosed);
            }
            let n = left.min(chunk.len());
            stream.write_all(&chunk[..n])?;
            left -= n;
        }
        stream.write_all(suffix)?;
        stream.flush()?;
        Ok(())
    }

    /// [`Simulator::reset_connections`]: make the kernel send a TCP RST by
    /// closing the socket while unread data sits in its receive buffer.
    /// With `provoke`, first send a ping so that the client's automatic pong
    /// supplies that data. Falls back to a shutdown (FIN) after
    /// [`RESET_WAIT`].
    fn reset(&mut self, provoke: bool) -> CloseCause {
        if provoke {
            // Errors do not matter here: peek below sees the outcome.
            let _ = self.ws.send(Message::Ping(Bytes::new()));
        }
        let tcp = self.ws.get_ref().tcp();
        let _ = tcp.set_read_timeout(Some(RESET_WAIT));
        // Our handle's `shutdown` (simulator dropped, drop_connections) ends
        // the wait at once: peek then returns Ok(0).
        let mut probe = [0u8; 1];
        let peeked = tcp.peek(&mut probe);
        if self.shared.stopping() {
            return CloseCause::Shutdown;
        }
        if self.ctl.kill.load(Ordering::SeqCst) {
            return CloseCause::Dropped;
        }
        match peeked {
            Ok(n) if n > 0 => {
                // Close every descriptor of the socket without shutdown: our
                // handle's duplicate now, the connection's own when `self`
                // is dropped as this connection's `run` returns.
                self.shared.forget_handle(self.id);
                CloseCause::Reset
            }
            // EOF: the client already went away.
            Ok(_) => CloseCause::PeerGone,
            // No data in time: finish_conn shuts the socket down (FIN).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                CloseCause::Dropped
            }
            Err(_) => CloseCause::PeerGone,
        }
    }

    /// Act on one message read from the client. Returns Some(cause) if the
    /// connection ends.
    fn handle_message(&mut self, msg: Message) -> Option<CloseCause> {
        match msg {
            Message::Text(text) => self.on_request(text.as_str().to_owned()),
            Message::Binary(bytes) => self.on_request(String::from_utf8_lossy(&bytes).into_owned()),
            Message::Close(_) => {
                self.shared
                    .update_conn(self.id, |rec| rec.close_frame_received = true);
                Some(self.finish_client_close())
            }
            // Pings are answered automatically by tungstenite on the next
            // read/write/flush; pongs and raw frames are ignored.
            _ => None,
        }
    }

    /// How long the next read may block.
    fn next_wait(&self, now: Instant) -> Duration {
        let mut wait = LOOP_TICK;
        if self.interval.is_some() {
            for s in self.trades.iter().chain(self.depth.iter()) {
                wait = wait.min(s.due.saturating_duration_since(now));
            }
        }
        let hb_deadline = self.last_heartbeat + self.shared.cfg.heartbeat_cutoff;
        wait = wait.min(hb_deadline.saturating_duration_since(now));
        if let Some(at) = self.drop_at() {
            wait = wait.min(at.saturating_duration_since(now));
        }
        wait.max(Duration::from_millis(1))
    }

    /// Classify an error that ends the connection.
    fn fatal(&self, e: WsError) -> CloseCause {
        if self.shared.stopping() {
            return CloseCause::Shutdown;
        }
        if self.ctl.kill.load(Ordering::SeqCst) {
            return CloseCause::Dropped;
        }
        match e {
            WsError::ConnectionClosed | WsError::AlreadyClosed => CloseCause::PeerGone,
            WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
                CloseCause::PeerGone
            }
            WsError::Io(io)
                if matches!(
                    io.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::UnexpectedEof
                ) =>
            {
                CloseCause::PeerGone
            }
            other => CloseCause::Error(other.to_string()),
        }
    }

    /// Result of a write/flush: a timeout leaves the data buffered inside
    /// tungstenite (retried on the next write/flush), anything else is fatal.
    fn check_write(&self, r: Result<(), WsError>) -> Result<(), CloseCause> {
        match r {
            Ok(()) => Ok(()),
            Err(e) if is_timeout(&e) => Ok(()),
            Err(e) => Err(self.fatal(e)),
        }
    }

    /// The client sent a close frame: send the reply and end.
    fn finish_client_close(&mut self) -> CloseCause {
        let deadline = Instant::now() + CLOSE_DRAIN;
        loop {
            match self.ws.flush() {
                Err(e) if is_timeout(&e) && Instant::now() < deadline => continue,
                _ => return CloseCause::ClientClose,
            }
        }
    }

    /// Send a close frame, wait (bounded) for the client's reply, end.
    fn close_with(&mut self, code: CloseCode, reason: &str, cause: CloseCause) -> CloseCause {
        let frame = CloseFrame {
            code,
            reason: reason.to_owned().into(),
        };
        match self.ws.close(Some(frame)) {
            Ok(()) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return cause,
        }
        let _ = self
            .ws
            .get_ref()
            .tcp()
            .set_read_timeout(Some(HANDSHAKE_POLL));
        let deadline = Instant::now() + CLOSE_DRAIN;
        while Instant::now() < deadline
            && !self.shared.stopping()
            && !self.ctl.kill.load(Ordering::SeqCst)
        {
            match self.ws.read() {
                Ok(Message::Close(_)) => self
                    .shared
                    .update_conn(self.id, |rec| rec.close_frame_received = true),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(_) => break,
            }
        }
        cause
    }

    /// Handle one request frame. Returns Some(cause) if the connection ends.
    fn on_request(&mut self, raw: String) -> Option<CloseCause> {
        let now = Instant::now();
        let parsed: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
        let cmd_id = parsed.get("cmd_id").and_then(Value::as_u64).unwrap_or(0);
        let seq_id_v = parsed.get("seq_id").cloned();
        let trace_v = parsed.get("trace").cloned();
        let data = parsed.get("data").cloned().unwrap_or(Value::Null);

        let too_fast = match (self.shared.cfg.min_request_interval, self.last_request) {
            (Some(min), Some(prev)) => now.duration_since(prev) < min,
            _ => false,
        };
        self.last_request = Some(now);

        // What to do after answering: close with this frame and cause.
        type CloseAfter = Option<(CloseCode, &'static str, CloseCause)>;
        let (ret, msg, close_after): (u32, &str, CloseAfter) = if self.token_bad {
            let close = (
                CloseCode::Policy,
                "token invalid",
                CloseCause::TokenRejected,
            );
            (401, "token invalid", Some(close))
        } else if let Some(ret) = self.shared.take_failure(cmd_id) {
            let close = (ret == 606).then_some((
                CloseCode::Policy,
                "too many requests",
                CloseCause::ServerClose(1008),
            ));
            (ret, ret_msg(ret), close)
        } else if too_fast {
            (605, "too many requests", None)
        } else {
            let (ret, msg) = self.dispatch(cmd_id, &data, now);
            (ret, msg, None)
        };
        if cmd_id == 22000 && ret == 200 {
            self.last_heartbeat = now;
        }
        if cmd_id == 22004 && ret == 200 && self.first_ack.is_none() {
            self.first_ack = Some(now);
        }

        let error_seq_id_zero = {
            let mut inner = self.shared.lock_inner();
            let trade_codes: Vec<String> = self.trades.iter().map(|s| s.code.clone()).collect();
            let depth_codes: Vec<String> = self.depth.iter().map(|s| s.code.clone()).collect();
            if let Some(rec) = inner.state.connections.iter_mut().find(|c| c.id == self.id) {
                rec.trade_codes = trade_codes;
                rec.depth_codes = depth_codes;
            }
            inner.state.requests.push(Request {
                conn: self.id,
                at: now,
                cmd_id,
                seq_id: seq_id_v.as_ref().and_then(Value::as_u64),
                trace: trace_v.as_ref().and_then(Value::as_str).map(str::to_owned),
                data,
                raw,
                ret,
            });
            inner.readings.error_seq_id_zero
        };
        self.shared.cond.notify_all();

        let mut resp = Map::new();
        resp.insert("ret".into(), json!(ret));
        resp.insert("msg".into(), json!(msg));
        let resp_cmd = if cmd_id == 0 {
            0
        } else {
            cmd_id.saturating_add(1)
        };
        resp.insert("cmd_id".into(), json!(resp_cmd));
        if ret != 200 && error_seq_id_zero {
            resp.insert("seq_id".into(), json!(0));
        } else if let Some(v) = seq_id_v {
            resp.insert("seq_id".into(), v);
        }
        if let Some(v) = trace_v {
            resp.insert("trace".into(), v);
        }
        resp.insert("data".into(), json!({}));
        let text = Value::Object(resp).to_string();
        let sent = self.ws.send(Message::text(text));
        if let Err(cause) = self.check_write(sent) {
            return Some(cause);
        }
        if let Some((code, reason, cause)) = close_after {
            return Some(self.close_with(code, reason, cause));
        }
        None
    }

    /// Apply a request that passed the token, failure-injection and rate
    /// checks.
    fn dispatch(&mut self, cmd_id: u64, data: &Value, now: Instant) -> (u32, &'static str) {
        const OK: (u32, &str) = (200, "ok");
        const INVALID: (u32, &str) = (400, "request header/data param invalid");
        const EMPTY: (u32, &str) = (601, "body empty");
        match cmd_id {
            // The heartbeat clock is restarted by on_request.
            22000 => OK,
            22002 | 22004 => {
                let list = match parse_symbol_list(data) {
                    Ok(list) => list,
                    Err(ListError::Empty) => return EMPTY,
                    Err(ListError::Invalid) => return INVALID,
                };
                if let Some(ret) = self.shared.refusal(&list) {
                    return (ret, ret_msg(ret));
                }
                let interval = self.interval;
                let target = if cmd_id == 22004 {
                    &mut self.trades
                } else {
                    &mut self.depth
                };
                replace_set(target, list, now, interval);
                OK
            }
            22006 => {
                let cancel_type = data.get("cancel_type").and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                });
                match cancel_type {
                    Some(0) => {
                        self.trades.clear();
                        self.depth.clear();
                        OK
                    }
                    Some(1) => {
                        self.depth.clear();
                        OK
                    }
                    Some(2) => {
                        self.trades.clear();
                        OK
                    }
                    _ => INVALID,
                }
            }
            _ => INVALID,
        }
    }

    /// Send every push that is due (recording each before writing it).
    fn push_due(&mut self, now: Instant) -> Result<(), CloseCause> {
        let Some(interval) = self.interval else {
            return Ok(());
        };
        if self.shared.silent() {
            return Ok(());
        }
        let mut due: Vec<(PushKind, String, usize)> = Vec::new();
        for (kind, list) in [
            (PushKind::Trade, &mut self.trades),
            (PushKind::Depth, &mut self.depth),
        ] {
            for s in list.iter_mut() {
                let mut n = 0;
                while s.due <= now && n < MAX_CATCHUP {
                    due.push((kind, s.code.clone(), s.level));
                    s.due += interval;
                    n += 1;
                }
                if s.due <= now {
                    // Fell far behind: skip rather than burst.
                    s.due = now + interval;
                }
            }
        }
        if due.is_empty() {
            return Ok(());
        }
        let texts: Vec<String> = {
            let mut inner = self.shared.lock_inner();
            let texts = due
                .iter()
                .map(|(kind, code, level)| inner.push(self.id, *kind, code, *level))
                .collect();
            drop(inner);
            texts
        };
        self.shared.cond.notify_all();
        for text in texts {
            let r = self.ws.write(Message::text(text));
            self.check_write(r)?;
        }
        let r = self.ws.flush();
        self.check_write(r)
    }
}

enum ListError {
    Empty,
    Invalid,
}

/// Parse `data.symbol_list` into (code, depth_level) pairs, de-duplicated by
/// code (first occurrence wins).
fn parse_symbol_list(data: &Value) -> Result<Vec<(String, usize)>, ListError> {
    let list = match data.get("symbol_list") {
        None | Some(Value::Null) => return Err(ListError::Empty),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(ListError::Invalid),
    };
    if list.is_empty() {
        return Err(ListError::Empty);
    }
    let mut out: Vec<(String, usize)> = Vec::with_capacity(list.len());
    for item in list {
        let code = match item.get("code").and_then(Value::as_str) {
            Some(c) if !c.trim().is_empty() => c.to_owned(),
            _ => return Err(ListError::Invalid),
        };
        let level = match item.get("depth_level") {
            None | Some(Value::Null) => 1,
            Some(v) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            {
                Some(l) => l.clamp(1, MAX_DEPTH_LEVEL) as usize,
                None => return Err(ListError::Invalid),
            },
        };
        if !out.iter().any(|(c, _)| *c == code) {
            out.push((code, level));
        }
    }
    Ok(out)
}

/// Replace a subscription set: retained codes keep their schedule, new codes
/// are staggered over one interval (the first one is due at once).
fn replace_set(
    set: &mut Vec<Sched>,
    list: Vec<(String, usize)>,
    now: Instant,
    interval: Option<Duration>,
) {
    let fresh = list
        .iter()
        .filter(|(code, _)| !set.iter().any(|s| s.code == *code))
        .count()
        .max(1) as u32;
    let mut k = 0u32;
    let mut next: Vec<Sched> = Vec::with_capacity(list.len());
    for (code, level) in list {
        if let Some(pos) = set.iter().position(|s| s.code == code) {
            let mut s = set.swap_remove(pos);
            s.level = level;
            next.push(s);
        } else {
            let offset = interval.map_or(Duration::ZERO, |iv| iv * k / fresh);
            k += 1;
            next.push(Sched {
                code,
                level,
                due: now + offset,
            });
        }
    }
    *set = next;
}

// ---------------------------------------------------------------------------
// Market data

impl Inner {
    /// The next `seq` for a push of `kind` for `code` on connection `conn`
    /// ([`Readings::seq`]).
    fn next_seq(&mut self, conn: u64, kind: PushKind, code: &str, time_ms: u64) -> u64 {
        let style = self.readings.seq;
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
            PushKind::Trade => &mut market.trade_seq,
            PushKind::Depth => &mut market.depth_seq,
        };
        *last = match style {
            SeqStyle::TimeLike => last
                .saturating_add(1)
                .max(time_ms.saturating_mul(1000).saturating_add(1)),
            _ => (*last).max(base).saturating_add(1),
        };
        *last
    }

    /// Generate one push for `code`, record it, and return its JSON text
    /// (built by hand so that numbers keep their exact digits).
    fn push(&mut self, conn: u64, kind: PushKind, code: &str, level: usize) -> String {
        let readings = self.readings;
        let time_ms = now_ms();
        let tick_time = if readings.tick_time_seconds {
            time_ms / 1000
        } else {
            time_ms
        };
        let seed_price = initial_cents(code, &mut self.rng);
        let market = self
            .market
            .entry(code.to_owned())
            .or_insert_with(|| CodeMarket {
                cents: seed_price,
                trade_seq: 0,
                depth_seq: 0,
            });
        // Random walk: steps of about ±0.1 %, never below 0.02.
        let k = (market.cents / 1000).max(1);
        let step = self.rng.below(2 * k + 1);
        market.cents = (market.cents + step).saturating_sub(k).max(2);
        let cents = market.cents;
        let price = fmt_cents(cents);
        let seq = self.next_seq(conn, kind, code, time_ms);
        let seq_text = if readings.seq_as_string {
            format!("\"{seq}\"")
        } else {
            seq.to_string()
        };
        let num = |digits: &str| -> String {
            if readings.numbers_as_json {
                digits.to_owned()
            } else {
                format!("\"{digits}\"")
            }
        };
        let code_json = Value::from(code).to_string();
        let at = Instant::now();
        let mut sent = SentTick {
            conn,
            code: code.to_owned(),
            seq,
            at,
            price: price.clone(),
            volume: String::new(),
            tick_time,
            time_ms,
            bad_levels: 0,
        };
        match kind {
            PushKind::Trade => {
                let volume = (1 + self.rng.below(20)) * 100;
                let direction = self.rng.below(3);
                let volume_text = volume.to_string();
                let text = format!(
                    "{{\"cmd_id\":22998,\"data\":{{\"code\":{code_json},\"seq\":{seq_text},\
                     \"tick_time\":{tick_time},\"price\":{},\"volume\":{},\"turnover\":{},\
                     \"trade_direction\":{direction}}}}}",
                    num(&price),
                    num(&volume_text),
                    num(&fmt_cents(cents.saturating_mul(volume))),
                );
                sent.volume = volume_text;
                record_push(
                    &mut self.state.ticks,
                    &mut self.state.discarded_pushes,
                    sent,
                );
                text
            }
            PushKind::Depth => {
                let tick = (cents / 2000).max(1);
                let level = level as u64;
                let good_bids = if readings.padded_depth {
                    (level / 2).max(1)
                } else {
                    level
                };
                let mut pad_kind =
                    self.state.depth_pushes.len() + self.state.discarded_pushes as usize;
                let mut pad = |bad: &mut usize| -> String {
                    *bad += 1;
                    pad_kind += 1;
                    match pad_kind % 3 {
                        0 => r#"{"price":"0","volume":"0"}"#.to_owned(),
                        1 => r#"{"price":"","volume":""}"#.to_owned(),
                        _ => r#"{"price":"0"}"#.to_owned(),
                    }
                };
                let mut bad = 0usize;
                let mut bids: Vec<String> = Vec::with_capacity(level as usize + 1);
                let mut asks: Vec<String> = Vec::with_capacity(level as usize + 1);
                for i in 1..=level {
                    if i <= good_bids {
                        if let Some(p) = cents.checked_sub(i * tick).filter(|p| *p >= 1) {
                            let v = (1 + self.rng.below(50)) * 100;
                            bids.push(format!(
                                "{{\"price\":{},\"volume\":{}}}",
                                num(&fmt_cents(p)),
                                num(&v.to_string())
                            ));
                        }
                    } else {
                        bids.push(pad(&mut bad));
                    }
                    let v = (1 + self.rng.below(50)) * 100;
                    asks.push(format!(
                        "{{\"price\":{},\"volume\":{}}}",
                        num(&fmt_cents(cents + i * tick)),
                        num(&v.to_string())
                    ));
                    if readings.padded_depth && i == 1 {
                        asks.push(pad(&mut bad));
                    }
                }
                if readings.padded_depth && good_bids == level {
                    bids.push(pad(&mut bad));
                }
                let text = format!(
                    "{{\"cmd_id\":22999,\"data\":{{\"code\":{code_json},\"seq\":{seq_text},\
                     \"tick_time\":{tick_time},\"bids\":[{}],\"asks\":[{}]}}}}",
                    bids.join(","),
                    asks.join(","),
                );
                sent.bad_levels = bad;
                record_push(
                    &mut self.state.depth_pushes,
                    &mut self.state.discarded_pushes,
                    sent,
                );
                text
            }
        }
    }
}

fn record_push(list: &mut Vec<SentTick>, discarded: &mut u64, tick: SentTick) {
    if list.len() >= MAX_RECORDED_PUSHES {
        let half = MAX_RECORDED_PUSHES / 2;
        list.drain(..half);
        *discarded += half as u64;
    }
    list.push(tick);
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
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

// ---------------------------------------------------------------------------
// Query parsing

/// The percent-decoded `token` parameter of a URI query string.
fn token_from_query(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == "token").then(|| percent_decode(value))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_parsing() {
        assert_eq!(token_from_query(Some("token=abc")), Some("abc".into()));
        assert_eq!(
            token_from_query(Some("x=1&token=a%2Fb")),
            Some("a/b".into())
        );
        assert_eq!(token_from_query(Some("x=1")), None);
        assert_eq!(token_from_query(None), None);
        assert_eq!(token_from_query(Some("token=%4")), Some("%4".into()));
        assert_eq!(token_from_query(Some("token=%zz")), Some("%zz".into()));
    }

    #[test]
    fn symbol_list_parsing() {
        let ok = json!({"symbol_list": [{"code": "A"}, {"code": "B", "depth_level": 50}, {"code": "A"}]});
        let list = parse_symbol_list(&ok).ok().unwrap_or_default();
        assert_eq!(list, vec![("A".to_owned(), 1), ("B".to_owned(), 10)]);
        assert!(matches!(
            parse_symbol_list(&json!({"symbol_list": []})),
            Err(ListError::Empty)
        ));
        assert!(matches!(
            parse_symbol_list(&json!({})),
            Err(ListError::Empty)
        ));
        assert!(matches!(
            parse_symbol_list(&json!({"symbol_list": [{"x": 1}]})),
            Err(ListError::Invalid)
        ));
    }

    #[test]
    fn walk_stays_positive() {
        let mut rng = Rng::new(7);
        let mut cents = 3u64;
        for _ in 0..10_000 {
            let k = (cents / 1000).max(1);
            cents = (cents + rng.below(2 * k + 1)).saturating_sub(k).max(2);
            assert!(cents >= 2);
        }
        let start = initial_cents("AAPL.US", &mut Rng::new(1));
        assert!((2_000..50_000).contains(&start));
    }
}
