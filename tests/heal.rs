//! `--heal`: live bars whose gaps are filled with the simulator's K-lines,
//! which are the exact aggregate of the trades its market made (pushed or
//! not). An outage of several minutes is made in seconds: the simulated
//! clock jumps while the tool is cut off, and the market makes the trades
//! of the minutes skipped.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::util::*;
use alltick_stream::sim::{FOREX_PATH, KlineReadings, Simulator};
use alltick_stream::wire::kline::KlineInterval;

const MINUTE: i64 = 60_000;
const CODES: [&str; 2] = ["AAPL.US", "EURUSD"];

fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A simulator whose clock reads 6 s before a minute's end; that end.
fn before_a_minute(rate: f64) -> (Simulator, i64) {
    before_a_minute_reading(rate, KlineReadings::default())
}

/// [`before_a_minute`], its K-lines answered under `readings`.
fn before_a_minute_reading(rate: f64, readings: KlineReadings) -> (Simulator, i64) {
    let now = real_now();
    let boundary = (now / MINUTE + 2) * MINUTE;
    let sim = start_sim(alltick_stream::sim::SimConfig {
        clock_offset_ms: boundary - 6_000 - now,
        kline_readings: readings,
        ..config(rate)
    });
    (sim, boundary)
}

/// `--bars 1m --heal` against `sim`'s WebSocket and HTTP API.
fn heal_args(sim: &Simulator, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--stock-url",
        &sim.url(),
        "--forex-url",
        &sim.url_for(FOREX_PATH),
        "--bars",
        "1m",
        "--heal",
        "--plan",
        "professional",
        "--stock-api",
        &sim.http_base(true),
        "--forex-api",
        &sim.http_base(false),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["NASDAQ:AAPL".to_string(), "EURUSD".into()]);
    args
}

/// Cut the tool off, move the simulated clock to 4 s before `to`, and let
/// it back in.
fn outage(sim: &Simulator, tool: &Tool, to: i64) {
    sim.set_handshake_status(Some(503));
    sim.drop_connections();
    check!(tool, tool.wait_stderr("connection lost"));
    sim.set_clock_offset_ms(to - 4_000 - real_now());
    sim.set_handshake_status(None);
}

/// A line, read, with its text (for numbers' own digits).
type Line = (Value, String);

/// Lines of text, read.
fn read_lines(text: &[String]) -> Vec<Line> {
    (text.iter())
        .filter_map(|l| Some((serde_json::from_str(l).ok()?, l.clone())))
        .collect()
}

/// Bar and K-line lines by (code, start).
type ByKey = BTreeMap<(String, i64), Vec<Line>>;

/// The bar and K-line lines, by (code, start); every other line apart.
fn bars_by_key(lines: &[Line]) -> (ByKey, Vec<Value>) {
    let mut bars: ByKey = BTreeMap::new();
    let mut other = Vec::new();
    for (v, text) in lines {
        match v["type"].as_str() {
            Some("bar") | Some("kline") => bars
                .entry((
                    v["code"].as_str().unwrap().to_string(),
                    v["start"].as_i64().unwrap(),
                ))
                .or_default()
                .push((v.clone(), text.clone())),
            _ => other.push(v.clone()),
        }
    }
    (bars, other)
}

/// The text of `key`'s value in a line of the tool's (a number's own
/// digits).
fn digits<'a>(line: &'a str, key: &str) -> &'a str {
    let at = line.find(&format!("\"{key}\":")).expect("the key") + key.len() + 3;
    let rest = &line[at..];
    &rest[..rest.find([',', '}']).unwrap_or(rest.len())]
}

