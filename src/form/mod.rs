//! The forms a line can take ([`LineForm`]): trades or bars, which values
//! in which order and [`Format`] ([`columns`]: `--fields`, `--format`);
//! CSV rows read back ([`csv`], RFC 4180); the JSON text of the tool's own
//! lines ([`json`]) and the reading of it by position ([`line`](mod@line));
//! the conversion of full lines into bars, lean lines or CSV
//! ([`convert`]); and full lines into one typed Parquet file
//! ([`parquet`](mod@parquet)).

pub(crate) mod columns;
pub(crate) mod convert;
pub(crate) mod csv;
pub(crate) mod heal;
pub mod json;
pub(crate) mod line;
pub mod parquet;

use crate::bars::Interval;
pub use columns::{Columns, FieldsError, Format, FormatError};

/// What the lines written are made of: trades or bars, which values,
/// which format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineForm {
    /// The values and their format.
    pub columns: Columns,
    /// `--bars`: the interval, if bars replace trades.
    pub bars: Option<Interval>,
    /// `--bar-grace`: how long after its end a bar is written.
    pub bar_grace: std::time::Duration,
}

impl Default for LineForm {
    fn default() -> LineForm {
        LineForm {
            columns: Columns::all(Format::Jsonl, false),
            bars: None,
            bar_grace: std::time::Duration::from_secs(2),
        }
    }
}

impl LineForm {
    /// Parquet: the columns of the file (what `--fields` chose), else
    /// `None`.
    pub fn parquet_columns(&self) -> Option<Vec<&'static str>> {
        (self.columns.format == Format::Parquet).then(|| self.columns.names().collect())
    }

    /// The form the lines are converted into before they are written: for
    /// Parquet, full JSON lines (trades as they are, or bars), which the
    /// Parquet file is made from; else the form itself.
    pub fn text_form(&self) -> LineForm {
        match self.columns.format {
            Format::Parquet => LineForm {
                columns: Columns::all(Format::Jsonl, self.bars.is_some()),
                ..self.clone()
            },
            _ => self.clone(),
        }
    }

    /// Whether depth lines can be written in this form (not CSV, not
    /// Parquet).
    pub fn takes_depth(&self) -> bool {
        self.columns.format == Format::Jsonl
    }

    /// Whether every line goes out as the tool writes it.
    pub fn is_plain(&self) -> bool {
        self.bars.is_none() && self.columns.is_full_json()
    }

    /// Whether the lines written say each code's last push (its `code`,
    /// `seq` and `time`, and for JSON lines their `type`), for a restart
    /// to read back.
    pub fn lines_say_seq(&self) -> bool {
        if self.columns.format == Format::Parquet {
            // Captured as full JSON lines first (the staging files).
            return self.text_form().lines_say_seq();
        }
        let has = |k: &str| self.columns.names().any(|n| n == k);
        self.bars.is_none()
            && ["code", "seq", "time"].iter().all(|k| has(k))
            && (self.columns.format == Format::Csv || has("type"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lines_with_their_code_seq_and_time_say_what_was_written() {
        let form = |format, list: &str| LineForm {
            columns: Columns::with_fields(format, false, list).unwrap(),
            ..LineForm::default()
        };
        assert!(LineForm::default().lines_say_seq());
        assert!(form(Format::Jsonl, "type,code,seq,time").lines_say_seq());
        assert!(
            !form(Format::Jsonl, "code,seq,time").lines_say_seq(),
            "read back by type"
        );
        assert!(form(Format::Csv, "time,seq,code").lines_say_seq());
        assert!(!form(Format::Csv, "time,code,price").lines_say_seq());
        let bars = LineForm {
            bars: Some(Interval::ALL[5]),
            ..LineForm::default()
        };
        assert!(!bars.lines_say_seq());
    }
}
