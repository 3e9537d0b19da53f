"""Validation of raw records against the canonical call event, version 1 (issue 2, §2).

Entry points: ``validate_record(raw: bytes)`` validates one non-blank record (a line without its
``\\n``/``\\r\\n`` terminator, or a Kafka value); ``is_blank`` says whether a line is skipped.
``validate_record`` first tries a *fast path*: msgspec decodes into ``_WireEvent`` and
``_from_wire`` finishes the event, but only when the contract id and the line are already in the
caches ``_valid_contracts`` / ``_valid_lines`` of values proven valid (the default line is always
there). Everything else goes down the *slow path*: ``decode_record`` (size, orjson, UTF-8) and
``validate_object`` (given the raw bytes too, for epoch numbers written more precisely than a
double holds), which alone defines what is valid. Tests force the slow path with empty
caches and the fast path with warm ones.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.engine import validation
from monitor.engine.events import (
    CALL_EVENT_TYPES,
    DEFAULT_LINE,
    MAX_LINE_BYTES,
    STATUS_EVENT_TYPES,
    CallEvent,
    EventType,
)
from monitor.engine.validation import (
    Rejection,
    RejectReason,
    decode_record,
    is_blank,
    validate_object,
    validate_record,
)
from monitor.jsonl import TruncatedLine, iter_lines

SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TS = "2026-01-05T10:15:30.123Z"
TS_MS = 1_767_608_130_123
BASE: dict[str, Any] = {
    "event_id": "e-1",
    "contract_id": "H1234",
    "call_id": "c-1",
    "type": "queued",
    "ts": TS,
}


def dumps(obj: object) -> bytes:
    # json, not orjson: it also writes integers beyond 64 bits.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def with_(**changes: Any) -> dict[str, Any]:
    obj = dict(BASE)
    obj.update(changes)
    return obj


def without(*fields: str) -> dict[str, Any]:
    return {k: v for k, v in BASE.items() if k not in fields}


@contextmanager
def caches(contracts: set[str] | None = None, lines: set[str] | None = None) -> Iterator[None]:
    """Replace the module's valid-value caches (restored afterwards)."""
    with (
        mock.patch.object(validation, "_valid_contracts", set(contracts or ())),
        mock.patch.object(validation, "_valid_lines", {DEFAULT_LINE, *(lines or ())}),
    ):
        yield


@pytest.fixture(autouse=True)
def _isolated_caches() -> Iterator[None]:
    with caches():
        yield


def slow(raw: bytes) -> CallEvent | Rejection:
    """The slow path alone, with empty caches: the definition of validity."""
    with caches():
        decoded = decode_record(raw)
        if isinstance(decoded, Rejection):
            return decoded
        return validate_object(decoded, raw)


class _SlowPathReachedError(Exception):
    pass


def fast_only(raw: bytes) -> CallEvent | Rejection | None:
    """``validate_record`` with the slow path cut off (None: the fast path declined)."""
    with (
        mock.patch.object(validation, "decode_record", side_effect=_SlowPathReachedError),
        mock.patch.object(validation, "validate_object", side_effect=_SlowPathReachedError),
    ):
        try:
            return validate_record(raw)
        except _SlowPathReachedError:
            return None


def both_paths(obj: object) -> CallEvent | Rejection:
    """Validate through both paths (cold and warm caches) and insist they agree."""
    raw = dumps(obj)
    cold = slow(raw)
    with caches():
        via_record_cold = validate_record(raw)
    with caches({"H1234", "R0001", "S9999", "X0000"}, {"pharmacy_help_desk"}):
        via_record_warm = validate_record(raw)
        fast = fast_only(raw)
    assert same_outcome(cold, via_record_cold)
    assert same_outcome(cold, via_record_warm)
    if fast is not None:
        assert same_outcome(cold, fast)
    return cold


def same_outcome(a: CallEvent | Rejection, b: CallEvent | Rejection) -> bool:
    if isinstance(a, Rejection) and isinstance(b, Rejection):
        return (a.reason, a.field) == (b.reason, b.field)
    return type(a) is type(b) and a == b


