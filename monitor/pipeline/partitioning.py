"""Partitioning by contract: every record about a contract lands on the contract's partition.

Producers key events by ``contract_id`` and Kafka's default partitioner (murmur2) places them.
The worker's state records are keyed ``<contract_id>|...`` and a partition's own records
``#<partition>|...``; the partitioner below sends them to the same partition as the contract's
events, so a contract's events, call state and aggregates always meet on one partition, across
restarts and rebalances.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache

from aiokafka.partitioner import murmur2


@lru_cache(maxsize=65_536)
def _hash(head: bytes) -> int:
    # aiokafka's murmur2 is pure Python (microseconds); contracts repeat, so cache it.
    return int(murmur2(head)) & 0x7FFFFFFF


def contract_partition(contract_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record keyed by ``contract_id``."""
    return _hash(contract_id.encode()) % partitions


def partition_of_key(key: bytes, partitions: int) -> int:
    """Partition of a state-record key (``H1234|...`` or ``#3|...``) or an event key."""
    if key[:1] == b"#":
        return int(key[1 : key.index(b"|")]) % partitions
    separator = key.find(b"|")
    return _hash(key if separator < 0 else key[:separator]) % partitions


def contract_partitioner(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """Kafka producer partitioner (Faust's ``producer_partitioner`` setting)."""
    if key is None:
        return random.choice(list(available) or list(all_partitions))
    return all_partitions[partition_of_key(key, len(all_partitions))]


def partition_record_key(partition: int, name: str) -> str:
    """Key of a record that belongs to a partition rather than to a contract."""
    return f"#{partition}|{name}"
