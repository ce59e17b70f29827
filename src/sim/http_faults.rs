//! The HTTP side's testing switches (feature `testing`): readings of the
//! K-line answers, refused codes and injected faults.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::Value;

use super::Simulator;
use super::faults::ret_msg;
use super::http::Reply;
use super::http_answer::KlineReadings;
use super::server::{Shared, lock};

/// A failure of the next HTTP requests ([`Simulator::fail_http_next`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpFault {
    /// This HTTP status (e.g. 500, 502, 503) with a small HTML body, as a
    /// gateway sends it.
    Status(u16),
    /// HTTP 200, `Content-Type: application/json`, and a body that is not
    /// JSON (an HTML error page).
    NotJson,
    /// Read the request and answer nothing until this long has passed or
    /// [`Simulator::clear_http_faults`] is called; then close the
    /// connection, still without an answer (minreq makes of that a 503
    /// without headers, reason "Server did not provide a status line",
    /// unless its own timeout came first).
    Hang(Duration),
    /// HTTP 200 with this `ret` (and the `msg` AllTick's error table gives
    /// it) and no `data`.
    Ret(u32),
}

/// The switches behind the HTTP side's [`Simulator`] methods.
pub(super) struct Switches {
    readings: KlineReadings,
    /// (fault, remaining count), consumed front to back.
    faults: VecDeque<(HttpFault, usize)>,
    /// Refused codes and the ret that refuses them.
    refused: Vec<(String, u32)>,
    /// Moved on by [`Simulator::clear_http_faults`]: ends every hang.
    hang_generation: u64,
}

impl Switches {
    pub(super) fn new(readings: KlineReadings) -> Switches {
        Switches {
            readings,
            faults: VecDeque::new(),
            refused: Vec::new(),
            hang_generation: 0,
        }
    }
}

impl Simulator {
    /// Play another reading of the K-line answers from now on; see
    /// [`KlineReadings`].
    pub fn set_kline_readings(&self, readings: KlineReadings) {
        lock(&self.shared.http).switches.readings = readings;
    }

    /// The K-line readings currently played.
    pub fn kline_readings(&self) -> KlineReadings {
        lock(&self.shared.http).switches.readings
    }

    /// From now on, a K-line request for one of `codes` is answered with
    /// `ret` (604 "code unauthorized", or any other) and no `data`, after
    /// the token, limit and base checks. Calls add up (a later call for a
    /// code replaces its ret); `ret` 200 lifts the refusal.
    pub fn refuse_kline_codes(&self, codes: &[&str], ret: u32) {
        let mut http = lock(&self.shared.http);
        let refused = &mut http.switches.refused;
        refused.retain(|(c, _)| !codes.contains(&c.as_str()));
        if ret != 200 {
            refused.extend(codes.iter().map(|c| ((*c).to_owned(), ret)));
        }
    }

    /// The next `count` HTTP requests that pass the token and limit checks
    /// fail with `fault` instead of being answered. Calls queue up:
    /// `fail_http_next(1, HttpFault::Status(502)); fail_http_next(2,
    /// HttpFault::NotJson)` fails the next three requests, in that order.
    pub fn fail_http_next(&self, count: usize, fault: HttpFault) {
        if count > 0 {
            lock(&self.shared.http)
                .switches
                .faults
                .push_back((fault, count));
        }
    }

    /// Forget the queued faults of [`Simulator::fail_http_next`] and end
    /// every hang now (those connections close without an answer).
    pub fn clear_http_faults(&self) {
        let mut http = lock(&self.shared.http);
        http.switches.faults.clear();
        http.switches.hang_generation += 1;
    }
}

impl Shared {
    /// The K-line readings played now.
    pub(super) fn kline_readings(&self) -> KlineReadings {
        lock(&self.http).switches.readings
    }

    /// The ret and msg refusing `code` ([`Simulator::refuse_kline_codes`]).
    pub(super) fn kline_refusal(&self, code: &str) -> Option<(u32, &'static str)> {
        let http = lock(&self.http);
        let ret = http.switches.refused.iter().find(|(c, _)| c == code)?.1;
        Some((ret, ret_msg(ret)))
    }

    /// Consume one [`Simulator::fail_http_next`] fault: the reply it makes.
    pub(super) fn http_fault(&self, trace: &Value) -> Option<Reply> {
        let fault = {
            let mut http = lock(&self.http);
            let faults = &mut http.switches.faults;
            let front = faults.front_mut()?;
            front.1 -= 1;
            let fault = front.0;
            if front.1 == 0 {
                faults.pop_front();
            }
            fault
        };
        Some(match fault {
            HttpFault::Status(status) => Reply::Answer {
                status,
                json: false,
                body: format!("<html><body><h1>{status}</h1>simulated failure</body></html>"),
                ret: None,
                bars: 0,
            },
            HttpFault::NotJson => Reply::Answer {
                status: 200,
                json: true,
                body: "<html><body>upstream error</body></html>".to_owned(),
                ret: None,
                bars: 0,
            },
            HttpFault::Hang(d) => Reply::Hang(d),
            HttpFault::Ret(ret) => Reply::error(200, ret, ret_msg(ret), trace),
        })
    }

    /// Moved on by [`Simulator::clear_http_faults`].
    pub(super) fn hang_generation(&self) -> u64 {
        lock(&self.http).switches.hang_generation
    }
}
