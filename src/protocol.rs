//! AllTick WebSocket messages: requests we send and messages we receive.
//!
//! Pure encode/decode, no I/O. See `ALLTICK.md`-style summary in the README:
//! every request is `{"cmd_id","seq_id","trace","data"}`; responses echo
//! `seq_id`/`trace` and carry `ret`; pushes (22998 trades) carry `data` only.

use std::borrow::Cow;

use serde_json::{Value, json};

use crate::decimal;
use crate::scan::RawTrade;

/// Heartbeat request; the server closes a connection without one for 30 s.
pub const CMD_HEARTBEAT: u64 = 22000;
/// Heartbeat response.
pub const CMD_HEARTBEAT_ACK: u64 = 22001;
/// Order-book depth subscription (replaces the depth set).
pub const CMD_SUB_DEPTH: u64 = 22002;
/// Depth subscription response.
pub const CMD_SUB_DEPTH_ACK: u64 = 22003;
/// Trade subscription (replaces the trade set).
pub const CMD_SUB_TRADES: u64 = 22004;
/// Trade subscription response.
pub const CMD_SUB_TRADES_ACK: u64 = 22005;
/// Cancel subscriptions.
pub const CMD_CANCEL: u64 = 22006;
/// Cancel response.
pub const CMD_CANCEL_ACK: u64 = 22007;
/// Trade push.
pub const CMD_TRADE: u64 = 22998;
/// Depth push.
pub const CMD_DEPTH: u64 = 22999;

/// `cancel_type` of a 22006 request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelType {
    /// Cancel trades and depth.
    All = 0,
    /// Cancel depth only.
    Depth = 1,
    /// Cancel trades only.
    Trades = 2,
}

fn envelope(cmd_id: u64, seq_id: u32, trace: &str, data: Value) -> String {
    json!({"cmd_id": cmd_id, "seq_id": seq_id, "trace": trace, "data": data}).to_string()
}

/// A 22000 heartbeat request.
pub fn heartbeat(seq_id: u32, trace: &str) -> String {
    envelope(CMD_HEARTBEAT, seq_id, trace, json!({}))
}

/// A 22004 trade subscription carrying the complete set. Never call it with
/// an empty set: use [`cancel`] instead.
///
/// Written straight into one string: a set of 3000 codes built as a JSON
/// tree would cost megabytes of short-lived maps.
pub fn subscribe_trades<'a>(
    seq_id: u32,
    trace: &str,
    codes: impl IntoIterator<Item = &'a str>,
) -> String {
    symbol_list_request(
        CMD_SUB_TRADES,
        seq_id,
        trace,
        codes.into_iter().map(|c| (c, None)),
    )
}

/// A 22002 depth subscription carrying the complete depth set, each code
/// with its `depth_level` when one was asked for. Never empty: use [`cancel`].
pub fn subscribe_depth<'a>(
    seq_id: u32,
    trace: &str,
    codes: impl IntoIterator<Item = (&'a str, Option<u8>)>,
) -> String {
    symbol_list_request(CMD_SUB_DEPTH, seq_id, trace, codes)
}

fn symbol_list_request<'a>(
    cmd_id: u64,
    seq_id: u32,
    trace: &str,
    codes: impl IntoIterator<Item = (&'a str, Option<u8>)>,
) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("{\"cmd_id\":");
    out.push_str(&cmd_id.to_string());
    out.push_str(",\"seq_id\":");
    out.push_str(&seq_id.to_string());
    out.push_str(",\"trace\":");
    push_json_string(&mut out, trace);
    out.push_str(",\"data\":{\"symbol_list\":[");
    for (i, (code, level)) in codes.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"code\":");
        push_json_string(&mut out, code);
        if let Some(level) = level {
            out.push_str(",\"depth_level\":");
            out.push_str(&level.to_string());
        }
        out.push('}');
    }
    out.push_str("]}}");
    out
}

/// Append `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    // Serialising a &str into a String cannot fail.
    out.push_str(&Value::from(s).to_string());
}

/// A 22006 cancel request.
pub fn cancel(seq_id: u32, trace: &str, kind: CancelType) -> String {
    envelope(
        CMD_CANCEL,
        seq_id,
        trace,
        json!({"cancel_type": kind as u8}),
    )
}

/// Direction of a trade, from `trade_direction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Buyer-initiated (1).
    Buy,
    /// Seller-initiated (2).
    Sell,
}

