//! Bars written at a stop, taken back on start to go on (`--bars` with
//! `--output`, or `--resume FILE` when stdout is FILE).
//!
//! A stop writes every open bar with the trades it holds. When the tool
//! starts again while such a bar's interval is still open, the bar lines at
//! the very end of the newest files are cut off and their bars opened
//! again, so the interval still ends as one bar with all its trades. Only
//! what the capture itself holds is used: a bar whose interval has ended
//! stays as written, and a CSV capture is taken back only when its header
//! names every value of a bar.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::value::RawValue;

use super::tail::{self, TAIL_BYTES};
use crate::bars::exact::Sum;
use crate::bars::{Bar, Interval};
use crate::form::columns::BAR_KEYS;
use crate::form::csv;
use crate::report::{count, say};

/// Why the bars at a file's end cannot be taken back; the start says it
/// and goes on, writing a second bar for each interval concerned.
#[derive(Debug)]
enum TakeBackError {
    /// The file's end could not be read.
    Read(io::Error),
    /// A CSV capture without every value of a bar: these columns.
    Columns(Vec<&'static str>),
}

impl fmt::Display for TakeBackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TakeBackError::Read(e) => write!(
                f,
                "cannot read its end to take back the bars written at the stop ({e}): a restart inside an interval writes a second bar for it"
            ),
            TakeBackError::Columns(missing) => write!(
                f,
                "its bars cannot be taken back to go on (no {} column): a restart inside an interval writes a second bar for it; capture every bar column to go on across restarts",
                missing.join(", ")
            ),
        }
    }
}

impl std::error::Error for TakeBackError {}

/// The bars at the ends of `files` (newest first) still open at `now` (ms)
/// with `grace_ms`, cut from the files.
pub fn take_back(files: &[PathBuf], interval: Interval, grace_ms: u64, now: u64) -> Vec<Bar> {
    let mut bars = Vec::new();
    for path in files {
        let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else {
            continue;
        };
        let (cut, mut found) = match tail_bars(&file, interval, grace_ms, now) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(why) => {
                say(format!("{}: {why}", path.display()));
                continue;
            }
        };
        if let Err(e) = file.set_len(cut) {
            say(format!(
                "{}: cannot take back the bars written at the stop ({e}): their intervals will have a second bar",
                path.display()
            ));
            continue;
        }
        say(format!(
            "{}: took back {} written at the stop, to go on with their intervals",
            path.display(),
            count(found.len(), "bar")
        ));
        bars.append(&mut found);
    }
    bars
}

/// Where the run of still-open bar lines at the end of `file` starts, and
/// their bars; `None` when there is none. Lines are looked for within
/// [`TAIL_BYTES`] of the end.
fn tail_bars(
    file: &File,
    interval: Interval,
    grace_ms: u64,
    now: u64,
) -> Result<Option<(u64, Vec<Bar>)>, TakeBackError> {
    let csv = csv_columns(file)?;
    let mut bars = Vec::new();
    let mut cut = None;
    tail::lines_back(file, TAIL_BYTES, &mut 0, |at, line| {
        let bar = match &csv {
            Some(columns) => columns.bar(line),
            None => json_bar(line),
        };
        match bar {
            Some(b) if b.interval == interval && b.end.saturating_add(grace_ms) > now => {
                bars.push(b);
                cut = Some(at);
                true
            }
            _ => false,
        }
    })
    .map_err(TakeBackError::Read)?;
    Ok(cut.map(|at| (at, bars)))
}

/// A bar from its values' JSON texts, by key.
fn from_values(get: impl Fn(&str) -> Option<String>) -> Option<Bar> {
    let text = |k: &str| -> Option<String> {
        let v = get(k)?;
        Some(match serde_json::from_str::<String>(&v) {
            Ok(s) => s,
            Err(_) => v,
        })
    };
    let number = |k: &str| -> Option<u64> { text(k)?.parse().ok() };
    let digits = |k: &str| -> Option<Box<[u8]>> {
        let v = text(k)?;
        (!v.is_empty() && v != "null").then(|| v.into_bytes().into_boxed_slice())
    };
    let sum = |k: &str| -> Option<Option<Sum>> {
        match digits(k) {
            None => Some(None),
            Some(d) => {
                let mut s = Sum::default();
                s.add(&d).then_some(Some(s))
            }
        }
    };
    let interval = Interval::parse(&text("interval")?).ok()?;
    let start = number("start")?;
    Some(Bar {
        symbol: Arc::from(text("symbol")?),
        code: Arc::from(text("code")?),
        interval,
        start,
        end: start.saturating_add(interval.ms()),
        open: digits("open")?,
        high: digits("high")?,
        low: digits("low")?,
        close: digits("close")?,
        volume: sum("volume")?,
        turnover: sum("turnover")?,
        trades: number("trades")?,
    })
}