/// `bar`'s values equal the simulator's K-line of its code and start, as
/// text.
fn equals_kline(sim: &Simulator, (bar, line): &Line) -> Result<(), String> {
    let code = bar["code"].as_str().unwrap();
    let start = bar["start"].as_u64().unwrap();
    let k = sim.recorded_klines(code, KlineInterval::parse("1m").unwrap(), start, start);
    let [k] = k.as_slice() else {
        return Err(format!("the simulator has {} K-lines at {start}", k.len()));
    };
    let want = [
        ("open", &k.open),
        ("high", &k.high),
        ("low", &k.low),
        ("close", &k.close),
        ("volume", &k.volume),
        ("turnover", &k.turnover),
    ];
    for (key, server) in want {
        let got = digits(line, key);
        if got != server.as_str() {
            return Err(format!(
                "{key}: {got} against the server's {server} in {line}"
            ));
        }
    }
    Ok(())
}

#[test]
fn an_outage_of_minutes_is_filled_with_k_lines_and_every_minute_has_one_bar() {
    let (sim, boundary) = before_a_minute(20.0);
    let args = heal_args(&sim, &[]);
    let mut tool = Tool::start(&strs(&args), Some(TOKEN));
    // The first minute's bars, from trades.
    let first = tool.wait_for(WAIT, |out, _| {
        out.iter().filter(|l| l.contains("\"bar\"")).count() >= 2
    });
    check!(tool, first, "no bar of the first minute");
    let back = boundary + 5 * MINUTE;
    outage(&sim, &tool, back);
    // Healed once the minute the tool came back in is over.
    // One gap per connection (stocks, forex).
    let healed = tool.wait_for(Duration::from_secs(40), |out, _| {
        out.iter().filter(|l| l.contains("\"healed\"")).count() >= 2
    });
    check!(tool, healed, "no healed gap lines");
    stop(&mut tool);
    let lines = read_lines(&tool.stdout());
    let (bars, other) = bars_by_key(&lines);
    let gaps: Vec<&Value> = other.iter().filter(|v| v["type"] == "gap").collect();
    check!(tool, gaps.len() == 2, "gap lines: {gaps:?}");
    for gap in gaps {
        check!(tool, gap["healed"] == true, "{gap}");
    }
    for code in CODES {
        let starts: Vec<i64> = bars
            .keys()
            .filter(|(c, _)| c == code)
            .map(|(_, s)| *s)
            .collect();
        // Every minute from the first to the last: one bar each.
        let want: Vec<i64> = (0..=6).map(|i| boundary - MINUTE + i * MINUTE).collect();
        check!(
            tool,
            starts == want,
            "{code}: bars at {starts:?}, want {want:?}"
        );
        for start in want {
            let v = &bars[&(code.to_string(), start)];
            check!(
                tool,
                v.len() == 1,
                "{code} {start}: written {} times",
                v.len()
            );
            let bar = &v[0].0;
            let inside = start >= boundary && start < back;
            if inside {
                check!(tool, bar["type"] == "kline", "{code} {start}: {bar}");
                check!(tool, bar["trades"].is_null(), "{bar}");
                if let Err(e) = equals_kline(&sim, &v[0]) {
                    check!(tool, false, "{code} {start}: {e}");
                }
            } else {
                check!(tool, bar["type"] == "bar", "{code} {start}: {bar}");
            }
        }
        // Before the outage every trade was received: the bar from trades
        // is the server's K-line.
        let before = &bars[&(code.to_string(), boundary - MINUTE)][0];
        let before = before.clone();
        if let Err(e) = equals_kline(&sim, &before) {
            check!(tool, false, "{code}, the first minute: {e}");
        }
    }
    check!(
        tool,
        sim.unseen_trades() >= 2 * 200,
        "unseen trades: {}",
        sim.unseen_trades()
    );
}

