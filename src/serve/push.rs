//! A captured line as the push AllTick sends for it, in the docs' form:
//! decimals as strings with exactly the captured digits, `seq` as
//! captured, `tick_time` the line's `time` in milliseconds. Pure.
//!
//! ```text
//! {"type":"trade",…,"code":"AAPL.US","seq":5,"time":1605509068000,"price":651.10,"volume":300,"turnover":null,"side":"buy"}
//! {"cmd_id":22998,"data":{"code":"AAPL.US","seq":5,"tick_time":1605509068000,"price":"651.10","volume":"300","trade_direction":1}}
//! ```
//!
//! A `null` volume or turnover is left out of the push (as AllTick leaves
//! out what a market does not have, e.g. the volume of a forex book); a
//! `null` side is `trade_direction` 0, buy 1, sell 2. A depth line's
//! levels become `{"price":"…","volume":"…"}` objects, a `null` volume
//! left out, each side cut to the subscription's `depth_level`.
//!
//! A trade line of the tool's own layout is read by that layout
//! ([`TradeLine`]); any other line as a flat JSON object, member by member
//! ([`crate::wire::json`]), so the order of its keys does not matter. A
//! line without a code, a `seq` or a `time` as integers, or (a trade) a
//! price, has no push.

use crate::form::line::TradeLine;
use crate::wire::json;

/// The members of a line that a push is made of, as raw JSON text.
#[derive(Default)]
struct Fields<'a> {
    code: Option<&'a [u8]>,
    seq: Option<&'a [u8]>,
    time: Option<&'a [u8]>,
    price: Option<&'a [u8]>,
    volume: Option<&'a [u8]>,
    turnover: Option<&'a [u8]>,
    side: Option<&'a [u8]>,
    bids: Option<&'a [u8]>,
    asks: Option<&'a [u8]>,
}

/// The members of the JSON object `line` that pushes use; `None` where
/// the text is not a JSON object.
fn fields(line: &[u8]) -> Option<Fields<'_>> {
    std::str::from_utf8(line).ok()?;
    tool_trade(line).or_else(|| any_object(line))
}

/// A trade line exactly as the tool writes it, read by its layout
/// ([`TradeLine::parse`]).
fn tool_trade(line: &[u8]) -> Option<Fields<'_>> {
    let t = TradeLine::parse(line)?;
    Some(Fields {
        code: Some(t.code),
        seq: Some(t.seq),
        time: Some(t.time_text),
        price: Some(t.price),
        volume: Some(t.volume),
        turnover: Some(t.turnover),
        side: Some(t.side),
        ..Fields::default()
    })
}

/// Any JSON object, member by member.
fn any_object(line: &[u8]) -> Option<Fields<'_>> {
    let mut f = Fields::default();
    json::members(line, json::ws(line, 0), |key, v| {
        let value = Some(v.text(line));
        match key.inner(line) {
            b"code" => f.code = value,
            b"seq" => f.seq = value,
            b"time" => f.time = value,
            b"price" => f.price = value,
            b"volume" => f.volume = value,
            b"turnover" => f.turnover = value,
            b"side" => f.side = value,
            b"bids" => f.bids = value,
            b"asks" => f.asks = value,
            _ => {}
        }
    })?;
    Some(f)
}

/// The elements of the JSON array `raw`, as raw text.
fn elements(raw: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    json::elements(raw, json::ws(raw, 0), |v| out.push(v.text(raw)))?;
    Some(out)
}

/// An unsigned integer of at most 20 digits, as JSON writes it.
fn is_integer(v: &[u8]) -> bool {
    json::number(v, 0)
        .is_some_and(|n| n.is_unsigned_integer() && n.end == v.len() && n.int.len() <= 20)
}

/// A decimal as a JSON string: a number's text quoted, a string kept.
fn push_decimal(out: &mut Vec<u8>, v: &[u8]) {
    if v.starts_with(b"\"") {
        out.extend_from_slice(v);
    } else {
        out.push(b'"');
        out.extend_from_slice(v);
        out.push(b'"');
    }
}

