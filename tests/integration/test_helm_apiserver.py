"""`helm install` of every chart scenario into a real Kubernetes API server.

etcd (Debian's) and kube-apiserver (built from the k8s.io/kubernetes module by
deploy/k8s/ensure-tools.sh) run on free loopback ports with a self-signed serving certificate
and a static admin token; the prometheus-operator CRDs (controller-gen's output) are created
through the API. Helm validates each manifest against the server's OpenAPI schema and the
server validates and stores it (admission included). No controller runs, so no Pod is ever
created: this proves the objects are accepted, not that the workers start.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_helm_chart import (
    CHART,
    OPERATOR_CRDS,
    RULES,
    SCENARIOS,
    script,
    tools,
    values_args,
)
from tests.integration.services import free_port, spawn, stop_process, wait_for

pytestmark = pytest.mark.integration

ADMIN = "admin"


@dataclass
class ApiServer:
    url: str
    token: str
    ca: Path
    kubeconfig: Path
    helm_env: dict[str, str]

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        # /readyz and friends answer plain text; the API answers JSON.
        try:
            return status, json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return status, {"text": raw.decode(errors="replace")}

    def get(self, path: str) -> dict[str, Any]:
        status, body = self.request("GET", path)
        assert status == 200, (path, body)
        return body

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tools()["HELM"], "--kubeconfig", str(self.kubeconfig), *args],
            env=self.helm_env, capture_output=True, text=True, check=False, timeout=180,
        )  # fmt: skip


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    paths = tools()
    root = tmp_path_factory.mktemp("kube")
    # A serving certificate for 127.0.0.1 (its own CA), and the service-account signing key.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=kube-apiserver", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(root / "serving.key"), "-out", str(root / "serving.crt"))  # fmt: skip
    openssl("genrsa", "-out", str(root / "sa.key"), "2048")
    openssl("rsa", "-in", str(root / "sa.key"), "-pubout", "-out", str(root / "sa.pub"))
    token = secrets.token_hex(16)
    (root / "tokens.csv").write_text(f"{token},{ADMIN},{ADMIN},system:masters\n")

    etcd_port, peer_port, secure_port = free_port(), free_port(), free_port()
    etcd = spawn(
        [paths["ETCD"], "--name", "test", "--data-dir", str(root / "etcd"),
         "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
         "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
         "--initial-cluster", f"test=http://127.0.0.1:{peer_port}"],
        root / "etcd.log",
    )  # fmt: skip
    processes = [etcd]
    try:
        wait_for(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{etcd_port}/health", timeout=2)
            .read().find(b'"true"') >= 0,
            60, "etcd",
        )  # fmt: skip
        command = [
            paths["KUBE_APISERVER"], f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", f"--secure-port={secure_port}",
            "--advertise-address=127.0.0.1",
            # No kubelets, no endpoints: the `kubernetes` Service is not kept up to date.
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={root / 'serving.crt'}",
            f"--tls-private-key-file={root / 'serving.key'}",
            f"--cert-dir={root / 'certs'}",
            f"--token-auth-file={root / 'tokens.csv'}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={root / 'sa.pub'}",
            f"--service-account-signing-key-file={root / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", "--profiling=false",
        ]  # fmt: skip
        processes.append(spawn(command, root / "kube-apiserver.log"))
        url = f"https://127.0.0.1:{secure_port}"
        kubeconfig = root / "kubeconfig"
        ca_data = base64.b64encode((root / "serving.crt").read_bytes()).decode()
        kubeconfig.write_text(
            yaml.safe_dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "test",
                "clusters": [{"name": "test", "cluster": {
                    "server": url, "certificate-authority-data": ca_data}}],
                "users": [{"name": ADMIN, "user": {"token": token}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": ADMIN}}],
            })
        )  # fmt: skip
        kubeconfig.chmod(0o600)
        helm_home = root / "helm"
        helm_env = {k: v for k, v in os.environ.items() if not k.startswith(("HELM_", "KUBE"))}
        helm_env |= {
            f"HELM_{d}_HOME": str(helm_home / d.lower()) for d in ("CACHE", "CONFIG", "DATA")
        }
        server = ApiServer(url, token, root / "serving.crt", kubeconfig, helm_env)

        def ready() -> bool:
            status, _ = server.request("GET", "/readyz")
            return status == 200

        started = time.monotonic()
        wait_for(ready, 180, f"kube-apiserver (log: {root / 'kube-apiserver.log'})", step=1)
        print(f"kube-apiserver ready in {time.monotonic() - started:.1f} s")
        create_crds(server)
        yield server
    finally:
        for process in reversed(processes):
            stop_process(process)


CRDS_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def create_crds(server: ApiServer) -> None:
    schemas = script("kube_schemas")
    source = Path(tools()["OPERATOR_CRDS"])
    for name in OPERATOR_CRDS:
        for crd in schemas.load_crds(source, f"{name}.yaml"):
            status, body = server.request("POST", CRDS_PATH, crd)
            assert status == 201, body

            def established(crd_name: str = crd["metadata"]["name"]) -> bool:
                got = server.get(f"{CRDS_PATH}/{crd_name}")
                conditions = got.get("status", {}).get("conditions", [])
                return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

            wait_for(established, 60, f"CRD {crd['metadata']['name']} established")


def namespace(server: ApiServer, name: str) -> None:
    status, body = server.request(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    assert status in (201, 409), body


def install(server: ApiServer, scenario: str) -> tuple[str, str]:
    """Install ``scenario`` as release cm in namespace cc-<scenario>: its namespace and name."""
    ns = f"cc-{scenario}"
    for dry_run in (["--dry-run=server"], []):
        result = server.helm(
            "install", "cm", str(CHART), "--namespace", ns, "--create-namespace",
            *values_args(scenario), *dry_run,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        # The server's warnings (unknown fields, deprecated APIs) would show here.
        assert "Warning" not in result.stderr, result.stderr
        assert "monitor top --url http://127.0.0.1:6066/metrics" in result.stdout  # NOTES.txt
    return ns, "cm-callcenter-monitor"


def test_every_scenario_installs(apiserver: ApiServer) -> None:
    namespace(apiserver, "monitoring")  # where the kube-prometheus-stack scenario puts boards
    for scenario in SCENARIOS:
        ns, name = install(apiserver, scenario)
        status = apiserver.helm("status", "cm", "--namespace", ns, "--output", "json")
        assert json.loads(status.stdout)["info"]["status"] == "deployed"
        kind = "statefulsets" if scenario == "statefulset-rocksdb" else "deployments"
        workload = apiserver.get(f"/apis/apps/v1/namespaces/{ns}/{kind}/{name}")
        spec = workload["spec"]["template"]["spec"]
        # Stored as the chart rendered it, defaults of the server filled in.
        assert spec["containers"][0]["command"] == ["monitor", "worker"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["terminationGracePeriodSeconds"] == 15
        for path in (
            f"/api/v1/namespaces/{ns}/services/{name}",
            f"/api/v1/namespaces/{ns}/configmaps/{name}",
            f"/api/v1/namespaces/{ns}/serviceaccounts/{name}",
            f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{name}",
            f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/{name}",
        ):
            assert apiserver.get(path)["metadata"]["name"] == name
        # Nothing turns the objects into Pods here: no controller runs.
        assert apiserver.get(f"/api/v1/namespaces/{ns}/pods")["items"] == []

    ns = "cc-statefulset-rocksdb"
    stateful = apiserver.get(f"/apis/apps/v1/namespaces/{ns}/statefulsets/cm-callcenter-monitor")
    assert stateful["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"] == {
        "storage": "20Gi"
    }

    ns = "cc-kube-prometheus-stack"
    monitoring = f"/apis/monitoring.coreos.com/v1/namespaces/{ns}"
    monitor = apiserver.get(f"{monitoring}/servicemonitors/cm-callcenter-monitor")
    service = apiserver.get(f"/api/v1/namespaces/{ns}/services/cm-callcenter-monitor")
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "callcenter-monitor"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = apiserver.get(f"{monitoring}/prometheusrules")["items"]
    assert sorted(r["metadata"]["name"] for r in rules) == [
        f"cm-callcenter-monitor-{p.stem}" for p in sorted(RULES.glob("*.yml"))
    ]
    boards = apiserver.get(
        "/api/v1/namespaces/monitoring/configmaps?labelSelector=grafana_dashboard%3D1"
    )
    assert len(boards["items"]) == 3


def test_one_prometheus_rule_with_both_rule_files_is_refused(apiserver: ApiServer) -> None:
    """Why the chart makes one PrometheusRule per file: the files reuse group names."""
    namespace(apiserver, "rules-check")
    groups = [
        g for p in sorted(RULES.glob("*.yml")) for g in yaml.safe_load(p.read_text())["groups"]
    ]
    path = "/apis/monitoring.coreos.com/v1/namespaces/rules-check/prometheusrules?dryRun=All"

    def rule(name: str, chosen: list[dict[str, Any]]) -> dict[str, Any]:
        return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
                "metadata": {"name": name}, "spec": {"groups": chosen}}  # fmt: skip

    status, body = apiserver.request("POST", path, rule("both", groups))
    assert status == 422, body
    assert "Duplicate value" in body["message"]
    first = yaml.safe_load(sorted(RULES.glob("*.yml"))[0].read_text())["groups"]
    status, body = apiserver.request("POST", path, rule("one", first))
    assert status == 201, body


def test_the_server_reports_an_unknown_field(apiserver: ApiServer) -> None:
    """The server flags a field it does not know (as a warning: Helm 3 does not ask for strict
    field validation, kubeconform -strict is the gate), which every scenario's install is
    checked to be free of."""
    result = apiserver.helm(
        "install", "typo", str(CHART), "--namespace", "cc-typo", "--create-namespace",
        "--set-json", 'extraEnv=[{"name": "MONITOR_LATENESS", "valu": "2h"}]',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert r"unknown field \"spec.template.spec.containers[0].env[" in result.stderr
    assert "valu" in result.stderr


def test_the_server_refuses_what_the_schemas_let_through(apiserver: ApiServer) -> None:
    """The API server's own validation runs too: a negative replica count renders and passes
    the schemas, and is refused at install."""
    result = apiserver.helm(
        "install", "bad", str(CHART), "--namespace", "cc-bad", "--create-namespace",
        "--set", "replicas=-1",
    )  # fmt: skip
    assert result.returncode == 1
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in result.stderr
