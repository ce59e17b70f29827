//! Soak run: the release binary against the simulator with randomly
//! injected faults for a number of minutes, then checks of what came out.
//!
//! Run it through `scripts/soak.sh [MINUTES]`. It checks that, per code,
//! output `seq`s strictly increase (no duplicates, no reordering), that every
//! tick the simulator sent but the tool did not write was sent during a
//! logged outage, and that peak RSS stayed flat after the first minute.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use alltick_stream::sim::{Inject, SimConfig, Simulator};
use alltick_stream::wire::protocol::CMD_SUB_TRADES;

const TOKEN: &str = "soak-token";

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

/// A window during which losing ticks is expected.
struct Outage {
    what: &'static str,
    from: Instant,
    to: Instant,
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let minutes: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let bin = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "target/release/alltick-stream".into());
    let codes: Vec<String> = (0..8).map(|i| format!("S{i}.US")).collect();
    let cfg = SimConfig {
        ticks_per_sec: 50.0,
        expected_token: Some(TOKEN.into()),
        heartbeat_cutoff: Duration::from_secs(6),
        ..SimConfig::default()
    };
    let mut sim = Simulator::start(cfg.clone()).expect("simulator");
    let port = sim.port();
    let mut args = vec![
        "--url".to_string(),
        sim.url(),
        "--heartbeat".into(),
        "2".into(),
        "--stale-after".into(),
        "5".into(),
    ];
    args.extend(codes.iter().cloned());
    let mut child = Command::new(&bin)
        .args(&args)
        .env("ALLTICK_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start alltick-stream");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let out_reader = thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let stderr = child.stderr.take().expect("stderr");
    let err_reader = thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });

    let started = Instant::now();
    let end = started + Duration::from_secs_f64(minutes * 60.0);
    let mut rng = Rng(0x5eed_1234_abcd_0001 ^ u64::from(std::process::id()));
    let mut outages: Vec<Outage> = Vec::new();
    // Everything every simulator instance sent: (code, seq) → send time.
    let mut sent: HashMap<(String, u64), (Instant, u64)> = HashMap::new();
    let harvest = |sim: &Simulator, sent: &mut HashMap<(String, u64), (Instant, u64)>| {
        for t in sim.state().ticks {
            sent.insert((t.code, t.seq), (t.at, t.conn));
        }
    };
    let mut rss_samples: Vec<(Duration, u64)> = Vec::new();
    let mut faults: HashMap<&'static str, usize> = HashMap::new();

    // Let it settle, then inject a fault every 4–40 s: close together, they
    // keep the backoff growing; spaced out, it gets reset by a healthy minute.
    let mut next_fault = started + Duration::from_secs(5);
    let mut rounds = 0u64;
    while Instant::now() < end {
        thread::sleep(Duration::from_millis(500));
        rss_samples.push((started.elapsed(), rss_kib(pid)));
        rounds += 1;
        if rounds.is_multiple_of(20) {
            // The simulator keeps a bounded record: collect it often.
            harvest(&sim, &mut sent);
        }
        if Instant::now() < next_fault {
            continue;
        }
        next_fault = Instant::now() + Duration::from_secs(4 + rng.below(37));
        let conns_before = sim.state().connections.len();
        let from = Instant::now();
        let what: &'static str = match rng.below(9) {
            0 => {
                sim.drop_connections();
                "drop"
            }
            1 => {
                sim.reset_connections();
                "reset"
            }
            2 => {
                sim.close_connections(1011, "internal error");
                "close 1011"
            }
            3 => {
                sim.close_connections(1000, "");
                "close 1000"
            }
            4 => {
                sim.set_silent(true);
                thread::sleep(Duration::from_secs(6));
                sim.set_silent(false);
                "silence"
            }
            5 => {
                sim.inject(Inject::Text("garbage{".into()));
                sim.inject(Inject::Text(
                    r#"{"cmd_id":22998,"data":{"code":"S0.US","seq":1,"tick_time":1,"price":"-1","volume":"1"}}"#.into(),
                ));
                *faults.entry("garbage").or_default() += 1;
                continue;
            }
            6 => {
                sim.fail_next(CMD_SUB_TRADES, 605, 1);
                sim.drop_connections();
                "drop + 605"
            }
            7 => {
                // Stop it sending before the last look at what it sent.
                sim.set_silent(true);
                // A push already under way when silence began finishes first.
                thread::sleep(Duration::from_millis(100));
                harvest(&sim, &mut sent);
                drop(sim);
                thread::sleep(Duration::from_millis(1500 + rng.below(3000)));
                sim = Simulator::start_on(port, cfg.clone()).expect("restart on the same port");
                "restart"
            }
            _ => {
                sim.inject(Inject::Huge(8 << 20));
                "huge frame"
            }
        };
        *faults.entry(what).or_default() += 1;
        // The outage lasts until the tool is subscribed again.
        let back = sim.wait_until(Duration::from_secs(60), |s| {
            s.requests.iter().any(|r| {
                r.cmd_id == CMD_SUB_TRADES
                    && r.ret == 200
                    && s.conn(r.conn).is_some_and(|c| !c.closed)
                    && (what == "restart" || r.conn as usize > conns_before)
            })
        });
        // Pushes on a connection the tool has given up on (after silence,
        // say) are lost until the server notices: the outage lasts until
        // every connection from before the fault is closed.
        if what != "restart" {
            sim.wait_until(Duration::from_secs(10), |s| {
                s.connections
                    .iter()
                    .filter(|c| (c.id as usize) <= conns_before && c.accepted)
                    .all(|c| c.closed)
            });
        }
        outages.push(Outage {
            what,
            from: from - Duration::from_millis(500),
            to: Instant::now(),
        });
        if !back {
            eprintln!("soak: the tool did not come back within 60 s after {what}");
        }
    }

    // Stop and collect.
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let status = child.wait().expect("wait");
    harvest(&sim, &mut sent);
    let lines = out_reader.join().unwrap_or_default();
    let errs = err_reader.join().unwrap_or_default();

    let mut last: HashMap<String, u64> = HashMap::new();
    let mut order_errors = 0;
    let mut got: HashSet<(String, u64)> = HashSet::new();
    for l in &lines {
        let v: serde_json::Value = match serde_json::from_str(l) {
            Ok(v) => v,
            Err(_) => {
                order_errors += 1;
                continue;
            }
        };
        let code = v["code"].as_str().unwrap_or("").to_string();
        let seq = v["seq"].as_u64().unwrap_or(0);
        if last.get(&code).is_some_and(|&p| seq <= p) {
            order_errors += 1;
        }
        last.insert(code.clone(), seq);
        got.insert((code, seq));
    }
    let missing: Vec<(&(String, u64), &Instant, u64)> = sent
        .iter()
        .filter(|(k, _)| !got.contains(*k))
        .map(|(k, (at, conn))| (k, at, *conn))
        .collect();
    let unexplained: Vec<_> = missing
        .iter()
        .filter(|(_, at, _)| !outages.iter().any(|o| **at >= o.from && **at <= o.to))
        .collect();
    let extra = got.iter().filter(|k| !sent.contains_key(*k)).count();

    let first_minute_peak = rss_samples
        .iter()
        .filter(|(t, _)| *t <= Duration::from_secs(60))
        .map(|(_, r)| *r)
        .max()
        .unwrap_or(0);
    let peak = rss_samples.iter().map(|(_, r)| *r).max().unwrap_or(0);
    let last_minute_peak = rss_samples
        .iter()
        .filter(|(t, _)| *t + Duration::from_secs(60) >= started.elapsed())
        .map(|(_, r)| *r)
        .max()
        .unwrap_or(0);

    println!("soak: {minutes} min, exit {status}");
    println!(
        "faults injected: {}",
        faults
            .iter()
            .map(|(k, v)| format!("{k} ×{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "ticks sent {}, written {}, missing {} (all during outages: {}), written but never sent {}",
        sent.len(),
        lines.len(),
        missing.len(),
        unexplained.is_empty(),
        extra
    );
    println!("order/duplicate violations: {order_errors}");
    println!(
        "RSS peak: first minute {first_minute_peak} KiB, last minute {last_minute_peak} KiB, overall {peak} KiB"
    );
    println!(
        "reconnects logged: {}",
        errs.iter()
            .filter(|l| l.contains("connection lost"))
            .count()
    );
    let flat = peak <= first_minute_peak + 1024;
    let ok = status.success()
        && order_errors == 0
        && unexplained.is_empty()
        && extra == 0
        && (minutes < 2.0 || flat);
    for o in &outages {
        let lost = missing
            .iter()
            .filter(|(_, at, _)| **at >= o.from && **at <= o.to)
            .count();
        if lost > 0 {
            println!(
                "  outage {:>10} at {:>6.1} s for {:.1} s: {lost} ticks lost",
                o.what,
                o.from.duration_since(started).as_secs_f64(),
                o.to.duration_since(o.from).as_secs_f64()
            );
        }
    }
    if !unexplained.is_empty() {
        println!(
            "unexplained gaps (first 10; code, seq, connection, seconds in): {:?}",
            unexplained
                .iter()
                .take(10)
                .map(|(k, at, conn)| (
                    k,
                    conn,
                    format!("{:.1}", at.saturating_duration_since(started).as_secs_f64())
                ))
                .collect::<Vec<_>>()
        );
    }
    println!("{}", if ok { "soak: PASS" } else { "soak: FAIL" });
    if !ok {
        std::process::exit(1);
    }
}
