"""The Prometheus collector on constructed stream state: what MonitorWatermarkStalled joins on."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from monitor.engine import CallEvent, Contract, ContractRegistry, EventType
from monitor.engine.hours import OperatingHours, Schedule
from monitor.engine.stream import StreamEngine
from monitor.metrics.collector import MonitorCollector, PipelineHealth

NIGHT = 1_767_582_000_000  # 2026-01-05T03:00:00Z: 22:00 in New York, 19:00 in Los Angeles
MORNING = 1_767_625_200_000  # 2026-01-05T15:00:00Z: 10:00 in New York, 07:00 in Los Angeles
CONTRACTS = ContractRegistry(
    [
        Contract("H1001", None, "America/New_York"),
        Contract("H2002", None, "America/New_York"),
        Contract("H3003", None, "America/Los_Angeles"),
        Contract("H4004", None, "America/New_York"),
        Contract("H5005", None, "America/New_York"),
        Contract("H6006", None, "America/Los_Angeles"),
    ],
    OperatingHours({("*", "pharmacy_help_desk"): Schedule.parse("24x7")}),
)


def engine_with(*calls: tuple[str, str, int]) -> StreamEngine:
    """A partition's engine that has seen one call per (contract, line, arrival time)."""
    engine = StreamEngine(CONTRACTS, max_future_ms=None)
    for n, (contract, line, ts) in enumerate(calls):
        engine.process(CallEvent(f"e{n}", contract, f"c{n}", EventType.CALL_RECEIVED, ts, line))
    return engine


def scrape(engines: dict[int, StreamEngine]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(MonitorCollector(engines.items, CONTRACTS, PipelineHealth()))
    return registry


def partition_required(registry: CollectorRegistry, partition: int) -> float | None:
    return registry.get_sample_value(
        "callcenter_partition_in_required_hours", {"partition": str(partition)}
    )


def test_partition_in_required_hours_per_partition_at_its_own_watermark() -> None:
    restored = StreamEngine(CONTRACTS, max_future_ms=None)
    restored.watermark_ms = MORNING  # a partition record restored before any line was seen
    engines = {
        # The case: partition 0 is quiet at night (its contract outside required
        # hours) while partition 1's contract, on the same worker, is in required hours.
        0: engine_with(("H1001", "member_services", NIGHT)),
        1: engine_with(("H2002", "member_services", MORNING)),
        # Any line inside is enough: H3003 (Los Angeles, 07:00) is outside, H4004 inside.
        2: engine_with(
            ("H3003", "member_services", MORNING), ("H4004", "member_services", MORNING)
        ),
        # Hours overrides count: a 24x7 pharmacy help desk at night.
        3: engine_with(("H5005", "pharmacy_help_desk", NIGHT), ("H5005", "member_services", NIGHT)),
        4: StreamEngine(CONTRACTS, max_future_ms=None),  # no event yet: no watermark
        5: restored,
    }
    registry = scrape(engines)
    assert [partition_required(registry, p) for p in range(6)] == [0, 1, 1, 1, None, 0]
    # Exported exactly where the watermark is, so the alert's join always finds its partner.
    for partition, engine in engines.items():
        watermark = registry.get_sample_value(
            "callcenter_watermark_timestamp_seconds", {"partition": str(partition)}
        )
        assert (watermark is None) == (engine.watermark_ms is None), partition
        assert (partition_required(registry, partition) is None) == (watermark is None), partition


def test_partition_gauge_is_the_max_of_its_lines_gauges() -> None:
    engines = {
        0: engine_with(("H1001", "member_services", NIGHT), ("H4004", "member_services", NIGHT)),
        1: engine_with(
            ("H6006", "member_services", MORNING), ("H2002", "member_services", MORNING)
        ),
    }
    registry = scrape(engines)
    for partition, engine in engines.items():
        lines = [
            registry.get_sample_value(
                "callcenter_in_required_hours", {"contract": contract, "line": line}
            )
            for contract, line in sorted(engine.series())
        ]
        values = [v for v in lines if v is not None]
        assert len(values) == len(lines), partition
        assert partition_required(registry, partition) == max(values), partition
    # Partition 1: H6006 (Los Angeles) is outside at 07:00, H2002 inside at 10:00 New York.
    assert partition_required(registry, 0) == 0
    assert partition_required(registry, 1) == 1


def test_partition_gauge_follows_the_watermark() -> None:
    engine = engine_with(("H1001", "member_services", NIGHT))
    engines = {7: engine}
    assert partition_required(scrape(engines), 7) == 0
    engine.process(CallEvent("e-morning", "H1001", "c-morning", EventType.CALL_RECEIVED, MORNING,
                             "member_services"))  # fmt: skip
    assert partition_required(scrape(engines), 7) == 1
