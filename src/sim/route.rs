//! Which protocol an accepted connection speaks: an HTTP request under one
//! of the K-line bases ([`HTTP_STOCK_BASE`], [`HTTP_FOREX_BASE`]), told by
//! its request line, or anything else, which goes to the WebSocket
//! handshake exactly as before.
//!
//! On plain TCP the request line is looked at with `TcpStream::peek`, so
//! the WebSocket side reads the untouched stream. With TLS (feature
//! `testing`) the head is read after the TLS handshake and replayed to
//! tungstenite (`tls::sniff`). Only a connection that is not an HTTP
//! request becomes a [`ConnRecord`](super::ConnRecord), once its kind is
//! known.

use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::conn::{self, SimStream};
use super::server::{Ctl, Shared};
use super::{CloseCause, HANDSHAKE_POLL, HTTP_FOREX_BASE, HTTP_STOCK_BASE, WRITE_TIMEOUT};

/// Longest a request line may take to show its kind once its first bytes
/// arrived; then the WebSocket side gets it.
pub(super) const SNIFF_LIMIT: Duration = Duration::from_secs(2);
/// Enough of a request line to tell its kind.
const SNIFF_BYTES: usize = 64;

/// What an accepted connection turned out to be.
pub(super) enum Sniffed {
    /// An HTTP request under a K-line base; the bytes of it already read.
    Http(SimStream, Vec<u8>),
    /// Anything else: for the WebSocket handshake.
    Ws(SimStream),
    /// It ended before its kind was known.
    Ended(CloseCause),
}

/// The kind a request line's first bytes show, if they show one yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Http,
    Ws,
}

/// Serve accepted connection `stream` (its handle registered under `key`):
/// as an HTTP request, or as a WebSocket connection with a record.
pub(super) fn run(shared: &Shared, key: u64, stream: TcpStream, opened_at: Instant, ctl: &Ctl) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let sniffed = match stream.set_read_timeout(Some(HANDSHAKE_POLL)) {
        Ok(()) => sniff(shared, stream, &ctl.kill),
        Err(e) => Sniffed::Ended(CloseCause::Error(format!("set_read_timeout: {e}"))),
    };
    match sniffed {
        Sniffed::Http(stream, head) => {
            super::http::serve(shared, stream, head, &ctl.kill);
            shared.release_handle(key);
        }
        Sniffed::Ws(stream) => {
            let id = shared.new_conn(key, opened_at);
            let cause = conn::serve(shared, id, stream, ctl);
            shared.finish_conn(id, cause);
        }
        Sniffed::Ended(cause) => {
            let id = shared.new_conn(key, opened_at);
            shared.finish_conn(id, cause);
        }
    }
}

fn sniff(shared: &Shared, stream: TcpStream, kill: &AtomicBool) -> Sniffed {
    #[cfg(feature = "testing")]
    if shared.tls.is_some() {
        return super::tls::sniff(shared, stream, kill);
    }
    match peek_kind(shared, &stream, kill) {
        Ok(Kind::Http) => Sniffed::Http(SimStream::Plain(stream), Vec::new()),
        Ok(Kind::Ws) => Sniffed::Ws(SimStream::Plain(stream)),
        Err(cause) => Sniffed::Ended(cause),
    }
}

/// Some(cause) if the connection must end now (shutdown or dropped).
pub(super) fn ended(shared: &Shared, kill: &AtomicBool) -> Option<CloseCause> {
    if shared.stopping() {
        Some(CloseCause::Shutdown)
    } else if kill.load(Ordering::SeqCst) {
        Some(CloseCause::Dropped)
    } else {
        None
    }
}

/// Wait (reading nothing) until the first bytes of `stream` show its kind.
/// The end of the stream, an error, or [`SNIFF_LIMIT`] without a verdict
/// make it a WebSocket connection: tungstenite then fails as it always did.
fn peek_kind(shared: &Shared, stream: &TcpStream, kill: &AtomicBool) -> Result<Kind, CloseCause> {
    let mut buf = [0u8; SNIFF_BYTES];
    let mut first_bytes: Option<Instant> = None;
    loop {
        let peeked = stream.peek(&mut buf);
        if let Some(cause) = ended(shared, kill) {
            return Err(cause);
        }
        match peeked {
            Ok(0) => return Ok(Kind::Ws),
            Ok(n) => {
                if let Some(kind) = classify(&buf[..n]) {
                    return Ok(kind);
                }
                if first_bytes.get_or_insert_with(Instant::now).elapsed() >= SNIFF_LIMIT {
                    return Ok(Kind::Ws);
                }
                // The rest of the line is on its way: peek would return
                // at once with the same bytes.
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) if not_yet(&e) => {}
            Err(_) => return Ok(Kind::Ws),
        }
    }
}

/// Whether a read that failed so is only to be tried again (a read
/// timeout, or a signal).
pub(super) fn not_yet(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// The kind of a request whose first bytes are `head`: HTTP if its target
/// lies under a K-line base (any method), WebSocket for anything else;
/// None while the bytes could still go either way.
pub(super) fn classify(head: &[u8]) -> Option<Kind> {
    let Some(space) = head.iter().position(|b| *b == b' ') else {
        // Still in the method?
        let method = head.len() <= 16 && head.iter().all(u8::is_ascii_uppercase);
        return if method { None } else { Some(Kind::Ws) };
    };
    if space == 0 || !head[..space].iter().all(u8::is_ascii_uppercase) {
        return Some(Kind::Ws);
    }
    let target = &head[space + 1..];
    let mut undecided = false;
    for base in [HTTP_STOCK_BASE, HTTP_FOREX_BASE] {
        let base = base.as_bytes();
        if target.len() <= base.len() {
            undecided |= base.starts_with(target);
        } else if target.starts_with(base) && matches!(target[base.len()], b'/' | b'?' | b' ') {
            return Some(Kind::Http);
        }
    }
    if undecided { None } else { Some(Kind::Ws) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_told_apart_as_early_as_possible() {
        let http = Some(Kind::Http);
        let ws = Some(Kind::Ws);
        assert_eq!(
            classify(b"GET /quote-b-api/kline?token=x HTTP/1.1\r\n"),
            http
        );
        assert_eq!(classify(b"GET /quote-stock-b-api/kline?q"), http);
        assert_eq!(classify(b"POST /quote-b-api/batch-kline"), http);
        assert_eq!(classify(b"GET /quote-b-api HTTP/1.1"), http);
        assert_eq!(classify(b"GET /quote-stock-b-ws-api?token=x HTTP/1.1"), ws);
        assert_eq!(classify(b"GET /quote-b-ws-api HTTP/1.1"), ws);
        assert_eq!(classify(b"GET /quote-b-apix HTTP/1.1"), ws);
        assert_eq!(classify(b"GET / HTTP/1.1"), ws);
        assert_eq!(classify(b"\x16\x03\x01"), ws);
        assert_eq!(classify(b"get /quote-b-api/kline"), ws);
        for undecided in [
            &b""[..],
            b"GE",
            b"GET",
            b"GET ",
            b"GET /quote-",
            b"GET /quote-b-api",
        ] {
            assert_eq!(classify(undecided), None, "{undecided:?}");
        }
    }
}
