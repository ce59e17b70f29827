//! `alltick-stream serve`: a capture served over the AllTick protocol. The
//! tool itself captures from the simulator and reads the capture back from
//! `serve`; the raw client of `util::ws` checks the protocol where the tool
//! is not the point. Every wait is bounded; requests keep AllTick's 1 s rule
//! by reading frames until 1.1 s have passed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::Error;

use crate::util::ws::Client;
use crate::util::{TempDir, Tool, WAIT, files_under, sim, start, start_url, stop};

/// AllTick's rule: at least 1 s between two requests on a connection.
const PACE: Duration = Duration::from_millis(1100);

/// A running `alltick-stream serve` on a free port.
struct Serve {
    tool: Tool,
    addr: String,
}

impl Serve {
    /// `serve --listen 127.0.0.1:0 ARGS…`, once it said where it listens.
    fn start(args: &[&str]) -> Serve {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let tool = Tool::start(&all, None);
        let said = "serve: listening on ws://";
        check!(tool, tool.wait_stderr(said));
        let err = tool.stderr();
        let addr = err
            .split(said)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        check!(
            tool,
            addr.starts_with("127.0.0.1:") && !addr.ends_with(":0")
        );
        check!(
            tool,
            err.contains("(paths /quote-stock-b-ws-api and /quote-b-ws-api)")
        );
        Serve { tool, addr }
    }

    /// The stock endpoint's URL, with `query` (e.g. `?token=…`).
    fn url(&self, query: &str) -> String {
        format!("ws://{}/quote-stock-b-ws-api{query}", self.addr)
    }
}

/// A raw client of `serve`, keeping AllTick's 1 s rule between requests.
fn client(url: &str) -> Client {
    Client::connect(url).paced(PACE)
}

/// The next `n` trade pushes of `c`, as (code, seq).
fn trades(c: &mut Client, n: usize) -> Vec<(String, u64)> {
    c.trades(n).iter().map(|v| key(&v["data"])).collect()
}

/// (code, seq) of a push's data or of a line.
fn key(v: &Value) -> (String, u64) {
    (
        v["code"].as_str().unwrap_or_default().to_string(),
        v["seq"].as_u64().unwrap_or_default(),
    )
}

/// `n` trade lines alternating between `codes`, `step_ms` apart.
fn synthetic(dir: &Path, name: &str, codes: &[&str], n: usize, step_ms: u64) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let t0 = 1_796_083_200_000u64;
    for i in 0..n {
        let code = codes[i % codes.len()];
        writeln!(
            f,
            "{{\"type\":\"trade\",\"symbol\":\"{code}\",\"code\":\"{code}\",\"seq\":{},\"time\":{},\"price\":{}.{:02},\"volume\":{},\"turnover\":null,\"side\":\"buy\"}}",
            i + 1,
            t0 + i as u64 * step_ms,
            100 + i % 50,
            i % 100,
            100 * (1 + i % 7)
        )
        .expect("write");
    }
    f.flush().expect("flush");
    path
}

/// The lines of `files`, in order.
fn lines_of(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).expect("read a capture");
            text.lines().map(str::to_string).collect::<Vec<_>>()
        })
        .collect()
}

/// The tool against `serve` with `symbols`, until it wrote `n` lines; its
/// stdout then.
fn read_back(serve: &Serve, symbols: &[&str], n: usize) -> Vec<String> {
    let mut tool = start_url(&serve.url(""), symbols);
    check!(tool, tool.wait_lines(n), "fewer than {n} lines");
    stop(&mut tool);
    tool.stdout()
}

