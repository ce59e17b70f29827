//! The gate that keeps subscription requests on different connections
//! apart.
//!
//! AllTick wants at least 3 s between subscription requests (22002, 22004,
//! 22006) made on different connections. The gate is shared by every
//! connection's thread: a connection asks for its turn, and turns are given
//! first come, first served, so a connection that keeps dropping and
//! resubscribing never starves the others. Requests on one connection are
//! paced by that connection's own [`crate::session::schedule::Pacer`]; the gate
//! only spaces requests of *different* connections.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The gap kept between subscription requests of different connections:
/// AllTick's 3 s plus a margin, since the server measures on arrival.
pub const STAGGER: Duration = Duration::from_millis(3300);

/// First-come, first-served turns for subscription requests.
#[derive(Debug)]
pub struct Stagger {
    gap: Duration,
    /// Connections waiting for a turn, in the order they asked.
    waiting: VecDeque<usize>,
    /// The connection that had the last turn, and when.
    last: Option<(usize, Instant)>,
}

impl Default for Stagger {
    fn default() -> Self {
        Stagger::new(STAGGER)
    }
}

impl Stagger {
    /// A gate keeping `gap` between different connections' requests.
    pub fn new(gap: Duration) -> Stagger {
        Stagger {
            gap,
            waiting: VecDeque::new(),
            last: None,
        }
    }

    /// Connection `who` wants to send a subscription request at `now`:
    /// true if it may (its turn is then used up). A connection that is not
    /// given its turn keeps its place in the line and asks again later.
    pub fn try_turn(&mut self, who: usize, now: Instant) -> bool {
        if !self.waiting.contains(&who) {
            self.waiting.push_back(who);
        }
        if self.waiting.front() != Some(&who) {
            return false;
        }
        let clear = match self.last {
            None => true,
            Some((prev, _)) if prev == who => true,
            Some((_, at)) => now.duration_since(at) >= self.gap,
        };
        if clear {
            self.waiting.pop_front();
            self.last = Some((who, now));
        }
        clear
    }

    /// `who` no longer wants a turn (its connection ended, or its set no
    /// longer needs sending): it leaves the line.
    pub fn withdraw(&mut self, who: usize) {
        self.waiting.retain(|w| *w != who);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn one_connection_is_never_held_by_the_gate() {
        let t0 = Instant::now();
        let mut g = Stagger::default();
        assert!(g.try_turn(0, t0));
        assert!(g.try_turn(0, t0 + secs(1.1)));
        assert!(g.try_turn(0, t0 + secs(2.2)));
    }

    #[test]
    fn different_connections_are_kept_apart_by_the_gap() {
        let t0 = Instant::now();
        let mut g = Stagger::default();
        assert!(g.try_turn(0, t0));
        assert!(!g.try_turn(1, t0 + secs(1.0)));
        assert!(!g.try_turn(1, t0 + STAGGER - secs(0.001)));
        assert!(g.try_turn(1, t0 + STAGGER));
        assert!(!g.try_turn(2, t0 + STAGGER + secs(3.0)));
        assert!(g.try_turn(2, t0 + STAGGER * 2));
    }

    #[test]
    fn turns_are_first_come_first_served_so_nobody_starves() {
        let t0 = Instant::now();
        let mut g = Stagger::default();
        assert!(g.try_turn(0, t0));
        // 1 asks, then 0 (resubscribing after a drop) asks again: 1 first.
        assert!(!g.try_turn(1, t0 + secs(0.5)));
        assert!(!g.try_turn(0, t0 + secs(1.2)));
        assert!(!g.try_turn(0, t0 + STAGGER), "0 waits behind 1");
        assert!(g.try_turn(1, t0 + STAGGER));
        assert!(!g.try_turn(0, t0 + STAGGER + secs(1.0)));
        assert!(g.try_turn(0, t0 + STAGGER * 2));
    }

    #[test]
    fn a_connection_that_withdraws_does_not_block_the_line() {
        let t0 = Instant::now();
        let mut g = Stagger::default();
        assert!(g.try_turn(0, t0));
        assert!(!g.try_turn(1, t0 + secs(0.1)));
        assert!(!g.try_turn(2, t0 + secs(0.2)));
        g.withdraw(1);
        assert!(g.try_turn(2, t0 + STAGGER));
    }
}
