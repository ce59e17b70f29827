//! Values written into a byte buffer as JSON: strings and unsigned
//! integers, without allocating. The writer's lines and the bars' lines
//! are made of them.

/// Append `s` as a JSON string.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let plain = s
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f);
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // serde_json escapes correctly; writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Append an unsigned integer in decimal, without allocating.
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_are_json() {
        let mut out = Vec::new();
        push_json_str(&mut out, "NASDAQ:AAPL");
        push_json_str(&mut out, "a\"b\\c\u{1}é");
        push_u64(&mut out, 0);
        push_u64(&mut out, u64::MAX);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"NASDAQ:AAPL\"\"a\\\"b\\\\c\\u0001é\"018446744073709551615"
        );
    }
}
