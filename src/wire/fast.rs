//! The trade push as AllTick's docs print it, read and checked in one pass
//! and written out by copying: the path nearly every tick takes.
//!
//! [`read`] accepts a frame only when it is exactly the documented shape —
//! every key in the documented order, written without whitespace or with
//! one space after each colon and comma as the docs print it — and every value
//! is already in the form the line carries: integers without leading zeros,
//! decimals that are valid JSON number text, a positive price, a code
//! without escapes. It then knows the line is valid, and [`write`] copies
//! the frame's own digits into it. Anything else, valid or not, returns
//! `None` and takes the general path ([`crate::wire::scan`], then the full
//! decoder), which rewrites, reports and counts; so this path only has to
//! be right about what it accepts, and the property tests hold it to the
//! general path's output.

use crate::wire::json::{self, literal as lit};
use crate::wire::protocol::{Side, to_millis};

/// A trade push of the documented shape whose every value can be copied
/// into the line as it stands.
#[derive(Debug, PartialEq, Eq)]
pub struct DocumentedTrade<'a> {
    /// `code`, without escapes.
    pub code: &'a str,
    /// `seq`.
    pub seq: u64,
    /// `tick_time` in milliseconds.
    pub time: u64,
    pub seq_text: &'a [u8],
    /// `tick_time`'s digits when they are milliseconds already.
    pub time_text: Option<&'a [u8]>,
    pub price: &'a [u8],
    pub volume: Option<&'a [u8]>,
    pub turnover: Option<&'a [u8]>,
    pub side: Option<Side>,
}

/// How AllTick starts every trade push, up to the code's first character.
const START: &[u8; 32] = br#"{"cmd_id":22998,"data":{"code":""#;

/// The same with a space after each `:` and `,`, as the docs print it.
const START_SPACED: &[u8; 36] = br#"{"cmd_id": 22998, "data": {"code": ""#;

/// The longest integer read here: 19 digits never overflow a `u64`.
const MAX_DIGITS: usize = 19;

/// Read a frame of the documented shape whose values need no rewriting.
pub fn read(text: &str) -> Option<DocumentedTrade<'_>> {
    let b = text.as_bytes();
    match lit(b, 0, START) {
        Some(i) => read_from::<false>(text, i),
        None => read_from::<true>(text, lit(b, 0, START_SPACED)?),
    }
}

