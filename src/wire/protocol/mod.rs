//! AllTick WebSocket messages: requests we send and messages we receive.
//!
//! Pure encode/decode, no I/O. Every request is
//! `{"cmd_id","seq_id","trace","data"}`; responses echo `seq_id`/`trace`
//! (errors may carry `seq_id: 0`) and carry `ret`, a [`Ret`] whose
//! meaning for the client is decided in one place ([`Ret::handling`]);
//! pushes (22998 trades, 22999 depth) carry `data` only.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::wire::decimal;
use crate::wire::scan::RawTrade;

mod ret;

pub use ret::{AFTER_606, Handling, RATE_LIMIT_RETRY, Ret};

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

/// Which of AllTick's two subscriptions (feeds): each has its own set,
/// replaced whole by its request and cancelled by its own `cancel_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeedKind {
    /// Latest trades (22004, pushed as 22998).
    Trades,
    /// Order-book depth (22002, pushed as 22999).
    Depth,
}

impl FeedKind {
    /// The word used in messages: `trade`, `depth`.
    pub fn name(self) -> &'static str {
        match self {
            FeedKind::Trades => "trade",
            FeedKind::Depth => "depth",
        }
    }

    /// The request command that replaces this feed's set.
    pub fn request_cmd(self) -> u64 {
        match self {
            FeedKind::Trades => CMD_SUB_TRADES,
            FeedKind::Depth => CMD_SUB_DEPTH,
        }
    }

    /// The `cancel_type` that empties this feed's set.
    pub fn cancel_type(self) -> CancelType {
        match self {
            FeedKind::Trades => CancelType::Trades,
            FeedKind::Depth => CancelType::Depth,
        }
    }
}

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

/// Which push a frame is, judged fast from its start: AllTick writes pushes
/// as `{"cmd_id":22998,"data":…}` (22999 for depth). Returns the cmd_id
/// when the frame starts that way; `None` otherwise — it may still be a
/// push written another way, which [`decode`] tells.
pub fn push_kind(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    // How AllTick writes them, compared as fixed-length words.
    match b.first_chunk::<16>() {
        Some(br#"{"cmd_id":22998,"#) => return Some(CMD_TRADE),
        Some(br#"{"cmd_id":22999,"#) => return Some(CMD_DEPTH),
        _ => {}
    }
    let mut i = 0;
    let skip = |i: &mut usize| {
        while b
            .get(*i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            *i += 1;
        }
    };
    skip(&mut i);
    let rest = b.get(i..)?.strip_prefix(b"{")?;
    i = b.len() - rest.len();
    skip(&mut i);
    let rest = b.get(i..)?.strip_prefix(b"\"cmd_id\"")?;
    i = b.len() - rest.len();
    skip(&mut i);
    let rest = b.get(i..)?.strip_prefix(b":")?;
    i = b.len() - rest.len();
    skip(&mut i);
    let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let after = b.get(i + digits)?;
    if !matches!(after, b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
        return None;
    }
    match &b[i..i + digits] {
        b"22998" => Some(CMD_TRADE),
        b"22999" => Some(CMD_DEPTH),
        _ => None,
    }
}

/// Validate a scanned trade with exactly the rules of [`decode`].
pub fn validate<'a>(raw: &RawTrade<'a>) -> Result<TradeView<'a>, &'static str> {
    let code = raw.code.filter(|c| !c.is_empty()).ok_or("missing code")?;
    let int = |v: Option<&str>| v.and_then(|t| t.parse::<u64>().ok());
    let seq = int(raw.seq).ok_or("missing or bad seq")?;
    let time = int(raw.tick_time)
        .map(to_millis)
        .ok_or("missing or bad tick_time")?;
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

/// A `tick_time` below this cannot be milliseconds after 1973: it is seconds.
const SECONDS_BELOW: u64 = 100_000_000_000;

/// A `tick_time` in milliseconds, whether it was sent in seconds or milliseconds.
pub fn to_millis(tick_time: u64) -> u64 {
    if tick_time < SECONDS_BELOW {
        tick_time.saturating_mul(1000)
    } else {
        tick_time
    }
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
    /// Levels dropped from this push, both sides together: a price that is
    /// missing, empty or not a positive decimal, or a volume that is not a
    /// decimal (a padded level of a thin book).
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
    /// A well-formed message of a kind we do not handle (an unknown cmd_id).
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
    /// Result code: 200 ok, anything else an error (see [`Ret`]).
    pub ret: Ret,
    /// The server's message text.
    pub msg: String,
    /// Echo of our request's seq_id.
    pub seq_id: Option<u64>,
}

/// Decode one text frame. `Err` means it was not a JSON object at all.
///
/// Values are kept as their raw JSON text until a field is read, so a price
/// sent as a JSON number (`651.10`, `123456789012.123456789`) keeps every
/// digit as sent: nothing passes through a float.
pub fn decode(text: &str) -> Result<Incoming, &'static str> {
    let obj: Members = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => "not a JSON object",
        _ => "invalid JSON",
    })?;
    let cmd_id = obj.get("cmd_id").and_then(|v| integer::<u64>(v));
    if let Some(ret) = obj.get("ret") {
        let ret = integer::<i64>(ret).ok_or("ret is not an integer")?;
        return Ok(Incoming::Response(Response {
            cmd_id: cmd_id.unwrap_or(0),
            ret: Ret::from_code(ret),
            msg: obj
                .get("msg")
                .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect(),
            seq_id: obj.get("seq_id").and_then(|v| integer::<u64>(v)),
        }));
    }
    let data = || match obj.get("data").map(|d| members(d)) {
        Some(Some(d)) => Ok(d),
        Some(None) => Err("data is not an object"),
        None => Err("no data"),
    };
    match cmd_id {
        Some(CMD_TRADE) => {
            return Ok(match data().and_then(|d| decode_trade(&d)) {
                Ok(t) => Incoming::Trade(t),
                Err(why) => Incoming::BadTrade(why),
            });
        }
        Some(CMD_DEPTH) => {
            return Ok(match data().and_then(|d| decode_depth(&d)) {
                Ok(d) => Incoming::Depth(d),
                Err(why) => Incoming::BadDepth(why),
            });
        }
        _ => {}
    }
    Ok(Incoming::Other { cmd_id })
}

