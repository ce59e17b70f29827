//! `--output`: lines go to files named from their own time, appended,
//! never torn.
//!
//! Each write is a batch of whole lines of one period. A write that fails
//! (a full disk, an I/O error) is rolled back to the file's length before
//! it, so the file never ends in part of a line; its lines are counted as
//! lost and, with `--gaps`, marked by a gap line once the disk takes lines
//! again. Nothing here stops the tool: a failing disk is reported and
//! retried at the next write. A file is synced every `--fsync` seconds
//! while it has unsynced lines, and when a later period's file opens.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::live::Live;
use super::pattern::Pattern;
use crate::form::json::format_gap;
use crate::form::line::{number_after, text_after};
use crate::queue::Gap;
use crate::report::say;
use crate::stats::{DropLog, Stats};

/// Files kept open at once: the current period's and the one before it
/// (a late line near a boundary), so a line never waits for an `open`.
const OPEN_FILES: usize = 2;

/// How far back a torn last line's start is looked for.
const REPAIR_SCAN: u64 = 1 << 20;

/// One open file of the capture.
struct Open {
    /// Start of the period it holds.
    start: u64,
    path: PathBuf,
    file: File,
    /// Its length after the last whole write.
    len: u64,
    /// Written since the last sync.
    dirty: bool,
}

/// Lines the disk refused since it last took one.
#[derive(Debug)]
struct Lost {
    lines: u64,
    from: u64,
    to: u64,
    codes: BTreeSet<String>,
    error: String,
    path: PathBuf,
}

/// The files of one `--output` pattern.
pub struct Capture {
    pattern: Pattern,
    fsync: Duration,
    gaps: bool,
    open: Vec<Open>,
    lost: Option<Lost>,
    last_sync: Instant,
    drops: DropLog,
    stats: Arc<Stats>,
    /// CSV files: the header row written first to a file that is empty.
    /// They hold no gap lines (those go to stderr).
    csv_header: Option<Vec<u8>>,
    /// With `--format parquet`: the staging files' Parquet files, made
    /// as lines are written ([`Capture::make_parquet`]).
    live: Option<Live>,
    /// Every file opened to be written to in this run.
    written: BTreeSet<PathBuf>,
}

impl Capture {
    /// Files named by `pattern`, synced every `fsync`; with `gaps`, lines
    /// lost to the disk are marked by a gap line.
    pub fn new(pattern: Pattern, fsync: Duration, gaps: bool, stats: Arc<Stats>) -> Capture {
        Capture {
            pattern,
            fsync,
            gaps,
            open: Vec::new(),
            lost: None,
            last_sync: Instant::now(),
            drops: DropLog::default(),
            stats,
            csv_header: None,
            live: None,
            written: BTreeSet::new(),
        }
    }

    /// The files are staging files: their Parquet files, of the columns
    /// `names`, are made from each batch written, finished when a
    /// period ends and at [`Capture::finish_parquet`].
    pub fn make_parquet(&mut self, names: Vec<&'static str>) {
        self.live = Some(Live::new(names));
    }

    /// The Parquet files being made, finished (at the end).
    pub fn finish_parquet(&mut self) {
        if let Some(live) = &mut self.live {
            live.finish();
        }
    }

    /// Every file opened to be written to in this run.
    pub fn written(&self) -> impl Iterator<Item = &PathBuf> {
        self.written.iter()
    }

    /// The files are CSV: every empty one starts with `header` (a file
    /// appended to already has it), and gap lines go to stderr.
    pub fn set_csv(&mut self, header: Vec<u8>) {
        self.csv_header = Some(header);
    }

    /// The start of the period of a line whose time is `time`.
    pub fn period_start(&self, time: u64) -> u64 {
        self.pattern.period_start(time)
    }

    /// Append `bytes`, whole lines all of the period that starts at
    /// `start`, to its file.
    pub fn write(&mut self, start: u64, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match self.append(start, bytes) {
            Ok(()) => {
                self.recovered();
                self.close_if_past(start);
            }
            Err((path, e)) => self.refused(path, bytes, e),
        }
    }

    /// A file written to after a later period's was opened (a bar healed
    /// late) is closed again at once, as its period has ended: its
    /// Parquet file is made again.
    fn close_if_past(&mut self, start: u64) {
        if !self.open.iter().any(|f| f.start > start) {
            return;
        }
        if let Some(i) = self.open.iter().position(|f| f.start == start) {
            let f = self.open.remove(i);
            sync_file(&f, &mut self.drops);
            if let Some(live) = &mut self.live {
                live.ended(&f.path);
            }
        }
    }