def assert_rejected(
    result: CallEvent | Rejection, reason: RejectReason, field: str | None = None
) -> Rejection:
    assert isinstance(result, Rejection), f"accepted: {result!r}"
    assert result.reason is reason, result
    assert result.field == field, result
    assert result.detail
    return result


# --- the valid event --------------------------------------------------------------------------


def test_valid_call_event() -> None:
    result = both_paths(BASE)
    assert result == CallEvent("e-1", "H1234", "c-1", EventType.QUEUED, TS_MS, DEFAULT_LINE)
    assert isinstance(result, CallEvent)
    assert result.reason is None


def test_fast_path_is_taken_for_known_contract_and_line() -> None:
    raw = dumps(with_(line="pharmacy_help_desk"))
    assert fast_only(raw) is None  # contract and line not yet proven: fast path declines
    first = validate_record(raw)  # slow path proves and remembers them
    assert isinstance(first, CallEvent)
    assert "H1234" in validation._valid_contracts
    assert "pharmacy_help_desk" in validation._valid_lines
    assert fast_only(raw) == first


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_event_type_accepted(event_type: EventType) -> None:
    result = both_paths(with_(type=event_type.wire_name))
    assert isinstance(result, CallEvent)
    assert result.type is event_type
    # The code drops a (valid) call_id from status events: they concern the whole line.
    assert result.call_id == (None if event_type.is_status else "c-1")


@pytest.mark.parametrize("name", sorted(STATUS_EVENT_TYPES))
@pytest.mark.parametrize("call_id", ["absent", None])
def test_status_events_need_no_call_id(name: str, call_id: str | None) -> None:
    obj = without("call_id") if call_id == "absent" else with_(call_id=None)
    obj["type"] = name
    result = both_paths(obj)
    assert isinstance(result, CallEvent)
    assert result.call_id is None
    assert result.type.is_status


def test_status_event_reason_kept_and_call_event_reason_ignored() -> None:
    down = both_paths(with_(type="service_down", reason="carrier outage"))
    assert isinstance(down, CallEvent)
    assert down.reason == "carrier outage"
    long_reason = both_paths(with_(type="service_down", reason="x" * 1000))
    assert isinstance(long_reason, CallEvent)
    assert long_reason.reason == "x" * 256
    odd = both_paths(with_(type="service_up", reason=42))
    assert isinstance(odd, CallEvent)
    assert odd.reason is None
    call = both_paths(with_(reason="ignored"))
    assert isinstance(call, CallEvent)
    assert call.reason is None


@pytest.mark.parametrize(
    "extra",
    [
        {"agent": "a-7"},
        {"meta": {"nested": [1, 2, {"deep": None}]}},
        {"queue": None, "n": 1.5, "flag": True},
        {"EVENT_ID": 5, "Type": [], "ts_ms": "x"},
        {"": ""},
    ],
)
def test_extra_fields_allowed_and_ignored(extra: dict[str, Any]) -> None:
    result = both_paths({**BASE, **extra})
    assert result == both_paths(BASE)


def test_whitespace_around_the_object_is_allowed() -> None:
    raw = b" \t" + dumps(BASE) + b" \r"
    assert validate_record(raw) == slow(dumps(BASE))


def test_null_line_and_absent_line_mean_member_services() -> None:
    for obj in (BASE, with_(line=None)):
        result = both_paths(obj)
        assert isinstance(result, CallEvent)
        assert result.line == "member_services"


