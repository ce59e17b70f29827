//! Wiring: parse flags, start the threads, and decide how and when to exit.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, bounded, select};

use crate::cli::{self, Parsed};
use crate::command::{LineEvent, read_commands};
use crate::output::{WriterEnd, run_writer};
use crate::report::{say, set_secret};
use crate::session::{Control, Session, SessionConfig, SessionEnd};
use crate::sim::{SimConfig, Simulator};
use crate::stats::Stats;

/// After SIGINT/SIGTERM, everything must be written within this time.
pub const STOP_BUDGET: Duration = Duration::from_millis(950);

/// Exit status for a normal stop.
pub const EXIT_OK: i32 = 0;
/// Exit status when the tool cannot go on (token refused, stdout failed).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for bad arguments or a missing token.
pub const EXIT_USAGE: i32 = 2;

/// Run the program with the process's arguments; returns the exit status.
pub fn run() -> i32 {
    let opts = match cli::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            print!("{}", cli::HELP);
            return EXIT_OK;
        }
        Ok(Parsed::Version) => {
            println!("alltick-stream {}", env!("CARGO_PKG_VERSION"));
            return EXIT_OK;
        }
        Err(e) => {
            say(e);
            return EXIT_USAGE;
        }
    };

    // --demo: our own simulated server on 127.0.0.1, reached through the
    // normal connection path.
    let (url, token) = if opts.demo {
        match Simulator::start(SimConfig::default()) {
            Ok(sim) => {
                let url = sim.url();
                say(format!("demo: simulated AllTick server on {url}"));
                // It serves until the process exits; dropping it on the way
                // out would show the session a spurious disconnect.
                std::mem::forget(sim);
                (url, None)
            }
            Err(e) => {
                say(format!("demo: cannot start the simulated server: {e}"));
                return EXIT_FAILURE;
            }
        }
    } else {
        let token = match cli::token(
            opts.token_file.as_ref(),
            std::env::var("ALLTICK_TOKEN").ok(),
        ) {
            Ok(t) => t,
            Err(e) => {
                say(e);
                return EXIT_USAGE;
            }
        };
        set_secret(&token);
        (opts.url.clone().unwrap_or_default(), Some(token))
    };

    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (out_tx, out_rx) = bounded(opts.queue);
    let (ctl_tx, ctl_rx) = bounded::<Control>(1024);
    let (sig_tx, sig_rx) = bounded::<()>(4);

    {
        let stop = stop.clone();
        let ctl_tx = ctl_tx.clone();
        let handler = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                // A second signal: leave at once.
                std::process::exit(130);
            }
            let _ = ctl_tx.try_send(Control::Wake);
            let _ = sig_tx.try_send(());
        });
        if let Err(e) = handler {
            say(format!("cannot install the signal handler: {e}"));
            return EXIT_FAILURE;
        }
    }

    let (writer_tx, writer_rx) = bounded::<WriterEnd>(1);
    {
        let stats = stats.clone();
        thread::Builder::new()
            .name("writer".into())
            .spawn(move || {
                let stdout = std::io::stdout();
                let end = run_writer(out_rx, stdout.lock(), stats);
                let _ = writer_tx.send(end);
            })
            .ok();
    }

    let (session_tx, session_rx) = bounded::<SessionEnd>(1);
    {
        let cfg = SessionConfig {
            url,
            token,
            heartbeat: opts.heartbeat,
            stale_after: opts.stale_after,
            connect_timeout: opts.connect_timeout,
            initial: opts.symbols.clone(),
            max_symbols: opts.max_symbols,
            queue: opts.queue,
            market: opts.market,
        };
        let session = Session::new(cfg, ctl_rx, stop.clone(), out_tx, stats.clone());
        thread::Builder::new()
            .name("session".into())
            .spawn(move || {
                let _ = session_tx.send(session.run());
            })
            .ok();
    }

    if let Some(period) = opts.stats {
        let stats = stats.clone();
        thread::Builder::new()
            .name("stats".into())
            .spawn(move || {
                let mut prev = (0, 0);
                loop {
                    thread::sleep(period);
                    let (line, now) = stats.line(period.as_secs_f64(), prev);
                    prev = now;
                    say(line);
                }
            })
            .ok();
    }

    // stdin: commands until EOF. EOF ends command reading, not the stream.
    thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let result = read_commands(stdin.lock(), |ev| match ev {
                LineEvent::Command { line, command } => {
                    ctl_tx.send(Control::Command { line, command }).is_ok()
                }
                LineEvent::Error { line, reason } => {
                    say(format!("stdin:{line}: {reason}"));
                    true
                }
            });
            if let Err(e) = result {
                say(format!(
                    "cannot read stdin ({e}); commands are off, streaming goes on"
                ));
            }
        })
        .ok();

    supervise(&sig_rx, &session_rx, &writer_rx, &stats)
}

/// Wait for the first of: a stop signal, the session ending, the writer ending.
fn supervise(
    sig_rx: &Receiver<()>,
    session_rx: &Receiver<SessionEnd>,
    writer_rx: &Receiver<WriterEnd>,
    stats: &Stats,
) -> i32 {
    select! {
        recv(sig_rx) -> _ => finish(Instant::now() + STOP_BUDGET, session_rx, writer_rx, stats, EXIT_OK),
        recv(session_rx) -> end => {
            let code = match end {
                Ok(SessionEnd::Fatal(m)) => { say(m); EXIT_FAILURE }
                _ => EXIT_OK,
            };
            finish(Instant::now() + STOP_BUDGET, session_rx, writer_rx, stats, code)
        }
        recv(writer_rx) -> end => match end {
            Ok(WriterEnd::Closed) => EXIT_OK,
            Ok(WriterEnd::Failed(e)) => {
                say(format!("cannot write to stdout: {e}"));
                EXIT_FAILURE
            }
            // The writer only drains after the session ended; the
            // session's own message follows.
            Ok(WriterEnd::Drained) | Err(_) => match session_rx.recv_timeout(STOP_BUDGET) {
                Ok(SessionEnd::Fatal(m)) => { say(m); EXIT_FAILURE }
                _ => EXIT_OK,
            },
        },
    }
}

/// Let the session close and the writer drain, within `deadline`.
fn finish(
    deadline: Instant,
    session_rx: &Receiver<SessionEnd>,
    writer_rx: &Receiver<WriterEnd>,
    stats: &Stats,
    code: i32,
) -> i32 {
    let left = || deadline.saturating_duration_since(Instant::now());
    // The session ends after its close handshake (bounded); the message
    // may already have been taken by the caller.
    let _ = session_rx.recv_timeout(left());
    match writer_rx.recv_timeout(left()) {
        Ok(WriterEnd::Drained) | Ok(WriterEnd::Closed) => {}
        Ok(WriterEnd::Failed(e)) => say(format!("cannot write to stdout: {e}")),
        Err(_) => {
            say(format!(
                "stopping with {} received ticks not written: stdout did not take them within 1 s",
                stats.unwritten()
            ));
        }
    }
    if let Some(summary) = stats.drop_summary() {
        say(summary);
    }
    let _ = std::io::stderr().flush();
    code
}