#[test]
fn when_the_api_is_down_held_bars_are_written_as_built_after_the_wait() {
    let (sim, boundary) = before_a_minute(20.0);
    // Nothing listens there: every request fails.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut args = heal_args(&sim, &["--heal-wait", "3"]);
    for (i, a) in args.clone().iter().enumerate() {
        if a == "--stock-api" || a == "--forex-api" {
            args[i + 1] = format!("{dead}/quote-b-api");
        }
    }
    let mut tool = Tool::start(&strs(&args), Some(TOKEN));
    let first = tool.wait_for(WAIT, |out, _| {
        out.iter().filter(|l| l.contains("\"bar\"")).count() >= 2
    });
    check!(tool, first, "no bar of the first minute");
    let back = boundary + 2 * MINUTE;
    outage(&sim, &tool, back);
    let given_up = tool.wait_for(Duration::from_secs(40), |out, _| {
        out.iter()
            .filter(|l| l.contains("\"healed\":false"))
            .count()
            >= 2
    });
    check!(
        tool,
        given_up,
        "no gap line saying its bars were not healed"
    );
    stop(&mut tool);
    let lines = read_lines(&tool.stdout());
    let (bars, other) = bars_by_key(&lines);
    for gap in other.iter().filter(|v| v["type"] == "gap") {
        check!(tool, gap["healed"] == false, "{gap}");
        check!(
            tool,
            gap["heal"].as_str().unwrap_or("").contains("--heal-wait"),
            "{gap}"
        );
    }
    for code in CODES {
        // The minutes the tool had trades of: once each, as built; the
        // minute it missed entirely: no bar.
        for start in [boundary - MINUTE, boundary, back - MINUTE, back] {
            let v = bars.get(&(code.to_string(), start));
            check!(
                tool,
                v.is_some_and(|v| v.len() == 1),
                "{code} {start}: {v:?}"
            );
            check!(tool, v.unwrap()[0].0["type"] == "bar", "{v:?}");
        }
        let n = bars.keys().filter(|(c, _)| c == code).count();
        check!(tool, n == 4, "{code}: {n} bars");
    }
}

#[test]
fn a_restart_heals_the_minutes_it_was_not_running() {
    let (sim, boundary) = before_a_minute(20.0);
    let dir = TempDir::new("heal-restart");
    let pattern = dir.path().join("%Y-%m-%d.jsonl");
    let args = heal_args(&sim, &["--output", pattern.to_str().unwrap()]);
    let read = || -> Vec<Line> {
        let text: Vec<String> = (files_under(dir.path()).iter())
            .flat_map(|p| {
                let t = std::fs::read_to_string(p).unwrap_or_default();
                t.lines().map(str::to_string).collect::<Vec<_>>()
            })
            .collect();
        read_lines(&text)
    };
    let mut tool = Tool::start(&strs(&args), Some(TOKEN));
    let first = tool.poll(WAIT, || {
        read().iter().filter(|v| v.0["type"] == "bar").count() >= 2
    });
    check!(tool, first, "no bar of the first minute in the files");
    stop(&mut tool);
    // Down for about four minutes of the simulated clock.
    let back = boundary + 4 * MINUTE;
    sim.set_clock_offset_ms(back - 4_000 - real_now());
    let mut tool = Tool::start(&strs(&args), Some(TOKEN));
    let healed = tool.poll(Duration::from_secs(40), || {
        let lines = read();
        lines
            .iter()
            .filter(|v| v.0["type"] == "gap" && v.0["healed"] == true)
            .count()
            >= 2
    });
    check!(
        tool,
        healed,
        "no healed gap lines in the files: {:?}",
        read().iter().map(|l| &l.1).collect::<Vec<_>>()
    );
    stop(&mut tool);
    let (bars, _) = bars_by_key(&read());
    for code in CODES {
        let starts: Vec<i64> = bars
            .keys()
            .filter(|(c, _)| c == code)
            .map(|(_, s)| *s)
            .collect();
        let want: Vec<i64> = (0..=5).map(|i| boundary - MINUTE + i * MINUTE).collect();
        check!(
            tool,
            starts == want,
            "{code}: bars at {starts:?}, want {want:?}"
        );
        for start in want {
            let v = &bars[&(code.to_string(), start)];
            check!(
                tool,
                v.len() == 1,
                "{code} {start}: written {} times",
                v.len()
            );
            // The minutes it was down for are the server's.
            if start > boundary && start < back {
                check!(
                    tool,
                    v[0].0["type"] == "kline",
                    "{code} {start}: {}",
                    v[0].1
                );
                if let Err(e) = equals_kline(&sim, &v[0]) {
                    check!(tool, false, "{code} {start}: {e}");
                }
            }
        }
    }
}

