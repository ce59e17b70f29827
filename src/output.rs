//! JSON lines: the output format, what travels to the writer thread, and
//! the writer thread itself.
//!
//! The connections' threads hand push frames over in [`Frames`] batches,
//! one per burst (a burst costs one queue operation; a quiet feed still gets
//! each tick out at once), with [`Label`]s in the same queue. The writer
//! turns frames into lines ([`crate::lines`]), batches further while the
//! queue is busy and flushes whenever it is momentarily empty. A slow
//! stdout only ever blocks the writer, never a socket's thread.

use std::io::{self, Write};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::lines::Lines;
use crate::protocol::{Depth, Side, TradeView};
use crate::stats::Stats;

/// Push frames on their way to the writer, their text kept as received.
#[derive(Debug, Default)]
pub struct Frames {
    text: String,
    ends: Vec<usize>,
}

impl Frames {
    /// Append one frame.
    pub fn push(&mut self, frame: &str) {
        self.text.push_str(frame);
        self.ends.push(self.text.len());
    }

    /// Empty it, keeping its room for the next batch.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// Bytes it has room for.
    pub fn capacity(&self) -> usize {
        self.text.capacity()
    }

    /// Make room for `bytes` more without growing step by step.
    pub fn reserve(&mut self, bytes: usize) {
        self.text.reserve(bytes);
    }

    /// Give back room a small batch does not use, so that what waits in
    /// the queue takes about what it holds.
    pub fn fit(&mut self) {
        if self.text.capacity() > 2 * self.text.len() {
            self.text.shrink_to_fit();
            self.ends.shrink_to_fit();
        }
    }

    /// How many frames.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No frame.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }

    /// The frames, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let f = &self.text[start..end];
            start = end;
            f
        })
    }
}

/// From now on, lines of `code` carry `name` as their `symbol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// A depth code (else a trade code).
    pub depth: bool,
    /// The AllTick code.
    pub code: crate::symbol::Code,
    /// The user's spelling.
    pub name: Arc<str>,
}

/// What travels to the writer, in order.
#[derive(Debug)]
pub enum Item {
    /// Push frames.
    Frames(Frames),
    /// Labels for codes.
    Labels(Vec<Label>),
}

/// How the writer stopped.
#[derive(Debug)]
pub enum WriterEnd {
    /// The queue closed and everything was written.
    Drained,
    /// stdout was closed by the reader (`| head`): stop quietly.
    Closed,
    /// Writing failed for another reason.
    Failed(io::Error),
}

/// Append `s` as a JSON string.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let plain = s
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f);
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // serde_json escapes correctly; writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Append an unsigned integer in decimal, without allocating.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_opt_number(out: &mut Vec<u8>, n: Option<&str>) {
    match n {
        Some(n) => out.extend_from_slice(n.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// An integer field of a line: digits to copy as they stand, or a value
/// to write.
#[derive(Clone, Copy, Debug)]
pub enum Int<'a> {
    /// Canonical decimal digits (no sign, no leading zero).
    Digits(&'a [u8]),
    /// A value.
    Value(u64),
}

/// A trade line after its `seq` key: every field whose text the line
/// carries as it stands.
#[derive(Clone, Copy, Debug)]
pub struct TradeTail<'a> {
    /// `seq`.
    pub seq: Int<'a>,
    /// `time`, in milliseconds.
    pub time: Int<'a>,
    /// `price`: valid JSON number text.
    pub price: &'a [u8],
    /// `volume`, likewise, if any.
    pub volume: Option<&'a [u8]>,
    /// `turnover`, likewise, if any.
    pub turnover: Option<&'a [u8]>,
    /// `side`.
    pub side: Option<Side>,
}

/// Append the start of a trade line, up to its `seq` value.
pub fn trade_head(out: &mut Vec<u8>, symbol: &str, code: &str) {
    out.extend_from_slice(b"{\"type\":\"trade\",\"symbol\":");
    push_json_str(out, symbol);
    out.extend_from_slice(b",\"code\":");
    push_json_str(out, code);
    out.extend_from_slice(b",\"seq\":");
}

/// Append the rest of a trade line, after [`trade_head`] (with the newline).
#[inline]
pub fn trade_tail(out: &mut Vec<u8>, t: &TradeTail) {
    let int = |out: &mut Vec<u8>, n: Int| match n {
        Int::Digits(d) => out.extend_from_slice(d),
        Int::Value(v) => push_u64(out, v),
    };
    int(out, t.seq);
    out.extend_from_slice(b",\"time\":");
    int(out, t.time);
    out.extend_from_slice(b",\"price\":");
    out.extend_from_slice(t.price);
    out.extend_from_slice(b",\"volume\":");
    out.extend_from_slice(t.volume.unwrap_or(b"null"));
    out.extend_from_slice(b",\"turnover\":");
    out.extend_from_slice(t.turnover.unwrap_or(b"null"));
    out.extend_from_slice(match t.side {
        Some(Side::Buy) => b",\"side\":\"buy\"}\n",
        Some(Side::Sell) => b",\"side\":\"sell\"}\n",
        None => b",\"side\":null}\n",
    });
}

/// Append one trade as a JSON line (with the newline).
pub fn format_trade(out: &mut Vec<u8>, symbol: &str, t: &TradeView) {
    trade_head(out, symbol, t.code);
    trade_tail(
        out,
        &TradeTail {
            seq: Int::Value(t.seq),
            time: Int::Value(t.time),
            price: t.price.as_bytes(),
            volume: t.volume.as_deref().map(str::as_bytes),
            turnover: t.turnover.as_deref().map(str::as_bytes),
            side: t.side,
        },
    );
}

/// Append one depth push as a JSON line: levels as `[price, volume]`
/// pairs, volume `null` where the feed sends none, an empty side as `[]`.
pub fn format_depth(out: &mut Vec<u8>, symbol: &str, d: &Depth) {
    out.extend_from_slice(b"{\"type\":\"depth\",\"symbol\":");
    push_json_str(out, symbol);
    out.extend_from_slice(b",\"code\":");
    push_json_str(out, &d.code);
    out.extend_from_slice(b",\"seq\":");
    push_u64(out, d.seq);
    out.extend_from_slice(b",\"time\":");
    push_u64(out, d.time);
    for (name, levels) in [
        (&b",\"bids\":["[..], &d.bids),
        (&b"],\"asks\":["[..], &d.asks),
    ] {
        out.extend_from_slice(name);
        for (i, (price, volume)) in levels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'[');
            out.extend_from_slice(price.as_bytes());
            out.push(b',');
            push_opt_number(out, volume.as_deref());
            out.push(b']');
        }
    }
    out.extend_from_slice(b"]}\n");
}

