//! A line of the tool's read into a row: the JSON text of each value by
//! its key ([`texts`]: a trade line by position with
//! [`TradeLine::parse`], any other line member by member), and each text
//! made the value of its column ([`cell`]), or refused saying why.

use std::borrow::Cow;

use crate::form::line::TradeLine;
use crate::form::parquet::error::RowError;
use crate::form::parquet::schema::{Column, Kind, Rows};
use crate::wire::json;

/// Every key of trade and bar lines: where a line's values are kept
/// ([`Texts`]) while it is read.
pub const KEYS: [&str; 17] = [
    "type", "symbol", "code", "seq", "time", "price", "volume", "turnover", "side", "interval",
    "start", "end", "open", "high", "low", "close", "trades",
];

/// The place of `key` in [`KEYS`].
pub fn slot(key: impl AsRef<[u8]>) -> Option<usize> {
    let key = key.as_ref();
    KEYS.iter().position(|k| k.as_bytes() == key)
}

/// A line's values by the place of their key in [`KEYS`]: the JSON text
/// of each, as the line has it.
pub type Texts<'a> = [Option<&'a [u8]>; KEYS.len()];

/// The values of `line` (with or without its newline) by key, and which
/// lines it is of: a trade line of the tool's layout read by position,
/// any other object member by member (keys in any order, spaces, keys
/// the tool does not write, which are passed over).
pub fn texts(line: &[u8]) -> Result<(Rows, Texts<'_>), RowError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    if let Some(t) = TradeLine::parse(line) {
        let mut texts = [None; KEYS.len()];
        let values = [
            &b"\"trade\""[..],
            t.symbol,
            t.code,
            t.seq,
            t.time_text,
            t.price,
            t.volume,
            t.turnover,
            t.side,
        ];
        for (slot, v) in texts.iter_mut().zip(values) {
            *slot = Some(v);
        }
        return Ok((Rows::Trades, texts));
    }
    by_members(line)
}

/// [`texts`] of a line that is not a trade line of the tool's layout.
fn by_members(line: &[u8]) -> Result<(Rows, Texts<'_>), RowError> {
    let mut texts: Texts = [None; KEYS.len()];
    let mut twice = false;
    let start = json::ws(line, 0);
    let end = json::members(line, start, |key, value| {
        if let Some(i) = slot(key.inner(line)) {
            twice |= texts[i].is_some();
            texts[i] = Some(value.text(line));
        }
    })
    .ok_or(RowError::NotARow("not a JSON object"))?;
    if json::ws(line, end) != line.len() {
        return Err(RowError::NotARow("not a JSON object"));
    }
    if twice {
        return Err(RowError::NotARow("a key given twice"));
    }
    let rows = match texts[0] {
        Some(b"\"trade\"") => Rows::Trades,
        Some(b"\"bar\"" | b"\"kline\"") => Rows::Bars,
        Some(b"\"gap\"") => return Err(RowError::NotARow("a gap line")),
        Some(b"\"depth\"") => return Err(RowError::NotARow("a depth line")),
        _ => return Err(RowError::NotARow("not a trade or bar line")),
    };
    let complete = rows
        .keys()
        .iter()
        .all(|k| slot(k).is_some_and(|i| texts[i].is_some()));
    if !complete {
        return Err(RowError::NotARow(match rows {
            Rows::Trades => "a trade line without every key",
            Rows::Bars => "a bar line without every key",
        }));
    }
    Ok((rows, texts))
}

/// One value of a row, as its column holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell<'a> {
    /// `null`.
    Null,
    /// A string's UTF-8 bytes.
    Text(Cow<'a, [u8]>),
    /// An `INT64` value: a count, ms, a price's unscaled integer, a `seq`
    /// (its bits).
    Int(i64),
    /// A volume's or turnover's unscaled integer.
    Wide(i128),
}

/// The value of column `c` from its JSON `text` (a value as
/// [`json::value`] finds it, which [`texts`] gives); refused (naming the
/// key and the value) when the column cannot hold it.
pub fn cell(c: Column, text: &[u8]) -> Result<Cell<'_>, RowError> {
    if text == b"null" {
        return if c.nullable {
            Ok(Cell::Null)
        } else {
            Err(RowError::unfit(
                c.key,
                text,
                "null, which the column has not",
            ))
        };
    }
    match c.kind {
        Kind::Text => string(text)
            .map(Cell::Text)
            .ok_or_else(|| RowError::unfit(c.key, text, "not a string of UTF-8")),
        Kind::Seq => unsigned(text)
            .map(|v| Cell::Int(v as i64))
            .ok_or_else(|| RowError::unfit(c.key, text, "not an integer from 0 to 2^64-1")),
        Kind::Count | Kind::Millis => unsigned(text)
            .and_then(|v| i64::try_from(v).ok())
            .map(Cell::Int)
            .ok_or_else(|| RowError::unfit(c.key, text, "not an integer from 0 to 2^63-1")),
        Kind::Price | Kind::Amount => {
            let d = c.kind.decimal().expect("a decimal");
            let v = d
                .unscaled(text)
                .map_err(|why| RowError::unfit(c.key, text, why))?;
            Ok(if c.kind == Kind::Price {
                // The precision (18) keeps it within an `i64`.
                Cell::Int(v as i64)
            } else {
                Cell::Wide(v)
            })
        }
    }
}

