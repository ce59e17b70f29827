//! State shared by the simulator's threads, and the accept loop.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[cfg(feature = "testing")]
use super::faults::{Faults, Remote, RemoteCtl};
use super::feed::Feed;
use super::http::HttpCtl;
#[cfg(feature = "testing")]
use super::market::Readings;
use super::market::{CodeMarket, Rng, now_ms};
use super::{CloseCause, ConnRecord, LOOP_TICK, SimConfig, SimState};
use crate::wire::protocol::FeedKind;

pub(super) struct Shared {
    pub(super) cfg: SimConfig,
    /// Built from `cfg.tls` at start.
    #[cfg(feature = "testing")]
    pub(super) tls: Option<native_tls::TlsAcceptor>,
    pub(super) inner: Mutex<Inner>,
    pub(super) cond: Condvar,
    pub(super) stop: AtomicBool,
    /// [`super::Simulator::set_silent`].
    #[cfg(feature = "testing")]
    pub(super) silent: AtomicBool,
    pub(super) handles: Mutex<Vec<ConnHandle>>,
    #[cfg(feature = "testing")]
    pub(super) faults: Mutex<Faults>,
    /// Current ticks per second (`f64::to_bits`).
    pub(super) rate_bits: AtomicU64,
    /// Where the pushes come from (None: the random walk).
    pub(super) feed: Option<Arc<dyn Feed>>,
    /// The HTTP side's switches and counters.
    pub(super) http: Mutex<HttpCtl>,
}

/// Handles of connections whose kind is not known yet, and of HTTP
/// requests, are keyed from here up (never a [`ConnRecord::id`]).
const PROVISIONAL: u64 = 1 << 62;

/// What the simulator keeps to reach a connection from outside its thread.
pub(super) struct ConnHandle {
    /// The connection's [`ConnRecord::id`] once it has a record; until
    /// then, and for HTTP requests, a key from [`PROVISIONAL`] up.
    pub(super) id: u64,
    pub(super) stream: TcpStream,
    pub(super) kill: Arc<AtomicBool>,
    /// Reset flag and command channel of the fault switches.
    #[cfg(feature = "testing")]
    pub(super) remote: Remote,
}

/// The connection thread's side of its [`ConnHandle`].
pub(super) struct Ctl {
    pub(super) kill: Arc<AtomicBool>,
    #[cfg(feature = "testing")]
    pub(super) remote: RemoteCtl,
}

pub(super) struct Inner {
    pub(super) state: SimState,
    /// Per-code market state, shared by all connections (like the real feed).
    pub(super) market: HashMap<String, CodeMarket>,
    pub(super) rng: Rng,
    /// Connections refused by the connection limit (they never count).
    #[cfg(feature = "testing")]
    pub(super) over_limit: std::collections::HashSet<u64>,
    /// The readings played now.
    #[cfg(feature = "testing")]
    pub(super) readings: Readings,
    /// [`super::Simulator::set_clock_offset_ms`].
    #[cfg(feature = "testing")]
    pub(super) clock_offset_ms: i64,
    /// Where `SeqStyle::Counter` counters start.
    pub(super) counter_base: u64,
    /// How many unseen trades the market has made (`tape`).
    pub(super) unseen_trades: u64,
    /// `SeqStyle::PerConnection` counters: (connection, kind, code) → last seq.
    pub(super) conn_seq: HashMap<(u64, FeedKind, String), u64>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The state of a simulator started with `cfg` (TLS acceptor built),
    /// its pushes from `feed` or the random walk.
    pub(super) fn new(cfg: SimConfig, feed: Option<Arc<dyn Feed>>) -> io::Result<Shared> {
        #[cfg(feature = "testing")]
        let tls = super::tls::acceptor(&cfg)?;
        let start_ms = now_ms().saturating_add_signed(start_offset_ms(&cfg));
        Ok(Shared {
            http: Mutex::new(HttpCtl::new(&cfg, start_ms)),
            inner: Mutex::new(Inner {
                state: SimState::default(),
                market: HashMap::new(),
                rng: Rng::new(cfg.seed),
                #[cfg(feature = "testing")]
                over_limit: std::collections::HashSet::new(),
                #[cfg(feature = "testing")]
                readings: cfg.readings,
                #[cfg(feature = "testing")]
                clock_offset_ms: cfg.clock_offset_ms,
                counter_base: super::market::counter_base(start_offset_ms(&cfg)),
                conn_seq: HashMap::new(),
                unseen_trades: 0,
            }),
            rate_bits: AtomicU64::new(cfg.ticks_per_sec.to_bits()),
            feed,
            cfg,
            #[cfg(feature = "testing")]
            tls,
            cond: Condvar::new(),
            stop: AtomicBool::new(false),
            #[cfg(feature = "testing")]
            silent: AtomicBool::new(false),
            handles: Mutex::new(Vec::new()),
            #[cfg(feature = "testing")]
            faults: Mutex::new(Faults::default()),
        })
    }

