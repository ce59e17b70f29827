//! A simulated AllTick server: the WebSocket API and the HTTP K-line API.
//!
//! Used by the tool's `--demo` mode (started in-process) and by integration
//! tests (started in the test process, with the real binary pointed at
//! [`Simulator::url`]). It speaks the wire protocol of AllTick's
//! WebSocket API docs: JSON requests 22000/22002/22004/22006, their responses,
//! trade pushes (22998) and depth pushes (22999), the 1 s request interval
//! (ret 605, or 429 as `serve` answers: [`TooFast`]), token checks (HTTP 401
//! or ret 401) and the heartbeat cutoff.
//!
//! `--demo` needs only the plain server; everything below about readings,
//! fault injection and TLS exists only with the cargo feature `testing`
//! (enabled for the tests and the soak program, not in the shipped binary).
//!
//! Where AllTick's docs allow more than one reading of the wire format, the
//! simulator can play each of them (`Readings`, set in
//! `SimConfig::readings` or at runtime with `Simulator::set_readings`):
//! `seq` as a per-code counter (the default), time-like, or restarting on
//! every connection (`SeqStyle`); `seq` as a string; `tick_time` in
//! seconds; numbers as JSON numbers; error answers with `seq_id` 0; padded
//! depth levels; the last trade of each code pushed again on a
//! subscription. Its clock can run off the real one
//! (`SimConfig::clock_offset_ms`, `Simulator::set_clock_offset_ms`), e.g.
//! to just before midnight UTC.
//!
//! The pushes come from a random walk (prices shared by all connections,
//! [`SimConfig::ticks_per_sec`] per code), or, with
//! [`Simulator::start_feed`], from a [`Feed`] that gives each connection
//! its own [`FeedConn`]: `alltick-stream serve` plays a capture this way,
//! over the same handshake, requests, answers and cut-off.
//!
//! Everything the server sees and sends is recorded in a [`SimState`] that
//! tests can inspect with [`Simulator::state`] or wait on with
//! [`Simulator::wait_until`].
//!
//! Like AllTick's server it serves both endpoints: a connection on
//! [`STOCK_PATH`] is served stock codes only, one on [`FOREX_PATH`] the
//! other codes only (a code of the wrong market gets ret 600; the testing
//! switch `Simulator::set_market_check(false)` lifts this), one on any other
//! path any code.
//!
//! Fault injection, for tests of the client's error handling: server close
//! frames (`Simulator::close_connections`), TCP resets
//! (`Simulator::reset_connections`), abrupt drops
//! (`Simulator::drop_connections`, `Simulator::drop_connection`,
//! `Simulator::set_drop_after_ack`), connections cut after a flush every so
//! often (`Simulator::set_cut_every`), raw
//! frames (`Simulator::inject`), error replies (`Simulator::fail_next`,
//! `Simulator::refuse_codes`, `Simulator::set_max_symbols` with 603 or, by
//! `Simulator::set_over_limit`, serving only the first N codes), a
//! connections-per-token limit (`Simulator::set_connection_limit`), HTTP
//! errors at the handshake (`Simulator::set_handshake_status`) and silence
//! (`Simulator::set_silent`). With `SimConfig::tls` it serves `wss://`
//! (see `test_certificate`).
//!
//! On the same port it answers AllTick's HTTP K-line API:
//! `GET /quote-stock-b-api/kline` and `GET /quote-b-api/kline` (bases
//! from [`Simulator::http_base`]) with `token` and a URL-encoded JSON
//! `query`, one request per connection (`Connection: close`, a `Date`
//! header on the simulator's clock); the request line tells such a request
//! from a WebSocket handshake (`route`). For a code the market has traded,
//! bars come from its record of those trades (`tape`): every interval
//! starting at or after the record's first minute is the exact aggregate
//! of the trades made in it, pushed or not (while no connection receives
//! a traded code, the market goes on making unseen trades at one a second,
//! recorded and pushed to nobody); an interval without a trade has no bar.
//! Before the record, and for codes never traded, bars come from a
//! deterministic 1-minute walk per code (its own, apart from the pushes'
//! walk). Either way every longer bar is the exact aggregate of its minutes
//! on the UTC calendar ([`kline_bars`] gives a test the walk's bars,
//! `Simulator::kline_bars` the ones answered, `Simulator::recorded_klines`
//! the record's); only final bars, oldest
//! first, from [`SimConfig::history_start_ms`] on; stock codes always get
//! their latest bars, other codes the newest ones starting at most at
//! `kline_timestamp_end`. A bad token gets ret 401, a code of the other
//! base ret 600, a bad parameter ret 400, a `query` that is not JSON ret
//! 402 (all in HTTP 200, without `data`), an unknown path under a base
//! HTTP 404. With [`SimConfig::http_limits`] it enforces a plan's limits
//! on arrival, over both bases together, answering [`HttpLimitAnswer`] and
//! counting [`SimState::http_over_limit`]. Every request is recorded in
//! [`SimState::http_requests`]. With `testing`: the other readings of the
//! answers (`KlineReadings`), refused codes
//! (`Simulator::refuse_kline_codes`), injected faults
//! (`Simulator::fail_http_next` with an `HttpFault`) and `https://` with
//! `SimConfig::tls`.
//!
//! Design: one accept thread plus one thread per connection, all blocking
//! (std threads and tungstenite's blocking API). Each connection thread owns
//! its socket; the simulator only keeps a `try_clone` of each `TcpStream` so
//! that it can shut connections down from outside, plus a command channel
//! and flags through which the other switches reach the connection thread
//! (which looks at them at least every 10 ms).
//!
//! Layout: this file holds the public API; `records` what [`SimState`]
//! records; `server` the shared state and the accept loop; `route` tells
//! HTTP from WebSocket; `conn` one connection's loop; `request` request
//! handling; `market` the random walk's pushes; `tape` the record of its
//! trades and the trades nobody receives; `feed` the [`Feed`]
//! interface and the writing of a feed's pushes; `http` the HTTP side's
//! serving and limits, `http_answer` the K-line answer, `kline` the bars;
//! `faults`, `http_faults`, `inject` and `tls` the testing-only switches
//! (`inert` stands in for `faults` and `http_faults` without the feature).

