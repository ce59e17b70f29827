//! What a connection's thread does with each text frame: answers to
//! requests go back to the session; pushes are handed over, unparsed, in
//! batches through the bounded queue to the writer thread, which decodes,
//! validates, de-duplicates and formats them ([`crate::writer::lines`]). Telling a
//! push from an answer is a look at the frame's first key
//! ([`protocol::push_kind`]); a frame written any other way is scanned
//! ([`scan::scan`]) or else decoded here, and handed over if it turns out
//! to be a push. Labels for the
//! output travel through the same queue, so they keep their order with
//! the frames.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::queue::{BATCH_BYTES, Frames, Gap, Item, Label};
use crate::stats::{DropLog, Stats};
use crate::wire::protocol::{self, Incoming, Response};
use crate::wire::scan::{self, Scan};

/// How long a full queue may hold up the reader before new ticks are
/// dropped. Far below the heartbeat period, so the link stays alive.
pub const OVERFLOW_GRACE: Duration = Duration::from_millis(50);

/// Spent batches kept for reuse (see [`crate::writer::run_sink`]): 1 MiB
/// at most. Measured with `scripts/bench.sh`, 16 gained about 8% ticks/s
/// under a flood, 4 about half of that.
pub const SPARE_BATCHES: usize = 16;

/// How often a session waiting to send labels looks at the queue again.
const LABEL_WAIT: Duration = Duration::from_millis(100);

/// Items a session lets wait in the queue before it waits to send labels:
/// more than a writer that is merely slow ever leaves.
pub const LABELS_WAITING: usize = 4096;

/// Room beyond [`BATCH_BYTES`] for the frame that fills a batch.
const BATCH_SLACK: usize = 4 * 1024;

/// The receiving end of a session: the batch being filled and the queue
/// to the writer.
pub struct Intake {
    frames: Frames,
    out: Sender<Item>,
    /// Spent batches, back from the writer.
    spares: Receiver<Frames>,
    stats: Arc<Stats>,
    drops: DropLog,
    /// `--queue`: ticks the writer may fall behind.
    queue: usize,
    /// With `--gaps`: the connection's name, for overflow gaps.
    gap_name: Option<Arc<str>>,
    /// Ticks dropped on overflow since the queue last took a batch.
    overflow: Option<Overflow>,
}

/// A run of batches dropped because the writer stayed behind.
#[derive(Debug)]
struct Overflow {
    from: u64,
    to: u64,
    dropped: u64,
    codes: std::collections::BTreeSet<String>,
}

impl Intake {
    /// Frames go to `out` (in batches taken from `spares` when there are
    /// any); at most `queue` ticks may wait for the writer.
    pub fn new(
        out: Sender<Item>,
        spares: Receiver<Frames>,
        stats: Arc<Stats>,
        queue: usize,
    ) -> Intake {
        Intake {
            frames: Frames::default(),
            out,
            spares,
            stats,
            drops: DropLog::default(),
            queue,
            gap_name: None,
            overflow: None,
        }
    }

    /// With `Some(name)`, ticks dropped on overflow are marked by a gap of
    /// connection `name` (`--gaps`).
    pub fn with_gaps(mut self, name: Option<Arc<str>>) -> Intake {
        self.gap_name = name;
        self
    }

    /// Send a gap, after the frames read before it.
    pub fn gap(&mut self, gap: Gap) {
        self.hand_over();
        let _ = self.out.send(Item::Gap(gap));
    }

    /// An outage began: the lines before it first.
    pub fn outage(&mut self, connection: Arc<str>, codes: Vec<String>, from: u64) {
        self.hand_over();
        let _ = self.out.send(Item::Outage {
            connection,
            codes,
            from,
        });
    }

    /// The session ends: hand over what is left, and mark an overflow
    /// that had no batch after it.
    pub fn end(&mut self) {
        self.hand_over();
        self.overflow_gap();
    }

