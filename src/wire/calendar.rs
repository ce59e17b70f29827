//! The UTC calendar, without a library: civil dates from day counts and
//! back, and ISO-8601 times. Capture files are named by it and bars of a
//! day, a week or a month end by it.

/// An hour, in ms.
pub const HOUR_MS: u64 = 3_600_000;
/// A day, in ms.
pub const DAY_MS: u64 = 86_400_000;

/// `time` (ms since the epoch) as ISO-8601 UTC: `2026-12-01T14:30:05.250Z`.
pub fn iso(time: u64) -> String {
    let (y, m, d) = civil_from_days((time / DAY_MS) as i64);
    let ms = time % DAY_MS;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms / HOUR_MS,
        ms % HOUR_MS / 60_000,
        ms % 60_000 / 1000,
        ms % 1000
    )
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_30_LAST_MS: u64 = 1_796_083_199_999;

    #[test]
    fn civil_dates_round_trip_and_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        for z in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z, "{y}-{m}-{d}");
        }
        let (y, m, d) = civil_from_days((NOV_30_LAST_MS / DAY_MS) as i64);
        assert_eq!((y, m, d), (2026, 11, 30));
        assert_eq!(iso(NOV_30_LAST_MS), "2026-11-30T23:59:59.999Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
    }
}
