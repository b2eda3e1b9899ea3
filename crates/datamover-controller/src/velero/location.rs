//! A Velero BackupStorageLocation, the mover's ConfigMap and the Secrets they name → the
//! restic Secret's keys VolSync's mover reads. Pure: the reconcile fetches, this decides.
//!
//! The repository base is `<bucket>/<prefix>/plugins/<mover name>`: `plugins/` is the one
//! folder Velero keeps under a location's prefix for plugins' data; any other top-level folder
//! than its own makes Velero's server mark the location Unavailable ("Backup store contains
//! invalid top-level directories") and refuse every backup to it. The pipeline then adds
//! `<namespace>/<claim>`, one repository per source claim, so successive backups of a claim
//! deduplicate.

use std::collections::BTreeMap;

use lifeline_api::foreign::velero::BackupStorageLocation;

use crate::repository::{RESTIC_CUSTOM_CA, RESTIC_PASSWORD, RESTIC_REPOSITORY};

/// The folder under a location's prefix that Velero's server accepts for plugins' data
/// (`velero/pkg/persistence/object_store_layout.go`).
pub const PLUGINS_FOLDER: &str = "plugins";

/// The Secret (and key) Velero's install puts the location's credentials in when the location
/// names none (`velero install --secret-file`, OADP's `cloud-credentials`).
pub const DEFAULT_CREDENTIAL: (&str, &str) = ("cloud-credentials", "cloud");

/// Keys of the mover's ConfigMap (named after the mover, in Velero's namespace).
pub const PASSWORD_SECRET: &str = "repositoryPasswordSecret";
pub const PASSWORD_KEY: &str = "repositoryPasswordKey";

/// What is wrong, naming the object and field to fix; never a value of a Secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error(
        "BackupStorageLocation {0:?} not found in Velero's namespace; fix spec.backupStorageLocation or create it"
    )]
    Missing(String),
    #[error("BackupStorageLocation {location:?}: {field} {problem}")]
    Field {
        location: String,
        field: &'static str,
        problem: String,
    },
    #[error("BackupStorageLocation {0:?} has spec.accessMode ReadOnly: it takes no new backups")]
    ReadOnly(String),
    #[error("Secret {name:?} (named by {by}) not found in Velero's namespace")]
    SecretMissing { name: String, by: String },
    #[error("Secret {name:?} (named by {by}) has no key {key:?}")]
    KeyMissing {
        name: String,
        key: String,
        by: String,
    },
    #[error("the credentials file in Secret {name:?} key {key:?} {problem}")]
    Credentials {
        name: String,
        key: String,
        problem: String,
    },
    #[error(
        "ConfigMap {0:?} not found in Velero's namespace: create it with {PASSWORD_SECRET}: <a Secret holding the restic repository password>"
    )]
    ConfigMissing(String),
    #[error("ConfigMap {config:?}: {problem}")]
    Config { config: String, problem: String },
}

impl LocationError {
    /// A stable label for metrics and Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            LocationError::Missing(_) => "BackupStorageLocationMissing",
            LocationError::Field { .. } => "BackupStorageLocationInvalid",
            LocationError::ReadOnly(_) => "BackupStorageLocationReadOnly",
            LocationError::SecretMissing { .. } | LocationError::KeyMissing { .. } => {
                "SecretMissing"
            }
            LocationError::Credentials { .. } => "CredentialsInvalid",
            LocationError::ConfigMissing(_) | LocationError::Config { .. } => "MoverConfigInvalid",
        }
    }
}

