//! AllTick's HTTP K-lines (`GET {base}/kline?token=…&query=…`), without
//! I/O: the intervals and their `kline_type`, where a bar of each starts
//! and ends on the UTC calendar, the query, and the answer read into its
//! bars as the server's own text, as AllTick's docs of its HTTP API have
//! them.

use std::fmt;

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::wire::calendar::{DAY_MS, HOUR_MS, civil_from_days, days_from_civil};

/// The path of the K-line interface under either base.
pub const KLINE_PATH: &str = "/kline";
/// Most bars one request asks for: the docs say 1000 in one version and
/// 500 in a later one.
pub const MAX_PAGE: u32 = 500;

const MINUTE_MS: u64 = 60_000;

/// A K-line interval: AllTick's `kline_type` 1–10.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KlineInterval {
    /// 1 minute (`kline_type` 1).
    M1,
    /// 5 minutes (2).
    M5,
    /// 15 minutes (3).
    M15,
    /// 30 minutes (4).
    M30,
    /// 1 hour (5).
    H1,
    /// 2 hours (6): not for stocks.
    H2,
    /// 4 hours (7): not for stocks.
    H4,
    /// 1 day (8).
    D1,
    /// 1 week (9).
    W1,
    /// 1 month (10), by the calendar.
    Mo1,
}

/// A `--bars` name that is not a K-line interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KlineIntervalError {
    /// What was given.
    pub given: String,
}

impl fmt::Display for KlineIntervalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let valid: Vec<&str> = KlineInterval::ALL.iter().map(|i| i.name()).collect();
        write!(
            f,
            "unknown K-line interval {} (valid: {})",
            self.given,
            valid.join(", ")
        )
    }
}

impl std::error::Error for KlineIntervalError {}

impl KlineInterval {
    /// Every interval, shortest first.
    pub const ALL: [KlineInterval; 10] = [
        KlineInterval::M1,
        KlineInterval::M5,
        KlineInterval::M15,
        KlineInterval::M30,
        KlineInterval::H1,
        KlineInterval::H2,
        KlineInterval::H4,
        KlineInterval::D1,
        KlineInterval::W1,
        KlineInterval::Mo1,
    ];

    /// The names `--bars` takes, in [`KlineInterval::ALL`]'s order.
    pub const NAMES: [&'static str; 10] =
        ["1m", "5m", "15m", "30m", "1h", "2h", "4h", "1d", "1w", "1M"];

    /// `1m` … `1M`; the error names the valid ones.
    pub fn parse(s: &str) -> Result<KlineInterval, KlineIntervalError> {
        KlineInterval::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| KlineInterval::ALL[i])
            .ok_or_else(|| KlineIntervalError { given: s.into() })
    }

