//! Fields of the tool's own JSON lines, found by position without decoding
//! the line: the capture, its read-back, `replay` and `serve` look at a
//! line's time, code and type ([`LineType`]) many times a second and need
//! nothing else. A trade line of the tool's layout is split into its
//! values ([`TradeLine`]), each read with the JSON grammar of
//! [`crate::wire::json`].

use crate::wire::json;

/// What a line of the tool's is, by its `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineType {
    /// A trade line.
    Trade,
    /// A depth line.
    Depth,
    /// A gap line (read back, its time is its `to`: the line stands where
    /// the data resumes, as it did in the stream that was captured).
    Gap,
    /// A bar line, built from trades (`"bar"`) or AllTick's K-line
    /// (`"kline"`, from `history`); read back, its time is its `start`, as
    /// its file is named.
    Bar,
}

/// Where `needle` first occurs in `hay`: candidates by their first byte,
/// then compared byte by byte (the needles are keys of a few bytes: a
/// library comparison per candidate costs a call each).
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut at = 0;
    while let Some(i) = hay.get(at..)?.iter().position(|&b| b == first) {
        let start = at + i;
        if hay.get(start + 1..).is_some_and(|h| starts_with(h, rest)) {
            return Some(start);
        }
        at = start + 1;
    }
    None
}

/// Whether `s` starts with `prefix`, compared byte by byte.
#[inline]
pub fn starts_with(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s.iter().zip(prefix).all(|(a, b)| a == b)
}

/// The unsigned integer (at most 19 digits) that follows `key` in `line`.
pub fn number_after(line: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(line, key)? + key.len();
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// The string (without escapes) that follows `key` in `line`.
pub fn text_after<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a str> {
    let at = find(line, key)? + key.len();
    let len = line[at..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&line[at..at + len]).ok()
}

/// A trade line of the tool's own, split into its values as they stand
/// in the line: strings with their quotes (and escapes), numbers and
/// `null` as written. Nothing is decoded or copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeLine<'a> {
    /// `symbol`: a JSON string.
    pub symbol: &'a [u8],
    /// `code`: a JSON string.
    pub code: &'a [u8],
    /// `seq`: digits.
    pub seq: &'a [u8],
    /// `time`: digits.
    pub time_text: &'a [u8],
    /// `time`, ms since the epoch.
    pub time: u64,
    /// `price`: a JSON number.
    pub price: &'a [u8],
    /// `volume`: a JSON number, or `null`.
    pub volume: &'a [u8],
    /// `turnover`: a JSON number, or `null`.
    pub turnover: &'a [u8],
    /// `side`: a JSON string, or `null`.
    pub side: &'a [u8],
}

/// The keys of a trade line, in the order the tool writes them.
pub const TRADE_KEYS: [&str; 9] = [
    "type", "symbol", "code", "seq", "time", "price", "volume", "turnover", "side",
];

impl<'a> TradeLine<'a> {
    /// A trade line as the tool writes it (`{"type":"trade","symbol":…`,
    /// its keys in [`TRADE_KEYS`] order), with or without its newline;
    /// `None` for any other line.
    pub fn parse(line: &'a [u8]) -> Option<TradeLine<'a>> {
        let b = line.strip_suffix(b"\n").unwrap_or(line);
        let i = json::literal(b, 0, b"{\"type\":\"trade\",\"symbol\":")?;
        let (symbol, i) = value_then(b, i, b",\"code\":")?;
        let (code, i) = value_then(b, i, b",\"seq\":")?;
        let (seq, i) = value_then(b, i, b",\"time\":")?;
        let (time_text, i) = value_then(b, i, b",\"price\":")?;
        let (price, i) = value_then(b, i, b",\"volume\":")?;
        let (volume, i) = value_then(b, i, b",\"turnover\":")?;
        let (turnover, i) = value_then(b, i, b",\"side\":")?;
        let (side, i) = value_then(b, i, b"}")?;
        if i != b.len() || symbol[0] != b'"' || code[0] != b'"' {
            return None;
        }
        let time = digits(time_text)?;
        digits(seq)?;
        Some(TradeLine {
            symbol,
            code,
            seq,
            time_text,
            time,
            price,
            volume,
            turnover,
            side,
        })
    }

    /// The `time` of a trade line as the tool writes it, read by position
    /// (the keys before it skipped, not searched for); `None` for any
    /// other line.
    pub fn time_of(line: &[u8]) -> Option<u64> {
        let i = json::literal(line, 0, b"{\"type\":\"trade\",\"symbol\":")?;
        let (_, i) = value_then(line, i, b",\"code\":")?;
        let (_, i) = value_then(line, i, b",\"seq\":")?;
        let (_, i) = value_then(line, i, b",\"time\":")?;
        // The price's key follows it.
        let (time, _) = value_then(line, i, b",")?;
        digits(time)
    }

    /// A trade line of any key order (or spacing), rewritten into `buf`
    /// in the tool's own form: what [`TradeLine::parse`] then reads.
    /// False when it is not a trade line with every key.
    pub fn canonical(line: &[u8], buf: &mut Vec<u8>) -> bool {
        type Map = std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>;
        let Ok(map) = serde_json::from_slice::<Map>(line) else {
            return false;
        };
        if map.get("type").map(|v| v.get()) != Some("\"trade\"") {
            return false;
        }
        buf.clear();
        buf.push(b'{');
        for (i, key) in TRADE_KEYS.iter().enumerate() {
            let Some(v) = map.get(*key) else {
                return false;
            };
            if i > 0 {
                buf.push(b',');
            }
            buf.push(b'"');
            buf.extend_from_slice(key.as_bytes());
            buf.extend_from_slice(b"\":");
            buf.extend_from_slice(v.get().as_bytes());
        }
        buf.push(b'}');
        TradeLine::parse(buf).is_some()
    }

    /// `code` without its quotes (a code never needs escapes).
    pub fn code_str(&self) -> Option<&'a str> {
        unquoted(self.code)
    }
}

