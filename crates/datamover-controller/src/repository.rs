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
        "{RESTIC_REPOSITORY} has an unknown form ({form}); use s3:, azure:, gs:, rest:, b2: or swift: (VolSync's restic mover has no rclone, and no sftp)"
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
    #[error("{first} is set but {missing} is not; set both (or neither) in the restic Secret")]
    HalfPair {
        first: &'static str,
        missing: &'static str,
    },
    #[error("{key} in the restic Secret {problem}")]
    BadSetting { key: String, problem: String },
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
        other => Err(SecretError::UnknownForm {
            form: format!("{other}:"),
        }),
    }
}

/// Credentials each form needs, as alternatives: one whole group must be present. These are
/// the forms VolSync's restic mover can use (its environment is these keys, nothing else).
fn credentials(form: Form) -> &'static [&'static [&'static str]] {
    match form {
        Form::S3 => &[
            &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            // A profile (with the mover's mounted config), or restic's assume-role (IRSA).
            &["AWS_PROFILE"],
            &["RESTIC_AWS_ASSUME_ROLE_ARN"],
        ],
        Form::Azure => &[
            &["AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_KEY"],
            &["AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_SAS"],
            // Workload identity: no key, a federated token.
            &[
                "AZURE_ACCOUNT_NAME",
                "AZURE_TENANT_ID",
                "AZURE_CLIENT_ID",
                "AZURE_FEDERATED_TOKEN_FILE",
            ],
        ],
        Form::Gs => &[&["GOOGLE_PROJECT_ID", "GOOGLE_APPLICATION_CREDENTIALS"]],
        Form::B2 => &[&["B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"]],
        Form::Swift => &[
            &["ST_AUTH", "ST_USER", "ST_KEY"],
            &["OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD"],
            &["OS_AUTH_URL", "OS_USER_ID", "OS_PASSWORD"],
            &[
                "OS_AUTH_URL",
                "OS_APPLICATION_CREDENTIAL_ID",
                "OS_APPLICATION_CREDENTIAL_SECRET",
            ],
            &[
                "OS_AUTH_URL",
                "OS_APPLICATION_CREDENTIAL_NAME",
                "OS_APPLICATION_CREDENTIAL_SECRET",
            ],
            &["OS_STORAGE_URL", "OS_AUTH_TOKEN"],
        ],
        // A REST server may need no credentials; user and password come as a pair (below).
        Form::Rest | Form::Local => &[&[]],
    }
}

/// The keys VolSync's restic mover passes from the repository Secret to restic (spec:
/// "How the real restic mover runs"); anything else in the Secret never reaches restic. The
/// harness's VolSync stand-in keeps its own copy of the list on purpose: a key missing here
/// then fails a test instead of agreeing with itself.
pub const PASSED_KEYS: &[&str] = &[
    "RESTIC_REPOSITORY",
    "RESTIC_PASSWORD",
    "RESTIC_COMPRESSION",
    "RESTIC_PACK_SIZE",
    "RESTIC_READ_CONCURRENCY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "RESTIC_AWS_ASSUME_ROLE_ARN",
    "RESTIC_AWS_ASSUME_ROLE_SESSION_NAME",
    "RESTIC_AWS_ASSUME_ROLE_EXTERNAL_ID",
    "RESTIC_AWS_ASSUME_ROLE_POLICY",
    "RESTIC_AWS_ASSUME_ROLE_REGION",
    "RESTIC_AWS_ASSUME_ROLE_STS_ENDPOINT",
    "ST_AUTH",
    "ST_USER",
    "ST_KEY",
    "OS_AUTH_URL",
    "OS_REGION_NAME",
    "OS_USERNAME",
    "OS_USER_ID",
    "OS_PASSWORD",
    "OS_TENANT_ID",
    "OS_TENANT_NAME",
    "OS_USER_DOMAIN_NAME",
    "OS_USER_DOMAIN_ID",
    "OS_PROJECT_NAME",
    "OS_PROJECT_DOMAIN_NAME",
    "OS_PROJECT_DOMAIN_ID",
    "OS_TRUST_ID",
    "OS_APPLICATION_CREDENTIAL_ID",
    "OS_APPLICATION_CREDENTIAL_NAME",
    "OS_APPLICATION_CREDENTIAL_SECRET",
    "OS_STORAGE_URL",
    "OS_AUTH_TOKEN",
    "B2_ACCOUNT_ID",
    "B2_ACCOUNT_KEY",
    "AZURE_ACCOUNT_NAME",
    "AZURE_ACCOUNT_KEY",
    "AZURE_ACCOUNT_SAS",
    "AZURE_ENDPOINT_SUFFIX",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "GOOGLE_PROJECT_ID",
    "RESTIC_REST_USERNAME",
    "RESTIC_REST_PASSWORD",
    // Mounted as a file by the mover, not passed in the environment.
    "GOOGLE_APPLICATION_CREDENTIALS",
];

