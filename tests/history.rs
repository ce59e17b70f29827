//! `alltick-stream history` against the simulator's HTTP K-line API: the
//! bars compared as text with the simulator's own, each reading of
//! AllTick's docs on and off, `--output` kept and never fetched twice,
//! `kill -9` and a rerun, pacing under the plan's limits, and every error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alltick_stream::sim::{HttpFault, HttpLimitAnswer, KlineReadings, SimConfig, Simulator};
use alltick_stream::wire::kline::{KlineInterval, RawKline};
use alltick_stream::wire::plan;

use crate::util::{TOKEN, TempDir, Tool, WAIT, history_argv, start_sim, strs};

const MINUTE: u64 = 60_000;

/// A simulator with the HTTP limits of `plan` (none: `None`).
fn http_sim(plan: Option<&str>, readings: KlineReadings) -> Simulator {
    start_sim(SimConfig {
        expected_token: Some(TOKEN.into()),
        http_limits: plan.map(|p| plan::find(p).unwrap().http),
        kline_readings: readings,
        ..SimConfig::default()
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The start of the minute `n` minutes before the current one.
fn minutes_ago(n: u64) -> u64 {
    let now = now_ms();
    now - now % MINUTE - n * MINUTE
}

/// Run `history` against `sim` with `args`; the finished tool.
fn history(sim: &Simulator, args: &[&str]) -> Tool {
    let argv = history_argv(sim, args);
    let mut tool = Tool::start(&strs(&argv), Some(TOKEN));
    let status = tool.wait_exit(Duration::from_secs(60));
    check!(tool, status.is_some(), "history did not finish");
    check!(
        tool,
        !tool.stderr().contains(TOKEN),
        "the token was printed"
    );
    tool
}

fn status(tool: &mut Tool) -> Option<i32> {
    tool.wait_exit(WAIT).and_then(|s| s.code())
}

/// The line the tool writes for the simulator's bar `k`.
fn line(symbol: &str, code: &str, interval: KlineInterval, k: &RawKline) -> String {
    let start: u64 = k.timestamp.parse::<u64>().unwrap() * 1000;
    format!(
        r#"{{"type":"kline","symbol":"{symbol}","code":"{code}","interval":"{}","start":{start},"end":{},"open":{},"high":{},"low":{},"close":{},"volume":{},"turnover":{},"trades":null}}"#,
        interval.name(),
        interval.end(start),
        k.open,
        k.high,
        k.low,
        k.close,
        k.volume,
        k.turnover
    )
}

/// The simulator's own bars of `code` starting in `from ..= to`, as lines.
fn expected(sim: &Simulator, symbol: &str, code: &str, from: u64, to: u64) -> Vec<String> {
    let m1 = KlineInterval::M1;
    sim.kline_bars(code, m1, from, to)
        .iter()
        .map(|k| line(symbol, code, m1, k))
        .collect()
}

/// The lines of `code` among `lines`.
fn of(lines: &[String], code: &str) -> Vec<String> {
    let key = format!(r#""code":"{code}""#);
    lines.iter().filter(|l| l.contains(&key)).cloned().collect()
}

/// Every line of every file under `dir`, files in name order.
fn files(dir: &Path) -> Vec<String> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let mut lines = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    lines
}

/// `lines` sorted by their `start` (a stable sort keeps ties in order).
fn by_start(mut lines: Vec<String>) -> Vec<String> {
    let start = |l: &String| -> u64 {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["start"].as_u64().unwrap()
    };
    lines.sort_by_key(start);
    lines
}

#[test]
fn bars_equal_the_simulators_as_text_under_every_reading() {
    let readings = [
        KlineReadings::default(),
        KlineReadings {
            newest_first: true,
            ..KlineReadings::default()
        },
        KlineReadings {
            repeat_newest: 3,
            ..KlineReadings::default()
        },
        KlineReadings {
            page_cap: Some(137),
            forming_last: true,
            ..KlineReadings::default()
        },
        KlineReadings {
            newest_first: true,
            repeat_newest: 2,
            forming_last: true,
            page_cap: Some(200),
            ret_202: true,
            ..KlineReadings::default()
        },
        // `kline_timestamp_end` exclusive; timestamps in ms and every
        // value a JSON number, where the docs show seconds and strings.
        KlineReadings {
            end_exclusive: true,
            page_cap: Some(300),
            ..KlineReadings::default()
        },
        KlineReadings {
            timestamp_ms: true,
            numbers: true,
            page_cap: Some(300),
            ..KlineReadings::default()
        },
    ];
    let (from, to) = (minutes_ago(700), minutes_ago(2));
    for r in readings {
        let sim = http_sim(Some("professional"), r);
        let (f, t) = (from.to_string(), to.to_string());
        let mut tool = history(
            &sim,
            &[
                "--plan",
                "professional",
                "--from",
                &f,
                "--to",
                &t,
                "EURUSD",
                "NASDAQ:AAPL",
            ],
        );
        check!(tool, status(&mut tool) == Some(0), "{r:?}");
        let out = tool.stdout();
        let eur = expected(&sim, "EURUSD", "EURUSD", from, to);
        check!(tool, eur.len() == 699, "{} bars expected", eur.len());
        check!(tool, of(&out, "EURUSD") == eur, "{r:?}: EURUSD differs");
        // A stock's latest bars only: the 500 (or the cap) newest up to --to.
        let aapl = of(&out, "AAPL.US");
        let all = expected(&sim, "NASDAQ:AAPL", "AAPL.US", from, to);
        check!(
            tool,
            !aapl.is_empty() && all.ends_with(&aapl),
            "{r:?}: AAPL differs"
        );
        check!(tool, tool.stderr().contains("reached back to"), "{r:?}");
        check!(
            tool,
            sim.state().http_over_limit == 0,
            "{r:?}: over the limit"
        );
    }
}

#[test]
fn a_forming_bar_is_never_written_and_is_said() {
    let sim = http_sim(
        None,
        KlineReadings {
            forming_last: true,
            newest_first: true,
            ..KlineReadings::default()
        },
    );
    let mut tool = history(&sim, &["--plan", "professional", "BTCUSDT"]);
    let done = now_ms();
    check!(tool, status(&mut tool) == Some(0), "exit");
    let out = tool.stdout();
    check!(tool, out.len() >= 400, "{} bars", out.len());
    let last: serde_json::Value = serde_json::from_str(out.last().unwrap()).unwrap();
    check!(
        tool,
        last["end"].as_u64().unwrap() <= done,
        "a forming bar was written"
    );
    check!(tool, tool.stderr().contains("still forming"), "not said");
    check!(tool, by_start(out.clone()) == out, "not in time order");
}

#[test]
fn a_second_run_with_output_asks_only_for_what_is_new() {
    let dir = TempDir::new("history-again");
    let sim = http_sim(Some("professional"), KlineReadings::default());
    let pattern = dir.path().join("%Y%m%d-%H.jsonl");
    let pattern = pattern.to_str().unwrap();
    let from = minutes_ago(1200);
    let first = minutes_ago(30).to_string();
    let common = ["--plan", "professional", "--output", pattern];
    let from_s = from.to_string();
    let run = |to: &str| {
        let mut args = common.to_vec();
        args.extend(["--from", &from_s, "--to", to, "XAUUSD", "HKEX:700"]);
        let mut tool = history(&sim, &args);
        check!(tool, status(&mut tool) == Some(0), "exit");
        tool
    };
    run(&first);
    let after_first = sim.state().http_requests.len();
    // 1171 forex bars at 500 a page: three pages (the third reaches --from);
    // one request for the stock.
    assert_eq!(after_first, 3 + 1);
    let second = minutes_ago(3);
    let tool = run(&second.to_string());
    let requests = sim.state().http_requests;
    let new: Vec<_> = requests[after_first..].iter().collect();
    let codes: Vec<_> = new.iter().map(|r| r.code.clone().unwrap()).collect();
    check!(
        tool,
        codes == ["XAUUSD", "700.HK"],
        "asked again for {codes:?}"
    );
    check!(
        tool,
        new[0].kline_timestamp_end == Some(second / 1000 + 1),
        "{:?}",
        new[0]
    );
    // Nothing new: no request at all for the forex code.
    run(&second.to_string());
    let third = sim.state().http_requests.len() - requests.len();
    assert_eq!(third, 1, "only the stock's latest bars are asked for");
    let held = files(dir.path());
    let gold = expected(&sim, "XAUUSD", "XAUUSD", from, second);
    assert_eq!(by_start(of(&held, "XAUUSD")), gold);
    let hk = of(&held, "700.HK");
    assert_eq!(by_start(hk.clone()), hk, "700.HK out of order");
    let mut seen = std::collections::HashSet::new();
    assert!(held.iter().all(|l| seen.insert(l.clone())), "a bar twice");
}

#[test]
fn kill_9_in_the_middle_and_a_rerun_write_every_bar_once() {
    let dir = TempDir::new("history-kill");
    let sim = http_sim(
        Some("professional"),
        KlineReadings {
            page_cap: Some(137),
            ..KlineReadings::default()
        },
    );
    let pattern = dir.path().join("%Y-%m-%d-%H.jsonl");
    let pattern = pattern.to_str().unwrap().to_string();
    let (from, to) = (minutes_ago(3000).to_string(), minutes_ago(2).to_string());
    let argv = history_argv(
        &sim,
        &[
            "--plan",
            "professional",
            "--output",
            &pattern,
            "--from",
            &from,
            "--to",
            &to,
            "EURUSD",
            "GBPUSD",
        ],
    );
    let args = strs(&argv);
    let mut tool = Tool::start(&args, Some(TOKEN));
    let midway = tool.poll(WAIT, || sim.state().http_requests.len() >= 12);
    check!(tool, midway, "no requests");
    tool.signal("KILL");
    let _ = tool.wait_exit(WAIT);
    let mut again = Tool::start(&args, Some(TOKEN));
    check!(again, status(&mut again) == Some(0), "rerun");
    let held = files(dir.path());
    for code in ["EURUSD", "GBPUSD"] {
        let want = expected(&sim, code, code, from.parse().unwrap(), to.parse().unwrap());
        let got = by_start(of(&held, code));
        check!(
            again,
            got.len() == want.len(),
            "{code}: {} of {}",
            got.len(),
            want.len()
        );
        check!(again, got == want, "{code}: bars differ");
    }
}

#[test]
fn pacing_keeps_to_basic_without_a_refusal() {
    let basic = http_sim(
        Some("basic"),
        KlineReadings {
            page_cap: Some(300),
            ..KlineReadings::default()
        },
    );
    let from = minutes_ago(700).to_string();
    let mut tool = history(
        &basic,
        &["--plan", "basic", "--from", &from, "EURUSD", "USDJPY"],
    );
    check!(tool, status(&mut tool) == Some(0), "basic");
    let state = basic.state();
    check!(
        tool,
        state.http_requests.len() >= 6,
        "{} requests",
        state.http_requests.len()
    );
    check!(tool, state.http_over_limit == 0, "basic: over the limit");
}

#[test]
fn pacing_keeps_to_free_without_a_refusal() {
    // One request each 10 s; two codes, one page each.
    let free = http_sim(Some("free"), KlineReadings::default());
    let mut tool = history(&free, &["EURUSD", "NASDAQ:TSLA"]);
    check!(tool, status(&mut tool) == Some(0), "free");
    let state = free.state();
    check!(
        tool,
        state.http_requests.len() == 2,
        "{:?}",
        state.http_requests.len()
    );
    check!(tool, state.http_over_limit == 0, "free: over the limit");
    let gap = state.http_requests[1].at - state.http_requests[0].at;
    check!(tool, gap >= Duration::from_secs(10), "{gap:?} apart");
}

#[test]
fn http_429_is_waited_out_and_the_same_request_sent_again() {
    refusals_for_rate_are_waited_out(HttpLimitAnswer::Status429);
}

#[test]
fn ret_605_is_waited_out_and_the_same_request_sent_again() {
    refusals_for_rate_are_waited_out(HttpLimitAnswer::Ret605);
}

fn refusals_for_rate_are_waited_out(answer: HttpLimitAnswer) {
    {
        // The server keeps to basic; the tool is told premium.
        let sim = http_sim(Some("basic"), KlineReadings::default());
        sim.set_http_limit_answer(answer);
        let from = minutes_ago(1100);
        let to = minutes_ago(2);
        let (f, t) = (from.to_string(), to.to_string());
        let mut tool = history(
            &sim,
            &["--plan", "premium", "--from", &f, "--to", &t, "ETHUSDT"],
        );
        check!(tool, status(&mut tool) == Some(0), "{answer:?}");
        check!(
            tool,
            sim.state().http_over_limit > 0,
            "{answer:?}: never refused"
        );
        check!(
            tool,
            tool.stderr().contains("refused for rate"),
            "{answer:?}"
        );
        let want = expected(&sim, "ETHUSDT", "ETHUSDT", from, to);
        check!(tool, tool.stdout() == want, "{answer:?}: bars differ");
    }
}

#[test]
fn a_refused_token_exits_1_without_printing_it() {
    let sim = http_sim(None, KlineReadings::default());
    let wrong = "wrong-token-0123456789";
    let argv = history_argv(&sim, &["EURUSD"]);
    let mut tool = Tool::start(&strs(&argv), Some(wrong));
    check!(tool, status(&mut tool) == Some(1), "exit");
    check!(
        tool,
        tool.stderr().contains("token was refused"),
        "not said"
    );
    check!(
        tool,
        !tool.stderr().contains(wrong),
        "the token was printed"
    );
    check!(tool, tool.stdout().is_empty(), "lines written");
}

#[test]
fn a_refused_code_is_said_and_skipped_and_the_others_complete() {
    let sim = http_sim(Some("professional"), KlineReadings::default());
    sim.refuse_kline_codes(&["XAGUSD"], 604);
    let (from, to) = (minutes_ago(600), minutes_ago(2));
    let (f, t) = (from.to_string(), to.to_string());
    let mut tool = history(
        &sim,
        &[
            "--plan",
            "professional",
            "--from",
            &f,
            "--to",
            &t,
            "EURUSD",
            "XAGUSD",
            "GBPUSD",
        ],
    );
    check!(tool, status(&mut tool) == Some(3), "exit");
    let err = tool.stderr();
    check!(
        tool,
        err.contains("XAGUSD: failed") && err.contains("604"),
        "not said"
    );
    let out = tool.stdout();
    for code in ["EURUSD", "GBPUSD"] {
        check!(
            tool,
            of(&out, code) == expected(&sim, code, code, from, to),
            "{code}"
        );
    }
    check!(
        tool,
        of(&out, "XAGUSD").is_empty(),
        "a refused code has bars"
    );
}

#[test]
fn failures_are_retried_with_backoff() {
    let sim = http_sim(None, KlineReadings::default());
    sim.fail_http_next(1, HttpFault::Status(502));
    sim.fail_http_next(1, HttpFault::NotJson);
    sim.fail_http_next(1, HttpFault::Hang(Duration::from_secs(30)));
    let to = minutes_ago(2).to_string();
    let mut tool = history(
        &sim,
        &[
            "--plan",
            "professional",
            "--connect-timeout",
            "1",
            "--to",
            &to,
            "EURUSD",
        ],
    );
    check!(tool, status(&mut tool) == Some(0), "exit");
    let err = tool.stderr();
    check!(
        tool,
        err.contains("HTTP 502") && err.contains("not JSON"),
        "not said"
    );
    check!(
        tool,
        tool.stdout().len() == 500,
        "{} bars",
        tool.stdout().len()
    );
}

#[test]
fn six_failures_in_a_row_fail_the_code_and_the_next_is_served() {
    let sim = http_sim(None, KlineReadings::default());
    let to = minutes_ago(2).to_string();
    sim.fail_http_next(6, HttpFault::Status(503));
    let mut tool = history(
        &sim,
        &["--plan", "professional", "--to", &to, "EURUSD", "BTCUSDT"],
    );
    check!(tool, status(&mut tool) == Some(3), "exit");
    check!(tool, tool.stderr().contains("after 6 tries"), "not said");
    check!(
        tool,
        of(&tool.stdout(), "BTCUSDT").len() == 500,
        "the next code"
    );
}

/// A one-request HTTP server answering `body` with `Date` at `date`.
fn canned(body: String, date: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut head = String::new();
        while reader.read_line(&mut head).unwrap() > 2 {
            head.clear();
        }
        let answer = format!(
            "HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(answer.as_bytes()).unwrap();
        let _ = s.read(&mut [0; 1]);
    });
    format!("http://{addr}/quote-b-api")
}

#[test]
fn bars_that_break_a_rule_are_dropped_counted_and_said() {
    // 2026-12-01T00:00:00Z and the minutes after it.
    let t0 = 1_796_083_200u64;
    let bar = |ts: u64, o: &str, h: &str, l: &str, c: &str| {
        format!(
            r#"{{"timestamp":"{ts}","open_price":"{o}","close_price":"{c}","high_price":"{h}","low_price":"{l}","volume":"5","turnover":"5.50"}}"#
        )
    };
    let list = [
        bar(t0, "1.10", "1.20", "1.00", "1.15"),
        bar(t0 + 60, "1.10", "1.00", "1.20", "1.15"),
        bar(t0 + 150, "1.10", "1.20", "1.00", "1.15"),
        bar(t0 + 180, "1e1", "1.20", "1.00", "1.15"),
        bar(t0 + 240, "1.100", "1.2", "1.0", "1.15"),
    ];
    let body = format!(
        r#"{{"ret":200,"msg":"ok","data":{{"code":"EURUSD","kline_type":1,"kline_list":[{}]}}}}"#,
        list.join(",")
    );
    let base = canned(body, "Tue, 01 Dec 2026 01:00:00 GMT");
    let mut tool = Tool::start(
        &[
            "history",
            "--forex-api",
            &base,
            "--plan",
            "professional",
            "EURUSD",
        ],
        Some(TOKEN),
    );
    check!(tool, status(&mut tool) == Some(0), "exit");
    let out = tool.stdout();
    check!(tool, out.len() == 2, "{out:?}");
    check!(
        tool,
        out[1].contains(r#""open":1.100,"high":1.2,"low":1.0"#),
        "digits: {}",
        out[1]
    );
    let err = tool.stderr();
    for why in [
        "high 1.00 is below low 1.20",
        "off the interval's grid",
        "open_price \"1e1\"",
    ] {
        check!(tool, err.contains(why), "{why} not said");
    }
    check!(tool, err.contains("3 broken bars dropped"), "not counted");
}

#[test]
fn bad_requests_exit_2_with_the_valid_forms() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["history", "--bars", "2m", "EURUSD"],
            "valid: 1m, 5m, 15m, 30m, 1h, 2h, 4h, 1d, 1w, 1M",
        ),
        (
            &["history", "--bars", "4h", "NASDAQ:AAPL", "EURUSD"],
            "no 4h K-lines for stocks (NASDAQ:AAPL)",
        ),
        (
            &[
                "history",
                "--from",
                "2026-12-02T00:00:00Z",
                "--to",
                "2026-12-01T00:00:00Z",
                "EURUSD",
            ],
            "is after --to",
        ),
        (&["history", "NASDAQ:"], "use EXCHANGE:TICKER"),
        (&["history"], "history needs at least one symbol"),
    ];
    for (args, says) in cases {
        let mut tool = Tool::start(args, Some(TOKEN));
        check!(tool, status(&mut tool) == Some(2), "{args:?}");
        check!(tool, tool.stderr().contains(says), "{args:?}: {says}");
    }
}

