//! The command line: what the flags mean ([`parse`]: each flag read on its
//! own into `RawFlags`, then checked together into [`Options`]), why they
//! were refused ([`UsageError`]), and everything generated from their one
//! table ([`flags::FLAGS`]): `--help`, the man page and the shell
//! completions.
//!
//! - [`flags`]: the table, one row per flag with its help ([`prose`]: the
//!   sections around it);
//! - [`help`](mod@help): the `--help` text;
//! - [`generate`](mod@generate): `--generate`: the man page and the completion scripts;
//! - `error`: [`UsageError`] and its kinds;
//! - `history`: `history`'s flags checked together.

mod error;
pub mod flags;
pub(crate) mod generate;
pub(crate) mod help;
mod history;
pub(crate) mod prose;
mod raw;

use std::path::PathBuf;
use std::time::Duration;

use crate::capture::pattern::Pattern;
use crate::form::LineForm;
use crate::history::HistoryOptions;
use crate::replay::ReplayOptions;
use crate::replay::pace::Speed;
use crate::serve::{DEFAULT_LISTEN, ServeOptions};
use crate::wire::symbol::{Feed, Market, Symbol};
pub use crate::wire::url_encode;
use flags::Mode;
use history::finish_history;
use raw::{Answer, RawFlags, check_range, form};

pub use error::{Conflict, TokenError, UsageError};
pub use flags::{Generate, PLAN_NAMES};
pub use generate::generate;
pub use help::help;

/// AllTick's stock endpoint (US, HK, CN stocks and indices).
pub const STOCK_URL: &str = "wss://quote.alltick.co/quote-stock-b-ws-api";
/// AllTick's forex / metals / crypto / CFD endpoint.
pub const FOREX_URL: &str = "wss://quote.alltick.co/quote-b-ws-api";

/// Default output queue length, in ticks.
pub const DEFAULT_QUEUE: usize = 16_384;

/// AllTick closes a connection that sent no heartbeat for this long, so the
/// heartbeat period must stay below it.
pub const SERVER_CUTOFF: Duration = Duration::from_secs(30);

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
    /// `--token-file`, if raw.
    pub token_file: Option<PathBuf>,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// Liveness limit.
    pub stale_after: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// How long a connection with nothing to carry stays open.
    pub idle_close: Duration,
    /// Output queue length.
    pub queue: usize,
    /// Most connections per endpoint.
    pub connections: usize,
    /// Codes per connection per kind, if limited.
    pub max_symbols: Option<usize>,
    /// Period of the `--stats` line, if asked for.
    pub stats: Option<Duration>,
    /// `--output`: the files lines go to (else stdout).
    pub output: Option<Pattern>,
    /// `--fsync`: how often written lines are put on disk.
    pub fsync: Duration,
    /// `--resume FILE`: a capture whose tail says what was written.
    pub resume: Option<PathBuf>,
    /// `--gaps`: mark where the data is incomplete.
    pub gaps: bool,
    /// `--heal`: fill the bars gaps touched with K-lines.
    pub heal: Option<crate::history::HealOptions>,
    /// `--bars`, `--fields`, `--format`: what the lines are made of.
    pub form: LineForm,
    /// Run against the built-in simulator.
    pub demo: bool,
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// Run with these options.
    Run(Box<Options>),
    /// `replay`: a capture to stdout.
    Replay(ReplayOptions),
    /// `serve`: a capture as an AllTick server.
    Serve(ServeOptions),
    /// `history`: AllTick's K-lines over HTTP.
    History(Box<HistoryOptions>),
    /// Print help and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
    /// Print a man page or a completion script and exit 0.
    Generate(Generate),
}