/// What every push starts with: `{"cmd_id":N,"data":{"code":…,"seq":…,"tick_time":…`.
fn head(cmd_id: &str, f: &Fields, capacity: usize) -> Option<Vec<u8>> {
    // A string: every value was read whole by the JSON grammar.
    let code = f.code.filter(|c| c.len() > 2 && c.starts_with(b"\""))?;
    let seq = f.seq.filter(|v| is_integer(v))?;
    let time = f.time.filter(|v| is_integer(v))?;
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(b"{\"cmd_id\":");
    out.extend_from_slice(cmd_id.as_bytes());
    out.extend_from_slice(b",\"data\":{\"code\":");
    out.extend_from_slice(code);
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(seq);
    out.extend_from_slice(b",\"tick_time\":");
    out.extend_from_slice(time);
    Some(out)
}

/// The 22998 push of a trade line.
pub fn trade(line: &[u8]) -> Option<String> {
    let f = fields(line)?;
    let price = f.price.filter(|p| *p != b"null")?;
    let mut out = head("22998", &f, line.len() + 48)?;
    out.extend_from_slice(b",\"price\":");
    push_decimal(&mut out, price);
    for (key, value) in [
        (&b",\"volume\":"[..], f.volume),
        (b",\"turnover\":", f.turnover),
    ] {
        if let Some(v) = value.filter(|v| *v != b"null") {
            out.extend_from_slice(key);
            push_decimal(&mut out, v);
        }
    }
    out.extend_from_slice(match f.side {
        Some(b"\"buy\"") => b",\"trade_direction\":1}}",
        Some(b"\"sell\"") => b",\"trade_direction\":2}}",
        _ => b",\"trade_direction\":0}}",
    });
    String::from_utf8(out).ok()
}