#![warn(clippy::too_many_lines)]

mod conn;
#[cfg(feature = "testing")]
mod faults;
mod feed;
mod http;
mod http_answer;
#[cfg(feature = "testing")]
mod http_faults;
#[cfg(not(feature = "testing"))]
mod inert;
#[cfg(feature = "testing")]
mod inject;
mod kline;
mod market;
mod records;
mod request;
mod route;
mod server;
mod tape;
#[cfg(feature = "testing")]
mod tls;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[cfg(feature = "testing")]
pub use faults::OverLimit;
pub use feed::{Feed, FeedConn, Next};
pub use http::{DEFAULT_HISTORY_DAYS, HttpLimitAnswer};
#[cfg(feature = "testing")]
pub use http_answer::KlineReadings;
#[cfg(feature = "testing")]
pub use http_faults::HttpFault;
#[cfg(feature = "testing")]
pub use inject::{Inject, Injected};
pub use kline::kline_bars;
#[cfg(feature = "testing")]
pub use market::{Readings, SeqStyle};
pub use records::{CloseCause, ConnRecord, HttpRequest, Request, SentTick, SimState};
#[cfg(feature = "testing")]
pub use tls::test_certificate;

use server::{Shared, accept_loop};

use crate::wire::plan::HttpLimits;

/// Path of the simulated stock endpoint: a connection on it is served stock
/// codes only (`….US`, `….HK`, `….SH`, `….SZ`; others get ret 600).
pub const STOCK_PATH: &str = "/quote-stock-b-ws-api";
/// Path of the simulated forex/crypto endpoint: a connection on it is served
/// the other codes only. Any other path serves any code.
pub const FOREX_PATH: &str = "/quote-b-ws-api";
/// Base path of the simulated HTTP API for stock codes (`/kline` under it).
pub const HTTP_STOCK_BASE: &str = "/quote-stock-b-api";
/// Base path of the simulated HTTP API for the other codes.
pub const HTTP_FOREX_BASE: &str = "/quote-b-api";

