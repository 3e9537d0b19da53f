"""The container image (deploy/image/Containerfile), built with podman on the local Debian base:
what it declares, what it holds, and a worker in it, read-only and non-root, against the
session's real broker, scraped from the host."""

from __future__ import annotations

import json
import os
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.pipeline.settings import WorkerSettings
from tests.integration.services import ROOT, Kafka, free_port, run_monitor, scrape, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IMAGE_DIR = ROOT / "deploy" / "image"
BASE_IMAGE = "localhost/callcenter-monitor-base:bookworm"
TAG = "localhost/callcenter-monitor:test"
# This sandbox's rlimits and runtime (see the file); a podman without such caps needs none.
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "tests" / "deploy" / "containers.conf")}
# pip inside the build trusts what the host trusts (here that includes an egress proxy's CA).
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
DATA_DIR = "/var/lib/callcenter-monitor"
CONTRACTS = ROOT / "deploy" / "contracts.csv"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], env=PODMAN_ENV, capture_output=True, text=True,
                          check=check, timeout=timeout)  # fmt: skip


def image_id(tag: str) -> str:
    return podman("image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip()


@pytest.fixture(scope="session")
def image() -> str:
    """Built once a session; podman's layer cache makes a rebuild of unchanged code quick."""
    subprocess.run(["bash", str(IMAGE_DIR / "base-image.sh")], env=PODMAN_ENV, check=True,
                   timeout=600)  # fmt: skip
    previous = image_id(TAG)
    ca = ["--ca-file", str(HOST_CA)] if HOST_CA.exists() else []
    built = subprocess.run(
        ["bash", str(IMAGE_DIR / "build.sh"), "--base", BASE_IMAGE, "--tag", TAG, *ca],
        env=PODMAN_ENV, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-4000:]
    assert built.stdout.strip() == TAG
    # The previous session's image, untagged now, would pile up run after run.
    if previous and previous != image_id(TAG):
        podman("rmi", previous, check=False)
    return TAG


def inspect(image: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    return config


def in_image(image: str, script: str) -> subprocess.CompletedProcess[str]:
    return podman("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", script,
                  check=False)  # fmt: skip


def test_monitor_version_in_the_image_is_the_projects(image: str) -> None:
    out = podman("run", "--rm", "--network", "none", image, "--version").stdout.split()
    assert out[:2] == ["monitor", PROJECT["version"]]
    assert out[2] == "(python" and out[3].startswith("3.11.")


def test_the_image_declares_its_user_entry_point_port_and_labels(image: str) -> None:
    config = inspect(image)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["monitor"]
    assert config["Cmd"] == ["worker"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["MONITOR_WEB_HOST"] == "0.0.0.0"
    assert env["MONITOR_DATA_DIR"] == DATA_DIR
    # EXPOSE repeats the worker's default port for tools that read it: they must agree.
    assert set(config["ExposedPorts"]) == {f"{WorkerSettings.model_fields['web_port'].default}/tcp"}
    # What the worker makes of the image's environment (no broker needed to print it).
    printed = podman("run", "--rm", "--network", "none", image, "worker", "--print-config")
    effective = dict(line.split("=", 1) for line in printed.stdout.splitlines() if "=" in line)
    assert effective["MONITOR_WEB_HOST"] == "0.0.0.0"
    assert effective["MONITOR_DATA_DIR"] == DATA_DIR
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == PROJECT["version"]
    assert labels["org.opencontainers.image.licenses"] == PROJECT["license"]["text"]
    assert labels["org.opencontainers.image.source"].startswith("https://github.com/")


def test_the_image_holds_tzdata_and_no_build_tools(image: str) -> None:
    zones = in_image(
        image,
        "python3 -c 'import zoneinfo; print(zoneinfo.ZoneInfo(\"America/"
        "New_York\").key)' && test -f /usr/share/zoneinfo/America/Chicago",
    )
    assert zones.returncode == 0, zones.stderr
    assert zones.stdout.strip() == "America/New_York"
    tools = "gcc cc c++ make ld as pip pip3"
    found = in_image(image, f"for t in {tools}; do command -v $t; done; "
                            "ls /opt/callcenter-monitor/bin/ | grep -E '^pip' || true")  # fmt: skip
    assert found.stdout.strip() == ""
    user = in_image(image, "id -u; id -g; stat -c '%u %a' " + DATA_DIR)
    assert user.stdout.split() == ["10001", "10001", "10001", "750"]


def get_status(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"cm-test-{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def test_a_read_only_non_root_worker_container_serves_metrics_and_readiness(
    image: str, kafka: Kafka, tmp_path: Path, container_name: str
) -> None:
    name = f"it-image-{uuid.uuid4().hex[:6]}"
    port = free_port()
    # Only the data directory is writable (a tmpfs owned by the image's user): no /tmp, /run.
    podman(
        "run", "--detach", "--name", container_name, "--network", "host",
        "--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--tmpfs", f"{DATA_DIR}:rw,size=256m,mode=0700,U",
        "--volume", f"{CONTRACTS}:/etc/callcenter-monitor/contracts.csv:ro",
        "--env", f"MONITOR_BOOTSTRAP_SERVERS={kafka.bootstrap}",
        "--env", f"MONITOR_WEB_PORT={port}",
        "--env", "MONITOR_CONTRACTS=/etc/callcenter-monitor/contracts.csv",
        "--env", "MONITOR_STORE=rocksdb://",
        image, "worker", "--app-id", name, "--events-topic", f"{name}.events",
        "--dlq-topic", f"{name}.dlq", "--outages-topic", f"{name}.outages", "--partitions", "2",
    )  # fmt: skip
    metrics_url = f"http://127.0.0.1:{port}/metrics"

    def logs() -> str:
        result = podman("logs", container_name, check=False)
        return result.stdout + result.stderr

    def ready() -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", container_name).stdout
        assert state.strip() == "true", f"the worker container exited: {logs()[-4000:]}"
        return get_status(f"http://127.0.0.1:{port}/readyz")[0] == 200

    wait_for(ready, 120, "the containerised worker to be ready")
    status, body = get_status(f"http://127.0.0.1:{port}/healthz")
    assert status == 200, body
    metrics = scrape(metrics_url)
    assert metrics["callcenter_partitions_owned"][()] == 2
    (build,) = metrics["callcenter_build_info"]
    assert dict(build)["version"] == PROJECT["version"]

    events = tmp_path / "events.jsonl"
    run_monitor("simulate", "--contracts", str(CONTRACTS), "--hours", "2", "--calls-per-hour",
                "20", "--seed", "5", "--output", str(events))  # fmt: skip
    report = json.loads(run_monitor("report", "--input", str(events), "--contracts",
                                    str(CONTRACTS)).stdout)  # fmt: skip
    lines = sum(1 for line in events.read_bytes().splitlines() if line.strip())
    accepted = lines - report["rejected_events"] - report["duplicate_events"]
    assert accepted > 100
    run_monitor("publish", "--input", str(events), "--bootstrap-servers", kafka.bootstrap,
                "--events-topic", f"{name}.events", "--partitions", "2")  # fmt: skip
    wait_for(lambda: scrape(metrics_url)["callcenter_events_accepted_total"][()] == accepted,
             90, f"{accepted} events accepted in the container")  # fmt: skip
    calls = sum(scrape(metrics_url)["callcenter_calls_received_total"].values())
    assert calls == sum(row["calls_received"] for row in report["rows"])

    started = time.monotonic()
    podman("stop", "--time", "30", container_name)
    stopped_in = time.monotonic() - started
    exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", container_name).stdout
    assert exit_code.strip() == "0", logs()[-4000:]
    assert stopped_in < WorkerSettings.model_fields["shutdown_timeout"].default / 1000 + 2
    # Not a terminal: one JSON object per line, and nothing refused for a read-only file.
    records = [json.loads(line) for line in logs().splitlines() if line.strip()]
    assert records, "the worker logged nothing"
    assert not [r for r in records if "read-only" in json.dumps(r).lower()]
