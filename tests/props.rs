//! Property tests over everything that parses outside input: the stdin
//! grammar, the symbol parser and the message decoder. None may panic, and
//! what they accept must be safe to put on the wire and on stdout.

use alltick_stream::form::json;
use alltick_stream::router::command::{LineEvent, MAX_LINE, parse_line, read_commands};
use alltick_stream::wire::protocol::{self, Incoming};
use alltick_stream::wire::symbol::{MAX_SYMBOL_LEN, Symbol};
use alltick_stream::wire::{decimal, fast};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// `cases` per property; failures are kept in `props.proptest-regressions`
/// beside this file (proptest's default would look for a folder beside the
/// test crate's root, since tests/ has a main.rs).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::with_cases(cases)
    }
}

fn code_is_safe(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_SYMBOL_LEN + 3
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn symbol_parser_never_panics_and_accepts_only_safe_codes(s in "\\PC{0,40}") {
        if let Ok(sym) = Symbol::parse(&s) {
            prop_assert!(code_is_safe(&sym.code), "{:?} -> {:?}", s, sym.code);
            prop_assert!(s.starts_with(&*sym.spelling));
        }
    }

    #[test]
    fn symbol_parser_on_symbol_like_input(s in "[A-Za-z]{0,8}:?[A-Za-z0-9._-]{0,12}") {
        if let Ok(sym) = Symbol::parse(&s) {
            prop_assert!(code_is_safe(&sym.code));
            // The request built from it is valid JSON carrying the code exactly.
            let req = protocol::subscribe_trades(1, "t", [&*sym.code]);
            let v: serde_json::Value = serde_json::from_str(&req).unwrap();
            prop_assert_eq!(v["data"]["symbol_list"][0]["code"].as_str(), Some(&*sym.code));
        }
    }

    #[test]
    fn stdin_lines_never_panic(line in "\\PC{0,200}") {
        let _ = parse_line(&line);
    }

    #[test]
    fn stdin_reader_takes_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut events = 0usize;
        read_commands(bytes.as_slice(), |e| {
            if let LineEvent::Command { command, .. } = e {
                let syms = match command {
                    alltick_stream::router::command::Command::Add(v) | alltick_stream::router::command::Command::Remove(v) => v,
                    alltick_stream::router::command::Command::Query => Vec::new(),
                };
                assert!(syms.iter().all(|s| code_is_safe(&s.code)));
            }
            events += 1;
            true
        }).unwrap();
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        prop_assert!(events <= lines);
    }

    #[test]
    fn stdin_reader_bounds_long_lines(len in (MAX_LINE - 2)..(MAX_LINE * 3), fill in any::<u8>()) {
        let fill = if fill == b'\n' { b'x' } else { fill };
        let mut input = vec![fill; len];
        input.extend_from_slice(b"\n+AAPL.US\n");
        let mut last = None;
        read_commands(input.as_slice(), |e| { last = Some(e); true }).unwrap();
        let ok = matches!(last, Some(LineEvent::Command { line: 2, .. }));
        prop_assert!(ok, "the line after a long one was lost: {:?}", last);
    }

    #[test]
    fn decoder_never_panics_on_text(text in "\\PC{0,300}") {
        let _ = protocol::decode(&text);
    }

    #[test]
    fn decoder_never_panics_on_trade_shaped_json(
        code in proptest::option::of("\\PC{0,12}"),
        seq in proptest::option::of(any::<i64>()),
        price in proptest::option::of("\\PC{0,12}"),
        volume in proptest::option::of("[0-9.eE+-]{0,8}"),
        dir in any::<i8>(),
    ) {
        let mut data = serde_json::Map::new();
        if let Some(c) = code { data.insert("code".into(), c.into()); }
        if let Some(s) = seq { data.insert("seq".into(), s.into()); }
        data.insert("tick_time".into(), 1u64.into());
        if let Some(p) = price { data.insert("price".into(), p.into()); }
        if let Some(v) = volume { data.insert("volume".into(), v.into()); }
        data.insert("trade_direction".into(), dir.into());
        let text = serde_json::json!({"cmd_id": 22998, "data": data}).to_string();
        match protocol::decode(&text) {
            Ok(Incoming::Trade(t)) => {
                // Accepted numbers are valid JSON and the price is positive.
                prop_assert!(serde_json::from_str::<serde_json::Value>(&t.price).is_ok_and(|v| v.is_number()));
                prop_assert!(decimal::is_positive(&t.price));
                if let Some(v) = &t.volume {
                    prop_assert!(serde_json::from_str::<serde_json::Value>(v).is_ok_and(|v| v.is_number()));
                }
            }
            Ok(Incoming::BadTrade(_)) => {}
            other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        }
    }

    #[test]
    fn decimals_keep_their_digits(int in "[0-9]{0,6}", frac in proptest::option::of("[0-9]{0,6}")) {
        let text = match &frac { Some(f) => format!("{int}.{f}"), None => int.clone() };
        match decimal::normalize(&text) {
            Some(n) => {
                let v: serde_json::Value = serde_json::from_str(&n).expect("valid JSON number");
                prop_assert!(v.is_number());
                // Same digits after the point, as sent.
                if let Some(f) = frac.filter(|f| !f.is_empty()) {
                    let suffix = format!(".{}", f);
                    prop_assert!(n.ends_with(&suffix));
                }
            }
            None => prop_assert!(int.is_empty() && frac.as_deref().unwrap_or("").is_empty()),
        }
    }
}