/// Maximum number of entries kept in [`SimState::ticks`],
/// [`SimState::depth_pushes`], [`SimState::requests`] and
/// [`SimState::http_requests`]; beyond it the oldest half is discarded (and
/// counted in [`SimState::discarded_pushes`],
/// [`SimState::discarded_requests`] or
/// [`SimState::discarded_http_requests`]) so a long `--demo` or `serve` run
/// does not grow memory without bound.
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
/// At most this many pushes per code per loop iteration (catch-up cap).
const MAX_CATCHUP: usize = 64;
/// Largest accepted `depth_level`.
const MAX_DEPTH_LEVEL: u64 = 10;

/// Configuration of a [`Simulator`].
#[derive(Clone)]
pub struct SimConfig {
    /// Trade pushes per second per subscribed code (demo: 3.0). 0 = no pushes.
    /// Depth pushes use the same rate per depth-subscribed code. This is the
    /// initial rate; [`Simulator::set_ticks_per_sec`] changes it at runtime.
    pub ticks_per_sec: f64,
    /// Close a connection that sent no 22000 heartbeat for this long (AllTick: 30 s).
    /// Counted from the handshake and from each 22000 answered with ret 200
    /// (a heartbeat answered 429 or 605 does not count). The server sends a close
    /// frame, waits up to 1 s for the reply, then drops the TCP connection.
    pub heartbeat_cutoff: Duration,
    /// If Some, a connection whose `token` query parameter differs is rejected (see `reject`).
    pub expected_token: Option<String>,
    /// How a bad token is rejected.
    pub reject: Reject,
    /// Minimum interval between two requests on one connection; a request
    /// arriving sooner is answered as `too_fast` says (ret 605 "too many
    /// requests" by default) and otherwise ignored. None = no enforcement.
    /// Default Some(1 s).
    ///
    /// Measured on arrival against the previous request of any kind on the
    /// same connection (including ones that were themselves refused so).
    pub min_request_interval: Option<Duration>,
    /// The answer to a request inside `min_request_interval`. Default
    /// [`TooFast::Ret605`].
    pub too_fast: TooFast,
    /// Seed for the random walk, and so for the K-lines of the codes it
    /// trades (the K-lines before their record, and of codes never traded,
    /// depend on the code only).
    pub seed: u64,
    /// AllTick's HTTP limits of a plan, enforced on the K-line API over
    /// both bases together, measured on arrival: at most
    /// `one_interface.count` requests in any `one_interface.window_ms`,
    /// `per_minute.count` in any minute and `per_day` in any 24 hours.
    /// A request over one is answered as `http_limit_answer` says and
    /// counted in [`SimState::http_over_limit`]; it does not count toward
    /// the limits itself (nor does one with a bad token, or to an unknown
    /// path). None (the default) = no limits.
    /// [`Simulator::set_http_limits`] changes it at runtime.
    pub http_limits: Option<HttpLimits>,
    /// The answer to a request over `http_limits`. Default
    /// [`HttpLimitAnswer::Status429`].
    pub http_limit_answer: HttpLimitAnswer,
    /// The oldest time (ms) a K-line may start at: nothing older is
    /// answered, so paging backwards ends with an empty list. None (the
    /// default) = [`DEFAULT_HISTORY_DAYS`] before the start of the
    /// simulator's UTC day, for every code.
    pub history_start_ms: Option<u64>,
    /// If Some, connections are TLS (`wss://`, `https://`): each accepted
    /// TCP stream is wrapped with a `native_tls::TlsAcceptor` using this
    /// identity before its request is read (WebSocket handshake or HTTP
    /// request), and [`Simulator::url`] and [`Simulator::http_base`] name
    /// `localhost` so that the client's host-name check can pass. See
    /// `test_certificate`.
    #[cfg(feature = "testing")]
    pub tls: Option<native_tls::Identity>,
    /// Which reading of the loosely documented wire formats the simulator
    /// plays at start; `Simulator::set_readings` changes it at runtime.
    #[cfg(feature = "testing")]
    pub readings: Readings,
    /// Which reading of the K-line answers the simulator plays at start;
    /// `Simulator::set_kline_readings` changes it at runtime.
    #[cfg(feature = "testing")]
    pub kline_readings: KlineReadings,
    /// How far the simulated clock runs off the real one, in ms (negative:
    /// behind), for `tick_time`, a time-like `seq` and the counters' start;
    /// `Simulator::set_clock_offset_ms` changes it at runtime. Default 0.
    #[cfg(feature = "testing")]
    pub clock_offset_ms: i64,
}