/// OADP's settings in the restic Secret, which the data mover reads (volume-snapshot-mover's
/// keys) and turns into the ReplicationSource's fields.
pub const PRUNE_INTERVAL: &str = "restic-prune-interval";
pub const RETAIN_PREFIX: &str = "SnapshotRetainPolicy";
pub const SCHEDULE_CRON: &str = "SnapshotScheduleCron";

fn consumed(key: &str) -> bool {
    key == RESTIC_CUSTOM_CA
        || key == PRUNE_INTERVAL
        || key == SCHEDULE_CRON
        || key.starts_with(RETAIN_PREFIX)
}

/// What OADP users set in their restic Secret besides the repository and credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OadpSecretSettings {
    /// `restic-prune-interval`: days between prunes (`pruneIntervalDays`).
    pub prune_interval_days: Option<i32>,
    /// `SnapshotRetainPolicy{Hourly,Daily,Weekly,Monthly,Yearly,Within}`.
    pub retain: Option<lifeline_api::foreign::volsync::ResticRetainPolicy>,
    /// `SnapshotScheduleCron`: kept to say it does not apply (a VolumeSnapshotBackup is one
    /// backup, taken when it is created).
    pub schedule_cron: Option<String>,
}

impl OadpSecretSettings {
    /// Parses the keys; a bad value is an error naming the key (never the value of another).
    pub fn parse(data: &BTreeMap<String, String>) -> Result<Self, SecretError> {
        let count = |key: &str| -> Result<Option<i32>, SecretError> {
            let Some(text) = data.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            match text.parse::<i32>() {
                Ok(n) if n >= 0 => Ok(Some(n)),
                _ => Err(SecretError::BadSetting {
                    key: key.to_owned(),
                    problem: format!("must be a whole number ≥ 0, not {text:?}"),
                }),
            }
        };
        let prune_interval_days = count(PRUNE_INTERVAL)?;
        let mut retain = lifeline_api::foreign::volsync::ResticRetainPolicy {
            hourly: count("SnapshotRetainPolicyHourly")?,
            daily: count("SnapshotRetainPolicyDaily")?,
            weekly: count("SnapshotRetainPolicyWeekly")?,
            monthly: count("SnapshotRetainPolicyMonthly")?,
            yearly: count("SnapshotRetainPolicyYearly")?,
            ..Default::default()
        };
        if let Some(within) = data
            .get("SnapshotRetainPolicyWithin")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        {
            // restic's duration: a number and a unit, e.g. 2y5m7d3h.
            let valid = within
                .split_inclusive(|c: char| c.is_ascii_alphabetic())
                .all(|part| {
                    // The unit is the last character, which need not be one byte ("1é").
                    let Some((at, unit)) = part.char_indices().last() else {
                        return false;
                    };
                    let n = &part[..at];
                    !n.is_empty()
                        && n.bytes().all(|c| c.is_ascii_digit())
                        && matches!(unit, 'y' | 'm' | 'd' | 'h')
                });
            if !valid {
                return Err(SecretError::BadSetting {
                    key: "SnapshotRetainPolicyWithin".into(),
                    problem: format!("must be a restic duration like 3d or 1y6m, not {within:?}"),
                });
            }
            retain.within = Some(within.to_owned());
        }
        for key in data.keys().filter(|k| k.starts_with(RETAIN_PREFIX)) {
            let known = ["Hourly", "Daily", "Weekly", "Monthly", "Yearly", "Within"];
            if !known.iter().any(|k| *key == format!("{RETAIN_PREFIX}{k}")) {
                return Err(SecretError::BadSetting {
                    key: key.clone(),
                    problem: format!(
                        "is not one of OADP's keys ({})",
                        known.map(|k| format!("{RETAIN_PREFIX}{k}")).join(", ")
                    ),
                });
            }
        }
        let any = retain != Default::default();
        Ok(Self {
            prune_interval_days,
            retain: any.then_some(retain),
            schedule_cron: data.get(SCHEDULE_CRON).cloned(),
        })
    }
}

