//! When a maintenance window runs: the first occurrence of its schedule after an instant.
//! Pure functions of the window's schedule members; `crate::schedule` has checked the
//! syntax before a window is stored.
//!
//! - `cron(min hour day-of-month month day-of-week year)`: `*`, `?`, lists, ranges, `/`
//!   steps, month and day names, day-of-week 1-7 = SUN-SAT, `L` (last day of the month;
//!   `5L` the month's last Thursday; `L` alone in day-of-week Saturday, as in Quartz),
//!   `W` (the weekday nearest that day, within the month) and `#` (`TUE#3`), in the
//!   window's `ScheduleTimezone`
//!   (<https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-cron-and-rate-expressions.html>).
//! - `rate(N minutes|hours|days)`: every N units from the window's StartDate, or from its
//!   creation when there is none or it has passed ("When using a rate schedule, if you
//!   provide a start date that occurs in the past, the current date and time are used as
//!   the start date").
//! - `at(yyyy-mm-ddThh:mm:ss)`: once, in the window's time zone.
//! - `ScheduleOffset`: "The number of days to wait after the date and time specified by a
//!   cron expression before running the maintenance window" (calendar days in the zone).
//! - `StartDate`/`EndDate`: "determine only the valid period during which the maintenance
//!   window can run on its schedule"; a date without an offset is read in the window's
//!   time zone (assumption).
//!   (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateMaintenanceWindow.html>,
//!   <https://docs.aws.amazon.com/systems-manager/latest/userguide/maintenance-windows-schedule-options.html>)
//!
//! Daylight saving time (assumption, AWS does not document it): a local time that does
//! not exist on the day the clocks go forward runs at the same wall time after the gap
//! (02:30 becomes 03:30), and one that happens twice when they go back runs once, the
//! first time.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// The members of a window that decide when it runs.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    pub schedule: &'a str,
    pub timezone: Option<&'a str>,
    pub offset_days: Option<i64>,
    pub start_date: Option<&'a str>,
    pub end_date: Option<&'a str>,
    /// Epoch seconds the window was created (rate schedules count from it).
    pub created: f64,
    pub enabled: bool,
}

/// The first occurrence strictly after `after` (epoch seconds), or None: disabled,
/// no occurrence left before EndDate (or 2199), or a member that does not parse.
pub fn next_after(spec: &Spec<'_>, after: f64) -> Option<f64> {
    if !spec.enabled {
        return None;
    }
    let tz = time_zone(spec.timezone)?;
    let start = match spec.start_date {
        Some(s) => Some(parse_date(s, &tz)?),
        None => None,
    };
    let end = match spec.end_date {
        Some(s) => Some(parse_date(s, &tz)?),
        None => None,
    };
    // An occurrence exactly at StartDate counts.
    let from = match start {
        Some(s) if s > after => s - 0.001,
        _ => after,
    };
    let expr = spec.schedule.trim();
    let next = if let Some(body) = inner(expr, "cron(") {
        let cron = Cron::parse(body)?;
        cron_with_offset(&cron, &tz, spec.offset_days.unwrap_or(0), from)?
    } else if let Some(body) = inner(expr, "rate(") {
        let interval = rate_seconds(body)?;
        let anchor = match start {
            Some(s) if s > spec.created => s,
            _ => spec.created,
        };
        let k = ((from - anchor) / interval).floor().max(-1.0) + 1.0;
        let mut t = anchor + k * interval;
        if t <= from {
            t += interval;
        }
        t
    } else if let Some(body) = inner(expr, "at(") {
        let local: DateTime = body.parse().ok()?;
        let t = seconds(tz.to_ambiguous_zoned(local).compatible().ok()?.timestamp());
        if t <= from {
            return None;
        }
        t
    } else {
        return None;
    };
    match end {
        Some(e) if next > e => None,
        _ => Some(next),
    }
}

/// The IANA zone named by ScheduleTimezone (UTC when absent); None if unknown.
pub fn time_zone(name: Option<&str>) -> Option<TimeZone> {
    match name {
        None => Some(TimeZone::UTC),
        Some(n) => TimeZone::get(n).ok(),
    }
}

