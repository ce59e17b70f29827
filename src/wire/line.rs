//! Fields of the tool's own JSON lines, found by position without decoding
//! the line: the capture, its read-back and `replay` look at a line's
//! time, code and kind many times a second and need nothing else.

/// Where `needle` first occurs in `hay`: candidates by their first byte,
/// then compared whole (a comparison per position costs a call each).
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut at = 0;
    while let Some(i) = hay.get(at..)?.iter().position(|&b| b == first) {
        let start = at + i;
        if hay.get(start + 1..start + needle.len()) == Some(rest) {
            return Some(start);
        }
        at = start + 1;
    }
    None
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
}