    pub(super) fn lock_inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    pub(super) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Apply `f` to the record of connection `id` and notify waiters.
    pub(super) fn update_conn(&self, id: u64, f: impl FnOnce(&mut ConnRecord)) {
        let mut inner = self.lock_inner();
        if let Some(rec) = inner.state.connections.iter_mut().find(|c| c.id == id) {
            f(rec);
        }
        drop(inner);
        self.cond.notify_all();
    }

    /// Record the connection whose handle is keyed `key` (accepted at
    /// `opened_at`), now known not to be an HTTP request; returns its id,
    /// under which its handle is found from now on.
    pub(super) fn new_conn(&self, key: u64, opened_at: Instant) -> u64 {
        let mut handles = lock(&self.handles);
        let mut inner = self.lock_inner();
        let id = inner.state.connections.len() as u64 + 1;
        if let Some(h) = handles.iter_mut().find(|h| h.id == key) {
            h.id = id;
        }
        drop(handles);
        inner.state.connections.push(ConnRecord {
            id,
            token: None,
            accepted: false,
            closed: false,
            close_frame_received: false,
            path: String::new(),
            opened_at,
            closed_at: None,
            cause: None,
            trade_codes: Vec::new(),
            depth_codes: Vec::new(),
        });
        drop(inner);
        self.cond.notify_all();
        id
    }

    /// Shut down and forget the handle keyed `id`.
    pub(super) fn release_handle(&self, id: u64) {
        let mut handles = lock(&self.handles);
        if let Some(pos) = handles.iter().position(|h| h.id == id) {
            let h = handles.swap_remove(pos);
            let _ = h.stream.shutdown(Shutdown::Both);
        }
    }

    /// Mark connection `id` finished and forget its kill handle.
    pub(super) fn finish_conn(&self, id: u64, cause: CloseCause) {
        self.release_handle(id);
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
    pub(super) fn kill_all(&self) {
        let handles = lock(&self.handles);
        for h in handles.iter() {
            h.kill.store(true, Ordering::SeqCst);
            let _ = h.stream.shutdown(Shutdown::Both);
        }
    }

    /// The handshake of connection `id` completed: mark it accepted (and
    /// open for commands), and apply the connections-per-token limit
    /// atomically. Returns true if the connection is over the limit (it must
    /// be closed at once).
    // Inlined so that, without the limit, the over-limit path folds away.
    #[inline]
    pub(super) fn admit(&self, id: u64) -> bool {
        // Open for commands before it shows as accepted in the state, so a
        // test that saw it accepted can reach it.
        self.open_for_commands(id);
        let mut inner = self.lock_inner();
        let over = self.limit_exceeded(&mut inner, id);
        if let Some(rec) = inner.state.connections.iter_mut().find(|c| c.id == id) {
            rec.accepted = true;
        }
        drop(inner);
        self.cond.notify_all();
        over
    }
}

/// The simulated clock's offset at start.
fn start_offset_ms(_cfg: &SimConfig) -> i64 {
    #[cfg(feature = "testing")]
    return _cfg.clock_offset_ms;
    #[cfg(not(feature = "testing"))]
    0
}

/// Push interval for a ticks-per-second rate (None = no pushes).
pub(super) fn interval_for(rate: f64) -> Option<Duration> {
    if rate.is_finite() && rate > 0.0 {
        Duration::try_from_secs_f64(1.0 / rate)
            .ok()
            .filter(|d| !d.is_zero())
    } else {
        None
    }
}

/// Accept connections until the simulator stops, one thread each; then join
/// them all.
pub(super) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let mut key = PROVISIONAL;
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
        let opened_at = Instant::now();
        workers.retain(|w| !w.is_finished());
        key += 1;
        match spawn_conn(&shared, key, stream, opened_at) {
            Ok(handle) => workers.push(handle),
            Err(cause) => {
                let id = shared.new_conn(key, opened_at);
                shared.finish_conn(id, cause);
            }
        }
    }
    for w in workers {
        let _ = w.join();
    }
}

/// Register the handle of an accepted connection under `key` and start its
/// thread.
fn spawn_conn(
    shared: &Arc<Shared>,
    key: u64,
    stream: TcpStream,
    opened_at: Instant,
) -> Result<JoinHandle<()>, CloseCause> {
    let clone = stream
        .try_clone()
        .map_err(|e| CloseCause::Error(format!("try_clone: {e}")))?;
    #[cfg(feature = "testing")]
    let (remote, remote_ctl) = super::faults::remote();
    let ctl = Ctl {
        kill: Arc::new(AtomicBool::new(false)),
        #[cfg(feature = "testing")]
        remote: remote_ctl,
    };
    lock(&shared.handles).push(ConnHandle {
        id: key,
        stream: clone,
        kill: Arc::clone(&ctl.kill),
        #[cfg(feature = "testing")]
        remote,
    });
    let for_thread = Arc::clone(shared);
    thread::Builder::new()
        .name(format!("alltick-sim-conn-{}", key - PROVISIONAL))
        .spawn(move || super::route::run(&for_thread, key, stream, opened_at, &ctl))
        .map_err(|e| CloseCause::Error(format!("spawn: {e}")))
}
