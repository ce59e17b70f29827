//! The simulated AllTick HTTP K-line API as a separate process, keeping to
//! a plan's limits, for `scripts/history_bench.sh`.
//!
//! ```text
//! cargo run --release --example history_server -- PLAN SECONDS
//! ```
//!
//! Serves on 127.0.0.1 (any free port) and refuses (HTTP 429, counted)
//! every request over the limits of `PLAN` (`free` … `professional`).
//! Prints `STOCK=http://…/quote-stock-b-api` and `FOREX=http://…/quote-b-api`
//! as its first stdout lines, serves until its stdin closes or `SECONDS`
//! pass, then prints one summary line:
//!
//! ```text
//! requests=200 refused=0 span_ms=19597 per_sec=9.69 busiest_window=10
//! ```
//!
//! (`per_sec`: the pace the server saw once the plan's first window was
//! spent: the requests after the first window's worth over the span from
//! the first arrival to the last; `busiest_window`: the most requests that
//! arrived within one window of the one-interface limit).

use std::io::Read;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use alltick_stream::sim::{SimConfig, Simulator};
use alltick_stream::wire::plan;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "premium".into());
    let Some(plan) = plan::find(&name) else {
        eprintln!("history_server: no plan {name:?}");
        return ExitCode::from(2);
    };
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(600);
    let sim = match Simulator::start(SimConfig {
        http_limits: Some(plan.http),
        ..SimConfig::default()
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("history_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("STOCK={}", sim.http_base(true));
    println!("FOREX={}", sim.http_base(false));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(secs));
    let state = sim.state();
    let answered: Vec<_> = state.http_requests.iter().filter(|r| r.counted).collect();
    let span = match (answered.first(), answered.last()) {
        (Some(a), Some(b)) => b.at.duration_since(a.at),
        _ => Duration::ZERO,
    };
    let burst = plan.http.one_interface.count as usize;
    let per_sec = if span.is_zero() || answered.len() <= burst {
        0.0
    } else {
        (answered.len() - burst) as f64 / span.as_secs_f64()
    };
    let window = Duration::from_millis(plan.http.one_interface.window_ms);
    let busiest = (0..answered.len())
        .map(|i| {
            answered[i..]
                .iter()
                .take_while(|r| r.at.duration_since(answered[i].at) < window)
                .count()
        })
        .max()
        .unwrap_or(0);
    println!(
        "requests={} refused={} span_ms={} per_sec={per_sec:.2} busiest_window={busiest}",
        state.http_requests.len(),
        state.http_over_limit,
        span.as_millis()
    );
    ExitCode::SUCCESS
}
