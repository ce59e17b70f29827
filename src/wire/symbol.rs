//! Symbols as users type them, and the AllTick codes they map to.
//!
//! Users write `EXCHANGE:TICKER` (`NASDAQ:AAPL`) or a native AllTick code
//! (`AAPL.US`, `BTCUSDT`, `Silver`). The first form is upper-cased and mapped
//! to a code; the second is kept exactly as typed, because AllTick codes are
//! case-sensitive. Characters and length are restricted so that nothing a
//! user types can change the shape of the JSON sent to the server.

use std::fmt;
use std::hash::Hasher;
use std::sync::Arc;

use crate::wire::protocol::FeedKind;

/// Longest symbol accepted, in bytes, in either spelling.
pub const MAX_SYMBOL_LEN: usize = 32;

/// Exchanges accepted before the colon, with the AllTick market suffix each maps to.
pub const EXCHANGES: &[(&str, &str)] = &[
    ("NASDAQ", "US"),
    ("NYSE", "US"),
    ("AMEX", "US"),
    ("ARCA", "US"),
    ("NYSEARCA", "US"),
    ("BATS", "US"),
    ("CBOE", "US"),
    ("HKEX", "HK"),
    ("HK", "HK"),
    ("SSE", "SH"),
    ("SH", "SH"),
    ("SZSE", "SZ"),
    ("SZ", "SZ"),
];

/// Which of AllTick's two WebSocket endpoints a code lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Market {
    /// US, HK and CN stocks and indices: codes like `AAPL.US`, `700.HK`.
    Stock,
    /// Forex, metals, crypto, oil, CFDs: bare codes like `EURUSD`, `BTCUSDT`.
    Forex,
}

impl Market {
    /// The market a native code most likely belongs to, judged by its suffix.
    pub fn of_code(code: &str) -> Market {
        match code.rsplit_once('.') {
            Some((_, "US" | "HK" | "SH" | "SZ")) => Market::Stock,
            _ => Market::Forex,
        }
    }

    /// Lower-case name, as `--market` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Market::Stock => "stock",
            Market::Forex => "forex",
        }
    }
}

/// Which feed of a symbol a subscription is for ([`FeedKind`]), with the
/// depth levels asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Trades, tick by tick (22004 / 22998). The default.
    Trades,
    /// Order-book depth (22002 / 22999), with an optional number of levels
    /// (`@depth=5`); the server caps it by market.
    Depth(Option<u8>),
}

impl Feed {
    /// The feed, without its depth level.
    pub fn kind(self) -> FeedKind {
        match self {
            Feed::Trades => FeedKind::Trades,
            Feed::Depth(_) => FeedKind::Depth,
        }
    }
}

/// Most depth levels that can be asked for (AllTick's cap, HK stocks).
pub const MAX_DEPTH_LEVELS: u8 = 10;

/// An AllTick code or a user's spelling of one, shared: every record of a
/// symbol (the router's, the feeds', the writer's) holds the same text
/// rather than its own copy, which with thousands of symbols is most of
/// what they cost.
pub type Code = Arc<str>;

/// One symbol: the user's spelling and the AllTick code it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// What the user typed, without any `@depth` suffix, e.g. `NASDAQ:AAPL`.
    pub spelling: Code,
    /// The code sent to the server, e.g. `AAPL.US`.
    pub code: Code,
    /// Trades, or depth (`SYMBOL@depth`, `SYMBOL@depth=5`).
    pub feed: Feed,
}

/// Why a symbol was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolError {
    /// The offending text, truncated for display.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for SymbolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad symbol {:?}: {} (use EXCHANGE:TICKER like NASDAQ:AAPL, or an AllTick code like AAPL.US or BTCUSDT)",
            self.input, self.reason
        )
    }
}

impl std::error::Error for SymbolError {}

fn err(input: &str, reason: impl Into<String>) -> SymbolError {
    let mut shown: String = input.chars().take(40).collect();
    if shown.len() < input.len() {
        shown.push('…');
    }
    SymbolError {
        input: shown,
        reason: reason.into(),
    }
}

