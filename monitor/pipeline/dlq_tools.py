"""Operator tools for the dead-letter topic: see what was refused, get the original records
back for fixing by hand, and send the fixed ones through the normal publishing path.

The pure part (reading dead-letter records, counting them, the export lines, ``--since``) is
tested on constructed records. The Kafka part reads the topic with a group-less consumer, so
an inspection never commits offsets or joins a group the worker could notice, from the start
(or from the first record at or after ``--since``) up to the end offsets taken when it starts:
records dead-lettered meanwhile are left for the next run, and every run ends.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import heapq
import io
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.engine.timestamps import format_ms, parse_rfc3339_ms
from monitor.engine.validation import RejectReason
from monitor.jsonl import iter_lines, open_input
from monitor.logs import get_logger
from monitor.pipeline import dlq
from monitor.pipeline.broker import (
    BrokerRefusedError,
    BrokerUnreachableError,
    describe_error,
    probe,
)
from monitor.pipeline.producer import publish, records_from_lines
from monitor.pipeline.settings import KafkaSecurity, parse_duration_ms

log = get_logger("monitor.dlq")

DEFAULT_DLQ_TOPIC = "callcenter.dlq"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_SAMPLES = 3
# Samples show the start of the record: enough to recognise it, short enough for a table.
SAMPLE_RAW_CHARS = 160
# A record the tools cannot read as a dead letter (a foreign producer, a tombstone): counted
# under this reason so the totals still add up to what the topic holds.
UNREADABLE = "unreadable"
REASONS = (
    *(reason.value for reason in RejectReason),
    dlq.TOO_LATE,
    dlq.FUTURE_TIMESTAMP,
    dlq.CONTRACT_LIMIT,
    dlq.PROCESSING_ERROR,
    UNREADABLE,
)
# Why ``export`` left a record out of a plain (original-bytes) export.
SKIP_NO_RAW = "no_raw"  # the dead letter holds no original bytes
SKIP_NOT_ONE_LINE = "not_one_line"  # a newline inside (or a final CR): not one JSONL line
SKIP_BLANK = "blank"  # empty or white space: ``monitor report`` would skip the line

_POLL_MS = 500


class DlqError(Exception):
    """The broker or the topic is not there, or stopped answering: exit status 1."""


# -- dead-letter records ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """Where a refused record came from: an input message, and its element in a batch."""

    topic: str | None
    partition: int | None
    offset: int | None
    index: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "index": self.index,
        }

    def label(self) -> str:
        """``callcenter.events/3@1234#17``: topic/partition@offset, #element of a batch."""
        text = f"{self.topic or '?'}/{'?' if self.partition is None else self.partition}"
        text += "" if self.offset is None else f"@{self.offset}"
        return text + ("" if self.index is None else f"#{self.index}")


