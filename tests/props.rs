//! Property tests over everything that parses outside input: the stdin
//! grammar, the symbol parser and the message decoder. None may panic, and
//! what they accept must be safe to put on the wire and on stdout.

use alltick_stream::command::{LineEvent, MAX_LINE, parse_line, read_commands};
use alltick_stream::decimal;
use alltick_stream::protocol::{self, Incoming};
use alltick_stream::symbol::{MAX_SYMBOL_LEN, Symbol};
use proptest::prelude::*;

fn code_is_safe(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_SYMBOL_LEN + 3
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn symbol_parser_never_panics_and_accepts_only_safe_codes(s in "\\PC{0,40}") {
        if let Ok(sym) = Symbol::parse(&s) {
            prop_assert!(code_is_safe(&sym.code), "{:?} -> {:?}", s, sym.code);
            prop_assert!(s.starts_with(&sym.spelling));
        }
    }

    #[test]
    fn symbol_parser_on_symbol_like_input(s in "[A-Za-z]{0,8}:?[A-Za-z0-9._-]{0,12}") {
        if let Ok(sym) = Symbol::parse(&s) {
            prop_assert!(code_is_safe(&sym.code));
            // The request built from it is valid JSON carrying the code exactly.
            let req = protocol::subscribe_trades(1, "t", [sym.code.as_str()]);
            let v: serde_json::Value = serde_json::from_str(&req).unwrap();
            prop_assert_eq!(v["data"]["symbol_list"][0]["code"].as_str(), Some(sym.code.as_str()));
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
                    alltick_stream::command::Command::Add(v) | alltick_stream::command::Command::Remove(v) => v,
                    alltick_stream::command::Command::Query => Vec::new(),
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

/// Format a frame's trade the way the session does: the zero-copy scanner
/// first, the full decoder when it steps aside.
fn line_via_fast(text: &str) -> Result<Vec<u8>, String> {
    use alltick_stream::scan::{Scan, scan};
    match scan(text) {
        Scan::Trade(raw) => {
            let t = protocol::validate(&raw).map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            alltick_stream::output::format_trade(&mut out, "S", &t);
            Ok(out)
        }
        Scan::Other => line_via_full(text),
    }
}

fn line_via_full(text: &str) -> Result<Vec<u8>, String> {
    match protocol::decode(text) {
        Ok(Incoming::Trade(t)) => {
            let mut out = Vec::new();
            alltick_stream::output::format_trade(&mut out, "S", &t.view());
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
    #![proptest_config(ProptestConfig::with_cases(3000))]

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
