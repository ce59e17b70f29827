//! `alltick-stream history`: AllTick's K-lines over its HTTP API, written
//! as bar lines (`"type":"kline"`) into the same dataset as the live
//! stream: complete bars only, in time order per code, each once, paced
//! to the plan, and kept locally so that nothing is fetched twice.
//!
//! - `options`: what a run was asked for, and its exit statuses;
//! - `pace`: when the next request may go (pure, time a parameter), and
//!   the backoff after a refusal;
//! - `fetch`: one request over HTTP(S) and what its answer means;
//! - `check`: a K-line checked before it is written;
//! - `store`: what the `--output` files hold, and the writing of blocks;
//! - `walk`: the requests each code needs, newest first, and the order
//!   its bars are written in;
//! - `progress`: the progress line and the summary on stderr.

mod check;
mod fetch;
pub mod heal;
mod options;
mod pace;
mod progress;
mod store;
mod walk;

pub use options::*;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, bounded};

use crate::capture::parquet;
use crate::form::Format;
use crate::report::{say, set_secret};
use crate::sim::{SimConfig, Simulator};
use crate::wire::plan;

use fetch::Client;
use progress::Progress;
use store::Out;
use walk::Walk;

/// Run `history` with `token` (none with `--demo`); the exit status.
pub fn run(opts: &HistoryOptions, token: Option<String>) -> i32 {
    let client = match client(opts, token) {
        Ok(c) => c,
        Err(status) => return status,
    };
    let plan = opts.plan.unwrap_or(if opts.demo {
        &plan::PLANS[3]
    } else {
        plan::free()
    });
    let (stop, wake) = match signals() {
        Ok(x) => x,
        Err(e) => {
            say(format!("cannot install the signal handler: {e}"));
            return EXIT_FAILURE;
        }
    };
    let (out, holdings) = match open_out(opts) {
        Ok(x) => x,
        Err(status) => return status,
    };
    let progress = Arc::new(Progress::new(
        opts.symbols.len(),
        std::io::stderr().is_terminal(),
    ));
    let mut walk = Walk::new(
        opts,
        client,
        plan,
        out,
        holdings,
        stop,
        wake,
        Arc::clone(&progress),
    );
    say(format!(
        "history: {} codes, {} bars, plan {} ({}, {} / min, {} / day)",
        opts.symbols.len(),
        opts.interval.name(),
        plan.name,
        plan.http.one_interface.describe(),
        plan.http.per_minute.count,
        plan.http.per_day
    ));
    let ticker = progress::start(Arc::clone(&progress), walk.ms_per_request());
    let halt = walk.all();
    progress.finish();
    let _ = ticker.join();
    let status = walk.summary(halt.as_ref());
    match close_out(opts, walk.into_out()) {
        Ok(()) => status,
        Err(e) => {
            say(format!(
                "history: cannot finish the Parquet file on stdout: {e}"
            ));
            EXIT_FAILURE
        }
    }
}

/// Where the bars go, and what the files there hold: with Parquet, the
/// staging files beside the Parquet files (made on start where a stop
/// left them behind).
fn open_out(opts: &HistoryOptions) -> Result<(Out, store::Holdings), i32> {
    let names = opts.columns.names().collect::<Vec<_>>();
    let parquet = opts.columns.format == Format::Parquet;
    let Some(pattern) = &opts.output else {
        let out = if parquet {
            Out::parquet(&names)
        } else {
            Out::stdout(&opts.columns)
        };
        return out.map(|o| (o, store::Holdings::default())).map_err(|e| {
            say(format!("history: stdout: {e}"));
            EXIT_FAILURE
        });
    };
    let files = match parquet {
        true => parquet::staging_pattern(pattern).map_err(|e| {
            say(e);
            EXIT_USAGE
        })?,
        false => pattern.clone(),
    };
    if parquet {
        parquet::catch_up(&files, &names);
    }
    let holdings = store::read_holdings(&files).map_err(|e| {
        say(format!(
            "history: cannot read what {} holds: {e}",
            files.text()
        ));
        EXIT_FAILURE
    })?;
    if holdings.files > 0 {
        say(format!(
            "history: {} files of {} hold {} K-line bars; only what they lack is fetched",
            holdings.files,
            files.text(),
            holdings.lines
        ));
    }
    let out = Out::Files {
        pattern: files,
        touched: Vec::new(),
    };
    Ok((out, holdings))
}

/// The end of the output: the Parquet file on stdout finished, or the
/// Parquet files of the periods written to made from their staging files.
fn close_out(opts: &HistoryOptions, out: Out) -> std::io::Result<()> {
    if opts.columns.format == Format::Parquet && opts.output.is_some() {
        let names = opts.columns.names().collect::<Vec<_>>();
        for staging in out.touched() {
            parquet::report(staging, parquet::finalize(staging, &names));
        }
    }
    out.finish()
}

/// The HTTP client: AllTick's bases (or the flags'), or the simulator's
/// with `--demo`; else the exit status: no token (2), no simulator (1).
fn client(opts: &HistoryOptions, token: Option<String>) -> Result<Client, i32> {
    if opts.demo {
        let sim = match Simulator::start(SimConfig::default()) {
            Ok(s) => s,
            Err(e) => {
                say(format!("demo: cannot start the simulated server: {e}"));
                return Err(EXIT_FAILURE);
            }
        };
        let (stock, forex) = (sim.http_base(true), sim.http_base(false));
        say(format!(
            "demo: simulated AllTick HTTP API at {stock} and {forex}"
        ));
        // It serves until the process exits.
        std::mem::forget(sim);
        return Ok(Client::new(stock, forex, "demo".into(), opts.timeout));
    }
    let Some(token) = token else {
        say("history: no token");
        return Err(EXIT_USAGE);
    };
    set_secret(&token);
    Ok(Client::new(
        opts.stock_api.clone().unwrap_or(STOCK_API.into()),
        opts.forex_api.clone().unwrap_or(FOREX_API.into()),
        token,
        opts.timeout,
    ))
}

/// `--heal`'s thread: its requests' sender, its answers' receiver and the
/// plan's pace (ms per request). `demo`: the simulator's bases.
pub fn start_healing(
    opts: &HealOptions,
    token: Option<String>,
    demo: Option<(String, String)>,
    stop: Arc<AtomicBool>,
) -> (
    crossbeam_channel::Sender<crate::bars::heal::Request>,
    Receiver<crate::bars::heal::Answer>,
    u64,
) {
    let plan = opts.plan.unwrap_or(if demo.is_some() {
        &plan::PLANS[3]
    } else {
        plan::free()
    });
    let (stock, forex) = demo.unwrap_or_else(|| {
        (
            opts.stock_api.clone().unwrap_or(STOCK_API.into()),
            opts.forex_api.clone().unwrap_or(FOREX_API.into()),
        )
    });
    let client = Client::new(stock, forex, token.unwrap_or("demo".into()), opts.timeout);
    let (tx, rx) = heal::start(client, plan, stop);
    (tx, rx, heal::ms_per_request(plan))
}

/// SIGINT and SIGTERM: stop after the request in flight (a second signal
/// leaves at once).
fn signals() -> Result<(Arc<AtomicBool>, Receiver<()>), ctrlc::Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = bounded(1);
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        let _ = tx.try_send(());
    })?;
    Ok((stop, rx))
}