#[test]
fn a_kill_while_bars_are_held_writes_each_bar_once_after_the_restart() {
    let (sim, boundary) = before_a_minute(20.0);
    let dir = TempDir::new("heal-kill");
    let pattern = dir.path().join("%Y-%m-%d.jsonl");
    let args = heal_args(&sim, &["--output", pattern.to_str().unwrap()]);
    let read = || -> Vec<Line> {
        let text: Vec<String> = (files_under(dir.path()).iter())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .flat_map(|p| {
                let t = std::fs::read_to_string(p).unwrap_or_default();
                t.lines().map(str::to_string).collect::<Vec<_>>()
            })
            .collect();
        read_lines(&text)
    };
    let kept = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".heal"))
    };
    let mut tool = Tool::start(&strs(&args), Some(TOKEN));
    let first = tool.poll(WAIT, || {
        read().iter().filter(|v| v.0["type"] == "bar").count() >= 2
    });
    check!(tool, first, "no bar of the first minute in the files");
    // The stock connection is cut off (its bars held, what is held kept
    // beside the capture); the forex one goes on minutes later, so the
    // capture's last line is after the held bars.
    sim.set_handshake_status(Some(503));
    let stock = sim
        .state()
        .connections
        .iter()
        .rev()
        .find(|c| c.path.ends_with("quote-stock-b-ws-api") && !c.closed)
        .map(|c| c.id);
    check!(
        tool,
        stock.is_some_and(|id| sim.drop_connection(id)),
        "no stock connection"
    );
    check!(tool, tool.wait_stderr("stock#1: connection lost"));
    check!(
        tool,
        tool.poll(WAIT, kept),
        "nothing kept beside the capture"
    );
    let back = boundary + 3 * MINUTE;
    sim.set_clock_offset_ms(back - 4_000 - real_now());
    let memory_is_late = || {
        (std::fs::read_dir(dir.path()).unwrap().flatten())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".last"))
            .any(|e| {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                text.lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .any(|v| {
                        v["code"] == "EURUSD"
                            && v["time"].as_i64().is_some_and(|t| t >= back - 4_000)
                    })
            })
    };
    check!(
        tool,
        tool.poll(WAIT, memory_is_late),
        "the forex trades after the jump are not remembered"
    );
    tool.signal("KILL");
    check!(tool, tool.wait_exit(WAIT).is_some());
    sim.set_handshake_status(None);
    let mut tool = Tool::start(&strs(&args), Some(TOKEN));
    check!(
        tool,
        tool.wait_stderr("kept from the last run healed again")
    );
    // Every gap settled: the stock outage kept, and the two restarts.
    let settled = tool.poll(Duration::from_secs(40), || {
        let lines = read();
        lines
            .iter()
            .filter(|v| v.0["type"] == "gap" && v.0["healed"] == true)
            .count()
            >= 3
    });
    check!(
        tool,
        settled,
        "gaps: {:?}",
        read()
            .iter()
            .filter(|l| l.0["type"] == "gap")
            .map(|l| &l.1)
            .collect::<Vec<_>>()
    );
    stop(&mut tool);
    check!(
        tool,
        !kept(),
        "what was held is still kept after a clean stop"
    );
    let (bars, _) = bars_by_key(&read());
    // Every bar once; the stock's held minutes are the server's.
    for ((code, start), v) in &bars {
        check!(
            tool,
            v.len() == 1,
            "{code} {start}: written {} times",
            v.len()
        );
    }
    let code = "AAPL.US";
    let starts: Vec<i64> = bars
        .keys()
        .filter(|(c, _)| c == code)
        .map(|(_, s)| *s)
        .collect();
    let want: Vec<i64> = (0..=4).map(|i| boundary - MINUTE + i * MINUTE).collect();
    check!(
        tool,
        starts == want,
        "{code}: bars at {starts:?}, want {want:?}; lines {:?}",
        read().iter().map(|l| &l.1).collect::<Vec<_>>()
    );
    for start in want.into_iter().filter(|s| *s >= boundary && *s < back) {
        let v = &bars[&(code.to_string(), start)];
        check!(
            tool,
            v[0].0["type"] == "kline",
            "{code} {start}: {}",
            v[0].1
        );
        if let Err(e) = equals_kline(&sim, &v[0]) {
            check!(tool, false, "{code} {start}: {e}");
        }
    }
}

