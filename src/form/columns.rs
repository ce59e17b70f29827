//! The columns of trade and bar lines: `--fields` picks the values and
//! their order, and [`Columns`] writes them in the `--format` asked for, as
//! JSON lines or as CSV rows under one header row.
//!
//! Values go out as they stand in the full line, digit for digit: a number
//! is copied, a string is copied (JSON) or unescaped and quoted where
//! RFC 4180 needs it (CSV), and `null` is an empty CSV cell.

use std::fmt;

use crate::bars::Bar;
use crate::bars::exact::Sum;
use crate::form::json::{push_json_str, push_u64};
use crate::form::line::{TRADE_KEYS, TradeLine};

/// How lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// CSV rows (LF-terminated) under a header row.
    Csv,
    /// One Parquet file (or one per `--output` period) of typed columns,
    /// made from the full JSON lines.
    Parquet,
}

impl Format {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }

    /// `jsonl`, `csv` or `parquet`.
    pub fn parse(s: &str) -> Result<Format, FormatError> {
        match s {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            other => Err(FormatError {
                given: other.to_string(),
            }),
        }
    }
}

/// A `--format` that is neither `jsonl` nor `csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    /// What was given.
    pub given: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--format must be jsonl, csv or parquet, got {:?}",
            self.given
        )
    }
}

impl std::error::Error for FormatError {}

/// Why a `--fields` list was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldsError {
    /// A name that is not a key of the lines (`bars`: of bar lines).
    Unknown {
        /// The name, perhaps empty.
        name: String,
        /// Whether the lines are bars.
        bars: bool,
    },
    /// A name given twice.
    Twice(String),
}

impl fmt::Display for FieldsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldsError::Unknown { name, bars } => write!(
                f,
                "--fields: {} is not a field of {} lines (valid: {})",
                if name.is_empty() {
                    "an empty name".to_string()
                } else {
                    format!("{name:?}")
                },
                if *bars { "bar" } else { "trade" },
                keys(*bars).join(", ")
            ),
            FieldsError::Twice(name) => {
                write!(f, "--fields names {name} twice: name each field once")
            }
        }
    }
}

impl std::error::Error for FieldsError {}

/// The keys of a bar line, in the order the tool writes them.
pub const BAR_KEYS: [&str; 13] = [
    "type", "symbol", "code", "interval", "start", "end", "open", "high", "low", "close", "volume",
    "turnover", "trades",
];

/// Which values lines carry, in which order, and in which format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Columns {
    /// JSON or CSV.
    pub format: Format,
    /// The keys the lines are made of (trade or bar keys).
    keys: &'static [&'static str],
    /// Indices into `keys`, in the order written.
    fields: Vec<usize>,
}

impl Columns {
    /// Every value of a trade line (`bars` false) or a bar line, in `format`.
    pub fn all(format: Format, bars: bool) -> Columns {
        let keys = keys(bars);
        Columns {
            format,
            keys,
            fields: (0..keys.len()).collect(),
        }
    }

    /// The values `list` names (`time,code,price`), in its order; an
    /// unknown or repeated name is refused, naming the valid ones.
    pub fn with_fields(format: Format, bars: bool, list: &str) -> Result<Columns, FieldsError> {
        let keys = keys(bars);
        let mut fields = Vec::new();
        for name in list.split(',').map(str::trim) {
            let Some(i) = keys.iter().position(|k| *k == name) else {
                return Err(FieldsError::Unknown {
                    name: name.to_string(),
                    bars,
                });
            };
            if fields.contains(&i) {
                return Err(FieldsError::Twice(name.to_string()));
            }
            fields.push(i);
        }
        Ok(Columns {
            format,
            keys,
            fields,
        })
    }

    /// Whether the lines are the tool's whole JSON lines (trades or bars,
    /// `bars`), every key in its order.
    pub fn is_full(&self, bars: bool) -> bool {
        self.format == Format::Jsonl
            && self.keys.len() == keys(bars).len()
            && self.fields.iter().copied().eq(0..self.keys.len())
    }

