//! The raw WebSocket test client: tungstenite speaking the AllTick
//! protocol by hand, for tests of a server (the simulator, `serve`) where
//! the tool is not the point. Every read is bounded: the socket has a short
//! read timeout and each method a deadline, [`WAIT`] unless it takes one.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Error, Message, WebSocket};

use super::WAIT;

/// The socket under the client.
pub type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// How long one read blocks before the deadline is looked at again.
const READ_STEP: Duration = Duration::from_millis(20);

/// A client connection. Requests carry a counted `seq_id` and the trace
/// `t<seq_id>`; with [`Client::paced`] a request waits (reading meanwhile)
/// until the pace has passed since the last one.
pub struct Client {
    ws: Socket,
    pace: Duration,
    last_request: Option<Instant>,
    next_seq: u64,
    /// Why the last read ended the stream, for failure messages.
    ended: Option<String>,
}

impl Client {
    /// Connect to `url` (`ws://`).
    pub fn connect(url: &str) -> Client {
        let (ws, _) = tungstenite::connect(url).unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        Client::wrap(ws)
    }

    /// Connect to `url` with tungstenite's `config` (frame size limits).
    pub fn connect_with(url: &str, config: WebSocketConfig) -> Client {
        let (ws, _) = tungstenite::client::connect_with_config(url, Some(config), 0)
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        Client::wrap(ws)
    }

    /// Take over a connected socket (plain or TLS, once its handshake is
    /// done: tungstenite cannot resume a TLS handshake after a timeout).
    pub fn wrap(mut ws: Socket) -> Client {
        let tcp = match ws.get_mut() {
            MaybeTlsStream::Plain(s) => &*s,
            MaybeTlsStream::NativeTls(s) => s.get_ref(),
            _ => panic!("an unexpected kind of stream"),
        };
        tcp.set_read_timeout(Some(READ_STEP))
            .expect("set_read_timeout");
        Client {
            ws,
            pace: Duration::ZERO,
            last_request: None,
            next_seq: 1,
            ended: None,
        }
    }

    /// Keep `pace` between two requests (AllTick's rule is 1 s).
    pub fn paced(mut self, pace: Duration) -> Client {
        self.pace = pace;
        self
    }

    /// Start a clean close (a close frame); read on to see the end.
    pub fn close(&mut self) {
        self.ws.close(None).expect("send a close frame");
    }

