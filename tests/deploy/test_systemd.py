"""The systemd units for VM installs (deploy/systemd/), checked with the real systemd-analyze
and against the worker's own settings.

systemd-analyze verify refuses a unit whose ExecStart binary is missing, and the unit names the
install path /opt/callcenter-monitor/bin/monitor, which this machine does not have: the units
are verified as copies whose ExecStart is this venv's `monitor`, the same program, and a copy
left as it is must be refused (so verify does run its checks here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from monitor.exit_codes import EXIT_USAGE
from monitor.pipeline.settings import ENV_PREFIX, WorkerSettings, parse_duration_ms

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "deploy" / "systemd"
TEMPLATE = SYSTEMD / "callcenter-monitor@.service"
TARGET = SYSTEMD / "callcenter-monitor.target"
INSTALLED_MONITOR = "/opt/callcenter-monitor/bin/monitor"
VENV_MONITOR = Path(sys.executable).with_name("monitor")
SHUTDOWN_TIMEOUT_MS = WorkerSettings.model_fields["shutdown_timeout"].default


def analyze() -> str:
    found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze missing: run `make tools` (deploy/image/ensure-tools.sh)"
    return found


def directives(path: Path) -> dict[str, list[str]]:
    """Every KEY=VALUE of a unit file, by key, in order."""
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines()
                if line and not line.startswith("#"))  # fmt: skip


def instance(tmp_path: Path, monitor: str, number: int = 1) -> Path:
    """The template as instance NUMBER, with the credentials drop-in, ExecStart at MONITOR."""
    text = TEMPLATE.read_text()
    assert text.count(INSTALLED_MONITOR) == 1
    unit = tmp_path / f"callcenter-monitor@{number}.service"
    unit.write_text(text.replace(INSTALLED_MONITOR, monitor))
    dropins = tmp_path / f"{unit.name}.d"
    dropins.mkdir()
    shutil.copy(SYSTEMD / "credentials.conf", dropins)
    shutil.copy(TARGET, tmp_path)
    return unit


def verify(*units: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([analyze(), "verify", *map(str, units)], capture_output=True,
                          text=True, check=False, timeout=60)  # fmt: skip


def test_the_units_verify_without_a_word(tmp_path: Path) -> None:
    assert VENV_MONITOR.exists()
    result = verify(instance(tmp_path, str(VENV_MONITOR)), tmp_path / TARGET.name)
    # verify exits 0 on warnings too (an unknown key, a bad value): silence is the check.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_refuses_the_unit_where_its_binary_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "opt" / "bin" / "monitor"
    result = verify(instance(tmp_path, str(missing)))
    assert result.returncode != 0
    assert f"Command {missing} is not executable" in result.stdout + result.stderr


def test_the_hardening_scores_ok_in_systemds_own_review(tmp_path: Path) -> None:
    unit = instance(tmp_path, str(VENV_MONITOR))
    # Exposure 0.0 (locked down) .. 10.0; systemd calls up to 2.0 "OK". --threshold is x10.
    result = subprocess.run([analyze(), "security", "--offline=yes", "--threshold=20", str(unit)],
                            capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", result.stdout)
    assert level is not None and float(level[1]) <= 2.0, result.stdout[-400:]
    settings = directives(TEMPLATE)
    for key in ("DynamicUser", "NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert settings[key] == ["yes"], key
    assert settings["ProtectSystem"] == ["strict"]
    assert settings["CapabilityBoundingSet"] == [""]


def test_stop_and_restart_fit_the_workers_shutdown_and_exit_statuses() -> None:
    settings = directives(TEMPLATE)
    assert settings["KillSignal"] == ["SIGTERM"]
    # systemd SIGKILLs after TimeoutStopSec: it must leave the worker its whole shutdown.
    (stop,) = settings["TimeoutStopSec"]
    assert parse_duration_ms(stop) > SHUTDOWN_TIMEOUT_MS
    assert settings["Restart"] == ["on-failure"]
    assert settings["RestartPreventExitStatus"] == [str(EXIT_USAGE)]
    assert settings["ExecStart"] == [f"{INSTALLED_MONITOR} worker"]
    # The unit writes where the worker keeps its state, and nowhere else.
    assert settings["StateDirectory"] == ["callcenter-monitor/worker-%i"]
    assert settings["Environment"] == ["MONITOR_DATA_DIR=%S/callcenter-monitor/worker-%i"]
    assert settings["EnvironmentFile"] == ["/etc/callcenter-monitor/monitor.env",
                                           "/etc/callcenter-monitor/worker-%i.env"]  # fmt: skip


def test_the_example_env_files_hold_only_real_settings() -> None:
    # The logging variables are read by monitor/logs.py, before any settings model.
    known = {ENV_PREFIX + name.upper() for name in WorkerSettings.model_fields}
    known |= {"MONITOR_LOG_LEVEL", "MONITOR_LOG_FORMAT"}
    files = [SYSTEMD / "monitor.env", *sorted(SYSTEMD.glob("worker-*.env"))]
    assert len(files) >= 3
    for path in files:
        names = re.findall(r"^#?(MONITOR_[A-Z_]+)=", path.read_text(), re.MULTILINE)
        assert names and set(names) <= known, (path.name, set(names) - known)
    ports = [env_file(path)["MONITOR_WEB_PORT"] for path in files[1:]]
    assert len(set(ports)) == len(ports)
    assert ports[0] == str(WorkerSettings.model_fields["web_port"].default)


def test_the_worker_reads_the_env_files_as_systemd_passes_them(tmp_path: Path) -> None:
    """monitor.env, then worker-2.env (later wins), as the unit's EnvironmentFile= lines."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
    env |= env_file(SYSTEMD / "monitor.env") | env_file(SYSTEMD / "worker-2.env")
    env |= {"MONITOR_DATA_DIR": str(tmp_path / "worker-2"),
            "MONITOR_CONTRACTS": str(ROOT / "deploy" / "contracts.csv")}  # fmt: skip
    result = subprocess.run([str(VENV_MONITOR), "worker", "--print-config"], env=env,
                            capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    effective = dict(line.split("=", 1) for line in result.stdout.splitlines()
                     if line.startswith(ENV_PREFIX))  # fmt: skip
    assert effective["MONITOR_WEB_PORT"] == "6067"
    assert effective["MONITOR_WEB_HOST"] == "0.0.0.0"
    assert effective["MONITOR_STORE"] == "rocksdb://"
    assert effective["MONITOR_BOOTSTRAP_SERVERS"] == env["MONITOR_BOOTSTRAP_SERVERS"]
