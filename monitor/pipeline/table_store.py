"""``rocksdb://`` for the state table: Faust's RocksDB store, told which partition a key is on.

Faust's RocksDB store keeps one database per partition and, on a write, takes the partition
from the event being processed. The worker writes its table once per micro-batch, outside any
one event, and every key already says its partition (``<contract>|...`` by the contract's hash,
``#<partition>|...`` directly: :func:`partition_of_key`, the same rule the producer partitioner
applies to the changelog). So this store takes the partition from the key. It is registered
through Faust's documented extension point, the ``faust.stores`` entry-point group, under the
scheme :data:`SCHEME`; the worker maps the user's ``rocksdb://`` onto it.
"""

from __future__ import annotations

from typing import Any

from faust.stores.rocksdb import Store as RocksDBStore

from monitor.pipeline.partitioning import partition_of_key

SCHEME = "monitor-rocksdb"


class PartitionedRocksDBStore(RocksDBStore):
    """RocksDB table store whose writes go to the partition their key belongs to."""

    def __init__(self, url: Any, app: Any, table: Any, **kwargs: Any) -> None:
        # rocksdict ships wheels; the python-rocksdb binding needs a compiler and librocksdb.
        options = dict(kwargs.pop("options", None) or {})
        options.setdefault("driver", "rocksdict")
        super().__init__(url, app, table, options=options, **kwargs)

    def _set(self, key: bytes, value: bytes | None) -> None:
        partitions = self.table.partitions
        if partitions is None:
            raise ValueError("the rocksdb:// store needs a table with a partition count")
        partition = partition_of_key(key, partitions)
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)


def store_url(store: str) -> str:
    """The Faust store URL for the worker's ``--store`` setting."""
    if store.startswith("rocksdb://"):
        return SCHEME + store[len("rocksdb") :]
    return store
