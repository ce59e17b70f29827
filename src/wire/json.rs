//! JSON text read where it stands, without allocating: the one grammar of
//! a number ([`number`] in a text, [`whole_number`] for a text of its own,
//! from the pieces [`digits`], [`fraction`] and [`exponent`]), and the one
//! skipper of a value ([`value`]), with the walks over an object's members
//! ([`members`]) and an array's elements ([`elements`]) it is made of.
//! Inside a line or a frame, a number or a string that ends within the
//! next sixteen bytes is read from one mask of them; anything else piece
//! by piece, by the same rules (the tests hold the two readings equal).
//!
//! The scanner and the one-pass reader of pushes, exact decimals (and so
//! bars), the tool's own lines read by position and `serve`'s pushes made
//! from them all read JSON through these. Each says what it found and
//! where it ends; what may follow is the caller's to judge.

/// A JSON number's parts, as they stand in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Number<'a> {
    /// Written with a leading `-`.
    pub negative: bool,
    /// The integer part's digits: `0`, or digits not starting with `0`.
    pub int: &'a [u8],
    /// The digits after the point; empty when there is no point.
    pub frac: &'a [u8],
    /// The exponent's digits; empty when there is no exponent.
    pub exp: &'a [u8],
    /// The exponent written with a `-`.
    pub exp_negative: bool,
    /// One past the number's last byte.
    pub end: usize,
}

impl Number<'_> {
    /// An integer as written: no sign, no point, no exponent.
    #[inline]
    pub fn is_unsigned_integer(&self) -> bool {
        !self.negative && self.frac.is_empty() && self.exp.is_empty()
    }
}

/// The JSON number that starts at `b[at]`:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, as long as it goes.
/// `None` when none starts there, the text breaks off inside one (`-`,
/// `1.`, `1e+`), or a zero leads other digits (`01`, which no JSON has).
/// What follows is not looked at: that is the caller's to judge.
#[inline(always)]
pub fn number(b: &[u8], at: usize) -> Option<Number<'_>> {
    let negative = b.get(at) == Some(&b'-');
    let start = at + usize::from(negative);
    match in_window(b, negative, start) {
        Some(found) => found,
        None => number_by_pieces(b, negative, start),
    }
}

/// The whole of `text` as one JSON [`number`]; `None` when it is not one.
#[inline(always)]
pub fn whole_number(text: &[u8]) -> Option<Number<'_>> {
    let negative = text.first() == Some(&b'-');
    number_by_pieces(text, negative, usize::from(negative)).filter(|n| n.end == text.len())
}

/// The number after its sign at `b[start]` when sixteen bytes are at hand
/// there, as inside a line or a frame, and it ends inside them without an
/// exponent: the digits before and after a point found from one mask.
/// `None` (read it piece by piece) for any other.
#[inline(always)]
fn in_window(b: &[u8], negative: bool, start: usize) -> Option<Option<Number<'_>>> {
    let w = b.get(start..start + 16)?;
    let m = not_digits(w);
    let int = (m.trailing_zeros() / 8) as usize;
    if int == 0 || (int > 1 && w[0] == b'0') {
        return Some(None);
    }
    // Where the fraction's digits start and where the number ends.
    let (frac, end) = if int < 15 && w[int] == b'.' {
        // Bytes past the window read as digits: such a fraction is read
        // piece by piece.
        let frac = ((m >> (8 * (int + 1))).trailing_zeros() / 8) as usize;
        if frac == 0 {
            return Some(None);
        }
        (int + 1, int + 1 + frac)
    } else {
        (int, int)
    };
    if end >= 16 || matches!(w[end], b'.' | b'e' | b'E') {
        return None;
    }
    Some(Some(Number {
        negative,
        int: &w[..int],
        frac: &w[frac..end],
        exp: &[],
        exp_negative: false,
        end: start + end,
    }))
}