# --- invalid_utf8, too_large, invalid_json, not_object ----------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff",
        b'{"event_id":"e\xff"}',
        dumps(BASE)[:-2] + b'\xc3"}',  # truncated two-byte sequence inside a string
        dumps(with_(agent="x")).replace(b'"x"', b'"\xed\xa0\x80"'),  # encoded surrogate
        dumps(with_(agent="x")).replace(b'"x"', b'"\xc0\xaf"'),  # overlong encoding
        dumps(with_(agent="x")).replace(b'"x"', b'"\xf4\x90\x80\x80"'),  # above U+10FFFF
        b"\xef\xbb" + dumps(BASE),
    ],
)
def test_invalid_utf8(raw: bytes) -> None:
    assert_rejected(validate_record(raw), RejectReason.INVALID_UTF8)
    assert_rejected(slow(raw), RejectReason.INVALID_UTF8)
    # Also when the contract is proven, i.e. when the fast path is eligible: bad bytes in an
    # ignored field must not slip through a decoder that skips unknown fields.
    with caches({"H1234"}):
        assert_rejected(validate_record(raw), RejectReason.INVALID_UTF8)


def _padded(size: int, filler: str = "x") -> bytes:
    """A valid event serialized to exactly ``size`` bytes (padding in an ignored field)."""
    head = dumps(with_(pad=""))
    pad_bytes = len(filler.encode())
    count, rest = divmod(size - len(head), pad_bytes)
    raw = dumps(with_(pad=filler * count + "y" * rest))
    assert len(raw) == size
    return raw


def test_size_limit_is_65536_bytes_inclusive() -> None:
    # The limit is counted on the record's bytes *without* the line terminator: 64 KiB = 65536.
    assert MAX_LINE_BYTES == 65_536
    at_limit = _padded(65_536)
    accepted = validate_record(at_limit)
    assert isinstance(accepted, CallEvent)
    assert accepted == slow(at_limit)
    over = _padded(65_537)
    assert_rejected(validate_record(over), RejectReason.TOO_LARGE)
    assert_rejected(slow(over), RejectReason.TOO_LARGE)


def test_size_is_counted_in_bytes_not_characters() -> None:
    raw = _padded(65_537, filler="é")  # 2 bytes each: far fewer than 65536 characters
    assert len(raw.decode()) < 65_536
    assert_rejected(validate_record(raw), RejectReason.TOO_LARGE)


def test_line_terminator_does_not_count_towards_the_limit() -> None:
    at_limit = _padded(65_536)
    lines = list(iter_lines(io.BytesIO(at_limit + b"\r\n" + at_limit + b"\n" + at_limit)))
    assert [len(line) for line in lines] == [65_536, 65_536, 65_536]
    for line in lines:
        assert isinstance(validate_record(line), CallEvent)


def test_too_large_wins_over_other_problems() -> None:
    assert_rejected(validate_record(b"\xff" * 65_537), RejectReason.TOO_LARGE)
    assert_rejected(validate_record(b"[" * 70_000), RejectReason.TOO_LARGE)
    assert_rejected(validate_record(b" " * 65_537), RejectReason.TOO_LARGE)


def test_truncated_line_reports_its_real_length() -> None:
    line = TruncatedLine(b"{" + b"x" * 70_000, 9_000_000)
    rejection = assert_rejected(validate_record(line), RejectReason.TOO_LARGE)
    assert "9000000" in rejection.detail


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"}",
        b"not json",
        b"{'event_id': 'e'}",
        b'{"event_id":"e",}',
        b'{"event_id" "e"}',
        b"NaN",
        b"Infinity",
        dumps(BASE) + b"x",
        dumps(BASE) + dumps(BASE),
        dumps(BASE)[:-1],
        dumps(BASE).replace(TS.encode(), b"2026\x01"),  # raw control character in a string
        dumps(BASE).replace(b'"c-1"', b'"\\ud800"'),  # lone surrogate escape
        dumps(BASE).replace(b'"c-1"', b'"\\x41"'),
        b"\x00",
        b"\x0b" + dumps(BASE),  # vertical tab is not JSON white space
        b"\xef\xbb\xbf" + dumps(BASE),  # UTF-8 BOM
        dumps(with_(ts=1_700_000_000)).replace(b"1700000000", b"01700000000"),
        dumps(with_(ts=1_700_000_000)).replace(b"1700000000", b"+1700000000"),
        dumps(with_(ts=1_700_000_000)).replace(b"1700000000", b"1700000000."),
        dumps(with_(ts=1_700_000_000)).replace(b"1700000000", b"NaN"),
    ],
)
def test_invalid_json(raw: bytes) -> None:
    assert_rejected(validate_record(raw), RejectReason.INVALID_JSON)
    with caches({"H1234"}):
        assert_rejected(validate_record(raw), RejectReason.INVALID_JSON)


