//! The answer to `GET {base}/kline`: the query read from the URL, its
//! parameters checked as AllTick's docs describe, and the bars chosen and
//! written with the server's kind of text.

use std::fmt::Write as _;
use std::time::Instant;

use serde_json::Value;

use super::http::{Head, Reply, base_of};
use super::request::query_param;
use super::server::{Shared, lock};
use super::{HttpRequest, kline};
use crate::wire::kline::{KlineInterval, MAX_PAGE, RawKline};
use crate::wire::symbol::Market;

/// The `msg` of ret 400 (and of 202, its other reading).
const INVALID: &str = "request header/data param invalid";

/// Which reading the simulator plays of the points AllTick's K-line docs
/// leave open (their "readings to survive"). Set at start with
/// `SimConfig::kline_readings` and at runtime with
/// `Simulator::set_kline_readings` (feature `testing`).
/// `KlineReadings::default()`: oldest first, each bar once, final bars
/// only, as many as asked (up to the data's start), ret 400 for a bad
/// parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KlineReadings {
    /// `kline_list` newest first.
    pub newest_first: bool,
    /// The newest this many bars of the list come again at its end, in
    /// the list's order (the bug AllTick fixed in 2025).
    pub repeat_newest: usize,
    /// The bar whose interval holds now comes too, as the newest, with its
    /// values so far (its current minute counted whole); it counts toward
    /// `query_kline_num`.
    pub forming_last: bool,
    /// No answer holds more than this many bars (the newest of those
    /// asked for), whatever was asked.
    pub page_cap: Option<usize>,
    /// A bad parameter gets ret 202 instead of 400.
    pub ret_202: bool,
    /// `kline_timestamp_end` excludes a bar starting at it (by default a
    /// bar starting at it is answered).
    pub end_exclusive: bool,
    /// `timestamp` in milliseconds, where the docs' example has seconds.
    pub timestamp_ms: bool,
    /// Every value a JSON number, where the docs show strings.
    pub numbers: bool,
}

/// The URL's parameters.
pub(super) struct Query {
    token: Option<String>,
    /// The `query` parameter, if it is JSON.
    json: Option<Value>,
}

