//! One open WebSocket connection: the socket, its request pacing, the
//! requests in flight and its liveness clock, behind a small surface —
//! [`Connection::read`], [`Connection::tick`], [`Connection::send`],
//! [`Connection::close`].
//!
//! The socket's read timeout is the clock: [`Connection::read`] returns
//! [`Frame::Idle`] at least every [`TICK`]. While a burst of pushes is being
//! drained the socket is non-blocking, and the end of the burst is reported
//! as [`Frame::BurstOver`] so the caller can hand the batch over.

use std::time::{Duration, Instant};

use tungstenite::Message;
use tungstenite::Utf8Bytes;

use crate::session::connect::{self, Ws};
use crate::session::error::{Disconnect, describe, is_timeout};
use crate::session::policy::{Health, InFlight, Liveness, Requests};
use crate::session::schedule::{Due, Pacer};
use crate::wire::protocol::{self, Response};

/// Longest one read blocks: bounds how late a stdin command or a stop
/// request is noticed.
pub const TICK: Duration = Duration::from_millis(250);

/// How long a stop waits for the server's close reply.
pub const CLOSE_WAIT: Duration = Duration::from_millis(400);

/// What one read produced.
#[derive(Debug)]
pub enum Frame {
    /// A text frame.
    Text(Utf8Bytes),
    /// A binary frame (AllTick sends none).
    Binary,
    /// Nothing to hand over: a timeout tick, a control frame, or the close
    /// frame (the end follows as an error on a later read).
    Idle,
    /// A drained burst ended: the socket is empty and blocking again.
    BurstOver,
}

/// An open connection.
pub struct Connection {
    ws: Ws,
    pacer: Pacer,
    requests: Requests,
    liveness: Liveness,
    health: Health,
    next_seq_id: u32,
    /// Something arrived since the last [`Connection::tick`].
    heard: bool,
    /// The socket is non-blocking to drain a burst.
    draining: bool,
    /// The server's close frame, reported when the connection ends.
    closed_by_server: Option<Disconnect>,
}

impl Connection {
    /// Take over a freshly opened socket.
    pub fn new(
        ws: Ws,
        heartbeat: Duration,
        stale_after: Duration,
        now: Instant,
    ) -> Result<Connection, Disconnect> {
        connect::tcp(&ws)
            .set_read_timeout(Some(TICK))
            .map_err(|e| Disconnect::Setup(e.to_string()))?;
        Ok(Connection {
            ws,
            pacer: Pacer::new(heartbeat, now),
            requests: Requests::default(),
            liveness: Liveness::new(now, stale_after),
            health: Health::default(),
            next_seq_id: 1,
            heard: false,
            draining: false,
            closed_by_server: None,
        })
    }

