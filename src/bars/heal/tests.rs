use super::*;

const M: u64 = 60_000;
/// A minute boundary.
const T0: u64 = 1_796_166_000_000;

fn minute() -> Interval {
    Interval::parse("1m").unwrap()
}

fn bar(code: &str, start: u64) -> Bar {
    let p: Box<[u8]> = Box::from(&b"1.50"[..]);
    Bar {
        symbol: Arc::from(format!("X:{code}")),
        code: Arc::from(code),
        interval: minute(),
        start,
        end: start + M,
        open: p.clone(),
        high: p.clone(),
        low: p.clone(),
        close: p,
        volume: None,
        turnover: None,
        trades: 1,
    }
}

fn kline(start: u64) -> KlineBar {
    KlineBar {
        start,
        end: start + M,
        values: ["2", "3", "1", "2", "10", "20"].map(String::from),
    }
}

fn gap(conn: &str, codes: &[&str], from: u64, to: u64) -> Gap {
    Gap {
        connection: Some(Arc::from(conn)),
        codes: codes.iter().map(|c| c.to_string()).collect(),
        from,
        to,
        reason: "connection lost: reset".into(),
        dropped: None,
        heal: None,
    }
}

fn healer() -> Healer {
    Healer::new(minute(), 2_000, Some(60_000), 1_000)
}

/// The starts of released bars (b), K-lines (k) and gaps (g), in order.
fn kinds(out: &[Release]) -> Vec<(char, u64)> {
    out.iter()
        .map(|r| match r {
            Release::Bar(b) => ('b', b.start),
            Release::Kline { bar, .. } => ('k', bar.start),
            Release::Gap(g) => ('g', g.from),
        })
        .collect()
}

#[test]
fn an_outage_holds_its_bars_and_k_lines_replace_them_once() {
    let mut h = healer();
    h.trade("A.US", T0 + 30_000, 0);
    // A bar of another code and a bar that ended before the outage go out.
    h.outage(
        Some(Arc::from("c#1")),
        Some(vec!["A.US".into()]),
        T0 + 30_000,
    );
    assert!(h.closed(bar("B.US", T0)).is_some());
    assert!(h.closed(bar("A.US", T0 - M)).is_some());
    // The bar holding the outage's start is held.
    assert!(h.closed(bar("A.US", T0)).is_none());
    h.gap(
        gap("c#1", &["A.US"], 0, 0),
        T0 + 30_000,
        T0 + 3 * M + 5_000,
        false,
    );
    // The first trade after the gap fixes its end: bars T0 … T0+3M.
    h.trade("A.US", T0 + 3 * M + 10_000, 0);
    let (asked, out) = h.tick(T0 + 3 * M + 30_000, 0);
    assert!(asked.is_empty() && out.is_empty(), "not over yet");
    assert!(
        h.closed(bar("A.US", T0 + 3 * M)).is_none(),
        "its last bar is held"
    );
    assert!(
        h.closed(bar("A.US", T0 + 4 * M)).is_some(),
        "after it: written"
    );
    let (asked, out) = h.tick(T0 + 4 * M + 2_000, 0);
    assert!(out.is_empty(), "{:?}", kinds(&out));
    assert_eq!(asked.len(), 1);
    let r = &asked[0];
    assert_eq!((&*r.code, r.first, r.last), ("A.US", T0, T0 + 3 * M));
    // The server has T0, T0+1M and T0+3M (nothing traded at T0+2M).
    let out = h.answer(Answer {
        id: r.id,
        outcome: Outcome::Klines {
            bars: vec![
                kline(T0 + 3 * M),
                kline(T0),
                kline(T0 + M),
                kline(T0 + 9 * M),
            ],
            from: T0,
        },
    });
    assert_eq!(
        kinds(&out),
        vec![('k', T0), ('k', T0 + M), ('k', T0 + 3 * M), ('g', 0)]
    );
    let Release::Gap(g) = &out[3] else { panic!() };
    let note = g.heal.as_ref().unwrap();
    assert!(note.healed, "{note:?}");
    assert_eq!(h.held(), 0);
    // A second answer to the same request changes nothing.
    assert!(
        h.answer(Answer {
            id: r.id,
            outcome: Outcome::GaveUp("x".into())
        })
        .is_empty()
    );
}

#[test]
fn given_up_bars_go_out_as_built_and_the_gap_says_so() {
    let mut h = healer();
    h.outage(Some(Arc::from("c#1")), None, T0 + 10_000);
    assert!(h.closed(bar("A.US", T0)).is_none());
    h.gap(gap("c#1", &["A.US"], 0, 0), T0 + 10_000, T0 + 20_000, false);
    h.trade("A.US", T0 + M + 1_000, 0);
    let (asked, _) = h.tick(T0 + 2 * M + 2_000, 5_000);
    assert_eq!(asked.len(), 1);
    let out = h.answer(Answer {
        id: asked[0].id,
        outcome: Outcome::GaveUp("HTTP 401: the token was refused".into()),
    });
    assert_eq!(kinds(&out), vec![('b', T0), ('g', 0)]);
    let Release::Gap(g) = &out[1] else { panic!() };
    let note = g.heal.as_ref().unwrap();
    assert!(!note.healed);
    assert!(note.note.contains("401"), "{note:?}");
}

