//! What `--heal` holds, kept beside a capture so that a `kill -9` loses
//! none of it: the outages open and the gaps being healed (their codes,
//! their span on the feed's clock, their gap line), rewritten (to a
//! temporary name, then renamed) whenever they change, next to the memory
//! file ([`super::memory`]) as `….heal`. A start reads it, and the bars
//! its spans still lack are healed; which bars the capture already holds
//! is read from the capture itself ([`written_bars`]), so nothing is
//! written twice.

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use super::pattern::Pattern;
use crate::bars::heal::Kept;
use crate::form::csv;
use crate::form::line::{number_after, text_after};
use crate::queue::Gap;

/// The file beside the memory file `memory`.
pub fn beside(memory: &Path) -> PathBuf {
    memory.with_extension("heal")
}

/// Keep `kept` in `path` (an empty list removes it).
pub fn save(path: &Path, kept: &[Kept]) -> io::Result<()> {
    if kept.is_empty() {
        return match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let mut text = Vec::new();
    for k in kept {
        let gap = k.gap.as_ref().map(|g| {
            json!({"connection": g.connection.as_deref(), "codes": g.codes, "from": g.from,
                "to": g.to, "reason": g.reason, "dropped": g.dropped})
        });
        let line = json!({"codes": k.codes, "from": k.from, "to": k.to, "gap": gap});
        writeln!(text, "{line}")?;
    }
    let tmp = path.with_extension("heal.tmp");
    fs::write(&tmp, &text)?;
    fs::rename(&tmp, path)
}

/// What `path` keeps (nothing when it does not exist; a line that cannot
/// be read is left out).
pub fn load(path: &Path) -> Vec<Kept> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let codes = strings(&v["codes"])?;
            let gap = match &v["gap"] {
                Value::Null => None,
                g => Some(Gap {
                    connection: g["connection"].as_str().map(Arc::from),
                    codes: strings(&g["codes"])?,
                    from: g["from"].as_u64()?,
                    to: g["to"].as_u64()?,
                    reason: g["reason"].as_str()?.to_string(),
                    dropped: g["dropped"].as_u64(),
                    heal: None,
                }),
            };
            Some(Kept {
                codes,
                from: v["from"].as_u64()?,
                to: v["to"].as_u64(),
                gap,
            })
        })
        .collect()
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|c| c.as_str().map(str::to_string))
        .collect()
}

/// The bars (`"bar"` and `"kline"` lines or CSV rows: code and start)
/// that the files of `pattern` hold from `from` on (ms), read from every
/// file of the periods since.
pub fn written_bars(pattern: &Pattern, from: u64, now: u64) -> HashSet<(String, u64)> {
    let mut found = HashSet::new();
    let mut period = pattern.period_start(from);
    while period <= now {
        if let Ok(file) = fs::File::open(pattern.path(period)) {
            bars_of(BufReader::new(file), from, &mut found);
        }
        let next = pattern.period_end(period);
        if next <= period {
            break;
        }
        period = next;
    }
    found
}

/// The bars of one file, JSON lines or CSV under its header row.
fn bars_of(file: impl BufRead, from: u64, found: &mut HashSet<(String, u64)>) {
    let mut columns: Option<Option<(usize, usize, usize)>> = None;
    for line in file.split(b'\n').map_while(Result::ok) {
        let cols = *columns.get_or_insert_with(|| {
            let mut head = line.clone();
            head.push(b'\n');
            let names = csv::header(&head)?;
            let at = |k: &str| names.iter().position(|n| n == k);
            Some((at("type")?, at("code")?, at("start")?))
        });
        let bar = match cols {
            Some((t, c, s)) => {
                let cells = csv::cells(&line);
                let cell = |i: usize| {
                    cells
                        .get(i)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                };
                match (
                    cell(t).as_deref(),
                    cell(c),
                    cell(s).and_then(|s| s.parse().ok()),
                ) {
                    (Some("bar" | "kline"), Some(code), Some(start)) => Some((code, start)),
                    _ => None,
                }
            }
            None if line.starts_with(b"{\"type\":\"bar\"")
                || line.starts_with(b"{\"type\":\"kline\"") =>
            {
                match (
                    text_after(&line, b"\"code\":\""),
                    number_after(&line, b"\"start\":"),
                ) {
                    (Some(code), Some(start)) => Some((code.to_string(), start)),
                    _ => None,
                }
            }
            None => None,
        };
        if let Some((code, start)) = bar.filter(|b| b.1 >= from) {
            found.insert((code, start));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_read_from_json_lines_and_csv_rows() {
        let json = b"{\"type\":\"bar\",\"symbol\":\"X\",\"code\":\"A.US\",\"interval\":\"1m\",\"start\":120000}\n{\"type\":\"gap\",\"codes\":[]}\n{\"type\":\"kline\",\"symbol\":\"X\",\"code\":\"B\",\"interval\":\"1m\",\"start\":60000}\n";
        let mut found = HashSet::new();
        bars_of(&json[..], 60_000, &mut found);
        let want: HashSet<(String, u64)> = [("A.US".into(), 120_000), ("B".into(), 60_000)].into();
        assert_eq!(found, want);
        let csv = b"type,symbol,code,start\nbar,\"X, Y\",A.US,120000\nkline,Z,B,60000\nbar,Z,C,0\n";
        let mut found = HashSet::new();
        bars_of(&csv[..], 60_000, &mut found);
        assert_eq!(found, want, "the bar before `from` is left out");
    }

    #[test]
    fn what_is_kept_reads_back_as_written() {
        let dir = std::env::temp_dir().join(format!("heal-file-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.heal");
        let kept = vec![
            Kept {
                codes: vec!["A.US".into()],
                from: 5,
                to: None,
                gap: None,
            },
            Kept {
                codes: vec!["B".into()],
                from: 7,
                to: Some(9),
                gap: Some(Gap {
                    connection: Some(Arc::from("forex#1")),
                    codes: vec!["B".into()],
                    from: 6,
                    to: 8,
                    reason: "connection lost: reset".into(),
                    dropped: None,
                    heal: None,
                }),
            },
        ];
        save(&path, &kept).unwrap();
        assert_eq!(load(&path), kept);
        save(&path, &[]).unwrap();
        assert!(!path.exists(), "nothing held, nothing kept");
        let _ = fs::remove_dir_all(&dir);
    }
}
