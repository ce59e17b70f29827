//! The aggregator's rules one by one, then against a naive aggregation
//! over random trades.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

mod late;

/// 2026-12-01 23:09:00 UTC, the start of a minute.
const S: u64 = 1_796_166_540_000;
const MIN: u64 = 60_000;

fn minute() -> Interval {
    Interval::parse("1m").unwrap()
}

fn t<'a>(code: &'a str, time: u64, price: &'a str) -> Trade<'a> {
    Trade {
        symbol: code,
        code,
        time,
        price: price.as_bytes(),
        volume: None,
        turnover: None,
    }
}

fn with_volume<'a>(trade: Trade<'a>, volume: &'a str) -> Trade<'a> {
    Trade {
        volume: Some(volume.as_bytes()),
        ..trade
    }
}

fn all(bars: &mut Bars) -> Vec<Bar> {
    let mut out = Vec::new();
    bars.close_all(&mut |b| out.push(b));
    out
}

fn due(bars: &mut Bars, clock: u64) -> Vec<Bar> {
    let mut out = Vec::new();
    bars.close_due(clock, &mut |b| out.push(b));
    out
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

fn written(sum: &Option<Sum>) -> String {
    sum.as_ref().map_or("null".into(), |s| {
        let mut out = Vec::new();
        s.write(&mut out);
        String::from_utf8(out).unwrap()
    })
}

/// (code, start, open, high, low, close, volume, turnover, trades).
type Row = (
    String,
    u64,
    String,
    String,
    String,
    String,
    String,
    String,
    u64,
);

fn row(b: &Bar) -> Row {
    (
        b.code.to_string(),
        b.start,
        text(&b.open).into(),
        text(&b.high).into(),
        text(&b.low).into(),
        text(&b.close).into(),
        written(&b.volume),
        written(&b.turnover),
        b.trades,
    )
}

/// The one bar that `trades`, fed in this order, make.
fn one_bar(trades: &[Trade]) -> Bar {
    let mut bars = Bars::new(minute(), 0);
    for tr in trades {
        assert_eq!(bars.add(tr), Ok(()));
    }
    let mut out = all(&mut bars);
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first.clone());
            out.push(p);
        }
    }
    out
}

#[test]
fn bars_open_and_close_go_by_time_then_arrival() {
    let a = [
        t("A", S + 10, "1.0"),
        t("A", S + 10, "2.0"),
        t("A", S + 30, "3.0"),
        t("A", S + 30, "4.0"),
        t("A", S + 20, "5.0"),
    ];
    let b = [a[4], a[2], a[0], a[3], a[1]];
    for order in [&a, &b] {
        let bar = one_bar(order);
        assert_eq!(
            (text(&bar.open), text(&bar.close)),
            ("1.0", "4.0"),
            "{order:?}"
        );
        assert_eq!((text(&bar.high), text(&bar.low)), ("5.0", "1.0"));
        assert_eq!((bar.start, bar.end, bar.trades), (S, S + MIN, 5));
    }
    // Ties the other way round: the first received opens, the last closes.
    let bar = one_bar(&[a[1], a[3], a[0], a[2], a[4]]);
    assert_eq!((text(&bar.open), text(&bar.close)), ("2.0", "3.0"));

    // With distinct times the order of arrival changes nothing.
    let distinct = [
        with_volume(t("A", S + 59_999, "7.25"), "1"),
        with_volume(t("A", S, "7.5"), "0.5"),
        t("A", S + 3, "7.1"),
        with_volume(t("A", S + 2, "8"), "2.25"),
    ];
    let first = one_bar(&distinct);
    assert_eq!(
        row(&first),
        (
            "A".into(),
            S,
            "7.5".into(),
            "8".into(),
            "7.1".into(),
            "7.25".into(),
            "3.75".into(),
            "null".into(),
            4
        )
    );
    for order in permutations(&distinct) {
        assert_eq!(one_bar(&order), first, "{order:?}");
    }
}

#[test]
fn bars_high_and_low_by_value_keep_the_first_digits() {
    let prices = ["5.0", "5.00", "5", "4.50", "4.5", "1e1", "10.0", "4.500e0"];
    let trades: Vec<Trade> = (0..).zip(prices).map(|(i, p)| t("A", S + i, p)).collect();
    let bar = one_bar(&trades[..3]);
    assert_eq!((text(&bar.high), text(&bar.low)), ("5.0", "5.0"));
    let bar = one_bar(&trades);
    assert_eq!((text(&bar.high), text(&bar.low)), ("1e1", "4.50"));
    assert_eq!((text(&bar.open), text(&bar.close)), ("5.0", "4.500e0"));
}