NO_SOURCE = Source(None, None, None, None)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of the dead-letter topic, with its place and time in that topic."""

    reason: str
    detail: str
    field: str | None
    source: Source
    raw: bytes | None  # the refused bytes, exactly; None when the record holds none
    timestamp_ms: int  # the dead-letter record's Kafka timestamp
    partition: int  # of the dead-letter topic
    offset: int
    value: bytes  # the dead-letter record as stored


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def parse_dead_letter(
    value: bytes | None, *, timestamp_ms: int, partition: int, offset: int
) -> DeadLetter:
    """Read a dead-letter record (docs/streaming.md); anything else is an ``unreadable`` one."""

    def unreadable(detail: str) -> DeadLetter:
        return DeadLetter(
            UNREADABLE, detail, None, NO_SOURCE, None, timestamp_ms, partition, offset, value or b""
        )

    if value is None:
        return unreadable("record has no value")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return unreadable("not JSON")
    if not isinstance(record, dict) or not isinstance(record.get("reason"), str):
        return unreadable("not a dead-letter record (no reason)")
    raw: bytes | None = None
    if isinstance(record.get("raw"), str):
        # The worker decoded these bytes as strict UTF-8, so encoding gives them back exactly.
        raw = record["raw"].encode("utf-8")
    elif isinstance(record.get("raw_base64"), str):
        try:
            raw = base64.b64decode(record["raw_base64"], validate=True)
        except (binascii.Error, ValueError):
            return unreadable("raw_base64 is not base64")
    src = record.get("source")
    source = NO_SOURCE
    if isinstance(src, dict):
        source = Source(
            _str_or_none(src.get("topic")),
            _int_or_none(src.get("partition")),
            _int_or_none(src.get("offset")),
            _int_or_none(src.get("index")),
        )
    return DeadLetter(
        reason=record["reason"],
        detail=_str_or_none(record.get("detail")) or "",
        field=_str_or_none(record.get("field")),
        source=source,
        raw=raw,
        timestamp_ms=timestamp_ms,
        partition=partition,
        offset=offset,
        value=value,
    )


def parse_since(text: str, now_ms: int) -> int:
    """``--since``: a duration back from now (``90s``, ``30m``, ``6h``, ``1d``; a bare number
    is seconds), an RFC 3339 time with an offset, or a date (midnight UTC); epoch ms."""
    text = text.strip()
    try:
        return max(0, now_ms - parse_duration_ms(text))
    except ValueError:
        pass
    try:
        if len(text) == 10:  # YYYY-MM-DD
            return parse_rfc3339_ms(text + "T00:00:00Z")
        return parse_rfc3339_ms(text)
    except ValueError as exc:
        raise ValueError(
            f"--since {text!r}: neither a duration (90s, 30m, 6h, 1d) nor an RFC 3339 time "
            f"(2026-01-05T14:00:00Z) or date ({exc})"
        ) from None


def printable(raw: bytes, limit: int = SAMPLE_RAW_CHARS) -> str:
    """A refused record as safe one-line text: bytes that are not UTF-8 as ``\\xNN``, control
    characters escaped (a record's bytes are whatever a producer sent, terminal escape
    sequences included), cut at ``limit`` characters with an ellipsis."""
    text = raw.decode("utf-8", "backslashreplace")
    if len(text) > limit:
        text = text[:limit] + "…"
    return "".join(
        char if char.isprintable() or char == " " else char.encode("unicode_escape").decode()
        for char in text
    )


# -- inspect ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """What a run read of one partition of the dead-letter topic: offsets [start, end)."""

    partition: int
    start: int
    end: int


@dataclass
class Summary:
    """Counts by reason and by source, the time span, and the newest samples of each reason."""

    topic: str
    since_ms: int | None = None
    samples_per_reason: int = DEFAULT_SAMPLES
    total: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_source: Counter[tuple[str | None, int | None]] = field(default_factory=Counter)
    oldest_ms: int | None = None
    newest_ms: int | None = None
    ranges: list[PartitionRange] = field(default_factory=list)
    # Per reason, a min-heap of the newest samples: (time, partition, offset, letter).
    _newest: dict[str, list[tuple[int, int, int, DeadLetter]]] = field(default_factory=dict)

    def add(self, letter: DeadLetter) -> None:
        self.total += 1
        self.by_reason[letter.reason] += 1
        self.by_source[(letter.source.topic, letter.source.partition)] += 1
        ts = letter.timestamp_ms
        self.oldest_ms = ts if self.oldest_ms is None else min(self.oldest_ms, ts)
        self.newest_ms = ts if self.newest_ms is None else max(self.newest_ms, ts)
        if self.samples_per_reason <= 0:
            return
        heap = self._newest.setdefault(letter.reason, [])
        item = (ts, letter.partition, letter.offset, letter)
        if len(heap) < self.samples_per_reason:
            heapq.heappush(heap, item)
        elif item[:3] > heap[0][:3]:
            heapq.heapreplace(heap, item)

    def reasons(self) -> list[tuple[str, int]]:
        """Most frequent first, then by name."""
        return sorted(self.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))

    def sources(self) -> list[tuple[str | None, int | None, int]]:
        """By topic, then partition; records without a source last."""
        return [
            (topic, part, n)
            for (topic, part), n in sorted(
                self.by_source.items(),
                key=lambda kv: (kv[0][0] is None, kv[0][0] or "", kv[0][1] is None, kv[0][1] or 0),
            )
        ]

    def samples(self, reason: str) -> list[DeadLetter]:
        """The newest samples of a reason, oldest of them first."""
        return [item[3] for item in sorted(self._newest.get(reason, []), key=lambda i: i[:3])]

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "since": None if self.since_ms is None else format_ms(self.since_ms),
            "total": self.total,
            "oldest": None if self.oldest_ms is None else format_ms(self.oldest_ms),
            "newest": None if self.newest_ms is None else format_ms(self.newest_ms),
            "by_reason": dict(self.reasons()),
            "by_source": [
                {"topic": topic, "partition": part, "count": n} for topic, part, n in self.sources()
            ],
            "samples": {
                reason: [_sample_json(s) for s in self.samples(reason)]
                for reason, _ in self.reasons()
            },
            "offsets": [
                {"partition": r.partition, "start": r.start, "end": r.end} for r in self.ranges
            ],
        }


def _sample_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "timestamp": format_ms(letter.timestamp_ms),
        "reason": letter.reason,
        "detail": letter.detail,
        "field": letter.field,
        "source": letter.source.as_json(),
        "raw": None if letter.raw is None else printable(letter.raw),
        "raw_bytes": None if letter.raw is None else len(letter.raw),
        "dlq_partition": letter.partition,
        "dlq_offset": letter.offset,
    }


def render_json(summary: Summary) -> bytes:
    return orjson.dumps(summary.as_json(), option=orjson.OPT_INDENT_2) + b"\n"


def render_text(summary: Summary, out: IO[str], *, width: int | None = None) -> None:
    """Readable tables (rich): colours only on a terminal. Every cell that comes from a record
    is a ``Text``, never markup, so a record's own brackets are printed as they are."""
    console = Console(file=out, width=width, highlight=False, soft_wrap=False)
    if summary.total == 0:
        since = "" if summary.since_ms is None else f" since {format_ms(summary.since_ms)}"
        console.print(Text(f"no dead letters{since}"))
        return
    assert summary.oldest_ms is not None and summary.newest_ms is not None
    since = "" if summary.since_ms is None else f" since {format_ms(summary.since_ms)}"
    console.print(
        Text(
            f"{summary.total} dead letters in {summary.topic}{since}\n"
            f"oldest {format_ms(summary.oldest_ms)}, newest {format_ms(summary.newest_ms)}"
        )
    )
    reasons = Table(title="by reason", title_justify="left")
    reasons.add_column("reason")
    reasons.add_column("count", justify="right")
    reasons.add_column("share", justify="right")
    for reason, n in summary.reasons():
        reasons.add_row(Text(reason), str(n), f"{100 * n / summary.total:.1f} %")
    console.print(reasons)
    sources = Table(title="by source", title_justify="left")
    sources.add_column("topic")
    sources.add_column("partition", justify="right")
    sources.add_column("count", justify="right")
    for topic, part, n in summary.sources():
        sources.add_row(Text(topic or "?"), "?" if part is None else str(part), str(n))
    console.print(sources)
    if summary.samples_per_reason <= 0:
        return
    # One table per reason, so the record's text gets the width an 80-column terminal has.
    for reason, count in summary.reasons():
        shown = summary.samples(reason)
        samples = Table(
            title=Text(f"{reason}: newest {len(shown)} of {count}"),
            title_justify="left",
            show_lines=True,
        )
        samples.add_column("source", overflow="fold", max_width=24)
        samples.add_column("field", overflow="fold", max_width=12)
        samples.add_column("detail", overflow="fold", ratio=1)
        samples.add_column("raw", overflow="fold", ratio=2)
        for letter in shown:
            raw = "-" if letter.raw is None else printable(letter.raw)
            samples.add_row(
                Text(letter.source.label()),
                Text(letter.field or ""),
                Text(printable(letter.detail.encode())),
                Text(raw),
            )
        console.print(samples)


