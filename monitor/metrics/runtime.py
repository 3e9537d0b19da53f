"""The worker's own health on /metrics: the build it runs and whether it reaches the broker.

The standard ``process_*`` and ``python_*`` families come from prometheus-client's own
collectors; :func:`register_runtime` puts them and these on a worker's registry.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from monitor.pipeline.broker import BrokerWatch
from monitor.version import component_versions


class RuntimeCollector(Collector):
    """``callcenter_build_info`` and the broker watch's state, read at scrape time."""

    def __init__(self, watch: BrokerWatch) -> None:
        self._watch = watch
        self._versions = component_versions()

    def collect(self) -> Iterator[Metric]:
        labels = sorted(self._versions)
        info = GaugeMetricFamily("callcenter_build_info",
                                 "Versions this worker runs: always 1, the versions are labels",
                                 labels=labels)  # fmt: skip
        info.add_metric([self._versions[name] for name in labels], 1)
        yield info
        watch = self._watch
        yield GaugeMetricFamily("callcenter_broker_reachable",
                                "1 when the last probe reached a Kafka bootstrap server",
                                value=1 if watch.reachable else 0)  # fmt: skip
        yield GaugeMetricFamily("callcenter_broker_unreachable_seconds",
                                "Seconds since the broker was lost (0 while reachable)",
                                value=watch.unreachable_for())  # fmt: skip
        yield CounterMetricFamily("callcenter_broker_losses",
                                  "Times the broker became unreachable",
                                  value=watch.losses)  # fmt: skip


def register_runtime(registry: CollectorRegistry, watch: BrokerWatch) -> None:
    """Add the process, Python, build and broker families to a worker's registry."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(RuntimeCollector(watch))