fn is_code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

impl Symbol {
    /// Parse one symbol in either accepted spelling, with an optional
    /// `@depth` or `@depth=N` suffix for the order-book feed.
    pub fn parse(input: &str) -> Result<Symbol, SymbolError> {
        let Some((base, suffix)) = input.split_once('@') else {
            return Self::parse_base(input);
        };
        let levels = match suffix {
            "depth" => None,
            _ => {
                let n = suffix
                    .strip_prefix("depth=")
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|n| (1..=MAX_DEPTH_LEVELS).contains(n))
                    .ok_or_else(|| {
                        err(
                            input,
                            format!(
                                "after '@' write depth or depth=N with N from 1 to {MAX_DEPTH_LEVELS}"
                            ),
                        )
                    })?;
                Some(n)
            }
        };
        let mut symbol = Self::parse_base(base).map_err(|e| SymbolError {
            input: err(input, "").input,
            reason: e.reason,
        })?;
        symbol.feed = Feed::Depth(levels);
        Ok(symbol)
    }

    fn parse_base(input: &str) -> Result<Symbol, SymbolError> {
        if input.is_empty() {
            return Err(err(input, "empty"));
        }
        if input.len() > MAX_SYMBOL_LEN {
            return Err(err(
                input,
                format!("longer than {MAX_SYMBOL_LEN} characters"),
            ));
        }
        if let Some(c) = input.chars().find(|&c| !is_code_char(c) && c != ':') {
            return Err(err(input, format!("character {c:?} is not allowed")));
        }
        match input.split_once(':') {
            Some((exchange, ticker)) => Self::parse_exchange_ticker(input, exchange, ticker),
            None => Self::parse_native(input),
        }
    }

    fn parse_exchange_ticker(
        input: &str,
        exchange: &str,
        ticker: &str,
    ) -> Result<Symbol, SymbolError> {
        let exchange = exchange.to_ascii_uppercase();
        let Some(&(_, suffix)) = EXCHANGES.iter().find(|(name, _)| *name == exchange) else {
            let known: Vec<&str> = EXCHANGES.iter().map(|(n, _)| *n).collect();
            return Err(err(
                input,
                format!(
                    "unknown exchange {exchange:?} (known: {})",
                    known.join(", ")
                ),
            ));
        };
        if ticker.is_empty() {
            return Err(err(input, "no ticker after the colon"));
        }
        if ticker.contains(':') {
            return Err(err(input, "more than one colon"));
        }
        if !ticker.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(err(input, "the ticker must start with a letter or digit"));
        }
        let mut ticker = ticker.to_ascii_uppercase();
        if suffix == "HK" && ticker.bytes().all(|b| b.is_ascii_digit()) {
            // HKEX:0700 and HKEX:700 are both 700.HK on AllTick.
            let trimmed = ticker.trim_start_matches('0');
            ticker = if trimmed.is_empty() { "0" } else { trimmed }.to_string();
        }
        Ok(Symbol {
            spelling: input.into(),
            code: format!("{ticker}.{suffix}").into(),
            feed: Feed::Trades,
        })
    }

    fn parse_native(input: &str) -> Result<Symbol, SymbolError> {
        // AllTick writes US indices with a leading dot (`.DJI.US`,
        // `.IXIC.US`): one dot, then a letter or digit, and a market suffix.
        let body = input.strip_prefix('.').unwrap_or(input);
        if !body.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(err(
                input,
                "must start with a letter or digit (or one dot for an index, like .DJI.US)",
            ));
        }
        if body.len() < input.len() && !body.contains('.') {
            return Err(err(
                input,
                "an index code needs its market suffix, like .DJI.US",
            ));
        }
        if input.ends_with('.') {
            return Err(err(input, "must not end with a dot"));
        }
        // A native code is its own spelling: one shared text.
        let code: Code = input.into();
        Ok(Symbol {
            spelling: Arc::clone(&code),
            code,
            feed: Feed::Trades,
        })
    }
}

