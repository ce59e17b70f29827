//! A minimal AllTick-protocol WebSocket server for benchmarks.
//!
//! ```text
//! cargo run --release --example flood_server -- [PORT] [--count N] [--rate R]
//!                                               [--seq-ns] [--idle] [--self-test]
//! ```
//!
//! Listens on 127.0.0.1:PORT (0 or absent: any free port) and prints
//! `PORT=<n>` as the first line on stdout. Every connection gets its own
//! thread. Requests are answered like the real server: 22000 → 22001,
//! 22002 → 22003, 22004 → 22005, 22006 → 22007 (`ret` 200, `seq_id` and
//! `trace` echoed, `data` `{}`); anything else → `ret` 400. Once a 22004
//! arrives, trade pushes (22998) for the subscribed codes go out round-robin:
//!
//! * `--count N`  push N ticks in total on the connection, then stop pushing
//!   (requests are still answered). Default: no limit.
//! * `--rate R`   R ticks per second in total, paced from the 22004 on in
//!   batches at most every 250 µs (at 100k/s: 25 frames per batch). 0 (default): as fast as the socket
//!   takes them (blocking writes, so the client's reading speed sets the pace).
//! * `--seq-ns`   `seq` is the send time in nanoseconds since the UNIX epoch
//!   (kept strictly increasing), so a consumer of the output can compute
//!   latency as now − seq. Otherwise `seq` counts 1, 2, 3, … per connection.
//! * `--idle`     answer requests, never push.
//! * `--self-test` start the server, connect an in-process null client that
//!   subscribes to `--symbols M` codes (default 50) and discards the raw bytes
//!   without any WebSocket parsing, push `--count` ticks (default 2,000,000),
//!   and print the server's own push rate (`selftest ticks=… secs=… rate=…`).
//!
//! Frames are rendered into a reused buffer and written with `write` (no
//! flush) per frame and one `flush` per batch, so the server is cheap next to
//! any client. When a connection has pushed `--count` ticks it prints
//! `conn K: pushed N ticks in S s (R ticks/s)` on stderr.
//!
//! Only for local benchmarks: no token check, no request-rate limit, no
//! heartbeat cutoff.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error as WsError, Message, WebSocket};

/// Frames written between two flushes in as-fast-as-possible mode.
const BATCH: u64 = 256;
/// Most frames written in one paced batch (catch-up cap).
const MAX_PACED_BATCH: u64 = 4096;
/// Shortest sleep between two paced batches (at 100k ticks/s: 25 per batch).
const MIN_PACE: Duration = Duration::from_micros(250);
/// Longest sleep between two paced batches, so requests are answered promptly
/// even at very low rates.
const MAX_PACE: Duration = Duration::from_millis(20);

#[derive(Clone, Debug)]
struct Config {
    port: u16,
    count: Option<u64>,
    rate: f64,
    seq_ns: bool,
    idle: bool,
    self_test: bool,
    symbols: usize,
    /// Self-test only: shut the socket down after the last push so the null
    /// client sees EOF.
    shutdown_when_done: bool,
}

