"""Kafka message values: one canonical event (a JSON object) or a batch of one contract's events
(a JSON array). Each element is validated, and dead-lettered, on its own.

A message with the header ``callcenter-kind: event`` carries one JSONL line, validated exactly
as ``monitor report`` validates that line: a JSON array there is one ``not_object``
rejection, never a batch. Our producers send every line they do not batch that way (every
line ``monitor report`` rejects, above all), so a file gives the stream the rejections, with
the same reasons and details, that it gives the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec
import orjson

from monitor.engine import CallEvent, Rejection, validate_object, validate_record
from monitor.engine.events import MAX_LINE_BYTES
from monitor.engine.validation import RejectReason, decode_record, validate_array_fast

# A batch message holds at most this many events and bytes (well under Kafka's 1 MiB default).
MAX_BATCH_EVENTS = 2_000
MAX_BATCH_BYTES = 512 * 1024

# The record header that marks a message as one JSONL line (see the module documentation).
KIND_HEADER = "callcenter-kind"
KIND_EVENT = b"event"
ONE_LINE_HEADERS: list[tuple[str, bytes]] = [(KIND_HEADER, KIND_EVENT)]

# Kafka record headers as aiokafka (and so Faust's ``message.headers``) gives them, or a
# mapping, which Faust's types also allow.
Headers = Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None]

_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


class Decoded:
    """What one message carries: each element validated (an event or a rejection), and each
    element's own bytes for the dead-letter topic, split out only when one is asked for."""

    __slots__ = ("_raws", "_value", "batch", "items")

    def __init__(
        self,
        items: list[CallEvent | Rejection],
        value: bytes,
        *,
        batch: bool,
        raws: list[bytes] | None = None,
    ) -> None:
        self.items = items
        self.batch = batch  # a JSON array: dead letters name the element's index
        self._value = value
        self._raws = raws

    def raw(self, index: int) -> bytes:
        """The bytes of element ``index`` (the whole value for a one-event message)."""
        if not self.batch:
            return self._value
        if self._raws is None:
            self._raws = [bytes(raw) for raw in _raw_list.decode(self._value)]
        return self._raws[index]


def is_one_line(headers: Headers | None) -> bool:
    """Whether the headers mark the message as one JSONL line (not a batch)."""
    if not headers:  # the batches of valid events: no header, nothing to look at
        return False
    if isinstance(headers, Mapping):
        return headers.get(KIND_HEADER) == KIND_EVENT
    return any(name == KIND_HEADER and data == KIND_EVENT for name, data in headers)


def decode_message(value: bytes | None, headers: Headers | None = None) -> Decoded:
    """Validate every event a message carries (``headers``: the record's Kafka headers)."""
    if value is None:
        return Decoded([Rejection(RejectReason.INVALID_JSON, "message has no value")], b"",
                       batch=False)  # fmt: skip
    if (value[:1] != b"[" and value.lstrip()[:1] != b"[") or is_one_line(headers):
        return Decoded([validate_record(value)], value, batch=False)
    if len(value) > MAX_BATCH_BYTES + MAX_LINE_BYTES:
        reason = f"batch of {len(value)} bytes exceeds {MAX_BATCH_BYTES} bytes"
        return Decoded([Rejection(RejectReason.TOO_LARGE, reason)], value, batch=False)
    events = validate_array_fast(value)
    if events is not None and len(events) <= MAX_BATCH_EVENTS:
        # A producer's batch of valid events: one decoding pass, no per-element bytes.
        return Decoded(events, value, batch=True)  # type: ignore[arg-type]
    try:
        elements = _raw_list.decode(value)
    except RecursionError:
        # Nested deeper than the decoder's recursion limit: it cannot be split into its
        # elements, and letting the error escape would stop the worker's batch.
        reason = "batch nested too deeply to split into events"
        return Decoded([Rejection(RejectReason.INVALID_JSON, reason)], value, batch=False)
    except (msgspec.DecodeError, UnicodeDecodeError):
        decoded = decode_record(value)  # names the precise JSON or UTF-8 problem
        if isinstance(decoded, Rejection):
            return Decoded([decoded], value, batch=False)
        return Decoded([validate_object(decoded)], value, batch=False)
    if len(elements) > MAX_BATCH_EVENTS:
        reason = f"batch of {len(elements)} events exceeds {MAX_BATCH_EVENTS}"
        return Decoded([Rejection(RejectReason.TOO_LARGE, reason)], value, batch=False)
    raws = [bytes(raw) for raw in elements]
    return Decoded([validate_record(raw) for raw in raws], value, batch=True, raws=raws)


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
