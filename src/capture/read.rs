//! Captured lines read back, one file at a time, plain or gzip-compressed,
//! and several files merged into one stream in time order: the earliest of
//! the files' next lines first. Each file's own lines keep their order (a
//! capture is in the order lines were written).
//!
//! A line is kept byte for byte; only its kind, time and code are looked
//! at, by position, without decoding it. A line that is not the tool's
//! JSON is reported as `FILE:LINE: reason` and skipped. A compressed file
//! whose end is torn is read up to the tear and reported. Memory holds one
//! line and one read buffer per file, whatever the files' sizes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::form::line::{LineType, TradeLine, find, number_after, text_after};
use crate::report::say;

/// Read buffer per file.
const READ_BUF: usize = 256 * 1024;

/// A line longer than this is not one of ours.
const MAX_LINE: usize = 1 << 20;

/// One captured line, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The bytes, with the newline.
    pub bytes: Vec<u8>,
    /// Its time, ms since the epoch (a gap's `to`).
    pub time: u64,
    /// What it is.
    pub kind: LineType,
    /// The index of its file among the inputs.
    pub file: usize,
    /// Its number in its file, from 1.
    pub number: u64,
}

impl Line {
    /// The `code` of a trade or depth line.
    pub fn code(&self) -> Option<&str> {
        text_after(&self.bytes, b"\"code\":\"")
    }

    /// The codes a gap line names.
    pub fn gap_codes(&self) -> Vec<&str> {
        let Some(at) = find(&self.bytes, b"\"codes\":[") else {
            return Vec::new();
        };
        let rest = &self.bytes[at + 9..];
        let end = rest.iter().position(|&b| b == b']').unwrap_or(rest.len());
        rest[..end]
            .split(|&b| b == b',')
            .filter_map(|c| {
                let c = c.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
                std::str::from_utf8(c).ok()
            })
            .collect()
    }
}

/// Why a line is not one of the tool's, or `Ok` with its kind and time.
pub fn classify(line: &[u8]) -> Result<(LineType, u64), &'static str> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let rest = body
        .strip_prefix(b"{\"type\":\"")
        .ok_or("not a line of alltick-stream (no {\"type\": at its start)")?;
    if body.last() != Some(&b'}') {
        return Err("not a whole JSON object (torn?)");
    }
    let (kind, key): (LineType, &[u8]) = if rest.starts_with(b"trade\"") {
        (LineType::Trade, b"\"time\":")
    } else if rest.starts_with(b"depth\"") {
        (LineType::Depth, b"\"time\":")
    } else if rest.starts_with(b"bar\"") || rest.starts_with(b"kline\"") {
        (LineType::Bar, b"\"start\":")
    } else if rest.starts_with(b"gap\"") {
        // A gap is written where the data resumes: it sorts by its end.
        (LineType::Gap, b"\"to\":")
    } else {
        return Err("an unknown type");
    };
    let time = match kind {
        LineType::Trade => TradeLine::time_of(body),
        _ => None,
    };
    let time = time.or_else(|| number_after(body, key)).ok_or("no time")?;
    Ok((kind, time))
}

/// One input file, read line by line.
pub struct Source {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    index: usize,
    number: u64,
    /// Lines skipped as not the tool's.
    pub skipped: u64,
    done: bool,
    /// Buffers of lines already written, to be filled again.
    spare: Vec<Vec<u8>>,
}

impl Source {
    /// Open `path` (gzip when it ends in `.gz` or starts with gzip's magic).
    pub fn open(path: &Path, index: usize) -> io::Result<Source> {
        let mut file = File::open(path)?;
        let mut magic = [0u8; 2];
        let n = file.read(&mut magic)?;
        let file = File::open(path)?;
        let gz = path.extension().is_some_and(|e| e == "gz") || (n == 2 && magic == [0x1f, 0x8b]);
        let reader: Box<dyn BufRead + Send> = if gz {
            Box::new(BufReader::with_capacity(
                READ_BUF,
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(READ_BUF, file)),
            ))
        } else {
            Box::new(BufReader::with_capacity(READ_BUF, file))
        };
        Ok(Source {
            path: path.to_path_buf(),
            reader,
            index,
            number: 0,
            skipped: 0,
            done: false,
            spare: Vec::new(),
        })
    }

    /// The next line of the tool's, reporting and skipping others.
    pub fn next_line(&mut self) -> Option<Line> {
        while !self.done {
            let mut bytes = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(256));
            bytes.clear();
            match (&mut self.reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut bytes)
            {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.number += 1;
                    if !bytes.ends_with(b"\n") {
                        if bytes.len() > MAX_LINE {
                            self.skip("a line longer than 1 MiB");
                            self.skip_rest_of_line();
                            continue;
                        }
                        // The last line of the file, without its newline.
                        if classify(&bytes).is_ok() {
                            bytes.push(b'\n');
                        } else {
                            self.skip("a torn last line");
                            self.done = true;
                            continue;
                        }
                    }
                    match classify(&bytes) {
                        Ok((kind, time)) => {
                            return Some(Line {
                                bytes,
                                time,
                                kind,
                                file: self.index,
                                number: self.number,
                            });
                        }
                        Err(why) => self.skip(why),
                    }
                }
                Err(e) => {
                    say(format!(
                        "{}: cannot read on after line {} ({e}): read up to there",
                        self.path.display(),
                        self.number
                    ));
                    self.done = true;
                }
            }
        }
        None
    }

    fn skip(&mut self, why: &str) {
        self.skipped += 1;
        say(format!(
            "{}:{}: {why}; skipped",
            self.path.display(),
            self.number
        ));
    }

    fn skip_rest_of_line(&mut self) {
        let mut sink = Vec::new();
        loop {
            sink.clear();
            match (&mut self.reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut sink)
            {
                Ok(0) | Err(_) => return,
                Ok(_) if sink.ends_with(b"\n") => return,
                Ok(_) => {}
            }
        }
    }
}

