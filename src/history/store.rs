//! Where K-line bars go, and what the files already hold.
//!
//! With `--output PATTERN` the bars go to the files of their `start`
//! (UTC), appended. Each block of one code's bars for one file is one
//! `write`: a `kill -9` lands before it or after it, and a write that
//! fails (a full disk) is cut back to where the file ended, so a file
//! holds a code's bars as whole blocks. The caller hands blocks over in
//! an order that keeps each code's bars on disk one unbroken run (newer
//! bars oldest first, older bars newest first), so that on the next start
//! the oldest and newest bar of each code say everything in between is
//! there too ([`Held`]).
//!
//! Without `--output` the bars go to stdout.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::capture::parquet::ParquetStream;
use crate::capture::pattern::Pattern;
use crate::capture::write::{open_for_append, repair_tail};
use crate::form::Columns;
use crate::form::columns::{KLINE_TYPE, KlineRow};
use crate::report::say;

use super::check::Kline;

/// The oldest and newest start (ms) of one code's K-lines of one interval
/// in the files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// The oldest bar's start.
    pub oldest: u64,
    /// The newest bar's start.
    pub newest: u64,
}

/// What the files of a pattern hold, per (code, interval).
#[derive(Debug, Default)]
pub struct Holdings {
    held: HashMap<(String, String), Held>,
    /// Lines read.
    pub lines: u64,
    /// Files read.
    pub files: usize,
}

impl Holdings {
    /// What is held of `code`'s bars of `interval`.
    pub fn get(&self, code: &str, interval: &str) -> Option<Held> {
        self.held
            .get(&(code.to_string(), interval.to_string()))
            .copied()
    }

    fn note(&mut self, code: &str, interval: &str, start: u64) {
        self.lines += 1;
        let key = (code.to_string(), interval.to_string());
        let h = self.held.entry(key).or_insert(Held {
            oldest: start,
            newest: start,
        });
        h.oldest = h.oldest.min(start);
        h.newest = h.newest.max(start);
    }
}

/// Read every file of `pattern` (each made to end in a whole line first):
/// the K-line bars they hold. A CSV file is read by its header row, which
/// must name `type`, `code`, `interval` and `start`.
pub fn read_holdings(pattern: &Pattern) -> io::Result<Holdings> {
    let mut holdings = Holdings::default();
    for path in pattern.existing() {
        let file = OpenOptions::new().read(true).append(true).open(&path)?;
        if let Some(note) = repair_tail(&file)? {
            say(format!("{}: {note}", path.display()));
        }
        read_file(&path, file, &mut holdings)?;
        holdings.files += 1;
    }
    Ok(holdings)
}

fn read_file(path: &Path, file: File, h: &mut Holdings) -> io::Result<()> {
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut columns: Option<[usize; 4]> = None;
    let mut first = true;
    while {
        line.clear();
        reader.read_until(b'\n', &mut line)? > 0
    } {
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if std::mem::take(&mut first) && !text.starts_with(b"{") && !text.is_empty() {
            columns = Some(csv_columns(path, text)?);
            continue;
        }
        let found = match columns {
            Some(at) => csv_row(text, at),
            None => json_row(text),
        };
        if let Some((code, interval, start)) = found {
            h.note(&code, &interval, start);
        }
    }
    Ok(())
}

fn csv_columns(path: &Path, header: &[u8]) -> io::Result<[usize; 4]> {
    let names = crate::form::csv::cells(header);
    let mut at = [0; 4];
    for (slot, key) in at.iter_mut().zip(["type", "code", "interval", "start"]) {
        *slot = names
            .iter()
            .position(|n| n == key.as_bytes())
            .ok_or_else(|| {
                io::Error::other(format!(
                    "{}: its header has no {key} column, so what it holds cannot be told",
                    path.display()
                ))
            })?;
    }
    Ok(at)
}

