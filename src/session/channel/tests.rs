//! Unit tests of the subscription channels.

use super::*;

fn syms(list: &[&str]) -> Vec<Symbol> {
    list.iter().map(|s| Symbol::parse(s).unwrap()).collect()
}

fn codes(list: &[&str]) -> Vec<Code> {
    list.iter().map(|s| Code::from(*s)).collect()
}

/// Send what is pending; returns the codes carried.
fn send(f: &mut Channel) -> Option<Vec<Code>> {
    if !f.pending() {
        return None;
    }
    f.take_request(1).map(|(_, c)| c)
}

fn connected(kind: FeedKind, list: &[&str]) -> Channel {
    let mut f = Channel::new(kind);
    f.add(&syms(list));
    f.on_connect();
    f
}

#[test]
fn sends_the_full_set_after_every_change_and_nothing_when_unchanged() {
    let mut f = connected(FeedKind::Trades, &["NASDAQ:AAPL", "NASDAQ:TSLA"]);
    assert_eq!(send(&mut f), Some(codes(&["AAPL.US", "TSLA.US"])));
    assert_eq!(send(&mut f), None, "sent once");
    f.add(&syms(&["NYSE:IBM"]));
    f.remove(&syms(&["NASDAQ:TSLA"]));
    assert_eq!(send(&mut f), Some(codes(&["AAPL.US", "IBM.US"])));
    // Adding what is there changes nothing.
    f.add(&syms(&["AAPL.US"]));
    assert_eq!(send(&mut f), None);
}

#[test]
fn changes_made_before_sending_coalesce_into_one_request() {
    let mut f = connected(FeedKind::Trades, &[]);
    assert!(
        !f.pending(),
        "an empty set on a fresh connection sends nothing"
    );
    for s in ["+A.US", "+B.US", "+C.US"] {
        f.add(&syms(&[&s[1..]]));
    }
    f.remove(&syms(&["B.US"]));
    assert_eq!(send(&mut f), Some(codes(&["A.US", "C.US"])));
}

#[test]
fn an_emptied_set_is_a_cancel_of_its_own_kind() {
    let mut f = connected(FeedKind::Depth, &["HKEX:700@depth=5"]);
    let (text, _) = {
        assert!(f.pending());
        f.take_request(3).unwrap()
    };
    assert!(text.contains("\"cmd_id\":22002") && text.contains("\"depth_level\":5"));
    f.remove(&syms(&["700.HK@depth"]));
    assert!(f.pending());
    let (text, carried) = f.take_request(4).unwrap();
    assert!(carried.is_empty());
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["cmd_id"], 22006);
    assert_eq!(v["data"]["cancel_type"], 1);
    let mut t = connected(FeedKind::Trades, &["AAPL.US"]);
    send(&mut t);
    t.remove(&syms(&["AAPL.US"]));
    let (text, _) = {
        assert!(t.pending());
        t.take_request(5).unwrap()
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["data"]["cancel_type"], 2);
}

#[test]
fn a_reconnect_resends_the_whole_set() {
    let mut f = connected(FeedKind::Trades, &["AAPL.US", "TSLA.US"]);
    let sent = send(&mut f).unwrap();
    f.on_answer(Ret::from_code(200), "ok", sent, None);
    assert_eq!(f.server_set(), codes(&["AAPL.US", "TSLA.US"]));
    f.on_disconnect();
    assert!(f.server_set().is_empty());
    f.on_connect();
    assert_eq!(send(&mut f), Some(codes(&["AAPL.US", "TSLA.US"])));
}

#[test]
fn rate_limits_resend_the_full_set_later() {
    for ret in [429, 605] {
        let mut f = connected(FeedKind::Trades, &["AAPL.US"]);
        let sent = send(&mut f).unwrap();
        let r = f.on_answer(Ret::from_code(ret), "", sent, None);
        assert_eq!(r.act, Act::ResendAfter(protocol::RATE_LIMIT_RETRY));
        assert!(
            r.notes[0].contains("resending the full set"),
            "{:?}",
            r.notes
        );
        // The caller resends when told; the same set goes out again.
        f.resend();
        assert_eq!(send(&mut f), Some(codes(&["AAPL.US"])));
    }
}

#[test]
fn ret_606_reconnects_after_at_least_3_s_and_401_is_fatal() {
    let mut f = connected(FeedKind::Depth, &["700.HK@depth"]);
    let sent = send(&mut f).unwrap();
    match f.on_answer(Ret::from_code(606), "", sent.clone(), None).act {
        Act::Reconnect { min_wait, .. } => assert!(min_wait >= Duration::from_secs(3)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        f.on_answer(Ret::from_code(401), "", sent, None).act,
        Act::Fatal(_)
    ));
}

#[test]
fn ret_603_names_the_count_and_the_docs_rule_and_does_not_loop() {
    let mut f = connected(FeedKind::Trades, &["A.US", "B.US", "C.US"]);
    let sent = send(&mut f).unwrap();
    let r = f.on_answer(Ret::from_code(603), "token level not enough", sent, Some(2));
    assert_eq!(r.act, Act::Nothing);
    let note = &r.notes[0];
    assert!(note.contains("3 codes sent"), "{note}");
    assert!(note.contains("--max-symbols says 2"), "{note}");
    assert!(note.contains("first N codes"), "{note}");
    assert_eq!(send(&mut f), None, "the same set is not resent");
    f.remove(&syms(&["C.US"]));
    assert_eq!(send(&mut f), Some(codes(&["A.US", "B.US"])));
}

