//! What arrives becomes lines: text frames are decoded (the zero-copy
//! scanner first, the full decoder for the rest), pushes are validated,
//! de-duplicated and formatted into a [`Batch`], and batches go to the
//! writer through the bounded queue. Answers to requests are handed back to
//! the caller. Everything dropped is counted and reported here, in one
//! place, by its own name.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

use crate::feed::{Feed, Feeds};
use crate::output::Batch;
use crate::protocol::{self, Depth, Incoming, Response, TradeView};
use crate::report::say;
use crate::scan::{self, Scan};
use crate::stats::Stats;
use crate::subscriptions::Seen;

/// How long a full queue may hold up the reader before new ticks are
/// dropped. Far below the heartbeat period, so the link stays alive.
pub const OVERFLOW_GRACE: Duration = Duration::from_millis(50);

/// A batch is handed to the writer at this size even mid-burst.
pub const BATCH_BYTES: usize = 32 * 1024;

/// Rate-limited reports of dropped data: the first of a kind at once, then
/// at most one line per kind every [`DropLog::EVERY`], with running totals.
#[derive(Debug, Default)]
pub struct DropLog {
    last: HashMap<&'static str, Instant>,
}

impl DropLog {
    /// At most one line per kind this often.
    pub const EVERY: Duration = Duration::from_secs(10);

    /// Whether a line of `kind` may be said at `now` (and remember it).
    pub fn due(&mut self, kind: &'static str, now: Instant) -> bool {
        let due = self
            .last
            .get(kind)
            .is_none_or(|at| now >= *at + Self::EVERY);
        if due {
            self.last.insert(kind, now);
        }
        due
    }

    fn note(&mut self, kind: &'static str, now: Instant, what: impl FnOnce() -> String) {
        if self.due(kind, now) {
            say(what());
        }
    }
}

/// The receiving end of a session: the batch being filled and the queue
/// to the writer.
pub struct Intake {
    batch: Batch,
    out: Sender<Batch>,
    stats: Arc<Stats>,
    drops: DropLog,
    /// `--queue`: ticks the writer may fall behind.
    queue: usize,
}

impl Intake {
    /// Lines go to `out`; at most `queue` ticks may wait for the writer.
    pub fn new(out: Sender<Batch>, stats: Arc<Stats>, queue: usize) -> Intake {
        Intake {
            batch: Batch::default(),
            out,
            stats,
            drops: DropLog::default(),
            queue,
        }
    }

    /// Whether formatted lines are waiting to be handed over.
    pub fn has_lines(&self) -> bool {
        !self.batch.is_empty()
    }

    /// Handle one text frame. Pushes go into the batch; an answer to a
    /// request is returned for the caller to act on.
    pub fn text(&mut self, text: &str, feeds: &mut Feeds, now: Instant) -> Option<Response> {
        match scan::scan(text) {
            Scan::Trade(raw) => match protocol::validate(&raw) {
                Ok(view) => self.trade(&view, &mut feeds.trades, now),
                Err(why) => self.invalid_trade(why, now),
            },
            Scan::Other => match protocol::decode(text) {
                Ok(Incoming::Trade(trade)) => self.trade(&trade.view(), &mut feeds.trades, now),
                Ok(Incoming::BadTrade(why)) => self.invalid_trade(why, now),
                Ok(Incoming::Depth(d)) => self.depth(&d, &mut feeds.depth, now),
                Ok(Incoming::BadDepth(why)) => self.invalid_depth(why, now),
                Ok(Incoming::Response(r)) => return Some(r),
                Ok(Incoming::Other { cmd_id }) => self.garbage(
                    match cmd_id {
                        Some(_) => "unknown cmd_id",
                        None => "no cmd_id",
                    },
                    now,
                ),
                Err(why) => self.garbage(why, now),
            },
        }
        None
    }

    /// A frame that is not text at all.
    pub fn binary(&mut self, now: Instant) {
        self.garbage("unexpected binary frame", now);
    }

    /// A frame the WebSocket layer refused (too large, invalid UTF-8).
    pub fn refused_frame(&mut self) {
        Stats::add(&self.stats.garbage_frames, 1);
    }

    fn invalid_trade(&mut self, why: &'static str, now: Instant) {
        let total = self.count(|s| &s.dropped_invalid, 1);
        self.drops.note("invalid trade", now, || {
            format!("skipped an invalid trade ({why}); {total} invalid trades skipped so far")
        });
    }

    fn invalid_depth(&mut self, why: &'static str, now: Instant) {
        let total = self.count(|s| &s.dropped_invalid_depth, 1);
        self.drops.note("invalid depth", now, || {
            format!("skipped an unreadable depth push ({why}); {total} depth pushes skipped so far")
        });
    }

