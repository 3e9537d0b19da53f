"""The compose evaluation stack (deploy/compose/): valid against the Compose Specification's JSON
schema, pinned public images, mounts that exist, and configurations in step with the committed
ones, checked with the real promtool and amtool. Running it needs the public images, which
cannot be pulled here; its worker, our image read-only against a real broker, is run by
tests/integration/test_image.py."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from monitor.pipeline.settings import ENV_PREFIX, WorkerSettings, parse_duration_ms

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
WORKERS = ("worker-1", "worker-2")
WEB_PORT = WorkerSettings.model_fields["web_port"].default
SHUTDOWN_TIMEOUT_MS = WorkerSettings.model_fields["shutdown_timeout"].default
# ${NAME:-default} or ${NAME}: Compose interpolates these before it validates.
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """The Compose Specification schema that deploy/image/ensure-tools.sh caches."""
    printed = subprocess.run(["bash", str(ROOT / "deploy" / "image" / "ensure-tools.sh"),
                              "--print"], capture_output=True, text=True, check=True,
                             timeout=600).stdout  # fmt: skip
    paths = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
    loaded: dict[str, Any] = json.loads(Path(paths["COMPOSE_SPEC"]).read_text())
    assert loaded["title"] == "Compose Specification"
    return loaded


def interpolated(text: str) -> str:
    return VARIABLE.sub(lambda m: os.environ.get(m[1], m[2] or ""), text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(interpolated(COMPOSE.read_text()))
    return loaded


def validate(schema: dict[str, Any], document: dict[str, Any]) -> None:
    jsonschema.Draft201909Validator(schema).validate(document)


def test_the_compose_file_is_valid_against_the_compose_specification(
    schema: dict[str, Any], compose: dict[str, Any]
) -> None:
    validate(schema, compose)
    assert set(compose["services"]) == {"kafka", *WORKERS, "simulator", "prometheus",
                                        "alertmanager", "grafana"}  # fmt: skip
    # The schema is strict: a misspelt key is refused, so the pass above means something.
    broken = copy.deepcopy(compose)
    broken["services"]["worker-1"]["read_onyl"] = True
    with pytest.raises(jsonschema.ValidationError, match="read_onyl"):
        validate(schema, broken)


def test_public_images_are_pinned_and_kafka_is_the_tested_release(compose: dict[str, Any]) -> None:
    kafka_sh = (ROOT / "deploy" / "kafka" / "kafka.sh").read_text()
    (kafka_version,) = re.findall(r"^KAFKA_VERSION=(\S+)$", kafka_sh, re.MULTILINE)
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert images["kafka"] == f"docker.io/apache/kafka:{kafka_version}"
    for name in ("prometheus", "alertmanager", "grafana"):
        registry, _, tag = images[name].rpartition(":")
        assert registry.startswith("docker.io/") and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), name
    ours = {name for name, image in images.items() if "callcenter-monitor" in image}
    assert ours == {*WORKERS, "simulator"}
    assert len({images[name] for name in ours}) == 1
    for name in WORKERS:
        build = compose["services"][name]["build"]
        context = (COMPOSE_DIR / build["context"]).resolve()
        assert context == ROOT and (context / build["dockerfile"]).is_file()


def test_every_bind_mount_exists(compose: dict[str, Any]) -> None:
    named = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source in named:
                continue
            assert source.startswith("."), f"{name}: {volume}"
            assert (COMPOSE_DIR / source).exists(), f"{name}: {source} missing"


def test_workers_run_read_only_and_stop_within_their_grace(compose: dict[str, Any]) -> None:
    known = {ENV_PREFIX + name.upper() for name in WorkerSettings.model_fields}
    host_ports = set()
    for name in WORKERS:
        worker = compose["services"][name]
        assert worker["read_only"] is True and worker["cap_drop"] == ["ALL"]
        assert "user" not in worker  # the image's non-root user
        assert set(worker["environment"]) <= known
        assert worker["environment"]["MONITOR_BOOTSTRAP_SERVERS"] == "kafka:9092"
        # The data directory is a named volume: the one place a read-only worker writes.
        assert any(v.endswith(":/var/lib/callcenter-monitor") for v in worker["volumes"])
        stop_grace = parse_duration_ms(worker["stop_grace_period"])
        assert stop_grace > SHUTDOWN_TIMEOUT_MS
        host, container = worker["ports"][0].rsplit(":", 2)[-2:]
        assert container == str(WEB_PORT)
        host_ports.add(host)
        assert f"127.0.0.1:{WEB_PORT}/healthz" in " ".join(worker["healthcheck"]["test"])
    assert len(host_ports) == len(WORKERS)


def test_prometheus_config_is_the_committed_one_with_the_stacks_targets(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    committed = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    stack = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    expected = copy.deepcopy(committed)
    expected["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        "alertmanager:9093"]  # fmt: skip
    (job,) = (j for j in expected["scrape_configs"] if j["job_name"] == "callcenter-monitor")
    job["static_configs"][0]["targets"] = [f"{name}:{WEB_PORT}" for name in WORKERS]
    assert stack == expected
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in (
        compose["services"]["prometheus"]["volumes"])  # fmt: skip
    assert "../prometheus/rules:/etc/prometheus/rules:ro" in compose["services"]["prometheus"][
        "volumes"]  # fmt: skip
    # promtool on the layout the container sees: the config beside the rules directory.
    shutil.copy(COMPOSE_DIR / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copytree(ROOT / "deploy" / "prometheus" / "rules", tmp_path / "rules")
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run `make tools`"
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_alertmanager_config_is_the_committed_routing_with_silent_receivers() -> None:
    committed = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    stack = yaml.safe_load((COMPOSE_DIR / "alertmanager.yml").read_text())
    assert stack["route"] == committed["route"]
    assert stack["inhibit_rules"] == committed["inhibit_rules"]
    assert stack["receivers"] == [{"name": r["name"]} for r in committed["receivers"]]
    assert stack["global"] == {k: v for k, v in committed["global"].items()
                               if not k.startswith("smtp_")}  # fmt: skip
    amtool = shutil.which("amtool")
    assert amtool, "amtool missing: run `make tools`"
    result = subprocess.run([amtool, "check-config", str(COMPOSE_DIR / "alertmanager.yml")],
                            capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_gets_the_committed_boards_and_the_stacks_prometheus(
    compose: dict[str, Any],
) -> None:
    provisioning = ROOT / "grafana" / "provisioning"
    committed = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    stack = yaml.safe_load((COMPOSE_DIR / "grafana-datasources.yml").read_text())
    expected = copy.deepcopy(committed)
    expected["datasources"][0]["url"] = "http://prometheus:9090"
    assert stack == expected
    boards = yaml.safe_load((provisioning / "dashboards" / "callcenter.yml").read_text())
    board_path = boards["providers"][0]["options"]["path"]
    volumes = compose["services"]["grafana"]["volumes"]
    assert f"../../grafana/dashboards:{board_path}:ro" in volumes
    assert (
        "../../grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro" in volumes
    )
    home = compose["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert home.startswith(board_path + "/")
    assert (ROOT / "grafana" / "dashboards" / Path(home).name).is_file()
