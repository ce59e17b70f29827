//! The Parquet files of a live capture made while its lines are written
//! ([`Live`]), not all at once at the end of their period or run.
//!
//! Each period's staging file being written has a thread beside the
//! writer that follows it: told the staging file's length after each
//! whole write (and woken once a MiB has come), it reads the new lines
//! back (from the page cache) and pushes their rows into the period's
//! Parquet file ([`Making`], written as `PATH.tmp`, its row groups
//! flushed to it as they fill). Its first
//! read is of what the staging file held from an earlier run: one pass,
//! at start only. The writer never waits for it: the staging file is
//! the buffer between them, so memory stays bounded however far it
//! lags. When the period ends (on the thread) or the run stops, it reads
//! to the staging file's last whole write and finishes the file, which
//! is renamed over `PATH`: the Parquet file on disk is always whole, and
//! holds exactly the staging file's rows. The staging file stays the
//! record: a batch the disk refused is in neither; a `kill -9` leaves a
//! staging file newer than its Parquet file, made on the next start
//! ([`super::parquet::catch_up`]). A Parquet file that fails (a full
//! disk) is said and given up until its period ends or the run stops,
//! and then made from its staging file ([`super::parquet::finalize`]).

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::parquet::{self, Making};

/// Staging files followed at once, at most: the current period's and the
/// one before it (late lines near a boundary), as the capture keeps open.
const FOLLOWED: usize = 2;

/// Bytes written to a staging file before its follower is woken to read
/// them: a read of a few hundred lines costs less than the thread's wake.
const WAKE_BYTES: u64 = 1 << 20;

/// The Parquet files of a capture's staging files, made as lines are
/// written to them.
pub struct Live {
    /// The columns.
    names: Vec<&'static str>,
    /// The staging files followed, oldest first.
    followed: Vec<Follower>,
    /// Threads finishing or making files, by staging file.
    finishing: Vec<(PathBuf, JoinHandle<()>)>,
    /// Staging files whose Parquet file failed as lines came: made from
    /// the staging file when the period ends or the run stops.
    failed: BTreeSet<PathBuf>,
}

/// A thread following a staging file.
struct Follower {
    staging: PathBuf,
    /// The staging file's length after its last whole write.
    written: Arc<AtomicU64>,
    /// A word that it grew; dropped, the end: read to `written`, finish.
    wake: Sender<()>,
    /// `written` when it was last woken.
    woken: u64,
    thread: JoinHandle<()>,
}

impl Live {
    /// Parquet files of the columns `names`.
    pub fn new(names: Vec<&'static str>) -> Live {
        Live {
            names,
            followed: Vec::new(),
            finishing: Vec::new(),
            failed: BTreeSet::new(),
        }
    }

    /// Whole lines were just written to `staging`, which is `len` bytes
    /// long now.
    pub fn written(&mut self, staging: &Path, len: u64) {
        if self.failed.contains(staging) {
            return;
        }
        let Some(i) = self.followed.iter().position(|f| f.staging == staging) else {
            return self.follow(staging, len);
        };
        let f = &mut self.followed[i];
        if f.thread.is_finished() {
            // It ends by itself only when its file failed (said).
            let f = self.followed.remove(i);
            let _ = f.thread.join();
            self.failed.insert(staging.to_path_buf());
            return;
        }
        f.written.store(len, Ordering::Release);
        // Woken for a piece worth reading, not for each write.
        if len >= f.woken + WAKE_BYTES {
            f.woken = len;
            let _ = f.wake.try_send(());
        }
    }

    /// Start following `staging`, `len` bytes long, once any earlier
    /// file of it is finished.
    fn follow(&mut self, staging: &Path, len: u64) {
        self.join(staging);
        if self.followed.len() >= FOLLOWED {
            let oldest = self.followed.remove(0);
            self.end(oldest);
        }
        let started = File::open(staging).and_then(|file| {
            let making = Making::new(staging, &self.names)?;
            let written = Arc::new(AtomicU64::new(len));
            let (wake, woken) = crossbeam_channel::bounded(1);
            let (path, shared) = (staging.to_path_buf(), Arc::clone(&written));
            let thread = std::thread::Builder::new()
                .name("parquet-rows".into())
                .spawn(move || {
                    let made = rows(making, &file, &shared, &woken);
                    parquet::report(&path, made);
                })?;
            Ok(Follower {
                staging: staging.to_path_buf(),
                written,
                wake,
                woken: len,
                thread,
            })
        });
        match started {
            Ok(f) => self.followed.push(f),
            Err(e) => {
                parquet::report(staging, Err(e));
                self.failed.insert(staging.to_path_buf());
            }
        }
    }