fn csv_row(row: &[u8], at: [usize; 4]) -> Option<(String, String, u64)> {
    let cells = crate::form::csv::cells(row);
    let cell = |i: usize| {
        cells
            .get(at[i])
            .map(|c| String::from_utf8_lossy(c).into_owned())
    };
    (cell(0)? == KLINE_TYPE).then_some(())?;
    Some((cell(1)?, cell(2)?, cell(3)?.parse().ok()?))
}

fn json_row(line: &[u8]) -> Option<(String, String, u64)> {
    if let Some(found) = kline_by_position(line) {
        return Some(found);
    }
    if !line.starts_with(b"{") || crate::form::line::find(line, b"\"kline\"").is_none() {
        return None;
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    (v.get("type")?.as_str()? == KLINE_TYPE).then_some(())?;
    Some((
        v.get("code")?.as_str()?.to_string(),
        v.get("interval")?.as_str()?.to_string(),
        v.get("start")?.as_u64()?,
    ))
}

/// A K-line line as the tool writes it, read by position: `{"type":"kline",
/// "symbol":…,"code":…,"interval":…,"start":…,`; `None` for any other
/// layout (read as JSON instead).
fn kline_by_position(line: &[u8]) -> Option<(String, String, u64)> {
    let rest = line.strip_prefix(b"{\"type\":\"kline\",\"symbol\":")?;
    let at = line.len() - rest.len();
    let (after, _) = crate::wire::json::string(line, at)?;
    let rest = line[after..].strip_prefix(b",\"code\":")?;
    let code = plain_string(rest)?;
    let rest = rest[code.len() + 2..].strip_prefix(b",\"interval\":")?;
    let interval = plain_string(rest)?;
    let rest = rest[interval.len() + 2..].strip_prefix(b",\"start\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if rest.get(digits) != Some(&b',') || digits == 0 || digits > 19 {
        return None;
    }
    let start = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
    Some((text(code)?, text(interval)?, start))
}

/// The text of the JSON string at the start of `b` when it holds no
/// escape.
fn plain_string(b: &[u8]) -> Option<&[u8]> {
    let (end, escaped) = crate::wire::json::string(b, 0)?;
    (!escaped).then(|| &b[1..end - 1])
}

/// Where bars are written.
pub enum Out {
    /// Standard output (a CSV header row first, once).
    Stdout(io::BufWriter<io::Stdout>),
    /// One Parquet file on standard output.
    Parquet(Box<ParquetStream<io::BufWriter<io::Stdout>>>),
    /// The files of a pattern.
    Files {
        /// The pattern.
        pattern: Pattern,
        /// The files written to this run.
        touched: Vec<PathBuf>,
    },
}

/// A code's identity on its lines.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    /// The symbol as written.
    pub symbol: &'a str,
    /// AllTick's code.
    pub code: &'a str,
    /// The interval's name.
    pub interval: &'a str,
}

impl Out {
    /// Stdout, with the CSV header row written when the columns have one.
    pub fn stdout(columns: &Columns) -> io::Result<Out> {
        let mut w = io::BufWriter::with_capacity(1 << 16, io::stdout());
        let mut head = Vec::new();
        columns.header(&mut head);
        w.write_all(&head)?;
        w.flush()?;
        Ok(Out::Stdout(w))
    }

