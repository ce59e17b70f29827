//! Requests from the client: parsing, checks (token, injected failures,
//! the 1 s interval) and the subscription sets.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

use super::conn::{Conn, Sched};
use super::{CloseCause, FOREX_PATH, MAX_DEPTH_LEVEL, Request, STOCK_PATH};
use crate::wire::protocol::FeedKind;
use crate::wire::symbol::Market;

impl Conn<'_> {
    /// Handle one request frame. Returns Some(cause) if the connection ends.
    pub(super) fn on_request(&mut self, raw: String) -> Option<CloseCause> {
        let now = Instant::now();
        let parsed: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
        let cmd_id = parsed.get("cmd_id").and_then(Value::as_u64).unwrap_or(0);
        let seq_id_v = parsed.get("seq_id").cloned();
        let trace_v = parsed.get("trace").cloned();
        let data = parsed.get("data").cloned().unwrap_or(Value::Null);

        let too_fast = match (self.shared.cfg.min_request_interval, self.last_request) {
            (Some(min), Some(prev)) => now.duration_since(prev) < min,
            _ => false,
        };
        self.last_request = Some(now);
        // The set before, to tell which codes are new (re-push reading).
        let repush_from =
            (cmd_id == 22004 && self.shared.lock_inner().readings().repush_last_trade).then(|| {
                self.trades
                    .iter()
                    .map(|s| s.code.clone())
                    .collect::<Vec<_>>()
            });

        // What to do after answering: close with this frame and cause.
        type CloseAfter = Option<(CloseCode, &'static str, CloseCause)>;
        let (ret, msg, close_after): (u32, &str, CloseAfter) = if self.token_bad {
            let close = (
                CloseCode::Policy,
                "token invalid",
                CloseCause::TokenRejected,
            );
            (401, "token invalid", Some(close))
        } else if let Some((ret, msg)) = self.shared.take_failure(cmd_id) {
            let close = (ret == 606).then_some((
                CloseCode::Policy,
                "too many requests",
                CloseCause::ServerClose(1008),
            ));
            (ret, msg, close)
        } else if too_fast {
            let (ret, msg) = self.shared.cfg.too_fast.answer();
            (ret, msg, None)
        } else {
            let (ret, msg) = self.dispatch(cmd_id, &data, now);
            (ret, msg, None)
        };
        if cmd_id == 22000 && ret == 200 {
            self.last_heartbeat = now;
        }
        if cmd_id == 22004 && ret == 200 && self.first_ack.is_none() {
            self.first_ack = Some(now);
        }

        let error_seq_id_zero = self.record_request(Request {
            conn: self.id,
            at: now,
            cmd_id,
            seq_id: seq_id_v.as_ref().and_then(Value::as_u64),
            trace: trace_v.as_ref().and_then(Value::as_str).map(str::to_owned),
            data,
            raw,
            ret,
        });
        let text = response(ret, msg, cmd_id, error_seq_id_zero, seq_id_v, trace_v);
        let sent = self.ws.send(Message::text(text));
        if let Err(cause) = self.check_write(sent) {
            return Some(cause);
        }
        if let Some((code, reason, cause)) = close_after {
            return Some(self.close_with(code, reason, cause));
        }
        match repush_from {
            Some(before) if ret == 200 => self.repush(&before).err(),
            _ => None,
        }
    }

    /// Push the last trade of every code not in `before` once more
    /// (`Readings::repush_last_trade`).
    fn repush(&mut self, before: &[String]) -> Result<(), CloseCause> {
        let texts: Vec<String> = {
            let mut inner = self.shared.lock_inner();
            self.trades
                .iter()
                .filter(|s| !before.contains(&s.code))
                .filter_map(|s| inner.repush(self.id, &s.code))
                .collect()
        };
        self.shared.cond.notify_all();
        for text in texts {
            let r = self.ws.write(Message::text(text));
            self.check_write(r)?;
        }
        let r = self.ws.flush();
        self.check_write(r)
    }

    /// Record a request and the connection's subscription sets; returns
    /// whether error answers carry `seq_id` 0 ([`super::Readings`]).
    fn record_request(&self, request: Request) -> bool {
        let error_seq_id_zero = {
            let mut inner = self.shared.lock_inner();
            let trade_codes: Vec<String> = self.trades.iter().map(|s| s.code.clone()).collect();
            let depth_codes: Vec<String> = self.depth.iter().map(|s| s.code.clone()).collect();
            if let Some(rec) = inner.state.connections.iter_mut().find(|c| c.id == self.id) {
                rec.trade_codes = trade_codes;
                rec.depth_codes = depth_codes;
            }
            let state = &mut inner.state;
            super::market::record(&mut state.requests, &mut state.discarded_requests, request);
            inner.readings().error_seq_id_zero
        };
        self.shared.cond.notify_all();
        error_seq_id_zero
    }

    /// Apply a request that passed the token, failure-injection and rate
    /// checks.
    fn dispatch(&mut self, cmd_id: u64, data: &Value, now: Instant) -> (u32, &'static str) {
        const OK: (u32, &str) = (200, "ok");
        const INVALID: (u32, &str) = (400, "request header/data param invalid");
        const EMPTY: (u32, &str) = (601, "body empty");
        const CODE_INVALID: (u32, &str) = (600, "code invalid");
        match cmd_id {
            // The heartbeat clock is restarted by on_request.
            22000 => OK,
            22002 | 22004 => {
                let mut list = match parse_symbol_list(data) {
                    Ok(list) => list,
                    Err(ListError::Empty) => return EMPTY,
                    Err(ListError::Invalid) => return INVALID,
                };
                if self.wrong_market(&list) {
                    return CODE_INVALID;
                }
                if let Some(refused) = self.shared.refusal(&mut list) {
                    return refused;
                }
                let interval = self.interval;
                let (kind, target) = if cmd_id == 22004 {
                    (FeedKind::Trades, &mut self.trades)
                } else {
                    (FeedKind::Depth, &mut self.depth)
                };
                replace_set(target, list, now, interval);
                self.tell_feed(kind);
                OK
            }
            22006 => {
                let cancel_type = data.get("cancel_type").and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                });
                let kinds: &[FeedKind] = match cancel_type {
                    Some(0) => &[FeedKind::Trades, FeedKind::Depth],
                    Some(1) => &[FeedKind::Depth],
                    Some(2) => &[FeedKind::Trades],
                    _ => return INVALID,
                };
                for &kind in kinds {
                    match kind {
                        FeedKind::Trades => self.trades.clear(),
                        FeedKind::Depth => self.depth.clear(),
                    }
                    self.tell_feed(kind);
                }
                OK
            }
            _ => INVALID,
        }
    }
}