/// A validated trade push. Decimal fields hold valid JSON number text
/// carrying the server's digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trade {
    /// AllTick code, e.g. `AAPL.US`.
    pub code: String,
    /// The server's sequence number for this code.
    pub seq: u64,
    /// Trade time, milliseconds since the epoch.
    pub time: u64,
    /// Price, positive.
    pub price: String,
    /// Volume; `None` where the feed sends none (forex).
    pub volume: Option<String>,
    /// Turnover; `None` where the feed sends none.
    pub turnover: Option<String>,
    /// Trade direction; `None` when unknown.
    pub side: Option<Side>,
}

/// A validated trade, borrowing from the frame where it can. Both decoders
/// (the zero-copy [`validate`] and the full [`decode`]) end here, and the
/// writer formats only this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TradeView<'a> {
    /// AllTick code.
    pub code: &'a str,
    /// Sequence number.
    pub seq: u64,
    /// Trade time in milliseconds.
    pub time: u64,
    /// Price: valid JSON number text, positive.
    pub price: Cow<'a, str>,
    /// Volume, if sent.
    pub volume: Option<Cow<'a, str>>,
    /// Turnover, if sent.
    pub turnover: Option<Cow<'a, str>>,
    /// Direction, if known.
    pub side: Option<Side>,
}

impl TradeView<'_> {
    /// An owned copy.
    pub fn to_owned_trade(&self) -> Trade {
        Trade {
            code: self.code.to_string(),
            seq: self.seq,
            time: self.time,
            price: self.price.to_string(),
            volume: self.volume.as_ref().map(|v| v.to_string()),
            turnover: self.turnover.as_ref().map(|v| v.to_string()),
            side: self.side,
        }
    }
}

impl Trade {
    /// This trade as a view.
    pub fn view(&self) -> TradeView<'_> {
        TradeView {
            code: &self.code,
            seq: self.seq,
            time: self.time,
            price: Cow::Borrowed(&self.price),
            volume: self.volume.as_deref().map(Cow::Borrowed),
            turnover: self.turnover.as_deref().map(Cow::Borrowed),
            side: self.side,
        }
    }
}

/// Validate a scanned trade with exactly the rules of [`decode`].
pub fn validate<'a>(raw: &RawTrade<'a>) -> Result<TradeView<'a>, &'static str> {
    let code = raw.code.filter(|c| !c.is_empty()).ok_or("missing code")?;
    let int = |v: Option<&str>| v.and_then(|t| t.parse::<u64>().ok());
    let seq = int(raw.seq).ok_or("missing or bad seq")?;
    let time = int(raw.tick_time).ok_or("missing or bad tick_time")?;
    let price = raw
        .price
        .and_then(decimal::normalize_cow)
        .filter(|p| decimal::is_positive(p))
        .ok_or("price is not a positive decimal")?;
    let optional = |v: Option<&'a str>, why| match v {
        None | Some("") => Ok(None),
        Some(t) => decimal::normalize_cow(t).map(Some).ok_or(why),
    };
    let volume = optional(raw.volume, "bad volume")?;
    let turnover = optional(raw.turnover, "bad turnover")?;
    let side = match int(raw.trade_direction) {
        Some(1) => Some(Side::Buy),
        Some(2) => Some(Side::Sell),
        _ => None,
    };
    Ok(TradeView {
        code,
        seq,
        time,
        price,
        volume,
        turnover,
        side,
    })
}

/// A validated order-book push: decimals as valid JSON number text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Depth {
    /// AllTick code.
    pub code: String,
    /// Sequence number.
    pub seq: u64,
    /// Book time in milliseconds.
    pub time: u64,
    /// Bid levels, best first: (price, volume if sent).
    pub bids: Vec<(String, Option<String>)>,
    /// Ask levels, best first.
    pub asks: Vec<(String, Option<String>)>,
    /// Levels dropped from this push as bad.
    pub bad_levels: u32,
}

/// Everything the server can send us, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A response to one of our requests.
    Response(Response),
    /// A trade push.
    Trade(Trade),
    /// A trade push that failed validation; the reason says why.
    BadTrade(&'static str),
    /// A depth push.
    Depth(Depth),
    /// A depth push that failed validation.
    BadDepth(&'static str),
    /// A well-formed message of a kind we do not handle (e.g. depth, for now).
    Other {
        /// Its cmd_id, if it had one.
        cmd_id: Option<u64>,
    },
}

/// A response (22001, 22005, 22007, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Response cmd_id (request + 1).
    pub cmd_id: u64,
    /// Result code: 200 ok, anything else an error (see [`ret_meaning`]).
    pub ret: i64,
    /// The server's message text.
    pub msg: String,
    /// Echo of our request's seq_id.
    pub seq_id: Option<u64>,
}

