//! Capture: `--output` files, `--resume`, `--gaps`, against the simulator
//! and the real file system (restarts, kill -9, a file-size limit standing
//! in for a full disk).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use alltick_stream::sim::{SimState, Simulator};
use alltick_stream::wire::protocol::CMD_SUB_TRADES;
use serde_json::Value;

use crate::util::{
    TOKEN, TempDir, Tool, WAIT, before_midnight, bin, civil, files_under, json_lines, repushing,
    sim, start, stop,
};

/// Every line of every file under `dir`, parsed: each file ends with a
/// newline and every line is a JSON object, or this panics naming it.
fn captured(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for f in files_under(dir) {
        let text = std::fs::read_to_string(&f).expect("read a capture file");
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends in a torn line",
            f.display()
        );
        for (i, line) in text.lines().enumerate() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {line}", f.display(), i + 1));
            out.push((f.clone(), v));
        }
    }
    out
}

/// (code, seq, time) of every trade: what makes a line the same line.
fn trade_keys(lines: &[(PathBuf, Value)]) -> Vec<(String, u64, u64)> {
    lines
        .iter()
        .filter(|(_, v)| v["type"] == "trade")
        .map(|(_, v)| {
            (
                v["code"].as_str().unwrap_or("").to_string(),
                v["seq"].as_u64().unwrap_or(0),
                v["time"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn gaps(lines: &[(PathBuf, Value)]) -> Vec<Value> {
    lines
        .iter()
        .filter(|(_, v)| v["type"] == "gap")
        .map(|(_, v)| v.clone())
        .collect()
}

/// How many trade subscriptions (22004) the simulator received.
fn trade_subscriptions(st: &SimState) -> usize {
    st.requests
        .iter()
        .filter(|r| r.cmd_id == CMD_SUB_TRADES)
        .count()
}

/// The tool against `sim` with `--resume FILE` and its stdout appended to
/// FILE by the shell (`>>FILE`), then `extra` arguments.
fn appending(sim: &Simulator, file: &Path, extra: &[&str]) -> Command {
    let url = sim.url();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "exec \"$0\" \"$@\" >>\"$RESUME\"",
        bin(),
        "--url",
        &url,
        "--resume",
    ])
    .arg(file)
    .args(extra)
    .env("RESUME", file)
    .env("ALLTICK_TOKEN", TOKEN)
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd
}

/// The tool into `--output` files under `dir`, against `sim`.
fn capture(sim: &Simulator, dir: &Path, extra: &[&str], symbols: &[&str]) -> Tool {
    let pattern = format!("{}/%Y-%m-%d/%H.jsonl", dir.display());
    let mut args = vec!["--output", pattern.as_str()];
    args.extend_from_slice(extra);
    args.extend_from_slice(symbols);
    start(sim, &args)
}

/// How many trade lines the files under `dir` hold now.
fn trades_in(dir: &Path) -> usize {
    files_under(dir)
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .matches("\"type\":\"trade\"")
                .count()
        })
        .sum()
}

/// Wait (while `tool` runs) until the files under `dir` hold more than
/// `n` trades.
fn wait_for_trades(tool: &Tool, dir: &Path, n: usize) -> bool {
    tool.poll(WAIT, || trades_in(dir) > n)
}

#[test]
fn lines_go_to_files_and_gaps_stay_off_by_default() {
    let sim = sim(50.0);
    let dir = TempDir::new("capture-plain");
    let mut tool = capture(&sim, dir.path(), &[], &["NASDAQ:AAPL"]);
    check!(tool, wait_for_trades(&tool, dir.path(), 5));
    sim.drop_connections();
    check!(tool, tool.wait_stderr("connection lost"));
    check!(tool, sim.wait_until(WAIT, |s| s.connections.len() >= 2));
    let before = trades_in(dir.path());
    check!(tool, wait_for_trades(&tool, dir.path(), before));
    stop(&mut tool);
    check!(
        tool,
        tool.stdout().is_empty(),
        "stdout is not for data with --output"
    );
    let lines = captured(dir.path());
    check!(tool, gaps(&lines).is_empty(), "a gap line without --gaps");
    for (file, v) in &lines {
        let t = v["time"].as_u64().expect("time");
        let secs = (t / 1000) as i64;
        let (day, hour) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) / 3600);
        let name = file.display().to_string();
        check!(
            tool,
            name.ends_with(&format!("{}/{hour:02}.jsonl", civil(day))),
            "{name} holds a line of time {t}"
        );
    }
}

