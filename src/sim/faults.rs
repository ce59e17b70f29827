//! Fault injection for tests (feature `testing`): the [`Simulator`]
//! switches, the state behind them, and what a connection does with them.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Bytes, Message};

use super::conn::{Conn, is_timeout};
use super::inject::Inject;
use super::server::{Inner, Shared, lock};
use super::{CLOSE_DRAIN, CloseCause, HANDSHAKE_POLL, LOOP_TICK, Simulator, WRITE_TIMEOUT};

/// Longest [`Simulator::reset_connections`] waits for unread client data.
const RESET_WAIT: Duration = Duration::from_secs(5);

/// Fault-injection switches set through the [`Simulator`] methods.
#[derive(Default)]
pub(super) struct Faults {
    /// (cmd_id, ret, remaining count), consumed front to back.
    fail_next: VecDeque<(u64, u32, usize)>,
    /// Refused codes and the ret that refuses them.
    refused: Vec<(String, u32)>,
    max_symbols: Option<usize>,
    over_limit: OverLimit,
    /// [`Simulator::set_market_check`]: `true` unless switched off.
    any_market: bool,
    conn_limit: Option<usize>,
    release_delay: Duration,
    drop_after_ack: Option<Duration>,
    cut_every: Option<Duration>,
    handshake_status: Option<u16>,
}

/// What the simulator does with a subscription over
/// [`Simulator::set_max_symbols`]'s limit. AllTick's docs allow both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverLimit {
    /// Answer ret 603 "token level not enough" and leave the set unchanged
    /// (the default).
    #[default]
    Refuse,
    /// "Only processes the first N codes and ignores the rest": answer
    /// ret 200 and serve (and record in
    /// [`ConnRecord::trade_codes`](super::ConnRecord::trade_codes) /
    /// `depth_codes`) only the first N distinct codes of the request.
    ServeFirst,
}

/// The switches' side of one connection: kept in its handle.
pub(super) struct Remote {
    pub(super) reset: Arc<AtomicBool>,
    pub(super) cmds: Sender<Command>,
    /// The WebSocket handshake completed (only open connections get commands).
    pub(super) open: bool,
}

/// The connection thread's side of its [`Remote`].
pub(super) struct RemoteCtl {
    reset: Arc<AtomicBool>,
    cmds: Receiver<Command>,
}

/// A command for a connection thread.
pub(super) enum Command {
    Close(u16, String),
    Inject(Inject),
}

/// A new connection's pair of [`Remote`] ends.
pub(super) fn remote() -> (Remote, RemoteCtl) {
    let (tx, rx) = mpsc::channel();
    let reset = Arc::new(AtomicBool::new(false));
    let remote = Remote {
        reset: Arc::clone(&reset),
        cmds: tx,
        open: false,
    };
    (remote, RemoteCtl { reset, cmds: rx })
}

