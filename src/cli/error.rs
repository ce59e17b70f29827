//! [`UsageError`]: everything on the command line (or about the token)
//! that stops the tool before it starts, with exit status 2; flags that do
//! not go together ([`Conflict`]) and the token ([`TokenError`]) are kinds
//! of it, and each parser's own error (a symbol, `--bars`, `--output`, …)
//! converts into it. Each message says what to do: the valid forms, or the
//! flag to use.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::flags::{GenerateError, PLAN_NAMES};
use crate::bars::interval::IntervalError;
use crate::capture::pattern::PatternError;
use crate::form::{FieldsError, FormatError};
use crate::replay::pace::{SpeedError, TimeError};
use crate::serve::DEFAULT_LISTEN;
use crate::wire::kline::KlineIntervalError;
use crate::wire::symbol::SymbolError;

/// Why the command line (or the token) was refused.
#[derive(Debug)]
pub enum UsageError {
    /// A flag the table does not know (or `--demo=yes`: one that takes no
    /// value, given one).
    UnknownFlag(String),
    /// A flag of another mode, given to `mode` (`replay`, `serve`).
    NotAFlagOf {
        /// The flag as typed.
        flag: String,
        /// The mode's word.
        mode: &'static str,
    },
    /// A flag of `replay` or `serve` given to the live stream.
    BelongsTo {
        /// The flag as typed.
        flag: String,
        /// The words of the modes it belongs to.
        modes: Vec<&'static str>,
    },
    /// A flag that takes a value, last on the line.
    NeedsValue {
        /// The flag as typed.
        flag: String,
        /// The value's name in the help: `SECS`.
        value: &'static str,
    },
    /// A bad symbol among the live stream's arguments.
    Symbol(SymbolError),
    /// Seconds that are not a number.
    Seconds {
        /// The flag.
        flag: String,
        /// What was given.
        given: String,
    },
    /// Seconds outside 0 (excluded) to 86400.
    SecondsRange {
        /// The flag.
        flag: String,
        /// What was given.
        given: String,
    },
    /// A count that is not a whole number from 1 to `max`.
    Count {
        /// The flag.
        flag: String,
        /// What was given.
        given: String,
        /// The largest count taken.
        max: usize,
    },
    /// `--bar-grace` that is not seconds from 0 to 86400.
    BarGrace(String),
    /// `--market` that is neither `stock` nor `forex`.
    Market(String),
    /// `--plan` that names no plan.
    Plan(String),
    /// `--listen` that is not `HOST:PORT`.
    Listen(String),
    /// `--generate` that names nothing it prints.
    Generate(GenerateError),
    /// `--bars` that names no interval.
    Interval(IntervalError),
    /// `history --bars` that names no K-line interval.
    KlineInterval(KlineIntervalError),
    /// `history --bars 2h` or `4h` with stock codes (their spellings).
    KlineForStocks {
        /// The interval.
        interval: &'static str,
        /// The stock symbols asked for.
        symbols: Vec<String>,
    },
    /// `history` without a symbol.
    NoSymbols,
    /// `history` with a depth symbol (its spelling).
    HistoryDepth(String),
    /// An HTTP API base that is not `http://` or `https://`.
    ApiScheme(String),
    /// `--output` with a bad pattern.
    Pattern(PatternError),
    /// `--speed` that is neither `max` nor a factor.
    Speed(SpeedError),
    /// `--from` or `--to` that is not a time.
    Time(TimeError),
    /// `--format` that is neither `jsonl` nor `csv`.
    Format(FormatError),
    /// `--fields` with a bad list.
    Fields(FieldsError),
    /// `--heartbeat` under a second.
    HeartbeatTooShort,
    /// `--heartbeat` at or past the server's cut-off.
    HeartbeatPastCutoff {
        /// `--heartbeat`.
        heartbeat: Duration,
        /// The server's cut-off.
        cutoff: Duration,
    },
    /// A URL that is not `ws://` or `wss://`.
    UrlScheme(String),
    /// A URL that carries `token=`.
    UrlWithToken,
    /// `replay` or `serve` (`mode`) without a capture file.
    NoFiles(&'static str),
    /// A `replay` or `serve` (`mode`) argument that names no file.
    NoSuchFile {
        /// The mode's word.
        mode: &'static str,
        /// The argument.
        file: String,
    },
    /// Flags that do not go together.
    Conflict(Conflict),
    /// The token cannot be had.
    Token(TokenError),
    /// A `replay` argument after the files that is no symbol either.
    NeitherFileNorSymbol {
        /// The argument.
        arg: String,
        /// Why it is no symbol.
        error: SymbolError,
    },
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use UsageError as E;
        match self {
            E::UnknownFlag(flag) => write!(f, "unknown flag {flag} (see --help)"),
            E::NotAFlagOf { flag, mode } => {
                write!(f, "{flag} is not a flag of {mode} (see --help)")
            }
            E::BelongsTo { flag, modes } => {
                write!(f, "{flag} belongs to {} (see --help)", modes.join(" and "))
            }
            E::NeedsValue { flag, value } => write!(f, "{flag} needs a value: {flag} {value}"),
            E::Symbol(e) => write!(f, "{e}"),
            E::Seconds { flag, given } => {
                write!(f, "{flag} needs a number of seconds, got {given:?}")
            }
            E::SecondsRange { flag, given } => {
                write!(f, "{flag} must be between 0 and 86400 seconds, got {given}")
            }
            E::Count { flag, given, max } => {
                write!(f, "{flag} needs a count from 1 to {max}, got {given:?}")
            }
            E::BarGrace(given) => {
                write!(
                    f,
                    "--bar-grace needs seconds from 0 to 86400, got {given:?}"
                )
            }
            E::Market(given) => write!(f, "--market must be stock or forex, got {given:?}"),
            E::Plan(given) => write!(
                f,
                "--plan must be one of {}, got {given:?}",
                PLAN_NAMES.join(", ")
            ),
            E::Listen(given) => write!(
                f,
                "--listen needs HOST:PORT, like {DEFAULT_LISTEN} (port 0: any free one), got {given:?}"
            ),
            E::Generate(e) => write!(f, "{e}"),
            E::Interval(e) => write!(f, "--bars: {e}"),
            E::KlineInterval(_)
            | E::KlineForStocks { .. }
            | E::NoSymbols
            | E::HistoryDepth(_)
            | E::ApiScheme(_) => self.history(f),
            E::Pattern(e) => write!(f, "{e}"),
            E::Speed(e) => write!(f, "{e}"),
            E::Time(e) => write!(f, "{e}"),
            E::Format(e) => write!(f, "{e}"),
            E::Fields(e) => write!(f, "{e}"),
            E::HeartbeatTooShort => write!(
                f,
                "--heartbeat must be at least 1 second (AllTick allows one request per second)"
            ),
            E::HeartbeatPastCutoff { heartbeat, cutoff } => write!(
                f,
                "--heartbeat ({} s) must stay below the server's {} s cut-off: AllTick closes a connection that sent no heartbeat for {} s",
                heartbeat.as_secs_f64(),
                cutoff.as_secs(),
                cutoff.as_secs()
            ),
            E::UrlScheme(url) => {
                write!(f, "the URL must start with ws:// or wss://, got {url:?}")
            }
            E::UrlWithToken => write!(
                f,
                "the URL must not carry the token: set ALLTICK_TOKEN or use --token-file"
            ),
            E::NoFiles(mode) => write!(f, "{mode} needs at least one capture FILE (see --help)"),
            E::NoSuchFile { mode, file } => write!(f, "{mode}: no such file: {file}"),
            E::Conflict(e) => write!(f, "{e}"),
            E::Token(e) => write!(f, "{e}"),
            E::NeitherFileNorSymbol { arg, error } => {
                write!(f, "replay: {arg} is neither a file nor a symbol: {error}")
            }
        }
    }
}

