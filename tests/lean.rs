//! `--fields` and `--format csv`: lean lines, read back by an independent
//! reader (Python's csv module) into exactly the values of the JSON lines.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::{TempDir, Tool, WAIT, capture_into, files_under, sim, start, stop};

/// Run `replay ARGS` to completion (bounded): stdout, stderr, status.
fn replay(args: &[&str]) -> (String, String, Option<i32>) {
    let mut all = vec!["replay", "--speed", "max"];
    all.extend_from_slice(args);
    let mut tool = Tool::start(&all, None);
    let status = tool.wait_exit(WAIT);
    let out: String = tool.stdout().iter().map(|l| format!("{l}\n")).collect();
    (out, tool.stderr(), status.and_then(|s| s.code()))
}

/// A real capture of the simulator: trades of three codes, some with
/// null volumes (forex), written by the tool itself.
fn capture(dir: &Path) -> String {
    let sim = sim(200.0);
    let file = dir.join("cap.jsonl");
    capture_into(&sim, &file, &["NASDAQ:AAPL", "NASDAQ:TSLA", "EURUSD"], 300);
    file.to_str().unwrap().to_string()
}

/// Python reads `csv` with its csv module and the JSON lines with every
/// number kept as its text, and compares them value by value; prints the
/// rows compared.
const COMPARE: &str = r#"
import csv, json, sys
fields = sys.argv[3].split(",")
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
lines = [json.loads(l, parse_float=str, parse_int=str) for l in open(sys.argv[2])]
assert rows and len(rows) == len(lines), (len(rows), len(lines))
for row, line in zip(rows, lines):
    assert list(row) == fields, (list(row), fields)
    for f in fields:
        want = line[f]
        want = "" if want is None else str(want)
        assert row[f] == want, (f, row[f], want)
print(len(rows))
"#;

fn python_compare(csv: &Path, jsonl: &Path, fields: &str) -> usize {
    let out = Command::new("python3")
        .args(["-c", COMPARE])
        .arg(csv)
        .arg(jsonl)
        .arg(fields)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn csv_read_back_by_python_holds_exactly_the_values_of_the_json_lines() {
    if !crate::util::require("python3") {
        return;
    }
    let dir = TempDir::new("lean-csv");
    let cap = capture(dir.path());
    let all = "type,symbol,code,seq,time,price,volume,turnover,side";
    for fields in [all, "time,code,price,volume"] {
        let (csv, err, status) = replay(&["--format", "csv", "--fields", fields, &cap]);
        assert_eq!(status, Some(0), "{err}");
        assert!(csv.starts_with(&format!("{fields}\n")), "{csv:.200}");
        let (json, err, _) = replay(&["--fields", fields, &cap]);
        assert!(json.lines().all(|l| l.starts_with('{')), "{err}");
        let (c, j) = (dir.path().join("x.csv"), dir.path().join("x.jsonl"));
        std::fs::write(&c, &csv).unwrap();
        std::fs::write(&j, &json).unwrap();
        let rows = python_compare(&c, &j, fields);
        assert!(rows >= 300, "{rows}");
        // The JSON lines of --fields hold the full lines' values.
        let full = std::fs::read_to_string(&cap).unwrap();
        for (lean, line) in json.lines().zip(full.lines()) {
            let (lean, line): (serde_json::Value, serde_json::Value) = (
                serde_json::from_str(lean).unwrap(),
                serde_json::from_str(line).unwrap(),
            );
            let keys: Vec<&String> = lean.as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), fields.split(',').count());
            for k in fields.split(',') {
                assert_eq!(lean[k], line[k], "{k}");
            }
        }
        if fields != all {
            // The order asked for, digit for digit.
            let first = json.lines().next().unwrap();
            assert!(first.starts_with("{\"time\":"), "{first}");
        }
    }
}

#[test]
fn live_csv_files_get_one_header_row_each_even_when_appended() {
    let sim = sim(100.0);
    let dir = TempDir::new("lean-files");
    let pattern = format!("{}/%Y-%m-%d.csv", dir.path().display());
    let rows = |dir: &Path| -> usize {
        files_under(dir)
            .iter()
            .map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .count()
            })
            .sum()
    };
    for _ in 0..2 {
        let before = rows(dir.path());
        let mut tool = start(
            &sim,
            &[
                "--output",
                &pattern,
                "--format",
                "csv",
                "--fields",
                "time,code,price",
                "NASDAQ:AAPL",
            ],
        );
        let grown = tool.poll(WAIT, || rows(dir.path()) > before + 20);
        check!(tool, grown);
        stop(&mut tool);
    }
    let files = files_under(dir.path());
    assert!(!files.is_empty());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let headers = text.lines().filter(|l| *l == "time,code,price").count();
        assert_eq!(headers, 1, "{}: {text:.300}", f.display());
        assert!(text.starts_with("time,code,price\n"));
        for row in text.lines().skip(1) {
            let cells: Vec<&str> = row.split(',').collect();
            assert_eq!(cells.len(), 3, "{row}");
            assert!(
                cells[0].parse::<u64>().is_ok() && cells[1] == "AAPL.US",
                "{row}"
            );
        }
    }
}

