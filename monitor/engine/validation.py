"""Validation of raw records against the canonical call event contract (version 1).

A record that breaks the contract becomes a :class:`Rejection` with a reason from a small fixed
set (safe as a metric label) plus the offending field and a human-readable detail. Validation
never raises for bad input: callers dead-letter rejections and carry on.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

import msgspec
import orjson

from monitor.engine.events import (
    DEFAULT_LINE,
    EVENT_TYPES,
    MAX_ID_LENGTH,
    MAX_LINE_BYTES,
    STATUS_EVENT_TYPES,
    CallEvent,
)
from monitor.engine.timestamps import (
    MAX_TS_MS,
    MIN_TS_MS,
    TimestampError,
    epoch_seconds_to_ms,
    is_near_half_ms,
    parse_rfc3339_ms,
)

CONTRACT_ID_PATTERN = re.compile(r"[HRSEFX9][0-9]{4}", re.ASCII)
LINE_PATTERN = re.compile(r"[a-z0-9_]{1,32}", re.ASCII)
_MAX_STATUS_REASON = 256

# Contract ids and line names repeat on almost every event: remember the valid ones so the
# regex runs once per distinct value. Bounded so hostile input cannot grow them forever.
_valid_contracts: set[str] = set()
_valid_lines: set[str] = {DEFAULT_LINE}
_VALID_CACHE_LIMIT = 100_000


_IdText = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]


class _WireEvent(msgspec.Struct, gc=False):
    """Fast-path decoding target: msgspec parses JSON and checks the basic types in C.

    Contract ids, types and lines are then checked against sets of values already proven valid
    (a regex inside msgspec would triple the decoding cost). Anything unproven or refused takes
    the slow path, which finds the precise reason; so the slow path alone defines what is
    valid, and this only has to agree with it on valid input.
    """

    event_id: _IdText
    contract_id: str
    type: str
    ts: str | int | float
    call_id: _IdText | None = None
    line: str | None = None
    reason: Any = None


_decode_wire = msgspec.json.Decoder(_WireEvent).decode
_decode_wire_array = msgspec.json.Decoder(list[_WireEvent]).decode


class RejectReason(StrEnum):
    """Why a record was rejected. Values are stable: they are metric labels and DLQ fields."""

    INVALID_UTF8 = "invalid_utf8"
    TOO_LARGE = "too_large"
    INVALID_JSON = "invalid_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"


class Rejection(NamedTuple):
    reason: RejectReason
    detail: str
    field: str | None = None


def _missing(field: str) -> Rejection:
    return Rejection(RejectReason.MISSING_FIELD, f"required field {field!r} is missing", field)


def _invalid(field: str, detail: str) -> Rejection:
    return Rejection(RejectReason.INVALID_FIELD, f"{field}: {detail}", field)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_id(obj: dict[str, Any], field: str) -> str | Rejection:
    value = obj.get(field)
    if value is None:
        return _missing(field)
    if type(value) is not str:
        return _invalid(field, f"must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        return _invalid(field, f"length {len(value)} is outside 1..{MAX_ID_LENGTH}")
    return value


def _remember(cache: set[str], value: str) -> None:
    if len(cache) >= _VALID_CACHE_LIMIT:
        cache.clear()
    cache.add(value)


def _written_ts(raw: bytes | None) -> Decimal | None:
    """The record's ``ts`` number exactly as written (a double may not hold it)."""
    if raw is None:
        return None
    try:
        obj = json.loads(raw, parse_float=Decimal)
    except (ValueError, RecursionError):
        return None
    value = obj.get("ts") if type(obj) is dict else None
    return value if type(value) is Decimal else None


def _parse_ts(value: Any, raw: bytes | None) -> int | Rejection:
    try:
        if type(value) is str:
            ts_ms = parse_rfc3339_ms(value)
        elif type(value) is int:
            ts_ms = epoch_seconds_to_ms(value)
        elif type(value) is float:
            # Only a number within a rounding hair of a half millisecond needs its written
            # digits; the stdlib re-parse is slow but that case is rare.
            written = _written_ts(raw) if is_near_half_ms(value) else None
            ts_ms = epoch_seconds_to_ms(written if written is not None else value)
        else:
            return _invalid(
                "ts", f"must be an RFC 3339 string or epoch seconds, got {type(value).__name__}"
            )
    except TimestampError as exc:
        return _invalid("ts", f"{exc}: {_describe(value)}")
    if MIN_TS_MS <= ts_ms < MAX_TS_MS:
        return ts_ms
    return _invalid("ts", f"outside [2000-01-01, 2100-01-01) UTC: {_describe(value)}")