/// A JSON string token's text when it has no escapes.
pub fn unquoted(token: &[u8]) -> Option<&str> {
    let inner = token.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

/// The decimal value of `text`, all digits (at most 19).
pub fn digits(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in text {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

/// The JSON value at `b[i]`, and the index past it and the `key` (of a
/// fixed length, compared inline) that must follow it.
#[inline(always)]
fn value_then<'a, const N: usize>(
    b: &'a [u8],
    i: usize,
    key: &[u8; N],
) -> Option<(&'a [u8], usize)> {
    let end = i + token_len(b.get(i..)?)?;
    Some((&b[i..end], json::literal(b, end, key)?))
}

/// The length of the JSON value at the start of `s` ([`json::value`]); what
/// follows it is the caller's to check.
#[inline(always)]
fn token_len(s: &[u8]) -> Option<usize> {
    json::value(s, 0).map(|v| v.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_by_their_key() {
        let line = br#"{"type":"trade","code":"AAPL.US","seq":12,"time":1700000000000}"#;
        assert_eq!(find(line, b"\"seq\":"), Some(33));
        assert_eq!(find(line, b"\"nope\":"), None);
        assert_eq!(number_after(line, b"\"time\":"), Some(1_700_000_000_000));
        assert_eq!(text_after(line, b"\"code\":\""), Some("AAPL.US"));
        assert_eq!(number_after(br#"{"time":}"#, b"\"time\":"), None);
        assert_eq!(
            number_after(br#"{"time":12345678901234567890}"#, b"\"time\":"),
            None
        );
    }

    #[test]
    fn a_trade_line_splits_into_its_values_in_any_key_order() {
        let line = br#"{"type":"trade","symbol":"NASDAQ:A\"B","code":"AAPL.US","seq":12,"time":1700000000000,"price":651.10,"volume":null,"turnover":1e5,"side":"buy"}"#;
        let t = TradeLine::parse(line).unwrap();
        assert_eq!(t.symbol, br#""NASDAQ:A\"B""#);
        assert_eq!(t.code_str(), Some("AAPL.US"));
        assert_eq!((t.seq, t.time), (&b"12"[..], 1_700_000_000_000));
        assert_eq!(
            (t.price, t.volume, t.turnover),
            (&b"651.10"[..], &b"null"[..], &b"1e5"[..])
        );
        assert_eq!(t.side, br#""buy""#);
        assert_eq!(
            unquoted(t.symbol),
            None,
            "an escaped string is not borrowed"
        );
        let shuffled = br#"{ "time": 1700000000000, "type":"trade","code":"AAPL.US","seq":12,"symbol":"NASDAQ:A\"B","price":651.10,"volume":null,"turnover":1e5,"side":"buy"}"#;
        assert!(TradeLine::parse(shuffled).is_none());
        let mut buf = Vec::new();
        assert!(TradeLine::canonical(shuffled, &mut buf));
        assert_eq!(TradeLine::parse(&buf), Some(t));
        assert!(!TradeLine::canonical(
            br#"{"type":"depth","code":"A"}"#,
            &mut buf
        ));
        assert!(TradeLine::parse(br#"{"type":"trade","symbol":"A","code":"A","seq":1}"#).is_none());
        assert_eq!(TradeLine::time_of(line), Some(1_700_000_000_000));
        assert_eq!(TradeLine::time_of(shuffled), None);
        // Values are JSON: a number with a leading zero, or a bare word, is none.
        for bad in [
            &br#"{"type":"trade","symbol":"A","code":"A","seq":1,"time":007,"price":1}"#[..],
            br#"{"type":"trade","symbol":"A","code":"A","seq":x,"time":7,"price":1}"#,
        ] {
            assert_eq!(TradeLine::time_of(bad), None);
        }
    }
}
