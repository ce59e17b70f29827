//! Unit tests of the protocol module.

use super::*;
use crate::wire::scan::{Scan, scan};

#[test]
fn encodes_requests() {
    let v: Value = serde_json::from_str(&heartbeat(7, "t7")).unwrap();
    assert_eq!(v, json!({"cmd_id":22000,"seq_id":7,"trace":"t7","data":{}}));
    let v: Value =
        serde_json::from_str(&subscribe_trades(8, "t8", ["AAPL.US", "TSLA.US"])).unwrap();
    assert_eq!(
        v["data"],
        json!({"symbol_list":[{"code":"AAPL.US"},{"code":"TSLA.US"}]})
    );
    assert_eq!(v["cmd_id"], 22004);
    let v: Value = serde_json::from_str(&cancel(9, "t9", CancelType::Trades)).unwrap();
    assert_eq!(v["data"], json!({"cancel_type": 2}));
}

#[test]
fn pushes_are_told_from_their_first_key() {
    assert_eq!(push_kind(r#"{"cmd_id":22998,"data":{}}"#), Some(CMD_TRADE));
    assert_eq!(push_kind(r#"{"cmd_id":22999,"data":{}}"#), Some(CMD_DEPTH));
    assert_eq!(push_kind(r#"{"cmd_id": 22998,"data":{}}"#), Some(CMD_TRADE));
    assert_eq!(
        push_kind(" {\n \"cmd_id\" : 22999 , \"data\":{}}"),
        Some(CMD_DEPTH)
    );
    for other in [
        r#"{"cmd_id":22005,"ret":200}"#,
        r#"{"ret":200,"cmd_id":22998}"#,
        r#"{"cmd_id":229980,"data":{}}"#,
        r#"{"cmd_id":"22998"}"#,
        r#"{"data":{},"cmd_id":22998}"#,
        r#"{"cmd_id":22998"#,
        "",
        "[]",
    ] {
        assert_eq!(push_kind(other), None, "{other}");
    }
}

#[test]
fn decodes_a_trade() {
    let t = decode(r#"{"cmd_id":22998,"data":{"code":"AAPL.US","seq":1605509068000001,"tick_time":1605509068000,"price":"651.10","volume":"300","turnover":"12345.6","trade_direction":1}}"#).unwrap();
    assert_eq!(
        t,
        Incoming::Trade(Trade {
            code: "AAPL.US".into(),
            seq: 1605509068000001,
            time: 1605509068000,
            price: "651.10".into(),
            volume: Some("300".into()),
            turnover: Some("12345.6".into()),
            side: Some(Side::Buy),
        })
    );
}

#[test]
fn refuses_bad_trades_with_a_reason() {
    let bad = |data: &str| decode(&format!(r#"{{"cmd_id":22998,"data":{data}}}"#)).unwrap();
    let base = r#""seq":1,"tick_time":2,"volume":"1""#;
    for (data, why) in [
        (format!(r#"{{{base},"price":"1"}}"#), "missing code"),
        (
            format!(r#"{{"code":"A",{base},"price":"0"}}"#),
            "price is not a positive decimal",
        ),
        (
            format!(r#"{{"code":"A",{base},"price":"-1"}}"#),
            "price is not a positive decimal",
        ),
        (
            format!(r#"{{"code":"A",{base},"price":"abc"}}"#),
            "price is not a positive decimal",
        ),
        (
            r#"{"code":"A","tick_time":2,"price":"1"}"#.to_string(),
            "missing or bad seq",
        ),
    ] {
        assert_eq!(bad(&data), Incoming::BadTrade(why), "{data}");
    }
}

#[test]
fn encodes_depth_subscriptions_and_decodes_depth_pushes() {
    let v: Value = serde_json::from_str(&subscribe_depth(
        3,
        "d3",
        [("700.HK", Some(5)), ("EURUSD", None)],
    ))
    .unwrap();
    assert_eq!(v["cmd_id"], 22002);
    assert_eq!(
        v["data"],
        json!({"symbol_list":[{"code":"700.HK","depth_level":5},{"code":"EURUSD"}]})
    );
    let d = decode(r#"{"cmd_id":22999,"data":{"code":"EURUSD","seq":9,"tick_time":1605509068005,"bids":[{"price":"1.0850"}],"asks":[]}}"#).unwrap();
    assert_eq!(
        d,
        Incoming::Depth(Depth {
            code: "EURUSD".into(),
            seq: 9,
            time: 1605509068005,
            bids: vec![("1.0850".into(), None)],
            asks: vec![],
            bad_levels: 0,
        })
    );
    for data in [
        r#"{"seq":1,"tick_time":1,"bids":[]}"#,
        r#"{"code":"A","seq":"x","tick_time":1,"bids":[]}"#,
        r#"{"code":"A","seq":1,"tick_time":-1,"bids":[]}"#,
        r#"{"code":"A","seq":1,"tick_time":1,"bids":{"price":"1"}}"#,
        r#"{"code":"A","seq":1,"tick_time":1,"asks":"1"}"#,
    ] {
        let bad = decode(&format!(r#"{{"cmd_id":22999,"data":{data}}}"#)).unwrap();
        assert!(matches!(bad, Incoming::BadDepth(_)), "{data}");
    }
}

#[test]
fn drops_padded_depth_levels_and_keeps_the_book() {
    let d = decode(
        r#"{"cmd_id":22999,"data":{"code":"700.HK","seq":"12","tick_time":"1605509068","bids":[
            {"price":"320.40","volume":"1200"},
            {"price":"0","volume":"0"},
            {"price":"","volume":""},
            {"volume":"5"},
            {"price":"320.00"},
            {"price":"319.80","volume":""},
            {"price":"319.60","volume":"abc"},
            {"price":-1,"volume":1},
            null
        ],"asks":[
            {"price":320.60,"volume":0},
            {"price":"0.000","volume":"100"},
            {"price":"321.00","volume":"0"},
            {"price":".5","volume":"007"}
        ]}}"#,
    )
    .unwrap();
    let Incoming::Depth(d) = d else {
        panic!("not a depth push: {d:?}")
    };
    let level = |p: &str, v: Option<&str>| (p.to_string(), v.map(str::to_string));
    assert_eq!(d.seq, 12);
    assert_eq!(d.time, 1_605_509_068_000);
    assert_eq!(
        d.bids,
        vec![
            level("320.40", Some("1200")),
            level("320.00", None),
            level("319.80", None),
        ]
    );
    assert_eq!(
        d.asks,
        vec![
            level("320.60", Some("0")),
            level("321.00", Some("0")),
            level("0.5", Some("7")),
        ]
    );
    assert_eq!(d.bad_levels, 7);
    // Nothing but padding: an empty book, every level counted.
    let d = decode(r#"{"cmd_id":22999,"data":{"code":"A","seq":1,"tick_time":1,"bids":[{"price":"0","volume":"1"}]}}"#).unwrap();
    let Incoming::Depth(d) = d else {
        panic!("not a depth push: {d:?}")
    };
    assert!(d.bids.is_empty() && d.asks.is_empty());
    assert_eq!(d.bad_levels, 1);
}

#[test]
fn tick_time_in_seconds_becomes_milliseconds() {
    assert_eq!(to_millis(1_605_509_068), 1_605_509_068_000);
    assert_eq!(to_millis(99_999_999_999), 99_999_999_999_000);
    assert_eq!(to_millis(100_000_000_000), 100_000_000_000);
    assert_eq!(to_millis(1_605_509_068_000), 1_605_509_068_000);
    assert_eq!(to_millis(0), 0);
    let trade = |tick_time: &str| {
        let text = format!(
            r#"{{"cmd_id":22998,"data":{{"code":"A","seq":1,"tick_time":{tick_time},"price":"1"}}}}"#
        );
        let Ok(Incoming::Trade(t)) = decode(&text) else {
            panic!("{text}")
        };
        let Scan::Trade(raw) = scan(&text) else {
            panic!("not scanned: {text}")
        };
        assert_eq!(validate(&raw).unwrap().time, t.time, "{text}");
        t.time
    };
    assert_eq!(trade("1605509068"), 1_605_509_068_000);
    assert_eq!(trade(r#""1605509068""#), 1_605_509_068_000);
    assert_eq!(trade("1605509068123"), 1_605_509_068_123);
    assert_eq!(trade(r#""1605509068123""#), 1_605_509_068_123);
}

#[test]
fn integers_may_come_as_strings() {
    let text = r#"{"cmd_id":22998,"data":{"code":"AAPL.US","seq":"30841439","tick_time":"1605509068000","price":"651.10","trade_direction":"2"}}"#;
    let want = Trade {
        code: "AAPL.US".into(),
        seq: 30841439,
        time: 1605509068000,
        price: "651.10".into(),
        volume: None,
        turnover: None,
        side: Some(Side::Sell),
    };
    assert_eq!(decode(text).unwrap(), Incoming::Trade(want.clone()));
    let Scan::Trade(raw) = scan(text) else {
        panic!("not scanned")
    };
    assert_eq!(validate(&raw).unwrap().to_owned_trade(), want);
    // The full decoder, forced by an escape, reads them the same way.
    let escaped = text.replace("AAPL.US", r"AAPL\u002eUS");
    assert_eq!(scan(&escaped), Scan::Other);
    assert_eq!(decode(&escaped).unwrap(), Incoming::Trade(want));
}

#[test]
fn json_numbers_keep_their_digits_through_the_full_decoder() {
    // An escape in the code keeps the scanner out: this is the full decoder.
    let text = r#"{"cmd_id":22998,"data":{"code":"AAPL\u002eUS","seq":1,"tick_time":1605509068000,"price":651.10,"volume":100.000,"turnover":123456789012.123456789}}"#;
    assert_eq!(scan(text), Scan::Other);
    let Incoming::Trade(t) = decode(text).unwrap() else {
        panic!("not a trade")
    };
    assert_eq!(t.code, "AAPL.US");
    assert_eq!(t.price, "651.10");
    assert_eq!(t.volume.as_deref(), Some("100.000"));
    assert_eq!(t.turnover.as_deref(), Some("123456789012.123456789"));
    // Twenty significant digits and an exponent, unrounded.
    let text = r#"{"data":{"price":12345678901234567890.5,"volume":1.50E-3,"code":"A","seq":2,"tick_time":3},"cmd_id":22998}"#;
    let Incoming::Trade(t) = decode(text).unwrap() else {
        panic!("not a trade")
    };
    assert_eq!(t.price, "12345678901234567890.5");
    assert_eq!(t.volume.as_deref(), Some("1.50E-3"));
    // Depth levels as JSON numbers, likewise.
    let text = r#"{"cmd_id":22999,"data":{"code":"A","seq":1,"tick_time":1,"bids":[{"price":651.10,"volume":100.000}],"asks":[{"price":12345678901234567890.12345678901234567890,"volume":300}]}}"#;
    let Incoming::Depth(d) = decode(text).unwrap() else {
        panic!("not a depth push")
    };
    assert_eq!(d.bids, vec![("651.10".into(), Some("100.000".into()))]);
    assert_eq!(
        d.asks,
        vec![(
            "12345678901234567890.12345678901234567890".into(),
            Some("300".into())
        )]
    );
    assert_eq!(d.bad_levels, 0);
    // Integers read through the same numbers still work.
    assert_eq!(
        decode(r#"{"ret":429,"cmd_id":22005,"seq_id":18446744073709551615}"#).unwrap(),
        Incoming::Response(Response {
            cmd_id: 22005,
            ret: Ret::RateLimit,
            msg: String::new(),
            seq_id: Some(u64::MAX),
        })
    );
    assert!(matches!(
        decode(r#"{"ret":-1,"cmd_id":22001}"#).unwrap(),
        Incoming::Response(Response {
            ret: Ret::Unknown(-1),
            ..
        })
    ));
}

#[test]
fn decodes_responses_and_ignores_unknown() {
    let r = decode(
        r#"{"ret":401,"msg":"token invalid","cmd_id":22001,"seq_id":3,"trace":"x","data":{}}"#,
    )
    .unwrap();
    assert_eq!(
        r,
        Incoming::Response(Response {
            cmd_id: 22001,
            ret: Ret::TokenInvalid,
            msg: "token invalid".into(),
            seq_id: Some(3)
        })
    );
    assert_eq!(
        decode(r#"{"cmd_id":12345,"data":{}}"#).unwrap(),
        Incoming::Other {
            cmd_id: Some(12345)
        }
    );
    assert!(decode("not json").is_err());
    assert!(decode("[1,2]").is_err());
}
