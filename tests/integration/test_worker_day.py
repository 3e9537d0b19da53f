"""A simulated day through the real broker and a real worker equals ``monitor report``."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from monitor.engine import ContractRegistry
from monitor.pipeline.partitioning import contract_partition
from tests.integration.services import Kafka, WorkerProcess, run_monitor, scrape, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "deploy" / "contracts.csv"
COUNTER_FIELDS = {
    "callcenter_calls_received_total": "calls_received",
    "callcenter_calls_queued_total": "calls_queued",
    "callcenter_calls_answered_total": "calls_answered",
    "callcenter_calls_answered_within_30s_total": "answered_within_30s",
    "callcenter_calls_disconnected_total": "calls_disconnected",
}
TODAY_FIELDS = {
    "callcenter_window_calls_received": "calls_received",
    "callcenter_window_calls_queued": "calls_queued",
    "callcenter_window_calls_answered": "calls_answered",
    "callcenter_window_answered_within_30s": "answered_within_30s",
    "callcenter_window_calls_disconnected": "calls_disconnected",
    "callcenter_window_tty_calls": "tty_calls",
    "callcenter_window_interpreter_calls": "interpreter_calls",
    "callcenter_answered_within_30s_ratio": "answered_within_30s_ratio",
    "callcenter_avg_hold_seconds": "avg_hold_seconds",
    "callcenter_disconnect_rate": "disconnect_rate",
}


async def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(values) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                values.extend(r.value for r in records if r.value is not None)
    finally:
        await consumer.stop()
    return values


def test_simulated_day_through_kafka_equals_report(kafka: Kafka, tmp_path: Path) -> None:
    events = tmp_path / "day.jsonl"
    run_monitor(
        "simulate", "--contracts", str(CONTRACTS), "--scenario", "typhoon", "--hours", "24",
        "--calls-per-hour", "40", "--start", "2026-01-05T06:00:00+00:00", "--seed", "11",
        "--duplicate-rate", "0.02", "--reorder-rate", "0.02", "--malformed-rate", "0.005",
        "--output", str(events),
    )  # fmt: skip
    report_path = tmp_path / "report.json"
    run_monitor("report", "--input", str(events), "--contracts", str(CONTRACTS),
                "--output", str(report_path))  # fmt: skip
    report = json.loads(report_path.read_text())
    records = sum(1 for line in events.read_bytes().splitlines() if line.strip())
    assert report["rejected_events"] > 0 and report["duplicate_events"] > 0

    worker = WorkerProcess(kafka, app_id="it-day", events_topic="it-day.events",
                           dlq_topic="it-day.dlq", data_dir=tmp_path / "worker",
                           contracts=CONTRACTS, partitions=4)  # fmt: skip
    worker.start()
    try:
        worker.wait_ready(partitions=4)
        run_monitor("publish", "--input", str(events), "--bootstrap-servers", kafka.bootstrap,
                    "--events-topic", "it-day.events", "--partitions", "4")  # fmt: skip

        def all_seen() -> bool:
            m = scrape(worker.metrics_url)
            seen = (
                m["callcenter_events_accepted_total"][()]
                + m["callcenter_events_duplicate_total"][()]
                + sum(m["callcenter_events_rejected_total"].values())
            )
            return seen >= records

        wait_for(all_seen, 120, "the worker to process every record")
        metrics = scrape(worker.metrics_url)
    finally:
        worker.stop()

    assert_counters_equal_report(metrics, report)
    assert (
        assert_today_equals_report(metrics, report, ContractRegistry.from_csv(CONTRACTS), 4) >= 10
    )

    # The DLQ holds every rejected record, with its reason.
    dead = asyncio.run(read_topic(kafka.bootstrap, "it-day.dlq", report["rejected_events"]))
    assert len(dead) == report["rejected_events"]
    reasons = {orjson.loads(v)["reason"] for v in dead}
    assert reasons <= {"invalid_utf8", "invalid_json", "not_object", "missing_field",
                       "invalid_field"}  # fmt: skip
    assert all("raw" in orjson.loads(v) or "raw_base64" in orjson.loads(v) for v in dead)


def assert_counters_equal_report(metrics: Any, report: dict[str, Any]) -> None:
    """Every (contract, line) counter equals the report's rows summed over their dates."""
    expected: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in report["rows"]:
        for field in COUNTER_FIELDS.values():
            expected[(row["contract_id"], row["line"])][field] += row[field]
    for name, field in COUNTER_FIELDS.items():
        actual = {
            (dict(labels)["contract"], dict(labels)["line"]): value
            for labels, value in metrics[name].items()
        }
        assert actual == {k: v[field] for k, v in expected.items()}, name


def assert_today_equals_report(
    metrics: Any, report: dict[str, Any], registry: ContractRegistry, partitions: int
) -> int:
    """Today's gauges equal the report's row of each contract's local date at its partition's
    watermark; returns how many (contract, line) series were compared."""
    watermarks = metrics["callcenter_watermark_timestamp_seconds"]
    rows = {(r["contract_id"], r["line"], r["date"]): r for r in report["rows"]}
    checked = 0
    for labels in metrics["callcenter_window_calls_received"]:
        label = dict(labels)
        if label["window"] != "today":
            continue
        contract, line = label["contract"], label["line"]
        watermark = watermarks[(("partition", str(contract_partition(contract, partitions))),)]
        date = datetime.fromtimestamp(watermark, tz=UTC).astimezone(registry.zone(contract)).date()
        row = rows.get((contract, line, date.isoformat()))
        if row is None:
            continue
        for name, field in TODAY_FIELDS.items():
            got = metrics[name].get(labels)
            if row[field] is None:
                assert got is None, (name, labels)
            else:
                assert got == pytest.approx(row[field], rel=1e-12), (name, labels)
        checked += 1
    return checked
