//! End-to-end tests: the real binary against the simulated AllTick server
//! on 127.0.0.1, asserting on what reaches stdout/stderr and on the wire.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use alltick_stream::sim::{Reject, SimConfig, Simulator};
use alltick_stream::wire::protocol::{CMD_CANCEL, CMD_HEARTBEAT, CMD_SUB_TRADES};

use crate::util::{
    self, TOKEN, TempDir, Tool, WAIT, acked_on, acked_set, assert_ordered, json_lines, sim, start,
    start_sim, stop, unwritten, wait_for_set,
};

/// The code sets of every trade-subscription request (22004) and cancel (as
/// an empty set), in arrival order.
fn subscription_sets(sim: &Simulator) -> Vec<Vec<String>> {
    sim.state()
        .requests
        .iter()
        .filter(|r| r.cmd_id == CMD_SUB_TRADES || r.cmd_id == CMD_CANCEL)
        .map(|r| r.codes())
        .collect()
}

#[test]
fn demo_streams_both_symbols_as_json_that_jq_filters() {
    if !util::require("jq") {
        return;
    }
    let mut tool = Tool::start(&["--demo", "NASDAQ:AAPL", "NASDAQ:TSLA"], None);
    let both = tool.wait_for(WAIT, |out, _| {
        out.iter().any(|l| l.contains("\"NASDAQ:AAPL\""))
            && out.iter().any(|l| l.contains("\"NASDAQ:TSLA\""))
    });
    check!(tool, both, "no trades for both symbols");
    stop(&mut tool);

    let lines = json_lines(&tool);
    for v in &lines {
        check!(tool, v["type"] == "trade");
        check!(tool, v["price"].is_number() && v["volume"].is_number());
        check!(tool, v["seq"].is_u64() && v["time"].is_u64());
        let code = v["code"].as_str().unwrap_or("");
        check!(tool, code == "AAPL.US" || code == "TSLA.US", "code {code}");
    }
    // Real jq as a consumer.
    let out = util::jq(
        &["-c", "select(.symbol == \"NASDAQ:TSLA\") | .code"],
        &(tool.stdout().join("\n") + "\n"),
    );
    check!(tool, out.status.success(), "jq failed");
    let jq_lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    let tsla = lines
        .iter()
        .filter(|v| v["symbol"] == "NASDAQ:TSLA")
        .count();
    check!(tool, !jq_lines.is_empty() && jq_lines.len() == tsla);
    check!(tool, jq_lines.iter().all(|l| l == "\"TSLA.US\""));
}

#[test]
fn stdin_changes_send_the_complete_set_and_cancel_when_empty() {
    let sim = sim(20.0);
    let mut tool = start(&sim, &["NASDAQ:AAPL"]);
    check!(tool, wait_for_set(&sim, &["AAPL.US"]), "initial set");
    tool.send("+NASDAQ:TSLA NYSE:IBM\n");
    check!(
        tool,
        wait_for_set(&sim, &["AAPL.US", "TSLA.US", "IBM.US"]),
        "after add"
    );
    // Same subscription by its other spelling: a note, nothing sent.
    tool.send("+AAPL.US\n-NASDAQ:AAPL\n");
    check!(
        tool,
        wait_for_set(&sim, &["TSLA.US", "IBM.US"]),
        "after remove"
    );
    check!(tool, tool.wait_stderr("AAPL.US is already subscribed"));
    // Output carries the first spelling.
    check!(
        tool,
        tool.wait_for(WAIT, |out, _| out
            .iter()
            .any(|l| l.contains("\"symbol\":\"NYSE:IBM\"")))
    );
    tool.send("-TSLA.US,IBM.US\n");
    let cancelled = sim.wait_until(WAIT, |s| {
        s.requests
            .iter()
            .any(|r| r.cmd_id == CMD_CANCEL && r.data["cancel_type"] == 2 && r.ret == 200)
    });
    check!(tool, cancelled, "no 22006 cancel_type 2");
    tool.send("-NYSE:IBM\n");
    check!(tool, tool.wait_stderr("NYSE:IBM is not subscribed"));

    let sets = subscription_sets(&sim);
    let st = sim.state();
    for r in st.requests.iter().filter(|r| r.cmd_id == CMD_SUB_TRADES) {
        check!(
            tool,
            !r.codes().is_empty(),
            "an empty 22004 was sent: {}",
            r.raw
        );
    }
    check!(
        tool,
        sets.last().is_some_and(|s| s.is_empty()),
        "last request is not the cancel: {sets:?}"
    );
    // Every request has a fresh seq_id and trace.
    let ids: HashSet<_> = st.requests.iter().map(|r| r.seq_id).collect();
    let traces: HashSet<_> = st.requests.iter().map(|r| r.trace.clone()).collect();
    check!(
        tool,
        ids.len() == st.requests.len() && traces.len() == st.requests.len()
    );
    check!(
        tool,
        st.requests.iter().all(|r| r.ret != 605),
        "a request broke the rate limit"
    );
}

