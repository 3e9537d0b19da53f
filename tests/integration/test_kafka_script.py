"""deploy/kafka/kafka.sh's default KRaft controller port stays clear of Alertmanager's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.services import KAFKA_SH, free_port

pytestmark = pytest.mark.integration

ALERTMANAGER_PORTS = {9093, 9094}  # web, cluster


def default_controller_port(port: int) -> int:
    """The script's own rule, run by bash (no broker needed)."""
    function = subprocess.run(["sed", "-n", "/^default_controller_port()/,/^}/p", str(KAFKA_SH)],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert function, "default_controller_port() not found in kafka.sh"
    out = subprocess.run(["bash", "-c", f"{function}\ndefault_controller_port {port}"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return int(out)


def test_default_controller_port_rule() -> None:
    assert default_controller_port(9092) == 10092
    assert default_controller_port(9092) not in ALERTMANAGER_PORTS
    assert default_controller_port(65000) == 64000  # stays a valid port


def test_start_with_only_a_port_uses_the_default(tmp_path: Path) -> None:
    data = tmp_path / "kafka"
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_CONTROLLER_PORT"}
    for _attempt in range(3):  # port + 1000 may happen to be taken on a busy machine
        port = free_port()
        started = subprocess.run(["bash", str(KAFKA_SH), "start", "--port", str(port),
                                  "--data-dir", str(data)], env=env, capture_output=True,
                                 text=True, check=False)  # fmt: skip
        if "already in use" not in started.stderr:
            break
    try:
        assert started.returncode == 0, started.stderr
        config = (data / "server.properties").read_text().splitlines()
        expected = default_controller_port(port)
        assert f"controller.quorum.voters=1@127.0.0.1:{expected}" in config
        assert (f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{expected}"
                in config)  # fmt: skip
        assert f"(controller {expected})" in started.stderr
    finally:
        subprocess.run(["bash", str(KAFKA_SH), "stop", "--data-dir", str(data)], check=False)