/// Format a frame's trade the way the writer does: the documented shape
/// first, then the zero-copy scanner, the full decoder when both step aside.
fn line_via_fast(text: &str) -> Result<Vec<u8>, String> {
    use alltick_stream::wire::scan::{Scan, scan};
    if let Some(t) = fast::read(text) {
        let mut head = Vec::new();
        alltick_stream::form::json::trade_head(&mut head, "S", t.code);
        let mut out = Vec::new();
        json::write(&mut out, &head, &t);
        return Ok(out);
    }
    match scan(text) {
        Scan::Trade(raw) => {
            let t = protocol::validate(&raw).map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            alltick_stream::form::json::format_trade(&mut out, "S", &t);
            Ok(out)
        }
        Scan::Other => line_via_full(text),
    }
}

fn line_via_full(text: &str) -> Result<Vec<u8>, String> {
    match protocol::decode(text) {
        Ok(Incoming::Trade(t)) => {
            let mut out = Vec::new();
            alltick_stream::form::json::format_trade(&mut out, "S", &t.view());
            Ok(out)
        }
        Ok(Incoming::BadTrade(why)) => Err(why.to_string()),
        other => Err(format!("{other:?}")),
    }
}

/// Mostly the usual value of a field (so most generated trades are valid
/// and reach the formatting), sometimes anything.
fn field(
    usual: impl Strategy<Value = serde_json::Value> + 'static,
) -> impl Strategy<Value = Option<serde_json::Value>> {
    prop_oneof![
        6 => usual.prop_map(Some),
        1 => json_field(),
    ]
}

fn decimal_text() -> impl Strategy<Value = serde_json::Value> {
    "0{0,2}[0-9]{0,3}(\\.[0-9]{0,3})?".prop_map(serde_json::Value::String)
}

