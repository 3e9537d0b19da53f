"""`monitor dlq inspect|export|replay` against a real broker and a real worker: the counts are
the worker's, the export is the refused bytes, a fixed replay is accepted exactly once."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from monitor.pipeline.partitioning import contract_partition
from tests.integration.services import (
    MONITOR,
    ROOT,
    Kafka,
    WorkerProcess,
    free_port,
    scrape,
    wait_for,
)

pytestmark = pytest.mark.integration

EVENTS, DLQ, EMPTY = "it-dlqtools.events", "it-dlqtools.dlq", "it-dlqtools.empty"
PARTITIONS = 4
CONTRACT = "H4321"


def line(n: int, **fields: Any) -> bytes:
    event = {"event_id": f"d{n}", "call_id": f"c{n}", "contract_id": CONTRACT,
             "type": "call_received", "ts": f"2026-02-02T15:00:{n:02d}.000Z"}  # fmt: skip
    event.update(fields)
    return orjson.dumps({k: v for k, v in event.items() if v is not None})


GOOD = [line(n) for n in range(1, 4)]
# The lines a file could hold that the worker refuses, with the reason it gives.
BAD: list[tuple[bytes, str]] = [
    (b'{"event_id": "d10", ', "invalid_json"),
    (b"42", "not_object"),
    (line(11, ts=None), "missing_field"),  # no ts
    (line(12, ts="2026-02-02T15:00:12"), "invalid_field"),  # no UTC offset
    (line(13, type="rang"), "invalid_field"),
    (b'\xff\xfe{"event_id": "d14"}', "invalid_utf8"),  # travels as raw_base64
]


def fix(raw: bytes) -> bytes:
    """What an operator does by hand to the three lines that can be saved."""
    event = orjson.loads(raw)
    event.setdefault("ts", "2026-02-02T15:00:11.000Z")
    if not event["ts"].endswith("Z"):
        event["ts"] += "Z"
    if event["type"] == "rang":
        event["type"] = "call_received"
    return orjson.dumps(event)


def monitor(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*MONITOR, *args], cwd=ROOT, capture_output=True, timeout=timeout,
                          check=False)  # fmt: skip


def dlq_cmd(kafka: Kafka, action: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return monitor("dlq", action, "--bootstrap-servers", kafka.bootstrap, *args)


def inspect_json(kafka: Kafka, *args: str) -> dict[str, Any]:
    done = dlq_cmd(kafka, "inspect", "--dlq-topic", DLQ, "--format", "json", *args)
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


async def send_lines(bootstrap: str, lines: list[bytes]) -> None:
    """One message per line, keyed by the contract, as `monitor publish` sends a line it
    cannot batch; sent directly so the test does not depend on how the producer treats
    invalid lines."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in lines:
            await producer.send_and_wait(EVENTS, value=value, key=CONTRACT.encode())
    finally:
        await producer.stop()


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()


