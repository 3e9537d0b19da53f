"""Issue 11 §6: one path from a file to a figure.

The stream path here is what ``monitor publish`` and a worker do, minus the broker: the
producer's messages (:func:`messages_for`, the pure part of ``publish``), decoded by the worker's
:func:`decode_message` with their record headers, each event processed by the stream engine of
the partition its key lands on. For generated files full of hostile lines it must give
``monitor report``'s rows, its rejection counts by reason, and for every rejected line one
rejection with the report's reason, detail and field, carrying the line's original bytes.
"""

from __future__ import annotations

import base64
import io
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.engine import (
    CallEvent,
    Contract,
    ContractRegistry,
    Rejection,
    RejectReason,
    validate_record,
)
from monitor.engine.stream import Outcome, StreamEngine
from monitor.jsonl import iter_lines, open_input
from monitor.pipeline.messages import (
    KIND_EVENT,
    KIND_HEADER,
    MAX_BATCH_EVENTS,
    decode_message,
    is_one_line,
)
from monitor.pipeline.partitioning import contract_partition
from monitor.pipeline.producer import (
    MAX_BATCHED_OPENERS,
    MessageBuilder,
    messages_for,
    records_from_lines,
)
from monitor.report import RejectsWriter, run_report
from monitor.simulator import SimulationConfig
from monitor.simulator.config import SCENARIOS
from monitor.simulator.generator import Record, damaged_records
from tests.spec import CALL_TYPES, STATUS_TYPES

T0 = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
PARTITIONS = 4
CONTRACTS = ("H1234", "S5678", "R0007")

# -- the lines of a hostile file ---------------------------------------------------------------


