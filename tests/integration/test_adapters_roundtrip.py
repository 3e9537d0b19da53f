"""Adapters through the real broker: adapter -> Kafka -> worker -> /metrics equals
``monitor report`` on the adapters' file output, and ingesting twice changes nothing."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from tests.integration.services import Kafka, WorkerProcess, run_monitor, scrape, wait_for
from tests.integration.test_worker_day import COUNTER_FIELDS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "adapters" / "fixtures"
CONTRACTS = ROOT / "deploy" / "contracts.csv"
SOURCES = [
    ("asterisk", FIXTURES / "queue_log", FIXTURES / "queues.csv"),
    ("connect-ctr", FIXTURES / "connect_ctr.json", FIXTURES / "connect_queues.csv"),
    ("connect-events", FIXTURES / "connect_events.jsonl", FIXTURES / "connect_queues.csv"),
]


def test_adapters_to_worker_equal_report_and_are_idempotent(kafka: Kafka, tmp_path: Path) -> None:
    files = []
    for kind, source, queues in SOURCES:
        out = tmp_path / f"{kind}.jsonl"
        run_monitor("ingest", kind, "--input", str(source), "--queues", str(queues),
                    "--output", str(out))  # fmt: skip
        files.append(out)
    events = sum(len(f.read_bytes().splitlines()) for f in files)
    args = [arg for f in files for arg in ("--input", str(f))]
    report = json.loads(run_monitor("report", *args, "--contracts", str(CONTRACTS)).stdout)
    expected: dict[str, dict[tuple[str, str], float]] = defaultdict(lambda: defaultdict(float))
    for row in report["rows"]:
        for name, field in COUNTER_FIELDS.items():
            expected[name][(row["contract_id"], row["line"])] += row[field]

    topic = "it-adapters.events"
    worker = WorkerProcess(kafka, app_id="it-adapters", events_topic=topic,
                           dlq_topic="it-adapters.dlq", data_dir=tmp_path / "worker",
                           contracts=CONTRACTS).start()  # fmt: skip
    try:
        worker.wait_ready(partitions=4)
        for _round in range(2):  # the second round must change nothing
            for kind, source, queues in SOURCES:
                run_monitor("ingest", kind, "--input", str(source), "--queues", str(queues),
                            "--sink", "kafka", "--bootstrap-servers", kafka.bootstrap,
                            "--events-topic", topic, "--partitions", "4")  # fmt: skip

        def all_seen() -> bool:
            m = scrape(worker.metrics_url)
            seen = m["callcenter_events_accepted_total"][()]
            return seen + m["callcenter_events_duplicate_total"][()] >= 2 * events

        wait_for(all_seen, 120, "the worker to read both rounds")
        metrics = scrape(worker.metrics_url)
    finally:
        worker.stop()
    assert metrics["callcenter_events_accepted_total"][()] == events
    assert metrics["callcenter_events_duplicate_total"][()] == events
    for name in COUNTER_FIELDS:
        actual = {
            (dict(labels)["contract"], dict(labels)["line"]): value
            for labels, value in metrics[name].items()
        }
        assert actual == dict(expected[name]), name
    assert expected["callcenter_calls_received_total"][("H1001", "member_services")] == 5
