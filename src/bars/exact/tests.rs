//! Sums and comparisons checked against a naive digit-string arithmetic
//! written here: numbers spelled out in plain digits, added column by
//! column.

use super::*;
use proptest::prelude::*;

/// A number text in plain digits, (integer part, fraction), the exponent
/// applied by moving the point.
fn plain(text: &str) -> (String, String) {
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().unwrap()),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = format!("{int}{frac}");
    let mut point = int.len() as i64 + exp;
    if point < 0 {
        digits.insert_str(0, &"0".repeat(point.unsigned_abs() as usize));
        point = 0;
    }
    let point = point as usize;
    if point > digits.len() {
        digits.push_str(&"0".repeat(point - digits.len()));
    }
    let (int, frac) = digits.split_at(point);
    (int.to_string(), frac.to_string())
}

/// The sum of number texts, column by column, written with as many
/// fractional digits as the longest fraction.
fn naive_sum(texts: &[&str]) -> String {
    let parts: Vec<(String, String)> = texts.iter().map(|t| plain(t)).collect();
    let scale = parts.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
    // Least significant digit first.
    let mut acc: Vec<u8> = Vec::new();
    for (int, frac) in &parts {
        let digits: Vec<u8> = format!("{int}{frac:0<scale$}")
            .bytes()
            .rev()
            .map(|b| b - b'0')
            .collect();
        if acc.len() < digits.len() {
            acc.resize(digits.len(), 0);
        }
        let mut carry = 0;
        for (i, a) in acc.iter_mut().enumerate() {
            let v = *a + digits.get(i).copied().unwrap_or(0) + carry;
            *a = v % 10;
            carry = v / 10;
        }
        if carry > 0 {
            acc.push(carry);
        }
    }
    while acc.len() > scale + 1 && acc.last() == Some(&0) {
        acc.pop();
    }
    if acc.len() < scale + 1 {
        acc.resize(scale + 1, 0);
    }
    let digits: String = acc.iter().rev().map(|d| char::from(b'0' + d)).collect();
    let (int, frac) = digits.split_at(digits.len() - scale);
    if scale == 0 {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// The order of two number texts by their plain digits.
fn naive_cmp(a: &str, b: &str) -> Ordering {
    let key = |t: &str| {
        let (int, frac) = plain(t);
        let int = int.trim_start_matches('0').to_string();
        let frac = frac.trim_end_matches('0').to_string();
        (int.len(), int, frac)
    };
    key(a).cmp(&key(b))
}

fn sum(texts: &[&str]) -> String {
    let mut s = Sum::default();
    for t in texts {
        assert!(s.add(t.as_bytes()), "{t}");
    }
    written(&s)
}

fn written(s: &Sum) -> String {
    let mut out = Vec::new();
    s.write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn bars_exact_sums_keep_the_most_precise_addends_digits() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "0"),
        (&["1.50", "2.25"], "3.75"),
        (&["1.50", "1.50"], "3.00"),
        (&["1e2", "0.5"], "100.5"),
        (&["1.5E-3", "1"], "1.0015"),
        (&["0.5"], "0.5"),
        (&["100"], "100"),
        (&["1e5"], "100000"),
        (&["1E+5", "1e-0"], "100001"),
        (&["1.5e+2"], "150"),
        (&["12.345e1"], "123.45"),
        (&["12.345e3"], "12345"),
        (&["0.0e0"], "0.0"),
        (&["0", "0.000"], "0.000"),
        (&["0e5"], "0"),
        (&["0.001", "0.009"], "0.010"),
        (&["999.99", "0.01"], "1000.00"),
        (&["5e-3"], "0.005"),
        (&["0e0"], "0"),
    ];
    for (texts, want) in cases {
        assert_eq!(sum(texts), *want, "{texts:?}");
        assert_eq!(naive_sum(texts), *want, "the naive sum of {texts:?}");
    }
}