    /// The name [`KlineInterval::parse`] reads (and bar lines carry).
    pub fn name(self) -> &'static str {
        KlineInterval::NAMES[self as usize]
    }

    /// AllTick's `kline_type`: 1 (1 minute) … 10 (1 month).
    pub fn kline_type(self) -> u8 {
        self as u8 + 1
    }

    /// The interval of a `kline_type`.
    pub fn from_kline_type(n: u64) -> Option<KlineInterval> {
        let i = usize::try_from(n.checked_sub(1)?).ok()?;
        KlineInterval::ALL.get(i).copied()
    }

    /// Whether AllTick serves it for stock codes (no 2 h, no 4 h).
    pub fn for_stocks(self) -> bool {
        !matches!(self, KlineInterval::H2 | KlineInterval::H4)
    }

    /// A fixed length in ms: every interval but the month.
    pub fn fixed_ms(self) -> Option<u64> {
        Some(match self {
            KlineInterval::M1 => MINUTE_MS,
            KlineInterval::M5 => 5 * MINUTE_MS,
            KlineInterval::M15 => 15 * MINUTE_MS,
            KlineInterval::M30 => 30 * MINUTE_MS,
            KlineInterval::H1 => HOUR_MS,
            KlineInterval::H2 => 2 * HOUR_MS,
            KlineInterval::H4 => 4 * HOUR_MS,
            KlineInterval::D1 => DAY_MS,
            KlineInterval::W1 => 7 * DAY_MS,
            KlineInterval::Mo1 => return None,
        })
    }

    /// The grid a bar's start must lie on: its own length up to 30
    /// minutes, and whole half hours above (markets open at :30, and a day
    /// or a week may start at a market's midnight rather than UTC's), so
    /// that no bar is refused on a guess about the server's time zone.
    pub fn grid_ms(self) -> u64 {
        self.fixed_ms().unwrap_or(u64::MAX).min(30 * MINUTE_MS)
    }

    /// Whether `start` (ms) lies on [`KlineInterval::grid_ms`].
    pub fn on_grid(self, start: u64) -> bool {
        start.is_multiple_of(self.grid_ms())
    }

    /// The end (ms, exclusive) of the bar that starts at `start`: a fixed
    /// length, and for a month the same time of day and day of the month
    /// one calendar month later, in UTC (the day clamped to the month's
    /// last).
    pub fn end(self, start: u64) -> u64 {
        match self.fixed_ms() {
            Some(ms) => start + ms,
            None => add_month(start),
        }
    }

    /// The start of the UTC-aligned bar holding `time`: a multiple of the
    /// length up to a day, a week from Monday 00:00 UTC, a month from its
    /// first day. The simulator cuts its bars so; the client reads starts
    /// from the server and never assumes this.
    pub fn utc_start(self, time: u64) -> u64 {
        match self {
            KlineInterval::W1 => {
                // 1970-01-01 was a Thursday; Mondays are days ≡ 4 (mod 7).
                let day = time / DAY_MS;
                (day - (day + 3) % 7) * DAY_MS
            }
            KlineInterval::Mo1 => {
                let (y, m, _) = civil_from_days((time / DAY_MS) as i64);
                days_from_civil(y, m, 1) as u64 * DAY_MS
            }
            _ => {
                let ms = self.fixed_ms().unwrap_or(DAY_MS);
                time - time % ms
            }
        }
    }
}

/// One calendar month after `time` (ms), in UTC.
fn add_month(time: u64) -> u64 {
    let (y, m, d) = civil_from_days((time / DAY_MS) as i64);
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let last = (days_from_civil(if m == 12 { y + 1 } else { y }, m % 12 + 1, 1)
        - days_from_civil(y, m, 1)) as u32;
    days_from_civil(y, m, d.min(last)) as u64 * DAY_MS + time % DAY_MS
}

/// The `query` of one K-line request, as JSON (to be URL-encoded):
/// `end_secs` 0 asks for the latest bars.
pub fn query(trace: &str, code: &str, interval: KlineInterval, end_secs: u64, num: u32) -> String {
    serde_json::json!({
        "trace": trace,
        "data": {
            "code": code,
            "kline_type": interval.kline_type(),
            "kline_timestamp_end": end_secs,
            "query_kline_num": num,
            "adjust_type": 0,
        }
    })
    .to_string()
}

/// One K-line as the server sent it: every value its own text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawKline {
    /// `timestamp`: the bar's start, in seconds.
    pub timestamp: String,
    /// `open_price`.
    pub open: String,
    /// `high_price`.
    pub high: String,
    /// `low_price`.
    pub low: String,
    /// `close_price`.
    pub close: String,
    /// `volume`.
    pub volume: String,
    /// `turnover`.
    pub turnover: String,
}

/// An answer's body, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// `ret`: the answer's status (200 ok; errors come as `ret` inside
    /// HTTP 200).
    pub ret: u64,
    /// `msg`, if any.
    pub msg: String,
    /// `data.kline_list`, in the server's order; a bar that is not an
    /// object of strings comes as `Err` with what is wrong, to be counted.
    pub bars: Vec<Result<RawKline, BadKline>>,
}

/// A bar of `kline_list` that is not an object of the documented keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadKline(pub String);