/// [`number`] after its sign, from its [`digits`], [`fraction`] and
/// [`exponent`].
#[inline(always)]
fn number_by_pieces(b: &[u8], negative: bool, start: usize) -> Option<Number<'_>> {
    let rest = b.get(start..)?;
    let int = digits(rest);
    if int == 0 || (int > 1 && rest[0] == b'0') {
        return None;
    }
    let (frac, i) = fraction(b, start + int)?;
    let (exp_negative, exp, end) = exponent(b, i)?;
    Some(Number {
        negative,
        int: &rest[..int],
        frac,
        exp,
        exp_negative,
        end,
    })
}

/// Per byte of the sixteen at the start of `w`, the high bit set unless
/// it is a digit (see [`digits`]).
#[inline(always)]
fn not_digits(w: &[u8]) -> u128 {
    let word = |i: usize| {
        let x = u64::from_le_bytes(w[i..i + 8].try_into().expect("eight bytes"));
        let t = x ^ 0x3030_3030_3030_3030;
        (t | t.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080
    };
    u128::from(word(0)) | u128::from(word(8)) << 64
}

/// The fraction at `b[at]`: a point and at least one digit. Returns the
/// digits and where they end; no digits and `at` when there is no point;
/// `None` for a point without a digit.
#[inline(always)]
pub fn fraction(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    if b.get(at) != Some(&b'.') {
        return Some((&[], at));
    }
    let rest = &b[at + 1..];
    let n = digits(rest);
    (n > 0).then(|| (&rest[..n], at + 1 + n))
}

/// The exponent at `b[at]`: `e` or `E`, a sign or none, at least one
/// digit. Returns whether the sign is `-`, the digits and where they end;
/// no digits and `at` when there is no exponent; `None` for a letter
/// without a digit.
#[inline(always)]
pub fn exponent(b: &[u8], at: usize) -> Option<(bool, &[u8], usize)> {
    if !matches!(b.get(at), Some(b'e' | b'E')) {
        return Some((false, &[], at));
    }
    let sign = b.get(at + 1).copied();
    let from = at + 1 + usize::from(matches!(sign, Some(b'+' | b'-')));
    let rest = b.get(from..)?;
    let n = digits(rest);
    (n > 0).then(|| (sign == Some(b'-'), &rest[..n], from + n))
}

/// How many ASCII digits `b` starts with, eight bytes at a time.
#[inline(always)]
pub fn digits(b: &[u8]) -> usize {
    // A short text, as a decimal read on its own is: byte by byte.
    if b.len() < 8 {
        return b.iter().take_while(|c| c.is_ascii_digit()).count();
    }
    let mut n = 0;
    while let Some(chunk) = b.get(n..n + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        // Per byte, the high bit set unless it is a digit: `x ^ '0'` is 0 to
        // 9 for a digit, and adding 0x76 sets the high bit of anything
        // above 9 (a carry out of a byte only comes from one whose high
        // bit is set already, and only reaches the bytes above it).
        let t = x ^ 0x3030_3030_3030_3030;
        let not_digit = (t | t.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
        if not_digit != 0 {
            return n + (not_digit.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + b[n..].iter().take_while(|c| c.is_ascii_digit()).count()
}

/// The JSON string whose opening quote is at `b[at]`: one past its
/// closing quote, and whether it holds an escape (so that its text is not
/// its value). `None` when it is not closed, or holds a control character
/// or a broken escape.
#[inline(always)]
pub fn string(b: &[u8], at: usize) -> Option<(usize, bool)> {
    if b.get(at) != Some(&b'"') {
        return None;
    }
    string_from(b, at + 1)
}

/// [`string`], from the first byte after the opening quote.
#[inline(always)]
pub fn string_from(b: &[u8], i: usize) -> Option<(usize, bool)> {
    // Sixteen bytes at hand, as inside a line or a frame, and the string
    // ends in them without an escape: found from one mask.
    if let Some(w) = b.get(i..i + 16) {
        let word = |k: usize| u64::from_le_bytes(w[k..k + 8].try_into().expect("eight bytes"));
        let hit = u128::from(not_plain(word(0))) | u128::from(not_plain(word(8))) << 64;
        let at = i + (hit.trailing_zeros() / 8) as usize;
        if hit != 0 && b[at] == b'"' {
            return Some((at + 1, false));
        }
    }
    string_by_pieces(b, i)
}

/// [`string_from`], eight bytes at a time, past escapes.
#[inline(never)]
fn string_by_pieces(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        i += special(b.get(i..)?)?;
        match b[i] {
            b'"' => return Some((i + 1, escaped)),
            b'\\' => {
                escaped = true;
                i = escape_end(b, i)?;
            }
            // A control character, which a string must escape.
            _ => return None,
        }
    }
}

/// One past the escape whose backslash is at `b[i]`.
fn escape_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 2),
        b'u' => {
            let hex = b.get(i + 2..i + 6)?;
            hex.iter().all(u8::is_ascii_hexdigit).then_some(i + 6)
        }
        _ => None,
    }
}

/// Where the first byte a string cannot hold as it stands is in `s` (a
/// quote, a backslash, a control character): eight bytes at a time, as
/// a value's end is looked for on every line and frame read.
#[inline(always)]
fn special(s: &[u8]) -> Option<usize> {
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let hit = not_plain(u64::from_le_bytes(c.try_into().expect("eight bytes")));
        if hit != 0 {
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|i| at + i)
}

/// Per byte of `w`, the high bit set where a string cannot hold it as it
/// stands (a quote, a backslash, a control character): the lowest such
/// byte exactly; a byte above it may be set spuriously.
#[inline(always)]
fn not_plain(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Per byte, the high bit set where the byte is below `n` (n <= 0x80).
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & 0x8080_8080_8080_8080;
    // Flipping bit 1 turns a quote into 0x20 and keeps a control
    // character below it: one test finds both.
    below(w ^ (ONES * 0x02), 0x21) | below(w ^ (ONES * u64::from(b'\\')), 1)
}

/// The index after `word` when `b` has it at `at`. A word of a fixed
/// length is compared inline.
#[inline(always)]
pub fn literal<const N: usize>(b: &[u8], at: usize, word: &[u8; N]) -> Option<usize> {
    let end = at.checked_add(N)?;
    (b.get(at..end)? == word).then_some(end)
}

/// The index of the first byte at or after `at` that is not JSON
/// whitespace.
#[inline]
pub fn ws(b: &[u8], mut at: usize) -> usize {
    while matches!(b.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// What a JSON value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    String,
    Number,
    Null,
    /// `true` or `false`.
    Bool,
    Object,
    Array,
}

/// A JSON value found in the text: what it is and where it stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    pub ty: ValueType,
    /// Its first byte (a string's opening quote).
    pub start: usize,
    /// One past its last byte (a string's closing quote).
    pub end: usize,
    /// A string with an escape, so that its text is not its value; an
    /// object or array with such a string (or key) anywhere inside.
    pub escaped: bool,
}

impl Value {
    /// Its text in `b`, as written.
    pub fn text<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        &b[self.start..self.end]
    }

    /// Its text in `b`, a string's without its quotes.
    pub fn inner<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        match self.ty {
            ValueType::String => &b[self.start + 1..self.end - 1],
            _ => self.text(b),
        }
    }
}

