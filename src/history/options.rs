//! What `history` was asked for ([`HistoryOptions`]), its exit statuses
//! and AllTick's bases.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::capture::pattern::Pattern;
use crate::form::Columns;
use crate::wire::kline::KlineInterval;
use crate::wire::plan::Plan;
use crate::wire::symbol::{Market, Symbol};

/// AllTick's HTTP base for stocks and indices.
pub const STOCK_API: &str = "https://quote.alltick.co/quote-stock-b-api";
/// AllTick's HTTP base for forex, metals and crypto.
pub const FOREX_API: &str = "https://quote.alltick.co/quote-b-api";

/// Exit status: every code done.
pub const EXIT_DONE: i32 = 0;
/// Exit status: the run cannot go on (token refused, output unwritable).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status: bad arguments, or no token.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: some codes failed (each said); the others are complete.
pub const EXIT_SOME_FAILED: i32 = 3;
/// Exit status: stopped before every code was done, at the plan's daily
/// allowance (or the server's refusals for rate); the next run continues.
pub const EXIT_UNFINISHED: i32 = 4;

impl HistoryOptions {
    /// The form of its lines (bars, `--fields`, `--format`).
    pub fn form(&self) -> crate::form::LineForm {
        crate::form::LineForm {
            columns: self.columns.clone(),
            ..crate::form::LineForm::default()
        }
    }
}

/// What `history` was asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryOptions {
    /// The symbols, each code once.
    pub symbols: Vec<Symbol>,
    /// `--bars`.
    pub interval: KlineInterval,
    /// `--from`, ms.
    pub from: Option<u64>,
    /// `--to`, ms.
    pub to: Option<u64>,
    /// `--output`.
    pub output: Option<Pattern>,
    /// `--fields`, `--format` (bar keys).
    pub columns: Columns,
    /// `--plan`; `None`: free (with `--demo`: professional).
    pub plan: Option<&'static Plan>,
    /// `--stock-api`.
    pub stock_api: Option<String>,
    /// `--forex-api`.
    pub forex_api: Option<String>,
    /// `--token-file`.
    pub token_file: Option<PathBuf>,
    /// `--demo`.
    pub demo: bool,
    /// `--connect-timeout`: the bound on one request.
    pub timeout: Duration,
}

/// Whether `code` goes to the stock base.
pub(super) fn is_stock(code: &str) -> bool {
    Market::of_code(code) == Market::Stock
}

/// Time since `start` in ms: the tool's clock.
pub(super) fn ms_since(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// `--heal`'s options (live): how long a held bar waits, the plan whose
/// HTTP limits pace the requests, the API's bases.
#[derive(Clone, Debug, PartialEq)]
pub struct HealOptions {
    /// `--heal-wait`; None: by the plan's pace.
    pub wait: Option<std::time::Duration>,
    /// `--plan`; None: free (with `--demo`: professional).
    pub plan: Option<&'static crate::wire::plan::Plan>,
    /// `--stock-api`.
    pub stock_api: Option<String>,
    /// `--forex-api`.
    pub forex_api: Option<String>,
    /// `--connect-timeout`: the bound on one request.
    pub timeout: std::time::Duration,
}
