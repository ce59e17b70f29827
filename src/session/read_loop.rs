//! The read loop of one open connection: reading frames, the clock's work on each
//! wake-up, sending what is due, and acting on the server's answers.

use std::time::Instant;

use super::{ConnEnd, HOUSEKEEPING_EVERY, Session};
use crate::session::channel::{Act, Reaction};
use crate::session::connection::{Connection, Frame};
use crate::session::error::Disconnect;
use crate::session::policy::{self, InFlight, REQUEST_EXPIRY};
use crate::session::schedule::Due;
use crate::session::stagger::Stagger;
use crate::stats::Stats;
use crate::wire::protocol::{self, FeedKind, Response};

impl Session {
    /// Read frames until the connection ends or a stop is asked for.
    pub(super) fn read_loop(&mut self, mut conn: Connection) -> ConnEnd {
        // A fresh connection has nothing subscribed.
        self.channels.on_connect();
        let mut burst: u32 = 0;
        loop {
            burst = burst.wrapping_add(1);
            if !conn.is_draining() || burst.is_multiple_of(HOUSEKEEPING_EVERY) {
                match self.housekeeping(&mut conn) {
                    Ok(()) => {}
                    Err(end @ (ConnEnd::Stopped | ConnEnd::Idle)) => {
                        self.close(conn);
                        return end;
                    }
                    Err(end) => return end,
                }
            }
            match conn.read() {
                Ok(Frame::Text(text)) => {
                    if let Some(r) = self.intake.text(text.as_str()) {
                        let request = conn.answered(&r);
                        if let Err(end) = self.on_response(&mut conn, &r, request) {
                            return end;
                        }
                    }
                }
                Ok(Frame::Binary) => self.intake.binary(),
                Ok(Frame::Idle) => {}
                // The burst is over: hand it to the writer.
                Ok(Frame::BurstOver) => self.intake.hand_over(),
                Err(d) => {
                    // The last message's time, for a gap's start.
                    self.update_figures(&mut conn, Instant::now());
                    return ConnEnd::Lost(d);
                }
            }
            // Lines are waiting: read on without blocking until the socket
            // is empty, then hand them over in one batch.
            if self.intake.has_lines()
                && let Err(d) = conn.drain()
            {
                return ConnEnd::Lost(d);
            }
        }
    }

