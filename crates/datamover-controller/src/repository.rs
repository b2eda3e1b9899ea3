//! The user's restic Secret, checked before anything is created: `RESTIC_PASSWORD` present, a
//! repository base in one of restic's forms, and the credentials that form needs. The
//! per-request Secret points at one stable repository per source volume —
//! `<base>/<source namespace>/<source PVC>` — so successive backups of a volume deduplicate.

use std::collections::BTreeMap;

pub const RESTIC_REPOSITORY: &str = "RESTIC_REPOSITORY";
pub const RESTIC_PASSWORD: &str = "RESTIC_PASSWORD";
/// OADP's key for a private CA of the repository endpoint. VolSync never reads it from the
/// environment; the mover gets it through `spec.restic.customCA` pointing at this key.
pub const RESTIC_CUSTOM_CA: &str = "RESTIC_CUSTOM_CA";

/// Why a restic Secret cannot be used. Messages name keys, never values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the restic Secret has no {RESTIC_PASSWORD}; add it (the repository's password)")]
    NoPassword,
    #[error(
        "the restic Secret has no {RESTIC_REPOSITORY}; add the repository base, e.g. s3:https://host/bucket/prefix"
    )]
    NoRepository,
    #[error(
        "{RESTIC_REPOSITORY} has an unknown form ({form}); use s3:, azure:, gs:, rest:, b2:, swift:, rclone: or a local path"
    )]
    UnknownForm { form: String },
    #[error("{RESTIC_REPOSITORY} {form} repository is incomplete: {what}")]
    Malformed {
        form: &'static str,
        what: &'static str,
    },
    #[error("a {form} repository needs {missing} in the restic Secret")]
    MissingCredentials { form: &'static str, missing: String },
    #[error("key {key:?} of the restic Secret is not valid UTF-8")]
    NotText { key: String },
}

/// The forms restic accepts for a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    S3,
    Azure,
    Gs,
    Rest,
    B2,
    Swift,
    Rclone,
    Local,
}

impl Form {
    pub fn as_str(self) -> &'static str {
        match self {
            Form::S3 => "s3",
            Form::Azure => "azure",
            Form::Gs => "gs",
            Form::Rest => "rest",
            Form::B2 => "b2",
            Form::Swift => "swift",
            Form::Rclone => "rclone",
            Form::Local => "local",
        }
    }
}

/// Parses the repository base and checks the parts restic needs.
pub fn form(repository: &str) -> Result<Form, SecretError> {
    let repository = repository.trim();
    if repository.is_empty() {
        return Err(SecretError::NoRepository);
    }
    if repository.starts_with('/')
        || repository.starts_with("./")
        || repository.starts_with("local:")
    {
        return Ok(Form::Local);
    }
    let Some((scheme, rest)) = repository.split_once(':') else {
        return Err(SecretError::UnknownForm {
            form: "no scheme".into(),
        });
    };
    let malformed = |form, what| Err(SecretError::Malformed { form, what });
    match scheme {
        "s3" => {
            // s3:host/bucket[/prefix] or s3:https://host/bucket[/prefix]
            let path = rest
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            let mut parts = path.splitn(3, '/');
            let (host, bucket) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if host.is_empty() || bucket.is_empty() {
                return malformed("s3", "expected s3:<endpoint>/<bucket>[/<prefix>]");
            }
            Ok(Form::S3)
        }
        "azure" | "gs" => {
            // azure:<container>:/<prefix>, gs:<bucket>:/<prefix>
            let form = if scheme == "azure" { "azure" } else { "gs" };
            match rest.split_once(':') {
                Some((bucket, path)) if !bucket.is_empty() && path.starts_with('/') => {
                    Ok(if scheme == "azure" {
                        Form::Azure
                    } else {
                        Form::Gs
                    })
                }
                _ => malformed(form, "expected <container>:/<prefix>"),
            }
        }
        "rest" => {
            if rest.starts_with("http://") || rest.starts_with("https://") {
                Ok(Form::Rest)
            } else {
                malformed("rest", "expected rest:http(s)://host[:port]/path")
            }
        }
        "b2" => match rest.split_once(':') {
            Some((bucket, _)) if !bucket.is_empty() => Ok(Form::B2),
            _ => malformed("b2", "expected b2:<bucket>:<prefix>"),
        },
        "swift" => match rest.split_once(':') {
            Some((container, _)) if !container.is_empty() => Ok(Form::Swift),
            _ => malformed("swift", "expected swift:<container>:/<prefix>"),
        },
        "rclone" if !rest.is_empty() => Ok(Form::Rclone),
        "rclone" => malformed("rclone", "expected rclone:<remote>:<path>"),
        other => Err(SecretError::UnknownForm {
            form: format!("{other}:"),
        }),
    }
}

