//! The README's recipes, run for real: the jq filters over the tool's output
//! (a captured run and a live pipe into jq) and the FIFO control channel
//! opened read-write (`<>ctl`). `scripts/recipes/check.sh` runs these and
//! the other recipes exactly as written, against `--demo`.

mod util;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use alltick_stream::sim::Simulator;
use serde_json::Value;
use util::{Tool, WAIT, bin, json_lines, wait_for_set};

const TOKEN: &str = "tok-RECIPES-5a4b3c";

/// Eight symbols: their random starting prices (20..500) almost surely fall
/// on both sides of the recipe's 200.
const SYMBOLS: [&str; 8] = [
    "NASDAQ:AAPL",
    "NASDAQ:TSLA",
    "NASDAQ:MSFT",
    "NASDAQ:NVDA",
    "NASDAQ:AMZN",
    "NYSE:IBM",
    "NYSE:KO",
    "NYSE:JPM",
];

fn sim(ticks_per_sec: f64) -> Simulator {
    util::simulator(ticks_per_sec, TOKEN)
}

/// Kill a child process on every way out of a test.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run `jq ARGS` over `input`, bounded by [`WAIT`].
fn jq(args: &[&str], input: &str) -> Output {
    let mut child = Command::new("jq")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jq is installed");
    let mut stdin = child.stdin.take().expect("jq stdin");
    let input = input.to_owned();
    // Written from a thread: jq's output may fill its pipe before it has
    // read all of its input.
    thread::spawn(move || stdin.write_all(input.as_bytes()));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(WAIT) {
        Ok(out) => out.expect("wait for jq"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("jq {args:?} did not finish within {WAIT:?}");
        }
    }
}

