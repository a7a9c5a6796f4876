//! Maintenance window schedule syntax: `cron(...)` with six fields, `rate(N unit)`
//! and one-off `at(yyyy-mm-ddThh:mm:ss)`.
//! https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-cron-and-rate-expressions.html

/// Which kind of expression a schedule is (ScheduleOffset is only allowed with cron).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cron,
    Rate,
    At,
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Parses a schedule expression, returning its kind or None when AWS would reject it.
pub fn parse(expr: &str) -> Option<Kind> {
    let expr = expr.trim();
    if let Some(body) = inner(expr, "cron(") {
        cron(body).then_some(Kind::Cron)
    } else if let Some(body) = inner(expr, "rate(") {
        rate(body).then_some(Kind::Rate)
    } else if let Some(body) = inner(expr, "at(") {
        at(body).then_some(Kind::At)
    } else {
        None
    }
}

fn inner<'a>(expr: &'a str, prefix: &str) -> Option<&'a str> {
    expr.strip_prefix(prefix)?.strip_suffix(')')
}

fn rate(body: &str) -> bool {
    let mut parts = body.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(n) = n.parse::<u32>() else {
        return false;
    };
    // "rate(1 day)" but "rate(2 days)": the unit's number must agree with the value.
    match unit {
        "minute" | "hour" | "day" => n == 1,
        "minutes" | "hours" | "days" => n > 1,
        _ => false,
    }
}

fn at(body: &str) -> bool {
    let b = body.as_bytes();
    if b.len() != 19 {
        return false;
    }
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    digits.iter().all(|&i| b[i].is_ascii_digit())
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && num(&body[5..7]).is_some_and(|m| (1..=12).contains(&m))
        && num(&body[8..10]).is_some_and(|d| (1..=31).contains(&d))
        && num(&body[11..13]).is_some_and(|h| h <= 23)
        && num(&body[14..16]).is_some_and(|m| m <= 59)
        && num(&body[17..19]).is_some_and(|s| s <= 59)
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn cron(body: &str) -> bool {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [minutes, hours, dom, month, dow, year] = fields[..] else {
        return false;
    };
    // Exactly one of day-of-month and day-of-week must be '?'.
    if (dom == "?") == (dow == "?") {
        return false;
    }
    field(minutes, 0, 59, &[], "")
        && field(hours, 0, 23, &[], "")
        && (dom == "?" || dom == "L" || field(dom, 1, 31, &[], "W"))
        && field(month, 1, 12, MONTHS, "")
        && (dow == "?" || day_of_week(dow))
        && field(year, 1970, 2199, &[], "")
}

fn day_of_week(s: &str) -> bool {
    if let Some((day, nth)) = s.split_once('#') {
        return value(day, 1, 7, DAYS).is_some() && num(nth).is_some_and(|n| (1..=5).contains(&n));
    }
    if let Some(day) = s.strip_suffix('L') {
        return day.is_empty() || value(day, 1, 7, DAYS).is_some();
    }
    field(s, 1, 7, DAYS, "")
}

/// A comma list of `*`, values, ranges `a-b` and increments `a/b` or `*/b`.
fn field(s: &str, min: u32, max: u32, names: &[&str], suffixes: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    s.split(',').all(|part| {
        let part = part.trim_end_matches(|c| suffixes.contains(c) && !suffixes.is_empty());
        let (base, step) = match part.split_once('/') {
            Some((b, st)) => (b, Some(st)),
            None => (part, None),
        };
        if let Some(step) = step
            && num(step).is_none_or(|n| n == 0 || n > max)
        {
            return false;
        }
        if base == "*" {
            return true;
        }
        match base.split_once('-') {
            Some((a, b)) => match (value(a, min, max, names), value(b, min, max, names)) {
                (Some(a), Some(b)) => a <= b,
                _ => false,
            },
            None => value(base, min, max, names).is_some(),
        }
    })
}

fn value(s: &str, min: u32, max: u32, names: &[&str]) -> Option<u32> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return u32::try_from(i).ok().map(|i| i + min);
    }
    num(s).filter(|n| (min..=max).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_documented_examples() {
        for ok in [
            "cron(0 2 ? * SUN *)",
            "cron(30 23 ? * TUE#3 *)",
            "cron(0 0 ? * THU#2 *)",
            "cron(0/30 * * * ? *)",
            "cron(15 10 ? * MON-FRI *)",
            "cron(0 8 1 JAN,JUL ? 2030)",
            "rate(1 day)",
            "rate(12 hours)",
            "at(2020-07-07T15:55:00)",
        ] {
            assert!(parse(ok).is_some(), "{ok} should parse");
        }
        assert_eq!(parse("cron(0 2 ? * SUN *)"), Some(Kind::Cron));
        assert_eq!(parse("rate(2 days)"), Some(Kind::Rate));
    }

    #[test]
    fn rejects_malformed_expressions() {
        for bad in [
            "",
            "cron(0 2 * * SUN *)",
            "cron(0 2 ? * SUN)",
            "cron(60 2 ? * SUN *)",
            "cron(0 24 ? * SUN *)",
            "cron(0 2 ? * FUNDAY *)",
            "rate(1 days)",
            "rate(0 hours)",
            "rate(5 weeks)",
            "at(2020-13-07T15:55:00)",
            "every tuesday",
        ] {
            assert!(parse(bad).is_none(), "{bad} should be rejected");
        }
    }
}
