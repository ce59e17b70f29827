//! Reading a capture's tail back on start (`--output`, `--resume FILE`), so
//! that a restarted process writes nothing twice.
//!
//! The last line of each code is looked for from the end of the newest
//! file backwards, a chunk at a time ([`tail::lines_back`]), within
//! [`TAIL_BYTES`] over all the files: a restart costs the same whatever the size of the capture, and
//! memory holds one chunk and one entry per code. A code whose last line
//! lies further back is not known; a re-push of its last trade would then
//! be written again, and start says how many bytes were read.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::pattern::Pattern;
use super::tail::{self, TAIL_BYTES};
use crate::form::csv;
use crate::report::say;

use crate::wire::repeat::Last;

/// What was learnt from a capture's tail.
#[derive(Debug, Default)]
pub struct Resumed {
    /// Per (depth?, code): what its last line carried.
    pub last: HashMap<(bool, String), Last>,
    /// The `time` of the newest file's last line, if any.
    pub newest_time: Option<u64>,
    /// Bytes read.
    pub bytes: u64,
    /// Files read (from the newest).
    pub files: usize,
}

impl Resumed {
    /// One line for stderr: what was read and found.
    pub fn summary(&self) -> String {
        format!(
            "resume: read the last {:.1} MiB of {}: the last line of {}{}",
            self.bytes as f64 / (1024.0 * 1024.0),
            crate::report::count(self.files, "file"),
            crate::report::count(self.last.len(), "code"),
            match self.newest_time {
                Some(t) => format!(", the newest at {}", crate::wire::calendar::iso(t)),
                None => String::new(),
            }
        )
    }
}

impl Resumed {
    /// Add what a capture's memory file says ([`super::memory`]): for
    /// each code the later of it and the tail's last line; the newest time
    /// the latest of all.
    pub fn remember(&mut self, path: &Path) {
        let kept = super::memory::load(path);
        if kept.is_empty() {
            return;
        }
        for (key, last) in kept {
            let (seq, time) = last.parts();
            self.newest_time = Some(self.newest_time.map_or(time, |t| t.max(time)));
            let known = self.last.entry(key).or_insert(last);
            // The later push wins; of one time, the one that knows its seq
            // (a row without a seq column reads as seq 0).
            let (known_seq, known_time) = known.parts();
            if (known_time, known_seq) < (time, seq) {
                *known = last;
            }
        }
        say(format!(
            "resume: {} remembers the last push of {}",
            path.display(),
            crate::report::count(self.last.len(), "code")
        ));
    }
}

/// Read back `files`, newest first, within [`TAIL_BYTES`].
pub fn read_back(files: &[PathBuf]) -> Resumed {
    read_back_within(files, TAIL_BYTES)
}

/// [`read_back`] within `budget` bytes.
pub fn read_back_within(files: &[PathBuf], budget: u64) -> Resumed {
    let mut r = Resumed::default();
    for path in files {
        if r.bytes >= budget {
            break;
        }
        let Ok(file) = File::open(path) else {
            continue;
        };
        r.files += 1;
        let newest = r.files == 1;
        let layout = Layout::of(&file);
        if let Layout::Csv(c) = &layout
            && c.code.is_none()
        {
            say(format!(
                "resume: {} has no code column: nothing learnt from it",
                path.display()
            ));
            continue;
        }
        read_file_back(&file, budget, newest, &layout, &mut r);
    }
    r
}

/// Lines of `file` from its end backwards, until `budget` is spent.
fn read_file_back(file: &File, budget: u64, newest: bool, layout: &Layout, r: &mut Resumed) {
    let mut first_line = newest;
    let mut bytes = r.bytes;
    // A file that cannot be read on is left where it stopped.
    let _ = tail::lines_back(file, budget, &mut bytes, |_, line| {
        let learnt = match layout {
            Layout::Json => learn(line, r),
            Layout::Csv(c) => c.learn(line, r),
        };
        if let Some(time) = learnt
            && first_line
        {
            r.newest_time = Some(time);
            first_line = false;
        }
        true
    });
    r.bytes = bytes;
}

/// Remember `line`'s code if it is the first (newest) seen; its time (a
/// bar's start).
fn learn(line: &[u8], r: &mut Resumed) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let depth = match v["type"].as_str()? {
        "trade" => false,
        "depth" => true,
        // A bar says nothing of its trades' seq (the memory file does):
        // only its start, for the time not running.
        "bar" => return v["start"].as_u64(),
        _ => return None,
    };
    let code = v["code"].as_str()?;
    let time = v["time"].as_u64()?;
    let seq = v["seq"].as_u64().unwrap_or(0);
    r.last
        .entry((depth, code.to_string()))
        .or_insert_with(|| Last::resumed(seq, time));
    Some(time)
}

