//! Parquet files of a capture, made from crash-safe staging files.
//!
//! A Parquet file cannot be appended to and is unreadable until its footer
//! is written. So with `--format parquet --output PATTERN` the lines of
//! each period go first, whole, to a staging file beside the period's
//! Parquet file (`PATH.staging.jsonl`: the full JSON lines, written,
//! repaired and read back on restart exactly as a JSON capture), and the
//! period's Parquet file is made from it ([`Making`]): live, while the
//! lines are written, by a thread that follows the staging file
//! ([`super::live`]), finished when the period ends and at each clean
//! stop (made again from the staging file's lines when the next run goes
//! on with the period); and whole at once ([`finalize`]) on start for
//! every staging file newer than its Parquet file (a `kill -9` left it
//! so), and at the end of `history` and `replay`. The Parquet file is
//! written beside (`PATH.tmp`) and renamed: on disk it is always whole.
//! Gap lines, which are not rows, stay in the staging file beside it, as
//! do lines whose values a column cannot hold (each said); a failure (a
//! full disk) is said, and the staging file stays for the next stop or
//! start to try again.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::capture::pattern::{Pattern, PatternError};
use crate::form::parquet::{ParquetFile, RowError};
use crate::report::say;

/// Bytes of a staging file read at once.
const READ_BYTES: usize = 1 << 20;

/// What a staging file's name adds to its Parquet file's.
pub const STAGING_SUFFIX: &str = ".staging.jsonl";

/// The pattern of the staging files of the Parquet files of `pattern`.
pub fn staging_pattern(pattern: &Pattern) -> Result<Pattern, PatternError> {
    Pattern::parse(&format!("{}{STAGING_SUFFIX}", pattern.text()))
}

/// The Parquet file a staging file is made into.
pub fn parquet_of(staging: &Path) -> PathBuf {
    let name = staging.to_string_lossy();
    PathBuf::from(
        name.strip_suffix(STAGING_SUFFIX)
            .unwrap_or(&name)
            .to_string(),
    )
}

/// What making one Parquet file came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Made {
    /// Rows written.
    pub rows: u64,
    /// Lines that are not rows (gap lines): left in the staging file.
    pub beside: u64,
    /// Lines whose values a column cannot hold: said, left in the staging
    /// file.
    pub unfit: u64,
}

