//! `--bars`: bar lines checked against an aggregation computed here, with
//! exact decimals of the test's own (fixed-point integers), not the
//! tool's code: over a random capture through `replay`, and live against
//! the simulator across reconnects, several connections and re-pushes.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    TempDir, Tool, WAIT, before_midnight, civil, config, files_under, repushing, start, start_sim,
    stop,
};

/// Decimal text (digits, at most one dot, at most 8 decimals) as a whole
/// number of 1e-8 units, and its count of decimals.
fn fixed(text: &str) -> (u128, usize) {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    assert!(frac.len() <= 8, "{text}");
    let digits = format!("{int}{frac:0<8}");
    (digits.parse().unwrap(), frac.len())
}

/// One trade as the test made it.
#[derive(Clone, Debug)]
struct T {
    code: String,
    time: u64,
    price: String,
    volume: Option<String>,
    turnover: Option<String>,
}

/// A bar as the test computes it.
#[derive(Debug, Default)]
struct Want {
    open: (u64, String),
    close: (u64, String),
    high: (u128, String),
    low: (u128, String),
    volume: Option<(u128, usize)>,
    turnover: Option<(u128, usize)>,
    trades: u64,
}

impl Want {
    fn take(&mut self, t: &T) {
        let p = fixed(&t.price).0;
        if self.trades == 0 {
            self.open = (t.time, t.price.clone());
            self.close = (t.time, t.price.clone());
            self.high = (p, t.price.clone());
            self.low = (p, t.price.clone());
        }
        // Open: the earliest time, the first received of equal times;
        // close: the latest time, the last received of equal times.
        if t.time < self.open.0 {
            self.open = (t.time, t.price.clone());
        }
        if t.time >= self.close.0 {
            self.close = (t.time, t.price.clone());
        }
        if p > self.high.0 {
            self.high = (p, t.price.clone());
        }
        if p < self.low.0 {
            self.low = (p, t.price.clone());
        }
        let add = |sum: &mut Option<(u128, usize)>, v: &Option<String>| {
            if let Some(v) = v {
                let (n, d) = fixed(v);
                let s = sum.get_or_insert((0, 0));
                *s = (s.0 + n, s.1.max(d));
            }
        };
        add(&mut self.volume, &t.volume);
        add(&mut self.turnover, &t.turnover);
        self.trades += 1;
    }

    /// Check a bar line's values against this bar.
    fn check(&self, bar: &Value, raw: &str) {
        let text = |k: &str| number_text(raw, k);
        assert_eq!(text("open"), self.open.1, "open: {raw}");
        assert_eq!(text("close"), self.close.1, "close: {raw}");
        assert_eq!(fixed(&text("high")).0, self.high.0, "high: {raw}");
        assert_eq!(fixed(&text("low")).0, self.low.0, "low: {raw}");
        for (k, want) in [("volume", self.volume), ("turnover", self.turnover)] {
            match want {
                None => assert!(bar[k].is_null(), "{k}: {raw}"),
                // The exact sum, with as many decimals as the most precise
                // addend.
                Some(sum) => assert_eq!(fixed(&text(k)), sum, "{k}: {raw}"),
            }
        }
        assert_eq!(bar["trades"].as_u64(), Some(self.trades), "{raw}");
    }
}

/// The text of the number after `"key":` in a JSON line.
fn number_text(line: &str, key: &str) -> String {
    let at = line.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect()
}

/// A tiny deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A decimal below `below` with 0 to `max` decimals, `1.50` and `1.5`
/// alike.
fn decimal(rng: &mut Rng, below: u64, max: u64) -> String {
    let int = rng.below(below);
    match rng.below(max + 1) {
        0 => int.to_string(),
        d => format!(
            "{int}.{:0w$}",
            rng.below(10u64.pow(d as u32)),
            w = d as usize
        ),
    }
}

fn line(t: &T, seq: u64) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".into());
    format!(
        "{{\"type\":\"trade\",\"symbol\":\"S:{c}\",\"code\":\"{c}\",\"seq\":{seq},\"time\":{},\"price\":{},\"volume\":{},\"turnover\":{},\"side\":null}}\n",
        t.time,
        t.price,
        opt(&t.volume),
        opt(&t.turnover),
        c = t.code
    )
}

/// `replay --speed max --bars 1m` of a capture holding `text`, run to its
/// successful end (the directory lives as long as the caller keeps it).
fn replay_bars_1m(name: &str, text: &str) -> (TempDir, Tool) {
    let dir = TempDir::new(name);
    let cap = dir.path().join("cap.jsonl");
    std::fs::write(&cap, text).unwrap();
    let mut tool = Tool::start(
        &[
            "replay",
            "--speed",
            "max",
            "--bars",
            "1m",
            cap.to_str().unwrap(),
        ],
        None,
    );
    let status = tool.wait_exit(WAIT);
    assert!(status.is_some_and(|s| s.success()), "{}", tool.stderr());
    (dir, tool)
}