#[test]
fn history_demo_needs_no_token_and_no_network() {
    let mut tool = Tool::start(&["history", "--demo", "EURUSD", "NASDAQ:AAPL"], None);
    check!(tool, status(&mut tool) == Some(0), "exit");
    let out = tool.stdout();
    check!(
        tool,
        of(&out, "EURUSD").len() >= 400 && of(&out, "AAPL.US").len() >= 400,
        "bars"
    );
    check!(
        tool,
        out.iter().all(|l| l.starts_with(r#"{"type":"kline""#)),
        "not kline lines"
    );
}

#[test]
fn https_with_a_trusted_certificate_fetches() {
    if !crate::util::require("openssl") {
        return;
    }
    let dir = TempDir::new("history-tls");
    let (identity, ca) = alltick_stream::sim::test_certificate(dir.path()).unwrap();
    let sim = start_sim(SimConfig {
        expected_token: Some(TOKEN.into()),
        tls: Some(identity),
        ..SimConfig::default()
    });
    assert!(sim.http_base(false).starts_with("https://"));
    let ca = ca.to_string_lossy().to_string();
    let argv = history_argv(&sim, &["--plan", "professional", "EURUSD"]);
    let args = strs(&argv);
    let mut tool = Tool::start_env(&args, Some(TOKEN), &[("SSL_CERT_FILE", &ca)]);
    check!(tool, status(&mut tool) == Some(0), "exit");
    check!(tool, tool.stdout().len() >= 400, "bars over https");
}

#[test]
fn a_full_disk_keeps_whole_blocks_and_a_rerun_writes_the_rest_once() {
    if !crate::util::require("prlimit") {
        return;
    }
    let dir = TempDir::new("history-disk");
    let sim = http_sim(None, KlineReadings::default());
    let pattern = dir.path().join("%Y%m%d-%H.jsonl");
    let pattern = pattern.to_str().unwrap().to_string();
    let (from, to) = (minutes_ago(400), minutes_ago(2));
    let (f, t) = (from.to_string(), to.to_string());
    let argv = history_argv(
        &sim,
        &[
            "--plan",
            "professional",
            "--output",
            &pattern,
            "--from",
            &f,
            "--to",
            &t,
            "EURUSD",
            "GBPUSD",
        ],
    );
    let args = strs(&argv);
    // An hour of one code's minute bars is about 12 KiB: the second code's
    // block for a full hour goes past a 16 KiB file limit (EFBIG, as on a
    // full disk).
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "trap '' XFSZ; exec prlimit --fsize=16384:unlimited \"$@\"",
        "sh",
    ])
    .arg(crate::util::bin())
    .args(&args)
    .env("ALLTICK_TOKEN", TOKEN)
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut full = Tool::spawn(cmd);
    check!(full, status(&mut full) == Some(1), "exit");
    check!(
        full,
        full.stderr().contains("nothing of this block kept"),
        "not said"
    );
    for line in files(dir.path()) {
        check!(
            full,
            serde_json::from_str::<serde_json::Value>(&line).is_ok(),
            "torn: {line}"
        );
    }
    let mut again = Tool::start(&args, Some(TOKEN));
    check!(again, status(&mut again) == Some(0), "rerun");
    let held = files(dir.path());
    for code in ["EURUSD", "GBPUSD"] {
        let got = by_start(of(&held, code));
        check!(
            again,
            got == expected(&sim, code, code, from, to),
            "{code} differs"
        );
    }
}