/// The Secrets a location and the mover's ConfigMap refer to (name → data), as fetched.
pub type Secrets = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// The Secrets to fetch for this location and ConfigMap: the credential, the CA reference,
/// the password. Names only; a missing one is reported by [`restic_keys`].
pub fn secrets_named(
    bsl: Option<&BackupStorageLocation>,
    config: Option<&BTreeMap<String, String>>,
) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(bsl) = bsl {
        names.push(credential_ref(bsl).0);
        if let Some(name) = bsl
            .spec
            .object_storage
            .as_ref()
            .and_then(|o| o.ca_cert_ref.as_ref())
            .and_then(|r| r.name.clone())
        {
            names.push(name);
        }
    }
    if let Some(name) = config.and_then(|c| c.get(PASSWORD_SECRET)) {
        names.push(name.trim().to_owned());
    }
    names.sort();
    names.dedup();
    names.retain(|n| !n.is_empty());
    names
}

fn credential_ref(bsl: &BackupStorageLocation) -> (String, String) {
    match &bsl.spec.credential {
        Some(r) => (
            r.name.clone().unwrap_or_default(),
            r.key.clone().unwrap_or_default(),
        ),
        None => (DEFAULT_CREDENTIAL.0.into(), DEFAULT_CREDENTIAL.1.into()),
    }
}

/// Everything a request's repository is made from.
pub struct Inputs<'a> {
    /// The name the request gave (for messages) and the location, if it exists.
    pub name: &'a str,
    pub bsl: Option<&'a BackupStorageLocation>,
    pub mover: &'a str,
    /// The mover's ConfigMap data, if it exists.
    pub config: Option<&'a BTreeMap<String, String>>,
    pub secrets: &'a Secrets,
    /// An upload writes: a ReadOnly location refuses it.
    pub writes: bool,
}

