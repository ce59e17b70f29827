//! Progress on stderr: codes done of all, requests made, bars written and
//! the time left at the plan's pace. On a terminal one line is redrawn in
//! place every second; otherwise (a log, cron's mail) a line is written
//! every 10 s. Notes about codes ([`Progress::note`]) clear the line
//! first so they never land in the middle of it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::report::redact;

/// The counters the walk keeps and the ticker reads.
#[derive(Debug)]
pub struct Progress {
    /// Codes in the run.
    pub total: u64,
    /// Codes finished (done or failed).
    pub codes: AtomicU64,
    /// Requests made.
    pub requests: AtomicU64,
    /// Bars written.
    pub bars: AtomicU64,
    tty: bool,
    done: AtomicBool,
    /// Serialises stderr between the ticker and notes.
    lock: Mutex<()>,
}

impl Progress {
    /// Counters for `total` codes; `tty`: stderr is a terminal.
    pub fn new(total: usize, tty: bool) -> Progress {
        Progress {
            total: total as u64,
            codes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            bars: AtomicU64::new(0),
            tty,
            done: AtomicBool::new(false),
            lock: Mutex::new(()),
        }
    }

    /// Add `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// One line on stderr about the run (the token scrubbed).
    pub fn note(&self, text: &str) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let clear = if self.tty { "\r\x1b[K" } else { "" };
        let _ = writeln!(std::io::stderr(), "{clear}alltick-stream: {}", redact(text));
    }

    /// The progress line, with the time left at `ms_per_request`.
    pub fn line(&self, ms_per_request: u64) -> String {
        let codes = self.codes.load(Ordering::Relaxed);
        let requests = self.requests.load(Ordering::Relaxed);
        let left = self.total.saturating_sub(codes);
        // Requests a code has taken so far (at least one each).
        let per_code = if codes == 0 {
            1.0
        } else {
            (requests as f64 / codes as f64).max(1.0)
        };
        let secs = (left as f64 * per_code * ms_per_request as f64 / 1000.0) as u64;
        format!(
            "history: {codes}/{} codes, {requests} requests, {} bars written, ~{} left at the plan's pace",
            self.total,
            self.bars.load(Ordering::Relaxed),
            span(secs)
        )
    }

    /// The run is over: the ticker stops and the terminal line is cleared.
    pub fn finish(&self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

/// `1h 05m`, `3m 20s`, `12s`.
pub fn span(secs: u64) -> String {
    match secs {
        s if s >= 3600 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// The ticker: the line redrawn every second on a terminal, written every
/// 10 s otherwise, until [`Progress::finish`].
pub fn start(p: Arc<Progress>, ms_per_request: u64) -> JoinHandle<()> {
    thread::spawn(move || {
        let period = if p.tty { 1 } else { 10 };
        let mut ticks = 0u64;
        while !p.done.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(100));
            ticks += 1;
            if !ticks.is_multiple_of(period * 10) {
                continue;
            }
            let _guard = p.lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut err = std::io::stderr();
            let line = p.line(ms_per_request);
            let _ = if p.tty {
                write!(err, "\r\x1b[K{line}")
            } else {
                writeln!(err, "alltick-stream: {line}")
            };
        }
        if p.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_is_the_codes_left_at_the_pace_so_far() {
        let p = Progress::new(10, false);
        Progress::add(&p.codes, 2);
        Progress::add(&p.requests, 6);
        Progress::add(&p.bars, 900);
        // 8 codes × 3 requests × 10.3 s.
        assert_eq!(
            p.line(10_300),
            "history: 2/10 codes, 6 requests, 900 bars written, ~4m 07s left at the plan's pace"
        );
        assert_eq!(span(3 * 3600 + 65), "3h 01m");
    }
}