#[test]
fn a_signal_stops_after_the_request_in_flight_and_keeps_no_partial_newer_bars() {
    let dir = TempDir::new("history-signal");
    let sim = http_sim(Some("basic"), KlineReadings::default());
    let pattern = dir.path().join("%Y%m%d.jsonl");
    let pattern = pattern.to_str().unwrap().to_string();
    let from = minutes_ago(4000);
    let (old_to, to) = (minutes_ago(3000), minutes_ago(2));
    let run = |plan: &str, to: u64| -> Tool {
        let (f, t) = (from.to_string(), to.to_string());
        let argv = history_argv(
            &sim,
            &[
                "--plan", plan, "--output", &pattern, "--from", &f, "--to", &t, "EURUSD",
            ],
        );
        let args = strs(&argv);
        Tool::start(&args, Some(TOKEN))
    };
    let mut first = run("basic", old_to);
    check!(first, status(&mut first) == Some(0), "first run");
    let before = files(dir.path());
    let asked = sim.state().http_requests.len();
    // The newer bars take six pages at one a second: stopped after the
    // first is answered (the server's count starts afresh, so the first
    // run's last request does not refuse it).
    sim.set_http_limits(Some(plan::find("basic").unwrap().http));
    let mut second = run("basic", to);
    let answered = || {
        sim.state().http_requests[asked..]
            .iter()
            .any(|r| r.bars > 0)
    };
    let one = second.poll(WAIT, answered);
    check!(second, one, "no request");
    second.signal("INT");
    check!(second, status(&mut second) == Some(4), "exit");
    check!(
        second,
        second.stderr().contains("stopped by a signal"),
        "not said"
    );
    check!(
        second,
        files(dir.path()) == before,
        "newer bars written in part"
    );
    sim.set_http_limits(None);
    let mut third = run("professional", to);
    check!(third, status(&mut third) == Some(0), "third run");
    let got = by_start(files(dir.path()));
    check!(
        third,
        got == expected(&sim, "EURUSD", "EURUSD", from, to),
        "bars differ"
    );
}

