//! The lines the tool writes, made into what `--bars`, `--fields` and
//! `--format` ask for. The writer (live) and `replay` hand over each full
//! line as they would write it; it comes back rewritten, or folded into a
//! bar, or gone (depth and gap lines have no CSV form: a gap goes to
//! stderr, depth is counted).

use crate::report::{count, say};
use crate::wire::line::{TradeLine, find};
use crate::writer::shape::{Form, Format};

/// Turns full lines into the lines of a [`Form`].
pub struct Shaper {
    form: Form,
    scratch: Vec<u8>,
    canon: Vec<u8>,
    /// Depth lines left out of CSV.
    depth_skipped: u64,
    /// Trade lines that could not be read back.
    unreadable: u64,
}

impl Shaper {
    /// Lines of `form`.
    pub fn new(form: Form) -> Shaper {
        Shaper {
            form,
            scratch: Vec::new(),
            canon: Vec::new(),
            depth_skipped: 0,
            unreadable: 0,
        }
    }

    /// Whether lines go out as they are: nothing to do.
    pub fn is_plain(&self) -> bool {
        self.form.is_plain()
    }

    /// The header row a stream or a new file starts with (CSV), else
    /// nothing.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.form.shape.header(&mut out);
        out
    }

    /// The whole line at `buf[at..]` (with its newline), as the tool
    /// writes it: rewrite it in place into the form's line. False when
    /// no line is left there.
    pub fn reshape(&mut self, buf: &mut Vec<u8>, at: usize) -> bool {
        let line = &buf[at..];
        let kind = line_kind(line);
        let csv = self.form.shape.format == Format::Csv;
        match kind {
            Kind::Trade => {}
            Kind::Depth if csv => {
                self.depth_skipped += 1;
                if self.depth_skipped == 1 {
                    say("depth lines have no CSV form: left out (use --format jsonl for depth)");
                }
                buf.truncate(at);
                return false;
            }
            Kind::Gap if csv => {
                let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line));
                say(format!("gap: {text}"));
                buf.truncate(at);
                return false;
            }
            Kind::Depth | Kind::Gap | Kind::Other => return true,
        }
        let trade = match TradeLine::parse(line) {
            Some(t) => t,
            None if TradeLine::canonical(line, &mut self.canon) => {
                match TradeLine::parse(&self.canon) {
                    Some(t) => t,
                    None => return self.unreadable(buf, at),
                }
            }
            None => return self.unreadable(buf, at),
        };
        self.scratch.clear();
        let mut cell = Vec::new();
        self.form.shape.trade(&mut self.scratch, &mut cell, &trade);
        buf.truncate(at);
        buf.extend_from_slice(&self.scratch);
        true
    }

    /// A trade line that cannot be read back: left out, counted and said.
    fn unreadable(&mut self, buf: &mut Vec<u8>, at: usize) -> bool {
        self.unreadable += 1;
        if self.unreadable.is_power_of_two() {
            say(format!(
                "a trade line could not be read back to write its fields; {} left out so far",
                count(self.unreadable as usize, "line")
            ));
        }
        buf.truncate(at);
        false
    }

    /// What was left out, for the summary at the end (empty if nothing).
    pub fn left_out(&self) -> Vec<String> {
        let mut said = Vec::new();
        if self.depth_skipped > 0 {
            said.push(format!(
                "{} left out of CSV",
                count(self.depth_skipped as usize, "depth line")
            ));
        }
        if self.unreadable > 0 {
            said.push(format!(
                "{} unreadable",
                count(self.unreadable as usize, "trade line")
            ));
        }
        said
    }
}

/// What a full line is, by its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Trade,
    Depth,
    Gap,
    Other,
}

/// What a full line is: by its start as the tool writes it, else by its
/// `type` wherever it stands.
fn line_kind(line: &[u8]) -> Kind {
    let kinds: [(&[u8], Kind); 3] = [
        (b"\"type\":\"trade\"", Kind::Trade),
        (b"\"type\":\"depth\"", Kind::Depth),
        (b"\"type\":\"gap\"", Kind::Gap),
    ];
    for (key, kind) in kinds {
        if line.get(1..).is_some_and(|l| l.starts_with(key)) {
            return kind;
        }
    }
    for (key, kind) in kinds {
        if find(line, key).is_some() {
            return kind;
        }
    }
    Kind::Other
}
