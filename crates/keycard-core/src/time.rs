//! Unix seconds ↔ UTC calendar dates (Howard Hinnant's civil-date algorithms), so the CLI and
//! the server print and read times without a time-zone database.

use crate::UnixTime;

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

impl Civil {
    pub fn from_unix(at: UnixTime) -> Self {
        let days = at.div_euclid(86_400);
        let seconds = at.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Self {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: seconds / 3600,
            minute: seconds % 3600 / 60,
            second: seconds % 60,
        }
    }

    /// `YYYY-MM-DD HH:MM:SS UTC`, for people.
    pub fn display(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `YYYY-MM-DDTHH:MM:SS.000Z` (ISO 8601), for machines.
    pub fn iso8601(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_dates() {
        assert_eq!(Civil::from_unix(0).display(), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            Civil::from_unix(1_700_000_000).iso8601(),
            "2023-11-14T22:13:20.000Z"
        );
        for at in [0, 951_782_400, 1_700_000_000, -86_400, 4_102_444_800] {
            let c = Civil::from_unix(at);
            let back = days_from_civil(c.year, c.month, c.day) * 86_400
                + c.hour * 3600
                + c.minute * 60
                + c.second;
            assert_eq!(back, at);
        }
    }
}
