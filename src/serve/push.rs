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
//! The line is read as a flat JSON object, member by member, so the order
//! of its keys does not matter; a line without a code, a `seq` or a `time`
//! as integers, or (a trade) a price, has no push.

/// The members of a line that a push is made of, as raw JSON text.
#[derive(Default)]
struct Fields<'a> {
    code: Option<&'a str>,
    seq: Option<&'a str>,
    time: Option<&'a str>,
    price: Option<&'a str>,
    volume: Option<&'a str>,
    turnover: Option<&'a str>,
    side: Option<&'a str>,
    bids: Option<&'a str>,
    asks: Option<&'a str>,
}

/// The members of the JSON object `line` that pushes use; `None` where
/// the text is not a JSON object.
fn fields(line: &[u8]) -> Option<Fields<'_>> {
    let line = std::str::from_utf8(line).ok()?;
    tool_trade(line).or_else(|| any_object(line))
}

/// A trade line exactly as the tool writes it, read by its layout: the
/// keys in their order, only the values scanned.
fn tool_trade(line: &str) -> Option<Fields<'_>> {
    let b = line.as_bytes();
    let mut i = 0;
    let lit = |i: &mut usize, text: &str| -> Option<()> {
        b.get(*i..*i + text.len())
            .filter(|s| *s == text.as_bytes())?;
        *i += text.len();
        Some(())
    };
    let value = |i: &mut usize| -> Option<&str> {
        let end = value_end(b, *i)?;
        let v = &line[*i..end];
        *i = end;
        Some(v)
    };
    lit(&mut i, "{\"type\":\"trade\",\"symbol\":")?;
    value(&mut i)?;
    let mut f = Fields::default();
    for (key, slot) in [
        (",\"code\":", &mut f.code),
        (",\"seq\":", &mut f.seq),
        (",\"time\":", &mut f.time),
        (",\"price\":", &mut f.price),
        (",\"volume\":", &mut f.volume),
        (",\"turnover\":", &mut f.turnover),
        (",\"side\":", &mut f.side),
    ] {
        lit(&mut i, key)?;
        *slot = Some(value(&mut i)?);
    }
    matches!(&line[i..], "}" | "}\n" | "}\r\n").then_some(f)
}

