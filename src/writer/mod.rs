//! The writer thread: drains the queue ([`queue`]) to stdout as JSON lines.
//!
//! It turns frames into lines ([`lines`], formatted by [`format`]),
//! batches further while the queue is busy and flushes whenever it is
//! momentarily empty. A slow stdout only ever blocks the writer, never a
//! socket's thread.

pub mod dedupe;
pub mod format;
pub(crate) mod lines;
pub mod queue;
pub mod stats;

use std::io::{self, Write};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use lines::Lines;
use queue::{BATCH_BYTES, Frames, Item};
use stats::Stats;

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
                    if frames.capacity() >= BATCH_BYTES {
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
    use queue::Label;

    #[test]
    fn full_size_batches_come_back_empty_for_reuse() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (spare_tx, spare_rx) = crossbeam_channel::bounded(4);
        let frame = r#"{"cmd_id":22998,"data":{"code":"A.US","seq":1,"tick_time":1700000000000,"price":"1"}}"#;
        let mut big = Frames::default();
        big.reserve(BATCH_BYTES);
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
        assert!(back[0].capacity() >= BATCH_BYTES);
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
}