    /// Read one frame, or learn that the connection ended.
    pub fn read(&mut self) -> Result<Frame, Disconnect> {
        let msg = match self.ws.read() {
            Ok(m) => m,
            Err(e) if is_timeout(&e) => {
                if !self.draining {
                    return Ok(Frame::Idle);
                }
                self.draining = false;
                connect::tcp(&self.ws)
                    .set_nonblocking(false)
                    .map_err(|e| Disconnect::Setup(e.to_string()))?;
                return Ok(Frame::BurstOver);
            }
            Err(tungstenite::Error::ConnectionClosed) => {
                return Err(self.closed_by_server.take().unwrap_or(Disconnect::Closed));
            }
            Err(e) => return Err(Disconnect::from_read(&e)),
        };
        self.heard = true;
        Ok(match msg {
            Message::Text(text) => Frame::Text(text),
            Message::Binary(_) => Frame::Binary,
            Message::Close(frame) => {
                self.closed_by_server = Some(Disconnect::ServerClosed {
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame
                        .map(|f| f.reason.chars().take(100).collect())
                        .unwrap_or_default(),
                });
                Frame::Idle
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Frame::Idle,
        })
    }

    /// Read on without blocking until the socket is empty (then
    /// [`Frame::BurstOver`]).
    pub fn drain(&mut self) -> Result<(), Disconnect> {
        if !self.draining {
            connect::tcp(&self.ws)
                .set_nonblocking(true)
                .map_err(|e| Disconnect::Setup(e.to_string()))?;
            self.draining = true;
        }
        Ok(())
    }

    /// Whether a burst is being drained.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// The clock's work: liveness, and pushing out a request that met a
    /// full socket buffer. Returns what is due to be sent.
    pub fn tick(&mut self, now: Instant, subscription_pending: bool) -> Result<Due, Disconnect> {
        self.take_heard(now);
        if self.liveness.is_stale(now) {
            return Err(Disconnect::Stale(self.liveness.window()));
        }
        match self.ws.flush() {
            Err(tungstenite::Error::Io(e)) if !crate::session::error::is_timeout_io(&e) => {
                return Err(Disconnect::SendFailed(e.to_string()));
            }
            // Closed connections and the like surface on the next read,
            // with their reason.
            _ => {}
        }
        Ok(self.pacer.due(now, subscription_pending))
    }

    /// Whether anything arrived since the last call (which moves the
    /// liveness clock to `now`).
    pub fn take_heard(&mut self, now: Instant) -> bool {
        let heard = std::mem::take(&mut self.heard);
        if heard {
            self.liveness.heard(now);
            self.health.heard(now);
        }
        heard
    }

    /// The next request's seq_id (never 0: AllTick's errors may carry 0).
    pub fn next_seq_id(&mut self) -> u32 {
        let id = self.next_seq_id;
        self.next_seq_id = self.next_seq_id.wrapping_add(1).max(1);
        id
    }

    /// Send a heartbeat.
    pub fn heartbeat(&mut self, now: Instant) -> Result<(), Disconnect> {
        let id = self.next_seq_id();
        let text = protocol::heartbeat(id, &format!("hb-{id}"));
        let req = InFlight {
            cmd: protocol::CMD_HEARTBEAT,
            feed: None,
            codes: Vec::new(),
            sent_at: now,
        };
        self.send(id, text, req, Due::Heartbeat)
    }

    /// Send request `text` (encoded with `seq_id`) and remember it.
    pub fn send(
        &mut self,
        seq_id: u32,
        text: String,
        req: InFlight,
        what: Due,
    ) -> Result<(), Disconnect> {
        match self.ws.send(Message::text(text)) {
            // A write that times out leaves the frame buffered inside
            // tungstenite; it goes out with the next flush.
            Ok(()) => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(Disconnect::SendFailed(describe(&e))),
        }
        self.pacer.sent(what, req.sent_at);
        self.requests.sent(seq_id, req);
        Ok(())
    }

    /// The request an answer belongs to (see [`Requests::answered`]).
    pub fn answered(&mut self, r: &Response) -> Option<InFlight> {
        self.requests.answered(r)
    }

    /// Requests that got no answer in time.
    pub fn expire(&mut self, now: Instant) -> Vec<InFlight> {
        self.requests.expire(now)
    }

    /// Hold subscription requests until `until` (after a rate limit).
    pub fn delay_subscriptions(&mut self, until: Instant) {
        self.pacer.delay_subscription_until(until);
    }

    /// The connection's health, for the backoff steps it earns back.
    pub fn health(&mut self) -> &mut Health {
        &mut self.health
    }

    /// Send a close frame and keep reading (bounded by [`CLOSE_WAIT`])
    /// until the server's reply, so every push it sent before seeing our
    /// close is kept: each text frame goes to `on_text`.
    pub fn close(mut self, mut on_text: impl FnMut(&str)) {
        let tcp = connect::tcp(&self.ws);
        let _ = tcp.set_nonblocking(false);
        let _ = tcp.set_read_timeout(Some(Duration::from_millis(50)));
        let _ = self.ws.close(None);
        let until = Instant::now() + CLOSE_WAIT;
        while Instant::now() < until {
            match self.ws.read() {
                Ok(Message::Text(text)) => on_text(text.as_str()),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {
                    let _ = self.ws.flush();
                }
                Err(_) => break,
            }
        }
    }
}
