//! Command-line flags, defined in one place with their help text.

use std::path::PathBuf;
use std::time::Duration;

use crate::wire::symbol::{Market, Symbol};

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
    AllTick code, sent exactly as typed (AAPL.US, .DJI.US, 700.HK, BTCUSDT,
    Silver). SYMBOL@depth or SYMBOL@depth=N (1-10) subscribes to its order
    book. Stock codes go to the stock endpoint, the rest to the forex/crypto
    endpoint.

STDIN (one command per line, while streaming):
    +SYMBOL [SYMBOL...]    subscribe
    -SYMBOL [SYMBOL...]    unsubscribe
    ?                      print each connection's wanted and acknowledged
                           sets, and the symbols held back, on stderr
    Blank lines and lines starting with # are ignored. EOF keeps streaming.

FLAGS:
    --plan NAME            free, basic, premium, professional, all-hk or
                           all-cn: sets --connections and --max-symbols from
                           AllTick's plan table (explicit flags win)
    --connections N        most connections per endpoint [default: 1]
    --max-symbols N        codes per connection, per kind (trades, depth);
                           beyond N x connections symbols are held back and
                           admitted when room frees [default: no limit]
    --market stock|forex   use only this endpoint, for every code
                           [default: by code form]
    --url URL              one endpoint for every code, ws:// or wss://
    --stock-url URL        the stock endpoint [default: AllTick's]
    --forex-url URL        the forex/crypto endpoint [default: AllTick's]
    --token-file PATH      read the token from PATH [default: $ALLTICK_TOKEN]
    --heartbeat SECS       heartbeat period, at least 1 and below the
                           server's 30 s cut-off [default: 10]
    --stale-after SECS     silence after which the link is dead; must exceed
                           --heartbeat [default: 30]
    --connect-timeout SECS bound on one connection attempt [default: 10]
    --queue N              ticks held for a slow stdout before new ones are
                           dropped (and counted) [default: 16384]
    --stats SECS           a status line on stderr every SECS seconds: rates,
                           queue, drops, reconnects, each connection [default: off]
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

/// AllTick's plans: (name, connections per token, symbols per connection).
pub const PLANS: &[(&str, usize, usize)] = &[
    ("free", 1, 5),
    ("basic", 1, 100),
    ("premium", 3, 200),
    ("professional", 10, 3000),
    ("all-hk", 10, 3000),
    ("all-cn", 10, 3000),
];

/// One endpoint to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointUrl {
    /// Short name for messages: `stock`, `forex`.
    pub name: String,
    /// URL without the token.
    pub url: String,
    /// The market it serves; `None`: every code goes here.
    pub market: Option<Market>,
}

/// Everything the flags decide.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Symbols to subscribe at start.
    pub symbols: Vec<Symbol>,
    /// The endpoints; empty with `--demo` (the simulator supplies them).
    pub endpoints: Vec<EndpointUrl>,
    /// `--market`: one endpoint forced for every code (for code checks).
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
    /// Most connections per endpoint.
    pub connections: usize,
    /// Codes per connection per kind, if limited.
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

fn count(flag: &str, v: &str, max: usize) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("{flag} needs a count from 1 to {max}, got {v:?}"))
}

/// The flags that take a value.
const VALUE_FLAGS: &[&str] = &[
    "--url",
    "--stock-url",
    "--forex-url",
    "--market",
    "--token-file",
    "--heartbeat",
    "--stale-after",
    "--connect-timeout",
    "--queue",
    "--connections",
    "--max-symbols",
    "--stats",
    "--plan",
];

/// The flags as given, before they are checked together.
#[derive(Debug, Default)]
struct Given {
    symbols: Vec<Symbol>,
    url: Option<String>,
    stock_url: Option<String>,
    forex_url: Option<String>,
    market: Option<Market>,
    token_file: Option<PathBuf>,
    heartbeat: Option<Duration>,
    stale_after: Option<Duration>,
    connect_timeout: Option<Duration>,
    queue: Option<usize>,
    connections: Option<usize>,
    max_symbols: Option<usize>,
    plan: Option<(usize, usize)>,
    stats: Option<Duration>,
    demo: bool,
}

