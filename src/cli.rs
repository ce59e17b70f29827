//! Command-line flags, defined in one place with their help text.

use std::path::PathBuf;
use std::time::Duration;

use crate::symbol::{Market, Symbol};

/// AllTick's stock endpoint (US, HK, CN stocks and indices).
pub const STOCK_URL: &str = "wss://quote.alltick.co/quote-stock-b-ws-api";
/// AllTick's forex / metals / crypto / CFD endpoint.
pub const FOREX_URL: &str = "wss://quote.alltick.co/quote-b-ws-api";

/// Default output queue length, in ticks.
pub const DEFAULT_QUEUE: usize = 16_384;

/// AllTick closes a connection that sent no heartbeat for this long, so the
/// heartbeat period must stay below it.
pub const SERVER_CUTOFF: Duration = Duration::from_secs(30);

/// The help text; every flag with its default.
pub const HELP: &str = "\
alltick-stream: stream AllTick real-time trades to stdout as JSON lines

USAGE:
    alltick-stream [FLAGS] [SYMBOL...]

SYMBOLS:
    EXCHANGE:TICKER (NASDAQ:AAPL, NYSE:IBM, HKEX:700, SSE:600519) or a native
    AllTick code, sent exactly as typed (AAPL.US, 700.HK, BTCUSDT, Silver).
    SYMBOL@depth or SYMBOL@depth=N (1-10) subscribes to its order book.

STDIN (one command per line, while running):
    +SYM [SYM...]    subscribe      -SYM [SYM...]    unsubscribe
    ?                print the wanted and acknowledged sets on stderr
    Blank lines and lines starting with # are ignored. EOF keeps streaming.

FLAGS:
    --market stock|forex   which AllTick endpoint [default: stock]
    --url URL              WebSocket endpoint, ws:// or wss:// [default: per --market]
    --token-file PATH      read the token from PATH [default: $ALLTICK_TOKEN]
    --heartbeat SECS       heartbeat period, at least 1 and below the
                           server's 30 s cut-off [default: 10]
    --stale-after SECS     silence after which the link is dead; must exceed
                           --heartbeat [default: 30]
    --connect-timeout SECS bound on one connection attempt [default: 10]
    --max-symbols N        your plan's symbol limit per connection (free 5,
                           basic 100, premium 200, professional 3000): warn
                           before sending more, naming the excess [default: none]
    --queue N              ticks held for a slow stdout before new ones are
                           dropped (and counted) [default: 16384]
    --stats SECS           a status line on stderr every SECS seconds: rates,
                           queue, drops, reconnects, last message [default: off]
    --demo                 no token, no network: stream from a built-in
                           simulated AllTick server on 127.0.0.1
    -h, --help             this text
    -V, --version          the version

ENVIRONMENT:
    ALLTICK_TOKEN          the API token (never pass it on the command line)

EXIT STATUS:
    0 stopped by SIGINT/SIGTERM or stdout closed; 1 cannot go on (token
    refused, stdout failed); 2 bad arguments or no token.
";

/// Everything the flags decide.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Symbols to subscribe at start.
    pub symbols: Vec<Symbol>,
    /// Endpoint without token; `None` with `--demo`.
    pub url: Option<String>,
    /// The market, when the endpoint is one of AllTick's (for code checks).
    pub market: Option<Market>,
    /// `--token-file`, if given.
    pub token_file: Option<PathBuf>,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// Liveness limit.
    pub stale_after: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Output queue length.
    pub queue: usize,
    /// The plan's symbol limit, if stated.
    pub max_symbols: Option<usize>,
    /// Period of the `--stats` line, if asked for.
    pub stats: Option<Duration>,
    /// Run against the built-in simulator.
    pub demo: bool,
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// Run with these options.
    Run(Options),
    /// Print help and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

