//! The flags as read, one by one ([`RawFlags`]), before each mode checks
//! them together; and the small readers of their values.

use std::path::PathBuf;
use std::time::Duration;

use super::error::{Conflict, UsageError};
use super::flags::{Flag, Generate};
use crate::bars::Interval;
use crate::capture::pattern::Pattern;
use crate::form::{Columns, Format, LineForm};
use crate::replay::pace::{Speed, parse_time};
use crate::wire::plan::Plan;
use crate::wire::symbol::{Market, Symbol};

fn seconds(flag: &str, v: &str) -> Result<Duration, UsageError> {
    let secs: f64 = v.parse().map_err(|_| UsageError::Seconds {
        flag: flag.to_string(),
        given: v.to_string(),
    })?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(UsageError::SecondsRange {
            flag: flag.to_string(),
            given: v.to_string(),
        });
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--bar-grace`: seconds, 0 included.
fn grace(v: &str) -> Result<Duration, UsageError> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(UsageError::BarGrace(v.to_string())),
    }
}

/// `--bars`, `--bar-grace`, `--fields` and `--format`, checked together.
pub(super) fn form(g: &RawFlags) -> Result<LineForm, UsageError> {
    let format = g.format.unwrap_or_default();
    let interval = g.bars.as_deref().map(Interval::parse).transpose()?;
    let bars = interval.is_some();
    let columns = match &g.fields {
        Some(list) => Columns::with_fields(format, bars, list)?,
        None => Columns::all(format, bars),
    };
    if g.bar_grace.is_some() && !bars {
        return Err(Conflict::GraceWithoutBars.into());
    }
    Ok(LineForm {
        columns,
        bars: interval,
        bar_grace: g.bar_grace.unwrap_or(Duration::from_secs(2)),
    })
}

fn count(flag: &str, v: &str, max: usize) -> Result<usize, UsageError> {
    v.parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| UsageError::Count {
            flag: flag.to_string(),
            given: v.to_string(),
            max,
        })
}

/// A flag that answers at once, ending the parsing.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// `--help`.
    Help,
    /// `--version`.
    Version,
    /// `--generate KIND`.
    Generate(Generate),
}

/// The flags as raw, before they are checked together.
#[derive(Debug, Default)]
pub(super) struct RawFlags {
    pub(super) symbols: Vec<Symbol>,
    pub(super) url: Option<String>,
    pub(super) stock_url: Option<String>,
    pub(super) forex_url: Option<String>,
    pub(super) market: Option<Market>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) heartbeat: Option<Duration>,
    pub(super) stale_after: Option<Duration>,
    pub(super) idle_close: Option<Duration>,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) queue: Option<usize>,
    pub(super) connections: Option<usize>,
    pub(super) max_symbols: Option<usize>,
    pub(super) plan: Option<&'static Plan>,
    pub(super) stock_api: Option<String>,
    pub(super) forex_api: Option<String>,
    pub(super) stats: Option<Duration>,
    pub(super) output: Option<Pattern>,
    pub(super) fsync: Option<Duration>,
    pub(super) resume: Option<PathBuf>,
    pub(super) gaps: bool,
    pub(super) heal: bool,
    pub(super) heal_wait: Option<Duration>,
    pub(super) speed: Option<Speed>,
    pub(super) from: Option<u64>,
    pub(super) to: Option<u64>,
    pub(super) listen: Option<String>,
    /// `--bars` as given: its intervals depend on the mode.
    pub(super) bars: Option<String>,
    pub(super) bar_grace: Option<Duration>,
    pub(super) fields: Option<String>,
    pub(super) format: Option<Format>,
    pub(super) demo: bool,
}

impl RawFlags {
    /// Take one flag of the table with its value (`None` for flags without
    /// one). `Some` is an answer that ends the parsing (`--help`).
    pub(super) fn set(
        &mut self,
        flag: &Flag,
        value: Option<String>,
    ) -> Result<Option<Answer>, UsageError> {
        let name = &flag.long_name();
        let value = value.as_deref().unwrap_or("");
        match flag.long {
            "help" => return Ok(Some(Answer::Help)),
            "version" => return Ok(Some(Answer::Version)),
            "generate" => return Ok(Some(Answer::Generate(Generate::from_name(value)?))),
            "demo" => self.demo = true,
            "url" => self.url = Some(value.into()),
            "stock-url" => self.stock_url = Some(value.into()),
            "stock-api" => self.stock_api = Some(api_url(value)?),
            "forex-api" => self.forex_api = Some(api_url(value)?),
            "forex-url" => self.forex_url = Some(value.into()),
            "market" => {
                self.market = Some(match value {
                    "stock" => Market::Stock,
                    "forex" => Market::Forex,
                    other => return Err(UsageError::Market(other.to_string())),
                })
            }
            "token-file" => self.token_file = Some(PathBuf::from(value)),
            "heartbeat" => self.heartbeat = Some(seconds(name, value)?),
            "stale-after" => self.stale_after = Some(seconds(name, value)?),
            "idle-close" => self.idle_close = Some(seconds(name, value)?),
            "connect-timeout" => self.connect_timeout = Some(seconds(name, value)?),
            "queue" => self.queue = Some(count(name, value, 10_000_000)?),
            "connections" => self.connections = Some(count(name, value, 100)?),
            "max-symbols" => self.max_symbols = Some(count(name, value, 1_000_000)?),
            "stats" => self.stats = Some(seconds(name, value)?),
            "output" => self.output = Some(Pattern::parse(value)?),
            "fsync" => self.fsync = Some(seconds(name, value)?),
            "resume" => self.resume = Some(PathBuf::from(value)),
            "gaps" => self.gaps = true,
            "heal" => self.heal = true,
            "heal-wait" => self.heal_wait = Some(seconds(name, value)?),
            "speed" => self.speed = Some(Speed::parse(value)?),
            "from" => self.from = Some(parse_time(name, value)?),
            "to" => self.to = Some(parse_time(name, value)?),
            "listen" => self.listen = Some(listen_address(value)?),
            "bars" => self.bars = Some(value.into()),
            "bar-grace" => self.bar_grace = Some(grace(value)?),
            "fields" => self.fields = Some(value.into()),
            "format" => self.format = Some(Format::parse(value)?),
            "plan" => {
                self.plan = Some(
                    crate::wire::plan::find(value)
                        .ok_or_else(|| UsageError::Plan(value.to_string()))?,
                );
            }
            // A row of the table without its arm here; the tests catch it.
            _ => return Err(UsageError::UnknownFlag(name.to_string())),
        }
        Ok(None)
    }
}

/// `--listen`'s `HOST:PORT` (an IPv6 host in brackets: `[::1]:8765`).
fn listen_address(value: &str) -> Result<String, UsageError> {
    let port = value.rsplit_once(':').filter(|(host, _)| !host.is_empty());
    match port.map(|(_, p)| p.parse::<u16>()) {
        Some(Ok(_)) => Ok(value.to_string()),
        _ => Err(UsageError::Listen(value.to_string())),
    }
}

/// `--from` at or before `--to`.
pub(super) fn check_range(from: Option<u64>, to: Option<u64>) -> Result<(), UsageError> {
    match (from, to) {
        (Some(from), Some(to)) if from > to => Err(Conflict::FromAfterTo { from, to }.into()),
        _ => Ok(()),
    }
}

/// An HTTP API base: `http://` or `https://`, without the token.
fn api_url(u: &str) -> Result<String, UsageError> {
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        return Err(UsageError::ApiScheme(u.to_string()));
    }
    if u.contains("token=") {
        return Err(UsageError::UrlWithToken);
    }
    Ok(u.to_string())
}
