"""Renders and checks the Helm charts with Helm's own engine (PyPI helm-python-sdk, Helm 4 as a
library, offline) and validates every rendered object with PyPI kubernetes-validate.

Run by `cargo xtask charts`, which installs both into target/ci-tools/venv and compares what
this writes to OUT with the renders committed under docs/examples/helm/.

For the default values and each values file in charts/lifeline/ci/:
  - `helm lint --strict` (with the subchart) must report no warning or error;
  - the chart renders; OUT/<scenario>.yaml gets every object (`# Source:` headers, in path
    order, as `helm template` prints them; the CRDs only in default.yaml, since values do not
    change them) and OUT/<scenario>.notes.txt the rendered NOTES;
  - every object validates strictly against the Kubernetes KUBE_VERSION schemas (kinds those
    schemas do not know, such as prometheus-operator's ServiceMonitor, are listed as skipped).
Then values that must be refused are checked to be refused by values.schema.json.

Usage: charts.py REPO_ROOT OUT
"""

import json
import os
import shutil
import sys
import tempfile

import helm_python as helm
import kubernetes_validate
import yaml

KUBE_VERSION = "1.36.0"
RELEASE = "lifeline"
NAMESPACE = "lifeline-system"
CRD_SUBCHART = "lifeline/charts/lifeline-crds/"

# Values the schema must refuse, each with why.
REFUSED = [
    ({"replicationController": {"replica": 2}}, "a misspelt key"),
    ({"replicationControler": {"enabled": False}}, "a misspelt component"),
    ({"datamoverController": {"replicas": "2"}}, "a number as a string"),
    ({"replicationController": {"replicas": 0}}, "zero replicas"),
    ({"replicationController": {"logFormat": "xml"}}, "an unknown log format"),
    ({"replicationController": {"rpcTimeout": "1 minute"}}, "a duration that is not one"),
    (
        {"replicationController": {"driverEndpoints": {"x.csi": "http://x:1"}}},
        "a driver endpoint that is neither tcp:// nor unix://",
    ),
    ({"datamoverController": {"retention": {"last": 0}}}, "a retention of 0 (prunes the backup just taken)"),
    ({"crds": {"enabled": "yes"}}, "a string for a boolean"),
]


def fail(message):
    print(f"charts: {message}", file=sys.stderr)
    sys.exit(1)


def workspace(root):
    """A copy of the chart with the CRD chart as its unpacked dependency, as
    `helm dependency build` would place it (packed)."""
    work = tempfile.mkdtemp(prefix="lifeline-charts-")
    chart = os.path.join(work, "lifeline")
    shutil.copytree(os.path.join(root, "charts/lifeline"), chart, ignore=shutil.ignore_patterns("charts"))
    shutil.copytree(os.path.join(root, "charts/lifeline-crds"), os.path.join(chart, "charts/lifeline-crds"))
    return work, chart


def scenarios(root):
    ci = os.path.join(root, "charts/lifeline/ci")
    yield "default", {}
    for name in sorted(os.listdir(ci)):
        if name.endswith(".yaml"):
            with open(os.path.join(ci, name)) as f:
                yield name[: -len(".yaml")], yaml.safe_load(f) or {}


def lint(chart, name, values):
    report = helm.lint(chart, values, strict=True, with_subcharts=True, namespace=NAMESPACE,
                       kube_version=f"v{KUBE_VERSION}")
    # Severity 1 is informational (e.g. "icon is recommended"); strict fails on the rest.
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    problems += [{"error": e} for e in report.get("errors") or []]
    if problems:
        fail(f"helm lint --strict, {name}: " + "; ".join(f"{p.get('path', '')}: {p['error']}" for p in problems))


def validate(name, path, document, skipped):
    try:
        kubernetes_validate.validate(document, KUBE_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        skipped.add(f"{document['apiVersion']} {document['kind']}")
    except kubernetes_validate.ValidationError as error:
        where = "/".join(str(p) for p in error.path)
        fail(f"{name}: {path}: {document['kind']} {document['metadata'].get('name')}: {where}: {error.message}")


def render(chart, name, values, out, skipped):
    with helm.Chart.load(chart) as loaded:
        manifests = loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    text = []
    count = 0
    for path in sorted(manifests):
        body = manifests[path]
        if path.endswith("NOTES.txt"):
            with open(os.path.join(out, f"{name}.notes.txt"), "w") as f:
                f.write(body.strip() + "\n")
            continue
        for document in yaml.safe_load_all(body):
            if not document:
                continue
            validate(name, path, document, skipped)
            count += 1
        if name != "default" and path.startswith(CRD_SUBCHART):
            # The CRDs do not depend on values: committed once, in default.yaml.
            text.append(f"---\n# Source: {path} (as in default.yaml)\n")
            continue
        for piece in body.split("\n---\n"):
            if piece.strip():
                text.append(f"---\n# Source: {path}\n{piece.strip()}\n")
    with open(os.path.join(out, f"{name}.yaml"), "w") as f:
        f.write("".join(text))
    return count


def refused(chart):
    with helm.Chart.load(chart) as loaded:
        for values, why in REFUSED:
            try:
                loaded.validate_schema(values)
            except helm.HelmError:
                continue
            fail(f"values.schema.json accepts {why}: {json.dumps(values)}")


def main():
    root, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    work, chart = workspace(root)
    try:
        skipped = set()
        for name, values in scenarios(root):
            lint(chart, name, values)
            count = render(chart, name, values, out, skipped)
            print(f"  {name}: lint --strict clean, {count} objects valid for Kubernetes {KUBE_VERSION}")
        refused(chart)
        print(f"  values.schema.json refuses all {len(REFUSED)} bad values")
        if skipped:
            print(f"  not in the Kubernetes schemas, so not validated: {', '.join(sorted(skipped))}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