#[test]
fn a_burst_of_stdin_changes_is_coalesced_and_paced() {
    let sim = sim(0.0);
    let mut tool = start(&sim, &["NASDAQ:AAPL"]);
    check!(tool, wait_for_set(&sim, &["AAPL.US"]));
    let before = sim.state().requests.len();
    let started = Instant::now();
    let mut burst = String::new();
    for i in 0..500 {
        burst.push_str(&format!("+T{i}.US\n"));
    }
    for i in 0..499 {
        burst.push_str(&format!("-T{i}.US\n"));
    }
    tool.send(&burst);
    check!(
        tool,
        wait_for_set(&sim, &["AAPL.US", "T499.US"]),
        "final set never sent"
    );
    let elapsed = started.elapsed();
    let st = sim.state();
    let new: Vec<_> = st.requests[before..].iter().collect();
    let subs = new.iter().filter(|r| r.cmd_id == CMD_SUB_TRADES).count();
    // At most one request per 1.1 s on our clock, heartbeats included.
    let allowed = (elapsed.as_secs_f64() / 1.0).ceil() as usize + 1;
    check!(
        tool,
        subs <= allowed,
        "{subs} subscription requests in {elapsed:?}"
    );
    check!(tool, subs <= 10, "a 999-line burst took {subs} requests");
    for pair in st.requests.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        check!(
            tool,
            gap >= Duration::from_millis(900),
            "requests {gap:?} apart"
        );
    }
    check!(
        tool,
        st.requests.iter().all(|r| r.ret == 200),
        "a request was refused"
    );
}

#[test]
fn bad_stdin_lines_are_reported_by_line_number_and_never_sent() {
    let sim = sim(0.0);
    let mut tool = start(
        &sim,
        &["--heartbeat", "1", "--stale-after", "3", "NASDAQ:AAPL"],
    );
    check!(tool, wait_for_set(&sim, &["AAPL.US"]));
    tool.send("# comment\n\nNASDAQ:TSLA\n+FOO:BAR NASDAQ:TSLA\n+NASDAQ:MSFT\n");
    check!(tool, wait_for_set(&sim, &["AAPL.US", "MSFT.US"]));
    check!(tool, tool.wait_stderr("stdin:3: expected '+SYMBOL'"));
    check!(tool, tool.wait_stderr("stdin:4: bad symbol \"FOO:BAR\""));
    let st = sim.state();
    check!(
        tool,
        st.requests
            .iter()
            .all(|r| !r.raw.contains("TSLA") && !r.raw.contains("FOO"))
    );
    // EOF on stdin ends commands, not the stream.
    tool.close_stdin();
    check!(tool, tool.wait_stderr("connected to"));
    let hb_before = sim.state().requests_with_cmd(CMD_HEARTBEAT).len();
    let still = sim.wait_until(WAIT, |s| {
        s.requests_with_cmd(CMD_HEARTBEAT).len() > hb_before
    });
    check!(tool, still, "the session stopped after stdin EOF");
}

