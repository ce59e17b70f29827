//! A capture file's two ends as a restart reads them: its lines from the
//! end backwards, a chunk at a time, within a budget of bytes
//! ([`lines_back`], at most [`TAIL_BYTES`]), and the CSV header row at its
//! start ([`csv_header`]). Memory holds one chunk and one line, whatever
//! the file's size.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::form::csv;

/// Bytes read back from a capture's end at most: where a restart learns
/// each code's last line ([`super::resume`], over all the files) and finds
/// the bars written at the stop ([`super::takeback`], in each file).
pub const TAIL_BYTES: u64 = 8 << 20;

/// Bytes read at a time.
pub const CHUNK: u64 = 64 * 1024;

/// A line longer than this is not one of ours: not kept whole.
const MAX_LINE: usize = 1 << 20;

/// Bytes read for the header row.
const HEAD: usize = 4096;

/// Hand the lines of `file` to `line` from its last backwards, each with
/// the offset it starts at and without its newline, until `line` returns
/// false, the file's start is reached, or `read` (bytes read so far,
/// added to) reaches `budget`. Empty lines are passed over, and so is the
/// line that begins before the last chunk read (it is not whole).
pub fn lines_back(
    file: &File,
    budget: u64,
    read: &mut u64,
    mut line: impl FnMut(u64, &[u8]) -> bool,
) -> io::Result<()> {
    let mut end = file.metadata()?.len();
    // The start of the line that continues into the chunk read last.
    let mut carry: Vec<u8> = Vec::new();
    while end > 0 && *read < budget {
        let start = end.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (end - start) as usize];
        file.read_exact_at(&mut chunk, start)?;
        *read += end - start;
        chunk.extend_from_slice(&carry);
        // The lines of the chunk from its last: each ends at `stop`.
        let mut stop = chunk.len();
        loop {
            let begin = chunk[..stop]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            // The first piece may begin before this chunk, unless the file does.
            if begin == 0 && start > 0 {
                carry = if stop > MAX_LINE {
                    Vec::new()
                } else {
                    chunk[..stop].to_vec()
                };
                break;
            }
            if begin < stop && !line(start + begin as u64, &chunk[begin..stop]) {
                return Ok(());
            }
            if begin == 0 {
                break;
            }
            stop = begin - 1;
        }
        end = start;
    }
    Ok(())
}

/// The column names of a CSV capture, from the header row that starts
/// `file` ([`csv::header`]); `None` for a capture of JSON lines.
pub fn csv_header(file: &File) -> io::Result<Option<Vec<String>>> {
    let mut head = vec![0u8; HEAD];
    let n = file.read_at(&mut head, 0)?;
    Ok(csv::header(&head[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_from_the_end_with_their_offsets_within_the_budget() {
        let path = std::env::temp_dir().join(format!("alltick-tail-{}", std::process::id()));
        // Lines that straddle chunks, an empty line, no newline at the end.
        let lines: Vec<String> = (0..20_000).map(|i| format!("line {i:05}")).collect();
        let text = lines.join("\n") + "\n\nlast";
        std::fs::write(&path, &text).unwrap();
        let file = File::open(&path).unwrap();
        let mut seen = Vec::new();
        let mut read = 0;
        lines_back(&file, u64::MAX, &mut read, |at, l| {
            seen.push((at, l.to_vec()));
            true
        })
        .unwrap();
        assert_eq!(read, text.len() as u64);
        assert_eq!(seen.len(), lines.len() + 1);
        assert_eq!(seen[0].1, b"last");
        for (at, l) in &seen {
            assert_eq!(
                &text.as_bytes()[*at as usize..*at as usize + l.len()],
                &l[..]
            );
        }
        assert_eq!(seen.last().unwrap(), &(0, b"line 00000".to_vec()));
        // Within one chunk: only the whole lines of the last chunk.
        let (mut few, mut read) = (0, 0);
        lines_back(&file, 1, &mut read, |at, _| {
            assert!(at >= text.len() as u64 - CHUNK);
            few += 1;
            true
        })
        .unwrap();
        assert_eq!(read, CHUNK);
        assert!(few > 0 && few < lines.len());
        // Stopped by the caller.
        let mut two = 0;
        lines_back(&file, u64::MAX, &mut 0, |_, _| {
            two += 1;
            two < 2
        })
        .unwrap();
        assert_eq!(two, 2);
        let _ = std::fs::remove_file(&path);
    }
}
