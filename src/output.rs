//! JSON lines: the output format, the batches that carry them to the writer
//! thread, and the writer thread itself.
//!
//! The session formats each trade straight from the frame's text into a
//! [`Batch`] (no intermediate strings) and hands the batch over when the
//! socket has nothing more to read, so a burst costs one queue operation and
//! a quiet feed still gets each tick out at once. The writer batches further
//! while the queue is busy and flushes whenever it is momentarily empty. A
//! slow stdout only ever blocks the writer, never the socket's thread.

use std::io::{self, Write};
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::protocol::{Depth, Side, TradeView};
use crate::stats::Stats;

/// Formatted lines on their way to stdout.
#[derive(Debug, Default)]
pub struct Batch {
    /// Complete JSON lines, each ending in `\n`.
    pub bytes: Vec<u8>,
    /// How many lines (ticks) `bytes` holds.
    pub ticks: u64,
}

impl Batch {
    /// Append one trade line.
    pub fn push_trade(&mut self, symbol: &str, t: &TradeView) {
        format_trade(&mut self.bytes, symbol, t);
        self.ticks += 1;
    }

    /// Append one depth line.
    pub fn push_depth(&mut self, symbol: &str, d: &Depth) {
        format_depth(&mut self.bytes, symbol, d);
        self.ticks += 1;
    }

    /// True when it holds no line.
    pub fn is_empty(&self) -> bool {
        self.ticks == 0
    }
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

/// Append one trade as a JSON line (with the newline).
pub fn format_trade(out: &mut Vec<u8>, symbol: &str, t: &TradeView) {
    out.extend_from_slice(b"{\"type\":\"trade\",\"symbol\":");
    push_json_str(out, symbol);
    out.extend_from_slice(b",\"code\":");
    push_json_str(out, t.code);
    out.extend_from_slice(b",\"seq\":");
    push_u64(out, t.seq);
    out.extend_from_slice(b",\"time\":");
    push_u64(out, t.time);
    out.extend_from_slice(b",\"price\":");
    out.extend_from_slice(t.price.as_bytes());
    out.extend_from_slice(b",\"volume\":");
    push_opt_number(out, t.volume.as_deref());
    out.extend_from_slice(b",\"turnover\":");
    push_opt_number(out, t.turnover.as_deref());
    out.extend_from_slice(match t.side {
        Some(Side::Buy) => b",\"side\":\"buy\"}\n",
        Some(Side::Sell) => b",\"side\":\"sell\"}\n",
        None => b",\"side\":null}\n",
    });
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

/// Bytes gathered before a write while the queue stays busy.
const WRITE_BYTES: usize = 64 * 1024;

/// Drain `queue` into `out` until the queue is closed and empty.
pub fn run_writer<W: Write>(queue: Receiver<Batch>, mut out: W, stats: Arc<Stats>) -> WriterEnd {
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BYTES * 2);
    // Ticks in `buf`; counted as written once they are handed to stdout,
    // so the session's queue limit sees progress even mid-burst.
    let mut buffered: u64 = 0;
    let finish = |r: io::Result<()>| match r {
        Ok(()) => None,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Some(WriterEnd::Closed),
        Err(e) => Some(WriterEnd::Failed(e)),
    };
    loop {
        let batch = match queue.recv() {
            Ok(b) => b,
            Err(_) => return WriterEnd::Drained,
        };
        let mut next = Some(batch);
        while let Some(batch) = next.take() {
            if buf.is_empty() && batch.bytes.len() >= WRITE_BYTES {
                // Large enough on its own: no copy.
                if let Some(end) = finish(out.write_all(&batch.bytes)) {
                    return end;
                }
                stats.note_written(batch.ticks);
            } else {
                buf.extend_from_slice(&batch.bytes);
                buffered += batch.ticks;
                if buf.len() >= WRITE_BYTES {
                    if let Some(end) = finish(out.write_all(&buf)) {
                        return end;
                    }
                    buf.clear();
                    stats.note_written(buffered);
                    buffered = 0;
                }
            }
            next = queue.try_recv().ok();
        }
        // The queue is momentarily empty: get everything out now.
        if let Some(end) = finish(out.write_all(&buf).and_then(|_| out.flush())) {
            return end;
        }
        buf.clear();
        stats.note_written(buffered);
        buffered = 0;
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
    fn writer_drains_and_counts() {
        let (tx, rx) = crossbeam_channel::bounded(16);
        for _ in 0..10 {
            let mut b = Batch::default();
            b.push_trade("S", &view(None, Some("1")));
            b.push_trade("S", &view(None, Some("2")));
            tx.send(b).unwrap();
        }
        drop(tx);
        let stats = Arc::new(Stats::default());
        let mut out = Vec::new();
        assert!(matches!(
            run_writer(rx, &mut out, stats.clone()),
            WriterEnd::Drained
        ));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 20);
        assert_eq!(Stats::get(&stats.written), 20);
    }
}
