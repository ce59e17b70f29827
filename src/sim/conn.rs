//! One connection: handshake, then the loop that reads requests, sends
//! pushes and watches the heartbeat cutoff.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::handshake::server::{ErrorResponse, Request as HsRequest, Response as HsResponse};
use tungstenite::http::StatusCode;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Error as WsError, HandshakeError, Message, WebSocket};

use super::feed::{self, FeedState};
use super::request::{market_of_path, token_from_query};
use super::server::{Ctl, Shared, interval_for};
use super::{CLOSE_DRAIN, CloseCause, HANDSHAKE_POLL, LOOP_TICK, MAX_CATCHUP, Reject};
use crate::wire::protocol::FeedKind;
use crate::wire::symbol::Market;

pub(super) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 << 20)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// While the simulator is silent, idle without touching the socket. Returns
/// Some(cause) if the connection must end (shutdown or drop_connections).
pub(super) fn idle_while_silent(shared: &Shared, kill: &AtomicBool) -> Option<CloseCause> {
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
pub(super) enum SimStream {
    Plain(TcpStream),
    #[cfg(feature = "testing")]
    Tls(Box<super::tls::TlsConn>),
}

impl SimStream {
    /// The underlying TCP stream (for timeouts and `peek`).
    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            SimStream::Plain(s) => s,
            #[cfg(feature = "testing")]
            SimStream::Tls(s) => s.get_ref(),
        }
    }

    /// End what was written: TLS's close_notify, or a TCP FIN.
    pub(super) fn finish(&mut self) {
        match self {
            SimStream::Plain(s) => {
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
            #[cfg(feature = "testing")]
            SimStream::Tls(s) => {
                let _ = s.shutdown();
            }
        }
    }
}

impl Read for SimStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            SimStream::Plain(s) => s.read(buf),
            #[cfg(feature = "testing")]
            SimStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for SimStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            SimStream::Plain(s) => s.write(buf),
            #[cfg(feature = "testing")]
            SimStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            SimStream::Plain(s) => s.flush(),
            #[cfg(feature = "testing")]
            SimStream::Tls(s) => s.flush(),
        }
    }
}

