//! `alltick-stream replay`: captures back to stdout, byte for byte, in time
//! order, against real files (plain and gzip) and a real capture of the
//! simulator.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{TempDir, Tool, WAIT, bin, capture_into, sim};

fn trade(code: &str, seq: u64, time: u64) -> String {
    format!(
        "{{\"type\":\"trade\",\"symbol\":\"NASDAQ:{t}\",\"code\":\"{code}\",\"seq\":{seq},\"time\":{time},\"price\":651.10,\"volume\":300,\"turnover\":195330.00,\"side\":\"buy\"}}\n",
        t = code.trim_end_matches(".US")
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Run `replay ARGS` to completion (bounded): stdout, stderr, status.
fn replay(args: &[&str]) -> (String, String, Option<i32>) {
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    let mut tool = Tool::start(&all, None);
    let status = tool.wait_exit(WAIT);
    let out = tool
        .stdout()
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    (out, tool.stderr(), status.and_then(|s| s.code()))
}

#[test]
fn files_merge_in_time_order_byte_for_byte_and_equal_times_keep_file_order() {
    let dir = TempDir::new("replay-merge");
    let a = trade("AAPL.US", 1, 1000) + &trade("AAPL.US", 2, 3000) + &trade("AAPL.US", 3, 5000);
    let b = trade("TSLA.US", 1, 2000) + &trade("TSLA.US", 2, 3000) + &trade("TSLA.US", 3, 4000);
    let fa = write(dir.path(), "a.jsonl", &a);
    let fb = write(dir.path(), "b.jsonl", &b);
    let (out, err, status) =
        replay(&["--speed", "max", fa.to_str().unwrap(), fb.to_str().unwrap()]);
    assert_eq!(status, Some(0), "{err}");
    let want = [
        trade("AAPL.US", 1, 1000),
        trade("TSLA.US", 1, 2000),
        trade("AAPL.US", 2, 3000),
        trade("TSLA.US", 2, 3000),
        trade("TSLA.US", 3, 4000),
        trade("AAPL.US", 3, 5000),
    ]
    .concat();
    assert_eq!(out, want);
    assert!(
        err.contains("replay: 6 lines written from 2 files"),
        "{err}"
    );
}

#[test]
fn symbols_and_times_choose_what_is_replayed() {
    let dir = TempDir::new("replay-filter");
    let mut text = String::new();
    // 2026-12-01T00:00:00Z and the seconds after it.
    let t0 = 1_796_083_200_000u64;
    for i in 0..10 {
        text.push_str(&trade("AAPL.US", i + 1, t0 + i * 1000));
        text.push_str(&trade("TSLA.US", i + 1, t0 + i * 1000));
    }
    text.push_str("{\"type\":\"gap\",\"connection\":\"stock#1\",\"codes\":[\"TSLA.US\"],\"from\":1796083203500,\"to\":1796083204000,\"reason\":\"connection lost: x\"}\n");
    text.push_str("{\"type\":\"gap\",\"connection\":\"stock#1\",\"codes\":[\"AAPL.US\"],\"from\":1796083203600,\"to\":1796083204000,\"reason\":\"connection lost: x\"}\n");
    let f = write(dir.path(), "t.jsonl", &text);
    let (out, err, _) = replay(&[
        "--speed",
        "max",
        "--from",
        "2026-12-01T00:00:02Z",
        "--to",
        &(t0 + 5000).to_string(),
        f.to_str().unwrap(),
        "NASDAQ:AAPL",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    // One file keeps its own order: the gap stands where it was written.
    let mut want: Vec<String> = (2..=5)
        .map(|i| trade("AAPL.US", i + 1, t0 + i * 1000))
        .collect();
    want.push(
        "{\"type\":\"gap\",\"connection\":\"stock#1\",\"codes\":[\"AAPL.US\"],\"from\":1796083203600,\"to\":1796083204000,\"reason\":\"connection lost: x\"}\n"
            .into(),
    );
    assert_eq!(
        lines,
        want.iter().map(|l| l.trim_end()).collect::<Vec<_>>(),
        "{err}"
    );
}

#[test]
fn a_gap_in_two_files_is_written_once_where_the_data_resumes() {
    let dir = TempDir::new("replay-gap2");
    let gap = "{\"type\":\"gap\",\"connection\":\"stock#1\",\"codes\":[\"AAPL.US\"],\"from\":1500,\"to\":2500,\"reason\":\"connection lost: x\"}\n";
    let day1 = write(dir.path(), "d1.jsonl", &(trade("AAPL.US", 1, 1000) + gap));
    let day2 = write(
        dir.path(),
        "d2.jsonl",
        &(gap.to_string() + &trade("AAPL.US", 2, 2600)),
    );
    let (out, err, _) = replay(&[
        "--speed",
        "max",
        day1.to_str().unwrap(),
        day2.to_str().unwrap(),
    ]);
    assert_eq!(
        out,
        trade("AAPL.US", 1, 1000) + gap + &trade("AAPL.US", 2, 2600),
        "{err}"
    );
}

#[test]
fn bad_lines_are_reported_with_their_place_and_counted() {
    let dir = TempDir::new("replay-bad");
    let text = trade("AAPL.US", 1, 1000)
        + "not json\n"
        + "{\"type\":\"trade\",\"code\":\"X\"}\n"
        + &trade("AAPL.US", 2, 2000);
    let f = write(dir.path(), "bad.jsonl", &text);
    let (out, err, status) = replay(&["--speed", "max", f.to_str().unwrap()]);
    assert_eq!(status, Some(0));
    assert_eq!(out, trade("AAPL.US", 1, 1000) + &trade("AAPL.US", 2, 2000));
    let name = f.display().to_string();
    assert!(
        err.contains(&format!("{name}:2: not a line of alltick-stream")),
        "{err}"
    );
    assert!(err.contains(&format!("{name}:3: no time")), "{err}");
    assert!(err.contains("2 lines skipped"), "{err}");
    let (_, err, status) = replay(&["--speed", "max", "/no/such/file.jsonl"]);
    assert_eq!(status, Some(2), "{err}");
}

#[test]
fn a_gzip_capture_is_read_and_a_torn_one_up_to_its_tear() {
    let dir = TempDir::new("replay-gz");
    let mut text = String::new();
    for i in 0..3000 {
        text.push_str(&trade("AAPL.US", i + 1, 1_000_000 + i));
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let whole = dir.path().join("whole.jsonl.gz");
    std::fs::write(&whole, &gz).unwrap();
    let (out, err, _) = replay(&["--speed", "max", whole.to_str().unwrap()]);
    assert_eq!(out, text, "{err}");
    let torn = dir.path().join("torn.jsonl.gz");
    std::fs::write(&torn, &gz[..gz.len() / 2]).unwrap();
    let (out, err, status) = replay(&["--speed", "max", torn.to_str().unwrap()]);
    assert_eq!(status, Some(0));
    assert!(
        !out.is_empty() && text.starts_with(&out),
        "not the start of the capture"
    );
    assert!(err.contains("cannot read on after line"), "{err}");
}

#[test]
fn a_capture_of_the_simulator_replays_as_itself() {
    let sim = sim(100.0);
    let dir = TempDir::new("replay-round");
    let file = dir.path().join("cap.jsonl");
    capture_into(
        &sim,
        &file,
        &["NASDAQ:AAPL", "NASDAQ:TSLA", "HKEX:700@depth"],
        200,
    );
    let captured = std::fs::read_to_string(&file).unwrap();
    let (out, err, _) = replay(&["--speed", "max", file.to_str().unwrap()]);
    assert_eq!(out, captured, "{err}");
}

#[test]
fn stdin_changes_what_is_replayed_while_it_runs() {
    let dir = TempDir::new("replay-stdin");
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&trade("AAPL.US", i + 1, 1_000_000 + i * 100));
        text.push_str(&trade("TSLA.US", i + 1, 1_000_000 + i * 100));
    }
    let f = write(dir.path(), "s.jsonl", &text);
    // The recorded pace: 4 s.
    let mut tool = Tool::start(&["replay", f.to_str().unwrap()], None);
    check!(
        tool,
        tool.wait_for(WAIT, |out, _| out.iter().any(|l| l.contains("TSLA")))
    );
    tool.send("-NASDAQ:TSLA\n");
    check!(tool, tool.wait_exit(WAIT).is_some_and(|s| s.success()));
    let lines = tool.stdout();
    let last_tsla = lines.iter().rposition(|l| l.contains("TSLA.US"));
    let aapl_after = lines[last_tsla.unwrap_or(0)..]
        .iter()
        .filter(|l| l.contains("AAPL.US"))
        .count();
    check!(
        tool,
        aapl_after >= 10,
        "AAPL did not go on after -TSLA ({aapl_after} lines)"
    );
    check!(
        tool,
        lines.iter().filter(|l| l.contains("AAPL.US")).count() == 40
    );
}

#[test]
fn sigint_stops_a_replay_within_a_second_even_with_stdout_blocked() {
    let dir = TempDir::new("replay-int");
    let mut text = String::new();
    for i in 0..200_000u64 {
        text.push_str(&trade("AAPL.US", i + 1, 1_000_000 + i));
    }
    let f = write(dir.path(), "big.jsonl", &text);
    let mut tool = Tool::start(&["replay", "--speed", "max", f.to_str().unwrap()], None);
    check!(tool, tool.wait_lines(10));
    tool.pause_stdout();
    // The pipe fills within moments at this rate; then the replay waits
    // on stdout.
    check!(
        tool,
        tool.poll(WAIT, || tool.blocked_on_stdout()),
        "the replay never blocked writing its stdout"
    );
    let at = Instant::now();
    tool.signal("INT");
    let status = tool.wait_exit(Duration::from_secs(3));
    check!(tool, status.is_some_and(|s| s.success()), "{status:?}");
    check!(
        tool,
        at.elapsed() < Duration::from_millis(1500),
        "{:?}",
        at.elapsed()
    );
}

#[test]
fn a_closed_stdout_ends_a_replay_quietly() {
    let dir = TempDir::new("replay-head");
    let mut text = String::new();
    for i in 0..100_000u64 {
        text.push_str(&trade("AAPL.US", i + 1, 1_000_000 + i));
    }
    let f = write(dir.path(), "h.jsonl", &text);
    let out = Command::new("sh")
        .args([
            "-c",
            "\"$0\" replay --speed max \"$1\" | head -n 3",
            bin(),
            f.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("cannot write"));
}