#[test]
fn a_lost_connection_is_a_gap_from_its_last_message_to_the_resubscription() {
    let sim = sim(50.0);
    let mut tool = start(&sim, &["--gaps", "NASDAQ:AAPL"]);
    check!(tool, tool.wait_lines(5));
    sim.drop_connections();
    check!(tool, tool.wait_stderr("connection lost"));
    let gap = tool.wait_for(WAIT, |out, _| out.iter().any(|l| l.contains("\"gap\"")));
    check!(tool, gap, "no gap line");
    stop(&mut tool);
    let lines = json_lines(&tool);
    let at = lines.iter().position(|v| v["type"] == "gap").expect("gap");
    let g = &lines[at];
    check!(tool, g["connection"] == "endpoint#1", "{g}");
    check!(tool, g["codes"] == serde_json::json!(["AAPL.US"]), "{g}");
    check!(
        tool,
        g["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("connection lost"),
        "{g}"
    );
    let (from, to) = (g["from"].as_u64().unwrap(), g["to"].as_u64().unwrap());
    check!(tool, from <= to, "{g}");
    // It sits where the hole is: after the last line before the drop and
    // before the lines of the new connection.
    let st = sim.state();
    let second: HashSet<u64> = st
        .ticks
        .iter()
        .filter(|t| t.conn >= 2)
        .map(|t| t.seq)
        .collect();
    check!(
        tool,
        lines[..at]
            .iter()
            .all(|v| !second.contains(&v["seq"].as_u64().unwrap_or(0))),
        "a tick of the new connection before the gap"
    );
    let last_before = lines[..at].iter().filter_map(|v| v["time"].as_u64()).max();
    check!(
        tool,
        last_before.is_some_and(|t| t <= from + 50),
        "the gap starts at {from}, before the last line {last_before:?}"
    );
}

#[test]
fn ticks_dropped_by_a_full_queue_are_a_gap_with_their_count() {
    let sim = sim(2000.0);
    let tool = start(
        &sim,
        &["--gaps", "--queue", "500", "C0.US", "C1.US", "C2.US"],
    );
    check!(tool, tool.wait_lines(50));
    tool.pause_stdout();
    check!(tool, tool.wait_stderr("output queue full"));
    tool.resume_stdout();
    let seen = tool.wait_for(WAIT, |out, _| {
        out.iter()
            .any(|l| l.contains("\"gap\"") && l.contains("\"dropped\""))
    });
    check!(tool, seen, "no gap line for the dropped ticks");
    let g = json_lines(&tool)
        .into_iter()
        .find(|v| v["type"] == "gap")
        .expect("gap");
    check!(tool, g["dropped"].as_u64().is_some_and(|n| n > 0), "{g}");
    check!(
        tool,
        g["reason"].as_str().unwrap_or("").contains("queue"),
        "{g}"
    );
    check!(
        tool,
        g["codes"].as_array().is_some_and(|c| !c.is_empty()),
        "{g}"
    );
}

/// The tool under a file-size limit (`RLIMIT_FSIZE`, with SIGXFSZ ignored
/// so a write past it fails with EFBIG as on a full disk), lifted later
/// with `prlimit --pid`.
#[test]
fn a_disk_that_refuses_lines_is_reported_retried_and_marked() {
    if !crate::util::require("prlimit") {
        return;
    }
    let sim = sim(300.0);
    let dir = TempDir::new("capture-disk");
    let file = dir.path().join("ticks.jsonl");
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "trap '' XFSZ; exec prlimit --fsize=16384:unlimited \"$@\"",
        "sh",
        bin(),
        "--url",
        &sim.url(),
        "--gaps",
        "--output",
        file.to_str().unwrap(),
        "NASDAQ:AAPL",
        "NASDAQ:TSLA",
    ])
    .env("ALLTICK_TOKEN", TOKEN)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut tool = Tool::spawn(cmd);
    check!(
        tool,
        tool.wait_stderr("cannot write to"),
        "the full file was not reported"
    );
    let lifted = Command::new("prlimit")
        .args([
            "--pid",
            &tool.pid().to_string(),
            "--fsize=unlimited:unlimited",
        ])
        .status()
        .expect("prlimit");
    check!(tool, lifted.success());
    check!(tool, tool.wait_stderr("again"), "writing never resumed");
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let grew = tool.poll(WAIT, || {
        std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) > size
    });
    check!(tool, grew, "no lines after the limit was lifted");
    stop(&mut tool);
    let lines = captured(dir.path());
    let g = gaps(&lines);
    check!(tool, g.len() == 1, "{g:?}");
    check!(tool, g[0]["connection"].is_null(), "{}", g[0]);
    check!(
        tool,
        g[0]["dropped"].as_u64().is_some_and(|n| n > 0),
        "{}",
        g[0]
    );
    check!(
        tool,
        g[0]["reason"].as_str().unwrap_or("").starts_with("disk:"),
        "{}",
        g[0]
    );
    check!(tool, tool.stderr().contains("lines the disk refused"));
    let keys = trade_keys(&lines);
    let unique: HashSet<_> = keys.iter().collect();
    check!(tool, unique.len() == keys.len(), "a line written twice");
}

