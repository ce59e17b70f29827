//! The recipes of docs/RECIPES.md, run for real: the jq filters over the
//! tool's output (a captured run and a live pipe into jq) and the FIFO
//! control channel opened read-write (`<>ctl`). `scripts/recipes/check.sh` runs these and
//! the other recipes exactly as written, against `--demo`.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    self, TOKEN, TempDir, Tool, WAIT, bin, json_lines, key, sim, start_url, stop, wait_for_set,
};

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

/// jq's output lines as JSON values, failing on an error exit.
fn jq_values(tool: &Tool, args: &[&str], input: &str) -> Vec<Value> {
    let out = util::jq(args, input);
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

fn price(v: &Value) -> f64 {
    v["price"].as_f64().expect("price is a number")
}

#[test]
fn jq_recipes_select_exactly_the_matching_trades() {
    if !util::require("jq") {
        return;
    }
    let sim = sim(20.0);
    let mut tool = start_url(&sim.url(), &SYMBOLS);
    let enough = tool.wait_for(WAIT, |out, _| {
        out.len() >= 120
            && SYMBOLS.iter().all(|s| {
                let needle = format!("\"symbol\":\"{s}\"");
                out.iter().filter(|l| l.contains(&needle)).count() >= 3
            })
    });
    check!(tool, enough, "not enough trades for every symbol");
    stop(&mut tool);
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

#[test]
fn jq_live_last_price_map_follows_the_stream_while_it_runs() {
    if !util::require("jq") {
        return;
    }
    let sim = sim(10.0);
    let mut cmd = Command::new(bin());
    cmd.args(["--url", &sim.url(), "NASDAQ:AAPL", "NASDAQ:TSLA"])
        .env("ALLTICK_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn alltick-stream");
    let tool_out = child.stdout.take().expect("stdout");
    let mut tool = Tool::watch(child, &cmd);
    // alltick-stream … | jq -cn --unbuffered 'foreach …'
    let mut jq = Command::new("jq");
    jq.args([
        "-cn",
        "--unbuffered",
        "foreach inputs as $t ({}; .[$t.symbol] = $t.price)",
    ])
    .stdin(Stdio::from(tool_out))
    .stdout(Stdio::piped());
    let maps = Tool::spawn(jq);
    let why = |maps: &Tool, tool: &Tool| format!("{}{}", maps.describe(), tool.describe());

    // Maps arrive while the tool runs: jq does not hold them back.
    let both = maps.wait_for(WAIT, |lines, _| {
        lines
            .last()
            .is_some_and(|l| l.contains("\"NASDAQ:AAPL\":") && l.contains("\"NASDAQ:TSLA\":"))
    });
    assert!(both, "no map with both symbols{}", why(&maps, &tool));
    let running = tool.wait_exit(Duration::ZERO).is_none();
    assert!(running, "the tool stopped{}", why(&maps, &tool));

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
    let caught_up = maps.wait_every(WAIT, Duration::from_millis(50), |lines, _| {
        lines.last().is_some_and(|l| {
            let got: HashMap<String, f64> = serde_json::from_str(l).unwrap_or_default();
            got == expected()
        })
    });
    assert!(
        caught_up,
        "last map != {:?}{}",
        expected(),
        why(&maps, &tool)
    );

    // The tool stops on SIGINT, and jq with it at EOF.
    tool.signal("INT");
    assert!(
        maps.wait_stdout_closed(WAIT),
        "jq did not end after the tool{}",
        why(&maps, &tool)
    );
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
    let ctl = dir.path().join("ctl");
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
    let mut tool = Tool::spawn(cmd);
    // Only the tool holds the FIFO open now: the command was consumed.
    check!(tool, wait_for_set(&sim, &["AAPL.US"]), "initial set");

    // echo "+NYSE:IBM" >ctl: one writer comes and goes.
    echo_into(&ctl, "+NYSE:IBM\n");
    check!(
        tool,
        wait_for_set(&sim, &["AAPL.US", "IBM.US"]),
        "no 22004 with both codes"
    );
    // The tool read that line and then found no writer: opened read-only
    // it would have seen EOF here and stopped reading commands.
    echo_into(&ctl, "-NASDAQ:AAPL\n");
    check!(
        tool,
        wait_for_set(&sim, &["IBM.US"]),
        "the second writer's command was not read"
    );
    let running = tool.wait_exit(Duration::ZERO).is_none();
    check!(tool, running, "the tool stopped");
}