/// Decode one text frame. `Err` means it was not a JSON object at all.
pub fn decode(text: &str) -> Result<Incoming, &'static str> {
    let value: Value = serde_json::from_str(text).map_err(|_| "invalid JSON")?;
    let obj = value.as_object().ok_or("not a JSON object")?;
    let cmd_id = obj.get("cmd_id").and_then(Value::as_u64);
    if let Some(ret) = obj.get("ret") {
        let ret = ret.as_i64().ok_or("ret is not an integer")?;
        return Ok(Incoming::Response(Response {
            cmd_id: cmd_id.unwrap_or(0),
            ret,
            msg: obj
                .get("msg")
                .and_then(Value::as_str)
                .unwrap_or("")
                .chars()
                .take(200)
                .collect(),
            seq_id: obj.get("seq_id").and_then(Value::as_u64),
        }));
    }
    if cmd_id == Some(CMD_TRADE) {
        return Ok(match obj.get("data").map(decode_trade) {
            Some(Ok(t)) => Incoming::Trade(t),
            Some(Err(why)) => Incoming::BadTrade(why),
            None => Incoming::BadTrade("no data"),
        });
    }
    if cmd_id == Some(CMD_DEPTH) {
        return Ok(match obj.get("data").map(decode_depth) {
            Some(Ok(d)) => Incoming::Depth(d),
            Some(Err(why)) => Incoming::BadDepth(why),
            None => Incoming::BadDepth("no data"),
        });
    }
    Ok(Incoming::Other { cmd_id })
}

/// The fields every push carries: code, seq and tick_time.
fn push_header(data: &Value) -> Result<(&str, u64, u64), &'static str> {
    let code = data
        .get("code")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or("missing code")?;
    let seq = integer_field(data.get("seq")).ok_or("missing or bad seq")?;
    let time = integer_field(data.get("tick_time")).ok_or("missing or bad tick_time")?;
    Ok((code, seq, time))
}

fn decode_depth(data: &Value) -> Result<Depth, &'static str> {
    let (code, seq, time) = push_header(data)?;
    let side = |name: &str| -> Result<Vec<(String, Option<String>)>, &'static str> {
        let levels = match data.get(name) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => return Err("a book side is not an array"),
        };
        levels
            .iter()
            .map(|level| {
                let price = decimal_field(level.get("price"))
                    .ok()
                    .flatten()
                    .filter(|p| decimal::is_positive(p))
                    .ok_or("a level's price is not a positive decimal")?;
                let volume = decimal_field(level.get("volume")).map_err(|_| "bad level volume")?;
                Ok((price, volume))
            })
            .collect()
    };
    Ok(Depth {
        code: code.to_string(),
        seq,
        time,
        bids: side("bids")?,
        asks: side("asks")?,
        bad_levels: 0,
    })
}

/// A decimal field as text: strings are the norm, plain JSON numbers are taken too.
fn decimal_field(v: Option<&Value>) -> Result<Option<String>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => decimal::normalize(s).map(Some).ok_or(()),
        Some(Value::Number(n)) => decimal::normalize(&n.to_string()).map(Some).ok_or(()),
        Some(_) => Err(()),
    }
}

/// An integer field that may come as a number or a digit string.
fn integer_field(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The full decoder's trade: the fields are read out of the JSON tree as
/// text and judged by [`validate`], the same rules the zero-copy path uses.
fn decode_trade(data: &Value) -> Result<Trade, &'static str> {
    // Strings give their contents and numbers their text; any other kind
    // gets text that no rule accepts, so it fails like a malformed value.
    let text = |key: &str| -> Option<Cow<'_, str>> {
        match data.get(key)? {
            Value::Null => None,
            Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            _ => Some(Cow::Borrowed("!")),
        }
    };
    let fields = [
        "seq",
        "tick_time",
        "price",
        "volume",
        "turnover",
        "trade_direction",
    ]
    .map(text);
    let [seq, tick_time, price, volume, turnover, trade_direction] = &fields;
    let raw = RawTrade {
        // A code must be a string.
        code: data.get("code").and_then(Value::as_str),
        seq: seq.as_deref(),
        tick_time: tick_time.as_deref(),
        price: price.as_deref(),
        volume: volume.as_deref(),
        turnover: turnover.as_deref(),
        trade_direction: trade_direction.as_deref(),
    };
    validate(&raw).map(|t| t.to_owned_trade())
}

