//! The capture as the simulator's [`Feed`]: every connection its own
//! replay of the files, read as it goes (its own [`Merge`]), started by
//! its first subscription and paced by `--speed`.
//!
//! The capture's clock runs whatever the connection is subscribed to: a
//! line is due at its time, and pushed if its code is in the connection's
//! set of its kind at that moment (trade lines for 22004, depth lines for
//! 22002). Gap lines are not pushed. When the files end, nothing more is
//! pushed; the connection stays open.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::push;
use crate::capture::read::{Line, Merge, Source};
use crate::form::line::LineType;
use crate::replay::TO_SLACK_MS;
use crate::replay::pace::{Pace, Speed};
use crate::report::say;
use crate::sim::{Feed, FeedConn, Next};
use crate::wire::protocol::FeedKind;

/// Most lines passed over (not due to this connection) in one call
/// before it yields to the connection's requests.
const SKIP_BATCH: usize = 4096;

/// What each connection replays.
#[derive(Clone, Debug)]
pub struct Capture {
    /// The files, plain or `.gz`, merged in time order.
    pub files: Arc<[PathBuf]>,
    /// The pace.
    pub speed: Speed,
    /// Lines from this time on (ms).
    pub from: Option<u64>,
    /// Lines up to this time (ms), inclusive.
    pub to: Option<u64>,
}

impl Feed for Capture {
    fn connect(&self) -> Box<dyn FeedConn> {
        Box::new(Replay {
            capture: self.clone(),
            lines: None,
            started: false,
            pace: Pace::new(self.speed),
            held: None,
            trades: HashSet::new(),
            depth: HashMap::new(),
        })
    }
}

/// One connection's replay.
struct Replay {
    capture: Capture,
    /// The files being read (None before the first subscription, and
    /// after the end).
    lines: Option<Merge>,
    started: bool,
    pace: Pace,
    /// The next line, not due yet.
    held: Option<Line>,
    /// The trade set.
    trades: HashSet<String>,
    /// The depth set, each code with its levels.
    depth: HashMap<String, usize>,
}

impl Replay {
    /// Open the files; `None` (said on stderr) if one cannot be read.
    fn open(&self) -> Option<Merge> {
        let mut sources = Vec::with_capacity(self.capture.files.len());
        for (i, path) in self.capture.files.iter().enumerate() {
            match Source::open(path, i) {
                Ok(s) => sources.push(s),
                Err(e) => {
                    say(format!(
                        "serve: cannot read {}: {e}; this connection gets no pushes",
                        path.display()
                    ));
                    return None;
                }
            }
        }
        Some(Merge::new(sources))
    }

    /// The push of `line` for this connection, if it is subscribed to it.
    fn push_of(&self, line: &Line) -> Option<String> {
        let code = line.code()?;
        match line.kind {
            LineType::Trade if self.trades.contains(code) => push::trade(&line.bytes),
            LineType::Depth => push::depth(&line.bytes, *self.depth.get(code)?),
            _ => None,
        }
    }
}

/// Where a line stands against `--from` / `--to`.
enum Window {
    Before,
    In,
    /// Past `--to`, but files are in arrival order: a later line may
    /// still be in.
    After,
    /// So far past `--to` that the replay ends.
    End,
}

fn window(capture: &Capture, time: u64) -> Window {
    if capture.from.is_some_and(|f| time < f) {
        return Window::Before;
    }
    match capture.to {
        Some(to) if time > to.saturating_add(TO_SLACK_MS) => Window::End,
        Some(to) if time > to => Window::After,
        _ => Window::In,
    }
}

impl FeedConn for Replay {
    fn subscribed(&mut self, kind: FeedKind, codes: &[(String, usize)]) {
        match kind {
            FeedKind::Trades => self.trades = codes.iter().map(|(c, _)| c.clone()).collect(),
            FeedKind::Depth => self.depth = codes.iter().cloned().collect(),
        }
        if !self.started && !codes.is_empty() {
            self.started = true;
            self.lines = self.open();
        }
    }

    fn next(&mut self, now: Instant) -> Next {
        for _ in 0..SKIP_BATCH {
            let Some(lines) = self.lines.as_mut() else {
                return Next::Idle;
            };
            let Some(line) = self.held.take().or_else(|| lines.next()) else {
                self.lines = None;
                return Next::Idle;
            };
            match window(&self.capture, line.time) {
                Window::Before | Window::After => continue,
                Window::End => {
                    self.lines = None;
                    return Next::Idle;
                }
                Window::In => {}
            }
            if line.kind == LineType::Gap {
                continue;
            }
            let wait = self.pace.wait(line.time, now);
            if !wait.is_zero() {
                self.held = Some(line);
                return Next::At(now + wait);
            }
            if let Some(text) = self.push_of(&line) {
                return Next::Push(text);
            }
        }
        Next::At(now)
    }
}
