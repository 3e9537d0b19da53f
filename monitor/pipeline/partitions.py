"""The stream engines of the partitions a worker owns, and the state records behind them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping

from monitor.engine import ContractRegistry
from monitor.engine.stream import StreamEngine
from monitor.logs import get_logger
from monitor.pipeline.partitioning import partition_of_key, partition_record_key
from monitor.pipeline.settings import WorkerSettings

log = get_logger("monitor.partitions")

StateTable = MutableMapping[bytes, bytes]


class OwnedPartitions:
    """One :class:`StreamEngine` per partition this worker is active for.

    Engines are built from the state table (restored by Faust from its changelog) when a
    partition is assigned and dropped when it is revoked, so after any rebalance exactly one
    worker holds, and exports, a given contract.
    """

    def __init__(
        self,
        settings: WorkerSettings,
        registry: ContractRegistry,
        engine_factory: Callable[[], StreamEngine] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.engines: dict[int, StreamEngine] = {}
        self._factory = engine_factory or self._default_engine
        self.rejected: Counter[str] = Counter()
        self.repartitioned = 0
        self.rebalances = 0

    def _default_engine(self) -> StreamEngine:
        s = self.settings
        return StreamEngine(
            self.registry,
            lateness_ms=s.lateness,
            dedup_horizon_ms=s.dedup_horizon,
            max_future_ms=s.max_future,
            outage_rules=s.outage_rules,
        )

    def sync(self, active: set[int], table: StateTable) -> None:
        """Adopt the active partition set: hydrate new partitions, drop revoked ones."""
        if active == set(self.engines):
            return
        self.rebalances += 1
        for partition in set(self.engines) - active:
            del self.engines[partition]
        new = active - set(self.engines)
        if not new:
            return
        records: dict[int, list[tuple[str, bytes]]] = {p: [] for p in new}
        count = self.settings.partitions
        for key, value in table.items():
            partition = partition_of_key(key, count)
            if partition in records:
                text = key.decode()
                if text.startswith("#"):  # "#<partition>|name" is the engine's "#name"
                    text = "#" + text.split("|", 1)[1]
                records[partition].append((text, value))
        for partition in sorted(new):
            engine = self._factory()
            engine.load_records(records[partition])
            self.engines[partition] = engine
            log.info(
                "partition_hydrated",
                partition=partition,
                records=len(records[partition]),
                calls=engine.calls_tracked,
                watermark_ms=engine.watermark_ms,
            )

    def persist(self, partition: int, table: StateTable) -> int:
        """Write what the partition's engine changed into the state table."""
        engine = self.engines.get(partition)
        if engine is None:
            return 0
        changes = engine.drain_changes()
        for key, value in changes.items():
            # The engine's own records ("#name") are the partition's, not a contract's.
            name = partition_record_key(partition, key[1:]) if key.startswith("#") else key
            raw_key = name.encode()
            if value is None:
                if raw_key in table:
                    del table[raw_key]
            else:
                table[raw_key] = value
        return len(changes)

    def contracts(self) -> set[str]:
        out: set[str] = set()
        for engine in self.engines.values():
            out |= engine.contracts()
        return out

    def engines_items(self) -> Iterable[tuple[int, StreamEngine]]:
        return sorted(self.engines.items())