/// An ISO 8601 StartDate/EndDate as epoch seconds: with an offset as given, without one
/// in `tz`; a bare date is its midnight.
pub fn parse_date(s: &str, tz: &TimeZone) -> Option<f64> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(seconds(t));
    }
    let local = match s.parse::<DateTime>() {
        Ok(dt) => dt,
        Err(_) => s.parse::<Date>().ok()?.at(0, 0, 0, 0),
    };
    Some(seconds(
        tz.to_ambiguous_zoned(local).compatible().ok()?.timestamp(),
    ))
}

fn seconds(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

fn inner<'a>(expr: &'a str, prefix: &str) -> Option<&'a str> {
    expr.strip_prefix(prefix)?.strip_suffix(')')
}

fn rate_seconds(body: &str) -> Option<f64> {
    let mut parts = body.split_whitespace();
    let n: f64 = parts.next()?.parse().ok()?;
    let unit = match parts.next()? {
        "minute" | "minutes" => 60.0,
        "hour" | "hours" => 3600.0,
        "day" | "days" => 86_400.0,
        _ => return None,
    };
    (n > 0.0).then_some(n * unit)
}

/// The cron time shifted by the offset in days: the first such time after `after`.
fn cron_with_offset(cron: &Cron, tz: &TimeZone, offset_days: i64, after: f64) -> Option<f64> {
    if offset_days == 0 {
        return cron.next_after(tz, after.floor() as i64).map(|t| t as f64);
    }
    let shift = |t: i64| -> Option<i64> {
        let z = Timestamp::from_second(t).ok()?.to_zoned(tz.clone());
        let local = z.datetime().checked_add(offset_days.days()).ok()?;
        Some(
            tz.to_ambiguous_zoned(local)
                .compatible()
                .ok()?
                .timestamp()
                .as_second(),
        )
    };
    // Cron times before (after - offset days - 2 h of slack for DST) cannot be shifted past `after`.
    let mut from = (after.floor() as i64) - offset_days * 86_400 - 7200;
    for _ in 0..10_000 {
        let c = cron.next_after(tz, from)?;
        let shifted = shift(c)?;
        if shifted as f64 > after {
            return Some(shifted as f64);
        }
        from = c;
    }
    None
}

/// Which values of a field match, indexed by value.
#[derive(Debug, Clone)]
struct Set(Vec<bool>);

impl Set {
    fn has(&self, v: i64) -> bool {
        usize::try_from(v)
            .ok()
            .and_then(|i| self.0.get(i))
            .copied()
            .unwrap_or(false)
    }
}

#[derive(Debug, Clone)]
enum Days {
    /// `*` or `?` in day-of-month with the other field deciding.
    Any,
    /// Day-of-month `L`.
    LastOfMonth,
    /// Days of the month, and days whose nearest weekday matches (`15W`).
    OfMonth { days: Set, nearest_weekday: Vec<i8> },
    /// Days of the week, 1 = Sunday.
    OfWeek(Set),
    /// `TUE#3`: the n-th such day of the month.
    NthOfWeek { day: i8, n: i8 },
    /// `5L`: the month's last such day.
    LastOfWeek(i8),
}

/// A parsed six-field cron expression.
#[derive(Debug, Clone)]
struct Cron {
    minutes: Set,
    hours: Set,
    days: Days,
    months: Set,
    years: Set,
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const LAST_YEAR: i16 = 2199;

fn value(s: &str, min: i64, max: i64, names: &[&str]) -> Option<i64> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return i64::try_from(i).ok().map(|i| i + min);
    }
    s.parse::<i64>().ok().filter(|n| (min..=max).contains(n))
}

/// A comma list of `*`, values, ranges `a-b` and steps `a/n`, `a-b/n`, `*/n`.
fn field(s: &str, min: i64, max: i64, names: &[&str]) -> Option<Set> {
    let mut set = vec![false; usize::try_from(max).ok()? + 1];
    for part in s.split(',') {
        let (base, step) = match part.split_once('/') {
            Some((b, st)) => (b, st.parse::<i64>().ok().filter(|n| *n > 0)?),
            None => (part, 1),
        };
        let (lo, hi) = if base == "*" {
            (min, max)
        } else if let Some((a, b)) = base.split_once('-') {
            (value(a, min, max, names)?, value(b, min, max, names)?)
        } else {
            let v = value(base, min, max, names)?;
            // `a/n` runs from a to the end of the range; a lone value is itself.
            (
                v,
                if step > 1 || part.contains('/') {
                    max
                } else {
                    v
                },
            )
        };
        let mut v = lo;
        while v <= hi {
            *set.get_mut(usize::try_from(v).ok()?)? = true;
            v += step;
        }
    }
    Some(Set(set))
}