fn json_field() -> impl Strategy<Value = Option<serde_json::Value>> {
    prop_oneof![
        Just(None),
        Just(Some(serde_json::Value::Null)),
        "[0-9.]{0,8}".prop_map(|s| Some(serde_json::Value::String(s))),
        "\\PC{0,6}".prop_map(|s| Some(serde_json::Value::String(s))),
        any::<u32>().prop_map(|n| Some(serde_json::Value::from(n))),
        any::<i8>().prop_map(|n| Some(serde_json::Value::from(n))),
        any::<bool>().prop_map(|b| Some(serde_json::Value::from(b))),
    ]
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn zero_copy_path_agrees_with_the_full_decoder(
        code in field("[A-Z0-9]{1,5}\\.US".prop_map(serde_json::Value::String)),
        seq in field(any::<u64>().prop_map(serde_json::Value::from)),
        time in field(any::<u64>().prop_map(|n| serde_json::Value::String(n.to_string()))),
        price in field(decimal_text()),
        volume in field(decimal_text()),
        turnover in field(decimal_text()),
        dir in field((0u8..4).prop_map(serde_json::Value::from)),
        pretty in any::<bool>(),
    ) {
        let mut data = serde_json::Map::new();
        for (k, v) in [("code", code), ("seq", seq), ("tick_time", time), ("price", price),
                       ("volume", volume), ("turnover", turnover), ("trade_direction", dir)] {
            if let Some(v) = v {
                data.insert(k.into(), v);
            }
        }
        let msg = serde_json::json!({"cmd_id": 22998, "data": data});
        let text = if pretty { serde_json::to_string_pretty(&msg).unwrap() } else { msg.to_string() };
        prop_assert_eq!(line_via_fast(&text), line_via_full(&text), "{}", text);
    }
}

/// One field's value as it is written into a generated frame, and what the
/// output must carry for it.
#[derive(Clone, Debug)]
enum Val {
    /// Left out of the frame.
    Absent,
    /// `null`.
    Null,
    /// A string with these contents.
    Str(String),
    /// A JSON number with exactly this text.
    Num(String),
}

impl Val {
    /// The value's JSON text, `None` when absent.
    fn json(&self) -> Option<String> {
        match self {
            Val::Absent => None,
            Val::Null => Some("null".into()),
            Val::Str(s) => Some(format!("\"{s}\"")),
            Val::Num(n) => Some(n.clone()),
        }
    }

    /// The decimal the output must print: `Some(None)` for "no value",
    /// `None` when the value is not a decimal at all.
    fn decimal(&self) -> Option<Option<String>> {
        match self {
            Val::Absent | Val::Null => Some(None),
            Val::Str(s) if s.is_empty() => Some(None),
            Val::Str(s) => expected_decimal(s).map(Some),
            // A JSON number is valid JSON already: its text is kept exactly.
            Val::Num(n) => Some(Some(n.clone())),
        }
    }
}

/// The only rewrites allowed: leading zeros dropped (`007.5` → `7.5`), a
/// missing integer part or a trailing point filled in or dropped
/// (`.5` → `0.5`, `5.` → `5`). Every other digit stays as sent.
fn expected_decimal(s: &str) -> Option<String> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let int = int.trim_start_matches('0');
    let mut out = if int.is_empty() {
        "0".to_string()
    } else {
        int.to_string()
    };
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

fn positive(d: &str) -> bool {
    let mantissa = d.split(['e', 'E']).next().unwrap();
    mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

/// A JSON number as a server might write it: trailing zeros, 17 and more
/// significant digits, now and then an exponent.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::sample::select(vec![
            "651.10", "100.000", "123456789012.123456789", "0.000",
            "12345678901234567890.12345678901234567890", "99999999999999999999", "1E+2", "2.50e-3",
        ])
        .prop_map(str::to_string),
        6 => (
            "0|[1-9][0-9]{0,21}",
            proptest::option::of("[0-9]{1,21}0{0,3}"),
            proptest::option::weighted(0.1, "[eE][+-]?[0-9]{1,2}"),
        )
            .prop_map(|(i, f, e)| {
                let mut t = i;
                if let Some(f) = f {
                    t.push('.');
                    t.push_str(&f);
                }
                t.push_str(&e.unwrap_or_default());
                t
            }),
    ]
}