#[test]
fn a_gap_not_answered_within_its_wait_is_given_up() {
    let mut h = healer();
    h.outage(Some(Arc::from("c#1")), None, T0 + 10_000);
    assert!(h.closed(bar("A.US", T0)).is_none());
    h.gap(gap("c#1", &["A.US"], 0, 0), T0 + 10_000, T0 + 20_000, false);
    h.trade("A.US", T0 + 20_000, 0);
    let (asked, _) = h.tick(T0 + M + 2_000, 1_000);
    assert_eq!(asked.len(), 1);
    let (_, out) = h.tick(T0 + M + 3_000, 60_999);
    assert!(out.is_empty(), "before the wait");
    let (_, out) = h.tick(T0 + M + 3_000, 61_000);
    assert_eq!(kinds(&out), vec![('b', T0), ('g', 0)]);
    // A late answer is ignored: the bar is out once.
    let late = h.answer(Answer {
        id: asked[0].id,
        outcome: Outcome::Klines {
            bars: vec![kline(T0)],
            from: T0,
        },
    });
    assert!(late.is_empty());
}

#[test]
fn what_the_server_no_longer_has_is_left_and_said() {
    let mut h = healer();
    h.gap(gap("c#1", &["A.US"], 0, 0), T0, T0 + 3 * M, false);
    h.trade("A.US", T0 + 3 * M, 0);
    let (asked, _) = h.tick(T0 + 4 * M + 2_000, 0);
    let out = h.answer(Answer {
        id: asked[0].id,
        outcome: Outcome::Klines {
            bars: vec![kline(T0), kline(T0 + 2 * M)],
            from: T0 + 2 * M,
        },
    });
    // T0 is before what the answer settles: not written from it.
    assert_eq!(kinds(&out), vec![('k', T0 + 2 * M), ('g', 0)]);
    let Release::Gap(g) = &out[1] else { panic!() };
    let note = g.heal.as_ref().unwrap();
    assert!(!note.healed);
    assert!(note.note.contains("no longer has"), "{note:?}");
}

#[test]
fn bars_written_before_the_gap_was_known_are_not_written_again() {
    let mut h = healer();
    assert!(h.closed(bar("A.US", T0)).is_some());
    h.gap(
        gap("q#1", &["A.US"], 0, 0),
        T0 + 5_000,
        T0 + M + 5_000,
        false,
    );
    h.trade("A.US", T0 + M + 6_000, 0);
    let (asked, _) = h.tick(T0 + 2 * M + 2_000, 0);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].first, T0 + M, "T0 is written already");
}

#[test]
fn long_spans_are_asked_in_parts_and_a_stop_releases_everything() {
    let mut h = healer();
    h.outage(None, None, T0);
    assert!(h.closed(bar("A.US", T0)).is_none());
    h.gap(gap("c#1", &["A.US"], 0, 0), T0, T0 + 1000 * M, false);
    h.trade("A.US", T0 + 1000 * M, 0);
    let (asked, _) = h.tick(T0 + 1001 * M + 2_000, 0);
    assert_eq!(asked.len(), 3);
    assert_eq!(asked[0].last - asked[0].first, (MAX_BARS - 1) * M);
    assert_eq!(asked[2].last, T0 + 1000 * M);
    let out = h.stop();
    assert_eq!(kinds(&out), vec![('b', T0), ('g', 0)]);
    let Release::Gap(g) = &out[1] else { panic!() };
    assert!(!g.heal.as_ref().unwrap().healed);
}

#[test]
fn trades_that_come_before_their_gap_still_end_it() {
    let mut h = healer();
    h.outage(
        Some(Arc::from("c#1")),
        Some(vec!["A.US".into()]),
        T0 + 1_000,
    );
    // Back: trades come before the acknowledgement's gap.
    h.trade("A.US", T0 + 5 * M + 1_000, 0);
    h.trade("A.US", T0 + 5 * M + 2_000, 0);
    h.gap(gap("c#1", &["A.US"], 0, 0), T0 + 1_000, T0 + 2_000, false);
    let (asked, _) = h.tick(T0 + 6 * M + 2_000, 0);
    assert_eq!((asked[0].first, asked[0].last), (T0, T0 + 5 * M));
}

#[test]
fn a_restart_ends_each_connections_gap_at_its_codes_first_trade() {
    let mut h = healer();
    h.restart(T0 + 1_000, 0, 120_000);
    assert!(
        h.closed(bar("A.US", T0)).is_none(),
        "held until the gaps come"
    );
    h.trade("A.US", T0 + 4 * M + 1_000, 10);
    h.trade("B", T0 + 4 * M + 3_000, 20);
    h.gap(gap("s#1", &["A.US"], 0, 0), T0 + 1_000, 0, true);
    h.gap(gap("f#1", &["B"], 0, 0), T0 + 1_000, 0, true);
    let (asked, _) = h.tick(T0 + 5 * M + 2_000, 30);
    let spans: Vec<(&str, u64, u64)> = asked.iter().map(|r| (&*r.code, r.first, r.last)).collect();
    assert_eq!(spans, vec![("A.US", T0, T0 + 4 * M), ("B", T0, T0 + 4 * M)]);
    // After the window, the restart's outage is over and trades are not
    // kept: a restart's gap without a trade of its codes ends where the
    // clock is then.
    let _ = h.tick(T0 + 6 * M, 120_000);
    h.trade("C", T0 + 9 * M, 120_000);
    h.gap(gap("x#1", &["C"], 0, 0), T0 + 8 * M, T0 + 8 * M, true);
    let (asked, _) = h.tick(T0 + 20 * M, 120_001);
    assert!(asked.is_empty(), "{asked:?}");
    let (asked, _) = h.tick(T0 + 21 * M + 2_000, 120_002);
    let spans: Vec<(&str, u64, u64)> = asked.iter().map(|r| (&*r.code, r.first, r.last)).collect();
    assert_eq!(spans, vec![("C", T0 + 8 * M, T0 + 20 * M)]);
}
