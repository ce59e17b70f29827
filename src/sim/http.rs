//! The HTTP side: one request per connection under a K-line base, read by
//! hand, checked (path, token, the plan's limits, injected faults) and
//! answered with `Connection: close`; the K-line answer itself is built in
//! `http_answer`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::conn::{SimStream, idle_while_silent};
use super::http_answer::{self, Query, error_body};
use super::market::record;
use super::route::ended;
use super::route::not_yet;
use super::server::{Shared, lock};
use super::{
    HTTP_FOREX_BASE, HTTP_STOCK_BASE, HttpRequest, LOOP_TICK, SimConfig, Simulator, kline,
};
use crate::wire::calendar::{DAY_MS, civil_from_days};
use crate::wire::kline::{KLINE_PATH, KlineInterval, RawKline};
use crate::wire::plan::{HttpLimits, Window};
use crate::wire::symbol::Market;

/// Largest request head read.
const HEAD_LIMIT: usize = 16 * 1024;
/// Longest the rest of a request head may take to arrive.
const HEAD_TIME: Duration = Duration::from_secs(5);
/// How far back the data reaches by default: 30 days before the start.
pub const DEFAULT_HISTORY_DAYS: u64 = 30;

/// How a request over the plan's limits (`SimConfig::http_limits`) is
/// answered: AllTick's docs give 429 and 605.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpLimitAnswer {
    /// HTTP status 429, body `{"ret":429,"msg":"rate limit",…}` (the default).
    #[default]
    Status429,
    /// HTTP 200, body ret 429 "rate limit".
    Ret429,
    /// HTTP 200, body ret 605 "too many requests".
    Ret605,
}

/// The HTTP side's switches and counters.
pub(super) struct HttpCtl {
    pub(super) limits: Option<HttpLimits>,
    pub(super) limit_answer: HttpLimitAnswer,
    /// Arrivals of the requests counted toward the limits, oldest first,
    /// kept for a day at most.
    arrivals: VecDeque<Instant>,
    pub(super) history_start_ms: u64,
    /// The testing switches (readings, faults, refused codes).
    #[cfg(feature = "testing")]
    pub(super) switches: super::http_faults::Switches,
}

impl HttpCtl {
    /// The HTTP side of a simulator started with `cfg` when its clock read
    /// `now_ms`.
    pub(super) fn new(cfg: &SimConfig, now_ms: u64) -> HttpCtl {
        let default_start =
            (now_ms - now_ms % DAY_MS).saturating_sub(DEFAULT_HISTORY_DAYS * DAY_MS);
        HttpCtl {
            limits: cfg.http_limits,
            limit_answer: cfg.http_limit_answer,
            arrivals: VecDeque::new(),
            history_start_ms: cfg.history_start_ms.unwrap_or(default_start),
            #[cfg(feature = "testing")]
            switches: super::http_faults::Switches::new(cfg.kline_readings),
        }
    }

    /// Count a request arriving at `now` (no earlier than the last one
    /// counted) if it keeps to the limits; false (and not counted) if it
    /// would break one.
    fn admit(&mut self, now: Instant) -> bool {
        let Some(limits) = self.limits else {
            return true;
        };
        let day = Duration::from_millis(DAY_MS);
        while self
            .arrivals
            .front()
            .is_some_and(|a| now.duration_since(*a) >= day)
        {
            self.arrivals.pop_front();
        }
        let windows = limits.windows().into_iter().chain([Window {
            count: limits.per_day,
            window_ms: DAY_MS,
        }]);
        for w in windows {
            let span = Duration::from_millis(w.window_ms);
            let inside = self
                .arrivals
                .iter()
                .rev()
                .take_while(|a| now.duration_since(**a) < span)
                .count();
            if inside >= w.count as usize {
                return false;
            }
        }
        self.arrivals.push_back(now);
        true
    }
}

impl Simulator {
    /// The base URL of one of the simulated HTTP APIs, to which `/kline`
    /// is added: `http://127.0.0.1:PORT/quote-stock-b-api` (`stock`) or
    /// `http://127.0.0.1:PORT/quote-b-api`; with `SimConfig::tls`
    /// `https://localhost:PORT/…`. Same port as the WebSocket endpoints.
    pub fn http_base(&self, stock: bool) -> String {
        let path = if stock {
            HTTP_STOCK_BASE
        } else {
            HTTP_FOREX_BASE
        };
        #[cfg(feature = "testing")]
        if self.shared.tls.is_some() {
            return format!("https://localhost:{}{path}", self.port());
        }
        format!("http://127.0.0.1:{}{path}", self.port())
    }

    /// Enforce these limits on the HTTP requests from now on (None: none),
    /// counting afresh; see [`SimConfig::http_limits`].
    pub fn set_http_limits(&self, limits: Option<HttpLimits>) {
        let mut http = lock(&self.shared.http);
        http.limits = limits;
        http.arrivals.clear();
    }

