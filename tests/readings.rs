//! Every reading AllTick's docs allow where they leave a point open (what
//! `seq` means and how it is typed, seconds or milliseconds in `tick_time`,
//! numbers as strings or JSON numbers, errors without `seq_id`, padded
//! depth levels, the plan limit, key order, the last trade pushed again on
//! a subscription), end to end: the real binary against a
//! simulator playing that reading, asserting what a user sees on stdout and
//! stderr.

use std::time::Duration;

use alltick_stream::sim::{
    CloseCause, Inject, Readings, SentTick, SeqStyle, SimConfig, SimState, Simulator,
};
use alltick_stream::wire::protocol::CMD_SUB_TRADES;
use serde_json::Value;

use crate::util::{
    Tool, WAIT, acked_set, assert_ordered, config, json_lines, start, start_sim, stop, unwritten,
    wait_for_set,
};

fn sim_with(ticks_per_sec: f64, readings: Readings) -> Simulator {
    start_sim(SimConfig {
        readings,
        ..config(ticks_per_sec)
    })
}

/// The stdout line for the trade (code, seq), parsed, if written yet.
fn trade_line(out: &[String], code: &str, seq: u64) -> Option<Value> {
    let needle = format!("\"seq\":{seq},");
    out.iter()
        .filter(|l| l.contains(&needle))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "trade" && v["code"] == code && v["seq"].as_u64() == Some(seq))
}

/// The raw stdout line for the trade (code, seq), if written yet.
fn raw_trade_line(out: &[String], code: &str, seq: u64) -> Option<String> {
    let seq_needle = format!("\"seq\":{seq},");
    let code_needle = format!("\"code\":\"{code}\"");
    out.iter()
        .find(|l| l.contains(&seq_needle) && l.contains(&code_needle))
        .cloned()
}

/// Wait until the simulator sent at least `n` trades matching `pred`; returns them.
fn sent(sim: &Simulator, n: usize, pred: impl Fn(&SentTick) -> bool) -> Vec<SentTick> {
    let ok = sim.wait_until(WAIT, |s| s.ticks.iter().filter(|t| pred(t)).count() >= n);
    assert!(ok, "the simulator did not send {n} such trades");
    sim.state()
        .ticks
        .into_iter()
        .filter(|t| pred(t))
        .take(n)
        .collect()
}

/// Wait until every trade in `ticks` is on stdout; names the missing ones.
fn wait_written(tool: &Tool, ticks: &[SentTick], what: &str) {
    let all = tool.wait_for(WAIT, |out, _| {
        ticks
            .iter()
            .all(|t| trade_line(out, &t.code, t.seq).is_some())
    });
    let out = tool.stdout();
    let missing: Vec<(String, u64)> = ticks
        .iter()
        .filter(|t| trade_line(&out, &t.code, t.seq).is_none())
        .map(|t| (t.code.clone(), t.seq))
        .collect();
    check!(tool, all, "{what}: not written: {missing:?}");
}

#[test]
fn seq_restarting_on_a_new_connection_still_writes_every_tick() {
    let sim = sim_with(20.0, Readings::default());
    let mut tool = start(&sim, &["NASDAQ:AAPL", "NYSE:IBM"]);
    check!(tool, wait_for_set(&sim, &["AAPL.US", "IBM.US"]));
    let before = sent(&sim, 6, |_| true);
    wait_written(&tool, &before, "ticks before the restart");
    let high = before.iter().map(|t| t.seq).min().unwrap_or(0);

    // A server restart or fail-over: the next connection numbers from 1.
    sim.set_readings(Readings {
        seq: SeqStyle::PerConnection,
        ..Readings::default()
    });
    sim.drop_connections();
    check!(
        tool,
        acked_set(&sim, 2, &["AAPL.US", "IBM.US"]),
        "no resubscription after the drop"
    );
    let last_time = before.iter().map(|t| t.time_ms).max().unwrap_or(0);
    for code in ["AAPL.US", "IBM.US"] {
        let after = sent(&sim, 5, |t| t.conn >= 2 && t.code == code);
        check!(
            tool,
            after.iter().all(|t| t.seq < high && t.time_ms >= last_time),
            "the simulator did not restart its numbering: {after:?}"
        );
        wait_written(&tool, &after, &format!("{code} after the restart"));
        // Written with the time the server sent, not dropped as "old".
        let out = tool.stdout();
        for t in &after {
            let v = trade_line(&out, code, t.seq).unwrap_or_default();
            check!(tool, v["time"].as_u64() == Some(t.time_ms), "{v}");
        }
    }
    let restarted_lines = tool
        .stdout()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["seq"].as_u64().is_some_and(|s| s < high))
        .count();
    check!(tool, restarted_lines >= 10, "{restarted_lines} lines");

    // stderr says so, once per code.
    let said = |code: &str, name: &str, err: &str| {
        err.lines()
            .filter(|l| l.contains("numbering restarted") && (l.contains(code) || l.contains(name)))
            .count()
    };
    let both = tool.wait_for(WAIT, |_, err| {
        said("AAPL.US", "NASDAQ:AAPL", err) >= 1 && said("IBM.US", "NYSE:IBM", err) >= 1
    });
    check!(tool, both, "stderr does not say the numbering restarted");
    stop(&mut tool);
    let err = tool.stderr();
    for (code, name) in [("AAPL.US", "NASDAQ:AAPL"), ("IBM.US", "NYSE:IBM")] {
        let n = said(code, name, &err);
        check!(tool, n == 1, "{code}: said {n} times");
    }
}

