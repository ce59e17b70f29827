//! `alltick-stream replay`: a capture's lines to stdout again, byte for
//! byte, in time order, at the recorded pace or faster.
//!
//! The files are merged by time as they are read
//! ([`crate::capture::read`]); the pace
//! and the `--from`/`--to` times are pure ([`pace`]). The symbols after the
//! files, and `+SYM` / `-SYM` on stdin while it runs, choose what is
//! replayed, with the live grammar (`NASDAQ:AAPL` is `AAPL.US`).

pub mod pace;

use std::collections::{HashSet, VecDeque};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::capture::parquet::{self, ParquetStream};
use crate::capture::pattern::Pattern;
use crate::capture::read::{Line, Merge, Source};
use crate::capture::resume;
use crate::capture::write::Capture;
use crate::form::LineForm;
use crate::form::convert::{Clock, Converter};
use crate::form::line::LineType;
use crate::report::{count, say};
use crate::router::command::Command;
use crate::wire::symbol::Symbol;
use pace::{Pace, Speed};

/// What `replay` is asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayOptions {
    /// The captures, plain or `.gz`.
    pub files: Vec<PathBuf>,
    /// Only these codes (none: every code).
    pub symbols: Vec<Symbol>,
    /// The pace.
    pub speed: Speed,
    /// Lines from this time on (ms).
    pub from: Option<u64>,
    /// Lines up to this time (ms), inclusive.
    pub to: Option<u64>,
    /// `--bars`, `--fields`, `--format`: what the lines are made of.
    pub form: LineForm,
    /// `--output`: the files lines go to (for Parquet, their staging
    /// files), else stdout.
    pub output: Option<Pattern>,
}

/// Lines within this much of `--to` past it are still looked at: a file's
/// lines are in arrival order, a little off time order across codes.
pub const TO_SLACK_MS: u64 = 60_000;

/// Bytes gathered before a write.
const WRITE_BYTES: usize = 64 * 1024;

/// The longest single sleep while waiting for a line's time: stdin and a
/// stop are looked at in between.
const NAP: Duration = Duration::from_millis(50);

/// Which codes are replayed: the symbols given, changed by stdin.
#[derive(Debug, Default)]
pub struct Filter {
    /// No symbols were given: every code, but those removed.
    all: bool,
    wanted: HashSet<String>,
    removed: HashSet<String>,
}

impl Filter {
    /// Every code when `symbols` is empty, else only theirs.
    pub fn new(symbols: &[Symbol]) -> Filter {
        Filter {
            all: symbols.is_empty(),
            wanted: symbols.iter().map(|s| s.code.to_string()).collect(),
            removed: HashSet::new(),
        }
    }

    /// Apply a stdin command.
    pub fn apply(&mut self, command: &Command) {
        match command {
            Command::Add(symbols) => {
                for s in symbols {
                    self.removed.remove(&*s.code);
                    if !self.all {
                        self.wanted.insert(s.code.to_string());
                    }
                }
            }
            Command::Remove(symbols) => {
                for s in symbols {
                    self.wanted.remove(&*s.code);
                    if self.all {
                        self.removed.insert(s.code.to_string());
                    }
                }
            }
            Command::Query => {}
        }
    }

    /// Whether lines of `code` are replayed.
    pub fn keeps(&self, code: &str) -> bool {
        if self.all {
            !self.removed.contains(code)
        } else {
            self.wanted.contains(code)
        }
    }

    /// Whether `line` is replayed: a gap when any code it names is (or it
    /// names none).
    pub fn keeps_line(&self, line: &Line) -> bool {
        if self.all && self.removed.is_empty() {
            return true;
        }
        match line.kind {
            LineType::Gap => {
                let codes = line.gap_codes();
                codes.is_empty() || codes.iter().any(|c| self.keeps(c))
            }
            _ => line.code().is_some_and(|c| self.keeps(c)),
        }
    }