#[test]
fn heartbeats_arrive_at_the_configured_interval() {
    let sim = sim(0.0);
    let tool = start(
        &sim,
        &["--heartbeat", "2", "--stale-after", "6", "NASDAQ:AAPL"],
    );
    let four = sim.wait_until(WAIT, |s| s.requests_with_cmd(CMD_HEARTBEAT).len() >= 4);
    check!(tool, four, "fewer than 4 heartbeats");
    let st = sim.state();
    let hbs = st.requests_with_cmd(CMD_HEARTBEAT);
    for pair in hbs.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at).as_secs_f64();
        check!(
            tool,
            (1.8..=3.5).contains(&gap),
            "heartbeats {gap:.2} s apart, want ~2"
        );
    }
    check!(
        tool,
        hbs.iter()
            .all(|r| r.ret == 200 && r.data == serde_json::json!({}))
    );
}

#[test]
fn reconnects_after_a_drop_and_resubscribes_the_full_set() {
    let sim = sim(20.0);
    let mut tool = start(&sim, &["NASDAQ:AAPL"]);
    tool.send("+NYSE:IBM\n");
    check!(tool, wait_for_set(&sim, &["AAPL.US", "IBM.US"]));
    check!(tool, tool.wait_for(WAIT, |out, _| out.len() >= 4));
    sim.drop_connections();
    let resubscribed = acked_set(&sim, 2, &["AAPL.US", "IBM.US"]);
    check!(
        tool,
        resubscribed,
        "no full resubscription on the new connection"
    );
    check!(tool, tool.wait_stderr("connection lost"));
    // Ticks resume: output carries ticks the simulator sent on connection 2.
    let on_second = sim.wait_until(WAIT, |s| s.ticks.iter().any(|t| t.conn >= 2));
    check!(tool, on_second);
    let seq2 = sim
        .state()
        .ticks
        .iter()
        .find(|t| t.conn >= 2)
        .map(|t| t.seq)
        .unwrap_or(0);
    check!(
        tool,
        tool.wait_for(WAIT, |out, _| out
            .iter()
            .any(|l| l.contains(&format!("\"seq\":{seq2},"))))
    );
    // Nothing twice, per code in order.
    assert_ordered(&tool, &json_lines(&tool));
}

#[test]
fn a_silent_server_is_detected_within_stale_after() {
    let sim = sim(5.0);
    let tool = start(
        &sim,
        &["--heartbeat", "1", "--stale-after", "3", "NASDAQ:AAPL"],
    );
    check!(tool, wait_for_set(&sim, &["AAPL.US"]));
    sim.set_silent(true);
    let silent_at = Instant::now();
    check!(
        tool,
        tool.wait_stderr("connection lost: nothing received for 3 s")
    );
    let detected = silent_at.elapsed();
    check!(
        tool,
        detected <= Duration::from_secs(8),
        "took {detected:?}"
    );
    sim.set_silent(false);
    let back = acked_on(&sim, 2, WAIT);
    check!(tool, back, "no reconnect after the silence");
}

#[test]
fn the_token_is_sent_but_never_printed() {
    let sim = sim(20.0);
    let mut tool = start(&sim, &["NASDAQ:AAPL"]);
    check!(tool, tool.wait_lines(3));
    // A failure path that prints the endpoint.
    sim.drop_connections();
    check!(tool, tool.wait_stderr("connection lost"));
    // Accepted: the server has read the new connection's handshake, token
    // included (a connection shows in the state from its TCP accept on).
    let reconnected = sim.wait_until(WAIT, |s| {
        s.connections.len() >= 2 && s.connections[1].accepted
    });
    check!(tool, reconnected, "no second connection accepted");
    tool.signal("TERM");
    check!(tool, tool.wait_exit(WAIT).is_some());
    let st = sim.state();
    check!(
        tool,
        st.connections
            .iter()
            .all(|c| c.token.as_deref() == Some(TOKEN)),
        "token did not reach the server"
    );
    let everything = tool.stdout().join("\n") + &tool.stderr();
    check!(
        tool,
        !everything.contains("SECRET-9f8e"),
        "the token was printed"
    );
}