#[test]
fn replayed_bars_equal_an_independent_exact_aggregation() {
    const MINUTE: u64 = 60_000;
    const GRACE: u64 = 2_000;
    // 2026-12-01T00:00:00Z.
    let t0 = 1_796_083_200_000u64;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let codes: Vec<String> = (0..40)
        .map(|i| {
            if i % 5 == 0 {
                format!("FX{i}")
            } else {
                format!("C{i}.US")
            }
        })
        .collect();
    let mut text = String::new();
    let mut seqs = vec![0u64; codes.len()];
    let mut written: Vec<(T, u64)> = Vec::new();
    let mut want: BTreeMap<(u64, String), Want> = BTreeMap::new();
    let (mut latest, mut late, mut repeats) = (0u64, 0u64, 0u64);
    let mut clock = t0;
    for n in 0..30_000u64 {
        clock += rng.below(40);
        // Some trades right at a minute's edges, many at equal times.
        let time = match rng.below(20) {
            0 => (clock / MINUTE) * MINUTE,
            1 => (clock / MINUTE) * MINUTE + MINUTE - 1,
            2..=9 => clock,
            _ => clock.saturating_sub(rng.below(1_500)),
        };
        if n % 997 == 0 && !written.is_empty() {
            // The same push again: counted once.
            let (t, seq) = written[rng.below(written.len() as u64) as usize].clone();
            text.push_str(&line(&t, seq));
            repeats += 1;
            continue;
        }
        // Now and then a trade minutes late.
        let time = if n % 499 == 0 {
            time.saturating_sub(5 * MINUTE)
        } else {
            time
        };
        let c = rng.below(codes.len() as u64) as usize;
        seqs[c] += 1;
        let forex = codes[c].starts_with("FX");
        let t = T {
            code: codes[c].clone(),
            time,
            price: decimal(&mut rng, 900, 4),
            volume: (!forex).then(|| decimal(&mut rng, 5000, 3)),
            turnover: (!forex).then(|| decimal(&mut rng, 9_000_000, 2)),
        };
        text.push_str(&line(&t, seqs[c]));
        let start = time / MINUTE * MINUTE;
        // Late: its bar's end plus the grace is not after the latest time
        // seen before it.
        if start + MINUTE + GRACE <= latest {
            late += 1;
        } else {
            want.entry((start, t.code.clone())).or_default().take(&t);
        }
        latest = latest.max(time);
        written.push((t, seqs[c]));
    }
    let (_dir, tool) = replay_bars_1m("bars-replay", &text);
    let out = tool.stdout();
    let mut got = Vec::new();
    for raw in &out {
        let bar: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(bar["type"], "bar");
        assert_eq!(bar["interval"], "1m");
        let (start, code) = (
            bar["start"].as_u64().unwrap(),
            bar["code"].as_str().unwrap(),
        );
        assert_eq!(bar["end"].as_u64(), Some(start + MINUTE));
        assert_eq!(bar["symbol"], format!("S:{code}"));
        let w = want
            .get(&(start, code.to_string()))
            .unwrap_or_else(|| panic!("no such bar: {raw}"));
        w.check(&bar, raw);
        got.push((start, code.to_string()));
    }
    // One line per bar, in order of start then code.
    assert_eq!(got, want.keys().cloned().collect::<Vec<_>>());
    assert!(late > 20 && repeats > 20);
    let err = tool.stderr();
    assert!(
        err.contains(&format!("{late} trades after its interval closed")),
        "{late} late: {err}"
    );
    assert!(
        err.contains(&format!("{repeats} repeated trades")),
        "{repeats}: {err}"
    );
    assert!(
        err.contains("late trades so far"),
        "late trades are said as they come: {err}"
    );
}