/// jq's output lines as JSON values, failing on an error exit.
fn jq_values(tool: &Tool, args: &[&str], input: &str) -> Vec<Value> {
    let out = jq(args, input);
    check!(
        tool,
        out.status.success(),
        "jq {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .map(|v| v.expect("jq printed JSON"))
        .collect()
}

/// (code, seq): what identifies a trade.
fn key(v: &Value) -> (String, u64) {
    (
        v["code"].as_str().unwrap_or_default().to_owned(),
        v["seq"].as_u64().unwrap_or_default(),
    )
}

fn price(v: &Value) -> f64 {
    v["price"].as_f64().expect("price is a number")
}

#[test]
fn jq_recipes_select_exactly_the_matching_trades() {
    let sim = sim(20.0);
    let url = sim.url();
    let mut args = vec!["--url", url.as_str()];
    args.extend_from_slice(&SYMBOLS);
    let mut tool = Tool::start(&args, Some(TOKEN));
    let enough = tool.wait_for(WAIT, |out, _| {
        out.len() >= 120
            && SYMBOLS.iter().all(|s| {
                let needle = format!("\"symbol\":\"{s}\"");
                out.iter().filter(|l| l.contains(&needle)).count() >= 3
            })
    });
    check!(tool, enough, "not enough trades for every symbol");
    tool.signal("INT");
    let status = tool.wait_exit(WAIT);
    check!(
        tool,
        status.is_some_and(|s| s.success()),
        "exit: {status:?}"
    );
    let trades = json_lines(&tool);
    let input = tool.stdout().join("\n") + "\n";

    // Price threshold, as written, and at the median so that both sides
    // are surely populated.
    let mut prices: Vec<f64> = trades.iter().map(price).collect();
    prices.sort_by(f64::total_cmp);
    let median = prices[prices.len() / 2];
    for (threshold, filter) in [
        (200.0, "select(.price > 200)".to_owned()),
        (median, format!("select(.price > {median})")),
    ] {
        let got = jq_values(&tool, &["-c", "--unbuffered", &filter], &input);
        let want: Vec<&Value> = trades.iter().filter(|t| price(t) > threshold).collect();
        check!(
            tool,
            got.iter().map(key).collect::<Vec<_>>()
                == want.iter().map(|t| key(t)).collect::<Vec<_>>(),
            "{filter}: {} selected, {} expected",
            got.len(),
            want.len()
        );
        check!(
            tool,
            got.iter().zip(&want).all(|(g, w)| price(g) == price(w)),
            "{filter}: a price changed"
        );
    }
    let below = trades.iter().filter(|t| price(t) <= median).count();
    check!(tool, below > 0 && below < trades.len(), "median split");

    // One symbol.
    let got = jq_values(
        &tool,
        &["-c", "--unbuffered", r#"select(.symbol == "NASDAQ:AAPL")"#],
        &input,
    );
    let want: Vec<_> = trades
        .iter()
        .filter(|t| t["symbol"] == "NASDAQ:AAPL")
        .map(key)
        .collect();
    check!(tool, !want.is_empty(), "no AAPL trades");
    check!(
        tool,
        got.iter().map(key).collect::<Vec<_>>() == want,
        "symbol filter: {} selected, {} expected",
        got.len(),
        want.len()
    );

    // Last price per symbol of a finished capture.
    let got = jq_values(
        &tool,
        &["-n", "reduce inputs as $t ({}; .[$t.symbol] = $t.price)"],
        &input,
    );
    let mut last: HashMap<&str, f64> = HashMap::new();
    for t in &trades {
        last.insert(t["symbol"].as_str().expect("symbol"), price(t));
    }
    check!(tool, got.len() == 1, "reduce printed {} values", got.len());
    let map = got[0].as_object().expect("an object");
    check!(
        tool,
        map.len() == SYMBOLS.len()
            && map
                .iter()
                .all(|(s, p)| last.get(s.as_str()) == p.as_f64().as_ref()),
        "last prices {map:?}, expected {last:?}"
    );
}

/// Lines a child writes to a pipe, collected by a thread.
#[derive(Clone, Default)]
struct Lines(Arc<(Mutex<Collected>, Condvar)>);

#[derive(Default)]
struct Collected {
    lines: Vec<String>,
    closed: bool,
}

impl Lines {
    fn collect(pipe: impl Read + Send + 'static) -> Lines {
        let lines = Lines::default();
        let shared = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let (m, cv) = &*shared.0;
                m.lock().unwrap().lines.push(line);
                cv.notify_all();
            }
            let (m, cv) = &*shared.0;
            m.lock().unwrap().closed = true;
            cv.notify_all();
        });
        lines
    }

    /// Wait until `pred(lines, closed)` holds, re-checked at least every
    /// `step` (for conditions that also depend on something else); false
    /// after `timeout`.
    fn wait(
        &self,
        timeout: Duration,
        step: Duration,
        pred: impl Fn(&[String], bool) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.0;
        let mut g = m.lock().unwrap();
        loop {
            if pred(&g.lines, g.closed) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = cv.wait_timeout(g, left.min(step)).unwrap().0;
        }
    }

    fn text(&self) -> String {
        self.0.0.lock().unwrap().lines.join("\n")
    }
}

