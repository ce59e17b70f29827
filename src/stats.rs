//! Counters shared by the threads, for reports on stderr and the exit summary.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::report::say;

/// Running totals. Relaxed atomics: these are reports, not synchronisation.
#[derive(Debug, Default)]
pub struct Stats {
    /// Valid trades received from the server.
    pub received: AtomicU64,
    /// Trades put on the output queue.
    pub queued: AtomicU64,
    /// Trades written and flushed to stdout.
    pub written: AtomicU64,
    /// Trades dropped because they failed validation.
    pub dropped_invalid: AtomicU64,
    /// Pushes skipped because they were provably written already (replays,
    /// duplicates).
    pub dropped_repeat: AtomicU64,
    /// Depth pushes dropped whole (no usable code, seq or time).
    pub dropped_invalid_depth: AtomicU64,
    /// Depth levels dropped from books that were otherwise written.
    pub bad_depth_levels: AtomicU64,
    /// Pushes written although their seq was not above the last one: the
    /// server's numbering restarted.
    pub seq_restarts: AtomicU64,
    /// Trades dropped because the output queue was full.
    pub dropped_overflow: AtomicU64,
    /// Lines a disk refused (`--output`).
    pub lost_disk: AtomicU64,
    /// Trades that came after their interval closed (`--bars`).
    pub late_trades: AtomicU64,
    /// Frames that were not understood at all (bad JSON, binary).
    pub garbage_frames: AtomicU64,
    /// Connections lost and re-established.
    pub reconnects: AtomicU64,
    /// Each connection's own figures, in the order they started.
    connections: Mutex<Vec<Arc<ConnStats>>>,
    /// Signalled whenever the writer makes progress.
    progress: Condvar,
    progress_lock: Mutex<()>,
}

/// One connection's figures, for `--stats` and `?`.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Its name: `stock#1`.
    pub name: String,
    /// 1 while open.
    pub connected: AtomicU64,
    /// When its last message arrived, ms since the Unix epoch (0: never).
    pub last_message_ms: AtomicU64,
    /// Trade symbols it carries.
    pub trade_symbols: AtomicU64,
    /// Depth symbols it carries.
    pub depth_symbols: AtomicU64,
}

impl ConnStats {
    /// `stock#1 connected; last message 0.3 s ago; 2 trade and 0 depth symbols`.
    pub fn line(&self) -> String {
        format!(
            "{} {}; {}; {} trade and {} depth symbols",
            self.name,
            if Stats::get(&self.connected) == 1 {
                "connected"
            } else {
                "not connected"
            },
            self.since(),
            Stats::get(&self.trade_symbols),
            Stats::get(&self.depth_symbols),
        )
    }

    /// `last message 0.3 s ago`, or `no message yet`.
    pub fn since(&self) -> String {
        match Stats::get(&self.last_message_ms) {
            0 => "no message yet".to_string(),
            last => format!(
                "last message {:.1} s ago",
                Stats::now_ms().saturating_sub(last) as f64 / 1000.0
            ),
        }
    }
}

