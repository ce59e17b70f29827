//! The pace of a replay (`--speed`), and the times `--from` / `--to` take.
//! Pure: wall-clock instants are passed in.

use std::fmt;
use std::time::{Duration, Instant};

/// How fast the recorded time runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// As fast as the output takes the lines.
    Max,
    /// The recorded pace times this factor (1: as recorded).
    Times(f64),
}

impl Speed {
    /// `max`, or a positive factor such as `1`, `10`, `0.5`.
    pub fn parse(text: &str) -> Result<Speed, SpeedError> {
        if text == "max" {
            return Ok(Speed::Max);
        }
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 && x <= 1e9 => Ok(Speed::Times(x)),
            _ => Err(SpeedError {
                given: text.to_string(),
            }),
        }
    }
}

/// A `--speed` that is neither `max` nor a positive factor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeedError {
    /// What was given.
    pub given: String,
}

impl fmt::Display for SpeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--speed needs a positive factor (1 is the recorded pace) or max, got {:?}",
            self.given
        )
    }
}

impl std::error::Error for SpeedError {}

/// A `--from` or `--to` that is neither ms since the epoch nor an ISO-8601
/// UTC time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeError {
    /// The flag, as typed: `--from`.
    pub flag: String,
    /// What was given.
    pub given: String,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} needs ms since the epoch or an ISO-8601 UTC time like 2026-12-01T14:30:00Z, got {:?}",
            self.flag, self.given
        )
    }
}

impl std::error::Error for TimeError {}

/// When each line is due on the wall clock: the first line's time is
/// anchored at the first call, and recorded time then runs `speed` times
/// as fast.
#[derive(Clone, Debug)]
pub struct Pace {
    speed: Speed,
    anchor: Option<(u64, Instant)>,
}

impl Pace {
    /// A pace of `speed`.
    pub fn new(speed: Speed) -> Pace {
        Pace {
            speed,
            anchor: None,
        }
    }

    /// Whether lines are never waited for (`--speed max`).
    pub fn is_max(&self) -> bool {
        !matches!(self.speed, Speed::Times(_))
    }

    /// How long to wait at `now` before writing a line of `time`; zero when
    /// it is due (or late: a replay that falls behind catches up without
    /// waiting, never by skipping lines).
    pub fn wait(&mut self, time: u64, now: Instant) -> Duration {
        let Speed::Times(x) = self.speed else {
            return Duration::ZERO;
        };
        let (t0, w0) = *self.anchor.get_or_insert((time, now));
        let recorded = Duration::from_millis(time.saturating_sub(t0));
        (w0 + recorded.div_f64(x)).saturating_duration_since(now)
    }
}

/// A time for `--from` / `--to`: ms since the epoch, or ISO-8601 in UTC
/// (`2026-12-01`, `2026-12-01T14:30`, `2026-12-01T14:30:05`,
/// `2026-12-01T14:30:05.250Z`; a trailing `Z` is optional, no other zone).
pub fn parse_time(flag: &str, text: &str) -> Result<u64, TimeError> {
    let bad = || TimeError {
        flag: flag.to_string(),
        given: text.to_string(),
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| bad());
    }
    let t = text.strip_suffix('Z').unwrap_or(text);
    let (date, clock) = t.split_once(['T', ' ']).unwrap_or((t, ""));
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, day] = d[..] else {
        return Err(bad());
    };
    let num = |s: &str, w: usize| {
        (s.len() == w && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (y, m, day) = (
        num(y, 4).ok_or_else(bad)?,
        num(m, 2).ok_or_else(bad)?,
        num(day, 2).ok_or_else(bad)?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let mut ms = 0u64;
    if !clock.is_empty() {
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let parts: Vec<&str> = hms.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let h = num(parts[0], 2).filter(|h| *h < 24).ok_or_else(bad)?;
        let mi = num(parts[1], 2).filter(|m| *m < 60).ok_or_else(bad)?;
        let s = match parts.get(2) {
            Some(s) => num(s, 2).filter(|s| *s < 61).ok_or_else(bad)?,
            None => 0,
        };
        let f = if frac.is_empty() {
            0
        } else if frac.len() <= 3 && frac.bytes().all(|b| b.is_ascii_digit()) {
            frac.parse::<u64>().map_err(|_| bad())? * 10u64.pow(3 - frac.len() as u32)
        } else {
            return Err(bad());
        };
        ms = (u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(s)) * 1000 + f;
    }
    let days = crate::wire::calendar::days_from_civil(i64::from(y), m, day);
    if days < 0 {
        return Err(bad());
    }
    Ok(days as u64 * 86_400_000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_pace_scaled_and_max_never_waits() {
        let w0 = Instant::now();
        let mut p = Pace::new(Speed::Times(10.0));
        assert_eq!(p.wait(1_000, w0), Duration::ZERO);
        // 60 s of recording at 10×: 6 s of wall time.
        assert_eq!(p.wait(61_000, w0), Duration::from_secs(6));
        assert_eq!(
            p.wait(61_000, w0 + Duration::from_secs(4)),
            Duration::from_secs(2)
        );
        // Behind: no wait, nothing skipped.
        assert_eq!(p.wait(2_000, w0 + Duration::from_secs(9)), Duration::ZERO);
        let mut max = Pace::new(Speed::Max);
        assert_eq!(max.wait(u64::MAX, w0), Duration::ZERO);
        assert_eq!(Speed::parse("max"), Ok(Speed::Max));
        assert_eq!(Speed::parse("0.5"), Ok(Speed::Times(0.5)));
        for bad in ["0", "-1", "fast", "inf", "NaN"] {
            assert!(Speed::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_are_ms_or_iso_8601_utc() {
        assert_eq!(parse_time("--from", "1796166575444"), Ok(1_796_166_575_444));
        assert_eq!(parse_time("--from", "1970-01-01"), Ok(0));
        assert_eq!(
            parse_time("--from", "1970-01-02T00:00:01.5Z"),
            Ok(86_401_500)
        );
        assert_eq!(
            parse_time("--from", "2026-11-30T23:59:59.999Z"),
            Ok(1_796_083_199_999)
        );
        assert_eq!(
            parse_time("--to", "2026-12-01 00:00"),
            Ok(1_796_083_200_000)
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-12-01T25:00",
            "2026-12-01T10:00+02:00",
            "12-01-2026",
        ] {
            assert!(parse_time("--from", bad).is_err(), "{bad}");
        }
    }
}
