"""Hostile input never stops a worker; every refused record reaches the DLQ with its reason."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.services import Kafka, WorkerProcess, scrape, wait_for
from tests.integration.test_worker_day import read_topic

pytestmark = pytest.mark.integration

TS = "2026-02-02T15:00:00.000Z"


def event(n: int, contract: str = "H1111", kind: str = "call_received", ts: object = TS) -> dict:
    return {"event_id": f"h{n}", "call_id": f"c{n}", "contract_id": contract, "type": kind,
            "ts": ts}  # fmt: skip


async def send_all(
    bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes | None]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=2 * 1024 * 1024)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


def test_hostile_input_is_dead_lettered_and_the_worker_keeps_going(
    kafka: Kafka, tmp_path: Path
) -> None:
    topic, dlq_topic = "it-hostile.events", "it-hostile.dlq"
    worker = WorkerProcess(kafka, app_id="it-hostile", events_topic=topic, dlq_topic=dlq_topic,
                           data_dir=tmp_path / "w", extra=["--max-contracts", "5"])  # fmt: skip
    worker.start()
    try:
        worker.wait_ready(partitions=4)
        key = b"H1111"
        messages: list[tuple[bytes | None, bytes | None]] = [
            (key, orjson.dumps(event(1))),  # valid: sets the watermark
            (key, b"\x00\xff\xfe garbage \x80"),  # invalid_utf8
            (key, b'{"event_id": '),  # invalid_json
            (key, b"x" * 70_000),  # too_large
            (key, b"[" + b",".join([orjson.dumps(event(9))] * 2_001) + b"]"),  # batch too large
            (key, None),  # no value
            (key, b"42"),  # not_object
            (key, orjson.dumps({**event(2), "ts": True})),  # invalid_field ts
            (key, orjson.dumps({**event(3), "call_id": 7})),  # invalid_field call_id
            (key, orjson.dumps({**event(4), "contract_id": "Q0000"})),  # invalid_field contract
            (key, orjson.dumps(event(5, ts="2099-01-01T00:00:00Z"))),  # future_timestamp
            (key, orjson.dumps(event(6, ts="2026-02-02T08:00:00Z"))),  # too_late (7 h earlier)
            (key, orjson.dumps(event(7, ts=1_000))),  # ancient epoch: invalid_field
            (key, b"[" + orjson.dumps(event(8)) + b', 17, {"bad": 1}]'),  # 1 ok + 2 rejected
            (b"not-a-contract", orjson.dumps(event(10, contract="S2222"))),  # repartitioned
            (None, orjson.dumps(event(11, contract="S2222"))),  # unkeyed: repartitioned
        ]
        asyncio.run(send_all(kafka.bootstrap, topic, messages))
        wait_for(
            lambda: scrape(worker.metrics_url)["callcenter_events_accepted_total"][()] >= 4,
            60,
            "the valid events of the first phase",
        )
        # Then a flood of new contracts: the cap is 5, H1111 and S2222 hold two places.
        flood = [
            (f"H9{n:03d}".encode(), orjson.dumps(event(100 + n, contract=f"H9{n:03d}")))
            for n in range(20)
        ]
        asyncio.run(send_all(kafka.bootstrap, topic, flood))

        def settled() -> bool:
            m = scrape(worker.metrics_url)
            return (
                m["callcenter_events_accepted_total"][()] >= 7
                and sum(m["callcenter_events_rejected_total"].values()) >= 31
            )

        wait_for(settled, 90, "the worker to work through the hostile input")
        metrics = scrape(worker.metrics_url)
        rejected = {
            dict(k)["reason"]: v for k, v in metrics["callcenter_events_rejected_total"].items()
        }
        assert rejected == {
            "invalid_utf8": 1,
            "invalid_json": 2,  # the truncated object and the value-less message
            "too_large": 2,
            "not_object": 2,  # 42 and the 17 inside the batch
            "invalid_field": 4,  # ts=true, call_id=7, contract Q0000, ts=1000 (out of range)
            "missing_field": 1,  # {"bad": 1} inside the batch
            "future_timestamp": 1,
            "too_late": 1,
            "contract_limit": 17,  # 20 new contracts, 3 places left under the cap of 5
        }
        assert (
            metrics["callcenter_events_accepted_total"][()] == 7
        )  # h1 h8 h10 h11 + 3 of the flood
        assert metrics["callcenter_events_repartitioned_total"][()] == 2
        assert metrics["callcenter_contracts_tracked"][()] == 5
        received = metrics["callcenter_calls_received_total"]
        assert received[(("contract", "H1111"), ("line", "member_services"))] == 2
        assert received[(("contract", "S2222"), ("line", "member_services"))] == 2
        assert worker.process is not None and worker.process.poll() is None

        dead = asyncio.run(read_topic(kafka.bootstrap, dlq_topic, 31))
        reasons = Counter(orjson.loads(v)["reason"] for v in dead)
        assert reasons == Counter(rejected)
        sample = next(orjson.loads(v) for v in dead if orjson.loads(v)["reason"] == "invalid_utf8")
        assert sample["source"]["topic"] == topic and "raw_base64" in sample
    finally:
        worker.stop()
