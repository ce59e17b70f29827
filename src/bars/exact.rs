//! Exact decimals read from JSON number text: sums and comparisons without
//! a float anywhere.
//!
//! A sum is kept as an integer mantissa and a count of fractional digits
//! (its scale). The mantissa is a `u128` until a sum outgrows it, then
//! base-10⁹ limbs, so any sum stays exact; the usual one never allocates.
//! A comparison reads both texts digit by digit and allocates nothing.

use std::cmp::Ordering;

use crate::wire::json;

/// Largest exponent (either sign) [`Sum::add`] takes: beyond it the plain
/// digits the sum is written in would run to thousands.
const MAX_SUM_EXPONENT: u64 = 1000;

/// Exponents are read up to this many significant digits (10¹⁸ − 1).
const MAX_EXPONENT_DIGITS: usize = 18;

/// Limb base of the wide mantissa.
const LIMB: u32 = 1_000_000_000;

/// Powers of ten that fit a `u128`.
const POW10: [u128; 39] = {
    let mut p = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// An unsigned JSON number split into its parts: `int` (`0` or digits not
/// starting with `0`), `frac` (empty when there is no point) and the
/// exponent's value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Num<'a> {
    int: &'a [u8],
    frac: &'a [u8],
    exp: i64,
}

/// The parts of `text` when it is an unsigned JSON number
/// ([`json::number`]) with an exponent of at most 18 significant digits.
pub(crate) fn parse(text: &[u8]) -> Option<Num<'_>> {
    let n = json::whole_number(text).filter(|n| !n.negative)?;
    let mut exp = 0;
    if !n.exp.is_empty() {
        let zeros = n.exp.iter().take_while(|&&d| d == b'0').count();
        let significant = &n.exp[zeros..];
        if significant.len() > MAX_EXPONENT_DIGITS {
            return None;
        }
        exp = significant
            .iter()
            .fold(0i64, |e, &d| e * 10 + i64::from(d - b'0'));
        if n.exp_negative {
            exp = -exp;
        }
    }
    Some(Num {
        int: n.int,
        frac: n.frac,
        exp,
    })
}

/// Where a [`Num`]'s parts lie in the text it was read from: kept beside
/// a bar's high and low, so that each new price is compared with them
/// without reading them again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Places {
    int: usize,
    frac: usize,
    exp: i64,
}

impl Places {
    /// The number in `text`, the text its places were taken from.
    pub(crate) fn num(self, text: &[u8]) -> Option<Num<'_>> {
        let frac = match self.frac {
            0 => &[][..],
            n => text.get(self.int + 1..self.int + 1 + n)?,
        };
        Some(Num {
            int: text.get(..self.int)?,
            frac,
            exp: self.exp,
        })
    }
}

impl Num<'_> {
    /// Where its parts lie in its text ([`Places::num`] finds it again).
    pub(crate) fn places(&self) -> Places {
        Places {
            int: self.int.len(),
            frac: self.frac.len(),
            exp: self.exp,
        }
    }

    /// The digits from the first non-zero one on, as two slices (of `int`
    /// and of `frac`), and the position of that first digit: the value lies
    /// in [10^(pos-1), 10^pos). None when the value is zero.
    fn significant(&self) -> Option<(&[u8], &[u8], i64)> {
        let (head, tail, skipped) = if self.int != b"0" {
            (self.int, self.frac, 0)
        } else {
            let zeros = self.frac.iter().position(|&b| b != b'0')?;
            (&[][..], &self.frac[zeros..], zeros as i64 + 1)
        };
        Some((head, tail, self.int.len() as i64 - skipped + self.exp))
    }

    /// The numeric order of two numbers.
    pub(crate) fn cmp_value(&self, other: &Num) -> Ordering {
        let (a, b) = match (self.significant(), other.significant()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(a), Some(b)) => (a, b),
        };
        if a.2 != b.2 {
            return a.2.cmp(&b.2);
        }
        cmp_digits((a.0, a.1), (b.0, b.1))
    }

    /// The digits as a `u128` followed by `zeros` zeros, when that fits.
    fn small(&self, zeros: u32) -> Option<u128> {
        let v = if self.int.len() + self.frac.len() <= 19 {
            let digits = |v: u64, s: &[u8]| s.iter().fold(v, |v, &d| v * 10 + u64::from(d - b'0'));
            u128::from(digits(digits(0, self.int), self.frac))
        } else {
            let digits = |v: u128, s: &[u8]| {
                s.iter().try_fold(v, |v, &d| {
                    v.checked_mul(10)?.checked_add(u128::from(d - b'0'))
                })
            };
            digits(digits(0, self.int)?, self.frac)?
        };
        scale_up(v, zeros)
    }
}

