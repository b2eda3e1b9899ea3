//! Which restic repository a restore may read, and how a repository is shown.
//!
//! Backups and restores share the credentials of the protected namespace's restic Secret, so
//! a repository path is all that separates one tenant's backups from another's. A backup of
//! claim `c` in namespace `ns` is written to `<base>/<ns>/<c>`; a VolumeSnapshotRestore in
//! namespace `ns` may name only a repository of that form, whatever it says (it is a user's
//! field), and the repository the mover reads is rebuilt from the Secret's base, never taken
//! as given. A repository is shown (status, annotations, messages) without userinfo, since
//! `rest:https://user:password@host/` is a valid base.

use crate::problem::Problem;
use crate::repository::ResticSecret;

/// `repository` without the `user:password@` of a URL form.
pub fn shown(repository: &str) -> String {
    let Some(scheme_end) = repository.find("://") else {
        return repository.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &repository[authority_start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &repository[..authority_start], &rest[at + 1..]),
        None => repository.to_owned(),
    }
}

/// The repository a restore in `namespace` reads for `given` (its
/// `volumeSnapshotMoverBackupRef.resticrepository`): `<base>/<namespace>/<claim>` with the
/// Secret's real base, or the refusal naming the rule.
pub fn restorable(secret: &ResticSecret, namespace: &str, given: &str) -> Result<String, Problem> {
    let given = given.trim().trim_end_matches('/');
    let claim = [secret.base.as_str(), &shown(&secret.base)]
        .iter()
        .find_map(|base| given.strip_prefix(&format!("{base}/{namespace}/")))
        .filter(|claim| is_claim_name(claim));
    match claim {
        Some(claim) => Ok(secret.repository_for(namespace, claim)),
        None => Err(Problem::RepositoryNotOwned {
            repository: shown(given),
            namespace: namespace.to_owned(),
            allowed: format!("{}/{namespace}/<claim>", shown(&secret.base)),
        }),
    }
}

/// A claim name as a repository path segment: a DNS subdomain, so no `/`, `.` or `..`.
fn is_claim_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with(['.', '-'])
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn secret(base: &str) -> ResticSecret {
        let data: BTreeMap<String, Vec<u8>> = [
            ("RESTIC_PASSWORD", "pw"),
            ("RESTIC_REPOSITORY", base),
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect();
        ResticSecret::parse(&data).unwrap()
    }

    #[test]
    fn userinfo_never_shows() {
        assert_eq!(
            shown("rest:https://backup:hunter2@host:8000/repo/shop/db"),
            "rest:https://host:8000/repo/shop/db"
        );
        assert_eq!(
            shown("rest:https://a@b:p@host/x@y"),
            "rest:https://host/x@y"
        );
        assert_eq!(
            shown("s3:https://h/bucket/ns/c"),
            "s3:https://h/bucket/ns/c"
        );
        assert_eq!(shown("sftp:user@host:/srv"), "sftp:user@host:/srv");
    }

    #[test]
    fn a_restore_reads_only_its_own_namespaces_repositories() {
        let s = secret("s3:https://h/bucket");
        assert_eq!(
            restorable(&s, "shop", "s3:https://h/bucket/shop/orders-db").unwrap(),
            "s3:https://h/bucket/shop/orders-db"
        );
        for other in [
            "s3:https://h/bucket/bank/ledger",
            "s3:https://h/bucket/shop/../bank/ledger",
            "s3:https://h/bucket/shop/a/b",
            "s3:https://h/bucket/shop/",
            "s3:https://elsewhere/bucket/shop/orders-db",
            "s3:https://h/bucket/shopping/orders-db",
            "s3:https://h/bucket",
        ] {
            let e = restorable(&s, "shop", other).unwrap_err();
            assert_eq!(e.reason(), "RepositoryNotOwned", "{other}");
            assert!(
                e.to_string().contains("s3:https://h/bucket/shop/<claim>"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_repository_shown_without_its_password_still_restores_with_it() {
        let s = secret("rest:https://backup:hunter2@host:8000/repo");
        let shown_in_status = shown(&s.repository_for("shop", "db"));
        assert!(!shown_in_status.contains("hunter2"));
        assert_eq!(
            restorable(&s, "shop", &shown_in_status).unwrap(),
            "rest:https://backup:hunter2@host:8000/repo/shop/db"
        );
        let e = restorable(&s, "bank", &shown_in_status).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
