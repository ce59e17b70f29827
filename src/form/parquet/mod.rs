//! The tool's own lines as one Parquet file, exact and typed
//! ([`ParquetFile`]): trade lines, or bar lines (`"bar"` and `"kline"`),
//! their values in columns of the types below, streamed through row
//! groups of [`Options::row_group_rows`] rows so that memory stays about
//! 10 MiB whatever the file's length. docs/PARQUET.md has the
//! measurements behind the choices.
//!
//! | column | Parquet type | nulls |
//! | --- | --- | --- |
//! | `type`, `symbol`, `code`, `interval` | `BYTE_ARRAY` `STRING`, dictionary | none |
//! | `side` | `BYTE_ARRAY` `STRING`, dictionary | `null` when unknown |
//! | `seq` | `INT64` `INTEGER(64, unsigned)` | none |
//! | `time`, `start`, `end` | `INT64` `TIMESTAMP(MILLIS, UTC)` | none |
//! | `price`, `open`, `high`, `low`, `close` | `INT64` `DECIMAL(18,8)` | none |
//! | `volume`, `turnover` | `FIXED_LEN_BYTE_ARRAY(16)` `DECIMAL(38,8)` | `null` when the feed sends none |
//! | `trades` | `INT64` `INTEGER(64, signed)` | `null` for a K-line bar |
//!
//! **The decimal rule.** A number is stored as the integer its JSON text
//! is worth × 10^scale, read with the one number grammar
//! ([`crate::wire::json::whole_number`]), never through a float; a value
//! with a non-zero digit past the scale, or too large for the precision,
//! is refused ([`RowError::Unfit`], naming key and value), never rounded.
//! Prices are [`decimal::PRICE`], `DECIMAL(18,8)`: eight decimals are the
//! finest quotes seen, and ten integer digits hold any price; volume and
//! turnover are [`decimal::AMOUNT`], `DECIMAL(38,8)`: a bar's sums of a
//! day pass 10^12, and the widest decimal every reader has leaves them
//! thirty integer digits. Trailing zeros are not digits of the value:
//! `651.10` is stored as 651.10000000, the same number.
//!
//! `seq` is the server's number, unsigned: any of the tool's (at most 19
//! digits) fits. `type` keeps `"trade"`, `"bar"` or `"kline"`, so that
//! bars built from trades and AllTick's own are told apart.

mod column;
pub mod decimal;
mod encoder;
mod error;
mod row;
mod schema;
mod trade;

use std::io::Write;
use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::file::writer::SerializedFileWriter;

use crate::form::parquet::column::Buffer;
use crate::form::parquet::encoder::Encoder;
pub use crate::form::parquet::error::{ParquetError, RowError};
use crate::form::parquet::row::{Cell, cell, slot, texts};
pub use crate::form::parquet::schema::Rows;
use crate::form::parquet::schema::{Column, properties, schema};

/// How a file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Rows in a row group (the last one has fewer). Two groups' values
    /// are held, the one being filled and the one being encoded, about 75
    /// bytes a trade each (10 MiB at 64 Ki rows); each group also leaves
    /// its few KiB of metadata until the footer is written, so groups
    /// should be of thousands of rows.
    pub row_group_rows: usize,
    /// The compression of every column.
    pub compression: Compression,
}

/// Rows of a row group by default: 64 Ki.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// A row group is written early once its values take this many bytes
/// (strings many and long): memory stays bounded whatever the lines.
const ROW_GROUP_BYTES: usize = 32 << 20;

/// The zstd level by default.
pub const ZSTD_LEVEL: i32 = 3;

impl Default for Options {
    fn default() -> Options {
        Options {
            row_group_rows: ROW_GROUP_ROWS,
            compression: Compression::ZSTD(
                ZstdLevel::try_new(ZSTD_LEVEL).expect("a level zstd has"),
            ),
        }
    }
}

/// A Parquet file being written from the tool's lines, one row a line.
///
/// Its row groups are encoded and compressed on a thread of its own
/// while the next lines are read; what that thread made is written to
/// `out` by the caller's, in the calls to [`ParquetFile::push`] that end
/// a row group and in [`ParquetFile::finish`].
pub struct ParquetFile<W: Write + Send> {
    /// The parquet crate's writer.
    writer: SerializedFileWriter<W>,
    /// The thread that encodes full row groups.
    encoder: Encoder,
    /// The columns' values of the row group being made, in order.
    buffers: Vec<Buffer>,
    /// A row group is with the encoding thread.
    in_flight: bool,
    /// Per column, the place of its key in the lines' values.
    slots: Vec<usize>,
    /// Trade or bar lines: known from the columns, or the first row.
    lines: Option<Rows>,
    /// Rows in the row group being made.
    buffered: usize,
    /// Rows in all.
    rows: u64,
    /// How it is written.
    options: Options,
    /// An earlier write failed: nothing more can be written.
    broken: bool,
}