#[test]
fn replayed_trades_of_an_interval_the_clock_closed_are_late_for_a_code_without_a_bar() {
    const MINUTE: u64 = 60_000;
    // 2026-12-01T23:09:00Z; the default grace, 2 s.
    let s = 1_796_166_540_000u64;
    let trade = |code: &str, time: u64, price: &str| T {
        code: code.into(),
        time,
        price: price.into(),
        volume: Some("1".into()),
        turnover: None,
    };
    let trades = [
        trade("A", s + 1_000, "1"),
        // The clock jumps to minute 3: minute 0's bar is written.
        trade("A", s + 3 * MINUTE, "2"),
        // Minute 2's end plus the grace has passed, with no bar due then.
        trade("A", s + 3 * MINUTE + 5_000, "3"),
        // B's first trades ever, in minute 2: late, though B had no bar.
        trade("B", s + 2 * MINUTE + 10, "7"),
        trade("A", s + 3 * MINUTE + 6_000, "4"),
        trade("B", s + 2 * MINUTE + 20, "8"),
        trade("C", s + 3 * MINUTE + 7_000, "5"),
    ];
    let text: String = trades
        .iter()
        .zip(1..)
        .map(|(t, seq)| line(t, seq))
        .collect();
    let (_dir, tool) = replay_bars_1m("bars-late-clock", &text);
    let err = tool.stderr();
    let bars: Vec<(u64, u64, String, u64)> = tool
        .stdout()
        .iter()
        .map(|raw| {
            let bar: Value = serde_json::from_str(raw).unwrap();
            (
                bar["end"].as_u64().unwrap(),
                bar["start"].as_u64().unwrap(),
                bar["code"].as_str().unwrap().to_string(),
                bar["trades"].as_u64().unwrap(),
            )
        })
        .collect();
    let bar = |end: u64, code: &str, trades| (end, end - MINUTE, code.to_string(), trades);
    // No bar for B; the bars in order of their end, then code.
    assert_eq!(
        bars,
        [
            bar(s + MINUTE, "A", 1),
            bar(s + 4 * MINUTE, "A", 3),
            bar(s + 4 * MINUTE, "C", 1)
        ],
        "{err}"
    );
    // The first late trade is said at once, and both are in the summary.
    assert!(
        err.contains("a trade of B at 2026-12-01T23:11:00.010Z"),
        "{err}"
    );
    assert!(
        err.contains("2 trades after") && err.contains("(late: in no bar)"),
        "{err}"
    );
}

#[test]
fn live_bars_count_every_trade_once_across_reconnects_and_connections() {
    let sim = repushing(60.0);
    sim.set_cut_every(Some(Duration::from_secs(3)));
    let codes = ["C0.US", "C1.US", "C2.US", "C3.US"];
    let mut args = vec![
        "--bars",
        "1s",
        "--bar-grace",
        "1",
        "--connections",
        "2",
        "--max-symbols",
        "2",
    ];
    args.extend_from_slice(&codes);
    let mut tool = start(&sim, &args);
    // Until trades were pushed again after reconnects, and bars came.
    let enough = tool.wait_every(WAIT, Duration::from_millis(50), |out, _| {
        out.len() >= 16 && sim.state().repushes.len() >= 2
    });
    check!(tool, enough);
    sim.set_ticks_per_sec(0.0);
    stop(&mut tool);
    let st = sim.state();
    check!(tool, !st.repushes.is_empty(), "no trade was pushed twice");
    let mut want: BTreeMap<(u64, String), Want> = BTreeMap::new();
    for t in &st.ticks {
        let t = T {
            code: t.code.clone(),
            time: t.tick_time,
            price: t.price.clone(),
            volume: Some(t.volume.clone()),
            turnover: None,
        };
        want.entry((t.time / 1000 * 1000, t.code.clone()))
            .or_default()
            .take(&t);
    }
    let err = tool.stderr();
    let late: u64 = err
        .split("dropped in total: ")
        .nth(1)
        .and_then(|s| s.split(" late trades").next())
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut counted = 0;
    let mut seen = HashSet::new();
    for raw in tool.stdout() {
        let bar: Value = serde_json::from_str(&raw).unwrap();
        let key = (
            bar["start"].as_u64().unwrap(),
            bar["code"].as_str().unwrap().to_string(),
        );
        check!(tool, seen.insert(key.clone()), "two bars for {key:?}");
        let w = &want[&key];
        let trades = bar["trades"].as_u64().unwrap();
        counted += trades;
        // A bar short of trades lost them as late ones, said on stderr.
        check!(tool, trades <= w.trades, "{raw}: more trades than pushed");
        if trades == w.trades {
            let v = fixed(&number_text(&raw, "volume"));
            check!(tool, Some(v.0) == w.volume.map(|s| s.0), "volume {raw}");
            check!(tool, number_text(&raw, "open") == w.open.1, "open {raw}");
            check!(tool, number_text(&raw, "close") == w.close.1, "close {raw}");
        }
    }
    let pushed = st.ticks.len() as u64;
    check!(
        tool,
        counted + late == pushed,
        "{counted} in bars + {late} late != {pushed} pushed (re-pushes: {})",
        st.repushes.len()
    );
}