impl Simulator {
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
    /// [`ConnRecord::accepted`](super::ConnRecord::accepted) and not closed; a connection still in its
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
        for h in handles.iter().filter(|h| h.remote.open) {
            h.remote.reset.store(true, Ordering::SeqCst);
        }
    }

    /// Answer the next `count` requests (on any connection) whose `cmd_id`
    /// is `cmd_id` with `ret` (and the `msg` AllTick's error-code table gives it) instead
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
    /// answered ret 603 "token level not enough" and the set is unchanged,
    /// or, after `set_over_limit(OverLimit::ServeFirst)`, acknowledged with
    /// only its first `n` codes served. None = unlimited (the default).
    pub fn set_max_symbols(&self, n: Option<usize>) {
        lock(&self.shared.faults).max_symbols = n;
    }

    /// What a request over [`Simulator::set_max_symbols`]'s limit gets:
    /// [`OverLimit::Refuse`] (ret 603, the default) or
    /// [`OverLimit::ServeFirst`] (ret 200, first N codes served).
    pub fn set_over_limit(&self, mode: OverLimit) {
        lock(&self.shared.faults).over_limit = mode;
    }

    /// Whether each connection serves only the codes of the market its URL
    /// path names (on by default): on [`STOCK_PATH`](super::STOCK_PATH)
    /// stock codes (`….US`, `….HK`, `….SH`, `….SZ`), on
    /// [`FOREX_PATH`](super::FOREX_PATH) every other code, on any other path
    /// any code. A 22004/22002 with a code of the wrong market is refused
    /// as a whole with ret 600 "code invalid", like AllTick's server, and
    /// the set is unchanged. `false` serves any code on any path.
    pub fn set_market_check(&self, on: bool) {
        lock(&self.shared.faults).any_market = !on;
    }

    /// Abruptly close connection `id` (TCP shutdown, no close frame;
    /// recorded as [`CloseCause::Dropped`]); the others are untouched.
    /// Returns false if no such connection is open.
    pub fn drop_connection(&self, id: u64) -> bool {
        let handles = lock(&self.shared.handles);
        let Some(h) = handles.iter().find(|h| h.id == id) else {
            return false;
        };
        h.kill.store(true, Ordering::SeqCst);
        let _ = h.stream.shutdown(std::net::Shutdown::Both);
        true
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

    /// If Some(d): each connection is cut `d` after its WebSocket handshake:
    /// what was written is flushed, then the TCP connection is shut down
    /// (no close frame; the client's last bytes are read until it goes, so
    /// no reset loses what was sent), recorded as [`CloseCause::Cut`]. So
    /// every push recorded on a cut connection reached the client. Evaluated
    /// continuously against the current setting; None (the default) = never.
    pub fn set_cut_every(&self, d: Option<Duration>) {
        lock(&self.shared.faults).cut_every = d;
    }

    /// If Some(status): answer every WebSocket handshake with this HTTP
    /// status (e.g. 500; an invalid code becomes 500) instead of upgrading,
    /// before any token check; recorded as [`CloseCause::HandshakeStatus`].
    /// None (the default) = upgrade normally.
    pub fn set_handshake_status(&self, status: Option<u16>) {
        lock(&self.shared.faults).handshake_status = status;
    }
}

impl Shared {
    pub(super) fn silent(&self) -> bool {
        self.silent.load(Ordering::SeqCst)
    }