    /// For `?`: what is replayed.
    pub fn describe(&self) -> String {
        let mut w: Vec<&String> = self.wanted.iter().collect();
        w.sort();
        let mut r: Vec<&String> = self.removed.iter().collect();
        r.sort();
        if self.all {
            format!(
                "replaying every code{}",
                if r.is_empty() {
                    String::new()
                } else {
                    format!(" but {r:?}")
                }
            )
        } else {
            format!("replaying {w:?}")
        }
    }
}

/// How a replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayEnd {
    /// Every line written (or a stop, or stdout closed).
    Done,
    /// A file could not be opened.
    BadFile,
    /// stdout failed.
    Failed,
}

/// Why a replay ended before its input did.
#[derive(Debug)]
enum ReplayError {
    /// A capture file could not be opened.
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// stdout refused the lines.
    Stdout(io::Error),
}

impl From<io::Error> for ReplayError {
    fn from(e: io::Error) -> ReplayError {
        ReplayError::Stdout(e)
    }
}

/// Replay until the input ends, a stop is asked for, or stdout closes.
pub fn run(
    opts: ReplayOptions,
    stop: Arc<AtomicBool>,
    commands: Receiver<(u64, Command)>,
) -> ReplayEnd {
    match replay(&opts, &stop, &commands) {
        Ok(()) => ReplayEnd::Done,
        Err(ReplayError::Open { path, error }) => {
            say(format!("cannot read {}: {error}", path.display()));
            ReplayEnd::BadFile
        }
        // stdout was closed (`| head`): stop quietly.
        Err(ReplayError::Stdout(e)) if e.kind() == io::ErrorKind::BrokenPipe => ReplayEnd::Done,
        Err(ReplayError::Stdout(e)) => {
            say(format!("cannot write to stdout: {e}"));
            ReplayEnd::Failed
        }
    }
}

/// Open the files, write their lines, and say what was written.
fn replay(
    opts: &ReplayOptions,
    stop: &AtomicBool,
    commands: &Receiver<(u64, Command)>,
) -> Result<(), ReplayError> {
    let merge = open(&opts.files)?;
    let mut r = Replay::new(opts, merge, stop, commands)?;
    while let Some(line) = r.merge.next() {
        if r.take(line)? == Flow::Stop {
            break;
        }
    }
    r.finish()?;
    let left_out = r.converter.map(|c| c.left_out()).unwrap_or_default();
    summary(r.written, opts.files.len(), r.merge.skipped(), &left_out);
    Ok(())
}

/// Whether to go on after a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

/// A replay under way: the merged input, what is replayed, its pace, and
/// the lines gathered for stdout.
struct Replay<'a> {
    opts: &'a ReplayOptions,
    merge: Merge,
    filter: Filter,
    pace: Pace,
    out: Out,
    buf: Vec<u8>,
    /// `None` when lines go out as they are.
    converter: Option<Converter>,
    written: u64,
    recent_gaps: VecDeque<Vec<u8>>,
    /// Lines read, to look at stdin every so many.
    read: u32,
    stop: &'a AtomicBool,
    commands: &'a Receiver<(u64, Command)>,
}

