//! The writer's half of the hot path: push frames become JSON lines.
//!
//! The connections' threads only read frames and hand the pushes over in
//! batches; here, on the writer thread, each is decoded (the documented
//! shape in one pass, [`fast`], then the zero-copy scanner, then the full
//! decoder for the rest), validated, de-duplicated against everything
//! written from every connection, and formatted straight into the output
//! buffer. The labels (the spelling a user subscribed with)
//! arrive through the same queue as the frames, so a frame is always
//! labelled as its code was labelled when it was received.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use crate::form::json::{self, format_depth, format_trade, trade_head};
use crate::queue::Label;
use crate::report::say;
use crate::stats::DropLog;
use crate::stats::Stats;
use crate::wire::fast;
use crate::wire::protocol::{self, Depth, Incoming, TradeView};
use crate::wire::repeat::{Last, Seen};
use crate::wire::scan::{self, Scan};
use crate::wire::symbol::{Code, Fnv};

/// A labelled code: its label and what was written of it.
struct Entry {
    name: Arc<str>,
    /// A trade line's start for this label ([`trade_head`]); empty for
    /// a depth code.
    head: Box<[u8]>,
    last: Last,
}

impl Entry {
    fn new(l: &Label) -> Entry {
        let mut head = Vec::new();
        if !l.depth {
            trade_head(&mut head, &l.name, &l.code);
        }
        Entry {
            name: Arc::clone(&l.name),
            head: head.into(),
            last: Last::default(),
        }
    }
}

/// Labels and de-duplication memory of one kind of push: one lookup a
/// push. Only codes the user subscribed to are kept.
type Book = HashMap<Code, Entry, BuildHasherDefault<Fnv>>;

/// Turns push frames into lines.
pub struct Lines {
    trades: Book,
    depth: Book,
    drops: DropLog,
    stats: Arc<Stats>,
    /// What a capture's tail said of codes not labelled yet: their memory
    /// starts from it (`--output`, `--resume`).
    resumed: HashMap<(bool, String), Last>,
}

impl Lines {
    /// Counting drops in `stats`.
    pub fn new(stats: Arc<Stats>) -> Lines {
        Lines {
            trades: Book::default(),
            depth: Book::default(),
            drops: DropLog::default(),
            stats,
            resumed: HashMap::new(),
        }
    }

    /// Start each code's de-duplication memory from what a capture's tail
    /// said of it.
    pub fn resume(&mut self, last: HashMap<(bool, String), Last>) {
        self.resumed = last;
    }

    /// What was written of each code (depth?, code, seq, time), and what
    /// a capture's tail said of codes not labelled this run.
    pub fn memory(&self) -> Vec<(bool, &str, u64, u64)> {
        let books = [(false, &self.trades), (true, &self.depth)];
        let labelled = books.into_iter().flat_map(|(depth, book)| {
            book.iter()
                .map(move |(code, e)| (depth, &**code, e.last.parts()))
        });
        let resumed = self
            .resumed
            .iter()
            .map(|((d, c), l)| (*d, c.as_str(), l.parts()));
        labelled
            .chain(resumed)
            .filter(|(_, _, (seq, time))| *seq != 0 || *time != 0)
            .map(|(d, c, (seq, time))| (d, c, seq, time))
            .collect()
    }

    /// Label a code's lines with the user's spelling from now on.
    pub fn label(&mut self, l: Label) {
        let book = if l.depth {
            &mut self.depth
        } else {
            &mut self.trades
        };
        let mut entry = Entry::new(&l);
        if let Some(last) = self.resumed.remove(&(l.depth, l.code.to_string())) {
            entry.last = last;
        }
        match book.get_mut(&l.code) {
            Some(e) => {
                e.name = entry.name;
                e.head = entry.head;
            }
            None => {
                book.insert(l.code, entry);
            }
        }
    }