/// Objects and arrays nest at most this deep inside a value skipped;
/// deeper ones are refused (a push or a line of the tool's nests three).
pub const MAX_DEPTH: u32 = 8;

/// The JSON value that starts at `b[at]` (no whitespace before it).
#[inline(always)]
pub fn value(b: &[u8], at: usize) -> Option<Value> {
    // Strings and numbers, nearly every value read: a string's usual mask
    // here, a number by a short call (inlined too, the readers of a line
    // grow past what runs fast).
    let (ty, (end, escaped)) = match *b.get(at)? {
        b'"' => (ValueType::String, string_from(b, at + 1)?),
        b'-' | b'0'..=b'9' => (ValueType::Number, (number_end(b, at)?, false)),
        _ => return value_at(b, at, 1),
    };
    Some(Value {
        ty,
        start: at,
        end,
        escaped,
    })
}

/// [`string`], as a call of its own.
#[inline(never)]
fn string_end(b: &[u8], at: usize) -> Option<(usize, bool)> {
    string(b, at)
}

/// Where the [`number`] at `b[at]` ends, as a call of its own; one that
/// is not read from one mask by another call, so that the usual number
/// costs no more than its mask.
#[inline(never)]
fn number_end(b: &[u8], at: usize) -> Option<usize> {
    let negative = b.get(at) == Some(&b'-');
    let start = at + usize::from(negative);
    match in_window(b, negative, start) {
        Some(found) => found.map(|n| n.end),
        None => number_end_by_pieces(b, negative, start),
    }
}

