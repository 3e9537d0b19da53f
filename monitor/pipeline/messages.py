"""Kafka message values: one canonical event (a JSON object) or a batch of one contract's events
(a JSON array). Each element is validated, and dead-lettered, on its own."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import orjson

from monitor.engine import CallEvent, Rejection, validate_object, validate_record
from monitor.engine.events import MAX_LINE_BYTES
from monitor.engine.validation import RejectReason, decode_record

# A batch message holds at most this many events and bytes (well under Kafka's 1 MiB default).
MAX_BATCH_EVENTS = 2_000
MAX_BATCH_BYTES = 512 * 1024

_raw_list = msgspec.json.Decoder(list[msgspec.Raw])

Item = tuple[CallEvent | Rejection, bytes]  # the outcome and the element's own bytes


def decode_message(value: bytes | None) -> list[Item]:
    """Validate every event a message carries; the bytes are kept for the dead-letter topic."""
    if value is None:
        return [(Rejection(RejectReason.INVALID_JSON, "message has no value"), b"")]
    if value[:1] != b"[" and value.lstrip()[:1] != b"[":
        return [(validate_record(value), value)]
    if len(value) > MAX_BATCH_BYTES + MAX_LINE_BYTES:
        reason = f"batch of {len(value)} bytes exceeds {MAX_BATCH_BYTES} bytes"
        return [(Rejection(RejectReason.TOO_LARGE, reason), value)]
    try:
        elements = _raw_list.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError):
        decoded = decode_record(value)  # names the precise JSON or UTF-8 problem
        if isinstance(decoded, Rejection):
            return [(decoded, value)]
        return [(validate_object(decoded), value)]
    if len(elements) > MAX_BATCH_EVENTS:
        reason = f"batch of {len(elements)} events exceeds {MAX_BATCH_EVENTS}"
        return [(Rejection(RejectReason.TOO_LARGE, reason), value)]
    return [(validate_record(bytes(raw)), bytes(raw)) for raw in elements]


def encode_batches(
    events: Iterable[dict[str, Any] | bytes],
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[bytes]:
    """Pack serialized events (of one contract) into JSON-array messages within the bounds."""
    chunk: list[bytes] = []
    size = 2
    for event in events:
        raw = event if isinstance(event, bytes) else orjson.dumps(event)
        if chunk and (len(chunk) >= max_events or size + len(raw) + 1 > max_bytes):
            yield b"[" + b",".join(chunk) + b"]"
            chunk, size = [], 2
        chunk.append(raw)
        size += len(raw) + 1
    if chunk:
        yield b"[" + b",".join(chunk) + b"]"