/// How a file's lines are read back: JSON lines, or CSV rows under the
/// header row that starts the file.
enum Layout {
    Json,
    Csv(Columns),
}

/// Where a CSV file's values stand, by its header row.
struct Columns {
    bars: bool,
    code: Option<usize>,
    seq: Option<usize>,
    time: Option<usize>,
    start: Option<usize>,
    end: Option<usize>,
}

impl Layout {
    /// JSON unless the file starts with a CSV header row.
    fn of(file: &File) -> Layout {
        let Ok(Some(names)) = tail::csv_header(file) else {
            return Layout::Json;
        };
        let at = |n: &str| names.iter().position(|c| c == n);
        Layout::Csv(Columns {
            bars: at("interval").is_some() || at("trades").is_some() || at("end").is_some(),
            code: at("code"),
            seq: at("seq"),
            time: at("time"),
            start: at("start"),
            end: at("end"),
        })
    }
}

impl Columns {
    /// [`learn`] for a CSV row.
    fn learn(&self, row: &[u8], r: &mut Resumed) -> Option<u64> {
        let cells = csv::cells(row);
        let num = |i: Option<usize>| -> Option<u64> {
            std::str::from_utf8(cells.get(i?)?).ok()?.parse().ok()
        };
        let code = String::from_utf8(cells.get(self.code?)?.clone()).ok()?;
        if code == "code" {
            return None; // the header row
        }
        if self.bars {
            return num(self.start).or(num(self.end));
        }
        let time = num(self.time)?;
        let seq = num(self.seq).unwrap_or(0);
        r.last
            .entry((false, code))
            .or_insert_with(|| Last::resumed(seq, time));
        Some(time)
    }
}

/// What a capture already holds: with `--output` its newest files (a torn
/// last line repaired first), with `--resume` its FILE.
pub fn read_capture(output: Option<&Pattern>, resume: Option<&Path>) -> Resumed {
    let files = match (output, resume) {
        (Some(pattern), _) => {
            let files = pattern.existing();
            // Two files may be open at a period's end.
            for path in files.iter().take(2) {
                repair(path);
            }
            files
        }
        (None, Some(file)) => {
            if !file.exists() {
                say(format!(
                    "resume: {} does not exist yet: nothing to learn",
                    file.display()
                ));
                return Resumed::default();
            }
            if is_stdout(file) {
                repair(file);
            } else if ends_torn(file) {
                say(format!(
                    "resume: {} ends in a torn line; not cut, since stdout is not that file",
                    file.display()
                ));
            }
            vec![file.to_path_buf()]
        }
        (None, None) => return Resumed::default(),
    };
    let resumed = read_back(&files);
    if resumed.files > 0 {
        say(resumed.summary());
    }
    resumed
}

/// Make `path` end with a whole line, saying what was done.
fn repair(path: &Path) {
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .read(true)
        .open(path);
    match opened.and_then(|f| super::write::repair_tail(&f)) {
        Ok(Some(note)) => say(format!("{}: {note}", path.display())),
        Ok(None) => {}
        Err(e) => say(format!("cannot check the end of {}: {e}", path.display())),
    }
}

