"""Issue 11 §6 against the real broker: a hostile file through ``monitor publish`` and a real
worker gives ``monitor report``'s figures and rejections, and the dead-letter topic holds one
record per rejected line, with its original bytes and the report's reason, detail and field."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.engine import ContractRegistry
from tests.integration.services import Kafka, WorkerProcess, run_monitor, scrape, wait_for
from tests.integration.test_worker_day import (
    assert_counters_equal_report,
    assert_today_equals_report,
    read_topic,
)
from tests.pipeline.test_one_path import BLANK, CONTRACTS, HOSTILE, ODD_VALID, FileBuilder

pytestmark = pytest.mark.integration

PARTITIONS = 4
CALL_SCRIPT = ["call_received", "queued", "answered", "ended"]


def hostile_file() -> tuple[bytes, int]:
    """Three contracts' calls over two hours, every hostile and odd kind of line among them,
    blank lines, CRLF, repeats; and one line too large for any Kafka message. Returns the file
    and the line number of that line."""
    builder = FileBuilder()
    hostile = sorted(HOSTILE.items())
    odd = sorted(ODD_VALID.items())
    for call in range(60):
        for n, contract in enumerate(CONTRACTS):
            line = "pharmacy_help_desk" if call % 5 == 0 else None
            for step, scripted in enumerate(CALL_SCRIPT):
                kind = "abandoned" if scripted == "answered" and call % 7 == 3 else scripted
                offset = call * 110_000 + n * 7_000 + step * (5_000 + 3_000 * (call % 20))
                record = builder.event(contract, call, kind, offset, ts_form=step, line=line)
                if step == 1 and call < len(odd):
                    builder.add_valid(record, odd[call][1](record))
                else:
                    builder.add_valid(record)
        if call < len(hostile):
            builder.lines.append(hostile[call][1](builder.event("S5678", 99, "queued", 0)))
        if call % 9 == 0:
            builder.lines.append(BLANK[call % len(BLANK)])
        if call % 11 == 5:
            builder.lines += [builder.lines[-2], builder.lines[-7]]  # repeats of earlier lines
    builder.lines.append(b'{"padding": "' + b"x" * 1_500_000 + b'"}')
    unsent_line = len(builder.lines)
    builder.lines.append(b'["an", "array"]')
    return builder.render([False, False, True]), unsent_line


def raw_of(record: dict[str, Any]) -> bytes:
    if "raw" in record:
        return str(record["raw"]).encode()
    return base64.b64decode(record["raw_base64"])


def test_a_hostile_file_through_kafka_gives_the_reports_figures_and_rejections(
    kafka: Kafka, tmp_path: Path
) -> None:
    content, unsent_line = hostile_file()
    events = tmp_path / "hostile.jsonl"
    events.write_bytes(content)
    report_path, rejects_path = tmp_path / "report.json", tmp_path / "rejects.jsonl"
    run_monitor("report", "--input", str(events), "--output", str(report_path),
                "--rejects", str(rejects_path))  # fmt: skip
    report = json.loads(report_path.read_text())
    rejects = [orjson.loads(line) for line in rejects_path.read_bytes().splitlines()]
    assert len(rejects) == report["rejected_events"]
    (unsent,) = [r for r in rejects if r["line_number"] == unsent_line]
    assert unsent["reason"] == "too_large"
    published = [r for r in rejects if r["line_number"] != unsent_line]
    by_reason = Counter(r["reason"] for r in published)
    assert set(by_reason) == {"not_object", "invalid_json", "invalid_utf8", "missing_field",
                              "invalid_field", "too_large"}  # fmt: skip
    non_blank = sum(1 for line in content.splitlines() if line.strip(b" \t\r"))
    accepted = non_blank - report["rejected_events"] - report["duplicate_events"]
    assert report["duplicate_events"] > 0 and accepted > 700

    topic, dlq_topic = "it-one-path.events", "it-one-path.dlq"
    worker = WorkerProcess(kafka, app_id="it-one-path", events_topic=topic, dlq_topic=dlq_topic,
                           data_dir=tmp_path / "worker", partitions=PARTITIONS)  # fmt: skip
    worker.start()
    try:
        worker.wait_ready(partitions=PARTITIONS)
        done = run_monitor("publish", "--input", str(events), "--bootstrap-servers",
                           kafka.bootstrap, "--events-topic", topic,
                           "--partitions", str(PARTITIONS))  # fmt: skip
        # The line no message can carry is reported by publish itself, by line number.
        warnings = [
            json.loads(line)
            for line in done.stderr.decode().splitlines()
            if "record_not_published" in line
        ]
        assert len(warnings) == 1
        assert warnings[0]["record_number"] == unsent_line and warnings[0]["reason"] == "too_large"
        assert warnings[0]["detail"] == unsent["detail"]

        def all_seen() -> bool:
            m = scrape(worker.metrics_url)
            seen = (
                m["callcenter_events_accepted_total"][()]
                + m["callcenter_events_duplicate_total"][()]
                + sum(m["callcenter_events_rejected_total"].values())
            )
            return seen >= non_blank - 1

        wait_for(all_seen, 120, "the worker to process every published line")
        metrics = scrape(worker.metrics_url)
    finally:
        worker.stop()

    rejected = {
        dict(k)["reason"]: v for k, v in metrics["callcenter_events_rejected_total"].items()
    }
    assert rejected == by_reason
    assert metrics["callcenter_events_accepted_total"][()] == accepted
    assert metrics["callcenter_events_duplicate_total"][()] == report["duplicate_events"]
    assert metrics["callcenter_events_repartitioned_total"][()] == 0  # all keyed by contract

    assert_counters_equal_report(metrics, report)
    assert len({(r["contract_id"], r["line"]) for r in report["rows"]}) == 2 * len(CONTRACTS)
    checked = assert_today_equals_report(metrics, report, ContractRegistry(), PARTITIONS)
    assert checked == 2 * len(CONTRACTS)

    # The dead-letter topic: one record per published rejected line, with its original bytes,
    # the report's reason, detail and field, and no batch index (never unpacked).
    # Asking for one more than expected waits out the timeout: nothing else may be there.
    values = asyncio.run(read_topic(kafka.bootstrap, dlq_topic, len(published) + 1, timeout=10))
    dead = [orjson.loads(v) for v in values]
    assert len(dead) == len(published)
    assert all(d["source"]["topic"] == topic and d["source"]["index"] is None for d in dead)

    def line_of(record: dict[str, Any]) -> tuple[bytes, str, str, str | None]:
        return raw_of(record), record["reason"], record["detail"], record["field"]

    assert sorted(map(line_of, dead)) == sorted(map(line_of, published))
