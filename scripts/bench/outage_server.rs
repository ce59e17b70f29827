//! The simulated AllTick server ending every connection after a stretch of
//! streaming, as a separate process, for `scripts/outage.sh`: how long a
//! client stays disconnected when healthy connections are cut.
//!
//! ```text
//! cargo run --release --example outage_server -- [CUT_SECONDS] [TICKS_PER_SEC] <CONTROL
//! ```
//!
//! Serves on 127.0.0.1 (any free port), no token check, `TICKS_PER_SEC`
//! trade pushes per second per subscribed code (default 20), and cuts each
//! connection `CUT_SECONDS` (default 20) after its handshake: what was
//! written is flushed, then TCP is shut down (`Simulator::set_cut_every`).
//! Prints `URL=ws://127.0.0.1:PORT/quote-stock-b-ws-api` as its first
//! stdout line and serves until its stdin ends (the client was stopped),
//! then prints one line per reconnect and a summary:
//!
//! ```text
//! reconnect 1: cut after 20.0 s; reopened 0.41 s later, acknowledged 0.41 s later
//! connections=15 window=300.0s disconnected=5.1s share=1.69% pushed=294813
//! ```
//!
//! The window runs from the first acknowledged subscription to the end
//! (the client's close, or the end of stdin while the client was out);
//! disconnected is the time from each cut to the next acknowledged
//! subscription, or to the end.

use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alltick_stream::sim::{CloseCause, SimConfig, SimState, Simulator};

/// The next argument as a number, or `default` when there is none.
fn arg(args: &mut impl Iterator<Item = String>, name: &str, default: f64) -> Result<f64, ExitCode> {
    match args.next().map(|a| a.parse::<f64>()) {
        None => Ok(default),
        Some(Ok(v)) if v.is_finite() && v >= 0.0 => Ok(v),
        Some(Ok(v)) => {
            eprintln!("outage_server: {name}: {v} is not a positive number");
            Err(ExitCode::from(2))
        }
        Some(Err(e)) => {
            eprintln!("outage_server: {name}: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// When connection `id`'s first trade subscription was acknowledged.
fn acked_at(st: &SimState, id: u64) -> Option<Instant> {
    st.requests
        .iter()
        .find(|r| r.conn == id && r.cmd_id == 22004 && r.ret == 200)
        .map(|r| r.at)
}

/// Print one line per reconnect and the summary.
fn report(st: &SimState, end: Instant) {
    let conns: Vec<_> = st.connections.iter().filter(|c| c.accepted).collect();
    let first_ack = conns.iter().find_map(|c| acked_at(st, c.id));
    let mut out = Duration::ZERO;
    for (n, pair) in conns.windows(2).enumerate() {
        let (old, new) = (pair[0], pair[1]);
        let closed = old.closed_at.unwrap_or(end);
        let lived = closed.duration_since(old.opened_at).as_secs_f64();
        let reopened = new.opened_at.saturating_duration_since(closed);
        let back = acked_at(st, new.id).unwrap_or(end);
        let gap = back.saturating_duration_since(closed);
        out += gap;
        println!(
            "reconnect {}: {} after {lived:.1} s; reopened {:.2} s later, acknowledged {:.2} s later",
            n + 1,
            match old.cause {
                Some(CloseCause::Cut) => "cut".to_owned(),
                ref other => format!("{other:?}"),
            },
            reopened.as_secs_f64(),
            gap.as_secs_f64()
        );
    }
    // Out at the end: the last connection was cut and none followed.
    if let Some(last) = conns.last()
        && last.cause != Some(CloseCause::ClientClose)
        && let Some(closed) = last.closed_at
    {
        out += end.saturating_duration_since(closed);
    }
    let window = first_ack.map_or(Duration::ZERO, |t| end.saturating_duration_since(t));
    let share = if window.is_zero() {
        0.0
    } else {
        100.0 * out.as_secs_f64() / window.as_secs_f64()
    };
    println!(
        "connections={} window={:.1}s disconnected={:.1}s share={share:.2}% pushed={}",
        conns.len(),
        window.as_secs_f64(),
        out.as_secs_f64(),
        st.ticks.len() as u64 + st.discarded_pushes
    );
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (cut, rate) = match (
        arg(&mut args, "CUT_SECONDS", 20.0),
        arg(&mut args, "TICKS_PER_SEC", 20.0),
    ) {
        (Ok(c), Ok(r)) => (c, r),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let sim = match Simulator::start(SimConfig {
        ticks_per_sec: rate,
        ..SimConfig::default()
    }) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("outage_server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    sim.set_cut_every(Some(Duration::from_secs_f64(cut)));
    println!("URL={}", sim.url());
    // Serve until the caller says the client has stopped.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let eof = Instant::now();
    let st = sim.state();
    let end = match st.connections.last() {
        Some(c) if c.cause == Some(CloseCause::ClientClose) => c.closed_at.unwrap_or(eof),
        _ => eof,
    };
    report(&st, end);
    ExitCode::SUCCESS
}