    /// The overflow run, if any, as a gap line.
    fn overflow_gap(&mut self) {
        let (Some(o), Some(name)) = (self.overflow.take(), &self.gap_name) else {
            return;
        };
        let _ = self.out.send(Item::Gap(Gap {
            connection: Some(Arc::clone(name)),
            codes: o.codes.into_iter().collect(),
            from: o.from,
            to: o.to,
            reason: "output queue full: stdout did not keep up".into(),
            dropped: Some(o.dropped),
            heal: None,
        }));
    }

    /// Whether frames are waiting to be handed over.
    pub fn has_lines(&self) -> bool {
        !self.frames.is_empty()
    }

    /// Handle one text frame. Pushes go into the batch; an answer to a
    /// request is returned for the caller to act on.
    pub fn text(&mut self, text: &str) -> Option<Response> {
        // A trade push written another way (another first key) is still
        // told by the zero-copy scanner, without a full decode here.
        if protocol::push_kind(text).is_some() || matches!(scan::scan(text), Scan::Trade(_)) {
            self.push(text);
            return None;
        }
        match protocol::decode(text) {
            Ok(Incoming::Response(r)) => return Some(r),
            // A depth push, or a trade the scanner leaves to the full
            // decoder, written another way: the writer decodes it again.
            Ok(
                Incoming::Trade(_)
                | Incoming::BadTrade(_)
                | Incoming::Depth(_)
                | Incoming::BadDepth(_),
            ) => self.push(text),
            Ok(Incoming::Other { cmd_id }) => self.garbage(match cmd_id {
                Some(_) => "unknown cmd_id",
                None => "no cmd_id",
            }),
            Err(why) => self.garbage(why),
        }
        None
    }

    fn push(&mut self, text: &str) {
        if self.frames.is_empty() && self.frames.capacity() == 0 {
            // One allocation for a whole batch of usual frames, or one
            // the writer is done with.
            match self.spares.try_recv() {
                Ok(spare) => self.frames = spare,
                Err(_) => self.frames.reserve(BATCH_BYTES + BATCH_SLACK),
            }
        }
        self.frames.push(text);
        if self.frames.bytes() >= BATCH_BYTES {
            self.hand_over();
        }
    }

    /// Lines of these codes carry these names from now on. Sent in order
    /// with the frames; labels are few and never dropped.
    pub fn labels(&mut self, labels: Vec<Label>) {
        if labels.is_empty() {
            return;
        }
        // Frames read so far keep the labels they were read under.
        self.hand_over();
        // Only a writer stuck on stdout leaves this many items waiting;
        // then this waits for it rather than pile labels up.
        while self.out.len() >= self.queue + LABELS_WAITING {
            self.stats.wait_for_progress(LABEL_WAIT);
        }
        let _ = self.out.send(Item::Labels(labels));
    }

    /// A frame that is not text at all.
    pub fn binary(&mut self) {
        self.garbage("unexpected binary frame");
    }

    /// A frame the WebSocket layer refused (too large, invalid UTF-8).
    pub fn refused_frame(&mut self) {
        Stats::add(&self.stats.garbage_frames, 1);
    }

    fn garbage(&mut self, why: &'static str) {
        self.drops
            .count(&self.stats.garbage_frames, 1, "garbage", |total| {
                format!("skipped an unreadable frame ({why}); {total} skipped so far")
            });
    }

    /// Remember what an overflow dropped: when, how many, which codes.
    fn note_overflow(&mut self, frames: &Frames) {
        let now = Stats::now_ms();
        let o = self.overflow.get_or_insert_with(|| Overflow {
            from: now,
            to: now,
            dropped: 0,
            codes: Default::default(),
        });
        o.to = now;
        o.dropped += frames.len() as u64;
        for f in frames.iter() {
            if let Some(code) = code_of(f) {
                o.codes.insert(code);
            }
        }
    }