    /// How requests over the limits are answered from now on.
    pub fn set_http_limit_answer(&self, answer: HttpLimitAnswer) {
        lock(&self.shared.http).limit_answer = answer;
    }

    /// The oldest time (ms) a bar may start at: nothing older is answered.
    pub fn history_start_ms(&self) -> u64 {
        lock(&self.shared.http).history_start_ms
    }

    /// Serve bars from `ms` on (see [`SimConfig::history_start_ms`]).
    pub fn set_history_start_ms(&self, ms: u64) {
        lock(&self.shared.http).history_start_ms = ms;
    }

    /// Like [`kline_bars`](super::kline_bars), on the simulator's clock and
    /// from its oldest bar ([`Simulator::history_start_ms`]) on: the final
    /// bars it would answer, starting within `from_start_ms ..=
    /// to_start_ms`, oldest first. For a code the market has traded, the
    /// bars come from its record of trades where it applies (the market
    /// caught up to now first), as the K-line API's do (`tape`).
    pub fn kline_bars(
        &self,
        code: &str,
        interval: KlineInterval,
        from_start_ms: u64,
        to_start_ms: u64,
    ) -> Vec<RawKline> {
        let from = from_start_ms.max(self.history_start_ms());
        let mut inner = self.shared.lock_inner();
        let now = inner.now_ms();
        inner.catch_up(code, now);
        kline::bars_between(code, interval, from, to_start_ms, now, inner.tape(code))
    }
}

/// A request head, read.
pub(super) struct Head {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: Option<String>,
}

/// What a request gets.
pub(super) enum Reply {
    /// An answer: HTTP status, content type, body, and the body's `ret`
    /// and number of bars (for the record).
    Answer {
        status: u16,
        json: bool,
        body: String,
        ret: Option<u32>,
        bars: usize,
    },
    /// Nothing, until this long has passed or the hang is released; then
    /// the connection is closed.
    // Only the testing switches hang.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    Hang(Duration),
}

impl Reply {
    /// A JSON answer with `ret` and no bars.
    pub(super) fn error(status: u16, ret: u32, msg: &str, trace: &Value) -> Reply {
        Reply::Answer {
            status,
            json: true,
            body: error_body(ret, msg, trace),
            ret: Some(ret),
            bars: 0,
        }
    }
}

/// Answer the HTTP request on `stream`, of which `head` was read already.
pub(super) fn serve(shared: &Shared, mut stream: SimStream, head: Vec<u8>, kill: &AtomicBool) {
    if idle_while_silent(shared, kill).is_some() {
        return;
    }
    let Some(head) = read_head(shared, &mut stream, head, kill) else {
        return;
    };
    let at = Instant::now();
    let at_ms = shared.lock_inner().now_ms();
    let Some(head) = parse_head(&head) else {
        let body = error_body(400, "bad request", &Value::Null);
        let _ = write_answer(&mut stream, 400, at_ms, true, &body);
        stream.finish();
        return;
    };
    let query = Query::read(head.query.as_deref());
    let mut rec = query.record(at, at_ms, &head);
    let reply = decide(shared, &head, &query, &mut rec);
    match reply {
        Reply::Hang(d) => {
            // Before the record shows the hang: a release after it ends it.
            let generation = shared.hang_generation();
            rec.status = 0;
            shared.record_http(rec);
            hang(shared, kill, d, generation);
        }
        Reply::Answer {
            status,
            json,
            body,
            ret,
            bars,
        } => {
            (rec.status, rec.ret, rec.bars) = (status, ret, bars);
            shared.record_http(rec);
            let _ = write_answer(&mut stream, status, at_ms, json, &body);
        }
    }
    stream.finish();
}

/// The reply to a request: path, token, limits, injected faults, then the
/// K-line answer.
fn decide(shared: &Shared, head: &Head, q: &Query, rec: &mut HttpRequest) -> Reply {
    let trace = q.trace();
    let Some(base) = rec.base else {
        return Reply::error(404, 404, "not found", &trace);
    };
    let kline_path = head.path.strip_suffix(KLINE_PATH) == Some(base_path(base));
    if !kline_path {
        return Reply::error(404, 404, "not found", &trace);
    }
    if head.method != "GET" {
        return Reply::error(405, 405, "method not allowed", &trace);
    }
    if let Some(expected) = &shared.cfg.expected_token
        && rec.token.as_deref() != Some(expected.as_str())
    {
        return Reply::error(200, 401, "token invalid", &trace);
    }
    let (admitted, answer) = {
        let mut http = lock(&shared.http);
        // Taken under the lock: arrivals are counted in time order.
        (http.admit(Instant::now()), http.limit_answer)
    };
    if !admitted {
        shared.lock_inner().state.http_over_limit += 1;
        shared.cond.notify_all();
        return match answer {
            HttpLimitAnswer::Status429 => Reply::error(429, 429, "rate limit", &trace),
            HttpLimitAnswer::Ret429 => Reply::error(200, 429, "rate limit", &trace),
            HttpLimitAnswer::Ret605 => Reply::error(200, 605, "too many requests", &trace),
        };
    }
    rec.counted = true;
    if let Some(reply) = shared.http_fault(&trace) {
        return reply;
    }
    http_answer::kline(shared, base, q)
}