/// The restic Secret's keys (`RESTIC_REPOSITORY` is the base; the pipeline adds the claim).
pub fn restic_keys(inputs: &Inputs) -> Result<BTreeMap<String, Vec<u8>>, LocationError> {
    let name = inputs.name.to_owned();
    let bsl = inputs
        .bsl
        .ok_or_else(|| LocationError::Missing(name.clone()))?;
    let field = |field, problem: &str| LocationError::Field {
        location: name.clone(),
        field,
        problem: problem.to_owned(),
    };
    if inputs.writes && bsl.spec.access_mode.as_deref() == Some("ReadOnly") {
        return Err(LocationError::ReadOnly(name));
    }
    let storage = bsl
        .spec
        .object_storage
        .clone()
        .ok_or_else(|| field("spec.objectStorage", "is not set"))?;
    let bucket = storage.bucket.unwrap_or_default().trim().to_owned();
    if bucket.is_empty() || bucket.contains('/') || bucket.contains(':') {
        return Err(field(
            "spec.objectStorage.bucket",
            "must be a bucket name (set, without '/' or ':')",
        ));
    }
    let prefix = storage.prefix.unwrap_or_default();
    let prefix = prefix.trim().trim_matches('/');
    if prefix.split('/').any(|p| p == "..") || prefix.contains(':') {
        return Err(field(
            "spec.objectStorage.prefix",
            "must be a plain folder path (no '..' or ':')",
        ));
    }
    let path = [prefix, PLUGINS_FOLDER, inputs.mover]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    let config = bsl.spec.config.clone().unwrap_or_default();
    let (cred_name, cred_key) = credential_ref(bsl);
    let by = |what: &str| format!("BackupStorageLocation {name:?} {what}");
    let provider = bsl.spec.provider.as_deref().unwrap_or_default().trim();
    let provider = provider.strip_prefix("velero.io/").unwrap_or(provider);
    let mut keys: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let credential = || {
        secret_key(
            inputs.secrets,
            &cred_name,
            &cred_key,
            &by("spec.credential"),
        )
    };
    match provider {
        "aws" => {
            if config.get("insecureSkipTLSVerify").map(|v| v.trim()) == Some("true") {
                return Err(field(
                    "spec.config.insecureSkipTLSVerify",
                    "is \"true\": VolSync's restic mover always verifies TLS; give the endpoint's CA in spec.objectStorage.caCert instead",
                ));
            }
            let region = config.get("region").map(|r| r.trim()).unwrap_or_default();
            let endpoint = match config.get("s3Url").map(|u| u.trim().trim_end_matches('/')) {
                Some(url) if !url.is_empty() => {
                    let host = url
                        .strip_prefix("https://")
                        .or_else(|| url.strip_prefix("http://"));
                    if host.is_none_or(|h| h.is_empty() || h.contains('/')) {
                        return Err(field(
                            "spec.config.s3Url",
                            "must be http(s)://host[:port] (no path)",
                        ));
                    }
                    url.to_owned()
                }
                _ if region.is_empty() => {
                    return Err(field(
                        "spec.config.region",
                        "is not set; AWS S3 needs it (or set spec.config.s3Url for an S3-compatible store)",
                    ));
                }
                _ => format!("s3.{region}.amazonaws.com"),
            };
            keys.insert(
                RESTIC_REPOSITORY.into(),
                format!("s3:{endpoint}/{bucket}/{path}").into_bytes(),
            );
            if !region.is_empty() {
                keys.insert("AWS_DEFAULT_REGION".into(), region.as_bytes().to_vec());
            }
            let profile = config
                .get("profile")
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
                .unwrap_or("default");
            let file = credential()?;
            let found =
                aws_profile(&file, profile).map_err(|problem| LocationError::Credentials {
                    name: cred_name.clone(),
                    key: cred_key.clone(),
                    problem,
                })?;
            keys.extend(
                found
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.into_bytes())),
            );
        }
        "azure" => {
            let account = config
                .get("storageAccount")
                .map(|a| a.trim())
                .filter(|a| !a.is_empty())
                .ok_or_else(|| field("spec.config.storageAccount", "is not set"))?;
            let variable = config
                .get("storageAccountKeyEnvVar")
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .unwrap_or("AZURE_STORAGE_ACCOUNT_ACCESS_KEY");
            let file = credential()?;
            let values = env_file(&file);
            let key = values.get(variable).ok_or_else(|| LocationError::Credentials {
                name: cred_name.clone(),
                key: cred_key.clone(),
                problem: format!("has no {variable} (the storage account key restic needs; workload identity is not supported)"),
            })?;
            keys.insert(
                RESTIC_REPOSITORY.into(),
                format!("azure:{bucket}:/{path}").into_bytes(),
            );
            keys.insert("AZURE_ACCOUNT_NAME".into(), account.as_bytes().to_vec());
            keys.insert("AZURE_ACCOUNT_KEY".into(), key.as_bytes().to_vec());
        }
        "gcp" => {
            let file = credential()?;
            let json: serde_json::Value =
                serde_json::from_slice(&file).map_err(|_| LocationError::Credentials {
                    name: cred_name.clone(),
                    key: cred_key.clone(),
                    problem: "is not a JSON service-account key".into(),
                })?;
            let project = config
                .get("project")
                .cloned()
                .or_else(|| json["project_id"].as_str().map(str::to_owned))
                .filter(|p| !p.trim().is_empty())
                .ok_or_else(|| {
                    field(
                        "spec.config.project",
                        "is not set and the key names no project_id",
                    )
                })?;
            keys.insert(
                RESTIC_REPOSITORY.into(),
                format!("gs:{bucket}:/{path}").into_bytes(),
            );
            keys.insert("GOOGLE_PROJECT_ID".into(), project.into_bytes());
            keys.insert("GOOGLE_APPLICATION_CREDENTIALS".into(), file);
        }
        "" => return Err(field("spec.provider", "is not set")),
        other => {
            return Err(field(
                "spec.provider",
                &format!("{other:?} is not one the restic mover can write to (aws, azure, gcp)"),
            ));
        }
    }
    if let Some(ca) = storage.ca_cert.filter(|c| !c.0.is_empty()) {
        keys.insert(RESTIC_CUSTOM_CA.into(), ca.0);
    } else if let Some(reference) = storage.ca_cert_ref {
        let ca = secret_key(
            inputs.secrets,
            reference.name.as_deref().unwrap_or_default(),
            reference.key.as_deref().unwrap_or_default(),
            &by("spec.objectStorage.caCertRef"),
        )?;
        keys.insert(RESTIC_CUSTOM_CA.into(), ca);
    }
    keys.insert(RESTIC_PASSWORD.into(), password(inputs)?);
    Ok(keys)
}

