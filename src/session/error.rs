//! Why a connection attempt failed and why a connection ended, as types.
//!
//! Each `Display` is the text of the stderr line the user reads, so a
//! message is written once, beside the case it describes. Whether a read
//! timed out (the session's clock ticking, not a failure) is decided in one
//! place: [`is_timeout`].

use std::fmt;
use std::io;
use std::time::Duration;

use tungstenite::Error as WsError;

/// Least wait after an HTTP 403 at the handshake. AllTick's docs never say
/// what 403 means: a refused token, or one connection too many (e.g. the
/// previous process's connection not yet released). Retrying slowly covers
/// both without hammering the server.
pub const AFTER_403: Duration = Duration::from_secs(30);

/// Whether an I/O error is a read or write timeout: a tick of the clock.
pub fn is_timeout_io(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Whether a tungstenite error is a timeout (`WouldBlock` on Unix,
/// `TimedOut` elsewhere). Partial frames survive it.
pub fn is_timeout(e: &WsError) -> bool {
    matches!(e, WsError::Io(io) if is_timeout_io(io))
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

/// Why a connection attempt failed. None of the texts contains the URL
/// (which carries the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The URL cannot be used.
    BadUrl(String),
    /// TLS cannot be set up on this machine.
    TlsUnavailable(String),
    /// The host name did not resolve.
    Resolve {
        /// Host name.
        host: String,
        /// What the resolver said.
        error: String,
    },
    /// No address of the host accepted a TCP connection.
    Tcp {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// The last error.
        error: String,
    },
    /// The whole attempt took longer than `--connect-timeout`.
    Timeout(&'static str),
    /// The TLS handshake failed (e.g. an untrusted certificate).
    Tls {
        /// Host name.
        host: String,
        /// What native-tls said.
        error: String,
    },
    /// The server refused the token at the handshake (HTTP 401).
    TokenRefused(String),
    /// HTTP 403 at the handshake: a refused token or too many connections.
    Forbidden(String),
    /// Another HTTP status at the handshake.
    Status(String),
    /// The WebSocket handshake failed otherwise.
    Handshake(String),
    /// A socket or thread could not be set up.
    Setup(String),
}

impl ConnectError {
    /// Retrying cannot help: the tool stops.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ConnectError::BadUrl(_)
                | ConnectError::TlsUnavailable(_)
                | ConnectError::TokenRefused(_)
        )
    }

    /// Least wait before the next attempt, beyond the backoff.
    pub fn min_wait(&self) -> Duration {
        match self {
            ConnectError::Forbidden(_) => AFTER_403,
            _ => Duration::ZERO,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::BadUrl(why) => write!(f, "bad URL: {why}"),
            ConnectError::TlsUnavailable(e) => write!(f, "TLS is not available: {e}"),
            ConnectError::Resolve { host, error } => write!(f, "cannot resolve {host}: {error}"),
            ConnectError::Tcp { host, port, error } => {
                write!(f, "cannot connect to {host}:{port}: {error}")
            }
            ConnectError::Timeout(step) => write!(f, "{step} timed out"),
            ConnectError::Tls { host, error } => {
                write!(f, "TLS handshake with {host} failed: {error}")
            }
            ConnectError::TokenRefused(status) => write!(
                f,
                "the server refused the token (HTTP {status}); check ALLTICK_TOKEN or --token-file"
            ),
            ConnectError::Forbidden(status) => write!(
                f,
                "the server answered the upgrade with HTTP {status}: either the token is refused or the token has too many connections open (an earlier connection not yet released, or another process using the same token)"
            ),
            ConnectError::Status(status) => {
                write!(f, "the server answered the upgrade with HTTP {status}")
            }
            ConnectError::Handshake(e) => write!(f, "WebSocket handshake failed: {e}"),
            ConnectError::Setup(e) => write!(f, "socket setup failed: {e}"),
        }
    }
}

/// Why an open connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disconnect {
    /// Nothing arrived for `--stale-after`.
    Stale(Duration),
    /// The server sent a close frame.
    ServerClosed {
        /// Close code, if the frame had one.
        code: Option<u16>,
        /// Close reason (at most 100 characters).
        reason: String,
    },
    /// The TCP connection ended without a close frame being seen.
    Closed,
    /// TCP RST.
    Reset,
    /// The server dropped the connection without the close handshake.
    DroppedWithoutClose,
    /// A frame broke the rules (too large, invalid UTF-8): the WebSocket
    /// rules require failing the connection.
    FrameRefused(String),
    /// `ret` 606: too many requests, the server closes the connection.
    Ret606(String),
    /// Writing a request failed.
    SendFailed(String),
    /// A socket option could not be set.
    Setup(String),
    /// Any other read error.
    Read(String),
}