#[test]
fn seq_as_a_string_counter_is_written_as_a_number() {
    let sim = sim_with(
        20.0,
        Readings {
            seq_as_string: true,
            ..Readings::default()
        },
    );
    let mut tool = start(&sim, &["NASDAQ:AAPL"]);
    let ticks = sent(&sim, 5, |_| true);
    wait_written(&tool, &ticks, "string seqs");
    let out = tool.stdout();
    for t in &ticks {
        let line = raw_trade_line(&out, &t.code, t.seq).unwrap_or_default();
        check!(
            tool,
            line.contains(&format!("\"seq\":{},", t.seq)),
            "seq not a JSON number equal to the counter: {line}"
        );
    }
    stop(&mut tool);
}

#[test]
fn tick_time_in_seconds_is_written_as_milliseconds() {
    let sim = sim_with(
        20.0,
        Readings {
            tick_time_seconds: true,
            ..Readings::default()
        },
    );
    let mut tool = start(&sim, &["NASDAQ:AAPL"]);
    // Several of these share one second: every one is still written.
    let ticks = sent(&sim, 10, |_| true);
    check!(
        tool,
        ticks.windows(2).any(|w| w[0].tick_time == w[1].tick_time),
        "no two ticks in one second: {ticks:?}"
    );
    wait_written(&tool, &ticks, "ticks in seconds");
    let out = tool.stdout();
    for t in &ticks {
        let v = trade_line(&out, &t.code, t.seq).unwrap_or_default();
        let time = v["time"].as_u64().unwrap_or(0);
        check!(
            tool,
            time == t.tick_time * 1000 && time > 1_000_000_000_000,
            "sent tick_time {} s, written time {time}",
            t.tick_time
        );
    }
    stop(&mut tool);
}

/// Each of `ticks` was written with the server's price and volume digits,
/// as JSON numbers.
fn check_exact_digits(tool: &Tool, ticks: &[SentTick]) {
    let out = tool.stdout();
    for t in ticks {
        let line = raw_trade_line(&out, &t.code, t.seq).unwrap_or_default();
        check!(
            tool,
            line.contains(&format!("\"price\":{},", t.price))
                && line.contains(&format!("\"volume\":{},", t.volume)),
            "sent price {} volume {}, wrote: {line}",
            t.price,
            t.volume
        );
    }
}

#[test]
fn numbers_as_json_numbers_keep_their_exact_digits() {
    let sim = sim_with(
        50.0,
        Readings {
            numbers_as_json: true,
            ..Readings::default()
        },
    );
    let mut tool = start(&sim, &["NASDAQ:AAPL"]);
    // A price with a trailing zero (x.y0) that f64 would shorten.
    let zero = sent(&sim, 1, |t| t.price.ends_with('0'));
    let ticks = sent(&sim, 5, |_| true);
    wait_written(&tool, &ticks, "JSON-number trades");
    wait_written(&tool, &zero, "the trailing-zero trade");
    let both: Vec<_> = ticks.iter().chain(&zero).cloned().collect();
    check_exact_digits(&tool, &both);

    // An escape in the code sends the frame down the general decoder; its
    // 20-digit price must come out digit for digit.
    let seq = sim.state().ticks.last().map(|t| t.seq).unwrap_or(0) + 1_000;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    sim.inject(Inject::Text(format!(
        r#"{{"cmd_id":22998,"data":{{"code":"AAPL\u002eUS","seq":{seq},"tick_time":{now_ms},"price":123456789012.12345678,"volume":300,"turnover":37037036703637.037034,"trade_direction":1}}}}"#
    )));
    let written = tool.wait_for(WAIT, |out, _| raw_trade_line(out, "AAPL.US", seq).is_some());
    check!(tool, written, "the escaped frame was not written");
    let line = raw_trade_line(&tool.stdout(), "AAPL.US", seq).unwrap_or_default();
    check!(
        tool,
        line.contains("\"price\":123456789012.12345678,"),
        "20 digits not kept: {line}"
    );
    stop(&mut tool);
}

