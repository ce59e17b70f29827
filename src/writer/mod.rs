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

mod heal;
pub(crate) mod lines;

pub use heal::HealLink;

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::capture::memory::MemoryFile;
use crate::capture::parquet::{self, ParquetStream};
use crate::capture::write::Capture;
use crate::form::LineForm;
use crate::form::convert::Converter;
use crate::form::heal::Healed;
use crate::form::json::format_gap;
use crate::queue::Gap;
use crate::queue::{BATCH_BYTES, Frames, Item};
use crate::report::say;
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
    /// `--heal`: the healer and its thread's channels.
    pub heal: Option<HealLink>,
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
    let (converter, (heal_requests, mut answers, heal_file)) = heal::converter(
        config.form.text_form(),
        &stats,
        config.reopen,
        &config.resumed,
        config.heal,
    );
    let mut lines = Lines::new(Arc::clone(&stats));
    lines.resume(config.resumed);
    let mut memory = config.memory.map(MemoryFile::new);
    let mut sink = sink;
    let buf = prepare(
        &mut sink,
        &converter,
        config.header,
        config.parquet.as_ref(),
    );
    let mut w = Batcher {
        sink,
        buf,
        period: None,
        buffered: 0,
        stats,
        converter: (!converter.is_plain()).then_some(converter),
        parquet: config.parquet,
        heal_requests,
        heal_gone: false,
        heal_file,
        heal_kept: 0,
        heal_ticked: None,
        heal_behind: false,
    };
    let end = loop {
        let mut next = match heal::receive(&queue, &mut answers, w.wait()) {
            heal::Got::Item(item) => Some(item),
            heal::Got::Answer(a) => {
                w.heal_answer(a);
                None
            }
            heal::Got::Closed => {
                // Everything received is written: the bars still open too,
                // and those held for healing as they are.
                w.close_bars(true);
                w.heal_stop();
                if let Err(end) = w.write_out(true) {
                    return end;
                }
                w.keep_heal();
                if let Some(k) = &mut memory {
                    k.save(&lines.memory());
                }
                break WriterEnd::Drained;
            }
            heal::Got::Timeout => None,
        };
        while let Some(item) = next.take() {
            if let Err(end) = w.take(item, &mut lines, &spares, config.gaps) {
                return end;
            }
            next = queue.try_recv().ok();
        }
        // The queue is momentarily empty: get everything out now.
        w.close_bars(false);
        w.heal_tick();
        if let Err(end) = w.write_out(true) {
            return end;
        }
        w.keep_heal();
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

/// Set `sink` up for the form's lines: a CSV header for files or a stream,
/// Parquet files made live; the writer's buffer, its header row in it.
fn prepare<W: Write>(
    sink: &mut Sink<W>,
    converter: &Converter,
    header: bool,
    parquet: Option<&Vec<&'static str>>,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(WRITE_BYTES * 2);
    match sink {
        Sink::Files(c) if converter.is_csv() => c.set_csv(converter.header()),
        Sink::Files(c) => {
            if let Some(names) = parquet {
                c.make_parquet(names.clone());
            }
        }
        Sink::Stream(_) if header => buf.extend_from_slice(&converter.header()),
        Sink::Stream(_) | Sink::Parquet(_) => {}
    }
    buf
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
    /// `--heal`: where requests for K-lines go.
    heal_requests: Option<Sender<crate::bars::heal::Request>>,
    /// The fetching thread is gone (said once).
    heal_gone: bool,
    /// Where what is held is kept, and the healer's generation kept there.
    heal_file: Option<std::path::PathBuf>,
    heal_kept: u64,
    /// When the healer's clock was read last, and whether a reading was
    /// skipped since ([`heal::HEAL_TICK`]).
    heal_ticked: Option<Instant>,
    heal_behind: bool,
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
            Item::Gap(g) if gaps => self.gap(g),
            Item::Outage {
                connection,
                codes,
                from,
            } => {
                if let Some(c) = &mut self.converter {
                    c.outage(connection, codes, from);
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
        let heal = self.heal_behind.then_some(heal::HEAL_TICK);
        [sync, bar, heal].into_iter().flatten().min()
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

/// `--heal`: gaps held, requests sent, what is released written.
impl<W: Write> Batcher<W> {
    /// A gap: held by the healer, or written now.
    fn gap(&mut self, g: Gap) {
        match &mut self.converter {
            Some(c) if c.heals() => c.gap(g),
            _ => self.write_gap(&g),
        }
    }

    /// Write a gap line in each period it spans.
    fn write_gap(&mut self, g: &Gap) {
        let times = match &self.sink {
            Sink::Files(c) => c.gap_periods(g),
            Sink::Stream(_) | Sink::Parquet(_) => vec![g.from],
        };
        for t in times {
            let at = self.buf.len();
            format_gap(&mut self.buf, g);
            if self.convert(at) {
                self.placed(t.max(g.from), at);
            }
        }
    }

    /// What healing released, written.
    fn write_healed(&mut self, healed: Healed) {
        for (start, line) in healed.lines {
            let at = self.buf.len();
            self.buf.extend_from_slice(&line);
            self.placed(start, at);
        }
        for g in healed.gaps {
            self.write_gap(&g);
        }
    }

    /// Healing's clock: requests due go to the fetching thread, and what
    /// is released is written.
    fn heal_tick(&mut self) {
        let Some(c) = &mut self.converter else {
            return;
        };
        if !c.heals() {
            return;
        }
        let now = Instant::now();
        if (self.heal_ticked).is_some_and(|t| now.duration_since(t) < heal::HEAL_TICK) {
            self.heal_behind = true;
            return;
        }
        (self.heal_ticked, self.heal_behind) = (Some(now), false);
        let (requests, healed) = c.heal_tick(Stats::now_ms());
        if let Some(tx) = &self.heal_requests {
            for r in requests {
                if tx.send(r).is_err() && !self.heal_gone {
                    self.heal_gone = true;
                    say(
                        "heal: the thread that fetches K-lines is gone: held bars are written as built from trades once their wait ends",
                    );
                }
            }
        }
        self.write_healed(healed);
    }

    /// An answer of the fetching thread.
    fn heal_answer(&mut self, answer: crate::bars::heal::Answer) {
        if let Some(c) = &mut self.converter {
            let healed = c.healed(answer);
            self.write_healed(healed);
        }
    }

    /// What is held, kept beside the capture once it changed: after the
    /// lines before it were written, so a kill between the two heals
    /// again what the capture already holds, which a start leaves out.
    fn keep_heal(&mut self) {
        let (Some(path), Some(c)) = (&self.heal_file, &self.converter) else {
            return;
        };
        let Some((generation, kept)) = c.heal_kept(self.heal_kept) else {
            return;
        };
        match crate::capture::heal_file::save(path, &kept) {
            Ok(()) => self.heal_kept = generation,
            Err(e) => say(format!(
                "heal: cannot keep what is held in {}: {e}",
                path.display()
            )),
        }
    }

    /// The end: everything held goes out as it is.
    fn heal_stop(&mut self) {
        if let Some(c) = &mut self.converter
            && c.heals()
        {
            let healed = c.heal_stop();
            self.write_healed(healed);
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