def validate_object(obj: Any, raw: bytes | None = None) -> CallEvent | Rejection:
    """Check a decoded JSON value against the contract; return the event or why not.

    ``raw`` is the record the value was decoded from, when there is one: an epoch number on the
    edge of a rounding tie is then rounded from its written digits rather than from a double.
    """
    if type(obj) is not dict:
        return Rejection(RejectReason.NOT_OBJECT, f"expected a JSON object, got {_json_kind(obj)}")

    event_id = _check_id(obj, "event_id")
    if isinstance(event_id, Rejection):
        return event_id

    contract_id = obj.get("contract_id")
    if type(contract_id) is not str or contract_id not in _valid_contracts:
        if contract_id is None:
            return _missing("contract_id")
        if type(contract_id) is not str or CONTRACT_ID_PATTERN.fullmatch(contract_id) is None:
            return _invalid(
                "contract_id", f"{_describe(contract_id)} does not match ^[HRSEFX9][0-9]{{4}}$"
            )
        _remember(_valid_contracts, contract_id)

    type_name = obj.get("type")
    if type_name is None:
        return _missing("type")
    event_type = EVENT_TYPES.get(type_name) if type(type_name) is str else None
    if event_type is None:
        return _invalid("type", f"unknown event type {_describe(type_name)}")

    call_id: str | Rejection | None
    reason: str | None = None
    if event_type.is_status:
        # A status event concerns the whole line; a call_id is optional but must be sane, and
        # it is dropped so that "no call_id" and "status event" stay one and the same.
        if obj.get("call_id") is not None:
            checked = _check_id(obj, "call_id")
            if isinstance(checked, Rejection):
                return checked
        call_id = None
        status_reason = obj.get("reason")
        if type(status_reason) is str:
            reason = status_reason[:_MAX_STATUS_REASON]
    else:
        call_id = _check_id(obj, "call_id")
        if isinstance(call_id, Rejection):
            return call_id

    if "ts" not in obj or obj["ts"] is None:
        return _missing("ts")
    ts_ms = _parse_ts(obj["ts"], raw)
    if isinstance(ts_ms, Rejection):
        return ts_ms

    line = obj.get("line")
    if line is None:
        line = DEFAULT_LINE
    elif type(line) is not str or line not in _valid_lines:
        if type(line) is not str or LINE_PATTERN.fullmatch(line) is None:
            return _invalid("line", f"{_describe(line)} does not match ^[a-z0-9_]{{1,32}}$")
        _remember(_valid_lines, line)

    return CallEvent(event_id, contract_id, call_id, event_type, ts_ms, line, reason)


def _from_wire(wire: _WireEvent, raw: bytes) -> CallEvent | Rejection | None:
    """Finish a fast-path record, or return None to send it down the slow path."""
    event_type = EVENT_TYPES.get(wire.type)
    line = wire.line
    if line is None:
        line = DEFAULT_LINE
    if event_type is None or wire.contract_id not in _valid_contracts or line not in _valid_lines:
        return None
    reason: str | None = None
    call_id = wire.call_id
    if wire.type in STATUS_EVENT_TYPES:
        call_id = None  # as on the slow path: a status event carries no call
        if type(wire.reason) is str:
            reason = wire.reason[:_MAX_STATUS_REASON]
    elif call_id is None:
        return _missing("call_id")
    ts_ms = _parse_ts(wire.ts, raw)
    if type(ts_ms) is Rejection:
        return ts_ms
    return CallEvent(
        wire.event_id,
        wire.contract_id,
        call_id,
        event_type,
        ts_ms,  # type: ignore[arg-type]
        line,
        reason,
    )


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def is_blank(raw: bytes) -> bool:
    """A line holding only white space carries nothing; it is skipped and not counted."""
    return not raw.strip(b" \t\r\n")


def decode_record(raw: bytes) -> Any | Rejection:
    """Size-check and JSON-decode one record (a line or a Kafka value)."""
    if len(raw) > MAX_LINE_BYTES:
        # A reader may hand over only the start of a monstrous line, noting its real length.
        size = getattr(raw, "original_length", len(raw))
        return Rejection(
            RejectReason.TOO_LARGE, f"record of {size} bytes exceeds {MAX_LINE_BYTES} bytes"
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as utf_exc:
            return Rejection(RejectReason.INVALID_UTF8, f"not valid UTF-8: {utf_exc.reason}")
        return Rejection(RejectReason.INVALID_JSON, f"not valid JSON: {exc}")


def validate_array_fast(value: bytes) -> list[CallEvent] | None:
    """Every element of a JSON array (a batch message), decoded in one pass, when all of them
    are valid on the fast path; None when any is not, or when the array is large enough to
    hide an element over the record size limit: then validate element by element, which
    gives the same events for valid input and finds each element's reason otherwise."""
    if len(value) > MAX_LINE_BYTES or not value.isascii():
        return None
    try:
        wires = _decode_wire_array(value)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    events: list[CallEvent] = []
    for wire in wires:
        if type(wire.ts) is float:
            return None  # its written digits may matter; the element path reads them
        event = _from_wire(wire, value)
        if type(event) is not CallEvent:
            return None
        events.append(event)
    return events


def validate_record(raw: bytes) -> CallEvent | Rejection:
    """Validate one non-blank record of raw bytes (without its line terminator)."""
    # msgspec skips unknown fields without checking their bytes, so only pure-ASCII records
    # (nearly all) take the fast path; orjson on the slow path validates UTF-8 throughout.
    if len(raw) <= MAX_LINE_BYTES and raw.isascii():
        try:
            wire = _decode_wire(raw)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            pass  # the slow path finds the precise reason
        else:
            event = _from_wire(wire, raw)
            if event is not None:
                return event
    decoded = decode_record(raw)
    if type(decoded) is Rejection:
        return decoded
    return validate_object(decoded, raw)