impl Cron {
    fn parse(body: &str) -> Option<Self> {
        let fields: Vec<&str> = body.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields[..] else {
            return None;
        };
        let days = if dom == "?" {
            if let Some((day, n)) = dow.split_once('#') {
                Days::NthOfWeek {
                    day: i8::try_from(value(day, 1, 7, DAYS)?).ok()?,
                    n: n.parse().ok()?,
                }
            } else if let Some(day) = dow.strip_suffix('L') {
                // `L` alone is the last day of the week, Saturday.
                let day = if day.is_empty() {
                    7
                } else {
                    value(day, 1, 7, DAYS)?
                };
                if dow == "L" {
                    let mut set = vec![false; 8];
                    set[7] = true;
                    Days::OfWeek(Set(set))
                } else {
                    Days::LastOfWeek(i8::try_from(day).ok()?)
                }
            } else if dow == "*" {
                Days::Any
            } else {
                Days::OfWeek(field(dow, 1, 7, DAYS)?)
            }
        } else if dom == "L" {
            Days::LastOfMonth
        } else if dom == "*" {
            Days::Any
        } else {
            let mut plain = Vec::new();
            let mut nearest_weekday = Vec::new();
            for part in dom.split(',') {
                match part.strip_suffix('W') {
                    Some(d) => nearest_weekday.push(i8::try_from(value(d, 1, 31, &[])?).ok()?),
                    None => plain.push(part),
                }
            }
            let days = if plain.is_empty() {
                Set(vec![false; 32])
            } else {
                field(&plain.join(","), 1, 31, &[])?
            };
            Days::OfMonth {
                days,
                nearest_weekday,
            }
        };
        Some(Self {
            minutes: field(minutes, 0, 59, &[])?,
            hours: field(hours, 0, 23, &[])?,
            days,
            months: field(month, 1, 12, MONTHS)?,
            years: field(year, 1970, i64::from(LAST_YEAR), &[])?,
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let day = date.day();
        let last = date.days_in_month();
        let weekday = date.weekday().to_sunday_one_offset();
        match &self.days {
            Days::Any => true,
            Days::LastOfMonth => day == last,
            Days::OfMonth {
                days,
                nearest_weekday,
            } => {
                days.has(i64::from(day))
                    || nearest_weekday
                        .iter()
                        .any(|n| nearest_weekday_of(date, *n) == Some(day))
            }
            Days::OfWeek(set) => set.has(i64::from(weekday)),
            Days::NthOfWeek { day: d, n } => weekday == *d && (day - 1) / 7 + 1 == *n,
            Days::LastOfWeek(d) => weekday == *d && day + 7 > last,
        }
    }

    /// The first time (epoch seconds) after `after` the expression names in `tz`.
    fn next_after(&self, tz: &TimeZone, after: i64) -> Option<i64> {
        let local = Timestamp::from_second(after).ok()?.to_zoned(tz.clone());
        let first = local.date();
        for year in first.year()..=LAST_YEAR {
            if !self.years.has(i64::from(year)) {
                continue;
            }
            for month in 1..=12i8 {
                if !self.months.has(i64::from(month))
                    || (year, month) < (first.year(), first.month())
                {
                    continue;
                }
                let days_in_month = Date::new(year, month, 1).ok()?.days_in_month();
                // Minutes of the first day well before `after` (2 h of slack for a DST
                // shift) need no time zone conversion.
                let skip_before = i32::from(local.hour()) * 60 + i32::from(local.minute()) - 120;
                for day in 1..=days_in_month {
                    let date = Date::new(year, month, day).ok()?;
                    if date < first || !self.day_matches(date) {
                        continue;
                    }
                    for hour in 0..24i8 {
                        if !self.hours.has(i64::from(hour)) {
                            continue;
                        }
                        for minute in 0..60i8 {
                            if !self.minutes.has(i64::from(minute))
                                || (date == first
                                    && i32::from(hour) * 60 + i32::from(minute) < skip_before)
                            {
                                continue;
                            }
                            let t = tz
                                .to_ambiguous_zoned(date.at(hour, minute, 0, 0))
                                .compatible()
                                .ok()?
                                .timestamp()
                                .as_second();
                            if t > after {
                                return Some(t);
                            }
                        }
                    }
                }
            }
        }
        None
    }
}

/// `nW`: the weekday nearest day n of the date's month, never leaving the month
/// (`1W` on a Saturday is Monday the 3rd).
fn nearest_weekday_of(date: Date, n: i8) -> Option<i8> {
    let last = date.days_in_month();
    if n > last {
        return None;
    }
    let target = Date::new(date.year(), date.month(), n).ok()?;
    Some(match target.weekday().to_sunday_one_offset() {
        7 if n == 1 => 3,
        7 => n - 1,
        1 if n == last => n - 2,
        1 => n + 1,
        _ => n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> f64 {
        seconds(s.parse::<Timestamp>().expect("test instant"))
    }

    fn iso(secs: f64) -> String {
        crate::clock::iso8601(secs)
    }

    fn spec(schedule: &str) -> Spec<'_> {
        Spec {
            schedule,
            timezone: None,
            offset_days: None,
            start_date: None,
            end_date: None,
            created: t("2026-01-01T00:00:00Z"),
            enabled: true,
        }
    }

    #[test]
    fn cron_expressions() {
        // 2026-03-03 is a Tuesday.
        let cases: &[(&str, &str, &str)] = &[
            (
                "cron(0 2 ? * SUN *)",
                "2026-03-03T10:00:00Z",
                "2026-03-08T02:00:00.000Z",
            ),
            (
                "cron(30 23 ? * TUE#3 *)",
                "2026-03-03T10:00:00Z",
                "2026-03-17T23:30:00.000Z",
            ),
            (
                "cron(0/30 * * * ? *)",
                "2026-03-03T10:05:00Z",
                "2026-03-03T10:30:00.000Z",
            ),
            (
                "cron(0/30 * * * ? *)",
                "2026-03-03T10:30:00Z",
                "2026-03-03T11:00:00.000Z",
            ),
            (
                "cron(15 10 ? * MON-FRI *)",
                "2026-03-06T11:00:00Z",
                "2026-03-09T10:15:00.000Z",
            ),
            (
                "cron(0 8 1 JAN,JUL ? 2030)",
                "2026-03-03T10:00:00Z",
                "2030-01-01T08:00:00.000Z",
            ),
            (
                "cron(0 0 L * ? *)",
                "2026-02-10T00:00:00Z",
                "2026-02-28T00:00:00.000Z",
            ),
            (
                "cron(0 0 ? * 6L *)",
                "2026-03-03T00:00:00Z",
                "2026-03-27T00:00:00.000Z",
            ),
            // 2026-08-01 is a Saturday: 1W is Monday the 3rd; 2026-05-31 a Sunday: 31W is Friday the 29th.
            (
                "cron(0 4 1W * ? *)",
                "2026-07-02T00:00:00Z",
                "2026-08-03T04:00:00.000Z",
            ),
            (
                "cron(0 4 31W * ? *)",
                "2026-05-02T00:00:00Z",
                "2026-05-29T04:00:00.000Z",
            ),
            (
                "cron(5-10/5 1,3 ? * 2 *)",
                "2026-03-03T00:00:00Z",
                "2026-03-09T01:05:00.000Z",
            ),
            ("cron(0 0 1 1 ? 1999)", "2026-03-03T00:00:00Z", ""),
        ];
        for (schedule, after, want) in cases {
            let got = next_after(&spec(schedule), t(after)).map(iso);
            assert_eq!(
                got.as_deref().unwrap_or(""),
                *want,
                "{schedule} after {after}"
            );
        }
    }

    #[test]
    fn time_zones_across_daylight_saving() {
        let mut s = spec("cron(30 2 ? * * *)");
        s.timezone = Some("America/New_York");
        // 2026-03-08 02:30 does not exist in New York: it runs at 03:30 EDT (07:30Z).
        assert_eq!(
            next_after(&s, t("2026-03-07T08:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-03-08T07:30:00.000Z")
        );
        // The day before, EST: 07:30Z; the day after, EDT: 06:30Z.
        assert_eq!(
            next_after(&s, t("2026-03-06T08:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-03-07T07:30:00.000Z")
        );
        assert_eq!(
            next_after(&s, t("2026-03-08T08:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-03-09T06:30:00.000Z")
        );
        // 01:30 happens twice on 2026-11-01: it runs once, the first time (EDT, 05:30Z).
        s.schedule = "cron(30 1 ? * * *)";
        assert_eq!(
            next_after(&s, t("2026-11-01T00:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-11-01T05:30:00.000Z")
        );
        assert_eq!(
            next_after(&s, t("2026-11-01T05:30:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-11-02T06:30:00.000Z")
        );
        s.timezone = Some("Mars/Olympus_Mons");
        assert_eq!(next_after(&s, t("2026-11-01T00:00:00Z")), None);
    }

    #[test]
    fn rate_counts_from_start_date_or_creation() {
        let mut s = spec("rate(3 hours)");
        // From creation (2026-01-01T00:00Z).
        assert_eq!(
            next_after(&s, t("2026-01-01T00:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-01-01T03:00:00.000Z")
        );
        assert_eq!(
            next_after(&s, t("2026-01-02T04:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-01-02T06:00:00.000Z")
        );
        // From a future StartDate (its first occurrence is the start itself).
        s.start_date = Some("2026-02-01T10:20:00Z");
        assert_eq!(
            next_after(&s, t("2026-01-05T00:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-02-01T10:20:00.000Z")
        );
        assert_eq!(
            next_after(&s, t("2026-02-01T10:20:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-02-01T13:20:00.000Z")
        );
        // A StartDate before creation counts from creation.
        s.start_date = Some("2025-06-01T00:10:00Z");
        assert_eq!(
            next_after(&s, t("2026-01-01T00:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-01-01T03:00:00.000Z")
        );
        s.schedule = "rate(1 day)";
        s.start_date = None;
        assert_eq!(
            next_after(&s, t("2026-01-01T12:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-01-02T00:00:00.000Z")
        );
    }

    #[test]
    fn at_runs_once_in_its_zone() {
        let mut s = spec("at(2026-07-07T15:55:00)");
        s.timezone = Some("Asia/Tokyo");
        let first = next_after(&s, t("2026-07-01T00:00:00Z"));
        assert_eq!(first.map(iso).as_deref(), Some("2026-07-07T06:55:00.000Z"));
        assert_eq!(next_after(&s, first.unwrap_or_default()), None);
    }

    #[test]
    fn offset_start_end_and_disabled() {
        // Third Tuesday of March 2026 is the 17th; with an offset of 2 it runs on the 19th.
        let mut s = spec("cron(30 23 ? * TUE#3 *)");
        s.offset_days = Some(2);
        assert_eq!(
            next_after(&s, t("2026-03-03T00:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-03-19T23:30:00.000Z")
        );
        // Between the cron time and the shifted one, the shifted one is next.
        assert_eq!(
            next_after(&s, t("2026-03-18T00:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-03-19T23:30:00.000Z")
        );
        assert_eq!(
            next_after(&s, t("2026-03-20T00:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2026-04-23T23:30:00.000Z")
        );

        // The user guide's example: StartDate 2021-01-01T00:00-08:00, Wednesdays 09:00 in
        // Los Angeles: the first run is 2021-01-06 09:00 PST.
        let mut s = spec("cron(0 09 ? * WED *)");
        s.timezone = Some("America/Los_Angeles");
        s.start_date = Some("2021-01-01T00:00:00-08:00");
        assert_eq!(
            next_after(&s, t("2020-12-01T00:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2021-01-06T17:00:00.000Z")
        );
        // A StartDate without an offset is read in the schedule's zone.
        s.start_date = Some("2021-01-13");
        assert_eq!(
            next_after(&s, t("2020-12-01T00:00:00Z"))
                .map(iso)
                .as_deref(),
            Some("2021-01-13T17:00:00.000Z")
        );
        s.end_date = Some("2021-01-20T08:59:00-08:00");
        assert_eq!(next_after(&s, t("2021-01-13T17:00:00Z")), None);
        s.end_date = Some("2021-01-20T09:00-08:00");
        assert!(next_after(&s, t("2021-01-13T17:00:00Z")).is_some());

        let mut s = spec("rate(2 days)");
        s.enabled = false;
        assert_eq!(next_after(&s, t("2026-01-01T00:00:00Z")), None);
    }
}
