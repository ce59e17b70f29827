//! Raw frames for tests (feature `testing`): [`Simulator::inject`] and
//! what a connection does with them, down to a frame too large to hold.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::{Error as WsError, Message};

use super::conn::{Conn, is_timeout};
use super::faults::Command;
use super::server::Shared;
use super::{CloseCause, Simulator, WRITE_TIMEOUT};

/// Chunk size used to stream an [`Inject::Huge`] payload.
const HUGE_CHUNK: usize = 64 * 1024;

/// A raw frame for [`Simulator::inject`], sent as-is to every open connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inject {
    /// A text frame with this content (e.g. invalid JSON, an unknown cmd_id,
    /// a trade with price "0").
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A (final) text frame whose payload is these bytes, which need not be
    /// valid UTF-8 (a raw tungstenite frame; `Message::Text` cannot hold
    /// invalid UTF-8).
    InvalidUtf8(Vec<u8>),
    /// One final text frame with a payload of this many bytes, written as a
    /// raw frame header followed by the payload streamed in 64 KiB chunks
    /// (the simulator never holds it in memory). The payload is valid UTF-8
    /// shaped like a trade push padded with `x` (just `x`s if too short for
    /// that). A client is expected to refuse it and disconnect, so the write
    /// failing is normal; in any case the connection ends if the frame could
    /// not be written completely.
    Huge(usize),
}

/// One [`Simulator::inject`] frame as handled by one connection.
#[derive(Clone, Debug)]
pub struct Injected {
    /// Connection id ([`ConnRecord::id`](super::ConnRecord::id)).
    pub conn: u64,
    /// When the write was attempted.
    pub at: Instant,
    /// The frame.
    pub frame: Inject,
    /// The frame was written and flushed completely (false e.g. when the
    /// client refused an [`Inject::Huge`] and disconnected mid-frame).
    pub written: bool,
}

impl Simulator {
    /// Send a raw frame to every open connection (as in
    /// [`Simulator::close_connections`]), as-is (recorded in
    /// [`SimState::injected`](super::SimState::injected)). Acts asynchronously (within about 10 ms).
    pub fn inject(&self, frame: Inject) {
        self.shared.send_to_open(|| Command::Inject(frame.clone()));
    }
}

impl Shared {
    /// Record an injected frame and notify waiters.
    fn record_injected(&self, rec: Injected) {
        self.lock_inner().state.injected.push(rec);
        self.cond.notify_all();
    }
}

impl Conn<'_> {
    /// Write one injected frame and record it. Returns Some(cause) if the
    /// connection ends.
    pub(super) fn inject(&mut self, frame: Inject) -> Option<CloseCause> {
        let at = Instant::now();
        let result = match &frame {
            Inject::Text(text) => self.ws.send(Message::text(text.as_str())),
            Inject::Binary(bytes) => self.ws.send(Message::binary(bytes.clone())),
            Inject::InvalidUtf8(bytes) => self.ws.send(Message::Frame(Frame::message(
                bytes.clone(),
                OpCode::Data(Data::Text),
                true,
            ))),
            Inject::Huge(len) => self.write_huge(*len),
        };
        self.shared.record_injected(Injected {
            conn: self.id,
            at,
            frame: frame.clone(),
            written: result.is_ok(),
        });
        match result {
            Ok(()) => None,
            // A huge frame cut short leaves the stream mid-frame: end it.
            Err(e) if matches!(frame, Inject::Huge(_)) => Some(self.fatal(e)),
            r => self.check_write(r).err(),
        }
    }

    /// Write one final text frame of `len` payload bytes directly to the
    /// socket, header first, payload in [`HUGE_CHUNK`]s.
    fn write_huge(&mut self, len: usize) -> Result<(), WsError> {
        // Whatever tungstenite still buffers must go out first (bounded).
        let deadline = Instant::now() + WRITE_TIMEOUT;
        loop {
            match self.ws.flush() {
                Ok(()) => break,
                Err(e) if is_timeout(&e) && Instant::now() < deadline => {}
                Err(e) => return Err(e),
            }
        }
        // RFC 6455 5.2: FIN + opcode 1 (text), unmasked, shortest length form.
        let mut header = vec![0x81u8];
        match (u8::try_from(len), u16::try_from(len)) {
            (Ok(n), _) if n < 126 => header.push(n),
            (_, Ok(n)) => {
                header.push(126);
                header.extend_from_slice(&n.to_be_bytes());
            }
            _ => {
                header.push(127);
                header.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        const PREFIX: &[u8] = br#"{"cmd_id":22998,"data":{"code":"HUGE","pad":""#;
        const SUFFIX: &[u8] = br#""}}"#;
        let (prefix, suffix) = if len >= PREFIX.len() + SUFFIX.len() {
            (PREFIX, SUFFIX)
        } else {
            (&b""[..], &b""[..])
        };
        let chunk = vec![b'x'; HUGE_CHUNK.min(len)];
        let stream = self.ws.get_mut();
        stream.write_all(&header)?;
        stream.write_all(prefix)?;
        let mut left = len - prefix.len() - suffix.len();
        while left > 0 {
            if self.shared.stopping() || self.ctl.kill.load(Ordering::SeqCst) {
                return Err(WsError::ConnectionClosed);
            }
            let n = left.min(chunk.len());
            stream.write_all(&chunk[..n])?;
            left -= n;
        }
        stream.write_all(suffix)?;
        stream.flush()?;
        Ok(())
    }
}