/// A one-letter token is in nearly every word: it is hidden where it can
/// stand (a URL's `token=`), and every other line reads as written. One
/// symbol is "1 symbol".
#[test]
fn a_one_letter_token_leaves_lines_unmangled_and_one_symbol_is_singular() {
    let sim = start_sim(SimConfig {
        ticks_per_sec: 20.0,
        expected_token: Some("T".into()),
        ..SimConfig::default()
    });
    let mut tool = Tool::start(&["--url", &sim.url(), "NASDAQ:TSLA"], Some("T"));
    check!(tool, tool.wait_lines(2));
    sim.drop_connections();
    check!(tool, tool.wait_stderr("connection lost"));
    check!(tool, sim.wait_until(WAIT, |s| s.connections.len() >= 2));
    check!(
        tool,
        tool.wait_for(WAIT, |_, err| err.matches("subscribed to").count() >= 2)
    );
    stop(&mut tool);
    let err = tool.stderr();
    check!(
        tool,
        sim.state()
            .connections
            .iter()
            .all(|c| c.token.as_deref() == Some("T")),
        "the token did not reach the server"
    );
    check!(
        tool,
        err.contains("subscribed to 1 symbol (+NASDAQ:TSLA)"),
        "{err}"
    );
    check!(
        tool,
        err.contains(&format!("connected to {}", sim.url())),
        "{err}"
    );
    check!(
        tool,
        !err.contains("***") && !err.contains("1 symbols"),
        "{err}"
    );
    check!(tool, !err.contains("token=T"), "{err}");
}

fn rejected_token_stops_the_tool(reject: Reject) {
    let sim = start_sim(SimConfig {
        expected_token: Some("the-right-one".into()),
        reject,
        ..SimConfig::default()
    });
    let mut tool = start(&sim, &["NASDAQ:AAPL"]);
    let status = tool.wait_exit(WAIT);
    check!(
        tool,
        status.is_some_and(|s| !s.success()),
        "status {status:?}"
    );
    check!(tool, tool.stderr().contains("refused the token"));
    check!(tool, !tool.stderr().contains("SECRET-9f8e"));
    check!(
        tool,
        sim.state().connections.len() == 1,
        "it tried to connect again"
    );
}

#[test]
fn http_401_at_the_handshake_is_fatal_without_retry() {
    rejected_token_stops_the_tool(Reject::Http401);
}

#[test]
fn ret_401_is_fatal_without_retry() {
    rejected_token_stops_the_tool(Reject::Ret401);
}

#[test]
fn sigint_writes_every_tick_sent_before_the_close_frame() {
    let sim = sim(200.0);
    let mut tool = start(&sim, &["NASDAQ:AAPL", "NASDAQ:TSLA"]);
    check!(tool, tool.wait_lines(100));
    stop(&mut tool);
    let st = sim.state();
    check!(
        tool,
        st.connections[0].close_frame_received,
        "no close frame reached the server"
    );
    let lines = json_lines(&tool);
    let missing = unwritten(&lines, &st.ticks);
    check!(
        tool,
        missing.is_empty(),
        "{} of {} sent ticks missing from stdout",
        missing.len(),
        st.ticks.len()
    );
    check!(
        tool,
        lines.len() == st.ticks.len(),
        "more lines than ticks sent"
    );
}

#[test]
fn closed_stdout_ends_quietly_with_status_zero() {
    let script = format!(
        "'{}' --demo NASDAQ:AAPL NASDAQ:TSLA </dev/null | head -n 3; echo \"status=${{PIPESTATUS[0]}}\" >&2",
        util::bin()
    );
    let out = Command::new("timeout")
        .args(["60", "bash", "-c", &script])
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout.lines().count(),
        3,
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("status=0"), "stderr: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("cannot write"),
        "stderr: {stderr}"
    );
}

#[test]
fn no_token_and_bad_arguments_exit_2() {
    let mut tool = Tool::start(&["NASDAQ:AAPL"], None);
    let s = tool.wait_exit(WAIT);
    check!(tool, s.and_then(|s| s.code()) == Some(2));
    check!(tool, tool.stderr().contains("ALLTICK_TOKEN"));
    let mut tool = Tool::start(&["--heartbeat", "10", "--stale-after", "5", "--demo"], None);
    let s = tool.wait_exit(WAIT);
    check!(tool, s.and_then(|s| s.code()) == Some(2));
    check!(tool, tool.stderr().contains("must exceed"));
}

