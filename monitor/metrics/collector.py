"""Prometheus export, computed at scrape time from the engines' state.

Nothing is updated per event: a scrape walks the (contract, line) series of the partitions this
worker owns. Figure labels are ``contract``, ``line`` and ``window`` only (bounded sets); call
ids and phone numbers never become labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from monitor.engine import ContractRegistry
from monitor.engine.aggregates import (
    ANSWERED,
    DISCONNECTED,
    HOLD_MS,
    INTERPRETER,
    INTERPRETER_IN_TIME,
    N_COUNTS,
    QUEUED,
    RECEIVED,
    TTY,
    TTY_IN_TIME,
    WITHIN_30S,
)
from monitor.engine.outages import DURATION_BUCKETS_S
from monitor.engine.stream import StreamEngine
from monitor.engine.totals import HOLD_BUCKETS_S
from monitor.engine.windows import (
    W_ANSWERED,
    W_DISCONNECTED,
    W_HOLD_MS,
    W_QUEUED,
    W_RECEIVED,
    W_WITHIN_30S,
    WINDOW_LABELS,
)

FIGURE_LABELS = ["contract", "line", "window"]
SERIES_LABELS = ["contract", "line"]
# The cause takes one of a fixed set of values: declared, no_answers, mass_drops, silence.
OUTAGE_LABELS = ["contract", "line", "cause"]


@dataclass
class PipelineHealth:
    """Per-worker pipeline counters (reset with the process, as Prometheus counters may)."""

    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    repartitioned: int = 0
    dead_lettered: int = 0
    batches: int = 0
    outage_records: int = 0
    rebalances: int = 0  # changes of the owned partition set


@dataclass(frozen=True, slots=True)
class _Figures:
    received: int
    queued: int
    within_30s: int
    answered: int
    hold_ms: int
    disconnected: int


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


class MonitorCollector(Collector):
    """Custom collector: every family is built from current state at scrape time."""

    def __init__(
        self,
        engines: Callable[[], Iterable[tuple[int, StreamEngine]]],
        registry: ContractRegistry,
        health: PipelineHealth,
        lag: Callable[[], dict[int, int]] | None = None,
        owns_contract: Callable[[str], bool] | None = None,
    ) -> None:
        self._engines = engines
        self._registry = registry
        self._health = health
        self._lag = lag
        self._owns = owns_contract

    def collect(self) -> Iterator[Metric]:
        engines = list(self._engines())
        yield from self._figures(engines)
        yield from self._outages(engines)
        yield from self._pipeline(engines)

    # -- outages (42 CFR 422.504(o), 423.505(p)) ------------------------------------------------

    def _outages(self, engines: list[tuple[int, StreamEngine]]) -> Iterator[Metric]:
        open_ = GaugeMetricFamily("callcenter_outage_open",
                                  "1 while an outage of the line is open (event time)",
                                  labels=SERIES_LABELS)  # fmt: skip
        required = GaugeMetricFamily("callcenter_in_required_hours",
                                     "1 while the line must answer calls, at the watermark",
                                     labels=SERIES_LABELS)  # fmt: skip
        # What MonitorWatermarkStalled joins on: a quiet partition whose lines are all outside
        # required hours must not page because another partition of the worker is inside.
        partition_required = GaugeMetricFamily(
            "callcenter_partition_in_required_hours",
            "1 while any line of the partition must answer calls, at the partition's watermark "
            "(0 with no line; absent without a watermark)",
            labels=["partition"],
        )
        start = GaugeMetricFamily("callcenter_outage_start_timestamp_seconds",
                                  "Start of the open outage", labels=OUTAGE_LABELS)  # fmt: skip
        deadline = GaugeMetricFamily("callcenter_outage_restore_deadline_timestamp_seconds",
                                     "Start of the open outage + 72 h: restore by then",
                                     labels=OUTAGE_LABELS)  # fmt: skip
        age = GaugeMetricFamily("callcenter_outage_age_seconds",
                                "How long the open outage has lasted, in event time (at the "
                                "watermark): what alerts escalate on, live or in a replay",
                                labels=OUTAGE_LABELS)  # fmt: skip
        total = CounterMetricFamily("callcenter_outages", "Outages opened, by first cause",
                                    labels=OUTAGE_LABELS)  # fmt: skip
        durations = HistogramMetricFamily("callcenter_outage_duration_seconds",
                                          "Duration of closed outages, by first cause",
                                          labels=OUTAGE_LABELS)  # fmt: skip
        for partition, engine in engines:
            tracker = engine.outages
            any_required = False
            for series in sorted(set(tracker.series) | engine.series()):
                labels = [series[0], series[1]]
                state = tracker.series.get(series)
                current = state.current if state is not None else None
                open_.add_metric(labels, 0 if current is None else 1)
                if engine.watermark_ms is not None:
                    inside = engine.registry.in_required_hours(*series, engine.watermark_ms)
                    required.add_metric(labels, 1 if inside else 0)
                    any_required = any_required or inside
                if state is None:
                    continue
                if current is not None:
                    start.add_metric([*labels, current.cause], current.start_ms / 1000.0)
                    deadline.add_metric([*labels, current.cause],
                                        current.deadline_ms(tracker.rules) / 1000.0)  # fmt: skip
                    if engine.watermark_ms is not None:
                        seconds = max(0, engine.watermark_ms - current.start_ms) / 1000.0
                        age.add_metric([*labels, current.cause], seconds)
                for cause, count in sorted(state.opened.items()):
                    total.add_metric([*labels, cause], count)
                for cause, counts in sorted(state.durations.items()):
                    buckets, cumulative = [], 0
                    for i, bound in enumerate(DURATION_BUCKETS_S):
                        cumulative += counts[i]
                        buckets.append((f"{bound:g}", cumulative))
                    cumulative += counts[len(DURATION_BUCKETS_S)]
                    buckets.append(("+Inf", cumulative))
                    durations.add_metric([*labels, cause], buckets, counts[-1] / 1000.0)
            # Same instant as callcenter_watermark_timestamp_seconds{partition}: both are
            # exported exactly when the partition has a watermark, so the alert's join always
            # finds its partner (a partition that owns no line yet is 0: nothing to answer).
            if engine.watermark_ms is not None:
                partition_required.add_metric([str(partition)], 1 if any_required else 0)
        yield from (open_, required, partition_required, start, deadline, age, total, durations)

    # -- compliance figures ----------------------------------------------------------------------

    def _figures(self, engines: list[tuple[int, StreamEngine]]) -> Iterator[Metric]:
        counters = {
            name: CounterMetricFamily(f"callcenter_{name}", help_text, labels=SERIES_LABELS)
            for name, help_text in (
                ("calls_received", "Calls received (arrival), all days"),
                ("calls_queued", "Calls that requested a live person, all days"),
                ("calls_answered", "Calls answered by a live person, all days"),
                ("calls_answered_within_30s", "Calls answered within 30 s of the IVR, all days"),
                ("calls_disconnected", "Calls unexpectedly dropped, all days"),
            )
        }
        counter_index = {"calls_received": RECEIVED, "calls_queued": QUEUED,
                         "calls_answered": ANSWERED, "calls_answered_within_30s": WITHIN_30S,
                         "calls_disconnected": DISCONNECTED}  # fmt: skip
        hold = HistogramMetricFamily(
            "callcenter_hold_duration_seconds",
            "Hold before reaching a live person (42 CFR 422.111(h)(1)), answered calls",
            labels=SERIES_LABELS,
        )
        gauges = {
            name: GaugeMetricFamily(f"callcenter_{name}", help_text, labels=FIGURE_LABELS)
            for name, help_text in (
                ("window_calls_received", "Calls received in the window"),
                ("window_calls_queued", "Queue outcomes (calls that requested a live person)"),
                ("window_answered_within_30s", "Calls answered within 30 s in the window"),
                ("window_calls_answered", "Calls answered in the window"),
                ("window_calls_disconnected", "Calls unexpectedly dropped in the window"),
                ("answered_within_30s_ratio", "Answered within 30 s / requested a live person"),
                ("avg_hold_seconds", "Average hold of answered calls, seconds"),
                ("disconnect_rate", "Disconnected / received"),
                ("window_tty_calls", "Calls requiring TTY (window=today)"),
                ("window_tty_connected_within_7m", "TTY calls connected within 7 minutes"),
                ("window_interpreter_calls", "Calls requiring an interpreter (window=today)"),
                ("window_interpreter_connected_within_8m", "Interpreters within 8 minutes"),
                ("tty_connected_ratio", "TTY calls connected within 7 minutes / TTY calls"),
                ("interpreter_connected_ratio", "Interpreter within 8 minutes / interpreter calls"),
            )
        }
        waiting = GaugeMetricFamily("callcenter_queue_calls_waiting",
                                    "Calls waiting for a live person now (at the watermark)",
                                    labels=SERIES_LABELS)  # fmt: skip
        oldest = GaugeMetricFamily("callcenter_queue_oldest_wait_seconds",
                                   "Age of the oldest wait in the queue, at the watermark",
                                   labels=SERIES_LABELS)  # fmt: skip
        info = InfoMetricFamily("callcenter_contract", "Contract registry entry",
                                labels=["contract", "parent_org", "timezone"])  # fmt: skip

        def put_window(labels: list[str], f: _Figures) -> None:
            gauges["window_calls_received"].add_metric(labels, f.received)
            gauges["window_calls_queued"].add_metric(labels, f.queued)
            gauges["window_answered_within_30s"].add_metric(labels, f.within_30s)
            gauges["window_calls_answered"].add_metric(labels, f.answered)
            gauges["window_calls_disconnected"].add_metric(labels, f.disconnected)
            for name, value in (
                ("answered_within_30s_ratio", _ratio(f.within_30s, f.queued)),
                ("avg_hold_seconds", _ratio(f.hold_ms / 1000.0, f.answered)),
                ("disconnect_rate", _ratio(f.disconnected, f.received)),
            ):
                if value is not None:  # a zero denominator has no figure, as in the report
                    gauges[name].add_metric(labels, value)

        for _partition, engine in engines:
            for contract, line in sorted(engine.series()):
                series = [contract, line]
                totals = engine.totals.get((contract, line))
                if totals is not None:
                    for name, index in counter_index.items():
                        counters[name].add_metric(series, totals[index])
                    buckets = []
                    cumulative = 0
                    for i, bound in enumerate(HOLD_BUCKETS_S):
                        cumulative += totals[N_COUNTS + i]
                        buckets.append((f"{bound:g}", cumulative))
                    buckets.append(("+Inf", totals[ANSWERED]))
                    hold.add_metric(series, buckets, totals[HOLD_MS] / 1000.0)
                for label, counts in zip(
                    WINDOW_LABELS, engine.windows.window_counts((contract, line)), strict=True
                ):
                    put_window(
                        [contract, line, label],
                        _Figures(counts[W_RECEIVED], counts[W_QUEUED], counts[W_WITHIN_30S],
                                 counts[W_ANSWERED], counts[W_HOLD_MS], counts[W_DISCONNECTED]),
                    )  # fmt: skip
                today = self._today(engine, contract, line)
                labels = [contract, line, "today"]
                put_window(
                    labels,
                    _Figures(today[RECEIVED], today[QUEUED], today[WITHIN_30S], today[ANSWERED],
                             today[HOLD_MS], today[DISCONNECTED]),
                )  # fmt: skip
                gauges["window_tty_calls"].add_metric(labels, today[TTY])
                gauges["window_tty_connected_within_7m"].add_metric(labels, today[TTY_IN_TIME])
                gauges["window_interpreter_calls"].add_metric(labels, today[INTERPRETER])
                gauges["window_interpreter_connected_within_8m"].add_metric(
                    labels, today[INTERPRETER_IN_TIME]
                )
                for name, value in (
                    ("tty_connected_ratio", _ratio(today[TTY_IN_TIME], today[TTY])),
                    ("interpreter_connected_ratio",
                     _ratio(today[INTERPRETER_IN_TIME], today[INTERPRETER])),
                ):  # fmt: skip
                    if value is not None:
                        gauges[name].add_metric(labels, value)
                count, age = engine.live_queue((contract, line))
                waiting.add_metric(series, count)
                oldest.add_metric(series, age)
        for contract_id in sorted(self._registry):
            if self._owns is None or self._owns(contract_id):
                entry = self._registry[contract_id]
                info.add_metric([contract_id, entry.parent_org or "", entry.timezone], {})
        yield from counters.values()
        yield hold
        yield from gauges.values()
        yield waiting
        yield oldest
        yield info

    def _today(self, engine: StreamEngine, contract: str, line: str) -> list[int]:
        """Counts of the contract's local date at the watermark (zeros before any call)."""
        if engine.watermark_ms is None:
            return [0] * N_COUNTS
        date = engine.local_date(contract, engine.watermark_ms)
        return engine.day_counts().get((contract, line, date)) or [0] * N_COUNTS

    # -- the pipeline itself ---------------------------------------------------------------------

    def _pipeline(self, engines: list[tuple[int, StreamEngine]]) -> Iterator[Metric]:
        health = self._health
        yield CounterMetricFamily("callcenter_events_accepted", "Valid, first-seen events",
                                  value=health.accepted)  # fmt: skip
        rejected = CounterMetricFamily("callcenter_events_rejected",
                                       "Records refused, by reason (all dead-lettered)",
                                       labels=["reason"])  # fmt: skip
        for reason, count in sorted(health.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected
        yield CounterMetricFamily("callcenter_events_late",
                                  "Events older than watermark - lateness (also in rejected)",
                                  value=health.rejected.get("too_late", 0))  # fmt: skip
        yield CounterMetricFamily("callcenter_events_duplicate", "Events with an id already seen",
                                  value=sum(e.stats.duplicates for _, e in engines))  # fmt: skip
        yield CounterMetricFamily("callcenter_events_repartitioned",
                                  "Events re-keyed by contract through the repartition topic",
                                  value=health.repartitioned)  # fmt: skip
        yield CounterMetricFamily("callcenter_batches", "Processing batches",
                                  value=health.batches)  # fmt: skip
        yield CounterMetricFamily("callcenter_rebalances",
                                  "Changes of this worker's partition assignment",
                                  value=health.rebalances)  # fmt: skip
        yield CounterMetricFamily("callcenter_outage_records",
                                  "Records sent to the outage audit topic",
                                  value=health.outage_records)  # fmt: skip
        watermark = GaugeMetricFamily("callcenter_watermark_timestamp_seconds",
                                      "Newest event time seen, per partition",
                                      labels=["partition"])  # fmt: skip
        calls = GaugeMetricFamily("callcenter_calls_tracked", "Calls held in state",
                                  labels=["partition"])  # fmt: skip
        for partition, engine in engines:
            if engine.watermark_ms is not None:
                watermark.add_metric([str(partition)], engine.watermark_ms / 1000.0)
            calls.add_metric([str(partition)], engine.calls_tracked)
        yield watermark
        yield calls
        contracts: set[str] = set()
        for _, engine in engines:
            contracts |= engine.contracts()
        yield GaugeMetricFamily("callcenter_contracts_tracked", "Contracts with state here",
                                value=len(contracts))  # fmt: skip
        yield GaugeMetricFamily("callcenter_partitions_owned", "Input partitions owned",
                                value=len(engines))  # fmt: skip
        if self._lag is not None:
            lag = GaugeMetricFamily("callcenter_consumer_lag", "Messages not yet processed",
                                    labels=["partition"])  # fmt: skip
            for partition, value in sorted(self._lag().items()):
                lag.add_metric([str(partition)], value)
            yield lag
