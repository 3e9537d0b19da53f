"""Publishing canonical events to Kafka: keyed by contract, packed into batch messages.

One path from a file to a figure: every record is validated here with the very function
``monitor report`` applies to a line (:func:`monitor.engine.validate_record`, after the same
blank-line rule), so whichever producer it comes from (``monitor publish``, the simulator, the
adapters) the stream is sent exactly what the report would accept as events:

* a valid event goes into its contract's batch message, keyed by its contract;
* every other line travels alone, with the ``callcenter-kind: event`` header: the worker then
  validates it as the report validates a line, so it is dead-lettered as one record, with its
  original bytes and the report's reason, detail and field (a JSON array is ``not_object``,
  never a batch to unpack);
* a line whose dead-letter record could not fit in a Kafka message (a line of about 1 MB or
  more; the report rejects it as ``too_large``) is not sent: publish logs it
  (``record_not_published``) and counts it (``records_not_published``).

The messages are built by :class:`MessageBuilder`, which does no I/O (:func:`messages_for` runs
it over a whole input); :func:`publish` only adds pacing, a wall-clock flush and the producer.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from aiokafka import AIOKafkaProducer

from monitor.engine import CallEvent, Rejection, validate_record
from monitor.engine.events import MAX_LINE_BYTES
from monitor.logs import get_logger
from monitor.pipeline import dlq
from monitor.pipeline.messages import MAX_BATCH_EVENTS, ONE_LINE_HEADERS, encode_batches
from monitor.pipeline.settings import KafkaSecurity
from monitor.simulator.generator import Record

log = get_logger("monitor.publish")

FLUSH_EVERY_S = 0.1
# Batches are cut at least every 2 minutes of event time, for every contract at once: a worker's
# watermark is per partition, and one contract's batch running ahead of another's on the same
# partition makes the other's events trail the watermark by up to this span. The outage
# evaluation decides a minute once the watermark is past it by the grace (2 minutes by
# default), so a span within the grace never lets a minute be decided before another
# contract's events for it arrive. Keep it no larger than the workers' outage grace. (Larger
# batches matter: each Kafka message costs a worker about as much as four events.)
MAX_BATCH_SPAN_MS = 120_000
# A rejected line is sent only if the worker's dead-letter record for it fits in one message:
# Faust's producer refuses requests over 1 000 000 bytes (the broker's default limit is about
# 1 MiB); the rest is room for the record's key and framing.
MAX_DEAD_LETTER_BYTES = 990_000
# A valid event nested deeper than this (in fields the contract ignores) travels alone: inside
# a batch the worker's decoder would have to split it, and its recursion limit is far lower
# than the JSON parser's. Valid events are flat, so this costs nothing in practice.
MAX_BATCHED_OPENERS = 64
# Worst-case source of a dead letter, for sizing it before the worker writes it: Kafka's
# longest topic name, largest partition and offset.
_LONGEST_TOPIC = "t" * 249


class Message(NamedTuple):
    """One Kafka message to send: key, value and record headers (aiokafka's form)."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


class Unsent(NamedTuple):
    """A record too large to reach the dead-letter topic through a message."""

    position: int  # 1-based among the records given (for a file: its line number)
    rejection: Rejection
    size: int


def _blank(raw: bytes) -> bool:
    """``monitor report``'s rule (``replay``): such a line is skipped and not counted."""
    return raw[:1] != b"{" and not raw.strip(b" \t\r")


def dead_letter_size(raw: bytes, rejection: Rejection) -> int:
    """The most bytes the worker's dead-letter record for ``raw`` can take."""
    value = dlq.dead_letter(
        raw,
        rejection.reason.value,
        rejection.detail,
        topic=_LONGEST_TOPIC,
        partition=2**31 - 1,
        offset=2**63 - 1,
        field=rejection.field,
    )
    return len(value)


class MessageBuilder:
    """Turns records into Kafka messages; pure (no I/O, no clock), so tests run it as is.

    ``add`` returns the messages ready to go (a line sent alone, or every pending batch once
    one is full or the event-time span is exceeded); ``flush`` the pending batches.
    ``batch_events`` 1 sends one event per message (as a JSON object).
    """

    def __init__(self, batch_events: int = MAX_BATCH_EVENTS) -> None:
        self.batch_events = batch_events
        self.position = 0
        self.records = 0  # sent (valid or rejected), blank lines and unsent records excluded
        self.events = 0  # valid events among them
        self.rejected: Counter[str] = Counter()  # rejected lines sent alone, by reason
        self.unsent: list[Unsent] = []
        self.messages = 0
        self._pending: dict[str, list[bytes]] = defaultdict(list)
        self._span_start: int | None = None  # earliest event time in the pending batches

    def add(self, record: Record) -> list[Message]:
        self.position += 1
        raw = record.value
        if _blank(raw):
            return []
        event = validate_record(raw)
        if isinstance(event, CallEvent):
            self.records += 1
            self.events += 1
            if record.standalone or raw.count(b"[") + raw.count(b"{") > MAX_BATCHED_OPENERS:
                # Alone, after everything pending: the first of two events with one id wins,
                # so a contract's events keep their order.
                out = self.flush()
                out.append(self._message(event.contract_id.encode(), raw, ONE_LINE_HEADERS))
                return out
            return self._batch(event, raw)
        rejection = event
        # Only a line over the record limit can have a dead letter near the message limit
        # (JSON escaping at most sextuples 64 KiB).
        if len(raw) > MAX_LINE_BYTES and dead_letter_size(raw, rejection) > MAX_DEAD_LETTER_BYTES:
            self.unsent.append(Unsent(self.position, rejection,
                                      getattr(raw, "original_length", len(raw))))  # fmt: skip
            return []
        self.records += 1
        self.rejected[rejection.reason.value] += 1
        # Rejected lines never change figures, so they need not wait for the pending batches.
        return [self._message(record.contract_id.encode() or None, raw, ONE_LINE_HEADERS)]

    def _batch(self, event: CallEvent, raw: bytes) -> list[Message]:
        out: list[Message] = []
        ts = event.ts_ms
        if self._span_start is None or ts < self._span_start:
            self._span_start = ts
        elif ts - self._span_start > MAX_BATCH_SPAN_MS:
            out = self.flush()
            self._span_start = ts
        pending = self._pending[event.contract_id]
        pending.append(raw)
        if len(pending) >= self.batch_events:
            out += self.flush()
        return out

    def flush(self) -> list[Message]:
        out: list[Message] = []
        for contract, raws in self._pending.items():
            key = contract.encode()
            values = raws if self.batch_events <= 1 else encode_batches(raws, self.batch_events)
            out += [self._message(key, value) for value in values]
        self._pending.clear()
        self._span_start = None
        return out

    def _message(
        self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> Message:
        self.messages += 1
        return Message(key, value, headers)


def messages_for(records: Iterable[Record], batch_events: int = MAX_BATCH_EVENTS) -> list[Message]:
    """Every message :func:`publish` sends for ``records`` (without its wall-clock flushes,
    which only cut batches earlier)."""
    builder = MessageBuilder(batch_events)
    out: list[Message] = []
    for record in records:
        out += builder.add(record)
    return out + builder.flush()


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
    event times at that multiple of real time (0: as fast as possible). Returns records sent
    (blank lines and records too large to send are not)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        linger_ms=10,
        max_batch_size=256 * 1024,
        acks="all",
        enable_idempotence=True,
        **(security or KafkaSecurity()).aiokafka_kwargs(),
    )
    await producer.start()
    builder = MessageBuilder(batch_events)
    started_wall = time.monotonic()
    first_ts: int | None = None
    last_flush = time.monotonic()

    async def send(messages: list[Message]) -> None:
        for message in messages:
            await producer.send(topic, value=message.value, key=message.key,
                                headers=message.headers)  # fmt: skip

    try:
        for record in records:
            if speed > 0:
                first_ts = record.ts_ms if first_ts is None else first_ts
                due = started_wall + (record.ts_ms - first_ts) / 1000.0 / speed
                delay = due - time.monotonic()
                if delay > 0:
                    await send(builder.flush())
                    await asyncio.sleep(delay)
            await send(builder.add(record))
            if time.monotonic() - last_flush > FLUSH_EVERY_S:
                await send(builder.flush())
                last_flush = time.monotonic()
        await send(builder.flush())
        await producer.flush()
    finally:
        await producer.stop()
    for unsent in builder.unsent:
        rejection = unsent.rejection
        log.warning("record_not_published", record_number=unsent.position, bytes=unsent.size,
                    reason=rejection.reason.value, detail=rejection.detail)  # fmt: skip
    if builder.unsent:
        log.warning("records_not_published", count=len(builder.unsent), topic=topic,
                    why="its dead-letter record would exceed a Kafka message")  # fmt: skip
    return builder.records


def records_from_lines(lines: Iterable[bytes]) -> Iterable[Record]:
    """JSONL lines as records: every line, blank ones too (the builder skips those by
    ``monitor report``'s rule, and a record's position stays its line number). The builder
    validates each and takes its contract and event time from the event."""
    for raw in lines:
        yield Record("", 0, raw)