# -- export -----------------------------------------------------------------------------------


def export_line(letter: DeadLetter, *, with_reasons: bool) -> tuple[bytes | None, str | None]:
    """The line (without its newline) a record exports as, or None and why it cannot.

    Plain: exactly the refused bytes, so a fixed file feeds ``monitor report`` and
    ``monitor dlq replay`` like the original; bytes that would not read back as exactly one
    JSONL line are left out. ``with_reasons``: the whole dead-letter record, one JSON line.
    """
    if with_reasons:
        if letter.reason == UNREADABLE:
            return None, SKIP_NO_RAW
        if b"\n" in letter.value or b"\r" in letter.value:
            # Another producer's pretty-printed record: the same JSON, on one line.
            return orjson.dumps(orjson.loads(letter.value)), None
        return letter.value, None
    raw = letter.raw
    if raw is None:
        return None, SKIP_NO_RAW
    if not raw.strip():
        return None, SKIP_BLANK
    # Lines end in \n or \r\n (monitor.jsonl): an inner \n splits the record and a final \r
    # would be read back without it.
    if b"\n" in raw or raw.endswith(b"\r"):
        return None, SKIP_NOT_ONE_LINE
    return raw, None


@dataclass
class ExportResult:
    read: int = 0  # dead letters read in the range
    selected: int = 0  # of those, the ones with a --reason asked for (all without one)
    written: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "selected": self.selected,
            "written": self.written,
            "skipped": dict(sorted(self.skipped.items())),
        }


