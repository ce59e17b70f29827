//! The JSON grammar checked: numbers, strings and values, and the
//! readings from one mask against the readings piece by piece.

use super::*;

/// The whole of `s` is one JSON number, read in a line or alone.
fn is_number(s: &str) -> bool {
    let alone = whole_number(s.as_bytes()).is_some();
    let in_line = format!("{s},\"next\":\"some text\"}}");
    let read = number(in_line.as_bytes(), 0).is_some_and(|n| n.end == s.len());
    assert_eq!(alone, read, "{s}");
    alone
}

#[test]
fn the_number_grammar() {
    for ok in ["0", "-0", "12", "1.5", "1e5", "1E+5", "-1.25e-3", "0.000"] {
        assert!(is_number(ok), "{ok}");
    }
    for bad in [
        "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1-2", "-a", "1.e5",
    ] {
        assert!(!is_number(bad), "{bad}");
    }
    let n = number(b"x-12.50E-07,", 1).unwrap();
    assert_eq!(
        n,
        Number {
            negative: true,
            int: b"12",
            frac: b"50",
            exp: b"07",
            exp_negative: true,
            end: 11,
        }
    );
    assert!(number(b"5", 0).unwrap().is_unsigned_integer());
    assert!(!number(b"5.0", 0).unwrap().is_unsigned_integer());
    assert_eq!(number(b"007", 0), None);
    assert_eq!(number(b"0.07", 0).map(|n| n.end), Some(4));
}

/// `count` random texts of 2 to 33 bytes, each byte what `pick` makes of
/// a random number, handed to `each`.
fn random_texts(count: usize, pick: impl Fn(u64) -> u8, mut each: impl FnMut(&[u8])) {
    let mut seed = 7u64;
    for _ in 0..count {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = (seed >> 59) as usize + 2;
        let text: Vec<u8> = (0..len)
            .map(|i| {
                pick(seed.rotate_left(7 * i as u32 + 3) ^ (i as u64).wrapping_mul(0x9E37_79B9))
            })
            .collect();
        each(&text);
    }
}

