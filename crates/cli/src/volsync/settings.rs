//! The pair's settings as the claims carry them ([`super::INTERVAL`], [`super::SERVICE_TYPE`]),
//! and the cron schedule an interval becomes. Pure; a malformed value is refused naming the
//! annotation and what to write.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Error;

/// How the destination's Service is reached from the other cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceType {
    /// A cloud load balancer in front of the destination (the default: two clusters share no
    /// Service network).
    #[value(name = "LoadBalancer")]
    LoadBalancer,
    /// The Service's cluster IP: for clusters joined by a multi-cluster network (Submariner).
    #[value(name = "ClusterIP")]
    ClusterIP,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::LoadBalancer => "LoadBalancer",
            ServiceType::ClusterIP => "ClusterIP",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "LoadBalancer" => Some(ServiceType::LoadBalancer),
            "ClusterIP" => Some(ServiceType::ClusterIP),
            _ => None,
        }
    }
}

/// What both ends of a pair are built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub interval: Duration,
    pub service_type: ServiceType,
}

impl Settings {
    /// The annotations that record these settings on a claim.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                super::INTERVAL.to_owned(),
                self.interval.as_secs().to_string(),
            ),
            (
                super::SERVICE_TYPE.to_owned(),
                self.service_type.as_str().to_owned(),
            ),
        ])
    }

    /// Reads them back from a claim's annotations; `what` names the claim in a refusal.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
        what: &str,
    ) -> Result<Self, Error> {
        let get = |key: &str| {
            annotations.get(key).ok_or_else(|| {
                Error::Refused(format!(
                    "{what} has no {key} annotation: it was not protected by `kubectl lifeline protect --method volsync`; protect it again"
                ))
            })
        };
        let interval = get(super::INTERVAL)?;
        let interval = interval
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
            .filter(|d| schedule(*d).is_ok())
            .ok_or_else(|| {
                Error::Refused(format!(
                    "{what}: annotation {}={interval:?} is not an interval VolSync can schedule; write whole minutes in seconds (60..=86400), e.g. \"300\"",
                    super::INTERVAL
                ))
            })?;
        let service_type = get(super::SERVICE_TYPE)?;
        let service_type = ServiceType::parse(service_type).ok_or_else(|| {
            Error::Refused(format!(
                "{what}: annotation {}={service_type:?} is not a Service type; write LoadBalancer or ClusterIP",
                super::SERVICE_TYPE
            ))
        })?;
        Ok(Settings {
            interval,
            service_type,
        })
    }
}

/// The cron schedule that syncs every `interval`: whole minutes up to an hour, whole hours up
/// to a day. A step that does not divide the hour (or day) makes one shorter gap at the wrap,
/// never a longer one, so `interval` stays the bound.
pub fn schedule(interval: Duration) -> Result<String, String> {
    let secs = interval.as_secs();
    let refuse = || {
        format!(
            "an interval of {secs}s cannot be a VolSync schedule: give whole minutes from 1m to 59m, whole hours from 1h to 23h, or 24h"
        )
    };
    if secs == 0 || !secs.is_multiple_of(60) {
        return Err(refuse());
    }
    let minutes = secs / 60;
    match minutes {
        1 => Ok("* * * * *".into()),
        2..=59 => Ok(format!("*/{minutes} * * * *")),
        m if m.is_multiple_of(60) && m / 60 == 1 => Ok("0 * * * *".into()),
        m if m.is_multiple_of(60) && m / 60 < 24 => Ok(format!("0 */{} * * *", m / 60)),
        1440 => Ok("0 0 * * *".into()),
        _ => Err(refuse()),
    }
}

/// The interval of a schedule [`schedule`] writes (or `@hourly`/`@daily`); `None` for any
/// other shape, whose bound is then unknown.
pub fn interval_of(schedule: &str) -> Option<Duration> {
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    let step = |field: &str| -> Option<u64> {
        match field {
            "*" => Some(1),
            f => f.strip_prefix("*/")?.parse().ok().filter(|n| *n > 0),
        }
    };
    match fields.as_slice() {
        ["@hourly"] => Some(Duration::from_secs(3600)),
        ["@daily"] | ["@midnight"] => Some(Duration::from_secs(86_400)),
        [m, "*", "*", "*", "*"] if m.starts_with('*') => Some(Duration::from_secs(step(m)? * 60)),
        ["0", "0", "*", "*", "*"] => Some(Duration::from_secs(86_400)),
        [m, h, "*", "*", "*"] if m.parse::<u8>().is_ok_and(|m| m < 60) => {
            Some(Duration::from_secs(step(h)? * 3600))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_becomes_a_schedule_and_back() {
        for (secs, cron) in [
            (60, "* * * * *"),
            (300, "*/5 * * * *"),
            (3540, "*/59 * * * *"),
            (3600, "0 * * * *"),
            (7200, "0 */2 * * *"),
            (86_400, "0 0 * * *"),
        ] {
            let d = Duration::from_secs(secs);
            assert_eq!(schedule(d).as_deref(), Ok(cron));
            assert_eq!(interval_of(cron), Some(d), "{cron}");
        }
        for bad in [0, 30, 90, 3660, 90_000] {
            let error = schedule(Duration::from_secs(bad)).unwrap_err();
            assert!(error.contains("whole minutes"), "{error}");
        }
        for other in ["", "*/0 * * * *", "5 4 * * sun", "*/x * * * *", "@weekly"] {
            assert_eq!(interval_of(other), None, "{other:?}");
        }
    }

    #[test]
    fn settings_round_trip_through_annotations_and_malformed_ones_are_named() {
        let settings = Settings {
            interval: Duration::from_secs(300),
            service_type: ServiceType::LoadBalancer,
        };
        let annotations = settings.annotations();
        assert_eq!(
            Settings::from_annotations(&annotations, "claim shop/db").unwrap(),
            settings
        );
        for (key, value, says) in [
            (super::super::INTERVAL, "5m", "whole minutes"),
            (super::super::INTERVAL, "45", "whole minutes"),
            (
                super::super::SERVICE_TYPE,
                "NodePort",
                "LoadBalancer or ClusterIP",
            ),
        ] {
            let mut bad = annotations.clone();
            bad.insert(key.into(), value.into());
            let error = Settings::from_annotations(&bad, "claim shop/db")
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(key) && error.contains(says) && error.contains("shop/db"),
                "{error}"
            );
        }
        let error = Settings::from_annotations(&BTreeMap::new(), "claim shop/db")
            .unwrap_err()
            .to_string();
        assert!(error.contains("protect it again"), "{error}");
    }
}