#[test]
fn a_refused_code_is_left_as_built_and_the_others_are_healed() {
    let (sim, boundary) = before_a_minute(20.0);
    sim.refuse_kline_codes(&["AAPL.US"], 604);
    let args = heal_args(&sim, &[]);
    let mut tool = Tool::start(&strs(&args), Some(TOKEN));
    let first = tool.wait_for(WAIT, |out, _| {
        out.iter().filter(|l| l.contains("\"bar\"")).count() >= 2
    });
    check!(tool, first, "no bar of the first minute");
    let back = boundary + 2 * MINUTE;
    outage(&sim, &tool, back);
    let settled = tool.wait_for(Duration::from_secs(40), |out, _| {
        out.iter().filter(|l| l.contains("\"healed\"")).count() >= 2
    });
    check!(tool, settled, "the gaps were not settled");
    stop(&mut tool);
    check!(
        tool,
        tool.stderr()
            .contains("AAPL.US: the server answered ret 604")
    );
    let lines = read_lines(&tool.stdout());
    let (bars, other) = bars_by_key(&lines);
    for gap in other.iter().filter(|v| v["type"] == "gap") {
        let refused = gap["codes"][0] == "AAPL.US";
        check!(tool, gap["healed"] == !refused, "{gap}");
        check!(
            tool,
            !refused || gap["heal"].as_str().unwrap_or("").contains("ret 604"),
            "{gap}"
        );
    }
    for start in [boundary - MINUTE, boundary, back - MINUTE, back] {
        let v = bars.get(&("AAPL.US".to_string(), start));
        check!(
            tool,
            v.is_some_and(|v| v.len() == 1 && v[0].0["type"] == "bar"),
            "{start}: {v:?}"
        );
    }
    let healed = bars
        .iter()
        .filter(|((c, _), v)| c == "EURUSD" && v[0].0["type"] == "kline")
        .count();
    check!(tool, healed == 2, "EURUSD: {healed} K-lines");
}

#[test]
fn a_refused_token_stops_healing_not_the_stream() {
    let (sim, boundary) = before_a_minute(20.0);
    // The HTTP API knows another token.
    let other = start_sim(alltick_stream::sim::SimConfig {
        expected_token: Some("another-token".into()),
        ..config(0.0)
    });
    let mut args = heal_args(&sim, &[]);
    let at = args.iter().position(|a| a == "--forex-api").unwrap();
    args[at + 1] = other.http_base(false);
    args.retain(|a| a != "NASDAQ:AAPL");
    let mut tool = Tool::start(&strs(&args), Some(TOKEN));
    let first = tool.wait_for(WAIT, |out, _| out.iter().any(|l| l.contains("\"bar\"")));
    check!(tool, first, "no bar of the first minute");
    let back = boundary + 2 * MINUTE;
    outage(&sim, &tool, back);
    let settled = tool.wait_for(Duration::from_secs(40), |out, _| {
        out.iter().any(|l| l.contains("\"healed\":false"))
    });
    check!(tool, settled, "no gap line saying its bars were not healed");
    // The stream goes on: trades still come in after healing stopped.
    let sent = sim.state().ticks.len();
    check!(
        tool,
        tool.poll(WAIT, || sim.state().ticks.len() > sent + 20)
    );
    stop(&mut tool);
    let err = tool.stderr();
    check!(
        tool,
        err.matches("refused the token").count() == 1,
        "said once"
    );
    check!(tool, !err.contains(TOKEN), "the token was printed");
    let (bars, other_lines) = bars_by_key(&read_lines(&tool.stdout()));
    let gap = other_lines
        .iter()
        .find(|v| v["type"] == "gap")
        .expect("a gap line");
    check!(
        tool,
        gap["heal"].as_str().unwrap_or("").contains("401"),
        "{gap}"
    );
    for start in [boundary - MINUTE, boundary, back - MINUTE, back] {
        let v = bars.get(&("EURUSD".to_string(), start));
        check!(
            tool,
            v.is_some_and(|v| v.len() == 1 && v[0].0["type"] == "bar"),
            "{start}: {v:?}"
        );
    }
}