#[test]
fn bars_exact_refuses_what_is_not_an_unsigned_json_number() {
    for bad in [
        "",
        "-1",
        "+1",
        ".5",
        "5.",
        "01",
        "00",
        "1e",
        "1e+",
        "1.e5",
        "1.5.2",
        "abc",
        " 1",
        "1 ",
        "0x1",
        "NaN",
        "1,5",
        "e5",
        "1e5.5",
        "1e1000000000000000000",
    ] {
        let mut s = Sum::default();
        assert!(s.add(b"2.5"));
        assert!(!s.add(bad.as_bytes()), "{bad:?}");
        assert_eq!(written(&s), "2.5", "{bad:?} changed the sum");
        assert_eq!(cmp(bad.as_bytes(), b"1"), None, "{bad:?}");
        assert_eq!(cmp(b"1", bad.as_bytes()), None, "{bad:?}");
    }
    // Exponents the sum takes, and the first it does not; cmp takes both.
    let mut s = Sum::default();
    assert!(s.add(b"1e1000") && s.add(b"1e-1000"));
    assert!(!s.add(b"1e1001") && !s.add(b"1e-1001"));
    assert_eq!(written(&s), naive_sum(&["1e1000", "1e-1000"]));
    assert_eq!(cmp(b"1e1001", b"1e1000"), Some(Ordering::Greater));
}

#[test]
fn bars_exact_sums_past_u128_stay_exact() {
    let nines = "99999999999999999999999999999999999999";
    assert!(nines.parse::<u128>().is_ok());
    let mut s = Sum::default();
    let mut texts = Vec::new();
    for i in 0..1000 {
        assert!(s.add(nines.as_bytes()));
        texts.push(nines);
        if i % 97 == 0 {
            assert_eq!(written(&s), naive_sum(&texts), "after {} adds", i + 1);
        }
    }
    assert!(s.wide.is_some());
    assert_eq!(written(&s), naive_sum(&texts));

    let cases: &[&[&str]] = &[
        &["1e60"],
        &["1e-60"],
        &["1e60", "1e-60"],
        &["1e-60", "1"],
        &["5", "1e-60"],
        &["1e-60", "5", "2.5e-59", "123456789.987654321"],
        &["340282366920938463463374607431768211455", "1"],
        &["340282366920938463463374607431768211455", "0.1"],
        &["3402823669209384634633746074317682114550"],
        &["0.0000000000000000000000000000000000000000001"],
        &[
            "1234567890123456789012345678901234567890.0987654321",
            "9.9e40",
        ],
        &[nines, nines, "0.5", "1e-3", "7e45", "1E+2"],
    ];
    for texts in cases {
        assert_eq!(sum(texts), naive_sum(texts), "{texts:?}");
    }
}

#[test]
fn bars_exact_equal_sums_are_equal_whatever_the_path() {
    let of = |texts: &[&str]| {
        let mut s = Sum::default();
        for t in texts {
            assert!(s.add(t.as_bytes()));
        }
        s
    };
    assert_eq!(of(&["1.50", "1.50"]), of(&["3.00"]));
    assert_eq!(of(&["1.5", "1.5"]), of(&["3"]).clone_with(&["0.0"]));
    assert_ne!(of(&["3.00"]), of(&["3"]));
    assert_eq!(of(&["1e60", "1e60"]), of(&["2e60"]));
    assert_eq!(
        of(&["1e-60", "1"]),
        of(&["1.000000000000000000000000000000000000000000000000000000000001"])
    );
    assert_eq!(Sum::default(), of(&["0"]));
}

impl Sum {
    fn clone_with(&self, more: &[&str]) -> Sum {
        let mut s = self.clone();
        for t in more {
            assert!(s.add(t.as_bytes()));
        }
        s
    }
}

