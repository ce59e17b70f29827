//! Wiring: parse flags, start the threads, and decide how and when to exit.
//!
//! Threads: one session per connection (started when its connection first
//! has something to carry), the router that spreads symbols over them, the
//! writer, stdin, and the optional `--stats` clock. Every session feeds the
//! one output queue; the writer drains it to stdout.

mod heal;
mod restart;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};

use crate::capture::resume;
use crate::capture::write::Capture;
use crate::cli::{self, EndpointUrl, Options, Parsed};
use crate::form::Format;
use crate::queue::{Frames, Item};
use crate::replay::ReplayEnd;
use crate::report::{say, set_secret};
use crate::router::command::{Command, LineEvent, read_commands};
use crate::router::{Endpoint, Limits, Router, ShardId};
use crate::session::stagger::Stagger;
use crate::session::{Control, Session, SessionConfig, SessionEnd};
use crate::sim::{SimConfig, Simulator};
use crate::stats::Stats;
use crate::wire::symbol::{Feed, Symbol};
use crate::writer::{Sink, WriterConfig, WriterEnd, run_sink};
use restart::Restart;

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
    let mut opts = match cli::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(o)) if parquet_to_terminal(&o.form, o.output.is_some()) => {
            return EXIT_USAGE;
        }
        Ok(Parsed::Run(o)) => *o,
        Ok(Parsed::Replay(r)) if parquet_to_terminal(&r.form, r.output.is_some()) => {
            return EXIT_USAGE;
        }
        Ok(Parsed::Replay(r)) => return run_replay(r),
        Ok(Parsed::Serve(s)) => return run_serve(&s),
        Ok(Parsed::History(h)) if parquet_to_terminal(&h.form(), h.output.is_some()) => {
            return EXIT_USAGE;
        }
        Ok(Parsed::History(h)) => return run_history(&h),
        Ok(Parsed::Help) => return print_text(&cli::help()),
        Ok(Parsed::Generate(what)) => return print_text(&cli::generate(what)),
        Ok(Parsed::Version) => {
            return print_text(&format!("alltick-stream {}\n", env!("CARGO_PKG_VERSION")));
        }
        Err(e) => {
            say(e);
            return EXIT_USAGE;
        }
    };
    let (endpoints, token, demo) = match endpoints_and_token(&opts) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    // The readers bound what waits in the queue by `--queue` ticks, and
    // labels by `intake::LABELS_WAITING`; an array channel of that size
    // would take its memory up front.
    let (out_tx, out_rx) = unbounded::<Item>();
    let (ctl_tx, ctl_rx) = bounded::<Control>(1024);
    let (sig_tx, sig_rx) = bounded::<()>(4);
    if let Err(e) = install_signals(&stop, ctl_tx.clone(), sig_tx) {
        say(format!("cannot install the signal handler: {e}"));
        return EXIT_FAILURE;
    }
    let (spare_tx, spare_rx) = bounded::<Frames>(crate::session::intake::SPARE_BATCHES);
    let restart = Restart::read(&opts);
    let resumed_at = restart.resumed.newest_time;
    let at = (resumed_at, restart.memory.as_deref());
    let heal = heal::link(&opts, token.clone(), demo, &stop, at);
    let writer_rx = start_writer(out_rx, spare_tx, &stats, &opts, (restart, heal));
    let (ends_tx, ends_rx) = unbounded::<SessionEnd>();
    let mut base = base_config(&opts, token);
    base.resumed_at = resumed_at.filter(|_| opts.gaps);
    let shards = Shards {
        base,
        urls: endpoints.iter().map(|e| e.url.clone()).collect(),
        stop: Arc::clone(&stop),
        stats: Arc::clone(&stats),
        out: out_tx,
        spares: spare_rx,
        stagger: Arc::new(Mutex::new(Stagger::default())),
        ends: ends_tx,
        running: HashMap::new(),
    };
    let router = Router::new(
        endpoints
            .iter()
            .map(|e| Endpoint {
                name: e.name.clone(),
                market: e.market,
            })
            .collect(),
        Limits {
            connections: opts.connections,
            max_symbols: opts.max_symbols,
        },
    );
    // Moved, not copied: with thousands of symbols each copy is felt.
    start_router(router, shards, std::mem::take(&mut opts.symbols), ctl_rx);
    if let Some(period) = opts.stats {
        start_stats(period, &stats);
    }
    start_stdin(ctl_tx.clone(), opts.form.columns.format);
    supervise(&sig_rx, &ends_rx, &writer_rx, &stats, &stop, &ctl_tx)
}

