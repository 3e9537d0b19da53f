"""The ``rocksdb://`` table store writes each record into its partition's database."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from monitor.pipeline.partitioning import contract_partition
from monitor.pipeline.table_store import PartitionedRocksDBStore, store_url

PARTITIONS = 4


@pytest.fixture
def store(tmp_path: Path) -> PartitionedRocksDBStore:
    app = faust.App("store-test", store=store_url("rocksdb://"), datadir=str(tmp_path))
    table = app.Table("state", partitions=PARTITIONS, use_partitioner=True, key_type=bytes,
                      value_type=bytes)  # fmt: skip
    data = table.data
    assert isinstance(data, PartitionedRocksDBStore)
    return data


def test_store_url_maps_only_rocksdb() -> None:
    assert store_url("rocksdb://") == "monitor-rocksdb://"
    assert store_url("memory://") == "memory://"


def test_writes_outside_any_event_land_in_the_key_partition(
    store: PartitionedRocksDBStore,
) -> None:
    contracts = [f"H{1000 + i}" for i in range(12)]
    for contract in contracts:
        store[f"{contract}|x".encode()] = contract.encode()
    store[b"#2|g|7"] = b"generation"
    expected: dict[int, set[bytes]] = {p: set() for p in range(PARTITIONS)}
    for contract in contracts:
        expected[contract_partition(contract, PARTITIONS)].add(f"{contract}|x".encode())
    expected[2].add(b"#2|g|7")
    for partition, keys in expected.items():
        if not keys:
            continue
        database = store._db_for_partition(partition)
        assert {key for key, _ in database.items()} == keys, partition
    assert store[b"H1003|x"] == b"H1003"
    del store[b"H1003|x"]
    assert b"H1003|x" not in store