async def topic_names(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


def test_inspect_export_fix_and_replay_dead_letters(kafka: Kafka, tmp_path: Path) -> None:
    worker = WorkerProcess(kafka, app_id="it-dlqtools", events_topic=EVENTS, dlq_topic=DLQ,
                           data_dir=tmp_path / "w", partitions=PARTITIONS)  # fmt: skip
    worker.start()
    try:
        worker.wait_ready(partitions=PARTITIONS)
        # Valid and refused lines interleaved, as in a damaged file.
        sent = [GOOD[0], *(raw for raw, _ in BAD[:3]), GOOD[1], *(raw for raw, _ in BAD[3:])]
        asyncio.run(send_lines(kafka.bootstrap, [*sent, GOOD[2]]))

        def counts() -> tuple[float, float]:
            m = scrape(worker.metrics_url)
            return (m["callcenter_events_accepted_total"][()],
                    sum(m["callcenter_events_rejected_total"].values()))  # fmt: skip

        wait_for(lambda: counts() == (3, 6), 60, "the worker to take the file")
        # The dead letters are sent after the batch's state: wait until all six are readable.
        wait_for(lambda: inspect_json(kafka)["total"] == 6, 60, "six dead letters")

        # -- inspect: the worker's refusals, counted by reason and by source.
        report = inspect_json(kafka)
        assert report["by_reason"] == {"invalid_field": 2, "invalid_json": 1,
                                       "invalid_utf8": 1, "missing_field": 1,
                                       "not_object": 1}  # fmt: skip
        partition = contract_partition(CONTRACT, PARTITIONS)
        assert report["by_source"] == [{"topic": EVENTS, "partition": partition, "count": 6}]
        assert report["topic"] == DLQ and report["since"] is None
        assert report["oldest"] <= report["newest"]
        assert sum(r["end"] - r["start"] for r in report["offsets"]) == 6
        samples = report["samples"]
        assert {reason: len(s) for reason, s in samples.items()} == report["by_reason"]
        (binary,) = samples["invalid_utf8"]
        assert binary["raw"] == '\\xff\\xfe{"event_id": "d14"}'
        assert binary["raw_bytes"] == len(BAD[5][0])
        assert binary["source"]["topic"] == EVENTS and binary["source"]["index"] is None
        assert sorted(s["field"] for s in samples["invalid_field"]) == ["ts", "type"]
        # The source offsets are the input messages': the bad lines were messages 1-3 and 5-7.
        offsets = sorted(s["source"]["offset"] for r in samples.values() for s in r)
        assert offsets == [1, 2, 3, 5, 6, 7]
        assert inspect_json(kafka, "--since", "1h")["total"] == 6
        assert inspect_json(kafka, "--since", "2099-01-01T00:00:00Z")["total"] == 0
        text = dlq_cmd(kafka, "inspect", "--dlq-topic", DLQ, "--samples", "1")
        assert text.returncode == 0
        assert text.stdout.decode().splitlines()[0] == f"6 dead letters in {DLQ}"
        later = dlq_cmd(kafka, "inspect", "--dlq-topic", DLQ, "--since", "2099-01-01")
        assert later.returncode == 0
        assert later.stdout == b"no dead letters since 2099-01-01T00:00:00.000Z\n"

        # -- export: exactly the refused bytes, one per line.
        exported = tmp_path / "dead.jsonl"
        done = dlq_cmd(kafka, "export", "--dlq-topic", DLQ, "--output", str(exported))
        assert done.returncode == 0, done.stderr.decode()
        summary = {"read": 6, "selected": 6, "written": 6, "skipped": {}, "output": str(exported)}
        assert orjson.loads(done.stderr.splitlines()[-1]) == summary
        assert exported.read_bytes().endswith(b"\n")
        assert sorted(exported.read_bytes().splitlines()) == sorted(raw for raw, _ in BAD)
        # The refused file is what `monitor report` refuses, for the same reasons.
        rejects = tmp_path / "rejects.jsonl"
        done = monitor("report", "--input", str(exported), "--rejects", str(rejects),
                       "--output", str(tmp_path / "report.json"))  # fmt: skip
        assert Counter(orjson.loads(r)["reason"] for r in rejects.read_bytes().splitlines()) == (
            Counter(reason for _, reason in BAD)
        )

        fixable = tmp_path / "fixable.jsonl"
        done = dlq_cmd(kafka, "export", "--dlq-topic", DLQ, "--output", str(fixable),
                       "--reason", "missing_field", "--reason", "invalid_field")  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        saveable = [raw for raw, reason in BAD if reason in ("missing_field", "invalid_field")]
        assert sorted(fixable.read_bytes().splitlines()) == sorted(saveable)

        full = tmp_path / "full.jsonl"
        done = dlq_cmd(kafka, "export", "--dlq-topic", DLQ, "--output", str(full),
                       "--with-reasons")  # fmt: skip
        assert done.returncode == 0
        records = [orjson.loads(r) for r in full.read_bytes().splitlines()]
        assert Counter(r["reason"] for r in records) == Counter(reason for _, reason in BAD)
        assert all(r["source"]["topic"] == EVENTS for r in records)

        nothing = tmp_path / "nothing.jsonl"
        done = dlq_cmd(kafka, "export", "--dlq-topic", DLQ, "--output", str(nothing),
                       "--reason", "too_late")  # fmt: skip
        assert done.returncode == 3
        assert b"nothing exported (6 dead letters read, 0 selected)" in done.stderr

        # -- replay the fixed lines: accepted once each, nothing refused again.
        fixed = tmp_path / "fixed.jsonl"
        fixed.write_bytes(b"".join(fix(raw) + b"\n" for raw in fixable.read_bytes().splitlines()))
        done = dlq_cmd(kafka, "replay", "--events-topic", EVENTS, "--input", str(fixed))
        assert done.returncode == 0, done.stderr.decode()
        assert orjson.loads(done.stderr.splitlines()[-1]) == {"sent": 3, "topic": EVENTS}
        wait_for(lambda: counts() == (6, 6), 60, "the fixed records to be accepted")
        received = scrape(worker.metrics_url)["callcenter_calls_received_total"]
        assert received[(("contract", CONTRACT), ("line", "member_services"))] == 6
        # Replayed again, they are duplicates: the accepted count stays.
        done = dlq_cmd(kafka, "replay", "--events-topic", EVENTS, "--input", str(fixed))
        assert done.returncode == 0
        wait_for(
            lambda: scrape(worker.metrics_url)["callcenter_events_duplicate_total"][()] == 3,
            60,
            "the second replay to count as duplicates",
        )
        assert counts() == (6, 6)
        assert inspect_json(kafka)["total"] == 6
    finally:
        worker.stop()


def test_empty_and_missing_topics(kafka: Kafka, tmp_path: Path) -> None:
    asyncio.run(create_topic(kafka.bootstrap, EMPTY))
    done = dlq_cmd(kafka, "inspect", "--dlq-topic", EMPTY)
    assert (done.returncode, done.stdout) == (0, b"no dead letters\n")
    done = dlq_cmd(kafka, "inspect", "--dlq-topic", EMPTY, "--format", "json")
    assert done.returncode == 0 and orjson.loads(done.stdout)["total"] == 0
    out = tmp_path / "empty.jsonl"
    done = dlq_cmd(kafka, "export", "--dlq-topic", EMPTY, "--output", str(out))
    assert done.returncode == 3 and out.read_bytes() == b""

    missing = "it-dlqtools.no-such-topic"
    cases = [("inspect", ["--dlq-topic", missing]),
             ("export", ["--dlq-topic", missing, "--output", str(out)]),
             ("replay", ["--events-topic", missing, "--input", str(out)])]  # fmt: skip
    for action, extra in cases:
        done = dlq_cmd(kafka, action, *extra)
        assert done.returncode == 1, done.stderr.decode()
        assert done.stderr.decode().splitlines()[-1] == (
            f"monitor dlq {action}: error: topic {missing} does not exist on {kafka.bootstrap}"
        )
    # Asking did not create it (the broker creates topics on first use otherwise).
    assert missing not in asyncio.run(topic_names(kafka.bootstrap))


def test_an_unreachable_broker_exits_1_within_seconds(tmp_path: Path) -> None:
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_bytes(GOOD[0] + b"\n")
    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    for action, extra in (("inspect", []), ("export", ["--output", str(tmp_path / "x.jsonl")]),
                          ("replay", ["--input", str(fixed)])):  # fmt: skip
        started = time.monotonic()
        done = monitor("dlq", action, "--bootstrap-servers", bootstrap, "--timeout", "3s", *extra)
        assert time.monotonic() - started < 15
        assert done.returncode == 1
        assert (
            done.stderr.decode()
            .splitlines()[-1]
            .startswith(f"monitor dlq {action}: error: cannot reach Kafka: {bootstrap}: ")
        )
        assert b"Traceback" not in done.stderr
    assert not (tmp_path / "x.jsonl").exists()