class Exporter:
    """Writes the export lines of the records it is given, filtered by reason."""

    def __init__(
        self, out: IO[bytes], *, reasons: Iterable[str] = (), with_reasons: bool = False
    ) -> None:
        self.out = out
        self.reasons = frozenset(reasons)
        self.with_reasons = with_reasons
        self.result = ExportResult()

    def add(self, letter: DeadLetter) -> None:
        self.result.read += 1
        if self.reasons and letter.reason not in self.reasons:
            return
        self.result.selected += 1
        line, why = export_line(letter, with_reasons=self.with_reasons)
        if line is None:
            self.result.skipped[why or SKIP_NO_RAW] += 1
            return
        self.out.write(line + b"\n")
        self.result.written += 1


def check_reasons(reasons: Sequence[str]) -> None:
    unknown = sorted(set(reasons) - set(REASONS))
    if unknown:
        raise ValueError(f"unknown --reason {', '.join(unknown)} (one of {', '.join(REASONS)})")


@contextlib.contextmanager
def atomic_output(name: str) -> Iterator[IO[bytes]]:
    """A file that appears (or replaces the old one) only once written whole: an export that
    fails halfway leaves the previous file as it was. ``-`` is stdout."""
    if name == "-":
        yield sys.stdout.buffer
        return
    path = Path(name)
    partial = path.with_name(path.name + ".partial")
    handle = partial.open("wb")
    try:
        yield handle
        handle.close()
        partial.replace(path)
    finally:
        handle.close()
        partial.unlink(missing_ok=True)


# -- Kafka ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connection:
    bootstrap_servers: str
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    # Bounds every wait on the broker: connecting, metadata, offsets, and a read that stops
    # making progress.
    timeout_s: float = DEFAULT_TIMEOUT_S

    def kwargs(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "request_timeout_ms": max(1_000, int(self.timeout_s * 1000)),
            **self.security.aiokafka_kwargs(),
        }


@contextlib.contextmanager
def _kafka_failures(conn: Connection, timed_out: str) -> Iterator[None]:
    """A timeout or a client error of the block as one :class:`DlqError` line."""
    try:
        yield
    except TimeoutError:
        raise DlqError(
            f"{timed_out} from Kafka at {conn.bootstrap_servers} within {conn.timeout_s:g} s"
        ) from None
    except (KafkaError, OSError) as exc:
        reason = describe_error(exc, conn.security)
        raise DlqError(f"Kafka at {conn.bootstrap_servers}: {reason}") from None


async def _reach(conn: Connection) -> None:
    """Fail fast and in one line when no broker answers (the clients would retry and log)."""
    try:
        await probe(conn.bootstrap_servers, conn.security, timeout_s=conn.timeout_s)
    except BrokerRefusedError as exc:  # the server answered: it refused the settings
        raise DlqError(f"Kafka at {exc}") from None
    except BrokerUnreachableError as exc:
        raise DlqError(f"cannot reach Kafka: {exc}") from None


async def topic_partitions(conn: Connection, topic: str) -> list[int]:
    """The partitions of an existing topic. All-topics metadata: asking for the topic by name
    would make a broker with auto-creation on create it."""
    await _reach(conn)
    admin = AIOKafkaAdminClient(**conn.kwargs())
    try:
        with _kafka_failures(conn, "no metadata"):
            async with asyncio.timeout(conn.timeout_s):
                await admin.start()
                topics = await admin.describe_topics()
    finally:
        await admin.close()
    for entry in topics:
        if entry.get("topic") == topic:
            return sorted(int(p["partition"]) for p in entry.get("partitions", ()))
    raise DlqError(f"topic {topic} does not exist on {conn.bootstrap_servers}")