/// Credentials each form needs, as alternatives: one whole group must be present.
fn credentials(form: Form) -> &'static [&'static [&'static str]] {
    match form {
        Form::S3 => &[
            &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            &["AWS_PROFILE"],
        ],
        Form::Azure => &[
            &["AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_KEY"],
            &["AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_SAS"],
        ],
        Form::Gs => &[&["GOOGLE_PROJECT_ID", "GOOGLE_APPLICATION_CREDENTIALS"]],
        Form::B2 => &[&["B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"]],
        Form::Rest | Form::Swift | Form::Rclone | Form::Local => &[&[]],
    }
}

/// The checked user Secret: its values, and the repository base.
#[derive(Clone, PartialEq, Eq)]
pub struct ResticSecret {
    pub data: BTreeMap<String, String>,
    pub base: String,
    pub form: Form,
}

impl std::fmt::Debug for ResticSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys only: values are credentials.
        f.debug_struct("ResticSecret")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("form", &self.form)
            .finish()
    }
}

impl ResticSecret {
    /// Checks the Secret's data (bytes as stored in `data`, or text from `stringData`).
    pub fn parse(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, SecretError> {
        let mut text = BTreeMap::new();
        for (key, value) in data {
            let value = String::from_utf8(value.clone())
                .map_err(|_| SecretError::NotText { key: key.clone() })?;
            text.insert(key.clone(), value);
        }
        if text.get(RESTIC_PASSWORD).is_none_or(|p| p.is_empty()) {
            return Err(SecretError::NoPassword);
        }
        let base = text.get(RESTIC_REPOSITORY).cloned().unwrap_or_default();
        let form = form(&base)?;
        let groups = credentials(form);
        let satisfied = groups.iter().any(|group| {
            group
                .iter()
                .all(|k| text.get(*k).is_some_and(|v| !v.is_empty()))
        });
        if !satisfied {
            return Err(SecretError::MissingCredentials {
                form: form.as_str(),
                missing: groups
                    .iter()
                    .map(|g| g.join(" and "))
                    .collect::<Vec<_>>()
                    .join(", or "),
            });
        }
        Ok(Self {
            base: base.trim().trim_end_matches('/').to_owned(),
            data: text,
            form,
        })
    }

    /// The repository of one source volume: `<base>/<namespace>/<pvc>`.
    pub fn repository_for(&self, namespace: &str, pvc: &str) -> String {
        format!("{}/{namespace}/{pvc}", self.base)
    }

    /// The per-request Secret's data: the user's keys, with the repository set.
    pub fn with_repository(&self, repository: &str) -> BTreeMap<String, String> {
        let mut data = self.data.clone();
        data.insert(RESTIC_REPOSITORY.into(), repository.to_owned());
        data
    }

    /// Whether the Secret carries a CA bundle for the repository endpoint.
    pub fn has_custom_ca(&self) -> bool {
        self.data
            .get(RESTIC_CUSTOM_CA)
            .is_some_and(|ca| !ca.trim().is_empty())
    }

    /// Every value of the Secret, for scrubbing them out of messages.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.data
            .values()
            .map(String::as_str)
            .filter(|v| v.len() >= 4)
    }
}

