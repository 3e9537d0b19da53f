"""Event-time parsing (issue 2, §2 ``ts``): RFC 3339 strings and epoch numbers to integer ms.

Spec: an RFC 3339 string with ``Z`` or a ``±hh:mm`` offset (no offset → rejected), or a JSON
number of Unix epoch seconds (a boolean is not a number); kept as integer milliseconds rounded to
the nearest millisecond; must lie in [2000-01-01, 2100-01-01) UTC.

``parse_rfc3339_ms`` has two paths: a *fast path* for the exact shape
``YYYY-MM-DDTHH:MM:SS.fffZ`` (24 chars) whose ``YYYY-MM-DDTHH:MM`` prefix is already in
``_minute_cache`` (filled only by a successful *slow path* parse of a string with an upper-case
``T``), and the *slow path* (one strict regex plus calendar checks) for everything else. The tests
below control the caches so each path is exercised on purpose, and prove the fast path was taken
by making the slow path's regex unusable while it runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.engine import timestamps
from monitor.engine.timestamps import (
    MAX_TS_MS,
    MIN_TS_MS,
    TimestampError,
    check_range,
    civil_from_days,
    days_from_civil,
    epoch_seconds_to_ms,
    format_ms,
    parse_rfc3339_ms,
)
from monitor.engine.validation import Rejection, RejectReason, validate_object

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ms_of(dt: datetime) -> int:
    """Independent reference: epoch ms of an aware datetime (exact integer arithmetic)."""
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def half_up_ms(fraction_digits: str) -> int:
    """Independent reference: a decimal fraction of a second rounded half up to whole ms."""
    if not fraction_digits:
        return 0
    return written_ms("0." + fraction_digits)


def written_ms(text: str) -> int:
    """Independent reference: a decimal number of seconds, exactly, to ms rounded half up."""
    with localcontext(prec=200):
        return int((Decimal(text) * 1000).quantize(Decimal(1), ROUND_HALF_UP))


@contextmanager
def cold_caches() -> Iterator[None]:
    """Fresh, empty date/minute caches (restored afterwards): the next parse is a slow one."""
    with (
        mock.patch.object(timestamps, "_minute_cache", {}),
        mock.patch.object(timestamps, "_day_cache", {}),
    ):
        yield


class _NoRegex:
    def fullmatch(self, text: str) -> Any:
        raise AssertionError(f"slow path taken for {text!r}")


@contextmanager
def slow_path_forbidden() -> Iterator[None]:
    """Any parse that reaches the slow path fails the test."""
    with mock.patch.object(timestamps, "_RFC3339", _NoRegex()):
        yield


@pytest.fixture(autouse=True)
def _isolated_caches() -> Iterator[None]:
    with cold_caches():
        yield


def ts_of_validated(value: object) -> int | Rejection:
    """The ``ts`` of an otherwise valid event, through the validator (range check included)."""
    result = validate_object(
        {"event_id": "e1", "contract_id": "H1234", "call_id": "c1", "type": "queued", "ts": value}
    )
    if isinstance(result, Rejection):
        return result
    return result.ts_ms


def assert_ts_rejected(value: object) -> None:
    result = ts_of_validated(value)
    assert isinstance(result, Rejection), f"{value!r} accepted as {result!r}"
    assert result.reason is RejectReason.INVALID_FIELD
    assert result.field == "ts"


# --- RFC 3339: offsets and separators ----------------------------------------------------------

T_2026 = 1_767_608_130_000  # 2026-01-05T10:15:30Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-05T10:15:30Z", T_2026),
        ("2026-01-05T10:15:30+00:00", T_2026),
        ("2026-01-05T10:15:30-00:00", T_2026),  # RFC 3339 §4.3: same instant, unknown local
        ("2026-01-05T15:45:30+05:30", T_2026),
        ("2026-01-05T02:15:30-08:00", T_2026),
        ("2026-01-06T00:14:30+13:59", T_2026),
        ("2026-01-04T10:16:30-23:59", T_2026),
        ("2026-01-05T10:15:30.123Z", T_2026 + 123),
        ("2026-01-05T15:45:30.123+05:30", T_2026 + 123),
        # RFC 3339 §5.6 NOTE: "T" and "Z" may be lower case; a space may replace "T".
        ("2026-01-05t10:15:30z", T_2026),
        ("2026-01-05 10:15:30Z", T_2026),
        ("2026-01-05t15:45:30.5+05:30", T_2026 + 500),
    ],
)
def test_rfc3339_offsets(text: str, expected: int) -> None:
    assert parse_rfc3339_ms(text) == expected
    assert ts_of_validated(text) == expected


def test_offset_matches_datetime_reference() -> None:
    for text in ("2026-07-01T23:30:00+05:30", "2026-07-01T01:00:00.250-09:30"):
        assert parse_rfc3339_ms(text) == ms_of(datetime.fromisoformat(text))


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-05T10:15:30",  # no offset
        "2026-01-05T10:15:30.123",  # no offset
        "2026-01-05T10:15:30.123456789",  # no offset
        "2026-01-05",  # date only
        "2026-01-05T10:15Z",  # no seconds
        "2026-01-05T10:15:30+0530",  # offset without colon
        "2026-01-05T10:15:30+05",  # offset without minutes
        "2026-01-05T10:15:30 +05:30",
        "2026-01-05T10:15:30UTC",
        "2026-01-05T10:15:30GMT",
        "2026-01-05T10:15:30.Z",  # secfrac needs at least one digit
        "2026-01-05T10:15:30,5Z",  # comma decimal sign is ISO 8601, not RFC 3339
        "2026-01-05T10:15:30+24:00",  # offset hour 24
        "2026-01-05T10:15:30+05:60",  # offset minute 60
        "2026-1-5T10:15:30Z",
        "26-01-05T10:15:30Z",
        "+2026-01-05T10:15:30Z",
        "2026-01-05_10:15:30Z",
        "20260105T101530Z",  # ISO 8601 basic format is not RFC 3339
        "",
        "Z",
        "now",
    ],
)
def test_rfc3339_malformed_rejected(text: str) -> None:
    with pytest.raises(TimestampError):
        parse_rfc3339_ms(text)
    assert_ts_rejected(text)


def test_missing_offset_message_says_so() -> None:
    with pytest.raises(TimestampError, match="offset"):
        parse_rfc3339_ms("2026-01-05T10:15:30.123")


@pytest.mark.parametrize(
    "text",
    [
        " 2026-01-05T10:15:30.123Z",
        "2026-01-05T10:15:30.123Z ",
        "2026-01-05T10:15:30.123Z\n",
        "\t2026-01-05T10:15:30Z",
        "2026-01-05T10:15:30+05:30\r\n",
        "2026-01-05T10:15:30.123Z\x00",
    ],
)
def test_surrounding_whitespace_rejected(text: str) -> None:
    # Warm the minute cache so a fast-shape string would be eligible for the fast path.
    assert parse_rfc3339_ms("2026-01-05T10:15:00.000Z") == T_2026 - 30_000
    with pytest.raises(TimestampError):
        parse_rfc3339_ms(text)
    assert_ts_rejected(text)


# --- fractional seconds and rounding ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fraction", "millis"),
    [
        ("", 0),
        ("1", 100),
        ("12", 120),
        ("123", 123),
        ("1234", 123),
        ("1235", 124),
        ("12345", 123),
        ("123456", 123),
        ("1234567", 123),
        ("12345678", 123),
        ("123456789", 123),
        ("0005", 1),  # a tie rounds up
        ("0004999", 0),
        ("000499999", 0),
        ("0005000", 1),
        ("0015", 2),
        ("0025", 3),  # half *up*, not half-even
        ("9994", 999),
        ("000000001", 0),
        ("999", 999),
        ("0", 0),
        ("000000000", 0),
        ("5", 500),
        ("0000000000000000000005", 0),  # more than 9 digits: still valid RFC 3339
        ("1234999999999999999999", 123),
    ],
)
def test_fraction_rounding_half_up(fraction: str, millis: int) -> None:
    text = f"2026-01-05T10:15:30{'.' + fraction if fraction else ''}Z"
    assert parse_rfc3339_ms(text) == T_2026 + millis
    text_offset = f"2026-01-05T15:45:30{'.' + fraction if fraction else ''}+05:30"
    assert parse_rfc3339_ms(text_offset) == T_2026 + millis


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-05T10:15:30.9995Z", "2026-01-05T10:15:31.000Z"),
        ("2026-01-05T10:15:59.9995Z", "2026-01-05T10:16:00.000Z"),
        ("2026-01-05T10:59:59.99951Z", "2026-01-05T11:00:00.000Z"),
        ("2026-01-05T23:59:59.9999999Z", "2026-01-06T00:00:00.000Z"),
        ("2026-02-28T23:59:59.9995Z", "2026-03-01T00:00:00.000Z"),
        ("2024-02-28T23:59:59.9995Z", "2024-02-29T00:00:00.000Z"),
        ("2026-12-31T23:59:59.9995Z", "2027-01-01T00:00:00.000Z"),
        ("2026-12-31T18:59:59.999999999-05:00", "2027-01-01T00:00:00.000Z"),
        ("2026-01-01T05:29:59.9995+05:30", "2026-01-01T00:00:00.000Z"),
        ("2026-12-31T23:59:59.9994999Z", "2026-12-31T23:59:59.999Z"),
    ],
)
def test_rounding_carries(text: str, expected: str) -> None:
    assert format_ms(parse_rfc3339_ms(text)) == expected
    assert parse_rfc3339_ms(text) == ms_of(datetime.fromisoformat(expected))


# --- calendar validity ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-30T00:00:00Z",
        "2026-02-29T00:00:00Z",  # 2026 is not a leap year
        "2100-02-29T00:00:00Z",  # 2100 is not a leap year (and out of range)
        "2026-04-31T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-01-05T24:00:00Z",  # RFC 3339 time-hour is 00-23
        "2026-01-05T10:60:00Z",
        "2026-01-05T10:15:61Z",
        "2026-01-05T10:15:99Z",
        "2026-02-30T00:00:00.000Z",  # fast shape, never cached: must be validated
        "2026-02-30T00:00:00+01:00",
    ],
)
def test_invalid_calendar_values_rejected(text: str) -> None:
    with pytest.raises(TimestampError):
        parse_rfc3339_ms(text)
    assert_ts_rejected(text)


@pytest.mark.parametrize(
    "text",
    ["2024-02-29T12:00:00Z", "2000-02-29T12:00:00Z", "2028-02-29T23:59:59.999Z"],
)
def test_leap_days_accepted(text: str) -> None:
    assert parse_rfc3339_ms(text) == ms_of(datetime.fromisoformat(text))


def test_leap_second_lands_on_next_minute() -> None:
    # The code accepts second 60 (RFC 3339 §5.7) and maps it to the next minute's :00; Python's
    # datetime cannot represent it. 2016-12-31T23:59:60Z was a real leap second.
    assert format_ms(parse_rfc3339_ms("2016-12-31T23:59:60Z")) == "2017-01-01T00:00:00.000Z"
    assert format_ms(parse_rfc3339_ms("2016-12-31T23:59:60.5Z")) == "2017-01-01T00:00:00.500Z"
    assert format_ms(parse_rfc3339_ms("2017-01-01T05:29:60+05:30")) == "2017-01-01T00:00:00.000Z"
    # Fast-shape leap second after the minute is cached: must not be read as a sixtieth second.
    parse_rfc3339_ms("2016-12-31T23:59:00.000Z")
    assert format_ms(parse_rfc3339_ms("2016-12-31T23:59:60.250Z")) == "2017-01-01T00:00:00.250Z"


# --- non-ASCII digits -------------------------------------------------------------------------


def _to_script(text: str, zero: str) -> str:
    return "".join(chr(ord(zero) + int(c)) if c.isdigit() else c for c in text)


@pytest.mark.parametrize("zero", ["\u0660", "\u06f0", "\uff10", "\u0966", "\U0001d7ce"])
def test_non_ascii_digits_rejected(zero: str) -> None:
    for text in ("2026-01-05T10:15:30.123Z", "2026-01-05T15:45:30+05:30"):
        whole = _to_script(text, zero)
        with pytest.raises(TimestampError):
            parse_rfc3339_ms(whole)
        assert_ts_rejected(whole)


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-05T10:15:3\u0660.123Z",  # Arabic-Indic zero in the seconds
        "2026-01-05T10:15:30.12\uff13Z",  # fullwidth three in the millis
        "2026-01-05T10:15:\u00b9\u00b2.123Z",  # superscripts: str.isdigit() is True
        "2026-01-05T10:15:30.1_3Z",
        "2026-01-05T10:15:30:123Z",  # wrong separators in the fast path's exact length
        "2026-01-05T10:15:30,123Z",
        "2026-01-05T10:15:30 123Z",
        "2026-01-05T10:15:30.123+",
        "2026-01-05T10:15: 3.123Z",
        "2026-01-05T10:15:-3.123Z",
        "2026-01-05T10:15:+3.123Z",
    ],
)
def test_non_ascii_or_odd_digits_rejected_even_with_cached_minute(text: str) -> None:
    # With "2026-01-05T10:15" cached, these have the fast path's exact shape.
    parse_rfc3339_ms("2026-01-05T10:15:00.000Z")
    assert len(text) == 24
    with pytest.raises(TimestampError):
        parse_rfc3339_ms(text)
    assert_ts_rejected(text)


def test_near_fast_shapes_with_cached_minute_take_the_slow_path_correctly() -> None:
    parse_rfc3339_ms("2026-01-05T10:15:00.000Z")
    assert parse_rfc3339_ms("2026-01-05T10:15:30.123z") == T_2026 + 123
    assert parse_rfc3339_ms("2026-01-05T10:15:30.12Z") == T_2026 + 120
    assert parse_rfc3339_ms("2026-01-05T10:15:30.1234Z") == T_2026 + 123
    assert parse_rfc3339_ms("2026-01-05T10:15:30+00:00") == T_2026


# --- range ------------------------------------------------------------------------------------


def test_range_constants() -> None:
    assert ms_of(datetime(2000, 1, 1, tzinfo=UTC)) == MIN_TS_MS
    assert ms_of(datetime(2100, 1, 1, tzinfo=UTC)) == MAX_TS_MS


@pytest.mark.parametrize(
    ("value", "accepted_ms"),
    [
        ("2000-01-01T00:00:00Z", MIN_TS_MS),
        ("2000-01-01T00:00:00.000Z", MIN_TS_MS),
        ("1999-12-31T23:59:59.999Z", None),
        ("1999-12-31T23:59:59.9994Z", None),
        # Rounded to the nearest ms first, then range-checked: the kept value is in range.
        ("1999-12-31T23:59:59.9995Z", MIN_TS_MS),
        ("2099-12-31T23:59:59.999Z", MAX_TS_MS - 1),
        ("2099-12-31T23:59:59.9994Z", MAX_TS_MS - 1),
        ("2099-12-31T23:59:59.9995Z", None),  # rounds to 2100-01-01T00:00:00.000Z
        ("2100-01-01T00:00:00Z", None),
        ("2100-01-01T00:00:00.000Z", None),
        # Offsets move instants across a bound, whatever the local date says.
        ("2000-01-01T05:30:00+05:30", MIN_TS_MS),
        ("2000-01-01T05:29:59.999+05:30", None),
        ("1999-12-31T19:00:00-05:00", MIN_TS_MS),
        ("1999-12-31T18:59:59.999-05:00", None),
        ("2099-12-31T18:59:59.999-05:00", MAX_TS_MS - 1),
        ("2099-12-31T19:00:00-05:00", None),
        ("2100-01-01T00:59:59.999+01:00", MAX_TS_MS - 1),
        ("2100-01-01T01:00:00+01:00", None),
        ("1999-12-31T23:59:60Z", MIN_TS_MS),  # leap second lands on the lower bound
        ("2099-12-31T23:59:60Z", None),
        ("1970-01-01T00:00:00Z", None),
        ("0000-01-01T00:00:00Z", None),
        ("9999-12-31T23:59:59.999Z", None),
        # Epoch seconds.
        (946_684_800, MIN_TS_MS),
        (946_684_799, None),
        (946_684_800.0, MIN_TS_MS),
        (946_684_799.999, None),
        (946_684_799.9995, MIN_TS_MS),
        (4_102_444_799, MAX_TS_MS - 1000),
        (4_102_444_799.999, MAX_TS_MS - 1),
        (4_102_444_799.9995, None),
        (4_102_444_800, None),
        (4_102_444_800.0, None),
        (0, None),
        (-1, None),
        (-1_700_000_000.5, None),
        (10**20, None),
        (1e300, None),
        (1e308, None),
        (-1e308, None),
        (1.7976931348623157e308, None),
    ],
)
def test_range_bounds(value: str | float, accepted_ms: int | None) -> None:
    result = ts_of_validated(value)
    if accepted_ms is None:
        assert isinstance(result, Rejection)
        assert result.reason is RejectReason.INVALID_FIELD
        assert result.field == "ts"
        if isinstance(value, str):
            with pytest.raises(TimestampError):
                check_range(parse_rfc3339_ms(value))
    else:
        assert result == accepted_ms
        assert check_range(accepted_ms) == accepted_ms


def test_range_bounds_on_the_fast_path() -> None:
    # Cache the two minutes next to the bounds, then check the fast path still range-checks.
    parse_rfc3339_ms("1999-12-31T23:59:00.000Z")
    parse_rfc3339_ms("2099-12-31T23:59:00.000Z")
    parse_rfc3339_ms("2000-01-01T00:00:00.000Z")
    parse_rfc3339_ms("2100-01-01T00:00:00.000Z")
    with slow_path_forbidden():
        assert ts_of_validated("2000-01-01T00:00:00.000Z") == MIN_TS_MS
        assert ts_of_validated("2099-12-31T23:59:59.999Z") == MAX_TS_MS - 1
        assert_ts_rejected("1999-12-31T23:59:59.999Z")
        assert_ts_rejected("2100-01-01T00:00:00.000Z")


# --- epoch numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1_700_000_000, 1_700_000_000_000),
        (1_700_000_000.0, 1_700_000_000_000),
        (1_700_000_000.123, 1_700_000_000_123),
        (1_700_000_000.1234, 1_700_000_000_123),
        (1_700_000_000.0005, 1_700_000_000_001),  # tie: half up
        (1_700_000_000.0015, 1_700_000_000_002),
        (1_700_000_000.0025, 1_700_000_000_003),  # half-even would give ...002
        (1_700_000_000.0004, 1_700_000_000_000),
        (1_700_000_000.00049, 1_700_000_000_000),
        (1_700_000_000.9995, 1_700_000_001_000),
        (1_700_000_000.5, 1_700_000_000_500),
        (1.7e9, 1_700_000_000_000),
        (946_684_800.0005, 946_684_800_001),
        (4_102_444_799.9985, 4_102_444_799_999),
    ],
)
def test_epoch_seconds(seconds: float, expected: int) -> None:
    result = epoch_seconds_to_ms(seconds)
    assert type(result) is int
    assert result == expected
    assert ts_of_validated(seconds) == expected


def test_epoch_number_written_beyond_double_precision() -> None:
    # JSON number 1700000000.00049999999 s is closer to ...000 ms than to ...001 ms; the spec
    # asks for the nearest millisecond. As a double it reads 1700000000.0005 (a tie), so the
    # value must be rounded from the number as written, not from the double's repr.
    from monitor.engine.validation import validate_record

    raw = (
        b'{"event_id":"e","contract_id":"H1234","call_id":"c","type":"queued",'
        b'"ts":1700000000.00049999999}'
    )
    result = validate_record(raw)
    assert not isinstance(result, Rejection)
    assert result.ts_ms == 1_700_000_000_000


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("1700000000.00049999999", 1_700_000_000_000),
        ("1700000000.0004999999999999999999", 1_700_000_000_000),
        ("1700000000.000500000000000000001", 1_700_000_000_001),
        ("1700000000.0005", 1_700_000_000_001),
        ("1700000000.00150000000000000000", 1_700_000_000_002),
        ("4102444799.99949999999", MAX_TS_MS - 1),
        ("946684799.99950000000001", MIN_TS_MS),
        ("946684799.99949999999999", None),
        ("4102444799.9995000000000", None),
        ("17000000000004999999999e-13", 1_700_000_000_000),
        ("1.7000000000005e9", 1_700_000_000_001),
    ],
)
def test_epoch_number_rounded_as_written(written: str, expected: int | None) -> None:
    # The spec keeps the nearest millisecond of the JSON number; near a tie a double cannot
    # tell which side the written number lies on, so the written digits must decide.
    from monitor.engine.validation import validate_record

    raw = (
        b'{"event_id":"e","contract_id":"H1234","call_id":"c","type":"queued","ts":'
        + written.encode()
        + b"}"
    )
    assert epoch_seconds_to_ms(Decimal(written)) == written_ms(written)
    for _ in range(2):  # cold, then with the contract cached (fast path)
        result = validate_record(raw)
        if expected is None:
            assert isinstance(result, Rejection)
            assert result.field == "ts"
        else:
            assert not isinstance(result, Rejection)
            assert result.ts_ms == expected


@st.composite
def long_epoch_texts(draw: st.DrawFn) -> str:
    """Epoch seconds written with up to 30 fraction digits, often a hair from a tie."""
    seconds = draw(st.integers(MIN_TS_MS // 1000 - 1, MAX_TS_MS // 1000))
    millis = f"{draw(st.integers(0, 999)):03d}"
    run = draw(st.integers(0, 26))
    last = draw(st.sampled_from(["", "0", "1", "5", "9"]))
    tail = draw(
        st.sampled_from(
            [
                "5" + "0" * run + last,
                "4" + "9" * run + last,
                draw(st.from_regex(r"[0-9]{0,27}", fullmatch=True)),
            ]
        )
    )
    return f"{seconds}.{millis}{tail}"


@SETTINGS
@given(long_epoch_texts())
@example("1700000000.1234999999999999999")  # 29 significant digits
@example("1700000000.12350000000000000000000001")
def test_epoch_json_numbers_match_decimal_reference(written: str) -> None:
    from monitor.engine import validation

    expected = written_ms(written)
    raw = (
        b'{"event_id":"e","contract_id":"H1234","call_id":"c","type":"queued","ts":'
        + written.encode()
        + b"}"
    )
    with mock.patch.object(validation, "_valid_contracts", set()):
        for _ in range(2):  # cold (slow path), then warm (fast path)
            result = validation.validate_record(raw)
            if MIN_TS_MS <= expected < MAX_TS_MS:
                assert not isinstance(result, Rejection), result
                assert result.ts_ms == expected
            else:
                assert isinstance(result, Rejection)
                assert result.field == "ts"


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("1e400")])
def test_epoch_decimal_non_finite_or_huge_rejected(value: Decimal) -> None:
    with pytest.raises(TimestampError):
        epoch_seconds_to_ms(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_epoch_non_finite_rejected(value: float) -> None:
    with pytest.raises(TimestampError):
        epoch_seconds_to_ms(value)
    assert_ts_rejected(value)


@pytest.mark.parametrize("value", [True, False, None, [1_700_000_000], {"s": 1}, b"x"])
def test_ts_of_other_types_rejected(value: object) -> None:
    result = ts_of_validated(value)
    assert isinstance(result, Rejection)
    if value is None:
        assert result.reason is RejectReason.MISSING_FIELD
    else:
        # A JSON boolean is not a number, even though bool is an int subclass in Python.
        assert result.reason is RejectReason.INVALID_FIELD
    assert result.field == "ts"


@st.composite
def epoch_texts(draw: st.DrawFn) -> str:
    """A decimal epoch-seconds text with at most 15 significant digits (exact as a double)."""
    seconds = draw(st.integers(MIN_TS_MS // 1000 - 5, MAX_TS_MS // 1000 + 5))
    digits = draw(st.integers(0, 5))
    if digits == 0:
        return str(seconds)
    ms_part = draw(st.integers(0, 10**digits - 1))
    if digits >= 4 and draw(st.booleans()):
        ms_part = ms_part - ms_part % 10 ** (digits - 3) + 5 * 10 ** (digits - 4)  # a tie
    return f"{seconds}.{ms_part:0{digits}d}"


@SETTINGS
@given(epoch_texts())
@example("1700000000.0005")
@example("1700000000.0025")
@example("946684799.9995")
@example("4102444799.9995")
def test_epoch_float_matches_decimal_reference(text: str) -> None:
    expected = written_ms(text)
    value: float = int(text) if "." not in text else float(text)
    assert epoch_seconds_to_ms(value) == expected
    result = ts_of_validated(value)
    if MIN_TS_MS <= expected < MAX_TS_MS:
        assert result == expected
    else:
        assert isinstance(result, Rejection)
        assert result.field == "ts"


# --- fast path == slow path == reference (hypothesis) -----------------------------------------


@st.composite
def rfc3339_cases(draw: st.DrawFn, fast_shape: bool = False) -> tuple[str, int]:
    """(text, expected epoch ms) built from an instant, a precision and an offset.

    The expected value comes from datetime arithmetic and a Decimal half-up rounding of the
    fraction digits, never from the code under test.
    """
    utc_seconds = draw(st.integers(MIN_TS_MS // 1000 - 2 * 86_400, MAX_TS_MS // 1000 + 2 * 86_400))
    if fast_shape:
        fraction = f"{draw(st.integers(0, 999)):03d}"
        offset_minutes = 0
        zone = "Z"
    else:
        precision = draw(st.integers(0, 9))
        fraction = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=precision,
                                         max_size=precision)))  # fmt: skip
        if precision > 3 and draw(st.booleans()):
            fraction = fraction[:3] + draw(st.sampled_from(["5", "4", "49", "50", "9999"]))
            fraction = fraction[:9]
        offset_minutes = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
        if offset_minutes == 0:
            zone = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00"]))
        else:
            sign = "+" if offset_minutes > 0 else "-"
            hours, minutes = divmod(abs(offset_minutes), 60)
            zone = f"{sign}{hours:02d}:{minutes:02d}"
    instant = EPOCH + timedelta(seconds=utc_seconds)
    local = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
    separator = "T" if fast_shape else draw(st.sampled_from(["T", "T", "T", "t", " "]))
    text = local.strftime(f"%Y-%m-%d{separator}%H:%M:%S")
    if fraction:
        text += "." + fraction
    text += zone
    return text, ms_of(instant) + half_up_ms(fraction)


def _assert_parses(text: str, expected: int) -> None:
    with cold_caches():
        assert parse_rfc3339_ms(text) == expected  # slow path (nothing cached)
        assert parse_rfc3339_ms(text) == expected  # second parse: caches warm
        result = ts_of_validated(text)
        if MIN_TS_MS <= expected < MAX_TS_MS:
            assert result == expected
        else:
            assert isinstance(result, Rejection)
            assert result.reason is RejectReason.INVALID_FIELD
            assert result.field == "ts"


@SETTINGS
@given(rfc3339_cases())
@example(("2026-01-05T10:15:30.0005Z", T_2026 + 1))
@example(("2026-01-05T10:15:30.0004999Z", T_2026))
@example(("2099-12-31T23:59:59.9995Z", MAX_TS_MS))
@example(("1999-12-31T23:59:59.9995Z", MIN_TS_MS))
def test_slow_path_matches_reference(case: tuple[str, int]) -> None:
    text, expected = case
    _assert_parses(text, expected)


@SETTINGS
@given(rfc3339_cases(fast_shape=True))
@example(("2000-01-01T00:00:00.000Z", MIN_TS_MS))
@example(("2099-12-31T23:59:59.999Z", MAX_TS_MS - 1))
@example(("2024-02-29T23:59:59.999Z", ms_of(datetime(2024, 2, 29, 23, 59, 59, 999_000, UTC))))
def test_fast_path_matches_slow_path_and_reference(case: tuple[str, int]) -> None:
    text, expected = case
    assert len(text) == 24
    with cold_caches():
        slow = parse_rfc3339_ms(text)  # nothing cached: slow path, caches the minute
        assert text[:16] in timestamps._minute_cache
        with slow_path_forbidden():
            fast = parse_rfc3339_ms(text)  # proven fast: the regex would raise
            # A different second/millisecond in the same minute also takes the fast path.
            other = text[:17] + "59.999Z"
            fast_other = parse_rfc3339_ms(other)
        assert slow == fast == expected
        assert fast_other == expected - expected % 60_000 + 59_999


@SETTINGS
@given(rfc3339_cases(), rfc3339_cases(fast_shape=True))
def test_cache_order_does_not_change_results(
    first: tuple[str, int], second: tuple[str, int]
) -> None:
    # Whatever was parsed before (and cached), every parse gives its reference value.
    with cold_caches():
        for text, expected in (first, second, first, second):
            assert parse_rfc3339_ms(text) == expected


def test_offset_string_caches_local_minute_for_z_fast_path() -> None:
    # The slow parse of an offset string caches its *local* minute; a later Z string of that
    # minute on the fast path must still be read as UTC.
    assert parse_rfc3339_ms("2026-01-05T15:45:30+05:30") == T_2026
    assert "2026-01-05T15:45" in timestamps._minute_cache
    with slow_path_forbidden():
        expected = ms_of(datetime(2026, 1, 5, 15, 45, 30, 123_000, UTC))
        assert parse_rfc3339_ms("2026-01-05T15:45:30.123Z") == expected


def test_lower_case_or_space_separator_never_takes_the_fast_path() -> None:
    parse_rfc3339_ms("2026-01-05t10:15:30Z")
    parse_rfc3339_ms("2026-01-05 10:15:30Z")
    assert timestamps._minute_cache == {}


def test_invalid_minute_is_never_cached() -> None:
    for text in ("2026-02-30T10:15:30Z", "2026-01-05T24:15:30Z", "2026-01-05T10:60:30Z"):
        with pytest.raises(TimestampError):
            parse_rfc3339_ms(text)
    assert timestamps._minute_cache == {}


# --- helpers ----------------------------------------------------------------------------------


@SETTINGS
@given(st.integers(MIN_TS_MS - 86_400_000, MAX_TS_MS + 86_400_000))
def test_format_ms_round_trips(ts_ms: int) -> None:
    text = format_ms(ts_ms)
    assert len(text) == 24
    assert (
        text == (EPOCH + timedelta(milliseconds=ts_ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"
    )
    assert parse_rfc3339_ms(text) == ts_ms


@SETTINGS
@given(st.dates())
def test_days_from_civil_matches_datetime(day: Any) -> None:
    days = days_from_civil(day.year, day.month, day.day)
    assert days == (day - EPOCH.date()).days
    assert civil_from_days(days) == (day.year, day.month, day.day)