/// FNV-1a, the hasher of every table keyed by code: codes are short, and this lookup runs once per tick. Only codes
/// the user subscribed to are ever inserted, so server-chosen keys cannot
/// crowd the table.
pub struct Fnv(u64);

impl Fnv {
    /// The FNV-1a hash of `bytes`: what a table keyed by code hashes a
    /// code's bytes to, and the name of a capture's memory file.
    pub fn hash(bytes: &[u8]) -> u64 {
        let mut h = Fnv::default();
        h.write(bytes);
        h.finish()
    }
}

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> String {
        Symbol::parse(s)
            .map(|s| s.code.to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn fnv_1a_hashes_as_published() {
        assert_eq!(Fnv::hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv::hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv::hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn exchange_ticker_maps_to_codes() {
        assert_eq!(code("NASDAQ:AAPL"), "AAPL.US");
        assert_eq!(code("nasdaq:aapl"), "AAPL.US");
        assert_eq!(code("NYSE:IBM"), "IBM.US");
        assert_eq!(code("NYSEARCA:SPY"), "SPY.US");
        assert_eq!(code("NYSE:BRK.B"), "BRK.B.US");
        assert_eq!(code("HKEX:700"), "700.HK");
        assert_eq!(code("HK:0700"), "700.HK");
        assert_eq!(code("SSE:600519"), "600519.SH");
        assert_eq!(code("SZ:000001"), "000001.SZ");
    }

    #[test]
    fn native_codes_are_kept_exactly() {
        assert_eq!(code("AAPL.US"), "AAPL.US");
        assert_eq!(code("Silver"), "Silver");
        assert_eq!(code("BTCUSDT"), "BTCUSDT");
        assert_eq!(&*Symbol::parse("Silver").unwrap().spelling, "Silver");
    }

    #[test]
    fn index_codes_with_a_leading_dot_are_sent_as_typed() {
        assert_eq!(code(".DJI.US"), ".DJI.US");
        assert_eq!(code(".IXIC.US"), ".IXIC.US");
        assert_eq!(code("HSI.HK"), "HSI.HK");
        assert_eq!(Market::of_code(".SPX.US"), Market::Stock);
        for bad in ["..DJI.US", ".DJI", ". DJI.US", ".-X.US"] {
            assert!(Symbol::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn refuses_what_could_inject_or_is_unknown() {
        for bad in [
            "",
            "FOO:AAPL",
            "NASDAQ:",
            "NASDAQ:A:B",
            "AAPL\"}",
            "A B",
            "-X",
            ".US",
            "AAPL.",
            "ÄPFEL",
            "NASDAQ:-A",
            &"A".repeat(33),
        ] {
            assert!(Symbol::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let e = Symbol::parse("FOO:AAPL").unwrap_err().to_string();
        assert!(e.contains("unknown exchange \"FOO\""), "{e}");
        assert!(e.contains("NASDAQ:AAPL"), "{e}");
    }

    #[test]
    fn depth_suffix() {
        let s = Symbol::parse("HKEX:700@depth=5").unwrap();
        assert_eq!((&*s.code, &*s.spelling), ("700.HK", "HKEX:700"));
        assert_eq!(s.feed, Feed::Depth(Some(5)));
        assert_eq!(
            Symbol::parse("BTCUSDT@depth").unwrap().feed,
            Feed::Depth(None)
        );
        assert_eq!(Symbol::parse("AAPL.US").unwrap().feed, Feed::Trades);
        for bad in [
            "A@",
            "A@depth=0",
            "A@depth=11",
            "A@deep",
            "A@depth=x",
            "@depth",
            "FOO:A@depth",
        ] {
            assert!(Symbol::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(
            Symbol::parse("A@x")
                .unwrap_err()
                .to_string()
                .contains("depth=N")
        );
    }

    #[test]
    fn market_of_code() {
        assert_eq!(Market::of_code("AAPL.US"), Market::Stock);
        assert_eq!(Market::of_code("600519.SH"), Market::Stock);
        assert_eq!(Market::of_code("BTCUSDT"), Market::Forex);
        assert_eq!(Market::of_code("Silver"), Market::Forex);
    }
}
