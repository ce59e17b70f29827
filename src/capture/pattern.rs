//! `--output PATTERN`: file names made from a line's own time, in UTC.
//!
//! `%Y` (year), `%m` (month), `%d` (day) and `%H` (hour) are replaced by
//! the fields of the line's `time`; `%%` is a `%`. The finest field in the
//! pattern sets the period a file covers (an hour, a day, a month, a year,
//! or, with no field, the whole run). The same pattern read back finds the
//! files a capture wrote, newest first, for `--resume`.

use std::path::{Path, PathBuf};

use crate::wire::calendar::{DAY_MS, HOUR_MS, civil_from_days, days_from_civil};

/// One piece of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Year,
    Month,
    Day,
    Hour,
}

/// The period one file covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Period {
    /// No time field: one file.
    Whole,
    /// `%Y` is the finest field.
    Year,
    /// `%m`.
    Month,
    /// `%d`.
    Day,
    /// `%H`.
    Hour,
}

/// Why an `--output` pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternError {
    /// No pattern at all.
    Empty,
    /// A `%` followed by a letter that is not a field (or by nothing).
    UnknownField {
        /// The whole pattern.
        pattern: String,
        /// The character after the `%`, if any.
        field: Option<char>,
    },
    /// The pattern ends in `/`.
    Directory(String),
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatternError::Empty => write!(
                f,
                "--output needs a file name pattern, like ticks/%Y-%m-%d.jsonl"
            ),
            PatternError::UnknownField { pattern, field } => write!(
                f,
                "--output {pattern:?}: unknown field %{} (known: %Y %m %d %H, and %% for a %)",
                field.map(String::from).unwrap_or_default()
            ),
            PatternError::Directory(pattern) => write!(
                f,
                "--output {pattern:?} names a directory, not a file: end it with a file name, like {pattern}%Y-%m-%d.jsonl"
            ),
        }
    }
}

impl std::error::Error for PatternError {}

/// A parsed `--output` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    pieces: Vec<Piece>,
    period: Period,
    text: String,
}

impl Pattern {
    /// Parse `text`; an unknown `%` field is an error that names the known
    /// ones.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let field = match chars.next() {
                Some('%') => {
                    literal.push('%');
                    continue;
                }
                Some('Y') => Piece::Year,
                Some('m') => Piece::Month,
                Some('d') => Piece::Day,
                Some('H') => Piece::Hour,
                other => {
                    return Err(PatternError::UnknownField {
                        pattern: text.to_string(),
                        field: other,
                    });
                }
            };
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(field);
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        if text.ends_with('/') {
            return Err(PatternError::Directory(text.to_string()));
        }
        let period = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(_) => Period::Whole,
                Piece::Year => Period::Year,
                Piece::Month => Period::Month,
                Piece::Day => Period::Day,
                Piece::Hour => Period::Hour,
            })
            .max()
            .unwrap_or(Period::Whole);
        Ok(Pattern {
            pieces,
            period,
            text: text.to_string(),
        })
    }

    /// The pattern as the user wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The start of the period that holds `time` (ms since the epoch).
    pub fn period_start(&self, time: u64) -> u64 {
        match self.period {
            Period::Whole => 0,
            Period::Hour => time - time % HOUR_MS,
            Period::Day => time - time % DAY_MS,
            Period::Month | Period::Year => {
                let (y, m, _) = civil_from_days((time / DAY_MS) as i64);
                let m = if self.period == Period::Year { 1 } else { m };
                days_from_civil(y, m, 1) as u64 * DAY_MS
            }
        }
    }

    /// The start of the period after the one that starts at `start`.
    pub fn period_end(&self, start: u64) -> u64 {
        match self.period {
            Period::Whole => u64::MAX,
            Period::Hour => start + HOUR_MS,
            Period::Day => start + DAY_MS,
            Period::Month | Period::Year => {
                let (y, m, _) = civil_from_days((start / DAY_MS) as i64);
                let (y, m) = match (self.period, m) {
                    (Period::Year, _) | (_, 12) => (y + 1, 1),
                    _ => (y, m + 1),
                };
                let m = if self.period == Period::Year { 1 } else { m };
                days_from_civil(y, m, 1) as u64 * DAY_MS
            }
        }
    }

    /// The file of the line whose time is `time`.
    pub fn path(&self, time: u64) -> PathBuf {
        let (y, m, d) = civil_from_days((time / DAY_MS) as i64);
        let h = (time % DAY_MS) / HOUR_MS;
        let mut s = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => s.push_str(t),
                Piece::Year => s.push_str(&format!("{y:04}")),
                Piece::Month => s.push_str(&format!("{m:02}")),
                Piece::Day => s.push_str(&format!("{d:02}")),
                Piece::Hour => s.push_str(&format!("{h:02}")),
            }
        }
        PathBuf::from(s)
    }

    /// The files on disk this pattern could have written, newest period
    /// first (by the fields their names carry).
    pub fn existing(&self) -> Vec<PathBuf> {
        let text = self.path_text();
        let (root, rest): (PathBuf, &str) = if let Some(r) = text.strip_prefix('/') {
            (PathBuf::from("/"), r)
        } else {
            (PathBuf::from("."), text.as_str())
        };
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let mut found = Vec::new();
        walk(&root, &segments, Vec::new(), &mut found);
        found.sort_by(|a, b| b.0.cmp(&a.0));
        found
            .into_iter()
            .map(|(_, p)| p.strip_prefix(".").map(Path::to_path_buf).unwrap_or(p))
            .collect()
    }

    /// The pattern with each field as a one-character placeholder, so that
    /// it can be split at `/` (a field never holds one).
    fn path_text(&self) -> String {
        let mut s = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => s.push_str(t),
                Piece::Year => s.push('\u{1}'),
                Piece::Month => s.push('\u{2}'),
                Piece::Day => s.push('\u{3}'),
                Piece::Hour => s.push('\u{4}'),
            }
        }
        s
    }
}

