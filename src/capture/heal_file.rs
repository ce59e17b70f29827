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

/// The bars (`"bar"` and `"kline"` lines: code and start) that the files
/// of `pattern` hold from `from` on (ms), read from every file of the
/// periods since.
pub fn written_bars(pattern: &Pattern, from: u64, now: u64) -> HashSet<(String, u64)> {
    let mut found = HashSet::new();
    let mut period = pattern.period_start(from);
    while period <= now {
        let path = pattern.path(period);
        if let Ok(file) = fs::File::open(&path) {
            for line in BufReader::new(file).split(b'\n').map_while(Result::ok) {
                if !(line.starts_with(b"{\"type\":\"bar\"")
                    || line.starts_with(b"{\"type\":\"kline\""))
                {
                    continue;
                }
                if let (Some(code), Some(start)) = (
                    text_after(&line, b"\"code\":\""),
                    number_after(&line, b"\"start\":"),
                ) && start >= from
                {
                    found.insert((code.to_string(), start));
                }
            }
        }
        let next = pattern.period_end(period);
        if next <= period {
            break;
        }
        period = next;
    }
    found
}
