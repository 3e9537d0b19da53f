"""Issue 2 §7: the engine's results after any prefix of a stream equal a batch computation.

The reference here is written straight from the issue text (§2 duplicates, §3 per-call facts,
§4 daily figures) and shares no code with ``monitor.engine.calls`` or ``aggregates``: it keeps
every accepted event of a call and answers each rule by scanning them, and it decides every
compliance flag with exact rational arithmetic. Events reach the engine the way ``monitor
report`` and the workers feed it: ``validate_record`` on raw JSON lines (then ``apply`` or
``reject``), or already-validated ``CallEvent`` objects through ``apply``.

Spec ambiguity: when several arrival-defining events share the earliest time with different
lines, §3 does not say whose line the call takes; since §3 derives the facts "in any arrival
order", the reference takes the alphabetically first of those lines (the engine's documented
rule), so a call's line never depends on arrival order.
"""

from __future__ import annotations

import gzip
import itertools
import math
import tempfile
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.engine import (
    CallEvent,
    ComplianceEngine,
    Contract,
    ContractRegistry,
    DailyFigures,
    EventType,
    Rejection,
    validate_record,
)
from monitor.report import report_document, run_report
from tests.spec import CALL_TYPES, STATUS_TYPES

# -- the world of the generated streams -------------------------------------------------------

# contract -> (parent_org, IANA zone). Zones with 45- and 30-minute offsets, half-hour DST
# (Lord Howe), DST on both hemispheres; X9999 is deliberately not in the registry.
REGISTRY: dict[str, tuple[str | None, str]] = {
    "H1234": ("Acme Health", "America/Los_Angeles"),
    "R0007": ("Himalaya Care", "Asia/Kathmandu"),
    "S4242": (None, "Australia/Lord_Howe"),
    "E0815": ("Chatham Mutual", "Pacific/Chatham"),
}
UNLISTED = "X9999"
DEFAULT_ZONE = "America/New_York"  # §4: the zone of a contract that is not listed
DEFAULT_LINE = "member_services"  # §2: absent or null line
CONTRACTS = [*REGISTRY, UNLISTED]


# Local midnights are anchored on these dates: ordinary days, DST changes on both hemispheres
# (US 2026-03-08 / 2026-11-01, Australia and NZ 2026-04-05 / 2026-09-27 / 2026-10-04), a leap
# day and a year end.
ANCHOR_DATES = [
    "2026-01-05",
    "2026-03-08",
    "2026-04-05",
    "2026-09-27",
    "2026-10-04",
    "2026-11-01",
    "2024-02-29",
    "2025-12-31",
]
# Offsets of a call's events from the call's base time: differences between two of them land
# exactly on, one before and one after the 30 s, 420 s and 480 s limits.
BOUNDARY_OFFSETS = [0, -1, 1, 29_999, 30_000, 30_001, 419_999, 420_000, 420_001]
BOUNDARY_OFFSETS += [479_999, 480_000, 480_001, -30_000]

# (earlier event, later event, limit in ms): the gaps §3 compares with its limits.
LIMITED_PAIRS = [
    ("queued", "answered", 30_000),
    ("call_received", "answered", 30_000),
    ("tty_requested", "tty_connected", 420_000),
    ("interpreter_requested", "interpreter_connected", 480_000),
]

ABSENT = "<absent>"  # a spec's line that is left out of the JSON object
LINES = [ABSENT, None, DEFAULT_LINE, "pharmacy_help_desk", "prospective_enrollee"]

ANSWER_LIMIT_MS = 30_000
TTY_LIMIT_MS = 420_000
INTERPRETER_LIMIT_MS = 480_000
HOLD_LIMIT = Fraction(120)  # seconds
ANSWER_RATIO_TARGET = Fraction(4, 5)
DISCONNECT_RATE_LIMIT = Fraction(5, 100)


def zone_name(contract_id: str) -> str:
    return REGISTRY[contract_id][1] if contract_id in REGISTRY else DEFAULT_ZONE