/// The endpoints and the token: `--demo` starts the simulator (serving
/// both endpoints, on their paths) and needs no token.
/// With `--demo`, also its HTTP API's bases (stocks, forex).
type Demo = Option<(String, String)>;

fn endpoints_and_token(opts: &Options) -> Result<(Vec<EndpointUrl>, Option<String>, Demo), i32> {
    if !opts.demo {
        let token = read_token(opts.token_file.as_ref())?;
        set_secret(&token);
        return Ok((opts.endpoints.clone(), Some(token), None));
    }
    let sim = Simulator::start(SimConfig::default()).map_err(|e| {
        say(format!("demo: cannot start the simulated server: {e}"));
        EXIT_FAILURE
    })?;
    let url = sim.url();
    say(format!("demo: simulated AllTick server on {url}"));
    let http = (sim.http_base(true), sim.http_base(false));
    // `ws://127.0.0.1:PORT`, to which each endpoint's path is added.
    let base = url.split('/').take(3).collect::<Vec<_>>().join("/");
    // It serves until the process exits; dropping it on the way out would
    // show the sessions a spurious disconnect.
    std::mem::forget(sim);
    let path = |url: &str| url.rsplit('/').next().unwrap_or("").to_string();
    let endpoint = |name: &str, real: &str, market| EndpointUrl {
        name: name.into(),
        url: format!("{base}/{}", path(real)),
        market: Some(market),
    };
    Ok((
        vec![
            endpoint("stock", cli::STOCK_URL, crate::wire::symbol::Market::Stock),
            endpoint("forex", cli::FOREX_URL, crate::wire::symbol::Market::Forex),
        ],
        None,
        Some(http),
    ))
}

/// Whether a Parquet file would go to a terminal (said): it is binary.
fn parquet_to_terminal(form: &crate::form::LineForm, files: bool) -> bool {
    use std::io::IsTerminal;
    let refused = form.parquet_columns().is_some() && !files && std::io::stdout().is_terminal();
    if refused {
        say(
            "--format parquet writes a binary file: redirect stdout to a file (> trades.parquet) or give --output PATTERN",
        );
    }
    refused
}

/// `history`: the token (none with `--demo`), then the run.
fn run_history(opts: &crate::history::HistoryOptions) -> i32 {
    let token = (!opts.demo).then(|| read_token(opts.token_file.as_ref()));
    match token.transpose() {
        Ok(token) => crate::history::run(opts, token),
        Err(code) => code,
    }
}

/// The token from `--token-file` or `ALLTICK_TOKEN`; said and exit 2 if none.
fn read_token(file: Option<&PathBuf>) -> Result<String, i32> {
    cli::token(file, std::env::var("ALLTICK_TOKEN").ok()).map_err(|e| {
        say(e);
        EXIT_USAGE
    })
}

