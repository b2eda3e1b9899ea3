use proptest::prelude::*;
use serde_json::json;

use super::*;

const AWS_FILE: &str = "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = sekrit-value-123\n\n[profile other]\naws_access_key_id=OTHERID\naws_secret_access_key=other-secret\n";

fn bsl(spec: serde_json::Value) -> BackupStorageLocation {
    serde_json::from_value(
        json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": "default", "namespace": "velero"}, "spec": spec}),
    )
    .unwrap()
}

fn minio() -> BackupStorageLocation {
    bsl(
        json!({"provider": "aws", "objectStorage": {"bucket": "backups", "prefix": "/cluster-a/", "caCert": "LS0tQ0EtLS0="},
        "config": {"region": "minio", "s3Url": "https://minio.example:9000/", "s3ForcePathStyle": "true"},
        "credential": {"name": "cloud", "key": "credentials"}}),
    )
}

fn secrets() -> Secrets {
    [
        (
            "cloud".to_owned(),
            [("credentials".to_owned(), AWS_FILE.as_bytes().to_vec())].into(),
        ),
        (
            "cloud-credentials".to_owned(),
            [("cloud".to_owned(), AWS_FILE.as_bytes().to_vec())].into(),
        ),
        (
            "restic-password".to_owned(),
            [("RESTIC_PASSWORD".to_owned(), b"pass-word-9".to_vec())].into(),
        ),
    ]
    .into()
}

fn config() -> BTreeMap<String, String> {
    [(PASSWORD_SECRET.to_owned(), "restic-password".to_owned())].into()
}

fn keys(
    bsl: Option<&BackupStorageLocation>,
    config: Option<&BTreeMap<String, String>>,
    writes: bool,
) -> Result<BTreeMap<String, String>, LocationError> {
    let secrets = secrets();
    restic_keys(&Inputs {
        name: "default",
        bsl,
        mover: "lifeline",
        config,
        secrets: &secrets,
        writes,
    })
    .map(|k| {
        k.into_iter()
            .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
            .collect()
    })
}

#[test]
fn an_s3_compatible_location_becomes_a_restic_repository_in_veleros_plugins_folder() {
    let keys = keys(Some(&minio()), Some(&config()), true).unwrap();
    assert_eq!(
        keys["RESTIC_REPOSITORY"],
        "s3:https://minio.example:9000/backups/cluster-a/plugins/lifeline"
    );
    assert_eq!(keys["AWS_ACCESS_KEY_ID"], "AKIDEXAMPLE");
    assert_eq!(keys["AWS_SECRET_ACCESS_KEY"], "sekrit-value-123");
    assert_eq!(keys["AWS_DEFAULT_REGION"], "minio");
    assert_eq!(keys["RESTIC_CUSTOM_CA"], "---CA---");
    assert_eq!(keys["RESTIC_PASSWORD"], "pass-word-9");
    // What the pipeline then checks and scopes per claim.
    let data = keys
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    let secret = crate::repository::ResticSecret::parse(&data).unwrap();
    assert_eq!(
        secret.repository_for("shop", "db"),
        "s3:https://minio.example:9000/backups/cluster-a/plugins/lifeline/shop/db"
    );
}

#[test]
fn aws_itself_a_profile_and_the_default_credentials_secret() {
    let location = bsl(
        json!({"provider": "velero.io/aws", "objectStorage": {"bucket": "b"}, "config": {"region": "eu-west-1", "profile": "other"}}),
    );
    let keys = keys(Some(&location), Some(&config()), true).unwrap();
    assert_eq!(
        keys["RESTIC_REPOSITORY"],
        "s3:s3.eu-west-1.amazonaws.com/b/plugins/lifeline"
    );
    assert_eq!(keys["AWS_ACCESS_KEY_ID"], "OTHERID");
    assert!(!keys.contains_key("RESTIC_CUSTOM_CA"));
    assert_eq!(
        secrets_named(Some(&location), Some(&config())),
        ["cloud-credentials", "restic-password"]
    );
}

