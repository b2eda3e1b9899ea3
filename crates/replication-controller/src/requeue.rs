//! When to look at a VolumeReplication again after an error.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::error::Retry;

/// First retry delay of a retryable error.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay of a retryable error.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How often an error that needs a change (spec, class, Secret, PVC) is checked again when
/// no watch event comes sooner: rare enough not to load the API server or the driver.
pub const AFTER_CHANGE: Duration = Duration::from_secs(300);

/// The delay before retry number `attempt` (0-based). `unit` in [0, 1) picks the jitter:
/// the delay is uniformly spread over the upper half of the exponential step, so a fleet of
/// VolumeReplications failing together does not retry together.
pub fn delay(retry: Retry, attempt: u32, unit: f64) -> Duration {
    match retry {
        Retry::AfterChange => AFTER_CHANGE,
        Retry::Backoff => {
            let step = BACKOFF_BASE
                .saturating_mul(2u32.saturating_pow(attempt.min(16)))
                .min(BACKOFF_MAX);
            step.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
        }
    }
}

/// A random number in [0, 1) from the standard library's per-process random hasher keys.
pub fn random_unit() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos()
            .into(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        assert_eq!(delay(Retry::Backoff, 0, 0.0), Duration::from_millis(500));
        assert_eq!(delay(Retry::Backoff, 0, 1.0), Duration::from_secs(1));
        assert_eq!(delay(Retry::Backoff, 3, 1.0), Duration::from_secs(8));
        assert_eq!(delay(Retry::Backoff, 30, 1.0), BACKOFF_MAX);
        assert_eq!(delay(Retry::Backoff, 30, 0.0), BACKOFF_MAX / 2);
    }

    #[test]
    fn errors_needing_a_change_are_not_hot_looped() {
        assert_eq!(delay(Retry::AfterChange, 0, 0.0), AFTER_CHANGE);
        assert!(AFTER_CHANGE >= Duration::from_secs(60));
    }

    #[test]
    fn random_units_are_in_range_and_vary() {
        let samples: Vec<f64> = (0..32).map(|_| random_unit()).collect();
        assert!(samples.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(samples.iter().any(|u| *u != samples[0]));
    }
}