#[test]
fn bars_volume_is_null_when_no_trade_has_one_and_trades_count_all() {
    let bar = one_bar(&[t("A", S, "1"), t("A", S + 1, "2"), t("A", S + 2, "3")]);
    assert_eq!(
        (bar.volume.clone(), bar.turnover.clone(), bar.trades),
        (None, None, 3)
    );
    let mut line = Vec::new();
    bar.write_json(&mut line);
    assert!(text(&line).contains(r#""volume":null,"turnover":null,"trades":3}"#));

    let mut with_turnover = t("A", S + 2, "3");
    with_turnover.turnover = Some(b"1e3");
    let bar = one_bar(&[
        with_volume(t("A", S, "1"), "1.5"),
        t("A", S + 1, "2"),
        with_volume(with_turnover, "2"),
    ]);
    assert_eq!(
        (written(&bar.volume), written(&bar.turnover), bar.trades),
        ("3.5".into(), "1000".into(), 3)
    );
}

#[test]
fn bars_after_close_due_an_interval_takes_no_trade() {
    let mut bars = Bars::new(minute(), 2000);
    assert_eq!(bars.add(&t("A", S + 1000, "1")), Ok(()));
    assert_eq!(bars.add(&t("B", S + MIN + 1000, "2")), Ok(()));
    assert_eq!(bars.open(), 2);
    assert!(due(&mut bars, S + MIN + 1999).is_empty());
    assert_eq!(
        bars.add(&t("C", S + 5, "3")),
        Ok(()),
        "still open in the grace"
    );
    let out = due(&mut bars, S + MIN + 2000);
    let codes: Vec<&str> = out.iter().map(|b| &*b.code).collect();
    assert_eq!(codes, ["A", "C"]);
    assert_eq!(bars.open(), 1);
    // Late for every code, one that had no bar there too.
    for code in ["A", "C", "D"] {
        assert_eq!(bars.add(&t(code, S + MIN - 1, "1")), Err(Refused::Late));
        assert_eq!(bars.add(&t(code, S, "1")), Err(Refused::Late));
    }
    assert_eq!(bars.add(&t("D", S + MIN, "4")), Ok(()));
    // An earlier clock does not reopen anything.
    assert!(due(&mut bars, S).is_empty());
    assert!(due(&mut bars, 0).is_empty());
    assert_eq!(bars.add(&t("E", S + 1, "1")), Err(Refused::Late));
    // A clock far ahead closes every interval up to it, bars or not.
    let out = due(&mut bars, S + 10 * MIN + 2000);
    assert_eq!(out.len(), 2);
    assert_eq!(bars.open(), 0);
    assert_eq!(bars.add(&t("A", S + 10 * MIN - 1, "1")), Err(Refused::Late));
    assert_eq!(bars.add(&t("A", S + 10 * MIN, "1")), Ok(()));
}

#[test]
fn bars_reopened_take_the_intervals_later_trades() {
    let mut first = Bars::new(minute(), 0);
    first
        .add(&with_volume(t("A", S + 10, "5.0"), "1.5"))
        .unwrap();
    first.add(&with_volume(t("A", S + 20, "7"), "2")).unwrap();
    first.add(&t("A", S + 30, "4")).unwrap();
    let partial = all(&mut first).remove(0);
    // The same interval continued after a restart: one bar in the end.
    let mut bars = Bars::new(minute(), 0);
    assert!(bars.reopen(partial.clone()));
    assert!(!bars.reopen(partial.clone()), "open already");
    bars.add(&t("A", S, "9")).unwrap();
    bars.add(&with_volume(t("A", S + 40, "6.5"), "0.25"))
        .unwrap();
    let b = all(&mut bars).remove(0);
    assert_eq!(
        &*b.open, b"5.0",
        "the written open stands, even against a trade at the start"
    );
    assert_eq!(&*b.high, b"9");
    assert_eq!(&*b.low, b"4");
    assert_eq!(&*b.close, b"6.5");
    assert_eq!(b.trades, 5);
    let mut v = Vec::new();
    b.volume.as_ref().unwrap().write(&mut v);
    assert_eq!(v, b"3.75");
    // Not a bar of another interval, nor of a closed one.
    let mut other = Bars::new(Interval::parse("5m").unwrap(), 0);
    assert!(!other.reopen(partial.clone()));
    let mut closed = Bars::new(minute(), 0);
    closed.add(&t("B", S + 2 * MIN, "1")).unwrap();
    due(&mut closed, S + 2 * MIN);
    assert!(!closed.reopen(partial));
}

#[test]
fn bars_are_handed_out_by_start_then_code() {
    let mut bars = Bars::new(minute(), 500);
    for (code, m) in [
        ("B", 1),
        ("A", 1),
        ("C", 1),
        ("C", 0),
        ("A", 0),
        ("B", 2),
        ("AA", 1),
    ] {
        assert_eq!(bars.add(&t(code, S + m * MIN + 7, "1")), Ok(()));
    }
    let order = |out: Vec<Bar>| -> Vec<(String, u64)> {
        out.iter()
            .map(|b| (b.code.to_string(), (b.start - S) / MIN))
            .collect()
    };
    let first = order(due(&mut bars, S + 2 * MIN + 500));
    let s = |c: &str, m| (c.to_string(), m);
    assert_eq!(
        first,
        [
            s("A", 0),
            s("C", 0),
            s("A", 1),
            s("AA", 1),
            s("B", 1),
            s("C", 1)
        ]
    );
    assert_eq!(order(all(&mut bars)), [s("B", 2)]);
}

#[test]
fn bars_next_due_is_the_earliest_open_bars_end_plus_grace() {
    let mut bars = Bars::new(minute(), 1500);
    assert_eq!(bars.next_due(), None);
    bars.add(&t("A", S + MIN + 5, "1")).unwrap();
    assert_eq!(bars.next_due(), Some(S + 2 * MIN + 1500));
    bars.add(&t("B", S + 5, "1")).unwrap();
    assert_eq!(bars.next_due(), Some(S + MIN + 1500));
    assert!(due(&mut bars, S + MIN + 1499).is_empty());
    assert_eq!(due(&mut bars, S + MIN + 1500).len(), 1);
    assert_eq!(bars.next_due(), Some(S + 2 * MIN + 1500));
    assert_eq!(all(&mut bars).len(), 1);
    assert_eq!(bars.next_due(), None);
    assert_eq!(bars.open(), 0);
}

#[test]
fn bars_after_close_all_everything_to_the_latest_end_is_closed() {
    let mut bars = Bars::new(minute(), 0);
    bars.add(&t("A", S + 5, "1")).unwrap();
    bars.add(&t("B", S + 3 * MIN + 5, "1")).unwrap();
    assert_eq!(all(&mut bars).len(), 2);
    assert_eq!(bars.add(&t("C", S + 2 * MIN, "1")), Err(Refused::Late));
    assert_eq!(bars.add(&t("B", S + 4 * MIN - 1, "1")), Err(Refused::Late));
    assert_eq!(bars.add(&t("B", S + 4 * MIN, "1")), Ok(()));
    assert!(all(&mut Bars::new(minute(), 0)).is_empty());
}

#[test]
fn bars_refuse_bad_numbers_and_change_nothing() {
    let mut bars = Bars::new(minute(), 0);
    assert_eq!(bars.add(&t("A", S, "abc")), Err(Refused::Bad));
    assert_eq!(bars.open(), 0);
    bars.add(&with_volume(t("A", S + 1, "2"), "1")).unwrap();
    assert_eq!(
        bars.add(&with_volume(t("A", S + 2, "3"), "-1")),
        Err(Refused::Bad)
    );
    let mut bad_turnover = with_volume(t("A", S + 3, "4"), "1");
    bad_turnover.turnover = Some(b"1e5000");
    assert_eq!(bars.add(&bad_turnover), Err(Refused::Bad));
    assert_eq!(bars.add(&t("A", S + 4, "-5")), Err(Refused::Bad));
    let out = all(&mut bars);
    assert_eq!(
        (text(&out[0].close), written(&out[0].volume), out[0].trades),
        ("2", "1".into(), 1)
    );
}

#[test]
fn bars_symbol_is_the_label_of_the_bars_first_trade() {
    let mut bars = Bars::new(minute(), 0);
    let labelled = |symbol, time| Trade {
        symbol,
        ..t("AAPL.US", time, "1")
    };
    bars.add(&labelled("NASDAQ:AAPL", S + 10)).unwrap();
    bars.add(&labelled("AAPL.US", S + 5)).unwrap();
    bars.add(&labelled("AAPL.US", S + MIN)).unwrap();
    bars.add(&labelled("NASDAQ:AAPL", S + MIN + 1)).unwrap();
    let labels: Vec<String> = all(&mut bars)
        .iter()
        .map(|b| b.symbol.to_string())
        .collect();
    assert_eq!(labels, ["NASDAQ:AAPL", "AAPL.US"]);
}

#[test]
fn bars_closed_bars_are_freed() {
    let mut bars = Bars::new(Interval::parse("1s").unwrap(), 3_600_000);
    for i in 0..100 {
        bars.add(&t("A", S + i * 1000, "1")).unwrap();
        bars.add(&t("B", S + i * 1000 + 1, "1")).unwrap();
    }
    assert_eq!(bars.open(), 200);
    assert_eq!(all(&mut bars).len(), 200);
    assert_eq!(bars.open(), 0);
    assert!(bars.index.by_start.is_empty());
    for entry in bars.codes.values() {
        assert!(entry.bars.is_empty() && entry.bars.capacity() <= 8);
    }
}

#[test]
fn bars_json_line_has_its_fields_in_order() {
    let mut bars = Bars::new(minute(), 0);
    let aapl = |time, price, volume| Trade {
        symbol: "NASDAQ:AAPL",
        ..with_volume(t("AAPL.US", time, price), volume)
    };
    bars.add(&aapl(S + 1, "651.10", "100")).unwrap();
    bars.add(&aapl(S + 2, "652", "200.5")).unwrap();
    bars.add(&aapl(S + 3, "650.5", "0")).unwrap();
    let mut line = Vec::new();
    all(&mut bars)[0].write_json(&mut line);
    assert_eq!(
        text(&line),
        "{\"type\":\"bar\",\"symbol\":\"NASDAQ:AAPL\",\"code\":\"AAPL.US\",\"interval\":\"1m\",\
         \"start\":1796166540000,\"end\":1796166600000,\"open\":651.10,\"high\":652,\
         \"low\":650.5,\"close\":650.5,\"volume\":300.5,\"turnover\":null,\"trades\":3}\n"
    );
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(v["trades"], 3);
    let keys = [
        "type", "symbol", "code", "interval", "start", "end", "open", "high", "low", "close",
        "volume", "turnover", "trades",
    ];
    assert_eq!(v.as_object().unwrap().len(), keys.len());
    let at: Vec<usize> = keys
        .iter()
        .map(|k| text(&line).find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");

    // Labels that need escaping are escaped.
    let odd = "A\"B\\C\u{1}é";
    let mut bars = Bars::new(minute(), 0);
    bars.add(&Trade {
        symbol: odd,
        ..t(odd, S, "1e2")
    })
    .unwrap();
    let mut line = Vec::new();
    all(&mut bars)[0].write_json(&mut line);
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(
        (v["symbol"].as_str(), v["code"].as_str()),
        (Some(odd), Some(odd))
    );
    assert_eq!(v["volume"], serde_json::Value::Null);
}

/// A random trade: code, time, price and volume as (mantissa, decimals),
/// turnover likewise, and which of two labels it carries.
type Gen = (
    usize,
    u64,
    (u64, u32),
    Option<(u64, u32)>,
    Option<(u64, u32)>,
    bool,
);

const CODES: [&str; 3] = ["A.US", "B.US", "C.US"];

/// `m` × 10^-`d`, written with `d` decimals.
fn fixed(m: u128, d: u32) -> String {
    let p = 10u128.pow(d);
    if d == 0 {
        m.to_string()
    } else {
        format!("{}.{:0w$}", m / p, m % p, w = d as usize)
    }
}

/// Bars over 1 s with 250 ms steps: equal times are common, prices from a
/// small range collide in value with different digits.
fn random_trade() -> impl Strategy<Value = Gen> {
    (
        0..CODES.len(),
        0u64..24,
        (0u64..300, 0u32..=4),
        proptest::option::of((0u64..1_000_000, 0u32..=3)),
        proptest::option::of((0u64..1_000_000_000, 0u32..=3)),
        any::<bool>(),
    )
        .prop_map(|(c, slot, p, v, tv, label)| (c, S + slot * 250, p, v, tv, label))
}

/// The naive aggregation of `accepted` trades, in the order given.
fn naive(accepted: &[Gen]) -> Vec<Row> {
    struct M {
        open: (u64, String),
        close: (u64, String),
        high: (u128, String),
        low: (u128, String),
        sums: [Option<(u128, u32)>; 2],
        trades: u64,
    }
    let mut bars: BTreeMap<(u64, &str), M> = BTreeMap::new();
    for &(c, time, (pm, pd), v, tv, _) in accepted {
        let price = fixed(pm.into(), pd);
        // Prices in 10⁻⁴ units, volumes and turnovers in 10⁻⁸.
        let value = u128::from(pm) * 10u128.pow(4 - pd);
        let key = (time - time % 1000, CODES[c]);
        let m = bars.entry(key).or_insert_with(|| M {
            open: (time, price.clone()),
            close: (time, price.clone()),
            high: (value, price.clone()),
            low: (value, price.clone()),
            sums: [None, None],
            trades: 0,
        });
        m.trades += 1;
        if time < m.open.0 {
            m.open = (time, price.clone());
        }
        if time >= m.close.0 {
            m.close = (time, price.clone());
        }
        if value > m.high.0 {
            m.high = (value, price.clone());
        }
        if value < m.low.0 {
            m.low = (value, price.clone());
        }
        for (sum, n) in m.sums.iter_mut().zip([v, tv]) {
            if let Some((n, d)) = n {
                let (s, most) = sum.get_or_insert((0, 0));
                *s += u128::from(n) * 10u128.pow(8 - d);
                *most = (*most).max(d);
            }
        }
    }
    let sum =
        |s: Option<(u128, u32)>| s.map_or("null".into(), |(s, d)| fixed(s / 10u128.pow(8 - d), d));
    bars.into_iter()
        .map(|((start, code), m)| {
            let [v, tv] = m.sums;
            (
                code.into(),
                start,
                m.open.1,
                m.high.1,
                m.low.1,
                m.close.1,
                sum(v),
                sum(tv),
                m.trades,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(300) })]

    /// Random trades in random order, closed by a clock that follows the
    /// latest time seen (or only at the end): the bars written are the
    /// naive aggregation of the trades not refused, and a trade is refused
    /// exactly when its interval ended at least the grace before the clock.
    #[test]
    fn bars_agree_with_a_naive_aggregation(
        trades in proptest::collection::vec(random_trade(), 0..120),
        grace in proptest::option::of(prop_oneof![Just(0u64), Just(250), Just(1000), Just(2600)]),
    ) {
        let texts: Vec<[String; 3]> = trades
            .iter()
            .map(|&(_, _, (pm, pd), v, tv, _)| {
                let f = |n: Option<(u64, u32)>| n.map_or(String::new(), |(m, d)| fixed(m.into(), d));
                [fixed(pm.into(), pd), f(v), f(tv)]
            })
            .collect();
        let mut bars = Bars::new(Interval::parse("1s").unwrap(), grace.unwrap_or(0));
        let (mut out, mut accepted, mut clock, mut closed) = (Vec::new(), Vec::new(), 0u64, 0u64);
        for (g, [price, v, tv]) in trades.iter().zip(&texts) {
            let &(c, time, _, vol, turn, label) = g;
            let trade = Trade {
                symbol: if label { "X:LABEL" } else { CODES[c] },
                code: CODES[c],
                time,
                price: price.as_bytes(),
                volume: vol.map(|_| v.as_bytes()),
                turnover: turn.map(|_| tv.as_bytes()),
            };
            let got = bars.add(&trade);
            if time < closed {
                prop_assert_eq!(got, Err(Refused::Late));
            } else {
                prop_assert_eq!(got, Ok(()));
                accepted.push(*g);
            }
            if let Some(grace) = grace {
                clock = clock.max(time);
                bars.close_due(clock, &mut |b| out.push(b));
                if clock >= grace {
                    closed = closed.max((clock - grace) / 1000 * 1000);
                }
            }
        }
        bars.close_all(&mut |b| out.push(b));
        prop_assert_eq!(bars.open(), 0);
        let rows: Vec<Row> = out.iter().map(row).collect();
        prop_assert_eq!(rows, naive(&accepted));
        for b in &out {
            prop_assert_eq!(b.end, b.start + 1000);
            let first = accepted
                .iter()
                .find(|g| CODES[g.0] == &*b.code && g.1 - g.1 % 1000 == b.start)
                .unwrap();
            prop_assert_eq!(&*b.symbol, if first.5 { "X:LABEL" } else { CODES[first.0] });
        }
    }
}