async def scan(
    conn: Connection, topic: str, since_ms: int | None, on_letter: Callable[[DeadLetter], None]
) -> list[PartitionRange]:
    """Give every dead letter from the start (or ``since_ms``) to the current end offsets."""
    partitions = await topic_partitions(conn, topic)
    consumer = AIOKafkaConsumer(
        group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **conn.kwargs()
    )
    loop = asyncio.get_running_loop()
    try:
        with _kafka_failures(conn, "no answer"):
            async with asyncio.timeout(conn.timeout_s):
                await consumer.start()
                tps = [TopicPartition(topic, p) for p in partitions]
                ends = await consumer.end_offsets(tps)
                if since_ms is None:
                    starts = await consumer.beginning_offsets(tps)
                else:
                    # The first record at or after the time; None: no record that recent.
                    found = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
                    starts = {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in tps}
            ranges = [PartitionRange(tp.partition, starts[tp], ends[tp]) for tp in tps]
            todo = {tp: ends[tp] for tp in tps if starts[tp] < ends[tp]}
            if todo:
                consumer.assign(list(todo))
                for tp in todo:
                    consumer.seek(tp, starts[tp])
            progress_at = loop.time()
            while todo:
                batch = await consumer.getmany(*todo, timeout_ms=_POLL_MS)
                for tp, records in batch.items():
                    end = todo.get(tp)
                    if end is None:
                        continue
                    for record in records:
                        if record.offset >= end:
                            break
                        on_letter(
                            parse_dead_letter(
                                record.value,
                                timestamp_ms=record.timestamp,
                                partition=tp.partition,
                                offset=record.offset,
                            )
                        )
                    if records:
                        progress_at = loop.time()
                for tp in list(todo):
                    # The position, not the last offset seen: offsets can have gaps.
                    async with asyncio.timeout(conn.timeout_s):
                        if await consumer.position(tp) >= todo[tp]:
                            del todo[tp]
                            consumer.pause(tp)
                if todo and loop.time() - progress_at > conn.timeout_s:
                    raise DlqError(
                        f"Kafka at {conn.bootstrap_servers} sent nothing for {conn.timeout_s:g} s "
                        f"while reading {topic}"
                    )
            return ranges
    finally:
        await consumer.stop()


async def inspect(
    conn: Connection, topic: str, *, since_ms: int | None = None, samples: int = DEFAULT_SAMPLES
) -> Summary:
    summary = Summary(topic, since_ms=since_ms, samples_per_reason=samples)
    summary.ranges = await scan(conn, topic, since_ms, summary.add)
    log.info(
        "dlq_inspect_done", topic=topic, total=summary.total, by_reason=dict(summary.reasons())
    )
    return summary


async def export(
    conn: Connection,
    topic: str,
    out: IO[bytes],
    *,
    since_ms: int | None = None,
    reasons: Sequence[str] = (),
    with_reasons: bool = False,
) -> ExportResult:
    exporter = Exporter(out, reasons=reasons, with_reasons=with_reasons)
    await scan(conn, topic, since_ms, exporter.add)
    out.flush()
    result = exporter.result
    log.info("dlq_export_done", topic=topic, **result.as_json())
    return result


async def replay(
    conn: Connection, inputs: Sequence[str], events_topic: str, *, batch_events: int = 500
) -> int:
    """Send the records of JSONL files to the events topic exactly as ``monitor publish`` does
    (same keying, batching and handling of lines that are still invalid); records sent."""
    await topic_partitions(conn, events_topic)  # it must exist: no replay into a typo
    sent = 0
    try:
        for name in inputs:
            with open_input(name) as handle:
                sent += await publish(
                    records_from_lines(iter_lines(handle)),
                    bootstrap_servers=conn.bootstrap_servers,
                    topic=events_topic,
                    security=conn.security,
                    batch_events=batch_events,
                )
    except KafkaError as exc:
        reason = describe_error(exc, conn.security)
        raise DlqError(f"Kafka at {conn.bootstrap_servers}: {reason}") from None
    log.info("dlq_replay_done", topic=events_topic, inputs=len(inputs), records=sent)
    return sent


def text_summary(summary: Summary, width: int | None = None) -> str:
    """The text rendering as a string (tests, and callers that write it themselves)."""
    buffer = io.StringIO()
    render_text(summary, buffer, width=width)
    return buffer.getvalue()
