//! The connection-level rules, pure: which request answers which, when a
//! connection is dead, when it counts as healthy, and what to do with an
//! answer that matches no subscription. Time is a parameter, so every rule
//! is unit-tested without sockets or sleeps. The per-feed rules (full-set
//! resend, narrowing, 429/603/606 …) live in [`crate::session::channel`],
//! what each `ret` asks for in [`protocol::Ret::handling`]; pacing and backoff in
//! [`crate::session::schedule`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::session::channel::{self, Act, Reaction};
use crate::wire::protocol::{self, FeedKind, Handling, Response};

/// Each stretch this long of a connection's life after its acknowledgement,
/// with messages (answers or pushes) still arriving at its end, earns one
/// step of the reconnect backoff back (see [`Health`]).
pub const HEALTHY_AFTER: Duration = Duration::from_secs(2);

/// A request the server has not answered within this long is forgotten
/// (and a subscription is sent again): a server that ignores some requests
/// must not make the table of requests in flight grow.
pub const REQUEST_EXPIRY: Duration = Duration::from_secs(30);

/// A request waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The request's cmd_id (22000, 22002, 22004, 22006).
    pub cmd: u64,
    /// The feed whose set it carried; `None` for a heartbeat.
    pub feed: Option<FeedKind>,
    /// The codes it carried.
    pub codes: Vec<crate::wire::symbol::Code>,
    /// When it was sent.
    pub sent_at: Instant,
}

/// Requests in flight on one connection, and the matching of answers to
/// them. AllTick echoes `seq_id`, but its error example carries
/// `seq_id: 0`: an answer is matched by `seq_id` when that matches, and
/// otherwise by its cmd_id to the oldest request of that kind.
#[derive(Debug, Default)]
pub struct Requests {
    by_id: HashMap<u32, InFlight>,
}

impl Requests {
    /// Remember a request sent with `seq_id`.
    pub fn sent(&mut self, seq_id: u32, req: InFlight) {
        self.by_id.insert(seq_id, req);
    }

    /// The request `r` answers, if any (it is forgotten).
    pub fn answered(&mut self, r: &Response) -> Option<InFlight> {
        if let Some(req) = r
            .seq_id
            .and_then(|id| u32::try_from(id).ok())
            .and_then(|id| self.by_id.remove(&id))
        {
            return Some(req);
        }
        let cmd = r.cmd_id.checked_sub(1)?;
        let id = self
            .by_id
            .iter()
            .filter(|(_, q)| q.cmd == cmd)
            .min_by_key(|(id, q)| (q.sent_at, **id))
            .map(|(id, _)| *id)?;
        self.by_id.remove(&id)
    }

    /// Forget requests sent [`REQUEST_EXPIRY`] or more before `now`;
    /// returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<InFlight> {
        let old: Vec<u32> = self
            .by_id
            .iter()
            .filter(|(_, q)| now.duration_since(q.sent_at) >= REQUEST_EXPIRY)
            .map(|(id, _)| *id)
            .collect();
        old.into_iter()
            .filter_map(|id| self.by_id.remove(&id))
            .collect()
    }
}

/// Liveness: a quiet market is not a dead link. Heartbeat answers keep a
/// healthy connection talking, so a connection is dead only when *nothing*
/// arrived for `stale_after`.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    last_heard: Instant,
    stale_after: Duration,
}

impl Liveness {
    /// A connection opened at `now`.
    pub fn new(now: Instant, stale_after: Duration) -> Liveness {
        Liveness {
            last_heard: now,
            stale_after,
        }
    }

    /// Something arrived at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
    }

    /// The silence that counts as dead.
    pub fn window(&self) -> Duration {
        self.stale_after
    }

    /// The connection is dead at `now`.
    pub fn is_stale(&self, now: Instant) -> bool {
        now.duration_since(self.last_heard) >= self.stale_after
    }
}

/// How long a connection has had nothing to carry, for `--idle-close`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Idle {
    since: Option<Instant>,
}