/// The 22999 push of a depth line, each side cut to `levels`.
pub fn depth(line: &[u8], levels: usize) -> Option<String> {
    let f = fields(line)?;
    let mut out = head("22999", &f, line.len() * 2 + 48)?;
    for (side, name) in [(f.bids, &b",\"bids\":["[..]), (f.asks, b"],\"asks\":[")] {
        out.extend_from_slice(name);
        let side = match side {
            None | Some(b"null") => Vec::new(),
            Some(raw) => elements(raw)?,
        };
        for (i, level) in side.iter().take(levels).enumerate() {
            let pair = elements(level)?;
            let (price, volume) = match pair[..] {
                [price] => (price, None),
                [price, volume] => (price, Some(volume).filter(|v| *v != b"null")),
                _ => return None,
            };
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"price\":");
            push_decimal(&mut out, price);
            if let Some(volume) = volume {
                out.extend_from_slice(b",\"volume\":");
                push_decimal(&mut out, volume);
            }
            out.push(b'}');
        }
    }
    out.extend_from_slice(b"]}}");
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trade_line_is_the_documented_push_with_its_digits() {
        let line = b"{\"type\":\"trade\",\"symbol\":\"NASDAQ:AAPL\",\"code\":\"AAPL.US\",\"seq\":5,\"time\":1605509068000,\"price\":651.10,\"volume\":300,\"turnover\":195330.00,\"side\":\"buy\"}\n";
        assert_eq!(
            trade(line).as_deref(),
            Some(
                "{\"cmd_id\":22998,\"data\":{\"code\":\"AAPL.US\",\"seq\":5,\"tick_time\":1605509068000,\"price\":\"651.10\",\"volume\":\"300\",\"turnover\":\"195330.00\",\"trade_direction\":1}}"
            )
        );
        let nulls = b"{\"type\":\"trade\",\"symbol\":\"x\",\"code\":\"EURUSD\",\"seq\":18446744073709551615,\"time\":1,\"price\":1.08005,\"volume\":null,\"turnover\":null,\"side\":null}";
        assert_eq!(
            trade(nulls).as_deref(),
            Some(
                "{\"cmd_id\":22998,\"data\":{\"code\":\"EURUSD\",\"seq\":18446744073709551615,\"tick_time\":1,\"price\":\"1.08005\",\"trade_direction\":0}}"
            )
        );
        let sell = b"{ \"side\": \"sell\", \"price\": \"7\", \"time\": 2, \"seq\": 1, \"code\": \"A\\\"B\" }";
        assert_eq!(
            trade(sell).as_deref(),
            Some(
                "{\"cmd_id\":22998,\"data\":{\"code\":\"A\\\"B\",\"seq\":1,\"tick_time\":2,\"price\":\"7\",\"trade_direction\":2}}"
            )
        );
    }

    #[test]
    fn the_tool_s_layout_is_read_as_any_object_is() {
        for line in [
            "{\"type\":\"trade\",\"symbol\":\"N:A,\\\"code\\\":\",\"code\":\"A.US\",\"seq\":1,\"time\":2,\"price\":3.10,\"volume\":null,\"turnover\":4,\"side\":\"sell\"}\n",
            "{\"type\":\"trade\",\"symbol\":\"B\",\"code\":\"B\",\"seq\":9,\"time\":8,\"price\":7,\"volume\":6,\"turnover\":null,\"side\":null}",
        ] {
            let fast = tool_trade(line.as_bytes()).expect("the tool's layout");
            let any = any_object(line.as_bytes()).expect("an object");
            for (a, b) in [
                (fast.code, any.code),
                (fast.seq, any.seq),
                (fast.time, any.time),
                (fast.price, any.price),
                (fast.volume, any.volume),
                (fast.turnover, any.turnover),
                (fast.side, any.side),
            ] {
                assert_eq!(a, b, "{line}");
                assert!(a.is_some(), "{line}");
            }
        }
        assert!(tool_trade(b"{\"type\":\"trade\",\"symbol\":\"B\",\"code\":\"B\"}").is_none());
    }

    #[test]
    fn a_depth_line_is_the_documented_push_cut_to_its_levels() {
        let line = b"{\"type\":\"depth\",\"symbol\":\"HKEX:700\",\"code\":\"700.HK\",\"seq\":7,\"time\":8,\"bids\":[[320.40,1200],[320.20,null]],\"asks\":[]}\n";
        assert_eq!(
            depth(line, 10).as_deref(),
            Some(
                "{\"cmd_id\":22999,\"data\":{\"code\":\"700.HK\",\"seq\":7,\"tick_time\":8,\"bids\":[{\"price\":\"320.40\",\"volume\":\"1200\"},{\"price\":\"320.20\"}],\"asks\":[]}}"
            )
        );
        assert_eq!(
            depth(line, 1).as_deref(),
            Some(
                "{\"cmd_id\":22999,\"data\":{\"code\":\"700.HK\",\"seq\":7,\"tick_time\":8,\"bids\":[{\"price\":\"320.40\",\"volume\":\"1200\"}],\"asks\":[]}}"
            )
        );
    }

    #[test]
    fn a_line_without_what_a_push_needs_has_none() {
        for bad in [
            &b"{\"type\":\"trade\",\"code\":\"A\",\"seq\":1,\"time\":2}"[..],
            b"{\"type\":\"trade\",\"code\":\"A\",\"seq\":-1,\"time\":2,\"price\":1}",
            b"{\"type\":\"trade\",\"code\":\"A\",\"time\":2,\"price\":1}",
            b"{\"type\":\"trade\",\"code\":null,\"seq\":1,\"time\":2,\"price\":1}",
            b"{\"type\":\"trade\",\"code\":\"A\",\"seq\":1,\"time\":2,\"price\":1",
            b"[1,2]",
            b"",
        ] {
            assert_eq!(trade(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            depth(
                b"{\"code\":\"A\",\"seq\":1,\"time\":2,\"bids\":[[1,2,3]]}",
                5
            ),
            None
        );
        assert!(depth(b"{\"code\":\"A\",\"seq\":1,\"time\":2}", 5).is_some());
    }
}