    /// The next message or the first error that is not a read timeout;
    /// `None` once `deadline` passed.
    fn read(&mut self, deadline: Instant) -> Option<Result<Message, Error>> {
        while Instant::now() < deadline {
            match self.ws.read() {
                Err(Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                other => return Some(other),
            }
        }
        None
    }

    /// Why the stream ended, if it did, for a failure message.
    fn why(&self) -> String {
        match &self.ended {
            Some(e) => format!(" (the connection ended: {e})"),
            None => String::new(),
        }
    }

    /// The next message of any kind, within [`WAIT`].
    pub fn message(&mut self) -> Message {
        match self.read(Instant::now() + WAIT) {
            Some(Ok(m)) => m,
            Some(Err(e)) => panic!("read: {e}"),
            None => panic!("no message within {WAIT:?}"),
        }
    }

    /// The next text message as JSON before `deadline`; `None` on timeout
    /// or when the connection ends.
    pub fn next_json(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            match self.read(deadline)? {
                Ok(Message::Text(t)) => {
                    let v = serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("not a JSON frame ({e}): {t}"));
                    return Some(v);
                }
                Ok(_) => {}
                Err(e) => {
                    self.ended = Some(e.to_string());
                    return None;
                }
            }
        }
    }

    /// Every JSON frame until `deadline` (or until the connection ends).
    pub fn frames_until(&mut self, deadline: Instant) -> Vec<Value> {
        std::iter::from_fn(|| self.next_json(deadline)).collect()
    }

    /// The next push (no `ret`) of `cmd_id` before `deadline`, as its raw
    /// text (numbers keep their exact digits).
    pub fn push_text(&mut self, cmd_id: u64, deadline: Instant) -> String {
        loop {
            match self.read(deadline) {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("not a JSON frame ({e}): {t}"));
                    if v["cmd_id"] == cmd_id && v.get("ret").is_none() {
                        return t.as_str().to_owned();
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("the connection ended before push {cmd_id}: {e}"),
                None => panic!("no push {cmd_id} in time"),
            }
        }
    }

    /// The next `n` trade pushes (22998), within [`WAIT`].
    pub fn trades(&mut self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let Some(v) = self.next_json(deadline) else {
                panic!(
                    "{} of {n} trade pushes within {WAIT:?}{}",
                    out.len(),
                    self.why()
                )
            };
            if v["cmd_id"] == 22998 && v.get("ret").is_none() {
                out.push(v);
            }
        }
        out
    }

    /// Send `v` as it is, now (no pacing; the time still counts as the
    /// last request's).
    pub fn send_json(&mut self, v: &Value) {
        self.send_now(&v.to_string());
    }

    /// Send `text` now.
    pub fn send_now(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
        self.last_request = Some(Instant::now());
    }

    /// Send `text` once the pace has passed since the last request; the
    /// frames read while waiting.
    pub fn send_paced(&mut self, text: &str) -> Vec<Value> {
        let frames = match self.last_request {
            Some(at) if !self.pace.is_zero() => self.frames_until(at + self.pace),
            _ => Vec::new(),
        };
        self.send_now(text);
        frames
    }

    /// Send request `cmd_id` with `data` and the next seq_id (paced); the
    /// frames read before it went out, and its seq_id.
    pub fn request(&mut self, cmd_id: u64, data: Value) -> (Vec<Value>, u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let req =
            json!({"cmd_id": cmd_id, "seq_id": seq, "trace": format!("t{seq}"), "data": data});
        (self.send_paced(&req.to_string()), seq)
    }

    /// The frames up to the first answer (a frame with `ret`) for which
    /// `is_it` holds, and that answer; panics after [`WAIT`].
    fn answer_where(&mut self, what: &str, is_it: impl Fn(&Value) -> bool) -> (Vec<Value>, Value) {
        let deadline = Instant::now() + WAIT;
        let mut frames = Vec::new();
        while let Some(v) = self.next_json(deadline) {
            if v.get("ret").is_some() && is_it(&v) {
                return (frames, v);
            }
            frames.push(v);
        }
        panic!(
            "no {what} within {WAIT:?}{}; frames: {frames:?}",
            self.why()
        )
    }

    /// The frames up to the next answer (whatever its seq_id), and it.
    pub fn reply(&mut self) -> (Vec<Value>, Value) {
        self.answer_where("answer", |_| true)
    }

    /// The frames up to the answer with `seq_id`, and the answer.
    pub fn answer(&mut self, seq: u64) -> (Vec<Value>, Value) {
        self.answer_where(&format!("answer to seq_id {seq}"), |v| v["seq_id"] == seq)
    }

    /// Request `cmd_id` with `data` and return its answer, which must be
    /// the answer command (`cmd_id + 1`); pushes meanwhile are dropped.
    pub fn call(&mut self, cmd_id: u64, data: Value) -> Value {
        let (_, seq) = self.request(cmd_id, data);
        let (_, r) = self.answer(seq);
        assert_eq!(r["cmd_id"], cmd_id + 1, "{r}");
        r
    }

    /// Subscribe to trades (22004) of `codes`; the answer.
    pub fn subscribe(&mut self, codes: &[&str]) -> Value {
        self.call(22004, symbols(codes))
    }

    /// Every JSON frame until the connection ends (within [`WAIT`]), and
    /// whether a close frame came.
    pub fn read_all_to_end(&mut self) -> (Vec<Value>, bool) {
        let deadline = Instant::now() + WAIT;
        let (mut got, mut close) = (Vec::new(), false);
        loop {
            match self.read(deadline) {
                Some(Ok(Message::Text(t))) => got.push(
                    serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("not a JSON frame ({e}): {t}")),
                ),
                Some(Ok(Message::Close(_))) => close = true,
                Some(Ok(_)) => {}
                Some(Err(_)) => return (got, close),
                None => panic!("the connection did not end within {WAIT:?}"),
            }
        }
    }

    /// Read until the connection ends (within [`WAIT`]); whether a close
    /// frame came.
    pub fn read_to_end(&mut self) -> bool {
        self.read_all_to_end().1
    }

    /// Read until a close frame arrives (within [`WAIT`]); its payload.
    pub fn close_frame(&mut self) -> Option<CloseFrame> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read(deadline) {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("no close frame: {e}"),
                None => panic!("no close frame within {WAIT:?}"),
            }
        }
    }

    /// Read until the first error that is not a read timeout (within
    /// [`WAIT`]).
    pub fn error(&mut self) -> Error {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read(deadline) {
                Some(Ok(_)) => {}
                Some(Err(e)) => return e,
                None => panic!("no error within {WAIT:?}"),
            }
        }
    }
}

/// A request's `data` naming `codes`: `{"symbol_list": [{"code": …}, …]}`.
pub fn symbols(codes: &[&str]) -> Value {
    let list: Vec<Value> = codes.iter().map(|c| json!({"code": c})).collect();
    json!({"symbol_list": list})
}