impl Idle {
    /// Whether the connection should close at `now`: it has been `empty`
    /// (nothing wanted, nothing held by the server) without a break for
    /// `limit`. Anything to carry starts the count again.
    pub fn expired(&mut self, empty: bool, now: Instant, limit: Duration) -> bool {
        if !empty {
            self.since = None;
            return false;
        }
        now.duration_since(*self.since.get_or_insert(now)) >= limit
    }

    /// Start the count again (a symbol came, or the connection reopened).
    pub fn reset(&mut self) {
        self.since = None;
    }
}

/// What a connection has earned back of the reconnect backoff.
///
/// A connection proves itself by streaming, not by being accepted: each
/// [`HEALTHY_AFTER`] between its first acknowledged subscription (or its
/// first heartbeat answer, when nothing is subscribed) and the last message
/// heard on it earns one step back — the delay ceiling halves. A connection
/// that dies before or right after its acknowledgement earns nothing, so a
/// server that accepts and drops sees the delays grow as if nothing had
/// connected; one that streamed for a while reconnects at once (12 s of
/// streaming bring even the 30 s cap back to the first delay). Steps are
/// never banked beyond zero: while the backoff is at its first delay,
/// reconnects come at most once per [`HEALTHY_AFTER`] of streaming.
#[derive(Debug, Default, Clone, Copy)]
pub struct Health {
    since: Option<Instant>,
    last_heard: Option<Instant>,
    earned: u32,
}

impl Health {
    /// An acknowledgement arrived at `now`.
    pub fn acknowledged(&mut self, now: Instant) {
        self.since.get_or_insert(now);
    }

    /// A message (answer, push, anything) arrived at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = Some(self.last_heard.map_or(now, |t| t.max(now)));
    }

    /// Steps of the backoff earned since the last call (see
    /// [`crate::session::schedule::Backoff::forgive`]).
    pub fn earned(&mut self) -> u32 {
        let (Some(since), Some(heard)) = (self.since, self.last_heard) else {
            return 0;
        };
        let streamed = heard.saturating_duration_since(since);
        let total = u32::try_from(streamed.as_nanos() / HEALTHY_AFTER.as_nanos().max(1))
            .unwrap_or(u32::MAX);
        let new = total.saturating_sub(self.earned);
        self.earned = total.max(self.earned);
        new
    }
}

/// What to do about an answer that is not to a subscription request (a
/// heartbeat answer, or one that matches nothing in flight).
#[derive(Debug, PartialEq, Eq)]
pub struct OtherAnswer {
    /// Lines to say and the action.
    pub reaction: Reaction,
    /// Send both feeds' sets again, not before this long from now.
    pub resend_all_after: Option<Duration>,
    /// The answer shows the connection works (for [`Health`]).
    pub healthy: bool,
}