impl UsageError {
    /// The messages of `history`'s own refusals.
    fn history(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use UsageError as E;
        match self {
            E::KlineInterval(e) => write!(f, "--bars: {e}"),
            E::KlineForStocks { interval, symbols } => write!(
                f,
                "--bars {interval}: AllTick has no {interval} K-lines for stocks ({}); use 1m, 5m, 15m, 30m, 1h, 1d, 1w or 1M, or ask for forex, metal or crypto codes",
                symbols.join(", ")
            ),
            E::NoSymbols => write!(
                f,
                "history needs at least one symbol: alltick-stream history NASDAQ:AAPL EURUSD (see --help)"
            ),
            E::HistoryDepth(spelling) => write!(
                f,
                "history: {spelling}: AllTick keeps no depth history; give the symbol without @depth"
            ),
            E::ApiScheme(url) => write!(
                f,
                "the HTTP API base must start with http:// or https://, got {url:?}"
            ),
            _ => Ok(()),
        }
    }
}

/// Flags that do not go together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// `--bar-grace` without `--bars`.
    GraceWithoutBars,
    /// `--fsync` without `--output`.
    FsyncWithoutOutput,
    /// `--output` with `--resume`.
    OutputWithResume,
    /// `--format csv` or `parquet` (its name) with a depth symbol (its
    /// spelling).
    DepthHasNoForm {
        /// `csv` or `parquet`.
        format: &'static str,
        /// The depth symbol.
        spelling: String,
    },
    /// `--from` after `--to`.
    FromAfterTo {
        /// `--from`, ms.
        from: u64,
        /// `--to`, ms.
        to: u64,
    },
    /// `--stale-after` not above `--heartbeat`.
    StaleAfterTooShort {
        /// `--stale-after`.
        stale_after: Duration,
        /// `--heartbeat`.
        heartbeat: Duration,
    },
    /// `--demo` with `--url`, `--stock-url` or `--forex-url`.
    DemoWithUrl,
    /// `--url` with `--stock-url` or `--forex-url`.
    UrlWithEndpointUrls,
    /// `history --demo` with `--stock-api` or `--forex-api`.
    DemoWithApi,
    /// `replay --output` with lines that do not say their time (CSV,
    /// `--fields`).
    ReplayOutputLean,
    /// `--resume` with `--format parquet`: a Parquet file is not read back.
    ParquetWithResume,
    /// `history --output` with `--fields` that leave out a key the files
    /// are read back by.
    OutputWithoutKey(&'static str),
    /// `--heal` without `--bars`, or `--heal-wait` without `--heal`.
    HealWithoutBars(&'static str),
    /// `--heal` with bars AllTick has no K-lines of (their name).
    HealInterval(&'static str),
    /// `--heal --bars 4h` with stock symbols (their spellings).
    HealForStocks(Vec<String>),
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Conflict as C;
        match self {
            C::GraceWithoutBars => write!(f, "--bar-grace applies to bars: give --bars INTERVAL"),
            C::FsyncWithoutOutput => {
                write!(
                    f,
                    "--fsync applies to --output files: give --output PATTERN"
                )
            }
            C::OutputWithResume => write!(
                f,
                "--output reads its own files back on start: do not combine it with --resume"
            ),
            C::DepthHasNoForm { format, spelling } => write!(
                f,
                "--format {format} writes trade and bar lines only: depth ({spelling}) has no {} form; use jsonl",
                if *format == "csv" { "CSV" } else { "Parquet" }
            ),
            C::FromAfterTo { from, to } => write!(
                f,
                "--from ({from}) is after --to ({to}): give a --from at or before --to"
            ),
            C::StaleAfterTooShort {
                stale_after,
                heartbeat,
            } => write!(
                f,
                "--stale-after ({} s) must exceed --heartbeat ({} s)",
                stale_after.as_secs_f64(),
                heartbeat.as_secs_f64()
            ),
            C::DemoWithUrl => write!(
                f,
                "--demo runs its own server; do not combine it with --url"
            ),
            C::ParquetWithResume => write!(
                f,
                "--resume reads JSON or CSV lines back: with --format parquet use --output PATTERN, whose staging files a restart reads"
            ),
            C::ReplayOutputLean => write!(
                f,
                "replay --output names files by each line's time: write whole JSON lines (no --fields, --format jsonl) or --format parquet"
            ),
            C::DemoWithApi => write!(
                f,
                "--demo runs its own server; do not combine it with --stock-api or --forex-api"
            ),
            C::HealWithoutBars("--heal") => write!(
                f,
                "--heal fills gaps in bars: give --bars 1m (or 5m, 15m, 30m, 1h, 4h, 1d)"
            ),
            C::HealWithoutBars(flag) => write!(f, "{flag} applies to --heal"),
            C::HealForStocks(symbols) => write!(
                f,
                "--heal: AllTick has no 4h K-lines for stocks ({}); use --bars 1h or 1d with stocks, or heal 4h bars of forex, metal or crypto codes only",
                symbols.join(", ")
            ),
            C::HealInterval(name) => write!(
                f,
                "--heal: AllTick has no {name} K-lines to heal {name} bars with; use --bars 1m, 5m, 15m, 30m, 1h, 4h (not for stocks) or 1d"
            ),
            C::OutputWithoutKey(key) => write!(
                f,
                "history --output reads its files back by type, code, interval and start: --fields must keep {key}"
            ),
            C::UrlWithEndpointUrls => write!(
                f,
                "--url is one endpoint for everything: do not combine it with --stock-url or --forex-url"
            ),
        }
    }
}

/// Why there is no usable token.
#[derive(Debug)]
pub enum TokenError {
    /// The token file cannot be read.
    Unreadable {
        /// `--token-file`.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// Neither `ALLTICK_TOKEN` nor `--token-file`.
    Missing,
    /// The token is blank.
    Empty,
    /// The token holds spaces or control characters.
    Spaces,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TokenError as T;
        match self {
            T::Unreadable { path, error } => {
                write!(f, "cannot read --token-file {}: {error}", path.display())
            }
            T::Missing => write!(
                f,
                "no token: set ALLTICK_TOKEN or pass --token-file PATH (or try --demo)"
            ),
            T::Empty => write!(
                f,
                "the token is empty: put AllTick's token in ALLTICK_TOKEN or the --token-file"
            ),
            T::Spaces => write!(
                f,
                "the token contains spaces or control characters: check ALLTICK_TOKEN or the --token-file"
            ),
        }
    }
}

impl std::error::Error for Conflict {}

/// Its message carries the I/O error's text: nothing is left for `source`.
impl std::error::Error for TokenError {}

/// Its message carries its parts' text: nothing is left for `source`.
impl std::error::Error for UsageError {}

/// Each part's own error, wrapped: `?` turns it into a [`UsageError`].
macro_rules! wrap {
    ($($variant:ident($error:ty)),* $(,)?) => {
        $(impl From<$error> for UsageError {
            fn from(e: $error) -> UsageError {
                UsageError::$variant(e)
            }
        })*
    };
}

wrap!(
    Conflict(Conflict),
    Token(TokenError),
    Symbol(SymbolError),
    Generate(GenerateError),
    Interval(IntervalError),
    KlineInterval(KlineIntervalError),
    Pattern(PatternError),
    Speed(SpeedError),
    Time(TimeError),
    Format(FormatError),
    Fields(FieldsError),
);