fn seconds(flag: &str, v: &str) -> Result<Duration, String> {
    let secs: f64 = v
        .parse()
        .map_err(|_| format!("{flag} needs a number of seconds, got {v:?}"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "{flag} must be between 0 and 86400 seconds, got {v}"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parse the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut args = args.into_iter();
    let mut symbols = Vec::new();
    let mut url = None;
    let mut market = None;
    let mut token_file = None;
    let mut heartbeat = Duration::from_secs(10);
    let mut stale_after = Duration::from_secs(30);
    let mut connect_timeout = Duration::from_secs(10);
    let mut queue = DEFAULT_QUEUE;
    let mut max_symbols = None;
    let mut stats = None;
    let mut demo = false;
    let mut only_symbols = false;

    while let Some(arg) = args.next() {
        if only_symbols || !arg.starts_with('-') || arg == "-" {
            symbols.push(Symbol::parse(&arg).map_err(|e| e.to_string())?);
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--" => only_symbols = true,
            "--demo" => demo = true,
            "--url" => url = Some(value("--url")?),
            "--market" => {
                market = Some(match value("--market")?.as_str() {
                    "stock" => Market::Stock,
                    "forex" => Market::Forex,
                    other => {
                        return Err(format!("--market must be stock or forex, got {other:?}"));
                    }
                })
            }
            "--token-file" => token_file = Some(PathBuf::from(value("--token-file")?)),
            "--heartbeat" => heartbeat = seconds("--heartbeat", &value("--heartbeat")?)?,
            "--stale-after" => stale_after = seconds("--stale-after", &value("--stale-after")?)?,
            "--connect-timeout" => {
                connect_timeout = seconds("--connect-timeout", &value("--connect-timeout")?)?
            }
            "--queue" => {
                let v = value("--queue")?;
                queue = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000_000).contains(n))
                    .ok_or_else(|| {
                        format!("--queue needs a count from 1 to 10000000, got {v:?}")
                    })?;
            }
            "--stats" => stats = Some(seconds("--stats", &value("--stats")?)?),
            "--max-symbols" => {
                let v = value("--max-symbols")?;
                max_symbols =
                    Some(v.parse().ok().filter(|n: &usize| *n >= 1).ok_or_else(|| {
                        format!("--max-symbols needs a positive count, got {v:?}")
                    })?);
            }
            _ => return Err(format!("unknown flag {flag} (see --help)")),
        }
    }

    if heartbeat < Duration::from_secs(1) {
        return Err(
            "--heartbeat must be at least 1 second (AllTick allows one request per second)".into(),
        );
    }
    if heartbeat >= SERVER_CUTOFF {
        return Err(format!(
            "--heartbeat ({} s) must stay below the server's {} s cut-off: AllTick closes a connection that sent no heartbeat for {} s",
            heartbeat.as_secs_f64(),
            SERVER_CUTOFF.as_secs(),
            SERVER_CUTOFF.as_secs()
        ));
    }
    if stale_after <= heartbeat {
        return Err(format!(
            "--stale-after ({} s) must exceed --heartbeat ({} s)",
            stale_after.as_secs_f64(),
            heartbeat.as_secs_f64()
        ));
    }
    let url = if demo {
        if url.is_some() {
            return Err("--demo runs its own server; do not combine it with --url".into());
        }
        None
    } else {
        let u = url.unwrap_or_else(|| match market {
            Some(Market::Forex) => FOREX_URL.to_string(),
            _ => STOCK_URL.to_string(),
        });
        if !(u.starts_with("ws://") || u.starts_with("wss://")) {
            return Err(format!("--url must start with ws:// or wss://, got {u:?}"));
        }
        if u.contains("token=") {
            return Err(
                "--url must not carry the token: set ALLTICK_TOKEN or use --token-file".into(),
            );
        }
        Some(u)
    };
    // Codes are checked against the endpoint only when we know which it is.
    let market = match (&url, market) {
        (_, Some(m)) => Some(m),
        (Some(u), None) if u == STOCK_URL => Some(Market::Stock),
        _ => None,
    };
    Ok(Parsed::Run(Options {
        symbols,
        url,
        market,
        token_file,
        heartbeat,
        stale_after,
        connect_timeout,
        queue,
        max_symbols,
        stats,
        demo,
    }))
}

/// Read and check the token: `--token-file` wins over `ALLTICK_TOKEN`.
pub fn token(file: Option<&PathBuf>, env: Option<String>) -> Result<String, String> {
    let raw = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --token-file {}: {e}", path.display()))?,
        None => {
            env.ok_or("no token: set ALLTICK_TOKEN or pass --token-file PATH (or try --demo)")?
        }
    };
    let token = raw.trim();
    if token.is_empty() {
        return Err("the token is empty".into());
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the token contains spaces or control characters".into());
    }
    Ok(token.to_string())
}

/// Percent-encode for a URL query value (everything but unreserved characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Parsed::Run(o) => Ok(o),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = run(&["NASDAQ:AAPL"]).unwrap();
        assert_eq!(o.url.as_deref(), Some(STOCK_URL));
        assert_eq!(o.heartbeat, Duration::from_secs(10));
        assert_eq!(o.stale_after, Duration::from_secs(30));
        assert_eq!(o.symbols[0].code, "AAPL.US");
        assert_eq!(o.market, Some(Market::Stock));
    }

    #[test]
    fn flags_with_and_without_equals() {
        let o = run(&[
            "--market=forex",
            "--heartbeat",
            "2",
            "--stale-after=5",
            "BTCUSDT",
        ])
        .unwrap();
        assert_eq!(o.url.as_deref(), Some(FOREX_URL));
        assert_eq!(o.heartbeat, Duration::from_secs(2));
        assert_eq!(o.stale_after, Duration::from_secs(5));
    }

    #[test]
    fn refuses_bad_combinations() {
        assert!(
            run(&["--heartbeat", "10", "--stale-after", "10"])
                .unwrap_err()
                .contains("must exceed")
        );
        assert!(run(&["--url", "http://x"]).is_err());
        assert!(
            run(&["--url", "wss://x/?token=abc"])
                .unwrap_err()
                .contains("ALLTICK_TOKEN")
        );
        assert!(run(&["--demo", "--url", "ws://x"]).is_err());
        assert!(run(&["--bogus"]).unwrap_err().contains("unknown flag"));
        assert!(run(&["FOO:BAR"]).is_err());
        assert!(run(&["--queue", "0"]).is_err());
        assert!(run(&["--heartbeat"]).unwrap_err().contains("needs a value"));
        for hb in ["30", "45"] {
            let r = run(&["--heartbeat", hb, "--stale-after", "90"]);
            assert!(r.unwrap_err().contains("cut-off"), "{hb}");
        }
        assert!(run(&["--heartbeat", "29.5", "--stale-after", "90"]).is_ok());
    }

    #[test]
    fn token_sources() {
        assert_eq!(token(None, Some(" abc\n".into())).unwrap(), "abc");
        assert!(token(None, None).unwrap_err().contains("ALLTICK_TOKEN"));
        assert!(token(None, Some("a b".into())).is_err());
        assert!(token(None, Some("  ".into())).is_err());
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(url_encode("ab-_.~9"), "ab-_.~9");
        assert_eq!(url_encode("a/b+c="), "a%2Fb%2Bc%3D");
    }
}
