"""An 80-hour typhoon outage through the real broker: the worker's clock survives kill -9 at
50 hours, the audit topic holds each record once, and the stream agrees with the replay."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.services import Kafka, WorkerProcess, run_monitor, scrape, wait_for
from tests.integration.test_worker_day import read_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "deploy" / "contracts.csv"
STRUCK, HEALTHY = "H1001", "H6348"  # New York; Los Angeles
MIN = 60_000
HOUR = 3_600_000
T0 = int(datetime(2026, 1, 5, 13, 0, tzinfo=UTC).timestamp() * 1000)  # Monday 8:00 in New York
RESTORE = T0 + 80 * HOUR


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def typhoon_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    def add(contract: str, call: str, kind: str, ts: int) -> None:
        events.append({"event_id": f"{call}-{kind}", "contract_id": contract, "call_id": call,
                       "type": kind, "ts": iso(ts)})  # fmt: skip

    for n, start in enumerate(range(T0, RESTORE, 2 * MIN)):  # nobody answers for 80 hours
        add(STRUCK, f"t{n}", "call_received", start)
        add(STRUCK, f"t{n}", "queued", start + 10_000)
        add(STRUCK, f"t{n}", "abandoned", start + 310_000)
    for n, start in enumerate(range(RESTORE, RESTORE + 40 * MIN, 2 * MIN)):  # staff is back
        add(STRUCK, f"r{n}", "call_received", start)
        add(STRUCK, f"r{n}", "queued", start + 10_000)
        add(STRUCK, f"r{n}", "answered", start + 40_000)
        add(STRUCK, f"r{n}", "ended", start + 220_000)
    for n, start in enumerate(range(T0, RESTORE + 60 * MIN, 5 * MIN)):
        add(HEALTHY, f"h{n}", "call_received", start)
        add(HEALTHY, f"h{n}", "queued", start + 10_000)
        add(HEALTHY, f"h{n}", "answered", start + 30_000)
        add(HEALTHY, f"h{n}", "ended", start + 200_000)
    events.sort(key=lambda e: (e["ts"], e["event_id"]))
    return events


def write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def health(worker: WorkerProcess) -> dict[str, Any]:
    url = worker.metrics_url.replace("/metrics", "/healthz")
    with urllib.request.urlopen(url, timeout=5) as response:
        document: dict[str, Any] = json.loads(response.read())
    return document


def watermark_reached(worker: WorkerProcess, ts_ms: int) -> bool:
    marks = [mark for mark in health(worker)["watermark_ms"].values() if mark is not None]
    return bool(marks) and max(marks) >= ts_ms


def sample(samples: dict[str, Any], name: str, **labels: str) -> float | None:
    for key, value in samples.get(name, {}).items():
        if dict(key).items() >= labels.items():
            return float(value)
    return None


def test_typhoon_outage_survives_kill_9_and_agrees_with_the_replay(
    kafka: Kafka, tmp_path: Path
) -> None:
    events = typhoon_events()
    full = write(tmp_path / "typhoon.jsonl", events)
    cut = next(i for i, e in enumerate(events) if e["ts"] >= iso(T0 + 50 * HOUR))
    first = write(tmp_path / "first.jsonl", events[:cut])
    rest = write(tmp_path / "rest.jsonl", events[cut:])
    report = json.loads(run_monitor("report", "--input", str(full), "--contracts",
                                    str(CONTRACTS)).stdout)  # fmt: skip
    (expected,) = report["outages"]
    assert (expected["contract_id"], expected["cause"], expected["breached_72h"]) == (
        STRUCK, "no_answers", True)  # fmt: skip

    topic, audit = "it-outage.events", "it-outage.outages"
    publish = ["publish", "--bootstrap-servers", kafka.bootstrap, "--events-topic", topic,
               "--partitions", "4", "--batch-events", "200"]  # fmt: skip
    common: dict[str, Any] = {
        "app_id": "it-outage", "events_topic": topic, "dlq_topic": "it-outage.dlq",
        "data_dir": tmp_path / "w", "contracts": CONTRACTS, "extra": ["--outages-topic", audit],
    }  # fmt: skip
    run_monitor(*publish, "--input", str(first))
    worker = WorkerProcess(kafka, **common).start()
    try:
        worker.wait_ready(partitions=4)
        wait_for(lambda: watermark_reached(worker, T0 + 50 * HOUR - MIN), 120,
                 "the first 50 hours to be processed")  # fmt: skip
        samples = scrape(worker.metrics_url)
        assert sample(samples, "callcenter_outage_open", contract=STRUCK) == 1
        assert sample(samples, "callcenter_outage_open", contract=HEALTHY) == 0
        assert sample(samples, "callcenter_outage_start_timestamp_seconds", contract=STRUCK,
                      cause="no_answers") == T0 / 1000  # fmt: skip
        assert sample(samples, "callcenter_outage_restore_deadline_timestamp_seconds",
                      contract=STRUCK) == T0 / 1000 + 72 * 3600  # fmt: skip
        time.sleep(3)  # let the last batch's table writes reach the changelog
        worker.kill()  # 50 hours into the outage
        restarted = WorkerProcess(kafka, **common).start()
        try:
            restarted.wait_ready(partitions=4, timeout=120)
            run_monitor(*publish, "--input", str(rest))

            def closed() -> bool:
                now = scrape(restarted.metrics_url)
                return sample(now, "callcenter_outage_open", contract=STRUCK) == 0

            wait_for(closed, 180, "the outage to close after the restore")
            samples = scrape(restarted.metrics_url)
        finally:
            restarted.stop()
    finally:
        worker.stop()

    duration = (datetime.fromisoformat(expected["end"]) -
                datetime.fromisoformat(expected["start"])).total_seconds()  # fmt: skip
    assert duration == expected["duration_seconds"] == 80 * 3600 + 9 * 60
    labels = {"contract": STRUCK, "cause": "no_answers"}
    assert sample(samples, "callcenter_outages_total", **labels) == 1
    assert sample(samples, "callcenter_outage_duration_seconds_sum", **labels) == duration
    assert sample(samples, "callcenter_outage_duration_seconds_count", **labels) == 1
    assert sample(samples, "callcenter_outages_total", contract=HEALTHY) is None

    values = asyncio.run(read_topic(kafka.bootstrap, audit, expected=6, timeout=60))
    records: dict[str, dict[str, Any]] = {}
    for value in values:
        record = json.loads(value)
        if record["id"] in records:  # a copy re-sent after the crash: the same record
            assert records[record["id"]] == record
        records[record["id"]] = record
    start = expected["start"]
    assert {(r["kind"], r["hours"], r["at"]) for r in records.values()} == {
        ("opened", None, start),
        ("escalated", 24, iso(T0 + 24 * HOUR)),
        ("escalated", 48, iso(T0 + 48 * HOUR)),
        ("escalated", 60, iso(T0 + 60 * HOUR)),
        ("breached", 72, iso(T0 + 72 * HOUR)),
        ("closed", None, expected["end"]),
    }
    assert {r["contract_id"] for r in records.values()} == {STRUCK}
    assert all(r["start"] == start for r in records.values())