@pytest.mark.parametrize(
    "raw",
    [b"[]", b"[1, 2]", b'"H1234"', b"1", b"1.5", b"-0", b"null", b"true", b"false", b'""'],
)
def test_not_object(raw: bytes) -> None:
    assert_rejected(validate_record(raw), RejectReason.NOT_OBJECT)


def test_array_of_valid_events_is_not_an_object() -> None:
    assert_rejected(validate_record(dumps([BASE])), RejectReason.NOT_OBJECT)
    assert_rejected(validate_object([BASE]), RejectReason.NOT_OBJECT)


def test_deeply_nested_extra_field_never_raises() -> None:
    # "rejection never stops processing": a small (≈10 KB) hostile line must yield a result.
    # Nesting deeper than a parser supports may be rejected as invalid_json (RFC 8259 §9 lets
    # parsers limit depth), but it must not raise out of validate_record.
    for depth in (100, 5_000):
        raw = dumps(BASE)[:-1] + b',"x":' + b"[" * depth + b"]" * depth + b"}"
        with caches({"H1234"}):
            result = validate_record(raw)
        if depth == 100:
            assert result == slow(dumps(BASE))
        else:
            assert isinstance(result, CallEvent) or result.reason is RejectReason.INVALID_JSON


# --- missing_field ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["event_id", "contract_id", "type", "ts", "call_id"])
def test_missing_field(field: str) -> None:
    assert_rejected(both_paths(without(field)), RejectReason.MISSING_FIELD, field)


@pytest.mark.parametrize("field", ["event_id", "contract_id", "type", "ts", "call_id"])
def test_null_counts_as_missing(field: str) -> None:
    # The code's choice (the spec is silent): a JSON null in a required field is "missing".
    assert_rejected(both_paths(with_(**{field: None})), RejectReason.MISSING_FIELD, field)


@pytest.mark.parametrize("name", sorted(CALL_EVENT_TYPES))
def test_call_id_required_for_every_call_event_type(name: str) -> None:
    assert_rejected(
        both_paths({**without("call_id"), "type": name}), RejectReason.MISSING_FIELD, "call_id"
    )


def test_empty_object_reports_the_first_missing_field() -> None:
    assert_rejected(both_paths({}), RejectReason.MISSING_FIELD, "event_id")


# --- invalid_field: event_id and call_id ------------------------------------------------------


@pytest.mark.parametrize("field", ["event_id", "call_id"])
@pytest.mark.parametrize(
    "value", ["", "x" * 129, "é" * 129, "\U0001f600" * 129, 5, 1.5, True, False, [], ["a"], {}]
)
def test_id_invalid(field: str, value: object) -> None:
    assert_rejected(both_paths(with_(**{field: value})), RejectReason.INVALID_FIELD, field)


@pytest.mark.parametrize("field", ["event_id", "call_id"])
@pytest.mark.parametrize("value", ["x", "x" * 128, "é" * 128, "\U0001f600" * 128, " ", "0"])
def test_id_valid_lengths_in_characters(field: str, value: str) -> None:
    result = both_paths(with_(**{field: value}))
    assert isinstance(result, CallEvent)
    assert getattr(result, field) == value


def test_status_event_with_invalid_call_id_rejected() -> None:
    for value in ("", "x" * 129, 7):
        obj = with_(type="service_down", call_id=value)
        assert_rejected(both_paths(obj), RejectReason.INVALID_FIELD, "call_id")