/// The lines of the files under `dir` whose names end with `suffix`.
fn file_lines(dir: &std::path::Path, suffix: &str) -> Vec<String> {
    (files_under(dir).iter())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .flat_map(|p| {
            let t = std::fs::read_to_string(p).unwrap_or_default();
            t.lines().map(str::to_string).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn csv_and_parquet_captures_heal_the_same_way() {
    if !require(PARQUET_READERS) {
        return;
    }
    let (csv_sim, boundary) = before_a_minute(20.0);
    let (pq_sim, pq_boundary) = before_a_minute(20.0);
    let (csv_dir, pq_dir) = (TempDir::new("heal-csv"), TempDir::new("heal-pq"));
    let csv_out = csv_dir.path().join("%Y-%m-%d.csv");
    let pq_out = pq_dir.path().join("%Y-%m-%d.parquet");
    let csv_args = heal_args(
        &csv_sim,
        &["--format", "csv", "--output", csv_out.to_str().unwrap()],
    );
    let pq_args = heal_args(
        &pq_sim,
        &["--format", "parquet", "--output", pq_out.to_str().unwrap()],
    );
    let mut csv_tool = Tool::start(&strs(&csv_args), Some(TOKEN));
    let mut pq_tool = Tool::start(&strs(&pq_args), Some(TOKEN));
    let rows = || file_lines(csv_dir.path(), ".csv");
    let staged = || read_lines(&file_lines(pq_dir.path(), ".staging.jsonl"));
    let csv_first = csv_tool.poll(WAIT, || {
        rows().iter().filter(|r| r.starts_with("bar,")).count() >= 2
    });
    check!(csv_tool, csv_first, "no CSV row of the first minute");
    let pq_first = pq_tool.poll(WAIT, || {
        staged().iter().filter(|l| l.0["type"] == "bar").count() >= 2
    });
    check!(pq_tool, pq_first, "no staged bar of the first minute");
    outage(&csv_sim, &csv_tool, boundary + 3 * MINUTE);
    outage(&pq_sim, &pq_tool, pq_boundary + 3 * MINUTE);
    // CSV files hold no gap lines: they are said on stderr.
    let csv_healed = csv_tool.wait_for(Duration::from_secs(40), |_, err| {
        err.matches("\"healed\":true").count() >= 2
    });
    check!(csv_tool, csv_healed, "no healed gaps said");
    let pq_healed = pq_tool.poll(Duration::from_secs(40), || {
        staged().iter().filter(|l| l.0["healed"] == true).count() >= 2
    });
    check!(pq_tool, pq_healed, "no healed gaps staged");
    stop(&mut csv_tool);
    stop(&mut pq_tool);
    // CSV: one row per code and minute; the outage's are the server's.
    let rows = rows();
    let header: Vec<&str> = rows[0].split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut seen: BTreeMap<(String, i64), Vec<Vec<String>>> = BTreeMap::new();
    for r in rows.iter().skip(1) {
        let cells: Vec<String> = r.split(',').map(str::to_string).collect();
        let key = (
            cells[col("code")].clone(),
            cells[col("start")].parse().unwrap(),
        );
        seen.entry(key).or_default().push(cells);
    }
    let back = boundary + 3 * MINUTE;
    for code in CODES {
        let starts: Vec<i64> = seen
            .keys()
            .filter(|(c, _)| c == code)
            .map(|(_, s)| *s)
            .collect();
        let want: Vec<i64> = (0..=4).map(|i| boundary - MINUTE + i * MINUTE).collect();
        check!(
            csv_tool,
            starts == want,
            "CSV {code}: rows at {starts:?}, want {want:?}"
        );
        for start in want.into_iter().filter(|s| *s >= boundary && *s < back) {
            let cells = &seen[&(code.to_string(), start)];
            check!(
                csv_tool,
                cells.len() == 1 && cells[0][col("type")] == "kline",
                "{cells:?}"
            );
            let k = csv_sim.recorded_klines(
                code,
                KlineInterval::parse("1m").unwrap(),
                start as u64,
                start as u64,
            );
            let k = &k[0];
            let want = [&k.open, &k.high, &k.low, &k.close, &k.volume, &k.turnover];
            let keys = ["open", "high", "low", "close", "volume", "turnover"];
            for (key, want) in keys.iter().zip(want) {
                check!(
                    csv_tool,
                    cells[0][col(key)] == *want,
                    "{key} of {cells:?} against {want}"
                );
            }
        }
    }
    // Parquet: its staging lines heal as JSON lines do, and the Parquet
    // files made from them hold every value.
    let (bars, _) = bars_by_key(&staged());
    let pq_back = pq_boundary + 3 * MINUTE;
    for ((code, start), v) in &bars {
        check!(
            pq_tool,
            v.len() == 1,
            "{code} {start}: staged {} times",
            v.len()
        );
        let inside = *start >= pq_boundary && *start < pq_back;
        check!(pq_tool, !inside || v[0].0["type"] == "kline", "{}", v[0].1);
    }
    check!(pq_tool, bars.len() == 10, "{} bars staged", bars.len());
    for entry in std::fs::read_dir(pq_dir.path()).unwrap().flatten() {
        let path = entry.path();
        let name = path.to_string_lossy().into_owned();
        if let Some(parquet) = name.strip_suffix(".staging.jsonl") {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/parquet_check.py");
            let out = std::process::Command::new("python3")
                .args([script, parquet, &name])
                .output()
                .expect("run parquet_check.py");
            check!(
                pq_tool,
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

#[test]
fn heal_refuses_what_it_cannot_heal() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--heal", "EURUSD"],
            "--heal fills gaps in bars: give --bars",
        ),
        (
            &["--heal", "--bars", "1s", "EURUSD"],
            "no 1s K-lines to heal 1s bars",
        ),
        (
            &["--heal", "--bars", "4h", "NASDAQ:AAPL", "EURUSD"],
            "no 4h K-lines for stocks (NASDAQ:AAPL)",
        ),
        (
            &["--heal-wait", "5", "--bars", "1m", "EURUSD"],
            "--heal-wait applies to --heal",
        ),
    ];
    for (args, says) in cases {
        let mut tool = Tool::start(args, Some(TOKEN));
        let status = tool.wait_exit(WAIT);
        check!(
            tool,
            status.and_then(|s| s.code()) == Some(2),
            "{args:?}: {status:?}"
        );
        check!(tool, tool.stderr().contains(says), "{args:?}");
    }
}

/// Down longer than the 500 minute bars a stock's K-lines go back: what
/// the server no longer has is said, with its span, on stderr and in the
/// gap line; the bars it has are healed from where it goes back to; a
/// forex code, whose K-lines go back further, is healed whole. The
/// server answers under the docs' other readings: newest first with the
/// newest repeated, the end exclusive, timestamps in ms and values as
/// JSON numbers, pages cut short.
#[test]
fn what_the_server_no_longer_has_is_said_with_its_span() {
    let (sim, boundary) = before_a_minute_reading(
        20.0,
        KlineReadings {
            newest_first: true,
            repeat_newest: 2,
            end_exclusive: true,
            timestamp_ms: true,
            numbers: true,
            page_cap: Some(300),
            ..KlineReadings::default()
        },
    );
    let dir = TempDir::new("heal-too-old");
    let pattern = dir.path().join("%Y-%m-%d.jsonl");
    let args = heal_args(&sim, &["--output", pattern.to_str().unwrap()]);
    let read = || -> Vec<Line> {
        let text: Vec<String> = (files_under(dir.path()).iter())
            .flat_map(|p| {
                let t = std::fs::read_to_string(p).unwrap_or_default();
                t.lines().map(str::to_string).collect::<Vec<_>>()
            })
            .collect();
        read_lines(&text)
    };
    let mut tool = Tool::start(&strs(&args), Some(TOKEN));
    let first = tool.poll(WAIT, || {
        read().iter().filter(|v| v.0["type"] == "bar").count() >= 2
    });
    check!(tool, first, "no bar of the first minute in the files");
    stop(&mut tool);
    // Down for ten hours of the simulated clock: 600 minutes.
    let back = boundary + 600 * MINUTE;
    sim.set_clock_offset_ms(back - 4_000 - real_now());
    let mut tool = Tool::start(&strs(&args), Some(TOKEN));
    let settled = tool.poll(Duration::from_secs(40), || {
        let lines = read();
        lines
            .iter()
            .filter(|v| v.0["type"] == "gap" && v.0.get("healed").is_some())
            .count()
            >= 2
    });
    check!(
        tool,
        settled,
        "gaps: {:?}",
        read()
            .iter()
            .filter(|l| l.0["type"] == "gap")
            .map(|l| &l.1)
            .collect::<Vec<_>>()
    );
    stop(&mut tool);
    let lines = read();
    let notes: Vec<String> = (lines.iter())
        .filter(|v| v.0["type"] == "gap")
        .filter_map(|v| v.0["heal"].as_str().map(str::to_string))
        .collect();
    let said = "AAPL.US: the server no longer has the bars from ";
    let Some(note) = notes.iter().find(|n| n.contains(said)) else {
        check!(tool, false, "no gap note names the span: {notes:?}");
        return;
    };
    check!(
        tool,
        !notes
            .iter()
            .any(|n| n.contains("EURUSD: the server no longer has")),
        "{notes:?}"
    );
    // The span: from the first bar of the gap to the oldest K-line the
    // server still has, which is the first healed bar of the stock.
    let span = &note[note.find(said).unwrap() + said.len()..];
    let (from, to) = span.split_once(" to ").expect("a span");
    let to = to.split([',', ';', ')']).next().unwrap().trim();
    let (bars, _) = bars_by_key(&lines);
    let klines = |code: &str| -> Vec<i64> {
        (bars.iter())
            .filter(|((c, s), v)| c == code && *s >= boundary && v[0].0["type"] == "kline")
            .map(|((_, s), _)| *s)
            .collect()
    };
    let stock = klines("AAPL.US");
    let Some(&oldest) = stock.first() else {
        check!(tool, false, "no stock K-line healed");
        return;
    };
    let iso = |ms: i64| alltick_stream::wire::calendar::iso(ms as u64);
    check!(
        tool,
        to == iso(oldest),
        "span ends at {to}, oldest K-line {}",
        iso(oldest)
    );
    check!(
        tool,
        from <= iso(boundary).as_str() && oldest > boundary + 60 * MINUTE,
        "span {from} to {to}, boundary {}",
        iso(boundary)
    );
    check!(
        tool,
        tool.stderr().contains(&format!(
            "heal: AAPL.US: the server no longer has its bars from {from} to {to}"
        )),
        "stderr does not say the span"
    );
    // The forex code is healed back to the stop.
    let forex = klines("EURUSD");
    check!(
        tool,
        forex.first().is_some_and(|&s| s <= boundary + MINUTE) && forex.len() > stock.len(),
        "EURUSD K-lines: {} from {:?}",
        forex.len(),
        forex.first().map(|&s| iso(s))
    );
    // Pages cut short are asked on from: no minute missing.
    let holes: Vec<String> = (forex.windows(2))
        .filter(|w| w[1] != w[0] + MINUTE)
        .map(|w| format!("{} to {}", iso(w[0]), iso(w[1])))
        .collect();
    check!(
        tool,
        holes.is_empty(),
        "EURUSD K-lines missing between {holes:?}"
    );
    for (code, starts) in [("AAPL.US", &stock), ("EURUSD", &forex)] {
        for start in starts {
            let v = &bars[&(code.to_string(), *start)];
            check!(
                tool,
                v.len() == 1,
                "{code} {start}: written {} times",
                v.len()
            );
        }
    }
}