#[test]
fn azure_and_gcp_locations() {
    let mut all = secrets();
    all.insert(
        "az".into(),
        [(
            "cloud".into(),
            b"AZURE_STORAGE_ACCOUNT_ACCESS_KEY=azkey123\nAZURE_CLOUD_NAME=AzurePublicCloud\n"
                .to_vec(),
        )]
        .into(),
    );
    all.insert(
        "gcp".into(),
        [(
            "cloud".into(),
            br#"{"type": "service_account", "project_id": "proj-1"}"#.to_vec(),
        )]
        .into(),
    );
    let azure = bsl(
        json!({"provider": "azure", "objectStorage": {"bucket": "container", "prefix": "p"},
        "config": {"storageAccount": "acct", "resourceGroup": "rg"}, "credential": {"name": "az", "key": "cloud"}}),
    );
    let config = config();
    let got = restic_keys(&Inputs {
        name: "az",
        bsl: Some(&azure),
        mover: "lifeline",
        config: Some(&config),
        secrets: &all,
        writes: true,
    })
    .unwrap();
    assert_eq!(
        got["RESTIC_REPOSITORY"],
        b"azure:container:/p/plugins/lifeline"
    );
    assert_eq!(got["AZURE_ACCOUNT_NAME"], b"acct");
    assert_eq!(got["AZURE_ACCOUNT_KEY"], b"azkey123");
    let gcp = bsl(
        json!({"provider": "gcp", "objectStorage": {"bucket": "bk"}, "credential": {"name": "gcp", "key": "cloud"}}),
    );
    let got = restic_keys(&Inputs {
        name: "g",
        bsl: Some(&gcp),
        mover: "lifeline",
        config: Some(&config),
        secrets: &all,
        writes: true,
    })
    .unwrap();
    assert_eq!(got["RESTIC_REPOSITORY"], b"gs:bk:/plugins/lifeline");
    assert_eq!(got["GOOGLE_PROJECT_ID"], b"proj-1");
    let secret = crate::repository::ResticSecret::parse(&got).unwrap();
    assert!(secret.repository_for("a", "b").ends_with("/a/b"));
}

