"""The Helm chart (deploy/helm/callcenter-monitor) renders valid, policy-clean objects that run
the worker with its own settings, and hands kube-prometheus-stack the project's rules and boards.

Real tools, built or installed by deploy/k8s/ensure-tools.sh: helm lint and template, kubeconform
(strict, against the Kubernetes schemas and the prometheus-operator CRDs), kube-score, and
`monitor worker --print-config` fed the rendered environment. The API server checks are in
tests/integration/test_helm_apiserver.py.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "callcenter-monitor"
CI_VALUES = ROOT / "deploy" / "helm" / "ci"
RULES = ROOT / "deploy" / "prometheus" / "rules"
BOARDS = ROOT / "grafana" / "dashboards"
#: Every scenario: the chart's defaults and each values file of deploy/helm/ci.
SCENARIOS = {"default": None} | {
    p.stem.removeprefix("values-"): p for p in sorted(CI_VALUES.glob("values-*.yaml"))
}
# The CRDs of the kinds the chart renders.
OPERATOR_CRDS = ("monitoring.coreos.com_servicemonitors", "monitoring.coreos.com_prometheusrules")
# kube-score's host podAntiAffinity checks predate topologySpreadConstraints, which the chart
# uses instead (pod-topology-spread-constraints checks them).
KUBE_SCORE_IGNORED = ("deployment-has-host-podantiaffinity", "statefulset-has-host-podantiaffinity")
KUBE_SCORE_OPTIONAL = ("container-seccomp-profile", "container-ports-check")


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def tools() -> dict[str, str]:
    """The tools' paths: ensure-tools builds what is missing (seconds once cached)."""
    out = subprocess.run(
        ["bash", str(ROOT / "deploy" / "k8s" / "ensure-tools.sh"), "--print"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def kube_version() -> str:
    return tools()["KUBERNETES_VERSION"].lstrip("v")


def values_args(scenario: str) -> list[str]:
    path = SCENARIOS[scenario]
    return [] if path is None else ["-f", str(path)]


def helm_template(*args: str, release: str = "cm") -> subprocess.CompletedProcess[str]:
    command = [tools()["HELM"], "template", release, str(CHART), "--namespace", "callcenter",
               "--kube-version", kube_version(), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=False)


def render(*args: str, release: str = "cm") -> list[dict[str, Any]]:
    result = helm_template(*args, release=release)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@functools.cache
def rendered(scenario: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(*values_args(scenario)))


def only(objects: tuple[dict[str, Any], ...] | list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def workload(scenario: str) -> dict[str, Any]:
    found = [o for o in rendered(scenario) if o["kind"] in ("Deployment", "StatefulSet")]
    assert len(found) == 1
    return found[0]


def container(scenario: str) -> dict[str, Any]:
    containers = workload(scenario)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["worker"]
    return dict(containers[0])


def rules_job() -> str:
    """The job the alert rules select (up{job="..."})."""
    jobs = set(re.findall(r'job="([^"]+)"', (RULES / "alerts.yml").read_text()))
    assert len(jobs) == 1, jobs
    return jobs.pop()


@pytest.fixture(scope="module")
def crd_schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prometheus-operator CRDs as strict JSON schemas for kubeconform."""
    schemas = script("kube_schemas")
    source = Path(tools()["OPERATOR_CRDS"])
    crds = [c for name in OPERATOR_CRDS for c in schemas.load_crds(source, f"{name}.yaml")]
    assert len(crds) == len(OPERATOR_CRDS)
    out = tmp_path_factory.mktemp("crd-schemas")
    schemas.crd_schemas(crds, out)
    return out


def kubeconform(manifests: str, crd_schemas: Path) -> subprocess.CompletedProcess[str]:
    k8s = Path(tools()["KUBE_SCHEMAS"])
    minor = ".".join(kube_version().split(".")[:2])
    command = [
        tools()["KUBECONFORM"], "-strict", "-summary", "-output", "json",
        "-kubernetes-version", f"{minor}.0",
        "-schema-location",
        f"{k8s}/{{{{.NormalizedKubernetesVersion}}}}-standalone{{{{.StrictSuffix}}}}/"
        "{{.ResourceKind}}{{.KindSuffix}}.json",
        "-schema-location",
        f"{crd_schemas}/{{{{.Group}}}}/{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json",
        "-",
    ]  # fmt: skip
    return subprocess.run(command, input=manifests, capture_output=True, text=True, check=False)


# --- the chart's copies and versions -------------------------------------------------------


def test_chart_copies_of_rules_and_boards_are_the_sources() -> None:
    assert script("helm_assets").differences() == [], "run python scripts/helm_assets.py"
    assert sorted(p.name for p in (CHART / "files" / "rules").iterdir()) == sorted(
        p.name for p in RULES.glob("*.yml")
    )


def test_app_version_is_the_projects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == project
    assert container("default")["image"] == f"callcenter-monitor:{project}"


# --- helm lint, kubeconform, kube-score over every scenario --------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict(scenario: str) -> None:
    result = subprocess.run(
        [tools()["HELM"], "lint", "--strict", str(CHART), *values_args(scenario)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_kubeconform_strict(scenario: str, crd_schema_dir: Path) -> None:
    manifests = helm_template(*values_args(scenario)).stdout
    result = kubeconform(manifests, crd_schema_dir)
    report = json.loads(result.stdout)
    assert result.returncode == 0, report["resources"]
    summary = report["summary"]
    assert summary["invalid"] == summary["errors"] == summary["skipped"] == 0
    assert summary["valid"] == len(rendered(scenario)) >= 6


def test_kubeconform_refuses_unknown_fields(crd_schema_dir: Path) -> None:
    """Strict validation is on for both schema sources: one stray field fails each."""
    objects = render(*values_args("kube-prometheus-stack"))
    for kind, field_path in (
        ("Deployment", ("spec", "template", "spec", "containers", 0)),
        ("ServiceMonitor", ("spec", "endpoints", 0)),
        ("PrometheusRule", ("spec", "groups", 0)),
    ):
        broken = json.loads(json.dumps(next(o for o in objects if o["kind"] == kind)))
        node: Any = broken
        for key in field_path:
            node = node[key]
        node["intervall"] = "15s"
        result = kubeconform(yaml.safe_dump(broken), crd_schema_dir)
        assert result.returncode == 1, kind
        assert "intervall" in result.stdout, result.stdout


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_kube_score(scenario: str) -> None:
    manifests = helm_template(*values_args(scenario)).stdout
    command = [tools()["KUBE_SCORE"], "score", "--output-format", "ci"]
    command += [a for t in KUBE_SCORE_OPTIONAL for a in ("--enable-optional-test", t)]
    command += [a for t in KUBE_SCORE_IGNORED for a in ("--ignore-test", t)]
    result = subprocess.run(
        [*command, "-"], input=manifests, capture_output=True, text=True, check=False
    )
    findings = [line for line in result.stdout.splitlines() if line.startswith("[")]
    bad = [line for line in findings if line.startswith(("[CRITICAL]", "[WARNING]"))]
    assert result.returncode == 0 and not bad, "\n".join(bad) + result.stderr
    assert sum(line.startswith("[OK]") for line in findings) >= 20


# --- what the objects say ------------------------------------------------------------------


def test_store_chooses_the_workload() -> None:
    deployment = workload("default")
    assert deployment["kind"] == "Deployment"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}

    stateful = workload("statefulset-rocksdb")
    assert stateful["kind"] == "StatefulSet"
    assert stateful["spec"]["replicas"] == 3
    (claim,) = stateful["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "standard"
    assert "data" not in {v["name"] for v in stateful["spec"]["template"]["spec"]["volumes"]}
    service = only(rendered("statefulset-rocksdb"), "Service")
    assert stateful["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    env = {e["name"]: e.get("value") for e in container("statefulset-rocksdb")["env"]}
    assert env["MONITOR_STORE"] == "rocksdb://"
    mounts = {m["name"]: m["mountPath"] for m in container("statefulset-rocksdb")["volumeMounts"]}
    assert mounts["data"] == env["MONITOR_DATA_DIR"]


def test_worker_command_port_and_probes() -> None:
    from monitor.pipeline.settings import WorkerSettings

    worker = container("default")
    assert worker["command"] == ["monitor", "worker"]
    port = WorkerSettings.model_fields["web_port"].default
    assert worker["ports"] == [{"name": "web", "containerPort": port, "protocol": "TCP"}]
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "web"}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "web"}
    assert worker["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "web"}
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["MONITOR_WEB_HOST"] == "0.0.0.0"
    assert env["MONITOR_WEB_PORT"] == str(port)


def test_termination_grace_exceeds_the_shutdown_timeout() -> None:
    from monitor.pipeline.settings import WorkerSettings

    default_ms = WorkerSettings.model_fields["shutdown_timeout"].default
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["worker"]["shutdownTimeoutSeconds"] * 1000 == default_ms
    for scenario in SCENARIOS:
        pod = workload(scenario)["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["MONITOR_SHUTDOWN_TIMEOUT"] == f"{default_ms // 1000}s"
        assert pod["terminationGracePeriodSeconds"] >= default_ms / 1000 + 5
    longer = render("--set", "worker.shutdownTimeoutSeconds=30")
    pod = only(longer, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 37
    assert {"name": "MONITOR_SHUTDOWN_TIMEOUT", "value": "30s"} in pod["containers"][0]["env"]


def test_security_context() -> None:
    for scenario in SCENARIOS:
        pod = workload(scenario)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        context = pod["containers"][0]["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["runAsUser"] >= 10000


def test_disruption_budget_and_spread_select_the_workers() -> None:
    objects = rendered("default")
    labels = workload("default")["spec"]["template"]["metadata"]["labels"]
    pdb = only(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    spread = workload("default")["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert [s["topologyKey"] for s in spread] == [
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    ]
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
    policy = only(objects, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "web", "protocol": "TCP"}]}]


def test_credentials_come_from_existing_secrets_as_files() -> None:
    worker = container("secured-kafka")
    env = {e["name"]: e for e in worker["env"]}
    assert "MONITOR_SASL_PASSWORD" not in env
    secrets_dir = next(m for m in worker["volumeMounts"] if m["name"] == "kafka-secrets")
    assert secrets_dir["readOnly"] is True
    directory = secrets_dir["mountPath"]
    assert env["MONITOR_SASL_PASSWORD_FILE"]["value"] == f"{directory}/sasl-password"
    assert env["MONITOR_SSL_CAFILE"]["value"] == f"{directory}/ca.crt"
    volume = next(
        v for v in workload("secured-kafka")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "kafka-secrets"
    )  # fmt: skip
    sources = [s["secret"] for s in volume["projected"]["sources"]]
    assert sources == [
        {
            "name": "callcenter-monitor-kafka",
            "items": [{"key": "password", "path": "sasl-password"}],
        },
        {"name": "kafka-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]},
    ]
    # No Secret is rendered: the chart never holds a credential itself.
    assert not [o for o in rendered("secured-kafka") if o["kind"] == "Secret"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["worker.store=redis://"], "worker.store must be memory:// or rocksdb://"),
        (["kafka.securityProtocol=SASL_SSL"], "kafka.saslMechanism is required"),
        (["kafka.caSecret.name=ca"], "need kafka.securityProtocol SSL or SASL_SSL"),
    ],
)
def test_inconsistent_values_are_refused(values: list[str], message: str) -> None:
    result = helm_template(*(a for v in values for a in ("--set", v)))
    assert result.returncode == 1
    assert message in result.stderr


# --- the worker accepts what the chart sets ------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A real self-signed certificate and its key (the worker checks that PEM files parse)."""
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=kafka-ca", "-keyout", str(directory / "key.pem"),
         "-out", str(directory / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    cert, key = (directory / "cert.pem").read_text(), (directory / "key.pem").read_text()
    return {".crt": cert, ".key": key}


def materialize(scenario: str, root: Path, tls: dict[str, str]) -> dict[str, str]:
    """The worker container's environment with its mounted ConfigMap and Secret files written
    under ``root``: the paths rewritten, each Secret key a file (PEM where it is one)."""
    objects = rendered(scenario)
    worker = container(scenario)
    pod = workload(scenario)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    maps = {o["metadata"]["name"]: o.get("data") or {} for o in objects if o["kind"] == "ConfigMap"}
    config = maps[volumes["config"]["configMap"]["name"]]
    moved: dict[str, Path] = {}
    for mount in worker["volumeMounts"]:
        local = root / mount["name"]
        local.mkdir()
        moved[mount["mountPath"]] = local
        volume = volumes.get(mount["name"], {})
        if "configMap" in volume:
            for key, text in config.items():
                (local / key).write_text(text)
        for source in volume.get("projected", {}).get("sources", []):
            for item in source["secret"]["items"]:
                path = local / item["path"]
                path.write_text(tls.get(path.suffix, "placeholder\n"))

    def local(value: str) -> str:
        for mount_path, path in moved.items():
            if value == mount_path or value.startswith(mount_path + "/"):
                return str(path) + value[len(mount_path) :]
        return value

    env: dict[str, str] = {}
    for item in worker["env"]:
        if "value" in item:
            env[item["name"]] = local(item["value"])
        else:
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = maps[ref["name"]][ref["key"]]
    return env


def print_config(env: dict[str, str], cwd: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "worker", "--print-config"],
        env=base | env, cwd=cwd, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return dict(
        line.split("=", 1) for line in result.stdout.splitlines() if not line.startswith("#")
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_worker_reads_the_rendered_settings(
    scenario: str, tmp_path: Path, tls_files: dict[str, str]
) -> None:
    """`monitor worker --print-config` with the pod's environment and files: every variable
    the chart sets is one of the worker's settings, read as the chart meant it."""
    env = materialize(scenario, tmp_path, tls_files)
    effective = print_config(env, tmp_path)
    for name, value in env.items():
        if name in ("MONITOR_LOG_FORMAT", "MONITOR_LOG_LEVEL"):
            continue  # read by the logging set-up (monitor/logs.py), not a worker setting
        assert name in effective, f"{name} is no setting of monitor worker"
        assert effective[name] == value, name
    if scenario == "secured-kafka":
        assert effective["MONITOR_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert Path(effective["MONITOR_SSL_CAFILE"]).read_text() == tls_files[".crt"]


# --- kube-prometheus-stack -----------------------------------------------------------------


def test_service_monitor_yields_the_job_the_rules_select() -> None:
    objects = rendered("kube-prometheus-stack")
    monitor = only(objects, "ServiceMonitor")
    service = only(objects, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # The operator sets job to the value of the Service label named by jobLabel (and to the
    # Service's name without one, here "cm-callcenter-monitor": not what the rules select).
    job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    assert job == rules_job() == "callcenter-monitor"
    assert service["metadata"]["name"] != job
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert [c["job_name"] for c in scrape["scrape_configs"]] == [job]
    assert f'job=\\"{job}\\"' in (BOARDS / "monitor-health.json").read_text()
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "web"
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s"
    # A release of another name still scrapes as the same job.
    other = render(*values_args("kube-prometheus-stack"), release="plan-a")
    assert only(other, "Service")["metadata"]["labels"][monitor["spec"]["jobLabel"]] == job


def test_one_prometheus_rule_per_rule_file() -> None:
    rules = [o for o in rendered("kube-prometheus-stack") if o["kind"] == "PrometheusRule"]
    sources = sorted(RULES.glob("*.yml"))
    assert [r["metadata"]["name"] for r in rules] == [
        f"cm-callcenter-monitor-{p.stem}" for p in sources
    ]
    for rule, source in zip(rules, sources, strict=True):
        assert rule["spec"]["groups"] == yaml.safe_load(source.read_text())["groups"]
        assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # The reason for one object per file: the files share group names.
    names = [[g["name"] for g in r["spec"]["groups"]] for r in rules]
    assert set(names[0]) & set(names[1])
    # The rules' own templates reach Prometheus untouched by Helm's.
    text = json.dumps(rules)
    assert "{{ $labels.instance }}" in text


def test_grafana_boards_for_the_sidecar() -> None:
    maps = [
        o for o in rendered("kube-prometheus-stack")
        if o["kind"] == "ConfigMap" and "grafana_dashboard" in o["metadata"]["labels"]
    ]  # fmt: skip
    assert sorted(name for m in maps for name in m["data"]) == sorted(
        p.name for p in BOARDS.glob("*.json")
    )
    for board in maps:
        assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert board["metadata"]["namespace"] == "monitoring"
        assert board["metadata"]["annotations"] == {"grafana_folder": "Call centers"}
        ((name, text),) = board["data"].items()
        assert text == (BOARDS / name).read_text().rstrip("\n")
        json.loads(text)


def test_monitoring_objects_are_off_by_default() -> None:
    kinds = {o["kind"] for o in rendered("default")}
    assert kinds == {
        "ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget", "Service",
        "ServiceAccount",
    }  # fmt: skip
