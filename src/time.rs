//! Calendar vocabulary: service months, local dates, instants as UTC nanoseconds.
//!
//! Instants are `i64` nanoseconds since the Unix epoch (UTC), the unit the call logs are
//! normalised to. Local dates are turned into instant ranges here, once, so the heavy call
//! stage compares plain integers and never needs a time zone database.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The years whose service months and as-of dates a run can price: every instant of them, and
/// of the claim windows that follow, fits the signed 64-bit nanoseconds used for instants
/// (1677-09-21 to 2262-04-11), with room to spare.
pub const PRICED_YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    pub year: i32,
    pub month: u32,
}

impl YearMonth {
    pub fn new(year: i32, month: u32) -> Option<Self> {
        (1..=12).contains(&month).then_some(Self { year, month })
    }

    pub fn of(date: NaiveDate) -> Self {
        Self {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid year-month")
    }

    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().expect("date in range")
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(self) -> Self {
        if self.month == 1 {
            Self {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Self {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// Every month from `self` to `last`, inclusive.
    pub fn through(self, last: YearMonth) -> impl Iterator<Item = YearMonth> {
        std::iter::successors(Some(self), move |m| (*m < last).then(|| m.next()))
            .take_while(move |m| *m <= last)
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for YearMonth {
    type Err = String;

    /// Strictly `YYYY-MM` with a month from 01 to 12.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 7
            && bytes[4] == b'-'
            && bytes[..4].iter().all(u8::is_ascii_digit)
            && bytes[5..].iter().all(u8::is_ascii_digit);
        if !shaped {
            return Err(format!(
                "{} is not a month; expected `YYYY-MM`",
                crate::text::quoted(text)
            ));
        }
        let year: i32 = text[..4]
            .parse()
            .map_err(|_| format!("bad year in {}", crate::text::quoted(text)))?;
        let month: u32 = text[5..]
            .parse()
            .map_err(|_| format!("bad month in {}", crate::text::quoted(text)))?;
        YearMonth::new(year, month).ok_or_else(|| {
            format!(
                "{} has month {month}; expected 01 to 12",
                crate::text::quoted(text)
            )
        })
    }
}

/// An inclusive range of service months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MonthRange {
    #[serde(serialize_with = "serialize_display")]
    pub first: YearMonth,
    #[serde(serialize_with = "serialize_display")]
    pub last: YearMonth,
}

fn serialize_display<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

impl MonthRange {
    pub fn contains(&self, month: YearMonth) -> bool {
        self.first <= month && month <= self.last
    }

    pub fn months(&self) -> impl Iterator<Item = YearMonth> {
        self.first.through(self.last)
    }

    /// `M`, `M1..M2`, with `current` (the month of `as_of`) and `previous` allowed for each end.
    pub fn parse(text: &str, as_of: NaiveDate) -> Result<MonthRange, String> {
        let end = |word: &str| -> Result<YearMonth, String> {
            match word.trim() {
                "current" => Ok(YearMonth::of(as_of)),
                "previous" => Ok(YearMonth::of(as_of).previous()),
                other => other.parse::<YearMonth>(),
            }
        };
        let (first, last) = match text.split_once("..") {
            Some((a, b)) => (end(a)?, end(b)?),
            None => {
                let month = end(text)?;
                (month, month)
            }
        };
        if last < first {
            return Err(format!(
                "month range {} ends ({last}) before it starts ({first})",
                crate::text::quoted(text)
            ));
        }
        for month in [first, last] {
            if !PRICED_YEARS.contains(&month.year) {
                return Err(format!(
                    "month {month} is outside the years {}..={} a ledger can cover",
                    PRICED_YEARS.start(),
                    PRICED_YEARS.end()
                ));
            }
        }
        Ok(MonthRange { first, last })
    }
}

/// Parses a strict ISO date `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10 && bytes[4] == b'-' && bytes[7] == b'-';
    if !shaped {
        return Err(format!(
            "{} is not a date; expected `YYYY-MM-DD`",
            crate::text::quoted(text)
        ));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        format!(
            "{} is not a valid date; expected `YYYY-MM-DD`",
            crate::text::quoted(text)
        )
    })
}

/// Parses an RFC 3339 timestamp that carries an explicit offset, into UTC nanoseconds.
pub fn parse_instant(text: &str) -> Result<i64, String> {
    let parsed = DateTime::parse_from_rfc3339(text).map_err(|_| {
        format!(
            "{} is not an RFC 3339 timestamp with an offset; \
             expected e.g. `2026-03-01T00:00:00+08:00`",
            crate::text::quoted(text)
        )
    })?;
    parsed.timestamp_nanos_opt().ok_or_else(|| {
        format!(
            "{} is out of the supported range",
            crate::text::quoted(text)
        )
    })
}

/// The instant local midnight starts `date` in `tz`, in UTC nanoseconds.
pub fn local_day_start(tz: Tz, date: NaiveDate) -> i64 {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    // A zone may skip midnight (DST); the day then starts at its earliest existing instant.
    let start = match tz.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) => t,
        chrono::LocalResult::Ambiguous(earliest, _) => earliest,
        chrono::LocalResult::None => {
            let one_hour_later = midnight + chrono::Duration::hours(1);
            tz.from_local_datetime(&one_hour_later)
                .earliest()
                .expect("time after a DST gap")
        }
    };
    start.timestamp_nanos_opt().expect("date in range")
}

/// The half-open instant range `[start, end)` covering local dates `first..=last` in `tz`.
pub fn local_dates_to_instants(tz: Tz, first: NaiveDate, last: NaiveDate) -> (i64, i64) {
    let after_last = last.checked_add_days(Days::new(1)).expect("date in range");
    (local_day_start(tz, first), local_day_start(tz, after_last))
}

/// The local date of an instant given in UTC nanoseconds.
pub fn local_date(tz: Tz, instant_ns: i64) -> NaiveDate {
    DateTime::from_timestamp_nanos(instant_ns)
        .with_timezone(&tz)
        .date_naive()
}

/// An instant as RFC 3339 in UTC with nanoseconds, for reports.
pub fn format_instant(instant_ns: i64) -> String {
    DateTime::from_timestamp_nanos(instant_ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    #[test]
    fn year_month_parses_strictly() {
        assert_eq!(
            "2026-03".parse::<YearMonth>(),
            Ok(YearMonth {
                year: 2026,
                month: 3
            })
        );
        assert!("2026-13".parse::<YearMonth>().is_err());
        assert!("2026-3".parse::<YearMonth>().is_err());
        assert!("2026-00".parse::<YearMonth>().is_err());
        assert!(" 2026-03".parse::<YearMonth>().is_err());
    }

    #[test]
    fn months_through_is_inclusive_and_crosses_years() {
        let first: YearMonth = "2025-11".parse().unwrap();
        let last: YearMonth = "2026-02".parse().unwrap();
        let months: Vec<String> = first.through(last).map(|m| m.to_string()).collect();
        assert_eq!(months, ["2025-11", "2025-12", "2026-01", "2026-02"]);
        assert_eq!(last.through(first).count(), 0);
    }

    #[test]
    fn month_words_are_relative_to_as_of() {
        let as_of = date("2026-03-15");
        let range = MonthRange::parse("previous..current", as_of).unwrap();
        assert_eq!(
            (range.first.to_string(), range.last.to_string()),
            ("2026-02".into(), "2026-03".into())
        );
        let range = MonthRange::parse("previous", date("2026-01-01")).unwrap();
        assert_eq!(range.first.to_string(), "2025-12");
        let range = MonthRange::parse("2026-01..2026-03", as_of).unwrap();
        assert_eq!(range.months().count(), 3);
    }

    #[test]
    fn bad_month_ranges_are_rejected() {
        let as_of = date("2026-03-15");
        assert!(MonthRange::parse("2026-13", as_of).is_err());
        assert!(MonthRange::parse("2026-03..2026-01", as_of)
            .unwrap_err()
            .contains("before"));
        assert!(MonthRange::parse("current..previous", as_of).is_err());
        assert!(MonthRange::parse("last", as_of).is_err());
        // Beyond what 64-bit nanosecond instants hold, a month cannot be priced.
        assert!(MonthRange::parse("2300-01", as_of)
            .unwrap_err()
            .contains("outside the years"));
        assert!(MonthRange::parse("1899-12..2026-01", as_of).is_err());
    }

    #[test]
    fn instants_without_offset_are_rejected() {
        assert!(parse_instant("2026-03-01T00:00:00").is_err());
        assert_eq!(
            parse_instant("2026-03-01T00:00:00+08:00").unwrap(),
            parse_instant("2026-02-28T16:00:00Z").unwrap()
        );
    }

    #[test]
    fn shanghai_local_dates_start_at_16_utc_the_day_before() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let (start, end) = local_dates_to_instants(tz, date, date);
        assert_eq!(start, parse_instant("2026-02-28T16:00:00Z").unwrap());
        assert_eq!(end - start, 86_400 * NANOS_PER_SECOND);
        assert_eq!(local_date(tz, start), date);
        assert_eq!(local_date(tz, start - 1), date.pred_opt().unwrap());
    }
}