    /// Turn one push frame into a line appended to `out` (or count why
    /// not); the line's `time` when one was written.
    pub fn frame(&mut self, text: &str, out: &mut Vec<u8>) -> Option<u64> {
        if let Some(t) = fast::read(text) {
            return self.plain_trade(&t, out);
        }
        match scan::scan(text) {
            Scan::Trade(raw) => match protocol::validate(&raw) {
                Ok(view) => return self.trade(&view, out),
                Err(why) => self.invalid_trade(why),
            },
            Scan::Other => match protocol::decode(text) {
                Ok(Incoming::Trade(trade)) => return self.trade(&trade.view(), out),
                Ok(Incoming::BadTrade(why)) => self.invalid_trade(why),
                Ok(Incoming::Depth(d)) => return self.depth(&d, out),
                Ok(Incoming::BadDepth(why)) => self.invalid_depth(why),
                // Handed over as a push, but it is not one.
                Ok(Incoming::Response(_) | Incoming::Other { .. }) => self.garbage("not a push"),
                Err(why) => self.garbage(why),
            },
        }
        None
    }

    fn trade(&mut self, t: &TradeView, out: &mut Vec<u8>) -> Option<u64> {
        let (stats, drops) = (&self.stats, &mut self.drops);
        let push = Push {
            kind: "trade",
            code: t.code,
            seq: t.seq,
            time: t.time,
        };
        let name = dedupe(&mut self.trades, stats, drops, &push)?;
        format_trade(out, name, t);
        Some(t.time)
    }

    /// A trade on the fast path: the same rules as [`Lines::trade`].
    fn plain_trade(&mut self, t: &fast::DocumentedTrade, out: &mut Vec<u8>) -> Option<u64> {
        let (stats, drops) = (&self.stats, &mut self.drops);
        match self.trades.get_mut(t.code) {
            None => json::write_unlabelled(out, t),
            Some(e) => {
                let push = Push {
                    kind: "trade",
                    code: t.code,
                    seq: t.seq,
                    time: t.time,
                };
                if !written(&mut e.last, stats, drops, &e.name, &push) {
                    return None;
                }
                json::write(out, &e.head, t);
            }
        }
        Some(t.time)
    }

    fn depth(&mut self, d: &Depth, out: &mut Vec<u8>) -> Option<u64> {
        if d.bad_levels > 0 {
            let (s, code) = (&self.stats, &d.code);
            self.drops.count(
                &s.bad_depth_levels,
                u64::from(d.bad_levels),
                "bad depth level",
                |total| {
                    format!(
                        "dropped a bad depth level (zero or empty price, or a bad volume) from a book of {code}, kept the rest; {total} bad depth levels dropped so far"
                    )
                },
            );
        }
        let (stats, drops) = (&self.stats, &mut self.drops);
        let push = Push {
            kind: "depth",
            code: &d.code,
            seq: d.seq,
            time: d.time,
        };
        let name = dedupe(&mut self.depth, stats, drops, &push)?;
        format_depth(out, name, d);
        Some(d.time)
    }

    fn invalid_trade(&mut self, why: &'static str) {
        let s = &self.stats;
        self.drops
            .count(&s.dropped_invalid, 1, "invalid trade", |total| {
                format!("skipped an invalid trade ({why}); {total} invalid trades skipped so far")
            });
    }

    fn invalid_depth(&mut self, why: &'static str) {
        let s = &self.stats;
        self.drops
            .count(&s.dropped_invalid_depth, 1, "invalid depth", |total| {
                format!(
                    "skipped an unreadable depth push ({why}); {total} depth pushes skipped so far"
                )
            });
    }

    fn garbage(&mut self, why: &'static str) {
        let s = &self.stats;
        self.drops.count(&s.garbage_frames, 1, "garbage", |total| {
            format!("skipped an unreadable frame ({why}); {total} skipped so far")
        });
    }
}

/// The push a de-duplication decision is about.
#[derive(Clone, Copy)]
struct Push<'a> {
    kind: &'static str,
    code: &'a str,
    seq: u64,
    time: u64,
}

/// Whether a push is to be written, and under which label; says what needs
/// saying about restarts and repeats. Codes nobody subscribed to are
/// written under their own code and not de-duplicated.
fn dedupe<'a>(
    book: &'a mut Book,
    stats: &Stats,
    drops: &mut DropLog,
    p: &Push<'a>,
) -> Option<&'a str> {
    let Some(Entry { name, last, .. }) = book.get_mut(p.code) else {
        return Some(p.code);
    };
    written(last, stats, drops, name, p).then_some(name)
}