impl Stats {
    /// Register a connection's figures.
    pub fn connection(&self, name: &str) -> Arc<ConnStats> {
        let c = Arc::new(ConnStats {
            name: name.to_string(),
            ..ConnStats::default()
        });
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&c));
        c
    }

    /// Add `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Set a gauge.
    pub fn set(gauge: &AtomicU64, v: u64) {
        gauge.store(v, Ordering::Relaxed);
    }

    /// Milliseconds since the Unix epoch, for `last_message_ms`.
    pub fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    /// Read a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The writer handed `n` more ticks to stdout.
    pub fn note_written(&self, n: u64) {
        Self::add(&self.written, n);
        // Taking the lock orders this with a waiter's check, so no wake-up is lost.
        drop(self.progress_lock.lock().unwrap_or_else(|e| e.into_inner()));
        self.progress.notify_all();
    }

    /// Wait up to `timeout` for the writer's next progress.
    pub fn wait_for_progress(&self, timeout: Duration) {
        let guard = self.progress_lock.lock().unwrap_or_else(|e| e.into_inner());
        drop(self.progress.wait_timeout(guard, timeout));
    }

    /// Wait up to `timeout` until `need` more ticks fit under `limit`
    /// unwritten ones; true if they do.
    pub fn wait_for_room(&self, need: u64, limit: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.progress_lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.unwritten() + need <= limit {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = self
                .progress
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Trades queued but not yet written.
    pub fn unwritten(&self) -> u64 {
        Self::get(&self.queued).saturating_sub(Self::get(&self.written))
    }

    /// The `--stats` line: rates over the last `secs` seconds, given the
    /// counters' values then (`prev`: received, written).
    pub fn line(&self, secs: f64, prev: (u64, u64)) -> (String, (u64, u64)) {
        let received = Self::get(&self.received);
        let written = Self::get(&self.written);
        let rate = |now: u64, then: u64| (now.saturating_sub(then)) as f64 / secs;
        let connections: Vec<String> = self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|c| c.line())
            .collect();
        let line = format!(
            "stats: in {:.0}/s, out {:.0}/s, queue {} ticks, dropped {} invalid trades, {} invalid depth pushes, {} bad depth levels, {} overflow, {} repeated, {} unreadable, {} late; {} seq restarts; {} reconnects; {}",
            rate(received, prev.0),
            rate(written, prev.1),
            self.unwritten(),
            Self::get(&self.dropped_invalid),
            Self::get(&self.dropped_invalid_depth),
            Self::get(&self.bad_depth_levels),
            Self::get(&self.dropped_overflow),
            Self::get(&self.dropped_repeat),
            Self::get(&self.garbage_frames),
            Self::get(&self.late_trades),
            Self::get(&self.seq_restarts),
            Self::get(&self.reconnects),
            if connections.is_empty() {
                "no connection yet".to_string()
            } else {
                connections.join(" | ")
            },
        );
        (line, (received, written))
    }

    /// One-line summary of everything dropped, or `None` when nothing was.
    pub fn drop_summary(&self) -> Option<String> {
        let parts = [
            (Self::get(&self.dropped_invalid), "invalid trades"),
            (
                Self::get(&self.dropped_invalid_depth),
                "invalid depth pushes",
            ),
            (Self::get(&self.bad_depth_levels), "bad depth levels"),
            (
                Self::get(&self.dropped_overflow),
                "ticks on output-queue overflow",
            ),
            (Self::get(&self.garbage_frames), "unreadable frames"),
            (Self::get(&self.lost_disk), "lines the disk refused"),
            (Self::get(&self.dropped_repeat), "repeated pushes"),
            (
                Self::get(&self.late_trades),
                "late trades (after their interval closed)",
            ),
        ];
        let shown: Vec<String> = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if shown.is_empty() {
            return None;
        }
        Some(format!("dropped in total: {}", shown.join(", ")))
    }
}

/// Rate-limited reports of dropped data: the first of a kind at once, then
/// at most one line per kind every [`DropLog::REPORT_EVERY`], with running totals.
#[derive(Debug, Default)]
pub struct DropLog {
    last: HashMap<&'static str, Instant>,
}

impl DropLog {
    /// At most one line per kind this often.
    pub const REPORT_EVERY: Duration = Duration::from_secs(10);

    /// Whether a line of `kind` may be said at `now` (and remember it).
    pub fn due(&mut self, kind: &'static str, now: Instant) -> bool {
        let due = self
            .last
            .get(kind)
            .is_none_or(|at| now >= *at + Self::REPORT_EVERY);
        if due {
            self.last.insert(kind, now);
        }
        due
    }

    /// Count `n` more in `counter`, and say `line(total)` if a line of
    /// `kind` is due.
    pub fn count(
        &mut self,
        counter: &AtomicU64,
        n: u64,
        kind: &'static str,
        line: impl FnOnce(u64) -> String,
    ) {
        Stats::add(counter, n);
        if self.due(kind, Instant::now()) {
            say(line(Stats::get(counter)));
        }
    }
}