impl<W: Write + Send> ParquetFile<W> {
    /// A file whose columns are `names` (trade keys or bar keys, in that
    /// order: what `--fields` chose, e.g. `Columns::names()`), written
    /// with the default [`Options`].
    pub fn new(out: W, names: &[&'static str]) -> Result<Self, ParquetError> {
        ParquetFile::with_options(out, names, Options::default())
    }

    /// [`ParquetFile::new`] with `options`.
    pub fn with_options(
        out: W,
        names: &[&'static str],
        options: Options,
    ) -> Result<Self, ParquetError> {
        let lines = Rows::of(names)?;
        let columns: Vec<Column> = names
            .iter()
            .map(|&k| schema::column(k).expect("a key of the lines"))
            .collect();
        let props = Arc::new(properties(&columns, options.compression));
        let writer = SerializedFileWriter::new(out, schema(&columns)?, props.clone())?;
        let descriptors = writer.schema_descr().columns().to_vec();
        Ok(ParquetFile {
            writer,
            encoder: Encoder::start(descriptors, props)?,
            in_flight: false,
            slots: names
                .iter()
                .map(|&k| slot(k).expect("a key of the lines"))
                .collect(),
            buffers: columns.into_iter().map(Buffer::new).collect(),
            lines,
            buffered: 0,
            rows: 0,
            options: Options {
                row_group_rows: options.row_group_rows.max(1),
                ..options
            },
            broken: false,
        })
    }

    /// Which lines it holds: `None` until the first row when every
    /// column is of both trade and bar lines.
    pub fn lines(&self) -> Option<Rows> {
        self.lines
    }

    /// One of the tool's full lines (a trade line, or a bar/kline line,
    /// as the tool writes them, with or without its newline).
    /// `Err(RowError::Unfit{..})` names the key and value the schema
    /// cannot hold (nothing of the row added); `Err(RowError::NotARow(..))`
    /// for a line that is not a row of this file (a gap or depth line, a
    /// bar in a trade file, garbage). `Err(RowError::Write(..))`: the row
    /// completed a row group, which could not be written.
    pub fn push(&mut self, line: &[u8]) -> Result<(), RowError> {
        if self.broken {
            return Err(RowError::Write(broken()));
        }
        if self.lines != Some(Rows::Bars)
            && let Some(cells) = trade::cells(line)
        {
            return self.push_trade(cells);
        }
        let (lines, texts) = texts(line)?;
        match self.lines {
            Some(Rows::Trades) if lines == Rows::Bars => {
                return Err(RowError::NotARow("a bar line in a file of trades"));
            }
            Some(Rows::Bars) if lines == Rows::Trades => {
                return Err(RowError::NotARow("a trade line in a file of bars"));
            }
            _ => {}
        }
        for i in 0..self.buffers.len() {
            let column = self.buffers[i].column;
            let text = texts[self.slots[i]].expect("every key of the line's type");
            match cell(column, text) {
                Ok(c) => self.buffers[i].push(c),
                Err(e) => {
                    self.buffers[..i].iter_mut().for_each(Buffer::pop);
                    return Err(e);
                }
            }
        }
        self.lines = Some(lines);
        self.added()
    }

    /// The first line of `buf` (up to and with its first newline, or all
    /// of it), pushed as [`ParquetFile::push`] does; its length, and what
    /// came of it. Lines one after another are pushed this way without
    /// being looked for first.
    pub fn push_first(&mut self, buf: &[u8]) -> (usize, Result<(), RowError>) {
        if !self.broken
            && self.lines != Some(Rows::Bars)
            && let Some((cells, n)) = trade::first(buf)
        {
            return (n, self.push_trade(cells));
        }
        let n = buf
            .iter()
            .position(|&b| b == b'\n')
            .map_or(buf.len(), |i| i + 1);
        (n, self.push(&buf[..n]))
    }

    /// The values of a trade line ([`trade::cells`]) as a row.
    fn push_trade(&mut self, mut cells: [Cell; 9]) -> Result<(), RowError> {
        // Every column is of trade lines: its key's place is below 9.
        for (buffer, &slot) in self.buffers.iter_mut().zip(&self.slots) {
            buffer.push(std::mem::replace(&mut cells[slot], Cell::Null));
        }
        self.lines = Some(Rows::Trades);
        self.added()
    }

    /// A row was added: the row group handed on when full.
    fn added(&mut self) -> Result<(), RowError> {
        self.buffered += 1;
        self.rows += 1;
        if self.buffered >= self.options.row_group_rows
            || (self.buffered.is_multiple_of(1024) && self.bytes() >= ROW_GROUP_BYTES)
        {
            self.end_row_group().map_err(RowError::Write)?;
        }
        Ok(())
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The bytes the row group being made holds.
    fn bytes(&self) -> usize {
        self.buffers.iter().map(Buffer::bytes).sum()
    }

    /// Hand the row group being made to the encoding thread, once it has
    /// given back the one before (written to the file, its buffers for
    /// the next group); the file is broken if that fails.
    fn end_row_group(&mut self) -> Result<(), ParquetError> {
        self.broken = true;
        let fresh = match self.take_back()? {
            Some(buffers) => buffers,
            None => self.buffers.iter().map(|b| Buffer::new(b.column)).collect(),
        };
        let full = std::mem::replace(&mut self.buffers, fresh);
        self.encoder.send(full)?;
        self.in_flight = true;
        self.buffered = 0;
        self.broken = false;
        Ok(())
    }

    /// The row group with the encoding thread, if one is, written to the
    /// file once encoded; its buffers, emptied.
    fn take_back(&mut self) -> Result<Option<Vec<Buffer>>, ParquetError> {
        if !std::mem::take(&mut self.in_flight) {
            return Ok(None);
        }
        let encoded = self
            .encoder
            .next()
            .ok_or_else(|| ParquetError::refused("the encoding thread failed"))??;
        let mut group = self.writer.next_row_group()?;
        for (bytes, close) in encoded.chunks {
            group.append_column(&bytes, close)?;
        }
        group.close()?;
        Ok(Some(encoded.buffers))
    }

    /// Write the last row group and the footer; the writer back.
    pub fn finish(mut self) -> Result<W, ParquetError> {
        if self.broken {
            return Err(broken());
        }
        if self.buffered > 0 {
            self.end_row_group()?;
        }
        self.take_back()?;
        self.encoder.close()?;
        Ok(self.writer.into_inner()?)
    }
}

/// The error of a file an earlier write broke.
fn broken() -> ParquetError {
    ParquetError::refused("an earlier write failed: the file is broken")
}

#[cfg(test)]
mod tests;