    /// The period of `staging` ended: its file finished on its thread
    /// (or, if it failed, made from the staging file on another).
    pub fn ended(&mut self, staging: &Path) {
        if let Some(i) = self.followed.iter().position(|f| f.staging == staging) {
            let f = self.followed.remove(i);
            self.end(f);
        } else if self.failed.remove(staging) {
            let (path, names) = (staging.to_path_buf(), self.names.clone());
            let handle = std::thread::spawn(move || {
                parquet::report(&path, parquet::finalize(&path, &names));
            });
            self.finishing.push((staging.to_path_buf(), handle));
        }
    }

    /// Tell `f`'s thread to finish; kept to be waited for.
    fn end(&mut self, f: Follower) {
        drop(f.wake);
        self.finishing.push((f.staging, f.thread));
    }

    /// Wait for the threads finishing the file of `staging`.
    fn join(&mut self, staging: &Path) {
        let (mine, others) = std::mem::take(&mut self.finishing)
            .into_iter()
            .partition(|(s, _)| s == staging);
        self.finishing = others;
        for (_, handle) in mine {
            let _ = handle.join();
        }
    }

    /// The end (a clean stop): every file finished, the threads waited
    /// for. Those that failed are left to be made from their staging
    /// files.
    pub fn finish(&mut self) {
        for f in std::mem::take(&mut self.followed) {
            self.end(f);
        }
        for (_, handle) in std::mem::take(&mut self.finishing) {
            let _ = handle.join();
        }
    }
}

/// A follower's thread: the rows of `file` pushed as it grows to
/// `written`, until `woken` is closed; then the last ones, and the file
/// finished. On a failure the `.tmp` is removed.
fn rows(
    mut making: Making,
    file: &File,
    written: &AtomicU64,
    woken: &Receiver<()>,
) -> io::Result<parquet::Made> {
    let result = loop {
        if let Err(e) = making.read_to(file, written.load(Ordering::Acquire)) {
            break Err(e);
        }
        if woken.recv().is_err() {
            // Closed after the last write's length was stored.
            break making.read_to(file, written.load(Ordering::Acquire));
        }
    };
    match result {
        Ok(()) => making.finish(),
        Err(e) => {
            making.discard();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use parquet::file::reader::{FileReader, SerializedFileReader};

    use crate::capture::pattern::Pattern;
    use crate::capture::write::Capture;
    use crate::form::line::TRADE_KEYS;

    fn trade(time: u64, seq: u64) -> String {
        format!(
            "{{\"type\":\"trade\",\"symbol\":\"A.US\",\"code\":\"A.US\",\"seq\":{seq},\"time\":{time},\"price\":1.5,\"volume\":2,\"turnover\":3,\"side\":null}}\n"
        )
    }

    fn rows(path: &std::path::Path) -> i64 {
        let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
        reader.metadata().file_metadata().num_rows()
    }

    #[test]
    fn each_period_s_file_holds_its_staging_file_s_rows_across_an_end_and_a_restart() {
        let d = std::env::temp_dir().join(format!("alltick-live-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let text = format!("{}/%d.parquet.staging.jsonl", d.display());
        let (day1, day2) = (1_796_083_200_000u64, 1_796_169_600_000u64);
        for run in 0..2u64 {
            let pattern = Pattern::parse(&text).unwrap();
            let mut c = Capture::new(pattern, Duration::from_secs(1), false, Default::default());
            c.make_parquet(TRADE_KEYS.to_vec());
            let mut batch = String::new();
            for i in 0..1000 {
                batch.push_str(&trade(day1 + i, run * 10_000 + i));
            }
            c.write(c.period_start(day1), batch.as_bytes());
            c.write(c.period_start(day1), b"{\"type\":\"gap\"}\n");
            // The next period ends the first; a late line reopens it.
            c.write(
                c.period_start(day2),
                trade(day2, run * 10_000 + 5000).as_bytes(),
            );
            c.write(
                c.period_start(day1),
                trade(day1 + 1, run * 10_000 + 6000).as_bytes(),
            );
            c.finish_parquet();
            assert_eq!(rows(&d.join("01.parquet")), 1001 * (run as i64 + 1));
            assert_eq!(rows(&d.join("02.parquet")), run as i64 + 1);
        }
        assert!(!d.join("01.parquet.tmp").exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
