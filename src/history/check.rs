//! A K-line as the server sent it, checked before it is written: its
//! start on the interval's grid, every value a plain unsigned decimal, and
//! its prices in order (low ≤ open, close ≤ high). A bar that breaks a rule
//! is dropped and said, never written and never mended.

use std::cmp::Ordering;
use std::fmt;

use crate::bars::exact;
use crate::wire::json::whole_number;
use crate::wire::kline::{KlineInterval, RawKline};

/// A final, checked K-line: the server's digits, times in ms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kline {
    /// Start, ms since the epoch.
    pub start: u64,
    /// End (exclusive), ms: by the interval, months by the calendar.
    pub end: u64,
    /// Open price, as sent.
    pub open: String,
    /// High price, as sent.
    pub high: String,
    /// Low price, as sent.
    pub low: String,
    /// Close price, as sent.
    pub close: String,
    /// Volume, as sent.
    pub volume: String,
    /// Turnover, as sent.
    pub turnover: String,
}

/// Why a K-line was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Broken {
    /// `timestamp` is not a whole number (of seconds, or milliseconds).
    Timestamp(String),
    /// The start is not on the interval's grid.
    OffGrid(u64),
    /// A value that is not a plain unsigned decimal.
    NotDecimal {
        /// The key.
        key: &'static str,
        /// Its text.
        text: String,
    },
    /// Prices out of order.
    Prices(String),
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broken::Timestamp(t) => write!(f, "timestamp {t:?} is not a whole number of seconds"),
            Broken::OffGrid(start) => write!(
                f,
                "start {} is off the interval's grid",
                crate::wire::calendar::iso(*start)
            ),
            Broken::NotDecimal { key, text } => write!(f, "{key} {text:?} is not a decimal"),
            Broken::Prices(what) => f.write_str(what),
        }
    }
}

/// A plain unsigned decimal: digits, perhaps a point and digits; no sign,
/// no exponent, no leading zero (JSON's grammar).
fn decimal(key: &'static str, text: &str) -> Result<(), Broken> {
    match whole_number(text.as_bytes()) {
        Some(n) if !n.negative && n.exp.is_empty() => Ok(()),
        _ => Err(Broken::NotDecimal {
            key,
            text: text.to_string(),
        }),
    }
}

fn order(a: &str, b: &str) -> Ordering {
    // Both were checked as decimals, which `cmp` always reads.
    exact::cmp(a.as_bytes(), b.as_bytes()).unwrap_or(Ordering::Equal)
}

/// Check `raw` as a bar of `interval`.
pub fn check(raw: RawKline, interval: KlineInterval) -> Result<Kline, Broken> {
    let secs: u64 = match raw.timestamp.bytes().all(|b| b.is_ascii_digit()) {
        true => raw.timestamp.parse().ok(),
        false => None,
    }
    .filter(|s| *s < u64::MAX / 1000)
    .ok_or_else(|| Broken::Timestamp(raw.timestamp.clone()))?;
    // Seconds, as the docs' example has it; a value only milliseconds can
    // be is read as milliseconds (the same rule as a push's `tick_time`).
    let start = crate::wire::protocol::to_millis(secs);
    if !interval.on_grid(start) {
        return Err(Broken::OffGrid(start));
    }
    decimal("open_price", &raw.open)?;
    decimal("high_price", &raw.high)?;
    decimal("low_price", &raw.low)?;
    decimal("close_price", &raw.close)?;
    decimal("volume", &raw.volume)?;
    decimal("turnover", &raw.turnover)?;
    let (h, l) = (&raw.high, &raw.low);
    if order(h, l) == Ordering::Less {
        return Err(Broken::Prices(format!("high {h} is below low {l}")));
    }
    for (name, p) in [("open", &raw.open), ("close", &raw.close)] {
        if order(p, l) == Ordering::Less || order(p, h) == Ordering::Greater {
            return Err(Broken::Prices(format!(
                "{name} {p} is outside low {l} .. high {h}"
            )));
        }
    }
    Ok(Kline {
        start,
        end: interval.end(start),
        open: raw.open,
        high: raw.high,
        low: raw.low,
        close: raw.close,
        volume: raw.volume,
        turnover: raw.turnover,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(ts: &str, o: &str, h: &str, l: &str, c: &str) -> RawKline {
        RawKline {
            timestamp: ts.into(),
            open: o.into(),
            high: h.into(),
            low: l.into(),
            close: c.into(),
            volume: "12".into(),
            turnover: "1234.50".into(),
        }
    }

    #[test]
    fn a_sound_bar_keeps_the_servers_digits() {
        let k = check(
            raw("1677829200", "136.421", "136.4220", "136.407", "136.41"),
            KlineInterval::M1,
        )
        .unwrap();
        assert_eq!((k.start, k.end), (1_677_829_200_000, 1_677_829_260_000));
        // The same start sent in milliseconds.
        let ms = raw("1677829200000", "136.421", "136.4220", "136.407", "136.41");
        assert_eq!(check(ms, KlineInterval::M1), Ok(k.clone()));
        assert_eq!(
            (k.high.as_str(), k.turnover.as_str()),
            ("136.4220", "1234.50")
        );
    }

    #[test]
    fn broken_bars_say_what_breaks_them() {
        let m1 = KlineInterval::M1;
        let e = |r: RawKline| check(r, m1).unwrap_err().to_string();
        assert!(e(raw("1677829200", "2", "1", "3", "2")).contains("high 1 is below low 3"));
        assert!(e(raw("1677829200", "5", "3", "1", "2")).contains("open 5 is outside"));
        assert!(e(raw("1677829200", "2", "3", "1", "0.5")).contains("close 0.5"));
        assert!(e(raw("1677829230", "1", "1", "1", "1")).contains("off the interval's grid"));
        assert!(e(raw("1677829200.5", "1", "1", "1", "1")).contains("not a whole number"));
        assert!(e(raw("-60", "1", "1", "1", "1")).contains("not a whole number"));
        for bad in ["1e2", "-1", "007.5", ".5", "1.", "NaN", ""] {
            assert!(
                e(raw("1677829200", bad, "1", "1", "1")).contains("open_price"),
                "{bad}"
            );
        }
        // Equal prices, and trailing zeros, are in order.
        assert!(check(raw("1677829200", "1.50", "1.5", "1.500", "1.5"), m1).is_ok());
    }
}