impl Given {
    /// Take one flag with its value (`None` for flags without one).
    fn set(&mut self, flag: &str, value: &str) -> Result<(), String> {
        match flag {
            "--url" => self.url = Some(value.into()),
            "--stock-url" => self.stock_url = Some(value.into()),
            "--forex-url" => self.forex_url = Some(value.into()),
            "--market" => {
                self.market = Some(match value {
                    "stock" => Market::Stock,
                    "forex" => Market::Forex,
                    other => return Err(format!("--market must be stock or forex, got {other:?}")),
                })
            }
            "--token-file" => self.token_file = Some(PathBuf::from(value)),
            "--heartbeat" => self.heartbeat = Some(seconds(flag, value)?),
            "--stale-after" => self.stale_after = Some(seconds(flag, value)?),
            "--connect-timeout" => self.connect_timeout = Some(seconds(flag, value)?),
            "--queue" => self.queue = Some(count(flag, value, 10_000_000)?),
            "--connections" => self.connections = Some(count(flag, value, 100)?),
            "--max-symbols" => self.max_symbols = Some(count(flag, value, 1_000_000)?),
            "--stats" => self.stats = Some(seconds(flag, value)?),
            "--plan" => {
                let (_, c, m) = PLANS.iter().find(|(n, _, _)| *n == value).ok_or_else(|| {
                    let names: Vec<&str> = PLANS.iter().map(|p| p.0).collect();
                    format!("--plan must be one of {}, got {value:?}", names.join(", "))
                })?;
                self.plan = Some((*c, *m));
            }
            _ => return Err(format!("unknown flag {flag} (see --help)")),
        }
        Ok(())
    }
}

/// Parse the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut args = args.into_iter();
    let mut given = Given::default();
    let mut only_symbols = false;
    while let Some(arg) = args.next() {
        if only_symbols || !arg.starts_with('-') || arg == "-" {
            given
                .symbols
                .push(Symbol::parse(&arg).map_err(|e| e.to_string())?);
            continue;
        }
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--" => only_symbols = true,
            "--demo" => given.demo = true,
            _ => {
                let (flag, value) = match arg.split_once('=') {
                    Some((f, v)) if f.starts_with("--") => (f.to_string(), v.to_string()),
                    _ if VALUE_FLAGS.contains(&arg.as_str()) => {
                        let v = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
                        (arg.clone(), v)
                    }
                    _ => return Err(format!("unknown flag {arg} (see --help)")),
                };
                given.set(&flag, &value)?;
            }
        }
    }
    finish(given).map(Parsed::Run)
}

/// Check the flags together and settle the defaults.
fn finish(g: Given) -> Result<Options, String> {
    let heartbeat = g.heartbeat.unwrap_or(Duration::from_secs(10));
    let stale_after = g.stale_after.unwrap_or(Duration::from_secs(30));
    check_timing(heartbeat, stale_after)?;
    let endpoints = endpoints(&g)?;
    let (plan_connections, plan_max) = match g.plan {
        Some((c, m)) => (Some(c), Some(m)),
        None => (None, None),
    };
    Ok(Options {
        endpoints,
        market: g.market,
        token_file: g.token_file,
        heartbeat,
        stale_after,
        connect_timeout: g.connect_timeout.unwrap_or(Duration::from_secs(10)),
        queue: g.queue.unwrap_or(DEFAULT_QUEUE),
        connections: g.connections.or(plan_connections).unwrap_or(1),
        max_symbols: g.max_symbols.or(plan_max),
        stats: g.stats,
        demo: g.demo,
        symbols: g.symbols,
    })
}

fn check_timing(heartbeat: Duration, stale_after: Duration) -> Result<(), String> {
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
    Ok(())
}