    /// Send a command to every open connection.
    pub(super) fn send_to_open(&self, make: impl Fn() -> Command) {
        let handles = lock(&self.handles);
        for h in handles.iter().filter(|h| h.remote.open) {
            // A send error means the thread has just ended: nothing to do.
            let _ = h.remote.cmds.send(make());
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

    /// Let the switches reach connection `id` (its handshake completed).
    pub(super) fn open_for_commands(&self, id: u64) {
        if let Some(h) = lock(&self.handles).iter_mut().find(|h| h.id == id) {
            h.remote.open = true;
        }
    }

    /// The connections-per-token limit ([`Simulator::set_connection_limit`]),
    /// checked while `inner` is locked as connection `id` is admitted:
    /// true if `id` is over the limit (then it never counts).
    pub(super) fn limit_exceeded(&self, inner: &mut Inner, id: u64) -> bool {
        let (limit, delay) = {
            let faults = lock(&self.faults);
            (faults.conn_limit, faults.release_delay)
        };
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
        over
    }

    /// Consume one matching [`Simulator::fail_next`] entry; returns its ret.
    pub(super) fn take_failure(&self, cmd_id: u64) -> Option<(u32, &'static str)> {
        let mut faults = lock(&self.faults);
        let pos = faults.fail_next.iter().position(|f| f.0 == cmd_id)?;
        let entry = &mut faults.fail_next[pos];
        let ret = entry.1;
        entry.2 -= 1;
        if entry.2 == 0 {
            faults.fail_next.remove(pos);
        }
        Some((ret, ret_msg(ret)))
    }

    /// The ret refusing this subscription list, if any ([`Simulator::refuse_codes`],
    /// [`Simulator::set_max_symbols`] with [`OverLimit::Refuse`]); with
    /// [`OverLimit::ServeFirst`] an over-long `list` is cut to the limit.
    pub(super) fn refusal(&self, list: &mut Vec<(String, usize)>) -> Option<(u32, &'static str)> {
        let faults = lock(&self.faults);
        let refused = list
            .iter()
            .find_map(|(code, _)| faults.refused.iter().find(|(c, _)| c == code))
            .map(|(_, ret)| *ret);
        let ret = refused.or(match faults.max_symbols {
            Some(max) if list.len() > max => match faults.over_limit {
                OverLimit::Refuse => Some(603),
                OverLimit::ServeFirst => {
                    list.truncate(max);
                    None
                }
            },
            _ => None,
        })?;
        Some((ret, ret_msg(ret)))
    }

    /// [`Simulator::set_market_check`] is on.
    pub(super) fn market_check(&self) -> bool {
        !lock(&self.faults).any_market
    }

    pub(super) fn drop_after_ack(&self) -> Option<Duration> {
        lock(&self.faults).drop_after_ack
    }

    pub(super) fn cut_every(&self) -> Option<Duration> {
        lock(&self.faults).cut_every
    }

    pub(super) fn handshake_status(&self) -> Option<u16> {
        lock(&self.faults).handshake_status
    }
}

/// The `msg` of a `ret`, as AllTick's error-code table words it.
pub(super) fn ret_msg(ret: u32) -> &'static str {
    match ret {
        200 => "ok",
        400 | 202 => "request header/data param invalid",
        401 => "token invalid",
        402 => "query invalid",
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

impl Conn<'_> {
    /// While the simulator is silent, wait without touching the socket;
    /// then restart the clocks so the client is not punished for our
    /// silence. Err(cause) if the connection ends meanwhile.
    pub(super) fn pause_while_silent(&mut self) -> Result<(), CloseCause> {
        if !self.shared.silent() {
            return Ok(());
        }
        loop {
            if let Some(cause) = self.ended() {
                return Err(cause);
            }
            if !self.shared.silent() {
                break;
            }
            if self.ctl.remote.reset.load(Ordering::SeqCst) {
                // No ping while silent: wait for the client's own data.
                return Err(self.reset(false));
            }
            thread::sleep(LOOP_TICK);
        }
        // Restart the heartbeat and rate clocks, and do not burst missed
        // pushes.
        let now = Instant::now();
        self.last_heartbeat = now;
        self.last_request = None;
        for s in self.trades.iter_mut().chain(self.depth.iter_mut()) {
            s.due = s.due.max(now);
        }
        Ok(())
    }

    /// Carry out the commands and a reset request from the [`Simulator`].
    /// Returns Some(cause) if the connection ends.
    pub(super) fn remote_commands(&mut self) -> Option<CloseCause> {
        while let Ok(cmd) = self.ctl.remote.cmds.try_recv() {
            if let Some(cause) = self.command(cmd) {
                return Some(cause);
            }
        }
        if self.ctl.remote.reset.load(Ordering::SeqCst) {
            return Some(self.reset(true));
        }
        None
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

    /// [`Simulator::set_cut_every`]: flush what was written, shut the TCP
    /// connection down, and read until the client has gone (bounded).
    pub(super) fn cut(&mut self) -> CloseCause {
        let deadline = Instant::now() + WRITE_TIMEOUT;
        while let Err(e) = self.ws.flush() {
            if !is_timeout(&e) || Instant::now() >= deadline {
                break;
            }
        }
        let tcp = self.ws.get_ref().tcp();
        let _ = tcp.shutdown(Shutdown::Write);
        let _ = tcp.set_read_timeout(Some(HANDSHAKE_POLL));
        // Closing with unread data would send a reset, which may cost the
        // client what it has not read yet: read until its end instead.
        let deadline = Instant::now() + CLOSE_DRAIN;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline && self.ended().is_none() {
            match self.ws.get_mut().read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        self.ended().unwrap_or(CloseCause::Cut)
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
        if let Some(cause) = self.ended() {
            return cause;
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
}
