//! Counters shared by the threads, for reports on stderr and the exit summary.

use std::sync::atomic::{AtomicU64, Ordering};

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