/// Pushes with `data` before `cmd_id` (and the docs' spaces) take the
/// general path, trades and depth alike: every one written with its exact
/// digits, none skipped as unreadable.
#[test]
fn pushes_with_data_before_cmd_id_are_written_exactly() {
    let sim = sim_with(
        20.0,
        Readings {
            data_first: true,
            numbers_as_json: true,
            ..Readings::default()
        },
    );
    let mut tool = start(&sim, &["NASDAQ:AAPL", "NASDAQ:TSLA@depth=5"]);
    let ticks = sent(&sim, 5, |_| true);
    wait_written(&tool, &ticks, "data-first trades");
    check_exact_digits(&tool, &ticks);
    check!(
        tool,
        tool.wait_for(WAIT, |out, _| out
            .iter()
            .any(|l| l.contains("\"type\":\"depth\"") && l.contains("TSLA.US"))),
        "no data-first depth push written"
    );
    stop(&mut tool);
    check!(
        tool,
        !tool.stderr().contains("unreadable"),
        "pushes skipped as unreadable"
    );
}

#[test]
fn error_with_seq_id_zero_still_leads_to_a_resend() {
    let sim = sim_with(
        20.0,
        Readings {
            error_seq_id_zero: true,
            ..Readings::default()
        },
    );
    sim.fail_next(CMD_SUB_TRADES, 429, 1);
    let mut tool = start(&sim, &["NASDAQ:AAPL"]);
    let resent = sim.wait_until(WAIT, |s| s.requests_with_cmd(CMD_SUB_TRADES).len() >= 2);
    let subs: Vec<(u64, u32)> = sim
        .state()
        .requests_with_cmd(CMD_SUB_TRADES)
        .iter()
        .map(|r| (r.conn, r.ret))
        .collect();
    check!(
        tool,
        resent,
        "a 429 answered with seq_id 0 was not followed by a resend: {subs:?}"
    );
    check!(tool, subs[0].1 == 429 && subs[1].1 == 200, "{subs:?}");
    check!(tool, wait_for_set(&sim, &["AAPL.US"]));
    let ticks = sent(&sim, 3, |_| true);
    wait_written(&tool, &ticks, "ticks after the resend");
    stop(&mut tool);
}

#[test]
fn padded_depth_levels_are_dropped_and_the_book_kept() {
    let sim = sim_with(
        10.0,
        Readings {
            padded_depth: true,
            ..Readings::default()
        },
    );
    let mut tool = start(&sim, &["NASDAQ:AAPL@depth=5"]);
    check!(
        tool,
        sim.wait_until(WAIT, |s| s.depth_pushes.len() >= 3),
        "no depth pushes"
    );
    let depth_lines = |out: &[String]| {
        out.iter()
            .filter(|l| l.contains("\"type\":\"depth\""))
            .count()
    };
    check!(
        tool,
        tool.wait_for(WAIT, |out, _| depth_lines(out) >= 3),
        "depth with padded levels was not written"
    );
    check!(tool, tool.wait_stderr("bad depth level"));
    stop(&mut tool);
    let lines = json_lines(&tool);
    let books: Vec<&Value> = lines.iter().filter(|v| v["type"] == "depth").collect();
    for book in &books {
        let mut good = 0;
        for side in ["bids", "asks"] {
            for level in book[side].as_array().into_iter().flatten() {
                let price = level[0].as_f64();
                check!(
                    tool,
                    price.is_some_and(|p| p > 0.0),
                    "a bad level was written: {book}"
                );
                good += 1;
            }
        }
        // The simulator's good levels: 2 bids and 5 asks.
        check!(tool, good == 7, "good levels lost: {book}");
    }
    check!(
        tool,
        !tool.stderr().contains("invalid trade"),
        "bad depth levels were counted as invalid trades"
    );
}