#[test]
fn each_bad_location_names_the_field_to_fix() {
    let cases: Vec<(Option<BackupStorageLocation>, &str)> = vec![
        (None, "not found"),
        (
            Some(bsl(json!({"objectStorage": {"bucket": "b"}}))),
            "spec.provider is not set",
        ),
        (
            Some(bsl(
                json!({"provider": "openstack", "objectStorage": {"bucket": "b"}}),
            )),
            "spec.provider \"openstack\"",
        ),
        (
            Some(bsl(json!({"provider": "aws"}))),
            "spec.objectStorage is not set",
        ),
        (
            Some(bsl(
                json!({"provider": "aws", "objectStorage": {"bucket": " "}}),
            )),
            "spec.objectStorage.bucket",
        ),
        (
            Some(bsl(
                json!({"provider": "aws", "objectStorage": {"bucket": "a/b"}}),
            )),
            "spec.objectStorage.bucket",
        ),
        (
            Some(bsl(
                json!({"provider": "aws", "objectStorage": {"bucket": "b", "prefix": "../up"}}),
            )),
            "spec.objectStorage.prefix",
        ),
        (
            Some(bsl(
                json!({"provider": "aws", "objectStorage": {"bucket": "b"}}),
            )),
            "spec.config.region",
        ),
        (
            Some(bsl(
                json!({"provider": "aws", "objectStorage": {"bucket": "b"}, "config": {"s3Url": "minio:9000"}}),
            )),
            "spec.config.s3Url",
        ),
        (
            Some(bsl(
                json!({"provider": "aws", "objectStorage": {"bucket": "b"}, "config": {"region": "r", "insecureSkipTLSVerify": "true"}}),
            )),
            "insecureSkipTLSVerify",
        ),
        (
            Some(bsl(
                json!({"provider": "aws", "objectStorage": {"bucket": "b"}, "config": {"region": "r"}, "credential": {"name": "nope", "key": "k"}}),
            )),
            "Secret \"nope\"",
        ),
        (
            Some(bsl(
                json!({"provider": "aws", "objectStorage": {"bucket": "b"}, "config": {"region": "r"}, "credential": {"name": "cloud", "key": "k"}}),
            )),
            "no key \"k\"",
        ),
        (
            Some(bsl(
                json!({"provider": "aws", "objectStorage": {"bucket": "b"}, "config": {"region": "r", "profile": "x"}}),
            )),
            "no [x] profile",
        ),
        (
            Some(bsl(
                json!({"provider": "aws", "objectStorage": {"bucket": "b", "caCertRef": {"name": "ca", "key": "ca.crt"}}, "config": {"region": "r"}}),
            )),
            "Secret \"ca\"",
        ),
        (
            Some(bsl(
                json!({"provider": "azure", "objectStorage": {"bucket": "b"}}),
            )),
            "spec.config.storageAccount",
        ),
        (
            Some(bsl(
                json!({"provider": "aws", "objectStorage": {"bucket": "b"}, "config": {"region": "r"}, "accessMode": "ReadOnly"}),
            )),
            "ReadOnly",
        ),
    ];
    for (location, expected) in cases {
        let error = keys(location.as_ref(), Some(&config()), true).unwrap_err();
        assert!(
            error.to_string().contains(expected),
            "{error} (expected {expected})"
        );
        assert!(!error.to_string().contains("sekrit"), "{error}");
    }
    // A restore reads a ReadOnly location.
    let read_only = bsl(
        json!({"provider": "aws", "objectStorage": {"bucket": "b"}, "config": {"region": "r"}, "accessMode": "ReadOnly"}),
    );
    assert!(keys(Some(&read_only), Some(&config()), false).is_ok());
}

#[test]
fn the_movers_configmap_is_required_and_checked() {
    let location = minio();
    let missing = keys(Some(&location), None, true).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("ConfigMap \"lifeline\" not found"),
        "{missing}"
    );
    let typo: BTreeMap<String, String> =
        [("repositoryPasswordSecrets".to_owned(), "x".to_owned())].into();
    let error = keys(Some(&location), Some(&typo), true).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("\"repositoryPasswordSecrets\" is not one"),
        "{error}"
    );
    let other_key: BTreeMap<String, String> = [
        (PASSWORD_SECRET.to_owned(), "restic-password".to_owned()),
        (PASSWORD_KEY.to_owned(), "pw".to_owned()),
    ]
    .into();
    let error = keys(Some(&location), Some(&other_key), true).unwrap_err();
    assert!(error.to_string().contains("no key \"pw\""), "{error}");
    assert_eq!(error.reason(), "SecretMissing");
}

proptest! {
    /// Whatever a location, its ConfigMap and its credentials file hold: no panic, and an error
    /// never quotes a Secret's value.
    #[test]
    fn any_location_ends_in_keys_or_an_error_without_secrets(
        provider in "(aws|azure|gcp|velero.io/aws|[a-z]{0,6})",
        bucket in ".{0,12}", prefix in ".{0,12}", url in ".{0,20}", region in ".{0,6}",
        file in proptest::collection::vec(any::<u8>(), 0..80),
        profile in ".{0,6}",
    ) {
        let location = bsl(json!({"provider": provider, "objectStorage": {"bucket": bucket, "prefix": prefix},
            "config": {"s3Url": url, "region": region, "profile": profile, "storageAccount": "a"}, "credential": {"name": "c", "key": "k"}}));
        let mut all = secrets();
        all.insert("c".into(), [("k".into(), file)].into());
        let config = config();
        let result = restic_keys(&Inputs { name: "x", bsl: Some(&location), mover: "lifeline", config: Some(&config), secrets: &all, writes: true });
        if let Err(error) = result {
            prop_assert!(!error.to_string().contains("pass-word-9"));
        }
    }
}