#[test]
fn bars_go_to_the_file_of_their_start_across_midnight() {
    let (sim, midnight) = before_midnight(40.0);
    let dir = TempDir::new("bars-midnight");
    let pattern = format!("{}/%Y-%m-%d.jsonl", dir.path().display());
    let args = [
        "--output",
        &pattern,
        "--bars",
        "1s",
        "--bar-grace",
        "0.2",
        "NASDAQ:AAPL",
    ];
    let mut tool = start(&sim, &args);
    let bars = |d: &Path| -> Vec<(String, Value)> {
        files_under(d)
            .iter()
            .flat_map(|f| {
                let name = f.file_name().unwrap().to_string_lossy().to_string();
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .map(|l| (name.clone(), serde_json::from_str(l).unwrap()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let after = || {
        bars(dir.path())
            .iter()
            .any(|(_, v)| v["start"].as_i64().is_some_and(|s| s >= midnight + 1000))
    };
    check!(tool, tool.poll(WAIT, after));
    stop(&mut tool);
    let day = |t: i64| format!("{}.jsonl", civil(t.div_euclid(86_400_000)));
    let all = bars(dir.path());
    let files: HashSet<&String> = all.iter().map(|(f, _)| f).collect();
    check!(tool, files.len() == 2, "files {files:?}");
    for (f, v) in &all {
        let start = v["start"].as_i64().unwrap();
        check!(tool, *f == day(start), "{f} holds a bar of start {start}");
    }
}

/// Bar lines under `dir`: (file name, line).
fn bar_files(dir: &Path) -> Vec<(String, String)> {
    files_under(dir)
        .iter()
        .flat_map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(|l| (name.clone(), l.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `late trades` in a stderr's summary (0 when none).
fn late_in(err: &str) -> u64 {
    err.split("dropped in total: ")
        .nth(1)
        .and_then(|s| s.split(" late trades").next())
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn restarts_into_bar_files_count_no_trade_twice_and_write_one_bar_per_interval() {
    // The server pushes each code's last trade again on every subscription:
    // each restart meets a trade already in a bar.
    let sim = repushing(50.0);
    let dir = TempDir::new("bars-restart");
    let pattern = format!("{}/%Y-%m-%d.jsonl", dir.path().display());
    let args = [
        "--output",
        &pattern,
        "--bars",
        "1s",
        "--bar-grace",
        "0.3",
        "C0.US",
        "C1.US",
    ];
    let mut late = 0;
    for round in 0..3 {
        let before = bar_files(dir.path()).len();
        sim.set_ticks_per_sec(50.0);
        let mut tool = start(&sim, &args);
        check!(
            tool,
            tool.poll(WAIT, || bar_files(dir.path()).len() >= before + 4),
            "round {round}"
        );
        sim.set_ticks_per_sec(0.0);
        stop(&mut tool);
        late += late_in(&tool.stderr());
        if round > 0 {
            check!(
                tool,
                tool.stderr().contains("remembers the last push of 2 codes"),
                "round {round}"
            );
        }
    }
    let st = sim.state();
    assert!(st.repushes.len() >= 3, "{} re-pushes", st.repushes.len());
    let mut counted = 0;
    let mut seen = HashSet::new();
    for (_, raw) in bar_files(dir.path()) {
        let bar: Value = serde_json::from_str(&raw).unwrap();
        counted += bar["trades"].as_u64().unwrap();
        // A restart inside an interval takes its bar back and goes on.
        let key = (bar["code"].to_string(), bar["start"].as_u64().unwrap());
        assert!(seen.insert(key.clone()), "two bars for {key:?}");
    }
    assert_eq!(
        counted + late,
        st.ticks.len() as u64,
        "{counted} in bars + {late} late; {} pushed, {} pushed again",
        st.ticks.len(),
        st.repushes.len()
    );
}

#[test]
fn with_bars_depth_lines_and_gap_lines_still_come_through() {
    let sim = start_sim(config(40.0));
    let args = [
        "--bars",
        "1s",
        "--bar-grace",
        "0.3",
        "--gaps",
        "NASDAQ:AAPL",
        "HKEX:700@depth",
    ];
    let mut tool = start(&sim, &args);
    let kinds = |out: &[String]| -> HashSet<String> {
        out.iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| v["type"].as_str().unwrap_or("").to_string())
            .collect()
    };
    check!(
        tool,
        tool.wait_for(WAIT, |out, _| kinds(out).contains("bar")
            && kinds(out).contains("depth"))
    );
    // A lost connection: its gap line passes through among the bars.
    sim.set_cut_every(Some(Duration::from_millis(500)));
    check!(
        tool,
        tool.wait_for(WAIT, |out, _| kinds(out).contains("gap"))
    );
    sim.set_cut_every(None);
    stop(&mut tool);
    let out = tool.stdout();
    check!(
        tool,
        kinds(&out) == HashSet::from(["bar".into(), "depth".into(), "gap".into()]),
        "{:?}",
        kinds(&out)
    );
    for l in &out {
        let v: Value = serde_json::from_str(l).unwrap();
        if v["type"] == "depth" {
            check!(tool, v["bids"].is_array() && v["code"] == "700.HK", "{l}");
        }
    }
}
