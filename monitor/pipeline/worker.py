"""``monitor worker``: the faust-streaming worker.

Flow per batch of Kafka messages (``take_events``, so one batch pays Faust's per-message costs
once per message, not per event; our producers pack up to 2 000 events in one message):

1. adopt the current partition assignment (hydrate engines of newly owned partitions from the
   state table, drop revoked ones);
2. validate each event; dead-letter rejections; send events whose message key is not their
   contract to the repartition topic; apply the rest to the partition's engine;
3. write the records the batch changed into the changelog-backed state table, a few per
   contract (``use_partitioner=True`` with a partitioner that routes ``<contract>|...`` keys to
   the contract's partition, which is what lets a batch write tables outside Faust's
   per-event context).

Faust is tuned only through its settings: batch reads, a larger stream buffer, producer
linger/batch size, and no per-message sensor work.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust
from faust.sensors.monitor import Monitor
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor.engine import ContractRegistry, Rejection
from monitor.engine.stream import Outcome
from monitor.logs import get_logger
from monitor.metrics.collector import MonitorCollector, PipelineHealth
from monitor.metrics.runtime import register_runtime
from monitor.pipeline import dlq
from monitor.pipeline.audit import audit_record
from monitor.pipeline.broker import BrokerWatch, ConnectionNoiseFilter, watch_broker
from monitor.pipeline.messages import decode_message, encode_batches
from monitor.pipeline.partitioning import contract_partition, contract_partitioner
from monitor.pipeline.partitions import OwnedPartitions
from monitor.pipeline.settings import WorkerSettings
from monitor.pipeline.table_store import store_url

log = get_logger("monitor.worker")

STATE_TABLE = "state"
_YIELD_EVERY_EVENTS = 10_000  # ~0.3 s of processing
# The state records are rewritten often; a restart reads the changelog back from its start, and
# the broker compacts only closed segments. Small segments that roll every minute and an eager
# cleaner keep what a restart reads close to one copy of the state.
CHANGELOG_CONFIG = {
    "segment.bytes": 8 * 1024 * 1024,
    "segment.ms": 60_000,
    "min.cleanable.dirty.ratio": 0.1,
    "delete.retention.ms": 60_000,
}


def changelog_topic(app_id: str) -> str:
    """The state table's changelog topic, named as Faust names it."""
    return f"{app_id}-{STATE_TABLE}-changelog"


def changelog_config(settings: WorkerSettings) -> dict[str, Any]:
    if settings.topic_min_insync_replicas is None:
        return CHANGELOG_CONFIG
    return {**CHANGELOG_CONFIG, "min.insync.replicas": settings.topic_min_insync_replicas}


class _GcSchedule:
    """Keep the call state out of the cyclic collector's scans.

    The state is millions of long-lived containers without reference cycles. Each full
    collection walks all of them (1-2 s at a few hundred thousand calls), which is what delays
    the figures. So after every batch the surviving objects are frozen (moved out of the
    collector's sight; reference counting still frees them), and every ``full_every_s`` they are
    unfrozen for one full collection, which reclaims any reference cycle that died meanwhile.
    """

    def __init__(self, full_every_s: float = 600.0) -> None:
        self.enabled = False
        self.full_every_s = full_every_s
        self._last_full = time.monotonic()

    def after_batch(self) -> None:
        if not self.enabled:
            return
        if time.monotonic() - self._last_full >= self.full_every_s:
            gc.unfreeze()
            gc.collect()
            self._last_full = time.monotonic()
        gc.freeze()


class _GcPauseLog:
    """Log collections long enough to delay the figures (the worker's main latency risk)."""

    def __init__(self, threshold_s: float = 0.1) -> None:
        self.threshold_s = threshold_s
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        if took >= self.threshold_s:
            log.warning("gc_pause", seconds=round(took, 3), generation=info.get("generation"),
                        collected=info.get("collected"))  # fmt: skip