/// Make the Parquet file of `staging` (its columns `names`): written
/// beside, synced and renamed over the old one.
pub fn finalize(staging: &Path, names: &[&'static str]) -> io::Result<Made> {
    let mut making = Making::new(staging, names)?;
    match making.read_staging() {
        Ok(()) => making.finish(),
        Err(e) => {
            making.discard();
            Err(e)
        }
    }
}

/// A period's Parquet file being made: written as `PATH.tmp` from the
/// lines of its staging file, and renamed over `PATH` when finished.
pub struct Making {
    /// The staging file.
    staging: PathBuf,
    /// Where the file is written until it is whole.
    tmp: PathBuf,
    /// The file.
    file: ParquetFile<BufWriter<File>>,
    /// What went where so far.
    made: Made,
    /// Lines of the staging file read so far (to name a line refused).
    lines: u64,
    /// Bytes of the staging file read so far.
    read: u64,
    /// What is read of it at once.
    buf: Vec<u8>,
}

impl Making {
    /// Start the Parquet file of `staging` (its columns `names`), empty.
    pub fn new(staging: &Path, names: &[&'static str]) -> io::Result<Making> {
        let tmp = PathBuf::from(format!("{}.tmp", parquet_of(staging).display()));
        let out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let file = match ParquetFile::new(out, names) {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(io::Error::other(e));
            }
        };
        Ok(Making {
            staging: staging.to_path_buf(),
            tmp,
            file,
            made: Made::default(),
            lines: 0,
            read: 0,
            buf: vec![0; READ_BYTES],
        })
    }

    /// The staging file's whole lines, pushed; a torn last line, which
    /// the capture repairs when it appends, is left out.
    fn read_staging(&mut self) -> io::Result<()> {
        let file = File::open(&self.staging)?;
        let len = file.metadata()?.len();
        self.read_to(&file, len)
    }

    /// Push the whole lines of the staging file `file` from where the
    /// last read ended up to `len` (a last piece without its newline is
    /// left out: while the capture writes, `len` ends a whole write).
    pub fn read_to(&mut self, file: &File, len: u64) -> io::Result<()> {
        while self.read < len {
            let size = self.buf.len();
            let n = usize::try_from(len - self.read).map_or(size, |n| n.min(size));
            file.read_exact_at(&mut self.buf[..n], self.read)?;
            let whole = match self.buf[..n].iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                // A line longer than the buffer: a larger one.
                None if n == size => {
                    self.buf.resize(size * 2, 0);
                    continue;
                }
                None => return Ok(()),
            };
            let buf = std::mem::take(&mut self.buf);
            let pushed = self.lines(&buf[..whole]);
            self.buf = buf;
            pushed?;
            self.read += whole as u64;
        }
        Ok(())
    }

    /// Whole lines of the staging file (each with its newline), the next
    /// after those pushed before; an error only when the file could not
    /// be written (it is broken: [`Making::discard`] it).
    pub fn lines(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let (n, pushed) = self.file.push_first(bytes);
            bytes = &bytes[n..];
            self.pushed(pushed)?;
        }
        Ok(())
    }

    /// What came of a line: a row, or a line beside (a gap line), or one
    /// said and left in the staging file.
    fn pushed(&mut self, pushed: Result<(), RowError>) -> io::Result<()> {
        self.lines += 1;
        match pushed {
            Ok(()) => {}
            Err(RowError::NotARow(_)) => self.made.beside += 1,
            Err(RowError::Write(e)) => return Err(io::Error::other(e)),
            Err(e @ RowError::Unfit { .. }) => {
                self.made.unfit += 1;
                if self.made.unfit <= 5 {
                    say(format!(
                        "{}:{}: not in {}: {e} (the line stays in the staging file)",
                        self.staging.display(),
                        self.lines,
                        parquet_of(&self.staging).display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Finish the file: footer, sync, renamed over the Parquet file (and
    /// the rename synced); on failure the `.tmp` is removed.
    pub fn finish(self) -> io::Result<Made> {
        let Making {
            staging,
            tmp,
            file,
            mut made,
            ..
        } = self;
        made.rows = file.rows();
        let written = file
            .finish()
            .map_err(io::Error::other)
            .and_then(|out| out.into_inner().map_err(|e| e.into_error()))
            .and_then(|f| f.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let target = parquet_of(&staging);
        fs::rename(&tmp, &target)?;
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename itself on disk.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(made)
    }

    /// Give it up: its `.tmp` removed.
    pub fn discard(self) {
        let tmp = self.tmp;
        drop(self.file);
        let _ = fs::remove_file(&tmp);
    }
}

/// Make the Parquet file of every staging file of `staging` that is newer
/// than it (or has none): on start, what a `kill -9` or a failed write
/// left. Failures are said; the staging files stay.
pub fn catch_up(staging: &Pattern, names: &[&'static str]) {
    for path in staging.existing() {
        if up_to_date(&path) {
            continue;
        }
        report(&path, finalize(&path, names));
    }
}

/// Whether the Parquet file of `staging` is at least as new as it.
pub fn up_to_date(staging: &Path) -> bool {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(staging), modified(&parquet_of(staging))) {
        (Some(s), Some(p)) => p >= s,
        _ => false,
    }
}

/// Say what making the Parquet file of `staging` came to, when there is
/// something to say.
pub fn report(staging: &Path, result: io::Result<Made>) {
    match result {
        Ok(m) if m.unfit > 0 => say(format!(
            "{}: {} rows; {} lines its columns cannot hold stay in {}",
            parquet_of(staging).display(),
            m.rows,
            m.unfit,
            staging.display()
        )),
        Ok(_) => {}
        Err(e) => say(format!(
            "cannot write {} ({e}): its lines stay in {}, and the next stop or start tries again",
            parquet_of(staging).display(),
            staging.display()
        )),
    }
}

/// One Parquet file written as lines come (stdout): rows into it; a gap
/// line, which is not a row, said on stderr as `gap: {…}`; a line whose
/// values a column cannot hold said on stderr with the line, so that it
/// is not lost.
pub struct ParquetStream<W: io::Write + Send> {
    file: ParquetFile<W>,
    /// Lines said on stderr instead.
    pub unfit: u64,
    /// Lines that are not rows of this file (not gap lines): the first
    /// said, all counted.
    pub not_rows: u64,
}

impl<W: io::Write + Send> ParquetStream<W> {
    /// A file of the columns `names` into `out`.
    pub fn new(out: W, names: &[&'static str]) -> io::Result<ParquetStream<W>> {
        Ok(ParquetStream {
            file: ParquetFile::new(out, names).map_err(io::Error::other)?,
            unfit: 0,
            not_rows: 0,
        })
    }

    /// Whole lines (each with its newline); the rows added.
    pub fn lines(&mut self, buf: &[u8]) -> io::Result<u64> {
        let before = self.file.rows();
        let mut rest = buf;
        while !rest.is_empty() {
            let (n, pushed) = self.file.push_first(rest);
            let line = &rest[..n];
            rest = &rest[n..];
            let text =
                || String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line)).into_owned();
            match pushed {
                Ok(()) => {}
                Err(RowError::NotARow(_)) if line.starts_with(b"{\"type\":\"gap\"") => {
                    say(format!("gap: {}", text()));
                }
                Err(RowError::NotARow(why)) => {
                    self.not_rows += 1;
                    if self.not_rows == 1 {
                        say(format!(
                            "left out of the Parquet file ({why}; such lines are counted): {}",
                            text()
                        ));
                    }
                }
                Err(RowError::Write(e)) => return Err(io::Error::other(e)),
                Err(e) => {
                    self.unfit += 1;
                    say(format!("not in the Parquet file: {e}: {}", text()));
                }
            }
        }
        Ok(self.file.rows() - before)
    }

    /// The last row group and the footer: the file is whole.
    pub fn finish(self) -> io::Result<W> {
        if self.not_rows > 0 {
            say(format!(
                "{} left out of the Parquet file: not rows of it",
                crate::report::count(self.not_rows as usize, "line")
            ));
        }
        self.file.finish().map_err(io::Error::other)
    }
}
