//! The output lines, written straight into a byte buffer: a trade line in
//! two halves (a head prepared once per label, and the tail of each tick),
//! a depth line, and the one-pass path's copy of a documented push's own
//! digits ([`write`](fn@write)). Decimals are copied as text, never through a float.

use crate::queue::Gap;
use crate::wire::fast::DocumentedTrade;
use crate::wire::protocol::{Depth, Side, TradeView};
pub use crate::wire::text::{push_json_str, push_u64};

fn push_opt_number(out: &mut Vec<u8>, n: Option<&str>) {
    match n {
        Some(n) => out.extend_from_slice(n.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// An integer field of a line: digits to copy as they stand, or a value
/// to write.
#[derive(Clone, Copy, Debug)]
pub enum Int<'a> {
    /// Canonical decimal digits (no sign, no leading zero).
    Digits(&'a [u8]),
    /// A value.
    Value(u64),
}

/// A trade line after its `seq` key: every field whose text the line
/// carries as it stands.
#[derive(Clone, Copy, Debug)]
pub struct TradeTail<'a> {
    /// `seq`.
    pub seq: Int<'a>,
    /// `time`, in milliseconds.
    pub time: Int<'a>,
    /// `price`: valid JSON number text.
    pub price: &'a [u8],
    /// `volume`, likewise, if any.
    pub volume: Option<&'a [u8]>,
    /// `turnover`, likewise, if any.
    pub turnover: Option<&'a [u8]>,
    /// `side`.
    pub side: Option<Side>,
}

/// Append the start of a trade line, up to its `seq` value.
pub fn trade_head(out: &mut Vec<u8>, symbol: &str, code: &str) {
    out.extend_from_slice(b"{\"type\":\"trade\",\"symbol\":");
    push_json_str(out, symbol);
    out.extend_from_slice(b",\"code\":");
    push_json_str(out, code);
    out.extend_from_slice(b",\"seq\":");
}

/// Append the rest of a trade line, after [`trade_head`] (with the newline).
#[inline]
pub fn trade_tail(out: &mut Vec<u8>, t: &TradeTail) {
    let int = |out: &mut Vec<u8>, n: Int| match n {
        Int::Digits(d) => out.extend_from_slice(d),
        Int::Value(v) => push_u64(out, v),
    };
    int(out, t.seq);
    out.extend_from_slice(b",\"time\":");
    int(out, t.time);
    out.extend_from_slice(b",\"price\":");
    out.extend_from_slice(t.price);
    out.extend_from_slice(b",\"volume\":");
    out.extend_from_slice(t.volume.unwrap_or(b"null"));
    out.extend_from_slice(b",\"turnover\":");
    out.extend_from_slice(t.turnover.unwrap_or(b"null"));
    out.extend_from_slice(match t.side {
        Some(Side::Buy) => b",\"side\":\"buy\"}\n",
        Some(Side::Sell) => b",\"side\":\"sell\"}\n",
        None => b",\"side\":null}\n",
    });
}

/// Append one trade as a JSON line (with the newline).
pub fn format_trade(out: &mut Vec<u8>, symbol: &str, t: &TradeView) {
    trade_head(out, symbol, t.code);
    trade_tail(
        out,
        &TradeTail {
            seq: Int::Value(t.seq),
            time: Int::Value(t.time),
            price: t.price.as_bytes(),
            volume: t.volume.as_deref().map(str::as_bytes),
            turnover: t.turnover.as_deref().map(str::as_bytes),
            side: t.side,
        },
    );
}

/// Append one depth push as a JSON line: levels as `[price, volume]`
/// pairs, volume `null` where the feed sends none, an empty side as `[]`.
pub fn format_depth(out: &mut Vec<u8>, symbol: &str, d: &Depth) {
    out.extend_from_slice(b"{\"type\":\"depth\",\"symbol\":");
    push_json_str(out, symbol);
    out.extend_from_slice(b",\"code\":");
    push_json_str(out, &d.code);
    out.extend_from_slice(b",\"seq\":");
    push_u64(out, d.seq);
    out.extend_from_slice(b",\"time\":");
    push_u64(out, d.time);
    for (name, levels) in [
        (&b",\"bids\":["[..], &d.bids),
        (&b"],\"asks\":["[..], &d.asks),
    ] {
        out.extend_from_slice(name);
        for (i, (price, volume)) in levels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'[');
            out.extend_from_slice(price.as_bytes());
            out.push(b',');
            push_opt_number(out, volume.as_deref());
            out.push(b']');
        }
    }
    out.extend_from_slice(b"]}\n");
}

