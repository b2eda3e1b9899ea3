//! The Helm chart's shape, on the renders `cargo xtask charts` makes with Helm's own engine and
//! commits under docs/examples/helm/ (CI re-renders them and fails on any difference).

use std::path::PathBuf;

use serde_json::Value;

const COMPONENTS: [&str; 2] = ["replication-controller", "datamover-controller"];

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/helm")
}

fn render(scenario: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(docs().join(format!("{scenario}.yaml"))).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .filter(Value::is_object)
        .collect()
}

fn notes(scenario: &str) -> String {
    std::fs::read_to_string(docs().join(format!("{scenario}.notes.txt"))).unwrap()
}

fn component(object: &Value) -> Option<&str> {
    object["metadata"]["labels"]["app.kubernetes.io/component"].as_str()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn deployment<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    of_kind(objects, "Deployment")
        .into_iter()
        .find(|d| component(d) == Some(name))
        .unwrap_or_else(|| panic!("no Deployment of {name}"))
}

fn controller_container(deployment: &Value) -> &Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "controller")
        .unwrap()
}

fn args(deployment: &Value) -> Vec<String> {
    controller_container(deployment)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// Identity of an object: kind, namespace, name.
fn key(object: &Value) -> String {
    format!(
        "{} {}/{}",
        object["kind"].as_str().unwrap(),
        object["metadata"]["namespace"].as_str().unwrap_or(""),
        object["metadata"]["name"].as_str().unwrap()
    )
}

#[test]
fn each_component_is_a_hardened_deployment_with_its_own_selector_and_probes() {
    let objects = render("default");
    let mut selectors = Vec::new();
    for name in COMPONENTS {
        let d = deployment(&objects, name);
        let selector = &d["spec"]["selector"]["matchLabels"];
        assert_eq!(selector["app.kubernetes.io/component"], name);
        assert_eq!(
            &d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"],
            name
        );
        selectors.push(selector.clone());
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{name}"
        );
        assert_eq!(pod["serviceAccountName"], format!("lifeline-{name}"));
        let c = controller_container(d);
        let security = &c["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(
            c["image"],
            format!("ghcr.io/lifeline-dr/lifeline-{name}:0.1.0"),
            "the tag defaults to the appVersion"
        );
        assert!(
            args(d).iter().any(|a| a == "--leader-elect"),
            "{name}: leader election even with one replica (a rolling upgrade runs two pods)"
        );
        let services: Vec<_> = of_kind(&objects, "Service")
            .into_iter()
            .filter(|s| component(s) == Some(name))
            .collect();
        assert_eq!(services.len(), 1, "{name}: one metrics Service");
        assert_eq!(&services[0]["spec"]["selector"], selector);
        assert_eq!(
            of_kind(&objects, "ServiceAccount")
                .iter()
                .filter(|s| component(s) == Some(name))
                .count(),
            1
        );
    }
    assert_ne!(selectors[0], selectors[1], "distinct selectors");
    assert!(of_kind(&objects, "ServiceMonitor").is_empty());
    assert!(of_kind(&objects, "PodDisruptionBudget").is_empty());
    assert_eq!(
        of_kind(&objects, "Role")
            .iter()
            .filter(|r| r["metadata"]["name"]
                .as_str()
                .unwrap()
                .ends_with("leader-election"))
            .count(),
        2,
        "a Lease Role per component: leader election is always on"
    );
}

#[test]
fn the_crds_come_from_the_subchart_and_survive_uninstall() {
    let crds = render("default")
        .into_iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .collect::<Vec<_>>();
    // Every CRD Lifeline owns (replication, volume groups, data mover).
    assert_eq!(crds.len(), lifeline_api::crds::lifeline().len());
    for crd in &crds {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
    }
    assert!(of_kind(&render("crds-disabled"), "CustomResourceDefinition").is_empty());
}