/// Decide about an answer that is not to a subscription request.
/// `nothing_subscribed`: no trade symbols are wanted, so a heartbeat answer
/// alone shows the connection healthy.
pub fn other_answer(r: &Response, nothing_subscribed: bool) -> OtherAnswer {
    let what = match r.cmd_id {
        protocol::CMD_HEARTBEAT_ACK => "heartbeat",
        protocol::CMD_SUB_TRADES_ACK => "trade subscription",
        protocol::CMD_CANCEL_ACK => "cancel",
        protocol::CMD_SUB_DEPTH_ACK => "depth subscription",
        _ => "request",
    };
    let ret = r.ret;
    let server_msg = if r.msg.is_empty() {
        String::new()
    } else {
        format!(" (server: {:?})", r.msg)
    };
    let plain = |notes: Vec<String>| OtherAnswer {
        reaction: Reaction {
            notes,
            act: Act::Nothing,
        },
        resend_all_after: None,
        healthy: false,
    };
    match ret.handling() {
        Handling::Done => OtherAnswer {
            healthy: r.cmd_id == protocol::CMD_HEARTBEAT_ACK && nothing_subscribed,
            ..plain(Vec::new())
        },
        Handling::Fatal => OtherAnswer {
            reaction: Reaction {
                notes: Vec::new(),
                act: Act::Fatal(channel::TOKEN_REFUSED.into()),
            },
            ..plain(Vec::new())
        },
        // Not matched to a request: whichever it refused, sending both sets
        // again (paced) is safe and loses nothing.
        Handling::ResendAfter(wait) => OtherAnswer {
            resend_all_after: Some(wait),
            ..plain(vec![format!(
                "{what} refused: ret {ret}{server_msg}; resending the subscriptions in {} s",
                wait.as_secs()
            )])
        },
        Handling::Reconnect(min_wait) => OtherAnswer {
            reaction: Reaction {
                notes: Vec::new(),
                act: Act::Reconnect {
                    reason: format!("{}{server_msg}", ret.meaning()),
                    min_wait,
                },
            },
            ..plain(Vec::new())
        },
        // Not matched to a subscription, there is no set to narrow down or
        // hold: say it.
        Handling::OverPlan | Handling::BadCodes | Handling::Report => {
            plain(vec![format!("{what} refused: ret {ret}{server_msg}")])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_closes_after_an_unbroken_empty_limit() {
        let t0 = Instant::now();
        let limit = Duration::from_secs(60);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut idle = Idle::default();
        assert!(!idle.expired(true, t0, limit));
        assert!(!idle.expired(true, at(59), limit));
        // Something to carry at 59 s: the count starts again.
        assert!(!idle.expired(false, at(59), limit));
        assert!(!idle.expired(true, at(60), limit));
        assert!(!idle.expired(true, at(119), limit));
        assert!(idle.expired(true, at(120), limit));
        idle.reset();
        assert!(!idle.expired(true, at(121), limit));
        assert!(idle.expired(true, at(181), limit));
    }

    fn req(cmd: u64, at: Instant) -> InFlight {
        InFlight {
            cmd,
            feed: (cmd != protocol::CMD_HEARTBEAT).then_some(FeedKind::Trades),
            codes: Vec::new(),
            sent_at: at,
        }
    }

    fn answer(cmd_id: u64, ret: i64, seq_id: Option<u64>) -> Response {
        Response {
            cmd_id,
            ret: protocol::Ret::from_code(ret),
            msg: String::new(),
            seq_id,
        }
    }

    #[test]
    fn answers_match_by_seq_id_first() {
        let t0 = Instant::now();
        let mut q = Requests::default();
        q.sent(1, req(22004, t0));
        q.sent(2, req(22004, t0 + Duration::from_secs(2)));
        let got = q.answered(&answer(22005, 200, Some(2))).unwrap();
        assert_eq!(got.sent_at, t0 + Duration::from_secs(2));
        assert!(q.answered(&answer(22005, 200, Some(1))).is_some());
        assert!(q.answered(&answer(22005, 200, Some(1))).is_none());
        assert!(q.by_id.is_empty());
    }

    #[test]
    fn answers_without_a_matching_seq_id_go_to_the_oldest_request_of_their_kind() {
        let t0 = Instant::now();
        let mut q = Requests::default();
        q.sent(5, req(22000, t0));
        q.sent(6, req(22004, t0 + Duration::from_secs(1)));
        q.sent(7, req(22004, t0 + Duration::from_secs(3)));
        // The docs' error example: seq_id 0.
        let got = q.answered(&answer(22005, 429, Some(0))).unwrap();
        assert_eq!(got.cmd, 22004);
        assert_eq!(got.sent_at, t0 + Duration::from_secs(1));
        // No seq_id at all.
        let got = q.answered(&answer(22005, 429, None)).unwrap();
        assert_eq!(got.sent_at, t0 + Duration::from_secs(3));
        // Nothing of that kind left: unmatched.
        assert!(q.answered(&answer(22005, 429, None)).is_none());
        assert!(q.answered(&answer(0, 429, None)).is_none());
        assert_eq!(q.answered(&answer(22001, 200, Some(0))).unwrap().cmd, 22000);
    }

    #[test]
    fn unanswered_requests_expire() {
        let t0 = Instant::now();
        let mut q = Requests::default();
        for id in 1..=100 {
            q.sent(id, req(22000, t0));
        }
        q.sent(101, req(22004, t0 + REQUEST_EXPIRY));
        assert!(q.expire(t0 + REQUEST_EXPIRY / 2).is_empty());
        let gone = q.expire(t0 + REQUEST_EXPIRY);
        assert_eq!(gone.len(), 100);
        assert_eq!(q.by_id.len(), 1);
        assert_eq!(q.expire(t0 + REQUEST_EXPIRY * 2).len(), 1);
        assert!(q.by_id.is_empty());
    }

    #[test]
    fn a_quiet_feed_is_alive_until_nothing_at_all_arrives_for_stale_after() {
        let t0 = Instant::now();
        let s = Duration::from_secs(30);
        let mut l = Liveness::new(t0, s);
        assert!(!l.is_stale(t0 + s - Duration::from_millis(1)));
        assert!(l.is_stale(t0 + s));
        // A heartbeat answer at 25 s keeps it alive to 55 s.
        l.heard(t0 + Duration::from_secs(25));
        assert!(!l.is_stale(t0 + Duration::from_secs(54)));
        assert!(l.is_stale(t0 + Duration::from_secs(55)));
        // A late report of an earlier message does not move the clock back.
        l.heard(t0);
        assert!(!l.is_stale(t0 + Duration::from_secs(54)));
    }

    #[test]
    fn streaming_after_the_acknowledgement_earns_a_step_per_healthy_after() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let h_ms = HEALTHY_AFTER.as_millis() as u64;
        let mut h = Health::default();
        // Messages before any acknowledgement earn nothing.
        h.heard(at(0));
        h.heard(at(10 * h_ms));
        assert_eq!(h.earned(), 0, "never acknowledged");

        let mut h = Health::default();
        h.acknowledged(at(100));
        h.acknowledged(at(5_000)); // a later acknowledgement moves nothing
        assert_eq!(h.earned(), 0, "nothing heard yet");
        h.heard(at(100 + h_ms - 1));
        assert_eq!(h.earned(), 0, "just short of one stretch");
        h.heard(at(100 + h_ms));
        assert_eq!(h.earned(), 1);
        assert_eq!(h.earned(), 0, "a step is handed out once");
        h.heard(at(100 + 3 * h_ms + 1));
        assert_eq!(h.earned(), 2);
        // A late report of an earlier message takes nothing back.
        h.heard(at(200));
        assert_eq!(h.earned(), 0);
    }

    #[test]
    fn a_connection_that_dies_at_its_acknowledgement_earns_nothing() {
        let t0 = Instant::now();
        let mut h = Health::default();
        // Acknowledged, then only an answer 100 ms later: accept-then-drop.
        h.heard(t0);
        h.acknowledged(t0);
        h.heard(t0 + Duration::from_millis(100));
        assert_eq!(h.earned(), 0);
        // Acknowledged, then silent: time passing alone earns nothing.
        let mut quiet = Health::default();
        quiet.acknowledged(t0);
        quiet.heard(t0);
        assert_eq!(quiet.earned(), 0);
    }

    #[test]
    fn an_unmatched_rate_limit_still_resends_both_sets() {
        for ret in [429, 605] {
            let a = other_answer(&answer(22005, ret, Some(0)), false);
            assert_eq!(a.resend_all_after, Some(protocol::RATE_LIMIT_RETRY));
            assert!(
                a.reaction.notes[0].contains("resending"),
                "{:?}",
                a.reaction
            );
            let a = other_answer(&answer(0, ret, None), false);
            assert_eq!(a.resend_all_after, Some(protocol::RATE_LIMIT_RETRY));
        }
    }

    #[test]
    fn other_answers_401_606_and_heartbeats() {
        assert!(matches!(
            other_answer(&answer(22001, 401, None), false).reaction.act,
            Act::Fatal(_)
        ));
        match other_answer(&answer(22001, 606, None), false).reaction.act {
            Act::Reconnect { min_wait, .. } => assert!(min_wait >= Duration::from_secs(3)),
            other => panic!("{other:?}"),
        }
        let hb = other_answer(&answer(22001, 200, Some(3)), true);
        assert!(hb.healthy && hb.reaction.notes.is_empty());
        assert!(!other_answer(&answer(22001, 200, Some(3)), false).healthy);
        let odd = other_answer(&answer(22001, 400, Some(3)), false);
        assert_eq!(odd.resend_all_after, None);
        assert!(odd.reaction.notes[0].contains("heartbeat refused: ret 400"));
    }
}
