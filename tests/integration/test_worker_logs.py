"""A real worker's log is JSON a log pipeline can read, line by line (issue 11, section 4).

The worker runs with ``MONITOR_LOG_FORMAT=json`` (``WorkerProcess`` sets it) and its stdout and
stderr both go to one file: through start-up, a few events (valid and refused) and a SIGTERM,
every line of that file must be one JSON object with a known level, Faust's, mode's and
aiokafka's records included, and no call id of the events published may appear in it.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.services import Kafka, WorkerProcess, scrape, wait_for
from tests.integration.test_worker_hostile import send_all

pytestmark = pytest.mark.integration

LEVELS = {"debug", "info", "warning", "error", "critical"}
TS = "2026-02-02T15:00:00.000Z"
# Distinctive call ids: a substring search of the whole log cannot match anything else.
CALL_IDS = [f"callid-logcheck-{n:04d}-7f3a" for n in range(6)]


def call_event(n: int, kind: str, contract: str = "H1111") -> bytes:
    return json.dumps({"event_id": f"log-{n}-{kind}", "call_id": CALL_IDS[n],
                       "contract_id": contract, "type": kind, "ts": TS}).encode()  # fmt: skip


def test_every_line_of_a_worker_log_is_one_json_object(kafka: Kafka, tmp_path: Path) -> None:
    topic = "it-logs.events"
    worker = WorkerProcess(kafka, app_id="it-logs", events_topic=topic, dlq_topic="it-logs.dlq",
                           data_dir=tmp_path / "w")  # fmt: skip
    worker.start()
    try:
        worker.wait_ready(partitions=4)
        messages: list[tuple[bytes | None, bytes | None]] = [
            (b"H1111", call_event(0, "call_received")),
            (b"H1111", call_event(0, "queued")),
            (b"H1111", call_event(1, "call_received")),
            # Another contract's key: goes through the repartition topic.
            (b"H1111", call_event(2, "call_received", contract="S2222")),
            # Refused: a bad contract id, and a record cut short; both hold a call id.
            (b"H1111", call_event(3, "call_received", contract="ZZ999")),
            (b"H1111", call_event(4, "queued")[:-5]),
            # Unkeyed.
            (None, call_event(5, "call_received")),
        ]
        asyncio.run(send_all(kafka.bootstrap, topic, messages))

        def processed() -> bool:
            metrics = scrape(worker.metrics_url)
            rejected = sum(metrics["callcenter_events_rejected_total"].values())
            return metrics["callcenter_events_accepted_total"][()] >= 5 and rejected >= 2

        wait_for(processed, 90, "the events to be processed or refused")
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
        worker.process.wait(timeout=60)
    finally:
        worker.stop()

    assert worker.log_path is not None
    text = worker.log_path.read_text(encoding="utf-8")
    records: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"line {number} of the worker log is not JSON: {line!r}")
        assert isinstance(record, dict), line
        assert record.get("level") in LEVELS, line
        assert isinstance(record.get("logger"), str) and record["logger"], line
        assert isinstance(record.get("event"), str), line
        assert record.get("timestamp", "").endswith("Z"), line
        records.append(record)
    assert text.endswith("\n")
    # The libraries' records come through the same formatter, not as plain text beside ours.
    loggers = {r["logger"] for r in records}
    assert any(name.startswith(("faust", "mode")) for name in loggers), loggers
    assert any(name.startswith("monitor.") for name in loggers), loggers
    events = [r["event"] for r in records]
    assert "worker_starting" in events and "shutdown_started" in events
    for call_id in CALL_IDS:
        assert call_id not in text