def parent_org(contract_id: str) -> str | None:
    return REGISTRY[contract_id][0] if contract_id in REGISTRY else None


def engine_registry() -> ContractRegistry:
    return ContractRegistry(Contract(c, org, tz) for c, (org, tz) in REGISTRY.items())


def local_midnight_ms(date: str, zone: str) -> int:
    local = datetime.fromisoformat(date).replace(tzinfo=ZoneInfo(zone))
    return round(local.timestamp() * 1000)


# -- event specs and their encodings -----------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One input record as the test means it; ``invalid`` says why the JSON breaks §2."""

    event_id: str
    contract_id: str
    call_id: str | None
    type: str
    ts_ms: int
    line: str | None  # a line name, None (JSON null) or ABSENT
    invalid: str | None = None


# How a record is fed: as a CallEvent object (None) or as a JSON line with this ts encoding.
Encoding = str | None
Item = tuple[Spec, Encoding]
TS_ENCODINGS = ["z", "offset", "epoch", "half_up"]


def effective_line(spec: Spec) -> str:
    return DEFAULT_LINE if spec.line in (None, ABSENT) else spec.line  # type: ignore[return-value]


def utc_of(ts_ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms)


def rfc3339(ts_ms: int, offset_minutes: int, extra_digit: str = "") -> str:
    local = utc_of(ts_ms) + timedelta(minutes=offset_minutes)
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + f".{local.microsecond // 1000:03d}{extra_digit}"
    if offset_minutes == 0:
        return text + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


def encode_ts(ts_ms: int, encoding: str) -> Any:
    if encoding == "z":
        return rfc3339(ts_ms, 0)
    if encoding == "offset":  # a non-UTC offset picked from the ms so it varies
        return rfc3339(ts_ms, [345, -210, 840, -720, 60][ts_ms % 5])
    if encoding == "epoch":
        return ts_ms // 1000 if ts_ms % 1000 == 0 else ts_ms / 1000
    # "half_up": one ms earlier plus a fourth fraction digit 5, which rounds up to ts_ms.
    return rfc3339(ts_ms - 1, -300, extra_digit="5")


def to_json(spec: Spec, encoding: str) -> bytes:
    record: dict[str, Any] = {"event_id": spec.event_id, "contract_id": spec.contract_id}
    if spec.call_id is not None:
        record["call_id"] = spec.call_id
    record["type"] = spec.type
    record["ts"] = encode_ts(spec.ts_ms, encoding)
    if spec.line != ABSENT:
        record["line"] = spec.line
    record["note"] = {"ignored": True}  # §2: other fields are allowed and ignored
    if spec.invalid == "no_call_id":
        record.pop("call_id", None)
    elif spec.invalid == "bad_contract":
        record["contract_id"] = "Z" + spec.contract_id[1:]
    elif spec.invalid == "naive_ts":
        record["ts"] = rfc3339(spec.ts_ms, 0)[:-1]
    elif spec.invalid == "bad_line":
        record["line"] = "Bad-Line"
    elif spec.invalid == "bad_type":
        record["type"] = "transferred"
    elif spec.invalid == "bool_ts":
        record["ts"] = True
    return orjson.dumps(record)


def to_event(spec: Spec) -> CallEvent:
    return CallEvent(
        spec.event_id,
        spec.contract_id,
        spec.call_id,
        EventType[spec.type.upper()],
        spec.ts_ms,
        effective_line(spec),
    )