#[test]
fn stdout_appended_to_gets_no_second_header() {
    let dir = TempDir::new("lean-append");
    let cap = dir.path().join("cap.jsonl");
    let t = "{\"type\":\"trade\",\"symbol\":\"NASDAQ:AAPL\",\"code\":\"AAPL.US\",\"seq\":1,\"time\":1000,\"price\":1.5,\"volume\":2,\"turnover\":null,\"side\":null}\n";
    std::fs::write(&cap, t).unwrap();
    let out = dir.path().join("out.csv");
    for _ in 0..2 {
        let status = Command::new("sh")
            .args([
                "-c",
                "exec \"$0\" replay --speed max --format csv \"$1\" >>\"$2\"",
            ])
            .arg(crate::util::bin())
            .arg(&cap)
            .arg(&out)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "type,symbol,code,seq,time,price,volume,turnover,side\n\
         trade,NASDAQ:AAPL,AAPL.US,1,1000,1.5,2,,\n\
         trade,NASDAQ:AAPL,AAPL.US,1,1000,1.5,2,,\n"
    );
}

#[test]
fn an_unknown_field_exits_2_naming_the_valid_ones() {
    for args in [
        &["--demo", "--fields", "time,prise"][..],
        &[
            "replay",
            "Cargo.toml",
            "--bars",
            "1m",
            "--fields",
            "start,price",
        ][..],
    ] {
        let mut tool = Tool::start(args, None);
        let status = tool.wait_exit(WAIT).expect("exits");
        assert_eq!(status.code(), Some(2), "{}", tool.stderr());
        let err = tool.stderr();
        assert!(err.contains("is not a field of"), "{err}");
        assert!(err.contains("valid: type, symbol, code"), "{err}");
    }
}

#[test]
fn depth_has_no_csv_form_at_start_or_on_stdin_and_gaps_go_to_stderr() {
    let mut refused = Tool::start(&["--demo", "--format", "csv", "NASDAQ:AAPL@depth"], None);
    let status = refused.wait_exit(WAIT).expect("exits");
    assert_eq!(status.code(), Some(2));
    assert!(
        refused.stderr().contains("no CSV form"),
        "{}",
        refused.stderr()
    );

    let sim = sim(50.0);
    let mut tool = start(&sim, &["--format", "csv", "NASDAQ:AAPL"]);
    check!(tool, tool.wait_lines(3));
    tool.send("+NASDAQ:TSLA@depth\n");
    check!(tool, tool.wait_stderr("stdin:1: depth has no CSV form"));
    stop(&mut tool);
    assert!(tool.stdout().iter().all(|l| !l.contains("depth")));

    // A capture's gap line: not a CSV row, said on stderr instead.
    let dir = TempDir::new("lean-gap");
    let cap = dir.path().join("cap.jsonl");
    let mut f = std::fs::File::create(&cap).unwrap();
    f.write_all(b"{\"type\":\"gap\",\"connection\":\"stock#1\",\"codes\":[\"AAPL.US\"],\"from\":1500,\"to\":2500,\"reason\":\"connection lost: x\"}\n").unwrap();
    f.write_all(b"{\"type\":\"depth\",\"symbol\":\"HKEX:700\",\"code\":\"700.HK\",\"seq\":1,\"time\":2600,\"bids\":[[1,2]],\"asks\":[]}\n").unwrap();
    drop(f);
    let (out, err, status) = replay(&["--format", "csv", cap.to_str().unwrap()]);
    assert_eq!(status, Some(0));
    assert_eq!(
        out,
        "type,symbol,code,seq,time,price,volume,turnover,side\n"
    );
    assert!(
        err.contains("gap: {\"type\":\"gap\",\"connection\":\"stock#1\""),
        "{err}"
    );
    assert!(err.contains("1 depth line left out of CSV"), "{err}");
}

#[test]
fn restarts_into_lean_csv_files_write_no_trade_twice() {
    // Rows without seq: what each code's last push was is kept beside the
    // files, so the trade the server pushes again on subscription is known.
    let sim = crate::util::repushing(50.0);
    let dir = TempDir::new("lean-restart");
    let pattern = format!("{}/%Y-%m-%d.csv", dir.path().display());
    let args = [
        "--output",
        &pattern,
        "--format",
        "csv",
        "--fields",
        "time,code,price",
        "C0.US",
        "C1.US",
    ];
    let rows = |dir: &Path| -> Vec<String> {
        files_under(dir)
            .iter()
            .flat_map(|f| {
                let text = std::fs::read_to_string(f).unwrap_or_default();
                text.lines().skip(1).map(str::to_string).collect::<Vec<_>>()
            })
            .collect()
    };
    for round in 0..3 {
        let before = rows(dir.path()).len();
        sim.set_ticks_per_sec(50.0);
        let mut tool = start(&sim, &args);
        check!(
            tool,
            tool.poll(WAIT, || rows(dir.path()).len() >= before + 10),
            "round {round}"
        );
        sim.set_ticks_per_sec(0.0);
        stop(&mut tool);
    }
    let st = sim.state();
    assert!(st.repushes.len() >= 3, "{} re-pushes", st.repushes.len());
    let all = rows(dir.path());
    let unique: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a row written twice");
    assert_eq!(all.len(), st.ticks.len(), "every trade pushed, once");
}