/// `replay`: the capture to stdout on a thread of its own, so that a stop
/// ends the program within a second even while stdout does not take lines.
fn run_replay(opts: crate::replay::ReplayOptions) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let (ctl_tx, _ctl_rx) = bounded::<Control>(1);
    let (sig_tx, sig_rx) = bounded::<()>(4);
    if let Err(e) = install_signals(&stop, ctl_tx, sig_tx) {
        say(format!("cannot install the signal handler: {e}"));
        return EXIT_FAILURE;
    }
    let (cmd_tx, cmd_rx) = bounded(1024);
    let _ = thread::Builder::new().name("stdin".into()).spawn(move || {
        let stdin = std::io::stdin();
        let _ = read_commands(stdin.lock(), |ev| match ev {
            LineEvent::Command { line, command } => cmd_tx.send((line, command)).is_ok(),
            LineEvent::Error { line, reason } => {
                say(format!("stdin:{line}: {reason}"));
                true
            }
        });
    });
    let (done_tx, done_rx) = bounded::<i32>(1);
    let replay_stop = Arc::clone(&stop);
    let spawned = thread::Builder::new().name("replay".into()).spawn(move || {
        let code = match crate::replay::run(opts, replay_stop, cmd_rx) {
            ReplayEnd::Done => EXIT_OK,
            ReplayEnd::BadFile => EXIT_USAGE,
            ReplayEnd::Failed => EXIT_FAILURE,
        };
        let _ = done_tx.send(code);
    });
    if let Err(e) = spawned {
        say(format!("cannot start the replay: {e}"));
        return EXIT_FAILURE;
    }
    select! {
        recv(done_rx) -> code => code.unwrap_or(EXIT_FAILURE),
        recv(sig_rx) -> _ => match done_rx.recv_timeout(STOP_BUDGET) {
            Ok(code) => code,
            Err(_) => {
                say("stopping: stdout did not take the replay's lines within 1 s");
                EXIT_OK
            }
        },
    }
}

/// `serve`: the capture as an AllTick server until SIGINT/SIGTERM.
fn run_serve(opts: &crate::serve::ServeOptions) -> i32 {
    let token = match opts.token_file.as_ref().map(|p| cli::token(Some(p), None)) {
        Some(Err(e)) => {
            say(e);
            return EXIT_USAGE;
        }
        token => token.and_then(Result::ok),
    };
    token.iter().for_each(|t| set_secret(t));
    let (ctl_tx, _ctl_rx) = bounded::<Control>(1);
    let (sig_tx, sig_rx) = bounded::<()>(4);
    if let Err(e) = install_signals(&Arc::new(AtomicBool::new(false)), ctl_tx, sig_tx) {
        say(format!("cannot install the signal handler: {e}"));
        return EXIT_FAILURE;
    }
    match crate::serve::run(opts, token, &sig_rx) {
        crate::serve::ServeEnd::Stopped => EXIT_OK,
        crate::serve::ServeEnd::BadFile => EXIT_USAGE,
        crate::serve::ServeEnd::CannotListen => EXIT_FAILURE,
    }
}

/// Print `text` on stdout for `--help`, `--version` or `--generate`. A
/// closed stdout (`| head`) ends quietly, as the stream does.
fn print_text(text: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            say(format!("cannot write to stdout: {e}"));
            EXIT_FAILURE
        }
        _ => EXIT_OK,
    }
}

/// What every session shares; each gets its own URL, name and symbols.
fn base_config(opts: &Options, token: Option<String>) -> SessionConfig {
    SessionConfig {
        url: String::new(),
        token,
        heartbeat: opts.heartbeat,
        stale_after: opts.stale_after,
        connect_timeout: opts.connect_timeout,
        gaps: opts.gaps,
        resumed_at: None,
        idle_close: opts.idle_close,
        initial: Vec::new(),
        max_symbols: opts.max_symbols,
        queue: opts.queue,
        market: opts.market,
        name: String::new(),
        open: Arc::new(AtomicUsize::new(0)),
        stagger: Arc::new(Mutex::new(Stagger::default())),
        turn: 0,
    }
}

/// Signals this soon after the first are the same request: `timeout` and
/// `kill` of a process group deliver one to the process and then another
/// to its group, which would otherwise read as an impatient second signal.
const SAME_SIGNAL: Duration = Duration::from_millis(250);

fn install_signals(
    stop: &Arc<AtomicBool>,
    ctl_tx: Sender<Control>,
    sig_tx: Sender<()>,
) -> Result<(), ctrlc::Error> {
    let stop = Arc::clone(stop);
    let mut first: Option<Instant> = None;
    ctrlc::set_handler(move || match first {
        // The same request, delivered twice.
        Some(at) if at.elapsed() < SAME_SIGNAL => {}
        // A second signal: leave at once.
        Some(_) => std::process::exit(130),
        None => {
            first = Some(Instant::now());
            stop.store(true, Ordering::SeqCst);
            let _ = ctl_tx.try_send(Control::Wake);
            let _ = sig_tx.try_send(());
        }
    })
}

