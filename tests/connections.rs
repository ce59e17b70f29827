//! End-to-end tests of several connections: the real binary against the
//! simulated AllTick server, which serves both endpoints on their paths.
//! Sharding by `--max-symbols`, the 3 s stagger between connections,
//! held-back symbols, routing by code form, one connection's outage leaving
//! the others streaming, SIGINT, the token's connection limit, `--stats`,
//! the idle close of a connection left with nothing to carry.

use std::collections::{HashMap, HashSet};
use std::thread;
use std::time::{Duration, Instant};

use alltick_stream::sim::{
    CloseCause, ConnRecord, FOREX_PATH, Request, STOCK_PATH, SimState, Simulator,
};
use alltick_stream::wire::protocol::{CMD_CANCEL, CMD_SUB_DEPTH, CMD_SUB_TRADES};
use serde_json::Value;

use crate::util::{TOKEN, Tool, WAIT, json_lines, sim};

/// Longer bound for what waits on the stagger: each further connection's
/// first subscription comes 3.3 s after the previous one's.
const SLOW: Duration = Duration::from_secs(60);

/// Run the tool with `args` (which name the endpoints) and the token.
fn start(args: &[&str]) -> Tool {
    Tool::start(args, Some(TOKEN))
}

/// The tool with `extra` flags and AAPL and TSLA on two connections of the
/// simulator's endpoint (one symbol each).
fn start_two(sim: &Simulator, extra: &[&str]) -> Tool {
    let url = sim.url();
    let mut args = vec!["--url", url.as_str()];
    args.extend_from_slice(extra);
    args.extend([
        "--connections",
        "2",
        "--max-symbols",
        "1",
        "NASDAQ:AAPL",
        "NASDAQ:TSLA",
    ]);
    start(&args)
}

/// The tool with AAPL and TSLA on two connections of one endpoint, once
/// ticks of both are on stdout.
fn two_streaming(sim: &Simulator, extra: &[&str]) -> Tool {
    let tool = start_two(sim, extra);
    check!(
        tool,
        tool.wait_for(SLOW, |out, _| has_code(out, "AAPL.US")
            && has_code(out, "TSLA.US")),
        "ticks of both"
    );
    tool
}

fn is_subscription(r: &Request) -> bool {
    [CMD_SUB_TRADES, CMD_SUB_DEPTH, CMD_CANCEL].contains(&r.cmd_id)
}

/// Connections whose handshake completed.
fn accepted(st: &SimState) -> Vec<&ConnRecord> {
    st.connections.iter().filter(|c| c.accepted).collect()
}

/// The open connection currently carrying trade code `code`.
fn carrier<'a>(st: &'a SimState, code: &str) -> Option<&'a ConnRecord> {
    st.open_connections()
        .into_iter()
        .find(|c| c.trade_codes.iter().any(|t| t == code))
}