/// The rest of [`read`], from the code's first character at `i`; with
/// `SPACED`, a space may follow each comma and colon.
#[inline(always)]
fn read_from<const SPACED: bool>(text: &str, i: usize) -> Option<DocumentedTrade<'_>> {
    let b = text.as_bytes();
    let (code_end, escaped) = json::string_from(b, i)?;
    if escaped {
        return None;
    }
    // The code ends at an ASCII quote, so both ends are char boundaries.
    let code = text.get(i..code_end - 1).filter(|c| !c.is_empty())?;
    let i = key::<SPACED, _>(b, code_end, br#""seq":"#)?;
    let (seq, seq_text, i) = integer(b, i)?;
    let i = key::<SPACED, _>(b, i, br#""tick_time":"#)?;
    let (tick_time, tick_text, i) = integer(b, i)?;
    let i = key::<SPACED, _>(b, i, br#""price":"#)?;
    let (price, i) = decimal(b, i, true)?;
    let i = key::<SPACED, _>(b, i, br#""volume":"#)?;
    let (volume, i) = optional(b, i)?;
    let i = key::<SPACED, _>(b, i, br#""turnover":"#)?;
    let (turnover, i) = optional(b, i)?;
    let i = key::<SPACED, _>(b, i, br#""trade_direction":"#)?;
    let (side, i) = if b.get(i) == Some(&b'n') {
        (None, lit(b, i, b"null")?)
    } else {
        let (n, _, i) = integer(b, i)?;
        let side = match n {
            1 => Some(Side::Buy),
            2 => Some(Side::Sell),
            _ => None,
        };
        (side, i)
    };
    if b.get(i..)? != b"}}" {
        return None;
    }
    let time = to_millis(tick_time);
    Some(DocumentedTrade {
        code,
        seq,
        time,
        seq_text,
        time_text: (time == tick_time).then_some(tick_text),
        price,
        volume,
        turnover,
        side,
    })
}

/// The next member's key: a comma, then `word` (the quoted key and its
/// colon), with `SPACED` each followed by at most one space. Returns where
/// the value starts.
#[inline(always)]
fn key<const SPACED: bool, const N: usize>(b: &[u8], i: usize, word: &[u8; N]) -> Option<usize> {
    let space = |i: usize| usize::from(SPACED && b.get(i) == Some(&b' '));
    let i = lit(b, i, b",")?;
    let i = lit(b, i + space(i), word)?;
    Some(i + space(i))
}

/// A non-negative integer, as a number or a string of digits, without
/// leading zeros: its value, its digits and the index after it.
#[inline(always)]
fn integer(b: &[u8], i: usize) -> Option<(u64, &[u8], usize)> {
    let quoted = b.get(i) == Some(&b'"');
    let start = i + usize::from(quoted);
    let n = json::number(b, start).filter(|n| n.is_unsigned_integer())?;
    if n.int.len() > MAX_DIGITS {
        return None;
    }
    let value = n
        .int
        .iter()
        .fold(0u64, |v, &c| v * 10 + u64::from(c - b'0'));
    let end = if quoted { lit(b, n.end, b"\"")? } else { n.end };
    Some((value, n.int, end))
}

/// A decimal (string or number) that is valid JSON number text as it
/// stands, without a sign or an exponent, and, when `positive`, not
/// zero. Returns its text and the index after it.
#[inline(always)]
fn decimal(b: &[u8], i: usize, positive: bool) -> Option<(&[u8], usize)> {
    let quoted = b.get(i) == Some(&b'"');
    let start = i + usize::from(quoted);
    let n = json::number(b, start).filter(|n| !n.negative && n.exp.is_empty())?;
    let text = &b[start..n.end];
    // Only digits and a dot, which sorts below '0'.
    if positive && !text.iter().any(|&c| c > b'0') {
        return None;
    }
    let end = if quoted { lit(b, n.end, b"\"")? } else { n.end };
    Some((text, end))
}

/// A volume or turnover: a decimal, or `null` or `""` for none.
#[inline(always)]
fn optional(b: &[u8], i: usize) -> Option<(Option<&[u8]>, usize)> {
    match b.get(i..i + 2)? {
        b"nu" => Some((None, lit(b, i, b"null")?)),
        b"\"\"" => Some((None, i + 2)),
        _ => decimal(b, i, false).map(|(t, end)| (Some(t), end)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: &str, time: &str, price: &str, vol: &str, turn: &str, dir: &str) -> String {
        format!(
            r#"{{"cmd_id":22998,"data":{{"code":"AAPL.US","seq":{seq},"tick_time":{time},"price":{price},"volume":{vol},"turnover":{turn},"trade_direction":{dir}}}}}"#
        )
    }

    #[test]
    fn steps_aside_for_anything_that_needs_rewriting_or_is_invalid() {
        for text in [
            frame("05", "1", r#""1""#, "1", "1", "1"),
            frame("5", "1", r#""0""#, "1", "1", "1"),
            frame("5", "1", r#""0.00""#, "1", "1", "1"),
            frame("5", "1", r#"".5""#, "1", "1", "1"),
            frame("5", "1", r#""5.""#, "1", "1", "1"),
            frame("5", "1", r#""007.5""#, "1", "1", "1"),
            frame("5", "1", r#""1.2.3""#, "1", "1", "1"),
            frame("5", "1", r#""1e5""#, "1", "1", "1"),
            frame("5", "1", "1e5", "1", "1", "1"),
            frame("5", "1", "null", "1", "1", "1"),
            frame("5", "1", r#""1""#, r#""-1""#, "1", "1"),
            frame("5", "1", r#""1""#, "1", "1", r#""01""#),
            frame("5.0", "1", r#""1""#, "1", "1", "1"),
            frame("12345678901234567890", "1", r#""1""#, "1", "1", "1"),
            frame("5", "1", r#""1""#, "1", "1", "true"),
            frame("5", "1", r#""1""#, "1", "1", "1") + " ",
            frame("5", "1", r#""1""#, "1", "1", "1").replace("AAPL", "AA\\u0050L"),
            frame("5", "1", r#""1""#, "1", "1", "1").replace("AAPL.US", ""),
            frame("5", "1", r#""1""#, "1", "1", "1").replace(":1}}", ":1,\"x\":1}}"),
            frame("5", "1", r#""1""#, "1", "1", "1").replace(",\"seq\"", ",  \"seq\""),
            frame("5", "1", r#""1""#, "1", "1", "1").replace(":\"AAPL", ": \"AAPL"),
            frame("5", "1", r#""1""#, "1", "1", "1").replace("}}", "} }"),
        ] {
            assert_eq!(read(&text), None, "{text}");
        }
    }
}
