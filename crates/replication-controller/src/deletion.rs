//! What a deleted VolumeReplication does when what it needs to disable replication cannot be
//! resolved. Pure.
//!
//! Dropping the finalizer there would leave replication enabled on the storage with nothing
//! left in the cluster that says so. So deletion lets go only when nothing can have been
//! enabled (the claim never had a CSI volume of this driver), and otherwise waits, with a
//! condition and an Event saying why, until the cause is fixed or the user deliberately
//! annotates the VolumeReplication with [`DELETE_WITHOUT_DISABLE`].

use crate::error::{Error, Invalid, Retry};

/// Annotation a user sets (value `"true"`) to delete a VolumeReplication whose replication
/// cannot be disabled, accepting that it may stay enabled on the storage.
pub const DELETE_WITHOUT_DISABLE: &str = "replication.lifeline.dev/delete-without-disable";

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing can have been enabled on the storage: release the claim and let go.
    NothingToDisable,
    /// Another VolumeReplication owns the claim: let go, leave the claim and its replication.
    NotOurs,
    /// Transient: try again with backoff.
    Retry,
    /// Replication may be enabled and cannot be disabled: keep the finalizer and say why.
    Blocked,
    /// The user asked to delete without disabling.
    Abandon,
}

/// The verdict for a deletion whose inputs did not resolve with `error`.
pub fn verdict(error: &Error, delete_without_disable: bool) -> Verdict {
    let verdict = match error {
        Error::Kube(_) => return Verdict::Retry,
        Error::Invalid(Invalid::PvcClaimed { .. }) => return Verdict::NotOurs,
        Error::Invalid(
            Invalid::UnsupportedDataSource { .. }
            | Invalid::PvcMissing { .. }
            | Invalid::PvcNotBound { .. }
            | Invalid::PvMissing { .. }
            | Invalid::PvNotCsi { .. }
            | Invalid::DriverMismatch { .. }
            | Invalid::GroupMissing { .. }
            | Invalid::GroupNotReady { .. },
        ) => return Verdict::NothingToDisable,
        Error::Driver(e) if e.retry() == Retry::Backoff => Verdict::Retry,
        _ => Verdict::Blocked,
    };
    if delete_without_disable {
        Verdict::Abandon
    } else {
        verdict
    }
}

/// Whether the VolumeReplication carries [`DELETE_WITHOUT_DISABLE`]`: "true"`.
pub fn asked_to_abandon(annotations: &std::collections::BTreeMap<String, String>) -> bool {
    annotations
        .get(DELETE_WITHOUT_DISABLE)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The condition message while deletion waits.
pub fn blocked_message(namespace: &str, name: &str, error: &Error) -> String {
    format!(
        "deletion waits: replication may still be enabled on the storage and cannot be disabled \
         ({error}); fix that, or delete without disabling: kubectl annotate \
         volumereplication -n {namespace} {name} {DELETE_WITHOUT_DISABLE}=true"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DriverError;

    fn class_missing() -> Error {
        Invalid::ClassMissing { name: "m".into() }.into()
    }

    #[test]
    fn missing_inputs_block_deletion_unless_the_user_abandons() {
        let blocked = [
            class_missing(),
            Invalid::SecretMissing {
                class: "m".into(),
                namespace: "ns".into(),
                name: "s".into(),
            }
            .into(),
            DriverError::NotConfigured {
                provisioner: "p".into(),
                configured: String::new(),
            }
            .into(),
        ];
        for error in &blocked {
            assert_eq!(verdict(error, false), Verdict::Blocked, "{error}");
            assert_eq!(verdict(error, true), Verdict::Abandon, "{error}");
        }
    }

    #[test]
    fn a_claim_that_never_had_a_volume_lets_go_and_another_owner_is_left_alone() {
        let never = Error::from(Invalid::PvcNotBound {
            namespace: "ns".into(),
            name: "c".into(),
            phase: "Pending".into(),
        });
        assert_eq!(verdict(&never, false), Verdict::NothingToDisable);
        let claimed = Error::from(Invalid::PvcClaimed {
            namespace: "ns".into(),
            name: "c".into(),
            owner: "other".into(),
        });
        assert_eq!(verdict(&claimed, true), Verdict::NotOurs);
    }

    #[test]
    fn the_message_says_how_to_delete_anyway_and_only_true_counts() {
        let m = blocked_message("shop", "db", &class_missing());
        assert!(m.contains("kubectl annotate volumereplication -n shop db replication.lifeline.dev/delete-without-disable=true"), "{m}");
        let with = |v: &str| [(DELETE_WITHOUT_DISABLE.to_owned(), v.to_owned())].into();
        assert!(asked_to_abandon(&with("true")) && asked_to_abandon(&with(" TRUE ")));
        assert!(!asked_to_abandon(&with("yes")) && !asked_to_abandon(&Default::default()));
    }
}