#[test]
fn http_403_at_the_handshake_names_both_causes_and_retries_slowly() {
    let sim = sim_with(10.0, Readings::default());
    sim.set_handshake_status(Some(403));
    let mut tool = start(&sim, &["NASDAQ:AAPL"]);
    check!(tool, tool.wait_stderr("403"));
    let line = tool
        .stderr()
        .lines()
        .find(|l| l.contains("403"))
        .unwrap_or("")
        .to_owned();
    check!(
        tool,
        line.contains("too many connections") && line.contains("token"),
        "the 403 line does not name both likely causes: {line}"
    );
    let delay = tool
        .wait_for(WAIT, |_, err| err.contains("retrying in"))
        .then(|| {
            let err = tool.stderr();
            let rest = err.split("retrying in").nth(1).unwrap_or("").trim_start();
            let number: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            number.parse::<f64>().ok()
        })
        .flatten();
    check!(
        tool,
        delay.is_some_and(|d| d >= 30.0),
        "retry delay after 403: {delay:?}"
    );
    // The wait itself is the one printed (`ConnectError::min_wait`, pinned
    // by its unit test): no second attempt comes in the next 5 s, where
    // the plain backoff would have tried again within a second. A
    // measuring window, not a synchronisation: nothing to await but time.
    let first = sim.state().connections[0].opened_at;
    let window = Duration::from_secs(5);
    std::thread::sleep((first + window).saturating_duration_since(std::time::Instant::now()));
    check!(
        tool,
        sim.state().connections.len() == 1,
        "retried within {window:?} of a 403: {:?}",
        sim.state().connections
    );
    check!(
        tool,
        tool.wait_exit(Duration::ZERO).is_none(),
        "the tool exited on HTTP 403"
    );
    stop(&mut tool);
}

/// A server that greets a subscription with the last trade of each code
/// (the docs do not say it does not): after a reconnect, the re-pushed
/// trade was written already on the old connection, so it is skipped as a
/// repeat, and nothing else is lost or doubled.
#[test]
fn the_last_trade_pushed_again_after_a_reconnect_is_written_once() {
    let sim = sim_with(
        20.0,
        Readings {
            repush_last_trade: true,
            ..Readings::default()
        },
    );
    let codes = ["AAPL.US", "IBM.US"];
    let mut tool = start(&sim, &["NASDAQ:AAPL", "NYSE:IBM"]);
    check!(tool, wait_for_set(&sim, &codes));
    let before = sent(&sim, 6, |_| true);
    wait_written(&tool, &before, "ticks before the cut");
    // Cut the connection (everything sent is flushed first), once.
    sim.set_cut_every(Some(Duration::ZERO));
    let cut = sim.wait_until(WAIT, |s| {
        s.conn(1).is_some_and(|c| c.cause == Some(CloseCause::Cut))
    });
    sim.set_cut_every(None);
    check!(tool, cut, "the connection was not cut");
    check!(tool, acked_set(&sim, 2, &codes), "no resubscription");
    let repushed = |s: &SimState| {
        codes
            .iter()
            .all(|c| s.repushes.iter().any(|t| t.conn >= 2 && t.code == *c))
    };
    check!(tool, sim.wait_until(WAIT, repushed), "nothing pushed again");
    for code in codes {
        let after = sent(&sim, 3, |t| t.conn >= 2 && t.code == code);
        wait_written(&tool, &after, &format!("{code} after the reconnect"));
    }
    stop(&mut tool);
    let st = sim.state();
    let lines = json_lines(&tool);
    // Written once: per code, seqs strictly increase on stdout.
    assert_ordered(&tool, &lines);
    for again in st.repushes.iter() {
        let same = lines
            .iter()
            .filter(|v| v["code"] == again.code.as_str() && v["seq"].as_u64() == Some(again.seq))
            .count();
        check!(tool, same == 1, "{again:?} written {same} times");
    }
    let missing = unwritten(&lines, &st.ticks);
    check!(tool, missing.is_empty(), "not written: {missing:?}");
    check!(
        tool,
        tool.stderr()
            .contains("skipped a trade push already written"),
        "the repeat was not reported"
    );
}