impl Default for SimConfig {
    /// 3 ticks/s, 30 s heartbeat cutoff, no token check, [`Reject::Ret401`],
    /// 1 s minimum request interval, seed 1, no HTTP limits, K-lines from
    /// 30 days back, no TLS, default `Readings` (`seq` a per-code counter)
    /// and `KlineReadings`.
    fn default() -> Self {
        SimConfig {
            ticks_per_sec: 3.0,
            heartbeat_cutoff: Duration::from_secs(30),
            expected_token: None,
            reject: Reject::Ret401,
            min_request_interval: Some(Duration::from_secs(1)),
            too_fast: TooFast::Ret605,
            seed: 1,
            http_limits: None,
            http_limit_answer: HttpLimitAnswer::Status429,
            history_start_ms: None,
            #[cfg(feature = "testing")]
            tls: None,
            #[cfg(feature = "testing")]
            readings: Readings::default(),
            #[cfg(feature = "testing")]
            kline_readings: KlineReadings::default(),
            #[cfg(feature = "testing")]
            clock_offset_ms: 0,
        }
    }
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
            .field("too_fast", &self.too_fast)
            .field("seed", &self.seed)
            .field("http_limits", &self.http_limits)
            .field("http_limit_answer", &self.http_limit_answer)
            .field("history_start_ms", &self.history_start_ms)
            .finish_non_exhaustive()
    }
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

/// How a request inside [`SimConfig::min_request_interval`] is answered:
/// AllTick's error table has both codes for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TooFast {
    /// ret 429 "rate limit" (`serve`).
    Ret429,
    /// ret 605 "too many requests" (the simulator's default).
    Ret605,
}

impl TooFast {
    /// The answer's `ret` and `msg`.
    pub fn answer(self) -> (u32, &'static str) {
        match self {
            TooFast::Ret429 => (429, "rate limit"),
            TooFast::Ret605 => (605, "too many requests"),
        }
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
        Simulator::listen(TcpListener::bind(("127.0.0.1", port))?, cfg, None)
    }

    /// Serve on `listener` (any address) with the pushes of `feed`
    /// instead of the random walk: each connection asks it for a
    /// [`FeedConn`] of its own ([`SimConfig::ticks_per_sec`] is not used).
    pub fn start_feed(
        listener: TcpListener,
        cfg: SimConfig,
        feed: Arc<dyn Feed>,
    ) -> io::Result<Simulator> {
        Simulator::listen(listener, cfg, Some(feed))
    }

    fn listen(
        listener: TcpListener,
        cfg: SimConfig,
        feed: Option<Arc<dyn Feed>>,
    ) -> io::Result<Simulator> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(cfg, feed)?);
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

    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT/quote-stock-b-ws-api`, or with `SimConfig::tls`
    /// `wss://localhost:PORT/quote-stock-b-ws-api` (the simulator listens on
    /// 127.0.0.1 only).
    pub fn url(&self) -> String {
        #[cfg(feature = "testing")]
        if self.shared.tls.is_some() {
            return format!("wss://localhost:{}{}", self.port(), STOCK_PATH);
        }
        format!("ws://127.0.0.1:{}{}", self.port(), STOCK_PATH)
    }

    /// Like [`Simulator::url`] with another path, e.g. [`FOREX_PATH`]
    /// (`ws://127.0.0.1:PORT/quote-b-ws-api`).
    pub fn url_for(&self, path: &str) -> String {
        let stock = self.url();
        let base = stock.strip_suffix(STOCK_PATH).unwrap_or(&stock);
        format!("{base}{path}")
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

    /// Change the per-code push rate (trades and depth) of every connection
    /// at runtime; 0 = no pushes. Existing subscriptions are rescheduled,
    /// staggered over one new interval (the first push is due at once).
    pub fn set_ticks_per_sec(&self, rate: f64) {
        self.shared
            .rate_bits
            .store(rate.to_bits(), Ordering::SeqCst);
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