/// Each entry under `dir` that matches `segments[0]`, then down the rest;
/// `fields` gathers the (field, value) pairs read from the names.
fn walk(dir: &Path, segments: &[&str], fields: Vec<u32>, found: &mut Vec<(Vec<u32>, PathBuf)>) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    if !first.chars().any(|c| ('\u{1}'..='\u{4}').contains(&c)) {
        let next = dir.join(first);
        if rest.is_empty() {
            if next.is_file() {
                found.push((fields, next));
            }
        } else if next.is_dir() {
            walk(&next, rest, fields, found);
        }
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(values) = match_segment(first, name) else {
            continue;
        };
        let mut f = fields.clone();
        f.extend(values);
        let next = e.path();
        if rest.is_empty() {
            if next.is_file() {
                found.push((f, next));
            }
        } else if next.is_dir() {
            walk(&next, rest, f, found);
        }
    }
}

/// The field values of `name` if it matches `segment` (placeholders
/// `\u{1}`..`\u{4}` for %Y %m %d %H), in the order they appear.
fn match_segment(segment: &str, name: &str) -> Option<Vec<u32>> {
    let mut values = Vec::new();
    let mut rest = name;
    for c in segment.chars() {
        let width = match c {
            '\u{1}' => 4,
            '\u{2}'..='\u{4}' => 2,
            _ => {
                rest = rest.strip_prefix(c)?;
                continue;
            }
        };
        let digits = rest.get(..width)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        values.push(digits.parse().ok()?);
        rest = &rest[width..];
    }
    rest.is_empty().then_some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30 23:59:59.999 UTC.
    const NOV_30_LAST_MS: u64 = 1_796_083_199_999;

    #[test]
    fn names_come_from_the_line_s_own_time_in_utc() {
        let p = Pattern::parse("ticks/%Y-%m-%d/%H.jsonl").unwrap();
        assert_eq!(
            p.path(NOV_30_LAST_MS),
            PathBuf::from("ticks/2026-11-30/23.jsonl")
        );
        assert_eq!(
            p.path(NOV_30_LAST_MS + 1),
            PathBuf::from("ticks/2026-12-01/00.jsonl")
        );
        let p = Pattern::parse("100%%-%Y.jsonl").unwrap();
        assert_eq!(p.path(0), PathBuf::from("100%-1970.jsonl"));
        let e = Pattern::parse("x-%j.jsonl").unwrap_err().to_string();
        assert!(e.contains("%j") && e.contains("known: %Y %m %d %H"), "{e}");
        assert!(Pattern::parse("x-%").is_err());
        assert!(Pattern::parse("dir/").is_err());
    }

    #[test]
    fn a_period_is_set_by_the_finest_field() {
        let t = NOV_30_LAST_MS;
        let day = Pattern::parse("%Y-%m-%d.jsonl").unwrap();
        let start = day.period_start(t);
        assert_eq!(start, t + 1 - DAY_MS);
        assert_eq!(day.period_end(start), t + 1);
        let hour = Pattern::parse("%H.jsonl").unwrap();
        assert_eq!(hour.period_end(hour.period_start(t)), t + 1);
        let month = Pattern::parse("%Y-%m.jsonl").unwrap();
        let start = month.period_start(t);
        assert_eq!(civil_from_days((start / DAY_MS) as i64), (2026, 11, 1));
        assert_eq!(month.period_end(start), t + 1);
        let dec = month.period_start(t + 1);
        assert_eq!(
            civil_from_days((month.period_end(dec) / DAY_MS) as i64),
            (2027, 1, 1)
        );
        let year = Pattern::parse("%Y.jsonl").unwrap();
        assert_eq!(
            civil_from_days((year.period_end(year.period_start(t)) / DAY_MS) as i64),
            (2027, 1, 1)
        );
        let whole = Pattern::parse("all.jsonl").unwrap();
        assert_eq!(whole.period_start(t), 0);
        assert_eq!(whole.period_end(0), u64::MAX);
    }

    #[test]
    fn existing_files_are_found_newest_first() {
        let dir = std::env::temp_dir().join(format!("alltick-pattern-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for f in [
            "2026-11-29/a.jsonl",
            "2026-11-30/a.jsonl",
            "2026-12-01/a.jsonl",
            "2026-12-01/b.jsonl",
            "notes/a.jsonl",
        ] {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let pattern = Pattern::parse(&format!("{}/%Y-%m-%d/a.jsonl", dir.display())).unwrap();
        let found = pattern.existing();
        let names: Vec<String> = found
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "2026-12-01/a.jsonl",
                "2026-11-30/a.jsonl",
                "2026-11-29/a.jsonl"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
