//! Timing policy, with time passed in so it is tested without sleeping:
//! request pacing (heartbeats and subscriptions share one connection's
//! 1-request-per-second budget) and reconnect backoff with jitter.

use std::time::{Duration, Instant};

/// Least time between two requests on one connection. AllTick allows one
/// per second measured on arrival; 1.1 s on our clock leaves a margin.
pub const MIN_REQUEST_GAP: Duration = Duration::from_millis(1100);

/// What the connection should send now, if anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// A 22000 heartbeat.
    Heartbeat,
    /// The current subscription set (22004 or 22006).
    Subscription,
    /// Nothing yet.
    Nothing,
}

/// Decides when requests go out on one connection.
#[derive(Clone, Debug)]
pub struct Pacer {
    heartbeat: Duration,
    last_request: Option<Instant>,
    last_heartbeat: Instant,
    /// The last request sent was a heartbeat.
    last_was_heartbeat: bool,
    subscription_not_before: Option<Instant>,
}

impl Pacer {
    /// A pacer for a connection opened at `now`.
    pub fn new(heartbeat: Duration, now: Instant) -> Pacer {
        Pacer {
            heartbeat,
            last_request: None,
            last_heartbeat: now,
            last_was_heartbeat: false,
            subscription_not_before: None,
        }
    }

    /// What to send at `now`, given whether the subscription set changed.
    /// A due heartbeat goes first, except right after another heartbeat:
    /// when both are due they take turns, so a subscription waits at most
    /// one request gap even when the heartbeat period is shorter than the
    /// gap (`--heartbeat 1`), and a heartbeat is never late by more.
    pub fn due(&self, now: Instant, subscription_pending: bool) -> Due {
        if let Some(last) = self.last_request
            && now < last + MIN_REQUEST_GAP
        {
            return Due::Nothing;
        }
        let heartbeat = now >= self.last_heartbeat + self.heartbeat;
        let subscription =
            subscription_pending && self.subscription_not_before.is_none_or(|t| now >= t);
        match (heartbeat, subscription) {
            (true, true) if self.last_was_heartbeat => Due::Subscription,
            (true, _) => Due::Heartbeat,
            (false, true) => Due::Subscription,
            (false, false) => Due::Nothing,
        }
    }

    /// Record that a request of kind `what` was sent at `now`.
    pub fn sent(&mut self, what: Due, now: Instant) {
        self.last_request = Some(now);
        self.last_was_heartbeat = what == Due::Heartbeat;
        match what {
            Due::Heartbeat => self.last_heartbeat = now,
            Due::Subscription => self.subscription_not_before = None,
            Due::Nothing => {}
        }
    }

    /// Hold subscription requests until `when` (after a rate-limit answer).
    pub fn delay_subscription_until(&mut self, when: Instant) {
        self.subscription_not_before = Some(when);
    }
}