/// Several sources merged in time order: the earliest head first; equal
/// times in the order of the files, then of their lines.
pub struct Merge {
    sources: Vec<Source>,
    heads: BinaryHeap<Reverse<(u64, usize, u64)>>,
    lines: Vec<Option<Line>>,
}

impl Merge {
    /// Merge `sources` (in the order the files were given).
    pub fn new(mut sources: Vec<Source>) -> Merge {
        let mut heads = BinaryHeap::new();
        let mut lines = Vec::with_capacity(sources.len());
        for (i, s) in sources.iter_mut().enumerate() {
            let l = s.next_line();
            if let Some(l) = &l {
                heads.push(Reverse((l.time, i, l.number)));
            }
            lines.push(l);
        }
        Merge {
            sources,
            heads,
            lines,
        }
    }

    /// Give a written line's buffer back, to be filled again.
    pub fn recycle(&mut self, line: Line) {
        let spare = &mut self.sources[line.file].spare;
        if spare.len() < 4 {
            spare.push(line.bytes);
        }
    }

    /// Lines skipped so far, over all files.
    pub fn skipped(&self) -> u64 {
        self.sources.iter().map(|s| s.skipped).sum()
    }
}

impl Iterator for Merge {
    type Item = Line;

    fn next(&mut self) -> Option<Line> {
        let Reverse((_, i, _)) = self.heads.pop()?;
        let line = self.lines[i].take()?;
        let next = self.sources[i].next_line();
        if let Some(n) = &next {
            self.heads.push(Reverse((n.time, i, n.number)));
        }
        self.lines[i] = next;
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn trade(code: &str, time: u64) -> String {
        format!(
            "{{\"type\":\"trade\",\"symbol\":\"{code}\",\"code\":\"{code}\",\"seq\":1,\"time\":{time},\"price\":1.5,\"volume\":1,\"turnover\":null,\"side\":null}}\n"
        )
    }

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("alltick-source-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn lines_are_told_by_kind_and_time_and_others_refused() {
        assert_eq!(
            classify(trade("A.US", 5).as_bytes()),
            Ok((LineType::Trade, 5))
        );
        let gap = b"{\"type\":\"gap\",\"connection\":null,\"codes\":[\"A.US\",\"B.US\"],\"from\":7,\"to\":9,\"reason\":\"x\"}\n";
        assert_eq!(classify(gap), Ok((LineType::Gap, 9)));
        let l = Line {
            bytes: gap.to_vec(),
            time: 7,
            kind: LineType::Gap,
            file: 0,
            number: 1,
        };
        assert_eq!(l.gap_codes(), ["A.US", "B.US"]);
        for bad in [
            &b"hello\n"[..],
            b"{\"type\":\"trade\",\"code\":\"A\"}\n",
            b"{\"type\":\"trade\",\"time\":5\n",
            b"{\"type\":\"quote\",\"time\":5}\n",
            b"{\"a\":1}\n",
        ] {
            assert!(classify(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn files_merge_in_time_order_and_equal_times_keep_file_order() {
        let d = temp("merge");
        std::fs::write(d.join("a"), trade("A", 1) + &trade("A", 5) + &trade("A", 9)).unwrap();
        std::fs::write(
            d.join("b"),
            trade("B", 2) + "junk\n" + &trade("B", 5) + &trade("B", 7),
        )
        .unwrap();
        let sources = vec![
            Source::open(&d.join("a"), 0).unwrap(),
            Source::open(&d.join("b"), 1).unwrap(),
        ];
        let mut m = Merge::new(sources);
        let got: Vec<(u64, usize)> = m.by_ref().map(|l| (l.time, l.file)).collect();
        assert_eq!(got, [(1, 0), (2, 1), (5, 0), (5, 1), (7, 1), (9, 0)]);
        assert_eq!(m.skipped(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_gzip_file_torn_at_its_end_is_read_up_to_the_tear() {
        let d = temp("gz");
        let mut text = String::new();
        for t in 0..2000 {
            text.push_str(&trade("A.US", t));
        }
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(text.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        std::fs::write(d.join("whole.jsonl.gz"), &gz).unwrap();
        let whole: Vec<Line> = {
            let mut s = Source::open(&d.join("whole.jsonl.gz"), 0).unwrap();
            std::iter::from_fn(|| s.next_line()).collect()
        };
        assert_eq!(whole.len(), 2000);
        assert_eq!(whole.concat_bytes(), text.as_bytes());
        std::fs::write(d.join("torn.jsonl.gz"), &gz[..gz.len() * 2 / 3]).unwrap();
        let mut s = Source::open(&d.join("torn.jsonl.gz"), 0).unwrap();
        let torn: Vec<Line> = std::iter::from_fn(|| s.next_line()).collect();
        assert!(!torn.is_empty() && torn.len() < 2000, "{}", torn.len());
        // What was read is exactly the start of the file, line by line.
        assert!(text.as_bytes().starts_with(&torn.concat_bytes()));
        let _ = std::fs::remove_dir_all(&d);
    }

    trait Concat {
        fn concat_bytes(&self) -> Vec<u8>;
    }

    impl Concat for Vec<Line> {
        fn concat_bytes(&self) -> Vec<u8> {
            self.iter().flat_map(|l| l.bytes.clone()).collect()
        }
    }
}
