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
        let interval = lifeline_api::volsync_pair::recorded_interval(interval)
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

pub use lifeline_api::volsync_pair::{interval_of, schedule};

#[cfg(test)]
mod tests {
    use super::*;

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
