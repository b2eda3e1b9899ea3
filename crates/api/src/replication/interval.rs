//! `schedulingInterval`: how often a driver syncs a replicated volume to its peer.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A parsed `schedulingInterval` (`^\d+[mhd]$`: minutes, hours or days).
///
/// The Go controller cannot parse `d` and silently falls back to one hour; Lifeline parses all
/// three units and rejects anything else with an error that says what is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchedulingInterval {
    count: u64,
    unit: Unit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Unit {
    Minutes,
    Hours,
    Days,
}

impl Unit {
    const fn seconds(self) -> u64 {
        match self {
            Unit::Minutes => 60,
            Unit::Hours => 60 * 60,
            Unit::Days => 24 * 60 * 60,
        }
    }

    const fn suffix(self) -> char {
        match self {
            Unit::Minutes => 'm',
            Unit::Hours => 'h',
            Unit::Days => 'd',
        }
    }
}

/// Why a `schedulingInterval` is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    #[error(
        "schedulingInterval is empty; expected a whole number followed by m, h or d, e.g. \"12m\", \"1h\", \"1d\""
    )]
    Empty,
    #[error(
        "schedulingInterval {0:?} has no valid unit; expected m (minutes), h (hours) or d (days), e.g. \"12m\", \"1h\", \"1d\""
    )]
    BadUnit(String),
    #[error(
        "schedulingInterval {0:?} must start with a whole number of minutes, hours or days, e.g. \"12m\""
    )]
    BadNumber(String),
    #[error("schedulingInterval {0:?} must be greater than zero")]
    Zero(String),
    #[error("schedulingInterval {0:?} is too large")]
    TooLarge(String),
}

impl SchedulingInterval {
    /// The refresh interval the controller uses when a class sets no `schedulingInterval`.
    pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60 * 60);

    /// The interval as a duration.
    pub fn as_duration(self) -> Duration {
        // `FromStr` rejects values whose seconds overflow, so this cannot wrap.
        Duration::from_secs(self.count * self.unit.seconds())
    }

    /// How often the controller refreshes replication info for a primary with this interval:
    /// the interval itself when it is under two minutes, otherwise half of it, so a stale sync
    /// is noticed within one interval.
    pub fn refresh_interval(self) -> Duration {
        let interval = self.as_duration();
        if interval < Duration::from_secs(120) {
            interval
        } else {
            interval / 2
        }
    }
}

impl FromStr for SchedulingInterval {
    type Err = IntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(last) = s.chars().last() else {
            return Err(IntervalError::Empty);
        };
        let unit = match last {
            'm' => Unit::Minutes,
            'h' => Unit::Hours,
            'd' => Unit::Days,
            _ => return Err(IntervalError::BadUnit(s.to_owned())),
        };
        let digits = &s[..s.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IntervalError::BadNumber(s.to_owned()));
        }
        let count: u64 = digits
            .parse()
            .map_err(|_| IntervalError::TooLarge(s.to_owned()))?;
        if count == 0 {
            return Err(IntervalError::Zero(s.to_owned()));
        }
        if count.checked_mul(unit.seconds()).is_none() {
            return Err(IntervalError::TooLarge(s.to_owned()));
        }
        Ok(Self { count, unit })
    }
}

impl fmt::Display for SchedulingInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SchedulingInterval, IntervalError> {
        s.parse()
    }

    #[test]
    fn parses_minutes_hours_and_days() {
        assert_eq!(
            parse("12m").unwrap().as_duration(),
            Duration::from_secs(720)
        );
        assert_eq!(
            parse("1h").unwrap().as_duration(),
            Duration::from_secs(3600)
        );
        // The Go controller reads "1d" as one hour; a day is a day.
        assert_eq!(
            parse("1d").unwrap().as_duration(),
            Duration::from_secs(86_400)
        );
        assert_eq!(parse("007m").unwrap().to_string(), "7m");
        assert_eq!(parse("30m").unwrap().to_string(), "30m");
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert_eq!(parse(""), Err(IntervalError::Empty));
        assert_eq!(parse("0m"), Err(IntervalError::Zero("0m".into())));
        assert_eq!(parse("5s"), Err(IntervalError::BadUnit("5s".into())));
        assert_eq!(parse("1w"), Err(IntervalError::BadUnit("1w".into())));
        assert_eq!(parse("12"), Err(IntervalError::BadUnit("12".into())));
        assert_eq!(parse("-1h"), Err(IntervalError::BadNumber("-1h".into())));
        assert_eq!(parse("h"), Err(IntervalError::BadNumber("h".into())));
        assert_eq!(parse(" 1h"), Err(IntervalError::BadNumber(" 1h".into())));
        assert_eq!(parse("1.5h"), Err(IntervalError::BadNumber("1.5h".into())));
        assert_eq!(parse("1hm"), Err(IntervalError::BadNumber("1hm".into())));
        let too_many_days = format!("{}d", u64::MAX / 86_400 + 1);
        assert_eq!(
            parse(&too_many_days),
            Err(IntervalError::TooLarge(too_many_days.clone()))
        );
        let too_many_digits = "99999999999999999999999m";
        assert_eq!(
            parse(too_many_digits),
            Err(IntervalError::TooLarge(too_many_digits.into()))
        );
        let message = parse("1w").unwrap_err().to_string();
        assert!(
            message.contains("\"1w\"") && message.contains("m (minutes)"),
            "{message}"
        );
    }

    #[test]
    fn refresh_is_the_interval_under_two_minutes_else_half() {
        assert_eq!(
            parse("1m").unwrap().refresh_interval(),
            Duration::from_secs(60)
        );
        assert_eq!(
            parse("2m").unwrap().refresh_interval(),
            Duration::from_secs(60)
        );
        assert_eq!(
            parse("1h").unwrap().refresh_interval(),
            Duration::from_secs(1800)
        );
        assert_eq!(
            parse("1d").unwrap().refresh_interval(),
            Duration::from_secs(43_200)
        );
    }
}