/// A bar line of the tool's JSON.
fn json_bar(line: &[u8]) -> Option<Bar> {
    let map: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(line).ok()?;
    if map.get("type").map(|v| v.get()) != Some("\"bar\"") {
        return None;
    }
    from_values(|k| map.get(k).map(|v| v.get().to_string()))
}

/// A CSV capture's columns by name, read from its header row; `None` for
/// a JSON capture. A CSV capture without every value of a bar cannot be
/// taken back.
struct Columns(Vec<String>);

fn csv_columns(file: &File) -> Result<Option<Columns>, TakeBackError> {
    let Some(names) = tail::csv_header(file).map_err(TakeBackError::Read)? else {
        return Ok(None);
    };
    let missing: Vec<&'static str> = BAR_KEYS[1..]
        .iter()
        .copied()
        .filter(|k| !names.iter().any(|n| n == k))
        .collect();
    if !missing.is_empty() {
        return Err(TakeBackError::Columns(missing));
    }
    Ok(Some(Columns(names)))
}

impl Columns {
    fn bar(&self, row: &[u8]) -> Option<Bar> {
        let cells = csv::cells(row);
        if cells.len() != self.0.len() {
            return None;
        }
        let at = |k: &str| self.0.iter().position(|n| n == k);
        from_values(|k| {
            let cell = cells.get(at(k)?)?;
            Some(String::from_utf8_lossy(cell).into_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar_line(code: &str, start: u64, close: &str) -> String {
        format!(
            "{{\"type\":\"bar\",\"symbol\":\"S:{code}\",\"code\":\"{code}\",\"interval\":\"1m\",\"start\":{start},\"end\":{},\"open\":1.50,\"high\":2,\"low\":1,\"close\":{close},\"volume\":null,\"turnover\":12.50,\"trades\":3}}\n",
            start + 60_000
        )
    }

    #[test]
    fn bars_still_open_at_a_files_end_are_cut_and_read_back() {
        let d = std::env::temp_dir().join(format!("alltick-reopen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let minute = Interval::parse("1m").unwrap();
        let kept = bar_line("A.US", 0, "1") + &bar_line("B.US", 60_000, "1");
        let json = d.join("b.jsonl");
        std::fs::write(
            &json,
            kept.clone() + &bar_line("A.US", 120_000, "1.75") + &bar_line("B.US", 120_000, "2"),
        )
        .unwrap();
        // Now is within the interval that starts at 120000: its two bars go on.
        let bars = take_back(std::slice::from_ref(&json), minute, 2_000, 150_000);
        assert_eq!(bars.len(), 2);
        assert_eq!(std::fs::read_to_string(&json).unwrap(), kept);
        let a = bars.iter().find(|b| &*b.code == "A.US").unwrap();
        assert_eq!(
            (&*a.close, &*a.open, a.trades, a.volume.is_none()),
            (&b"1.75"[..], &b"1.50"[..], 3, true)
        );
        let mut t = Vec::new();
        a.turnover.as_ref().unwrap().write(&mut t);
        assert_eq!(t, b"12.50");
        // Of another interval, or past: nothing is taken back.
        assert!(
            take_back(
                std::slice::from_ref(&json),
                Interval::parse("5m").unwrap(),
                0,
                150_000
            )
            .is_empty()
        );
        assert!(take_back(std::slice::from_ref(&json), minute, 0, 10_000_000).is_empty());
        // A CSV capture with every value of a bar, and one without.
        let csv = d.join("b.csv");
        let head = "symbol,code,interval,start,end,open,high,low,close,volume,turnover,trades\n";
        std::fs::write(
            &csv,
            format!(
                "{head}S,A.US,1m,0,60000,1,1,1,1,,,1\nS,A.US,1m,60000,120000,1,2,1,2,5,10.0,2\n"
            ),
        )
        .unwrap();
        let bars = take_back(std::slice::from_ref(&csv), minute, 0, 90_000);
        assert_eq!(bars.len(), 1);
        assert_eq!(bars[0].start, 60_000);
        assert_eq!(
            std::fs::read_to_string(&csv).unwrap(),
            format!("{head}S,A.US,1m,0,60000,1,1,1,1,,,1\n")
        );
        let lean = d.join("lean.csv");
        std::fs::write(&lean, "code,start,close\nA.US,60000,2\n").unwrap();
        assert!(take_back(std::slice::from_ref(&lean), minute, 0, 90_000).is_empty());
        assert_eq!(
            std::fs::read_to_string(&lean).unwrap(),
            "code,start,close\nA.US,60000,2\n"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