    /// Hand the batch to the writer; if the writer is `--queue` ticks
    /// behind, drop it (the newest ticks) and count them.
    pub fn hand_over(&mut self) {
        if self.frames.is_empty() {
            return;
        }
        // Each batch is sized by what it holds: a quiet feed's one-frame
        // batches stay small while they wait in the queue.
        let mut frames = std::mem::take(&mut self.frames);
        frames.fit();
        let n = frames.len() as u64;
        Stats::add(&self.stats.received, n);
        // A writer that is momentarily behind (descheduled on a busy
        // machine) gets a short grace: meanwhile the kernel's socket buffer
        // holds what arrives, and nothing is lost. Only a writer that stays
        // behind costs ticks.
        let limit = self.queue as u64;
        let full = self.stats.unwritten() + n > limit
            && !self.stats.wait_for_room(n, limit, OVERFLOW_GRACE);
        if !full {
            // The dropped run ends: marked before the batch that follows.
            self.overflow_gap();
            // A send fails only when the writer is gone (stdout closed):
            // then there is nothing to count.
            let _ = self.out.send(Item::Frames(frames));
            Stats::add(&self.stats.queued, n);
        } else {
            if self.gap_name.is_some() {
                self.note_overflow(&frames);
            }
            let cap = self.queue;
            self.drops
                .count(&self.stats.dropped_overflow, n, "overflow", |total| {
                    format!(
                        "output queue full ({}): stdout is not keeping up; dropping new ticks, {total} dropped so far",
                        crate::report::count(cap, "tick")
                    )
                });
        }
    }
}

/// The code a push frame is about, read without a full decode where the
/// frame allows (only on the overflow path).
fn code_of(frame: &str) -> Option<String> {
    if let Some(t) = crate::wire::fast::read(frame) {
        return Some(t.code.to_string());
    }
    if let Scan::Trade(raw) = scan::scan(frame) {
        return raw.code.map(str::to_string);
    }
    match protocol::decode(frame) {
        Ok(Incoming::Trade(t)) => Some(t.view().code.to_string()),
        Ok(Incoming::Depth(d)) => Some(d.code.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Pushes are handed over whatever their key order; answers come back
    /// to the session; anything else is counted.
    #[test]
    fn frames_are_told_apart_whatever_their_key_order() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let stats = Arc::new(Stats::default());
        let spares = crossbeam_channel::bounded(1).1;
        let mut intake = Intake::new(tx, spares, Arc::clone(&stats), 100);
        let pushes = [
            r#"{"cmd_id":22998,"data":{"code":"A.US","seq":1,"tick_time":1,"price":"1"}}"#,
            r#"{"data":{"code":"A.US","seq":2,"tick_time":2,"price":"1"},"cmd_id":22998}"#,
            r#"{"data":{"code":"A.US","seq":3,"tick_time":3,"bids":[],"asks":[]},"cmd_id":22999}"#,
        ];
        for p in pushes {
            assert!(intake.text(p).is_none(), "{p}");
        }
        let answer = intake
            .text(r#"{"ret":200,"msg":"ok","cmd_id":22005,"seq_id":1,"trace":"t","data":{}}"#);
        assert!(answer.is_some());
        assert!(intake.text(r#"{"data":{},"cmd_id":1}"#).is_none());
        intake.hand_over();
        let handed: Vec<String> = rx
            .try_iter()
            .flat_map(|item| match item {
                Item::Frames(f) => f.iter().map(str::to_string).collect::<Vec<_>>(),
                Item::Labels(_) | Item::Gap(_) | Item::Outage { .. } => Vec::new(),
            })
            .collect();
        assert_eq!(handed, pushes);
        assert_eq!(Stats::get(&stats.garbage_frames), 1);
    }

    #[test]
    fn drop_reports_are_rate_limited_per_kind() {
        let t0 = Instant::now();
        let mut d = DropLog::default();
        assert!(d.due("invalid trade", t0));
        assert!(!d.due("invalid trade", t0 + Duration::from_secs(9)));
        assert!(d.due("bad depth level", t0 + Duration::from_secs(9)));
        assert!(d.due("invalid trade", t0 + DropLog::REPORT_EVERY));
    }
}
