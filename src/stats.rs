//! Counters shared by the threads, for reports on stderr and the exit summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

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
    /// Trades skipped because their seq was already seen (replays, duplicates).
    pub dropped_repeat: AtomicU64,
    /// Trades dropped because the output queue was full.
    pub dropped_overflow: AtomicU64,
    /// Frames that were not understood at all (bad JSON, binary).
    pub garbage_frames: AtomicU64,
    /// Connections lost and re-established.
    pub reconnects: AtomicU64,
    /// Signalled whenever the writer makes progress.
    progress: Condvar,
    progress_lock: Mutex<()>,
}

impl Stats {
    /// Add `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
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

    /// One-line summary of everything dropped, or `None` when nothing was.
    pub fn drop_summary(&self) -> Option<String> {
        let invalid = Self::get(&self.dropped_invalid);
        let overflow = Self::get(&self.dropped_overflow);
        let garbage = Self::get(&self.garbage_frames);
        let repeat = Self::get(&self.dropped_repeat);
        if invalid + overflow + garbage + repeat == 0 {
            return None;
        }
        Some(format!(
            "dropped in total: {invalid} invalid trades, {overflow} trades on output-queue overflow, {garbage} unreadable frames, {repeat} repeated trades"
        ))
    }
}