/// The order of two digit sequences (each in two pieces) read as the
/// digits after a point: a longer one is greater only by a non-zero digit.
fn cmp_digits<'x>(mut a: (&'x [u8], &'x [u8]), mut b: (&'x [u8], &'x [u8])) -> Ordering {
    let nonzero = |x: (&[u8], &[u8])| x.0.iter().chain(x.1).any(|&d| d != b'0');
    loop {
        if a.0.is_empty() {
            a = (a.1, &[]);
        }
        if b.0.is_empty() {
            b = (b.1, &[]);
        }
        match (a.0.is_empty(), b.0.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) if nonzero(b) => return Ordering::Less,
            (false, true) if nonzero(a) => return Ordering::Greater,
            (true, _) | (_, true) => return Ordering::Equal,
            (false, false) => {}
        }
        // Digit by digit: the pieces are short, shorter than a call to
        // `memcmp` is worth.
        let n = a.0.len().min(b.0.len());
        if let Some((x, y)) = a.0[..n].iter().zip(&b.0[..n]).find(|(x, y)| x != y) {
            return x.cmp(y);
        }
        a.0 = &a.0[n..];
        b.0 = &b.0[n..];
    }
}

/// Exact numeric order of two unsigned JSON number texts (`1.50` == `1.5`,
/// `1e2` == `100`); None when either is not one (or has an exponent of more
/// than 18 digits).
pub fn cmp(a: &[u8], b: &[u8]) -> Option<Ordering> {
    Some(parse(a)?.cmp_value(&parse(b)?))
}

/// `v` × 10^`k`, when it fits.
fn scale_up(v: u128, k: u32) -> Option<u128> {
    if v == 0 {
        return Some(0);
    }
    v.checked_mul(*POW10.get(k as usize)?)
}

/// An exact sum of unsigned decimals.
///
/// Two sums are equal when they write the same text: the same value with
/// the same number of fractional digits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sum {
    /// The mantissa while it fits (0 once `wide` holds it).
    small: u128,
    /// Fractional digits: the value is the mantissa × 10^-scale.
    scale: u32,
    /// The mantissa once it outgrew a `u128`: base-10⁹ limbs, least
    /// significant first, no zero limb on top. Only ever set for a
    /// mantissa over `u128::MAX`, so each sum has one representation.
    wide: Option<Vec<u32>>,
}

impl Sum {
    /// Add the number written as `text`; false (and nothing added) when it
    /// is not an unsigned JSON number, or its exponent is beyond ±1000.
    pub fn add(&mut self, text: &[u8]) -> bool {
        parse(text).is_some_and(|n| self.add_num(&n))
    }

    /// Whether [`Sum::add_num`] takes `n`.
    pub(crate) fn takes(n: &Num) -> bool {
        Sum::scale_of(n).is_some()
    }

    /// The scale of `n` (its fractional digits, none when its exponent
    /// leaves it an integer) and the zeros its digits are followed by;
    /// None beyond the exponents [`Sum::add`] takes.
    fn scale_of(n: &Num) -> Option<(u32, u32)> {
        if n.exp.unsigned_abs() > MAX_SUM_EXPONENT {
            return None;
        }
        // The value is the digits × 10^shift.
        let shift = i64::try_from(n.frac.len()).ok().map(|f| n.exp - f)?;
        let magnitude = u32::try_from(shift.unsigned_abs()).ok()?;
        Some(if shift < 0 {
            (magnitude, 0)
        } else {
            (0, magnitude)
        })
    }

    /// Add a parsed number; false (and nothing added) as for [`Sum::add`].
    pub(crate) fn add_num(&mut self, n: &Num) -> bool {
        let Some((scale, zeros)) = Sum::scale_of(n) else {
            return false;
        };
        let wide = match &mut self.wide {
            Some(wide) => wide,
            None => {
                if let Some(v) = n.small(zeros)
                    && self.add_small(v, scale)
                {
                    return true;
                }
                self.wide
                    .insert(limbs_of_u128(std::mem::take(&mut self.small)))
            }
        };
        let mut addend = limbs_of_digits(n.int, n.frac);
        mul_pow10(&mut addend, zeros);
        if scale > self.scale {
            mul_pow10(wide, scale - self.scale);
            self.scale = scale;
        } else {
            mul_pow10(&mut addend, self.scale - scale);
        }
        add_limbs(wide, &addend);
        true
    }