# --- invalid_field: contract_id ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["H1234", "R0001", "S9999", "E0000", "F5555", "X1234", "91234", "H0000"]
)
def test_contract_id_valid(value: str) -> None:
    result = both_paths(with_(contract_id=value))
    assert isinstance(result, CallEvent)
    assert result.contract_id == value


@pytest.mark.parametrize(
    "value",
    [
        "H1234\n",
        "\nH1234",
        " H1234",
        "H1234 ",
        "h1234",
        "H123",
        "H12345",
        "A1234",
        "01234",
        "HH1234",
        "H12a4",
        "",
        "H\u0661\u0662\u0663\u0664",  # Arabic-Indic digits
        "H\uff11\uff12\uff13\uff14",  # fullwidth digits
        "\uff281234",  # fullwidth H
        "H1234\x00",
        12345,
        1.5,
        True,
    ],
)
def test_contract_id_invalid(value: object) -> None:
    assert_rejected(both_paths(with_(contract_id=value)), RejectReason.INVALID_FIELD, "contract_id")


@pytest.mark.parametrize("value", [["H1234"], {"id": "H1234"}, []])
def test_contract_id_container_rejected_not_raised(value: object) -> None:
    # A list/dict contract_id must be a rejection; validation "never raises for bad input".
    assert_rejected(both_paths(with_(contract_id=value)), RejectReason.INVALID_FIELD, "contract_id")


def test_cached_contract_does_not_admit_near_misses() -> None:
    assert isinstance(validate_record(dumps(BASE)), CallEvent)  # caches "H1234"
    assert_rejected(
        validate_record(dumps(with_(contract_id="H1234\n"))),
        RejectReason.INVALID_FIELD,
        "contract_id",
    )


# --- invalid_field: type ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Queued",
        "QUEUED",
        "queued ",
        "hold",
        "call-received",
        "service down",
        1,
        2.0,
        True,
        ["queued"],
        {"queued": 1},
    ],
)
def test_type_invalid(value: object) -> None:
    assert_rejected(both_paths(with_(type=value)), RejectReason.INVALID_FIELD, "type")


# --- invalid_field: line ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["a", "0", "_", "pharmacy_help_desk", "prospective_enrollee", "a" * 32, "z9_" * 10 + "ab"],
)
def test_line_valid(value: str) -> None:
    result = both_paths(with_(line=value))
    assert isinstance(result, CallEvent)
    assert result.line == value


@pytest.mark.parametrize(
    "value",
    [
        "a" * 33,
        "",
        "Member_services",
        "PHARMACY",
        "pharmacy-help-desk",
        "pharmacy help",
        "line\n",
        "line\u0663",  # Arabic-Indic digit
        "line\uff11",  # fullwidth digit
        "caf\u00e9",
        "\u0131",  # dotless i (upper()/lower() tricks)
        5,
        1.5,
        True,
        False,
    ],
)
def test_line_invalid(value: object) -> None:
    assert_rejected(both_paths(with_(line=value)), RejectReason.INVALID_FIELD, "line")


@pytest.mark.parametrize("value", [["member_services"], {"name": "x"}, []])
def test_line_container_rejected_not_raised(value: object) -> None:
    assert_rejected(both_paths(with_(line=value)), RejectReason.INVALID_FIELD, "line")


# --- invalid_field: ts (details in test_timestamps.py) ----------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-05T10:15:30",  # no offset
        "2026-02-30T10:15:30Z",
        "1999-12-31T23:59:59.999Z",
        "2100-01-01T00:00:00Z",
        "",
        True,
        False,
        [TS],
        {"ts": TS},
        946_684_799,
        4_102_444_800,
        4_102_444_799.9995,
        10**30,
        -1,
    ],
)
def test_ts_invalid(value: object) -> None:
    assert_rejected(both_paths(with_(ts=value)), RejectReason.INVALID_FIELD, "ts")


