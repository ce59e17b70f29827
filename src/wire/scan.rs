//! A zero-copy scanner for the one message that comes in floods: the trade
//! push. It borrows every field from the frame's text and allocates nothing.
//!
//! It handles the plain shape real servers send: an object whose keys and
//! trade fields carry no escapes, read with the JSON grammar of
//! [`crate::wire::json`]. Anything else it does not understand (escapes
//! there, a `ret`, another cmd_id, malformed JSON) makes it step aside
//! with [`Scan::Other`], and the full `serde_json` decoder in
//! [`crate::wire::protocol::decode`] takes the frame instead — so the scanner only
//! ever has to be right about what it accepts.

/// What scanning a frame found.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan<'a> {
    /// A trade push, fields borrowed from the frame, not yet validated.
    Trade(RawTrade<'a>),
    /// Not a plain trade push: use the full decoder.
    Other,
}

/// A trade push's fields as they appear in the frame.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RawTrade<'a> {
    /// `code`: the string's contents.
    pub code: Option<&'a str>,
    /// `seq`: a number's text or a string's contents.
    pub seq: Option<&'a str>,
    /// `tick_time`, likewise.
    pub tick_time: Option<&'a str>,
    /// `price`, likewise; `None` when absent or `null`.
    pub price: Option<&'a str>,
    /// `volume`, likewise.
    pub volume: Option<&'a str>,
    /// `turnover`, likewise.
    pub turnover: Option<&'a str>,
    /// `trade_direction`, likewise.
    pub trade_direction: Option<&'a str>,
}

impl<'a> RawTrade<'a> {
    /// The field a key of the push's `data` fills, if any.
    fn slot(&mut self, key: &[u8]) -> Option<&mut Option<&'a str>> {
        Some(match key {
            b"code" => &mut self.code,
            b"seq" => &mut self.seq,
            b"tick_time" => &mut self.tick_time,
            b"price" => &mut self.price,
            b"volume" => &mut self.volume,
            b"turnover" => &mut self.turnover,
            b"trade_direction" => &mut self.trade_direction,
            _ => return None,
        })
    }
}

use crate::wire::json::{self, Value, ValueType};

/// Scan one text frame.
pub fn scan(text: &str) -> Scan<'_> {
    let b = text.as_bytes();
    if let Some(t) = fixed_shape(b, text) {
        return Scan::Trade(t);
    }
    scan_inner(b, text).unwrap_or(Scan::Other)
}

/// How AllTick starts every trade push, up to `data`'s opening brace.
const TRADE_PREFIX: &[u8] = br#"{"cmd_id":22998,"data":"#;

/// The shape the server sends: `{"cmd_id":22998,"data":{…}}`, read in one
/// pass over `data` with the same rules as the general scan (so with the
/// same fields); anything else (another first key, trailing members)
/// returns `None` and the general scan decides.
fn fixed_shape<'a>(b: &'a [u8], text: &'a str) -> Option<RawTrade<'a>> {
    if !b.starts_with(TRADE_PREFIX) {
        return None;
    }
    let (t, end) = data_fields(b, text, TRADE_PREFIX.len())?;
    let i = json::ws(b, end);
    if b.get(i) != Some(&b'}') {
        return None;
    }
    (json::ws(b, i + 1) == b.len()).then_some(t)
}

/// The fields of the `data` object whose `{` is at `b[at]`, and where it
/// ends. `None` (the full decoder judges) for an escape anywhere, a
/// repeated key, or a field that is an object, an array or a boolean. A
/// code that is a number is no code, as the full decoder reads it.
fn data_fields<'a>(b: &'a [u8], text: &'a str, at: usize) -> Option<(RawTrade<'a>, usize)> {
    let mut t = RawTrade::default();
    let mut ok = true;
    let end = json::members(b, at, |key, v| {
        if key.escaped || v.escaped {
            ok = false;
            return;
        }
        let key = key.inner(b);
        let Some(slot) = t.slot(key) else {
            return;
        };
        ok &= slot.is_none();
        *slot = match v.ty {
            ValueType::Number if key == b"code" => None,
            ValueType::String | ValueType::Number => {
                let (s, e) = match v.ty {
                    ValueType::Number => (v.start, v.end),
                    _ => (v.start + 1, v.end - 1),
                };
                text.get(s..e)
            }
            ValueType::Null => None,
            _ => {
                ok = false;
                None
            }
        };
    })?;
    ok.then_some((t, end))
}