#[test]
fn two_replicas_turn_on_leader_election_with_its_lease_role_and_a_budget() {
    let objects = render("replicas-2");
    for name in COMPONENTS {
        let d = deployment(&objects, name);
        assert_eq!(d["spec"]["replicas"], 2);
        let args = args(d);
        for flag in [
            "--leader-elect".to_owned(),
            "--leader-election-namespace=lifeline-system".to_owned(),
            format!("--leader-election-lease-name=lifeline-{name}"),
        ] {
            assert!(args.contains(&flag), "{name}: {flag} missing from {args:?}");
        }
        assert!(
            of_kind(&objects, "Role")
                .iter()
                .any(|r| component(r) == Some(name)
                    && r["metadata"]["name"] == format!("lifeline-{name}-leader-election")),
            "{name}: Lease Role"
        );
        assert!(
            of_kind(&objects, "PodDisruptionBudget")
                .iter()
                .any(|p| component(p) == Some(name)),
            "{name}: PodDisruptionBudget"
        );
    }
    let replication = args(deployment(&objects, "replication-controller"));
    assert!(
        replication.contains(
            &"--driver-endpoint=hostpath.lifeline.dev=https://hostpath-csi-addons.storage.svc:9070"
                .to_owned()
        ) && replication
            .contains(&"--driver-ca-file=/var/run/lifeline/driver-ca/ca.crt".to_owned())
    );
    let datamover = args(deployment(&objects, "datamover-controller"));
    for flag in [
        "--protected-namespace=openshift-adp",
        "--retain-last=7",
        "--retain-daily=14",
        "--mover-service-account=volsync-mover",
        "--mover-run-as-user=1000",
    ] {
        assert!(
            datamover.contains(&flag.to_owned()),
            "{flag}: {datamover:?}"
        );
    }
    assert!(
        of_kind(&objects, "Role")
            .iter()
            .any(|r| r["metadata"]["namespace"] == "openshift-adp"),
        "the data mover's working-object Role is in its protected namespace"
    );
    assert!(notes("replicas-2").contains("leader election on"));
}

#[test]
fn disabling_a_component_removes_all_its_objects_and_nothing_else() {
    let default = render("default");
    for (disabled, scenario) in [
        ("replication-controller", "replication-disabled"),
        ("datamover-controller", "datamover-disabled"),
    ] {
        let rendered = render(scenario);
        assert!(
            rendered.iter().all(|o| component(o) != Some(disabled)),
            "{scenario}: something of {disabled} is left"
        );
        let expected: Vec<&Value> = default
            .iter()
            .filter(|o| component(o) != Some(disabled) && o["kind"] != "CustomResourceDefinition")
            .collect();
        let left: Vec<&Value> = rendered
            .iter()
            .filter(|o| o["kind"] != "CustomResourceDefinition")
            .collect();
        assert_eq!(
            left.iter().map(|o| key(o)).collect::<Vec<_>>(),
            expected.iter().map(|o| key(o)).collect::<Vec<_>>(),
            "{scenario}"
        );
        assert_eq!(
            left, expected,
            "{scenario}: the other component is unchanged"
        );
    }
}

#[test]
fn service_monitors_scrape_each_components_metrics_service() {
    let objects = render("servicemonitor");
    for name in COMPONENTS {
        let monitor = of_kind(&objects, "ServiceMonitor")
            .into_iter()
            .find(|m| component(m) == Some(name))
            .unwrap_or_else(|| panic!("no ServiceMonitor of {name}"));
        let service = of_kind(&objects, "Service")
            .into_iter()
            .find(|s| component(s) == Some(name))
            .unwrap();
        let wanted = monitor["spec"]["selector"]["matchLabels"]
            .as_object()
            .unwrap();
        for (label, value) in wanted {
            assert_eq!(
                &service["metadata"]["labels"][label], value,
                "{name}: {label}"
            );
        }
        assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
        assert_eq!(service["spec"]["ports"][0]["name"], "metrics");
    }
}

#[test]
fn sidecar_mode_runs_the_controller_beside_the_driver_on_a_shared_socket() {
    let objects = render("sidecar");
    let d = deployment(&objects, "replication-controller");
    let args = args(d);
    assert!(args.contains(&"--driver-name=hostpath.lifeline.dev".to_owned()));
    assert!(args.contains(&"--csi-address=unix:///csi/csi-addons.sock".to_owned()));
    assert!(!args.iter().any(|a| a.starts_with("--driver-endpoint")));
    let pod = &d["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "the controller and the driver");
    for container in containers {
        assert!(
            container["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["name"] == "socket-dir" && m["mountPath"] == "/csi"),
            "{} mounts the socket volume",
            container["name"]
        );
    }
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "socket-dir" && v["emptyDir"].is_object())
    );
    assert!(notes("sidecar").contains("sidecar mode: serves driver hostpath.lifeline.dev"));
}

#[test]
fn the_notes_say_what_was_installed_and_how_to_check_it() {
    let text = notes("default");
    for expected in [
        "Deployment lifeline-replication-controller",
        "Deployment lifeline-datamover-controller",
        "no driver is configured",
        "kubectl -n lifeline-system get deployments",
        "protected namespace: lifeline-system",
    ] {
        assert!(text.contains(expected), "NOTES lack {expected:?}:\n{text}");
    }
    let text = notes("replication-disabled");
    assert!(!text.contains("replication controller"), "{text}");
}