/// (code, seq) of every stdout line.
fn keys(lines: &[Value]) -> HashSet<(String, u64)> {
    lines
        .iter()
        .map(|v| {
            (
                v["code"].as_str().unwrap_or("").to_string(),
                v["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Whether stdout has a line of `code`.
fn has_code(out: &[String], code: &str) -> bool {
    lines_of(out, code) > 0
}

/// How many stdout lines are of `code`.
fn lines_of(out: &[String], code: &str) -> usize {
    let needle = format!("\"code\":\"{code}\"");
    out.iter().filter(|l| l.contains(&needle)).count()
}

/// Each code's seqs on stdout strictly increase (no duplicate, no reorder).
fn assert_seqs_increase(tool: &Tool) {
    let mut last: HashMap<String, u64> = HashMap::new();
    for v in json_lines(tool) {
        let code = v["code"].as_str().unwrap_or("").to_string();
        let seq = v["seq"].as_u64().expect("seq");
        if let Some(prev) = last.insert(code.clone(), seq) {
            check!(tool, seq > prev, "{code}: seq {seq} after {prev}");
        }
    }
}

#[test]
fn max_symbols_shards_four_symbols_over_two_connections_of_two() {
    let sim = sim(5.0);
    let url = sim.url();
    let tool = start(&[
        "--url",
        &url,
        "--connections",
        "2",
        "--max-symbols",
        "2",
        "NASDAQ:AAPL",
        "NASDAQ:TSLA",
        "NYSE:IBM",
        "NASDAQ:NVDA",
    ]);
    let all = ["AAPL.US", "TSLA.US", "IBM.US", "NVDA.US"];
    let done = sim.wait_until(SLOW, |s| {
        let open = s.open_connections();
        open.len() == 2 && open.iter().all(|c| c.trade_codes.len() == 2)
    });
    check!(
        tool,
        done,
        "two connections of 2: {:?}",
        sim.state().connections
    );
    check!(
        tool,
        tool.wait_for(WAIT, |out, _| all.iter().all(|c| has_code(out, c))),
        "ticks of every symbol"
    );
    let st = sim.state();
    let conns = accepted(&st);
    check!(tool, conns.len() == 2, "connections: {conns:?}");
    check!(tool, conns.iter().all(|c| c.path == STOCK_PATH));
    let mut carried: Vec<&str> = conns
        .iter()
        .flat_map(|c| c.trade_codes.iter().map(String::as_str))
        .collect();
    carried.sort_unstable();
    let mut want = all.to_vec();
    want.sort_unstable();
    check!(tool, carried == want, "carried {carried:?}");
    for r in st.requests.iter().filter(|r| r.cmd_id == CMD_SUB_TRADES) {
        check!(tool, r.codes().len() <= 2, "request with {:?}", r.codes());
        check!(tool, r.ret == 200, "ret {} for {:?}", r.ret, r.codes());
    }
    check!(
        tool,
        st.requests.iter().all(|r| r.ret == 200),
        "{:?}",
        st.requests
    );
}

#[test]
fn subscription_requests_on_different_connections_arrive_three_seconds_apart() {
    let sim = sim(2.0);
    let url = sim.url();
    let mut tool = start(&[
        "--url",
        &url,
        "--connections",
        "2",
        "--max-symbols",
        "1",
        "NASDAQ:AAPL",
        "NASDAQ:TSLA",
        "HKEX:700@depth=5",
        "HKEX:9988@depth",
    ]);
    // Two connections, each with one trade and one depth symbol acked.
    let done = sim.wait_until(SLOW, |s| {
        let open = s.open_connections();
        open.len() == 2
            && open
                .iter()
                .all(|c| c.trade_codes.len() == 1 && c.depth_codes.len() == 1)
    });
    check!(tool, done, "two connections: {:?}", sim.state().connections);
    // A removal empties one connection's trades: a cancel (22006).
    tool.send("-NASDAQ:AAPL\n");
    let cancelled = sim.wait_until(SLOW, |s| {
        s.requests
            .iter()
            .any(|r| r.cmd_id == CMD_CANCEL && r.ret == 200)
    });
    check!(tool, cancelled, "no cancel: {:?}", sim.state().requests);

    let st = sim.state();
    check!(
        tool,
        accepted(&st).len() == 2,
        "reconnected: {:?}",
        st.connections
    );
    let subs: Vec<&Request> = st.requests.iter().filter(|r| is_subscription(r)).collect();
    check!(
        tool,
        subs.len() >= 5,
        "{} subscription requests",
        subs.len()
    );
    let gap = Duration::from_secs(3);
    for (i, a) in subs.iter().enumerate() {
        for b in &subs[i + 1..] {
            if a.conn != b.conn {
                let apart = b.at.duration_since(a.at);
                check!(
                    tool,
                    apart >= gap,
                    "{} on conn {} and {} on conn {} arrived {apart:?} apart",
                    a.cmd_id,
                    a.conn,
                    b.cmd_id,
                    b.conn
                );
            }
        }
    }
    check!(tool, subs.iter().all(|r| r.ret == 200), "{subs:?}");
}

#[test]
fn held_back_symbol_is_listed_then_admitted_after_a_removal() {
    let sim = sim(5.0);
    let url = sim.url();
    let mut tool = start(&[
        "--stock-url",
        &url,
        "--connections",
        "2",
        "--max-symbols",
        "1",
        "NASDAQ:AAPL",
        "NASDAQ:TSLA",
        "NYSE:IBM",
    ]);
    check!(tool, tool.wait_stderr("holding back 1"));
    check!(
        tool,
        tool.stderr()
            .lines()
            .any(|l| l.contains("holding back 1") && l.contains("NYSE:IBM"))
    );
    let both = sim.wait_until(SLOW, |s| {
        s.open_connections()
            .iter()
            .filter(|c| c.trade_codes.len() == 1)
            .count()
            == 2
    });
    check!(tool, both, "two connections: {:?}", sim.state().connections);

    tool.send("?\n");
    check!(
        tool,
        tool.wait_stderr("held back (over --max-symbols × --connections) 1: NYSE:IBM")
    );
    let st = sim.state();
    check!(
        tool,
        st.requests
            .iter()
            .all(|r| !r.codes().contains(&"IBM.US".to_string())),
        "IBM sent while held back"
    );
    let aapl_on = carrier(&st, "AAPL.US").map(|c| c.id);
    check!(tool, aapl_on.is_some());

    tool.send("-NASDAQ:AAPL\n");
    check!(
        tool,
        tool.wait_stderr("admitting NYSE:IBM (held back until now) on connection stock#")
    );
    let admitted = sim.wait_until(WAIT, |s| {
        carrier(s, "IBM.US").map(|c| c.id) == aapl_on && carrier(s, "AAPL.US").is_none()
    });
    check!(
        tool,
        admitted,
        "IBM on AAPL's connection: {:?}",
        sim.state().connections
    );
    check!(tool, tool.wait_for(WAIT, |out, _| has_code(out, "IBM.US")));
    let st = sim.state();
    check!(tool, accepted(&st).len() == 2, "{:?}", st.connections);
    for r in st.requests.iter().filter(|r| r.cmd_id == CMD_SUB_TRADES) {
        check!(tool, r.codes().len() == 1, "request with {:?}", r.codes());
    }
}

#[test]
fn codes_route_by_their_form_to_the_stock_and_forex_endpoints() {
    let sim = sim(5.0);
    let stock = sim.url_for(STOCK_PATH);
    let forex = sim.url_for(FOREX_PATH);
    let tool = start(&[
        "--stock-url",
        &stock,
        "--forex-url",
        &forex,
        "NASDAQ:AAPL",
        "BTCUSDT",
    ]);
    check!(
        tool,
        tool.wait_for(SLOW, |out, _| has_code(out, "AAPL.US")
            && has_code(out, "BTCUSDT")),
        "ticks of both"
    );
    let st = sim.state();
    let conns = accepted(&st);
    check!(tool, conns.len() == 2, "{conns:?}");
    let path_of = |id: u64| st.conn(id).map_or("", |c| c.path.as_str());
    for r in st.requests.iter().filter(|r| is_subscription(r)) {
        check!(tool, r.ret == 200, "ret {} for {:?}", r.ret, r.codes());
        for code in r.codes() {
            let want = if code == "AAPL.US" {
                STOCK_PATH
            } else {
                FOREX_PATH
            };
            check!(
                tool,
                path_of(r.conn) == want,
                "{code} sent on {}",
                path_of(r.conn)
            );
        }
    }
    let carried = |path: &str| -> Vec<String> {
        conns
            .iter()
            .filter(|c| c.path == path)
            .flat_map(|c| c.trade_codes.clone())
            .collect()
    };
    check!(tool, carried(STOCK_PATH) == ["AAPL.US"]);
    check!(tool, carried(FOREX_PATH) == ["BTCUSDT"]);
    let err = tool.stderr();
    check!(tool, err.contains("stock#1: connected to"));
    check!(tool, err.contains("forex#1: connected to"));
    // The output names each symbol as the user spelled it.
    let lines = json_lines(&tool);
    check!(
        tool,
        lines
            .iter()
            .all(|v| (v["code"] == "AAPL.US" && v["symbol"] == "NASDAQ:AAPL")
                || (v["code"] == "BTCUSDT" && v["symbol"] == "BTCUSDT"))
    );
}

#[test]
fn one_connection_down_leaves_the_other_streaming() {
    let sim = sim(50.0);
    let tool = two_streaming(&sim, &[]);
    let st = sim.state();
    let down = carrier(&st, "TSLA.US").expect("TSLA's connection").id;
    let up = carrier(&st, "AAPL.US").expect("AAPL's connection").id;
    check!(tool, down != up);
    let dropped_at = Instant::now();
    check!(tool, sim.drop_connection(down));

    // The replacement connection, resubscribed to TSLA.
    let back = sim.wait_until(SLOW, |s| {
        s.connections
            .iter()
            .any(|c| c.id > down && c.id != up && c.trade_codes == ["TSLA.US"])
    });
    check!(
        tool,
        back,
        "no resubscription: {:?}",
        sim.state().connections
    );
    let st = sim.state();
    let new = st
        .connections
        .iter()
        .find(|c| c.id > down && c.id != up && c.accepted)
        .expect("new connection");
    let reconnected_at = new.opened_at;
    let new_id = new.id;
    check!(
        tool,
        st.conn(down).and_then(|c| c.cause.clone()) == Some(CloseCause::Dropped)
    );
    check!(
        tool,
        st.conn(up).is_some_and(|c| !c.closed),
        "AAPL's connection closed"
    );

    // AAPL ticks the server sent while TSLA's connection was down all reach
    // stdout.
    let during: Vec<(String, u64)> = st
        .ticks
        .iter()
        .filter(|t| t.code == "AAPL.US" && t.at > dropped_at && t.at < reconnected_at)
        .map(|t| (t.code.clone(), t.seq))
        .collect();
    check!(
        tool,
        !during.is_empty(),
        "no AAPL tick sent during the outage"
    );
    let needle = |(code, seq): &(String, u64)| format!("\"code\":\"{code}\",\"seq\":{seq},");
    let all_out = tool.wait_for(WAIT, |out, _| {
        during
            .iter()
            .all(|k| out.iter().any(|l| l.contains(&needle(k))))
    });
    check!(
        tool,
        all_out,
        "{} AAPL ticks of the outage not all on stdout",
        during.len()
    );

    // After the reconnect both stream: a TSLA tick sent on the new
    // connection and a later AAPL tick reach stdout.
    let later = sim.wait_until(WAIT, |s| {
        let first_new = s.ticks.iter().find(|t| t.conn == new_id).map(|t| t.at);
        first_new.is_some_and(|at| s.ticks.iter().any(|t| t.code == "AAPL.US" && t.at > at))
    });
    check!(tool, later, "no ticks after the reconnect");
    let st = sim.state();
    let first_new_at = st.ticks.iter().find(|t| t.conn == new_id).expect("tick").at;
    let want: Vec<(String, u64)> = ["TSLA.US", "AAPL.US"]
        .iter()
        .filter_map(|code| {
            st.ticks
                .iter()
                .find(|t| t.code == *code && t.at >= first_new_at)
                .map(|t| (t.code.clone(), t.seq))
        })
        .collect();
    check!(tool, want.len() == 2);
    check!(
        tool,
        tool.wait_for(WAIT, |out, _| want
            .iter()
            .all(|k| out.iter().any(|l| l.contains(&needle(k))))),
        "after the reconnect: {want:?}"
    );
    assert_seqs_increase(&tool);
}

#[test]
fn sigint_with_two_connections_writes_every_tick_sent() {
    let sim = sim(200.0);
    let mut tool = two_streaming(&sim, &[]);
    tool.signal("INT");
    let status = tool.wait_exit(WAIT);
    check!(
        tool,
        status.is_some_and(|s| s.success()),
        "status {status:?}"
    );
    let st = sim.state();
    let conns = accepted(&st);
    check!(tool, conns.len() == 2, "{conns:?}");
    check!(
        tool,
        conns.iter().all(|c| c.close_frame_received),
        "a connection got no close frame: {conns:?}"
    );
    let lines = json_lines(&tool);
    let got = keys(&lines);
    for code in ["AAPL.US", "TSLA.US"] {
        let sent: Vec<u64> = st
            .ticks
            .iter()
            .filter(|t| t.code == code)
            .map(|t| t.seq)
            .collect();
        let missing: Vec<&u64> = sent
            .iter()
            .filter(|seq| !got.contains(&(code.to_string(), **seq)))
            .collect();
        check!(
            tool,
            missing.is_empty(),
            "{code}: {} of {} sent ticks missing from stdout, e.g. {:?}",
            missing.len(),
            sent.len(),
            missing.first()
        );
    }
    check!(
        tool,
        lines.len() == st.ticks.len(),
        "{} lines for {} ticks sent",
        lines.len(),
        st.ticks.len()
    );
}

#[test]
fn connection_refused_by_the_token_limit_backs_off_while_the_other_streams() {
    let sim = sim(10.0);
    sim.set_connection_limit(Some(1), Duration::ZERO);
    let tool = start_two(&sim, &[]);
    let refused = |s: &SimState| -> Vec<Instant> {
        s.connections
            .iter()
            .filter(|c| c.cause == Some(CloseCause::TooManyConnections))
            .map(|c| c.opened_at)
            .collect()
    };
    check!(
        tool,
        sim.wait_until(WAIT, |s| !refused(s).is_empty()),
        "no connection refused"
    );
    check!(tool, tool.wait_stderr("connection limit"));
    let first_refusal = refused(&sim.state())[0];
    // A measuring window, not a synchronisation: how many attempts come in
    // the 5 s after the first refusal.
    let window = Duration::from_secs(5);
    thread::sleep((first_refusal + window).saturating_duration_since(Instant::now()));
    let st = sim.state();
    let attempts = refused(&st)
        .iter()
        .filter(|at| at.duration_since(first_refusal) <= window)
        .count();
    // Backoff: attempt n waits at least 0.25 s × 2^n, so from the first
    // refusal the next ones come after ≥ 0.25, 0.75, 1.75, 3.75 s: five at
    // most in 5 s (a storm makes dozens), and at least a second one.
    check!(
        tool,
        (2..=5).contains(&attempts),
        "{attempts} refused attempts in {window:?}"
    );
    // Only one connection is ever admitted; its code keeps streaming.
    let admitted: Vec<&ConnRecord> = st
        .connections
        .iter()
        .filter(|c| c.accepted && c.cause != Some(CloseCause::TooManyConnections))
        .collect();
    check!(tool, admitted.len() == 1, "admitted: {admitted:?}");
    check!(tool, !admitted[0].closed);
    let code = admitted[0].trade_codes.first().cloned().expect("a code");
    let since = Instant::now();
    let recent = sim.wait_until(WAIT, |s| {
        s.ticks.iter().any(|t| t.code == code && t.at > since)
    });
    check!(tool, recent, "{code} stopped");
    let seq = sim
        .state()
        .ticks
        .iter()
        .find(|t| t.code == code && t.at > since)
        .map(|t| t.seq)
        .expect("tick");
    let needle = format!("\"code\":\"{code}\",\"seq\":{seq},");
    check!(
        tool,
        tool.wait_for(WAIT, |out, _| out.iter().any(|l| l.contains(&needle))),
        "{code} tick {seq} not on stdout"
    );
}

#[test]
fn stats_lines_name_each_connection() {
    let sim = sim(5.0);
    let tool = start_two(&sim, &["--stats", "1"]);
    let both = tool.wait_for(SLOW, |_, err| {
        err.lines().any(|l| {
            l.contains("stats: ")
                && l.contains("endpoint#1 connected; last message")
                && l.contains("endpoint#2 connected; last message")
                && l.matches("1 trade and 0 depth symbols").count() == 2
        })
    });
    check!(tool, both, "no stats line with both connections");
}

/// A connection left with nothing to carry closes after `--idle-close` (cleanly,
/// with a close frame) while the other streams on, and a connection opens
/// again when a symbol comes for it.
#[test]
fn a_connection_left_with_nothing_closes_after_idle_close_and_opens_again() {
    let sim = sim(5.0);
    // The rule itself is the session's `idle_too_long`; a short
    // --idle-close shows the binary keeps to it end to end.
    let idle_close = Duration::from_secs(3);
    let mut tool = two_streaming(&sim, &["--idle-close", "3"]);
    let st = sim.state();
    let idle = carrier(&st, "TSLA.US").expect("TSLA's connection").id;
    let removed = Instant::now();
    tool.send("-NASDAQ:TSLA\n");

    check!(
        tool,
        tool.wait_for(idle_close + WAIT, |_, err| err
            .contains("carried nothing for 3 s: closed the connection")),
        "no idle close"
    );
    let closed = sim.wait_until(WAIT, |s| s.conn(idle).is_some_and(|c| c.closed));
    check!(tool, closed, "{:?}", sim.state().connections);
    let st = sim.state();
    let rec = st.conn(idle).expect("the idle connection");
    check!(
        tool,
        rec.cause == Some(CloseCause::ClientClose),
        "{:?}",
        rec.cause
    );
    let after = rec.closed_at.expect("closed_at").duration_since(removed);
    check!(
        tool,
        after >= idle_close,
        "closed {after:?} after the removal"
    );
    let aapl_before = lines_of(&tool.stdout(), "AAPL.US");
    check!(
        tool,
        tool.wait_for(WAIT, |out, _| lines_of(out, "AAPL.US") > aapl_before),
        "AAPL stopped streaming"
    );

    let tsla_before = lines_of(&tool.stdout(), "TSLA.US");
    tool.send("+NASDAQ:TSLA\n");
    let reopened = sim.wait_until(SLOW, |s| {
        s.open_connections()
            .iter()
            .any(|c| c.id > idle && c.trade_codes == ["TSLA.US"])
    });
    check!(tool, reopened, "{:?}", sim.state().connections);
    check!(
        tool,
        tool.wait_for(WAIT, |out, _| lines_of(out, "TSLA.US") > tsla_before),
        "TSLA did not stream again"
    );
}