impl<'a> Replay<'a> {
    fn new(
        opts: &'a ReplayOptions,
        merge: Merge,
        stop: &'a AtomicBool,
        commands: &'a Receiver<(u64, Command)>,
    ) -> Result<Replay<'a>, ReplayError> {
        let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BYTES * 2);
        let converter = Converter::new(opts.form.text_form(), Clock::Stream, Arc::default());
        if !resume::stdout_has_lines() {
            buf.extend_from_slice(&converter.header());
        }
        Ok(Replay {
            opts,
            merge,
            filter: Filter::new(&opts.symbols),
            pace: Pace::new(opts.speed),
            out: Out::new(opts)?,
            buf,
            converter: (!converter.is_plain()).then_some(converter),
            written: 0,
            recent_gaps: VecDeque::new(),
            read: 0,
            stop,
            commands,
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// One line of the input: left out, waited for, written.
    fn take(&mut self, line: Line) -> Result<Flow, ReplayError> {
        self.read = self.read.wrapping_add(1);
        if self.read.is_multiple_of(256) {
            take_commands(self.commands, &mut self.filter);
        }
        if self.stopped() {
            return Ok(Flow::Stop);
        }
        let (from, to) = (self.opts.from, self.opts.to);
        let in_range = from.is_none_or(|f| line.time >= f) && to.is_none_or(|t| line.time <= t);
        if !in_range || !self.filter.keeps_line(&line) {
            let past = to.is_some_and(|t| line.time > t.saturating_add(TO_SLACK_MS));
            self.merge.recycle(line);
            return Ok(if past { Flow::Stop } else { Flow::Go });
        }
        if !self.wait_for(&line)? {
            return Ok(Flow::Stop);
        }
        // Stdin may have changed the filter while the line waited.
        if !self.filter.keeps_line(&line) || !first_copy(&mut self.recent_gaps, &line) {
            self.merge.recycle(line);
            return Ok(Flow::Go);
        }
        match &mut self.converter {
            Some(c) => self.written += c.convert(&line.bytes, &mut self.buf) as u64,
            None => {
                self.buf.extend_from_slice(&line.bytes);
                self.written += 1;
            }
        }
        self.merge.recycle(line);
        if self.buf.len() >= WRITE_BYTES {
            self.out.write(&self.buf)?;
            self.buf.clear();
        }
        Ok(Flow::Go)
    }

    /// Wait until `line` is due at the pace, with what is gathered written
    /// first; stdin is applied meanwhile. False when a stop came.
    fn wait_for(&mut self, line: &Line) -> Result<bool, ReplayError> {
        // The clock is not read for `--speed max`: it costs per line.
        if self.pace.is_max() {
            return Ok(true);
        }
        let mut wait = self.pace.wait(line.time, Instant::now());
        if wait.is_zero() {
            return Ok(true);
        }
        self.out.write(&self.buf)?;
        self.out.flush()?;
        self.buf.clear();
        while !wait.is_zero() && !self.stopped() {
            std::thread::sleep(wait.min(NAP));
            take_commands(self.commands, &mut self.filter);
            wait = self.pace.wait(line.time, Instant::now());
        }
        Ok(!self.stopped())
    }

    /// The bars still open, and everything gathered, to stdout.
    fn finish(&mut self) -> Result<(), ReplayError> {
        if let Some(c) = &mut self.converter {
            for (_, line) in c.close_all() {
                self.buf.extend_from_slice(&line);
                self.written += 1;
            }
        }
        self.out.write(&self.buf)?;
        self.buf.clear();
        self.out.finish()
    }
}

/// Where the lines go: stdout, one Parquet file on stdout, or files by
/// each line's own time (with Parquet, their staging files, made into
/// Parquet files at the end).
enum Out {
    Text(io::StdoutLock<'static>),
    Parquet(Box<ParquetStream<io::BufWriter<io::Stdout>>>),
    Files(Box<Capture>, Option<Vec<&'static str>>),
}

impl Out {
    fn new(opts: &ReplayOptions) -> Result<Out, ReplayError> {
        let form = &opts.form;
        if let Some(pattern) = &opts.output {
            let capture = Capture::new(
                pattern.clone(),
                Duration::from_secs(1),
                false,
                Arc::default(),
            );
            return Ok(Out::Files(Box::new(capture), form.parquet_columns()));
        }
        Ok(match form.parquet_columns() {
            None => Out::Text(io::stdout().lock()),
            Some(names) => {
                let w = io::BufWriter::with_capacity(1 << 20, io::stdout());
                Out::Parquet(Box::new(ParquetStream::new(w, &names)?))
            }
        })
    }

    /// Whole lines.
    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Out::Text(w) => w.write_all(buf),
            Out::Parquet(p) => p.lines(buf).map(|_| ()),
            Out::Files(c, _) => {
                to_files(c, buf);
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Text(w) => w.flush(),
            // A Parquet file is whole only at its end; files sync by themselves.
            Out::Parquet(_) | Out::Files(..) => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<(), ReplayError> {
        match std::mem::replace(self, Out::Text(io::stdout().lock())) {
            Out::Text(mut w) => w.flush()?,
            Out::Parquet(p) => p.finish()?.flush()?,
            Out::Files(mut c, names) => {
                c.sync_all();
                for staging in names.iter().flat_map(|n| c.written().map(move |s| (s, n))) {
                    parquet::report(staging.0, parquet::finalize(staging.0, staging.1));
                }
            }
        }
        Ok(())
    }
}

/// Whole lines to the files of their own times (a trade's `time`, a
/// bar's `start`, a gap's `to`), each run of one period in one write.
fn to_files(c: &mut Capture, buf: &[u8]) {
    let mut run: Option<(u64, usize)> = None;
    let mut at = 0;
    for line in buf.split_inclusive(|&b| b == b'\n') {
        let period = crate::capture::read::classify(line)
            .map(|(_, t)| c.period_start(t))
            .unwrap_or_else(|_| run.map_or(0, |r| r.0));
        match run {
            Some((p, from)) if p != period => {
                c.write(p, &buf[from..at]);
                run = Some((period, at));
            }
            None => run = Some((period, at)),
            _ => {}
        }
        at += line.len();
    }
    if let Some((p, from)) = run {
        c.write(p, &buf[from..at]);
    }
}

/// The files, merged.
fn open(files: &[PathBuf]) -> Result<Merge, ReplayError> {
    let mut sources = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let source = Source::open(path, i).map_err(|error| ReplayError::Open {
            path: path.clone(),
            error,
        })?;
        sources.push(source);
    }
    Ok(Merge::new(sources))
}

/// A gap reaching across two files is in both: false for its second copy.
fn first_copy(recent: &mut VecDeque<Vec<u8>>, line: &Line) -> bool {
    if line.kind != LineType::Gap {
        return true;
    }
    if recent.contains(&line.bytes) {
        return false;
    }
    if recent.len() == 16 {
        recent.pop_front();
    }
    recent.push_back(line.bytes.clone());
    true
}

/// The line on stderr at the end.
fn summary(written: u64, files: usize, skipped: u64, left_out: &[String]) {
    say(format!(
        "replay: {} written from {}{}{}",
        count(written as usize, "line"),
        count(files, "file"),
        if skipped > 0 {
            format!(
                "; {} skipped (not lines of alltick-stream)",
                count(skipped as usize, "line")
            )
        } else {
            String::new()
        },
        left_out
            .iter()
            .map(|s| format!("; {s}"))
            .collect::<String>()
    ));
}

/// Apply the stdin commands waiting.
fn take_commands(commands: &Receiver<(u64, Command)>, filter: &mut Filter) {
    while let Ok((line, c)) = commands.try_recv() {
        if c == Command::Query {
            say(format!("stdin:{line}: {}", filter.describe()));
        }
        filter.apply(&c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    #[test]
    fn the_filter_follows_the_symbols_and_stdin() {
        let mut all = Filter::new(&[]);
        assert!(all.keeps("AAPL.US"));
        all.apply(&Command::Remove(vec![sym("NASDAQ:AAPL")]));
        assert!(!all.keeps("AAPL.US") && all.keeps("TSLA.US"));
        all.apply(&Command::Add(vec![sym("AAPL.US")]));
        assert!(all.keeps("AAPL.US"));
        let mut some = Filter::new(&[sym("NASDAQ:AAPL")]);
        assert!(some.keeps("AAPL.US") && !some.keeps("TSLA.US"));
        some.apply(&Command::Add(vec![sym("NASDAQ:TSLA")]));
        assert!(some.keeps("TSLA.US"));
        some.apply(&Command::Remove(vec![sym("NASDAQ:AAPL")]));
        assert!(!some.keeps("AAPL.US"));
    }
}
