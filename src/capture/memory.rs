//! What was written of each code, kept beside a capture whose own lines do
//! not say it: bar lines, and `--fields` without `code`, `seq` or `time`.
//!
//! A restart reads a capture's tail back to learn each code's last `seq`
//! and `time` ([`super::resume`]). Bars carry no `seq`, so the writer also
//! keeps that memory in a small file beside the capture, rewritten (to a
//! temporary name, then renamed) at most once a second while lines are
//! written and at the stop, and read on start. A trade the server pushes
//! again after a restart is then recognised however the lines look.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::pattern::Pattern;
use crate::form::line::{number_after, text_after};
use crate::wire::repeat::Last;
use crate::wire::symbol::Fnv;

/// How often the memory is written while lines are.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The memory's file for `--output PATTERN`: in the pattern's first
/// directory without a field, named after the pattern.
pub fn for_pattern(p: &Pattern) -> PathBuf {
    let text = p.text();
    let fixed = &text[..text.find('%').unwrap_or(text.len())];
    let dir = match fixed.rfind('/') {
        Some(i) => &fixed[..=i],
        None => "",
    };
    // FNV-1a of the pattern: two patterns in one directory keep apart.
    let hash = Fnv::hash(text.as_bytes());
    PathBuf::from(format!("{dir}.alltick-stream-{:08x}.last", hash as u32))
}

/// The memory's file for stdout appended to `file` (`--resume FILE`).
pub fn for_file(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    file.with_file_name(format!(".{name}.alltick-stream.last"))
}

/// What the file at `path` remembers (nothing when it does not exist).
pub fn load(path: &Path) -> HashMap<(bool, String), Last> {
    let mut last = HashMap::new();
    let Ok(text) = std::fs::read(path) else {
        return last;
    };
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let depth = line.starts_with(b"{\"depth\":true");
        let (Some(code), Some(seq), Some(time)) = (
            text_after(line, b"\"code\":\""),
            number_after(line, b"\"seq\":"),
            number_after(line, b"\"time\":"),
        ) else {
            continue;
        };
        last.insert((depth, code.to_string()), Last::resumed(seq, time));
    }
    last
}

/// The memory's file, rewritten at most every [`SAVE_EVERY`] while lines
/// are written.
#[derive(Debug)]
pub struct MemoryFile {
    path: PathBuf,
    saved: Option<Instant>,
    said: bool,
}

impl MemoryFile {
    /// The memory kept at `path`.
    pub fn new(path: PathBuf) -> MemoryFile {
        MemoryFile {
            path,
            saved: None,
            said: false,
        }
    }

    /// Whether a write is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.saved.is_none_or(|at| now >= at + SAVE_EVERY)
    }

    /// Write `entries` (depth?, code, seq, time).
    pub fn save(&mut self, entries: &[(bool, &str, u64, u64)]) {
        self.saved = Some(Instant::now());
        if let Err(e) = write(&self.path, entries)
            && !std::mem::replace(&mut self.said, true)
        {
            crate::report::say(format!(
                "cannot keep what was written in {}: {e}; a restart may write a re-pushed trade again",
                self.path.display()
            ));
        }
    }
}

fn write(path: &Path, entries: &[(bool, &str, u64, u64)]) -> io::Result<()> {
    let mut text = Vec::with_capacity(entries.len() * 64);
    for (depth, code, seq, time) in entries {
        text.extend_from_slice(b"{\"depth\":");
        text.extend_from_slice(if *depth { b"true" } else { b"false" });
        text.extend_from_slice(b",\"code\":");
        crate::wire::text::push_json_str(&mut text, code);
        let _ = writeln!(text, ",\"seq\":{seq},\"time\":{time}}}");
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("last.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&text)?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::repeat::Seen;

    #[test]
    fn the_memory_is_written_and_read_back_beside_its_capture() {
        let p = Pattern::parse("/tmp/x/%Y/%m.csv").unwrap();
        let path = for_pattern(&p);
        assert!(path.starts_with("/tmp/x/") && path.to_string_lossy().ends_with(".last"));
        assert_ne!(
            path,
            for_pattern(&Pattern::parse("/tmp/x/%Y/%d.csv").unwrap())
        );
        assert_eq!(
            for_file(Path::new("d/bars.jsonl")),
            Path::new("d/.bars.jsonl.alltick-stream.last")
        );
        let d = std::env::temp_dir().join(format!("alltick-memory-{}", std::process::id()));
        let file = d.join("m.last");
        let mut k = MemoryFile::new(file.clone());
        assert!(k.due(Instant::now()));
        k.save(&[(false, "A.US", 7, 1000), (true, "700.HK", 2, 900)]);
        // Not due again within a second.
        assert!(!k.due(Instant::now()));
        let back = load(&file);
        let mut a = back[&(false, "A.US".to_string())];
        assert_eq!(a.see(7, 1000), Seen::Repeat);
        assert_eq!(a.see(8, 1001), Seen::New);
        assert!(back.contains_key(&(true, "700.HK".to_string())));
        k.save(&[(false, "A.US", 9, 1002)]);
        let mut a = load(&file)[&(false, "A.US".to_string())];
        assert_eq!(a.see(9, 1002), Seen::Repeat);
        assert!(load(&d.join("none")).is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }
}