/// A whole number, or its digits as a string.
fn whole(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

impl Query {
    /// The parameters of a URL query string (percent-decoded).
    pub(super) fn read(query: Option<&str>) -> Query {
        Query {
            token: query_param(query, "token"),
            json: query_param(query, "query").and_then(|q| serde_json::from_str(&q).ok()),
        }
    }

    /// The `trace` to echo (`""` if none).
    pub(super) fn trace(&self) -> Value {
        self.json
            .as_ref()
            .and_then(|j| j.get("trace"))
            .cloned()
            .unwrap_or_else(|| Value::from(""))
    }

    fn data(&self, key: &str) -> Option<&Value> {
        self.json.as_ref()?.get("data")?.get(key)
    }

    /// `data.key` as a whole number: None if absent, Some(None) if not one.
    fn number(&self, key: &str) -> Option<Option<u64>> {
        self.data(key).map(whole)
    }

    /// The record of this request, its answer not yet known.
    pub(super) fn record(&self, at: Instant, at_ms: u64, head: &Head) -> HttpRequest {
        let number = |key: &str| self.number(key).flatten();
        HttpRequest {
            at,
            at_ms,
            method: head.method.clone(),
            path: head.path.clone(),
            base: base_of(&head.path),
            token: self.token.clone(),
            trace: self.trace().as_str().map(str::to_owned),
            code: self.data("code").and_then(Value::as_str).map(str::to_owned),
            kline_type: number("kline_type"),
            kline_timestamp_end: number("kline_timestamp_end"),
            query_kline_num: number("query_kline_num"),
            status: 0,
            ret: None,
            bars: 0,
            counted: false,
        }
    }
}

/// Answer a K-line request under `base` that passed the token and limits.
pub(super) fn kline(shared: &Shared, base: Market, q: &Query) -> Reply {
    let trace = q.trace();
    let readings = shared.kline_readings();
    let invalid = || {
        let ret = if readings.ret_202 { 202 } else { 400 };
        Reply::error(200, ret, INVALID, &trace)
    };
    if q.json.as_ref().is_none_or(|j| !j.is_object()) {
        return Reply::error(200, 402, "query invalid", &trace);
    }
    let Some(code) = q
        .data("code")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    else {
        return invalid();
    };
    if Market::of_code(code) != base {
        return Reply::error(200, 600, "code invalid", &trace);
    }
    if let Some((ret, msg)) = shared.kline_refusal(code) {
        return Reply::error(200, ret, msg, &trace);
    }
    let interval = q
        .number("kline_type")
        .flatten()
        .and_then(KlineInterval::from_kline_type)
        .filter(|i| base == Market::Forex || i.for_stocks());
    let num = q
        .number("query_kline_num")
        .flatten()
        .filter(|n| (1..=u64::from(MAX_PAGE)).contains(n));
    let end = q.number("kline_timestamp_end").unwrap_or(Some(0));
    let (Some(interval), Some(num), Some(end)) = (interval, num, end) else {
        return invalid();
    };
    let oldest = lock(&shared.http).history_start_ms;
    let mut inner = shared.lock_inner();
    let now = inner.now_ms();
    inner.catch_up(code, now);
    // Stocks always get their latest bars.
    let end_ms = if base == Market::Stock || end == 0 {
        now
    } else if readings.end_exclusive {
        end.saturating_mul(1000).saturating_sub(1)
    } else {
        end.saturating_mul(1000)
    };
    let num = readings
        .page_cap
        .map_or(num as usize, |cap| cap.min(num as usize));
    let source = kline::Source::new(code, inner.tape(code));
    let mut bars = source.latest(interval, end_ms, now, oldest, num, readings.forming_last);
    drop(inner);
    if readings.newest_first {
        bars.reverse();
    }
    let k = readings.repeat_newest.min(bars.len());
    let newest = if readings.newest_first {
        bars[..k].to_vec()
    } else {
        bars[bars.len() - k..].to_vec()
    };
    bars.extend(newest);
    Reply::Answer {
        status: 200,
        json: true,
        body: ok_body(&trace, code, interval, &bars, readings),
        ret: Some(200),
        bars: bars.len(),
    }
}

/// `{"ret":…,"msg":…,"trace":…}`, without `data`.
pub(super) fn error_body(ret: u32, msg: &str, trace: &Value) -> String {
    format!(
        r#"{{"ret":{ret},"msg":{},"trace":{trace}}}"#,
        Value::from(msg)
    )
}

/// An answer with bars, every value of a bar a string, keys in the docs'
/// order.
fn ok_body(
    trace: &Value,
    code: &str,
    interval: KlineInterval,
    bars: &[RawKline],
    readings: KlineReadings,
) -> String {
    let mut list = String::with_capacity(bars.len() * 190);
    let q = if readings.numbers { "" } else { "\"" };
    for (i, b) in bars.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        let ms = if readings.timestamp_ms { "000" } else { "" };
        let _ = write!(
            list,
            r#"{{"timestamp":{q}{}{ms}{q},"open_price":{q}{}{q},"close_price":{q}{}{q},"high_price":{q}{}{q},"low_price":{q}{}{q},"volume":{q}{}{q},"turnover":{q}{}{q}}}"#,
            b.timestamp, b.open, b.close, b.high, b.low, b.volume, b.turnover
        );
    }
    format!(
        r#"{{"ret":200,"msg":"ok","trace":{trace},"data":{{"code":{},"kline_type":{},"kline_list":[{list}]}}}}"#,
        Value::from(code),
        interval.kline_type()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::kline::read_answer;

    #[test]
    fn answers_are_read_back_as_written() {
        let bars = kline::bars_between("AAPL.US", KlineInterval::M5, 0, 600_000, u64::MAX, None);
        let body = ok_body(
            &Value::from("t\"1"),
            "AAPL.US",
            KlineInterval::M5,
            &bars,
            KlineReadings::default(),
        );
        let a = read_answer(body.as_bytes()).unwrap();
        assert_eq!(a.ret, 200);
        let back: Vec<RawKline> = a.bars.into_iter().map(Result::unwrap).collect();
        assert_eq!(back, bars);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["trace"], "t\"1");
        assert_eq!(v["data"]["kline_type"], 2);
        let e: Value =
            serde_json::from_str(&error_body(604, "code unauthorized", &trace_of("x"))).unwrap();
        assert_eq!(e["ret"], 604);
        assert!(e.get("data").is_none());
    }

    fn trace_of(s: &str) -> Value {
        Query::read(Some(&format!("query=%7B%22trace%22%3A%22{s}%22%7D"))).trace()
    }

    #[test]
    fn queries_are_percent_decoded() {
        assert_eq!(trace_of("abc"), Value::from("abc"));
        let q = Query::read(Some(
            "token=a%2Bb&query=%7B%22data%22%3A%7B%22code%22%3A%22700.HK%22%2C%22kline_type%22%3A%228%22%7D%7D",
        ));
        assert_eq!(q.token.as_deref(), Some("a+b"));
        assert_eq!(q.number("kline_type"), Some(Some(8)));
        assert_eq!(q.number("query_kline_num"), None);
        assert_eq!(Query::read(None).trace(), Value::from(""));
    }
}