@pytest.mark.parametrize(
    ("raw_ts", "expected"),
    [
        (b"1700000000", 1_700_000_000_000),
        (b"1700000000.0005", 1_700_000_000_001),
        (b"1.7e9", 1_700_000_000_000),
        (b"1.7E+9", 1_700_000_000_000),
        (b"17000000000e-1", 1_700_000_000_000),
        (b"946684800", 946_684_800_000),
        (b"4102444799.999", 4_102_444_799_999),
        (b'"2026-01-05T15:45:30.123+05:30"', TS_MS),
    ],
)
def test_ts_numbers_as_written_in_json(raw_ts: bytes, expected: int) -> None:
    raw = dumps(with_(ts=0)).replace(b'"ts":0', b'"ts":' + raw_ts)
    for result in (validate_record(raw), slow(raw), validate_record(raw)):
        assert isinstance(result, CallEvent)
        assert result.ts_ms == expected


@pytest.mark.parametrize("raw_ts", [b"true", b"false", b"[]", b"{}"])
def test_ts_json_boolean_or_container_is_invalid(raw_ts: bytes) -> None:
    raw = dumps(with_(ts=0)).replace(b'"ts":0', b'"ts":' + raw_ts)
    with caches({"H1234"}):
        assert_rejected(validate_record(raw), RejectReason.INVALID_FIELD, "ts")
    assert_rejected(slow(raw), RejectReason.INVALID_FIELD, "ts")


@pytest.mark.parametrize(
    "raw_ts", [b"100000000000000000000000", b"-100000000000000000000000", b"1e308"]
)
def test_ts_huge_numbers_out_of_range(raw_ts: bytes) -> None:
    raw = dumps(with_(ts=0)).replace(b'"ts":0', b'"ts":' + raw_ts)
    with caches({"H1234"}):
        assert_rejected(validate_record(raw), RejectReason.INVALID_FIELD, "ts")
    assert_rejected(slow(raw), RejectReason.INVALID_FIELD, "ts")


def test_ts_number_overflowing_a_double_is_rejected() -> None:
    # 1e400 is valid JSON grammar but overflows a double: the parser refuses it (RFC 8259 §6
    # lets implementations limit range). Either reason is acceptable; it must be a rejection.
    raw = dumps(with_(ts=0)).replace(b'"ts":0', b'"ts":1e400')
    result = validate_record(raw)
    assert isinstance(result, Rejection)
    assert result.reason in {RejectReason.INVALID_JSON, RejectReason.INVALID_FIELD}


# --- precedence, rejection object ---------------------------------------------------------------


def test_rejection_shape() -> None:
    rejection = validate_object(with_(contract_id="bad"))
    assert isinstance(rejection, Rejection)
    assert rejection.reason == "invalid_field"  # StrEnum: usable as a metric label
    assert rejection.field == "contract_id"
    assert "bad" in rejection.detail
    assert {r.value for r in RejectReason} == {
        "invalid_utf8",
        "too_large",
        "invalid_json",
        "not_object",
        "missing_field",
        "invalid_field",
    }


def test_fields_are_checked_in_a_fixed_order() -> None:
    everything_wrong = {"event_id": "", "contract_id": "x", "type": "x", "ts": "x", "line": "X"}
    assert_rejected(both_paths(everything_wrong), RejectReason.INVALID_FIELD, "event_id")
    everything_wrong["event_id"] = "e"
    assert_rejected(both_paths(everything_wrong), RejectReason.INVALID_FIELD, "contract_id")
    everything_wrong["contract_id"] = "H1234"
    assert_rejected(both_paths(everything_wrong), RejectReason.INVALID_FIELD, "type")
    everything_wrong["type"] = "queued"
    assert_rejected(both_paths(everything_wrong), RejectReason.MISSING_FIELD, "call_id")
    everything_wrong["call_id"] = "c"
    assert_rejected(both_paths(everything_wrong), RejectReason.INVALID_FIELD, "ts")
    everything_wrong["ts"] = TS
    assert_rejected(both_paths(everything_wrong), RejectReason.INVALID_FIELD, "line")
    everything_wrong["line"] = "x"
    assert isinstance(both_paths(everything_wrong), CallEvent)