impl fmt::Display for BadKline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A body that is not a K-line answer at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerError(pub String);

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AnswerError {}

/// Read an answer: a JSON object with a numeric `ret`; `data` may be
/// missing (an error) or hold `kline_list`. The bars' values are kept as
/// their text: a string's contents, or a number's own digits where the
/// server sends numbers (read in place, never through a float).
pub fn read_answer(body: &[u8]) -> Result<Answer, AnswerError> {
    let not_json = |e: serde_json::Error| AnswerError(format!("the body is not JSON ({e})"));
    let top: BTreeMap<String, &RawValue> = serde_json::from_slice(body).map_err(not_json)?;
    let value = |key: &str| -> Option<Value> {
        top.get(key)
            .and_then(|r| serde_json::from_str(r.get()).ok())
    };
    let ret = match value("ret") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| AnswerError("the body has no numeric ret".into()))?;
    let msg = match value("msg") {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let data: Option<BTreeMap<String, &RawValue>> = match top.get("data") {
        Some(r) if r.get() != "null" => serde_json::from_str(r.get()).ok(),
        _ => None,
    };
    let bars = match data.as_ref().and_then(|d| d.get("kline_list")) {
        None => Vec::new(),
        Some(list) if list.get() == "null" => Vec::new(),
        Some(list) => {
            let list: Vec<&RawValue> = serde_json::from_str(list.get())
                .map_err(|_| AnswerError("data.kline_list is not a list".into()))?;
            list.into_iter().map(raw_kline).collect()
        }
    };
    Ok(Answer { ret, msg, bars })
}

