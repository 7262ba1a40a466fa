//! The working-day calendar (SPEC §6): `date,kind` with kind `holiday` or `workday`.
//!
//! Working days are Monday to Friday, minus listed holidays, plus listed make-up workdays.
//! The calendar covers exactly the years that appear in it. A malformed row is fatal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{Datelike, NaiveDate, Weekday};

use crate::error::{InputError, Location, Position};
use crate::inputs::problems::Problems;
use crate::inputs::stamp::InputFile;
use crate::inputs::table::{read_table, TableFile, TableFormat};
use crate::time::parse_date;

/// The China working-day calendar the project ships (State Council notices, 2025 and 2026).
pub const BUILTIN_CSV: &str = include_str!("../../jobs/calendar-cn.csv");
pub const BUILTIN_NAME: &str = "builtin:calendar-cn.csv";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    Holiday,
    Workday,
}

/// A run's calendar as loaded: the calendar, the name messages give it, and the file it came
/// from (none for the built-in one), stamped for the manifest.
#[derive(Debug, Clone)]
pub struct RunCalendar {
    pub calendar: Calendar,
    pub name: String,
    pub input: Option<InputFile>,
}

impl RunCalendar {
    /// The file at `path`, or the built-in calendar; each malformed row goes to `problems`.
    pub fn load(path: Option<&Path>, problems: &mut Problems) -> Result<RunCalendar, InputError> {
        let Some(path) = path else {
            return Ok(RunCalendar {
                calendar: Calendar::builtin(),
                name: BUILTIN_NAME.to_string(),
                input: None,
            });
        };
        let name = path.display().to_string();
        let input = InputFile::stamp(name.clone(), path).ok();
        let calendar = Calendar::load_with(path, problems)?;
        Ok(RunCalendar {
            calendar,
            name,
            input,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct Calendar {
    exceptions: BTreeMap<NaiveDate, DayKind>,
    years: BTreeSet<i32>,
}

impl Calendar {
    pub fn builtin() -> Calendar {
        Calendar::parse_csv_text(BUILTIN_CSV, Path::new(BUILTIN_NAME))
            .expect("the shipped calendar is valid")
    }

    pub fn load(path: &Path) -> Result<Calendar, InputError> {
        Calendar::load_with(path, &mut Problems::first_fatal())
    }

    /// Loads a calendar file, handing each malformed row to `problems`.
    pub fn load_with(path: &Path, problems: &mut Problems) -> Result<Calendar, InputError> {
        let table = TableFile {
            origin: crate::inputs::source::Origin::File(path.to_path_buf()),
            shown: path.to_path_buf(),
            format: TableFormat::Csv,
        };
        if !path.is_file() {
            problems.report(InputError::new(
                Location::file(path),
                "does not exist; expected a calendar CSV `date,kind`",
            ))?;
            return Ok(Calendar::default());
        }
        let records = read_table(&table, &["date", "kind"], problems)?;
        let mut rows = Vec::with_capacity(records.rows.len());
        for record in &records.rows {
            let date = problems.check(records.parse(record, "date", parse_date))?;
            let kind = problems.check(records.parse(record, "kind", parse_kind))?;
            if let (Some(date), Some(kind)) = (date, kind) {
                rows.push((record.position, date, kind));
            }
        }
        Calendar::from_rows(path, rows, problems)
    }

    fn parse_csv_text(text: &str, shown: &Path) -> Result<Calendar, InputError> {
        let mut rows = Vec::new();
        for (index, line) in text.lines().enumerate().skip(1) {
            let position = Position::Line(index as u64 + 1);
            let at = || Location::file(shown).at(position);
            let (date, kind) = line
                .split_once(',')
                .ok_or_else(|| InputError::new(at(), "expected `date,kind`"))?;
            let date = parse_date(date).map_err(|p| InputError::new(at().column("date"), p))?;
            let kind = parse_kind(kind).map_err(|p| InputError::new(at().column("kind"), p))?;
            rows.push((position, date, kind));
        }
        Calendar::from_rows(shown, rows, &mut Problems::first_fatal())
    }

    fn from_rows(
        shown: &Path,
        rows: Vec<(Position, NaiveDate, DayKind)>,
        problems: &mut Problems,
    ) -> Result<Calendar, InputError> {
        let mut calendar = Calendar::default();
        for (position, date, kind) in rows {
            if let Some(previous) = calendar.exceptions.insert(date, kind) {
                if previous != kind {
                    problems.report(InputError::new(
                        Location::file(shown).at(position).column("date"),
                        format!("{date} is listed both as holiday and as workday; expected one kind per date"),
                    ))?;
                }
            }
            calendar.years.insert(date.year());
        }
        Ok(calendar)
    }

    pub fn covers_year(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    pub fn years(&self) -> &BTreeSet<i32> {
        &self.years
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.exceptions.get(&date) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Workday) => true,
            None => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// The `n`-th working day (1-based) on or after `from`, if the calendar covers every year
    /// the search passes through.
    pub fn nth_working_day_from(&self, from: NaiveDate, n: u32) -> Result<NaiveDate, i32> {
        let mut seen = 0;
        let mut day = from;
        loop {
            if !self.covers_year(day.year()) {
                return Err(day.year());
            }
            if self.is_working_day(day) {
                seen += 1;
                if seen == n {
                    return Ok(day);
                }
            }
            day = day.succ_opt().expect("date in range");
        }
    }
}

/// Where the calendar of a run came from, for the manifest.
fn parse_kind(text: &str) -> Result<DayKind, String> {
    match text {
        "holiday" => Ok(DayKind::Holiday),
        "workday" => Ok(DayKind::Workday),
        other => Err(format!(
            "{} is not a day kind; expected `holiday` or `workday`",
            crate::text::quoted(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    #[test]
    fn sla_3_2_working_days_skip_holidays_and_count_make_up_days() {
        let calendar = Calendar::builtin();
        assert!(
            !calendar.is_working_day(date("2026-02-16")),
            "Spring Festival holiday"
        );
        assert!(
            calendar.is_working_day(date("2026-02-14")),
            "Saturday make-up workday"
        );
        assert!(
            !calendar.is_working_day(date("2026-03-07")),
            "plain Saturday"
        );
        assert!(calendar.is_working_day(date("2026-03-09")), "plain Monday");
        // April 2026: 1, 2, 3 work; 4-6 Qingming; 7, 8 work.
        assert_eq!(
            calendar.nth_working_day_from(date("2026-04-01"), 5),
            Ok(date("2026-04-08"))
        );
    }

    #[test]
    fn sla_3_2_the_calendar_covers_only_its_listed_years() {
        let calendar = Calendar::builtin();
        assert!(calendar.covers_year(2025) && calendar.covers_year(2026));
        assert!(!calendar.covers_year(2027));
        assert_eq!(
            calendar.nth_working_day_from(date("2027-01-01"), 5),
            Err(2027)
        );
    }

    #[test]
    fn the_builtin_calendar_matches_the_state_council_notices() {
        let calendar = Calendar::builtin();
        let holidays_2025 = [
            "01-01", "01-28", "02-04", "04-04", "04-06", "05-01", "05-05", "05-31", "06-02",
            "10-01", "10-08",
        ];
        for day in holidays_2025 {
            assert!(
                !calendar.is_working_day(date(&format!("2025-{day}"))),
                "2025-{day}"
            );
        }
        for day in ["01-26", "02-08", "04-27", "09-28", "10-11"] {
            assert!(
                calendar.is_working_day(date(&format!("2025-{day}"))),
                "2025-{day}"
            );
        }
        for day in ["01-04", "02-14", "02-28", "05-09", "09-20", "10-10"] {
            assert!(
                calendar.is_working_day(date(&format!("2026-{day}"))),
                "2026-{day}"
            );
        }
    }
}
