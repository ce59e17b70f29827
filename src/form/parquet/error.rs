//! What can go wrong making a Parquet file: a line that is not a row of
//! it, or a value its schema cannot hold ([`RowError`]); a file that
//! cannot be made or written ([`ParquetError`]).

use std::fmt;

/// Why a line was not added to the file; nothing of it was.
#[derive(Debug)]
pub enum RowError {
    /// A value the column of `key` cannot hold as it is: not of the
    /// column's type, `null` in a column that has none, or a number that
    /// would have to be rounded or does not fit its precision.
    Unfit {
        /// The column.
        key: &'static str,
        /// The value as the line has it (its JSON text).
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A line that is not a row of this file: a gap or depth line, a bar
    /// line in a file of trades (or a trade line in a file of bars), a
    /// line without every key of its type, or not a JSON object at all.
    NotARow(&'static str),
    /// The row was taken, but writing the row group it completed failed:
    /// the file is broken, and every later push and
    /// [`ParquetFile::finish`](super::ParquetFile::finish) fail too.
    Write(ParquetError),
}

impl RowError {
    /// An [`Unfit`](RowError::Unfit) value.
    pub fn unfit(key: &'static str, value: &[u8], why: impl fmt::Display) -> RowError {
        RowError::Unfit {
            key,
            value: String::from_utf8_lossy(value).into_owned(),
            why: why.to_string(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::Unfit { key, value, why } => {
                write!(f, "{key} {value} does not fit the Parquet file: {why}")
            }
            RowError::NotARow(what) => write!(f, "not a row of this Parquet file: {what}"),
            RowError::Write(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RowError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RowError::Write(e) => Some(e),
            _ => None,
        }
    }
}

/// A Parquet file that cannot be made or written: its columns refused,
/// or the parquet crate or the writer under it failed.
#[derive(Debug)]
pub struct ParquetError(Cause);

/// What a [`ParquetError`] wraps.
#[derive(Debug)]
enum Cause {
    /// The parquet crate's error (its I/O errors included).
    Parquet(parquet::errors::ParquetError),
    /// An I/O error of the writer.
    Io(std::io::Error),
    /// Columns the file cannot have, or a file broken by an earlier error.
    Refused(String),
}

impl ParquetError {
    /// A file refused for what `why` says (its columns, or an earlier
    /// failure).
    pub fn refused(why: impl fmt::Display) -> ParquetError {
        ParquetError(Cause::Refused(why.to_string()))
    }
}

impl From<parquet::errors::ParquetError> for ParquetError {
    fn from(e: parquet::errors::ParquetError) -> ParquetError {
        ParquetError(Cause::Parquet(e))
    }
}

impl From<std::io::Error> for ParquetError {
    fn from(e: std::io::Error) -> ParquetError {
        ParquetError(Cause::Io(e))
    }
}

impl fmt::Display for ParquetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Cause::Parquet(e) => write!(f, "Parquet: {e}"),
            Cause::Io(e) => write!(f, "Parquet file: {e}"),
            Cause::Refused(why) => write!(f, "Parquet file: {why}"),
        }
    }
}

impl std::error::Error for ParquetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Cause::Parquet(e) => Some(e),
            Cause::Io(e) => Some(e),
            Cause::Refused(_) => None,
        }
    }
}