/// Parse the arguments (without the program name). Only the flags of
/// [`flags::FLAGS`] are known; whether one takes a value is read there.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, UsageError> {
    let mut args = args.into_iter().peekable();
    let mode = match args.peek().map(String::as_str) {
        Some("replay") => Mode::Replay,
        Some("serve") => Mode::Serve,
        Some("history") => Mode::History,
        _ => Mode::Live,
    };
    if mode != Mode::Live {
        args.next();
    }
    let mut raw = RawFlags::default();
    let mut positional: Vec<String> = Vec::new();
    let mut only_symbols = false;
    while let Some(arg) = args.next() {
        if only_symbols || !arg.starts_with('-') || arg == "-" {
            if mode == Mode::Live {
                raw.symbols.push(Symbol::parse(&arg)?);
            } else {
                positional.push(arg);
            }
            continue;
        }
        if arg == "--" {
            only_symbols = true;
            continue;
        }
        let (word, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (arg.as_str(), None),
        };
        let unknown = || UsageError::UnknownFlag(word.to_string());
        let flag = flags::find(word).ok_or_else(unknown)?;
        if !flag.modes.contains(&mode) {
            return Err(match mode.word() {
                Some(m) => UsageError::NotAFlagOf {
                    flag: word.to_string(),
                    mode: m,
                },
                None => UsageError::BelongsTo {
                    flag: word.to_string(),
                    modes: flag.modes.iter().filter_map(|m| m.word()).collect(),
                },
            });
        }
        let value = match (flag.value, inline) {
            (None, None) => None,
            // `--demo=yes`: there is no flag `--demo` that takes a value.
            (None, Some(_)) => return Err(unknown()),
            (Some(_), Some(v)) => Some(v.to_string()),
            (Some(value), None) => Some(args.next().ok_or_else(|| UsageError::NeedsValue {
                flag: arg.clone(),
                value: value.name,
            })?),
        };
        if let Some(answer) = raw.set(flag, value)? {
            return Ok(match answer {
                Answer::Help => Parsed::Help,
                Answer::Version => Parsed::Version,
                Answer::Generate(what) => Parsed::Generate(what),
            });
        }
    }
    match mode {
        Mode::Live => finish(raw).map(|o| Parsed::Run(Box::new(o))),
        Mode::Replay => finish_replay(raw, positional).map(Parsed::Replay),
        Mode::Serve => finish_serve(raw, positional).map(Parsed::Serve),
        Mode::History => finish_history(raw, positional).map(|h| Parsed::History(Box::new(h))),
    }
}

/// `serve`'s options: the files.
fn finish_serve(g: RawFlags, positional: Vec<String>) -> Result<ServeOptions, UsageError> {
    let mut files = Vec::new();
    for arg in positional {
        let path = PathBuf::from(&arg);
        if !path.is_file() {
            return Err(UsageError::NoSuchFile {
                mode: "serve",
                file: arg,
            });
        }
        files.push(path);
    }
    if files.is_empty() {
        return Err(UsageError::NoFiles("serve"));
    }
    check_range(g.from, g.to)?;
    Ok(ServeOptions {
        files,
        listen: g.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
        speed: g.speed.unwrap_or(Speed::Times(1.0)),
        from: g.from,
        to: g.to,
        token_file: g.token_file,
    })
}

/// `replay`'s options: the files first, then the symbols.
fn finish_replay(g: RawFlags, positional: Vec<String>) -> Result<ReplayOptions, UsageError> {
    let mut files = Vec::new();
    let mut symbols = Vec::new();
    for arg in positional {
        let path = PathBuf::from(&arg);
        if symbols.is_empty() && path.is_file() {
            files.push(path);
            continue;
        }
        if symbols.is_empty()
            && (arg.contains('/') || arg.ends_with(".jsonl") || arg.ends_with(".gz"))
        {
            return Err(UsageError::NoSuchFile {
                mode: "replay",
                file: arg,
            });
        }
        match Symbol::parse(&arg) {
            Ok(s) => symbols.push(s),
            Err(error) => return Err(UsageError::NeitherFileNorSymbol { arg, error }),
        }
    }
    if files.is_empty() {
        return Err(UsageError::NoFiles("replay"));
    }
    check_range(g.from, g.to)?;
    let form = form(&g)?;
    let output = match (g.output, form.columns.format) {
        (Some(p), crate::form::Format::Parquet) => {
            Some(crate::capture::parquet::staging_pattern(&p)?)
        }
        (Some(_), _) if !form.columns.is_full(form.bars.is_some()) => {
            return Err(Conflict::ReplayOutputLean.into());
        }
        (output, _) => output,
    };
    Ok(ReplayOptions {
        output,
        form,
        files,
        symbols,
        speed: g.speed.unwrap_or(Speed::Times(1.0)),
        from: g.from,
        to: g.to,
    })
}

