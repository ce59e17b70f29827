//! Where a connection's pushes come from.
//!
//! By default the random walk of `market`: prices shared by every
//! connection, a push per subscribed code every 1/`ticks_per_sec` s. A
//! simulator started with [`Simulator::start_feed`](super::Simulator::start_feed)
//! asks a [`Feed`] instead: each connection gets a [`FeedConn`] of its
//! own, told of every change to the connection's subscription sets and
//! asked for what is due. Everything else — the handshake and the token,
//! requests and their answers, the 1 s rule, the heartbeat cut-off — is
//! the same code for both. `alltick-stream serve` plays a capture this way.
//!
//! A feed's pushes are written in batches and a slow client slows the
//! feed down (nothing is dropped): while tungstenite still holds unsent
//! bytes, the feed is not asked for more, and the connection goes on
//! reading requests at least every [`LOOP_TICK`] meanwhile, so that a
//! client's requests are still timed on arrival.

use std::time::{Duration, Instant};

use tungstenite::{Error as WsError, Message, WebSocket};

use super::conn::{Conn, SimStream, is_timeout};
use super::server::Shared;
use super::{CloseCause, LOOP_TICK};
use crate::wire::protocol::FeedKind;

/// A source of pushes for every connection of a simulator.
pub trait Feed: Send + Sync {
    /// The pushes of a connection whose handshake just completed.
    fn connect(&self) -> Box<dyn FeedConn>;
}

/// What a connection's feed has for it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// This push is due: its JSON text, sent as one text frame.
    Push(String),
    /// Nothing is due before this instant (one at or before the `now` it
    /// was asked at: ask again soon, after the client's requests).
    At(Instant),
    /// Nothing is due until the subscriptions change.
    Idle,
}

/// One connection's pushes.
pub trait FeedConn: Send {
    /// The connection's set of `kind` is now `codes` (code and depth
    /// level, in request order): after every request that changed it
    /// (22002, 22004 or 22006 answered with ret 200).
    fn subscribed(&mut self, kind: FeedKind, codes: &[(String, usize)]);

    /// What is due at `now`.
    fn next(&mut self, now: Instant) -> Next;
}

/// Most pushes written in one turn of the connection's loop, before its
/// requests are looked at again.
const BATCH: usize = 512;

/// Bytes tungstenite gathers before it writes to the socket.
const WRITE_BUFFER: usize = 64 * 1024;

/// How soon a connection whose client is not reading tries to write again
/// (between two tries it reads requests).
const BACKLOG_RETRY: Duration = Duration::from_millis(1);

/// What a connection keeps of its feed.
#[derive(Default)]
pub(super) struct FeedState {
    /// The connection's feed (None: the random walk).
    conn: Option<Box<dyn FeedConn>>,
    /// When the feed wants to be asked again (None: not before a request).
    wake: Option<Instant>,
    /// tungstenite holds bytes the client has not taken yet.
    backlog: bool,
}

/// The feed of a connection whose handshake just completed on `ws`, if
/// the simulator has one: writes are then gathered, and bounded by
/// [`LOOP_TICK`] so that requests are read while a client is slow.
pub(super) fn open(shared: &Shared, ws: &mut WebSocket<SimStream>) -> FeedState {
    let Some(feed) = &shared.feed else {
        return FeedState::default();
    };
    let _ = ws.get_ref().tcp().set_write_timeout(Some(LOOP_TICK));
    ws.set_config(|c| c.write_buffer_size = WRITE_BUFFER);
    FeedState {
        conn: Some(feed.connect()),
        wake: None,
        backlog: false,
    }
}

impl FeedState {
    /// Whether there is a feed.
    pub(super) fn has_conn(&self) -> bool {
        self.conn.is_some()
    }
}

impl Conn<'_> {
    /// Whether the pushes come from a [`Feed`].
    pub(super) fn has_feed(&self) -> bool {
        self.feed.conn.is_some()
    }

    /// Tell the feed the connection's set of `kind` as it is now.
    pub(super) fn tell_feed(&mut self, kind: FeedKind) {
        let Some(feed) = self.feed.conn.as_mut() else {
            return;
        };
        let set = match kind {
            FeedKind::Trades => &self.trades,
            FeedKind::Depth => &self.depth,
        };
        let codes: Vec<(String, usize)> = set.iter().map(|s| (s.code.clone(), s.level)).collect();
        feed.subscribed(kind, &codes);
    }

    /// A write's timeout left bytes in tungstenite: they go out before
    /// anything new.
    pub(super) fn note_backlog(&mut self) {
        self.feed.backlog = true;
    }

    /// How long the next read may block for the feed's sake (None: no
    /// feed; zero: more is due now).
    pub(super) fn feed_wait(&self, now: Instant) -> Option<Duration> {
        self.feed.conn.as_ref()?;
        if self.feed.backlog {
            return Some(BACKLOG_RETRY);
        }
        Some(match self.feed.wake {
            Some(at) => at.saturating_duration_since(now),
            None => LOOP_TICK,
        })
    }

    /// Read a frame if one is there, without blocking.
    pub(super) fn read_now(&mut self) -> Result<Message, WsError> {
        self.ws.get_ref().tcp().set_nonblocking(true)?;
        let read = self.ws.read();
        self.ws.get_ref().tcp().set_nonblocking(false)?;
        read
    }

    /// Write what the feed has due, up to a batch, unless the client has
    /// not taken the previous one yet.
    pub(super) fn push_feed(&mut self, now: Instant) -> Result<(), CloseCause> {
        if self.feed.backlog {
            match self.ws.flush() {
                Ok(()) => self.feed.backlog = false,
                Err(e) if is_timeout(&e) => return Ok(()),
                Err(e) => return Err(self.fatal(e)),
            }
        }
        if self.shared.silent() {
            return Ok(());
        }
        let Some(feed) = self.feed.conn.as_mut() else {
            return Ok(());
        };
        let mut wake = Some(now);
        let mut wrote = false;
        let mut failed = None;
        for _ in 0..BATCH {
            match feed.next(now) {
                Next::Push(text) => {
                    wrote = true;
                    match self.ws.write(Message::text(text)) {
                        Ok(()) => {}
                        Err(e) if is_timeout(&e) => {
                            self.feed.backlog = true;
                            break;
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                Next::At(at) => {
                    wake = Some(at);
                    break;
                }
                Next::Idle => {
                    wake = None;
                    break;
                }
            }
        }
        self.feed.wake = wake;
        if let Some(e) = failed {
            return Err(self.fatal(e));
        }
        if wrote && !self.feed.backlog {
            match self.ws.flush() {
                Ok(()) => {}
                Err(e) if is_timeout(&e) => self.feed.backlog = true,
                Err(e) => return Err(self.fatal(e)),
            }
        }
        Ok(())
    }
}
