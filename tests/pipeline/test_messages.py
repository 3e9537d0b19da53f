"""Kafka message values: one event, or a batch of one contract's events."""

from __future__ import annotations

import orjson
import pytest

from monitor.engine import CallEvent, Rejection, validate_record
from monitor.engine.validation import RejectReason, validate_array_fast
from monitor.pipeline.messages import (
    MAX_BATCH_EVENTS,
    ONE_LINE_HEADERS,
    decode_message,
    encode_batches,
)


def event(n: int, **extra: object) -> dict[str, object]:
    ts = f"2026-01-05T14:00:{n % 60:02d}.000Z"
    return {"event_id": f"e{n}", "call_id": f"c{n // 3}", "contract_id": "H1234",
            "type": "call_received", "ts": ts, **extra}  # fmt: skip


def test_a_valid_batch_gives_the_events_of_its_elements_one_by_one() -> None:
    raws = [orjson.dumps(event(n)) for n in range(50)]
    (value,) = encode_batches(raws)
    decoded = decode_message(value)
    assert decoded.batch
    assert decoded.items == [validate_record(raw) for raw in raws]
    assert all(isinstance(item, CallEvent) for item in decoded.items)
    assert [decoded.raw(i) for i in range(50)] == raws  # each element's own bytes, on demand
    assert validate_array_fast(value) == decoded.items  # the one-pass path took it


@pytest.mark.parametrize(
    "bad",
    [
        {"ts": "yesterday"},  # invalid field
        {"contract_id": 12},  # wrong type
        {"type": "teleported"},  # unknown type
        {"ts": 1767621600.0005},  # a float timestamp: its written digits decide
        {"note": "caf\u00e9"},  # not ASCII
    ],
)
def test_one_odd_element_sends_the_batch_element_by_element(bad: dict[str, object]) -> None:
    raws = [orjson.dumps(event(n)) for n in range(5)]
    raws[2] = orjson.dumps(event(2, **bad))
    value = b"[" + b",".join(raws) + b"]"
    decoded = decode_message(value)
    assert decoded.items == [validate_record(raw) for raw in raws]
    assert decoded.raw(2) == raws[2]
    assert decoded.batch


def test_an_element_over_the_record_limit_is_rejected_on_its_own() -> None:
    raws = [orjson.dumps(event(n)) for n in range(3)]
    raws[1] = orjson.dumps(event(1, padding="x" * 70_000))
    decoded = decode_message(b"[" + b",".join(raws) + b"]")
    assert isinstance(decoded.items[0], CallEvent)
    rejected = decoded.items[1]
    assert isinstance(rejected, Rejection) and rejected.reason is RejectReason.TOO_LARGE
    assert isinstance(decoded.items[2], CallEvent)


def test_single_events_broken_arrays_and_oversized_batches() -> None:
    one = orjson.dumps(event(1))
    single = decode_message(one)
    assert not single.batch and single.raw(0) == one
    assert single.items == [validate_record(one)]
    broken = decode_message(b'[{"event_id": "e1",')
    assert not broken.batch
    assert isinstance(broken.items[0], Rejection)
    assert broken.items[0].reason is RejectReason.INVALID_JSON
    too_many = b"[" + b",".join([b"{}"] * (MAX_BATCH_EVENTS + 1)) + b"]"
    (rejected,) = decode_message(too_many).items
    assert isinstance(rejected, Rejection) and rejected.reason is RejectReason.TOO_LARGE
    (empty,) = decode_message(None).items
    assert isinstance(empty, Rejection) and empty.reason is RejectReason.INVALID_JSON


@pytest.mark.parametrize(
    "value",
    [
        b'["an", "array"]',
        b"[" + orjson.dumps(event(1)) + b"]",  # a valid event inside: still one line
        b" [[]]",
        b"[" + b",".join([orjson.dumps(event(1))] * 30_000) + b"]",  # over every batch bound
        orjson.dumps(event(2)),
        b"\xff[",
    ],
)
def test_a_value_marked_as_one_line_is_validated_as_the_report_validates_a_line(
    value: bytes,
) -> None:
    decoded = decode_message(value, ONE_LINE_HEADERS)
    assert not decoded.batch
    assert decoded.items == [validate_record(value)]
    assert decoded.raw(0) == value
    assert decode_message(value, tuple(ONE_LINE_HEADERS)).items == decoded.items
