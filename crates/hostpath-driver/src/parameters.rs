//! Driver parameters: validation (a real driver rejects bad ones) and the sync interval.

use std::collections::BTreeMap;
use std::time::Duration;

use lifeline_api::replication::{SCHEDULING_INTERVAL, SCHEDULING_START_TIME, SchedulingInterval};

use crate::site::SiteError;

/// Driver parameter for sub-minute sync intervals (tests, demos).
pub const SYNC_INTERVAL_SECONDS: &str = "lifeline.dev/sync-interval-seconds";

/// The interval at which a primary ships, from its parameters.
pub fn sync_interval(parameters: &BTreeMap<String, String>) -> Option<Duration> {
    if let Some(seconds) = parameters
        .get(SYNC_INTERVAL_SECONDS)
        .and_then(|s| s.parse().ok())
    {
        return Some(Duration::from_secs(seconds));
    }
    parameters
        .get(SCHEDULING_INTERVAL)
        .and_then(|s| s.parse::<SchedulingInterval>().ok())
        .map(SchedulingInterval::as_duration)
}

/// Rejects parameters a real driver would reject, naming the parameter.
pub fn validate_parameters(parameters: &BTreeMap<String, String>) -> Result<(), SiteError> {
    let interval = parameters.get(SCHEDULING_INTERVAL);
    if let Some(value) = interval {
        value.parse::<SchedulingInterval>().map_err(|e| {
            SiteError::InvalidArgument(format!("parameter {SCHEDULING_INTERVAL}: {e}"))
        })?;
    }
    if let Some(start) = parameters.get(SCHEDULING_START_TIME) {
        if interval.is_none() {
            return Err(SiteError::InvalidArgument(format!(
                "parameter {SCHEDULING_START_TIME} is only valid together with {SCHEDULING_INTERVAL}"
            )));
        }
        if !is_time_of_day(start) {
            return Err(SiteError::InvalidArgument(format!(
                "parameter {SCHEDULING_START_TIME}: {start:?} is not an ISO 8601 time (HH:MM or HH:MM:SS)"
            )));
        }
    }
    if let Some(seconds) = parameters.get(SYNC_INTERVAL_SECONDS)
        && !seconds.parse::<u64>().is_ok_and(|s| s > 0)
    {
        return Err(SiteError::InvalidArgument(format!(
            "parameter {SYNC_INTERVAL_SECONDS}: {seconds:?} is not a positive whole number of seconds"
        )));
    }
    Ok(())
}

fn is_time_of_day(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    let limits = [24, 60, 60];
    (2..=3).contains(&parts.len())
        && parts.iter().zip(limits).all(|(p, limit)| {
            p.len() == 2
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u32>().is_ok_and(|v| v < limit)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parameters_are_validated_by_name() {
        assert!(
            validate_parameters(&params(&[
                ("schedulingInterval", "1d"),
                ("schedulingStartTime", "02:15:00")
            ]))
            .is_ok()
        );
        for (bad, named) in [
            (
                params(&[("schedulingInterval", "5s")]),
                "schedulingInterval",
            ),
            (
                params(&[("schedulingStartTime", "02:15")]),
                "schedulingStartTime",
            ),
            (
                params(&[
                    ("schedulingInterval", "1h"),
                    ("schedulingStartTime", "25:00"),
                ]),
                "schedulingStartTime",
            ),
            (
                params(&[(SYNC_INTERVAL_SECONDS, "0")]),
                SYNC_INTERVAL_SECONDS,
            ),
        ] {
            let err = validate_parameters(&bad).unwrap_err();
            assert!(matches!(err, SiteError::InvalidArgument(_)), "{err}");
            assert!(err.to_string().contains(named), "{err}");
        }
    }

    #[test]
    fn interval_comes_from_the_override_then_the_schedule() {
        assert_eq!(
            sync_interval(&params(&[
                (SYNC_INTERVAL_SECONDS, "2"),
                ("schedulingInterval", "1h")
            ])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            sync_interval(&params(&[("schedulingInterval", "1d")])),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(sync_interval(&params(&[])), None);
    }
}