/// Check the flags together and settle the defaults.
fn finish(g: RawFlags) -> Result<Options, UsageError> {
    let heartbeat = g.heartbeat.unwrap_or(Duration::from_secs(10));
    let stale_after = g.stale_after.unwrap_or(Duration::from_secs(30));
    check_timing(heartbeat, stale_after)?;
    let endpoints = endpoints(&g)?;
    if g.output.is_some() && g.resume.is_some() {
        return Err(Conflict::OutputWithResume.into());
    }
    if g.fsync.is_some() && g.output.is_none() {
        return Err(Conflict::FsyncWithoutOutput.into());
    }
    let (plan_connections, plan_max) = match g.plan {
        Some(p) => (Some(p.connections), Some(p.symbols)),
        None => (None, None),
    };
    let form = form(&g)?;
    if !form.takes_depth()
        && let Some(s) = g.symbols.iter().find(|s| s.feed != Feed::Trades)
    {
        return Err(Conflict::DepthHasNoForm {
            format: form.columns.format.name(),
            spelling: s.spelling.to_string(),
        }
        .into());
    }
    if form.columns.format == crate::form::Format::Parquet && g.resume.is_some() {
        return Err(Conflict::ParquetWithResume.into());
    }
    // Parquet: the lines go to staging files first (capture::parquet).
    let output = match (g.output.clone(), form.columns.format) {
        (Some(p), crate::form::Format::Parquet) => {
            Some(crate::capture::parquet::staging_pattern(&p)?)
        }
        (output, _) => output,
    };
    let heal = heal(&g, &form)?;
    Ok(Options {
        form,
        endpoints,
        market: g.market,
        token_file: g.token_file,
        heartbeat,
        stale_after,
        connect_timeout: g.connect_timeout.unwrap_or(Duration::from_secs(10)),
        idle_close: g.idle_close.unwrap_or(Duration::from_secs(60)),
        queue: g.queue.unwrap_or(DEFAULT_QUEUE),
        connections: g.connections.or(plan_connections).unwrap_or(1),
        max_symbols: g.max_symbols.or(plan_max),
        stats: g.stats,
        fsync: g.fsync.unwrap_or(Duration::from_secs(1)),
        output,
        resume: g.resume,
        gaps: g.gaps || g.heal,
        heal,
        demo: g.demo,
        symbols: g.symbols,
    })
}

/// `--heal` and its flags, checked with the bars asked for.
fn heal(
    g: &RawFlags,
    form: &crate::form::LineForm,
) -> Result<Option<crate::history::HealOptions>, UsageError> {
    if !g.heal {
        return match g.heal_wait {
            Some(_) => Err(Conflict::HealWithoutBars("--heal-wait").into()),
            None => Ok(None),
        };
    }
    let Some(interval) = form.bars else {
        return Err(Conflict::HealWithoutBars("--heal").into());
    };
    if crate::wire::kline::KlineInterval::parse(interval.name()).is_err() {
        return Err(Conflict::HealInterval(interval.name()).into());
    }
    let stocks: Vec<String> = (g.symbols.iter())
        .filter(|s| {
            crate::wire::symbol::Market::of_code(&s.code) == crate::wire::symbol::Market::Stock
        })
        .map(|s| s.spelling.to_string())
        .collect();
    if interval.name() == "4h" && !stocks.is_empty() {
        return Err(Conflict::HealForStocks(stocks).into());
    }
    if g.demo && (g.stock_api.is_some() || g.forex_api.is_some()) {
        return Err(Conflict::DemoWithApi.into());
    }
    Ok(Some(crate::history::HealOptions {
        wait: g.heal_wait,
        plan: g.plan,
        stock_api: g.stock_api.clone(),
        forex_api: g.forex_api.clone(),
        timeout: g.connect_timeout.unwrap_or(Duration::from_secs(10)),
    }))
}

fn check_timing(heartbeat: Duration, stale_after: Duration) -> Result<(), UsageError> {
    if heartbeat < Duration::from_secs(1) {
        return Err(UsageError::HeartbeatTooShort);
    }
    if heartbeat >= SERVER_CUTOFF {
        return Err(UsageError::HeartbeatPastCutoff {
            heartbeat,
            cutoff: SERVER_CUTOFF,
        });
    }
    if stale_after <= heartbeat {
        return Err(Conflict::StaleAfterTooShort {
            stale_after,
            heartbeat,
        }
        .into());
    }
    Ok(())
}

/// The endpoints the flags name: one for everything (`--url`, `--market`),
/// or AllTick's two with stock codes routed to the first.
fn endpoints(g: &RawFlags) -> Result<Vec<EndpointUrl>, UsageError> {
    let any_url = g.url.is_some() || g.stock_url.is_some() || g.forex_url.is_some();
    if g.demo {
        if any_url {
            return Err(Conflict::DemoWithUrl.into());
        }
        return Ok(Vec::new());
    }
    if g.url.is_some() && (g.stock_url.is_some() || g.forex_url.is_some()) {
        return Err(Conflict::UrlWithEndpointUrls.into());
    }
    let one = |name: &str, url: String| -> Result<Vec<EndpointUrl>, UsageError> {
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

fn check_url(u: String) -> Result<String, UsageError> {
    if !(u.starts_with("ws://") || u.starts_with("wss://")) {
        return Err(UsageError::UrlScheme(u));
    }
    if u.contains("token=") {
        return Err(UsageError::UrlWithToken);
    }
    Ok(u)
}

/// Read and check the token: `--token-file` wins over `ALLTICK_TOKEN`.
pub fn token(file: Option<&PathBuf>, env: Option<String>) -> Result<String, UsageError> {
    let raw = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|error| TokenError::Unreadable {
            path: path.clone(),
            error,
        })?,
        None => env.ok_or(TokenError::Missing)?,
    };
    let token = raw.trim();
    if token.is_empty() {
        return Err(TokenError::Empty.into());
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TokenError::Spaces.into());
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests;