fn start_writer(
    out_rx: Receiver<Item>,
    spares: Sender<Frames>,
    stats: &Arc<Stats>,
    opts: &Options,
    (restart, heal): (Restart, Option<crate::writer::HealLink>),
) -> Receiver<WriterEnd> {
    let (tx, rx) = bounded::<WriterEnd>(1);
    let stats = Arc::clone(stats);
    let config = WriterConfig {
        gaps: opts.gaps,
        resumed: restart.resumed.last,
        form: opts.form.clone(),
        header: !resume::stdout_has_lines(),
        memory: restart.memory,
        reopen: restart.reopen,
        parquet: opts
            .form
            .parquet_columns()
            .filter(|_| opts.output.is_some()),
        heal,
    };
    let files = opts.output.clone().map(|p| (p, opts.fsync));
    let parquet = opts.form.parquet_columns();
    let spawned = thread::Builder::new().name("writer".into()).spawn(move || {
        let stdout = std::io::stdout();
        // Periods a stop or a kill left without their Parquet file.
        if let (Some(names), Some((staging, _))) = (&config.parquet, &files) {
            crate::capture::parquet::catch_up(staging, names);
        }
        let sink = match files {
            Some((pattern, fsync)) => Sink::Files(Capture::new(
                pattern,
                fsync,
                config.gaps,
                Arc::clone(&stats),
            )),
            None => match parquet {
                None => Sink::Stream(stdout.lock()),
                Some(names) => {
                    let w = std::io::BufWriter::with_capacity(1 << 20, stdout);
                    match crate::capture::parquet::ParquetStream::new(w, &names) {
                        Ok(p) => Sink::Parquet(Box::new(p)),
                        Err(e) => return tx.send(WriterEnd::Failed(e)).unwrap_or(()),
                    }
                }
            },
        };
        let _ = tx.send(run_sink(out_rx, spares, sink, stats, config));
    });
    if let Err(e) = spawned {
        say(format!("cannot start the writer: {e}"));
    }
    rx
}

fn start_stats(period: Duration, stats: &Arc<Stats>) {
    let stats = Arc::clone(stats);
    let _ = thread::Builder::new().name("stats".into()).spawn(move || {
        let mut prev = (0, 0);
        loop {
            thread::sleep(period);
            let (line, now) = stats.line(period.as_secs_f64(), prev);
            prev = now;
            say(line);
        }
    });
}

