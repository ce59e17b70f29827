//! The simulated AllTick server (`alltick_stream::sim`) as a separate
//! process, for measurements that must not share a process with it.
//!
//! ```text
//! cargo run --release --example sim_server -- [TICKS_PER_SEC] [SECONDS]
//! ```
//!
//! Serves on 127.0.0.1 (any free port), `TICKS_PER_SEC` trade pushes per
//! second per subscribed code (default 1), both endpoints on their paths
//! (`/quote-stock-b-ws-api`, `/quote-b-ws-api`), no token check. Prints
//! `URL=ws://127.0.0.1:PORT/quote-stock-b-ws-api` as its first stdout line,
//! serves for `SECONDS` (default 60), then prints one summary line and
//! exits:
//!
//! ```text
//! connections=3 accepted=3 requests=12 subscribed=9000 ticks=540123
//! ```
//!
//! (`connections` TCP connections accepted, `accepted` of them upgraded,
//! `subscribed` codes in the connections' trade sets at the end, `ticks`
//! trade pushes sent).

use std::process::ExitCode;
use std::time::Duration;

use alltick_stream::sim::{SimConfig, Simulator};

/// The next argument as a `T`, or `default` when there is none.
fn arg<T: std::str::FromStr>(
    args: &mut impl Iterator<Item = String>,
    name: &str,
    default: T,
) -> Result<T, ExitCode>
where
    T::Err: std::fmt::Display,
{
    match args.next().map(|a| a.parse::<T>()) {
        None => Ok(default),
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => {
            eprintln!("sim_server: {name}: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let rate: f64 = match arg(&mut args, "TICKS_PER_SEC", 1.0) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let secs: u64 = match arg(&mut args, "SECONDS", 60) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let sim = match Simulator::start(SimConfig {
        ticks_per_sec: rate,
        ..SimConfig::default()
    }) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("sim_server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("URL={}", sim.url());
    // Serve for the whole run: nothing to wait on but the clock.
    std::thread::sleep(Duration::from_secs(secs));
    let st = sim.state();
    let subscribed: usize = st.connections.iter().map(|c| c.trade_codes.len()).sum();
    println!(
        "connections={} accepted={} requests={} subscribed={} ticks={}",
        st.connections.len(),
        st.connections.iter().filter(|c| c.accepted).count(),
        st.requests.len(),
        subscribed,
        st.ticks.len() as u64 + st.discarded_pushes
    );
    ExitCode::SUCCESS
}
