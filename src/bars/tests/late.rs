//! Late trades decided by the clock alone: once it passes an interval's
//! end plus the grace, every trade for it is late, whether or not its code
//! had a bar there, and bars come out in order of their end.

use super::*;

/// (code, start, trades) of each bar.
fn keys(out: &[Bar]) -> Vec<(&str, u64, u64)> {
    out.iter().map(|b| (&*b.code, b.start, b.trades)).collect()
}

#[test]
fn bars_past_an_intervals_end_and_grace_its_trades_are_late_for_every_code() {
    let mut bars = Bars::new(minute(), 2000);
    assert_eq!(bars.add_at(&t("A", S + 1000, "1"), S + 1000), Ok(()));
    assert_eq!(bars.add_at(&t("A", S + 3 * MIN, "2"), S + 3 * MIN), Ok(()));
    assert_eq!(keys(&due(&mut bars, S + 3 * MIN)), [("A", S, 1)]);
    // Minute 2 ends at S + 3 MIN: in the grace, a code new to it opens a bar.
    let d = t("D", S + 2 * MIN + 5, "3");
    assert_eq!(bars.add_at(&d, S + 3 * MIN + 1999), Ok(()));
    // A's trades move the clock past minute 2's end plus the grace.
    let clock = S + 3 * MIN + 5000;
    assert_eq!(bars.add_at(&t("A", clock, "4"), clock), Ok(()));
    // B's first trades ever, in minute 2: late, not a bar of their own.
    for time in [S + 2 * MIN + 10, S + 2 * MIN + 20] {
        assert_eq!(bars.add_at(&t("B", time, "7"), clock), Err(Refused::Late));
    }
    // D's bar, open when minute 2 closed, takes no more trades and is due.
    let d = t("D", S + 2 * MIN + 6, "9");
    assert_eq!(bars.add_at(&d, clock), Err(Refused::Late));
    assert_eq!(bars.next_due(), Some(S + 3 * MIN + 2000));
    assert_eq!(keys(&due(&mut bars, clock)), [("D", S + 2 * MIN, 1)]);
    // The open minute takes B's trade; an earlier clock reopens nothing.
    assert_eq!(bars.add_at(&t("B", S + 3 * MIN + 1, "5"), clock), Ok(()));
    assert_eq!(
        bars.add_at(&t("C", S + 2 * MIN, "5"), 0),
        Err(Refused::Late)
    );
    assert_eq!(
        keys(&all(&mut bars)),
        [("A", S + 3 * MIN, 2), ("B", S + 3 * MIN, 1)]
    );
}

#[test]
fn bars_a_clock_far_ahead_closes_every_interval_up_to_it_bars_or_not() {
    let mut bars = Bars::new(minute(), 500);
    let clock = S + 10 * MIN + 500;
    assert_eq!(
        bars.add_at(&t("A", S + 9 * MIN, "1"), clock),
        Err(Refused::Late)
    );
    assert_eq!(
        bars.add_at(&t("A", S + 10 * MIN - 1, "1"), clock),
        Err(Refused::Late)
    );
    assert_eq!(bars.add_at(&t("A", S + 10 * MIN, "1"), clock), Ok(()));
    assert_eq!(bars.open(), 1);
    assert!(due(&mut bars, clock).is_empty());
    assert_eq!(keys(&all(&mut bars)), [("A", S + 10 * MIN, 1)]);
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(300) })]

    /// Random trades in random order, each added with the clock that
    /// follows the latest time seen, and bars closed only when
    /// [`Bars::next_due`] says one is due (as the writer and `replay` do):
    /// a trade is late exactly when its interval's end plus the grace is
    /// not after the clock, whether or not its code had a bar there; the
    /// bars come out in order of end, then code, and are the naive
    /// aggregation of the trades not refused.
    #[test]
    fn bars_late_by_the_clock_alone_and_written_in_order_of_end(
        trades in proptest::collection::vec(random_trade(), 0..120),
        grace in prop_oneof![Just(0u64), Just(250), Just(1000), Just(2600)],
    ) {
        let mut bars = Bars::new(Interval::parse("1s").unwrap(), grace);
        let (mut out, mut accepted, mut clock) = (Vec::new(), Vec::new(), 0u64);
        for g in &trades {
            let &(c, time, (pm, pd), _, _, _) = g;
            let price = fixed(pm.into(), pd);
            clock = clock.max(time);
            let got = bars.add_at(&t(CODES[c], time, &price), clock);
            let start = time - time % 1000;
            if start + 1000 + grace <= clock {
                prop_assert_eq!(got, Err(Refused::Late));
            } else {
                prop_assert_eq!(got, Ok(()));
                accepted.push((c, time, (pm, pd), None, None, false));
            }
            if bars.next_due().is_some_and(|d| d <= clock) {
                bars.close_due(clock, &mut |b| out.push(b));
            }
        }
        bars.close_all(&mut |b| out.push(b));
        let order: Vec<(u64, &str)> = out.iter().map(|b| (b.end, &*b.code)).collect();
        prop_assert!(order.is_sorted(), "{:?}", order);
        let rows: Vec<Row> = out.iter().map(row).collect();
        prop_assert_eq!(rows, naive(&accepted));
    }
}