    /// Add `v` × 10^-`scale` to the `u128` mantissa; false (and nothing
    /// changed) when the result would not fit.
    fn add_small(&mut self, v: u128, scale: u32) -> bool {
        let (sum, v, scale) = if scale == self.scale {
            (self.small, v, scale)
        } else if scale > self.scale {
            match scale_up(self.small, scale - self.scale) {
                Some(sum) => (sum, v, scale),
                None => return false,
            }
        } else {
            match scale_up(v, self.scale - scale) {
                Some(v) => (self.small, v, self.scale),
                None => return false,
            }
        };
        match sum.checked_add(v) {
            Some(sum) => {
                self.small = sum;
                self.scale = scale;
                true
            }
            None => false,
        }
    }

    /// Append the sum as JSON number text: plain digits, no exponent, with
    /// as many fractional digits as the most precise addend had (so
    /// 1.50 + 2.25 = 3.75, 1.50 + 1.50 = 3.00, 1e2 + 0.5 = 100.5,
    /// 1.5E-3 + 1 = 1.0015, the sum of nothing = 0).
    pub fn write(&self, out: &mut Vec<u8>) {
        match &self.wide {
            None => {
                let mut buf = [0u8; 39];
                let at = write_u128(self.small, &mut buf);
                write_point(&buf[at..], self.scale as usize, out);
            }
            Some(limbs) => {
                let mut digits = Vec::with_capacity(limbs.len() * 9);
                let mut top = true;
                for &limb in limbs.iter().rev() {
                    let mut buf = [0u8; 39];
                    let at = write_u128(u128::from(limb), &mut buf);
                    if !top {
                        digits.resize(digits.len() + at - 30, b'0');
                    }
                    digits.extend_from_slice(&buf[at..]);
                    top = false;
                }
                write_point(&digits, self.scale as usize, out);
            }
        }
    }
}

/// Write `v`'s decimal digits at the end of `buf`; where they begin.
fn write_u128(mut v: u128, buf: &mut [u8; 39]) -> usize {
    let mut at = buf.len();
    if let Ok(mut w) = u64::try_from(v) {
        loop {
            at -= 1;
            buf[at] = b'0' + (w % 10) as u8;
            w /= 10;
            if w == 0 {
                return at;
            }
        }
    }
    while v > 0 {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    at
}

/// Append the integer `digits` with a decimal point `scale` digits from
/// the right (padded with zeros to a leading `0.`).
fn write_point(digits: &[u8], scale: usize, out: &mut Vec<u8>) {
    if scale == 0 {
        out.extend_from_slice(digits);
    } else if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + scale - digits.len(), b'0');
        out.extend_from_slice(digits);
    }
}

/// Base-10⁹ limbs of `v`.
fn limbs_of_u128(mut v: u128) -> Vec<u32> {
    let mut limbs = Vec::with_capacity(5);
    while v > 0 {
        limbs.push((v % u128::from(LIMB)) as u32);
        v /= u128::from(LIMB);
    }
    limbs
}

/// Base-10⁹ limbs of the integer the digits of `int` then `frac` spell.
fn limbs_of_digits(int: &[u8], frac: &[u8]) -> Vec<u32> {
    let mut limbs = Vec::with_capacity((int.len() + frac.len()) / 9 + 1);
    let (mut limb, mut unit, mut n) = (0u32, 1u32, 0);
    for &d in frac.iter().rev().chain(int.iter().rev()) {
        limb += u32::from(d - b'0') * unit;
        n += 1;
        if n == 9 {
            limbs.push(limb);
            (limb, unit, n) = (0, 1, 0);
        } else {
            unit *= 10;
        }
    }
    limbs.push(limb);
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    limbs
}

/// Multiply limbs by 10^`k`.
fn mul_pow10(limbs: &mut Vec<u32>, k: u32) {
    if limbs.is_empty() || k == 0 {
        return;
    }
    let factor = u64::from(POW10[(k % 9) as usize] as u32);
    if factor > 1 {
        let mut carry = 0u64;
        for limb in limbs.iter_mut() {
            let v = u64::from(*limb) * factor + carry;
            *limb = (v % u64::from(LIMB)) as u32;
            carry = v / u64::from(LIMB);
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    let whole = (k / 9) as usize;
    limbs.splice(0..0, std::iter::repeat_n(0, whole));
}

/// `a` += `b`, both base-10⁹ limbs.
fn add_limbs(a: &mut Vec<u32>, b: &[u32]) {
    if a.len() < b.len() {
        a.resize(b.len(), 0);
    }
    let mut carry = 0u32;
    for (i, limb) in a.iter_mut().enumerate() {
        let v = *limb + b.get(i).copied().unwrap_or(0) + carry;
        if v >= LIMB {
            *limb = v - LIMB;
            carry = 1;
        } else {
            *limb = v;
            carry = 0;
            if i >= b.len() {
                break;
            }
        }
    }
    if carry > 0 {
        a.push(carry);
    }
}

#[cfg(test)]
mod tests;