/// Any JSON object, member by member.
fn any_object(line: &str) -> Option<Fields<'_>> {
    let b = line.as_bytes();
    let mut f = Fields::default();
    let mut i = skip_space(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_space(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(f);
    }
    loop {
        let key_end = value_end(b, i).filter(|_| b[i] == b'"')?;
        let key = &line[i + 1..key_end - 1];
        i = skip_space(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_space(b, i + 1);
        let end = value_end(b, i)?;
        let value = Some(&line[i..end]);
        match key {
            "code" => f.code = value,
            "seq" => f.seq = value,
            "time" => f.time = value,
            "price" => f.price = value,
            "volume" => f.volume = value,
            "turnover" => f.turnover = value,
            "side" => f.side = value,
            "bids" => f.bids = value,
            "asks" => f.asks = value,
            _ => {}
        }
        i = skip_space(b, end);
        match b.get(i) {
            Some(b',') => i = skip_space(b, i + 1),
            Some(b'}') => return Some(f),
            _ => return None,
        }
    }
}

/// The elements of the JSON array `raw`, as raw text.
fn elements(raw: &str) -> Option<Vec<&str>> {
    let b = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = skip_space(b, 0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_space(b, i + 1);
    if b.get(i) == Some(&b']') {
        return Some(out);
    }
    loop {
        let end = value_end(b, i)?;
        out.push(&raw[i..end]);
        i = skip_space(b, end);
        match b.get(i) {
            Some(b',') => i = skip_space(b, i + 1),
            Some(b']') => return Some(out),
            _ => return None,
        }
    }
}

fn skip_space(s: &[u8], mut i: usize) -> usize {
    while s.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// The bytes that end a number, `true`, `false` or `null`.
const ENDS_SCALAR: [bool; 256] = {
    let mut t = [false; 256];
    let ends = b",}] \t\r\n";
    let mut i = 0;
    while i < ends.len() {
        t[ends[i] as usize] = true;
        i += 1;
    }
    t
};

/// Where the JSON value starting at `i` ends (one past it).
fn value_end(s: &[u8], i: usize) -> Option<usize> {
    match *s.get(i)? {
        b'"' => {
            let mut j = i + 1;
            loop {
                j += s.get(j..)?.iter().position(|&b| b == b'"' || b == b'\\')?;
                if s[j] == b'"' {
                    return Some(j + 1);
                }
                j += 2;
            }
        }
        b'[' | b'{' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *s.get(j)? {
                    b'"' => {
                        j = value_end(s, j)?;
                        continue;
                    }
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let n = s[i..]
                .iter()
                .position(|&b| ENDS_SCALAR[usize::from(b)])
                .unwrap_or(s.len() - i);
            (n > 0).then_some(i + n)
        }
    }
}

fn is_integer(v: &str) -> bool {
    !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal as a JSON string: a number's text quoted, a string kept.
fn push_decimal(out: &mut String, v: &str) {
    if v.starts_with('"') {
        out.push_str(v);
    } else {
        out.push('"');
        out.push_str(v);
        out.push('"');
    }
}

/// What every push starts with: `{"cmd_id":N,"data":{"code":…,"seq":…,"tick_time":…`.
fn head(cmd_id: &str, f: &Fields, capacity: usize) -> Option<String> {
    let code = f.code.filter(|c| c.len() > 2 && c.starts_with('"'))?;
    let seq = f.seq.filter(|v| is_integer(v))?;
    let time = f.time.filter(|v| is_integer(v))?;
    let mut out = String::with_capacity(capacity);
    out.push_str("{\"cmd_id\":");
    out.push_str(cmd_id);
    out.push_str(",\"data\":{\"code\":");
    out.push_str(code);
    out.push_str(",\"seq\":");
    out.push_str(seq);
    out.push_str(",\"tick_time\":");
    out.push_str(time);
    Some(out)
}

/// The 22998 push of a trade line.
pub fn trade(line: &[u8]) -> Option<String> {
    let f = fields(line)?;
    let price = f.price.filter(|p| *p != "null")?;
    let mut out = head("22998", &f, line.len() + 48)?;
    out.push_str(",\"price\":");
    push_decimal(&mut out, price);
    for (key, value) in [(",\"volume\":", f.volume), (",\"turnover\":", f.turnover)] {
        if let Some(v) = value.filter(|v| *v != "null") {
            out.push_str(key);
            push_decimal(&mut out, v);
        }
    }
    out.push_str(match f.side {
        Some("\"buy\"") => ",\"trade_direction\":1}}",
        Some("\"sell\"") => ",\"trade_direction\":2}}",
        _ => ",\"trade_direction\":0}}",
    });
    Some(out)
}

/// The 22999 push of a depth line, each side cut to `levels`.
pub fn depth(line: &[u8], levels: usize) -> Option<String> {
    let f = fields(line)?;
    let mut out = head("22999", &f, line.len() * 2 + 48)?;
    for (side, name) in [(f.bids, ",\"bids\":["), (f.asks, "],\"asks\":[")] {
        out.push_str(name);
        let side = match side {
            None | Some("null") => Vec::new(),
            Some(raw) => elements(raw)?,
        };
        for (i, level) in side.iter().take(levels).enumerate() {
            let pair = elements(level)?;
            let (price, volume) = match pair[..] {
                [price] => (price, None),
                [price, volume] => (price, Some(volume).filter(|v| *v != "null")),
                _ => return None,
            };
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"price\":");
            push_decimal(&mut out, price);
            if let Some(volume) = volume {
                out.push_str(",\"volume\":");
                push_decimal(&mut out, volume);
            }
            out.push('}');
        }
    }
    out.push_str("]}}");
    Some(out)
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
            let fast = tool_trade(line).expect("the tool's layout");
            let any = any_object(line).expect("an object");
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
        assert!(tool_trade("{\"type\":\"trade\",\"symbol\":\"B\",\"code\":\"B\"}").is_none());
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
