//! What the simulator records: connections, requests, pushes, and why
//! each connection ended; [`SimState`] holds them all.

use std::time::Instant;

use serde_json::Value;

#[cfg(feature = "testing")]
use super::Injected;
use crate::wire::symbol::Market;

/// Why the simulator considers a connection finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseCause {
    /// The client sent a close frame (the close handshake was completed).
    ClientClose,
    /// The peer went away without a close handshake (EOF or reset).
    PeerGone,
    /// No 22000 heartbeat within
    /// [`SimConfig::heartbeat_cutoff`](super::SimConfig::heartbeat_cutoff);
    /// the server sent a close frame.
    HeartbeatTimeout,
    /// Bad token: HTTP 401 at the handshake, or ret 401 then a close frame.
    TokenRejected,
    /// The handshake was answered with this HTTP status
    /// (`Simulator::set_handshake_status`).
    HandshakeStatus(u16),
    /// The TLS or WebSocket handshake failed for another reason.
    HandshakeFailed(String),
    /// Closed without a close frame (TCP shutdown): by
    /// `Simulator::drop_connections`, by `Simulator::set_drop_after_ack`,
    /// or by `Simulator::reset_connections` when no unread client data
    /// arrived within 5 s (then the client sees an orderly FIN, not a reset).
    Dropped,
    /// Cut by `Simulator::set_cut_every`: everything written was flushed,
    /// then TCP was shut down (no close frame).
    Cut,
    /// Reset by `Simulator::reset_connections`: the socket was closed with
    /// unread data in its receive buffer, so the kernel sent a TCP RST.
    Reset,
    /// The server sent a close frame with this code: by
    /// `Simulator::close_connections`, or 1008 after a ret 606 injected by
    /// `Simulator::fail_next`.
    ServerClose(u16),
    /// Refused by the connections-per-token limit
    /// (`Simulator::set_connection_limit`): accepted at the WebSocket
    /// level, then closed at once with close frame 1008 "too many connections".
    TooManyConnections,
    /// Closed because the simulator was dropped.
    Shutdown,
    /// Any other I/O or protocol error (message text).
    Error(String),
}

/// One accepted TCP connection that is not an HTTP request to the K-line
/// API (those are [`HttpRequest`]s): recorded as soon as its first bytes
/// show it is not one (or, with TLS, after the TLS handshake; or when it
/// ends before that).
#[derive(Clone, Debug)]
pub struct ConnRecord {
    /// Connection id (1, 2, 3, … in the order connections are recorded:
    /// accept order, HTTP requests not counted).
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
    /// The `ret` the simulator answered with (200, 400, 401, 601, 429 or 605
    /// ([`TooFast`](super::TooFast)), or a
    /// ret injected by `Simulator::fail_next`, `Simulator::refuse_codes`
    /// or `Simulator::set_max_symbols`: 600, 603, 604, 606, …).
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
    /// The push's `seq` (see `SeqStyle`; with the default per code and
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
    /// `Readings::tick_time_seconds`).
    pub tick_time: u64,
    /// The push's real time in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Padding levels in a depth push (`Readings::padded_depth`); 0 for trades.
    pub bad_levels: usize,
}

/// Everything the simulator has recorded so far.
#[derive(Clone, Debug, Default)]
pub struct SimState {
    /// One per TCP connection accepted, in order (including those rejected
    /// at the handshake), except HTTP requests to the K-line API.
    pub connections: Vec<ConnRecord>,
    /// Every request frame received, in arrival order (the latest
    /// [`MAX_RECORDED_PUSHES`](super::MAX_RECORDED_PUSHES) at most).
    pub requests: Vec<Request>,
    /// Every trade push of the random walk sent (22998); a [`Feed`](super::Feed)'s are
    /// not recorded.
    pub ticks: Vec<SentTick>,
    /// Every depth push of the random walk sent (22999).
    pub depth_pushes: Vec<SentTick>,
    /// Number of old entries removed from `ticks` and `depth_pushes` to stay
    /// under [`MAX_RECORDED_PUSHES`](super::MAX_RECORDED_PUSHES) each.
    pub discarded_pushes: u64,
    /// Number of old entries removed from `requests` to stay under
    /// [`MAX_RECORDED_PUSHES`](super::MAX_RECORDED_PUSHES).
    pub discarded_requests: u64,
    /// Every HTTP request (the K-line API), in the order they were answered
    /// (the latest [`MAX_RECORDED_PUSHES`](super::MAX_RECORDED_PUSHES) at most).
    pub http_requests: Vec<HttpRequest>,
    /// Number of old entries removed from `http_requests`.
    pub discarded_http_requests: u64,
    /// HTTP requests refused for the plan's limits
    /// (`SimConfig::http_limits`), however they were answered.
    pub http_over_limit: u64,
    /// Every injected frame, per connection, recorded after the write attempt.
    #[cfg(feature = "testing")]
    pub injected: Vec<Injected>,
    /// Every trade pushed once more on a subscription
    /// (`Readings::repush_last_trade`): the push it repeats, with the
    /// connection and time of the repeat.
    #[cfg(feature = "testing")]
    pub repushes: Vec<SentTick>,
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

    /// HTTP requests for this code, in the order they were answered.
    pub fn http_requests_for(&self, code: &str) -> Vec<&HttpRequest> {
        self.http_requests
            .iter()
            .filter(|r| r.code.as_deref() == Some(code))
            .collect()
    }

    /// Trade pushes of this code, in send order.
    pub fn ticks_for(&self, code: &str) -> Vec<&SentTick> {
        self.ticks.iter().filter(|t| t.code == code).collect()
    }
}

/// One HTTP request to the simulator, recorded as it is answered (one that
/// hangs, as the hang begins): what it asked and what it got.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// When its head had been read.
    pub at: Instant,
    /// The same moment on the simulator's clock, ms since the Unix epoch.
    pub at_ms: u64,
    /// The request method (`GET`).
    pub method: String,
    /// The path of the request target, without its query
    /// (`/quote-b-api/kline`).
    pub path: String,
    /// The base the path lies under: [`Market::Stock`] for
    /// `HTTP_STOCK_BASE`, [`Market::Forex`] for `HTTP_FOREX_BASE`.
    pub base: Option<Market>,
    /// The `token` parameter, percent-decoded.
    pub token: Option<String>,
    /// The query's `trace`, if a string.
    pub trace: Option<String>,
    /// `data.code`, if a string.
    pub code: Option<String>,
    /// `data.kline_type`, if a whole number (or its digits as a string).
    pub kline_type: Option<u64>,
    /// `data.kline_timestamp_end` (seconds; 0 = now), likewise.
    pub kline_timestamp_end: Option<u64>,
    /// `data.query_kline_num`, likewise.
    pub query_kline_num: Option<u64>,
    /// The HTTP status answered; 0 for a request never answered
    /// (`HttpFault::Hang`).
    pub status: u16,
    /// The `ret` of the body; None if the body has none (404, 405, an
    /// injected 5xx, a body that is not JSON, no answer).
    pub ret: Option<u32>,
    /// Entries of `kline_list` sent (repeated ones included).
    pub bars: usize,
    /// Whether it counted toward the plan's limits (`SimConfig::http_limits`):
    /// every request under a K-line base with a good token that was not
    /// itself refused for the limits.
    pub counted: bool,
}