    /// Append to the file of `start`, rolling a failed write back.
    fn append(&mut self, start: u64, bytes: &[u8]) -> Result<(), (PathBuf, io::Error)> {
        let i = self.file_for(start)?;
        let f = &mut self.open[i];
        let head: &[u8] = match &self.csv_header {
            Some(h) if f.len == 0 => h,
            _ => &[],
        };
        match f
            .file
            .write_all(head)
            .and_then(|()| f.file.write_all(bytes))
        {
            Ok(()) => {
                f.len += (head.len() + bytes.len()) as u64;
                f.dirty = true;
                if let Some(live) = &mut self.live {
                    live.written(&f.path, f.len);
                }
                Ok(())
            }
            Err(e) => {
                // Part of the batch may be in the file: cut it off. If even
                // that fails, reopen (and repair) the file next time.
                if f.file.set_len(f.len).is_err() {
                    self.open.remove(i);
                }
                Err((self.pattern.path(start), e))
            }
        }
    }

    /// The index in `open` of the file of `start`, opened if need be.
    fn file_for(&mut self, start: u64) -> Result<usize, (PathBuf, io::Error)> {
        if let Some(i) = self.open.iter().position(|f| f.start == start) {
            return Ok(i);
        }
        // A later period's file opening ends the earlier periods: sync
        // and close them. Beyond that, keep the newest few.
        let end_of = |s: u64| self.pattern.period_end(s);
        let ended: Vec<usize> = (0..self.open.len())
            .filter(|&i| end_of(self.open[i].start) <= start)
            .collect();
        for i in ended.into_iter().rev() {
            let f = self.open.remove(i);
            sync_file(&f, &mut self.drops);
            if let Some(live) = &mut self.live {
                live.ended(&f.path);
            }
        }
        while self.open.len() >= OPEN_FILES {
            let oldest = (0..self.open.len())
                .min_by_key(|&i| self.open[i].start)
                .unwrap_or(0);
            let f = self.open.remove(oldest);
            sync_file(&f, &mut self.drops);
        }
        let path = self.pattern.path(start);
        let opened = open_for_append(&path).map_err(|e| (path.clone(), e))?;
        self.written.insert(path.clone());
        self.open.push(Open {
            start,
            path,
            len: opened.1,
            file: opened.0,
            dirty: false,
        });
        Ok(self.open.len() - 1)
    }

    /// The disk refused `bytes`: count its lines, say so (rate-limited).
    fn refused(&mut self, path: PathBuf, bytes: &[u8], e: io::Error) {
        let first = self.lost.is_none();
        let lost = self.lost.get_or_insert_with(|| Lost {
            lines: 0,
            from: u64::MAX,
            to: 0,
            codes: BTreeSet::new(),
            error: e.to_string(),
            path: path.clone(),
        });
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            lost.lines += 1;
            if let Some(t) = number_after(line, b"\"time\":") {
                lost.from = lost.from.min(t);
                lost.to = lost.to.max(t);
            }
            if let Some(code) = text_after(line, b"\"code\":\"") {
                lost.codes.insert(code.to_string());
            }
        }
        let n = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        let shown = path.display().to_string();
        if first {
            self.drops.due("disk", Instant::now());
            Stats::add(&self.stats.lost_disk, n);
            say(format!(
                "cannot write to {shown}: {e}; its lines are counted and dropped until the disk takes them again (retried at every write)"
            ));
        } else {
            self.drops.count(&self.stats.lost_disk, n, "disk", |total| {
                format!("still cannot write to {shown}: {e}; {total} lines lost so far")
            });
        }
    }

    /// A write went through: if lines were lost before it, say so and
    /// mark the hole.
    fn recovered(&mut self) {
        let Some(lost) = self.lost.take() else {
            return;
        };
        say(format!(
            "writing to {} again; {} lost while the disk refused them ({})",
            lost.path.display(),
            crate::report::count(lost.lines as usize, "line"),
            lost.error
        ));
        if !self.gaps || lost.from > lost.to {
            return;
        }
        let gap = Gap {
            connection: None,
            codes: lost.codes.into_iter().collect(),
            from: lost.from,
            to: lost.to,
            reason: format!("disk: {}", lost.error),
            dropped: Some(lost.lines),
            heal: None,
        };
        if self.csv_header.is_some() {
            // CSV files hold no gap lines: stderr.
            let mut line = Vec::new();
            format_gap(&mut line, &gap);
            say(format!(
                "gap: {}",
                String::from_utf8_lossy(line.trim_ascii_end())
            ));
            return;
        }
        for start in self.gap_periods(&gap) {
            let mut line = Vec::new();
            format_gap(&mut line, &gap);
            self.write(start, &line);
        }
    }

    /// The periods a gap line goes to: that of its `from` and, when the
    /// gap reaches into another file, that of its `to` too.
    pub fn gap_periods(&self, gap: &Gap) -> Vec<u64> {
        let (a, b) = (self.period_start(gap.from), self.period_start(gap.to));
        if a == b { vec![a] } else { vec![a, b] }
    }

    /// How long the writer may wait for the queue before a sync is due.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        self.open
            .iter()
            .any(|f| f.dirty)
            .then(|| (self.last_sync + self.fsync).saturating_duration_since(now))
    }

    /// Sync what was written, if a sync is due at `now`.
    pub fn tick(&mut self, now: Instant) {
        if now >= self.last_sync + self.fsync {
            self.sync_all();
            self.last_sync = now;
        }
    }

    /// Sync every open file (at the end, and every `--fsync`).
    pub fn sync_all(&mut self) {
        for f in &mut self.open {
            if f.dirty {
                f.dirty = false;
                sync_file(f, &mut self.drops);
            }
        }
    }
}

