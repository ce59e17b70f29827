//! Opening one WebSocket connection, `ws://` or `wss://`, with every step bounded.
//!
//! TCP connect, TLS handshake (native-tls, certificates verified) and the
//! WebSocket upgrade all share one deadline. The TLS handshake is driven by
//! hand so that a socket read timeout during it is a retry, not a panic.

use std::io;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::{MaybeTlsStream, Mode};
use tungstenite::{Error as WsError, WebSocket};

/// The socket type the session owns.
pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// Largest message accepted from the server. Real AllTick messages are a
/// few hundred bytes; a 3000-code acknowledgement stays far below this.
pub const MAX_MESSAGE: usize = 1 << 20;

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    /// Retrying cannot help (the token was refused).
    Fatal(String),
    /// Worth retrying after a backoff.
    Retry(String),
    /// Worth retrying, but not before `min_wait`: the server refused the
    /// upgrade in a way that a quick retry would only repeat (HTTP 403).
    RetryAfter {
        /// What happened and its likely causes.
        reason: String,
        /// Least wait before the next attempt.
        min_wait: Duration,
    },
}

/// Least wait after an HTTP 403 at the handshake. AllTick's docs never say
/// what 403 means: a refused token, or one connection too many (e.g. the
/// previous process's connection not yet released). Retrying slowly covers
/// both without hammering the server.
pub const AFTER_403: Duration = Duration::from_secs(30);

/// WebSocket limits: bounded so a hostile server cannot grow memory.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
        .max_write_buffer_size(1 << 20)
}

/// The TCP stream underneath, for timeouts.
pub fn tcp(ws: &Ws) -> &TcpStream {
    match ws.get_ref() {
        MaybeTlsStream::Plain(s) => s,
        MaybeTlsStream::NativeTls(s) => s.get_ref(),
        _ => unreachable_stream(),
    }
}

fn unreachable_stream() -> ! {
    // Only Plain and NativeTls are ever built by `connect`.
    panic!("connect only builds plain or native-tls streams")
}

/// Connect to `url` (which carries the token) within `timeout`.
/// Error texts never contain the URL.
pub fn connect(url: &str, timeout: Duration) -> Result<Ws, ConnectError> {
    let deadline = Instant::now() + timeout;
    let request = url
        .into_client_request()
        .map_err(|e| ConnectError::Fatal(format!("bad URL: {e}")))?;
    let uri = request.uri().clone();
    let mode = tungstenite::client::uri_mode(&uri)
        .map_err(|_| ConnectError::Fatal("the URL must start with ws:// or wss://".into()))?;
    let host = uri
        .host()
        .ok_or_else(|| ConnectError::Fatal("the URL has no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(match mode {
        Mode::Plain => 80,
        Mode::Tls => 443,
    });

    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| ConnectError::Retry(format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(ConnectError::Retry(format!(
            "{host} resolves to no address"
        )));
    }
    let mut last_err = None;
    let mut tcp = None;
    for addr in &addrs {
        let left = remaining(deadline)?;
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let tcp = tcp.ok_or_else(|| {
        let e = last_err.map(|e| e.to_string()).unwrap_or_default();
        ConnectError::Retry(format!("cannot connect to {host}:{port}: {e}"))
    })?;
    let _ = tcp.set_nodelay(true);
    // Short timeouts during the handshakes; each WouldBlock is a chance to
    // check the deadline.
    set_timeouts(&tcp, Duration::from_millis(200))
        .map_err(|e| ConnectError::Retry(format!("socket setup failed: {e}")))?;

    let stream = match mode {
        Mode::Plain => MaybeTlsStream::Plain(tcp),
        Mode::Tls => MaybeTlsStream::NativeTls(tls_handshake(&host, tcp, deadline)?),
    };
    websocket_handshake(request, stream, deadline)
}

fn set_timeouts(tcp: &TcpStream, t: Duration) -> io::Result<()> {
    tcp.set_read_timeout(Some(t))?;
    tcp.set_write_timeout(Some(t))
}

fn remaining(deadline: Instant) -> Result<Duration, ConnectError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(ConnectError::Retry("connect timed out".into()))
    } else {
        Ok(left)
    }
}

fn tls_handshake(
    host: &str,
    tcp: TcpStream,
    deadline: Instant,
) -> Result<native_tls::TlsStream<TcpStream>, ConnectError> {
    let connector = native_tls::TlsConnector::new()
        .map_err(|e| ConnectError::Fatal(format!("TLS is not available: {e}")))?;
    let mut attempt = connector.connect(host, tcp);
    loop {
        match attempt {
            Ok(s) => return Ok(s),
            Err(native_tls::HandshakeError::Failure(e)) => {
                return Err(ConnectError::Retry(format!(
                    "TLS handshake with {host} failed: {e}"
                )));
            }
            Err(native_tls::HandshakeError::WouldBlock(mid)) => {
                if Instant::now() >= deadline {
                    let _ = mid.get_ref().shutdown(Shutdown::Both);
                    return Err(ConnectError::Retry(format!(
                        "TLS handshake with {host} timed out"
                    )));
                }
                attempt = mid.handshake();
            }
        }
    }
}

fn websocket_handshake(
    request: tungstenite::handshake::client::Request,
    stream: MaybeTlsStream<TcpStream>,
    deadline: Instant,
) -> Result<Ws, ConnectError> {
    let mut attempt = tungstenite::client::client_with_config(request, stream, Some(ws_config()));
    loop {
        match attempt {
            Ok((ws, _response)) => return Ok(ws),
            Err(HandshakeError::Interrupted(mid)) => {
                if Instant::now() >= deadline {
                    return Err(ConnectError::Retry("WebSocket handshake timed out".into()));
                }
                attempt = mid.handshake();
            }
            Err(HandshakeError::Failure(WsError::Http(response))) => {
                let status = response.status();
                return Err(if status.as_u16() == 401 {
                    ConnectError::Fatal(format!(
                        "the server refused the token (HTTP {status}); check ALLTICK_TOKEN or --token-file"
                    ))
                } else if status.as_u16() == 403 {
                    ConnectError::RetryAfter {
                        reason: format!(
                            "the server answered the upgrade with HTTP {status}: either the token is refused or the token has too many connections open (an earlier connection not yet released, or another process using the same token)"
                        ),
                        min_wait: AFTER_403,
                    }
                } else {
                    ConnectError::Retry(format!(
                        "the server answered the upgrade with HTTP {status}"
                    ))
                });
            }
            Err(HandshakeError::Failure(e)) => {
                return Err(ConnectError::Retry(format!(
                    "WebSocket handshake failed: {}",
                    describe(&e)
                )));
            }
        }
    }
}

/// A short description of a tungstenite error that never includes a URL.
pub fn describe(e: &WsError) -> String {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => "connection closed".into(),
        WsError::Io(io) => format!("I/O error: {io}"),
        WsError::Tls(t) => format!("TLS error: {t}"),
        WsError::Capacity(c) => format!("message too large: {c}"),
        WsError::Protocol(p) => format!("protocol error: {p}"),
        WsError::Utf8(_) => "invalid UTF-8 in a text frame".into(),
        WsError::Url(_) => "bad URL".into(),
        WsError::Http(r) => format!("HTTP {}", r.status()),
        other => format!("{other}"),
    }
}