    fn garbage(&mut self, why: &'static str, now: Instant) {
        let total = self.count(|s| &s.garbage_frames, 1);
        self.drops.note("garbage", now, || {
            format!("skipped an unreadable frame ({why}); {total} skipped so far")
        });
    }

    /// Add `n` to a counter; returns its new total.
    fn count(&self, counter: impl Fn(&Stats) -> &std::sync::atomic::AtomicU64, n: u64) -> u64 {
        Stats::add(counter(&self.stats), n);
        Stats::get(counter(&self.stats))
    }

    /// Format a trade into the batch, unless it was already written.
    fn trade(&mut self, t: &TradeView, feed: &mut Feed, now: Instant) {
        if let Some(name) = self.dedupe(feed, t.code, t.seq, t.time, now) {
            self.batch.push_trade(name, t);
        }
        self.hand_over_if_full();
    }

    /// Format a depth push into the batch, unless it was already written;
    /// count the levels the decoder dropped.
    fn depth(&mut self, d: &Depth, feed: &mut Feed, now: Instant) {
        if d.bad_levels > 0 {
            let total = self.count(|s| &s.bad_depth_levels, u64::from(d.bad_levels));
            let code = &d.code;
            self.drops.note("bad depth level", now, || {
                format!(
                    "dropped a bad depth level (zero or empty price, or a bad volume) from a book of {code}, kept the rest; {total} bad depth levels dropped so far"
                )
            });
        }
        if let Some(name) = self.dedupe(feed, &d.code, d.seq, d.time, now) {
            self.batch.push_depth(name, d);
        }
        self.hand_over_if_full();
    }

    /// Whether a push is to be written, and under which label; says what
    /// needs saying about restarts and repeats.
    fn dedupe<'a>(
        &mut self,
        feed: &'a mut Feed,
        code: &'a str,
        seq: u64,
        time: u64,
        now: Instant,
    ) -> Option<&'a str> {
        let kind = feed.kind().name();
        match feed.see(code, seq, time) {
            Seen::New(name) => Some(name),
            Seen::Unknown => Some(code),
            Seen::Restarted { name, first } => {
                Stats::add(&self.stats.seq_restarts, 1);
                if first {
                    say(format!(
                        "{name}: the server's {kind} seq numbering restarted (seq {seq} with a later time than the last one written); writing it"
                    ));
                }
                Some(name)
            }
            Seen::Repeat => {
                let total = self.count(|s| &s.dropped_repeat, 1);
                self.drops.note("repeat", now, || {
                    format!(
                        "skipped a {kind} push already written (seq and time not after the last written for {code}); {total} skipped so far"
                    )
                });
                None
            }
        }
    }

    fn hand_over_if_full(&mut self) {
        if self.batch.bytes.len() >= BATCH_BYTES {
            self.hand_over();
        }
    }

    /// Hand the batch to the writer; if the writer is `--queue` ticks
    /// behind, drop it (the newest ticks) and count them.
    pub fn hand_over(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let n = batch.ticks;
        Stats::add(&self.stats.received, n);
        // A writer that is momentarily behind (descheduled on a busy
        // machine) gets a short grace: meanwhile the kernel's socket buffer
        // holds what arrives, and nothing is lost. Only a writer that stays
        // behind costs ticks.
        let limit = self.queue as u64;
        let full = self.stats.unwritten() + n > limit
            && !self.stats.wait_for_room(n, limit, OVERFLOW_GRACE);
        let sent = if full {
            Err(n)
        } else {
            match self.out.try_send(batch) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(n),
                // The writer is gone (stdout closed): nothing to count.
                Err(TrySendError::Disconnected(_)) => Ok(()),
            }
        };
        match sent {
            Ok(()) => Stats::add(&self.stats.queued, n),
            Err(n) => {
                let total = self.count(|s| &s.dropped_overflow, n);
                let cap = self.queue;
                self.drops.note("overflow", Instant::now(), || {
                    format!(
                        "output queue full ({cap} ticks): stdout is not keeping up; dropping new ticks, {total} dropped so far"
                    )
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reports_are_rate_limited_per_kind() {
        let t0 = Instant::now();
        let mut d = DropLog::default();
        assert!(d.due("invalid trade", t0));
        assert!(!d.due("invalid trade", t0 + Duration::from_secs(9)));
        assert!(d.due("bad depth level", t0 + Duration::from_secs(9)));
        assert!(d.due("invalid trade", t0 + DropLog::EVERY));
    }
}