impl Disconnect {
    /// Least wait before reconnecting, beyond the backoff.
    pub fn min_wait(&self) -> Duration {
        match self {
            Disconnect::Ret606(_) => crate::wire::protocol::AFTER_606,
            _ => Duration::ZERO,
        }
    }

    /// Classify an error from reading the socket.
    pub fn from_read(e: &WsError) -> Disconnect {
        match e {
            WsError::Capacity(_) | WsError::Utf8(_) => Disconnect::FrameRefused(describe(e)),
            WsError::Io(io) if io.kind() == io::ErrorKind::ConnectionReset => Disconnect::Reset,
            WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
                Disconnect::DroppedWithoutClose
            }
            WsError::ConnectionClosed => Disconnect::Closed,
            _ => Disconnect::Read(describe(e)),
        }
    }

    /// The frame was refused as unreadable (counted as such).
    pub fn is_refused_frame(&self) -> bool {
        matches!(self, Disconnect::FrameRefused(_))
    }
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disconnect::Stale(d) => write!(
                f,
                "nothing received for {} s (no heartbeat replies)",
                d.as_secs_f64()
            ),
            Disconnect::ServerClosed { code: None, .. } => {
                write!(f, "the server closed the connection (no close code)")
            }
            Disconnect::ServerClosed {
                code: Some(1000),
                reason,
            } if reason.is_empty() => {
                write!(f, "the server closed the connection (code 1000, no reason)")
            }
            Disconnect::ServerClosed {
                code: Some(code),
                reason,
            } => {
                write!(f, "the server closed the connection (code {code}")?;
                if !reason.is_empty() {
                    write!(f, ": {reason}")?;
                }
                write!(f, ")")
            }
            Disconnect::Closed => write!(f, "the server closed the connection"),
            Disconnect::Reset => write!(f, "the connection was reset (TCP RST)"),
            Disconnect::DroppedWithoutClose => {
                write!(f, "the server dropped the connection without a close frame")
            }
            Disconnect::FrameRefused(what) => write!(f, "{what} (frame refused)"),
            Disconnect::Ret606(what) => write!(f, "ret 606 {what}"),
            Disconnect::SendFailed(e) => write!(f, "sending failed: {e}"),
            Disconnect::Setup(e) => write!(f, "socket setup failed: {e}"),
            Disconnect::Read(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_ticks_and_other_errors_are_not() {
        let wb = WsError::Io(io::Error::from(io::ErrorKind::WouldBlock));
        let to = WsError::Io(io::Error::from(io::ErrorKind::TimedOut));
        let rst = WsError::Io(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(is_timeout(&wb) && is_timeout(&to));
        assert!(!is_timeout(&rst) && !is_timeout(&WsError::ConnectionClosed));
        assert_eq!(Disconnect::from_read(&rst), Disconnect::Reset);
        assert_eq!(
            Disconnect::from_read(&WsError::ConnectionClosed),
            Disconnect::Closed
        );
    }

    #[test]
    fn only_a_refused_token_and_unusable_settings_are_fatal() {
        assert!(ConnectError::TokenRefused("401 Unauthorized".into()).is_fatal());
        assert!(ConnectError::BadUrl("x".into()).is_fatal());
        let forbidden = ConnectError::Forbidden("403 Forbidden".into());
        assert!(!forbidden.is_fatal());
        assert!(forbidden.min_wait() >= Duration::from_secs(30));
        let line = forbidden.to_string();
        assert!(
            line.contains("403") && line.contains("token") && line.contains("too many connections")
        );
        assert!(!ConnectError::Status("500".into()).is_fatal());
        assert_eq!(ConnectError::Timeout("connect").min_wait(), Duration::ZERO);
    }

    #[test]
    fn disconnects_read_as_the_stderr_line() {
        let closed = |code, reason: &str| Disconnect::ServerClosed {
            code,
            reason: reason.into(),
        };
        assert_eq!(
            closed(Some(1000), "").to_string(),
            "the server closed the connection (code 1000, no reason)"
        );
        assert_eq!(
            closed(Some(1011), "internal error").to_string(),
            "the server closed the connection (code 1011: internal error)"
        );
        assert_eq!(
            closed(None, "").to_string(),
            "the server closed the connection (no close code)"
        );
        assert_eq!(
            Disconnect::Stale(Duration::from_secs(30)).to_string(),
            "nothing received for 30 s (no heartbeat replies)"
        );
        assert!(Disconnect::Ret606("x".into()).min_wait() >= Duration::from_secs(3));
    }
}