fn sync_file(f: &Open, drops: &mut DropLog) {
    if let Err(e) = f.file.sync_data()
        && drops.due("sync", Instant::now())
    {
        say(format!("cannot sync {}: {e}", f.path.display()));
    }
}

/// Open `path` to append (its directories created), with a torn last line
/// repaired first; also its length.
pub fn open_for_append(path: &Path) -> io::Result<(File, u64)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    if let Some(note) = repair_tail(&file)? {
        say(format!("{}: {note}", path.display()));
    }
    let len = file.metadata()?.len();
    Ok((file, len))
}

/// Make `file` end with a whole line. A last line without its newline is
/// completed when it is a whole JSON object (the newline alone was lost),
/// else cut off. Returns what was done, for stderr.
pub fn repair_tail(file: &File) -> io::Result<Option<String>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] == b'\n' {
        return Ok(None);
    }
    // Where the last line starts: the first line read back, when it runs
    // to the end (a longer one is not handed back whole).
    let mut keep = None;
    super::tail::lines_back(file, REPAIR_SCAN, &mut 0, |at, line| {
        keep = (at + line.len() as u64 == len).then_some(at);
        false
    })?;
    let Some(keep) = keep else {
        // No line start within reach: cutting would take whole lines with
        // it. Ended with a newline instead, the piece is a line of its own
        // that readers report and skip.
        let mut f = file;
        f.write_all(b"\n")?;
        return Ok(Some(format!(
            "no newline in its last {} MiB: ended it with one (the piece is a line readers skip)",
            REPAIR_SCAN >> 20
        )));
    };
    let mut fragment = vec![0u8; (len - keep) as usize];
    file.read_exact_at(&mut fragment, keep)?;
    let whole = serde_json::from_slice::<serde_json::Value>(&fragment).is_ok_and(|v| v.is_object());
    if whole {
        let mut f = file;
        f.write_all(b"\n")?;
        return Ok(Some(
            "its last line lacked only its newline: completed it".into(),
        ));
    }
    file.set_len(keep)?;
    Ok(Some(format!(
        "cut off a torn last line ({} bytes) left by an earlier run",
        len - keep
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("alltick-capture-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_torn_last_line_is_cut_and_a_whole_one_completed() {
        let d = temp("repair");
        let p = d.join("a.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"b\":").unwrap();
        let f = OpenOptions::new().append(true).read(true).open(&p).unwrap();
        assert!(repair_tail(&f).unwrap().unwrap().contains("5 bytes"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"a\":1}\n");
        assert_eq!(repair_tail(&f).unwrap(), None);
        std::fs::write(&p, "{\"a\":1}\n{\"b\":2}").unwrap();
        assert!(repair_tail(&f).unwrap().unwrap().contains("completed"));
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        // A file that is one torn line.
        std::fs::write(&p, "{\"tor").unwrap();
        repair_tail(&f).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"");
        // A torn piece longer than the scan: the whole lines before it stay.
        let mut text = b"{\"a\":1}\n".to_vec();
        text.resize(text.len() + (2 << 20), b'x');
        std::fs::write(&p, &text).unwrap();
        assert!(repair_tail(&f).unwrap().unwrap().contains("no newline"));
        let kept = std::fs::read(&p).unwrap();
        assert!(kept.starts_with(b"{\"a\":1}\n") && kept.ends_with(b"x\n"));
        assert_eq!(kept.len(), text.len() + 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn lines_go_to_the_file_of_their_period_and_directories_are_made() {
        let d = temp("periods");
        let pattern = Pattern::parse(&format!("{}/%Y/%m-%d.jsonl", d.display())).unwrap();
        let stats = Arc::new(Stats::default());
        let mut c = Capture::new(pattern, Duration::from_secs(1), false, stats);
        // 2026-11-30 23:59:59.999 and the next millisecond.
        let (a, b) = (1_796_083_199_999u64, 1_796_083_200_000u64);
        c.write(c.period_start(a), b"{\"time\":1}\n");
        c.write(c.period_start(b), b"{\"time\":2}\n");
        c.write(c.period_start(a), b"{\"time\":3}\n");
        c.sync_all();
        assert_eq!(
            std::fs::read_to_string(d.join("2026/11-30.jsonl")).unwrap(),
            "{\"time\":1}\n{\"time\":3}\n"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("2026/12-01.jsonl")).unwrap(),
            "{\"time\":2}\n"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_header_row_starts_a_new_file_and_an_appended_one_only_once() {
        let d = temp("header");
        let pattern = Pattern::parse(&format!("{}/%d.csv", d.display())).unwrap();
        std::fs::create_dir_all(&d).unwrap();
        // 2026-12-01 and 2026-12-02: the first file exists with its header.
        std::fs::write(d.join("01.csv"), "time\n1\n").unwrap();
        let (a, b) = (1_796_083_200_000u64, 1_796_169_600_000u64);
        for run in 0..2 {
            let mut c = Capture::new(
                pattern.clone(),
                Duration::from_secs(1),
                false,
                Arc::default(),
            );
            c.set_csv(b"time\n".to_vec());
            c.write(c.period_start(a), format!("{}\n", 2 + run).as_bytes());
            c.write(c.period_start(b), format!("{}\n", 4 + run).as_bytes());
            c.sync_all();
        }
        let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(read("01.csv"), "time\n1\n2\n3\n");
        assert_eq!(read("02.csv"), "time\n4\n5\n");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_refused_write_is_counted_and_marked_when_the_disk_takes_lines_again() {
        let d = temp("refused");
        // A directory where the file should be: every open fails.
        let pattern = Pattern::parse(&format!("{}/x.jsonl", d.display())).unwrap();
        std::fs::create_dir_all(d.join("x.jsonl")).unwrap();
        let stats = Arc::new(Stats::default());
        let mut c = Capture::new(pattern, Duration::from_secs(1), true, Arc::clone(&stats));
        c.write(
            0,
            b"{\"type\":\"trade\",\"code\":\"A.US\",\"time\":5}\n{\"type\":\"trade\",\"code\":\"B.US\",\"time\":9}\n",
        );
        assert_eq!(Stats::get(&stats.lost_disk), 2);
        std::fs::remove_dir(d.join("x.jsonl")).unwrap();
        c.write(0, b"{\"time\":10}\n");
        c.sync_all();
        let text = std::fs::read_to_string(d.join("x.jsonl")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "{\"time\":10}");
        let gap: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(gap["type"], "gap");
        assert_eq!(gap["connection"], serde_json::Value::Null);
        assert_eq!(gap["codes"], serde_json::json!(["A.US", "B.US"]));
        assert_eq!(
            (gap["from"].as_u64(), gap["to"].as_u64()),
            (Some(5), Some(9))
        );
        assert_eq!(gap["dropped"], 2);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_csv_file_that_the_disk_refused_gets_its_header_and_no_gap_line() {
        let d = temp("refused-csv");
        let pattern = Pattern::parse(&format!("{}/x.csv", d.display())).unwrap();
        std::fs::create_dir_all(d.join("x.csv")).unwrap();
        let stats = Arc::new(Stats::default());
        let mut c = Capture::new(pattern, Duration::from_secs(1), true, Arc::clone(&stats));
        c.set_csv(b"time,code\n".to_vec());
        c.write(0, b"5,A.US\n9,B.US\n");
        assert_eq!(Stats::get(&stats.lost_disk), 2);
        std::fs::remove_dir(d.join("x.csv")).unwrap();
        c.write(0, b"10,A.US\n");
        c.sync_all();
        assert_eq!(
            std::fs::read_to_string(d.join("x.csv")).unwrap(),
            "time,code\n10,A.US\n"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_gap_across_two_periods_goes_to_both_files() {
        let pattern = Pattern::parse("%Y-%m-%d.jsonl").unwrap();
        let c = Capture::new(pattern, Duration::from_secs(1), true, Arc::default());
        let gap = |from, to| Gap {
            connection: None,
            codes: vec![],
            from,
            to,
            reason: String::new(),
            dropped: None,
            heal: None,
        };
        assert_eq!(c.gap_periods(&gap(10, 20)).len(), 1);
        assert_eq!(
            c.gap_periods(&gap(10, 86_400_000 + 20)),
            vec![0, 86_400_000]
        );
    }
}
