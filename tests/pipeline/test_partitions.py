"""The state table behind a worker's partitions: what one worker writes, another rebuilds."""

from __future__ import annotations

import random

from monitor.engine import CallEvent, ContractRegistry, EventType
from monitor.pipeline.partitioning import contract_partition, partition_of_key
from monitor.pipeline.partitions import OwnedPartitions
from monitor.pipeline.settings import WorkerSettings

T0 = 1_767_621_600_000  # 2026-01-05T14:00:00Z
MIN = 60_000
PARTITIONS = 4
CONTRACTS = [f"H{1000 + i}" for i in range(12)]


def events(rng: random.Random, n_calls: int) -> list[CallEvent]:
    out = []
    for c in range(n_calls):
        contract = rng.choice(CONTRACTS)
        start = T0 + rng.randrange(8 * 60 * MIN)
        kinds = [EventType.CALL_RECEIVED, EventType.QUEUED, EventType.ANSWERED, EventType.ENDED]
        for i, kind in enumerate(kinds[: rng.randint(1, 4)]):
            out.append(CallEvent(f"e{c}-{i}", contract, f"c{c}", kind, start + i * 20_000,
                                 "member_services"))  # fmt: skip
    out.sort(key=lambda e: e.ts_ms)
    return out


def test_records_route_to_their_partition_and_rebuild_every_engine() -> None:
    """Every record lands in the partition of its contract (or, for the engine's own records,
    the partition that wrote it), and a second worker adopting the partitions from the table
    exports exactly what the first one did."""
    settings = WorkerSettings(partitions=PARTITIONS)
    registry = ContractRegistry()
    first = OwnedPartitions(settings, registry)
    table: dict[bytes, bytes] = {}
    first.sync(set(range(PARTITIONS)), table)
    for n, event in enumerate(events(random.Random(3), 400)):
        partition = contract_partition(event.contract_id, PARTITIONS)
        first.engines[partition].process(event)
        if n % 25 == 0:
            first.persist(partition, table)
    for partition in range(PARTITIONS):
        first.persist(partition, table)

    engine_records = [key for key in table if key.startswith(b"#")]
    assert engine_records, "the engines' own records (watermark, calls) are in the table"
    for key in table:
        if not key.startswith(b"#"):
            contract = key.split(b"|")[0].decode()
            assert partition_of_key(key, PARTITIONS) == contract_partition(contract, PARTITIONS)

    second = OwnedPartitions(settings, registry)
    second.sync(set(range(PARTITIONS)), table)
    for partition in range(PARTITIONS):
        before, after = first.engines[partition], second.engines[partition]
        assert after.rows() == before.rows()
        assert after.totals == before.totals
        assert after.watermark_ms == before.watermark_ms
        assert after.calls_tracked == before.calls_tracked
    assert sum(e.calls_tracked for e in second.engines.values()) > 0