/// The text of a JSON string token (as [`json::value`] found it: its
/// quotes and escapes checked), unescaped; `None` when it is not a string
/// (or not UTF-8).
fn string(token: &[u8]) -> Option<Cow<'_, [u8]>> {
    let inner = token.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    // Codes, symbols and sides are short and ASCII: one pass says both
    // that no escape needs undoing and that the text is UTF-8.
    if inner.iter().all(|&b| b.is_ascii() && b != b'\\') {
        return Some(Cow::Borrowed(inner));
    }
    if inner.contains(&b'\\') {
        let s: String = serde_json::from_slice(token).ok()?;
        return Some(Cow::Owned(s.into_bytes()));
    }
    std::str::from_utf8(inner).ok()?;
    Some(Cow::Borrowed(inner))
}

/// The value of a JSON number that is an unsigned integer of 64 bits.
fn unsigned(text: &[u8]) -> Option<u64> {
    // The common case, read at once: 1 to 19 digits, no leading zero,
    // which no u64 overflows.
    if (1..=19).contains(&text.len()) && (text.len() == 1 || text[0] != b'0') {
        let mut v = 0u64;
        let mut digits = true;
        for &d in text {
            digits &= d.is_ascii_digit();
            v = v
                .wrapping_mul(10)
                .wrapping_add(u64::from(d.wrapping_sub(b'0')));
        }
        if digits {
            return Some(v);
        }
    }
    let n = json::whole_number(text).filter(|n| n.is_unsigned_integer())?;
    n.int.iter().try_fold(0u64, |v, &d| {
        v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::parquet::schema::column;

    const TRADE: &[u8] = br#"{"type":"trade","symbol":"NASDAQ:AAPL","code":"AAPL.US","seq":1605509068000001,"time":1605509068000,"price":651.12,"volume":300,"turnover":12345.6,"side":"buy"}"#;

    fn text_of<'a>(texts: &Texts<'a>, key: &str) -> Option<&'a [u8]> {
        texts[slot(key).unwrap()]
    }

    #[test]
    fn a_trade_line_is_read_by_position_or_member_by_member_alike() {
        let (rows, fast) = texts(TRADE).unwrap();
        assert_eq!(rows, Rows::Trades);
        assert_eq!(text_of(&fast, "price"), Some(&b"651.12"[..]));
        assert_eq!(text_of(&fast, "type"), Some(&b"\"trade\""[..]));
        assert_eq!(text_of(&fast, "start"), None);
        let shuffled = br#" {"seq":1605509068000001, "type":"trade","code":"AAPL.US","symbol":"NASDAQ:AAPL","time":1605509068000,"price":651.12,"volume":300,"turnover":12345.6,"side":"buy","extra":[1]}"#;
        let (rows, slow) = texts(shuffled).unwrap();
        assert_eq!((rows, slow), (Rows::Trades, fast));
    }

    #[test]
    fn lines_that_are_not_rows_say_what_they_are() {
        let not = |line: &[u8]| match texts(line) {
            Err(RowError::NotARow(what)) => what,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            not(
                br#"{"type":"gap","connection":"stock#1","codes":[],"from":1,"to":2,"reason":"x"}"#
            ),
            "a gap line"
        );
        assert_eq!(
            not(br#"{"type":"depth","code":"A","bids":[],"asks":[]}"#),
            "a depth line"
        );
        assert_eq!(not(b"garbage"), "not a JSON object");
        assert_eq!(not(b"{\"type\":\"trade\"} x"), "not a JSON object");
        assert_eq!(
            not(br#"{"type":"trade","code":"A"}"#),
            "a trade line without every key"
        );
        assert_eq!(
            not(br#"{"type":"trade","type":"trade"}"#),
            "a key given twice"
        );
        assert_eq!(not(b"[1]"), "not a JSON object");
    }

    #[test]
    fn each_value_becomes_its_columns_value_or_is_refused() {
        let c = |k| column(k).unwrap();
        assert_eq!(
            cell(c("symbol"), br#""A\"B""#).unwrap(),
            Cell::Text(Cow::Owned(b"A\"B".to_vec()))
        );
        assert_eq!(cell(c("side"), b"null").unwrap(), Cell::Null);
        assert_eq!(
            cell(c("seq"), b"18446744073709551615").unwrap(),
            Cell::Int(-1),
            "u64::MAX, its bits"
        );
        assert_eq!(
            cell(c("price"), b"651.12").unwrap(),
            Cell::Int(65_112_000_000)
        );
        assert_eq!(
            cell(c("turnover"), b"1e3").unwrap(),
            Cell::Wide(100_000_000_000)
        );
        assert_eq!(cell(c("trades"), b"null").unwrap(), Cell::Null);
        let why = |k, v: &[u8]| match cell(c(k), v) {
            Err(e @ RowError::Unfit { .. }) => e.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            why("price", b"651.123456789"),
            "price 651.123456789 does not fit the Parquet file: more than 8 decimals: DECIMAL(18,8) would round it"
        );
        assert!(why("price", b"null").contains("null, which the column has not"));
        assert!(why("code", b"7").contains("not a string"));
        assert!(why("seq", b"18446744073709551616").contains("2^64-1"));
        assert!(why("time", b"9223372036854775808").contains("2^63-1"));
        assert!(why("time", b"1.5").contains("2^63-1"));
        assert!(why("side", b"true").contains("not a string"));
    }
}