def feed(engine: ComplianceEngine, item: Item) -> None:
    """Feed one record as ``monitor report`` does: validate raw bytes, then apply or reject."""
    spec, encoding = item
    if encoding is None:
        assert spec.invalid is None
        engine.apply(to_event(spec))
        return
    validated = validate_record(to_json(spec, encoding))
    if isinstance(validated, Rejection):
        assert spec.invalid is not None, (spec, encoding, validated)
        engine.reject(validated.reason)
        return
    assert spec.invalid is None, (spec, encoding, validated)
    assert validated.event_id == spec.event_id
    assert validated.contract_id == spec.contract_id
    if spec.type in STATUS_TYPES:
        assert validated.call_id is None  # a status event is not a call event, whatever it says
    else:
        assert validated.call_id == spec.call_id
    assert validated.type.wire_name == spec.type
    assert validated.ts_ms == spec.ts_ms, (spec, encoding, to_json(spec, encoding))
    assert validated.line == effective_line(spec)
    engine.apply(validated)


# -- the brute-force reference, from the issue text --------------------------------------------


@dataclass
class Reference:
    rows: list[dict[str, Any]]
    duplicates: int
    rejected: int
    accepted: int
    status_events: int
    clock_skew_calls: int


def earliest(events: list[Spec], kind: str) -> int | None:
    times = [e.ts_ms for e in events if e.type == kind]
    return min(times) if times else None


def local_date(contract_id: str, ts_ms: int) -> str:
    return utc_of(ts_ms).astimezone(ZoneInfo(zone_name(contract_id))).date().isoformat()


def brute_force(specs: list[Spec]) -> Reference:
    seen: set[str] = set()
    duplicates = rejected = status_events = 0
    calls: dict[tuple[str, str], list[Spec]] = {}
    for spec in specs:
        if spec.invalid is not None:
            rejected += 1  # a rejected record does not claim its event_id
            continue
        if spec.event_id in seen:
            duplicates += 1  # the first valid event in input order wins, whatever the content
            continue
        seen.add(spec.event_id)
        if spec.type in STATUS_TYPES:
            status_events += 1  # no effect on call figures
            continue
        assert spec.call_id is not None
        calls.setdefault((spec.contract_id, spec.call_id), []).append(spec)

    days: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    skew_calls = 0
    for (contract_id, _call_id), events in calls.items():
        # §3 arrival: earliest call_received, else earliest event of any type; the line is
        # that event's line (the alphabetically first among events sharing that time).
        received = [e for e in events if e.type == "call_received"]
        candidates = received or events
        arrival = min(e.ts_ms for e in candidates)
        line = min(effective_line(e) for e in candidates if e.ts_ms == arrival)
        queued = earliest(events, "queued")
        answered_at = earliest(events, "answered")
        requested_live = queued is not None or answered_at is not None
        hold_start = queued if queued is not None else arrival
        answered = answered_at is not None
        hold = 0
        if answered_at is not None:
            gap = answered_at - hold_start
            if gap < 0:
                skew_calls += 1
            hold = max(0, gap)
        tty_req = earliest(events, "tty_requested")
        tty_conn = earliest(events, "tty_connected")
        int_req = earliest(events, "interpreter_requested")
        int_conn = earliest(events, "interpreter_connected")
        facts = {
            "requested_live": requested_live,
            "answered": answered,
            "within_30s": answered and hold <= ANSWER_LIMIT_MS,
            "hold_ms": hold,
            "disconnected": earliest(events, "disconnected") is not None,
            "tty": tty_req is not None,
            "tty_ok": tty_req is not None
            and tty_conn is not None
            and tty_conn - tty_req <= TTY_LIMIT_MS,
            "interpreter": int_req is not None,
            "interpreter_ok": int_req is not None
            and int_conn is not None
            and int_conn - int_req <= INTERPRETER_LIMIT_MS,
        }
        key = (contract_id, line, local_date(contract_id, arrival))
        days[key].append(facts)

    rows = [daily_row(key, facts) for key, facts in sorted(days.items())]
    return Reference(rows, duplicates, rejected, len(seen), status_events, skew_calls)