impl Conn<'_> {
    /// Whether `list` holds a code of the other market than the one this
    /// connection's path serves (`Simulator::set_market_check`).
    fn wrong_market(&self, list: &[(String, usize)]) -> bool {
        match self.market {
            Some(market) if self.shared.market_check() => {
                list.iter().any(|(code, _)| Market::of_code(code) != market)
            }
            _ => false,
        }
    }
}

/// The market served on a URL path: None (any code) for a path that is
/// neither AllTick's stock nor its forex endpoint.
pub(super) fn market_of_path(path: &str) -> Option<Market> {
    match path.trim_end_matches('/') {
        STOCK_PATH => Some(Market::Stock),
        FOREX_PATH => Some(Market::Forex),
        _ => None,
    }
}

/// The JSON text answering a request.
fn response(
    ret: u32,
    msg: &str,
    cmd_id: u64,
    error_seq_id_zero: bool,
    seq_id: Option<Value>,
    trace: Option<Value>,
) -> String {
    let mut resp = Map::new();
    resp.insert("ret".into(), json!(ret));
    resp.insert("msg".into(), json!(msg));
    let resp_cmd = if cmd_id == 0 {
        0
    } else {
        cmd_id.saturating_add(1)
    };
    resp.insert("cmd_id".into(), json!(resp_cmd));
    if ret != 200 && error_seq_id_zero {
        resp.insert("seq_id".into(), json!(0));
    } else if let Some(v) = seq_id {
        resp.insert("seq_id".into(), v);
    }
    if let Some(v) = trace {
        resp.insert("trace".into(), v);
    }
    resp.insert("data".into(), json!({}));
    Value::Object(resp).to_string()
}