fn password(inputs: &Inputs) -> Result<Vec<u8>, LocationError> {
    let name = inputs.mover.to_owned();
    let config = inputs
        .config
        .ok_or_else(|| LocationError::ConfigMissing(name.clone()))?;
    let problem = |problem: String| LocationError::Config {
        config: name.clone(),
        problem,
    };
    if let Some(unknown) = config
        .keys()
        .find(|k| *k != PASSWORD_SECRET && *k != PASSWORD_KEY)
    {
        return Err(problem(format!(
            "key {unknown:?} is not one Lifeline reads ({PASSWORD_SECRET}, {PASSWORD_KEY})"
        )));
    }
    let secret = config
        .get(PASSWORD_SECRET)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| problem(format!("{PASSWORD_SECRET} is not set; name the Secret holding the restic repository password")))?;
    let key = config
        .get(PASSWORD_KEY)
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .unwrap_or(RESTIC_PASSWORD);
    let value = secret_key(
        inputs.secrets,
        secret,
        key,
        &format!("ConfigMap {name:?} {PASSWORD_SECRET}"),
    )?;
    if value.iter().all(u8::is_ascii_whitespace) {
        return Err(LocationError::Credentials {
            name: secret.to_owned(),
            key: key.to_owned(),
            problem: "is empty".into(),
        });
    }
    Ok(value)
}

fn secret_key(
    secrets: &Secrets,
    name: &str,
    key: &str,
    by: &str,
) -> Result<Vec<u8>, LocationError> {
    let data = secrets
        .get(name)
        .ok_or_else(|| LocationError::SecretMissing {
            name: name.to_owned(),
            by: by.to_owned(),
        })?;
    data.get(key)
        .cloned()
        .ok_or_else(|| LocationError::KeyMissing {
            name: name.to_owned(),
            key: key.to_owned(),
            by: by.to_owned(),
        })
}

/// The keys of one profile of an AWS credentials file (INI: `[default]` or `[profile x]`).
fn aws_profile(file: &[u8], profile: &str) -> Result<BTreeMap<&'static str, String>, String> {
    let text = std::str::from_utf8(file).map_err(|_| "is not text".to_owned())?;
    let mut section = None;
    let mut found = BTreeMap::new();
    let mut seen = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            let name = name.strip_prefix("profile ").unwrap_or(name).trim();
            section = Some(name.to_owned());
            seen |= name == profile;
            continue;
        }
        if section.as_deref() != Some(profile) {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("has a line in [{profile}] that is not key = value"));
        };
        let target = match key.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => "AWS_ACCESS_KEY_ID",
            "aws_secret_access_key" => "AWS_SECRET_ACCESS_KEY",
            "aws_session_token" => "AWS_SESSION_TOKEN",
            _ => continue,
        };
        found.insert(target, value.trim().to_owned());
    }
    if !seen {
        return Err(format!("has no [{profile}] profile (spec.config.profile)"));
    }
    match (
        found.contains_key("AWS_ACCESS_KEY_ID"),
        found.contains_key("AWS_SECRET_ACCESS_KEY"),
    ) {
        (true, true) => Ok(found),
        _ => Err(format!(
            "needs aws_access_key_id and aws_secret_access_key in [{profile}]"
        )),
    }
}

/// `KEY=value` lines (Velero's Azure credentials file).
fn env_file(file: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(file)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

#[cfg(test)]
mod tests;