/// Whether stdout is `path` (`>>FILE` with `--resume FILE`).
pub fn is_stdout(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata("/proc/self/fd/1"),
        std::fs::metadata(path),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether `path`'s last byte is not a newline.
fn ends_torn(path: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut last = [0u8; 1];
    len > 0 && f.read_exact_at(&mut last, len - 1).is_ok() && last[0] != b'\n'
}

/// Whether stdout appends to lines written before: a regular file that
/// is not empty (`>>FILE`), so a CSV header row is not written again.
pub fn stdout_has_lines() -> bool {
    std::fs::metadata("/proc/self/fd/1").is_ok_and(|m| m.is_file() && m.len() > 0)
}

#[cfg(test)]
mod tests {
    use super::super::tail::CHUNK;
    use super::*;
    use crate::wire::repeat::Seen;

    fn line(code: &str, seq: u64, time: u64) -> String {
        format!(
            "{{\"type\":\"trade\",\"symbol\":\"{code}\",\"code\":\"{code}\",\"seq\":{seq},\"time\":{time},\"price\":1.5,\"volume\":1,\"turnover\":null,\"side\":null}}\n"
        )
    }

    #[test]
    fn the_last_line_of_each_code_is_learnt_across_chunks_and_files() {
        let d = std::env::temp_dir().join(format!("alltick-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let mut old = String::new();
        old.push_str(&line("OLD.US", 7, 50));
        old.push_str(&line("A.US", 1, 100));
        let mut new = String::new();
        // Enough lines to span several chunks.
        for i in 0..5000u64 {
            new.push_str(&line("A.US", 10 + i, 1000 + i));
            if i % 7 == 0 {
                new.push_str(&line("B.US", i, 1000 + i));
            }
        }
        new.push_str("{\"type\":\"gap\",\"connection\":null,\"codes\":[],\"from\":1,\"to\":2,\"reason\":\"x\"}\n");
        std::fs::write(d.join("1.jsonl"), old).unwrap();
        std::fs::write(d.join("2.jsonl"), &new).unwrap();
        let r = read_back(&[d.join("2.jsonl"), d.join("1.jsonl")]);
        assert_eq!(r.files, 2);
        assert_eq!(r.newest_time, Some(1000 + 4999));
        let mut a = r.last[&(false, "A.US".to_string())];
        assert_eq!(a.see(10 + 4999, 1000 + 4999), Seen::Repeat);
        assert_eq!(a.see(10 + 5000, 1000 + 5000), Seen::New);
        let mut b = r.last[&(false, "B.US".to_string())];
        assert_eq!(b.see(4998, 1000 + 4998), Seen::Repeat);
        assert!(r.last.contains_key(&(false, "OLD.US".to_string())));
        // Within a small budget only the newest chunk is read.
        let small = read_back_within(&[d.join("2.jsonl"), d.join("1.jsonl")], CHUNK);
        assert_eq!(small.bytes, CHUNK);
        assert!(!small.last.contains_key(&(false, "OLD.US".to_string())));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn csv_rows_and_bar_lines_are_learnt_by_their_header_and_keys() {
        let d = std::env::temp_dir().join(format!("alltick-resume-csv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let trades = "time,code,seq,price\n1000,A.US,5,1.5\n2000,\"B,\"\"X\"\"\",9,2\n";
        std::fs::write(d.join("t.csv"), trades).unwrap();
        let r = read_back(&[d.join("t.csv")]);
        assert_eq!(r.newest_time, Some(2000));
        let mut a = r.last[&(false, "A.US".to_string())];
        assert_eq!(a.see(5, 1000), Seen::Repeat);
        assert!(r.last.contains_key(&(false, "B,\"X\"".to_string())));
        let bars = "code,interval,start,end,close\nA.US,1m,0,60000,1\nB.US,1m,60000,120000,1\n";
        std::fs::write(d.join("b.csv"), bars).unwrap();
        let r = read_back(&[d.join("b.csv")]);
        assert!(r.last.is_empty(), "a bar says nothing of seq");
        assert_eq!(r.newest_time, Some(60_000), "the newest bar's start");
        let json = "{\"type\":\"bar\",\"symbol\":\"C\",\"code\":\"C.US\",\"interval\":\"1m\",\"start\":120000,\"end\":180000}\n";
        std::fs::write(d.join("b.jsonl"), json).unwrap();
        let mut r = read_back(&[d.join("b.jsonl")]);
        assert_eq!(r.newest_time, Some(120_000));
        // The memory file beside it knows each code's last push.
        std::fs::write(
            d.join("m.last"),
            "{\"depth\":false,\"code\":\"C.US\",\"seq\":9,\"time\":150000}\n",
        )
        .unwrap();
        r.remember(&d.join("m.last"));
        assert_eq!(r.newest_time, Some(150_000));
        let mut c = r.last[&(false, "C.US".to_string())];
        assert_eq!(c.see(9, 150_000), Seen::Repeat);
        // A row without seq and the memory of the same push: the memory's
        // seq counts.
        std::fs::write(d.join("lean.csv"), "time,code\n150000,C.US\n").unwrap();
        let mut r = read_back(&[d.join("lean.csv")]);
        r.remember(&d.join("m.last"));
        let mut c = r.last[&(false, "C.US".to_string())];
        assert_eq!(c.see(9, 150_000), Seen::Repeat);
        let _ = std::fs::remove_dir_all(&d);
    }
}