def daily_row(key: tuple[str, str, str], calls: list[dict[str, Any]]) -> dict[str, Any]:
    def count(name: str) -> int:
        return sum(1 for c in calls if c[name])

    received, queued, answered = len(calls), count("requested_live"), count("answered")
    within, disconnected = count("within_30s"), count("disconnected")
    ratio = Fraction(within, queued) if queued else None
    avg_hold = (
        Fraction(sum(c["hold_ms"] for c in calls if c["answered"]), answered * 1000)
        if answered
        else None
    )
    rate = Fraction(disconnected, received)
    contract_id, line, date = key
    return {
        "contract_id": contract_id,
        "line": line,
        "date": date,
        "parent_org": parent_org(contract_id),
        "calls_received": received,
        "calls_queued": queued,
        "calls_answered": answered,
        "answered_within_30s": within,
        "answered_within_30s_ratio": None if ratio is None else float(ratio),
        "avg_hold_seconds": None if avg_hold is None else float(avg_hold),
        "calls_disconnected": disconnected,
        "disconnect_rate": float(rate),
        "tty_calls": count("tty"),
        "tty_connected_within_7m": count("tty_ok"),
        "interpreter_calls": count("interpreter"),
        "interpreter_connected_within_8m": count("interpreter_ok"),
        "compliant_hold": None if avg_hold is None else avg_hold <= HOLD_LIMIT,
        "compliant_answer": None if ratio is None else ratio >= ANSWER_RATIO_TARGET,
        "compliant_disconnect": rate <= DISCONNECT_RATE_LIMIT,
    }


# -- comparison ---------------------------------------------------------------------------------


def as_dicts(rows: list[DailyFigures]) -> list[dict[str, Any]]:
    return [row.as_dict() for row in rows]