#[test]
fn the_tool_reads_back_from_serve_exactly_what_it_captured() {
    let symbols = ["NASDAQ:AAPL", "NASDAQ:TSLA"];
    let sim = sim(200.0);
    let dir = TempDir::new("serve-capture");
    let pattern = format!("{}/%Y-%m-%d/%H.jsonl", dir.path().display());
    let mut args = vec!["--output", pattern.as_str()];
    args.extend_from_slice(&symbols);
    let mut capture = start(&sim, &args);
    check!(capture, sim.wait_until(WAIT, |s| s.ticks.len() >= 600));
    stop(&mut capture);
    let files = files_under(dir.path());
    let captured = lines_of(&files);
    check!(capture, captured.len() >= 600, "{} lines", captured.len());

    let mut serve_args = vec!["--speed", "max"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    serve_args.extend(names.iter().map(String::as_str));
    let serve = Serve::start(&serve_args);
    let got = read_back(&serve, &symbols, captured.len());
    check!(
        serve.tool,
        got == captured,
        "read back {} lines, captured {}; first difference at {:?}",
        got.len(),
        captured.len(),
        got.iter().zip(&captured).position(|(a, b)| a != b)
    );
}

#[test]
fn nulls_odd_decimals_and_books_come_back_as_captured() {
    let dir = TempDir::new("serve-odd");
    let trades = [
        r#"{"type":"trade","symbol":"AAPL.US","code":"AAPL.US","seq":1,"time":1796083200000,"price":651.10,"volume":300,"turnover":195330.00,"side":"buy"}"#,
        r#"{"type":"trade","symbol":"AAPL.US","code":"AAPL.US","seq":2,"time":1796083200001,"price":123456789012.123456789,"volume":null,"turnover":null,"side":null}"#,
        r#"{"type":"trade","symbol":"AAPL.US","code":"AAPL.US","seq":30841439,"time":1796083200002,"price":0.000012345,"volume":0.5,"turnover":0,"side":"sell"}"#,
    ];
    let books = [
        r#"{"type":"depth","symbol":"700.HK","code":"700.HK","seq":7,"time":1796083200000,"bids":[[320.40,1200],[320.20,null]],"asks":[]}"#,
        r#"{"type":"depth","symbol":"700.HK","code":"700.HK","seq":8,"time":1796083200003,"bids":[],"asks":[[320.60,100]]}"#,
    ];
    let gap = r#"{"type":"gap","connection":"endpoint#1","codes":["AAPL.US"],"from":1796083200001,"to":1796083200002,"reason":"connection lost"}"#;
    let file = dir.path().join("odd.jsonl");
    let text = [books[0], trades[0], gap, trades[1], trades[2], books[1]].join("\n") + "\n";
    std::fs::write(&file, text).expect("write");
    let serve = Serve::start(&["--speed", "max", &file.display().to_string()]);
    // One tool per kind: each subscribes once, before the replay starts.
    let got = read_back(&serve, &["AAPL.US"], trades.len());
    check!(serve.tool, got == trades, "trades: {got:#?}");
    let got = read_back(&serve, &["700.HK@depth=2"], books.len());
    check!(serve.tool, got == books, "books: {got:#?}");
}

#[test]
fn a_heartbeat_is_answered_with_its_seq_id_and_trace() {
    let dir = TempDir::new("serve-heartbeat");
    let file = synthetic(dir.path(), "c.jsonl", &["AAPL.US"], 10, 100);
    let serve = Serve::start(&[&file.display().to_string()]);
    let mut c = client(&serve.url("?token=anything"));
    c.send_paced(r#"{"cmd_id":22000,"seq_id":4242,"trace":"hb-7f3a","data":{}}"#);
    let answer = c.next_json(Instant::now() + WAIT).expect("an answer");
    assert_eq!(
        answer,
        json!({"ret": 200, "msg": "ok", "cmd_id": 22001, "seq_id": 4242, "trace": "hb-7f3a", "data": {}})
    );
}

#[test]
fn a_replaced_set_narrows_the_pushes_and_a_cancel_stops_them() {
    let dir = TempDir::new("serve-replace");
    // 100 lines a second at --speed 10, for a minute.
    let file = synthetic(dir.path(), "c.jsonl", &["AAPL.US", "TSLA.US"], 6000, 100);
    let serve = Serve::start(&["--speed", "10", &file.display().to_string()]);
    let mut c = client(&serve.url(""));
    let both = c.subscribe(&["AAPL.US", "TSLA.US"]);
    assert_eq!(both["ret"], 200, "{both}");
    let seen: Vec<(String, u64)> = trades(&mut c, 10);
    assert!(seen.iter().any(|(code, _)| code == "TSLA.US"), "{seen:?}");

    let (_, seq) = c.request(22004, json!({"symbol_list": [{"code": "AAPL.US"}]}));
    let (_, answer) = c.answer(seq);
    assert_eq!(answer["ret"], 200, "{answer}");
    let (after_replace, seq) = c.request(22006, json!({"cancel_type": 2}));
    let pushed: Vec<(String, u64)> = after_replace
        .iter()
        .filter(|v| v["cmd_id"] == 22998)
        .map(|v| key(&v["data"]))
        .collect();
    assert!(
        pushed.len() > 10,
        "too few pushes after the replace: {pushed:?}"
    );
    assert!(
        pushed.iter().all(|(code, _)| code == "AAPL.US"),
        "a code outside the new set: {pushed:?}"
    );
    let (before_cancel, answer) = c.answer(seq);
    assert_eq!(answer["ret"], 200, "{answer}");
    assert!(before_cancel.iter().all(|v| v["data"]["code"] != "TSLA.US"));
    let (mut after_cancel, seq) = c.request(22000, json!({}));
    let (more, answer) = c.answer(seq);
    assert_eq!(answer["cmd_id"], 22001, "{answer}");
    after_cancel.extend(more);
    let pushes: Vec<&Value> = after_cancel
        .iter()
        .filter(|v| v["cmd_id"] == 22998)
        .collect();
    assert!(pushes.is_empty(), "pushed after the cancel: {pushes:?}");
}

#[test]
fn with_a_token_file_a_client_without_that_token_gets_http_401() {
    let dir = TempDir::new("serve-token");
    let file = synthetic(dir.path(), "c.jsonl", &["AAPL.US"], 10, 100);
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-serve\n").expect("write the token");
    let serve = Serve::start(&[
        "--token-file",
        &token.display().to_string(),
        &file.display().to_string(),
    ]);
    for query in ["", "?token=wrong", "?token="] {
        match tungstenite::connect(serve.url(query)) {
            Err(Error::Http(resp)) => assert_eq!(resp.status(), 401, "{query}"),
            other => panic!("{query}: expected HTTP 401, got {:?}", other.map(|_| ())),
        }
    }
    let mut c = client(&serve.url("?token=s3cret-serve"));
    assert_eq!(c.subscribe(&["AAPL.US"])["ret"], 200);
    assert_eq!(trades(&mut c, 10).len(), 10);
    check!(
        serve.tool,
        !serve.tool.stderr().contains("s3cret-serve"),
        "the token was printed"
    );
}

#[test]
fn bad_requests_get_error_rets_with_their_seq_id_and_trace() {
    let dir = TempDir::new("serve-errors");
    let file = synthetic(dir.path(), "c.jsonl", &["AAPL.US"], 10, 100);
    let serve = Serve::start(&[&file.display().to_string()]);
    let mut c = client(&serve.url(""));
    let cases = [
        (22004, json!({"symbol_list": []}), 601),
        // A forex code on the stock endpoint.
        (22004, json!({"symbol_list": [{"code": "EURUSD"}]}), 600),
        (22006, json!({"cancel_type": 9}), 400),
        (12345, json!({}), 400),
    ];
    for (cmd, data, ret) in cases {
        let (_, seq) = c.request(cmd, data.clone());
        let (_, answer) = c.answer(seq);
        assert_eq!(answer["ret"], ret, "{cmd} {data}: {answer}");
        assert_eq!(answer["trace"], format!("t{seq}"), "{answer}");
    }
    // A second request within the second.
    c.send_now(r#"{"cmd_id":22000,"seq_id":77,"trace":"fast","data":{}}"#);
    let (_, answer) = c.answer(77);
    assert_eq!(answer["ret"], 429, "{answer}");
    assert_eq!(answer["trace"], "fast", "{answer}");
}

#[test]
fn a_request_inside_the_second_is_answered_429_rate_limit() {
    let dir = TempDir::new("serve-rate");
    let file = synthetic(dir.path(), "c.jsonl", &["AAPL.US"], 10, 100);
    let serve = Serve::start(&[&file.display().to_string()]);
    let mut c = client(&serve.url(""));
    let (_, first) = c.request(22000, json!({}));
    // The second at once: well inside the second since the first.
    c.send_now(
        r#"{"cmd_id":22004,"seq_id":50,"trace":"soon","data":{"symbol_list":[{"code":"AAPL.US"}]}}"#,
    );
    assert_eq!(c.answer(first).1["ret"], 200);
    let (_, answer) = c.answer(50);
    assert_eq!(answer["ret"], 429, "{answer}");
    assert_eq!(answer["msg"], "rate limit", "{answer}");
    assert_eq!(answer["cmd_id"], 22005, "{answer}");
    assert_eq!(answer["trace"], "soon", "{answer}");
    // Refused and otherwise ignored: nothing is pushed; once the second
    // has passed, the same request is served.
    let (frames, seq) = c.request(22004, json!({"symbol_list": [{"code": "AAPL.US"}]}));
    assert!(
        frames.iter().all(|f| f["cmd_id"] != 22998),
        "pushed after a refused subscription: {frames:?}"
    );
    assert_eq!(c.answer(seq).1["ret"], 200);
    assert_eq!(c.trades(10).len(), 10);
}

#[test]
fn each_connection_replays_the_capture_from_its_start() {
    let dir = TempDir::new("serve-two");
    let n = 3000;
    let file = synthetic(dir.path(), "c.jsonl", &["AAPL.US", "TSLA.US"], n, 10);
    let want: Vec<(String, u64)> = lines_of(std::slice::from_ref(&file))
        .iter()
        .map(|l| key(&serde_json::from_str(l).expect("a line")))
        .collect();
    let serve = Serve::start(&["--speed", "max", &file.display().to_string()]);
    let mut first = client(&serve.url(""));
    assert_eq!(first.subscribe(&["AAPL.US", "TSLA.US"])["ret"], 200);
    assert_eq!(trades(&mut first, n), want);
    // The first has had the whole capture; the second starts from its start.
    let mut second = client(&serve.url(""));
    assert_eq!(second.subscribe(&["AAPL.US", "TSLA.US"])["ret"], 200);
    assert_eq!(trades(&mut second, n), want);
}

#[test]
fn a_client_that_stalls_is_waited_for_misses_nothing_and_is_still_heard() {
    let dir = TempDir::new("serve-stall");
    // ~30 MB of pushes: more than tungstenite's 4 MiB write buffer and the
    // sockets' buffers together.
    let n = 200_000;
    let file = synthetic(dir.path(), "c.jsonl", &["AAPL.US"], n, 1);
    let serve = Serve::start(&["--speed", "max", &file.display().to_string()]);
    let mut c = client(&serve.url(""));
    assert_eq!(c.subscribe(&["AAPL.US"])["ret"], 200);
    // The stall is what is tested: the client reads nothing for 4 s while
    // everything is due at once, and keeps sending heartbeats 1.1 s apart
    // meanwhile. The server must read them as they come (else two arrive
    // at once, and the second is refused as too fast).
    let beats = 4;
    for i in 0..beats {
        // Pacing, not a synchronisation: the 1 s rule, kept without
        // reading (reading is what the stall stops).
        std::thread::sleep(PACE);
        let hb = json!({"cmd_id": 22000, "seq_id": 100 + i, "trace": "stalled", "data": {}});
        c.send_json(&hb);
    }
    let deadline = Instant::now() + WAIT;
    let (mut seqs, mut answers) = (Vec::with_capacity(n), Vec::new());
    while seqs.len() < n || answers.len() < beats as usize {
        let Some(v) = c.next_json(deadline) else {
            panic!("{} pushes and {answers:?} within {WAIT:?}", seqs.len())
        };
        match v["cmd_id"].as_u64() {
            Some(22998) => seqs.push(v["data"]["seq"].as_u64().unwrap_or(0)),
            Some(22001) => answers.push(v["ret"].clone()),
            _ => panic!("unexpected: {v}"),
        }
    }
    assert!(
        seqs.iter().zip(1u64..).all(|(seq, want)| *seq == want),
        "pushes lost or out of order"
    );
    assert!(
        answers.iter().all(|r| *r == 200),
        "heartbeats refused: {answers:?}"
    );
}

#[test]
fn sigint_stops_serve_with_a_client_connected() {
    let dir = TempDir::new("serve-stop");
    let file = synthetic(dir.path(), "c.jsonl", &["AAPL.US"], 6000, 100);
    let mut serve = Serve::start(&[&file.display().to_string()]);
    let mut c = client(&serve.url(""));
    assert_eq!(c.subscribe(&["AAPL.US"])["ret"], 200);
    assert_eq!(trades(&mut c, 1).len(), 1);
    stop(&mut serve.tool);
}