/// The checked user Secret: its values, and the repository base.
#[derive(Clone, PartialEq, Eq)]
pub struct ResticSecret {
    pub data: BTreeMap<String, String>,
    pub base: String,
    pub form: Form,
    /// OADP's settings in it (checked with the rest).
    pub oadp: OadpSecretSettings,
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
        for (first, second) in [
            ("RESTIC_REST_USERNAME", "RESTIC_REST_PASSWORD"),
            ("RESTIC_REST_PASSWORD", "RESTIC_REST_USERNAME"),
        ] {
            if text.contains_key(first) && !text.contains_key(second) {
                return Err(SecretError::HalfPair {
                    first,
                    missing: second,
                });
            }
        }
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
        let oadp = OadpSecretSettings::parse(&text)?;
        Ok(Self {
            base: base.trim().trim_end_matches('/').to_owned(),
            data: text,
            form,
            oadp,
        })
    }

    /// The repository of one source volume: `<base>/<namespace>/<pvc>`.
    pub fn repository_for(&self, namespace: &str, pvc: &str) -> String {
        format!("{}/{namespace}/{pvc}", self.base)
    }

    /// The per-request Secret's data: exactly the keys the mover passes to restic (and the CA
    /// its `customCA` points at), with the repository set. Nothing else is copied.
    pub fn with_repository(&self, repository: &str) -> BTreeMap<String, String> {
        let mut data: BTreeMap<String, String> = self
            .data
            .iter()
            .filter(|(k, _)| PASSED_KEYS.contains(&k.as_str()) || k.as_str() == RESTIC_CUSTOM_CA)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        data.insert(RESTIC_REPOSITORY.into(), repository.to_owned());
        data
    }

    /// Keys of the user's Secret the mover would drop (neither passed to restic nor read by
    /// the data mover), by name: reported so a misspelled credential is not silently lost.
    pub fn ignored_keys(&self) -> Vec<&str> {
        self.data
            .keys()
            .map(String::as_str)
            .filter(|k| !PASSED_KEYS.contains(k) && !consumed(k))
            .collect()
    }

    /// What the user should know about their Secret when a request starts: keys the mover
    /// would drop (by name), and OADP settings that do not apply here.
    pub fn notices(&self) -> Vec<String> {
        let mut out = Vec::new();
        let ignored = self.ignored_keys();
        if !ignored.is_empty() {
            out.push(format!(
                "the restic Secret's keys {} are ignored (VolSync's restic mover passes only its known keys to restic)",
                ignored.join(", ")
            ));
        }
        if self.oadp.schedule_cron.is_some() {
            out.push(format!(
                "{SCHEDULE_CRON} is ignored: each VolumeSnapshotBackup or VolumeSnapshotRestore is one run, started when it is created"
            ));
        }
        out
    }

    /// restic retention: each of OADP's `SnapshotRetainPolicy*` keys in the Secret wins over
    /// the controller's `--retain-*` default for that field.
    pub fn retain(
        &self,
        defaults: Option<&lifeline_api::foreign::volsync::ResticRetainPolicy>,
    ) -> Option<lifeline_api::foreign::volsync::ResticRetainPolicy> {
        let Some(secret) = &self.oadp.retain else {
            return defaults.cloned();
        };
        let mut merged = defaults.cloned().unwrap_or_default();
        merged.hourly = secret.hourly.or(merged.hourly);
        merged.daily = secret.daily.or(merged.daily);
        merged.weekly = secret.weekly.or(merged.weekly);
        merged.monthly = secret.monthly.or(merged.monthly);
        merged.yearly = secret.yearly.or(merged.yearly);
        merged.within = secret.within.clone().or(merged.within);
        Some(merged)
    }

    /// Whether the Secret carries a CA bundle for the repository endpoint.
    pub fn has_custom_ca(&self) -> bool {
        self.data
            .get(RESTIC_CUSTOM_CA)
            .is_some_and(|ca| !ca.trim().is_empty())
    }
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
            (
                "swift:container:/prefix",
                &[("ST_AUTH", "a"), ("ST_USER", "u"), ("ST_KEY", "k")][..],
            ),
            (
                "swift:container:/prefix",
                &[
                    ("OS_AUTH_URL", "a"),
                    ("OS_USERNAME", "u"),
                    ("OS_PASSWORD", "p"),
                ][..],
            ),
            (
                "swift:container:/prefix",
                &[("OS_STORAGE_URL", "s"), ("OS_AUTH_TOKEN", "t")][..],
            ),
            (
                "s3:s3.amazonaws.com/bucket",
                &[("RESTIC_AWS_ASSUME_ROLE_ARN", "arn:aws:iam::1:role/r")][..],
            ),
            (
                "azure:container:/prefix",
                &[("AZURE_ACCOUNT_NAME", "n"), ("AZURE_ACCOUNT_SAS", "sv=1")][..],
            ),
            (
                "azure:container:/prefix",
                &[
                    ("AZURE_ACCOUNT_NAME", "n"),
                    ("AZURE_TENANT_ID", "t"),
                    ("AZURE_CLIENT_ID", "c"),
                    (
                        "AZURE_FEDERATED_TOKEN_FILE",
                        "/var/run/secrets/azure/tokens/token",
                    ),
                ][..],
            ),
            (
                "rest:https://host:8000/repo",
                &[("RESTIC_REST_USERNAME", "u"), ("RESTIC_REST_PASSWORD", "p")][..],
            ),
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
    fn forms_the_mover_cannot_use_are_refused() {
        for (repository, credentials, says) in [
            ("rclone:remote:path", &[][..], "no rclone"),
            (
                "swift:container:/p",
                &[][..],
                "ST_AUTH and ST_USER and ST_KEY",
            ),
            (
                "azure:c:/p",
                &[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")][..],
                "AZURE_FEDERATED_TOKEN_FILE",
            ),
            (
                "rest:https://h/r",
                &[("RESTIC_REST_USERNAME", "u")][..],
                "RESTIC_REST_PASSWORD is not",
            ),
        ] {
            let mut pairs = vec![("RESTIC_PASSWORD", "pw"), ("RESTIC_REPOSITORY", repository)];
            pairs.extend_from_slice(credentials);
            let e = secret(&pairs).unwrap_err().to_string();
            assert!(e.contains(says), "{repository}: {e}");
        }
    }

    #[test]
    fn the_per_request_secret_carries_exactly_the_passed_keys_and_the_rest_is_named() {
        let s = secret(&[
            ("RESTIC_PASSWORD", "pw"),
            ("RESTIC_REPOSITORY", "s3:https://h/b"),
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
            ("RESTIC_CUSTOM_CA", "-----BEGIN CERTIFICATE-----"),
            ("restic-prune-interval", "7"),
            ("AWS_SECRET_KEY", "typo-of-a-credential"),
            ("notes", "x"),
        ])
        .unwrap();
        let passed = s.with_repository("s3:https://h/b/ns/pvc");
        assert_eq!(
            passed.keys().collect::<Vec<_>>(),
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "RESTIC_CUSTOM_CA",
                "RESTIC_PASSWORD",
                "RESTIC_REPOSITORY"
            ]
        );
        assert_eq!(s.ignored_keys(), ["AWS_SECRET_KEY", "notes"]);
    }

    #[test]
    fn oadp_settings_in_the_secret_parse_and_bad_ones_name_the_key() {
        let data = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let s = OadpSecretSettings::parse(&data(&[
            ("restic-prune-interval", "14"),
            ("SnapshotRetainPolicyDaily", "7"),
            ("SnapshotRetainPolicyWithin", "1y6m"),
            ("SnapshotScheduleCron", "0 * * * *"),
        ]))
        .unwrap();
        assert_eq!(s.prune_interval_days, Some(14));
        let retain = s.retain.unwrap();
        assert_eq!(
            (retain.daily, retain.within.as_deref()),
            (Some(7), Some("1y6m"))
        );
        assert_eq!(s.schedule_cron.as_deref(), Some("0 * * * *"));
        assert_eq!(
            OadpSecretSettings::parse(&data(&[])).unwrap(),
            Default::default()
        );
        for (key, value) in [
            ("restic-prune-interval", "-1"),
            ("restic-prune-interval", "weekly"),
            ("SnapshotRetainPolicyHourly", "1.5"),
            ("SnapshotRetainPolicyWithin", "3 days"),
            ("SnapshotRetainPolicyWithin", "d"),
            ("SnapshotRetainPolicyForever", "1"),
        ] {
            let e = OadpSecretSettings::parse(&data(&[(key, value)])).unwrap_err();
            assert!(e.to_string().starts_with(key), "{key}={value}: {e}");
        }
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
        // Messages are scrubbed by the Secret's data (crate::secret_data), parsed or not.
        let data = crate::secret_data::SecretData(
            s.data
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                .collect(),
        );
        assert_eq!(
            data.scrub("Fatal: hunter2-password is wrong"),
            "Fatal: [redacted] is wrong"
        );
    }
}