const USAGE: &str = "usage: flood_server [PORT] [--count N] [--rate R] [--seq-ns] [--idle] [--self-test [--symbols M]]";

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config {
        port: 0,
        count: None,
        rate: 0.0,
        seq_ns: false,
        idle: false,
        self_test: false,
        symbols: 50,
        shutdown_when_done: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--count" => {
                cfg.count = Some(
                    value("--count")?
                        .parse()
                        .map_err(|e| format!("--count: {e}"))?,
                )
            }
            "--rate" => {
                cfg.rate = value("--rate")?
                    .parse()
                    .map_err(|e| format!("--rate: {e}"))?;
                if !(cfg.rate >= 0.0 && cfg.rate.is_finite()) {
                    return Err("--rate must be >= 0".into());
                }
            }
            "--symbols" => {
                cfg.symbols = value("--symbols")?
                    .parse()
                    .map_err(|e| format!("--symbols: {e}"))?;
                if cfg.symbols == 0 {
                    return Err("--symbols must be > 0".into());
                }
            }
            "--seq-ns" => cfg.seq_ns = true,
            "--idle" => cfg.idle = true,
            "--self-test" => cfg.self_test = true,
            "-h" | "--help" => return Err(USAGE.into()),
            p if !p.starts_with('-') => {
                cfg.port = p.parse().map_err(|e| format!("port {p:?}: {e}"))?
            }
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let mut cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flood_server: {e}");
            return ExitCode::from(2);
        }
    };
    if cfg.self_test {
        cfg.count.get_or_insert(2_000_000);
        cfg.shutdown_when_done = true;
    }
    let listener = match TcpListener::bind(("127.0.0.1", cfg.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("flood_server: cannot listen on 127.0.0.1:{}: {e}", cfg.port);
            return ExitCode::FAILURE;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "PORT={port}");
        let _ = out.flush();
    }
    if cfg.self_test {
        let server_cfg = cfg.clone();
        thread::spawn(move || accept_loop(listener, server_cfg));
        return match self_test(port, &cfg) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("flood_server: self-test failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    accept_loop(listener, cfg);
    ExitCode::SUCCESS
}

static CONN_IDS: AtomicU64 = AtomicU64::new(0);

fn accept_loop(listener: TcpListener, cfg: Config) {
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                let cfg = cfg.clone();
                let id = CONN_IDS.fetch_add(1, Ordering::Relaxed) + 1;
                thread::spawn(move || {
                    if let Err(e) = serve(s, &cfg, id) {
                        eprintln!("flood_server: conn {id}: {e}");
                    }
                });
            }
            Err(e) => {
                eprintln!("flood_server: accept: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Per-connection push state and the frame renderer.
struct Pusher {
    codes: Vec<String>,
    /// Base price of each code, in cents.
    base: Vec<u64>,
    next_code: usize,
    sent: u64,
    last_seq: u64,
    /// When the first 22004 arrived (pushing starts).
    started: Option<Instant>,
    finished: bool,
    /// `{"cmd_id":22998,"data":{"code":"<code>","seq":` per code.
    prefix: Vec<String>,
    buf: Vec<u8>,
}

impl Pusher {
    fn new() -> Pusher {
        Pusher {
            codes: Vec::new(),
            base: Vec::new(),
            next_code: 0,
            sent: 0,
            last_seq: 0,
            started: None,
            finished: false,
            prefix: Vec::new(),
            buf: Vec::with_capacity(256),
        }
    }

    fn set_codes(&mut self, codes: Vec<String>) {
        self.base = codes
            .iter()
            .map(|c| {
                let h = c.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
                2_000 + h % 48_000
            })
            .collect();
        // The code is re-serialised as a JSON string (escaped if need be).
        self.prefix = codes
            .iter()
            .map(|c| {
                format!(
                    "{{\"cmd_id\":22998,\"data\":{{\"code\":{},\"seq\":",
                    json!(c)
                )
            })
            .collect();
        self.codes = codes;
        self.next_code = 0;
    }

    /// Render the next trade frame into a fresh String (tungstenite's Message
    /// owns its payload). Cheap: the per-code prefix is pre-rendered, numbers
    /// are formatted by hand, one small allocation per frame.
    fn render(&mut self, seq_ns: bool, tick_ms: u64) -> String {
        let i = self.next_code;
        self.next_code = if i + 1 == self.codes.len() { 0 } else { i + 1 };
        let n = self.sent;
        let seq = if seq_ns {
            let now = now_ns().max(self.last_seq + 1);
            self.last_seq = now;
            now
        } else {
            n + 1
        };
        let cents = self.base[i] + (n % 97);
        let volume = 100 * (1 + n % 20);
        let turnover = cents * volume;
        let dir = n % 3;
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(self.prefix[i].as_bytes());
        push_u64(b, seq);
        b.extend_from_slice(b",\"tick_time\":");
        push_u64(b, tick_ms);
        b.extend_from_slice(b",\"price\":\"");
        push_cents(b, cents);
        b.extend_from_slice(b"\",\"volume\":\"");
        push_u64(b, volume);
        b.extend_from_slice(b"\",\"turnover\":\"");
        push_cents(b, turnover);
        b.extend_from_slice(b"\",\"trade_direction\":");
        push_u64(b, dir);
        b.extend_from_slice(b"}}");
        self.sent += 1;
        // Codes come from a parsed JSON string, so this is valid UTF-8.
        String::from_utf8(b.clone()).unwrap_or_default()
    }
}

/// Append the decimal digits of `v`.
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Append `cents` as `units.cc`.
fn push_cents(out: &mut Vec<u8>, cents: u64) {
    push_u64(out, cents / 100);
    let c = (cents % 100) as u8;
    out.extend_from_slice(&[b'.', b'0' + c / 10, b'0' + c % 10]);
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

fn is_timeout(e: &WsError) -> bool {
    matches!(e, WsError::Io(io) if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

/// Serve one connection until the peer goes away.
fn serve(stream: TcpStream, cfg: &Config, id: u64) -> Result<(), String> {
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20));
    let mut ws = tungstenite::accept_with_config(stream, Some(config))
        .map_err(|e| format!("handshake: {e}"))?;
    let mut p = Pusher::new();
    loop {
        let limit_reached = cfg.count.is_some_and(|c| p.sent >= c);
        if limit_reached && !p.finished {
            p.finished = true;
            let secs = p.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
            eprintln!(
                "conn {id}: pushed {} ticks in {secs:.3} s ({:.0} ticks/s)",
                p.sent,
                p.sent as f64 / secs.max(1e-9)
            );
            if cfg.shutdown_when_done {
                let _ = ws.flush();
                let _ = ws.get_mut().shutdown(Shutdown::Both);
                return Ok(());
            }
        }
        let pushing = !cfg.idle && !p.codes.is_empty() && !limit_reached && p.started.is_some();
        if !pushing {
            // Nothing to push: block until the next request.
            match ws.read() {
                Ok(msg) => {
                    if !handle(&mut ws, &mut p, cfg, msg)? {
                        return Ok(());
                    }
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) => return peer_gone(e),
            }
            continue;
        }

        // Answer whatever requests are waiting, without blocking.
        ws.get_mut()
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let r = drain_requests(&mut ws, &mut p, cfg);
        ws.get_mut()
            .set_nonblocking(false)
            .map_err(|e| e.to_string())?;
        if !r? {
            return Ok(());
        }
        if p.codes.is_empty() {
            continue; // cancelled (22006)
        }

        // How many frames now: a fixed batch, or what the rate says is due.
        let start = p.started.unwrap_or_else(Instant::now);
        let mut n = if cfg.rate == 0.0 {
            BATCH
        } else {
            let due = (start.elapsed().as_secs_f64() * cfg.rate).floor() as u64;
            due.saturating_sub(p.sent).min(MAX_PACED_BATCH)
        };
        if let Some(c) = cfg.count {
            n = n.min(c - p.sent);
        }
        if n > 0 {
            // Blocking writes: a slow client slows the server down (TCP
            // back-pressure) instead of growing a buffer.
            let tick_ms = now_ms();
            for _ in 0..n {
                let frame = p.render(cfg.seq_ns, tick_ms);
                if let Err(e) = ws.write(Message::text(frame)) {
                    return peer_gone(e);
                }
            }
            if let Err(e) = ws.flush() {
                return peer_gone(e);
            }
        }
        if cfg.rate > 0.0 && cfg.count.is_none_or(|c| p.sent < c) {
            // Sleep until the next tick is due. thread::sleep is precise
            // (hrtimer); a socket read timeout is not (SO_RCVTIMEO counts in
            // jiffies, which turned 1 ms waits into ~8 ms bursts).
            let next_at = (p.sent + 1) as f64 / cfg.rate;
            let wait = Duration::from_secs_f64((next_at - start.elapsed().as_secs_f64()).max(0.0));
            thread::sleep(wait.clamp(MIN_PACE, MAX_PACE));
        }
    }
}

/// Read every request already available (socket non-blocking).
/// Ok(false): the connection is over.
fn drain_requests(
    ws: &mut WebSocket<TcpStream>,
    p: &mut Pusher,
    cfg: &Config,
) -> Result<bool, String> {
    loop {
        match ws.read() {
            Ok(msg) => {
                if !handle(ws, p, cfg, msg)? {
                    return Ok(false);
                }
            }
            Err(e) if is_timeout(&e) => return Ok(true),
            Err(e) => return peer_gone(e).map(|()| false),
        }
    }
}

/// Errors that just mean the client left are not failures.
fn peer_gone(e: WsError) -> Result<(), String> {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => Ok(()),
        WsError::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
            ) =>
        {
            Ok(())
        }
        WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            Ok(())
        }
        other => Err(other.to_string()),
    }
}

/// Answer one message. Ok(false): the connection is over.
fn handle(
    ws: &mut WebSocket<TcpStream>,
    p: &mut Pusher,
    cfg: &Config,
    msg: Message,
) -> Result<bool, String> {
    let text = match msg {
        Message::Text(t) => t.as_str().to_owned(),
        Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
        // Pongs to pings go out automatically; a close is answered by
        // tungstenite and the next read reports ConnectionClosed.
        _ => return Ok(true),
    };
    let req: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let cmd_id = req.get("cmd_id").and_then(Value::as_u64).unwrap_or(0);
    let (resp_cmd, ret, msg) = match cmd_id {
        22000 => (22001, 200, "ok"),
        22002 => (22003, 200, "ok"),
        22004 => {
            let codes: Vec<String> = req
                .pointer("/data/symbol_list")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|i| i.get("code").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if codes.is_empty() {
                (22005, 601, "body empty")
            } else {
                p.set_codes(codes);
                if p.started.is_none() && !cfg.idle {
                    p.started = Some(Instant::now());
                }
                (22005, 200, "ok")
            }
        }
        22006 => {
            p.set_codes(Vec::new());
            (22007, 200, "ok")
        }
        0 => (0, 400, "request header/data param invalid"),
        other => (other + 1, 400, "request header/data param invalid"),
    };
    let mut resp = serde_json::Map::new();
    resp.insert("ret".into(), json!(ret));
    resp.insert("msg".into(), json!(msg));
    resp.insert("cmd_id".into(), json!(resp_cmd));
    if let Some(v) = req.get("seq_id") {
        resp.insert("seq_id".into(), v.clone());
    }
    if let Some(v) = req.get("trace") {
        resp.insert("trace".into(), v.clone());
    }
    resp.insert("data".into(), json!({}));
    match ws.send(Message::text(Value::Object(resp).to_string())) {
        Ok(()) => Ok(true),
        Err(e) if is_timeout(&e) => Ok(true),
        Err(e) => peer_gone(e).map(|()| false),
    }
}

/// Push `cfg.count` ticks to an in-process null client that reads raw bytes
/// and throws them away, and report the rate.
fn self_test(port: u16, cfg: &Config) -> Result<(), String> {
    let url = format!("ws://127.0.0.1:{port}/selftest");
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let (mut ws, _) = tungstenite::client(url.as_str(), stream).map_err(|e| e.to_string())?;
    let list: Vec<Value> = (0..cfg.symbols)
        .map(|i| json!({"code": format!("C{i}.US")}))
        .collect();
    let sub =
        json!({"cmd_id": 22004, "seq_id": 1, "trace": "selftest", "data": {"symbol_list": list}});
    ws.send(Message::text(sub.to_string()))
        .map_err(|e| e.to_string())?;
    let count = cfg.count.unwrap_or(0);
    let mut sock = ws.get_ref().try_clone().map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    let mut first: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    loop {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                first.get_or_insert_with(Instant::now);
                bytes += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        if Instant::now() > deadline {
            return Err("took longer than 120 s".into());
        }
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    println!(
        "selftest ticks={count} bytes={bytes} secs={secs:.4} rate={:.0} mb_per_s={:.1}",
        count as f64 / secs.max(1e-9),
        bytes as f64 / 1e6 / secs.max(1e-9)
    );
    Ok(())
}