#[test]
fn reading_back_a_large_capture_takes_a_bounded_tail() {
    let sim = sim(20.0);
    let dir = TempDir::new("capture-large");
    let file = dir.path().join("big.jsonl");
    // 64 MiB of lines of other codes.
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut n = 0u64;
        while n < 500_000 {
            writeln!(
                f,
                "{{\"type\":\"trade\",\"symbol\":\"X{0}.US\",\"code\":\"X{0}.US\",\"seq\":{n},\"time\":1700000000000,\"price\":1.5,\"volume\":100,\"turnover\":150.0,\"side\":\"buy\"}}",
                n % 1000
            )
            .unwrap();
            n += 1;
        }
    }
    assert!(std::fs::metadata(&file).unwrap().len() > 60 << 20);
    let cmd = appending(&sim, &file, &["NASDAQ:AAPL"]);
    let mut tool = Tool::spawn(cmd);
    check!(
        tool,
        tool.wait_stderr("resume: read the last 8.0 MiB of 1 file")
    );
    check!(tool, tool.wait_stderr("subscribed to"));
    let peak = tool.peak_rss_kib();
    check!(tool, peak > 0 && peak < 24 * 1024, "peak RSS {peak} KiB");
    stop(&mut tool);
}

/// A capture killed with SIGKILL at random moments and started again each
/// time: every line parses, none is written twice, no torn line is left,
/// and every tick the simulator sent that is missing lies in a gap.
#[test]
fn kill_nine_twenty_times_loses_only_what_was_in_flight_and_marks_it() {
    // The server pushes each code's last trade again on every subscription:
    // each restart meets a trade it already wrote.
    let sim = repushing(400.0);
    let dir = TempDir::new("capture-kill");
    let symbols = ["C0.US", "C1.US", "C2.US", "C3.US", "C4.US"];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..20 {
        let mut tool = capture(&sim, dir.path(), &["--gaps"], &symbols);
        let before = trades_in(dir.path());
        check!(
            tool,
            wait_for_trades(&tool, dir.path(), before),
            "round {round}: nothing written"
        );
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Not a synchronisation: the kill lands at a random moment of the
        // stream (0-300 ms after the first new line), which is the point.
        std::thread::sleep(Duration::from_millis(rng % 300));
        tool.signal("KILL");
        check!(tool, tool.wait_exit(WAIT).is_some());
    }
    let mut tool = capture(&sim, dir.path(), &["--gaps"], &symbols);
    let before = trades_in(dir.path());
    check!(tool, wait_for_trades(&tool, dir.path(), before));
    sim.set_ticks_per_sec(0.0);
    stop(&mut tool);

    let lines = captured(dir.path());
    let keys = trade_keys(&lines);
    let mut seen = HashSet::new();
    for k in &keys {
        check!(tool, seen.insert(k.clone()), "written twice: {k:?}");
    }
    let gaps = gaps(&lines);
    check!(
        tool,
        gaps.len() >= 20,
        "{} gap lines for 20 restarts",
        gaps.len()
    );
    let windows: Vec<(u64, u64)> = gaps
        .iter()
        .map(|g| (g["from"].as_u64().unwrap(), g["to"].as_u64().unwrap()))
        .collect();
    let st = sim.state();
    check!(
        tool,
        trade_subscriptions(&st) >= 21,
        "fewer subscriptions than restarts"
    );
    let written: HashSet<(String, u64)> = keys.iter().map(|(c, s, _)| (c.clone(), *s)).collect();
    let mut missing = 0;
    for t in &st.ticks {
        if written.contains(&(t.code.clone(), t.seq)) {
            continue;
        }
        missing += 1;
        check!(
            tool,
            windows
                .iter()
                .any(|(from, to)| t.time_ms + 1000 >= *from && t.time_ms <= to + 1000),
            "tick {} {} at {} is missing outside every gap",
            t.code,
            t.seq,
            t.time_ms
        );
    }
    // What is lost is what was in flight: a small share of the flood.
    check!(
        tool,
        missing * 10 < st.ticks.len(),
        "{missing} of {} ticks missing",
        st.ticks.len()
    );
}