/// A decimal as a string, in forms valid JSON would not allow too.
fn string_decimal() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "0{0,2}[0-9]{1,21}(\\.[0-9]{0,21})?",
        1 => "0{0,2}\\.[0-9]{1,21}",
    ]
}

/// A price, volume or turnover: as a JSON number or a string, sometimes
/// empty, `null` or absent.
fn decimal_val() -> impl Strategy<Value = Val> {
    prop_oneof![
        5 => number_text().prop_map(Val::Num),
        5 => string_decimal().prop_map(Val::Str),
        1 => Just(Val::Str(String::new())),
        1 => Just(Val::Null),
        1 => Just(Val::Absent),
    ]
}

/// An integer field as a number or a digit string.
fn integer_val(n: impl Strategy<Value = u64>) -> impl Strategy<Value = Val> {
    (n, any::<bool>()).prop_map(|(n, quoted)| {
        if quoted {
            Val::Str(n.to_string())
        } else {
            Val::Num(n.to_string())
        }
    })
}

/// A tick_time in seconds or in milliseconds.
fn tick_time() -> impl Strategy<Value = u64> {
    prop_oneof![
        1_000_000_000u64..100_000_000_000,
        100_000_000_000u64..10_000_000_000_000,
        Just(0u64),
        Just(99_999_999_999u64),
        Just(100_000_000_000u64),
        any::<u64>(),
    ]
}

/// Whitespace in a generated frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spacing {
    None,
    Docs,
    Wide,
}

/// How a generated frame is written.
#[derive(Clone, Debug)]
struct Form {
    /// 0: plain; 1: an escaped character in the code; 2: an escaped `\/`
    /// in an extra member; 3: an escaped key.
    escape: u8,
    /// Seed of the member order; 0 keeps the documented order.
    order: u64,
    /// Whitespace around `:` and `,`: none, a space after each (as the
    /// docs print it), or more.
    spacing: Spacing,
    /// `data` before `cmd_id`.
    data_first: bool,
}

fn form() -> impl Strategy<Value = Form> {
    let spacing = prop_oneof![
        Just(Spacing::None),
        Just(Spacing::Docs),
        Just(Spacing::Wide)
    ];
    let any_form = (0u8..4, any::<u64>(), spacing, any::<bool>()).prop_map(
        |(escape, order, spacing, data_first)| Form {
            escape,
            order,
            spacing,
            data_first,
        },
    );
    // The documented shape, without whitespace or as the docs print it.
    let documented =
        prop_oneof![Just(Spacing::None), Just(Spacing::Docs)].prop_map(|spacing| Form {
            escape: 0,
            order: 0,
            spacing,
            data_first: false,
        });
    prop_oneof![1 => documented, 2 => any_form]
}

/// Write an object from its members in the order `seed` picks (as given
/// for 0).
fn object(mut members: Vec<(String, String)>, seed: u64, spacing: Spacing) -> String {
    let mut s = seed;
    for i in (1..members.len()).rev().filter(|_| seed != 0) {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        members.swap(i, (s >> 33) as usize % (i + 1));
    }
    let (colon, comma) = match spacing {
        Spacing::None => (":", ","),
        Spacing::Docs => (": ", ", "),
        Spacing::Wide => (" : ", " ,\n "),
    };
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("\"{k}\"{colon}{v}"))
        .collect();
    format!("{{{}}}", body.join(comma))
}

/// Escape a code's first character as `\u00XX`.
fn escape_first(code: &str) -> String {
    let first = code.as_bytes()[0];
    format!("\\u{:04x}{}", first, &code[1..])
}

fn frame(cmd_id: u64, data: String, form: &Form) -> String {
    let members = if form.data_first {
        vec![("data".into(), data), ("cmd_id".into(), cmd_id.to_string())]
    } else {
        vec![("cmd_id".into(), cmd_id.to_string()), ("data".into(), data)]
    };
    object(members, 0, form.spacing)
}