/// Append a gap line: `{"type":"gap","connection":…,"codes":[…],"from":…,
/// "to":…,"reason":…}`, with `"dropped":N` where ticks were counted.
pub fn format_gap(out: &mut Vec<u8>, g: &Gap) {
    out.extend_from_slice(b"{\"type\":\"gap\",\"connection\":");
    match &g.connection {
        Some(c) => push_json_str(out, c),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"codes\":[");
    for (i, c) in g.codes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_str(out, c);
    }
    out.extend_from_slice(b"],\"from\":");
    push_u64(out, g.from);
    out.extend_from_slice(b",\"to\":");
    push_u64(out, g.to);
    out.extend_from_slice(b",\"reason\":");
    push_json_str(out, &g.reason);
    if let Some(n) = g.dropped {
        out.extend_from_slice(b",\"dropped\":");
        push_u64(out, n);
    }
    if let Some(h) = &g.heal {
        out.extend_from_slice(if h.healed {
            b",\"healed\":true,\"heal\":"
        } else {
            b",\"healed\":false,\"heal\":"
        });
        push_json_str(out, &h.note);
    }
    out.extend_from_slice(b"}\n");
}

/// A documented push's fields after `seq`, copied as they stand.
fn plain_tail<'a>(p: &DocumentedTrade<'a>) -> TradeTail<'a> {
    TradeTail {
        seq: Int::Digits(p.seq_text),
        time: match p.time_text {
            Some(digits) => Int::Digits(digits),
            None => Int::Value(p.time),
        },
        price: p.price,
        volume: p.volume,
        turnover: p.turnover,
        side: p.side,
    }
}

/// Append the trade's line after `head`, a start written by
/// [`trade_head`] for its label.
pub fn write(out: &mut Vec<u8>, head: &[u8], t: &DocumentedTrade) {
    out.extend_from_slice(head);
    trade_tail(out, &plain_tail(t));
}

