"""Build and broker families on constructed state, and the standard process/Python families."""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from monitor import __version__
from monitor.metrics.runtime import register_runtime
from monitor.pipeline.broker import BrokerWatch
from monitor.version import component_versions, version_line


def samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_build_info_and_broker_state() -> None:
    now = [500.0]
    watch = BrokerWatch(clock=lambda: now[0])
    registry = CollectorRegistry()
    register_runtime(registry, watch)
    versions = component_versions()
    got = samples(registry)
    assert got["callcenter_build_info"] == [(versions, 1.0)]
    assert versions["version"] == __version__
    assert versions["python"] == platform.python_version()
    assert got["callcenter_broker_reachable"] == [({}, 1.0)]
    assert got["callcenter_broker_unreachable_seconds"] == [({}, 0.0)]

    watch.record(None)
    now[0] += 2.0
    with capture_logs():
        watch.record("refused")
    now[0] += 10.0
    got = samples(registry)
    assert got["callcenter_broker_reachable"] == [({}, 0.0)]
    assert got["callcenter_broker_unreachable_seconds"] == [({}, 12.0)]
    assert got["callcenter_broker_losses_total"] == [({}, 1.0)]
    assert "process_cpu_seconds_total" in got and "process_resident_memory_bytes" in got
    assert "python_info" in got and "python_gc_collections_total" in got


def test_version_line_names_every_component() -> None:
    versions = component_versions()
    assert version_line() == (
        f"monitor {__version__} (python {versions['python']}, faust {versions['faust']}, "
        f"aiokafka {versions['aiokafka']})"
    )
    assert versions["faust"].startswith("0.") and versions["aiokafka"].startswith("0.")