/// A simulated clock 1.5 s before midnight UTC: the lines of each day land
/// in that day's file, whatever the order they come in.
#[test]
fn lines_land_in_the_file_of_their_own_day_across_midnight() {
    let (sim, midnight) = before_midnight(40.0);
    let dir = TempDir::new("capture-midnight");
    let pattern = format!("{}/%Y-%m-%d.jsonl", dir.path().display());
    let mut tool = start(&sim, &["--output", &pattern, "NASDAQ:AAPL", "NASDAQ:TSLA"]);
    let after = |d: &Path| {
        captured(d).iter().any(|(_, v)| {
            v["time"]
                .as_u64()
                .is_some_and(|t| t as i64 >= midnight + 500)
        })
    };
    check!(
        tool,
        tool.poll(WAIT, || after(dir.path())),
        "no line 500 ms past midnight in the files"
    );
    stop(&mut tool);
    let lines = captured(dir.path());
    let day = |t: i64| civil(t.div_euclid(86_400_000));
    let files: HashSet<String> = lines
        .iter()
        .map(|(f, _)| f.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    check!(
        tool,
        files
            == HashSet::from([
                format!("{}.jsonl", day(midnight - 1)),
                format!("{}.jsonl", day(midnight))
            ]),
        "files {files:?}"
    );
    for (f, v) in &lines {
        let t = v["time"].as_i64().expect("time");
        check!(
            tool,
            f.ends_with(format!("{}.jsonl", day(t))),
            "{} holds a line of time {t}",
            f.display()
        );
    }
}

/// stdout appended to a file with `--resume FILE`, restarted against a
/// server that pushes the last trade again on subscription: no line twice,
/// and a torn last line (stdout is the file) is cut first.
#[test]
fn a_restart_with_resume_writes_nothing_twice() {
    let sim = repushing(50.0);
    let dir = TempDir::new("capture-resume");
    let file = dir.path().join("ticks.jsonl");
    let run = |expect: &str| {
        let cmd = appending(&sim, &file, &["--gaps", "NASDAQ:AAPL", "NASDAQ:TSLA"]);
        let mut tool = Tool::spawn(cmd);
        check!(tool, tool.wait_stderr(expect));
        let before = trades_in(dir.path());
        check!(tool, wait_for_trades(&tool, dir.path(), before + 3));
        stop(&mut tool);
        tool
    };
    // The shell makes the file before the tool starts: an empty capture.
    run("the last line of 0 codes");
    // A power loss in the middle of a line.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(b"{\"type\":\"trade\",\"symbol\":\"NASD")
            .unwrap();
    }
    let tool = run("cut off a torn last line");
    run("resume: read the last");
    let lines = captured(dir.path());
    let keys = trade_keys(&lines);
    let unique: HashSet<_> = keys.iter().collect();
    check!(tool, unique.len() == keys.len(), "a line written twice");
    let st = sim.state();
    check!(tool, trade_subscriptions(&st) >= 3);
    check!(
        tool,
        gaps(&lines)
            .iter()
            .filter(|g| g["reason"]
                .as_str()
                .unwrap_or("")
                .starts_with("not running"))
            .count()
            == 2,
        "{:?}",
        gaps(&lines)
    );
}
