"""Publishing canonical events to Kafka: keyed by contract, packed into batch messages."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable

import msgspec
from aiokafka import AIOKafkaProducer

from monitor.engine.timestamps import epoch_seconds_to_ms, parse_rfc3339_ms
from monitor.pipeline.messages import MAX_BATCH_EVENTS, encode_batches
from monitor.pipeline.settings import KafkaSecurity
from monitor.simulator.generator import Record

FLUSH_EVERY_S = 0.1
# Batches are cut at least every 2 minutes of event time, for every contract at once: a worker's
# watermark is per partition, and one contract's batch running ahead of another's on the same
# partition makes the other's events trail the watermark by up to this span. The outage
# evaluation decides a minute once the watermark is past it by the grace (2 minutes by
# default), so a span within the grace never lets a minute be decided before another
# contract's events for it arrive. Keep it no larger than the workers' outage grace. (Larger
# batches matter: each Kafka message costs a worker about as much as four events.)
MAX_BATCH_SPAN_MS = 120_000


async def publish(
    records: Iterable[Record],
    *,
    bootstrap_servers: str,
    topic: str,
    security: KafkaSecurity | None = None,
    batch_events: int = MAX_BATCH_EVENTS,
    speed: float = 0.0,
) -> int:
    """Send records; ``batch_events`` 1 sends one event per message. ``speed`` > 0 paces the
    event times at that multiple of real time (0: as fast as possible). Returns records sent."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        linger_ms=10,
        max_batch_size=256 * 1024,
        acks="all",
        enable_idempotence=True,
        **(security or KafkaSecurity()).aiokafka_kwargs(),
    )
    await producer.start()
    sent = 0
    pending: dict[str, list[bytes]] = defaultdict(list)
    started_wall = time.monotonic()
    first_ts: int | None = None
    last_flush = time.monotonic()

    async def flush() -> None:
        for contract, values in pending.items():
            key = contract.encode()
            if batch_events <= 1:
                for value in values:
                    await producer.send(topic, value=value, key=key)
            else:
                for value in encode_batches(values, max_events=batch_events):
                    await producer.send(topic, value=value, key=key)
        pending.clear()

    span_start: int | None = None  # earliest event time in the pending batches
    try:
        for record in records:
            if speed > 0:
                first_ts = record.ts_ms if first_ts is None else first_ts
                due = started_wall + (record.ts_ms - first_ts) / 1000.0 / speed
                delay = due - time.monotonic()
                if delay > 0:
                    await flush()
                    await asyncio.sleep(delay)
            sent += 1
            if record.standalone:
                key = record.contract_id.encode() or None
                await producer.send(topic, value=record.value, key=key)
                continue
            if span_start is None or record.ts_ms < span_start:
                span_start = record.ts_ms
            elif record.ts_ms - span_start > MAX_BATCH_SPAN_MS:
                await flush()
                span_start = record.ts_ms
            pending[record.contract_id].append(record.value)
            if len(pending[record.contract_id]) >= batch_events or (
                time.monotonic() - last_flush > FLUSH_EVERY_S
            ):
                await flush()
                last_flush = time.monotonic()
                span_start = None
        await flush()
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def records_from_lines(lines: Iterable[bytes]) -> Iterable[Record]:
    """JSONL lines as records keyed by their contract (unparseable ones travel alone, unkeyed
    by contract: the worker dead-letters them)."""
    for raw in lines:
        if not raw.strip():
            continue
        try:
            contract = _key_fields(raw)
        except (msgspec.DecodeError, UnicodeDecodeError):
            yield Record("", 0, raw, standalone=True)
            continue
        if isinstance(contract.contract_id, str):
            yield Record(contract.contract_id, _event_time(contract.ts), raw)
        else:
            yield Record("", 0, raw, standalone=True)


class _KeyFields(msgspec.Struct):
    contract_id: object = None
    ts: object = None


_key_fields = msgspec.json.Decoder(_KeyFields).decode


def _event_time(value: object) -> int:
    """Best-effort event time for batching; 0 when absent or invalid (the worker decides)."""
    try:
        if isinstance(value, str):
            return parse_rfc3339_ms(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return epoch_seconds_to_ms(value)
    except ValueError:
        pass
    return 0
