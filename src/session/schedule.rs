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
    use crate::session::connection::TICK;
    use crate::session::policy::{HEALTHY_AFTER, Health};

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

    /// How a server treats each connection, for [`model`].
    #[derive(Clone, Copy)]
    struct Server {
        /// From the attempt to the open socket (TCP, WebSocket upgrade).
        connect: Duration,
        /// From open to the subscription's acknowledgement; `None`: never.
        ack: Option<Duration>,
        /// From open to the end of the connection (messages arrive all the
        /// while).
        lives: Duration,
    }

    /// What the reconnect loop did over a window.
    #[derive(Debug)]
    struct Outcome {
        /// Connections opened.
        connections: usize,
        /// The share of the window without an acknowledged connection.
        outage: f64,
        /// Reconnect delays handed out.
        delays: Vec<Duration>,
    }

    /// The session's reconnect loop against `server` for `window`, with the
    /// real [`Backoff`] and [`Health`]: the clock's work every [`TICK`]
    /// (messages heard, steps earned), `Backoff::next_delay` after each end.
    /// Without `forgive` no step is ever taken back: what the old rule (a
    /// reset only after a minute of health) gives for connections shorter
    /// than a minute.
    fn model(server: Server, window: Duration, forgive: bool, seed: u64) -> Outcome {
        let t0 = Instant::now();
        let mut backoff = Backoff::new(seed);
        let (mut t, mut up, mut connections) = (Duration::ZERO, Duration::ZERO, 0);
        let mut delays = Vec::new();
        while t < window {
            connections += 1;
            let opened = t + server.connect;
            let end = opened + server.lives;
            let mut health = Health::default();
            let mut now = opened;
            while now < end {
                now = (now + TICK).min(end);
                if let Some(ack) = server.ack.filter(|a| opened + *a <= now) {
                    health.acknowledged(t0 + opened + ack);
                }
                health.heard(t0 + now);
                if forgive {
                    backoff.forgive(health.earned());
                }
            }
            if let Some(ack) = server.ack.filter(|a| *a < server.lives) {
                let from = (opened + ack).min(window);
                up += end.min(window) - from;
            }
            let delay = backoff.next_delay();
            delays.push(delay);
            t = end + delay;
        }
        Outcome {
            connections,
            outage: 1.0 - up.as_secs_f64() / window.as_secs_f64(),
            delays,
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_connection_cut_every_20_s_is_out_less_than_5_percent_of_the_time() {
        let cut = Server {
            connect: MS(20),
            ack: Some(MS(10)),
            lives: Duration::from_secs(20),
        };
        let window = Duration::from_secs(300);
        for seed in 1..=20 {
            let now = model(cut, window, true, seed);
            assert!(now.outage < 0.05, "seed {seed}: {now:?}");
            assert!(now.delays.iter().all(|d| *d <= MS(500)), "{now:?}");
            // Never forgiven (the old rule for 20 s connections): the delays
            // climb to the cap and a third of the time is lost.
            let old = model(cut, window, false, seed);
            assert!(old.outage > 0.3, "seed {seed}: {old:?}");
        }
    }

    #[test]
    fn a_connection_cut_every_3_s_is_up_most_of_the_time() {
        let cut = Server {
            connect: MS(20),
            ack: Some(MS(10)),
            lives: Duration::from_secs(3),
        };
        for seed in 1..=20 {
            let now = model(cut, Duration::from_secs(60), true, seed);
            assert!(now.outage < 0.15, "seed {seed}: {now:?}");
        }
    }

    /// The storm rows: servers that accept and then drop before or right
    /// after the acknowledgement get exactly the backoff's growing delays,
    /// as if no connection had ever been made.
    #[test]
    fn storms_earn_nothing_back() {
        let storms = [
            // Accept, acknowledge, drop 100 ms later.
            Server {
                connect: MS(5),
                ack: Some(MS(10)),
                lives: MS(110),
            },
            // Close 1008 (too many connections) at once: never acknowledged.
            Server {
                connect: MS(5),
                ack: None,
                lives: MS(5),
            },
            // Acknowledged, then answers (a 606, errors) for a second, closed.
            Server {
                connect: MS(5),
                ack: Some(MS(10)),
                lives: Duration::from_secs(1),
            },
            // Refused connection, HTTP 403: nothing opens, nothing heard.
            Server {
                connect: MS(1),
                ack: None,
                lives: Duration::ZERO,
            },
        ];
        let window = Duration::from_secs(60);
        for (n, server) in storms.into_iter().enumerate() {
            let with = model(server, window, true, 3);
            let without = model(server, window, false, 3);
            assert_eq!(with.delays, without.delays, "storm {n}");
            // 0.25 + 0.5 + 1 + 2 + 4 + 8 + 15 + 15 ... : at most 11 in 60 s.
            assert!(with.connections <= 11, "storm {n}: {with:?}");
        }
    }

    /// A server that cuts every connection just after it earned its step:
    /// the backoff stays at its base, and each reconnect comes after at
    /// least [`HEALTHY_AFTER`] of streaming.
    #[test]
    fn a_flapping_server_gets_at_most_one_reconnect_per_healthy_stretch() {
        let flap = Server {
            connect: MS(5),
            ack: Some(MS(10)),
            lives: HEALTHY_AFTER + MS(300),
        };
        let window = Duration::from_secs(60);
        let out = model(flap, window, true, 5);
        let most = window.as_secs_f64() / HEALTHY_AFTER.as_secs_f64();
        assert!((out.connections as f64) <= most, "{out:?}");
        assert!(out.delays.iter().all(|d| *d <= MS(500)), "{out:?}");
        // Just short of a stretch: no step, the delays grow as in a storm.
        let short = Server {
            lives: HEALTHY_AFTER - MS(300),
            ..flap
        };
        let out = model(short, window, true, 5);
        assert_eq!(out.delays, model(short, window, false, 5).delays);
    }
}
