//! Bar lengths, from one second to one day, aligned to the Unix epoch:
//! every bar starts at a multiple of its length, so hours and days start
//! on UTC hours and midnights.

/// A bar's length, aligned to UTC (to the Unix epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    name: &'static str,
    ms: u64,
}

/// A bar interval that is not one of [`Interval::ALL`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntervalError {
    /// What was given.
    pub given: String,
}

/// "unknown bar interval 2m (valid: 1s, 5s, 10s, 15s, 30s, 1m, 5m, 15m,
/// 30m, 1h, 4h, 1d)".
impl std::fmt::Display for IntervalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let valid: Vec<&str> = Interval::ALL.iter().map(|i| i.name).collect();
        write!(
            f,
            "unknown bar interval {} (valid: {})",
            self.given,
            valid.join(", ")
        )
    }
}

impl std::error::Error for IntervalError {}

const SECOND: u64 = 1000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

impl Interval {
    /// Every interval, shortest first: 1s 5s 10s 15s 30s 1m 5m 15m 30m 1h 4h 1d.
    pub const ALL: [Interval; 12] = [
        Interval::of("1s", SECOND),
        Interval::of("5s", 5 * SECOND),
        Interval::of("10s", 10 * SECOND),
        Interval::of("15s", 15 * SECOND),
        Interval::of("30s", 30 * SECOND),
        Interval::of("1m", MINUTE),
        Interval::of("5m", 5 * MINUTE),
        Interval::of("15m", 15 * MINUTE),
        Interval::of("30m", 30 * MINUTE),
        Interval::of("1h", HOUR),
        Interval::of("4h", 4 * HOUR),
        Interval::of("1d", 24 * HOUR),
    ];

    const fn of(name: &'static str, ms: u64) -> Interval {
        Interval { name, ms }
    }

    /// `1s` … `1d`; the error names the valid ones.
    pub fn parse(s: &str) -> Result<Interval, IntervalError> {
        Interval::ALL
            .into_iter()
            .find(|i| i.name == s)
            .ok_or_else(|| IntervalError {
                given: s.to_string(),
            })
    }

    /// The name [`Interval::parse`] reads, e.g. `1m`.
    pub fn name(self) -> &'static str {
        self.name
    }

    /// The length in milliseconds.
    pub fn ms(self) -> u64 {
        self.ms
    }

    /// The start (ms since the epoch) of the bar holding `time` (ms).
    pub fn start(self, time: u64) -> u64 {
        time - time % self.ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_interval_parses_every_name_and_only_those() {
        let names = [
            "1s", "5s", "10s", "15s", "30s", "1m", "5m", "15m", "30m", "1h", "4h", "1d",
        ];
        let secs = [1, 5, 10, 15, 30, 60, 300, 900, 1800, 3600, 14_400, 86_400];
        for ((name, secs), all) in names.iter().zip(secs).zip(Interval::ALL) {
            let i = Interval::parse(name).unwrap();
            assert_eq!(i, all);
            assert_eq!(i.name(), *name);
            assert_eq!(i.ms(), secs * 1000);
        }
        assert!(Interval::ALL.windows(2).all(|w| w[0].ms() < w[1].ms()));
        assert_eq!(
            Interval::parse("2m").unwrap_err().to_string(),
            "unknown bar interval 2m (valid: 1s, 5s, 10s, 15s, 30s, 1m, 5m, 15m, 30m, 1h, 4h, 1d)"
        );
        for bad in ["", "1M", "60s", "1 m", "1d ", "1w"] {
            assert!(Interval::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bars_interval_starts_align_to_utc() {
        let p = |s| Interval::parse(s).unwrap();
        // 2026-12-01 23:59:59.999 UTC, and the midnight after it.
        let midnight = 1_796_169_600_000;
        let t = midnight - 1;
        assert_eq!(p("1d").start(t), midnight - 86_400_000);
        assert_eq!(p("1d").start(midnight), midnight);
        assert_eq!(p("4h").start(t), midnight - 4 * 3_600_000);
        assert_eq!(p("4h").start(midnight + 4 * 3_600_000 - 1), midnight);
        assert_eq!(p("1h").start(t), midnight - 3_600_000);
        assert_eq!(p("1m").start(1_796_166_599_999), 1_796_166_540_000);
        assert_eq!(p("1s").start(1_796_166_540_123), 1_796_166_540_000);
        assert_eq!(p("15s").start(1_796_166_554_999), 1_796_166_540_000);
        assert_eq!(p("15s").start(1_796_166_555_000), 1_796_166_555_000);
        for i in Interval::ALL {
            assert_eq!(i.start(0), 0);
            assert_eq!(i.start(i.ms() - 1), 0);
            assert_eq!(i.start(i.ms()), i.ms());
            assert_eq!(i.start(u64::MAX) % i.ms(), 0);
        }
    }
}