/// The header members every push carries, written as `form` says.
fn header(code: &str, seq: &Val, time: &Val, form: &Form) -> Vec<(String, String)> {
    let code = if form.escape == 1 {
        escape_first(code)
    } else {
        code.to_string()
    };
    let seq_key = if form.escape == 3 { "s\\u0065q" } else { "seq" };
    let mut m = vec![
        ("code".to_string(), format!("\"{code}\"")),
        (seq_key.to_string(), seq.json().unwrap()),
        ("tick_time".to_string(), time.json().unwrap()),
    ];
    if form.escape == 2 {
        m.push(("note".into(), "\"a\\/b\"".into()));
    }
    m
}

fn millis(t: u64) -> u64 {
    if t < 100_000_000_000 { t * 1000 } else { t }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn number_or_null(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("null")
}

/// A depth level's JSON text, and the (price, volume) the output must keep
/// from it, `None` when it must be dropped.
type Level = (String, Option<(String, Option<String>)>);

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![
        // A level with any price and volume: kept when both are decimals
        // and the price is positive.
        6 => (decimal_val(), decimal_val(), any::<u64>()).prop_map(|(p, v, seed)| {
            let mut m = Vec::new();
            if let Some(j) = p.json() {
                m.push(("price".to_string(), j));
            }
            if let Some(j) = v.json() {
                m.push(("volume".to_string(), j));
            }
            let kept = match (p.decimal(), v.decimal()) {
                (Some(Some(p)), Some(v)) if positive(&p) => Some((p, v)),
                _ => None,
            };
            (object(m, seed, Spacing::None), kept)
        }),
        // Padding and junk.
        1 => prop::sample::select(vec![
            r#"{"price":"0","volume":"0"}"#, r#"{"price":"","volume":""}"#, r#"{"volume":"5"}"#,
            r#"{"price":"1","volume":"abc"}"#, r#"{"price":"1","volume":-1}"#, r#"{"price":-1}"#,
            r#"{"price":0}"#, r#"{"price":true}"#, r#"null"#, r#"5"#, r#"[]"#, r#"{}"#,
        ])
        .prop_map(|s| (s.to_string(), None)),
    ]
}