/// Exponential reconnect backoff with jitter.
///
/// Attempt n waits a random time in `[d/2, d]` where `d = min(cap, base·2ⁿ)`:
/// the first retry comes within half a second, later ones spread out up to
/// the cap so that many clients do not reconnect in lockstep.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// Base 0.5 s, cap 30 s.
    pub fn new(seed: u64) -> Backoff {
        Backoff::with(Duration::from_millis(500), Duration::from_secs(30), seed)
    }

    /// A backoff with explicit base and cap.
    pub fn with(base: Duration, cap: Duration, seed: u64) -> Backoff {
        Backoff {
            base,
            cap,
            attempt: 0,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt; each call grows the next one.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32 << self.attempt.min(16);
        let ceiling = self.base.saturating_mul(factor).min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let frac = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.div_f64(2.0) + ceiling.div_f64(2.0).mul_f64(frac)
    }

    /// How many delays were handed out, less the steps forgiven.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Take `steps` back (a connection streamed for a while, see
    /// [`crate::session::policy::Health`]): each step halves the next delay's
    /// ceiling. Attempts beyond the one that reaches the cap count as that
    /// one, so a long outage costs no more to forgive than a short one.
    pub fn forgive(&mut self, steps: u32) {
        if steps > 0 {
            self.attempt = self.attempt.min(self.capped_at()).saturating_sub(steps);
        }
    }

    /// The first attempt whose ceiling is the cap.
    fn capped_at(&self) -> u32 {
        (0..16)
            .find(|&n| self.base.saturating_mul(1 << n) >= self.cap)
            .unwrap_or(16)
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HB: Duration = Duration::from_secs(10);

    #[test]
    fn subscription_goes_first_then_requests_are_spaced() {
        let t0 = Instant::now();
        let mut p = Pacer::new(HB, t0);
        assert_eq!(p.due(t0, false), Due::Nothing);
        assert_eq!(p.due(t0, true), Due::Subscription);
        p.sent(Due::Subscription, t0);
        assert_eq!(p.due(t0 + Duration::from_millis(1099), true), Due::Nothing);
        assert_eq!(
            p.due(t0 + Duration::from_millis(1100), true),
            Due::Subscription
        );
    }

    #[test]
    fn heartbeat_every_period_and_before_subscriptions() {
        let t0 = Instant::now();
        let mut p = Pacer::new(HB, t0);
        assert_eq!(p.due(t0 + Duration::from_millis(9999), false), Due::Nothing);
        let t1 = t0 + HB;
        assert_eq!(p.due(t1, true), Due::Heartbeat);
        p.sent(Due::Heartbeat, t1);
        assert_eq!(p.due(t1 + MIN_REQUEST_GAP, true), Due::Subscription);
        assert_eq!(p.due(t1 + HB, false), Due::Heartbeat);
    }

    #[test]
    fn a_heartbeat_period_below_the_gap_does_not_starve_subscriptions() {
        // --heartbeat 1: a heartbeat is due whenever the gap allows a
        // request; a pending subscription still goes out, one gap later.
        let t0 = Instant::now();
        let mut p = Pacer::new(Duration::from_secs(1), t0);
        let mut now = t0 + Duration::from_secs(1);
        assert_eq!(p.due(now, false), Due::Heartbeat);
        p.sent(Due::Heartbeat, now);
        let mut order = Vec::new();
        while now < t0 + Duration::from_secs(10) {
            now += Duration::from_millis(10);
            let what = p.due(now, true);
            if what != Due::Nothing {
                p.sent(what, now);
                order.push((what, now));
            }
        }
        assert_eq!(order[0].0, Due::Subscription, "{order:?}");
        // They take turns: neither kind goes twice in a row while both wait.
        for pair in order.windows(2) {
            assert_ne!(pair[0].0, pair[1].0, "{order:?}");
            assert!(pair[1].1 - pair[0].1 <= MIN_REQUEST_GAP + Duration::from_millis(10));
        }
    }

    #[test]
    fn a_burst_of_changes_costs_one_request_per_gap() {
        let t0 = Instant::now();
        let mut p = Pacer::new(HB, t0);
        let mut sent = 0;
        let mut now = t0;
        // Changes arrive every 10 ms for 5 s.
        while now < t0 + Duration::from_secs(5) {
            if p.due(now, true) == Due::Subscription {
                p.sent(Due::Subscription, now);
                sent += 1;
            }
            now += Duration::from_millis(10);
        }
        assert_eq!(sent, 5);
    }

    #[test]
    fn delayed_subscription_waits() {
        let t0 = Instant::now();
        let mut p = Pacer::new(HB, t0);
        p.delay_subscription_until(t0 + Duration::from_secs(2));
        assert_eq!(p.due(t0 + Duration::from_secs(1), true), Due::Nothing);
        assert_eq!(p.due(t0 + Duration::from_secs(2), true), Due::Subscription);
    }

    #[test]
    fn backoff_grows_with_jitter_to_a_cap_and_is_forgiven() {
        let mut b = Backoff::new(42);
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
        let mut last = first;
        for n in 1..20 {
            let d = b.next_delay();
            let ceiling = Duration::from_millis(500)
                .saturating_mul(1 << n.min(16))
                .min(Duration::from_secs(30));
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {n}: {d:?}");
            last = d;
        }
        assert!(last >= Duration::from_secs(15));
        b.forgive(u32::MAX);
        assert!(b.next_delay() <= Duration::from_millis(500));
    }

    #[test]
    fn forgiving_halves_the_ceiling_per_step_from_the_cap_down() {
        let mut b = Backoff::new(7);
        // A long outage: far more attempts than it takes to reach the cap.
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.attempts(), 100);
        // 0.5 s · 2⁶ = 32 s ≥ 30 s: attempt 6 is the first at the cap, so
        // one step back is attempt 5, a 16 s ceiling.
        b.forgive(1);
        assert_eq!(b.attempts(), 5);
        let d = b.next_delay();
        assert!(
            d >= Duration::from_secs(8) && d <= Duration::from_secs(16),
            "{d:?}"
        );
        b.forgive(0);
        assert_eq!(b.attempts(), 6);
        b.forgive(2);
        assert_eq!(b.attempts(), 4);
        // Never below zero, nothing banked.
        b.forgive(10);
        assert_eq!(b.attempts(), 0);
        b.forgive(10);
        assert_eq!(b.attempts(), 0);
        assert!(b.next_delay() <= Duration::from_millis(500));
    }

    #[test]
    fn jitter_differs_between_seeds() {
        let a: Vec<_> = (0..5)
            .map({
                let mut b = Backoff::new(1);
                move |_| b.next_delay()
            })
            .collect();
        let b: Vec<_> = (0..5)
            .map({
                let mut b = Backoff::new(2);
                move |_| b.next_delay()
            })
            .collect();
        assert_ne!(a, b);
    }
}