#[test]
fn token_file_is_read_and_trimmed() {
    let sim = sim(10.0);
    let dir = TempDir::new("token");
    let file = dir.path().join("token");
    std::fs::write(&file, format!("  {TOKEN}\n")).unwrap();
    let url = sim.url();
    let path = file.to_string_lossy().to_string();
    let tool = Tool::start(&["--url", &url, "--token-file", &path, "NASDAQ:AAPL"], None);
    check!(tool, tool.wait_lines(1));
    check!(
        tool,
        sim.state().connections[0].token.as_deref() == Some(TOKEN)
    );
}

#[test]
fn an_absurd_stdin_line_is_skipped_without_stopping_commands() {
    let sim = sim(0.0);
    let mut tool = start(&sim, &["NASDAQ:AAPL"]);
    check!(tool, wait_for_set(&sim, &["AAPL.US"]));
    // 16 MiB without a newline, then a good line.
    let chunk = "+".repeat(1 << 20);
    for _ in 0..16 {
        tool.send(&chunk);
    }
    tool.send("\n+NASDAQ:MSFT\n");
    check!(tool, tool.wait_stderr("stdin:1: line longer than"));
    check!(tool, wait_for_set(&sim, &["AAPL.US", "MSFT.US"]));
}

#[test]
fn question_mark_prints_wanted_and_acknowledged_sets() {
    let sim = sim(0.0);
    let mut tool = start(&sim, &["NASDAQ:AAPL", "NYSE:IBM"]);
    check!(tool, wait_for_set(&sim, &["AAPL.US", "IBM.US"]));
    // The acknowledgement reaches the tool right after the simulator records it.
    check!(tool, tool.wait_stderr("subscribed to 2 symbols"));
    tool.send("+NASDAQ:TSLA\n?\n");
    check!(
        tool,
        tool.wait_stderr(
            "wanted 3 trade symbols: NASDAQ:AAPL NYSE:IBM NASDAQ:TSLA; acknowledged by the server 2: NASDAQ:AAPL NYSE:IBM"
        )
    );
    // Each connection answers with its name, state and URL.
    check!(
        tool,
        tool.stderr()
            .lines()
            .any(|l| l.contains("endpoint#1: stdin:2: connected to ws://")
                && l.contains("wanted 3 trade symbols"))
    );
    check!(
        tool,
        sim.state().requests.iter().all(|r| !r.raw.contains('?'))
    );
}

#[test]
fn stats_lines_report_rates_drops_and_symbols() {
    let sim = sim(20.0);
    let tool = start(&sim, &["--stats", "1", "NASDAQ:AAPL", "NASDAQ:TSLA"]);
    let line = tool.wait_for(WAIT, |_, err| {
        err.lines().any(|l| {
            l.contains("stats: in ") && !l.contains("stats: in 0/s") && l.contains("connected;")
        })
    });
    check!(tool, line, "no stats line with a nonzero rate");
    let err = tool.stderr();
    let l = err.lines().rfind(|l| l.contains("stats: ")).unwrap_or("");
    for part in [
        "out ",
        "queue ",
        "dropped 0 invalid",
        "0 reconnects",
        "last message",
        "2 trade and 0 depth symbols",
    ] {
        check!(tool, l.contains(part), "{part:?} missing from {l:?}");
    }
}

#[test]
fn help_lists_every_flag_with_its_default_and_version_prints() {
    let out = Command::new(util::bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--market",
        "--url",
        "--token-file",
        "--heartbeat",
        "--stale-after",
        "--connect-timeout",
        "--max-symbols",
        "--connections",
        "--plan",
        "--stock-url",
        "--forex-url",
        "--queue",
        "--stats",
        "--demo",
        "--help",
        "--version",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    for default in [
        "[default: by code form]",
        "[default: 1]",
        "[default: 10]",
        "[default: 30]",
        "[default: 16384]",
    ] {
        assert!(help.contains(default), "{default} missing from --help");
    }
    let out = Command::new(util::bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("alltick-stream 0."));
}
