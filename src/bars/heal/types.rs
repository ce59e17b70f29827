//! What goes between the healer and the thread that fetches K-lines, and
//! what it releases to be written.

use std::sync::Arc;

use crate::bars::{Bar, Interval};
use crate::queue::Gap;

/// Bars asked for in one request (the API's `query_kline_num` allows 500).
pub const MAX_BARS: u64 = 499;

/// A K-line as the server sent it, checked: its values as JSON number
/// texts (open, high, low, close, volume, turnover).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KlineBar {
    /// Start, ms.
    pub start: u64,
    /// End (exclusive), ms.
    pub end: u64,
    /// Open, high, low, close, volume and turnover.
    pub values: [String; 6],
}

/// K-lines wanted: of `code`, the bars starting from `first` to `last`
/// (inclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Its answer carries it back.
    pub id: u64,
    /// AllTick's code.
    pub code: Arc<str>,
    /// The bars' interval.
    pub interval: Interval,
    /// The first bar's start, ms.
    pub first: u64,
    /// The last bar's start, ms.
    pub last: u64,
    /// The feed's clock when it was asked, ms.
    pub clock: u64,
}

/// What became of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server's final K-lines: every start from `from` to the request's
    /// last is settled by them (no K-line there: the server has no bar);
    /// the starts before `from` are beyond what it still has.
    Klines {
        /// The K-lines (any order; others than the span's are ignored).
        bars: Vec<KlineBar>,
        /// The first start the answer settles.
        from: u64,
    },
    /// No K-lines will come: why.
    GaveUp(String),
}

/// A request's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The request's id.
    pub id: u64,
    /// What it came to.
    pub outcome: Outcome,
}

/// A line to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release {
    /// A bar from trades.
    Bar(Bar),
    /// A K-line in place of a bar from trades.
    Kline {
        /// The code's label.
        symbol: Arc<str>,
        /// AllTick's code.
        code: Arc<str>,
        /// The bar.
        bar: KlineBar,
    },
    /// A gap line, its note saying whether its bars were healed.
    Gap(Gap),
}

/// An outage open or a gap being healed, as kept across a `kill -9`
/// ([`super::Healer::kept`], [`super::Healer::resume`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// Its codes.
    pub codes: Vec<String>,
    /// Its start on the feed's clock.
    pub from: u64,
    /// Its end on the feed's clock, once known.
    pub to: Option<u64>,
    /// Its gap line (None: an outage whose gap had not come).
    pub gap: Option<Gap>,
}