/// An object's members, each value still as its JSON text. A repeated key
/// keeps its last value.
type Members<'a> = HashMap<String, &'a RawValue>;

/// A raw value read as an object, or `None` when it is not one.
fn members(raw: &RawValue) -> Option<Members<'_>> {
    serde_json::from_str(raw.get()).ok()
}

/// A raw value read as an integer, or `None` when it is not one.
fn integer<T: std::str::FromStr>(raw: &RawValue) -> Option<T> {
    // A JSON integer's text is exactly its decimal digits.
    raw.get().parse().ok()
}

/// A field as text: a string's contents or a number's text exactly as
/// sent; `None` when absent or `null`. Any other kind (objects, arrays,
/// booleans) gets text that no rule accepts, so it fails like a malformed
/// value.
fn field<'a>(obj: &Members<'a>, key: &str) -> Option<Cow<'a, str>> {
    let raw = obj.get(key)?.get();
    match raw.as_bytes().first()? {
        b'"' => match raw.get(1..raw.len() - 1) {
            Some(plain) if !plain.contains('\\') => Some(Cow::Borrowed(plain)),
            _ => Some(serde_json::from_str::<String>(raw).map_or(Cow::Borrowed("!"), Cow::Owned)),
        },
        b'-' | b'0'..=b'9' => Some(Cow::Borrowed(raw)),
        b'n' => None,
        _ => Some(Cow::Borrowed("!")),
    }
}

/// A string field's contents; `None` for any other kind.
fn string_field<'a>(obj: &Members<'a>, key: &str) -> Option<Cow<'a, str>> {
    let raw = obj.get(key)?;
    if !raw.get().starts_with('"') {
        return None;
    }
    field(obj, key)
}

/// The fields every push carries: code, seq and tick_time.
fn push_header(data: &Members) -> Result<(String, u64, u64), &'static str> {
    let code = string_field(data, "code")
        .filter(|c| !c.is_empty())
        .ok_or("missing code")?;
    let int = |key| field(data, key).and_then(|t| t.parse::<u64>().ok());
    let seq = int("seq").ok_or("missing or bad seq")?;
    let time = int("tick_time")
        .map(to_millis)
        .ok_or("missing or bad tick_time")?;
    Ok((code.into_owned(), seq, time))
}

fn decode_depth(data: &Members) -> Result<Depth, &'static str> {
    let (code, seq, time) = push_header(data)?;
    let mut bad_levels = 0u32;
    let mut side = |name: &str| -> Result<Vec<(String, Option<String>)>, &'static str> {
        let levels: Vec<&RawValue> = match data.get(name) {
            None => return Ok(Vec::new()),
            Some(raw) if raw.get() == "null" => return Ok(Vec::new()),
            Some(raw) => {
                serde_json::from_str(raw.get()).map_err(|_| "a book side is not an array")?
            }
        };
        let mut good = Vec::with_capacity(levels.len());
        for level in levels {
            match members(level).and_then(|l| depth_level(&l)) {
                Some(l) => good.push(l),
                None => bad_levels = bad_levels.saturating_add(1),
            }
        }
        Ok(good)
    };
    let bids = side("bids")?;
    let asks = side("asks")?;
    Ok(Depth {
        code,
        seq,
        time,
        bids,
        asks,
        bad_levels,
    })
}

/// One book level, or `None` when it is padding or malformed: its price
/// must be a positive decimal, its volume a decimal if present (an empty
/// volume counts as none).
fn depth_level(level: &Members) -> Option<(String, Option<String>)> {
    let price = field(level, "price")
        .and_then(|p| decimal::normalize_cow(&p).map(Cow::into_owned))
        .filter(|p| decimal::is_positive(p))?;
    let volume = match field(level, "volume").as_deref() {
        None | Some("") => None,
        Some(v) => Some(decimal::normalize(v)?),
    };
    Some((price, volume))
}

/// The full decoder's trade: the fields are read out of the frame as text
/// and judged by [`validate`], the same rules the zero-copy path uses.
fn decode_trade(data: &Members) -> Result<Trade, &'static str> {
    let fields = [
        "seq",
        "tick_time",
        "price",
        "volume",
        "turnover",
        "trade_direction",
    ]
    .map(|key| field(data, key));
    let [seq, tick_time, price, volume, turnover, trade_direction] = &fields;
    // A code must be a string.
    let code = string_field(data, "code");
    let raw = RawTrade {
        code: code.as_deref(),
        seq: seq.as_deref(),
        tick_time: tick_time.as_deref(),
        price: price.as_deref(),
        volume: volume.as_deref(),
        turnover: turnover.as_deref(),
        trade_direction: trade_direction.as_deref(),
    };
    validate(&raw).map(|t| t.to_owned_trade())
}

#[cfg(test)]
mod tests;
