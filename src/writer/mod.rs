//! The writer thread: drains the queue ([`crate::queue`]), turns frames
//! into lines ([`lines`]: decoded, checked, de-duplicated across every
//! connection by [`crate::wire::repeat`], written by [`crate::form::json`]),
//! into the form `--bars`, `--fields` and `--format` ask for
//! ([`Converter`]), and hands them on:
//! to stdout, or to a capture ([`crate::capture::write`]), which owns the
//! files. The writer itself opens no file.
//!
//! It batches further while the queue is busy and writes whenever it is
//! momentarily empty. A slow stdout or disk only ever blocks the writer,
//! never a socket's thread. A capture's tail read back on start
//! ([`crate::capture::resume`]) seeds the de-duplication memory.

pub(crate) mod lines;

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::capture::memory::MemoryFile;
use crate::capture::parquet::{self, ParquetStream};
use crate::capture::write::Capture;
use crate::form::LineForm;
use crate::form::convert::{Clock, Converter};
use crate::form::json::format_gap;
use crate::queue::{BATCH_BYTES, Frames, Item};
use crate::stats::Stats;
use crate::wire::repeat::Last;
use lines::Lines;

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

/// Where lines go: a stream (stdout) or the files of `--output`.
// One per run: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Sink<W: Write> {
    /// One stream, as written.
    Stream(W),
    /// Files named by each line's own time.
    Files(Capture),
    /// One Parquet file on stdout, made from the lines.
    Parquet(Box<ParquetStream<io::BufWriter<io::Stdout>>>),
}

/// What the writer is to do besides writing lines.
#[derive(Debug, Default)]
pub struct WriterConfig {
    /// Write the gap lines that reach it (`--gaps`).
    pub gaps: bool,
    /// A capture's tail, read back: each code's memory starts from it.
    pub resumed: HashMap<(bool, String), Last>,
    /// What the lines are made of (`--bars`, `--fields`, `--format`).
    pub form: LineForm,
    /// A stream starts with the form's header row (CSV): false when it
    /// appends to lines written before.
    pub header: bool,
    /// Where to keep what was written of each code, for a capture whose
    /// lines do not say it ([`MemoryFile`]).
    pub memory: Option<std::path::PathBuf>,
    /// Bars written at the last stop, to go on with
    /// ([`crate::capture::takeback`]).
    pub reopen: Vec<crate::bars::Bar>,
    /// `--format parquet` with files: the staging files' Parquet files are
    /// made, of these columns, as their periods end and at the end.
    pub parquet: Option<Vec<&'static str>>,
}

/// Drain `queue` into `sink` until the queue is closed and empty, with
/// `config`. Batches of full size go back through `spares` to be filled
/// again: allocating and freeing a batch each time made the allocator hand
/// memory back to the system and fault it in again.
pub fn run_sink<W: Write>(
    queue: Receiver<Item>,
    spares: Sender<Frames>,
    sink: Sink<W>,
    stats: Arc<Stats>,
    config: WriterConfig,
) -> WriterEnd {
    let mut lines = Lines::new(Arc::clone(&stats));
    lines.resume(config.resumed);
    let mut converter = Converter::new(config.form.text_form(), Clock::Wall, Arc::clone(&stats));
    converter.reopen(config.reopen);
    let mut memory = config.memory.map(MemoryFile::new);
    let mut sink = sink;
    let mut buf = Vec::with_capacity(WRITE_BYTES * 2);
    match &mut sink {
        Sink::Files(c) if converter.is_csv() => c.set_csv(converter.header()),
        Sink::Files(c) => {
            if let Some(names) = &config.parquet {
                c.make_parquet(names.clone());
            }
        }
        Sink::Stream(_) if config.header => buf.extend_from_slice(&converter.header()),
        Sink::Stream(_) | Sink::Parquet(_) => {}
    }
    let mut w = Batcher {
        sink,
        buf,
        period: None,
        buffered: 0,
        stats,
        converter: (!converter.is_plain()).then_some(converter),
        parquet: config.parquet,
    };
    let end = loop {
        let first = match w.wait() {
            None => queue.recv().map_err(|_| true),
            Some(d) => queue.recv_timeout(d).map_err(|e| e.is_disconnected()),
        };
        let mut next = match first {
            Ok(item) => Some(item),
            Err(true) => {
                // Everything received is written: the bars still open too.
                w.close_bars(true);
                if let Err(end) = w.write_out(true) {
                    return end;
                }
                if let Some(k) = &mut memory {
                    k.save(&lines.memory());
                }
                break WriterEnd::Drained;
            }
            Err(false) => None,
        };
        while let Some(item) = next.take() {
            if let Err(end) = w.take(item, &mut lines, &spares, config.gaps) {
                return end;
            }
            next = queue.try_recv().ok();
        }
        // The queue is momentarily empty: get everything out now.
        w.close_bars(false);
        if let Err(end) = w.write_out(true) {
            return end;
        }
        w.tick();
        if let Some(k) = &mut memory
            && k.due(Instant::now())
        {
            k.save(&lines.memory());
        }
    };
    if let Sink::Files(c) = &mut w.sink {
        c.sync_all();
    }
    match w.finish() {
        Ok(()) => end,
        Err(e) => WriterEnd::Failed(e),
    }
}

