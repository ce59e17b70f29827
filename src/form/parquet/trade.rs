//! A trade line of the tool's own layout read straight into its row's
//! values in one pass ([`cells`]): the common line only, its strings
//! ASCII without escapes, its numbers plain digits (`651.12`, `300`,
//! `null` where a column may be null). Any other line, or a value not
//! so plain, gives `None`, and is read in full by [`super::row`], which
//! says what is wrong with it; for a line read here both give the same
//! values.

use std::borrow::Cow;

use crate::form::parquet::decimal::{AMOUNT, Decimal, PRICE};
use crate::form::parquet::row::Cell;

/// The values of a trade line as the tool writes it (with or without its
/// newline), in the order of its keys (`type`, `symbol`, `code`, `seq`,
/// `time`, `price`, `volume`, `turnover`, `side`), as their columns hold
/// them; `None` when it is not such a line with plain values.
pub fn cells(line: &[u8]) -> Option<[Cell<'_>; 9]> {
    let b = line.strip_suffix(b"\n").unwrap_or(line);
    first(b)
        .filter(|&(_, n)| n == b.len())
        .map(|(cells, _)| cells)
}

/// [`cells`] of the first line of `b`, lines one after another, and its
/// length with its newline; `None` when it is not such a line.
pub fn first(b: &[u8]) -> Option<([Cell<'_>; 9], usize)> {
    let mut r = Read { b, at: 0 };
    r.literal(b"{\"type\":\"trade\",\"symbol\":")?;
    let symbol = r.string()?;
    r.literal(b",\"code\":")?;
    let code = r.string()?;
    r.literal(b",\"seq\":")?;
    let seq = r.integer()?;
    r.literal(b",\"time\":")?;
    let time = i64::try_from(r.integer()?).ok()?;
    r.literal(b",\"price\":")?;
    // The precision (18) keeps it within an `i64`.
    let price = r.decimal(PRICE)? as i64;
    r.literal(b",\"volume\":")?;
    let volume = r.amount()?;
    r.literal(b",\"turnover\":")?;
    let turnover = r.amount()?;
    r.literal(b",\"side\":")?;
    let side = match r.null() {
        true => Cell::Null,
        false => Cell::Text(Cow::Borrowed(r.string()?)),
    };
    r.literal(b"}")?;
    let end = match b.get(r.at) {
        None => r.at,
        Some(b'\n') => r.at + 1,
        Some(_) => return None,
    };
    let cells = [
        Cell::Text(Cow::Borrowed(b"trade")),
        Cell::Text(Cow::Borrowed(symbol)),
        Cell::Text(Cow::Borrowed(code)),
        Cell::Int(seq as i64),
        Cell::Int(time),
        Cell::Int(price),
        volume,
        turnover,
        side,
    ];
    Some((cells, end))
}

/// A line being read, and where.
struct Read<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Read<'a> {
    /// Past `word`, which must come next.
    #[inline]
    fn literal<const N: usize>(&mut self, word: &[u8; N]) -> Option<()> {
        let end = self.at + N;
        (self.b.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// Past `null` when it comes next.
    #[inline]
    fn null(&mut self) -> bool {
        self.literal(b"null").is_some()
    }

    /// A string of printable ASCII without escapes: its text.
    #[inline]
    fn string(&mut self) -> Option<&'a [u8]> {
        self.literal(b"\"")?;
        let start = self.at;
        loop {
            match *self.b.get(self.at)? {
                b'"' => break,
                b'\\' | 0..0x20 | 0x80.. => return None,
                _ => self.at += 1,
            }
        }
        self.at += 1;
        Some(&self.b[start..self.at - 1])
    }

    /// Digits without a leading zero (or a lone `0`), at most 19: their
    /// value.
    #[inline]
    fn integer(&mut self) -> Option<u64> {
        let start = self.at;
        let mut v = 0u64;
        while let Some(&d) = self.b.get(self.at).filter(|d| d.is_ascii_digit()) {
            v = v * 10 + u64::from(d - b'0');
            self.at += 1;
            if self.at - start > 19 {
                return None;
            }
        }
        let n = self.at - start;
        (n == 1 || (n > 1 && self.b[start] != b'0')).then_some(v)
    }

    /// A plain number that `d` holds: its unscaled value.
    #[inline]
    fn decimal(&mut self, d: Decimal) -> Option<i128> {
        let (v, n) = d.plain_start(&self.b[self.at..])?;
        self.at += n;
        Some(v)
    }

    /// A volume or turnover: `null`, or a plain number.
    #[inline]
    fn amount(&mut self) -> Option<Cell<'a>> {
        if self.null() {
            return Some(Cell::Null);
        }
        self.decimal(AMOUNT).map(Cell::Wide)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::line::TRADE_KEYS;
    use crate::form::parquet::row::{cell, slot, texts};
    use crate::form::parquet::schema::column;

    /// The values the full reading gives.
    fn full(line: &[u8]) -> Vec<Cell<'_>> {
        let (_, t) = texts(line).unwrap();
        TRADE_KEYS
            .iter()
            .map(|k| cell(column(k).unwrap(), t[slot(k).unwrap()].unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn a_plain_trade_line_reads_as_the_full_reading_does() {
        for line in [
            &br#"{"type":"trade","symbol":"NASDAQ:AAPL","code":"AAPL.US","seq":1605509068000001,"time":1605509068000,"price":651.12,"volume":300,"turnover":12345.6,"side":"buy"}"#[..],
            br#"{"type":"trade","symbol":"EURUSD","code":"EURUSD","seq":0,"time":1,"price":0.00000001,"volume":null,"turnover":null,"side":null}
"#,
            br#"{"type":"trade","symbol":"A","code":"A","seq":9999999999999999999,"time":9223372036854775807,"price":9999999999.99999999,"volume":0.5,"turnover":123456789012345678,"side":"sell"}"#,
        ] {
            let fast = cells(line).unwrap();
            assert_eq!(fast.to_vec(), full(line), "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn any_other_line_or_value_is_left_to_the_full_reading() {
        let line = |price: &str, side: &str| {
            format!(
                r#"{{"type":"trade","symbol":"A","code":"A","seq":1,"time":2,"price":{price},"volume":1,"turnover":1,"side":{side}}}"#
            )
        };
        assert!(cells(line("1", "null").as_bytes()).is_some());
        for (price, side) in [
            ("-1", "null"),
            ("1e3", "null"),
            ("01", "null"),
            ("1.", "null"),
            ("1.123456789", "null"),
            ("10000000000", "null"),
            ("null", "null"),
            ("1", r#""a\"b""#),
            ("1", "\"é\""),
            ("1", "7"),
        ] {
            assert!(
                cells(line(price, side).as_bytes()).is_none(),
                "{price} {side}"
            );
        }
        assert!(cells(br#"{"type":"trade","symbol":"A","code":"A","seq":1,"time":9223372036854775808,"price":1,"volume":1,"turnover":1,"side":null}"#).is_none());
        assert!(cells(br#"{"type":"bar","symbol":"A"}"#).is_none());
        let two = format!("{}\n{}\n", line("1", "null"), line("2", "null"));
        let (_, n) = first(two.as_bytes()).unwrap();
        assert_eq!(n, two.len() / 2);
        assert!(cells(format!("{} ", line("1", "null")).as_bytes()).is_none());
    }
}