    /// The clock's work on each wake-up: stdin commands, a stop request,
    /// the connection's liveness, the backoff steps earned, expired requests, an
    /// idle close, and a due heartbeat or subscription.
    fn housekeeping(&mut self, conn: &mut Connection) -> Result<(), ConnEnd> {
        self.drain_controls();
        if self.stopping() {
            return Err(ConnEnd::Stopped);
        }
        let now = Instant::now();
        self.update_figures(conn, now);
        self.backoff.forgive(conn.health().earned());
        self.expire(conn, now);
        if self.idle_too_long(now) {
            return Err(ConnEnd::Idle);
        }
        let next = self.channels.next_pending();
        let due = conn.tick(now, next.is_some())?;
        let Some(kind) = next else {
            self.gate().withdraw(self.cfg.turn);
            return match due {
                Due::Heartbeat => Ok(conn.heartbeat(now)?),
                _ => Ok(()),
            };
        };
        match due {
            Due::Nothing => Ok(()),
            Due::Heartbeat => Ok(conn.heartbeat(now)?),
            // Requests on different connections wait their turn.
            Due::Subscription if self.gate().try_turn(self.cfg.turn, now) => {
                self.send_subscription(conn, kind, now)
            }
            Due::Subscription => Ok(()),
        }
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, Stagger> {
        self.cfg.stagger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_figures(&mut self, conn: &mut Connection, now: Instant) {
        if conn.take_heard(now) {
            Stats::set(&self.figures.last_message_ms, Stats::now_ms());
        }
        let f = &self.figures;
        Stats::set(&f.trade_symbols, self.channels.trades.codes().len() as u64);
        Stats::set(&f.depth_symbols, self.channels.depth.codes().len() as u64);
    }

    /// Forget requests that got no answer; a subscription is sent again.
    fn expire(&mut self, conn: &mut Connection, now: Instant) {
        for req in conn.expire(now) {
            if let Some(kind) = req.feed {
                self.say(format!(
                    "no answer to the {} subscription request after {} s; sending the set again",
                    kind.name(),
                    REQUEST_EXPIRY.as_secs()
                ));
                self.channels.get_mut(kind).resend();
            }
        }
    }

    /// Whether the connection has carried nothing (and the server holds
    /// nothing of ours) for `--idle-close`.
    fn idle_too_long(&mut self, now: Instant) -> bool {
        let empty = self.carries_nothing()
            && self.channels.trades.server_set().is_empty()
            && self.channels.depth.server_set().is_empty();
        self.idle.expired(empty, now, self.cfg.idle_close)
    }

    /// Send the pending set of `kind` (or its cancel).
    fn send_subscription(
        &mut self,
        conn: &mut Connection,
        kind: FeedKind,
        now: Instant,
    ) -> Result<(), ConnEnd> {
        let id = conn.next_seq_id();
        let Some((text, codes)) = self.channels.get_mut(kind).take_request(id) else {
            return Ok(());
        };
        let cmd = if codes.is_empty() {
            protocol::CMD_CANCEL
        } else {
            kind.request_cmd()
        };
        let req = InFlight {
            cmd,
            feed: Some(kind),
            codes,
            sent_at: now,
        };
        Ok(conn.send(id, text, req, Due::Subscription)?)
    }

    /// Act on an answer from the server, given the request it answers.
    fn on_response(
        &mut self,
        conn: &mut Connection,
        r: &Response,
        request: Option<InFlight>,
    ) -> Result<(), ConnEnd> {
        let now = Instant::now();
        let reaction = match request {
            Some(InFlight {
                feed: Some(kind),
                codes,
                ..
            }) => {
                let max = self.cfg.max_symbols;
                let reaction = self
                    .channels
                    .get_mut(kind)
                    .on_answer(r.ret, &r.msg, codes, max);
                if r.ret.is_success() {
                    conn.health().acknowledged(now);
                    self.acknowledged = true;
                    self.gap_closed();
                }
                if let Act::ResendAfter(d) = reaction.act {
                    conn.delay_subscriptions(now + d);
                    self.channels.get_mut(kind).resend();
                }
                reaction
            }
            _ => {
                let other = policy::other_answer(r, self.channels.trades.codes().is_empty());
                if other.healthy {
                    conn.health().acknowledged(now);
                }
                if let Some(d) = other.resend_all_after {
                    conn.delay_subscriptions(now + d);
                    self.channels.resend_all();
                }
                other.reaction
            }
        };
        self.act(reaction)
    }

    /// A subscription was acknowledged: an open outage ends now.
    fn gap_closed(&mut self) {
        let Some(g) = &mut self.gaps else { return };
        let acked: Vec<String> = (self.channels.trades.server_set().iter())
            .chain(self.channels.depth.server_set())
            .map(|c| c.to_string())
            .collect();
        if let Some(gap) = g.acknowledged(Stats::now_ms(), &acked) {
            self.intake.gap(gap);
        }
    }

    /// Say a reaction's notes and turn its action into the connection's fate.
    fn act(&self, reaction: Reaction) -> Result<(), ConnEnd> {
        for note in reaction.notes {
            self.say(note);
        }
        match reaction.act {
            Act::Nothing | Act::ResendAfter(_) => Ok(()),
            Act::Reconnect { reason, .. } => Err(ConnEnd::Lost(Disconnect::Ret606(reason))),
            Act::Fatal(m) => Err(ConnEnd::Fatal(m)),
        }
    }

    /// Close the connection, keeping every push read before the server's
    /// close reply.
    fn close(&mut self, conn: Connection) {
        let intake = &mut self.intake;
        conn.close(|text| {
            let _ = intake.text(text);
        });
    }
}