/// Bytes gathered before a write while the queue stays busy: half of
/// Linux's default pipe capacity (64 KiB), so a write still fits while the
/// consumer has not read the previous one. Writes of a whole pipe's worth
/// wait for it to empty; measured with `scripts/bench.sh`, 32 KiB writes
/// carried 15–20% more ticks per second into a pipe than 64 KiB ones.
const WRITE_BYTES: usize = 32 * 1024;

/// Drain `queue` into `out` until the queue is closed and empty. Batches
/// of full size go back through `spares` to be filled again: allocating
/// and freeing a batch each time made the allocator hand memory back to
/// the system and fault it in again.
pub fn run_writer<W: Write>(
    queue: Receiver<Item>,
    spares: Sender<Frames>,
    mut out: W,
    stats: Arc<Stats>,
) -> WriterEnd {
    let mut lines = Lines::new(Arc::clone(&stats));
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BYTES * 2);
    // Frames consumed into `buf`; counted as written once `buf` is handed
    // to stdout, so the readers' queue limit sees progress even mid-burst.
    let mut buffered: u64 = 0;
    let finish = |r: io::Result<()>| match r {
        Ok(()) => None,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Some(WriterEnd::Closed),
        Err(e) => Some(WriterEnd::Failed(e)),
    };
    loop {
        let mut next = match queue.recv() {
            Ok(item) => Some(item),
            Err(_) => return WriterEnd::Drained,
        };
        while let Some(item) = next.take() {
            match item {
                Item::Labels(labels) => labels.into_iter().for_each(|l| lines.label(l)),
                Item::Frames(mut frames) => {
                    for frame in frames.iter() {
                        lines.frame(frame, &mut buf);
                        buffered += 1;
                        if buf.len() >= WRITE_BYTES {
                            if let Some(end) = finish(out.write_all(&buf)) {
                                return end;
                            }
                            buf.clear();
                            stats.note_written(std::mem::take(&mut buffered));
                        }
                    }
                    if frames.capacity() >= crate::intake::BATCH_BYTES {
                        frames.clear();
                        let _ = spares.try_send(frames);
                    }
                }
            }
            next = queue.try_recv().ok();
        }
        // The queue is momentarily empty: get everything out now.
        if let Some(end) = finish(out.write_all(&buf).and_then(|_| out.flush())) {
            return end;
        }
        buf.clear();
        stats.note_written(std::mem::take(&mut buffered));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn view(side: Option<Side>, volume: Option<&str>) -> TradeView<'_> {
        TradeView {
            code: "AAPL.US",
            seq: 5,
            time: 1605509068000,
            price: Cow::Borrowed("651.10"),
            volume: volume.map(Cow::Borrowed),
            turnover: None,
            side,
        }
    }

    #[test]
    fn formats_exact_decimals_as_json_numbers() {
        let mut out = Vec::new();
        format_trade(
            &mut out,
            "NASDAQ:AAPL",
            &view(Some(Side::Sell), Some("300")),
        );
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line,
            "{\"type\":\"trade\",\"symbol\":\"NASDAQ:AAPL\",\"code\":\"AAPL.US\",\"seq\":5,\"time\":1605509068000,\"price\":651.10,\"volume\":300,\"turnover\":null,\"side\":\"sell\"}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["price"].to_string(), "651.1");
    }

    #[test]
    fn escapes_odd_codes_and_writes_extreme_integers() {
        let mut t = view(None, None);
        t.code = "A\"B\\\n";
        t.seq = u64::MAX;
        t.time = 0;
        let mut out = Vec::new();
        format_trade(&mut out, "x", &t);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["code"], "A\"B\\\n");
        assert_eq!(v["seq"], u64::MAX);
        assert_eq!(v["time"], 0);
        assert_eq!(v["side"], serde_json::Value::Null);
        assert_eq!(v["volume"], serde_json::Value::Null);
    }

    #[test]
    fn formats_depth_levels_exactly() {
        let d = Depth {
            code: "700.HK".into(),
            seq: 7,
            time: 8,
            bids: vec![
                ("320.40".into(), Some("1200".into())),
                ("320.20".into(), None),
            ],
            asks: vec![],
            bad_levels: 0,
        };
        let mut out = Vec::new();
        format_depth(&mut out, "HKEX:700", &d);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"type\":\"depth\",\"symbol\":\"HKEX:700\",\"code\":\"700.HK\",\"seq\":7,\"time\":8,\"bids\":[[320.40,1200],[320.20,null]],\"asks\":[]}\n"
        );
    }

    #[test]
    fn full_size_batches_come_back_empty_for_reuse() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (spare_tx, spare_rx) = crossbeam_channel::bounded(4);
        let frame = r#"{"cmd_id":22998,"data":{"code":"A.US","seq":1,"tick_time":1700000000000,"price":"1"}}"#;
        let mut big = Frames::default();
        big.reserve(crate::intake::BATCH_BYTES);
        big.push(frame);
        let mut small = Frames::default();
        small.push(frame);
        tx.send(Item::Frames(big)).unwrap();
        tx.send(Item::Frames(small)).unwrap();
        drop(tx);
        let mut out = Vec::new();
        run_writer(rx, spare_tx, &mut out, Arc::new(Stats::default()));
        let back: Vec<Frames> = spare_rx.try_iter().collect();
        assert_eq!(back.len(), 1, "only the full-size batch is kept");
        assert!(back[0].is_empty());
        assert!(back[0].capacity() >= crate::intake::BATCH_BYTES);
    }

    #[test]
    fn writer_drains_labels_frames_in_order_and_counts() {
        let (tx, rx) = crossbeam_channel::bounded(16);
        let frame = |seq: u64| {
            format!(
                r#"{{"cmd_id":22998,"data":{{"code":"AAPL.US","seq":{seq},"tick_time":1700000000000,"price":"1.50","volume":"1"}}}}"#
            )
        };
        let mut f = Frames::default();
        f.push(&frame(1));
        tx.send(Item::Frames(f)).unwrap();
        tx.send(Item::Labels(vec![Label {
            depth: false,
            code: "AAPL.US".into(),
            name: Arc::from("NASDAQ:AAPL"),
        }]))
        .unwrap();
        for seq in 2..=10 {
            let mut f = Frames::default();
            f.push(&frame(seq));
            f.push(&frame(seq)); // a repeat: consumed, not written
            tx.send(Item::Frames(f)).unwrap();
        }
        drop(tx);
        let stats = Arc::new(Stats::default());
        let mut out = Vec::new();
        assert!(matches!(
            run_writer(rx, crossbeam_channel::bounded(1).0, &mut out, stats.clone()),
            WriterEnd::Drained
        ));
        let text = String::from_utf8(out).unwrap();
        let symbols: Vec<&str> = text
            .lines()
            .map(|l| {
                if l.contains("NASDAQ:AAPL") {
                    "NASDAQ:AAPL"
                } else {
                    "AAPL.US"
                }
            })
            .collect();
        assert_eq!(symbols.len(), 10);
        assert_eq!(symbols[0], "AAPL.US", "labelled after the first frame");
        assert!(symbols[1..].iter().all(|s| *s == "NASDAQ:AAPL"));
        assert!(text.contains("\"price\":1.50"));
        assert_eq!(Stats::get(&stats.written), 19, "every frame consumed");
        assert_eq!(Stats::get(&stats.dropped_repeat), 9);
    }

    #[test]
    fn frames_keep_their_text_and_order() {
        let mut f = Frames::default();
        assert!(f.is_empty());
        f.push("{\"a\":1}");
        f.push("é");
        f.push("");
        assert_eq!(f.len(), 3);
        assert_eq!(f.iter().collect::<Vec<_>>(), ["{\"a\":1}", "é", ""]);
        assert_eq!(f.bytes(), 9);
    }
}