class _ServiceWorker(faust.Worker):
    """Faust's worker without its terminal spinner and without a logging setup of its own.

    * No spinner. To make the spinner turn on every log record, Faust sets the root logger to
      DEBUG, so every ``logger.debug`` in Faust and aiokafka (one per message produced) builds
      a record: ~5 % of the worker's CPU. A service has no terminal to spin (and the spinner
      writes control characters to stdout at start even when it is not a terminal).
    * No logging setup (``override_logging=False``, mode's documented switch): mode's would
      clear the root logger's handlers, install its own plain-text formatter on stdout and
      redirect stdout and stderr into a logger, so Faust's, mode's and aiokafka's lines came
      out as plain text and our JSON records inside them at the wrong level. The handler of
      :func:`monitor.logs.configure_logging` stays the only one, and renders them all.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, override_logging=False, redirect_stdouts=False, **kwargs)
        self.spinner = None

    def on_setup_root_logger(self, logger: Any, level: int) -> None:
        # mode calls this hook only when it sets up logging itself (off above); should that
        # change, the spinner still stays off and the root logger is not set to DEBUG.
        self.spinner = None

    # A signal starts Faust's orderly stop (agents, consumer commit, producer and table flush),
    # which waits on the broker and, with the broker gone, for a minute or more. A deadline
    # bounds it: whatever is not committed by then is re-read after the restart and
    # de-duplicated, so abandoning it loses nothing.
    shutdown_timeout_s: float = 8.0
    _deadline: threading.Timer | None = None

    def _schedule_shutdown(self, signal: Any) -> None:
        if self._deadline is None:
            log.info("shutdown_started", signal=getattr(signal, "name", str(signal)),
                     deadline_s=self.shutdown_timeout_s)  # fmt: skip
            self._deadline = threading.Timer(self.shutdown_timeout_s, _exit_at_deadline,
                                             args=(self.shutdown_timeout_s,))  # fmt: skip
            self._deadline.daemon = True
            self._deadline.start()
        super()._schedule_shutdown(signal)

    def cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    """One structured record for an exception that ends a thread (Faust runs the consumer in
    one), instead of a traceback printed to stderr. A cancelled consumer thread is how a stop
    without a broker ends, not a fault."""
    name = args.thread.name if args.thread is not None else "?"
    if args.exc_type is asyncio.CancelledError:
        log.info("thread_cancelled", thread=name)
        return
    log.error("thread_failed", thread=name,
              exc_info=(args.exc_type, args.exc_value, args.exc_traceback))  # fmt: skip


def _exit_at_deadline(timeout_s: float) -> None:
    # Uncommitted messages are re-read and de-duplicated after the restart.
    log.warning("shutdown_deadline", after_s=timeout_s)
    sys.stderr.flush()
    os._exit(0)


class _QuietMonitor(Monitor):
    """Faust's Monitor sensor keeps statistics per message, per event and per table write; our
    own metrics come from the engine, so those hooks do nothing (Faust's ``Monitor`` setting)."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        pass

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_table_get(self, table: Any, key: Any) -> None:
        pass

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        pass

    def on_table_del(self, table: Any, key: Any) -> None:
        pass

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> Any:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        pass


class _FlowControl(FlowControlEvent):
    """Faust's flow control, without discarding the events of the current assignment.

    mode's ``FlowControlEvent.resume()`` also empties every stream queue, meant for what was
    fetched before a rebalance suspended the flow. But Faust resumes the flow more than once
    per assignment: the table recovery resumes it, and when it completes it resumes the
    stream partitions, seeks them to the committed offsets and resumes the flow again. The
    events fetched in between are already past the consumer's read offset, so clearing the
    queue then drops them for good: never processed, never re-read (a restarted worker's
    figures missed those events). So a resume while the flow is already on keeps the queues;
    a resume after a suspension clears them as before.
    """

    def resume(self) -> None:
        if self.is_active():
            return
        super().resume()


class _App(faust.App):
    """Faust's app with :class:`_FlowControl`."""

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return _FlowControl(loop=self.loop)


class _AcknowledgedTable(faust.Table[bytes, bytes]):
    """Faust's table, remembering its changelog writes until the broker has acknowledged them.

    Faust commits an offset once its producer buffer is flushed, not once the changelog writes
    of the events before it are acknowledged. A write the broker refused for a while (a newly
    created changelog partition without a leader yet) is still being retried when the offset
    past it is committed; if the broker then goes away and the worker stops, the write is lost
    and the restarted worker skips its events. So each batch waits for its own writes before
    its events are acknowledged (see ``Worker.handle_batch``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unacknowledged: list[asyncio.Future[Any]] = []

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        future = super().send_changelog(*args, **kwargs)
        self.unacknowledged.append(future)
        return future


class Worker:
    """A faust app wired to the engine. One process, any number of partitions."""

    def __init__(self, settings: WorkerSettings, registry: ContractRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.health = PipelineHealth()
        self.partitions = OwnedPartitions(settings, registry)
        self._offsets: dict[int, int] = {}
        self._gc = _GcSchedule()
        self.broker = BrokerWatch()
        self._started = time.monotonic()
        # The producer must know the changelog's partitions before the first state write: with
        # --no-create-topics Faust declares no topic, and a changelog it has just created may
        # not be in the producer's metadata yet (the write then fails inside aiokafka).
        self._changelog_known = False
        self.app = self._build_app()
        self.metrics_registry = CollectorRegistry(auto_describe=False)
        self.metrics_registry.register(
            MonitorCollector(
                self.partitions.engines_items,
                registry,
                self.health,
                lag=self.consumer_lag,
                owns_contract=self.owns_contract,
            )
        )
        register_runtime(self.metrics_registry, self.broker)

    # -- wiring -----------------------------------------------------------------------------------

    def _build_app(self) -> faust.App:
        s = self.settings
        Path(s.data_dir).mkdir(parents=True, exist_ok=True)
        app = _App(
            s.app_id,
            broker=s.broker_urls,
            broker_credentials=s.security.faust_credentials(),
            # The changelog topic Faust creates is replicated like the monitor's own topics;
            # with --no-create-topics the cluster's owners provision it (checked at start).
            topic_replication_factor=s.topic_replication_factor,
            topic_allow_declare=s.create_topics,
            store=store_url(s.store),
            datadir=s.data_dir,
            topic_partitions=s.partitions,
            topic_disable_leader=True,
            producer_partitioner=contract_partitioner,
            producer_linger_ms=10,
            producer_max_batch_size=256 * 1024,
            stream_buffer_maxsize=max(4096, s.batch_messages * 4),
            consumer_max_fetch_size=4 * 1024 * 1024,
            stream_wait_empty=False,
            broker_session_timeout=s.session_timeout / 1000,
            broker_heartbeat_interval=min(3.0, s.session_timeout / 4000),
            web_enabled=True,
            web_bind=s.web_host,
            web_port=s.web_port,
            web_host=s.web_host,
            Monitor=_QuietMonitor,
            Table=_AcknowledgedTable,
            value_serializer="raw",
            key_serializer="raw",
        )
        self.events_topic = app.topic(
            s.events_topic, partitions=s.partitions, key_serializer="raw", value_serializer="raw"
        )
        self.repartition_topic = app.topic(
            s.repartition_topic, partitions=s.partitions, key_serializer="raw",
            value_serializer="raw",
        )  # fmt: skip
        self.dlq_topic = app.topic(s.dlq_topic, key_serializer="raw", value_serializer="raw")
        self.outages_topic = app.topic(
            s.outages_topic, key_serializer="raw", value_serializer="raw"
        )
        self.table = app.Table(
            STATE_TABLE, partitions=s.partitions, use_partitioner=True,
            key_type=bytes, value_type=bytes, extra_topic_configs=changelog_config(s),
            # A restart applies the changelog in bulk rather than 1 000 records at a time.
            recovery_buffer_size=10_000,
        )  # fmt: skip
        source = app.topic(
            s.events_topic, s.repartition_topic, partitions=s.partitions,
            key_serializer="raw", value_serializer="raw",
        )  # fmt: skip

        @app.agent(source, name="process-events")
        async def process(stream: Any) -> None:
            async for events in stream.take_events(s.batch_messages, within=s.batch_seconds):
                await self.handle_batch(events)

        @app.timer(1.0)  # type: ignore[untyped-decorator]
        async def adopt_assignment() -> None:
            # Hydrate newly owned partitions even when no message arrives for them.
            tables: Any = app.tables
            if not app.rebalancing and tables.recovery.completed.is_set():
                self.partitions.sync(self.active_partitions(), self.table)
                self.health.rebalances = self.partitions.rebalances

        @app.page("/metrics")
        async def metrics(web: Any, request: Any) -> Any:
            # aiohttp refuses a charset inside content_type; the text format is UTF-8 anyway.
            return web.bytes(
                generate_latest(self.metrics_registry),
                content_type=CONTENT_TYPE_LATEST.split(";")[0],
            )

        @app.task  # type: ignore[untyped-decorator]
        async def broker_watch() -> None:
            # The root handler is in place by now: keep the clients' retry storm out of it.
            noise = ConnectionNoiseFilter(self.broker)
            for handler in logging.getLogger().handlers:
                handler.addFilter(noise)
            await watch_broker(self.broker, s.bootstrap_servers, s.security,
                               s.broker_probe_every_s)  # fmt: skip

        @app.page("/readyz")
        async def readyz(web: Any, request: Any) -> Any:
            ready, body = self.readiness()
            return web.json(body, status=200 if ready else 503)

        @app.page("/healthz")
        async def healthz(web: Any, request: Any) -> Any:
            # Liveness: answering at all means the event loop runs. Also cheap progress for
            # probes and benchmarks (/metrics renders every series).
            engines = self.partitions.engines
            return web.json({
                "status": "alive",
                "uptime_s": round(time.monotonic() - self._started, 1),
                "partitions": sorted(engines),
                "accepted": self.health.accepted,
                "duplicate": sum(e.stats.duplicates for e in engines.values()),
                "rejected": sum(self.health.rejected.values()),
                "watermark_ms": {str(p): e.watermark_ms for p, e in sorted(engines.items())},
            })  # fmt: skip

        return app

    # -- readiness --------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready: the broker reached lately, the group joined, tables recovered, every assigned
        partition's engine hydrated. The body says which condition fails."""
        app: Any = self.app
        tables: Any = app.tables
        limit_s = self.settings.ready_broker_timeout / 1000
        down_s = self.broker.unreachable_for()
        assigned = self.active_partitions() if tables.recovery.completed.is_set() else set()
        hydrated = set(self.partitions.engines)
        reasons = []
        if down_s > limit_s:
            reasons.append(f"broker unreachable for {down_s:.0f} s (limit {limit_s:g} s)")
        if not tables.recovery.completed.is_set():
            reasons.append("waiting for the first partition assignment and table recovery")
        elif app.rebalancing or app.in_recovery:
            reasons.append("rebalancing or recovering tables")
        elif not assigned <= hydrated:
            reasons.append(f"hydrating partitions {sorted(assigned - hydrated)}")
        body = {
            "ready": not reasons,
            "reasons": reasons,
            "broker": {"reachable": self.broker.reachable,
                       "unreachable_s": round(down_s, 1),
                       "last_error": None if self.broker.reachable else self.broker.last_error},
            "partitions": sorted(hydrated),
        }  # fmt: skip
        return not reasons, body

    # -- ownership --------------------------------------------------------------------------------

    def active_partitions(self) -> set[int]:
        topic = self.settings.events_topic
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    def owns_contract(self, contract_id: str) -> bool:
        return contract_partition(contract_id, self.settings.partitions) in self.partitions.engines

    def consumer_lag(self) -> dict[int, int]:
        lag: dict[int, int] = {}
        consumer: Any = self.app.consumer
        for tp in self.app.assignor.assigned_actives():
            if tp.topic != self.settings.events_topic:
                continue
            try:
                highwater = consumer.highwater(tp)
            except Exception:
                continue
            if highwater is None:
                continue
            done = self._offsets.get(tp.partition)
            if done is None:  # nothing read since start: what the group last committed
                done = consumer._committed_offset.get(tp)
            lag[tp.partition] = max(0, highwater - (done + 1 if done is not None else 0))
        return lag

    # -- processing -------------------------------------------------------------------------------

    async def handle_batch(self, events: Sequence[Any]) -> None:
        s = self.settings
        if not self._changelog_known:
            producer: Any = self.app.producer
            await producer._ensure_producer().client.add_topic(changelog_topic(s.app_id))
            self._changelog_known = True
        self.partitions.sync(self.active_partitions(), self.table)
        self.health.rebalances = self.partitions.rebalances
        self.health.batches += 1
        engines = self.partitions.engines
        dead: list[tuple[bytes, bytes]] = []
        reroute: dict[str, list[bytes]] = defaultdict(list)
        touched: set[int] = set()
        tracked = self.partitions.contracts()
        since_yield = accepted = 0
        for event in events:
            if since_yield >= _YIELD_EVERY_EVENTS:
                # Let heartbeats, fetches and scrapes run: a batch of big messages can hold
                # hundreds of thousands of events, longer than the session timeout.
                await asyncio.sleep(0)
                since_yield = 0
            message = event.message
            engine = engines.get(message.partition)
            if engine is None:
                continue  # revoked meanwhile: the new owner will read it
            from_source = message.topic == s.events_topic
            key = message.key
            if from_source:
                self._offsets[message.partition] = message.offset
            touched.add(message.partition)
            source = (message.topic, message.partition, message.offset)
            decoded = decode_message(message.value, message.headers)
            since_yield += len(decoded.items)
            # The key as text, once per message: a batch is one contract's events.
            key_text = key.decode("utf-8", "replace") if from_source and key is not None else None
            process = engine.process
            for index, item in enumerate(decoded.items):
                element = index if decoded.batch else None
                if type(item) is Rejection:
                    dead.append(self._dead(decoded.raw(index), item.reason.value, item.detail,
                                           source, element, item.field))  # fmt: skip
                    continue
                contract = item.contract_id  # type: ignore[union-attr]
                if from_source and key_text != contract:
                    reroute[contract].append(decoded.raw(index))
                    continue
                if contract not in tracked:
                    if len(tracked) >= s.max_contracts:
                        dead.append(self._dead(decoded.raw(index), dlq.CONTRACT_LIMIT,
                                               f"tracking {s.max_contracts} contracts already",
                                               source, element))  # fmt: skip
                        continue
                    tracked.add(contract)
                try:
                    outcome = process(item)  # type: ignore[arg-type]
                except Exception as exc:
                    log.exception("event_failed", contract=contract)
                    dead.append(self._dead(decoded.raw(index), dlq.PROCESSING_ERROR, repr(exc),
                                           source, element))  # fmt: skip
                    continue
                if outcome is Outcome.ACCEPTED:
                    accepted += 1
                elif outcome is Outcome.TOO_LATE:
                    detail = "older than watermark - lateness"
                    dead.append(self._dead(decoded.raw(index), dlq.TOO_LATE, detail, source,
                                           element))  # fmt: skip
                elif outcome is Outcome.FUTURE:
                    detail = "too far past the wall clock"
                    dead.append(self._dead(decoded.raw(index), dlq.FUTURE_TIMESTAMP, detail,
                                           source, element))  # fmt: skip
        self.health.accepted += accepted
        for partition in touched:
            # Audit records first: after a crash they are re-derived and re-sent with the same
            # ids, never lost between a persisted state and an unsent record.
            engine = engines.get(partition)
            if engine is not None:
                for record in engine.outages.drain_records():
                    key, value = audit_record(record, engine.outages.rules)
                    await self.outages_topic.send(key=key, value=value)
                    self.health.outage_records += 1
            self.partitions.persist(partition, self.table)
        for contract, raws in reroute.items():
            for value in encode_batches(raws):
                await self.repartition_topic.send(key=contract.encode(), value=value)
            self.health.repartitioned += len(raws)
        for key, value in dead:
            await self.dlq_topic.send(key=key, value=value)
        self.health.dead_lettered += len(dead)
        await self._state_written()
        self._gc.after_batch()
        # Give the producer a turn so table writes drain between batches.
        await asyncio.sleep(0)

    async def _state_written(self) -> None:
        """Wait until the broker has acknowledged the batch's state writes: only then may its
        events be acknowledged, and so their offsets committed."""
        table: Any = self.table
        writes: list[asyncio.Future[Any]] = table.unacknowledged
        if writes:
            table.unacknowledged = []
            await asyncio.gather(*writes)

    def _dead(
        self,
        raw: bytes,
        reason: str,
        detail: str,
        source: tuple[str, int, int],
        index: int | None,
        field: str | None = None,
    ) -> tuple[bytes, bytes]:
        self.health.rejected[reason] += 1
        topic, partition, offset = source
        value = dlq.dead_letter(raw, reason, detail, topic=topic, partition=partition,
                                offset=offset, field=field, index=index)  # fmt: skip
        return reason.encode(), value

    def run(self) -> None:
        """Run until SIGINT/SIGTERM, then stop within the settings' shutdown timeout."""
        # The state is millions of small containers without reference cycles; with the default
        # thresholds the cyclic collector rescans them constantly (~15 % of the CPU). Collect
        # the young generation every 50 000 allocations instead of 700.
        gc.set_threshold(50_000, 50, 100)
        gc.callbacks.append(_GcPauseLog())
        self._gc.enabled = True
        threading.excepthook = _log_thread_exception
        # Faust's and aiokafka's logs follow the level chosen for ours (--log-level,
        # MONITOR_LOG_LEVEL), but never below INFO: their DEBUG is one record per message. Our
        # own "monitor" loggers keep the chosen level (monitor.logs.configure_logging).
        root = logging.getLogger()
        root.setLevel(max(root.level, logging.INFO))
        level = logging.getLevelName(root.level)
        worker = _ServiceWorker(self.app, loglevel=level, quiet=True)
        worker.shutdown_timeout_s = self.settings.shutdown_timeout / 1000
        try:
            worker.execute_from_commandline()
        finally:
            worker.cancel_deadline()
            log.info("worker_stopped", accepted=self.health.accepted)