    /// Whether trade lines go out exactly as the tool writes them.
    pub fn is_full_json(&self) -> bool {
        self.format == Format::Jsonl
            && self.keys.len() == TRADE_KEYS.len()
            && self.fields.iter().copied().eq(0..self.keys.len())
    }

    /// The names of the values written, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().map(|&i| self.keys[i])
    }

    /// The CSV header row (nothing for JSON lines).
    pub fn header(&self, out: &mut Vec<u8>) {
        if self.format != Format::Csv {
            return;
        }
        for (n, name) in self.names().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(name.as_bytes());
        }
        out.push(b'\n');
    }

    /// Append one line of values; `value(i, buf)` appends the JSON text of
    /// the value of key `i`. (Parquet rows are made from JSON lines: they
    /// are written as JSON here.)
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
        value: impl Fn(usize, &mut Vec<u8>),
    ) {
        match self.format {
            Format::Jsonl | Format::Parquet => {
                out.push(b'{');
                for (n, &i) in self.fields.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    out.push(b'"');
                    out.extend_from_slice(self.keys[i].as_bytes());
                    out.extend_from_slice(b"\":");
                    value(i, out);
                }
                out.extend_from_slice(b"}\n");
            }
            Format::Csv => {
                for (n, &i) in self.fields.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    scratch.clear();
                    value(i, scratch);
                    csv_cell(out, scratch);
                }
                out.push(b'\n');
            }
        }
    }

    /// Append a trade line's values.
    pub fn trade(&self, out: &mut Vec<u8>, scratch: &mut Vec<u8>, t: &TradeLine) {
        self.write(out, scratch, |i, buf| {
            buf.extend_from_slice(match i {
                0 => b"\"trade\"",
                1 => t.symbol,
                2 => t.code,
                3 => t.seq,
                4 => t.time_text,
                5 => t.price,
                6 => t.volume,
                7 => t.turnover,
                _ => t.side,
            })
        });
    }
}

impl Columns {
    /// Append a bar line's values.
    pub fn bar(&self, out: &mut Vec<u8>, scratch: &mut Vec<u8>, b: &Bar) {
        if self.format == Format::Jsonl && self.fields.iter().copied().eq(0..BAR_KEYS.len()) {
            b.write_json(out);
            return;
        }
        let sum = |buf: &mut Vec<u8>, s: &Option<Sum>| match s {
            Some(s) => s.write(buf),
            None => buf.extend_from_slice(b"null"),
        };
        self.write(out, scratch, |i, buf| match i {
            0 => buf.extend_from_slice(b"\"bar\""),
            1 => push_json_str(buf, &b.symbol),
            2 => push_json_str(buf, &b.code),
            3 => push_json_str(buf, b.interval.name()),
            4 => push_u64(buf, b.start),
            5 => push_u64(buf, b.end),
            6 => buf.extend_from_slice(&b.open),
            7 => buf.extend_from_slice(&b.high),
            8 => buf.extend_from_slice(&b.low),
            9 => buf.extend_from_slice(&b.close),
            10 => sum(buf, &b.volume),
            11 => sum(buf, &b.turnover),
            _ => push_u64(buf, b.trades),
        });
    }
}

/// A K-line bar's values, as the server sent them (prices, volume and
/// turnover are JSON number texts; times in ms).
#[derive(Clone, Copy, Debug)]
pub struct KlineRow<'a> {
    /// The symbol as the user wrote it.
    pub symbol: &'a str,
    /// AllTick's code.
    pub code: &'a str,
    /// The interval's name (`1m` … `1M`).
    pub interval: &'a str,
    /// Start, ms.
    pub start: u64,
    /// End (exclusive), ms.
    pub end: u64,
    /// Open, high, low, close, volume and turnover, in that order.
    pub values: [&'a str; 6],
}