/// stdin: commands until EOF. EOF ends command reading, not the stream.
/// In CSV or Parquet, a depth subscription is refused: it has no such form.
fn start_stdin(ctl_tx: Sender<Control>, format: Format) {
    let refused = format != Format::Jsonl;
    let _ = thread::Builder::new().name("stdin".into()).spawn(move || {
        let stdin = std::io::stdin();
        let result = read_commands(stdin.lock(), |ev| match ev {
            LineEvent::Command {
                line,
                command: Command::Add(v),
            } if refused && v.iter().any(|s| s.feed != Feed::Trades) => {
                let name = if format == Format::Csv {
                    "CSV"
                } else {
                    "Parquet"
                };
                say(format!(
                    "stdin:{line}: depth has no {name} form (--format {}): the line is ignored",
                    format.name()
                ));
                true
            }
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
    });
}

/// The sessions, started as their connections first get something to
/// carry.
struct Shards {
    base: SessionConfig,
    urls: Vec<String>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    out: Sender<Item>,
    /// Spent batches, back from the writer.
    spares: Receiver<Frames>,
    stagger: Arc<Mutex<Stagger>>,
    ends: Sender<SessionEnd>,
    running: HashMap<ShardId, Sender<Control>>,
}

impl Shards {
    /// The session of `id`, started (with `initial`) if it is not running.
    fn session(&mut self, id: ShardId, name: String, initial: Vec<Symbol>) -> &Sender<Control> {
        let turn = self.running.len();
        self.running.entry(id).or_insert_with(|| {
            let (tx, rx) = bounded::<Control>(1024);
            let cfg = SessionConfig {
                url: self.urls[id.endpoint].clone(),
                initial,
                name,
                stagger: Arc::clone(&self.stagger),
                turn,
                ..self.base.clone()
            };
            let session = Session::new(
                cfg,
                rx,
                Arc::clone(&self.stop),
                self.out.clone(),
                self.spares.clone(),
                Arc::clone(&self.stats),
            );
            let ends = self.ends.clone();
            let _ = thread::Builder::new()
                .name("session".into())
                .spawn(move || {
                    let _ = ends.send(session.run());
                });
            tx
        })
    }

    /// Wake every session (a stop was asked for).
    fn wake_all(&self) {
        for tx in self.running.values() {
            let _ = tx.try_send(Control::Wake);
        }
    }
}

/// The router thread: initial symbols start their sessions; then each
/// command is spread over the sessions. It ends on a stop, dropping its
/// handle on the output queue so the writer can drain.
fn start_router(
    mut router: Router,
    mut shards: Shards,
    initial: Vec<Symbol>,
    ctl_rx: Receiver<Control>,
) {
    let nothing = initial.is_empty();
    let first = router.route(&Command::Add(initial), "argument");
    for note in first.notes {
        say(note);
    }
    let mut starts: Vec<(ShardId, Vec<Symbol>)> = first
        .sends
        .into_iter()
        .filter_map(|(id, c)| match c {
            Command::Add(v) => Some((id, v)),
            _ => None,
        })
        .collect();
    if nothing {
        // Nothing to carry yet: open the first endpoint anyway, so a
        // refused token is reported at once and commands find it ready.
        starts.push((router.first_shard(), Vec::new()));
    }
    for (id, symbols) in starts {
        let name = router.shard_name(id);
        shards.session(id, name, symbols);
    }
    let _ = thread::Builder::new().name("router".into()).spawn(move || {
        for control in ctl_rx.iter() {
            let Control::Command { line, command } = control else {
                shards.wake_all();
                return;
            };
            let routed = router.route(&command, &format!("stdin:{line}"));
            for note in routed.notes {
                say(note);
            }
            for (id, command) in routed.sends {
                let name = router.shard_name(id);
                let tx = shards.session(id, name, Vec::new());
                let _ = tx.send(Control::Command { line, command });
            }
        }
    });
}

/// Wait for the first of: a stop signal, a session that cannot go on, the
/// writer ending.
fn supervise(
    sig_rx: &Receiver<()>,
    ends_rx: &Receiver<SessionEnd>,
    writer_rx: &Receiver<WriterEnd>,
    stats: &Stats,
    stop: &AtomicBool,
    ctl_tx: &Sender<Control>,
) -> i32 {
    let stop_all = || {
        stop.store(true, Ordering::SeqCst);
        let _ = ctl_tx.try_send(Control::Wake);
    };
    loop {
        select! {
            recv(sig_rx) -> _ => return finish(Instant::now() + STOP_BUDGET, writer_rx, stats, EXIT_OK),
            recv(ends_rx) -> end => {
                if let Ok(SessionEnd::Fatal(m)) = end {
                    say(m);
                    stop_all();
                    return finish(Instant::now() + STOP_BUDGET, writer_rx, stats, EXIT_FAILURE);
                }
            }
            recv(writer_rx) -> end => return match end {
                Ok(WriterEnd::Failed(e)) => {
                    say(format!("cannot write to stdout: {e}"));
                    EXIT_FAILURE
                }
                // stdout was closed (`| head`): stop quietly.
                _ => EXIT_OK,
            },
        }
    }
}

/// Let the sessions close and the writer drain, within `deadline`.
fn finish(deadline: Instant, writer_rx: &Receiver<WriterEnd>, stats: &Stats, code: i32) -> i32 {
    // The writer drains once every session has closed (after its close
    // handshake, bounded) and let go of the queue.
    match writer_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
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