#[test]
fn weeks_and_months_end_by_the_calendar_and_csv_rows_say_kline() {
    let sim = start_sim(SimConfig {
        expected_token: Some(TOKEN.into()),
        history_start_ms: Some(0),
        ..SimConfig::default()
    });
    for (bars, interval) in [("1w", KlineInterval::W1), ("1M", KlineInterval::Mo1)] {
        let from = 1_735_689_600_000u64; // 2025-01-01
        let f = from.to_string();
        let mut tool = history(
            &sim,
            &[
                "--plan",
                "professional",
                "--bars",
                bars,
                "--from",
                &f,
                "XAUUSD",
            ],
        );
        check!(tool, status(&mut tool) == Some(0), "{bars}");
        let want: Vec<String> = sim
            .kline_bars("XAUUSD", interval, from, now_ms())
            .iter()
            .map(|k| line("XAUUSD", "XAUUSD", interval, k))
            .collect();
        check!(
            tool,
            want.len() > 10 && tool.stdout() == want,
            "{bars} differs"
        );
    }
    let mut tool = history(
        &sim,
        &[
            "--plan",
            "professional",
            "--bars",
            "1d",
            "--format",
            "csv",
            "--fields",
            "type,code,start,close,trades",
            "EURUSD",
        ],
    );
    check!(tool, status(&mut tool) == Some(0), "csv");
    let out = tool.stdout();
    check!(tool, out[0] == "type,code,start,close,trades", "{}", out[0]);
    check!(
        tool,
        out[1..]
            .iter()
            .all(|r| r.starts_with("kline,EURUSD,") && r.ends_with(',')),
        "{}",
        out[1]
    );
}