def assert_rows_equal(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Same rows, in the same order; ints, strings and flags exact, floats to 1e-12."""
    actual_keys = [(r["contract_id"], r["line"], r["date"]) for r in actual]
    expected_keys = [(r["contract_id"], r["line"], r["date"]) for r in expected]
    assert actual_keys == expected_keys
    for got, want in zip(actual, expected, strict=True):
        assert list(got) == list(want), "row fields differ"
        for name, value in want.items():
            found = got[name]
            where = f"{name} of {got['contract_id']}/{got['line']}/{got['date']}"
            if isinstance(value, float):
                assert isinstance(found, float), f"{where}: {found!r} != {value!r}"
                assert math.isclose(found, value, rel_tol=1e-12), f"{where}: {found} != {value}"
            else:
                assert type(found) is type(value), f"{where}: {found!r} != {value!r}"
                assert found == value, f"{where}: {found!r} != {value!r}"


def assert_matches(engine: ComplianceEngine, specs: list[Spec]) -> None:
    reference = brute_force(specs)
    assert_rows_equal(as_dicts(engine.rows()), reference.rows)
    stats = engine.sync_stats()
    assert stats.duplicates == reference.duplicates
    assert stats.rejected_total == reference.rejected
    assert stats.accepted == reference.accepted
    assert stats.status_events == reference.status_events
    assert engine.clock_skew_calls == reference.clock_skew_calls


def specs_of(items: list[Item]) -> list[Spec]:
    return [spec for spec, _ in items]


# -- strategies ----------------------------------------------------------------------------------

offsets = st.one_of(
    st.sampled_from(BOUNDARY_OFFSETS),
    st.sampled_from(BOUNDARY_OFFSETS),
    st.integers(-600_000, 1_200_000),
)


@st.composite
def base_times(draw: st.DrawFn, contract_id: str) -> int:
    """An instant near a local midnight, usually of the contract's own zone."""
    zone = draw(st.sampled_from([zone_name(contract_id)] * 3 + [tz for _, tz in REGISTRY.values()]))
    anchor = local_midnight_ms(draw(st.sampled_from(ANCHOR_DATES)), zone)
    near = draw(st.one_of(st.sampled_from([0, -1, 1, -30_000, -420_000]), offsets))
    return anchor + near


@st.composite
def streams(draw: st.DrawFn, max_calls: int = 6) -> list[Item]:
    """Random events of a few calls, shuffled, with duplicate ids and rejected records."""
    specs: list[Spec] = []
    serial = 0

    def next_id() -> str:
        nonlocal serial
        serial += 1
        return f"e{serial}"

    for _ in range(draw(st.integers(1, max_calls))):
        contract_id = draw(st.sampled_from(CONTRACTS))
        call_id = draw(st.sampled_from(["c1", "c2", "c3"]))  # calls may share an id
        base = draw(base_times(contract_id))
        call_line = draw(st.sampled_from(LINES))
        for _ in range(draw(st.integers(1, 6))):
            line = draw(st.one_of(st.just(call_line), st.sampled_from(LINES)))
            kind = draw(st.sampled_from(CALL_TYPES))
            specs.append(Spec(next_id(), contract_id, call_id, kind, base + draw(offsets), line))
        for _ in range(draw(st.integers(0, 2))):
            # A pair whose gap sits on a limit of §3, one ms under it or one ms over it.
            first, second, limit = draw(st.sampled_from(LIMITED_PAIRS))
            start = base + draw(offsets)
            gap = limit + draw(st.sampled_from([-1, 0, 1]))
            specs.append(Spec(next_id(), contract_id, call_id, first, start, call_line))
            specs.append(Spec(next_id(), contract_id, call_id, second, start + gap, call_line))
    for _ in range(draw(st.integers(0, 2))):
        # Status events, some carrying a call_id of a call (§2: needed by none, no effect).
        contract_id = draw(st.sampled_from(CONTRACTS))
        kind = draw(st.sampled_from(STATUS_TYPES))
        ts = draw(base_times(contract_id))
        call_id = draw(st.sampled_from([None, None, "c1"]))
        line = draw(st.sampled_from(LINES))
        specs.append(Spec(next_id(), contract_id, call_id, kind, ts, line))
    specs = draw(st.permutations(specs))

    for _ in range(draw(st.integers(0, 4))):
        # A repeated event_id: the same record again, or other content under the same id.
        source = draw(st.sampled_from(specs))
        if draw(st.booleans()):
            contract_id = draw(st.sampled_from(CONTRACTS))
            source = replace(
                source,
                contract_id=contract_id,
                call_id=draw(st.sampled_from(["c1", "c2", "c3"])),
                type=draw(st.sampled_from(CALL_TYPES)),
                ts_ms=draw(base_times(contract_id)),
                line=draw(st.sampled_from(LINES)),
            )
        specs.insert(draw(st.integers(0, len(specs))), source)

    for _ in range(draw(st.integers(0, 2))):
        # A rejected record, fresh id or one a valid event uses (it must not claim the id).
        source = draw(st.sampled_from(specs))
        reason = draw(
            st.sampled_from(
                ["no_call_id", "bad_contract", "naive_ts", "bad_line", "bad_type", "bool_ts"]
            )
        )
        if reason == "no_call_id" and source.type in STATUS_TYPES:
            reason = "bad_contract"
        event_id = source.event_id if draw(st.booleans()) else f"bad{next_id()}"
        bad = replace(source, event_id=event_id, invalid=reason)
        specs.insert(draw(st.integers(0, len(specs))), bad)

    items: list[Item] = []
    for spec in specs:
        # Only validation turns a record into a CallEvent; it gives status events no call_id.
        must_be_json = spec.invalid is not None or (
            spec.type in STATUS_TYPES and spec.call_id is not None
        )
        as_json = must_be_json or draw(st.booleans())
        items.append((spec, draw(st.sampled_from(TS_ENCODINGS)) if as_json else None))
    return items


def unique_ids(items: list[Item]) -> list[Item]:
    """The stream without rejected records and repeated event ids (first kept)."""
    seen: set[str] = set()
    kept: list[Item] = []
    for spec, encoding in items:
        if spec.invalid is None and spec.event_id not in seen:
            seen.add(spec.event_id)
            kept.append((spec, encoding))
    return kept


SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- properties ----------------------------------------------------------------------------------


@SETTINGS
@given(streams())
def test_incremental_equals_brute_force_after_every_prefix(items: list[Item]) -> None:
    """(a) Fed one event at a time, the engine's rows equal a batch over each prefix."""
    engine = ComplianceEngine(engine_registry(), incremental=True)
    specs = specs_of(items)
    for n, item in enumerate(items, 1):
        feed(engine, item)
        assert_matches(engine, specs[:n])


@SETTINGS
@given(streams(), st.randoms(use_true_random=False))
def test_shuffled_order_gives_the_same_rows(items: list[Item], rng: Any) -> None:
    """(b) Any arrival order gives the same rows when event ids are unique."""
    items = unique_ids(items)
    shuffled = items[:]
    rng.shuffle(shuffled)
    engines = []
    for order in (items, shuffled):
        engine = ComplianceEngine(engine_registry(), incremental=True)
        for item in order:
            feed(engine, item)
        assert_matches(engine, specs_of(order))
        engines.append(engine)
    assert as_dicts(engines[0].rows()) == as_dicts(engines[1].rows())


@SETTINGS
@given(streams(), st.randoms(use_true_random=False))
def test_duplicated_and_shuffled_stream_matches_brute_force_in_its_order(
    items: list[Item], rng: Any
) -> None:
    """(b, e) With repeated ids, the first valid one in input order wins, in every order."""
    shuffled = items[:]
    rng.shuffle(shuffled)
    engine = ComplianceEngine(engine_registry(), incremental=True)
    for item in shuffled:
        feed(engine, item)
    assert_matches(engine, specs_of(shuffled))


@SETTINGS
@given(streams(), st.sets(st.integers(1, 40), max_size=6))
def test_deferred_equals_incremental(items: list[Item], read_after: set[int]) -> None:
    """(c) Deferred (batch) mode equals incremental mode, including reads mid-stream."""
    incremental = ComplianceEngine(engine_registry(), incremental=True)
    deferred = ComplianceEngine(engine_registry(), incremental=False)
    specs = specs_of(items)
    for n, item in enumerate(items, 1):
        feed(incremental, item)
        feed(deferred, item)
        if n in read_after:  # reading rows mid-stream must not freeze the deferred figures
            assert_rows_equal(as_dicts(deferred.rows()), as_dicts(incremental.rows()))
            assert_matches(deferred, specs[:n])
    assert_rows_equal(as_dicts(deferred.rows()), as_dicts(incremental.rows()))
    assert_matches(deferred, specs)
    assert deferred.stats.duplicates == incremental.stats.duplicates
    assert deferred.stats.rejected == incremental.stats.rejected
    assert deferred.clock_skew_calls == incremental.clock_skew_calls


def write_inputs(directory: Path, items: list[Item], cuts: list[int], *, noise: bool) -> list[str]:
    """The stream as JSONL files split at ``cuts``; the second file is gzipped."""
    bounds = [0, *sorted(cuts), len(items)]
    names: list[str] = []
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        lines: list[bytes] = []
        for position, (spec, encoding) in enumerate(items[start:end]):
            raw = to_json(spec, encoding or "z")
            ending = b"\r\n" if noise and position % 2 else b"\n"
            if noise and position % 3 == 0:
                lines.append(b"  \t" + ending)  # §2: blank lines are skipped, not counted
            lines.append(raw + ending)
        data = b"".join(lines)
        path = directory / f"part{index}.jsonl"
        if index == 1:
            path = path.with_suffix(".jsonl.gz")
            path.write_bytes(gzip.compress(data))
        else:
            path.write_bytes(data)
        names.append(str(path))
    return names


def write_registry_csv(path: Path) -> None:
    rows = ["contract_id,name,parent_org,timezone"]
    rows += [f"{c},Plan {c},{org or ''},{tz}" for c, (org, tz) in REGISTRY.items()]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


@SETTINGS
@given(streams(), st.lists(st.integers(0, 40), max_size=4), st.booleans())
def test_split_inputs_equal_one_pass(items: list[Item], cuts: list[int], noise: bool) -> None:
    """(d) ``monitor report`` over the stream split into several inputs equals one pass."""
    cuts = [min(cut, len(items)) for cut in cuts]
    reference = brute_force(specs_of(items))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        registry_csv = directory / "contracts.csv"
        write_registry_csv(registry_csv)
        registry = ContractRegistry.from_csv(registry_csv)
        (directory / "split").mkdir()
        (directory / "whole").mkdir()
        split = write_inputs(directory / "split", items, cuts, noise=noise)
        whole = write_inputs(directory / "whole", items, [], noise=False)
        split_doc = report_document(run_report(split, registry))
        whole_doc = report_document(run_report(whole, registry))
    assert split_doc == whole_doc
    assert_rows_equal(split_doc["rows"], reference.rows)
    assert split_doc["duplicate_events"] == reference.duplicates
    assert split_doc["rejected_events"] == reference.rejected


@SETTINGS
@given(streams(), st.lists(st.integers(0, 40), max_size=5))
def test_chunked_feeding_with_reads_between_chunks(items: list[Item], cuts: list[int]) -> None:
    """(d) Chunks fed in separate passes, rows read between them, equal a single pass."""
    bounds = [0, *sorted(min(c, len(items)) for c in cuts), len(items)]
    chunked = ComplianceEngine(engine_registry(), incremental=False)
    single = ComplianceEngine(engine_registry(), incremental=False)
    for item in items:
        feed(single, item)
    specs = specs_of(items)
    for start, end in itertools.pairwise(bounds):
        for item in items[start:end]:
            feed(chunked, item)
        assert_matches(chunked, specs[:end])
    assert as_dicts(chunked.rows()) == as_dicts(single.rows())


@SETTINGS
@given(streams(max_calls=3), st.integers(1, 5))
def test_whole_stream_replayed_counts_every_repeat_as_duplicate(
    items: list[Item], times: int
) -> None:
    """(e) Replaying the stream again changes nothing but the duplicate count."""
    engine = ComplianceEngine(engine_registry(), incremental=True)
    for item in items:
        feed(engine, item)
    once = as_dicts(engine.rows())
    first = brute_force(specs_of(items))
    for _ in range(times):
        for item in items:
            feed(engine, item)
    assert as_dicts(engine.rows()) == once
    valid = sum(1 for spec, _ in items if spec.invalid is None)
    assert engine.stats.duplicates == first.duplicates + times * valid
    assert engine.stats.rejected_total == (times + 1) * first.rejected
    assert_matches(engine, specs_of(items) * (times + 1))


# -- thresholds on a busy day --------------------------------------------------------------------


@st.composite
def busy_days(draw: st.DrawFn) -> list[Item]:
    """One contract and day with up to 45 calls, so each ratio can sit on its threshold."""
    contract_id = draw(st.sampled_from(CONTRACTS))
    start = local_midnight_ms("2026-01-05", zone_name(contract_id)) + 3_600_000
    holds = st.sampled_from([0, 29_999, 30_000, 30_001, 119_999, 120_000, 120_001, 240_000])
    items: list[Item] = []
    for n in range(draw(st.integers(1, 45))):
        call_id, base = f"b{n}", start + n * 1000
        kinds = ["call_received"]
        if draw(st.booleans()):
            kinds.append("queued")
        specs = [Spec(f"{call_id}-{k}", contract_id, call_id, k, base, None) for k in kinds]
        if draw(st.booleans()):
            specs.append(
                Spec(f"{call_id}-a", contract_id, call_id, "answered", base + draw(holds), None)
            )
        if draw(st.integers(0, 9)) == 0:
            specs.append(Spec(f"{call_id}-d", contract_id, call_id, "disconnected", base, None))
        items += [(spec, None) for spec in specs]
    return draw(st.permutations(items))


@SETTINGS
@given(busy_days())
def test_busy_day_figures_and_flags_equal_brute_force(items: list[Item]) -> None:
    incremental = ComplianceEngine(engine_registry(), incremental=True)
    deferred = ComplianceEngine(engine_registry(), incremental=False)
    for item in items:
        feed(incremental, item)
        feed(deferred, item)
    assert_matches(incremental, specs_of(items))
    assert_matches(deferred, specs_of(items))


def day_with(n_calls: int, n_disconnected: int, holds_ms: list[int]) -> list[Item]:
    """n calls on one day; the first len(holds) are queued and answered after those holds."""
    base = local_midnight_ms("2026-01-05", DEFAULT_ZONE) + 3_600_000
    items: list[Item] = []
    for n in range(n_calls):
        ts = base + n * 60_000
        items.append((Spec(f"r{n}", UNLISTED, f"k{n}", "call_received", ts, None), "z"))
        if n < len(holds_ms):
            items.append((Spec(f"q{n}", UNLISTED, f"k{n}", "queued", ts, None), "epoch"))
            answered = Spec(f"a{n}", UNLISTED, f"k{n}", "answered", ts + holds_ms[n], None)
            items.append((answered, "offset"))
        if n < n_disconnected:
            items.append((Spec(f"d{n}", UNLISTED, f"k{n}", "disconnected", ts, None), None))
    return items


@pytest.mark.parametrize(
    ("items", "flags"),
    [
        # 1 of 20 dropped = 0.05, within the limit; 4 of 5 within 30 s = 0.80; avg hold 120 s.
        (day_with(20, 1, [30_000] * 4 + [480_000]), (True, True, True)),
        # 2 of 20 dropped; 3 of 5 within 30 s; avg hold 120.0002 s.
        (day_with(20, 2, [30_001, 30_000, 0, 0, 570_001]), (False, False, False)),
        # 1 of 19 dropped > 0.05; 4 of 5 within 30 s; avg hold (4*30 + 480.001)/5 > 120 s.
        (day_with(19, 1, [30_000] * 4 + [480_001]), (False, True, False)),
        # no call queued or answered: ratio, mean and their flags are null.
        (day_with(3, 0, []), (True, None, None)),
    ],
)
def test_threshold_days(items: list[Item], flags: tuple[bool | None, ...]) -> None:
    for incremental in (True, False):
        engine = ComplianceEngine(engine_registry(), incremental=incremental)
        for item in items:
            feed(engine, item)
        assert_matches(engine, specs_of(items))
        (row,) = as_dicts(engine.rows())
        assert (row["compliant_disconnect"], row["compliant_answer"], row["compliant_hold"]) == (
            flags
        )
        assert row["parent_org"] is None
        assert row["date"] == "2026-01-05"


# -- status events -------------------------------------------------------------------------------


@pytest.mark.parametrize("incremental", [True, False])
def test_status_event_with_a_call_id_has_no_effect_on_call_figures(incremental: bool) -> None:
    """§2: status events need no call_id and have no effect on call figures.

    Validation accepts a ``service_down`` that carries a ``call_id`` (a call_id is optional
    there, not forbidden); the engine must count it as a status event, not as a call event.
    """
    ts = local_midnight_ms("2026-01-05", DEFAULT_ZONE) + 3_600_000
    items: list[Item] = [
        (Spec("e1", UNLISTED, "c1", "call_received", ts, None), "z"),
        (Spec("e2", UNLISTED, "c1", "service_down", ts - 5_000, None), "z"),
        (Spec("e3", UNLISTED, "c9", "service_up", ts + 5_000, None), "z"),
    ]
    engine = ComplianceEngine(engine_registry(), incremental=incremental)
    for item in items:
        feed(engine, item)
    reference = brute_force(specs_of(items))
    assert reference.status_events == 2
    assert_matches(engine, specs_of(items))
    with tempfile.TemporaryDirectory() as tmp:  # and through `monitor report`'s replay
        document = report_document(
            run_report(write_inputs(Path(tmp), items, [], noise=True), engine_registry())
        )
    assert_rows_equal(document["rows"], reference.rows)
