//! The Parquet type of each key of the tool's lines ([`Kind`] and
//! [`column()`]), the schema of a file of some of them ([`schema()`]), and
//! how each column is encoded ([`properties`]).

use std::sync::Arc;

use parquet::basic::{
    Compression, Encoding, LogicalType, Repetition, TimeUnit, Type as PhysicalType,
};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::{ColumnPath, Type, TypePtr};

use crate::form::columns::BAR_KEYS;
use crate::form::line::TRADE_KEYS;
use crate::form::parquet::decimal::{AMOUNT, Decimal, PRICE};
use crate::form::parquet::error::ParquetError;

/// What a column holds, and so its Parquet type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A JSON string: `BYTE_ARRAY` `STRING`, dictionary-encoded.
    Text,
    /// `seq`: `INT64` `INTEGER(64, unsigned)`; any `seq` the tool writes
    /// (up to 19 digits) fits, and it is the server's number, not a count.
    Seq,
    /// `trades`: `INT64` `INTEGER(64, signed)`, a count.
    Count,
    /// `time`, `start`, `end`: `INT64` `TIMESTAMP(MILLIS, UTC)`.
    Millis,
    /// Prices: [`PRICE`] on `INT64`.
    Price,
    /// Volume and turnover: [`AMOUNT`] on `FIXED_LEN_BYTE_ARRAY(16)`.
    Amount,
}

impl Kind {
    /// The `DECIMAL` of a price or an amount.
    pub fn decimal(self) -> Option<Decimal> {
        match self {
            Kind::Price => Some(PRICE),
            Kind::Amount => Some(AMOUNT),
            _ => None,
        }
    }
}

/// A column of a file: its key, what it holds, and whether it has nulls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The key of the lines, and the column's name.
    pub key: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// `OPTIONAL` (a line may have `null`) or `REQUIRED`.
    pub nullable: bool,
}

/// The column of `key`, a key of trade or bar lines.
pub fn column(key: &'static str) -> Option<Column> {
    let (kind, nullable) = match key {
        "type" | "symbol" | "code" | "interval" => (Kind::Text, false),
        // `null` when the direction is unknown.
        "side" => (Kind::Text, true),
        "seq" => (Kind::Seq, false),
        // `null` for a K-line bar.
        "trades" => (Kind::Count, true),
        "time" | "start" | "end" => (Kind::Millis, false),
        "price" | "open" | "high" | "low" | "close" => (Kind::Price, false),
        // `null` when the feed sends none (forex).
        "volume" | "turnover" => (Kind::Amount, true),
        _ => return None,
    };
    Some(Column {
        key,
        kind,
        nullable,
    })
}

/// Which lines a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    /// Trade lines.
    Trades,
    /// Bar lines: `"bar"` (built from trades) and `"kline"` (AllTick's).
    Bars,
}

impl Rows {
    /// The keys of its lines, in the tool's order.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Rows::Trades => &TRADE_KEYS,
            Rows::Bars => &BAR_KEYS,
        }
    }

    /// Which lines columns `names` are of: `Some` when a name is a key of
    /// one kind of line only, `None` when every name is a key of both
    /// (`type`, `symbol`, `code`, `volume`, `turnover`: the first line
    /// decides). Refused when a name is a key of neither, is given twice,
    /// or names of both kinds are mixed.
    pub fn of(names: &[&'static str]) -> Result<Option<Rows>, ParquetError> {
        if names.is_empty() {
            return Err(ParquetError::refused("no columns"));
        }
        let mut rows = None;
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(ParquetError::refused(format!("column {name} named twice")));
            }
            let one = match (TRADE_KEYS.contains(name), BAR_KEYS.contains(name)) {
                (true, true) => continue,
                (true, false) => Rows::Trades,
                (false, true) => Rows::Bars,
                (false, false) => {
                    return Err(ParquetError::refused(format!(
                        "{name:?} is not a key of trade or bar lines"
                    )));
                }
            };
            if rows.is_some_and(|r| r != one) {
                return Err(ParquetError::refused(format!(
                    "columns of trade and of bar lines mixed: {}",
                    names.join(",")
                )));
            }
            rows = Some(one);
        }
        Ok(rows)
    }
}

/// The Parquet type of a column.
fn parquet_type(c: Column) -> Result<Type, ParquetError> {
    let (physical, logical) = match c.kind {
        Kind::Text => (PhysicalType::BYTE_ARRAY, LogicalType::String),
        Kind::Seq => (PhysicalType::INT64, LogicalType::integer(64, false)),
        Kind::Count => (PhysicalType::INT64, LogicalType::integer(64, true)),
        Kind::Millis => (
            PhysicalType::INT64,
            LogicalType::timestamp(true, TimeUnit::MILLIS),
        ),
        Kind::Price => (PhysicalType::INT64, decimal_type(PRICE)),
        Kind::Amount => (PhysicalType::FIXED_LEN_BYTE_ARRAY, decimal_type(AMOUNT)),
    };
    let mut t = Type::primitive_type_builder(c.key, physical)
        .with_repetition(if c.nullable {
            Repetition::OPTIONAL
        } else {
            Repetition::REQUIRED
        })
        .with_logical_type(Some(logical));
    if let Some(d) = c.kind.decimal() {
        t = t
            .with_precision(d.precision as i32)
            .with_scale(d.scale as i32);
        if c.kind == Kind::Amount {
            t = t.with_length(16);
        }
    }
    Ok(t.build()?)
}

fn decimal_type(d: Decimal) -> LogicalType {
    LogicalType::decimal(d.scale as i32, d.precision as i32)
}

/// The schema of a file of `columns`, in their order.
pub fn schema(columns: &[Column]) -> Result<TypePtr, ParquetError> {
    let fields = columns
        .iter()
        .map(|&c| parquet_type(c).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(
        Type::group_type_builder("schema")
            .with_fields(fields)
            .build()?,
    ))
}

/// How the columns are written (docs/PARQUET.md has the sizes): strings,
/// prices and volumes in a dictionary (a day's codes are few, and prices
/// and volumes repeat), falling back to plain values when a row group has
/// too many distinct ones; times and `seq` as deltas (they rise); turnover
/// plain (nearly every one differs); pages of Parquet 1.0, which every
/// reader reads; `compression` for all. Statistics (and so the page
/// index's bounds) only of `seq` and the times, by which readers skip
/// pages and row groups: the other columns' values are spread over every
/// group (each holds all codes), and their bounds cost a comparison per
/// value (of sixteen bytes for volume and turnover).
pub fn properties(columns: &[Column], compression: Compression) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(compression);
    for c in columns {
        let path = ColumnPath::from(c.key);
        let plain = |b: parquet::file::properties::WriterPropertiesBuilder, e| {
            b.set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path.clone(), e)
        };
        if !matches!(c.kind, Kind::Seq | Kind::Millis) {
            b = b.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
        }
        b = match (c.kind, c.key) {
            (Kind::Seq | Kind::Millis, _) => plain(b, Encoding::DELTA_BINARY_PACKED),
            (Kind::Amount, "turnover") => plain(b, Encoding::PLAIN),
            _ => b,
        };
    }
    b.build()
}