/// Append the line of a trade whose code nobody labelled: its code is its
/// symbol.
pub fn write_unlabelled(out: &mut Vec<u8>, t: &DocumentedTrade) {
    trade_head(out, t.code, t.code);
    trade_tail(out, &plain_tail(t));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    use crate::wire::fast::read;
    use crate::wire::protocol::{Incoming, decode};

    fn view(side: Option<Side>, volume: Option<&str>) -> TradeView<'_> {
        TradeView {
            code: "AAPL.US",
            seq: 5,
            time: 1605509068000,
            price: Cow::Borrowed("651.10"),
            volume: volume.map(Cow::Borrowed),
            turnover: None,
            side,
        }
    }

    fn frame(seq: &str, time: &str, price: &str, vol: &str, turn: &str, dir: &str) -> String {
        format!(
            r#"{{"cmd_id":22998,"data":{{"code":"AAPL.US","seq":{seq},"tick_time":{time},"price":{price},"volume":{vol},"turnover":{turn},"trade_direction":{dir}}}}}"#
        )
    }

    /// The line through this path, and through the full decoder.
    fn both(text: &str) -> (Option<String>, Option<String>) {
        let fast = read(text).map(|t| {
            let mut out = Vec::new();
            write_unlabelled(&mut out, &t);
            String::from_utf8(out).unwrap()
        });
        let full = match decode(text) {
            Ok(Incoming::Trade(t)) => {
                let mut out = Vec::new();
                let view = t.view();
                format_trade(&mut out, view.code, &view);
                Some(String::from_utf8(out).unwrap())
            }
            _ => None,
        };
        (fast, full)
    }

    #[test]
    fn formats_exact_decimals_as_json_numbers() {
        let mut out = Vec::new();
        format_trade(
            &mut out,
            "NASDAQ:AAPL",
            &view(Some(Side::Sell), Some("300")),
        );
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line,
            "{\"type\":\"trade\",\"symbol\":\"NASDAQ:AAPL\",\"code\":\"AAPL.US\",\"seq\":5,\"time\":1605509068000,\"price\":651.10,\"volume\":300,\"turnover\":null,\"side\":\"sell\"}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["price"].to_string(), "651.1");
    }

    #[test]
    fn escapes_odd_codes_and_writes_extreme_integers() {
        let mut t = view(None, None);
        t.code = "A\"B\\\n";
        t.seq = u64::MAX;
        t.time = 0;
        let mut out = Vec::new();
        format_trade(&mut out, "x", &t);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["code"], "A\"B\\\n");
        assert_eq!(v["seq"], u64::MAX);
        assert_eq!(v["time"], 0);
        assert_eq!(v["side"], serde_json::Value::Null);
        assert_eq!(v["volume"], serde_json::Value::Null);
    }

    #[test]
    fn formats_depth_levels_exactly() {
        let d = Depth {
            code: "700.HK".into(),
            seq: 7,
            time: 8,
            bids: vec![
                ("320.40".into(), Some("1200".into())),
                ("320.20".into(), None),
            ],
            asks: vec![],
            bad_levels: 0,
        };
        let mut out = Vec::new();
        format_depth(&mut out, "HKEX:700", &d);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"type\":\"depth\",\"symbol\":\"HKEX:700\",\"code\":\"700.HK\",\"seq\":7,\"time\":8,\"bids\":[[320.40,1200],[320.20,null]],\"asks\":[]}\n"
        );
    }

    #[test]
    fn takes_the_documented_shape_and_writes_what_the_decoder_writes() {
        for text in [
            frame(
                "5",
                "1605509068000",
                r#""651.10""#,
                r#""300""#,
                r#""19533.0""#,
                "1",
            ),
            frame(r#""5""#, r#""1605509068""#, "651.1", "300", "0", r#""2""#),
            frame("0", "0", r#""0.5""#, "null", r#""""#, "0"),
            frame("1", "2", r#""10""#, r#""0.000""#, "null", "null"),
            frame("9999999999999999999", "1", r#""1""#, "1", "1", "7"),
            // As the docs print it, a space after each colon and comma.
            r#"{"cmd_id": 22998, "data": {"code": "1288.HK", "seq": 1605509068000001, "tick_time": 1605509068, "price": "651.12", "volume": "300", "turnover": "12345.6", "trade_direction": 1}}"#.to_string(),
            frame("1", "1", r#""1""#, "1", "1", "1").replace("AAPL.US", "€ÄÖ\u{7f}.US"),
        ] {
            let (fast, full) = both(&text);
            assert!(fast.is_some(), "{text}");
            assert_eq!(fast, full, "{text}");
        }
    }

    #[test]
    fn a_labelled_head_gives_the_formatter_s_line() {
        let text = frame("5", "1605509068", r#""651.10""#, "null", r#""1""#, "2");
        let t = read(&text).unwrap();
        let mut h = Vec::new();
        trade_head(&mut h, "NASDAQ:AAPL", "AAPL.US");
        let mut out = Vec::new();
        write(&mut out, &h, &t);
        let Ok(Incoming::Trade(full)) = decode(&text) else {
            panic!("{text}")
        };
        let mut want = Vec::new();
        format_trade(&mut want, "NASDAQ:AAPL", &full.view());
        assert_eq!(String::from_utf8(out), String::from_utf8(want));
    }
}