fn raw_kline(v: &RawValue) -> Result<RawKline, BadKline> {
    let fields: BTreeMap<String, &RawValue> = serde_json::from_str(v.get())
        .map_err(|_| BadKline(format!("not an object: {}", v.get())))?;
    let get = |key: &str| -> Result<String, BadKline> {
        let raw = fields
            .get(key)
            .ok_or_else(|| BadKline(format!("no {key}")))?
            .get();
        if raw.starts_with('"') {
            return serde_json::from_str(raw).map_err(|e| BadKline(format!("{key}: {e}")));
        }
        // A number where the docs show a string: its own digits, as sent.
        match crate::wire::json::whole_number(raw.as_bytes()) {
            Some(_) => Ok(raw.to_string()),
            None => Err(BadKline(format!("{key} is {raw}"))),
        }
    };
    Ok(RawKline {
        timestamp: get("timestamp")?,
        open: get("open_price")?,
        high: get("high_price")?,
        low: get("low_price")?,
        close: get("close_price")?,
        volume: get("volume")?,
        turnover: get("turnover")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::calendar::iso;

    #[test]
    fn kline_types_run_from_one_minute_to_one_month() {
        for (n, i) in KlineInterval::ALL.iter().enumerate() {
            assert_eq!(usize::from(i.kline_type()), n + 1);
            assert_eq!(KlineInterval::from_kline_type(n as u64 + 1), Some(*i));
            assert_eq!(KlineInterval::parse(i.name()), Ok(*i));
        }
        assert_eq!(KlineInterval::from_kline_type(0), None);
        assert_eq!(KlineInterval::from_kline_type(11), None);
        let e = KlineInterval::parse("1s").unwrap_err().to_string();
        assert!(
            e.contains("1s") && e.contains("1m, 5m") && e.contains("1M"),
            "{e}"
        );
        assert!(!KlineInterval::H2.for_stocks() && !KlineInterval::H4.for_stocks());
        assert!(KlineInterval::D1.for_stocks());
    }

    #[test]
    fn months_end_by_the_calendar_and_weeks_start_on_monday() {
        // "2026-01-31T16:00:00Z" in ms.
        let t = |s: &str| {
            let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap();
            let days = days_from_civil(i64::from(n(0..4)), n(5..7), n(8..10)) as u64;
            days * DAY_MS + u64::from(n(11..13)) * HOUR_MS
        };
        let m = KlineInterval::Mo1;
        assert_eq!(
            iso(m.end(t("2026-01-01T00:00:00Z"))),
            "2026-02-01T00:00:00.000Z"
        );
        assert_eq!(
            iso(m.end(t("2026-12-01T00:00:00Z"))),
            "2027-01-01T00:00:00.000Z"
        );
        assert_eq!(
            iso(m.end(t("2024-01-31T16:00:00Z"))),
            "2024-02-29T16:00:00.000Z"
        );
        assert_eq!(
            iso(m.utc_start(t("2026-02-14T10:00:00Z"))),
            "2026-02-01T00:00:00.000Z"
        );
        let w = KlineInterval::W1;
        // 2026-12-05 is a Saturday.
        assert_eq!(
            iso(w.utc_start(t("2026-12-05T10:00:00Z"))),
            "2026-11-30T00:00:00.000Z"
        );
        assert_eq!(
            iso(w.end(t("2026-11-30T00:00:00Z"))),
            "2026-12-07T00:00:00.000Z"
        );
        assert_eq!(
            iso(KlineInterval::H4.utc_start(t("2026-12-05T10:00:00Z"))),
            "2026-12-05T08:00:00.000Z"
        );
    }

    #[test]
    fn the_grid_allows_half_hours_above_thirty_minutes_and_nothing_finer() {
        let half = 30 * MINUTE_MS;
        assert!(KlineInterval::H1.on_grid(1_000 * HOUR_MS + half));
        assert!(KlineInterval::D1.on_grid(1_000 * DAY_MS + 16 * HOUR_MS));
        assert!(!KlineInterval::D1.on_grid(1_000 * DAY_MS + 60_000));
        assert!(KlineInterval::M5.on_grid(25 * MINUTE_MS));
        assert!(!KlineInterval::M5.on_grid(26 * MINUTE_MS));
        assert!(!KlineInterval::M1.on_grid(MINUTE_MS + 1000));
    }

    #[test]
    fn answers_are_read_with_the_servers_own_text() {
        let body = br#"{"ret":200,"msg":"ok","trace":"t","data":{"code":"857.HK","kline_type":1,
            "kline_list":[{"timestamp":"1677829200","open_price":"136.421","close_price":"136.412",
            "high_price":"136.422","low_price":"136.407","volume":"0","turnover":"0"},
            {"timestamp":"1677829260","open_price":1.10,"close_price":"1","high_price":"1",
            "low_price":"1","volume":"0"}]}}"#;
        let a = read_answer(body).unwrap();
        assert_eq!(a.ret, 200);
        let first = a.bars[0].as_ref().unwrap();
        assert_eq!(
            (first.open.as_str(), first.high.as_str()),
            ("136.421", "136.422")
        );
        assert_eq!(a.bars[1], Err(BadKline("no turnover".to_string())));
        // Numbers where the docs show strings keep their own digits.
        let numbers = br#"{"ret":200,"data":{"kline_list":[{"timestamp":1677829200,
            "open_price":136.4200,"close_price":1E2,"high_price":123456789012.123456789,
            "low_price":0.10,"volume":0,"turnover":"7"}]}}"#;
        let k = read_answer(numbers).unwrap().bars.remove(0).unwrap();
        assert_eq!(
            [k.timestamp, k.open, k.close, k.high, k.low],
            [
                "1677829200",
                "136.4200",
                "1E2",
                "123456789012.123456789",
                "0.10"
            ]
        );
        let e = read_answer(br#"{"ret":604,"msg":"code unauthorized"}"#).unwrap();
        assert_eq!((e.ret, e.bars.len()), (604, 0));
        assert!(read_answer(b"<html>").is_err());
        assert!(read_answer(br#"{"msg":"x"}"#).is_err());
        let q = query("tr", "EURUSD", KlineInterval::H4, 0, 500);
        let v: Value = serde_json::from_str(&q).unwrap();
        assert_eq!(v["data"]["kline_type"], 7);
        assert_eq!(v["data"]["query_kline_num"], 500);
    }
}
