//! `alltick-stream serve`: an AllTick-protocol WebSocket server over a
//! capture, so that a program written against AllTick's API can be tested
//! against recorded data.
//!
//! The protocol is the simulator's own ([`crate::sim`]): both endpoint
//! paths, the token in the query, 22000/22002/22004/22006 and their
//! answers with `seq_id` and `trace` echoed, the error `ret`s, the 1 s
//! rule (605) and the 30 s heartbeat cut-off. Only the pushes differ: each
//! connection gets its own replay of the capture ([`replayer`]), each line
//! turned into the push AllTick sends for it ([`push`]).

pub mod push;
pub mod replayer;

use std::io;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::capture::read::Source;
use crate::replay::pace::Speed;
use crate::report::say;
use crate::sim::{FOREX_PATH, Reject, STOCK_PATH, SimConfig, Simulator};
use replayer::Capture;

/// The address `serve` listens on unless `--listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8765";

/// What `serve` is asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeOptions {
    /// The captures, plain or `.gz`.
    pub files: Vec<PathBuf>,
    /// `--listen`: `HOST:PORT` (port 0: any free port).
    pub listen: String,
    /// The pace of every connection's replay.
    pub speed: Speed,
    /// Lines from this time on (ms).
    pub from: Option<u64>,
    /// Lines up to this time (ms), inclusive.
    pub to: Option<u64>,
    /// `--token-file`: only then must a client give that token.
    pub token_file: Option<PathBuf>,
}

/// How `serve` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeEnd {
    /// Stopped by a signal.
    Stopped,
    /// A file could not be read.
    BadFile,
    /// The address could not be listened on.
    CannotListen,
}

/// Serve until `stop` receives (or is dropped). With `token`, a client
/// whose query carries another token is refused with HTTP 401.
pub fn run(opts: &ServeOptions, token: Option<String>, stop: &Receiver<()>) -> ServeEnd {
    for (i, path) in opts.files.iter().enumerate() {
        if let Err(e) = Source::open(path, i) {
            say(format!("cannot read {}: {e}", path.display()));
            return ServeEnd::BadFile;
        }
    }
    let sim = match start(opts, token) {
        Ok(sim) => sim,
        Err(e) => {
            say(format!("serve: cannot listen on {}: {e}", opts.listen));
            return ServeEnd::CannotListen;
        }
    };
    say(format!(
        "serve: listening on ws://{} (paths {STOCK_PATH} and {FOREX_PATH})",
        sim.addr()
    ));
    let _ = stop.recv();
    drop(sim);
    ServeEnd::Stopped
}

/// The simulator's protocol over the capture, listening on `--listen`.
fn start(opts: &ServeOptions, token: Option<String>) -> io::Result<Simulator> {
    let listener = TcpListener::bind(opts.listen.as_str())?;
    let capture = Capture {
        files: opts.files.clone().into(),
        speed: opts.speed,
        from: opts.from,
        to: opts.to,
    };
    let cfg = SimConfig {
        ticks_per_sec: 0.0,
        expected_token: token,
        reject: Reject::Http401,
        ..SimConfig::default()
    };
    Simulator::start_feed(listener, cfg, Arc::new(capture))
}