#[test]
fn a_torn_last_line_is_repaired_before_the_files_are_read() {
    let dir = TempDir::new("history-torn");
    let sim = http_sim(None, KlineReadings::default());
    let file = dir.path().join("bars.jsonl");
    let (from, to) = (minutes_ago(300), minutes_ago(2));
    let (f, t) = (from.to_string(), to.to_string());
    let out = file.to_str().unwrap();
    let args = [
        "--plan",
        "professional",
        "--output",
        out,
        "--from",
        &f,
        "--to",
        &t,
        "EURUSD",
    ];
    let mut first = history(&sim, &args);
    check!(first, status(&mut first) == Some(0), "first");
    // A power loss in the middle of a line.
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(r#"{"type":"kline","symbol":"EURUSD","code":"EURUSD","interval":"1m","sta"#);
    std::fs::write(&file, text).unwrap();
    let mut again = history(&sim, &args);
    check!(again, status(&mut again) == Some(0), "again");
    check!(
        again,
        again.stderr().contains("cut off a torn last line"),
        "the repair was not said"
    );
    let got = by_start(files(dir.path()));
    check!(
        again,
        got == expected(&sim, "EURUSD", "EURUSD", from, to),
        "bars differ"
    );
}

#[test]
fn replay_writes_kept_klines_back_each_code_in_time_order() {
    let dir = TempDir::new("history-replay");
    let sim = http_sim(None, KlineReadings::default());
    let pattern = dir.path().join("%Y%m%d-%H.jsonl");
    let (from, to) = (minutes_ago(200), minutes_ago(2));
    let (f, t) = (from.to_string(), to.to_string());
    let out = pattern.to_str().unwrap();
    let args = [
        "--plan",
        "professional",
        "--output",
        out,
        "--from",
        &f,
        "--to",
        &t,
        "EURUSD",
        "HKEX:5",
    ];
    let mut tool = history(&sim, &args);
    check!(tool, status(&mut tool) == Some(0), "history");
    let mut paths: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .collect();
    paths.sort();
    let mut replay: Vec<&str> = vec!["replay", "--speed", "max"];
    replay.extend(paths.iter().map(String::as_str));
    let mut back = Tool::start(&replay, None);
    check!(back, status(&mut back) == Some(0), "replay");
    let lines = back.stdout();
    // Each code in time order (a file holds one block per code and run).
    for code in ["EURUSD", "5.HK"] {
        let mine = of(&lines, code);
        check!(
            back,
            by_start(mine.clone()) == mine,
            "{code} not in time order"
        );
    }
    let mut kept = files(dir.path());
    let mut again = lines.clone();
    kept.sort();
    again.sort();
    check!(
        back,
        kept == again && !kept.is_empty(),
        "replay differs from the files"
    );
}