#[test]
fn jq_live_last_price_map_follows_the_stream_while_it_runs() {
    let sim = sim(10.0);
    let tool = Command::new(bin())
        .args(["--url", &sim.url(), "NASDAQ:AAPL", "NASDAQ:TSLA"])
        .env("ALLTICK_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn alltick-stream");
    let mut tool = Reap(tool);
    let tool_out = tool.0.stdout.take().expect("stdout");
    let tool_err = Lines::collect(tool.0.stderr.take().expect("stderr"));
    // alltick-stream … | jq -cn --unbuffered 'foreach …'
    let jq = Command::new("jq")
        .args([
            "-cn",
            "--unbuffered",
            "foreach inputs as $t ({}; .[$t.symbol] = $t.price)",
        ])
        .stdin(Stdio::from(tool_out))
        .stdout(Stdio::piped())
        .spawn()
        .expect("jq is installed");
    let mut jq = Reap(jq);
    let maps = Lines::collect(jq.0.stdout.take().expect("jq stdout"));
    let why = || {
        format!(
            "\n--- jq:\n{}\n--- stderr:\n{}",
            maps.text(),
            tool_err.text()
        )
    };

    // Maps arrive while the tool runs: jq does not hold them back.
    let both = maps.wait(WAIT, WAIT, |lines, _| {
        lines
            .last()
            .is_some_and(|l| l.contains("\"NASDAQ:AAPL\":") && l.contains("\"NASDAQ:TSLA\":"))
    });
    assert!(both, "no map with both symbols{}", why());
    assert!(
        tool.0.try_wait().expect("try_wait").is_none(),
        "the tool stopped{}",
        why()
    );

    // With the market stopped, the last map holds the last price the
    // server sent for each code.
    sim.set_ticks_per_sec(0.0);
    let expected = || -> HashMap<String, f64> {
        let mut last = HashMap::new();
        for t in &sim.state().ticks {
            let symbol = match t.code.as_str() {
                "AAPL.US" => "NASDAQ:AAPL",
                "TSLA.US" => "NASDAQ:TSLA",
                other => other,
            };
            last.insert(symbol.to_owned(), t.price.parse::<f64>().expect("price"));
        }
        last
    };
    let caught_up = maps.wait(WAIT, Duration::from_millis(50), |lines, _| {
        lines.last().is_some_and(|l| {
            let got: HashMap<String, f64> = serde_json::from_str(l).unwrap_or_default();
            got == expected()
        })
    });
    assert!(caught_up, "last map != {:?}{}", expected(), why());

    // The tool stops on SIGINT, and jq with it at EOF.
    let ok = Command::new("kill")
        .args(["-INT", &tool.0.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -INT failed");
    assert!(
        maps.wait(WAIT, WAIT, |_, closed| closed),
        "jq did not end after the tool{}",
        why()
    );
}

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "alltick-recipes-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `echo TEXT >ctl`: open the FIFO for writing, write, close; bounded (an
/// open for writing blocks while nothing has the FIFO open for reading).
fn echo_into(fifo: &Path, text: &str) {
    let (fifo, text) = (fifo.to_owned(), text.to_owned());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let r = OpenOptions::new()
            .write(true)
            .open(&fifo)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(WAIT) {
        Ok(r) => r.expect("write to the FIFO"),
        Err(_) => panic!("opening the FIFO for writing blocked: nothing reads it"),
    }
}

#[test]
fn fifo_opened_read_write_keeps_reading_after_each_writer_closes() {
    let sim = sim(5.0);
    let dir = TempDir::new("fifo");
    let ctl = dir.0.join("ctl");
    let made = Command::new("mkfifo")
        .arg(&ctl)
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "mkfifo failed");

    // alltick-stream NASDAQ:AAPL <>ctl >ticks.jsonl &
    let ctl_rw = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&ctl)
        .expect("open the FIFO read-write");
    let mut cmd = Command::new(bin());
    cmd.args(["--url", &sim.url(), "NASDAQ:AAPL"])
        .env("ALLTICK_TOKEN", TOKEN)
        .stdin(Stdio::from(ctl_rw))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut tool = Reap(cmd.spawn().expect("spawn alltick-stream"));
    // Only the tool holds the FIFO open now.
    drop(cmd);
    let stderr = Lines::collect(tool.0.stderr.take().expect("stderr"));
    let why = || format!("\n--- stderr:\n{}", stderr.text());
    assert!(wait_for_set(&sim, &["AAPL.US"]), "initial set{}", why());

    // echo "+NYSE:IBM" >ctl: one writer comes and goes.
    echo_into(&ctl, "+NYSE:IBM\n");
    assert!(
        wait_for_set(&sim, &["AAPL.US", "IBM.US"]),
        "no 22004 with both codes{}",
        why()
    );
    // The tool read that line and then found no writer: opened read-only
    // it would have seen EOF here and stopped reading commands.
    echo_into(&ctl, "-NASDAQ:AAPL\n");
    assert!(
        wait_for_set(&sim, &["IBM.US"]),
        "the second writer's command was not read{}",
        why()
    );
    assert!(
        tool.0.try_wait().expect("try_wait").is_none(),
        "the tool stopped{}",
        why()
    );
}
