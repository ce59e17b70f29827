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

use crate::session::error::{ConnectError, describe};

/// The socket type the session owns.
pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// Largest message accepted from the server. Real AllTick messages are a
/// few hundred bytes; a 3000-code acknowledgement stays far below this.
pub const MAX_MESSAGE: usize = 1 << 20;

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
        .map_err(|e| ConnectError::BadUrl(e.to_string()))?;
    let uri = request.uri().clone();
    let mode = tungstenite::client::uri_mode(&uri)
        .map_err(|_| ConnectError::BadUrl("the URL must start with ws:// or wss://".into()))?;
    let host = uri
        .host()
        .ok_or_else(|| ConnectError::BadUrl("the URL has no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(match mode {
        Mode::Plain => 80,
        Mode::Tls => 443,
    });

    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| ConnectError::Resolve {
            host: host.clone(),
            error: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(ConnectError::Resolve {
            host,
            error: "no address".into(),
        });
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
        let error = last_err.map(|e| e.to_string()).unwrap_or_default();
        ConnectError::Tcp {
            host: host.clone(),
            port,
            error,
        }
    })?;
    let _ = tcp.set_nodelay(true);
    // Short timeouts during the handshakes; each WouldBlock is a chance to
    // check the deadline.
    set_timeouts(&tcp, Duration::from_millis(200))
        .map_err(|e| ConnectError::Setup(e.to_string()))?;

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
        Err(ConnectError::Timeout("connect"))
    } else {
        Ok(left)
    }
}

fn tls_handshake(
    host: &str,
    tcp: TcpStream,
    deadline: Instant,
) -> Result<native_tls::TlsStream<TcpStream>, ConnectError> {
    let connector =
        native_tls::TlsConnector::new().map_err(|e| ConnectError::TlsUnavailable(e.to_string()))?;
    let mut attempt = connector.connect(host, tcp);
    loop {
        match attempt {
            Ok(s) => return Ok(s),
            Err(native_tls::HandshakeError::Failure(e)) => {
                return Err(ConnectError::Tls {
                    host: host.to_string(),
                    error: e.to_string(),
                });
            }
            Err(native_tls::HandshakeError::WouldBlock(mid)) => {
                if Instant::now() >= deadline {
                    let _ = mid.get_ref().shutdown(Shutdown::Both);
                    return Err(ConnectError::Timeout("TLS handshake"));
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
                    return Err(ConnectError::Timeout("WebSocket handshake"));
                }
                attempt = mid.handshake();
            }
            Err(HandshakeError::Failure(WsError::Http(response))) => {
                let status = response.status();
                let text = status.to_string();
                return Err(match status.as_u16() {
                    401 => ConnectError::TokenRefused(text),
                    403 => ConnectError::Forbidden(text),
                    _ => ConnectError::Status(text),
                });
            }
            Err(HandshakeError::Failure(e)) => {
                return Err(ConnectError::Handshake(describe(&e)));
            }
        }
    }
}