# --- duplicate keys ---------------------------------------------------------------------------


def test_duplicate_keys_last_one_wins_on_both_paths() -> None:
    # RFC 8259 §4 leaves duplicate names unspecified; both decoders keep the last value.
    raw = b'{"event_id":"a","event_id":"b","contract_id":"H1234","call_id":"c","type":"queued",'
    raw += b'"ts":"bad","ts":1700000000}'
    for result in (slow(raw), validate_record(raw), validate_record(raw)):
        assert isinstance(result, CallEvent)
        assert result.event_id == "b"
        assert result.ts_ms == 1_700_000_000_000
    bad_last = b'{"event_id":"e","contract_id":"H1234","call_id":"c","type":"queued",'
    bad_last += b'"ts":1700000000,"ts":true}'
    for result in (slow(bad_last), validate_record(bad_last), validate_record(bad_last)):
        assert_rejected(result, RejectReason.INVALID_FIELD, "ts")


# --- blank lines ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b" ", b"\t", b"\r", b"\n", b" \t \r\n", b"   \r"])
def test_blank(raw: bytes) -> None:
    assert is_blank(raw)


@pytest.mark.parametrize(
    "raw", [b"{}", b"x", b" x ", b"\x0b", b"\x0c", b"\xc2\xa0", b"\x00", dumps(BASE)]
)
def test_not_blank(raw: bytes) -> None:
    assert not is_blank(raw)
    assert isinstance(validate_record(raw), Rejection | CallEvent)


# --- fast path == slow path (hypothesis) ------------------------------------------------------

CONTRACTS = [
    "H1234",
    "R0001",
    "S9999",
    "X0000",
    "91234",
    "h1234",
    "H123",
    "H12345",
    "A1234",
    "H1234\n",
    "H\u0661234",
    "",
]
LINES = ["member_services", "pharmacy_help_desk", "a" * 32, "a" * 33, "Pharmacy", "", "x-y"]
TYPES = [t.wire_name for t in EventType] + ["Queued", "", "hold"]
TIMES = [
    TS,
    "2026-01-05T15:45:30.1235+05:30",
    "2026-01-05T10:15:30",
    "2000-01-01T00:00:00Z",
    "1999-12-31T23:59:59.999Z",
    "2099-12-31T23:59:59.999Z",
    "2100-01-01T00:00:00.000Z",
    "2026-02-30T00:00:00.000Z",
    "2026-01-05T10:15:60.000Z",
    "2026-01-05T10:15:3\u0660.000Z",
    1_700_000_000,
    1_700_000_000.0005,
    946_684_799.9995,
    4_102_444_800,
    True,
    -1,
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(min_value=-1e300, max_value=1e300),
    st.text(max_size=140),
)
# Values that currently crash validation (see the container and 1e308 tests above).
hostile_scalars = st.one_of(scalars, st.floats(allow_nan=False, allow_infinity=False))


def field_values(pool: list[Any], text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(pool), st.sampled_from(pool), text, scalars)


ids = st.one_of(
    st.text(min_size=1, max_size=8),
    st.text(min_size=126, max_size=130),
    st.sampled_from(["", "e"]),
)


