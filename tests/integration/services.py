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
# aiokafka's default fetch_max_wait_ms: how long a fetch waits on the broker for new records.
CONSUMER_FETCH_WAIT_S = 0.5


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
# Pipeline-health families describe the process, not the figures: they may differ after a crash.
PROCESS_FAMILIES = (
    "callcenter_events_",
    "callcenter_batches",
    "callcenter_outage_records",
    "callcenter_rebalances",
    "callcenter_consumer_lag",
    "callcenter_partitions_owned",
    "callcenter_contracts_tracked",
    "callcenter_broker_",
    "callcenter_build_info",
)


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A service of a test (Prometheus, etcd, ...) in its own session, its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM, and SIGKILL when it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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


def figures(samples: Samples) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    return {
        name: dict(values)
        for name, values in samples.items()
        if name.startswith("callcenter_") and not name.startswith(PROCESS_FAMILIES)
    }


def summed(*scrapes: Samples) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Figures of several workers together (their series must not overlap)."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for samples in scrapes:
        for name, values in figures(samples).items():
            for labels, value in values.items():
                assert labels not in out[name], f"{name}{labels} exported twice"
                out[name][labels] = value
    return dict(out)


def caught_up(*workers: WorkerProcess, partitions: int = 4, records: int | None = None) -> bool:
    """Every partition consumed to its end, and the figures unchanged over one more scrape.

    The lag is measured against the end offset of the consumer's last fetch, so just after a
    publish it can still read 0: the second scrape comes a few fetch waits later, and a test
    that knows how many ``records`` the workers must have read between them says so.
    """
    first = [scrape(w.metrics_url) for w in workers]
    if records is not None and sum(records_read(s) for s in first) < records:
        return False
    lag = sum(sum(s["callcenter_consumer_lag"].values()) for s in first)
    owned = sum(s["callcenter_partitions_owned"][()] for s in first)
    # A partition whose end offset the consumer has not fetched yet (just after a start) has no
    # lag sample at all: its absence is not a lag of 0.
    reported = sum(len(s["callcenter_consumer_lag"]) for s in first)
    if lag != 0 or owned != partitions or reported != owned:
        return False
    time.sleep(CONSUMER_FETCH_WAIT_S * 3)
    second = [scrape(w.metrics_url) for w in workers]
    return summed(*first) == summed(*second)


def records_read(samples: Samples) -> float:
    """Records a worker has processed since it started: accepted, duplicate or refused."""
    return (
        samples["callcenter_events_accepted_total"][()]
        + samples["callcenter_events_duplicate_total"][()]
        + sum(samples["callcenter_events_rejected_total"].values())
    )
