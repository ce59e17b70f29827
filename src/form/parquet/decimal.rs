//! JSON number text into the scaled integer of a Parquet `DECIMAL`,
//! exactly: the number is read with the one grammar of
//! [`crate::wire::json`], its digits shifted by its exponent and the
//! column's scale, and nothing is ever rounded. A value with a non-zero
//! digit past the scale, or more digits than the precision, is refused
//! with what is wrong ([`Misfit`]); trailing zeros past the scale are
//! not digits of the value (`651.1000000000` is 651.1) and fit.

use std::fmt;

use crate::wire::json;

/// A `DECIMAL` column's precision and scale (at most 38 digits, so that
/// its values fit an `i128`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    /// Digits in all.
    pub precision: u32,
    /// Digits after the point.
    pub scale: u32,
}

/// Prices (`price`, `open`, `high`, `low`, `close`): `DECIMAL(18,8)` on
/// `INT64`. Eight decimals are the finest prices seen (coins quoted in
/// hundred-millionths); ten integer digits hold any price below 10^10
/// (Bitcoin in won is about 1.4 × 10^8).
pub const PRICE: Decimal = Decimal {
    precision: 18,
    scale: 8,
};

/// Volume and turnover: `DECIMAL(38,8)` on `FIXED_LEN_BYTE_ARRAY(16)`.
/// Turnovers above 10^11 are seen on single trades, and a bar's sums of
/// a day reach 10^12 and more; thirty integer digits hold any sum of
/// them, and eight decimals whatever a volume or turnover was sent with.
pub const AMOUNT: Decimal = Decimal {
    precision: 38,
    scale: 8,
};

/// Exponents are read up to this many significant digits; any larger is
/// far beyond every precision.
const MAX_EXPONENT_DIGITS: usize = 4;

/// Why a number does not fit a `DECIMAL` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misfit {
    /// Not a JSON number.
    NotANumber,
    /// A non-zero digit past the scale: storing it would round.
    TooPrecise(Decimal),
    /// More integer digits than precision − scale.
    TooLarge(Decimal),
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfit::NotANumber => write!(f, "not a JSON number"),
            Misfit::TooPrecise(d) => write!(
                f,
                "more than {} decimals: DECIMAL({},{}) would round it",
                d.scale, d.precision, d.scale
            ),
            Misfit::TooLarge(d) => write!(
                f,
                "more than {} integer digits: too large for DECIMAL({},{})",
                d.precision - d.scale,
                d.precision,
                d.scale
            ),
        }
    }
}