/// The writer's buffer and where it goes.
struct Batcher<W: Write> {
    sink: Sink<W>,
    buf: Vec<u8>,
    /// With files: the period of the lines in `buf`.
    period: Option<u64>,
    /// Frames consumed into `buf`; counted as written once `buf` is handed
    /// on, so the readers' queue limit sees progress even mid-burst.
    buffered: u64,
    stats: Arc<Stats>,
    /// What lines become, unless they go out as they are.
    converter: Option<Converter>,
    /// The Parquet files' columns, when the files are their staging files.
    parquet: Option<Vec<&'static str>>,
}

impl<W: Write> Batcher<W> {
    /// Turn one item into lines.
    fn take(
        &mut self,
        item: Item,
        lines: &mut Lines,
        spares: &Sender<Frames>,
        gaps: bool,
    ) -> Result<(), WriterEnd> {
        match item {
            Item::Labels(labels) => labels.into_iter().for_each(|l| lines.label(l)),
            Item::Gap(g) if gaps => {
                let times = match &self.sink {
                    Sink::Files(c) => c.gap_periods(&g),
                    Sink::Stream(_) | Sink::Parquet(_) => vec![g.from],
                };
                for t in times {
                    let at = self.buf.len();
                    format_gap(&mut self.buf, &g);
                    if self.convert(at) {
                        self.placed(t.max(g.from), at);
                    }
                }
            }
            Item::Gap(_) => {}
            Item::Frames(mut frames) => {
                for frame in frames.iter() {
                    let at = self.buf.len();
                    if let Some(time) = lines.frame(frame, &mut self.buf)
                        && self.convert(at)
                    {
                        self.placed(time, at);
                    }
                    self.buffered += 1;
                    if self.buf.len() >= WRITE_BYTES {
                        self.write_out(false)?;
                    }
                }
                self.close_bars(false);
                if frames.capacity() >= BATCH_BYTES {
                    frames.clear();
                    let _ = spares.try_send(frames);
                }
            }
        }
        Ok(())
    }

    /// The line appended at `at`, made into the form's: false when no
    /// line is left.
    fn convert(&mut self, at: usize) -> bool {
        match &mut self.converter {
            Some(s) => s.convert_in_place(&mut self.buf, at) > 0,
            None => true,
        }
    }

    /// A line of `time` was appended at `at`: with files, the lines
    /// before it go to their file first when it is of another period.
    fn placed(&mut self, time: u64, at: usize) {
        let Sink::Files(c) = &mut self.sink else {
            return;
        };
        let period = c.period_start(time);
        if let Some(p) = self.period
            && p != period
            && at > 0
        {
            c.write(p, &self.buf[..at]);
            self.buf.drain(..at);
        }
        self.period = Some(period);
    }

    /// Hand the buffer on (and flush a stream when `flush`).
    fn write_out(&mut self, flush: bool) -> Result<(), WriterEnd> {
        match &mut self.sink {
            Sink::Stream(out) => {
                let mut r = out.write_all(&self.buf);
                if flush {
                    r = r.and_then(|()| out.flush());
                }
                match r {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                        return Err(WriterEnd::Closed);
                    }
                    Err(e) => return Err(WriterEnd::Failed(e)),
                }
            }
            Sink::Files(c) => {
                if let Some(p) = self.period {
                    c.write(p, &self.buf);
                }
            }
            Sink::Parquet(p) => match p.lines(&self.buf) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(WriterEnd::Closed),
                Err(e) => return Err(WriterEnd::Failed(e)),
            },
        }
        self.buf.clear();
        self.stats.note_written(std::mem::take(&mut self.buffered));
        Ok(())
    }

    /// The bars due by the wall clock (`all`: every open one) go after
    /// the lines before them, each to the file of its start.
    fn close_bars(&mut self, all: bool) {
        let Some(s) = &mut self.converter else {
            return;
        };
        let lines = if all {
            s.close_all()
        } else {
            s.close_wall(Stats::now_ms())
        };
        for (start, line) in lines {
            let at = self.buf.len();
            self.buf.extend_from_slice(&line);
            self.placed(start, at);
        }
    }

    /// How long the queue may be waited on before a sync or a bar is due.
    fn wait(&self) -> Option<Duration> {
        let sync = match &self.sink {
            Sink::Files(c) => c.wait(Instant::now()),
            Sink::Stream(_) | Sink::Parquet(_) => None,
        };
        let bar = self
            .converter
            .as_ref()
            .and_then(Converter::next_due)
            .map(|due| Duration::from_millis(due.saturating_sub(Stats::now_ms())));
        match (sync, bar) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The end: the Parquet file on stdout finished, or the Parquet files
    /// of the periods written to finished (those that could not be made
    /// as their lines came made from their staging files).
    fn finish(self) -> io::Result<()> {
        match self.sink {
            Sink::Parquet(p) => p.finish()?.flush(),
            Sink::Files(mut c) => {
                c.finish_parquet();
                if let Some(names) = &self.parquet {
                    for staging in c.written().filter(|s| !parquet::up_to_date(s)) {
                        parquet::report(staging, parquet::finalize(staging, names));
                    }
                }
                Ok(())
            }
            Sink::Stream(_) => Ok(()),
        }
    }

    fn tick(&mut self) {
        if let Sink::Files(c) = &mut self.sink {
            c.tick(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Label;

    /// Drain `queue` into `out`, as plain lines.
    fn run_writer<W: Write>(
        queue: Receiver<Item>,
        spares: Sender<Frames>,
        out: W,
        stats: Arc<Stats>,
    ) -> WriterEnd {
        run_sink(
            queue,
            spares,
            Sink::Stream(out),
            stats,
            WriterConfig::default(),
        )
    }

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