enum ListError {
    Empty,
    Invalid,
}

/// Parse `data.symbol_list` into (code, depth_level) pairs, de-duplicated by
/// code (first occurrence wins).
fn parse_symbol_list(data: &Value) -> Result<Vec<(String, usize)>, ListError> {
    let list = match data.get("symbol_list") {
        None | Some(Value::Null) => return Err(ListError::Empty),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(ListError::Invalid),
    };
    if list.is_empty() {
        return Err(ListError::Empty);
    }
    let mut out: Vec<(String, usize)> = Vec::with_capacity(list.len());
    for item in list {
        let code = match item.get("code").and_then(Value::as_str) {
            Some(c) if !c.trim().is_empty() => c.to_owned(),
            _ => return Err(ListError::Invalid),
        };
        let level = match item.get("depth_level") {
            None | Some(Value::Null) => 1,
            Some(v) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            {
                Some(l) => l.clamp(1, MAX_DEPTH_LEVEL) as usize,
                None => return Err(ListError::Invalid),
            },
        };
        if !out.iter().any(|(c, _)| *c == code) {
            out.push((code, level));
        }
    }
    Ok(out)
}

/// Replace a subscription set: retained codes keep their schedule, new codes
/// are staggered over one interval (the first one is due at once).
fn replace_set(
    set: &mut Vec<Sched>,
    list: Vec<(String, usize)>,
    now: Instant,
    interval: Option<Duration>,
) {
    let fresh = list
        .iter()
        .filter(|(code, _)| !set.iter().any(|s| s.code == *code))
        .count()
        .max(1) as u32;
    let mut k = 0u32;
    let mut next: Vec<Sched> = Vec::with_capacity(list.len());
    for (code, level) in list {
        if let Some(pos) = set.iter().position(|s| s.code == code) {
            let mut s = set.swap_remove(pos);
            s.level = level;
            next.push(s);
        } else {
            let offset = interval.map_or(Duration::ZERO, |iv| iv * k / fresh);
            k += 1;
            next.push(Sched {
                code,
                level,
                due: now + offset,
            });
        }
    }
    *set = next;
}

/// The percent-decoded `token` parameter of a URI query string.
pub(super) fn token_from_query(query: Option<&str>) -> Option<String> {
    query_param(query, "token")
}

/// The percent-decoded parameter `name` of a URI query string (`+` read
/// as a space), the first if it comes more than once.
pub(super) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_parsing() {
        assert_eq!(token_from_query(Some("token=abc")), Some("abc".into()));
        assert_eq!(
            token_from_query(Some("x=1&token=a%2Fb")),
            Some("a/b".into())
        );
        assert_eq!(token_from_query(Some("x=1")), None);
        assert_eq!(token_from_query(None), None);
        assert_eq!(token_from_query(Some("token=%4")), Some("%4".into()));
        assert_eq!(token_from_query(Some("token=%zz")), Some("%zz".into()));
    }

    #[test]
    fn symbol_list_parsing() {
        let ok = json!({"symbol_list": [{"code": "A"}, {"code": "B", "depth_level": 50}, {"code": "A"}]});
        let list = parse_symbol_list(&ok).ok().unwrap_or_default();
        assert_eq!(list, vec![("A".to_owned(), 1), ("B".to_owned(), 10)]);
        assert!(matches!(
            parse_symbol_list(&json!({"symbol_list": []})),
            Err(ListError::Empty)
        ));
        assert!(matches!(
            parse_symbol_list(&json!({})),
            Err(ListError::Empty)
        ));
        assert!(matches!(
            parse_symbol_list(&json!({"symbol_list": [{"x": 1}]})),
            Err(ListError::Invalid)
        ));
    }
}