/// Powers of ten that fit an `i128`.
const POW10: [i128; 39] = {
    let mut p = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

impl Decimal {
    /// The value of the JSON number `text` × 10^scale: the unscaled
    /// integer Parquet stores, when it is exact and within the precision.
    pub fn unscaled(self, text: &[u8]) -> Result<i128, Misfit> {
        if let Some(v) = self.plain(text) {
            return Ok(v);
        }
        let n = json::whole_number(text).ok_or(Misfit::NotANumber)?;
        // The usual number: no exponent, no more decimals than the scale,
        // eighteen digits at most (a `u64` holds them).
        if n.exp.is_empty()
            && n.frac.len() <= self.scale as usize
            && n.int.len() + n.frac.len() <= 18
        {
            let whole = |v: u64, s: &[u8]| s.iter().fold(v, |v, &d| v * 10 + u64::from(d - b'0'));
            let v = i128::from(whole(whole(0, n.int), n.frac))
                * POW10[self.scale as usize - n.frac.len()];
            if v >= POW10[self.precision as usize] {
                return Err(Misfit::TooLarge(self));
            }
            return Ok(if n.negative { -v } else { v });
        }
        // The value is the digits of int then frac × 10^shift.
        let digits = || n.int.iter().chain(n.frac).map(|&d| i128::from(d - b'0'));
        if digits().all(|d| d == 0) {
            return Ok(0);
        }
        let exp = exponent(n.exp, n.exp_negative).ok_or(if n.exp_negative {
            Misfit::TooPrecise(self)
        } else {
            Misfit::TooLarge(self)
        })?;
        let shift = exp - n.frac.len() as i64 + i64::from(self.scale);
        let count = n.int.len() + n.frac.len();
        // Digits that would fall past the point: zeros, or the value
        // cannot be held without rounding.
        let dropped = usize::try_from(-shift).unwrap_or(0).min(count);
        if digits().skip(count - dropped).any(|d| d != 0) {
            return Err(Misfit::TooPrecise(self));
        }
        let limit = POW10[self.precision as usize];
        let mut v: i128 = 0;
        for d in digits().take(count - dropped) {
            v = v * 10 + d;
            if v >= limit {
                return Err(Misfit::TooLarge(self));
            }
        }
        if shift > 0 {
            let factor = usize::try_from(shift)
                .ok()
                .and_then(|s| POW10.get(s))
                .ok_or(Misfit::TooLarge(self))?;
            v = v
                .checked_mul(*factor)
                .filter(|v| *v < limit)
                .ok_or(Misfit::TooLarge(self))?;
        }
        Ok(if n.negative { -v } else { v })
    }
}

impl Decimal {
    /// The value of the commonest numbers read in one pass: digits
    /// without a leading zero (or a lone `0`), then perhaps a point and
    /// at most scale digits, eighteen digits at most, within the
    /// precision. `None` for any other text, which [`Decimal::unscaled`]
    /// reads in full.
    #[inline]
    pub fn plain(self, text: &[u8]) -> Option<i128> {
        self.plain_start(text)
            .filter(|&(_, n)| n == text.len())
            .map(|(v, _)| v)
    }

    /// [`Decimal::plain`] of the number `text` starts with (up to its
    /// first byte that is neither a digit nor a point), and its length.
    #[inline]
    pub fn plain_start(self, text: &[u8]) -> Option<(i128, usize)> {
        let scale = self.scale as usize;
        let (mut v, mut i) = (0u64, 0);
        while let Some(&d) = text.get(i).filter(|d| d.is_ascii_digit()) {
            v = v * 10 + u64::from(d - b'0');
            i += 1;
            if i > 18 {
                return None;
            }
        }
        let int = i;
        if int == 0 || (int > 1 && text[0] == b'0') {
            return None;
        }
        let mut frac = 0;
        if text.get(i) == Some(&b'.') {
            i += 1;
            while let Some(&d) = text.get(i).filter(|d| d.is_ascii_digit()) {
                v = v * 10 + u64::from(d - b'0');
                i += 1;
                frac += 1;
                if frac > scale || int + frac > 18 {
                    return None;
                }
            }
            if frac == 0 {
                return None;
            }
        }
        if text.get(i) == Some(&b'.') {
            return None;
        }
        let v = i128::from(v) * POW10[scale - frac];
        (v < POW10[self.precision as usize]).then_some((v, i))
    }
}

/// An exponent's value from its digits; `None` when it has more than
/// [`MAX_EXPONENT_DIGITS`] significant ones.
fn exponent(digits: &[u8], negative: bool) -> Option<i64> {
    let zeros = digits.iter().take_while(|&&d| d == b'0').count();
    let significant = &digits[zeros..];
    if significant.len() > MAX_EXPONENT_DIGITS {
        return None;
    }
    let e = significant
        .iter()
        .fold(0i64, |e, &d| e * 10 + i64::from(d - b'0'));
    Some(if negative { -e } else { e })
}

/// The text of an unscaled value at `scale`: what the JSON number is
/// worth, with exactly `scale` decimals (`65110000000` at 8 is
/// `651.10000000`). For messages and tests.
pub fn text(unscaled: i128, scale: u32) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let sign = if unscaled < 0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(s: &str) -> Result<i128, Misfit> {
        PRICE.unscaled(s.as_bytes())
    }

    #[test]
    fn numbers_become_their_exact_unscaled_integers() {
        assert_eq!(price("651.10"), Ok(65_110_000_000));
        assert_eq!(price("0"), Ok(0));
        assert_eq!(price("0.5"), Ok(50_000_000));
        assert_eq!(price("12.345678912"), Err(Misfit::TooPrecise(PRICE)));
        assert_eq!(price("12.34567891"), Ok(1_234_567_891));
        assert_eq!(price("123456789012345678"), Err(Misfit::TooLarge(PRICE)));
        assert_eq!(
            AMOUNT.unscaled(b"1234567890.12345678"),
            Ok(123_456_789_012_345_678)
        );
        assert_eq!(
            AMOUNT.unscaled(b"12345678901234567890"),
            Ok(1_234_567_890_123_456_789_000_000_000)
        );
        assert_eq!(price("0.00000001"), Ok(1));
        assert_eq!(price("-1.5"), Ok(-150_000_000));
        assert_eq!(price("1e5"), Ok(10_000_000_000_000));
        assert_eq!(price("1.50E-3"), Ok(150_000));
        assert_eq!(price("12345e-12"), Err(Misfit::TooPrecise(PRICE)));
        assert_eq!(price("12300000e-13"), Ok(123));
        assert_eq!(price("651.1000000000000000000000"), Ok(65_110_000_000));
        assert_eq!(price("0e99999"), Ok(0));
        assert_eq!(price("9999999999.99999999"), Ok(999_999_999_999_999_999));
        assert_eq!(
            AMOUNT.unscaled(b"123456789012345678901234567890.12345678"),
            Ok(12_345_678_901_234_567_890_123_456_789_012_345_678)
        );
    }

    #[test]
    fn what_would_round_or_overflow_is_refused() {
        assert_eq!(price("0.000000001"), Err(Misfit::TooPrecise(PRICE)));
        assert_eq!(price("651.123456789"), Err(Misfit::TooPrecise(PRICE)));
        assert_eq!(price("10000000000"), Err(Misfit::TooLarge(PRICE)));
        assert_eq!(price("1e10"), Err(Misfit::TooLarge(PRICE)));
        assert_eq!(price("1e99999"), Err(Misfit::TooLarge(PRICE)));
        assert_eq!(price("1e-99999"), Err(Misfit::TooPrecise(PRICE)));
        assert_eq!(
            AMOUNT.unscaled(b"1234567890123456789012345678901"),
            Err(Misfit::TooLarge(AMOUNT))
        );
        for bad in [
            "", "1.", ".5", "01", "+1", "1e", "null", "\"1\"", "1 ", "00.5", "1.5.", "1..5", "-",
        ] {
            assert_eq!(price(bad), Err(Misfit::NotANumber), "{bad:?}");
        }
        assert!(
            Misfit::TooPrecise(PRICE)
                .to_string()
                .contains("more than 8 decimals")
        );
    }

    #[test]
    fn an_unscaled_value_reads_back_as_its_number() {
        assert_eq!(text(65_110_000_000, 8), "651.10000000");
        assert_eq!(text(1, 8), "0.00000001");
        assert_eq!(text(-150_000_000, 8), "-1.50000000");
        assert_eq!(text(42, 0), "42");
    }
}
