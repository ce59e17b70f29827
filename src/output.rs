//! The writer thread: drains the tick queue to stdout as JSON lines.
//!
//! It batches while the queue is busy and flushes whenever the queue is
//! momentarily empty, so a quiet feed has low latency and a burst costs few
//! system calls. A slow stdout only ever blocks this thread, never the
//! socket's.

use std::io::{self, Write};
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::protocol::{Side, Trade};
use crate::stats::Stats;

/// One tick on its way to stdout.
#[derive(Clone, Debug)]
pub struct OutTick {
    /// The user's spelling of the symbol.
    pub symbol: Arc<str>,
    /// The validated trade.
    pub trade: Trade,
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

fn push_opt_number(out: &mut Vec<u8>, n: Option<&str>) {
    match n {
        Some(n) => out.extend_from_slice(n.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// Append one trade as a JSON line (with the newline).
pub fn format_trade(out: &mut Vec<u8>, tick: &OutTick) {
    let t = &tick.trade;
    out.extend_from_slice(b"{\"type\":\"trade\",\"symbol\":");
    push_json_str(out, &tick.symbol);
    out.extend_from_slice(b",\"code\":");
    push_json_str(out, &t.code);
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(t.seq.to_string().as_bytes());
    out.extend_from_slice(b",\"time\":");
    out.extend_from_slice(t.time.to_string().as_bytes());
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

/// Most bytes buffered before a write, even while the queue stays busy.
const BATCH_BYTES: usize = 64 * 1024;

/// Drain `queue` into `out` until the queue is closed and empty.
pub fn run_writer<W: Write>(queue: Receiver<OutTick>, mut out: W, stats: Arc<Stats>) -> WriterEnd {
    let mut buf: Vec<u8> = Vec::with_capacity(BATCH_BYTES + 512);
    let mut pending: u64 = 0;
    let finish = |r: io::Result<()>| match r {
        Ok(()) => None,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Some(WriterEnd::Closed),
        Err(e) => Some(WriterEnd::Failed(e)),
    };
    loop {
        let tick = match queue.recv() {
            Ok(t) => t,
            Err(_) => return WriterEnd::Drained,
        };
        format_trade(&mut buf, &tick);
        pending += 1;
        while let Ok(t) = queue.try_recv() {
            format_trade(&mut buf, &t);
            pending += 1;
            if buf.len() >= BATCH_BYTES {
                if let Some(end) = finish(out.write_all(&buf)) {
                    return end;
                }
                buf.clear();
            }
        }
        if let Some(end) = finish(out.write_all(&buf).and_then(|_| out.flush())) {
            return end;
        }
        buf.clear();
        Stats::add(&stats.written, pending);
        pending = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(side: Option<Side>, volume: Option<&str>) -> OutTick {
        OutTick {
            symbol: Arc::from("NASDAQ:AAPL"),
            trade: Trade {
                code: "AAPL.US".into(),
                seq: 5,
                time: 1605509068000,
                price: "651.10".into(),
                volume: volume.map(String::from),
                turnover: None,
                side,
            },
        }
    }

    #[test]
    fn formats_exact_decimals_as_json_numbers() {
        let mut out = Vec::new();
        format_trade(&mut out, &tick(Some(Side::Sell), Some("300")));
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line,
            "{\"type\":\"trade\",\"symbol\":\"NASDAQ:AAPL\",\"code\":\"AAPL.US\",\"seq\":5,\"time\":1605509068000,\"price\":651.10,\"volume\":300,\"turnover\":null,\"side\":\"sell\"}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["price"].to_string(), "651.1");
    }

    #[test]
    fn escapes_odd_codes() {
        let mut t = tick(None, None);
        t.trade.code = "A\"B\\\n".into();
        let mut out = Vec::new();
        format_trade(&mut out, &t);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["code"], "A\"B\\\n");
        assert_eq!(v["side"], serde_json::Value::Null);
        assert_eq!(v["volume"], serde_json::Value::Null);
    }

    #[test]
    fn writer_drains_and_counts() {
        let (tx, rx) = crossbeam_channel::bounded(16);
        for _ in 0..10 {
            tx.send(tick(None, Some("1"))).unwrap();
        }
        drop(tx);
        let stats = Arc::new(Stats::default());
        let mut out = Vec::new();
        assert!(matches!(
            run_writer(rx, &mut out, stats.clone()),
            WriterEnd::Drained
        ));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 10);
        assert_eq!(Stats::get(&stats.written), 10);
    }
}