fn scan_inner<'a>(b: &'a [u8], text: &'a str) -> Option<Scan<'a>> {
    let mut cmd: Option<Value> = None;
    let mut data: Option<Value> = None;
    // A `ret`, a repeated `cmd_id` or `data`, or an escape anywhere (a
    // key's may spell either): the full decoder judges.
    let mut aside = false;
    let at = json::ws(b, 0);
    let end = json::members(b, at, |key, v| {
        if key.escaped || v.escaped {
            aside = true;
            return;
        }
        match key.inner(b) {
            b"cmd_id" => {
                aside |= cmd.is_some();
                cmd = Some(v);
            }
            b"data" => {
                aside |= data.is_some();
                data = Some(v);
            }
            b"ret" => aside = true,
            _ => {}
        }
    })?;
    if aside || json::ws(b, end) != b.len() {
        return None;
    }
    match cmd {
        Some(v) if v.ty == ValueType::Number && v.text(b) == b"22998" => {}
        _ => return None,
    }
    let data = data.filter(|d| d.ty == ValueType::Object)?;
    let (t, _) = data_fields(b, text, data.start)?;
    Some(Scan::Trade(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_the_fields_of_a_plain_trade() {
        let text = r#"{"cmd_id":22998,"data":{"code":"AAPL.US","seq":1605509068000001,"tick_time":1605509068000,"price":"651.12","volume":"300","turnover":"12345.6","trade_direction":1}}"#;
        let Scan::Trade(t) = scan(text) else {
            panic!("not scanned")
        };
        assert_eq!(t.code, Some("AAPL.US"));
        assert_eq!(t.seq, Some("1605509068000001"));
        assert_eq!(t.tick_time, Some("1605509068000"));
        assert_eq!(t.price, Some("651.12"));
        assert_eq!(t.volume, Some("300"));
        assert_eq!(t.turnover, Some("12345.6"));
        assert_eq!(t.trade_direction, Some("1"));
    }

    #[test]
    fn the_fixed_shape_and_the_general_scan_agree() {
        let cases = [
            r#"{"cmd_id":22998,"data":{"code":"AAPL.US","seq":"30841439","tick_time":1605509068,"price":651.10,"volume":"300","turnover":null,"trade_direction":"2","extra":-1.5e3}}"#,
            r#"{"cmd_id":22998,"data":{ "code" : "A" , "price" : "1" } } "#,
            r#"{"cmd_id":22998,"data":{}}"#,
            r#"{"cmd_id":22998,"data":{"code":"1288.HK","seq":1605509068000001,"tick_time":1605509068,"price":"651.12","volume":"300","turnover":"12345.6","trade_direction":1}}"#,
            r#"{"cmd_id":22998,"data":{"code":"A","seq":"7","tick_time":"1","price":651.10,"volume":null,"turnover":-1e3,"trade_direction":"0"}}"#,
            r#"{"cmd_id":22998,"data":{"code":1,"x":[1,{"y":null}],"z":true}}"#,
        ];
        for text in cases {
            let fixed = fixed_shape(text.as_bytes(), text).expect(text);
            let Some(Scan::Trade(general)) = scan_inner(text.as_bytes(), text) else {
                panic!("general scan refused {text}")
            };
            assert_eq!(fixed, general, "{text}");
        }
        // What the fixed shape refuses, the general scan refuses too.
        for text in [
            r#"{"cmd_id":22998,"data":{"code":"A","code":"A"}}"#,
            r#"{"cmd_id":22998,"data":{"code":"A\"B"}}"#,
            r#"{"cmd_id":22998,"data":{"c\u006fde":"A"}}"#,
            r#"{"cmd_id":22998,"data":{"x":[{"y":"\/"}]}}"#,
            r#"{"cmd_id":22998,"data":{"seq":01}}"#,
            r#"{"cmd_id":22998,"data":{},"ret":200}"#,
            r#"{"cmd_id":22998,"data":{}} x"#,
            r#"{"cmd_id":22998,"data":{"price":1.5"#,
        ] {
            assert_eq!(fixed_shape(text.as_bytes(), text), None, "{text}");
            assert_eq!(scan(text), Scan::Other, "{text}");
        }
    }

    #[test]
    fn tolerates_whitespace_key_order_and_unknown_members() {
        let text = " { \"data\" : { \"x\":[1,{\"y\":null}], \"price\" : 1.5 , \"code\":\"A\" } , \"cmd_id\" : 22998, \"z\": true } ";
        let Scan::Trade(t) = scan(text) else {
            panic!("not scanned")
        };
        assert_eq!(t.price, Some("1.5"));
        assert_eq!(t.code, Some("A"));
    }

    #[test]
    fn steps_aside_for_anything_unusual() {
        for text in [
            r#"{"ret":200,"cmd_id":22001}"#,
            r#"{"cmd_id":22999,"data":{}}"#,
            r#"{"cmd_id":22998,"data":{"code":"A\u0041"}}"#,
            r#"{"cmd_id":22998,"data":{"code":"A","code":"B"}}"#,
            r#"{"cmd_id":22998,"data":{"price":{"x":1}}}"#,
            r#"{"cmd_id":22998,"data":{}} trailing"#,
            r#"{"cmd_id":22998,"data":{"seq":01}}"#,
            r#"{"cmd_id":"22998","data":{}}"#,
            r#"{"cmd_id":22998}"#,
            "not json",
            "",
        ] {
            assert_eq!(scan(text), Scan::Other, "{text}");
        }
    }
}