/// Replaces any secret value found in `text` with `[redacted]`.
pub fn scrub(text: &str, secret: Option<&ResticSecret>) -> String {
    let mut text = text.to_owned();
    if let Some(secret) = secret {
        for value in secret.values() {
            text = text.replace(value, "[redacted]");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(pairs: &[(&str, &str)]) -> Result<ResticSecret, SecretError> {
        ResticSecret::parse(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    #[test]
    fn every_restic_form_parses_and_needs_its_credentials() {
        let ok = [
            (
                "s3:http://s3.local:9000/bucket/prefix",
                &[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")][..],
            ),
            ("s3:s3.amazonaws.com/bucket", &[("AWS_PROFILE", "p")][..]),
            (
                "azure:container:/prefix",
                &[("AZURE_ACCOUNT_NAME", "n"), ("AZURE_ACCOUNT_KEY", "k")][..],
            ),
            (
                "gs:bucket:/prefix",
                &[
                    ("GOOGLE_PROJECT_ID", "p"),
                    ("GOOGLE_APPLICATION_CREDENTIALS", "{}"),
                ][..],
            ),
            ("rest:https://host:8000/repo", &[][..]),
            (
                "b2:bucket:prefix",
                &[("B2_ACCOUNT_ID", "i"), ("B2_ACCOUNT_KEY", "k")][..],
            ),
            ("swift:container:/prefix", &[][..]),
            ("rclone:remote:path", &[][..]),
            ("/var/backups/restic", &[][..]),
        ];
        for (repository, credentials) in ok {
            let mut pairs = vec![("RESTIC_PASSWORD", "pw"), ("RESTIC_REPOSITORY", repository)];
            pairs.extend_from_slice(credentials);
            let parsed = secret(&pairs).unwrap_or_else(|e| panic!("{repository}: {e}"));
            assert_eq!(parsed.base, repository.trim_end_matches('/'));
        }
        let err = secret(&[
            ("RESTIC_PASSWORD", "pw"),
            ("RESTIC_REPOSITORY", "s3:http://h/b"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"),
            "{err}"
        );
    }

    #[test]
    fn bad_secrets_say_which_key() {
        assert_eq!(
            secret(&[("RESTIC_REPOSITORY", "/r")]),
            Err(SecretError::NoPassword)
        );
        assert_eq!(
            secret(&[("RESTIC_PASSWORD", "p")]),
            Err(SecretError::NoRepository)
        );
        assert!(matches!(
            secret(&[("RESTIC_PASSWORD", "p"), ("RESTIC_REPOSITORY", "ftp:x")]),
            Err(SecretError::UnknownForm { .. })
        ));
        assert!(matches!(
            secret(&[
                ("RESTIC_PASSWORD", "p"),
                ("RESTIC_REPOSITORY", "s3:http://hostonly")
            ]),
            Err(SecretError::Malformed { .. })
        ));
        assert!(matches!(
            secret(&[
                ("RESTIC_PASSWORD", "p"),
                ("RESTIC_REPOSITORY", "azure:nocolon")
            ]),
            Err(SecretError::Malformed { .. })
        ));
    }

    #[test]
    fn one_stable_repository_per_source_volume() {
        let s = secret(&[
            ("RESTIC_PASSWORD", "p"),
            ("RESTIC_REPOSITORY", "/backups/lifeline/"),
        ])
        .unwrap();
        assert_eq!(
            s.repository_for("shop", "orders-db"),
            "/backups/lifeline/shop/orders-db"
        );
        assert_eq!(s.with_repository("/x")["RESTIC_REPOSITORY"], "/x");
        assert_eq!(s.with_repository("/x")["RESTIC_PASSWORD"], "p");
    }

    #[test]
    fn values_never_show() {
        let s = secret(&[
            ("RESTIC_PASSWORD", "hunter2-password"),
            ("RESTIC_REPOSITORY", "/r"),
        ])
        .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(
            scrub("Fatal: hunter2-password is wrong", Some(&s)),
            "Fatal: [redacted] is wrong"
        );
    }
}
