//! `--format parquet`: the files read back by pyarrow (pandas), DuckDB and
//! polars and every value compared, as text, with the JSON lines of the
//! same run (`scripts/parquet_check.py`); replay, history and live; the
//! staging files of live capture across a stop, a `kill -9` and a full
//! disk; and what is refused.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use alltick_stream::sim::{SimConfig, Simulator};

use crate::util::{
    PARQUET_READERS, TOKEN, TempDir, Tool, WAIT, bin, capture_into, history_argv, require, sim,
    start, start_sim, stop, strs,
};

/// Whether the Python readers are here (under CI they must be).
fn readers() -> bool {
    require(PARQUET_READERS)
}

/// `scripts/parquet_check.py PARQUET JSONL`: every value of the Parquet
/// file, read by pyarrow, DuckDB and polars, equals the JSON lines'.
fn check_file(parquet: &Path, jsonl: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/parquet_check.py");
    let out = Command::new("python3")
        .args([script, parquet.to_str().unwrap(), jsonl.to_str().unwrap()])
        .output()
        .expect("run parquet_check.py");
    assert!(
        out.status.success(),
        "{} against {}:\n{}{}",
        parquet.display(),
        jsonl.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run the tool with `args` (and the token), stdout into `file`; its
/// stderr and exit status.
fn run_into(args: &[&str], file: &Path) -> (String, Option<i32>) {
    let out = Command::new(bin())
        .args(args)
        .env("ALLTICK_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(File::create(file).unwrap())
        .stderr(Stdio::piped())
        .output()
        .expect("run alltick-stream");
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// A capture of `sim`'s trades of two codes, `lines` lines.
fn capture(sim: &Simulator, dir: &Path, lines: usize) -> PathBuf {
    let file = dir.join("ticks.jsonl");
    capture_into(sim, &file, &["NASDAQ:AAPL", "EURUSD"], lines);
    file
}

#[test]
fn replay_to_parquet_holds_every_value_of_the_lines() {
    if !readers() {
        return;
    }
    let dir = TempDir::new("parquet-replay");
    let sim = sim(200.0);
    let ticks = capture(&sim, dir.path(), 600);
    let t = ticks.to_str().unwrap();
    let pq = dir.path().join("trades.parquet");
    let (err, code) = run_into(&["replay", "--speed", "max", "--format", "parquet", t], &pq);
    assert_eq!(code, Some(0), "{err}");
    check_file(&pq, &ticks);
    // Bars: the same bars as JSON lines, as Parquet.
    let bars = dir.path().join("bars.jsonl");
    let (err, code) = run_into(&["replay", "--speed", "max", "--bars", "1s", t], &bars);
    assert_eq!(code, Some(0), "{err}");
    let bpq = dir.path().join("bars.parquet");
    let args = [
        "replay", "--speed", "max", "--bars", "1s", "--format", "parquet", t,
    ];
    let (err, code) = run_into(&args, &bpq);
    assert_eq!(code, Some(0), "{err}");
    check_file(&bpq, &bars);
    // Into files by period (here a minute), each beside its staging lines,
    // and together every line of the capture once.
    let pattern = dir.path().join("by/%Y%m%d%H/t.parquet");
    let args = [
        "replay",
        "--speed",
        "max",
        "--format",
        "parquet",
        "--output",
        pattern.to_str().unwrap(),
        t,
    ];
    let (err, code) = run_into(&args, &dir.path().join("none"));
    assert_eq!(code, Some(0), "{err}");
    let mut staged = 0;
    for hour in std::fs::read_dir(dir.path().join("by")).unwrap() {
        let hour = hour.unwrap().path();
        let staging = hour.join("t.parquet.staging.jsonl");
        check_file(&hour.join("t.parquet"), &staging);
        staged += std::fs::read_to_string(&staging).unwrap().lines().count();
    }
    assert_eq!(
        staged,
        std::fs::read_to_string(&ticks).unwrap().lines().count()
    );
    // Some fields only.
    let lean = dir.path().join("lean.parquet");
    let args = [
        "replay",
        "--speed",
        "max",
        "--fields",
        "time,code,price",
        "--format",
        "parquet",
        t,
    ];
    let (err, code) = run_into(&args, &lean);
    assert_eq!(code, Some(0), "{err}");
    check_file(&lean, &ticks);
}

#[test]
fn a_value_the_decimal_cannot_hold_is_said_and_kept_on_stderr() {
    if !readers() {
        return;
    }
    let dir = TempDir::new("parquet-unfit");
    let ticks = dir.path().join("ticks.jsonl");
    let good = r#"{"type":"trade","symbol":"X","code":"X","seq":1,"time":1796083200000,"price":1.5,"volume":2,"turnover":3,"side":"buy"}"#;
    let fine = r#"{"type":"trade","symbol":"X","code":"X","seq":2,"time":1796083200001,"price":1.123456789123,"volume":2,"turnover":3,"side":null}"#;
    std::fs::write(&ticks, format!("{good}\n{fine}\n")).unwrap();
    let pq = dir.path().join("t.parquet");
    let args = [
        "replay",
        "--speed",
        "max",
        "--format",
        "parquet",
        ticks.to_str().unwrap(),
    ];
    let (err, code) = run_into(&args, &pq);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("1.123456789123"), "not said: {err}");
    let kept = dir.path().join("kept.jsonl");
    std::fs::write(&kept, format!("{good}\n")).unwrap();
    check_file(&pq, &kept);
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn history_to_parquet_holds_the_same_bars_as_its_json_lines() {
    if !readers() {
        return;
    }
    let dir = TempDir::new("parquet-history");
    let sim = start_sim(SimConfig {
        expected_token: Some(TOKEN.into()),
        ..SimConfig::default()
    });
    let to = (now_ms() / 60_000 - 2) * 60_000;
    let from = (to - 600 * 60_000).to_string();
    let to = to.to_string();
    let argv = history_argv(
        &sim,
        &[
            "--plan",
            "professional",
            "--from",
            &from,
            "--to",
            &to,
            "EURUSD",
            "HKEX:700",
        ],
    );
    let base = strs(&argv);
    let json = dir.path().join("bars.jsonl");
    let (err, code) = run_into(&base, &json);
    assert_eq!(code, Some(0), "{err}");
    let pq = dir.path().join("bars.parquet");
    let mut args = base.to_vec();
    args.extend(["--format", "parquet"]);
    let (err, code) = run_into(&args, &pq);
    assert_eq!(code, Some(0), "{err}");
    check_file(&pq, &json);
    // Into files: a Parquet file per day beside its staging lines.
    let pattern = dir.path().join("pq/date=%Y-%m-%d/klines.parquet");
    args.extend(["--output", pattern.to_str().unwrap()]);
    let (err, code) = run_into(&args, &dir.path().join("nothing"));
    assert_eq!(code, Some(0), "{err}");
    let days = std::fs::read_dir(dir.path().join("pq")).unwrap().count();
    assert!(days >= 1);
    for day in std::fs::read_dir(dir.path().join("pq")).unwrap() {
        let day = day.unwrap().path();
        check_file(
            &day.join("klines.parquet"),
            &day.join("klines.parquet.staging.jsonl"),
        );
    }
}

/// The Parquet files under `dir`, each with its staging file.
fn pairs(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.to_string_lossy().into_owned();
        if let Some(pq) = name.strip_suffix(".staging.jsonl") {
            found.push((PathBuf::from(pq), path.clone()));
        }
    }
    found.sort();
    found
}

#[test]
fn live_capture_into_parquet_survives_a_stop_and_a_kill() {
    if !readers() {
        return;
    }
    let dir = TempDir::new("parquet-live");
    let sim = sim(400.0);
    let pattern = dir.path().join("trades-%Y%m%d%H.parquet");
    let args = [
        "--format",
        "parquet",
        "--output",
        pattern.to_str().unwrap(),
        "--gaps",
        "NASDAQ:AAPL",
        "EURUSD",
    ];
    let staged = |n: usize| {
        pairs(dir.path())
            .iter()
            .map(|(_, s)| {
                std::fs::read_to_string(s)
                    .unwrap_or_default()
                    .lines()
                    .count()
            })
            .sum::<usize>()
            >= n
    };
    let mut tool = start(&sim, &args);
    check!(tool, tool.poll(WAIT, || staged(300)), "nothing staged");
    stop(&mut tool);
    for (pq, staging) in pairs(dir.path()) {
        check_file(&pq, &staging);
    }
    // kill -9: the Parquet file lags its staging file; the next start
    // makes it again, and no line is in it twice.
    let before: usize = pairs(dir.path())
        .iter()
        .map(|(_, s)| std::fs::read_to_string(s).unwrap().lines().count())
        .sum();
    let mut tool = start(&sim, &args);
    check!(
        tool,
        tool.poll(WAIT, || staged(before + 300)),
        "nothing staged after the restart"
    );
    tool.signal("KILL");
    let _ = tool.wait_exit(WAIT);
    let mut again = start(&sim, &args);
    let caught_up = again.poll(WAIT, || {
        pairs(dir.path()).iter().all(|(pq, s)| {
            let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            m(pq) >= m(s)
        })
    });
    stop(&mut again);
    check!(
        again,
        caught_up,
        "the start did not make the Parquet files again"
    );
    for (pq, staging) in pairs(dir.path()) {
        check_file(&pq, &staging);
    }
}

#[test]
fn live_to_a_parquet_file_on_stdout_is_whole_after_a_stop() {
    if !readers() {
        return;
    }
    let dir = TempDir::new("parquet-stdout");
    let sim = sim(100.0);
    let pq = dir.path().join("ticks.parquet");
    let mut cmd = Command::new(bin());
    cmd.args(["--url", &sim.url(), "--format", "parquet", "NASDAQ:AAPL"])
        .env("ALLTICK_TOKEN", TOKEN)
        .stdin(Stdio::piped())
        .stdout(File::create(&pq).unwrap())
        .stderr(Stdio::piped());
    let mut tool = Tool::spawn(cmd);
    check!(
        tool,
        tool.poll(WAIT, || sim.state().ticks.len() >= 200),
        "no ticks"
    );
    stop(&mut tool);
    let rows = sim.state().ticks.len();
    let out = Command::new("python3")
        .args([
            "-c",
            "import pyarrow.parquet as pq, sys; print(pq.read_table(sys.argv[1]).num_rows)",
            pq.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let n: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    check!(tool, n > 0 && n <= rows, "{n} rows of {rows}");
}

#[test]
fn depth_and_a_terminal_are_refused_for_parquet() {
    let sim = sim(10.0);
    let mut tool = start(
        &sim,
        &[
            "--format",
            "parquet",
            "--output",
            "/tmp/x-%Y.parquet",
            "HKEX:700@depth",
        ],
    );
    check!(
        tool,
        tool.wait_exit(WAIT).and_then(|s| s.code()) == Some(2),
        "depth"
    );
    check!(
        tool,
        tool.stderr().contains("has no Parquet form"),
        "not said"
    );
    if !require("script") {
        return;
    }
    // A terminal on stdout: `script` gives the tool one.
    let dir = TempDir::new("parquet-tty");
    let file = dir.path().join("t.jsonl");
    std::fs::write(&file, "").unwrap();
    let line = format!("{} replay --format parquet {}", bin(), file.display());
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("writes a binary file"), "{text}");
}

#[test]
fn a_parquet_file_that_cannot_be_written_keeps_its_staging_lines_for_the_next_start() {
    if !readers() {
        return;
    }
    let dir = TempDir::new("parquet-refused");
    let sim = sim(400.0);
    let pattern = dir.path().join("t.parquet");
    let args = [
        "--format",
        "parquet",
        "--output",
        pattern.to_str().unwrap(),
        "NASDAQ:AAPL",
    ];
    // A directory where the file is written first: the write fails.
    let tmp = dir.path().join("t.parquet.tmp");
    std::fs::create_dir(&tmp).unwrap();
    let staging = dir.path().join("t.parquet.staging.jsonl");
    let lines = |p: &Path| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
    let mut tool = start(&sim, &args);
    check!(
        tool,
        tool.poll(WAIT, || lines(&staging) >= 100),
        "nothing staged"
    );
    stop(&mut tool);
    check!(
        tool,
        tool.stderr().contains("cannot write"),
        "the failure was not said"
    );
    check!(tool, !pattern.exists(), "a Parquet file was written");
    std::fs::remove_dir(&tmp).unwrap();
    // The next start makes it from the staging file; every line once.
    let mut again = start(&sim, &args);
    check!(
        again,
        again.poll(WAIT, || pattern.exists()),
        "not made on start"
    );
    stop(&mut again);
    check_file(&pattern, &staging);
    let text = std::fs::read_to_string(&staging).unwrap();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines().filter(|l| l.starts_with(r#"{"type":"trade""#)) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        check!(
            again,
            seen.insert((v["code"].to_string(), v["seq"].to_string())),
            "twice: {line}"
        );
    }
    // Depth on stdin is refused with Parquet, as at start.
    let mut tool = start(&sim, &args);
    tool.send("+HKEX:700@depth\n");
    check!(
        tool,
        tool.wait_stderr("stdin:1: depth has no Parquet form"),
        "not refused"
    );
    stop(&mut tool);
}