#[test]
fn bars_exact_cmp_orders_by_value_not_digits() {
    use Ordering::*;
    let cases: &[(&str, &str, Ordering)] = &[
        ("1.50", "1.5", Equal),
        ("1e2", "100", Equal),
        ("100.0", "1E+2", Equal),
        ("0", "0.000", Equal),
        ("0e5", "0", Equal),
        ("0.0015", "1.5E-3", Equal),
        ("15e-4", "0.00150", Equal),
        ("651.10", "651.5", Less),
        ("651.10", "651.1", Equal),
        ("20.1", "20", Greater),
        ("1.5", "1", Greater),
        ("1.05", "1.0", Greater),
        ("10.5", "1e1", Greater),
        ("99", "100", Less),
        ("9.999", "10", Less),
        ("0.1", "0.09", Greater),
        ("0", "1e-60", Less),
        (
            "1e60",
            "999999999999999999999999999999999999999999999999999999999999",
            Greater,
        ),
        ("1e999999", "1e999998", Greater),
        (
            "1.000000000000000000000000000000000000000000001",
            "1",
            Greater,
        ),
        (
            "2",
            "1.999999999999999999999999999999999999999999999",
            Greater,
        ),
    ];
    for &(a, b, want) in cases {
        assert_eq!(cmp(a.as_bytes(), b.as_bytes()), Some(want), "{a} vs {b}");
        assert_eq!(
            cmp(b.as_bytes(), a.as_bytes()),
            Some(want.reverse()),
            "{b} vs {a}"
        );
        if !a.contains("999999") {
            assert_eq!(naive_cmp(a, b), want, "the naive order of {a} vs {b}");
        }
    }
}

/// Unsigned JSON number texts of every form: leading-zero rules, fractions
/// with trailing zeros, both exponent letters and signs.
fn number() -> impl Strategy<Value = String> {
    (
        prop_oneof!["0", "[1-9][0-9]{0,24}"],
        proptest::option::of("[0-9]{1,24}"),
        proptest::option::of((prop_oneof!["e", "E"], prop_oneof!["", "\\+", "-"], 0u32..45)),
    )
        .prop_map(|(int, frac, exp)| {
            let mut s = int;
            if let Some(f) = frac {
                s = format!("{s}.{f}");
            }
            if let Some((e, sign, n)) = exp {
                s = format!("{s}{e}{sign}{n}");
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(500) })]

    #[test]
    fn bars_exact_sum_agrees_with_naive_addition(texts in proptest::collection::vec(number(), 0..12)) {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        prop_assert_eq!(sum(&texts), naive_sum(&texts));
    }

    #[test]
    fn bars_exact_cmp_agrees_with_naive_order(a in number(), b in number()) {
        prop_assert_eq!(cmp(a.as_bytes(), b.as_bytes()), Some(naive_cmp(&a, &b)));
        prop_assert_eq!(cmp(a.as_bytes(), a.as_bytes()), Some(Ordering::Equal));
    }

    /// Numbers that differ only in digits appended to the fraction.
    #[test]
    fn bars_exact_cmp_sees_appended_digits(a in number(), extra in "[0-9]{1,3}") {
        let (mantissa, exp) = a.split_at(a.find(['e', 'E']).unwrap_or(a.len()));
        let point = if mantissa.contains('.') { "" } else { "." };
        let b = format!("{mantissa}{point}{extra}{exp}");
        prop_assert_eq!(cmp(a.as_bytes(), b.as_bytes()), Some(naive_cmp(&a, &b)), "{} vs {}", a, b);
        prop_assert_eq!(cmp(b.as_bytes(), a.as_bytes()), Some(naive_cmp(&b, &a)));
    }

    /// A number found again from its places compares as the number read.
    #[test]
    fn bars_exact_places_find_the_same_number(a in number(), b in number()) {
        let (pa, pb) = (parse(a.as_bytes()).unwrap(), parse(b.as_bytes()).unwrap());
        let again = pb.places().num(b.as_bytes()).unwrap();
        prop_assert_eq!(pa.cmp_value(&again), naive_cmp(&a, &b), "{} vs {}", a, b);
        prop_assert_eq!(again.cmp_value(&pb), Ordering::Equal);
    }
}