#[inline(never)]
fn number_end_by_pieces(b: &[u8], negative: bool, start: usize) -> Option<usize> {
    number_by_pieces(b, negative, start).map(|n| n.end)
}

fn value_at(b: &[u8], at: usize, depth: u32) -> Option<Value> {
    let mut escaped = false;
    let (ty, end) = match *b.get(at)? {
        b'"' => {
            let (end, e) = string_end(b, at)?;
            escaped = e;
            (ValueType::String, end)
        }
        b'-' | b'0'..=b'9' => (ValueType::Number, number_end(b, at)?),
        b'n' => (ValueType::Null, literal(b, at, b"null")?),
        b't' => (ValueType::Bool, literal(b, at, b"true")?),
        b'f' => (ValueType::Bool, literal(b, at, b"false")?),
        open @ (b'{' | b'[') if depth <= MAX_DEPTH => {
            let end = items(b, at, depth + 1, |key, v| {
                escaped |= v.escaped || key.is_some_and(|k| k.escaped);
            })?;
            let ty = if open == b'{' {
                ValueType::Object
            } else {
                ValueType::Array
            };
            (ty, end)
        }
        _ => return None,
    };
    Some(Value {
        ty,
        start: at,
        end,
        escaped,
    })
}

/// Walk the object whose `{` is at `b[at]`, handing each member's key (a
/// string) and value to `member` in order. Returns one past its `}`.
pub fn members(b: &[u8], at: usize, mut member: impl FnMut(Value, Value)) -> Option<usize> {
    if b.get(at) != Some(&b'{') {
        return None;
    }
    items(b, at, 1, |key, v| {
        if let Some(key) = key {
            member(key, v);
        }
    })
}

/// Walk the array whose `[` is at `b[at]`, handing each element to
/// `element` in order. Returns one past its `]`.
pub fn elements(b: &[u8], at: usize, mut element: impl FnMut(Value)) -> Option<usize> {
    if b.get(at) != Some(&b'[') {
        return None;
    }
    items(b, at, 1, |_, v| element(v))
}

/// Walk the object or array that opens at `b[at]`, its values at `depth`,
/// handing each item (with its key, in an object) to `item`. Returns one
/// past its closing bracket.
fn items(
    b: &[u8],
    at: usize,
    depth: u32,
    mut item: impl FnMut(Option<Value>, Value),
) -> Option<usize> {
    let (object, close) = match b.get(at) {
        Some(b'{') => (true, b'}'),
        Some(b'[') => (false, b']'),
        _ => return None,
    };
    let mut i = ws(b, at + 1);
    if b.get(i) == Some(&close) {
        return Some(i + 1);
    }
    loop {
        let mut key = None;
        if object {
            let (key_end, escaped) = string(b, i)?;
            key = Some(Value {
                ty: ValueType::String,
                start: i,
                end: key_end,
                escaped,
            });
            i = ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = ws(b, i + 1);
        }
        let v = value_at(b, i, depth)?;
        item(key, v);
        i = ws(b, v.end);
        match *b.get(i)? {
            b',' => i = ws(b, i + 1),
            c if c == close => return Some(i + 1),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests;