/// `type` of a K-line bar: AllTick's own bar, not one built from trades
/// (`"bar"`). The keys are the same.
pub const KLINE_TYPE: &str = "kline";

impl Columns {
    /// Append a K-line bar's values: `"type":"kline"` and `trades` null
    /// (the server gives no count of trades).
    pub fn kline(&self, out: &mut Vec<u8>, scratch: &mut Vec<u8>, k: &KlineRow) {
        self.write(out, scratch, |i, buf| match i {
            0 => push_json_str(buf, KLINE_TYPE),
            1 => push_json_str(buf, k.symbol),
            2 => push_json_str(buf, k.code),
            3 => push_json_str(buf, k.interval),
            4 => push_u64(buf, k.start),
            5 => push_u64(buf, k.end),
            6..=11 => buf.extend_from_slice(k.values[i - 6].as_bytes()),
            _ => buf.extend_from_slice(b"null"),
        });
    }
}

fn keys(bars: bool) -> &'static [&'static str] {
    if bars { &BAR_KEYS } else { &TRADE_KEYS }
}

/// Append a JSON value as a CSV cell: `null` empty, a string unescaped and
/// quoted when it holds a comma, a quote or a line break, anything else
/// as it stands.
pub fn csv_cell(out: &mut Vec<u8>, json: &[u8]) {
    if json == b"null" {
        return;
    }
    if json.first() != Some(&b'"') {
        out.extend_from_slice(json);
        return;
    }
    let inner = &json[1..json.len().saturating_sub(1).max(1)];
    let decoded: Option<String> = if inner.contains(&b'\\') {
        serde_json::from_slice(json).ok()
    } else {
        None
    };
    let text = decoded.as_deref().map_or(inner, str::as_bytes);
    if text
        .iter()
        .any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        for &b in text {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = br#"{"type":"trade","symbol":"X,\"Y\"","code":"AAPL.US","seq":7,"time":1700000000000,"price":651.10,"volume":null,"turnover":1e5,"side":"buy"}"#;

    fn written(columns: &Columns) -> String {
        let t = TradeLine::parse(LINE).unwrap();
        let mut out = Vec::new();
        columns.header(&mut out);
        columns.trade(&mut out, &mut Vec::new(), &t);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fields_pick_values_in_their_order_with_the_same_digits() {
        let s = Columns::with_fields(Format::Jsonl, false, "time,code,price,volume").unwrap();
        assert_eq!(
            written(&s),
            "{\"time\":1700000000000,\"code\":\"AAPL.US\",\"price\":651.10,\"volume\":null}\n"
        );
        let all = Columns::all(Format::Jsonl, false);
        assert!(all.is_full_json());
        assert_eq!(written(&all).as_bytes(), [LINE, b"\n"].concat());
        assert!(!s.is_full_json());
    }

    #[test]
    fn csv_has_a_header_and_quotes_as_rfc_4180_says() {
        let s =
            Columns::with_fields(Format::Csv, false, "symbol,price,volume,turnover,side").unwrap();
        assert_eq!(
            written(&s),
            "symbol,price,volume,turnover,side\n\"X,\"\"Y\"\"\",651.10,,1e5,buy\n"
        );
    }

    #[test]
    fn an_unknown_or_repeated_field_is_refused_naming_the_valid_ones() {
        let e = Columns::with_fields(Format::Jsonl, false, "time,open")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"open\" is not a field of trade lines"), "{e}");
        assert!(e.contains("valid: type, symbol, code, seq, time, price, volume, turnover, side"));
        let e = Columns::with_fields(Format::Jsonl, true, "time")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("of bar lines") && e.contains("open, high, low, close"),
            "{e}"
        );
        assert!(Columns::with_fields(Format::Jsonl, false, "time,time").is_err());
        assert!(Columns::with_fields(Format::Jsonl, false, "").is_err());
    }
}
