//! The stack's limit: a raw tungstenite client with no parsing at all.
//!
//! ```text
//! cargo run --release --example raw_client -- ws://127.0.0.1:PORT/path [--count N] CODE...
//! ```
//!
//! Connects (plain `ws://` only), sends one 22004 subscription for the codes,
//! then copies each text frame's payload plus `\n` to a buffered stdout. No
//! JSON parsing, no heartbeats, no reconnect. The subscription reply (22005)
//! is a text frame too, so it is the first line written.
//!
//! Exits when `--count N` lines were written, when the server closes, or
//! when stdout is closed. The socket is read non-blocking; whenever it has
//! nothing more to give, stdout is flushed and the client blocks for the next
//! frame — the same "flush when idle, batch when busy" policy as
//! alltick-stream's writer, so it is fair for both throughput and latency.

use std::io::{self, BufWriter, Write};
use std::net::TcpStream;
use std::process::ExitCode;

use serde_json::{Value, json};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error as WsError, Message};

fn main() -> ExitCode {
    let mut url: Option<String> = None;
    let mut count: Option<u64> = None;
    let mut codes: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--count" => match args.next().and_then(|v| v.parse().ok()) {
                Some(n) => count = Some(n),
                None => return usage("--count needs a number"),
            },
            "-h" | "--help" => return usage(""),
            s if s.starts_with("ws://") && url.is_none() => url = Some(s.to_owned()),
            s if s.starts_with('-') => return usage(&format!("unknown flag {s}")),
            s => codes.push(s.to_owned()),
        }
    }
    let Some(url) = url else {
        return usage("a ws:// URL is required");
    };
    if codes.is_empty() {
        return usage("at least one code is required");
    }
    match run(&url, &codes, count) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raw_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    if !msg.is_empty() {
        eprintln!("raw_client: {msg}");
    }
    eprintln!("usage: raw_client ws://HOST:PORT/PATH [--count N] CODE...");
    ExitCode::from(2)
}

fn run(url: &str, codes: &[String], count: Option<u64>) -> Result<(), String> {
    let rest = &url["ws://".len()..];
    let hostport = rest.split(['/', '?']).next().unwrap_or(rest);
    let stream = TcpStream::connect(hostport).map_err(|e| format!("connect {hostport}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20));
    let (mut ws, _) = tungstenite::client::client_with_config(url, stream, Some(config))
        .map_err(|e| format!("handshake: {e}"))?;
    let list: Vec<Value> = codes.iter().map(|c| json!({"code": c})).collect();
    let sub =
        json!({"cmd_id": 22004, "seq_id": 1, "trace": "raw-1", "data": {"symbol_list": list}});
    ws.send(Message::text(sub.to_string()))
        .map_err(|e| format!("send: {e}"))?;

    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let limit = count.unwrap_or(u64::MAX);
    let mut lines = 0u64;
    if limit == 0 {
        return Ok(());
    }
    let mut nonblocking = false;
    let write_failed = |e: io::Error| -> Result<(), String> {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Ok(())
        } else {
            Err(format!("stdout: {e}"))
        }
    };
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => {
                if !nonblocking {
                    ws.get_mut()
                        .set_nonblocking(true)
                        .map_err(|e| e.to_string())?;
                    nonblocking = true;
                }
                if let Err(e) = out
                    .write_all(t.as_bytes())
                    .and_then(|()| out.write_all(b"\n"))
                {
                    return write_failed(e);
                }
                lines += 1;
                if lines >= limit {
                    return out.flush().or_else(write_failed);
                }
            }
            Ok(_) => {}
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                // Nothing more buffered: hand what we have to stdout, then block.
                if let Err(e) = out.flush() {
                    return write_failed(e);
                }
                ws.get_mut()
                    .set_nonblocking(false)
                    .map_err(|e| e.to_string())?;
                nonblocking = false;
            }
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                return out.flush().or_else(write_failed);
            }
            Err(e) => {
                let _ = out.flush();
                return Err(e.to_string());
            }
        }
    }
}