@st.composite
def records(draw: st.DrawFn, hostile: bool = False) -> dict[str, Any]:
    """Valid and near-valid events: fields omitted, types swapped, random strings."""
    odd: st.SearchStrategy[Any] = scalars
    if hostile:
        odd = st.one_of(
            hostile_scalars,
            st.lists(scalars, max_size=2),
            st.dictionaries(st.text(max_size=3), scalars, max_size=2),
        )
    contract_text = st.from_regex(r"[HRSEFX9hA][0-9]{3,5}", fullmatch=True)
    line_text = st.from_regex(r"[a-zA-Z0-9_\-]{0,34}", fullmatch=True)
    fields: dict[str, st.SearchStrategy[Any]] = {
        "event_id": st.one_of(ids, ids, scalars),
        "call_id": st.one_of(ids, ids, scalars),
        "contract_id": st.one_of(field_values(CONTRACTS, contract_text), odd),
        "type": field_values(TYPES, st.text(max_size=24)),
        "ts": st.one_of(field_values(TIMES, st.text(max_size=30)), odd),
        "line": st.one_of(field_values(LINES, line_text), odd),
        "reason": st.one_of(st.text(max_size=300), scalars),
    }
    obj: dict[str, Any] = {}
    for name, strategy in fields.items():
        # Mostly valid values, sometimes a near-miss, sometimes absent.
        choice = draw(st.integers(0, 9))
        if choice == 0:
            continue
        if choice <= 5 and name != "reason":
            obj[name] = {
                "event_id": "e-1",
                "call_id": "c-1",
                "contract_id": "H1234",
                "type": draw(st.sampled_from(TYPES[:12])),
                "ts": draw(st.sampled_from(TIMES[:2] + TIMES[10:12])),
                "line": draw(st.sampled_from([None, "member_services", "pharmacy_help_desk"])),
            }[name]
        else:
            obj[name] = draw(strategy)
    if draw(st.booleans()):
        obj[draw(st.text(max_size=5))] = draw(scalars)
    return obj


def check_paths_agree(obj: dict[str, Any]) -> None:
    raw = dumps(obj)
    truth = slow(raw)
    with caches():
        assert same_outcome(validate_record(raw), truth)  # cold: slow path inside
    warm = {c for c in CONTRACTS if validation.CONTRACT_ID_PATTERN.fullmatch(c)}
    with caches(warm, {"pharmacy_help_desk", "a" * 32}):
        fast = fast_only(raw)
        if fast is not None:
            assert same_outcome(fast, truth), (fast, truth)
        assert same_outcome(validate_record(raw), truth)
        assert same_outcome(validate_record(raw), truth)  # once more, with what it cached


@SETTINGS
@given(records())
@example({**BASE, "type": "service_down", "call_id": None, "reason": "x"})
@example({**BASE, "ts": True})
@example({**BASE, "event_id": "\U0001f600" * 128})
@example({**BASE, "line": None})
def test_fast_and_slow_paths_agree(obj: dict[str, Any]) -> None:
    check_paths_agree(obj)


@SETTINGS
@given(records(hostile=True))
@example({**BASE, "contract_id": ["H1234"]})
@example({**BASE, "line": {"a": 1}})
@example({**BASE, "ts": 1e308})
def test_fast_and_slow_paths_agree_with_hostile_values(obj: dict[str, Any]) -> None:
    check_paths_agree(obj)


@SETTINGS
@given(
    st.recursive(
        hostile_scalars,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.sampled_from([*BASE, "line", "x"]), children, max_size=7)
        ),
        max_leaves=12,
    )
)
def test_any_json_value_gives_a_result(value: Any) -> None:
    raw = dumps(value)
    result = validate_record(raw)
    assert isinstance(result, CallEvent | Rejection)
    assert same_outcome(result, slow(raw))


@SETTINGS
@given(st.binary(max_size=200))
@example(b'{"event_id":"e","contract_id":"H1234","call_id":"c","type":"queued","ts":1.7e9}')
def test_arbitrary_bytes_give_a_result(raw: bytes) -> None:
    with caches({"H1234"}):
        result = validate_record(raw)
    assert isinstance(result, CallEvent | Rejection)
    assert same_outcome(result, slow(raw))
    if isinstance(result, Rejection) and result.reason is RejectReason.INVALID_UTF8:
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")


@SETTINGS
@given(st.sampled_from([BASE, with_(line="pharmacy_help_desk"), with_(ts=1_700_000_000.25)]))
def test_serialization_style_does_not_matter(obj: dict[str, Any]) -> None:
    compact = dumps(obj)
    spaced = json.dumps(obj, indent=2, ensure_ascii=True).replace("\n", " ").encode()
    reordered = dumps(dict(reversed(list(obj.items()))))
    assert validate_record(compact) == validate_record(spaced) == validate_record(reordered)
