//! Calendar-aligned SLO windows (OpenSLO `timeWindow` with `isRolling: false`): periods of N
//! days, weeks, months, quarters or years counted from `calendar.startTime` in
//! `calendar.timeZone` (IANA). A status at a moment covers its period so far — from the start
//! of the period holding the moment to the moment — so the budget resets when a period begins.
//! Days and months are civil: a day in a zone with daylight saving time may last 23 or 25 h.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Unit, Zoned};
use serde::{Deserialize, Serialize};

/// A calendar period's unit (OpenSLO's `d`, `w`, `M`, `Q`, `Y`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CalendarUnit {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// How a calendar window is laid out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Calendar {
    pub unit: CalendarUnit,
    /// Units per period (`3M` is a period of three months).
    pub count: u32,
    /// When the first period starts, civil time in `time_zone` (`YYYY-MM-DD HH:MM:SS`).
    pub start_time: String,
    /// IANA time zone name, e.g. `UTC` or `Europe/Berlin`.
    pub time_zone: String,
}

/// A calendar window that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadCalendar(pub String);

impl CalendarUnit {
    /// The unit of a calendar duration's last character.
    fn of(c: char) -> Option<Self> {
        Some(match c {
            'd' => Self::Day,
            'w' => Self::Week,
            'M' => Self::Month,
            'Q' => Self::Quarter,
            'Y' => Self::Year,
            _ => return None,
        })
    }

    /// Its nominal length in seconds (what burn-rate windows scale with).
    fn nominal_seconds(self) -> u64 {
        match self {
            Self::Day => 86_400,
            Self::Week => 7 * 86_400,
            Self::Month => 30 * 86_400,
            Self::Quarter => 91 * 86_400,
            Self::Year => 365 * 86_400,
        }
    }

    /// The unit jiff counts in, and how many of them one of ours is.
    fn counted(self) -> (Unit, i64) {
        match self {
            Self::Day => (Unit::Day, 1),
            Self::Week => (Unit::Week, 1),
            Self::Month => (Unit::Month, 1),
            Self::Quarter => (Unit::Month, 3),
            Self::Year => (Unit::Year, 1),
        }
    }
}

fn span(unit: Unit, n: i64) -> Result<Span, BadCalendar> {
    let bad = |e: jiff::Error| BadCalendar(format!("calendar arithmetic: {e}"));
    match unit {
        Unit::Day => Span::new().try_days(n).map_err(bad),
        Unit::Week => Span::new().try_weeks(n).map_err(bad),
        Unit::Month => Span::new().try_months(n).map_err(bad),
        _ => Span::new().try_years(n).map_err(bad),
    }
}

impl Calendar {
    /// Parses OpenSLO's calendar duration (`1M`, `2w`, `1Q`, ...) with its `calendar` block;
    /// returns it with the period's nominal length in seconds.
    pub fn parse(
        duration: &str,
        start_time: &str,
        time_zone: &str,
    ) -> Result<(Self, u64), (&'static str, String)> {
        let unit_char = duration.chars().last().unwrap_or(' ');
        let unit = CalendarUnit::of(unit_char).ok_or((
            "duration",
            format!("{duration:?}: a calendar window's unit is d, w, M, Q or Y (e.g. 1M)"),
        ))?;
        let count: u32 = duration[..duration.len() - unit_char.len_utf8()]
            .parse()
            .ok()
            .filter(|n| (1..=400).contains(n))
            .ok_or((
                "duration",
                format!("{duration:?}: a count from 1 to 400 and a unit, e.g. 1M"),
            ))?;
        let nominal = unit.nominal_seconds() * u64::from(count);
        if nominal > 400 * 86_400 {
            return Err(("duration", format!("{duration:?}: at most 400 days")));
        }
        let cal = Self {
            unit,
            count,
            start_time: start_time.to_owned(),
            time_zone: time_zone.to_owned(),
        };
        cal.start().map_err(|e| ("calendar", e.0))?;
        Ok((cal, nominal))
    }

    fn zone(&self) -> Result<TimeZone, BadCalendar> {
        TimeZone::get(&self.time_zone).map_err(|e| {
            BadCalendar(format!(
                "timeZone {:?} is not an IANA time zone: {e}",
                self.time_zone
            ))
        })
    }

    fn start(&self) -> Result<Zoned, BadCalendar> {
        let dt = DateTime::strptime("%Y-%m-%d %H:%M:%S", &self.start_time)
            .or_else(|_| self.start_time.parse::<DateTime>())
            .map_err(|e| {
                BadCalendar(format!(
                    "startTime {:?}: expected \"YYYY-MM-DD HH:MM:SS\": {e}",
                    self.start_time
                ))
            })?;
        dt.to_zoned(self.zone()?)
            .map_err(|e| BadCalendar(format!("startTime in {}: {e}", self.time_zone)))
    }

    /// The start (unix seconds) of the period holding unix time `at`: the latest
    /// `startTime + k × count units` (k may be negative) at or before `at`.
    pub fn period_start(&self, at: i64) -> Result<i64, BadCalendar> {
        let start = self.start()?;
        let now = Timestamp::from_second(at)
            .map_err(|e| BadCalendar(format!("time {at}: {e}")))?
            .to_zoned(start.time_zone().clone());
        let (unit, per) = self.unit.counted();
        let step = per * i64::from(self.count);
        let elapsed = now
            .since((unit, &start))
            .map_err(|e| BadCalendar(format!("calendar arithmetic: {e}")))?;
        let units = match unit {
            Unit::Day => i64::from(elapsed.get_days()),
            Unit::Week => i64::from(elapsed.get_weeks()),
            Unit::Month => i64::from(elapsed.get_months()),
            _ => i64::from(elapsed.get_years()),
        };
        // Period k starts `k × step` units after the start.
        let at_k = |k: i64| -> Result<Zoned, BadCalendar> {
            let n = k
                .checked_mul(step)
                .ok_or_else(|| BadCalendar("calendar arithmetic overflows".into()))?;
            start
                .checked_add(span(unit, n)?)
                .map_err(|e| BadCalendar(format!("calendar arithmetic: {e}")))
        };
        // `since` truncates toward zero: step back or forward to the period holding `now`.
        let mut k = units.div_euclid(step);
        let mut begin = at_k(k)?;
        while begin > now {
            k -= 1;
            begin = at_k(k)?;
        }
        loop {
            let next = at_k(k + 1)?;
            if next > now {
                break;
            }
            k += 1;
            begin = next;
        }
        Ok(begin.timestamp().as_second())
    }
}
