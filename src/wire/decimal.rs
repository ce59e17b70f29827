//! Decimal strings from the server, written out as JSON numbers digit for digit.
//!
//! AllTick sends prices and volumes as decimal strings. We print them as JSON
//! numbers without ever going through a float, so `"651.10"` stays `651.10`.
//! Only forms that are not valid JSON are rewritten, to the same value:
//! `.5` → `0.5`, `007.5` → `7.5`, `5.` → `5`.

use std::borrow::Cow;

use crate::wire::json;

/// Like [`normalize`], but borrows `text` when it is already valid JSON —
/// the usual case, which then costs no allocation.
pub fn normalize_cow(text: &str) -> Option<Cow<'_, str>> {
    // An unsigned JSON number is its own normal form.
    if json::whole_number(text.as_bytes()).is_some_and(|n| !n.negative) {
        Some(Cow::Borrowed(text))
    } else {
        normalize(text).map(Cow::Owned)
    }
}

/// Normalise an unsigned decimal string into valid JSON number text.
///
/// Accepts `digits[.digits][e[+-]digits]` where either side of the dot may be
/// empty (but not both) and the integer part may have leading zeros: the
/// JSON number grammar ([`json::number`]) made lenient in those two
/// places, its exponent the same. Returns `None` for anything else:
/// signs, spaces, hex, `NaN`, empty strings.
pub fn normalize(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let int_end = json::digits(b);
    let (frac, mantissa_end) = match b.get(int_end) {
        Some(b'.') => {
            let n = json::digits(&b[int_end + 1..]);
            (&text[int_end + 1..int_end + 1 + n], int_end + 1 + n)
        }
        _ => ("", int_end),
    };
    if int_end == 0 && frac.is_empty() {
        return None;
    }
    // Keep the exponent with its letter, as the server wrote it.
    let (_, _, end) = json::exponent(b, mantissa_end)?;
    if end != b.len() {
        return None;
    }
    let int = text[..int_end].trim_start_matches('0');
    let mut out = String::with_capacity(text.len() + 1);
    out.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out.push_str(&text[mantissa_end..]);
    Some(out)
}

/// True when a normalised decimal (from [`normalize`]) is greater than zero.
pub fn is_positive(normalized: &str) -> bool {
    json::whole_number(normalized.as_bytes())
        .is_some_and(|n| n.int.iter().chain(n.frac).any(|&d| d != b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_valid_forms_exactly() {
        for s in [
            "651.12", "651.10", "0.5", "300", "0", "1e5", "1.50E-3", "0.000",
        ] {
            assert_eq!(normalize(s).as_deref(), Some(s), "{s}");
        }
    }

    #[test]
    fn rewrites_invalid_json_forms_to_the_same_value() {
        assert_eq!(normalize(".5").as_deref(), Some("0.5"));
        assert_eq!(normalize("007.5").as_deref(), Some("7.5"));
        assert_eq!(normalize("5.").as_deref(), Some("5"));
        assert_eq!(normalize("000").as_deref(), Some("0"));
        assert_eq!(normalize("00.010").as_deref(), Some("0.010"));
    }

    #[test]
    fn refuses_non_decimals() {
        for s in [
            "", ".", "-1", "+1", "abc", "1.2.3", " 1", "1 ", "0x10", "NaN", "1e", "1e+", "e5", "١",
        ] {
            assert_eq!(normalize(s), None, "{s:?}");
        }
    }

    #[test]
    fn cow_borrows_valid_forms_and_agrees_with_normalize() {
        for s in ["651.12", "0", "0.5", "300", "10.000"] {
            assert!(matches!(normalize_cow(s), Some(Cow::Borrowed(_))), "{s}");
        }
        for s in [
            "651.12", "0", "0.5", "300", ".5", "007.5", "5.", "00", "1e5", "-1", "", ".", "1.2.3",
            "0.", "01", "1..2",
        ] {
            assert_eq!(
                normalize_cow(s).map(|c| c.into_owned()),
                normalize(s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn positivity() {
        assert!(is_positive("0.01"));
        assert!(is_positive("1e-5"));
        assert!(!is_positive("0"));
        assert!(!is_positive("0.000"));
        assert!(!is_positive("0e5"));
    }
}