    /// One Parquet file of the columns `names` on stdout.
    pub fn parquet(names: &[&'static str]) -> io::Result<Out> {
        let w = io::BufWriter::with_capacity(1 << 20, io::stdout());
        Ok(Out::Parquet(Box::new(ParquetStream::new(w, names)?)))
    }

    /// The end of the output: a Parquet file's footer.
    pub fn finish(self) -> io::Result<()> {
        match self {
            Out::Parquet(p) => p.finish()?.flush(),
            _ => Ok(()),
        }
    }

    /// The files written to this run (none on stdout).
    pub fn touched(&self) -> &[PathBuf] {
        match self {
            Out::Files { touched, .. } => touched,
            _ => &[],
        }
    }

    /// The start of the file period holding `time`; `None` on stdout.
    pub fn period_start(&self, time: u64) -> Option<u64> {
        match self {
            Out::Stdout(_) | Out::Parquet(_) => None,
            Out::Files { pattern, .. } => Some(pattern.period_start(time)),
        }
    }

    /// The end of the file period that starts at `start`.
    pub fn period_end(&self, start: u64) -> u64 {
        match self {
            Out::Stdout(_) | Out::Parquet(_) => u64::MAX,
            Out::Files { pattern, .. } => pattern.period_end(start),
        }
    }

    /// Write `bars` (one code's, oldest first): one write per file, each
    /// whole or not at all. Returns how many were written.
    pub fn write(&mut self, columns: &Columns, who: Who, bars: &[Kline]) -> io::Result<usize> {
        let mut text = Vec::with_capacity(bars.len() * 160);
        let mut scratch = Vec::new();
        match self {
            Out::Stdout(w) => {
                for k in bars {
                    columns.kline(&mut text, &mut scratch, &row(who, k));
                }
                w.write_all(&text)?;
                w.flush()?;
            }
            Out::Parquet(p) => {
                for k in bars {
                    columns.kline(&mut text, &mut scratch, &row(who, k));
                }
                p.lines(&text)?;
            }
            Out::Files { pattern, touched } => {
                let mut i = 0;
                while i < bars.len() {
                    let period = pattern.period_start(bars[i].start);
                    let next = pattern.period_end(period);
                    let n = bars[i..].iter().take_while(|k| k.start < next).count();
                    text.clear();
                    for k in &bars[i..i + n] {
                        columns.kline(&mut text, &mut scratch, &row(who, k));
                    }
                    append(&pattern.path(period), columns, &text, touched)?;
                    i += n;
                }
            }
        }
        Ok(bars.len())
    }
}

fn row<'a>(who: Who<'a>, k: &'a Kline) -> KlineRow<'a> {
    KlineRow {
        symbol: who.symbol,
        code: who.code,
        interval: who.interval,
        start: k.start,
        end: k.end,
        values: [&k.open, &k.high, &k.low, &k.close, &k.volume, &k.turnover],
    }
}

/// Append `text` to `path` in one write (a CSV header row first in a new
/// file); a failed write is cut back to where the file ended.
fn append(
    path: &Path,
    columns: &Columns,
    text: &[u8],
    touched: &mut Vec<PathBuf>,
) -> io::Result<()> {
    // As a capture's file: directories made, a torn last line repaired.
    let (file, len) = open_for_append(path)?;
    if !touched.iter().any(|p| p == path) {
        touched.push(path.to_path_buf());
    }
    let mut block = Vec::new();
    if len == 0 {
        columns.header(&mut block);
    }
    block.extend_from_slice(text);
    let mut f = &file;
    if let Err(e) = f.write_all(&block) {
        // Whole blocks only: what went in of this one comes out again.
        let _ = file.set_len(len);
        return Err(io::Error::new(
            e.kind(),
            format!("{}: {e} (nothing of this block kept)", path.display()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kline_line_reads_by_position_as_by_json() {
        let line = br#"{"type":"kline","symbol":"NASDAQ:\"A\"","code":"AAPL.US","interval":"1m","start":1796428800000,"end":1796428860000,"open":1.5,"high":1.5,"low":1.5,"close":1.5,"volume":1,"turnover":1.5,"trades":null}"#;
        let want = Some(("AAPL.US".to_string(), "1m".to_string(), 1_796_428_800_000));
        assert_eq!(kline_by_position(line), want);
        assert_eq!(json_row(line), want);
        // Another layout is read as JSON; other types are not K-lines.
        let shuffled = br#"{"start":5,"code":"X","interval":"1d","type":"kline"}"#;
        assert_eq!(kline_by_position(shuffled), None);
        assert_eq!(json_row(shuffled), Some(("X".into(), "1d".into(), 5)));
        let bar = br#"{"type":"bar","symbol":"X","code":"X","interval":"1m","start":5,"end":6}"#;
        assert_eq!(json_row(bar), None);
        assert_eq!(
            kline_by_position(
                br#"{"type":"kline","symbol":"X","code":"X","interval":"1m","start":x,"#
            ),
            None
        );
    }
}
