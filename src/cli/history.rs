//! `history`'s flags, checked together into [`HistoryOptions`].

use std::time::Duration;

use super::error::{Conflict, UsageError};
use super::raw::{RawFlags, check_range};
use crate::form::Columns;
use crate::history::HistoryOptions;
use crate::wire::kline::KlineInterval;
use crate::wire::symbol::{Feed, Market, Symbol};

/// `history`'s options: the symbols (each code once), the K-line interval,
/// the span, where the bars go and how fast to ask.
pub(super) fn finish_history(
    g: RawFlags,
    positional: Vec<String>,
) -> Result<HistoryOptions, UsageError> {
    let mut symbols: Vec<Symbol> = Vec::new();
    for arg in positional {
        let s = Symbol::parse(&arg)?;
        if s.feed != Feed::Trades {
            return Err(UsageError::HistoryDepth(s.spelling.to_string()));
        }
        if !symbols.iter().any(|t| t.code == s.code) {
            symbols.push(s);
        }
    }
    if symbols.is_empty() {
        return Err(UsageError::NoSymbols);
    }
    let interval = KlineInterval::parse(g.bars.as_deref().unwrap_or("1m"))?;
    let stocks: Vec<String> = symbols
        .iter()
        .filter(|s| Market::of_code(&s.code) == Market::Stock)
        .map(|s| s.spelling.to_string())
        .collect();
    if !interval.for_stocks() && !stocks.is_empty() {
        return Err(UsageError::KlineForStocks {
            interval: interval.name(),
            symbols: stocks,
        });
    }
    check_range(g.from, g.to)?;
    if g.demo && (g.stock_api.is_some() || g.forex_api.is_some()) {
        return Err(Conflict::DemoWithApi.into());
    }
    let format = g.format.unwrap_or_default();
    let columns = match &g.fields {
        Some(list) => Columns::with_fields(format, true, list)?,
        None => Columns::all(format, true),
    };
    if g.output.is_some()
        && columns.format != crate::form::Format::Parquet
        && let Some(key) = ["type", "code", "interval", "start"]
            .into_iter()
            .find(|k| !columns.names().any(|n| n == *k))
    {
        return Err(Conflict::OutputWithoutKey(key).into());
    }
    Ok(HistoryOptions {
        symbols,
        interval,
        from: g.from,
        to: g.to,
        output: g.output,
        columns,
        plan: g.plan,
        stock_api: g.stock_api,
        forex_api: g.forex_api,
        token_file: g.token_file,
        demo: g.demo,
        timeout: g.connect_timeout.unwrap_or(Duration::from_secs(10)),
    })
}