/// Run one connection from handshake to end (its socket's timeouts set
/// and, with TLS, its TLS handshake done); returns why it ended.
pub(super) fn serve(shared: &Shared, id: u64, stream: SimStream, ctl: &Ctl) -> CloseCause {
    let (mut ws, token_bad) = match handshake(shared, id, stream, &ctl.kill) {
        Ok(done) => done,
        Err(cause) => return cause,
    };
    let over_limit = shared.admit(id);
    let path = shared
        .lock_inner()
        .state
        .conn(id)
        .map(|c| c.path.clone())
        .unwrap_or_default();

    let rate_bits = shared.rate_bits.load(Ordering::SeqCst);
    let feed = feed::open(shared, &mut ws);
    let now = Instant::now();
    let mut conn = Conn {
        shared,
        id,
        ctl,
        ws,
        token_bad,
        market: market_of_path(&path),
        // A feed paces its own pushes.
        interval: interval_for(f64::from_bits(rate_bits)).filter(|_| !feed.has_conn()),
        rate_bits,
        trades: Vec::new(),
        depth: Vec::new(),
        last_request: None,
        last_heartbeat: now,
        started: now,
        first_ack: None,
        pending: None,
        feed,
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

/// The WebSocket handshake of connection `id`, with the token check;
/// returns the WebSocket and whether the token was bad (with
/// [`Reject::Ret401`]).
// The handshake callback's error type is fixed by tungstenite.
#[allow(clippy::result_large_err)]
fn handshake(
    shared: &Shared,
    id: u64,
    stream: SimStream,
    kill: &AtomicBool,
) -> Result<(WebSocket<SimStream>, bool), CloseCause> {
    if let Some(cause) = idle_while_silent(shared, kill) {
        return Err(cause);
    }

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
    loop {
        match attempt {
            Ok(ws) => return Ok((ws, token_bad.get())),
            Err(HandshakeError::Interrupted(mid)) => {
                if let Some(cause) = idle_while_silent(shared, kill) {
                    return Err(cause);
                }
                attempt = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => {
                return Err(if let Some(status) = refused_status.get() {
                    CloseCause::HandshakeStatus(status)
                } else if rejected_http.get() {
                    CloseCause::TokenRejected
                } else if shared.stopping() {
                    CloseCause::Shutdown
                } else if kill.load(Ordering::SeqCst) {
                    CloseCause::Dropped
                } else {
                    CloseCause::HandshakeFailed(e.to_string())
                });
            }
        }
    }
}

/// Schedule of pushes for one subscribed code.
pub(super) struct Sched {
    pub(super) code: String,
    pub(super) level: usize,
    pub(super) due: Instant,
}

pub(super) struct Conn<'a> {
    pub(super) shared: &'a Shared,
    pub(super) id: u64,
    pub(super) ctl: &'a Ctl,
    pub(super) ws: WebSocket<SimStream>,
    pub(super) token_bad: bool,
    /// The market the connection's URL path serves (None: any code).
    pub(super) market: Option<Market>,
    pub(super) interval: Option<Duration>,
    /// The rate `interval` was computed from (`f64::to_bits`).
    pub(super) rate_bits: u64,
    pub(super) trades: Vec<Sched>,
    pub(super) depth: Vec<Sched>,
    pub(super) last_request: Option<Instant>,
    pub(super) last_heartbeat: Instant,
    /// When the WebSocket handshake completed.
    pub(super) started: Instant,
    /// When the first 22004 was answered with ret 200.
    pub(super) first_ack: Option<Instant>,
    /// A message read just as silence began, handled when it ends.
    pub(super) pending: Option<Message>,
    /// The connection's [`Feed`](super::Feed), if the pushes come from one.
    pub(super) feed: FeedState,
}

pub(super) fn is_timeout(e: &WsError) -> bool {
    matches!(e, WsError::Io(io) if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

impl Conn<'_> {
    /// Serve the connection until it ends; returns why it ended.
    fn run(mut self) -> CloseCause {
        loop {
            if let Some(cause) = self.ended() {
                return cause;
            }
            if let Err(cause) = self.pause_while_silent() {
                return cause;
            }
            let now = Instant::now();
            self.refresh_rate(now);
            if let Some(msg) = self.pending.take()
                && let Some(cause) = self.handle_message(msg)
            {
                return cause;
            }
            if let Some(cause) = self.remote_commands() {
                return cause;
            }
            if self.drop_at().is_some_and(|at| now >= at) {
                return CloseCause::Dropped;
            }
            if self.cut_at().is_some_and(|at| now >= at) {
                return self.cut();
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
            let read = if wait.is_zero() {
                self.read_now()
            } else {
                if let Err(e) = self.ws.get_ref().tcp().set_read_timeout(Some(wait)) {
                    return CloseCause::Error(format!("set_read_timeout: {e}"));
                }
                self.ws.read()
            };
            match read {
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

    /// Some(cause) if the simulator is stopping or dropped this connection.
    pub(super) fn ended(&self) -> Option<CloseCause> {
        if self.shared.stopping() {
            Some(CloseCause::Shutdown)
        } else if self.ctl.kill.load(Ordering::SeqCst) {
            Some(CloseCause::Dropped)
        } else {
            None
        }
    }

    /// When `Simulator::set_drop_after_ack` wants this connection dropped.
    pub(super) fn drop_at(&self) -> Option<Instant> {
        let ack = self.first_ack?;
        ack.checked_add(self.shared.drop_after_ack()?)
    }

    /// When `Simulator::set_cut_every` wants this connection cut.
    fn cut_at(&self) -> Option<Instant> {
        self.started.checked_add(self.shared.cut_every()?)
    }

    /// Pick up a rate change (`Simulator::set_ticks_per_sec`): reschedule
    /// every subscribed code, staggered over one new interval.
    fn refresh_rate(&mut self, now: Instant) {
        let bits = self.shared.rate_bits.load(Ordering::SeqCst);
        if bits == self.rate_bits || self.has_feed() {
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

    /// Act on one message read from the client. Returns Some(cause) if the
    /// connection ends.
    pub(super) fn handle_message(&mut self, msg: Message) -> Option<CloseCause> {
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

    /// How long the next read may block (zero: it must not).
    fn next_wait(&self, now: Instant) -> Duration {
        let mut wait = LOOP_TICK;
        if let Some(feed) = self.feed_wait(now) {
            if feed.is_zero() {
                return Duration::ZERO;
            }
            wait = wait.min(feed);
        }
        if self.interval.is_some() {
            for s in self.trades.iter().chain(self.depth.iter()) {
                wait = wait.min(s.due.saturating_duration_since(now));
            }
        }
        let hb_deadline = self.last_heartbeat + self.shared.cfg.heartbeat_cutoff;
        wait = wait.min(hb_deadline.saturating_duration_since(now));
        for at in [self.drop_at(), self.cut_at()].into_iter().flatten() {
            wait = wait.min(at.saturating_duration_since(now));
        }
        wait.max(Duration::from_millis(1))
    }

    /// Classify an error that ends the connection.
    pub(super) fn fatal(&self, e: WsError) -> CloseCause {
        if let Some(cause) = self.ended() {
            return cause;
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
    pub(super) fn check_write(&mut self, r: Result<(), WsError>) -> Result<(), CloseCause> {
        match r {
            Ok(()) => Ok(()),
            Err(e) if is_timeout(&e) => {
                self.note_backlog();
                Ok(())
            }
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
    pub(super) fn close_with(
        &mut self,
        code: CloseCode,
        reason: &str,
        cause: CloseCause,
    ) -> CloseCause {
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

    /// Send every push that is due (recording each before writing it), or
    /// what the feed has due.
    fn push_due(&mut self, now: Instant) -> Result<(), CloseCause> {
        if self.has_feed() {
            return self.push_feed(now);
        }
        let Some(interval) = self.interval else {
            return Ok(());
        };
        if self.shared.silent() {
            return Ok(());
        }
        let mut due: Vec<(FeedKind, String, usize)> = Vec::new();
        for (kind, list) in [
            (FeedKind::Trades, &mut self.trades),
            (FeedKind::Depth, &mut self.depth),
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
