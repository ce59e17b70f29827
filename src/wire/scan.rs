//! A zero-copy scanner for the one message that comes in floods: the trade
//! push. It borrows every field from the frame's text and allocates nothing.
//!
//! It handles the plain shape real servers send: an object whose keys and
//! string values carry no escapes. Anything else it does not understand
//! (escapes, a `ret`, another cmd_id, malformed JSON) makes it step aside
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

/// Scan one text frame.
pub fn scan(text: &str) -> Scan<'_> {
    let b = text.as_bytes();
    if let Some(t) = fixed_shape(b, text) {
        return Scan::Trade(t);
    }
    scan_inner(b, text).unwrap_or(Scan::Other)
}

/// How AllTick starts every trade push.
const TRADE_PREFIX: &[u8] = br#"{"cmd_id":22998,"data":{"#;

/// The shape the server sends: `{"cmd_id":22998,"data":{…}}` with `data`
/// a flat object of strings, numbers and nulls. One pass over the frame;
/// anything else (a nested value, an escape, another first key, trailing
/// members) returns `None` and the general scan decides. It accepts only
/// what the general scan accepts, with the same fields.
fn fixed_shape<'a>(b: &'a [u8], text: &'a str) -> Option<RawTrade<'a>> {
    if !b.starts_with(TRADE_PREFIX) {
        return None;
    }
    let mut c = Cursor {
        b,
        i: TRADE_PREFIX.len(),
    };
    let mut t = RawTrade::default();
    c.ws();
    if b.get(c.i) == Some(&b'}') {
        c.i += 1;
    } else {
        loop {
            let (ks, ke) = c.plain_str()?;
            c.eat(b':')?;
            c.ws();
            let (kind, s, e) = match *b.get(c.i)? {
                b'"' => {
                    let (s, e) = c.plain_str()?;
                    (Kind::Str, s, e)
                }
                b'-' | b'0'..=b'9' => {
                    let s = c.i;
                    c.i = number_end(b, s)?;
                    (Kind::Num, s, c.i)
                }
                b'n' => c.literal(b"null", Kind::Null)?,
                _ => return None,
            };
            let key = &b[ks..ke];
            let mut ignored = None;
            let slot = t.slot(key).unwrap_or(&mut ignored);
            // A repeated key, or a code that is not a string: the general
            // path and the full decoder judge it.
            if slot.is_some() || (key == b"code" && kind != Kind::Str) {
                return None;
            }
            *slot = match kind {
                Kind::Null => None,
                _ => Some(text.get(s..e)?),
            };
            c.ws();
            match *b.get(c.i)? {
                b',' => c.i += 1,
                b'}' => {
                    c.i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    c.eat(b'}')?;
    c.ws();
    (c.i == b.len()).then_some(t)
}

/// A JSON value's extent, as classified by the scanner.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string without escapes; the range is its contents.
    Str,
    /// A number; the range is its text.
    Num,
    /// `null`.
    Null,
    /// An object; the range covers the braces.
    Obj,
    /// Anything else (arrays, booleans).
    Other,
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// A string without escapes: returns its contents' range.
    fn plain_str(&mut self) -> Option<(usize, usize)> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = self.b.get(start..)?;
        let len = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        Some((start, start + len))
    }

    /// Skip one value of any kind, returning its kind and range.
    fn value(&mut self, depth: u32) -> Option<(Kind, usize, usize)> {
        self.ws();
        let start = self.i;
        match *self.b.get(self.i)? {
            b'"' => {
                let (s, e) = self.plain_str()?;
                Some((Kind::Str, s, e))
            }
            b'{' => {
                if depth > 8 {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Some((Kind::Obj, start, self.i));
                }
                loop {
                    self.plain_str()?;
                    self.eat(b':')?;
                    self.value(depth + 1)?;
                    self.ws();
                    match *self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some((Kind::Obj, start, self.i));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                if depth > 8 {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Some((Kind::Other, start, self.i));
                }
                loop {
                    self.value(depth + 1)?;
                    self.ws();
                    match *self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some((Kind::Other, start, self.i));
                        }
                        _ => return None,
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                // One pass over the JSON number grammar.
                let end = number_end(self.b, start)?;
                self.i = end;
                Some((Kind::Num, start, end))
            }
            b'n' => self.literal(b"null", Kind::Null),
            b't' => self.literal(b"true", Kind::Other),
            b'f' => self.literal(b"false", Kind::Other),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], kind: Kind) -> Option<(Kind, usize, usize)> {
        let start = self.i;
        if self.b.get(start..start + word.len()) == Some(word) {
            self.i += word.len();
            Some((kind, start, self.i))
        } else {
            None
        }
    }

    /// Walk an object's members, calling `f(key, kind, start, end)`.
    fn members(&mut self, mut f: impl FnMut(&'a [u8], Kind, usize, usize)) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(());
        }
        loop {
            let (ks, ke) = self.plain_str()?;
            self.eat(b':')?;
            let (kind, s, e) = self.value(1)?;
            f(&self.b[ks..ke], kind, s, e);
            self.ws();
            match *self.b.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// The end of the JSON number starting at `i`
/// (`-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`), or `None` if it breaks the
/// grammar — including by running into a character a number cannot be
/// followed by.
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    match b.get(i) {
        None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') => Some(i),
        _ => None,
    }
}

#[cfg(test)]
fn json_number(s: &str) -> bool {
    number_end(s.as_bytes(), 0) == Some(s.len())
}

fn scan_inner<'a>(b: &'a [u8], text: &'a str) -> Option<Scan<'a>> {
    let mut top = Cursor { b, i: 0 };
    let mut cmd: Option<(Kind, usize, usize)> = None;
    let mut data: Option<(Kind, usize, usize)> = None;
    let mut has_ret = false;
    let mut dup = false;
    top.members(|key, kind, s, e| match key {
        b"cmd_id" => {
            dup |= cmd.is_some();
            cmd = Some((kind, s, e));
        }
        b"data" => {
            dup |= data.is_some();
            data = Some((kind, s, e));
        }
        b"ret" => has_ret = true,
        _ => {}
    })?;
    top.ws();
    if top.i != b.len() || has_ret || dup {
        return None;
    }
    match cmd {
        Some((Kind::Num, s, e)) if &b[s..e] == b"22998" => {}
        _ => return None,
    }
    let (Kind::Obj, ds, de) = data? else {
        return None;
    };
    let mut t = RawTrade::default();
    let mut ok = true;
    let mut inner = Cursor { b: &b[..de], i: ds };
    inner.members(|key, kind, s, e| {
        let Some(slot) = t.slot(key) else {
            return;
        };
        // A repeated key: leave the frame to the full decoder.
        ok &= slot.is_none();
        *slot = match kind {
            // A code must be a string, as the full decoder requires.
            Kind::Num if key == b"code" => None,
            Kind::Str | Kind::Num => text.get(s..e),
            Kind::Null => None,
            // Objects, arrays, booleans: the full decoder judges them.
            Kind::Obj | Kind::Other => {
                ok = false;
                None
            }
        };
    })?;
    ok.then_some(Scan::Trade(t))
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
        ];
        for text in cases {
            let fixed = fixed_shape(text.as_bytes(), text).expect(text);
            let Some(Scan::Trade(general)) = scan_inner(text.as_bytes(), text) else {
                panic!("general scan refused {text}")
            };
            assert_eq!(fixed, general, "{text}");
        }
        for text in [
            r#"{"cmd_id":22998,"data":{"code":1}}"#,
            r#"{"cmd_id":22998,"data":{"x":[1]}}"#,
            r#"{"cmd_id":22998,"data":{"x":true}}"#,
            r#"{"cmd_id":22998,"data":{"code":"A","code":"A"}}"#,
            r#"{"cmd_id":22998,"data":{"code":"A\"B"}}"#,
            r#"{"cmd_id":22998,"data":{"seq":01}}"#,
            r#"{"cmd_id":22998,"data":{},"ret":200}"#,
            r#"{"cmd_id":22998,"data":{}} x"#,
            r#"{"cmd_id":22998,"data":{"price":1.5"#,
        ] {
            assert_eq!(fixed_shape(text.as_bytes(), text), None, "{text}");
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

    #[test]
    fn number_grammar() {
        for ok in ["0", "-0", "12", "1.5", "1e5", "1E+5", "-1.25e-3"] {
            assert!(json_number(ok), "{ok}");
        }
        for bad in ["", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1-2"] {
            assert!(!json_number(bad), "{bad}");
        }
    }
}
