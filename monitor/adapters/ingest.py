"""``monitor ingest asterisk``: the shell around the converter (files, follow mode, sinks)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from monitor.adapters.asterisk import (
    AsteriskConverter,
    IngestStats,
    QueueLogLine,
    iter_csv_lines,
    looks_like_csv_header,
    parse_pipe_line,
)
from monitor.adapters.follow import Follower
from monitor.pipeline.producer import publish
from monitor.pipeline.settings import KafkaSecurity
from monitor.simulator.generator import Record


def pipe_items(lines: Iterable[bytes], stats: IngestStats) -> Iterator[QueueLogLine | str]:
    """Raw queue_log lines; a line without its newline is a truncated write."""
    for raw in lines:
        stats.lines += 1
        if not raw.strip():
            yield "blank"
        elif not raw.endswith(b"\n"):
            yield "truncated_last_line"
        else:
            yield parse_pipe_line(raw)


def read_items(path: Path, fmt: str, zone: Any, stats: IngestStats) -> Iterator[QueueLogLine | str]:
    with path.open("rb") as handle:
        first = handle.readline()
        handle.seek(0)
        if fmt == "csv" or (fmt == "auto" and looks_like_csv_header(first)):
            yield from iter_csv_lines(handle, zone, stats)
        else:
            yield from pipe_items(handle, stats)


def events_of(
    converter: AsteriskConverter, items: Iterable[QueueLogLine | str]
) -> Iterator[dict[str, Any]]:
    for item in items:
        yield from converter.convert(item)


def records_of(events: Iterable[dict[str, Any]]) -> Iterator[Record]:
    for event in events:
        yield Record(event["contract_id"], event["ts"] * 1000, orjson.dumps(event))


@dataclass
class KafkaTarget:
    bootstrap_servers: str
    topic: str
    security: KafkaSecurity
    batch_events: int


def write_jsonl(events: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    count = 0
    for event in events:
        out.write(orjson.dumps(event) + b"\n")
        count += 1
    out.flush()
    return count


async def deliver(events: list[dict[str, Any]], out: IO[bytes] | None,
                  kafka: KafkaTarget | None) -> int:  # fmt: skip
    if not events:
        return 0
    if kafka is not None:
        return await publish(records_of(events), bootstrap_servers=kafka.bootstrap_servers,
                             topic=kafka.topic, security=kafka.security,
                             batch_events=kafka.batch_events)  # fmt: skip
    assert out is not None
    return write_jsonl(events, out)


async def follow(
    path: Path,
    converter: AsteriskConverter,
    *,
    position_file: Path | None,
    poll_seconds: float,
    out: IO[bytes] | None,
    kafka: KafkaTarget | None,
    max_polls: int | None = None,
) -> int:
    """Tail ``path`` until SIGINT/SIGTERM (or ``max_polls``); the position is saved after each
    delivered poll."""
    follower = Follower(path, position_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    sent = polls = 0
    try:
        while not stop.is_set():
            lines = follower.poll()
            events = list(events_of(converter, pipe_items(lines, converter.stats)))
            sent += await deliver(events, out, kafka)
            follower.commit()
            polls += 1
            if max_polls is not None and polls >= max_polls:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
    finally:
        follower.close()
    return sent