/// Whether a labelled code's push is to be written (remembering it); says
/// what needs saying about restarts and repeats.
fn written(last: &mut Last, stats: &Stats, drops: &mut DropLog, name: &str, p: &Push) -> bool {
    let Push {
        kind,
        code,
        seq,
        time,
    } = *p;
    match last.see(seq, time) {
        Seen::New => true,
        Seen::Restarted { first } => {
            Stats::add(&stats.seq_restarts, 1);
            if first {
                say(format!(
                    "{name}: the server's {kind} seq numbering restarted (seq {seq} with a later time than the last one written); writing it"
                ));
            }
            true
        }
        Seen::Repeat => {
            drops.count(&stats.dropped_repeat, 1, "repeat", |total| {
                format!(
                    "skipped a {kind} push already written (seq and time not after the last written for {code}); {total} skipped so far"
                )
            });
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(code: &str, name: &str, depth: bool) -> Label {
        Label {
            depth,
            code: code.into(),
            name: Arc::from(name),
        }
    }

    fn trade(code: &str, seq: u64, time: u64, price: &str) -> String {
        format!(
            r#"{{"cmd_id":22998,"data":{{"code":"{code}","seq":{seq},"tick_time":{time},"price":"{price}","volume":"1"}}}}"#
        )
    }

    fn run(lines: &mut Lines, frames: &[String]) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for f in frames {
            lines.frame(f, &mut out);
        }
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn frames_become_labelled_lines_and_repeats_are_skipped() {
        let stats = Arc::new(Stats::default());
        let mut lines = Lines::new(Arc::clone(&stats));
        lines.label(label("AAPL.US", "NASDAQ:AAPL", false));
        let got = run(
            &mut lines,
            &[
                trade("AAPL.US", 5, 1_000_000_000_000, "651.10"),
                trade("AAPL.US", 5, 1_000_000_000_000, "651.10"),
                trade("IBM.US", 1, 1_000_000_000_000, "1"),
                trade("AAPL.US", 1, 1_000_000_000_001, "652"),
            ],
        );
        let names: Vec<&str> = got.iter().map(|v| v["symbol"].as_str().unwrap()).collect();
        assert_eq!(names, ["NASDAQ:AAPL", "IBM.US", "NASDAQ:AAPL"]);
        assert_eq!(Stats::get(&stats.dropped_repeat), 1);
        assert_eq!(Stats::get(&stats.seq_restarts), 1);
    }

    #[test]
    fn a_later_label_applies_to_later_frames_only() {
        let mut lines = Lines::new(Arc::new(Stats::default()));
        lines.label(label("AAPL.US", "NASDAQ:AAPL", false));
        let first = run(&mut lines, &[trade("AAPL.US", 1, 1_000_000_000_000, "1")]);
        lines.label(label("AAPL.US", "AAPL.US", false));
        let second = run(&mut lines, &[trade("AAPL.US", 2, 1_000_000_000_001, "1")]);
        assert_eq!(first[0]["symbol"], "NASDAQ:AAPL");
        assert_eq!(second[0]["symbol"], "AAPL.US");
    }

    #[test]
    fn bad_pushes_and_non_pushes_are_counted_by_their_own_name() {
        let stats = Arc::new(Stats::default());
        let mut lines = Lines::new(Arc::clone(&stats));
        let got = run(
            &mut lines,
            &[
                trade("A.US", 1, 2, "0"),
                r#"{"cmd_id":22999,"data":{"code":"A.US","seq":1,"tick_time":2,"bids":[{"price":"0"},{"price":"1.5","volume":"2"}],"asks":[]}}"#.into(),
                r#"{"cmd_id":22005,"ret":200}"#.into(),
                "garbage".into(),
            ],
        );
        assert_eq!(got.len(), 1, "the depth book is kept without its bad level");
        assert_eq!(got[0]["bids"].as_array().unwrap().len(), 1);
        assert_eq!(Stats::get(&stats.dropped_invalid), 1);
        assert_eq!(Stats::get(&stats.bad_depth_levels), 1);
        assert_eq!(Stats::get(&stats.garbage_frames), 2);
    }
}