/// What a `ret` code means and what the user can do, per AllTick's error table.
pub fn ret_meaning(ret: i64) -> &'static str {
    match ret {
        200 => "ok",
        400 => "request header/data param invalid (a bug in the request)",
        401 => "token invalid",
        429 => "rate limit: will retry",
        600 => "code invalid: a code is wrong for this endpoint",
        601 => "body empty (a bug in the request)",
        603 => "token level not enough: too many symbols for the plan",
        604 => "code unauthorized: the plan does not cover a code",
        605 => "too many requests: will retry",
        606 => "too many requests, the server will close the connection",
        _ => "unknown error code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_requests() {
        let v: Value = serde_json::from_str(&heartbeat(7, "t7")).unwrap();
        assert_eq!(v, json!({"cmd_id":22000,"seq_id":7,"trace":"t7","data":{}}));
        let v: Value =
            serde_json::from_str(&subscribe_trades(8, "t8", ["AAPL.US", "TSLA.US"])).unwrap();
        assert_eq!(
            v["data"],
            json!({"symbol_list":[{"code":"AAPL.US"},{"code":"TSLA.US"}]})
        );
        assert_eq!(v["cmd_id"], 22004);
        let v: Value = serde_json::from_str(&cancel(9, "t9", CancelType::Trades)).unwrap();
        assert_eq!(v["data"], json!({"cancel_type": 2}));
    }

    #[test]
    fn decodes_a_trade() {
        let t = decode(r#"{"cmd_id":22998,"data":{"code":"AAPL.US","seq":1605509068000001,"tick_time":1605509068000,"price":"651.10","volume":"300","turnover":"12345.6","trade_direction":1}}"#).unwrap();
        assert_eq!(
            t,
            Incoming::Trade(Trade {
                code: "AAPL.US".into(),
                seq: 1605509068000001,
                time: 1605509068000,
                price: "651.10".into(),
                volume: Some("300".into()),
                turnover: Some("12345.6".into()),
                side: Some(Side::Buy),
            })
        );
    }

    #[test]
    fn refuses_bad_trades_with_a_reason() {
        let bad = |data: &str| decode(&format!(r#"{{"cmd_id":22998,"data":{data}}}"#)).unwrap();
        let base = r#""seq":1,"tick_time":2,"volume":"1""#;
        for (data, why) in [
            (format!(r#"{{{base},"price":"1"}}"#), "missing code"),
            (
                format!(r#"{{"code":"A",{base},"price":"0"}}"#),
                "price is not a positive decimal",
            ),
            (
                format!(r#"{{"code":"A",{base},"price":"-1"}}"#),
                "price is not a positive decimal",
            ),
            (
                format!(r#"{{"code":"A",{base},"price":"abc"}}"#),
                "price is not a positive decimal",
            ),
            (
                r#"{"code":"A","tick_time":2,"price":"1"}"#.to_string(),
                "missing or bad seq",
            ),
        ] {
            assert_eq!(bad(&data), Incoming::BadTrade(why), "{data}");
        }
    }

    #[test]
    fn encodes_depth_subscriptions_and_decodes_depth_pushes() {
        let v: Value = serde_json::from_str(&subscribe_depth(
            3,
            "d3",
            [("700.HK", Some(5)), ("EURUSD", None)],
        ))
        .unwrap();
        assert_eq!(v["cmd_id"], 22002);
        assert_eq!(
            v["data"],
            json!({"symbol_list":[{"code":"700.HK","depth_level":5},{"code":"EURUSD"}]})
        );
        let d = decode(r#"{"cmd_id":22999,"data":{"code":"EURUSD","seq":9,"tick_time":5,"bids":[{"price":"1.0850"}],"asks":[]}}"#).unwrap();
        assert_eq!(
            d,
            Incoming::Depth(Depth {
                code: "EURUSD".into(),
                seq: 9,
                time: 5,
                bids: vec![("1.0850".into(), None)],
                asks: vec![],
                bad_levels: 0,
            })
        );
        let bad = decode(r#"{"cmd_id":22999,"data":{"code":"A","seq":1,"tick_time":1,"bids":[{"price":"0","volume":"1"}]}}"#).unwrap();
        assert!(matches!(bad, Incoming::BadDepth(_)));
    }

    #[test]
    fn decodes_responses_and_ignores_unknown() {
        let r = decode(
            r#"{"ret":401,"msg":"token invalid","cmd_id":22001,"seq_id":3,"trace":"x","data":{}}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            Incoming::Response(Response {
                cmd_id: 22001,
                ret: 401,
                msg: "token invalid".into(),
                seq_id: Some(3)
            })
        );
        assert_eq!(
            decode(r#"{"cmd_id":12345,"data":{}}"#).unwrap(),
            Incoming::Other {
                cmd_id: Some(12345)
            }
        );
        assert!(decode("not json").is_err());
        assert!(decode("[1,2]").is_err());
    }
}
