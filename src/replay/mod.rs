//! `alltick-stream replay`: a capture's lines to stdout again, byte for
//! byte, in time order, at the recorded pace or faster.
//!
//! The files are merged by time as they are read ([`source`]); the pace
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

use crate::capture::read::{Line, Merge, Source};
use crate::capture::resume;
use crate::form::columns::Form;
use crate::form::convert::{Clock, Shaper};
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
    pub form: Form,
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

/// Replay until the input ends, a stop is asked for, or stdout closes.
pub fn run(
    opts: ReplayOptions,
    stop: Arc<AtomicBool>,
    commands: Receiver<(u64, Command)>,
) -> ReplayEnd {
    let Some(mut merge) = open(&opts.files) else {
        return ReplayEnd::BadFile;
    };
    let mut filter = Filter::new(&opts.symbols);
    let mut pace = Pace::new(opts.speed);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BYTES * 2);
    let shaper = Shaper::new(opts.form.clone(), Clock::Stream, Arc::default());
    if !resume::stdout_has_lines() {
        buf.extend_from_slice(&shaper.header());
    }
    let mut shaper = (!shaper.is_plain()).then_some(shaper);
    let mut written: u64 = 0;
    let mut recent_gaps: VecDeque<Vec<u8>> = VecDeque::new();
    let mut n: u32 = 0;
    let result = (|| -> io::Result<()> {
        while let Some(line) = merge.next() {
            n = n.wrapping_add(1);
            if n.is_multiple_of(256) {
                take_commands(&commands, &mut filter);
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let in_range =
                opts.from.is_none_or(|f| line.time >= f) && opts.to.is_none_or(|t| line.time <= t);
            if !in_range || !filter.keeps_line(&line) {
                let past = opts
                    .to
                    .is_some_and(|t| line.time > t.saturating_add(TO_SLACK_MS));
                merge.recycle(line);
                if past {
                    break;
                }
                continue;
            }
            // The clock is not read for `--speed max`: it costs per line.
            let mut wait = if pace.is_max() {
                Duration::ZERO
            } else {
                pace.wait(line.time, Instant::now())
            };
            if !wait.is_zero() {
                out.write_all(&buf)?;
                out.flush()?;
                buf.clear();
                while !wait.is_zero() && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(wait.min(NAP));
                    take_commands(&commands, &mut filter);
                    wait = pace.wait(line.time, Instant::now());
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if !filter.keeps_line(&line) {
                    merge.recycle(line);
                    continue;
                }
            }
            if !first_copy(&mut recent_gaps, &line) {
                merge.recycle(line);
                continue;
            }
            match &mut shaper {
                Some(s) => written += s.shape(&line.bytes, &mut buf) as u64,
                None => {
                    buf.extend_from_slice(&line.bytes);
                    written += 1;
                }
            }
            merge.recycle(line);
            if buf.len() >= WRITE_BYTES {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        if let Some(s) = &mut shaper {
            for (_, line) in s.close_all() {
                buf.extend_from_slice(&line);
                written += 1;
            }
        }
        out.write_all(&buf)?;
        out.flush()
    })();
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return ReplayEnd::Done,
        Err(e) => {
            say(format!("cannot write to stdout: {e}"));
            return ReplayEnd::Failed;
        }
        Ok(()) => {}
    }
    let left_out = shaper.map(|s| s.left_out()).unwrap_or_default();
    summary(written, opts.files.len(), merge.skipped(), &left_out);
    ReplayEnd::Done
}

/// The files, merged; `None` (said) when one cannot be opened.
fn open(files: &[PathBuf]) -> Option<Merge> {
    let mut sources = Vec::new();
    for (i, path) in files.iter().enumerate() {
        match Source::open(path, i) {
            Ok(s) => sources.push(s),
            Err(e) => {
                say(format!("cannot read {}: {e}", path.display()));
                return None;
            }
        }
    }
    Some(Merge::new(sources))
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
