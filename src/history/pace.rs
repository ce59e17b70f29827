//! When the next HTTP request may go, on the tool's clock: pure, with the
//! time a parameter (ms on any monotonic scale), so the rules are tested
//! without waiting.
//!
//! AllTick counts requests on arrival, per token: at most N in any window
//! (one interface: 1 / 10 s on the free plan … 20 / s; all interfaces: per
//! minute) and a number per day. [`Pacer`] keeps the send times of the
//! last N requests of each window and lets a request go only when the
//! request N back is more than a window and a margin ago, so requests
//! arrive no closer than the server allows even when one travels faster
//! than the one before it ([`margin`]). [`Backoff`] spaces retries after a refusal.

use std::collections::VecDeque;

use crate::wire::plan::{HttpLimits, Window};

/// Added to every window, in hundredths of it: what a request's travel
/// time may differ by from the one before it, so that arrival never lands
/// inside the server's window (1 s becomes 1.03 s, 10 s 10.3 s) while the
/// pace stays within 3% of what the plan allows.
pub const MARGIN_PERCENT: u64 = 3;
/// The least margin, in ms.
pub const MARGIN_MIN_MS: u64 = 25;

/// The margin added to a window of `window_ms`.
pub fn margin(window_ms: u64) -> u64 {
    (window_ms * MARGIN_PERCENT / 100).max(MARGIN_MIN_MS)
}

/// One window's recent send times.
#[derive(Debug)]
struct Slots {
    window: Window,
    /// The window as kept: its length and the margin.
    span_ms: u64,
    sent: VecDeque<u64>,
}

/// Requests spaced to a plan's HTTP limits.
#[derive(Debug)]
pub struct Pacer {
    slots: Vec<Slots>,
    per_day: u32,
    /// Requests sent so far (this run).
    sent: u32,
}

impl Pacer {
    /// A pacer for `limits`, each window widened by its [`margin`].
    pub fn new(limits: &HttpLimits) -> Pacer {
        Pacer::with_margin(limits, margin)
    }

    /// A pacer for `limits`, each window widened by `margin(window_ms)`.
    pub fn with_margin(limits: &HttpLimits, margin: impl Fn(u64) -> u64) -> Pacer {
        Pacer {
            slots: limits
                .windows()
                .into_iter()
                .filter(|w| w.count > 0)
                .map(|window| Slots {
                    window,
                    span_ms: window.window_ms + margin(window.window_ms),
                    sent: VecDeque::with_capacity(window.count as usize),
                })
                .collect(),
            per_day: limits.per_day,
            sent: 0,
        }
    }

    /// The earliest time a request may be sent, at or after `now`; `None`
    /// when this run has made the day's allowance of requests.
    pub fn next_at(&self, now: u64) -> Option<u64> {
        if self.sent >= self.per_day {
            return None;
        }
        let mut at = now;
        for s in &self.slots {
            if s.sent.len() >= s.window.count as usize {
                let oldest = s.sent[s.sent.len() - s.window.count as usize];
                at = at.max(oldest + s.span_ms);
            }
        }
        Some(at)
    }

    /// A request was sent at `now`.
    pub fn sent(&mut self, now: u64) {
        self.sent += 1;
        for s in &mut self.slots {
            if s.sent.len() == s.window.count as usize {
                s.sent.pop_front();
            }
            s.sent.push_back(now);
        }
    }

    /// Requests sent so far.
    pub fn count(&self) -> u32 {
        self.sent
    }

    /// The steady pace the plan allows, in ms per request (for the time
    /// left): the widest of the windows' average spacings, margins included.
    pub fn ms_per_request(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.span_ms.div_ceil(u64::from(s.window.count)))
            .max()
            .unwrap_or(0)
    }
}

/// Waits between retries of one request: doubling from `first` to `most`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    first_ms: u64,
    most_ms: u64,
    /// Failures in a row so far.
    pub tries: u32,
}

impl Backoff {
    /// A backoff from `first_ms` doubling up to `most_ms`.
    pub fn new(first_ms: u64, most_ms: u64) -> Backoff {
        Backoff {
            first_ms,
            most_ms,
            tries: 0,
        }
    }

    /// Another failure: the wait before the next try.
    pub fn fail(&mut self) -> u64 {
        let wait = self
            .first_ms
            .saturating_mul(1 << self.tries.min(20))
            .min(self.most_ms);
        self.tries += 1;
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::plan::find;

    /// Send as fast as the pacer allows for `span` ms; the send times.
    fn run(p: &mut Pacer, span: u64) -> Vec<u64> {
        let mut now = 0;
        let mut times = Vec::new();
        while let Some(at) = p.next_at(now) {
            if at > span {
                break;
            }
            p.sent(at);
            times.push(at);
            now = at;
        }
        times
    }

    /// Whether no window of `w` holds more than its count of `times`,
    /// each arriving up to `jitter` ms late.
    fn keeps_to(times: &[u64], w: Window, jitter: u64) -> bool {
        let n = w.count as usize;
        times
            .windows(n + 1)
            .all(|ts| ts[n] >= ts[0] + jitter + w.window_ms)
    }

    #[test]
    fn every_plan_is_kept_to_with_its_margin_and_nearly_reached() {
        for name in ["free", "basic", "premium", "professional"] {
            let limits = find(name).unwrap().http;
            let mut p = Pacer::new(&limits);
            let span = 10 * 60_000;
            let times = run(&mut p, span);
            for w in limits.windows() {
                assert!(keeps_to(&times, w, MARGIN_MIN_MS - 1), "{name}: {w:?}");
            }
            // The steady pace is the tightest window's, less the margin.
            let allowed = limits
                .windows()
                .iter()
                .map(|w| span as f64 * f64::from(w.count) / w.window_ms as f64)
                .fold(f64::INFINITY, f64::min);
            let share = times.len() as f64 / allowed;
            assert!(share >= 0.96, "{name}: {} of {allowed}", times.len());
            assert!(p.ms_per_request() > 0);
        }
    }

    #[test]
    fn a_request_waits_for_the_one_a_window_back_plus_the_margin() {
        let basic = find("basic").unwrap().http;
        let mut p = Pacer::with_margin(&basic, |_| 50);
        assert_eq!(p.next_at(5), Some(5));
        p.sent(5);
        assert_eq!(p.next_at(6), Some(1055));
        assert_eq!(p.next_at(2000), Some(2000));
        let premium = find("premium").unwrap().http;
        let mut p = Pacer::with_margin(&premium, |_| 50);
        for t in 0..10 {
            assert_eq!(p.next_at(t), Some(t));
            p.sent(t);
        }
        assert_eq!(p.next_at(10), Some(1050));
    }

    #[test]
    fn the_days_allowance_ends_the_sending() {
        let limits = HttpLimits {
            per_day: 3,
            ..find("professional").unwrap().http
        };
        let mut p = Pacer::new(&limits);
        assert_eq!(run(&mut p, 60_000).len(), 3);
        assert_eq!(p.next_at(1_000_000), None);
        assert_eq!(p.count(), 3);
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let mut b = Backoff::new(1000, 5000);
        let waits: Vec<u64> = (0..5).map(|_| b.fail()).collect();
        assert_eq!(waits, [1000, 2000, 4000, 5000, 5000]);
        assert_eq!(b.tries, 5);
    }
}
