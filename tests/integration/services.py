"""Real services for integration tests: a local Apache Kafka broker and monitor workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
MONITOR = [sys.executable, "-m", "monitor"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Kafka:
    port: int
    data_dir: Path
    # Fixed for the broker's life, so a stopped broker restarts with the same configuration.
    controller_port: int = field(default_factory=free_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run(
            ["bash", str(KAFKA_SH), "start", "--port", str(self.port), "--controller-port",
             str(self.controller_port), "--data-dir", str(self.data_dir)],
            check=True,
        )  # fmt: skip

    def stop(self) -> None:
        subprocess.run(
            ["bash", str(KAFKA_SH), "stop", "--data-dir", str(self.data_dir)], check=False
        )


Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(url: str) -> Samples:
    """Metric samples by name, then by sorted label pairs."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    out: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return out


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:
            last_error = exc
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} ({last_error!r})")


@dataclass
class WorkerProcess:
    kafka: Kafka
    app_id: str
    events_topic: str
    dlq_topic: str
    data_dir: Path
    contracts: Path | None = None
    partitions: int = 4
    extra: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self) -> WorkerProcess:
        args = [
            *MONITOR, "worker", "--bootstrap-servers", self.kafka.bootstrap,
            "--app-id", self.app_id, "--events-topic", self.events_topic,
            "--dlq-topic", self.dlq_topic, "--partitions", str(self.partitions),
            "--web-port", str(self.port), "--data-dir", str(self.data_dir), *self.extra,
        ]  # fmt: skip
        if self.contracts is not None:
            args += ["--contracts", str(self.contracts)]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"worker-{self.port}.log"
        env = {**os.environ, "MONITOR_LOG_FORMAT": "json"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                start_new_session=True,
            )  # fmt: skip
        return self

    def wait_ready(self, partitions: int | None = None, timeout: float = 90) -> None:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited: {self.log_tail()}")
            owned = scrape(self.metrics_url)["callcenter_partitions_owned"][()]
            return partitions is None or owned == partitions

        wait_for(ready, timeout, f"worker on port {self.port} to own its partitions")

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def run_monitor(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*MONITOR, *args], cwd=ROOT, check=True, capture_output=True)