/// 600/604 narrowing, for both kinds: one new suspect is dropped at
/// once; several are tried one at a time on top of the known-good set.
#[test]
fn a_refusal_is_narrowed_to_the_bad_codes_for_both_kinds() {
    for kind in [FeedKind::Trades, FeedKind::Depth] {
        let sfx = if kind == FeedKind::Depth {
            "@depth"
        } else {
            ""
        };
        let s = |c: &str| format!("{c}{sfx}");
        let mut f = Channel::new(kind);
        f.add(&syms(&[&s("GOOD.US")]));
        f.on_connect();
        let sent = send(&mut f).unwrap();
        f.on_answer(Ret::from_code(200), "ok", sent, None);
        // One new code, refused: dropped and named.
        f.add(&syms(&[&s("BAD.US")]));
        let sent = send(&mut f).unwrap();
        let r = f.on_answer(Ret::from_code(600), "", sent, None);
        assert!(
            r.notes[0].contains("BAD.US") && r.notes[0].contains("dropped it"),
            "{kind:?}: {:?}",
            r.notes
        );
        assert_eq!(f.codes(), codes(&["GOOD.US"]));
        assert_eq!(send(&mut f), None, "{kind:?}: back to the acknowledged set");
        // A later change goes through: one bad code does not block it.
        f.add(&syms(&[&s("NEW.US")]));
        assert_eq!(send(&mut f), Some(codes(&["GOOD.US", "NEW.US"])));
        f.on_answer(
            Ret::from_code(200),
            "ok",
            codes(&["GOOD.US", "NEW.US"]),
            None,
        );
        // Two new codes refused together: tried one at a time.
        f.add(&syms(&[&s("X.US"), &s("Y.US")]));
        let sent = send(&mut f).unwrap();
        let r = f.on_answer(Ret::from_code(604), "", sent, None);
        assert!(r.notes[0].contains("one at a time"), "{:?}", r.notes);
        assert_eq!(send(&mut f), Some(codes(&["GOOD.US", "NEW.US", "X.US"])));
        let r = f.on_answer(
            Ret::from_code(604),
            "",
            codes(&["GOOD.US", "NEW.US", "X.US"]),
            None,
        );
        assert!(r.notes[0].contains("X.US") && r.notes[0].contains("dropped"));
        assert_eq!(send(&mut f), Some(codes(&["GOOD.US", "NEW.US", "Y.US"])));
        f.on_answer(
            Ret::from_code(200),
            "ok",
            codes(&["GOOD.US", "NEW.US", "Y.US"]),
            None,
        );
        assert_eq!(f.codes(), codes(&["GOOD.US", "NEW.US", "Y.US"]));
        assert_eq!(send(&mut f), None, "{kind:?}: settled");
    }
}

#[test]
fn a_refusal_of_only_known_good_codes_waits_for_a_change() {
    let mut f = connected(FeedKind::Trades, &["A.US"]);
    let sent = send(&mut f).unwrap();
    f.on_answer(Ret::from_code(200), "ok", sent.clone(), None);
    f.on_connect();
    let sent = send(&mut f).unwrap();
    let r = f.on_answer(Ret::from_code(604), "", sent, None);
    assert!(r.notes[0].contains("accepted before"), "{:?}", r.notes);
    assert_eq!(send(&mut f), None);
}

#[test]
fn acknowledgements_say_what_changed() {
    let mut f = connected(FeedKind::Trades, &["NASDAQ:AAPL", "NASDAQ:TSLA"]);
    let sent = send(&mut f).unwrap();
    let r = f.on_answer(Ret::from_code(200), "ok", sent, None);
    assert_eq!(
        r.notes,
        vec!["subscribed to 2 symbols (+NASDAQ:AAPL +NASDAQ:TSLA)"]
    );
    f.remove(&syms(&["TSLA.US"]));
    let sent = send(&mut f).unwrap();
    let r = f.on_answer(Ret::from_code(200), "ok", sent, None);
    assert_eq!(r.notes, vec!["subscribed to 1 symbol (-NASDAQ:TSLA)"]);
    let mut d = connected(FeedKind::Depth, &["HKEX:700@depth"]);
    let sent = send(&mut d).unwrap();
    let r = d.on_answer(Ret::from_code(200), "ok", sent, None);
    assert_eq!(
        r.notes,
        vec!["depth: subscribed to 1 symbol (+HKEX:700@depth)"]
    );
}

#[test]
fn feeds_route_symbols_by_kind_and_trades_go_first() {
    let mut f = Channels::new(&syms(&["NASDAQ:AAPL", "HKEX:700@depth"]));
    assert_eq!(f.trades.codes(), codes(&["AAPL.US"]));
    assert_eq!(f.depth.codes(), codes(&["700.HK"]));
    f.on_connect();
    assert_eq!(f.next_pending(), Some(FeedKind::Trades));
    f.trades.take_request(1);
    assert_eq!(f.next_pending(), Some(FeedKind::Depth));
    f.depth.take_request(2);
    assert_eq!(f.next_pending(), None);
    let c = f.change(false, &syms(&["HKEX:700@depth", "NYSE:IBM"]));
    assert_eq!(c.applied, vec!["HKEX:700@depth"]);
    assert_eq!(c.unchanged, vec!["NYSE:IBM"]);
    assert_eq!(f.next_pending(), Some(FeedKind::Depth));
    f.resend_all();
    assert_eq!(f.next_pending(), Some(FeedKind::Trades));
}

#[test]
fn a_new_level_for_a_depth_code_is_a_change() {
    let mut f = connected(FeedKind::Depth, &["HKEX:700@depth=5"]);
    send(&mut f);
    let c = f.add(&syms(&["HKEX:700@depth=10"]));
    assert_eq!(c.applied, vec!["HKEX:700"]);
    assert!(f.pending());
    let (text, _) = f.take_request(9).unwrap();
    assert!(text.contains("\"depth_level\":10"), "{text}");
}