/// The path of a base.
pub(super) fn base_path(base: Market) -> &'static str {
    match base {
        Market::Stock => HTTP_STOCK_BASE,
        Market::Forex => HTTP_FOREX_BASE,
    }
}

/// The base a request path lies under.
pub(super) fn base_of(path: &str) -> Option<Market> {
    [Market::Stock, Market::Forex].into_iter().find(|m| {
        path.strip_prefix(base_path(*m))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Wait, answering nothing, for `d` or until the hang is released
/// (`Simulator::clear_http_faults` moves the hang generation on from
/// `generation`), the simulator stops or the connection is dropped.
fn hang(shared: &Shared, kill: &AtomicBool, d: Duration, generation: u64) {
    let until = Instant::now() + d;
    while Instant::now() < until
        && ended(shared, kill).is_none()
        && shared.hang_generation() == generation
    {
        thread::sleep(LOOP_TICK.min(until.saturating_duration_since(Instant::now())));
    }
}

/// Read until the end of the request head (bounded in size and time).
fn read_head(
    shared: &Shared,
    stream: &mut SimStream,
    mut buf: Vec<u8>,
    kill: &AtomicBool,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + HEAD_TIME;
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end + 4);
            return Some(buf);
        }
        if buf.len() > HEAD_LIMIT || Instant::now() >= deadline || ended(shared, kill).is_some() {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if not_yet(&e) => {}
            Err(_) => return None,
        }
    }
}

/// The request line of a head: method, path and query.
fn parse_head(head: &[u8]) -> Option<Head> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let target = target.split('#').next().unwrap_or("");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };
    Some(Head {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
    })
}

/// Write an answer with its headers (`Date` on the simulator's clock).
fn write_answer(
    stream: &mut SimStream,
    status: u16,
    now_ms: u64,
    json: bool,
    body: &str,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let content_type = if json {
        "application/json"
    } else {
        "text/html"
    };
    let text = format!(
        "HTTP/1.1 {status} {reason}\r\nDate: {}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        imf_fixdate(now_ms),
        body.len()
    );
    stream.write_all(text.as_bytes())?;
    stream.flush()
}

/// `time` (ms) as HTTP's IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(super) fn imf_fixdate(time: u64) -> String {
    // 1970-01-01 was a Thursday.
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = time / DAY_MS;
    let (y, m, d) = civil_from_days(days as i64);
    let secs = time % DAY_MS / 1000;
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[m as usize - 1],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

impl Shared {
    /// Record an HTTP request and wake the waiters.
    fn record_http(&self, rec: HttpRequest) {
        let mut inner = self.lock_inner();
        let state = &mut inner.state;
        record(
            &mut state.http_requests,
            &mut state.discarded_http_requests,
            rec,
        );
        drop(inner);
        self.cond.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdates() {
        assert_eq!(
            imf_fixdate(784_111_777_000),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn heads_and_bases_are_read() {
        let h =
            parse_head(b"GET /quote-b-api/kline?token=a&query=%7B%7D HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
        assert_eq!(
            (h.method.as_str(), h.path.as_str()),
            ("GET", "/quote-b-api/kline")
        );
        assert_eq!(h.query.as_deref(), Some("token=a&query=%7B%7D"));
        assert!(parse_head(b"GET /x\r\n\r\n").is_none());
        assert_eq!(base_of("/quote-stock-b-api/kline"), Some(Market::Stock));
        assert_eq!(base_of("/quote-b-api/kline"), Some(Market::Forex));
        assert_eq!(base_of("/quote-b-api"), Some(Market::Forex));
        assert_eq!(base_of("/quote-b-apis/kline"), None);
    }

    #[test]
    fn limits_count_admitted_requests_in_sliding_windows() {
        let mut ctl = HttpCtl::new(&SimConfig::default(), 100 * DAY_MS);
        let t = Instant::now();
        assert!(ctl.admit(t) && ctl.admit(t), "no limits");
        ctl.limits = Some(HttpLimits {
            one_interface: Window {
                count: 2,
                window_ms: 1000,
            },
            per_minute: Window {
                count: 3,
                window_ms: 60_000,
            },
            per_day: 4,
        });
        ctl.arrivals.clear();
        let ms = |n: u64| t + Duration::from_millis(n);
        assert!(ctl.admit(t) && ctl.admit(t));
        assert!(!ctl.admit(ms(999)), "2 / s");
        assert!(ctl.admit(ms(1000)), "a refused request does not count");
        assert!(!ctl.admit(ms(2000)), "3 / min");
        assert!(ctl.admit(ms(60_000)), "the window slides");
        assert!(!ctl.admit(ms(200_000)), "4 / day");
        assert_eq!(ctl.arrivals.len(), 4);
    }
}