/// The endpoints the flags name: one for everything (`--url`, `--market`),
/// or AllTick's two with stock codes routed to the first.
fn endpoints(g: &Given) -> Result<Vec<EndpointUrl>, String> {
    let any_url = g.url.is_some() || g.stock_url.is_some() || g.forex_url.is_some();
    if g.demo {
        if any_url {
            return Err("--demo runs its own server; do not combine it with --url".into());
        }
        return Ok(Vec::new());
    }
    if g.url.is_some() && (g.stock_url.is_some() || g.forex_url.is_some()) {
        return Err("--url is one endpoint for everything: do not combine it with --stock-url or --forex-url".into());
    }
    let one = |name: &str, url: String| -> Result<Vec<EndpointUrl>, String> {
        Ok(vec![EndpointUrl {
            name: name.into(),
            url: check_url(url)?,
            market: None,
        }])
    };
    match (&g.url, g.market) {
        (Some(u), m) => one(m.map_or("endpoint", Market::name), u.clone()),
        (None, Some(Market::Stock)) => {
            one("stock", g.stock_url.clone().unwrap_or(STOCK_URL.into()))
        }
        (None, Some(Market::Forex)) => {
            one("forex", g.forex_url.clone().unwrap_or(FOREX_URL.into()))
        }
        (None, None) => Ok(vec![
            EndpointUrl {
                name: "stock".into(),
                url: check_url(g.stock_url.clone().unwrap_or(STOCK_URL.into()))?,
                market: Some(Market::Stock),
            },
            EndpointUrl {
                name: "forex".into(),
                url: check_url(g.forex_url.clone().unwrap_or(FOREX_URL.into()))?,
                market: Some(Market::Forex),
            },
        ]),
    }
}

fn check_url(u: String) -> Result<String, String> {
    if !(u.starts_with("ws://") || u.starts_with("wss://")) {
        return Err(format!(
            "the URL must start with ws:// or wss://, got {u:?}"
        ));
    }
    if u.contains("token=") {
        return Err(
            "the URL must not carry the token: set ALLTICK_TOKEN or use --token-file".into(),
        );
    }
    Ok(u)
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

    fn urls(o: &Options) -> Vec<(&str, Option<Market>)> {
        o.endpoints
            .iter()
            .map(|e| (e.url.as_str(), e.market))
            .collect()
    }

    #[test]
    fn defaults() {
        let o = run(&["NASDAQ:AAPL"]).unwrap();
        assert_eq!(
            urls(&o),
            vec![
                (STOCK_URL, Some(Market::Stock)),
                (FOREX_URL, Some(Market::Forex))
            ]
        );
        assert_eq!(o.heartbeat, Duration::from_secs(10));
        assert_eq!(o.stale_after, Duration::from_secs(30));
        assert_eq!(&*o.symbols[0].code, "AAPL.US");
        assert_eq!(o.market, None);
        assert_eq!((o.connections, o.max_symbols), (1, None));
    }

    #[test]
    fn plans_set_connections_and_symbols_and_explicit_flags_win() {
        let o = run(&["--plan", "premium"]).unwrap();
        assert_eq!((o.connections, o.max_symbols), (3, Some(200)));
        let o = run(&["--plan=free", "--max-symbols", "3"]).unwrap();
        assert_eq!((o.connections, o.max_symbols), (1, Some(3)));
        let o = run(&["--connections", "2", "--plan", "professional"]).unwrap();
        assert_eq!((o.connections, o.max_symbols), (2, Some(3000)));
        assert!(run(&["--plan", "gold"]).unwrap_err().contains("premium"));
        assert!(run(&["--connections", "0"]).is_err());
    }

    #[test]
    fn one_endpoint_for_everything_or_each_overridden() {
        let o = run(&["--url", "ws://h:1/x"]).unwrap();
        assert_eq!(urls(&o), vec![("ws://h:1/x", None)]);
        let o = run(&["--stock-url", "ws://s/", "--forex-url", "ws://f/"]).unwrap();
        assert_eq!(
            urls(&o),
            vec![
                ("ws://s/", Some(Market::Stock)),
                ("ws://f/", Some(Market::Forex))
            ]
        );
        let o = run(&["--market", "stock"]).unwrap();
        assert_eq!(urls(&o), vec![(STOCK_URL, None)]);
        assert_eq!(o.market, Some(Market::Stock));
        assert!(run(&["--url", "ws://a/", "--stock-url", "ws://b/"]).is_err());
        assert!(run(&["--demo", "--forex-url", "ws://b/"]).is_err());
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
        assert_eq!(urls(&o), vec![(FOREX_URL, None)]);
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