#[test]
fn a_number_read_from_one_mask_is_the_number_read_by_pieces() {
    // Texts over the bytes a number is made of (and a few around them),
    // mostly digits so that long numbers come up, read at every start.
    let alphabet = b"0123456789.eE+-,}\"a/:";
    let pick = |r: u64| match r % 3 {
        0 => alphabet[(r >> 8) as usize % alphabet.len()],
        _ => b'0' + (r >> 16) as u8 % 10,
    };
    random_texts(200_000, pick, |text| {
        for at in 0..text.len() {
            let negative = text.get(at) == Some(&b'-');
            let start = at + usize::from(negative);
            let by_pieces = number_by_pieces(text, negative, start);
            assert_eq!(
                number(text, at),
                by_pieces,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    });
}

#[test]
fn a_string_read_from_one_mask_is_the_string_read_by_pieces() {
    // Mostly plain bytes (some of them not ASCII) so that long strings
    // come up, and quotes, escapes and a control character.
    let alphabet = b"ab\"\\\n/u0,:}";
    let pick = |r: u64| match r % 4 {
        0 => alphabet[(r >> 8) as usize % alphabet.len()],
        _ => [b'x', b' ', 0xc3, 0xa9][(r >> 16) as usize % 4],
    };
    random_texts(100_000, pick, |text| {
        for at in 0..text.len() {
            let by_pieces = string_by_pieces(text, at);
            assert_eq!(
                string_from(text, at),
                by_pieces,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    });
}

#[test]
fn counts_leading_digits_a_word_at_a_time() {
    let naive = |b: &[u8]| b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut cases: Vec<Vec<u8>> = vec![vec![], b"0123456789012345678x".to_vec()];
    for len in 0..20 {
        for stop in [b'/', b':', b'.', b'"', 0xFF, 0xFA, 0x39 + 0x80, 0x00] {
            let mut v: Vec<u8> = (0..len).map(|i| b'0' + (i % 10) as u8).collect();
            v.push(stop);
            v.extend_from_slice(b"99999999");
            cases.push(v);
        }
    }
    for c in cases {
        assert_eq!(digits(&c), naive(&c), "{c:?}");
    }
}

#[test]
fn the_first_byte_a_string_must_not_hold_is_found_at_every_place() {
    let naive = |s: &[u8]| s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
    for len in 0..40 {
        for at in 0..=len {
            for target in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                // Bytes just above and below the targets, and high bytes.
                let mut s: Vec<u8> = (0..len)
                    .map(|i| [b'#', b'!', 0xff, b' ', b']', b'[', 0xa2, 0x9f][i % 8])
                    .collect();
                if at < len {
                    s[at] = target;
                    if at + 1 < len {
                        s[at + 1] = b'"';
                    }
                }
                assert_eq!(special(&s), naive(&s), "{len} {at} {s:?}");
            }
        }
    }
}

#[test]
fn strings_end_at_their_closing_quote_past_escapes() {
    assert_eq!(string(br#""abc","#, 0), Some((5, false)));
    assert_eq!(string(br#""a\"b\\""#, 0), Some((8, true)));
    assert_eq!(string(br#""\u00e9""#, 0), Some((8, true)));
    for bad in [
        &br#""abc"#[..],
        br#""a\x""#,
        br#""\u00g0""#,
        b"\"a\nb\"",
        b"abc",
    ] {
        assert_eq!(string(bad, 0), None, "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn values_are_skipped_whole_and_typed() {
    let cases: [(&[u8], ValueType, usize, bool); 10] = [
        (br#""a,b" ,"#, ValueType::String, 5, false),
        (b"-1.5e3}", ValueType::Number, 6, false),
        (b"null,", ValueType::Null, 4, false),
        (b"false]", ValueType::Bool, 5, false),
        (
            br#"{ "a" : [1, {"b":"}"}] , "c":null }x"#,
            ValueType::Object,
            35,
            false,
        ),
        (b"[ ]", ValueType::Array, 3, false),
        (b"[[1,2],[3,null]]", ValueType::Array, 16, false),
        (br#""\"""#, ValueType::String, 4, true),
        (br#"[1,{"a":["\/"]}]"#, ValueType::Array, 16, true),
        (br#"{"\u0061":1}"#, ValueType::Object, 12, true),
    ];
    for (text, ty, end, escaped) in cases {
        let v = value(text, 0).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(text)));
        assert_eq!((v.ty, v.start, v.end, v.escaped), (ty, 0, end, escaped));
    }
    let refused = r#"{"a":1,} | [1,] | {"a" 1} | {1:2} | nul | tru | - | [1 2] |  | }"#;
    for bad in refused.split(" | ") {
        assert_eq!(value(bad.as_bytes(), 0), None, "{bad}");
    }
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    assert!(value(deep(MAX_DEPTH as usize).as_bytes(), 0).is_some());
    assert!(value(deep(MAX_DEPTH as usize + 1).as_bytes(), 0).is_none());
}

#[test]
fn members_and_elements_are_handed_on_in_order() {
    let text = br#"{"a":1, "b\n":"x" ,"c":[true]}"#;
    let mut seen = Vec::new();
    let end = members(text, 0, |k, v| {
        seen.push((k.inner(text), k.escaped, v.text(text)))
    });
    assert_eq!(end, Some(text.len()));
    assert_eq!(
        seen,
        [
            (&b"a"[..], false, &b"1"[..]),
            (b"b\\n", true, b"\"x\""),
            (b"c", false, b"[true]"),
        ]
    );
    let mut items = Vec::new();
    assert_eq!(
        elements(b"[1,\"2\"]", 0, |v| items.push(v.inner(b"[1,\"2\"]"))),
        Some(7)
    );
    assert_eq!(items, [&b"1"[..], b"2"]);
}