proptest! {
    #![proptest_config(config(3000))]

    /// Prices, volumes and turnovers reach stdout with the server's digits
    /// exactly (after the allowed rewrites), as strings or JSON numbers, on
    /// the zero-copy path and the full decoder alike; seq, tick_time and
    /// trade_direction may be strings; tick_time in seconds becomes ms.
    #[test]
    fn trades_keep_their_digits_on_both_paths(
        code in "[A-Z0-9]{1,5}\\.US",
        seq in any::<u64>(),
        seq_quoted in any::<bool>(),
        time in tick_time(),
        time_quoted in any::<bool>(),
        price in decimal_val(),
        volume in decimal_val(),
        turnover in decimal_val(),
        dir in proptest::option::of(integer_val(0u64..4)),
        form in form(),
    ) {
        let int = |n: u64, quoted: bool| if quoted { Val::Str(n.to_string()) } else { Val::Num(n.to_string()) };
        let mut data = header(&code, &int(seq, seq_quoted), &int(time, time_quoted), &form);
        for (k, v) in [("price", &price), ("volume", &volume), ("turnover", &turnover)] {
            if let Some(j) = v.json() {
                data.push((k.into(), j));
            }
        }
        if let Some(d) = &dir {
            data.push(("trade_direction".into(), d.json().unwrap()));
        }
        let text = frame(22998, object(data, form.order, form.spacing), &form);

        let want = match (price.decimal(), volume.decimal(), turnover.decimal()) {
            (Some(Some(p)), Some(v), Some(t)) if positive(&p) => {
                let side = match &dir {
                    Some(Val::Str(d) | Val::Num(d)) if d == "1" => "\"buy\"",
                    Some(Val::Str(d) | Val::Num(d)) if d == "2" => "\"sell\"",
                    _ => "null",
                };
                Some(format!(
                    "{{\"type\":\"trade\",\"symbol\":\"S\",\"code\":{},\"seq\":{seq},\"time\":{},\"price\":{p},\"volume\":{},\"turnover\":{},\"side\":{side}}}\n",
                    json_str(&code), millis(time), number_or_null(&v), number_or_null(&t),
                ))
            }
            _ => None,
        };
        // The documented shape with values that need no rewriting takes the
        // one-pass path.
        let as_is = |v: &Val| match v {
            Val::Null => true,
            Val::Str(t) | Val::Num(t) => {
                v.decimal() == Some(Some(t.clone())) && !t.contains(['e', 'E'])
            }
            Val::Absent => false,
        };
        let documented = form.escape == 0 && form.order == 0 && form.spacing != Spacing::Wide && !form.data_first
            && dir.is_some() && [&price, &volume, &turnover].into_iter().all(as_is)
            && seq.to_string().len() < 20 && time.to_string().len() < 20;
        if documented && want.is_some() {
            prop_assert!(fast::read(&text).is_some(), "{}", text);
        }
        let scanned = matches!(alltick_stream::wire::scan::scan(&text), alltick_stream::wire::scan::Scan::Trade(_));
        prop_assert_eq!(scanned, form.escape == 0, "{}", text);
        let fast = line_via_fast(&text).map(|l| String::from_utf8(l).unwrap());
        let full = line_via_full(&text).map(|l| String::from_utf8(l).unwrap());
        prop_assert_eq!(fast.as_ref().ok(), want.as_ref(), "{}", text);
        prop_assert_eq!(&fast, &full, "{}", text);
    }

    /// Depth levels keep their digits too; padded levels are dropped and
    /// counted, the rest of the book is kept.
    #[test]
    fn depth_keeps_its_digits_and_drops_padded_levels(
        code in "[A-Z0-9]{1,5}\\.HK",
        seq in integer_val(any::<u64>()),
        time in tick_time(),
        time_quoted in any::<bool>(),
        bids in proptest::collection::vec(level(), 0..6),
        asks in proptest::collection::vec(level(), 0..6),
        form in form(),
    ) {
        let time_val = if time_quoted { Val::Str(time.to_string()) } else { Val::Num(time.to_string()) };
        let mut data = header(&code, &seq, &time_val, &form);
        let side = |levels: &[Level]| {
            let texts: Vec<&str> = levels.iter().map(|(t, _)| t.as_str()).collect();
            format!("[{}]", texts.join(","))
        };
        data.push(("bids".into(), side(&bids)));
        data.push(("asks".into(), side(&asks)));
        let text = frame(22999, object(data, form.order, form.spacing), &form);

        let Ok(Incoming::Depth(d)) = protocol::decode(&text) else {
            return Err(TestCaseError::fail(format!("not a depth push: {text}")));
        };
        let kept = |levels: &[Level]| {
            levels
                .iter()
                .filter_map(|(_, k)| k.as_ref())
                .map(|(p, v)| format!("[{p},{}]", number_or_null(v)))
                .collect::<Vec<_>>()
                .join(",")
        };
        let bad = bids.iter().chain(&asks).filter(|(_, k)| k.is_none()).count();
        let (Val::Str(seq) | Val::Num(seq)) = &seq else { unreachable!() };
        let want = format!(
            "{{\"type\":\"depth\",\"symbol\":\"S\",\"code\":{},\"seq\":{seq},\"time\":{},\"bids\":[{}],\"asks\":[{}]}}\n",
            json_str(&code), millis(time), kept(&bids), kept(&asks),
        );
        let mut out = Vec::new();
        alltick_stream::form::json::format_depth(&mut out, "S", &d);
        prop_assert_eq!(String::from_utf8(out).unwrap(), want, "{}", text);
        prop_assert_eq!(d.bad_levels as usize, bad, "{}", text);
    }
}