def event_dict(
    contract: str, event_id: str, call: str, kind: str, offset_ms: int, ts_form: int = 0,
    line: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A valid event; ``ts_form`` picks how its time is written (the contract allows four)."""
    moment = T0 + timedelta(milliseconds=offset_ms)
    ts: object
    if ts_form == 0:
        ts = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    elif ts_form == 1:
        ts = moment.astimezone(timezone(timedelta(hours=-5))).isoformat(timespec="milliseconds")
    elif ts_form == 2:
        ts = int(moment.timestamp())
    else:
        ts = round(moment.timestamp(), 3)
    record: dict[str, Any] = {"event_id": event_id, "contract_id": contract, "type": kind, "ts": ts}
    if kind not in STATUS_TYPES:
        record["call_id"] = call
    if line is not None:
        record["line"] = line
    return record


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def with_field(record: dict[str, Any], raw_value: bytes) -> bytes:
    """The event with one more (ignored) field holding ``raw_value`` as written."""
    return orjson.dumps(record)[:-1] + b',"extra":' + raw_value + b"}"


# Each hostile kind turns a valid event (as a dict) into a line; comments give report's verdict.
HOSTILE: dict[str, Any] = {
    "array": lambda e: b'["an", "array"]',  # not_object
    "empty_array": lambda e: b"[]",  # not_object
    "array_of_event": lambda e: b"[" + orjson.dumps(e) + b"]",  # not_object, not a batch
    "array_of_events": lambda e: b"[" + orjson.dumps(e) + b"," + orjson.dumps(e) + b"]",
    "array_with_space": lambda e: b"  [" + orjson.dumps(e) + b"]",  # not_object
    "nested_array": lambda e: b"[[" + orjson.dumps(e) + b"]]",  # not_object
    "mixed_array": lambda e: b"[" + orjson.dumps(e) + b', 17, {"bad": 1}]',  # not_object
    "deep_array": lambda e: nested(300),  # not_object
    "too_deep": lambda e: with_field(e, nested(2_000)),  # invalid_json (nesting limit)
    "number": lambda e: b"42",  # not_object
    "string": lambda e: b'"a string, not an event"',  # not_object
    "null": lambda e: b"null",  # not_object
    "true": lambda e: b"true",  # not_object
    "form_feed": lambda e: b"\x0c",  # invalid_json: not blank for the report
    "garbage_utf8": lambda e: b"\xff\xfe\x00garbage",  # invalid_utf8
    "utf8_in_event": lambda e: orjson.dumps(e)[:-1] + b',"note":"\xc3\x28"}',  # invalid_utf8
    "utf8_in_array": lambda e: b'["\xff"]',  # invalid_utf8
    "truncated": lambda e: orjson.dumps(e)[:-7],  # invalid_json
    "not_json": lambda e: b"{not json",  # invalid_json
    "trailing": lambda e: orjson.dumps(e) + b"}",  # invalid_json
    "two_objects": lambda e: orjson.dumps(e) + b" " + orjson.dumps(e),  # invalid_json
    "no_event_id": lambda e: orjson.dumps({k: v for k, v in e.items() if k != "event_id"}),
    "no_ts": lambda e: orjson.dumps({k: v for k, v in e.items() if k != "ts"}),
    "no_type": lambda e: orjson.dumps({k: v for k, v in e.items() if k != "type"}),
    "null_contract": lambda e: orjson.dumps({**e, "contract_id": None}),  # missing_field
    "no_call_id": lambda e: orjson.dumps({**e, "type": "queued", "call_id": None}),
    "ts_naive": lambda e: orjson.dumps({**e, "ts": "2026-01-05T10:00:00"}),  # invalid_field
    "ts_words": lambda e: orjson.dumps({**e, "ts": "yesterday"}),
    "ts_ancient": lambda e: orjson.dumps({**e, "ts": 1_000}),
    "ts_bool": lambda e: orjson.dumps({**e, "ts": True}),
    "bad_contract": lambda e: orjson.dumps({**e, "contract_id": "ZZ999"}),
    "bad_type": lambda e: orjson.dumps({**e, "type": "teleport"}),
    "bad_line": lambda e: orjson.dumps({**e, "line": "Bad Line"}),
    "call_id_int": lambda e: orjson.dumps({**e, "type": "queued", "call_id": 7}),
    "empty_id": lambda e: orjson.dumps({**e, "event_id": ""}),
    "too_large": lambda e: orjson.dumps({**e, "padding": "x" * 70_000}),  # too_large
}
# Lines the report accepts that a naive batcher would get wrong.
ODD_VALID: dict[str, Any] = {
    "leading_space": lambda e: b"  " + orjson.dumps(e),
    "spaced": lambda e: orjson.dumps(e).replace(b'":', b'" : ').replace(b",", b" , "),
    "non_ascii": lambda e: orjson.dumps({**e, "note": "caf\u00e9 \u2014 \U0001f4de"}),
    "deep_extra": lambda e: with_field(e, nested(MAX_BATCHED_OPENERS + 600)),  # alone
    "shallow_extra": lambda e: with_field(e, b'{"a": [1, {"b": [2]}]}'),
    "trailing_cr": lambda e: orjson.dumps(e) + b"\r",  # "\r\r\n": one CR stays, white space
}
BLANK = (b"", b"   ", b"\t", b" \t ", b"\r")


@dataclass
class FileBuilder:
    """Builds a hostile JSONL file line by line; ids are unique per contract unless reused."""

    lines: list[bytes] = field(default_factory=list)
    valid: list[tuple[str, str]] = field(default_factory=list)  # (contract, event_id) so far
    n: int = 0

    def event(self, contract: str, call: int, kind: str, offset_ms: int, ts_form: int = 0,
              line: str | None = None, reuse: int | None = None) -> dict[str, Any]:  # fmt: skip
        self.n += 1
        event_id = f"{contract}-{self.n}"
        if reuse is not None and self.valid:
            # The same id again in the same contract (another contract's id would be a
            # different story: see the report's notes), with different content.
            contract, event_id = self.valid[reuse % len(self.valid)]
        return event_dict(contract, event_id, f"c{call}", kind, offset_ms, ts_form, line)

    def add_valid(self, record: dict[str, Any], raw: bytes | None = None) -> None:
        self.valid.append((record["contract_id"], record["event_id"]))
        self.lines.append(orjson.dumps(record) if raw is None else raw)

    def render(self, crlf: list[bool], final_newline: bool = True) -> bytes:
        out = b"".join(
            line + (b"\r\n" if crlf[i % len(crlf)] else b"\n") for i, line in enumerate(self.lines)
        )
        return out if final_newline else out.rstrip(b"\n")


@st.composite
def hostile_files(draw: st.DrawFn) -> bytes:
    builder = FileBuilder()
    contracts = CONTRACTS[: draw(st.integers(2, 3))]
    kinds = [*CALL_TYPES, *STATUS_TYPES]
    for _ in range(draw(st.integers(1, 60))):
        choice = draw(st.sampled_from(["valid"] * 6 + ["hostile"] * 4 + ["odd", "blank", "dup"]))
        record = builder.event(
            draw(st.sampled_from(contracts)), draw(st.integers(0, 6)), draw(st.sampled_from(kinds)),
            draw(st.integers(0, 2 * 3_600_000)), draw(st.integers(0, 3)),
            draw(st.sampled_from([None, "member_services", "pharmacy_help_desk"])),
            reuse=draw(st.integers(0, 10**6)) if draw(st.integers(0, 9)) == 0 else None,
        )  # fmt: skip
        if choice == "valid":
            builder.add_valid(record)
        elif choice == "odd":
            builder.add_valid(record, ODD_VALID[draw(st.sampled_from(sorted(ODD_VALID)))](record))
        elif choice == "hostile":
            builder.lines.append(HOSTILE[draw(st.sampled_from(sorted(HOSTILE)))](record))
        elif choice == "blank":
            builder.lines.append(draw(st.sampled_from(BLANK)))
        elif builder.lines:  # an exact repeat of an earlier line, whatever it was
            builder.lines.append(builder.lines[draw(st.integers(0, len(builder.lines) - 1))])
    crlf = draw(st.lists(st.booleans(), min_size=1, max_size=4))
    return builder.render(crlf, final_newline=draw(st.booleans()))


# -- the two paths -----------------------------------------------------------------------------

Rejected = tuple[bytes, str, str, str | None]  # raw, reason, detail, field


@dataclass
class Outcomes:
    rows: list[dict[str, Any]]
    rejected: list[Rejected]
    duplicates: int
    accepted: int

    @property
    def by_reason(self) -> Counter[str]:
        return Counter(reason for _, reason, _, _ in self.rejected)


def report_path(path: Path) -> Outcomes:
    sink = io.BytesIO()
    engine = run_report([str(path)], ContractRegistry(), RejectsWriter(sink))
    rejected: list[Rejected] = []
    for text in sink.getvalue().splitlines():
        record = orjson.loads(text)
        raw = record["raw"].encode() if "raw" in record else base64.b64decode(record["raw_base64"])
        rejected.append((raw, record["reason"], record["detail"], record["field"]))
    stats = engine.sync_stats()
    assert sum(stats.rejected.values()) == len(rejected)
    return Outcomes([r.as_dict() for r in engine.rows()], sorted(rejected), stats.duplicates,
                    stats.accepted)  # fmt: skip


def stream_path(path: Path, batch_events: int = MAX_BATCH_EVENTS) -> Outcomes:
    with open_input(str(path)) as handle:
        messages = messages_for(records_from_lines(iter_lines(handle)), batch_events)
    engines: dict[int, StreamEngine] = {}
    rejected: list[Rejected] = []
    for key, value, headers in messages:
        assert len(value) < 1_000_000
        partition = contract_partition(key.decode(), PARTITIONS) if key else 0
        decoded = decode_message(value, headers)
        for index, item in enumerate(decoded.items):
            if isinstance(item, Rejection):
                assert not decoded.batch  # a rejected line is one message, never unpacked
                assert headers is not None and is_one_line(headers)
                rejected.append((decoded.raw(index), item.reason.value, item.detail, item.field))
                continue
            assert isinstance(item, CallEvent)
            assert key == item.contract_id.encode()  # processed where it lands: no re-routing
            engine = engines.setdefault(partition, StreamEngine())
            outcome = engine.process(item)
            assert outcome in (Outcome.ACCEPTED, Outcome.DUPLICATE)
    rows = sorted(
        (row.as_dict() for engine in engines.values() for row in engine.rows()),
        key=lambda r: (r["contract_id"], r["line"], r["date"]),
    )
    return Outcomes(
        rows,
        sorted(rejected),
        sum(e.stats.duplicates for e in engines.values()),
        sum(e.sync_stats().accepted for e in engines.values()),
    )


@given(hostile_files(), st.sampled_from([1, 3, 500]))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
def test_a_hostile_file_gives_the_stream_what_it_gives_the_report(
    content: bytes, batch_events: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_bytes(content)
        report = report_path(path)
        stream = stream_path(path, batch_events)
    assert stream.rows == report.rows
    assert stream.by_reason == report.by_reason
    assert stream.rejected == report.rejected  # same bytes, reason, detail and field
    assert stream.duplicates == report.duplicates
    assert stream.accepted == report.accepted


def test_a_file_of_every_kind_gives_the_same_figures_and_rejections() -> None:
    """Every hostile and odd kind once, for three contracts: the property on a known file."""
    builder = FileBuilder()
    for n, contract in enumerate(CONTRACTS):
        for call in range(5):
            for step, kind in enumerate(["call_received", "queued", "answered", "ended"]):
                offset = n * 60_000 + call * 90_000 + step * 20_000 * (call + 1)
                builder.add_valid(builder.event(contract, call, kind, offset, ts_form=step))
    for name in sorted(ODD_VALID):
        builder.add_valid(r := builder.event("H1234", 9, "call_received", 600_000),
                          ODD_VALID[name](r))  # fmt: skip
    hostile = {name: make(builder.event("S5678", 8, "queued", 700_000))
               for name, make in sorted(HOSTILE.items())}  # fmt: skip
    builder.lines += hostile.values()
    # Blank lines, and repeats: of a valid line (a duplicate) and of a rejected one.
    builder.lines += [*BLANK, builder.lines[0], hostile["array_of_event"]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_bytes(builder.render([False, True]))
        report = report_path(path)
        stream = stream_path(path)
    assert report.by_reason == {
        "not_object": 13,  # the eight arrays (one twice) and four other JSON values
        "invalid_json": 6,  # too deep, form feed, truncated, not JSON, trailing, two objects
        "invalid_utf8": 3,
        "missing_field": 5,  # event_id, ts, type, contract_id (null), call_id (null)
        "invalid_field": 9,
        "too_large": 1,
    }
    assert report.duplicates == 1 and report.accepted == 3 * 5 * 4 + len(ODD_VALID)
    assert len(report.rows) == 3 and sum(r["calls_received"] for r in report.rows) == 16
    assert stream == report


# -- the messages themselves -------------------------------------------------------------------

VALID = orjson.dumps(event_dict("H1234", "e1", "c1", "queued", 0))
VALID_2 = orjson.dumps(event_dict("S5678", "e2", "c2", "queued", 1_000))


def test_a_line_holding_an_array_is_one_not_object_rejection_with_the_reports_detail() -> None:
    lines = [b'["an", "array"]', b"[" + VALID + b"]", b"[" + VALID + b"," + VALID_2 + b"]"]
    messages = messages_for(records_from_lines(lines))
    assert [m.value for m in messages] == lines  # each alone, bytes untouched
    assert all(m.key is None and m.headers == [(KIND_HEADER, KIND_EVENT)] for m in messages)
    for message, line in zip(messages, lines, strict=True):
        decoded = decode_message(message.value, message.headers)
        assert not decoded.batch
        assert decoded.items == [validate_record(line)]
        assert decoded.items[0] == Rejection(
            RejectReason.NOT_OBJECT, "expected a JSON object, got an array"
        )
        assert decoded.raw(0) == line
    # Without the header the same value is a batch (a third-party producer's): one element
    # each, accepted or rejected on its own.
    assert decode_message(lines[2]).batch and len(decode_message(lines[2]).items) == 2


def test_valid_events_are_keyed_by_contract_and_batched_in_file_order() -> None:
    h = [orjson.dumps(event_dict("H1234", f"h{n}", "c1", "queued", n)) for n in range(3)]
    s = [orjson.dumps(event_dict("S5678", f"s{n}", "c1", "queued", n)) for n in range(2)]
    lines = [h[0], s[0], b"", h[1], b"{broken", s[1], h[2]]
    messages = messages_for(records_from_lines(lines))
    assert messages[0].value == b"{broken" and messages[0].headers is not None
    assert messages[1:] == [
        (b"H1234", b"[" + b",".join(h) + b"]", None),
        (b"S5678", b"[" + b",".join(s) + b"]", None),
    ]
    one_each = messages_for(records_from_lines(lines), batch_events=1)
    assert [(m.key, m.value) for m in one_each if m.headers is None] == [
        (b"H1234", h[0]), (b"S5678", s[0]), (b"H1234", h[1]), (b"S5678", s[1]), (b"H1234", h[2]),
    ]  # fmt: skip


def test_a_valid_event_sent_alone_keeps_its_contracts_order() -> None:
    """A deeply nested valid event travels alone; what was pending goes first, so the first of
    two events with one id is still the first the worker sees."""
    first = orjson.dumps(event_dict("H1234", "same", "c1", "queued", 0))
    deep = with_field(event_dict("H1234", "same", "c1", "answered", 5_000), nested(100))
    messages = messages_for(records_from_lines([first, deep]))
    assert messages == [
        (b"H1234", b"[" + first + b"]", None),
        (b"H1234", deep, [(KIND_HEADER, KIND_EVENT)]),
    ]
    (item,) = decode_message(messages[1].value, messages[1].headers).items
    assert item == validate_record(deep) and isinstance(item, CallEvent)
    # In a batch this event would have to be split by the worker's decoder; a batch nested
    # past its recursion limit is one rejection, not an exception that stops the worker.
    too_deep = with_field(event_dict("H1234", "x", "c1", "queued", 0), nested(1_000))
    (rejection,) = decode_message(b"[" + too_deep + b"]").items
    assert isinstance(rejection, Rejection) and rejection.reason is RejectReason.INVALID_JSON


def test_lines_too_large_for_a_message_are_counted_not_sent() -> None:
    big = orjson.dumps({"padding": "x" * 300_000})  # too_large, but its dead letter fits
    huge = b'{"padding": "' + b"x" * 2_000_000 + b'"}'
    escaped = b'"' + b"\\u0001" * 200_000 + b'"'  # 1.2 MB: the dead letter would not fit
    builder = MessageBuilder()
    sent = [m for n, raw in enumerate([VALID, big, huge, escaped, b""])
            for m in builder.add(Record("", n, raw))] + builder.flush()  # fmt: skip
    assert [m.value for m in sent] == [big, b"[" + VALID + b"]"]
    (rejection,) = decode_message(sent[0].value, sent[0].headers).items
    assert rejection == validate_record(big)
    assert rejection.detail == "record of 300014 bytes exceeds 65536 bytes"  # type: ignore[union-attr]
    assert [(u.position, u.rejection.reason, u.size) for u in builder.unsent] == [
        (3, RejectReason.TOO_LARGE, len(huge)),
        (4, RejectReason.TOO_LARGE, len(escaped)),
    ]
    assert builder.unsent[0].rejection == validate_record(huge)
    assert (builder.records, builder.events, dict(builder.rejected)) == (2, 1, {"too_large": 1})


def test_headers_mark_one_line_in_every_form_faust_gives_them() -> None:
    assert is_one_line([(KIND_HEADER, KIND_EVENT)])
    assert is_one_line(((KIND_HEADER, KIND_EVENT),))  # aiokafka's consumer records
    assert is_one_line({KIND_HEADER: KIND_EVENT})
    assert not is_one_line(None) and not is_one_line([]) and not is_one_line(())
    assert not is_one_line([(KIND_HEADER, b"batch"), ("other", None)])


@pytest.mark.parametrize("seed", [1, 2])
def test_the_simulators_damaged_records_travel_alone_with_the_reports_reasons(seed: int) -> None:
    config = SimulationConfig(
        contracts=(Contract("H1234", None, "America/New_York"),
                   Contract("S5678", None, "America/Chicago")),
        start_ms=int(T0.timestamp() * 1000), hours=1, calls_per_hour=30,
        scenario=SCENARIOS["normal"], seed=seed, malformed_rate=0.2, duplicate_rate=0.05,
        reorder_rate=0.05,
    )  # fmt: skip
    records = list(damaged_records(config))
    malformed = [r.value for r in records if r.standalone]
    assert len(malformed) > 10
    messages = messages_for(records)
    alone = [m for m in messages if m.headers is not None]
    assert sorted(m.value for m in alone) == sorted(malformed)
    for message in alone:
        (item,) = decode_message(message.value, message.headers).items
        assert item == validate_record(message.value) and isinstance(item, Rejection)
    batched = [decode_message(m.value) for m in messages if m.headers is None]
    assert sum(len(d.items) for d in batched) == len(records) - len(malformed)
    assert all(isinstance(item, CallEvent) for d in batched for item in d.items)
