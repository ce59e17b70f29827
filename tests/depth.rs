//! Order-book depth end to end: its own replace-the-set requests (22002)
//! and cancel (22006 cancel_type 1), paced together with trades, resent
//! after a reconnect, and written as `type: depth` lines.

use alltick_stream::sim::Simulator;
use alltick_stream::wire::protocol::{CMD_CANCEL, CMD_SUB_DEPTH, CMD_SUB_TRADES};
use serde_json::{Value, json};
use std::time::Duration;

use crate::util::{WAIT, json_lines, sim, start, stop};

/// A depth request on a connection >= `conn` with exactly this symbol_list.
fn depth_set(sim: &Simulator, conn: u64, list: Value) -> bool {
    sim.wait_until(WAIT, |s| {
        s.requests.iter().any(|r| {
            r.conn >= conn
                && r.cmd_id == CMD_SUB_DEPTH
                && r.ret == 200
                && r.data["symbol_list"] == list
        })
    })
}

#[test]
fn depth_from_arguments_and_stdin_with_its_own_set_and_cancel() {
    let sim = sim(10.0);
    let mut tool = start(&sim, &["NASDAQ:AAPL", "HKEX:700@depth=5"]);
    check!(
        tool,
        depth_set(&sim, 1, json!([{"code": "700.HK", "depth_level": 5}]))
    );
    tool.send("+NYSE:IBM@depth\n");
    check!(
        tool,
        depth_set(
            &sim,
            1,
            json!([{"code": "700.HK", "depth_level": 5}, {"code": "IBM.US"}])
        ),
        "the depth set was not sent whole"
    );
    tool.send("-HKEX:700@depth\n");
    check!(tool, depth_set(&sim, 1, json!([{"code": "IBM.US"}])));
    // Depth lines carry the book with exact decimals.
    let got_depth = tool.wait_for(WAIT, |out, _| {
        out.iter()
            .any(|l| l.contains("\"type\":\"depth\",\"symbol\":\"NYSE:IBM\""))
    });
    check!(tool, got_depth);
    tool.send("-NYSE:IBM@depth\n");
    let cancelled = sim.wait_until(WAIT, |s| {
        s.requests
            .iter()
            .any(|r| r.cmd_id == CMD_CANCEL && r.data["cancel_type"] == 1 && r.ret == 200)
    });
    check!(tool, cancelled, "no 22006 cancel_type 1");
    stop(&mut tool);

    let st = sim.state();
    // Trades were never touched by the depth changes.
    let trade_reqs: Vec<_> = st
        .requests
        .iter()
        .filter(|r| r.cmd_id == CMD_SUB_TRADES)
        .collect();
    check!(
        tool,
        trade_reqs.len() == 1 && trade_reqs[0].codes() == ["AAPL.US"]
    );
    check!(
        tool,
        !st.requests
            .iter()
            .any(|r| r.cmd_id == CMD_CANCEL && r.data["cancel_type"] != 1)
    );
    check!(
        tool,
        st.requests
            .iter()
            .all(|r| r.cmd_id != CMD_SUB_DEPTH || !r.codes().is_empty())
    );
    // One pacing budget for both kinds.
    for pair in st.requests.windows(2) {
        check!(
            tool,
            pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(900)
        );
    }
    let lines = json_lines(&tool);
    let depth: Vec<&Value> = lines.iter().filter(|v| v["type"] == "depth").collect();
    check!(tool, !depth.is_empty());
    for d in &depth {
        let code = d["code"].as_str().unwrap_or("");
        check!(
            tool,
            d["symbol"]
                == if code == "700.HK" {
                    "HKEX:700"
                } else {
                    "NYSE:IBM"
                }
        );
        for side in ["bids", "asks"] {
            let levels = d[side].as_array().expect("side is an array");
            check!(tool, levels.len() <= 5 || code != "700.HK");
            for l in levels {
                check!(
                    tool,
                    l[0].as_f64().is_some_and(|p| p > 0.0) && (l[1].is_number() || l[1].is_null())
                );
            }
        }
        let seq = d["seq"].as_u64().unwrap_or(0);
        check!(
            tool,
            st.depth_pushes
                .iter()
                .any(|p| p.code == code && p.seq == seq),
            "depth line not from the server: {d}"
        );
    }
}

#[test]
fn reconnect_resubscribes_trades_and_depth() {
    let sim = sim(10.0);
    let tool = start(&sim, &["NASDAQ:AAPL", "HKEX:700@depth=5"]);
    check!(
        tool,
        depth_set(&sim, 1, json!([{"code": "700.HK", "depth_level": 5}]))
    );
    sim.drop_connections();
    check!(
        tool,
        depth_set(&sim, 2, json!([{"code": "700.HK", "depth_level": 5}]))
    );
    let trades = sim.wait_until(WAIT, |s| {
        s.requests
            .iter()
            .any(|r| r.conn >= 2 && r.cmd_id == CMD_SUB_TRADES && r.codes() == ["AAPL.US"])
    });
    check!(tool, trades);
}

#[test]
fn a_bad_depth_suffix_is_refused_and_never_sent() {
    let sim = sim(10.0);
    let mut tool = start(&sim, &["NASDAQ:AAPL"]);
    tool.send("+NASDAQ:MSFT@depth=99\n+NASDAQ:MSFT@depth=2\n");
    check!(tool, tool.wait_stderr("stdin:1: bad symbol"));
    check!(
        tool,
        depth_set(&sim, 1, json!([{"code": "MSFT.US", "depth_level": 2}]))
    );
    check!(
        tool,
        sim.state().requests.iter().all(|r| !r.raw.contains("99"))
    );
}
